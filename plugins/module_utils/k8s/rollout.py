# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollouts of a Deployment as kubectl sees them: pure logic on the API's JSON (camelCase dicts).

The rules follow kubectl (k8s.io/kubectl pkg/polymorphichelpers rollback.go, history.go,
rollout_status.go, objectrestarter.go and pkg/util/deployment): the revisions of a Deployment are
the ReplicaSets it controls (ownerReferences, not labels), `undo` goes to the second-highest
revision or to the one asked for, skips when the template already matches (ignoring the
pod-template-hash label), and replaces spec.template and the annotations with a JSON patch.
`wait_rollout` polls a Deployment, through the read callable it is given, until that verdict is done.

Beyond kubectl, a rollout whose newest ReplicaSet cannot create its pods (its ReplicaFailure
condition, such as a ResourceQuota refusing them) fails without waiting for the progress deadline,
unless the refusal is a quota that the rollout's own old pods may still free (blocking_failure), and
every message of a rollout with such a condition leads with it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import epoch

REVISION = 'deployment.kubernetes.io/revision'
CHANGE_CAUSE = 'kubernetes.io/change-cause'
HASH_LABEL = 'pod-template-hash'
RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'
TIMED_OUT = 'ProgressDeadlineExceeded'
REPLICA_FAILURE = 'ReplicaFailure'
FAILED_CREATE = 'FailedCreate'
# The quota admission's words: pods refused only while the namespace's usage is at the quota.
QUOTA_EXCEEDED = 'exceeded quota'
# The Deployment's own values of these are kept on undo; the others come from the ReplicaSet.
KEPT_ANNOTATIONS = frozenset((
    'kubectl.kubernetes.io/last-applied-configuration',
    REVISION,
    'deployment.kubernetes.io/revision-history',
    'deployment.kubernetes.io/desired-replicas',
    'deployment.kubernetes.io/max-replicas',
    'deprecated.deployment.rollback.to',
))


def annotations_of(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get('metadata') or {}).get('annotations') or {}


def template(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get('spec') or {}).get('template') or {}


def revision(obj: dict[str, Any]) -> int | None:
    """The revision annotation as an int: 0 when absent, None when not a number (kubectl skips it)."""
    value = annotations_of(obj).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def images(obj: dict[str, Any]) -> list[str]:
    return [c.get('image') for c in (template(obj).get('spec') or {}).get('containers') or []]


def owned_replica_sets(deployment: dict[str, Any], replica_sets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ReplicaSets whose controller ownerReference is this Deployment (by uid), as kubectl
    keeps them: a ReplicaSet of another Deployment with overlapping labels is not one of them."""
    uid = deployment['metadata']['uid']
    owned = []
    for rs in replica_sets:
        refs = (rs.get('metadata') or {}).get('ownerReferences') or []
        controller = next((ref for ref in refs if ref.get('controller')), None)
        if controller and controller.get('uid') == uid:
            owned.append(rs)
    return owned


def revisions(owned: Iterable[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(revision, ReplicaSet) of the owned ReplicaSets with a valid revision, highest first."""
    pairs = [(revision(rs), rs) for rs in owned]
    return sorted(((n, rs) for n, rs in pairs if n is not None), key=lambda pair: pair[0], reverse=True)


def _container_settings(container: dict[str, Any]) -> dict[str, Any]:
    env = {e.get('name'): e.get('value', e.get('valueFrom')) for e in container.get('env') or []}
    return {'env': env, 'envFrom': container.get('envFrom'), 'resources': container.get('resources'),
            'command': container.get('command'), 'args': container.get('args'), 'probes': [
                container.get(probe) for probe in ('livenessProbe', 'readinessProbe', 'startupProbe')]}


def settings_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """What the pod template of `after` changes from `before`'s (two ReplicaSets) besides the
    images: ['env MODEL_SERVICE_URL', 'resources of gateway', 'pod spec'...]; [] for a restart
    (`kubectl rollout restart` changes only its annotation) or the first revision."""
    if before is None:
        return []
    old, new = template(before), template(after)
    old_containers = {c.get('name'): _container_settings(c) for c in (old.get('spec') or {}).get('containers') or []}
    changes: list[str] = []
    for container in (new.get('spec') or {}).get('containers') or []:
        name, now = container.get('name'), _container_settings(container)
        was = old_containers.get(name)
        if was is None:
            changes.append('container %s added' % name)
            continue
        env = sorted(key for key in set(was['env']) | set(now['env']) if was['env'].get(key) != now['env'].get(key))
        changes += ['env %s' % key for key in env]
        changes += ['%s of %s' % (field, name) for field in ('envFrom', 'resources', 'command', 'args', 'probes')
                    if was[field] != now[field]]

    def rest(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k not in ('containers',)}
    if rest(old.get('spec') or {}) != rest(new.get('spec') or {}):
        changes.append('pod spec')
    return changes


def history(deployment: dict[str, Any], owned: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per revision, oldest first: what `kubectl rollout history` lists, and more: the
    settings its pod template changes from the revision before (settings_changes)."""
    current = revision(deployment)
    entries = []
    previous = None
    for number, rs in reversed(revisions(owned)):
        status = rs.get('status') or {}
        settings, previous = settings_changes(previous, rs), rs
        entries.append({
            'revision': number,
            'replica_set': rs['metadata']['name'],
            'images': images(rs),
            'settings': settings,
            'change_cause': annotations_of(rs).get(CHANGE_CAUSE),
            'created': rs['metadata'].get('creationTimestamp'),
            'replicas': (rs.get('spec') or {}).get('replicas', 0),
            'ready_replicas': status.get('readyReplicas', 0),
            'available_replicas': status.get('availableReplicas', 0),
            'current': number == current,
        })
    return entries


def undo_target(deployment: dict[str, Any], owned: Iterable[dict[str, Any]], to_revision: int | None = None) -> dict[str, Any]:
    """The ReplicaSet `kubectl rollout undo` goes to: the one of to_revision, else the
    second-highest revision. ValueError when there is none."""
    name = deployment['metadata']['name']
    ranked = revisions(owned)
    known = ', '.join(str(n) for n, rs in reversed(ranked)) or 'none'
    if to_revision:
        if to_revision < 0:
            raise ValueError('to_revision must be a positive revision, not %d' % to_revision)
        for number, rs in ranked:
            if number == to_revision:
                return rs
        raise ValueError('unable to find revision %d in the history of deployment %s (revisions: %s)'
                         % (to_revision, name, known))
    if len(ranked) < 2:
        raise ValueError('no previous revision of deployment %s to roll back to (revisions: %s); the older '
                         'ReplicaSets were pruned or the Deployment was never updated' % (name, known))
    return ranked[1][1]


def refuse_paused(deployment: dict[str, Any], action: str) -> None:
    """ValueError for an undo or restart of a paused Deployment, as kubectl refuses them."""
    if (deployment.get('spec') or {}).get('paused'):
        name = deployment['metadata']['name']
        raise ValueError('cannot %s paused deployment %s in namespace %s; resume it first with '
                         "'kubectl rollout resume deployment/%s -n %s' and try again"
                         % (action, name, deployment['metadata'].get('namespace'), name,
                            deployment['metadata'].get('namespace')))


def _without_hash(pod_template: dict[str, Any]) -> dict[str, Any]:
    pod_template = copy.deepcopy(pod_template)
    labels = (pod_template.get('metadata') or {}).get('labels')
    if labels:
        labels.pop(HASH_LABEL, None)
    return pod_template


def _semantic(value: Any) -> Any:
    """A value where null, empty maps and empty lists are absent, as apimachinery's Semantic
    equality does not tell them apart."""
    if isinstance(value, dict):
        pruned = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def templates_match(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """Whether the ReplicaSet's pod template is the Deployment's, ignoring pod-template-hash."""
    return _semantic(_without_hash(template(rs))) == _semantic(_without_hash(template(deployment)))


def undo_annotations(deployment: dict[str, Any], rs: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's annotations after the undo: the ReplicaSet's, except the bookkeeping ones,
    for which the Deployment keeps its own values."""
    kept = {k: v for k, v in annotations_of(deployment).items() if k in KEPT_ANNOTATIONS}
    kept.update((k, v) for k, v in annotations_of(rs).items() if k not in KEPT_ANNOTATIONS)
    return kept


def undo_patch(deployment: dict[str, Any], rs: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch (application/json-patch+json) kubectl sends to restore the ReplicaSet."""
    return [
        {'op': 'replace', 'path': '/spec/template', 'value': _without_hash(template(rs))},
        {'op': 'replace', 'path': '/metadata/annotations', 'value': undo_annotations(deployment, rs)},
    ]


def restarted_at(deployment: dict[str, Any]) -> str | None:
    return summary(deployment)['template_annotations'].get(RESTARTED_AT)


def restart_needed(deployment: dict[str, Any], restarted_before: float | None = None) -> bool:
    """Whether to restart: always, or with restarted_before (epoch seconds), only when the last
    restart (the restartedAt annotation) is older than that."""
    if restarted_before is None:
        return True
    last = epoch(restarted_at(deployment))
    return last is None or last < restarted_before


def restart_stamp(now: datetime) -> str:
    """The restartedAt value `kubectl rollout restart` sets at `now` (an aware datetime): RFC 3339, UTC."""
    return now.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def restart_patch(now: datetime) -> dict[str, Any]:
    """The strategic merge patch of `kubectl rollout restart`, at `now` (an aware datetime)."""
    return {'spec': {'template': {'metadata': {'annotations': {RESTARTED_AT: restart_stamp(now)}}}}}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of that type of a Deployment or ReplicaSet, or None."""
    conditions = (obj.get('status') or {}).get('conditions') or []
    return next((c for c in conditions if c.get('type') == kind), None)


def progressing(deployment: dict[str, Any]) -> dict[str, Any] | None:
    return condition(deployment, 'Progressing')


def replica_failure(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ReplicaFailure condition of a ReplicaSet or Deployment while it holds (status True): the
    ReplicaSet controller could not create (reason FailedCreate) or delete (FailedDelete) pods, and the
    message is the API server's refusal. The deployment controller copies its newest ReplicaSet's onto
    the Deployment, else an older ReplicaSet's."""
    found = condition(obj, REPLICA_FAILURE)
    return found if found and found.get('status') == 'True' else None


def new_replica_set(deployment: dict[str, Any], owned: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The owned ReplicaSet of the Deployment's pod template, the oldest if several, as the
    controller finds it (FindNewReplicaSet); None before the controller made it."""
    matching = [rs for rs in owned if templates_match(rs, deployment)]
    return min(matching, key=lambda rs: (rs['metadata'].get('creationTimestamp') or '', rs['metadata']['name']), default=None)


def _scaled(value: int | str, total: int, round_up: bool) -> int:
    """An IntOrString of the rolling update ("25%", 1) against total, as apimachinery's
    GetScaledValueFromIntOrPercent: a percentage rounded up or down."""
    text = str(value)
    if not text.endswith('%'):
        return int(text)
    whole, rest = divmod(int(text[:-1]) * total, 100)
    return whole + (1 if round_up and rest else 0)


def max_unavailable(deployment: dict[str, Any]) -> int:
    """How many pods a rolling update may take down before new ones are available, as the controller
    resolves it (ResolveFenceposts): maxUnavailable of spec.replicas rounded down, 1 when maxSurge
    comes to 0 as well; the API defaults both to 25%."""
    spec = deployment.get('spec') or {}
    rolling = (spec.get('strategy') or {}).get('rollingUpdate') or {}
    replicas = spec.get('replicas', 1)
    surge = _scaled(rolling.get('maxSurge', '25%'), replicas, True)
    unavailable = _scaled(rolling.get('maxUnavailable', '25%'), replicas, False)
    return 1 if surge == 0 and unavailable == 0 else unavailable


def may_free_quota(deployment: dict[str, Any]) -> bool:
    """Whether pods of the Deployment may still go away and free the quota its new pods are refused.

    The quota counts a pod until it is gone, so in a namespace at its quota each step of a rolling
    update is refused until an old pod went, and the ReplicaSet controller retries. So yes while pods
    terminate (status.terminatingReplicas, which servers report from Kubernetes 1.35), and while old
    pods are left that the rolling update takes down: as new pods come up, or before when
    maxUnavailable allows. No when no old pod is left (a scale-up, a new Deployment), nor when no new
    pod exists, none terminates and no old one may go first (maxUnavailable 0, as the default 25% of
    up to 3 replicas): the rollout cannot start. The one miss: right after the last old pod is gone
    and before the ReplicaSet retried, a quota that pod freed still looks refused."""
    status = deployment.get('status') or {}
    terminating = status.get('terminatingReplicas')
    updated = status.get('updatedReplicas', 0)
    if terminating:
        return True
    if status.get('replicas', 0) <= updated:
        return False
    return updated > 0 or terminating is None or max_unavailable(deployment) > 0


def _observed(obj: dict[str, Any]) -> bool:
    """Whether the controller has acted on the object's latest spec (a ReplicaSet's condition from
    before a scale may be gone at its next try)."""
    return (obj.get('status') or {}).get('observedGeneration', 0) >= obj['metadata'].get('generation', 0)


def blocking_failure(deployment: dict[str, Any], replica_set: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ReplicaFailure of the Deployment's newest ReplicaSet (new_replica_set) when its pods cannot
    be created and the rollout cannot get past that by itself, so that waiting for the progress
    deadline is pointless; None otherwise.

    Only the newest ReplicaSet's condition counts: the Deployment's may be an older ReplicaSet's (right
    after an undo of a deploy whose pods were refused, it still is). A refusal by a ResourceQuota counts
    only when no pod of the Deployment may free that quota (may_free_quota); any other (a PodSecurity
    or LimitRange violation, an admission webhook, a missing service account) needs a fix first."""
    if replica_set is None or not _observed(replica_set):
        return None
    failure = replica_failure(replica_set)
    if not failure or failure.get('reason') != FAILED_CREATE:
        return None
    if QUOTA_EXCEEDED in (failure.get('message') or '') and may_free_quota(deployment):
        return None
    return failure


def _left_from_before(deployment: dict[str, Any], cond: dict[str, Any], before: dict[str, Any] | None) -> bool:
    """Whether the timed-out condition is the one read before the change and the controller has
    observed no generation since (a change of the HPA alone bumps none until the HPA scales)."""
    if before is None:
        return False
    then = progressing(before) or {}
    observed = (deployment.get('status') or {}).get('observedGeneration', 0)
    return bool(then.get('reason') == TIMED_OUT and then.get('lastUpdateTime') == cond.get('lastUpdateTime')
                and observed <= before['metadata'].get('generation', 0))


def rollout_status(deployment: dict[str, Any], before: dict[str, Any] | None = None,
                   replica_set: dict[str, Any] | None = None) -> tuple[bool, bool, str]:
    """(done, failed, message) under `kubectl rollout status`'s rules, in its order and words: not
    before the controller observed the Deployment's generation; then a Progressing condition with
    reason ProgressDeadlineExceeded is a failure, also one older than the change (after an undo onto
    a ReplicaSet that cannot progress, the controller never refreshes it); then the replica counts.

    before is the Deployment read before this module changed it: its timed-out condition is not the
    change's failure while the controller has observed no generation since. replica_set is the
    Deployment's newest ReplicaSet, read when the Deployment has a ReplicaFailure condition: its
    blocking_failure fails at once, and a ReplicaFailure (the ReplicaSet's, else the Deployment's when
    the ReplicaSet was not read) leads every message, the deadline's too, with the cause."""
    meta = deployment['metadata']
    name = meta['name']
    spec = deployment.get('spec') or {}
    status = deployment.get('status') or {}
    if not _observed(deployment):
        return False, False, 'Waiting for deployment spec update to be observed...'
    failure = replica_failure(replica_set if replica_set is not None else deployment)
    cause = ''
    if failure:
        verb = 'delete' if failure.get('reason') == 'FailedDelete' else 'create'
        cause = 'cannot %s pods: %s; ' % (verb, failure.get('message') or failure.get('reason'))
    cond = progressing(deployment)
    if cond and cond.get('reason') == TIMED_OUT and not _left_from_before(deployment, cond, before):
        return False, True, ('%sdeployment "%s" exceeded its progress deadline of %s s (progressDeadlineSeconds): %s'
                             % (cause, name, spec.get('progressDeadlineSeconds'), cond.get('message') or TIMED_OUT))
    if replica_set is not None and blocking_failure(deployment, replica_set):
        rs_name = replica_set['metadata']['name']
        return False, True, ('%sdeployment "%s" cannot roll out until that is fixed (condition %s %s of ReplicaSet %s; '
                             'kubectl describe replicaset %s -n %s)'
                             % (cause, name, REPLICA_FAILURE, FAILED_CREATE, rs_name, rs_name, meta.get('namespace')))
    updated = status.get('updatedReplicas', 0)
    if spec.get('replicas') is not None and updated < spec['replicas']:
        return False, False, ('%sWaiting for deployment "%s" rollout to finish: %d out of %d new replicas have been updated...'
                              % (cause, name, updated, spec['replicas']))
    if status.get('replicas', 0) > updated:
        return False, False, ('%sWaiting for deployment "%s" rollout to finish: %d old replicas are pending termination...'
                              % (cause, name, status['replicas'] - updated))
    if status.get('availableReplicas', 0) < updated:
        return False, False, ('%sWaiting for deployment "%s" rollout to finish: %d of %d updated replicas are available...'
                              % (cause, name, status.get('availableReplicas', 0), updated))
    return True, False, 'deployment "%s" successfully rolled out' % name


def status_facts(deployment: dict[str, Any], before: dict[str, Any] | None = None,
                 replica_set: dict[str, Any] | None = None) -> dict[str, Any]:
    """The verdict with the counts it was made from, and the ReplicaFailure message, if any."""
    done, failed, message = rollout_status(deployment, before, replica_set)
    status = deployment.get('status') or {}
    failure = replica_failure(replica_set if replica_set is not None else deployment)
    return {
        'done': done, 'failed': failed, 'message': message,
        'replicas': (deployment.get('spec') or {}).get('replicas'),
        'current_replicas': status.get('replicas', 0),
        'updated_replicas': status.get('updatedReplicas', 0),
        'ready_replicas': status.get('readyReplicas', 0),
        'available_replicas': status.get('availableReplicas', 0),
        'generation': deployment['metadata'].get('generation'),
        'observed_generation': status.get('observedGeneration'),
        'replica_failure': failure.get('message') if failure else None,
    }


class RolloutError(RunbookError):
    """The rollout failed or did not finish in time; `deployment` is the last one read."""

    def __init__(self, message: str, deployment: dict[str, Any]) -> None:
        super().__init__(message)
        self.deployment = deployment


def wait_rollout(read: Callable[[], dict[str, Any]], timeout: float,
                 verdict: Callable[[dict[str, Any]], tuple[bool, bool, str]] = rollout_status,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] = time.sleep) -> dict[str, Any]:
    """Reads the Deployment (read()) every second until verdict(deployment), (done, failed, message)
    as rollout_status gives them, is done, and returns the last one read. RolloutError at once on a
    failure, and with the last message when it is not done after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        deployment = read()
        done, failed, message = verdict(deployment)
        if failed:
            raise RolloutError(message, deployment)
        if done:
            return deployment
        if clock() >= deadline:
            meta = deployment['metadata']
            raise RolloutError('deployment %s in namespace %s: rollout not done after %ds: %s'
                               % (meta['name'], meta.get('namespace'), timeout, message), deployment)
        sleep(1)


def summary(deployment: dict[str, Any]) -> dict[str, Any]:
    """What before/after show of a Deployment."""
    return {
        'revision': revision(deployment),
        'images': images(deployment),
        'template_annotations': (template(deployment).get('metadata') or {}).get('annotations') or {},
    }


def label_selector(selector: dict[str, Any]) -> str:
    """The label selector string of a LabelSelector (matchLabels and matchExpressions)."""
    terms = ['%s=%s' % item for item in sorted((selector.get('matchLabels') or {}).items())]
    for expr in selector.get('matchExpressions') or []:
        key, op, values = expr['key'], expr['operator'], ','.join(sorted(expr.get('values') or []))
        terms.append({'In': '%s in (%s)' % (key, values), 'NotIn': '%s notin (%s)' % (key, values),
                      'Exists': key, 'DoesNotExist': '!' + key}[op])
    return ','.join(terms)

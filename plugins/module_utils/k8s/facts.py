# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the observe modules tell from Kubernetes objects: pure functions on the plain (camelCase)
dicts the API returns (as `kubectl get -o json`), no I/O (the reads are k8s_observe's).

- Pods: which are the Deployment's (owned through its ReplicaSets, not matched by labels), their
  state as `kubectl get pods` and `describe` show it (waiting reason, last termination,
  restarts), the containers to read previous logs of, OOM kills.
- Resources: metrics.k8s.io PodMetrics against each container's limits, in the record shape of
  module_utils/analysis/resources.py, so that its `assess` gives the same verdicts as for docker.
- The "Service Completely Down" checks: problems (CrashLoopBackOff, LivenessProbe, ImagePullBackOff,
  CreateContainerConfigError, OOMKilled, Unschedulable, ReplicaFailure, ProgressDeadlineExceeded,
  NoReadyEndpoints, NoEndpointsObject, NotReady), Warning events of the Deployment, its
  ReplicaSets and pods, the Service's endpoints and the HorizontalPodAutoscaler.
- Behind a CreateContainerConfigError: the ConfigMap and Secret references of the pod template
  that are missing, and whether a ConfigMap key can be put back from the ConfigMap's
  last-applied-configuration (k8s/configmap.py); never a value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import epoch, iso
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import configmap as kc
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.workload import find_hpa, hpa_bounds, parse_quantity

OOM = 'OOMKilled'
CRASH_LOOP = 'CrashLoopBackOff'
PULL_FAILURES = frozenset(('ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'ErrImageNeverPull'))
LIVENESS = 'LivenessProbe'
PROBLEM_KINDS = ('CrashLoopBackOff', LIVENESS, 'ImagePullBackOff', 'CreateContainerConfigError', 'OOMKilled', 'Unschedulable',
                 kr.REPLICA_FAILURE, 'ProgressDeadlineExceeded', 'NoReadyEndpoints', 'NoEndpointsObject', 'NotReady')
METRICS_ABSENT = 'metrics-server is not installed: CPU and memory unknown; kubectl top would fail too'
METRICS_DOWN = ('metrics-server is installed but does not answer (metrics.k8s.io unavailable): CPU and memory '
                'unknown; kubectl top would fail too')
MAX_MESSAGES = 3
CONFIG_ERROR = 'CreateContainerConfigError'
# What the kubelet says of a Secret it cannot read: Secrets are never read here.
_SECRET_NOT_FOUND = re.compile(r'secrets? "([^"]+)" not found', re.I)
_KEY_NOT_FOUND = re.compile(r"couldn't find key (\S+) in Secret (?:[^/\s]+/)?(\S+)")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get('metadata') or {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get('status') or {}


def name_of(obj: dict[str, Any]) -> Any:  # str: the API names every object it returns
    return _meta(obj).get('name')


def conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The status conditions of an object, as {type, status, reason, message}."""
    return [{key: c.get(key) for key in ('type', 'status', 'reason', 'message')}
            for c in _status(obj).get('conditions') or []]


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of the object's controller (its ownerReference with controller: true), None without one."""
    refs = _meta(obj).get('ownerReferences') or []
    return next((ref.get('uid') for ref in refs if ref.get('controller')), None)


# --------------------------------------------------------------------------- pods

def owned_pods(owned: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods a Deployment owns: those whose controller is one of its ReplicaSets (owned, as
    rollout.owned_replica_sets gives them), as the controllers count them. The pods of another
    Deployment whose labels match its selector (a canary's) are not among them."""
    uids = {uid for uid in (_meta(rs).get('uid') for rs in owned) if uid}
    return [pod for pod in pods if controller_uid(pod) in uids]


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return _status(pod).get('containerStatuses') or []


def _state(status: dict[str, Any], which: str = 'state') -> tuple[str | None, dict[str, Any]]:
    """(name, details) of a container's state or lastState: running, waiting or terminated."""
    state = status.get(which) or {}
    for name in ('waiting', 'running', 'terminated'):
        if state.get(name) is not None:
            return name, state[name]
    return None, {}


def _terminated(status: dict[str, Any]) -> dict[str, Any]:
    """The last termination of a container: its lastState's, else its current state's."""
    last = (status.get('lastState') or {}).get('terminated')
    return last or (status.get('state') or {}).get('terminated') or {}


def is_oom_killed(status: dict[str, Any]) -> bool:
    """Whether the container's current or last instance was OOM-killed."""
    return OOM in (((status.get('lastState') or {}).get('terminated') or {}).get('reason'),
                   ((status.get('state') or {}).get('terminated') or {}).get('reason'))


def restarted_containers(pod: dict[str, Any]) -> list[str]:
    """Containers with a previous instance (restartCount > 0): where a crash's reason is logged."""
    return [s['name'] for s in container_statuses(pod) if s.get('restartCount', 0) > 0]


def never_started(pod: dict[str, Any]) -> list[str]:
    """Containers waiting that have never run (an image not pulled, a missing ConfigMap key): they
    have no log to read."""
    return [s['name'] for s in container_statuses(pod)
            if _state(s)[0] == 'waiting' and not s.get('restartCount') and not _terminated(s)]


def pod_ready(pod: dict[str, Any]) -> bool:
    ready = kr.condition(pod, 'Ready')
    if ready is not None:
        return ready.get('status') == 'True'
    statuses = container_statuses(pod)
    return bool(statuses) and all(s.get('ready') for s in statuses)


def pod_facts(pod: dict[str, Any]) -> dict[str, Any]:
    """One pod as `kubectl get pods` and `describe` show it (the first container saying each fact)."""
    statuses = container_statuses(pod)
    waiting: dict[str, Any] = next((details for name, details in map(_state, statuses) if name == 'waiting'), {})
    last: dict[str, Any] = next((t for t in map(_terminated, statuses) if t), {})
    running: dict[str, Any] = next((details for name, details in map(_state, statuses) if name == 'running'), {})
    return {
        'name': name_of(pod),
        'phase': _status(pod).get('phase'),
        'ready': pod_ready(pod),
        'restarts': sum(s.get('restartCount', 0) for s in statuses),
        'node': (pod.get('spec') or {}).get('nodeName'),
        'waiting_reason': waiting.get('reason'),
        'waiting_message': waiting.get('message'),
        'last_terminated_reason': last.get('reason'),
        'last_exit_code': last.get('exitCode'),
        'started_at': iso(epoch(running.get('startedAt') or _status(pod).get('startTime'))),
    }


def crash_target(pods: Iterable[dict[str, Any]]) -> tuple[str, str] | None:
    """(pod name, container) whose previous instance's log tells why it crashes: a container in
    CrashLoopBackOff, else one that restarted after a termination; None when no container did."""
    fallback = None
    for pod in pods:
        for status in container_statuses(pod):
            name, details = _state(status)
            if name == 'waiting' and details.get('reason') == CRASH_LOOP:
                return name_of(pod), status['name']
            if fallback is None and status.get('restartCount', 0) > 0 and (status.get('lastState') or {}).get('terminated'):
                fallback = (name_of(pod), status['name'])
    return fallback


# --------------------------------------------------------------------------- HPA and resources

def hpa_of(hpas: Iterable[dict[str, Any]], deployment_name: str) -> dict[str, Any] | None:
    """The HPA (autoscaling/v2 or v1) whose scaleTargetRef names the Deployment, or None; ValueError when
    several do (the HPA controller then scales none)."""
    return find_hpa(hpas, 'Deployment', deployment_name)


def hpa_facts(hpa: dict[str, Any] | None) -> dict[str, Any] | None:
    """{name, min_replicas, max_replicas, current_replicas, desired_replicas, at_max, conditions}, None without an HPA."""
    if not hpa:
        return None
    low, high = hpa_bounds(hpa)
    status = _status(hpa)
    current, desired = status.get('currentReplicas', 0), status.get('desiredReplicas', 0)
    return {'name': name_of(hpa), 'min_replicas': low, 'max_replicas': high, 'current_replicas': current,
            'desired_replicas': desired, 'at_max': max(current, desired) >= high, 'conditions': conditions(hpa)}


def container_resources(pod_spec: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{container: {limits: {...}, requests: {...}}} of a pod spec (a Deployment template's or a pod's)."""
    return {c['name']: {group: dict((c.get('resources') or {}).get(group) or {}) for group in ('limits', 'requests')}
            for c in pod_spec.get('containers') or []}


def _amount(quantity: Any) -> float | None:
    return None if quantity in (None, '') else float(parse_quantity(quantity))


def metrics_missing(status: int | None, error: object) -> str:
    """The sentence for a metrics.k8s.io read that failed with HTTP status (None: unreachable)."""
    if status == 404:
        return METRICS_ABSENT
    if status == 503:
        return METRICS_DOWN
    return 'pod metrics (metrics.k8s.io) could not be read: %s; CPU and memory unknown' % error


def usage_records(pods: Iterable[dict[str, Any]], pod_metrics: Iterable[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, missing): one record per container of the pods in module_utils.resources' shape,
    CPU and memory as percents of the container's limits; pod_metrics is the PodMetrics items, None
    when the metrics API is unavailable. missing says which figures are unknown and why."""
    usage = {name_of(item): {c.get('name'): c.get('usage') or {} for c in item.get('containers') or []}
             for item in pod_metrics or []}
    records: list[dict[str, Any]] = []
    missing: list[str] = []
    for pod in sorted(pods, key=name_of):
        pod_name = name_of(pod)
        statuses = {s.get('name'): s for s in container_statuses(pod)}
        if pod_metrics is not None and pod_name not in usage:
            missing.append('pod %s: no metrics sample yet (metrics-server samples every 15 s or so)' % pod_name)
        for container in (pod.get('spec') or {}).get('containers') or []:
            status = statuses.get(container['name'], {})
            record = container_record(pod_name, container, status, (usage.get(pod_name) or {}).get(container['name']))
            if record['cpu_cores'] is not None and record['cpu_limit_cores'] is None:
                missing.append('cpu percent of %s: the container has no CPU limit (it uses %.3f cores)'
                               % (record['name'], record['cpu_cores']))
            if record['memory_bytes'] is not None and not record['limit_set']:
                missing.append('memory percent of %s: the container has no memory limit (it uses %d MiB)'
                               % (record['name'], record['memory_bytes'] // (1024 * 1024)))
            records.append(record)
    return records, missing


def container_record(pod_name: str, container: dict[str, Any], status: dict[str, Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    """One container's figures: usage (its PodMetrics usage, None without a sample) against its limits."""
    limits = (container.get('resources') or {}).get('limits') or {}
    cpu_limit, memory_limit = _amount(limits.get('cpu')), _amount(limits.get('memory'))
    cpu = _amount((usage or {}).get('cpu'))
    memory = _amount((usage or {}).get('memory'))
    state, details = _state(status)
    last = _terminated(status)
    return {
        'name': '%s/%s' % (pod_name, container['name']),
        'id': status.get('containerID'),
        'pod': pod_name,
        'container': container['name'],
        'state': state,
        'running': state == 'running',
        'restarting': state == 'waiting' and details.get('reason') == CRASH_LOOP,
        'exit_code': last.get('exitCode'),
        'started_at': details.get('startedAt') if state == 'running' else None,
        'cpu_cores': None if cpu is None else round(cpu, 3),
        'cpu_limit_cores': cpu_limit,
        'cpu_basis': 'limit' if cpu_limit else None,
        'cpu_percent': round(100.0 * cpu / cpu_limit, 1) if cpu is not None and cpu_limit else None,
        'memory_bytes': None if memory is None else int(memory),
        'memory_limit_bytes': None if memory_limit is None else int(memory_limit),
        'memory_percent': round(100.0 * memory / memory_limit, 1) if memory is not None and memory_limit else None,
        'limit_set': bool(memory_limit),
        'throttled_ratio': None,
        'restart_count': status.get('restartCount', 0),
        'oom_killed_now': is_oom_killed(status),
        # lastState keeps one termination: how many OOM kills in the period is not known.
        'oom_kills': None,
        'nonzero_exits': None,
        'exit_codes': [],
    }


# --------------------------------------------------------------------------- events and endpoints

def event_time(event: dict[str, Any]) -> float | None:
    """Epoch seconds an event was last seen (lastTimestamp, series, eventTime, creation)."""
    series = event.get('series') or {}
    for text in (event.get('lastTimestamp'), series.get('lastObservedTime'), event.get('eventTime'),
                 _meta(event).get('creationTimestamp')):
        when = epoch(text) if text else None
        if when is not None:
            return when
    return None


def warning_events(events: Iterable[dict[str, Any]], objects: Collection[tuple[str, str]], since: float) -> list[dict[str, Any]]:
    """The Warning events about objects ({(kind, name)}) last seen at or after since (epoch),
    newest first, as {type, reason, object, message, count, last_seen}."""
    found: list[tuple[float, dict[str, Any]]] = []
    for event in events:
        involved = event.get('involvedObject') or {}
        if event.get('type') != 'Warning' or (involved.get('kind'), involved.get('name')) not in objects:
            continue
        seen = event_time(event)
        if seen is not None and seen < since:
            continue
        found.append((seen or 0.0, {
            'type': event.get('type'), 'reason': event.get('reason'),
            'object': '%s/%s' % (involved.get('kind'), involved.get('name')),
            'message': (event.get('message') or '').strip(),
            'count': event.get('count') or (event.get('series') or {}).get('count') or 1,
            'last_seen': iso(seen)}))
    found.sort(key=lambda pair: -pair[0])
    return [entry for _seen, entry in found]


def endpoints_facts(name: str, service: dict[str, Any] | None, endpoints: dict[str, Any] | None) -> dict[str, Any]:
    """{found, endpoints_found, selector, service, ready, not_ready} of the Service `name` (service:
    its object, None when there is none) and its Endpoints object (None when there is none).

    found: whether the Service exists; endpoints_found: whether its Endpoints object does;
    selector: whether the Service selects pods, None when not known (no Service, or no spec read)."""
    subsets = (endpoints or {}).get('subsets') or []
    spec = (service or {}).get('spec')
    return {'found': service is not None, 'endpoints_found': endpoints is not None,
            'selector': None if spec is None else bool(spec.get('selector')),
            'service': name,
            'ready': sum(len(s.get('addresses') or []) for s in subsets),
            'not_ready': sum(len(s.get('notReadyAddresses') or []) for s in subsets)}


def no_endpoints_object(endpoints: dict[str, Any]) -> str:
    """Why the Service of endpoints_facts has no Endpoints object, and what it means."""
    why = ('it has no selector, so no controller makes one (the Endpoints of such a Service are '
           'created by hand)' if endpoints['selector'] is False
           else 'the endpoints controller has not made one (yet)')
    return ('Service %s has no Endpoints object: %s; no traffic reaches any pod through it'
            % (endpoints['service'], why))


# --------------------------------------------------------------------------- Service Completely Down

def _pod_event(events: Iterable[dict[str, Any]], pod: str, reasons: Collection[str], starts: str = '') -> str | None:
    return next((e['message'] for e in events if e['object'] == 'Pod/%s' % pod and e['reason'] in reasons
                 and e['message'].startswith(starts)), None)


def replica_failures(deployment: dict[str, Any], owned: Iterable[dict[str, Any]]) -> list[str]:
    """The messages of the ReplicaFailure conditions (status True) of the Deployment and of its
    ReplicaSets: why pods could not be created, such as a ResourceQuota or an admission webhook
    refusing them (`pods "x" is forbidden: exceeded quota: ...`)."""
    found = []
    for obj in [deployment, *owned]:
        failure = kr.replica_failure(obj)
        if failure:
            found.append(failure.get('message') or '%s cannot create pods (%s)' % (
                name_of(obj), failure.get('reason') or kr.REPLICA_FAILURE))
    return found


def problems(deployment: dict[str, Any], owned: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]],
             endpoints: dict[str, Any], events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What keeps the Deployment from serving, by kind (PROBLEM_KINDS order): [{kind, pods, message}].

    owned: its ReplicaSets; endpoints: endpoints_facts; events: warning_events of the Deployment,
    its ReplicaSets and pods."""
    found: dict[str, dict[str, list[str]]] = {}

    def add(kind: str, pod: str | None, message: str | None) -> None:
        entry = found.setdefault(kind, {'pods': [], 'messages': []})
        if pod and pod not in entry['pods']:
            entry['pods'].append(pod)
        if message and message not in entry['messages']:
            entry['messages'].append(message)

    for pod in sorted(pods, key=name_of):
        name, spec = name_of(pod), pod.get('spec') or {}
        limits = {c['name']: ((c.get('resources') or {}).get('limits') or {}).get('memory')
                  for c in spec.get('containers') or []}
        waiting_any = False
        liveness = _pod_event(events, name, ('Unhealthy',), 'Liveness probe failed')
        crashed: list[str] = []  # containers restarted after a failure, whatever their state now
        for status in container_statuses(pod):
            state, details = _state(status)
            reason, container = details.get('reason'), status.get('name')
            last = _terminated(status)
            if state == 'waiting':
                waiting_any = True
            if state == 'waiting' and reason == CRASH_LOOP:
                add(CRASH_LOOP, name, 'container %s keeps crashing (%d restarts)%s' % (
                    container, status.get('restartCount', 0),
                    ', last exit %s code %s' % (last.get('reason'), last.get('exitCode')) if last else ''))
            elif state == 'waiting' and reason in PULL_FAILURES:
                add('ImagePullBackOff', name, details.get('message') or 'cannot pull image %s' % status.get('image'))
            elif state == 'waiting' and reason == 'CreateContainerConfigError':
                add(reason, name, details.get('message') or 'container %s: invalid configuration' % container)
            if is_oom_killed(status):
                add(OOM, name, 'container %s was OOM-killed (memory limit %s)' % (container, limits.get(container) or 'none'))
            elif status.get('restartCount', 0) >= 1 and liveness:
                add(LIVENESS, name, 'container %s restarted %d times, killed by its liveness probe: %s' % (
                    container, status['restartCount'], liveness))
            if status.get('restartCount', 0) >= 1 and last.get('exitCode') not in (None, 0):
                crashed.append('container %s keeps crashing (%d restarts), last exit %s code %s; started again, not ready' % (
                    container, status['restartCount'], last.get('reason'), last.get('exitCode')))
        phase = _status(pod).get('phase')
        scheduled = kr.condition(pod, 'PodScheduled') or {}
        failed_scheduling = _pod_event(events, name, ('FailedScheduling',))
        if phase == 'Pending' and ((scheduled.get('status') == 'False' and scheduled.get('reason') == 'Unschedulable')
                                   or failed_scheduling):
            add('Unschedulable', name, scheduled.get('message') or failed_scheduling)
        elif phase == 'Running' and not waiting_any and not pod_ready(pod):
            # Between two back-offs a crash-looping container runs for a moment: still a crash loop.
            if crashed:
                add(CRASH_LOOP, name, crashed[0])
            else:
                add('NotReady', name, _pod_event(events, name, ('Unhealthy',), 'Readiness probe failed')
                    or 'running but not ready: its readiness probe fails')
    for message in replica_failures(deployment, owned):
        add(kr.REPLICA_FAILURE, None, message)
    progress = kr.progressing(deployment) or {}
    if progress.get('reason') == kr.TIMED_OUT:
        add(kr.TIMED_OUT, None, progress.get('message') or kr.TIMED_OUT)
    if endpoints['found'] and not endpoints['endpoints_found']:
        add('NoEndpointsObject', None, no_endpoints_object(endpoints))
    elif endpoints['found'] and not endpoints['ready']:
        add('NoReadyEndpoints', None, 'Service %s has no ready endpoint (%d not ready): every request to it fails'
            % (endpoints['service'], endpoints['not_ready']))
    return [{'kind': kind, 'pods': found[kind]['pods'], 'message': '; '.join(found[kind]['messages'][:MAX_MESSAGES])
             + ('; ...' if len(found[kind]['messages']) > MAX_MESSAGES else '')}
            for kind in PROBLEM_KINDS if kind in found]


def deployment_facts(deployment: dict[str, Any]) -> dict[str, Any]:
    meta, spec, status = _meta(deployment), deployment.get('spec') or {}, _status(deployment)
    return {'name': meta.get('name'), 'namespace': meta.get('namespace'), 'replicas': spec.get('replicas'),
            'ready_replicas': status.get('readyReplicas', 0), 'available_replicas': status.get('availableReplicas', 0),
            'updated_replicas': status.get('updatedReplicas', 0), 'paused': bool(spec.get('paused')),
            'revision': kr.revision(deployment), 'images': kr.images(deployment), 'conditions': conditions(deployment)}


def summary(deployment: dict[str, Any], found: list[dict[str, Any]], endpoints: dict[str, Any], hpa: dict[str, Any] | None) -> str:
    """One line: readiness, the problems, the endpoints and the HPA."""
    line = 'deployment %s in %s: %d/%s replicas ready' % (deployment['name'], deployment['namespace'],
                                                          deployment['ready_replicas'], deployment['replicas'])
    if found:
        line += '; problems: ' + ', '.join('%s (%s)' % (p['kind'], '%d pods' % len(p['pods']) if p['pods'] else p['message'])
                                           for p in found)
    else:
        line += '; no problem seen'
    if not endpoints['found']:
        line += '; no Service %s' % endpoints['service']
    elif not endpoints['endpoints_found']:
        line += '; Service %s has no Endpoints object (%s)' % (
            endpoints['service'], 'no selector' if endpoints['selector'] is False else 'not made by the endpoints controller')
    else:
        line += '; Service %s: %d ready endpoints, %d not ready' % (
            endpoints['service'], endpoints['ready'], endpoints['not_ready'])
    if hpa and hpa['at_max']:
        line += '; HPA %s at its maximum of %d replicas' % (hpa['name'], hpa['max_replicas'])
    return line


def status_report(deployment: dict[str, Any], owned: list[dict[str, Any]], pods: list[dict[str, Any]],
                  service: dict[str, Any] | None, endpoints: dict[str, Any] | None, events: Iterable[dict[str, Any]],
                  hpa: dict[str, Any] | None, service_name: str, since: float) -> dict[str, Any]:
    """The k8s_status result, but for its logs: deployment, pods, endpoints, events, hpa, problems, oom, summary.

    owned: the Deployment's ReplicaSets; pods: its pods (owned_pods); service: the Service object
    (None: no Service); endpoints: its Endpoints object (None: none); events: the namespace's
    events; hpa: the Deployment's HPA or None; since: epoch."""
    objects = {('Deployment', name_of(deployment))}
    objects.update(('ReplicaSet', name_of(rs)) for rs in owned)
    objects.update(('Pod', name_of(pod)) for pod in pods)
    relevant = warning_events(events, objects, since)
    ends = endpoints_facts(service_name, service, endpoints)
    found = problems(deployment, owned, pods, ends, relevant)
    facts, hpa_view = deployment_facts(deployment), hpa_facts(hpa)
    oom = sum(1 for pod in pods for status in container_statuses(pod) if is_oom_killed(status))
    return {'deployment': facts, 'pods': [pod_facts(pod) for pod in sorted(pods, key=name_of)], 'endpoints': ends,
            'events': relevant, 'hpa': hpa_view, 'problems': found, 'oom': {'oom_killed': bool(oom), 'count': oom},
            'summary': summary(facts, found, ends, hpa_view)}


# --------------------------------------------------------------------------- missing ConfigMap and Secret references

def config_references(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The ConfigMaps and Secrets a pod spec reads, once each in the order of the spec:
    [{kind, name, key, optional}], key None for a whole map (envFrom, a volume without items);
    optional only when every reference to it is. Through env configMapKeyRef / secretKeyRef,
    envFrom, and configMap, secret and projected volumes."""
    found: dict[tuple[str, str, str | None], dict[str, Any]] = {}

    def add(kind: str, name: str | None, key: str | None, optional: Any) -> None:
        if not name:
            return
        entry = found.setdefault((kind, name, key), {'kind': kind, 'name': name, 'key': key, 'optional': True})
        entry['optional'] = entry['optional'] and bool(optional)

    for container in (pod_spec.get('initContainers') or []) + (pod_spec.get('containers') or []):
        for env in container.get('env') or []:
            source = env.get('valueFrom') or {}
            for kind, field in (('ConfigMap', 'configMapKeyRef'), ('Secret', 'secretKeyRef')):
                ref = source.get(field)
                if ref:
                    add(kind, ref.get('name'), ref.get('key'), ref.get('optional'))
        for source in container.get('envFrom') or []:
            for kind, field in (('ConfigMap', 'configMapRef'), ('Secret', 'secretRef')):
                ref = source.get(field)
                if ref:
                    add(kind, ref.get('name'), None, ref.get('optional'))
    for volume in pod_spec.get('volumes') or []:
        sources = list((volume.get('projected') or {}).get('sources') or [])
        if volume.get('configMap'):
            sources.append({'configMap': volume['configMap']})
        if volume.get('secret'):
            sources.append({'secret': dict(volume['secret'], name=volume['secret'].get('secretName'))})
        for source in sources:
            for kind, field in (('ConfigMap', 'configMap'), ('Secret', 'secret')):
                ref = source.get(field)
                if not ref:
                    continue
                for key in [item.get('key') for item in ref.get('items') or []] or [None]:
                    add(kind, ref.get('name'), key, ref.get('optional'))
    return list(found.values())


def config_error_messages(pods: Iterable[dict[str, Any]]) -> list[str]:
    """The messages of the containers waiting in CreateContainerConfigError, once each."""
    messages: list[str] = []
    for pod in pods:
        for status in container_statuses(pod):
            state, details = _state(status)
            message = details.get('message')
            if state == 'waiting' and details.get('reason') == CONFIG_ERROR and message and message not in messages:
                messages.append(message)
    return messages


def _secret_said(ref: dict[str, Any], messages: Iterable[str]) -> dict[str, Any] | None:
    """{exists, has_key} of a Secret as the kubelet's messages tell it, None when they do not name it."""
    for message in messages:
        if any(name == ref['name'] for name in _SECRET_NOT_FOUND.findall(message)):
            return {'exists': False, 'has_key': False if ref['key'] else None}
        if ref['key'] and (ref['key'], ref['name']) in _KEY_NOT_FOUND.findall(message):
            return {'exists': True, 'has_key': False}
    return None


def missing_config_refs(refs: Iterable[dict[str, Any]], configmaps: Mapping[str, dict[str, Any] | None],
                        unread: Collection[str], messages: Iterable[str]) -> list[dict[str, Any]]:
    """The references of config_references that are missing, as k8s_status_info's config_refs:
    [{kind, name, key, optional, exists, has_key, restorable, source}].

    configmaps: {name: the ConfigMap, None when there is none} as read; unread: names whose read
    failed (exists None: not known); messages: config_error_messages, all that is known of the
    Secrets (never read): one is listed when a message says it or its key is not found.
    has_key is None for a whole-map reference or when not known. restorable: the ConfigMap exists,
    is not immutable, and its last-applied-configuration holds the key (source names it)."""
    messages = list(messages)
    missing = []
    for ref in refs:
        entry = dict(ref, exists=None, has_key=None, restorable=False, source=None)
        if ref['kind'] == 'Secret':
            said = _secret_said(ref, messages)
            if said is None:
                continue
            entry.update(said)
        elif ref['name'] not in unread:
            configmap = configmaps.get(ref['name'])
            if configmap is None:
                entry.update(exists=False, has_key=False if ref['key'] else None)
            elif ref['key'] is None or kc.has_key(configmap, ref['key']):
                continue
            else:
                value, _why = kc.applied_value(configmap, ref['key'])
                restorable = value is not None and not configmap.get('immutable')
                entry.update(exists=True, has_key=False, restorable=restorable,
                             source=kc.FROM_LAST_APPLIED if restorable else None)
        missing.append(entry)
    return missing

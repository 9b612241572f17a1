#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_rollout
short_description: History, undo, restart and status of a Deployment's rollout, as kubectl does them
version_added: 1.0.0
description:
  - The rollout of one Deployment, with the semantics of C(kubectl rollout) (k8s.io/kubectl
    C(pkg/polymorphichelpers)), through the Kubernetes API.
  - The revisions of a Deployment are the ReplicaSets it controls (their C(ownerReferences)), never
    ReplicaSets that merely match its labels, which may belong to another Deployment.
  - O(state=history) returns one entry per revision, oldest first.
  - O(state=undone) rolls back like C(kubectl rollout undo) - to the second-highest revision, or to
    O(to_revision) - by replacing C(spec.template) with the ReplicaSet's (without its
    C(pod-template-hash) label) and the annotations with the ReplicaSet's, the Deployment keeping
    its own bookkeeping ones (C(deployment.kubernetes.io/revision), C(revision-history),
    C(desired-replicas), C(max-replicas), C(kubectl.kubernetes.io/last-applied-configuration)).
    Its other annotations come from the ReplicaSet, which the controller copied from the Deployment
    when it made that revision. Nothing changes when the template already matches the target's. The
    controller gives the restored template a new revision number, max + 1.
  - O(state=restarted) sets the pod template annotation C(kubectl.kubernetes.io/restartedAt) to now,
    like C(kubectl rollout restart), so that every pod is replaced by a rolling update.
  - Both refuse a paused Deployment, as kubectl does.
  - O(state=status) gives the verdict of C(kubectl rollout status). A rollout is done only when the
    controller has observed the latest generation and all replicas are updated, no old replica is
    left and all updated replicas are available. Once the controller has observed the latest
    generation, a Progressing condition with reason C(ProgressDeadlineExceeded) is a failure,
    reported at once with the deadline (C(progressDeadlineSeconds)) and the condition's message.
  - With O(wait), the status is polled every second until done. As C(kubectl rollout status)
    decides, a C(ProgressDeadlineExceeded) condition older than this module's undo or restart fails
    the wait as soon as the controller has observed the change; after an undo onto a ReplicaSet that
    makes no progress the controller never refreshes it, and waiting would only end at
    O(wait_timeout). Until the controller has observed the change, the condition is the replaced
    rollout's, and the wait goes on.
  - When the Deployment has a C(ReplicaFailure) condition, the ReplicaSet of its pod template (its
    newest) is read too. When that ReplicaSet cannot create pods (reason C(FailedCreate)), the wait
    fails at once with C(cannot create pods:) and the API server's refusal, rather than at the
    progress deadline. A refusal by a C(ResourceQuota) (C(exceeded quota)) is the exception while the
    rollout's own pods may still free the quota (pods terminating, or old pods the rolling update
    still replaces), as at each step of a rolling update in a namespace at its quota, which the
    ReplicaSet controller retries once an old pod is gone. Then the wait goes on, and its messages,
    the progress deadline's and the time-out's too, lead with the refusal. A C(ReplicaFailure) of the
    Deployment alone never fails the wait, since the controller also copies an older ReplicaSet's
    there (right after the undo of a deploy whose pods were refused, for one).
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.kubernetes
attributes:
  check_mode:
    support: full
    description: >-
      The change is sent as a server-side dry run (C(dryRun=All)): the API server validates and
      admits it, and RV(after) is what it would store, but nothing is persisted and nothing waits.
  diff_mode:
    support: full
    description: The Deployment's annotations and pod template, before and after.
options:
  name:
    description: Name of the Deployment.
    type: str
    required: true
  namespace:
    description: Namespace of the Deployment.
    type: str
    default: default
  kind:
    description: Kind of the workload. Only Deployments for now; StatefulSets and DaemonSets keep their history in ControllerRevisions.
    type: str
    choices: [Deployment]
    default: Deployment
  state:
    description: What to see or do; see the description.
    type: str
    choices: [history, undone, restarted, status]
    default: status
  to_revision:
    description:
      - For O(state=undone), the revision to roll back to; it must be in RV(history). Default (or
        V(0)), the previous revision, the second-highest one.
    type: int
  if_restarted_before:
    description:
      - For O(state=restarted), restart only when the Deployment was not restarted since this time
        (its C(kubectl.kubernetes.io/restartedAt) annotation is older, or absent), so that "restart
        once per incident" is idempotent. Epoch seconds, C(now-15m) or RFC 3339. Default, always restart.
    type: str
  wait:
    description:
      - Wait until the rollout is done, failing at once on C(ProgressDeadlineExceeded) or on pods
        the newest ReplicaSet cannot create; see the description.
      - Default V(true) for O(state=undone) and O(state=restarted), V(false) for O(state=status).
    type: bool
  wait_timeout:
    description: Seconds to wait for that; the task fails with the last status message when it is not done.
    type: int
    default: 300
notes:
  - Tested with Kubernetes 1.37. Only C(apps/v1) Deployments and ReplicaSets are read and patched,
    which every server since Kubernetes 1.9 serves; older releases than 1.37 are expected to work the
    same way but have not run the real-cluster tests.
  - C(status.terminatingReplicas), which servers report from Kubernetes 1.35 (and which a kubernetes
    Python library older than the field drops; requirements.txt pins 37.0.2), shows the pods still
    terminating. Without it, a rolling update whose first new pod a quota refuses is waited for until
    its progress deadline or O(wait_timeout), its messages leading with the refusal, rather than
    failed at once.
'''

EXAMPLES = r'''
- name: Revisions of the gateway
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
    state: history
  register: rollout

- name: Roll back the bad deploy and wait for the rollout
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
    state: undone
    context: prod-eu

- name: Roll back to a known good revision
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
    state: undone
    to_revision: 12

- name: Restart once per incident, to reset exhausted connection pools
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
    state: restarted
    if_restarted_before: "{{ incident.started_at }}"

- name: Is the rollout done?
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
  register: rollout_status
'''

RETURN = r'''
revision:
  description: The Deployment's revision at the end (after an undo or restart, the new one only once the controller has seen the change, as with O(wait)).
  returned: always
  type: int
  sample: 8
target_revision:
  description: For O(state=undone), the revision rolled back to.
  returned: when state is undone
  type: int
  sample: 6
history:
  description: The revisions, oldest first, from the ReplicaSets the Deployment owns.
  returned: when state is history or undone
  type: list
  elements: dict
  contains:
    revision:
      description: Revision number (C(deployment.kubernetes.io/revision)).
      type: int
    replica_set:
      description: Name of the ReplicaSet.
      type: str
    images:
      description: Images of the pod template's containers.
      type: list
      elements: str
    change_cause:
      description: The C(kubernetes.io/change-cause) annotation, or null.
      type: str
    settings:
      description:
        - What the pod template changes from the revision before, besides the images (C(env NAME), C(resources of
          CONTAINER), C(command), C(args), C(probes), C(envFrom), C(pod spec)); empty for the first revision and for a
          restart (only C(kubectl.kubernetes.io/restartedAt) changed).
      type: list
      elements: str
    created:
      description: Creation time of the ReplicaSet (RFC 3339).
      type: str
    replicas:
      description: Desired replicas of the ReplicaSet (0 for an old revision).
      type: int
    ready_replicas:
      description: Ready pods of the ReplicaSet.
      type: int
    available_replicas:
      description: Available pods of the ReplicaSet.
      type: int
    current:
      description: Whether this is the Deployment's current revision.
      type: bool
  sample:
    - {revision: 6, replica_set: inference-gateway-5d9c7b, images: [registry/gateway:1.4.1], settings: [], change_cause: null,
       created: "2026-11-20T09:12:03+00:00", replicas: 0, ready_replicas: 0, available_replicas: 0, current: false}
before:
  description: The Deployment before the change.
  returned: when state is undone or restarted
  type: dict
  contains:
    revision:
      description: Revision.
      type: int
    images:
      description: Images of the pod template's containers.
      type: list
      elements: str
    template_annotations:
      description: Annotations of the pod template.
      type: dict
after:
  description: The Deployment after the change (in check mode, what the API server would store), as RV(before).
  returned: when state is undone or restarted
  type: dict
status:
  description: The rollout verdict, last polled when waiting.
  returned: when state is not history
  type: dict
  contains:
    done:
      description: Whether the rollout is done under kubectl's rules.
      type: bool
    failed:
      description: Whether it exceeded its progress deadline, or its newest ReplicaSet cannot create its pods.
      type: bool
    message:
      description: kubectl's status message.
      type: str
      sample: 'Waiting for deployment "inference-gateway" rollout to finish: 1 old replicas are pending termination...'
    replicas:
      description: Desired replicas (C(spec.replicas)).
      type: int
    current_replicas:
      description: Pods of every revision (C(status.replicas)).
      type: int
    updated_replicas:
      description: Pods of the current template.
      type: int
    ready_replicas:
      description: Ready pods.
      type: int
    available_replicas:
      description: Available pods.
      type: int
    generation:
      description: The Deployment's C(metadata.generation).
      type: int
    observed_generation:
      description: The generation the controller has acted on.
      type: int
    replica_failure:
      description:
        - The message of the C(ReplicaFailure) condition, the API server's refusal of pods, of the
          newest ReplicaSet when it was read, else of the Deployment; V(null) without one.
      type: str
      sample: 'pods "web-5d9c7b-x2k8p" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=3, limited: pods=3'
msg:
  description: What was done, as kubectl says it.
  returned: always
  type: str
  sample: skipped rollback (current template already matches revision 6)
'''

from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import DEPLOYMENT_ARGS, JSON_PATCH, K8S_ARGS, STRATEGIC_MERGE_PATCH, patch
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader


class Rollout:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.name, self.namespace = self.p['name'], self.p['namespace']
        self.reader = Reader(self.p)
        self.result = {'changed': False}

    # ------------------------------------------------------------------ API calls (plain dicts)

    def deployment(self):
        return self.reader.deployment(self.name, self.namespace)

    def owned_replica_sets(self, deployment):
        return self.reader.owned_replica_sets(deployment)

    def patch(self, body, content_type):
        return patch(self.reader.client, self.reader.timeout, 'deployment', self.name, self.namespace,
                     self.reader.apps.patch_namespaced_deployment, body, content_type, self.module.check_mode)

    # ------------------------------------------------------------------ states

    def run(self):
        deployment = self.deployment()
        state = self.p['state']
        if state == 'history':
            self.result['history'] = kr.history(deployment, self.owned_replica_sets(deployment))
            self.result['msg'] = '%d revisions of deployment %s' % (len(self.result['history']), self.name)
        elif state == 'undone':
            deployment = self.undo(deployment)
        elif state == 'restarted':
            deployment = self.restart(deployment)
        else:
            deployment = self.status(deployment)
        self.result['revision'] = kr.revision(deployment)
        return self.result

    def undo(self, deployment):
        owned = self.owned_replica_sets(deployment)
        target = kr.undo_target(deployment, owned, self.p['to_revision'])
        kr.refuse_paused(deployment, 'roll back')
        target_revision = kr.revision(target)
        self.result.update(history=kr.history(deployment, owned), target_revision=target_revision)
        if kr.templates_match(target, deployment):
            return self.unchanged(deployment, 'skipped rollback (current template already matches revision %d)' % target_revision)
        after = self.patch(kr.undo_patch(deployment, target), JSON_PATCH)
        return self.changed(deployment, after, 'rolled back to revision %d' % target_revision)

    def restart(self, deployment):
        kr.refuse_paused(deployment, 'restart')
        now = datetime.now(timezone.utc)
        since = self.p['if_restarted_before']
        if not kr.restart_needed(deployment, resolve_time(since, now.timestamp()) if since else None):
            return self.unchanged(deployment, 'not restarted: deployment %s was restarted at %s, not before %s'
                                  % (self.name, kr.restarted_at(deployment), since))
        after = self.patch(kr.restart_patch(now), STRATEGIC_MERGE_PATCH)
        return self.changed(deployment, after, 'restarted')

    def status(self, deployment):
        if self.p['wait']:
            return self.wait(None)
        self.result['status'] = kr.status_facts(deployment, None, self.reader.failing_new_replica_set(deployment))
        if self.result['status']['failed']:
            self.fail(self.result['status']['message'])
        self.result['msg'] = self.result['status']['message']
        return deployment

    def unchanged(self, deployment, msg):
        self.result.update(msg=msg, before=kr.summary(deployment), after=kr.summary(deployment))
        if self.p['wait'] is not False and not self.module.check_mode:
            return self.wait(None)
        self.result['status'] = kr.status_facts(deployment)
        return deployment

    def changed(self, before, after, msg):
        self.result.update(changed=True, msg=msg, before=kr.summary(before), after=kr.summary(after))
        if self.module._diff:
            self.result['diff'] = {'before': self.diff_view(before), 'after': self.diff_view(after)}
        if self.p['wait'] is False or self.module.check_mode:
            self.result['status'] = kr.status_facts(after)
            return after
        final = self.wait(before)
        self.result['after'] = kr.summary(final)
        return final

    @staticmethod
    def diff_view(deployment):
        return {'metadata': {'annotations': kr.annotations_of(deployment)}, 'spec': {'template': kr.template(deployment)}}

    def wait(self, before):
        """kr.wait_rollout, with the status last polled in the result, and a failure as the task's.
        before: the Deployment read before this module's change, None without one."""
        polled = {}

        def verdict(deployment):
            polled['replica_set'] = self.reader.failing_new_replica_set(deployment)
            return kr.rollout_status(deployment, before, polled['replica_set'])

        try:
            deployment = kr.wait_rollout(self.deployment, self.p['wait_timeout'], verdict)
        except kr.RolloutError as err:
            self.result['status'] = kr.status_facts(err.deployment, before, polled.get('replica_set'))
            self.fail(str(err))
        self.result['status'] = kr.status_facts(deployment, before, polled.get('replica_set'))
        self.result.setdefault('msg', self.result['status']['message'])
        return deployment

    def fail(self, msg):
        """Fails with what was done so far (changed, before, after, status)."""
        self.result.pop('msg', None)
        raise RunbookError(msg, **self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='status', choices=['history', 'undone', 'restarted', 'status']),
            to_revision=dict(type='int'),
            if_restarted_before=dict(type='str'),
            wait=dict(type='bool'),
            **DEPLOYMENT_ARGS, **K8S_ARGS
        ),
        supports_check_mode=True,
    )
    finish(module, outcome(lambda: run(module)))


def run(module):
    try:
        return Rollout(module).run()
    except ValueError as err:  # a revision or a Deployment the rollout rules refuse
        raise RunbookError('deployment %s in namespace %s: %s' % (module.params['name'], module.params['namespace'], err))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_workload
short_description: Replicas (HPA-aware, bounded), container resources, environment variables and ConfigMap keys of a Deployment
version_added: 1.0.0
description:
  - The Kubernetes mitigations of the High Error Rate runbook, what C(kubectl scale),
    C(kubectl set resources), C(kubectl set env) and C(kubectl edit configmap) followed by
    C(kubectl rollout restart) do, as one idempotent task with check mode and diff.
  - O(replicas) is a count (V(6)) or a change of C(spec.replicas) (V(+2), V(-1)); a result outside
    [O(min_replicas), O(max_replicas)] is refused, never clamped. A relative change applies again
    at every run; use a count for an idempotent task.
  - When a HorizontalPodAutoscaler has the Deployment as its C(scaleTargetRef),
    C(spec.replicas) is left alone (the HPA would undo it); O(replicas) becomes the HPA's
    C(minReplicas), a floor the HPA may scale above. Above its C(maxReplicas) the task fails unless
    O(hpa_raise_max) lets it raise C(maxReplicas) too. Only when the Deployment has 0 replicas (which
    disables its HPA) is C(spec.replicas) set as well.
  - The HPAs are read through C(autoscaling/v2) and, on a server that does not serve it (Kubernetes
    before 1.23 answers 404), through C(autoscaling/v1), whose C(minReplicas) and C(maxReplicas) are
    all that O(replicas) reads and patches. Only O(replicas) reads them; O(resources), O(env) and
    O(configmap_data) need neither the autoscaling API nor the right to list HPAs.
  - O(resources), O(env) and a restart change the pod template, in one strategic-merge patch, so the
    Deployment gets one new revision (RV(creates_revision)). RV(revision_before) is the revision
    that was live before the change, during an incident the bad deploy itself, not a rollback
    target. The revision before the bad deploy is the one recorded once per incident
    (M(sre.runbooks.incident_registry)) or read before any change (M(sre.runbooks.recent_changes_info)
    RV(sre.runbooks.recent_changes_info#module:previous_revision)). A paused Deployment would not roll
    such a change out, so it is refused.
  - O(memory_factor) and O(cpu_factor) multiply the container's current limit (V(2) doubles it, as
    the runbook's "double the memory limit"), rendered as a canonical quantity (V(1536Mi), V(750m));
    the requests stay as they are (see O(memory_factor)). A container without that limit, or a result
    above O(max_memory) or O(max_cpus), is refused, never clamped.
  - A factor is relative, yet the task is idempotent. The limit it multiplied and the limit it set
    are recorded in the annotation C(sre.runbooks/limits-before-factor) (on the Deployment's
    metadata, not its pod template). While the container's limit is still the one set, a factor
    multiplies the recorded limit again, so a second run with the same factor changes nothing and
    another factor is relative to the same original. Once the limit was changed otherwise (a deploy,
    a rollback, O(resources)), the current limit is the one multiplied.
  - O(configmap_data) sets and unsets keys of O(configmap). When keys changed and the pod template
    reads that ConfigMap (env C(valueFrom), C(envFrom), a volume or a projected volume), the pods are
    restarted as C(kubectl rollout restart) does (annotation C(kubectl.kubernetes.io/restartedAt)),
    unless O(restart_on_configmap_change=false).
  - After a change, with O(wait), waits for the rollout as C(kubectl rollout status) does, and under
    an HPA for the HPA to have scaled the Deployment to its new C(minReplicas).
extends_documentation_fragment:
  - sre.runbooks.kubernetes
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Every patch is sent with C(dryRun=All); the server validates it, nothing is persisted, RV(after) is its answer.
  diff_mode:
    support: full
    description: Before and after of the fields that change (replicas, HPA, resources, env, ConfigMap keys).
options:
  name:
    description: Name of the Deployment; its HPA is the one whose C(scaleTargetRef) names it.
    type: str
    required: true
  namespace:
    description: Namespace of the Deployment, its HPA and O(configmap).
    type: str
    default: default
  kind:
    description: Kind of the workload; only Deployments have the revisions RV(revision_before) records.
    type: str
    choices: [Deployment]
    default: Deployment
  replicas:
    description:
      - Replicas as a count (V(6)) or a change of the current C(spec.replicas) (V(+2), V(-1)).
      - Under an HPA, its C(minReplicas); see the description.
    type: str
  min_replicas:
    description: Fewest replicas O(replicas) may give; below, the task fails.
    type: int
    default: 1
  max_replicas:
    description: Most replicas O(replicas) may give, a guardrail against a runaway scale-out; above, the task fails.
    type: int
    default: 10
  hpa_raise_max:
    description: Under an HPA, raise its C(maxReplicas) when O(replicas) is above it, instead of failing.
    type: bool
    default: false
  container:
    description: Container whose O(resources) and O(env) change, and whose values RV(before) and RV(after) show. Default, the first one.
    type: str
  resources:
    description:
      - C(limits) and C(requests), each a mapping of resource name (C(cpu), C(memory), ...) to a
        quantity (V(2000m), V(4Gi)), or V(null) to remove it. Quantities compare by value
        (V(1) is V(1000m)), so an equal value changes nothing.
    type: dict
  memory_factor:
    description:
      - Multiply the container's memory limit by this (above 0), for example V(2) for the runbook's
        "double the memory limit"; see the description for repeated runs.
      - The memory request is left alone, it is what the scheduler reserves, and raising it during
        an incident can leave the new pods unschedulable on a full cluster; a limit below the request
        is refused.
      - Refused when the container has no memory limit (give O(resources) instead) or O(resources)
        sets C(limits.memory) too.
    type: float
  cpu_factor:
    description:
      - Multiply the container's CPU limit by this (above 0), rounded up to the millicore. The CPU
        request is left alone, as for O(memory_factor).
      - Refused when the container has no CPU limit or O(resources) sets C(limits.cpu) too.
    type: float
  max_memory:
    description:
      - Highest memory limit O(memory_factor) may give, a quantity; above it the task fails. A
        guardrail against doubling without end, four times the 1Gi the DhakaCart runbook raises to.
    type: str
    default: 4Gi
  max_cpus:
    description:
      - Highest CPU limit O(cpu_factor) may give, a quantity (V(4), V(4000m)); above it the task fails.
        Four times the 1000m the DhakaCart runbook raises to.
    type: str
    default: '4'
  env:
    description:
      - Environment variables of the container to set (the value, turned into a string; V(true)
        and V(false) as such) or, with V(null), to remove. A variable set from a reference
        (C(valueFrom)) gets the plain value instead.
      - The values are shown in the task's arguments like any other; keep secrets in a Secret the
        container references, or set C(no_log) on the task.
    type: dict
  configmap:
    description: Name of the ConfigMap whose O(configmap_data) keys change.
    type: str
  configmap_data:
    description: Keys of O(configmap) to set (the value, turned into a string) or, with V(null), to remove.
    type: dict
  restart_on_configmap_change:
    description: Restart the pods when O(configmap_data) changed keys of a ConfigMap the pod template reads.
    type: bool
    default: true
  wait:
    description:
      - After a change, wait until the rollout is complete by C(kubectl rollout status) rules
        (C(observedGeneration) caught up, every replica updated and available) and, under an HPA,
        until C(spec.replicas) reached its new C(minReplicas).
      - A C(ProgressDeadlineExceeded) condition fails the task at once, with the deadline
        (C(progressDeadlineSeconds)) and the condition's message, as soon as the controller has
        observed the patched generation, even when the condition is older than the patches, as
        C(kubectl rollout status) decides (a patch back to the template of a ReplicaSet that makes no
        progress leaves it in place). Before that, and after a change of the HPA alone (which bumps no
        generation until the HPA scales), a condition left from before the patches is not theirs.
      - Pods the Deployment's newest ReplicaSet cannot create (its C(ReplicaFailure) condition, read when
        the Deployment has one) fail the task at once with C(cannot create pods:) and the API server's
        refusal, as in M(sre.runbooks.k8s_rollout); a scale-up a C(ResourceQuota) refuses fails then,
        while a rolling update whose old pods may still free the quota is waited for, its messages
        leading with the refusal.
      - When the rollout is not done after O(wait_timeout), the task fails with the last status message.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait; the task fails after that.
    type: int
    default: 300
notes:
  - Tested with Kubernetes 1.37. Deployments are C(apps/v1), served since Kubernetes 1.9. HPAs are
    C(autoscaling/v2) from Kubernetes 1.23; before, scaling falls back to C(autoscaling/v1) (served
    since 1.2), and the other changes never touch the autoscaling API. A server serving neither
    refuses O(replicas) with a message naming both API versions.
  - C(status.terminatingReplicas), reported from Kubernetes 1.35, tells a rolling update's old pods
    still freeing a quota; see M(sre.runbooks.k8s_rollout) for servers without it.
'''

EXAMPLES = r'''
- name: Scale the gateway out to 6 (through its HPA's minReplicas if it has one)
  sre.runbooks.k8s_workload:
    name: dhakacart-backend
    namespace: dhakacart
    replicas: "6"
  register: scaled

- name: Two more replicas, at most 12, raising the HPA's maxReplicas if needed
  sre.runbooks.k8s_workload:
    name: inference-gateway
    replicas: "+2"
    max_replicas: 12
    hpa_raise_max: true

- name: Scale vertically (kubectl set resources --limits=cpu=2000m,memory=4Gi)
  sre.runbooks.k8s_workload:
    name: inference-gateway
    resources:
      limits: {cpu: 2000m, memory: 4Gi}

- name: Double the memory limit (OOM kills); a second run changes nothing
  sre.runbooks.k8s_workload:
    name: dhakacart-backend
    namespace: dhakacart
    container: backend
    memory_factor: 2
    max_memory: 2Gi
  register: raised

# The rollback target is the revision before the bad deploy, read once, before any change: the
# revision_before of a change is the bad deploy itself, and an env change or a restart makes a
# revision, so "the previous revision" of a later read is the bad deploy too. The runbook records it
# in the incident (sre.runbooks.incident_registry), where every later run of the incident reads it.
- name: Find the revision before the bad deploy, before changing anything
  sre.runbooks.recent_changes_info:
    source: kubernetes
    name: inference-gateway
  register: before_mitigation

- name: Disable the failing endpoint's feature flag and open the circuit breaker (one new revision)
  sre.runbooks.k8s_workload:
    name: inference-gateway
    env:
      FEATURE_ENDPOINT_XYZ_ENABLED: false
      CIRCUIT_BREAKER_THRESHOLD: 5
      CIRCUIT_BREAKER_TIMEOUT: 60
  register: flags

- name: Still failing - roll back to the revision before the bad deploy, not to flags.revision_before
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    state: undone
    to_revision: "{{ before_mitigation.previous_revision }}"

- name: Turn the flag off in the ConfigMap; the pods restart to read it
  sre.runbooks.k8s_workload:
    name: inference-gateway
    configmap: inference-gateway-config
    configmap_data:
      FEATURE_ENDPOINT_XYZ_ENABLED: "false"
      OBSOLETE_FLAG: null
'''

RETURN = r'''
before:
  description: The managed fields before the run.
  returned: always
  type: dict
  contains:
    replicas:
      description: C(spec.replicas).
      type: int
    hpa:
      description:
        - The HPA managing the Deployment, C(name), C(min), C(max) and C(current) replicas; V(null)
          without one, and without O(replicas), since only scaling reads the HPAs.
      type: dict
    container:
      description: The container shown.
      type: str
    resources:
      description: Its C(resources), as the API returns them.
      type: dict
    env:
      description:
        - Its variables, name to value; values of names matching TOKEN, SECRET, PASSWORD or KEY
          masked; a variable set from a reference as a mapping whose C(valueFrom) is the kind of
          reference (C(secretKeyRef), C(configMapKeyRef), C(fieldRef)...), never the referenced value.
      type: dict
    configmap:
      description: C(name) and C(data), the O(configmap_data) keys with their values (V(null) when absent, secret-looking ones masked).
      type: dict
      returned: when O(configmap) is given
after:
  description: The same after the run (after the wait when waiting); in check mode, the server's dry-run answer.
  returned: always
  type: dict
revision_before:
  description:
    - The Deployment's revision (C(deployment.kubernetes.io/revision)) before the change, the one that
      was live, during an incident the bad deploy, not a rollback target. V(null) before the
      controller set one.
  returned: always
  type: int
  sample: 7
creates_revision:
  description: Whether the run changes (or in check mode would change) the pod template, creating a new revision.
  returned: always
  type: bool
restart:
  description: Whether the pods are restarted for a ConfigMap change.
  returned: always
  type: bool
configmap_referenced:
  description: Whether the pod template reads O(configmap); V(null) without O(configmap).
  returned: always
  type: bool
factors:
  description:
    - For each limit O(memory_factor) or O(cpu_factor) multiplied (C(memory), C(cpu)), the limit
      multiplied (C(base), the recorded one on a repeated run), the C(factor) and the C(limit) it
      gives. V(null) without a factor.
  returned: always
  type: dict
  sample: {memory: {base: 1Gi, factor: 2, limit: 2Gi}}
target_replicas:
  description: The replicas O(replicas) resolved to; V(null) without O(replicas).
  returned: always
  type: int
patches:
  description:
    - The strategic-merge patches sent (with C(dryRun=All) in check mode), in order, each with C(kind),
      C(name) and C(body); values of secret-looking names masked.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: HorizontalPodAutoscaler
      name: inference-gateway
      body: {spec: {minReplicas: 6}}
    - kind: Deployment
      name: dhakacart-backend
      body:
        metadata: {annotations: {sre.runbooks/limits-before-factor: '{"backend": {"memory": {"base": "512Mi", "set": "1Gi"}}}'}}
        spec: {template: {spec: {containers: [{name: backend, resources: {limits: {memory: 1Gi}}}]}}}
diff:
  description: With C(--diff), before and after of the fields that differ.
  returned: when diff mode is on
  type: dict
'''

from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import workload as kw
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import DEPLOYMENT_ARGS, K8S_ARGS, K8sError, call, patch
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader


class Workload:
    def __init__(self, module):
        self.module, self.p = module, module.params
        self.ns, self.name = self.p['namespace'], self.p['name']
        self.reader = Reader(self.p)
        self.api, self.apps, self.core = self.reader.client, self.reader.apps, self.reader.core
        self.sent = []

    def deployment(self):
        return call(self.api, self.p['request_timeout'], 'get', 'deployment', self.name, self.ns,
                    self.apps.read_namespaced_deployment, self.name, self.ns)

    def patch(self, kind, name, method, body, shown):
        """A strategic-merge patch (a dry run in check mode); `shown` is the body as RV(patches) shows it."""
        answer = patch(self.api, self.p['request_timeout'], kind.lower(), name, self.ns, method, body,
                       check_mode=self.module.check_mode)
        self.sent.append({'kind': kind, 'name': name, 'body': shown})
        return answer

    def run(self):
        p = self.p
        deployment = before = self.deployment()
        # Only scaling reads the HPAs: other changes need neither the autoscaling API nor the right to list them.
        hpas = self.reader.hpas(self.ns) if p['replicas'] is not None else []
        configmap = None
        if p['configmap']:
            configmap = call(self.api, p['request_timeout'], 'get', 'configmap', p['configmap'], self.ns,
                             self.core.read_namespaced_config_map, p['configmap'], self.ns)
        now = kr.restart_stamp(datetime.now(timezone.utc))
        decision = kw.plan(deployment, hpas, configmap, p, now)
        patches, hpa = decision['patches'], decision['hpa']
        shown = kw.masked_patches(patches)
        result = {'before': kw.view(deployment, hpa, configmap, p), 'revision_before': kw.revision(deployment),
                  'patches': self.sent}
        result.update((key, decision[key]) for key in ('creates_revision', 'restart', 'configmap_referenced', 'target_replicas', 'factors'))
        if patches['configmap'] and not decision['restart']:
            self.module.warn('ConfigMap %s changed; its readers keep the old values until they restart (%s)' % (
                p['configmap'], 'restart_on_configmap_change is false' if decision['configmap_referenced']
                else 'Deployment %s does not read it through env, envFrom or a volume' % self.name))
        try:
            if patches['configmap']:
                configmap = self.patch('ConfigMap', p['configmap'], self.core.patch_namespaced_config_map,
                                       patches['configmap'], shown['configmap'])
            if patches['workload']:
                deployment = self.patch('Deployment', self.name, self.apps.patch_namespaced_deployment,
                                        patches['workload'], shown['workload'])
            if patches['hpa']:
                hpa = self.patch('HorizontalPodAutoscaler', hpa['metadata']['name'],
                                 self.reader.autoscaling.patch_namespaced_horizontal_pod_autoscaler, patches['hpa'], shown['hpa'])
            if p['wait'] and not self.module.check_mode and (patches['workload'] or patches['hpa']):
                floor = patches['hpa'].get('spec', {}).get('minReplicas')
                deployment = kr.wait_rollout(self.deployment, p['wait_timeout'], lambda polled: kw.rollout_status(
                    polled, floor, before, self.reader.failing_new_replica_set(polled)))
                if hpa:
                    hpa = kw.find_hpa(self.reader.hpas(self.ns), p['kind'], self.name)
        except (K8sError, kr.RolloutError) as err:
            done = ', '.join('%s %s' % (s['kind'], s['name']) for s in self.sent)
            raise RunbookError('%s%s' % (err, '; already patched: %s' % done if done else ''),
                               changed=bool(self.sent), **result)
        result.update(changed=bool(self.sent), after=kw.view(deployment, hpa, configmap, p))
        if self.module._diff:
            result['diff'] = kw.diff(result['before'], result['after'])
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            replicas=dict(type='str'),
            min_replicas=dict(type='int', default=1),
            max_replicas=dict(type='int', default=10),
            hpa_raise_max=dict(type='bool', default=False),
            container=dict(type='str'),
            resources=dict(type='dict'),
            memory_factor=dict(type='float'),
            cpu_factor=dict(type='float'),
            max_memory=dict(type='str', default='4Gi'),
            max_cpus=dict(type='str', default='4'),
            env=dict(type='dict'),
            configmap=dict(type='str'),
            configmap_data=dict(type='dict'),
            restart_on_configmap_change=dict(type='bool', default=True),
            wait=dict(type='bool', default=True),
            **DEPLOYMENT_ARGS, **K8S_ARGS
        ),
        required_together=[('configmap', 'configmap_data')],
        supports_check_mode=True,
    )
    finish(module, outcome(lambda: run(module)))


def run(module):
    try:
        return Workload(module).run()
    except kw.WorkloadError as err:
        p = module.params
        raise RunbookError('%s %s/%s: %s' % (p['kind'], p['namespace'], p['name'], err))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_status_info
short_description: The "Service Completely Down" checks of a Kubernetes Deployment, in one call
version_added: 1.0.0
description:
  - What C(kubectl get deploy,pods,endpoints,hpa), C(kubectl describe pod),
    C(kubectl get events --field-selector type=Warning) and C(kubectl logs --previous) show during
    an outage, read concurrently and reduced to the facts a diagnosis needs.
  - Reads the Deployment O(name) in O(namespace), then concurrently its pods, the ReplicaSets it
    owns, the Service O(service) and its Endpoints, the namespace's Warning events and the
    HorizontalPodAutoscalers (autoscaling/v2, else autoscaling/v1 before Kubernetes 1.23, whose HPAs
    have no conditions); then the previous log of a crash-looping container.
  - The Deployment's pods are those its ReplicaSets control (the pods listed by its selector whose
    controller C(ownerReference) is one of the ReplicaSets whose controller is the Deployment), as
    the controllers count them, so that the pods of another Deployment whose labels match its
    selector (a canary) are neither counted nor blamed. When its ReplicaSets cannot be read, the
    task warns and takes every pod of the selector.
  - RV(problems) names what keeps the Deployment from serving, one entry per kind with its pods -
    C(CrashLoopBackOff), C(ImagePullBackOff) (also C(ErrImagePull)), C(CreateContainerConfigError),
    C(OOMKilled) (current or last termination), C(Unschedulable) (a Pending pod whose
    C(PodScheduled) condition is False with reason C(Unschedulable), or with a C(FailedScheduling)
    event; the message is the scheduler's, such as C(0/3 nodes are available - Insufficient memory)),
    C(ReplicaFailure) (a C(ReplicaFailure) condition of the Deployment or of one of its
    ReplicaSets - pods could not be created, for example C(pods "x" is forbidden - exceeded quota)
    from a ResourceQuota, or an admission webhook's refusal - named before the
    C(ProgressDeadlineExceeded) it causes), C(ProgressDeadlineExceeded) (the Deployment's
    Progressing condition), C(NoReadyEndpoints) (the Service has no ready address),
    C(NoEndpointsObject) (the Service exists but has no Endpoints object - it has no selector, or
    the endpoints controller has not made one - so no traffic reaches the pods through it) and
    C(NotReady) (running containers whose readiness fails).
  - When a pod is in C(CreateContainerConfigError), reads each ConfigMap that the pod template
    references (env C(configMapKeyRef), C(envFrom) C(configMapRef), configMap and projected volumes)
    and lists in RV(config_refs) the references that are missing, with whether the ConfigMap's
    C(kubectl.kubernetes.io/last-applied-configuration) still holds a missing key, so that
    M(sre.runbooks.k8s_config_key) can put it back. Never a value. Secrets are never read; one is
    listed when a pod's message says it or its key is not found. Without such a pod, no extra call.
  - Fails with a clear message when the Deployment does not exist, the cluster cannot be reached or
    the pods cannot be listed; the other reads failing only warn.
  - Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.kubernetes
options:
  name:
    description: Name of the Deployment.
    type: str
    required: true
  namespace:
    description: Namespace of the Deployment, its pods and Service.
    type: str
    default: default
  service:
    description: Name of the Service read, with its endpoints; default O(name).
    type: str
  events_since:
    description: Warning events last seen within this duration back from now, such as C(1h) or C(30m).
    type: str
    default: 1h
  tail:
    description: Lines of the crashing container's previous log returned in RV(logs); V(0) reads none.
    type: int
    default: 50
'''

EXAMPLES = r'''
- name: Why is the gateway down?
  sre.runbooks.k8s_status_info:
    name: inference-gateway
    namespace: serving
    context: prod-eu
  register: k8s

- name: Say it
  ansible.builtin.debug:
    msg: "{{ k8s.summary }}"

- name: Roll back an image that cannot be pulled
  sre.runbooks.k8s_rollout:
    name: inference-gateway
    namespace: serving
    state: undone
  when: k8s.problems | selectattr('kind', 'equalto', 'ImagePullBackOff') | list | length > 0

- name: Put back the ConfigMap keys the pods wait for, as last applied
  sre.runbooks.k8s_config_key:
    name: "{{ item.name }}"
    namespace: serving
    key: "{{ item.key }}"
    context: prod-eu
  loop: "{{ k8s.config_refs | selectattr('restorable') | list }}"
'''

RETURN = r'''
deployment:
  description: The Deployment.
  returned: always
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    namespace:
      description: Its namespace.
      type: str
    replicas:
      description: Desired replicas (C(spec.replicas)).
      type: int
    ready_replicas:
      description: Ready pods.
      type: int
    available_replicas:
      description: Available pods.
      type: int
    updated_replicas:
      description: Pods of the current template.
      type: int
    paused:
      description: Whether its rollout is paused.
      type: bool
    revision:
      description: Its revision (C(deployment.kubernetes.io/revision)).
      type: int
    images:
      description: Images of its pod template's containers.
      type: list
      elements: str
    conditions:
      description: Its conditions (C(Available), C(Progressing), C(ReplicaFailure)), each with type, status, reason and message.
      type: list
      elements: dict
  sample:
    name: inference-gateway
    namespace: serving
    replicas: 3
    ready_replicas: 0
    available_replicas: 0
    updated_replicas: 3
    paused: false
    revision: 8
    images: [registry.example/inference-gateway:v1.2.3]
    conditions: [{type: Available, status: 'False', reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}]
pods:
  description: The pods of the Deployment (those its ReplicaSets control), by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Pod name.
      type: str
    phase:
      description: V(Pending), V(Running), V(Succeeded), V(Failed) or V(Unknown).
      type: str
    ready:
      description: Whether the pod is ready (its C(Ready) condition).
      type: bool
    restarts:
      description: Restarts of its containers.
      type: int
    node:
      description: The node it runs on, V(null) when not scheduled.
      type: str
    waiting_reason:
      description: Why a container waits, for example V(CrashLoopBackOff) or V(ImagePullBackOff); V(null) when none does.
      type: str
    waiting_message:
      description: The message of that wait.
      type: str
    last_terminated_reason:
      description: Reason of a container's last termination, for example V(OOMKilled), V(Error).
      type: str
    last_exit_code:
      description: Its exit code (137 for a SIGKILL such as the OOM killer's).
      type: int
    started_at:
      description: When the running container (else the pod) started, RFC 3339.
      type: str
endpoints:
  description: The Service O(service) and its Endpoints.
  returned: always
  type: dict
  contains:
    found:
      description: Whether the Service exists.
      type: bool
    endpoints_found:
      description: >-
        Whether its Endpoints object exists. V(false) with RV(endpoints.found) V(true): a Service
        without a selector (nobody creates its Endpoints) or whose Endpoints the endpoints
        controller has not made; RV(problems) then has C(NoEndpointsObject).
      type: bool
    selector:
      description: >-
        Whether the Service has a selector; V(null) without a Service, or when the Service could
        not be read but its Endpoints could (it then exists).
      type: bool
    service:
      description: The Service.
      type: str
    ready:
      description: Ready addresses.
      type: int
    not_ready:
      description: Addresses not ready (failing readiness).
      type: int
  sample: {found: true, endpoints_found: true, selector: true, service: inference-gateway, ready: 0, not_ready: 3}
events:
  description: Warning events of the Deployment, its ReplicaSets and pods, last seen within O(events_since), newest first.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: V(Warning).
      type: str
    reason:
      description: For example V(BackOff), V(Failed), V(FailedScheduling), V(Unhealthy).
      type: str
    object:
      description: The object, as C(Pod/inference-gateway-7d4b9c8f6d-x2k4p).
      type: str
    message:
      description: The event's message.
      type: str
    count:
      description: How many times it happened.
      type: int
    last_seen:
      description: When it was last seen, RFC 3339 UTC.
      type: str
hpa:
  description: The HorizontalPodAutoscaler whose C(scaleTargetRef) names the Deployment, V(null) without one.
  returned: always
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    min_replicas:
      description: C(spec.minReplicas).
      type: int
    max_replicas:
      description: C(spec.maxReplicas).
      type: int
    current_replicas:
      description: C(status.currentReplicas).
      type: int
    desired_replicas:
      description: C(status.desiredReplicas).
      type: int
    at_max:
      description: Whether the current or desired replicas reached C(maxReplicas).
      type: bool
    conditions:
      description: Its conditions, each with type, status, reason and message.
      type: list
      elements: dict
problems:
  description: What keeps the Deployment from serving, one entry per kind, in the order of the description.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: >-
        V(CrashLoopBackOff), V(ImagePullBackOff), V(CreateContainerConfigError), V(OOMKilled),
        V(Unschedulable), V(ReplicaFailure), V(ProgressDeadlineExceeded), V(NoReadyEndpoints),
        V(NoEndpointsObject) or V(NotReady).
      type: str
    pods:
      description: The pods concerned (empty for the Deployment's, its ReplicaSets' and the Service's problems).
      type: list
      elements: str
    message:
      description: >-
        What the cluster says, for example the scheduler's C(0/3 nodes are available) message, or
        for C(ReplicaFailure) why pods could not be created (the condition's message).
      type: str
  sample:
    - {kind: CrashLoopBackOff, pods: [inference-gateway-7d4b9c8f6d-x2k4p],
       message: 'container gateway keeps crashing (5 restarts), last exit OOMKilled code 137'}
    - {kind: OOMKilled, pods: [inference-gateway-7d4b9c8f6d-x2k4p], message: container gateway was OOM-killed (memory limit 512Mi)}
oom:
  description: OOM kills among the containers' current or last terminations.
  returned: always
  type: dict
  contains:
    oom_killed:
      description: Whether a container was OOM-killed.
      type: bool
    count:
      description: How many containers were.
      type: int
config_refs:
  description:
    - The ConfigMap and Secret references of the pod template that are missing, when a pod is in
      C(CreateContainerConfigError); empty otherwise (nothing is read then). Never a value.
    - A ConfigMap that could not be read (RBAC) is a warning, and its references are listed with
      C(exists) V(null).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(ConfigMap) or V(Secret).
      type: str
    name:
      description: Its name.
      type: str
    key:
      description: The key referenced; V(null) for a reference of the whole object (C(envFrom), a volume without C(items)).
      type: str
    optional:
      description: Whether every reference to it is C(optional) (the kubelet then starts the container without it).
      type: bool
    exists:
      description:
        - Whether the ConfigMap or Secret exists; V(null) when not known (a ConfigMap that could not
          be read). A Secret is listed only when a pod's message says it or its key is not found.
      type: bool
    has_key:
      description: Whether it holds the key; V(null) for a whole-object reference or when not known.
      type: bool
    restorable:
      description:
        - Whether M(sre.runbooks.k8s_config_key) can put the key back from the ConfigMap's
          C(kubectl.kubernetes.io/last-applied-configuration) annotation - the ConfigMap exists, is not
          immutable, and the annotation parses and holds the key. Always V(false) for a Secret.
      type: bool
    source:
      description: Where a restorable key's value is, V(last-applied-configuration); V(null) when not restorable.
      type: str
  sample:
    - {kind: ConfigMap, name: inference-gateway-config, key: MODEL_URL, optional: false, exists: true,
       has_key: false, restorable: true, source: last-applied-configuration}
    - {kind: Secret, name: db-credentials, key: null, optional: false, exists: false, has_key: null,
       restorable: false, source: null}
logs:
  description: >-
    The last O(tail) lines of the previous instance of a crash-looping container (the first pod
    with a container in C(CrashLoopBackOff), else one that restarted); empty when none crashes.
  returned: always
  type: list
  elements: str
summary:
  description: One line.
  returned: always
  type: str
  sample: 'deployment inference-gateway in serving: 0/3 replicas ready; problems: CrashLoopBackOff (3 pods), OOMKilled (3 pods),
    NoReadyEndpoints (Service inference-gateway has no ready endpoint (3 not ready): every request to it fails);
    Service inference-gateway: 0 ready endpoints, 3 not ready'
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import k8s_status_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: crash_loop_watch_info
short_description: Watch a crash-looping service until every replica stays ready with no restart for a stable window
version_added: 1.2.0
description:
  - The "verify" step of the Pod Crash Loop runbook after a mitigation (a rollback, a raised memory
    limit, a restored configuration key, a restart). Every O(interval) it reads the service's
    replicas and returns as soon as every one of them has stayed running and ready, with no
    container restarted and none waiting, for O(stable_for) (recovered), or when O(deadline) has
    passed (not recovered; the caller tries the next action or escalates).
  - With O(platform=kubernetes) it reads the Deployment O(name) in O(namespace), then concurrently its
    pods and its ReplicaSets. The replicas are the pods those own (not those of another Deployment
    whose labels match its selector), less the pods being deleted. The desired count is the
    Deployment's C(spec.replicas); a pod counts as ready by its C(Ready) condition; a container
    waiting (C(CrashLoopBackOff), C(CreateContainerConfigError), C(ImagePullBackOff),
    C(ErrImagePull), C(ContainerCreating)...) breaks the stable stretch. It runs wherever the
    Kubernetes API is reached, normally the controller.
  - With O(platform=compose) it reads, through the Docker Engine API of the host the module runs on
    (the inventory host's docker host, as M(sre.runbooks.compose_service_info)), the service's
    containers (one-off C(run) containers excluded), each inspected, and its C(oom) events since the
    watch began. The desired count is the number of containers; a container counts as ready when
    running and, with a health check, healthy; the engine's C(restarting) state (its back-off between
    two restarts) breaks the stable stretch.
  - Restarts are counted per replica (a pod's is the sum of its containers' C(restartCount), a
    container's is the engine's C(RestartCount)), against the same replica's count when first seen;
    a replica that appears during the watch (a rollout's new pod, a recreated container) counts all
    its restarts, one that goes away is not a restart, and a count reset by a manual start counts
    again from zero. A restart between two reads breaks the stable stretch.
  - A read that fails (the API does not answer, a timeout, a refusal) is a sample not measured, which
    breaks the stable stretch; the watch goes on, reports the errors and never fails for them. Tells
    "did not recover" from "could not tell" (RV(verdict)) - V(not_measured) when, at the deadline,
    the reads of the last O(stable_for) failed and none of those that answered saw the crash loop,
    or none answered at all.
  - Fails at once when the first read that answers shows no such Deployment, or no container of the
    compose service (or the service in several projects and O(project) not given), naming it and
    what to check.
  - Each API call has its timeout (O(request_timeout), O(docker_timeout)). One task however long the
    watch, not a task per poll. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.kubernetes
  - sre.runbooks.docker
requirements:
  - For O(platform=compose), access to the Docker Engine API on the host the module runs on.
options:
  platform:
    description:
      - V(kubernetes) watches the Deployment O(name) through the Kubernetes API (the connection
        options O(kubeconfig), O(context), O(host), O(api_key), O(ca_cert), O(validate_certs),
        O(in_cluster), O(request_timeout)).
      - V(compose) watches the compose service O(service) through the Docker Engine API at
        O(docker_host).
    type: str
    choices: [kubernetes, compose]
    required: true
  name:
    description: The Deployment (O(platform=kubernetes)); default O(service).
    type: str
  namespace:
    description: Namespace of the Deployment and its pods (O(platform=kubernetes)).
    type: str
    default: default
  service:
    description:
      - Compose service name (label C(com.docker.compose.service)); required with O(platform=compose).
      - With O(platform=kubernetes), the Deployment when O(name) is not given.
    type: str
  project:
    description:
      - Compose project name (O(platform=compose)). Default, the project of the service's containers
        when exactly one project has such a service.
    type: str
  stable_for:
    description:
      - How long every replica must stay ready with no restart, a duration such as C(2m). At most O(deadline).
      - Longer than the back-off between two crashes (10 s, doubling up to 5 minutes on Kubernetes),
        or a crash loop between two restarts can look stable.
    type: str
    default: 2m
  deadline:
    description: How long to watch before giving up.
    type: str
    default: 10m
  interval:
    description: Time between two reads.
    type: str
    default: 10s
'''

EXAMPLES = r'''
- name: After the rollback, wait until the gateway's pods stay ready with no restart for 2 minutes, 10 at most
  sre.runbooks.crash_loop_watch_info:
    platform: kubernetes
    name: inference-gateway
    namespace: serving
    context: prod-eu
  register: crash_loop
  delegate_to: localhost

- name: On the docker host of the inventory host, the compose service's containers
  sre.runbooks.crash_loop_watch_info:
    platform: compose
    service: inference-gateway
    project: sre-demo
    stable_for: 1m
    deadline: 5m
  register: crash_loop

- name: Escalate when it did not stop, or say it could not be verified
  ansible.builtin.debug:
    msg: "{{ crash_loop.message }}"
  when: not crash_loop.recovered
'''

RETURN = r'''
recovered:
  description: True when every replica stayed ready with no restart for O(stable_for) before the deadline.
  returned: always
  type: bool
verdict:
  description:
    - V(recovered); V(not_recovered) when the reads show the crash loop did not stop in time;
      V(not_measured) when the recent reads failed, so recovery is neither confirmed nor denied.
  returned: always
  type: str
  sample: not_recovered
message:
  description: The outcome in one sentence, with its figures.
  returned: always
  type: str
  sample: 'deployment gateway in namespace serving: 3 restarts during the watch (last: OOMKilled), 1/2 ready
    (CrashLoopBackOff) at the deadline; stable for 0 s of the 120 s needed'
platform:
  description: O(platform).
  returned: always
  type: str
target:
  description: What was watched, in words.
  returned: always
  type: str
  sample: compose service inference-gateway in project sre-demo
ready:
  description: Replicas ready at the last read that answered, V(null) when none did.
  returned: always
  type: int
desired:
  description:
    - Replicas wanted at the last read that answered (the Deployment's C(spec.replicas), or the
      compose service's containers), V(null) when none did.
  returned: always
  type: int
restarts_during:
  description: Restarts of the replicas during the watch, each counted against its own count when first seen.
  returned: always
  type: int
waiting:
  description: Why containers were waiting at the last read that answered (C(CrashLoopBackOff), C(restarting)...), one entry per container.
  returned: always
  type: list
  elements: str
last_exit:
  description:
    - The newest termination of a container at the last read that answered, C(OOMKilled), C(exit code 1)
      or the runtime's reason; V(null) when none is known.
  returned: always
  type: str
oom_killed:
  description: Whether a container was OOM-killed during the watch.
  returned: always
  type: bool
stable_seconds:
  description: How long every replica has been ready with no restart, at the last read.
  returned: always
  type: float
trend:
  description: V(decreasing), V(increasing), V(flat) or V(unknown), the replicas not ready at the first read against the last.
  returned: always
  type: str
measured:
  description: True when the last read answered.
  returned: always
  type: bool
unmeasured_reason:
  description: Why the last read failed, in short; V(null) when it answered.
  returned: always
  type: str
failed_samples:
  description: How many reads failed.
  returned: always
  type: int
query_errors:
  description: The error of each read that failed, one message each (the watch went on).
  returned: always
  type: list
  elements: str
samples:
  description: Every read, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: Epoch seconds.
      type: float
    time_iso:
      description: RFC 3339 UTC.
      type: str
    measured:
      description: False when the read failed.
      type: bool
    ready:
      description: Replicas ready, V(null) when the read failed.
      type: int
    desired:
      description: Replicas wanted, V(null) when the read failed.
      type: int
    restarts:
      description: The restart counts of the current replicas added up, V(null) when the read failed.
      type: int
    restarts_during:
      description: Restarts since the watch began, counted per replica, V(null) when the read failed.
      type: int
    waiting:
      description: Why containers were waiting.
      type: list
      elements: str
    oom_killed:
      description: Whether an OOM kill since the watch began was seen.
      type: bool
    error:
      description: Why the read failed, in short; V(null) when it answered.
      type: str
started_at:
  description: When the watch began, RFC 3339 UTC.
  returned: always
  type: str
ended_at:
  description: When it ended, RFC 3339 UTC.
  returned: always
  type: str
elapsed_seconds:
  description: How long the watch took.
  returned: always
  type: float
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import crash_loop_watch_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

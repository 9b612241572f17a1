#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: recent_changes_info
short_description: Recent deploys and git commits around a service, with their times
version_added: 1.0.0
description:
  - On a docker host, lists the compose service's containers with image, image id and creation
    time, and its deploys (container creations, from the Docker Engine's event history) with the
    image each one replaced, so that the previous image is known when the history shows it.
  - In git checkouts, lists the commits since O(since), optionally only those touching some paths,
    as the runbook's C(git log --since="1 hour ago" -- config/).
  - Every change has a time; given O(onset), each says how many seconds before the errors began it
    happened (negative when it came after, so it cannot be their cause).
  - With O(source=kubernetes), the rollout history of the Deployment O(name) (default O(service))
    in O(namespace) instead - one deploy per revision, from the ReplicaSets the Deployment owns (their
    C(ownerReferences), never those of another Deployment with overlapping labels), each with its
    image, the image of the revision before, its C(kubernetes.io/change-cause) and its ReplicaSet's
    creation time. RV(current_revision) and RV(previous_revision) (the revision
    C(kubectl rollout undo) would go to now) let the incident record the rollback target before any
    mitigation adds revisions. Runs anywhere that reaches the Kubernetes API.
  - With O(source=docker), runs on the docker host. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.docker
  - sre.runbooks.kubernetes
requirements:
  - git on the host, only for O(git)
options:
  source:
    description:
      - Where the deploys are. V(docker) reads the containers and events of the compose O(service)
        on the docker host; V(kubernetes) the rollout history of the Deployment O(name) through the
        Kubernetes API (options O(kubeconfig), O(context), O(host), O(api_key), O(ca_cert),
        O(in_cluster), O(request_timeout)).
      - O(git) is read with either.
    type: str
    choices: [docker, kubernetes]
    default: docker
  service:
    description:
      - Compose service name (label C(com.docker.compose.service)). With O(source=kubernetes), the
        Deployment when O(name) is not given.
    type: str
  name:
    description: The Deployment, with O(source=kubernetes); default O(service).
    type: str
  namespace:
    description: Namespace of the Deployment, with O(source=kubernetes).
    type: str
    default: default
  compose_project:
    description: Compose project name, to tell apart services of the same name in several projects.
    type: str
  since:
    description: Start of the period; a duration back from now (C(1h)), C(now-1h), epoch or RFC 3339.
    type: str
    default: 1h
  history:
    description: How far back the Docker event history is read to find the previous image (O(source=docker)).
    type: str
    default: 24h
  onset:
    description: When the errors began (epoch seconds or RFC 3339), to place each change before or after.
    type: str
  git:
    description: Git checkouts to read commits from.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Directory of the checkout on the host.
        type: path
        required: true
      paths:
        description: Only commits touching these paths (configuration changes), for example C(config/).
        type: list
        elements: str
        default: []
'''

EXAMPLES = r'''
- name: Deploys of the gateway and configuration commits of the last hour
  sre.runbooks.recent_changes_info:
    service: inference-gateway
    compose_project: sre-demo
    since: 1h
    onset: "{{ errors.onset }}"
    git:
      - path: /srv/inference-gateway
        paths: [config/]
  register: changes

- name: The rollout history of the DhakaCart backend, and the revision a rollback would restore
  sre.runbooks.recent_changes_info:
    source: kubernetes
    context: dhakacart-prod
    namespace: dhakacart
    name: dhakacart-backend
    onset: "{{ errors.onset }}"
  register: changes

- name: Record the rollback target before any mitigation adds revisions
  ansible.builtin.set_fact:
    rollback_to: "{{ changes.previous_revision }}"

- name: The change nearest before the errors
  ansible.builtin.debug:
    msg: "{{ changes.changes | selectattr('seconds_before_onset', 'ge', 0) | first }}"
'''

RETURN = r'''
changes:
  description: Deploys and commits since O(since), newest first.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(deploy), V(commit), or V(config) for commits under O(git[].paths).
      type: str
    time:
      description: Epoch seconds.
      type: float
    time_iso:
      description: RFC 3339 UTC.
      type: str
    summary:
      description: One line, for example C(image sre-demo/inference-gateway:v1.2.2 -> ...:v1.2.3).
      type: str
    seconds_before_onset:
      description: O(onset) minus the change time; negative when the change came after the onset.
      type: float
    image:
      description: Deploys only; the image deployed.
      type: str
    previous_image:
      description: Deploys only; the image it replaced, when the history shows it.
      type: str
    revision:
      description: Kubernetes deploys only; the revision (C(deployment.kubernetes.io/revision)).
      type: int
    replica_set:
      description: Kubernetes deploys only; the ReplicaSet of the revision.
      type: str
    change_cause:
      description: Kubernetes deploys only; its C(kubernetes.io/change-cause) annotation, or V(null).
      type: str
    settings:
      description:
        - Kubernetes deploys only; the settings the revision's pod template changed (C(env NAME), C(resources of
          CONTAINER)...). A revision with the same image and no settings changed is a restart, not a change.
      type: list
      elements: str
    commit:
      description: Commits only; the commit id.
      type: str
containers:
  description: The service's containers now.
  returned: when O(service) is given with O(source=docker)
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    id:
      description: Container id.
      type: str
    image:
      description: Image reference.
      type: str
    image_id:
      description: Image id (C(sha256:...)).
      type: str
    state:
      description: C(running), C(exited), ...
      type: str
    created:
      description: Creation time, RFC 3339.
      type: str
    started_at:
      description: Last start time, RFC 3339.
      type: str
    restart_count:
      description: Restarts by the engine.
      type: int
current_image:
  description: >-
    Image of the newest container of the service; with O(source=kubernetes), the images of the
    Deployment's pod template (joined with C(, ) when it has several containers).
  returned: when O(service) or O(name) is given
  type: str
previous_image:
  description: >-
    The image the service ran before the current one, V(null) when the history does not show it;
    with O(source=kubernetes), the images of RV(previous_revision).
  returned: when O(service) or O(name) is given
  type: str
current_revision:
  description: The Deployment's revision now.
  returned: when O(source=kubernetes)
  type: int
  sample: 8
previous_revision:
  description: >-
    The revision C(kubectl rollout undo) would go to now (the second-highest of the owned
    ReplicaSets), V(null) when there is none.
  returned: when O(source=kubernetes)
  type: int
  sample: 7
history:
  description: The revisions, oldest first, as M(sre.runbooks.k8s_rollout) returns them with O(sre.runbooks.k8s_rollout#module:state=history).
  returned: when O(source=kubernetes)
  type: list
  elements: dict
deployment:
  description: The Deployment read.
  returned: when O(source=kubernetes)
  type: str
namespace:
  description: Its namespace.
  returned: when O(source=kubernetes)
  type: str
last_deploy:
  description: The most recent deploy in the period, V(null) if none.
  returned: always
  type: dict
since:
  description: Start of the period, epoch seconds.
  returned: always
  type: float
since_iso:
  description: RV(since) as RFC 3339 UTC.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import recent_changes_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

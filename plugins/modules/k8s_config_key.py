#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_config_key
short_description: Put a missing ConfigMap key back, as last applied or as given
version_added: 1.2.0
description:
  - The Pod Crash Loop runbook's "restore a missing ConfigMap key". Pods whose container reads a
    ConfigMap key that was removed (env C(configMapKeyRef), not C(optional)) wait in
    C(CreateContainerConfigError) (C(couldn't find key K in ConfigMap ns/name));
    M(sre.runbooks.k8s_status_info) lists such keys in
    RV(sre.runbooks.k8s_status_info#module:config_refs).
  - With O(source=last_applied), the value is the one the ConfigMap's own
    C(kubectl.kubernetes.io/last-applied-configuration) annotation holds. C(kubectl apply) writes
    it; C(kubectl edit), C(kubectl patch) and C(kubectl replace) leave it as it was, so it still
    holds a key they removed. With O(source=value), the value is O(value), given by the operator.
  - A key that is present is left alone, whatever its value (C(changed=false)); with
    O(source=value) and another value present, RV(message) says so. This restores, it never
    overwrites; M(sre.runbooks.k8s_workload) O(sre.runbooks.k8s_workload#module:configmap_data)
    changes a value.
  - An absent key is added with a JSON merge patch of C(data.<key>) alone, never a replacement of
    the ConfigMap, with its C(metadata.resourceVersion) as a precondition - an edit made since the
    read makes the API server refuse the patch (HTTP 409), and the task fails without losing it.
  - Refused, with what to check, when the ConfigMap does not exist (it is never created), is
    immutable, or with O(source=last_applied) has no annotation, one that does not parse, or one
    without the key.
  - It restarts nothing. The kubelet retries a container in C(CreateContainerConfigError) by itself
    (on its next pod sync, within seconds), so the pods waiting for the key start; running pods
    are left as they are.
  - A value is never returned; the key is shown by its presence, and the sha256 and length of its value.
extends_documentation_fragment:
  - sre.runbooks.kubernetes
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: The patch is sent with C(dryRun=All); the server checks it, nothing is persisted; RV(message) says what would change.
  diff_mode:
    support: full
    description: The key before and after, as RV(before) and RV(after) (presence, sha256 and length, never the value).
options:
  name:
    description: Name of the ConfigMap.
    type: str
    required: true
  namespace:
    description: Namespace of the ConfigMap.
    type: str
    default: default
  key:
    description: The key of C(data) to put back.
    type: str
    required: true
  state:
    description: V(restored), the key is in the ConfigMap (the only state).
    type: str
    choices: [restored]
    default: restored
  source:
    description:
      - Where the value comes from when the key is absent. V(last_applied), the ConfigMap's
        C(kubectl.kubernetes.io/last-applied-configuration) annotation; V(value), O(value).
    type: str
    choices: [last_applied, value]
    default: last_applied
  value:
    description:
      - The value to put back, with O(source=value) (required then, refused otherwise).
      - It shows in the task's arguments like any other; a ConfigMap is no place for a secret, and C(no_log) on the task hides it.
    type: str
notes:
  - Tested with Kubernetes 1.37. ConfigMaps are C(v1); C(dryRun) is served since Kubernetes 1.18.
'''

EXAMPLES = r'''
- name: Why are the pods not starting?
  sre.runbooks.k8s_status_info:
    name: inference-gateway
    namespace: serving
  register: k8s

- name: Put back the keys the pods wait for, as last applied
  sre.runbooks.k8s_config_key:
    name: "{{ item.name }}"
    namespace: serving
    key: "{{ item.key }}"
  loop: "{{ k8s.config_refs | selectattr('restorable') | list }}"

- name: Put back a key from a value the operator gives (a ConfigMap made with kubectl create)
  sre.runbooks.k8s_config_key:
    name: inference-gateway-config
    namespace: serving
    key: MODEL_URL
    source: value
    value: http://model-service:8000
'''

RETURN = r'''
before:
  description: The key before the run.
  returned: always
  type: dict
  contains:
    key:
      description: The key.
      type: str
    state:
      description: V(present) or V(absent).
      type: str
    sha256:
      description: The sha256 of its value (UTF-8), hexadecimal; V(null) when absent.
      type: str
    length:
      description: The length of its value, in characters; V(null) when absent.
      type: int
  sample: {key: MODEL_URL, state: absent, sha256: null, length: null}
after:
  description: The same after the run; in check mode, the server's dry-run answer.
  returned: always
  type: dict
  sample: {key: MODEL_URL, state: present, sha256: 3f0a1e4b7c9d2e5f8a1b4c7d0e3f6a9b2c5d8e1f4a7b0c3d6e9f2a5b8c1d4e7f, length: 25}
source:
  description: >-
    Where the restored value came from, V(last-applied-configuration) or V(value); V(null) when
    nothing was restored.
  returned: always
  type: str
  sample: last-applied-configuration
message:
  description: What was done, or in check mode what would be, or why nothing was.
  returned: always
  type: str
  sample: >-
    restored key MODEL_URL of ConfigMap serving/inference-gateway-config from its
    kubectl.kubernetes.io/last-applied-configuration annotation (25 characters); the kubelet starts
    the pods waiting for it on its next retry
diff:
  description: RV(before) and RV(after), shown with C(--diff).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import k8s_config_key as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

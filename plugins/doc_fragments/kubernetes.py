# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the modules that speak to a Kubernetes API server (module_utils/k8s/client.py).
    DOCUMENTATION = r'''
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.kubernetes
    description: Use C(group/sre.runbooks.kubernetes) in C(module_defaults) to set the cluster once.
options:
  kubeconfig:
    description:
      - Kubeconfig file to read the cluster, user and context from.
      - With none of O(kubeconfig), O(host) and O(in_cluster), the files in C($KUBECONFIG), else
        C(~/.kube/config), as kubectl reads them.
    type: path
  context:
    description:
      - Context of the kubeconfig to use; its C(current-context) when omitted.
    type: str
  host:
    description:
      - URL of the API server, for example C(https://10.0.0.1:6443). Replaces the kubeconfig, so
        O(kubeconfig) and O(context) cannot be set with it.
      - Defaults to C($K8S_AUTH_HOST), which AWX's OpenShift or Kubernetes API Bearer Token credential sets.
    type: str
  api_key:
    description:
      - Bearer token sent to O(host), for example a service account token. Never shown in output.
      - Requires O(host); with a kubeconfig, its user gives the credentials.
      - Defaults to C($K8S_AUTH_API_KEY).
    type: str
  ca_cert:
    description:
      - CA bundle used to verify the API server's certificate, instead of the kubeconfig's or the
        service account's.
      - Defaults to C($K8S_AUTH_SSL_CA_CERT).
    type: path
  validate_certs:
    description:
      - Verify the API server's TLS certificate. Turn off only for a lab.
      - V(false) turns verification off even when the kubeconfig has a CA; V(true) keeps the
        kubeconfig's own C(insecure-skip-tls-verify).
      - Defaults to C($K8S_AUTH_VERIFY_SSL) when it is set.
    type: bool
    default: true
  in_cluster:
    description:
      - Use the service account of the pod the module runs in (its token, CA and the
        C(KUBERNETES_SERVICE_HOST) the kubelet sets). Cannot be set with O(kubeconfig), O(context) or O(host).
    type: bool
    default: false
  request_timeout:
    description: Seconds to wait for each answer of the API server. Every call has one.
    type: float
    default: 10
requirements:
  - kubernetes (the Python client) on the host the module runs on, normally the controller.
'''

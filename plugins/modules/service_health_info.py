#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: service_health_info
short_description: Check many health URLs at once and extract dependency states
version_added: 1.0.0
description:
  - Calls every URL in O(checks) concurrently, each with its own timeout, and returns its status
    code, latency and body (parsed when JSON).
  - A JMESPath O(checks[].query) extracts part of a JSON body, such as the C(dependencies) of a
    C(/ready) answer.
  - A check whose O(checks[].url) is a path (starts with C(/)) goes to the Kubernetes Service of
    O(proxy) through the API server's service proxy,
    C(GET /api/v1/namespaces/{ns}/services/{scheme:}{name}:{port}/proxy{path}), with the
    credentials of the Kubernetes options (O(kubeconfig), O(context), O(host), O(api_key),
    O(ca_cert), O(in_cluster)) - the C(kubectl exec ... curl) of the runbooks without exec rights
    into a pod, from wherever the API server is reached. The proxy picks one ready endpoint of the
    Service; with none, the API server answers 503 itself, and RV(checks[].error) says so.
  - A service that is down is data, not a task failure. The task fails only on bad input, such as an
    invalid JMESPath expression, before any request is sent.
  - Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.kubernetes
requirements:
  - jmespath, only when a check has a O(checks[].query)
options:
  checks:
    description: The URLs to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the check in the results. Defaults to the URL.
        type: str
      url:
        description:
          - Full URL, for example C(http://127.0.0.1:8000/ready), or a path with its query, for
            example C(/ready), fetched through the service proxy of O(proxy).
        type: str
        required: true
      method:
        description: C(HEAD) checks that the service answers without a body, as C(curl -I).
        type: str
        choices: [GET, HEAD]
        default: GET
      expect_status:
        description: Status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      query:
        description: JMESPath expression applied to the JSON body, for example C(dependencies).
        type: str
      metrics_match:
        description:
          - Read the body as a Prometheus C(/metrics) page and return the samples whose name matches
            this regular expression in RV(checks[].metrics), for example C(^pg_pool_) for the
            connection pools of the DhakaCart runbook.
        type: str
      timeout:
        description: Seconds to wait for this URL; defaults to O(timeout).
        type: float
  timeout:
    description:
      - Seconds to wait for each URL, proxied ones included (the call to the API server waits this,
        not O(request_timeout), which service_health does not use).
    type: float
    default: 5
  headers:
    description:
      - Headers sent with every request. Through the proxy, the API server forwards them to the
        service, but for C(Authorization), which carries the Kubernetes credentials and is not sent.
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify TLS certificates, of the URLs checked and, for proxied checks, of the Kubernetes API
        server (V(false) then turns verification off even when the kubeconfig has a CA).
      - The API server's own connection to the service, for C(scheme=https), is not verified by
        the API server.
    type: bool
    default: true
  request_timeout:
    description: Not used by service_health, where a proxied check waits O(checks[].timeout) or O(timeout).
    type: float
    default: 10
  proxy:
    description:
      - The Kubernetes Service that checks with a path as O(checks[].url) go to, through the API
        server's service proxy.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Service.
        type: str
        default: default
      service:
        description: Name of the Service.
        type: str
        required: true
      port:
        description: Port of the Service, its name or number; without it, the Service's only port.
        type: str
      scheme:
        description: V(https) for a service that serves TLS; default V(http).
        type: str
        choices: [http, https]
  max_body:
    description: Characters of a non-JSON body kept in the result.
    type: int
    default: 500
'''

EXAMPLES = r'''
- name: Health, liveness and dependencies of the inference gateway
  sre.runbooks.service_health_info:
    checks:
      - name: health
        url: http://127.0.0.1:8000/health
      - name: head
        url: http://127.0.0.1:8000/
        method: HEAD
      - name: ready
        url: http://127.0.0.1:8000/ready
        expect_status: [200]
        query: dependencies
      - name: model-service
        url: http://127.0.0.1:8080/health
  register: health

- name: The DhakaCart backend's health through the API server, without kubectl exec
  sre.runbooks.service_health_info:
    context: dhakacart-prod
    proxy:
      namespace: dhakacart
      service: dhakacart-backend
      port: http
    checks:
      - name: health
        url: /health
      - name: ready
        url: /ready
        query: dependencies
  register: health

- name: Go to the service-down path when nothing answers
  ansible.builtin.debug:
    msg: "Down: {{ health.failed_checks | join(', ') }}"
  when: not health.all_ok
'''

RETURN = r'''
checks:
  description: One result per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
    url:
      description: URL called.
      type: str
    method:
      description: HTTP method used.
      type: str
    via:
      description: For a proxied check, C(service proxy <namespace>/<service>:<port>); else V(null).
      type: str
    ok:
      description: True when the status is one of O(checks[].expect_status).
      type: bool
    status:
      description: HTTP status code, V(null) when no answer came.
      type: int
    latency_ms:
      description: Time to the full answer or to the failure, in milliseconds.
      type: float
    error:
      description: >-
        Why there was no answer (refused, timeout, TLS), or, through the proxy, what the API server
        answered itself (for example C(no endpoints available for service "backend")), else V(null).
      type: str
    json:
      description: The body parsed as JSON, V(null) when it is not JSON.
      type: raw
    body:
      description: The start of a body that is not JSON.
      type: str
    extracted:
      description: Result of O(checks[].query) on the JSON body, V(null) without query or JSON.
      type: raw
    metrics:
      description: With O(checks[].metrics_match), the matching samples (name, labels, value).
      type: list
      elements: dict
    exhausted_pools:
      description: >-
        With O(checks[].metrics_match), the connection pools in those samples with nothing free
        (all connections in use, or callers waiting and none idle).
      type: list
      elements: str
by_name:
  description: The same results keyed by name.
  returned: always
  type: dict
all_ok:
  description: True when every check is healthy.
  returned: always
  type: bool
failed_checks:
  description: Names of the unhealthy checks.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import service_health_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

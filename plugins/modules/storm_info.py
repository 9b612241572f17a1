#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storm_info
short_description: The 5xx ratio of many services at once, and the cause they share
version_added: 1.2.0
description:
  - Measures the 5xx ratio and request rate of every service of O(services), and of the dependencies
    they name, in two Prometheus queries (errors and requests, each by O(service_label)), whatever
    their number; then looks for the cause that the failing services share, the first step of a run
    over an alert storm.
  - Each service gets the verdict of one service's triage (M(sre.runbooks.error_rate_info)),
    V(critical) over O(critical_percent), V(warning) over O(warning_percent), V(ok), or
    V(low_traffic) and V(no_traffic) when its requests prove nothing. Those are weak evidence, never
    failing, never 0%.
  - A shared cause needs evidence of its own. A B(dependency) is the shared cause when at least
    O(several) failing services depend on it and it fails itself (it answers 5xx in the same queries,
    or its entry in O(dependency_checks) failed). A B(location) (a docker host, a node) is the shared
    cause when at least O(several) services fail, all of them there, and services measured elsewhere
    are healthy. A dependency that several failing services share but that was not seen failing is a
    suspect (RV(suspects)), said as such, never the cause.
  - Each failing service gets a role. V(shared) when it fails through the shared cause, one incident for
    all; V(root) when it is the shared cause; V(own) for a cause of its own, handled on its own.
  - No series at all for any service fails the module with one sentence (a wrong metric or label,
    not quiet services), as does a O(status_label) or O(selector) key that none of the series carries
    (it would read as 0% errors); status values that do not look like HTTP codes are warned about, as
    in M(sre.runbooks.error_rate_info). Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
  - sre.runbooks.request_metric
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.prometheus
    description: Use C(group/sre.runbooks.prometheus) in C(module_defaults) to set the URL once.
options:
  services:
    description: The services that alert (or all those to look at), each once.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The service, matched against O(service_label).
        type: str
        required: true
      depends_on:
        description: The services or parts it calls, by the names their own series carry.
        type: list
        elements: str
        default: []
      location:
        description: Where it runs, for example its docker host or its node.
        type: str
  window:
    description: Rate window, a Prometheus duration.
    type: str
    default: 5m
  warning_percent:
    description: 5xx percentage over which a service is V(warning).
    type: float
    default: 1.0
  critical_percent:
    description: 5xx percentage over which a service is V(critical).
    type: float
    default: 5.0
  min_request_rate:
    description: Requests per second under which a service's ratio proves nothing (V(low_traffic)).
    type: float
    default: 0.1
  several:
    description: How many failing services make a storm, and share a cause.
    type: int
    default: 2
  dependency_checks:
    description:
      - Health checks of the dependencies, by name, each a result with C(ok) (the C(by_name) of
        M(sre.runbooks.service_health_info)). A failed check is evidence that the dependency fails.
    type: dict
    default: {}
  at:
    description: Evaluation time (RFC 3339, epoch seconds or C(now)); now by default.
    type: str
notes:
  - The two queries and the label check run concurrently, each with the O(timeout).
seealso:
  - module: sre.runbooks.error_rate_info
  - module: sre.runbooks.service_health_info
'''

EXAMPLES = r'''
- name: Look at every service that alerts, and the cause they share
  sre.runbooks.storm_info:
    url: http://prometheus:9090
    services:
      - name: checkout
        depends_on: [payments, inventory-db]
        location: docker-1
      - name: cart
        depends_on: [payments]
        location: docker-2
  register: storm

- name: Say the shared cause
  ansible.builtin.debug:
    msg: "{{ storm.message }}"
'''

RETURN = r'''
services:
  description: One row per service of O(services), in their order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The service.
      type: str
    verdict:
      description: V(critical), V(warning), V(ok), V(low_traffic) or V(no_traffic).
      type: str
    error_percent:
      description: Its 5xx percentage, V(null) without requests.
      type: float
    request_rate:
      description: Its requests per second, V(null) without series.
      type: float
    depends_on:
      description: As given.
      type: list
      elements: str
    location:
      description: As given.
      type: str
    role:
      description: V(shared), V(root) or V(own) for a failing service, else V(null).
      type: str
  sample:
    - {name: checkout, verdict: critical, error_percent: 31.5, request_rate: 12.0, depends_on: [payments],
       location: docker-1, role: shared}
failing:
  description: The failing services (V(warning) or V(critical)).
  returned: success
  type: list
  elements: str
storm:
  description: True when at least O(several) services fail.
  returned: success
  type: bool
shared_cause:
  description:
    - The cause the failing services share, with its evidence; V(null) when none has evidence.
      C(kind) is V(dependency) or V(location); C(services) the failing services it explains.
  returned: success
  type: dict
  sample:
    kind: dependency
    name: payments
    services: [cart, checkout]
    evidence: ['2 failing services depend on payments: cart, checkout', 'payments answers 5xx itself (critical)']
other_causes:
  description: Other shared causes with evidence, fewer services first left out.
  returned: success
  type: list
  elements: dict
suspects:
  description: Shared patterns without evidence (C(why_not) says what was missing); never a cause.
  returned: success
  type: list
  elements: dict
own_cause:
  description: The failing services to handle on their own (roles V(own) and V(root)).
  returned: success
  type: list
  elements: str
leader:
  description:
    - The service whose run holds the storm's one incident - the shared cause when it is one of
      O(services), else the first service that fails through it; V(null) without a shared cause.
  returned: success
  type: str
covered:
  description: The failing services that the leader's incident covers (role V(shared), the leader aside).
  returned: success
  type: list
  elements: str
by_service:
  description:
    - What each service's run takes from the storm - C(role), C(leader), C(covered) (true when the
      leader's incident covers it), C(failing), C(shared_cause), and for the leader C(services)
      (every row).
  returned: success
  type: dict
weak_evidence:
  description: The services whose requests prove nothing (V(low_traffic), V(no_traffic)).
  returned: success
  type: list
  elements: str
dependencies:
  description: The verdict of each dependency that is not itself in O(services), measured in the same queries.
  returned: success
  type: dict
  sample: {payments: critical}
message:
  description: One paragraph for people.
  returned: success
  type: str
queries:
  description: The PromQL sent (C(errors), C(total)); also returned when a query failed.
  returned: always
  type: dict
label_check:
  description:
    - The check of M(sre.runbooks.error_rate_info) that the labels the queries use exist on the
      services' series over O(window) - C(checked), C(series_labels), C(status_values), C(message).
  returned: success
  type: dict
evaluated_at:
  description: Epoch seconds at which the figures were taken.
  returned: success
  type: float
query_warnings:
  description: Warnings the server sent with the answers; each also shown as an Ansible warning.
  returned: success
  type: list
  elements: str
partial:
  description: True when the server sent warnings, so the figures may be incomplete.
  returned: success
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import storm_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

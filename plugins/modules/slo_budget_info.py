#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: slo_budget_info
short_description: Availability, error budget and burn rates of a service's availability SLO
version_added: 1.0.0
description:
  - Answers step 2 of the runbook's Resolution & Cleanup, "Check SLO Impact", with numbers;
    availability over the SLO window, the error budget left (as a share and as minutes of full
    downtime), the budget the incident burned, the current burn rate and the two multiwindow
    burn-rate alerts.
  - Availability and budget come from the recording rules O(availability_rule) and O(budget_rule),
    selected by the service label, when they return data for the service (RV(source=rules)); else
    from the raw request counter over O(slo_window) (RV(source=counters)). The rules must have been
    written for the same objective and window as O(objective) and O(slo_window).
  - Burn rates (error ratio divided by the allowed error ratio, 1 - objective) are measured over
    C(5m), C(30m), C(1h) and C(6h) from the counter. The page alert fires when both the C(1h) and
    C(5m) burn rates exceed 14.4; the ticket alert when both the C(6h) and C(30m) ones exceed 6.
  - Figures rest on the history Prometheus holds. The module measures it (RV(history_seconds),
    from the first sample of the service's series in the window) and, when it is shorter than the
    window (RV(history_short)), says so in RV(message), for the counters and the rules alike;
    availability and budget left are then over the history held, not the window.
  - The budget an incident burned is its failed requests divided by the error budget of the whole
    window in requests, (1 - objective) times the requests expected over the window at the mean
    request rate of the history held (RV(expected_window_requests)), never by the few requests a
    short history holds.
  - No traffic is never 100% availability; availability, burn rates and alert states are then
    V(null). Fails when no series of the counter matches over the window and no rule answers, as
    the service name, metric or labels are then wrong; fails too when the service's series carry
    no O(status_label) or O(selector) key, naming it and the labels they carry.
  - All queries run concurrently. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
  - sre.runbooks.request_metric
  - sre.runbooks.request_metric.service
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.prometheus
    description: Use C(group/sre.runbooks.prometheus) in C(module_defaults) to set the URL once.
options:
  objective:
    description: Availability objective, in percent.
    type: float
    default: 99.5
  slo_window:
    description: The SLO window, a Prometheus duration.
    type: str
    default: 30d
  incident_start:
    description:
      - Start of the incident (epoch seconds, C(now-30m) or RFC 3339), for
        RV(budget_burned_during_incident). Without it that is V(null).
    type: str
  incident_end:
    description: End of the incident, in the same forms. Defaults to now.
    type: str
  availability_rule:
    description:
      - Recording rule holding the availability ratio over the SLO window, by service label.
        Empty to always use the counters.
    type: str
    default: slo:availability:ratio_rate30d
  budget_rule:
    description:
      - Recording rule holding the share of the error budget left, by service label. Empty to
        compute it from the availability.
    type: str
    default: slo:availability:error_budget_remaining
'''

EXAMPLES = r'''
- name: SLO impact of the incident
  sre.runbooks.slo_budget_info:
    url: http://127.0.0.1:9090
    service: inference-gateway
    incident_start: "{{ incident.started_at }}"
  register: slo

- name: Keep it in the incident, where incident_report finds it
  ansible.builtin.set_fact:
    incident: "{{ incident | combine({'slo': slo}) }}"

- name: The DhakaCart backend, from its counters only, against 99.9% over 28 days
  sre.runbooks.slo_budget_info:
    url: http://prometheus.monitoring:9090
    service: dhakacart-backend
    service_label: app
    status_label: status_code
    objective: 99.9
    slo_window: 28d
    availability_rule: ""
    budget_rule: ""
'''

RETURN = r'''
service:
  description: The service.
  returned: always
  type: str
objective:
  description: The objective, in percent.
  returned: always
  type: float
  sample: 99.5
slo_window:
  description: The SLO window.
  returned: always
  type: str
  sample: 30d
availability:
  description: Share of requests that did not fail over the window, V(null) without traffic.
  returned: always
  type: float
  sample: 0.9962
availability_percent:
  description: RV(availability) in percent, rounded.
  returned: always
  type: float
budget_remaining:
  description: The error budget left.
  returned: always
  type: dict
  contains:
    fraction:
      description: 1 untouched, 0 spent, below 0 the SLO is breached; V(null) without traffic.
      type: float
    percent:
      description: The same in percent.
      type: float
    minutes:
      description: Minutes of full downtime the budget left is worth.
      type: float
    allowed_minutes:
      description: Minutes of full downtime the whole budget is worth over the window.
      type: float
      sample: 216.0
window_seconds:
  description: The SLO window in seconds.
  returned: always
  type: float
  sample: 2592000.0
history_seconds:
  description:
    - Seconds of the window the service's series cover, from their first sample in it to now (to a
      few seconds within the last hour, to 5 minutes before); V(null) when the counter has no series
      or the history could not be measured.
  returned: always
  type: float
  sample: 372.0
history_short:
  description: True when RV(history_seconds) is under 99% of the window; V(null) when it is not known.
  returned: always
  type: bool
expected_window_requests:
  description:
    - Requests expected over the whole window, at the mean request rate of the history held (the
      requests counted when the history covers the window or is not known).
  returned: always
  type: float
budget_burned_during_incident:
  description: What the incident cost, V(null) without O(incident_start).
  returned: always
  type: dict
  contains:
    start:
      description: Start, RFC 3339.
      type: str
    end:
      description: End, RFC 3339.
      type: str
    duration_seconds:
      description: Its length.
      type: float
    errors:
      description: Failed requests during the incident, V(null) without traffic.
      type: float
    requests:
      description: Requests during the incident.
      type: float
    error_ratio:
      description: Share of them that failed.
      type: float
    burn_rate:
      description: Burn rate over the incident.
      type: float
    fraction:
      description:
        - Share of the window's whole error budget the incident burned, the budget being
          (1 - objective) x RV(expected_window_requests).
      type: float
    percent:
      description: The same in percent.
      type: float
    minutes:
      description: The same as minutes of full downtime.
      type: float
burn_rates:
  description: Burn rate by window (1 spends the budget exactly over the SLO window), V(null) without traffic.
  returned: always
  type: dict
  sample: {5m: 0.4, 30m: 0.3, 1h: 16.2, 6h: 3.1}
current_burn_rate:
  description: The burn rate over the shortest window, C(5m).
  returned: always
  type: float
alerts:
  description: The multiwindow burn-rate alerts, C(page) and C(ticket).
  returned: always
  type: dict
  contains:
    firing:
      description: Whether both windows burn faster than the threshold; V(null) when one had no traffic.
      type: bool
    threshold:
      description: The burn rate both windows must exceed, 14.4 or 6.
      type: float
    long_window:
      description: C(1h) or C(6h).
      type: str
    short_window:
      description: C(5m) or C(30m).
      type: str
source:
  description: V(rules) when availability came from O(availability_rule), V(counters) when from the counter.
  returned: always
  type: str
  sample: rules
evaluated_at:
  description: Epoch seconds at which the figures were taken.
  returned: always
  type: float
message:
  description: One sentence summing it all up.
  returned: always
  type: str
queries:
  description:
    - The PromQL sent, by purpose, to reproduce the figures by hand; C(history_recent) and
      C(history) give the first sample of the service's series over the last hour and the window.
  returned: always
  type: dict
query_warnings:
  description: Warnings the server sent with any answer; each is also shown as an Ansible warning.
  returned: always
  type: list
  elements: str
partial:
  description: True when the server sent warnings, so the figures may be incomplete.
  returned: always
  type: bool
label_check:
  description: The check that the labels the queries use exist on the service's series over the window.
  returned: always
  type: dict
  contains:
    checked:
      description: False when Prometheus could not answer the label API (the figures are then unchecked).
      type: bool
    series_labels:
      description: The labels the service's series carry, V(null) when not checked.
      type: list
      elements: str
    status_values:
      description: The values of O(status_label) on them, V(null) when not known.
      type: list
      elements: str
    message:
      description: A warning (status values that are not HTTP codes, or why the check did not run), else V(null).
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import slo_budget_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

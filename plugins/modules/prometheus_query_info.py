#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: prometheus_query_info
short_description: Run an instant or range PromQL query against any Prometheus HTTP API
version_added: 1.0.0
description:
  - Runs a PromQL query against Prometheus or any server of the same API (Thanos, Mimir, Cortex,
    VictoriaMetrics) and returns normalised series, with labels and float values.
  - C(NaN) and C(+Inf)/C(-Inf) samples come back as V(null) with the original text kept, so the next
    task never does arithmetic on them.
  - Warnings from the server (for example a store that did not answer) come back in RV(query_warnings) and
    set RV(partial), as the data is then partial evidence.
  - Never changes anything. Long queries are sent as a form-encoded POST.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.prometheus
    description: Use C(group/sre.runbooks.prometheus) in C(module_defaults) to set the URL once.
options:
  query:
    description: The PromQL expression.
    type: str
    required: true
  type:
    description: An instant query at O(time), or a range query from O(start) to O(end).
    type: str
    choices: [instant, range]
    default: instant
  time:
    description:
      - Evaluation time of an instant query; epoch seconds, C(now), C(now-15m) or RFC 3339.
      - Defaults to now.
    type: str
  start:
    description: Start of a range query; epoch seconds, C(now-1h) or RFC 3339.
    type: str
    default: now-1h
  end:
    description: End of a range query; same forms as O(start).
    type: str
    default: now
  step:
    description:
      - Resolution of a range query, a duration such as C(15s).
      - Defaults to the range divided into about 200 points, at least one second.
    type: str
  query_timeout:
    description:
      - Evaluation timeout passed to the server (a duration such as C(20s)). The HTTP answer is awaited
        for O(timeout).
    type: str
  max_series:
    description:
      - The most series the result may hold. A query that returns more fails, saying how many, so that
        a query that forgot its aggregation does not fill the controller's memory and output.
    type: int
    default: 500
'''

EXAMPLES = r'''
- name: Error ratio of the inference gateway over five minutes
  sre.runbooks.prometheus_query_info:
    url: http://127.0.0.1:9090
    query: >-
      sum(rate(http_requests_total{service="inference-gateway",status=~"5.."}[5m]))
      / sum(rate(http_requests_total{service="inference-gateway"}[5m]))
  register: ratio

- name: The same over the last hour, one point a minute, from a Mimir tenant
  sre.runbooks.prometheus_query_info:
    url: https://mimir.example.com/prometheus
    bearer_token: "{{ mimir_token }}"
    headers:
      X-Scope-OrgID: team-ml
    type: range
    start: now-1h
    step: 1m
    query: sum(rate(http_requests_total{service="inference-gateway",status=~"5.."}[5m]))

- name: Set the endpoint once for every Prometheus module of the play
  module_defaults:
    group/sre.runbooks.prometheus:
      url: http://127.0.0.1:9090
  block:
    - name: Availability SLO
      sre.runbooks.prometheus_query_info:
        query: slo:availability:ratio_rate30d
'''

RETURN = r'''
query:
  description: The query as sent.
  returned: always
  type: str
result_type:
  description: C(vector), C(matrix), C(scalar) or C(string), as Prometheus answered.
  returned: always
  type: str
  sample: vector
series:
  description:
    - One entry per series.
    - An empty list means that no series matched, which is not the same as a value of zero.
  returned: always
  type: list
  elements: dict
  contains:
    labels:
      description: The series' labels.
      type: dict
    value:
      description: Vector, scalar and string results; a float, or V(null) for NaN and +/-Inf.
      type: raw
    raw:
      description: Vector, scalar and string results; the value as Prometheus sent it.
      type: str
    time:
      description: Vector, scalar and string results; evaluation time, epoch seconds.
      type: float
    values:
      description: Matrix results; C([time, value]) pairs, V(null) values for NaN and +/-Inf.
      type: list
      elements: list
    nonfinite:
      description: Matrix results; how many values were NaN or +/-Inf.
      type: int
  sample: [{"labels": {"endpoint": "/predict"}, "time": 1795542002.1, "value": 0.81, "raw": "0.81"}]
query_warnings:
  description:
    - Warnings the server sent with the data (partial results). Each is also shown as an Ansible
      warning.
  returned: always
  type: list
  elements: str
infos:
  description: Informational notes the server sent with the data.
  returned: always
  type: list
  elements: str
partial:
  description: True when the server sent warnings, so the data may be incomplete.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import prometheus_query_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

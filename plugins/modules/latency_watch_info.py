#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: latency_watch_info
short_description: Watch a service's p99 until it stays at or under target for a stable window
version_added: 1.2.0
description:
  - The "verify" step of a High Response Time runbook after a mitigation. Every O(interval) it measures
    the highest quantile of O(quantiles) (the p99 by default) of the whole service from its Prometheus
    latency histogram over O(window), and returns as soon as it has stayed at or under
    O(target_seconds) for O(stable_for) (recovered), or when O(deadline) has passed (not recovered;
    the caller tries the next action or escalates).
  - Only a measured figure at or under target, with at least O(min_request_rate) requests per second,
    counts. A sample with too little traffic, with none (histogram_quantile answers NaN; no requests is
    not a fast response), or whose quantile is above the largest bucket (more than its bound, so over
    any target up to the bound, and unknown beyond) breaks the stable stretch. So does a failed query;
    the watch goes on and reports the errors, and never fails for them.
  - Tells "did not recover" from "could not measure" (RV(verdict)); V(not_measured) when, at the
    deadline, the measurements of the last O(stable_for) failed or found no series of the histogram
    (a wrong service, label or metric) and none of the others saw the service unhealthy, so recovery
    can be neither confirmed nor denied.
  - The queries of a measurement run concurrently, each HTTP call with the O(timeout). One task however
    long the watch, not a task per poll. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
  - sre.runbooks.latency_histogram
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.prometheus
    description: Use C(group/sre.runbooks.prometheus) in C(module_defaults) to set the URL once.
options:
  quantiles:
    description:
      - Quantiles between 0 and 1 (both excluded); the watch measures the highest, so the list of
        M(sre.runbooks.latency_info) can be given as it is.
    type: list
    elements: float
    default: [0.99]
  target_seconds:
    description: The objective of that quantile, in seconds; at or under it the service counts as healthy.
    type: float
    required: true
  window:
    description: Rate window of each measurement, a Prometheus duration; shorter windows forget the incident sooner.
    type: str
    default: 1m
  stable_for:
    description: How long the quantile must stay at or under target. At most O(deadline).
    type: str
    default: 10m
  deadline:
    description: How long to watch before giving up.
    type: str
    default: 15m
  interval:
    description: Time between two measurements.
    type: str
    default: 15s
  min_request_rate:
    description: Requests per second under which a measurement proves nothing.
    type: float
    default: 0.1
notes:
  - Percentiles from a histogram are estimates within the bucket they fall in (linear interpolation);
    a target between two bucket bounds is judged at that resolution.
'''

EXAMPLES = r'''
- name: Wait until the gateway's p99 is at or under 500 ms for 10 minutes, 15 at most
  sre.runbooks.latency_watch_info:
    url: http://127.0.0.1:9090
    service: inference-gateway
    target_seconds: 0.5
    stable_for: 10m
    deadline: 15m
  register: verified
  delegate_to: localhost

- name: Escalate when it did not recover, or say it could not be verified
  ansible.builtin.debug:
    msg: "{{ verified.message }}"
  when: not verified.recovered
'''

RETURN = r'''
recovered:
  description: True when the quantile stayed at or under target for O(stable_for) before the deadline.
  returned: always
  type: bool
verdict:
  description:
    - V(recovered); V(not_recovered) when the measurements show it did not; V(not_measured) when the
      recent measurements failed (Prometheus did not answer) or found no series of the histogram, so
      recovery is neither confirmed nor denied.
  returned: always
  type: str
  sample: recovered
message:
  description: The outcome in one line.
  returned: always
  type: str
  sample: 'checkout recovered: p99 180 ms <= target 500 ms for 60 s, after 75 s'
samples:
  description: Every measurement, oldest first.
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
    seconds:
      description: The quantile in seconds; V(null) unless measured as a figure (see RV(samples[].state)).
      type: float
      sample: 0.18
    state:
      description:
        - V(measured), V(no_traffic), V(above_largest_bucket) or V(no_series), as for
          M(sre.runbooks.latency_info); V(null) when the query failed.
      type: str
    request_rate:
      description: Requests per second (from C(_count)), V(null) without series or when the query failed.
      type: float
    measured:
      description: False when the query failed or found no series of the histogram.
      type: bool
first_seconds:
  description: The quantile at the first measurement with a figure, V(null) without.
  returned: always
  type: float
last_seconds:
  description: The quantile at the last measurement with a figure, V(null) without.
  returned: always
  type: float
stable_seconds:
  description: How long the quantile has been at or under target at the last measurement.
  returned: always
  type: float
trend:
  description: V(decreasing), V(increasing), V(flat) or V(unknown), the first figure against the last.
  returned: always
  type: str
failed_samples:
  description: How many measurements measured nothing (RV(samples[].measured) false).
  returned: always
  type: int
query_errors:
  description: The error of each measurement whose query failed, one message each (the watch went on).
  returned: always
  type: list
  elements: str
elapsed_seconds:
  description: How long the watch took.
  returned: always
  type: float
verdict_quantile:
  description: The quantile watched, the highest of O(quantiles).
  returned: always
  type: str
  sample: p99
queries:
  description:
    - The PromQL of a measurement, to reproduce it by hand. C(p99_overall) (the quantile watched),
      C(requests) (from C(_count)) and C(buckets) (the bucket rates, which tell a quantile above the
      largest bucket).
  returned: always
  type: dict
  sample:
    p99_overall: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="checkout"}[1m])))
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import latency_watch_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: error_rate_watch_info
short_description: Watch a service's 5xx ratio until it stays under target for a stable window
version_added: 1.0.0
description:
  - The runbook's "Verify Metrics" step after a mitigation. Every O(interval) it measures the
    share of the service's requests answering 5xx over O(window), and returns as soon as the
    ratio has stayed under O(target_percent) for O(stable_for) (recovered), or when O(deadline)
    has passed (not recovered; the caller tries the next action or escalates).
  - A sample with less traffic than O(min_request_rate), or none, breaks the stable stretch, since
    a silent service is not a healthy one. A failed query does too; the watch goes on and reports
    the errors, and never fails for them.
  - Tells "did not recover" from "could not measure" (RV(verdict)); V(not_measured) when, at the
    deadline, measurements in the last O(stable_for) failed and none of those that succeeded saw
    the service unhealthy, so recovery can be neither confirmed nor denied.
  - Fails when the service's series carry no O(status_label) or O(selector) key (checked with the
    first measurements, over the last hour), naming it and the labels they carry; the errors would
    read as 0%, a false recovery.
  - One task however long the watch, not a task per poll. Never changes anything.
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
  window:
    description: Rate window of each measurement; shorter windows forget the incident sooner.
    type: str
    default: 1m
  target_percent:
    description: The error rate under which the service counts as healthy (the runbook's 1%).
    type: float
    default: 1.0
  stable_for:
    description: How long the error rate must stay under target (the runbook's 10 minutes).
    type: str
    default: 10m
  deadline:
    description: How long to watch before giving up (the second runbook escalates after 15 minutes).
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
'''

EXAMPLES = r'''
- name: Wait until the gateway answers under 1% errors for 10 minutes, 15 at most
  sre.runbooks.error_rate_watch_info:
    url: http://127.0.0.1:9090
    service: inference-gateway
    target_percent: 1
    stable_for: 10m
    deadline: 15m
  register: verified
  delegate_to: localhost

- name: Escalate when it did not recover
  ansible.builtin.debug:
    msg: "{{ verified.message }}"
  when: not verified.recovered
'''

RETURN = r'''
recovered:
  description: True when the error rate stayed under target for O(stable_for) before the deadline.
  returned: always
  type: bool
verdict:
  description:
    - V(recovered); V(not_recovered) when the measurements show it did not; V(not_measured) when
      the recent measurements failed (Prometheus did not answer), so recovery is neither confirmed
      nor denied.
  returned: always
  type: str
  sample: not_measured
measured:
  description: True when the last measurement succeeded.
  returned: always
  type: bool
unmeasured_reason:
  description: Why the last measurement failed, in short; V(null) when it succeeded.
  returned: always
  type: str
failed_samples:
  description: How many measurements failed.
  returned: always
  type: int
stable_seconds:
  description: How long the error rate has been under target at the last measurement.
  returned: always
  type: float
trend:
  description: V(decreasing), V(increasing), V(flat) or V(unknown), first measurement against the last.
  returned: always
  type: str
first_percent:
  description: Error percent at the first measurement with traffic, V(null) without.
  returned: always
  type: float
last_percent:
  description: Error percent at the last measurement with traffic, V(null) without.
  returned: always
  type: float
elapsed_seconds:
  description: How long the watch took.
  returned: always
  type: float
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
    error_percent:
      description: Percent of requests answering an error, V(null) without traffic or when the query failed.
      type: float
    request_rate:
      description: Requests per second, V(null) without traffic or when the query failed.
      type: float
    measured:
      description: False when the query failed.
      type: bool
query_errors:
  description: Failed measurements, one message each (the watch went on).
  returned: always
  type: list
  elements: str
message:
  description: The outcome in one line.
  returned: always
  type: str
queries:
  description: The PromQL of the measurement.
  returned: always
  type: dict
label_check:
  description: The check that the labels the queries use exist on the service's series of the last hour.
  returned: always
  type: dict
  contains:
    checked:
      description: False when Prometheus did not answer the label API.
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

from ansible_collections.sre.runbooks.plugins.module_utils import error_rate_watch_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

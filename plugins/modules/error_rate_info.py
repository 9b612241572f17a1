#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: error_rate_info
short_description: 5xx error ratio of a service, overall and by endpoint, against its baseline
version_added: 1.0.0
description:
  - Measures the share of a service's requests that answer 5xx over a window, overall and grouped by
    a label (the endpoint by default), compares it with the same window at a baseline offset, and
    judges it against the warning and critical thresholds of the High Error Rate runbook.
  - Tells whether the errors came as a C(spike) (a step change, as after a deploy), a C(gradual)
    climb, or are C(steady), and estimates when they began (RV(onset)), from a range query over
    O(lookback).
  - No traffic is reported as V(no_traffic), never as 0% errors. Below O(min_request_rate) the
    verdict is V(low_traffic), so that one error on an idle service does not read as 100%.
  - Splits the errors by status code (RV(by_status)), each with its own shape and onset, so that
    causes that began at different times (a bad deploy's 500s, a slow dependency's 504s) are told
    apart.
  - The baseline is the same window O(baseline_offset) back, unless that window was failing itself
    (above O(warning_percent), so it falls on an earlier incident, or on this one when it began
    earlier). Then the nearest clean earlier window at 2, 3 or 4 times the offset is used (a
    multiple of C(1d) or C(1w) keeps the time of day and week), groups included; a window without
    traffic, such as one before the data Prometheus holds, is not clean. When none is clean there
    is no baseline (C(no clean baseline)), never a polluted one. All of them are queried at once.
  - Fails with a clear message when no series matches at all over O(lookback), because the
    service name, metric or labels are then wrong, which is not the same as a quiet service.
  - Fails too when the service's series exist but carry no O(status_label), O(group_by) or
    O(selector) key, naming the label, the option that set it and the labels that exist
    (Prometheus label API with C(match[]), Prometheus 2.24 or later); a status label matching no
    status code would read as 0% errors. Warns when the status label's values do not look like
    HTTP codes and none matches O(status_regex).
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
  group_by:
    description: Label to break the errors down by. Empty for the overall figure only.
    type: str
    default: endpoint
  window:
    description: Rate window, a Prometheus duration. The runbook's alert uses C(5m).
    type: str
    default: 5m
  baseline_offset:
    description:
      - How far back the baseline window sits, a Prometheus duration; C(1d) compares with the same
        time yesterday. When that window was failing, 2, 3 and 4 times as far back are tried.
    type: str
    default: 1d
  lookback:
    description: Period of the range query that gives the shape and the onset.
    type: str
    default: 1h
  warning_percent:
    description: Error percentage above which the verdict is V(warning).
    type: float
    default: 1.0
  critical_percent:
    description: Error percentage above which the verdict is V(critical).
    type: float
    default: 5.0
  min_request_rate:
    description: Requests per second below which a ratio proves nothing (verdict V(low_traffic)).
    type: float
    default: 0.1
  at:
    description: Evaluation time; epoch seconds, C(now), C(now-10m) or RFC 3339. Defaults to now.
    type: str
  history:
    description:
      - Also return RV(history), the error rate over O(lookback), overall and of the groups that failed the
        most, for a graph (the incident document's).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: How bad is it, and where?
  sre.runbooks.error_rate_info:
    url: http://127.0.0.1:9090
    service: inference-gateway
  register: errors

- name: The DhakaCart backend labels its status as status_code and runs in a namespace
  sre.runbooks.error_rate_info:
    url: http://prometheus.monitoring:9090
    service: dhakacart-backend
    service_label: app
    status_label: status_code
    selector:
      namespace: dhakacart
    baseline_offset: 1w

- name: Page only on a critical verdict
  ansible.builtin.fail:
    msg: "{{ errors.message }}"
  when: errors.verdict == 'critical'
'''

RETURN = r'''
verdict:
  description: V(ok), V(warning), V(critical), V(low_traffic) or V(no_traffic).
  returned: always
  type: str
  sample: critical
message:
  description: One sentence summing it all up.
  returned: always
  type: str
  sample: "inference-gateway: 26.70% of 20.00 req/s answer 5xx over 5m (critical > 5%); ..."
error_ratio:
  description: Share of requests answering 5xx (0.05 is 5%), V(null) without traffic.
  returned: always
  type: float
error_percent:
  description: RV(error_ratio) in percent, rounded.
  returned: always
  type: float
request_rate:
  description: Requests per second over the window, V(null) when no series has data.
  returned: always
  type: float
error_rate:
  description: Error answers per second over the window.
  returned: always
  type: float
baseline:
  description:
    - The same figures in the baseline window (V(null) ratios when there was no traffic, all
      V(null) when no clean window was found).
  returned: always
  type: dict
  contains:
    error_ratio:
      description: Error ratio at the baseline.
      type: float
    error_percent:
      description: The same in percent.
      type: float
    request_rate:
      description: Requests per second at the baseline.
      type: float
    verdict:
      description: Verdict the baseline would get, V(null) when no clean window was found.
      type: str
    offset:
      description:
        - How far back the window used is, O(baseline_offset) unless that one overlaps an incident;
          V(null) when no window is clean.
      type: str
      sample: 2m
    offset_seconds:
      description: RV(baseline.offset) in seconds.
      type: float
    overlaps_incident:
      description: True when the window at O(baseline_offset) was failing (warning or critical) itself.
      type: bool
    windows:
      description: Every window looked at, O(baseline_offset) first, then 2, 3 and 4 times as far back.
      type: list
      elements: dict
      contains:
        offset:
          description: How far back, a Prometheus duration.
          type: str
        offset_seconds:
          description: The same in seconds.
          type: float
        error_ratio:
          description: Error ratio of the window, V(null) without traffic.
          type: float
        error_percent:
          description: The same in percent.
          type: float
        request_rate:
          description: Requests per second, V(null) without traffic.
          type: float
        verdict:
          description: Its verdict; a V(warning) or V(critical) window is not a clean baseline.
          type: str
change_percent_points:
  description: Current minus baseline error percentage.
  returned: always
  type: float
groups:
  description: One entry per value of O(group_by), the most errors first.
  returned: always
  type: list
  elements: dict
  contains:
    value:
      description: The label value, for example C(/predict).
      type: str
    request_rate:
      description: Requests per second.
      type: float
    error_rate:
      description: Errors per second.
      type: float
    error_ratio:
      description: Error ratio of this group.
      type: float
    error_percent:
      description: The same in percent.
      type: float
    share_of_errors:
      description: This group's share of all the service's errors.
      type: float
    baseline_error_ratio:
      description: This group's error ratio at the baseline.
      type: float
    verdict:
      description: This group's verdict.
      type: str
history:
  description:
    - With O(history), the error rate over O(lookback), in percent of the requests (a time without traffic
      has no point).
  returned: when O(history)
  type: dict
  contains:
    overall:
      description: C([epoch, percent]) pairs of the service's error rate.
      type: list
      elements: list
    groups:
      description: The three groups (of O(group_by)) whose error rate peaked highest, that failed at all.
      type: list
      elements: dict
      contains:
        name:
          description: The group, for example the endpoint C(/predict).
          type: str
        peak_percent:
          description: Its highest error rate over O(lookback).
          type: float
        points:
          description: C([epoch, percent]) pairs.
          type: list
          elements: list
    warning_percent:
      description: O(warning_percent), for the graph's threshold lines.
      type: float
    critical_percent:
      description: O(critical_percent).
      type: float
  sample:
    overall: [[1796511278.0, 0.0], [1796511280.0, 14.2]]
    groups: [{name: /predict, peak_percent: 61.5, points: [[1796511278.0, 0.0], [1796511280.0, 61.5]]}]
by_status:
  description:
    - The errors split by value of O(status_label), the most errors first; statuses with no error
      now are left out.
  returned: always
  type: list
  elements: dict
  contains:
    status:
      description: The status, for example C(504).
      type: str
    error_rate:
      description: Errors per second with this status over the window.
      type: float
    share_of_errors:
      description: This status's share of all the service's errors.
      type: float
    shape:
      description: V(spike), V(gradual), V(steady) or V(unknown), of this status's share of all requests over O(lookback).
      type: str
    onset:
      description: Epoch seconds when this status began rising, V(null) when not failing or not found.
      type: float
    onset_iso:
      description: RV(by_status[].onset) as RFC 3339 UTC.
      type: str
label_check:
  description: The check that the labels the queries use exist on the service's series over O(lookback).
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
failing_groups:
  description: Groups whose verdict is warning or critical.
  returned: always
  type: list
  elements: str
top_group:
  description: The failing group with the most errors, or V(null).
  returned: always
  type: str
  sample: /predict
concentrated:
  description: True when one failing group holds at least 80% of all errors.
  returned: always
  type: bool
shape:
  description: V(spike), V(gradual), V(steady), or V(unknown) with too few points.
  returned: always
  type: str
onset:
  description: Epoch seconds of the first point of the rise, V(null) when not failing or not found.
  returned: always
  type: float
onset_iso:
  description: RV(onset) as RFC 3339 UTC.
  returned: always
  type: str
last_seen:
  description: Epoch seconds of the last point with traffic in the lookback.
  returned: always
  type: float
last_seen_iso:
  description: RV(last_seen) as RFC 3339 UTC.
  returned: always
  type: str
window_seconds:
  description: The rate window, in seconds.
  returned: always
  type: float
evaluated_at:
  description: Epoch seconds at which the figures were taken.
  returned: always
  type: float
queries:
  description:
    - The PromQL sent, by purpose, to reproduce the figures by hand. C(baseline_errors) and
      C(baseline_total) at O(baseline_offset), C(baseline_errors_2) ... C(baseline_total_4) at 2 to
      4 times as far back; C(errors_overall), C(total_overall) and C(errors_by_status) also as range
      queries over O(lookback).
  returned: always
  type: dict
query_warnings:
  description: Warnings the server sent with any of the answers; each is also shown as an Ansible warning.
  returned: always
  type: list
  elements: str
partial:
  description: True when the server sent warnings, so the figures may be incomplete.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import error_rate_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

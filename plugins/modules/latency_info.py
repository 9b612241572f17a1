#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: latency_info
short_description: Response-time percentiles of a service, overall and by endpoint, against its baseline
version_added: 1.2.0
description:
  - Reads the response-time percentiles of a service (p50, p95 and p99 by default) from its Prometheus
    latency histogram over a window, overall and grouped by a label (the endpoint by default),
    compares them with the same window at a baseline offset, and gives a verdict, the first step of a
    High Response Time runbook.
  - The verdict reads the highest quantile of O(quantiles) (p99 by default). It is V(slow) when that
    quantile is over O(target_seconds), or at least O(slow_factor) times its baseline, for the whole
    service or for a group with enough traffic; V(insufficient_evidence) when the service has no series
    of the histogram, no requests, fewer requests per second than O(min_request_rate), or nothing to be
    judged against (no baseline and no O(target_seconds)); else V(ok).
  - No requests in the window is V(no_traffic), never 0 s. A quantile beyond the largest finite bucket
    is reported as above that bucket, with its bound, never as a figure (Prometheus answers the bound
    itself, other backends +Inf); it counts as more than the bound in the verdict, and where that cannot
    tell, the group's verdict is V(unknown).
  - Below O(min_request_rate) the evidence is weak, so the group is V(low_traffic), named in the
    message, and never V(slow). A group with no series at the baseline is new (RV(groups[].new)) and
    has no ratio.
  - Tells when a slowdown began (RV(onset)) and its shape (RV(shape)), from the whole service's highest
    quantile over O(lookback) (RV(history)); the onset is the first point from which it stayed above the
    slow threshold (O(target_seconds), else O(slow_factor) times its baseline) to now. A point without
    traffic is neither slow nor fast.
  - A service without any series of the histogram is not a failure but V(insufficient_evidence), with a
    message naming the metric and the labels to check. A query that Prometheus refuses, or a Prometheus
    that cannot be reached, fails the module with one sentence saying what to check.
  - All queries run concurrently, each with the O(timeout). Never changes anything.
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
  group_by:
    description:
      - Label to break the percentiles down by (the endpoint, as for M(sre.runbooks.error_rate_info)).
        Empty for the overall figures only.
      - When none of the series carries it, the one group is the whole service, with a warning.
    type: str
    default: endpoint
  window:
    description: Rate window of the histogram, a Prometheus duration.
    type: str
    default: 5m
  baseline_offset:
    description:
      - How far back the baseline window sits, a Prometheus duration; C(1d) compares with the same
        time yesterday.
    type: str
    default: 1d
  lookback:
    description:
      - Period of the range query that gives the onset and shape of a slowdown, a Prometheus duration;
        at least three O(window).
    type: str
    default: 1h
  quantiles:
    description:
      - The quantiles to read, each between 0 and 1 (both excluded); returned as C(p50), C(p95), C(p99)
        (C(p99_9) for 0.999).
      - The verdict reads the highest of them.
    type: list
    elements: float
    default: [0.5, 0.95, 0.99]
  target_seconds:
    description:
      - Objective of the highest quantile (the p99 by default), in seconds. Over it, with enough
        traffic, the verdict is V(slow). Without it only the baseline judges.
    type: float
  min_request_rate:
    description:
      - Requests per second below which the percentiles prove nothing (weak evidence, V(low_traffic));
        a baseline below it is not compared with.
    type: float
    default: 0.1
  slow_factor:
    description:
      - A group, or the whole service, whose highest quantile is at least this many times its baseline
        is slower than its baseline (V(slow)). More than 1.
    type: float
    default: 2.0
  at:
    description: Evaluation time; epoch seconds, C(now), C(now-10m) or RFC 3339. Defaults to now.
    type: str
  history:
    description:
      - Also return RV(history_series), the highest quantile over O(lookback), overall and of the groups that
        were slowest, for a graph (the incident document's); one more range query, by O(group_by).
    type: bool
    default: false
notes:
  - Percentiles from a histogram are estimates within the bucket they fall in (linear interpolation);
    their resolution is that of the buckets.
'''

EXAMPLES = r'''
- name: How slow is it, and where?
  sre.runbooks.latency_info:
    url: http://127.0.0.1:9090
    service: inference-gateway
    target_seconds: 0.5
  register: latency

- name: The slowest endpoint and its p99
  ansible.builtin.debug:
    msg: "{{ latency.top_group }}: {{ latency.groups[0].percentiles.p99.text }}"
  when: latency.verdict == 'slow'

- name: A histogram labelled by app and route, in a namespace, against last week
  sre.runbooks.latency_info:
    url: http://prometheus.monitoring:9090
    service: dhakacart-backend
    service_label: app
    group_by: route
    selector:
      namespace: dhakacart
    baseline_offset: 1w
    quantiles: [0.5, 0.99, 0.999]

- name: No verdict on weak evidence
  ansible.builtin.debug:
    msg: "{{ latency.message }}"
  when: latency.verdict == 'insufficient_evidence'
'''

RETURN = r'''
verdict:
  description:
    - V(ok), V(slow) (the highest quantile over O(target_seconds), or at least O(slow_factor) times its
      baseline, for the service or a group with enough traffic) or V(insufficient_evidence).
  returned: always
  type: str
  sample: slow
message:
  description: One sentence with the figures and the verdict; says plainly when the evidence is weak.
  returned: always
  type: str
  sample: >-
    checkout: p99 991 ms, p95 950 ms, p50 50 ms over 5m at 20.0 req/s (slow: at least 2x its baseline);
    baseline 1d ago p99 49.8 ms (19.9x); p99 above 99.5 ms since 2026-12-06T15:12:25Z (a spike);
    slow: /pay p99 995 ms, 20x its baseline 49.8 ms; weak evidence, not judged: /admin (0.02 req/s)
overall:
  description: The whole service, with the keys of RV(groups) but RV(groups[].value).
  returned: always
  type: dict
  sample:
    request_rate: 20.02
    baseline_request_rate: 20.02
    new: false
    evidence: enough
    baseline_evidence: enough
    verdict: slow
    over_target: null
    slower_than_baseline: 'yes'
    reasons: ['p99 991 ms is 19.9x its baseline 49.8 ms: slower than its baseline (slow_factor 2)']
    percentiles:
      p99: {quantile: 0.99, seconds: 0.99099, state: measured, text: 991 ms, bound_seconds: null,
            baseline_seconds: 0.04977, baseline_state: measured, baseline_text: 49.8 ms,
            baseline_bound_seconds: null, ratio: 19.91}
groups:
  description: One entry per value of O(group_by), the worst first (slow, unknown, ok, low_traffic, no_traffic, then the ratio to the baseline).
  returned: always
  type: list
  elements: dict
  contains:
    value:
      description: The label value, for example C(/predict).
      type: str
      sample: /pay
    request_rate:
      description: Requests per second over the window (from C(_count)), V(null) without series.
      type: float
      sample: 10.0
    baseline_request_rate:
      description: The same at the baseline.
      type: float
      sample: 10.0
    new:
      description: True when the group has no series at the baseline (a new endpoint), which gives no ratio.
      type: bool
    evidence:
      description: V(enough), V(weak) (under O(min_request_rate)) or V(none) (no requests).
      type: str
    baseline_evidence:
      description: The same at the baseline; only V(enough) is compared with.
      type: str
    verdict:
      description:
        - V(slow), V(ok), V(low_traffic) (weak evidence, never slow), V(no_traffic), or V(unknown) when
          nothing can judge it (no O(target_seconds) nor baseline, or a bucket hides the answer).
      type: str
      sample: slow
    over_target:
      description: V(yes), V(no) or V(unknown) for the highest quantile against O(target_seconds); V(null) without one.
      type: str
    slower_than_baseline:
      description: V(yes) (at least O(slow_factor) times), V(no) or V(unknown); V(null) without a baseline to compare with.
      type: str
      sample: 'yes'
    reasons:
      description: What the verdict rests on, in words.
      type: list
      elements: str
      sample: ['p99 995 ms is 20x its baseline 49.8 ms: slower than its baseline (slow_factor 2)']
    percentiles:
      description: One entry per quantile, named C(p50), C(p95), C(p99)...
      type: dict
      contains:
        quantile:
          description: The quantile, for example 0.99.
          type: float
        state:
          description:
            - V(measured), V(no_traffic) (no requests in the window), V(above_largest_bucket), or
              V(no_series).
          type: str
        seconds:
          description: The percentile in seconds; V(null) unless RV(groups[].percentiles.state) is V(measured).
          type: float
          sample: 0.995
        bound_seconds:
          description: Above the largest bucket, that bucket's upper bound (the percentile is more).
          type: float
          sample: 5.0
        text:
          description: As people read it, C(995 ms), C(no traffic), or C(above the largest bucket) and the bound in parentheses.
          type: str
        baseline_seconds:
          description: The percentile at the baseline, V(null) unless measured.
          type: float
          sample: 0.04975
        baseline_state:
          description: Its state, as RV(groups[].percentiles.state).
          type: str
        baseline_bound_seconds:
          description: Its bucket bound, when above the largest bucket.
          type: float
        baseline_text:
          description: The baseline as people read it.
          type: str
        ratio:
          description: RV(groups[].percentiles.seconds) over the baseline's, V(null) unless both are measured.
          type: float
          sample: 20.0
slow_groups:
  description: The groups whose verdict is V(slow), the worst first.
  returned: always
  type: list
  elements: str
  sample: [/pay]
top_group:
  description: The slowest group, or V(null).
  returned: always
  type: str
  sample: /pay
weak_groups:
  description: The groups with too little traffic to judge (V(low_traffic)).
  returned: always
  type: list
  elements: str
  sample: [/admin]
new_groups:
  description: The groups with no series at the baseline.
  returned: always
  type: list
  elements: str
  sample: []
group_by:
  description: O(group_by), V(null) when empty.
  returned: always
  type: str
  sample: endpoint
verdict_quantile:
  description: The quantile the verdict reads, the highest of O(quantiles).
  returned: always
  type: str
  sample: p99
quantiles:
  description: O(quantiles), sorted, without repeats.
  returned: always
  type: list
  elements: float
  sample: [0.5, 0.95, 0.99]
onset:
  description:
    - Epoch seconds of the start of the current slow stretch, the first point of RV(history) from which
      the whole service's highest quantile stayed above RV(slow_threshold_seconds) to now.
    - V(null) when not slow now (RV(verdict) is not V(slow), or the whole service's quantile is not above
      the threshold, as when one endpoint alone is slow), when the threshold is not known, or when the
      stretch covers the whole O(lookback) (RV(onset_before_lookback)).
  returned: always
  type: float
  sample: 1796569945.0
onset_iso:
  description: RV(onset) as RFC 3339 UTC.
  returned: always
  type: str
  sample: '2026-12-06T15:12:25Z'
onset_before_lookback:
  description: True when the quantile was above the threshold at every point of O(lookback), so the onset is earlier.
  returned: always
  type: bool
shape:
  description:
    - How the whole service's highest quantile got where it is over O(lookback) (as the error rate's, in
      M(sre.runbooks.error_rate_info)). V(spike) (a rise within about two O(window), as after a deploy),
      V(gradual) (a longer climb), V(steady) (no meaningful rise), or V(unknown) with fewer than three
      points with traffic.
  returned: always
  type: str
  sample: spike
slow_threshold_seconds:
  description:
    - The threshold RV(onset) reads, O(target_seconds) when given, else O(slow_factor) times the whole
      service's baseline (with enough traffic); V(null) when neither is known.
  returned: always
  type: float
  sample: 0.0995
history:
  description:
    - The whole service's highest quantile over O(lookback), about 150 points, oldest first (the range
      query of C(p99_overall)).
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: Epoch seconds.
      type: float
    seconds:
      description:
        - The quantile, to the microsecond; V(null) without traffic (NaN). Above the largest bucket it
          is the bucket's bound, Prometheus' answer (V(null) from a backend that answers +Inf).
      type: float
      sample: 0.99099
history_series:
  description:
    - With O(history), the highest quantile over O(lookback), in seconds, as series for a graph (as the
      C(history) of M(sre.runbooks.error_rate_info) gives the error rate). A time without a figure (no
      traffic, or +Inf) has no point.
  returned: when O(history)
  type: dict
  contains:
    quantile:
      description: The quantile, RV(verdict_quantile).
      type: str
      sample: p99
    overall:
      description: C([epoch, seconds]) pairs of the whole service's quantile, the points of RV(history) with a figure.
      type: list
      elements: list
    groups:
      description:
        - The three groups (of O(group_by)) whose quantile peaked highest over O(lookback), but those with too
          little traffic now (RV(weak_groups)); none without O(group_by).
      type: list
      elements: dict
      contains:
        name:
          description: The group, for example the endpoint C(/predict).
          type: str
        peak_seconds:
          description: Its highest quantile over O(lookback).
          type: float
        points:
          description: C([epoch, seconds]) pairs.
          type: list
          elements: list
  sample:
    quantile: p99
    overall: [[1796569921.0, 0.049876], [1796569945.0, 0.99099]]
    groups: [{name: /pay, peak_seconds: 0.995, points: [[1796569921.0, 0.04975], [1796569945.0, 0.995]]}]
target_seconds:
  description: O(target_seconds), V(null) without one.
  returned: always
  type: float
  sample: 0.5
largest_bucket_seconds:
  description: The largest finite bucket bound of the histogram, V(null) without series.
  returned: always
  type: float
  sample: 5.0
histogram_found:
  description: False when the service has no series of the histogram, now nor at the baseline.
  returned: always
  type: bool
series_now:
  description: False when it has none in the window.
  returned: always
  type: bool
window_seconds:
  description: The rate window, in seconds.
  returned: always
  type: float
  sample: 300.0
baseline_offset_seconds:
  description: O(baseline_offset) in seconds.
  returned: always
  type: float
  sample: 86400.0
evaluated_at:
  description: Epoch seconds at which the figures were taken.
  returned: always
  type: float
queries:
  description:
    - The PromQL sent, by purpose, to reproduce the figures by hand. C(p99) by group, C(p99_overall),
      C(requests) (from C(_count)), C(buckets) (the bucket rates, which tell a quantile above the
      largest bucket), and the same at the baseline offset (C(baseline_p99)...). C(p99_overall), the
      highest quantile's, also runs as a range query over O(lookback) (RV(history)). Also returned when
      a query failed.
  returned: always
  type: dict
  sample:
    p99: histogram_quantile(0.99, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket{service="checkout"}[5m])))
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

from ansible_collections.sre.runbooks.plugins.module_utils import latency_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

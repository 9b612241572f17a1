# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.latency_info: a service's response-time percentiles from its latency histogram,
overall and by group, against its baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import by_group, label_selector, metric_matchers, points_by
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import (
    assess,
    buckets_by,
    build_queries,
    check_metric,
    check_options,
    describe,
    group_label_warning,
    history_series,
    lookback_summary,
    quantile_name,
    range_points,
    values_by,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import option_seconds, option_time
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import lookback_step
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, QueryResult, warn_partial

# The service's latency histogram: the options of the modules that measure its response time.
HISTOGRAM_OPTIONS = dict(
    service=dict(type='str', required=True),
    metric=dict(type='str', default='http_request_duration_seconds'),
    service_label=dict(type='str', default='service'),
    selector=dict(type='dict', default={}),
)

SPEC = endpoint_spec(
    **HISTOGRAM_OPTIONS,
    group_by=dict(type='str', default='endpoint'),
    window=dict(type='str', default='5m'),
    baseline_offset=dict(type='str', default='1d'),
    lookback=dict(type='str', default='1h'),
    quantiles=dict(type='list', elements='float', default=[0.5, 0.95, 0.99]),
    target_seconds=dict(type='float'),
    min_request_rate=dict(type='float', default=0.1),
    slow_factor=dict(type='float', default=2.0),
    at=dict(type='str'),
    history=dict(type='bool', default=False),
)


def sample(results: dict[str, QueryResult], prefix: str, quantiles: list[float], group_by: str | None) -> dict[str, Any]:
    """The answers now (prefix '') or at the baseline ('baseline_') as assess() takes them."""
    return {
        'groups': {q: values_by(results[prefix + quantile_name(q)].series, group_by)
                   for q in quantiles if group_by},
        'overall': {q: next(iter(values_by(results[prefix + quantile_name(q) + '_overall'].series, None).values()),
                            None) for q in quantiles},
        'requests': by_group(results[prefix + 'requests'].series, group_by),
        'buckets': buckets_by(results[prefix + 'buckets'].series, group_by),
    }


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    window = option_seconds(p, 'window')
    offset = option_seconds(p, 'baseline_offset')
    lookback = option_seconds(p, 'lookback')
    at = option_time(p, time.time())
    try:
        quantiles = check_options(p['quantiles'], p['slow_factor'], p['target_seconds'], p['min_request_rate'])
        check_metric(p['metric'])
    except ValueError as err:
        raise RunbookError('invalid option %s' % err)
    if lookback < 3 * window:
        raise RunbookError('invalid option lookback: %s must be at least three windows (%s) to tell a spike '
                           'from a climb' % (p['lookback'], p['window']))
    group_by = p['group_by'] or None

    queries = build_queries(p['metric'], metric_matchers(p), group_by, p['window'], p['baseline_offset'], quantiles)
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    calls: dict[str, Callable[..., Any]] = {name: (lambda q=q: client.query(q, at=at)) for name, q in queries.items()}
    # The whole service's highest quantile over the lookback: the onset and shape of a slowdown.
    top = quantile_name(max(quantiles))
    overall_top = top + '_overall'
    step = lookback_step(lookback)
    calls[overall_top + '_range'] = lambda: client.query_range(queries[overall_top], at - lookback, at, step)
    # With history, the same by group: the series of the incident's graph.
    if p['history'] and group_by:
        calls[top + '_range'] = lambda: client.query_range(queries[top], at - lookback, at, step)
    outcomes = run_all(calls)
    failures = [err for _value, err in outcomes.values() if err is not None]
    if failures:
        failure = failures[0]
        raise RunbookError(str(failure) if isinstance(failure, ApiError) else
                           'latency query failed: %s' % failure, queries=queries)
    results = {name: value for name, (value, _err) in outcomes.items()}

    thresholds = {'target_seconds': p['target_seconds'], 'slow_factor': p['slow_factor'],
                  'min_request_rate': p['min_request_rate']}
    result = assess(sample(results, '', quantiles, group_by), sample(results, 'baseline_', quantiles, group_by),
                    group_by, thresholds)
    series = '%s_bucket%s' % (p['metric'], label_selector(metric_matchers(p)))
    warnings = sorted({w for r in results.values() for w in r.warnings})
    result.update(lookback_summary(result, range_points(results[overall_top + '_range'].series), thresholds, window))
    if p['history']:
        result['history_series'] = history_series(
            range_points(results[overall_top + '_range'].series),
            points_by(results[top + '_range'].series, group_by) if group_by else {}, top, result['weak_groups'])
    result.update(quantiles=quantiles, target_seconds=p['target_seconds'], window_seconds=window,
                  baseline_offset_seconds=offset, evaluated_at=at, queries=queries, query_warnings=warnings,
                  partial=bool(warnings))
    result['message'] = describe(result, p['service'], p['window'], p['baseline_offset'], thresholds, series)
    label_warning = group_label_warning(result, series)
    if label_warning:
        warn(label_warning)
    warn_partial(warn, warnings)
    return result

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.error_rate_info: a service's 5xx ratio, overall and by group, against its baseline.

Also the label check every module built on the request metric runs (label_calls, check_labels).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import (
    METRIC_ARGS,
    NoData,
    assess,
    baseline_offsets,
    build_queries,
    by_group,
    by_status,
    describe,
    history,
    label_selector,
    label_uses,
    metric_matchers,
    missing_labels,
    points,
    points_by,
    service_series,
    status_values_warning,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, parse_duration, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, warn_partial

POINTS_PER_LOOKBACK = 150


def lookback_step(lookback: float) -> float:
    """The step of a range query over the lookback, in seconds: about POINTS_PER_LOOKBACK points."""
    return max(1.0, round(lookback / POINTS_PER_LOOKBACK))


# The queries run over the lookback (their name + '_range'); all but the first two also now.
RANGE_QUERIES = ('errors_overall', 'total_overall', 'errors_by_status')

SPEC = endpoint_spec(
    **METRIC_ARGS,
    group_by=dict(type='str', default='endpoint'),
    window=dict(type='str', default='5m'),
    baseline_offset=dict(type='str', default='1d'),
    lookback=dict(type='str', default='1h'),
    warning_percent=dict(type='float', default=1.0),
    critical_percent=dict(type='float', default=5.0),
    min_request_rate=dict(type='float', default=0.1),
    at=dict(type='str'),
    history=dict(type='bool', default=False),
)


def error_text(err: BaseException) -> str:
    """A failed call as people read it: an ApiError's sentence, else the exception and its text."""
    return str(err) if isinstance(err, ApiError) else '%s: %s' % (type(err).__name__, err)


def short_error(err: BaseException | str) -> str:
    """An error (or its text) in one short clause: the query and the advice dropped, at most 200
    characters."""
    text = err if isinstance(err, str) else error_text(err)
    for cut in (' Query: ', ': check '):
        text = text.split(cut)[0]
    return text[:200]


def label_calls(client: PrometheusClient, p: dict[str, Any], start: float, end: float) -> dict[str, Callable[[], Any]]:
    """The calls of the label check, for run_all alongside the queries: the label names of the
    service's series and the values of its status label, between start and end."""
    series = service_series(p)
    selected = p['metric'] + label_selector(metric_matchers(p))
    return {'labels': lambda: client.labels(series, start, end),
            'status_values': lambda: client.label_values(p['status_label'], selected, start,
                                                         end)}


def check_labels(outcomes: Mapping[str, tuple[Any, BaseException | None]], p: dict[str, Any], group_by: str | None,
                 warn: Callable[[str], Any]) -> tuple[dict[str, Any], list[Any]]:
    """(label_check result, the server's warnings) from the outcomes of label_calls.

    Raises RunbookError when a label the queries use is on none of the service's series (its
    0% would be a lie); warns when the status label's values do not look like HTTP codes, or
    when the check could not run (an old or partial Prometheus API: the figures still count).
    """
    series = service_series(p)
    (names, names_err), (values, values_err) = outcomes['labels'], outcomes['status_values']
    check: dict[str, Any] = {'checked': names_err is None, 'series_labels': None, 'status_values': None,
                             'message': None}
    if names_err is not None:
        check['message'] = ('could not check that the labels used exist on %s: %s'
                            % (series, short_error(names_err)))
        warn(check['message'])
        return check, []
    labels, warnings = names
    check['series_labels'] = [n for n in labels if n != '__name__']
    problem = missing_labels(labels, label_uses(p, group_by), series)
    if problem:
        raise RunbookError(problem, label_check=check)
    if values_err is None:
        check['status_values'], more = values
        warnings = warnings + more
        check['message'] = status_values_warning(check['status_values'], p['status_label'],
                                                 p['status_regex'])
        if check['message']:
            warn(check['message'])
    return check, warnings


def check_thresholds(p: dict[str, Any]) -> None:
    """warning_percent and critical_percent in order, or RunbookError naming both."""
    if not 0 < p['warning_percent'] <= p['critical_percent'] <= 100:
        raise RunbookError('invalid thresholds: need 0 < warning_percent (%s) <= '
                           'critical_percent (%s) <= 100'
                           % (p['warning_percent'], p['critical_percent']))


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    try:
        window = parse_duration(p['window'])
        offset = parse_duration(p['baseline_offset'])
        lookback = parse_duration(p['lookback'])
        at = resolve_time(p['at'], time.time())
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    check_thresholds(p)
    if lookback < 3 * window:
        raise RunbookError('lookback (%s) must be at least three windows (%s) to tell a spike '
                           'from a climb' % (p['lookback'], p['window']))
    if offset <= 0:
        raise RunbookError('invalid option: baseline_offset (%s) must be more than 0s'
                           % p['baseline_offset'])

    offsets = baseline_offsets(p['baseline_offset'], offset)
    queries = build_queries(p['metric'], metric_matchers(p), p['status_label'], p['status_regex'],
                            p['window'], [text for text, _seconds in offsets], p['group_by'])
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    step = lookback_step(lookback)
    calls: dict[str, Callable[..., Any]] = {name: (lambda q=q: client.query(q, at=at)) for name, q in queries.items()
                                            if name not in RANGE_QUERIES[:2]}
    ranged = RANGE_QUERIES + (('errors', 'total') if p['history'] else ())
    calls.update({name + '_range': (lambda q=queries[name]:
                                    client.query_range(q, at - lookback, at, step))
                  for name in ranged})
    checks = label_calls(client, p, at - lookback, at)
    calls.update(checks)
    outcomes = run_all(calls)
    failures = [err for name, (_value, err) in outcomes.items()
                if err is not None and name not in checks]
    if failures:
        failure = failures[0]
        raise RunbookError(str(failure) if isinstance(failure, ApiError) else
                           'error rate query failed: %s' % failure, queries=queries)
    label_check, label_warnings = check_labels(outcomes, p, p['group_by'], warn)
    results = {name: value for name, (value, _err) in outcomes.items() if name not in checks}

    def sample(prefix: str, suffix: str = '') -> dict[str, dict[str, float]]:
        return {'errors': by_group(results[prefix + 'errors' + suffix].series, p['group_by']),
                'total': by_group(results[prefix + 'total' + suffix].series, p['group_by'])}

    thresholds = {'warning': p['warning_percent'] / 100.0,
                  'critical': p['critical_percent'] / 100.0,
                  'min_request_rate': p['min_request_rate']}
    baselines = [(text, seconds, sample('baseline_', '_%d' % (i + 1) if i else ''))
                 for i, (text, seconds) in enumerate(offsets)]
    total_points = points(results['total_overall_range'].series)
    try:
        result = assess(sample(''), baselines,
                        (points(results['errors_overall_range'].series), total_points),
                        thresholds, p['group_by'], window)
    except NoData:
        raise RunbookError(
            'no series of %s match %s=%r%s in the last %s: check the service name, the metric '
            'and the service_label (the runbooks use service, app or job); run the total query '
            'in Prometheus to see what exists' % (
                p['metric'], p['service_label'], p['service'],
                ''.join(' %s=%r' % kv for kv in sorted(p['selector'].items())), p['lookback']),
            queries=queries, label_check=label_check)
    warnings = sorted({w for r in results.values() for w in r.warnings} | set(label_warnings))
    result.update(
        by_status=by_status(results['errors_by_status'].series,
                            results['errors_by_status_range'].series, total_points,
                            p['status_label'], thresholds, window,
                            result['verdict'] in ('warning', 'critical')),
        onset_iso=iso(result['onset']), last_seen_iso=iso(result['last_seen']),
        window_seconds=window, evaluated_at=at, queries=queries, query_warnings=warnings,
        partial=bool(warnings), label_check=label_check)
    if p['history']:
        result['history'] = dict(history(points(results['errors_overall_range'].series), total_points,
                                         points_by(results['errors_range'].series, p['group_by']),
                                         points_by(results['total_range'].series, p['group_by'])),
                                 warning_percent=p['warning_percent'], critical_percent=p['critical_percent'])
    result['message'] = describe(result, p['service'], p['window'], p['baseline_offset'],
                                 thresholds)
    warn_partial(warn, warnings)
    return result

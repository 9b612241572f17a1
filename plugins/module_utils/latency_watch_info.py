# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.latency_watch_info: a service's p99, measured until it stays at or under target."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import by_group, label_selector, metric_matchers
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import (
    NO_SERIES,
    buckets_by,
    build_queries,
    check_metric,
    check_options,
    condition,
    duration_text,
    percentile,
    quantile_name,
    sample_health,
    values_by,
    watch_verdict,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.formatting import seconds
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, option_seconds
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import error_text, short_error
from ansible_collections.sre.runbooks.plugins.module_utils.latency_info import HISTOGRAM_OPTIONS
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient

SPEC = endpoint_spec(
    **HISTOGRAM_OPTIONS,
    quantiles=dict(type='list', elements='float', default=[0.99]),
    target_seconds=dict(type='float', required=True),
    window=dict(type='str', default='1m'),
    stable_for=dict(type='str', default='10m'),
    deadline=dict(type='str', default='15m'),
    interval=dict(type='str', default='15s'),
    min_request_rate=dict(type='float', default=0.1),
)


def measure(client: PrometheusClient, queries: Mapping[str, str], quantile: float
            ) -> tuple[dict[str, Any] | None, float | None, BaseException | None]:
    """One measurement, its queries run concurrently: (the quantile's percentile() entry, requests
    per second, None), or (None, None, the first error) when a query failed. Never raises."""
    outcomes = run_all({name: (lambda q=q: client.query(q)) for name, q in queries.items()})
    failed = [err for _value, err in outcomes.values() if err is not None]
    if failed:
        return None, None, failed[0]
    series = {name: value.series for name, (value, _err) in outcomes.items()}
    answer = next(iter(values_by(series[quantile_name(quantile) + '_overall'], None).values()), None)
    entry = percentile(quantile, answer, buckets_by(series['buckets'], None).get(''))
    return entry, by_group(series['requests'], None).get(''), None


def describe(p: dict[str, Any], outcome: dict[str, Any], samples: list[tuple[float, dict[str, Any] | None, float | None]],
             first_seconds: float | None, errors: list[str], elapsed: float) -> str:
    """The outcome in one line, from the samples (time, percentile() entry or None when a query
    failed, requests per second): recovered, not recovered (the last measurement and the first
    figure), or could not verify (why, and the last measurement that counted)."""
    target, min_rate = p['target_seconds'], p['min_request_rate']
    measured = [(t, condition(entry, rate, target, min_rate)) for t, entry, rate in samples
                if sample_health(entry, rate, target, min_rate) is not None]
    stretch = 'at or under target for %s of the %s needed' % (seconds(outcome['stable_seconds']), p['stable_for'])
    # Recovered or not, the verdict rests on measurements.
    if outcome['verdict'] == 'recovered':
        return '%s recovered: %s for %s, after %s' % (
            p['service'], measured[-1][1], seconds(outcome['stable_seconds']), seconds(elapsed))
    if outcome['verdict'] == 'not_recovered':
        first = '' if first_seconds is None else '; %s at first, %s' % (duration_text(first_seconds), outcome['trend'])
        return '%s did not recover within %s: %s%s; %s' % (p['service'], p['deadline'], measured[-1][1], first, stretch)
    failed = sum(1 for _t, entry, _rate in samples if entry is None)
    no_series = sum(1 for _t, entry, _rate in samples if entry is not None and entry['state'] == NO_SERIES)
    reasons = []
    if failed:
        reasons.append('Prometheus at %s did not answer %d of the %d measurements (last: %s)'
                       % (p['url'], failed, len(samples), short_error(errors[-1])))
    if no_series:
        reasons.append('%d of the %d measurements found no series of %s_bucket%s: check the service name, '
                       "service_label, selector and metric (the histogram's base name, without _bucket)"
                       % (no_series, len(samples), p['metric'], label_selector(metric_matchers(p))))
    text = '%s: could not verify within %s: %s' % (p['service'], p['deadline'], '; '.join(reasons))
    if not measured:
        return text + '; nothing measured, so recovery is neither confirmed nor denied'
    return text + '; last measured at %s: %s, %s' % (iso(measured[-1][0]), measured[-1][1], stretch)


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    option_seconds(p, 'window')
    stable_for, deadline, interval = (option_seconds(p, k) for k in ('stable_for', 'deadline', 'interval'))
    try:
        quantile = max(check_options(p['quantiles'], None, p['target_seconds'], p['min_request_rate']))
        check_metric(p['metric'])
    except ValueError as err:
        raise RunbookError('invalid option %s' % err)
    if stable_for > deadline:
        raise RunbookError('invalid option stable_for: %s is longer than the deadline (%s): the watch could never '
                           'see it' % (p['stable_for'], p['deadline']))
    queries = build_queries(p['metric'], metric_matchers(p), None, p['window'], None, [quantile])
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    target, min_rate = p['target_seconds'], p['min_request_rate']
    started = time.time()
    samples: list[tuple[float, dict[str, Any] | None, float | None]] = []
    shown: list[dict[str, Any]] = []
    errors: list[str] = []
    while True:
        now = time.time()
        entry, rate, failure = measure(client, queries, quantile)
        if failure is not None:
            errors.append(error_text(failure))
        samples.append((now, entry, rate))
        shown.append({'time': now, 'time_iso': iso(now), 'seconds': None if entry is None else entry['seconds'],
                      'state': None if entry is None else entry['state'], 'request_rate': rate,
                      'measured': sample_health(entry, rate, target, min_rate) is not None})
        outcome = watch_verdict(samples, target, stable_for, min_rate)
        if outcome['recovered'] or now + interval > started + deadline:
            break
        time.sleep(interval)
    figures = [s['seconds'] for s in shown if s['seconds'] is not None]
    first_seconds = figures[0] if figures else None
    elapsed = time.time() - started
    return dict(recovered=outcome['recovered'], verdict=outcome['verdict'],
                message=describe(p, outcome, samples, first_seconds, errors, elapsed), samples=shown,
                first_seconds=first_seconds, last_seconds=figures[-1] if figures else None,
                stable_seconds=outcome['stable_seconds'], trend=outcome['trend'],
                failed_samples=sum(1 for s in shown if not s['measured']), query_errors=errors,
                elapsed_seconds=round(elapsed, 1), verdict_quantile=quantile_name(quantile), queries=queries)

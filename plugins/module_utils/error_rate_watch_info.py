# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.error_rate_watch_info: a service's 5xx ratio, measured until it stays under target."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import (
    METRIC_ARGS,
    build_queries,
    by_group,
    metric_matchers,
    ratio,
    to_percent,
    watch_verdict,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.formatting import percent, seconds
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, parse_duration
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import check_labels, error_text, label_calls, short_error
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient

# The labels the queries use are checked on the service's series of the last hour.
LABEL_LOOKBACK = 3600

SPEC = endpoint_spec(
    **METRIC_ARGS,
    window=dict(type='str', default='1m'),
    target_percent=dict(type='float', default=1.0),
    stable_for=dict(type='str', default='10m'),
    deadline=dict(type='str', default='15m'),
    interval=dict(type='str', default='15s'),
    min_request_rate=dict(type='float', default=0.1),
)


def measure(client: PrometheusClient, queries: dict[str, str], extra: Mapping[str, Callable[[], Any]]
            ) -> tuple[tuple[float | None, float | None] | None, BaseException | None, dict[str, tuple[Any, BaseException | None]]]:
    """One measurement, concurrently with the calls in `extra`: ((errors per second, requests
    per second) or None, the first error or None, the outcomes of `extra`). A series that does
    not exist is None; never raises."""
    calls: dict[str, Callable[..., Any]] = {name: (lambda q=queries[name]: client.query(q))
                                            for name in ('errors_overall', 'total_overall')}
    calls.update(extra)
    outcomes = run_all(calls)
    failed = [err for name, (_value, err) in outcomes.items() if err is not None and name in queries]
    if failed:
        return None, failed[0], outcomes
    rates = {name: by_group(outcomes[name][0].series, None).get('') for name in queries}
    return (rates['errors_overall'], rates['total_overall']), None, outcomes


def describe(p: dict[str, Any], outcome: dict[str, Any], shown: list[dict[str, Any]], errors: list[str], elapsed: float) -> str:
    """The outcome in one line: recovered, not recovered, or could not verify (and why)."""
    with_traffic = [s['error_percent'] for s in shown if s['error_percent'] is not None]
    first, last = (with_traffic[0], with_traffic[-1]) if with_traffic else (None, None)
    now, at_first = (percent(last, 2, trim=True), percent(first, 2, trim=True))
    if outcome['verdict'] == 'recovered':
        return ('%s recovered: under %g%% errors for %s (now %s), after %s'
                % (p['service'], p['target_percent'], seconds(outcome['stable_seconds']), now, seconds(elapsed)))
    if outcome['verdict'] == 'not_recovered':
        return ('%s did not recover within %s: %s errors now (%s at first, %s), under %g%% '
                'for only %s of the %s needed'
                % (p['service'], p['deadline'], now if last is not None else 'no traffic', at_first,
                   outcome['trend'], p['target_percent'], seconds(outcome['stable_seconds']), p['stable_for']))
    failed = sum(1 for s in shown if not s['measured'])
    text = ('%s: could not verify: Prometheus at %s did not answer %d of the %d measurements in '
            '%s (last: %s)' % (p['service'], p['url'], failed, len(shown), p['deadline'],
                               short_error(errors[-1])))
    measured = [s for s in shown if s['measured']]
    if not measured:
        return text + '; none succeeded, so recovery is neither confirmed nor denied'
    return text + '; last measured at %s: %s, under %g%% for %s of the %s needed' % (
        measured[-1]['time_iso'], 'no traffic' if measured[-1]['error_percent'] is None
        else '%s errors' % percent(measured[-1]['error_percent'], 2, trim=True), p['target_percent'],
        seconds(outcome['stable_seconds']), p['stable_for'])


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    try:
        parse_duration(p['window'])
        stable_for, deadline, interval = (parse_duration(p[k])
                                          for k in ('stable_for', 'deadline', 'interval'))
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    if not 0 < p['target_percent'] < 100 or interval <= 0 or deadline < stable_for:
        raise RunbookError('invalid options: need 0 < target_percent < 100, interval > 0 and '
                           'deadline (%s) >= stable_for (%s)' % (p['deadline'], p['stable_for']))
    queries = build_queries(p['metric'], metric_matchers(p), p['status_label'], p['status_regex'],
                            p['window'], (), None)
    queries = {k: queries[k] for k in ('errors_overall', 'total_overall')}
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    target = p['target_percent'] / 100.0
    started = time.time()
    samples: list[tuple[float, float | None, float | None, bool]] = []
    shown: list[dict[str, Any]] = []
    errors: list[str] = []
    label_check: dict[str, Any] | None = None
    while True:
        now = time.time()
        # The labels are checked with the measurements until the check has an answer.
        checks = {} if label_check else label_calls(client, p, now - LABEL_LOOKBACK, now)
        rates, failure, outcomes = measure(client, queries, checks)
        if checks and outcomes['labels'][1] is None:
            label_check, _warnings = check_labels(outcomes, p, None, warn)
        if failure is not None:
            errors.append(error_text(failure))
        errors_rate, total = rates or (None, None)
        samples.append((now, errors_rate, total, rates is not None))
        error_percent = to_percent(ratio(errors_rate, total))
        shown.append({'time': now, 'time_iso': iso(now), 'error_percent': error_percent,
                      'request_rate': total, 'measured': rates is not None})
        outcome = watch_verdict(samples, target, stable_for, p['min_request_rate'])
        if outcome['recovered'] or now + interval > started + deadline:
            break
        time.sleep(interval)
    if label_check is None:
        label_check = {'checked': False, 'series_labels': None, 'status_values': None,
                       'message': 'could not check that the labels used exist: Prometheus did '
                                  'not answer'}
        warn(label_check['message'])
    with_traffic = [s['error_percent'] for s in shown if s['error_percent'] is not None]
    last_measured = shown[-1]['measured']
    return dict(recovered=outcome['recovered'], verdict=outcome['verdict'],
                measured=last_measured,
                unmeasured_reason=None if last_measured else short_error(errors[-1]),
                failed_samples=sum(1 for s in shown if not s['measured']),
                stable_seconds=outcome['stable_seconds'], trend=outcome['trend'],
                first_percent=with_traffic[0] if with_traffic else None,
                last_percent=with_traffic[-1] if with_traffic else None,
                elapsed_seconds=round(time.time() - started, 1), samples=shown,
                query_errors=errors,
                message=describe(p, outcome, shown, errors, time.time() - started),
                queries=queries, label_check=label_check)

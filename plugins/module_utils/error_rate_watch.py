# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.error_rate_watch: a service's 5xx ratio, measured until it stays under target."""

from __future__ import annotations

import time

from ansible_collections.sre.runbooks.plugins.module_utils.collector import CollectError
from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import (
    METRIC_ARGS, build_queries, by_group, metric_matchers, recovery)
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, endpoint_spec)
from ansible_collections.sre.runbooks.plugins.module_utils.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus import (
    PrometheusClient, iso, parse_duration)

SPEC = endpoint_spec(
    **METRIC_ARGS,
    window=dict(type='str', default='1m'),
    target_percent=dict(type='float', default=1.0),
    stable_for=dict(type='str', default='10m'),
    deadline=dict(type='str', default='15m'),
    interval=dict(type='str', default='15s'),
    min_request_rate=dict(type='float', default=0.1),
)


def measure(client, queries):
    """(errors per second, requests per second) now; None for a series that does not exist."""
    outcomes = run_all({name: (lambda q=queries[name]: client.query(q))
                        for name in ('errors_overall', 'total_overall')})
    for _value, err in outcomes.values():
        if err is not None:
            raise err
    rates = {name: by_group(value.series, None).get('') for name, (value, _err) in outcomes.items()}
    return rates['errors_overall'], rates['total_overall']


def collect(p, warn):
    del warn  # the watch reports its failed queries in query_errors
    try:
        parse_duration(p['window'])
        stable_for, deadline, interval = (parse_duration(p[k])
                                          for k in ('stable_for', 'deadline', 'interval'))
    except ValueError as err:
        raise CollectError('invalid option: %s' % err)
    if not 0 < p['target_percent'] < 100 or interval <= 0 or deadline < stable_for:
        raise CollectError('invalid options: need 0 < target_percent < 100, interval > 0 and '
                           'deadline (%s) >= stable_for (%s)' % (p['deadline'], p['stable_for']))
    queries = build_queries(p['metric'], metric_matchers(p), p['status_label'], p['status_regex'],
                            p['window'], '0s', None)
    queries = {k: queries[k] for k in ('errors_overall', 'total_overall')}
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    target = p['target_percent'] / 100.0
    started = time.time()
    samples, shown, errors = [], [], []
    while True:
        now = time.time()
        try:
            errors_rate, total = measure(client, queries)
        except ApiError as err:
            errors_rate, total = None, None
            errors.append(str(err))
        samples.append((now, errors_rate, total))
        percent = round(100.0 * (errors_rate or 0.0) / total, 3) if total else None
        shown.append({'time': now, 'time_iso': iso(now), 'error_percent': percent,
                      'request_rate': total})
        verdict = recovery(samples, target, stable_for, p['min_request_rate'])
        if verdict['recovered'] or now + interval > started + deadline:
            break
        time.sleep(interval)
    if len(errors) == len(samples):
        raise CollectError('no measurement of %s succeeded in %s: %s'
                           % (p['service'], p['deadline'], errors[-1]), queries=queries)
    measured = [s['error_percent'] for s in shown if s['error_percent'] is not None]
    elapsed = round(time.time() - started, 1)
    first, last = (measured[0], measured[-1]) if measured else (None, None)
    if verdict['recovered']:
        message = ('%s recovered: under %g%% errors for %.0f s (now %s%%), after %.0f s'
                   % (p['service'], p['target_percent'], verdict['stable_seconds'], last, elapsed))
    else:
        message = ('%s did not recover within %s: %s%% errors now (%s%% at first, %s), under %g%% '
                   'for only %.0f s of the %s needed'
                   % (p['service'], p['deadline'], last, first, verdict['trend'],
                      p['target_percent'], verdict['stable_seconds'], p['stable_for']))
    return dict(recovered=verdict['recovered'], stable_seconds=verdict['stable_seconds'],
                trend=verdict['trend'], first_percent=first, last_percent=last,
                elapsed_seconds=elapsed, samples=shown, query_errors=errors, message=message,
                queries=queries)

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.error_rate: a service's 5xx ratio, overall and by group, against its baseline."""

from __future__ import annotations

import time

from ansible_collections.sre.runbooks.plugins.module_utils.collector import CollectError
from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import (
    METRIC_ARGS, NoData, assess, build_queries, by_group, describe, metric_matchers, points)
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, endpoint_spec)
from ansible_collections.sre.runbooks.plugins.module_utils.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus import (
    PrometheusClient, iso, parse_duration, resolve_time, warn_partial)

POINTS_PER_LOOKBACK = 150

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
)


def collect(p, warn):
    try:
        window = parse_duration(p['window'])
        parse_duration(p['baseline_offset'])
        lookback = parse_duration(p['lookback'])
        at = resolve_time(p['at'], time.time())
    except ValueError as err:
        raise CollectError('invalid option: %s' % err)
    if not 0 < p['warning_percent'] <= p['critical_percent'] <= 100:
        raise CollectError('invalid thresholds: need 0 < warning_percent (%s) <= '
                           'critical_percent (%s) <= 100'
                           % (p['warning_percent'], p['critical_percent']))
    if lookback < 3 * window:
        raise CollectError('lookback (%s) must be at least three windows (%s) to tell a spike '
                           'from a climb' % (p['lookback'], p['window']))

    queries = build_queries(p['metric'], metric_matchers(p), p['status_label'], p['status_regex'],
                            p['window'], p['baseline_offset'], p['group_by'])
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    step = max(1.0, round(lookback / POINTS_PER_LOOKBACK))
    calls = {name: (lambda q=q: client.query(q, at=at)) for name, q in queries.items()
             if not name.endswith('_overall')}
    calls.update({name: (lambda q=q: client.query_range(q, at - lookback, at, step))
                  for name, q in queries.items() if name.endswith('_overall')})
    outcomes = run_all(calls)
    failures = [err for _value, err in outcomes.values() if err is not None]
    if failures:
        err = failures[0]
        raise CollectError(str(err) if isinstance(err, ApiError) else
                           'error rate query failed: %s' % err, queries=queries)
    results = {name: value for name, (value, _err) in outcomes.items()}

    def sample(prefix):
        return {'errors': by_group(results[prefix + 'errors'].series, p['group_by']),
                'total': by_group(results[prefix + 'total'].series, p['group_by'])}

    thresholds = {'warning': p['warning_percent'] / 100.0,
                  'critical': p['critical_percent'] / 100.0,
                  'min_request_rate': p['min_request_rate']}
    try:
        result = assess(sample(''), sample('baseline_'),
                        (points(results['errors_overall'].series),
                         points(results['total_overall'].series)),
                        thresholds, p['group_by'], window)
    except NoData:
        raise CollectError(
            'no series of %s match %s=%r%s in the last %s: check the service name, the metric '
            'and the service_label (the runbooks use service, app or job); run the total query '
            'in Prometheus to see what exists' % (
                p['metric'], p['service_label'], p['service'],
                ''.join(' %s=%r' % kv for kv in sorted(p['selector'].items())), p['lookback']),
            queries=queries)
    warnings = sorted({w for r in results.values() for w in r.warnings})
    result.update(onset_iso=iso(result['onset']), last_seen_iso=iso(result['last_seen']),
                  window_seconds=window,
                  evaluated_at=at, queries=queries, query_warnings=warnings,
                  partial=bool(warnings))
    result['message'] = describe(result, p['service'], p['window'], p['baseline_offset'],
                                 thresholds)
    warn_partial(warn, warnings)
    return result

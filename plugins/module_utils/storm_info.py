# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.storm_info: the 5xx ratio of many services at once, in one query per kind, and the
cause they share (analysis/storm.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import by_group, label_selector, metric_matchers
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.storm import assess, dependency_states, describe, part_of, service_rows
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import option_seconds, option_time
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import check_labels, check_thresholds, label_calls
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, warn_partial

SPEC = endpoint_spec(
    services=dict(type='list', elements='dict', required=True, options=dict(
        name=dict(type='str', required=True),
        depends_on=dict(type='list', elements='str', default=[]),
        location=dict(type='str'),
    )),
    metric=dict(type='str', default='http_requests_total'),
    service_label=dict(type='str', default='service'),
    status_label=dict(type='str', default='status'),
    status_regex=dict(type='str', default='5..'),
    selector=dict(type='dict', default={}),
    window=dict(type='str', default='5m'),
    warning_percent=dict(type='float', default=1.0),
    critical_percent=dict(type='float', default=5.0),
    min_request_rate=dict(type='float', default=0.1),
    several=dict(type='int', default=2),
    dependency_checks=dict(type='dict', default={}),
    at=dict(type='str'),
)


def build_queries(p: dict[str, Any]) -> dict[str, str]:
    """The two queries of the storm, each over every service of p['service'] (a list), by service."""
    selected = metric_matchers(p)
    errors = selected + [(p['status_label'], '=~', p['status_regex'])]
    by = 'sum by (%s) (rate(%%s%%s[%s]))' % (p['service_label'], p['window'])
    return {'errors': by % (p['metric'], label_selector(errors)),
            'total': by % (p['metric'], label_selector(selected))}


def check_options(p: dict[str, Any]) -> float:
    """The window in seconds, once every option is checked."""
    names = [s['name'] for s in p['services']]
    if not names:
        raise RunbookError('services is empty: give the services that alert')
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RunbookError('services names %s more than once: each service once' % ', '.join(duplicates))
    check_thresholds(p)
    if p['several'] < 2:
        raise RunbookError('invalid option several: %d; a cause is shared by 2 services or more' % p['several'])
    for name, check in p['dependency_checks'].items():
        if not isinstance(check, dict) or 'ok' not in check:
            raise RunbookError("dependency_checks[%s] must be a check result with 'ok' (a value of by_name "
                               "of sre.runbooks.service_health_info), not %r" % (name, check))
    return option_seconds(p, 'window')


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    window = check_options(p)
    at = option_time(p, time.time())
    services = p['services']
    names = [s['name'] for s in services]
    dependencies = sorted({d for s in services for d in s['depends_on']} - set(names))
    # Every service and dependency, as the request-metric helpers take one service.
    measured_p = dict(p, service=names + dependencies)
    queries = build_queries(measured_p)

    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    calls: dict[str, Callable[..., Any]] = {name: (lambda q=q: client.query(q, at=at)) for name, q in queries.items()}
    # The label check of error_rate_info: a status label or selector key the series lack reads as 0%.
    checks = label_calls(client, measured_p, at - window, at)
    calls.update(checks)
    outcomes = run_all(calls)
    failures = [err for name, (_value, err) in outcomes.items() if err is not None and name not in checks]
    if failures:
        raise RunbookError(str(failures[0]) if isinstance(failures[0], ApiError) else
                           'storm query failed: %s' % failures[0], queries=queries)
    errors, totals = (by_group(outcomes[kind][0].series, p['service_label']) for kind in ('errors', 'total'))
    if not totals:
        selected = ' and matches %s' % label_selector(sorted((k, '=', v) for k, v in p['selector'].items())) \
            if p['selector'] else ''
        raise RunbookError('no series of %s whose %s label names one of the %d services%s: check metric, '
                           'service_label and selector' % (p['metric'], p['service_label'], len(names), selected),
                           queries=queries)
    label_check, label_warnings = check_labels(outcomes, measured_p, None, warn)

    thresholds = {'warning': p['warning_percent'] / 100, 'critical': p['critical_percent'] / 100,
                  'min_request_rate': p['min_request_rate']}
    rows = service_rows(services, errors, totals, thresholds)
    measured = {row['name']: row['verdict']
                for row in rows + service_rows([{'name': d} for d in dependencies], errors, totals, thresholds)}
    result = assess(rows, dependency_states(rows, measured, p['dependency_checks']), p['several'])
    warnings = sorted({w for name in queries for w in outcomes[name][0].warnings} | set(label_warnings))
    result.update(by_service={name: part_of(result, name) for name in names},
                  dependencies={d: measured[d] for d in dependencies}, queries=queries, label_check=label_check,
                  evaluated_at=at, query_warnings=warnings, partial=bool(warnings),
                  message=describe(result, len(names)))
    warn_partial(warn, warnings)
    return result

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.storm_info: the 5xx ratio of many services at once, in one query per kind, and the
cause they share (analysis/storm.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import by_group, label_selector, label_uses, missing_labels
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.storm import assess, dependency_states, describe, part_of, service_rows
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration, resolve_time
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


REGEX_SPECIAL = re.compile(r'([.^$*+?()\[\]{}|\\])')


def matchers(p: dict[str, Any], names: list[str]) -> list[tuple[str, str, Any]]:
    """[(label, op, value)] that select the requests of every service and dependency named."""
    return [(p['service_label'], '=~', '|'.join(REGEX_SPECIAL.sub(r'\\\1', name) for name in names))] + sorted(
        (k, '=', v) for k, v in p['selector'].items())


def build_queries(p: dict[str, Any], names: list[str]) -> dict[str, str]:
    """The two queries of the storm, each over every service and dependency, by service."""
    selected = matchers(p, names)
    errors = selected + [(p['status_label'], '=~', p['status_regex'])]
    by = 'sum by (%s) (rate(%%s%%s[%s]))' % (p['service_label'], p['window'])
    return {'errors': by % (p['metric'], label_selector(errors)),
            'total': by % (p['metric'], label_selector(selected))}


def check_options(p: dict[str, Any]) -> None:
    names = [s['name'] for s in p['services']]
    if not names:
        raise RunbookError('services is empty: give the services that alert')
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RunbookError('services names %s more than once: each service once' % ', '.join(duplicates))
    try:
        if parse_duration(p['window']) <= 0:
            raise ValueError("'%s' must be more than 0s" % p['window'])
    except ValueError as err:
        raise RunbookError('invalid option window: %s' % err)
    if not 0 < p['warning_percent'] <= p['critical_percent'] <= 100:
        raise RunbookError('invalid options warning_percent %s and critical_percent %s: give 0 < warning <= '
                           'critical <= 100' % (p['warning_percent'], p['critical_percent']))
    if p['several'] < 2:
        raise RunbookError('invalid option several: %d; a cause is shared by 2 services or more' % p['several'])
    for name, check in p['dependency_checks'].items():
        if not isinstance(check, dict) or 'ok' not in check:
            raise RunbookError("dependency_checks[%s] must be a check result with 'ok' (a value of by_name "
                               "of sre.runbooks.service_health_info), not %r" % (name, check))


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    check_options(p)
    try:
        at = resolve_time(p['at'], time.time())
    except ValueError as err:
        raise RunbookError('invalid option at: %s' % err)
    services = p['services']
    names = [s['name'] for s in services]
    dependencies = sorted({d for s in services for d in s['depends_on']} - set(names))
    queries = build_queries(p, names + dependencies)

    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    calls: dict[str, Callable[..., Any]] = {name: (lambda q=q: client.query(q, at=at)) for name, q in queries.items()}
    # The labels the queries use must be on the series: a status label they lack reads as 0%.
    series = p['metric'] + label_selector(matchers(p, names + dependencies))
    calls['labels'] = lambda: client.labels(series, at - parse_duration(p['window']), at)
    outcomes = run_all(calls)
    labels, labels_error = outcomes.pop('labels')
    failures = [failure for _value, failure in outcomes.values() if failure is not None]
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

    problem = missing_labels(labels[0], label_uses(p), series) if labels_error is None else None
    if problem:
        raise RunbookError(problem, queries=queries)
    if labels_error is not None:
        warn('could not check that the labels used exist on %s: %s' % (series, labels_error))

    thresholds = {'warning': p['warning_percent'] / 100, 'critical': p['critical_percent'] / 100,
                  'min_request_rate': p['min_request_rate']}
    rows = service_rows(services, errors, totals, thresholds)
    measured = {row['name']: row['verdict']
                for row in rows + service_rows([{'name': d} for d in dependencies], errors, totals, thresholds)}
    result = assess(rows, dependency_states(rows, measured, p['dependency_checks']), p['several'])
    warnings = sorted({w for value, _err in outcomes.values() for w in value.warnings})
    result.update(by_service={name: part_of(result, name) for name in names},
                  dependencies={d: measured[d] for d in dependencies}, queries=queries, evaluated_at=at,
                  query_warnings=warnings, partial=bool(warnings),
                  message=describe(result, len(names)))
    warn_partial(warn, warnings)
    return result

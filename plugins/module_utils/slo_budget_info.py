# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.slo_budget_info: availability, error budget and burn rates of a service's SLO."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from ansible_collections.sre.runbooks.plugins.module_utils.analysis import slo
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import METRIC_ARGS, label_selector, metric_matchers, to_percent
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, human_duration, iso, parse_duration, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import check_labels, label_calls, short_error
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, QueryResult, warn_partial

# The history held is read to the step over the last RECENT_SPAN seconds (RECENT_POINTS steps),
# and over the whole window to a coarser step (at most 5 minutes, the staleness limit under
# which every sample is seen), as cheap as the window's increase() beside it.
RECENT_SPAN = 3600
RECENT_POINTS = 720
WINDOW_POINTS = 8640
MAX_HISTORY_STEP = 300

SPEC = endpoint_spec(
    **METRIC_ARGS,
    objective=dict(type='float', default=99.5),
    slo_window=dict(type='str', default='30d'),
    incident_start=dict(type='str'),
    incident_end=dict(type='str'),
    availability_rule=dict(type='str', default='slo:availability:ratio_rate30d'),
    budget_rule=dict(type='str', default='slo:availability:error_budget_remaining'),
)


def history_plan(window_seconds: float) -> tuple[float, int, int | None]:
    """(recent span, recent step, window step or None): the steps of the history queries."""
    span = min(window_seconds, RECENT_SPAN)
    step = max(1, int(round(span / RECENT_POINTS)))
    if window_seconds <= span:
        return span, step, None
    return span, step, min(MAX_HISTORY_STEP, max(step, int(round(window_seconds / WINDOW_POINTS))))


def build_queries(p: dict[str, Any], incident_range: str | None, window_seconds: float) -> dict[str, str]:
    """The PromQL by purpose: the recording rules (when named), the window's counters, the error
    and request rates of every burn window, the increases over the incident, and the first
    sample of the service's series (the history held, recently and over the window)."""
    matchers = metric_matchers(p)
    everything = p['metric'] + label_selector(matchers)
    errors = p['metric'] + label_selector(matchers + [(p['status_label'], '=~', p['status_regex'])])
    queries: dict[str, str] = {}
    rule_selector = label_selector([(p['service_label'], '=', p['service'])])
    for name in ('availability_rule', 'budget_rule'):
        if p[name]:
            queries[name] = p[name] + rule_selector
    windows = [('window', p['slo_window'])] + [(w, w) for w in slo.BURN_WINDOWS]
    if incident_range:
        windows.append(('incident', incident_range))
    for name, window in windows:
        function = 'increase' if name in ('window', 'incident') else 'rate'
        queries['%s_errors' % name] = 'sum(%s(%s[%s]))' % (function, errors, window)
        queries['%s_total' % name] = 'sum(%s(%s[%s]))' % (function, everything, window)
    span, step, window_step = history_plan(window_seconds)
    first = 'min(min_over_time(timestamp(%s)[%s:%s]))'
    queries['history_recent'] = first % (everything, format_duration(span), format_duration(step))
    if window_step:
        queries['history'] = first % (everything, p['slo_window'], format_duration(window_step))
    return queries


def first_value(result: QueryResult) -> float | None:
    """The first finite sample of an instant query, None when no series has one."""
    return next((s['value'] for s in result.series if s['value'] is not None), None)


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    now = time.time()
    try:
        objective = p['objective'] / 100.0
        slo.allowed_error_ratio(objective)
        window_seconds = parse_duration(p['slo_window'])
        start = None if p['incident_start'] is None else resolve_time(p['incident_start'], now)
        end = resolve_time(p['incident_end'], now)
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    if window_seconds <= 0:
        raise RunbookError('invalid option: slo_window (%s) must be more than 0s' % p['slo_window'])
    if start is not None and start >= end:
        raise RunbookError('incident_start (%s) must come before incident_end (%s)'
                           % (iso(start), iso(end)))
    incident_range = None if start is None else format_duration(max(1.0, end - start))
    queries = build_queries(p, incident_range, window_seconds)

    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    calls: dict[str, Callable[..., Any]] = {
        name: (lambda q=q, at=(end if name.startswith('incident_') else now): client.query(q, at=at))
        for name, q in queries.items()}
    checks = label_calls(client, p, now - window_seconds, now)
    calls.update(checks)
    outcomes = run_all(calls)
    optional = set(checks) | {'history', 'history_recent'}
    failures = [err for name, (_value, err) in outcomes.items()
                if err is not None and name not in optional]
    if failures:
        failure = failures[0]
        raise RunbookError(str(failure) if isinstance(failure, ApiError) else 'SLO query failed: %s' % failure,
                           queries=queries)
    label_check, label_warnings = check_labels(outcomes, p, None, warn)
    results = {name: value for name, (value, err) in outcomes.items()
               if name not in checks and err is None}
    values = {name: first_value(result) for name, result in results.items()}

    rule_availability = values.get('availability_rule')
    if rule_availability is None and not results['window_total'].series:
        raise RunbookError(
            'no series of %s match %s=%r%s in the last %s, and no %s for it: check the service '
            'name, the metric and the service_label; run the window_total query in Prometheus to '
            'see what exists' % (p['metric'], p['service_label'], p['service'],
                                 ''.join(' %s=%r' % kv for kv in sorted(p['selector'].items())),
                                 p['slo_window'], p['availability_rule'] or 'availability rule'),
            queries=queries, label_check=label_check)

    history_errors = cast('list[BaseException]', [outcomes[name][1] for name in ('history', 'history_recent')
                                                  if name in outcomes and outcomes[name][1] is not None])
    if history_errors:
        warn('could not measure the history Prometheus holds for %s, the figures are taken as '
             'covering the whole %s: %s' % (p['service'], p['slo_window'],
                                            short_error(history_errors[0])))
        history = None
    else:
        span, step, _window_step = history_plan(window_seconds)
        history = slo.history_held(now, window_seconds, values['history_recent'], span, step,
                                   values.get('history'))

    source = 'counters' if rule_availability is None else 'rules'
    avail = (slo.availability(values['window_errors'], values['window_total'])
             if rule_availability is None else rule_availability)
    remaining = values.get('budget_rule') if source == 'rules' else None
    if remaining is None:
        remaining = slo.budget_remaining(avail, objective)
    burn_rates = {w: slo.burn_rate(values['%s_errors' % w], values['%s_total' % w], objective)
                  for w in slo.BURN_WINDOWS}
    alerts = slo.multiwindow_alerts(burn_rates)
    warnings = sorted({w for r in results.values() for w in r.warnings} | set(label_warnings))
    warn_partial(warn, warnings)

    expected = slo.expected_requests(values['window_total'], history, window_seconds)
    result: dict[str, Any] = {
        'service': p['service'],
        'objective': p['objective'],
        'slo_window': p['slo_window'],
        'window_seconds': window_seconds,
        'history_seconds': None if history is None else round(history, 1),
        'history_short': slo.history_short(history, window_seconds),
        'expected_window_requests': expected,
        'availability': avail,
        'availability_percent': to_percent(avail),
        'budget_remaining': {
            'fraction': remaining,
            'percent': to_percent(remaining),
            'minutes': slo.budget_minutes(remaining, objective, window_seconds),
            'allowed_minutes': slo.budget_minutes(1.0, objective, window_seconds),
        },
        'budget_burned_during_incident': None if start is None else incident_burn(
            values, objective, window_seconds, start, end, expected),
        'burn_rates': burn_rates,
        'current_burn_rate': burn_rates[slo.BURN_WINDOWS[0]],
        'alerts': alerts,
        'source': source,
        'evaluated_at': now,
        'queries': queries,
        'query_warnings': warnings,
        'partial': bool(warnings),
        'label_check': label_check,
    }
    result['message'] = describe(result)
    return result


def incident_burn(values: Mapping[str, Any], objective: float, window_seconds: float, start: float, end: float,
                  window_requests: float | None) -> dict[str, Any]:
    """What the incident cost: its failed requests as a share of the error budget of the whole
    window (window_requests: the window's requests, expected from the history held)."""
    total = values['incident_total']
    # Requests but no 5xx series: no errors. No requests: nothing known.
    errors = (values['incident_errors'] or 0.0) if total else None
    fraction = slo.budget_burned(errors, window_requests, objective)
    return {
        'start': iso(start),
        'end': iso(end),
        'duration_seconds': round(end - start, 3),
        'errors': errors,
        'requests': total,
        'error_ratio': None if errors is None else errors / total,
        'burn_rate': slo.burn_rate(errors, total, objective),
        'fraction': fraction,
        'percent': to_percent(fraction),
        'minutes': slo.budget_minutes(fraction, objective, window_seconds),
    }


def describe(r: dict[str, Any]) -> str:
    """One line for the on-call engineer and the incident document. Figures over a history
    shorter than the window say so."""
    window = human_duration(r['window_seconds'])
    if r['history_short']:
        span = 'the %s of data held, of %s' % (human_duration(r['history_seconds']), window)
    else:
        span = r['slo_window']
    if r['availability'] is None:
        text = ('%s: no requests over %s, so no availability (no traffic is not 100%%)'
                % (r['service'], span))
    else:
        budget = r['budget_remaining']
        text = '%s: availability %s over %s (objective %g%%), ' % (
            r['service'], fmt.percent(r['availability_percent'], 3, missing=fmt.UNKNOWN), span, r['objective'])
        left = fmt.percent(budget['percent'], 1, missing=fmt.UNKNOWN)
        if r['history_short']:
            text += 'at that rate %s of the error budget would be left' % left
        else:
            text += '%s of the error budget left (%s of %s minutes of downtime)' % (
                left, fmt.decimal(budget['minutes'], 1, missing=fmt.UNKNOWN),
                fmt.decimal(budget['allowed_minutes'], 1, missing=fmt.UNKNOWN))
    burned = r['budget_burned_during_incident']
    if burned and burned['percent'] is not None:
        text += '; the incident burned %s of the error budget of %s (%s minutes of downtime)' % (
            fmt.percent(burned['percent'], None), window, fmt.figure(burned['minutes'], missing=fmt.UNKNOWN))
    current = r['current_burn_rate']
    text += '; burn rate %s over %s' % ('unknown (no traffic)' if current is None
                                        else fmt.figure(current) + 'x', slo.BURN_WINDOWS[0])
    for name, alert in sorted(r['alerts'].items()):
        state = {True: 'firing', False: 'not firing', None: 'unknown'}[alert['firing']]
        text += '; %s alert %s' % (name, state)
    text += '; from the %s' % ('recording rules' if r['source'] == 'rules' else 'raw counters')
    if r['history_short'] and r['source'] == 'rules':
        text += ', which rest on the %s of data held' % human_duration(r['history_seconds'])
    return text

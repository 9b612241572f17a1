# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure analysis of request and error rates: no I/O here, so every rule is unit-tested.

Ratios are fractions (0.05 = 5%). A rate of None means "no series": no traffic is never 0% errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, iso

# One group holding at least this share of all errors is where the errors are concentrated.
CONCENTRATION_SHARE = 0.8

# The baseline windows tried, at 1x, 2x, ... this many times the baseline offset.
BASELINE_WINDOWS = 4

FAILING = ('warning', 'critical')

# What an HTTP status label holds: codes (503) or classes (5xx).
_HTTP_STATUS = re.compile(r'[1-5](\d\d|xx)', re.I)

# The request counter of a service and its labels (doc fragment sre.runbooks.request_metric).
METRIC_ARGS = dict(
    service=dict(type='str', required=True),
    metric=dict(type='str', default='http_requests_total'),
    service_label=dict(type='str', default='service'),
    status_label=dict(type='str', default='status'),
    status_regex=dict(type='str', default='5..'),
    selector=dict(type='dict', default={}),
)


class NoData(Exception):
    """No series matched at all: a wrong service name, metric or label, not a quiet service."""


def label_selector(matchers: Iterable[tuple[str, str, Any]]) -> str:
    """'{a="x",b=~"5.."}' from [(label, op, value)], values escaped for PromQL."""
    parts = []
    for label, op, value in matchers:
        escaped = str(value).replace('\\', '\\\\').replace('"', '\\"')
        parts.append('%s%s"%s"' % (label, op, escaped))
    return '{%s}' % ','.join(parts)


_REGEX_SPECIAL = re.compile(r'([.^$*+?()\[\]{}|\\])')


def service_matcher(params: Mapping[str, Any]) -> tuple[str, str, Any]:
    """(label, op, value) of the service, or of every service of a list (a storm's)."""
    service = params['service']
    if isinstance(service, str):
        return params['service_label'], '=', service
    return params['service_label'], '=~', '|'.join(_REGEX_SPECIAL.sub(r'\\\1', name) for name in service)


def metric_matchers(params: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """[(label, op, value)] that select the service's requests, from the METRIC_ARGS options."""
    return [service_matcher(params)] + sorted((k, '=', v) for k, v in params['selector'].items())


def service_series(params: Mapping[str, Any]) -> str:
    """The selector of every series of the service, whatever its other labels."""
    return params['metric'] + label_selector([service_matcher(params)])


def label_uses(params: Mapping[str, Any], group_by: str | None = None) -> list[tuple[str, str]]:
    """[(option, label)]: every label the queries match or group on, besides the service label."""
    uses = [('status_label', params['status_label'])]
    if group_by:
        uses.append(('group_by', group_by))
    return uses + [('selector', key) for key in sorted(params['selector'])]


_LABEL_ADVICE = {
    'status_label': 'set status_label to one of them',
    'group_by': "set group_by to one of them, or to '' for the overall figure only",
    'selector': 'use one of them in selector, or remove %s from it',
}


def missing_labels(present: Iterable[str], uses: Iterable[tuple[str, str]], series: str) -> str | None:
    """None when the series carry every label used; else the error that names each missing one,
    the option that set it and the labels that exist. No labels at all (no series) is for the
    no-data message to say."""
    present = sorted(set(present) - {'__name__'})
    missing = [(option, label) for option, label in uses if label not in present]
    if not present or not missing:
        return None
    names = ["%s '%s'" % ('selector key' if option == 'selector' else option, label)
             for option, label in missing]
    subject = names[0] if len(names) == 1 else '%s and %s' % (', '.join(names[:-1]), names[-1])
    advice: list[str] = []
    for option, label in missing:
        text = _LABEL_ADVICE[option] % label if option == 'selector' else _LABEL_ADVICE[option]
        if text not in advice:
            advice.append(text)
    return '%s %s nothing: %s series carry %s; %s' % (
        subject, 'matches' if len(missing) == 1 else 'match', series, ', '.join(present),
        '; '.join(advice))


def status_values_warning(values: list[str], status_label: str, status_regex: str) -> str | None:
    """A warning when the status label's values match none of status_regex and are not HTTP
    codes either ("OK", "ERROR"): the errors then read as 0%. None otherwise; no values (no
    requests) prove nothing."""
    if not values:
        return None
    errors: re.Pattern[str] | None
    try:
        errors = re.compile(status_regex)
    except re.error:
        errors = None  # PromQL's RE2 syntax is not always Python's: the codes test still applies
    if errors is not None and any(errors.fullmatch(v) for v in values):
        return None
    if any(_HTTP_STATUS.fullmatch(v) for v in values):
        return None
    shown = ', '.join(values[:8]) + (', ...' if len(values) > 8 else '')
    return ("status_label '%s' holds %s, which do not look like HTTP status codes, and none "
            "matches status_regex '%s': the errors read as 0%%; set status_label to the label "
            "holding the HTTP status, or status_regex to the values that mean an error"
            % (status_label, shown, status_regex))


def build_queries(metric: str, matchers: Iterable[tuple[str, str, Any]], status_label: str, status_regex: str, window: str,
                  offsets: Iterable[str], group_by: str | None) -> dict[str, str]:
    """The PromQL this analysis needs: errors and totals now, by group and overall (the overall
    ones also serve the range query that gives the shape and onset), the errors by status, and
    errors and totals at each baseline offset (baseline_* at the first, baseline_*_2 at the
    second...)."""
    all_requests = metric + label_selector(matchers)
    errors = metric + label_selector(list(matchers) + [(status_label, '=~', status_regex)])
    by = 'sum by (%s) ' % group_by if group_by else 'sum '
    rate = 'rate(%s[%s]%s)'
    queries = {
        'errors': by + '(%s)' % (rate % (errors, window, '')),
        'total': by + '(%s)' % (rate % (all_requests, window, '')),
        'errors_overall': 'sum(%s)' % (rate % (errors, window, '')),
        'total_overall': 'sum(%s)' % (rate % (all_requests, window, '')),
        'errors_by_status': 'sum by (%s) (%s)' % (status_label, rate % (errors, window, '')),
    }
    for index, offset in enumerate(offsets):
        suffix = '_%d' % (index + 1) if index else ''
        for name, selected in (('baseline_errors', errors), ('baseline_total', all_requests)):
            queries[name + suffix] = by + '(%s)' % (rate % (selected, window, ' offset ' + offset))
    return queries


def baseline_offsets(offset_text: str, offset_seconds: float) -> list[tuple[str, float]]:
    """[(text, seconds)] of the baseline windows to try, the configured one first: 1x, 2x...
    BASELINE_WINDOWS x the offset (a day's multiples keep the time of day)."""
    return [(offset_text, offset_seconds)] + [
        (format_duration(k * offset_seconds), k * offset_seconds)
        for k in range(2, BASELINE_WINDOWS + 1)]


def by_group(series: Iterable[dict[str, Any]], group_by: str | None) -> dict[str, float]:
    """{group value: rate} from normalised vector series (non-finite samples dropped)."""
    rates: dict[str, float] = {}
    for item in series:
        if item.get('value') is None:
            continue
        key = item['labels'].get(group_by, '') if group_by else ''
        rates[key] = rates.get(key, 0.0) + item['value']
    return rates


def points(series: list[dict[str, Any]]) -> dict[float, float]:
    """{time: value} of the single series of a range query, or {} when it is empty."""
    if not series:
        return {}
    return {t: v for t, v in series[0]['values'] if v is not None}


def points_by(series: Iterable[dict[str, Any]], label: str) -> dict[str, dict[float, float]]:
    """{label value: {time: value}} of a range query grouped by `label`."""
    found: dict[str, dict[float, float]] = {}
    for item in series:
        key = item['labels'].get(label, '')
        found.setdefault(key, {}).update({t: v for t, v in item['values'] if v is not None})
    return found


def ratio(errors: float | None, total: float | None) -> float | None:
    if total is None or total <= 0:
        return None
    return (errors or 0.0) / total


def to_percent(fraction: float | None) -> float | None:
    """A fraction as the percentage a result holds, 0.05 -> 5.0 (rounded to 3 decimals); None for
    none. A value, not text: the messages write it with formatting.percent."""
    return None if fraction is None else round(100.0 * fraction, 3)


# The groups of a history: the ones with the highest peak error rate, beside the overall line.
HISTORY_GROUPS = 3


def history(errors_overall: dict[float, float], total_overall: dict[float, float],
            errors_by: dict[str, dict[float, float]], total_by: dict[str, dict[float, float]]) -> dict[str, Any]:
    """The error rate over time for the incident's graph: {'overall': [[t, percent]...],
    'groups': [{'name', 'peak_percent', 'points'}]} of the HISTORY_GROUPS groups whose error rate
    peaked highest (none that never failed); a time without traffic has no point."""
    def line(errors: dict[float, float], total: dict[float, float]) -> list[list[float]]:
        return [[t, percent] for t in sorted(total)
                for percent in [to_percent(ratio(errors.get(t, 0.0), total[t]))] if percent is not None]

    lines = {name: line(errors_by.get(name, {}), total) for name, total in total_by.items()}
    peaks = {name: max((v for _t, v in points), default=0.0) for name, points in lines.items()}
    failed = sorted((name for name in lines if peaks[name] > 0), key=lambda name: (-peaks[name], name))
    return {'overall': line(errors_overall, total_overall),
            'groups': [{'name': name, 'peak_percent': peaks[name], 'points': lines[name]}
                       for name in failed[:HISTORY_GROUPS]]}


def verdict(error_ratio: float | None, request_rate: float | None, warning: float, critical: float,
            min_request_rate: float) -> str:
    """ok / warning / critical, or no_traffic / low_traffic when the ratio proves nothing."""
    if request_rate is None or request_rate <= 0 or error_ratio is None:
        return 'no_traffic'
    if request_rate < min_request_rate:
        return 'low_traffic'
    if error_ratio > critical:
        return 'critical'
    if error_ratio > warning:
        return 'warning'
    return 'ok'


def ratio_series(error_points: Mapping[float, float], total_points: Mapping[float, float],
                 min_request_rate: float) -> list[tuple[float, float]]:
    """[(t, ratio)] where the traffic is enough for a ratio to mean something."""
    return [(t, (error_points.get(t) or 0.0) / total)
            for t, total in sorted(total_points.items()) if total >= max(min_request_rate, 1e-12)]


def shape_and_onset(series: list[tuple[float, float]], warning: float, window_seconds: float) -> tuple[str, float | None]:
    """How the error ratio got where it is, and when it started rising.

    spike: the rise happened within about two rate windows (a step change, such as a deploy,
    looks like a ramp one window long); gradual: a longer climb; steady: no meaningful change
    over the lookback. The onset is the first point of the last rise.
    """
    if len(series) < 3:
        return 'unknown', None
    values = [value for _time, value in series]
    current = values[-1]
    low_index = min(range(len(values)), key=lambda i: (values[i], -i))
    low = values[low_index]
    rise = current - low
    if rise < max(warning / 2.0, 0.25 * current) or low_index == len(values) - 1:
        return 'steady', None
    start_level = low + 0.1 * rise
    top_level = low + 0.9 * rise
    onset_index = next(i for i in range(low_index, len(values)) if values[i] > start_level)
    top_index = next(i for i in range(onset_index, len(values)) if values[i] >= top_level)
    climb = series[top_index][0] - series[onset_index - 1][0]
    shape = 'spike' if climb <= 2 * window_seconds + 1e-9 else 'gradual'
    return shape, series[onset_index][0]


def _overall(sample: Mapping[str, Mapping[str, float]]) -> tuple[float | None, float | None, float | None]:
    """(errors, total, ratio) of a {'errors': {...}, 'total': {...}} sample; Nones without traffic."""
    if not sample['total']:
        return None, None, None
    total = sum(sample['total'].values())
    errors = sum(sample['errors'].values())
    return errors, total, ratio(errors, total)


def choose_baseline(windows: Iterable[tuple[str, float, Any]],
                    thresholds: Mapping[str, float]) -> tuple[int | None, list[dict[str, Any]]]:
    """The baseline to compare with, from windows [(offset text, offset seconds, sample)], the
    configured offset first.

    Returns (index of the window used or None, what each window looked like). The configured
    window is used unless it was failing itself (warning or critical: it falls on an incident);
    then the nearest earlier window that is ok, else none: a polluted baseline hides the change.
    A window with no traffic (before the data held, or an idle service) is never clean.
    """
    warning, critical = thresholds['warning'], thresholds['critical']
    looked: list[dict[str, Any]] = []
    for text, seconds, sample in windows:
        _errors, total, error_ratio = _overall(sample)
        looked.append({'offset': text, 'offset_seconds': seconds, 'error_ratio': error_ratio,
                       'error_percent': to_percent(error_ratio), 'request_rate': total,
                       'verdict': verdict(error_ratio, total, warning, critical,
                                          thresholds['min_request_rate'])})
    if not looked:
        return None, looked
    if looked[0]['verdict'] not in FAILING:
        return 0, looked
    return next((i for i, w in enumerate(looked) if i and w['verdict'] == 'ok'), None), looked


def assess(now: dict[str, Any], baselines: list[tuple[str, float, Any]], series: tuple[dict[float, float], dict[float, float]], thresholds: Mapping[str, float],
           group_by: str | None, window_seconds: float) -> dict[str, Any]:
    """Everything triage wants to know about the error rate, from query results.

    now: {'errors': {group: rate}, 'total': {group: rate}} over the window. baselines: the same
    at each baseline window, [(offset text, offset seconds, sample)], the configured one first
    (see choose_baseline). series: (error_points, total_points) over the lookback.
    thresholds: warning, critical (fractions), min_request_rate (requests per second).
    """
    warning, critical = thresholds['warning'], thresholds['critical']
    min_rate = thresholds['min_request_rate']
    error_points, total_points = series
    if not now['total'] and not total_points:
        raise NoData()

    errors, total, error_ratio = _overall(now)
    chosen, windows = choose_baseline(baselines, thresholds)
    previous = {'errors': {}, 'total': {}} if chosen is None else baselines[chosen][2]
    base: dict[str, Any] = windows[chosen] if chosen is not None else {}
    base_ratio = base.get('error_ratio')
    overall_verdict = verdict(error_ratio, total, warning, critical, min_rate)

    groups: list[dict[str, Any]] = []
    for key, group_total in now['total'].items():
        group_errors = now['errors'].get(key, 0.0)
        group_ratio = ratio(group_errors, group_total)
        base_group_ratio = ratio(previous['errors'].get(key), previous['total'].get(key))
        groups.append({
            'value': key,
            'request_rate': group_total,
            'error_rate': group_errors,
            'error_ratio': group_ratio,
            'error_percent': to_percent(group_ratio),
            'share_of_errors': (group_errors / errors) if errors else 0.0,
            'baseline_error_ratio': base_group_ratio,
            'verdict': verdict(group_ratio, group_total, warning, critical, min_rate),
        })
    groups.sort(key=lambda g: (-g['error_rate'], -(g['error_ratio'] or 0), g['value']))
    failing = [g for g in groups if g['verdict'] in FAILING]
    concentrated = (len(groups) > 1 and bool(failing)
                    and failing[0]['share_of_errors'] >= CONCENTRATION_SHARE)

    ratios = ratio_series(error_points, total_points, min_rate)
    shape, onset = shape_and_onset(ratios, warning, window_seconds)
    if overall_verdict not in FAILING:
        onset = None
    last_seen = max((t for t, v in total_points.items() if v > 0), default=None)

    return {
        'verdict': overall_verdict,
        'error_ratio': error_ratio,
        'error_percent': to_percent(error_ratio),
        'request_rate': total,
        'error_rate': errors,
        'baseline': {
            'error_ratio': base_ratio,
            'error_percent': base.get('error_percent'),
            'request_rate': base.get('request_rate'),
            'verdict': base.get('verdict'),
            'offset': base.get('offset'),
            'offset_seconds': base.get('offset_seconds'),
            'overlaps_incident': bool(windows) and windows[0]['verdict'] in FAILING,
            'windows': windows,
        },
        'change_percent_points': (None if error_ratio is None or base_ratio is None
                                  else round(100.0 * (error_ratio - base_ratio), 3)),
        'groups': groups,
        'failing_groups': [g['value'] for g in failing],
        'top_group': failing[0]['value'] if failing else None,
        'concentrated': concentrated,
        'shape': shape,
        'onset': onset,
        'last_seen': last_seen,
        'group_by': group_by,
    }


def by_status(now_series: list[dict[str, Any]], range_series: list[dict[str, Any]], total_points: Mapping[float, float], status_label: str,
              thresholds: Mapping[str, float], window_seconds: float, failing: bool) -> list[dict[str, Any]]:
    """The errors split by status code, the most first: each with its rate now, its share of the
    errors, and the shape and onset of its own ratio of all requests over the lookback (so that a
    bad deploy's 500s and a slow dependency's 504s each get their start). Onsets only while the
    service is failing, as for the overall onset."""
    rates = {k: v for k, v in by_group(now_series, status_label).items() if v > 0}
    errors = sum(rates.values())
    history = points_by(range_series, status_label)
    statuses: list[dict[str, Any]] = []
    for status, rate in rates.items():
        ratios = ratio_series(history.get(status, {}), total_points, thresholds['min_request_rate'])
        shape, onset = shape_and_onset(ratios, thresholds['warning'], window_seconds)
        onset = onset if failing else None
        statuses.append({'status': status, 'error_rate': rate, 'share_of_errors': rate / errors,
                         'shape': shape, 'onset': onset, 'onset_iso': iso(onset)})
    statuses.sort(key=lambda s: (-s['error_rate'], s['status']))
    return statuses


def _baseline_text(result: dict[str, Any], offset: str) -> str:
    base = result.get('baseline') or {}
    windows = base.get('windows') or []
    if base.get('overlaps_incident') and windows:
        first = windows[0]
        at, onset = result.get('evaluated_at'), result.get('onset')
        # Before this incident's onset, an earlier one; after it, this one; no onset, either.
        which = 'an incident'
        if at is not None and onset is not None and first['offset_seconds'] is not None:
            which = 'this incident' if at - first['offset_seconds'] >= onset else 'an earlier incident'
        text = '; the baseline %s ago falls on %s (%s)' % (
            first['offset'], which, fmt.percent(first['error_percent'], 1, missing=fmt.UNKNOWN))
        if base.get('offset') is None:
            return text + ' and no window up to %s ago is clean: no clean baseline' % (
                windows[-1]['offset'])
        return text + ': baseline %s %s ago instead' % (
            fmt.percent(base.get('error_percent'), 2, missing=fmt.UNKNOWN), base['offset'])
    if base.get('error_percent') is None:
        return '; no baseline (no traffic %s ago)' % offset
    return '; baseline %s %s ago' % (fmt.percent(base['error_percent'], 2), base.get('offset') or offset)


def describe(result: dict[str, Any], service: str, window: str, offset: str, thresholds: Mapping[str, float]) -> str:
    """One line an on-call engineer reads first. Any figure may be None (unknown)."""
    v = result['verdict']
    if v == 'no_traffic':
        last_seen = result.get('last_seen_iso') or 'never'
        return ('%s: no requests in the last %s (last seen %s): the service may be down or '
                'idle; no traffic is not 0%% errors' % (service, window, last_seen))
    text = '%s: %s of %s req/s answer 5xx over %s (%s' % (
        service, fmt.percent(result.get('error_percent'), 2, missing=fmt.UNKNOWN),
        fmt.rate(result.get('request_rate'), missing=fmt.UNKNOWN), window, v)
    if v == 'low_traffic':
        text += ': under %g req/s, too little traffic to judge' % thresholds['min_request_rate']
    elif v == 'critical':
        text += ' > %g%%' % (100 * thresholds['critical'])
    elif v == 'warning':
        text += ' > %g%%' % (100 * thresholds['warning'])
    text += ')'
    text += _baseline_text(result, offset)
    top = next((g for g in result.get('groups') or [] if g['value'] == result.get('top_group')),
               None)
    if result.get('top_group') is not None and top is not None:
        text += '; %s %s at %s (%s of errors)' % (
            result.get('group_by'), top['value'] or '(none)',
            fmt.percent(top.get('error_percent'), 1, missing=fmt.UNKNOWN),
            fmt.share(top.get('share_of_errors'), missing=fmt.UNKNOWN))
    statuses = result.get('by_status') or []
    if len(statuses) > 1:
        text += '; by status ' + ', '.join(
            '%s %s%s' % (s['status'], fmt.share(s.get('share_of_errors'), missing=fmt.UNKNOWN),
                         ' since %s' % s['onset_iso'] if s.get('onset_iso') else '')
            for s in statuses[:3])
    if result.get('onset_iso'):
        text += '; %s since %s' % (result.get('shape') or 'errors', result['onset_iso'])
    return text


def trend(figures: Sequence[float]) -> str:
    """decreasing, increasing or flat, the last figure against the first (20% either way);
    unknown with fewer than two."""
    if len(figures) < 2:
        return 'unknown'
    first, final = figures[0], figures[-1]
    return 'decreasing' if final < first * 0.8 else 'increasing' if final > first * 1.2 else 'flat'


def watch_outcome(checks: Sequence[tuple[float, bool | None]], stable_for: float) -> dict[str, Any]:
    """The verify step's outcome from its measurements [(t, healthy)], oldest first, whatever
    they measure (the error ratio, a latency quantile); healthy is None for a measurement that
    could not be taken (a failed query, no series to measure).

    Only healthy measurements make a stable stretch: anything else breaks it, since silence is
    not health. verdict: recovered when the stretch lasts stable_for seconds to the last
    measurement; not_measured when the last stable_for seconds hold measurements not taken and
    none that found the service unhealthy, so that recovery can be neither confirmed nor denied;
    else not_recovered."""
    stable_since: float | None = None
    for t, healthy in checks:
        if not healthy:
            stable_since = None
        elif stable_since is None:
            stable_since = t
    stable = 0.0 if stable_since is None else checks[-1][0] - stable_since  # a stretch has checks
    recent = [healthy for t, healthy in checks if t >= checks[-1][0] - stable_for] if checks else []
    if stable_since is not None and stable >= stable_for:
        verdict = 'recovered'
    elif None in recent and False not in recent:
        verdict = 'not_measured'
    else:
        verdict = 'not_recovered'
    return {'recovered': verdict == 'recovered', 'stable_seconds': round(stable, 1), 'verdict': verdict}


def _healthy(errors: float | None, total: float | None, target: float, min_request_rate: float) -> bool:
    return total is not None and total >= min_request_rate and (errors or 0.0) / total < target


def watch_verdict(samples: Sequence[tuple[float, float | None, float | None, bool]], target: float, stable_for: float,
                  min_request_rate: float) -> dict[str, Any]:
    """watch_outcome() and the trend of the error ratio, from samples (t, errors per second,
    requests per second, measured), oldest first: healthy when measured with enough traffic
    and an error ratio under target. A sample without enough traffic breaks the stable stretch;
    one not measured (a failed query) does too, and may make the verdict not_measured."""
    checks = [(t, _healthy(errors, total, target, min_request_rate) if measured else None)
              for t, errors, total, measured in samples]
    ratios = [(errors or 0.0) / total for _t, errors, total, _measured in samples if total]
    return dict(watch_outcome(checks, stable_for), trend=trend(ratios))

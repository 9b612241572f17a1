# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure analysis of request and error rates: no I/O here, so every rule is unit-tested.

Ratios are fractions (0.05 = 5%). A rate of None means "no series": no traffic is never 0% errors.
"""

from __future__ import annotations

# One group holding at least this share of all errors is where the errors are concentrated.
CONCENTRATION_SHARE = 0.8

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


def label_selector(matchers):
    """'{a="x",b=~"5.."}' from [(label, op, value)], values escaped for PromQL."""
    parts = []
    for label, op, value in matchers:
        escaped = str(value).replace('\\', '\\\\').replace('"', '\\"')
        parts.append('%s%s"%s"' % (label, op, escaped))
    return '{%s}' % ','.join(parts)


def metric_matchers(params):
    """[(label, op, value)] that select the service's requests, from the METRIC_ARGS options."""
    return [(params['service_label'], '=', params['service'])] + sorted(
        (k, '=', v) for k, v in params['selector'].items())


def build_queries(metric, matchers, status_label, status_regex, window, offset, group_by):
    """The PromQL this analysis needs: errors and totals, now and at the baseline, by group and
    overall (the overall ones also serve the range query that gives the shape and onset)."""
    all_requests = metric + label_selector(matchers)
    errors = metric + label_selector(list(matchers) + [(status_label, '=~', status_regex)])
    by = 'sum by (%s) ' % group_by if group_by else 'sum '
    rate = 'rate(%s[%s]%s)'
    return {
        'errors': by + '(%s)' % (rate % (errors, window, '')),
        'total': by + '(%s)' % (rate % (all_requests, window, '')),
        'baseline_errors': by + '(%s)' % (rate % (errors, window, ' offset ' + offset)),
        'baseline_total': by + '(%s)' % (rate % (all_requests, window, ' offset ' + offset)),
        'errors_overall': 'sum(%s)' % (rate % (errors, window, '')),
        'total_overall': 'sum(%s)' % (rate % (all_requests, window, '')),
    }


def by_group(series, group_by):
    """{group value: rate} from normalised vector series (non-finite samples dropped)."""
    rates = {}
    for item in series:
        if item.get('value') is None:
            continue
        key = item['labels'].get(group_by, '') if group_by else ''
        rates[key] = rates.get(key, 0.0) + item['value']
    return rates


def points(series):
    """{time: value} of the single series of a range query, or {} when it is empty."""
    if not series:
        return {}
    return {t: v for t, v in series[0]['values'] if v is not None}


def ratio(errors, total):
    if total is None or total <= 0:
        return None
    return (errors or 0.0) / total


def verdict(error_ratio, request_rate, warning, critical, min_request_rate):
    """ok / warning / critical, or no_traffic / low_traffic when the ratio proves nothing."""
    if request_rate is None or request_rate <= 0:
        return 'no_traffic'
    if request_rate < min_request_rate:
        return 'low_traffic'
    if error_ratio > critical:
        return 'critical'
    if error_ratio > warning:
        return 'warning'
    return 'ok'


def ratio_series(error_points, total_points, min_request_rate):
    """[(t, ratio)] where the traffic is enough for a ratio to mean something."""
    return [(t, (error_points.get(t) or 0.0) / total)
            for t, total in sorted(total_points.items()) if total >= max(min_request_rate, 1e-12)]


def shape_and_onset(series, warning, window_seconds):
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


def assess(now, previous, series, thresholds, group_by, window_seconds):
    """Everything triage wants to know about the error rate, from query results.

    now / previous: {'errors': {group: rate}, 'total': {group: rate}} at the window and at the
    baseline offset. series: (error_points, total_points) over the lookback.
    thresholds: warning, critical (fractions), min_request_rate (requests per second).
    """
    warning, critical = thresholds['warning'], thresholds['critical']
    min_rate = thresholds['min_request_rate']
    error_points, total_points = series
    if not now['total'] and not total_points:
        raise NoData()

    def overall(sample):
        if not sample['total']:
            return None, None, None
        total = sum(sample['total'].values())
        errors = sum(sample['errors'].values())
        return errors, total, ratio(errors, total)

    errors, total, error_ratio = overall(now)
    base_errors, base_total, base_ratio = overall(previous)
    overall_verdict = verdict(error_ratio, total, warning, critical, min_rate)

    groups = []
    for key, group_total in now['total'].items():
        group_errors = now['errors'].get(key, 0.0)
        group_ratio = ratio(group_errors, group_total)
        base_group_ratio = ratio(previous['errors'].get(key), previous['total'].get(key))
        groups.append({
            'value': key,
            'request_rate': group_total,
            'error_rate': group_errors,
            'error_ratio': group_ratio,
            'error_percent': _percent(group_ratio),
            'share_of_errors': (group_errors / errors) if errors else 0.0,
            'baseline_error_ratio': base_group_ratio,
            'verdict': verdict(group_ratio, group_total, warning, critical, min_rate),
        })
    groups.sort(key=lambda g: (-g['error_rate'], -(g['error_ratio'] or 0), g['value']))
    failing = [g for g in groups if g['verdict'] in ('warning', 'critical')]
    concentrated = (len(groups) > 1 and bool(failing)
                    and failing[0]['share_of_errors'] >= CONCENTRATION_SHARE)

    ratios = ratio_series(error_points, total_points, min_rate)
    shape, onset = shape_and_onset(ratios, warning, window_seconds)
    if overall_verdict not in ('warning', 'critical'):
        onset = None
    last_seen = max((t for t, v in total_points.items() if v > 0), default=None)

    return {
        'verdict': overall_verdict,
        'error_ratio': error_ratio,
        'error_percent': _percent(error_ratio),
        'request_rate': total,
        'error_rate': errors,
        'baseline': {
            'error_ratio': base_ratio,
            'error_percent': _percent(base_ratio),
            'request_rate': base_total,
            'verdict': verdict(base_ratio, base_total, warning, critical, min_rate),
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


def _percent(value):
    return None if value is None else round(100.0 * value, 3)


def describe(result, service, window, offset, thresholds):
    """One line an on-call engineer reads first."""
    v = result['verdict']
    if v == 'no_traffic':
        last_seen = result.get('last_seen_iso') or 'never'
        return ('%s: no requests in the last %s (last seen %s): the service may be down or '
                'idle; no traffic is not 0%% errors' % (service, window, last_seen))
    text = '%s: %.2f%% of %.2f req/s answer 5xx over %s (%s' % (
        service, result['error_percent'], result['request_rate'], window, v)
    if v == 'low_traffic':
        text += ': under %g req/s, too little traffic to judge' % thresholds['min_request_rate']
    elif v == 'critical':
        text += ' > %g%%' % (100 * thresholds['critical'])
    elif v == 'warning':
        text += ' > %g%%' % (100 * thresholds['warning'])
    text += ')'
    base = result['baseline']
    if base['error_percent'] is None:
        text += '; no baseline (no traffic %s ago)' % offset
    else:
        text += '; baseline %.2f%% %s ago' % (base['error_percent'], offset)
    if result['top_group'] is not None:
        top = next(g for g in result['groups'] if g['value'] == result['top_group'])
        text += '; %s %s at %.1f%% (%.0f%% of errors)' % (
            result['group_by'], top['value'] or '(none)', top['error_percent'],
            100 * top['share_of_errors'])
    if result['onset_iso']:
        text += '; %s since %s' % (result['shape'], result['onset_iso'])
    return text


def recovery(samples, target, stable_for, min_request_rate):
    """Whether the error ratio has stayed under target for stable_for seconds.

    samples: [(t, errors per second or None, requests per second or None)], oldest first. A sample
    without enough traffic breaks the stable stretch: silence is not health.
    """
    stable_since = None
    for t, errors, total in samples:
        healthy = (total is not None and total >= min_request_rate
                   and (errors or 0.0) / total < target)
        if not healthy:
            stable_since = None
        elif stable_since is None:
            stable_since = t
    last = samples[-1][0] if samples else None
    stable = 0.0 if stable_since is None else last - stable_since
    ratios = [(e or 0.0) / n for _t, e, n in samples if n]
    if len(ratios) < 2:
        trend = 'unknown'
    else:
        first, final = ratios[0], ratios[-1]
        trend = ('decreasing' if final < first * 0.8 else 'increasing' if final > first * 1.2
                 else 'flat')
    return {'recovered': stable_since is not None and stable >= stable_for,
            'stable_seconds': round(stable, 1), 'trend': trend}

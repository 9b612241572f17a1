# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure analysis of response times from a Prometheus latency histogram: no I/O here, so every rule
is unit-tested.

The percentiles come from histogram_quantile(), which answers NaN for a window without requests
and, for a quantile beyond the largest finite bucket, the bound of that bucket (Prometheus) or
+Inf (others). Neither is a measurement: no traffic is never 0 s, and a quantile above the largest
bucket is reported as such with the bound, never as a figure. The bucket rates beside the
percentiles tell the second case from a true value at the bound, as Prometheus decides it.

Also the onset and shape of a slowdown over a lookback (lookback_summary), the series of the
incident's graph (history_series), and the verdict of a watch that verifies the recovery
(watch_verdict, on error_rate's watch_outcome).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import (
    HISTORY_GROUPS,
    label_selector,
    shape_and_onset,
    trend,
    watch_outcome,
)
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso

INF = float('inf')

# The states of one percentile.
MEASURED = 'measured'
NO_TRAFFIC = 'no_traffic'
ABOVE = 'above_largest_bucket'
NO_SERIES = 'no_series'

# Row verdicts, worst first; the verdict of the whole service is ok, slow or insufficient_evidence.
ROW_VERDICTS = ('slow', 'unknown', 'ok', 'low_traffic', 'no_traffic')

# Slow groups named in the message, at most.
MESSAGE_GROUPS = 3

# The series of a histogram, which metric must not name.
SUFFIXES = ('_bucket', '_count', '_sum')


def check_options(quantiles: Sequence[float], slow_factor: float | None, target_seconds: float | None,
                  min_request_rate: float) -> list[float]:
    """The quantiles sorted without repeats; ValueError naming the option for a value that makes
    no sense (slow_factor None: a module without it)."""
    if not quantiles:
        raise ValueError('quantiles: empty; give at least one, e.g. [0.5, 0.95, 0.99]')
    for q in quantiles:
        if not (isinstance(q, (int, float)) and 0 < q < 1):
            raise ValueError('quantiles: %r is not between 0 and 1 (both excluded), e.g. 0.99' % (q,))
    if slow_factor is not None and not (math.isfinite(slow_factor) and slow_factor > 1):
        raise ValueError('slow_factor: %s must be more than 1 (how many times its baseline an endpoint '
                         'takes to be slow, e.g. 2.0)' % slow_factor)
    if target_seconds is not None and not (math.isfinite(target_seconds) and target_seconds > 0):
        raise ValueError('target_seconds: %s must be more than 0' % target_seconds)
    if not (math.isfinite(min_request_rate) and min_request_rate >= 0):
        raise ValueError('min_request_rate: %s must be 0 or more' % min_request_rate)
    return sorted(set(float(q) for q in quantiles))


def check_metric(metric: str) -> None:
    """ValueError naming the option when metric is one of the histogram's series, not its base name."""
    for suffix in SUFFIXES:
        if metric.endswith(suffix):
            raise ValueError("metric: give the histogram's base name, %s, not its %s series"
                             % (metric[:-len(suffix)], suffix))


def quantile_name(q: float) -> str:
    """'p99' for 0.99, 'p99_9' for 0.999: a key Jinja reads with a dot."""
    return 'p' + ('%g' % round(100 * q, 6)).replace('.', '_')


def build_queries(metric: str, matchers: Iterable[tuple[str, str, Any]], group_by: str | None,
                  window: str, offset: str | None, quantiles: Iterable[float]) -> dict[str, str]:
    """The PromQL by purpose: each quantile by group (pNN) and overall (pNN_overall), the request
    rate by group (requests, from _count) and the bucket rates by le and group (buckets, for the
    largest bucket), all again at the baseline offset (baseline_*) unless offset is None. Without
    group_by the groups are left out and requests and buckets are the service's."""
    selector = label_selector(list(matchers))
    queries: dict[str, str] = {}
    shifts = [('', '')] + ([] if offset is None else [('baseline_', ' offset ' + offset)])
    for prefix, shift in shifts:
        buckets = 'rate(%s_bucket%s[%s]%s)' % (metric, selector, window, shift)
        for q in quantiles:
            name = prefix + quantile_name(q)
            if group_by:
                queries[name] = 'histogram_quantile(%r, sum by (le, %s) (%s))' % (q, group_by, buckets)
            queries[name + '_overall'] = 'histogram_quantile(%r, sum by (le) (%s))' % (q, buckets)
        count = 'rate(%s_count%s[%s]%s)' % (metric, selector, window, shift)
        queries[prefix + 'requests'] = ('sum by (%s) (%s)' % (group_by, count)) if group_by else 'sum(%s)' % count
        queries[prefix + 'buckets'] = 'sum by (le%s) (%s)' % (', ' + group_by if group_by else '', buckets)
    return queries


def sample_value(item: Mapping[str, Any]) -> float:
    """The sample of a normalised vector series as a float, NaN and +Inf kept (they mean something
    here): from its raw text when it has one."""
    raw = item.get('raw')
    if raw is not None:
        return float(raw)
    value = item.get('value')
    return math.nan if value is None else float(value)


def values_by(series: Iterable[Mapping[str, Any]], group_by: str | None) -> dict[str, float]:
    """{group value: sample} of an instant query (every group '' without group_by)."""
    return {(item['labels'].get(group_by, '') if group_by else ''): sample_value(item) for item in series}


def buckets_by(series: Iterable[Mapping[str, Any]], group_by: str | None) -> dict[str, dict[float, float]]:
    """{group value: {upper bound: rate}} of the bucket rates (le as a number, +Inf as inf); a
    sample that is not finite is left out."""
    found: dict[str, dict[float, float]] = {}
    for item in series:
        try:
            bound = float(item['labels'].get('le', ''))
        except ValueError:
            continue
        value = sample_value(item)
        if not math.isfinite(value):
            continue
        group = item['labels'].get(group_by, '') if group_by else ''
        buckets = found.setdefault(group, {})
        buckets[bound] = buckets.get(bound, 0.0) + value
    return found


def merge_buckets(groups: Iterable[Mapping[float, float]]) -> dict[float, float]:
    """The buckets of the whole service from those of its groups."""
    total: dict[float, float] = {}
    for buckets in groups:
        for bound, value in buckets.items():
            total[bound] = total.get(bound, 0.0) + value
    return total


def largest_bucket(buckets: Mapping[float, float] | None) -> float | None:
    """The largest finite upper bound, None when there is none."""
    finite = [b for b in buckets or () if math.isfinite(b)]
    return max(finite) if finite else None


def beyond_largest_bucket(q: float, buckets: Mapping[float, float] | None) -> bool:
    """Whether quantile q of these bucket rates falls in the +Inf bucket, as histogram_quantile
    decides it: fewer requests up to the largest finite bound than q of them all."""
    if not buckets or INF not in buckets:
        return False
    largest = largest_bucket(buckets)
    total = buckets[INF]
    if largest is None or not total > 0:
        return False
    return buckets[largest] < q * total


def duration_text(seconds: float | None) -> str:
    """A response time as people read it: '49.8 ms', '995 ms', '1.20 s'; 'n/a' for none."""
    value = fmt.number(seconds)
    if value is None:
        return fmt.NOT_AVAILABLE
    if value < 1:
        millis = 1000 * value
        return ('%.0f ms' % millis) if millis >= 100 else ('%.3g ms' % millis)
    return ('%.2f s' % value) if value < 10 else ('%.1f s' % value)


def bound_text(seconds: float) -> str:
    """A bucket's upper bound as its le label reads: '5 s', '250 ms'."""
    return ('%g ms' % round(1000 * seconds, 6)) if seconds < 1 else '%g s' % seconds


def percentile(q: float, value: float | None, buckets: Mapping[float, float] | None) -> dict[str, Any]:
    """One percentile as the result holds it, from histogram_quantile's answer (None: no series;
    NaN: no requests; +Inf or a quantile in the +Inf bucket: above the largest bucket).

    seconds is a figure only when measured; above the largest bucket, bound_seconds is the bucket
    the quantile is above (None when no bucket rates said it)."""
    entry: dict[str, Any] = {'quantile': q, 'seconds': None, 'bound_seconds': None}
    if value is None:
        state = NO_SERIES
    elif math.isnan(value):
        state = NO_TRAFFIC
    elif value == INF or beyond_largest_bucket(q, buckets):
        state = ABOVE
        entry['bound_seconds'] = largest_bucket(buckets)
        if entry['bound_seconds'] is None and math.isfinite(value):
            entry['bound_seconds'] = value
    else:
        state = MEASURED
        entry['seconds'] = value
    entry['state'] = state
    entry['text'] = percentile_text(entry)
    return entry


def percentile_text(entry: Mapping[str, Any]) -> str:
    state = entry['state']
    if state == MEASURED:
        return duration_text(entry['seconds'])
    if state == ABOVE:
        bound = entry.get('bound_seconds')
        return 'above the largest bucket%s' % ('' if bound is None else ' (%s)' % bound_text(bound))
    return 'no traffic' if state == NO_TRAFFIC else 'no data'


def bounds(entry: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(lowest, highest) the percentile can be: the figure twice when measured, (bound, inf) above
    the largest bucket; None without requests."""
    if not entry:
        return None
    if entry['state'] == MEASURED:
        return entry['seconds'], entry['seconds']
    if entry['state'] == ABOVE:
        return entry.get('bound_seconds') or 0.0, INF
    return None


def over_target(entry: Mapping[str, Any], target: float | None) -> str | None:
    """'yes', 'no' or 'unknown' (the bucket hides it), None when there is no target or figure."""
    span = bounds(entry)
    if target is None or span is None:
        return None
    low, high = span
    if low > target or (entry['state'] == ABOVE and low >= target):
        return 'yes'
    return 'no' if high <= target else 'unknown'


def slower(entry: Mapping[str, Any], base: Mapping[str, Any] | None, factor: float) -> str | None:
    """'yes' when at least factor times the baseline, 'no', or 'unknown' (a bucket hides it); None
    when either has no figure."""
    now, then = bounds(entry), bounds(base)
    if now is None or then is None:
        return None
    (low, high), (base_low, base_high) = now, then
    if base_high == INF:
        least = 0.0
    elif base_high > 0:
        least = low / base_high
    else:
        least = INF if low > 0 else 0.0
    most = high / base_low if base_low > 0 else (INF if high > 0 else 0.0)
    if least >= factor:
        return 'yes'
    return 'no' if most < factor else 'unknown'


def evidence(rate: float | None, min_request_rate: float) -> str:
    """'none' without requests, 'weak' under min_request_rate, else 'enough'."""
    if rate is None or not rate > 0:
        return 'none'
    return 'weak' if rate < min_request_rate else 'enough'


def build_row(now: Mapping[float, float | None], then: Mapping[float, float | None] | None,
              rates: tuple[float | None, float | None], buckets: tuple[Mapping[float, float] | None, Mapping[float, float] | None],
              thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """One group, or the whole service: each quantile now and at the baseline, its ratio, and the
    verdict on the highest quantile.

    now, then: {quantile: histogram_quantile's answer or None}; then None when the group has no
    series at the baseline (a new endpoint). rates: requests per second (now, baseline); buckets:
    {bound: rate} (now, baseline). thresholds: target_seconds (or None), slow_factor,
    min_request_rate.

    verdict: no_traffic, low_traffic (under min_request_rate: weak evidence, never slow), else
    slow when the highest quantile is over target_seconds or at least slow_factor times its
    baseline (a baseline under min_request_rate is not compared with), unknown when neither can
    be told (no target nor baseline, or a quantile above the largest bucket hides it), else ok.
    """
    rate, base_rate = rates
    factor, target, min_rate = thresholds['slow_factor'], thresholds['target_seconds'], thresholds['min_request_rate']
    percentiles: dict[str, dict[str, Any]] = {}
    bases: dict[str, dict[str, Any]] = {}
    for q in sorted(now):
        name = quantile_name(q)
        entry = percentile(q, now[q], buckets[0])
        base = bases[name] = percentile(q, None if then is None else then.get(q), buckets[1])
        entry.update(baseline_seconds=base['seconds'], baseline_bound_seconds=base['bound_seconds'],
                     baseline_state=base['state'], baseline_text=base['text'],
                     ratio=(entry['seconds'] / base['seconds']
                            if entry['seconds'] is not None and base['seconds'] else None))
        percentiles[name] = entry
    name = quantile_name(max(now))
    entry, base = percentiles[name], bases[name]
    row: dict[str, Any] = {
        'request_rate': rate, 'baseline_request_rate': base_rate, 'new': then is None,
        'evidence': evidence(rate, min_rate), 'baseline_evidence': evidence(base_rate, min_rate),
        'percentiles': percentiles, 'over_target': None, 'slower_than_baseline': None}
    reasons: list[str] = []
    verdict = {'none': 'no_traffic', 'weak': 'low_traffic'}.get(row['evidence'])
    if verdict is None:
        row['over_target'] = over_target(entry, target)
        if row['over_target'] is not None:
            reasons.append('%s %s %s the target %s' % (
                name, entry['text'], {'yes': 'over', 'no': 'within', 'unknown': 'vs'}[row['over_target']],
                duration_text(target)) + (': the buckets cannot tell' if row['over_target'] == 'unknown' else ''))
        if row['baseline_evidence'] == 'enough':
            row['slower_than_baseline'] = slower(entry, base, factor)
        if row['slower_than_baseline'] is not None:
            relation = ('is %sx' % fmt.decimal(entry['ratio'], 1)) if entry['ratio'] is not None else 'vs'
            reasons.append('%s %s %s its baseline %s: %s' % (name, entry['text'], relation, base['text'], {
                'yes': 'slower than its baseline (slow_factor %s)' % fmt.decimal(factor, 2),
                'no': 'within slow_factor %s' % fmt.decimal(factor, 2),
                'unknown': 'the buckets cannot tell'}[row['slower_than_baseline']]))
        elif row['new']:
            reasons.append('new: no series at the baseline')
        elif row['baseline_evidence'] != 'enough':
            reasons.append('baseline with %s: nothing to compare with' % (
                'no traffic' if row['baseline_evidence'] == 'none' else 'too little traffic'))
        checks = [row['over_target'], row['slower_than_baseline']]
        verdict = ('slow' if 'yes' in checks else 'ok' if 'no' in checks and 'unknown' not in checks
                   else 'unknown')
    row['verdict'] = verdict
    row['reasons'] = reasons
    return row


def _severity(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key, worst first: the verdict, then the ratio of the highest quantile to its baseline
    (above the largest bucket, the least it can be), then its time (the least it can be)."""
    entry = max(row['percentiles'].values(), key=lambda e: e['quantile'])
    span = bounds(entry)
    ratio = entry['ratio']
    if ratio is None and entry['state'] == ABOVE and entry['baseline_seconds']:
        ratio = (entry['bound_seconds'] or 0.0) / entry['baseline_seconds']
    return (ROW_VERDICTS.index(row['verdict']), -(ratio or 0.0), -(span[0] if span else -1.0), row.get('value', ''))


def assess(now: Mapping[str, Any], baseline: Mapping[str, Any], group_by: str | None,
           thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the High Response Time runbook wants to know, from query results.

    now, baseline: {'groups': {quantile: {group: value}}, 'overall': {quantile: value or None},
    'requests': {group: rate}, 'buckets': {group: {bound: rate}}}; a value is
    histogram_quantile's answer (NaN and inf kept). thresholds: target_seconds (None for none),
    slow_factor, min_request_rate.
    """
    quantiles = sorted(now['overall'])
    found = bool(now['requests'] or now['buckets'])
    rate = sum(now['requests'].values()) if now['requests'] else None
    base_rate = sum(baseline['requests'].values()) if baseline['requests'] else None
    overall_buckets = (merge_buckets(now['buckets'].values()) or None, merge_buckets(baseline['buckets'].values()) or None)
    base_overall = baseline['overall'] if (baseline['requests'] or baseline['buckets']) else None
    overall = build_row(now['overall'], base_overall, (rate, base_rate), overall_buckets, thresholds)

    groups: list[dict[str, Any]] = []
    names = set(now['requests']) | set(now['buckets']) | {g for values in now['groups'].values() for g in values}
    if group_by:
        for name in names:
            in_baseline = name in baseline['requests'] or name in baseline['buckets']
            row = build_row({q: now['groups'].get(q, {}).get(name) for q in quantiles},
                            {q: baseline['groups'].get(q, {}).get(name) for q in quantiles} if in_baseline else None,
                            (now['requests'].get(name), baseline['requests'].get(name)),
                            (now['buckets'].get(name), baseline['buckets'].get(name)), thresholds)
            groups.append(dict(row, value=name))
    groups.sort(key=_severity)

    slow = [g for g in groups if g['verdict'] == 'slow']
    if overall['verdict'] == 'slow' or slow:
        verdict = 'slow'
    elif not found or overall['verdict'] in ('no_traffic', 'low_traffic', 'unknown'):
        verdict = 'insufficient_evidence'
    else:
        verdict = 'ok'
    return {
        'verdict': verdict,
        'histogram_found': found or bool(baseline['requests'] or baseline['buckets']),
        'series_now': found,
        'overall': overall,
        'groups': groups,
        'slow_groups': [g['value'] for g in slow],
        'top_group': slow[0]['value'] if slow else None,
        'weak_groups': [g['value'] for g in groups if g['verdict'] == 'low_traffic'],
        'new_groups': sorted(g['value'] for g in groups if g['new']),
        'verdict_quantile': quantile_name(max(quantiles)),
        'largest_bucket_seconds': largest_bucket(overall_buckets[0] or overall_buckets[1]),
        'group_by': group_by,
    }


def range_points(series: Sequence[Mapping[str, Any]]) -> list[tuple[float, float | None]]:
    """[(t, value)] of the single series of a range query, None where the answer was not a number
    (NaN: no traffic); [] when it is empty."""
    return [(point[0], point[1]) for point in series[0]['values']] if series else []


def slow_threshold(overall: Mapping[str, Any], thresholds: Mapping[str, Any]) -> float | None:
    """The highest quantile above which the whole service is slow: target_seconds when given, else
    slow_factor times its baseline (measured, with enough traffic); None when neither is known."""
    if thresholds['target_seconds'] is not None:
        return thresholds['target_seconds']
    base = max(overall['percentiles'].values(), key=lambda e: e['quantile'])['baseline_seconds']
    if overall['baseline_evidence'] != 'enough' or not base:
        return None
    return thresholds['slow_factor'] * base


def slow_stretch(points: Sequence[tuple[float, float | None]], threshold: float) -> tuple[float | None, bool]:
    """(onset, before the points) of the current slow stretch of points [(t, seconds or None)],
    oldest first: the onset is the first point from which every point to the last was above
    threshold. A point without a figure (no traffic) is neither slow nor fast: it neither starts
    nor breaks a stretch. (None, False) when the last figure is not above threshold; (None, True)
    when every figure is: the stretch began before the points."""
    onset = None
    for t, seconds in reversed(points):
        if seconds is None:
            continue
        if seconds <= threshold:
            return onset, False
        onset = t
    return None, onset is not None


def lookback_summary(result: Mapping[str, Any], points: Sequence[tuple[float, float | None]],
                     thresholds: Mapping[str, Any], window_seconds: float) -> dict[str, Any]:
    """The onset and shape of the slowdown, from assess()'s result and the points [(t, seconds or
    None)] of the whole service's highest quantile over the lookback. The onset is the start of the
    current stretch above slow_threshold(), only while the service is slow; the shape is
    shape_and_onset()'s, on the points with a figure; the history is the points, to the
    microsecond."""
    threshold = slow_threshold(result['overall'], thresholds)
    shape, _rise_start = shape_and_onset([(t, s) for t, s in points if s is not None], threshold or 0.0,
                                         window_seconds)
    onset, before = None, False
    if threshold is not None and result['verdict'] == 'slow':
        onset, before = slow_stretch(points, threshold)
    return {'onset': onset, 'onset_iso': iso(onset), 'onset_before_lookback': before, 'shape': shape,
            'slow_threshold_seconds': threshold,
            'history': [{'time': t, 'seconds': None if s is None else round(s, 6)} for t, s in points]}


def history_series(overall: Sequence[tuple[float, float | None]], by_group: Mapping[str, Mapping[float, float]],
                   quantile: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The highest quantile over time for the incident's graph, as error_rate's history() gives the
    error rate: {'quantile': 'p99', 'overall': [[t, seconds]...], 'groups': [{'name',
    'peak_seconds', 'points'}]} of the HISTORY_GROUPS groups whose quantile peaked highest, but
    those in skip (too little traffic to judge: their quantile is noise). overall: [(t, seconds or
    None)] of the whole service; by_group: {group: {t: seconds}}. A time without a figure (no
    traffic, above the largest bucket from a backend that answers +Inf) has no point; seconds to
    the microsecond."""
    def line(found: Iterable[tuple[float, float | None]]) -> list[list[float]]:
        return [[t, round(s, 6)] for t, s in sorted(found, key=lambda point: point[0]) if s is not None and math.isfinite(s)]

    left_out = set(skip)
    lines = {name: line(points.items()) for name, points in by_group.items() if name not in left_out}
    peaks = {name: max(v for _t, v in points) for name, points in lines.items() if points}
    slowest = sorted(peaks, key=lambda name: (-peaks[name], name))
    return {'quantile': quantile, 'overall': line(overall),
            'groups': [{'name': name, 'peak_seconds': peaks[name], 'points': lines[name]}
                       for name in slowest[:HISTORY_GROUPS]]}


def group_label_warning(result: Mapping[str, Any], series: str) -> str | None:
    """A warning when the series carry no group_by label at all (one group named ''): the figures
    are the whole service's, not an endpoint's."""
    group_by, groups = result.get('group_by'), result.get('groups') or []
    if group_by and groups and all(g['value'] == '' for g in groups):
        return ("group_by '%s' is on none of the %s series: the one group is the whole service; set "
                "group_by to the label of the endpoint, or to '' for the overall figures only" % (group_by, series))
    return None


def _figures(row: Mapping[str, Any]) -> str:
    """'p99 995 ms, p95 975 ms, p50 750 ms': the highest quantile first."""
    entries = sorted(row['percentiles'].items(), key=lambda kv: -kv[1]['quantile'])
    return ', '.join('%s %s' % (name, entry['text']) for name, entry in entries)


def _versus(name: str, entry: Mapping[str, Any]) -> str:
    if entry['ratio'] is not None:
        return '%s %s, %sx its baseline %s' % (name, entry['text'], fmt.decimal(entry['ratio'], 1), entry['baseline_text'])
    return '%s %s (baseline %s)' % (name, entry['text'], entry['baseline_text'])


def _since(result: Mapping[str, Any], name: str) -> str:
    """'; p99 above 99.5 ms since <onset> (a spike)', or since before the lookback; '' without an
    onset (lookback_summary)."""
    if result.get('onset_iso'):
        shape = result['shape']
        return '; %s above %s since %s%s' % (name, duration_text(result['slow_threshold_seconds']), result['onset_iso'],
                                             ' (a %s)' % shape if shape in ('spike', 'gradual') else '')
    if result.get('onset_before_lookback'):
        return '; %s above %s since before %s, the start of the lookback' % (
            name, duration_text(result['slow_threshold_seconds']), iso(result['history'][0]['time']))
    return ''


def describe(result: Mapping[str, Any], service: str, window: str, offset: str, thresholds: Mapping[str, Any],
             series: str) -> str:
    """The one line an on-call engineer reads first: the figures, the verdict, and plainly when the
    evidence is weak. series: the selector of the service's histogram, for the no-data advice."""
    overall, verdict = result['overall'], result['verdict']
    name = result['verdict_quantile']
    min_rate = thresholds['min_request_rate']
    if not result['histogram_found']:
        return ('%s: no series of %s in the last %s nor %s before: check the service name, service_label, '
                'selector and metric (the histogram\'s base name, without _bucket); insufficient evidence, '
                'no verdict' % (service, series, window, offset))
    if not result['series_now']:
        return ('%s: no series of %s in the last %s (there were %s before): the service may be down or '
                'not scraped; no requests is not a fast response; insufficient evidence, no verdict'
                % (service, series, window, offset))
    if overall['evidence'] == 'none':
        return ('%s: no requests in the last %s: no traffic is not a fast response; insufficient evidence, '
                'no verdict' % (service, window))
    text = '%s: %s over %s at %s req/s' % (service, _figures(overall), window, fmt.rate(overall['request_rate']))
    entry = overall['percentiles'][name]
    if overall['evidence'] == 'weak':
        text += (' (insufficient_evidence: weak evidence, under min_request_rate %s req/s, too little '
                 'traffic to judge)' % fmt.decimal(min_rate, 3))
    elif verdict == 'insufficient_evidence':
        text += ' (insufficient_evidence: %s)' % ('; '.join(overall['reasons']) or
                                                  'no baseline and no target_seconds to judge %s against' % name)
    else:
        why = []
        if overall['over_target'] == 'yes':
            why.append('over the target %s' % duration_text(thresholds['target_seconds']))
        if overall['slower_than_baseline'] == 'yes':
            why.append('at least %sx its baseline' % fmt.decimal(thresholds['slow_factor'], 2))
        if verdict == 'slow' and not why:
            why.append('on %s' % ', '.join(group or '(none)' for group in result['slow_groups'][:MESSAGE_GROUPS]))
        text += ' (%s%s)' % (verdict, ': ' + ', '.join(why) if why else '')
    if entry['ratio'] is not None:
        text += '; baseline %s ago %s %s (%sx)' % (offset, name, entry['baseline_text'], fmt.decimal(entry['ratio'], 1))
    elif overall['new']:
        text += '; no series %s ago: no baseline' % offset
    else:
        text += '; baseline %s ago %s %s' % (offset, name, entry['baseline_text'])
    if thresholds.get('target_seconds') is not None:
        text += '; target %s %s' % (name, duration_text(thresholds['target_seconds']))
    text += _since(result, name)
    groups = {g['value']: g for g in result['groups']}
    slow = result['slow_groups']
    if slow:
        shown = ['%s %s' % (group or '(none)', _versus(name, groups[group]['percentiles'][name]))
                 for group in slow[:MESSAGE_GROUPS]]
        more = len(slow) - MESSAGE_GROUPS
        text += '; slow: %s%s' % ('; '.join(shown), ' and %d more' % more if more > 0 else '')
    if result['weak_groups']:
        text += '; weak evidence, not judged: %s' % ', '.join(
            '%s (%s req/s)' % (group or '(none)', fmt.rate(groups[group]['request_rate']))
            for group in result['weak_groups'])
    if result['new_groups']:
        text += '; new since the baseline: %s' % ', '.join(group or '(none)' for group in result['new_groups'])
    return text


def sample_health(entry: Mapping[str, Any] | None, rate: float | None, target: float,
                  min_request_rate: float) -> bool | None:
    """Whether one measurement of a watch finds the service healthy: its percentile() entry at or
    under target (above the largest bucket is not, whatever the bound), with at least
    min_request_rate requests per second. None when it measured nothing: the query failed (entry
    None) or found no series."""
    if entry is None or entry['state'] == NO_SERIES:
        return None
    return rate is not None and rate >= min_request_rate and over_target(entry, target) == 'no'


def watch_verdict(samples: Sequence[tuple[float, Mapping[str, Any] | None, float | None]], target: float,
                  stable_for: float, min_request_rate: float) -> dict[str, Any]:
    """watch_outcome() (recovered, stable_seconds, verdict) and the trend of the figures, from
    samples (t, percentile() entry or None when the query failed, requests per second), oldest
    first, judged by sample_health()."""
    checks = [(t, sample_health(entry, rate, target, min_request_rate)) for t, entry, rate in samples]
    figures = [entry['seconds'] for _t, entry, _rate in samples if entry and entry['seconds'] is not None]
    return dict(watch_outcome(checks, stable_for), trend=trend(figures))


def condition(entry: Mapping[str, Any] | None, rate: float | None, target: float, min_request_rate: float) -> str:
    """One measurement of a watch against its target, as people read it: 'p99 180 ms <= target
    500 ms', 'p99 995 ms > target 500 ms', or why it does not count."""
    if entry is None:
        return 'not measured: the query failed'
    if entry['state'] == NO_SERIES:
        return 'no series'
    if entry['state'] == NO_TRAFFIC or not rate:
        return 'no traffic, which is not a fast response'
    figure = '%s %s' % (quantile_name(entry['quantile']), entry['text'])
    if rate < min_request_rate:
        return '%s at only %s req/s, under min_request_rate %s: too little traffic to judge' % (
            figure, fmt.rate(rate), fmt.decimal(min_request_rate, 3))
    over = over_target(entry, target)
    if over == 'unknown':
        return '%s: the buckets cannot tell it from target %s' % (figure, duration_text(target))
    return '%s %s target %s' % (figure, '>' if over == 'yes' else '<=', duration_text(target))

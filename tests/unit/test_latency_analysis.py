"""The response-time rules on numbers chosen by hand: percentiles against the baseline, no traffic
(NaN), a quantile above the largest bucket (+Inf, or Prometheus' bound), weak traffic, a new
endpoint, the verdicts, the order of the groups and the message; the onset of a slowdown; the
watch's verdict."""

import math

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import (
    INF,
    assess,
    beyond_largest_bucket,
    buckets_by,
    build_queries,
    check_metric,
    check_options,
    condition,
    describe,
    duration_text,
    group_label_warning,
    lookback_summary,
    over_target,
    percentile,
    quantile_name,
    range_points,
    sample_health,
    slow_stretch,
    slow_threshold,
    slower,
    values_by,
    watch_verdict,
)

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, INF)  # the demo apps' buckets
QS = (0.5, 0.95, 0.99)
THRESHOLDS = {'target_seconds': None, 'slow_factor': 2.0, 'min_request_rate': 0.1}
SERIES = 'http_request_duration_seconds_bucket{service="checkout"}'


def histogram(rate, landed):
    """Cumulative bucket rates of `rate` req/s, landed: {bucket bound: share of the requests}."""
    return {b: rate * sum(share for bound, share in landed.items() if bound <= b) for b in BOUNDS}


def within(low, high, q):
    """What histogram_quantile answers for q when every request is in the bucket (low, high]."""
    return low + (high - low) * q


FAST = {q: within(0.025, 0.05, q) for q in QS}  # p99 49.75 ms
SLOW = {q: within(0.5, 1.0, q) for q in QS}  # p99 995 ms
NAN = {q: math.nan for q in QS}


def sample(groups, overall):
    """assess()'s input from {group: (rate, {q: value}, buckets)} and the overall {q: value}."""
    return {'groups': {q: {g: values[q] for g, (_r, values, _b) in groups.items()} for q in QS},
            'overall': dict(overall),
            'requests': {g: rate for g, (rate, _v, _b) in groups.items()},
            'buckets': {g: b for g, (_r, _v, b) in groups.items()}}


def checkout(pay_now=SLOW, pay_landed=1.0, admin_rate=0.02):
    """/search steady and fast; /pay fast at the baseline, `pay_now` now; /admin almost idle and
    slow-looking (1 to 2.5 s) all along."""
    admin = {q: within(1.0, 2.5, q) for q in QS}
    now = sample({'/search': (10.0, FAST, histogram(10.0, {0.05: 1.0})),
                  '/pay': (10.0, pay_now, histogram(10.0, {pay_landed: 1.0})),
                  '/admin': (admin_rate, admin, histogram(admin_rate, {2.5: 1.0}))},
                 {0.5: 0.05, 0.95: within(0.5, 1.0, 0.9), 0.99: 0.99099})
    then = sample({'/search': (10.0, FAST, histogram(10.0, {0.05: 1.0})),
                   '/pay': (10.0, FAST, histogram(10.0, {0.05: 1.0})),
                   '/admin': (admin_rate, admin, histogram(admin_rate, {2.5: 1.0}))},
                  {0.5: within(0.025, 0.05, 0.5), 0.95: within(0.025, 0.05, 0.95), 0.99: 0.04977})
    return now, then


def test_a_slow_endpoint_against_its_baseline_is_named_first():
    now, then = checkout()
    result = assess(now, then, 'endpoint', THRESHOLDS)
    assert result['verdict'] == 'slow'
    assert [g['value'] for g in result['groups']] == ['/pay', '/search', '/admin']
    assert (result['slow_groups'], result['top_group'], result['weak_groups']) == (['/pay'], '/pay', ['/admin'])
    pay = result['groups'][0]
    p99 = pay['percentiles']['p99']
    assert (p99['seconds'], p99['baseline_seconds'], p99['state']) == (0.995, 0.04975, 'measured')
    assert p99['ratio'] == pytest.approx(20.0)
    assert (pay['verdict'], pay['slower_than_baseline'], pay['over_target']) == ('slow', 'yes', None)
    assert pay['reasons'] == ['p99 995 ms is 20x its baseline 49.8 ms: slower than its baseline (slow_factor 2)']
    search = result['groups'][1]
    assert search['verdict'] == 'ok' and search['percentiles']['p99']['ratio'] == 1.0
    assert search['percentiles']['p50']['text'] == '37.5 ms'
    overall = result['overall']
    assert overall['request_rate'] == pytest.approx(20.02)
    assert overall['percentiles']['p99']['ratio'] == pytest.approx(0.99099 / 0.04977)
    assert overall['verdict'] == 'slow'
    assert result['verdict_quantile'] == 'p99' and result['largest_bucket_seconds'] == 5.0


def test_the_message_states_the_figures_and_the_weak_evidence():
    now, then = checkout()
    result = assess(now, then, 'endpoint', THRESHOLDS)
    assert describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES) == (
        'checkout: p99 991 ms, p95 950 ms, p50 50 ms over 5m at 20.0 req/s (slow: at least 2x its baseline); '
        'baseline 1d ago p99 49.8 ms (19.9x); slow: /pay p99 995 ms, 20x its baseline 49.8 ms; '
        'weak evidence, not judged: /admin (0.02 req/s)')


def test_an_endpoint_without_enough_traffic_is_never_slow():
    # /admin's p99 (2.49 s) is five times the target, at 0.02 req/s: weak evidence, no verdict.
    now, then = checkout(pay_now=FAST, pay_landed=0.05)
    now['overall'], then['overall'] = dict(FAST), dict(FAST)
    thresholds = dict(THRESHOLDS, target_seconds=0.5)
    result = assess(now, then, 'endpoint', thresholds)
    assert result['verdict'] == 'ok' and result['slow_groups'] == []
    admin = next(g for g in result['groups'] if g['value'] == '/admin')
    assert (admin['verdict'], admin['evidence'], admin['over_target']) == ('low_traffic', 'weak', None)
    assert admin['percentiles']['p99']['seconds'] == pytest.approx(2.485)
    assert [g['value'] for g in result['groups']][-1] == '/admin'
    assert describe(result, 'checkout', '5m', '1d', thresholds, SERIES).endswith(
        '(ok); baseline 1d ago p99 49.8 ms (1x); target p99 500 ms; weak evidence, not judged: /admin (0.02 req/s)')
    # The same /admin with enough traffic is slow: over the target.
    result = assess(*checkout(pay_now=FAST, pay_landed=0.05, admin_rate=0.5), 'endpoint', thresholds)
    admin = result['groups'][0]
    assert (admin['value'], admin['verdict'], admin['over_target']) == ('/admin', 'slow', 'yes')
    assert admin['reasons'][0] == 'p99 2.48 s over the target 500 ms'


def test_a_whole_service_under_min_request_rate_is_insufficient_evidence():
    quiet = {'/pay': (0.05, SLOW, histogram(0.05, {1.0: 1.0}))}
    result = assess(sample(quiet, SLOW), sample({'/pay': (0.05, FAST, histogram(0.05, {0.05: 1.0}))}, FAST),
                    'endpoint', dict(THRESHOLDS, target_seconds=0.2))
    assert result['verdict'] == 'insufficient_evidence'
    assert result['overall']['verdict'] == 'low_traffic' and result['groups'][0]['verdict'] == 'low_traffic'
    message = describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES)
    assert message.startswith('checkout: p99 995 ms, p95 975 ms, p50 750 ms over 5m at 0.05 req/s '
                              '(insufficient_evidence: weak evidence, under min_request_rate 0.1 req/s, '
                              'too little traffic to judge)')


def test_no_requests_in_the_window_is_no_traffic_not_zero_seconds():
    # histogram_quantile answers NaN when the buckets did not grow: the series exist, idle.
    idle = {'/pay': (0.0, NAN, histogram(0.0, {0.05: 1.0}))}
    result = assess(sample(idle, NAN), sample({'/pay': (10.0, FAST, histogram(10.0, {0.05: 1.0}))}, FAST),
                    'endpoint', THRESHOLDS)
    assert result['verdict'] == 'insufficient_evidence'
    p99 = result['groups'][0]['percentiles']['p99']
    assert (p99['state'], p99['seconds'], p99['text'], p99['ratio']) == ('no_traffic', None, 'no traffic', None)
    assert p99['baseline_seconds'] == 0.04975
    assert result['groups'][0]['verdict'] == 'no_traffic'
    assert describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES) == (
        'checkout: no requests in the last 5m: no traffic is not a fast response; insufficient evidence, no verdict')


def test_a_quantile_above_the_largest_bucket_is_never_a_figure():
    # Prometheus answers the largest finite bound (5) when the rank falls in the +Inf bucket;
    # other backends answer +Inf. Half of /export's requests took more than 5 s.
    buckets = histogram(4.0, {0.25: 0.5, INF: 0.5})
    for answer in (5.0, INF):
        entry = percentile(0.99, answer, buckets)
        assert (entry['state'], entry['seconds'], entry['bound_seconds']) == ('above_largest_bucket', None, 5.0)
        assert entry['text'] == 'above the largest bucket (5 s)'
    # p50 is at the top of the 0.25 bucket, a true figure that the bucket rates confirm.
    assert percentile(0.5, 0.25, buckets)['state'] == 'measured'
    assert beyond_largest_bucket(0.99, buckets) and not beyond_largest_bucket(0.5, buckets)
    # Without bucket rates, +Inf still is not a figure.
    assert percentile(0.99, INF, None)['text'] == 'above the largest bucket'
    assert percentile(0.99, 0.25, {0.1: 2.0, 0.25: 2.0, INF: 4.0})['text'] == 'above the largest bucket (250 ms)'


def test_above_the_largest_bucket_judged_by_its_bound():
    above = percentile(0.99, 5.0, histogram(4.0, {0.25: 0.5, INF: 0.5}))
    fast = percentile(0.99, 0.04975, histogram(4.0, {0.05: 1.0}))
    # More than 5 s: over a 5 s or 1 s target, unknown against a 10 s one.
    assert [over_target(above, t) for t in (1.0, 5.0, 10.0)] == ['yes', 'yes', 'unknown']
    assert over_target(fast, 1.0) == 'no' and over_target(fast, None) is None
    # More than 100x a 49.75 ms baseline; two quantiles above the bucket cannot be compared.
    assert slower(above, fast, 2.0) == 'yes'
    assert slower(above, above, 2.0) == 'unknown'
    assert slower(fast, above, 2.0) == 'no'
    assert slower(fast, percentile(0.99, math.nan, None), 2.0) is None
    groups = {'/export': (4.0, {0.5: 0.25, 0.95: 5.0, 0.99: 5.0}, histogram(4.0, {0.25: 0.5, INF: 0.5}))}
    result = assess(sample(groups, {0.5: 0.25, 0.95: 5.0, 0.99: 5.0}), sample(groups, {0.5: 0.25, 0.95: 5.0, 0.99: 5.0}),
                    'endpoint', THRESHOLDS)
    # Above the bucket now and at the baseline, with no target: nothing tells slow from ok.
    assert result['verdict'] == 'insufficient_evidence' and result['overall']['verdict'] == 'unknown'
    assert describe(result, 'reports', '5m', '1d', THRESHOLDS, SERIES) == (
        'reports: p99 above the largest bucket (5 s), p95 above the largest bucket (5 s), p50 250 ms over '
        '5m at 4.00 req/s (insufficient_evidence: p99 above the largest bucket (5 s) vs its baseline above the '
        'largest bucket (5 s): the buckets cannot tell); baseline 1d ago p99 above the largest bucket (5 s)')
    result = assess(sample(groups, {0.5: 0.25, 0.95: 5.0, 0.99: 5.0}), sample(groups, {0.5: 0.25, 0.95: 5.0, 0.99: 5.0}),
                    'endpoint', dict(THRESHOLDS, target_seconds=2.0))
    assert result['verdict'] == 'slow' and result['slow_groups'] == ['/export']
    assert result['groups'][0]['reasons'][0] == 'p99 above the largest bucket (5 s) over the target 2.00 s'


def test_a_new_endpoint_has_no_ratio():
    now, then = checkout(pay_now=FAST, pay_landed=0.05)
    now['overall'], then['overall'] = dict(FAST), dict(FAST)
    for q in QS:
        now['groups'][q]['/v2/pay'] = SLOW[q]
    now['requests']['/v2/pay'] = 3.0
    now['buckets']['/v2/pay'] = histogram(3.0, {1.0: 1.0})
    result = assess(now, then, 'endpoint', THRESHOLDS)
    new = next(g for g in result['groups'] if g['value'] == '/v2/pay')
    p99 = new['percentiles']['p99']
    assert new['new'] is True and p99['ratio'] is None and p99['baseline_state'] == 'no_series'
    assert p99['baseline_text'] == 'no data'
    assert (new['verdict'], new['reasons']) == ('unknown', ['new: no series at the baseline'])
    assert result['new_groups'] == ['/v2/pay'] and result['verdict'] == 'ok'
    assert describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES).endswith('; new since the baseline: /v2/pay')
    # With a target, the new endpoint is judged by it.
    result = assess(now, then, 'endpoint', dict(THRESHOLDS, target_seconds=0.5))
    assert result['verdict'] == 'slow' and result['slow_groups'] == ['/v2/pay']


def test_a_baseline_with_too_little_traffic_is_not_compared_with():
    now, then = checkout()
    then['requests']['/pay'] = 0.01
    result = assess(now, then, 'endpoint', THRESHOLDS)
    pay = next(g for g in result['groups'] if g['value'] == '/pay')
    assert pay['percentiles']['p99']['ratio'] == pytest.approx(20.0)  # still shown
    assert (pay['verdict'], pay['slower_than_baseline']) == ('unknown', None)
    assert pay['reasons'] == ['baseline with too little traffic: nothing to compare with']


def test_slow_factor_is_at_least_not_more_than():
    now, then = checkout(pay_now={q: 2 * FAST[q] for q in QS})
    result = assess(now, then, 'endpoint', THRESHOLDS)
    assert result['groups'][0]['value'] == '/pay' and result['groups'][0]['verdict'] == 'slow'
    result = assess(now, then, 'endpoint', dict(THRESHOLDS, slow_factor=2.01))
    pay = next(g for g in result['groups'] if g['value'] == '/pay')
    assert pay['verdict'] == 'ok' and pay['slower_than_baseline'] == 'no'
    assert [g['value'] for g in result['groups']][:2] == ['/pay', '/search']  # 2x before 1x


def test_no_histogram_for_the_service():
    empty = {'groups': {q: {} for q in QS}, 'overall': {q: None for q in QS}, 'requests': {}, 'buckets': {}}
    result = assess(empty, empty, 'endpoint', THRESHOLDS)
    assert (result['verdict'], result['histogram_found'], result['groups']) == ('insufficient_evidence', False, [])
    assert result['overall']['percentiles']['p99']['state'] == 'no_series'
    assert describe(result, 'ledger', '5m', '1d', THRESHOLDS, SERIES) == (
        'ledger: no series of http_request_duration_seconds_bucket{service="checkout"} in the last 5m nor 1d '
        "before: check the service name, service_label, selector and metric (the histogram's base name, without "
        '_bucket); insufficient evidence, no verdict')
    # Series a day ago, none now: not scraped any more, or down.
    _now, then = checkout()
    result = assess(empty, then, 'endpoint', THRESHOLDS)
    assert (result['verdict'], result['histogram_found'], result['series_now']) == ('insufficient_evidence', True, False)
    assert 'in the last 5m (there were 1d before): the service may be down or not scraped' in \
        describe(result, 'ledger', '5m', '1d', THRESHOLDS, SERIES)


def test_no_baseline_and_no_target_is_insufficient_evidence():
    now, _then = checkout(pay_now=FAST, pay_landed=0.05)
    now['overall'] = dict(FAST)
    empty = {'groups': {q: {} for q in QS}, 'overall': {q: None for q in QS}, 'requests': {}, 'buckets': {}}
    result = assess(now, empty, 'endpoint', THRESHOLDS)
    assert result['verdict'] == 'insufficient_evidence' and result['overall']['new'] is True
    message = describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES)
    assert '(insufficient_evidence: new: no series at the baseline); no series 1d ago: no baseline' in message
    result = assess(now, empty, 'endpoint', dict(THRESHOLDS, target_seconds=0.5))
    assert result['verdict'] == 'ok'
    assert result['overall']['reasons'][0] == 'p99 49.8 ms within the target 500 ms'


def test_the_overall_figures_alone_without_group_by():
    groups = {'': (10.0, SLOW, histogram(10.0, {1.0: 1.0}))}
    result = assess(sample(groups, SLOW), sample({'': (10.0, FAST, histogram(10.0, {0.05: 1.0}))}, FAST),
                    None, dict(THRESHOLDS, target_seconds=0.5))
    assert result['groups'] == [] and result['verdict'] == 'slow'
    assert (result['overall']['over_target'], result['overall']['slower_than_baseline']) == ('yes', 'yes')
    assert '(slow: over the target 500 ms, at least 2x its baseline)' in \
        describe(result, 'checkout', '5m', '1d', dict(THRESHOLDS, target_seconds=0.5), SERIES)
    assert group_label_warning(result, SERIES) is None


def test_a_group_label_the_series_lack_is_warned_about():
    groups = {'': (10.0, FAST, histogram(10.0, {0.05: 1.0}))}
    result = assess(sample(groups, FAST), sample(groups, FAST), 'route', THRESHOLDS)
    assert group_label_warning(result, SERIES) == (
        "group_by 'route' is on none of the %s series: the one group is the whole service; set group_by "
        "to the label of the endpoint, or to '' for the overall figures only" % SERIES)


def test_queries():
    queries = build_queries('http_request_duration_seconds', [('service', '=', 'checkout')], 'endpoint', '5m', '1d',
                            [0.5, 0.99])
    bucket = 'rate(http_request_duration_seconds_bucket{service="checkout"}[5m])'
    assert queries['p99'] == 'histogram_quantile(0.99, sum by (le, endpoint) (%s))' % bucket
    assert queries['p50_overall'] == 'histogram_quantile(0.5, sum by (le) (%s))' % bucket
    assert queries['baseline_p99'] == (
        'histogram_quantile(0.99, sum by (le, endpoint) '
        '(rate(http_request_duration_seconds_bucket{service="checkout"}[5m] offset 1d)))')
    assert queries['requests'] == 'sum by (endpoint) (rate(http_request_duration_seconds_count{service="checkout"}[5m]))'
    assert queries['baseline_buckets'] == (
        'sum by (le, endpoint) (rate(http_request_duration_seconds_bucket{service="checkout"}[5m] offset 1d))')
    assert len(queries) == 2 * (2 * 2 + 2)
    overall_only = build_queries('lat', [('app', '=', 'x')], None, '1m', '1h', [0.99])
    assert sorted(overall_only) == ['baseline_buckets', 'baseline_p99_overall', 'baseline_requests', 'buckets',
                                    'p99_overall', 'requests']
    # No offset, no baseline: a watch's measurement.
    assert build_queries('lat', [('app', '=', 'x')], None, '1m', None, [0.99]) == {
        name: overall_only[name] for name in ('p99_overall', 'requests', 'buckets')}
    assert overall_only['requests'] == 'sum(rate(lat_count{app="x"}[1m]))'
    assert overall_only['buckets'] == 'sum by (le) (rate(lat_bucket{app="x"}[1m]))'


def test_samples_keep_nan_and_inf():
    series = [{'labels': {'endpoint': '/a'}, 'value': None, 'raw': 'NaN'},
              {'labels': {'endpoint': '/b'}, 'value': None, 'raw': '+Inf'},
              {'labels': {'endpoint': '/c'}, 'value': 0.25, 'raw': '0.25'}]
    values = values_by(series, 'endpoint')
    assert math.isnan(values['/a']) and values['/b'] == INF and values['/c'] == 0.25
    buckets = buckets_by([{'labels': {'endpoint': '/a', 'le': '0.5'}, 'value': 2.0, 'raw': '2'},
                          {'labels': {'endpoint': '/a', 'le': '+Inf'}, 'value': 3.0, 'raw': '3'},
                          {'labels': {'endpoint': '/a', 'le': '1.0'}, 'value': None, 'raw': 'NaN'}], 'endpoint')
    assert buckets == {'/a': {0.5: 2.0, INF: 3.0}}


@pytest.mark.parametrize('args, message', [
    (([], 2.0, None, 0.1), 'quantiles: empty'),
    (([0.5, 1.0], 2.0, None, 0.1), 'quantiles: 1.0 is not between 0 and 1'),
    (([0.0], 2.0, None, 0.1), 'quantiles: 0.0 is not between 0 and 1'),
    (([0.99], -2.0, None, 0.1), 'slow_factor: -2.0 must be more than 1'),
    (([0.99], 1.0, None, 0.1), 'slow_factor: 1.0 must be more than 1'),
    (([0.99], 2.0, 0.0, 0.1), 'target_seconds: 0.0 must be more than 0'),
    (([0.99], 2.0, None, -1.0), 'min_request_rate: -1.0 must be 0 or more'),
    (([0.99], None, -0.5, 0.1), 'target_seconds: -0.5 must be more than 0'),
])
def test_bad_options_are_named(args, message):
    with pytest.raises(ValueError, match='^' + message.replace('.', r'\.')):
        check_options(*args)


def test_metric_is_the_histogram_base_name():
    check_metric('http_request_duration_seconds')
    with pytest.raises(ValueError, match="^metric: give the histogram's base name, lat, not its _sum series$"):
        check_metric('lat_sum')


def test_options_sorted_and_names():
    assert check_options([0.99, 0.5, 0.99], 2.0, None, 0.1) == [0.5, 0.99]
    assert check_options([0.99], None, 0.5, 0.1) == [0.99]  # a module without slow_factor
    assert [quantile_name(q) for q in (0.5, 0.95, 0.99, 0.999)] == ['p50', 'p95', 'p99', 'p99_9']
    assert [duration_text(s) for s in (0.0049, 0.04975, 0.995, 2.485, 12.0, None)] == [
        '4.9 ms', '49.8 ms', '995 ms', '2.48 s', '12.0 s', 'n/a']


# The onset of a slowdown: the start of the current stretch above the slow threshold.
def test_the_onset_is_the_first_point_of_the_current_slow_stretch():
    points = [(0, 0.05), (10, 0.9), (20, 0.05), (30, 0.9), (40, 0.95), (50, 0.99)]
    assert slow_stretch(points, 0.1) == (30, False)
    # Not slow at the last figure: no onset.
    assert slow_stretch(points + [(60, 0.05)], 0.1) == (None, False)
    assert slow_stretch([], 0.1) == (None, False)
    # At the threshold is not above it.
    assert slow_stretch([(0, 0.05), (10, 0.1)], 0.1) == (None, False)
    # Slow at every point: the stretch began before them.
    assert slow_stretch([(0, 0.9), (10, 0.9)], 0.1) == (None, True)


def test_no_traffic_neither_starts_nor_breaks_a_slow_stretch():
    # NaN (None here) after a fast point does not start the stretch; inside one it does not break it.
    assert slow_stretch([(0, 0.05), (10, None), (20, 0.9), (30, None), (40, 0.9)], 0.1) == (20, False)
    # No traffic now: the last figure decides.
    assert slow_stretch([(0, 0.05), (10, 0.9), (20, None)], 0.1) == (10, False)
    assert slow_stretch([(0, 0.9), (10, 0.05), (20, None)], 0.1) == (None, False)
    assert slow_stretch([(0, None), (10, None)], 0.1) == (None, False)


def slow_result(verdict='slow', baseline=0.04975, evidence='enough'):
    """An assess() result as lookback_summary reads it: the verdict and the whole service's p99."""
    p99 = {'quantile': 0.99, 'baseline_seconds': baseline}
    return {'verdict': verdict, 'overall': {'baseline_evidence': evidence,
                                            'percentiles': {'p50': {'quantile': 0.5, 'baseline_seconds': 0.03},
                                                            'p99': p99}}}


def test_the_slow_threshold_is_the_target_else_slow_factor_times_the_baseline():
    assert slow_threshold(slow_result()['overall'], dict(THRESHOLDS, target_seconds=0.5)) == 0.5
    assert slow_threshold(slow_result()['overall'], THRESHOLDS) == pytest.approx(0.0995)
    # A baseline not measured (no traffic, above the largest bucket) or too weak: not known.
    assert slow_threshold(slow_result(baseline=None)['overall'], THRESHOLDS) is None
    assert slow_threshold(slow_result(evidence='weak')['overall'], THRESHOLDS) is None


def test_the_onset_and_shape_over_the_lookback():
    # Fast (49.75 ms) for ten minutes, then 991 ms from t=600, every 24 s.
    points = [(float(t), 0.04975 if t < 600 else 0.99099) for t in range(0, 841, 24)]
    summary = lookback_summary(slow_result(), points, THRESHOLDS, 60)
    assert (summary['onset'], summary['onset_before_lookback'], summary['shape']) == (600.0, False, 'spike')
    assert summary['onset_iso'] == '1970-01-01T00:10:00Z'
    assert summary['slow_threshold_seconds'] == pytest.approx(0.0995)
    assert summary['history'][0] == {'time': 0.0, 'seconds': 0.04975} and len(summary['history']) == len(points)
    # Only while the service is slow.
    assert lookback_summary(slow_result('ok'), points, THRESHOLDS, 60)['onset'] is None
    # No threshold known: the shape still, no onset.
    unknown = lookback_summary(slow_result(baseline=None), points, THRESHOLDS, 60)
    assert (unknown['onset'], unknown['shape'], unknown['slow_threshold_seconds']) == (None, 'spike', None)


def test_a_slow_climb_is_gradual_and_no_traffic_is_a_null_point():
    points = [(float(t), 0.05 + 0.001 * t) for t in range(0, 1200, 24)] + [(1200.0, None)]
    summary = lookback_summary(slow_result(), points, dict(THRESHOLDS, target_seconds=0.5), 60)
    assert summary['shape'] == 'gradual'
    assert summary['onset'] == 456.0  # the first point over 500 ms: 0.05 + 0.456
    assert summary['history'][-1] == {'time': 1200.0, 'seconds': None}


def test_the_range_points_keep_no_traffic_as_none():
    series = [{'labels': {}, 'values': [[10.0, 0.05], [34.0, None]]}]
    assert range_points(series) == [(10.0, 0.05), (34.0, None)]
    assert range_points([]) == []


def test_the_message_says_since_when_it_is_slow():
    now, then = checkout()
    result = assess(now, then, 'endpoint', THRESHOLDS)
    points = [(float(t), 0.04975 if t < 600 else 0.99099) for t in range(0, 841, 24)]
    result.update(lookback_summary(result, points, THRESHOLDS, 60))
    assert '; baseline 1d ago p99 49.8 ms (19.9x); p99 above 99.5 ms since 1970-01-01T00:10:00Z (a spike); slow: /pay' \
        in describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES)
    result.update(lookback_summary(result, [(t, 0.99099) for t, _s in points], THRESHOLDS, 60))
    assert '; p99 above 99.5 ms since before 1970-01-01T00:00:00Z, the start of the lookback; slow: /pay' \
        in describe(result, 'checkout', '5m', '1d', THRESHOLDS, SERIES)


# The watch: every measurement at or under target, with traffic, for stable_for.
FAST_BUCKETS = histogram(10.0, {0.05: 1.0})
MEASURED_FAST = percentile(0.99, 0.04975, FAST_BUCKETS)
MEASURED_SLOW = percentile(0.99, 0.995, histogram(10.0, {1.0: 1.0}))
ABOVE = percentile(0.99, 5.0, histogram(4.0, {INF: 1.0}))
IDLE = percentile(0.99, math.nan, histogram(0.0, {0.05: 1.0}))
NO_SERIES = percentile(0.99, None, None)


def test_what_counts_as_a_healthy_measurement():
    assert sample_health(MEASURED_FAST, 10.0, 0.5, 0.1) is True
    assert sample_health(MEASURED_SLOW, 10.0, 0.5, 0.1) is False
    assert sample_health(MEASURED_FAST, 0.05, 0.5, 0.1) is False  # too little traffic
    assert sample_health(IDLE, 0.0, 0.5, 0.1) is False  # no traffic is not fast
    # Above the largest bucket (5 s): over a 2 s target, and not under a 10 s one either.
    assert sample_health(ABOVE, 4.0, 2.0, 0.1) is False and sample_health(ABOVE, 4.0, 10.0, 0.1) is False
    # Measured nothing: a failed query, or no series of the histogram.
    assert sample_health(None, None, 0.5, 0.1) is None and sample_health(NO_SERIES, None, 0.5, 0.1) is None


def test_the_watch_recovers_after_stable_for_at_or_under_target():
    samples = [(0, MEASURED_SLOW, 10.0), (10, MEASURED_FAST, 10.0), (20, MEASURED_FAST, 10.0), (30, MEASURED_FAST, 10.0)]
    assert watch_verdict(samples, 0.5, 20, 0.1) == {'recovered': True, 'stable_seconds': 20.0, 'verdict': 'recovered',
                                                    'trend': 'decreasing'}
    outcome = watch_verdict(samples, 0.5, 30, 0.1)
    assert (outcome['recovered'], outcome['verdict'], outcome['stable_seconds']) == (False, 'not_recovered', 20.0)


@pytest.mark.parametrize('breaking', [(MEASURED_FAST, 0.05), (IDLE, 0.0), (ABOVE, 4.0), (None, None), (NO_SERIES, None)])
def test_anything_but_a_healthy_measurement_breaks_the_stable_stretch(breaking):
    entry, rate = breaking
    samples = [(0, MEASURED_FAST, 10.0), (10, entry, rate), (20, MEASURED_FAST, 10.0), (30, MEASURED_FAST, 10.0)]
    outcome = watch_verdict(samples, 2.0, 20, 0.1)
    assert (outcome['recovered'], outcome['stable_seconds']) == (False, 10.0)


def test_the_watch_not_measured_when_recent_measurements_measured_nothing():
    for nothing in (None, NO_SERIES):
        samples = [(0, MEASURED_FAST, 10.0), (10, nothing, None), (20, nothing, None)]
        assert watch_verdict(samples, 0.5, 15, 0.1)['verdict'] == 'not_measured'
    # A slow measurement among them denies recovery.
    samples = [(0, MEASURED_SLOW, 10.0), (10, None, None)]
    assert watch_verdict(samples, 0.5, 15, 0.1)['verdict'] == 'not_recovered'
    assert watch_verdict([(0, None, None)], 0.5, 15, 0.1) == {
        'recovered': False, 'stable_seconds': 0.0, 'verdict': 'not_measured', 'trend': 'unknown'}


def test_a_watched_measurement_in_words():
    assert condition(MEASURED_FAST, 10.0, 0.5, 0.1) == 'p99 49.8 ms <= target 500 ms'
    assert condition(MEASURED_SLOW, 10.0, 0.5, 0.1) == 'p99 995 ms > target 500 ms'
    assert condition(MEASURED_FAST, 0.02, 0.5, 0.1) == (
        'p99 49.8 ms at only 0.02 req/s, under min_request_rate 0.1: too little traffic to judge')
    assert condition(IDLE, 0.0, 0.5, 0.1) == 'no traffic, which is not a fast response'
    assert condition(ABOVE, 4.0, 5.0, 0.1) == 'p99 above the largest bucket (5 s) > target 5.00 s'
    assert condition(ABOVE, 4.0, 10.0, 0.1) == (
        'p99 above the largest bucket (5 s): the buckets cannot tell it from target 10.0 s')
    assert condition(NO_SERIES, None, 0.5, 0.1) == 'no series'
    assert condition(None, None, 0.5, 0.1) == 'not measured: the query failed'

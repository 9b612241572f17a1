"""latency_info as Ansible runs it, against a real Prometheus (the Debian package) over a TSDB of
latency histograms (the demo apps' buckets, 5 ms to 5 s), backfilled with promtool.

Up to T (when the module's tests start), over two hours:
- checkout: /search at 10 req/s, every request 40 ms; /pay at 10 req/s, 40 ms until T-4m, then
  800 ms (its requests move from the 50 ms bucket to the 1 s one); /admin at 0.02 req/s, 2 s.
- reports: /export at 4 req/s, 60% in 200 ms and 40% in 8 s (beyond the largest bucket);
  /v2/export, new at T-3m, 2 req/s in 40 ms.
- idle: /x at 5 req/s until T-5m, then none (its series stay, flat).
- ledger: request counters only, no histogram.

Each quantile within a bucket (a, b] is a + (b - a) * rank, as histogram_quantile interpolates:
/pay's p99 is 0.5 + 0.5 * 0.99 = 995 ms now and 0.025 + 0.025 * 0.99 = 49.75 ms 10 minutes before.
checkout's p99 goes over twice its baseline at T-4m: the onset of its slowdown.
"""

import time

import pytest

from conftest import run_module
from promtsdb import MINUTE, Backfilled, counter_lines, document, free_port, histogram_lines, last_step


def series(end):
    def at(seconds):
        return lambda t: [(seconds, 1.0)]

    def checkout(endpoint):
        return {'service': 'checkout', 'endpoint': endpoint}
    return [
        (checkout('/search'), lambda t: 10.0, at(0.04)),
        (checkout('/pay'), lambda t: 10.0, lambda t: [(0.04 if t < end - 4 * MINUTE else 0.8, 1.0)]),
        (checkout('/admin'), lambda t: 0.02, at(2.0)),
        ({'service': 'reports', 'endpoint': '/export'}, lambda t: 4.0, lambda t: [(0.2, 0.6), (8.0, 0.4)]),
        ({'service': 'reports', 'endpoint': '/v2/export'}, lambda t: None if t < end - 3 * MINUTE else 2.0, at(0.04)),
        ({'service': 'idle', 'endpoint': '/x'}, lambda t: 5.0 if t < end - 5 * MINUTE else 0.0, at(0.04)),
    ]


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    end = last_step()
    start = end - 2 * 3600
    ledger = [({'service': 'ledger', 'endpoint': '/post', 'status': '200'}, lambda t: 4.0)]
    server = Backfilled(tmp_path_factory.mktemp('prometheus'),
                        document(counter_lines(ledger, start, end), histogram_lines(series(end), start, end)))
    server.end = end
    yield server
    server.stop()


def latency(prom, **kw):
    args = {'url': prom.url, 'service': 'checkout', 'window': '1m', 'baseline_offset': '10m',
            'at': str(prom.end), 'timeout': 10, 'retries': 0}
    args.update(kw)
    return run_module('latency_info', args)


def by_value(result):
    return {g['value']: g for g in result['groups']}


def test_the_endpoint_that_became_slow_is_named_first(prometheus):
    result = latency(prometheus)
    assert not result.get('failed'), result.get('msg')
    assert (result['verdict'], result['changed']) == ('slow', False)
    assert [g['value'] for g in result['groups']] == ['/pay', '/search', '/admin']
    assert (result['slow_groups'], result['top_group']) == (['/pay'], '/pay')
    pay = result['groups'][0]
    p99 = pay['percentiles']['p99']
    # In the 1 s bucket now, in the 50 ms one at the baseline: within bucket resolution, and exactly
    # as histogram_quantile interpolates.
    assert 0.5 < p99['seconds'] <= 1.0 and p99['seconds'] == pytest.approx(0.995, abs=0.001)
    assert 0.025 < p99['baseline_seconds'] <= 0.05 and p99['baseline_seconds'] == pytest.approx(0.04975, abs=0.0001)
    assert p99['ratio'] == pytest.approx(20.0, abs=0.1)
    assert pay['percentiles']['p50']['seconds'] == pytest.approx(0.75, abs=0.001)
    assert (pay['verdict'], pay['slower_than_baseline'], pay['request_rate']) == ('slow', 'yes', pytest.approx(10.0))
    search = by_value(result)['/search']
    assert search['verdict'] == 'ok' and search['percentiles']['p99']['ratio'] == pytest.approx(1.0, abs=0.01)
    overall = result['overall']
    assert overall['request_rate'] == pytest.approx(20.02, abs=0.01)
    # 20.02 req/s, 10 of them in the 50 ms bucket and 10 in the 1 s one: the p99's rank falls in
    # the 1 s bucket.
    assert overall['percentiles']['p99']['seconds'] == pytest.approx(0.5 + 0.5 * (0.99 * 20.02 - 10) / 10, abs=0.002)
    assert overall['percentiles']['p99']['baseline_seconds'] == pytest.approx(0.025 + 0.025 * 0.99 * 20.02 / 20, abs=0.0002)
    assert result['largest_bucket_seconds'] == 5.0
    assert result['queries']['p99'] == ('histogram_quantile(0.99, sum by (le, endpoint) '
                                        '(rate(http_request_duration_seconds_bucket{service="checkout"}[1m])))')
    assert result['queries']['baseline_requests'] == (
        'sum by (endpoint) (rate(http_request_duration_seconds_count{service="checkout"}[1m] offset 10m))')
    # The p50's rank (10.01 of 20.02) is past the 10 requests of the 50 ms bucket: at the bottom of
    # the 1 s one, 500.5 ms.
    assert result['message'] == (
        'checkout: p99 991 ms, p95 951 ms, p50 500 ms over 1m at 20.0 req/s (slow: at least 2x its baseline); '
        'baseline 10m ago p99 49.8 ms (19.9x); p99 above 99.5 ms since %s (a spike); '
        'slow: /pay p99 995 ms, 20x its baseline 49.8 ms; weak evidence, not judged: /admin (0.02 req/s)'
        % result['onset_iso'])


def test_the_onset_of_the_slowdown_is_when_the_p99_went_over(prometheus):
    result = latency(prometheus)
    history = result['history']
    step = history[1]['time'] - history[0]['time']
    # An hour in about 150 points, to the evaluation time.
    assert (step, len(history), history[-1]['time']) == (24, 151, prometheus.end)
    slowdown = prometheus.end - 4 * MINUTE
    # The threshold: slow_factor times the baseline p99 of the whole service (49.8 ms).
    assert result['slow_threshold_seconds'] == pytest.approx(2 * 0.025 * (1 + 0.99 * 20.02 / 20), abs=0.0001)
    assert abs(result['onset'] - slowdown) <= step, (result['onset'] - slowdown)
    assert result['onset_iso'] == time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(result['onset']))
    assert (result['shape'], result['onset_before_lookback']) == ('spike', False)
    before = [p['seconds'] for p in history if p['time'] < slowdown]
    assert before and max(before) == pytest.approx(0.0498, abs=0.0001)
    assert history[-1]['seconds'] == pytest.approx(result['overall']['percentiles']['p99']['seconds'], abs=0.000001)
    # Against a target, the same slowdown starts at the same point.
    judged = latency(prometheus, target_seconds=0.5, lookback='30m')
    assert judged['slow_threshold_seconds'] == 0.5 and len(judged['history']) == 151
    assert abs(judged['onset'] - slowdown) <= judged['history'][1]['time'] - judged['history'][0]['time']


def test_the_history_option_graphs_the_p99_overall_and_of_the_slowest_endpoints(prometheus):
    result = latency(prometheus, history=True, lookback='30m', target_seconds=0.5)
    assert not result.get('failed'), result.get('msg')
    assert result['target_seconds'] == 0.5
    found = result['history_series']
    # The whole service's line is the points of the history with a figure, as [epoch, seconds].
    assert found['quantile'] == 'p99' and len(found['overall']) == 151
    assert found['overall'] == [[p['time'], p['seconds']] for p in result['history'] if p['seconds'] is not None]
    # /admin takes 2 s at 0.02 req/s: too little traffic to be drawn; /pay peaked highest of the others.
    assert [g['name'] for g in found['groups']] == ['/pay', '/search']
    pay, search = found['groups']
    assert pay['peak_seconds'] == pytest.approx(0.995, abs=0.001)
    assert [t for t, _s in pay['points']] == [t for t, _s in found['overall']]
    slowdown = prometheus.end - 4 * MINUTE
    assert {round(s, 5) for t, s in pay['points'] if t < slowdown} == {0.04975}
    assert pay['points'][-1] == [prometheus.end, pytest.approx(0.995, abs=0.001)]
    assert search['peak_seconds'] == pytest.approx(0.04975, abs=0.0001)
    # One range query more, by endpoint; without the option, none and no series.
    plain = latency(prometheus, lookback='30m', target_seconds=0.5)
    assert 'history_series' not in plain and plain['history'] == result['history']
    # Without group_by, the whole service alone.
    overall = latency(prometheus, history=True, lookback='30m', group_by='')
    assert overall['history_series']['groups'] == [] and len(overall['history_series']['overall']) == 151


def test_a_service_not_slow_has_no_onset(prometheus):
    # checkout six minutes before the end, before /pay's slowdown: no onset, a steady p99.
    result = latency(prometheus, at=str(prometheus.end - 6 * MINUTE))
    assert not result.get('failed'), result.get('msg')
    assert (result['verdict'], result['onset'], result['onset_iso'], result['shape']) == ('ok', None, None, 'steady')
    assert ' since ' not in result['message']
    # A service without traffic: no figure, null points, not 0 s.
    idle = latency(prometheus, service='idle')
    assert (idle['verdict'], idle['onset']) == ('insufficient_evidence', None)
    assert [p['seconds'] for p in idle['history'][-5:]] == [None] * 5
    assert idle['history'][0]['seconds'] == pytest.approx(0.04975, abs=0.0001)


def test_slow_over_the_whole_lookback_has_an_earlier_onset(prometheus):
    # /export above the largest bucket (Prometheus answers 5 s) for two hours: over a 2 s target at
    # every point of the lookback.
    result = latency(prometheus, service='reports', target_seconds=2, lookback='30m')
    assert (result['verdict'], result['onset'], result['onset_before_lookback']) == ('slow', None, True)
    assert {p['seconds'] for p in result['history']} == {5.0}
    assert result['message'].endswith(
        '; p99 above 2.00 s since before %s, the start of the lookback; slow: /export p99 above the largest bucket '
        '(5 s) (baseline above the largest bucket (5 s)); new since the baseline: /v2/export'
        % time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(prometheus.end - 30 * MINUTE)))


def test_check_mode_reads_the_same(prometheus):
    result = run_module('latency_info', {'url': prometheus.url, 'service': 'checkout', 'window': '1m',
                                         'baseline_offset': '10m', 'at': str(prometheus.end)}, check_mode=True)
    assert (result['verdict'], result['top_group'], result['changed']) == ('slow', '/pay', False)


def test_too_little_traffic_is_weak_evidence_never_slow(prometheus):
    # /admin takes 2 s, four times the target, at 0.02 req/s: no verdict on that.
    result = latency(prometheus, target_seconds=0.5)
    admin = by_value(result)['/admin']
    assert (admin['verdict'], admin['evidence'], admin['over_target']) == ('low_traffic', 'weak', None)
    assert 1.0 < admin['percentiles']['p99']['seconds'] <= 2.5
    assert admin['percentiles']['p99']['seconds'] == pytest.approx(2.485, abs=0.001)
    assert admin['request_rate'] == pytest.approx(0.02, abs=0.001)
    assert result['weak_groups'] == ['/admin'] and result['slow_groups'] == ['/pay']
    assert by_value(result)['/pay']['over_target'] == 'yes'
    # The whole service under the floor: insufficient evidence, said plainly.
    quiet = latency(prometheus, min_request_rate=50)
    assert (quiet['verdict'], quiet['overall']['verdict'], quiet['slow_groups']) == \
        ('insufficient_evidence', 'low_traffic', [])
    assert ('over 1m at 20.0 req/s (insufficient_evidence: weak evidence, under min_request_rate 50 req/s, too '
            'little traffic to judge)') in quiet['message']


def test_a_quantile_above_the_largest_bucket_is_never_a_figure(prometheus):
    result = latency(prometheus, service='reports')
    assert not result.get('failed'), result.get('msg')
    export = by_value(result)['/export']
    p99, p50 = export['percentiles']['p99'], export['percentiles']['p50']
    # Prometheus answers 5 (the largest bound) for a rank in the +Inf bucket: not a measurement.
    assert (p99['state'], p99['seconds'], p99['bound_seconds']) == ('above_largest_bucket', None, 5.0)
    assert p99['text'] == 'above the largest bucket (5 s)' and p99['ratio'] is None
    assert p50['state'] == 'measured' and p50['seconds'] == pytest.approx(0.1 + 0.15 * 0.5 / 0.6, abs=0.001)
    # Above the bucket now and then, with no target: nothing to judge /export, nor the service, by.
    assert export['verdict'] == 'unknown' and result['verdict'] == 'insufficient_evidence'
    new = by_value(result)['/v2/export']
    assert new['new'] is True and new['percentiles']['p99']['ratio'] is None
    assert new['percentiles']['p99']['baseline_state'] == 'no_series' and new['baseline_request_rate'] is None
    assert new['percentiles']['p99']['seconds'] == pytest.approx(0.04975, abs=0.0001)
    assert result['new_groups'] == ['/v2/export']
    assert 'above the largest bucket (5 s)' in result['message']
    assert result['message'].endswith('; new since the baseline: /v2/export')
    # With a 2 s target, more than 5 s is over it.
    judged = latency(prometheus, service='reports', target_seconds=2)
    assert (judged['verdict'], judged['top_group']) == ('slow', '/export')
    assert by_value(judged)['/export']['reasons'] == [
        'p99 above the largest bucket (5 s) over the target 2.00 s',
        'p99 above the largest bucket (5 s) vs its baseline above the largest bucket (5 s): the buckets cannot tell']
    assert by_value(judged)['/v2/export']['verdict'] == 'ok'


def test_no_requests_in_the_window_is_no_traffic(prometheus):
    result = latency(prometheus, service='idle')
    assert not result.get('failed'), result.get('msg')
    assert result['verdict'] == 'insufficient_evidence'
    x = by_value(result)['/x']
    assert (x['verdict'], x['request_rate']) == ('no_traffic', 0.0)
    assert (x['percentiles']['p99']['state'], x['percentiles']['p99']['seconds']) == ('no_traffic', None)
    assert x['percentiles']['p99']['baseline_seconds'] == pytest.approx(0.04975, abs=0.0001)
    assert result['message'] == ('idle: no requests in the last 1m: no traffic is not a fast response; '
                                 'insufficient evidence, no verdict')


@pytest.mark.parametrize('options, selector', [
    ({'service': 'ledger'}, 'http_request_duration_seconds_bucket{service="ledger"}'),
    ({'metric': 'http_request_latency_seconds'}, 'http_request_latency_seconds_bucket{service="checkout"}'),
    ({'selector': {'namespace': 'shop'}}, 'http_request_duration_seconds_bucket{service="checkout",namespace="shop"}'),
])
def test_no_histogram_for_the_service_is_insufficient_evidence(prometheus, options, selector):
    result = latency(prometheus, **options)
    assert not result.get('failed'), result.get('msg')
    assert (result['verdict'], result['histogram_found'], result['groups']) == ('insufficient_evidence', False, [])
    service = options.get('service', 'checkout')
    assert result['message'] == (
        "%s: no series of %s in the last 1m nor 10m before: check the service name, service_label, selector and "
        "metric (the histogram's base name, without _bucket); insufficient evidence, no verdict" % (service, selector))


def test_the_overall_figures_alone(prometheus):
    result = latency(prometheus, group_by='', quantiles=[0.9, 0.99], target_seconds=0.5)
    assert (result['groups'], result['group_by'], result['verdict']) == ([], None, 'slow')
    assert sorted(result['overall']['percentiles']) == ['p90', 'p99']
    assert result['overall']['over_target'] == 'yes'
    assert 'p90' not in result['queries'] and 'p90_overall' in result['queries']


def test_a_group_label_the_series_lack_is_warned_about(prometheus):
    result = latency(prometheus, group_by='route')
    assert [g['value'] for g in result['groups']] == ['']
    warnings = [w['event']['msg'] if isinstance(w, dict) else w for w in result['warnings']]
    assert warnings == ["group_by 'route' is on none of the http_request_duration_seconds_bucket"
                        "{service=\"checkout\"} series: the one group is the whole service; set group_by to the "
                        "label of the endpoint, or to '' for the overall figures only"]


def test_an_unreachable_prometheus_fails_in_one_sentence(prometheus):
    port = free_port()
    result = latency(prometheus, url='http://127.0.0.1:%d' % port, timeout=2)
    assert result['failed']
    assert result['msg'].startswith('cannot reach Prometheus at http://127.0.0.1:%d/api/v1/query' % port)
    assert '\n' not in result['msg'] and 'check the URL' in result['msg']
    assert result['queries']['p99'].startswith('histogram_quantile(0.99, ')


def test_a_query_prometheus_refuses_fails_with_its_reason(prometheus):
    result = latency(prometheus, group_by='end-point')
    assert result['failed']
    assert result['msg'].startswith('Prometheus at %s/api/v1/query rejected the query with bad_data (HTTP 400): '
                                    % prometheus.url)


@pytest.mark.parametrize('options, message', [
    ({'slow_factor': -2}, 'invalid option slow_factor: -2.0 must be more than 1'),
    ({'quantiles': [0.5, 1.5]}, 'invalid option quantiles: 1.5 is not between 0 and 1 (both excluded), e.g. 0.99'),
    ({'window': 'often'}, "invalid option window: 'often' is not a duration"),
    ({'baseline_offset': '0s'}, "invalid option baseline_offset: '0s' must be more than 0s"),
    ({'target_seconds': 0}, 'invalid option target_seconds: 0.0 must be more than 0'),
    ({'lookback': '2m'}, 'invalid option lookback: 2m must be at least three windows (1m)'),
    ({'lookback': 'soon'}, "invalid option lookback: 'soon' is not a duration"),
    ({'metric': 'http_request_duration_seconds_bucket'},
     "invalid option metric: give the histogram's base name, http_request_duration_seconds, not its _bucket series"),
])
def test_bad_options_are_named(prometheus, options, message):
    result = latency(prometheus, **options)
    assert result['failed'] and result['msg'].startswith(message), result['msg']

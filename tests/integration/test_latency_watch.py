"""latency_watch_info as Ansible runs it, against a real Prometheus (the Debian package) over a TSDB of
latency histograms (the demo apps' buckets, 5 ms to 5 s), backfilled with promtool. The data ends
when the module's tests start, steady over its last half hour, so every measurement of a watch (over a
5m window, at the server's now) reads the same figures:

- fast: 10 req/s, every request 40 ms (p99 49.75 ms); slow: 10 req/s in 800 ms (p99 995 ms);
- quiet: 0.02 req/s in 40 ms; huge: 4 req/s in 8 s, beyond the largest bucket;
- idle: 5 req/s until T-10m, then none (its series stay, flat);
- ledger: request counters only, no histogram.
"""

import pytest

from conftest import run_module
from promtsdb import MINUTE, Backfilled, counter_lines, document, free_port, histogram_lines, last_step


def series(end):
    def steady(service, rate, seconds):
        return {'service': service, 'endpoint': '/'}, lambda t: rate, lambda t: [(seconds, 1.0)]

    idle = steady('idle', 5.0, 0.04)
    return [steady('fast', 10.0, 0.04), steady('slow', 10.0, 0.8), steady('quiet', 0.02, 0.04),
            steady('huge', 4.0, 8.0), (idle[0], lambda t: 5.0 if t < end - 10 * MINUTE else 0.0, idle[2])]


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    end = last_step()
    start = end - 30 * MINUTE
    ledger = [({'service': 'ledger', 'endpoint': '/post', 'status': '200'}, lambda t: 4.0)]
    server = Backfilled(tmp_path_factory.mktemp('prometheus'),
                        document(counter_lines(ledger, start, end), histogram_lines(series(end), start, end)))
    yield server
    server.stop()


def watch(url, check_mode=False, **kw):
    args = {'url': url, 'service': 'fast', 'target_seconds': 0.5, 'window': '5m', 'interval': '1s',
            'stable_for': '2s', 'deadline': '3s', 'timeout': 5, 'retries': 0}
    args.update(kw)
    return run_module('latency_watch_info', args, check_mode=check_mode)


def test_a_fast_service_recovers_after_stable_for(prometheus):
    result = watch(prometheus.url, deadline='10s')
    assert not result.get('failed'), result.get('msg')
    assert (result['recovered'], result['verdict'], result['changed']) == (True, 'recovered', False)
    # It ends at the first measurement that makes the stretch stable_for long, not at the deadline.
    times = [sample['time'] for sample in result['samples']]
    assert result['stable_seconds'] == pytest.approx(times[-1] - times[0], abs=0.1) and result['stable_seconds'] >= 2
    assert times[-2] - times[0] < 2
    assert len(result['samples']) >= 3 and result['failed_samples'] == 0 and result['query_errors'] == []
    for sample in result['samples']:
        assert (sample['state'], sample['measured']) == ('measured', True)
        assert sample['seconds'] == pytest.approx(0.04975, abs=0.0001) and sample['request_rate'] > 5
    assert result['first_seconds'] == result['last_seconds'] == pytest.approx(0.04975, abs=0.0001)
    assert (result['trend'], result['verdict_quantile']) == ('flat', 'p99')
    assert result['message'].startswith('fast recovered: p99 49.8 ms <= target 500 ms for 2')
    assert result['queries'] == {
        'p99_overall': 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
                       '{service="fast"}[5m])))',
        'requests': 'sum(rate(http_request_duration_seconds_count{service="fast"}[5m]))',
        'buckets': 'sum by (le) (rate(http_request_duration_seconds_bucket{service="fast"}[5m]))'}


def test_check_mode_watches_the_same(prometheus):
    result = watch(prometheus.url, check_mode=True, deadline='10s')
    assert (result['verdict'], result['changed']) == ('recovered', False)


def test_a_slow_service_is_not_recovered_at_the_deadline(prometheus):
    result = watch(prometheus.url, service='slow')
    assert not result.get('failed'), result.get('msg')
    assert (result['recovered'], result['verdict'], result['stable_seconds']) == (False, 'not_recovered', 0.0)
    # No measurement after the deadline, and none left out before it: the next would have come after it.
    times = [sample['time'] for sample in result['samples']]
    assert times[-1] - times[0] <= 3 < times[-1] + 1 - times[0] + 0.1
    assert result['last_seconds'] == pytest.approx(0.995, abs=0.001) and result['trend'] == 'flat'
    assert result['message'] == ('slow did not recover within 3s: p99 995 ms > target 500 ms; 995 ms at first, '
                                 'flat; at or under target for 0 s of the 2s needed')
    # The quantiles of latency_info given as they are: the highest is watched.
    p95 = watch(prometheus.url, service='slow', quantiles=[0.5, 0.95], deadline='1s', stable_for='1s')
    assert p95['verdict_quantile'] == 'p95' and p95['last_seconds'] == pytest.approx(0.975, abs=0.001)


@pytest.mark.parametrize('options, state, said', [
    ({'service': 'huge', 'target_seconds': 2}, 'above_largest_bucket',
     'p99 above the largest bucket (5 s) > target 2.00 s'),
    ({'service': 'huge', 'target_seconds': 10}, 'above_largest_bucket',
     'p99 above the largest bucket (5 s): the buckets cannot tell it from target 10.0 s'),
    ({'service': 'idle'}, 'no_traffic', 'no traffic, which is not a fast response'),
    ({'service': 'quiet'}, 'measured', 'under min_request_rate 0.1: too little traffic to judge'),
])
def test_what_is_not_a_measurement_under_target_never_recovers(prometheus, options, state, said):
    result = watch(prometheus.url, deadline='2s', stable_for='1s', **options)
    assert not result.get('failed'), result.get('msg')
    assert (result['recovered'], result['verdict'], result['failed_samples']) == (False, 'not_recovered', 0)
    assert {s['state'] for s in result['samples']} == {state}
    assert said in result['message'], result['message']


def test_a_missing_histogram_is_not_measured(prometheus):
    result = watch(prometheus.url, service='ledger', deadline='2s', stable_for='1s')
    assert not result.get('failed'), result.get('msg')
    assert (result['recovered'], result['verdict']) == (False, 'not_measured')
    assert result['failed_samples'] == len(result['samples']) >= 2 and result['query_errors'] == []
    assert {(s['state'], s['measured'], s['request_rate']) for s in result['samples']} == {('no_series', False, None)}
    assert result['message'] == (
        'ledger: could not verify within 2s: %d of the %d measurements found no series of '
        'http_request_duration_seconds_bucket{service="ledger"}: check the service name, service_label, selector '
        "and metric (the histogram's base name, without _bucket); nothing measured, so recovery is neither "
        'confirmed nor denied' % (len(result['samples']), len(result['samples'])))


def test_an_unreachable_prometheus_is_not_measured_not_a_failed_task():
    url = 'http://127.0.0.1:%d' % free_port()
    result = watch(url, deadline='2s', stable_for='1s', timeout=1)
    assert not result.get('failed'), result.get('msg')
    assert (result['recovered'], result['verdict']) == (False, 'not_measured')
    count = len(result['samples'])
    assert result['failed_samples'] == len(result['query_errors']) == count >= 2
    assert {(s['state'], s['measured'], s['seconds']) for s in result['samples']} == {(None, False, None)}
    assert result['query_errors'][-1].startswith('cannot reach Prometheus at %s/api/v1/query' % url)
    assert result['message'].startswith('fast: could not verify within 2s: Prometheus at %s did not answer %d of the '
                                        '%d measurements (last: cannot reach Prometheus' % (url, count, count))
    assert result['message'].endswith('; nothing measured, so recovery is neither confirmed nor denied')


@pytest.mark.parametrize('options, message', [
    ({'target_seconds': 0}, 'invalid option target_seconds: 0.0 must be more than 0'),
    ({'target_seconds': -1.5}, 'invalid option target_seconds: -1.5 must be more than 0'),
    ({'stable_for': '5m', 'deadline': '1m'},
     'invalid option stable_for: 5m is longer than the deadline (1m): the watch could never see it'),
    ({'interval': 'often'}, "invalid option interval: 'often' is not a duration"),
    ({'deadline': '0s'}, "invalid option deadline: '0s' must be more than 0s"),
    ({'quantiles': [0.99, 1.5]}, 'invalid option quantiles: 1.5 is not between 0 and 1'),
    ({'metric': 'http_request_duration_seconds_count'},
     "invalid option metric: give the histogram's base name, http_request_duration_seconds, not its _count series"),
])
def test_bad_options_fail_in_one_line_naming_the_option(options, message):
    result = watch('http://127.0.0.1:%d' % free_port(), **options)
    assert result['failed'] and result['msg'].startswith(message), result['msg']
    assert '\n' not in result['msg']


def test_target_seconds_is_required():
    result = run_module('latency_watch_info', {'url': 'http://127.0.0.1:9', 'service': 'fast'})
    assert result['failed'] and result['msg'] == 'missing required arguments: target_seconds'

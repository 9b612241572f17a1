"""error_rate_watch as Ansible runs it: against the rig's real Prometheus for a healthy service,
and against a small HTTP server answering as the Prometheus HTTP API does (/api/v1/query, its
success and error envelopes) for a service that does not recover and a server that fails, always
or part of the time. (Its label check against a real Prometheus: test_error_rate_prometheus.py.)"""

from urllib.parse import parse_qs, urlparse

from conftest import Route, run_module
from rig import PROMETHEUS


def vector(value):
    return {'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': {}, 'value': [1700000000.0, str(value)]}] if value is not None else []}}


def answer(rates):
    """Answers errors/total queries from rates = {'errors': x, 'total': y}."""
    def route(handler):
        query = parse_qs(urlparse(handler.path).query)['query'][0]
        return Route(body=vector(rates['errors' if 'status=~' in query else 'total']))
    return route


def watch(url, **kw):
    args = {'url': url, 'service': 'inference-gateway', 'window': '10s', 'interval': '1s',
            'stable_for': '2s', 'deadline': '5s', 'timeout': 3, 'retries': 0}
    args.update(kw)
    return run_module('error_rate_watch_info', args)


def test_healthy_demo_gateway_recovers_on_real_measurements():
    result = watch(PROMETHEUS, deadline='20s')
    assert result['recovered'], result['message']
    assert result['stable_seconds'] >= 2
    assert min(s['request_rate'] for s in result['samples']) > 5  # the load generator's 20 req/s
    assert result['last_percent'] < 1
    assert result['query_errors'] == []
    assert (result['verdict'], result['measured'], result['failed_samples']) == ('recovered', True, 0)
    assert result['label_check']['checked'] is True and 'status' in result['label_check']['series_labels']
    assert 'inference-gateway recovered: under 1% errors' in result['message']


def test_a_service_still_failing_is_not_recovered_at_the_deadline(server):
    server.routes['/api/v1/query'] = answer({'errors': 3.0, 'total': 20.0})
    result = watch(server.url, deadline='3s')
    assert result['recovered'] is False and not result.get('failed')
    assert 3 <= len(result['samples']) <= 5
    assert result['last_percent'] == 15.0 and result['trend'] == 'flat'
    assert (result['verdict'], result['measured'], result['failed_samples']) == ('not_recovered', True, 0)
    assert result['message'].startswith('inference-gateway did not recover within 3s: 15% errors')


def test_no_traffic_is_not_health(server):
    server.routes['/api/v1/query'] = answer({'errors': None, 'total': None})
    result = watch(server.url, deadline='3s', stable_for='1s')
    assert result['recovered'] is False
    assert all(s['error_percent'] is None for s in result['samples'])


def test_a_prometheus_that_always_fails_is_not_measured_not_a_failed_task(server):
    server.routes['/api/v1/query'] = Route(503, {'status': 'error', 'errorType': 'unavailable',
                                                 'error': 'query queue full'})
    result = watch(server.url, deadline='2s', stable_for='1s')
    assert not result.get('failed'), result.get('msg')
    assert result['recovered'] is False and result['verdict'] == 'not_measured'
    assert result['measured'] is False and result['failed_samples'] == len(result['samples']) >= 2
    reason = ('Prometheus at %s/api/v1/query rejected the query with unavailable (HTTP 503): '
              'query queue full.' % server.url)
    assert result['unmeasured_reason'] == reason
    assert result['query_errors'][-1].startswith(reason + ' Query: sum(rate(')
    assert result['message'] == (
        'inference-gateway: could not verify: Prometheus at %s did not answer %d of the %d '
        'measurements in 2s (last: %s); none succeeded, so recovery is neither confirmed nor '
        'denied' % (server.url, len(result['samples']), len(result['samples']), reason))
    assert [s['measured'] for s in result['samples']] == [False] * len(result['samples'])
    # The label API did not answer either (this stand-in has none): said, not failed.
    assert result['label_check']['checked'] is False


def flaky(rates, healthy_queries):
    """Answers errors/total queries from rates for the first healthy_queries queries (two per
    measurement), then fails as an overloaded Prometheus does."""
    seen = []

    def route(handler):
        seen.append(handler.path)
        if len(seen) > healthy_queries:
            return Route(503, {'status': 'error', 'errorType': 'unavailable', 'error': 'overloaded'})
        return answer(rates)(handler)
    return route


def test_measurements_that_stop_answering_cannot_confirm_nor_deny_recovery(server):
    server.routes['/api/v1/query'] = flaky({'errors': 0.0, 'total': 20.0}, healthy_queries=4)
    result = watch(server.url, deadline='4s', stable_for='3s')
    assert not result.get('failed'), result.get('msg')
    assert result['verdict'] == 'not_measured' and result['recovered'] is False
    assert [s['measured'] for s in result['samples'][:2]] == [True, True]
    assert result['measured'] is False and result['failed_samples'] == len(result['samples']) - 2
    assert 'overloaded' in result['unmeasured_reason']
    assert result['last_percent'] == 0.0  # the last measured figure keeps its meaning
    assert result['message'].startswith('inference-gateway: could not verify: Prometheus at %s did '
                                        'not answer %d of the %d measurements in 4s (last: '
                                        % (server.url, result['failed_samples'],
                                           len(result['samples'])))
    assert '; last measured at %s: 0%% errors, under 1%% for 0 s of the 3s needed' % (
        result['samples'][1]['time_iso']) in result['message']


def test_a_failing_service_measured_after_a_failed_query_did_not_recover(server):
    seen = []

    def route(handler):
        seen.append(1)
        if len(seen) <= 2:
            return Route(503, {'status': 'error', 'errorType': 'unavailable', 'error': 'overloaded'})
        return answer({'errors': 3.0, 'total': 20.0})(handler)
    server.routes['/api/v1/query'] = route
    result = watch(server.url, deadline='3s', stable_for='2s')
    assert result['verdict'] == 'not_recovered' and result['measured'] is True
    assert result['failed_samples'] == 1 and result['unmeasured_reason'] is None
    assert result['samples'][0]['measured'] is False and result['samples'][0]['error_percent'] is None
    assert result['message'].startswith('inference-gateway did not recover within 3s: 15% errors')


def test_bad_options_are_named(server):
    assert 'deadline (1s) >= stable_for (5s)' in watch(server.url, deadline='1s',
                                                       stable_for='5s')['msg']
    assert 'is not a duration' in watch(server.url, interval='often')['msg']

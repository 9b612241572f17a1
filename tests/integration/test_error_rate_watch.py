"""error_rate_watch as Ansible runs it: against the rig's real Prometheus for a healthy service,
and against a small HTTP server answering as the Prometheus HTTP API does (/api/v1/query, its
success and error envelopes) for a service that does not recover and a server that fails."""

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
    return run_module('error_rate_watch', args)


def test_healthy_demo_gateway_recovers_on_real_measurements():
    result = watch(PROMETHEUS, deadline='20s')
    assert result['recovered'], result['message']
    assert result['stable_seconds'] >= 2
    assert min(s['request_rate'] for s in result['samples']) > 5  # the load generator's 20 req/s
    assert result['last_percent'] < 1
    assert result['query_errors'] == []
    assert 'inference-gateway recovered: under 1% errors' in result['message']


def test_a_service_still_failing_is_not_recovered_at_the_deadline(server):
    server.routes['/api/v1/query'] = answer({'errors': 3.0, 'total': 20.0})
    result = watch(server.url, deadline='3s')
    assert result['recovered'] is False and not result.get('failed')
    assert 3 <= len(result['samples']) <= 5
    assert result['last_percent'] == 15.0 and result['trend'] == 'flat'
    assert result['message'].startswith('inference-gateway did not recover within 3s: 15.0% errors')


def test_no_traffic_is_not_health(server):
    server.routes['/api/v1/query'] = answer({'errors': None, 'total': None})
    result = watch(server.url, deadline='3s', stable_for='1s')
    assert result['recovered'] is False
    assert all(s['error_percent'] is None for s in result['samples'])


def test_a_prometheus_that_always_fails_fails_the_task(server):
    server.routes['/api/v1/query'] = Route(503, {'status': 'error', 'errorType': 'unavailable',
                                                 'error': 'query queue full'})
    result = watch(server.url, deadline='2s', stable_for='1s')
    assert result['failed']
    assert result['msg'].startswith('no measurement of inference-gateway succeeded in 2s')
    assert 'query queue full' in result['msg']


def test_bad_options_are_named(server):
    assert 'deadline (1s) >= stable_for (5s)' in watch(server.url, deadline='1s',
                                                       stable_for='5s')['msg']
    assert 'is not a duration' in watch(server.url, interval='often')['msg']

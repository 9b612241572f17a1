"""Modules against small local HTTP servers that answer as the Prometheus HTTP API documents
(envelope, errorType, warnings) or as a misconfigured endpoint would (HTML, 401, silence).

The happy paths and Prometheus's own errors run against the real Prometheus in test_rig_*.py;
these cover the answers a real server cannot be made to give on demand.
"""

import socket
import time

import pytest

from conftest import Route, run_module

VECTOR = {'status': 'success', 'data': {'resultType': 'vector', 'result': [
    {'metric': {'endpoint': '/predict'}, 'value': [1795443780.0, '0.8']},
    {'metric': {'endpoint': '/embed'}, 'value': [1795443780.0, 'NaN']}]}}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_query_returns_normalised_series_and_sends_auth_and_tenant(server):
    server.routes['/api/v1/query'] = Route(body=VECTOR)
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'bearer_token': 's3cr3t',
                                             'headers': {'X-Scope-OrgID': 'team-ml'}})
    assert r.get('failed') is not True, r
    assert r['series'][0] == {'labels': {'endpoint': '/predict'}, 'time': 1795443780.0,
                              'value': 0.8, 'raw': '0.8'}
    assert r['series'][1]['value'] is None and r['series'][1]['raw'] == 'NaN'
    assert r['partial'] is False
    sent = server.requests[0]['headers']
    assert sent['authorization'] == 'Bearer s3cr3t'
    assert sent['x-scope-orgid'] == 'team-ml'
    assert 's3cr3t' not in str({k: v for k, v in r.items() if k != 'invocation'})
    assert r['invocation']['module_args']['bearer_token'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


def test_basic_auth_header(server):
    server.routes['/api/v1/query'] = Route(body=VECTOR)
    run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'username': 'ops',
                                         'password': 'pw'})
    assert server.requests[0]['headers']['authorization'] == 'Basic b3BzOnB3'


def test_credentials_given_empty_count_as_not_given(server):
    """As an AWX credential injects them when its optional fields are not filled in: ''."""
    server.routes['/api/v1/query'] = Route(body=VECTOR)
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'bearer_token': '', 'username': '',
                                             'password': '', 'ca_path': ''})
    assert r.get('failed') is not True, r
    assert 'authorization' not in server.requests[0]['headers']


def test_warnings_mark_the_data_partial(server):
    body = dict(VECTOR, warnings=['store 10.0.0.1:10901 did not answer'])
    server.routes['/api/v1/query'] = Route(body=body)
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up'})
    assert r['partial'] is True
    assert r['query_warnings'] == ['store 10.0.0.1:10901 did not answer']
    shown = [w['event']['msg'] if isinstance(w, dict) else w for w in r['warnings']]
    assert shown == ['Prometheus sent a warning, the data may be partial: '
                     'store 10.0.0.1:10901 did not answer']


def test_long_query_is_posted_form_encoded(server):
    server.routes['/api/v1/query'] = Route(body=VECTOR)
    query = 'sum(up{job=~"%s"})' % '|'.join('job%d' % i for i in range(400))
    r = run_module('prometheus_query_info', {'url': server.url, 'query': query})
    assert r.get('failed') is not True, r
    assert server.requests[0]['method'] == 'POST'
    assert server.requests[0]['headers']['content-type'] == 'application/x-www-form-urlencoded'
    assert b'query=sum%28up' in server.requests[0]['body']


def test_range_query_sends_start_end_step(server):
    server.routes['/api/v1/query_range'] = Route(body={'status': 'success', 'data': {
        'resultType': 'matrix', 'result': [{'metric': {}, 'values': [[1, '1'], [2, '+Inf']]}]}})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'type': 'range',
                                             'start': '2026-11-23T14:00:00Z', 'end': '2026-11-23T15:00:00Z',
                                             'step': '1m'})
    assert r['series'][0]['values'] == [[1.0, 1.0], [2.0, None]]
    assert r['series'][0]['nonfinite'] == 1
    path = server.requests[0]['path']
    assert 'start=1795442400.000' in path and 'end=1795446000.000' in path and 'step=60s' in path


def test_prometheus_error_envelope_is_surfaced(server):
    server.routes['/api/v1/query'] = Route(422, {
        'status': 'error', 'errorType': 'execution',
        'error': 'query processing would load too many samples into memory'})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up'})
    assert r['failed'] is True
    assert 'rejected the query with execution (HTTP 422)' in r['msg']
    assert 'too many samples' in r['msg']


def test_server_side_query_timeout_is_explained(server):
    server.routes['/api/v1/query'] = Route(503, {
        'status': 'error', 'errorType': 'timeout',
        'error': 'query timed out in expression evaluation'})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'query_timeout': '2s',
                                             'retries': 0})
    assert r['failed'] is True
    assert ('rejected the query with timeout (HTTP 503): query timed out in expression '
            'evaluation. Raise query_timeout') in r['msg']
    assert 'timeout=2s' in server.requests[0]['path']


def test_html_answer_is_named_as_such(server):
    server.routes['/api/v1/query'] = Route(200, b'<html><body>Grafana login</body></html>',
                                           {'Content-Type': 'text/html; charset=utf-8'})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up'})
    assert r['failed'] is True
    assert 'text/html, not JSON' in r['msg']
    assert 'login page' in r['msg']


def test_json_that_is_not_prometheus(server):
    server.routes['/api/v1/query'] = Route(200, {'hello': 'world'})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up'})
    assert 'not a Prometheus API response' in r['msg']


@pytest.mark.parametrize('status', [401, 403])
def test_auth_failures_hint_at_credentials(server, status):
    server.routes['/api/v1/query'] = Route(status, b'Unauthorized', {'Content-Type': 'text/plain'})
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'retries': 0})
    assert r['failed'] is True
    assert 'refused the request with HTTP %d' % status in r['msg']
    assert 'check the credentials' in r['msg']


def test_unreachable_names_url_and_timeout():
    url = 'http://127.0.0.1:%d' % free_port()
    r = run_module('prometheus_query_info', {'url': url, 'query': 'up', 'timeout': 2, 'retries': 0})
    assert r['failed'] is True
    assert r['msg'].startswith('cannot reach Prometheus at %s/api/v1/query' % url)
    assert 'timeout 2.0s' in r['msg'] and 'Traceback' not in r['msg']


def test_slow_server_times_out_with_a_clear_message(server):
    server.routes['/api/v1/query'] = Route(body=VECTOR, delay=3)
    started = time.monotonic()
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up', 'timeout': 0.5,
                                             'retries': 1})
    assert r['failed'] is True
    assert 'did not answer within 0.5s' in r['msg']
    assert len(server.requests) == 2  # one retry, then give up
    assert time.monotonic() - started < 10


def test_transient_503_is_retried(server):
    answers = [Route(503, b'busy'), Route(body=VECTOR)]
    server.routes['/api/v1/query'] = lambda handler: answers.pop(0)
    r = run_module('prometheus_query_info', {'url': server.url, 'query': 'up'})
    assert r.get('failed') is not True, r
    assert len(server.requests) == 2


# The rest of the bad options: the catalogue, test_bad_input.py.
@pytest.mark.parametrize('args,message', [
    ({'type': 'range', 'start': 'now', 'end': 'now-1h'}, 'must be after start'),
    ({'query_timeout': 'soon'}, "invalid option: 'soon' is not a duration"),
])
def test_bad_options_are_named(args, message):
    r = run_module('prometheus_query_info', dict({'url': 'http://127.0.0.1:9', 'query': 'up'}, **args))
    assert r['failed'] is True
    assert message in r['msg']


def test_service_health_checks_concurrently_and_reports_down_as_data(server):
    server.routes['/health'] = Route(body={'status': 'ok'})
    server.routes['/slow'] = Route(body={'status': 'ok'}, delay=2)
    server.routes['/ready'] = Route(503, {'status': 'not_ready', 'dependencies': {
        'model-service': {'status': 'down'}, 'feature-store': {'status': 'up'}}})
    server.routes['/'] = Route(200, b'')
    server.routes['/page'] = Route(200, b'<html>hi</html>', {'Content-Type': 'text/html'})
    down = 'http://127.0.0.1:%d/health' % free_port()
    started = time.monotonic()
    r = run_module('service_health_info', {'checks': [
        {'name': 'health', 'url': server.url + '/health'},
        {'name': 'slow', 'url': server.url + '/slow', 'timeout': 0.5},
        {'name': 'slow2', 'url': server.url + '/slow', 'timeout': 0.5},
        {'name': 'ready', 'url': server.url + '/ready', 'query': "dependencies.*.status"},
        {'name': 'head', 'url': server.url + '/', 'method': 'HEAD'},
        {'name': 'page', 'url': server.url + '/page'},
        {'name': 'down', 'url': down}]})
    elapsed = time.monotonic() - started
    assert r.get('failed') is not True, r
    by = r['by_name']
    assert by['health']['ok'] is True and by['health']['json'] == {'status': 'ok'}
    assert by['slow']['ok'] is False and 'did not answer within 0.5s' in by['slow']['error']
    assert by['ready']['status'] == 503 and by['ready']['ok'] is False
    assert by['ready']['extracted'] == ['down', 'up']
    assert by['head']['status'] == 200 and by['head']['ok'] is True
    assert by['page']['json'] is None and by['page']['body'] == '<html>hi</html>'
    assert by['down']['status'] is None and 'cannot reach' in by['down']['error']
    assert r['all_ok'] is False
    assert sorted(r['failed_checks']) == ['down', 'ready', 'slow', 'slow2']
    assert [c['name'] for c in r['checks']] == [
        'health', 'slow', 'slow2', 'ready', 'head', 'page', 'down']
    assert [q['method'] for q in server.requests if q['path'] == '/'] == ['HEAD']
    # Two 0.5 s timeouts side by side: concurrent, not one after the other plus start-up.
    assert by['slow']['latency_ms'] < 1500 and elapsed < 5


def test_service_health_reads_pool_metrics(server):
    server.routes['/metrics'] = Route(200, b'# TYPE pg_pool_max gauge\npg_pool_max 20\n'
                                           b'pg_pool_active 20\npg_pool_idle 0\npg_pool_waiting 4\n'
                                           b'http_requests_total{status="500"} 3\n',
                                      {'Content-Type': 'text/plain; version=0.0.4'})
    r = run_module('service_health_info', {'checks': [
        {'name': 'pools', 'url': server.url + '/metrics', 'metrics_match': '^pg_pool_'}]})
    pools = r['by_name']['pools']
    assert [m['name'] for m in pools['metrics']] == [
        'pg_pool_max', 'pg_pool_active', 'pg_pool_idle', 'pg_pool_waiting']
    assert pools['exhausted_pools'] == ['pg_pool']
    assert pools['ok'] is True


@pytest.mark.parametrize('checks,message', [
    ([{'url': 'http://127.0.0.1:9/ready', 'query': 'dependencies[?'}], 'invalid JMESPath query'),
    ([{'url': '127.0.0.1:8000/health'}], 'must start with http://, https:// or /'),
    ([], 'checks is empty'),
    ([{'url': 'http://a/'}, {'url': 'http://a/'}], 'check names must be unique'),
    ([{'url': 'http://a/', 'method': 'DELETE'}], 'value of method must be one of: GET, HEAD'),
    ([{'url': 'http://a/', 'metrics_match': '(pg'}], 'invalid regular expression metrics_match'),
])
def test_service_health_bad_input(checks, message):
    r = run_module('service_health_info', {'checks': checks})
    assert r['failed'] is True
    assert message in r['msg']

"""log_search against its three backends.

Docker: the real Docker engine of this machine, with containers the tests start (--network none,
compose labels of a project sretest-<run> of their own, names sretest-logs-*) and remove by id,
and the running demo rig, read only. A few answers a real engine cannot be made to give (garbage, HTML, a logging
driver that cannot be read) come from a local HTTP server standing in for docker_host.

Loki and Elasticsearch cannot be installed here: their tests run against a local HTTP server that
answers exactly as their documented APIs do, error shapes included (see fake_logs.py).
"""

import json
import re
import socket
import subprocess
import time
import uuid

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.log_patterns import parse_time
from conftest import Route, run_module
from fake_logs import ES_SHARD_FAILURE, LOKI_MATRIX, T0, es_answer, es_hit, es_index_not_found, es_parse_error, gateway_line, loki_stream, loki_streams, ns

IMAGE = 'sre-demo/base:bookworm'
# A compose project of this run only: containers an interrupted earlier run left behind are not read.
RUN = uuid.uuid4().hex[:8]
PROJECT = 'sretest-%s' % RUN
SERVICE = 'logtest'

WORKER = r'''
import json, sys, time
def out(level, message, stream=sys.stdout, **extra):
    stream.write(json.dumps(dict(level=level, service="logtest", message=message, **extra)) + "\n")
    stream.flush()
for i in range(20):
    out("INFO", "POST /predict 200", endpoint="/predict", status_code=200, trace_id="%032x" % i)
for i in range(3):
    sys.stderr.write("ERROR connection to 10.0.0.%d:5432 refused (attempt %d)\n" % (i + 1, i + 1))
    sys.stderr.flush()
time.sleep(0.2)  # the Engine may stamp stdout and stderr lines written together out of order
for i in range(12):
    out("ERROR", "order %d failed: upstream payments timed out after %ds" % (1000 + 7 * i, 5 + i % 3),
        endpoint="/refund" if i % 4 == 0 else "/checkout", status_code=504,
        trace_id="%032x" % (100 + i))
out("ERROR", "payload too large", endpoint="/upload", status_code=500, blob="x" * 20000)
out("INFO", "batch one done")
time.sleep(1.5)
for i in range(4):
    out("ERROR", "late failure %d" % i, endpoint="/late", status_code=503)
out("INFO", "ready")
time.sleep(3600)
'''

CRASH = r'''
import json
print(json.dumps({"level": "INFO", "message": "starting logtest"}), flush=True)
raise RuntimeError("cannot load config /etc/app.yaml: missing key db_url")
'''


def docker(*args):
    return subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def start(name, script):
    return docker('run', '-d', '--network', 'none', '--name', name,
                  '--label', 'com.docker.compose.project=%s' % PROJECT,
                  '--label', 'com.docker.compose.service=%s' % SERVICE,
                  IMAGE, 'python3', '-c', script)


def wait_for(check, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError('timed out waiting for %s' % what)


def log_time(container_id, text):
    """The Engine's timestamp of the first line of the container containing text."""
    out = subprocess.run(['docker', 'logs', '--timestamps', container_id], capture_output=True,
                         text=True, timeout=30, check=True)
    for line in (out.stdout + out.stderr).splitlines():
        if text in line:
            return parse_time(line.split(' ', 1)[0])
    raise AssertionError('%r not in the logs of %s' % (text, container_id))


@pytest.fixture(scope='module')
def containers():
    names = {'worker': 'sretest-logs-%s-worker' % RUN, 'crash': 'sretest-logs-%s-crash' % RUN}
    ids = []
    try:
        ids.append(start(names['worker'], WORKER))
        wait_for(lambda: 'ready' in docker('logs', ids[0]), 'the worker to log "ready"')
        ids.append(start(names['crash'], CRASH))
        wait_for(lambda: docker('inspect', '-f', '{{.State.Status}}', ids[1]) == 'exited',
                 'the crashing container to exit')
        yield {'names': names, 'ids': ids,
               'batch_one_done': log_time(ids[0], 'batch one done')}
    finally:
        for container_id in ids:
            subprocess.run(['docker', 'rm', '-f', container_id], capture_output=True, timeout=60,
                           check=False)


def search(**args):
    return run_module('log_search_info', dict({'backend': 'docker', 'service': SERVICE,
                                               'compose_project': PROJECT, 'since': '10m'}, **args))


def shown_warnings(result):
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


# --------------------------------------------------------------------------- docker, real engine

def test_docker_finds_errors_of_running_and_exited_containers(containers):
    r = search(limit=100)
    assert r.get('failed') is not True, r
    names = containers['names']
    assert sorted((c['name'], c['state']) for c in r['containers']) == sorted(
        [(names['worker'], 'running'), (names['crash'], 'exited')])
    # worker: 20 + 12 + 3 + 1 + 1 + 4 + 1 lines; crash: 1 + a 3-line traceback
    assert r['scanned'] == 46
    assert (r['truncated'], r['partial'], r['backend_warnings']) == (False, False, [])
    assert r['matched'] == 12 + 3 + 1 + 4 + 1
    assert r['level_counts'] == {'INFO': 23, 'ERROR': 21}

    top = r['top_messages'][0]
    assert top['pattern'] == 'order <num> failed: upstream payments timed out after <num>s'
    assert (top['count'], top['endpoints'], top['status_codes']) == (
        12, {'/checkout': 9, '/refund': 3}, {'504': 12})
    assert top['sources'] == {names['worker']: 12}
    assert top['example_trace_id'] == '%032x' % 111
    patterns = {m['pattern']: m for m in r['top_messages']}
    refused = patterns['ERROR connection to <ip> refused (attempt <num>)']
    assert refused['count'] == 3 and refused['endpoints'] == {}
    assert patterns['late failure <num>']['count'] == 4

    by_message = {line['message']: line for line in r['lines']}
    startup = by_message['RuntimeError: cannot load config /etc/app.yaml: missing key db_url']
    assert (startup['source'], startup['stream'], startup['level']) == (
        names['crash'], 'stderr', 'ERROR')
    assert startup['line'].startswith('Traceback (most recent call last):')
    assert {line['stream'] for line in r['lines'] if 'refused' in line['message']} == {'stderr'}
    # Docker splits the 20 kB line into 16 kB partial messages: it must come back whole.
    big = by_message['payload too large']
    assert (big['endpoint'], big['status_code']) == ('/upload', 500)
    times = [line['time'] for line in r['lines']]
    assert times == sorted(times, reverse=True)
    assert all(line['time_iso'].endswith('Z') for line in r['lines'])


def test_docker_max_lines_keeps_the_newest_lines(containers):
    r = search(max_lines=5)
    assert r.get('failed') is not True, r
    assert (r['scanned'], r['truncated']) == (5, True)
    # The crash container ran last: its 2 records (4 lines) and the worker's "ready".
    assert r['level_counts'] == {'INFO': 2, 'ERROR': 1}
    assert [line['message'] for line in r['lines']] == [
        'RuntimeError: cannot load config /etc/app.yaml: missing key db_url']


def test_docker_window_in_the_past_is_read_whole(containers):
    # Docker applies tail before until: a tail of 10 would return only the lines after the window.
    until = containers['batch_one_done'] + 0.5
    time.sleep(max(0.0, until + 6.0 - time.time()))
    r = search(until=str(until), max_lines=10)
    assert r.get('failed') is not True, r
    assert (r['scanned'], r['truncated']) == (10, True)
    assert r['level_counts'] == {'INFO': 1, 'ERROR': 9}
    assert [(m['pattern'], m['count']) for m in r['top_messages']] == [
        ('order <num> failed: upstream payments timed out after <num>s', 8),
        ('payload too large', 1)]
    assert all(line['time'] <= until for line in r['lines'])


def test_docker_match_and_min_level(containers):
    refused = search(match='REFUSED|reset')
    assert refused['matched'] == 3
    assert [m['pattern'] for m in refused['top_messages']] == [
        'ERROR connection to <ip> refused (attempt <num>)']
    # CRITICAL: no line is that severe, but every 5xx answer still counts.
    critical = search(min_level='fatal')
    assert critical['min_level'] == 'CRITICAL'
    assert critical['matched'] == 12 + 1 + 4
    info = search(min_level='info', limit=0, top=1)
    assert (info['matched'], info['lines'], len(info['top_messages'])) == (44, [], 1)
    # Read-only: check mode gives the same answer; a query means nothing to docker.
    checked = search(query='{app="x"}', _ansible_check_mode=True)
    assert (checked['changed'], checked['matched'], checked['query']) == (False, 21, None)
    assert shown_warnings(checked) == ['query is ignored by the docker backend, which reads every '
                                       'line; use match and min_level to select lines']


def test_docker_log_lines_that_are_not_utf8_are_read_with_replacement_characters():
    """Latin-1 and broken bytes in a container's log: read, matched and clustered, each bad byte a
    U+FFFD, nothing dropped."""
    service = 'latin1-%s' % RUN
    script = r'''
import sys, time
for i in range(3):
    sys.stdout.buffer.write(b"ERROR caf\xe9 %d: upstream \xff\xfe refused\n" % i)
sys.stdout.buffer.write(b"INFO ready\n")
sys.stdout.flush()
time.sleep(3600)
'''
    container = docker('run', '-d', '--network', 'none', '--name', 'sretest-logs-%s-latin1' % RUN,
                       '--label', 'com.docker.compose.project=%s' % PROJECT,
                       '--label', 'com.docker.compose.service=%s' % service, IMAGE, 'python3', '-c', script)
    try:
        wait_for(lambda: 'ready' in docker('logs', container), 'the latin-1 lines')
        r = run_module('log_search_info', {'backend': 'docker', 'service': service, 'compose_project': PROJECT,
                                           'since': '10m'})
        assert r.get('failed') is not True, r
        assert (r['scanned'], r['matched']) == (4, 3)
        assert r['top_messages'][0]['count'] == 3
        assert r['top_messages'][0]['pattern'] == 'ERROR caf\ufffd <num>: upstream \ufffd\ufffd refused', r['top_messages'][0]
    finally:
        subprocess.run(['docker', 'rm', '-f', container], capture_output=True, timeout=60, check=False)


def test_docker_unknown_service_is_named():
    r = search(service='no-such-service')
    assert r['failed'] is True
    assert ("no container (running or exited) of compose service 'no-such-service' in project "
            "%r on this host" % PROJECT) in r['msg']


def test_docker_engine_unreachable(tmp_path):
    sock = tmp_path / 'docker.sock'
    r = search(docker_host='unix://%s' % sock, docker_timeout=2)
    assert r['failed'] is True
    assert 'cannot reach Docker Engine' in r['msg'] and str(sock) in r['msg']
    assert 'is the Docker engine running on unix://%s' % sock in r['msg']


def test_demo_gateway_info_lines_on_the_rig():
    """The running demo rig, read only: the gateway logs one INFO line per request."""
    running = subprocess.run(
        ['docker', 'ps', '-q', '--filter', 'label=com.docker.compose.project=sre-demo',
         '--filter', 'label=com.docker.compose.service=inference-gateway'],
        capture_output=True, text=True, timeout=30, check=False).stdout.split()
    assert running, 'the demo rig is not running: make rig (make integration starts it)'
    r = run_module('log_search_info', {'backend': 'docker', 'service': 'inference-gateway',
                                       'compose_project': 'sre-demo', 'since': '2m',
                                       'min_level': 'INFO', 'limit': 20})
    assert r.get('failed') is not True, r
    assert r['level_counts'].get('INFO', 0) > 0 and r['matched'] >= r['level_counts']['INFO']
    info = [line for line in r['lines'] if line['level'] == 'INFO']
    assert info and all(line['source'].startswith('sre-demo') for line in info)
    assert all(re.fullmatch('[0-9a-f]{32}', line['trace_id']) for line in info)
    assert {line['endpoint'] for line in info} <= {'/predict', '/embed', '/classify', '/models',
                                                   '/health', '/ready', '/metrics'}
    patterns = [m['pattern'] for m in r['top_messages']]
    assert any(re.fullmatch(r'(GET|POST) /\w+ <num>', p) for p in patterns), patterns
    assert any(c['state'] == 'running' for c in r['containers'])
    if r['scanned'] > 50:
        # More lines in the window than max_lines: the newest 50 are read and the cut reported
        # (less those the gateway logged after `until`, while the request was on its way).
        cut = run_module('log_search_info', {'backend': 'docker', 'service': 'inference-gateway',
                                             'compose_project': 'sre-demo', 'since': '2m',
                                             'min_level': 'INFO', 'max_lines': 50, 'limit': 0})
        assert cut['truncated'] is True and 40 <= cut['scanned'] <= 50


# --------------------------------------------------------------------------- docker, odd answers

def fake_engine(server, logs_route):
    server.routes['/containers/json'] = Route(body=[
        {'Id': 'a' * 64, 'Names': ['/app_web_1'], 'State': 'running', 'Status': 'Up 1 minute'},
        {'Id': 'b' * 64, 'Names': ['/app_web_2'], 'State': 'exited', 'Status': 'Exited (1)'}])
    server.routes['/containers/%s/logs' % ('a' * 64)] = logs_route
    server.routes['/containers/%s/logs' % ('b' * 64)] = Route(
        501, {'message': 'configured logging driver does not support reading'})


def test_docker_unreadable_logging_driver_makes_the_answer_partial(server):
    now = time.time()
    stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now - 5)) + '.5Z '
    frame_payload = (stamp + '{"level":"ERROR","message":"boom 42"}\n').encode()
    body = b'\x02\x00\x00\x00' + len(frame_payload).to_bytes(4, 'big') + frame_payload
    fake_engine(server, Route(200, body))
    r = search(service='web', docker_host=server.url)
    assert r.get('failed') is not True, r
    assert r['partial'] is True and r['matched'] == 1
    assert r['lines'][0]['stream'] == 'stderr' and r['top_messages'][0]['pattern'] == 'boom <num>'
    assert r['backend_warnings'] == [
        'the logging driver of container app_web_2 does not support reading its logs, so they '
        'are missing: read them from the log store instead (backend loki or elasticsearch)']
    assert shown_warnings(r) == r['backend_warnings']
    query = server.requests[1]['path'].split('?', 1)[1]
    assert 'stdout=1' in query and 'stderr=1' in query and 'timestamps=1' in query
    assert 'tail=5000' in query and 'since=' in query and 'until=' not in query


def test_docker_garbage_log_stream_fails(server):
    fake_engine(server, Route(200, b'\x05\x01\x02\x03garbage that is not a frame'))
    r = search(service='web', docker_host=server.url)
    assert r['failed'] is True
    assert 'answered a log stream that cannot be decoded' in r['msg']


def test_docker_html_instead_of_the_engine_fails(server):
    server.routes['/containers/json'] = Route(200, b'<html>proxy login</html>',
                                              {'Content-Type': 'text/html'})
    r = search(service='web', docker_host=server.url)
    assert r['failed'] is True
    assert 'text/html, not JSON' in r['msg'] and 'Docker Engine' in r['msg']


# --------------------------------------------------------------------------- loki (fake)

GATEWAY = {'container': 'inference-gateway', 'host': 'node-1', 'compose_project': 'sre-demo'}


def loki_answer():
    timeouts = [(T0 + i, gateway_line(T0 + i, 'ERROR', 'upstream model-service failed: timed out',
                                      '/predict' if i % 2 else '/embed', 504, '%032x' % i,
                                      'TimeoutError: timed out')) for i in range(5)]
    refused = [(T0 + 10 + i, gateway_line(T0 + 10 + i, 'ERROR',
                                          'upstream feature-store failed: connection refused',
                                          '/predict', 502, 'beef%028d' % i,
                                          'ConnectionRefusedError: connection refused'))
               for i in range(2)]
    return loki_streams(loki_stream(dict(GATEWAY, stream='stdout'), timeouts),
                        loki_stream(dict(GATEWAY, stream='stdout'), refused))


def loki(server, **args):
    return run_module('log_search_info', dict({'backend': 'loki', 'url': server.url,
                                               'service': 'inference-gateway',
                                               'since': str(T0 - 60), 'until': str(T0 + 60)}, **args))


def sent_query(server, index=0):
    path = server.requests[index]['path']
    return dict(re.findall(r'([^?&=]+)=([^&]*)', path.split('?', 1)[1]))


def test_loki_streams_are_read_and_clustered(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_answer())
    r = loki(server, headers={'X-Scope-OrgID': 'ml-platform'}, bearer_token='s3cr3t')
    assert r.get('failed') is not True, r
    assert (r['scanned'], r['matched'], r['truncated'], r['partial']) == (7, 7, False, False)
    assert [(m['pattern'], m['count'], m['endpoints'], m['status_codes'])
            for m in r['top_messages']] == [
        ('upstream model-service failed: timed out', 5, {'/embed': 3, '/predict': 2}, {'504': 5}),
        ('upstream feature-store failed: connection refused', 2, {'/predict': 2}, {'502': 2})]
    newest = r['lines'][0]
    assert newest['time'] == T0 + 11 and newest['time_iso'] == '2026-11-23T14:23:11.000Z'
    assert newest['source'] == '{compose_project="sre-demo", container="inference-gateway", ' \
                               'host="node-1", stream="stdout"}'
    assert newest['stream'] == 'stdout' and newest['error'].startswith('ConnectionRefusedError')
    assert r['query'] == ('{container="inference-gateway"} | json | '
                          'level=~"(?i)error|err|critical|crit|fatal|panic" or status_code >= 500')
    request = server.requests[0]
    assert request['method'] == 'GET' and request['path'].startswith('/loki/api/v1/query_range?')
    args = sent_query(server)
    assert (args['start'], args['end'], args['limit'], args['direction']) == (
        ns(T0 - 60), ns(T0 + 60), '5000', 'backward')
    from urllib.parse import unquote_plus
    assert unquote_plus(args['query']) == r['query']
    assert request['headers']['x-scope-orgid'] == 'ml-platform'
    assert request['headers']['authorization'] == 'Bearer s3cr3t'
    assert 's3cr3t' not in json.dumps({k: v for k, v in r.items() if k != 'invocation'})


def test_loki_basic_auth_custom_query_and_truncation(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_answer())
    r = loki(server, username='ops', password='pw', max_lines=7, min_level='WARNING',
             query='{app="gw"} |= "failed"', match='refused')
    assert r.get('failed') is not True, r
    assert server.requests[0]['headers']['authorization'] == 'Basic b3BzOnB3'
    assert r['query'] == '{app="gw"} |= "failed"'
    assert (r['truncated'], r['matched']) == (True, 2)
    assert sent_query(server)['limit'] == '7'


def test_loki_default_query_follows_min_level(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_streams())
    r = loki(server, min_level='INFO')
    assert r['query'] == ('{container="inference-gateway"} | json | level=~"(?i)info|notice|warn|'
                          'warning|error|err|critical|crit|fatal|panic" or status_code >= 500')
    assert (r['scanned'], r['matched'], r['top_messages']) == (0, 0, [])
    assert loki(server, min_level='TRACE')['query'] == '{container="inference-gateway"}'


def test_loki_warnings_make_the_answer_partial(server):
    server.routes['/loki/api/v1/query_range'] = Route(
        body=loki_streams(warnings=['query was split: 1 of 4 shards timed out']))
    r = loki(server)
    assert r['partial'] is True
    assert r['backend_warnings'] == ['Loki: query was split: 1 of 4 shards timed out']


def test_loki_bad_logql_surfaces_loki_message(server):
    server.routes['/loki/api/v1/query_range'] = Route(
        400, b'parse error at line 1, col 18: syntax error: unexpected IDENTIFIER, expecting '
             b'STRING', {'Content-Type': 'text/plain; charset=utf-8'})
    r = loki(server, query='{container="gw"} |= oops')
    assert r['failed'] is True
    assert ('Loki at %s/loki/api/v1/query_range rejected the query with HTTP 400: parse error at '
            'line 1, col 18: syntax error: unexpected IDENTIFIER, expecting STRING. Check the LogQL '
            'syntax' % server.url) in r['msg']
    assert r['msg'].endswith('Query: {container="gw"} |= oops')
    assert len(server.requests) == 1   # a 400 is not retried


def test_loki_json_error_body_is_read_too(server):
    server.routes['/loki/api/v1/query_range'] = Route(400, {
        'status': 'error', 'errorType': 'bad_data',
        'error': 'max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)'})
    r = loki(server, max_lines=6000)
    assert r['failed'] is True
    assert 'HTTP 400: max entries limit per query exceeded' in r['msg']


def test_loki_missing_tenant_is_explained(server):
    server.routes['/loki/api/v1/query_range'] = Route(401, b'no org id\n',
                                                      {'Content-Type': 'text/plain'})
    r = loki(server, retries=0)
    assert r['failed'] is True
    assert 'HTTP 401 (no org id)' in r['msg'] and 'X-Scope-OrgID' in r['msg']


def test_loki_metric_query_is_refused(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=LOKI_MATRIX)
    r = loki(server, query='count_over_time({container="gw"}[1m])')
    assert r['failed'] is True
    assert 'answered a matrix, not log lines: the query is a metric query' in r['msg']


@pytest.mark.parametrize('route, message', [
    (Route(200, b'<!doctype html><title>Grafana</title>', {'Content-Type': 'text/html'}),
     'text/html, not JSON'),
    (Route(200, b'ok', {'Content-Type': 'text/plain'}), 'text/plain, not JSON'),
    (Route(200, {'data': []}), 'not a Loki query response'),
    (Route(200, {'status': 'success', 'data': {'resultType': 'streams', 'result': [
        {'stream': {}, 'values': [['yesterday', 'x']]}]}}), 'answered streams in an unexpected shape'),
    (Route(500, b'rpc error: code = Unavailable desc = connection refused',
           {'Content-Type': 'text/plain'}), 'answered HTTP 500: rpc error'),
])
def test_loki_garbage_fails_clearly(server, route, message):
    server.routes['/loki/api/v1/query_range'] = route
    r = loki(server, retries=0)
    assert r['failed'] is True
    assert message in r['msg'] and 'Loki' in r['msg']


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('backend', ['loki', 'elasticsearch'])
def test_unreachable_log_store(backend):
    url = 'http://127.0.0.1:%d' % free_port()
    r = run_module('log_search_info', {'backend': backend, 'url': url, 'service': 'gw', 'retries': 0,
                                       'timeout': 2})
    assert r['failed'] is True
    name = {'loki': 'Loki', 'elasticsearch': 'Elasticsearch'}[backend]
    assert 'cannot reach %s at %s' % (name, url) in r['msg']


def test_slow_log_store_times_out(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_answer(), delay=3)
    started = time.monotonic()
    r = loki(server, timeout=0.5, retries=0)
    assert r['failed'] is True
    assert 'did not answer within 0.5s' in r['msg']
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- elasticsearch (fake)

def es_docs():
    return [
        es_hit('logs-2026.11.23', T0 + 30, {
            '@timestamp': '2026-11-23T14:23:30.000Z', 'level': 'ERROR', 'service': 'backend',
            'message': 'pg pool exhausted: 20/20 connections in use, waited 5000ms',
            'path': '/api/orders', 'status': 503, 'traceId': 'aa01'}, '1'),
        es_hit('logs-2026.11.23', T0 + 20, {
            '@timestamp': '2026-11-23T14:23:20.000Z', 'level': 'ERROR', 'service': 'backend',
            'message': 'pg pool exhausted: 20/20 connections in use, waited 3000ms',
            'path': '/api/cart', 'status': 503, 'traceId': 'aa02'}, '2'),
        es_hit('logs-2026.11.22', T0 + 10, {
            '@timestamp': '2026-11-23T14:23:10.000Z', 'log': {'level': 'error'},
            'service': {'name': 'backend'}, 'message': 'redis GET session:8812 timed out',
            'url': {'path': '/api/cart'}, 'http': {'response': {'status_code': 500}},
            'trace': {'id': 'bb01'}, 'error': {'type': 'TimeoutError', 'message': 'timed out'}},
            '3'),
    ]


def es(server, **args):
    return run_module('log_search_info', dict({'backend': 'elasticsearch', 'url': server.url,
                                               'service': 'backend', 'since': str(T0 - 60),
                                               'until': str(T0 + 60)}, **args))


def test_elasticsearch_hits_are_read_and_clustered(server):
    server.routes['/logs-*/_search'] = Route(body=es_answer(es_docs(), total=3))
    r = es(server, username='sre', password='pw', headers={'X-Opaque-Id': 'triage'})
    assert r.get('failed') is not True, r
    assert (r['scanned'], r['matched'], r['truncated'], r['partial'], r['total_hits']) == (
        3, 3, False, False, 3)
    assert [(m['pattern'], m['count'], m['endpoints'], m['status_codes'], m['sources'])
            for m in r['top_messages']] == [
        ('pg pool exhausted: <num>/<num> connections in use, waited <num>ms', 2,
         {'/api/orders': 1, '/api/cart': 1}, {'503': 2}, {'logs-2026.11.23': 2}),
        ('redis GET session:<num> timed out', 1, {'/api/cart': 1}, {'500': 1},
         {'logs-2026.11.22': 1})]
    ecs = r['lines'][2]
    assert (ecs['time'], ecs['level'], ecs['trace_id'], ecs['error']) == (
        T0 + 10, 'ERROR', 'bb01', 'TimeoutError: timed out')
    request = server.requests[0]
    assert request['method'] == 'POST' and request['path'] == '/logs-*/_search'
    assert request['headers']['authorization'] == 'Basic c3JlOnB3'
    assert request['headers']['x-opaque-id'] == 'triage'
    assert request['headers']['content-type'] == 'application/json'
    body = json.loads(request['body'])
    assert body['size'] == 5000
    assert body['sort'] == [{'@timestamp': {'order': 'desc', 'unmapped_type': 'date'}}]
    assert body['query'] == {'bool': {'filter': [
        {'range': {'@timestamp': {'gte': int((T0 - 60) * 1000), 'lte': int((T0 + 60) * 1000),
                                  'format': 'epoch_millis'}}},
        {'query_string': {'query': '(level:(ERROR OR CRITICAL OR FATAL) OR status_code:>=500) '
                                   'AND service:"backend"'}}]}}
    assert r['query'] == body['query']['bool']['filter'][1]['query_string']['query']


def test_elasticsearch_index_query_and_truncation(server):
    server.routes['/logs-dhakacart-*/_search'] = Route(
        body=es_answer(es_docs()[:2], total=10000, relation='gte'))
    r = es(server, index='logs-dhakacart-*', query='level:ERROR AND service:backend', max_lines=2)
    assert r.get('failed') is not True, r
    assert (r['truncated'], r['total_hits'], r['query']) == (
        True, 10000, 'level:ERROR AND service:backend')
    assert json.loads(server.requests[0]['body'])['size'] == 2


def test_elasticsearch_shard_failure_at_http_200_is_partial(server):
    server.routes['/logs-*/_search'] = Route(body=es_answer(es_docs(), shards=ES_SHARD_FAILURE))
    r = es(server)
    assert r.get('failed') is not True, r
    assert (r['partial'], r['matched']) == (True, 3)
    expected = ('Elasticsearch: 1 of 5 shards failed, the hits are partial: index logs-2026.11.23 '
                'shard 2 on node Xy1bQm3kR2a: node_disconnected_exception: [es-2][10.0.0.9:9300]'
                '[indices:data/read/search[phase/query]] disconnected')
    assert r['backend_warnings'] == [expected]
    assert shown_warnings(r) == [expected]


def test_elasticsearch_timed_out_is_partial(server):
    server.routes['/logs-*/_search'] = Route(body=es_answer(es_docs()[:1], timed_out=True))
    r = es(server)
    assert r['partial'] is True and r['matched'] == 1
    assert 'timed_out: true' in r['backend_warnings'][0]


def test_elasticsearch_malformed_query_string_surfaces_es_error(server):
    query = 'level:(ERROR AND service:backend'
    server.routes['/logs-*/_search'] = Route(400, es_parse_error(query))
    r = es(server, query=query)
    assert r['failed'] is True
    assert ('Elasticsearch at %s/logs-*/_search rejected the search with HTTP 400: '
            'search_phase_execution_exception: all shards failed; query_shard_exception: Failed to '
            'parse query [%s]; parse_exception: Cannot parse \'%s\': Encountered "<EOF>" at line 1, '
            'column 32.' % (server.url, query, query)) in r['msg']
    assert 'Check the query_string syntax' in r['msg'] and r['msg'].endswith('Query: ' + query)
    assert len(server.requests) == 1


def test_elasticsearch_missing_index_is_named(server):
    server.routes['/logs-x/_search'] = Route(404, es_index_not_found('logs-x'))
    r = es(server, index='logs-x')
    assert r['failed'] is True
    assert 'HTTP 404: index_not_found_exception: no such index [logs-x]' in r['msg']
    assert 'Check index (logs-x)' in r['msg']


@pytest.mark.parametrize('route, message', [
    (Route(200, b'<html><title>Kibana</title></html>', {'Content-Type': 'text/html'}),
     'text/html, not JSON'),
    (Route(200, {'name': 'es-1', 'cluster_name': 'logs', 'tagline': 'You Know, for Search'}),
     'not an Elasticsearch search response'),
    (Route(401, {'error': {'type': 'security_exception', 'reason': 'missing authentication '
                                                                   'credentials'}, 'status': 401}),
     'refused the request with HTTP 401'),
])
def test_elasticsearch_garbage_fails_clearly(server, route, message):
    server.routes['/logs-*/_search'] = route
    r = es(server, retries=0)
    assert r['failed'] is True
    assert message in r['msg'] and 'Elasticsearch' in r['msg']


# --------------------------------------------------------------------------- options

@pytest.mark.parametrize('args, message', [
    ({'backend': 'loki'}, 'backend is loki but all of the following are missing: url'),
    ({'backend': 'elasticsearch'}, 'backend is elasticsearch but all of the following are missing: url'),
    ({'backend': 'splunk'}, 'value of backend must be one of: docker, elasticsearch, kubernetes, loki'),
    ({'since': 'yesterday'}, "invalid option: 'yesterday' is not a time"),
    ({'since': 'now', 'until': '1h'}, 'must be before until'),
    ({'min_level': 'LOUD'}, "min_level 'LOUD' is not a level"),
    ({'match': 'time(out'}, "match 'time(out' is not a valid regular expression"),
    ({'max_lines': 0}, 'max_lines must be at least 1'),
])
def test_bad_options_are_named(args, message):
    r = run_module('log_search_info', dict({'backend': 'docker', 'service': 'gw'}, **args))
    assert r['failed'] is True
    assert message in r['msg']


def test_times_accept_durations_relative_epoch_and_rfc3339(server):
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_streams())
    before = time.time()
    r = loki(server, since='1h30m', until='now-5m')
    assert r['since'] == pytest.approx(before - 5400, abs=5)
    assert r['until'] == pytest.approx(before - 300, abs=5)
    r = loki(server, since='2026-11-23T14:00:00Z', until='1795446000')
    assert (r['since'], r['until'], r['since_iso'], r['until_iso']) == (
        1795442400.0, 1795446000.0, '2026-11-23T14:00:00Z', '2026-11-23T15:00:00Z')

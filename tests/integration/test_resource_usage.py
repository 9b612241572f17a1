"""resource_usage against the real Docker engine, with containers these tests start and remove.

Three containers of one throwaway compose service (project sretest, --network none): a CPU burner
(two spinning processes) limited to half a core, a memory hog limited to 64 MiB that allocates past
its limit and is OOM-killed three times (restart policy on-failure:2), and an idle one. The
prometheus source runs against a local server that answers as the Prometheus HTTP API documents
(vector results, empty results, errors).
"""

import json
import subprocess
import time
import urllib.parse
import uuid

import pytest

from conftest import Route, run_module

IMAGE = 'sre-demo/base:bookworm'
# Two processes that spin: the half-core limit holds them back even when the host's other work
# takes a share of its cores (make test's other lanes).
BURN = 'import os\nos.fork()\nwhile True: pass'
HOG = ('import time\n'
       'time.sleep(0.5)\n'
       'chunks = []\n'
       'while True:\n'
       '    chunks.append(bytearray(8 * 1024 * 1024))\n'
       '    time.sleep(0.02)\n')
IDLE = 'import time; time.sleep(3600)'


def docker(*args):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, 'docker %s: %s' % (' '.join(args), proc.stderr)
    return proc.stdout.strip()


def inspect(cid):
    return json.loads(docker('inspect', cid))[0]


@pytest.fixture
def containers():
    """Starts containers of one fresh compose service; removes them by id whatever happens."""
    service = 'rtest-%s' % uuid.uuid4().hex[:8]
    started = []

    def start(role, code, *options):
        cid = docker('run', '-d', '--network', 'none', '--name', 'sretest-%s-%s' % (service, role),
                     '--label', 'com.docker.compose.project=sretest',
                     '--label', 'com.docker.compose.service=%s' % service,
                     *options, IMAGE, 'python3', '-c', code)
        started.append(cid)
        return cid

    try:
        yield service, start
    finally:
        if started:
            subprocess.run(['docker', 'rm', '-f'] + started, capture_output=True, timeout=60,
                           check=False)


def wait_for(predicate, timeout=60.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError('timed out waiting for %s' % what)


def test_burner_hog_and_idle_container(containers):
    service, start = containers
    burner = start('burner', BURN, '--cpus', '0.5')
    hog = start('hog', HOG, '--memory', '64m', '--memory-swap', '64m', '--restart', 'on-failure:2')
    idle = start('idle', IDLE)

    def hog_done():
        state = inspect(hog)
        return state['RestartCount'] == 2 and state['State']['Status'] == 'exited'
    wait_for(hog_done, what='the memory hog to be OOM-killed three times')
    time.sleep(1.5)  # the burner has been throttled for a while by now
    assert inspect(hog)['State']['OOMKilled'] is True

    r = run_module('resource_usage_info', {'service': service, 'compose_project': 'sretest'})
    assert r.get('failed') is not True, r
    assert r['source'] == 'docker' and r['service'] == service and r['partial'] is False
    assert r['cgroup_version'] in ('1', '2')
    by_name = {c['name']: c for c in r['containers']}
    assert sorted(by_name) == ['sretest-%s-%s' % (service, role) for role in ('burner', 'hog', 'idle')]

    b = by_name['sretest-%s-burner' % service]
    assert b['id'] == burner and b['state'] == 'running' and b['running'] is True
    assert b['cpu_limit_cores'] == 0.5 and b['cpu_basis'] == 'limit'
    assert 80 <= b['cpu_percent'] <= 130, b
    assert 0.4 <= b['cpu_cores'] <= 0.65, b
    # Throttled in nearly every period, also beside three other spinning processes on two cores.
    assert b['throttled_ratio'] >= 0.5 and b['throttled_ratio_total'] >= 0.5, b
    assert b['limit_set'] is False and b['memory_bytes'] > 0
    assert b['oom_kills'] == 0 and b['nonzero_exits'] == 0 and b['restart_count'] == 0

    h = by_name['sretest-%s-hog' % service]
    assert h['id'] == hog and h['state'] == 'exited' and h['running'] is False
    assert h['cpu_percent'] is None and h['memory_percent'] is None and h['throttled_ratio'] is None
    assert h['memory_limit_bytes'] == 64 * 1024 * 1024 and h['limit_set'] is True
    assert h['oom_killed_now'] is True and h['exit_code'] == 137
    assert h['oom_kills'] == 3 and h['nonzero_exits'] == 3 and h['exit_codes'] == [137, 137, 137]
    assert h['restart_count'] == 2

    i = by_name['sretest-%s-idle' % service]
    assert i['id'] == idle and i['running'] is True
    assert i['cpu_percent'] < 10 and i['cpu_limit_cores'] is None and i['cpu_basis'] == 'core'
    assert i['throttled_ratio'] == 0.0 and i['oom_kills'] == 0 and i['limit_set'] is False
    assert i['memory_percent'] < 1

    assert r['max_cpu_percent'] == b['cpu_percent']
    assert r['oom_kills'] == 3 and r['restarts'] == 2 and r['nonzero_exits'] == 3
    assert r['running'] == 2
    assert r['throttled'] is True and r['saturated'] is True
    assert 'sretest-%s-burner: cpu %.0f%% of its 0.5-core limit > 90%%' % (
        service, b['cpu_percent']) in r['reasons']
    assert 'sretest-%s-hog: OOM-killed 3 times in 15m' % service in r['reasons']
    assert 'sretest-%s-hog: not running (exited, exit code 137)' % service in r['reasons']
    assert r['thresholds'] == {'cpu_percent': 90.0, 'memory_percent': 95.0,
                               'throttled_percent': 25.0}
    assert 'warnings' not in r or not any('could not read' in str(w) for w in r['warnings'])


def test_only_the_idle_container_is_quiet_and_a_short_period_forgets_old_ooms(containers):
    service, start = containers
    hog = start('hog', HOG, '--memory', '64m', '--memory-swap', '64m')
    start('idle', IDLE)
    wait_for(lambda: inspect(hog)['State']['Status'] == 'exited', what='the hog to be OOM-killed')
    time.sleep(3)
    r = run_module('resource_usage_info', {'service': service, 'since': '2s'})
    assert r.get('failed') is not True, r
    h = [c for c in r['containers'] if c['name'].endswith('-hog')][0]
    # No oom event in the last 2 s, but State.OOMKilled still tells its last exit was an OOM kill.
    assert h['oom_kills'] == 1 and h['nonzero_exits'] == 0 and h['oom_killed_now'] is True
    assert r['reasons'][0] == 'sretest-%s-hog: OOM-killed once in 2s' % service


def test_unknown_service_and_project_are_named(containers):
    service, start = containers
    start('idle', IDLE)
    r = run_module('resource_usage_info', {'service': service, 'compose_project': 'not-sretest'})
    assert r['failed'] is True
    assert ("no container of compose service %r in project 'not-sretest' on this host" % service
            in r['msg'])


def test_docker_engine_unreachable_is_named(tmp_path):
    r = run_module('resource_usage_info', {'service': 'x', 'docker_host': 'unix://%s/none.sock' % tmp_path,
                                           'docker_timeout': 2})
    assert r['failed'] is True
    assert 'cannot reach Docker Engine' in r['msg'] and 'is the Docker engine running' in r['msg']


def test_bad_since_is_named():
    r = run_module('resource_usage_info', {'service': 'x', 'since': 'yesterday'})
    assert r['failed'] is True and r['msg'].startswith("invalid option since: 'yesterday'")


def vector(*items):
    return {'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': labels, 'value': [1795457508.0, value]} for labels, value in items]}}


def prometheus_answers(answers):
    """A /api/v1/query handler answering by the metric name found in the query."""
    def handle(request):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)['query'][0]
        for needle, body in answers.items():
            if needle in query:
                return body if isinstance(body, Route) else Route(body=body)
        return Route(body=vector())
    return handle


def test_prometheus_source_joins_series_and_keeps_missing_as_null(server):
    gw1 = {'name': 'sre-demo_inference-gateway_1', 'id': '/docker/abc'}
    gw2 = {'name': 'sre-demo_inference-gateway_2'}
    server.routes['/api/v1/query'] = prometheus_answers({
        'container:cpu_usage:percent': vector((gw1, '97.3'), (gw2, '41')),
        'container:memory_usage:percent': vector((gw1, '52.5')),
        'cfs_throttled': vector((gw1, '0.4'), (gw2, 'NaN')),
        'container_start_time_seconds': vector((gw1, '2')),
        'container_oom_events_total': vector(),
    })
    r = run_module('resource_usage_info', {'source': 'prometheus', 'url': server.url,
                                           'service': 'inference-gateway', 'since': '10m'})
    assert r.get('failed') is not True, r
    assert r['source'] == 'prometheus' and r['partial'] is False
    assert r['queries']['cpu_percent'] == (
        'container:cpu_usage:percent{container_label_com_docker_compose_service="inference-gateway"}')
    assert r['queries']['oom_kills'] == ('increase(container_oom_events_total{container_label_com_'
                                         'docker_compose_service="inference-gateway"}[10m])')
    sent = sorted(urllib.parse.parse_qs(urllib.parse.urlsplit(q['path']).query)['query'][0]
                  for q in server.requests)
    assert sent == sorted(r['queries'].values()) and len(sent) == 5
    one, two = r['containers']
    assert (one['name'], one['id'], one['cpu_percent'], one['memory_percent'],
            one['throttled_ratio'], one['restart_count'], one['oom_kills']) == (
        'sre-demo_inference-gateway_1', '/docker/abc', 97.3, 52.5, 0.4, 2, None)
    assert (two['cpu_percent'], two['memory_percent'], two['throttled_ratio'],
            two['restart_count']) == (41.0, None, None, None)
    assert r['max_cpu_percent'] == 97.3 and r['max_memory_percent'] == 52.5
    assert r['oom_kills'] is None and r['restarts'] == 2
    assert r['throttled'] is True and r['saturated'] is True
    assert r['reasons'] == ['sre-demo_inference-gateway_1: cpu 97% > 90%',
                            'sre-demo_inference-gateway_1: CPU-throttled in 40% of CFS periods > 25%']


def test_prometheus_source_skips_empty_queries_and_warns_when_nothing_matches(server):
    server.routes['/api/v1/query'] = prometheus_answers({})
    r = run_module('resource_usage_info', {'source': 'prometheus', 'url': server.url, 'service': 'gw',
                                           'throttling_query': '', 'restarts_query': '',
                                           'oom_query': ''})
    assert r.get('failed') is not True, r
    assert sorted(r['queries']) == ['cpu_percent', 'memory_percent'] and len(server.requests) == 2
    assert r['containers'] == [] and r['max_cpu_percent'] is None and r['saturated'] is False
    shown = ' '.join(w['event']['msg'] if isinstance(w, dict) else w for w in r['warnings'])
    assert "no series matched any query for service 'gw'" in shown


def test_prometheus_rejection_is_named(server):
    server.routes['/api/v1/query'] = prometheus_answers({'container:memory_usage': Route(
        400, {'status': 'error', 'errorType': 'bad_data',
              'error': 'invalid parameter "query": 1:30: parse error: unexpected "}"'})})
    r = run_module('resource_usage_info', {'source': 'prometheus', 'url': server.url, 'service': 'gw',
                                           'memory_query': 'container:memory_usage:percent{x="$service"}}'})
    assert r['failed'] is True
    assert 'Prometheus at %s/api/v1/query rejected the query with bad_data (HTTP 400)' % server.url \
        in r['msg']
    assert 'parse error' in r['msg']


def test_prometheus_source_needs_url():
    r = run_module('resource_usage_info', {'source': 'prometheus', 'service': 'gw'})
    assert r['failed'] is True and 'url' in r['msg'] and 'source is prometheus' in r['msg']


def test_check_mode_reads_the_same(server):
    server.routes['/api/v1/query'] = prometheus_answers({
        'container:cpu_usage:percent': vector(({'name': 'gw_1'}, '12.5'))})
    r = run_module('resource_usage_info', {'source': 'prometheus', 'url': server.url, 'service': 'gw'},
                   check_mode=True)
    assert r.get('failed') is not True and r['changed'] is False, r
    assert r['max_cpu_percent'] == 12.5 and r['saturated'] is False

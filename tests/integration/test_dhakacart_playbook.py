"""The second runbook's inventory (inventories/dhakacart) as given, the whole playbook in advise
mode: a real Prometheus, started here and scraping a stand-in of the DhakaCart backend (its
/metrics: the request counter, 30% of /api/products answering 500, and a pg pool with callers
waiting and nothing idle), behind a fake Kubernetes API server (fake_k8s.py) whose service proxy
forwards to that backend, and an Elasticsearch answering _search as its documented API does
(fake_logs.py). Neither a cluster nor Elasticsearch can be installed here; the rig is not used.

What it shows: health and the database and Redis checks through the service proxy, Elasticsearch
logs with the runbook's Kibana filter, the metrics API, the exhausted pool read from /metrics, the
diagnosis (a database dependency: restart to reset the pools), the escalation the second runbook
asks for when the database is suspected, and advice only.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import LocalServer, Route
from fake_k8s import TOKEN, FakeApiServer, deployment, endpoints, pod, pod_metrics, replica_set, service, write_kubeconfig
from fake_logs import es_answer, es_hit
from rig import ENV, ROOT, command
from test_api_errors import free_port

NAMESPACE = 'dhakacart'
STARTED = time.time()
RATE, ERRORS = 10.0, 3.0  # requests per second of /api/products, and of them answering 500


def exposition(_handler):
    """The backend's /metrics: counters that grow with time, and its pg pool exhausted."""
    elapsed = time.time() - STARTED
    labels = 'service="dhakacart-backend",namespace="dhakacart",endpoint="/api/products",method="GET"'
    text = '\n'.join([
        '# TYPE http_requests_total counter',
        'http_requests_total{%s,status="200"} %.1f' % (labels, (RATE - ERRORS) * elapsed),
        'http_requests_total{%s,status="500"} %.1f' % (labels, ERRORS * elapsed),
        '# TYPE pg_pool_total gauge', 'pg_pool_total{pool="orders"} 20',
        '# TYPE pg_pool_idle gauge', 'pg_pool_idle{pool="orders"} 0',
        '# TYPE pg_pool_waiting gauge', 'pg_pool_waiting{pool="orders"} 7', ''])
    return Route(body=text.encode(), headers={'Content-Type': 'text/plain; version=0.0.4'})


@pytest.fixture(scope='module')
def backend():
    server = LocalServer()
    server.routes['/metrics'] = exposition
    server.routes['/health'] = Route(body={'status': 'ok'})
    server.routes['/health/db'] = Route(503, {'status': 'unhealthy', 'database': 'FATAL: remaining connection slots are reserved'})
    server.routes['/health/redis'] = Route(body={'status': 'ok', 'redis': 'PONG'})
    server.routes['/api/products'] = Route(500, {'error': 'internal server error'})
    yield server
    server.close()


@pytest.fixture(scope='module')
def prometheus(backend, tmp_path_factory):
    """A real Prometheus scraping the backend every second, stopped by its pid."""
    where = tmp_path_factory.mktemp('prometheus')
    port = free_port()
    (where / 'prometheus.yml').write_text(json.dumps({
        'global': {'scrape_interval': '1s', 'evaluation_interval': '1s'},
        'scrape_configs': [{'job_name': 'dhakacart-backend', 'honor_labels': True,
                            'static_configs': [{'targets': [backend.url.split('//')[1]]}]}]}))
    proc = subprocess.Popen(['prometheus', '--config.file=%s' % (where / 'prometheus.yml'),
                             '--storage.tsdb.path=%s' % (where / 'data'),
                             '--web.listen-address=127.0.0.1:%d' % port],
                            stdout=subprocess.DEVNULL, stderr=open(where / 'log', 'w'))
    url = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.monotonic() + 60
        query = url + '/api/v1/query?query=count_over_time(http_requests_total%5B30s%5D)'
        while True:
            assert proc.poll() is None, (where / 'log').read_text()[-2000:]
            try:
                with urllib.request.urlopen(query, timeout=2) as response:
                    result = json.load(response)['data']['result']
                if result and float(result[0]['value'][1]) >= 15:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, 'Prometheus scraped too little: %s' % (where / 'log').read_text()[-2000:]
            time.sleep(0.5)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope='module')
def elasticsearch():
    server = LocalServer()
    now = time.time()
    server.routes['/logs-*/_search'] = Route(body=es_answer([
        es_hit('logs-dhakacart', now - i, {
            '@timestamp': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(now - i)), 'level': 'ERROR',
            'service': 'backend', 'message': 'pg pool exhausted: 20/20 connections in use, waited %d00ms' % (30 + i),
            'path': '/api/products', 'status': 500, 'traceId': 'tr%02d' % i}, str(i)) for i in range(12)]))
    yield server
    server.close()


@pytest.fixture(scope='module')
def cluster(backend, tmp_path_factory):
    api = FakeApiServer()
    app = deployment('dhakacart-backend', NAMESPACE, image='dhakacart/backend:2.4.1', replicas=3, revision=4,
                     limits={'cpu': '500m', 'memory': '512Mi'})
    pods = [pod(app, 'dhakacart-backend-h00004-%s' % s) for s in ('a', 'b', 'c')]
    api.add(app, *pods, replica_set(app, 3, 'dhakacart/backend:2.4.0', created='2026-11-18T09:00:00Z'),
            replica_set(app, 4, 'dhakacart/backend:2.4.1', created='2026-11-20T09:00:00Z', replicas=3),
            service(app, port=5000, target_port=5000), endpoints(app, ready=pods, port=5000),
            *[pod_metrics(p, cpu='180m', memory='300Mi') for p in pods])
    api.proxy_to(NAMESPACE, 'dhakacart-backend', backend.url)
    kubeconfig = write_kubeconfig(api, tmp_path_factory.mktemp('kube') / 'config')
    yield api, kubeconfig
    api.close()


def test_the_second_runbook_on_its_inventory(prometheus, elasticsearch, cluster, tmp_path):
    api, kubeconfig = cluster
    out = tmp_path / 'incident.json'
    cmd = command('tests/integration/playbooks/capture_incident.yml', '-e', 'service=dhakacart-backend',
                  '-e', 'incident_out=%s' % out, '-e', 'mitigate_mode=advise',
                  '-e', 'runbook_prometheus_url=%s' % prometheus, '-e', 'dhakacart_elasticsearch_url=%s' % elasticsearch.url,
                  '-e', 'runbook_kubeconfig=%s' % kubeconfig, '-e', 'communicate_report_dir=%s' % (tmp_path / 'incidents'),
                  # The windows of a test that has seconds of data, not the production ones.
                  '-e', 'triage_window=10s', '-e', 'triage_baseline_offset=15s', '-e', 'triage_lookback=1m')
    cmd[cmd.index('-i') + 1] = str(ROOT / 'inventories' / 'dhakacart')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT,
                          stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert TOKEN not in output
    incident = json.loads(out.read_text())

    assert incident['platform'] == 'kubernetes' and incident['severity'] == 'critical'
    assert incident['triage']['error_rate']['error_percent'] == pytest.approx(30, abs=3)
    health = {c['name']: c for c in incident['triage']['health']['checks']}
    assert health['health']['ok'] and health['api-products']['status'] == 500
    assert health['health']['via'] == 'service proxy dhakacart/http:dhakacart-backend:5000'
    logs = incident['investigate']['logs']
    assert logs['backend'] == 'elasticsearch' and logs['query'] == 'level:ERROR AND service:backend'
    assert logs['top_messages'][0]['pattern'].startswith('pg pool exhausted')
    assert json.loads(elasticsearch.requests[-1]['body'])['query']['bool']
    resources = incident['investigate']['resources']
    assert resources['max_memory_percent'] == pytest.approx(300 / 512 * 100, abs=0.1)
    dependencies = incident['investigate']['dependencies']
    assert 'db' in dependencies['failing']
    pool = next(c for c in dependencies['checks'] if c['name'] == 'pg_pool')
    assert pool['exhausted_pools'] == ['pg_pool{pool=orders}']

    recommended = incident['diagnosis']['recommended']
    assert recommended['cause'] == 'dependency' and recommended['database']
    assert recommended['action']['name'] == 'restart'
    assert incident['escalation']['stage'] == 'diagnosis'
    assert 'the database is suspected' in incident['escalation']['reason']
    assert incident['outcome'] == 'advised' and not api.patches()
    document = next((tmp_path / 'incidents').glob('*/incident-*-high-error-rate.md')).read_text()
    assert '| Outcome | advised: ' in document and 'Escalated: the database is suspected' in document

"""playbooks/preflight.yml on the real rig: the demo inventory passes (make preflight), and each
check fails or warns, with a line that says what to fix, on an inventory broken in that place.

Prometheus, the Docker engine, the demo services and the API stand-ins are the rig's. Prometheus
with auth is the rig's behind a real authenticating HTTPS proxy (auth_proxy.py). Slack's and the
PagerDuty REST API's refusals come from a local server that answers as their documented APIs do
(conftest.LocalServer); the Kubernetes checks run against fake_k8s's API server, which answers
SelfSubjectAccessReviews as the Kubernetes API documents them (no cluster runs here yet)."""

import json
import re

import pytest

from access import PROMETHEUS_TOKEN as TOKEN
from access import prometheus_auth, prometheus_proxy  # noqa: F401  # pylint: disable=unused-import
from auth_proxy import AuthProxy
from conftest import Route
from fake_k8s import FakeApiServer, write_kubeconfig
from rig import playbook, query
from test_rig_mitigation import wait_for

ROW = re.compile(r'^\s*(PASS|WARN|FAIL)  (.{10})  (.{16})  (.*)$')
FIX = re.compile(r'^\s{36,}-> (.*)$')


def preflight(extra=None, inventory=None):
    """(exit code, {(area, check): (status, detail, fix)}, output) of playbooks/preflight.yml."""
    rc, output = playbook('playbooks/preflight.yml', '-e', 'service=inference-gateway',
                          '-e', json.dumps(extra or {}), inventory=inventory)
    rows, last = {}, None
    for line in output.splitlines():
        row, fix = ROW.match(line), FIX.match(line)
        if row:
            last = (row.group(2).strip(), row.group(3).strip())
            rows[last] = [row.group(1), row.group(4), '']
        elif fix and last:
            rows[last][2] = fix.group(1)
    return rc, rows, output


def test_the_demo_inventory_passes():
    rc, rows, output = preflight()
    assert rc == 0, output
    assert not [key for key, (status, _d, _f) in rows.items() if status == 'FAIL'], output
    for key in [('prometheus', 'labels'), ('prometheus', 'traffic'), ('docker', 'compose service'),
                ('docker', 'state dir'), ('slack', 'channel'), ('statuspage', 'component'),
                ('health', 'answers'), ('logs', 'answers'), ('resources', 'answers')]:
        assert rows[key][0] == 'PASS', (key, output)
    assert 'passed, ' in output and ' 0 failed' in output


# Inventories broken in one or more independent places each, run once: {name: extra vars}.
BROKEN = {
    'sources': {'triage_base_url': 'http://127.0.0.1:9', 'investigate_log_backend': 'loki',
                'investigate_log_url': 'http://127.0.0.1:9', 'investigate_jaeger_url': 'http://127.0.0.1:9',
                'investigate_resource_source': 'prometheus', 'triage_docker_host': 'unix:///run/no-docker.sock',
                'mitigate_state_dir': '/proc/sre-runbooks', 'communicate_pagerduty_routing_key': 'R0UT1NGK3Y',
                'communicate_escalation_routing_key': '', 'communicate_statuspage_page_id': 'no-such-page',
                'communicate_slack_channel': '#incidents', 'triage_status_label': 'method',
                'triage_min_request_rate': 1000, 'resolve_availability_rule': 'slo:nothing:ratio_rate30d'},
    'status label': {'triage_status_label': 'code', 'triage_compose_project': 'another-project',
                     'communicate_statuspage_component_id': 'no-such-component', 'communicate_slack_token': ''},
    'selector': {'triage_selector': {'env': 'prod'}},
    'metric': {'triage_metric': 'http_requests_count'},
    'no prometheus': {'runbook_prometheus_url': 'http://127.0.0.1:9'},
}
RUNS = {}

# (inventory, (area, check), status, words of the detail, words of the fix)
CASES = [
    ('no prometheus', ('prometheus', 'reachable'), 'FAIL', 'cannot reach Prometheus at http://127.0.0.1:9',
     'runbook_prometheus_url'),
    ('metric', ('prometheus', 'series'), 'FAIL', 'no series of http_requests_count{service="inference-gateway"}',
     'triage_metric'),
    ('status label', ('prometheus', 'labels'), 'FAIL',
     "status_label 'code' matches nothing: http_requests_total{service=\"inference-gateway\"} series carry "
     'endpoint, instance, job, method, service, status', 'set status_label to one of them'),
    ('selector', ('prometheus', 'labels'), 'FAIL', "selector key 'env' matches nothing", 'remove env'),
    ('sources', ('prometheus', 'status values'), 'FAIL', "status_label 'method' holds GET",
     'set status_label to the label holding the HTTP status'),
    ('sources', ('prometheus', 'traffic'), 'WARN', 'too little to judge', 'will not act'),
    ('status label', ('prometheus', 'traffic'), None, '', ''),  # after a label fails, nothing more
    ('selector', ('prometheus', 'history'), None, '', ''),
    ('sources', ('prometheus', 'history'), 'WARN', 'against an SLO window of 30d', 'retention'),
    ('sources', ('prometheus', 'recording rules'), 'WARN', 'absent: slo:nothing:ratio_rate30d', 'raw series'),
    ('sources', ('health', 'answers'), 'FAIL', 'health: cannot reach', 'check the URL'),
    ('sources', ('logs', 'answers'), 'FAIL', 'log_search (loki) for inference-gateway failed', ''),
    ('sources', ('traces', 'answers'), 'FAIL', 'cannot reach Jaeger at http://127.0.0.1:9', ''),
    ('sources', ('resources', 'answers'), 'WARN', 'no series matched any query', ''),
    ('sources', ('docker', 'engine'), 'FAIL', 'cannot reach Docker Engine', 'triage_docker_host'),
    ('sources', ('docker', 'state dir'), 'FAIL', 'cannot write in /proc/sre-runbooks', 'mitigate_state_dir'),
    ('status label', ('docker', 'compose service'), 'FAIL',
     'no container of service inference-gateway in compose project another-project', 'triage_compose_project'),
    ('sources', ('pagerduty', 'routing key'), 'FAIL', 'not an integration key: 10 characters',
     'communicate_pagerduty_routing_key'),
    ('sources', ('pagerduty', 'escalation key'), 'WARN', 'not configured', 'communicate_escalation_routing_key'),
    ('sources', ('statuspage', 'page'), 'FAIL', 'answered HTTP 404', 'communicate_statuspage_page_id'),
    ('status label', ('statuspage', 'component'), 'FAIL', 'answered HTTP 404', 'communicate_statuspage_component_id'),
    ('sources', ('slack', 'channel'), 'WARN', '#incidents is a name, not an ID', 'channel ID'),
    ('status label', ('slack', 'token'), 'WARN', 'not configured', 'communicate_slack_token'),
]


@pytest.mark.parametrize('inventory, key, status, detail, fix', CASES,
                         ids=['%s: %s %s' % (c[0], c[1][0], c[1][1]) for c in CASES])
def test_each_check_says_what_is_wrong(inventory, key, status, detail, fix):
    if inventory not in RUNS:
        RUNS[inventory] = preflight(BROKEN[inventory])
    rc, rows, output = RUNS[inventory]
    assert rc != 0, 'a failed check must fail the play:\n' + output
    if status is None:
        assert key not in rows, output
        return
    assert key in rows, output
    got_status, got_detail, got_fix = rows[key]
    assert got_status == status and detail in got_detail and fix in got_fix, (rows[key], output)


def authenticated(proxy, **changes):
    return {'runbook_prometheus_url': proxy.url, 'runbook_prometheus_auth': prometheus_auth(proxy, **changes)}


@pytest.mark.parametrize('changes, found', [
    ({'bearer_token': None}, 'answered HTTP 401'),
    ({'bearer_token': 'wrong-token'}, 'answered HTTP 401'),
    ({'headers': {}}, 'answered HTTP 401'),
    ({'ca_path': None}, 'CERTIFICATE_VERIFY_FAILED'),
], ids=['no token', 'wrong token', 'no tenant header', 'unknown CA'])
def test_prometheus_credentials_it_refuses_are_a_failed_check(prometheus_proxy, changes, found):
    rc, rows, output = preflight(authenticated(prometheus_proxy, **changes))
    assert rc != 0
    failed = [(key, row) for key, row in rows.items() if key[0] == 'prometheus']
    assert len(failed) == 1 and failed[0][1][0] == 'FAIL' and found in failed[0][1][1], output
    assert TOKEN not in output and 'wrong-token' not in output


def history_held():
    """Seconds of the gateway's series the rig's Prometheus holds (a fresh rig holds minutes)."""
    result = query('time() - min_over_time(timestamp(count(http_requests_total{service="inference-gateway"}))[2h:15s])')
    return float(result[0]['value'][1]) if result else 0.0


def test_an_authenticated_prometheus_passes(prometheus_proxy):
    """With an SLO window the rig's history covers, however young the rig."""
    wait_for(lambda: history_held() >= 120, 180, 'two minutes of history')
    before = prometheus_proxy.passed
    window = '%dm' % min(60, history_held() // 60)
    rc, rows, output = preflight(dict(authenticated(prometheus_proxy), resolve_slo_window=window))
    assert rc == 0, output
    assert rows[('prometheus', 'history')][0] == 'PASS', output
    assert rows[('prometheus', 'reachable')][0] == 'PASS' and 'bearer token' in rows[('prometheus', 'reachable')][1]
    assert rows[('prometheus', 'labels')][0] == 'PASS'
    # The resource figures from Prometheus go through the same credentials.
    assert prometheus_proxy.passed - before >= 7
    assert TOKEN not in output


def test_basic_auth(tmp_path):
    proxy = AuthProxy(tmp_path, username='runbook', password='s3cr3t-password')
    try:
        auth = {'username': 'runbook', 'password': 's3cr3t-password', 'ca_path': proxy.ca}
        rc, rows, output = preflight({'runbook_prometheus_url': proxy.url, 'runbook_prometheus_auth': auth})
        assert rc == 0 and rows[('prometheus', 'reachable')][1].endswith('basic auth)'), output
        rc, rows, output = preflight({'runbook_prometheus_url': proxy.url,
                                      'runbook_prometheus_auth': dict(auth, password='wrong-password')})
        assert rc != 0 and rows[('prometheus', 'auth')][0] == 'FAIL', output
        assert 's3cr3t-password' not in output and 'wrong-password' not in output
    finally:
        proxy.close()


def test_slack_refusals_are_failed_checks(server):
    """auth.test and conversations.info answer HTTP 200 {ok: false, error} as Slack documents."""
    base = {'communicate_slack_api_url': server.url}
    server.routes['/auth.test'] = Route(200, {'ok': False, 'error': 'invalid_auth'})
    rc, rows, output = preflight(base)
    assert rc != 0 and rows[('slack', 'token')][:2] == ['FAIL', 'auth.test answered invalid_auth'], output
    assert ('slack', 'channel') not in rows
    server.routes['/auth.test'] = Route(200, {'ok': True, 'user': 'runbook-bot', 'team': 'Shop'})
    for answer, found in [({'ok': False, 'error': 'channel_not_found'}, 'conversations.info answered channel_not_found'),
                          ({'ok': True, 'channel': {'name': 'incidents', 'is_member': False}},
                           'the bot is not in #incidents'),
                          ({'ok': True, 'channel': {'name': 'old', 'is_archived': True}}, '#old is archived'),
                          ({'ok': False, 'error': 'missing_scope', 'needed': 'channels:read'},
                           'not checked: the token lacks channels:read')]:
        server.routes['/conversations.info'] = Route(200, answer)
        rc, rows, output = preflight(base)
        assert found in rows[('slack', 'channel')][1], output
        assert rows[('slack', 'channel')][0] == ('WARN' if 'missing_scope' in str(answer) else 'FAIL')
    assert 'xoxb-demo-token' not in output
    assert all(r['headers']['authorization'] == 'Bearer xoxb-demo-token' for r in server.requests)


def test_the_pagerduty_rest_token(server):
    """GET /abilities: 200 with a key the account accepts, 401 otherwise (PagerDuty REST API v2)."""
    rest = {'communicate_pagerduty_api_token': 'demo-rest-token', 'communicate_pagerduty_from': 'oncall@example.com'}
    rc, rows, output = preflight(rest)
    assert rc == 0 and rows[('pagerduty', 'REST token')][0] == 'PASS', output
    server.routes['/abilities'] = Route(401, {'error': {'message': 'Authentication failed', 'code': 2006}})
    rc, rows, output = preflight(dict(rest, communicate_pagerduty_api_url=server.url, communicate_pagerduty_from=''))
    assert rc != 0
    assert rows[('pagerduty', 'REST token')][:2] == ['FAIL', '%s answered HTTP 401' % server.url], output
    assert rows[('pagerduty', 'from')][0] == 'FAIL'
    assert server.requests[0]['headers']['authorization'] == 'Token token=demo-rest-token'
    assert 'demo-rest-token' not in output


@pytest.fixture()
def cluster(tmp_path):
    api = FakeApiServer()
    yield api, {'runbook_platform': 'kubernetes', 'runbook_kubeconfig': str(write_kubeconfig(api, tmp_path / 'kubeconfig')),
                'runbook_kubernetes': {'namespace': 'shop', 'deployment': 'inference-gateway'}}
    api.close()


def test_kubernetes_access_is_asked_verb_by_verb(cluster):
    api, extra = cluster
    rc, rows, _output = preflight(extra)
    assert rows[('kubernetes', 'API server')] == ['PASS', 'Kubernetes v1.28.0', '']
    assert rows[('kubernetes', 'access')][0] == 'PASS' and 'namespace shop' in rows[('kubernetes', 'access')][1]
    asked = [r['body']['spec']['resourceAttributes'] for r in api.requests if r['method'] == 'POST']
    assert {(a['verb'], a['group'], a['resource'], a['subresource']) for a in asked} >= {
        ('patch', 'apps', 'deployments', ''), ('get', '', 'pods', 'log'), ('get', '', 'services', 'proxy')}
    assert {a['namespace'] for a in asked} == {'shop'}
    api.denied = {('patch', 'apps', 'deployments', ''), ('get', '', 'pods', 'log')}
    api.metrics_server = False
    rc, rows, output = preflight(extra)
    assert rc != 0
    status, detail, fix = rows[('kubernetes', 'access')]
    assert status == 'FAIL' and 'patch deployments.apps: rollback' in detail and 'get pods/log: error logs' in detail
    assert 'RoleBinding' in fix, output
    assert rows[('kubernetes', 'metrics-server')][0] == 'WARN'


def test_an_unreachable_api_server_is_a_failed_check(cluster, tmp_path):
    api, extra = cluster
    api.close()
    rc, rows, output = preflight(extra)
    assert rc != 0 and rows[('kubernetes', 'API server')][0] == 'FAIL', output
    assert 'cannot reach the API server' in rows[('kubernetes', 'API server')][1]

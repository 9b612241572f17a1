"""Triage end to end on the real rig: Prometheus, the Docker engine, docker-compose and the demo
services (demo/rig.sh). A good v1.2.2 is triaged as healthy; after the bad deploy of v1.2.3 the
runbook must find /predict failing, critical, and the deploy just before the errors began."""

import subprocess
import time

import pytest

from conftest import ROOT, run_module
from rig import PROMETHEUS, now, playbook, query, rig, run_runbook

DEMO_WINDOWS = {'window': '30s', 'baseline_offset': '60s', 'lookback': '5m'}


@pytest.fixture(scope='module')
def stack():
    rig('up')
    # The baseline window (30 s, 60 s back) must hold only v1.2.2 traffic.
    rig('wait-baseline', 100)
    yield
    rig('deploy', 'v1.2.2')


@pytest.fixture(scope='module')
def healthy(stack, tmp_path_factory):
    return run_runbook(tmp_path_factory.mktemp('healthy'))


@pytest.fixture(scope='module')
def bad_deploy(healthy, tmp_path_factory):
    deployed_at = now()
    rig('deploy', 'v1.2.3')
    rig('wait-alert', 180)
    # The 30 s rate window whole on the bad version, so that /predict shows its full failure rate.
    time.sleep(max(0.0, deployed_at + 35 - now()))
    incident, output = run_runbook(tmp_path_factory.mktemp('bad'))
    return deployed_at, incident, output


def test_healthy_service_is_triaged_as_healthy(healthy):
    incident, output = healthy
    e = incident['triage']['error_rate']
    assert incident['severity'] == 'none' and incident['priority'] == 'P4'
    assert e['verdict'] == 'ok'
    assert e['error_percent'] < 1
    assert 15 < e['request_rate'] < 25  # the load generator sends 20 req/s
    assert e['baseline']['verdict'] == 'ok'
    assert e['failing_groups'] == [] and e['top_group'] is None
    assert incident['triage']['service_down'] is False
    assert incident['triage']['current_image'] == 'sre-demo/inference-gateway:v1.2.2'
    assert 'TRIAGE of inference-gateway: NONE (P4)' in output


def test_bad_deploy_is_critical_on_predict(bad_deploy):
    incident, output = bad_deploy[1:]
    e = incident['triage']['error_rate']
    assert incident['severity'] == 'critical' and incident['priority'] == 'P1'
    assert e['verdict'] == 'critical'
    # /predict fails 80% of the time and carries a quarter of the traffic.
    assert 10 < e['error_percent'] < 35
    assert e['top_group'] == '/predict'
    assert e['concentrated'] is True
    assert e['failing_groups'] == ['/predict']
    predict = e['groups'][0]
    assert predict['value'] == '/predict' and 50 < predict['error_percent'] < 100
    assert predict['share_of_errors'] > 0.95
    assert all(g['error_percent'] < 1 for g in e['groups'][1:])
    assert e['baseline']['error_percent'] < 1
    assert e['change_percent_points'] > 9


def test_bad_deploy_shape_and_onset_follow_the_deploy(bad_deploy):
    deployed_at, incident = bad_deploy[:2]
    e = incident['triage']['error_rate']
    assert e['shape'] == 'spike'
    # The errors begin after the deploy (scrape and step resolution allow a few seconds).
    assert deployed_at - 3 <= e['onset'] <= deployed_at + 30


def test_bad_deploy_is_the_most_recent_change(bad_deploy):
    deployed_at, incident = bad_deploy[:2]
    change = incident['triage']['changes'][0]
    assert change['kind'] == 'deploy'
    assert change['image'] == 'sre-demo/inference-gateway:v1.2.3'
    assert change['previous_image'] == 'sre-demo/inference-gateway:v1.2.2'
    assert abs(change['time'] - deployed_at) < 15
    assert 0 <= change['seconds_before_onset'] < 30
    assert incident['triage']['current_image'] == 'sre-demo/inference-gateway:v1.2.3'
    assert incident['triage']['previous_image'] == 'sre-demo/inference-gateway:v1.2.2'


def test_summary_reads_first_what_matters(bad_deploy):
    output = bad_deploy[2]
    assert 'TRIAGE of inference-gateway: CRITICAL (P1)' in output
    assert 'Scope      : concentrated on /predict' in output
    assert ('deploy: image sre-demo/inference-gateway:v1.2.2 -> '
            'sre-demo/inference-gateway:v1.2.3') in output
    assert 's before the errors began' in output
    assert 'Dependencies: model-service up, feature-store up' in output


def test_alert_rule_fired_in_prometheus(bad_deploy):
    firing = query('ALERTS{alertname="HighErrorRate",alertstate="firing",'
                   'service="inference-gateway"}')
    assert firing and firing[0]['metric']['severity'] == 'critical'


def test_invalid_promql_surfaces_prometheus_error(stack):
    r = run_module('prometheus_query_info', {'url': PROMETHEUS, 'query': 'sum(rate(http_requests_total[5m]'})
    assert r['failed'] is True
    assert 'rejected the query with bad_data (HTTP 400)' in r['msg']
    assert 'parse error' in r['msg']


def test_service_with_no_series_is_said_as_such(stack):
    r = run_module('error_rate_info', dict(DEMO_WINDOWS, url=PROMETHEUS, service='inference-gatewya'))
    assert r['failed'] is True
    assert "no series of http_requests_total match service='inference-gatewya'" in r['msg']
    assert 'check the service name' in r['msg']


def test_wrong_status_label_name_is_an_error_not_zero_errors(stack):
    # status_code is the DhakaCart label; the demo's is status: matching nothing would read 0%.
    r = run_module('error_rate_info', dict(DEMO_WINDOWS, url=PROMETHEUS, service='model-service',
                                           status_label='status_code', group_by=''))
    assert r['failed'] and r['msg'].startswith("status_label 'status_code' matches nothing: "), r
    assert 'endpoint, instance, job, method, service, status' in r['msg']
    assert r['label_check']['series_labels'] == ['endpoint', 'instance', 'job', 'method', 'service', 'status']


def test_instant_and_range_queries_on_real_prometheus(stack):
    instant = run_module('prometheus_query_info', {
        'url': PROMETHEUS, 'query': 'sum by (service) (rate(http_requests_total[30s]))'})
    services = {s['labels']['service'] for s in instant['series']}
    assert services == {'inference-gateway', 'model-service', 'feature-store', 'orders'}
    assert all(s['value'] > 0 for s in instant['series'])
    ranged = run_module('prometheus_query_info', {
        'url': PROMETHEUS, 'query': 'up', 'type': 'range', 'start': 'now-1m', 'step': '5s'})
    assert ranged['result_type'] == 'matrix'
    assert all(len(s['values']) >= 10 for s in ranged['series'])


def test_ready_dependencies_extracted_from_the_real_gateway(stack):
    r = run_module('service_health_info', {'checks': [
        {'name': 'ready', 'url': 'http://127.0.0.1:8000/ready', 'query': 'dependencies'},
        {'name': 'head', 'url': 'http://127.0.0.1:8000/', 'method': 'HEAD'}]})
    deps = r['by_name']['ready']['extracted']
    assert deps['model-service']['status'] == 'up' and deps['feature-store']['status'] == 'up'
    assert r['all_ok'] is True


def test_unknown_service_stops_the_playbook_with_the_known_ones(stack):
    rc, output = playbook('playbooks/high_error_rate.yml', '-e', 'service=payments')
    assert rc != 0
    # The message as one line (the YAML result format wraps it).
    said = ' '.join(output.replace("'", ' ').split())
    assert 'Unknown service payments in this inventory; known services: inference-gateway, orders' in said
    rc, output = playbook('playbooks/triage.yml')
    assert rc != 0 and 'Say which service: -e service=<name>' in output


def test_rules_pass_promtool():
    # rig.sh check: the checked-in production rules equal their render, and promtool checks
    # both them and the demo's shortened windows.
    out = rig('check')
    assert 'is up to date' in out
    tests = ROOT / 'demo' / 'prometheus' / 'tests'
    proc = subprocess.run(['promtool', 'test', 'rules', 'high-error-rate.test.yml', 'high-response-time.test.yml'],
                          cwd=tests, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.count('SUCCESS') == 2, proc.stdout + proc.stderr


def test_healthy_service_opens_no_incident(healthy):
    incident, output = healthy
    assert incident['outcome'] == 'recovered' and incident['evidence']['healthy']
    assert 'diagnosis' not in incident and 'investigate' not in incident
    assert 'recovered before the runbook ran' in output


def test_bad_deploy_is_diagnosed_and_rolled_back_in_advice(bad_deploy):
    incident, output = bad_deploy[1:]
    d = incident['diagnosis']
    assert d['recommended']['cause'] == 'deploy'
    assert d['action']['name'] == 'rollback'
    assert d['action']['params']['to_image'] == 'sre-demo/inference-gateway:v1.2.2'
    assert [c['cause'] for c in d['causes']][:2] == ['deploy', 'endpoint']
    assert d['missing_evidence'] == []
    # The evidence behind it comes from the real logs of the bad version.
    top = incident['investigate']['logs']['top_messages'][0]
    assert 'prediction handler failed' in top['pattern'] and top['count'] > 10
    assert 'DIAGNOSIS of inference-gateway: deploy: rollback to v1.2.2' in output

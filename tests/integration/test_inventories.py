"""The Kubernetes inventories without a cluster: they resolve to the documented values (and
inventories/kubernetes to what demo/k8s deploys), and the runbook playbook passes --syntax-check
with each of them."""

import json
import os
import subprocess
import sys
import urllib.parse

import pytest
import yaml

from conftest import ROOT
from rig import ENV

BIN = os.path.dirname(sys.executable)
RUNBOOK = 'playbooks/high_error_rate.yml'
INVENTORIES = {'kubernetes': 'inference-gateway', 'dhakacart': 'dhakacart-backend'}
KUBERNETES_KEYS = {'namespace', 'deployment', 'selector', 'service', 'port', 'scheme'}


def run(*args):
    proc = subprocess.run(list(args), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, '%s failed:\n%s\n%s' % (' '.join(args), proc.stdout, proc.stderr)
    return proc.stdout


def inventory(name):
    return json.loads(run(os.path.join(BIN, 'ansible-inventory'), '-i', 'inventories/' + name, '--list'))


def hostvars(name):
    listed = inventory(name)
    assert listed['services']['hosts'] == [INVENTORIES[name]]
    return listed['_meta']['hostvars'][INVENTORIES[name]]


def templated(name, *variables):
    """The variables as the play sees them (templates resolved), through one ad-hoc debug task."""
    out = run(os.path.join(BIN, 'ansible'), INVENTORIES[name], '-i', 'inventories/' + name, '-o',
              '-m', 'ansible.builtin.debug', '-a', 'var=[%s]' % ','.join(variables))
    data = json.loads(out.split('=>', 1)[1])
    return dict(zip(variables, data['[%s]' % ','.join(variables)]))


def manifest(kind, name):
    docs = [d for path in (ROOT / 'demo' / 'k8s').glob('*.yaml') for d in yaml.safe_load_all(path.read_text()) if d]
    docs = [item for d in docs for item in (d['items'] if d['kind'] == 'List' else [d])]
    return next(d for d in docs if d['kind'] == kind and d['metadata']['name'] == name)


@pytest.mark.parametrize('name', sorted(INVENTORIES))
def test_hosts_run_on_the_controller(name):
    variables = hostvars(name)
    assert variables['ansible_connection'] == 'local'
    assert variables['ansible_python_interpreter'] == '{{ ansible_playbook_python }}'
    assert variables['runbook_platform'] == 'kubernetes'
    assert set(variables['runbook_kubernetes']) == KUBERNETES_KEYS
    # The cluster comes from $KUBECONFIG unless the user names one.
    assert 'runbook_kubeconfig' not in variables and 'runbook_kube_context' not in variables
    assert variables['runbook_prometheus_url'].startswith('http://127.0.0.1:')


def test_kubernetes_inventory_is_the_demo_on_a_cluster():
    variables = hostvars('kubernetes')
    assert variables['runbook_prometheus_url'] == 'http://127.0.0.1:19090'
    workload = variables['runbook_kubernetes']
    assert workload == {'namespace': 'sre-demo', 'deployment': 'inference-gateway', 'selector': 'app=inference-gateway',
                        'service': 'inference-gateway', 'port': 8000, 'scheme': 'http'}
    # ... which is what demo/k8s deploys.
    deployment = manifest('Deployment', workload['deployment'])
    service = manifest('Service', workload['service'])
    assert deployment['metadata']['namespace'] == service['metadata']['namespace'] == workload['namespace']
    key, value = workload['selector'].split('=')
    assert deployment['spec']['selector']['matchLabels'] == {key: value} == service['spec']['selector']
    assert workload['port'] in [p['port'] for p in service['spec']['ports']]
    assert (variables['triage_health_path'], variables['triage_ready_path']) == ('/health', '/ready')
    assert (variables['investigate_log_backend'], variables['investigate_resource_source']) == ('kubernetes', 'kubernetes')
    assert 'scale' in variables['mitigate_allowed_actions'] and variables['mitigate_max_replicas'] == 10
    # Demo windows, as inventories/compose.
    assert variables['triage_window'] == '30s' and variables['verify_stable_for'] == '10s'
    assert templated('kubernetes', 'triage_selector')['triage_selector'] == {'namespace': 'sre-demo'}


def test_dhakacart_inventory_is_the_second_runbook():
    variables = hostvars('dhakacart')
    assert variables['runbook_kubernetes'] == {'namespace': 'dhakacart', 'deployment': 'dhakacart-backend',
                                               'selector': 'app=dhakacart-backend', 'service': 'dhakacart-backend',
                                               'port': 5000, 'scheme': 'http'}
    assert variables['triage_health_path'] == '/health' and variables['triage_ready_path'] == ''
    assert variables['investigate_log_backend'] == 'elasticsearch'
    assert variables['investigate_log_query'] == 'level:ERROR AND service:backend'
    assert variables['investigate_resource_source'] == 'kubernetes'
    checks = {c['name']: c for c in variables['investigate_dependency_checks']}
    assert checks['db']['url'] == '/health/db' and checks['redis']['url'] == '/health/redis'
    assert checks['pg_pool']['url'] == '/metrics' and checks['pg_pool']['metrics_match'].startswith('^pg_')
    # The runbook's figures: scale to 6 then 8 replicas; limits memory 1Gi, cpu 1000m.
    assert variables['mitigate_max_replicas'] == 8
    assert variables['mitigate_max_limits'] == {'cpu': '1000m', 'memory': '1Gi'}
    assert {'rollback', 'scale', 'resources', 'restart'} <= set(variables['mitigate_allowed_actions'])
    # Production windows, not the demo's.
    assert (variables['triage_window'], variables['triage_baseline_offset'], variables['triage_lookback']) == ('5m', '1d', '1h')
    assert variables['investigate_since'] == '15m'
    assert (variables['mitigate_cooldown'], variables['mitigate_lock_ttl']) == ('5m', '20m')
    assert (variables['verify_target_percent'], variables['verify_deadline']) == (5.0, '15m')
    # Elasticsearch: a placeholder on 127.0.0.1 the user overrides.
    assert templated('dhakacart', 'investigate_log_url')['investigate_log_url'] == 'http://127.0.0.1:9200'
    out = run(os.path.join(BIN, 'ansible'), 'dhakacart-backend', '-i', 'inventories/dhakacart', '-o', '-m',
              'ansible.builtin.debug', '-a', 'var=investigate_log_url', '-e', 'dhakacart_elasticsearch_url=https://es.example:9200')
    assert '"investigate_log_url": "https://es.example:9200"' in out


@pytest.mark.parametrize('name', sorted(INVENTORIES))
def test_runbook_syntax_check(name):
    out = run(os.path.join(BIN, 'ansible-playbook'), '--syntax-check', RUNBOOK, '-i', 'inventories/' + name,
              '-e', 'service=' + INVENTORIES[name])
    assert 'playbook: ' + RUNBOOK in out


@pytest.mark.parametrize('name', sorted(INVENTORIES))
def test_target_check_knows_the_service(name):
    # The runbook's first play (playbooks/target.yml) accepts the inventory's service, refuses others.
    run(os.path.join(BIN, 'ansible-playbook'), 'playbooks/target.yml', '-i', 'inventories/' + name,
        '-e', 'service=' + INVENTORIES[name])
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), 'playbooks/target.yml', '-i', 'inventories/' + name,
                           '-e', 'service=nope'], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode != 0 and 'Unknown service nope' in proc.stdout


def urls(value, where):
    """(where, url) of every http(s) URL in a variable's value, nested ones included."""
    if isinstance(value, dict):
        return [u for k, v in value.items() for u in urls(v, '%s.%s' % (where, k))]
    if isinstance(value, list):
        return [u for i, v in enumerate(value) for u in urls(v, '%s[%d]' % (where, i))]
    return [(where, value)] if isinstance(value, str) and value.startswith(('http://', 'https://')) else []


def test_every_url_of_the_demo_inventory_stays_on_loopback():
    """Every URL the runbook would call with inventories/compose: its own values, and the role
    defaults it does not override (the demo's tokens must never travel to a vendor)."""
    listed = inventory('compose')
    variables = listed['_meta']['hostvars']['inference-gateway']
    effective = dict(variables)
    for path in sorted(ROOT.glob('roles/*/defaults/main.yml')):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            effective.setdefault(name, value)
    found = [u for name, value in sorted(effective.items()) for u in urls(value, name)]
    assert any(where == 'communicate_pagerduty_api_url' for where, _url in found)
    leaving = ['%s=%s' % (where, url) for where, url in found
               if urllib.parse.urlsplit(url).hostname not in ('127.0.0.1', '::1', 'localhost')]
    assert not leaving, 'URLs of inventories/compose leave loopback: %s' % ', '.join(leaving)

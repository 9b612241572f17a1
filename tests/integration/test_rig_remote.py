"""The whole runbook as a user with their own access runs it: the docker host reached over SSH (the
rig's real sshd on 127.0.0.1:2222, with a key made here), and Prometheus behind an authenticating
HTTPS proxy (auth_proxy.py: a CA made here, a bearer token, a tenant header), both set once in the
inventory. Over SSH the modules that act and read the engine run on the target as Ansible ships
them, not in the controller's process. Check mode plans the rollback and changes nothing; then
the bad deploy is rolled back and verified; every Prometheus query of every role went through
the proxy with the credentials."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from auth_proxy import AuthProxy
from conftest import ROOT
from rig import playbook, rig, run_runbook

SSH_DIR = Path('/var/lib/sre-demo/ssh')
SSHD_LOG = Path('/var/log/sre-demo/sshd.log')
LOCK = Path('/var/lib/sre-runbooks/locks/inference-gateway.lock')
GATEWAY = 'sre-demo/inference-gateway:'
TOKEN = 's3cr3t-prometheus-token'


@pytest.fixture(scope='module')
def proxy(tmp_path_factory):
    served = AuthProxy(tmp_path_factory.mktemp('proxy'), token=TOKEN, tenant='sre-demo')
    yield served
    served.close()


@pytest.fixture(scope='module')
def remote(tmp_path_factory, proxy):
    """inventories/compose with the docker host over SSH and Prometheus behind the proxy; the
    test key is allowed into the rig's sshd for the module's tests only."""
    rig('up')
    here = tmp_path_factory.mktemp('remote')
    key = here / 'id_ed25519'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'sre-runbooks-test', '-f', str(key)],
                   check=True, timeout=30)
    authorized = SSH_DIR / 'authorized_keys'
    before = authorized.read_text()
    authorized.write_text(before + (here / 'id_ed25519.pub').read_text())
    kind, host_key = (SSH_DIR / 'host_ed25519_key.pub').read_text().split()[:2]
    (here / 'known_hosts').write_text('[127.0.0.1]:2222 %s %s\n' % (kind, host_key))
    inventory = here / 'inventory'
    shutil.copytree(ROOT / 'inventories' / 'compose', inventory)
    (inventory / 'hosts.yml').write_text(yaml.safe_dump({'services': {'hosts': {'inference-gateway': {
        'ansible_host': '127.0.0.1', 'ansible_port': 2222, 'ansible_user': 'root',
        'ansible_ssh_private_key_file': str(key), 'ansible_python_interpreter': '/usr/bin/python3',
        # A connection of its own (no master left by another run), checked against the rig's host key.
        'ansible_ssh_common_args': '-o ControlPath=%s/cp-%%C -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'
                                   % (here, here / 'known_hosts'),
    }}}}))
    group_vars = inventory / 'group_vars' / 'all.yml'
    settings = yaml.safe_load(group_vars.read_text())
    settings.update(runbook_prometheus_url=proxy.url, runbook_prometheus_auth={
        'bearer_token': TOKEN, 'ca_path': proxy.ca, 'headers': {'X-Scope-OrgID': 'sre-demo'}})
    group_vars.write_text(yaml.safe_dump(settings))
    yield inventory
    authorized.write_text(before)


def gateway():
    out = subprocess.run(['docker', 'ps', '--no-trunc', '--filter', 'label=com.docker.compose.service=inference-gateway',
                          '--format', '{{.ID}} {{.Image}}'], capture_output=True, text=True, timeout=30, check=True)
    return tuple(out.stdout.split())


def ssh_sessions():
    """Commands run on the docker host through the rig's sshd so far (its log is VERBOSE)."""
    return len(re.findall(r'Starting session: command for root from 127\.0\.0\.1', SSHD_LOG.read_text()))


def test_preflight_reaches_the_docker_host_over_ssh(remote):
    sessions = ssh_sessions()
    rc, output = playbook('playbooks/preflight.yml', '-e', 'service=inference-gateway', inventory=remote)
    assert rc == 0, output
    assert re.search(r'PASS  docker      compose service   inference-gateway in compose project sre-demo', output)
    assert 'PASS  prometheus  reachable         %s' % remote_url(remote) in output
    assert ssh_sessions() > sessions
    assert TOKEN not in output


def remote_url(inventory):
    return yaml.safe_load((inventory / 'group_vars' / 'all.yml').read_text())['runbook_prometheus_url']


def test_a_wrong_prometheus_token_is_said_plainly_in_triage(remote, proxy, tmp_path):
    incident, output = run_runbook(tmp_path, 'inference-gateway', '-e', json.dumps({'runbook_prometheus_auth': {
        'bearer_token': 'wrong-token', 'ca_path': proxy.ca, 'headers': {'X-Scope-OrgID': 'sre-demo'}}}),
        inventory=remote)
    assert incident['outcome'] == 'insufficient_evidence', output
    assert 'error rate was not measured' in output and 'HTTP 401' in output
    assert 'wrong-token' not in output


def test_the_whole_runbook_over_ssh_and_an_authenticated_prometheus(remote, proxy, tmp_path):
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-baseline', 100)
    rig('deploy', 'v1.2.3')
    rig('wait-alert', 180)
    assert not LOCK.exists()
    sessions, queries, refused = ssh_sessions(), proxy.passed, proxy.refused
    try:
        before = gateway()
        planned, output = run_runbook(tmp_path, 'inference-gateway', '--check', mode='auto', inventory=remote)
        attempt = planned['mitigation']['attempts'][0]
        assert planned['outcome'] == 'planned', output
        assert attempt['action']['name'] == 'rollback' and attempt['check_mode']
        assert attempt['after']['image'] == GATEWAY + 'v1.2.2'
        assert gateway() == before and before[1] == GATEWAY + 'v1.2.3'

        incident, output = run_runbook(tmp_path, 'inference-gateway', mode='auto', inventory=remote)
        assert incident['outcome'] == 'resolved', output
        assert incident['mitigation']['attempts'][0]['after']['image'] == GATEWAY + 'v1.2.2'
        assert incident['verify']['recovered'] and incident['verify']['last_percent'] < 1
        assert gateway()[1] == GATEWAY + 'v1.2.2'
        assert not LOCK.exists()
    finally:
        rig('clear')
    assert ssh_sessions() >= sessions + 10
    # Triage, verification and the SLO all asked Prometheus through the proxy; none was refused.
    assert proxy.passed - queries >= 20 and proxy.refused == refused
    assert TOKEN not in output

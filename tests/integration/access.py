"""Fixtures of the rig tests that reach it as a user with their own access would: Prometheus
behind an authenticating HTTPS proxy, and the docker host over SSH (the rig's sshd)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from auth_proxy import AuthProxy
from conftest import ROOT
from rig import rig

SSH_DIR = Path('/var/lib/sre-demo/ssh')
PROMETHEUS_TOKEN = 's3cr3t-prometheus-token'
TENANT = 'sre-demo'


@pytest.fixture(scope='session')
def prometheus_proxy(tmp_path_factory):
    """The rig's Prometheus behind HTTPS (a CA made here), a bearer token and a tenant header."""
    served = AuthProxy(tmp_path_factory.mktemp('proxy'), token=PROMETHEUS_TOKEN, tenant=TENANT)
    yield served
    served.close()


def prometheus_auth(proxy, **changes):
    """runbook_prometheus_auth for the proxy, with changes (None drops a key)."""
    auth = dict({'bearer_token': PROMETHEUS_TOKEN, 'ca_path': proxy.ca, 'headers': {'X-Scope-OrgID': TENANT}},
                **changes)
    return {key: value for key, value in auth.items() if value is not None}


@pytest.fixture(scope='session')
def remote_inventory(tmp_path_factory, prometheus_proxy):
    """inventories/compose with the docker host over SSH (the rig's sshd, 127.0.0.1:2222, a key
    made here and allowed in for the session only) and Prometheus behind the proxy."""
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
    settings.update(runbook_prometheus_url=prometheus_proxy.url, runbook_prometheus_auth=prometheus_auth(prometheus_proxy))
    group_vars.write_text(yaml.safe_dump(settings))
    yield inventory
    authorized.write_text(before)

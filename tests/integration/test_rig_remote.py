"""A user's own access (access.py): the docker host over SSH (the rig's sshd) and Prometheus
behind an authenticating HTTPS proxy, set once in the inventory. Preflight checks the docker host
through that connection; a refused Prometheus token is said plainly in a run and never acted on.
The whole runbook through them: test_rig_mitigation.py."""

import json
import re
from pathlib import Path

import yaml

from access import PROMETHEUS_TOKEN, prometheus_auth, prometheus_proxy, remote_inventory  # noqa: F401  # pylint: disable=unused-import
from rig import playbook, run_runbook

SSHD_LOG = Path('/var/log/sre-demo/sshd.log')


def ssh_sessions():
    """Commands run on the docker host through the rig's sshd so far (its log is VERBOSE)."""
    return len(re.findall(r'Starting session: command for root from 127\.0\.0\.1', SSHD_LOG.read_text()))


def test_preflight_reaches_the_docker_host_over_ssh(remote_inventory):
    sessions = ssh_sessions()
    rc, output = playbook('playbooks/preflight.yml', '-e', 'service=inference-gateway', inventory=remote_inventory)
    assert rc == 0, output
    assert re.search(r'PASS  docker      compose service   inference-gateway in compose project sre-demo', output)
    url = yaml.safe_load((remote_inventory / 'group_vars' / 'all.yml').read_text())['runbook_prometheus_url']
    assert 'PASS  prometheus  reachable         %s (' % url in output and 'bearer token' in output
    assert ssh_sessions() > sessions
    assert PROMETHEUS_TOKEN not in output


def test_an_unreachable_docker_host_is_a_failed_row(remote_inventory):
    rc, output = playbook('playbooks/preflight.yml', '-e', 'service=inference-gateway', '-e', 'ansible_port=2',
                          '-e', 'communicate_slack_token=', '-e', 'communicate_statuspage_api_key=',
                          inventory=remote_inventory)
    assert rc != 0
    assert re.search(r'FAIL  docker      host              .*Connection refused', output), output
    assert re.search(r'-> check the connection to inference-gateway', output)
    assert re.search(r'FAIL  logs        answers           .*Connection refused', output)
    assert 'PASS  prometheus  labels' in output  # the rest is still checked


def test_a_refused_prometheus_token_is_said_plainly_in_a_run(remote_inventory, prometheus_proxy, tmp_path):
    auth = prometheus_auth(prometheus_proxy, bearer_token='wrong-token')
    incident, output = run_runbook(tmp_path, 'inference-gateway', '-e', json.dumps({'runbook_prometheus_auth': auth}),
                                   inventory=remote_inventory)
    assert incident['outcome'] == 'insufficient_evidence', output
    assert 'error rate was not measured' in output and 'HTTP 401' in output
    assert 'wrong-token' not in output

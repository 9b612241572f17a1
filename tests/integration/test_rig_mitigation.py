"""The runbook's safety on the real rig (Docker engine, docker-compose, Prometheus, demo services):
check mode changes nothing, one remediation at a time per service across controllers, and a second
run right after a successful one does nothing (all on one bad deploy; the run that acts reaches the
docker host over SSH and Prometheus through an authenticating proxy, access.py); a run killed
mid-action leaves the service running and its lock expiring; a rollback to an image that is not
there is refused and changes nothing."""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from access import PROMETHEUS_TOKEN, prometheus_proxy, remote_inventory  # noqa: F401  # pylint: disable=unused-import
from conftest import run_module
from rig import CAPTURE, playbook, rig, run_runbook, start_playbook
from test_rig_remote import ssh_sessions

STATE = Path('/var/lib/sre-runbooks')
LOCK = STATE / 'locks' / 'inference-gateway.lock'
LEDGER = STATE / 'actions' / 'inference-gateway.json'
OVERRIDE = STATE / 'compose' / 'sre-demo' / 'override.yml'
HISTORY = STATE / 'compose' / 'sre-demo' / 'inference-gateway.history.json'
GATEWAY = 'sre-demo/inference-gateway:'
TESTS_STARTED = time.time()


def gateway():
    """(container id, image, state) of the running gateway container."""
    out = subprocess.run(['docker', 'ps', '-a', '--no-trunc', '--filter',
                          'label=com.docker.compose.service=inference-gateway', '--format',
                          '{{.ID}} {{.Image}} {{.State}}'], capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    return tuple(out[:3])


def read(path):
    return path.read_text() if path.exists() else None


def snapshot():
    return {'gateway': gateway(), 'override': read(OVERRIDE), 'history': read(HISTORY),
            'lock': read(LOCK), 'ledger': read(LEDGER)}


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, 'timed out after %ss waiting for %s' % (timeout, what)
        time.sleep(0.2)


def healthy():
    try:
        with urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def incident_of(path):
    return json.loads(Path(path).read_text())


@pytest.fixture()
def bad_deploy():
    """The demo's bad deploy with the alert firing, and no lock left from earlier runs."""
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-baseline', 100)
    rig('deploy', 'v1.2.3')
    rig('wait-alert', 180)
    no_lock_left()
    yield
    rig('clear')


def test_check_mode_changes_nothing_then_one_remediation_at_a_time_then_none(bad_deploy, remote_inventory,
                                                                             prometheus_proxy, tmp_path):
    """On one bad deploy: check mode plans the rollback and changes nothing, from this controller
    and over SSH; a run over SSH takes the service's lock on the docker host, so that a run from
    this controller is refused while it acts; it rolls back and verifies; a run right after it
    does nothing."""
    before = snapshot()
    for inventory in (None, remote_inventory):
        incident, output = run_runbook(tmp_path, 'inference-gateway', '--check', mode='auto', inventory=inventory)
        attempt = incident['mitigation']['attempts'][0]
        assert incident['outcome'] == 'planned', output
        assert attempt['action']['name'] == 'rollback' and attempt['check_mode']
        assert attempt['after']['image'] == GATEWAY + 'v1.2.2'
        assert any('up -d --no-deps inference-gateway' in c for c in attempt['commands'])
        assert 'check mode: nothing changed' in output
        assert snapshot() == before
    assert before['gateway'][1] == GATEWAY + 'v1.2.3'

    sessions, queries, refused = ssh_sessions(), prometheus_proxy.passed, prometheus_proxy.refused
    first = start_playbook(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=auto',
                           '-e', 'incident_out=%s' % (tmp_path / 'first.json'), inventory=remote_inventory)
    try:
        wait_for(LOCK.exists, 120, 'the first run to take the lock')
        holder = json.loads(LOCK.read_text())['run_id']
        # The first run is recreating the container meanwhile: what the second one reads of it may
        # be partial, and a disruptive action on partial evidence would be refused before the lock.
        rc, output = playbook(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=auto',
                              '-e', 'mitigate_allow_partial=true', '-e', 'incident_out=%s' % (tmp_path / 'b.json'))
        assert rc != 0
        assert 'another remediation of inference-gateway is under way: run %s' % holder in output
        output = first.communicate(timeout=400)[0]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, output
    incident = incident_of(tmp_path / 'first.json')
    assert incident['outcome'] == 'resolved', output
    assert incident['mitigation']['attempts'][0]['after']['image'] == GATEWAY + 'v1.2.2'
    assert incident['verify']['recovered'] and incident['verify']['last_percent'] < 1
    assert gateway()[1:] == (GATEWAY + 'v1.2.2', 'running')
    assert not LOCK.exists()
    # It acted over SSH, and triage, verification and the SLO asked Prometheus through the proxy.
    assert ssh_sessions() >= sessions + 10
    assert prometheus_proxy.passed - queries >= 20 and prometheus_proxy.refused == refused
    assert PROMETHEUS_TOKEN not in output

    after_first = snapshot()
    again, output = run_runbook(tmp_path, 'inference-gateway', mode='auto')
    assert again['outcome'] == 'recovered' and 'mitigation' not in again, output
    assert snapshot()['gateway'] == after_first['gateway']
    assert read(LEDGER) == after_first['ledger']


def test_a_run_killed_mid_action_leaves_the_service_running_and_the_lock_expiring(bad_deploy,
                                                                                  tmp_path):
    run = start_playbook(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=auto',
                         '-e', 'mitigate_cooldown=0', '-e', 'mitigate_lock_ttl=20s',
                         '-e', 'incident_out=%s' % (tmp_path / 'killed.json'))
    try:
        wait_for(LOCK.exists, 120, 'the run to take the lock')
        time.sleep(0.5)  # inside the rollback
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    lock = json.loads(LOCK.read_text())
    assert lock['expires_at'] <= time.time() + 20
    # Whichever image it runs, the gateway runs and answers.
    wait_for(lambda: gateway()[2] == 'running' and healthy(), 90, 'the gateway to run and answer')
    take_over_expired_lock(lock)


def no_lock_left():
    """No lock is left by an earlier run of these tests. A run from before them, ended with its
    machine or its session, may have left one: once expired, it is taken over as the next run
    would take it."""
    lock = json.loads(LOCK.read_text()) if LOCK.exists() else None
    if lock and lock['acquired_at'] < TESTS_STARTED and lock['expires_at'] < time.time():
        take_over_expired_lock(lock)
    assert not LOCK.exists(), 'a lock is left from an earlier run: %s' % read(LOCK)


def take_over_expired_lock(lock):
    """Once the lock of a dead run expires, the next run takes it over, and releases it."""
    wait_for(lambda: time.time() > lock['expires_at'], 30, 'the lock to expire')
    args = {'service': 'inference-gateway', 'run_id': 'next-run', 'incident_id': 'next', 'cooldown': '0',
            'state_dir': str(STATE)}
    taken = run_module('remediation_lock', args)
    assert taken['allowed'] and taken['took_over']['run_id'] == lock['run_id']
    assert run_module('remediation_lock', dict(args, state='released'))['changed']
    assert not LOCK.exists()


def test_a_rollback_to_an_image_that_is_not_here_is_refused(tmp_path):
    rig('clear')
    before = snapshot()
    out = tmp_path / 'incident.json'
    rc, output = playbook('tests/integration/playbooks/capture_incident.yml', '-e',
                          'service=inference-gateway', '-e', 'incident_out=%s' % out)
    assert rc == 0, output
    rc, output = playbook('playbooks/rollback.yml', '-e', 'service=inference-gateway',
                          '-e', 'image=v9.9.9', '-e', 'mitigate_mode=auto',
                          '-e', 'mitigate_cooldown=0')
    assert rc == 0, output
    assert 'image sre-demo/inference-gateway:v9.9.9 is not on this host' in output
    assert 'ESCALATE' in output
    after = snapshot()
    assert after['gateway'] == before['gateway'] and after['override'] == before['override']
    assert not LOCK.exists()

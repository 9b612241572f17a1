"""The gateway's startup-crash and hang faults on the real rig (demo/rig.sh inject, wait-fault, clear):
the container's exit codes and restarts as Docker reports them, the probes' timeouts, and a clear
that brings the gateway back although it crash-loops (its admin API cannot answer) or hangs."""

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rig import rig

GATEWAY_URL = 'http://127.0.0.1:8000'
STATE_FILE = Path('/var/lib/sre-demo/faults/inference-gateway.json')
FATAL = 'fatal: cannot load the warm cache from /var/lib/sre-demo/cache/warm-cache.bin: checksum mismatch'


def container():
    """docker inspect of the gateway's container."""
    ids = subprocess.run(['docker', 'ps', '-aq', '--no-trunc', '--filter', 'label=com.docker.compose.project=sre-demo',
                          '--filter', 'label=com.docker.compose.service=inference-gateway'],
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert len(ids) == 1, ids
    out = subprocess.run(['docker', 'inspect', ids[0]], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)[0]


def logs(since):
    out = subprocess.run(['docker', 'logs', '--since', str(int(since)), container()['Id']],
                         capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line) for line in (out.stdout + out.stderr).splitlines() if line.startswith('{')]


def get(path, timeout):
    """(status or 'timeout' or the error, seconds taken)."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(GATEWAY_URL + path, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, urllib.error.URLError) as exc:
        status = 'timeout' if 'timed out' in str(exc) else str(getattr(exc, 'reason', exc))
    return status, time.monotonic() - started


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, 'timed out after %ss waiting for %s' % (timeout, what)
        time.sleep(0.5)


def cleared():
    """The gateway as clear leaves it: running, never restarted, no fault state, /health 200."""
    state = container()
    assert (state['State']['Status'], state['RestartCount'], state['State']['OOMKilled']) == ('running', 0, False)
    assert not STATE_FILE.exists()
    assert get('/health', 2)[0] == 200
    return state


@pytest.fixture()
def rig_clear():
    rig('clear')
    rig('wait-clear', 180)
    yield cleared()
    rig('clear')


def test_startup_crash_loops_with_exit_code_1_until_clear_removes_its_state(rig_clear):
    before = rig_clear
    injected = time.time()
    rig('inject', 'startup-crash')
    assert json.loads(STATE_FILE.read_text())['faults'] == ['startup_crash']

    def looping():
        """(container, fatal log lines) once it restarted 3 times, logged 3 failed starts, and waits
        for its next restart (while a start runs, Docker shows no exit code)."""
        state = container()
        fatal = [line for line in logs(injected - 1) if FATAL in line.get('message', '')]
        starts = [line for line in fatal if line['message'].endswith('; refusing to start on a corrupt cache')]
        return (state, fatal) if state['RestartCount'] >= 3 and len(starts) >= 3 and state['State']['Restarting'] else None

    state, fatal = wait_for(looping, 60, '3 restarts, each logging its fatal line')
    # The same container (no recreate, same image and environment), exiting 1 at each start, not OOM-killed.
    assert state['Id'] == before['Id'] and state['Config']['Image'] == before['Config']['Image']
    assert state['Config']['Env'] == before['Config']['Env']
    assert (state['State']['Status'], state['State']['ExitCode'], state['State']['OOMKilled']) == ('restarting', 1, False)
    # First the running gateway's own line as it exits, then one line per start; nothing else logged.
    assert fatal[0]['message'].endswith('; exiting') and fatal[0]['level'] == 'ERROR'
    assert all(line['level'] == 'ERROR' and line['error'].startswith('CacheCorrupted: ') for line in fatal)
    assert not [line for line in logs(injected + 1) if 'listening on' in line.get('message', '')]
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', 8000), timeout=2).close()
    out = rig('wait-fault', 'startup-crash', 60)
    # (its exit code is 0 when the sample falls on a start, 1 between the starts)
    assert 'fault startup-crash observable after' in out and '/health DOWN' in out, out

    started = time.monotonic()
    out = rig('clear')
    assert 'restarting inference-gateway to reset its container state' in out, out
    assert time.monotonic() - started < 30
    after = cleared()
    assert after['Id'] == before['Id']
    rig('wait-clear', 120)


def test_hang_times_out_probes_while_admin_answers_and_clear_releases_it(rig_clear):
    before = rig_clear
    rig('inject', 'hang')
    assert json.loads(STATE_FILE.read_text())['faults'] == ['hang']
    for path in ('/health', '/ready', '/models'):
        status, took = get(path, 3)
        assert status == 'timeout' and took >= 3, (path, status, took)
    assert get('/metrics', 2)[0] == 200
    with urllib.request.urlopen(GATEWAY_URL + '/admin/faults', timeout=2) as resp:
        assert json.load(resp)['active'] == ['hang']
    out = rig('wait-fault', 'hang', 60)
    assert '/health timed out' in out, out

    held = []
    waiting = threading.Thread(target=lambda: held.append(get('/models', 60)))
    waiting.start()
    time.sleep(2)
    assert held == []
    out = rig('clear')
    waiting.join(30)
    # The waiting request was answered, not dropped; the gateway answers at once, never restarted.
    assert held and held[0][0] == 200 and held[0][1] >= 2, held
    status, took = get('/health', 2)
    assert status == 200 and took < 0.5
    after = cleared()
    assert after['Id'] == before['Id']
    rig('wait-clear', 120)

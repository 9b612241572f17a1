"""The demo gateway's startup_crash and hang faults (demo/app/faults.py), on the real service: the
gateway runs as its container runs it (demo/app/main.py, a child process on a free 127.0.0.1 port,
its fault state file in tmp_path) and is driven through its admin API."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MAIN = Path(__file__).resolve().parents[2] / 'demo' / 'app' / 'main.py'
FATAL = 'fatal: cannot load the warm cache from /var/lib/sre-demo/cache/warm-cache.bin: checksum mismatch'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Gateway:
    """One inference-gateway process; its output in tmp_path/gateway-<n>.log."""

    def __init__(self, tmp_path, port, **env):
        self.port = port
        self.log = tmp_path / ('gateway-%d.log' % len(list(tmp_path.glob('gateway-*.log'))))
        environ = {k: v for k, v in os.environ.items() if k not in ('FAULT', 'APP_VERSION')}
        environ.update(HOST='127.0.0.1', PORT=str(port), SERVICE='inference-gateway',
                       FAULT_STATE_FILE=str(tmp_path / 'inference-gateway.json'), **env)
        with open(self.log, 'w') as out:
            self.proc = subprocess.Popen([sys.executable, str(MAIN)], stdout=out, stderr=subprocess.STDOUT, env=environ)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def get(self, path, timeout=3.0):
        """(status, body) of a GET."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def admin(self, fault, enabled):
        request = urllib.request.Request(self.url('/admin/faults'), method='POST',
                                         data=json.dumps({'fault': fault, 'enabled': enabled}).encode())
        with urllib.request.urlopen(request, timeout=3) as resp:
            return resp.status, json.load(resp)

    def wait_listening(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, 'the gateway exited %s:\n%s' % (self.proc.returncode, self.output())
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError('the gateway did not listen within %s s:\n%s' % (timeout, self.output()))

    def threads(self):
        return len(os.listdir('/proc/%d/task' % self.proc.pid))

    def output(self):
        return self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture()
def start(tmp_path):
    """start(**env) -> a Gateway on a free port; every one started is stopped at the end."""
    started = []

    def run(**env):
        gateway = Gateway(tmp_path, free_port(), **env)
        started.append(gateway)
        return gateway

    yield run
    for gateway in started:
        gateway.stop()


def state(tmp_path):
    return json.loads((tmp_path / 'inference-gateway.json').read_text())


def fatal_lines(output):
    return [json.loads(line) for line in output.splitlines() if FATAL in line]


def refused(gateway):
    try:
        socket.create_connection(('127.0.0.1', gateway.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_startup_crash_saves_its_state_exits_1_and_again_at_every_start(start, tmp_path):
    gateway = start()
    gateway.wait_listening()
    assert gateway.get('/health')[0] == 200
    status, body = gateway.admin('startup_crash', True)
    # The admin API answers, with the state already saved; then the process exits 1.
    assert (status, body['changed'], body['active']) == (200, ['startup_crash'], ['startup_crash'])
    assert state(tmp_path)['faults'] == ['startup_crash']
    assert gateway.proc.wait(5) == 1
    lines = fatal_lines(gateway.output())
    assert len(lines) == 1 and lines[0]['level'] == 'ERROR' and lines[0]['message'].endswith('; exiting')
    assert lines[0]['error'].startswith('CacheCorrupted: checksum mismatch')
    assert 'fault' not in lines[0]['message'].lower()

    # Each later start reads the state file, logs the fatal line and exits 1 before it listens.
    for _attempt in range(2):
        again = start()
        started = time.monotonic()
        assert again.proc.wait(10) == 1
        assert time.monotonic() - started < 5
        lines = fatal_lines(again.output())
        assert len(lines) == 1 and lines[0]['message'].endswith('; refusing to start on a corrupt cache'), again.output()
        assert 'listening' not in again.output() and refused(again)
    assert state(tmp_path)['faults'] == ['startup_crash']

    # The state file removed (what demo/rig.sh clear does), the gateway starts and serves.
    (tmp_path / 'inference-gateway.json').unlink()
    healed = start()
    healed.wait_listening()
    assert healed.get('/health')[0] == 200 and not fatal_lines(healed.output())


def test_startup_crash_switched_off_at_once_does_not_exit(start, tmp_path):
    gateway = start()
    gateway.wait_listening()
    gateway.admin('startup_crash', True)
    status, body = gateway.admin('all', False)  # within the 0.2 s before the exit
    assert (status, body['changed'], body['active']) == (200, ['startup_crash'], [])
    time.sleep(1)
    assert gateway.proc.poll() is None and gateway.get('/health')[0] == 200
    assert not (tmp_path / 'inference-gateway.json').exists()


def timed_get(gateway, path, timeout, results):
    started = time.monotonic()
    try:
        status = gateway.get(path, timeout)[0]
    except (OSError, urllib.error.URLError) as exc:
        status = 'timeout' if 'timed out' in str(exc) else repr(exc)
    results.append((status, time.monotonic() - started))


def test_hang_blocks_every_request_but_metrics_and_admin_and_releases_them_when_off(start, tmp_path):
    gateway = start(HANG_MAX_S='120')
    gateway.wait_listening()
    idle_threads = gateway.threads()
    assert gateway.admin('hang', True)[1]['active'] == ['hang']
    assert state(tmp_path)['faults'] == ['hang']

    for path in ('/health', '/ready', '/models', '/'):
        results = []
        timed_get(gateway, path, 1.0, results)
        assert results[0][0] == 'timeout' and results[0][1] >= 1.0, (path, results)
    assert gateway.get('/metrics', 1.0)[0] == 200
    status, body = gateway.get('/admin/faults', 1.0)
    assert status == 200 and json.loads(body)['active'] == ['hang']

    # Many requests at once: 60 clients that give up after 0.5 s (probes) and 20 that wait.
    held, left = [], []
    threads = [threading.Thread(target=timed_get, args=(gateway, '/models', 60.0, held)) for _client in range(20)]
    threads += [threading.Thread(target=timed_get, args=(gateway, '/health', 0.5, left)) for _probe in range(60)]
    for thread in threads:
        thread.start()
    time.sleep(2.5)
    assert len(left) == 60 and {status for status, _took in left} == {'timeout'}
    assert held == []
    # The clients that left hold no thread of the gateway: about one per waiting client is left.
    assert gateway.threads() <= idle_threads + 20 + 3, gateway.threads()

    started = time.monotonic()
    status, body = gateway.admin('all', False)
    assert (status, body['changed'], body['active']) == (200, ['hang'], [])
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started < 2
    assert [status for status, _took in held] == [200] * 20
    assert min(took for _status, took in held) >= 2.5
    results = []
    timed_get(gateway, '/health', 1.0, results)
    assert results[0][0] == 200 and results[0][1] < 0.5
    assert not (tmp_path / 'inference-gateway.json').exists()
    time.sleep(0.5)
    assert gateway.threads() <= idle_threads + 1, gateway.threads()


def test_hang_is_on_again_after_a_restart_until_switched_off(start, tmp_path):
    (tmp_path / 'inference-gateway.json').write_text(json.dumps({'faults': ['hang']}))
    gateway = start()
    gateway.wait_listening()
    results = []
    timed_get(gateway, '/health', 1.0, results)
    assert results[0][0] == 'timeout'
    assert gateway.admin('hang', False)[1]['changed'] == ['hang']
    assert gateway.get('/health', 1.0)[0] == 200


def test_a_hang_ends_after_its_bound(start):
    gateway = start(HANG_MAX_S='1.5')
    gateway.wait_listening()
    gateway.admin('hang', True)
    results = []
    timed_get(gateway, '/health', 10.0, results)
    assert results[0][0] == 200 and 1.5 <= results[0][1] < 3, results

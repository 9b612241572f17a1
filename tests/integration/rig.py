"""Drives the real local rig (demo/rig.sh) and the playbooks against it, for the tests."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from conftest import ROOT

PROMETHEUS = 'http://127.0.0.1:9090'
STANDIN = 'http://127.0.0.1:18111'
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
           ANSIBLE_NOCOLOR='1')


def rig(*args, timeout=600):
    proc = subprocess.run([str(ROOT / 'demo' / 'rig.sh')] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, 'rig.sh %s failed:\n%s\n%s' % (args, proc.stdout, proc.stderr)
    return proc.stdout


CAPTURE = 'tests/integration/playbooks/capture_incident.yml'


def command(name, *extra, inventory=None):
    """ansible-playbook NAME -i INVENTORY (inventories/compose) EXTRA..., with incident records of
    its own (one incident per service is kept across runs) unless EXTRA sets runbook_state_dir."""
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    own = [] if any('runbook_state_dir=' in str(e) for e in extra) else \
        ['-e', 'runbook_state_dir=%s' % tempfile.mkdtemp(prefix='sre-runbooks-state-')]
    return [ansible_playbook, str(ROOT / name), '-i', str(inventory or ROOT / 'inventories' / 'compose')] + \
        own + list(extra)


def playbook(name, *extra, timeout=300, inventory=None):
    # No terminal: an approval prompt is declined at once, as under AWX or cron.
    proc = subprocess.run(command(name, *extra, inventory=inventory), capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def start_playbook(name, *extra, inventory=None):
    """The playbook in the background, in a session of its own (to kill it whole)."""
    return subprocess.Popen(command(name, *extra, inventory=inventory), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def run_with_faults(args, faults, env=None, timeout=600, again_after=None):
    """(return code, output) of the command ARGS (a playbook run). FAULTS: [(text, fault)]: when a
    line of the output first holds TEXT (a task's header: the task is about to run), the run is
    paused (SIGSTOP to its process group), fault(the run's process) runs, and it goes on. When the
    run has not ended AGAIN_AFTER seconds after its last fault, that fault runs once more (a second
    Ctrl-C), and AGAIN_AFTER seconds later its group is killed (SIGKILL, as AWX ends a job that its
    cancel did not end). A run still going after TIMEOUT seconds is killed, and the test fails."""
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                           env=dict(env or ENV, PYTHONUNBUFFERED='1'), stdin=subprocess.DEVNULL, start_new_session=True)
    pending, lines, done = list(faults), [], []

    def read():
        for line in run.stdout:
            lines.append(line)
            if pending and pending[0][0] in line:
                os.killpg(run.pid, signal.SIGSTOP)
                try:
                    done.append((time.monotonic(), pending.pop(0)[1]))
                    done[-1][1](run)
                finally:
                    os.killpg(run.pid, signal.SIGCONT)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline, nudges = time.monotonic() + timeout, 0 if again_after is None else 2
    try:
        while reader.is_alive() and time.monotonic() < deadline:
            reader.join(0.5)
            if nudges and not pending and done and time.monotonic() > done[-1][0] + again_after:
                nudges -= 1
                lines.append('[test] still running %s s after its last fault: %s\n'
                             % (again_after, 'that fault again' if nudges else 'killed'))
                done.append((time.monotonic(), done[-1][1]))
                with contextlib.suppress(ProcessLookupError):  # it may end meanwhile
                    if nudges:
                        done[-1][1](run)
                    else:
                        os.killpg(run.pid, signal.SIGKILL)
        try:
            run.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            raise AssertionError('the run did not end within %d s; where it stood:\n%s'
                                 % (timeout, ''.join(lines[-60:]))) from None
    finally:
        # With the run, what is left of its group: a worker that a signal orphaned, still stopped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    reader.join(30)
    output = ''.join(lines)
    assert time.monotonic() < deadline, 'the run had not ended after %s s:\n%s' % (timeout, output[-3000:])
    assert not pending, 'the run never reached %r:\n%s' % (pending[0][0], output[-3000:])
    return run.returncode, output


def run_runbook(tmp_path, service='inference-gateway', *extra, mode='advise', inventory=None):
    out = tmp_path / 'incident.json'
    rc, output = playbook(CAPTURE, '-e', 'service=%s' % service, '-e', 'incident_out=%s' % out,
                          '-e', 'mitigate_mode=%s' % mode, *extra, inventory=inventory)
    assert rc == 0, output
    return json.loads(out.read_text()), output


def query(promql):
    url = PROMETHEUS + '/api/v1/query?' + urllib.parse.urlencode({'query': promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)['data']['result']


def now():
    return time.time()


def standin(path, data=None, method=None):
    request = urllib.request.Request(STANDIN + path, data=data, method=method or ('POST' if data is not None else 'GET'))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def told(journal):
    """(api, what) of each request the run sent, in order."""
    seen = []
    for entry in journal:
        body = entry.get('body') or {}
        if entry['api'] == 'slack' and entry['path'].endswith('chat.postMessage'):
            seen.append(('slack', body['text'].split('\n', 1)[0].split(' [')[0], body.get('thread_ts')))
        elif entry['api'] == 'slack':
            seen.append(('slack', 'reaction ' + body.get('name', ''), None))
        elif entry['api'] == 'pagerduty-events':
            seen.append(('pagerduty', 'change' if 'change' in entry['path'] else body.get('event_action'),
                         body.get('dedup_key')))
        elif entry['api'] == 'statuspage' and entry['method'] in ('POST', 'PATCH', 'PUT'):
            seen.append(('statuspage', body['incident'].get('status'), None))
    return seen

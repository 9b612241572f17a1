"""Faults mid-run on the real rig: the runbook's own sources die while it runs. Prometheus is
stopped (demo/rig.sh stop prometheus) before triage and between the diagnosis and the action
(during the verification: test_rig_evidence.py); the Docker engine is stopped during the
investigation and restarted during a rollback; each channel answers 500, times out, or answers 429
with Retry-After (the API stand-ins' outage control, answering with each vendor's documented
error); the state dir is read-only and the document's disk is full (tmpfs mounts made here); the
run gets SIGINT or SIGTERM. Each case runs the whole playbook on one bad deploy and asserts its
end: no action on evidence that was lost, nothing claimed resolved that was not measured, the
incident document written saying what was missing, the lock released or expiring, and a clear
final line. The cases are listed in docs/reliability.md (FAULTS below; `python
tests/integration/test_bad_input.py` renders it)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime

import pytest

from access import prometheus_proxy, remote_inventory  # noqa: F401  # pylint: disable=unused-import
from conftest import ROOT, run_module
from rig import CAPTURE, ENV, command, query, rig, run_with_faults, standin
from test_rig_evidence import escalation_pages
from test_rig_mitigation import GATEWAY, LOCK, STATE, gateway, healthy, no_lock_left, take_over_expired_lock, wait_for

ERROR_RATIO = ('sum(rate(http_requests_total{service="inference-gateway",status=~"5.."}[30s]))'
               ' / sum(rate(http_requests_total{service="inference-gateway"}[30s])) > 0.05')
# Requests scraped in the last 5 s: after a Prometheus restart, the 30 s windows above still hold
# the samples from before it stopped, and a run right then would find no recent traffic.
SCRAPED_AGAIN = 'sum(rate(http_requests_total{service="inference-gateway"}[5s])) > 0'
# The header of the investigation's first task, which reads nothing: a fault there meets all its sources.
INVESTIGATION = 'TASK [sre.runbooks.investigate : Validating arguments'
# (case, the fault, what the run does): docs/reliability.md lists them.
FAULTS = [
    ('prometheus-before-triage', 'Prometheus stopped before triage',
     'not enough evidence, said with the reason; nothing done, nobody paged'),
    ('prometheus-before-action', 'Prometheus stopped between the diagnosis and the action',
     'the error rate is measured again before acting: not measured, nothing done, nobody paged'),
    ('prometheus-during-verification', 'Prometheus stopped (SIGSTOP) during the verification',
     'the rollback stands, not claimed resolved, the updates say not measured: escalated as a fix that could not '
     'be verified'),
    ('engine-during-investigation', 'The Docker engine stopped during the investigation',
     'logs and resources named missing; no disruptive action on partial evidence'),
    ('engine-during-rollback', 'The Docker engine restarted during a rollback',
     'the rollback fails before changing anything, escalated; the next run rolls back'),
    ('channels-500-timeout-429', 'Slack, PagerDuty and Statuspage each answering 500, timing out, 429 with Retry-After',
     'each failure in the document and the summary, the other channels told, the outcome unchanged; a 429 '
     'is tried again after Retry-After'),
    ('state-dir-read-only', 'The state dir read-only',
     'the run fails at once naming the directory; the document says so; nothing done'),
    ('document-disk-full', "The document's disk full",
     'the summary says the document was not written and why; the channels are told'),
    ('sigint', 'SIGINT (Ctrl-C) while acting', 'stops before the action; the lock expires; the document holds the diagnosis'),
    ('sigterm', 'SIGTERM while acting (a job cancelled)',
     'stops before the action; the lock expires; the document holds the diagnosis'),
]


def covers(*cases):
    """The FAULTS cases a test proves."""
    def mark(test):
        test.cases = cases
        return test
    return mark


# A case tested in another file, on the rig set-up it shares there.
TESTED_ELSEWHERE = {'prometheus-during-verification': 'test_rig_evidence.py::test_a_fix_that_cannot_be_verified_escalates'}


def test_every_fault_listed_is_tested():
    tested = [case for test in globals().values() for case in getattr(test, 'cases', ())]
    for case, where in TESTED_ELSEWHERE.items():
        path, name = where.split('::')
        assert 'def %s(' % name in (ROOT / 'tests' / 'integration' / path).read_text()
        tested.append(case)
    assert sorted(tested) == sorted(case for case, _what, _end in FAULTS)


class Run:
    """What a run left: return code, output, the incident it wrote, its document."""

    def __init__(self, tmp_path, returncode, output):
        self.returncode, self.output = returncode, output
        (tmp_path / 'output.txt').write_text(output)  # kept by pytest for a look after a failure
        out = tmp_path / 'incident.json'
        self.incident = json.loads(out.read_text()) if out.exists() else None
        documents = sorted((tmp_path / 'docs').glob('*/incident-*-high-error-rate.md'))
        self.document = documents[-1].read_text() if documents else None

    def summary(self):
        """The RESOLUTION summary the run ends with (a YAML block of the debug task)."""
        assert 'RESOLUTION of ' in self.output, self.output[-4000:]
        block = self.output[self.output.rindex('RESOLUTION of '):].split('\n\n')[0]
        return '\n'.join(line.strip() for line in block.splitlines())


def run_runbook_with_faults(tmp_path, faults, *extra, mode='auto', again_after=None):
    """The runbook on inference-gateway, its document under tmp_path/docs, with FAULTS
    (rig.run_with_faults). The cases share one bad deploy, up to about 12 minutes old by the last:
    the triage looks back 15 minutes (the demo's 5 would lose the spike's onset, and with it the
    deploy that caused it)."""
    args = command(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=%s' % mode,
                   '-e', 'triage_lookback=15m',
                   '-e', 'incident_out=%s' % (tmp_path / 'incident.json'),
                   '-e', 'communicate_report_dir=%s' % (tmp_path / 'docs'), *extra)
    return Run(tmp_path, *run_with_faults(args, faults, again_after=again_after))


def later(seconds, *actions):
    """The actions in turn, SECONDS from now, beside the run; join() the thread it returns."""
    def act():
        time.sleep(seconds)
        for action in actions:
            action()
    thread = threading.Thread(target=act)
    thread.start()
    return thread


def stop(part):
    return lambda _run: rig('stop', part)


def ledger():
    path = STATE / 'actions' / 'inference-gateway.json'
    return path.read_text() if path.exists() else None


@contextmanager
def mounted(path, options):
    """A tmpfs at path with options (size=..., ro), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)], check=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=True, timeout=30)


@pytest.fixture(scope='module')
def bad_deploy_for_faults():
    """One bad deploy for every fault; the rig whole again afterwards."""
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-baseline', 100)
    rig('deploy', 'v1.2.3')
    try:
        yield
    finally:
        rig('start', 'dockerd')
        rig('start', 'prometheus')
        standin('/outage', method='DELETE')
        rig('clear')


@pytest.fixture()
def firing(bad_deploy_for_faults):
    """The alert firing on the bad deploy, no lock or outage left, a fresh stand-in journal; the
    sources started again after the case."""
    rig('wait-alert', 240)
    # After a Prometheus restart, the alert state comes back at once, the rates after two scrapes.
    wait_for(lambda: query(SCRAPED_AGAIN) and query(ERROR_RATIO), 120, 'the 5xx ratio measured again')
    no_lock_left()
    standin('/journal/reset', b'')
    yield
    rig('start', 'dockerd')
    rig('start', 'prometheus')
    wait_for(lambda: gateway()[2:] == ('running',) and healthy(), 120, 'the gateway to run and answer')


def assert_untouched(before):
    assert gateway()[1] == before, 'the gateway was changed: %s' % (gateway(),)


@covers('prometheus-before-triage')
def test_prometheus_stopped_before_triage_is_not_enough_evidence(firing, tmp_path):
    rig('stop', 'prometheus')
    run = run_runbook_with_faults(tmp_path, [])
    assert run.returncode == 0, run.output
    assert run.incident['outcome'] == 'insufficient_evidence'
    assert run.incident['missing_evidence'][0].startswith('error rate: cannot reach Prometheus at http://127.0.0.1:9090')
    assert not any(a['acted'] for a in run.incident['mitigation']['attempts'])
    assert_untouched(GATEWAY + 'v1.2.3')
    assert escalation_pages(standin('/journal')) == []
    assert 'RESOLUTION of inference-gateway: INSUFFICIENT_EVIDENCE (not enough evidence (the error rate was ' \
        'not measured: cannot reach Prometheus' in run.summary()
    assert 'not enough evidence' in run.document and 'cannot reach Prometheus' in run.document
    assert not LOCK.exists()


@covers('prometheus-before-action')
def test_prometheus_stopped_between_diagnosis_and_action_stops_the_action(firing, tmp_path):
    run = run_runbook_with_faults(tmp_path, [('TASK [Keep handling the incident while acting and verifying]',
                                              stop('prometheus'))])
    assert run.returncode == 0, run.output
    incident = run.incident
    assert incident['triage']['error_rate']['verdict'] == 'critical'
    assert incident['diagnosis']['plan'][0]['action']['name'] == 'rollback'
    attempt = incident['mitigation']['attempts'][0]
    assert (attempt['decision'], attempt['acted']) == ('insufficient', False)
    assert attempt['reason'].startswith('not confirmed before acting: the error rate was not measured: '
                                        'cannot reach Prometheus')
    assert incident['outcome'] == 'insufficient_evidence'
    assert_untouched(GATEWAY + 'v1.2.3')
    assert not LOCK.exists()
    assert escalation_pages(standin('/journal')) == []
    assert 'not confirmed before acting' in run.summary() and 'not confirmed before acting' in run.document


@covers('channels-500-timeout-429')
@pytest.mark.parametrize('outages', [
    {'slack': (500, None, 0), 'pagerduty-events': (0, None, 4), 'statuspage': (429, 1, 0)},
    {'slack': (0, None, 4), 'pagerduty-events': (429, 1, 0), 'statuspage': (500, None, 0)},
    {'slack': (429, 1, 0), 'pagerduty-events': (500, None, 0), 'statuspage': (0, None, 4)},
], ids=['slack-500', 'slack-timeout', 'slack-429'])
def test_a_channel_that_fails_costs_its_message_not_the_run(firing, tmp_path, outages):
    """Each channel answers 500 to every call, or takes longer than communicate_timeout (2 s), or
    answers its first call 429 with Retry-After: 1. Advice mode: the diagnosis and outcome are the
    run's own."""
    for api, (status, retry_after, delay) in outages.items():
        standin('/outage', json.dumps({'api': api, 'status': status, 'retry_after': retry_after, 'delay': delay,
                                       'count': 1 if status == 429 else 50}).encode())
    try:
        run = run_runbook_with_faults(tmp_path, [], '-e', 'communicate_timeout=2', mode='advise')
    finally:
        standin('/outage', method='DELETE')
    assert run.returncode == 0, run.output
    incident = run.incident
    assert incident['outcome'] == 'advised' and incident['diagnosis']['plan'][0]['action']['name'] == 'rollback'
    # What the run sent (Alertmanager pages PagerDuty too: its triggers are not the run's).
    journal = [e for e in standin('/journal') if (e['body'] or {}).get('event_action') != 'trigger']
    for api, (status, _retry_after, _delay) in outages.items():
        channel = api.split('-')[0]
        sent = [entry for entry in incident['communication']['log'] if entry['channel'] == channel]
        told_line = [line for line in run.summary().splitlines() if line.startswith('Told %-10s:' % channel)][0]
        if status == 429:
            # Tried again once Retry-After had passed, and delivered.
            calls = [e for e in journal if e['api'] == api]
            assert calls[0]['status'] == 429 and calls[1]['status'] < 300, calls[:2]
            assert seconds(calls[1]) - seconds(calls[0]) >= 1.0, calls[:2]
            assert all(entry['ok'] for entry in sent) and 'FAILED' not in told_line, sent
        else:
            failed = [entry for entry in sent if not entry['ok']]
            assert failed and 'FAILED: ' in told_line, (sent, told_line)
            assert ('HTTP 500' if status == 500 else 'within 2') in failed[0]['detail'], failed[0]
    assert 'a fix is recommended (rollback' in run.document
    assert_untouched(GATEWAY + 'v1.2.3')


def seconds(entry):
    return datetime.fromisoformat(entry['time_iso'].replace('Z', '+00:00')).timestamp()


@covers('state-dir-read-only')
def test_a_read_only_state_dir_fails_the_run_at_once_and_says_where(firing, tmp_path):
    with mounted(tmp_path / 'state', 'size=1m,ro') as state:
        run = run_runbook_with_faults(tmp_path, [], '-e', 'runbook_state_dir=%s' % state, mode='advise')
    assert run.returncode != 0
    last = run.output[run.output.rindex('fatal: '):].split('\n\n')[0]
    assert str(state) in last and 'Read-only file system' in last, last
    assert 'the run failed' in run.document and str(state) in run.document
    assert_untouched(GATEWAY + 'v1.2.3')
    assert not LOCK.exists()


@covers('document-disk-full')
def test_a_full_disk_costs_the_document_not_the_run(firing, tmp_path):
    with mounted(tmp_path / 'docs', 'size=64k') as docs:
        with open(docs / 'filler', 'wb', buffering=0) as filler:
            with pytest.raises(OSError):
                while True:
                    filler.write(b'.' * 4096)
        run = run_runbook_with_faults(tmp_path, [], mode='advise')
        assert [p.name for p in docs.rglob('*') if not p.is_dir()] == ['filler'], 'a document was half written'
    assert run.returncode == 0, run.output
    assert run.incident['outcome'] == 'advised'
    document = [line for line in run.summary().splitlines() if line.startswith('Document')][0]
    assert document.startswith('Document   : NOT WRITTEN: cannot write the incident document: ') and \
        'No space left on device: free space on the filesystem of %s' % docs in document, document
    assert run.incident['report']['error'] in document and 'closed' in run.summary()
    assert_untouched(GATEWAY + 'v1.2.3')


@covers('sigint', 'sigterm')
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['sigint', 'sigterm'])
def test_a_run_stopped_by_a_signal_while_acting_leaves_its_lock_expiring(firing, tmp_path, signum):
    """Ctrl-C at a terminal reaches the whole process group, as AWX's cancel does with SIGTERM.
    ansible-core 2.19 sometimes hangs in its own clean-up after either (its main thread waits for
    a results thread that reads from a worker the signal ended): a user presses Ctrl-C again, and
    so does the test, 30 s after the first; 30 s later it kills the run, as AWX does a job that its
    cancel did not end. The lock and the document are the runbook's part either way."""
    run = run_runbook_with_faults(tmp_path, [('TASK [sre.runbooks.mitigate : Act on the compose service]',
                                              lambda process: os.killpg(process.pid, signum))],
                                  '-e', 'mitigate_lock_ttl=10s', '-e', 'mitigate_cooldown=0', again_after=30)
    lock = json.loads(LOCK.read_text())
    try:
        assert run.returncode != 0
        assert lock['expires_at'] <= time.time() + 10
        assert run.document and 'rollback' in run.document
        if signum == signal.SIGINT:
            # ansible-core 2.19 sometimes trips over a worker it has already closed while it cleans up
            # after Ctrl-C (TaskQueueManager._cleanup_processes: "process object is closed") and ends
            # on that traceback instead: its race, not the runbook's; the rest holds either way.
            # After a second Ctrl-C, or the kill, ansible-core ends without a word: the lock and
            # the document above are what the runbook answers for.
            ended = run.output.rstrip()
            assert '[test] still running' in ended or ended.endswith('[ERROR]: User interrupted execution') or (
                ended.endswith('process object is closed') and '_cleanup_processes' in ended), ended[-2000:]
    finally:
        wait_for(lambda: gateway()[2] == 'running' and healthy(), 90, 'the gateway to run and answer')
        take_over_expired_lock(lock)


@covers('engine-during-investigation')
def test_docker_engine_stopped_during_investigation_is_missing_evidence(firing, tmp_path):
    run = run_runbook_with_faults(tmp_path, [(INVESTIGATION, stop('dockerd'))])
    assert run.returncode == 0, run.output
    incident = run.incident
    missing = incident['diagnosis']['missing_evidence']
    assert any(m.startswith('logs') for m in missing) and any(m.startswith('resources') for m in missing), missing
    attempt = incident['mitigation']['attempts'][0]
    assert not attempt['acted'], attempt
    # Whichever cause comes first: nothing claimed resolved, and the document says what was missing.
    assert incident['outcome'] != 'resolved' and 'RESOLUTION of inference-gateway: RESOLVED' not in run.output
    missing_part = run.document[run.document.index('## Missing evidence'):run.document.index('## Post-mortem')]
    assert 'logs' in missing_part and 'cannot reach Docker Engine' in missing_part, missing_part
    # The engine took the dependencies down with the gateway, and their health checks fail. The
    # diagnosis most often ranks the bad deploy first:
    if attempt['decision'] == 'insufficient':
        # its rollback interrupts the service, and the evidence is partial: nothing done, nobody paged;
        assert attempt['reason'].startswith('not enough evidence to rollback to v1.2.2, which interrupts the service')
        assert incident['outcome'] == 'insufficient_evidence'
        assert escalation_pages(standin('/journal')) == []
    else:
        # else the dependencies: a circuit breaker interrupts nothing, is tried, and cannot run
        # without the engine. Never a disruptive action on partial evidence.
        assert attempt['decision'] == 'failed' and attempt['action']['disruptive'] is False, attempt
        assert 'docker' in attempt['reason'].lower(), attempt['reason']
    assert not LOCK.exists()
    rig('start', 'dockerd')
    wait_for(lambda: gateway()[2] == 'running' and healthy(), 120, 'the gateway to run and answer')
    assert_untouched(GATEWAY + 'v1.2.3')


@covers('engine-during-rollback')
def test_docker_engine_restarted_during_a_rollback_fails_it_whole_and_escalates(firing, tmp_path):
    restarts = []
    before = ledger()
    run = run_runbook_with_faults(
        tmp_path, [('TASK [sre.runbooks.mitigate : Take (or renew) the remediation lock',
                    lambda _run: (rig('stop', 'dockerd'), restarts.append(later(5, lambda: rig('start', 'dockerd')))))],
        '-e', 'mitigate_cooldown=0')
    restarts[0].join()
    assert run.returncode == 0, run.output
    incident = run.incident
    attempt = incident['mitigation']['attempts'][0]
    assert (attempt['decision'], attempt['acted']) == ('failed', False), attempt
    assert incident['outcome'] == 'escalated' and incident['outcome'] != 'resolved'
    assert 'docker' in attempt['reason'].lower(), attempt['reason']
    assert json.loads(ledger())[-1]['outcome'] == 'failed' and ledger() != before
    assert not LOCK.exists()
    assert len(escalation_pages(standin('/journal'))) == 1
    wait_for(lambda: gateway()[2] == 'running' and healthy(), 120, 'the gateway to run and answer')
    assert_untouched(GATEWAY + 'v1.2.3')


def test_two_controllers_over_ssh_race_for_an_expired_lock_and_one_wins(remote_inventory, tmp_path):
    """Each round: a lock left by a dead run expires, and two controllers take it at once through
    the docker host's sshd; the lock lives on the host."""
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    state = tmp_path / 'state'
    for round_ in range(6):
        dead = {'service': 'race', 'run_id': 'dead-%d' % round_, 'incident_id': 'i', 'ttl': '1s', 'cooldown': '0',
                'state_dir': str(state)}
        assert run_module('remediation_lock', dead)['allowed']
        time.sleep(1.1)
        takers = [subprocess.Popen([ansible, 'inference-gateway', '-i', str(remote_inventory), '-o', '-m',
                                    'sre.runbooks.remediation_lock', '-a',
                                    'service=race run_id=%s-%d incident_id=i cooldown=0 state_dir=%s' % (name, round_, state)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
                  for name in ('east', 'west')]
        results = []
        for taker in takers:
            output = taker.communicate(timeout=120)[0]
            assert '=> ' in output, output
            results.append(json.loads(output[output.index('=> ') + 3:]))
        winners = [r for r in results if r.get('allowed')]
        assert len(winners) == 1, results
        assert winners[0]['took_over']['run_id'] == dead['run_id']
        winner_id = winners[0]['lock']['run_id']
        loser = [r for r in results if not r.get('allowed')][0]
        assert loser['msg'].startswith('another remediation of race is under way: run %s' % winner_id), loser
        assert json.loads(state.joinpath('locks', 'race.lock').read_text())['run_id'] == winner_id
        assert run_module('remediation_lock', dict(dead, run_id=winner_id, state='released'))['changed']

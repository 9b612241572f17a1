"""Right on the user's systems: weak evidence, sources that fail, an alert already cleared, a
second alert for an open incident and a fix that cannot be verified, each through the whole
runbook on the real rig (Docker engine, docker-compose, Prometheus, the demo services), telling
the API stand-ins (demo/lib/api_standin.py), which answer as Slack's Web API, PagerDuty's Events
API v2 and Statuspage's REST API document. Asserts what each channel was told. Two causes at
once are `make scenarios`' two-causes: each action taken in turn, the thread told of each.
"""

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from rig import CAPTURE, rig, run_runbook, standin, start_playbook, told

PROMETHEUS_PIDFILE = '/run/sre-demo/prometheus.pid'


def journal():
    return standin('/journal')


def escalation_pages(entries):
    """The escalation target's pages: the stand-in keeps no routing key (a secret), but the
    escalation's dedup key is the incident's with -escalation."""
    return [e for e in entries if e['api'] == 'pagerduty-events'
            and str((e.get('body') or {}).get('dedup_key', '')).endswith('-escalation')
            and (e.get('body') or {}).get('event_action') == 'trigger']


def slack_texts(entries):
    return [e['body']['text'] for e in entries if e['api'] == 'slack' and e['path'].endswith('chat.postMessage')]


def statuspage_incidents(entries):
    return [e for e in entries if e['api'] == 'statuspage' and e['method'] in ('POST', 'PATCH', 'PUT')]


def inject(fault, baseline=True):
    """The fault, observable; baseline: after a clean baseline window (the diagnosis of a deploy
    reads the shape of the rise against it)."""
    rig('clear')
    rig('wait-clear', 180)
    if baseline:
        rig('wait-baseline', 100)
    rig('inject', fault)
    rig('wait-fault', fault, 240)
    standin('/journal/reset', b'')


@pytest.fixture(scope='module')
def endpoint_fault():
    """The endpoint fault (/predict ~70% 500s), firing; the runs of this module read it in
    advise mode, the last one acts on it."""
    inject('endpoint')
    yield
    rig('clear')


@pytest.fixture()
def fresh_journal():
    standin('/journal/reset', b'')


def test_a_status_label_that_matches_nothing_is_not_enough_evidence(endpoint_fault, fresh_journal, tmp_path):
    incident, output = run_runbook(tmp_path, 'inference-gateway', '-e', 'triage_status_label=code')
    assert incident['outcome'] == 'insufficient_evidence', output[-3000:]
    assert "'code'" in incident['triage']['error_rate']['msg'] and 'status' in incident['triage']['error_rate']['msg']
    assert not incident['evidence']['sufficient']
    assert not [a for a in incident['mitigation']['attempts'] if a['acted']]
    entries = journal()
    assert escalation_pages(entries) == [] and statuspage_incidents(entries) == []
    assert any('not enough evidence' in text.lower() for text in slack_texts(entries)), slack_texts(entries)
    assert not any('0.00%' in text and 'ok' in text for text in slack_texts(entries))
    assert 'TRIAGE' in output and '0.00% (ok)' not in output


@pytest.mark.parametrize('source, extra, missing', [
    ('prometheus', ['-e', 'runbook_prometheus_url=http://127.0.0.1:9'], None),
    ('docker', ['-e', 'triage_docker_host=unix:///run/sre-no-docker.sock',
                '-e', 'investigate_docker_host=unix:///run/sre-no-docker.sock'], 'recent changes: '),
])
def test_a_source_that_fails_costs_its_evidence_not_the_run(endpoint_fault, fresh_journal, tmp_path, source, extra, missing):
    incident, output = run_runbook(tmp_path, 'inference-gateway', *extra)
    assert 'HIGH ERROR RATE - TRIAGE' in output and 'DIAGNOSIS' in output, output[-3000:]
    assert incident['outcome'] != 'failed' and 'failure' not in incident
    if source == 'prometheus':
        assert incident['outcome'] == 'insufficient_evidence'
        assert incident['evidence']['gaps'][0].startswith('the error rate was not measured: ')
    else:
        assert any(m.startswith(missing) for m in incident['missing_evidence']), incident['missing_evidence']
        assert 'Missing' in output
    assert escalation_pages(journal()) == []


def test_a_second_alert_joins_the_open_incident(endpoint_fault, fresh_journal, tmp_path):
    state = '-e', 'runbook_state_dir=%s' % (tmp_path / 'state')
    reports = '-e', 'communicate_report_dir=%s' % (tmp_path / 'incidents')
    first = run_runbook(tmp_path, 'inference-gateway', *state, *reports, '-e', 'triage_incident_id=fp-first')[0]
    assert first['outcome'] == 'advised'
    thread = first['communication']['slack']['thread_ts']
    second, output = run_runbook(tmp_path, 'inference-gateway', *state, *reports, '-e', 'triage_incident_id=fp-second')
    assert second['joined']['alerts'] == ['fp-first', 'fp-second'], output[-3000:]
    assert (second['id'], second['report']['path']) == (first['id'], first['report']['path'])
    posts = [e['body'] for e in journal() if e['api'] == 'slack' and e['path'].endswith('chat.postMessage')]
    # One thread: only the first run opened one; everything the second said went into it.
    assert len([p for p in posts if not p.get('thread_ts')]) == 1
    assert {p.get('thread_ts') for p in posts[-2:]} == {thread}
    # Advice only: the status page says a fix is recommended, never that one is being applied.
    bodies = [e['body']['incident'].get('body', '') for e in statuspage_incidents(journal())]
    assert any('a fix is recommended' in b for b in bodies) and not any('applying' in b for b in bodies), bodies
    record = json.loads((tmp_path / 'state' / 'incidents' / 'inference-gateway.json').read_text())
    assert record['status'] == 'open' and record['id'] == first['id'] and record['active'] is None


def test_a_second_alert_while_a_run_acts_only_joins(endpoint_fault, fresh_journal, tmp_path):
    """Last of the module: the first run acts on the fault (the feature flag) and verifies."""
    state = '-e', 'runbook_state_dir=%s' % (tmp_path / 'state')
    out = tmp_path / 'first.json'
    # A fingerprint of its own: the ledger counts actions per incident across runs.
    first = start_playbook(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=auto', *state,
                           '-e', 'incident_out=%s' % out, '-e', 'triage_incident_id=fp-acting-%s' % uuid.uuid4().hex[:8])
    try:
        deadline = time.monotonic() + 60
        while not [s for s in told(journal()) if s[0] == 'slack' and s[2]]:
            assert time.monotonic() < deadline and first.poll() is None, 'the first run opened no thread'
            time.sleep(0.5)
        started = time.monotonic()
        second, output = run_runbook(tmp_path, 'inference-gateway', *state, '-e', 'triage_incident_id=fp-late')
        took = time.monotonic() - started
        assert second['outcome'] == 'joined', output[-3000:]
        assert second['joined']['handled_by'] not in (None, second['run_id'])
        assert 'mitigation' not in second and 'diagnosis' not in second
        assert took < 30, 'the joining run took %.0f s' % took
        stdout = first.communicate(timeout=400)[0]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, stdout[-3000:]
    incident = json.loads(out.read_text())
    assert incident['outcome'] == 'resolved'
    threads = {s[2] for s in told(journal()) if s[0] == 'slack' and s[2]}
    assert threads == {incident['communication']['slack']['thread_ts']}
    assert any('fp-late' in text for text in slack_texts(journal()))


def test_little_traffic_never_pages(fresh_journal, tmp_path):
    """A few requests a minute, most of them failing: too little traffic to judge."""
    inject('endpoint', baseline=False)
    loadgen = subprocess.run(['docker', 'ps', '-q', '--filter', 'label=com.docker.compose.service=loadgen'],
                             capture_output=True, text=True, check=True).stdout.split()
    try:
        subprocess.run(['docker', 'stop', '-t', '1'] + loadgen, capture_output=True, check=True)
        for request in range(3):  # one request every 20 s: at most 2 in the 30 s window
            subprocess.run(['curl', '-s', '-o', '/dev/null', '-m', '5', '-H', 'Content-Type: application/json',
                            '-d', '{"id": "user-1", "inputs": [0.1, 0.2, 0.3]}', 'http://127.0.0.1:8000/predict'],
                           check=False)
            time.sleep(20 if request < 2 else 1)
        standin('/journal/reset', b'')
        incident, output = run_runbook(tmp_path, 'inference-gateway', mode='auto')
        entries = journal()  # before the clear, which resets the stand-ins
    finally:
        rig('clear')
    assert incident['triage']['error_rate']['verdict'] in ('low_traffic', 'no_traffic'), output[-3000:]
    assert incident['priority'] == 'P4' and incident['outcome'] == 'insufficient_evidence'
    assert not [a for a in incident['mitigation']['attempts'] if a['acted']]
    assert [s[1] for s in told(entries) if s[0] == 'slack'][0].startswith('ℹ️ NOT ENOUGH EVIDENCE'), told(entries)
    assert escalation_pages(entries) == [] and statuspage_incidents(entries) == []
    assert not any('ESCALAT' in text for text in slack_texts(entries))


def test_an_alert_cleared_before_the_run_opens_no_incident(fresh_journal, tmp_path):
    rig('clear')
    rig('wait-clear', 180)
    standin('/journal/reset', b'')
    incident, output = run_runbook(tmp_path, 'inference-gateway', '-e', 'communicate_pagerduty_dedup_key=page-42',
                                   mode='auto')
    assert incident['outcome'] == 'recovered', output[-3000:]
    assert 'diagnosis' not in incident and 'report' not in incident
    # Alertmanager resolves its own page as the alert clears: only what the run sent counts.
    sent = [s for s in told(journal()) if s[0] != 'pagerduty' or s[2] == 'page-42']
    assert sent == [('pagerduty', 'resolve', 'page-42')], sent
    assert 'recovered before the runbook ran' in output


def test_a_fix_that_cannot_be_verified_escalates(fresh_journal, tmp_path):
    """The bad deploy rolled back, then Prometheus stops answering (SIGSTOP) while verifying. Its
    queries wait 2 s, once (the connection options of runbook_prometheus_auth), not 3 x 10 s."""
    inject('bad-deploy')
    with open(PROMETHEUS_PIDFILE) as handle:
        prometheus = int(handle.read().split()[0])
    out = tmp_path / 'incident.json'
    run = start_playbook(CAPTURE, '-e', 'service=inference-gateway', '-e', 'mitigate_mode=auto',
                         '-e', 'incident_out=%s' % out, '-e', 'verify_deadline=60s',
                         '-e', 'communicate_update_every=10s', '-e', 'mitigate_max_attempts=1',
                         '-e', json.dumps({'runbook_prometheus_auth': {'timeout': 2, 'retries': 0}}))
    stopped = False
    try:
        deadline = time.monotonic() + 120
        while not [s for s in told(journal()) if s[:2] == ('pagerduty', 'change')]:
            assert time.monotonic() < deadline and run.poll() is None, 'no action within 120 s'
            time.sleep(0.5)
        os.kill(prometheus, signal.SIGSTOP)
        stopped = True
        stdout = run.communicate(timeout=400)[0]
        entries = journal()  # before the clear, which resets the stand-ins
    finally:
        if stopped:
            os.kill(prometheus, signal.SIGCONT)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        rig('clear')
    assert run.returncode == 0, stdout[-3000:]
    incident = json.loads(out.read_text())
    assert incident['outcome'] == 'escalated', stdout[-3000:]
    assert incident['escalation']['reason'].startswith('acted, could not verify')
    assert incident['verify']['verdict'] == 'not_measured'
    assert len(escalation_pages(entries)) == 1
    # The updates while verifying (after the one that told of the action) were not measured, and
    # say so, never the triage's figure.
    texts = slack_texts(entries)
    after_action = texts[[i for i, t in enumerate(texts) if 'applied' in t][0] + 1:]
    updates = [t for t in after_action if 'UPDATE' in t.upper()]
    assert updates and all('not measured' in t for t in updates), texts
    triage_figure = '%.2f%%' % incident['triage']['error_rate']['error_percent']
    assert not any(triage_figure in t for t in updates), updates
    statuses = [e['body']['incident'].get('status') for e in statuspage_incidents(entries)]
    assert 'resolved' not in statuses

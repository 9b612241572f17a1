"""The event-driven path: Alertmanager -> the collection's event source -> the rulebook -> the
runbook playbook, and Alertmanager's own page. Real: the rig (Docker engine, the demo services,
Prometheus, Alertmanager 0.25 from Debian, the API stand-ins, all started by demo/rig.sh up),
ansible-rulebook with Java 17, the sre.runbooks.alertmanager source, the rulebook
extensions/eda/rulebooks/high_error_rate.yml and playbooks/high_error_rate.yml. The API stand-in
answers as PagerDuty's Events API v2 documents (202 {status, message, dedup_key}); PagerDuty
itself cannot be reached from here. The rig is shared: these tests only add alerts of their own
(a `rig` label of their own keeps them in groups of their own) and resolve them."""

import asyncio
import datetime
import hashlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT
from rig import ENV, rig

ALERTMANAGER = 'http://127.0.0.1:9093'
STANDIN = 'http://127.0.0.1:18111'
WEBHOOK_PORT = 5001  # demo/alertmanager/alertmanager.yml: the rulebook's source
SOURCE = ROOT / 'extensions' / 'eda' / 'plugins' / 'event_source' / 'alertmanager.py'
RULEBOOK = 'extensions/eda/rulebooks/high_error_rate.yml'


def load_source():
    spec = importlib.util.spec_from_file_location('sre_runbooks_alertmanager_source', SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def utc(seconds_from_now=0.0):
    stamp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return stamp.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def post_json(url, body, timeout=10):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method='POST',
                                     headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_for(what, check, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, 'timed out after %ds waiting for %s' % (timeout, what)
        time.sleep(interval)


def webhook_body(status, fingerprint, rig_label, service='inference-gateway', alertname='HighErrorRate'):
    """An Alertmanager webhook notification (version 4) as the high-error-rate receiver sends it."""
    labels = {'alertname': alertname, 'rig': rig_label, 'service': service, 'severity': 'critical'}
    group = {'alertname': alertname, 'rig': rig_label, 'service': service}
    return {
        'version': '4', 'receiver': 'high-error-rate', 'status': status, 'truncatedAlerts': 0,
        'groupKey': '{}/{alertname=~"HighErrorRate|HighResponseTime"}:{alertname="%s", rig="%s", service="%s"}'
                    % (alertname, rig_label, service),
        'groupLabels': group, 'commonLabels': labels, 'externalURL': ALERTMANAGER,
        'commonAnnotations': {'summary': 'High error rate on %s: 12%% 5xx' % service},
        'alerts': [{'status': status, 'labels': labels, 'fingerprint': fingerprint,
                    'annotations': {'summary': 'High error rate on %s: 12%% 5xx' % service},
                    'startsAt': utc(-60), 'endsAt': utc() if status == 'resolved' else '0001-01-01T00:00:00Z',
                    'generatorURL': 'http://127.0.0.1:9090/graph'}],
    }


@pytest.fixture(scope='module')
def stack():
    rig('up')


def test_source_makes_one_event_per_alert_with_the_pagerduty_dedup_key():
    """The source's own code (no server): one event per alert, the notification beside it, the
    dedup key of Alertmanager's PagerDuty integration (sha256 hex of groupKey), no Authorization."""
    source = load_source()
    body = webhook_body('firing', 'f00d', 'unit')
    body['alerts'].append(dict(body['alerts'][0], fingerprint='beef', status='resolved'))
    events = source.events_of(body, 'alerts', {'Authorization': 'Bearer x', 'User-Agent': 'Alertmanager/0.25.0'})
    assert [(e['alert']['fingerprint'], e['alert']['status']) for e in events] == [
        ('f00d', 'firing'), ('beef', 'resolved')]
    assert events[0]['pagerduty_dedup_key'] == hashlib.sha256(body['groupKey'].encode()).hexdigest()
    assert events[0]['payload']['groupKey'] == body['groupKey'] and 'alerts' not in events[0]['payload']
    assert events[0]['meta'] == {'endpoint': 'alerts', 'headers': {'User-Agent': 'Alertmanager/0.25.0'}}
    hosted = source.events_of(body, 'alerts', {}, host_label='service')
    assert hosted[0]['meta']['hosts'] == ['inference-gateway']
    # The group: the services of its firing alerts, as -e service= takes them.
    assert events[0]['group'] == events[1]['group'] == {'services': 'inference-gateway', 'size': 1}
    storm = dict(body, alerts=[dict(body['alerts'][0], labels=dict(body['alerts'][0]['labels'], service=name))
                               for name in ('orders', 'inference-gateway', 'orders')])
    assert source.events_of(storm, 'alerts', {})[2]['group'] == {'services': 'inference-gateway,orders', 'size': 2}
    assert source.events_of(storm, 'alerts', {}, service_label='app')[0]['group'] == {'services': '', 'size': 0}
    for bad in ({'alerts': 'x'}, [], {'alerts': [1]}):
        with pytest.raises(ValueError):
            source.events_of(bad, 'alerts', {})


def test_the_source_asks_for_its_token_and_logs_every_refusal(caplog):
    """The source served for real on loopback, with a token: a request without it or with another
    is a 401, a body that is no notification a 400, each logged with its reason; with the token,
    the alert is queued. Off loopback, the source will not listen without a token."""
    source = load_source()
    port, queue, loop = free_port(), [], asyncio.new_event_loop()

    class Queue:
        async def put(self, event):
            queue.append(event)

    async def serve():
        try:
            await source.main(Queue(), {'host': '127.0.0.1', 'port': port, 'token': 's3cret'})
        except asyncio.CancelledError:
            pass

    served = loop.create_task(serve())
    thread = threading.Thread(target=loop.run_until_complete, args=(served,), daemon=True)
    thread.start()
    url = 'http://127.0.0.1:%d/alerts' % port

    def listening():
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for('the source to listen', listening, 20)

    def post(body, token=None):
        headers = {'Content-Type': 'application/json'}
        if token:
            headers['Authorization'] = 'Bearer ' + token
        request = urllib.request.Request(url, data=body, method='POST', headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    notification = json.dumps(webhook_body('firing', 'f00d', 'token')).encode()
    with caplog.at_level(logging.WARNING):
        assert post(notification) == 401
        assert post(notification, 'guess') == 401
        assert post(b'{half', 's3cret') == 400
        assert post(b'{"version": "4", "alerts": "none"}', 's3cret') == 400
        assert post(notification, 's3cret') == 200
    loop.call_soon_threadsafe(served.cancel)
    thread.join(10)
    reasons = [r.getMessage() for r in caplog.records if 'refused a webhook' in r.getMessage()]
    assert reasons == ['refused a webhook from 127.0.0.1 to /alerts: %s' % reason for reason in (
        'no Authorization header (a bearer token)', 'a valid bearer token is required', 'the body is not JSON',
        'not an Alertmanager notification: a JSON object with a list `alerts`')], reasons
    assert [e['alert']['fingerprint'] for e in queue] == ['f00d']
    with pytest.raises(ValueError, match='listening on 0.0.0.0 without a token'):
        asyncio.run(source.main(Queue(), {'host': '0.0.0.0', 'port': port}))


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Rulebook:
    """ansible-rulebook running the collection's rulebook, from the collection root, in a session
    of its own (stopped whole by its process group id), its output in a file."""

    def __init__(self, tmp_path, port):
        self.output = tmp_path / 'ansible-rulebook.out'
        variables = tmp_path / 'vars.yml'
        variables.write_text(json.dumps({'mitigate_mode': 'advise', 'alertmanager_webhook_port': port,
                                         'incident_report_dir': str(tmp_path / 'incidents')}))
        bindir = os.path.dirname(sys.executable)
        env = dict(ENV, PATH=bindir + os.pathsep + ENV.get('PATH', ''))
        with open(self.output, 'wb') as out:
            self.proc = subprocess.Popen(
                [os.path.join(bindir, 'ansible-rulebook'), '--rulebook', RULEBOOK,
                 '-i', 'inventories/compose', '-e', str(variables), '--print-events'],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.url = 'http://127.0.0.1:%d/alerts' % port

        def listening():
            assert self.proc.poll() is None, 'ansible-rulebook exited:\n' + self.text()
            with socket.socket() as sock:
                return sock.connect_ex(('127.0.0.1', port)) == 0
        wait_for('ansible-rulebook to listen on 127.0.0.1:%d' % port, listening, 120)

    def text(self):
        return self.output.read_text(errors='replace')

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def rulebook(stack, tmp_path):
    running = Rulebook(tmp_path, free_port())
    yield running
    running.stop()


def test_a_firing_alert_runs_the_runbook_and_a_resolved_one_does_not(rulebook):
    """A real ansible-rulebook with the real rulebook: a resolved HighErrorRate is only noted; a
    firing one runs playbooks/high_error_rate.yml for the alert's service in advise mode (the -e
    vars file), with the event's PagerDuty dedup key; a body that is no notification is a 400."""
    rig_label = 'test-eda-%s' % uuid.uuid4().hex[:8]
    resolved = webhook_body('resolved', 'a1b2c3d4e5f60718', rig_label)
    assert post_json(rulebook.url, resolved) == (200, '{"accepted": 1}')
    wait_for('the resolved alert to be noted', lambda: 'resolved for inference-gateway: nothing to run'
             in rulebook.text(), 60)
    time.sleep(3)
    assert 'PLAY RECAP' not in rulebook.text() and 'PLAY [' not in rulebook.text()
    assert post_json(rulebook.url, {'version': '4', 'alerts': 'none'})[0] == 400

    firing = webhook_body('firing', 'a1b2c3d4e5f60718', rig_label)
    assert post_json(rulebook.url, firing) == (200, '{"accepted": 1}')
    output = wait_for('the runbook play recap', lambda: 'PLAY RECAP' in rulebook.text()
                      and rulebook.text(), 300, interval=1)
    recap = output.split('PLAY RECAP', 1)[1]
    host_line = [line for line in recap.splitlines() if line.startswith('inference-gateway')]
    assert host_line and 'failed=0' in host_line[0] and 'unreachable=0' in host_line[0], recap
    # On a healthy rig the alert has cleared by the time the runbook looks (no incident opens);
    # on a failing one, the runbook advises.
    assert 'TRIAGE of inference-gateway' in output
    assert 'recovered before the runbook ran' in output or 'MITIGATION of inference-gateway (advise mode)' in output
    dedup_key = hashlib.sha256(firing['groupKey'].encode()).hexdigest()
    assert "'pagerduty_dedup_key': '%s'" % dedup_key in output
    assert output.count('PLAY RECAP') == 1


def test_a_group_of_several_services_is_one_run_over_all_of_them(rulebook):
    """An Alertmanager group of two services (a route that groups by alertname alone) is one run of
    the runbook over both, each of its alerts an event of the source: the storm's run (docs/storm.md)."""
    body = webhook_body('firing', 'c0ffee01', 'test-eda-%s' % uuid.uuid4().hex[:8])
    body['alerts'].append(dict(body['alerts'][0], fingerprint='c0ffee02',
                               labels=dict(body['alerts'][0]['labels'], service='orders')))
    assert post_json(rulebook.url, body) == (200, '{"accepted": 2}')
    output = wait_for('the runbook play recap', lambda: 'PLAY RECAP' in rulebook.text() and rulebook.text(), 300,
                      interval=1)
    time.sleep(3)  # a second run, were there one, would have started by now
    output = rulebook.text()
    assert output.count('PLAY RECAP') == 1 and "'services': 'inference-gateway,orders'" in output
    recap = output.split('PLAY RECAP', 1)[1]
    for host in ('inference-gateway', 'orders'):
        line = [line for line in recap.splitlines() if line.startswith(host)]
        assert line and 'failed=0' in line[0], recap
    assert 'Look at the services of this run together' in output


def test_a_high_response_time_alert_runs_the_runbook_on_the_response_time(rulebook):
    """A firing HighResponseTime runs the same playbook with the symptom `latency`: the High
    Response Time runbook, whose triage measures the response time."""
    body = webhook_body('firing', 'beefcafe', 'test-eda-%s' % uuid.uuid4().hex[:8], alertname='HighResponseTime')
    assert post_json(rulebook.url, body) == (200, '{"accepted": 1}')
    output = wait_for('the runbook play recap', lambda: 'PLAY RECAP' in rulebook.text() and rulebook.text(), 300,
                      interval=1)
    recap = output.split('PLAY RECAP', 1)[1]
    line = [line for line in recap.splitlines() if line.startswith('inference-gateway')]
    assert line and 'failed=0' in line[0], recap
    assert 'HIGH RESPONSE TIME - TRIAGE of inference-gateway' in output
    assert 'Measure the response time against the baseline' in output and 'HIGH ERROR RATE' not in output


class Receiver:
    """The webhook end of the high-error-rate receiver (127.0.0.1:5001, where the rulebook's
    source would listen): keeps each notification."""

    def __init__(self):
        self.bodies = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()

        try:
            self.httpd = ThreadingHTTPServer(('127.0.0.1', WEBHOOK_PORT), Handler)
        except OSError as exc:
            pytest.fail('cannot listen on 127.0.0.1:%d (%s): is `make eda` running? stop it for this '
                        'test' % (WEBHOOK_PORT, exc))
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_alertmanager_pages_with_the_dedup_key_the_rulebook_computes(stack):
    """The real Alertmanager, given a real alert (POST /api/v2/alerts, alertname=HighErrorRate,
    service=inference-gateway), notifies the webhook and opens the page at the API stand-in; the
    page's dedup_key is sha256 hex of the webhook's groupKey, as the source computes it. Resolving
    the alert resolves the page with the same key."""
    rig_label = 'test-am-%s' % uuid.uuid4().hex[:8]
    alert = {'labels': {'alertname': 'HighErrorRate', 'service': 'inference-gateway',
                        'severity': 'critical', 'rig': rig_label},
             'annotations': {'summary': 'High error rate on inference-gateway (test %s)' % rig_label},
             'generatorURL': 'http://127.0.0.1:9090/graph', 'startsAt': utc(), 'endsAt': utc(600)}
    receiver = Receiver()
    try:
        status, text = post_json(ALERTMANAGER + '/api/v2/alerts', [alert])
        assert status == 200, text

        def notified(wanted):
            return [b for b in receiver.bodies if rig_label in b.get('groupKey', '')
                    and b['status'] == wanted]
        [body] = wait_for('the firing notification at the webhook', lambda: notified('firing'), 60)[:1]
        assert body['version'] == '4' and body['receiver'] == 'high-error-rate'
        assert [a['labels']['service'] for a in body['alerts']] == ['inference-gateway']
        dedup_key = load_source().events_of(body, 'alerts', {})[0]['pagerduty_dedup_key']
        assert dedup_key == hashlib.sha256(body['groupKey'].encode()).hexdigest()

        def paged(action):
            return [e for e in get_json(STANDIN + '/journal?api=pagerduty-events')
                    if (e['body'] or {}).get('dedup_key') == dedup_key
                    and e['body'].get('event_action') == action]
        [trigger] = wait_for('the page at the API stand-in', lambda: paged('trigger'), 60)[:1]
        assert trigger['status'] == 202 and trigger['path'] == '/pagerduty/events/v2/enqueue'
        assert 'routing_key' not in trigger['body']  # Alertmanager sent it; the journal drops it
        assert trigger['body']['payload']['severity'] == 'critical'
        assert trigger['body']['payload']['component'] == 'inference-gateway'
        incidents = [i for i in get_json(STANDIN + '/state')['pagerduty_incidents']
                     if i['incident_key'] == dedup_key]
        assert [i['status'] for i in incidents] == ['triggered']

        status, text = post_json(ALERTMANAGER + '/api/v2/alerts', [dict(alert, endsAt=utc())])
        assert status == 200, text
        wait_for('the resolved notification at the webhook', lambda: notified('resolved'), 60)
        wait_for('the page resolved at the API stand-in', lambda: paged('resolve'), 60)
        incidents = [i for i in get_json(STANDIN + '/state')['pagerduty_incidents']
                     if i['incident_key'] == dedup_key]
        assert [i['status'] for i in incidents] == ['resolved']
    finally:
        post_json(ALERTMANAGER + '/api/v2/alerts', [dict(alert, endsAt=utc())])
        receiver.close()

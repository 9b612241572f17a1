"""The rig's API stand-ins (demo/lib/api_standin.py) driven by the real modules slack_notify,
pagerduty_event and statuspage_incident, run as Ansible runs them. Real: the modules, their HTTP
layer, the stand-in server (its own instance on a free port, so the rig's journal is left alone).
The stand-in answers as the vendors document their APIs (Slack Web API: HTTP 200 {ok, channel, ts,
message} or {ok: false, error}; PagerDuty Events API v2: 202 {status, message, dedup_key}, 400
{status: invalid event, message, errors}; PagerDuty REST API v2: {incident}, {error: {message,
code}}, Token auth and the From header; Statuspage REST v1: OAuth key, {incident} bodies,
{message} errors): the real services cannot be reached from here."""

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, run_module

SLACK_TOKEN = 'xoxb-standin-s3cr3t-slack-token'
ROUTING_KEY = 'standin-s3cr3t-routing-key'
PD_TOKEN = 'standin-s3cr3t-pd-rest-token'
SP_KEY = 'standin-s3cr3t-statuspage-key'
SECRETS = (SLACK_TOKEN, ROUTING_KEY, PD_TOKEN, SP_KEY)


class StandIn:
    def __init__(self, tmp_path):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / 'demo' / 'lib' / 'api_standin.py'), '--port', '0',
             '--log', str(tmp_path / 'api-standin.log')],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r'listening on (http://127\.0\.0\.1:\d+)', line)
        assert match, 'the stand-in did not start: %r' % line
        self.url = match.group(1)

    def call(self, method, path, body=None, headers=None):
        """(status, decoded JSON) of one request."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def journal(self, api=None):
        entries = self.call('GET', '/journal')[1]
        return [e for e in entries if api is None or e['api'] == api]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def standin(tmp_path):
    server = StandIn(tmp_path)
    yield server
    server.close()


def ok(result):
    assert result.get('failed') is not True, result
    return result


def test_slack_thread_and_already_reacted(standin):
    """slack_notify: the first message opens a thread (its ts), replies carry thread_ts and get ts
    of their own, always increasing; the eyes reaction twice is already_reacted (success,
    unchanged); a call without a bearer token is {ok: false, error: not_authed} with HTTP 200."""
    api = standin.url + '/slack/api'
    incident = {'service': 'inference-gateway', 'severity': 'critical', 'priority': 'P1',
                'started_at': '2026-11-24T02:06:26Z', 'outcome': 'open'}
    first = ok(run_module('slack_notify', {'token': SLACK_TOKEN, 'channel': '#incidents',
                                           'template': 'incident', 'incident': incident,
                                           'reaction': 'eyes', 'api_url': api}))
    assert re.match(r'^\d{10}\.\d{6}$', first['ts']) and first['thread_ts'] == first['ts']
    assert first['channel'].startswith('C') and first['changed'] is True
    reply = ok(run_module('slack_notify', {'token': SLACK_TOKEN, 'channel': first['channel'],
                                           'template': 'update', 'incident': incident,
                                           'thread_ts': first['thread_ts'], 'api_url': api}))
    assert reply['thread_ts'] == first['ts'] and float(reply['ts']) > float(first['ts'])
    again = ok(run_module('slack_notify', {'token': SLACK_TOKEN, 'channel': first['channel'],
                                           'reaction': 'eyes', 'timestamp': first['ts'], 'api_url': api}))
    assert (again['changed'], again['sent']) == (False, True)

    posts = [e for e in standin.journal('slack') if e['path'].endswith('chat.postMessage')]
    assert [p['body'].get('thread_ts') for p in posts] == [None, first['ts']]
    assert posts[0]['body']['text'].startswith('🔥 INCIDENT: High Error Rate')
    reactions = [e for e in standin.journal('slack') if e['path'].endswith('reactions.add')]
    assert [r['body']['name'] for r in reactions] == ['eyes', 'eyes']
    assert standin.call('POST', '/slack/api/chat.postMessage', {'channel': 'C1', 'text': 'x'}) == (
        200, {'ok': False, 'error': 'not_authed'})
    status, answer = standin.call('POST', '/slack/api/reactions.add',
                                  {'channel': first['channel'], 'timestamp': '1.000001', 'name': 'eyes'},
                                  {'Authorization': 'Bearer ' + SLACK_TOKEN})
    assert (status, answer) == (200, {'ok': False, 'error': 'message_not_found'})


def incidents(standin, **query):
    path = '/pagerduty/api/incidents?' + '&'.join('%s=%s' % kv for kv in query.items())
    status, answer = standin.call('GET', path, headers={'Authorization': 'Token token=' + PD_TOKEN})
    assert status == 200, answer
    return answer['incidents']


def test_page_by_dedup_key_and_by_rest_id(standin):
    """pagerduty_event: trigger, acknowledge and resolve by dedup_key (Events API v2, 202), the
    incident each trigger opens (REST: listed by status and incident_key); then a second page
    acknowledged, noted and resolved by its REST id with Token auth and From; a bad event is a 400
    with errors; REST without From or without a token is refused."""
    events = standin.url + '/pagerduty/events'
    rest = standin.url + '/pagerduty/api'
    trigger = {'routing_key': ROUTING_KEY, 'event_action': 'trigger', 'dedup_key': 'standin-key-1',
               'summary': 'High error rate on inference-gateway', 'source': 'inference-gateway',
               'severity': 'critical', 'events_url': events}
    r = ok(run_module('pagerduty_event', trigger))
    assert (r['status'], r['message'], r['dedup_key']) == ('success', 'Event processed', 'standin-key-1')
    [opened] = incidents(standin, **{'statuses[]': 'triggered', 'incident_key': 'standin-key-1'})
    assert opened['title'] == 'High error rate on inference-gateway'
    ok(run_module('pagerduty_event', dict(trigger)))  # the same alert again: no second incident
    for action, status in (('acknowledge', 'acknowledged'), ('resolve', 'resolved')):
        ok(run_module('pagerduty_event', {'routing_key': ROUTING_KEY, 'event_action': action,
                                          'dedup_key': 'standin-key-1', 'events_url': events}))
        assert [i['status'] for i in incidents(standin, incident_key='standin-key-1')] == [status]

    ok(run_module('pagerduty_event', dict(trigger, dedup_key='standin-key-2')))
    [second] = incidents(standin, **{'statuses[]': 'triggered'})
    by_id = {'api_token': PD_TOKEN, 'from_email': 'oncall@example.com', 'incident_id': second['id'],
             'api_url': rest}
    r = ok(run_module('pagerduty_event', dict(by_id, incident_status='acknowledged',
                                              note='Rolling back v1.2.3')))
    assert (r['changed'], r['status'], r['dedup_key']) == (True, 'acknowledged', 'standin-key-2')
    assert r['note']['content'] == 'Rolling back v1.2.3'
    r = ok(run_module('pagerduty_event', dict(by_id, incident_status='acknowledged')))
    assert (r['changed'], r['message']) == (False, 'incident %s: already acknowledged' % second['id'])
    r = ok(run_module('pagerduty_event', dict(by_id, incident_status='resolved')))
    assert r['status'] == 'resolved'
    # The REST change reached the alert: resolving it by its dedup key changes nothing more.
    assert incidents(standin, **{'statuses[]': 'resolved'})[-1]['incident_key'] == 'standin-key-2'

    writes = [(e['method'], e['path'].split('/pagerduty/api')[1], e['status'])
              for e in standin.journal('pagerduty-rest') if e['method'] != 'GET']
    assert writes == [('PUT', '/incidents/%s' % second['id'], 200),
                      ('POST', '/incidents/%s/notes' % second['id'], 201),
                      ('PUT', '/incidents/%s' % second['id'], 200)]
    status, answer = standin.call('PUT', '/pagerduty/api/incidents/' + second['id'],
                                  {'incident': {'type': 'incident_reference', 'status': 'resolved'}},
                                  {'Authorization': 'Token token=' + PD_TOKEN})
    assert status == 400 and 'From' in answer['error']['errors'][0]
    status, answer = standin.call('GET', '/pagerduty/api/incidents/' + second['id'])
    assert (status, answer['error']['code']) == (401, 2006)
    status, answer = standin.call('POST', '/pagerduty/events/v2/enqueue',
                                  {'routing_key': ROUTING_KEY, 'event_action': 'trigger',
                                   'payload': {'summary': 'x', 'source': 'y', 'severity': 'bad'}})
    assert status == 400 and answer['status'] == 'invalid event'
    assert any('severity' in e for e in answer['errors'])
    r = run_module('pagerduty_event', dict(trigger, dedup_key='k' * 300, retries=0))
    assert r['failed'] is True and 'HTTP 400' in r['msg'] and 'Not retried' in r['msg']


def test_statuspage_through_monitoring_to_resolved(standin):
    """statuspage_incident: created investigating with a component partial_outage, moved to
    monitoring, then resolved with the component operational; the page keeps each component's
    status; a second identical run changes nothing."""
    page = {'api_key': SP_KEY, 'page_id': 'pgdemo', 'api_url': standin.url + '/statuspage/v1'}
    args = dict(page, name='Elevated error rates on the ML inference API')
    created = ok(run_module('statuspage_incident', dict(
        args, status='investigating', body='We are investigating.',
        components={'cmpgateway': 'partial_outage'})))
    assert created['created'] is True and created['incident']['status'] == 'investigating'
    incident_id = created['incident']['id']
    headers = {'Authorization': 'OAuth ' + SP_KEY}
    assert standin.call('GET', '/statuspage/v1/pages/pgdemo/components/cmpgateway',
                        headers=headers)[1]['status'] == 'partial_outage'
    monitoring = ok(run_module('statuspage_incident', dict(args, status='monitoring',
                                                           body='A fix is deployed; watching.')))
    assert (monitoring['created'], monitoring['incident']['id']) == (False, incident_id)
    assert monitoring['diff']['before']['status'] == 'investigating'
    resolved = ok(run_module('statuspage_incident', dict(
        page, incident_id=incident_id, status='resolved', body='Resolved.',
        components={'cmpgateway': 'operational'})))
    assert resolved['incident']['status'] == 'resolved'
    again = ok(run_module('statuspage_incident', dict(
        page, incident_id=incident_id, status='resolved', body='Resolved.',
        components={'cmpgateway': 'operational'})))
    assert again['changed'] is False

    status, incident = standin.call('GET', '/statuspage/v1/pages/pgdemo/incidents/' + incident_id,
                                    headers=headers)
    assert status == 200 and incident['resolved_at'] and incident['monitoring_at']
    assert [u['status'] for u in incident['incident_updates']] == ['resolved', 'monitoring', 'investigating']
    assert incident['components'] == [dict(incident['components'][0], status='operational')]
    assert standin.call('GET', '/statuspage/v1/pages/pgdemo/incidents/unresolved', headers=headers) == (200, [])
    assert [(e['method'], e['status']) for e in standin.journal('statuspage') if e['method'] != 'GET'] == [
        ('POST', 201), ('PATCH', 200), ('PATCH', 200)]
    assert standin.call('GET', '/statuspage/v1/pages/pgdemo/incidents')[0] == 401


def test_journal_keeps_every_request_without_secrets(standin):
    """GET /journal lists each request in order ({seq, time_iso, api, method, path, body, status});
    routing keys, tokens and Authorization headers are never stored; POST /journal/reset clears
    the journal and the state."""
    run_module('slack_notify', {'token': SLACK_TOKEN, 'channel': 'C0INCIDENTS', 'text': 'hi',
                                'api_url': standin.url + '/slack/api'})
    run_module('pagerduty_event', {'routing_key': ROUTING_KEY, 'event_action': 'trigger',
                                   'dedup_key': 'j1', 'summary': 's', 'source': 'x',
                                   'severity': 'info', 'events_url': standin.url + '/pagerduty/events'})
    run_module('pagerduty_event', {'routing_key': ROUTING_KEY, 'change_event': True,
                                   'summary': 'rolled back', 'events_url': standin.url + '/pagerduty/events'})
    standin.call('POST', '/slack/api/chat.postMessage?x=1', None)
    urllib.request.urlopen(urllib.request.Request(
        standin.url + '/slack/api/chat.postMessage', method='POST',
        data=('token=%s&channel=C0INCIDENTS&text=form' % SLACK_TOKEN).encode()), timeout=10).read()
    run_module('statuspage_incident', {'api_key': SP_KEY, 'page_id': 'p1', 'name': 'n',
                                       'api_url': standin.url + '/statuspage/v1'})
    journal = standin.journal()
    assert [e['seq'] for e in journal] == list(range(1, len(journal) + 1))
    assert [e['api'] for e in journal] == ['slack', 'pagerduty-events', 'pagerduty-events', 'slack',
                                           'slack', 'statuspage', 'statuspage']
    for entry in journal:
        assert set(entry) == {'seq', 'time_iso', 'api', 'method', 'path', 'body', 'status'}
        assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', entry['time_iso'])
    assert journal[1]['body'] == {'event_action': 'trigger', 'dedup_key': 'j1', 'payload': {
        'summary': 's', 'source': 'x', 'severity': 'info'}} and journal[1]['status'] == 202
    assert journal[2]['path'].endswith('/v2/change/enqueue') and journal[2]['status'] == 202
    assert journal[4]['body'] == {'channel': 'C0INCIDENTS', 'text': 'form'}
    assert journal[6]['path'] == '/statuspage/v1/pages/p1/incidents' and journal[6]['status'] == 201
    text = json.dumps(journal) + json.dumps(standin.call('GET', '/state')[1])
    for secret in SECRETS:
        assert secret not in text
    assert 'routing_key' not in text and 'Authorization' not in text
    assert standin.call('POST', '/journal/reset', {}) == (200, {'ok': True})
    assert standin.journal() == []
    assert standin.call('GET', '/state')[1]['pagerduty_incidents'] == []

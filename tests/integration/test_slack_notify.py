"""slack_notify run as Ansible runs it, against a local server that answers as the Slack Web API
and incoming webhooks document (Slack cannot be reached from here): HTTP 200 {ok: true, channel,
ts, message}; HTTP 200 {ok: false, error} for refusals; HTTP 429 with Retry-After; a webhook's
plain-text `ok`, or an HTTP error whose body names the error. The last test runs a playbook at
-vvv against both this server and PagerDuty-like answers and looks for secrets in its output."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import COLLECTIONS, ROOT, Route, run_module

TOKEN = 'xoxb-1111-2222-s3cr3tSlackBotToken'
HOOK_SECRET = 'XXXXs3cr3tWebhookPath'
INCIDENT = {'service': 'inference-gateway', 'severity': 'critical', 'priority': 'P1',
            'started_at': '2025-10-23T14:23:00Z', 'outcome': 'open',
            'triage': {'error_rate': {'error_percent': 12.0}}}


def posted(ts='1503435956.000247', channel='C0INCIDENTS', **message):
    """chat.postMessage's documented success answer."""
    return {'ok': True, 'channel': channel, 'ts': ts, 'message': dict(
        {'type': 'message', 'subtype': 'bot_message', 'ts': ts, 'bot_id': 'B19LU7CSY'}, **message)}


def body(server, index=0):
    return json.loads(server.requests[index]['body'])


def no_secret(result):
    text = json.dumps(result)
    assert TOKEN not in text and HOOK_SECRET not in text


def test_first_message_starts_the_thread_and_gets_eyes(server):
    """Web API: chat.postMessage answers {ok, channel, ts, message}; reactions.add {ok: true}."""
    server.routes['/chat.postMessage'] = Route(200, posted())
    server.routes['/reactions.add'] = Route(200, {'ok': True})
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0INCIDENTS', 'template': 'incident',
                                    'incident': INCIDENT, 'template_vars': {'commander': '<@U012AB3CD>'},
                                    'reaction': ':eyes:', 'api_url': server.url})
    assert r.get('failed') is not True, r
    assert (r['ts'], r['thread_ts'], r['channel'], r['changed'], r['sent']) == (
        '1503435956.000247', '1503435956.000247', 'C0INCIDENTS', True, True)
    post = server.requests[0]
    assert post['path'] == '/chat.postMessage'
    assert post['headers']['authorization'] == 'Bearer ' + TOKEN
    assert post['headers']['content-type'] == 'application/json; charset=utf-8'
    sent = body(server)
    assert sent['channel'] == 'C0INCIDENTS' and 'thread_ts' not in sent
    assert sent['text'].startswith('🔥 INCIDENT: High Error Rate - Inference Gateway\n'
                                   'Severity: P1 (Critical)\nIncident Commander: <@U012AB3CD>\n')
    assert 'Error Rate: 12% (target: &lt;0.5%)' in sent['text']
    assert [b['type'] for b in sent['blocks']] == ['section'] * 3
    assert body(server, 1) == {'channel': 'C0INCIDENTS', 'timestamp': '1503435956.000247',
                               'name': 'eyes'}
    no_secret(r)


def test_updates_land_in_the_thread(server):
    """Web API: a reply with thread_ts (and reply_broadcast) answers with its own ts."""
    server.routes['/chat.postMessage'] = Route(200, posted(ts='1503435999.000100',
                                                           thread_ts='1503435956.000247'))
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0INCIDENTS', 'template': 'update',
                                    'incident': INCIDENT, 'thread_ts': '1503435956.000247',
                                    'reply_broadcast': True, 'template_vars': {'eta': '5 minutes'},
                                    'api_url': server.url})
    assert r.get('failed') is not True, r
    sent = body(server)
    assert sent['thread_ts'] == '1503435956.000247' and sent['reply_broadcast'] is True
    assert 'ETA: 5 minutes' in sent['text']
    assert (r['ts'], r['thread_ts']) == ('1503435999.000100', '1503435956.000247')


def test_already_reacted_is_success_without_change(server):
    """Web API: reactions.add answers HTTP 200 {ok: false, error: already_reacted}."""
    server.routes['/reactions.add'] = Route(200, {'ok': False, 'error': 'already_reacted'})
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0ALERTS', 'reaction': 'eyes',
                                    'timestamp': '1503435956.000247', 'api_url': server.url})
    assert r.get('failed') is not True, r
    assert (r['changed'], r['sent']) == (False, True)


@pytest.mark.parametrize('error,words', [
    ('not_in_channel', 'the app is not a member of channel C0PRIVATE: invite it there'),
    ('invalid_auth', 'Slack does not accept the token: check token'),
    ('channel_not_found', 'Slack knows no channel C0PRIVATE that the token can see'),
])
def test_refusals_are_clear_failures(server, error, words):
    """Web API: refusals come as HTTP 200 {ok: false, error}."""
    server.routes['/chat.postMessage'] = Route(200, {'ok': False, 'error': error})
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0PRIVATE', 'text': 'hello',
                                    'api_url': server.url})
    assert r['failed'] is True
    assert r['msg'].startswith('Slack refused chat.postMessage with %s: %s' % (error, words))
    assert len(server.requests) == 1
    no_secret(r)


def test_rate_limit_waits_for_retry_after(server):
    """Web API: HTTP 429 {ok: false, error: ratelimited} with Retry-After: 1, then success."""
    answers = [Route(429, {'ok': False, 'error': 'ratelimited'}, {'Retry-After': '1'}),
               Route(200, posted())]
    server.routes['/chat.postMessage'] = lambda handler: answers.pop(0)
    started = time.monotonic()
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0INCIDENTS', 'text': 'hello',
                                    'api_url': server.url})
    assert r.get('failed') is not True, r
    assert len(server.requests) == 2 and r['ts'] == '1503435956.000247'
    assert time.monotonic() - started >= 1.0


def test_rate_limit_longer_than_allowed_fails_at_once(server):
    """Web API: HTTP 429 with Retry-After: 120, more than max_retry_after: no wait, a clear failure."""
    server.routes['/chat.postMessage'] = Route(429, {'ok': False, 'error': 'ratelimited'},
                                               {'Retry-After': '120'})
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0INCIDENTS', 'text': 'hello',
                                    'max_retry_after': 5, 'api_url': server.url})
    assert r['failed'] is True and len(server.requests) == 1
    assert 'rate limiting chat.postMessage (HTTP 429, Retry-After 120 s' in r['msg']


def test_webhook_posts_text_and_blocks(server):
    """Incoming webhook: POST {text, blocks}, answered with the plain text `ok`; no ts."""
    server.routes['/services/T0/B0/' + HOOK_SECRET] = Route(200, b'ok', {'Content-Type': 'text/html'})
    r = run_module('slack_notify', {'webhook_url': server.url + '/services/T0/B0/' + HOOK_SECRET,
                                    'template': 'resolved', 'incident': INCIDENT})
    assert r.get('failed') is not True, r
    sent = body(server)
    assert sent['text'].startswith('✅ RESOLVED [') and sent['blocks'][0]['type'] == 'section'
    assert (r['ts'], r['thread_ts'], r['changed']) == (None, None, True)
    assert 'authorization' not in server.requests[0]['headers']
    no_secret(r)


def test_webhook_error_hides_the_url(server):
    """Incoming webhook: HTTP 404 with body `no_service` for a revoked webhook."""
    server.routes['/services/T0/B0/' + HOOK_SECRET] = Route(404, b'no_service', {'Content-Type': 'text/html'})
    r = run_module('slack_notify', {'webhook_url': server.url + '/services/T0/B0/' + HOOK_SECRET,
                                    'text': 'hello'})
    assert r['failed'] is True
    assert r['msg'] == ('the Slack webhook (%s/********) answered HTTP 404: no_service: the webhook '
                        'was revoked or the URL is wrong: check webhook_url' % server.url)
    no_secret(r)


def test_check_mode_sends_nothing(server):
    """Check mode: no request reaches the Slack-like server; what would be sent is returned."""
    r = run_module('slack_notify', {'token': TOKEN, 'channel': 'C0INCIDENTS', 'template': 'escalation',
                                    'incident': INCIDENT, 'reaction': 'eyes', 'api_url': server.url},
                   check_mode=True)
    assert (r['changed'], r['sent'], r['ts']) == (True, False, None)
    assert [q['method'] for q in r['request']] == ['chat.postMessage', 'reactions.add']
    assert r['request'][0]['body']['text'].startswith('🚨 ESCALATION: High Error Rate')
    r = run_module('slack_notify', {'webhook_url': server.url + '/services/T0/B0/' + HOOK_SECRET,
                                    'text': 'hello'}, check_mode=True)
    assert r['changed'] is True and server.requests == []
    no_secret(r)


@pytest.mark.parametrize('args,message', [
    ({'token': TOKEN, 'text': 'x'}, "missing parameter(s) required by 'token': channel"),
    ({'webhook_url': 'http://127.0.0.1:9/h', 'text': 'x', 'reaction': 'eyes'},
     'mutually exclusive: webhook_url|reaction'),
    ({'token': TOKEN, 'channel': 'C', 'template': 'update'},
     "missing parameter(s) required by 'template': incident"),
    ({'token': TOKEN, 'channel': 'C', 'reaction': 'eyes'}, 'reaction needs timestamp'),
])
def test_bad_options(args, message):
    """Argument checks only: nothing is sent."""
    r = run_module('slack_notify', args)
    assert r['failed'] is True and message in r['msg']
    no_secret(r)


def test_no_secret_at_vvv(server):
    """ansible-playbook -vvv of tests/integration/playbooks/notify_secrets.yml against this server
    answering as PagerDuty (202 event; REST incident GET/PUT) and Slack (ok answers, a webhook's
    `ok`, and an {ok: false, error: not_in_channel} refusal)."""
    pd_key, pd_token = 'R0UT1NGKEYvvvvvv0123456789abcdef', 'pd-api-token-vvv-s3cr3t'
    server.routes['/v2/enqueue'] = Route(202, {'status': 'success', 'message': 'Event processed',
                                               'dedup_key': 'k'})
    server.routes[('GET', '/incidents/PT4KHLK')] = Route(200, {'incident': {'id': 'PT4KHLK',
                                                                            'status': 'triggered'}})
    server.routes[('PUT', '/incidents/PT4KHLK')] = Route(200, {'incident': {'id': 'PT4KHLK',
                                                                            'status': 'acknowledged'}})
    server.routes['/chat.postMessage'] = Route(200, posted())
    server.routes['/reactions.add'] = Route(200, {'ok': True})
    server.routes['/services/T0/B0/' + HOOK_SECRET] = Route(200, b'ok', {'Content-Type': 'text/html'})
    server.routes['/failing/chat.postMessage'] = Route(200, {'ok': False, 'error': 'not_in_channel'})
    extra = {'pd_routing_key': pd_key, 'pd_api_token': pd_token, 'slack_token': TOKEN,
             'webhook_secret': HOOK_SECRET, 'fake_url': server.url}
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-vvv',
                           str(ROOT / 'tests/integration/playbooks/notify_secrets.yml'),
                           '-e', json.dumps(extra)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert [q['path'] for q in server.requests] == [
        '/v2/enqueue', '/incidents/PT4KHLK', '/incidents/PT4KHLK', '/chat.postMessage',
        '/reactions.add', '/services/T0/B0/' + HOOK_SECRET, '/failing/chat.postMessage']
    assert 'not a member of channel C0PRIVATE' in output  # the failure is shown...
    for secret in (pd_key, pd_token, TOKEN, HOOK_SECRET):
        assert secret not in output  # ...and no secret, at -vvv
    assert 'routing_key: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in output  # the invocation, masked

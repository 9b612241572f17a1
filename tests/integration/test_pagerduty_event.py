"""pagerduty_event run as Ansible runs it, against a local server that answers as PagerDuty's
Events API v2 and REST API v2 document (PagerDuty cannot be reached from here): 202
{status, message, dedup_key}; 400 {status, message, errors}, not to be retried; 429 and 5xx, to
be retried; REST {incident: {...}} and {error: {message, code, errors}}; the From header."""

import json

from conftest import Route, run_module

KEY = 'R0UT1NGKEYabcdef0123456789abcdef'
TOKEN = 'y_NbAkKc66ryYTWUXYEu-pd-token'
ACCEPTED = {'status': 'success', 'message': 'Event processed', 'dedup_key': 'inc-42'}
TRIGGER = {'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'inc-42',
           'summary': 'High error rate on inference-gateway: 12% 5xx', 'source': 'inference-gateway',
           'severity': 'critical', 'retries': 2}


def sent(server, index=0):
    return json.loads(server.requests[index]['body'])


def no_secret(result):
    text = json.dumps(result)
    assert KEY not in text and TOKEN not in text


def incident(status):
    return {'incident': {'id': 'PT4KHLK', 'type': 'incident', 'status': status,
                         'incident_key': 'am-group-key-1', 'title': 'HighErrorRate'}}


def test_trigger_is_accepted(server):
    """Events API v2: 202 Accepted with {status: success, message: Event processed, dedup_key}."""
    server.routes[('POST', '/v2/enqueue')] = Route(202, ACCEPTED)
    r = run_module('pagerduty_event', dict(TRIGGER, events_url=server.url,
                                           custom_details={'error_percent': 12}))
    assert r.get('failed') is not True, r
    assert (r['changed'], r['sent'], r['status'], r['message'], r['dedup_key']) == (
        True, True, 'success', 'Event processed', 'inc-42')
    body = sent(server)
    assert body == {'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'inc-42', 'payload': {
        'summary': TRIGGER['summary'], 'source': 'inference-gateway', 'severity': 'critical',
        'custom_details': {'error_percent': 12}}}
    assert server.requests[0]['headers']['content-type'] == 'application/json'
    assert 'authorization' not in server.requests[0]['headers']
    assert r['request'][0]['body']['routing_key'] == '********'
    no_secret(r)


def test_resolve_and_change_event(server):
    """Events API v2: resolve by dedup_key on /v2/enqueue; a change event on /v2/change/enqueue."""
    server.routes['/v2/enqueue'] = Route(202, ACCEPTED)
    server.routes['/v2/change/enqueue'] = Route(202, {'status': 'success',
                                                      'message': 'Change event processed'})
    r = run_module('pagerduty_event', {'routing_key': KEY, 'event_action': 'resolve',
                                       'dedup_key': 'inc-42', 'events_url': server.url})
    assert r['changed'] is True and sent(server) == {
        'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'inc-42'}
    r = run_module('pagerduty_event', {'routing_key': KEY, 'change_event': True,
                                       'summary': 'rolled back inference-gateway to v1.2.2',
                                       'source': 'sre.runbooks', 'events_url': server.url,
                                       'links': [{'href': 'http://localhost:3000/d/x'}]})
    assert r.get('failed') is not True, r
    assert server.requests[1]['path'] == '/v2/change/enqueue'
    assert sent(server, 1) == {'routing_key': KEY, 'payload': {
        'summary': 'rolled back inference-gateway to v1.2.2', 'source': 'sre.runbooks'},
        'links': [{'href': 'http://localhost:3000/d/x'}]}
    assert r['message'] == 'Change event processed'


def test_invalid_event_is_not_retried(server):
    """Events API v2: 400 {status: invalid event, message, errors} is final: one request only."""
    server.routes['/v2/enqueue'] = Route(400, {'status': 'invalid event',
                                               'message': 'Event object is invalid',
                                               'errors': ['Length of \'routing_key\' is incorrect']})
    r = run_module('pagerduty_event', dict(TRIGGER, events_url=server.url))
    assert r['failed'] is True
    assert len(server.requests) == 1
    assert ("refused the event as invalid event (HTTP 400): Event object is invalid: Length of "
            "'routing_key' is incorrect. Not retried") in r['msg']
    no_secret(r)


def test_429_then_202_is_retried(server):
    """Events API v2: 429 (throttled) and 5xx are to be retried with backoff; then 202."""
    answers = [Route(429, {'status': 'throttle event', 'message': 'Requests for this service '
                                                                  'are arriving too quickly.'}),
               Route(500, b'Internal Server Error', {'Content-Type': 'text/plain'}),
               Route(202, ACCEPTED)]
    server.routes['/v2/enqueue'] = lambda handler: answers.pop(0)
    r = run_module('pagerduty_event', dict(TRIGGER, events_url=server.url))
    assert r.get('failed') is not True, r
    assert len(server.requests) == 3 and r['status'] == 'success'


def test_429_for_good_says_so(server):
    """Events API v2: 429 on every attempt; the task fails after its retries."""
    server.routes['/v2/enqueue'] = Route(429, {'status': 'throttle event', 'message': 'slow down'})
    r = run_module('pagerduty_event', dict(TRIGGER, events_url=server.url, retries=1))
    assert r['failed'] is True and len(server.requests) == 2
    assert 'kept answering HTTP 429 (too many events) after 1 retries' in r['msg']


def test_check_mode_sends_nothing(server):
    """Check mode: no request reaches the (PagerDuty-like) server, Events or REST."""
    r = run_module('pagerduty_event', dict(TRIGGER, events_url=server.url), check_mode=True)
    assert (r['changed'], r['sent']) == (True, False)
    assert r['request'][0]['url'] == server.url + '/v2/enqueue'
    assert r['request'][0]['body']['payload']['severity'] == 'critical'
    r = run_module('pagerduty_event', {'api_token': TOKEN, 'from_email': 'oncall@example.com',
                                       'incident_id': 'PT4KHLK', 'incident_status': 'resolved',
                                       'note': 'rolled back', 'api_url': server.url}, check_mode=True)
    assert r['changed'] is True and [q['method'] for q in r['request']] == ['PUT', 'POST']
    assert server.requests == []
    no_secret(r)


def test_rest_acknowledge_sends_from_and_token(server):
    """REST API v2: GET /incidents/{id} (triggered), then PUT {incident: {type:
    incident_reference, status}} with Authorization: Token token=..., From and the v2 Accept."""
    server.routes[('GET', '/incidents/PT4KHLK')] = Route(200, incident('triggered'))
    server.routes[('PUT', '/incidents/PT4KHLK')] = Route(200, incident('acknowledged'))
    r = run_module('pagerduty_event', {'api_token': TOKEN, 'from_email': 'oncall@example.com',
                                       'incident_id': 'PT4KHLK', 'incident_status': 'acknowledged',
                                       'api_url': server.url})
    assert r.get('failed') is not True, r
    assert [(q['method'], q['path']) for q in server.requests] == [
        ('GET', '/incidents/PT4KHLK'), ('PUT', '/incidents/PT4KHLK')]
    put = server.requests[1]
    assert put['headers']['authorization'] == 'Token token=' + TOKEN
    assert put['headers']['from'] == 'oncall@example.com'
    assert put['headers']['accept'] == 'application/vnd.pagerduty+json;version=2'
    assert json.loads(put['body']) == {'incident': {'type': 'incident_reference',
                                                    'status': 'acknowledged'}}
    assert (r['changed'], r['status'], r['dedup_key']) == (True, 'acknowledged', 'am-group-key-1')
    assert r['incident']['id'] == 'PT4KHLK'
    no_secret(r)


def test_rest_already_resolved_is_unchanged_but_a_note_is_added(server):
    """REST API v2: an incident already resolved is not PUT again; POST /incidents/{id}/notes
    {note: {content}} answers 201 {note: {...}}."""
    server.routes[('GET', '/incidents/PT4KHLK')] = Route(200, incident('resolved'))
    r = run_module('pagerduty_event', {'api_token': TOKEN, 'from_email': 'oncall@example.com',
                                       'incident_id': 'PT4KHLK', 'incident_status': 'resolved',
                                       'api_url': server.url})
    assert (r['changed'], r['sent'], r['request']) == (False, False, [])
    assert r['message'] == 'incident PT4KHLK: already resolved'
    server.routes[('POST', '/incidents/PT4KHLK/notes')] = Route(201, {'note': {
        'id': 'PWL7QXS', 'content': 'Root cause: v1.2.3', 'created_at': '2025-10-23T14:45:00Z',
        'user': {'id': 'PXPGF42', 'type': 'user_reference'}}})
    r = run_module('pagerduty_event', {'api_token': TOKEN, 'from_email': 'oncall@example.com',
                                       'incident_id': 'PT4KHLK', 'incident_status': 'acknowledged',
                                       'note': 'Root cause: v1.2.3', 'api_url': server.url})
    assert r['changed'] is True and r['note']['id'] == 'PWL7QXS'
    assert [q['method'] for q in server.requests[1:]] == ['GET', 'POST']
    assert json.loads(server.requests[-1]['body']) == {'note': {'content': 'Root cause: v1.2.3'}}
    assert server.requests[-1]['headers']['from'] == 'oncall@example.com'


def test_rest_errors_are_explained(server):
    """REST API v2: 401 {error: {message, code}} and 404 for an unknown incident."""
    server.routes[('GET', '/incidents/PT4KHLK')] = Route(401, {'error': {
        'message': 'Authentication failed', 'code': 2006}})
    args = {'api_token': TOKEN, 'from_email': 'oncall@example.com', 'incident_id': 'PT4KHLK',
            'incident_status': 'resolved', 'api_url': server.url}
    r = run_module('pagerduty_event', args)
    assert r['failed'] is True
    assert r['msg'] == ('PagerDuty REST API answered HTTP 401 to GET /incidents/PT4KHLK: '
                        'Authentication failed (code 2006); check api_token (a REST API key, '
                        'sent as "Token token=...")')
    no_secret(r)
    r = run_module('pagerduty_event', dict(args, incident_id='NOPE'))
    assert 'HTTP 404 to GET /incidents/NOPE' in r['msg'] and 'check incident_id' in r['msg']


def test_bad_option_combinations():
    """Argument checks only: nothing is sent."""
    r = run_module('pagerduty_event', {'routing_key': KEY, 'event_action': 'acknowledge'})
    assert 'event_action is acknowledge but all of the following are missing: dedup_key' in r['msg']
    r = run_module('pagerduty_event', {'api_token': TOKEN, 'incident_id': 'P1'})
    assert 'missing parameter(s) required by \'api_token\': from_email' in r['msg']
    r = run_module('pagerduty_event', {'routing_key': KEY})
    assert r['msg'].startswith('nothing to send: give event_action')
    r = run_module('pagerduty_event', {'routing_key': KEY, 'api_token': TOKEN, 'incident_id': 'P1',
                                       'from_email': 'a@b'})
    assert 'mutually exclusive: routing_key|api_token' in r['msg']
    no_secret(r)

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PagerDuty: alert and change events (Events API v2) and incidents (REST API v2).

Events need the routing key and, to acknowledge or resolve, the dedup key of the trigger. An
incident opened by someone else (Alertmanager) is acknowledged, resolved or annotated by id
through the REST API, on behalf of the user named in the From header.
"""

from __future__ import annotations

from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, body_text, decode_json)

MASK = '********'
# Both APIs ask for a retry on 429 and on any 5xx; a 400 would be refused again.
RETRY_STATUSES = frozenset([429] + list(range(500, 600)))
REST_ACCEPT = 'application/vnd.pagerduty+json;version=2'
# An incident only moves forward: acknowledging a resolved incident changes nothing.
STATUS_ORDER = ('triggered', 'acknowledged', 'resolved')
PAYLOAD_FIELDS = ('summary', 'source', 'severity', 'timestamp', 'component', 'group', 'class',
                  'custom_details')
CHANGE_FIELDS = ('summary', 'source', 'timestamp', 'custom_details')

ARGUMENT_SPEC = dict(
    routing_key=dict(type='str', no_log=True),
    event_action=dict(type='str', choices=['trigger', 'acknowledge', 'resolve']),
    dedup_key=dict(type='str', no_log=False),
    summary=dict(type='str'),
    source=dict(type='str'),
    severity=dict(type='str', choices=['critical', 'error', 'warning', 'info']),
    timestamp=dict(type='str'),
    component=dict(type='str'),
    group=dict(type='str'),
    **{'class': dict(type='str')},
    custom_details=dict(type='dict'),
    links=dict(type='list', elements='dict'),
    change_event=dict(type='bool', default=False),
    events_url=dict(type='str', default='https://events.pagerduty.com'),
    api_token=dict(type='str', no_log=True),
    from_email=dict(type='str'),
    incident_id=dict(type='str'),
    incident_status=dict(type='str', choices=['acknowledged', 'resolved']),
    note=dict(type='str'),
    api_url=dict(type='str', default='https://api.pagerduty.com'),
    timeout=dict(type='float', default=10.0),
    retries=dict(type='int', default=3),
    max_retry_after=dict(type='float', default=30.0),
    validate_certs=dict(type='bool', default=True),
)

CONSTRAINTS = dict(
    required_one_of=[('routing_key', 'api_token')],
    mutually_exclusive=[('routing_key', 'api_token'), ('event_action', 'change_event')],
    required_by={'api_token': ('incident_id', 'from_email')},
    required_if=[('event_action', 'trigger', ('summary', 'source', 'severity')),
                 ('event_action', 'acknowledge', ('dedup_key',)),
                 ('event_action', 'resolve', ('dedup_key',)),
                 ('change_event', True, ('summary',))],
)


def alert_event(p):
    """The Events API body of a trigger, acknowledge or resolve (PagerDuty reads a payload only
    on a trigger)."""
    body = {'routing_key': p['routing_key'], 'event_action': p['event_action']}
    if p.get('dedup_key'):
        body['dedup_key'] = p['dedup_key']
    if p['event_action'] == 'trigger':
        body['payload'] = _fields(p, PAYLOAD_FIELDS)
        if p.get('links'):
            body['links'] = p['links']
    return body


def change_event(p):
    """The body of a change event (an action taken, such as a rollback): no dedup key, no
    severity."""
    body = {'routing_key': p['routing_key'], 'payload': _fields(p, CHANGE_FIELDS)}
    if p.get('links'):
        body['links'] = p['links']
    return body


def _fields(p, names):
    return {name: p[name] for name in names if p.get(name) is not None}


def check_links(links):
    """Each link needs its href; PagerDuty refuses the event otherwise."""
    for link in links or []:
        if not link.get('href'):
            raise ApiError('invalid option: every item of links needs an href (and may have a '
                           'text), got %r' % (link,))


def masked(body):
    """The body as shown in results: the routing key hidden."""
    return dict(body, routing_key=MASK) if 'routing_key' in body else body


def is_done(current, wanted):
    """Whether an incident in status `current` already is (or is past) `wanted`."""
    if current not in STATUS_ORDER:
        return False
    return STATUS_ORDER.index(current) >= STATUS_ORDER.index(wanted)


def events_error(response, path, retries):
    """One sentence for an Events API answer other than 202."""
    payload = decode_json(response)
    payload = payload if isinstance(payload, dict) else {}
    detail = '; '.join(str(e) for e in payload.get('errors') or [])
    said = ': '.join(str(x) for x in (payload.get('message') or response.body and body_text(response, 200),
                                      detail) if x)
    where = 'PagerDuty Events API (%s)' % path
    if response.status == 400:
        return ('%s refused the event as %s (HTTP 400): %s. Not retried, PagerDuty would refuse it '
                'again: check routing_key (the integration key of an Events API v2 integration) '
                'and the event fields' % (where, payload.get('status') or 'invalid', said))
    if response.status == 429:
        return ('%s kept answering HTTP 429 (too many events) after %d retries: send fewer events '
                'or raise retries' % (where, retries))
    return '%s answered HTTP %s after %d retries: %s' % (where, response.status, retries, said)


def rest_error(response, method, path):
    """One sentence for a REST API error ({error: {message, code, errors}})."""
    payload = decode_json(response)
    error = payload.get('error') if isinstance(payload, dict) else None
    if isinstance(error, dict):
        said = '%s (code %s)' % (error.get('message'), error.get('code'))
        if error.get('errors'):
            said += ': ' + '; '.join(str(e) for e in error['errors'])
    else:
        said = body_text(response, 200)
    hint = {401: 'check api_token (a REST API key, sent as "Token token=...")',
            403: 'the token may be read-only or lack access to this incident',
            404: 'check incident_id (the incident id, such as PT4KHLK, not its number)',
            400: 'check from_email (a user of the account) and the request'}.get(
                response.status, 'try again later')
    return 'PagerDuty REST API answered HTTP %s to %s %s: %s; %s' % (
        response.status, method, path, said, hint)


class PagerDuty:
    def __init__(self, p):
        opts = dict(timeout=p['timeout'], retries=p['retries'], validate_certs=p['validate_certs'],
                    retry_statuses=RETRY_STATUSES, max_retry_after=p['max_retry_after'])
        self.retries = p['retries']
        self.events = HttpClient(p['events_url'], name='PagerDuty Events API', **opts)
        self.rest = HttpClient(p['api_url'], name='PagerDuty REST API', headers={
            'Authorization': 'Token token=%s' % p['api_token'], 'Accept': REST_ACCEPT,
            'From': p['from_email']}, **opts) if p['api_token'] else None

    def send_event(self, path, body):
        response = self.events.request('POST', path, json_body=body)
        payload = decode_json(response)
        if response.status != 202 or not isinstance(payload, dict):
            raise ApiError(events_error(response, path, self.retries), response.status, payload)
        return payload

    def call(self, method, path, body=None):
        response = self.rest.request(method, path, json_body=body)
        payload = decode_json(response)
        if not 200 <= response.status < 300 or not isinstance(payload, dict):
            raise ApiError(rest_error(response, method, path), response.status, payload)
        return payload


def request_record(method, url, body, headers=None):
    record = {'method': method, 'url': url, 'body': masked(body)}
    if headers:
        record['headers'] = headers
    return record


def run(p, check_mode):
    """Sends the event, or updates the incident; the module's result."""
    check_links(p['links'])
    pd = PagerDuty(p)
    if p['api_token']:
        return _incident(pd, p, check_mode)
    if not (p['change_event'] or p['event_action']):
        raise ApiError('nothing to send: give event_action (trigger, acknowledge, resolve) or '
                       'change_event=true with routing_key; or api_token, from_email and '
                       'incident_id for the REST API')
    path, body = (('/v2/change/enqueue', change_event(p)) if p['change_event']
                  else ('/v2/enqueue', alert_event(p)))
    result = {'changed': True, 'sent': False, 'dedup_key': body.get('dedup_key'),
              'status': None, 'message': None, 'incident': None, 'note': None,
              'request': [request_record('POST', pd.events.url_for(path), body)]}
    if check_mode:
        return result
    answer = pd.send_event(path, body)
    result.update(sent=True, status=answer.get('status'), message=answer.get('message'),
                  dedup_key=answer.get('dedup_key') or result['dedup_key'])
    return result


def _incident(pd, p, check_mode):
    if not (p['incident_status'] or p['note']):
        raise ApiError('nothing to do on incident %s: give incident_status (acknowledged, '
                       'resolved) and/or note' % p['incident_id'])
    if p['routing_key'] or p['event_action'] or p['change_event']:
        raise ApiError('routing_key, event_action and change_event belong to the Events API; '
                       'with api_token the REST API acts on incident_id')
    base = '/incidents/%s' % p['incident_id']
    headers = {'From': p['from_email']}
    update = {'incident': {'type': 'incident_reference', 'status': p['incident_status']}}
    note = {'note': {'content': p['note']}}
    result = {'changed': True, 'sent': False, 'dedup_key': None, 'status': p['incident_status'],
              'message': None, 'incident': None, 'note': None, 'request': []}
    if check_mode:
        # Nothing is sent, not even the read: the status is assumed to change.
        if p['incident_status']:
            result['request'].append(request_record('PUT', pd.rest.url_for(base), update, headers))
        if p['note']:
            result['request'].append(request_record('POST', pd.rest.url_for(base + '/notes'),
                                                    note, headers))
        result['message'] = 'check mode: nothing sent to incident %s' % p['incident_id']
        return result
    incident = pd.call('GET', base).get('incident') or {}
    done = []
    if p['incident_status']:
        if is_done(incident.get('status'), p['incident_status']):
            done.append('already %s' % incident.get('status'))
        else:
            result['request'].append(request_record('PUT', pd.rest.url_for(base), update, headers))
            incident = pd.call('PUT', base, update).get('incident') or incident
            done.append(p['incident_status'])
    if p['note']:
        result['request'].append(request_record('POST', pd.rest.url_for(base + '/notes'), note,
                                                headers))
        result['note'] = pd.call('POST', base + '/notes', note).get('note')
        done.append('note added')
    result.update(changed=bool(result['request']), sent=bool(result['request']),
                  incident=incident, status=incident.get('status'),
                  dedup_key=incident.get('incident_key'),
                  message='incident %s: %s' % (p['incident_id'], ', '.join(done)))
    return result

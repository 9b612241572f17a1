# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.pagerduty_event: an Events API v2 event, or an update of an incident through the
REST API (notify/pagerduty.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.notify.pagerduty import PagerDuty, alert_event, change_event, check_links, is_done, masked

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
SPEC = dict(argument_spec=ARGUMENT_SPEC, **CONSTRAINTS)


def request_record(method: str, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {'method': method, 'url': url, 'body': masked(body)}
    if headers:
        record['headers'] = headers
    return record


def run(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
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
    result: dict[str, Any] = {'changed': True, 'sent': False, 'dedup_key': body.get('dedup_key'),
                              'status': None, 'message': None, 'incident': None, 'note': None,
                              'request': [request_record('POST', pd.events.url_for(path), body)]}
    if check_mode:
        return result
    answer = pd.send_event(path, body)
    result.update(sent=True, status=answer.get('status'), message=answer.get('message'),
                  dedup_key=answer.get('dedup_key') or result['dedup_key'])
    return result


def _incident(pd: PagerDuty, p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not (p['incident_status'] or p['note']):
        raise ApiError('nothing to do on incident %s: give incident_status (acknowledged, '
                       'resolved) and/or note' % p['incident_id'])
    if p['routing_key'] or p['event_action'] or p['change_event']:
        raise ApiError('routing_key, event_action and change_event belong to the Events API; '
                       'with api_token the REST API acts on incident_id')
    if pd.rest is None:
        raise ApiError('the REST API needs api_token')
    base = '/incidents/%s' % p['incident_id']
    headers = {'From': p['from_email']}
    update = {'incident': {'type': 'incident_reference', 'status': p['incident_status']}}
    note = {'note': {'content': p['note']}}
    result: dict[str, Any] = {'changed': True, 'sent': False, 'dedup_key': None, 'status': p['incident_status'],
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
    done: list[str] = []
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

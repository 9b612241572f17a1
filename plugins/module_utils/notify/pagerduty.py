# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PagerDuty: alert and change events (Events API v2) and incidents (REST API v2).

Events need the routing key and, to acknowledge or resolve, the dedup key of the trigger. An
incident opened by someone else (Alertmanager) is acknowledged, resolved or annotated by id
through the REST API, on behalf of the user named in the From header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, Response, body_text, decode_json

MASK = '********'
# Both APIs ask for a retry on 429 and on any 5xx; a 400 would be refused again.
RETRY_STATUSES = frozenset([429] + list(range(500, 600)))
REST_ACCEPT = 'application/vnd.pagerduty+json;version=2'
# An incident only moves forward: acknowledging a resolved incident changes nothing.
STATUS_ORDER = ('triggered', 'acknowledged', 'resolved')
PAYLOAD_FIELDS = ('summary', 'source', 'severity', 'timestamp', 'component', 'group', 'class',
                  'custom_details')
CHANGE_FIELDS = ('summary', 'source', 'timestamp', 'custom_details')


def alert_event(p: Mapping[str, Any]) -> dict[str, Any]:
    """The Events API body of a trigger, acknowledge or resolve (PagerDuty reads a payload only
    on a trigger)."""
    body: dict[str, Any] = {'routing_key': p['routing_key'], 'event_action': p['event_action']}
    if p.get('dedup_key'):
        body['dedup_key'] = p['dedup_key']
    if p['event_action'] == 'trigger':
        body['payload'] = _fields(p, PAYLOAD_FIELDS)
        if p.get('links'):
            body['links'] = p['links']
    return body


def change_event(p: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a change event (an action taken, such as a rollback): no dedup key, no
    severity."""
    body: dict[str, Any] = {'routing_key': p['routing_key'], 'payload': _fields(p, CHANGE_FIELDS)}
    if p.get('links'):
        body['links'] = p['links']
    return body


def _fields(p: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: p[name] for name in names if p.get(name) is not None}


def check_links(links: list[dict[str, Any]] | None) -> None:
    """Each link needs its href; PagerDuty refuses the event otherwise."""
    for link in links or []:
        if not link.get('href'):
            raise ApiError('invalid option: every item of links needs an href (and may have a '
                           'text), got %r' % (link,))


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """The body as shown in results: the routing key hidden."""
    return dict(body, routing_key=MASK) if 'routing_key' in body else body


def is_done(current: str | None, wanted: str) -> bool:
    """Whether an incident in status `current` already is (or is past) `wanted`."""
    if current not in STATUS_ORDER:
        return False
    return STATUS_ORDER.index(current) >= STATUS_ORDER.index(wanted)


def events_error(response: Response, path: str, retries: int) -> str:
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


def rest_error(response: Response, method: str, path: str) -> str:
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
    def __init__(self, p: Mapping[str, Any]) -> None:
        opts: dict[str, Any] = dict(timeout=p['timeout'], retries=p['retries'], validate_certs=p['validate_certs'],
                                    retry_statuses=RETRY_STATUSES, max_retry_after=p['max_retry_after'])
        self.retries = p['retries']
        self.events = HttpClient(p['events_url'], name='PagerDuty Events API', **opts)
        self.rest = HttpClient(p['api_url'], name='PagerDuty REST API', headers={
            'Authorization': 'Token token=%s' % p['api_token'], 'Accept': REST_ACCEPT,
            'From': p['from_email']}, **opts) if p['api_token'] else None

    def send_event(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.events.request('POST', path, json_body=body)
        payload = decode_json(response)
        if response.status != 202 or not isinstance(payload, dict):
            raise ApiError(events_error(response, path, self.retries), response.status, payload)
        return payload

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.rest is None:
            raise ApiError('the PagerDuty REST API needs api_token')
        response = self.rest.request(method, path, json_body=body)
        payload = decode_json(response)
        if not 200 <= response.status < 300 or not isinstance(payload, dict):
            raise ApiError(rest_error(response, method, path), response.status, payload)
        return payload

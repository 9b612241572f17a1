# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atlassian Statuspage incidents (REST API v1): find, create and update one incident, idempotently.

The API key goes in the header `Authorization: OAuth <key>`; errors answer {"message": "..."}
with 401 (key), 403 (permission), 404 (page or incident), 422 (a value refused) and 420/429 when
rate limited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import RETRY_STATUSES, ApiError, HttpClient, decode_json, summarise_body

API_URL = 'https://api.statuspage.io/v1'
INCIDENT_STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
COMPONENT_STATUSES = ('operational', 'under_maintenance', 'degraded_performance', 'partial_outage',
                      'major_outage')
IMPACTS = ('none', 'minor', 'major', 'critical')

HINTS = {
    401: 'check api_key, sent as "Authorization: OAuth <key>"',
    403: "check that the API key's user may manage this page",
    404: 'check page_id and incident_id',
    420: 'rate limited: Statuspage allows about one request a second per key; retry later',
    422: 'check status, impact_override and the component ids and statuses',
    429: 'rate limited: Statuspage allows about one request a second per key; retry later',
}


class StatuspageClient:
    """The incidents of one page."""

    def __init__(self, api_url: str, api_key: str, page_id: str, validate_certs: bool = True, timeout: float = 10.0,
                 retries: int = 2, max_retry_after: float | None = 30.0) -> None:
        # 420 is Statuspage's own "rate limited" (HINTS), tried again as a 429 is.
        self.http = HttpClient(api_url, name='Statuspage', headers={'Authorization': 'OAuth ' + api_key},
                               validate_certs=validate_certs, timeout=timeout, retries=retries,
                               retry_statuses=RETRY_STATUSES | {420}, max_retry_after=max_retry_after)
        self.incidents = '/pages/%s/incidents' % quote(page_id, safe='')

    def path(self, incident_id: str) -> str:
        return '%s/%s' % (self.incidents, quote(incident_id, safe=''))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer of a 2xx, else ApiError naming the status, the message and what to check."""
        response = self.http.request(method, path, json_body=body)
        payload = decode_json(response)
        if 200 <= response.status < 300 and payload is not None:
            return payload
        raise ApiError('Statuspage answered HTTP %s to %s %s: %s%s'
                       % (response.status, method, self.http.url_for(path),
                          summarise_body(payload, response),
                          ': %s' % HINTS[response.status] if response.status in HINTS else ''),
                       response.status, payload)


def state(incident: dict[str, Any]) -> dict[str, Any]:
    """What the module compares: name, status, the latest update's body, impact_override and the
    statuses of the incident's components."""
    updates = incident.get('incident_updates') or []
    latest: dict[str, Any] = max(updates, key=lambda update: update.get('created_at') or '', default={})
    return {
        'name': incident.get('name'),
        'status': incident.get('status'),
        'body': latest.get('body'),
        'impact_override': incident.get('impact_override'),
        'components': {c['id']: c.get('status') for c in incident.get('components') or []},
    }


def changes(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The incident fields to send so that it has what is wanted; {} when it already has it.

    component_ids lists every component of the incident, so that an update never drops one."""
    fields = {key: wanted[key] for key in ('status', 'body', 'impact_override')
              if wanted.get(key) is not None and wanted[key] != current.get(key)}
    components = {cid: status for cid, status in (wanted.get('components') or {}).items()
                  if current['components'].get(cid) != status}
    if components:
        fields['components'] = components
        fields['component_ids'] = sorted(set(current['components']) | set(components))
    return fields


def summary(incident: dict[str, Any]) -> dict[str, Any]:
    return {key: incident.get(key) for key in ('id', 'name', 'status', 'shortlink', 'updated_at')}


def ensure(client: StatuspageClient, p: Mapping[str, Any], check_mode: bool, warn: Callable[[str], Any]) -> dict[str, Any]:
    """Creates or updates the incident p asks for; returns the module's result, changed only when
    a POST or PATCH was sent (in check mode: would be)."""
    bad = sorted('%s: %s' % kv for kv in (p['components'] or {}).items()
                 if kv[1] not in COMPONENT_STATUSES)
    if bad:
        raise ValueError('invalid component statuses (%s): use one of %s'
                         % (', '.join(bad), ', '.join(COMPONENT_STATUSES)))
    wanted = {key: p[key] for key in ('status', 'body', 'impact_override', 'components')}
    if p['incident_id']:
        incident = client.call('GET', client.path(p['incident_id']))
    else:
        incident = next((i for i in client.call('GET', client.incidents + '/unresolved')
                         if i.get('name') == p['name']), None)
    if incident is None and p['status'] == 'resolved':
        warn('no unresolved incident named %r on the page: nothing to resolve' % p['name'])
        return {'changed': False, 'created': False, 'incident': None, 'request': None}

    if incident is None:
        before: dict[str, Any] = {}
        fields = {key: value for key, value in wanted.items() if value is not None}
        fields.update(name=p['name'], status=p['status'] or 'investigating')
        if p['components']:
            fields['component_ids'] = sorted(p['components'])
        method, path = 'POST', client.incidents
    else:
        before = state(incident)
        fields = changes(before, wanted)
        if not fields:
            return {'changed': False, 'created': False, 'incident': summary(incident),
                    'request': None}
        method, path = 'PATCH', client.path(incident['id'])
    shown = ('name', 'status', 'body', 'impact_override')
    after = dict(before, **{key: value for key, value in fields.items() if key in shown})
    after['components'] = dict(before.get('components') or {}, **(fields.get('components') or {}))
    fields['deliver_notifications'] = p['deliver_notifications']
    body = {'incident': fields}
    if check_mode:
        incident = dict(incident or {}, name=after['name'], status=after['status'])
    else:
        incident = client.call(method, path, body)
    return {'changed': True, 'created': method == 'POST', 'incident': summary(incident),
            'request': {'method': method, 'url': client.http.url_for(path), 'body': body},
            'diff': {'before': before, 'after': after}}

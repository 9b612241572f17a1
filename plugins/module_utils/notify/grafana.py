# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana annotations (HTTP API, /api/annotations): find one by its tags and time, create it, and
patch its text or end, idempotently.

A service account token goes in the header `Authorization: Bearer <token>` (or basic auth). Times
are epoch milliseconds; a point is stored with timeEnd equal to time. Grafana stores a tag trimmed
and as its first two `key:value` parts, and searches by them. Errors answer {"message": "..."}
with 401 (token), 403 (a permission, named in the message under RBAC), 404 or 400 for an unknown
dashboard UID, and 400 for a refused value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, decode_json, summarise_body
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import resolve_time

PATH = '/api/annotations'
# An annotation already there is searched for this many milliseconds either side of its time.
WINDOW_MS = 1000
# The RBAC action each call needs, named when Grafana's 403 does not name one.
PERMISSIONS = {'GET': 'annotations:read', 'POST': 'annotations:create', 'PATCH': 'annotations:write'}


def hint(status: int, method: str, said: str) -> str:
    """What to check after an answer that is not a 2xx JSON one."""
    if status < 300:
        return "check url: Grafana's API answers JSON"
    if 'dashboard' in said.lower() and status in (400, 404):
        return "check dashboard_uid: the UID in the dashboard's URL (/d/<uid>/...)"
    if status == 401:
        return ('check bearer_token (token): a service account token, sent as "Authorization: Bearer <token>", '
                'or username and password')
    if status == 403:
        needed = re.search(r'Permissions needed: (.+?)\.?$', said)
        return ("give the service account %s (the Editor role has it) on the dashboard or the organization"
                % (needed.group(1).strip() if needed else PERMISSIONS[method]))
    if status == 404:
        return "check url: Grafana's root URL, with its sub path when it is served under one"
    if status == 400:
        return 'check time, time_end, tags and text'
    return "see Grafana's server log"


class GrafanaClient:
    """The annotations of one Grafana organization (the token's)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def call(self, method: str, path: str, query: list[tuple[str, Any]] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        """The JSON answer of a 2xx, else ApiError naming the status, Grafana's message and what to check.
        query: (name, value) pairs, a name repeated for each of its values (tags)."""
        response = self.http.request(method, path + ('?' + urlencode(query) if query else ''), json_body=body)
        payload = decode_json(response)
        if 200 <= response.status < 300 and payload is not None:
            return payload
        said = summarise_body(payload, response)
        raise ApiError('Grafana answered HTTP %s to %s %s: %s: %s'
                       % (response.status, method, self.http.url_for(path), said, hint(response.status, method, said)),
                       response.status, payload)


def grafana_tags(tags: list[str]) -> list[str]:
    """The tags as Grafana stores them: trimmed, `key:value` with its parts trimmed, each once.
    ValueError for an empty tag, or one of three parts (Grafana would keep only two)."""
    stored: list[str] = []
    for tag in tags:
        parts = [part.strip(' ') for part in tag.split(':')]
        if not parts[0] or len(parts) > 2:
            raise ValueError('tag %r: give a word or key:value with one colon, as Grafana stores tags' % tag)
        joined = ':'.join(parts) if len(parts) == 2 and parts[1] else parts[0]
        if joined not in stored:
            stored.append(joined)
    return stored


def wanted_of(p: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The annotation p asks for, as Grafana's POST body (times in epoch milliseconds; a point has
    no timeEnd). ValueError for an unreadable time, a region that ends before it starts, no tag or
    no text."""
    start = int(round(resolve_time(p['time'], now) * 1000))
    end = int(round(resolve_time(p['time_end'], now) * 1000)) if p['time_end'] else None
    if end is not None and end < start:
        raise ValueError('time_end (%s) is before time (%s)' % (p['time_end'], p['time']))
    tags = grafana_tags(p['tags'])
    if not tags:
        raise ValueError("tags is empty: give at least one; the dashboards' annotation queries select by tag")
    if not p['text'].strip():
        raise ValueError('text is empty: Grafana refuses an annotation without text')
    body: dict[str, Any] = {}
    if p['dashboard_uid']:
        body['dashboardUID'] = p['dashboard_uid']
    if p['panel_id'] is not None:
        body['panelId'] = p['panel_id']
    body['time'] = start
    if end is not None and end != start:
        body['timeEnd'] = end
    body.update(tags=tags, text=p['text'])
    return body


def state(annotation: Mapping[str, Any]) -> dict[str, Any]:
    """An annotation (Grafana's fields) as the module returns it; time_end None for a point."""
    end = annotation.get('timeEnd') or annotation['time']
    return {'id': annotation.get('id'), 'dashboard_uid': annotation.get('dashboardUID') or None,
            'panel_id': annotation.get('panelId') or None, 'time': annotation['time'],
            'time_end': None if end == annotation['time'] else end,
            'tags': list(annotation.get('tags') or []), 'text': annotation.get('text')}


def is_same(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """found is the annotation wanted, whatever its text and end: the same time and tag set, and
    the same panel of the dashboard searched (or, without one, no dashboard)."""
    if 'dashboardUID' not in wanted and (found.get('dashboardUID') or found.get('dashboardId')):
        return False
    return (found.get('time') == wanted['time'] and set(found.get('tags') or []) == set(wanted['tags'])
            and (found.get('panelId') or None) == wanted.get('panelId'))


def find(client: GrafanaClient, wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """The annotation wanted already there (the lowest id if several), or None."""
    query: list[tuple[str, Any]] = [('from', wanted['time'] - WINDOW_MS), ('to', wanted['time'] + WINDOW_MS)]
    query += [('tags', tag) for tag in wanted['tags']]
    query += [('matchAny', 'false'), ('limit', 100), ('type', 'annotation')]
    if 'dashboardUID' in wanted:
        query.append(('dashboardUID', wanted['dashboardUID']))
    found = client.call('GET', PATH, query)
    if not isinstance(found, list):
        raise ApiError('Grafana answered GET %s with %s, not a list of annotations: check url'
                       % (client.http.url_for(PATH), type(found).__name__))
    same = [a for a in found if isinstance(a, dict) and is_same(a, wanted)]
    return min(same, key=lambda a: a.get('id') or 0, default=None)


def ensure(client: GrafanaClient, wanted: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Creates the annotation wanted, or patches the text and end of the one there; returns the
    module's result, changed only when a POST or PATCH was sent (in check mode: would be)."""
    found = find(client, wanted)
    if found is None:
        before: dict[str, Any] = {}
        after = state(wanted)
        method, path, body = 'POST', PATH, wanted
    else:
        before = state(found)
        after = dict(before, text=wanted['text'], time_end=state(wanted)['time_end'])
        body = {}
        if after['text'] != before['text']:
            body['text'] = wanted['text']
        if after['time_end'] != before['time_end']:
            body['timeEnd'] = wanted.get('timeEnd', wanted['time'])
        if not body:
            return {'changed': False, 'created': False, 'annotation': before, 'request': None}
        method, path = 'PATCH', '%s/%s' % (PATH, found['id'])
    if not check_mode:
        answer = client.call(method, path, body=body)
        if method == 'POST':
            after['id'] = answer.get('id') if isinstance(answer, dict) else None
    return {'changed': True, 'created': method == 'POST', 'annotation': after,
            'request': {'method': method, 'url': client.http.url_for(path), 'body': body},
            'diff': {'before': before, 'after': after}}

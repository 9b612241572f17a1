# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.trace_search_info: a service's failing or slow traces from the Jaeger query API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.traces import build_query, describe, summarise
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, decode_json, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, iso, parse_duration

PATH = '/api/traces'

SPEC = endpoint_spec(
    service=dict(type='str', required=True),
    operation=dict(type='str'),
    tags=dict(type='dict', default={'error': 'true'}),
    lookback=dict(type='str', default='15m'),
    limit=dict(type='int', default=100),
    min_duration=dict(type='str'),
    slow_ms=dict(type='float', default=1000.0),
)


def jaeger_messages(payload: Any) -> list[str]:
    """The msg of each entry of a Jaeger answer's `errors`."""
    errors = payload.get('errors') if isinstance(payload, dict) else None
    return [str(e.get('msg') if isinstance(e, dict) else e) for e in errors or []]


def search(http: HttpClient, params: dict[str, str]) -> tuple[list[Any], list[Any]]:
    """Jaeger's data and errors; ApiError saying what came back when it is not a search answer."""
    response = http.request('GET', PATH, query=params)
    url = http.url_for(PATH)
    payload = decode_json(response)
    messages = jaeger_messages(payload)
    if not 200 <= response.status < 300 and messages:
        hint = (': check the parameters in query' if response.status == 400 else
                ': Jaeger could not read its span storage; check jaeger-query logs and the storage '
                'backend (Elasticsearch, Cassandra, Badger)')
        raise ApiError('Jaeger at %s answered HTTP %s: %s%s'
                       % (url, response.status, '; '.join(messages), hint), response.status, payload)
    payload = http.expect_json(response, url)
    if not isinstance(payload, dict) or not isinstance(payload.get('data', 0), (list, type(None))):
        raise ApiError('%s answered JSON that is not a Jaeger search answer (no "data" list of '
                       'traces): is the URL the Jaeger query service (port 16686, with its base '
                       'path)?' % url)
    errors = payload.get('errors') or []
    return payload.get('data') or [], errors if isinstance(errors, list) else [errors]


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    try:
        lookback = parse_duration(p['lookback'])
        min_duration = parse_duration(p['min_duration']) if p['min_duration'] else None
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    if lookback <= 0:
        raise RunbookError('invalid option: lookback %r must be a positive duration'
                           % p['lookback'])
    if p['limit'] < 1:
        raise RunbookError('invalid option: limit must be at least 1, got %d' % p['limit'])
    if p['slow_ms'] <= 0:
        raise RunbookError('invalid option: slow_ms must be above 0, got %s' % p['slow_ms'])
    end_us = int(time.time() * 1e6)
    start_us = end_us - int(lookback * 1e6)
    params = build_query(p['service'], start_us, end_us, p['limit'], operation=p['operation'],
                         tags=p['tags'], min_duration=min_duration)
    http = HttpClient.from_params(p, 'Jaeger')
    try:
        traces, errors = search(http, params)
    except ApiError as err:
        raise RunbookError(str(err), query=params)
    traces = [t for t in traces if isinstance(t, dict)]
    summary = summarise(traces, p['service'], p['slow_ms'])
    for error in errors:
        warn('Jaeger reported an error with its answer, the traces may be incomplete: %s'
             % (error.get('msg') if isinstance(error, dict) else error))
    summary['message'] = describe(summary, p['service'], format_duration(lookback))
    return dict(query=params, start_iso=iso(start_us / 1e6), end_iso=iso(end_us / 1e6),
                limit_reached=len(traces) >= p['limit'], jaeger_errors=errors,
                partial=bool(errors), **summary)

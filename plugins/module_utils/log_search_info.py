# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.log_search_info: a service's error logs in a window, and its top error messages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.log_patterns import LEVELS, RANK, analyse, normalise_level
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ENDPOINT_ARGS, ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, point_in_time
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import DOCKER_ARGS
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS
from ansible_collections.sre.runbooks.plugins.module_utils.logs.readers import BACKENDS, Window

SPEC = dict(
    argument_spec=dict(
        ENDPOINT_ARGS,
        url=dict(type='str'),
        backend=dict(type='str', required=True, choices=sorted(BACKENDS)),
        service=dict(type='str', required=True),
        since=dict(type='str', default='15m'),
        until=dict(type='str', default='now'),
        min_level=dict(type='str', default='ERROR'),
        match=dict(type='str'),
        limit=dict(type='int', default=50),
        top=dict(type='int', default=10),
        max_lines=dict(type='int', default=5000),
        query=dict(type='str'),
        index=dict(type='str', default='logs-*'),
        compose_project=dict(type='str'),
        namespace=dict(type='str', default='default'),
        selector=dict(type='str'),
        **DOCKER_ARGS, **K8S_ARGS
    ),
    required_if=[('backend', 'loki', ('url',)), ('backend', 'elasticsearch', ('url',)),
                 ('backend', 'kubernetes', ('selector',))],
)


def describe(service: str, result: dict[str, Any], scanned: int, since: float, until: float, min_level: str) -> str:
    head = '%s: %d lines at %s or above, or 5xx, of %d read between %s and %s' % (
        service, result['matched'], min_level, scanned, iso(since), iso(until))
    if not result['top_messages']:
        return head
    first = result['top_messages'][0]
    where = ''
    if first['endpoints']:
        where = ' on ' + ', '.join(sorted(first['endpoints'], key=lambda e: -first['endpoints'][e])[:3])
    return "%s; top: '%s' x%d (%s%%)%s" % (head, first['pattern'], first['count'],
                                           first['percent'], where)


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    now = time.time()
    try:
        since = point_in_time(p['since'], now)
        until = point_in_time(p['until'], now)
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    if since >= until:
        raise RunbookError('since (%s, %s) must be before until (%s, %s)'
                           % (p['since'], iso(since), p['until'], iso(until)))
    min_level = normalise_level(p['min_level'])
    if min_level is None:
        raise RunbookError('min_level %r is not a level: use one of %s'
                           % (p['min_level'], ', '.join(LEVELS)))
    for name, least in (('limit', 0), ('top', 0), ('max_lines', 1)):
        if p[name] < least:
            raise RunbookError('%s must be at least %d, not %d' % (name, least, p[name]))
    try:
        match = re.compile(p['match'], re.IGNORECASE) if p['match'] else None
    except re.error as err:
        raise RunbookError('match %r is not a valid regular expression: %s' % (p['match'], err))
    if p['backend'] in ('docker', 'kubernetes') and p['query']:
        warn('query is ignored by the %s backend, which reads every line; use match '
             'and min_level to select lines' % p['backend'])

    window = Window(p['service'], since, until, now, p['max_lines'], min_level)
    try:
        fetched = BACKENDS[p['backend']](p, window)
    except ApiError as err:
        raise RunbookError('log_search (%s) for %s failed: %s' % (p['backend'], p['service'], err),
                           backend=p['backend'], service=p['service'])

    result = analyse(fetched.records, since, until, RANK[min_level], match, p['limit'], p['top'])
    for warning in fetched.warnings:
        warn(warning)
    result.update(fetched.details)
    return dict(
        backend=p['backend'], service=p['service'], since=since,
        since_iso=iso(since), until=until, until_iso=iso(until), min_level=min_level,
        query=fetched.query, scanned=fetched.scanned, truncated=fetched.truncated,
        partial=fetched.partial, backend_warnings=fetched.warnings,
        summary=describe(p['service'], result, fetched.scanned, since, until, min_level),
        **result)

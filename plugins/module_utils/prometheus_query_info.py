# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.prometheus_query_info: one instant or range PromQL query."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, warn_partial

POINTS_PER_RANGE = 200

SPEC = endpoint_spec(
    query=dict(type='str', required=True),
    type=dict(type='str', choices=['instant', 'range'], default='instant'),
    time=dict(type='str'),
    start=dict(type='str', default='now-1h'),
    end=dict(type='str', default='now'),
    step=dict(type='str'),
    query_timeout=dict(type='str'),
    max_series=dict(type='int', default=500),
)


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    now = time.time()
    try:
        query_timeout = parse_duration(p['query_timeout']) if p['query_timeout'] else None
        if p['type'] == 'instant':
            at = resolve_time(p['time'], now) if p['time'] else None
        else:
            start, end = resolve_time(p['start'], now), resolve_time(p['end'], now)
            if end <= start:
                raise ValueError('end (%s) must be after start (%s)' % (p['end'], p['start']))
            step = parse_duration(p['step']) if p['step'] else \
                max(1.0, round((end - start) / POINTS_PER_RANGE))
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)

    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    try:
        if p['type'] == 'instant':
            result = client.query(p['query'], at=at, timeout=query_timeout)
        else:
            result = client.query_range(p['query'], start, end, step, timeout=query_timeout)
    except ApiError as err:
        raise RunbookError(str(err), status=err.status)
    if len(result.series) > p['max_series']:
        raise RunbookError('the query returned %d series, more than max_series (%d): aggregate it (sum by (...)), '
                           'narrow its selector, or raise max_series' % (len(result.series), p['max_series']))
    warn_partial(warn, result.warnings)
    return result.as_dict()

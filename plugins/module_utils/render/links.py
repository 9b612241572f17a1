# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links to the incident's time range in the tools people open: Prometheus' graph of the error
rate the triage measured, and the Grafana dashboard of the service. Pure: the URLs are built,
never fetched."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment

# Before the errors began and after the last moment told, so that the graph shows both sides.
MARGIN_SECONDS = 300


def incident_range(incident: dict[str, Any], now: float) -> tuple[float, float] | None:
    """(start, end) epoch of the incident's graph: from MARGIN_SECONDS before the onset (else the
    run's start) to MARGIN_SECONDS after now; None when neither is known."""
    rate = ((incident.get('triage') or {}).get('error_rate') or {})
    onset = rate.get('onset') if isinstance(rate.get('onset'), (int, float)) else None
    started = moment(incident.get('started_at'))
    begin = onset if onset is not None else started.timestamp() if started else None
    if begin is None:
        return None
    return begin - MARGIN_SECONDS, max(now, begin) + MARGIN_SECONDS


def prometheus_graph(base_url: str | None, incident: dict[str, Any], now: float | None = None) -> str | None:
    """The Prometheus graph of the service's error rate (percent) over the incident, or None
    without a URL, the triage's queries or a time range."""
    queries = (((incident.get('triage') or {}).get('error_rate') or {}).get('queries') or {})
    span = incident_range(incident, time.time() if now is None else now)
    if not base_url or not queries.get('errors_overall') or not queries.get('total_overall') or span is None:
        return None
    start, end = span
    expr = '100 * (%s) / (%s)' % (queries['errors_overall'], queries['total_overall'])
    return '%s/graph?%s' % (base_url.rstrip('/'), urlencode({
        'g0.expr': expr, 'g0.tab': '0', 'g0.range_input': '%ds' % round(end - start),
        'g0.end_input': time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(end))}))


def grafana_dashboard(base_url: str | None, uid: str | None, incident: dict[str, Any], now: float | None = None) -> str | None:
    """The Grafana dashboard `uid` (extensions/grafana's) for the service over the incident, or
    None without a URL, a dashboard or a time range."""
    span = incident_range(incident, time.time() if now is None else now)
    if not base_url or not uid or span is None:
        return None
    return '%s/d/%s?%s' % (base_url.rstrip('/'), uid, urlencode({
        'from': int(span[0] * 1000), 'to': int(span[1] * 1000), 'var-service': incident.get('service') or ''}))

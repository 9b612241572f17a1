# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links to the incident's time range in the tools people open: Prometheus' graph of the symptom
the triage measured (the error rate, or the highest quantile of the response time for a High
Response Time incident), and the Grafana dashboard of the service. Pure: the URLs are built, never
fetched."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment

# Before the errors began and after the last moment told, so that the graph shows both sides.
MARGIN_SECONDS = 300


def _latency(incident: dict[str, Any]) -> dict[str, Any] | None:
    """The triage's response time (latency_info's result) of a High Response Time incident, else None."""
    if incident.get('symptom') != 'latency':
        return None
    return (incident.get('triage') or {}).get('latency') or {}


def incident_range(incident: dict[str, Any], now: float) -> tuple[float, float] | None:
    """(start, end) epoch of the incident's graph: from MARGIN_SECONDS before the onset (the
    slowdown's for the response time, else the errors'; else the run's start) to MARGIN_SECONDS
    after now; None when neither is known."""
    triage = incident.get('triage') or {}
    onsets = [(_latency(incident) or {}).get('onset'), (triage.get('error_rate') or {}).get('onset')]
    onset = next((o for o in onsets if isinstance(o, (int, float)) and not isinstance(o, bool)), None)
    started = moment(incident.get('started_at'))
    begin = onset if onset is not None else started.timestamp() if started else None
    if begin is None:
        return None
    return begin - MARGIN_SECONDS, max(now, begin) + MARGIN_SECONDS


def graph_expression(incident: dict[str, Any]) -> tuple[str, str] | None:
    """(PromQL, what it shows) of the incident's symptom, from the queries the triage ran: for a
    High Response Time incident, the whole service's highest quantile (histogram_quantile over its
    latency histogram and labels, `<verdict_quantile>_overall`); else its error rate in percent.
    None without those queries."""
    latency = _latency(incident)
    if latency is not None:
        name = latency.get('verdict_quantile') or 'p99'
        expr = (latency.get('queries') or {}).get(name + '_overall')
        return (expr, '%s response time in Prometheus' % name) if expr else None
    queries = (((incident.get('triage') or {}).get('error_rate') or {}).get('queries') or {})
    if not queries.get('errors_overall') or not queries.get('total_overall'):
        return None
    return '100 * (%s) / (%s)' % (queries['errors_overall'], queries['total_overall']), 'error rate in Prometheus'


def graph_words(incident: dict[str, Any]) -> str:
    """What the link of prometheus_graph() shows: 'error rate in Prometheus', 'p99 response time
    in Prometheus'."""
    found = graph_expression(incident)
    return found[1] if found else 'error rate in Prometheus'


def prometheus_graph(base_url: str | None, incident: dict[str, Any], now: float | None = None) -> str | None:
    """The Prometheus graph of the incident's symptom (graph_expression(): the error rate in
    percent, or the highest quantile of the response time in seconds) over the incident, or None
    without a URL, the triage's queries or a time range."""
    found = graph_expression(incident)
    span = incident_range(incident, time.time() if now is None else now)
    if not base_url or found is None or span is None:
        return None
    start, end = span
    expr = found[0]
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

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus HTTP API client (also Thanos, Mimir, Cortex, VictoriaMetrics) and its data shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, decode_json

# Longer queries go as a form-encoded POST, which every Prometheus-API backend accepts.
MAX_GET_QUERY = 1500


def parse_sample(raw: str | float) -> float | None:
    """A sample value as a float, or None for NaN and +/-Inf (not usable as evidence)."""
    value = float(raw)
    return value if math.isfinite(value) else None


def normalise(data: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """Turns a Prometheus `data` object into (result_type, series).

    Each series is {labels, value, raw} for vectors and scalars, {labels, values: [[t, v]]}
    for matrices; non-finite samples become None and are counted in `nonfinite`.
    """
    result_type = data.get('resultType')
    result = data.get('result')
    if result_type in ('scalar', 'string'):
        result = [{'metric': {}, 'value': result}]
    series: list[dict[str, Any]] = []
    for item in result or []:
        labels = item.get('metric') or {}
        if 'values' in item:
            values = [[float(t), parse_sample(v)] for t, v in item['values']]
            series.append({'labels': labels, 'values': values,
                           'nonfinite': sum(1 for _time, v in values if v is None)})
        else:
            t, raw = item['value']
            value = raw if result_type == 'string' else parse_sample(raw)
            series.append({'labels': labels, 'time': float(t), 'value': value, 'raw': raw})
    return result_type, series


class QueryResult:
    def __init__(self, query: str, result_type: str | None, series: list[dict[str, Any]], warnings: list[Any],
                 infos: list[Any]) -> None:
        self.query = query
        self.result_type = result_type
        self.series = series
        self.warnings = warnings
        self.infos = infos

    def as_dict(self) -> dict[str, Any]:
        return {'query': self.query, 'result_type': self.result_type, 'series': self.series,
                'query_warnings': self.warnings, 'infos': self.infos, 'partial': bool(self.warnings)}


def warn_partial(warn: Callable[[str], Any], warnings: list[Any]) -> None:
    """Shows the server's warnings to the person running the play: the data may be partial."""
    for text in warnings:
        warn('Prometheus sent a warning, the data may be partial: %s' % text)


class PrometheusClient:
    """Instant and range queries; every failure becomes an ApiError that names its cause."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def query(self, promql: str, at: float | None = None, timeout: float | None = None) -> QueryResult:
        params = {'query': promql}
        if at is not None:
            params['time'] = '%.3f' % at
        return self._call('/api/v1/query', params, timeout)

    def query_range(self, promql: str, start: float, end: float, step: float, timeout: float | None = None) -> QueryResult:
        params = {'query': promql, 'start': '%.3f' % start, 'end': '%.3f' % end,
                  'step': '%gs' % step}
        return self._call('/api/v1/query_range', params, timeout)

    def labels(self, match: str, start: float, end: float, timeout: float | None = None) -> tuple[list[str], list[Any]]:
        """Label names of the series that `match` selects between start and end (Prometheus
        2.24 or later honours match[]; an older one answers every label name it holds)."""
        return self._names('/api/v1/labels', match, start, end, timeout)

    def label_values(self, name: str, match: str, start: float, end: float,
                     timeout: float | None = None) -> tuple[list[str], list[Any]]:
        """Values of label `name` on the series that `match` selects between start and end."""
        return self._names('/api/v1/label/%s/values' % quote(name, safe=''), match, start, end,
                           timeout)

    def _names(self, path: str, match: str, start: float, end: float, timeout: float | None) -> tuple[list[str], list[Any]]:
        params = {'match[]': match, 'start': '%.3f' % start, 'end': '%.3f' % end}
        payload = self._payload(path, params, match, timeout)
        data = payload['data']
        if not isinstance(data, list):
            raise ApiError('%s answered %s where a list of names was expected: is the URL the '
                           'Prometheus base URL?' % (self.http.url_for(path), type(data).__name__))
        warnings = list(payload.get('warnings') or [])
        return sorted(str(item) for item in data), warnings

    def _call(self, path: str, params: dict[str, str], timeout: float | None) -> QueryResult:
        payload = self._payload(path, params, params['query'], timeout)
        if not isinstance(payload['data'], dict):
            raise ApiError('%s answered a Prometheus response whose data is not a query result: is '
                           'the URL the Prometheus base URL?' % self.http.url_for(path))
        result_type, series = normalise(payload['data'])
        return QueryResult(params['query'], result_type, series,
                           list(payload.get('warnings') or []), list(payload.get('infos') or []))

    def _payload(self, path: str, params: dict[str, str], what: str, timeout: float | None) -> dict[str, Any]:
        """The success envelope of one API call; `what` (the query or selector) names it in errors."""
        if timeout:
            params['timeout'] = '%gs' % timeout
        if len(what) > MAX_GET_QUERY:
            response = self.http.request('POST', path, form=params)
        else:
            response = self.http.request('GET', path, query=params)
        url = self.http.url_for(path)
        payload = decode_json(response)
        if isinstance(payload, dict) and payload.get('status') == 'error':
            hint = (' Raise query_timeout or narrow the query (shorter range, fewer series).'
                    if payload.get('errorType') == 'timeout' else '')
            raise ApiError('Prometheus at %s rejected the query with %s (HTTP %s): %s.%s Query: %s'
                           % (url, payload.get('errorType', 'an error'), response.status,
                              payload.get('error', 'no message'), hint, what),
                           response.status, payload)
        payload = self.http.expect_json(response, url)
        if not isinstance(payload, dict) or payload.get('status') != 'success' \
                or 'data' not in payload:
            raise ApiError('%s answered JSON that is not a Prometheus API response (no '
                           '"status": "success" with "data"): is the URL the Prometheus base URL '
                           '(e.g. http://host:9090, or the /prometheus prefix of Mimir)?' % url)
        return payload

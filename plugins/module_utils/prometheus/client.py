# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus HTTP API client (also Thanos, Mimir, Cortex, VictoriaMetrics) and its data shapes."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.http_client import ApiError, decode_json

# Longer queries go as a form-encoded POST, which every Prometheus-API backend accepts.
MAX_GET_QUERY = 1500

_DURATION_RE = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)')
_DURATION_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800,
                   'y': 31536000}
_RELATIVE_RE = re.compile(r'^now(?:\s*-\s*(\S+))?$')


def parse_duration(text):
    """Seconds in a Prometheus duration such as '30s', '5m' or '1h30m'."""
    text = str(text).strip()
    if re.fullmatch(r'\d+(\.\d+)?', text):
        return float(text)
    parts = _DURATION_RE.findall(text)
    if not text or ''.join(n + u for n, u in parts) != text:
        raise ValueError("'%s' is not a duration: use a number of seconds or units ms, s, m, h, "
                         "d, w, y as in '30s', '5m', '1h30m'" % text)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def format_duration(seconds):
    """The shortest Prometheus duration for whole seconds: 90 -> '90s', 300 -> '5m'."""
    seconds = int(round(seconds))
    for unit, size in (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size and seconds % size == 0:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % seconds


def human_duration(seconds):
    """A duration for people, in the largest unit that makes it at least 2, rounded: 372 ->
    '6 minutes', 2592000 -> '30 days', 1 -> '1 second'."""
    for unit, size in (('day', 86400), ('hour', 3600), ('minute', 60)):
        if seconds >= 2 * size:
            count = int(round(seconds / float(size)))
            return '%d %ss' % (count, unit)
    count = int(round(seconds))
    return '%d second%s' % (count, '' if count == 1 else 's')


def resolve_time(value, now):
    """Epoch seconds for an epoch number, 'now', 'now-15m' or an RFC 3339 timestamp."""
    if value is None:
        return now
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = _RELATIVE_RE.match(text)
    if match:
        return now - (parse_duration(match.group(1)) if match.group(1) else 0)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError("'%s' is not a time: use epoch seconds, 'now', 'now-15m' or RFC 3339 "
                         "such as '2026-11-23T14:23:00Z'" % text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def point_in_time(value, now):
    """Epoch seconds of '15m' (back from now), 'now', 'now-15m', epoch seconds or RFC 3339."""
    text = str(value).strip()
    if _DURATION_RE.findall(text) and ''.join(n + u for n, u in _DURATION_RE.findall(text)) == text:
        return now - parse_duration(text)
    return resolve_time(text, now)


def iso(epoch):
    """RFC 3339 UTC text for epoch seconds, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec='seconds').replace('+00:00', 'Z')


def parse_sample(raw):
    """A sample value as a float, or None for NaN and +/-Inf (not usable as evidence)."""
    value = float(raw)
    return value if math.isfinite(value) else None


def normalise(data):
    """Turns a Prometheus `data` object into (result_type, series).

    Each series is {labels, value, raw} for vectors and scalars, {labels, values: [[t, v]]}
    for matrices; non-finite samples become None and are counted in `nonfinite`.
    """
    result_type = data.get('resultType')
    result = data.get('result')
    if result_type in ('scalar', 'string'):
        result = [{'metric': {}, 'value': result}]
    series = []
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
    def __init__(self, query, result_type, series, warnings, infos):
        self.query = query
        self.result_type = result_type
        self.series = series
        self.warnings = warnings
        self.infos = infos

    def as_dict(self):
        return {'query': self.query, 'result_type': self.result_type, 'series': self.series,
                'query_warnings': self.warnings, 'infos': self.infos, 'partial': bool(self.warnings)}


def warn_partial(warn, warnings):
    """Shows the server's warnings to the person running the play: the data may be partial."""
    for text in warnings:
        warn('Prometheus sent a warning, the data may be partial: %s' % text)


class PrometheusClient:
    """Instant and range queries; every failure becomes an ApiError that names its cause."""

    def __init__(self, http):
        self.http = http

    def query(self, promql, at=None, timeout=None):
        params = {'query': promql}
        if at is not None:
            params['time'] = '%.3f' % at
        return self._call('/api/v1/query', params, timeout)

    def query_range(self, promql, start, end, step, timeout=None):
        params = {'query': promql, 'start': '%.3f' % start, 'end': '%.3f' % end,
                  'step': '%gs' % step}
        return self._call('/api/v1/query_range', params, timeout)

    def labels(self, match, start, end, timeout=None):
        """Label names of the series that `match` selects between start and end (Prometheus
        2.24 or later honours match[]; an older one answers every label name it holds)."""
        return self._names('/api/v1/labels', match, start, end, timeout)

    def label_values(self, name, match, start, end, timeout=None):
        """Values of label `name` on the series that `match` selects between start and end."""
        return self._names('/api/v1/label/%s/values' % quote(name, safe=''), match, start, end,
                           timeout)

    def _names(self, path, match, start, end, timeout):
        params = {'match[]': match, 'start': '%.3f' % start, 'end': '%.3f' % end}
        payload = self._payload(path, params, match, timeout)
        data = payload['data']
        if not isinstance(data, list):
            raise ApiError('%s answered %s where a list of names was expected: is the URL the '
                           'Prometheus base URL?' % (self.http.url_for(path), type(data).__name__))
        warnings = list(payload.get('warnings') or [])
        return sorted(str(item) for item in data), warnings

    def _call(self, path, params, timeout):
        payload = self._payload(path, params, params['query'], timeout)
        if not isinstance(payload['data'], dict):
            raise ApiError('%s answered a Prometheus response whose data is not a query result: is '
                           'the URL the Prometheus base URL?' % self.http.url_for(path))
        result_type, series = normalise(payload['data'])
        return QueryResult(params['query'], result_type, series,
                           list(payload.get('warnings') or []), list(payload.get('infos') or []))

    def _payload(self, path, params, what, timeout):
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

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failing traces summarised: where the errors sit, slow external calls, the suspect dependency.

Pure functions over traces shaped as the Jaeger query API returns them (GET /api/traces):
{traceID, spans: [{spanID, operationName, references, startTime, duration (µs), tags: [{key, type,
value}], logs: [{timestamp, fields}], processID}], processes: {pN: {serviceName, tags}}}.
Jaeger omits empty references, tags and logs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

MESSAGE_TAGS = ('error.message', 'otel.status_description', 'exception.message')
LOG_MESSAGE_FIELDS = ('message', 'error.object', 'error.message', 'exception.message', 'msg')
PEER_TAGS = ('peer.service', 'server.address', 'net.peer.name', 'peer.hostname', 'http.host',
             'net.peer.ip', 'peer.address')
STATUS_TAGS = ('http.status_code', 'http.response.status_code', 'rpc.grpc.status_code')
TIMEOUT_RE = re.compile(r'time[d\s_-]*out|deadline', re.IGNORECASE)
MAX_TRACE_IDS = 5
MAX_MESSAGE = 300


def tags_param(tags: Mapping[str, Any] | None) -> str:
    """The `tags` query parameter: a JSON object of strings (Jaeger rejects other JSON types)."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return 'true' if value else 'false'
        return '%s' % value
    return json.dumps({str(k): text(v) for k, v in sorted((tags or {}).items())},
                      separators=(',', ':'))


def go_duration(seconds: float) -> str:
    """A duration Jaeger parses (Go time.ParseDuration): whole milliseconds, else microseconds."""
    micros = int(round(seconds * 1e6))
    return '%dms' % (micros // 1000) if micros % 1000 == 0 else '%dus' % micros


def build_query(service: str, start_us: float, end_us: float, limit: int, operation: str | None = None,
                tags: Mapping[str, Any] | None = None, min_duration: float | None = None) -> dict[str, str]:
    """The query parameters of GET /api/traces; start and end in microseconds since the epoch."""
    params = {'service': service, 'start': '%d' % start_us, 'end': '%d' % end_us,
              'limit': '%d' % limit}
    if operation:
        params['operation'] = operation
    if tags:
        params['tags'] = tags_param(tags)
    if min_duration:
        params['minDuration'] = go_duration(min_duration)
    return params


def tag_map(items: list[Any] | None) -> dict[Any, Any]:
    return {item.get('key'): item.get('value') for item in items or [] if isinstance(item, dict)}


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == 'true')


def is_error(span: dict[str, Any], tags: dict[str, Any] | None = None) -> bool:
    tags = tag_map(span.get('tags')) if tags is None else tags
    return truthy(tags.get('error')) or str(tags.get('otel.status_code', '')).upper() == 'ERROR'


def _clip(text: Any) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + '...'


def span_message(span: dict[str, Any], tags: dict[str, Any] | None = None) -> str | None:
    """What went wrong in a span: an error tag, else an error log's message, else its status."""
    tags = tag_map(span.get('tags')) if tags is None else tags
    for key in MESSAGE_TAGS:
        if tags.get(key) not in (None, ''):
            return _clip(tags[key])
    fallback = None
    for log in span.get('logs') or []:
        fields = tag_map(log.get('fields'))
        event = str(fields.get('event', '')).lower()
        for key in LOG_MESSAGE_FIELDS:
            if fields.get(key) not in (None, ''):
                if event in ('error', 'exception'):
                    return _clip(fields[key])
                fallback = fallback or fields[key]
                break
    if fallback is not None:
        return _clip(fallback)
    for key in STATUS_TAGS:
        if tags.get(key) not in (None, ''):
            return 'status %s' % tags[key]
    return None


def _service(span: dict[str, Any], processes: dict[Any, Any]) -> str | None:
    process = processes.get(span.get('processID')) or span.get('process') or {}
    return process.get('serviceName') or None


def _parent(span: dict[str, Any]) -> str | None:
    for ref in span.get('references') or []:
        if ref.get('refType', 'CHILD_OF') in ('CHILD_OF', 'FOLLOWS_FROM') and ref.get('spanID'):
            return ref['spanID']
    return span.get('parentSpanID') or None


def _peer(tags: dict[str, Any]) -> str | None:
    for key in PEER_TAGS:
        if tags.get(key) not in (None, ''):
            return str(tags[key])
    url = tags.get('http.url') or tags.get('url.full')
    if url:
        match = re.match(r'^[a-z]+://([^/?#]+)', str(url))
        if match:
            return match.group(1)
    return None


def spans_of(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each span of a trace with what the summary needs: service, parent, tags, error, kind."""
    processes = trace.get('processes') or {}
    spans: dict[str, dict[str, Any]] = {}
    for span in trace.get('spans') or []:
        tags = tag_map(span.get('tags'))
        spans[span.get('spanID')] = {
            'span': span, 'id': span.get('spanID'), 'tags': tags,
            'service': _service(span, processes), 'operation': span.get('operationName'),
            'parent': _parent(span), 'error': is_error(span, tags),
            'client': str(tags.get('span.kind', '')).lower() == 'client' or 'peer.service' in tags,
            'duration_us': span.get('duration') or 0, 'children': [],
        }
    for info in spans.values():
        if info['parent'] in spans:
            spans[info['parent']]['children'].append(info['id'])
    return spans


def error_sources(spans: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The deepest error spans: error spans with no error span anywhere below them."""
    above_an_error: set[str] = set()
    for info in spans.values():
        if info['error']:
            parent = info['parent']
            while parent in spans and parent not in above_an_error:
                above_an_error.add(parent)
                parent = spans[parent]['parent']
    return [info for info in spans.values() if info['error'] and info['id'] not in above_an_error]


def callee(spans: dict[str, dict[str, Any]], info: dict[str, Any]) -> str | None:
    """Service that a client span called: its peer tag, else the service of a child span."""
    peer = _peer(info['tags'])
    if peer:
        return peer
    for child in info['children']:
        service = spans[child]['service']
        if service and service != info['service']:
            return service
    return None


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, int(math.ceil(share * len(ordered))) - 1)]


def summarise(traces: list[dict[str, Any]], service: str, slow_ms: float) -> dict[str, Any]:
    """Error sources, slow external calls and the suspect dependency over Jaeger traces."""
    sources: dict[tuple[Any, ...], dict[str, Any]] = {}
    slow: dict[tuple[Any, ...], dict[str, Any]] = {}
    blame: dict[str, int] = {}
    error_traces = error_spans = 0
    for trace in traces:
        trace_id = trace.get('traceID')
        spans = spans_of(trace)
        if any(info['error'] for info in spans.values()):
            error_traces += 1
        error_spans += sum(1 for info in spans.values() if info['error'])
        for info in error_sources(spans):
            message = span_message(info['span'], info['tags'])
            peer = callee(spans, info) if info['client'] else None
            key = (info['service'], info['operation'], message)
            entry = sources.setdefault(key, {
                'service': info['service'], 'operation': info['operation'], 'message': message,
                'peer': peer, 'count': 0, 'trace_count': 0, 'trace_ids': [], '_traces': set()})
            entry['count'] += 1
            if trace_id not in entry['_traces']:
                entry['_traces'].add(trace_id)
                entry['trace_count'] += 1
                if len(entry['trace_ids']) < MAX_TRACE_IDS:
                    entry['trace_ids'].append(trace_id)
            # A failing call whose callee left no span (down, refused) blames the callee.
            culprit = peer if peer and not info['children'] else info['service']
            if culprit:
                blame[culprit] = blame.get(culprit, 0) + 1
        for info in spans.values():
            if not info['client'] or info['duration_us'] < slow_ms * 1000.0:
                continue
            peer = callee(spans, info)
            key = (info['service'], info['operation'], peer)
            entry = slow.setdefault(key, {'service': info['service'],
                                          'operation': info['operation'], 'peer': peer,
                                          'count': 0, '_ms': [], 'timeouts': 0,
                                          'errors': 0, 'trace_ids': []})
            entry['count'] += 1
            entry['_ms'].append(info['duration_us'] / 1000.0)
            message = span_message(info['span'], info['tags'])
            if message and TIMEOUT_RE.search(message):
                entry['timeouts'] += 1
            if info['error']:
                entry['errors'] += 1
            if trace_id not in entry['trace_ids'] and len(entry['trace_ids']) < MAX_TRACE_IDS:
                entry['trace_ids'].append(trace_id)
    source_list: list[dict[str, Any]] = []
    for entry in sources.values():
        entry.pop('_traces')
        source_list.append(entry)
    source_list.sort(key=lambda e: (-e['count'], str(e['service']), str(e['operation']),
                                    str(e['message'])))
    slow_list: list[dict[str, Any]] = []
    for entry in slow.values():
        durations = entry.pop('_ms')
        entry['max_ms'] = round(max(durations), 1)
        entry['p95_ms'] = round(percentile(durations, 0.95), 1)
        slow_list.append(entry)
    slow_list.sort(key=lambda e: (-e['count'], -e['max_ms'], str(e['service'])))
    return {'traces': len(traces), 'error_traces': error_traces, 'error_spans': error_spans,
            'error_sources': source_list, 'slow_calls': slow_list,
            'error_services': dict(sorted(blame.items(), key=lambda kv: (-kv[1], kv[0]))),
            'dependency_suspect': suspect(blame, service)}


def suspect(blame: dict[str, int], service: str) -> str | None:
    """The service most errors are blamed on, when it is not the queried one (a tie with the
    queried service is no evidence against a dependency)."""
    if not blame:
        return None
    top = max(blame.values())
    leaders = sorted(name for name, count in blame.items() if count == top)
    if service in leaders:
        return None
    return leaders[0]


def describe(summary: dict[str, Any], service: str, lookback_text: str) -> str:
    """One sentence for the report."""
    if not summary['traces']:
        return 'no trace of %s matched in the last %s' % (service, lookback_text)
    text = '%d of %d traces of %s in the last %s have errors' % (
        summary['error_traces'], summary['traces'], service, lookback_text)
    if summary['error_sources']:
        top = summary['error_sources'][0]
        text += '; most errors sit in %s %s (%s, %d)' % (
            top['service'] or 'an unknown service', top['operation'],
            top['message'] or 'no message', top['count'])
    if summary['dependency_suspect']:
        text += '; suspect dependency: %s' % summary['dependency_suspect']
    if summary['slow_calls']:
        top = summary['slow_calls'][0]
        text += '; slowest external call %s -> %s: %d at up to %.0f ms' % (
            top['service'] or '?', top['peer'] or top['operation'], top['count'], top['max_ms'])
    return text

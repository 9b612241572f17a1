# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where log_search reads logs: one function per backend, each returning parsed records.

Every backend function takes the module parameters and a Window and returns a Fetched: all the
records it read (not yet filtered by level), how many lines it read, whether it stopped at
max_lines, and the backend's own warnings when its answer is partial. Failures raise ApiError,
already phrased for the reader: what failed, against which endpoint, and what to check.

Another backend is one more function `<name>_logs(params, window)` added to BACKENDS, plus its
choice and options in the module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.log_patterns import (
    FIELD_ALIASES,
    LEVELS,
    MAX_LINE,
    RANK,
    DockerLogDecoder,
    get_field,
    parse_line,
    parse_time,
    record_from_fields,
    records_from_entries,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, Response, decode_json
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import docker_client, list_containers
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8sError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.facts import never_started, pod_facts, restarted_containers
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader

DOCKER_CHUNK = 64 * 1024
# An `until` this close to now counts as now: the Engine then tails the newest lines and the few
# logged after `until` are dropped here (sent to the Engine, `until` would cut them from the tail
# and hide that the tail was full). The Engine applies `tail` before `since` and `until`, so for a
# window in the past the whole window is read instead, and its newest lines kept.
NOW_SLACK = 5.0
LOKI_PATH = '/loki/api/v1/query_range'

_LOGQL_LEVELS = {'TRACE': ('trace',), 'DEBUG': ('debug',), 'INFO': ('info', 'notice'),
                 'WARNING': ('warn', 'warning'), 'ERROR': ('error', 'err'),
                 'CRITICAL': ('critical', 'crit', 'fatal', 'panic')}
_ES_LEVELS = {'TRACE': ('TRACE',), 'DEBUG': ('DEBUG',), 'INFO': ('INFO',),
              'WARNING': ('WARNING', 'WARN'), 'ERROR': ('ERROR',),
              'CRITICAL': ('CRITICAL', 'FATAL')}
# Labels Loki adds for its own bookkeeping, never the source of a line.
_LOKI_NOISE = frozenset(('__error__', '__error_details__', 'detected_level'))


class Window:
    """What to read: the service, the time window (epoch seconds) and how much at most."""

    def __init__(self, service: str, since: float, until: float, now: float, max_lines: int, min_level: str) -> None:
        self.service = service
        self.since = since
        self.until = until
        self.now = now
        self.max_lines = max_lines
        self.min_level = min_level


class Fetched:
    """What a backend gave: records, lines read, whether max_lines cut the read, the query sent
    (None for docker), warnings that make the answer partial, and backend-specific details."""

    def __init__(self, records: list[dict[str, Any]], scanned: int, truncated: bool, query: str | None = None,
                 warnings: Iterable[str] = (), partial: bool | None = None, details: dict[str, Any] | None = None) -> None:
        self.records = records
        self.scanned = scanned
        self.truncated = truncated
        self.query = query
        self.warnings = list(warnings)
        self.partial = bool(self.warnings) if partial is None else partial
        self.details = details or {}


# --------------------------------------------------------------------------- docker

def _container_name(container: dict[str, Any]) -> str:
    names = container.get('Names') or []
    return names[0].lstrip('/') if names else container['Id'][:12]


def _multiplexed(response: Response) -> bool | None:
    content_type = response.content_type
    if content_type == 'application/vnd.docker.multiplexed-stream':
        return True
    if content_type == 'application/vnd.docker.raw-stream':
        return False
    return None  # API < 1.42 says neither: DockerLogDecoder tells from the first bytes


def read_container(client: HttpClient, container: dict[str, Any], window: Window,
                   tail: bool) -> tuple[list[tuple[float | None, str, str | None, str | None]], str | None]:
    """(entries, warning) of one container; entries are (time, text, source, stream)."""
    name = _container_name(container)
    path = '/containers/%s/logs' % container['Id']
    query = {'stdout': '1', 'stderr': '1', 'timestamps': '1', 'since': '%.6f' % window.since}
    if tail:
        query['tail'] = str(window.max_lines)
    else:
        query.update(until='%.6f' % window.until, tail='all')
    response = client.request('GET', path, query=query)
    if response.status == 404:
        return [], 'container %s was removed before its logs could be read' % name
    unreadable = response.status != 200 and 'does not support reading' in response.text(500)
    if response.status == 501 or unreadable:
        return [], ('the logging driver of container %s does not support reading its logs, so '
                    'they are missing: read them from the log store instead (backend loki or '
                    'elasticsearch)' % name)
    if response.status != 200:
        client.expect_json(response, client.url_for(path))
        raise ApiError('Docker Engine at %s answered HTTP %s to a log request'
                       % (client.url_for(path), response.status), response.status)
    decoder = DockerLogDecoder(_multiplexed(response))
    body = response.body
    entries: list[tuple[float | None, str, str]] = []
    try:
        for start in range(0, len(body), DOCKER_CHUNK):
            entries.extend(decoder.feed(body[start:start + DOCKER_CHUNK]))
        entries.extend(decoder.close())
    except ValueError as err:
        raise ApiError('Docker Engine at %s answered a log stream that cannot be decoded (%s): '
                       'check that docker_host is a Docker Engine API' % (client.url_for(path), err))
    warning = None
    if decoder.leftover:
        warning = ('the log stream of container %s ended inside a frame: %d bytes of its last '
                   'line are missing' % (name, decoder.leftover))
    return [(time, text, name, stream) for time, stream, text in entries], warning


def docker_logs(params: Mapping[str, Any], window: Window) -> Fetched:
    """Logs of every container (running or exited) of the compose service, stdout and stderr."""
    client = docker_client(params)
    project = params.get('compose_project')
    try:
        containers = list_containers(client, window.service, project)
    except ApiError as err:
        raise ApiError('%s; is the Docker engine running on %s?' % (err, params['docker_host']))
    if not isinstance(containers, list):
        raise ApiError('Docker Engine at %s answered the container list with JSON that is not a '
                       'list: check that docker_host is a Docker Engine API' % params['docker_host'])
    if not containers:
        raise ApiError('no container (running or exited) of compose service %r%s on this host: '
                       'check the service name (docker ps -a --filter label=com.docker.compose.'
                       'service=%s) and the host the task runs on'
                       % (window.service, ' in project %r' % project if project else '',
                          window.service))
    tail = window.until >= window.now - NOW_SLACK
    outcomes = run_all({c['Id']: (lambda c=c: read_container(client, c, window, tail))
                        for c in containers})
    entries: list[tuple[float | None, str, str | None, str | None]] = []
    warnings: list[str] = []
    listed: list[dict[str, Any]] = []
    truncated, unread = False, 0
    for container in containers:
        listed.append({'name': _container_name(container), 'id': container['Id'][:12],
                       'state': container.get('State'), 'status': container.get('Status')})
        result, error = outcomes[container['Id']]
        if error is not None:
            if isinstance(error, ApiError):
                raise error
            raise ApiError('reading the logs of container %s from the Docker Engine at %s failed: '
                           '%s' % (_container_name(container), params['docker_host'], error))
        got, warning = result
        if warning:
            warnings.append(warning)
            unread += 0 if got else 1
        truncated = truncated or (tail and len(got) >= window.max_lines)
        entries.extend(e for e in got if e[0] is None or e[0] <= window.until)
    if unread == len(containers):
        raise ApiError('no log of compose service %r could be read from the Docker Engine at %s: %s'
                       % (window.service, params['docker_host'], '; '.join(warnings)))
    entries.sort(key=lambda e: e[0] or 0)
    if len(entries) > window.max_lines:
        truncated = True
        entries = entries[-window.max_lines:]
    return Fetched(records_from_entries(entries), len(entries), truncated, None, warnings,
                   details={'containers': listed})


# --------------------------------------------------------------------------- loki

def _go_string(text: str) -> str:
    return json.dumps(text)


def default_logql(service: str, min_level: str) -> str:
    """{container="<service>"} | json | level at or above min_level, or status_code >= 500."""
    selector = '{container=%s}' % _go_string(service)
    rank = RANK[min_level]
    if rank == 0:
        return selector
    names = [alias for level in LEVELS[rank:] for alias in _LOGQL_LEVELS[level]]
    return '%s | json | level=~"(?i)%s" or status_code >= 500' % (selector, '|'.join(names))


def _ns(epoch: float) -> int:
    return int(round(epoch * 1e6)) * 1000


def _loki_error(response: Response) -> str:
    payload = decode_json(response)
    if isinstance(payload, dict):
        for key in ('error', 'message', 'msg'):
            if payload.get(key):
                return str(payload[key]).strip()
    return response.text(500).strip() or '(empty body)'


def _loki_source(labels: dict[str, Any], line: str) -> str:
    kept = sorted((k, v) for k, v in labels.items()
                  if k not in _LOKI_NOISE and '"%s"' % k not in line)
    return '{%s}' % ', '.join('%s=%s' % (k, _go_string(str(v))) for k, v in kept)


def loki_logs(params: Mapping[str, Any], window: Window) -> Fetched:
    """GET /loki/api/v1/query_range, newest first (direction=backward), at most max_lines."""
    http = HttpClient.from_params(params, 'Loki')
    query = params.get('query') or default_logql(window.service, window.min_level)
    args = {'query': query, 'start': '%d' % _ns(window.since), 'end': '%d' % _ns(window.until),
            'limit': '%d' % window.max_lines, 'direction': 'backward'}
    response = http.request('GET', LOKI_PATH, query=args)
    url = http.url_for(LOKI_PATH)
    if response.status in (400, 422):
        raise ApiError('Loki at %s rejected the query with HTTP %s: %s. Check the LogQL syntax '
                       'and the labels it selects. Query: %s'
                       % (url, response.status, _loki_error(response), query), response.status)
    if response.status == 401 and 'org id' in response.text(300).lower():
        raise ApiError('Loki at %s refused the query with HTTP 401 (%s): this Loki is '
                       'multi-tenant, set the tenant in headers, for example X-Scope-OrgID: '
                       '<tenant>' % (url, _loki_error(response)), 401)
    payload = http.expect_json(response, url)
    data = payload.get('data') if isinstance(payload, dict) else None
    if not isinstance(data, dict) or payload.get('status') != 'success':
        raise ApiError('%s answered JSON that is not a Loki query response (no "status": '
                       '"success" with "data"): is url the Loki base URL (e.g. '
                       'http://loki:3100)?' % url)
    if data.get('resultType') != 'streams':
        raise ApiError('Loki at %s answered a %s, not log lines: the query is a metric query; '
                       'give a log query such as {container="%s"} | json. Query: %s'
                       % (url, data.get('resultType'), window.service, query))
    entries: list[tuple[float, str, str, Any]] = []
    try:
        for stream in data.get('result') or []:
            labels = stream.get('stream') or {}
            for value in stream.get('values') or []:
                line = str(value[1])
                entries.append((int(value[0]) / 1e9, line, _loki_source(labels, line),
                                labels.get('stream')))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        raise ApiError('Loki at %s answered streams in an unexpected shape (%s): each stream '
                       'needs "stream" labels and "values" of ["<ns>", "<line>"]' % (url, err))
    entries.sort(key=lambda e: e[0])
    warnings = ['Loki: %s' % w for w in payload.get('warnings') or []]
    return Fetched(records_from_entries(entries), len(entries),
                   len(entries) >= window.max_lines, query, warnings)


# --------------------------------------------------------------------------- elasticsearch

def default_es_query(service: str, min_level: str) -> str:
    """The runbook's Kibana filter: level:ERROR AND service:<service>, for any minimum level."""
    quoted = '"%s"' % service.replace('\\', '\\\\').replace('"', '\\"')
    rank = RANK[min_level]
    if rank == 0:
        return 'service:%s' % quoted
    names = [alias for level in LEVELS[rank:] for alias in _ES_LEVELS[level]]
    return '(level:(%s) OR status_code:>=500) AND service:%s' % (' OR '.join(names), quoted)


def _type_reason(cause: dict[str, Any]) -> str:
    reason = str(cause.get('reason') or '').split('\n', maxsplit=1)[0].strip()
    return ': '.join(t for t in (cause.get('type'), reason) if t)


def es_error_text(error: Any) -> str:
    """One line from an Elasticsearch error object: its type and reason, then its causes."""
    if not isinstance(error, dict):
        return str(error).split('\n', maxsplit=1)[0][:500]
    parts = [_type_reason(error)]
    causes = list(error.get('root_cause') or [])
    causes.extend(s['reason'] for s in error.get('failed_shards') or []
                  if isinstance(s, dict) and isinstance(s.get('reason'), dict))
    causes.append(error.get('caused_by'))
    for cause in causes:
        while isinstance(cause, dict):
            text = _type_reason(cause)
            if text and text not in parts:
                parts.append(text)
            cause = cause.get('caused_by')
    return '; '.join(p for p in parts if p)[:1000]


def _shard_failures(shards: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for failure in shards.get('failures') or []:
        if not isinstance(failure, dict):
            continue
        reason = failure.get('reason')
        reason = es_error_text(reason) if isinstance(reason, dict) else str(reason)
        where = 'index %s shard %s' % (failure.get('index'), failure.get('shard'))
        if failure.get('node'):
            where += ' on node %s' % failure['node']
        text = 'Elasticsearch: %s of %s shards failed, the hits are partial: %s: %s' % (
            shards.get('failed'), shards.get('total'), where, reason)
        if text not in texts:
            texts.append(text)
    if not texts:
        texts.append('Elasticsearch: %s of %s shards failed, the hits are partial (no reason '
                     'given)' % (shards.get('failed'), shards.get('total')))
    return texts


def _hit_record(hit: dict[str, Any]) -> dict[str, Any] | None:
    doc = hit.get('_source')
    if not isinstance(doc, dict):
        return None
    time = parse_time(get_field(doc, FIELD_ALIASES['time']))
    if time is None and hit.get('sort'):
        time = parse_time(hit['sort'][0])
    message = get_field(doc, FIELD_ALIASES['message'])
    if isinstance(message, str) and message.lstrip().startswith('{') \
            and get_field(doc, FIELD_ALIASES['level']) is None:
        return parse_line(message, time, hit.get('_index'))  # a JSON line shipped undecoded
    line = json.dumps(doc, separators=(',', ':'))[:MAX_LINE]
    return record_from_fields(doc, line, time, hit.get('_index'))


def elasticsearch_logs(params: Mapping[str, Any], window: Window) -> Fetched:
    """POST /<index>/_search: range on @timestamp and a query_string, newest first."""
    http = HttpClient.from_params(params, 'Elasticsearch')
    query = params.get('query') or default_es_query(window.service, window.min_level)
    index = params.get('index') or 'logs-*'
    path = '/%s/_search' % quote(index, safe='*,-_.+')
    body = {
        'size': window.max_lines,
        'sort': [{'@timestamp': {'order': 'desc', 'unmapped_type': 'date'}}],
        # A search that runs out of time answers with what it has (timed_out) rather than
        # letting the HTTP call time out with nothing.
        'timeout': '%dms' % max(1, int(http.timeout * 800)),
        'query': {'bool': {'filter': [
            {'range': {'@timestamp': {'gte': int(window.since * 1000),
                                      'lte': int(window.until * 1000),
                                      'format': 'epoch_millis'}}},
            {'query_string': {'query': query}},
        ]}},
    }
    response = http.request('POST', path, json_body=body)
    url = http.url_for(path)
    payload = decode_json(response)
    if response.status >= 400 and response.status not in (401, 403) \
            and isinstance(payload, dict) and payload.get('error'):
        error = payload['error']
        kind = error.get('type') if isinstance(error, dict) else None
        roots = [c.get('type') for c in (error.get('root_cause') or []) if isinstance(c, dict)] \
            if isinstance(error, dict) else []
        if kind == 'index_not_found_exception' or 'index_not_found_exception' in roots:
            hint = 'check index (%s) against GET _cat/indices' % index
        elif response.status == 400:
            hint = 'check the query_string syntax (Lucene: field:value AND ..., quote values ' \
                   'with spaces or special characters) and the field names'
        else:
            hint = 'check the cluster health (GET _cluster/health)'
        raise ApiError('Elasticsearch at %s rejected the search with HTTP %s: %s. %s. Query: %s'
                       % (url, response.status, es_error_text(error), hint[0].upper() + hint[1:],
                          query), response.status, payload)
    payload = http.expect_json(response, url)
    hits = payload.get('hits') if isinstance(payload, dict) else None
    if not isinstance(hits, dict) or not isinstance(hits.get('hits'), list):
        raise ApiError('%s answered JSON that is not an Elasticsearch search response (no '
                       'hits.hits): is url the Elasticsearch URL (port 9200), not Kibana?' % url)
    warnings: list[str] = []
    shards = payload.get('_shards') if isinstance(payload.get('_shards'), dict) else {}
    if (shards.get('failed') or 0) > 0:
        warnings.extend(_shard_failures(shards))
    if payload.get('timed_out'):
        warnings.append('Elasticsearch: the search timed out (timed_out: true), the hits are '
                        'partial: narrow since/until or the index, or raise timeout')
    records: list[dict[str, Any]] = []
    try:
        for hit in hits['hits']:
            record = _hit_record(hit)
            if record is not None:
                records.append(record)
    except (AttributeError, IndexError, TypeError) as err:
        raise ApiError('Elasticsearch at %s answered hits in an unexpected shape: %s' % (url, err))
    if len(records) < len(hits['hits']):
        warnings.append('Elasticsearch: %d hits have no _source (disabled in the mapping?) and '
                        'were skipped' % (len(hits['hits']) - len(records)))
    total = hits.get('total')
    total_value = total.get('value') if isinstance(total, dict) else total
    truncated = isinstance(total_value, int) and total_value > len(hits['hits']) or (
        isinstance(total, dict) and total.get('relation') == 'gte')
    return Fetched(records, len(hits['hits']), truncated, query, warnings,
                   details={'total_hits': total_value})


# --------------------------------------------------------------------------- kubernetes

def kubernetes_entries(text: str, source: str) -> list[tuple[float | None, str, str | None, str | None]]:
    """(time, text, source, None) entries of a pods/log answer with timestamps=true: each line
    starts with its RFC 3339 time and a space."""
    entries: list[tuple[float | None, str, str | None, str | None]] = []
    for line in text.splitlines():
        stamp, sep, rest = line.partition(' ')
        time = parse_time(stamp) if sep and stamp[:1].isdigit() else None
        entries.append((time, rest if time is not None else line, source, None))
    return entries


def kubernetes_reads(pods: Iterable[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) to read: every container of every pod but those that never ran
    (no log: not a gap in the evidence), and the previous instance of those that restarted (its
    log holds the crash's reason)."""
    reads = []
    for pod in pods:
        name = pod['metadata']['name']
        restarted, waiting = restarted_containers(pod), never_started(pod)
        for container in (pod.get('spec') or {}).get('containers') or []:
            if container['name'] not in waiting:
                reads.append((name, container['name'], False))
            if container['name'] in restarted:
                reads.append((name, container['name'], True))
    return reads


def kubernetes_logs(params: Mapping[str, Any], window: Window) -> Fetched:
    """The pods of the label selector, all their containers' logs concurrently (GET .../pods/{name}/log
    with sinceSeconds, tailLines and timestamps), and the previous instance's of those that restarted."""
    namespace, selector = params['namespace'], params['selector']
    try:
        reader = Reader(params)
        pods = reader.pods(namespace, selector)
    except K8sError as err:
        raise ApiError(str(err), err.status)
    if not pods:
        raise ApiError('no pod matches selector %s in namespace %s: check the selector and the namespace '
                       '(kubectl get pods -n %s -l %s)' % (selector, namespace, namespace, selector))
    since_seconds = max(1, int(math.ceil(window.now - window.since)))
    reads = kubernetes_reads(pods)
    outcomes = run_all({read: (lambda read=read: reader.pod_log(
        read[0], namespace, read[1], read[2], since_seconds, window.max_lines, True)) for read in reads})
    entries: list[tuple[float | None, str, str | None, str | None]] = []
    warnings: list[str] = []
    truncated, unread = False, 0
    for pod, container, previous in reads:
        text, error = outcomes[(pod, container, previous)]
        source = '%s/%s%s' % (pod, container, ' (previous)' if previous else '')
        if error is not None:
            if not isinstance(error, K8sError):
                raise ApiError('reading the log of %s failed: %s' % (source, error))
            warnings.append('the log of %s could not be read: %s' % (source, error))
            unread += 1
            continue
        got = kubernetes_entries(text, source)
        truncated = truncated or len(got) >= window.max_lines
        entries.extend(e for e in got if e[0] is None or window.since <= e[0] <= window.until)
    if reads and unread == len(reads):
        raise ApiError('no log of the pods of selector %s in namespace %s could be read: %s'
                       % (selector, namespace, '; '.join(warnings)))
    entries.sort(key=lambda e: e[0] or 0)
    if len(entries) > window.max_lines:
        truncated = True
        entries = entries[-window.max_lines:]
    return Fetched(records_from_entries(entries), len(entries), truncated, None, warnings,
                   details={'pods': [pod_facts(pod) for pod in pods]})


BACKENDS = {
    'docker': docker_logs,
    'loki': loki_logs,
    'elasticsearch': elasticsearch_logs,
    'kubernetes': kubernetes_logs,
}

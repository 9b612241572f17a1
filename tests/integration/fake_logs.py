"""Answers shaped as Loki's and Elasticsearch's documented HTTP APIs give them, for the tests of
log_search that need a log store (neither can be installed on this machine).

Loki: GET /loki/api/v1/query_range answers {"status": "success", "data": {"resultType": "streams",
"result": [{"stream": {labels}, "values": [["<ns epoch>", "<line>"], ...]}], "stats": {...}}};
with `| json` the parsed fields come back as stream labels too. A LogQL syntax error is HTTP 400
with a text/plain body (pkg/util/server/error.go: WriteError); a multi-tenant Loki without a
tenant answers 401 "no org id".

Elasticsearch: POST /<index>/_search answers {took, timed_out, _shards {total, successful,
skipped, failed, failures[{shard, index, node, reason {type, reason}}]}, hits {total {value,
relation}, max_score, hits[{_index, _id, _score, _source, sort}]}}. Shard failures still answer
HTTP 200; a malformed query_string is HTTP 400 {error {root_cause, type:
search_phase_execution_exception, reason: all shards failed, phase, grouped, failed_shards[{...,
reason {type: query_shard_exception, reason, caused_by {type: parse_exception, ...}}}]}, status};
a missing index is 404 index_not_found_exception.
"""

import json
from datetime import datetime, timezone

T0 = 1795443780.0  # 2026-11-23T14:23:00Z


def ns(epoch):
    return '%d' % (int(round(epoch * 1e6)) * 1000)


def gateway_line(epoch, level, message, endpoint, status, trace, error=None):
    stamp = datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec='milliseconds')
    record = {'timestamp': stamp.replace('+00:00', 'Z'), 'level': level, 'service': 'inference-gateway',
              'version': '1.2.3', 'message': message, 'endpoint': endpoint, 'method': 'POST',
              'status_code': status, 'duration_ms': 12.5, 'trace_id': trace}
    if error:
        record['error'] = error
    return json.dumps(record, separators=(',', ':'))


def loki_stream(labels, entries):
    """A stream as Loki returns it after `| json`: newest first (direction=backward), with the
    parsed fields of the line added to the stream labels."""
    values = [[ns(epoch), line] for epoch, line in sorted(entries, reverse=True)]
    parsed = json.loads(entries[0][1])
    stream = dict(labels)
    stream.update({k: str(v) for k, v in parsed.items() if k != 'timestamp'})
    return {'stream': stream, 'values': values}


def loki_streams(*streams, warnings=None):
    body = {'status': 'success', 'data': {
        'resultType': 'streams', 'result': list(streams),
        'stats': {'summary': {'bytesProcessedPerSecond': 1048576, 'linesProcessedPerSecond': 9000,
                              'totalBytesProcessed': 20480, 'totalLinesProcessed': 180,
                              'execTime': 0.0123}}}}
    if warnings:
        body['warnings'] = warnings
    return body


LOKI_MATRIX = {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
    {'metric': {'container': 'inference-gateway'}, 'values': [[T0, '12']]}], 'stats': {}}}


def es_hit(index, epoch, source, doc_id):
    return {'_index': index, '_id': doc_id, '_score': None, '_source': source,
            'sort': [int(epoch * 1000)]}


def es_answer(hits, total=None, relation='eq', shards=None, timed_out=False):
    return {'took': 14, 'timed_out': timed_out,
            '_shards': shards or {'total': 3, 'successful': 3, 'skipped': 0, 'failed': 0},
            'hits': {'total': {'value': len(hits) if total is None else total,
                               'relation': relation},
                     'max_score': None, 'hits': hits}}


ES_SHARD_FAILURE = {
    'total': 5, 'successful': 4, 'skipped': 0, 'failed': 1,
    'failures': [{'shard': 2, 'index': 'logs-2026.11.23', 'node': 'Xy1bQm3kR2a',
                  'reason': {'type': 'node_disconnected_exception',
                             'reason': '[es-2][10.0.0.9:9300][indices:data/read/search[phase/query]]'
                                       ' disconnected'}}]}


def es_parse_error(query, index='logs-2026.11.23'):
    detail = ("Cannot parse '%s': Encountered \"<EOF>\" at line 1, column %d.\nWas expecting one "
              "of:\n    <AND> ...\n    <OR> ...\n    \")\" ..." % (query, len(query)))
    shard_reason = {'type': 'query_shard_exception', 'reason': 'Failed to parse query [%s]' % query,
                    'index_uuid': 'FqZfR415QIuajKOY32gXYg', 'index': index}
    caused_by = {'type': 'parse_exception', 'reason': detail,
                 'caused_by': {'type': 'parse_exception', 'reason': detail.split(': ', 1)[1]}}
    error = {'root_cause': [dict(shard_reason)],
             'type': 'search_phase_execution_exception', 'reason': 'all shards failed',
             'phase': 'query', 'grouped': True,
             'failed_shards': [{'shard': 0, 'index': index, 'node': 'X6uClAg5SimP2fxx3L872g',
                                'reason': dict(shard_reason, caused_by=caused_by)}]}
    return {'error': error, 'status': 400}


def es_index_not_found(index):
    cause = {'type': 'index_not_found_exception', 'reason': 'no such index [%s]' % index,
             'resource.type': 'index_or_alias', 'resource.id': index, 'index_uuid': '_na_',
             'index': index}
    return {'error': dict(cause, root_cause=[cause]), 'status': 404}

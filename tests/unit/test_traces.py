"""Trace summaries on traces shaped exactly as the Jaeger query API returns them (GET /api/traces):
model/json of jaegertracing/jaeger, with references, tags and logs omitted when empty."""

import json

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.traces import (
    build_query,
    describe,
    go_duration,
    percentile,
    span_message,
    summarise,
    suspect,
    tags_param,
)

T0 = 1795457400000000  # µs

# A gateway request whose call to model-service times out; the model-service span is the source.
TIMEOUT_TRACE = {
    "traceID": "6f1a2b3c4d5e6f70",
    "spans": [
        {"traceID": "6f1a2b3c4d5e6f70", "spanID": "a000000000000001", "flags": 1,
         "operationName": "POST /predict", "startTime": T0, "duration": 2013000,
         "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                  {"key": "http.method", "type": "string", "value": "POST"},
                  {"key": "http.status_code", "type": "int64", "value": 504},
                  {"key": "error", "type": "bool", "value": True},
                  {"key": "internal.span.format", "type": "string", "value": "otlp"}],
         "processID": "p1", "warnings": None},
        {"traceID": "6f1a2b3c4d5e6f70", "spanID": "a000000000000002", "flags": 1,
         "operationName": "POST /infer",
         "references": [{"refType": "CHILD_OF", "traceID": "6f1a2b3c4d5e6f70",
                         "spanID": "a000000000000001"}],
         "startTime": T0 + 1000, "duration": 2001500,
         "tags": [{"key": "span.kind", "type": "string", "value": "client"},
                  {"key": "peer.service", "type": "string", "value": "model-service"},
                  {"key": "error", "type": "bool", "value": True}],
         "logs": [{"timestamp": T0 + 2002500, "fields": [
             {"key": "event", "type": "string", "value": "error"},
             {"key": "message", "type": "string",
              "value": "timeout calling model-service after 2.0s"}]}],
         "processID": "p1", "warnings": None},
        {"traceID": "6f1a2b3c4d5e6f70", "spanID": "b000000000000001", "flags": 1,
         "operationName": "POST /infer",
         "references": [{"refType": "CHILD_OF", "traceID": "6f1a2b3c4d5e6f70",
                         "spanID": "a000000000000002"}],
         "startTime": T0 + 1500, "duration": 2000000,
         "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                  {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                  {"key": "otel.status_description", "type": "string",
                   "value": "inference timed out waiting for a GPU worker"},
                  {"key": "error", "type": "bool", "value": True}],
         "processID": "p2", "warnings": None},
    ],
    "processes": {
        "p1": {"serviceName": "inference-gateway",
               "tags": [{"key": "hostname", "type": "string", "value": "gw-1"}]},
        "p2": {"serviceName": "model-service",
               "tags": [{"key": "hostname", "type": "string", "value": "model-1"}]},
    },
    "warnings": None,
}


def tag(key, value):
    kind = {bool: 'bool', int: 'int64', float: 'float64'}.get(type(value), 'string')
    return {'key': key, 'type': kind, 'value': value}


def span(trace_id, span_id, operation, process, duration, parent=None, tags=(), logs=None):
    item = {'traceID': trace_id, 'spanID': span_id, 'flags': 1, 'operationName': operation,
            'startTime': T0, 'duration': duration, 'processID': process, 'warnings': None}
    if parent:
        item['references'] = [{'refType': 'CHILD_OF', 'traceID': trace_id, 'spanID': parent}]
    if tags:
        item['tags'] = [tag(k, v) for k, v in tags]
    if logs:
        item['logs'] = logs
    return item


PROCESSES = {'p1': {'serviceName': 'inference-gateway'}, 'p2': {'serviceName': 'model-service'}}


def nested_trace(trace_id):
    """The gateway's handler fails and its parent request span carries error=true too (as a
    string tag, as some clients send it)."""
    return {'traceID': trace_id, 'processes': PROCESSES, 'spans': [
        span(trace_id, 's1', 'POST /predict', 'p1', 40000,
             tags=[('span.kind', 'server'), ('error', 'true'), ('http.status_code', 500)]),
        span(trace_id, 's2', 'build_features', 'p1', 30000, parent='s1',
             tags=[('error', True), ('error.message', 'feature lookup failed: KeyError user_id')]),
        span(trace_id, 's3', 'validate', 'p1', 1000, parent='s2'),
    ]}


def ok_trace(trace_id):
    return {'traceID': trace_id, 'processes': PROCESSES, 'spans': [
        span(trace_id, 'o1', 'POST /predict', 'p1', 120000, tags=[('span.kind', 'server')]),
        span(trace_id, 'o2', 'POST /infer', 'p1', 100000, parent='o1',
             tags=[('span.kind', 'client'), ('peer.service', 'model-service')]),
    ]}


def refused_trace(trace_id):
    """feature-store is down: the gateway's client span fails and no feature-store span exists."""
    return {'traceID': trace_id, 'processes': PROCESSES, 'spans': [
        span(trace_id, 'r1', 'POST /predict', 'p1', 5000,
             tags=[('span.kind', 'server'), ('error', True)]),
        span(trace_id, 'r2', 'GET /features', 'p1', 3000, parent='r1',
             tags=[('span.kind', 'client'), ('http.url', 'http://127.0.0.1:8081/features/42'),
                   ('error', True)],
             logs=[{'timestamp': T0, 'fields': [tag('event', 'error'),
                                                tag('error.object', 'ConnectionRefusedError: '
                                                    '[Errno 111] Connection refused')]}]),
    ]}


def test_timeout_sits_in_the_model_service_span():
    result = summarise([TIMEOUT_TRACE], 'inference-gateway', 1000)
    assert result['traces'] == 1 and result['error_traces'] == 1 and result['error_spans'] == 3
    assert result['error_sources'] == [{
        'service': 'model-service', 'operation': 'POST /infer',
        'message': 'inference timed out waiting for a GPU worker', 'peer': None, 'count': 1,
        'trace_count': 1, 'trace_ids': ['6f1a2b3c4d5e6f70']}]
    assert result['slow_calls'] == [{
        'service': 'inference-gateway', 'operation': 'POST /infer', 'peer': 'model-service',
        'count': 1, 'timeouts': 1, 'errors': 1, 'trace_ids': ['6f1a2b3c4d5e6f70'],
        'max_ms': 2001.5, 'p95_ms': 2001.5}]
    assert result['dependency_suspect'] == 'model-service'
    assert result['error_services'] == {'model-service': 1}


def test_nested_errors_count_only_the_deepest_span():
    result = summarise([nested_trace('t%d' % i) for i in range(3)], 'inference-gateway', 1000)
    assert result['error_traces'] == 3 and result['error_spans'] == 6
    assert [(e['service'], e['operation'], e['message'], e['count'], e['trace_ids'])
            for e in result['error_sources']] == [
        ('inference-gateway', 'build_features', 'feature lookup failed: KeyError user_id', 3,
         ['t0', 't1', 't2'])]
    assert result['slow_calls'] == [] and result['dependency_suspect'] is None


def test_trace_without_error_counts_but_adds_nothing():
    result = summarise([ok_trace('ok1')], 'inference-gateway', 1000)
    assert result['traces'] == 1 and result['error_traces'] == 0 and result['error_spans'] == 0
    assert result['error_sources'] == [] and result['slow_calls'] == []
    assert result['dependency_suspect'] is None


def test_slow_ms_decides_what_is_a_slow_call():
    result = summarise([ok_trace('ok1')], 'inference-gateway', 100)
    assert [(c['peer'], c['count'], c['max_ms'], c['timeouts'], c['errors'])
            for c in result['slow_calls']] == [('model-service', 1, 100.0, 0, 0)]


def test_missing_process_entry_leaves_the_service_unknown():
    trace = {'traceID': 'm1', 'processes': {'p1': {'serviceName': 'inference-gateway'}}, 'spans': [
        span('m1', 'x1', 'POST /predict', 'p1', 5000, tags=[('error', True)]),
        span('m1', 'x2', 'lookup', 'p7', 4000, parent='x1',
             tags=[('error', True), ('exception.message', 'boom')]),
    ]}
    result = summarise([trace], 'inference-gateway', 1000)
    assert [(e['service'], e['operation'], e['message']) for e in result['error_sources']] == [
        (None, 'lookup', 'boom')]
    assert result['error_services'] == {} and result['dependency_suspect'] is None


def test_refused_call_blames_the_callee_without_a_span():
    traces = [refused_trace('r%d' % i) for i in range(2)] + [nested_trace('n1')]
    result = summarise(traces, 'inference-gateway', 1000)
    first = result['error_sources'][0]
    assert (first['service'], first['operation'], first['peer'], first['count']) == (
        'inference-gateway', 'GET /features', '127.0.0.1:8081', 2)
    assert first['message'] == 'ConnectionRefusedError: [Errno 111] Connection refused'
    assert result['error_services'] == {'127.0.0.1:8081': 2, 'inference-gateway': 1}
    assert result['dependency_suspect'] == '127.0.0.1:8081'


def test_most_errors_decide_the_suspect_and_a_tie_with_the_service_is_none():
    result = summarise([TIMEOUT_TRACE] * 3 + [nested_trace('n1')], 'inference-gateway', 1000)
    assert result['error_services'] == {'model-service': 3, 'inference-gateway': 1}
    assert result['dependency_suspect'] == 'model-service'
    assert result['error_sources'][0]['count'] == 3
    assert result['error_sources'][0]['trace_count'] == 1  # the same trace id three times
    assert suspect({'model-service': 2, 'inference-gateway': 2}, 'inference-gateway') is None
    assert suspect({'model-service': 2, 'feature-store': 2}, 'inference-gateway') == 'feature-store'
    assert suspect({}, 'inference-gateway') is None


def test_trace_ids_are_capped_at_five():
    result = summarise([nested_trace('t%d' % i) for i in range(8)], 'inference-gateway', 1000)
    source = result['error_sources'][0]
    assert source['count'] == 8 and source['trace_count'] == 8
    assert source['trace_ids'] == ['t0', 't1', 't2', 't3', 't4']


def test_message_sources_in_order():
    assert span_message({'tags': [tag('error.message', 'a'), tag('exception.message', 'b')]}) == 'a'
    assert span_message({'tags': [tag('error', True)], 'logs': [
        {'timestamp': 1, 'fields': [tag('message', 'retrying')]},
        {'timestamp': 2, 'fields': [tag('event', 'exception'),
                                    tag('exception.message', 'deadline exceeded')]}]}) == \
        'deadline exceeded'
    assert span_message({'logs': [{'timestamp': 1, 'fields': [tag('message', 'only log')]}]}) == \
        'only log'
    assert span_message({'tags': [tag('http.status_code', 503)]}) == 'status 503'
    assert span_message({'spanID': 'x'}) is None
    assert len(span_message({'tags': [tag('error.message', 'x' * 1000)]})) == 300


def test_p95_is_nearest_rank():
    assert percentile(list(range(1, 21)), 0.95) == 19
    assert percentile([7.0], 0.95) == 7.0


def test_query_parameters_in_microseconds_with_string_tags():
    params = build_query('inference-gateway', T0, T0 + 900000000, 100, operation='POST /predict',
                         tags={'error': True, 'http.status_code': 504}, min_duration=2.0)
    assert params == {'service': 'inference-gateway', 'start': '1795457400000000',
                      'end': '1795458300000000', 'limit': '100', 'operation': 'POST /predict',
                      'tags': '{"error":"true","http.status_code":"504"}', 'minDuration': '2000ms'}
    assert json.loads(params['tags']) == {'error': 'true', 'http.status_code': '504'}
    assert 'operation' not in build_query('s', 1, 2, 5) and 'tags' not in build_query('s', 1, 2, 5)
    assert tags_param({'error': False}) == '{"error":"false"}'
    assert go_duration(0.0015) == '1500us' and go_duration(90) == '90000ms'


def test_describe_names_the_source_and_the_suspect():
    result = summarise([TIMEOUT_TRACE], 'inference-gateway', 1000)
    assert describe(result, 'inference-gateway', '15m') == (
        '1 of 1 traces of inference-gateway in the last 15m have errors; most errors sit in '
        'model-service POST /infer (inference timed out waiting for a GPU worker, 1); suspect '
        'dependency: model-service; slowest external call inference-gateway -> model-service: 1 '
        'at up to 2002 ms')
    assert describe(summarise([], 's', 1000), 's', '15m') == 'no trace of s matched in the last 15m'

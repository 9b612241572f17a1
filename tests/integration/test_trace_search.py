"""trace_search against a fake Jaeger query service (Jaeger cannot be installed here).

FakeJaeger answers GET /api/traces as jaeger-query's HTTP handler does (cmd/query/app
http_handler.go and query_parser.go): start/end parsed as integer microseconds, `tags` as a JSON
object of strings, `limit`, `operation` and `minDuration` (a Go duration); success as
{data, total, limit, offset, errors: null} in application/json; failures through http.Error, so
text/plain with the JSON body {data: null, ..., errors: [{code, msg}]} and the status code (400 for
bad parameters, 500 for storage errors). Traces are model/json shaped (see tests/unit/test_traces.py).
"""

import json
import re
import socket
import time
import urllib.parse

from conftest import Route, run_module

GO_UNITS = {'ns': 1e-3, 'us': 1, 'µs': 1, 'ms': 1e3, 's': 1e6, 'm': 60e6, 'h': 3600e6}


def go_error(status, message):
    body = json.dumps({'data': None, 'total': 0, 'limit': 0, 'offset': 0,
                       'errors': [{'code': status, 'msg': message}]}) + '\n'
    return Route(status, body.encode(), {'Content-Type': 'text/plain; charset=utf-8',
                                         'X-Content-Type-Options': 'nosniff'})


def parse_go_duration(text):
    parts = re.findall(r'(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)', text)
    if not parts or ''.join(n + u for n, u in parts) != text:
        raise ValueError('time: invalid duration "%s"' % text)
    return sum(float(n) * GO_UNITS[u] for n, u in parts)


class FakeJaeger:
    def __init__(self, traces=(), storage_error=None, extra_errors=None):
        self.traces = list(traces)
        self.storage_error = storage_error
        self.extra_errors = extra_errors
        self.queries = []

    def __call__(self, request):
        form = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query,
                                     keep_blank_values=True)
        values = {k: v[0] for k, v in form.items()}
        self.queries.append(values)
        now_us = int(time.time() * 1e6)
        times = {}
        for param, default in (('start', now_us - 2 * 86400 * 10 ** 6), ('end', now_us)):
            if values.get(param):
                try:
                    times[param] = int(values[param])
                except ValueError:
                    return go_error(400, "unable to parse param '%s': strconv.ParseInt: parsing "
                                         '"%s": invalid syntax' % (param, values[param]))
            else:
                times[param] = default
        tags = {}
        for raw in form.get('tags', []):
            try:
                decoded = json.loads(raw)
            except ValueError as err:
                return go_error(400, "malformed 'tags' parameter, cannot unmarshal JSON: %s" % err)
            for key, value in decoded.items():
                if not isinstance(value, str):
                    return go_error(400, "malformed 'tags' parameter, cannot unmarshal JSON: json: "
                                         'cannot unmarshal %s into Go value of type string'
                                         % ('bool' if isinstance(value, bool) else 'number'))
                tags[key] = value
        try:
            limit = int(values.get('limit') or 100)
            min_duration = parse_go_duration(values['minDuration']) \
                if values.get('minDuration') else 0
        except ValueError as err:
            return go_error(400, "unable to parse param 'minDuration': %s" % err)
        if not values.get('service'):
            return go_error(400, "parameter 'service' is required")
        if self.storage_error:
            return go_error(500, self.storage_error)
        found = [t for t in self.traces if self.matches(t, values, times, tags, min_duration)]
        return Route(200, {'data': found[:limit], 'total': 0, 'limit': 0, 'offset': 0,
                           'errors': self.extra_errors})

    @staticmethod
    def matches(trace, values, times, tags, min_duration):
        processes = trace['processes']
        for span in trace['spans']:
            if processes.get(span['processID'], {}).get('serviceName') != values['service']:
                continue
            if values.get('operation') and span['operationName'] != values['operation']:
                continue
            if not times['start'] <= span['startTime'] <= times['end']:
                continue
            if span['duration'] < min_duration:
                continue
            span_tags = {t['key']: str(t['value']).lower() if isinstance(t['value'], bool)
                         else str(t['value']) for t in span.get('tags', [])}
            if all(span_tags.get(k) == v for k, v in tags.items()):
                return True
        return False


def tag(key, value):
    kind = {bool: 'bool', int: 'int64', float: 'float64'}.get(type(value), 'string')
    return {'key': key, 'type': kind, 'value': value}


def timeout_trace(trace_id, start_us):
    """inference-gateway -> model-service; model-service times out."""
    def ref(parent):
        return [{'refType': 'CHILD_OF', 'traceID': trace_id, 'spanID': parent}]
    processes = {'p1': {'serviceName': 'inference-gateway', 'tags': [tag('hostname', 'gw-1')]},
                 'p2': {'serviceName': 'model-service', 'tags': [tag('hostname', 'model-1')]}}
    spans = [
        {'traceID': trace_id, 'spanID': trace_id + '01', 'flags': 1,
         'operationName': 'POST /predict', 'startTime': start_us, 'duration': 2015000,
         'tags': [tag('span.kind', 'server'), tag('http.status_code', 504), tag('error', True)],
         'processID': 'p1', 'warnings': None},
        {'traceID': trace_id, 'spanID': trace_id + '02', 'flags': 1,
         'operationName': 'POST /infer', 'references': ref(trace_id + '01'),
         'startTime': start_us + 1000, 'duration': 2002000,
         'tags': [tag('span.kind', 'client'), tag('peer.service', 'model-service'),
                  tag('error', True)],
         'logs': [{'timestamp': start_us + 2003000, 'fields': [
             tag('event', 'error'), tag('message', 'upstream timeout after 2.0s')]}],
         'processID': 'p1', 'warnings': None},
        {'traceID': trace_id, 'spanID': trace_id + '03', 'flags': 1,
         'operationName': 'POST /infer', 'references': ref(trace_id + '02'),
         'startTime': start_us + 1500, 'duration': 2001000,
         'tags': [tag('span.kind', 'server'), tag('error', True),
                  tag('error.message', 'inference deadline exceeded')],
         'processID': 'p2', 'warnings': None},
    ]
    return {'traceID': trace_id, 'spans': spans, 'processes': processes, 'warnings': None}


def ok_trace(trace_id, start_us):
    return {'traceID': trace_id, 'processes': {'p1': {'serviceName': 'inference-gateway'}},
            'spans': [{'traceID': trace_id, 'spanID': trace_id + '01', 'flags': 1,
                       'operationName': 'POST /predict', 'startTime': start_us, 'duration': 90000,
                       'tags': [tag('span.kind', 'server'), tag('http.status_code', 200)],
                       'processID': 'p1'}]}


def now_us():
    return int(time.time() * 1e6)


def test_failing_traces_are_summarised_and_the_window_is_in_microseconds(server):
    t = now_us()
    jaeger = FakeJaeger([timeout_trace('aa%02d' % i, t - (i + 1) * 60 * 10 ** 6) for i in range(3)]
                        + [timeout_trace('old1', t - 30 * 60 * 10 ** 6), ok_trace('ok01', t - 10 ** 6)])
    server.routes['/api/traces'] = jaeger
    before = now_us()
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway'})
    after = now_us()
    assert r.get('failed') is not True, r
    sent = jaeger.queries[0]
    assert sorted(sent) == ['end', 'limit', 'service', 'start', 'tags']
    assert before <= int(sent['end']) <= after
    assert int(sent['end']) - int(sent['start']) == 15 * 60 * 10 ** 6
    assert json.loads(sent['tags']) == {'error': 'true'} and sent['limit'] == '100'
    assert r['query'] == sent
    assert r['traces'] == 3 and r['error_traces'] == 3 and r['limit_reached'] is False
    assert r['error_sources'] == [{
        'service': 'model-service', 'operation': 'POST /infer',
        'message': 'inference deadline exceeded', 'peer': None, 'count': 3, 'trace_count': 3,
        'trace_ids': ['aa00', 'aa01', 'aa02']}]
    assert r['slow_calls'] == [{
        'service': 'inference-gateway', 'operation': 'POST /infer', 'peer': 'model-service',
        'count': 3, 'max_ms': 2002.0, 'p95_ms': 2002.0, 'timeouts': 3, 'errors': 3,
        'trace_ids': ['aa00', 'aa01', 'aa02']}]
    assert r['dependency_suspect'] == 'model-service'
    assert r['jaeger_errors'] == [] and r['partial'] is False
    assert r['message'].startswith('3 of 3 traces of inference-gateway in the last 15m have errors')
    assert 'warnings' not in r


def test_options_become_jaeger_parameters(server):
    t = now_us()
    jaeger = FakeJaeger([timeout_trace('aa01', t - 5 * 10 ** 6), timeout_trace('aa02', t - 6 * 10 ** 6)])
    server.routes['/api/traces'] = jaeger
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway',
                                         'operation': 'POST /predict', 'tags': {'error': True},
                                         'lookback': '1h', 'limit': 1, 'min_duration': '2s',
                                         'slow_ms': 5000, 'bearer_token': 'tok3n'})
    assert r.get('failed') is not True, r
    sent = jaeger.queries[0]
    assert sent['operation'] == 'POST /predict' and sent['tags'] == '{"error":"true"}'
    assert sent['minDuration'] == '2000ms' and sent['limit'] == '1'
    assert int(sent['end']) - int(sent['start']) == 3600 * 10 ** 6
    assert server.requests[0]['headers']['authorization'] == 'Bearer tok3n'
    assert r['traces'] == 1 and r['limit_reached'] is True and r['slow_calls'] == []
    assert 'tok3n' not in json.dumps({k: v for k, v in r.items() if k != 'invocation'})


def test_min_duration_filters_at_the_server(server):
    jaeger = FakeJaeger([timeout_trace('aa01', now_us() - 10 ** 6)])
    server.routes['/api/traces'] = jaeger
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway',
                                         'min_duration': '3s'})
    assert r.get('failed') is not True, r
    assert r['traces'] == 0 and r['error_sources'] == [] and r['dependency_suspect'] is None
    assert r['message'] == 'no trace of inference-gateway matched in the last 15m'


def test_bad_request_400_is_surfaced(server):
    server.routes['/api/traces'] = FakeJaeger()
    r = run_module('trace_search_info', {'url': server.url, 'service': ''})
    assert r['failed'] is True
    assert r['msg'] == ("Jaeger at %s/api/traces answered HTTP 400: parameter 'service' is "
                        'required: check the parameters in query' % server.url)
    assert r['query']['service'] == ''


def test_storage_error_500_is_surfaced(server):
    server.routes['/api/traces'] = FakeJaeger(
        storage_error='search service failed: elastic: Error 404 (Not Found): no such index '
                      '[jaeger-span-2026-11-23]')
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway',
                                         'retries': 0})
    assert r['failed'] is True
    assert 'Jaeger at %s/api/traces answered HTTP 500: search service failed' % server.url in r['msg']
    assert 'no such index' in r['msg'] and 'storage backend' in r['msg']


def test_errors_sent_with_data_make_the_result_partial(server):
    errors = [{'code': 500, 'msg': 'trace not found', 'traceID': 'bb01'}]
    server.routes['/api/traces'] = FakeJaeger([timeout_trace('aa01', now_us() - 10 ** 6)],
                                              extra_errors=errors)
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway'})
    assert r.get('failed') is not True, r
    assert r['traces'] == 1 and r['jaeger_errors'] == errors and r['partial'] is True
    shown = [w['event']['msg'] if isinstance(w, dict) else w for w in r['warnings']]
    assert shown == ['Jaeger reported an error with its answer, the traces may be incomplete: '
                     'trace not found']


def test_html_answer_is_named(server):
    # The Jaeger UI answers its index page for paths it does not know (a wrong base path).
    server.routes['/api/traces'] = Route(200, b'<!doctype html><html lang="en"><head><title>Jaeger UI'
                                              b'</title></head><body><div id="jaeger-ui-root">',
                                         {'Content-Type': 'text/html; charset=utf-8'})
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway'})
    assert r['failed'] is True
    assert 'Jaeger at %s/api/traces answered HTTP 200 with text/html, not JSON' % server.url in r['msg']
    assert 'is this the API URL' in r['msg']


def test_json_that_is_not_a_search_answer_is_named(server):
    server.routes['/api/traces'] = Route(200, {'status': 'success', 'data': {'result': []}})
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway'})
    assert r['failed'] is True
    assert 'not a Jaeger search answer' in r['msg'] and 'Jaeger query service' in r['msg']


def test_unauthorised_is_named(server):
    server.routes['/api/traces'] = Route(401, b'Unauthorized', {'Content-Type': 'text/plain'})
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway',
                                         'username': 'ops', 'password': 'pw'})
    assert r['failed'] is True
    assert 'refused the request with HTTP 401: check the credentials' in r['msg']


def test_unreachable_jaeger_is_named():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    r = run_module('trace_search_info', {'url': 'http://127.0.0.1:%d' % port, 'service': 'gw',
                                         'retries': 0, 'timeout': 2})
    assert r['failed'] is True
    assert 'cannot reach Jaeger at http://127.0.0.1:%d/api/traces' % port in r['msg']
    assert 'check the URL and that the server is up' in r['msg']


def test_bad_options_are_named():
    r = run_module('trace_search_info', {'url': 'http://127.0.0.1:9', 'service': 'gw', 'lookback': 'a while'})
    assert r['failed'] is True and r['msg'].startswith("invalid option: 'a while' is not a duration")
    r = run_module('trace_search_info', {'url': 'http://127.0.0.1:9', 'service': 'gw', 'limit': 0})
    assert r['failed'] is True and 'limit must be at least 1' in r['msg']


def test_check_mode_searches_the_same(server):
    jaeger = FakeJaeger([timeout_trace('aa01', now_us() - 10 ** 6)])
    server.routes['/api/traces'] = jaeger
    r = run_module('trace_search_info', {'url': server.url, 'service': 'inference-gateway'},
                   check_mode=True)
    assert r.get('failed') is not True and r['changed'] is False, r
    assert r['traces'] == 1 and r['dependency_suspect'] == 'model-service'

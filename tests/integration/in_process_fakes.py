"""The vendor APIs behind tests/integration/test_in_process_playbook.py, answering as each one's
documentation says, on one conftest.LocalServer (a path prefix per API where two share a path) and
one fake_k8s.FakeApiServer. Every answer is the same for the playbook run in the controller
process and for the one whose modules run as processes, so their results must be equal.

- Prometheus HTTP API (/api/v1/query and query_range with their success envelope, vectors and
  matrices; 400 bad_data for a query that does not parse; /api/v1/labels,
  /api/v1/label/<name>/values, /api/v1/status/buildinfo, /api/v1/rules): at the root for error_rate,
  prometheus_query and preflight, a failing /predict endpoint; under /watch a recovered service
  (error_rate_watch); under /slo the SLO's recording rules and counters (slo_budget); under
  /cadvisor cAdvisor's series and the runbook's recording rules (resource_usage); under /latency
  a latency histogram's percentiles, bucket and request rates (latency).
- Slack Web API under /slack (chat.postMessage, auth.test, conversations.info: HTTP 200 with ok
  true, or ok false and an error as under /slack-refusing).
- PagerDuty Events API v2 (/v2/enqueue: 202 {status, message, dedup_key}; under /pd-invalid 400
  invalid event) and REST API v2 under /pagerduty (GET and PUT /incidents/{id}, GET /abilities).
- Atlassian Statuspage API v1 under /statuspage (GET /pages/{page}, /pages/{page}/components/{id},
  /pages/{page}/incidents/unresolved, POST /pages/{page}/incidents; 401 {message} without the key).
- Grafana's Annotations HTTP API under /grafana (GET /api/annotations: none yet, or 400 for an
  unknown dashboardUID; POST /api/annotations: 200 {message, id}; 401 {message} without the token).
- Loki HTTP API (/loki/api/v1/query_range: streams) and Elasticsearch under /es (POST
  /<index>/_search: 404 index_not_found_exception for a missing index), from fake_logs.
- Jaeger query API under /jaeger (GET /api/traces), /jaeger-partial (traces and an `errors` entry)
  and /jaeger-broken (500 storage error), as test_trace_search.FakeJaeger answers.
- A service's health endpoint (/health: JSON with its dependencies).
- Kubernetes API (fake_k8s.FakeApiServer): a Deployment of two revisions, a crash-looping pod, a
  healthy one, its Service, Endpoints, HPA and Warning events.
"""

import time
from urllib.parse import parse_qs, urlparse

from conftest import LocalServer, Route
from fake_k8s import FakeApiServer, deployment, endpoints, event, hpa, pod, replica_set, service
from fake_logs import T0, es_index_not_found, gateway_line, loki_stream, loki_streams
from test_trace_search import FakeJaeger, ok_trace, timeout_trace

AT = 1795446000.0  # 2026-11-23T15:00:00Z
ONSET = AT - 600
# The no_log values: none may appear in any output of either run.
TOKEN = 's3cr3t-in-process-token'
ROUTING_KEY = 'R0UT1NGK3Yinpr0cess0123456789abc'  # 32 letters and digits, as PagerDuty's keys
PD_TOKEN = 'pd-rest-t0ken-in-process'
SP_KEY = 'statuspage-k3y-in-process'
GRAFANA_TOKEN = 'glsa_grafana-t0ken-in-process'
PAGE, COMPONENT, PD_INCIDENT = 'pg7x2k', 'cmp8ab3', 'PT4KHLK'
K8S_NS = 'shop'
LABELS = ['__name__', 'endpoint', 'instance', 'job', 'method', 'service', 'status']
SLO_WINDOW = 30 * 86400


# --------------------------------------------------------------------------- Prometheus

def vector(samples, at=AT):
    """An instant query's success envelope: samples is [(labels, value)]."""
    return Route(body={'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': labels, 'value': [at, str(value)]} for labels, value in samples]}})


def balanced(promql):
    depth = {')': '(', '}': '{', ']': '['}
    stack = []
    for char in promql:
        if char in '({[':
            stack.append(char)
        elif char in depth and (not stack or stack.pop() != depth[char]):
            return False
    return not stack


def prometheus_api(answer):
    """A Prometheus HTTP API whose instant and range queries `answer(promql, params, path)` gives;
    a query that does not parse is refused as Prometheus does (400, errorType bad_data)."""
    def route(handler):
        params = {k: v[0] for k, v in parse_qs(urlparse(handler.path).query).items()}
        promql = params['query']
        if not balanced(promql):
            return Route(400, {'status': 'error', 'errorType': 'bad_data',
                               'error': '1:%d: parse error: unclosed left parenthesis' % len(promql)})
        return answer(promql, params, urlparse(handler.path).path)
    return route


def matrix(params, value_at):
    """The one series of a range query, value_at(t) at each step from start to end."""
    start, end = float(params['start']), float(params['end'])
    step = float(params['step'].rstrip('s'))
    times = [start + i * step for i in range(int((end - start) / step) + 1)]
    return Route(body={'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': {}, 'values': [[t, str(value_at(t))] for t in times]}]}})


def gateway(promql, params, path):
    """/predict fails at 30% for ten minutes, /embed is fine; no errors a day before."""
    errors = 'status=~' in promql
    if path.endswith('/query_range'):
        return matrix(params, lambda t: (3.0 if t >= ONSET else 0.0) if errors else 20.0)
    if 'timestamp(' in promql:  # the first sample held: forty days of history
        return vector([({}, round(float(params.get('time', time.time())) - 40 * 86400))])
    rates = {'/predict': 3.0, '/embed': 0.0} if errors else {'/predict': 10.0, '/embed': 10.0}
    if 'offset' in promql and errors:
        rates = {}
    return vector([({'endpoint': endpoint}, rate) for endpoint, rate in rates.items()])


def recovered(promql, params, path):
    """No errors any more, 20 requests a second."""
    del params, path
    return vector([({}, 0.0 if 'status=~' in promql else 20.0)])


SLO_ANSWERS = [  # (part of the query, value); the first found wins
    ('slo:availability:ratio_rate30d', 0.9991), ('slo:availability:error_budget_remaining', 0.82),
    ('5..\"}[30d]', 2332.8), ('[30d]', 2592000), ('5..\"}[20m]', 360), ('[20m]', 24000),
    ('5..\"}[5m]', 0.05), ('[5m]', 20), ('5..\"}[30m]', 0.05), ('[30m]', 20),
    ('5..\"}[1h]', 3.0), ('[1h]', 20), ('5..\"}[6h]', 0.6), ('[6h]', 20),
]


def slo(promql, params, path):
    """The SLO of inference-gateway, by rules and counters; a whole window of history."""
    del path
    at = float(params['time'])
    if 'inference-gateway' not in promql:
        return vector([], at)
    if 'timestamp(' in promql:  # held longer than the range: the sample a scrape before its start
        span = 3600 if '[1h:' in promql else SLO_WINDOW
        return vector([({}, at - span - 7.5)], at)
    value = next(v for part, v in SLO_ANSWERS if part in promql)
    return vector([({}, value)], at)


def cadvisor(promql, params, path):
    """One container of the service, saturated."""
    del params, path
    name = {'name': 'sre-demo_inference-gateway_1'}
    figures = [('cpu_usage', 97.5), ('memory_usage', 61.2), ('throttled', 0.4),
               ('container_start_time', 2), ('oom_events', 1)]
    return vector([(name, next(v for part, v in figures if part in promql))])


# Response times of inference-gateway (latency): /predict became slow, /embed did not.
LATENCY_NOW = {'/predict': {0.5: 0.3, 0.95: 0.9, 0.99: 1.2}, '/embed': {0.5: 0.02, 0.95: 0.04, 0.99: 0.048},
               '': {0.5: 0.04, 0.95: 0.8, 0.99: 1.1}}
LATENCY_BEFORE = {'/predict': {0.5: 0.03, 0.95: 0.045, 0.99: 0.049}, '/embed': LATENCY_NOW['/embed'],
                  '': {0.5: 0.025, 0.95: 0.045, 0.99: 0.049}}
# Cumulative bucket rates (le: req/s), now and a day before: every request under the largest bucket.
LATENCY_BUCKETS = {'/predict': ({'0.05': 0.0, '0.25': 4.0, '1': 8.0, '2.5': 10.0, '+Inf': 10.0},
                                {'0.05': 10.0, '0.25': 10.0, '1': 10.0, '2.5': 10.0, '+Inf': 10.0}),
                   '/embed': ({'0.05': 10.0, '0.25': 10.0, '1': 10.0, '2.5': 10.0, '+Inf': 10.0},) * 2}


def latency(promql, params, path):
    """inference-gateway's latency histogram: percentiles, bucket rates and request rates; over a
    range, its p99, slow since ONSET."""
    if path.endswith('/query_range'):
        return matrix(params, lambda t: LATENCY_NOW[''][0.99] if t >= ONSET else LATENCY_BEFORE[''][0.99])
    at, before = float(params['time']), int(' offset ' in promql)
    if 'histogram_quantile(' in promql:
        q = float(promql.split('(', 2)[1].split(',')[0])
        figures = LATENCY_BEFORE if before else LATENCY_NOW
        if 'le, endpoint' in promql:
            return vector([({'endpoint': e}, figures[e][q]) for e in ('/predict', '/embed')], at)
        return vector([({}, figures[''][q])], at)
    if '_bucket' in promql:
        return vector([({'endpoint': e, 'le': le}, rate) for e, buckets in LATENCY_BUCKETS.items()
                       for le, rate in buckets[before].items()], at)
    return vector([({'endpoint': e}, 10.0) for e in ('/predict', '/embed')], at)


def success(data):
    return Route(body={'status': 'success', 'data': data})


def mount_prometheus(server, prefix, answer):
    api = prometheus_api(answer)
    for path in ('/api/v1/query', '/api/v1/query_range'):
        server.routes[prefix + path] = api
    server.routes[prefix + '/api/v1/labels'] = success(LABELS)
    server.routes[prefix + '/api/v1/label/status/values'] = success(['200', '500'])
    server.routes[prefix + '/api/v1/label/service/values'] = success(['inference-gateway'])
    server.routes[prefix + '/api/v1/status/buildinfo'] = success({
        'version': '2.53.1', 'revision': '14cfec3f6048b735e08c1e9c64c8d4211d32bab4', 'branch': 'HEAD',
        'buildUser': 'root@9a0b5b0ba8b7', 'buildDate': '20240711-12:08:35', 'goVersion': 'go1.22.5'})
    server.routes[prefix + '/api/v1/rules'] = success({'groups': [{
        'name': 'slo', 'file': '/etc/prometheus/rules/slo.yml', 'interval': 30, 'rules': [
            {'name': 'slo:availability:ratio_rate30d', 'type': 'recording', 'health': 'ok',
             'query': '1 - sum by (service) (rate(http_requests_total{status=~"5.."}[30d])) / '
                      'sum by (service) (rate(http_requests_total[30d]))', 'labels': {}}]}]})


# --------------------------------------------------------------------------- channels

def slack_web_api(server, prefix):
    def authed(body):
        def route(handler):
            if handler.headers.get('Authorization') != 'Bearer ' + TOKEN:
                return Route(body={'ok': False, 'error': 'invalid_auth'})
            return Route(body=body)
        return route
    server.routes[prefix + '/chat.postMessage'] = authed({
        'ok': True, 'channel': 'C0INCIDENT', 'ts': '1795446000.000100',
        'message': {'type': 'message', 'text': 'x', 'user': 'U0BOT', 'ts': '1795446000.000100'}})
    server.routes[prefix + '/auth.test'] = authed({
        'ok': True, 'url': 'https://sre-team.slack.com/', 'team': 'SRE', 'user': 'runbook-bot',
        'team_id': 'T0SRE', 'user_id': 'U0BOT', 'bot_id': 'B0BOT', 'is_enterprise_install': False})
    server.routes[prefix + '/conversations.info'] = authed({'ok': True, 'channel': {
        'id': 'C0INCIDENT', 'name': 'incidents', 'is_channel': True, 'is_archived': False,
        'is_member': True}})


def pagerduty_incident(status):
    return {'incident': {'id': PD_INCIDENT, 'type': 'incident', 'status': status,
                         'incident_key': 'am-group-key-1', 'title': 'HighErrorRate'}}


def statuspage(server, prefix):
    def authed(status, body):
        def route(handler):
            if handler.headers.get('Authorization') != 'OAuth ' + SP_KEY:
                return Route(401, {'message': 'Could not authenticate'})
            return Route(status, body)
        return route
    base = '%s/pages/%s' % (prefix, PAGE)
    server.routes[base] = authed(200, {'id': PAGE, 'name': 'Inference API'})
    server.routes['%s/components/%s' % (base, COMPONENT)] = authed(200, {
        'id': COMPONENT, 'page_id': PAGE, 'name': 'inference-gateway', 'status': 'operational'})
    server.routes[base + '/incidents/unresolved'] = authed(200, [])
    server.routes[('POST', base + '/incidents')] = authed(201, {
        'id': 'inc1', 'name': 'Elevated error rates on the ML inference API', 'status': 'investigating',
        'impact_override': None, 'shortlink': 'https://stspg.io/inc1', 'page_id': PAGE,
        'updated_at': '2026-11-23T15:01:00Z',
        'components': [{'id': COMPONENT, 'status': 'partial_outage'}],
        'incident_updates': [{'status': 'investigating', 'body': 'We are investigating.',
                              'created_at': '2026-11-23T15:01:00Z'}]})


def grafana(server, prefix):
    def route(handler):
        if handler.headers.get('Authorization') != 'Bearer ' + GRAFANA_TOKEN:
            return Route(401, {'message': 'Invalid API key'})
        if handler.command == 'POST':
            return Route(200, {'message': 'Annotation added', 'id': 1})
        if 'dashboardUID=' in handler.path:
            return Route(400, {'message': 'Invalid dashboard UID in annotation request'})
        return Route(200, [])
    server.routes[prefix + '/api/annotations'] = route


# --------------------------------------------------------------------------- logs and traces

def loki_answer():
    """Five time-outs and two refused connections of the gateway, around T0."""
    labels = {'container': 'inference-gateway', 'host': 'node-1', 'stream': 'stdout'}
    timeouts = [(T0 + i, gateway_line(T0 + i, 'ERROR', 'upstream model-service failed: timed out',
                                      '/predict' if i % 2 else '/embed', 504, '%032x' % i,
                                      'TimeoutError: timed out')) for i in range(5)]
    refused = [(T0 + 10 + i, gateway_line(T0 + 10 + i, 'ERROR', 'upstream feature-store failed: '
                                          'connection refused', '/predict', 502, 'beef%028d' % i))
               for i in range(2)]
    return loki_streams(loki_stream(labels, timeouts), loki_stream(labels, refused))


def fake_server():
    """Every HTTP API but Kubernetes' on one local server."""
    server = LocalServer()
    mount_prometheus(server, '', gateway)
    mount_prometheus(server, '/watch', recovered)
    mount_prometheus(server, '/slo', slo)
    mount_prometheus(server, '/cadvisor', cadvisor)
    mount_prometheus(server, '/latency', latency)
    server.routes['/health'] = Route(body={'status': 'ok', 'dependencies': {'db': 'up'}})
    slack_web_api(server, '/slack')
    server.routes['/slack-refusing/chat.postMessage'] = Route(body={'ok': False, 'error': 'channel_not_found'})
    server.routes['/v2/enqueue'] = Route(202, {'status': 'success', 'message': 'Event processed',
                                               'dedup_key': 'inference-gateway-1'})
    server.routes['/pd-invalid/v2/enqueue'] = Route(400, {
        'status': 'invalid event', 'message': 'Event object is invalid',
        'errors': ["'payload.summary' is missing or blank"]})
    server.routes[('GET', '/pagerduty/incidents/' + PD_INCIDENT)] = Route(200, pagerduty_incident('triggered'))
    server.routes[('PUT', '/pagerduty/incidents/' + PD_INCIDENT)] = Route(200, pagerduty_incident('acknowledged'))
    server.routes['/pagerduty/abilities'] = Route(200, {'abilities': ['teams', 'urgencies']})
    statuspage(server, '/statuspage')
    grafana(server, '/grafana')
    server.routes['/loki/api/v1/query_range'] = Route(body=loki_answer())
    server.routes['/es/logs-missing/_search'] = Route(404, es_index_not_found('logs-missing'))
    now_us = int(time.time() * 1e6)  # traces of the last minutes, in both runs' lookback
    server.routes['/jaeger/api/traces'] = FakeJaeger(
        [timeout_trace('aa%02d' % i, now_us - (i + 1) * 60 * 10 ** 6) for i in range(3)]
        + [ok_trace('ok01', now_us - 10 ** 6)])
    server.routes['/jaeger-partial/api/traces'] = FakeJaeger(
        [timeout_trace('bb01', now_us - 120 * 10 ** 6)],
        extra_errors=[{'code': 500, 'msg': 'trace not found in storage', 'traceID': 'bb02'}])
    server.routes['/jaeger-broken/api/traces'] = FakeJaeger(storage_error='cassandra: no hosts available')
    return server


def fake_kubernetes():
    """A Deployment of two revisions: one pod crash-loops (OOM-killed), one serves."""
    api = FakeApiServer()
    limits = {'cpu': '500m', 'memory': '256Mi'}
    dep = deployment('backend', K8S_NS, image='shop/backend:2.1', replicas=2, ready=1, revision=2,
                     limits=limits, requests={'cpu': '250m', 'memory': '128Mi'})
    crash = pod(dep, 'backend-h2-a', waiting='CrashLoopBackOff', restarts=6, last_terminated='OOMKilled')
    healthy = pod(dep, 'backend-h2-b')
    api.add(dep, crash, healthy,
            replica_set(dep, 1, 'shop/backend:2.0', created='2026-11-23T12:00:00Z'),
            replica_set(dep, 2, 'shop/backend:2.1', created='2026-11-23T14:00:00Z', replicas=2,
                        change_cause='deploy 2.1'),
            hpa(dep, 2, 2, current=2), service(dep), endpoints(dep, ready=[healthy], not_ready=[crash]),
            event(crash, 'BackOff', 'Back-off restarting failed container backend in pod backend-h2-a', count=12))
    api.set_log(K8S_NS, 'backend-h2-a', 'backend', ['starting', 'MemoryError: cannot allocate'], previous=True)
    return api

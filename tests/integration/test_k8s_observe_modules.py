"""The read-only modules on Kubernetes - k8s_status, and log_search, resource_usage, recent_changes
and service_health with their Kubernetes sources - run as Ansible runs them (a child process,
tests/conftest.py run_module), with the real `kubernetes` client pointed through host + api_key +
validate_certs: false at fake_k8s.FakeApiServer, which answers as the Kubernetes API documents:
List objects, Status objects on errors, text/plain pod logs with container, previous,
sinceSeconds, tailLines and timestamps, label and field selectors, metrics.k8s.io PodMetrics (404
without metrics-server) and the services/proxy subresource forwarded to a local HTTP server.
"""

import json

import pytest

from conftest import LocalServer, Route, run_module
from fake_k8s import TOKEN, FakeApiServer, deployment, endpoints, event, hpa, pod, pod_metrics, replica_set, service
from test_api_errors import free_port
from test_k8s_workload_module import Kubernetes122

NS = 'shop'
LIMITS = {'cpu': '500m', 'memory': '256Mi'}


@pytest.fixture
def api():
    fake = FakeApiServer()
    dep = deployment('backend', NS, image='shop/backend:2.1', replicas=3, ready=1, revision=2, limits=LIMITS,
                     requests={'cpu': '250m', 'memory': '128Mi'})
    other = deployment('backend-admin', NS, image='shop/admin:9', labels={'app': 'backend', 'tier': 'admin'})
    crash = pod(dep, 'backend-h2-a', waiting='CrashLoopBackOff', restarts=6, last_terminated='OOMKilled')
    pull = pod(dep, 'backend-h2-b', phase='Pending', waiting='ImagePullBackOff')
    healthy = pod(dep, 'backend-h2-c')
    fake.add(dep, other, crash, pull, healthy,
             replica_set(dep, 1, 'shop/backend:2.0', created='2026-11-23T12:00:00Z'),
             replica_set(dep, 2, 'shop/backend:2.1', created='2026-11-23T14:00:00Z', replicas=3,
                         change_cause='deploy 2.1'),
             # backend-admin's ReplicaSet carries app=backend too: not a revision of backend
             replica_set(other, 5, 'shop/admin:9', created='2026-11-23T14:30:00Z', replicas=1),
             hpa(dep, 2, 3, current=3), service(dep), endpoints(dep, ready=[healthy], not_ready=[crash]),
             event(crash, 'BackOff', 'Back-off restarting failed container backend in pod backend-h2-a', count=12),
             event(pull, 'Failed', 'Failed to pull image "shop/backend:2.1": not found', ago=90),
             event(other, 'Ignored', 'an event of another Deployment'),
             event(crash, 'Old', 'too old for events_since', ago=7200),
             pod_metrics(healthy, cpu='475m', memory='120Mi'))
    fake.set_log(NS, 'backend-h2-a', 'backend', ['starting', 'loading the model', 'MemoryError: cannot allocate'],
                 previous=True)
    fake.set_log(NS, 'backend-h2-a', 'backend', ['starting'])
    fake.set_log(NS, 'backend-h2-c', 'backend', ['{"level":"ERROR","message":"payment timeout after 5s","path":"/pay"}'] * 4
                 + ['{"level":"INFO","message":"ok"}'])
    yield fake
    fake.close()


def run(api, module, check_mode=False, **args):
    params = dict(host=api.url, api_key=TOKEN, validate_certs=False, request_timeout=5)
    params.update(args)
    result = run_module(module, params, check_mode=check_mode)
    assert TOKEN not in json.dumps(result)
    return result


# --------------------------------------------------------------------------- k8s_status

def test_k8s_status_reads_the_hpa_through_autoscaling_v1_before_1_23():
    server = Kubernetes122()
    dep = deployment('backend', NS, replicas=3)
    v1 = hpa(dep, 2, 3, current=3)
    v1.update(apiVersion='autoscaling/v1')
    server.add(dep, replica_set(dep, 1, 'app:1', replicas=3), pod(dep, 'backend-1'), v1)
    try:
        result = run(server, 'k8s_status_info', name='backend', namespace=NS)
    finally:
        server.close()
    assert not result.get('failed'), result
    assert result['hpa']['name'] == 'backend' and result['hpa']['max_replicas'] == 3 and result['hpa']['at_max']


def test_k8s_status_the_service_down_contract(api):
    result = run(api, 'k8s_status_info', name='backend', namespace=NS, tail=2)
    assert not result.get('failed') and result['changed'] is False, result
    assert set(result) >= {'deployment', 'pods', 'endpoints', 'events', 'hpa', 'problems', 'oom', 'logs', 'summary'}
    assert result['deployment']['name'] == 'backend' and result['deployment']['ready_replicas'] == 1
    assert result['deployment']['revision'] == 2 and result['deployment']['images'] == ['shop/backend:2.1']
    assert [p['name'] for p in result['pods']] == ['backend-h2-a', 'backend-h2-b', 'backend-h2-c']
    crash = result['pods'][0]
    assert (crash['waiting_reason'], crash['last_terminated_reason'], crash['last_exit_code'], crash['restarts'],
            crash['ready']) == ('CrashLoopBackOff', 'OOMKilled', 137, 6, False)
    assert result['endpoints'] == {'found': True, 'endpoints_found': True, 'selector': True, 'service': 'backend',
                                   'ready': 1, 'not_ready': 1}
    assert [(e['reason'], e['object']) for e in result['events']] == [('BackOff', 'Pod/backend-h2-a'),
                                                                      ('Failed', 'Pod/backend-h2-b')]
    assert result['events'][0]['count'] == 12
    assert result['hpa']['at_max'] and result['hpa']['max_replicas'] == 3
    assert [(p['kind'], p['pods']) for p in result['problems']] == [
        ('CrashLoopBackOff', ['backend-h2-a']), ('ImagePullBackOff', ['backend-h2-b']), ('OOMKilled', ['backend-h2-a'])]
    assert result['oom'] == {'oom_killed': True, 'count': 1}
    assert result['logs'] == ['loading the model', 'MemoryError: cannot allocate']
    assert result['summary'].startswith('deployment backend in shop: 1/3 replicas ready; problems: CrashLoopBackOff')
    previous = [r for r in api.requests if r['path'].endswith('/log')]
    assert previous[0]['query'] == {'container': ['backend'], 'previous': ['true'], 'tailLines': ['2']}


def test_k8s_status_unschedulable_no_endpoints_and_check_mode(api):
    dep = api.get('deployments', 'backend', NS)
    for name in ('backend-h2-a', 'backend-h2-b', 'backend-h2-c'):
        del api.objects[('pods', NS, name)]
    pending = pod(dep, 'backend-h2-d', unschedulable='0/3 nodes are available: 3 Insufficient memory.')
    api.add(pending, endpoints(dep), event(pending, 'FailedScheduling', '0/3 nodes are available: 3 Insufficient memory.'))
    result = run(api, 'k8s_status_info', check_mode=True, name='backend', namespace=NS)
    assert not result.get('failed'), result
    assert result['problems'] == [
        {'kind': 'Unschedulable', 'pods': ['backend-h2-d'], 'message': '0/3 nodes are available: 3 Insufficient memory.'},
        {'kind': 'NoReadyEndpoints', 'pods': [],
         'message': 'Service backend has no ready endpoint (0 not ready): every request to it fails'}]
    assert result['pods'][0]['node'] is None and result['logs'] == []


def add_crashing_canary(api):
    """backend-admin, a canary whose labels (app=backend) match backend's selector: its own ReplicaSet
    (revision 5, in the fixture) and two crash-looping pods, busy and with Warning events."""
    canary = api.get('deployments', 'backend-admin', NS)
    pods = [pod(canary, 'backend-admin-h5-%s' % suffix, waiting='CrashLoopBackOff', restarts=9, last_terminated='OOMKilled',
                revision=5) for suffix in ('x', 'y')]
    assert all(p['metadata']['labels']['app'] == 'backend' for p in pods)
    api.add(*pods, *[pod_metrics(p, cpu='1', memory='250Mi') for p in pods],
            event(pods[0], 'BackOff', 'Back-off restarting failed container backend-admin'))
    return pods


def test_k8s_status_counts_only_the_pods_of_the_deployments_replica_sets(api):
    add_crashing_canary(api)
    listed = run(api, 'log_search_info', backend='kubernetes', service='backend', namespace=NS, selector='app=backend')
    assert len(listed['pods']) == 5       # what backend's selector matches
    result = run(api, 'k8s_status_info', name='backend', namespace=NS, tail=2)
    assert not result.get('failed'), result
    assert [p['name'] for p in result['pods']] == ['backend-h2-a', 'backend-h2-b', 'backend-h2-c']
    assert [(p['kind'], p['pods']) for p in result['problems']] == [
        ('CrashLoopBackOff', ['backend-h2-a']), ('ImagePullBackOff', ['backend-h2-b']), ('OOMKilled', ['backend-h2-a'])]
    assert result['oom'] == {'oom_killed': True, 'count': 1}
    assert [e['object'] for e in result['events']] == ['Pod/backend-h2-a', 'Pod/backend-h2-b']
    assert result['logs'] == ['loading the model', 'MemoryError: cannot allocate']
    assert not result.get('warnings'), result
    pods_read = next(r for r in api.requests if r['path'] == '/api/v1/namespaces/shop/pods')
    assert pods_read['query']['labelSelector'] == ['app=backend']


def test_k8s_status_service_without_endpoints_object_is_not_no_service(api):
    dep = api.get('deployments', 'backend', NS)
    del api.objects[('endpoints', NS, 'backend')]
    not_made = run(api, 'k8s_status_info', name='backend', namespace=NS)
    assert not not_made.get('failed'), not_made
    assert not_made['endpoints'] == {'found': True, 'endpoints_found': False, 'selector': True, 'service': 'backend',
                                     'ready': 0, 'not_ready': 0}
    assert not_made['problems'][-1] == {
        'kind': 'NoEndpointsObject', 'pods': [],
        'message': 'Service backend has no Endpoints object: the endpoints controller has not made one (yet); '
                   'no traffic reaches any pod through it'}
    assert '; Service backend has no Endpoints object (not made by the endpoints controller); HPA' in not_made['summary']
    assert any(r['path'] == '/api/v1/namespaces/shop/services/backend' for r in api.requests)

    api.add(service(dep, selector=False))
    selectorless = run(api, 'k8s_status_info', name='backend', namespace=NS)
    assert (selectorless['endpoints']['found'], selectorless['endpoints']['endpoints_found'],
            selectorless['endpoints']['selector']) == (True, False, False)
    assert selectorless['problems'][-1]['message'] == (
        'Service backend has no Endpoints object: it has no selector, so no controller makes one (the Endpoints of '
        'such a Service are created by hand); no traffic reaches any pod through it')
    assert '; Service backend has no Endpoints object (no selector); HPA' in selectorless['summary']

    del api.objects[('services', NS, 'backend')]
    no_service = run(api, 'k8s_status_info', name='backend', namespace=NS)
    assert no_service['endpoints'] == {'found': False, 'endpoints_found': False, 'selector': None, 'service': 'backend',
                                       'ready': 0, 'not_ready': 0}
    assert 'NoEndpointsObject' not in [p['kind'] for p in no_service['problems']]
    assert '; no Service backend; HPA' in no_service['summary']


QUOTA = ('pods "backend-h00003-7xk2p" is forbidden: exceeded quota: compute-resources, requested: '
         'limits.memory=256Mi, used: limits.memory=768Mi, limited: limits.memory=1Gi')


def test_k8s_status_names_a_replica_failure_before_the_deadline_it_causes(api):
    dep = api.get('deployments', 'backend', NS)
    failure = {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA,
               'lastUpdateTime': '2026-11-23T14:10:00Z', 'lastTransitionTime': '2026-11-23T14:10:00Z'}
    progressing = next(c for c in dep['status']['conditions'] if c['type'] == 'Progressing')
    progressing.update(status='False', reason='ProgressDeadlineExceeded',
                       message='ReplicaSet "backend-h00003" has timed out progressing.')
    dep['status']['conditions'].append(failure)
    # The new ReplicaSet says it too (the Deployment controller copies its condition): one message.
    api.add(replica_set(dep, 3, 'shop/backend:2.2', replicas=3, conditions=[failure]))
    result = run(api, 'k8s_status_info', name='backend', namespace=NS)
    assert not result.get('failed'), result
    kinds = [p['kind'] for p in result['problems']]
    assert kinds == ['CrashLoopBackOff', 'ImagePullBackOff', 'OOMKilled', 'ReplicaFailure', 'ProgressDeadlineExceeded']
    assert result['problems'][3] == {'kind': 'ReplicaFailure', 'pods': [], 'message': QUOTA}
    assert ('OOMKilled (1 pods), ReplicaFailure (%s), ProgressDeadlineExceeded (ReplicaSet "backend-h00003" has '
            'timed out progressing.)' % QUOTA) in result['summary']
    assert {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA} \
        in result['deployment']['conditions']


def test_k8s_status_fails_clearly(api):
    missing = run(api, 'k8s_status_info', name='nope', namespace=NS)
    assert missing['failed'] and missing['msg'].startswith('deployment nope not found in namespace shop (HTTP 404')
    down = run_module('k8s_status_info', dict(name='backend', namespace=NS, host='http://127.0.0.1:%d' % free_port(),
                                              api_key=TOKEN, validate_certs=False, request_timeout=2))
    assert down['failed'] and down['msg'].startswith('cannot reach the Kubernetes API to get deployment backend')
    assert TOKEN not in json.dumps(down)
    refused = run_module('k8s_status_info', dict(name='backend', namespace=NS, host=api.url, api_key='wrong-token',
                                                 validate_certs=False))
    assert refused['failed'] and 'refused the credentials' in refused['msg'] and 'wrong-token' not in json.dumps(refused)


# --------------------------------------------------------------------------- log_search

def test_log_search_reads_every_pod_and_the_crashed_instances(api):
    result = run(api, 'log_search_info', backend='kubernetes', service='backend', namespace=NS, selector='app=backend,tier!=admin',
                 since='30m', max_lines=100)
    assert not result.get('failed'), result
    assert result['top_messages'][0]['pattern'] == 'payment timeout after <num>s' and result['top_messages'][0]['count'] == 4
    assert result['top_messages'][0]['sources'] == {'backend-h2-c/backend': 4}
    assert any(t['sources'] == {'backend-h2-a/backend (previous)': 1} for t in result['top_messages'])
    # The pod that never started has no log: it is not read, and the logs are complete.
    assert not result['partial'] and not result['backend_warnings'], result['backend_warnings']
    assert not any('backend-h2-b' in source for t in result['top_messages'] for source in t['sources'])
    assert [p['name'] for p in result['pods']] == ['backend-h2-a', 'backend-h2-b', 'backend-h2-c']
    reads = sorted((r['path'].split('/')[-2], r['query'].get('previous', ['false'])[0]) for r in api.requests
                   if r['path'].endswith('/log'))
    assert reads == [('backend-h2-a', 'false'), ('backend-h2-a', 'true'), ('backend-h2-c', 'false')]
    one = next(r for r in api.requests if r['path'].endswith('/log'))
    assert one['query']['timestamps'] == ['true'] and one['query']['tailLines'] == ['100']
    assert 1790 <= int(one['query']['sinceSeconds'][0]) <= 1802
    assert next(r for r in api.requests if r['path'].endswith('/pods'))['query']['labelSelector'] == ['app=backend,tier!=admin']


def test_log_search_no_pod_fails_clearly(api):
    result = run(api, 'log_search_info', backend='kubernetes', service='backend', namespace=NS, selector='app=nothing')
    assert result['failed'] and 'no pod matches selector app=nothing in namespace shop' in result['msg']
    missing = run(api, 'log_search_info', backend='kubernetes', service='backend', namespace=NS)
    assert missing['failed'] and 'selector' in missing['msg']


# --------------------------------------------------------------------------- resource_usage

def test_resource_usage_against_limits_with_hpa_and_limits(api):
    result = run(api, 'resource_usage_info', source='kubernetes', service='backend', namespace=NS)
    assert not result.get('failed'), result
    assert result['max_cpu_percent'] == 95.0 and result['max_memory_percent'] == 46.9
    assert result['restarts'] == 6 and result['oom_kills'] == 1 and result['saturated']
    assert result['hpa']['name'] == 'backend' and result['hpa']['at_max']
    assert result['limits'] == {'backend': {'limits': LIMITS, 'requests': {'cpu': '250m', 'memory': '128Mi'}}}
    assert result['selector'] == 'app=backend' and result['partial'] is False
    assert 'backend-h2-c/backend: cpu 95% of its 0.5-core limit > 90%' in result['reasons']
    metrics = next(r for r in api.requests if r['path'].startswith('/apis/metrics.k8s.io/'))
    assert metrics['path'] == '/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods'
    assert metrics['query']['labelSelector'] == ['app=backend']


def test_resource_usage_measures_only_the_deployments_pods(api):
    add_crashing_canary(api)
    result = run(api, 'resource_usage_info', source='kubernetes', service='backend', namespace=NS)
    assert not result.get('failed'), result
    assert [c['name'] for c in result['containers']] == ['backend-h2-a/backend', 'backend-h2-b/backend',
                                                         'backend-h2-c/backend']
    assert result['max_cpu_percent'] == 95.0 and result['restarts'] == 6 and result['oom_kills'] == 1
    assert result['partial'] is False
    assert sorted(r['path'].rsplit('/', 1)[1] for r in api.requests if r['method'] == 'GET') == [
        'backend', 'horizontalpodautoscalers', 'pods', 'pods', 'replicasets']
    # The selector option gives the pods it selects, whoever owns them.
    chosen = run(api, 'resource_usage_info', source='kubernetes', service='backend', namespace=NS,
                 selector='app=backend,tier=admin')
    assert [c['name'] for c in chosen['containers']] == ['backend-admin-h5-x/backend-admin', 'backend-admin-h5-y/backend-admin']
    assert chosen['restarts'] == 18


def test_resource_usage_of_a_deployment_whose_selected_pods_are_all_anothers(api):
    for name in ('backend-h2-a', 'backend-h2-b', 'backend-h2-c'):
        del api.objects[('pods', NS, name)]
    add_crashing_canary(api)
    result = run(api, 'resource_usage_info', source='kubernetes', service='backend', namespace=NS)
    assert result['failed'] and result['msg'].startswith(
        'none of the 2 pods of selector app=backend in namespace shop belongs to deployment backend')


@pytest.mark.parametrize('state, text', [(False, 'metrics-server is not installed: CPU and memory unknown; kubectl top would fail too'),
                                         ('down', 'metrics-server is installed but does not answer')])
def test_resource_usage_without_metrics_server(api, state, text):
    api.metrics_server = state
    result = run(api, 'resource_usage_info', source='kubernetes', service='backend', namespace=NS)
    assert not result.get('failed'), result
    assert result['partial'] and result['max_cpu_percent'] is None and result['max_memory_percent'] is None
    assert any(m.startswith(text) for m in result['missing'])
    assert text in json.dumps(result['warnings'])
    assert result['restarts'] == 6 and result['oom_kills'] == 1 and result['hpa']['max_replicas'] == 3


# --------------------------------------------------------------------------- recent_changes

def test_recent_changes_rollout_history_and_rollback_target(api):
    result = run(api, 'recent_changes_info', source='kubernetes', name='backend', namespace=NS, since='30d',
                 onset='2026-11-23T14:10:00Z')
    assert not result.get('failed'), result
    assert [(c['revision'], c['image'], c['previous_image']) for c in result['changes']] == [
        (2, 'shop/backend:2.1', 'shop/backend:2.0'), (1, 'shop/backend:2.0', None)]
    assert result['changes'][0]['seconds_before_onset'] == 600.0 and result['changes'][0]['change_cause'] == 'deploy 2.1'
    assert (result['current_revision'], result['previous_revision']) == (2, 1)
    assert (result['current_image'], result['previous_image']) == ('shop/backend:2.1', 'shop/backend:2.0')
    assert result['last_deploy']['revision'] == 2


# --------------------------------------------------------------------------- service_health

def test_service_health_through_the_service_proxy(api):
    web = LocalServer()
    web.routes['/ready'] = Route(body={'status': 'ok', 'dependencies': {'db': 'up', 'cache': 'down'}})
    web.routes['/'] = Route(200, b'')
    api.proxy_to(NS, 'backend', web.url)
    try:
        result = run(api, 'service_health_info', proxy={'namespace': NS, 'service': 'backend', 'port': 'http'},
                     headers={'X-Probe': 'runbook', 'Authorization': 'Bearer not-for-the-service'},
                     checks=[{'name': 'ready', 'url': '/ready?verbose=1', 'query': 'dependencies'},
                             {'name': 'head', 'url': '/', 'method': 'HEAD'}])
    finally:
        web.close()
    assert result['all_ok'], result
    ready = result['by_name']['ready']
    assert ready['extracted'] == {'db': 'up', 'cache': 'down'} and ready['via'] == 'service proxy shop/backend:http'
    # The two checks run at once: find each request by its method.
    proxied = next(r for r in api.requests if '/proxy' in r['path'] and r['method'] == 'GET')
    assert proxied['path'] == '/api/v1/namespaces/shop/services/backend:http/proxy/ready'
    assert proxied['query'] == {'verbose': ['1']}
    assert proxied['headers']['authorization'] == 'Bearer ' + TOKEN
    served = next(r for r in web.requests if r['method'] == 'GET')
    assert served['path'] == '/ready?verbose=1' and served['headers']['x-probe'] == 'runbook'
    assert 'authorization' not in served['headers']
    assert sorted(r['method'] for r in web.requests) == ['GET', 'HEAD']


def test_service_health_proxy_without_endpoints_is_data(api):
    api.add(endpoints(api.get('deployments', 'backend', NS)))
    result = run(api, 'service_health_info', proxy={'namespace': NS, 'service': 'backend', 'port': '80'},
                 checks=[{'name': 'health', 'url': '/health'}])
    assert not result.get('failed') and not result['all_ok'], result
    check = result['checks'][0]
    assert check['status'] == 503 and check['ok'] is False
    assert check['error'] == 'the Kubernetes API server answered for the service: no endpoints available for service "backend"'
    no_proxy = run(api, 'service_health_info', checks=[{'url': '/health'}])
    assert no_proxy['failed'] and 'set proxy' in no_proxy['msg']

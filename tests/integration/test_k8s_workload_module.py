"""k8s_workload run as Ansible runs it (a child process, tests/conftest.py run_module), with the
real `kubernetes` client, pointed through host + api_key + validate_certs: false at FakeApiServer
(fake_k8s.py, shared by the Kubernetes module tests), a small HTTP server on 127.0.0.1 answering
the REST paths the module calls as the Kubernetes API documents them:

- GET  /apis/apps/v1/namespaces/{ns}/deployments/{name}, /api/v1/namespaces/{ns}/configmaps/{name}
- GET  /apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers (a HorizontalPodAutoscalerList)
- PATCH of those objects (and of /horizontalpodautoscalers/{name}) as a strategic merge (merge key
  `name` for containers, env and volumes, `$patch: delete`, null removes a key), with `?dryRun=All`
  answering the patched object without storing it (a JSON patch of `replace` ops too; other
  patch types get 415).
- Errors as Status objects: 401 without the bearer token, 404 NotFound, 409 Conflict, 422 Invalid
  (request above limit, `value` with `valueFrom`, minReplicas above maxReplicas).
- Quantities stored canonically ("2000m" comes back as "2"), generation bumped by spec changes.

It also plays the controllers, one step per GET of a Deployment changed by a PATCH (directly or
through its HPA): the Deployment controller observes the new generation (a template change gets
the next revision), then reports every replica updated and available; the HPA controller raises
spec.replicas to its minReplicas.
"""

import copy
import json
import re
import time

import pytest

from conftest import run_module
from fake_k8s import NOT_FOUND_PATH, REVISION, TOKEN, ApiStatus, FakeApiServer, replica_set

NS = 'prod'
NAME = 'inference-gateway'
CONFIG = 'inference-gateway-config'


def deployment(replicas=3, env_from=True):
    container = {'name': 'gateway', 'image': 'registry.example/inference-gateway:v1.2.3',
                 'env': [{'name': 'FEATURE_ENDPOINT_XYZ_ENABLED', 'value': 'true'},
                         {'name': 'LOG_LEVEL', 'value': 'info'},
                         {'name': 'DB_PASSWORD', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'password'}}}],
                 'resources': {'limits': {'cpu': '1', 'memory': '1Gi'}, 'requests': {'cpu': '500m', 'memory': '512Mi'}},
                 'terminationMessagePath': '/dev/termination-log', 'terminationMessagePolicy': 'File',
                 'imagePullPolicy': 'IfNotPresent'}
    if env_from:
        container['envFrom'] = [{'configMapRef': {'name': CONFIG}}]
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment',
            'metadata': {'name': NAME, 'namespace': NS, 'uid': '6f1d2c3b-0a9e-4d8c-b7a6-5e4f3d2c1b0a',
                         'resourceVersion': '1000', 'generation': 4, 'creationTimestamp': '2024-05-01T09:00:00Z',
                         'labels': {'app': NAME}, 'annotations': {REVISION: '7'}},
            'spec': {'replicas': replicas, 'selector': {'matchLabels': {'app': NAME}},
                     'template': {'metadata': {'creationTimestamp': None, 'labels': {'app': NAME}},
                                  'spec': {'containers': [container], 'restartPolicy': 'Always',
                                           'terminationGracePeriodSeconds': 30, 'dnsPolicy': 'ClusterFirst',
                                           'securityContext': {}, 'schedulerName': 'default-scheduler'}},
                     'strategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': '25%', 'maxSurge': '25%'}},
                     'revisionHistoryLimit': 10, 'progressDeadlineSeconds': 600},
            'status': {'observedGeneration': 4, 'replicas': replicas, 'updatedReplicas': replicas,
                       'readyReplicas': replicas, 'availableReplicas': replicas,
                       'conditions': [{'type': 'Available', 'status': 'True', 'reason': 'MinimumReplicasAvailable',
                                       'message': 'Deployment has minimum availability.',
                                       'lastUpdateTime': '2024-05-01T09:01:00Z', 'lastTransitionTime': '2024-05-01T09:01:00Z'},
                                      {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable',
                                       'message': 'ReplicaSet "inference-gateway-7d4b9c8f6d" has successfully progressed.',
                                       'lastUpdateTime': '2024-05-01T09:01:00Z', 'lastTransitionTime': '2024-05-01T09:00:00Z'}]}}


def hpa(low=2, high=8, current=3):
    return {'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',
            'metadata': {'name': NAME, 'namespace': NS, 'resourceVersion': '900', 'creationTimestamp': '2024-05-01T09:00:00Z'},
            'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': NAME},
                     'minReplicas': low, 'maxReplicas': high,
                     'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {
                         'type': 'Utilization', 'averageUtilization': 70}}}]},
            'status': {'currentReplicas': current, 'desiredReplicas': current}}


def other_hpa():
    other = hpa(low=1, high=3)
    other['metadata']['name'] = 'model-service'
    other['spec']['scaleTargetRef']['name'] = 'model-service'
    return other


def configmap():
    return {'apiVersion': 'v1', 'kind': 'ConfigMap',
            'metadata': {'name': CONFIG, 'namespace': NS, 'resourceVersion': '800', 'creationTimestamp': '2024-05-01T09:00:00Z'},
            'data': {'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info'}}


@pytest.fixture
def api():
    fake = FakeApiServer()
    fake.add(deployment())
    fake.add(other_hpa())
    fake.add(configmap())
    yield fake
    fake.close()


def run(api, check_mode=False, diff=False, **args):
    args = dict(dict(name=NAME, namespace=NS, host=api.url, api_key=TOKEN, validate_certs=False), **args)
    if diff:
        args['_ansible_diff'] = True
    api.requests.clear()
    result = run_module('k8s_workload', args, check_mode=check_mode)
    assert TOKEN not in json.dumps(result)
    return result


def container(api):
    return api.get('deployments', NAME)['spec']['template']['spec']['containers'][0]


def test_scale_without_hpa_and_again(api):
    result = run(api, replicas='6')
    assert result['changed'] and not result.get('failed'), result
    assert result['patches'] == [{'kind': 'Deployment', 'name': NAME, 'body': {'spec': {'replicas': 6}}}]
    assert [(r['path'], r['query'], r['content_type']) for r in api.patches()] == [
        ('/apis/apps/v1/namespaces/prod/deployments/inference-gateway', {}, 'application/strategic-merge-patch+json')]
    assert api.get('deployments', NAME)['spec']['replicas'] == 6
    assert result['before']['replicas'] == 3 and result['after']['replicas'] == 6
    assert result['before']['hpa'] is None  # the model-service HPA is not this workload's
    assert result['target_replicas'] == 6 and result['revision_before'] == 7 and result['creates_revision'] is False
    again = run(api, replicas='6')
    assert not again['changed'] and again['patches'] == [] and api.patches() == []


def test_relative_scale_under_an_hpa_moves_its_floor(api):
    api.add(hpa(low=2, high=8))
    result = run(api, replicas='+3')
    assert result['changed'], result
    assert result['patches'] == [{'kind': 'HorizontalPodAutoscaler', 'name': NAME, 'body': {'spec': {'minReplicas': 6}}}]
    assert [r['path'] for r in api.patches()] == ['/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/inference-gateway']
    # The HPA, not the module, raised spec.replicas; the module waited for it.
    assert api.get('deployments', NAME)['spec']['replicas'] == 6
    assert result['after']['replicas'] == 6
    assert result['before']['hpa'] == {'name': NAME, 'min': 2, 'max': 8, 'current': 3}
    assert result['after']['hpa'] == {'name': NAME, 'min': 6, 'max': 8, 'current': 6}
    again = run(api, replicas='6')
    assert not again['changed'] and api.patches() == []


def test_above_the_hpa_max_refused_then_raised(api):
    api.add(hpa(low=2, high=8))
    refused = run(api, replicas='9')
    assert refused['failed'] and api.patches() == []
    assert refused['msg'].startswith('Deployment prod/inference-gateway: HorizontalPodAutoscaler inference-gateway '
                                     'manages this workload with maxReplicas 8: 9 replicas is above it')
    assert 'hpa_raise_max: true' in refused['msg']
    raised = run(api, replicas='9', hpa_raise_max=True, wait=False)
    assert raised['changed'] and raised['patches'][0]['body'] == {'spec': {'minReplicas': 9, 'maxReplicas': 9}}
    assert api.get('horizontalpodautoscalers', NAME)['spec'] == dict(hpa()['spec'], minReplicas=9, maxReplicas=9)
    assert api.get('deployments', NAME)['spec']['replicas'] == 3  # never patched by the module


def test_out_of_bounds_is_refused(api):
    result = run(api, replicas='+8')
    assert result['failed'] and api.patches() == []
    assert result['msg'] == ('Deployment prod/inference-gateway: replicas +8 gives 11 (now 3), outside the bounds [1, 10] '
                             '(min_replicas, max_replicas): refusing; change the bounds if 11 is intended')


def test_resources_new_revision_and_idempotence_across_canonical_quantities(api):
    result = run(api, diff=True, resources={'limits': {'cpu': '2000m', 'memory': '4Gi'}})
    assert result['changed'] and result['creates_revision'], result
    assert result['patches'][0]['body'] == {'spec': {'template': {'spec': {'containers': [
        {'name': 'gateway', 'resources': {'limits': {'cpu': '2000m', 'memory': '4Gi'}}}]}}}}
    assert container(api)['resources']['limits'] == {'cpu': '2', 'memory': '4Gi'}
    assert result['after']['resources']['limits'] == {'cpu': '2', 'memory': '4Gi'}
    assert result['revision_before'] == 7
    assert api.get('deployments', NAME)['metadata']['annotations'][REVISION] == '8'
    assert result['diff'] == {'before': {'resources': result['before']['resources']},
                              'after': {'resources': result['after']['resources']}}
    again = run(api, resources={'limits': {'cpu': 2, 'memory': '4096Mi'}})
    assert not again['changed'] and api.patches() == []
    assert again['revision_before'] == 8


def test_env_set_unset_reference_replaced_and_secrets_masked(api):
    result = run(api, env={'FEATURE_ENDPOINT_XYZ_ENABLED': False, 'LOG_LEVEL': None,
                           'API_TOKEN': 'tok-s3cr3t', 'DB_PASSWORD': 'pw-s3cr3t'})
    assert result['changed'], result
    assert {e['name']: e for e in container(api)['env']} == {
        'FEATURE_ENDPOINT_XYZ_ENABLED': {'name': 'FEATURE_ENDPOINT_XYZ_ENABLED', 'value': 'false'},
        'DB_PASSWORD': {'name': 'DB_PASSWORD', 'value': 'pw-s3cr3t'},  # valueFrom dropped, else 422
        'API_TOKEN': {'name': 'API_TOKEN', 'value': 'tok-s3cr3t'}}
    # The values are in the task's invocation, as any argument; never in what the module reports.
    assert 's3cr3t' not in json.dumps([result[k] for k in ('before', 'after', 'patches')])
    assert result['before']['env'] == {'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info',
                                       'DB_PASSWORD': {'valueFrom': 'secretKeyRef'}}
    assert result['after']['env'] == {'FEATURE_ENDPOINT_XYZ_ENABLED': 'false', 'DB_PASSWORD': '********',
                                      'API_TOKEN': '********'}
    assert {'name': 'LOG_LEVEL', '$patch': 'delete'} in api.patches()[0]['body']['spec']['template']['spec']['containers'][0]['env']
    again = run(api, env={'FEATURE_ENDPOINT_XYZ_ENABLED': 'false', 'LOG_LEVEL': None})
    assert not again['changed'] and api.patches() == []


def test_configmap_change_restarts_its_readers(api):
    result = run(api, configmap=CONFIG, configmap_data={'FEATURE_ENDPOINT_XYZ_ENABLED': 'false', 'LOG_LEVEL': None})
    assert result['changed'] and result['restart'] and result['configmap_referenced'], result
    assert [p['kind'] for p in result['patches']] == ['ConfigMap', 'Deployment']
    assert api.get('configmaps', CONFIG)['data'] == {'FEATURE_ENDPOINT_XYZ_ENABLED': 'false'}
    annotations = api.get('deployments', NAME)['spec']['template']['metadata']['annotations']
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', annotations['kubectl.kubernetes.io/restartedAt'])
    assert result['creates_revision'] and api.get('deployments', NAME)['metadata']['annotations'][REVISION] == '8'
    assert result['before']['configmap'] == {'name': CONFIG, 'data': {'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info'}}
    assert result['after']['configmap'] == {'name': CONFIG, 'data': {'FEATURE_ENDPOINT_XYZ_ENABLED': 'false', 'LOG_LEVEL': None}}
    again = run(api, configmap=CONFIG, configmap_data={'FEATURE_ENDPOINT_XYZ_ENABLED': False, 'LOG_LEVEL': None})
    assert not again['changed'] and not again['restart'] and api.patches() == []


def test_configmap_nobody_reads_changes_without_restart(api):
    api.add(deployment(env_from=False))
    result = run(api, configmap=CONFIG, configmap_data={'LOG_LEVEL': 'debug'})
    assert result['changed'] and not result['restart'] and result['configmap_referenced'] is False
    assert [p['kind'] for p in result['patches']] == ['ConfigMap']
    assert 'does not read it through env, envFrom or a volume' in json.dumps(result['warnings'])


def test_check_mode_sends_dry_runs_and_changes_nothing(api):
    api.add(hpa(low=2, high=8))
    before = copy.deepcopy(api.objects)
    result = run(api, check_mode=True, replicas='6', resources={'limits': {'memory': '2Gi'}},
                 env={'CIRCUIT_BREAKER_THRESHOLD': 5}, configmap=CONFIG, configmap_data={'LOG_LEVEL': 'debug'})
    assert result['changed'] and not result.get('failed'), result
    assert [(r['path'].rsplit('/', 2)[1], r['query']) for r in api.patches()] == [
        ('configmaps', {'dryRun': ['All']}), ('deployments', {'dryRun': ['All']}),
        ('horizontalpodautoscalers', {'dryRun': ['All']})]
    assert api.objects == before
    after = result['after']
    assert after['hpa']['min'] == 6 and after['resources']['limits']['memory'] == '2Gi'
    assert after['env']['CIRCUIT_BREAKER_THRESHOLD'] == '5' and after['configmap']['data'] == {'LOG_LEVEL': 'debug'}
    assert result['creates_revision'] and result['restart']


def test_errors_are_clear(api):
    missing = run(api, name='nope', replicas='2')
    assert missing['failed'] and missing['msg'].startswith('deployment nope not found in namespace prod (HTTP 404')
    assert 'deployments.apps \\"nope\\" not found' in json.dumps(missing['msg'])
    no_cm = run(api, configmap='absent', configmap_data={'A': '1'})
    assert no_cm['failed'] and 'configmap absent not found in namespace prod' in no_cm['msg']
    invalid = run(api, resources={'requests': {'cpu': '2'}})
    assert invalid['failed'] and 'HTTP 422' in invalid['msg']
    assert 'must be less than or equal to cpu limit of 1' in invalid['msg']
    bad_token = run_module('k8s_workload', dict(name=NAME, namespace=NS, host=api.url, api_key='wrong-token', validate_certs=False))
    assert bad_token['failed'] and 'refused the credentials' in bad_token['msg'] and 'wrong-token' not in json.dumps(bad_token)


def test_a_failure_after_a_patch_says_what_was_patched(api):
    api.conflict_on.add('Deployment')
    result = run(api, configmap=CONFIG, configmap_data={'LOG_LEVEL': 'debug'})
    assert result['failed'] and result['changed']
    assert 'HTTP 409' in result['msg'] and result['msg'].endswith('; already patched: ConfigMap inference-gateway-config')
    assert result['patches'] == [{'kind': 'ConfigMap', 'name': CONFIG, 'body': {'data': {'LOG_LEVEL': 'debug'}}}]
    assert result['revision_before'] == 7


DEADLINE = ('deployment "inference-gateway" exceeded its progress deadline of 600 s (progressDeadlineSeconds): '
            'ReplicaSet "inference-gateway-5f7c9d" has timed out progressing.')
QUOTA = ('pods "inference-gateway-h00007-q2x8z" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=3, '
         'limited: pods=3')


def timed_out():
    """The Deployment, its last rollout timed out (the controller keeps that until the next progresses)."""
    stuck = deployment()
    stuck['status']['conditions'][1].update(status='False', reason='ProgressDeadlineExceeded', lastUpdateTime='2024-05-01T09:30:00Z',
                                            message='ReplicaSet "inference-gateway-5f7c9d" has timed out progressing.')
    return stuck


class NewReplicaSets(FakeApiServer):
    """The deployment controller as it is for a new pod template: it makes the new ReplicaSet and sets
    the Progressing condition to NewReplicaSetCreated, replacing a timed-out one, when it observes it."""

    def controllers(self, key):
        deploy = self.objects[key]
        if deploy['status']['observedGeneration'] < deploy['metadata']['generation'] and deploy['spec']['template'] != self.templates[key]:
            progressing = next(c for c in deploy['status']['conditions'] if c['type'] == 'Progressing')
            progressing.update(status='True', reason='NewReplicaSetCreated', lastUpdateTime='2024-05-01T10:00:00Z',
                               message='Created new replica set "%s-6c9d"' % deploy['metadata']['name'])
        super().controllers(key)


class FullQuota(FakeApiServer):
    """The controllers in a namespace at its pod quota: a scale-up is observed, and the quota refuses
    the new pods of the Deployment's ReplicaSet (ReplicaFailure, copied onto the Deployment)."""

    def controllers(self, key):
        deploy = self.objects[key]
        failure = {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA,
                   'lastTransitionTime': '2024-05-01T10:00:00Z'}
        self.get('replicasets', '%s-h00007' % NAME, NS)['status']['conditions'] = [failure]
        deploy['status']['observedGeneration'] = deploy['metadata']['generation']
        deploy['status']['conditions'].append(dict(failure, lastUpdateTime='2024-05-01T10:00:00Z'))


class Kubernetes122(FakeApiServer):
    """A server before Kubernetes 1.23: HPAs are autoscaling/v1 (stored so), autoscaling/v2 answers 404
    as the API server does for a group version it does not serve; with v1=False, neither is served."""

    def __init__(self, v1=True):
        super().__init__()
        self.v1 = v1

    def serve(self, method, path, query, content_type, body):
        if path.startswith('/apis/autoscaling/v2/') or (path.startswith('/apis/autoscaling/v1/') and not self.v1):
            raise ApiStatus(404, 'NotFound', NOT_FOUND_PATH)
        if path.startswith('/apis/autoscaling/v1/'):
            code, answer = super().serve(method, path.replace('/v1/', '/v2/', 1), query, content_type, body)
            return code, dict(answer, apiVersion='autoscaling/v1')
        return super().serve(method, path, query, content_type, body)


def hpa_v1(low=2, high=8, current=3):
    return {'apiVersion': 'autoscaling/v1', 'kind': 'HorizontalPodAutoscaler',
            'metadata': {'name': NAME, 'namespace': NS, 'resourceVersion': '900', 'creationTimestamp': '2024-05-01T09:00:00Z'},
            'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': NAME},
                     'minReplicas': low, 'maxReplicas': high, 'targetCPUUtilizationPercentage': 70},
            'status': {'currentReplicas': current, 'desiredReplicas': current, 'currentCPUUtilizationPercentage': 82}}


def served(server):
    server.add(deployment(), configmap())
    return server


def test_progress_deadline_fails_at_once(api):
    api.controller = 'stuck'
    result = run(api, env={'MODE': 'safe'}, wait_timeout=60)
    assert result['failed'] and result['msg'] == DEADLINE + '; already patched: Deployment inference-gateway'


def test_a_deadline_exceeded_before_a_new_template_is_not_its_failure():
    """The controller replaces the timed-out condition when it makes the new template's ReplicaSet."""
    api = NewReplicaSets()
    api.add(timed_out())
    try:
        result = run(api, env={'MODE': 'safe'}, wait_timeout=30)
    finally:
        api.close()
    assert result['changed'] and not result.get('failed'), result
    assert result['after']['env']['MODE'] == 'safe'


def test_a_deadline_kept_after_the_controller_observed_the_patch_fails_at_once(api):
    """A patch back to the template of a ReplicaSet that cannot progress: the controller observes it
    and keeps the timed-out condition, as after `kubectl rollout undo`: kubectl fails at once."""
    api.add(timed_out())
    started = time.monotonic()
    result = run(api, env={'MODE': 'safe'}, wait_timeout=120)
    assert result['failed'] and result['changed'] and time.monotonic() - started < 30
    assert result['msg'] == DEADLINE + '; already patched: Deployment inference-gateway'


def test_an_hpa_floor_does_not_take_the_deadline_exceeded_before_it_for_its_own(api):
    """A floor the Deployment already has: no generation for the controller to observe."""
    api.add(timed_out(), hpa(low=2, high=8))
    result = run(api, replicas='3', wait_timeout=30)
    assert result['changed'] and not result.get('failed'), result
    assert result['patches'] == [{'kind': 'HorizontalPodAutoscaler', 'name': NAME, 'body': {'spec': {'minReplicas': 3}}}]


def test_a_scale_up_the_quota_refuses_fails_at_once_with_the_cause():
    api = FullQuota()
    api.add(deployment(), replica_set(deployment(), 7, 'registry.example/inference-gateway:v1.2.3', replicas=3))
    try:
        started = time.monotonic()
        result = run(api, replicas='5', wait_timeout=120)
        elapsed = time.monotonic() - started
    finally:
        api.close()
    assert result['failed'] and result['changed'] and elapsed < 30
    assert result['msg'] == ('cannot create pods: %s; deployment "inference-gateway" cannot roll out until that is fixed '
                             '(condition ReplicaFailure FailedCreate of ReplicaSet inference-gateway-h00007; kubectl '
                             'describe replicaset inference-gateway-h00007 -n prod); already patched: Deployment '
                             'inference-gateway' % QUOTA)


def test_env_change_on_a_server_without_autoscaling_v2():
    api = served(Kubernetes122())
    api.add(hpa_v1())
    try:
        result = run(api, env={'FEATURE_ENDPOINT_XYZ_ENABLED': False})
    finally:
        api.close()
    assert result['changed'] and not result.get('failed'), result
    assert container(api)['env'][0] == {'name': 'FEATURE_ENDPOINT_XYZ_ENABLED', 'value': 'false'}
    assert not [r for r in api.requests if '/autoscaling/' in r['path']]
    assert result['before']['hpa'] is None and result['after']['env']['FEATURE_ENDPOINT_XYZ_ENABLED'] == 'false'


def test_scale_through_an_autoscaling_v1_hpa():
    api = served(Kubernetes122())
    api.add(hpa_v1(low=2, high=8))
    try:
        result = run(api, replicas='+3')
        paths = [(r['method'], r['path']) for r in api.requests if '/autoscaling/' in r['path']]
        again = run(api, replicas='6')
    finally:
        api.close()
    assert result['changed'] and not result.get('failed'), result
    assert result['patches'] == [{'kind': 'HorizontalPodAutoscaler', 'name': NAME, 'body': {'spec': {'minReplicas': 6}}}]
    assert api.get('horizontalpodautoscalers', NAME)['spec'] == dict(hpa_v1()['spec'], minReplicas=6)
    assert api.get('deployments', NAME)['spec']['replicas'] == 6   # raised by the HPA, waited for
    assert result['before']['hpa'] == {'name': NAME, 'min': 2, 'max': 8, 'current': 3}
    assert result['after']['hpa'] == {'name': NAME, 'min': 6, 'max': 8, 'current': 6}
    assert not again['changed'] and not again.get('failed')
    # v2 answers 404, v1 then serves the list (read again after the wait) and the patch.
    assert paths == [('GET', '/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers'),
                     ('GET', '/apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers'),
                     ('PATCH', '/apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers/inference-gateway'),
                     ('GET', '/apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers')]


def test_scale_refused_clearly_when_no_hpa_api_is_served():
    api = served(Kubernetes122(v1=False))
    try:
        result = run(api, replicas='6')
    finally:
        api.close()
    assert result['failed'] and not result.get('changed') and api.patches() == []
    assert result['msg'].startswith('cannot list horizontalpodautoscalers in namespace prod: HTTP 404')
    assert 'through autoscaling/v2 (Kubernetes 1.23 and later) or autoscaling/v1, and the server serves neither' in result['msg']

"""k8s_workload against a real Kubernetes cluster: the kubeconfig named by SRE_RUNBOOKS_TEST_KUBECONFIG
(its current context; SRE_RUNBOOKS_TEST_CONTEXT picks another). Skipped without it, as in CI.

The tests run in file order in one fresh namespace, deleted at the end whatever happens: a Deployment
of SRE_RUNBOOKS_TEST_IMAGE (default registry.k8s.io/pause:3.9, which the cluster must be able to pull)
reading a ConfigMap through envFrom, then an HPA (autoscaling/v2). The HPA needs no metrics server
here: the HPA controller raises a target below minReplicas before it reads any metric (within its
sync period, 15 s by default). Each run is the module in a child process, as Ansible runs it.
"""

import json
import os
import time
import uuid

import pytest
from kubernetes import client, config, utils

from conftest import run_module

KUBECONFIG = os.environ.get('SRE_RUNBOOKS_TEST_KUBECONFIG')
CONTEXT = os.environ.get('SRE_RUNBOOKS_TEST_CONTEXT')
IMAGE = os.environ.get('SRE_RUNBOOKS_TEST_IMAGE', 'registry.k8s.io/pause:3.9')
NAME = 'gateway'
CONFIG = 'gateway-config'
REVISION = 'deployment.kubernetes.io/revision'

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


@pytest.fixture(scope='module')
def cluster():
    api = config.new_client_from_config(config_file=KUBECONFIG, context=CONTEXT)
    namespace = 'sre-runbooks-test-%s' % uuid.uuid4().hex[:8]
    core = client.CoreV1Api(api)
    core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
    try:
        utils.create_from_dict(api, {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': CONFIG},
                                     'data': {'FEATURE_X_ENABLED': 'true', 'LOG_LEVEL': 'info'}}, namespace=namespace)
        utils.create_from_dict(api, {
            'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': NAME},
            'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': NAME}},
                     'template': {'metadata': {'labels': {'app': NAME}}, 'spec': {
                         'terminationGracePeriodSeconds': 0,
                         'containers': [{'name': 'app', 'image': IMAGE,
                                         'env': [{'name': 'LOG_FORMAT', 'value': 'json'}],
                                         'envFrom': [{'configMapRef': {'name': CONFIG}}],
                                         'resources': {'requests': {'cpu': '10m', 'memory': '16Mi'},
                                                       'limits': {'cpu': '100m', 'memory': '32Mi'}}}]}}}},
            namespace=namespace)
        ready = Cluster(api, namespace)
        ready.wait_available()
        yield ready
    finally:
        core.delete_namespace(namespace)


class Cluster:
    def __init__(self, api, namespace):
        self.api, self.namespace = api, namespace
        self.apps, self.core = client.AppsV1Api(api), client.CoreV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)

    def run(self, check_mode=False, **args):
        params = dict(name=NAME, namespace=self.namespace, kubeconfig=KUBECONFIG, wait_timeout=240)
        if CONTEXT:
            params['context'] = CONTEXT
        params.update(args)
        return run_module('k8s_workload', params, check_mode=check_mode)

    def wait_available(self, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            deployment = self.deployment()
            status = deployment.get('status') or {}
            if status.get('availableReplicas') == 1 and REVISION in deployment['metadata'].get('annotations', {}):
                return
            assert time.monotonic() < deadline, 'Deployment %s/%s not available after %ss (can the cluster pull %s?): %s' % (
                self.namespace, NAME, timeout, IMAGE, status)
            time.sleep(1)

    def deployment(self):
        return self.api.sanitize_for_serialization(self.apps.read_namespaced_deployment(NAME, self.namespace))

    def container(self):
        return self.deployment()['spec']['template']['spec']['containers'][0]

    def revision(self):
        return int(self.deployment()['metadata']['annotations'][REVISION])


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def test_scale_and_again(cluster):
    result = ok(cluster.run(replicas='2'))
    assert result['changed'] and result['patches'] == [{'kind': 'Deployment', 'name': NAME, 'body': {'spec': {'replicas': 2}}}]
    deployment = cluster.deployment()
    assert deployment['spec']['replicas'] == 2 and deployment['status'].get('availableReplicas') == 2
    assert result['revision_before'] == 1 and not result['creates_revision']
    assert not ok(cluster.run(replicas='2'))['changed']
    relative = ok(cluster.run(replicas='-1'))
    assert relative['target_replicas'] == 1 and cluster.deployment()['spec']['replicas'] == 1
    refused = cluster.run(replicas='+10')
    assert refused['failed'] and 'outside the bounds [1, 10]' in refused['msg']


def test_resources_one_revision_and_quantities_by_value(cluster):
    revision = cluster.revision()
    result = ok(cluster.run(resources={'limits': {'cpu': '200m', 'memory': '64Mi'}, 'requests': {'cpu': '20m'}}))
    assert result['changed'] and result['creates_revision'] and result['revision_before'] == revision
    assert cluster.revision() == revision + 1
    assert cluster.container()['resources'] == {
        'limits': {'cpu': '200m', 'memory': '64Mi'}, 'requests': {'cpu': '20m', 'memory': '16Mi'}}
    again = ok(cluster.run(resources={'limits': {'cpu': '0.2', 'memory': '65536Ki'}, 'requests': {'cpu': 0.02}}))
    assert not again['changed'] and again['revision_before'] == revision + 1
    invalid = cluster.run(resources={'requests': {'cpu': '1'}})
    assert invalid['failed'] and 'HTTP 422' in invalid['msg'] and 'less than or equal to cpu limit' in invalid['msg']


def test_env_set_unset_and_masked(cluster):
    result = ok(cluster.run(env={'FEATURE_X_ENABLED': False, 'CIRCUIT_BREAKER_THRESHOLD': 5, 'API_TOKEN': 'tok-s3cr3t',
                                 'LOG_FORMAT': None}))
    assert result['changed'] and result['creates_revision']
    assert {e['name']: e['value'] for e in cluster.container()['env']} == {
        'FEATURE_X_ENABLED': 'false', 'CIRCUIT_BREAKER_THRESHOLD': '5', 'API_TOKEN': 'tok-s3cr3t'}
    assert 's3cr3t' not in json.dumps([result[k] for k in ('before', 'after', 'patches')])
    assert result['after']['env']['API_TOKEN'] == '********' and 'LOG_FORMAT' not in result['after']['env']
    assert not ok(cluster.run(env={'FEATURE_X_ENABLED': 'false', 'LOG_FORMAT': None}))['changed']


def test_configmap_change_restarts_the_pods(cluster):
    revision = cluster.revision()
    result = ok(cluster.run(configmap=CONFIG, configmap_data={'FEATURE_X_ENABLED': 'false', 'LOG_LEVEL': None}))
    assert result['changed'] and result['restart'] and result['configmap_referenced']
    data = cluster.api.sanitize_for_serialization(cluster.core.read_namespaced_config_map(CONFIG, cluster.namespace))['data']
    assert data == {'FEATURE_X_ENABLED': 'false'}
    template = cluster.deployment()['spec']['template']
    assert 'kubectl.kubernetes.io/restartedAt' in template['metadata']['annotations']
    assert cluster.revision() == revision + 1
    again = ok(cluster.run(configmap=CONFIG, configmap_data={'FEATURE_X_ENABLED': False, 'LOG_LEVEL': None}))
    assert not again['changed'] and not again['restart']


def test_check_mode_is_a_server_dry_run(cluster):
    before = cluster.deployment()
    result = ok(cluster.run(check_mode=True, replicas='3', env={'MODE': 'safe'}, resources={'limits': {'memory': '48Mi'}},
                            configmap=CONFIG, configmap_data={'LOG_LEVEL': 'debug'}))
    assert result['changed'] and result['after']['replicas'] == 3
    assert result['after']['env']['MODE'] == 'safe' and result['after']['resources']['limits']['memory'] == '48Mi'
    after = cluster.deployment()
    assert after['metadata']['generation'] == before['metadata']['generation']
    assert after['spec'] == before['spec']
    assert 'LOG_LEVEL' not in cluster.core.read_namespaced_config_map(CONFIG, cluster.namespace).data


def test_scale_through_the_hpa(cluster):
    utils.create_from_dict(cluster.api, {
        'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': NAME},
        'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': NAME},
                 'minReplicas': 1, 'maxReplicas': 4,
                 'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {
                     'type': 'Utilization', 'averageUtilization': 80}}}]}}, namespace=cluster.namespace)
    result = ok(cluster.run(replicas='3'))
    assert result['patches'] == [{'kind': 'HorizontalPodAutoscaler', 'name': NAME, 'body': {'spec': {'minReplicas': 3}}}]
    assert result['after']['hpa']['min'] == 3 and result['after']['replicas'] == 3
    assert cluster.deployment()['spec']['replicas'] == 3  # raised by the HPA controller
    assert not ok(cluster.run(replicas='3'))['changed']
    refused = cluster.run(replicas='5')
    assert refused['failed'] and 'maxReplicas 4' in refused['msg'] and 'hpa_raise_max' in refused['msg']
    raised = ok(cluster.run(replicas='5', hpa_raise_max=True))
    hpa = cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(NAME, cluster.namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (5, 5)
    assert raised['after']['replicas'] == 5


def test_clear_errors(cluster):
    missing = cluster.run(name='absent', replicas='2')
    assert missing['failed'] and missing['msg'].startswith('deployment absent not found in namespace %s' % cluster.namespace)
    no_container = cluster.run(container='sidecar', env={'A': '1'})
    assert no_container['failed'] and "no container 'sidecar'" in no_container['msg']


def test_wait_times_out_clearly(cluster):
    # Pods no node can hold stay Pending: the rollout cannot complete (the namespace goes next).
    result = cluster.run(resources={'limits': {'memory': '100Ti'}, 'requests': {'memory': '100Ti'}}, wait_timeout=10)
    assert result['failed'] and result['changed']
    assert result['msg'].startswith('deployment %s in namespace %s: rollout not done after 10s: ' % (NAME, cluster.namespace))
    assert result['patches'][0]['kind'] == 'Deployment'

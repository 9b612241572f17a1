"""Restoring a missing ConfigMap key (k8s_status_info's config_refs, then k8s_config_key) against a
real Kubernetes cluster: the kubeconfig named by SRE_RUNBOOKS_TEST_KUBECONFIG (its current context;
SRE_RUNBOOKS_TEST_CONTEXT picks another). Skipped without it, as in CI.

The tests run in file order in one fresh namespace, deleted at the end whatever happens. As a
person would break it: a ConfigMap created with `kubectl apply` (which writes its
last-applied-configuration), one key removed with `kubectl patch --type=json` (which leaves that
annotation as it was), and a Deployment of SRE_RUNBOOKS_TEST_IMAGE (default
registry.k8s.io/pause:3.9, which the node must hold) whose container reads that key through env
configMapKeyRef: its pod waits in CreateContainerConfigError, and starts by itself once the key is
back (the node retries, as a kubelet does). A ConfigMap made with `kubectl create` has no such
annotation. Each run is the module in a child process, as Ansible runs it.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from conftest import run_module

KUBECONFIG = os.environ.get('SRE_RUNBOOKS_TEST_KUBECONFIG')
CONTEXT = os.environ.get('SRE_RUNBOOKS_TEST_CONTEXT')
IMAGE = os.environ.get('SRE_RUNBOOKS_TEST_IMAGE', 'registry.k8s.io/pause:3.9')
NAME = 'gateway'
CONFIG = 'gateway-config'
KEY = 'MODEL_URL'
# Long enough that a value shown anywhere in a result would be found.
VALUE = 'http://model-service.serving.svc.cluster.local:8000/v1/models/ranker-7f3a'
LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'
CONFIG_ERROR = 'CreateContainerConfigError'

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


@pytest.fixture(scope='module')
def cluster():
    api = config.new_client_from_config(config_file=KUBECONFIG, context=CONTEXT)
    namespace = 'sre-runbooks-test-%s' % uuid.uuid4().hex[:8]
    core = client.CoreV1Api(api)
    core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}}, _request_timeout=30)
    try:
        yield Cluster(api, namespace)
    finally:
        core.delete_namespace(namespace, _request_timeout=30)


def deployment(name, configmap, key):
    """One replica whose container reads key of configmap through env configMapKeyRef (not optional)."""
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': name},
            'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': name}},
                     'template': {'metadata': {'labels': {'app': name}}, 'spec': {
                         'terminationGracePeriodSeconds': 0,
                         'containers': [{'name': 'app', 'image': IMAGE,
                                         'env': [{'name': key, 'valueFrom': {'configMapKeyRef': {'name': configmap, 'key': key}}},
                                                 {'name': 'LOG_LEVEL', 'valueFrom': {'configMapKeyRef': {
                                                     'name': configmap, 'key': 'LOG_LEVEL'}}}],
                                         'resources': {'requests': {'cpu': '10m', 'memory': '16Mi'},
                                                       'limits': {'cpu': '100m', 'memory': '32Mi'}}}]}}}}


class Cluster:
    def __init__(self, api, namespace):
        self.api, self.namespace = api, namespace
        self.apps, self.core = client.AppsV1Api(api), client.CoreV1Api(api)

    def kubectl(self, *args, stdin=None):
        kubectl = shutil.which('kubectl')
        assert kubectl, 'kubectl is needed: the ConfigMaps are made and broken as a person does'
        command = [kubectl, '--kubeconfig', KUBECONFIG] + (['--context', CONTEXT] if CONTEXT else []) + [
            '-n', self.namespace] + list(args)
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, '%s: %s' % (' '.join(args), proc.stderr)
        return proc.stdout

    def run(self, module, check_mode=False, **args):
        params = dict(namespace=self.namespace, kubeconfig=KUBECONFIG, request_timeout=30)
        if CONTEXT:
            params['context'] = CONTEXT
        params.update(args)
        result = run_module(module, params, check_mode=check_mode)
        # The arguments as given (invocation) hold a value given; the result itself never does.
        shown = {key: value for key, value in result.items() if key != 'invocation'}
        assert VALUE not in json.dumps(shown), 'a ConfigMap value in the result of %s' % module
        return result

    def configmap(self, name=CONFIG):
        return self.api.sanitize_for_serialization(self.core.read_namespaced_config_map(name, self.namespace,
                                                                                        _request_timeout=30))

    def pods(self, name):
        return self.api.sanitize_for_serialization(self.core.list_namespaced_pod(
            self.namespace, label_selector='app=%s' % name, _request_timeout=30))['items']

    def waiting(self, name):
        """{pod name: (waiting reason, message)} of the Deployment's pods' first container."""
        found = {}
        for pod in self.pods(name):
            for status in (pod.get('status') or {}).get('containerStatuses') or []:
                waiting = (status.get('state') or {}).get('waiting') or {}
                found[pod['metadata']['name']] = (waiting.get('reason'), waiting.get('message'))
        return found

    def ready(self, name):
        deployment = self.api.sanitize_for_serialization(self.apps.read_namespaced_deployment(
            name, self.namespace, _request_timeout=30))
        return (deployment.get('status') or {}).get('availableReplicas') == 1


def wait_until(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, 'not reached in %d s: %s' % (timeout, what)
        time.sleep(1)


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def config_error(cluster, name):
    """The one pod of Deployment name once it waits in CreateContainerConfigError: (pod, message)."""
    def waiting():
        found = cluster.waiting(name)
        return next(((pod, message) for pod, (reason, message) in found.items() if reason == CONFIG_ERROR), None)
    return wait_until('a pod of %s in %s' % (name, CONFIG_ERROR), waiting)


@pytest.fixture(scope='module')
def broken(cluster):
    """kubectl apply of the ConfigMap, its key removed with a JSON patch, then the Deployment: its pod waits."""
    manifest = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': CONFIG},
                'data': {'LOG_LEVEL': 'info', KEY: VALUE}}
    cluster.kubectl('apply', '-f', '-', stdin=json.dumps(manifest))
    assert json.loads(cluster.configmap()['metadata']['annotations'][LAST_APPLIED])['data'][KEY] == VALUE
    cluster.kubectl('patch', 'configmap', CONFIG, '--type=json', '-p', json.dumps([{'op': 'remove', 'path': '/data/%s' % KEY}]))
    removed = cluster.configmap()
    assert KEY not in removed['data'] and LAST_APPLIED in removed['metadata']['annotations']
    cluster.apps.create_namespaced_deployment(cluster.namespace, deployment(NAME, CONFIG, KEY), _request_timeout=30)
    pod, message = config_error(cluster, NAME)
    return {'pod': pod, 'message': message, 'configmap': removed}


def test_status_lists_the_removed_key_as_restorable(cluster, broken):
    # The node says what a kubelet says.
    assert broken['message'] == "couldn't find key %s in ConfigMap %s/%s" % (KEY, cluster.namespace, CONFIG)
    status = ok(cluster.run('k8s_status_info', name=NAME, tail=0))
    assert CONFIG_ERROR in {p['kind'] for p in status['problems']}, status['problems']
    assert status['config_refs'] == [{'kind': 'ConfigMap', 'name': CONFIG, 'key': KEY, 'optional': False, 'exists': True,
                                      'has_key': False, 'restorable': True, 'source': 'last-applied-configuration'}]
    assert not status.get('warnings')


def test_check_mode_says_what_it_would_do_and_changes_nothing(cluster, broken):
    result = ok(cluster.run('k8s_config_key', check_mode=True, name=CONFIG, key=KEY, _ansible_diff=True))
    assert result['changed'] and result['source'] == 'last-applied-configuration'
    assert result['message'].startswith('would restore key %s of ConfigMap %s/%s from its %s annotation (%d characters)'
                                        % (KEY, cluster.namespace, CONFIG, LAST_APPLIED, len(VALUE)))
    assert result['before'] == {'key': KEY, 'state': 'absent', 'sha256': None, 'length': None}
    assert result['after']['state'] == 'present' and result['after']['length'] == len(VALUE)
    assert result['diff'] == {'before': result['before'], 'after': result['after']}
    after = cluster.configmap()
    assert KEY not in after['data']
    assert after['metadata']['resourceVersion'] == broken['configmap']['metadata']['resourceVersion']
    assert cluster.waiting(NAME)[broken['pod']][0] == CONFIG_ERROR


def test_a_stale_resource_version_is_refused_by_the_server(cluster, broken):
    """The precondition the module's patch carries: an edit made after its read is never overwritten."""
    current = cluster.configmap()['metadata']['resourceVersion']
    cluster.core.patch_namespaced_config_map(CONFIG, cluster.namespace, {'data': {'OTHER': 'x'}}, _request_timeout=30)
    with pytest.raises(ApiException) as refused:
        cluster.core.patch_namespaced_config_map(
            CONFIG, cluster.namespace, {'metadata': {'resourceVersion': current}, 'data': {KEY: 'stale'}},
            _request_timeout=30, _content_type='application/merge-patch+json')
    assert refused.value.status == 409
    cluster.core.patch_namespaced_config_map(CONFIG, cluster.namespace, {'data': {'OTHER': None}}, _request_timeout=30)
    assert KEY not in cluster.configmap()['data']


def test_a_key_not_in_the_annotation_is_refused_and_nothing_changes(cluster, broken):
    before = cluster.configmap()
    result = cluster.run('k8s_config_key', name=CONFIG, key='NOT_APPLIED')
    assert result['failed'] and not result.get('changed')
    assert result['msg'] == (
        'cannot restore key NOT_APPLIED: ConfigMap {ns}/{cm} has an annotation {la} without key NOT_APPLIED (it holds '
        'LOG_LEVEL, {key}); check with kubectl get configmap {cm} -n {ns} -o yaml, then give the value with '
        'source=value, or kubectl apply its manifest'.format(ns=cluster.namespace, cm=CONFIG, la=LAST_APPLIED, key=KEY))
    absent = cluster.run('k8s_config_key', name='absent-config', key=KEY)
    assert absent['failed'] and absent['msg'].startswith('ConfigMap absent-config not found in namespace %s: ' % cluster.namespace)
    no_value = cluster.run('k8s_config_key', name=CONFIG, key=KEY, source='value')
    assert no_value['failed'] and 'source is value but all of the following are missing: value' in no_value['msg']
    assert cluster.configmap()['metadata']['resourceVersion'] == before['metadata']['resourceVersion']


def test_restored_the_waiting_pod_starts_by_itself(cluster, broken):
    result = ok(cluster.run('k8s_config_key', name=CONFIG, key=KEY))
    assert result['changed'] and result['source'] == 'last-applied-configuration'
    assert result['message'].startswith('restored key %s of ConfigMap %s/%s' % (KEY, cluster.namespace, CONFIG))
    assert result['before']['state'] == 'absent' and result['after']['state'] == 'present'
    after = cluster.configmap()
    assert after['data'] == {'LOG_LEVEL': 'info', KEY: VALUE}
    # data.<key> alone: the annotation is the one kubectl apply wrote.
    assert after['metadata']['annotations'] == broken['configmap']['metadata']['annotations']
    started = time.monotonic()
    wait_until('deployment %s available once the key is back' % NAME, lambda: cluster.ready(NAME), timeout=90)
    # The same pod, retried by the node, not a new one: nothing was restarted.
    assert [pod['metadata']['name'] for pod in cluster.pods(NAME)] == [broken['pod']]
    print('pod %s ready %.0f s after the key came back' % (broken['pod'], time.monotonic() - started))
    status = ok(cluster.run('k8s_status_info', name=NAME, tail=0))
    assert CONFIG_ERROR not in {p['kind'] for p in status['problems']} and status['config_refs'] == []


def test_a_second_run_changes_nothing_and_never_overwrites(cluster, broken):
    again = ok(cluster.run('k8s_config_key', name=CONFIG, key=KEY))
    assert not again['changed'] and again['source'] is None
    assert again['message'] == 'key %s of ConfigMap %s/%s is present: nothing to restore' % (KEY, cluster.namespace, CONFIG)
    assert again['before'] == again['after'] and again['after']['length'] == len(VALUE)
    other = ok(cluster.run('k8s_config_key', name=CONFIG, key=KEY, source='value', value='http://elsewhere:1'))
    assert not other['changed'] and 'is present with another value' in other['message'] and 'never overwrites' in other['message']
    assert cluster.configmap()['data'][KEY] == VALUE


def test_a_configmap_made_with_kubectl_create_is_not_restorable(cluster):
    """No last-applied-configuration: listed, not restorable, refused with what to do; a value given restores it."""
    cluster.kubectl('create', 'configmap', 'plain-config', '--from-literal=LOG_LEVEL=info', '--from-literal=%s=%s' % (KEY, VALUE))
    cluster.kubectl('patch', 'configmap', 'plain-config', '--type=json', '-p', json.dumps([{'op': 'remove', 'path': '/data/%s' % KEY}]))
    assert LAST_APPLIED not in (cluster.configmap('plain-config')['metadata'].get('annotations') or {})
    cluster.apps.create_namespaced_deployment(cluster.namespace, deployment('plain', 'plain-config', KEY), _request_timeout=30)
    pod, _message = config_error(cluster, 'plain')
    status = ok(cluster.run('k8s_status_info', name='plain', tail=0))
    assert status['config_refs'] == [{'kind': 'ConfigMap', 'name': 'plain-config', 'key': KEY, 'optional': False,
                                      'exists': True, 'has_key': False, 'restorable': False, 'source': None}]
    before = cluster.configmap('plain-config')['metadata']['resourceVersion']
    refused = cluster.run('k8s_config_key', name='plain-config', key=KEY)
    assert refused['failed'] and not refused.get('changed')
    assert ('has no annotation %s: it was not created or last updated with kubectl apply' % LAST_APPLIED) in refused['msg']
    assert 'give the value with source=value' in refused['msg']
    assert cluster.configmap('plain-config')['metadata']['resourceVersion'] == before
    given = ok(cluster.run('k8s_config_key', name='plain-config', key=KEY, source='value', value=VALUE))
    assert given['changed'] and given['source'] == 'value' and cluster.configmap('plain-config')['data'][KEY] == VALUE
    wait_until('deployment plain available once the key is given', lambda: cluster.ready('plain'), timeout=90)
    assert [p['metadata']['name'] for p in cluster.pods('plain')] == [pod]


def test_a_configmap_the_account_may_not_read_is_a_warning_not_a_failure(cluster):
    """A ServiceAccount that may read the Deployment and its pods but not ConfigMaps: the reference
    is listed as not known (exists null), with a warning that names the refusal."""
    cluster.apps.create_namespaced_deployment(cluster.namespace, deployment('denied', 'missing-config', KEY), _request_timeout=30)
    config_error(cluster, 'denied')
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rules = [{'apiGroups': [''], 'resources': ['pods', 'pods/log', 'services', 'endpoints', 'events'], 'verbs': ['get', 'list']},
             {'apiGroups': ['apps'], 'resources': ['deployments', 'replicasets'], 'verbs': ['get', 'list']},
             {'apiGroups': ['autoscaling'], 'resources': ['horizontalpodautoscalers'], 'verbs': ['get', 'list']}]
    rbac.create_namespaced_role(cluster.namespace, {'metadata': {'name': 'no-configmaps'}, 'rules': rules}, _request_timeout=30)
    cluster.core.create_namespaced_service_account(cluster.namespace, {'metadata': {'name': 'reader'}}, _request_timeout=30)
    rbac.create_namespaced_role_binding(cluster.namespace, {
        'metadata': {'name': 'reader'}, 'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'no-configmaps'},
        'subjects': [{'kind': 'ServiceAccount', 'name': 'reader', 'namespace': cluster.namespace}]}, _request_timeout=30)
    token = cluster.core.create_namespaced_service_account_token(
        'reader', cluster.namespace, {'spec': {'expirationSeconds': 600}}, _request_timeout=30).status.token
    settings = cluster.api.configuration
    status = run_module('k8s_status_info', dict(name='denied', namespace=cluster.namespace, host=settings.host, api_key=token,
                                                ca_cert=settings.ssl_ca_cert, request_timeout=30, tail=0))
    assert not status.get('failed'), status.get('msg')
    assert status['config_refs'] == [{'kind': 'ConfigMap', 'name': 'missing-config', 'key': key, 'optional': False,
                                      'exists': None, 'has_key': None, 'restorable': False, 'source': None}
                                     for key in (KEY, 'LOG_LEVEL')]
    shown = [w['event']['msg'] if isinstance(w, dict) else w for w in status['warnings']]
    assert any(w.startswith('k8s_status could not read ConfigMap missing-config') and 'forbidden' in w
               for w in shown), shown

"""The k8s modules against a real Kubernetes cluster, named by the kubeconfig in
SRE_RUNBOOKS_TEST_KUBECONFIG (its current context); skipped when unset, as in CI.

Each run works in a namespace of its own, sre-runbooks-test-<random>, deleted at the end: a
Deployment `web` taken through revisions 1 -> 2 -> 3 by changing an env var (image from
SRE_RUNBOOKS_TEST_IMAGE, default registry.k8s.io/pause:3.9, which needs no command and ignores the
env; it runs as user 65534), and a Deployment `web-admin` whose ReplicaSets carry the same app=web label. The user of the
kubeconfig needs to create and delete namespaces, and Deployments and ReplicaSets in them.
"""

import os
import uuid

import pytest

from conftest import run_module

KUBECONFIG = os.environ.get('SRE_RUNBOOKS_TEST_KUBECONFIG')
IMAGE = os.environ.get('SRE_RUNBOOKS_TEST_IMAGE', 'registry.k8s.io/pause:3.9')
WAIT = 240

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


def manifest(name, labels, selector, release):
    return {
        'apiVersion': 'apps/v1', 'kind': 'Deployment',
        'metadata': {'name': name, 'labels': labels},
        'spec': {
            'replicas': 1, 'progressDeadlineSeconds': 120, 'revisionHistoryLimit': 10,
            'selector': {'matchLabels': selector},
            'template': {
                'metadata': {'labels': labels},
                # Admitted under the "restricted" Pod Security Standard, and run so by a kubelet.
                'spec': {'terminationGracePeriodSeconds': 1,
                         'securityContext': {'runAsNonRoot': True, 'runAsUser': 65534,
                                             'seccompProfile': {'type': 'RuntimeDefault'}},
                         'containers': [{'name': 'app', 'image': IMAGE, 'env': [{'name': 'RELEASE', 'value': release}],
                                         'resources': {'requests': {'cpu': '1m', 'memory': '8Mi'}},
                                         'securityContext': {'allowPrivilegeEscalation': False,
                                                             'capabilities': {'drop': ['ALL']}}}]},
            },
        },
    }


class Cluster:
    def __init__(self):
        from kubernetes import client, config
        self.api_client = config.new_client_from_config(config_file=KUBECONFIG)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.namespace = 'sre-runbooks-test-%s' % uuid.uuid4().hex[:8]

    def rollout(self, name='web', check_mode=False, **args):
        params = dict(name=name, namespace=self.namespace, kubeconfig=KUBECONFIG, wait_timeout=WAIT, request_timeout=30)
        params.update(args)
        return run_module('k8s_rollout', params, check_mode=check_mode)

    def wait_done(self, name):
        result = self.rollout(name, state='status', wait=True)
        assert result['status']['done'], result
        return result

    def deployment(self, name='web'):
        return self.api_client.sanitize_for_serialization(
            self.apps.read_namespaced_deployment(name, self.namespace, _request_timeout=30))

    def release(self, name='web'):
        return self.deployment(name)['spec']['template']['spec']['containers'][0]['env'][0]['value']

    def set_release(self, release):
        body = {'spec': {'template': {'spec': {'containers': [
            {'name': 'app', 'env': [{'name': 'RELEASE', 'value': release}]}]}}}}
        self.apps.patch_namespaced_deployment('web', self.namespace, body, _request_timeout=30,
                                              _content_type='application/strategic-merge-patch+json')
        self.wait_done('web')


@pytest.fixture(scope='module')
def cluster():
    kube = Cluster()
    kube.core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': kube.namespace}},
                               _request_timeout=30)
    try:
        kube.apps.create_namespaced_deployment(kube.namespace, manifest('web', {'app': 'web'}, {'app': 'web'}, '1'),
                                               _request_timeout=30)
        kube.wait_done('web')
        kube.set_release('2')
        kube.set_release('3')
        admin = {'app': 'web', 'role': 'admin'}
        kube.apps.create_namespaced_deployment(kube.namespace, manifest('web-admin', admin, admin, 'admin'),
                                               _request_timeout=30)
        kube.wait_done('web-admin')
        yield kube
    finally:
        kube.core.delete_namespace(kube.namespace, _request_timeout=30)


def revisions(result):
    return [entry['revision'] for entry in result['history']]


def test_history_undo_and_check_mode(cluster):
    history = cluster.rollout(state='history')
    assert not history.get('failed'), history
    assert revisions(history) == [1, 2, 3] and history['revision'] == 3
    assert [e['current'] for e in history['history']] == [False, False, True]
    assert all(e['images'] == [IMAGE] for e in history['history'])
    assert not any(e['replica_set'].startswith('web-admin-') for e in history['history'])

    # check mode: a server-side dry run, nothing stored
    generation = cluster.deployment()['metadata']['generation']
    planned = cluster.rollout(state='undone', check_mode=True)
    assert planned['changed'] and planned['target_revision'] == 2, planned
    assert cluster.deployment()['metadata']['generation'] == generation and cluster.release() == '3'

    # previous revision: 2, restored as revision 4
    undone = cluster.rollout(state='undone', _ansible_diff=True)
    assert undone['changed'] and not undone.get('failed'), undone
    assert undone['target_revision'] == 2 and undone['revision'] == 4 and undone['status']['done']
    assert cluster.release() == '2' and 'diff' in undone
    assert revisions(cluster.rollout(state='history')) == [1, 3, 4]

    # a given revision: 1, restored as revision 5
    undone = cluster.rollout(state='undone', to_revision=1)
    assert undone['changed'] and undone['target_revision'] == 1 and undone['revision'] == 5, undone
    assert cluster.release() == '1'
    annotations = cluster.deployment()['metadata']['annotations']
    assert annotations['deployment.kubernetes.io/revision'] == '5'

    # already there: nothing to do
    again = cluster.rollout(state='undone', to_revision=5)
    assert again['changed'] is False and not again.get('failed'), again
    assert again['msg'] == 'skipped rollback (current template already matches revision 5)'

    missing = cluster.rollout(state='undone', to_revision=2)    # renumbered as 4, then pruned from the list
    assert missing['failed'] and 'unable to find revision 2' in missing['msg']


def test_restart_and_status(cluster):
    restarted = cluster.rollout(state='restarted')
    assert restarted['changed'] and not restarted.get('failed'), restarted
    assert 'kubectl.kubernetes.io/restartedAt' in restarted['after']['template_annotations']
    assert restarted['status']['done']
    again = cluster.rollout(state='restarted', if_restarted_before='now-10m')
    assert again['changed'] is False and not again.get('failed'), again
    status = cluster.rollout(state='status')
    assert status['status']['done'] and status['msg'] == 'deployment "web" successfully rolled out'


def test_paused_refused(cluster):
    cluster.apps.patch_namespaced_deployment('web-admin', cluster.namespace, {'spec': {'paused': True}},
                                             _request_timeout=30, _content_type='application/strategic-merge-patch+json')
    result = cluster.rollout('web-admin', state='restarted')
    assert result['failed'] and 'paused deployment web-admin' in result['msg']


def test_not_found(cluster):
    result = cluster.rollout('nope', state='status')
    assert result['failed'] and result['msg'].startswith('deployment nope not found in namespace %s' % cluster.namespace)

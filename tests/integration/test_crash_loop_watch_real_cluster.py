"""crash_loop_watch_info with platform kubernetes, against a real Kubernetes cluster: the kubeconfig named by
SRE_RUNBOOKS_TEST_KUBECONFIG (its current context; SRE_RUNBOOKS_TEST_CONTEXT picks another). Skipped
without it, as in CI.

The tests work in a namespace of their own, sre-runbooks-test-<random>, deleted at the end whatever
happens. The Deployments run SRE_RUNBOOKS_TEST_IMAGE, which must have python3 (default
sre-demo/loadgen:v1.0.0, the demo image that `make integration-cluster` gives the test cluster's node):
`steady` (2 replicas that sleep), `crashing` (its container exits at start, so the kubelet restarts it
with a back-off from 10 s: CrashLoopBackOff) and `fixed`, crash-looping until the test rolls out a
command that stays up while the module watches. Each run is the module in a child process, as
Ansible runs it.
"""

import os
import threading
import time
import uuid

import pytest

from conftest import run_module

KUBECONFIG = os.environ.get('SRE_RUNBOOKS_TEST_KUBECONFIG')
CONTEXT = os.environ.get('SRE_RUNBOOKS_TEST_CONTEXT')
IMAGE = os.environ.get('SRE_RUNBOOKS_TEST_IMAGE', 'sre-demo/loadgen:v1.0.0')
SLEEP = ['python3', '-c', 'import time; time.sleep(86400)']
CRASH = ['python3', '-c', 'import sys; print("config key MODEL_URL missing"); sys.exit(1)']

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


def manifest(name, replicas, command):
    return {
        'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': name},
        'spec': {
            'replicas': replicas, 'selector': {'matchLabels': {'app': name}},
            'template': {
                'metadata': {'labels': {'app': name}},
                'spec': {'terminationGracePeriodSeconds': 1,
                         'securityContext': {'runAsNonRoot': True, 'runAsUser': 65534,
                                             'seccompProfile': {'type': 'RuntimeDefault'}},
                         'containers': [{'name': 'app', 'image': IMAGE, 'command': command,
                                         'resources': {'requests': {'cpu': '1m', 'memory': '8Mi'}},
                                         'securityContext': {'allowPrivilegeEscalation': False,
                                                             'capabilities': {'drop': ['ALL']}}}]},
            },
        },
    }


class Cluster:
    def __init__(self):
        from kubernetes import client, config
        self.api = config.new_client_from_config(config_file=KUBECONFIG, context=CONTEXT)
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.namespace = 'sre-runbooks-test-%s' % uuid.uuid4().hex[:8]

    def watch(self, name, check_mode=False, **args):
        params = dict(platform='kubernetes', name=name, namespace=self.namespace, kubeconfig=KUBECONFIG,
                      stable_for='8s', deadline='60s', interval='2s', request_timeout=30)
        if CONTEXT:
            params['context'] = CONTEXT
        params.update(args)
        return run_module('crash_loop_watch_info', params, check_mode=check_mode)

    def create(self, name, replicas, command):
        self.apps.create_namespaced_deployment(self.namespace, manifest(name, replicas, command), _request_timeout=30)

    def pods(self, name):
        return self.core.list_namespaced_pod(self.namespace, label_selector='app=%s' % name, _request_timeout=30).items

    def wait(self, what, check, timeout=120):
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, '%s not within %ss: %s' % (what, timeout, self.pods('fixed'))
            time.sleep(1)

    def crash_looping(self, name):
        return any(s.state.waiting and s.state.waiting.reason == 'CrashLoopBackOff' and s.restart_count >= 1
                   for pod in self.pods(name) for s in pod.status.container_statuses or [])


@pytest.fixture(scope='module')
def cluster():
    kube = Cluster()
    kube.core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': kube.namespace}},
                               _request_timeout=30)
    try:
        kube.create('steady', 2, SLEEP)
        kube.create('fixed', 1, CRASH)
        yield kube
    finally:
        kube.core.delete_namespace(kube.namespace, _request_timeout=30)


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def test_a_healthy_deployment_recovers_after_stable_for(cluster):
    # Started before its pods run: the watch waits for them, then for the stable window.
    result = ok(cluster.watch('steady'))
    assert (result['recovered'], result['verdict'], result['changed']) == (True, 'recovered', False)
    assert (result['ready'], result['desired'], result['restarts_during'], result['waiting']) == (2, 2, 0, [])
    assert result['stable_seconds'] >= 8 and result['failed_samples'] == 0 and result['query_errors'] == []
    assert result['message'].startswith('deployment steady in namespace %s: 2/2 replicas ready, no restart for '
                                        % cluster.namespace), result['message']
    times = [s['time'] for s in result['samples']]
    assert result['stable_seconds'] - (times[-1] - times[-2]) < 8  # it ended at the first read that made it stable
    assert (result['platform'], result['target']) == ('kubernetes', 'deployment steady in namespace %s' % cluster.namespace)
    checked = ok(cluster.watch('steady', check_mode=True, stable_for='2s'))
    assert (checked['verdict'], checked['changed']) == ('recovered', False)


def test_a_container_that_exits_at_start_is_not_recovered(cluster):
    cluster.create('crashing', 1, CRASH)
    result = ok(cluster.watch('crashing', stable_for='10s', deadline='30s'))
    assert (result['recovered'], result['verdict'], result['stable_seconds']) == (False, 'not_recovered', 0.0)
    # The first attempt exits at once, the next comes after the back-off of 10 s, then 20 s.
    assert result['restarts_during'] >= 1 and result['ready'] == 0 and result['desired'] == 1
    assert result['last_exit'] == 'exit code 1'
    assert any('CrashLoopBackOff' in s['waiting'] for s in result['samples']), result['samples']
    message = result['message']
    assert message.startswith('deployment crashing in namespace %s: %d restart' % (cluster.namespace, result['restarts_during']))
    assert 'during the watch (last: exit code 1), 0/1 ready' in message and 'CrashLoopBackOff' in message, message
    assert message.endswith('at the deadline; stable for 0 s of the 10 s needed'), message
    times = [s['time'] for s in result['samples']]
    assert times[-1] - times[0] <= 30 < times[-1] + 2 - times[0] + 0.1


def test_a_rollout_that_fixes_the_crash_loop_recovers_on_the_new_pods_counts(cluster):
    """The runbook's case: the old pod crash-loops with its restarts; the rollout's new pod has a
    fresh count of 0, and the old pod going away is no restart."""
    cluster.wait('fixed crash-looping', lambda: cluster.crash_looping('fixed'))
    old = {pod.metadata.name for pod in cluster.pods('fixed')}
    outcome = {}
    watcher = threading.Thread(target=lambda: outcome.update(cluster.watch('fixed', stable_for='10s', deadline='90s')))
    watcher.start()
    time.sleep(3)
    cluster.apps.patch_namespaced_deployment('fixed', cluster.namespace, {'spec': {'template': {'spec': {'containers': [
        {'name': 'app', 'command': SLEEP}]}}}}, _request_timeout=30)
    watcher.join(timeout=150)
    result = ok(outcome)
    assert (result['recovered'], result['verdict'], result['ready'], result['desired']) == (True, 'recovered', 1, 1)
    assert result['restarts_during'] <= 1  # the old pod may crash once more before it goes
    assert result['samples'][0]['restarts'] >= 1 and result['samples'][-1]['restarts'] == 0
    assert not {pod.metadata.name for pod in cluster.pods('fixed')} & old


def test_a_deployment_that_does_not_exist_fails_naming_it(cluster):
    result = cluster.watch('absent')
    assert result['failed'] and result['msg'].startswith('deployment absent not found in namespace %s' % cluster.namespace)
    assert result['msg'].endswith('; nothing to watch'), result['msg']
    other = cluster.watch('steady', namespace='sre-runbooks-test-absent-%s' % uuid.uuid4().hex[:6])
    assert other['failed'] and 'not found in namespace sre-runbooks-test-absent-' in other['msg']

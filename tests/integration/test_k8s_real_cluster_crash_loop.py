"""Pod Crash Loop (playbooks/pod_crash_loop.yml, inventories/kubernetes) on a real Kubernetes cluster,
in auto mode: a scenario per cause, on the demo of demo/k8s in a namespace of its own (the Demo of
test_k8s_real_cluster_playbook.py; skipped without SRE_RUNBOOKS_TEST_KUBECONFIG, which make test and
make scenarios set).

The gateway keeps its runtime faults in a flag store that all its pods share: a directory of this
machine mounted as a hostPath in place of the manifest's emptyDir, as compose bind-mounts one. A
fault switched on in one pod (its admin API, through the API server's pod proxy) comes back in
every container started after, as a bad flag in a real flag store would. The node must see this
machine's files (make cluster's does), and the namespace allows hostPath volumes (privileged, where
the demo's is restricted).

In file order:
- the liveness probe: one pod hangs (its /health too) and the kubelet kills it on its liveness
  probe, again and again. The runbook names the probe and restarts the service once; the new pod
  hangs too (the flag store holds the fault), the rollout never completes, and the run escalates:
  one page.
- OOM kills: the memory fault; the runbook doubles the memory limit, and the new pods, whose cache
  grows as before, hold it (checked a minute after the run).
- a crash at start after a change of settings (the demo's crash fault): rolled back.
- an image that cannot be pulled: rolled back.
- a ConfigMap key removed since it was applied: restored.
About ten minutes.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from rig import told
from test_k8s_real_cluster_playbook import CHANGE_CAUSE, CONTEXT, GATEWAY, GOOD, KUBECONFIG, REVISION, Demo

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')

FLAGS = 'inference-gateway.json'   # the gateway's FAULT_STATE_FILE, in the faults volume


class CrashDemo(Demo):
    """The demo, its gateway's faults volume a directory of this machine that every pod shares."""

    def __init__(self):
        super().__init__()
        self.flags = tempfile.mkdtemp(prefix='sre-runbooks-flags-')
        os.chmod(self.flags, 0o777)   # the gateway runs as nobody

    def adapt(self, obj):
        if obj['kind'] == 'Namespace':
            # The restricted (and baseline) Pod Security Standard refuses hostPath volumes.
            obj['metadata']['labels']['pod-security.kubernetes.io/enforce'] = 'privileged'
        if obj['kind'] == 'Deployment' and obj['metadata']['name'] == GATEWAY:
            volumes = obj['spec']['template']['spec']['volumes']
            volumes[:] = [{'name': 'faults', 'hostPath': {'path': self.flags, 'type': 'Directory'}} if v['name'] == 'faults'
                          else v for v in volumes]
        return obj

    def delete(self):
        try:
            super().delete()
        finally:
            shutil.rmtree(self.flags, ignore_errors=True)

    def gateway_pods(self):
        return [p for p in self.core.list_namespaced_pod(self.namespace, label_selector='app=%s' % GATEWAY, _request_timeout=30).items
                if not p.metadata.deletion_timestamp]

    def serving(self):
        pods = [p.metadata.name for p in self.gateway_pods()
                if any(c.type == 'Ready' and c.status == 'True' for c in p.status.conditions or [])]
        assert pods, 'no gateway pod is ready: %s' % self.pod_problems()
        return sorted(pods)

    def admin(self, pod, method='GET', body=None):
        """The gateway pod's /admin/faults, through the API server's pod proxy."""
        path = '/api/v1/namespaces/%s/pods/%s:8000/proxy/admin/faults' % (self.namespace, pod)
        request = self.api.param_serialize(method, path, body=body, auth_settings=['BearerToken'],
                                           header_params={'Content-Type': 'application/json', 'Accept': 'application/json'})
        answer = self.api.call_api(*request, _request_timeout=30)
        answer.read()
        assert answer.status == 200, (pod, method, body, answer.status, answer.data)
        return json.loads(answer.data)

    def switch_on(self, fault):
        """The fault on in one serving pod, and kept in the flag store; that pod's name."""
        pod = self.serving()[0]
        self.admin(pod, 'POST', {'fault': fault, 'enabled': True})
        assert fault in json.load(open(os.path.join(self.flags, FLAGS), encoding='utf-8'))['faults']
        return pod

    def clear(self):
        """The flag store emptied and every running gateway told, then a rollout that completes."""
        flags = os.path.join(self.flags, FLAGS)
        if os.path.exists(flags):
            os.unlink(flags)
        for pod in self.serving_or_running():
            try:
                self.admin(pod, 'POST', {'fault': 'all', 'enabled': False})
            except Exception as exc:  # pylint: disable=broad-except  # a pod between two back-offs
                print('could not switch the faults of %s off: %s' % (pod, exc))
        self.rollout_status()

    def serving_or_running(self):
        return [p.metadata.name for p in self.gateway_pods() if p.status.phase == 'Running']

    def restarts(self, pod):
        """(restart count, last termination reason) of the pod's gateway container."""
        status = self.core.read_namespaced_pod(pod, self.namespace, _request_timeout=30).status
        container = (status.container_statuses or [None])[0]
        if container is None:
            return 0, None
        last = container.last_state.terminated if container.last_state else None
        return container.restart_count, last.reason if last else None

    def wait_restarts(self, pod, count, reason, timeout):
        deadline = time.monotonic() + timeout
        while True:
            restarts, last = self.restarts(pod)
            if restarts >= count and last == reason:
                return
            assert time.monotonic() < deadline, '%s: %d restarts (last %s) after %d s, not %d (%s)' % (
                pod, restarts, last, timeout, count, reason)
            time.sleep(2)

    def events(self, pod, reason):
        return [e for e in self.core.list_namespaced_event(self.namespace, field_selector='involvedObject.name=%s' % pod,
                                                           _request_timeout=30).items if e.reason == reason]


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    kube = CrashDemo()
    kube.state_dir = tmp_path_factory.mktemp('incidents')
    kube.start_channels()
    kube.create()
    try:
        kube.wait_available()
        kube.reach_prometheus()
        kube.wait_query('service:http_requests:rate30s{service="%s"}' % GATEWAY, 120, 'request rate of the gateway')
        yield kube
    finally:
        kube.delete()


def crash_loop_run(demo, tmp_path):
    """Pod Crash Loop in auto mode, an incident of its own."""
    return demo.runbook(tmp_path, 'auto', playbook='playbooks/pod_crash_loop.yml', runbook_state_dir=str(tmp_path / 'registry'))


def wait_problem(demo, reason, timeout=90):
    deadline = time.monotonic() + timeout
    while not any(reason in problem for problem in demo.pod_problems()):
        assert time.monotonic() < deadline, 'no pod in %s after %s s: %s' % (reason, timeout, demo.pod_problems())
        time.sleep(2)


def test_a_gateway_its_liveness_probe_kills_is_restarted_once_then_escalated(demo, tmp_path):
    """One pod hangs (/health with it): the kubelet kills it on its liveness probe and it hangs again
    at every start. The runbook finds the kills and what the probe saw, restarts the service once,
    and, the new pod hanging too, escalates: the rollout failed, one page."""
    pod = demo.switch_on('hang')
    # The gateway ends on SIGTERM with 0: Completed, as a runtime says of any exit 0.
    demo.wait_restarts(pod, 1, 'Completed', 150)
    assert demo.events(pod, 'Killing'), 'no Killing event for %s' % pod
    before = demo.deployment()
    incident, output = crash_loop_run(demo, tmp_path)
    try:
        crash = incident['triage']['crash_loop']
        assert crash['verdict'] == 'crash_loop' and 'LivenessProbe' in crash['kinds'], crash
        action = incident['diagnosis']['action']
        assert action['name'] == 'restart' and action['description'].startswith(
            'rollout restart %s once: its liveness probe kills the containers' % GATEWAY), incident['diagnosis']['summary']
        assert any('killed by its liveness probe: Liveness probe failed' in line for line in incident['diagnosis']['recommended']['evidence'])
        # The restart was made; its new pod hung too, and the rollout never completed.
        attempt = incident['mitigation']['attempts'][0]
        assert attempt['acted'] and attempt['decision'] == 'failed', attempt
        assert 'exceeded its progress deadline' in attempt['reason'], attempt
        assert 'kubectl.kubernetes.io/restartedAt' in attempt['after']['template_annotations'], attempt
        assert incident['outcome'] == 'escalated', output
        # The restart changed nothing but its restart annotation: no new settings, no rollback.
        after = demo.deployment()['spec']['template']
        assert after['spec'] == before['spec']['template']['spec']
        assert 'kubectl.kubernetes.io/restartedAt' in after['metadata']['annotations']
        pages = [s for s in told(demo.journal()) if s[0] == 'pagerduty' and s[1] == 'trigger']
        assert len(pages) == 1, told(demo.journal())
    finally:
        demo.clear()


def test_a_gateway_oom_killed_gets_twice_the_memory_and_holds_its_growth(demo, tmp_path):
    """The memory fault (a cache that grows 8 MB/s to 240 MB) in one pod: OOM-killed at its 160Mi
    limit at every start. The runbook doubles the limit; the new pods grow as before and hold."""
    pod = demo.switch_on('memory_growth')
    demo.wait_restarts(pod, 2, 'OOMKilled', 150)
    incident, output = crash_loop_run(demo, tmp_path)
    try:
        crash = incident['triage']['crash_loop']
        assert 'OOMKilled' in crash['kinds'] and (crash['reason'], crash['exit_code']) == ('OOMKilled', 137), crash
        action = incident['diagnosis']['action']
        assert (action['name'], action['params']) == ('resources', {'memory_factor': 2}), incident['diagnosis']['summary']
        assert incident['outcome'] == 'resolved' and incident['verify']['restarts_during'] == 0, output
        container = demo.deployment()['spec']['template']['spec']['containers'][0]
        assert container['resources']['limits'] == {'cpu': '1', 'memory': '320Mi'}, container['resources']
        # A minute on, every new pod has grown its cache to the end (240 MB in 30 s), unkilled.
        time.sleep(60)
        for name in demo.serving():
            assert demo.restarts(name) == (0, None), (name, demo.restarts(name))
            assert 'memory_growth' in demo.admin(name)['active'], demo.admin(name)
        assert len(demo.serving()) == demo.deployment()['spec']['replicas']
    finally:
        demo.clear()


def test_a_crash_at_start_after_a_change_of_settings_is_rolled_back(demo, tmp_path):
    """The demo's crash fault as a rolling update (kubectl set env MODEL_SERVICE_URL=not-a-url): the
    new pod exits 1 at start ("config error") and crash-loops while the old ones serve. The change of
    settings, with the same image, is the cause: rolled back to the revision before it, verified."""
    before = demo.deployment()
    body = {'spec': {'template': {'spec': {'containers': [{'name': GATEWAY, 'env': [{'name': 'MODEL_SERVICE_URL', 'value': 'not-a-url'}]}]}}}}
    demo.apps.patch_namespaced_deployment(GATEWAY, demo.namespace, body, _request_timeout=30,
                                          _content_type='application/strategic-merge-patch+json')
    wait_problem(demo, 'CrashLoopBackOff')
    incident, output = crash_loop_run(demo, tmp_path)
    crash = incident['triage']['crash_loop']
    assert 'CrashLoopBackOff' in crash['kinds'] and (crash['reason'], crash['exit_code']) == ('Error', 1), crash
    recommended = incident['diagnosis']['recommended']
    assert recommended['action']['name'] == 'rollback', incident['diagnosis']['summary']
    assert str(recommended['action']['params']['to_revision']) == before['metadata']['annotations'][REVISION], recommended
    assert any('env MODEL_SERVICE_URL changed' in line for line in recommended['evidence']), recommended['evidence']
    assert incident['outcome'] == 'resolved' and incident['verify']['restarts_during'] == 0, output
    env = {e['name']: e.get('value') for e in demo.deployment()['spec']['template']['spec']['containers'][0]['env']}
    assert env['MODEL_SERVICE_URL'] == 'http://model-service:8080', env
    assert not demo.pod_problems(), demo.pod_problems()


def test_pod_crash_loop_rolls_back_a_version_whose_image_cannot_be_pulled(demo, tmp_path):
    """Pod Crash Loop: a deploy of a version the node cannot pull (v9.9.9). The rolling update's new
    pod waits in ImagePullBackOff while the old ones serve: a crash loop, not an outage (P2). The
    runbook judges it on the pods, rolls back to the revision before the deploy (the memory limit
    the resources run set is kept), and verifies that every replica runs ready with no restart."""
    before = demo.deployment()
    body = {'metadata': {'annotations': {CHANGE_CAUSE: 'deploy inference-gateway v9.9.9 (test)'}},
            'spec': {'template': {'spec': {'containers': [{'name': GATEWAY, 'image': 'sre-demo/inference-gateway:v9.9.9'}]}}}}
    demo.apps.patch_namespaced_deployment(GATEWAY, demo.namespace, body, _request_timeout=30,
                                          _content_type='application/strategic-merge-patch+json')
    wait_problem(demo, 'ImagePull')
    incident, output = crash_loop_run(demo, tmp_path)
    crash = incident['triage']['crash_loop']
    assert incident['symptom'] == 'crash_loop' and crash['verdict'] == 'crash_loop', crash
    assert crash['kinds'] == ['ImagePullBackOff'] and crash['ready'] >= 1, crash
    assert not incident['triage']['service_down'] and incident['severity'] == 'warning', output
    recommended = incident['diagnosis']['recommended']
    assert (recommended['cause'], recommended['action']['name']) == ('crash_loop', 'rollback'), incident['diagnosis']['summary']
    assert str(recommended['action']['params']['to_revision']) == before['metadata']['annotations'][REVISION], recommended
    assert incident['outcome'] == 'resolved' and incident['verify']['recovered'], output
    assert incident['verify']['restarts_during'] == 0 and incident['verify']['ready'] == incident['verify']['desired'], incident['verify']
    after = demo.deployment()
    containers = after['spec']['template']['spec']['containers'][0]
    assert containers['image'] == before['spec']['template']['spec']['containers'][0]['image'] == GOOD
    assert containers['resources'] == before['spec']['template']['spec']['containers'][0]['resources']
    assert not demo.pod_problems(), demo.pod_problems()
    texts = [e['body'].get('text', '') for e in demo.journal() if e['api'] == 'slack']
    assert any('Pod Crash Loop' in t and 'ImagePullBackOff' in t for t in texts), texts


def test_pod_crash_loop_restores_a_configmap_key_removed_since_it_was_applied(demo, tmp_path):
    """Pod Crash Loop: the gateway reads UPSTREAM_TIMEOUT from a ConfigMap made with kubectl apply;
    someone removes the key, and the next rollout's pod waits in CreateContainerConfigError while
    the old pods serve. The runbook finds the key in the ConfigMap's last applied configuration,
    puts it back (nothing else of the ConfigMap or the Deployment changes), the waiting pod starts,
    and every replica is verified ready with no restart."""
    kubectl = [shutil.which('kubectl'), '--kubeconfig', KUBECONFIG] + (['--context', CONTEXT] if CONTEXT else []) + [
        '--namespace', demo.namespace]
    settings = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'gateway-settings'},
                'data': {'UPSTREAM_TIMEOUT': '2', 'OWNER': 'ml-platform'}}
    subprocess.run(kubectl + ['apply', '-f', '-'], input=json.dumps(settings), text=True, check=True, timeout=60)
    body = {'spec': {'template': {'spec': {'containers': [{'name': GATEWAY, 'env': [{
        'name': 'UPSTREAM_TIMEOUT', 'value': None,
        'valueFrom': {'configMapKeyRef': {'name': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT'}}}]}]}}}}
    demo.apps.patch_namespaced_deployment(GATEWAY, demo.namespace, body, _request_timeout=30,
                                          _content_type='application/strategic-merge-patch+json')
    demo.rollout_status()
    subprocess.run(kubectl + ['patch', 'configmap', 'gateway-settings', '--type=json',
                              '-p', '[{"op": "remove", "path": "/data/UPSTREAM_TIMEOUT"}]'], check=True, timeout=60)
    subprocess.run(kubectl + ['rollout', 'restart', 'deployment/%s' % GATEWAY], check=True, timeout=60)
    wait_problem(demo, 'CreateContainerConfigError')
    before = demo.deployment()
    incident, output = crash_loop_run(demo, tmp_path)
    crash = incident['triage']['crash_loop']
    assert crash['verdict'] == 'crash_loop' and crash['kinds'] == ['CreateContainerConfigError'], crash
    action = incident['diagnosis']['action']
    assert (action['name'], action['params']) == ('restore_config_key', {'configmap': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT'}), output
    assert incident['outcome'] == 'resolved' and incident['verify']['recovered'], output
    configmap = demo.core.read_namespaced_config_map('gateway-settings', demo.namespace, _request_timeout=30)
    assert configmap.data == {'UPSTREAM_TIMEOUT': '2', 'OWNER': 'ml-platform'}, configmap.data
    assert demo.deployment()['spec']['template'] == before['spec']['template']
    assert not demo.pod_problems(), demo.pod_problems()

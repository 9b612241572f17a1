"""What went wrong on real clusters, each case on the real control plane of `make cluster`
(or the kubeconfig in SRE_RUNBOOKS_TEST_KUBECONFIG): pods of a Deployment chosen by owner beside
an overlapping canary, a Service without an Endpoints object, an undo onto revisions that cannot
progress, a rollout blocked by a ResourceQuota, and failing probes and restarts told by the
kubelet's Events. Each test works in a namespace of its own.

A pod cannot start when its image is in no store the node reaches: `make cluster`'s node holds the
rig's images and no registry (a real kubelet with no reachable registry behaves the same), so
MISSING pods wait in ErrImagePull / ImagePullBackOff, as on any cluster.
"""

import time
import uuid

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from conftest import run_module
from test_k8s_real_cluster import IMAGE, KUBECONFIG, Cluster, manifest

MISSING = 'sre-runbooks.invalid/not-in-any-store:%s'

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


@pytest.fixture()
def kube():
    cluster = Cluster()
    cluster.namespace = 'sre-runbooks-fail-%s' % uuid.uuid4().hex[:8]
    cluster.core.create_namespace({'metadata': {'name': cluster.namespace}}, _request_timeout=30)
    try:
        yield cluster
    finally:
        cluster.core.delete_namespace(cluster.namespace, _request_timeout=30)


def deploy(kube, name, labels, selector, image=IMAGE, replicas=1, deadline=120):
    body = manifest(name, labels, selector, '1')
    body['spec'].update(replicas=replicas, progressDeadlineSeconds=deadline)
    body['spec']['template']['spec']['containers'][0]['image'] = image
    kube.apps.create_namespaced_deployment(kube.namespace, body, _request_timeout=30)


def set_image(kube, name, image):
    body = {'spec': {'template': {'spec': {'containers': [{'name': 'app', 'image': image}]}}}}
    kube.apps.patch_namespaced_deployment(name, kube.namespace, body, _request_timeout=30,
                                          _content_type='application/strategic-merge-patch+json')


def progressing(kube, name):
    return kr.progressing(kube.deployment(name)) or {}


def wait_until(what, check, timeout=90):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, 'not reached in %d s: %s' % (timeout, what)
        time.sleep(0.5)


def status(kube, name, **args):
    result = run_module('k8s_status_info', dict(name=name, namespace=kube.namespace, kubeconfig=KUBECONFIG,
                                                request_timeout=30, **args))
    assert not result.get('failed'), result
    return result


def test_a_deployments_pods_are_its_own_not_an_overlapping_canarys(kube):
    deploy(kube, 'web', {'app': 'web'}, {'app': 'web'}, replicas=2)
    canary = {'app': 'web', 'track': 'canary'}
    deploy(kube, 'web-canary', canary, canary, image=MISSING % 'canary')
    kube.wait_done('web')
    wait_until('the canary pulling', lambda: 'ImagePullBackOff' in {
        p['kind'] for p in status(kube, 'web-canary')['problems']})

    web = status(kube, 'web')
    # web's selector (app=web) matches the canary's pod too: three pods by label, two by owner.
    assert len(kube.core.list_namespaced_pod(kube.namespace, label_selector='app=web', _request_timeout=30).items) == 3
    assert len(web['pods']) == 2 and all(p['ready'] for p in web['pods']), web['pods']
    assert all(p['name'].startswith('web-') and not p['name'].startswith('web-canary-') for p in web['pods'])
    assert not web['problems'], web['problems']


def test_a_service_without_an_endpoints_object_is_not_a_missing_service(kube):
    deploy(kube, 'web', {'app': 'web'}, {'app': 'web'}, replicas=2)
    kube.wait_done('web')
    port = [{'port': 80, 'targetPort': 8080}]
    kube.core.create_namespaced_service(kube.namespace, {'metadata': {'name': 'web'},
                                                         'spec': {'selector': {'app': 'web'}, 'ports': port}},
                                        _request_timeout=30)
    # No selector: nobody makes its Endpoints (an external backend's Service, a mistake).
    kube.core.create_namespaced_service(kube.namespace, {'metadata': {'name': 'web-bare'}, 'spec': {'ports': port}},
                                        _request_timeout=30)
    wait_until('the endpoints controller', lambda: status(kube, 'web', service='web')['endpoints']['ready'] == 2)

    bare = status(kube, 'web', service='web-bare')
    assert bare['endpoints']['found'] and not bare['endpoints']['endpoints_found'], bare['endpoints']
    assert bare['endpoints']['selector'] is False
    assert [p['kind'] for p in bare['problems']] == ['NoEndpointsObject'], bare['problems']
    assert 'no Service' not in bare['summary']

    gone = status(kube, 'web', service='nope')
    assert not gone['endpoints']['found'] and 'no Service nope' in gone['summary']


def test_an_undo_onto_a_revision_that_cannot_progress_fails_at_once_naming_the_deadline(kube):
    # Revisions 1 and 2 both stuck past their deadline: undoing 2 -> 1 is no progress, so the
    # controller keeps the old ProgressDeadlineExceeded condition (its old lastUpdateTime).
    deploy(kube, 'stuck', {'app': 'stuck'}, {'app': 'stuck'}, image=MISSING % 'a', deadline=2)
    wait_until('revision 1 past its deadline', lambda: progressing(kube, 'stuck').get('reason') == 'ProgressDeadlineExceeded')
    set_image(kube, 'stuck', MISSING % 'b')
    wait_until('revision 2 past its deadline', lambda: progressing(kube, 'stuck').get('reason') == 'ProgressDeadlineExceeded'
               and kube.deployment('stuck')['status'].get('observedGeneration') == 2)

    started = time.monotonic()
    undone = kube.rollout('stuck', state='undone', wait_timeout=240)
    took = time.monotonic() - started
    assert undone['failed'] and undone['target_revision'] == 1, undone
    assert 'progress deadline' in undone['msg'] and '2 s' in undone['msg'], undone['msg']
    assert took < 60, 'waited %.0f s of a 240 s timeout' % took


def test_a_rollout_blocked_by_a_quota_names_the_quota(kube):
    kube.core.create_namespaced_resource_quota(kube.namespace, {'metadata': {'name': 'pods'}, 'spec': {'hard': {'pods': '1'}}},
                                               _request_timeout=30)
    wait_until('the quota computed', lambda: kube.core.read_namespaced_resource_quota(
        'pods', kube.namespace, _request_timeout=30).status.hard is not None)
    deploy(kube, 'web', {'app': 'web'}, {'app': 'web'}, replicas=3, deadline=600)

    started = time.monotonic()
    waited = kube.rollout('web', state='status', wait=True, wait_timeout=240)
    took = time.monotonic() - started
    assert waited['failed'] and 'exceeded quota: pods' in waited['msg'], waited
    assert took < 60, 'waited %.0f s of a 240 s timeout' % took

    found = status(kube, 'web')
    kinds = [p['kind'] for p in found['problems']]
    assert 'ReplicaFailure' in kinds, found['problems']
    failure = found['problems'][kinds.index('ReplicaFailure')]
    assert 'exceeded quota: pods' in failure['message'] and 'ReplicaFailure' in found['summary']


def running_pod(kube, app):
    """The pod of the Deployment `app` once it has an address."""
    def pod():
        return next((p for p in kube.core.list_namespaced_pod(kube.namespace, label_selector='app=%s' % app, _request_timeout=30).items
                     if p.status.pod_ip), None)
    wait_until('a pod of %s with an address' % app, pod)
    return pod()


def kubelet_events(kube, pod, reason):
    return kube.core.list_namespaced_event(kube.namespace, field_selector='involvedObject.name=%s,reason=%s' % (pod.metadata.name, reason),
                                           _request_timeout=30).items


def test_failing_probes_and_restarts_are_the_kubelets_events(kube):
    """What a kubelet records as Events: a readiness probe failing again and again is one Unhealthy
    Event counted up, which k8s_status_info gives as why the pod is not ready; a liveness probe
    failing kills the container (Killing) and its restart waits for the back-off (BackOff).
    Nothing listens on port 8080 in either pod."""
    for name, kind, path in (('unready', 'readinessProbe', '/ready'), ('killed', 'livenessProbe', '/health')):
        body = manifest(name, {'app': name}, {'app': name}, '1')
        body['spec']['template']['spec']['containers'][0][kind] = {'httpGet': {'path': path, 'port': 8080}, 'periodSeconds': 1,
                                                                   'failureThreshold': 2}
        kube.apps.create_namespaced_deployment(kube.namespace, body, _request_timeout=30)
    unready, killed = running_pod(kube, 'unready'), running_pod(kube, 'killed')

    def refused(pod, path):  # the kubelet's HTTP prober, on a port that refuses
        return 'Get "http://%s:8080%s": dial tcp %s:8080: connect: connection refused' % (pod.status.pod_ip, path, pod.status.pod_ip)

    wait_until('the readiness probe failed twice', lambda: [e.count >= 2 for e in kubelet_events(kube, unready, 'Unhealthy')] == [True])
    [first] = kubelet_events(kube, unready, 'Unhealthy')
    assert (first.type, first.message) == ('Warning', 'Readiness probe failed: ' + refused(unready, '/ready'))
    involved = first.involved_object
    assert (involved.kind, involved.name, involved.uid, involved.field_path) == (
        'Pod', unready.metadata.name, unready.metadata.uid, 'spec.containers{app}')
    assert (first.source.component, first.source.host, first.reporting_component) == ('kubelet', unready.spec.node_name, 'kubelet')
    # Failing again: the same Event, its count and lastTimestamp moved on.
    wait_until('the Unhealthy Event counted up', lambda: kubelet_events(kube, unready, 'Unhealthy')[0].count > first.count + 1)
    [again] = kubelet_events(kube, unready, 'Unhealthy')
    assert again.metadata.name == first.metadata.name and again.last_timestamp > first.first_timestamp
    found = status(kube, 'unready')
    assert {'kind': 'NotReady', 'pods': [unready.metadata.name], 'message': first.message} in found['problems'], found['problems']
    assert ('Unhealthy', first.message, True) in [(e['reason'], e['message'], e['count'] >= 2) for e in found['events']], found['events']

    wait_until('the liveness kill and the back-off', lambda: kubelet_events(kube, killed, 'BackOff'))
    [unhealthy] = kubelet_events(kube, killed, 'Unhealthy')
    assert unhealthy.message == 'Liveness probe failed: ' + refused(killed, '/health') and unhealthy.count >= 2, unhealthy
    [killing] = kubelet_events(kube, killed, 'Killing')
    assert (killing.type, killing.message) == ('Normal', 'Container app failed liveness probe, will be restarted')
    [backoff] = kubelet_events(kube, killed, 'BackOff')
    assert (backoff.type, backoff.message) == ('Warning', 'Back-off restarting failed container app in pod %s_%s(%s)' % (
        killed.metadata.name, kube.namespace, killed.metadata.uid))
    wait_until('the restart after the back-off', lambda: kube.core.read_namespaced_pod(
        killed.metadata.name, kube.namespace, _request_timeout=30).status.container_statuses[0].restart_count >= 1)


def one_error_line(result):
    assert result.get('failed') is True, result
    assert '\n' not in result['msg'].strip() and 'Traceback' not in result['msg'], result['msg']
    return result['msg']


def test_a_namespace_that_does_not_exist_is_named_and_nothing_is_made(kube):
    missing = kube.namespace + '-missing'
    for module, extra in (('k8s_status_info', {}), ('k8s_rollout', {'state': 'restarted'}),
                          ('k8s_workload', {'replicas': 2})):
        msg = one_error_line(run_module(module, dict(name='web', namespace=missing, kubeconfig=KUBECONFIG,
                                                     request_timeout=30, **extra)))
        assert 'not found in namespace %s' % missing in msg and 'check the name and that the namespace exists' in msg, msg
    assert missing not in [n.metadata.name for n in kube.core.list_namespace(_request_timeout=30).items]


def test_rbac_forbidden_names_the_account_and_the_permission(kube):
    """A ServiceAccount bound to nothing: each module says who was refused what, and how to check
    the grant; the Deployment is unchanged."""
    deploy(kube, 'web', {'app': 'web'}, {'app': 'web'})
    kube.core.create_namespaced_service_account(kube.namespace, {'metadata': {'name': 'no-rights'}}, _request_timeout=30)
    token = kube.core.create_namespaced_service_account_token(
        'no-rights', kube.namespace, {'spec': {'expirationSeconds': 600}}, _request_timeout=30).status.token
    config = kube.api_client.configuration
    before = kube.deployment('web')['spec']
    for module, extra in (('k8s_status_info', {}), ('k8s_rollout', {'state': 'restarted'}),
                          ('k8s_workload', {'replicas': 2})):
        msg = one_error_line(run_module(module, dict(name='web', namespace=kube.namespace, host=config.host, api_key=token,
                                                     ca_cert=config.ssl_ca_cert, request_timeout=30, **extra)))
        assert 'forbidden' in msg and 'system:serviceaccount:%s:no-rights' % kube.namespace in msg, msg
        assert 'kubectl auth can-i' in msg, msg
    assert kube.deployment('web')['spec'] == before

"""sre.runbooks.k8s_rollout run for real, as Ansible runs it (a child process, tests/conftest.py
run_module), against a fake Kubernetes API server on 127.0.0.1.

The module's `kubernetes` client cannot be patched from here, so the fake (fake_k8s.py, shared by
the Kubernetes module tests) sits at the HTTP boundary and answers as the Kubernetes API documents:
GET /apis/apps/v1/namespaces/{ns}/deployments/{name}, GET .../replicasets?labelSelector=... (a
ReplicaSetList), PATCH .../deployments/{name} (application/json-patch+json or
strategic-merge-patch+json, with ?dryRun=All answering the would-be object without storing it), 404
Status objects, and the Deployment controller's steps after a change. The module is pointed at it
with host + api_key and validate_certs false over plain http. A real cluster is exercised by
test_k8s_real_cluster.py.
"""

import copy
import json
import time

import pytest

from conftest import run_module
from fake_k8s import TOKEN, FakeApiServer

UID = '6f1c2a8e-0b5d-4a43-9d57-2f1b7e0c9a11'
OTHER_UID = 'a3d9e4b2-77c1-4f0e-8a6b-91c0d2e4f5a6'


def pod_template(image, hash_value=None):
    labels = {'app': 'web', 'pod-template-hash': hash_value} if hash_value else {'app': 'web'}
    return {'metadata': {'labels': labels},
            'spec': {'containers': [{'name': 'web', 'image': image, 'imagePullPolicy': 'IfNotPresent',
                                     'resources': {}, 'terminationMessagePath': '/dev/termination-log',
                                     'terminationMessagePolicy': 'File'}],
                     'dnsPolicy': 'ClusterFirst', 'restartPolicy': 'Always', 'schedulerName': 'default-scheduler',
                     'securityContext': {}, 'terminationGracePeriodSeconds': 30}}


def deployment(paused=False, progressing=None, **status):
    """Deployment web in shop at revision 7, rolled out, as `kubectl get -o json` shows it."""
    counts = dict(observedGeneration=9, replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3)
    counts.update(status)
    counts['conditions'] = [progressing or {
        'lastTransitionTime': '2026-11-20T08:00:00Z', 'lastUpdateTime': '2026-11-23T14:02:11Z',
        'message': 'ReplicaSet "web-h00007" has successfully progressed.', 'reason': 'NewReplicaSetAvailable',
        'status': 'True', 'type': 'Progressing'}]
    spec = {'progressDeadlineSeconds': 600, 'replicas': 3, 'revisionHistoryLimit': 10,
            'selector': {'matchLabels': {'app': 'web'}},
            'strategy': {'rollingUpdate': {'maxSurge': '25%', 'maxUnavailable': '25%'}, 'type': 'RollingUpdate'},
            'template': pod_template('web:7')}
    if paused:
        spec['paused'] = True
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment',
            'metadata': {'annotations': {'deployment.kubernetes.io/revision': '7'},
                         'creationTimestamp': '2026-11-20T08:00:00Z', 'generation': 9, 'labels': {'app': 'web'},
                         'name': 'web', 'namespace': 'shop', 'resourceVersion': '48211', 'uid': UID},
            'spec': spec, 'status': counts}


def stuck():
    """web rolling out web:8, stuck on ProgressDeadlineExceeded."""
    dep = deployment(replicas=4, updatedReplicas=1, unavailableReplicas=1, progressing={
        'lastTransitionTime': '2026-11-23T14:12:40Z', 'lastUpdateTime': '2026-11-23T14:12:40Z',
        'message': 'ReplicaSet "web-6b7f9c4d8" has timed out progressing.', 'reason': 'ProgressDeadlineExceeded',
        'status': 'False', 'type': 'Progressing'})
    dep['spec']['template'] = pod_template('web:8')
    return dep


def replica_set(revision, image, owner='web', owner_uid=UID, replicas=0):
    hash_value = 'h%05d' % revision
    return {'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
            'metadata': {'annotations': {'deployment.kubernetes.io/desired-replicas': '3',
                                         'deployment.kubernetes.io/max-replicas': '4',
                                         'deployment.kubernetes.io/revision': str(revision)},
                         'creationTimestamp': '2026-11-%02dT10:00:00Z' % (revision + 1), 'generation': 1,
                         'labels': {'app': 'web', 'pod-template-hash': hash_value},
                         'name': '%s-%s' % (owner, hash_value), 'namespace': 'shop',
                         'ownerReferences': [{'apiVersion': 'apps/v1', 'blockOwnerDeletion': True, 'controller': True,
                                              'kind': 'Deployment', 'name': owner, 'uid': owner_uid}],
                         'resourceVersion': str(1000 + revision), 'uid': 'rs-%s-%d' % (owner, revision)},
            'spec': {'replicas': replicas, 'selector': {'matchLabels': {'app': 'web', 'pod-template-hash': hash_value}},
                     'template': pod_template(image, hash_value)},
            'status': {'observedGeneration': 1, 'replicas': replicas}}


@pytest.fixture
def api():
    fake = FakeApiServer()
    fake.add(deployment(), replica_set(1, 'web:1'), replica_set(4, 'web:4'), replica_set(7, 'web:7', replicas=3),
             # another Deployment whose ReplicaSets carry the same app=web label
             replica_set(6, 'admin:6', owner='web-admin', owner_uid=OTHER_UID, replicas=2))
    yield fake
    fake.close()


def rollout(api, check_mode=False, **args):
    params = dict(name='web', namespace='shop', host=api.url, api_key=TOKEN, validate_certs=False,
                  request_timeout=5, wait_timeout=10)
    params.update(args)
    result = run_module('k8s_rollout', params, check_mode=check_mode)
    assert TOKEN not in json.dumps(result)
    return result


def patches(api):
    return [r for r in api.requests if r['method'] == 'PATCH']


def test_history_from_owned_replica_sets(api):
    result = rollout(api, state='history')
    assert not result.get('failed') and result['changed'] is False
    assert [(e['revision'], e['images'], e['current']) for e in result['history']] == \
        [(1, ['web:1'], False), (4, ['web:4'], False), (7, ['web:7'], True)]
    listed = [r for r in api.requests if r['path'].endswith('/replicasets')]
    assert listed[0]['query']['labelSelector'] == ['app=web']
    assert api.requests[0]['headers']['authorization'] == 'Bearer ' + TOKEN


def test_undone_to_previous(api):
    result = rollout(api, state='undone', _ansible_diff=True)
    assert result['changed'] and not result.get('failed'), result
    assert result['target_revision'] == 4 and result['msg'] == 'rolled back to revision 4'
    [patch] = patches(api)
    assert patch['headers']['content-type'] == 'application/json-patch+json' and 'dryRun' not in patch['query']
    assert patch['body'] == [
        {'op': 'replace', 'path': '/spec/template', 'value': pod_template('web:4')},    # without pod-template-hash
        {'op': 'replace', 'path': '/metadata/annotations', 'value': {'deployment.kubernetes.io/revision': '7'}},
    ]
    assert result['before']['images'] == ['web:7'] and result['after']['images'] == ['web:4']
    assert result['revision'] == 8 and result['status']['done']          # waited for the controller
    assert result['diff']['before']['spec']['template']['spec']['containers'][0]['image'] == 'web:7'
    assert result['diff']['after']['spec']['template']['spec']['containers'][0]['image'] == 'web:4'


def test_undone_to_revision(api):
    result = rollout(api, state='undone', to_revision=1, wait=False)
    assert result['changed'] and result['target_revision'] == 1
    [patch] = patches(api)
    assert patch['body'][0]['value']['spec']['containers'][0]['image'] == 'web:1'
    assert 'pod-template-hash' not in patch['body'][0]['value']['metadata']['labels']


def test_undone_to_missing_revision(api):
    result = rollout(api, state='undone', to_revision=6)       # 6 is web-admin's, not web's
    assert result['failed'] and 'unable to find revision 6' in result['msg'] and '(revisions: 1, 4, 7)' in result['msg']
    assert not patches(api)


def test_undone_skipped_when_template_matches(api):
    result = rollout(api, state='undone', to_revision=7)
    assert result['changed'] is False and not result.get('failed')
    assert result['msg'] == 'skipped rollback (current template already matches revision 7)'
    assert not patches(api)


def test_undone_twice_is_idempotent(api):
    assert rollout(api, state='undone', to_revision=4)['changed']
    again = rollout(api, state='undone', to_revision=4)
    assert again['changed'] is False and 'skipped rollback' in again['msg']
    assert len(patches(api)) == 1


def test_paused_refused(api):
    api.add(deployment(paused=True))
    for state in ('undone', 'restarted'):
        result = rollout(api, state=state)
        assert result['failed'] and 'paused deployment web' in result['msg'] and 'kubectl rollout resume' in result['msg']
    assert not patches(api)


def test_check_mode_sends_a_server_dry_run(api):
    before = copy.deepcopy(api.get('deployments', 'web', 'shop'))
    result = rollout(api, check_mode=True, state='undone')
    assert result['changed'] and result['after']['images'] == ['web:4']
    [patch] = patches(api)
    assert patch['query']['dryRun'] == ['All']
    assert api.get('deployments', 'web', 'shop') == before
    assert [r['method'] for r in api.requests].count('GET') == 2         # no wait in check mode


def test_restarted(api):
    result = rollout(api, state='restarted')
    assert result['changed'] and result['status']['done']
    [patch] = patches(api)
    assert patch['headers']['content-type'] == 'application/strategic-merge-patch+json'
    stamp = patch['body']['spec']['template']['metadata']['annotations']['kubectl.kubernetes.io/restartedAt']
    assert abs(time.mktime(time.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ')) - time.mktime(time.gmtime())) < 60
    assert result['after']['template_annotations']['kubectl.kubernetes.io/restartedAt'] == stamp
    again = rollout(api, state='restarted', if_restarted_before='now-10m')
    assert again['changed'] is False and 'not restarted' in again['msg']
    assert len(patches(api)) == 1


def test_restarted_check_mode(api):
    result = rollout(api, check_mode=True, state='restarted')
    assert result['changed'] and patches(api)[0]['query']['dryRun'] == ['All']
    assert 'annotations' not in api.get('deployments', 'web', 'shop')['spec']['template']['metadata']


def test_status_done(api):
    result = rollout(api, state='status')
    assert result['status']['done'] and result['msg'] == 'deployment "web" successfully rolled out'
    assert result['changed'] is False and result['revision'] == 7


DEADLINE = ('deployment "web" exceeded its progress deadline of 600 s (progressDeadlineSeconds): '
            'ReplicaSet "web-6b7f9c4d8" has timed out progressing.')
QUOTA = ('pods "web-h00008-x7k2p" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=3, '
         'limited: pods=3')


def replica_failure(obj):
    """obj (a ReplicaSet or Deployment) with the ReplicaFailure condition the quota's refusal sets."""
    obj['status'].setdefault('conditions', []).append({
        'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA,
        'lastTransitionTime': '2026-11-23T14:20:00Z', 'lastUpdateTime': '2026-11-23T14:20:00Z'})
    return obj


class NoProgress(FakeApiServer):
    """The deployment controller after an undo onto a ReplicaSet that makes no progress: it observes
    the new generation and keeps the Progressing condition as it was (it refreshes it only on progress)."""

    def controllers(self, key):
        deploy = self.objects[key]
        deploy['status'].update(observedGeneration=deploy['metadata']['generation'], updatedReplicas=0)


class FullQuota(FakeApiServer):
    """The controllers in a namespace at its pod quota: for a new pod template the deployment
    controller makes ReplicaSet web-h00008, whose first pod the quota refuses (ReplicaFailure,
    copied onto the Deployment); 3 replicas with maxUnavailable 25% take no old pod down first."""

    def controllers(self, key):
        deploy = self.objects[key]
        status, meta = deploy['status'], deploy['metadata']
        if status['observedGeneration'] >= meta['generation']:
            return
        made = replica_failure(replica_set(8, 'web:7', replicas=1))
        made['spec']['template'] = copy.deepcopy(deploy['spec']['template'])
        made['spec']['template']['metadata']['labels']['pod-template-hash'] = 'h00008'
        made['status'].update(replicas=0)
        self.add(made)
        status.update(observedGeneration=meta['generation'], updatedReplicas=0, terminatingReplicas=0, conditions=[
            {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetCreated',
             'message': 'Created new replica set "web-h00008"', 'lastUpdateTime': '2026-11-23T14:19:59Z'}])
        replica_failure(deploy)


def test_status_progress_deadline_exceeded_fails_at_once(api):
    api.add(stuck())
    started = time.monotonic()
    result = rollout(api, state='status', wait=True, wait_timeout=60)
    assert time.monotonic() - started < 10
    assert result['failed'] and result['status']['failed']
    assert result['msg'] == DEADLINE


def test_undo_onto_a_replica_set_that_cannot_progress_fails_as_fast_as_kubectl():
    """The deadline exceeded before the undo is current once the controller observed the undo."""
    api = NoProgress()
    api.add(stuck(), replica_set(4, 'web:4'), replica_set(7, 'web:7', replicas=3))
    try:
        started = time.monotonic()
        result = rollout(api, state='undone', to_revision=4, wait_timeout=120)
        elapsed = time.monotonic() - started
    finally:
        api.close()
    assert result['failed'] and result['changed'] and result['target_revision'] == 4
    assert result['msg'] == DEADLINE and elapsed < 30
    assert result['status']['failed'] and result['status']['observed_generation'] == result['status']['generation'] == 10


def test_undo_of_a_stuck_rollout_waits_past_the_deadline_until_the_controller_observes_it(api):
    api.add(stuck())
    api.controller = None      # the controller has not observed the undo (yet): the condition is the replaced rollout's
    result = rollout(api, state='undone', to_revision=7, wait_timeout=3)
    assert result['failed'] and 'rollout not done after 3s' in result['msg'] and 'exceeded' not in result['msg']
    assert 'Waiting for deployment spec update to be observed' in result['msg']
    assert result['changed'] and result['target_revision'] == 7


def test_restart_whose_pods_a_quota_refuses_fails_at_once_with_the_cause():
    api = FullQuota()
    api.add(deployment(), replica_set(7, 'web:7', replicas=3))
    try:
        started = time.monotonic()
        result = rollout(api, state='restarted', wait_timeout=120)
        elapsed = time.monotonic() - started
        listed = [r for r in api.requests if r['path'].endswith('/replicasets')]
    finally:
        api.close()
    assert result['failed'] and result['changed'] and elapsed < 30
    assert result['msg'] == ('cannot create pods: %s; deployment "web" cannot roll out until that is fixed (condition '
                             'ReplicaFailure FailedCreate of ReplicaSet web-h00008; kubectl describe replicaset '
                             'web-h00008 -n shop)' % QUOTA)
    assert result['status']['replica_failure'] == QUOTA and result['status']['failed']
    assert listed and listed[0]['query']['labelSelector'] == ['app=web']


def test_waiting_on_a_deployment_a_quota_holds_below_its_replicas_fails_at_once(api):
    """1 of 3 pods allowed, no old pod to free the quota: the progress deadline would be 600 s away."""
    api.add(replica_failure(deployment(replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1)),
            replica_failure(replica_set(7, 'web:7', replicas=1)))
    started = time.monotonic()
    result = rollout(api, state='status', wait=True, wait_timeout=120)
    assert result['failed'] and time.monotonic() - started < 30
    assert result['msg'].startswith('cannot create pods: %s; deployment "web" cannot roll out until that is fixed' % QUOTA)
    assert result['status']['updated_replicas'] == 1 and result['status']['replicas'] == 3


def test_a_progress_deadline_names_the_pods_refused(api):
    """A rollout blocked by a quota until its deadline: the message leads with the refusal."""
    failing = replica_failure(replica_set(8, 'web:8', replicas=1))
    api.add(replica_failure(stuck()), failing)
    result = rollout(api, state='status')
    assert result['failed'] and result['msg'] == 'cannot create pods: %s; %s' % (QUOTA, DEADLINE)
    assert result['status']['replica_failure'] == QUOTA


def test_a_refusal_of_an_older_replica_set_is_not_the_rollout_s(api):
    """The Deployment copies an older ReplicaSet's ReplicaFailure when its newest has none."""
    api.add(replica_failure(deployment()))
    result = rollout(api, state='status')
    assert not result.get('failed') and result['msg'] == 'deployment "web" successfully rolled out'
    assert result['status']['replica_failure'] is None


def test_wait_times_out_with_the_last_message(api):
    api.controller = None
    result = rollout(api, state='restarted', wait_timeout=2)
    assert result['failed'] and result['msg'].startswith('deployment web in namespace shop: rollout not done after 2s: ')
    assert 'Waiting for deployment spec update to be observed' in result['msg']


def test_not_found(api):
    result = rollout(api, name='nope')
    assert result['failed']
    assert result['msg'].startswith('deployment nope not found in namespace shop (HTTP 404')


def test_bad_token(api):
    result = rollout(api, api_key='wrong-token')
    assert result['failed'] and 'refused the credentials' in result['msg'] and 'wrong-token' not in json.dumps(result)

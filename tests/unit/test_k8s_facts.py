"""The pure Kubernetes reading of the observe modules (k8s_facts, the kubernetes parts of
log_sources and changes) on objects shaped as the API server returns them (`kubectl get -o json`,
camelCase)."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import rollout_deploys, timeline
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import diagnose
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.resources import assess
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import facts as kf
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.logs.readers import kubernetes_entries, kubernetes_reads
from test_diagnosis import k8s_deploy, k8s_incident, k8s_status

UID = '5b0e6a1c-2d3f-4e5a-9b8c-7d6e5f4a3b2c'
OTHER_UID = '9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f'
NOW = 1795446000.0  # 2026-11-23T15:00:00Z


def container(name='backend', limits=None):
    return {'name': name, 'image': 'shop/backend:2.1', 'resources': {'limits': limits} if limits else {}}


def pod(name, phase='Running', ready=True, statuses=None, conditions=None, limits=None, node='node-1'):
    status = {'phase': phase, 'startTime': '2026-11-23T14:50:00Z',
              'conditions': conditions or [{'type': 'PodScheduled', 'status': 'True'},
                                           {'type': 'Ready', 'status': 'True' if ready else 'False'}]}
    if statuses is not None:
        status['containerStatuses'] = statuses
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name, 'namespace': 'shop', 'labels': {'app': 'backend'}},
            'spec': {'nodeName': node, 'containers': [container(limits=limits or {'cpu': '500m', 'memory': '256Mi'})]},
            'status': status}


def running(restarts=0, ready=True, last=None):
    status = {'name': 'backend', 'image': 'shop/backend:2.1', 'ready': ready, 'restartCount': restarts,
              'state': {'running': {'startedAt': '2026-11-23T14:55:00Z'}}, 'lastState': {}}
    if last:
        status['lastState'] = {'terminated': {'reason': last, 'exitCode': 137 if last == 'OOMKilled' else 1,
                                              'finishedAt': '2026-11-23T14:54:59Z'}}
    return status


def waiting(reason, message=None, restarts=0, last=None):
    status = running(restarts, False, last)
    status['state'] = {'waiting': {'reason': reason, 'message': message}}
    return status


CRASH_OOM = pod('backend-a', ready=False, statuses=[waiting(
    'CrashLoopBackOff', 'back-off 5m0s restarting failed container=backend', restarts=6, last='OOMKilled')])
PULL = pod('backend-b', phase='Pending', ready=False, statuses=[waiting(
    'ImagePullBackOff', 'Back-off pulling image "shop/backend:2.2"')])
ERR_PULL = pod('backend-c', phase='Pending', ready=False, statuses=[waiting(
    'ErrImagePull', 'rpc error: code = NotFound desc = failed to pull and unpack image "shop/backend:2.2"')])
UNSCHEDULABLE = pod('backend-d', phase='Pending', ready=False, node=None, conditions=[
    {'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable',
     'message': '0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available'}])
CONFIG = pod('backend-e', phase='Pending', ready=False, statuses=[waiting(
    'CreateContainerConfigError', 'secret "db-credentials" not found')])
NOT_READY = pod('backend-f', ready=False, statuses=[running(ready=False)])
HEALTHY = pod('backend-g', statuses=[running()])
SERVICE = {'metadata': {'name': 'backend', 'namespace': 'shop'}, 'spec': {'selector': {'app': 'backend'}}}
QUOTA = ('pods "backend-7d9-x2k4p" is forbidden: exceeded quota: compute-resources, requested: limits.memory=512Mi, '
         'used: limits.memory=1536Mi, limited: limits.memory=2Gi')


def deployment(progress_reason='NewReplicaSetAvailable', revision='7'):
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment',
            'metadata': {'name': 'backend', 'namespace': 'shop', 'uid': UID, 'annotations': {kr.REVISION: revision}},
            'spec': {'replicas': 3, 'selector': {'matchLabels': {'app': 'backend'}},
                     'template': {'metadata': {'labels': {'app': 'backend'}},
                                  'spec': {'containers': [container(limits={'cpu': '1', 'memory': '512Mi'})]}}},
            'status': {'replicas': 3, 'updatedReplicas': 3, 'readyReplicas': 1, 'availableReplicas': 1,
                       'conditions': [{'type': 'Available', 'status': 'False', 'reason': 'MinimumReplicasUnavailable',
                                       'message': 'Deployment does not have minimum availability.'},
                                      {'type': 'Progressing', 'status': 'False' if progress_reason == kr.TIMED_OUT else 'True',
                                       'reason': progress_reason, 'message': 'ReplicaSet "backend-7d9" has timed out progressing.'
                                       if progress_reason == kr.TIMED_OUT else 'ReplicaSet "backend-7d9" has successfully progressed.'}]}}


def replica_set(revision, image, owner_uid=UID, created='2026-11-23T14:00:00Z', cause=None, conditions=None):
    annotations = {kr.REVISION: str(revision)}
    if cause:
        annotations[kr.CHANGE_CAUSE] = cause
    return {'metadata': {'name': 'backend-r%d' % revision, 'uid': 'uid-backend-r%d' % revision, 'creationTimestamp': created,
                         'annotations': annotations, 'labels': {'app': 'backend', 'pod-template-hash': 'r%d' % revision},
                         'ownerReferences': [{'kind': 'Deployment', 'name': 'x', 'uid': owner_uid, 'controller': True}]},
            'spec': {'replicas': 0, 'template': {'spec': {'containers': [{'name': 'backend', 'image': image}]}}},
            'status': {'conditions': conditions or []}}


REFUSED = replica_set(8, 'shop/backend:2.2', conditions=[
    {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA}])


def event(kind, name, reason, message, last='2026-11-23T14:58:00Z', kind_type='Warning', count=3):
    return {'type': kind_type, 'reason': reason, 'message': message, 'count': count, 'lastTimestamp': last,
            'involvedObject': {'kind': kind, 'name': name}, 'metadata': {'creationTimestamp': last}}


def test_pod_facts_of_a_crash_loop_with_an_oom_kill():
    facts = kf.pod_facts(CRASH_OOM)
    assert facts == {'name': 'backend-a', 'phase': 'Running', 'ready': False, 'restarts': 6, 'node': 'node-1',
                     'waiting_reason': 'CrashLoopBackOff', 'waiting_message': 'back-off 5m0s restarting failed container=backend',
                     'last_terminated_reason': 'OOMKilled', 'last_exit_code': 137, 'started_at': '2026-11-23T14:50:00Z'}
    assert kf.pod_facts(HEALTHY)['started_at'] == '2026-11-23T14:55:00Z'
    assert kf.crash_target([HEALTHY, CRASH_OOM]) == ('backend-a', 'backend')
    assert kf.crash_target([HEALTHY, pod('r', statuses=[running(restarts=2, last='Error')])]) == ('r', 'backend')
    assert kf.crash_target([HEALTHY, PULL]) is None


def test_problems_by_kind():
    found = kf.problems(deployment(kr.TIMED_OUT), [REFUSED], [CRASH_OOM, PULL, ERR_PULL, UNSCHEDULABLE, CONFIG, NOT_READY, HEALTHY],
                        kf.endpoints_facts('backend', SERVICE, {'subsets': [{'notReadyAddresses': [{'ip': '10.0.0.1'}, {'ip': '10.0.0.2'}]}]}),
                        [{'object': 'Pod/backend-f', 'reason': 'Unhealthy', 'message': 'Readiness probe failed: HTTP probe failed with statuscode: 503'}])
    by_kind = {p['kind']: p for p in found}
    assert [p['kind'] for p in found] == [kind for kind in kf.PROBLEM_KINDS if kind not in ('NoEndpointsObject', 'LivenessProbe')]
    assert by_kind['CrashLoopBackOff'] == {'kind': 'CrashLoopBackOff', 'pods': ['backend-a'],
                                           'message': 'container backend keeps crashing (6 restarts), last exit OOMKilled code 137'}
    assert by_kind['OOMKilled']['pods'] == ['backend-a'] and '256Mi' in by_kind['OOMKilled']['message']
    assert by_kind['ImagePullBackOff']['pods'] == ['backend-b', 'backend-c']             # ErrImagePull too
    assert 'Back-off pulling image "shop/backend:2.2"' in by_kind['ImagePullBackOff']['message']
    assert by_kind['CreateContainerConfigError']['message'] == 'secret "db-credentials" not found'
    assert by_kind['Unschedulable'] == {'kind': 'Unschedulable', 'pods': ['backend-d'], 'message':
                                        '0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available'}
    assert by_kind['ReplicaFailure'] == {'kind': 'ReplicaFailure', 'pods': [], 'message': QUOTA}
    assert by_kind['ProgressDeadlineExceeded']['message'] == 'ReplicaSet "backend-7d9" has timed out progressing.'
    assert by_kind['NoReadyEndpoints']['pods'] == [] and 'no ready endpoint (2 not ready)' in by_kind['NoReadyEndpoints']['message']
    assert by_kind['NotReady'] == {'kind': 'NotReady', 'pods': ['backend-f'],
                                   'message': 'Readiness probe failed: HTTP probe failed with statuscode: 503'}


def test_unschedulable_from_a_failed_scheduling_event_and_healthy_nothing():
    pending = pod('backend-h', phase='Pending', ready=False, node=None,
                  conditions=[{'type': 'PodScheduled', 'status': 'False'}])
    events = [{'object': 'Pod/backend-h', 'reason': 'FailedScheduling', 'message': '0/3 nodes are available: 3 Insufficient cpu.'}]
    ends = kf.endpoints_facts('backend', SERVICE, {'subsets': [{'addresses': [{'ip': '10.0.0.1'}]}]})
    assert kf.problems(deployment(), [], [pending], ends, events) == [
        {'kind': 'Unschedulable', 'pods': ['backend-h'], 'message': '0/3 nodes are available: 3 Insufficient cpu.'}]
    assert kf.problems(deployment(), [replica_set(7, 'shop/backend:2.1')], [HEALTHY], ends, []) == []
    # No Service at all is not a NoReadyEndpoints problem: endpoints.found says it.
    assert kf.problems(deployment(), [], [HEALTHY], kf.endpoints_facts('backend', None, None), []) == []


def test_warning_events_of_the_deployment_its_replica_sets_and_pods_newest_first():
    events = [event('Pod', 'backend-a', 'BackOff', 'Back-off restarting failed container', '2026-11-23T14:58:00Z'),
              event('ReplicaSet', 'backend-r7', 'FailedCreate', 'quota exceeded', '2026-11-23T14:59:00Z'),
              event('Pod', 'other-x', 'BackOff', 'not ours'),
              event('Pod', 'backend-a', 'Pulled', 'normal event', kind_type='Normal'),
              event('Deployment', 'backend', 'Old', 'too old', '2026-11-23T13:00:00Z')]
    events[1]['lastTimestamp'] = None
    events[1]['series'] = {'count': 9, 'lastObservedTime': '2026-11-23T14:59:00.000000Z'}
    events[1]['count'] = None
    objects = {('Deployment', 'backend'), ('ReplicaSet', 'backend-r7'), ('Pod', 'backend-a')}
    assert kf.warning_events(events, objects, NOW - 3600) == [
        {'type': 'Warning', 'reason': 'FailedCreate', 'object': 'ReplicaSet/backend-r7', 'message': 'quota exceeded',
         'count': 9, 'last_seen': '2026-11-23T14:59:00Z'},
        {'type': 'Warning', 'reason': 'BackOff', 'object': 'Pod/backend-a', 'message': 'Back-off restarting failed container',
         'count': 3, 'last_seen': '2026-11-23T14:58:00Z'}]


def test_endpoints_facts():
    endpoints = {'subsets': [{'addresses': [{'ip': '10.0.0.1'}], 'notReadyAddresses': [{'ip': '10.0.0.2'}, {'ip': '10.0.0.3'}]}]}
    assert kf.endpoints_facts('backend', SERVICE, endpoints) == {
        'found': True, 'endpoints_found': True, 'selector': True, 'service': 'backend', 'ready': 1, 'not_ready': 2}
    assert kf.endpoints_facts('backend', SERVICE, {'metadata': {}}) == {
        'found': True, 'endpoints_found': True, 'selector': True, 'service': 'backend', 'ready': 0, 'not_ready': 0}
    assert kf.endpoints_facts('backend', None, None) == {
        'found': False, 'endpoints_found': False, 'selector': None, 'service': 'backend', 'ready': 0, 'not_ready': 0}


def hpa(name, target, current, desired, low=2, high=6, api_version='apps/v1'):
    return {'metadata': {'name': name},
            'spec': {'scaleTargetRef': {'apiVersion': api_version, 'kind': 'Deployment', 'name': target},
                     'minReplicas': low, 'maxReplicas': high},
            'status': {'currentReplicas': current, 'desiredReplicas': desired, 'conditions': [
                {'type': 'ScalingLimited', 'status': 'True', 'reason': 'TooManyReplicas',
                 'message': 'the desired replica count is more than the maximum replica count',
                 'lastTransitionTime': '2026-11-23T14:00:00Z'}]}}


def test_hpa_of_the_deployment_and_at_max():
    hpas = [hpa('frontend', 'frontend', 2, 2), hpa('backend', 'backend', 5, 6)]
    found = kf.hpa_facts(kf.hpa_of(hpas, 'backend'))
    assert found == {'name': 'backend', 'min_replicas': 2, 'max_replicas': 6, 'current_replicas': 5, 'desired_replicas': 6,
                     'at_max': True, 'conditions': [{'type': 'ScalingLimited', 'status': 'True', 'reason': 'TooManyReplicas',
                                                     'message': 'the desired replica count is more than the maximum replica count'}]}
    assert kf.hpa_facts(kf.hpa_of(hpas, 'worker')) is None
    assert kf.hpa_facts(hpa('b', 'backend', 3, 3))['at_max'] is False
    with pytest.raises(ValueError, match='all target Deployment backend'):
        kf.hpa_of(hpas + [hpa('backend-2', 'backend', 1, 1)], 'backend')


def test_usage_against_limits_and_assess():
    metrics = [{'metadata': {'name': 'backend-g'}, 'containers': [{'name': 'backend', 'usage': {'cpu': '480000000n', 'memory': '250Mi'}}]}]
    records, missing = kf.usage_records([HEALTHY, CRASH_OOM], metrics)
    by_name = {r['name']: r for r in records}
    healthy, crash = by_name['backend-g/backend'], by_name['backend-a/backend']
    assert (healthy['cpu_cores'], healthy['cpu_limit_cores'], healthy['cpu_percent']) == (0.48, 0.5, 96.0)
    assert (healthy['memory_bytes'], healthy['memory_limit_bytes'], healthy['memory_percent']) == (250 << 20, 256 << 20, 97.7)
    assert crash['cpu_percent'] is None and crash['restarting'] and crash['oom_killed_now'] and crash['restart_count'] == 6
    assert missing == ['pod backend-a: no metrics sample yet (metrics-server samples every 15 s or so)']
    verdict = assess(records, {'cpu_percent': 90.0, 'memory_percent': 95.0, 'throttled_percent': 25.0}, '15m')
    assert verdict['max_cpu_percent'] == 96.0 and verdict['max_memory_percent'] == 97.7
    assert verdict['restarts'] == 6 and verdict['saturated'] and verdict['throttled'] is False
    assert 'backend-a/backend: its last exit was an OOM kill' in verdict['reasons']


def test_no_limit_and_metrics_server_absent():
    unlimited = pod('backend-u', statuses=[running()], limits={})
    unlimited['spec']['containers'][0]['resources'] = {}
    metrics = [{'metadata': {'name': 'backend-u'}, 'containers': [{'name': 'backend', 'usage': {'cpu': '250m', 'memory': '64Mi'}}]}]
    records, missing = kf.usage_records([unlimited], metrics)
    assert records[0]['cpu_percent'] is None and records[0]['memory_percent'] is None and records[0]['cpu_cores'] == 0.25
    assert missing == ['cpu percent of backend-u/backend: the container has no CPU limit (it uses 0.250 cores)',
                       'memory percent of backend-u/backend: the container has no memory limit (it uses 64 MiB)']
    records, missing = kf.usage_records([CRASH_OOM], None)            # metrics-server absent: no sample expected
    assert missing == [] and records[0]['cpu_percent'] is None and records[0]['oom_killed_now']
    assert kf.metrics_missing(404, 'x') == 'metrics-server is not installed: CPU and memory unknown; kubectl top would fail too'
    assert kf.metrics_missing(503, 'x').startswith('metrics-server is installed but does not answer')


def test_container_resources():
    assert kf.container_resources(deployment()['spec']['template']['spec']) == {
        'backend': {'limits': {'cpu': '1', 'memory': '512Mi'}, 'requests': {}}}


def test_status_report():
    dep = deployment()
    report = kf.status_report(dep, [replica_set(7, 'shop/backend:2.1')], [CRASH_OOM, HEALTHY], SERVICE,
                              {'subsets': [{'addresses': [{'ip': '10.0.0.1'}], 'notReadyAddresses': [{'ip': '10.0.0.2'}]}]},
                              [event('ReplicaSet', 'backend-r7', 'FailedCreate', 'quota'), event('Pod', 'backend-a', 'BackOff', 'back-off')],
                              None, 'backend', NOW - 3600)
    assert report['deployment'] == {'name': 'backend', 'namespace': 'shop', 'replicas': 3, 'ready_replicas': 1,
                                    'available_replicas': 1, 'updated_replicas': 3, 'paused': False, 'revision': 7,
                                    'images': ['shop/backend:2.1'], 'conditions': kf.conditions(dep)}
    assert [p['name'] for p in report['pods']] == ['backend-a', 'backend-g']
    assert report['oom'] == {'oom_killed': True, 'count': 1} and report['hpa'] is None
    assert [e['object'] for e in report['events']] == ['ReplicaSet/backend-r7', 'Pod/backend-a']
    assert report['summary'] == ('deployment backend in shop: 1/3 replicas ready; problems: CrashLoopBackOff (1 pods), '
                                 'OOMKilled (1 pods); Service backend: 1 ready endpoints, 1 not ready')


def test_rollout_deploys_from_owned_replica_sets_only():
    dep = deployment(revision='3')
    listed = [replica_set(1, 'shop/backend:2.0', created='2026-11-23T10:00:00Z'),
              replica_set(2, 'shop/backend:2.1', created='2026-11-23T12:00:00Z', cause='kubectl set image 2.1'),
              replica_set(3, 'shop/backend:2.2', created='2026-11-23T14:40:00Z'),
              # another Deployment's ReplicaSet with the same app=backend label
              replica_set(9, 'shop/admin:9', owner_uid=OTHER_UID, created='2026-11-23T14:45:00Z')]
    owned = kr.owned_replica_sets(dep, listed)
    changes = timeline(rollout_deploys(kr.history(dep, owned)), NOW - 3 * 3600, NOW - 600)
    assert [(c['revision'], c['image'], c['previous_image']) for c in changes] == [
        (3, 'shop/backend:2.2', 'shop/backend:2.1'), (2, 'shop/backend:2.1', 'shop/backend:2.0')]
    assert changes[0]['summary'] == 'revision 3: image shop/backend:2.1 -> shop/backend:2.2'
    assert changes[1]['summary'] == 'revision 2: image shop/backend:2.0 -> shop/backend:2.1 (kubectl set image 2.1)'
    assert changes[0]['time_iso'] == '2026-11-23T14:40:00Z' and changes[0]['seconds_before_onset'] == 600.0
    assert changes[0]['kind'] == 'deploy' and changes[0]['change_cause'] is None
    assert kr.revision(kr.undo_target(dep, owned)) == 2


def test_kubernetes_log_entries_and_reads():
    text = '2026-11-23T14:58:01.123456789Z {"level":"ERROR","message":"db timeout"}\n' \
           '2026-11-23T14:58:02.5Z plain line\nno time here\n'
    entries = kubernetes_entries(text, 'backend-a/backend')
    assert abs(entries[0][0] - 1795445881.123457) < 1e-3
    assert entries[0][1:] == ('{"level":"ERROR","message":"db timeout"}', 'backend-a/backend', None)
    assert entries[1][1:] == ('plain line', 'backend-a/backend', None) and entries[2][:2] == (None, 'no time here')
    assert kubernetes_reads([CRASH_OOM, HEALTHY]) == [('backend-a', 'backend', False), ('backend-a', 'backend', True),
                                                      ('backend-g', 'backend', False)]
    # A container that never ran (its image not pulled) has no log to read: not a gap in the evidence.
    assert kubernetes_reads([PULL, HEALTHY]) == [('backend-g', 'backend', False)]
    assert kf.never_started(PULL) == ['backend'] and kf.never_started(CRASH_OOM) == []


def test_a_service_without_endpoints_object_is_not_no_service():
    no_service = kf.endpoints_facts('backend', None, None)
    selectorless = kf.endpoints_facts('backend', {'metadata': {'name': 'backend'}, 'spec': {'ports': [{'port': 80}]}}, None)
    not_made = kf.endpoints_facts('backend', SERVICE, None)
    assert (selectorless['found'], selectorless['endpoints_found'], selectorless['selector']) == (True, False, False)
    assert (not_made['found'], not_made['endpoints_found'], not_made['selector']) == (True, False, True)
    dep = deployment()
    assert kf.problems(dep, [], [HEALTHY], no_service, []) == []
    assert kf.problems(dep, [], [HEALTHY], selectorless, []) == [{
        'kind': 'NoEndpointsObject', 'pods': [],
        'message': 'Service backend has no Endpoints object: it has no selector, so no controller makes one (the '
                   'Endpoints of such a Service are created by hand); no traffic reaches any pod through it'}]
    assert kf.problems(dep, [], [HEALTHY], not_made, []) == [{
        'kind': 'NoEndpointsObject', 'pods': [],
        'message': 'Service backend has no Endpoints object: the endpoints controller has not made one (yet); '
                   'no traffic reaches any pod through it'}]
    facts = kf.deployment_facts(dep)
    assert kf.summary(facts, [], no_service, None).endswith('; no problem seen; no Service backend')
    line = kf.summary(facts, kf.problems(dep, [], [HEALTHY], selectorless, []), selectorless, None)
    assert line.endswith('; Service backend has no Endpoints object (no selector)')
    assert line.startswith('deployment backend in shop: 1/3 replicas ready; problems: NoEndpointsObject (Service backend has')
    assert kf.summary(facts, [], not_made, None).endswith(
        '; Service backend has no Endpoints object (not made by the endpoints controller)')


def test_replica_failure_comes_before_the_progress_deadline_it_causes():
    dep = deployment(kr.TIMED_OUT)
    dep['status']['conditions'].append({'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': QUOTA})
    ends = kf.endpoints_facts('backend', SERVICE, {'subsets': [{'addresses': [{'ip': '10.0.0.1'}]}]})
    # The Deployment's condition repeats its ReplicaSet's: one message.
    found = kf.problems(dep, [REFUSED, replica_set(7, 'shop/backend:2.1')], [HEALTHY], ends, [])
    assert found == [{'kind': 'ReplicaFailure', 'pods': [], 'message': QUOTA},
                     {'kind': 'ProgressDeadlineExceeded', 'pods': [],
                      'message': 'ReplicaSet "backend-7d9" has timed out progressing.'}]
    line = kf.summary(kf.deployment_facts(dep), found, kf.endpoints_facts('backend', SERVICE, {}), None)
    assert line == ('deployment backend in shop: 1/3 replicas ready; problems: ReplicaFailure (%s), ProgressDeadlineExceeded '
                    '(ReplicaSet "backend-7d9" has timed out progressing.); Service backend: 0 ready endpoints, 0 not ready'
                    % QUOTA)
    # From a ReplicaSet alone, from the Deployment alone; a condition False or another one is none.
    assert kf.replica_failures(deployment(), [REFUSED]) == [QUOTA]
    assert kf.replica_failures(dep, []) == [QUOTA]
    cleared = replica_set(9, 'shop/backend:2.2', conditions=[{'type': 'ReplicaFailure', 'status': 'False'}])
    assert kf.replica_failures(deployment(), [cleared, replica_set(7, 'shop/backend:2.1')]) == []
    webhook = replica_set(10, 'shop/backend:2.3', conditions=[{'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate'}])
    assert kf.replica_failures(deployment(), [webhook]) == ['backend-r10 cannot create pods (FailedCreate)']


def test_a_replica_failure_is_named_in_the_diagnosis():
    status = k8s_status([('ReplicaFailure', QUOTA), ('ProgressDeadlineExceeded', 'ReplicaSet "backend-7d9" has timed out progressing.')])
    stalled = diagnose(k8s_incident(status, t__changes=[k8s_deploy(60)]))
    evidence = stalled['recommended']['evidence']
    assert 'ReplicaFailure in 0 pods: %s' % QUOTA[:160] in evidence
    assert 'the rollout of the new version stalled as its pods are refused (ReplicaFailure): it is at fault' in evidence
    assert stalled['action']['name'] == 'rollback'
    alone = diagnose(k8s_incident(k8s_status([('ReplicaFailure', QUOTA)])))
    assert 'ReplicaFailure in 0 pods: %s' % QUOTA[:160] in alone['recommended']['evidence']


def test_a_crash_loop_caught_between_two_back_offs_is_still_a_crash_loop():
    """The container runs for a moment after each back-off before it crashes again: running, not
    ready, restarted after an error exit. Restarted after a clean exit, it is only not ready."""
    between = pod('backend-g', ready=False, statuses=[running(restarts=4, ready=False, last='Error')])
    clean = running(restarts=1, ready=False, last='Completed')
    clean['lastState']['terminated']['exitCode'] = 0
    once = pod('backend-h', ready=False, statuses=[clean])
    found = {p['kind']: p for p in kf.problems(deployment(), [], [between, once], kf.endpoints_facts('backend', SERVICE, {}), [])}
    assert found['CrashLoopBackOff'] == {
        'kind': 'CrashLoopBackOff', 'pods': ['backend-g'],
        'message': 'container backend keeps crashing (4 restarts), last exit Error code 1; started again, not ready'}
    assert found['NotReady']['pods'] == ['backend-h']


def test_a_container_killed_by_its_liveness_probe_says_so_and_what_the_probe_saw():
    """The kubelet's events tell a liveness kill from a crash: Unhealthy "Liveness probe failed",
    the container restarted (exit 137 or 143, reason Error). A readiness failure is only NotReady."""
    hung = pod('backend-i', ready=False, statuses=[waiting('CrashLoopBackOff', 'back-off 20s', restarts=3, last='Error')])
    unready = pod('backend-j', ready=False, statuses=[running(ready=False)])
    events = [{'object': 'Pod/backend-i', 'reason': 'Unhealthy',
               'message': 'Liveness probe failed: Get "http://10.244.0.7:8000/health": context deadline exceeded'},
              {'object': 'Pod/backend-j', 'reason': 'Unhealthy', 'message': 'Readiness probe failed: HTTP probe failed with statuscode: 503'},
              {'object': 'Pod/backend-j', 'reason': 'Unhealthy', 'message': 'Liveness probe failed: HTTP probe failed with statuscode: 503'}]
    found = {p['kind']: p for p in kf.problems(deployment(), [], [hung, unready], kf.endpoints_facts('backend', SERVICE, {}), events)}
    assert found['LivenessProbe'] == {
        'kind': 'LivenessProbe', 'pods': ['backend-i'],
        'message': 'container backend restarted 3 times, killed by its liveness probe: '
                   'Liveness probe failed: Get "http://10.244.0.7:8000/health": context deadline exceeded'}
    # Not restarted yet: its liveness failures are no kill; its readiness failure is why it is not ready.
    assert found['NotReady'] == {'kind': 'NotReady', 'pods': ['backend-j'],
                                 'message': 'Readiness probe failed: HTTP probe failed with statuscode: 503'}
    assert list(found)[:2] == ['CrashLoopBackOff', 'LivenessProbe']

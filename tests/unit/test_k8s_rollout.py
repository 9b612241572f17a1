"""Every rollout decision of k8s_rollout, on objects shaped as the API server returns them
(`kubectl get -o json`, camelCase), checked against kubectl's rules (pkg/polymorphichelpers)."""

import copy
from datetime import datetime, timezone
from functools import partial

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr

UID = '6f1c2a8e-0b5d-4a43-9d57-2f1b7e0c9a11'
OTHER_UID = 'a3d9e4b2-77c1-4f0e-8a6b-91c0d2e4f5a6'
LAST_APPLIED = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}'


def pod_template(image, env='1', extra_labels=None, annotations=None):
    labels = {'app': 'web'}
    labels.update(extra_labels or {})
    metadata = {'creationTimestamp': None, 'labels': labels}
    if annotations:
        metadata['annotations'] = annotations
    return {
        'metadata': metadata,
        'spec': {
            'containers': [{'name': 'web', 'image': image, 'env': [{'name': 'RELEASE', 'value': env}],
                            'imagePullPolicy': 'IfNotPresent', 'resources': {},
                            'terminationMessagePath': '/dev/termination-log', 'terminationMessagePolicy': 'File'}],
            'dnsPolicy': 'ClusterFirst', 'restartPolicy': 'Always', 'schedulerName': 'default-scheduler',
            'securityContext': {}, 'terminationGracePeriodSeconds': 30,
        },
    }


def deployment(revision=7, image='web:7', env='7', annotations=None, paused=False, replicas=3, generation=9,
               status=None, template_annotations=None):
    meta_annotations = {'deployment.kubernetes.io/revision': str(revision)}
    meta_annotations.update(annotations or {})
    spec = {
        'progressDeadlineSeconds': 600, 'replicas': replicas, 'revisionHistoryLimit': 10,
        'selector': {'matchLabels': {'app': 'web'}},
        'strategy': {'rollingUpdate': {'maxSurge': '25%', 'maxUnavailable': '25%'}, 'type': 'RollingUpdate'},
        'template': pod_template(image, env, annotations=template_annotations),
    }
    if paused:
        spec['paused'] = True
    return {
        'apiVersion': 'apps/v1', 'kind': 'Deployment',
        'metadata': {'annotations': meta_annotations, 'creationTimestamp': '2026-11-20T08:00:00Z',
                     'generation': generation, 'labels': {'app': 'web'}, 'name': 'web', 'namespace': 'shop',
                     'resourceVersion': '48211', 'uid': UID},
        'spec': spec,
        'status': status if status is not None else done_status(replicas, generation),
    }


def done_status(replicas=3, generation=9):
    return {
        'availableReplicas': replicas, 'observedGeneration': generation, 'readyReplicas': replicas,
        'replicas': replicas, 'updatedReplicas': replicas,
        'conditions': [
            {'lastTransitionTime': '2026-11-20T08:00:10Z', 'lastUpdateTime': '2026-11-20T08:00:10Z',
             'message': 'Deployment has minimum availability.', 'reason': 'MinimumReplicasAvailable',
             'status': 'True', 'type': 'Available'},
            {'lastTransitionTime': '2026-11-20T08:00:00Z', 'lastUpdateTime': '2026-11-23T14:02:11Z',
             'message': 'ReplicaSet "web-7c9d8f6b5d" has successfully progressed.',
             'reason': 'NewReplicaSetAvailable', 'status': 'True', 'type': 'Progressing'},
        ],
    }


def replica_set(revision, image, env=None, owner_uid=UID, owner='web', replicas=0, annotations=None,
                name=None, hash_value=None):
    hash_value = hash_value or 'h%05d' % revision
    rs_annotations = {'deployment.kubernetes.io/desired-replicas': '3', 'deployment.kubernetes.io/max-replicas': '4',
                      'deployment.kubernetes.io/revision': str(revision)}
    rs_annotations.update(annotations or {})
    return {
        'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
        'metadata': {
            'annotations': rs_annotations, 'creationTimestamp': '2026-11-%02dT10:00:00Z' % (revision + 1),
            'generation': 1, 'labels': {'app': 'web', 'pod-template-hash': hash_value},
            'name': name or '%s-%s' % (owner, hash_value), 'namespace': 'shop',
            'ownerReferences': [{'apiVersion': 'apps/v1', 'blockOwnerDeletion': True, 'controller': True,
                                 'kind': 'Deployment', 'name': owner, 'uid': owner_uid}],
            'resourceVersion': str(1000 + revision), 'uid': 'rs-%s-%d' % (owner, revision),
        },
        'spec': {
            'replicas': replicas,
            'selector': {'matchLabels': {'app': 'web', 'pod-template-hash': hash_value}},
            'template': pod_template(image, env or str(revision), extra_labels={'pod-template-hash': hash_value}),
        },
        'status': {'availableReplicas': replicas, 'fullyLabeledReplicas': replicas, 'observedGeneration': 1,
                   'readyReplicas': replicas, 'replicas': replicas} if replicas else {'observedGeneration': 1, 'replicas': 0},
    }


@pytest.fixture
def gapped():
    """Revisions 1, 4 and 7 (2, 3, 5, 6 were restored by undos, which renumbered them), 7 current."""
    return [replica_set(1, 'web:1'), replica_set(7, 'web:7', replicas=3), replica_set(4, 'web:4')]


# --------------------------------------------------------------------------- ownership and history

def test_owned_replica_sets_by_controller_uid_not_labels(gapped):
    other = replica_set(9, 'admin:9', owner_uid=OTHER_UID, owner='web-admin')   # same app=web labels
    not_controller = replica_set(8, 'web:8')
    not_controller['metadata']['ownerReferences'][0]['controller'] = False
    orphan = replica_set(6, 'web:6')
    del orphan['metadata']['ownerReferences']
    owned = kr.owned_replica_sets(deployment(), gapped + [other, not_controller, orphan])
    assert sorted(kr.revision(rs) for rs in owned) == [1, 4, 7]


def test_revision_parsing():
    assert kr.revision(replica_set(4, 'web:4')) == 4
    rs = replica_set(4, 'web:4')
    del rs['metadata']['annotations']['deployment.kubernetes.io/revision']
    assert kr.revision(rs) == 0            # kubectl: absent is revision 0
    rs['metadata']['annotations']['deployment.kubernetes.io/revision'] = 'x'
    assert kr.revision(rs) is None         # kubectl: skipped


def test_history_with_gaps(gapped):
    gapped[1]['metadata']['annotations']['kubernetes.io/change-cause'] = 'deploy web:7'
    entries = kr.history(deployment(), gapped)
    assert [e['revision'] for e in entries] == [1, 4, 7]
    last = entries[-1]
    assert last == {'revision': 7, 'replica_set': 'web-h00007', 'images': ['web:7'], 'settings': ['env RELEASE'], 'change_cause': 'deploy web:7',
                    'created': '2026-11-08T10:00:00Z', 'replicas': 3, 'ready_replicas': 3, 'available_replicas': 3,
                    'current': True}
    assert entries[0]['change_cause'] is None and not entries[0]['current'] and entries[0]['replicas'] == 0


def test_history_names_the_settings_a_revision_changed_and_not_a_restart():
    """A revision with the same image is a change of settings (env, resources, the pod spec), or a
    restart when only its restartedAt annotation changed: the diagnosis counts the first only."""
    base = replica_set(1, 'web:1', env='a')
    env = replica_set(2, 'web:1', env='b')
    restart = replica_set(3, 'web:1', env='b')
    restart['spec']['template']['metadata'].setdefault('annotations', {})[kr.RESTARTED_AT] = '2026-11-09T10:00:00Z'
    limits = replica_set(4, 'web:1', env='b')
    limits['spec']['template']['spec']['containers'][0]['resources'] = {'limits': {'memory': '64Mi'}}
    limits['spec']['template']['spec']['volumes'] = [{'name': 'cache', 'emptyDir': {}}]
    entries = kr.history(deployment(), [base, env, restart, limits])
    assert [e['settings'] for e in entries] == [[], ['env RELEASE'], [], ['resources of web', 'pod spec']]


def test_history_skips_unreadable_revisions(gapped):
    gapped[0]['metadata']['annotations']['deployment.kubernetes.io/revision'] = 'one'
    assert [e['revision'] for e in kr.history(deployment(), gapped)] == [4, 7]


# --------------------------------------------------------------------------- undo target

def test_previous_is_second_highest_revision_despite_gaps(gapped):
    assert kr.revision(kr.undo_target(deployment(), gapped)) == 4
    assert kr.revision(kr.undo_target(deployment(), gapped, 0)) == 4


def test_explicit_revision(gapped):
    assert kr.revision(kr.undo_target(deployment(), gapped, 1)) == 1


def test_explicit_revision_must_exist(gapped):
    with pytest.raises(ValueError, match=r'unable to find revision 5 .*\(revisions: 1, 4, 7\)'):
        kr.undo_target(deployment(), gapped, 5)
    with pytest.raises(ValueError, match='positive'):
        kr.undo_target(deployment(), gapped, -1)


def test_previous_pruned_refuses_rather_than_take_another_deployments_replica_set():
    """k8s_rollback picked 'revision - 1' among label-matched ReplicaSets: here web-admin's."""
    current = replica_set(7, 'web:7', replicas=3)
    other = replica_set(6, 'admin:6', owner_uid=OTHER_UID, owner='web-admin', replicas=2)
    owned = kr.owned_replica_sets(deployment(), [current, other])
    with pytest.raises(ValueError, match=r'no previous revision of deployment web .*\(revisions: 7\)'):
        kr.undo_target(deployment(), owned)
    with pytest.raises(ValueError, match='unable to find revision 6'):
        kr.undo_target(deployment(), owned, 6)


def test_previous_with_another_deployments_higher_revision_in_the_list(gapped):
    other = replica_set(12, 'admin:12', owner_uid=OTHER_UID, owner='web-admin')
    owned = kr.owned_replica_sets(deployment(), gapped + [other])
    assert kr.undo_target(deployment(), owned)['spec']['template']['spec']['containers'][0]['image'] == 'web:4'


def test_paused_refused():
    with pytest.raises(ValueError, match="cannot roll back paused deployment web in namespace shop; resume it first "
                                         "with 'kubectl rollout resume deployment/web -n shop'"):
        kr.refuse_paused(deployment(paused=True), 'roll back')
    kr.refuse_paused(deployment(), 'roll back')


# --------------------------------------------------------------------------- template comparison

def test_templates_match_ignoring_pod_template_hash():
    assert kr.templates_match(replica_set(7, 'web:7'), deployment())
    assert not kr.templates_match(replica_set(4, 'web:4'), deployment())


def test_templates_differ_on_env_only():
    assert not kr.templates_match(replica_set(7, 'web:7', env='6'), deployment(env='7'))


def test_templates_semantic_equality_null_and_empty():
    """apimachinery's Semantic.DeepEqual: null, empty maps and empty lists are equal."""
    rs = replica_set(7, 'web:7')
    dep = deployment()
    del rs['spec']['template']['metadata']['creationTimestamp']
    dep['spec']['template']['spec']['containers'][0]['resources'] = {}
    rs['spec']['template']['spec']['containers'][0].pop('resources')
    dep['spec']['template']['spec']['volumes'] = []
    assert kr.templates_match(rs, dep)


def test_restart_annotation_makes_templates_differ():
    dep = deployment(template_annotations={kr.RESTARTED_AT: '2026-11-23T14:00:00Z'})
    assert not kr.templates_match(replica_set(7, 'web:7'), dep)


# --------------------------------------------------------------------------- undo patch

def test_undo_patch_as_kubectl_sends_it():
    dep = deployment(annotations={'kubectl.kubernetes.io/last-applied-configuration': LAST_APPLIED,
                                  'kubernetes.io/change-cause': 'deploy web:7', 'team': 'checkout',
                                  'deployment.kubernetes.io/revision-history': '2,5'})
    rs = replica_set(4, 'web:4', annotations={'kubernetes.io/change-cause': 'deploy web:4', 'owner': 'payments',
                                              'kubectl.kubernetes.io/last-applied-configuration': '{"old": 1}',
                                              'deprecated.deployment.rollback.to': '3'})
    patch = kr.undo_patch(dep, rs)
    assert [(op['op'], op['path']) for op in patch] == [('replace', '/spec/template'), ('replace', '/metadata/annotations')]
    restored = patch[0]['value']
    assert restored['metadata']['labels'] == {'app': 'web'}                  # pod-template-hash stripped
    assert restored['spec']['containers'][0]['image'] == 'web:4'
    assert 'pod-template-hash' in rs['spec']['template']['metadata']['labels']   # input untouched
    assert patch[1]['value'] == {
        # the Deployment's own bookkeeping values
        'deployment.kubernetes.io/revision': '7',
        'deployment.kubernetes.io/revision-history': '2,5',
        'kubectl.kubernetes.io/last-applied-configuration': LAST_APPLIED,
        # everything else from the ReplicaSet; 'team' was not on it, so kubectl drops it too
        'kubernetes.io/change-cause': 'deploy web:4',
        'owner': 'payments',
    }


def test_undo_annotations_never_take_the_replica_sets_bookkeeping():
    dep = deployment()
    rs = replica_set(4, 'web:4')
    assert kr.undo_annotations(dep, rs) == {'deployment.kubernetes.io/revision': '7'}


# --------------------------------------------------------------------------- restart

def test_restart_patch():
    now = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=timezone.utc)
    assert kr.restart_patch(now) == {'spec': {'template': {'metadata': {'annotations': {
        'kubectl.kubernetes.io/restartedAt': '2026-11-23T15:04:05Z'}}}}}


def test_restart_needed():
    threshold = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc).timestamp()
    assert kr.restart_needed(deployment(), None)
    assert kr.restart_needed(deployment(), threshold)
    later = deployment(template_annotations={kr.RESTARTED_AT: '2026-11-23T15:30:00+01:00'})   # 14:30Z
    assert not kr.restart_needed(later, threshold)
    earlier = deployment(template_annotations={kr.RESTARTED_AT: '2026-11-23T13:59:59Z'})
    assert kr.restart_needed(earlier, threshold)
    assert kr.restart_needed(deployment(template_annotations={kr.RESTARTED_AT: 'yesterday'}), threshold)


def test_paused_restart_refused():
    with pytest.raises(ValueError, match='cannot restart paused deployment web'):
        kr.refuse_paused(deployment(paused=True), 'restart')


# --------------------------------------------------------------------------- status verdict

def status(**fields):
    base = done_status()
    base.update(fields)
    return base


def test_status_done():
    assert kr.rollout_status(deployment()) == (True, False, 'deployment "web" successfully rolled out')


def test_status_spec_update_not_observed():
    dep = deployment(status=status(observedGeneration=8))
    assert kr.rollout_status(dep) == (False, False, 'Waiting for deployment spec update to be observed...')


def test_status_not_observed_comes_before_the_deadline():
    dep = stuck()
    dep['status']['observedGeneration'] = 8
    assert kr.rollout_status(dep)[:2] == (False, False)


def test_status_updated_replicas():
    dep = deployment(status=status(updatedReplicas=1, replicas=4, availableReplicas=3))
    assert kr.rollout_status(dep) == (
        False, False, 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...')


def test_status_old_replicas_pending_termination():
    dep = deployment(status=status(replicas=4))
    assert kr.rollout_status(dep) == (
        False, False, 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...')


def test_status_available():
    dep = deployment(status=status(availableReplicas=2))
    assert kr.rollout_status(dep) == (
        False, False, 'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...')


def test_status_zero_fields_are_absent_in_the_json():
    """The API omits zero counts: a Deployment scaled to 0 is done, one with no pods yet is not."""
    dep = deployment(replicas=0, status={'observedGeneration': 9})
    assert kr.rollout_status(dep)[0]
    dep = deployment(status={'observedGeneration': 9, 'replicas': 1, 'unavailableReplicas': 1})
    assert 'Waiting for deployment "web" rollout to finish: 0 out of 3' in kr.rollout_status(dep)[2]


def stuck():
    dep = deployment(image='web:8', status={
        'availableReplicas': 3, 'observedGeneration': 9, 'readyReplicas': 3, 'replicas': 4,
        'unavailableReplicas': 1, 'updatedReplicas': 1,
        'conditions': [
            {'lastTransitionTime': '2026-11-20T08:00:10Z', 'lastUpdateTime': '2026-11-20T08:00:10Z',
             'message': 'Deployment has minimum availability.', 'reason': 'MinimumReplicasAvailable',
             'status': 'True', 'type': 'Available'},
            {'lastTransitionTime': '2026-11-23T14:12:40Z', 'lastUpdateTime': '2026-11-23T14:12:40Z',
             'message': 'ReplicaSet "web-6b7f9c4d8" has timed out progressing.',
             'reason': 'ProgressDeadlineExceeded', 'status': 'False', 'type': 'Progressing'},
        ]})
    return dep


DEADLINE = ('deployment "web" exceeded its progress deadline of 600 s (progressDeadlineSeconds): '
            'ReplicaSet "web-6b7f9c4d8" has timed out progressing.')


def test_status_progress_deadline_exceeded_fails_naming_the_deadline():
    assert kr.rollout_status(stuck()) == (False, True, DEADLINE)


def undone(before, observed=True):
    """`before` after an undo: a new generation, observed or not, the timed-out condition kept as
    the controller keeps it when the restored ReplicaSet makes no progress."""
    after = copy.deepcopy(before)
    after['metadata']['generation'] = 10
    after['status'].update(observedGeneration=10 if observed else 9, updatedReplicas=0)
    return after


def test_a_deadline_left_from_before_the_change_fails_once_the_change_is_observed():
    """kubectl's rule: after an undo onto a ReplicaSet that cannot progress the controller never
    refreshes the condition, so once it observed the undo the deadline is the rollout's."""
    before = stuck()
    assert kr.rollout_status(undone(before, observed=False), before) == (
        False, False, 'Waiting for deployment spec update to be observed...')
    assert kr.rollout_status(undone(before), before) == (False, True, DEADLINE)


def test_a_deadline_left_from_before_is_not_the_change_s_while_no_generation_was_observed_since():
    """An HPA's new floor bumps no generation of the Deployment until the HPA scales it."""
    before = stuck()
    same = copy.deepcopy(before)
    same['status'].update(updatedReplicas=0)
    done, failed, message = kr.rollout_status(same, before)
    assert (done, failed) == (False, False) and '0 out of 3 new replicas' in message
    renewed = copy.deepcopy(same)
    renewed['status']['conditions'][1]['lastUpdateTime'] = '2026-11-23T14:30:00Z'   # timed out again
    assert kr.rollout_status(renewed, before) == (False, True, DEADLINE)
    assert kr.rollout_status(same) == (False, True, DEADLINE)    # without `before`, as kubectl


def test_status_facts():
    facts = kr.status_facts(deployment(status=status(replicas=4)))
    assert facts == {'done': False, 'failed': False,
                     'message': 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
                     'replicas': 3, 'current_replicas': 4, 'updated_replicas': 3, 'ready_replicas': 3,
                     'available_replicas': 3, 'generation': 9, 'observed_generation': 9, 'replica_failure': None}


# --------------------------------------------------------------------------- pods that cannot be created

QUOTA = ('pods "web-h00008-x7k2p" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=3, '
         'limited: pods=3')
PSA = ('pods "web-h00008-x7k2p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
       '(container "web" must set securityContext.allowPrivilegeEscalation=false)')


def failing(obj, message=QUOTA, reason='FailedCreate', state='True'):
    """obj with the ReplicaFailure condition the ReplicaSet controller sets (and the Deployment copies)."""
    obj = copy.deepcopy(obj)
    obj['status'].setdefault('conditions', []).append({
        'type': 'ReplicaFailure', 'status': state, 'reason': reason, 'message': message,
        'lastTransitionTime': '2026-11-23T14:20:00Z', **({'lastUpdateTime': '2026-11-23T14:20:00Z'}
                                                         if obj['kind'] == 'Deployment' else {})})
    return obj


def restarting(replicas=3, updated=0, terminating=0, **fields):
    """web rolling out web:8 (a restart or an undo), its new ReplicaSet refused pods by a quota."""
    counts = dict(observedGeneration=9, replicas=replicas, updatedReplicas=updated, readyReplicas=replicas,
                  availableReplicas=replicas, terminatingReplicas=terminating)
    counts.update(fields)
    counts = {k: v for k, v in counts.items() if v is not None}
    counts['conditions'] = [{'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetCreated',
                             'message': 'Created new replica set "web-h00008"', 'lastUpdateTime': '2026-11-23T14:19:59Z'}]
    return failing(deployment(image='web:8', env='8', replicas=replicas, status=counts))


def new_rs(message=QUOTA, reason='FailedCreate'):
    return failing(replica_set(8, 'web:8', replicas=1), message, reason)


def test_replica_failure_holds_only_while_true():
    assert kr.replica_failure(new_rs())['message'] == QUOTA
    assert kr.replica_failure(failing(replica_set(8, 'web:8'), state='False')) is None
    assert kr.replica_failure(deployment()) is None


def test_new_replica_set_is_the_one_of_the_template():
    owned = [replica_set(7, 'web:7', replicas=3), replica_set(8, 'web:8'), replica_set(4, 'web:4')]
    assert kr.new_replica_set(deployment(image='web:8', env='8'), owned)['metadata']['name'] == 'web-h00008'
    twin = replica_set(9, 'web:8', env='8', name='web-h00008b')   # the same template made later
    assert kr.new_replica_set(deployment(image='web:8', env='8'), [twin] + owned)['metadata']['name'] == 'web-h00008'
    assert kr.new_replica_set(deployment(image='web:9'), owned) is None


@pytest.mark.parametrize('replicas, surge, unavailable, expected', [
    (3, '25%', '25%', 0), (4, '25%', '25%', 1), (10, '25%', '25%', 2), (3, 1, 0, 0), (3, 0, 0, 1), (3, '0%', '0%', 1),
    (5, '50%', 2, 2)])
def test_max_unavailable_as_the_controller_resolves_it(replicas, surge, unavailable, expected):
    dep = deployment(replicas=replicas)
    dep['spec']['strategy']['rollingUpdate'] = {'maxSurge': surge, 'maxUnavailable': unavailable}
    assert kr.max_unavailable(dep) == expected


def test_may_free_quota():
    # A rolling update of 3 replicas (maxUnavailable 25% is 0) whose first new pod is refused: stuck.
    assert not kr.may_free_quota(restarting())
    # Pods still terminating, or the server does not say (before Kubernetes 1.35): they may free it.
    assert kr.may_free_quota(restarting(terminating=1))
    assert kr.may_free_quota(restarting(terminating=None))
    # Old pods may go before new ones are available (4 replicas: maxUnavailable 1), or as new ones come up.
    assert kr.may_free_quota(restarting(replicas=4))
    assert kr.may_free_quota(restarting(updated=1))
    # No old pod left: a scale-up, a new Deployment, whatever the server reports on terminating pods.
    assert not kr.may_free_quota(failing(deployment(replicas=6)))
    assert not kr.may_free_quota(restarting(replicas=1, updated=1, terminating=None))
    assert kr.may_free_quota(failing(deployment(replicas=6, status=status(terminatingReplicas=2))))


def test_blocking_failure_is_the_new_replica_set_s():
    assert kr.blocking_failure(restarting(), new_rs())['message'] == QUOTA
    assert kr.blocking_failure(restarting(replicas=4), new_rs()) is None               # the quota may free up
    assert kr.blocking_failure(restarting(replicas=4), new_rs(PSA))['message'] == PSA  # nothing frees that
    assert kr.blocking_failure(restarting(), None) is None                              # the Deployment's may be an old one's
    unseen = new_rs()
    unseen['metadata']['generation'], unseen['status']['observedGeneration'] = 3, 2
    assert kr.blocking_failure(restarting(), unseen) is None                            # scaled since: may be gone next try
    assert kr.blocking_failure(restarting(), replica_set(8, 'web:8')) is None
    assert kr.blocking_failure(restarting(), new_rs(reason='FailedDelete', message='pods "x" not found')) is None


def test_pods_that_cannot_be_created_fail_at_once_with_the_cause():
    assert kr.rollout_status(restarting(), None, new_rs()) == (False, True, (
        'cannot create pods: %s; deployment "web" cannot roll out until that is fixed (condition ReplicaFailure '
        'FailedCreate of ReplicaSet web-h00008; kubectl describe replicaset web-h00008 -n shop)' % QUOTA))
    facts = kr.status_facts(restarting(), None, new_rs())
    assert facts['failed'] and facts['replica_failure'] == QUOTA


def test_a_quota_the_rollout_may_free_waits_and_leads_every_message():
    assert kr.rollout_status(restarting(replicas=4), None, new_rs()) == (False, False, (
        'cannot create pods: %s; Waiting for deployment "web" rollout to finish: 0 out of 4 new replicas have been '
        'updated...' % QUOTA))
    timed_out = restarting(replicas=4)
    timed_out['status']['conditions'] = stuck()['status']['conditions']
    assert kr.rollout_status(timed_out, None, new_rs()) == (False, True, 'cannot create pods: %s; %s' % (QUOTA, DEADLINE))


def test_the_deployment_s_condition_alone_leads_the_messages_but_does_not_fail():
    """Without the ReplicaSet read, the Deployment's condition may be an older ReplicaSet's."""
    done, failed, message = kr.rollout_status(restarting())
    assert (done, failed) == (False, False) and message.startswith('cannot create pods: %s; Waiting for' % QUOTA)
    # Read, the newest ReplicaSet has none: the Deployment's is an older one's, left unsaid.
    done, failed, message = kr.rollout_status(restarting(), None, replica_set(8, 'web:8'))
    assert (done, failed) == (False, False) and message.startswith('Waiting for deployment "web"')
    assert kr.rollout_status(restarting(), None, new_rs(reason='FailedDelete', message='pods "x" not found'))[2] \
        .startswith('cannot delete pods: pods "x" not found; Waiting for')


# --------------------------------------------------------------------------- small helpers

def test_summary():
    dep = deployment(template_annotations={kr.RESTARTED_AT: '2026-11-23T14:00:00Z'})
    assert kr.summary(dep) == {'revision': 7, 'images': ['web:7'],
                               'template_annotations': {kr.RESTARTED_AT: '2026-11-23T14:00:00Z'}}


def test_label_selector():
    assert kr.label_selector({'matchLabels': {'app': 'web', 'tier': 'front'}}) == 'app=web,tier=front'
    assert kr.label_selector({
        'matchLabels': {'app': 'web'},
        'matchExpressions': [{'key': 'track', 'operator': 'In', 'values': ['stable', 'canary']},
                             {'key': 'env', 'operator': 'NotIn', 'values': ['dev']},
                             {'key': 'owner', 'operator': 'Exists'},
                             {'key': 'legacy', 'operator': 'DoesNotExist'}]}) == \
        'app=web,track in (canary,stable),env notin (dev),owner,!legacy'


# --------------------------------------------------------------------------- the wait loop

class Clock:
    """A fake monotonic clock that sleep() moves on; it records the sleeps."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def reads(*deployments):
    """A read() answering these Deployments in turn, the last one again and again."""
    answers = list(deployments)
    return lambda: answers.pop(0) if len(answers) > 1 else answers[0]


def wait(read, timeout=300, **kwargs):
    clock = Clock()
    return clock, kr.wait_rollout(read, timeout, clock=clock, sleep=clock.sleep, **kwargs)


def test_wait_polls_every_second_until_done():
    final = deployment()
    clock, last = wait(reads(deployment(status=status(observedGeneration=8)), deployment(status=status(replicas=4)), final))
    assert last is final and clock.sleeps == [1, 1]


def test_wait_fails_at_once_on_a_deadline_exceeded():
    clock = Clock()
    with pytest.raises(kr.RolloutError) as err:
        kr.wait_rollout(reads(stuck()), 300, clock=clock, sleep=clock.sleep)
    assert str(err.value) == DEADLINE
    assert clock.sleeps == [] and err.value.deployment['metadata']['name'] == 'web'


def test_wait_after_an_undo_fails_once_the_controller_observed_it():
    before = stuck()
    clock = Clock()
    verdict = partial(kr.rollout_status, before=before)
    with pytest.raises(kr.RolloutError) as err:
        kr.wait_rollout(reads(undone(before, observed=False), undone(before)), 300, verdict, clock=clock, sleep=clock.sleep)
    assert str(err.value) == DEADLINE and clock.sleeps == [1]


def test_wait_passes_a_deadline_left_from_before_then_times_out_with_the_last_message():
    before = stuck()
    same = copy.deepcopy(before)
    same['status'].update(updatedReplicas=0)
    clock = Clock()
    verdict = partial(kr.rollout_status, before=before)
    with pytest.raises(kr.RolloutError) as err:
        kr.wait_rollout(reads(same), 3, verdict, clock=clock, sleep=clock.sleep)
    assert str(err.value) == ('deployment web in namespace shop: rollout not done after 3s: '
                              'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...')
    assert clock.sleeps == [1, 1, 1] and err.value.deployment is same


def test_wait_fails_at_once_on_pods_that_cannot_be_created():
    clock = Clock()
    verdict = partial(kr.rollout_status, replica_set=new_rs())
    with pytest.raises(kr.RolloutError, match='^cannot create pods: pods "web-h00008-x7k2p" is forbidden: exceeded quota'):
        kr.wait_rollout(reads(restarting()), 300, verdict, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_wait_with_a_verdict_around_kubectls():
    """A caller's check around rollout_status (k8s_workload's HPA floor) keeps the loop waiting."""
    polls = []

    def verdict(dep):
        polls.append(dep)
        done, failed, message = kr.rollout_status(dep)
        return (done and len(polls) > 2), failed, message

    clock, last = wait(reads(deployment()), verdict=verdict)
    assert len(polls) == 3 and clock.sleeps == [1, 1] and last['metadata']['name'] == 'web'

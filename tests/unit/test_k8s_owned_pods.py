"""A Deployment's pods are those of the ReplicaSets it owns, not those its label selector matches:
a canary Deployment with the same app label has its own ReplicaSet and pods."""

from ansible_collections.sre.runbooks.plugins.module_utils.k8s import facts as kf
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr

WEB_UID, CANARY_UID = 'uid-web', 'uid-web-canary'


def deployment(name, uid, labels):
    return {'metadata': {'name': name, 'namespace': 'shop', 'uid': uid},
            'spec': {'replicas': 2, 'selector': {'matchLabels': labels}}}


def replica_set(name, owner_uid):
    return {'metadata': {'name': name, 'uid': 'uid-' + name, 'labels': {'app': 'web'},
                         'ownerReferences': [{'kind': 'Deployment', 'uid': owner_uid, 'controller': True}]}}


def pod(name, owner_refs):
    return {'metadata': {'name': name, 'labels': {'app': 'web'}, 'ownerReferences': owner_refs}}


def controlled_by(rs_name):
    return [{'kind': 'ReplicaSet', 'name': rs_name, 'uid': 'uid-' + rs_name, 'controller': True}]


WEB = deployment('web', WEB_UID, {'app': 'web'})
CANARY = deployment('web-canary', CANARY_UID, {'app': 'web', 'track': 'canary'})
REPLICA_SETS = [replica_set('web-old', WEB_UID), replica_set('web-new', WEB_UID), replica_set('web-canary-c1', CANARY_UID)]
# What `kubectl get pods -l app=web` lists: the web pods (one still of the old ReplicaSet) and the canary's.
LISTED = [pod('web-new-a', controlled_by('web-new')), pod('web-new-b', controlled_by('web-new')),
          pod('web-old-c', controlled_by('web-old')),
          pod('web-canary-c1-a', controlled_by('web-canary-c1')), pod('web-canary-c1-b', controlled_by('web-canary-c1'))]


def names(pods):
    return [p['metadata']['name'] for p in pods]


def test_the_deployments_pods_are_those_of_its_replica_sets():
    owned = kr.owned_replica_sets(WEB, REPLICA_SETS)
    assert names(kf.owned_pods(owned, LISTED)) == ['web-new-a', 'web-new-b', 'web-old-c']
    canary = kr.owned_replica_sets(CANARY, REPLICA_SETS)
    assert names(kf.owned_pods(canary, LISTED)) == ['web-canary-c1-a', 'web-canary-c1-b']


def test_only_the_controller_reference_counts():
    owned = kr.owned_replica_sets(WEB, REPLICA_SETS)
    not_controller = pod('adopted', [{'kind': 'ReplicaSet', 'uid': 'uid-web-new', 'controller': False}])
    orphan = pod('orphan', [])
    no_refs = {'metadata': {'name': 'bare'}}
    # Another controller first, then a non-controller reference to a web ReplicaSet: not web's.
    other_first = pod('other-first', [{'kind': 'ReplicaSet', 'uid': 'uid-web-canary-c1', 'controller': True},
                                      {'kind': 'ReplicaSet', 'uid': 'uid-web-new'}])
    assert kf.owned_pods(owned, [not_controller, orphan, no_refs, other_first]) == []
    assert kf.controller_uid(LISTED[0]) == 'uid-web-new' and kf.controller_uid(orphan) is None


def test_without_replica_sets_or_their_uid_no_pod_is_owned():
    uidless = {'metadata': {'name': 'web-x', 'ownerReferences': [{'kind': 'Deployment', 'uid': WEB_UID, 'controller': True}]}}
    assert kf.owned_pods([], LISTED) == []
    assert kf.owned_pods([uidless], [pod('orphan', [])]) == []


def test_the_status_report_counts_and_blames_only_the_deployments_pods():
    crashing_canary = pod('web-canary-c1-a', controlled_by('web-canary-c1'))
    crashing_canary['status'] = {'phase': 'Running', 'containerStatuses': [
        {'name': 'web', 'restartCount': 9, 'state': {'waiting': {'reason': 'CrashLoopBackOff'}}, 'lastState': {}}]}
    healthy = [pod('web-new-a', controlled_by('web-new')), pod('web-new-b', controlled_by('web-new'))]
    for each in healthy:
        each['status'] = {'phase': 'Running', 'conditions': [{'type': 'Ready', 'status': 'True'}]}
    web = dict(WEB, status={'replicas': 2, 'readyReplicas': 2})
    owned = kr.owned_replica_sets(web, REPLICA_SETS)
    report = kf.status_report(web, owned, kf.owned_pods(owned, healthy + [crashing_canary]),
                              {'spec': {'selector': {'app': 'web'}}},
                              {'subsets': [{'addresses': [{'ip': '10.0.0.1'}, {'ip': '10.0.0.2'}]}]}, [], None, 'web', 0.0)
    assert [p['name'] for p in report['pods']] == ['web-new-a', 'web-new-b']
    assert report['problems'] == []
    assert report['summary'] == ('deployment web in shop: 2/2 replicas ready; no problem seen; '
                                 'Service web: 2 ready endpoints, 0 not ready')

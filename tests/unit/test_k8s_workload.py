"""k8s_workload's decisions, on objects shaped exactly as the API server returns them (camelCase
JSON, as `kubectl get -o json`: defaulted fields present, zero-valued status fields omitted)."""

import copy
import json

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.k8s import workload as kw

NOW = '2024-05-01T10:20:00Z'


def deployment(replicas=3, env=None, resources=None, volumes=None, env_from=None, revision='4', status=None):
    container = {
        'name': 'gateway', 'image': 'registry.example/inference-gateway:v1.2.3',
        'ports': [{'containerPort': 8000, 'protocol': 'TCP'}],
        'resources': resources if resources is not None else {
            'limits': {'cpu': '1', 'memory': '1Gi'}, 'requests': {'cpu': '500m', 'memory': '512Mi'}},
        'terminationMessagePath': '/dev/termination-log', 'terminationMessagePolicy': 'File',
        'imagePullPolicy': 'IfNotPresent'}
    if env is not None:
        container['env'] = env
    if env_from is not None:
        container['envFrom'] = env_from
    pod = {'containers': [container, {'name': 'proxy', 'image': 'envoyproxy/envoy:v1.30.1', 'resources': {},
                                      'terminationMessagePath': '/dev/termination-log',
                                      'terminationMessagePolicy': 'File', 'imagePullPolicy': 'IfNotPresent'}],
           'restartPolicy': 'Always', 'terminationGracePeriodSeconds': 30, 'dnsPolicy': 'ClusterFirst',
           'securityContext': {}, 'schedulerName': 'default-scheduler'}
    if volumes is not None:
        pod['volumes'] = volumes
    return {
        'apiVersion': 'apps/v1', 'kind': 'Deployment',
        'metadata': {'name': 'inference-gateway', 'namespace': 'prod', 'uid': '1f0c6a9e-1b1e-4a8e-9d2a-3c1f4b7e2d10',
                     'resourceVersion': '48213', 'generation': 5, 'creationTimestamp': '2024-05-01T09:00:00Z',
                     'labels': {'app': 'inference-gateway'},
                     'annotations': {'deployment.kubernetes.io/revision': revision}},
        'spec': {'replicas': replicas, 'selector': {'matchLabels': {'app': 'inference-gateway'}},
                 'template': {'metadata': {'creationTimestamp': None, 'labels': {'app': 'inference-gateway'}}, 'spec': pod},
                 'strategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': '25%', 'maxSurge': '25%'}},
                 'revisionHistoryLimit': 10, 'progressDeadlineSeconds': 600},
        'status': status if status is not None else {
            'observedGeneration': 5, 'replicas': replicas, 'updatedReplicas': replicas, 'readyReplicas': replicas,
            'availableReplicas': replicas,
            'conditions': [{'type': 'Available', 'status': 'True', 'reason': 'MinimumReplicasAvailable',
                            'message': 'Deployment has minimum availability.'},
                           {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable',
                            'message': 'ReplicaSet "inference-gateway-7d4b9c8f6d" has successfully progressed.'}]}}


def hpa(target='inference-gateway', low=2, high=8, current=3, name='inference-gateway', kind='Deployment'):
    return {
        'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',
        'metadata': {'name': name, 'namespace': 'prod', 'resourceVersion': '48100',
                     'creationTimestamp': '2024-05-01T09:00:00Z'},
        'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': kind, 'name': target},
                 'minReplicas': low, 'maxReplicas': high,
                 'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {'type': 'Utilization',
                                                                                         'averageUtilization': 70}}}]},
        'status': {'currentReplicas': current, 'desiredReplicas': current,
                   'currentMetrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'current': {
                       'averageValue': '412m', 'averageUtilization': 82}}}]}}


def configmap(data=None, immutable=None):
    cm = {'apiVersion': 'v1', 'kind': 'ConfigMap',
          'metadata': {'name': 'inference-gateway-config', 'namespace': 'prod', 'resourceVersion': '47001',
                       'creationTimestamp': '2024-05-01T09:00:00Z'},
          'data': data if data is not None else {'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info'}}
    if immutable is not None:
        cm['immutable'] = immutable
    return cm


def params(**given):
    values = dict(replicas=None, min_replicas=1, max_replicas=10, hpa_raise_max=False, container=None,
                  resources=None, env=None, configmap=None, configmap_data=None, restart_on_configmap_change=True)
    values.update(given)
    return values


# --------------------------------------------------------------------------- replicas

@pytest.mark.parametrize('requested, expected', [('6', 6), (6, 6), ('+2', 5), ('-1', 2), (' + 2 ', 5), ('3', 3)])
def test_target_replicas_absolute_and_relative(requested, expected):
    assert kw.target_replicas(requested, 3, 1, 10) == expected


def test_target_out_of_bounds_is_refused_not_clamped():
    with pytest.raises(kw.WorkloadError, match=r'replicas \+9 gives 12 \(now 3\), outside the bounds \[1, 10\].*refusing'):
        kw.target_replicas('+9', 3, 1, 10)
    with pytest.raises(kw.WorkloadError, match=r'gives 0 .*\[1, 10\]'):
        kw.target_replicas('-3', 3, 1, 10)
    assert kw.target_replicas('0', 3, 0, 10) == 0
    with pytest.raises(kw.WorkloadError, match='neither a count'):
        kw.target_replicas('6x', 3, 1, 10)
    with pytest.raises(kw.WorkloadError, match='are not bounds'):
        kw.target_replicas('6', 3, 5, 4)


def test_scale_without_hpa_patches_spec_replicas_only():
    decision = kw.plan(deployment(), [], None, params(replicas='6'), NOW)
    assert decision['patches'] == {'configmap': {}, 'workload': {'spec': {'replicas': 6}}, 'hpa': {}}
    assert decision['target_replicas'] == 6 and decision['hpa'] is None
    assert decision['creates_revision'] is False
    same = kw.plan(deployment(replicas=6), [], None, params(replicas='6'), NOW)
    assert same['patches'] == {'configmap': {}, 'workload': {}, 'hpa': {}}


def test_under_an_hpa_the_floor_moves_and_spec_replicas_is_left_alone():
    decision = kw.plan(deployment(), [hpa()], None, params(replicas='6'), NOW)
    assert decision['patches'] == {'configmap': {}, 'workload': {}, 'hpa': {'spec': {'minReplicas': 6}}}
    assert decision['hpa']['metadata']['name'] == 'inference-gateway'
    # Relative to the replicas the HPA runs now.
    assert kw.plan(deployment(replicas=5), [hpa(current=5)], None, params(replicas='+2'), NOW)['patches']['hpa'] == {
        'spec': {'minReplicas': 7}}
    # Lowering the floor is allowed; already there is no change.
    assert kw.plan(deployment(), [hpa(low=4)], None, params(replicas='2'), NOW)['patches']['hpa'] == {'spec': {'minReplicas': 2}}
    assert kw.plan(deployment(), [hpa(low=6)], None, params(replicas='6'), NOW)['patches']['hpa'] == {}


def test_above_the_hpa_max_is_refused_unless_raising_is_allowed():
    with pytest.raises(kw.WorkloadError, match='maxReplicas 8: 9 replicas is above it.*hpa_raise_max: true'):
        kw.plan(deployment(), [hpa()], None, params(replicas='9'), NOW)
    decision = kw.plan(deployment(), [hpa()], None, params(replicas='9', hpa_raise_max=True), NOW)
    assert decision['patches']['hpa'] == {'spec': {'minReplicas': 9, 'maxReplicas': 9}}
    assert decision['patches']['workload'] == {}
    # The module's own bound still applies.
    with pytest.raises(kw.WorkloadError, match='outside the bounds'):
        kw.plan(deployment(), [hpa()], None, params(replicas='12', hpa_raise_max=True), NOW)


def test_an_hpa_of_another_workload_is_ignored():
    others = [hpa(target='model-service', name='model-service'),
              hpa(kind='StatefulSet', name='gw-sts'),
              dict(hpa(name='legacy'), spec=dict(hpa()['spec'], scaleTargetRef={
                  'apiVersion': 'example.com/v1', 'kind': 'Deployment', 'name': 'inference-gateway'}))]
    decision = kw.plan(deployment(), others, None, params(replicas='6'), NOW)
    assert decision['hpa'] is None
    assert decision['patches']['workload'] == {'spec': {'replicas': 6}} and decision['patches']['hpa'] == {}


def test_two_hpas_on_one_workload_are_refused():
    with pytest.raises(kw.WorkloadError, match='HorizontalPodAutoscalers a, b all target Deployment inference-gateway'):
        kw.plan(deployment(), [hpa(name='b'), hpa(name='a')], None, params(replicas='6'), NOW)


def test_an_hpa_disabled_by_zero_replicas_is_re_enabled():
    decision = kw.plan(deployment(replicas=0), [hpa()], None, params(replicas='4'), NOW)
    assert decision['patches']['workload'] == {'spec': {'replicas': 4}}
    assert decision['patches']['hpa'] == {'spec': {'minReplicas': 4}}


def test_hpa_without_min_replicas_defaults_to_one():
    bare = hpa()
    del bare['spec']['minReplicas']
    assert kw.hpa_bounds(bare) == (1, 8)
    assert kw.hpa_view(bare) == {'name': 'inference-gateway', 'min': 1, 'max': 8, 'current': 3}


# --------------------------------------------------------------------------- resources

@pytest.mark.parametrize('a, b', [('1', '1000m'), ('2000m', 2), ('1Gi', '1024Mi'), ('4Gi', '4294967296'),
                                  ('1e3', '1k'), ('0.5', '500m'), ('1.5Gi', '1536Mi'), ('100M', '100000k')])
def test_quantities_compare_by_value(a, b):
    assert kw.same_quantity(a, b)


def test_quantities_that_differ_and_bad_ones():
    assert not kw.same_quantity('1G', '1Gi')
    assert not kw.same_quantity('1', None) and kw.same_quantity(None, None)
    with pytest.raises(kw.WorkloadError, match="'2 cores' is not a Kubernetes quantity"):
        kw.parse_quantity('2 cores')
    assert kw.parse_quantity('2E') == 2 * 10 ** 18 and kw.parse_quantity('2Ei') == 2 * 2 ** 60


def test_resources_patch_has_only_what_differs():
    wanted = {'limits': {'cpu': '2000m', 'memory': '4Gi'}, 'requests': {'cpu': '0.5', 'memory': '512Mi'}}
    decision = kw.plan(deployment(), [], None, params(resources=wanted), NOW)
    assert decision['patches']['workload'] == {'spec': {'template': {'spec': {'containers': [
        {'name': 'gateway', 'resources': {'limits': {'cpu': '2000m', 'memory': '4Gi'}}}]}}}}
    assert decision['creates_revision'] is True
    # The server stores "2000m" as "2" and "4Gi" as is: the second run changes nothing.
    after = deployment(resources={'limits': {'cpu': '2', 'memory': '4Gi'}, 'requests': {'cpu': '500m', 'memory': '512Mi'}})
    again = kw.plan(after, [], None, params(resources=wanted), NOW)
    assert again['patches']['workload'] == {} and again['creates_revision'] is False


def test_resources_remove_a_limit_and_name_a_container():
    decision = kw.plan(deployment(), [], None, params(resources={'limits': {'cpu': None, 'ephemeral-storage': None}}), NOW)
    assert decision['patches']['workload']['spec']['template']['spec']['containers'] == [
        {'name': 'gateway', 'resources': {'limits': {'cpu': None}}}]
    proxy = kw.plan(deployment(), [], None, params(container='proxy', resources={'requests': {'cpu': 1}}), NOW)
    assert proxy['patches']['workload']['spec']['template']['spec']['containers'] == [
        {'name': 'proxy', 'resources': {'requests': {'cpu': '1'}}}]
    with pytest.raises(kw.WorkloadError, match="no container 'app' in Deployment inference-gateway: it has gateway, proxy"):
        kw.plan(deployment(), [], None, params(container='app', resources={'requests': {'cpu': 1}}), NOW)
    with pytest.raises(kw.WorkloadError, match="resources takes limits and requests, not 'limit'"):
        kw.plan(deployment(), [], None, params(resources={'limit': {'cpu': 1}}), NOW)
    with pytest.raises(kw.WorkloadError, match='not a Kubernetes quantity'):
        kw.plan(deployment(), [], None, params(resources={'limits': {'memory': '4 GB'}}), NOW)


# --------------------------------------------------------------------------- env

ENV = [{'name': 'FEATURE_ENDPOINT_XYZ_ENABLED', 'value': 'true'},
       {'name': 'LOG_LEVEL', 'value': 'info'},
       {'name': 'EMPTY'},
       {'name': 'DB_PASSWORD', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'password'}}},
       {'name': 'POD_IP', 'valueFrom': {'fieldRef': {'apiVersion': 'v1', 'fieldPath': 'status.podIP'}}}]


def env_of(decision):
    return decision['patches']['workload']['spec']['template']['spec']['containers'][0]['env']


def test_env_set_and_unset_with_the_delete_directive():
    decision = kw.plan(deployment(env=ENV), [], None, params(env={
        'FEATURE_ENDPOINT_XYZ_ENABLED': False, 'CIRCUIT_BREAKER_THRESHOLD': 5, 'LOG_LEVEL': None, 'NEVER_SET': None}), NOW)
    assert env_of(decision) == [{'name': 'FEATURE_ENDPOINT_XYZ_ENABLED', 'value': 'false'},
                                {'name': 'CIRCUIT_BREAKER_THRESHOLD', 'value': '5'},
                                {'name': 'LOG_LEVEL', '$patch': 'delete'}]
    assert decision['creates_revision'] is True and decision['restart'] is False


def test_env_already_so_is_no_change():
    decision = kw.plan(deployment(env=ENV), [], None, params(env={
        'FEATURE_ENDPOINT_XYZ_ENABLED': True, 'EMPTY': '', 'GONE': None}), NOW)
    assert decision['patches']['workload'] == {} and decision['creates_revision'] is False
    assert kw.plan(deployment(), [], None, params(env={'A': None}), NOW)['patches']['workload'] == {}


def test_env_value_replaces_a_reference():
    decision = kw.plan(deployment(env=ENV), [], None, params(env={'POD_IP': '10.0.0.1'}), NOW)
    assert env_of(decision) == [{'name': 'POD_IP', 'value': '10.0.0.1', 'valueFrom': None}]


def test_env_view_masks_secrets_and_never_shows_references():
    container = kw.container_of(deployment(env=ENV + [{'name': 'API_TOKEN', 'value': 's3cr3t'}]))
    assert kw.env_view(container) == {
        'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info', 'EMPTY': '',
        'DB_PASSWORD': {'valueFrom': 'secretKeyRef'}, 'POD_IP': {'valueFrom': 'fieldRef'}, 'API_TOKEN': kw.MASK}


def test_patches_shown_mask_secret_values():
    decision = kw.plan(deployment(env=ENV), [], configmap(), params(
        env={'API_TOKEN': 's3cr3t', 'MODE': 'safe'}, configmap='inference-gateway-config',
        configmap_data={'SIGNING_KEY': 'k3y', 'LOG_LEVEL': 'debug'}), NOW)
    shown = kw.masked_patches(decision['patches'])
    assert 's3cr3t' not in repr(shown) and 'k3y' not in repr(shown)
    assert shown['configmap'] == {'data': {'SIGNING_KEY': kw.MASK, 'LOG_LEVEL': 'debug'}}
    assert env_of({'patches': shown}) == [{'name': 'API_TOKEN', 'value': kw.MASK}, {'name': 'MODE', 'value': 'safe'}]
    assert env_of(decision)[0] == {'name': 'API_TOKEN', 'value': 's3cr3t'}  # what is sent is untouched


# --------------------------------------------------------------------------- ConfigMap

CM = dict(configmap='inference-gateway-config', configmap_data={'FEATURE_ENDPOINT_XYZ_ENABLED': False, 'LOG_LEVEL': None})
RESTART = {'spec': {'template': {'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': NOW}}}}}


@pytest.mark.parametrize('reader', [
    dict(env_from=[{'configMapRef': {'name': 'inference-gateway-config'}}]),
    dict(env=[{'name': 'FLAG', 'valueFrom': {'configMapKeyRef': {'name': 'inference-gateway-config',
                                                                 'key': 'FEATURE_ENDPOINT_XYZ_ENABLED'}}}]),
    dict(volumes=[{'name': 'config', 'configMap': {'name': 'inference-gateway-config', 'defaultMode': 420}}]),
    dict(volumes=[{'name': 'all', 'projected': {'defaultMode': 420, 'sources': [
        {'secret': {'name': 'tls'}}, {'configMap': {'name': 'inference-gateway-config'}}]}}]),
], ids=['envFrom', 'valueFrom', 'volume', 'projected'])
def test_configmap_change_restarts_its_readers(reader):
    decision = kw.plan(deployment(**reader), [], configmap(), params(**CM), NOW)
    assert decision['patches']['configmap'] == {'data': {'FEATURE_ENDPOINT_XYZ_ENABLED': 'false', 'LOG_LEVEL': None}}
    assert decision['patches']['workload'] == RESTART
    assert decision['configmap_referenced'] is True and decision['restart'] is True
    assert decision['creates_revision'] is True


def test_init_container_reader_counts():
    workload = deployment()
    workload['spec']['template']['spec']['initContainers'] = [
        {'name': 'migrate', 'image': 'x', 'envFrom': [{'configMapRef': {'name': 'inference-gateway-config'}}]}]
    assert kw.references_configmap(workload, 'inference-gateway-config')


def test_configmap_nobody_reads_is_changed_without_restart():
    other = deployment(env_from=[{'configMapRef': {'name': 'other-config'}}],
                       volumes=[{'name': 'c', 'configMap': {'name': 'other-config'}}])
    decision = kw.plan(other, [], configmap(), params(**CM), NOW)
    assert decision['patches']['configmap'] and decision['patches']['workload'] == {}
    assert decision['configmap_referenced'] is False and decision['restart'] is False
    assert decision['creates_revision'] is False


def test_no_restart_when_disabled_or_nothing_changed():
    reader = deployment(env_from=[{'configMapRef': {'name': 'inference-gateway-config'}}])
    off = kw.plan(reader, [], configmap(), params(restart_on_configmap_change=False, **CM), NOW)
    assert off['patches']['configmap'] and off['patches']['workload'] == {} and not off['restart']
    same = kw.plan(reader, [], configmap({'FEATURE_ENDPOINT_XYZ_ENABLED': 'false'}), params(**CM), NOW)
    assert same['patches'] == {'configmap': {}, 'workload': {}, 'hpa': {}} and not same['restart']


def test_configmap_without_data_and_immutable():
    bare = configmap()
    del bare['data']  # an empty ConfigMap comes back without "data"
    assert kw.configmap_patch(bare, {'A': 1, 'B': None}) == {'data': {'A': '1'}}
    with pytest.raises(kw.WorkloadError, match='ConfigMap inference-gateway-config is immutable'):
        kw.configmap_patch(configmap(immutable=True), {'LOG_LEVEL': 'debug'})
    assert kw.configmap_patch(configmap(immutable=True), {'LOG_LEVEL': 'info'}) == {}


def test_restart_and_env_and_replicas_in_one_patch_one_revision():
    reader = deployment(env_from=[{'configMapRef': {'name': 'inference-gateway-config'}}])
    decision = kw.plan(reader, [], configmap(), params(replicas='+1', env={'MODE': 'safe'}, **CM), NOW)
    assert decision['patches']['workload'] == {'spec': {'replicas': 4, 'template': {
        'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': NOW}},
        'spec': {'containers': [{'name': 'gateway', 'env': [{'name': 'MODE', 'value': 'safe'}]}]}}}}


def test_a_paused_deployment_scales_but_takes_no_template_change():
    paused = deployment()
    paused['spec']['paused'] = True
    assert kw.plan(paused, [], None, params(replicas='5'), NOW)['patches']['workload'] == {'spec': {'replicas': 5}}
    with pytest.raises(kw.WorkloadError, match=r'paused.*would not roll out: resume it first \(kubectl rollout resume\)'):
        kw.plan(paused, [], None, params(env={'MODE': 'safe'}), NOW)
    assert kw.plan(paused, [], None, params(env={'MODE': None}), NOW)['patches']['workload'] == {}


# --------------------------------------------------------------------------- revision, views, status

def test_revision_before_is_recorded():
    assert kw.revision(deployment(revision='4')) == 4
    fresh = deployment()
    del fresh['metadata']['annotations']
    assert kw.revision(fresh) is None


def test_view_and_diff():
    before = kw.view(deployment(env=ENV), hpa(), configmap(), params(**CM))
    assert before == {
        'replicas': 3, 'hpa': {'name': 'inference-gateway', 'min': 2, 'max': 8, 'current': 3},
        'container': 'gateway', 'resources': {'limits': {'cpu': '1', 'memory': '1Gi'},
                                              'requests': {'cpu': '500m', 'memory': '512Mi'}},
        'env': kw.env_view(kw.container_of(deployment(env=ENV))),
        'configmap': {'name': 'inference-gateway-config',
                      'data': {'FEATURE_ENDPOINT_XYZ_ENABLED': 'true', 'LOG_LEVEL': 'info'}}}
    after = copy.deepcopy(before)
    after['hpa']['min'] = 6
    assert kw.diff(before, after) == {'before': {'hpa': before['hpa']}, 'after': {'hpa': after['hpa']}}
    assert kw.view(deployment(), None, None, params())['hpa'] is None


def status(**fields):
    return dict({'observedGeneration': 5, 'replicas': 3, 'updatedReplicas': 3, 'readyReplicas': 3,
                 'availableReplicas': 3}, **fields)


def verdict(deployment, floor=None):
    done, failed, _message = kw.rollout_status(deployment, floor)
    return done, failed


def test_rollout_status_by_kubectl_rules():
    assert kw.rollout_status(deployment()) == (True, False, 'deployment "inference-gateway" successfully rolled out')
    assert verdict(deployment(status=status(observedGeneration=4))) == (False, False)
    assert verdict(deployment(status=status(updatedReplicas=2))) == (False, False)
    assert verdict(deployment(status=status(replicas=4))) == (False, False)  # old pods still there
    assert verdict(deployment(status=status(availableReplicas=2))) == (False, False)
    # A new Deployment's status omits zero counts.
    assert verdict(deployment(status={'observedGeneration': 5, 'replicas': 3})) == (False, False)
    assert verdict(deployment(replicas=0, status={'observedGeneration': 5})) == (True, False)


def test_rollout_failures_and_the_hpa_floor():
    stuck = status(updatedReplicas=1, conditions=[{
        'type': 'Progressing', 'status': 'False', 'reason': 'ProgressDeadlineExceeded',
        'message': 'ReplicaSet "inference-gateway-5f7c" has timed out progressing.'}])
    assert kw.rollout_status(deployment(status=stuck), floor=6) == (
        False, True, 'deployment "inference-gateway" exceeded its progress deadline of 600 s (progressDeadlineSeconds): '
                     'ReplicaSet "inference-gateway-5f7c" has timed out progressing.')
    assert kw.rollout_status(deployment(), floor=6) == (
        False, False, 'Waiting for deployment "inference-gateway" rollout to finish: 3 replicas, below the new '
                      'minReplicas 6 of its HorizontalPodAutoscaler yet...')
    assert verdict(deployment(replicas=6), floor=6) == (True, False)
    # Not done for kubectl's rules: its message, not the floor's.
    assert 'old replicas are pending termination' in kw.rollout_status(deployment(status=status(replicas=4)), floor=6)[2]


TIMED_OUT = {'type': 'Progressing', 'status': 'False', 'reason': 'ProgressDeadlineExceeded',
             'lastUpdateTime': '2024-05-01T09:30:00Z', 'message': 'ReplicaSet "inference-gateway-5f7c" has timed out progressing.'}


def test_a_deadline_exceeded_before_the_patches_is_not_theirs_until_a_generation_is_observed():
    before = deployment(status=status(conditions=[TIMED_OUT]))
    # An HPA patch bumps no generation: the condition is the one read before.
    assert kw.rollout_status(before, floor=3, before=before) == (
        True, False, 'deployment "inference-gateway" successfully rolled out')
    renewed = deployment(status=status(conditions=[dict(TIMED_OUT, lastUpdateTime='2024-05-01T09:45:00Z')]))
    assert kw.rollout_status(renewed, before=before)[1]
    # A template patch the controller observed, the condition kept: the rollout's own (kubectl's rule).
    observed = deployment(status=status(observedGeneration=6, updatedReplicas=0, conditions=[TIMED_OUT]))
    observed['metadata']['generation'] = 6
    done, failed, message = kw.rollout_status(observed, before=before)
    assert failed and message.startswith('deployment "inference-gateway" exceeded its progress deadline of 600 s (progressDeadlineSeconds)')


def test_pods_that_cannot_be_created_fail_the_wait_with_their_cause():
    quota = ('pods "inference-gateway-6c9d-q2x8z" is forbidden: exceeded quota: compute, requested: limits.memory=1Gi, '
             'used: limits.memory=3Gi, limited: limits.memory=3Gi')
    failure = {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': quota}
    complete = {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable',
                'message': 'ReplicaSet "inference-gateway-6c9d" has successfully progressed.'}
    scaled = deployment(replicas=6, status=status(conditions=[complete, failure]))   # a scale-up: no pod frees the quota
    replica_set = {'metadata': {'name': 'inference-gateway-6c9d', 'namespace': 'prod'}, 'status': {'conditions': [failure]}}
    done, failed, message = kw.rollout_status(scaled, floor=6, replica_set=replica_set)
    assert (done, failed) == (False, True)
    assert message.startswith('cannot create pods: %s; deployment "inference-gateway" cannot roll out' % quota)


# --------------------------------------------------------------------------- factors

def factor_params(**given):
    return params(**dict(dict(memory_factor=None, cpu_factor=None, max_memory='4Gi', max_cpus='4'), **given))


@pytest.mark.parametrize('value, resource, expected', [
    ('2Gi', 'memory', '2Gi'), ('1536Mi', 'memory', '1536Mi'), ('1.5Gi', 'memory', '1536Mi'),
    ('1G', 'memory', '1G'), ('1.5G', 'memory', '1500M'), ('1000', 'memory', '1k'), ('1025', 'memory', '1025'),
    ('0.5', 'memory', '1'), ('750m', 'cpu', '750m'), ('2000m', 'cpu', '2'), ('0.3333', 'cpu', '334m'),
    ('1.5', 'cpu', '1500m'), ('1e3', 'memory', '1k'), ('3e9', 'memory', '3G')])
def test_quantities_render_canonically(value, resource, expected):
    assert kw.format_quantity(kw.parse_quantity(value), resource) == expected


def limits_of(decision):
    return decision['patches']['workload']['spec']['template']['spec']['containers'][0]['resources']


def record_of(decision):
    return json.loads(decision['patches']['workload']['metadata']['annotations'][kw.FACTOR_BASE])


def test_factors_multiply_the_limits_and_record_the_base():
    decision = kw.plan(deployment(), [], None, factor_params(memory_factor=2, cpu_factor=1.5), NOW)
    assert limits_of(decision) == {'limits': {'memory': '2Gi', 'cpu': '1500m'}}  # requests untouched
    assert record_of(decision) == {'gateway': {'memory': {'base': '1Gi', 'set': '2Gi'},
                                               'cpu': {'base': '1', 'set': '1500m'}}}
    assert decision['factors'] == {'memory': {'base': '1Gi', 'factor': 2, 'limit': '2Gi'},
                                   'cpu': {'base': '1', 'factor': 1.5, 'limit': '1500m'}}
    assert decision['creates_revision'] is True
    assert kw.plan(deployment(), [], None, factor_params(), NOW)['factors'] is None


def applied(workload, decision):
    """The Deployment as the API server stores it after the patch (canonical quantities)."""
    workload = copy.deepcopy(workload)
    body = decision['patches']['workload']
    workload['metadata']['annotations'].update(body.get('metadata', {}).get('annotations', {}))
    limits = kw.container_of(workload)['resources']['limits']
    for resource, value in limits_of(decision)['limits'].items():
        limits[resource] = {'2048Mi': '2Gi', '2000m': '2'}.get(value, value)
    return workload


def test_a_second_run_of_a_factor_changes_nothing_and_another_is_from_the_original():
    first = kw.plan(deployment(), [], None, factor_params(memory_factor=2), NOW)
    raised = applied(deployment(), first)
    again = kw.plan(raised, [], None, factor_params(memory_factor=2), NOW)
    assert again['patches']['workload'] == {} and again['creates_revision'] is False
    assert again['factors'] == {'memory': {'base': '1Gi', 'factor': 2, 'limit': '2Gi'}}
    triple = kw.plan(raised, [], None, factor_params(memory_factor=3), NOW)
    assert limits_of(triple) == {'limits': {'memory': '3Gi'}}
    assert record_of(triple) == {'gateway': {'memory': {'base': '1Gi', 'set': '3Gi'}}}


def test_a_limit_changed_since_is_the_new_base():
    raised = applied(deployment(), kw.plan(deployment(), [], None, factor_params(memory_factor=2), NOW))
    kw.container_of(raised)['resources']['limits']['memory'] = '1536Mi'  # a deploy or rollback since
    decision = kw.plan(raised, [], None, factor_params(memory_factor=2), NOW)
    assert limits_of(decision) == {'limits': {'memory': '3Gi'}}
    assert record_of(decision) == {'gateway': {'memory': {'base': '1536Mi', 'set': '3Gi'}}}


def test_records_of_other_containers_are_kept_and_a_bad_record_ignored():
    workload = deployment(resources={'limits': {'memory': '256Mi'}})
    workload['metadata']['annotations'][kw.FACTOR_BASE] = json.dumps({'proxy': {'cpu': {'base': '1', 'set': '2'}}})
    decision = kw.plan(workload, [], None, factor_params(memory_factor=1.5), NOW)
    assert record_of(decision) == {'proxy': {'cpu': {'base': '1', 'set': '2'}},
                                   'gateway': {'memory': {'base': '256Mi', 'set': '384Mi'}}}
    workload['metadata']['annotations'][kw.FACTOR_BASE] = 'not json'
    assert record_of(kw.plan(workload, [], None, factor_params(memory_factor=2), NOW)) == {
        'gateway': {'memory': {'base': '256Mi', 'set': '512Mi'}}}


@pytest.mark.parametrize('given, message', [
    (dict(memory_factor=8), r'memory_factor 8 gives a memory limit of 8Gi \(1Gi x 8\), above max_memory 4Gi: refusing; '
                            r'raise max_memory if 8Gi is intended'),
    (dict(cpu_factor=3, max_cpus='2500m'), r'cpu_factor 3 gives a cpu limit of 3 \(1 x 3\), above max_cpus 2500m'),
    (dict(memory_factor=0.25), r'memory_factor 0.25 gives a memory limit of 256Mi, below the request 512Mi of container gateway'),
    (dict(cpu_factor=0), r'cpu_factor must be above 0, not 0'),
    (dict(memory_factor=2, resources={'limits': {'memory': '2Gi'}}), r'memory_factor and resources.limits.memory both set'),
    (dict(memory_factor=2, max_memory='lots'), r"max_memory: 'lots' is not a Kubernetes quantity"),
    (dict(cpu_factor=2, container='proxy'), r'cpu_factor multiplies the cpu limit of container proxy, and it has none: '
                                            r'give resources.limits.cpu instead'),
])
def test_factors_refused(given, message):
    with pytest.raises(kw.WorkloadError, match=message):
        kw.plan(deployment(), [], None, factor_params(**given), NOW)


def test_a_factor_at_the_bound_and_with_requests_set_absolutely():
    decision = kw.plan(deployment(), [], None, factor_params(memory_factor=4, resources={'requests': {'memory': '1Gi'}}), NOW)
    assert limits_of(decision) == {'limits': {'memory': '4Gi'}, 'requests': {'memory': '1Gi'}}

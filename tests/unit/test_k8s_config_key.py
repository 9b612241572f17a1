"""A missing ConfigMap key: the references of a pod template that are missing and whether each can
be put back (k8s_facts, k8s_status_info's config_refs), and what k8s_config_key decides
(k8s/configmap.py), on objects shaped as the API server returns them (`kubectl get -o json`)."""

import hashlib
import json

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils import k8s_config_key as body
from ansible_collections.sre.runbooks.plugins.module_utils import k8s_status_info as status_body
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import configmap as kc
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import facts as kf
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import MERGE_PATCH, K8sError

SECRET_VALUE = 'postgres://app:hunter2@db:5432/app'
URL = 'http://model-service:8000/v1'


def applied(data, name='gateway-config', kind='ConfigMap'):
    """The annotation kubectl apply writes: the manifest applied, as compact JSON and a newline."""
    return json.dumps({'apiVersion': 'v1', 'kind': kind, 'data': data,
                       'metadata': {'annotations': {}, 'name': name, 'namespace': 'prod'}}, separators=(',', ':')) + '\n'


def configmap(data, annotation=None, immutable=None, binary=None):
    cm = {'apiVersion': 'v1', 'kind': 'ConfigMap',
          'metadata': {'name': 'gateway-config', 'namespace': 'prod', 'uid': '0c6f7a52-3d1e-4b0a-9f8e-2a1b3c4d5e6f',
                       'resourceVersion': '48213', 'creationTimestamp': '2026-11-23T14:00:00Z'}}
    if data is not None:
        cm['data'] = data
    if annotation is not None:
        cm['metadata']['annotations'] = {kc.LAST_APPLIED: annotation}
    if immutable is not None:
        cm['immutable'] = immutable
    if binary is not None:
        cm['binaryData'] = binary
    return cm


APPLIED = applied({'LOG_LEVEL': 'info', 'MODEL_URL': URL, 'DATABASE_URL': SECRET_VALUE})
# MODEL_URL removed with kubectl edit: the annotation still holds it.
EDITED = configmap({'LOG_LEVEL': 'info', 'DATABASE_URL': SECRET_VALUE}, APPLIED)


def template_spec():
    """A pod template reading ConfigMaps and Secrets every way the kubelet does."""
    return {
        'initContainers': [{'name': 'migrate', 'image': 'shop/migrate:1', 'env': [
            {'name': 'DATABASE_URL', 'valueFrom': {'configMapKeyRef': {'name': 'gateway-config', 'key': 'DATABASE_URL'}}}]}],
        'containers': [{
            'name': 'gateway', 'image': 'shop/gateway:2',
            'env': [{'name': 'MODEL_URL', 'valueFrom': {'configMapKeyRef': {'name': 'gateway-config', 'key': 'MODEL_URL'}}},
                    {'name': 'TRACE', 'valueFrom': {'configMapKeyRef': {'name': 'tracing', 'key': 'ENDPOINT', 'optional': True}}},
                    {'name': 'DB_PASSWORD', 'valueFrom': {'secretKeyRef': {'name': 'db-credentials', 'key': 'password'}}},
                    {'name': 'POD', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}},
                    {'name': 'PLAIN', 'value': 'x'}],
            'envFrom': [{'configMapRef': {'name': 'flags'}}, {'secretRef': {'name': 'api-keys', 'optional': True}}]},
            {'name': 'sidecar', 'image': 'shop/sidecar:1', 'env': [
                {'name': 'MODEL_URL', 'valueFrom': {'configMapKeyRef': {
                    'name': 'gateway-config', 'key': 'MODEL_URL', 'optional': True}}}]}],
        'volumes': [
            {'name': 'rules', 'configMap': {'name': 'rules', 'items': [
                {'key': 'alerts.yml', 'path': 'alerts.yml'}, {'key': 'records.yml', 'path': 'records.yml'}]}},
            {'name': 'whole', 'configMap': {'name': 'whole-map', 'defaultMode': 420}},
            {'name': 'tls', 'secret': {'secretName': 'gateway-tls', 'defaultMode': 420}},
            {'name': 'mixed', 'projected': {'sources': [
                {'configMap': {'name': 'ca', 'items': [{'key': 'ca.crt', 'path': 'ca.crt'}]}},
                {'downwardAPI': {'items': [{'path': 'labels', 'fieldRef': {'fieldPath': 'metadata.labels'}}]}}]}},
            {'name': 'scratch', 'emptyDir': {}}]}


def waiting_pod(*messages):
    return {'metadata': {'name': 'gateway-7d4-x2k4p'}, 'status': {'phase': 'Pending', 'containerStatuses': [
        {'name': 'c%d' % index, 'ready': False, 'restartCount': 0,
         'state': {'waiting': {'reason': 'CreateContainerConfigError', 'message': message}}}
        for index, message in enumerate(messages)]}}


# --------------------------------------------------------------------------- references

def test_config_references_every_way_a_pod_reads_them_once_each():
    refs = kf.config_references(template_spec())
    assert refs == [
        {'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'DATABASE_URL', 'optional': False},
        # optional in the sidecar, not in the gateway: the kubelet waits for it
        {'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'MODEL_URL', 'optional': False},
        {'kind': 'ConfigMap', 'name': 'tracing', 'key': 'ENDPOINT', 'optional': True},
        {'kind': 'Secret', 'name': 'db-credentials', 'key': 'password', 'optional': False},
        {'kind': 'ConfigMap', 'name': 'flags', 'key': None, 'optional': False},
        {'kind': 'Secret', 'name': 'api-keys', 'key': None, 'optional': True},
        {'kind': 'ConfigMap', 'name': 'rules', 'key': 'alerts.yml', 'optional': False},
        {'kind': 'ConfigMap', 'name': 'rules', 'key': 'records.yml', 'optional': False},
        {'kind': 'ConfigMap', 'name': 'whole-map', 'key': None, 'optional': False},
        {'kind': 'Secret', 'name': 'gateway-tls', 'key': None, 'optional': False},
        {'kind': 'ConfigMap', 'name': 'ca', 'key': 'ca.crt', 'optional': False}]
    assert kf.config_references({'containers': [{'name': 'a', 'image': 'x'}]}) == []


def test_config_error_messages_once_each_and_only_config_errors():
    crash = {'metadata': {'name': 'p2'}, 'status': {'containerStatuses': [
        {'name': 'c', 'state': {'waiting': {'reason': 'CrashLoopBackOff', 'message': 'back-off'}}}]}}
    pods = [waiting_pod('configmap "flags" not found', 'configmap "flags" not found'), crash,
            waiting_pod("couldn't find key password in Secret prod/db-credentials")]
    assert kf.config_error_messages(pods) == [
        'configmap "flags" not found', "couldn't find key password in Secret prod/db-credentials"]


def test_missing_refs_restorable_only_from_an_annotation_that_holds_the_key():
    refs = kf.config_references(template_spec())
    configmaps = {'gateway-config': EDITED, 'tracing': None, 'flags': None,
                  'rules': configmap({'alerts.yml': 'groups: []'}),  # records.yml removed, no annotation
                  'whole-map': configmap({'a': 'b'}), 'ca': configmap({'ca.crt': 'PEM'})}
    messages = ["couldn't find key MODEL_URL in ConfigMap prod/gateway-config"]
    missing = kf.missing_config_refs(refs, configmaps, set(), messages)
    assert missing == [
        {'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'MODEL_URL', 'optional': False, 'exists': True,
         'has_key': False, 'restorable': True, 'source': 'last-applied-configuration'},
        {'kind': 'ConfigMap', 'name': 'tracing', 'key': 'ENDPOINT', 'optional': True, 'exists': False,
         'has_key': False, 'restorable': False, 'source': None},
        {'kind': 'ConfigMap', 'name': 'flags', 'key': None, 'optional': False, 'exists': False,
         'has_key': None, 'restorable': False, 'source': None},
        {'kind': 'ConfigMap', 'name': 'rules', 'key': 'records.yml', 'optional': False, 'exists': True,
         'has_key': False, 'restorable': False, 'source': None}]
    # Names and keys only, never a value.
    assert SECRET_VALUE not in json.dumps(missing) and URL not in json.dumps(missing)


@pytest.mark.parametrize('cm', [
    configmap({}, 'not json'),
    configmap({}, json.dumps(['a list'])),
    configmap({}, applied({'OTHER': '1'})),
    configmap({}, applied({'MODEL_URL': URL}, name='another-config')),
    configmap({}, applied({'MODEL_URL': URL}), immutable=True),
], ids=['unparsable', 'not-a-manifest', 'without-the-key', 'another-object', 'immutable'])
def test_missing_key_not_restorable(cm):
    ref = {'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'MODEL_URL', 'optional': False}
    [entry] = kf.missing_config_refs([ref], {'gateway-config': cm}, set(), [])
    assert entry['exists'] is True and entry['has_key'] is False
    assert entry['restorable'] is False and entry['source'] is None


def test_unread_configmap_is_listed_as_not_known():
    refs = [{'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'MODEL_URL', 'optional': False},
            {'kind': 'ConfigMap', 'name': 'flags', 'key': None, 'optional': False}]
    missing = kf.missing_config_refs(refs, {'gateway-config': None, 'flags': None}, {'gateway-config', 'flags'}, [])
    assert [(m['name'], m['exists'], m['has_key'], m['restorable']) for m in missing] == [
        ('gateway-config', None, None, False), ('flags', None, None, False)]


def test_secrets_are_listed_only_as_the_kubelet_names_them_and_never_restorable():
    refs = [{'kind': 'Secret', 'name': 'db-credentials', 'key': 'password', 'optional': False},
            {'kind': 'Secret', 'name': 'api-keys', 'key': None, 'optional': False},
            {'kind': 'Secret', 'name': 'gateway-tls', 'key': None, 'optional': False}]
    messages = ["couldn't find key password in Secret prod/db-credentials", 'secret "api-keys" not found']
    missing = kf.missing_config_refs(refs, {}, set(), messages)
    assert missing == [
        {'kind': 'Secret', 'name': 'db-credentials', 'key': 'password', 'optional': False, 'exists': True,
         'has_key': False, 'restorable': False, 'source': None},
        {'kind': 'Secret', 'name': 'api-keys', 'key': None, 'optional': False, 'exists': False,
         'has_key': None, 'restorable': False, 'source': None}]
    # A key of a ConfigMap of the same name is not the Secret's.
    assert kf.missing_config_refs(refs[:1], {}, set(), ["couldn't find key password in ConfigMap prod/db-credentials"]) == []


def test_a_binary_data_key_is_present():
    ref = {'kind': 'ConfigMap', 'name': 'gateway-config', 'key': 'logo.png', 'optional': False}
    assert kf.missing_config_refs([ref], {'gateway-config': configmap({}, binary={'logo.png': 'iVBORw0K'})}, set(), []) == []


# --------------------------------------------------------------------------- k8s_config_key's decision

def test_restore_from_last_applied_patches_that_key_alone_under_a_resource_version_precondition():
    plan = kc.restore_plan(EDITED, 'MODEL_URL', 'last_applied', None, False)
    assert plan['patch'] == {'metadata': {'resourceVersion': '48213'}, 'data': {'MODEL_URL': URL}}
    assert plan['source'] == 'last-applied-configuration'
    assert plan['after'] == {'key': 'MODEL_URL', 'state': 'present', 'length': len(URL),
                             'sha256': hashlib.sha256(URL.encode()).hexdigest()}
    assert plan['message'].startswith('restored key MODEL_URL of ConfigMap prod/gateway-config from its '
                                      'kubectl.kubernetes.io/last-applied-configuration annotation (%d characters)' % len(URL))
    checked = kc.restore_plan(EDITED, 'MODEL_URL', 'last_applied', None, True)
    assert checked['patch'] == plan['patch'] and checked['message'].startswith('would restore key MODEL_URL')


def test_views_show_presence_digest_and_length_never_the_value():
    view = kc.key_view(EDITED, 'DATABASE_URL')
    assert view == {'key': 'DATABASE_URL', 'state': 'present', 'length': len(SECRET_VALUE),
                    'sha256': hashlib.sha256(SECRET_VALUE.encode()).hexdigest()}
    assert kc.key_view(EDITED, 'MODEL_URL') == {'key': 'MODEL_URL', 'state': 'absent', 'sha256': None, 'length': None}
    assert kc.key_view(configmap(None), 'MODEL_URL')['state'] == 'absent'  # a ConfigMap without data
    assert kc.value_view('K', 'é')['length'] == 1


def test_restore_a_given_value_and_into_a_configmap_without_data():
    plan = kc.restore_plan(configmap(None, immutable=False), 'MODEL_URL', 'value', URL, False)
    assert plan['patch'] == {'metadata': {'resourceVersion': '48213'}, 'data': {'MODEL_URL': URL}}
    assert plan['source'] == 'value' and 'from the value given' in plan['message']


def test_a_present_key_is_never_overwritten():
    present = kc.restore_plan(EDITED, 'LOG_LEVEL', 'last_applied', None, False)
    assert present['patch'] is None and present['source'] is None
    assert present['message'] == 'key LOG_LEVEL of ConfigMap prod/gateway-config is present: nothing to restore'
    same = kc.restore_plan(EDITED, 'LOG_LEVEL', 'value', 'info', False)
    assert same['patch'] is None and same['message'].endswith('is present: nothing to restore')
    other = kc.restore_plan(EDITED, 'LOG_LEVEL', 'value', 'debug', False)
    assert other['patch'] is None and other['after'] == kc.key_view(EDITED, 'LOG_LEVEL')
    assert 'is present with another value' in other['message'] and 'never overwrites' in other['message']
    assert 'debug' not in other['message'] and ' info' not in other['message']
    binary = kc.restore_plan(configmap({}, APPLIED, binary={'MODEL_URL': 'aHR0cA=='}), 'MODEL_URL', 'last_applied', None, False)
    assert binary['patch'] is None


@pytest.mark.parametrize('cm, source, value, words', [
    (configmap({'LOG_LEVEL': 'info'}), 'last_applied', None,
     'has no annotation kubectl.kubernetes.io/last-applied-configuration: it was not created or last updated with kubectl apply'),
    (configmap({}, '{"apiVersion": "v1", "data": {'), 'last_applied', None, 'that is not JSON'),
    (configmap({}, applied({'LOG_LEVEL': 'info'})), 'last_applied', None, 'without key MODEL_URL (it holds LOG_LEVEL)'),
    (configmap({}, applied({'MODEL_URL': URL}, kind='Secret')), 'last_applied', None, 'of another object (Secret gateway-config)'),
    (configmap({}, applied({'MODEL_URL': URL}), immutable=True), 'last_applied', None, 'is immutable'),
    (configmap({}), 'value', None, 'source=value restores the value given in value, and none is given'),
], ids=['no-annotation', 'unparsable', 'without-the-key', 'another-object', 'immutable', 'value-missing'])
def test_refusals_say_what_to_check(cm, source, value, words):
    with pytest.raises(kc.ConfigKeyError) as refused:
        kc.restore_plan(cm, 'MODEL_URL', source, value, False)
    assert words in refused.value.msg
    assert isinstance(refused.value, RunbookError)
    if source == 'last_applied' and 'immutable' not in words:
        assert refused.value.msg.startswith('cannot restore key MODEL_URL: ConfigMap prod/gateway-config ')
        assert 'source=value' in refused.value.msg and 'kubectl get configmap gateway-config -n prod -o yaml' in refused.value.msg


def test_spec_requires_value_with_source_value():
    assert body.SPEC['required_if'] == [('source', 'value', ('value',))]
    assert body.SPEC['argument_spec']['state']['choices'] == ['restored']
    assert body.SPEC['argument_spec']['key']['no_log'] is False


# --------------------------------------------------------------------------- the bodies over a stand-in reader

class StandIn:
    """What the bodies call of observe.Reader: config_map, recorded; `answers` {name: object, None or an error}."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []
        self.client, self.core = self, self

    def config_map(self, name, namespace):
        self.calls.append((name, namespace))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    patch_namespaced_config_map = object()


def deployment():
    return {'metadata': {'name': 'gateway', 'namespace': 'prod'}, 'spec': {'template': {'spec': template_spec()}}}


def test_status_reads_no_configmap_without_a_config_error():
    reader = StandIn({})
    problems = [{'kind': 'CrashLoopBackOff', 'pods': ['p'], 'message': 'crashing'}]
    assert status_body.config_refs(reader, deployment(), 'prod', [], problems, pytest.fail) == []
    assert reader.calls == []


def test_status_reads_each_configmap_once_and_a_forbidden_read_is_a_warning():
    forbidden = K8sError('forbidden to get configmap rules in namespace prod (HTTP 403 Forbidden)', 403)
    reader = StandIn({'gateway-config': EDITED, 'tracing': configmap({'ENDPOINT': 'x'}), 'flags': None,
                      'rules': forbidden, 'whole-map': configmap({}), 'ca': configmap({'ca.crt': 'PEM'})})
    warnings = []
    problems = [{'kind': 'CreateContainerConfigError', 'pods': ['p'], 'message': 'configmap "flags" not found'}]
    refs = status_body.config_refs(reader, deployment(), 'prod', [waiting_pod('configmap "flags" not found')], problems,
                                   warnings.append)
    assert sorted(reader.calls) == [(name, 'prod') for name in ('ca', 'flags', 'gateway-config', 'rules', 'tracing', 'whole-map')]
    assert [(r['name'], r['key'], r['exists'], r['restorable']) for r in refs] == [
        ('gateway-config', 'MODEL_URL', True, True), ('flags', None, False, False),
        ('rules', 'alerts.yml', None, False), ('rules', 'records.yml', None, False)]
    assert len(warnings) == 1 and warnings[0].startswith('k8s_status could not read ConfigMap rules')


def params(**given):
    values = dict(name='gateway-config', namespace='prod', key='MODEL_URL', state='restored', source='last_applied',
                  value=None, request_timeout=10)
    values.update(given)
    return values


@pytest.fixture
def cluster(monkeypatch):
    """k8s_config_key's body over a stand-in reader and patch call: what it sent, and what the server answers."""
    state = {'configmap': EDITED, 'sent': [], 'answer': lambda: None}
    reader = StandIn({'gateway-config': EDITED})
    monkeypatch.setattr(body, 'Reader', lambda p: reader)

    def patch(client, timeout, kind, name, namespace, method, patch_body, content_type, check_mode):
        state['sent'].append({'kind': kind, 'name': name, 'namespace': namespace, 'body': patch_body,
                              'content_type': content_type, 'check_mode': check_mode, 'timeout': timeout})
        state['answer']()  # a refusal raises
        return dict(EDITED, data=dict(EDITED['data'], **patch_body['data']))
    monkeypatch.setattr(body, 'patch', patch)
    state['reader'] = reader
    return state


def test_run_restores_with_a_merge_patch_and_a_diff_of_the_key_only(cluster):
    result = body.run(params(), check_mode=False)
    assert cluster['sent'] == [{'kind': 'configmap', 'name': 'gateway-config', 'namespace': 'prod', 'timeout': 10,
                                'body': {'metadata': {'resourceVersion': '48213'}, 'data': {'MODEL_URL': URL}},
                                'content_type': MERGE_PATCH, 'check_mode': False}]
    assert result['changed'] and result['source'] == 'last-applied-configuration'
    assert result['before'] == {'key': 'MODEL_URL', 'state': 'absent', 'sha256': None, 'length': None}
    assert result['after']['state'] == 'present' and result['after']['length'] == len(URL)
    assert result['diff'] == {'before': result['before'], 'after': result['after']}
    assert URL not in json.dumps(result)
    checked = body.run(params(), check_mode=True)
    assert checked['changed'] and cluster['sent'][-1]['check_mode'] is True
    assert checked['message'].startswith('would restore key MODEL_URL')


def test_run_refuses_value_without_source_value_before_any_call(cluster):
    with pytest.raises(RunbookError) as refused:
        body.run(params(value='x'), check_mode=False)
    assert 'set source=value' in refused.value.msg and cluster['reader'].calls == []


def test_run_absent_configmap_is_refused_never_created(cluster):
    cluster['reader'].answers['gateway-config'] = None
    with pytest.raises(RunbookError) as refused:
        body.run(params(), check_mode=False)
    assert refused.value.msg.startswith('ConfigMap gateway-config not found in namespace prod: ')
    assert 'never creates one' in refused.value.msg and cluster['sent'] == []


def test_run_a_concurrent_edit_is_a_conflict_and_kept(cluster):
    def conflict():
        raise K8sError('cannot patch configmap gateway-config in namespace prod: HTTP 409 Conflict', 409)
    cluster['answer'] = conflict
    with pytest.raises(RunbookError) as refused:
        body.run(params(), check_mode=False)
    assert 'changed after it was read (HTTP 409 Conflict on its resourceVersion 48213)' in refused.value.msg
    assert refused.value.details == {'changed': False, 'before': kc.key_view(EDITED, 'MODEL_URL')}

"""The one way a module runs and fails (module_utils/common/module.py), whatever raised the error."""

import types

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, result_of
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError
from ansible_collections.sre.runbooks.plugins.module_utils.docker.compose import ComposeError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.rollout import RolloutError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.workload import WorkloadError


def reader(raise_=None, **answer):
    def collect(params, warn):
        warn('looked at %s' % params['service'])
        if raise_:
            raise raise_
        return answer
    return types.SimpleNamespace(SPEC={}, collect=collect)


def actor(raise_=None):
    def run(params, check_mode):
        if raise_:
            raise raise_
        return {'changed': not check_mode, 'sent': not check_mode}
    return types.SimpleNamespace(SPEC={}, run=run)


def test_a_reader_never_changes_anything_and_its_warnings_reach_the_task():
    warnings = []
    assert result_of(reader(rate=0.2), {'service': 'gw'}, True, warnings.append) == {
        'changed': False, 'rate': 0.2}
    assert warnings == ['looked at gw']


def test_an_actor_says_what_it_changed_and_obeys_check_mode():
    assert result_of(actor(), {}, False, None) == {'changed': True, 'sent': True}
    assert result_of(actor(), {}, True, None) == {'changed': False, 'sent': False}


@pytest.mark.parametrize('error, details', [
    (RunbookError('label code matches nothing', label_check={'missing': ['code']}),
     {'label_check': {'missing': ['code']}}),
    (ApiError('Slack answered channel_not_found', 200, {'ok': False}),
     {'status_code': 200, 'response': {'ok': False}}),
    (k8s_client.K8sError('deployment gw not found', 404), {}),
    (RolloutError('ProgressDeadlineExceeded', {'metadata': {}}), {}),
    (WorkloadError('replicas 40 above max_replicas 10'), {}),
    (ComposeError('docker compose up failed'), {}),
    (StateError('cannot write /var/lib/x: read-only'), {}),
])
def test_every_error_of_the_collection_fails_the_task_with_its_message_and_details(error, details):
    for body in (reader(error), actor(error)):
        assert result_of(body, {'service': 'gw'}, False, lambda _: None) == dict(
            details, failed=True, msg=str(error))


def test_anything_else_is_a_bug_and_shows_as_one():
    with pytest.raises(KeyError):
        result_of(reader(KeyError('rate')), {'service': 'gw'}, False, lambda _: None)


class Module:
    def __init__(self):
        self.exited = None

    def exit_json(self, **kw):
        self.exited = ('exit', kw)

    def fail_json(self, **kw):
        self.exited = ('fail', kw)


def test_finish_fails_a_failed_result_and_exits_any_other():
    module = Module()
    finish(module, {'failed': True, 'msg': 'no', 'status_code': 401})
    assert module.exited == ('fail', {'msg': 'no', 'status_code': 401})
    finish(module, {'changed': False, 'rate': 0.1})
    assert module.exited == ('exit', {'changed': False, 'rate': 0.1})


def test_a_missing_kubernetes_library_is_said_once_for_every_kubernetes_module(monkeypatch):
    monkeypatch.setattr(k8s_client, 'HAS_KUBERNETES', False)
    with pytest.raises(k8s_client.K8sError) as err:
        k8s_client.k8s_api_client({'request_timeout': 5})
    assert 'kubernetes' in err.value.msg and 'No module named' in err.value.msg


def test_the_kubernetes_modules_take_the_cluster_from_an_awx_credential_s_environment(monkeypatch, tmp_path):
    """AWX's OpenShift or Kubernetes API Bearer Token credential sets K8S_AUTH_*: with nothing
    given, the modules take the API server, token, CA and verification from there."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    ca = tmp_path / 'ca.crt'
    ca.write_text('-----BEGIN CERTIFICATE-----\n')
    monkeypatch.setenv('K8S_AUTH_HOST', 'https://127.0.0.1:16443/')
    monkeypatch.setenv('K8S_AUTH_API_KEY', 'token-from-awx')
    monkeypatch.setenv('K8S_AUTH_SSL_CA_CERT', str(ca))
    monkeypatch.setenv('K8S_AUTH_VERIFY_SSL', 'True')
    params = ArgumentSpecValidator(k8s_client.K8S_ARGS).validate({}).validated_parameters
    assert (params['host'], params['api_key'], params['ca_cert'], params['validate_certs']) == (
        'https://127.0.0.1:16443/', 'token-from-awx', str(ca), True)
    cfg = k8s_client.k8s_api_client(params).configuration
    assert cfg.host == 'https://127.0.0.1:16443' and cfg.ssl_ca_cert == str(ca) and cfg.verify_ssl
    assert cfg.get_api_key_with_prefix('authorization') == 'Bearer token-from-awx'
    monkeypatch.setenv('K8S_AUTH_VERIFY_SSL', 'False')
    given = ArgumentSpecValidator(k8s_client.K8S_ARGS).validate({'host': 'https://10.0.0.1:6443'}).validated_parameters
    assert given['host'] == 'https://10.0.0.1:6443' and given['validate_certs'] is False

"""k8s_workload's memory_factor and cpu_factor run as Ansible runs them (a child process, the real
`kubernetes` client) against fake_k8s.FakeApiServer: strategic-merge patches, dry runs,
quantities stored canonically, the Deployment controller's revisions."""

import copy
import json

import pytest

from conftest import run_module
from fake_k8s import REVISION, TOKEN, FakeApiServer, container, deployment

NS = 'dhakacart'
NAME = 'dhakacart-backend'
BASE = 'sre.runbooks/limits-before-factor'


def backend(limits=None):
    return deployment(NAME, NS, revision=7, containers=[container(
        'backend', 'registry.dhakacart.local/dhakacart-backend:v2.4.1',
        limits={'cpu': '1', 'memory': '1Gi'} if limits is None else limits,
        requests={'cpu': '500m', 'memory': '512Mi'})])


@pytest.fixture
def api():
    fake = FakeApiServer()
    fake.add(backend())
    yield fake
    fake.close()


def run(api, check_mode=False, diff=False, **args):
    args = dict(dict(name=NAME, namespace=NS, host=api.url, api_key=TOKEN, validate_certs=False,
                     wait_timeout=30), **args)
    if diff:
        args['_ansible_diff'] = True
    api.requests.clear()
    result = run_module('k8s_workload', args, check_mode=check_mode)
    assert TOKEN not in json.dumps(result)
    return result


def patches(api):
    return [r for r in api.requests if r['method'] == 'PATCH']


def stored(api):
    return api.get('deployments', NAME, NS)


def limits(api):
    return stored(api)['spec']['template']['spec']['containers'][0]['resources']


def test_memory_factor_doubles_the_limit_once(api):
    result = run(api, diff=True, memory_factor=2)
    assert result['changed'] and result['creates_revision'] and not result.get('failed'), result
    assert result['patches'] == [{'kind': 'Deployment', 'name': NAME, 'body': {
        'metadata': {'annotations': {BASE: '{"backend": {"memory": {"base": "1Gi", "set": "2Gi"}}}'}},
        'spec': {'template': {'spec': {'containers': [{'name': 'backend', 'resources': {'limits': {'memory': '2Gi'}}}]}}}}}]
    assert limits(api) == {'limits': {'cpu': '1', 'memory': '2Gi'}, 'requests': {'cpu': '500m', 'memory': '512Mi'}}
    assert result['factors'] == {'memory': {'base': '1Gi', 'factor': 2.0, 'limit': '2Gi'}}
    assert result['diff'] == {'before': {'resources': result['before']['resources']},
                              'after': {'resources': result['after']['resources']}}
    assert result['after']['resources']['limits']['memory'] == '2Gi'
    assert stored(api)['metadata']['annotations'][REVISION] == '8'
    # Relative, yet idempotent: the recorded base is multiplied again.
    again = run(api, memory_factor=2)
    assert not again['changed'] and again['patches'] == [] and patches(api) == []
    assert again['factors'] == {'memory': {'base': '1Gi', 'factor': 2.0, 'limit': '2Gi'}}
    # Another factor is relative to the same original limit.
    triple = run(api, memory_factor=3, cpu_factor=1.5)
    assert triple['changed'], triple
    assert limits(api)['limits'] == {'cpu': '1500m', 'memory': '3Gi'}
    assert json.loads(stored(api)['metadata']['annotations'][BASE]) == {
        'backend': {'memory': {'base': '1Gi', 'set': '3Gi'}, 'cpu': {'base': '1', 'set': '1500m'}}}


def test_a_limit_changed_since_the_factor_is_the_new_base(api):
    run(api, memory_factor=2)
    changed = run(api, resources={'limits': {'memory': '1536Mi'}})  # someone else's change
    assert changed['changed'], changed
    result = run(api, memory_factor=2)
    assert result['changed'] and limits(api)['limits']['memory'] == '3Gi'
    assert result['factors']['memory']['base'] == '1536Mi'


def test_check_mode_is_a_dry_run(api):
    before = copy.deepcopy(api.objects)
    result = run(api, check_mode=True, memory_factor=2, cpu_factor=2)
    assert result['changed'] and not result.get('failed'), result
    assert [(r['path'].rsplit('/', 2)[1], r['query']) for r in patches(api)] == [('deployments', {'dryRun': ['All']})]
    assert api.objects == before
    assert result['after']['resources']['limits'] == {'cpu': '2', 'memory': '2Gi'}


def test_refusals_send_nothing(api):
    above = run(api, memory_factor=8)
    assert above['failed'] and patches(api) == []
    assert above['msg'] == ('Deployment dhakacart/dhakacart-backend: memory_factor 8 gives a memory limit of 8Gi (1Gi x 8), '
                            'above max_memory 4Gi: refusing; raise max_memory if 8Gi is intended')
    assert run(api, memory_factor=8, max_memory='8Gi')['changed']
    api.add(backend(limits={}))
    none = run(api, cpu_factor=2)
    assert none['failed'] and patches(api) == []
    assert none['msg'].endswith('cpu_factor multiplies the cpu limit of container backend, and it has none: '
                                'give resources.limits.cpu instead')

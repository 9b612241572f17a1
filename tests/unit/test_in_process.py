"""When an observe module's action plugin runs collect in the controller process, and when it
leaves the module to run on the target as usual."""

import importlib

import pytest

from ansible_collections.sre.runbooks.plugins.plugin_utils.in_process import runs_in_process

NO_ENVIRONMENT = [{}]  # what a task that sets no environment has


def test_a_local_connection_runs_in_process():
    assert runs_in_process('local', False, 0, NO_ENVIRONMENT)
    assert runs_in_process('local', False, 0, None)


@pytest.mark.parametrize('transport', ['ssh', 'paramiko', 'winrm', 'community.docker.docker',
                                       'ansible.netcommon.network_cli', 'psrp', None])
def test_any_other_connection_runs_the_module(transport):
    assert not runs_in_process(transport, False, 0, NO_ENVIRONMENT)


@pytest.mark.parametrize('become, async_val, environment', [
    (True, 0, NO_ENVIRONMENT),  # the module would run as another user
    (False, 60, NO_ENVIRONMENT),  # async needs a module process to poll
    (False, 0, [{'https_proxy': 'http://proxy:3128'}]),  # the module would see that environment
    (False, 0, ['{{ proxy_env }}']),
])
def test_a_local_task_the_module_would_run_differently_runs_the_module(become, async_val,
                                                                       environment):
    assert not runs_in_process('local', become, async_val, environment)


class Recorded:
    """A stand-in of ansible's Display: the warnings given."""
    said = []

    def warning(self, msg):
        self.said.append(msg)


def fallback_action(monkeypatch):
    """An in-process action plugin with a local task, whose module run is recorded, not done."""
    from types import SimpleNamespace

    from ansible.plugins.action import ActionBase

    from ansible_collections.sre.runbooks.plugins.action.prometheus_query_info import ActionModule
    monkeypatch.setattr(ActionBase, 'run', lambda self, tmp=None, task_vars=None: {})
    action = object.__new__(ActionModule)
    action._connection = SimpleNamespace(transport='local')
    action._play_context = SimpleNamespace(become=False, check_mode=False)
    action._task = SimpleNamespace(async_val=0, environment=[{}], args={'url': 'http://127.0.0.1:9', 'query': 'up'},
                                   resolved_action='sre.runbooks.prometheus_query_info')
    action._run_module = lambda result, task_vars: dict(result, ran='as a process')
    return action


def drop_no_log_values(monkeypatch):
    from ansible.module_utils.common import arg_spec
    validate = arg_spec.ArgumentSpecValidator.validate

    def without(self, *args, **kwargs):
        result = validate(self, *args, **kwargs)
        del result._no_log_values
        return result
    monkeypatch.setattr(arg_spec.ArgumentSpecValidator, 'validate', without)


def delete(module, name):
    """Removes module.name, also when the module's __getattr__ serves it (a deprecation shim)."""
    def remove(mp):
        target = importlib.import_module(module)
        if name in vars(target):
            mp.delattr(target, name)
            return
        served = target.__getattr__

        def lookup(attr):
            if attr == name:
                raise AttributeError(attr)
            return served(attr)
        mp.setattr(target, '__getattr__', lookup)
    return remove


REMOVALS = {
    'ansible.module_utils.common.arg_spec.ArgumentSpecValidator': delete('ansible.module_utils.common.arg_spec', 'ArgumentSpecValidator'),
    'ValidationResult._no_log_values': drop_no_log_values,
    'ansible.module_utils.common.parameters.remove_values': delete('ansible.module_utils.common.parameters', 'remove_values'),
    'ansible.module_utils.common.json.AnsibleJSONEncoder': delete('ansible.module_utils.common.json', 'AnsibleJSONEncoder'),
    'ansible.module_utils.errors.UnsupportedError': delete('ansible.module_utils.errors', 'UnsupportedError'),
}


@pytest.mark.parametrize('internal', sorted(REMOVALS))
def test_without_an_internal_the_module_runs_as_a_process_with_one_warning(monkeypatch, internal):
    from ansible_collections.sre.runbooks.plugins.plugin_utils import in_process
    assert set(REMOVALS) == set(in_process.INTERNALS)
    assert in_process.missing_internal() is None
    monkeypatch.setattr(in_process, 'Display', Recorded)
    monkeypatch.setattr(in_process, '_warned', [])
    monkeypatch.setattr(Recorded, 'said', [])
    REMOVALS[internal](monkeypatch)
    assert in_process.missing_internal() == internal
    action = fallback_action(monkeypatch)
    assert action.run(task_vars={}) == {'ran': 'as a process'}
    assert action.run(task_vars={}) == {'ran': 'as a process'}
    assert Recorded.said == ["sre.runbooks: this ansible-core has no %s; the collection's modules run as processes "
                             "instead of in the controller (slower, same results)" % internal]

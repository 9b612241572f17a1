"""When an observe module's action plugin runs collect in the controller process, and when it
leaves the module to run on the target as usual."""

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

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The observe modules, and the acting ones over an HTTP API, in the controller process when their
task runs there.

A module task costs about half a second (AnsiballZ, a new process, Python start-up) for what is
mostly waiting on an API. When the module would run on the controller anyway, its action plugin
runs the same collect function in this process; elsewhere the module runs on the target as usual.
"""

from __future__ import annotations

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.sre.runbooks.plugins.module_utils.collector import CollectError
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import ApiError


def runs_in_process(transport, become, async_val, environment):
    """Whether a task can run in this process: its module would run on this machine (a local
    connection), as this user, in this environment (the task's is a list of mappings, [{}] when
    it sets none) and synchronously."""
    return transport == 'local' and not (become or async_val or any(environment or ()))


class InProcessAction(ActionBase):
    """The action plugin of a read-only module whose module_utils/<module>.py, set as `collector`,
    holds its SPEC and collect(params, warn) (see module_utils/collector.py)."""

    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True
    collector = None

    def spec(self):
        return self.collector.SPEC

    def execute(self, params, warn):
        """The task's result; raises CollectError."""
        return dict(changed=False, **self.collector.collect(params, warn))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # no effect since Ansible 2.6
        if not runs_in_process(self._connection.transport, self._play_context.become,
                               self._task.async_val, self._task.environment):
            return self._run_module(result, task_vars)
        # Validation errors name the plugin by _load_name: the module's name, as the module says.
        self._load_name = self._task.resolved_action
        validation, params = self.validate_argument_spec(**self.spec())
        warnings = []
        try:
            result.update(self.execute(params, warnings.append))
        except CollectError as err:
            result.update(failed=True, msg=err.msg, **err.extra)
        if warnings:
            result['warnings'] = warnings
        result['invocation'] = {'module_args': params}
        # As AnsibleModule returns it: every no_log value masked, wherever it appears.
        return remove_values(result, validation._no_log_values)

    def _run_module(self, result, task_vars):
        """The module on the target, as ansible.builtin.normal runs it."""
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name=self._task.resolved_action,
                                           task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result


class InProcessApiAction(InProcessAction):
    """The action plugin of an acting module over an HTTP API whose module_utils, set as `api`,
    holds ARGUMENT_SPEC, CONSTRAINTS and run(params, check_mode) (collector.run_api_module)."""

    api = None

    def spec(self):
        return dict(argument_spec=self.api.ARGUMENT_SPEC, **self.api.CONSTRAINTS)

    def execute(self, params, warn):
        try:
            return self.api.run(params, self._play_context.check_mode)
        except ApiError as err:
            raise CollectError(str(err), status_code=err.status, response=err.body)

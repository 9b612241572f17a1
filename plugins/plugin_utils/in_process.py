# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The observe modules, and the acting ones over an HTTP API, in the controller process when their
task runs there.

A module task costs about half a second (AnsiballZ, a new process, Python start-up) for what is
mostly waiting on an API. When the module would run on the controller anyway, its action plugin
runs the same body in this process; elsewhere the module runs on the target as usual.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

from ansible.module_utils import errors
from ansible.module_utils.common import arg_spec, parameters
from ansible.module_utils.common import json as common_json
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.sre.runbooks.plugins.module_utils.common.module import result_of

# What the in-process path takes from ansible-core beyond the action plugin API, some of it
# private: where one is missing (another ansible-core), the modules run as processes instead.
INTERNALS = {
    'ansible.module_utils.common.arg_spec.ArgumentSpecValidator': lambda: arg_spec.ArgumentSpecValidator,
    'ValidationResult._no_log_values': lambda: arg_spec.ArgumentSpecValidator({}).validate({})._no_log_values,
    'ansible.module_utils.common.parameters.remove_values': lambda: parameters.remove_values,
    'ansible.module_utils.common.json.AnsibleJSONEncoder': lambda: common_json.AnsibleJSONEncoder,
    'ansible.module_utils.errors.UnsupportedError': lambda: errors.UnsupportedError,
}
_warned = []


def missing_internal():
    """The first internal of INTERNALS that this ansible-core lacks, or None."""
    for name, get in INTERNALS.items():
        try:
            get()
        except (AttributeError, TypeError):
            return name
    return None


def warn_once(missing):
    """Says once per controller process that the modules run as processes, and why."""
    if not _warned:
        _warned.append(missing)
        Display().warning('sre.runbooks: this ansible-core has no %s; the collection\'s modules run as processes '
                          'instead of in the controller (slower, same results)' % missing)


def refusal(validation, module_name):
    """The message of AnsibleModule for arguments its validation refused."""
    msg = validation.errors.msg
    if isinstance(validation.errors[0], errors.UnsupportedError):
        msg = 'Unsupported parameters for (%s) module: %s' % (module_name, msg)
    return msg


def path_facts(result):
    """The result with what AnsibleModule adds when its `path` (or `dest`) exists: the file's
    owner, group, mode, kind and size (not its SELinux context)."""
    path = result.get('path', result.get('dest'))
    if path is None or not os.path.exists(path):
        return result
    st = os.lstat(path)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    if os.path.islink(path):
        kind = 'link'
    elif os.path.isdir(path):
        kind = 'directory'
    else:
        kind = 'hard' if os.stat(path).st_nlink > 1 else 'file'
    return dict(result, uid=st.st_uid, gid=st.st_gid, owner=owner, group=group,
                mode='0%03o' % stat.S_IMODE(st.st_mode), state=kind, size=st.st_size)


def runs_in_process(transport, become, async_val, environment):
    """Whether a task can run in this process: its module would run on this machine (a local
    connection), as this user, in this environment (the task's is a list of mappings, [{}] when
    it sets none) and synchronously."""
    return transport == 'local' and not (become or async_val or any(environment or ()))


class InProcessAction(ActionBase):
    """The action plugin of a module whose body, module_utils/<module>.py, is set as `body`
    (see module_utils/common/module.py)."""

    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True
    body = None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # no effect since Ansible 2.6
        if not runs_in_process(self._connection.transport, self._play_context.become,
                               self._task.async_val, self._task.environment):
            return self._run_module(result, task_vars)
        missing = missing_internal()
        if missing:
            warn_once(missing)
            return self._run_module(result, task_vars)
        # The arguments as the module receives them: plain JSON values (ansible-core's tagged
        # strings would name their class in a refusal), validated as AnsibleModule validates them.
        args = json.loads(json.dumps(self._task.args, cls=common_json.AnsibleJSONEncoder))
        validation = arg_spec.ArgumentSpecValidator(**self.body.SPEC).validate(args)
        params = validation.validated_parameters
        if validation.error_messages:
            result.update(failed=True, msg=refusal(validation, self._task.resolved_action))
        else:
            warnings = []
            result.update(path_facts(result_of(self.body, params, self._play_context.check_mode,
                                               warnings.append)))
            if warnings:
                result['warnings'] = warnings
        result['invocation'] = {'module_args': params}
        # As AnsibleModule returns it: every no_log value masked, wherever it appears.
        return parameters.remove_values(result, validation._no_log_values)

    def _run_module(self, result, task_vars):
        """The module on the target, as ansible.builtin.normal runs it."""
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name=self._task.resolved_action,
                                           task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

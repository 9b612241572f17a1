# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules share: the read-only observe modules wherever they run, and the acting
modules over an HTTP API (run_api_module).

Each of them has, in module_utils/<module>.py, SPEC (the keyword arguments of both AnsibleModule
and ActionBase.validate_argument_spec: argument_spec and its constraints) and
collect(params, warn), which returns the result or raises CollectError. The module runs collect
on the target; its action plugin runs it in the controller process when the task runs there.
"""

from __future__ import annotations

from ansible_collections.sre.runbooks.plugins.module_utils.http_client import ApiError


class CollectError(Exception):
    """A failure, phrased for the person who reads it; extra: keys returned with it."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def run_api_module(module, run):
    """Runs an acting module: run(params, check_mode) returns its result; an ApiError fails the
    task with the HTTP status and body that came back, a CollectError with its message."""
    try:
        result = run(module.params, module.check_mode)
    except ApiError as err:
        module.fail_json(msg=str(err), status_code=err.status, response=err.body)
    except CollectError as err:
        module.fail_json(msg=err.msg, **err.extra)
    module.exit_json(**result)


def run_module(module, collect):
    """Runs collect with the module's parameters and exits with its result, never changed."""
    try:
        result = collect(module.params, module.warn)
    except CollectError as err:
        module.fail_json(msg=err.msg, **err.extra)
    module.exit_json(changed=False, **result)

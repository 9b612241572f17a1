# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way a module runs and fails, as a process on its target or in the controller's process
(plugin_utils/in_process.py).

A module's body, module_utils/<module>.py, holds SPEC (the keyword arguments of AnsibleModule and
of ActionBase.validate_argument_spec: argument_spec and its constraints) and either
collect(params, warn), which reads and changes nothing, or run(params, check_mode), which acts.
Either fails by raising RunbookError (common/errors.py); anything else is a bug and shows as one.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError


def outcome(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The task's result of call(): what it returns, or failed with a RunbookError's message and
    details."""
    try:
        return call()
    except RunbookError as err:
        return dict(err.details, failed=True, msg=err.msg)


def result_of(body: ModuleType, params: dict[str, Any], check_mode: bool, warn: Callable[[str], Any]) -> dict[str, Any]:
    """The task's result of a module body (see above)."""
    if hasattr(body, 'collect'):
        return outcome(lambda: dict(changed=False, **body.collect(params, warn)))
    return outcome(lambda: body.run(params, check_mode))


def finish(module: Any, result: dict[str, Any]) -> None:
    """Exits the module with the result outcome() gave."""
    if result.pop('failed', False):
        module.fail_json(**result)
    else:
        module.exit_json(**result)


def run_module(module: Any, body: ModuleType) -> None:
    """main() of a module whose body is in module_utils/<module>.py."""
    finish(module, result_of(body, module.params, module.check_mode, module.warn))

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the read-only observe modules share, wherever they run.

Each of them has, in module_utils/<module>.py, SPEC (the keyword arguments of both AnsibleModule
and ActionBase.validate_argument_spec: argument_spec and its constraints) and
collect(params, warn), which returns the result or raises CollectError. The module runs collect
on the target; its action plugin runs it in the controller process when the task runs there.
"""

from __future__ import annotations


class CollectError(Exception):
    """A failure, phrased for the person who reads it; extra: keys returned with it."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def run_module(module, collect):
    """Runs collect with the module's parameters and exits with its result, never changed."""
    try:
        result = collect(module.params, module.warn)
    except CollectError as err:
        module.fail_json(msg=err.msg, **err.extra)
    module.exit_json(changed=False, **result)

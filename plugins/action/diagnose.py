# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.diagnose on the controller: the rules are pure computation, so no module process
(about half a second a task) is started for them."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.sre.runbooks.plugins.module_utils.diagnosis import (
    ARGUMENT_SPEC, diagnose, options_from_params)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        del validation
        try:
            options = options_from_params(params)
        except ValueError as err:
            result.update(failed=True, msg='invalid option %s' % err)
            return result
        result.update(changed=False, **diagnose(params['incident'], options))
        return result

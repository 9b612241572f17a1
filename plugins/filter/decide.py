# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's decisions as filters (module_utils/analysis/decisions.py): the roles render and dispatch."""

from __future__ import annotations

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.crashes import crash_loop_measurement
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import confirmed_step, escalation_reasons, evidence, mitigation_step


class FilterModule:
    def filters(self):
        return {'evidence': evidence, 'mitigation_step': mitigation_step, 'confirmed_step': confirmed_step,
                'escalation_reasons': escalation_reasons, 'crash_loop': crash_loop_measurement}

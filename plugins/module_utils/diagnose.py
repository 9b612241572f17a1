# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.diagnose: the runbook's rules (module_utils/analysis/diagnosis.py, pure) over the incident;
those of the response time (analysis/slowness.py) when the incident's symptom is the latency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import ARGUMENT_SPEC, diagnose, options_from_params
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.slowness import diagnose_latency
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.symptoms import symptom_of
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError

SPEC = dict(argument_spec=ARGUMENT_SPEC)


def collect(params: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    del warn  # what the rules could not see is in the result (missing_evidence)
    try:
        options = options_from_params(params)
    except ValueError as err:
        raise RunbookError('invalid option %s' % err)
    rules = diagnose_latency if symptom_of(params['incident']) == 'latency' else diagnose
    return rules(params['incident'], options)

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The symptom a runbook acts on, by the key of its triage measurement in the `incident` fact:
High Error Rate's error rate (error_rate_info), High Response Time's (latency_info), Pod Crash
Loop's containers that keep crashing or cannot start (analysis/crashes.py, from the service_down
checks). The
incident's `symptom` names it; without one, it is the error rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYMPTOMS = {'error_rate': 'the error rate', 'latency': 'the response time', 'crash_loop': 'the crash loop'}
# The runbook that acts on each symptom.
RUNBOOKS = {'error_rate': 'High Error Rate', 'latency': 'High Response Time', 'crash_loop': 'Pod Crash Loop'}
# The verdicts of each measurement that call for the runbook.
BAD_VERDICTS = {'error_rate': ('warning', 'critical'), 'latency': ('slow',), 'crash_loop': ('crash_loop',)}


def symptom_of(incident: Mapping[str, Any] | None) -> str:
    return (incident or {}).get('symptom') or 'error_rate'


def symptom_measurement(incident: Mapping[str, Any] | None) -> dict[str, Any]:
    """The triage's measurement of the incident's symptom, {} when not taken."""
    return ((incident or {}).get('triage') or {}).get(symptom_of(incident)) or {}


def runbook_of(incident: Mapping[str, Any] | None) -> str:
    """'High Error Rate', 'High Response Time' or 'Pod Crash Loop'."""
    return RUNBOOKS[symptom_of(incident)]

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the runbook does next, decided from the `incident` fact; the roles render and dispatch.

Weak evidence (too little or no traffic, a measurement that failed or came back partial, a
metric or label that matches nothing) never leads to an action or a page: its outcome is
`insufficient_evidence`, said plainly. Escalation is for real failures: an action that did not
help, a fix that cannot be verified, a suspected database or infrastructure problem, several
services failing.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.actions import action_call, platform_of
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.symptoms import SYMPTOMS, symptom_measurement, symptom_of

# Outcomes that never page: nothing was wrong, or nothing was proven.
QUIET_OUTCOMES = ('resolved', 'no_action', 'insufficient_evidence', 'recovered', 'joined', 'planned')


def _failed(part: Any) -> bool:
    return isinstance(part, dict) and bool(part.get('failed'))


def evidence(incident: dict[str, Any] | None, sources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the triage proves: {'sufficient': bool, 'gaps': [why not], 'missing': ['source: why'],
    'healthy': bool}; sources: {name: a task's result}, of which the failed ones are missing.

    A service that is down is evidence by itself; otherwise the symptom (SYMPTOMS) must have been
    measured, on enough traffic, completely. Healthy: the alert has cleared by the time the run
    looks (the symptom measured under its thresholds, on enough traffic, health checks passing).
    """
    triage = (incident or {}).get('triage') or {}
    symptom = symptom_of(incident)
    measured = symptom_measurement(incident)
    verdict = measured.get('verdict')
    gaps: list[str] = []
    if not measured or _failed(measured):
        gaps.append('%s was not measured: %s' % (SYMPTOMS[symptom], measured.get('msg') or 'no result'))
    elif verdict == 'no_traffic':
        gaps.append('no traffic to judge: %s' % measured.get('message', 'no requests'))
    elif verdict == 'low_traffic':
        gaps.append('too little traffic to judge: %s' % measured.get('message', ''))
    elif verdict == 'insufficient_evidence':
        gaps.append('%s cannot be judged: %s' % (SYMPTOMS[symptom], measured.get('message', '')))
    elif measured.get('partial'):
        gaps.append('Prometheus warned that the figures may be partial: %s'
                    % '; '.join(measured.get('query_warnings') or ['no detail']))
    down = bool(triage.get('service_down'))
    missing = ['%s: %s' % (name, result.get('msg') or 'failed')
               for name, result in sorted((sources or {}).items()) if _failed(result)]
    return {'sufficient': down or not gaps, 'gaps': gaps, 'missing': missing,
            'healthy': not down and not gaps and verdict == 'ok'}


def _step(attempt: int, action: dict[str, Any], call: dict[str, Any] | None, decision: str, reason: str | None) -> dict[str, Any]:
    return {'attempt': attempt, 'action': action, 'call': call, 'decision': decision, 'reason': reason}


def mitigation_step(incident: dict[str, Any] | None, attempt: int, explicit_action: dict[str, Any] | None = None, mode: str = 'approve',
                    allowed_actions: Container[str] = (), allow_partial: bool = False, platform: str | None = None) -> dict[str, Any]:
    """The decision of one attempt: act, advise, insufficient (weak evidence: nothing done, no
    page), escalate (nothing safe left for the collection to do) or none (nothing to mitigate).

    `call` is the action as the role dispatches it on `platform` (default the incident's, else
    compose): {'module', 'params', 'disruption'} (analysis/actions.py), the one the diagnosis
    planned or, for an explicit action, made from it and the incident; None without an action or
    when no module of the collection does it there."""
    incident = incident or {}
    diagnosis = incident.get('diagnosis') or {}
    plan = diagnosis.get('plan') or []
    action = explicit_action or (plan[attempt - 1] if attempt <= len(plan) else {}).get('action') or {}
    platform = platform_of(platform or incident.get('platform'))
    call = action_call(action, platform, incident) if action else None

    proof = evidence(incident)
    triage = incident.get('triage') or {}
    # Once an earlier attempt acted and did not help, what is left is a real failure: escalate.
    weak = 'escalate' if any(a.get('acted') for a in (incident.get('mitigation') or {}).get('attempts') or []) \
        else 'insufficient'
    if not explicit_action and not proof['sufficient']:
        return _step(attempt, action, call, 'insufficient', 'not enough evidence: ' + '; '.join(proof['gaps']))
    symptom = symptom_of(incident)
    if not explicit_action and (triage.get(symptom) or {}).get('verdict') == 'ok' \
            and not triage.get('service_down'):
        return _step(attempt, action, call, 'none', '%s is ok: nothing to mitigate' % SYMPTOMS[symptom])
    shared = _shared_cause(incident)
    if shared and not explicit_action:
        return _step(attempt, action, call, 'escalate', 'the cause is not this service\'s own: %s' % shared)
    if not action:
        if attempt > 1:
            return _step(attempt, action, call, 'escalate', 'no further action in the plan')
        missing = diagnosis.get('missing_evidence') or []
        reason = ((diagnosis.get('action') or {}).get('params') or {}).get('reason') \
            or 'no action in the diagnosis'
        if missing:
            return _step(attempt, action, call, weak,
                         'not enough evidence to choose an action (%s): %s' % (reason, '; '.join(missing)))
        return _step(attempt, action, call, 'escalate', reason)
    description = action.get('description') or action.get('name')
    if action.get('name') not in allowed_actions:
        return _step(attempt, action, call, 'escalate',
                     '%s is left to a human (not in mitigate_allowed_actions)' % description)
    if call is None:
        return _step(attempt, action, call, 'escalate', '%s is left to a human (no module of the collection does it on %s)'
                     % (description, platform))
    if call['disruption'] != 'none' and diagnosis.get('partial') and not allow_partial:
        return _step(attempt, action, call, weak,
                     'not enough evidence to %s, which interrupts the service: %s' % (
                         description, '; '.join(diagnosis.get('partial_reasons') or diagnosis.get('missing_evidence')
                                                or ['the evidence is partial'])))
    if mode == 'advise':
        return _step(attempt, action, call, 'advise', 'advice only (mitigate_mode=advise): %s' % description)
    return _step(attempt, action, call, 'act', description)


def confirmed_step(step: dict[str, Any], measurement: dict[str, Any] | None, incident: dict[str, Any] | None = None) -> dict[str, Any]:
    """The step to act, once the symptom (the error rate, or the response time) measured again just
    before acting still bears it out.
    Not measured (Prometheus gone since the diagnosis, too little traffic, partial figures): nothing
    is done on evidence that can no longer be checked (insufficient). Back under the thresholds:
    none. A service found down stands on its health checks; other decisions pass unchanged."""
    if step.get('decision') != 'act' or not measurement or measurement.get('skipped') \
            or ((incident or {}).get('triage') or {}).get('service_down'):
        return step
    symptom = symptom_of(incident)
    gaps = evidence({'symptom': symptom, 'triage': {symptom: measurement}})['gaps']
    if gaps:
        return dict(step, decision='insufficient',
                    reason='not confirmed before acting: ' + '; '.join(gaps))
    if measurement.get('verdict') == 'ok':
        figure = ('%s%%' % measurement.get('error_percent') if symptom == 'error_rate'
                  else '; '.join((measurement.get('overall') or {}).get('reasons') or []) or 'ok')
        return dict(step, decision='none', reason='%s is back under the thresholds since the diagnosis '
                    '(%s): nothing to mitigate' % (SYMPTOMS[symptom], figure))
    return step


def _shared_cause(incident: Mapping[str, Any]) -> str | None:
    """The storm's shared cause in words, when this service fails through it (analysis/storm.py)."""
    storm = incident.get('storm') or {}
    cause = storm.get('shared_cause')
    if not cause or storm.get('role') != 'shared':
        return None
    return '%s %s fails (%s), and %d services fail through it: %s' % (
        cause['kind'], cause['name'], '; '.join(cause['evidence'][1:] or cause['evidence']),
        len(cause['services']), ', '.join(cause['services']))


def _storm_reason(incident: Mapping[str, Any], several_services: int) -> str | None:
    """The one escalation of a storm, said by one run only: the leader's, naming the shared cause,
    or without one, the first failing service's."""
    storm = incident['storm']
    cause, failing = storm.get('shared_cause'), storm.get('failing') or []
    if cause and storm.get('leader') == incident.get('service'):
        return '%d services fail through %s %s: %s' % (
            len(cause['services']), cause['kind'], cause['name'], '; '.join(cause['evidence']))
    if not cause and several_services > 1 and len(failing) >= several_services and failing[0] == incident.get('service'):
        return 'several services answer 5xx, with no shared cause found: %s' % ', '.join(failing)
    return None


def escalation_reasons(incident: dict[str, Any] | None, stage: str, affected_services: Sequence[str] = (), several_services: int = 2,
                       elapsed_seconds: float = 0.0, no_improvement_after: str = '15m', no_improvement_seconds: float = 900.0,
                       improvement_ratio: float = 0.5) -> list[str]:
    """Why to page the escalation target now, or []. At `diagnosis`: a storm (said once, by its
    leader, naming the shared cause) or several services failing,
    or the database or the infrastructure suspected on sufficient evidence. At `outcome`: the
    run escalated (an action failed or did not help, a fix that could not be verified, nothing
    safe left), or the error rate has not improved within no_improvement_after."""
    incident = incident or {}
    if (incident.get('escalation') or {}).get('told'):
        return []
    reasons: list[str] = []
    if stage == 'diagnosis':
        if incident.get('storm'):
            reason = _storm_reason(incident, several_services) if evidence(incident)['sufficient'] else None
            reasons += [reason] if reason else []
        elif several_services > 1 and len(affected_services) >= several_services:
            reasons.append('several services answer 5xx: %s' % ', '.join(affected_services))
        diagnosis = incident.get('diagnosis') or {}
        if evidence(incident)['sufficient']:
            for part in ('database', 'infrastructure'):
                if (diagnosis.get('recommended') or {}).get(part):
                    reasons.append('the %s is suspected: %s' % (part, diagnosis.get('summary', '')))
        return reasons
    outcome = incident.get('outcome')
    if outcome == 'escalated':
        reasons.append((incident.get('escalation') or {}).get('reason') or 'no safe action left')
    first, last, words = _symptom_figures(incident)
    current = first if last is None else last
    # Not enough evidence to act on a proven incident still escalates when nothing improves.
    quiet = outcome in QUIET_OUTCOMES and not (outcome == 'insufficient_evidence' and evidence(incident)['sufficient'])
    if not quiet and elapsed_seconds >= no_improvement_seconds \
            and first is not None and current is not None and current > improvement_ratio * first:
        reasons.append('no improvement within %s: %s' % (no_improvement_after, words % (current, first)))
    return reasons


def _symptom_figures(incident: Mapping[str, Any]) -> tuple[float | None, float | None, str]:
    """(at triage, at the last verification, words for (now, at triage)) of the symptom: the 5xx
    percent, or the response time's highest quantile in seconds."""
    triage, verify = incident.get('triage') or {}, incident.get('verify') or {}
    if symptom_of(incident) == 'error_rate':
        return (triage.get('error_rate') or {}).get('error_percent'), verify.get('last_percent'), '%s%% errors, %s%% at triage'
    latency = triage.get('latency') or {}
    quantile = latency.get('verdict_quantile') or 'p99'
    first = (((latency.get('overall') or {}).get('percentiles') or {}).get(quantile) or {}).get('seconds')
    return first, verify.get('last_seconds'), quantile + ' %s s, %s s at triage'

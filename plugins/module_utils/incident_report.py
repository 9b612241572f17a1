# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident document and the post-mortem invite, rendered from the `incident` fact.

Pure: no I/O, no clock. Everything derives from the incident, so the same incident renders the
same bytes (a rerun changes nothing). A partial incident (a run that failed after triage) still
renders: every section says what is not known instead of failing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import duration_text
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.symptoms import RUNBOOKS, SYMPTOMS, runbook_of, symptom_of
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError, read_text, write_atomic
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment
from ansible_collections.sre.runbooks.plugins.module_utils.render.links import grafana_dashboard, graph_words, prometheus_graph
from ansible_collections.sre.runbooks.plugins.module_utils.render.markers import ended_at, failure, incident_markers
from ansible_collections.sre.runbooks.plugins.module_utils.render.markers import get as _get
from ansible_collections.sre.runbooks.plugins.module_utils.render.svg_chart import error_rate_chart, incident_chart, seconds_axis

DEFAULT_ATTENDEES = ('Incident Commander', 'On-call engineer', 'Service owner', 'Observability lead')
ARGUMENT_SPEC = dict(
    incident=dict(type='dict', required=True),
    directory=dict(type='path', default='incidents'),
    postmortem=dict(type='dict', default={}, options=dict(
        attendees=dict(type='list', elements='str', default=list(DEFAULT_ATTENDEES)),
        organizer=dict(type='str'),
        within_hours=dict(type='int', default=48),
        duration_minutes=dict(type='int', default=60),
    )),
    follow_ups=dict(type='list', elements='str', default=[]),
    prometheus_url=dict(type='str'),
    grafana_url=dict(type='str'),
    grafana_dashboard=dict(type='str'),
)
SPEC = dict(argument_spec=ARGUMENT_SPEC)

# Post-mortem slots: whole hours, UTC, Monday to Friday, starting from 10:00 and ending by 17:00,
# at least PREP_HOURS after the incident ended so that the document can be shared first.
WORKING_HOURS = (10, 17)
PREP_HOURS = 4

PRODID = '-//sre.runbooks//incident_report//EN'


def iso(moment: datetime | None) -> str:
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment else 'not known'


def file_stem(started: datetime, symptom: str = 'error_rate') -> tuple[str, str]:
    """('YYYY-MM', 'incident-YYYYMMDD-HHmm-high-error-rate') for the incident's start
    (high-response-time for the response time, pod-crash-loop for a crash loop)."""
    runbook = RUNBOOKS[symptom].lower().replace(' ', '-')
    return started.strftime('%Y-%m'), started.strftime('incident-%Y%m%d-%H%M-') + runbook


CHANNELS = {'pagerduty': 'PagerDuty', 'slack': 'Slack', 'statuspage': 'the status page', 'grafana': 'Grafana'}
# How an escalation reason starts when a fix was applied and its effect could not be measured.
UNVERIFIED = 'acted, could not verify'
VERDICTS = {'low_traffic': 'too little traffic', 'no_traffic': 'no traffic'}


def attempts(incident: dict[str, Any]) -> list[dict[str, Any]]:
    return _get(incident, 'mitigation.attempts', [])


def unverified(incident: dict[str, Any]) -> bool:
    """Whether a fix was applied and its effect could not be measured."""
    acted = any(a.get('acted') for a in attempts(incident))
    return str(_get(incident, 'escalation.reason', '')).startswith(UNVERIFIED) or (
        acted and _get(incident, 'verify.verdict') == 'not_measured')


def not_approved(incident: dict[str, Any]) -> bool:
    """Whether the last attempt waited for an approval that was declined, denied or timed out."""
    tried = attempts(incident)
    return bool(tried) and str(tried[-1].get('reason') or '').startswith('not approved')


def last_action(incident: dict[str, Any], applied: bool = True) -> str:
    """The description of the last action applied (of the last attempt, applied or not, when
    not `applied`), else of the one recommended."""
    tried = [a for a in attempts(incident) if a.get('acted') or not applied]
    return (tried[-1].get('description') if tried else None) or _get(
        incident, 'diagnosis.recommended.action.description') or _get(
        incident, 'diagnosis.action.description') or 'no action'


def outcome_words(incident: dict[str, Any]) -> str:
    """What the run's outcome means, in words ('' for an outcome without any)."""
    outcome = _get(incident, 'outcome')
    attempts = _get(incident, 'mitigation.attempts', []) or [{}]
    # The triage's gaps, or what a later measurement (the one before acting) could not confirm.
    gaps = '; '.join(str(g) for g in _get(incident, 'evidence.gaps', [])) or \
        (attempts[-1].get('reason') if attempts[-1].get('decision') == 'insufficient' else '')
    if outcome == 'escalated':
        return ('a fix was applied (%s) and could not be verified' % last_action(incident) if unverified(incident)
                else 'escalated: %s' % _get(incident, 'escalation.reason', 'no reason recorded'))
    return {
        'open': 'under investigation',
        'mitigating': 'a fix was applied (%s), being verified' % last_action(incident),
        'resolved': ('the containers run ready with no restart, verified' if symptom_of(incident) == 'crash_loop'
                     else '%s is back under target, verified' % SYMPTOMS[symptom_of(incident)]),
        'mitigated': 'a fix was applied (%s); verification is off, so it is not verified' % last_action(incident),
        'advised': 'a fix is recommended (%s), %snot applied' % (last_action(incident, applied=False), 'not approved, ' * not_approved(incident)),
        'planned': 'check mode: %s planned, nothing changed' % last_action(incident, applied=False),
        'no_action': 'no action was needed',
        'insufficient_evidence': 'not enough evidence%s: nothing was done and nobody was paged'
                                 % (' (%s)' % gaps if gaps else ''),
        'recovered': 'recovered before the runbook ran: nothing was done',
        'joined': 'another run handles this incident; this run only added its alert',
        'failed': 'the run failed: %s' % _get(incident, 'failure.msg', 'no message'),
    }.get(outcome, '')


def outcome_text(incident: dict[str, Any]) -> str:
    """The outcome and what it means: 'advised: a fix is recommended (...), not applied'."""
    words = outcome_words(incident)
    outcome = incident.get('outcome') or 'not known'
    return '%s: %s' % (outcome, words) if words else outcome


def sample_text(sample: dict[str, Any]) -> str:
    """One verification sample: its error rate (or response time) and traffic, no traffic, or no
    measurement."""
    if fmt.number(sample.get('seconds')) is not None:
        return '%s at %s' % (duration_text(sample['seconds']), fmt.rate(sample.get('request_rate'), unit=True))
    if fmt.number(sample.get('error_percent')) is not None:
        return '%s errors at %s' % (fmt.percent(sample['error_percent'], 2),
                                    fmt.rate(sample.get('request_rate'), unit=True))
    measured = sample.get('measured')
    if measured is False or measured is None and fmt.number(sample.get('request_rate')) is None:
        return 'not measured'
    return fmt.NO_TRAFFIC


def not_measured(verify: dict[str, Any]) -> bool:
    """Whether a verification could not tell: its verdict says so (or, without one, its last
    measurement failed)."""
    verdict = verify.get('verdict')
    return verdict == 'not_measured' or verdict is None and verify.get('measured') is False


def verify_text(verify: dict[str, Any]) -> str:
    if not_measured(verify):
        return 'not measured (%s)' % (verify.get('unmeasured_reason') or 'no measurement succeeded')
    return verify.get('message') or 'no message'


def timeline(incident: dict[str, Any]) -> list[tuple[datetime | None, str]]:
    """[(time or None, text)] of every step and action, in time order; untimed ones last."""
    events: list[tuple[datetime | None, str]]
    events = [(moment(incident.get('started_at')), 'Runbook run started (incident %s)'
               % incident.get('id', 'without id'))]
    latency = _get(incident, 'triage.latency')
    if latency:
        if latency.get('onset_iso'):
            events.append((moment(latency['onset_iso']), 'Slowdown began (%s)' % (latency.get('shape') or 'shape not known')))
        events.append((moment(latency.get('evaluated_at')), 'Triage: %s' % (latency.get('message') or 'response time measured')))
    rate = _get(incident, 'triage.error_rate')
    if rate:
        if rate.get('onset_iso'):
            events.append((moment(rate['onset_iso']), 'Errors began (%s)' % (rate.get('shape') or 'shape not known')))
        events.append((moment(rate.get('evaluated_at')), 'Triage: %s' % (rate.get('message') or 'error rate measured')))
    for change in _get(incident, 'triage.changes', []):
        events.append((moment(change.get('time_iso') or change.get('time')),
                       'Change: %s' % (change.get('summary') or change.get('kind') or 'a change')))
    logs = _get(incident, 'investigate.logs')
    if logs:
        events.append((moment(logs.get('until_iso')), 'Investigation: %s' % (logs.get('summary') or 'logs searched')))
    diagnosis = incident.get('diagnosis')
    if diagnosis:
        events.append((moment(diagnosis.get('at')), 'Diagnosis: %s' % (diagnosis.get('summary') or 'no decision')))
    for number, attempt in enumerate(attempts(incident), 1):
        events.append((moment(attempt.get('at')), 'Attempt %s: %s, %s (%s)' % (
            attempt.get('attempt') or number, attempt.get('decision'), attempt.get('description'),
            'applied' if attempt.get('acted') else 'nothing changed')))
    samples = _get(incident, 'verify.samples', [])
    picks = [('first', samples[0]), ('last', samples[-1])] if len(samples) > 1 else [
        ('only', sample) for sample in samples]
    for label, sample in picks:
        events.append((moment(sample.get('time_iso') or sample.get('time')),
                       'Verify, %s sample: %s' % (label, sample_text(sample))))
    if incident.get('verify'):
        events.append((ended_at(incident), 'Verify: %s' % verify_text(incident['verify'])))
    if incident.get('escalation'):
        escalation = incident['escalation']
        events.append((moment(escalation.get('at')), 'Escalated: %s' % (escalation.get('reason') or 'no reason recorded')))
    for told in _get(incident, 'communication.log', []):
        events.append((moment(told.get('at')), 'Told %s (%s): %s%s' % (
            CHANNELS.get(told.get('channel'), told.get('channel')), told.get('event'),
            'sent' if told.get('ok') else 'FAILED', ', ' + told['detail'] if told.get('detail') else '')))
    if incident.get('failure'):
        failure = incident['failure']
        events.append((moment(failure.get('at')), 'Run failed at "%s": %s'
                       % (failure.get('task'), failure.get('msg'))))
    known = sorted(((t, text) for t, text in events if t is not None), key=lambda e: e[0])
    return known + [e for e in events if e[0] is None]


def graph_kind(incident: dict[str, Any]) -> str:
    """What the incident's graph shows, as its file names it: 'response-time' for a High Response
    Time incident, else 'error-rate'."""
    return 'response-time' if symptom_of(incident) == 'latency' else 'error-rate'


def graph_alt(incident: dict[str, Any]) -> str:
    """The words of the document's image: what its graph shows."""
    if graph_kind(incident) == 'response-time':
        latency = _get(incident, 'triage.latency', {})
        return 'Response time (%s) during the incident%s, with the deploys, actions and recovery' % (
            latency.get('verdict_quantile') or 'p99',
            ' against its target' if fmt.number(latency.get('slow_threshold_seconds')) is not None else '')
    return 'Error rate during the incident, with the deploys, actions and recovery'


def render_graph(incident: dict[str, Any]) -> str | None:
    """The SVG of the incident's symptom over the incident, or None when it was not read: the error
    rate (incident.error_rate_history, error_rate_info's history), or for a High Response Time
    incident its highest quantile (incident.latency_history, latency_info's history_series)."""
    if graph_kind(incident) == 'response-time':
        return render_response_time_graph(incident)
    history = incident.get('error_rate_history') or {}
    if not history.get('overall'):
        return None
    series = [{'name': 'all requests', 'points': history['overall']}] + [
        {'name': group['name'], 'points': group['points']} for group in history.get('groups') or []]
    thresholds = [{'label': '%s %s' % (name, fmt.percent(history[key], trim=True)), 'percent': history[key]}
                  for name, key in (('critical', 'critical_percent'), ('warning', 'warning_percent'))
                  if history.get(key) is not None]
    return error_rate_chart('%s: error rate during incident %s' % (incident.get('service'), incident.get('id')),
                            series, incident_markers(incident), thresholds)


def render_response_time_graph(incident: dict[str, Any]) -> str | None:
    """The SVG of the highest quantile (the triage's verdict_quantile, the p99) over the incident,
    overall and of the slowest endpoints, against the threshold the triage judged by
    (slow_threshold_seconds: the target, else slow_factor times the baseline), which the
    verification watches; None without incident.latency_history."""
    history = incident.get('latency_history') or {}
    if not history.get('overall'):
        return None
    latency = _get(incident, 'triage.latency', {})
    name = latency.get('verdict_quantile') or history.get('quantile') or 'p99'
    series = [{'name': 'all requests', 'points': history['overall']}] + [
        {'name': group['name'], 'points': group['points']} for group in history.get('groups') or []]
    threshold = fmt.number(latency.get('slow_threshold_seconds'))
    thresholds = [] if threshold is None else [{'value': threshold, 'label': '%s %s' % (
        'target' if fmt.number(latency.get('target_seconds')) is not None else 'slow above', duration_text(threshold))}]
    return incident_chart('%s: %s response time during incident %s' % (incident.get('service'), name, incident.get('id')),
                          series, incident_markers(incident), thresholds, axis=seconds_axis(name))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ['_None._']
    lines = ['| %s |' % ' | '.join(header), '|' + '---|' * len(header)]
    return lines + ['| %s |' % ' | '.join(_cell(v) for v in row) for row in rows]


def _cell(value: Any) -> str:
    return (fmt.NOT_AVAILABLE if value is None else str(value)).replace('|', '\\|').replace('\n', ' ')


def _unknown(what: str) -> list[str]:
    return ['_Not known: %s._' % what]


def summary_section(incident: dict[str, Any], links: dict[str, Any] | None = None) -> list[str]:
    started, ended = moment(incident.get('started_at')), ended_at(incident)
    duration = ('%d min' % round((ended - started).total_seconds() / 60)
                if started and ended else 'not known (no verified end)')
    rows: list[tuple[str, Any]]
    rows = [('Service', '%s (%s)' % (incident.get('service') or 'not known',
                                     incident.get('platform') or 'platform not known')),
            ('Severity / priority', '%s / %s' % (incident.get('severity') or 'not known',
                                                 incident.get('priority') or 'not known')),
            ('Started', iso(started)), ('Ended', iso(ended)), ('Duration', duration),
            ('Outcome', outcome_text(incident))]
    if _get(incident, 'mitigation.mode'):
        rows.append(('Mitigation mode', incident['mitigation']['mode']))
    evidence = incident.get('evidence')
    if isinstance(evidence, dict) and evidence.get('sufficient') is not None:
        rows.append(('Evidence', 'sufficient' if evidence['sufficient'] else 'not enough: %s' % (
            '; '.join(str(g) for g in evidence.get('gaps') or []) or 'no reason recorded')))
    rows.append(('Run', incident.get('run_id')))
    # Up to the incident's last known moment, so that the document is the same on a rerun.
    last = ended or max((t for t, _text in timeline(incident) if t is not None), default=started)
    links = links or {}
    if last:
        for label, url, words in (
                ('Graph', prometheus_graph(links.get('prometheus_url'), incident, last.timestamp()), graph_words(incident)),
                ('Grafana', grafana_dashboard(links.get('grafana_url'), links.get('grafana_dashboard'), incident,
                                              last.timestamp()), 'the dashboard over the incident')):
            if url:
                rows.append((label, '[%s](%s)' % (words, url)))
    return ['## Summary', ''] + _table(('', ''), rows)


ROLE_WORDS = {'root': 'the shared cause', 'shared': 'fails through the shared cause', 'own': 'a cause of its own'}


def storm_section(incident: dict[str, Any]) -> list[str]:
    """Every service of a storm whose incident this is (its leader's), with the cause they share."""
    storm = incident.get('storm') or {}
    if not storm.get('services'):
        return []
    cause = storm.get('shared_cause') or {}
    lines = ['## Services in this incident', '',
             'Shared cause: %s %s (%s).' % (cause.get('kind'), cause.get('name'), '; '.join(cause.get('evidence') or []))
             if cause else 'No shared cause has evidence.', '']
    return lines + _table(('Service', '5xx', 'Requests/s', 'Verdict', 'Role'), [
        (row['name'], fmt.percent(row.get('error_percent')), fmt.rate(row.get('request_rate')), row.get('verdict'),
         ROLE_WORDS.get(row.get('role') or '', '-')) for row in storm['services']])


def timeline_section(incident: dict[str, Any]) -> list[str]:
    return ['## Timeline', ''] + _table(('Time (UTC)', 'Step'), [
        (iso(moment) if moment else 'time not recorded', text) for moment, text in timeline(incident)])


def latency_section(latency: dict[str, Any]) -> list[str]:
    """The response time of a High Response Time incident: its highest quantile by group, now and
    at the baseline."""
    name = latency.get('verdict_quantile') or 'p99'
    lines = ['### Response time', '', latency.get('message') or latency.get('msg') or 'no summary of the response time', '']

    def quantile(group: dict[str, Any]) -> dict[str, Any]:
        return (group.get('percentiles') or {}).get(name) or {}
    return lines + _table((latency.get('group_by') or 'group', 'req/s', name, 'baseline', 'verdict'), [
        (g.get('value'), fmt.rate(g.get('request_rate')), quantile(g).get('text'), quantile(g).get('baseline_text'),
         g.get('verdict')) for g in latency.get('groups') or []]) + ['']


def crash_loop_section(incident: dict[str, Any]) -> list[str]:
    """The containers of a Pod Crash Loop incident: the verdict, the last termination, and the
    crashing container's previous log."""
    crash = _get(incident, 'triage.crash_loop') or {}
    checks = _get(incident, 'service_down.checks') or {}
    lines = ['### Containers', '', crash.get('message') or crash.get('msg') or 'the containers were not checked', '']
    if crash.get('exit_code') is not None or crash.get('reason'):
        lines += ['Last termination: %s, exit code %s; %s restarts in all.' % (
            crash.get('reason') or 'reason not known', crash.get('exit_code'), crash.get('restarts')), '']
    log = checks.get('logs') or []
    if log and isinstance(log[0], str):
        lines += ['The previous container\'s last lines:', '', '```'] + [line[:200] for line in log[-10:]] + ['```', '']
    return lines


def evidence_section(incident: dict[str, Any]) -> list[str]:
    latency = _get(incident, 'triage.latency')
    crashes = crash_loop_section(incident) if symptom_of(incident) == 'crash_loop' else []
    lines = ['## Evidence', ''] + crashes + (latency_section(latency) if latency else []) + ['### Error rate', '']
    rate = _get(incident, 'triage.error_rate')
    if rate:
        lines += [rate.get('message') or 'no summary of the error rate', '']
        lines += _table((rate.get('group_by') or 'group', 'req/s', 'errors', 'share of errors', 'verdict'), [
            (g.get('value'), fmt.rate(g.get('request_rate')), fmt.percent(g.get('error_percent')),
             fmt.share(g.get('share_of_errors')), VERDICTS.get(g.get('verdict'), g.get('verdict')))
            for g in rate.get('groups') or []])
    else:
        lines += _unknown('triage did not measure the error rate')
    lines += ['', '### Top log messages', '']
    logs = _get(incident, 'investigate.logs')
    if logs:
        lines += [logs.get('summary') or 'no summary of the logs', '']
        lines += _table(('count', 'level', 'message'), [
            (m.get('count'), m.get('level'), m.get('pattern')) for m in logs.get('top_messages') or []])
    else:
        lines += _unknown('no logs were searched')
    lines += ['', '### Resources', '']
    res = _get(incident, 'investigate.resources')
    if res:
        lines += ['- max CPU %s, max memory %s, max throttled %s, restarts %s, OOM kills %s, '
                  'saturated: %s' % (fmt.percent(res.get('max_cpu_percent')), fmt.percent(res.get('max_memory_percent')),
                                     fmt.share(res.get('max_throttled_ratio')), fmt.count(res.get('restarts')),
                                     fmt.count(res.get('oom_kills')),
                                     {True: 'yes', False: 'no'}.get(res.get('saturated'), 'not known'))]
        lines += ['- %s' % reason for reason in res.get('reasons') or []]
    else:
        lines += _unknown('resource usage was not read')
    lines += ['', '### Dependencies', '']
    deps = _get(incident, 'investigate.dependencies')
    if deps:
        lines += ['- failing: %s' % (', '.join(deps.get('failing') or []) or 'none')]
        lines += ['- %s: %s (%s, %s)' % (c.get('name'), 'ok' if c.get('ok') else 'FAILING',
                                         'no answer' if c.get('status') is None else 'HTTP %s' % c['status'],
                                         fmt.ms(c.get('latency_ms')))
                  for c in deps.get('checks') or []]
    else:
        lines += _unknown('dependencies were not checked')
    lines += ['', '### Traces', '']
    traces = _get(incident, 'investigate.traces')
    if traces:
        lines += ['- %s of %s traces with errors; suspect dependency: %s' % (
            fmt.count(traces.get('error_traces')), fmt.count(traces.get('traces')),
            traces.get('dependency_suspect') or 'none')]
        lines += ['- %s x %s %s: %s' % (fmt.count(s.get('count')), s.get('service'), s.get('operation'),
                                        s.get('message')) for s in traces.get('error_sources') or []]
    else:
        lines += _unknown('no traces were searched')
    lines += ['', '### Recent changes', '']
    if _get(incident, 'triage') is None:
        lines += _unknown('triage did not list changes')
    else:
        changes = _get(incident, 'triage.changes', [])
        lines += ['- %s %s: %s' % (c.get('time_iso'), c.get('kind'), c.get('summary'))
                  for c in changes] or ['- none found']
    return lines


def actions_section(incident: dict[str, Any]) -> list[str]:
    lines = ['## Actions', '', '### Decision', '']
    recommended = _get(incident, 'diagnosis.recommended')
    if recommended:
        lines += ['- %s (confidence %s, runbook step: %s): %s' % (
            recommended.get('cause') or 'no cause', fmt.share(recommended.get('confidence')),
            recommended.get('runbook_step') or 'none', _get(recommended, 'action.description', 'no action'))]
        lines += ['- also considered: %s (%s)' % (c.get('cause'), fmt.share(c.get('confidence')))
                  for c in _get(incident, 'diagnosis.causes', [])[1:]]
    else:
        lines += _unknown('the run ended before the diagnosis')
    for number, attempt in enumerate(attempts(incident), 1):
        lines += ['', '### Attempt %s: %s' % (attempt.get('attempt') or number, attempt.get('description')), '',
                  '- decision: %s; reason: %s' % (attempt.get('decision'), attempt.get('reason')),
                  '- applied: %s' % ('yes' if attempt.get('acted') else 'no, check mode' if attempt.get('check_mode')
                                     else 'no')]
        if attempt.get('before') or attempt.get('after'):
            lines += ['- before: `%s`' % json.dumps(attempt.get('before'), sort_keys=True),
                      '- after: `%s`' % json.dumps(attempt.get('after'), sort_keys=True)]
        if attempt.get('commands'):
            lines += ['', '```'] + [c if isinstance(c, str) else ' '.join(map(str, c))
                                    for c in attempt['commands']] + ['```']
    if not attempts(incident):
        lines += ['', '_No mitigation was attempted._']
    return lines


def outcome_of(attempt: dict[str, Any]) -> tuple[str, Any]:
    """(verdict, detail) of one attempt: worked, did not work, not verified or not done."""
    verify = attempt.get('verify')
    if not attempt.get('acted'):
        if attempt.get('decision') == 'advise':
            return 'Not done', 'a fix is recommended, not applied: %s' % attempt.get('reason')
        return 'Not done', '%s: %s' % (attempt.get('decision'), attempt.get('reason'))
    if attempt.get('decision') == 'failed':   # changed, then failed (a rollout that did not complete)
        return 'Did not work', 'applied, then failed: %s' % failure(attempt)
    if not verify:
        return 'Not verified', 'applied, the error rate was not measured afterwards'
    if not_measured(verify):
        return 'Not verified', 'applied, and it could not be verified: %s' % verify_text(verify)
    return ('Worked' if verify.get('recovered') else 'Did not work'), verify.get('message')


def worked_section(incident: dict[str, Any]) -> list[str]:
    lines = ['## What worked / what did not', '']
    for attempt in attempts(incident):
        verdict, detail = outcome_of(attempt)
        lines.append('- **%s**: %s (%s)' % (verdict, attempt.get('description'), detail))
    return lines if attempts(incident) else lines + _unknown('no action was taken, so nothing to judge')


def slo_section(incident: dict[str, Any]) -> list[str]:
    lines = ['## SLO impact', '']
    slo = incident.get('slo')
    if not slo:
        return lines + _unknown('not measured; run sre.runbooks.slo_budget_info and keep its result as incident.slo')
    remaining = slo.get('budget_remaining') or {}
    burned = slo.get('budget_burned_during_incident') or {}
    rows = [('Availability over %s' % (slo.get('slo_window') or 'the SLO window'), '%s (objective %s)'
             % (fmt.percent(slo.get('availability_percent'), 3, trim=True), fmt.percent(slo.get('objective'), 3, trim=True))),
            ('Error budget left', '%s (%s of %s minutes)' % (
                fmt.percent(remaining.get('percent'), 2, trim=True), fmt.decimal(remaining.get('minutes')),
                fmt.decimal(remaining.get('allowed_minutes')))),
            ('Burned during the incident', '%s (%s minutes)' % (
                fmt.percent(burned.get('percent'), 2, trim=True), fmt.decimal(burned.get('minutes')))
             if burned else 'not known'),
            ('Burn rates', ', '.join('%s: %s' % (w, fmt.decimal(r))
                                     for w, r in (slo.get('burn_rates') or {}).items())),
            ('Alerts', ', '.join('%s %s' % (name, {True: 'firing', False: 'not firing'}.get(a.get('firing'), 'unknown'))
                                 for name, a in sorted((slo.get('alerts') or {}).items()))),
            ('Source', slo.get('source'))]
    return lines + _table(('', ''), rows)


def follow_ups_section(follow_ups: list[str]) -> list[str]:
    return ['## Follow-ups', ''] + (['- [ ] %s' % item for item in follow_ups] or ['_None recorded._'])


def missing(incident: dict[str, Any]) -> list[str]:
    """What the run did not learn: the sources that failed (each "source: reason"), the
    diagnosis's missing evidence and every absent section."""
    parts = (('triage', 'triage'), ('investigate.logs', 'error logs'),
             ('investigate.resources', 'resource usage'), ('investigate.dependencies', 'dependency health'),
             ('investigate.traces', 'traces'), ('diagnosis', 'diagnosis'),
             ('verify', 'verification'), ('slo', 'SLO impact'))
    found = [str(m) for m in _get(incident, 'missing_evidence', []) + _get(incident, 'diagnosis.missing_evidence', [])]
    absent = [text for path, text in parts if not _get(incident, path)]
    return list(dict.fromkeys(absent + found))


def render_markdown(incident: dict[str, Any], follow_ups: list[str], postmortem: dict[str, Any], ics_name: str,
                    graph_name: str | None = None, links: dict[str, Any] | None = None) -> str:
    """The incident document; graph_name: the file of its graph (render_graph()), beside it; links:
    prometheus_url, grafana_url and grafana_dashboard, the tools its summary links to."""
    title = '# Incident %s: %s on %s' % (incident.get('id') or '(no id)',
                                         runbook_of(incident).lower(),
                                         incident.get('service') or '(service not known)')
    lines = [title, '']
    if graph_name:
        lines += ['![%s](%s)' % (graph_alt(incident), graph_name), '']
    for section in (summary_section(incident, links), storm_section(incident), timeline_section(incident), evidence_section(incident),
                    actions_section(incident), worked_section(incident), slo_section(incident),
                    follow_ups_section(follow_ups)):
        lines += section + [''] if section else []
    lines += ['## Missing evidence', ''] + (['- %s' % m for m in missing(incident)] or ['_None._'])
    lines += ['', '## Post-mortem', '',
              '- %s to %s UTC, invite `%s`' % (iso(postmortem['start']), iso(postmortem['end']), ics_name),
              '- attendees: %s' % ', '.join(postmortem['attendees']),
              '- share this document before the meeting']
    return '\n'.join(lines) + '\n'


def postmortem_slot(after: datetime, within_hours: float, duration_minutes: float) -> tuple[datetime, datetime]:
    """The first working-hour start at least PREP_HOURS after `after` whose meeting ends within
    `within_hours` of it, a weekday preferred; (start, end)."""
    first = (after + timedelta(hours=PREP_HOURS) + timedelta(minutes=59)).replace(
        minute=0, second=0, microsecond=0)
    limit = after + timedelta(hours=within_hours)
    duration = timedelta(minutes=duration_minutes)
    candidates: list[datetime] = []
    moment = first
    while moment + duration <= limit:
        if moment.hour >= WORKING_HOURS[0] and moment + duration <= moment.replace(hour=WORKING_HOURS[1]):
            candidates.append(moment)
        moment += timedelta(hours=1)
    start = (next((c for c in candidates if c.weekday() < 5), None)
             or (candidates[0] if candidates else first))
    return start, start + duration


def postmortem_event(incident: dict[str, Any], postmortem: dict[str, Any]) -> dict[str, Any]:
    """The post-mortem meeting: start, end, attendees, uid and dtstamp, all from the incident."""
    started = moment(incident.get('started_at'))
    # [None] only for an incident without started_at, which run() refuses before it gets here.
    moments = [m for m, _text in timeline(incident) if m] or [started]  # type: ignore[list-item]
    last = max(moments)
    start, end = postmortem_slot(ended_at(incident) or last, postmortem['within_hours'],
                                 postmortem['duration_minutes'])
    return {'start': start, 'end': end, 'dtstamp': last,
            'uid': '%s-postmortem@sre.runbooks' % re.sub(r'[^A-Za-z0-9._-]', '-', str(incident.get('id', 'incident'))),
            'attendees': list(postmortem['attendees']), 'organizer': postmortem.get('organizer')}


def escape_text(text: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newline escaped."""
    return (text.replace('\\', '\\\\').replace(';', '\\;').replace(',', '\\,')
            .replace('\r\n', '\\n').replace('\n', '\\n'))


def fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continued after CRLF and a space, never
    inside a UTF-8 character."""
    parts: list[str] = []
    current, size, limit = '', 0, 75
    for char in line:
        octets = len(char.encode('utf-8'))
        if size + octets > limit:
            parts.append(current)
            current, size, limit = '', 0, 74
        current += char
        size += octets
    parts.append(current)
    return '\r\n '.join(parts)


def _address(entry: str) -> tuple[str, str]:
    """(common name, calendar address) of 'Name <email>', 'email' or a role."""
    match = re.match(r'^\s*(.*?)\s*<([^>]+@[^>]+)>\s*$', entry)
    if match:
        return match.group(1) or match.group(2), 'mailto:' + match.group(2)
    if '@' in entry:
        return entry.strip(), 'mailto:' + entry.strip()
    # A role without an address: a placeholder the organizer replaces with the person on duty.
    return entry.strip(), 'urn:sre-runbooks:role:' + re.sub(r'[^a-z0-9]+', '-', entry.lower()).strip('-')


def _param(value: str) -> str:
    return '"%s"' % value.replace('"', "'")


def _stamp(moment: datetime) -> str:
    return moment.strftime('%Y%m%dT%H%M%SZ')


def render_ics(incident: dict[str, Any], event: dict[str, Any], document_name: str) -> str:
    """The post-mortem invite: one VEVENT, CRLF line endings, folded lines."""
    summary = 'Post-mortem: high error rate on %s (%s, %s)' % (
        incident.get('service') or 'service not known', incident.get('priority') or 'priority not known',
        iso(moment(incident.get('started_at'))))
    description = ('Post-mortem of incident %s (outcome: %s). Read the incident document %s before '
                   'the meeting. Attendees: %s.' % (incident.get('id') or '(no id)', outcome_text(incident),
                                                    document_name, ', '.join(event['attendees'])))
    lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:' + PRODID, 'CALSCALE:GREGORIAN',
             'METHOD:REQUEST', 'BEGIN:VEVENT', 'UID:' + event['uid'], 'DTSTAMP:' + _stamp(event['dtstamp']),
             'DTSTART:' + _stamp(event['start']), 'DTEND:' + _stamp(event['end']),
             'SUMMARY:' + escape_text(summary), 'DESCRIPTION:' + escape_text(description)]
    if event['organizer']:
        name, address = _address(event['organizer'])
        lines.append('ORGANIZER;CN=%s:%s' % (_param(name), address))
    for attendee in event['attendees']:
        name, address = _address(attendee)
        lines.append('ATTENDEE;CN=%s;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:%s'
                     % (_param(name), address))
    lines += ['END:VEVENT', 'END:VCALENDAR']
    return ''.join(fold(line) + '\r\n' for line in lines)


def run(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Writes (in check mode, only renders) the document and the invite of p['incident'];
    the module's result, with a diff of each file that changes."""
    incident, postmortem = p['incident'], p['postmortem']
    started = moment(incident.get('started_at'))
    if started is None:
        raise RunbookError('incident.started_at is %r, not a time (RFC 3339 or epoch seconds): it '
                           'names the document; the triage role sets it' % incident.get('started_at'))
    month, stem = file_stem(started, symptom_of(incident))
    base = os.path.join(p['directory'], month, stem)
    event = postmortem_event(incident, postmortem)
    graph = render_graph(incident)
    kind = graph_kind(incident)
    graph_name = '%s-%s.svg' % (stem, kind)
    files = [(base + '.md', render_markdown(incident, p['follow_ups'], event, stem + '.ics', graph_name if graph else None,
                                            {k: p[k] for k in ('prometheus_url', 'grafana_url', 'grafana_dashboard')})),
             (base + '.ics', render_ics(incident, event, stem + '.md'))]
    if graph:
        files.append(('%s-%s.svg' % (base, kind), graph))
    diff: list[dict[str, Any]] = []
    hint = 'check directory (%s) and its permissions' % p['directory']
    for path, text in files:
        try:
            old = read_text(path)
        except StateError as err:
            raise RunbookError('cannot write the incident document: %s: %s' % (err, hint))
        if old != text:
            diff.append({'before_header': path, 'after_header': path, 'before': old or '', 'after': text})
            if not check_mode:
                try:
                    write_atomic(path, text, hint=hint)  # its error names the hint, or the space to free
                except StateError as err:
                    raise RunbookError('cannot write the incident document: %s' % err)
    return {'changed': bool(diff), 'diff': diff, 'path': files[0][0], 'ics_path': files[1][0],
            'graph_path': files[2][0] if graph else None,
            'missing': missing(incident),
            'postmortem': {'start': iso(event['start']), 'end': iso(event['end']), 'uid': event['uid'],
                           'attendees': event['attendees']}}

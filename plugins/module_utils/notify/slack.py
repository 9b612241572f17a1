# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slack: the runbook's messages rendered from the `incident` fact (pure), and the Web API
(chat.postMessage in the incident's thread, reactions.add) or an incoming webhook.

The Web API answers HTTP 200 with {ok: false, error} when it refuses a call, and HTTP 429 with
Retry-After when rate limiting; a webhook answers the plain text `ok`, or an HTTP error whose
body is the error's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping
from datetime import datetime, timezone
from typing import Any, overload

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import duration_text
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.symptoms import runbook_of, symptom_of
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, body_text, decode_json
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment
from ansible_collections.sre.runbooks.plugins.module_utils.render.links import grafana_dashboard, graph_words, prometheus_graph
from ansible_collections.sre.runbooks.plugins.module_utils.render.markers import failure

TEMPLATES = ('incident', 'update', 'resolved', 'escalation', 'closed', 'joined')
JSON_UTF8 = {'Content-Type': 'application/json; charset=utf-8'}
STATUS_TEXT = {
    'open': 'Investigating',
    'mitigating': 'Mitigation in progress',
    'mitigated': 'A fix was applied; the runbook does not verify it (verification is off)',
    'resolved': 'Resolved',
    'escalated': 'Escalated',
    'advised': 'A fix is recommended, not applied: waiting for a person',
    'planned': 'Mitigation planned (check mode): nothing changed',
    'no_action': 'Monitoring, no action needed',
    'insufficient_evidence': 'Not enough evidence: nothing was done and nobody was paged',
    'recovered': 'Recovered before the runbook ran',
    'joined': 'Handled by another run of the runbook',
    'failed': 'The runbook failed: a person must take over',
}
# How an escalation reason starts when a fix was applied and its effect could not be measured.
UNVERIFIED = 'acted, could not verify'
SEVERITY_TEXT = {'critical': 'Critical', 'warning': 'Warning', 'none': 'Low'}
# What to do about the Web API's errors; the others are shown as Slack names them.
ERROR_HINTS = {
    'not_in_channel': 'the app is not a member of channel %(channel)s: invite it there '
                      '(/invite @the-app) or post to a channel it is in',
    'channel_not_found': 'Slack knows no channel %(channel)s that the token can see: use the '
                         'channel ID (C0123ABCD) and check that the app can access it',
    'is_archived': 'channel %(channel)s is archived',
    'invalid_auth': 'Slack does not accept the token: check token (a bot token, xoxb-...)',
    'not_authed': 'no token reached Slack: check token',
    'token_revoked': 'the token was revoked: install the app again and use its new token',
    'account_inactive': 'the token belongs to a deactivated user or app',
    'missing_scope': 'the token lacks the scope %(needed)s: add it to the app and reinstall it',
    'message_not_found': 'no message with timestamp %(timestamp)s in channel %(channel)s',
    'invalid_blocks': 'Slack refused the blocks: check their structure (Block Kit)',
    'thread_not_found': 'no thread %(thread_ts)s in channel %(channel)s: pass the ts of the '
                        'thread\'s first message',
}
WEBHOOK_HINTS = {
    'no_service': 'the webhook was revoked or the URL is wrong: check webhook_url',
    'channel_not_found': 'the webhook\'s channel no longer exists: create a new webhook',
    'channel_is_archived': 'the webhook\'s channel is archived',
    'invalid_payload': 'Slack could not read the message: check text and blocks',
    'action_prohibited': 'the workspace forbids this webhook to post here',
}

# --- The runbook's messages: pure -------------------------------------------------------------


def escape(text: Any) -> str:
    """Slack's three control characters, escaped as its message formatting requires."""
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def percent(value: Any) -> str:
    """12 -> '12%', 0.3 -> '0.3%', 8.333 -> '8.33%', None -> 'n/a'."""
    return formatting.percent(value, 2, trim=True)


def duration(seconds: float) -> str:
    """'22 minutes', '1 hour 5 minutes', 'under a minute'."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return 'under a minute'
    hours, minutes = divmod(minutes, 60)
    parts = (['%d hour%s' % (hours, '' if hours == 1 else 's')] if hours else []) + (
        ['%d minute%s' % (minutes, '' if minutes == 1 else 's')] if minutes or not hours else [])
    return ' '.join(parts)


def is_false(value: Any) -> bool:
    """A flag given as false (a boolean, or its text as YAML or a form would give it)."""
    return value is False or str(value).strip().lower() in ('false', 'no', 'off', '0')


class Facts:
    """What the messages say, read from the incident fact, with template_vars first and
    sensible words for what is missing. Values from template_vars are Slack text as given
    (mentions, links); values from the incident are escaped."""

    def __init__(self, incident: dict[str, Any] | None, tvars: dict[str, Any] | None, now: datetime) -> None:
        self.i = incident or {}
        self.v = tvars or {}
        self.now = now

    def get(self, *path: str | int) -> Any:
        node: Any = self.i
        for key in path:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
                node = node[key]
            else:
                return None
        return node

    @overload
    def var(self, name: str) -> str | None:
        ...

    @overload
    def var(self, name: str, default: str) -> str:
        ...

    def var(self, name: str, default: str | None = None) -> str | None:
        value = self.v.get(name)
        return default if value in (None, '') else str(value)

    def outcome(self) -> str:
        return self.get('outcome') or 'open'

    def weak(self) -> bool:
        """Not enough evidence to act on: the run's outcome, or the triage's judgement."""
        return self.outcome() == 'insufficient_evidence' or self.get('evidence', 'sufficient') is False

    def title(self) -> str:
        name = self.var('service_name') or escape(
            (self.get('service') or '').replace('-', ' ').replace('_', ' ').title())
        what = self.var('title', runbook_of(self.i))
        return '%s - %s' % (what, name) if name else what

    def severity(self) -> str:
        priority, severity = self.get('priority'), self.get('severity')
        if not (priority or severity):
            return 'unknown'
        text = SEVERITY_TEXT.get(severity, escape(severity or '').capitalize())
        return escape('%s (%s)' % (priority, text) if priority and text else priority or text)

    def commander(self) -> str:
        return self.var('commander', 'not assigned yet')

    def started(self) -> str:
        started = moment(self.get('started_at'))
        return started.strftime('%Y-%m-%d %H:%M UTC') if started else 'unknown'

    def clock(self) -> str:
        return self.now.astimezone(timezone.utc).strftime('%H:%M UTC')

    def unverified(self) -> bool:
        """An applied fix whose effect could not be measured (the run then escalates)."""
        reason = str(self.get('escalation', 'reason') or '')
        acted = any(a.get('acted') for a in self.attempts())
        return reason.startswith(UNVERIFIED) or (
            acted and self.get('verify', 'verdict') == 'not_measured')

    def status(self) -> str:
        status = self.var('status')
        if status:
            return status
        if self.outcome() == 'escalated' and self.unverified():
            return 'Escalated: a fix was applied and could not be verified'
        outcome = 'insufficient_evidence' if self.outcome() == 'open' and self.weak() else self.outcome()
        return STATUS_TEXT.get(outcome, escape(outcome))

    def target(self) -> float:
        target = formatting.number(self.v.get('target_percent'))
        return 0.5 if target is None else target

    def first_percent(self) -> float | None:
        return formatting.number(self.get('triage', 'error_rate', 'error_percent'))

    def measurement(self) -> tuple[str, Any]:
        """(kind, value) of the error rate the message can state: ('now', percent) measured
        just now or by the verification, ('not_measured', reason), ('triage', percent),
        ('no_traffic', None) or ('unknown', None)."""
        if 'measured' in self.v and is_false(self.v['measured']):
            return 'not_measured', self.var('not_measured_reason', 'no measurement succeeded')
        if self.v.get('error_percent') not in (None, ''):
            now = formatting.number(self.v['error_percent'])
            return ('now', now) if now is not None else ('not_measured', 'not a number')
        if 'measured' in self.v:
            return 'no_traffic', None
        # The verification of a slow service measured its response time, not its errors.
        verify = self.get('verify') or {} if symptom_of(self.i) == 'error_rate' else {}
        if verify.get('measured') is False or verify.get('verdict') == 'not_measured':
            return 'not_measured', escape(verify.get('unmeasured_reason') or 'no measurement succeeded')
        if formatting.number(verify.get('last_percent')) is not None:
            return 'now', formatting.number(verify['last_percent'])
        if verify.get('samples'):
            return 'no_traffic', None
        if self.first_percent() is not None:
            return 'triage', self.first_percent()
        if self.get('triage', 'error_rate', 'verdict') == 'no_traffic':
            return 'no_traffic', None
        return 'unknown', None

    def error_rate(self, note: Callable[[Any], str] | None, now_only: bool = False) -> str:
        """The error rate as a message states it; note(percent) qualifies a measured one. With
        now_only (an update: the error rate now), the triage's figure is never shown."""
        kind, value = self.measurement()
        if kind == 'not_measured':
            return 'not measured (%s)' % value
        if kind == 'no_traffic':
            return formatting.NO_TRAFFIC
        if kind == 'unknown':
            return 'not measured'
        if kind == 'triage':
            return 'not measured since the triage' if now_only else \
                '%s at triage, not measured since' % percent(value)
        at = moment(self.v.get('measured_at'))
        return '%s%s%s' % (percent(value), ' (%s)' % note(value) if note else '', at.strftime(' at %H:%M:%S UTC') if at else '')

    def rates(self, error_rate: str) -> list[tuple[str | None, str]]:
        """The message's figures: the error rate, and first the response time when it is the symptom
        (alone in an update, which measures the response time only); a crash loop's containers
        first, but in an update, which measures the error rate only."""
        if symptom_of(self.i) == 'crash_loop' and 'measured' not in self.v:
            crash = self.get('triage', 'crash_loop') or {}
            return [('Containers', escape(crash.get('message') or crash.get('msg') or 'not checked')[:300]),
                    ('Error Rate', error_rate)]
        if symptom_of(self.i) != 'latency':
            return [('Error Rate', error_rate)]
        if 'response_seconds' in self.v:
            return [('Response Time', self.response_time())]
        return [('Response Time', self.response_time()), ('Error Rate', error_rate)]

    def response_time(self) -> str:
        """The response time's highest quantile as a message states it: measured just now (an
        update's response_seconds), by the verification, or at triage."""
        quantile = self.get('triage', 'latency', 'verdict_quantile') or 'p99'
        updating = 'response_seconds' in self.v
        now = formatting.number(self.v.get('response_seconds') if updating else self.get('verify', 'last_seconds'))
        if now is not None:
            at = moment(self.v.get('measured_at'))
            return '%s %s%s' % (quantile, duration_text(now), at.strftime(' at %H:%M:%S UTC') if at else '')
        if updating:
            return 'not measured (%s)' % self.var('not_measured_reason', 'no measurement succeeded')
        triage = self.get('triage', 'latency', 'overall', 'percentiles', quantile, 'text')
        return '%s %s at triage' % (quantile, escape(triage)) if triage else 'not measured'

    def opening_rate(self) -> str:
        """The triage's error rate against the target, with the traffic when too little."""
        target = escape('<' + percent(self.target()))
        kind, value = self.measurement()
        if kind not in ('now', 'triage'):
            return self.error_rate(None)
        rate = self.get('triage', 'error_rate', 'request_rate')
        if self.get('triage', 'error_rate', 'verdict') == 'low_traffic':
            return '%s of %s (too little traffic to judge; target: %s)' % (
                percent(value), formatting.rate(rate, unit=True), target)
        return '%s (target: %s)' % (percent(value), target)

    def trend(self, now: float) -> str:
        trend = self.get('verify', 'trend')
        first = self.first_percent()
        if trend not in ('decreasing', 'increasing', 'flat') and first is not None:
            trend = ('decreasing' if now < first * 0.8 else 'increasing' if now > first * 1.2
                     else 'flat')
        return {'flat': 'steady'}.get(trend, trend or 'trend unknown')

    def attempts(self) -> list[dict[str, Any]]:
        return [a for a in self.get('mitigation', 'attempts') or [] if isinstance(a, dict)]

    def recommended(self) -> tuple[str | None, bool]:
        """(description, is an escalation) of the diagnosis's action; description None if none."""
        action = self.get('diagnosis', 'recommended', 'action') or self.get('diagnosis', 'action') or {}
        description = action.get('description') if isinstance(action, dict) else None
        escalation = (action.get('name') == 'escalate' if isinstance(action, dict) else False) or \
            self.get('diagnosis', 'recommended', 'cause') == 'escalate'
        return (escape(description) if description else None), escalation

    def attempt(self, attempt: dict[str, Any]) -> str:
        """What became of one attempt, in words."""
        what = escape(attempt.get('description') or 'an action')
        reason = escape(attempt.get('reason') or '')
        decision = attempt.get('decision')
        if attempt.get('acted') and decision == 'failed':
            return '%s (applied, then failed: %s)' % (what, escape(failure(attempt)))
        if attempt.get('acted'):
            return '%s (applied%s)' % (what, ', could not be verified' if self.unverified() else '')
        if attempt.get('check_mode') and decision == 'act':
            return '%s (planned, check mode: not applied)' % what
        if decision == 'advise':
            return 'a fix is recommended (%s), %snot applied' % (what, 'not approved, ' * reason.startswith('not approved'))
        if decision == 'none':
            return 'none needed%s' % (': ' + reason if reason else '')
        if decision == 'insufficient':
            return 'none: not enough evidence to act'
        if decision == 'failed':
            return reason or '%s failed' % what
        if decision in ('refused', 'escalate'):
            return '%s, not applied: %s' % (what, reason or decision)
        return '%s (not applied%s)' % (what, ': ' + escape(decision) if decision else '')

    def action(self) -> str:
        action = self.var('action')
        if action:
            return action
        attempts = self.attempts()
        if attempts:
            return self.attempt(attempts[-1])
        if self.weak():
            return 'none: not enough evidence to act'
        description, escalation = self.recommended()
        if not description:
            return 'Investigating'
        mode = self.get('mitigation', 'mode') or self.var('mode')
        if escalation or mode not in ('advise', 'approve', 'auto'):
            return '%s (recommended)' % description
        return {'advise': 'a fix is recommended (%s), not applied',
                'approve': 'a fix is recommended (%s), awaiting approval',
                'auto': '%s (recommended, to be applied)'}[mode] % description

    def root_cause(self) -> str:
        root_cause = self.var('root_cause')
        if root_cause:
            return root_cause
        recommended = self.get('diagnosis', 'recommended') or {}
        evidence = recommended.get('evidence') or []
        if recommended.get('cause') not in (None, 'escalate') and evidence:
            return escape('%s (%s)' % (evidence[0], recommended['cause']))
        summary = self.get('diagnosis', 'summary')
        return escape(summary) if summary else 'under investigation'

    def mitigation(self) -> str:
        acted = [escape(a.get('description') or 'an action') for a in self.attempts()
                 if a.get('acted')]
        return self.var('mitigation') or '; '.join(acted) or 'no action taken'

    def duration(self) -> str:
        started = moment(self.get('started_at'))
        ended = moment(self.var('resolved_at')) or self.now
        return duration((ended - started).total_seconds()) if started else 'unknown'

    def gaps(self) -> str:
        gaps = self.get('evidence', 'gaps') or []
        return escape('; '.join(str(g) for g in gaps)) or 'the evidence is too weak to act on'

    def missing(self) -> list[tuple[str | None, str]]:
        return [('Missing', escape('; '.join(str(m) for m in self.get('missing_evidence') or [])))] \
            if self.get('missing_evidence') else []

    def storm(self) -> list[tuple[str | None, str]]:
        """The services of a storm whose incident this is (its leader's), and the cause they share."""
        rows = self.get('storm', 'services') or []
        failing = [row['name'] for row in rows if row.get('role')]
        if not failing:
            return []
        cause = self.get('storm', 'shared_cause') or {}
        return [('Services', escape('%d failing: %s' % (len(failing), ', '.join(failing)))),
                ('Shared Cause', escape('%s %s' % (cause['kind'], cause['name'])) if cause else 'none found')]

    def joined(self) -> tuple[str, str]:
        """(the alert that joined, the run handling the incident)."""
        alerts = self.get('joined', 'alerts') or []
        alert = self.get('joined', 'alert') or (alerts[-1] if isinstance(alerts, list) and alerts else None)
        run = self.get('joined', 'handled_by') or self.get('joined', 'run_id')
        return (self.var('alert') or escape(alert or 'a second run of the runbook'),
                self.var('handled_by') or escape(run or 'another run'))

    def graph(self) -> list[tuple[str | None, str]]:
        """The Prometheus graph of the incident's symptom (its error rate, or its p99 for the
        response time) and the service's Grafana dashboard over its time range (template vars
        prometheus_url, grafana_url and grafana_dashboard), those that can be linked."""
        now = self.now.timestamp()
        links = [('Graph', prometheus_graph(self.var('prometheus_url'), self.i, now), graph_words(self.i)),
                 ('Grafana', grafana_dashboard(self.var('grafana_url'), self.var('grafana_dashboard'), self.i, now),
                  'the dashboard over the incident')]
        return [(label, '<%s|%s>' % (url, words)) for label, url, words in links if url]

    def links(self) -> list[tuple[str | None, str]]:
        given = [(label, self.var(name)) for label, name in (('Dashboard', 'dashboard'), ('Bridge', 'bridge'))]
        return [(label, value) for label, value in given if value] + self.graph()


NOT_ENOUGH = 'The runbook does not act on this evidence; a person should look at the alert.'


def _incident(f: Facts) -> list[list[tuple[str | None, str]]]:
    outcome = f.outcome()
    if f.weak() and outcome in ('open', 'insufficient_evidence'):
        return [
            [(None, 'ℹ️ NOT ENOUGH EVIDENCE: %s' % f.title()),
             ('Started', f.started()),
             ('Current Status', f.status()),
             ('Why', f.gaps())] + f.missing(),
            f.rates(f.opening_rate()) + f.links(),
            [(None, NOT_ENOUGH)],
        ]
    if outcome == 'recovered':
        return [[(None, '✅ RECOVERED BEFORE THE RUNBOOK RAN: %s' % f.title()),
                 ('Started', f.started()),
                 *f.rates(f.opening_rate())] + f.links(),
                [(None, 'Nothing was done.')]]
    return [
        [(None, '🔥 INCIDENT: %s' % f.title()),
         ('Severity', f.severity()),
         ('Incident Commander', f.commander()),
         ('Started', f.started()),
         ('Current Status', f.status())] + f.storm() + f.missing(),
        f.rates(f.opening_rate()) + f.links(),
        [(None, 'Updates will be posted here every %s.' % f.var('update_every', '10 minutes'))],
    ]


def _update(f: Facts) -> list[list[tuple[str | None, str]]]:
    return [[(None, '🔄 UPDATE [%s]' % f.clock()),
             ('Status', f.status()),
             ('Action', f.action()),
             ('ETA', f.var('eta', 'not known yet')),
             *f.rates(f.error_rate(f.trend, now_only=True))] + f.graph()]


def _resolved(f: Facts) -> list[list[tuple[str | None, str]]]:
    def note(now: float) -> str:
        recovered = f.get('verify', 'recovered')
        return 'normal' if (recovered if recovered is not None else now < f.target()) else \
            'still above target'
    return [
        [(None, '✅ RESOLVED [%s]' % f.clock()),
         ('Incident Duration', f.duration()),
         ('Root Cause', f.root_cause()),
         ('Mitigation', f.mitigation()),
         *f.rates(f.error_rate(note))] + f.graph(),
        [('Post-mortem', f.var('postmortem', 'Will be completed by EOD'))],
    ]


def _escalation(f: Facts) -> list[list[tuple[str | None, str]]]:
    tried = [f.attempt(a) for a in f.attempts()]
    summary = f.get('diagnosis', 'summary')
    fix = [('Fix', 'applied (%s) and could not be verified: the error rate was not measured after it'
            % f.mitigation())] if f.unverified() else []
    return [
        [(None, '🚨 ESCALATION: %s' % f.title()),
         ('Severity', f.severity()),
         ('Incident Commander', f.commander()),
         ('Reason', escape(f.get('escalation', 'reason') or 'the runbook has no safe action left'))]
        + fix
        + [('Diagnosis', escape(summary) if summary else 'inconclusive'),
           ('Tried', '; '.join(tried) or 'nothing yet'),
           *f.rates(f.error_rate(f.trend))] + f.links(),
        [(None, 'Needed: %s' % f.var('escalate_to', 'a senior engineer to take over'))],
    ]


def _closed(f: Facts) -> list[list[tuple[str | None, str]]]:
    """The end of a run that did not resolve the incident: what it leaves to people."""
    outcome, clock = f.outcome(), f.clock()
    if outcome == 'insufficient_evidence' or outcome == 'open' and f.weak():
        return [[(None, 'ℹ️ CLOSED [%s]: not enough evidence' % clock),
                 ('Why', f.gaps())] + f.missing()
                + f.rates(f.error_rate(f.trend)),
                [(None, 'Nothing was done and nobody was paged. ' + NOT_ENOUGH)]]
    if outcome == 'failed':
        failure = f.get('failure') or {}
        return [[(None, '❌ RUN FAILED [%s]' % clock),
                 ('Failed at', escape('%s: %s' % (failure.get('task') or 'an unknown task',
                                                  failure.get('msg') or 'no message'))),
                 ('Action', f.action()),
                 *f.rates(f.error_rate(f.trend))],
                [(None, 'Needed: a person to take over.')]]
    needed = {'advised': 'a person to apply the fix or decide otherwise.',
              'planned': 'a run without check mode to act.',
              'mitigated': 'a person to confirm that the error rate is back to normal.'}
    return ([[(None, '⏹ RUN ENDED [%s]' % clock),
              ('Status', f.status()),
              ('Action', f.action()),
              *f.rates(f.error_rate(f.trend))]]
            + ([[(None, 'Needed: ' + needed[outcome])]] if outcome in needed else []))


def _joined(f: Facts) -> list[list[tuple[str | None, str]]]:
    return [[(None, '🔗 Another alert joined this incident: %s, handled by run %s' % f.joined())]]


RENDERERS = {'incident': _incident, 'update': _update, 'resolved': _resolved,
             'escalation': _escalation, 'closed': _closed, 'joined': _joined}


def render(template: str, incident: dict[str, Any] | None, template_vars: dict[str, Any] | None = None,
           now: datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The runbook's message `template` about `incident`: (plain-text fallback, blocks), both
    ready for Slack (one mrkdwn section block per paragraph, field names in bold, the first line
    in bold). `now` (aware datetime) is the message's time; default, the current time."""
    facts = Facts(incident, template_vars, now or datetime.now(timezone.utc))
    paragraphs = RENDERERS[template](facts)

    def line(name: str | None, value: str, bold: str) -> str:
        return value if name is None else (bold % name) + ' ' + value

    text = '\n\n'.join('\n'.join(line(n, v, '%s:') for n, v in p) for p in paragraphs)
    blocks: list[dict[str, Any]] = []
    for index, paragraph in enumerate(paragraphs):
        lines = [line(n, v, '*%s:*') for n, v in paragraph]
        if index == 0:
            lines[0] = '*%s*' % lines[0]
        blocks.append({'type': 'section', 'text': {'type': 'mrkdwn', 'text': '\n'.join(lines)}})
    return text, blocks


# --- Sending ------------------------------------------------------------------------------------


def web_error(method: str, body: Mapping[str, Any], payload: dict[str, Any]) -> str:
    """One sentence for {ok: false, error} from a Web API method."""
    error = str(payload.get('error') or 'unknown_error')
    facts = dict(body, needed=payload.get('needed') or 'named in the error')
    hint = ERROR_HINTS.get(error)
    return 'Slack refused %s with %s%s' % (
        method, error, ': ' + hint % facts if hint else
        ' (see the method\'s documentation for this error)')


def redact_webhook(url: str) -> str:
    """A webhook URL as shown in messages: its secret path hidden."""
    return re.sub(r'^(https?://[^/]+)/.*$', r'\1/********', url)


class Slack:
    def __init__(self, p: Mapping[str, Any]) -> None:
        opts = dict(timeout=p['timeout'], retries=p['retries'], validate_certs=p['validate_certs'],
                    max_retry_after=p['max_retry_after'])
        url = p['webhook_url'] or p['api_url']
        self.client = HttpClient(url, name='Slack', bearer_token=p['token'], **opts)

    def call(self, method: str, body: dict[str, Any], accept: Container[str] = ()) -> dict[str, Any]:
        """The answer of a Web API method; ApiError unless ok (or its error is in `accept`)."""
        response = self.client.request('POST', '/' + method, json_body=body, headers=JSON_UTF8)
        payload = decode_json(response)
        if response.status == 429:
            raise ApiError('Slack is rate limiting %s (HTTP 429, Retry-After %s s, more than '
                           'max_retry_after or after all retries): post less often or retry later'
                           % (method, response.headers.get('Retry-After')), 429, payload)
        if response.status != 200 or not isinstance(payload, dict):
            raise ApiError('Slack answered %s with HTTP %s: %s' % (
                method, response.status, body_text(response, 200)), response.status)
        if not payload.get('ok') and payload.get('error') not in accept:
            raise ApiError(web_error(method, body, payload), response.status, payload)
        return payload

    def webhook(self, body: dict[str, Any]) -> str:
        try:
            response = self.client.request('POST', '', json_body=body, headers=JSON_UTF8)
        except ApiError as err:
            raise ApiError(str(err).replace(self.client.base_url,
                                            redact_webhook(self.client.base_url)))
        answer = response.text(200).strip()
        if response.status != 200:
            raise ApiError('the Slack webhook (%s) answered HTTP %s: %s%s' % (
                redact_webhook(self.client.base_url), response.status,
                body_text(response, 200).strip() or '(empty body)',
                ': ' + WEBHOOK_HINTS[answer] if answer in WEBHOOK_HINTS else ''), response.status)
        return answer

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
from datetime import datetime, timezone

from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, decode_json)

TEMPLATES = ('incident', 'update', 'resolved', 'escalation')
JSON_UTF8 = {'Content-Type': 'application/json; charset=utf-8'}
STATUS_TEXT = {
    'open': 'Investigating',
    'mitigating': 'Mitigation in progress',
    'mitigated': 'Mitigated, monitoring',
    'resolved': 'Resolved',
    'escalated': 'Escalated',
    'advised': 'Action recommended, waiting for a human',
    'planned': 'Mitigation planned (check mode)',
    'no_action': 'Monitoring, no action needed',
}
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

ARGUMENT_SPEC = dict(
    token=dict(type='str', no_log=True),
    webhook_url=dict(type='str', no_log=True),
    channel=dict(type='str'),
    text=dict(type='str'),
    blocks=dict(type='list', elements='dict'),
    thread_ts=dict(type='str'),
    reply_broadcast=dict(type='bool', default=False),
    reaction=dict(type='str'),
    timestamp=dict(type='str'),
    template=dict(type='str', choices=list(TEMPLATES)),
    incident=dict(type='dict'),
    template_vars=dict(type='dict', default={}),
    api_url=dict(type='str', default='https://slack.com/api'),
    timeout=dict(type='float', default=10.0),
    retries=dict(type='int', default=2),
    max_retry_after=dict(type='float', default=30.0),
    validate_certs=dict(type='bool', default=True),
)

CONSTRAINTS = dict(
    required_one_of=[('token', 'webhook_url'), ('text', 'template', 'reaction')],
    mutually_exclusive=[('token', 'webhook_url'), ('text', 'template'), ('blocks', 'template')]
    + [('webhook_url', name) for name in ('channel', 'thread_ts', 'reply_broadcast', 'reaction',
                                          'timestamp')],
    required_by={'token': ('channel',), 'template': ('incident',), 'blocks': ('text',)},
)


# --- The runbook's messages: pure -------------------------------------------------------------

def escape(text):
    """Slack's three control characters, escaped as its message formatting requires."""
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def percent(value):
    """12 -> '12%', 0.3 -> '0.3%', 8.333 -> '8.33%'."""
    return ('%.2f' % float(value)).rstrip('0').rstrip('.') + '%'


def parse_time(value):
    """An RFC 3339 time (as the roles record it), or None."""
    try:
        moment = datetime.fromisoformat(str(value).replace('Z', '+00:00'))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def duration(seconds):
    """'22 minutes', '1 hour 5 minutes', 'under a minute'."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return 'under a minute'
    hours, minutes = divmod(minutes, 60)
    parts = (['%d hour%s' % (hours, '' if hours == 1 else 's')] if hours else []) + (
        ['%d minute%s' % (minutes, '' if minutes == 1 else 's')] if minutes or not hours else [])
    return ' '.join(parts)


class Facts:
    """What the messages say, read from the incident fact, with template_vars first and
    sensible words for what is missing. Values from template_vars are Slack text as given
    (mentions, links); values from the incident are escaped."""

    def __init__(self, incident, tvars, now):
        self.i = incident or {}
        self.v = tvars or {}
        self.now = now

    def get(self, *path):
        node = self.i
        for key in path:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
                node = node[key]
            else:
                return None
        return node

    def var(self, name, default=None):
        value = self.v.get(name)
        return default if value in (None, '') else str(value)

    def title(self):
        name = self.var('service_name') or escape(
            (self.get('service') or '').replace('-', ' ').replace('_', ' ').title())
        what = self.var('title', 'High Error Rate')
        return '%s - %s' % (what, name) if name else what

    def severity(self):
        priority, severity = self.get('priority'), self.get('severity')
        if not (priority or severity):
            return 'unknown'
        text = SEVERITY_TEXT.get(severity, escape(severity or '').capitalize())
        return escape('%s (%s)' % (priority, text) if priority and text else priority or text)

    def commander(self):
        return self.var('commander', 'not assigned yet')

    def started(self):
        moment = parse_time(self.get('started_at'))
        return moment.strftime('%Y-%m-%d %H:%M UTC') if moment else 'unknown'

    def clock(self):
        return self.now.astimezone(timezone.utc).strftime('%H:%M UTC')

    def status(self):
        outcome = self.get('outcome') or 'open'
        return self.var('status') or STATUS_TEXT.get(outcome, escape(outcome))

    def target(self):
        return float(self.var('target_percent', 0.5))

    def first_percent(self):
        return self.get('triage', 'error_rate', 'error_percent')

    def current_percent(self):
        for value in (self.var('error_percent'), self.get('verify', 'last_percent'),
                      self.first_percent()):
            if value is not None:
                return float(value)
        return None

    def error_rate(self, note):
        now = self.current_percent()
        return 'unknown' if now is None else '%s (%s)' % (percent(now), note(now))

    def trend(self, now):
        trend = self.get('verify', 'trend')
        first = self.first_percent()
        if trend not in ('decreasing', 'increasing', 'flat') and first is not None:
            trend = ('decreasing' if now < first * 0.8 else 'increasing' if now > first * 1.2
                     else 'flat')
        return {'flat': 'steady'}.get(trend, trend or 'trend unknown')

    def attempts(self):
        return [a for a in self.get('mitigation', 'attempts') or [] if isinstance(a, dict)]

    def action(self):
        if self.var('action'):
            return self.var('action')
        attempts = self.attempts()
        if attempts:
            last = attempts[-1]
            text = escape(last.get('description') or 'an action')
            return text if last.get('acted') else '%s (not taken: %s)' % (
                text, escape(last.get('decision') or 'not acted'))
        recommended = self.get('diagnosis', 'recommended', 'action', 'description')
        return '%s (recommended)' % escape(recommended) if recommended else 'Investigating'

    def root_cause(self):
        if self.var('root_cause'):
            return self.var('root_cause')
        recommended = self.get('diagnosis', 'recommended') or {}
        evidence = recommended.get('evidence') or []
        if recommended.get('cause') not in (None, 'escalate') and evidence:
            return escape('%s (%s)' % (evidence[0], recommended['cause']))
        summary = self.get('diagnosis', 'summary')
        return escape(summary) if summary else 'under investigation'

    def mitigation(self):
        acted = [escape(a.get('description') or 'an action') for a in self.attempts()
                 if a.get('acted')]
        return self.var('mitigation') or '; '.join(acted) or 'no action taken'

    def duration(self):
        started = parse_time(self.get('started_at'))
        ended = parse_time(self.var('resolved_at')) or self.now
        return duration((ended - started).total_seconds()) if started else 'unknown'

    def links(self):
        return [(label, self.var(name)) for label, name in (
            ('Dashboard', 'dashboard'), ('Bridge', 'bridge')) if self.var(name)]


def _incident(f):
    return [
        [(None, '🔥 INCIDENT: %s' % f.title()),
         ('Severity', f.severity()),
         ('Incident Commander', f.commander()),
         ('Started', f.started()),
         ('Current Status', f.status())],
        [('Error Rate', f.error_rate(lambda now: 'target: %s' % escape('<' + percent(f.target()))))]
        + f.links(),
        [(None, 'Updates will be posted here every %s.' % f.var('update_every', '10 minutes'))],
    ]


def _update(f):
    return [[(None, '🔄 UPDATE [%s]' % f.clock()),
             ('Status', f.status()),
             ('Action', f.action()),
             ('ETA', f.var('eta', 'not known yet')),
             ('Error Rate', f.error_rate(f.trend))]]


def _resolved(f):
    def note(now):
        recovered = f.get('verify', 'recovered')
        return 'normal' if (recovered if recovered is not None else now < f.target()) else \
            'still above target'
    return [
        [(None, '✅ RESOLVED [%s]' % f.clock()),
         ('Incident Duration', f.duration()),
         ('Root Cause', f.root_cause()),
         ('Mitigation', f.mitigation()),
         ('Error Rate', f.error_rate(note))],
        [('Post-mortem', f.var('postmortem', 'Will be completed by EOD'))],
    ]


def _escalation(f):
    tried = [escape(a.get('description') or 'an action') + ('' if a.get('acted') else ' (not taken)')
             for a in f.attempts()]
    summary = f.get('diagnosis', 'summary')
    return [
        [(None, '🚨 ESCALATION: %s' % f.title()),
         ('Severity', f.severity()),
         ('Incident Commander', f.commander()),
         ('Reason', escape(f.get('escalation', 'reason') or 'the runbook has no safe action left')),
         ('Diagnosis', escape(summary) if summary else 'inconclusive'),
         ('Tried', '; '.join(tried) or 'nothing yet'),
         ('Error Rate', f.error_rate(f.trend))] + f.links(),
        [(None, 'Needed: %s' % f.var('escalate_to', 'a senior engineer to take over'))],
    ]


RENDERERS = {'incident': _incident, 'update': _update, 'resolved': _resolved,
             'escalation': _escalation}


def render(template, incident, template_vars=None, now=None):
    """The runbook's message `template` about `incident`: (plain-text fallback, blocks), both
    ready for Slack (one mrkdwn section block per paragraph, field names in bold, the first line
    in bold). `now` (aware datetime) is the message's time; default, the current time."""
    facts = Facts(incident, template_vars, now or datetime.now(timezone.utc))
    paragraphs = RENDERERS[template](facts)

    def line(name, value, bold):
        return value if name is None else (bold % name) + ' ' + value

    text = '\n\n'.join('\n'.join(line(n, v, '%s:') for n, v in p) for p in paragraphs)
    blocks = []
    for index, paragraph in enumerate(paragraphs):
        lines = [line(n, v, '*%s:*') for n, v in paragraph]
        if index == 0:
            lines[0] = '*%s*' % lines[0]
        blocks.append({'type': 'section', 'text': {'type': 'mrkdwn', 'text': '\n'.join(lines)}})
    return text, blocks


# --- Sending ------------------------------------------------------------------------------------

def web_error(method, body, payload):
    """One sentence for {ok: false, error} from a Web API method."""
    error = str(payload.get('error') or 'unknown_error')
    facts = dict(body, needed=payload.get('needed') or 'named in the error')
    hint = ERROR_HINTS.get(error)
    return 'Slack refused %s with %s%s' % (
        method, error, ': ' + hint % facts if hint else
        ' (see the method\'s documentation for this error)')


def redact_webhook(url):
    """A webhook URL as shown in messages: its secret path hidden."""
    return re.sub(r'^(https?://[^/]+)/.*$', r'\1/********', url)


class Slack:
    def __init__(self, p):
        opts = dict(timeout=p['timeout'], retries=p['retries'], validate_certs=p['validate_certs'],
                    max_retry_after=p['max_retry_after'])
        url = p['webhook_url'] or p['api_url']
        self.client = HttpClient(url, name='Slack', bearer_token=p['token'], **opts)

    def call(self, method, body, accept=()):
        """The answer of a Web API method; ApiError unless ok (or its error is in `accept`)."""
        response = self.client.request('POST', '/' + method, json_body=body, headers=JSON_UTF8)
        payload = decode_json(response)
        if response.status == 429:
            raise ApiError('Slack is rate limiting %s (HTTP 429, Retry-After %s s, more than '
                           'max_retry_after or after all retries): post less often or retry later'
                           % (method, response.headers.get('Retry-After')), 429, payload)
        if response.status != 200 or not isinstance(payload, dict):
            raise ApiError('Slack answered %s with HTTP %s: %s' % (
                method, response.status, response.text(200) or '(empty body)'), response.status)
        if not payload.get('ok') and payload.get('error') not in accept:
            raise ApiError(web_error(method, body, payload), response.status, payload)
        return payload

    def webhook(self, body):
        try:
            response = self.client.request('POST', '', json_body=body, headers=JSON_UTF8)
        except ApiError as err:
            raise ApiError(str(err).replace(self.client.base_url,
                                            redact_webhook(self.client.base_url)))
        answer = response.text(200).strip()
        if response.status != 200:
            raise ApiError('the Slack webhook (%s) answered HTTP %s: %s%s' % (
                redact_webhook(self.client.base_url), response.status, answer or '(empty body)',
                ': ' + WEBHOOK_HINTS[answer] if answer in WEBHOOK_HINTS else ''), response.status)
        return answer


def message_of(p, now=None):
    """(text, blocks) to post: rendered from the template, or as given; (None, None) if none."""
    if p['template']:
        return render(p['template'], p['incident'], p['template_vars'], now)
    return p['text'], p['blocks']


def run(p, check_mode, now=None):
    """Posts the message and/or adds the reaction; the module's result."""
    slack = Slack(p)
    text, blocks = message_of(p, now)
    result = {'changed': False, 'sent': False, 'ts': None, 'channel': p['channel'],
              'thread_ts': p['thread_ts'], 'message': None, 'request': []}
    body = {'text': text}
    if blocks:
        body['blocks'] = blocks
    if p['webhook_url']:
        result['request'].append({'method': 'webhook', 'body': body})
        if not check_mode:
            slack.webhook(body)
        result.update(changed=True, sent=not check_mode)
        return result
    if text:
        body = dict(body, channel=p['channel'])
        if p['thread_ts']:
            body.update(thread_ts=p['thread_ts'], reply_broadcast=p['reply_broadcast'])
        result['request'].append({'method': 'chat.postMessage', 'body': body})
        result['changed'] = True
        if not check_mode:
            answer = slack.call('chat.postMessage', body)
            result.update(sent=True, ts=answer.get('ts'), channel=answer.get('channel'),
                          message=answer.get('message'),
                          thread_ts=p['thread_ts'] or answer.get('ts'))
    if p['reaction']:
        timestamp = p['timestamp'] or result['ts'] or (text and check_mode and '(ts of the message)')
        if not timestamp:
            raise ApiError('reaction needs timestamp: the ts of the message to react to, or a '
                           'message posted by the same task')
        body = {'channel': result['channel'], 'timestamp': timestamp,
                'name': p['reaction'].strip(':')}
        result['request'].append({'method': 'reactions.add', 'body': body})
        if check_mode:
            result['changed'] = True
        else:
            answer = slack.call('reactions.add', body, accept=('already_reacted',))
            result['changed'] = result['changed'] or bool(answer.get('ok'))
            result['sent'] = True
    return result

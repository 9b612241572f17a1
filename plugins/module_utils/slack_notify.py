# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.slack_notify: posts the incident's messages (notify/slack.py renders them) in one
thread, and reacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.notify.slack import TEMPLATES, Slack, render

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
SPEC = dict(argument_spec=ARGUMENT_SPEC, **CONSTRAINTS)


def message_of(p: dict[str, Any], now: datetime | None = None) -> tuple[str | None, list[dict[str, Any]] | None]:
    """(text, blocks) to post: rendered from the template, or as given; (None, None) if none."""
    if p['template']:
        return render(p['template'], p['incident'], p['template_vars'], now)
    return p['text'], p['blocks']


def run(p: dict[str, Any], check_mode: bool, now: datetime | None = None) -> dict[str, Any]:
    """Posts the message and/or adds the reaction; the module's result."""
    slack = Slack(p)
    text, blocks = message_of(p, now)
    result: dict[str, Any] = {'changed': False, 'sent': False, 'ts': None, 'channel': p['channel'],
                              'thread_ts': p['thread_ts'], 'message': None, 'request': []}
    body: dict[str, Any] = {'text': text}
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

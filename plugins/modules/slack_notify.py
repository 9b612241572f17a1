#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: slack_notify
short_description: Post the incident's Slack messages in one thread, and react with the runbook's emoji
version_added: 1.0.0
description:
  - With O(token), uses the Slack Web API. C(chat.postMessage) posts O(text) (with O(blocks)) or the
    message O(template) renders from the O(incident) fact, in the thread O(thread_ts) when given. The
    first message's C(ts) comes back as RV(thread_ts); pass it to every later call so that each
    update lands in the incident's thread. C(reactions.add) adds O(reaction) (the runbook's C(eyes))
    to the message O(timestamp), or to the message the same task posted; a reaction already there is
    success with C(changed=false).
  - With O(webhook_url), posts to an incoming webhook instead, in the channel it was made for. A
    webhook returns no C(ts), so no thread and no reaction.
  - The templates are the runbook's Communication messages, each as mrkdwn section blocks and as the
    plain-text fallback. V(incident) is the first notification (severity, incident commander, start,
    status, error rate against the target, dashboard, bridge); V(update) the status update (status,
    current action, ETA, error rate now and its trend); V(resolved) the resolution (duration, root cause,
    mitigation, error rate); V(escalation) hands over (reason, diagnosis, what was tried); V(closed) ends
    a run that did not resolve the incident (what it leaves to people); V(joined) tells the thread that
    another alert joined the incident.
  - The words follow what the run did. Weak evidence (C(incident.outcome=insufficient_evidence), or
    C(incident.evidence.sufficient=false)) reads as C(NOT ENOUGH EVIDENCE) with its reasons, without
    alarm; advice and a declined approval say that a fix is recommended and not applied; a fix whose
    effect could not be measured (an escalation reason starting with C(acted, could not verify)) reads as
    applied and not verified. An update states the error rate measured now (O(template_vars)), or says it
    was not measured and why, never the triage's figure.
  - A figure that is missing reads as words (C(no traffic), C(n/a), C(not measured)), never as a crash.
  - Slack's refusals (HTTP 200 with C(ok=false)) fail the task with what to do, for example to invite
    the app into the channel on C(not_in_channel) or to check the token on C(invalid_auth). A 429 is
    retried after the C(Retry-After) it gives, when that is at most O(max_retry_after).
  - The token and the webhook URL never appear in the result, also at C(-vvv).
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Sends nothing; RV(request) holds what would be sent and C(changed) is true.
  diff_mode:
    support: none
    description: Messages and events have no before and after; RV(request) shows what is sent.
options:
  token:
    description: A bot token (C(xoxb-...)) with C(chat:write) and C(reactions:write). Never shown in output.
    type: str
  webhook_url:
    description: An incoming webhook URL, instead of O(token). Never shown in output.
    type: str
  channel:
    description: The channel ID (C(C0123ABCD)) or name to post in; required with O(token).
    type: str
  text:
    description: The message, or the plain-text fallback of O(blocks) (notifications show it).
    type: str
  blocks:
    description: Block Kit blocks; need O(text) as their fallback.
    type: list
    elements: dict
  thread_ts:
    description: The C(ts) of the thread's first message (RV(thread_ts) of the first call), to reply in its thread.
    type: str
  reply_broadcast:
    description: Also show the thread reply in the channel.
    type: bool
    default: false
  reaction:
    description: An emoji name, without colons (C(eyes)), to add to the message O(timestamp).
    type: str
  timestamp:
    description: The C(ts) of the message to react to. Default, the message posted by this task.
    type: str
  template:
    description: Render the runbook's message from O(incident) and O(template_vars) instead of O(text) and O(blocks).
    type: str
    choices: [incident, update, resolved, escalation, closed, joined]
  incident:
    description:
      - The C(incident) fact the roles record (service, severity, priority, started_at, triage, diagnosis, mitigation, verify,
        outcome, escalation, evidence, missing_evidence, failure, joined).
    type: dict
  template_vars:
    description:
      - What the incident fact does not hold, used as given (Slack mrkdwn, so C(<@U012AB3CD>) mentions),
        and overrides of what it does.
      - C(commander), C(dashboard), C(bridge), C(eta), C(target_percent) (default 0.5, the SLO's),
        C(update_every) (default C(10 minutes)), C(status), C(action), C(root_cause),
        C(mitigation), C(resolved_at), C(postmortem) (default C(Will be completed by EOD)),
        C(escalate_to), C(title) (default C(High Error Rate)), C(service_name).
      - C(prometheus_url), the server whose graph of the service's error rate over the incident (the triage's
        queries) the messages link to, as C(Graph); C(grafana_url) and C(grafana_dashboard) (a UID), the
        dashboard they link to over the incident, as C(Grafana).
      - The error rate measured now, for an update - C(error_percent) (a number, or V(null) for no traffic),
        C(measured) (false when the measurement failed), C(not_measured_reason), C(measured_at) (RFC 3339).
      - C(mode), the gate (V(advise), V(approve) or V(auto)) when C(incident.mitigation.mode) is not set yet, so
        that the diagnosis's update says whether the fix will be applied.
      - For V(joined) - C(alert) (default the last of C(incident.joined.alerts)) and C(handled_by) (default
        C(incident.joined.handled_by)).
    type: dict
    default: {}
  api_url:
    description: Base URL of the Web API.
    type: str
    default: https://slack.com/api
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: float
    default: 10
  retries:
    description: Extra attempts on 429, 502, 503, 504 or no answer.
    type: int
    default: 2
  max_retry_after:
    description: Longest C(Retry-After), in seconds, waited for on a 429; a longer one fails at once.
    type: float
    default: 30
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Announce the incident in the incidents channel
  sre.runbooks.slack_notify:
    token: "{{ slack_bot_token }}"
    channel: C0INCIDENTS
    template: incident
    incident: "{{ incident }}"
    template_vars:
      commander: "<@U012AB3CD>"
      dashboard: http://localhost:3000/d/app-performance
      bridge: https://zoom.us/j/123456789
    reaction: eyes
  register: announced

- name: Post the status update in the incident's thread
  sre.runbooks.slack_notify:
    token: "{{ slack_bot_token }}"
    channel: C0INCIDENTS
    thread_ts: "{{ announced.thread_ts }}"
    template: update
    incident: "{{ incident }}"
    template_vars:
      eta: 5 minutes

- name: Acknowledge the alert's message, as the runbook says
  sre.runbooks.slack_notify:
    token: "{{ slack_bot_token }}"
    channel: C0ALERTS
    timestamp: "{{ alert_message_ts }}"
    reaction: eyes

- name: Resolution through an incoming webhook
  sre.runbooks.slack_notify:
    webhook_url: "{{ slack_webhook_url }}"
    template: resolved
    incident: "{{ incident }}"
'''

RETURN = r'''
ts:
  description: The C(ts) of the message posted; V(null) in check mode, for a webhook, or for a reaction alone.
  returned: always
  type: str
  sample: "1503435956.000247"
channel:
  description: The channel ID Slack posted in (O(channel) when nothing was posted).
  returned: always
  type: str
  sample: C0INCIDENTS
thread_ts:
  description: The ts of the thread's first message (O(thread_ts), or RV(ts) for a first message); pass it to later calls.
  returned: always
  type: str
  sample: "1503435956.000247"
message:
  description: The message as Slack stored it (C(chat.postMessage)'s C(message)); V(null) if none.
  returned: always
  type: dict
sent:
  description: Whether anything was sent (false in check mode).
  returned: always
  type: bool
request:
  description: The calls made (or, in check mode, that would be made), with their bodies; no secret is in them.
  returned: always
  type: list
  elements: dict
  contains:
    method:
      description: C(chat.postMessage), C(reactions.add) or C(webhook).
      type: str
    body:
      description: The JSON body.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import slack_notify as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

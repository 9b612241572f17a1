#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: pagerduty_event
short_description: Trigger, acknowledge or resolve PagerDuty alerts, send change events, or update an incident by id
version_added: 1.0.0
description:
  - With O(routing_key), speaks to the PagerDuty Events API v2. O(event_action=trigger) opens (or
    adds to) the alert with O(dedup_key); V(acknowledge) and V(resolve) need the O(dedup_key) of the
    trigger. O(change_event=true) records an action taken, such as a rollback, on the service
    (C(/v2/change/enqueue)); change events never page anyone.
  - With O(api_token), speaks to the PagerDuty REST API about one incident, O(incident_id), on behalf of
    the user O(from_email) (the C(From) header), and sets O(incident_status) and/or adds a O(note). This
    is the way to acknowledge or resolve an incident opened by someone else, such as Alertmanager,
    whose dedup key the collection does not know. The incident is read first; one already in (or past)
    the wanted status is left alone (C(changed=false)).
  - Retries, with exponential backoff, a 429 or any 5xx answer and an unreachable server, as
    PagerDuty asks; never a 400, which would be refused again. Failures say what PagerDuty answered
    and what to check.
  - The routing key and the API token never appear in the result, also at C(-vvv).
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description:
      - Sends nothing, not even the read of the incident; RV(request) holds what would be sent and
        C(changed) is true (an event always counts as a change; the incident's status is assumed to change).
  diff_mode:
    support: none
    description: Messages and events have no before and after; RV(request) shows what is sent.
options:
  routing_key:
    description:
      - The integration key of an Events API v2 integration of the service. Never shown in output.
      - Mutually exclusive with O(api_token).
    type: str
  event_action:
    description: The alert event to send; needs O(routing_key).
    type: str
    choices: [trigger, acknowledge, resolve]
  dedup_key:
    description:
      - The alert's deduplication key. Optional for V(trigger) (PagerDuty then makes one, returned as
        RV(dedup_key)); required for V(acknowledge) and V(resolve).
    type: str
  summary:
    description: What happened, in one line; required for V(trigger) and for a change event.
    type: str
  source:
    description: The affected system, for example a hostname or the service; required for V(trigger).
    type: str
  severity:
    description: How hard the system is hit; required for V(trigger).
    type: str
    choices: [critical, error, warning, info]
  timestamp:
    description: When the event happened (ISO 8601). Default, when PagerDuty receives it.
    type: str
  component:
    description: The part of the source that is broken, for a trigger.
    type: str
  group:
    description: A grouping of sources, for a trigger.
    type: str
  class:
    description: The type of the event, for a trigger, for example C(5xx).
    type: str
  custom_details:
    description: Free-form details, for a trigger or a change event.
    type: dict
  links:
    description: Links to attach, for a trigger or a change event; each with C(href) and optional C(text).
    type: list
    elements: dict
  change_event:
    description: Send a change event (an action taken) instead of an alert event; needs O(summary).
    type: bool
    default: false
  events_url:
    description: Base URL of the Events API.
    type: str
    default: https://events.pagerduty.com
  api_token:
    description:
      - A REST API key, sent in the C(Authorization) header as C(Token token=...). Never shown in output.
      - Needs O(incident_id) and O(from_email).
    type: str
  from_email:
    description: The email address of a user of the account, on whose behalf the incident is updated (C(From) header).
    type: str
  incident_id:
    description: The incident's id (for example C(PT4KHLK)), for the REST API.
    type: str
  incident_status:
    description: The status to give the incident; an incident already in it, or past it, is left alone.
    type: str
    choices: [acknowledged, resolved]
  note:
    description: A note to add to the incident (every run adds one).
    type: str
  api_url:
    description: Base URL of the REST API.
    type: str
    default: https://api.pagerduty.com
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: float
    default: 10
  retries:
    description: Extra attempts, with exponential backoff, on 429, 5xx or no answer.
    type: int
    default: 3
  max_retry_after:
    description:
      - Longest wait, in seconds, that a 429 with C(Retry-After) may ask for; a longer one fails at once.
    type: float
    default: 30
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Page on-call
  sre.runbooks.pagerduty_event:
    routing_key: "{{ pagerduty_routing_key }}"
    event_action: trigger
    dedup_key: "{{ incident.id }}"
    summary: "High error rate on {{ incident.service }}: {{ incident.triage.error_rate.error_percent }}% 5xx"
    source: "{{ incident.service }}"
    severity: critical
    class: 5xx
    custom_details:
      diagnosis: "{{ incident.diagnosis.summary | default('pending') }}"
    links:
      - href: http://localhost:3000/d/app-performance
        text: Dashboard

- name: Record the rollback on the service's timeline
  sre.runbooks.pagerduty_event:
    routing_key: "{{ pagerduty_routing_key }}"
    change_event: true
    summary: rolled back inference-gateway to v1.2.2
    source: sre.runbooks

- name: Acknowledge the incident Alertmanager opened, and say why
  sre.runbooks.pagerduty_event:
    api_token: "{{ pagerduty_api_token }}"
    from_email: oncall@example.com
    incident_id: "{{ pagerduty_incident_id }}"
    incident_status: acknowledged
    note: "sre.runbooks is investigating: {{ incident.diagnosis.summary | default('triage running') }}"
'''

RETURN = r'''
dedup_key:
  description: The alert's dedup key (for an incident, its C(incident_key)); pass it to acknowledge or resolve later.
  returned: always
  type: str
  sample: inference-gateway-20251023T142300Z
status:
  description: The Events API's C(status) (C(success)), or the incident's status after the run.
  returned: always
  type: str
  sample: success
message:
  description: The Events API's C(message), or what was done to the incident.
  returned: always
  type: str
  sample: Event processed
incident:
  description: The incident as the REST API returned it after the run; V(null) for events and in check mode.
  returned: always
  type: dict
note:
  description: The note the REST API created, V(null) if none.
  returned: always
  type: dict
sent:
  description: Whether anything was sent that changes PagerDuty (false in check mode).
  returned: always
  type: bool
request:
  description: What was sent (or, in check mode, would be sent), the routing key masked; reads are not listed.
  returned: always
  type: list
  elements: dict
  contains:
    method:
      description: HTTP method.
      type: str
    url:
      description: URL.
      type: str
    body:
      description: JSON body.
      type: dict
    headers:
      description: The C(From) header, for the REST API.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import pagerduty_event as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_registry
short_description: One incident per service at a time, across alerts and runs
version_added: 1.0.0
description:
  - Keeps the record of a service's open incident, so that a second alert for the same service (another fingerprint,
    a repeat after a throttle, a second run from the command line) joins the incident that is open, with the same id,
    document, Slack thread and page, instead of starting a second one.
  - With O(state=open), opens the service's incident, or joins the open one. When another run is handling it
    (RV(handled_by)), the alert is added to the record and this run should only say so. When no run is handling it
    (the last run ended advised, escalated or on weak evidence), this run takes it over and carries on with it.
  - With O(state=released), this run ends and leaves the incident open for the next alert, keeping what it told and
    wrote (O(incident) C(communication) and C(report)). With O(state=closed), the incident is over.
  - An incident whose last run ended more than O(reopen_within) ago is over; a run that has neither released nor
    closed within O(run_ttl) (killed) no longer counts as handling it.
  - The record is C(<state_dir>/incidents/<service>.json) on the host the module runs on (the controller), read and
    written under a file lock, so two runs that start together see each other.
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Reports what it would do; writes nothing.
  diff_mode:
    support: full
    description: The record before and after.
options:
  service:
    description: The service.
    type: str
    required: true
  run_id:
    description: This run.
    type: str
    required: true
  state:
    description: V(open) opens or joins, V(released) ends this run leaving the incident open, V(closed) ends the incident.
    type: str
    choices: [open, released, closed]
    default: open
  incident:
    description:
      - The C(incident) fact. With O(state=open), its C(id) and C(started_at) name a new incident; with the other states,
        its C(communication), C(report) and C(outcome) are kept in the record.
    type: dict
    default: {}
  alert:
    description: The alert that started this run (its fingerprint), kept in the record.
    type: str
    default: ''
  reopen_within:
    description: An open incident whose last run ended longer ago than this, a duration, is over.
    type: str
    default: 1h
  run_ttl:
    description: How long a run counts as handling the incident without releasing it, a duration.
    type: str
    default: 30m
  state_dir:
    description: Where the records live.
    type: path
    default: /var/lib/sre-runbooks
'''

EXAMPLES = r'''
- name: Open the incident of the service, or join the open one
  sre.runbooks.incident_registry:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident: "{{ incident }}"
    alert: "{{ triage_incident_id }}"
  register: registry

- name: Leave the incident open for the next alert
  sre.runbooks.incident_registry:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident: "{{ incident }}"
    state: released
'''

RETURN = r'''
record:
  description: The record after the call (null when there is none).
  returned: always
  type: dict
  contains:
    id:
      description: The incident's id, shared by every run that joins it.
      type: str
    started_at:
      description: When it started (it names the document).
      type: str
    status:
      description: V(open) or V(closed).
      type: str
    alerts:
      description: The alerts that joined it.
      type: list
      elements: str
    runs:
      description: The runs that handled it.
      type: list
      elements: str
    active:
      description: The run handling it (C(run_id), C(until) in epoch seconds), or null.
      type: dict
    communication:
      description: The thread, the status page incident and the page, as the communicate role keeps them.
      type: dict
    report:
      description: Where the document is.
      type: dict
joined:
  description: True when an incident was already open, so this run belongs to it.
  returned: always
  type: bool
handled_by:
  description: The run that is handling the incident now, when it is another one; this run should only say so.
  returned: always
  type: str
path:
  description: The record's file.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import incident_registry as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

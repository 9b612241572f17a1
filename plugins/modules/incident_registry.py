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
    wrote (O(incident) C(communication) and C(report)). With O(state=closed), the incident is over. With
    O(state=ended), it is closed when O(incident) C(outcome) ends it (V(resolved), V(recovered), V(no_action)),
    else released.
  - An incident whose last run ended more than O(reopen_within) ago is over; a run that has neither released nor
    closed within O(run_ttl) (killed) no longer counts as handling it.
  - The record keeps the incident's rollback target, recorded once, by the first run that knows one (its O(incident)
    C(triage.rollback_revision) and C(triage.previous_image), what was live before the bad deploy). A mitigation that
    makes a revision of its own (on Kubernetes an env change or a restart) moves "the previous revision" onto the bad
    deploy, so RV(incident) of every later run of the incident carries the recorded target, not the one its triage
    computed again. A new incident records its own.
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
    description:
      - V(open) opens or joins, V(released) ends this run leaving the incident open, V(closed) ends the incident,
        V(ended) closes or releases it by O(incident) C(outcome).
    type: str
    choices: [open, released, closed, ended]
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
  rollback_to:
    description:
      - With O(state=open), a rollback target given explicitly, as C(rollback.yml -e revision=N) or C(-e image=...) give
        it. It replaces the recorded one in RV(incident) for this run only, and is never recorded.
      - A revision given goes with the image given, if any; an image given alone keeps the recorded revision.
    type: dict
    default: {}
    suboptions:
      revision:
        description: The Deployment's revision to roll back to.
        type: int
      image:
        description: The image to roll back to.
        type: str
'''

EXAMPLES = r'''
- name: Open the incident of the service, or join the open one
  sre.runbooks.incident_registry:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident: "{{ incident }}"
    alert: "{{ triage_incident_id }}"
  register: registry

- name: Take the open incident's id, thread, page and recorded rollback target
  ansible.builtin.set_fact:
    incident: "{{ registry.incident }}"

- name: Join the open incident, rolling back to revision 3 this time
  sre.runbooks.incident_registry:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident: "{{ incident }}"
    rollback_to:
      revision: 3
  register: registry

- name: Close the incident when this run resolved it, else leave it open for the next alert
  sre.runbooks.incident_registry:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident: "{{ incident }}"
    state: ended
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
    rollback:
      description:
        - The rollback target, recorded by the first run that knew one - C(revision) (Kubernetes), C(image) (the
          image or images, comma-separated), C(recorded_at) and C(run_id).
      type: dict
incident:
  description:
    - With O(state=open), this run's O(incident) with the record's C(id), C(started_at), C(communication), C(report)
      and C(rollback), and C(joined) (C(alerts), C(handled_by)) when it joined; its C(triage.rollback_revision) and
      C(triage.previous_image) are the target of a rollback - O(rollback_to), else the recorded one - and
      C(triage.rollback_origin) says where it came from - V(given explicitly), V(recorded by run <run_id> at <time>)
      or V(computed now) (this run recorded it). Null with the other states.
  returned: always
  type: dict
channels_opened:
  description:
    - Whether a run of the runbook opened the incident's channels (C(communication.log) has an C(opened) event); an
      incident opened by C(rollback.yml) or C(scale.yml) has not had its page acknowledged nor its thread opened.
  returned: always
  type: bool
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

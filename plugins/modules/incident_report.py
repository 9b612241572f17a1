#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_report
short_description: Write the incident document and the post-mortem calendar invite from the incident fact
version_added: 1.0.0
description:
  - Writes the document step 3 of the runbook's Resolution & Cleanup asks for,
    C(<directory>/YYYY-MM/incident-YYYYMMDD-HHmm-high-error-rate.md) (from C(incident.started_at),
    UTC), rendered from the C(incident) fact alone, and beside it the same name in C(.ics), the
    post-mortem invite of step 5 (RFC 5545).
  - "The document: summary (service, severity and priority, start, end, duration, the outcome in words,
    the mitigation mode, whether the evidence sufficed and why not),
    timeline of every step and action with its time, evidence (error rate overall and by endpoint,
    top log messages, resources, dependencies, traces, recent changes), actions (decision, each
    attempt with what changed before and after and its commands), what worked and what did not
    (verified or not), SLO impact (from C(incident.slo), as M(sre.runbooks.slo_budget_info) returns
    it), follow-ups, missing evidence and the post-mortem."
  - The words follow what the run did - advice reads as a fix recommended and not applied, a fix whose
    effect could not be measured as applied and not verified, weak evidence as not enough evidence with
    its reasons. A missing figure reads as C(no traffic) or C(n/a).
  - Works on a partial incident, such as that of a run that failed after triage, so that nothing
    learned is lost (run it in an C(always) section); every section then says what is not known.
    Only C(incident.started_at) is required, as it names the files.
  - The post-mortem starts at the first whole hour from 10:00 to 16:00 UTC (ending by 17:00), a
    weekday when there is one, at least four hours after the incident ended and ending within
    O(postmortem.within_hours). Its UID and DTSTAMP derive from the incident, so a rerun with the
    same incident rewrites nothing.
  - Files are written whole through a temporary file and a rename. Run it on the controller
    (C(delegate_to=localhost)), or wherever the documents should live.
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Renders and diffs; writes nothing.
  diff_mode:
    support: full
    description: The document and the invite, before and after.
options:
  incident:
    description:
      - The incident fact the roles build (triage, investigate, diagnose, mitigate, verify), optionally with C(slo).
      - With C(error_rate_history) (the C(history) of M(sre.runbooks.error_rate_info) over the incident), the
        error rate is drawn, overall and of the endpoints that failed most, with the errors' onset, the deploys,
        the actions applied and the recovery marked, as an SVG file beside the document (RV(graph_path)),
        which the document shows.
      - For a High Response Time incident (C(symptom=latency)), with C(latency_history) instead (the C(history_series)
        of M(sre.runbooks.latency_info) over the incident), the highest quantile (the p99) is drawn, overall and of the
        slowest endpoints, against C(triage.latency.slow_threshold_seconds) (the target), with the same marks, as
        C(<document>-response-time.svg); the error rate is not drawn for it.
    type: dict
    required: true
  directory:
    description: Directory of the incident documents; C(YYYY-MM) subdirectories are created in it. Relative to the working directory.
    type: path
    default: incidents
  postmortem:
    description: The post-mortem invite.
    type: dict
    default: {}
    suboptions:
      attendees:
        description:
          - Who to invite, as C(Name <email>), an email, or a role; a role without an address
            becomes a placeholder attendee for the organizer to fill in.
        type: list
        elements: str
        default: [Incident Commander, On-call engineer, Service owner, Observability lead]
      organizer:
        description: The organizer, as C(Name <email>) or an email.
        type: str
      within_hours:
        description: The meeting ends within this many hours of the end of the incident.
        type: int
        default: 48
      duration_minutes:
        description: Length of the meeting.
        type: int
        default: 60
  prometheus_url:
    description:
      - The Prometheus server whose graph of the error rate over the incident the document links to (the
        triage's queries, from before the errors began to the incident's last moment).
    type: str
  grafana_url:
    description: Grafana, whose dashboard O(grafana_dashboard) the document links to over the incident's time range.
    type: str
  grafana_dashboard:
    description: The UID of the dashboard to link (extensions/grafana's is C(sre-runbooks-high-error-rate)).
    type: str
  follow_ups:
    description: Follow-up actions, listed as a checklist.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Run the runbook, and keep what it learned whatever happens
  block:
    - name: Triage
      ansible.builtin.include_role:
        name: sre.runbooks.triage
  always:
    - name: Write the incident document and the post-mortem invite
      sre.runbooks.incident_report:
        incident: "{{ incident }}"
        directory: "{{ playbook_dir }}/../incidents"
        postmortem:
          organizer: On-call <oncall@example.com>
          attendees:
            - Incident Commander <ic@example.com>
            - On-call engineer
            - Service owner <ml-platform@example.com>
            - Observability lead
        follow_ups:
          - Add canary deployment with automatic rollback
      delegate_to: localhost
      when: incident is defined
'''

RETURN = r'''
path:
  description: The incident document.
  returned: always
  type: str
  sample: incidents/2026-11/incident-20261123-1423-high-error-rate.md
graph_path:
  description:
    - The graph (SVG), or null when the incident holds no C(error_rate_history) (no C(latency_history) for a High
      Response Time incident, whose graph is C(...-response-time.svg)).
  returned: always
  type: str
  sample: incidents/2026-11/incident-20261123-1423-high-error-rate-error-rate.svg
ics_path:
  description: The post-mortem invite.
  returned: always
  type: str
  sample: incidents/2026-11/incident-20261123-1423-high-error-rate.ics
postmortem:
  description: The meeting in the invite.
  returned: always
  type: dict
  contains:
    start:
      description: Start, RFC 3339 UTC.
      type: str
    end:
      description: End, RFC 3339 UTC.
      type: str
    uid:
      description: The event's UID.
      type: str
    attendees:
      description: Who is invited.
      type: list
      elements: str
missing:
  description: >-
    What the run did not learn - absent sections, the sources that failed (C(incident.missing_evidence), each
    C(source: reason)) and the diagnosis's missing evidence.
  returned: always
  type: list
  elements: str
  sample: [traces, verification, SLO impact]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

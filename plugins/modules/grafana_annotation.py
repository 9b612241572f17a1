#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: grafana_annotation
short_description: Mark what the runbook did on Grafana dashboards with an annotation, idempotently
version_added: 1.1.0
description:
  - Adds an annotation, a moment or with O(time_end) a region of time, with O(tags) and O(text),
    through Grafana's HTTP API (C(POST /api/annotations)), so that the dashboards show when the
    incident opened, what the runbook did and when the service recovered.
  - Without O(dashboard_uid) it is an organization annotation, shown on every dashboard whose
    annotation query selects its tags (the collection's dashboard selects C(sre.runbooks) and
    C(service:<name>)); with it, it belongs to that dashboard, and with O(panel_id) to one panel.
  - It first looks for the same annotation (C(GET /api/annotations)) with the same tags, within a
    second of O(time), on the same dashboard and panel. One with exactly the same set of tags and
    time is the same annotation - unchanged when its text and end are those asked for, else its
    text and end are patched (C(PATCH /api/annotations/{id})); so a second run adds nothing.
    Otherwise it creates one.
  - Grafana stores a tag trimmed and as C(key:value) at most; the tags are sent so, and a tag with
    two colons is refused.
  - Speaks to the API from where the task runs, normally the controller.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.endpoint
attributes:
  check_mode:
    support: full
    description: Reads the annotations (GET) but sends no POST or PATCH; RV(request) says what would be sent.
  diff_mode:
    support: full
    description: The annotation's dashboard, panel, time, end, tags and text, before and after.
options:
  url:
    description:
      - Grafana's root URL, for example C(https://grafana.example.com), with its sub path when it is
        served under one (C(https://example.com/grafana)).
  bearer_token:
    description:
      - "A service account token, sent as C(Authorization: Bearer <token>); the account needs
        C(annotations:read), C(annotations:create) and C(annotations:write) (the Editor role has
        them). Or give O(username) and O(password). Never shown in output."
    aliases: [token]
  dashboard_uid:
    description:
      - UID of the dashboard the annotation belongs to, as in its URL (C(/d/<uid>/...)). Without it,
        an organization annotation.
    type: str
  panel_id:
    description: Id of the panel of O(dashboard_uid) the annotation belongs to; requires O(dashboard_uid).
    type: int
  time:
    description:
      - When, in epoch seconds or RFC 3339 (C(2026-11-23T14:23:00Z); UTC when it has no offset); sent in milliseconds.
      - V(now) and V(now-15m) are read too, but name another moment on each run, so another annotation.
    type: str
    required: true
  time_end:
    description: The end of a region that starts at O(time), read as O(time) is; none for a moment.
    type: str
  tags:
    description:
      - At least one. With the time, they identify the annotation, so that a second run finds it;
        for example C(sre.runbooks), C(incident:<id>), C(service:<name>) and the action.
    type: list
    elements: str
    required: true
  text:
    description: What happened, shown when the annotation is hovered. Grafana reads HTML in it.
    type: str
    required: true
  max_retry_after:
    description:
      - Longest wait, in seconds, that a 429 with C(Retry-After) may ask for before it is tried again; a longer one fails at once.
    type: float
    default: 30
'''

EXAMPLES = r'''
- name: Mark the runbook's last action on the dashboards that show the service's annotations
  sre.runbooks.grafana_annotation:
    url: "{{ grafana_url }}"
    token: "{{ grafana_token }}"
    time: "{{ incident.mitigation.attempts[-1].at }}"
    tags: [sre.runbooks, "incident:{{ incident.id }}", "service:{{ incident.service }}", action]
    text: "{{ incident.mitigation.attempts[-1].description }}"

- name: Mark the incident as a region on one panel of one dashboard
  sre.runbooks.grafana_annotation:
    url: https://grafana.example.com
    token: "{{ grafana_token }}"
    dashboard_uid: sre-runbooks-high-error-rate
    panel_id: 1
    time: "2026-11-23T14:23:00Z"
    time_end: "2026-11-23T14:51:00Z"
    tags: [sre.runbooks, "incident:{{ incident.id }}", incident]
    text: HighErrorRate on inference-gateway, from its onset to its recovery
'''

RETURN = r'''
annotation:
  description: The annotation after the run (in check mode, as it would be).
  returned: always
  type: dict
  contains:
    id:
      description: Its id (V(null) for one check mode would create).
      type: int
    dashboard_uid:
      description: The dashboard it belongs to; V(null) for an organization annotation.
      type: str
    panel_id:
      description: The panel it belongs to, or V(null).
      type: int
    time:
      description: Its time, epoch milliseconds.
      type: int
    time_end:
      description: The end of its region, epoch milliseconds; V(null) for a moment.
      type: int
    tags:
      description: Its tags, as Grafana stores them.
      type: list
      elements: str
    text:
      description: Its text.
      type: str
created:
  description: Whether an annotation was (in check mode, would be) created.
  returned: always
  type: bool
request:
  description: The POST or PATCH sent (in check mode, not sent), V(null) when nothing was; never holds the token.
  returned: always
  type: dict
  contains:
    method:
      description: POST or PATCH.
      type: str
    url:
      description: The URL.
      type: str
    body:
      description: The JSON body, Grafana's fields (C(dashboardUID), C(panelId), C(time), C(timeEnd), C(tags), C(text)).
      type: dict
diff:
  description: The annotation (as RV(annotation)) before and after; before is empty for one created.
  returned: changed
  type: dict
  contains:
    before:
      description: Before the run.
      type: dict
    after:
      description: After the run.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import grafana_annotation as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: statuspage_incident
short_description: Create and update an Atlassian Statuspage incident, idempotently
version_added: 1.0.0
description:
  - Opens an incident on an Atlassian Statuspage page and takes it through C(investigating),
    C(identified), C(monitoring) and C(resolved), with the status of the affected components, as
    the runbook's External Communication (Status Page) section asks.
  - With O(incident_id) it updates that incident. With O(name) it first looks for an unresolved
    incident of that name (C(GET /pages/{page_id}/incidents/unresolved)) and updates it, so that a
    second run updates instead of creating; only when there is none does it create one
    (C(POST /pages/{page_id}/incidents)). Resolving by O(name) when no such incident is open does
    nothing and warns.
  - An update (C(PATCH /pages/{page_id}/incidents/{incident_id})) sends only what differs (the
    status, the body when it is not the latest update's, the impact override and the components
    whose status differs). Nothing differs, nothing is sent and the task is not changed.
  - Speaks to the API from where the task runs, normally the controller.
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Reads the incident (GET) but sends no POST or PATCH; RV(request) says what would be sent.
  diff_mode:
    support: full
    description: The incident's name, status, latest body, impact override and component statuses, before and after.
options:
  api_key:
    description: "Statuspage API key, sent as C(Authorization: OAuth <key>). Never shown in output."
    type: str
    required: true
  page_id:
    description: The page's identifier.
    type: str
    required: true
  incident_id:
    description: The incident to update. Mutually exclusive with O(name).
    type: str
  name:
    description:
      - Incident name; the unresolved incident of that name is updated, or one is created.
        Mutually exclusive with O(incident_id).
    type: str
  status:
    description: Incident status. A new incident defaults to V(investigating).
    type: str
    choices: [investigating, identified, monitoring, resolved]
  body:
    description: The update's message, shown on the page.
    type: str
  impact_override:
    description: Impact shown instead of the one Statuspage derives from the components.
    type: str
    choices: [none, minor, major, critical]
  components:
    description:
      - Component id to status, one of C(operational), C(under_maintenance),
        C(degraded_performance), C(partial_outage) or C(major_outage).
    type: dict
  deliver_notifications:
    description: Notify the page's subscribers of what this run sends.
    type: bool
    default: true
  api_url:
    description: Base URL of the API.
    type: str
    default: https://api.statuspage.io/v1
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: float
    default: 10
  retries:
    description: Extra attempts, with exponential backoff, when the API cannot be reached or answers 420, 429, 502, 503 or 504.
    type: int
    default: 2
  max_retry_after:
    description:
      - Longest wait, in seconds, that a 429 with C(Retry-After) may ask for before it is tried again; a longer one fails at once.
    type: float
    default: 30
'''

EXAMPLES = r'''
- name: Tell users (the runbook's status page message)
  sre.runbooks.statuspage_incident:
    api_key: "{{ statuspage_api_key }}"
    page_id: "{{ statuspage_page_id }}"
    name: Elevated error rates on the ML inference API
    status: investigating
    body: >-
      We're investigating elevated error rates on the ML inference API. Users may experience
      slower response times or failures. We're actively working on a fix.
    components:
      "{{ statuspage_component_id }}": partial_outage
  register: status_page

- name: Resolve it once verified
  sre.runbooks.statuspage_incident:
    api_key: "{{ statuspage_api_key }}"
    page_id: "{{ statuspage_page_id }}"
    incident_id: "{{ status_page.incident.id }}"
    status: resolved
    body: The error rate is back to normal after a rollback.
    components:
      "{{ statuspage_component_id }}": operational
'''

RETURN = r'''
incident:
  description: The incident after the run (in check mode, as it would be); V(null) when there was nothing to resolve.
  returned: always
  type: dict
  contains:
    id:
      description: Incident id (V(null) for one check mode would create).
      type: str
    name:
      description: Incident name.
      type: str
    status:
      description: Its status.
      type: str
    shortlink:
      description: Short public link.
      type: str
    updated_at:
      description: Last update, RFC 3339.
      type: str
created:
  description: Whether an incident was (in check mode, would be) created.
  returned: always
  type: bool
request:
  description: The POST or PATCH sent (in check mode, not sent), V(null) when nothing was; never holds the API key.
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
      description: The JSON body.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import statuspage_incident as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

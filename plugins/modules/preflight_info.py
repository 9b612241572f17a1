#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: preflight_info
short_description: Checks that the runbook can work with an inventory's live systems
version_added: 1.0.0
description:
  - Checks ahead of an incident what the High Error Rate runbook needs from the systems an
    inventory names, and returns a row per check, V(pass), V(warn) or V(fail), each with what
    it found and, when it is not a pass, what to fix. Run by C(playbooks/preflight.yml).
  - "Prometheus (when O(url) is set): reachable, and the credentials accepted; the request counter
    has series for the service; every label the queries use (O(service_label), O(status_label),
    O(group_by), the O(selector) keys) is on them; the status values look like HTTP codes or
    match O(status_regex); the traffic over O(window) is at least O(min_request_rate), below which
    the runbook never acts; the history held against O(slo_window); the recording rules O(rules)."
  - "O(docker), on the docker host the task runs on: the engine answers, the service has
    containers of the compose project, the state directory is writable."
  - "O(kubernetes): the API server answers; every verb the runbook's modules use is allowed in the
    namespace, asked with SelfSubjectAccessReview as C(kubectl auth can-i) does; metrics-server
    serves pod metrics or not."
  - "O(slack): the token passes C(auth.test) and the channel is found (C(conversations.info)), not
    archived, with the bot in it. A webhook is not checked: a test post would reach the channel.
    O(pagerduty): routing keys have the shape of an integration key (never sent: an event would
    page someone); the REST API token is accepted (C(GET /abilities)) and a From address is set.
    O(statuspage): the page and the component are found with the API key."
  - The checks run concurrently; each call has a timeout. A check that cannot start because
    another failed (no Prometheus, no engine) is left out. Secrets never reach the output.
  - The runbook's own sources (health URLs, logs, traces, resources) are checked by their own
    modules, run on a short window; O(sources) turns their registered results into rows, so that
    the table holds everything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
  - sre.runbooks.request_metric
  - sre.runbooks.request_metric.service
options:
  url:
    description:
      - Base URL of Prometheus, for example C(http://127.0.0.1:9090). Without it (an empty string
        too), nothing of Prometheus is checked, as on the docker host.
    type: str
    required: false
  group_by:
    description: Label the runbook splits the errors by (the endpoint); empty for none.
    type: str
    default: endpoint
  window:
    description: Window of the request rate, as the triage measures it.
    type: str
    default: 5m
  min_request_rate:
    description: Requests per second below which the runbook does not judge the error rate.
    type: float
    default: 0.1
  slo_window:
    description: Window of the SLO, against which the history Prometheus holds is measured.
    type: str
    default: 30d
  rules:
    description: Recording rules the runbook reads when they exist (the SLO's availability and budget).
    type: list
    elements: str
    default: []
  sources:
    description:
      - Registered results of the tasks that read the runbook's other sources, by name (C(health),
        C(logs), C(traces), C(resources)). A failed or skipped task is a failed row, with its message;
        a failing health check too; warnings make a V(warn).
    type: dict
    default: {}
  rows:
    description: Rows of checks made elsewhere (RV(checks) of the docker host's call), put first in the table.
    type: list
    elements: dict
    default: []
  docker:
    description: Checks of the docker host the task runs on.
    type: dict
    suboptions:
      docker_host:
        description: Docker Engine API address on that host.
        type: str
        default: unix:///var/run/docker.sock
      docker_timeout:
        description: Seconds to wait for each answer of the engine.
        type: float
        default: 10
      compose_project:
        description: Compose project of the service; any when unset.
        type: str
      state_dir:
        description: Where the runbook keeps its locks, ledgers and compose overrides on that host.
        type: path
        required: true
  kubernetes:
    description: Checks of the cluster, through the kubeconfig.
    type: dict
    suboptions:
      kubeconfig:
        description: Path of the kubeconfig; C($KUBECONFIG) or C(~/.kube/config) when unset.
        type: path
      context:
        description: Context of the kubeconfig; its current context when unset.
        type: str
      namespace:
        description: Namespace of the service, where the access is asked for.
        type: str
        default: default
      request_timeout:
        description: Seconds to wait for each answer of the API server.
        type: float
        default: 10
  slack:
    description: The Slack app of the incident thread.
    type: dict
    suboptions:
      token:
        description: Bot token (C(xoxb-)). Never shown in output.
        type: str
      webhook_url:
        description: Incoming webhook, when there is no token. Never shown in output.
        type: str
      channel:
        description: Channel ID (C(C...)) of the incident threads.
        type: str
      api_url:
        description: Base URL of the Slack Web API.
        type: str
        default: https://slack.com/api
  pagerduty:
    description: The PagerDuty service of the page and of the escalation.
    type: dict
    suboptions:
      routing_key:
        description: Events API v2 integration key of the service. Never shown in output.
        type: str
      escalation_routing_key:
        description: Integration key of the escalation. Never shown in output.
        type: str
      api_token:
        description: REST API key. Never shown in output.
        type: str
      api_url:
        description: Base URL of the REST API.
        type: str
        default: https://api.pagerduty.com
      from_email:
        description: Email of the user the REST API acts as (its C(From) header).
        type: str
  statuspage:
    description: The Statuspage page and component of the service.
    type: dict
    suboptions:
      api_key:
        description: API key. Never shown in output.
        type: str
      page_id:
        description: Page ID.
        type: str
      component_id:
        description: Component ID of the service.
        type: str
      api_url:
        description: Base URL of the API.
        type: str
        default: https://api.statuspage.io/v1
'''

EXAMPLES = r'''
- name: Check Prometheus and the channels from the controller
  sre.runbooks.preflight_info:
    url: https://prometheus.example.com
    bearer_token: "{{ vault_prometheus_token }}"
    service: checkout
    status_label: code
    slack:
      token: "{{ vault_slack_token }}"
      channel: C0INCIDENTS
  register: preflight

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ preflight.table }}"

- name: Check the docker host over its SSH connection
  sre.runbooks.preflight_info:
    url: ""
    service: checkout
    docker:
      compose_project: shop
      state_dir: /var/lib/sre-runbooks
'''

RETURN = r'''
checks:
  description: A row per check, in the order of O(rows), Prometheus, the other systems and O(sources).
  returned: always
  type: list
  elements: dict
  contains:
    area:
      description: What was checked (C(prometheus), C(docker), C(slack), C(health)...).
      type: str
      sample: prometheus
    check:
      description: Which check of the area.
      type: str
      sample: labels
    status:
      description: V(pass), V(warn) or V(fail).
      type: str
    detail:
      description: What the check found.
      type: str
      sample: "status_label 'code' matches nothing"
    fix:
      description: What to change, for a warn or a fail; empty otherwise.
      type: str
counts:
  description: Number of rows by status.
  returned: always
  type: dict
  sample: {pass: 14, warn: 1, fail: 0}
table:
  description: The rows as lines to print, the fix under each warn and fail, and the counts last.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import preflight_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: error_rate_watch
short_description: Watch a service's 5xx ratio until it stays under target for a stable window
version_added: 0.2.0
description:
  - The runbook's "Verify Metrics" step after a mitigation. Every O(interval) it measures the
    share of the service's requests answering 5xx over O(window), and returns as soon as the
    ratio has stayed under O(target_percent) for O(stable_for) (recovered), or when O(deadline)
    has passed (not recovered; the caller tries the next action or escalates).
  - A sample with less traffic than O(min_request_rate), or none, breaks the stable stretch; a
    silent service is not a healthy one. A failed query does too; the watch goes on and reports
    the errors, and fails only when no query succeeded at all.
  - One task however long the watch, not a task per poll. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.prometheus
    description: Use C(group/sre.runbooks.prometheus) in C(module_defaults) to set the URL once.
options:
  service:
    description: The service, matched against O(service_label).
    type: str
    required: true
  metric:
    description: Request counter.
    type: str
    default: http_requests_total
  service_label:
    description: Label that names the service.
    type: str
    default: service
  status_label:
    description: Label holding the HTTP status code.
    type: str
    default: status
  status_regex:
    description: Regular expression of the status codes that count as errors.
    type: str
    default: 5..
  selector:
    description: Extra label matchers, label to value (exact match).
    type: dict
    default: {}
  window:
    description: Rate window of each measurement; shorter windows forget the incident sooner.
    type: str
    default: 1m
  target_percent:
    description: The error rate under which the service counts as healthy (the runbook's 1%).
    type: float
    default: 1.0
  stable_for:
    description: How long the error rate must stay under target (the runbook's 10 minutes).
    type: str
    default: 10m
  deadline:
    description: How long to watch before giving up (the second runbook escalates after 15 minutes).
    type: str
    default: 15m
  interval:
    description: Time between two measurements.
    type: str
    default: 15s
  min_request_rate:
    description: Requests per second under which a measurement proves nothing.
    type: float
    default: 0.1
'''

EXAMPLES = r'''
- name: Wait until the gateway answers under 1% errors for 10 minutes, 15 at most
  sre.runbooks.error_rate_watch:
    url: http://127.0.0.1:9090
    service: inference-gateway
    target_percent: 1
    stable_for: 10m
    deadline: 15m
  register: verified
  delegate_to: localhost

- name: Escalate when it did not recover
  ansible.builtin.debug:
    msg: "{{ verified.message }}"
  when: not verified.recovered
'''

RETURN = r'''
recovered:
  description: True when the error rate stayed under target for O(stable_for) before the deadline.
  returned: always
  type: bool
stable_seconds:
  description: How long the error rate has been under target at the last measurement.
  returned: always
  type: float
trend:
  description: V(decreasing), V(increasing), V(flat) or V(unknown), first measurement against the last.
  returned: always
  type: str
first_percent:
  description: Error percent at the first measurement with traffic, V(null) without.
  returned: always
  type: float
last_percent:
  description: Error percent at the last measurement with traffic, V(null) without.
  returned: always
  type: float
elapsed_seconds:
  description: How long the watch took.
  returned: always
  type: float
samples:
  description: Every measurement, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: Epoch seconds.
      type: float
    time_iso:
      description: RFC 3339 UTC.
      type: str
    error_percent:
      description: Percent of requests answering an error, V(null) without traffic or when the query failed.
      type: float
    request_rate:
      description: Requests per second, V(null) without traffic or when the query failed.
      type: float
query_errors:
  description: Failed measurements, one message each (the watch went on).
  returned: always
  type: list
  elements: str
message:
  description: The outcome in one line.
  returned: always
  type: str
queries:
  description: The PromQL of the measurement.
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import (
    build_queries, by_group, recovery)
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, endpoint_module_kwargs)
from ansible_collections.sre.runbooks.plugins.module_utils.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus import (
    PrometheusClient, iso, parse_duration)


def measure(client, queries):
    """(errors per second, requests per second) now; None for a series that does not exist."""
    outcomes = run_all({name: (lambda q=queries[name]: client.query(q))
                        for name in ('errors_overall', 'total_overall')})
    for _value, err in outcomes.values():
        if err is not None:
            raise err
    rates = {name: by_group(value.series, None).get('') for name, (value, _err) in outcomes.items()}
    return rates['errors_overall'], rates['total_overall']


def main():
    module = AnsibleModule(**endpoint_module_kwargs(
        service=dict(type='str', required=True),
        metric=dict(type='str', default='http_requests_total'),
        service_label=dict(type='str', default='service'),
        status_label=dict(type='str', default='status'),
        status_regex=dict(type='str', default='5..'),
        selector=dict(type='dict', default={}),
        window=dict(type='str', default='1m'),
        target_percent=dict(type='float', default=1.0),
        stable_for=dict(type='str', default='10m'),
        deadline=dict(type='str', default='15m'),
        interval=dict(type='str', default='15s'),
        min_request_rate=dict(type='float', default=0.1),
    ))
    p = module.params
    try:
        parse_duration(p['window'])
        stable_for, deadline, interval = (parse_duration(p[k])
                                          for k in ('stable_for', 'deadline', 'interval'))
    except ValueError as err:
        module.fail_json(msg='invalid option: %s' % err)
    if not 0 < p['target_percent'] < 100 or interval <= 0 or deadline < stable_for:
        module.fail_json(msg='invalid options: need 0 < target_percent < 100, interval > 0 and '
                             'deadline (%s) >= stable_for (%s)' % (p['deadline'], p['stable_for']))
    matchers = [(p['service_label'], '=', p['service'])] + sorted(
        (k, '=', v) for k, v in p['selector'].items())
    queries = build_queries(p['metric'], matchers, p['status_label'], p['status_regex'],
                            p['window'], '0s', None)
    queries = {k: queries[k] for k in ('errors_overall', 'total_overall')}
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    target = p['target_percent'] / 100.0
    started = time.time()
    samples, shown, errors = [], [], []
    while True:
        now = time.time()
        try:
            errors_rate, total = measure(client, queries)
        except ApiError as err:
            errors_rate, total = None, None
            errors.append(str(err))
        samples.append((now, errors_rate, total))
        percent = round(100.0 * (errors_rate or 0.0) / total, 3) if total else None
        shown.append({'time': now, 'time_iso': iso(now), 'error_percent': percent,
                      'request_rate': total})
        verdict = recovery(samples, target, stable_for, p['min_request_rate'])
        if verdict['recovered'] or now + interval > started + deadline:
            break
        time.sleep(interval)
    if len(errors) == len(samples):
        module.fail_json(msg='no measurement of %s succeeded in %s: %s'
                             % (p['service'], p['deadline'], errors[-1]), queries=queries)
    measured = [s['error_percent'] for s in shown if s['error_percent'] is not None]
    elapsed = round(time.time() - started, 1)
    first, last = (measured[0], measured[-1]) if measured else (None, None)
    if verdict['recovered']:
        message = ('%s recovered: under %g%% errors for %.0f s (now %s%%), after %.0f s'
                   % (p['service'], p['target_percent'], verdict['stable_seconds'], last, elapsed))
    else:
        message = ('%s did not recover within %s: %s%% errors now (%s%% at first, %s), under %g%% '
                   'for only %.0f s of the %s needed'
                   % (p['service'], p['deadline'], last, first, verdict['trend'],
                      p['target_percent'], verdict['stable_seconds'], p['stable_for']))
    module.exit_json(changed=False, recovered=verdict['recovered'],
                     stable_seconds=verdict['stable_seconds'], trend=verdict['trend'],
                     first_percent=first, last_percent=last, elapsed_seconds=elapsed,
                     samples=shown, query_errors=errors, message=message, queries=queries)


if __name__ == '__main__':
    main()

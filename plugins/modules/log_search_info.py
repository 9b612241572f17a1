#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: log_search_info
short_description: Error logs of a service in a time window, and its top error messages
version_added: 1.0.0
description:
  - Reads a service's log lines of a time window from the Docker Engine, Kubernetes pods, Loki or Elasticsearch,
    keeps the errors, and groups them into top messages. This is the runbooks' C(docker logs),
    Loki C({container="inference-gateway"} | json | status_code >= 500) and Kibana
    C(level:ERROR AND service:backend) step.
  - A line counts when its level is at or above O(min_level), or when it records an HTTP status of
    500 or more, and, given O(match), when its message matches.
  - Lines are JSON objects (C(timestamp), C(level), C(message), C(endpoint), C(status_code),
    C(trace_id), C(error), and common aliases such as C(msg), C(severity), C(path), C(status),
    C(traceId), ECS C(log.level)), logfmt, access-log lines or plain text whose level is guessed
    from words such as C(ERROR), C(Exception), C(Traceback), C(FATAL) or C(panic). A Python
    traceback or indented stack frames join the line they belong to; a traceback of its own
    takes its final exception line as message.
  - Messages that differ only in ids, numbers, hex, UUIDs, IPs and ports, quoted values, durations
    or timestamps count as one, for example C(upstream model-service timed out after <num>s).
  - With O(backend=docker), runs on the docker host and reads every container of the compose
    service, running or exited (the startup errors of a crash-looping container matter), stdout
    and stderr. With O(backend=loki) or O(backend=elasticsearch), runs anywhere that reaches the
    API at O(url).
  - With O(backend=kubernetes), runs anywhere that reaches the Kubernetes API (see O(kubeconfig),
    O(host)). Lists the pods of O(selector) in O(namespace) and reads the logs of all their
    containers concurrently (C(GET /api/v1/namespaces/{ns}/pods/{name}/log) with C(sinceSeconds)
    from O(since), C(tailLines) O(max_lines) and C(timestamps)), and, for a container that
    restarted, the log of its previous instance (C(previous=true)), where a crash's reason is. A pod
    whose log cannot be read (a container still waiting to start, for example) is left out with a
    warning and sets RV(partial); the task fails only when no log at all could be read.
  - A backend that cannot be reached, is too slow, rejects the query or answers something else
    than its API fails the task with a message that says what to check. A partial answer
    (Elasticsearch shard failures or time-out, a container whose logs cannot be read) sets
    RV(partial) and shows a warning.
  - Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
  - sre.runbooks.docker
  - sre.runbooks.kubernetes
options:
  backend:
    description:
      - Where the logs are. V(docker) reads the Docker Engine API on the host the task runs on
        (options O(compose_project), O(docker_host), O(docker_timeout)); V(loki) and
        V(elasticsearch) call the API at O(url); V(kubernetes) reads the pods of O(selector) in
        O(namespace) through the Kubernetes API (options O(kubeconfig), O(context), O(host),
        O(api_key), O(ca_cert), O(in_cluster), O(request_timeout)).
    type: str
    required: true
    choices: [docker, elasticsearch, kubernetes, loki]
  service:
    description:
      - The service. For V(docker), the compose service (label C(com.docker.compose.service)); in
        the default queries of V(loki) and V(elasticsearch), the C(container) label and the
        C(service) field; for V(kubernetes), only the name in RV(summary) (the pods are those of
        O(selector)).
    type: str
    required: true
  namespace:
    description: Namespace of the pods, for V(kubernetes).
    type: str
    default: default
  selector:
    description:
      - Label selector of the pods, for V(kubernetes), for example C(app=dhakacart-backend) (as
        C(kubectl logs -l)). Required with O(backend=kubernetes).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the server called, the API at O(url) or the Kubernetes API
        server. Turn off only for a lab.
      - For V(kubernetes), V(false) turns verification off even when the kubeconfig has a CA;
        V(true) keeps the kubeconfig's own C(insecure-skip-tls-verify).
    type: bool
    default: true
  since:
    description:
      - Start of the window; a duration back from now (V(15m), V(1h30m)), V(now-15m), epoch
        seconds or RFC 3339. A bare number is epoch seconds.
    type: str
    default: 15m
  until:
    description: End of the window, in the same forms as O(since).
    type: str
    default: now
  min_level:
    description:
      - Least severe level that counts as an error; records at or above it count, as do records
        with an HTTP status code of 500 or more.
      - One of V(TRACE), V(DEBUG), V(INFO), V(WARNING), V(ERROR), V(CRITICAL), in any case, or an
        alias such as V(warn), V(err) or V(fatal). Records whose level cannot be told rank as
        V(INFO).
    type: str
    default: ERROR
  match:
    description:
      - Regular expression (Python syntax, case-insensitive) that the message or error of a line
        must match to count, for example V(timeout|refused). Applied after reading.
    type: str
  limit:
    description: Matched lines returned in RV(lines), newest first.
    type: int
    default: 50
  top:
    description: Top messages returned in RV(top_messages).
    type: int
    default: 10
  max_lines:
    description:
      - Lines read at most, the newest ones. For V(docker) it is the Engine's C(tail) per
        container and the newest lines of all of them together; for V(kubernetes) the
        C(tailLines) of each container's log and the newest lines of all of them together; for V(loki) the C(limit); for
        V(elasticsearch) the C(size). RV(truncated) tells when there were more.
      - Docker applies C(tail) before C(until), so for an O(until) more than a few seconds in the
        past the whole window is read and its newest O(max_lines) lines kept.
    type: int
    default: 5000
  query:
    description:
      - For V(loki), the LogQL log query. Defaults to
        C({container="<service>"} | json | level=~"(?i)error|err|critical|crit|fatal|panic" or
        status_code >= 500), the levels following O(min_level) (no filter for V(TRACE)). The
        default keeps JSON lines only; for a plain-text service give a line filter such as
        C({container="app"} |~ "(?i)error|exception").
      - For V(elasticsearch), the C(query_string) query. Defaults to
        C((level:(ERROR OR CRITICAL OR FATAL) OR status_code:>=500) AND service:"<service>"),
        the runbook's Kibana filter with the levels following O(min_level).
      - Ignored by V(docker) and V(kubernetes), which read every line and filter locally.
    type: str
  index:
    description: Index, alias, data stream or pattern searched with V(elasticsearch).
    type: str
    default: logs-*
  compose_project:
    description:
      - Compose project of the service (label C(com.docker.compose.project)), for V(docker), to
        tell apart services of the same name in several projects.
    type: str
  url:
    description:
      - Base URL of the Loki (for example C(http://127.0.0.1:3100)) or Elasticsearch (C(https://es:9200))
        API. Required with O(backend=loki) and O(backend=elasticsearch); not used by V(docker).
    type: str
    required: false
notes:
  - Every call has a time-out (O(timeout), O(docker_timeout) for the Docker Engine,
    O(request_timeout) for the Kubernetes API).
  - Loki's C(end) is exclusive; Elasticsearch's range and Docker's C(until) include O(until).
seealso:
  - name: Loki query_range
    description: The Loki HTTP API for log queries.
    link: https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time
  - name: Elasticsearch search API
    description: Search, shard failures and partial results.
    link: https://www.elastic.co/guide/en/elasticsearch/reference/current/search-search.html
  - name: Docker Engine API, container logs
    description: The multiplexed log stream of a container.
    link: https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerLogs
'''

EXAMPLES = r'''
- name: Errors of the inference gateway in the last 15 minutes, from its containers
  sre.runbooks.log_search_info:
    backend: docker
    service: inference-gateway
    compose_project: sre-demo
  register: logs

- name: Say what fails most
  ansible.builtin.debug:
    msg: "{{ logs.summary }}"

- name: The runbook's Loki query, for a multi-tenant Loki
  sre.runbooks.log_search_info:
    backend: loki
    url: http://loki.monitoring:3100
    headers:
      X-Scope-OrgID: ml-platform
    service: inference-gateway
    since: now-30m

- name: The DhakaCart Kibana filter, only time-outs and refused connections
  sre.runbooks.log_search_info:
    backend: elasticsearch
    url: https://es.dhakacart.local:9200
    username: sre
    password: "{{ vault_es_password }}"
    index: logs-dhakacart-*
    service: backend
    query: 'level:ERROR AND service:backend'
    match: timeout|refused

- name: Errors of the DhakaCart backend's pods, the crashed instances' included
  sre.runbooks.log_search_info:
    backend: kubernetes
    context: dhakacart-prod
    namespace: dhakacart
    selector: app=dhakacart-backend
    service: dhakacart-backend
    since: 30m
  register: logs

- name: A crash-looping container's startup errors, including the exited ones
  sre.runbooks.log_search_info:
    backend: docker
    service: inference-gateway
    since: 1h
    min_level: WARNING
'''

RETURN = r'''
backend:
  description: The backend read.
  returned: always
  type: str
  sample: docker
service:
  description: The service.
  returned: always
  type: str
  sample: inference-gateway
since:
  description: Start of the window, epoch seconds.
  returned: always
  type: float
since_iso:
  description: RV(since) as RFC 3339 UTC.
  returned: always
  type: str
  sample: '2026-11-23T14:08:00Z'
until:
  description: End of the window, epoch seconds.
  returned: always
  type: float
until_iso:
  description: RV(until) as RFC 3339 UTC.
  returned: always
  type: str
min_level:
  description: The minimum level applied, canonical (V(TRACE), V(DEBUG), V(INFO), V(WARNING), V(ERROR), V(CRITICAL)).
  returned: always
  type: str
query:
  description: The LogQL or query_string sent, to run it by hand; V(null) for V(docker) and V(kubernetes).
  returned: always
  type: str
scanned:
  description: Lines read from the backend (for Loki and Elasticsearch, those its query selected).
  returned: always
  type: int
  sample: 5000
matched:
  description: Error records in the window (at or above O(min_level), or 5xx, and matching O(match)).
  returned: always
  type: int
  sample: 212
truncated:
  description: True when O(max_lines) was reached, so older lines of the window were not read.
  returned: always
  type: bool
partial:
  description: True when the backend answered only in part (see RV(backend_warnings)).
  returned: always
  type: bool
backend_warnings:
  description: Why the answer is partial; each is also shown as an Ansible warning.
  returned: always
  type: list
  elements: str
  sample: ['Elasticsearch: 1 of 5 shards failed, the hits are partial: index logs-2026.11.23 shard 2 on node es-2: node_disconnected_exception: node left']
distinct_messages:
  description: Number of distinct message patterns among the matched records.
  returned: always
  type: int
level_counts:
  description: Records of the window read, by level (V(UNKNOWN) when it could not be told).
  returned: always
  type: dict
  sample: {INFO: 4750, WARNING: 38, ERROR: 212}
summary:
  description: One sentence on what was found.
  returned: always
  type: str
  sample: "inference-gateway: 212 lines at ERROR or above, or 5xx, of 5000 read between 2026-11-23T14:23:00Z and
    2026-11-23T14:38:00Z; top: 'upstream model-service failed: timed out' x180 (84.9%) on /predict, /embed"
lines:
  description: The matched records, newest first, at most O(limit).
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: Epoch seconds (the backend's timestamp of the line).
      type: float
    time_iso:
      description: RV(lines[].time) as RFC 3339 UTC with milliseconds.
      type: str
    level:
      description: Canonical level, V(null) when it could not be told.
      type: str
    message:
      description: The message; for a traceback of its own, its final exception line.
      type: str
    endpoint:
      description: Endpoint or path, V(null) when the line has none.
      type: str
    method:
      description: HTTP method, V(null) when the line has none.
      type: str
    status_code:
      description: HTTP status code, V(null) when the line has none.
      type: int
    trace_id:
      description: Trace id, to look the request up in the tracing backend.
      type: str
    error:
      description: The error or exception recorded with the line.
      type: str
    source:
      description: >-
        Container name (docker), stream labels (loki), index (elasticsearch) or C(pod/container),
        with C( (previous)) for a previous instance (kubernetes).
      type: str
    stream:
      description: V(stdout), V(stderr) or V(tty) (docker), the C(stream) label (loki), else V(null).
      type: str
    line:
      description: The raw line (with its traceback lines), shortened to 2000 characters.
      type: str
top_messages:
  description: The matched records grouped by message pattern, most frequent first, at most O(top).
  returned: always
  type: list
  elements: dict
  sample:
    - pattern: 'upstream model-service failed: timed out'
      count: 180
      percent: 84.9
      level: ERROR
      first_seen: 1795443902.311
      first_seen_iso: '2026-11-23T14:25:02.311Z'
      last_seen: 1795444671.06
      last_seen_iso: '2026-11-23T14:37:51.060Z'
      endpoints: {/predict: 150, /embed: 30}
      status_codes: {'504': 180}
      sources: {sre-demo_inference-gateway_1: 180}
      example: '{"timestamp":"2026-11-23T14:37:51.060Z","level":"ERROR","message":"upstream model-service failed: timed out",...}'
      example_trace_id: 66f9c3568005047e5e56740f0d5fabe1
  contains:
    pattern:
      description: The message with placeholders C(<num>), C(<hex>), C(<uuid>), C(<ip>), C(<ts>), C(<id>), C(<str>).
      type: str
    count:
      description: Matched records with this pattern.
      type: int
    percent:
      description: Share of RV(matched), in percent.
      type: float
    level:
      description: The most severe level seen.
      type: str
    first_seen:
      description: Epoch seconds of the first occurrence in the window.
      type: float
    first_seen_iso:
      description: RV(top_messages[].first_seen) as RFC 3339 UTC.
      type: str
    last_seen:
      description: Epoch seconds of the last occurrence.
      type: float
    last_seen_iso:
      description: RV(top_messages[].last_seen) as RFC 3339 UTC.
      type: str
    endpoints:
      description: Occurrences by endpoint.
      type: dict
    status_codes:
      description: Occurrences by HTTP status code.
      type: dict
    sources:
      description: Occurrences by source (container, stream labels or index).
      type: dict
    example:
      description: The raw line of the latest occurrence, shortened to 500 characters.
      type: str
    example_trace_id:
      description: The trace id of the latest occurrence that has one.
      type: str
containers:
  description: The containers of the service read, running or exited.
  returned: when O(backend=docker)
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    id:
      description: Short container id.
      type: str
    state:
      description: State, for example V(running) or V(exited).
      type: str
    status:
      description: Docker's status text, for example C(Exited (1) 2 minutes ago).
      type: str
pods:
  description: The pods of O(selector) whose logs were read, in the shape M(sre.runbooks.k8s_status_info) returns them.
  returned: when O(backend=kubernetes)
  type: list
  elements: dict
  contains:
    name:
      description: Pod name.
      type: str
    phase:
      description: Pod phase (V(Running), V(Pending), ...).
      type: str
    ready:
      description: Whether the pod is ready.
      type: bool
    restarts:
      description: Restarts of its containers.
      type: int
    node:
      description: Node the pod runs on.
      type: str
    waiting_reason:
      description: Why a container waits, for example V(CrashLoopBackOff); V(null) when none does.
      type: str
    waiting_message:
      description: The message of that wait.
      type: str
    last_terminated_reason:
      description: Reason of a container's last termination, for example V(OOMKilled) or V(Error).
      type: str
    last_exit_code:
      description: Its exit code.
      type: int
    started_at:
      description: When the running container (else the pod) started, RFC 3339.
      type: str
total_hits:
  description: Hits Elasticsearch counted for the query (at least this many when capped at 10000).
  returned: when O(backend=elasticsearch)
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import log_search_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

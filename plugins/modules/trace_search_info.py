#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: trace_search_info
short_description: Failing traces of a service from Jaeger, summarised by where the errors sit
version_added: 1.0.0
description:
  - Step 8 of the High Error Rate runbook (Review Traces) without the UI. Searches the Jaeger query
    API (C(GET /api/traces)) for the service's traces with O(tags) (C(error=true) by default) over
    the last O(lookback), and tells where in the request flow they fail, whether external calls
    time out, and which dependency is the likely culprit.
  - For each trace, the error source is the deepest error span, an error span with no error span
    below it; its service comes from the trace's C(processes), its message from the tags
    C(error.message), C(otel.status_description) or C(exception.message), else from an error log
    (fields C(message), C(error.object)), else from its status code. Sources are counted by
    service, operation and message across traces, with a few trace ids to open in the UI.
  - Slow external calls are client spans (C(span.kind=client) or a C(peer.service) tag) lasting at
    least O(slow_ms), grouped by service, operation and peer, with their p95 and the number that
    timed out.
  - RV(dependency_suspect) is the service most error sources are blamed on when it is not O(service).
    An error source that is a client call with no span of the callee below it (the callee refused or
    never answered) is blamed on the callee (its peer).
  - Jaeger has no server-side lookback; the module sends C(start) and C(end) in microseconds.
  - Runs on the controller. Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.endpoint
options:
  url:
    description:
      - Base URL of the Jaeger query service, for example C(http://127.0.0.1:16686), including its
        C(--query.base-path) when one is set (C(http://host/jaeger)).
    type: str
    required: true
  service:
    description: Service whose traces are searched, as Jaeger names it.
    type: str
    required: true
  operation:
    description: Only traces with this operation of O(service), for example C(POST /predict).
    type: str
  tags:
    description:
      - Span tags the traces must have, sent as the JSON C(tags) parameter. Values are sent as
        strings (Jaeger rejects other JSON types), so C(true) becomes C("true").
    type: dict
    default: {"error": "true"}
  lookback:
    description: How far back from now to search, a duration such as C(15m) (the runbook's) or C(1h).
    type: str
    default: 15m
  limit:
    description: Most traces to fetch. RV(limit_reached) tells when there may be more.
    type: int
    default: 100
  min_duration:
    description: Only traces at least this long, a duration such as C(2s) or C(500ms).
    type: str
  slow_ms:
    description: Milliseconds from which a client span is a slow external call.
    type: float
    default: 1000
'''

EXAMPLES = r'''
- name: Where do the gateway's requests fail?
  sre.runbooks.trace_search_info:
    url: http://127.0.0.1:16686
    service: inference-gateway
  register: traces

- name: Slow failing predictions only
  sre.runbooks.trace_search_info:
    url: http://jaeger-query.observability:16686
    service: inference-gateway
    operation: POST /predict
    min_duration: 2s
    lookback: 1h
    limit: 200

- name: Point at the dependency
  ansible.builtin.debug:
    msg: "{{ traces.dependency_suspect }} fails: {{ traces.error_sources[0].message }}"
  when: traces.dependency_suspect is not none
'''

RETURN = r'''
traces:
  description: Number of traces Jaeger returned.
  returned: always
  type: int
  sample: 42
error_traces:
  description: Traces with at least one error span.
  returned: always
  type: int
  sample: 40
error_spans:
  description: Error spans in all those traces, parents that only pass an error on included.
  returned: always
  type: int
limit_reached:
  description: True when Jaeger returned O(limit) traces, so there may be more.
  returned: always
  type: bool
error_sources:
  description: Where the errors sit (the deepest error spans), the most frequent first.
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: Service of the span, V(null) when the trace has no process for it.
      type: str
      sample: model-service
    operation:
      description: Operation of the span.
      type: str
      sample: POST /infer
    message:
      description: The error message, V(null) when the span carries none.
      type: str
      sample: upstream request timeout after 2.0s
    peer:
      description: The service a failing client span called, else V(null).
      type: str
    count:
      description: Error spans with this service, operation and message.
      type: int
    trace_count:
      description: Traces they occur in.
      type: int
    trace_ids:
      description: Up to 5 of those trace ids.
      type: list
      elements: str
slow_calls:
  description: Client spans of at least O(slow_ms), grouped by service, operation and peer, the most first.
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: Calling service.
      type: str
    operation:
      description: Operation of the client span.
      type: str
    peer:
      description: Called service (C(peer.service), the address tags, or the service of the span below).
      type: str
    count:
      description: Slow calls.
      type: int
    max_ms:
      description: Longest, in milliseconds.
      type: float
    p95_ms:
      description: 95th percentile (nearest rank), in milliseconds.
      type: float
    timeouts:
      description: Those whose message mentions a timeout or a deadline.
      type: int
    errors:
      description: Those that are error spans.
      type: int
    trace_ids:
      description: Up to 5 trace ids.
      type: list
      elements: str
error_services:
  description: Error sources blamed on each service, the most first.
  returned: always
  type: dict
  sample: {model-service: 38, inference-gateway: 2}
dependency_suspect:
  description: The service most errors are blamed on when it is not O(service), else V(null).
  returned: always
  type: str
  sample: model-service
message:
  description: One sentence summing it up.
  returned: always
  type: str
query:
  description: The query parameters sent to C(/api/traces) (start and end in microseconds).
  returned: always
  type: dict
  sample: {service: inference-gateway, tags: '{"error":"true"}', start: '1795456800000000',
           end: '1795457700000000', limit: '100'}
start_iso:
  description: Start of the search window, RFC 3339 UTC.
  returned: always
  type: str
end_iso:
  description: End of the search window, RFC 3339 UTC.
  returned: always
  type: str
jaeger_errors:
  description: The C(errors) of Jaeger's answer (C({code, msg, traceID})); each is also an Ansible warning.
  returned: always
  type: list
  elements: dict
partial:
  description: True when Jaeger reported errors with its data, so the traces may be incomplete.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import trace_search_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

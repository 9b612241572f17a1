#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: diagnose
short_description: Ranked causes of a High Error Rate or High Response Time incident, with evidence, and one action
version_added: 1.0.0
description:
  - Applies the High Error Rate runbook's rules to the evidence gathered in the C(incident) fact by
    the triage and investigate roles, and returns the causes it supports, ranked, each with its
    evidence, a confidence, the runbook step it maps to and one action with its parameters.
  - "Rules: service down (crash loop, OOM, configuration error, port conflict); errors that began
    right after a deploy or configuration change (rollback); CPU or memory saturation (scale or
    raise limits); errors concentrated on one endpoint (disable its feature flag); a failing
    dependency (circuit breaker, or a restart to reset exhausted pools); otherwise escalate."
  - "When the incident's C(symptom) is V(latency) (the High Response Time runbook, with latency_info's
    result, its onset included, in C(incident.triage.latency)), the rules are the response time's:
    a deploy or configuration change shortly before the slowdown began (rollback); saturation and
    the database as for errors; a slow dependency in the traces' slow calls (a circuit breaker when
    its calls also time out or fail, else its owner is escalated to); one slow endpoint with no
    change to blame (escalated); the service down as for errors. Causes are ranked by confidence."
  - On Kubernetes (O(platform=kubernetes), or the incident's C(platform)) the service-down checks
    are those of C(sre.runbooks.k8s_status_info) in C(incident.service_down.checks), and the pods' state
    decides. An image that cannot be pulled (C(ImagePullBackOff), C(ErrImagePull)) is rolled back;
    so is a rollout past its progress deadline, or a crash loop, when a deploy or configuration
    change preceded it (a crash loop without one is restarted). A missing ConfigMap or Secret
    (C(CreateContainerConfigError)) is escalated naming it; pods that no node has room for
    (C(Unschedulable), Insufficient cpu or memory) are escalated as an infrastructure issue;
    C(OOMKilled) raises the memory limit (a preceding deploy is the next action of the plan);
    running pods that are not ready are restarted unless a dependency they wait for fails.
  - On Kubernetes V(restart) is a rollout restart; there is no V(recreate) and no V(free_port)
    (ports are per pod). CPU saturation scales out by O(scale_step) replicas, up to O(max_replicas)
    and the HorizontalPodAutoscaler's maximum; at either ceiling the CPU limit is raised instead.
    A rollback of a change that carries revisions names the revision to undo to
    (C(incident.triage.rollback_revision), else the change's C(previous_revision)).
  - Each cause is credited with the errors it explains (C(explains)), from the error rate split by
    status code (C(incident.triage.error_rate.by_status), each status with its own onset) and the
    log signatures (C(incident.investigate.logs.top_messages), with count, first seen and status codes).
    The dependency's are its upstream signatures (timed out, refused, connection...) and, where
    no signature says, V(502) and V(504); the saturation's its overload and memory signatures and
    V(503); a deploy's the rest of the statuses whose onset is at or after it, of signatures first
    seen at or after it. A status is shared out by its signatures' counts.
  - Causes that hold (confidence at least O(min_confidence)) are ranked by the share of the errors
    they explain, so that the first action removes the most errors; shares within 10 points of
    the largest of their tier rank by confidence, then by the runbook's order. Without
    C(by_status) (an older result, or its query failed), and for causes that do not hold, the
    ranking is by confidence, then the runbook's order, as RV(ranking) says.
  - A deploy that came after the errors began is never blamed (it is listed in RV(ruled_out)),
    unless errors of the service's own, split by status, began after it. A rollback never returns
    to a version known bad, the one the errors began after, one a rollback of this incident
    (C(incident.mitigation.attempts)) moved away from, or one deployed in the change window that
    a later deploy rolled back or that was followed by a rise of the service's own errors; with no
    other target the cause escalates, saying why, and the rollback is listed in RV(refused).
  - Evidence that could not be gathered is listed in RV(missing_evidence), and an action that
    interrupts the service (rollback, restart, recreate, freeing a port) is never recommended when
    the evidence it rests on is missing or the error rate is partial. Scaling out does not.
  - Pure computation, no I/O; never changes anything. An action plugin runs it on the controller
    without starting a module process.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
options:
  incident:
    description:
      - The C(incident) fact, with C(triage) (C(error_rate), C(health), C(changes), C(service_down),
        C(rollback_revision)), C(investigate) (C(logs), C(resources), C(dependencies), C(traces))
        and C(service_down.checks) as the roles record them. A part whose task failed carries
        C(failed) and C(msg).
    type: dict
    required: true
  platform:
    description:
      - Where the service runs; default, the incident's C(platform). On Kubernetes the service-down
        checks are read as C(sre.runbooks.k8s_status_info) returns them and saturation is answered by
        scaling out.
    type: str
    choices: [compose, kubernetes]
  port:
    description: Port the service listens on, named in a port-conflict action.
    type: int
  cpu_percent:
    description: CPU use, in percent of the limit, above which the service is saturated.
    type: float
    default: 90
  memory_percent:
    description: Memory use, in percent of the limit, above which OOM kills threaten.
    type: float
    default: 95
  max_deploy_gap:
    description: How long before the onset a deploy or configuration change can still be the cause.
    type: str
    default: 30m
  database_idle_after:
    description:
      - Database Issues (with O(incident) C(investigate.database), postgres_activity_info's result) a session of
        another application idle in its transaction, or running one query, this long while it blocks the
        service's sessions, is ended (C(terminate_sessions), C(cancel_queries)).
    type: str
    default: 10s
  min_confidence:
    description: Confidence below which no action is recommended (escalate instead).
    type: float
    default: 0.5
  feature_flag_pattern:
    description: Name of an endpoint's feature flag; C({name}) is the endpoint in capitals.
    type: str
    default: FEATURE_ENDPOINT_{name}_ENABLED
  circuit_breaker_env:
    description: Environment of the circuit breaker action (runbook option 4).
    type: dict
    default: {CIRCUIT_BREAKER_THRESHOLD: '5', CIRCUIT_BREAKER_TIMEOUT: '60'}
  scale_step:
    description:
      - On Kubernetes, replicas a scale-out adds to the current count (the HPA's current replicas,
        else the Deployment's), as the DhakaCart runbook scales up temporarily.
    type: int
    default: 2
  max_replicas:
    description:
      - On Kubernetes, most replicas a scale-out may recommend (the DhakaCart runbook's
        C(kubectl scale --replicas=8)); at this count, or at the HPA's maximum, the CPU limit is
        raised instead.
    type: int
    default: 8
'''

EXAMPLES = r'''
- name: Decide what to do
  sre.runbooks.diagnose:
    incident: "{{ incident }}"
    port: 8000
  register: diagnosis

- name: Show the recommendation
  ansible.builtin.debug:
    msg: "{{ diagnosis.recommended.cause }} -> {{ diagnosis.action.description }}"
'''

RETURN = r'''
causes:
  description: Supported causes, most likely first.
  returned: always
  type: list
  elements: dict
  contains:
    cause:
      description: V(service_down), V(deploy), V(saturation), V(endpoint) or V(dependency).
      type: str
    confidence:
      description: From 0 to 1.
      type: float
    evidence:
      description: The facts behind it, one sentence each.
      type: list
      elements: str
    runbook_step:
      description: The runbook section it maps to.
      type: str
    action:
      description: The action for this cause (see RV(action)).
      type: dict
    explains:
      description: The errors credited to this cause.
      type: dict
      contains:
        share:
          description: >-
            Share of all the errors, from 0 to 1; V(null) without C(by_status) (an endpoint's comes
            from the error rate by endpoint).
          type: float
        error_rate:
          description: Those errors per second; V(null) when not known.
          type: float
        statuses:
          description: The status codes credited, for example V(500).
          type: list
          elements: str
        signatures:
          description: The log signatures credited, most frequent first.
          type: list
          elements: dict
          contains:
            pattern:
              description: The message with what varies masked.
              type: str
            count:
              description: Lines of it in the logs read.
              type: int
      sample: {share: 0.65, error_rate: 2.35, statuses: ['500'], signatures: [
               {pattern: "prediction handler failed: TypeError: '<str>' object is not subscriptable",
                count: 141}]}
    infrastructure:
      description: >-
        True when the cause is the cluster's (pods no node has room for): escalate to the
        infrastructure team.
      type: bool
    database:
      description: >-
        True when the failing dependency looks like a database (postgres, mysql, db, redis, an
        exhausted pg_pool): escalate to the database team.
      type: bool
recommended:
  description:
    - The cause whose action is recommended, or an escalation; an escalation carries
      C(infrastructure) and C(database) of the causes that stand (confidence at least
      O(min_confidence)), and an C(explains) that credits it with nothing.
  returned: always
  type: dict
action:
  description: The one recommended action.
  returned: always
  type: dict
  contains:
    name:
      description: >-
        V(rollback), V(feature_flag), V(circuit_breaker), V(scale), V(resources), V(restart),
        V(recreate), V(free_port) or V(escalate).
      type: str
    params:
      description:
        - What the action needs, for example C(to_image) or C(env). A Kubernetes rollback carries
          C(to_revision) (V(null) for the previous revision); V(scale) carries C(replicas), a count
          or a change such as V(+2); V(resources) C(memory_factor) or C(cpu_factor); an
          escalation for a missing ConfigMap or Secret C(missing), for unschedulable pods
          C(insufficient), for a rollback withheld C(reason) and C(known_bad) (the image it would
          have returned to).
      type: dict
    description:
      description: >-
        The action in words, for example C(rollback to v1.2.2), C(roll back to revision 11) followed
        by the image tag in brackets, or C(scale dhakacart-backend from 3 to 5 replicas).
      type: str
    disruptive:
      description: True when it interrupts the service (its C(disruption) is V(disruptive)).
      type: bool
    disruption:
      description:
        - How much the action interrupts the service, V(none), V(restart) or V(disruptive); the
          mitigation refuses a V(disruptive) action on partial evidence.
      type: str
    calls:
      description:
        - The module call that does the action, per platform (C(compose), C(kubernetes)), each with
          C(module) (a FQCN), C(params) (the options that depend on the action) and C(disruption);
          V(null) for a platform where no module of the collection does it (the mitigation
          escalates it to a human).
      type: dict
  sample: {name: rollback, description: rollback to v1.2.2, disruptive: true, disruption: disruptive,
           params: {to_image: "sre-demo/inference-gateway:v1.2.2"},
           calls: {compose: {module: sre.runbooks.compose_service, disruption: disruptive,
                             params: {state: rolled_back, image: "sre-demo/inference-gateway:v1.2.2"}},
                   kubernetes: {module: sre.runbooks.k8s_rollout, disruption: disruptive,
                                params: {state: undone, to_revision: null}}}}
plan:
  description:
    - The causes whose actions may be tried, in turn, best first; the first is RV(recommended).
      Empty when the decision is to escalate. The mitigation tries the next one when the first
      did not bring the error rate down, within its guardrails.
  returned: always
  type: list
  elements: dict
summary:
  description: The decision in one line.
  returned: always
  type: str
ruled_out:
  description: Changes that came after the errors began, so are not their cause.
  returned: always
  type: list
  elements: str
refused:
  description: Actions not recommended for want of evidence, and rollbacks withheld because the version is known bad.
  returned: always
  type: list
  elements: str
missing_evidence:
  description: Evidence that could not be gathered, and why.
  returned: always
  type: list
  elements: str
partial:
  description: True when some evidence is missing or partial.
  returned: always
  type: bool
partial_reasons:
  description: Why the evidence is partial, one sentence each (the measured symptom, the logs, the traces, what is missing).
  returned: always
  type: list
  elements: str
ranking:
  description: How RV(causes) and RV(plan) are ranked.
  returned: always
  type: dict
  contains:
    by:
      description: >-
        V(explained_errors) (the share of the errors each cause explains, then confidence) or
        V(confidence) (the error rate by status was not available).
      type: str
    note:
      description: The same in words.
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import diagnose as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

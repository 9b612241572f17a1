#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: resource_usage_info
short_description: CPU, memory, CPU throttling, restarts and OOM kills of a service's containers
version_added: 1.0.0
description:
  - Step 6 of the High Error Rate runbook (Check Resource Utilization), per container of a service,
    with the runbook's verdicts (CPU above 90%, memory above 95%) and the evidence the diagnosis needs
    (CPU throttling, restarts, OOM kills).
  - With O(source=docker) (the default) it runs on the docker host and reads the Docker Engine API,
    the containers of the compose service, then concurrently the stats, the inspect data of each
    container and the service's container events since O(since).
  - CPU percent is of the container's CPU limit when one is set (C(--cpus), or CPU quota over period,
    capped by the number of CPUs of C(--cpuset-cpus)), else of one core, as C(docker stats) shows
    it; so a container without a limit that uses two full cores reads 200%. RV(containers[].cpu_basis)
    says which, and RV(containers[].host_cpu_percent) gives the share of the whole host.
  - Memory is the working set (usage minus the inactive file cache, as C(docker stats)) over the
    memory limit. Without a limit the Docker Engine reports the host's memory as the limit;
    RV(containers[].limit_set) is then false and the percent is of the host's memory.
  - CPU throttling is the share of CFS periods in which the container was throttled, over the stats
    sample of about one second (and since the start in RV(containers[].throttled_ratio_total)).
  - OOM kills come from the C(oom) events since O(since), because C(State.OOMKilled) is reset when a
    container restarts; a container whose last exit was an OOM kill counts once even without an event
    in the period. Non-zero exits come from the C(die) events.
  - A stopped container is listed with its state and V(null) figures.
  - With O(source=prometheus) it runs on the controller and reads the PromQL of O(cpu_query),
    O(memory_query), O(throttling_query), O(restarts_query) and O(oom_query), all concurrently.
    A figure without a series is V(null) (unknown), never 0.
  - With O(source=kubernetes) it runs anywhere that reaches the Kubernetes API. It reads the
    Deployment O(name) (default O(service)) in O(namespace), then concurrently its pods (listed by
    its selector, and the ReplicaSets it owns; only the pods those control are measured, not those
    of another Deployment with matching labels such as a canary; or every pod of O(selector)),
    their PodMetrics from the metrics API
    (C(GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=...), what
    C(kubectl top pods) shows) and the HorizontalPodAutoscalers. CPU and memory are percents of
    each container's limits; a container without a limit has V(null) percents, and RV(missing)
    says so. Restarts are the containers' C(restartCount); OOM kills the containers whose current
    or last state is terminated with reason C(OOMKilled) (the pods keep one termination per
    container, so a count over O(since) is not known). The metrics API has no CPU throttling.
  - When the metrics API answers 404 (metrics-server not installed) or 503 (installed, not
    answering), CPU and memory are unknown; the task still reports restarts, OOM kills, the HPA
    and the limits, warns, and sets RV(partial) and RV(missing). When the Deployment's ReplicaSets
    cannot be read, every pod of its selector is measured, with a warning and RV(partial).
  - Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.read_only
  - sre.runbooks.docker
  - sre.runbooks.endpoint
  - sre.runbooks.kubernetes
requirements:
  - For O(source=docker), access to the Docker Engine API on the host the module runs on.
options:
  source:
    description:
      - V(docker) reads the Docker Engine API of the host the module runs on.
      - V(prometheus) queries a Prometheus-API server at O(url) (cAdvisor metrics and the runbook's
        recording rules).
      - V(kubernetes) reads the Kubernetes API (options O(kubeconfig), O(context), O(host),
        O(api_key), O(ca_cert), O(in_cluster), O(request_timeout)) for O(name) in O(namespace).
    type: str
    choices: [docker, kubernetes, prometheus]
    default: docker
  service:
    description:
      - Compose service name (label C(com.docker.compose.service)); in the queries it replaces
        C($service). For O(source=kubernetes), the Deployment when O(name) is not given.
    type: str
    required: true
  namespace:
    description: Namespace of the Deployment and its pods (O(source=kubernetes)).
    type: str
    default: default
  name:
    description:
      - Deployment whose pods, HPA and limits are read (O(source=kubernetes)); default O(service).
    type: str
  selector:
    description:
      - Label selector of the pods (O(source=kubernetes)), for example C(app=dhakacart-backend),
        instead of the Deployment's own pods; every pod it selects is measured, whichever
        Deployment owns it. When the Deployment O(name) does not exist, the pods of this selector
        are still measured (without HPA, the limits read from a pod).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the server called, the Prometheus API at O(url) or the
        Kubernetes API server. Turn off only for a lab.
      - For O(source=kubernetes), V(false) turns verification off even when the kubeconfig has a
        CA; V(true) keeps the kubeconfig's own C(insecure-skip-tls-verify).
    type: bool
    default: true
  compose_project:
    description: Compose project name, to tell apart services of the same name (O(source=docker)).
    type: str
  since:
    description:
      - Period over which OOM kills, exits and restarts are counted, a duration such as C(15m) (the
        runbook's lookback). In the queries it replaces C($since).
    type: str
    default: 15m
  cpu_percent:
    description: CPU percent above which a container is saturated (the runbook's 90%).
    type: float
    default: 90
  memory_percent:
    description: Memory percent above which a container is at risk of OOM kills (the runbook's 95%).
    type: float
    default: 95
  throttled_percent:
    description:
      - Percent of CFS periods throttled above which a container counts as CPU-throttled; 25 is the
        threshold of the kubernetes-mixin C(CPUThrottlingHigh) alert.
    type: float
    default: 25
  url:
    description:
      - Base URL of the Prometheus-API server, for example C(http://127.0.0.1:9090). Required with
        O(source=prometheus), unused otherwise.
    type: str
    required: false
  container_label:
    description:
      - Label of the query results that names the container (O(source=prometheus)); cAdvisor names
        docker containers in C(name), Kubernetes in C(pod) and C(container). Series without it fall
        back to C(container), C(pod), C(name), C(id), then the service name.
    type: str
    default: name
  cpu_query:
    description:
      - PromQL for the CPU percent of each container (O(source=prometheus)). C($service) and
        C($since) are replaced. The default is the runbook's recording rule. Empty to skip.
    type: str
    default: container:cpu_usage:percent{container_label_com_docker_compose_service="$service"}
  memory_query:
    description: PromQL for the memory percent of each container. Empty to skip.
    type: str
    default: container:memory_usage:percent{container_label_com_docker_compose_service="$service"}
  throttling_query:
    description:
      - PromQL for the share (0 to 1) of CFS periods throttled, from cAdvisor's counters. Empty to
        skip.
    type: str
    default: >-
      sum by (name) (rate(container_cpu_cfs_throttled_periods_total{container_label_com_docker_compose_service="$service"}[5m]))
      / sum by (name) (rate(container_cpu_cfs_periods_total{container_label_com_docker_compose_service="$service"}[5m]))
  restarts_query:
    description:
      - PromQL for the restarts of each container over O(since); by default the changes of
        cAdvisor's start time. On Kubernetes use
        C(increase(kube_pod_container_status_restarts_total{...}[$since])). Empty to skip.
    type: str
    default: changes(container_start_time_seconds{container_label_com_docker_compose_service="$service"}[$since])
  oom_query:
    description: PromQL for the OOM kills of each container over O(since) (cAdvisor). Empty to skip.
    type: str
    default: increase(container_oom_events_total{container_label_com_docker_compose_service="$service"}[$since])
'''

EXAMPLES = r'''
- name: Resources of the gateway's containers, on the docker host
  sre.runbooks.resource_usage_info:
    service: inference-gateway
    compose_project: sre-demo
  register: resources

- name: The same from Prometheus (cAdvisor and the runbook's recording rules), on the controller
  sre.runbooks.resource_usage_info:
    source: prometheus
    url: http://127.0.0.1:9090
    service: inference-gateway
  delegate_to: localhost
  register: resources

- name: Kubernetes pods through Prometheus
  sre.runbooks.resource_usage_info:
    source: prometheus
    url: http://prometheus.monitoring:9090
    service: dhakacart-backend
    container_label: pod
    cpu_query: >-
      100 * sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="dhakacart",pod=~"$service-.*",container!=""}[5m]))
      / sum by (pod) (kube_pod_container_resource_limits{namespace="dhakacart",pod=~"$service-.*",resource="cpu"})
    memory_query: >-
      100 * sum by (pod) (container_memory_working_set_bytes{namespace="dhakacart",pod=~"$service-.*",container!=""})
      / sum by (pod) (kube_pod_container_resource_limits{namespace="dhakacart",pod=~"$service-.*",resource="memory"})
    throttling_query: ''
    restarts_query: sum by (pod) (increase(kube_pod_container_status_restarts_total{namespace="dhakacart",pod=~"$service-.*"}[$since]))
    oom_query: ''

- name: The DhakaCart backend's pods against their limits, its HPA and its restarts
  sre.runbooks.resource_usage_info:
    source: kubernetes
    context: dhakacart-prod
    namespace: dhakacart
    service: dhakacart-backend
  register: resources

- name: Scale out when saturated
  ansible.builtin.debug:
    msg: "{{ resources.reasons | join('; ') }}"
  when: resources.saturated
'''

RETURN = r'''
source:
  description: Where the figures come from, V(docker), V(kubernetes) or V(prometheus).
  returned: always
  type: str
  sample: docker
service:
  description: The service.
  returned: always
  type: str
  sample: inference-gateway
containers:
  description: >-
    One entry per container, by name (C(pod/container) with O(source=kubernetes)). Figures that
    could not be measured are V(null).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name (with O(source=prometheus), the value of O(container_label)).
      type: str
      sample: sre-demo_inference-gateway_1
    id:
      description: Container id, V(null) when unknown.
      type: str
    state:
      description: >-
        C(running), C(exited), C(restarting), ... (C(running), C(waiting) or C(terminated) with
        O(source=kubernetes)); V(null) with O(source=prometheus).
      type: str
      sample: running
    running:
      description: Whether the container runs; V(null) when unknown.
      type: bool
    restarting:
      description: Whether the Docker Engine is restarting it now (a restart loop), or, on Kubernetes, it waits in C(CrashLoopBackOff).
      type: bool
    exit_code:
      description: Exit code of its last exit (137 is a SIGKILL, as by the OOM killer).
      type: int
    cpu_percent:
      description: CPU use, percent of RV(containers[].cpu_limit_cores) when set, else of one core.
      type: float
      sample: 98.7
    cpu_basis:
      description: >-
        V(limit) or V(core), what RV(containers[].cpu_percent) is a percent of; V(null) on
        Kubernetes for a container without a CPU limit.
      type: str
    cpu_cores:
      description: Cores in use over the stats sample.
      type: float
      sample: 0.494
    host_cpu_percent:
      description: Percent of all the host's CPUs (O(source=docker)).
      type: float
    cpu_limit_cores:
      description: The container's CPU limit in cores, V(null) without a limit.
      type: float
      sample: 0.5
    memory_bytes:
      description: Working-set memory (usage minus inactive file cache).
      type: int
    memory_limit_bytes:
      description: Memory limit; the host's memory when RV(containers[].limit_set) is false.
      type: int
    memory_percent:
      description: RV(containers[].memory_bytes) over RV(containers[].memory_limit_bytes), in percent.
      type: float
    limit_set:
      description: Whether the container has a memory limit of its own.
      type: bool
    throttled_ratio:
      description: Share of CFS periods throttled (0 to 1), over the sample or the query's window.
      type: float
      sample: 1.0
    throttled_ratio_total:
      description: The same since the container started (O(source=docker)).
      type: float
    restart_count:
      description: Restarts by the restart policy (C(RestartCount)), or by O(restarts_query).
      type: int
    oom_killed_now:
      description: Whether its last exit was an OOM kill (C(State.OOMKilled)).
      type: bool
    oom_kills:
      description: >-
        OOM kills in the period (C(oom) events, or at least 1 when RV(containers[].oom_killed_now));
        V(null) on Kubernetes, where RV(containers[].oom_killed_now) tells.
      type: int
    nonzero_exits:
      description: Exits with a non-zero code in the period (C(die) events).
      type: int
    exit_codes:
      description: Those exit codes.
      type: list
      elements: int
max_cpu_percent:
  description: Highest RV(containers[].cpu_percent), V(null) when none is known.
  returned: always
  type: float
max_memory_percent:
  description: Highest RV(containers[].memory_percent), V(null) when none is known.
  returned: always
  type: float
max_throttled_ratio:
  description: Highest RV(containers[].throttled_ratio), V(null) when none is known.
  returned: always
  type: float
oom_kills:
  description: >-
    OOM kills of the service in the period, removed containers included; V(null) when unknown. With
    O(source=kubernetes), the containers whose current or last state is C(OOMKilled).
  returned: always
  type: int
restarts:
  description: Sum of the containers' restart counts, V(null) when unknown.
  returned: always
  type: int
nonzero_exits:
  description: Non-zero exits of the service in the period, V(null) when unknown.
  returned: always
  type: int
running:
  description: Number of running containers, V(null) when unknown.
  returned: always
  type: int
throttled:
  description: Whether a container is throttled more than O(throttled_percent).
  returned: always
  type: bool
saturated:
  description: Whether a container is over a CPU, memory or throttling threshold, or was OOM-killed.
  returned: always
  type: bool
reasons:
  description: One sentence per finding, the container first.
  returned: always
  type: list
  elements: str
  sample: ["sre-demo_inference-gateway_1: cpu 97% of its 1.0-core limit > 90%",
           "sre-demo_model-service_1: OOM-killed 2 times in 15m"]
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {cpu_percent: 90.0, memory_percent: 95.0, throttled_percent: 25.0}
since:
  description: Start of the period, epoch seconds.
  returned: always
  type: float
since_iso:
  description: RV(since) as RFC 3339 UTC.
  returned: always
  type: str
cgroup_version:
  description: Cgroup version of the docker host (O(source=docker)), V(null) when unknown.
  returned: when O(source=docker)
  type: str
  sample: '1'
queries:
  description: The PromQL sent, by figure (O(source=prometheus)).
  returned: when O(source=prometheus)
  type: dict
query_warnings:
  description: Warnings the Prometheus server sent; each is also shown as an Ansible warning.
  returned: when O(source=prometheus)
  type: list
  elements: str
partial:
  description: >-
    True when part of the data could not be read (a container's stats, the events, server
    warnings, the Kubernetes metrics API or HPAs).
  returned: always
  type: bool
missing:
  description: >-
    Figures that are unknown and why, for example
    C(metrics-server is not installed: CPU and memory unknown; kubectl top would fail too), or a
    container without a limit.
  returned: when O(source=kubernetes)
  type: list
  elements: str
deployment:
  description: The Deployment read, V(null) when it does not exist and O(selector) gave the pods.
  returned: when O(source=kubernetes)
  type: str
namespace:
  description: The namespace.
  returned: when O(source=kubernetes)
  type: str
selector:
  description: The label selector the pods were listed by (without O(selector), the Deployment's own, narrowed to its pods).
  returned: when O(source=kubernetes)
  type: str
  sample: app=dhakacart-backend
hpa:
  description:
    - The HorizontalPodAutoscaler (autoscaling/v2, else autoscaling/v1 before Kubernetes 1.23) whose C(scaleTargetRef)
      names the Deployment, V(null) without one.
  returned: when O(source=kubernetes)
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    min_replicas:
      description: C(spec.minReplicas).
      type: int
    max_replicas:
      description: C(spec.maxReplicas).
      type: int
    current_replicas:
      description: C(status.currentReplicas).
      type: int
    desired_replicas:
      description: C(status.desiredReplicas).
      type: int
    at_max:
      description: Whether the current or desired replicas reached C(maxReplicas) (it cannot scale out further).
      type: bool
    conditions:
      description: Its conditions (C(AbleToScale), C(ScalingActive), C(ScalingLimited)), each with type, status, reason and message.
      type: list
      elements: dict
limits:
  description: >-
    The containers' current C(limits) and C(requests), by container, from the Deployment's pod
    template (else from a pod), as the API stores them.
  returned: when O(source=kubernetes)
  type: dict
  sample: {backend: {limits: {cpu: '1', memory: 512Mi}, requests: {cpu: 250m, memory: 256Mi}}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils import resource_usage_info as body
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import run_module


def main():
    run_module(AnsibleModule(supports_check_mode=True, **body.SPEC), body)


if __name__ == '__main__':
    main()

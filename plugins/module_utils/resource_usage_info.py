# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.resource_usage_info: a service's CPU, memory, throttling, restarts and OOM kills, from
the Docker Engine API, Prometheus or the Kubernetes API (metrics.k8s.io against the limits)."""

from __future__ import annotations

import time
from collections.abc import Callable
from string import Template
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.resources import assess, docker_container, event_counts, prometheus_containers
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ENDPOINT_ARGS, ApiError, HttpClient
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, iso, parse_duration
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import DOCKER_ARGS, container_events, docker_client, inspect_container, list_containers
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS, K8sError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.facts import container_resources, hpa_facts, hpa_of, metrics_missing, owned_pods, usage_records
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.rollout import label_selector
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient, warn_partial

SERVICE_SELECTOR = '{container_label_com_docker_compose_service="$service"}'
QUERY_OPTIONS = {
    'cpu_percent': ('cpu_query', 'container:cpu_usage:percent' + SERVICE_SELECTOR),
    'memory_percent': ('memory_query', 'container:memory_usage:percent' + SERVICE_SELECTOR),
    'throttled_ratio': ('throttling_query',
                        'sum by (name) (rate(container_cpu_cfs_throttled_periods_total%s[5m])) / '
                        'sum by (name) (rate(container_cpu_cfs_periods_total%s[5m]))'
                        % (SERVICE_SELECTOR, SERVICE_SELECTOR)),
    'restart_count': ('restarts_query',
                      'changes(container_start_time_seconds%s[$since])' % SERVICE_SELECTOR),
    'oom_kills': ('oom_query', 'increase(container_oom_events_total%s[$since])' % SERVICE_SELECTOR),
}

ARGUMENT_SPEC = dict(ENDPOINT_ARGS, url=dict(type='str'), **DOCKER_ARGS, **K8S_ARGS)
ARGUMENT_SPEC.update(
    source=dict(type='str', choices=['docker', 'kubernetes', 'prometheus'], default='docker'),
    namespace=dict(type='str', default='default'),
    name=dict(type='str'),
    selector=dict(type='str'),
    service=dict(type='str', required=True),
    compose_project=dict(type='str'),
    since=dict(type='str', default='15m'),
    cpu_percent=dict(type='float', default=90.0),
    memory_percent=dict(type='float', default=95.0),
    throttled_percent=dict(type='float', default=25.0),
    container_label=dict(type='str', default='name'),
)
ARGUMENT_SPEC.update({option: dict(type='str', default=default)
                      for option, default in QUERY_OPTIONS.values()})
SPEC = dict(argument_spec=ARGUMENT_SPEC, required_if=[('source', 'prometheus', ['url'])])


def docker_source(p: dict[str, Any], since: float, now: float) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[str], dict[str, Any]]:
    client = docker_client(p)
    service, project = p['service'], p['compose_project']
    listed = run_all({
        'containers': lambda: list_containers(client, service, project),
        'events': lambda: container_events(client, service, project, since, now, ['oom', 'die']),
        'info': lambda: client.get_json('/info'),
    })
    summaries, error = listed['containers']
    if error is not None:
        raise error
    if not summaries:
        raise RunbookError('no container of compose service %r%s on this host: check the service '
                           'name (docker ps -a --filter label=com.docker.compose.service=%s) and '
                           'the host the task runs on' % (
                               service, ' in project %r' % project if project else '', service))
    partial: list[str] = []
    events, error = listed['events']
    if error is not None:
        partial.append('container events (OOM kills and exits are then only those of State): %s'
                       % error)
        events = []
    info = listed['info'][0] or {}

    calls: dict[tuple[str, str], Callable[..., Any]] = {}
    for summary in summaries:
        cid = summary['Id']
        calls[('inspect', cid)] = lambda cid=cid: inspect_container(client, cid)
        if summary.get('State') == 'running':
            # The engine samples every second: stream=false waits for two samples (about 1 s).
            calls[('stats', cid)] = lambda cid=cid: client.get_json(
                '/containers/%s/stats' % cid, query={'stream': 'false'})
    outcomes = run_all(calls)
    counts = event_counts(events)
    containers: list[dict[str, Any]] = []
    for summary in summaries:
        cid = summary['Id']
        details, error = outcomes[('inspect', cid)]
        if error is not None:
            partial.append('inspect of container %s: %s' % (cid[:12], error))
        stats, error = outcomes.get(('stats', cid), (None, None))
        if error is not None:
            partial.append('stats of container %s: %s' % (cid[:12], error))
        containers.append(docker_container(summary, details, stats, counts.get(cid),
                                           info.get('MemTotal')))
    containers.sort(key=lambda record: record['name'])
    listed_ids = {s['Id'] for s in summaries}
    gone = {cid: entry for cid, entry in counts.items() if cid not in listed_ids}
    extra = {'cgroup_version': info.get('CgroupVersion')}
    return containers, gone, partial, extra


def prometheus_source(p: dict[str, Any], since_text: str, warn: Callable[[str], Any]) -> tuple[list[dict[str, Any]], list[Any], dict[str, str]]:
    values = {'service': p['service'], 'since': since_text}
    queries: dict[str, str] = {}
    for figure, (option, _default) in QUERY_OPTIONS.items():
        if p[option]:
            queries[figure] = Template(p[option]).safe_substitute(values)
    if not queries:
        raise RunbookError('every query option is empty: give at least cpu_query or memory_query')
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    outcomes = run_all({figure: (lambda q=q: client.query(q)) for figure, q in queries.items()})
    for figure, (_value, error) in outcomes.items():
        if error is not None:
            raise RunbookError(str(error) if isinstance(error, ApiError) else
                               '%s query failed: %s' % (figure, error), queries=queries)
    results = {figure: value for figure, (value, _error) in outcomes.items()}
    series = {figure: results[figure].series if figure in results else None
              for figure in QUERY_OPTIONS}
    containers = prometheus_containers(series, p['container_label'], p['service'])
    warnings = sorted({w for r in results.values() for w in r.warnings})
    warn_partial(warn, warnings)
    if not containers:
        warn('no series matched any query for service %r: the figures are unknown. Check '
             'that cAdvisor and the recording rules exist and the label names in the '
             'queries (see queries)' % p['service'])
    return containers, warnings, queries


def kubernetes_source(p: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """(containers, extra, partial): the pods of the Deployment (those its ReplicaSets own, listed by
    its selector) or of the selector option, their PodMetrics against their limits, the
    Deployment's HPA and its containers' limits and requests."""
    namespace, name = p['namespace'], p['name'] or p['service']
    reader = Reader(p)
    try:
        deployment: dict[str, Any] | None = reader.deployment(name, namespace)
    except K8sError as err:
        if err.status != 404 or not p['selector']:
            raise
        deployment = None
    selector = p['selector'] or label_selector(deployment['spec']['selector'])  # type: ignore[index]  # None only with a selector
    calls: dict[str, Callable[[], Any]] = {'pods': lambda: reader.pods(namespace, selector),
                                           'metrics': lambda: reader.pod_metrics(namespace, selector)}
    if deployment:
        calls['hpas'] = lambda: reader.hpas(namespace)
        if not p['selector']:
            owner = deployment  # not None in the lambda either
            calls['owned'] = lambda: reader.owned_replica_sets(owner)
    outcomes = run_all(calls)
    pods, error = outcomes['pods']
    if error is not None:
        raise error
    partial: list[str] = []
    owned, error = outcomes.get('owned', (None, None))
    if error is not None:
        if not isinstance(error, K8sError):
            raise error
        partial.append('the ReplicaSets of deployment %s could not be read (%s): the pods are all those of its '
                       'selector, the pods of another Deployment with the same labels among them' % (name, error))
    elif owned is not None:
        listed = len(pods)
        pods = owned_pods(owned, pods)
        if listed and not pods:
            raise RunbookError('none of the %d pods of selector %s in namespace %s belongs to deployment %s (their '
                               'controller is not one of its ReplicaSets): check which Deployment owns them '
                               '(kubectl get pods -n %s -l %s -o custom-columns=NAME:.metadata.name,'
                               'OWNER:.metadata.ownerReferences[0].name)'
                               % (listed, selector, namespace, name, namespace, selector))
    if not pods:
        raise RunbookError('no pod matches selector %s in namespace %s: check the Deployment or the selector '
                           '(kubectl get pods -n %s -l %s)' % (selector, namespace, namespace, selector))
    missing: list[str] = []
    if deployment is None:
        partial.append('deployment %s not found in namespace %s: no HPA, the limits are those of the pods' % (name, namespace))
    metrics, error = outcomes['metrics']
    if error is not None:
        if not isinstance(error, K8sError):
            raise error
        partial.append(metrics_missing(error.status, error))
        missing.append(partial[-1])
    containers, unknown = usage_records(pods, metrics)
    missing.extend(unknown)
    missing.append("CPU throttling: not in the metrics API (source prometheus reads cAdvisor's CFS counters)")
    hpa = None
    hpas, error = outcomes.get('hpas', ([], None))
    if error is not None:
        if not isinstance(error, K8sError):
            raise error
        partial.append('the HorizontalPodAutoscalers could not be read: %s' % error)
    else:
        try:
            hpa = hpa_of(hpas, name)
        except ValueError as err:
            partial.append(str(err))
    spec = (deployment['spec']['template'] if deployment else pods[0]).get('spec') or {}
    extra = {'deployment': name if deployment else None, 'namespace': namespace, 'selector': selector,
             'hpa': hpa_facts(hpa), 'limits': container_resources(spec), 'missing': missing,
             'oom_kills': sum(1 for record in containers if record['oom_killed_now'])}
    return containers, extra, partial


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    try:
        period = parse_duration(p['since'])
    except ValueError as err:
        raise RunbookError('invalid option since: %s' % err)
    if period <= 0:
        raise RunbookError('invalid option since: %r must be a positive duration' % p['since'])
    for option in ('cpu_percent', 'memory_percent', 'throttled_percent'):
        if not 0 < p[option] <= 1000:
            raise RunbookError('invalid threshold %s=%s: give a percent above 0'
                               % (option, p[option]))
    now = time.time()
    since = now - period
    since_text = format_duration(period)
    thresholds = {'cpu_percent': p['cpu_percent'], 'memory_percent': p['memory_percent'],
                  'throttled_percent': p['throttled_percent']}
    result: dict[str, Any] = {'source': p['source'], 'service': p['service'], 'since': since,
                              'since_iso': iso(since)}
    gone: dict[str, dict[str, Any]] | None = None
    if p['source'] == 'docker':
        try:
            containers, gone, partial, extra = docker_source(p, since, now)
        except ApiError as err:
            raise RunbookError('%s; is the Docker engine running on %s and readable by the remote '
                               'user?' % (err, p['docker_host']))
        for text in partial:
            warn('resource_usage could not read %s' % text)
        result.update(extra, partial=bool(partial))
    elif p['source'] == 'kubernetes':
        try:
            containers, extra, partial = kubernetes_source(p)
        except K8sError as err:
            raise RunbookError(str(err))
        for text in partial:
            warn(text)
        result.update(partial=bool(partial))
    else:
        containers, warnings, queries = prometheus_source(p, since_text, warn)
        result.update(queries=queries, query_warnings=warnings, partial=bool(warnings))
    result.update(assess(containers, thresholds, since_text, gone))
    if p['source'] == 'kubernetes':
        # restartCount and lastState are what the pods keep: their OOM kills are containers, not events.
        result.update(extra)
    return dict(containers=containers, **result)

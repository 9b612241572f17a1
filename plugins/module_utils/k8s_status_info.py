# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.k8s_status_info: the "Service Completely Down" checks of a Deployment in one call -
its pods (those its ReplicaSets own), the Service and its endpoints, Warning events, the HPA, what
keeps it from serving, the previous log of a crashing container, and behind a
CreateContainerConfigError the ConfigMap and Secret references that are missing (the reads; what
they mean is k8s_facts')."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import facts as kf
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS, K8sError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.rollout import label_selector

SPEC = dict(argument_spec=dict(
    name=dict(type='str', required=True),
    namespace=dict(type='str', default='default'),
    service=dict(type='str'),
    events_since=dict(type='str', default='1h'),
    tail=dict(type='int', default=50),
    **K8S_ARGS
))


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    try:
        since = time.time() - parse_duration(p['events_since'])
    except ValueError as err:
        raise RunbookError('invalid option events_since: %s' % err)
    if p['tail'] < 0:
        raise RunbookError('tail must be at least 0, not %d' % p['tail'])
    name, namespace, service = p['name'], p['namespace'], p['service'] or p['name']
    try:
        reader = Reader(p)
        deployment = reader.deployment(name, namespace)
    except K8sError as err:
        raise RunbookError(str(err))
    outcomes = run_all({
        'pods': lambda: reader.pods(namespace, label_selector(deployment['spec']['selector'])),
        'owned': lambda: reader.owned_replica_sets(deployment),
        'service': lambda: reader.service(service, namespace),
        'endpoints': lambda: reader.endpoints(service, namespace),
        'events': lambda: reader.warning_events(namespace),
        'hpas': lambda: reader.hpas(namespace),
    })
    read: dict[str, Any] = {}
    unread: set[str] = set()
    for key, value in outcomes.items():
        read[key], error = value
        if error is not None and (key == 'pods' or not isinstance(error, K8sError)):
            raise RunbookError(str(error)) if isinstance(error, K8sError) else error
        if error is not None:
            # Without them the report is partial, not wrong: no Service is found, no event, no HPA.
            warn('k8s_status could not read the %s: %s' % (key, error))
            unread.add(key)
            read[key] = None if key in ('service', 'endpoints') else []
    pods = read['pods']
    if 'owned' in unread:
        warn('the pods are those of the selector of deployment %s: without its ReplicaSets, the pods of another '
             'Deployment with the same labels cannot be told apart' % name)
    else:
        pods = kf.owned_pods(read['owned'], pods)
    if 'service' in unread and read['endpoints'] is not None:
        # An Endpoints object is named after its Service: that Service exists (without its spec, its selector is unknown).
        read['service'] = {'metadata': {'name': service, 'namespace': namespace}}
    try:
        hpa = kf.hpa_of(read['hpas'], name)
    except ValueError as err:
        warn(str(err))
        hpa = None
    result = kf.status_report(deployment, read['owned'], pods, read['service'], read['endpoints'], read['events'],
                              hpa, service, since)
    result['logs'] = crash_log(reader, pods, namespace, p['tail'], warn)
    result['config_refs'] = config_refs(reader, deployment, namespace, pods, result['problems'], warn)
    return result


def config_refs(reader: Reader, deployment: dict[str, Any], namespace: str, pods: list[dict[str, Any]],
                problems: list[dict[str, Any]], warn: Callable[[str], Any]) -> list[dict[str, Any]]:
    """The missing ConfigMap and Secret references of the pod template (k8s_facts.missing_config_refs);
    [] without a call unless a pod is in CreateContainerConfigError. The ConfigMaps are read
    concurrently; one that cannot be read is a warning, and its references are listed as not known."""
    if not any(problem['kind'] == kf.CONFIG_ERROR for problem in problems):
        return []
    refs = kf.config_references(deployment['spec']['template'].get('spec') or {})
    names = sorted({ref['name'] for ref in refs if ref['kind'] == 'ConfigMap'})
    outcomes = run_all({name: lambda name=name: reader.config_map(name, namespace) for name in names})
    read: dict[str, Any] = {}
    unread: set[str] = set()
    for name, (configmap, error) in outcomes.items():
        if error is not None and not isinstance(error, K8sError):
            raise error
        if error is not None:
            warn('k8s_status could not read ConfigMap %s, which the pods of deployment %s reference: %s'
                 % (name, deployment['metadata']['name'], error))
            unread.add(name)
        read[name] = configmap
    return kf.missing_config_refs(refs, read, unread, kf.config_error_messages(pods))


def crash_log(reader: Reader, pods: list[dict[str, Any]], namespace: str, tail: int, warn: Callable[[str], Any]) -> list[str]:
    """The last `tail` lines of the previous instance of a crashing container, [] when none crashes."""
    target = kf.crash_target(pods)
    if not target or not tail:
        return []
    pod, container = target
    try:
        text = reader.pod_log(pod, namespace, container, previous=True, tail_lines=tail)
    except K8sError as err:
        warn('the previous log of %s/%s could not be read: %s' % (pod, container, err))
        return []
    return text.splitlines()[-tail:]

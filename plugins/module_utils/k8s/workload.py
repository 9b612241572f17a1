# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What sre.runbooks.k8s_workload changes in a Deployment, its HorizontalPodAutoscaler and a
ConfigMap: pure decisions on plain dicts shaped as the API returns them (camelCase JSON, as
`kubectl get -o json`), no I/O.

- Replicas: absolute (`6`) or relative to spec.replicas (`+2`, `-1`); a result outside
  [min_replicas, max_replicas] is refused, never clamped: a clamped scale-out would look like a
  success while giving less capacity than asked.
- Under an HPA (scaleTargetRef naming the workload) spec.replicas is not patched, the HPA would
  undo it: the target becomes the HPA's minReplicas, and is refused above its maxReplicas unless
  raising that is allowed. The one exception: an HPA does nothing while its target has 0 replicas,
  so spec.replicas is set too then, which re-enables it. The HPA is the autoscaling/v2 object or,
  from servers before Kubernetes 1.23, the autoscaling/v1 one: both have the minReplicas and
  maxReplicas that are all this reads and patches.
- Patches are strategic-merge patches. A variable is unset with the `$patch: delete` directive on
  its env entry (merge key `name`), not with a JSON patch by index: an index is only valid for the
  list that was read (a concurrent edit shifts it), and one strategic-merge body carries every
  template change of the run, so the run creates one revision, not one per change.
- Quantities compare by value ("1" == "1000m", "1Gi" == "1024Mi"): the API server canonicalises
  what it stores, so a textual comparison would patch again at every run.
- Factors (memory_factor, cpu_factor) multiply a container's limit, never its request: the
  request is what the scheduler reserves, and raising it in an incident can leave the new pods
  unschedulable on a full cluster (the request stays a floor; a limit below it is refused). A
  factor is relative, so the limit it multiplies is recorded in the Deployment's annotation
  FACTOR_BASE with the limit it set, as compose_service keeps the limits before it first changed
  them: while the limit is still the one set, the factor multiplies the recorded base again (a
  second run changes nothing); once someone else changed it (a deploy, a rollback), the current
  limit is the new base.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr

SECRET_NAME = re.compile(r'TOKEN|SECRET|PASSWORD|KEY', re.I)
MASK = '********'
_REPLICAS_RE = re.compile(r'^\s*([+-]?)\s*(\d+)\s*$')
_QUANTITY_RE = re.compile(r'^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE]|)$')
_SUFFIX = {'': Decimal(1), 'n': Decimal('1e-9'), 'u': Decimal('1e-6'), 'm': Decimal('1e-3'),
           'k': Decimal(10) ** 3, 'M': Decimal(10) ** 6, 'G': Decimal(10) ** 9, 'T': Decimal(10) ** 12,
           'P': Decimal(10) ** 15, 'E': Decimal(10) ** 18,
           'Ki': Decimal(2) ** 10, 'Mi': Decimal(2) ** 20, 'Gi': Decimal(2) ** 30, 'Ti': Decimal(2) ** 40,
           'Pi': Decimal(2) ** 50, 'Ei': Decimal(2) ** 60}
_REQUIREMENTS = ('limits', 'requests')
FACTOR_BASE = 'sre.runbooks/limits-before-factor'
# The factor options, the limit each multiplies and the option bounding it.
FACTORS = (('memory_factor', 'memory', 'max_memory'), ('cpu_factor', 'cpu', 'max_cpus'))
_BINARY = ('Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki')
_DECIMAL = ('E', 'P', 'T', 'G', 'M', 'k')


class WorkloadError(RunbookError, ValueError):
    """A request the module refuses; the message says why and what to change."""


def stringify(value: Any) -> str:
    """A value as Kubernetes stores env values and ConfigMap data: YAML booleans as true/false."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


# --------------------------------------------------------------------------- quantities

def parse_quantity(text: str | float | Decimal) -> Decimal:
    """The value of a Kubernetes quantity ("500m", "4Gi", "1e3", 2) as a Decimal."""
    match = _QUANTITY_RE.match(str(text).strip())
    if not match:
        raise WorkloadError('%r is not a Kubernetes quantity (such as 500m, 2, 512Mi, 4Gi)' % (text,))
    number, suffix = match.groups()
    if suffix in _SUFFIX:
        return Decimal(number) * _SUFFIX[suffix]
    return Decimal(number + suffix)  # an exponent: 1e3


def same_quantity(a: str | float | Decimal | None, b: str | float | Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return parse_quantity(a) == parse_quantity(b)


def format_quantity(value: Decimal, resource: str) -> str:
    """A canonical quantity: CPU in whole cores ("2") or millicores ("750m"), rounded up to the
    millicore; other resources (memory) in whole bytes, rounded up, with the largest binary suffix
    that divides them ("1536Mi"), else the largest decimal one ("1500M"), else none."""
    if resource == 'cpu':
        millis = int((value * 1000).to_integral_value(ROUND_CEILING))
        return str(millis // 1000) if millis % 1000 == 0 else '%dm' % millis
    number = int(value.to_integral_value(ROUND_CEILING))
    for suffix in _BINARY + _DECIMAL:
        unit = int(_SUFFIX[suffix])
        if number and number % unit == 0:
            return '%d%s' % (number // unit, suffix)
    return str(number)


def factor_records(workload: dict[str, Any]) -> dict[str, Any]:
    """{container: {resource: {base, set}}} from the FACTOR_BASE annotation; {} when absent or unreadable."""
    try:
        records = json.loads(kr.annotations_of(workload).get(FACTOR_BASE) or '{}')
    except ValueError:
        return {}
    return records if isinstance(records, dict) else {}


def factor_limits(container: dict[str, Any], params: Mapping[str, Any], record: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """The limits the factors of `params` give the container, and its record for FACTOR_BASE:
    ({resource: quantity}, {resource: {base, set}}, {resource: {base, factor, limit}}).
    `record` is the container's entry of FACTOR_BASE. Refused without a limit to multiply, above
    max_memory / max_cpus (never clamped) and below the container's request."""
    current = container.get('resources') or {}
    limits, requests = current.get('limits') or {}, current.get('requests') or {}
    asked = (params.get('resources') or {}).get('limits') or {}
    targets: dict[str, str] = {}
    shown: dict[str, Any] = {}
    record = dict(record or {})
    for option, resource, bound_option in FACTORS:
        factor = params.get(option)
        if factor is None:
            continue
        if resource in asked:
            raise WorkloadError('%s and resources.limits.%s both set the %s limit: give one' % (option, resource, resource))
        if factor <= 0:
            raise WorkloadError('%s must be above 0, not %g' % (option, factor))
        have = limits.get(resource)
        if have is None:
            raise WorkloadError('%s multiplies the %s limit of container %s, and it has none: give resources.limits.%s '
                                'instead' % (option, resource, container['name'], resource))
        seen = record.get(resource) or {}
        base = seen['base'] if seen.get('base') and seen.get('set') and same_quantity(seen['set'], have) else stringify(have)
        target = format_quantity(parse_quantity(base) * Decimal(str(factor)), resource)
        try:
            bound = parse_quantity(params[bound_option])
        except WorkloadError as err:
            raise WorkloadError('%s: %s' % (bound_option, err))
        if parse_quantity(target) > bound:
            raise WorkloadError('%s %g gives a %s limit of %s (%s x %g), above %s %s: refusing; raise %s if %s is intended'
                                % (option, factor, resource, target, base, factor, bound_option, params[bound_option],
                                   bound_option, target))
        request = requests.get(resource)
        if request is not None and parse_quantity(target) < parse_quantity(request):
            raise WorkloadError('%s %g gives a %s limit of %s, below the request %s of container %s: refusing'
                                % (option, factor, resource, target, request, container['name']))
        targets[resource] = target
        record[resource] = {'base': base, 'set': target}
        shown[resource] = {'base': base, 'factor': factor, 'limit': target}
    return targets, record, shown


# --------------------------------------------------------------------------- replicas and HPA

def target_replicas(requested: str | int, current: int, min_replicas: int, max_replicas: int) -> int:
    """The replicas `requested` asks for: absolute ("6") or relative to `current` ("+2", "-1").
    Refused (never clamped) outside [min_replicas, max_replicas]."""
    if min_replicas < 0 or min_replicas > max_replicas:
        raise WorkloadError('min_replicas %d and max_replicas %d are not bounds: need 0 <= min_replicas <= max_replicas'
                            % (min_replicas, max_replicas))
    match = _REPLICAS_RE.match(str(requested))
    if not match:
        raise WorkloadError('replicas %r is neither a count (6) nor a change (+2, -1)' % (requested,))
    sign, number = match.group(1), int(match.group(2))
    target = current + number if sign == '+' else current - number if sign == '-' else number
    if not min_replicas <= target <= max_replicas:
        raise WorkloadError('replicas %s gives %d (now %d), outside the bounds [%d, %d] (min_replicas, max_replicas): '
                            'refusing; change the bounds if %d is intended'
                            % (requested, target, current, min_replicas, max_replicas, target))
    return target


def find_hpa(hpas: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler (autoscaling/v2 or v1 dict) whose scaleTargetRef names the workload, or None.
    The HPA controller finds its target through the group of scaleTargetRef.apiVersion: a reference
    outside group apps (extensions/v1beta1, none) does not scale a Deployment."""
    found = []
    for hpa in hpas:
        ref = hpa['spec']['scaleTargetRef']
        if ref.get('kind') == kind and ref.get('name') == name and ref.get('apiVersion', '').split('/')[0] == 'apps':
            found.append(hpa)
    if len(found) > 1:
        raise WorkloadError('HorizontalPodAutoscalers %s all target %s %s (the HPA controller then scales none of them): '
                            'delete all but one' % (', '.join(sorted(h['metadata']['name'] for h in found)), kind, name))
    return found[0] if found else None


def hpa_bounds(hpa: dict[str, Any]) -> tuple[int, int]:
    spec = hpa['spec']
    return spec.get('minReplicas', 1), spec['maxReplicas']


def hpa_patch(hpa: dict[str, Any], target: int, raise_max: bool) -> dict[str, Any]:
    """The patch moving the HPA's floor to `target` ({} when already there); refused above its
    maxReplicas unless `raise_max` (then maxReplicas becomes `target`)."""
    low, high = hpa_bounds(hpa)
    spec: dict[str, int] = {}
    if target > high:
        if not raise_max:
            raise WorkloadError('HorizontalPodAutoscaler %s manages this workload with maxReplicas %d: %d replicas is above it '
                                'and the HPA would scale back down; refusing. Set hpa_raise_max: true to raise maxReplicas '
                                'to %d, or ask for at most %d' % (hpa['metadata']['name'], high, target, target, high))
        spec['maxReplicas'] = target
    if target != low:
        spec['minReplicas'] = target
    return {'spec': spec} if spec else {}


# --------------------------------------------------------------------------- pod template

def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload['spec']['template']['spec']['containers']


def container_of(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The container called `name`, the first one when None."""
    found = containers(workload)
    if name is None:
        return found[0]
    for container in found:
        if container['name'] == name:
            return container
    raise WorkloadError('no container %r in %s %s: it has %s' % (
        name, workload['kind'], workload['metadata']['name'], ', '.join(c['name'] for c in found)))


def resources_patch(container: dict[str, Any], resources: Mapping[str, Any] | None) -> dict[str, dict[str, str | None]]:
    """{limits: {...}, requests: {...}} of the quantities that differ (None removes one); {} when none."""
    current = container.get('resources') or {}
    patch: dict[str, dict[str, str | None]] = {}
    for group, wanted in (resources or {}).items():
        if group not in _REQUIREMENTS:
            raise WorkloadError('resources takes limits and requests, not %r' % group)
        have = current.get(group) or {}
        for resource, value in (wanted or {}).items():
            value = None if value is None else stringify(value)
            if value is not None:
                parse_quantity(value)
            if not same_quantity(have.get(resource), value):
                patch.setdefault(group, {})[resource] = value
    return patch


def env_patch(container: dict[str, Any], env: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The env entries to merge: {name, value} to set (valueFrom dropped), {name, $patch: delete} to unset."""
    current = {e['name']: e for e in container.get('env') or []}
    patch: list[dict[str, Any]] = []
    for name, value in (env or {}).items():
        have = current.get(name)
        if value is None:
            if have is not None:
                patch.append({'name': name, '$patch': 'delete'})
            continue
        value = stringify(value)
        if have is None or have.get('value', '') != value or 'valueFrom' in have:
            entry: dict[str, Any] = {'name': name, 'value': value}
            if have is not None and 'valueFrom' in have:
                entry['valueFrom'] = None
            patch.append(entry)
    return patch


def references_configmap(workload: dict[str, Any], configmap: str) -> bool:
    """Whether the pod template reads the ConfigMap: env valueFrom, envFrom, or a (projected) volume."""
    pod = workload['spec']['template']['spec']
    for container in (pod.get('initContainers') or []) + pod['containers']:
        for entry in container.get('env') or []:
            if ((entry.get('valueFrom') or {}).get('configMapKeyRef') or {}).get('name') == configmap:
                return True
        for source in container.get('envFrom') or []:
            if (source.get('configMapRef') or {}).get('name') == configmap:
                return True
    for volume in pod.get('volumes') or []:
        if (volume.get('configMap') or {}).get('name') == configmap:
            return True
        for source in (volume.get('projected') or {}).get('sources') or []:
            if (source.get('configMap') or {}).get('name') == configmap:
                return True
    return False


def configmap_patch(configmap: dict[str, Any], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """{data: {...}} of the keys that differ (None removes one); {} when none. Refused on an immutable ConfigMap."""
    have = configmap.get('data') or {}
    changes: dict[str, str | None] = {}
    for key, value in (data or {}).items():
        if value is None:
            if key in have:
                changes[key] = None
        elif have.get(key) != stringify(value):
            changes[key] = stringify(value)
    if changes and configmap.get('immutable'):
        raise WorkloadError('ConfigMap %s is immutable: create a new ConfigMap and point the workload at it'
                            % configmap['metadata']['name'])
    return {'data': changes} if changes else {}


# --------------------------------------------------------------------------- the plan

def plan(workload: dict[str, Any], hpas: Iterable[dict[str, Any]], configmap: dict[str, Any] | None, params: Mapping[str, Any], now: str) -> dict[str, Any]:
    """What to send, from the objects read and the module's parameters:
    {hpa, target_replicas, patches: {configmap, workload, hpa} (bodies, {} for none),
    creates_revision, restart, configmap_referenced}. `now` is the RFC 3339 restart time."""
    name, kind = workload['metadata']['name'], workload['kind']
    hpa = find_hpa(hpas, kind, name)
    target = None
    patches: dict[str, dict[str, Any]] = {'configmap': {}, 'workload': {}, 'hpa': {}}
    spec: dict[str, Any] = {}
    if params.get('replicas') is not None:
        current = workload['spec'].get('replicas', 1)
        target = target_replicas(params['replicas'], current, params['min_replicas'], params['max_replicas'])
        if hpa:
            patches['hpa'] = hpa_patch(hpa, target, params['hpa_raise_max'])
        # An HPA is disabled while its target has 0 replicas: spec.replicas re-enables it.
        if target != current and (not hpa or current == 0):
            spec['replicas'] = target

    referenced = None
    if params.get('configmap'):
        if configmap is None:
            raise WorkloadError('ConfigMap %s was not read' % params['configmap'])
        patches['configmap'] = configmap_patch(configmap, params['configmap_data'])
        referenced = references_configmap(workload, params['configmap'])
    restart = bool(patches['configmap'] and referenced and params['restart_on_configmap_change'])

    container = container_of(workload, params.get('container'))
    records = factor_records(workload)
    factored, record, factors = factor_limits(container, params, records.get(container['name']))
    wanted = copy.deepcopy(params.get('resources') or {})
    if factored:
        wanted.setdefault('limits', {}).update(factored)
    change: dict[str, Any] = {}
    resources = resources_patch(container, wanted)
    if resources:
        change['resources'] = resources
    env = env_patch(container, params.get('env'))
    if env:
        change['env'] = env
    template: dict[str, Any] = {}
    if change:
        template['spec'] = {'containers': [dict(name=container['name'], **change)]}
    if restart:
        template['metadata'] = {'annotations': {kr.RESTARTED_AT: now}}
    if template:
        if workload['spec'].get('paused'):
            raise WorkloadError('the Deployment is paused, so a change of its pod template (resources, env, restart) would not '
                                'roll out: resume it first (kubectl rollout resume), or change only replicas')
        spec['template'] = template
    if spec:
        patches['workload'] = {'spec': spec}
    if record != records.get(container['name'], {}):
        records[container['name']] = record
        patches['workload']['metadata'] = {'annotations': {FACTOR_BASE: json.dumps(records, sort_keys=True)}}
    return {'hpa': hpa, 'target_replicas': target, 'patches': patches, 'creates_revision': bool(template),
            'restart': restart, 'configmap_referenced': referenced, 'factors': factors or None}


def masked_patches(patches: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A copy of plan()'s patch bodies with the values of secret-looking names masked."""
    patches = copy.deepcopy(patches)
    template = patches['workload'].get('spec', {}).get('template', {})
    for container in template.get('spec', {}).get('containers', []):
        for entry in container.get('env', []):
            if entry.get('value') is not None and SECRET_NAME.search(entry['name']):
                entry['value'] = MASK
    data = patches['configmap'].get('data', {})
    for key, value in data.items():
        if value is not None and SECRET_NAME.search(key):
            data[key] = MASK
    return patches


# --------------------------------------------------------------------------- views and status

def revision(workload: dict[str, Any]) -> int | None:
    """The Deployment's revision (deployment.kubernetes.io/revision) as an int, None before the controller set it."""
    return kr.revision(workload) or None


def env_view(container: dict[str, Any]) -> dict[str, Any]:
    """{name: value}, values of secret-looking names masked; a variable taken from a reference
    (secret, ConfigMap key, field) as {valueFrom: <kind of reference>}, never its value."""
    view: dict[str, Any] = {}
    for entry in container.get('env') or []:
        if 'valueFrom' in entry:
            view[entry['name']] = {'valueFrom': next(iter(entry['valueFrom']), None)}
        else:
            value = entry.get('value', '')
            view[entry['name']] = MASK if SECRET_NAME.search(entry['name']) else value
    return view


def hpa_view(hpa: dict[str, Any] | None) -> dict[str, Any] | None:
    if not hpa:
        return None
    low, high = hpa_bounds(hpa)
    return {'name': hpa['metadata']['name'], 'min': low, 'max': high,
            'current': (hpa.get('status') or {}).get('currentReplicas', 0)}


def view(workload: dict[str, Any], hpa: dict[str, Any] | None, configmap: dict[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """The fields k8s_workload manages, as returned in before and after."""
    container = container_of(workload, params.get('container'))
    result: dict[str, Any] = {'replicas': workload['spec'].get('replicas', 1), 'hpa': hpa_view(hpa),
                              'container': container['name'], 'resources': container.get('resources') or {},
                              'env': env_view(container)}
    if configmap is not None:
        data = configmap.get('data') or {}
        result['configmap'] = {
            'name': configmap['metadata']['name'],
            'data': {key: (MASK if key in data and SECRET_NAME.search(key) else data.get(key))
                     for key in params['configmap_data']}}
    return result


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Before and after restricted to the fields that differ."""
    keys = [k for k in before if before[k] != after.get(k)]
    return {'before': {k: before[k] for k in keys}, 'after': {k: after.get(k) for k in keys}}


def rollout_status(deployment: dict[str, Any], floor: int | None = None, before: dict[str, Any] | None = None,
                   replica_set: dict[str, Any] | None = None) -> tuple[bool, bool, str]:
    """kubectl's verdict (k8s.rollout.rollout_status, with the Deployment read `before` the patches
    and its newest `replica_set`), and with `floor` (an HPA's new minReplicas) not done before the
    HPA has raised spec.replicas to it."""
    done, failed, message = kr.rollout_status(deployment, before, replica_set)
    replicas = deployment['spec'].get('replicas', 1)
    if done and floor is not None and replicas < floor:
        return False, False, ('Waiting for deployment "%s" rollout to finish: %d replicas, below the new minReplicas %d '
                              'of its HorizontalPodAutoscaler yet...' % (deployment['metadata']['name'], replicas, floor))
    return done, failed, message

"""A fake Kubernetes API server on 127.0.0.1 for the module tests: it answers the REST paths the
modules call as the Kubernetes API documents them, so that the real `kubernetes` client, pointed at
it with host + api_key + validate_certs false over plain http, cannot tell.

What it answers (every request needs `Authorization: Bearer <TOKEN>`, else a 401 Status):

- GET one object and GET lists of: core/v1 pods, events, endpoints, services, configmaps;
  apps/v1 deployments, replicasets; autoscaling/v2 horizontalpodautoscalers; metrics.k8s.io/v1beta1
  pods (PodMetrics). Lists are `<Kind>List` objects with kind, apiVersion, metadata.resourceVersion
  and items, filtered by `labelSelector` (=, ==, !=, in, notin, key, !key) and `fieldSelector`
  (=, ==, != on metadata.name, metadata.namespace, type, reason, involvedObject.kind/name).
- Errors as Status objects: 404 NotFound (`deployments.apps "x" not found`, or `the server could
  not find the requested resource` for an unknown path, as metrics.k8s.io answers without
  metrics-server), 503 ServiceUnavailable for metrics.k8s.io when metrics-server is registered but
  down, 400 BadRequest for pods/log as the kubelet refuses (a pod of several containers without
  `container`, `previous` without a terminated instance, a container waiting to start).
- GET /api/v1/namespaces/{ns}/pods/{name}/log: text/plain, with `container`, `previous`,
  `sinceSeconds`, `tailLines` and `timestamps` (an RFC 3339 nano time and a space per line); a
  container in CrashLoopBackOff answers its last instance's log, `previous=true` the one before.
- GET and HEAD /api/v1/namespaces/{ns}/services/{[scheme:]name[:port]}/proxy{path}: forwarded to
  the local HTTP server the test registered for the Service (its path and query, its headers but
  Authorization), the answer passed back; 404 without the Service, 503 `no endpoints available for
  service "x"` without a target or when its Endpoints have no ready address.
- GET /version (the server's version info); POST of a SelfSubjectAccessReview
  (authorization.k8s.io/v1), answered with status.allowed, false for the accesses in `denied`
  ((verb, group, resource, subresource) tuples), as `kubectl auth can-i` reads it.
- PATCH of deployments, configmaps and horizontalpodautoscalers as a strategic merge (merge key
  `name` for containers, env and volumes, `$patch: delete`, null removes a key) or a JSON patch
  (`replace` ops), `?dryRun=All` answering the result without storing it; other patch types get
  415. 409 Conflict on demand (`conflict_on`), 422 Invalid (request above limit, `value` with
  `valueFrom`, minReplicas above maxReplicas); quantities stored canonically ("2000m" -> "2");
  generation bumped by spec changes.

It also plays the controllers for a Deployment changed by a PATCH (directly, or through its HPA),
one step per GET of it, as set by `controller`: 'converge' (default) observes the new generation
(a template change gets the next revision), then reports every replica updated and available, the
HPA first raising spec.replicas to its minReplicas; 'stuck' times out each new rollout with
ProgressDeadlineExceeded; None leaves the status as it is. It never creates nor renumbers
ReplicaSets: seed those. A Deployment nobody patched keeps the status it was seeded with. A pod()
is controlled (ownerReferences) by the ReplicaSet of its Deployment's revision: seed that one too,
as the modules count as a Deployment's pods only those of the ReplicaSets it owns.

Seeding a scenario (the builders below give API-shaped objects, override what the test needs):

    api = FakeApiServer()
    dep = deployment('backend', 'shop', image='shop/backend:2.1', replicas=3, ready=0, revision=2)
    api.add(dep)
    api.add(replica_set(dep, 1, 'shop/backend:2.0', created='2026-11-23T12:00:00Z'))
    api.add(replica_set(dep, 2, 'shop/backend:2.1', created='2026-11-23T14:00:00Z', replicas=3))
    crashing = pod(dep, 'backend-h2-a', waiting='CrashLoopBackOff', restarts=5, last_terminated='OOMKilled')
    api.add(crashing)
    api.add(hpa(dep, 2, 6, current=3), service(dep), endpoints(dep, not_ready=[crashing]))
    api.add(event(crashing, 'BackOff', 'Back-off restarting failed container backend'))
    api.add(pod_metrics(crashing, cpu='900m', memory='500Mi'))     # none: metrics_server=False
    api.set_log('shop', 'backend-h2-a', 'backend', ['boot', 'MemoryError'], previous=True)
    api.proxy_to('shop', 'backend', local_http_server.url)
    ... run_module(name, dict(host=api.url, api_key=TOKEN, validate_certs=False, ...)) ...
    api.close()

`api.requests` records every request (method, path, query, headers, content_type, body).
"""

import copy
import http.client
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = 'k8s-fake-token-4c1d9e7b-never-shown'
REVISION = 'deployment.kubernetes.io/revision'
MERGE_KEYS = {'containers': 'name', 'initContainers': 'name', 'env': 'name', 'volumes': 'name'}
# resource -> (API group path, group, version, kind)
RESOURCES = {
    'pods': ('/api/v1', '', 'v1', 'Pod'),
    'events': ('/api/v1', '', 'v1', 'Event'),
    'endpoints': ('/api/v1', '', 'v1', 'Endpoints'),
    'services': ('/api/v1', '', 'v1', 'Service'),
    'configmaps': ('/api/v1', '', 'v1', 'ConfigMap'),
    'deployments': ('/apis/apps/v1', 'apps', 'v1', 'Deployment'),
    'replicasets': ('/apis/apps/v1', 'apps', 'v1', 'ReplicaSet'),
    'horizontalpodautoscalers': ('/apis/autoscaling/v2', 'autoscaling', 'v2', 'HorizontalPodAutoscaler'),
    'metrics': ('/apis/metrics.k8s.io/v1beta1', 'metrics.k8s.io', 'v1beta1', 'PodMetrics'),
}
BY_KIND = {(kind, group): resource for resource, (_prefix, group, _v, kind) in RESOURCES.items()}
PATH_RE = re.compile(r'^(/api/v1|/apis/[a-z0-9.]+/v[0-9a-z]+)/namespaces/([^/]+)/([a-z]+)(?:/([^/]+)(/.*)?)?$')
PATCHABLE = ('deployments', 'configmaps', 'horizontalpodautoscalers')
NOT_FOUND_PATH = 'the server could not find the requested resource'


class ApiStatus(Exception):
    """An error answered as a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                     'message': message, 'reason': reason, 'code': code}
        if details is not None:
            self.body['details'] = details
        self.code = code


# --------------------------------------------------------------------------- builders

def stamp(moment=None, ago=0):
    """RFC 3339 UTC of an aware datetime (default now), `ago` seconds before it."""
    moment = (moment or datetime.now(timezone.utc)) - timedelta(seconds=ago)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def uid(name):
    return 'uid-%s' % name


def container(name, image, limits=None, requests=None):
    resources = {}
    if limits:
        resources['limits'] = dict(limits)
    if requests:
        resources['requests'] = dict(requests)
    return {'name': name, 'image': image, 'resources': resources, 'imagePullPolicy': 'IfNotPresent',
            'terminationMessagePath': '/dev/termination-log', 'terminationMessagePolicy': 'File'}


def deployment(name, namespace, image='app:1', replicas=3, ready=None, revision=1, labels=None, containers=None,
               limits=None, requests=None, conditions=None, paused=False):
    """A Deployment as `kubectl get -o json` shows it, rolled out at revision with `ready` of its replicas ready."""
    labels = labels or {'app': name}
    ready = replicas if ready is None else ready
    spec_containers = containers or [container(name, image, limits, requests)]
    built = {'apiVersion': 'apps/v1', 'kind': 'Deployment',
             'metadata': {'name': name, 'namespace': namespace, 'uid': uid(name), 'generation': 1, 'resourceVersion': '100',
                          'creationTimestamp': '2026-11-20T08:00:00Z', 'labels': dict(labels),
                          'annotations': {REVISION: str(revision)}},
             'spec': {'replicas': replicas, 'selector': {'matchLabels': dict(labels)},
                      'template': {'metadata': {'labels': dict(labels)},
                                   'spec': {'containers': copy.deepcopy(spec_containers), 'restartPolicy': 'Always',
                                            'terminationGracePeriodSeconds': 30, 'dnsPolicy': 'ClusterFirst',
                                            'securityContext': {}, 'schedulerName': 'default-scheduler'}},
                      'strategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': '25%', 'maxSurge': '25%'}},
                      'revisionHistoryLimit': 10, 'progressDeadlineSeconds': 600},
             'status': {'observedGeneration': 1, 'replicas': replicas, 'updatedReplicas': replicas,
                        'readyReplicas': ready, 'availableReplicas': ready, 'unavailableReplicas': replicas - ready,
                        'conditions': conditions or [
                            {'type': 'Available', 'status': 'True' if ready else 'False',
                             'reason': 'MinimumReplicasAvailable' if ready else 'MinimumReplicasUnavailable',
                             'message': 'Deployment %s minimum availability.' % ('has' if ready else 'does not have'),
                             'lastUpdateTime': '2026-11-20T08:01:00Z', 'lastTransitionTime': '2026-11-20T08:01:00Z'},
                            {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable',
                             'message': 'ReplicaSet "%s-h%05d" has successfully progressed.' % (name, revision),
                             'lastUpdateTime': '2026-11-20T08:01:00Z', 'lastTransitionTime': '2026-11-20T08:00:00Z'}]}}
    if paused:
        built['spec']['paused'] = True
    return built


def template_hash(revision):
    """The pod-template-hash of the ReplicaSets (named <deployment>-<hash>) and pods of a revision."""
    return 'h%05d' % revision


def replica_set(owner, revision, image, created=None, replicas=0, change_cause=None, conditions=None):
    """A ReplicaSet the Deployment `owner` controls (ownerReferences), at `revision`, of `image`;
    conditions: its status conditions (a ReplicaFailure, say)."""
    meta = owner['metadata']
    hash_value = template_hash(revision)
    template = copy.deepcopy(owner['spec']['template'])
    template['metadata']['labels']['pod-template-hash'] = hash_value
    for spec_container in template['spec']['containers'][:1]:
        spec_container['image'] = image
    annotations = {REVISION: str(revision), 'deployment.kubernetes.io/desired-replicas': str(owner['spec']['replicas']),
                   'deployment.kubernetes.io/max-replicas': str(owner['spec']['replicas'] + 1)}
    if change_cause:
        annotations['kubernetes.io/change-cause'] = change_cause
    built = {'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
             'metadata': {'name': '%s-%s' % (meta['name'], hash_value), 'namespace': meta['namespace'],
                          'uid': uid('%s-%s' % (meta['name'], hash_value)), 'resourceVersion': str(1000 + revision),
                          'creationTimestamp': created or '2026-11-%02dT10:00:00Z' % min(28, revision + 1),
                          'generation': 1, 'labels': dict(template['metadata']['labels']), 'annotations': annotations,
                          'ownerReferences': [{'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': meta['name'],
                                               'uid': meta['uid'], 'controller': True, 'blockOwnerDeletion': True}]},
             'spec': {'replicas': replicas, 'selector': {'matchLabels': dict(template['metadata']['labels'])},
                      'template': template},
             'status': {'observedGeneration': 1, 'replicas': replicas, 'readyReplicas': replicas,
                        'availableReplicas': replicas}}
    if conditions:
        built['status']['conditions'] = copy.deepcopy(conditions)
    return built


def pod(owner, name, phase='Running', ready=None, restarts=0, waiting=None, waiting_message=None, last_terminated=None,
        exit_code=None, terminated=None, node='node-1', unschedulable=None, containers=None, revision=None):
    """A pod of the Deployment `owner` (its template's labels and containers), controlled (ownerReferences)
    by its ReplicaSet of `revision` (default: the Deployment's current one, replica_set(owner, revision, ...)),
    whose pod-template-hash label it carries. waiting: the reason a container waits (CrashLoopBackOff,
    ImagePullBackOff...); last_terminated: the reason of its last termination (OOMKilled, Error);
    terminated: the reason of a current termination; unschedulable: the scheduler's message of a
    Pending pod (not scheduled, PodScheduled False)."""
    template = owner['spec']['template']
    spec_containers = copy.deepcopy(containers or template['spec']['containers'])
    started = stamp(ago=300)
    if ready is None:
        ready = phase == 'Running' and not waiting and not terminated
    statuses = []
    for spec_container in spec_containers:
        if waiting:
            state = {'waiting': {'reason': waiting, 'message': waiting_message or _waiting_message(waiting, spec_container)}}
        elif terminated:
            state = {'terminated': {'reason': terminated, 'exitCode': exit_code or (137 if terminated == 'OOMKilled' else 1),
                                    'startedAt': started, 'finishedAt': stamp(ago=10), 'containerID': 'containerd://t'}}
        else:
            state = {'running': {'startedAt': started}}
        last = {}
        if last_terminated:
            last = {'terminated': {'reason': last_terminated, 'exitCode': exit_code or (137 if last_terminated == 'OOMKilled' else 1),
                                   'startedAt': stamp(ago=120), 'finishedAt': stamp(ago=60), 'containerID': 'containerd://l'}}
        statuses.append({'name': spec_container['name'], 'image': spec_container['image'], 'imageID': '',
                         'ready': bool(ready), 'started': bool(ready), 'restartCount': restarts, 'state': state,
                         'lastState': last, 'containerID': 'containerd://%s' % name})
    scheduled = {'type': 'PodScheduled', 'status': 'True', 'lastTransitionTime': stamp(ago=600)}
    if unschedulable:
        scheduled = {'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable', 'message': unschedulable,
                     'lastTransitionTime': stamp(ago=600)}
    status = {'phase': 'Pending' if unschedulable else phase, 'conditions': [
        scheduled, {'type': 'Ready', 'status': 'True' if ready else 'False', 'lastTransitionTime': stamp(ago=600)}],
        'startTime': stamp(ago=600)}
    if not unschedulable:
        status['containerStatuses'] = statuses
    hash_value = template_hash(int(owner['metadata']['annotations'][REVISION]) if revision is None else revision)
    controller = '%s-%s' % (owner['metadata']['name'], hash_value)
    labels = dict(template['metadata']['labels'], **{'pod-template-hash': hash_value})
    return {'apiVersion': 'v1', 'kind': 'Pod',
            'metadata': {'name': name, 'namespace': owner['metadata']['namespace'], 'uid': uid(name), 'labels': labels,
                         'resourceVersion': '500', 'creationTimestamp': stamp(ago=600),
                         'ownerReferences': [{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet', 'name': controller,
                                              'uid': uid(controller), 'controller': True, 'blockOwnerDeletion': True}]},
            'spec': {'containers': spec_containers, 'nodeName': None if unschedulable else node,
                     'restartPolicy': 'Always'},
            'status': status}


def _waiting_message(reason, spec_container):
    if reason == 'CrashLoopBackOff':
        return 'back-off 5m0s restarting failed container=%s pod=...' % spec_container['name']
    if reason in ('ImagePullBackOff', 'ErrImagePull'):
        return 'Back-off pulling image "%s"' % spec_container['image']
    return None


def hpa(target, low, high, current=None, desired=None, conditions=None):
    """An autoscaling/v2 HPA of the Deployment `target`."""
    meta = target['metadata']
    current = target['spec']['replicas'] if current is None else current
    return {'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',
            'metadata': {'name': meta['name'], 'namespace': meta['namespace'], 'resourceVersion': '900',
                         'creationTimestamp': '2026-11-20T08:00:00Z'},
            'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': meta['name']},
                     'minReplicas': low, 'maxReplicas': high,
                     'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {
                         'type': 'Utilization', 'averageUtilization': 70}}}]},
            'status': {'currentReplicas': current, 'desiredReplicas': current if desired is None else desired,
                       'conditions': conditions or []}}


def service(target, name=None, port=80, target_port=8080, selector=True):
    """The Service of the Deployment `target` (its selector's labels); selector=False: one without a
    selector, whose Endpoints nobody creates (add none, or endpoints() by hand)."""
    meta = target['metadata']
    spec = {'type': 'ClusterIP', 'ports': [{'name': 'http', 'port': port, 'targetPort': target_port, 'protocol': 'TCP'}]}
    if selector:
        spec['selector'] = dict(target['spec']['selector']['matchLabels'])
    return {'apiVersion': 'v1', 'kind': 'Service',
            'metadata': {'name': name or meta['name'], 'namespace': meta['namespace'], 'resourceVersion': '300'},
            'spec': spec}


def endpoints(target, name=None, ready=(), not_ready=(), port=8080):
    """The Endpoints of the Service (default: named as the Deployment) with these pods ready or not."""
    meta = target['metadata']

    def address(index, item):
        return {'ip': '10.1.0.%d' % (index + 10), 'nodeName': item['spec'].get('nodeName'),
                'targetRef': {'kind': 'Pod', 'name': item['metadata']['name'], 'namespace': meta['namespace']}}
    subset = {'ports': [{'name': 'http', 'port': port, 'protocol': 'TCP'}]}
    if ready:
        subset['addresses'] = [address(i, p) for i, p in enumerate(ready)]
    if not_ready:
        subset['notReadyAddresses'] = [address(i + len(ready), p) for i, p in enumerate(not_ready)]
    return {'apiVersion': 'v1', 'kind': 'Endpoints',
            'metadata': {'name': name or meta['name'], 'namespace': meta['namespace'], 'resourceVersion': '301'},
            'subsets': [subset] if ready or not_ready else []}


_EVENTS = iter(range(1, 1 << 30))


def event(about, reason, message, kind_type='Warning', count=1, ago=30):
    """A core/v1 Event about the object `about` (a Pod, ReplicaSet or Deployment dict), last seen `ago` s ago."""
    meta = about['metadata']
    return {'apiVersion': 'v1', 'kind': 'Event',
            'metadata': {'name': '%s.%x' % (meta['name'], next(_EVENTS)), 'namespace': meta['namespace'],
                         'resourceVersion': '700', 'creationTimestamp': stamp(ago=ago + 60)},
            'involvedObject': {'kind': about['kind'], 'name': meta['name'], 'namespace': meta['namespace'],
                               'apiVersion': about['apiVersion'], 'uid': meta.get('uid')},
            'reason': reason, 'message': message, 'type': kind_type, 'count': count,
            'source': {'component': 'kubelet'}, 'firstTimestamp': stamp(ago=ago + 60), 'lastTimestamp': stamp(ago=ago),
            'reportingComponent': 'kubelet', 'reportingInstance': ''}


def pod_metrics(of, cpu, memory, container_name=None):
    """The PodMetrics (metrics.k8s.io/v1beta1) of a pod: usage of its (first) container."""
    meta = of['metadata']
    name = container_name or of['spec']['containers'][0]['name']
    return {'apiVersion': 'metrics.k8s.io/v1beta1', 'kind': 'PodMetrics',
            'metadata': {'name': meta['name'], 'namespace': meta['namespace'], 'labels': dict(meta.get('labels') or {}),
                         'creationTimestamp': stamp()},
            'timestamp': stamp(ago=5), 'window': '15.004s',
            'containers': [{'name': name, 'usage': {'cpu': cpu, 'memory': memory}}]}


# --------------------------------------------------------------------------- patches and quantities

def strategic_merge(original, patch):
    result = dict(original)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list):
            result[key] = merge_list(original.get(key) or [], value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            result[key] = strategic_merge(original.get(key) or {}, value)
        else:
            result[key] = value
    return result


def merge_list(items, patch, key):
    items = [dict(i) for i in items]
    for entry in patch:
        if entry.get('$patch') == 'delete':
            items = [i for i in items if i[key] != entry[key]]
            continue
        index = next((n for n, i in enumerate(items) if i[key] == entry[key]), None)
        if index is None:
            items.append(strategic_merge({}, entry))
        else:
            items[index] = strategic_merge(items[index], entry)
    return items


def json_patch(original, operations):
    patched = copy.deepcopy(original)
    for op in operations:
        if op.get('op') != 'replace':
            raise ApiStatus(422, 'Invalid', 'the fake applies replace operations only, not %s' % op.get('op'))
        steps = op['path'].strip('/').split('/')
        parent = patched
        for step in steps[:-1]:
            parent = parent[step]
        if steps[-1] not in parent:
            raise ApiStatus(422, 'Invalid', 'the server rejected our request due to an error in our request: '
                            'replace operation does not apply: doc is missing key: %s' % op['path'])
        parent[steps[-1]] = copy.deepcopy(op['value'])
    return patched


def canonical(quantity):
    """The API server's serialisation of the quantities used here."""
    number, unit = re.fullmatch(r'(\d+)(m|Ki|Mi|Gi|)', quantity).groups()
    if unit == 'm' and int(number) % 1000 == 0:
        return str(int(number) // 1000)
    if unit in ('Ki', 'Mi') and int(number) % 1024 == 0:
        return canonical('%d%s' % (int(number) // 1024, {'Ki': 'Mi', 'Mi': 'Gi'}[unit]))
    return quantity


def millis(quantity):
    number, unit = re.fullmatch(r'(\d+)(m|Ki|Mi|Gi|)', quantity).groups()
    return int(number) * {'m': 1, '': 1000, 'Ki': 1000 << 10, 'Mi': 1000 << 20, 'Gi': 1000 << 30}[unit]


# --------------------------------------------------------------------------- selectors

_TERM_RE = re.compile(r'\s*([^,()]+?)\s+(in|notin)\s+\(([^)]*)\)\s*|\s*([^,=!]+?)\s*(==|=|!=)\s*([^,]*?)\s*|\s*(!?)([^,=!()]+?)\s*$')


def selector_terms(text):
    """The terms of a selector string: (key, op, values), op one of =, !=, in, notin, exists, !exists."""
    terms, rest = [], text or ''
    while rest.strip():
        depth, cut = 0, len(rest)
        for index, char in enumerate(rest):
            depth += {'(': 1, ')': -1}.get(char, 0)
            if char == ',' and depth == 0:
                cut = index
                break
        term, rest = rest[:cut], rest[cut + 1:]
        match = _TERM_RE.fullmatch(term)
        if not match:
            raise ApiStatus(400, 'BadRequest', 'unable to parse requirement: %r' % term)
        if match.group(2):
            terms.append((match.group(1), match.group(2), {v.strip() for v in match.group(3).split(',') if v.strip()}))
        elif match.group(5):
            terms.append((match.group(4), '!=' if match.group(5) == '!=' else '=', {match.group(6)}))
        else:
            terms.append((match.group(8), '!exists' if match.group(7) else 'exists', set()))
    return terms


def matches(terms, values):
    """Whether a map of values (labels, or fields) satisfies every term."""
    for key, op, wanted in terms:
        present = key in values
        value = values.get(key)
        if (op == '=' and value not in wanted) or (op == '!=' and present and value in wanted) \
                or (op == 'in' and value not in wanted) or (op == 'notin' and present and value in wanted) \
                or (op == 'exists' and not present) or (op == '!exists' and present):
            return False
    return True


def fields(obj):
    meta, involved = obj.get('metadata') or {}, obj.get('involvedObject') or {}
    found = {'metadata.name': meta.get('name'), 'metadata.namespace': meta.get('namespace')}
    for key in ('type', 'reason'):
        if key in obj:
            found[key] = obj[key]
    for key in ('kind', 'name', 'namespace', 'uid'):
        if key in involved:
            found['involvedObject.' + key] = involved[key]
    return found


# --------------------------------------------------------------------------- the server

class FakeApiServer:
    def __init__(self):
        self.objects = {}                # (resource, namespace, name) -> object
        self.logs = {}                   # (namespace, pod, container, previous) -> [(RFC 3339 nano, line)]
        self.proxies = {}                # (namespace, service) -> base URL of a local HTTP server
        self.requests = []
        self.metrics_server = True       # False: metrics.k8s.io not registered (404); 'down': 503
        self.controller = 'converge'     # 'converge', 'stuck' or None
        self.conflict_on = set()         # kinds whose next PATCH answers 409
        self.templates = {}              # pod template each Deployment's last revision was made of
        self.dirty = set()               # Deployments changed by a PATCH, for the controllers
        self.version = 1000
        self.denied = set()              # (verb, group, resource, subresource) refused to the token
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = body
                fake.requests.append({'method': self.command, 'path': url.path, 'query': query,
                                      'headers': {k.lower(): v for k, v in self.headers.items()},
                                      'content_type': self.headers.get('Content-Type'), 'body': parsed})
                headers = {'Content-Type': 'application/json'}
                try:
                    if self.headers.get('Authorization') != 'Bearer ' + TOKEN:
                        raise ApiStatus(401, 'Unauthorized', 'Unauthorized')
                    proxied = fake.proxy_request(self.command, url, self.headers)
                    if proxied is not None:
                        code, headers, data = proxied
                    else:
                        with fake.lock:
                            code, data = fake.serve(self.command, url.path, query, self.headers.get('Content-Type'), body)
                        if isinstance(data, str):
                            headers = {'Content-Type': 'text/plain'}
                except ApiStatus as status:
                    code, data = status.code, status.body
                payload = data if isinstance(data, bytes) else data.encode() if isinstance(data, str) \
                    else json.dumps(data).encode()
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PATCH = do_POST = answer

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ seeding

    def add(self, *objects):
        """Stores objects (their kind and apiVersion say where), replacing one of the same name."""
        for obj in objects:
            group = obj['apiVersion'].split('/')[0] if '/' in obj['apiVersion'] else ''
            resource = BY_KIND[(obj['kind'], group)]
            key = (resource, obj['metadata']['namespace'], obj['metadata']['name'])
            self.objects[key] = copy.deepcopy(obj)
            if resource == 'deployments':
                self.templates[key] = copy.deepcopy(obj['spec']['template'])

    def get(self, resource, name, namespace=None):
        """The stored object; without namespace, the only one of that resource and name."""
        if namespace is None:
            [namespace] = [ns for (r, ns, n) in self.objects if r == resource and n == name]
        return self.objects[(resource, namespace, name)]

    def set_log(self, namespace, pod_name, container_name, lines, previous=False, start=None, step=1.0):
        """The log of a container: lines (text, or (datetime, text)); times from `start` (default:
        now minus one step per line) `step` seconds apart."""
        start = start or datetime.now(timezone.utc) - timedelta(seconds=step * len(lines))
        entries = []
        for index, line in enumerate(lines):
            moment, text = line if isinstance(line, tuple) else (start + timedelta(seconds=step * index), line)
            entries.append((moment, text))
        self.logs[(namespace, pod_name, container_name, previous)] = entries

    def proxy_to(self, namespace, service_name, url):
        """The base URL of the local HTTP server that plays the Service's pods behind the proxy."""
        self.proxies[(namespace, service_name)] = url.rstrip('/')

    def patches(self):
        return [r for r in self.requests if r['method'] == 'PATCH']

    # ------------------------------------------------------------------ reading

    def not_found(self, resource, name):
        _prefix, group, _version, _kind = RESOURCES[resource]
        details = {'name': name, 'kind': resource}
        if group:
            details['group'] = group
        return ApiStatus(404, 'NotFound', '%s%s "%s" not found' % (resource, '.' + group if group else '', name), details)

    def serve(self, method, path, query, content_type, body):
        if path in ('/version', '/version/') and method == 'GET':
            return 200, {'major': '1', 'minor': '28', 'gitVersion': 'v1.28.0', 'gitCommit': '855e7c48de7388eb330da0f8d9d2394ee818fb8d',
                         'gitTreeState': 'clean', 'buildDate': '2023-08-15T10:15:54Z', 'goVersion': 'go1.20.7',
                         'compiler': 'gc', 'platform': 'linux/amd64'}
        if path == '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' and method == 'POST':
            review = json.loads(body)
            asked = review['spec']['resourceAttributes']
            access = tuple(asked.get(key) or '' for key in ('verb', 'group', 'resource', 'subresource'))
            allowed = access not in self.denied
            reason = 'RBAC: allowed by RoleBinding "runbook"' if allowed else ''
            return 201, dict(review, status={'allowed': allowed, 'reason': reason})
        match = PATH_RE.match(path)
        if not match:
            raise ApiStatus(404, 'NotFound', NOT_FOUND_PATH, {})
        prefix, namespace, resource, name, sub = match.groups()
        if resource == 'pods' and prefix == '/apis/metrics.k8s.io/v1beta1':
            resource = 'metrics'
            if self.metrics_server is False:
                raise ApiStatus(404, 'NotFound', NOT_FOUND_PATH, {})
            if self.metrics_server == 'down':
                raise ApiStatus(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')
        if resource not in RESOURCES or RESOURCES[resource][0] != prefix:
            raise ApiStatus(404, 'NotFound', NOT_FOUND_PATH, {})
        if method == 'GET' and name is None:
            return 200, self.list(resource, namespace, query)
        key = (resource, namespace, name)
        if key not in self.objects:
            raise self.not_found(resource, name)
        if sub == '/log' and resource == 'pods' and method == 'GET':
            return 200, self.pod_log(self.objects[key], query)
        if sub:
            raise ApiStatus(404, 'NotFound', NOT_FOUND_PATH, {})
        if method == 'GET':
            if resource == 'deployments' and key in self.dirty:
                self.controllers(key)
            return 200, copy.deepcopy(self.objects[key])
        if method != 'PATCH' or resource not in PATCHABLE:
            raise ApiStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
        return 200, self.patch(key, query, content_type, body)

    def list(self, resource, namespace, query):
        prefix, group, version, kind = RESOURCES[resource]
        labels = selector_terms((query.get('labelSelector') or [''])[0])
        field_terms = selector_terms((query.get('fieldSelector') or [''])[0])
        items = [copy.deepcopy(obj) for (r, ns, _name), obj in sorted(self.objects.items())
                 if r == resource and ns == namespace
                 and matches(labels, obj['metadata'].get('labels') or {}) and matches(field_terms, fields(obj))]
        return {'apiVersion': '%s/%s' % (group, version) if group else version,
                'kind': kind + 'List', 'metadata': {'resourceVersion': str(self.version)}, 'items': items}

    def pod_log(self, the_pod, query):
        name = the_pod['metadata']['name']
        namespace = the_pod['metadata']['namespace']
        names = [c['name'] for c in the_pod['spec']['containers']]
        wanted = (query.get('container') or [None])[0]
        if wanted is None:
            if len(names) > 1:
                raise ApiStatus(400, 'BadRequest', 'a container name must be specified for pod %s, choose one of: [%s]'
                                % (name, ' '.join(names)))
            wanted = names[0]
        if wanted not in names:
            raise ApiStatus(400, 'BadRequest', 'container %s is not valid for pod %s' % (wanted, name))
        previous = (query.get('previous') or ['false'])[0] == 'true'
        status = next((s for s in the_pod['status'].get('containerStatuses') or [] if s['name'] == wanted), None)
        if previous and not (status or {}).get('lastState', {}).get('terminated'):
            raise ApiStatus(400, 'BadRequest', 'previous terminated container "%s" in pod "%s" not found' % (wanted, name))
        # A container never started has no log; one in CrashLoopBackOff has its last instance's.
        reason = ((status or {}).get('state', {}).get('waiting') or {}).get('reason') or 'ContainerCreating'
        if not previous and (status is None or 'waiting' in status.get('state', {})) and reason != 'CrashLoopBackOff':
            raise ApiStatus(400, 'BadRequest', 'container "%s" in pod "%s" is waiting to start: %s' % (wanted, name, reason))
        entries = self.logs.get((namespace, name, wanted, previous), [])
        if query.get('sinceSeconds'):
            cutoff = datetime.now(timezone.utc) - timedelta(seconds=int(query['sinceSeconds'][0]))
            entries = [e for e in entries if e[0] >= cutoff]
        if query.get('tailLines'):
            tail = int(query['tailLines'][0])
            entries = entries[-tail:] if tail else []
        stamps = (query.get('timestamps') or ['false'])[0] == 'true'
        return ''.join('%s%s\n' % (moment.strftime('%Y-%m-%dT%H:%M:%S.%f000Z ') if stamps else '', text)
                       for moment, text in entries)

    def proxy_request(self, method, url, headers):
        """The answer of a services/{name}/proxy request, None for any other path."""
        match = re.match(r'^/api/v1/namespaces/([^/]+)/services/([^/]+)/proxy(/.*)?$', url.path)
        if not match:
            return None
        namespace, target, path = match.group(1), unquote(match.group(2)), match.group(3) or '/'
        parts = target.split(':')
        service_name = parts[1] if len(parts) == 3 or parts[0] in ('http', 'https') and len(parts) > 1 else parts[0]
        if (('services', namespace, service_name)) not in self.objects:
            raise self.not_found('services', service_name)
        ends = self.objects.get(('endpoints', namespace, service_name)) or {}
        ready = any(s.get('addresses') for s in ends.get('subsets') or [])
        base = self.proxies.get((namespace, service_name))
        if base is None or (ends and not ready):
            raise ApiStatus(503, 'ServiceUnavailable', 'no endpoints available for service "%s"' % service_name)
        upstream = urlsplit(base)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=10)
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ('authorization', 'host', 'content-length')}
        connection.request(method, path + ('?' + url.query if url.query else ''), headers=forwarded)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        kept = {k: v for k, v in response.getheaders() if k.lower() not in ('content-length', 'connection', 'date', 'server')}
        return response.status, kept, data

    # ------------------------------------------------------------------ writing

    def patch(self, key, query, content_type, body):
        resource, _namespace, name = key
        _prefix, group, _version, kind = RESOURCES[resource]
        old = self.objects[key]
        if content_type == 'application/strategic-merge-patch+json':
            new = strategic_merge(copy.deepcopy(old), json.loads(body))
        elif content_type == 'application/json-patch+json':
            new = json_patch(old, json.loads(body))
        else:
            raise ApiStatus(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                            'accepted media types include: application/json-patch+json, '
                            'application/strategic-merge-patch+json')
        dry_run = query.get('dryRun')
        if dry_run not in (None, ['All']):
            raise ApiStatus(400, 'BadRequest', 'Invalid dry run value: %s' % dry_run)
        if kind in self.conflict_on:
            self.conflict_on.discard(kind)
            raise ApiStatus(409, 'Conflict', 'Operation cannot be fulfilled on %s%s "%s": the object has been modified; '
                            'please apply your changes to the latest version and try again'
                            % (resource, '.' + group if group else '', name),
                            {'name': name, 'group': group, 'kind': resource})
        self.validate(kind, new)
        if old.get('spec') != new.get('spec'):
            new['metadata']['generation'] = old['metadata'].get('generation', 1) + 1
        if new != old and not dry_run:
            self.version += 1
            new['metadata']['resourceVersion'] = str(self.version)
            self.objects[key] = new
            target = (new['spec']['scaleTargetRef']['name'] if resource == 'horizontalpodautoscalers'
                      else name if resource == 'deployments' else None)
            if target:
                self.dirty.add(('deployments', key[1], target))
        return copy.deepcopy(new)

    @staticmethod
    def validate(kind, obj):
        causes = []
        if kind == 'Deployment':
            for index, spec_container in enumerate(obj['spec']['template']['spec']['containers']):
                where = 'spec.template.spec.containers[%d]' % index
                resources = spec_container.get('resources') or {}
                for group in ('limits', 'requests'):
                    resources[group] = {k: canonical(v) for k, v in (resources.get(group) or {}).items()} or None
                    if resources[group] is None:
                        del resources[group]
                for resource, request in (resources.get('requests') or {}).items():
                    limit = (resources.get('limits') or {}).get(resource)
                    if limit and millis(request) > millis(limit):
                        causes.append(('%s.resources.requests' % where, 'Invalid value: "%s": must be less than or '
                                       'equal to %s limit of %s' % (request, resource, limit)))
                for j, env in enumerate(spec_container.get('env') or []):
                    if env.get('value') and 'valueFrom' in env:
                        causes.append(('%s.env[%d].valueFrom' % (where, j), 'Invalid value: "": may not be '
                                       'specified when `value` is not empty'))
        if kind == 'HorizontalPodAutoscaler' and obj['spec'].get('minReplicas', 1) > obj['spec']['maxReplicas']:
            causes.append(('spec.maxReplicas', 'Invalid value: %d: must be greater than or equal to `minReplicas`'
                           % obj['spec']['maxReplicas']))
        if causes:
            group = 'apps' if kind == 'Deployment' else 'autoscaling'
            raise ApiStatus(422, 'Invalid', '%s.%s "%s" is invalid: %s' % (
                kind, group, obj['metadata']['name'], ', '.join('%s: %s' % c for c in causes)),
                {'name': obj['metadata']['name'], 'group': group, 'kind': kind,
                 'causes': [{'reason': 'FieldValueInvalid', 'message': m, 'field': f} for f, m in causes]})

    def controllers(self, key):
        """One step of the HPA and Deployment controllers for a Deployment changed by a PATCH."""
        if self.controller is None:
            return
        deploy = self.objects[key]
        spec, status, meta = deploy['spec'], deploy['status'], deploy['metadata']
        for (resource, namespace, _name), obj in self.objects.items():
            ref = obj['spec'].get('scaleTargetRef', {}) if resource == 'horizontalpodautoscalers' else {}
            if namespace == key[1] and ref.get('name') == meta['name'] and spec['replicas'] < obj['spec'].get('minReplicas', 1):
                spec['replicas'] = obj['spec']['minReplicas']
                meta['generation'] += 1
                obj['status'].update(currentReplicas=spec['replicas'], desiredReplicas=spec['replicas'])
                return
        if status.get('observedGeneration', 0) < meta['generation']:
            if spec['template'] != self.templates[key]:
                self.templates[key] = copy.deepcopy(spec['template'])
                annotations = meta.setdefault('annotations', {})
                annotations[REVISION] = str(int(annotations.get(REVISION, '0')) + 1)
            status.update(observedGeneration=meta['generation'], updatedReplicas=0)
        elif self.controller == 'stuck':
            # The rollout of each generation times out on its own: a new lastUpdateTime, so that the
            # module tells it from a deadline exceeded before its patch (still there until progress).
            progressing = next(c for c in status['conditions'] if c['type'] == 'Progressing')
            progressing.update(status='False', reason='ProgressDeadlineExceeded',
                               lastUpdateTime='2024-05-01T10:%02d:00Z' % meta['generation'],
                               message='ReplicaSet "%s-5f7c9d" has timed out progressing.' % meta['name'])
        else:
            status.update(replicas=spec['replicas'], updatedReplicas=spec['replicas'],
                          readyReplicas=spec['replicas'], availableReplicas=spec['replicas'])


def write_kubeconfig(api, path, namespace=None):
    """A kubeconfig file for the fake (its URL and TOKEN), as a playbook's runbook_kubeconfig."""
    context = {'cluster': 'fake', 'user': 'runbook'}
    if namespace:
        context['namespace'] = namespace
    path.write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'fake',
        'clusters': [{'name': 'fake', 'cluster': {'server': api.url}}],
        'users': [{'name': 'runbook', 'user': {'token': TOKEN}}],
        'contexts': [{'name': 'fake', 'context': context}]}))
    return path

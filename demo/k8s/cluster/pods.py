"""A pod on the test node, as a kubelet runs it: the sandbox, the volumes, each container through
runtime.py (restarted with the kubelet's back-off), the probes, and the status and the Events
(Unhealthy, Killing, BackOff) the kubelet writes.

Supported: containers (no init or ephemeral containers), env (value, fieldRef, configMapKeyRef,
secretKeyRef, envFrom) and the Services' *_SERVICE_HOST/PORT variables, command/args with $(VAR),
volumes emptyDir, configMap, secret, projected (service account token, configMap, downwardAPI)
and hostPath, securityContext (runAsUser/Group, runAsNonRoot, fsGroup, readOnlyRootFilesystem,
capabilities, allowPrivilegeEscalation), CPU and memory limits, httpGet/tcpSocket/exec probes,
restartPolicy. Unsupported fields are ignored, as an older kubelet ignores newer ones.
"""

import base64
import collections
import http.client
import json
import logging
import os
import queue
import re
import socket
import ssl
import subprocess
import threading
import time

from kubernetes.client.rest import ApiException

import runtime

LOG = logging.getLogger('node')
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
# A container that ran this long starts its back-off again from the start (as the kubelet).
BACKOFF_RESET = 600.0
DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
                'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
                'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE']
PULL_MESSAGE = ('failed to pull image "%s": it is not in the node\'s image store and no registry can be '
                'reached from this machine')
# HTTPS probes check no certificate, as the kubelet's do.
UNVERIFIED = ssl._create_unverified_context()  # pylint: disable=protected-access
# client-go's EventCorrelator, as the kubelet runs it: 4096 Events remembered, and 25 Events of a type
# about a pod, then one more every 5 minutes (the ones left out still count).
REMEMBERED = 4096
SPAM_BURST, SPAM_REFILL = 25, 300.0
EXEC_OUTPUT_MAX = 10 * 1024   # what the kubelet keeps of an exec probe's output
# What the kubelet's HTTP client says when the probe's timeout ends before the answer's headers.
DEADLINE = 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
UNITS = {'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40, 'k': 10 ** 3, 'M': 10 ** 6, 'G': 10 ** 9, 'T': 10 ** 12}


class ConfigError(Exception):
    """What the kubelet reports as CreateContainerConfigError."""


def quantity(text):
    """A Kubernetes quantity as a number ('500m' -> 0.5, '160Mi' -> 167772160)."""
    match = re.fullmatch(r'([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?', str(text))
    if not match:
        raise ConfigError('quantity %r not understood' % text)
    number = float(match.group(1))
    unit = match.group(2)
    return number / 1000 if unit == 'm' else number * UNITS.get(unit, 1)


def expand(text, env):
    """$(VAR) references, as the kubelet expands them ($$ escapes)."""
    return re.sub(r'\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)',
                  lambda m: '$' if m.group(0) == '$$' else env.get(m.group(1), m.group(0)), text)


def key_of(data, ref, kind, namespace):
    """The value of a configMapKeyRef or secretKeyRef; the kubelet's error when the key is not there."""
    if ref['key'] not in data:
        raise ConfigError("couldn't find key %s in %s %s/%s" % (ref['key'], kind, namespace, ref['name']))
    return data[ref['key']]


def go_error(err):
    """An OSError's text as Go's syscall errors read ('connection refused')."""
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


def dial_error(host, port, err):
    """A failed TCP connect as Go's net.Dial says it."""
    return 'dial tcp %s:%d: %s' % (host, port, 'i/o timeout' if isinstance(err, TimeoutError) else 'connect: ' + go_error(err))


def go_duration(seconds):
    """Whole seconds as Go's time.Duration prints them (1s, 1m30s, 1h0m0s)."""
    hours, minutes = seconds // 3600, seconds // 60 % 60
    return '%dh%dm%ds' % (hours, minutes, seconds % 60) if hours else '%dm%ds' % (minutes, seconds % 60) if minutes else '%ds' % seconds


def remember(cache, key, value):
    """cache[key] = value, the least recently remembered left out past REMEMBERED (an LRU cache)."""
    cache.pop(key, None)
    cache[key] = value
    if len(cache) > REMEMBERED:
        cache.popitem(last=False)


class Recorder:
    """The kubelet's event recorder: pods queue their containers' Events (a full queue drops one) and
    a thread of its own writes them, as client-go's EventCorrelator does: the same Event again (pod,
    container, type, reason, message) is the one Event patched with its count + 1 and its
    lastTimestamp, within the spam filter's budget. One API write per Event at most: one that fails
    is logged and lost."""

    def __init__(self, core, node):
        self.core, self.node = core, node
        self.queue = queue.Queue(1000)
        self.seen = collections.OrderedDict()     # (pod uid, container, type, reason, message) -> what the API has
        self.budgets = collections.OrderedDict()  # (pod uid, type) -> (tokens, monotonic time): the spam filter
        threading.Thread(target=self.run, daemon=True, name='events').start()

    def record(self, pod, container, kind, reason, message):
        try:
            self.queue.put_nowait((pod, container, kind, reason, message, time.time_ns()))
        except queue.Full:
            LOG.warning('%s/%s: event %s dropped, too many queued', pod.namespace, pod.name, reason)

    def run(self):
        while True:
            pod, container, kind, reason, message, nanos = self.queue.get()
            try:
                self.write(pod, container, kind, reason, message, nanos)
            except Exception as err:  # pylint: disable=broad-except  # the API down or refusing: this one is lost
                LOG.warning('%s/%s: event %s not written: %s', pod.namespace, pod.name, reason,
                            '%s %s' % (err.status, err.reason) if isinstance(err, ApiException) else err)

    def write(self, pod, container, kind, reason, message, nanos):
        at = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(nanos // 10 ** 9))
        key = (pod.uid, container, kind, reason, message)
        seen = self.seen.get(key) or {'name': '%s.%x' % (pod.name, nanos), 'count': 0, 'first': at, 'exists': False}
        seen['count'] += 1
        remember(self.seen, key, seen)
        if self.filtered((pod.uid, kind)):
            return
        try:
            if seen['exists']:
                self.core.patch_namespaced_event(seen['name'], pod.namespace, {'count': seen['count'], 'lastTimestamp': at, 'message': message},
                                                 _request_timeout=10, _content_type='application/strategic-merge-patch+json')
            else:
                self.core.create_namespaced_event(pod.namespace, {
                    'metadata': {'name': seen['name'], 'namespace': pod.namespace},
                    'involvedObject': {'kind': 'Pod', 'apiVersion': 'v1', 'name': pod.name, 'namespace': pod.namespace, 'uid': pod.uid,
                                       'resourceVersion': pod.obj['metadata'].get('resourceVersion'),
                                       'fieldPath': 'spec.containers{%s}' % container},
                    'type': kind, 'reason': reason, 'message': message, 'count': seen['count'],
                    'firstTimestamp': seen['first'], 'lastTimestamp': at, 'source': {'component': 'kubelet', 'host': self.node},
                    'reportingComponent': 'kubelet', 'reportingInstance': self.node}, _request_timeout=10)
        except ApiException as err:
            # An Event already there is patched next time; one gone (its TTL over) is made again.
            seen['exists'] = err.status != 404 if seen['exists'] else err.status == 409
            raise
        seen['exists'] = True

    def filtered(self, key):
        """Whether the spam filter leaves this Event out: a token bucket of SPAM_BURST per pod and
        type, refilled by one every SPAM_REFILL seconds."""
        now = time.monotonic()
        tokens, then = self.budgets.get(key, (SPAM_BURST, now))
        tokens = min(SPAM_BURST, tokens + (now - then) / SPAM_REFILL)
        remember(self.budgets, key, (tokens - 1 if tokens >= 1 else tokens, now))
        return tokens < 1


class Attempt:
    """What the node knows of one container: the current attempt and what came before."""

    def __init__(self, spec):
        self.spec = spec
        self.container = None
        self.restarts = -1
        self.waiting = ('ContainerCreating', None)
        self.last = None              # terminated state of the previous attempt
        self.ended = None             # terminated state when the current attempt has ended
        self.ready = False
        self.image_id = ''
        self.next_start = 0.0
        self.started = 0.0
        self.backoff = BACKOFF_START
        self.probes = {}              # kind -> [next due, successes, failures]


class Pod:
    """One pod: run() in a thread of its own until stop()."""

    def __init__(self, core, obj, ip, node_ip, images, services, events):
        self.core = core
        self.obj = obj                                   # the pod as a JSON dict (camelCase)
        meta = obj['metadata']
        self.uid, self.name, self.namespace = meta['uid'], meta['name'], meta['namespace']
        self.described = '%s_%s(%s)' % (self.name, self.namespace, self.uid)   # as the kubelet names it in messages
        self.ip, self.node_ip = ip, node_ip
        self.images, self.services, self.events = images, services, events
        self.dir = os.path.join(runtime.PODS, self.uid)
        self.logs = os.path.join(runtime.POD_LOGS, '%s_%s_%s' % (self.namespace, self.name, self.uid))
        self.sandbox = runtime.Sandbox(self.uid, ip)
        self.containers = {c['name']: Attempt(c) for c in obj['spec']['containers']}
        self.stopping = threading.Event()
        self.sandbox_ready = threading.Event()
        self.done = threading.Event()
        self.reported = None
        self.transitions = {}
        self.started_at = runtime.now()
        self.volumes = {}

    # ------------------------------------------------------------------ life

    def run(self):
        try:
            os.makedirs(self.dir, exist_ok=True)
            self.sandbox.create()
            self.write_network_files(self.services.hosts(self.namespace))
            self.sandbox_ready.set()
            while not self.stopping.is_set():
                try:
                    for attempt in self.containers.values():
                        self.step(attempt)
                    self.report()
                except Exception:  # pylint: disable=broad-except  # the API or a command failing: next round
                    LOG.exception('%s/%s', self.namespace, self.name)
                self.stopping.wait(0.5)
        except Exception:  # pylint: disable=broad-except  # no sandbox: one pod's failure is not the node's
            LOG.exception('%s/%s: no sandbox', self.namespace, self.name)
        finally:
            self.done.set()

    def stop(self, grace):
        """Every container stopped (SIGTERM, SIGKILL after `grace` s), the sandbox, the pod's files
        and logs removed."""
        self.stopping.set()
        self.done.wait()
        runtime.in_parallel(lambda container: container.stop(grace), [a.container for a in self.containers.values() if a.container])
        self.sandbox.destroy()
        subprocess.run(['rm', '-rf', self.dir, self.logs], check=False, timeout=60)

    # ------------------------------------------------------------------ containers

    def step(self, attempt):
        container = attempt.container
        if container and attempt.ended is None:
            code = container.exited()
            if code is None:
                self.probe(attempt)
                return
            self.ended(attempt, code)
        if attempt.ended and not self.restarts(attempt.ended['exitCode']):
            return
        if time.monotonic() < attempt.next_start:
            return
        self.start(attempt)

    def restarts(self, code):
        policy = self.obj['spec'].get('restartPolicy', 'Always')
        return policy == 'Always' or (policy == 'OnFailure' and code != 0)

    def ended(self, attempt, code=None, grace=0):
        """The attempt over (stopped within `grace` s when it still runs), its terminated state
        recorded, and its restart planned with the kubelet's back-off when the policy restarts it."""
        container = attempt.container
        oom = container.oom_killed()
        container.stop(grace)
        code = container.exited() if code is None else code
        ran = time.monotonic() - attempt.started
        attempt.ended = {'exitCode': code, 'reason': 'OOMKilled' if oom else 'Completed' if code == 0 else 'Error',
                         'startedAt': container.started, 'finishedAt': runtime.now(), 'containerID': 'runc://' + container.id}
        attempt.ready = False
        LOG.info('%s/%s %s: exited %s (%s)', self.namespace, self.name, attempt.spec['name'], code, attempt.ended['reason'])
        if not self.restarts(code):
            return
        if ran >= BACKOFF_RESET:
            attempt.backoff = BACKOFF_START
        name = attempt.spec['name']
        attempt.next_start = time.monotonic() + attempt.backoff
        attempt.waiting = ('CrashLoopBackOff', 'back-off %ds restarting failed container=%s pod=%s' % (
            attempt.backoff, name, self.described))
        attempt.backoff = min(attempt.backoff * 2, BACKOFF_MAX)
        self.events.record(self, name, 'Warning', 'BackOff', 'Back-off restarting failed container %s in pod %s' % (
            name, self.described))

    def start(self, attempt):
        if self.stopping.is_set():
            return
        spec = attempt.spec
        config = self.images.config(spec['image'])
        if config is None:
            pulled_before = attempt.waiting[0] in ('ErrImagePull', 'ImagePullBackOff')
            attempt.waiting = ('ImagePullBackOff' if pulled_before else 'ErrImagePull', PULL_MESSAGE % spec['image'])
            attempt.next_start = time.monotonic() + 5
            return
        try:
            process = self.process(spec, config)
        except (ConfigError, ApiException) as err:
            attempt.waiting = ('CreateContainerConfigError', str(err))
            attempt.next_start = time.monotonic() + 5
            return
        number = attempt.restarts + 1
        process['id'] = '%s.%s.%d' % (self.uid[:8], spec['name'], number)
        process['netns'] = self.sandbox.netns
        container = runtime.Container(self.dir, process['id'], os.path.join(self.logs, spec['name'], '%d.log' % number))
        try:
            container.start(self.images.rootfs(spec['image'], config), process,
                            bool((spec.get('securityContext') or {}).get('readOnlyRootFilesystem')))
        except Exception as err:  # pylint: disable=broad-except  # runc, the overlay, the export: said, tried again
            container.stop(0)
            attempt.waiting = ('CreateContainerError', str(err)[-300:])
            attempt.next_start = time.monotonic() + 5
            return
        if attempt.ended:
            attempt.last = attempt.ended
            old = os.path.join(self.logs, spec['name'], '%d.log' % (number - 2))
            if os.path.exists(old):
                os.unlink(old)  # the kubelet keeps the current and the previous attempt's logs
        attempt.restarts = number
        attempt.ended, attempt.ready, attempt.waiting = None, False, None
        attempt.image_id = 'docker://sha256:' + config['id']
        attempt.container, attempt.started = container, time.monotonic()
        attempt.probes = {}
        LOG.info('%s/%s %s: started %s (attempt %d)', self.namespace, self.name, spec['name'], spec['image'],
                 attempt.restarts)

    def process(self, spec, config):
        """The OCI process and mounts of a container (raises ConfigError)."""
        pod_sc = self.obj['spec'].get('securityContext') or {}
        sc = dict(pod_sc, **(spec.get('securityContext') or {}))
        uid, gid = self.user(sc, config)
        if sc.get('runAsNonRoot') and uid == 0:
            raise ConfigError('container has runAsNonRoot and image will run as root')
        env = self.environment(spec, config)
        command = spec.get('command')
        args = spec.get('args')
        if command:
            argv = command + (args or [])
        else:
            argv = config['entrypoint'] + (args if args is not None else config['cmd'])
        argv = [expand(a, env) for a in argv]
        if not argv:
            raise ConfigError('no command specified')
        caps = sc.get('capabilities') or {}
        drop = ['CAP_' + c.upper() for c in caps.get('drop') or []]
        kept = [] if 'CAP_ALL' in drop else [c for c in DEFAULT_CAPS if c not in drop]
        kept += ['CAP_' + c.upper() for c in caps.get('add') or []]
        limits = (spec.get('resources') or {}).get('limits') or {}
        groups = [g for g in [pod_sc.get('fsGroup')] + (pod_sc.get('supplementalGroups') or []) if g is not None]
        return {'args': argv, 'env': ['%s=%s' % kv for kv in env.items()], 'cwd': spec.get('workingDir') or config['cwd'],
                'uid': uid, 'gid': gid, 'groups': groups, 'capabilities': kept,
                'no_new_privileges': sc.get('allowPrivilegeEscalation') is False,
                'hostname': self.name[:63], 'mounts': self.mounts(spec),
                'memory': int(quantity(limits['memory'])) if 'memory' in limits else None,
                'cpu_quota': int(quantity(limits['cpu']) * 100000) if 'cpu' in limits else None}

    def user(self, sc, config):
        if sc.get('runAsUser') is not None:
            return sc['runAsUser'], sc.get('runAsGroup', 0)
        name, group = (config['user'].split(':', 1) + [''])[:2]
        if not name:
            return 0, sc.get('runAsGroup', 0)
        if name.isdigit():
            return int(name), int(group) if group.isdigit() else sc.get('runAsGroup', 0)
        raise ConfigError('image user %r is a name: the test node runs numeric users only' % name)

    def environment(self, spec, config):
        env = dict(item.split('=', 1) for item in config['env'] if '=' in item)
        env.setdefault('PATH', runtime.PATH)
        env['HOSTNAME'] = self.name
        env.update(self.services.environment(self.namespace))
        for source in spec.get('envFrom') or []:
            prefix = source.get('prefix', '')
            if 'configMapRef' in source:
                env.update({prefix + k: v for k, v in self.config_map(source['configMapRef']['name']).items()})
            elif 'secretRef' in source:
                env.update({prefix + k: v.decode() for k, v in self.secret(source['secretRef']['name']).items()})
        for item in spec.get('env') or []:
            if 'value' in item or 'valueFrom' not in item:
                env[item['name']] = expand(item.get('value', ''), env)
                continue
            ref = item['valueFrom']
            if 'fieldRef' in ref:
                env[item['name']] = self.field(ref['fieldRef']['fieldPath'])
            elif 'configMapKeyRef' in ref:
                env[item['name']] = key_of(self.config_map(ref['configMapKeyRef']['name']), ref['configMapKeyRef'],
                                           'ConfigMap', self.namespace)
            elif 'secretKeyRef' in ref:
                env[item['name']] = key_of(self.secret(ref['secretKeyRef']['name']), ref['secretKeyRef'],
                                           'Secret', self.namespace).decode()
        return env

    def field(self, path):
        meta = self.obj['metadata']
        fields = {'metadata.name': self.name, 'metadata.namespace': self.namespace, 'metadata.uid': self.uid,
                  'spec.nodeName': self.obj['spec'].get('nodeName', ''),
                  'spec.serviceAccountName': self.obj['spec'].get('serviceAccountName', ''),
                  'status.podIP': self.ip, 'status.hostIP': self.node_ip}
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return (meta.get(match.group(1)) or {}).get(match.group(2), '')
        if path not in fields:
            raise ConfigError('fieldRef %s is not supported by the test node' % path)
        return fields[path]

    def config_map(self, name):
        try:
            return self.core.read_namespaced_config_map(name, self.namespace, _request_timeout=10).data or {}
        except ApiException as err:
            raise ConfigError('configmap "%s" not found' % name) if err.status == 404 else err

    def secret(self, name):
        try:
            data = self.core.read_namespaced_secret(name, self.namespace, _request_timeout=10).data or {}
        except ApiException as err:
            raise ConfigError('secret "%s" not found' % name) if err.status == 404 else err
        return {k: base64.b64decode(v) for k, v in data.items()}

    # ------------------------------------------------------------------ volumes and files

    def mounts(self, spec):
        mounts = [{'path': '/etc/hosts', 'source': os.path.join(self.dir, 'hosts'), 'read_only': True},
                  {'path': '/etc/resolv.conf', 'source': os.path.join(self.dir, 'resolv.conf'), 'read_only': True}]
        for mount in spec.get('volumeMounts') or []:
            source, read_only = self.volume(mount['name'])
            if mount.get('subPath'):
                source = os.path.join(source, mount['subPath'])
            mounts.append({'path': mount['mountPath'], 'source': source,
                           'read_only': read_only or bool(mount.get('readOnly'))})
        return mounts

    def volume(self, name):
        """A volume's directory on the node (made the first time) and whether it is read-only."""
        if name in self.volumes:
            return self.volumes[name]
        spec = next((v for v in self.obj['spec'].get('volumes') or [] if v['name'] == name), None)
        if spec is None:
            raise ConfigError('volume %s is not in the pod' % name)
        path = os.path.join(self.dir, 'volumes', name)
        os.makedirs(path, exist_ok=True)
        if 'emptyDir' in spec:
            os.chmod(path, 0o777)
            made = (path, False)
        elif 'hostPath' in spec:
            made = (spec['hostPath']['path'], False)
        elif 'configMap' in spec or 'secret' in spec or 'projected' in spec:
            # A configMap or secret volume is a projected one of a single source.
            sources = spec['projected'].get('sources') or [] if 'projected' in spec else [
                {'configMap': spec['configMap']} if 'configMap' in spec else
                {'secret': dict(spec['secret'], name=spec['secret']['secretName'])}]
            for source in sources:
                self.project(path, source)
            made = (path, True)
        else:
            raise ConfigError('volume %s: its type (%s) is not supported by the test node'
                              % (name, ', '.join(k for k in spec if k != 'name')))
        self.volumes[name] = made
        return made

    def project(self, path, source):
        if 'serviceAccountToken' in source:
            wanted = source['serviceAccountToken']
            body = {'spec': {'expirationSeconds': wanted.get('expirationSeconds', 3607),
                             'boundObjectRef': {'apiVersion': 'v1', 'kind': 'Pod', 'name': self.name, 'uid': self.uid}}}
            if wanted.get('audience'):
                body['spec']['audiences'] = [wanted['audience']]
            account = self.obj['spec'].get('serviceAccountName') or 'default'
            token = self.core.create_namespaced_service_account_token(account, self.namespace, body, _request_timeout=10)
            self.write_files(path, {wanted['path']: token.status.token}, None)
        elif 'configMap' in source:
            self.write_files(path, self.config_map(source['configMap']['name']), source['configMap'].get('items'))
        elif 'secret' in source:
            self.write_files(path, self.secret(source['secret']['name']), source['secret'].get('items'))
        elif 'downwardAPI' in source:
            self.write_files(path, {item['path']: self.field(item['fieldRef']['fieldPath'])
                                    for item in source['downwardAPI'].get('items') or [] if 'fieldRef' in item}, None)

    @staticmethod
    def write_files(path, data, items):
        chosen = {i['key']: i['path'] for i in items} if items else {k: k for k in data}
        for key, relative in chosen.items():
            if key not in data:
                raise ConfigError('key %s not found' % key)
            target = os.path.join(path, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, 'wb') as out:
                value = data[key]
                out.write(value if isinstance(value, bytes) else value.encode())
            os.chmod(target, 0o644)

    def write_network_files(self, hosts):
        """/etc/hosts (the pod, then the Services' names) and /etc/resolv.conf; rewritten in
        place, so that running containers see a change."""
        text = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s' % (self.ip, self.name, hosts)
        resolv = 'search %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' % self.namespace
        for name, content in (('hosts', text), ('resolv.conf', resolv)):
            path = os.path.join(self.dir, name)
            with open(path, 'a+') as out:
                out.seek(0)
                if out.read() != content:
                    out.seek(0)
                    out.truncate()
                    out.write(content)

    # ------------------------------------------------------------------ probes

    def probe(self, attempt):
        spec = attempt.spec
        running_for = time.monotonic() - attempt.started
        if not spec.get('readinessProbe'):
            attempt.ready = True
        for kind in ('readinessProbe', 'livenessProbe'):
            probe = spec.get(kind)
            if not probe:
                continue
            state = attempt.probes.setdefault(kind, [probe.get('initialDelaySeconds', 0), 0, 0])
            if running_for < state[0]:
                continue
            state[0] = running_for + probe.get('periodSeconds', 10)
            which = kind[:-len('Probe')].capitalize()
            try:
                why = self.check(probe, spec)
                failure = None if why is None else '%s probe failed: %s' % (which, why)
            except ValueError as err:  # a port name the container does not declare
                failure = '%s probe errored and resulted in unknown state: %s' % (which, err)
            if failure:
                self.events.record(self, spec['name'], 'Warning', 'Unhealthy', failure)
            state[1], state[2] = (0, state[2] + 1) if failure else (state[1] + 1, 0)
            if kind == 'readinessProbe':
                if state[1] >= probe.get('successThreshold', 1):
                    attempt.ready = True
                elif state[2] >= probe.get('failureThreshold', 3):
                    attempt.ready = False
            elif state[2] >= probe.get('failureThreshold', 3):
                LOG.info('%s/%s %s: liveness probe failed %d times, restarting', self.namespace, self.name,
                         spec['name'], state[2])
                # A failed container restarts unless restartPolicy is Never.
                self.events.record(self, spec['name'], 'Normal', 'Killing', 'Container %s failed liveness probe%s' % (
                    spec['name'], ', will be restarted' if self.restarts(1) else ''))
                self.ended(attempt, grace=self.obj['spec'].get('terminationGracePeriodSeconds', 30))

    def check(self, probe, spec):
        """None when the probe succeeds, else why not, as the kubelet's prober says it. Raises
        ValueError for a port name the container does not declare."""
        timeout = probe.get('timeoutSeconds', 1)
        if 'httpGet' in probe:
            return self.http_check(probe['httpGet'], spec, timeout)
        if 'tcpSocket' in probe:
            host, port = probe['tcpSocket'].get('host') or self.ip, self.port(probe['tcpSocket']['port'], spec)
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as err:
                return dial_error(host, port, err)
            return None
        if 'exec' not in probe:
            return 'the test node runs httpGet, tcpSocket and exec probes only'
        command = probe['exec']['command']
        try:
            done = subprocess.run(runtime.RUNC + ['exec', self.containers[spec['name']].container.id] + command,
                                  capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return 'command timed out: %s timed out after %s' % (json.dumps(' '.join(command), ensure_ascii=False),
                                                                 go_duration(timeout))
        # A failed command's output, stdout then stderr, is all the kubelet says of it.
        return None if done.returncode == 0 else (done.stdout + done.stderr)[:EXEC_OUTPUT_MAX].decode(errors='replace')

    def http_check(self, get, spec, timeout):
        """None for an answer 200 to 399, else why not."""
        scheme, host, port = get.get('scheme', 'HTTP').lower(), get.get('host') or self.ip, self.port(get['port'], spec)
        failed = 'Get "%s://%s:%d%s": ' % (scheme, host, port, get.get('path', '/'))
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as err:
            return failed + (DEADLINE if isinstance(err, TimeoutError) else dial_error(host, port, err))
        local = '%s:%d' % sock.getsockname()[:2]
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = sock
        try:
            if scheme == 'https':
                connection.sock = UNVERIFIED.wrap_socket(sock, server_hostname=host)
            connection.request('GET', get.get('path', '/'), headers={h['name']: h['value'] for h in get.get('httpHeaders') or []})
            status = connection.getresponse().status
        except TimeoutError:
            return failed + DEADLINE
        except http.client.RemoteDisconnected:
            return failed + 'EOF'
        except ConnectionError as err:
            return failed + 'read tcp %s->%s:%d: read: %s' % (local, host, port, go_error(err))
        except (OSError, http.client.HTTPException) as err:  # TLS, an answer that is not HTTP
            return failed + str(err)
        finally:
            connection.close()
        return None if 200 <= status < 400 else 'HTTP probe failed with statuscode: %d' % status

    @staticmethod
    def port(port, spec):
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        named = {p.get('name'): p['containerPort'] for p in spec.get('ports') or []}
        if port not in named:
            raise ValueError("couldn't find port: %s" % port)
        return named[port]

    # ------------------------------------------------------------------ status

    def status(self):
        statuses = []
        for name, attempt in self.containers.items():
            container = attempt.container
            if attempt.waiting:
                state = {'waiting': {'reason': attempt.waiting[0], 'message': attempt.waiting[1]}}
            elif attempt.ended:
                state = {'terminated': attempt.ended}
            else:
                state = {'running': {'startedAt': container.started}}
            last = attempt.ended if attempt.waiting and attempt.ended else attempt.last
            status = {'name': name, 'image': attempt.spec['image'], 'imageID': attempt.image_id,
                      'ready': attempt.ready, 'restartCount': max(attempt.restarts, 0),
                      'started': 'running' in state, 'state': state,
                      'lastState': {'terminated': last} if last else {}}
            if container:
                status['containerID'] = 'runc://' + container.id
            statuses.append(status)
        ready = all(s['ready'] for s in statuses)
        running = any(s['started'] for s in statuses)
        finished = not running and all(a.ended and not self.restarts(a.ended['exitCode']) for a in self.containers.values())
        if finished:
            phase = 'Succeeded' if all(a.ended['exitCode'] == 0 for a in self.containers.values()) else 'Failed'
        else:
            phase = 'Running' if running or any(a.restarts >= 0 for a in self.containers.values()) else 'Pending'
        reason = None if ready else 'ContainersNotReady'
        conditions = [('PodReadyToStartContainers', 'True', None), ('Initialized', 'True', None),
                      ('ContainersReady', str(ready), reason), ('Ready', str(ready), reason), ('PodScheduled', 'True', None)]
        return {'phase': phase, 'hostIP': self.node_ip, 'hostIPs': [{'ip': self.node_ip}], 'podIP': self.ip,
                'podIPs': [{'ip': self.ip}], 'startTime': self.started_at, 'containerStatuses': statuses,
                'conditions': [{'type': t, 'status': s, 'reason': r} for t, s, r in conditions]}

    def report(self):
        """The status patched when it says something new; conditions keep their transition times."""
        status = self.status()
        if status == self.reported:
            return
        patch = json.loads(json.dumps(status))
        for condition in patch['conditions']:
            then = self.transitions.get(condition['type'])
            if not then or then[0] != condition['status']:
                then = self.transitions[condition['type']] = (condition['status'], runtime.now())
            condition['lastTransitionTime'] = then[1]
        try:
            self.core.patch_namespaced_pod_status(self.name, self.namespace, {'status': patch}, _request_timeout=10)
        except ApiException as err:
            if err.status not in (404, 409):
                raise  # retried next round: self.reported is unchanged
        self.reported = status

    # ------------------------------------------------------------------ logs

    def log_file(self, container, previous):
        """The log of the instance the kubelet would serve, or why there is none: with previous,
        the one in lastState; else the running or terminated one, or while waiting to restart the
        one in lastState (the crash's log)."""
        attempt = self.containers.get(container)
        if attempt is None:
            return None, 'container %s is not valid for pod %s' % (container, self.name)
        last = attempt.ended if attempt.waiting and attempt.ended else attempt.last
        if previous:
            chosen = last
        elif attempt.waiting is None:
            chosen = attempt.ended or {'containerID': 'runc://' + attempt.container.id}
        elif last:
            chosen = last
        else:
            return None, 'container "%s" in pod "%s" is waiting to start: %s' % (container, self.name, attempt.waiting[0])
        if chosen is None:
            return None, 'previous terminated container "%s" in pod "%s" not found' % (container, self.name)
        path = os.path.join(self.logs, container, '%s.log' % chosen['containerID'].rsplit('.', 1)[1])
        return (path, None) if os.path.exists(path) else (None, 'the log of %s is gone' % chosen['containerID'])

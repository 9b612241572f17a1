"""The test node's container runtime: what containerd and a CNI plugin do for a kubelet.

- Images come from the local Docker engine's store (where demo/rig.sh builds them): each image is
  exported once into a root filesystem under /var/lib/sre-k8s/images/<id>.
- A pod's sandbox is a network namespace of its own (`sre-pod-<uid>`) with one veth into the
  cluster's namespace (sre-k8s), which routes the pod's address to it: nothing of the pod is on the
  host's own network, and the host reaches pods through the cluster's routed range only.
- A container is run by runc (Docker's own OCI runtime) in the pod's network namespace, on an
  overlay over its image's root filesystem, with its CPU and memory limits in cgroups; its output
  goes to a log file in the CRI format (`<time> <stream> F <line>`), which the node serves.
"""

import ctypes
import datetime
import json
import os
import subprocess
import threading
import time

STATE = '/var/lib/sre-k8s'
RUN = '/run/sre-k8s'
IMAGES = os.path.join(STATE, 'images')
PODS = os.path.join(STATE, 'pods')
POD_LOGS = '/var/log/sre-k8s/pods'
RUNC = ['runc', '--root', os.path.join(RUN, 'runc')]
CLUSTER_NETNS = 'sre-k8s'
NETNS_PREFIX = 'sre-pod-'
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=check)


def stamp():
    """Now in RFC 3339 with nanoseconds, as CRI log lines carry it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f') + '000Z'


def now():
    """Now in RFC 3339 to the second, as the API keeps times."""
    return stamp()[:19] + 'Z'


def in_parallel(call, items):
    """call(item) for every item at once, back when all have returned."""
    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def in_netns(name, make):
    """make() called with this thread in the network namespace `name` (sockets it creates stay
    there), then back in the host's."""
    host = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    target = os.open('/run/netns/%s' % name, os.O_RDONLY)
    try:
        if LIBC.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), 'setns into %s' % name)
        try:
            return make()
        finally:
            LIBC.setns(host, CLONE_NEWNET)
    finally:
        os.close(host)
        os.close(target)


class ImageStore:
    """Images of the local Docker engine, as root filesystems."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def config(self, image):
        """The image's id and run configuration, or None when the engine does not hold it
        (remembered 10 s)."""
        seen = self.seen.get(image)
        if seen and time.monotonic() - seen[1] < 10:
            return seen[0]
        try:
            found = sh('docker', 'image', 'inspect', image, check=False)
            info = json.loads(found.stdout)[0] if found.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
            info = None
        config = None
        if info:
            cfg = info.get('Config') or {}
            config = {'id': info['Id'].split(':')[-1][:16], 'env': cfg.get('Env') or [],
                      'entrypoint': cfg.get('Entrypoint') or [], 'cmd': cfg.get('Cmd') or [],
                      'cwd': cfg.get('WorkingDir') or '/', 'user': cfg.get('User') or ''}
        self.seen[image] = (config, time.monotonic())
        return config

    def rootfs(self, image, config):
        """The image's root filesystem, exported from the engine the first time."""
        path = os.path.join(IMAGES, config['id'])
        if os.path.exists(os.path.join(path, '.complete')):
            return os.path.join(path, 'rootfs')
        with self.lock:
            if not os.path.exists(os.path.join(path, '.complete')):
                partial = path + '.partial'
                sh('rm', '-rf', partial)
                os.makedirs(os.path.join(partial, 'rootfs'))
                made = sh('docker', 'create', image).stdout.strip()
                export = subprocess.Popen(['docker', 'export', made], stdout=subprocess.PIPE)
                try:
                    untar = subprocess.run(['tar', '-x', '-C', os.path.join(partial, 'rootfs')],
                                           stdin=export.stdout, capture_output=True, timeout=300, check=False)
                    export.stdout.close()
                    if export.wait(timeout=60) != 0 or untar.returncode != 0:
                        raise RuntimeError('export of %s failed: %s' % (image, untar.stderr[-300:]))
                finally:
                    export.kill()
                    sh('docker', 'rm', made, check=False)
                open(os.path.join(partial, '.complete'), 'w').close()
                sh('rm', '-rf', path)
                os.rename(partial, path)
        return os.path.join(path, 'rootfs')


class Sandbox:
    """A pod's network namespace, its address routed to it from the cluster's namespace."""

    def __init__(self, uid, ip):
        self.netns = NETNS_PREFIX + uid[:8]
        self.veth = 'sp' + uid[:8]
        self.ip = ip

    def create(self):
        self.destroy()
        sh('ip', 'netns', 'add', self.netns)
        sh('ip', 'link', 'add', self.veth, 'netns', CLUSTER_NETNS, 'type', 'veth', 'peer', 'name', 'eth0',
           'netns', self.netns)
        pod = ('ip', '-n', self.netns)
        sh(*pod, 'link', 'set', 'lo', 'up')
        sh(*pod, 'addr', 'add', self.ip + '/32', 'dev', 'eth0')
        sh(*pod, 'link', 'set', 'eth0', 'up')
        sh(*pod, 'route', 'add', 'default', 'dev', 'eth0')
        node = ('ip', '-n', CLUSTER_NETNS)
        sh(*node, 'link', 'set', self.veth, 'up')
        # The node's side answers the pod's ARP for every address (the pod has a device route).
        sh('ip', 'netns', 'exec', CLUSTER_NETNS, 'sysctl', '-qw', 'net.ipv4.conf.%s.proxy_arp=1' % self.veth)
        sh(*node, 'route', 'replace', self.ip + '/32', 'dev', self.veth)

    def destroy(self):
        if os.path.exists('/run/netns/' + self.netns):
            sh('ip', 'netns', 'del', self.netns, check=False)  # the veth and its route go with it


class Container:
    """One attempt of a pod's container, run by runc (a restart is a new attempt, on a fresh
    writable layer, as under a kubelet)."""

    def __init__(self, pod_dir, runc_id, log_path):
        self.bundle = os.path.join(pod_dir, runc_id)
        self.id = runc_id
        self.log_path = log_path
        self.proc = None
        self.started = None

    def start(self, rootfs, spec, read_only):
        """spec: the OCI process, mounts and resources; read_only: the root filesystem's mode."""
        merged = os.path.join(self.bundle, 'rootfs')
        for part in ('upper', 'work', 'rootfs'):
            os.makedirs(os.path.join(self.bundle, part), exist_ok=True)
        if not os.path.ismount(merged):
            sh('mount', '-t', 'overlay', 'overlay', '-o', 'lowerdir=%s,upperdir=%s,workdir=%s' % (
                rootfs, os.path.join(self.bundle, 'upper'), os.path.join(self.bundle, 'work')), merged)
        with open(os.path.join(self.bundle, 'config.json'), 'w') as out:
            json.dump(oci_config(spec, read_only), out)
        sh(*RUNC, 'delete', '--force', self.id, check=False)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        # --keep: the ended container (and its cgroup, with its OOM count) stays until stop().
        self.proc = subprocess.Popen(RUNC + ['run', '--keep', '--bundle', self.bundle, self.id], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.started = now()
        log = open(self.log_path, 'a', buffering=1)  # pylint: disable=consider-using-with
        lock = threading.Lock()
        for stream, pipe in (('stdout', self.proc.stdout), ('stderr', self.proc.stderr)):
            threading.Thread(target=copy_log, args=(pipe, stream, log, lock), daemon=True).start()

    def exited(self):
        """The exit code once the container has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def oom_killed(self):
        """Whether the kernel's OOM killer struck in the container's memory cgroup (kept after
        the container ends, until stop())."""
        try:
            with open('/sys/fs/cgroup/memory/sre-k8s/%s/memory.oom_control' % self.id) as control:
                counts = dict(line.split() for line in control if len(line.split()) == 2)
        except OSError:
            return False
        return counts.get('oom_kill', '0') != '0'

    def signal(self, name):
        sh(*RUNC, 'kill', self.id, name, check=False)

    def stop(self, grace):
        """SIGTERM, then SIGKILL after `grace` seconds; the container deleted (its cgroup with
        it), the overlay unmounted. Safe to call again."""
        try:
            if self.exited() is None and self.proc is not None:
                self.signal('TERM')
                try:
                    self.proc.wait(timeout=max(grace, 0.1))
                except subprocess.TimeoutExpired:
                    self.signal('KILL')
                    self.proc.wait(timeout=30)
        finally:
            sh(*RUNC, 'delete', '--force', self.id, check=False)
            merged = os.path.join(self.bundle, 'rootfs')
            if os.path.ismount(merged):
                sh('umount', merged, check=False)
            sh('rm', '-rf', self.bundle, check=False)


def copy_log(pipe, stream, log, lock):
    """The container's output into its log file, a CRI line each (partial lines as full ones)."""
    for raw in iter(pipe.readline, b''):
        line = raw.decode('utf-8', 'replace').rstrip('\n')
        with lock:
            log.write('%s %s F %s\n' % (stamp(), stream, line))
    pipe.close()


def oci_config(spec, read_only):
    """An OCI runtime config (what `runc spec` writes, made to the pod's measure)."""
    caps = spec['capabilities']
    mounts = [
        {'destination': '/proc', 'type': 'proc', 'source': 'proc'},
        {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
        {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',
         'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']},
        {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm', 'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
        {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue', 'options': ['nosuid', 'noexec', 'nodev']},
        {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs', 'options': ['nosuid', 'noexec', 'nodev', 'ro']},
        {'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'nodev', 'mode=1777']},
    ] + [{'destination': m['path'], 'type': 'bind', 'source': m['source'],
          'options': ['rbind', 'ro' if m['read_only'] else 'rw']} for m in spec['mounts']]
    resources = {'devices': [{'allow': False, 'access': 'rwm'}]}
    if spec.get('memory'):
        resources['memory'] = {'limit': spec['memory']}
    if spec.get('cpu_quota'):
        resources['cpu'] = {'quota': spec['cpu_quota'], 'period': 100000}
    return {
        'ociVersion': '1.0.2',
        'process': {'terminal': False, 'user': {'uid': spec['uid'], 'gid': spec['gid'], 'additionalGids': spec['groups']},
                    'args': spec['args'], 'env': spec['env'], 'cwd': spec['cwd'],
                    'capabilities': {kind: caps for kind in ('bounding', 'effective', 'permitted')},
                    'noNewPrivileges': spec['no_new_privileges']},
        'root': {'path': 'rootfs', 'readonly': read_only},
        'hostname': spec['hostname'],
        'mounts': mounts,
        'linux': {'resources': resources, 'cgroupsPath': '/sre-k8s/%s' % spec['id'],
                  'namespaces': [{'type': 'pid'}, {'type': 'ipc'}, {'type': 'uts'}, {'type': 'mount'},
                                 {'type': 'network', 'path': '/run/netns/%s' % spec['netns']}],
                  'maskedPaths': ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
                  'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']},
    }


def clean_leftovers():
    """What an earlier agent left behind (killed, or the cluster stopped under it): runc
    containers, pod namespaces, overlays."""
    listed = sh(*RUNC, 'list', '--quiet', check=False).stdout.split()
    for runc_id in listed:
        sh(*RUNC, 'delete', '--force', runc_id, check=False)
    for name in os.listdir('/run/netns') if os.path.isdir('/run/netns') else []:
        if name.startswith(NETNS_PREFIX):
            sh('ip', 'netns', 'del', name, check=False)
    with open('/proc/self/mounts') as mounts:
        overlays = [line.split()[1] for line in mounts if line.split()[1].startswith(PODS + '/')]
    for path in sorted(overlays, reverse=True):
        sh('umount', '-l', path, check=False)
    sh('rm', '-rf', PODS, check=False)
    for controller in os.listdir('/sys/fs/cgroup'):
        top = '/sys/fs/cgroup/%s/sre-k8s' % controller
        if os.path.isdir(top):
            for below in sorted((os.path.join(walked[0], '') for walked in os.walk(top)), reverse=True):
                sh('rmdir', below, check=False)

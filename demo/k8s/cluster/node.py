"""The test cluster's node agent: the kubelet's part towards the API, for one Node.

It registers the Node (Ready, with capacity for the scheduler), and for every pod that the real
kube-scheduler binds to it, writes the status a kubelet would write: the pod runs when each of its
images is in the node's image store (the local Docker engine, where the rig builds its images), and
waits in ErrImagePull / ImagePullBackOff otherwise, as a kubelet with no reachable registry does.
Containers are not started (as kwok does it): readiness probes and logs are not served. A pod that
is being deleted is confirmed deleted at once (grace period 0): no container has to stop.

Pod IPs come from --pod-cidr, which cluster.sh routes into a network namespace of its own.

    node.py --kubeconfig FILE --node NAME --pod-cidr CIDR     run (until SIGTERM)
    node.py --kubeconfig FILE --node NAME --check             exit 0 when the Node is registered and
                                                              the default ServiceAccount exists
"""

import argparse
import datetime
import ipaddress
import logging
import subprocess
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

LOG = logging.getLogger('node')
# Says on the Node that its pods' containers do not run: suites that need served traffic look here.
RUNS_CONTAINERS = 'sre-runbooks.io/runs-containers'
PULL_MESSAGE = ('failed to pull image "%s": it is not in the node\'s image store and no registry can be '
                'reached from this machine')


TIME = '%Y-%m-%dT%H:%M:%SZ'


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIME)


def image_present(image, cache={}):  # pylint: disable=dangerous-default-value
    """Whether the local Docker engine holds the image (remembered for 10 s)."""
    seen = cache.get(image)
    if seen and time.monotonic() - seen[1] < 10:
        return seen[0]
    try:
        found = subprocess.run(['docker', 'image', 'inspect', image], capture_output=True, timeout=10,
                               check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        found = False
    cache[image] = (found, time.monotonic())
    return found


class Node:
    def __init__(self, api, name, pod_cidr):
        self.core = client.CoreV1Api(api)
        self.name = name
        self.selector = 'spec.nodeName=%s' % name
        hosts = [str(ip) for ip in ipaddress.ip_network(pod_cidr).hosts()]
        self.address, self.pool = hosts[0], hosts[1:]  # the node's own address in the same routed range
        self.taken = set()

    def register(self):
        body = {'metadata': {'name': self.name, 'labels': {'kubernetes.io/hostname': self.name,
                                                           'kubernetes.io/os': 'linux', RUNS_CONTAINERS: 'false'}}}
        try:
            self.core.create_node(body, _request_timeout=10)
        except ApiException as err:
            if err.status != 409:
                raise
            self.core.patch_node(self.name, body, _request_timeout=10)
        capacity = {'cpu': '8', 'memory': '16Gi', 'pods': '110', 'ephemeral-storage': '100Gi'}
        status = {'status': {
            'capacity': capacity, 'allocatable': capacity,
            'addresses': [{'type': 'InternalIP', 'address': self.address}, {'type': 'Hostname', 'address': self.name}],
            'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady',
                            'message': 'node agent of the test cluster is posting ready status',
                            'lastHeartbeatTime': now(), 'lastTransitionTime': now()}],
            'nodeInfo': {'kubeletVersion': 'v1.37.2', 'operatingSystem': 'linux', 'architecture': 'amd64',
                         'containerRuntimeVersion': 'docker://local', 'kernelVersion': '', 'osImage': '',
                         'kubeProxyVersion': '', 'machineID': '', 'systemUUID': '', 'bootID': ''}}}
        self.core.patch_node_status(self.name, status, _request_timeout=10)
        # The API server taints a new Node not-ready; the node lifecycle controller (not run here:
        # it would evict pods whose node sends no heartbeats) lifts it once the Node is Ready.
        self.core.patch_node(self.name, {'spec': {'taints': None}}, _request_timeout=10)

    def handle(self, pod):
        meta = pod.metadata
        if meta.deletion_timestamp:
            self.delete(pod)
            return
        missing = [c.image for c in pod.spec.containers if not image_present(c.image)]
        if up_to_date(pod, missing):
            return
        try:
            self.core.patch_namespaced_pod_status(meta.name, meta.namespace, {'status': self.status(pod, missing)},
                                                  _request_timeout=10)
            LOG.info('%s/%s: %s', meta.namespace, meta.name, 'running' if not missing else 'waiting for %s' % missing)
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    def status(self, pod, missing):
        """What a kubelet writes: a pod's IP once, a container's start and a condition's
        transition time when they change."""
        started = pod.status.start_time.strftime(TIME) if pod.status.start_time else now()
        ip = pod.status.pod_ip or self.allocate()
        previous = {s.name: s for s in pod.status.container_statuses or []}
        statuses = []
        for container in pod.spec.containers:
            absent = container.image in missing
            was = previous.get(container.name)
            if absent:
                waited = bool(was and was.state and was.state.waiting)
                state = {'waiting': {'reason': 'ImagePullBackOff' if waited else 'ErrImagePull',
                                     'message': PULL_MESSAGE % container.image}}
            else:
                running = was and was.state and was.state.running
                state = {'running': {'startedAt': running.started_at.strftime(TIME) if running else now()}}
            statuses.append({'name': container.name, 'image': container.image, 'imageID': '' if absent else
                             'docker://%s' % container.image, 'ready': not absent, 'restartCount': 0,
                             'started': not absent, 'state': state})
        ready = 'False' if missing else 'True'
        reason = 'ContainersNotReady' if missing else None
        before = {c.type: c for c in pod.status.conditions or []}
        conditions = []
        for kind, value in (('PodScheduled', 'True'), ('Initialized', 'True'), ('ContainersReady', ready), ('Ready', ready)):
            then = before.get(kind)
            since = then.last_transition_time.strftime(TIME) if then and then.status == value and then.last_transition_time else now()
            conditions.append({'type': kind, 'status': value, 'reason': reason if kind.endswith('Ready') else None,
                               'lastTransitionTime': since})
        return {'phase': 'Pending' if missing else 'Running', 'hostIP': self.address, 'podIP': ip,
                'podIPs': [{'ip': ip}], 'startTime': started, 'containerStatuses': statuses, 'conditions': conditions}

    def allocate(self):
        free = next((ip for ip in self.pool if ip not in self.taken), None)
        if free is None:
            raise RuntimeError('no pod address left in the node\'s range (%d in use)' % len(self.taken))
        self.taken.add(free)
        return free

    def delete(self, pod):
        meta = pod.metadata
        try:
            self.core.delete_namespaced_pod(meta.name, meta.namespace, _request_timeout=10, body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions={'uid': meta.uid}))
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    def run(self):
        self.register()
        while True:
            listed = self.core.list_pod_for_all_namespaces(field_selector=self.selector, _request_timeout=30)
            self.taken = {pod.status.pod_ip for pod in listed.items if pod.status.pod_ip}
            for pod in listed.items:
                self.handle(pod)
            stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces, field_selector=self.selector,
                                          resource_version=listed.metadata.resource_version, timeout_seconds=60,
                                          _request_timeout=(10, 90))
            try:
                for event in stream:
                    pod = event['object']
                    if event['type'] == 'DELETED':
                        self.taken.discard(pod.status.pod_ip)
                    elif event['type'] in ('ADDED', 'MODIFIED'):
                        self.handle(pod)
            except ApiException as err:
                if err.status != 410:  # an expired resourceVersion: list again
                    raise


def up_to_date(pod, missing):
    """Whether the pod's status says already what the node would write (a patch would only move its
    times): an IP, each container running and ready, or in ImagePullBackOff when its image is missing."""
    statuses = {s.name: s for s in pod.status.container_statuses or []}

    def said(container):
        state = statuses[container.name].state if container.name in statuses else None
        if container.image in missing:
            return bool(state and state.waiting and state.waiting.reason == 'ImagePullBackOff')
        return bool(state and state.running and statuses[container.name].ready)
    return bool(pod.status.pod_ip) and all(said(c) for c in pod.spec.containers)


def check(api, name):
    core = client.CoreV1Api(api)
    core.read_node(name, _request_timeout=5)
    core.read_namespaced_service_account('default', 'default', _request_timeout=5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kubeconfig', required=True)
    parser.add_argument('--node', required=True)
    parser.add_argument('--pod-cidr', default='10.244.0.0/24')
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    api = config.new_client_from_config(config_file=args.kubeconfig)
    if args.check:
        try:
            check(api, args.node)
        except ApiException as err:
            print('not yet: %s %s' % (err.status, err.reason), file=sys.stderr)
            return 1
        return 0
    while True:
        try:
            Node(api, args.node, args.pod_cidr).run()
        except Exception as err:  # pylint: disable=broad-except  # the API server restarting: start over
            LOG.warning('%s, starting over in 2 s', err)
            time.sleep(2)


if __name__ == '__main__':
    sys.exit(main())

"""The test cluster's node agent: the kubelet's part towards the API, for one Node.

It registers the Node (Ready, with capacity for the scheduler), and for every pod that the real
kube-scheduler binds to it, writes the status a kubelet would write: the pod runs when each of its
images is in the node's image store (the local Docker engine, where the rig builds its images), and
waits in ErrImagePull / ImagePullBackOff otherwise, as a kubelet with no reachable registry does.
Containers are not started (as kwok does it): readiness probes and logs are not served. A pod that
is being deleted is confirmed deleted, as the kubelet does after its grace period.

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


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


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
        hosts = ipaddress.ip_network(pod_cidr).hosts()
        self.address = str(next(hosts))  # the node's own, in the same routed range
        self.free = [str(ip) for ip in hosts]

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

    def pods(self):
        return self.core.list_pod_for_all_namespaces(field_selector='spec.nodeName=%s' % self.name,
                                                     _request_timeout=30)

    def handle(self, pod):
        meta, status = pod.metadata, pod.status
        if meta.deletion_timestamp:
            self.delete(pod)
            return
        if status.pod_ip and status.pod_ip in self.free:
            self.free.remove(status.pod_ip)
        missing = [c.image for c in pod.spec.containers if not image_present(c.image)]
        wanted = self.status(pod, missing)
        current = client.ApiClient().sanitize_for_serialization(status) or {}
        if all(current.get(key) == value for key, value in wanted.items() if key != 'conditions') \
                and _same_conditions(current.get('conditions'), wanted['conditions']):
            return
        try:
            self.core.patch_namespaced_pod_status(meta.name, meta.namespace, {'status': wanted}, _request_timeout=10)
            LOG.info('%s/%s: %s', meta.namespace, meta.name, 'running' if not missing else 'waiting for %s' % missing)
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    def status(self, pod, missing):
        started = pod.status.start_time and pod.status.start_time.strftime('%Y-%m-%dT%H:%M:%SZ') or now()
        ip = pod.status.pod_ip or (self.free.pop(0) if self.free else None)
        previous = {s.name: s for s in pod.status.container_statuses or []}
        statuses = []
        for container in pod.spec.containers:
            absent = container.image in missing
            if absent:
                was = previous.get(container.name)
                waited = bool(was and was.state and was.state.waiting)
                state = {'waiting': {'reason': 'ImagePullBackOff' if waited else 'ErrImagePull',
                                     'message': PULL_MESSAGE % container.image}}
            else:
                state = {'running': {'startedAt': started}}
            statuses.append({'name': container.name, 'image': container.image, 'imageID': '' if absent else
                             'docker://%s' % container.image, 'ready': not absent, 'restartCount': 0,
                             'started': not absent, 'state': state})
        ready = 'False' if missing else 'True'
        reason = None if not missing else 'ContainersNotReady'
        conditions = [{'type': 'PodScheduled', 'status': 'True'}, {'type': 'Initialized', 'status': 'True'},
                      {'type': 'ContainersReady', 'status': ready, 'reason': reason},
                      {'type': 'Ready', 'status': ready, 'reason': reason}]
        return {'phase': 'Pending' if missing else 'Running', 'hostIP': self.address, 'podIP': ip,
                'podIPs': [{'ip': ip}], 'startTime': started, 'containerStatuses': statuses,
                'conditions': [dict(c, lastTransitionTime=now()) for c in conditions]}

    def delete(self, pod):
        meta = pod.metadata
        try:
            self.core.delete_namespaced_pod(meta.name, meta.namespace, _request_timeout=10, body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions={'uid': meta.uid}))
        except ApiException as err:
            if err.status not in (404, 409):
                raise
        if pod.status.pod_ip:
            self.free.append(pod.status.pod_ip)

    def run(self):
        self.register()
        while True:
            listed = self.pods()
            for pod in listed.items:
                self.handle(pod)
            stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces,
                                          field_selector='spec.nodeName=%s' % self.name,
                                          resource_version=listed.metadata.resource_version, timeout_seconds=60)
            try:
                for event in stream:
                    if event['type'] in ('ADDED', 'MODIFIED'):
                        self.handle(event['object'])
            except ApiException as err:
                if err.status != 410:  # an expired resourceVersion: list again
                    raise


def _same_conditions(current, wanted):
    def key(items):
        return sorted((c.get('type'), c.get('status'), c.get('reason')) for c in items or [])
    return key(current) == key(wanted)


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

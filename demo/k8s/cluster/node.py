"""The test cluster's node agent: a kubelet for one Node, with runtime.py as its container runtime
and services.py as its kube-proxy.

It registers the Node (Ready, with capacity for the scheduler) and runs every pod that the real
kube-scheduler binds to it (pods.py): a network namespace with the pod's own address, its
containers run by runc from the local Docker engine's images (a missing image waits in
ErrImagePull / ImagePullBackOff, as under a kubelet with no reachable registry), probes, restarts,
and the status and Events a kubelet writes. A pod being deleted has its containers stopped within
its grace period, then is confirmed deleted. It serves the kubelet's log endpoint (`kubectl logs`,
through the API server) on the node's address, port 10250. Not served: exec, attach and
port-forward.

Pod IPs come from --pod-cidr, which cluster.sh routes into the cluster's network namespace.

    node.py --kubeconfig FILE --node NAME --pod-cidr CIDR --api-server HOST:PORT --tls-cert F --tls-key F
                                                              run (until SIGTERM)
    node.py --kubeconfig FILE --node NAME --check             exit 0 when the Node is registered and
                                                              the default ServiceAccount exists
"""

import argparse
import datetime
import http.server
import ipaddress
import logging
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

import pods
import runtime
import services

LOG = logging.getLogger('node')
KUBELET_PORT = 10250


class Node:
    def __init__(self, api, name, pod_cidr, api_server):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.name = name
        self.selector = 'spec.nodeName=%s' % name
        hosts = [str(ip) for ip in ipaddress.ip_network(pod_cidr).hosts()]
        self.address, self.pool = hosts[0], hosts[1:]  # the node's own address in the same routed range
        self.images = runtime.ImageStore()
        self.services = services.Services(api_server)
        self.events = pods.Recorder(self.core, name)
        self.pods = {}          # uid -> pods.Pod, running or being stopped
        self.deleting = set()   # uids whose deletion is under way
        self.reserved = set()   # the addresses the API says pods hold (after a restart of the agent)
        self.lock = threading.Lock()

    def register(self):
        body = {'metadata': {'name': self.name, 'labels': {'kubernetes.io/hostname': self.name,
                                                           'kubernetes.io/os': 'linux'}}}
        try:
            self.core.create_node(body, _request_timeout=10)
        except ApiException as err:
            if err.status != 409:
                raise
            self.core.patch_node(self.name, body, _request_timeout=10)
        capacity = {'cpu': str(os.cpu_count()), 'memory': '16Gi', 'pods': '110', 'ephemeral-storage': '100Gi'}
        version = client.VersionApi(self.api).get_code(_request_timeout=10).git_version
        status = {'status': {
            'capacity': capacity, 'allocatable': capacity,
            'addresses': [{'type': 'InternalIP', 'address': self.address}, {'type': 'Hostname', 'address': self.name}],
            'daemonEndpoints': {'kubeletEndpoint': {'Port': KUBELET_PORT}},
            'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady',
                            'message': 'node agent of the test cluster is posting ready status',
                            'lastHeartbeatTime': runtime.now(), 'lastTransitionTime': runtime.now()}],
            'nodeInfo': {'kubeletVersion': version, 'operatingSystem': 'linux', 'architecture': 'amd64',
                         'containerRuntimeVersion': 'runc://local', 'kernelVersion': os.uname().release,
                         'osImage': '', 'kubeProxyVersion': '', 'machineID': '', 'systemUUID': '', 'bootID': ''}}}
        self.core.patch_node_status(self.name, status, _request_timeout=10)
        # The API server taints a new Node not-ready; the node lifecycle controller (not run here:
        # it would evict pods whose node sends no heartbeats) lifts it once the Node is Ready.
        self.core.patch_node(self.name, {'spec': {'taints': None}}, _request_timeout=10)

    def handle(self, pod):
        meta = pod.metadata
        with self.lock:
            if meta.deletion_timestamp:
                if meta.uid not in self.deleting:
                    self.deleting.add(meta.uid)
                    threading.Thread(target=self.delete, args=(pod,), daemon=True).start()
                return
            if meta.uid in self.pods or pod.status.phase in ('Succeeded', 'Failed'):
                return
            taken = {p.ip for p in self.pods.values()}
            ip = pod.status.pod_ip if pod.status.pod_ip and pod.status.pod_ip not in taken else None
            ip = ip or next((i for i in self.pool if i not in taken and i not in self.reserved), None)
            if ip is None:
                LOG.warning('%s/%s: no pod address left in the node\'s range', meta.namespace, meta.name)
                return
            obj = self.api.sanitize_for_serialization(pod)
            worker = self.pods[meta.uid] = pods.Pod(self.core, obj, ip, self.address, self.images, self.services, self.events)
        threading.Thread(target=worker.run, daemon=True, name='pod-%s' % meta.name).start()
        LOG.info('%s/%s: starting at %s', meta.namespace, meta.name, ip)

    def delete(self, pod):
        """Containers stopped within the grace period, then the pod confirmed deleted; retried by
        the next event or list when it fails."""
        meta = pod.metadata
        try:
            self.forget(meta.uid, meta.deletion_grace_period_seconds)
            self.core.delete_namespaced_pod(meta.name, meta.namespace, _request_timeout=10, body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions={'uid': meta.uid}))
            LOG.info('%s/%s: deleted', meta.namespace, meta.name)
        except ApiException as err:
            if err.status not in (404, 409):
                LOG.warning('%s/%s: delete failed: %s', meta.namespace, meta.name, err)
        finally:
            with self.lock:
                self.deleting.discard(meta.uid)

    def forget(self, uid, grace=None):
        """The pod's containers and sandbox stopped, the pod no longer the node's."""
        with self.lock:
            running = self.pods.get(uid)
        if running:
            running.stop(30 if grace is None else grace)
        with self.lock:
            self.pods.pop(uid, None)

    def find(self, namespace, name):
        with self.lock:
            return next((p for p in self.pods.values() if (p.namespace, p.name) == (namespace, name)), None)

    def watch_services(self):
        """Services and EndpointSlices read every 2 s: the proxy's listeners and the pods' names."""
        while True:
            try:
                self.services.update(self.core.list_service_for_all_namespaces(_request_timeout=10).items,
                                     self.discovery.list_endpoint_slice_for_all_namespaces(_request_timeout=10).items)
                with self.lock:
                    running = [p for p in self.pods.values() if p.sandbox_ready.is_set() and not p.stopping.is_set()]
                for pod in running:
                    try:
                        pod.write_network_files(self.services.hosts(pod.namespace))
                    except OSError:
                        pass  # stopped meanwhile
            except Exception as err:  # pylint: disable=broad-except  # the API server restarting
                LOG.warning('services: %s', err)
            time.sleep(2)

    def run(self):
        self.register()
        while True:
            listed = self.core.list_pod_for_all_namespaces(field_selector=self.selector, _request_timeout=30)
            self.reserved = {pod.status.pod_ip for pod in listed.items if pod.status.pod_ip}
            with self.lock:
                gone = set(self.pods) - {pod.metadata.uid for pod in listed.items} - self.deleting
            for uid in gone:  # deleted with no grace while the watch was not looking
                threading.Thread(target=self.forget, args=(uid, 0), daemon=True).start()
            for pod in listed.items:
                self.handle(pod)
            stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces, field_selector=self.selector,
                                          resource_version=listed.metadata.resource_version, timeout_seconds=60,
                                          _request_timeout=(10, 90))
            try:
                for event in stream:
                    if event['type'] in ('ADDED', 'MODIFIED'):
                        self.handle(event['object'])
                    elif event['type'] == 'DELETED':  # a forced deletion: no grace, no confirmation asked
                        threading.Thread(target=self.forget, args=(event['object'].metadata.uid, 0), daemon=True).start()
            except ApiException as err:
                if err.status != 410:  # an expired resourceVersion: list again
                    raise

    def stop_all(self):
        with self.lock:
            running = list(self.pods.values())
        runtime.in_parallel(lambda pod: pod.stop(2), running)


class KubeletAPI(http.server.BaseHTTPRequestHandler):
    """The kubelet's /containerLogs endpoint, which the API server calls for `kubectl logs`."""
    node = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        LOG.debug(format, *args)

    def do_GET(self):  # pylint: disable=invalid-name
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip('/').split('/')
        if url.path == '/healthz':
            return self.answer(200, 'ok')
        if len(parts) != 4 or parts[0] != 'containerLogs':
            return self.answer(404, '404 page not found')
        pod = self.node.find(parts[1], parts[2])
        if pod is None:
            return self.answer(404, 'pod %s/%s not found on node %s' % (parts[1], parts[2], self.node.name))
        previous = query.get('previous') == 'true'
        path, why = pod.log_file(parts[3], previous)
        if path is None:
            return self.answer(400, why)
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        attempt = pod.containers[parts[3]]
        follow = query.get('follow') == 'true' and attempt.waiting is None and not previous
        try:
            for chunk in log_lines(path, query, follow, lambda: attempt.container.exited() is not None):
                self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        return None

    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def log_lines(path, query, follow, ended):
    """The lines of a CRI log file, as the kubelet serves them: sinceSeconds/sinceTime, tailLines,
    timestamps, limitBytes; with follow, new lines until the container ends."""
    since = None
    if query.get('sinceSeconds'):
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=int(query['sinceSeconds']))
    elif query.get('sinceTime'):
        since = datetime.datetime.fromisoformat(query['sinceTime'].replace('Z', '+00:00'))
    stamps = query.get('timestamps') == 'true'
    budget = int(query['limitBytes']) if query.get('limitBytes') else None

    def shaped(lines):
        for line in lines:
            at, _stream, _tag, text = (line.split(' ', 3) + ['', '', ''])[:4]
            if since and datetime.datetime.fromisoformat(at[:26] + '+00:00') < since:
                continue
            yield ('%s %s' % (at, text) if stamps else text).encode() + b'\n'

    with open(path, encoding='utf-8', errors='replace') as log:
        lines = log.read().splitlines()
        if query.get('tailLines'):
            lines = lines[-int(query['tailLines']):] if int(query['tailLines']) > 0 else []
        chunks = list(shaped(lines))
        while True:
            for chunk in chunks:
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                if chunk:
                    yield chunk
                if budget is not None and budget <= 0:
                    return
            if not follow:
                return
            over = ended()
            time.sleep(0.5)
            chunks = list(shaped(log.read().splitlines()))
            if over and not chunks:  # the last lines written before the end are read
                return


def serve_kubelet_api(node, cert, key):
    KubeletAPI.node = node
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = runtime.in_netns(runtime.CLUSTER_NETNS, lambda: http.server.ThreadingHTTPServer(
        (node.address, KUBELET_PORT), KubeletAPI, bind_and_activate=True))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def check(api, name):
    core = client.CoreV1Api(api)
    core.read_node(name, _request_timeout=5)
    core.read_namespaced_service_account('default', 'default', _request_timeout=5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kubeconfig', required=True)
    parser.add_argument('--node', required=True)
    parser.add_argument('--pod-cidr', default='10.244.0.0/24')
    parser.add_argument('--api-server', help='HOST:PORT of the API server, for the kubernetes Service')
    parser.add_argument('--tls-cert', help='the kubelet endpoint\'s certificate')
    parser.add_argument('--tls-key')
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
    host, port = args.api_server.rsplit(':', 1)
    runtime.clean_leftovers()
    node = Node(api, args.node, args.pod_cidr, (host, int(port)))

    def stop_then_exit():
        node.stop_all()
        os._exit(0)  # pylint: disable=protected-access  # the watch threads block in reads

    def stop(*_args):  # not on the main thread's stack, which may hold the node's lock
        threading.Thread(target=stop_then_exit).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serve_kubelet_api(node, args.tls_cert, args.tls_key)
    threading.Thread(target=node.watch_services, daemon=True).start()
    while True:
        try:
            node.run()
        except Exception as err:  # pylint: disable=broad-except  # the API server restarting: start over
            LOG.warning('%s, starting over in 2 s', err)
            time.sleep(2)


if __name__ == '__main__':
    sys.exit(main())

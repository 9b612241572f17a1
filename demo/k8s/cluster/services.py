"""The test node's Services: what kube-proxy (in its original userspace mode) and cluster DNS give
pods.

- Every Service's cluster IP and port is a listener in the cluster's network namespace (sre-k8s
  holds the whole routed range as local addresses), relaying each connection to a ready endpoint
  of its EndpointSlices, in turn. The `kubernetes` Service relays to the API server.
- Names: instead of a DNS server, each pod's /etc/hosts carries the Services' names and cluster IPs
  (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`), kept current while the pod runs.
- Environment: the `<NAME>_SERVICE_HOST` / `_PORT` variables of the Services of a pod's namespace.
"""

import itertools
import logging
import select
import socket
import threading

import runtime

LOG = logging.getLogger('node')


def relay(client, address):
    """Bytes both ways between `client` and a new connection to `address`, half-closes kept."""
    try:
        upstream = socket.create_connection(address, timeout=5)
    except OSError as err:
        LOG.info('service connection to %s:%s failed: %s', address[0], address[1], err)
        client.close()
        return
    upstream.settimeout(None)
    peers = {client: upstream, upstream: client}
    open_reads = [client, upstream]
    try:
        while open_reads:
            readable = select.select(open_reads, [], [], 600)[0]
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if data:
                    peers[sock].sendall(data)
                else:
                    open_reads.remove(sock)
                    peers[sock].shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()


class Listener:
    """One cluster IP and port: accepts in the cluster's namespace, relays from the host's."""

    def __init__(self, ip, port):
        self.backends = []
        self.turn = itertools.count()
        self.sock = runtime.in_netns(runtime.CLUSTER_NETNS, lambda: self.listen(ip, port))
        threading.Thread(target=self.accept, daemon=True).start()

    @staticmethod
    def listen(ip, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(128)
        return sock

    def accept(self):
        while True:
            try:
                client = self.sock.accept()[0]
            except OSError:
                return  # closed
            backends = list(self.backends)
            if not backends:
                client.close()  # no ready endpoint: refused, as kube-proxy rejects
                continue
            backend = backends[next(self.turn) % len(backends)]
            threading.Thread(target=relay, args=(client, backend), daemon=True).start()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the other thread
        except OSError:
            pass
        self.sock.close()


class Services:
    """The Services and their ready endpoints, read every two seconds by the node."""

    def __init__(self, api_server):
        self.api_server = api_server       # (host, port) of the API server, for `kubernetes`
        self.listeners = {}                # (ip, port) -> Listener
        self.names = {}                    # namespace -> [(name, ip, ports)]
        self.lock = threading.Lock()

    def update(self, services, slices):
        """services: V1Service list; slices: V1EndpointSlice list (discovery/v1)."""
        ready = {}
        for item in slices:
            owner = (item.metadata.labels or {}).get('kubernetes.io/service-name')
            for port in item.ports or []:
                for endpoint in item.endpoints or []:
                    if endpoint.conditions and endpoint.conditions.ready is False:
                        continue
                    for address in endpoint.addresses:
                        ready.setdefault((item.metadata.namespace, owner, port.name or ''), []).append((address, port.port))
        wanted, names = {}, {}
        for svc in services:
            ip = svc.spec.cluster_ip
            if not ip or ip == 'None':
                continue
            ports = svc.spec.ports or []
            names.setdefault(svc.metadata.namespace, []).append((svc.metadata.name, ip, ports))
            for port in ports:
                if (port.protocol or 'TCP') != 'TCP':
                    continue
                if (svc.metadata.namespace, svc.metadata.name) == ('default', 'kubernetes'):
                    backends = [self.api_server]
                else:
                    backends = ready.get((svc.metadata.namespace, svc.metadata.name, port.name or ''), [])
                wanted[(ip, port.port)] = sorted(backends)
        with self.lock:
            for key in set(self.listeners) - set(wanted):
                self.listeners.pop(key).close()
            for key, backends in wanted.items():
                if key not in self.listeners:
                    try:
                        self.listeners[key] = Listener(*key)
                    except OSError as err:
                        LOG.warning('cannot listen on %s:%s for a Service: %s', key[0], key[1], err)
                        continue
                self.listeners[key].backends = backends
            self.names = names

    def hosts(self, namespace):
        """/etc/hosts lines for a pod of `namespace`: its Services by their short names too."""
        lines = []
        with self.lock:
            for ns, services in sorted(self.names.items()):
                for name, ip, _ports in services:
                    short = [name, '%s.%s' % (name, ns)] if ns == namespace else ['%s.%s' % (name, ns)]
                    lines.append('%s\t%s\n' % (ip, ' '.join(short + ['%s.%s.svc' % (name, ns), '%s.%s.svc.cluster.local' % (name, ns)])))
        return ''.join(lines)

    def environment(self, namespace):
        """The *_SERVICE_HOST / *_SERVICE_PORT variables a kubelet gives a pod of `namespace`."""
        env = {}
        with self.lock:
            chosen = self.names.get(namespace, []) + [s for s in self.names.get('default', []) if s[0] == 'kubernetes']
        for name, ip, ports in chosen:
            if not ports:
                continue
            prefix = name.upper().replace('-', '_')
            env[prefix + '_SERVICE_HOST'] = ip
            env[prefix + '_SERVICE_PORT'] = str(ports[0].port)
            for port in ports:
                if port.name:
                    env['%s_SERVICE_PORT_%s' % (prefix, port.name.upper().replace('-', '_'))] = str(port.port)
        return env

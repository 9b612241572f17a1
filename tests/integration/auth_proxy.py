"""An authenticating reverse proxy in front of the rig's real Prometheus, on loopback, as
production Prometheus usually sits: HTTPS with a certificate of a CA made here (openssl), a bearer
token or basic auth, and a tenant header (X-Scope-OrgID, as Mimir and Cortex ask). A request
without them is answered 401 as such proxies and Mimir do; the rest go to Prometheus unchanged.
It counts what it let through and what it refused."""

import base64
import http.server
import ssl
import subprocess
import threading
import urllib.error
import urllib.request

PROMETHEUS = 'http://127.0.0.1:9090'
HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade',
              'proxy-authorization', 'proxy-authenticate', 'host', 'content-length'}


def make_ca_and_cert(directory):
    """(ca.pem, cert.pem, key.pem): a CA and a server certificate for 127.0.0.1 it signed."""
    d = str(directory)

    def openssl(*args):
        subprocess.run(['openssl'] + list(args), check=True, capture_output=True, timeout=60)

    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sre-runbooks test CA',
            '-keyout', d + '/ca.key', '-out', d + '/ca.pem')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
            '-keyout', d + '/key.pem', '-out', d + '/server.csr')
    with open(d + '/san.cnf', 'w') as ext:
        ext.write('subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
    openssl('x509', '-req', '-in', d + '/server.csr', '-CA', d + '/ca.pem', '-CAkey', d + '/ca.key',
            '-CAcreateserial', '-days', '2', '-extfile', d + '/san.cnf', '-out', d + '/cert.pem')
    return d + '/ca.pem', d + '/cert.pem', d + '/key.pem'


class AuthProxy:
    def __init__(self, directory, token=None, username=None, password=None, tenant=None):
        self.ca, cert, key = make_ca_and_cert(directory)
        self.expected = 'Bearer %s' % token if token else 'Basic %s' % base64.b64encode(
            ('%s:%s' % (username, password)).encode()).decode()
        self.tenant = tenant
        self.passed, self.refused = 0, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else None
                if self.headers.get('Authorization') != proxy.expected:
                    return proxy.refuse(self, 'Unauthorized', {'WWW-Authenticate': 'Bearer realm="prometheus"'})
                if proxy.tenant and self.headers.get('X-Scope-OrgID') != proxy.tenant:
                    return proxy.refuse(self, 'no org id', {})
                proxy.passed += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
                           and k.lower() != 'authorization'}
                request = urllib.request.Request(PROMETHEUS + self.path, data=body, method=self.command,
                                                 headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, rheaders, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as err:
                    status, rheaders, data = err.code, err.headers, err.read()
                self.send_response(status)
                for k, v in rheaders.items():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = 'https://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def refuse(self, handler, text, headers):
        self.refused += 1
        data = text.encode() + b'\n'
        handler.send_response(401)
        for k, v in dict(headers, **{'Content-Type': 'text/plain; charset=utf-8'}).items():
            handler.send_header(k, v)
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

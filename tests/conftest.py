"""Shared test plumbing: the collection on sys.path, module runs, and a local HTTP server.

Modules run as Ansible runs them: a child Python process given an args file; nothing is mocked.
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / '.collections'
sys.path.insert(0, str(COLLECTIONS))


# The rig's modules that open on a bad deploy wait for 100 s of the gateway's good version
# (demo/rig.sh wait-baseline) after the module before them recreated it. The modules that need
# nothing of the rig (servers and clusters of their own) run in between, while that fills.
BASELINE_MODULES = ('test_rig_communication', 'test_rig_evidence', 'test_rig_mitigation', 'test_rig_triage')
STANDALONE_MODULES = (
    'test_api_errors', 'test_api_standin', 'test_diagnose_module', 'test_error_rate_prometheus', 'test_grafana_annotation',
    'test_in_process_playbook', 'test_incident_report_module', 'test_k8s_observe_modules',
    'test_k8s_rollout_module', 'test_k8s_workload_factors', 'test_k8s_workload_module', 'test_latency_prometheus', 'test_latency_watch',
    'test_pagerduty_event', 'test_postgres_modules', 'test_recent_changes_git', 'test_remediation_lock', 'test_slack_notify',
    'test_slo_history', 'test_statuspage_incident', 'test_trace_search')


def pytest_collection_modifyitems(items):
    """The standalone modules shared out before the modules that wait for a baseline; the others
    keep their order."""
    modules = {}
    for item in items:
        modules.setdefault(item.module.__name__, []).append(item)
    waiting = [name for name in modules if name in BASELINE_MODULES]
    spare = [name for name in modules if name in STANDALONE_MODULES]
    if not waiting or not spare:
        return
    before = {name: spare[index::len(waiting)] for index, name in enumerate(waiting)}
    order = []
    for name in modules:
        if name not in STANDALONE_MODULES:
            order += before.get(name, []) + [name]
    items[:] = [item for name in order for item in modules[name]]


def run_module(name, args, check_mode=False):
    """Runs sre.runbooks.<name> with args; returns its JSON result (failed results included)."""
    payload = dict(args)
    if check_mode:
        payload['_ansible_check_mode'] = True
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.sre.runbooks.plugins.modules.' + name],
        input=json.dumps({'ANSIBLE_MODULE_ARGS': payload}), capture_output=True, text=True,
        env=env, timeout=120, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module %s printed no JSON: stdout=%r stderr=%r'
                             % (name, proc.stdout[-2000:], proc.stderr[-2000:]))
    # A module's own traceback lands on stderr or under 'exception' (logs read may hold others).
    assert 'Traceback' not in proc.stderr and 'exception' not in result, proc.stderr
    return result


class Route:
    """A canned answer: status, headers, body (bytes or JSON-able), optional delay."""

    def __init__(self, status=200, body=b'', headers=None, delay=0.0):
        self.status, self.body, self.headers, self.delay = status, body, headers or {}, delay


class LocalServer:
    """A small HTTP server on 127.0.0.1 whose answers each test sets; it records every request."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                server.requests.append({'method': self.command, 'path': self.path,
                                        'headers': {k.lower(): v for k, v in self.headers.items()}, 'body': body})
                route = server.routes.get((self.command, self.path.split('?')[0])) \
                    or server.routes.get(self.path.split('?')[0]) or Route(404, b'not found')
                if callable(route):
                    route = route(self)
                if route.delay:
                    threading.Event().wait(route.delay)
                data = route.body
                headers = dict(route.headers)
                if not isinstance(data, bytes):
                    data = json.dumps(data).encode()
                    headers.setdefault('Content-Type', 'application/json')
                self.send_response(route.status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()

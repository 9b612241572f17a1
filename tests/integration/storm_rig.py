"""A storm of twenty services failing through one dependency, for the storm's playbook test and the
fleet bench: a real Prometheus (the Debian package) over a TSDB backfilled with promtool, API
stand-ins of its own (demo/lib/api_standin.py, which answer as Slack's, PagerDuty's and
Statuspage's APIs document), and the services' health and readiness URLs on a small local server
(the services answer, and say that payments does not; payments answers 503).

From T-30m to T+20m (T: when the storm is made), at 5 s steps:
- svc-00 .. svc-19: 10 req/s of 200; from T-5m, 3 req/s of 503 besides; each depends on payments;
- payments: 20 req/s of 200; from T-6m, 10 req/s of 500 besides;
- orders: 10 req/s of 200 and, from T-5m, 2 req/s of 500; it depends on ledger, which is healthy
  (10 req/s of 200);
- quiet: 0.02 req/s, all 500 (too little to judge);
- billing and invoices: labelled app= and code= (other label names): 8 req/s of 200 each, and
  from T-5m 4 req/s of 503 besides; shop, 8 req/s of 200.
"""

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from promtsdb import MINUTE, Backfilled, counter_lines, document, last_step

ROOT = Path(__file__).resolve().parents[2]
FLEET = ['svc-%02d' % i for i in range(20)]
AHEAD = 20 * MINUTE


def series(end):
    def since(minutes, rate):
        return lambda t: rate if t >= end - minutes * MINUTE else 0.0

    def steady(rate):
        return lambda t: rate

    lines = []
    for name in FLEET:
        lines += [({'service': name, 'status': '200'}, steady(10.0)), ({'service': name, 'status': '503'}, since(5, 3.0))]
    return lines + [
        ({'service': 'payments', 'status': '200'}, steady(20.0)), ({'service': 'payments', 'status': '500'}, since(6, 10.0)),
        ({'service': 'orders', 'status': '200'}, steady(10.0)), ({'service': 'orders', 'status': '500'}, since(5, 2.0)),
        ({'service': 'ledger', 'status': '200'}, steady(10.0)),
        ({'service': 'quiet', 'status': '500'}, steady(0.02)),
        ({'app': 'billing', 'code': '200'}, steady(8.0)), ({'app': 'billing', 'code': '503'}, since(5, 4.0)),
        ({'app': 'invoices', 'code': '200'}, steady(8.0)), ({'app': 'invoices', 'code': '503'}, since(5, 4.0)),
        ({'app': 'shop', 'code': '200'}, steady(8.0)),
    ]


def backfilled(directory):
    """The Prometheus of the storm; .end is T. Its series go on as they are for AHEAD more (the
    samples of a time to come count once it comes), so that runs minutes later see the same."""
    end = last_step()
    server = Backfilled(directory, document(counter_lines(series(end), end - 30 * MINUTE, end + AHEAD)))
    server.end = end
    return server


class Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  # pylint: disable=invalid-name
        status, body = {'/health': (200, {'status': 'ok'}),
                        '/ready': (200, {'dependencies': {'payments': 'down'}}),
                        '/payments/health': (503, {'status': 'down'})}.get(self.path, (404, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


class Storm:
    """The storm's parts, started in DIRECTORY; inventory(services) writes an inventory of them
    beside the demo's channels (inventories/compose), pointed at these parts (OVERRIDES: other
    variables)."""

    def __init__(self, directory):
        self.root = Path(directory)
        self.prometheus = backfilled(self.root)
        self.channels = subprocess.Popen([sys.executable, str(ROOT / 'demo' / 'lib' / 'api_standin.py'), '--port', '0',
                                          '--log', os.devnull], stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.standin = re.search(r'http://127\.0\.0\.1:\d+', self.channels.stdout.readline()).group(0)
        self.health = ThreadingHTTPServer(('127.0.0.1', 0), Health)
        threading.Thread(target=self.health.serve_forever, daemon=True).start()

    def inventory(self, services, name='inventory', **overrides):
        base = 'http://127.0.0.1:%d' % self.health.server_address[1]
        variables = yaml.safe_load((ROOT / 'inventories' / 'compose' / 'group_vars' / 'all.yml').read_text())
        standin = self.standin
        variables.update(
            runbook_prometheus_url=self.prometheus.url, runbook_state_dir=str(self.root / name / 'state'),
            triage_window='2m', triage_baseline_offset='10m', triage_lookback='15m', triage_group_by='',
            triage_base_url=base, triage_compose_project='sre-storm', investigate_compose_project='sre-storm',
            investigate_dependencies=[{'name': 'payments', 'url': base + '/payments/health'}],
            communicate_report_dir=str(self.root / name / 'incidents'),
            communicate_slack_api_url=standin + '/slack/api', communicate_pagerduty_events_url=standin + '/pagerduty/events',
            communicate_pagerduty_api_url=standin + '/pagerduty/api', communicate_statuspage_api_url=standin + '/statuspage/v1')
        variables.update(overrides)
        inventory = self.root / name
        (inventory / 'group_vars').mkdir(parents=True)
        (inventory / 'group_vars' / 'all.yml').write_text(yaml.safe_dump(variables))
        (inventory / 'hosts.yml').write_text(yaml.safe_dump({'services': {'hosts': {
            service: {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}
            for service in services}}}))
        return inventory

    def journal(self):
        with urllib.request.urlopen(self.standin + '/journal', timeout=10) as answer:
            return json.load(answer)

    def stop(self):
        self.health.shutdown()
        self.channels.terminate()
        self.channels.wait(10)
        self.prometheus.stop()

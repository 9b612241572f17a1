"""The bad-input catalogue: what a new user gets wrong, one case each, and the one error line that
answers it. Each case runs the module (or playbook) as Ansible runs it and asserts: it failed; its
message is one line that matches the case's, naming what was wrong (and, but for Ansible's own
type checks, what to check); no traceback (conftest.run_module); nothing written.

docs/reliability.md lists CASES; it is rendered from them (python tests/integration/test_bad_input.py
> docs/reliability.md), and test_the_catalogue_is_the_one_documented keeps the two the same.

The endpoints are small local servers answering as the vendors' documented APIs answer (Slack's
{ok: false, error}, PagerDuty's 400, Statuspage's 401, Prometheus's error envelope), a TLS server
of a private CA, and the rig's real Prometheus and Docker engine where the case is theirs.
"""

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]  # tests/, for conftest when run as a script
from auth_proxy import AuthProxy  # noqa: E402
from conftest import ROOT, LocalServer, Route, run_module  # noqa: E402
from rig import ENV  # noqa: E402
from test_rig_faults import FAULTS  # noqa: E402
from test_rig_mitigation import gateway  # noqa: E402

HINT = re.compile(r'\b(check|give|set|use|drop|run|move|is this|raise|need|must)\b')


@dataclass
class Case:
    id: str
    what: str              # what the user did
    module: str            # a module, or 'playbook:<path>' (then args are extra vars)
    args: dict
    says: str              # a regular expression the one error line matches
    hint: bool = True      # the line says what to check (Ansible's own type checks do not)
    routes: dict = field(default_factory=dict)


GARBAGE_PROMQL = {'status': 'error', 'errorType': 'bad_data', 'error': '1:5: parse error: unexpected end of input'}
LOGIN_PAGE = b'<html><head><title>Company SSO - Sign in</title></head><body><form>...</form></body></html>'
HTML = {'Content-Type': 'text/html; charset=utf-8'}
EMPTY_VECTOR = {'status': 'success', 'data': {'resultType': 'vector', 'result': []}}
HUGE_VECTOR = {'status': 'success', 'data': {'resultType': 'vector', 'result': [
    {'metric': {'__name__': 'http_requests_total', 'pod': 'pod-%d' % i}, 'value': [1796511278.0, '1']} for i in range(2000)]}}

CASES = [
    # -- URLs ---------------------------------------------------------------------------------
    Case('url-wrong-port', 'Prometheus URL with a port nothing listens on', 'prometheus_query_info',
         {'url': '{closed}', 'query': 'up'},
         r'cannot reach Prometheus at http://127\.0\.0\.1:\d+/api/v1/query: .*Connection refused .*check the URL and that the server is up'),
    Case('url-wrong-path', 'Prometheus URL with a wrong path prefix (HTTP 404)', 'prometheus_query_info',
         {'url': '{server}/prom', 'query': 'up'},
         r'Prometheus at .*/prom/api/v1/query answered HTTP 404: .*check the URL and its path prefix'),
    Case('url-web-page', 'Grafana or a UI page instead of the API (HTML)', 'prometheus_query_info',
         {'url': '{server}/ui', 'query': 'up'},
         r'answered HTTP 200 with text/html, not JSON \("Company SSO - Sign in"\): this looks like a web page, not the API',
         routes={'/ui/api/v1/query': Route(200, LOGIN_PAGE, HTML)}),
    Case('url-login-redirect', 'A URL that redirects to a login page', 'prometheus_query_info',
         {'url': '{server}/sso', 'query': 'up'},
         r'answered HTTP 200 after a redirect to http://127\.0\.0\.1:\d+/login with text/html.*login page',
         routes={'/sso/api/v1/query': Route(302, b'', {'Location': '/login'}), '/login': Route(200, LOGIN_PAGE, HTML)}),
    Case('url-no-scheme', 'A URL without http:// or https://', 'prometheus_query_info',
         {'url': 'prometheus:9090', 'query': 'up'},
         r"Prometheus: url 'prometheus:9090' is not an http:// or https:// URL: give its scheme, e\.g\. http://prometheus:9090"),
    Case('tls-unknown-ca', 'HTTPS with a certificate of a CA the controller does not trust', 'prometheus_query_info',
         {'url': '{tls}', 'query': 'up', 'bearer_token': 'x' * 24, 'retries': 0},
         r'cannot reach Prometheus at https://127\.0\.0\.1:\d+/api/v1/query: .*CERTIFICATE_VERIFY_FAILED.*check the URL'),
    Case('tls-ca-not-a-ca', 'ca_path naming a file that holds no certificate', 'prometheus_query_info',
         {'url': '{tls}', 'query': 'up', 'ca_path': '{tmp}/not-a-ca.pem', 'retries': 0},
         r'cannot reach Prometheus at https://.*: .*check the URL and that the server is up'),
    Case('slow-answer', 'A Prometheus that answers slower than the timeout', 'prometheus_query_info',
         {'url': '{server}/slow', 'query': 'up', 'timeout': 0.5, 'retries': 0},
         r'Prometheus at .*/slow/api/v1/query did not answer within 0\.5s: check that it is up and not overloaded, or raise timeout',
         routes={'/slow/api/v1/query': Route(200, EMPTY_VECTOR, delay=3)}),
    Case('credentials-refused', 'A token Prometheus (or its proxy) refuses (HTTP 401)', 'prometheus_query_info',
         {'url': '{server}/auth', 'query': 'up', 'bearer_token': 'expired-token-0123456789'},
         r'refused the request with HTTP 401: check the credentials \(bearer_token or username/password\)',
         routes={'/auth/api/v1/query': Route(401, b'Unauthorized', {'WWW-Authenticate': 'Bearer'})}),
    Case('credentials-both', 'A bearer token and a username together', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'bearer_token': 'token-0123456789', 'username': 'ops', 'password': 'pw-0123456789'},
         r'Prometheus: bearer_token and username are mutually exclusive: give a bearer token or a username and password'),
    Case('credentials-half', 'A username without its password', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'username': 'ops'},
         r'Prometheus: username and password go together: give both \(basic auth\) or neither'),
    # -- PromQL and results ---------------------------------------------------------------------
    Case('promql-syntax', 'A PromQL query with a syntax error', 'prometheus_query_info',
         {'url': '{server}/bad', 'query': 'sum('},
         r'Prometheus at .*/bad/api/v1/query rejected the query with bad_data \(HTTP 400\): 1:5: parse error.*Query: sum\(',
         hint=False, routes={'/bad/api/v1/query': Route(400, GARBAGE_PROMQL)}),
    Case('result-huge', 'A query that forgot its aggregation (2000 series)', 'prometheus_query_info',
         {'url': '{server}/huge', 'query': 'http_requests_total'},
         r'the query returned 2000 series, more than max_series \(500\): aggregate it .*or raise max_series',
         routes={'/huge/api/v1/query': Route(200, HUGE_VECTOR)}),
    Case('label-matches-nothing', 'status_label naming a label the metric does not have', 'error_rate_info',
         {'url': 'http://127.0.0.1:9090', 'service': 'inference-gateway', 'status_label': 'code', 'window': '30s',
          'baseline_offset': '60s', 'lookback': '5m'},
         r"status_label 'code' matches nothing: .*set status_label to one of them"),
    Case('unknown-service', 'A service Prometheus has no series of (an empty result)', 'error_rate_info',
         {'url': 'http://127.0.0.1:9090', 'service': 'no-such-service', 'window': '30s', 'baseline_offset': '60s',
          'lookback': '5m'},
         r"no series of http_requests_total match service='no-such-service' in the last 5m: check the service name"),
    Case('service-with-quote', 'A service name with a quote in it', 'error_rate_info',
         {'url': 'http://127.0.0.1:9090', 'service': 'gateway" or vector(1) #', 'window': '30s', 'baseline_offset': '60s',
          'lookback': '5m'},
         r"no series of http_requests_total match service='gateway\" or vector\(1\) #' in the last 5m: check the service name"),
    # -- option types ---------------------------------------------------------------------------
    Case('type-duration', 'A duration that is not one', 'error_rate_info',
         {'url': '{server}', 'service': 'x', 'window': 'five'},
         r"invalid option: 'five' is not a duration: use a number of seconds or units"),
    Case('type-float', 'A number option given a word', 'error_rate_info',
         {'url': '{server}', 'service': 'x', 'warning_percent': 'high'},
         r"argument 'warning_percent' is of type str and we were unable to convert to float", hint=False),
    Case('type-int', 'An integer option given a word', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'retries': 'many'},
         r"argument 'retries' is of type str and we were unable to convert to int", hint=False),
    Case('type-bool', 'A boolean option given neither yes nor no', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'validate_certs': 'maybe'},
         r"argument 'validate_certs' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean",
         hint=False),
    Case('type-dict', 'A mapping option given a plain string', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'headers': 'X-Scope-OrgID team-ml'},
         r"argument 'headers' is of type str and we were unable to convert to dict", hint=False),
    Case('type-list', 'A list of mappings given a string', 'slack_notify',
         {'token': 'xoxb-0123456789', 'channel': 'C0INCIDENT', 'blocks': 'a section', 'api_url': '{server}/slack'},
         r"blocks.*unable to convert to dict", hint=False),
    Case('type-choice', 'A value outside an option\'s choices', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'type': 'sideways'},
         r'value of type must be one of: instant, range, got: sideways', hint=False),
    Case('option-typo', 'A misspelt option', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'timout': 5},
         r'Unsupported parameters for .* module: timout\. Supported parameters include: .*timeout', hint=False),
    Case('option-missing', 'A required option left out', 'error_rate_info',
         {'url': '{server}'},
         r'missing required arguments: service', hint=False),
    Case('thresholds-inverted', 'A warning threshold above the critical one', 'error_rate_info',
         {'url': '{server}', 'service': 'x', 'warning_percent': 10, 'critical_percent': 5},
         r'invalid thresholds'),
    Case('lookback-short', 'A lookback shorter than three windows', 'error_rate_info',
         {'url': '{server}', 'service': 'x', 'window': '5m', 'lookback': '10m'},
         r'lookback \(10m\) must be at least three windows \(5m\)'),
    Case('time-not-a-time', 'A range start that is not a time', 'prometheus_query_info',
         {'url': '{server}', 'query': 'up', 'type': 'range', 'start': 'yesterday'},
         r"invalid option: 'yesterday' is not a time"),
    # -- names and state ------------------------------------------------------------------------
    Case('name-with-slash', 'A service name with a slash (it names state files)', 'incident_registry',
         {'service': 'payments/api', 'run_id': 'r1', 'state_dir': '{tmp}/state'},
         r"service 'payments/api' cannot name a file: use letters, digits"),
    Case('name-unicode', 'A service name in another script', 'incident_registry',
         {'service': 'paiements-é', 'run_id': 'r1', 'state_dir': '{tmp}/state'},
         r"service 'paiements-é' cannot name a file: use letters, digits"),
    Case('lock-ttl-zero', 'A remediation lock that never lasts', 'remediation_lock',
         {'service': 'inference-gateway', 'run_id': 'r1', 'incident_id': 'i1', 'ttl': '0', 'state_dir': '{tmp}/state'},
         r'ttl must be positive and max_actions at least 1', hint=False),
    Case('ledger-corrupt', 'A ledger file cut in half (a full disk, an editor)', 'remediation_lock',
         {'service': 'corrupt', 'run_id': 'r1', 'incident_id': 'i1', 'state_dir': '{corrupt}'},
         r'cannot read the guardrail state of corrupt: .*is not valid JSON.*move it aside'),
    Case('document-dir-is-a-file', 'An incident document directory that is a file', 'incident_report',
         {'incident': {'id': 'inc-1', 'service': 'svc', 'started_at': '2026-12-05T10:00:00Z', 'outcome': 'advised'},
          'directory': '{tmp}/a-file'},
         r'(cannot write|not a directory|Not a directory)'),
    # -- Kubernetes configuration ---------------------------------------------------------------
    Case('kubeconfig-missing', 'A kubeconfig path that does not exist', 'k8s_status_info',
         {'name': 'web', 'namespace': 'default', 'kubeconfig': '{tmp}/no-such-kubeconfig'},
         r'cannot load kubeconfig .*no-such-kubeconfig.*check the file exists, is readable, and names that context'),
    Case('kubeconfig-no-context', 'A kubeconfig without the context named', 'k8s_status_info',
         {'name': 'web', 'namespace': 'default', 'kubeconfig': '{kubeconfig}', 'context': 'prod'},
         r'cannot load kubeconfig .*context prod.*names that context'),
    Case('k8s-in-cluster-outside', 'in_cluster outside a pod', 'k8s_status_info',
         {'name': 'web', 'namespace': 'default', 'in_cluster': True},
         r'in_cluster works only in a pod with a service account token'),
    Case('k8s-host-and-kubeconfig', 'An API server URL and a kubeconfig together', 'k8s_status_info',
         {'name': 'web', 'namespace': 'default', 'host': 'https://127.0.0.1:6443', 'kubeconfig': '{kubeconfig}',
          'context': 'ctx'},
         r'host \(https://127\.0\.0\.1:6443\) and api_key replace the kubeconfig: drop kubeconfig and context'),
    Case('k8s-token-without-host', 'A bearer token without the API server it is for', 'k8s_status_info',
         {'name': 'web', 'namespace': 'default', 'api_key': 'sa-token-0123456789'},
         r'api_key is the bearer token for host: set host too'),
    # -- Docker -------------------------------------------------------------------------------
    Case('docker-socket-missing', 'A docker_host socket that does not exist', 'compose_service_info',
         {'service': 'inference-gateway', 'docker_host': 'unix://{tmp}/docker.sock'},
         r'cannot reach Docker Engine .*No such file or directory.*is the Docker engine running on unix://'),
    Case('image-not-here', 'A rollback to an image the docker host does not have', 'compose_service',
         {'service': 'inference-gateway', 'project': 'sre-demo', 'state': 'rolled_back',
          'image': 'sre-demo/inference-gateway:v9.9.9', 'state_dir': '{tmp}/state'},
         r'image sre-demo/inference-gateway:v9\.9\.9 is not on this host .*check `docker images`'),
    Case('compose-service-unknown', 'A service that is in no compose project on the host', 'compose_service_info',
         {'service': 'no-such-service'},
         r"no container of compose service 'no-such-service' on this host .*: give project"),
    # -- channels -------------------------------------------------------------------------------
    Case('slack-token-refused', 'A Slack token Slack does not accept', 'slack_notify',
         {'token': 'xoxb-revoked-0123456789', 'channel': 'C0INCIDENT', 'text': 'hi', 'api_url': '{server}/slack', 'retries': 0},
         r'Slack refused chat\.postMessage with invalid_auth: Slack does not accept the token: check token',
         routes={'/slack/chat.postMessage': Route(200, {'ok': False, 'error': 'invalid_auth'})}),
    Case('slack-channel-unknown', 'A Slack channel the app cannot see', 'slack_notify',
         {'token': 'xoxb-valid-0123456789', 'channel': 'C0PRIVATE', 'text': 'hi', 'api_url': '{server}/slack2', 'retries': 0},
         r'Slack refused chat\.postMessage with channel_not_found: Slack knows no channel C0PRIVATE that the token can see',
         routes={'/slack2/chat.postMessage': Route(200, {'ok': False, 'error': 'channel_not_found'})}),
    Case('pagerduty-key-invalid', 'A PagerDuty routing key of the wrong shape', 'pagerduty_event',
         {'routing_key': 'not-a-routing-key', 'event_action': 'trigger', 'summary': 's', 'source': 'x',
          'severity': 'critical', 'events_url': '{server}/pd', 'retries': 0},
         r"PagerDuty Events API \(/v2/enqueue\) refused the event as invalid event \(HTTP 400\).*check routing_key",
         routes={'/pd/v2/enqueue': Route(400, {'status': 'invalid event', 'message': 'Event object is invalid',
                                               'errors': ["'routing_key' is invalid"]})}),
    Case('statuspage-key-refused', 'A Statuspage API key Statuspage refuses', 'statuspage_incident',
         {'api_key': 'revoked-key-0123456789', 'page_id': 'p1', 'name': 'High error rate', 'status': 'investigating',
          'api_url': '{server}/sp', 'retries': 0},
         r'Statuspage answered HTTP 401 to GET .*/sp/pages/p1/incidents/unresolved: Could not authenticate: check api_key',
         routes={'/sp/pages/p1/incidents/unresolved': Route(401, {'error': 'Could not authenticate'})}),
    # -- playbooks ------------------------------------------------------------------------------
    Case('playbook-unknown-service', 'A service that is not a host of the inventory', 'playbook:playbooks/triage.yml',
         {'service': 'no-such-service'},
         r'Unknown service no-such-service in this inventory; known services: inference-gateway, orders', hint=False),
    Case('playbook-no-service', 'No -e service at all', 'playbook:playbooks/high_error_rate.yml', {},
         r'Say which service: -e service=<name>; known services: inference-gateway, orders', hint=False),
    Case('playbook-no-database', 'The Database Issues runbook on a service whose database the inventory does not name',
         'playbook:playbooks/database_issues.yml', {'service': 'inference-gateway'},
         r'inference-gateway has no database in this inventory: set runbook_database \(host, port, database, user, '
         r'password\) in its host_vars'),
]

# Bad input whose case lives with its parts (a real cluster, a container's log, the EDA source):
# (what was wrong, module, where it is tested), listed in docs/reliability.md with the rest.
ELSEWHERE = [
    ('A namespace that does not exist', 'k8s_status_info, k8s_rollout, k8s_workload',
     'test_k8s_real_cluster_failures.py::test_a_namespace_that_does_not_exist_is_named_and_nothing_is_made'),
    ('A service account the RBAC grants nothing', 'k8s_status_info, k8s_rollout, k8s_workload',
     'test_k8s_real_cluster_failures.py::test_rbac_forbidden_names_the_account_and_the_permission'),
    ('Log lines that are not UTF-8 (read, each bad byte a U+FFFD)', 'log_search_info',
     'test_log_search.py::test_docker_log_lines_that_are_not_utf8_are_read_with_replacement_characters'),
    ('A database that refuses the password, a port nothing listens on, a database that does not exist',
     'postgres_activity_info, postgres_session', 'test_postgres_modules.py::test_bad_input_fails_in_one_line_that_says_what_to_check'),
    ('More database sessions match than max_sessions allows (nothing is done)', 'postgres_session',
     'test_postgres_modules.py::test_max_sessions_refuses_and_changes_nothing_then_explicit_pids'),
    ('An Alertmanager payload that is no notification, a webhook without its token (400, 401, logged)',
     'sre.runbooks.alertmanager', 'test_eda.py::test_the_source_asks_for_its_token_and_logs_every_refusal'),
]
# A fault whose case lives with the real cluster: listed with FAULTS.
FAULTS_ELSEWHERE = [
    ('The Kubernetes API server out of reach during the investigation', 'logs, resources and dependencies named '
     'missing; the rollback not taken on what is left',
     'test_k8s_real_cluster_playbook.py::test_the_api_server_lost_mid_run_costs_its_evidence_and_no_action_is_taken'),
]


@pytest.fixture(scope='module')
def places(tmp_path_factory):
    """What the cases' {placeholders} name: a local server with every case's routes, a TLS server
    of a private CA, a closed port, a scratch directory with a corrupt ledger and a file where a
    directory should be, a kubeconfig with one context."""
    tmp = tmp_path_factory.mktemp('bad-input')
    server = LocalServer()
    for case in CASES:
        server.routes.update(case.routes)
    tls = AuthProxy(tmp, token='x' * 24)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        closed = 'http://127.0.0.1:%d' % sock.getsockname()[1]
    (tmp / 'not-a-ca.pem').write_text('this is not a certificate\n')
    (tmp / 'a-file').write_text('')
    corrupt = tmp / 'corrupt'
    (corrupt / 'actions').mkdir(parents=True)
    (corrupt / 'actions' / 'corrupt.json').write_text('[{"name": "rollback", "at": 17')
    (tmp / 'kubeconfig').write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'ctx',
        'clusters': [{'name': 'c', 'cluster': {'server': 'https://127.0.0.1:6443'}}],
        'users': [{'name': 'u', 'user': {'token': 't' * 24}}],
        'contexts': [{'name': 'ctx', 'context': {'cluster': 'c', 'user': 'u'}}]}))
    names = {'server': server.url, 'tls': tls.url, 'closed': closed, 'tmp': str(tmp), 'corrupt': str(corrupt),
             'kubeconfig': str(tmp / 'kubeconfig')}
    yield names
    server.close()
    tls.close()


def filled(value, names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: filled(v, names) for k, v in value.items()}
    return value


def files_under(path):
    """The files under path, but the empty .guard files that serialize the state's writers."""
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob('*') if p.is_file() and p.suffix != '.guard')


def playbook_message(output):
    """The failed task's msg as the YAML result format prints it, its wrapped lines joined."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        found = re.match(r'(\s*)(?:"msg": "(.*)"|msg: (.*))$', line)
        if found:
            indent, text = len(found.group(1)), found.group(2) or found.group(3)
            for more in lines[index + 1:]:
                if len(more) - len(more.lstrip()) <= indent or not more.strip():
                    break
                text += ' ' + more.strip()
            return text.strip("'")
    return output


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_error_line(case, places):
    args = filled(case.args, places)
    before = files_under(places['tmp'])
    running = gateway() if case.module == 'compose_service' else None
    if case.module.startswith('playbook:'):
        command = [str(Path(sys.executable).parent / 'ansible-playbook'), case.module.split(':', 1)[1],
                   '-i', 'inventories/compose'] + [a for k, v in args.items() for a in ('-e', '%s=%s' % (k, v))]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0 and 'Traceback' not in output, output
        message = playbook_message(output)
    else:
        result = run_module(case.module, args)
        assert result.get('failed') is True, result
        message = result['msg']
    assert '\n' not in message.strip(), message
    assert re.search(case.says, message), message
    assert not case.hint or HINT.search(message), 'no "what to check" in: %s' % message
    assert files_under(places['tmp']) == before, 'the case wrote something'
    if running is not None:
        assert gateway() == running


def render():
    """docs/reliability.md: the catalogue and the faults, one row per case."""
    rows = ['| %s | `%s` | `%s` |' % (c.what, c.module.replace('playbook:', ''), c.id) for c in CASES]
    rows += ['| %s | `%s` | `%s` |' % case for case in ELSEWHERE]
    faults = ['| %s | %s | `%s` |' % (what, end, case) for case, what, end in FAULTS]
    faults += ['| %s | %s | `%s` |' % case for case in FAULTS_ELSEWHERE]
    return DOC % {'count': len(CASES) + len(ELSEWHERE), 'rows': '\n'.join(rows), 'faults': '\n'.join(faults)}


DOC = """# Reliability

## Bad input

What a new user gets wrong, and what the collection answers: one error line that names what was
wrong and what to check, no traceback, nothing written or changed. Each row is a case of
`tests/integration/test_bad_input.py`, which asserts the line, or of the test it names, where the
case's parts live; this page is rendered from those cases (`python tests/integration/test_bad_input.py > docs/reliability.md`) and a test keeps the two
the same. %(count)d cases.

| What was wrong | Module or playbook | Case |
|---|---|---|
%(rows)s

## Faults mid-run

The runbook's own sources die while it runs. Each row is a case of
`tests/integration/test_rig_faults.py`, on the real rig, through the whole playbook: Prometheus
and the Docker engine stopped and started again (`demo/rig.sh stop|start`), the API stand-ins made
to fail as each vendor documents its errors, tmpfs mounts read-only or full, signals to the run.
Every case ends with no action on evidence that was lost, nothing claimed resolved that was not
measured, the incident document written, the lock released or expiring, and a final line that
says what happened, but for the signals: there ansible-core's own last line is all (on SIGTERM
none; after either signal it sometimes hangs in its own clean-up, and a second signal, or the kill
that AWX sends after its cancel, ends it without a word).

| Fault | What the run does | Case |
|---|---|---|
%(faults)s

Two controllers that reach the docker host over SSH and take an expired lock at once: exactly one
wins, each of several rounds (`test_two_controllers_over_ssh_race_for_an_expired_lock_and_one_wins`;
many local takers in `tests/unit/test_remediation_lock_race.py`). The lock is read, decided and
written under an flock on the host.

## The ansible-core it claims

`meta/runtime.yml` claims ansible-core 2.19.14 and later: the one tested (`requirements.txt`, the
execution environment), the newest for Python 3.11. The modules that run in the controller's process
take a few ansible-core internals; where one is missing, they run as processes instead, with one
warning (`tests/unit/test_in_process.py` removes each).
"""


@pytest.mark.parametrize('where', [case[-1] for case in ELSEWHERE + FAULTS_ELSEWHERE])
def test_the_cases_tested_elsewhere_are(where):
    path, name = where.split('::')
    assert 'def %s(' % name in (ROOT / 'tests' / 'integration' / path).read_text()


def test_the_catalogue_is_the_one_documented():
    assert (ROOT / 'docs' / 'reliability.md').read_text() == render(), \
        'docs/reliability.md is not the catalogue: python tests/integration/test_bad_input.py > docs/reliability.md'


if __name__ == '__main__':
    print(render(), end='')

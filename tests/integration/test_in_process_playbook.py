"""The observe modules, and the acting ones over an HTTP API, in the controller process: a task on
a local connection runs in ansible-playbook's own process (plugins/action, plugin_utils/in_process.py)
and must return what the module returns when it runs as a process, failures included, without
leaking a no_log value.

Every module that has an action plugin runs here, a success and a failure each at least, in one
playbook run twice at once, each run in a working directory of its own: on the local connection as
it is (in the controller process), and with a play `environment`, which runs_in_process() refuses,
so that every task runs its module as a process (AnsiballZ), as on any other host. The two results
of each task, as registered and as shown at -vvv (with the invocation), must be equal but for the
values that must differ (VARIES: the time of the run, a latency), and so must the warnings shown
and the state files written. Nothing is imported from the plugins: the test goes through
ansible-playbook only.

Three differences this test found are held by tests of their own: the stats of the file at a
result's `path` (AnsibleModule's add_path_info), the invocation of arguments that validation
refuses, and the class a refusal names (`str`, not ansible-core's tagged string).

The APIs behind them answer as their vendors document (in_process_fakes.py): the Prometheus HTTP
API, Slack's Web API, PagerDuty's Events API v2 and REST API v2, Atlassian Statuspage, Loki and
Elasticsearch, Jaeger's query API, a health endpoint and the Kubernetes API (fake_k8s.py); the rig
is not used.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import COLLECTIONS, ROOT
from fake_k8s import TOKEN as K8S_TOKEN
from in_process_fakes import AT, COMPONENT, GRAFANA_TOKEN, K8S_NS, PAGE, PD_INCIDENT, PD_TOKEN, ROUTING_KEY, SP_KEY, TOKEN, fake_kubernetes, fake_server
from test_api_errors import free_port
from test_incident_report_module import INCIDENT

SECRETS = (TOKEN, ROUTING_KEY, PD_TOKEN, SP_KEY, GRAFANA_TOKEN, K8S_TOKEN)
# A play environment makes every task of the play run its module as a process.
MODES = {'in_process': {}, 'process': {'SRE_RUNBOOKS_TEST_RUN': 'module process'}}
ACTIONS = sorted(p.stem for p in (ROOT / 'plugins' / 'action').glob('*.py') if p.stem != '__init__')

DEPLOYED = {'triage': {
    'error_rate': {'verdict': 'critical', 'shape': 'spike', 'onset': 100.0, 'window_seconds': 30},
    'health': {'all_ok': True}, 'changes': [{
        'kind': 'deploy', 'time': 90.0, 'time_iso': '1970-01-01T00:01:30Z', 'seconds_before_onset': 10.0,
        'image': 'gw:v2', 'previous_image': 'gw:v1', 'summary': 'image gw:v1 -> gw:v2'}]}}


def cases(url, down, k8s):
    """(task name, module, args, task keywords): each runs in both playbook runs. The state
    files are under state/, relative to the working directory of each run."""
    rate = {'url': url, 'service': 'inference-gateway', 'at': '%d' % AT, 'bearer_token': TOKEN}
    slack = {'token': TOKEN, 'channel': 'C0INCIDENT', 'api_url': url + '/slack', 'retries': 0}
    cluster = {'host': k8s, 'api_key': K8S_TOKEN, 'validate_certs': False, 'request_timeout': 5}
    watch = {'url': url + '/watch', 'service': 'inference-gateway', 'window': '1m', 'interval': '1s',
             'stable_for': '0s', 'deadline': '2s', 'retries': 0, 'password': TOKEN, 'username': 'ops'}
    budget = {'url': url + '/slo', 'service': 'inference-gateway', 'bearer_token': TOKEN, 'retries': 0,
              'incident_start': '2026-11-23T14:50:00Z', 'incident_end': '2026-11-23T15:10:00Z'}
    logs = {'backend': 'loki', 'url': url, 'service': 'inference-gateway', 'since': '1795443720',
            'until': '1795443840', 'password': TOKEN, 'username': 'ops'}
    traces = {'url': url + '/jaeger', 'service': 'inference-gateway', 'bearer_token': TOKEN, 'retries': 0}
    resources = {'source': 'prometheus', 'url': url + '/cadvisor', 'service': 'inference-gateway',
                 'bearer_token': TOKEN}
    registry = {'service': 'inference-gateway', 'run_id': 'run-1', 'incident': INCIDENT,
                'alert': 'fp-1', 'state_dir': 'state/registry'}
    report = {'incident': INCIDENT, 'directory': 'state/incidents', 'follow_ups': ['Add a canary'],
              'postmortem': {'organizer': 'On-call <oncall@example.com>'}}
    pd_rest = {'api_token': PD_TOKEN, 'from_email': 'oncall@example.com', 'incident_id': PD_INCIDENT,
               'incident_status': 'acknowledged', 'api_url': url + '/pagerduty', 'retries': 0}
    status_page = {'api_key': SP_KEY, 'page_id': PAGE, 'api_url': url + '/statuspage', 'retries': 0,
                   'name': 'Elevated error rates on the ML inference API', 'status': 'investigating',
                   'body': 'We are investigating.', 'components': {COMPONENT: 'partial_outage'}}
    preflight = {'url': url, 'service': 'inference-gateway', 'bearer_token': TOKEN, 'retries': 0,
                 'rules': ['slo:availability:ratio_rate30d'],
                 'slack': {'token': TOKEN, 'channel': 'C0INCIDENT', 'api_url': url + '/slack'},
                 'pagerduty': {'routing_key': ROUTING_KEY, 'escalation_routing_key': ROUTING_KEY,
                               'api_token': PD_TOKEN, 'api_url': url + '/pagerduty',
                               'from_email': 'oncall@example.com'},
                 'statuspage': {'api_key': SP_KEY, 'page_id': PAGE, 'component_id': COMPONENT,
                                'api_url': url + '/statuspage'}}
    annotation = {'url': url + '/grafana', 'token': GRAFANA_TOKEN, 'time': '2026-11-23T15:00:00Z', 'retries': 0,
                  'tags': ['sre.runbooks', 'service:inference-gateway', 'rollback'], 'text': 'Rolled back to v1.2.2'}
    latency = {'url': url + '/latency', 'service': 'inference-gateway', 'at': '%d' % AT, 'bearer_token': TOKEN,
               'target_seconds': 0.5, 'retries': 0}
    check = {'check_mode': True}
    return [
        ('error_rate', 'error_rate_info', rate, {}),
        ('error_rate_bad_value', 'error_rate_info', dict(rate, window='often'), {}),
        ('error_rate_bad_type', 'error_rate_info', dict(rate, warning_percent='lots'), {}),
        ('error_rate_missing', 'error_rate_info', {'url': url}, {}),
        ('error_rate_unknown', 'error_rate_info', dict(rate, bogus=1), {}),
        ('error_rate_unreachable', 'error_rate_info', dict(rate, url=down, timeout=1, retries=0), {}),
        ('latency', 'latency_info', latency, {}),
        ('latency_check', 'latency_info', dict(latency, quantiles=[0.5, 0.99]), check),
        ('latency_bad_factor', 'latency_info', dict(latency, slow_factor=0), {}),
        ('latency_unreachable', 'latency_info', dict(latency, url=down, timeout=1), {}),
        ('error_rate_watch', 'error_rate_watch_info', watch, {}),
        ('error_rate_watch_bad_options', 'error_rate_watch_info', dict(watch, deadline='1s', stable_for='5s'), {}),
        ('slo_budget', 'slo_budget_info', budget, {}),
        ('slo_budget_wrong_service', 'slo_budget_info', dict(budget, service='inference-gatway'), {}),
        ('prometheus_query', 'prometheus_query_info', {'url': url, 'query': 'up', 'time': '%d' % AT,
                                                       'username': 'ops', 'password': TOKEN}, {}),
        ('prometheus_query_bad_promql', 'prometheus_query_info', {'url': url, 'query': 'sum(rate(up[5m])',
                                                                  'bearer_token': TOKEN}, {}),
        ('resource_usage', 'resource_usage_info', resources, {}),
        ('resource_usage_bad_promql', 'resource_usage_info', dict(resources, memory_query='max(up'), {}),
        ('service_health', 'service_health_info', {'checks': [
            {'name': 'health', 'url': url + '/health', 'query': 'dependencies'},
            {'name': 'down', 'url': down + '/health', 'timeout': 1}]}, {}),
        ('service_health_bad_url', 'service_health_info', {'checks': [{'url': 'ftp://x'}]}, {}),
        ('log_search', 'log_search_info', logs, {}),
        ('log_search_no_index', 'log_search_info', dict(logs, backend='elasticsearch', url=url + '/es',
                                                        index='logs-missing', retries=0), {}),
        ('trace_search', 'trace_search_info', traces, {}),
        ('trace_search_partial', 'trace_search_info', dict(traces, url=url + '/jaeger-partial'), {}),
        ('trace_search_storage_error', 'trace_search_info', dict(traces, url=url + '/jaeger-broken'), {}),
        ('k8s_status', 'k8s_status_info', dict(cluster, name='backend', namespace=K8S_NS, tail=5), {}),
        ('k8s_status_not_found', 'k8s_status_info', dict(cluster, name='nope', namespace=K8S_NS), {}),
        ('crash_loop_watch', 'crash_loop_watch_info', dict(cluster, platform='kubernetes', name='backend', namespace=K8S_NS,
                                                           stable_for='1s', deadline='1s', interval='1s'), {}),
        ('crash_loop_watch_not_found', 'crash_loop_watch_info', dict(cluster, platform='kubernetes', name='nope',
                                                                     namespace=K8S_NS, deadline='1s', stable_for='1s'), {}),
        ('recent_changes', 'recent_changes_info', dict(cluster, source='kubernetes', name='backend',
                                                       namespace=K8S_NS, since='1795400000',
                                                       onset='2026-11-23T14:10:00Z'), {}),
        ('recent_changes_not_found', 'recent_changes_info', dict(cluster, source='kubernetes', name='nope',
                                                                 namespace=K8S_NS), {}),
        ('preflight', 'preflight_info', preflight, {}),
        ('preflight_bad_window', 'preflight_info', dict(preflight, window='often'), {}),
        ('diagnose', 'diagnose', {'incident': DEPLOYED, 'port': 8000}, {}),
        ('diagnose_bad_gap', 'diagnose', {'incident': DEPLOYED, 'max_deploy_gap': 'soon'}, {}),
        ('incident_registry', 'incident_registry', registry, {}),
        ('incident_registry_bad_service', 'incident_registry', dict(registry, service='../gateway'), {}),
        ('incident_report', 'incident_report', report, {}),
        ('incident_report_check', 'incident_report', dict(report, follow_ups=[]), check),
        ('incident_report_no_start', 'incident_report', dict(report, incident={'id': 'x'}), {}),
        ('slack_notify', 'slack_notify', dict(slack, text='rolled back to v1.2.2'), {}),
        ('slack_notify_check', 'slack_notify', dict(slack, template='incident', incident=INCIDENT), check),
        ('slack_notify_refused', 'slack_notify', dict(slack, text='x', api_url=url + '/slack-refusing'), {}),
        ('slack_notify_constraint', 'slack_notify', {'token': TOKEN, 'text': 'no channel'}, {}),
        ('pagerduty_event', 'pagerduty_event', {'routing_key': ROUTING_KEY, 'event_action': 'acknowledge',
                                                'dedup_key': 'inference-gateway-1', 'events_url': url}, {}),
        ('pagerduty_event_rest', 'pagerduty_event', pd_rest, {}),
        ('pagerduty_event_invalid', 'pagerduty_event', {
            'routing_key': ROUTING_KEY, 'event_action': 'trigger', 'summary': ' ', 'source': 'gw',
            'severity': 'critical', 'events_url': url + '/pd-invalid', 'retries': 0}, {}),
        ('statuspage_incident', 'statuspage_incident', status_page, {}),
        ('statuspage_bad_component', 'statuspage_incident', dict(status_page, components={'c1': 'on fire'}), {}),
        ('grafana_annotation', 'grafana_annotation', annotation, {}),
        ('grafana_annotation_unknown_dashboard', 'grafana_annotation', dict(annotation, dashboard_uid='nope'), {}),
    ]


# What each case must have returned, in both runs: (case, dotted path, test, value). Equal
# results prove nothing when both are empty or both the same wrong failure.
EXPECTED = [
    ('error_rate', 'verdict', '==', 'critical'),
    ('error_rate', 'changed', '==', False),
    ('error_rate_bad_value', 'msg', 'startswith', 'invalid option: '),
    ('error_rate_bad_type', 'msg', 'startswith', "argument 'warning_percent' is of type"),
    ('error_rate_missing', 'msg', '==', 'missing required arguments: service'),
    ('error_rate_unknown', 'msg', 'startswith', 'Unsupported parameters for (sre.runbooks.error_rate_info) '
                                                'module: bogus. Supported parameters include: at, baseline_offset,'),
    ('error_rate_unreachable', 'msg', 'in', 'cannot reach Prometheus'),
    ('error_rate_unreachable', 'queries.total_overall', 'in', 'http_requests_total'),
    ('latency', 'verdict', '==', 'slow'),
    ('latency', 'top_group', '==', '/predict'),
    ('latency', 'groups.0.percentiles.p99.seconds', '==', 1.2),
    ('latency', 'groups.0.percentiles.p99.baseline_seconds', '==', 0.049),
    ('latency', 'overall.over_target', '==', 'yes'),
    ('latency', 'onset_iso', '==', '2026-11-23T14:50:00Z'),  # the fake's p99 slow since ONSET, ten minutes back
    ('latency_check', 'changed', '==', False),
    ('latency_check', 'quantiles', '==', [0.5, 0.99]),
    ('latency_check', 'slow_groups', '==', ['/predict']),
    ('latency_bad_factor', 'msg', 'startswith', 'invalid option slow_factor: 0.0 must be more than 1'),
    ('latency_unreachable', 'msg', 'in', 'cannot reach Prometheus'),
    ('latency_unreachable', 'queries.p99_overall', 'in', 'http_request_duration_seconds_bucket'),
    ('error_rate_watch', 'verdict', '==', 'recovered'),
    ('error_rate_watch', 'samples.0.request_rate', '==', 20.0),
    ('error_rate_watch_bad_options', 'msg', 'in', 'deadline (1s) >= stable_for (5s)'),
    ('slo_budget', 'source', '==', 'rules'),
    ('slo_budget', 'availability', '==', 0.9991),
    ('slo_budget', 'history_seconds', '==', 2592000.0),
    ('slo_budget', 'budget_burned_during_incident.errors', '==', 360.0),
    ('slo_budget_wrong_service', 'msg', 'in', "no series of http_requests_total match service='inference-gatway'"),
    ('prometheus_query', 'series.0.labels', '==', {'endpoint': '/predict'}),
    ('prometheus_query_bad_promql', 'msg', 'in', 'rejected the query with bad_data (HTTP 400)'),
    ('resource_usage', 'max_cpu_percent', '==', 97.5),
    ('resource_usage', 'oom_kills', '==', 1),
    ('resource_usage_bad_promql', 'msg', 'in', 'rejected the query with bad_data (HTTP 400)'),
    ('resource_usage_bad_promql', 'queries.memory_percent', '==', 'max(up'),
    ('service_health', 'failed_checks', '==', ['down']),
    ('service_health', 'by_name.health.extracted', '==', {'db': 'up'}),
    ('service_health_bad_url', 'msg', 'in', 'must start with http://, https:// or /'),
    ('log_search', 'matched', '==', 7),
    ('log_search', 'top_messages.0.pattern', '==', 'upstream model-service failed: timed out'),
    ('log_search_no_index', 'msg', 'in', 'logs-missing'),
    ('trace_search', 'error_traces', '==', 3),
    ('trace_search', 'dependency_suspect', '==', 'model-service'),
    ('trace_search_partial', 'partial', '==', True),
    ('trace_search_partial', 'jaeger_errors.0.traceID', '==', 'bb02'),
    ('trace_search_storage_error', 'msg', 'in', 'answered HTTP 500: cassandra: no hosts available'),
    ('k8s_status', 'deployment.ready_replicas', '==', 1),
    ('k8s_status', 'logs', '==', ['starting', 'MemoryError: cannot allocate']),
    ('k8s_status_not_found', 'msg', 'startswith', 'deployment nope not found in namespace shop'),
    ('crash_loop_watch', 'verdict', '==', 'not_recovered'),
    ('crash_loop_watch', 'message', '==', 'deployment backend in namespace shop: no restart during the watch, 1/2 ready '
                                          '(CrashLoopBackOff) at the deadline; stable for 0 s of the 1 s needed'),
    ('crash_loop_watch', 'last_exit', '==', 'OOMKilled'),
    ('crash_loop_watch_not_found', 'msg', 'startswith', 'deployment nope not found in namespace shop'),
    ('recent_changes', 'current_revision', '==', 2),
    ('recent_changes', 'previous_image', '==', 'shop/backend:2.0'),
    ('recent_changes_not_found', 'msg', 'startswith', 'deployment nope not found in namespace shop'),
    ('preflight', 'counts', '==', {'pass': 14, 'warn': 0, 'fail': 0}),
    ('preflight_bad_window', 'msg', 'startswith', "invalid option: 'often' is not a duration"),
    ('diagnose', 'action.description', '==', 'rollback to v1'),
    ('diagnose_bad_gap', 'msg', 'startswith', "invalid option max_deploy_gap: 'soon' is not a duration"),
    ('incident_registry', 'record.id', '==', INCIDENT['id']),
    ('incident_registry', 'path', '==', 'state/registry/incidents/inference-gateway.json'),
    ('incident_registry_bad_service', 'msg', 'in', 'cannot name a file'),
    ('incident_report', 'path', '==', 'state/incidents/2026-11/incident-20261123-1423-high-error-rate.md'),
    ('incident_report', 'changed', '==', True),
    ('incident_report_check', 'changed', '==', True),
    ('incident_report_check', 'postmortem.start', '==', '2026-11-24T10:00:00Z'),
    ('incident_report_no_start', 'msg', 'startswith', 'incident.started_at is None, not a time'),
    ('slack_notify', 'ts', '==', '1795446000.000100'),
    ('slack_notify', 'changed', '==', True),
    ('slack_notify_check', 'sent', '==', False),
    ('slack_notify_check', 'request.0.method', '==', 'chat.postMessage'),
    ('slack_notify_refused', 'msg', 'in', 'channel_not_found'),
    ('slack_notify_constraint', 'msg', '==', "missing parameter(s) required by 'token': channel"),
    ('pagerduty_event', 'status', '==', 'success'),
    ('pagerduty_event_rest', 'status', '==', 'acknowledged'),
    ('pagerduty_event_rest', 'incident.id', '==', PD_INCIDENT),
    ('pagerduty_event_invalid', 'msg', 'in', 'invalid event (HTTP 400)'),
    ('statuspage_incident', 'created', '==', True),
    ('statuspage_incident', 'incident.shortlink', '==', 'https://stspg.io/inc1'),
    ('statuspage_bad_component', 'msg', 'startswith', 'invalid component statuses (c1: on fire)'),
    ('grafana_annotation', 'annotation.id', '==', 1),
    ('grafana_annotation', 'request.body.time', '==', 1795446000000),
    ('grafana_annotation_unknown_dashboard', 'msg', 'in', 'Invalid dashboard UID in annotation request: check dashboard_uid'),
]

# The values that must differ between the two runs, by module: they are the time the run took
# place or took (the runs are seconds apart), or a latency. Their keys stay, with '<varies>'.
VARIES = {
    'crash_loop_watch_info': ['elapsed_seconds', 'samples.*.time', 'samples.*.time_iso', 'started_at', 'ended_at'],
    'error_rate_watch_info': ['elapsed_seconds', 'samples.*.time', 'samples.*.time_iso'],  # and the message's "after N s"
    'incident_registry': ['record.active.until', 'record.updated',  # now + run_ttl, and now
                          'diff.after.active.until', 'diff.after.updated',
                          'size'],  # of the record, which holds those times
    'resource_usage_info': ['since', 'since_iso'],  # now - since: its option is a duration, never a time
    'service_health_info': ['checks.*.latency_ms', 'by_name.*.latency_ms'],
    'slo_budget_info': ['evaluated_at'],  # now; the rest is taken at incident_end, or held whole
    'trace_search_info': ['query.start', 'query.end', 'start_iso', 'end_iso'],  # now - lookback, now
}
# What AnsibleModule.exit_json and fail_json add to a result with a `path` that exists (basic.py
# add_path_info).
FILE_STATS = ('uid', 'gid', 'owner', 'group', 'mode', 'state', 'size', 'secontext')
# The cases refused by argument validation.
REFUSED = ('error_rate_bad_type', 'error_rate_missing', 'error_rate_unknown', 'slack_notify_constraint')


def playbook(tasks, environment):
    play = {
        'name': 'Observe and channel modules on the controller', 'hosts': 'localhost',
        'gather_facts': False,
        'tasks': [dict({'name': name, 'sre.runbooks.' + module: args, 'register': name,
                        'ignore_errors': True}, **keywords) for name, module, args, keywords in tasks] + [
            {'name': 'Results', 'ansible.builtin.debug': {
                'msg': {name: '{{ %s }}' % name for name, _module, _args, _kw in tasks}}}],
    }
    if environment:
        play['environment'] = environment
    return [play]


def shown(output):
    """The results the minimal callback shows at -vvv, the invocation included, in task order."""
    return [json.loads(block) for block in
            re.findall(r'^localhost \| [A-Z!]+ => (\{.*?^\})$', output, re.MULTILINE | re.DOTALL)]


def warnings_shown(output):
    return [w.strip() for w in re.findall(r'^\[WARNING\]: (.*(?:\n(?!\[|localhost \||<127|Using |Origin: ).*)*)',
                                          output, re.MULTILINE)]


@pytest.fixture(scope='module')
def fake():
    server = fake_server()
    yield server
    server.close()


@pytest.fixture(scope='module')
def k8s():
    api = fake_kubernetes()
    yield api
    api.close()


@pytest.fixture(scope='module')
def ran(fake, k8s, tmp_path_factory):
    """The cases through ansible-playbook at -vvv, in both modes at once, each in a directory of
    its own, its working directory, where the state files land:
    {mode: {'output', 'registered', 'shown', 'files'}} and 'tasks'."""
    work = tmp_path_factory.mktemp('in_process')
    tasks = cases(fake.url, 'http://127.0.0.1:%d' % free_port(), k8s.url)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal',
               ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    procs = {}
    for mode, environment in MODES.items():
        cwd = work / mode
        cwd.mkdir()
        (cwd / 'playbook.yml').write_text(json.dumps(playbook(tasks, environment)))
        with open(cwd / 'stdout', 'w') as stdout, open(cwd / 'stderr', 'w') as stderr:
            procs[mode] = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), 'playbook.yml', '-vvv'],
                cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    runs = {'tasks': tasks}
    for mode, proc in procs.items():
        proc.wait(timeout=300)
        stdout, stderr = ((work / mode / name).read_text() for name in ('stdout', 'stderr'))
        assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
        state = work / mode / 'state'
        runs[mode] = {'output': stdout + stderr, 'registered': json.loads(stdout.rsplit('=> ', 1)[1])['msg'],
                      'shown': shown(stdout)[:-1],  # not the debug task's
                      'files': {str(p.relative_to(state)): p.read_bytes()
                                for p in state.rglob('*') if p.is_file()}}
        assert len(runs[mode]['shown']) == len(tasks), mode
    return runs


def dig(value, path):
    for part in path.split('.'):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def mask(value, parts):
    """value with what `parts` (a dotted path, * for every item) leads to replaced by '<varies>'."""
    if not parts:
        return '<varies>'
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        keys = value if head == '*' else [head] if head in value else []
        return dict(value, **{k: mask(value[k], rest) for k in keys})
    if isinstance(value, list) and head == '*':
        return [mask(item, rest) for item in value]
    return value


def comparable(module, result):
    """A result without the values that must differ between the runs (VARIES)."""
    for path in VARIES.get(module, ()):
        result = mask(result, path.split('.'))
    if module == 'error_rate_watch_info' and isinstance(result.get('message'), str):
        result['message'] = re.sub(r'after [\d.]+ s$', 'after <varies>', result['message'])
    return result


def test_every_module_with_an_action_plugin_is_covered(ran):
    assert ACTIONS
    for module in ACTIONS:
        outcomes = [bool(ran['in_process']['registered'][name].get('failed'))
                    for name, m, _args, _kw in ran['tasks'] if m == module]
        assert True in outcomes and False in outcomes, (module, 'needs a success and a failure')


def test_each_mode_runs_as_it_says(ran):
    in_process, process = ran['in_process']['output'], ran['process']['output']
    assert 'Using module file' not in in_process and 'AnsiballZ' not in in_process
    used = re.findall(r'^Using module file \S+/plugins/modules/(\w+)\.py$', process, re.MULTILINE)
    assert sorted(used) == sorted(module for _name, module, _args, _kw in ran['tasks'])


def test_the_results_are_those_expected(ran):
    names = {name for name, _module, _args, _kw in ran['tasks']}
    assert names <= {case for case, _path, _test, _value in EXPECTED}, 'every case has an expectation'
    for mode in MODES:
        results = ran[mode]['registered']
        for case, path, test, expected in EXPECTED:
            got = dig(results[case], path)
            assert {'==': lambda: got == expected, 'in': lambda: expected in got,
                    'startswith': lambda: got.startswith(expected)}[test](), (mode, case, path, got)
        for name in names:
            assert results[name].get('failed') or len(results[name]) > 3, (mode, name, results[name])


def test_results_equal_the_module_process(ran):
    for index, (name, module, _args, _kw) in enumerate(ran['tasks']):
        in_process, process = ran['in_process'], ran['process']
        assert comparable(module, in_process['registered'][name]) == \
            comparable(module, process['registered'][name]), name
        # As shown at -vvv: with the invocation, no_log values masked.
        assert comparable(module, in_process['shown'][index]) == \
            comparable(module, process['shown'][index]), name
    assert warnings_shown(ran['in_process']['output']) == warnings_shown(ran['process']['output'])
    # The warning of the partial trace search, shown once in each.
    assert sum('Jaeger' in w for w in warnings_shown(ran['process']['output'])) == 1


def test_the_state_files_are_the_same(ran):
    in_process, process = ran['in_process']['files'], ran['process']['files']
    assert sorted(in_process) == sorted(process) == [
        'incidents/2026-11/incident-20261123-1423-high-error-rate.ics',
        'incidents/2026-11/incident-20261123-1423-high-error-rate.md',
        'registry/incidents/inference-gateway.json', 'registry/incidents/inference-gateway.json.guard']
    for name in in_process:
        if name.startswith('incidents/'):
            assert in_process[name] == process[name], name
    records = [json.loads(files['registry/incidents/inference-gateway.json']) for files in (in_process, process)]
    assert [round(r['active']['until'] - r['updated'], 3) for r in records] == [1800.0, 1800.0]
    assert [r['id'] for r in records] == [INCIDENT['id']] * 2


def test_no_secret_in_either_output(ran):
    for mode in MODES:
        output, registered = ran[mode]['output'], json.dumps(ran[mode]['registered'])
        for secret in SECRETS:
            assert secret not in output and secret not in registered, (mode, secret)
        # -vvv shows each task's invocation, as for a module: the no_log options masked.
        shown_args = {name: ran[mode]['shown'][i].get('invocation', {}).get('module_args', {})
                      for i, (name, _m, _a, _k) in enumerate(ran['tasks'])}
        for name, option in (('error_rate', 'bearer_token'), ('latency', 'bearer_token'), ('prometheus_query', 'password'),
                             ('slack_notify', 'token'), ('pagerduty_event', 'routing_key'),
                             ('pagerduty_event_rest', 'api_token'), ('statuspage_incident', 'api_key'),
                             ('k8s_status', 'api_key'), ('log_search', 'password'),
                             ('grafana_annotation', 'bearer_token'), ('grafana_annotation', 'token')):
            assert shown_args[name][option] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER', (mode, name)
        assert shown_args['preflight']['slack']['token'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER', mode


def test_path_results_carry_file_stats_as_a_module_does(ran):
    for name in ('incident_registry', 'incident_report'):
        process = ran['process']['registered'][name]
        assert {k for k in FILE_STATS if k in process} >= {'uid', 'owner', 'mode', 'size'}, name
        in_process = ran['in_process']['registered'][name]
        stats = [k for k in FILE_STATS if k not in VARIES.get(name, ())]
        assert {k: in_process.get(k) for k in stats} == {k: process.get(k) for k in stats}, name


def test_refused_arguments_show_their_invocation_as_a_module_does(ran):
    names = [name for name, _module, _args, _kw in ran['tasks']]
    for name in REFUSED:
        process = ran['process']['shown'][names.index(name)]
        assert process['invocation']['module_args'], name
        assert ran['in_process']['shown'][names.index(name)].get('invocation') == process['invocation'], name


def test_refused_arguments_name_the_class_a_module_names(ran):
    in_process, process = (ran[mode]['registered']['error_rate_bad_type']['msg'] for mode in MODES)
    assert "<class 'str'>" in process
    assert in_process == process

"""Every role template (through Ansible's own templating: the template lookup the roles call, with
the collection's filters), the communicate role's channel texts (its vars) and every message
builder (Slack, the incident document and its invite), rendered from a realistic incident with
None in each of its numbers in turn, and with each of its optional parts absent: nothing
crashes, nothing reads "None", and a missing figure reads as "no traffic" or "n/a"."""

import copy
import functools
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report as report
from ansible_collections.sre.runbooks.plugins.module_utils.notify import slack

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / '.collections'
NOW = datetime(2026, 11, 24, 4, 30, tzinfo=timezone.utc)
POSTMORTEM = {'attendees': list(report.DEFAULT_ATTENDEES), 'organizer': None, 'within_hours': 48,
              'duration_minutes': 60}
# What a missing figure may read as.
HONEST = ('no traffic', 'n/a', 'not measured', 'no answer', 'not recorded')
NONE_WORD = re.compile(r'\bNone\b')

# The demo's bad deploy as the roles record it, every section filled, service-down checks of both
# platforms included; the rollback applied and verified.
INCIDENT = {
    'id': 'inference-gateway-20261124T040558Z', 'run_id': '20261124T040558.123456',
    'service': 'inference-gateway', 'platform': 'compose', 'started_at': '2026-11-24T04:05:58Z',
    'outcome': 'resolved', 'severity': 'critical', 'priority': 'P1',
    'evidence': {'sufficient': True, 'gaps': []},
    'missing_evidence': ['traces: cannot reach Jaeger at http://127.0.0.1:16686'],
    'triage': {
        'service_down': False,
        'health': {'all_ok': True, 'failed_checks': [], 'checks': [
            {'name': 'health', 'ok': True, 'status': 200, 'latency_ms': 46.2},
            {'name': 'head', 'ok': True, 'status': 200, 'latency_ms': 41.0},
            {'name': 'ready', 'ok': True, 'status': 200, 'latency_ms': 50.3,
             'extracted': {'model-service': {'status': 'up'}, 'feature-store': {'status': 'up'}}}]},
        'error_rate': {
            'verdict': 'critical', 'group_by': 'endpoint', 'error_percent': 13.95, 'error_ratio': 0.1395,
            'request_rate': 19.64, 'error_rate': 2.74, 'change_percent_points': 13.95,
            'message': 'inference-gateway: 13.95% of 19.64 req/s answer 5xx over 30s (critical > 5%)',
            'baseline': {'error_ratio': 0.0, 'error_percent': 0.0, 'request_rate': 19.5, 'verdict': 'ok'},
            'groups': [
                {'value': '/predict', 'request_rate': 4.9, 'error_rate': 2.71, 'error_ratio': 0.554,
                 'error_percent': 55.4, 'share_of_errors': 0.99, 'baseline_error_ratio': 0.0, 'verdict': 'critical'},
                {'value': '/classify', 'request_rate': 4.9, 'error_rate': 0.03, 'error_ratio': 0.006,
                 'error_percent': 0.6, 'share_of_errors': 0.01, 'baseline_error_ratio': 0.0, 'verdict': 'ok'},
                {'value': '/embed', 'request_rate': 0.05, 'error_rate': 0.0, 'error_ratio': 0.0,
                 'error_percent': 0.0, 'share_of_errors': 0.0, 'baseline_error_ratio': 0.02, 'verdict': 'low_traffic'}],
            'failing_groups': ['/predict'], 'top_group': '/predict', 'concentrated': True,
            'shape': 'spike', 'onset': 1795493145.0, 'onset_iso': '2026-11-24T04:05:45Z',
            'last_seen': 1795493158.0, 'window_seconds': 30.0, 'evaluated_at': 1795493158.0},
        'changes': [{'time': 1795493141.0, 'time_iso': '2026-11-24T04:05:41Z', 'kind': 'deploy',
                     'summary': 'image sre-demo/inference-gateway:v1.2.2 -> sre-demo/inference-gateway:v1.2.3',
                     'seconds_before_onset': 4.0}],
        'current_image': 'sre-demo/inference-gateway:v1.2.3',
        'previous_image': 'sre-demo/inference-gateway:v1.2.2'},
    'service_down': {'checks': {
        'containers': [{'name': 'inference-gateway-1', 'state': 'running', 'health': 'healthy', 'restart_count': 2,
                        'exit_code': 0, 'oom_killed': False, 'image': 'sre-demo/inference-gateway:v1.2.3'}],
        'pods': [{'name': 'inference-gateway-7d9f', 'phase': 'Running', 'ready': False, 'restarts': 5,
                  'waiting_reason': 'CrashLoopBackOff', 'last_terminated_reason': 'OOMKilled'}],
        'problems': [{'kind': 'crash_loop', 'message': 'restarting'}],
        'endpoints': {'ready': 1, 'not_ready': 2, 'found': True, 'service': 'inference-gateway'},
        'hpa': {'current_replicas': 3, 'min_replicas': 2, 'max_replicas': 3, 'at_max': True},
        'crash_loop': True, 'crash': {'restarts_in_window': 4},
        'oom': {'kernel': ['Out of memory: Killed process 4242 (python)']},
        'config': {'valid': True, 'hash_drift': False, 'env_drift': []},
        'port_holders': [{'pid': 4242, 'command': 'python -m http.server', 'in_service': False}],
        'logs': ['listening on :8080']}},
    'investigate': {
        'logs': {'summary': 'inference-gateway: 212 lines at ERROR', 'until_iso': '2026-11-24T04:05:59Z',
                 'top_messages': [{'pattern': 'prediction handler failed', 'count': 85, 'level': 'ERROR'}]},
        'resources': {'max_cpu_percent': 31.5, 'max_memory_percent': 40.2, 'max_throttled_ratio': 0.02,
                      'restarts': 0, 'oom_kills': 0, 'saturated': False, 'reasons': []},
        'dependencies': {'names': ['model-service'], 'failing': [],
                         'checks': [{'name': 'model-service', 'ok': True, 'status': 200, 'latency_ms': 3.1}]},
        'traces': {'traces': 50, 'error_traces': 44, 'dependency_suspect': None,
                   'error_sources': [{'service': 'inference-gateway', 'operation': 'POST /predict',
                                      'message': 'TypeError', 'count': 44}]}},
    'diagnosis': {
        'at': '2026-11-24T04:06:01.5Z', 'summary': 'deploy: rollback to v1.2.2', 'partial': False,
        'action': {'name': 'rollback', 'description': 'rollback to v1.2.2', 'disruptive': True,
                   'params': {'to_image': 'sre-demo/inference-gateway:v1.2.2'}},
        'recommended': {'cause': 'deploy', 'confidence': 0.9, 'runbook_step': 'Mitigation Option 1: Rollback',
                        'evidence': ['errors began 4 s after the deploy'],
                        'action': {'name': 'rollback', 'description': 'rollback to v1.2.2'}},
        'causes': [{'cause': 'deploy', 'confidence': 0.9, 'evidence': ['errors began 4 s after the deploy'],
                    'action': {'description': 'rollback to v1.2.2'}},
                   {'cause': 'endpoint', 'confidence': 0.65, 'evidence': ['/predict holds 99% of the errors'],
                    'action': {'description': 'disable FEATURE_ENDPOINT_PREDICT_ENABLED'}}],
        'ruled_out': [], 'refused': [], 'missing_evidence': []},
    'mitigation': {'mode': 'auto', 'attempts': [{
        'attempt': 1, 'decision': 'act', 'description': 'rollback to v1.2.2', 'reason': 'rollback to v1.2.2',
        'acted': True, 'check_mode': False, 'at': '2026-11-24T04:06:20Z',
        'before': {'image': 'sre-demo/inference-gateway:v1.2.3'}, 'after': {'image': 'sre-demo/inference-gateway:v1.2.2'},
        'commands': ['docker-compose up -d --no-deps inference-gateway'],
        'verify': {'recovered': True, 'verdict': 'recovered', 'measured': True, 'last_percent': 0.0,
                   'message': 'inference-gateway recovered: under 1% errors for 10 s (now 0%), after 25 s'}}]},
    'verify': {'recovered': True, 'verdict': 'recovered', 'measured': True, 'unmeasured_reason': '',
               'stable_seconds': 10.0, 'trend': 'decreasing', 'first_percent': 12.0, 'last_percent': 0.0,
               'elapsed_seconds': 25.3,
               'message': 'inference-gateway recovered: under 1% errors for 10 s (now 0%), after 25 s',
               'samples': [{'time': 1795493185.0, 'time_iso': '2026-11-24T04:06:25Z', 'error_percent': 12.0,
                            'request_rate': 19.6},
                           {'time': 1795493210.0, 'time_iso': '2026-11-24T04:06:50Z', 'error_percent': 0.0,
                            'request_rate': 0.05}]},
    'slo': {'objective': 99.5, 'slo_window': '30d', 'availability_percent': 99.71, 'source': 'rules',
            'message': '99.71% available over 30d (objective 99.5%), 42% of the error budget left',
            'budget_remaining': {'percent': 42.0, 'minutes': 90.72, 'allowed_minutes': 216.0},
            'budget_burned_during_incident': {'percent': 18.5, 'minutes': 39.96},
            'burn_rates': {'5m': 0.6, '1h': 15.2}, 'alerts': {'page': {'firing': False}}},
    'communication': {'log': [{'at': '2026-11-24T04:06:01Z', 'event': 'opened', 'channel': 'slack', 'ok': True,
                               'detail': ''}],
                      'slack': {'thread_ts': '1795493161.000100', 'channel': 'C0INC'},
                      'statuspage': {'incident_id': 'p31zjtct2jer', 'status': 'monitoring'}},
    'report': {'path': 'incidents/2026-11/incident-20261124-0405-high-error-rate.md',
               'ics_path': 'incidents/2026-11/incident-20261124-0405-high-error-rate.ics',
               'postmortem': {'start': '2026-11-24T10:00:00Z', 'end': '2026-11-24T11:00:00Z'}},
}
# What the roles' tasks have besides the incident when they render their templates.
ROLE_VARS = {'triage_changes': {'since_iso': '2026-11-24T03:05:58Z'}, 'mitigate_mode': 'auto',
             'ansible_check_mode': False, 'resolve_slo': {'msg': ''}, 'service_down_service': 'inference-gateway',
             'service_down_crash_window': '10m', 'service_down_port': 8080}
TEMPLATES = {role: ROOT / 'roles' / role / 'templates' / name for role, name in (
    ('triage', 'triage_summary.j2'), ('diagnose', 'diagnosis_summary.j2'), ('service_down', 'service_down_summary.j2'),
    ('mitigate', 'mitigation_summary.j2'), ('resolve', 'resolution_summary.j2'))}
EVENTS = ('opened', 'identified', 'action', 'update', 'escalated', 'resolved', 'closed', 'recovered', 'joined')
# The communicate role's texts and decisions for one event, as its tasks read them.
CHANNEL_TEXTS = trust_as_template(
    "{{ {'slack': _communicate_slack_on,"
    " 'slack_template': _communicate_slack_template[communicate_event] if communicate_event in _communicate_slack_template else '',"
    " 'pagerduty': _communicate_pd_on, 'summary': _communicate_summary | trim,"
    " 'statuspage': _communicate_status_on,"
    " 'status': _communicate_status[communicate_event] if communicate_event in _communicate_status else '',"
    " 'body': _communicate_status_body[communicate_event] | trim if communicate_event in _communicate_status_body else '',"
    " 'component': _communicate_component_status | trim} }}")


@pytest.fixture(scope='module', autouse=True)
def collection_loader():
    """Ansible's collection loader, so that the templates find the sre.runbooks filters, as
    ansible-playbook has it: it imports the collection itself, so the modules the tests imported
    from the path (conftest) are set aside meanwhile."""
    ours = {name: module for name, module in sys.modules.items() if name.split('.')[0] == 'ansible_collections'}
    for name in ours:
        del sys.modules[name]
    _AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()
    yield
    _AnsibleCollectionFinder._remove()
    for name in [name for name in sys.modules if name.split('.')[0] == 'ansible_collections']:
        del sys.modules[name]
    sys.modules.update(ours)


def render_template(role, incident, **extra):
    variables = dict(ROLE_VARS, incident=incident, _template=str(TEMPLATES[role]), **extra)
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template("{{ lookup('ansible.builtin.template', _template) }}"))


def communicate_vars():
    loader = DataLoader()
    role = ROOT / 'roles' / 'communicate'
    variables = dict(loader.load_from_file(str(role / 'defaults' / 'main.yml'), trusted_as_template=True))
    variables.update(loader.load_from_file(str(role / 'vars' / 'main.yml'), trusted_as_template=True))
    return variables


COMMUNICATE = None


def channel_texts(event, incident, **settings):
    """What the communicate role would send for `event`, with every channel configured."""
    global COMMUNICATE
    COMMUNICATE = COMMUNICATE or communicate_vars()
    configured = dict(communicate_slack_token='xoxb-t', communicate_slack_channel='C0INC',
                      communicate_pagerduty_routing_key='R' * 32, communicate_pagerduty_dedup_key='dedup',
                      communicate_escalation_routing_key='E' * 32, communicate_statuspage_api_key='key',
                      communicate_statuspage_page_id='page')
    variables = dict(COMMUNICATE, **dict(configured, **settings))
    variables.update(incident=incident, communicate_event=event)
    return Templar(loader=DataLoader(), variables=variables).template(CHANNEL_TEXTS)


def builders(incident, tvars=None):
    """Every message the Python builders write about the incident."""
    texts = {template: slack.render(template, incident, tvars or {}, NOW)[0] for template in slack.TEMPLATES}
    event = report.postmortem_event(incident, POSTMORTEM)
    texts['document'] = report.render_markdown(incident, ['add a canary'], event, 'x.ics')
    texts['invite'] = report.render_ics(incident, event, 'x.md')
    return texts


def numeric_leaves(data, path=()):
    """The path of every number in data (booleans are not numbers)."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [path] if isinstance(data, (int, float)) and not isinstance(data, bool) else []
    return [leaf for key, value in items for leaf in numeric_leaves(value, path + (key,))]


def optional_parts(data, path=(), depth=3):
    """The path of every key of a mapping outside lists, to depth; the service is never absent."""
    if not isinstance(data, dict) or depth == 0:
        return []
    return [path + (key,) for key in data if path + (key,) != ('service',)] + [
        part for key, value in data.items() for part in optional_parts(value, path + (key,), depth - 1)]


def with_none(path):
    incident = copy.deepcopy(INCIDENT)
    node = incident
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = None
    return incident


def without(path):
    incident = copy.deepcopy(INCIDENT)
    node = incident
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return incident


def name(path):
    return '.'.join(str(key) for key in path)


def under(path, prefixes):
    return any(path[:len(prefix)] == prefix for prefix in prefixes)


LEAVES = numeric_leaves(INCIDENT)
PARTS = optional_parts(INCIDENT)
# The parts of the incident each template reads (rendering them all for every case would take
# minutes: Ansible compiles a template each time it renders it).
READS = {'triage': [('triage',), ('evidence',), ('missing_evidence',)],
         'diagnose': [('diagnosis',)],
         'service_down': [('service_down',)],
         'mitigate': [('mitigation',), ('verify',), ('diagnosis', 'at'), ('escalation',), ('run_id',)],
         'resolve': [('slo',), ('communication',), ('report',), ('missing_evidence',), ('mitigation',),
                     ('escalation',), ('verify',), ('evidence',), ('failure',)]}
CHANNEL_READS = [('severity',), ('triage', 'error_rate', 'message'), ('triage', 'error_rate', 'error_percent'),
                 ('diagnosis',), ('mitigation',), ('escalation',), ('communication',), ('outcome',)]
# What the channels say something of their own about; the others say what they always say.
TEXT_EVENTS = ('opened', 'identified', 'action', 'escalated')
# Numbers whose absence rightly shows nothing: no onset, so no gap between a change and it.
SILENT = [('triage', 'changes', 0, 'seconds_before_onset')]


def honest_words(text):
    return sum(text.count(word) for word in HONEST)


def assert_honest(before, after, what):
    """A figure set to None reads as a word, never as None; the rest of the text stays."""
    assert not NONE_WORD.search(after), '%s says None:\n%s' % (what, after)
    if after != before:
        assert honest_words(after) > honest_words(before), '%s lost a figure without saying so:\n%s' % (what, after)


@functools.lru_cache(maxsize=None)
def whole(what):
    """A template's text, or a builder's, of the whole incident."""
    return render_template(what, INCIDENT) if what in TEMPLATES else builders(INCIDENT)[what]


def test_the_incident_renders_whole_with_every_figure():
    assert len(LEAVES) > 80
    for what in list(TEMPLATES) + list(builders(INCIDENT)):
        assert not NONE_WORD.search(whole(what)) and honest_words(whole(what)) == 0, whole(what)
    triage = whole('triage')
    assert '  /predict        55.4% of  4.90 req/s   99% of errors  (baseline 0.0%)  <- CRITICAL' in triage
    assert '  /embed           0.0% of  0.05 req/s    0% of errors  (baseline 2.0%)  <- too little traffic' in triage
    assert 'Health     : health 200 (46 ms), head 200 (41 ms), ready 200 (50 ms)' in triage
    assert '(4 s before the errors began)' in triage
    assert 'Missing    : traces: cannot reach Jaeger at http://127.0.0.1:16686' in triage
    assert '1. deploy (90%) -> rollback to v1.2.2' in whole('diagnose')
    assert 'HPA        : 3 of 2-3 replicas, at its maximum' in whole('service_down')
    assert 'Container  : inference-gateway-1 running (healthy), 2 restarts, exit 0,' in whole('service_down')


@pytest.mark.parametrize('role,path', [(role, path) for role in TEMPLATES for path in LEAVES
                                       if under(path, READS[role]) and path not in SILENT],
                         ids=lambda value: name(value) if isinstance(value, tuple) else value)
def test_templates_render_a_missing_number_in_words(role, path):
    assert_honest(whole(role), render_template(role, with_none(path)), '%s with %s None' % (role, name(path)))


@pytest.mark.parametrize('path', [
    ('triage', 'error_rate', 'groups', 0, 'error_percent'), ('triage', 'error_rate', 'groups', 0, 'request_rate'),
    ('triage', 'error_rate', 'groups', 0, 'share_of_errors'), ('triage', 'error_rate', 'groups', 2, 'baseline_error_ratio'),
    ('triage', 'health', 'checks', 0, 'latency_ms'), ('service_down', 'checks', 'hpa', 'max_replicas'),
    ('diagnosis', 'causes', 1, 'confidence')], ids=name)
def test_the_summaries_show_which_figure_is_missing(path):
    role = next(role for role in TEMPLATES if under(path, READS[role][:1]))
    assert honest_words(render_template(role, with_none(path))) == 1


def test_the_triage_table_marks_traffic_under_the_minimum():
    incident = with_none(('triage', 'error_rate', 'groups', 1, 'error_percent'))
    incident['triage']['error_rate']['groups'][1].update(request_rate=0.0, verdict='no_traffic')
    text = render_template('triage', incident)
    assert '  /classify         n/a of     0 req/s    1% of errors  (baseline 0.0%)  <- no traffic' in text
    incident['triage']['error_rate']['groups'][1]['request_rate'] = None
    assert '  /classify         n/a of  no traffic    1% of errors' in render_template('triage', incident)


@pytest.mark.parametrize('path', LEAVES, ids=name)
def test_builders_write_a_missing_number_in_words(path):
    for what, text in builders(with_none(path)).items():
        assert_honest(whole(what), text, '%s with %s None' % (what, name(path)))


@functools.lru_cache(maxsize=None)
def whole_channel_texts(event):
    return channel_texts(event, INCIDENT)


def test_every_event_tells_what_the_role_expects():
    told = {event: whole_channel_texts(event) for event in EVENTS}
    assert {event for event in EVENTS if told[event]['slack']} == set(EVENTS) - {'recovered'}
    assert {event: told[event]['slack_template'] for event in EVENTS if told[event]['slack']} == {
        'opened': 'incident', 'identified': 'update', 'action': 'update', 'update': 'update',
        'escalated': 'escalation', 'resolved': 'resolved', 'closed': 'closed', 'joined': 'joined'}
    assert {event for event in EVENTS if told[event]['pagerduty']} == {'opened', 'action', 'escalated', 'resolved',
                                                                       'recovered'}
    assert {event for event in EVENTS if told[event]['statuspage']} == {'opened', 'identified', 'action', 'escalated',
                                                                        'resolved'}
    assert told['action']['body'] == 'A fix has been applied (rollback to v1.2.2); we are monitoring the results.'
    assert told['escalated']['status'] == 'monitoring'


@pytest.mark.parametrize('path', [path for path in LEAVES if under(path, CHANNEL_READS)], ids=name)
def test_channel_texts_with_a_missing_number(path):
    for event in TEXT_EVENTS:
        texts = channel_texts(event, with_none(path))
        assert texts == whole_channel_texts(event), (event, texts)


@pytest.mark.parametrize('role,path', [(role, path) for role in TEMPLATES for path in PARTS
                                       if len(path) == 1 or under(path, READS[role])],
                         ids=lambda value: name(value) if isinstance(value, tuple) else value)
def test_templates_render_with_a_part_absent(role, path):
    assert not NONE_WORD.search(render_template(role, without(path)))


@pytest.mark.parametrize('path', PARTS, ids=name)
def test_builders_write_with_a_part_absent(path):
    for what, text in builders(without(path)).items():
        assert not NONE_WORD.search(text), what


@pytest.mark.parametrize('path', [path for path in PARTS if len(path) == 1 or under(path, CHANNEL_READS) and len(path) < 3],
                         ids=name)
def test_channel_texts_with_a_part_absent(path):
    for event in TEXT_EVENTS:
        assert not NONE_WORD.search(str(channel_texts(event, without(path)))), event


def test_a_failed_source_says_why():
    failed = copy.deepcopy(INCIDENT)
    failed['triage'].update(health={'failed': True, 'msg': 'cannot reach http://gw:8080/health'},
                            error_rate={'failed': True, 'msg': "status_label 'code' matches nothing"})
    triage = render_template('triage', failed)
    assert "Error rate : not measured: status_label 'code' matches nothing" in triage
    assert 'Health     : not checked: cannot reach http://gw:8080/health' in triage


def test_a_bare_incident_renders_everywhere():
    bare = {'service': 'inference-gateway'}
    for role in TEMPLATES:
        assert render_template(role, bare).startswith(('HIGH ERROR RATE', 'DIAGNOSIS', 'SERVICE DOWN',
                                                       'MITIGATION', 'RESOLUTION'))
    assert 'Error rate : not measured' in render_template('triage', bare)
    assert 'Health     : not checked' in render_template('triage', bare)
    assert all(text for text in builders(dict(bare, started_at='2026-11-24T04:05:58Z')).values())
    for event in EVENTS:
        assert not NONE_WORD.search(str(channel_texts(event, bare))), event


# --- Wording that follows the outcome and the mode ----------------------------------------------

def advised(mode='advise'):
    incident = copy.deepcopy(INCIDENT)
    attempt = dict(incident['mitigation']['attempts'][0], decision='advise', acted=False, before={}, after={},
                   commands=[], reason='advice only (mitigate_mode=advise): rollback to v1.2.2')
    del attempt['verify']
    incident.update(outcome='advised', verify=None, mitigation={'mode': mode, 'attempts': [attempt]})
    return incident


def unverified():
    incident = copy.deepcopy(INCIDENT)
    unmeasured = {'recovered': False, 'verdict': 'not_measured', 'measured': False,
                  'unmeasured_reason': 'Prometheus at http://prom:9090 did not answer within 10s'}
    incident['mitigation']['attempts'][0]['verify'] = unmeasured
    incident.update(outcome='escalated', verify=unmeasured,
                    escalation={'reason': 'acted, could not verify: no measurement succeeded'})
    return incident


def weak():
    incident = copy.deepcopy(INCIDENT)
    incident.update(outcome='insufficient_evidence', evidence={'sufficient': False, 'gaps': [
        'too little traffic: 0.05 req/s, under 0.1 req/s', 'the metric matches nothing for /embed']})
    return incident


def test_the_summaries_say_what_advice_means():
    mitigation = render_template('mitigate', advised())
    assert mitigation.splitlines()[:3] == [
        'MITIGATION of inference-gateway (advise mode): ADVISED (a fix is recommended (rollback to v1.2.2), not applied)',
        '1. advise: rollback to v1.2.2 (not applied)',
        '     advice only (mitigate_mode=advise): rollback to v1.2.2']
    assert render_template('resolve', advised()).startswith(
        'RESOLUTION of inference-gateway: ADVISED (a fix is recommended (rollback to v1.2.2), not applied)\n')


def test_the_summaries_say_an_unverified_fix_was_not_verified():
    mitigation = render_template('mitigate', unverified())
    assert mitigation.splitlines()[0] == ('MITIGATION of inference-gateway (auto mode): ESCALATED (a fix was applied '
                                          '(rollback to v1.2.2) and could not be verified)')
    assert '     verify: not measured (Prometheus at http://prom:9090 did not answer within 10s)' in mitigation
    assert 'ESCALATE    : acted, could not verify: no measurement succeeded' in mitigation
    assert 'RESOLVED' not in render_template('resolve', unverified())


def test_the_triage_summary_says_not_enough_evidence_and_what_is_missing():
    triage = render_template('triage', weak())
    assert triage.splitlines()[1] == ('NOT ENOUGH EVIDENCE to act on: too little traffic: 0.05 req/s, under 0.1 req/s; '
                                      'the metric matches nothing for /embed: nothing is done and nobody is paged')
    assert 'Missing    : traces: cannot reach Jaeger at http://127.0.0.1:16686' in triage
    recovered = dict(INCIDENT, outcome='recovered')
    assert render_template('triage', recovered).splitlines()[1] == 'RECOVERED: recovered before the runbook ran: nothing was done'
    # At triage, before the run decides: the triage's judgement alone.
    judged = dict(weak(), outcome='open')
    assert render_template('triage', judged).splitlines()[1] == (
        'NOT ENOUGH EVIDENCE to act on: too little traffic: 0.05 req/s, under 0.1 req/s; the metric matches nothing '
        'for /embed')


@pytest.mark.parametrize('mode,body', [
    ('advise', 'The cause has been identified (deploy); a fix is recommended (rollback to v1.2.2) and awaits a person.'),
    ('approve', 'The cause has been identified (deploy); a fix is recommended (rollback to v1.2.2) and awaits approval.'),
    ('auto', 'The cause has been identified (deploy); we are applying a fix (rollback to v1.2.2).'),
    ('', 'The cause has been identified (deploy); we are working on a fix.')])
def test_the_status_page_follows_the_mode(mode, body):
    incident = dict(INCIDENT, outcome='open', mitigation={'mode': mode})
    assert channel_texts('identified', incident)['body'] == body


def test_the_status_page_says_a_fix_was_applied_only_when_it_was():
    assert channel_texts('action', advised())['body'] == 'A fix is recommended (rollback to v1.2.2), not applied.'
    told = channel_texts('escalated', unverified())
    assert told['body'] == ('A fix has been applied (rollback to v1.2.2) but we could not confirm that it worked; '
                            'engineers are looking into it.')
    assert told['status'] == 'monitoring' and told['pagerduty'] and told['slack']
    escalated = dict(INCIDENT, outcome='escalated', escalation={'reason': 'several services answer 5xx'})
    assert channel_texts('escalated', escalated)['body'] == (
        'More engineers have been brought in to resolve the errors on inference-gateway.')
    inconclusive = dict(INCIDENT, outcome='open', diagnosis={'recommended': {'cause': 'escalate'}})
    assert channel_texts('identified', inconclusive)['body'] == (
        'We are still investigating the cause of the errors on inference-gateway.')


def test_weak_evidence_pages_nobody_and_opens_no_status_page():
    # The alert's own page is acknowledged (the run looked, and an unacknowledged page would
    # escalate by itself); nothing else is paged and no status page incident is opened.
    for judged in (weak(), dict(weak(), outcome='open')):
        told = channel_texts('opened', judged)
        assert (told['slack'], told['slack_template'], told['pagerduty'], told['statuspage']) == (
            True, 'incident', True, False)
    closed = channel_texts('closed', weak())
    assert (closed['slack'], closed['slack_template'], closed['pagerduty'], closed['statuspage']) == (
        True, 'closed', False, False)


def test_a_recovered_service_only_resolves_a_known_page():
    recovered = dict(INCIDENT, outcome='recovered', communication={})
    told = channel_texts('recovered', recovered)
    assert (told['slack'], told['pagerduty'], told['statuspage']) == (False, True, False)
    assert not channel_texts('recovered', recovered, communicate_pagerduty_dedup_key='')['pagerduty']
    assert channel_texts('recovered', recovered, communicate_pagerduty_dedup_key='', communicate_pagerduty_routing_key='',
                         communicate_pagerduty_incident_id='PT4KHLK', communicate_pagerduty_api_token='t')['pagerduty']
    assert not channel_texts('opened', recovered)['statuspage'] and not channel_texts('closed', recovered)['slack']


def test_a_joined_alert_only_replies_in_the_thread():
    joined = dict(INCIDENT, outcome='joined')
    told = channel_texts('joined', joined)
    assert (told['slack'], told['slack_template'], told['pagerduty'], told['statuspage']) == (True, 'joined', False, False)
    assert not channel_texts('joined', dict(joined, communication={}))['slack']  # no thread to reply in
    assert not channel_texts('joined', joined, communicate_slack_token='', communicate_slack_webhook_url='https://hook')['slack']
    assert not channel_texts('closed', joined)['slack']


# --- The filters, through Ansible's templating ----------------------------------------------------

@pytest.mark.parametrize('expression,text', [
    ('19.64 | sre.runbooks.rate', '19.6'), ('4.9 | sre.runbooks.rate', '4.90'), ('0.05 | sre.runbooks.rate', '0.05'),
    ('0.3333 | sre.runbooks.rate', '0.333'), ('0.0001234 | sre.runbooks.rate', '0.000123'), ('0 | sre.runbooks.rate', '0'),
    ('0.9999 | sre.runbooks.rate', '1.00'), ('none | sre.runbooks.rate', 'no traffic'),
    ('0.05 | sre.runbooks.rate(unit=true)', '0.05 req/s'), ('none | sre.runbooks.rate(unit=true)', 'no traffic'),
    ('13.954 | sre.runbooks.percent', '14.0%'), ('13.954 | sre.runbooks.percent(2)', '13.95%'),
    ('12.0 | sre.runbooks.percent(2, trim=true)', '12%'), ('none | sre.runbooks.percent', 'n/a'),
    ('0.89 | sre.runbooks.share', '89%'), ('0.0123 | sre.runbooks.share(1)', '1.2%'), ('none | sre.runbooks.share', 'n/a'),
    ('46.2 | sre.runbooks.ms', '46 ms'), ('none | sre.runbooks.ms', 'n/a'),
    ('4.0 | sre.runbooks.seconds', '4 s'), ('2.5 | sre.runbooks.seconds', '2.5 s'), ('none | sre.runbooks.seconds', 'n/a'),
    ('3.0 | sre.runbooks.count', '3'), ('none | sre.runbooks.count', 'n/a'),
    ("'0.05' | sre.runbooks.rate", '0.05'), ("'soon' | sre.runbooks.percent", 'n/a'), ('true | sre.runbooks.count', 'n/a'),
    # An absent figure, as a template that forgot its default would pass it.
    ('incident.nothing_here | sre.runbooks.rate', 'no traffic'), ('incident.nothing | sre.runbooks.percent(2)', 'n/a'),
    ("{'outcome': 'advised'} | sre.runbooks.outcome_words", 'a fix is recommended (no action), not applied'),
    ("{'outcome': 'advised', 'mitigation': {'attempts': [{'description': 'roll back', 'decision': 'advise', "
     "'reason': 'not approved: denied'}]}} | sre.runbooks.outcome_words", 'a fix is recommended (roll back), not approved, not applied'),
    ("'advised' | sre.runbooks.outcome_words", '')])
def test_filters(expression, text):
    templar = Templar(loader=DataLoader(), variables={'incident': {}})
    assert templar.template(trust_as_template('{{ %s }}' % expression)) == text


def test_the_diagnosis_says_what_a_database_action_disrupts():
    incident = {'service': 'orders', 'diagnosis': {
        'summary': 'database: end the session idle in transaction of nightly-report (pid 501) blocking orders',
        'action': {'name': 'terminate_sessions', 'disruptive': True,
                   'description': 'end the session idle in transaction of nightly-report (pid 501) blocking orders'},
        'recommended': {'runbook_step': 'Database Issues'}, 'causes': []}}
    line = render_template('diagnose', incident).splitlines()[1]
    assert line == ("Recommended : end the session idle in transaction of nightly-report (pid 501) blocking orders "
                    "(rolls back another application's transaction)  [Database Issues]")
    incident['diagnosis']['action'] = {'name': 'rollback', 'disruptive': True, 'description': 'rollback to v1.2.2'}
    assert '(interrupts the service)' in render_template('diagnose', incident).splitlines()[1]

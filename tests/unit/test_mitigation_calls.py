"""Each action as the module call the role mitigate dispatches (module_utils/analysis/actions.py),
on compose and on Kubernetes, from the diagnosis' plan and from the explicit actions the
per-option playbooks give; and its disruption class, the one list the gates read."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.actions import DISRUPTION, DISRUPTIVE, action_calls, disruption
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import mitigation_step
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import diagnose
from test_diagnosis import GW, ONSET, groups
from test_diagnosis import incident as diagnosis_incident

COMPOSE = 'sre.runbooks.compose_service'
ROLLOUT = 'sre.runbooks.k8s_rollout'
WORKLOAD = 'sre.runbooks.k8s_workload'
STARTED = '2026-12-04T10:00:00Z'
EVERY_ACTION = ['rollback', 'resources', 'feature_flag', 'circuit_breaker', 'restart', 'recreate',
                'scale', 'free_port']


def incident(platform='compose', triage=None, investigate=None, **top):
    """The diagnosis tests' incident (a critical error rate on complete evidence) on `platform`,
    started at STARTED; parts override sections."""
    inc = diagnosis_incident()
    inc.update(platform=platform, started_at=STARTED)
    inc['triage'].update(triage or {})
    inc['investigate'].update(investigate or {})
    inc.update(top)
    return inc


def logs(*messages):
    return {'top_messages': [{'pattern': m, 'count': c} for m, c in messages], 'partial': False}


DOWN = {'service_down': True, 'health': {'all_ok': False, 'failed_checks': ['health']},
        'error_rate': {'verdict': 'no_traffic', 'message': 'no requests', 'partial': False}}

# The incident behind each action the diagnosis plans, as the triage and investigate record it.
SCENARIOS = {
    'rollback': dict(triage={
        'changes': [{'kind': 'deploy', 'time': ONSET - 4, 'time_iso': 'T', 'seconds_before_onset': 4,
                     'image': GW + 'v1.2.3', 'previous_image': GW + 'v1.2.2',
                     'summary': 'image v1.2.2 -> v1.2.3'}],
        'rollback_revision': 7,
        'error_rate': {'verdict': 'critical', 'error_percent': 12.0, 'shape': 'spike', 'onset': ONSET,
                       'window_seconds': 30, 'partial': False}}),
    'feature_flag': dict(triage={'error_rate': {
        'verdict': 'critical', 'error_percent': 12.0, 'shape': 'spike', 'onset': ONSET,
        'window_seconds': 30, 'concentrated': True, 'top_group': '/predict',
        'groups': groups('/predict'), 'partial': False}}),
    'circuit_breaker': dict(investigate={
        'dependencies': {'failing': ['model-service'], 'names': ['model-service']},
        'logs': logs(('upstream model-service timed out after <num>s', 90))}),
    'restart': dict(investigate={'dependencies': {'failing': [], 'names': ['db'], 'checks': [
        {'name': 'pools', 'ok': True, 'exhausted_pools': ['pg_pool{db=orders}']}]}}),
    'recreate': dict(triage=DOWN, investigate={
        'logs': logs(('config error: MODEL_SERVICE_URL <str> is not a URL', 4))}),
    'resources': dict(investigate={'resources': {
        'max_cpu_percent': 30.0, 'max_memory_percent': 99.0, 'oom_kills': 2, 'restarts': 2,
        'throttled': False, 'reasons': ['memory 99% of its limit']}}),
    'free_port': dict(triage=DOWN, investigate={
        'logs': logs(('cannot bind 127.0.0.1:<num>: [Errno <num>] Address already in use', 7)),
        'resources': {'restarts': 5, 'oom_kills': 0}}),
}

# (compose call, Kubernetes call) of each: module and parameters, None where no module does it.
EXPECTED = {
    'rollback': ((COMPOSE, {'state': 'rolled_back', 'image': GW + 'v1.2.2'}),
                 (ROLLOUT, {'state': 'undone', 'to_revision': 7})),
    'feature_flag': ((COMPOSE, {'state': 'env', 'env': {'FEATURE_ENDPOINT_PREDICT_ENABLED': 'false'}}),
                     (WORKLOAD, {'env': {'FEATURE_ENDPOINT_PREDICT_ENABLED': 'false'}})),
    'circuit_breaker': ((COMPOSE, {'state': 'env', 'env': {'CIRCUIT_BREAKER_THRESHOLD': '5',
                                                           'CIRCUIT_BREAKER_TIMEOUT': '60'}}),
                        (WORKLOAD, {'env': {'CIRCUIT_BREAKER_THRESHOLD': '5', 'CIRCUIT_BREAKER_TIMEOUT': '60'}})),
    'restart': ((COMPOSE, {'state': 'restarted', 'if_started_before': STARTED}),
                (ROLLOUT, {'state': 'restarted', 'if_restarted_before': STARTED})),
    'recreate': ((COMPOSE, {'state': 'recreated', 'if_started_before': STARTED}),
                 (ROLLOUT, {'state': 'restarted', 'if_restarted_before': STARTED})),
    'resources': ((COMPOSE, {'state': 'resources', 'memory_factor': 2}),
                  (WORKLOAD, {'memory_factor': 2})),
    'free_port': (None, None),
}
CLASS = {'rollback': 'disruptive', 'free_port': 'disruptive', 'restart': 'restart', 'recreate': 'restart',
         'resources': 'none', 'feature_flag': 'none', 'circuit_breaker': 'none', 'scale': 'none',
         'terminate_sessions': 'disruptive', 'cancel_queries': 'disruptive', 'restore_config_key': 'none'}


def expected_calls(name):
    return {platform: {'module': call[0], 'params': call[1], 'disruption': CLASS[name]}
            for platform, call in zip(('compose', 'kubernetes'), EXPECTED[name]) if call}


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_the_diagnosis_plans_each_action_as_the_call_on_each_platform(name):
    d = diagnose(incident(**SCENARIOS[name]), {'port': 8000, 'platform': 'compose'})
    action = d['plan'][0]['action']
    assert action['name'] == name
    assert action['disruption'] == CLASS[name]
    assert action['disruptive'] is (CLASS[name] != 'none')
    assert action['calls'] == expected_calls(name)
    assert d['action'] is action


@pytest.mark.parametrize('name', sorted(SCENARIOS))
@pytest.mark.parametrize('platform', ['compose', 'kubernetes'])
def test_the_step_carries_the_planned_call_of_its_platform(name, platform):
    inc = incident(**SCENARIOS[name])
    inc['diagnosis'] = diagnose(inc, {'port': 8000, 'platform': 'compose'})
    step = mitigation_step(inc, 1, mode='auto', allowed_actions=EVERY_ACTION, platform=platform)
    call = expected_calls(name).get(platform)
    assert step['call'] == call
    if call:
        assert step['decision'] == 'act'
    else:
        assert step['decision'] == 'escalate'
        assert step['reason'] == ('free port 8000 held by another process, then restart is left to a human '
                                  '(no module of the collection does it on %s)' % platform)


def test_cpu_saturation_raises_the_cpu_limit_on_compose_and_scales_out_on_kubernetes():
    hot = {'resources': {'max_cpu_percent': 98.0, 'max_memory_percent': 40.0, 'oom_kills': 0,
                         'restarts': 0, 'throttled': True, 'reasons': ['cpu 98% of its 1.0-core limit']}}
    compose = diagnose(incident(investigate=hot))['action']
    assert compose['calls'] == {
        'compose': {'module': COMPOSE, 'params': {'state': 'resources', 'cpu_factor': 2}, 'disruption': 'none'},
        'kubernetes': {'module': WORKLOAD, 'params': {'cpu_factor': 2}, 'disruption': 'none'}}
    inc = incident('kubernetes', investigate=hot, service_down={'checks': {
        'deployment': {'name': 'inference-gateway', 'replicas': 3}}})
    scale = diagnose(inc)['action']
    assert (scale['name'], scale['params'], scale['disruption']) == ('scale', {'replicas': 5}, 'none')
    # A count is passed as the string k8s_workload takes (a count, or +2); no scale on compose.
    assert scale['calls'] == {'kubernetes': {'module': WORKLOAD, 'params': {'replicas': '5'}, 'disruption': 'none'}}
    inc['diagnosis'] = diagnose(inc)
    assert mitigation_step(inc, 1, mode='auto', allowed_actions=EVERY_ACTION, platform='kubernetes')['call'] == \
        scale['calls']['kubernetes']
    on_compose = mitigation_step(inc, 1, mode='auto', allowed_actions=EVERY_ACTION, platform='compose')
    assert on_compose['decision'] == 'escalate' and on_compose['call'] is None
    assert on_compose['reason'] == ('scale inference-gateway from 3 to 5 replicas is left to a human '
                                    '(no module of the collection does it on compose)')


# The explicit actions of the per-option playbooks, as Ansible renders their mitigate_action.
EXPLICIT = [
    ('rollback.yml', {'name': 'rollback', 'params': {'to_image': GW + 'v1.2.2', 'to_revision': None}},
     {'state': 'rolled_back', 'image': GW + 'v1.2.2'}, {'state': 'undone', 'to_revision': 7}),
    ('rollback.yml -e image=v1.2.1 -e revision=3',
     {'name': 'rollback', 'params': {'to_image': 'v1.2.1', 'to_revision': '3'}},
     {'state': 'rolled_back', 'image': 'v1.2.1'}, {'state': 'undone', 'to_revision': '3'}),
    ('rollback.yml, nothing known', {'name': 'rollback', 'params': {'to_image': None, 'to_revision': None}},
     {'state': 'rolled_back'}, {'state': 'undone', 'to_revision': 7}),
    ('restart.yml', {'name': 'restart', 'params': {}},
     {'state': 'restarted', 'if_started_before': STARTED}, {'state': 'restarted', 'if_restarted_before': STARTED}),
    ('restart.yml -e force_recreate=true', {'name': 'recreate', 'params': {}},
     {'state': 'recreated', 'if_started_before': STARTED}, {'state': 'restarted', 'if_restarted_before': STARTED}),
    ('resources.yml -e memory=512m -e cpus=2',
     {'name': 'resources', 'params': {'memory': '512m', 'cpus': '2', 'memory_factor': None, 'cpu_factor': None}},
     {'state': 'resources', 'memory': '512m', 'cpus': '2'}, {'resources': {'limits': {'memory': '512m', 'cpu': '2'}}}),
    ('resources.yml -e memory_factor=2 -e cpu_factor=1.5',
     {'name': 'resources', 'params': {'memory': None, 'cpus': None, 'memory_factor': '2', 'cpu_factor': '1.5'}},
     {'state': 'resources', 'memory_factor': '2', 'cpu_factor': '1.5'}, {'memory_factor': '2', 'cpu_factor': '1.5'}),
    ('feature_flag.yml -e flag=FEATURE_X', {'name': 'feature_flag', 'params': {'env': {'FEATURE_X': 'false'}}},
     {'state': 'env', 'env': {'FEATURE_X': 'false'}}, {'env': {'FEATURE_X': 'false'}}),
    ('circuit_breaker.yml -e enabled=false',
     {'name': 'circuit_breaker', 'params': {'env': {'CIRCUIT_BREAKER_THRESHOLD': None, 'CIRCUIT_BREAKER_TIMEOUT': None}}},
     {'state': 'env', 'env': {'CIRCUIT_BREAKER_THRESHOLD': None, 'CIRCUIT_BREAKER_TIMEOUT': None}},
     {'env': {'CIRCUIT_BREAKER_THRESHOLD': None, 'CIRCUIT_BREAKER_TIMEOUT': None}}),
    ('scale.yml -e replicas=+2', {'name': 'scale', 'params': {'replicas': '+2'}}, None, {'replicas': '+2'}),
]


@pytest.mark.parametrize('playbook, action, compose, kubernetes', EXPLICIT, ids=[e[0] for e in EXPLICIT])
def test_an_explicit_action_is_called_as_a_planned_one(playbook, action, compose, kubernetes):
    # A service that looks healthy, never diagnosed: the operator's word, with the triage's data.
    inc = incident(triage={'rollback_revision': 7, 'error_rate': {'verdict': 'ok', 'partial': False}})
    action = dict(action, description=playbook)
    for platform, params in (('compose', compose), ('kubernetes', kubernetes)):
        step = mitigation_step(inc, 1, explicit_action=action, mode='auto', allowed_actions=EVERY_ACTION,
                               platform=platform)
        if params is None:
            assert step['decision'] == 'escalate' and step['call'] is None
            continue
        module = COMPOSE if platform == 'compose' else (
            ROLLOUT if action['name'] in ('rollback', 'restart', 'recreate') else WORKLOAD)
        assert step['decision'] == 'act'
        assert step['call'] == {'module': module, 'params': params, 'disruption': disruption(action['name'])}


def test_without_a_platform_the_incidents_is_taken_else_compose_is():
    action = {'name': 'restart', 'params': {}, 'description': 'restart'}
    on_k8s = mitigation_step(incident('kubernetes'), 1, explicit_action=action, mode='auto', allowed_actions=['restart'])
    assert on_k8s['call']['module'] == ROLLOUT
    bare = incident()
    del bare['platform']
    assert mitigation_step(bare, 1, explicit_action=action, mode='auto', allowed_actions=['restart'])['call'] == {
        'module': COMPOSE, 'params': {'state': 'restarted', 'if_started_before': STARTED}, 'disruption': 'restart'}


def test_no_start_known_restarts_without_the_once_per_incident_bound():
    assert action_calls({'name': 'restart'}, {}) == {
        'compose': {'module': COMPOSE, 'params': {'state': 'restarted'}, 'disruption': 'restart'},
        'kubernetes': {'module': ROLLOUT, 'params': {'state': 'restarted'}, 'disruption': 'restart'}}


def test_the_disruption_classes_are_the_one_list_of_disruptive_actions():
    assert DISRUPTION == dict(CLASS, escalate='none')
    assert DISRUPTIVE == frozenset(['rollback', 'free_port', 'restart', 'recreate', 'terminate_sessions',
                                    'cancel_queries'])
    assert disruption('something new') == 'disruptive'  # unknown: never on partial evidence
    assert action_calls({'name': 'free_port', 'params': {'port': 8000}}, incident()) == {}
    assert action_calls({'name': 'escalate', 'params': {'reason': 'x'}}, incident()) == {}


@pytest.mark.parametrize('name, refused', [
    ('rollback', True), ('restart', True), ('recreate', True), ('free_port', True),
    ('resources', False), ('feature_flag', False), ('circuit_breaker', False)])
def test_on_partial_evidence_only_actions_of_class_none_are_taken(name, refused):
    inc = incident(diagnosis={'partial': True, 'missing_evidence': ['logs: cannot reach the Docker engine'],
                              'plan': [{'action': {'name': name, 'description': name, 'params': {'env': {}}}}]})
    step = mitigation_step(inc, 1, mode='auto', allowed_actions=EVERY_ACTION, platform='compose')
    if name == 'free_port':
        assert step['decision'] == 'escalate'  # no module frees a port: before the gate
    elif refused:
        assert step['decision'] == 'insufficient'
        assert step['reason'] == ('not enough evidence to %s, which interrupts the service: '
                                  'logs: cannot reach the Docker engine' % name)
    else:
        assert step['decision'] == 'act'
    assert (disruption(name) != 'none') is refused


def test_the_diagnosis_never_recommends_a_restart_on_a_partial_error_rate():
    partial = incident(**SCENARIOS['restart'])
    partial['triage']['error_rate']['partial'] = True
    d = diagnose(partial)
    assert d['plan'] == []
    assert d['refused'] == ['restart to reset the connection pools not recommended: the error rate is partial']
    assert d['action']['calls'] == {} and d['action']['disruption'] == 'none'

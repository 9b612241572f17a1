"""The runbook's decisions (module_utils/analysis/decisions.py): weak evidence never acts nor pages."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import confirmed_step, escalation_reasons, evidence, mitigation_step

ROLLBACK = {'name': 'rollback', 'description': 'rollback to v1.2.2', 'disruptive': True, 'params': {}}
FLAG = {'name': 'feature_flag', 'description': 'disable FEATURE_X', 'disruptive': False, 'params': {}}
ALLOWED = ['rollback', 'feature_flag', 'circuit_breaker', 'restart', 'recreate', 'resources']


def incident(verdict='critical', partial=False, down=False, plan=(ROLLBACK,), missing=(), **rate):
    error_rate = dict({'verdict': verdict, 'partial': partial, 'error_percent': 20.0,
                       'message': 'svc: 20.00%% (%s)' % verdict}, **rate)
    return {'triage': {'error_rate': error_rate, 'service_down': down, 'health': {'checks': []}},
            'diagnosis': {'plan': [{'action': a} for a in plan], 'partial': bool(missing),
                          'missing_evidence': list(missing),
                          'action': plan[0] if plan else {'name': 'escalate', 'params': {'reason': 'no cause stands out'}}},
            'started_at': '2026-12-04T10:00:00Z'}


@pytest.mark.parametrize('verdict, gap', [
    ('low_traffic', 'too little traffic to judge'),
    ('no_traffic', 'no traffic to judge'),
])
def test_little_or_no_traffic_is_not_enough_evidence(verdict, gap):
    proof = evidence(incident(verdict))
    assert not proof['sufficient'] and not proof['healthy']
    assert proof['gaps'][0].startswith(gap)
    step = mitigation_step(incident(verdict), 1, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'insufficient'
    assert step['reason'].startswith('not enough evidence: ' + gap)


def test_a_failed_or_partial_measurement_is_not_enough_evidence():
    failed = incident()
    failed['triage']['error_rate'] = {'failed': True, 'msg': "status_label 'code' matches nothing"}
    assert evidence(failed)['gaps'] == ["the error rate was not measured: status_label 'code' matches nothing"]
    assert mitigation_step(failed, 1, mode='auto', allowed_actions=ALLOWED)['decision'] == 'insufficient'
    partial = incident(partial=True, query_warnings=['a store did not answer'])
    assert evidence(partial)['gaps'] == ['Prometheus warned that the figures may be partial: a store did not answer']


def test_a_service_that_is_down_is_evidence_by_itself():
    down = incident('no_traffic', down=True)
    assert evidence(down)['sufficient']
    assert mitigation_step(down, 1, mode='auto', allowed_actions=ALLOWED)['decision'] == 'act'


def test_healthy_when_measured_ok_on_enough_traffic():
    assert evidence(incident('ok'))['healthy']
    assert not evidence(incident('ok', partial=True))['healthy']
    assert not evidence(incident('ok', down=True))['healthy']


def test_a_health_module_that_failed_is_missing_not_weak():
    inc = incident()
    inc['triage']['health'] = {'failed': True, 'msg': 'invalid check'}
    proof = evidence(inc, sources={'health': inc['triage']['health']})
    assert proof['sufficient'] and proof['missing'] == ['health: invalid check']


def test_after_an_action_that_did_not_help_a_refusal_is_an_escalation():
    weak = incident(missing=['logs: cannot reach the Docker engine'], plan=(FLAG, ROLLBACK))
    weak['mitigation'] = {'attempts': [{'acted': True, 'action': FLAG}]}
    step = mitigation_step(weak, 2, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'escalate' and 'interrupts the service' in step['reason']


def test_failed_sources_are_named():
    proof = evidence(incident(), sources={'recent changes': {'failed': True, 'msg': 'cannot reach the Docker engine'},
                                          'health': {'checks': []}})
    assert proof['missing'] == ['recent changes: cannot reach the Docker engine']
    assert proof['sufficient']


def test_modes_and_guardrails():
    assert mitigation_step(incident(), 1, mode='advise', allowed_actions=ALLOWED)['decision'] == 'advise'
    assert mitigation_step(incident(), 1, mode='auto', allowed_actions=ALLOWED) == {
        'attempt': 1, 'action': ROLLBACK, 'decision': 'act', 'reason': 'rollback to v1.2.2',
        'call': {'module': 'sre.runbooks.compose_service', 'params': {'state': 'rolled_back'},
                 'disruption': 'disruptive'}}
    left = mitigation_step(incident(), 1, mode='auto', allowed_actions=['feature_flag'])
    assert left['decision'] == 'escalate' and 'left to a human' in left['reason']
    assert mitigation_step(incident(), 2, mode='auto', allowed_actions=ALLOWED)['decision'] == 'escalate'


def test_a_disruptive_action_on_partial_evidence_is_not_enough_evidence_not_an_escalation():
    weak = incident(missing=['logs: cannot reach the Docker engine'])
    step = mitigation_step(weak, 1, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'insufficient'
    assert 'interrupts the service: logs: cannot reach the Docker engine' in step['reason']
    assert mitigation_step(weak, 1, mode='auto', allowed_actions=ALLOWED, allow_partial=True)['decision'] == 'act'
    flag = incident(plan=(FLAG,), missing=['logs: gone'])
    assert mitigation_step(flag, 1, mode='auto', allowed_actions=ALLOWED)['decision'] == 'act'


def test_no_action_because_sources_failed_is_not_enough_evidence():
    blind = incident(plan=(), missing=['recent changes: cannot reach the Docker engine'])
    step = mitigation_step(blind, 1, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'insufficient'
    assert step['reason'] == ('not enough evidence to choose an action (no cause stands out): '
                              'recent changes: cannot reach the Docker engine')
    assert mitigation_step(incident(plan=()), 1, mode='auto', allowed_actions=ALLOWED)['decision'] == 'escalate'


def test_an_explicit_action_is_taken_on_the_operators_word():
    step = mitigation_step(incident('low_traffic'), 1, explicit_action=FLAG, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'act'


def test_escalation_at_diagnosis():
    several = escalation_reasons(incident(), 'diagnosis', affected_services=['a', 'b'])
    assert several == ['several services answer 5xx: a, b']
    db = incident()
    db['diagnosis'].update(recommended={'database': True}, summary='escalate: pool exhausted')
    assert escalation_reasons(db, 'diagnosis') == ['the database is suspected: escalate: pool exhausted']
    db['triage']['error_rate']['verdict'] = 'low_traffic'
    assert escalation_reasons(db, 'diagnosis') == []


def test_escalation_at_the_outcome():
    stuck = dict(incident(), outcome='advised', verify={'last_percent': 25.0})
    stuck['triage']['error_rate']['error_percent'] = 30.0
    assert escalation_reasons(stuck, 'outcome', elapsed_seconds=1200) == [
        'no improvement within 15m: 25.0% errors, 30.0% at triage']
    assert escalation_reasons(stuck, 'outcome', elapsed_seconds=600) == []
    for quiet in ('resolved', 'recovered', 'joined', 'no_action'):
        assert escalation_reasons(dict(stuck, outcome=quiet), 'outcome', elapsed_seconds=1200) == []
    # Not enough evidence to act on a proven incident: escalated when nothing improves in time.
    blocked = dict(stuck, outcome='insufficient_evidence')
    assert escalation_reasons(blocked, 'outcome', elapsed_seconds=1200) == [
        'no improvement within 15m: 25.0% errors, 30.0% at triage']
    unproven = dict(blocked, triage=dict(blocked['triage'], error_rate=dict(stuck['triage']['error_rate'], verdict='low_traffic')))
    assert escalation_reasons(unproven, 'outcome', elapsed_seconds=1200) == []
    unverified = dict(incident(), outcome='escalated', escalation={'reason': 'acted, could not verify: no answer'})
    assert escalation_reasons(unverified, 'outcome') == ['acted, could not verify: no answer']
    told = dict(unverified, escalation={'reason': 'x', 'told': True})
    assert escalation_reasons(told, 'outcome', elapsed_seconds=1200) == []


@pytest.mark.parametrize('measurement, decision, reason', [
    ({'failed': True, 'msg': 'Prometheus at http://127.0.0.1:9090 did not answer: connection refused'}, 'insufficient',
     'not confirmed before acting: the error rate was not measured: '
     'Prometheus at http://127.0.0.1:9090 did not answer: connection refused'),
    ({'verdict': 'low_traffic', 'message': '0.02 req/s'}, 'insufficient',
     'not confirmed before acting: too little traffic to judge: 0.02 req/s'),
    ({'verdict': 'ok', 'error_percent': 0.4}, 'none',
     'the error rate is back under the thresholds since the diagnosis (0.4%): nothing to mitigate'),
    ({'verdict': 'critical', 'error_percent': 19.5}, 'act', 'rollback to v1.2.2'),
])
def test_an_action_is_taken_only_while_the_error_rate_measured_again_bears_it_out(measurement, decision, reason):
    step = mitigation_step(incident(), 1, mode='auto', allowed_actions=ALLOWED)
    confirmed = confirmed_step(step, measurement, incident())
    assert (confirmed['decision'], confirmed['reason']) == (decision, reason)
    assert confirmed['action'] == step['action'] and confirmed['call'] == step['call']


def test_a_service_found_down_and_other_decisions_need_no_confirmation():
    lost = {'failed': True, 'msg': 'connection refused'}
    down = mitigation_step(incident(down=True), 1, mode='auto', allowed_actions=ALLOWED)
    assert confirmed_step(down, lost, incident(down=True))['decision'] == 'act'
    advice = mitigation_step(incident(), 1, mode='advise', allowed_actions=ALLOWED)
    assert confirmed_step(advice, lost, incident()) == advice
    step = mitigation_step(incident(), 1, mode='auto', allowed_actions=ALLOWED)
    assert confirmed_step(step, {'skipped': True}, incident()) == step


PAYMENTS = {'kind': 'dependency', 'name': 'payments', 'services': ['a', 'b', 'c'],
            'evidence': ['3 failing services depend on payments: a, b, c', 'payments answers 5xx itself (critical)']}


def in_storm(service, role, leader, cause='payments', failing=('a', 'b', 'c')):
    return dict(incident(), service=service, storm={'role': role, 'leader': leader, 'covered': False,
                                                    'failing': list(failing), 'shared_cause': cause and PAYMENTS})


def test_a_service_that_fails_through_the_shared_cause_is_not_acted_on():
    step = mitigation_step(in_storm('a', 'shared', 'a'), 1, mode='auto', allowed_actions=ALLOWED)
    assert step['decision'] == 'escalate'
    assert step['reason'] == ("the cause is not this service's own: dependency payments fails (payments answers "
                              "5xx itself (critical)), and 3 services fail through it: a, b, c")
    # Its own cause, or the operator's word, acts as ever.
    assert mitigation_step(in_storm('d', 'own', 'a'), 1, mode='auto', allowed_actions=ALLOWED)['decision'] == 'act'
    assert mitigation_step(in_storm('a', 'shared', 'a'), 1, explicit_action=FLAG, mode='auto',
                           allowed_actions=ALLOWED)['decision'] == 'act'


def test_a_storm_escalates_once_by_its_leader_naming_the_cause():
    assert escalation_reasons(in_storm('a', 'shared', 'a'), 'diagnosis', affected_services=['a', 'b', 'c']) == [
        '3 services fail through dependency payments: 3 failing services depend on payments: a, b, c; '
        'payments answers 5xx itself (critical)']
    # The others of the storm (covered, or failing on their own) do not page for it.
    assert escalation_reasons(in_storm('d', 'own', 'a'), 'diagnosis', affected_services=['a', 'b', 'c', 'd']) == []
    # Nor does a leader whose own error rate was not measured: its document says nobody was paged.
    blind = in_storm('a', 'shared', 'a')
    blind['triage']['error_rate'] = {'failed': True, 'msg': "group_by 'endpoint' matches nothing"}
    assert escalation_reasons(blind, 'diagnosis') == []


def test_a_storm_without_a_shared_cause_escalates_once_by_its_first_failing_service():
    assert escalation_reasons(in_storm('a', 'own', None, cause=None), 'diagnosis') == [
        'several services answer 5xx, with no shared cause found: a, b, c']
    assert escalation_reasons(in_storm('b', 'own', None, cause=None), 'diagnosis') == []

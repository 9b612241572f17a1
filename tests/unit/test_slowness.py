"""The High Response Time runbook's rules (analysis/slowness.py, through the diagnose module's body),
and the decisions on an incident whose symptom is the response time."""

import copy

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import confirmed_step, escalation_reasons, evidence, mitigation_step
from ansible_collections.sre.runbooks.plugins.module_utils.diagnose import collect

ONSET = 1000.0
GW = 'sre-demo/inference-gateway:'
PARAMS = {'platform': None, 'port': None, 'cpu_percent': 90.0, 'memory_percent': 90.0, 'max_deploy_gap': '30m',
          'database_idle_after': '10s', 'min_confidence': 0.5, 'feature_flag_pattern': 'FEATURE_ENDPOINT_{name}_ENABLED',
          'circuit_breaker_env': {'CIRCUIT_BREAKER_THRESHOLD': 5}, 'scale_step': 1, 'max_replicas': 10}


def group(name, verdict, reasons=()):
    return {'value': name, 'verdict': verdict, 'reasons': list(reasons)}


SLOW = {'verdict': 'slow', 'onset': ONSET, 'shape': 'spike', 'window_seconds': 30, 'verdict_quantile': 'p99',
        'overall': {'verdict': 'slow', 'reasons': ['p99 612 ms over the target 300 ms'],
                    'percentiles': {'p99': {'seconds': 0.612}}},
        'groups': [group('/predict', 'slow', ['p99 990 ms is 9.9x its baseline 100 ms']), group('/embed', 'ok')],
        'slow_groups': ['/predict'], 'partial': False}


def incident(latency=None, changes=(), traces=None, resources=None, failing=()):
    return copy.deepcopy({
        'service': 'inference-gateway', 'platform': 'compose', 'symptom': 'latency',
        'triage': {'service_down': False, 'health': {'all_ok': True, 'failed_checks': [], 'checks': []},
                   'latency': SLOW if latency is None else latency,
                   'error_rate': {'verdict': 'ok', 'error_percent': 0.0, 'partial': False},
                   'changes': list(changes)},
        'investigate': {
            'logs': {'top_messages': [], 'partial': False},
            'resources': resources or {'max_cpu_percent': 20.0, 'max_memory_percent': 40.0, 'oom_kills': 0,
                                       'restarts': 0, 'throttled': False, 'reasons': []},
            'dependencies': {'failing': list(failing), 'names': ['model-service', 'feature-store']},
            'traces': traces or {'error_sources': [], 'slow_calls': [], 'dependency_suspect': None}},
    })


def deploy(gap, image='v1.2.4', previous='v1.2.2'):
    return {'kind': 'deploy', 'time': ONSET - gap, 'time_iso': 'T', 'seconds_before_onset': gap,
            'image': GW + image, 'previous_image': GW + previous, 'summary': 'image %s -> %s' % (previous, image)}


def slow_calls(peer='model-service', timeouts=0, errors=0):
    return {'error_sources': [], 'dependency_suspect': None, 'slow_calls': [
        {'service': 'inference-gateway', 'operation': 'POST /predict', 'peer': peer, 'count': 40,
         'p95_ms': 640.0, 'max_ms': 900.0, 'timeouts': timeouts, 'errors': errors}]}


def diagnosis(inc):
    return collect(dict(PARAMS, incident=inc), print)


def test_a_deploy_right_before_the_slowdown_is_rolled_back_and_its_version_never_returned_to():
    d = diagnosis(incident(changes=[deploy(20)]))
    assert d['recommended']['cause'] == 'deploy' and d['recommended']['confidence'] == 0.85
    assert d['action']['name'] == 'rollback'
    assert d['action']['params'] == {'to_image': GW + 'v1.2.2', 'from_image': GW + 'v1.2.4'}
    assert d['recommended']['evidence'][:3] == [
        'the p99 rose 20 s after the deploy image v1.2.2 -> v1.2.4 at T', 'p99 612 ms over the target 300 ms',
        '/predict: p99 990 ms is 9.9x its baseline 100 ms']
    assert d['ranking']['by'] == 'confidence'
    # A version this incident rolled back from is never returned to.
    again = incident(changes=[deploy(20, image='v1.2.5', previous='v1.2.4')])
    again['mitigation'] = {'attempts': [{'acted': True, 'action': {'name': 'rollback'}, 'before': {'image': GW + 'v1.2.4'}}]}
    withheld = diagnosis(again)
    assert withheld['action']['name'] == 'escalate' and withheld['plan'] == []
    assert withheld['causes'][0]['evidence'][-1] == (
        'no rollback: the version before it, v1.2.4, is known bad (a rollback of this incident moved away from it)')


def test_a_deploy_long_before_the_slowdown_does_not_hold_and_one_after_it_is_ruled_out():
    late = diagnosis(incident(changes=[deploy(1200)]))
    assert late['causes'][0]['confidence'] == 0.5 and late['action']['name'] == 'rollback'
    after = diagnosis(incident(changes=[deploy(-60)]))
    assert after['action']['name'] == 'escalate' and after['causes'] == []
    assert after['ruled_out'] == ['deploy image v1.2.2 -> v1.2.4 at T came 60 s after the slowdown began: not its cause']
    assert after['recommended']['evidence'] == ['no cause stands out in the evidence']


def test_a_slow_dependency_goes_to_its_owner_unless_its_calls_fail():
    slow = diagnosis(incident(traces=slow_calls()))
    assert slow['recommended']['cause'] == 'escalate'
    assert slow['causes'][0]['evidence'] == ['traces: 40 slow calls to model-service (p95 640.0 ms, at most 900.0 ms)']
    assert slow['recommended']['evidence'] == [
        'escalate to the owner of model-service: its calls are slow, and a circuit breaker trips on failures, not on slowness']
    timing_out = diagnosis(incident(traces=slow_calls(timeouts=7)))
    assert timing_out['action']['name'] == 'circuit_breaker'
    assert timing_out['action']['params']['dependency'] == 'model-service'
    assert timing_out['recommended']['evidence'][-1] == '7 of those calls timed out or failed'
    # With a deploy as well, the dependency's own slowness weighs against the deploy.
    both = diagnosis(incident(changes=[deploy(20)], traces=slow_calls(errors=3)))
    assert [c['cause'] for c in both['causes']] == ['dependency', 'deploy']
    assert both['causes'][1]['confidence'] == 0.55


def test_cpu_throttling_raises_the_limit():
    d = diagnosis(incident(resources={'max_cpu_percent': 99.0, 'max_memory_percent': 40.0, 'oom_kills': 0, 'restarts': 0,
                                      'throttled': True, 'reasons': ['cpu 99% of its limit, throttled in 80% of periods']}))
    assert d['recommended']['cause'] == 'saturation' and d['action']['name'] == 'resources'
    assert d['action']['params'] == {'cpu_factor': 2}


def test_one_slow_endpoint_with_nothing_to_blame_is_escalated_naming_it():
    latency = dict(SLOW, overall=dict(SLOW['overall'], verdict='ok'))
    d = diagnosis(incident(latency=latency))
    assert d['action']['name'] == 'escalate'
    assert d['recommended']['evidence'] == ['escalate: only /predict is slow, with no change to blame']


def test_weak_latency_evidence_is_said_and_never_acted_on():
    weak = {'verdict': 'insufficient_evidence', 'message': 'weak evidence, under min_request_rate 0.1/s: too little traffic to judge',
            'overall': {}, 'groups': []}
    inc = incident(latency=weak, changes=[deploy(20)])
    proof = evidence(inc)
    assert not proof['sufficient'] and proof['gaps'] == [
        'the response time cannot be judged: weak evidence, under min_request_rate 0.1/s: too little traffic to judge']
    d = diagnosis(inc)
    assert d['action']['name'] == 'escalate' and d['plan'] == []
    inc['diagnosis'] = d
    assert mitigation_step(inc, 1, allowed_actions=('rollback',))['decision'] == 'insufficient'
    missing = incident(latency={})
    assert evidence(missing)['gaps'] == ['the response time was not measured: no result']
    assert 'response time: not gathered' in diagnosis(missing)['missing_evidence']


def test_the_response_time_measured_again_before_acting_decides():
    inc = incident(changes=[deploy(20)])
    inc['diagnosis'] = diagnosis(inc)
    step = mitigation_step(inc, 1, mode='auto', allowed_actions=('rollback',))
    assert step['decision'] == 'act'
    fast = {'verdict': 'ok', 'overall': {'reasons': ['p99 120 ms within the target 300 ms']}}
    assert confirmed_step(step, fast, inc) == dict(step, decision='none', reason=(
        'the response time is back under the thresholds since the diagnosis (p99 120 ms within the target 300 ms): '
        'nothing to mitigate'))
    assert confirmed_step(step, SLOW, inc) == step
    assert confirmed_step(step, {'failed': True, 'msg': 'Prometheus did not answer'}, inc)['decision'] == 'insufficient'


def test_no_improvement_is_said_in_seconds_of_the_quantile():
    inc = dict(incident(), outcome='escalated', escalation={'reason': 'the rollback did not help'},
               verify={'last_seconds': 0.7})
    assert escalation_reasons(inc, 'outcome', elapsed_seconds=1000) == [
        'the rollback did not help', 'no improvement within 15m: p99 0.7 s, 0.612 s at triage']

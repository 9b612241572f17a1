"""Every diagnosis rule on evidence shaped as the triage and investigate steps record it."""

import copy
import json

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import diagnose, feature_flag_name
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.log_patterns import RANK, analyse, iso_ms, records_from_entries

ONSET = 1000.0
GW = 'sre-demo/inference-gateway:'


def groups(failing=None):
    names = ['/predict', '/embed', '/classify', '/models']
    return [{'value': n, 'error_percent': 80.0 if n == failing else 0.0,
             'share_of_errors': 1.0 if n == failing else 0.0} for n in names]


def incident(**parts):
    """A healthy-looking incident with a critical error rate; parts override sections."""
    base = {
        'service': 'inference-gateway', 'platform': 'compose',
        'triage': {
            'service_down': False,
            'health': {'all_ok': True, 'failed_checks': [], 'checks': []},
            'error_rate': {'verdict': 'critical', 'error_percent': 12.0, 'shape': 'gradual',
                           'onset': ONSET, 'window_seconds': 30, 'concentrated': False,
                           'top_group': None, 'groups': groups(), 'partial': False},
            'changes': [],
        },
        'investigate': {
            'logs': {'top_messages': [], 'partial': False},
            'resources': {'max_cpu_percent': 20.0, 'max_memory_percent': 40.0, 'oom_kills': 0,
                          'restarts': 0, 'throttled': False, 'reasons': []},
            'dependencies': {'failing': [], 'names': ['model-service', 'feature-store']},
            'traces': {'error_sources': [], 'dependency_suspect': None},
        },
    }
    result = copy.deepcopy(base)
    for path, value in parts.items():
        section, key = path.split('__')
        if key == 'all':
            result[section] = value
        else:
            result['triage' if section == 't' else 'investigate'][key] = value
    return result


def deploy(gap, image='v1.2.3', previous='v1.2.2'):
    return {'kind': 'deploy', 'time': ONSET - gap, 'time_iso': 'T', 'seconds_before_onset': gap,
            'image': GW + image, 'previous_image': GW + previous if previous else None,
            'summary': 'image %s -> %s' % (previous, image)}


def errors(**kw):
    e = incident()['triage']['error_rate']
    e.update(kw)
    return e


def logs(*messages):
    return {'top_messages': [{'pattern': m, 'count': c} for m, c in messages], 'partial': False}


def test_bad_deploy_right_before_a_spike_is_rolled_back():
    d = diagnose(incident(t__changes=[deploy(4)], t__error_rate=errors(
        shape='spike', concentrated=True, top_group='/predict', groups=groups('/predict')),
        i__logs=logs(("prediction handler failed: TypeError: 'NoneType' object", 67))))
    assert d['recommended']['cause'] == 'deploy'
    assert d['recommended']['evidence'][2] == (
        'log: 67x "prediction handler failed: TypeError: \'NoneType\' object"')
    assert d['action'] == {'name': 'rollback', 'description': 'rollback to v1.2.2',
                           'params': {'to_image': GW + 'v1.2.2', 'from_image': GW + 'v1.2.3'},
                           'disruptive': True, 'disruption': 'disruptive', 'calls': {
                               'compose': {'module': 'sre.runbooks.compose_service', 'disruption': 'disruptive',
                                           'params': {'state': 'rolled_back', 'image': GW + 'v1.2.2'}},
                               'kubernetes': {'module': 'sre.runbooks.k8s_rollout', 'disruption': 'disruptive',
                                              'params': {'state': 'undone'}}}}
    assert d['recommended']['runbook_step'] == 'Mitigation Option 1: Rollback Recent Deployment'
    assert d['recommended']['confidence'] == 0.9
    assert 'errors began 4 s after the deploy' in d['recommended']['evidence'][0]
    # The endpoint concentration is kept as a second cause, with its own action.
    assert [c['cause'] for c in d['causes']] == ['deploy', 'endpoint']
    assert d['summary'] == 'deploy: rollback to v1.2.2'


def test_a_deploy_after_the_onset_is_never_blamed():
    d = diagnose(incident(t__changes=[deploy(-30)], t__error_rate=errors(shape='spike')))
    assert all(c['cause'] != 'deploy' for c in d['causes'])
    assert d['ruled_out'] == ['deploy image v1.2.2 -> v1.2.3 at T came 30 s after the errors '
                              'began: not their cause']
    assert d['action']['name'] == 'escalate'


def test_a_spike_long_after_a_deploy_is_not_the_deploy():
    d = diagnose(incident(t__changes=[deploy(600)], t__error_rate=errors(
        shape='spike', concentrated=True, top_group='/predict', groups=groups('/predict'))))
    assert d['recommended']['cause'] == 'endpoint'
    assert d['causes'][1]['cause'] == 'deploy' and d['causes'][1]['confidence'] < 0.5


def test_same_image_recreate_is_not_a_new_version():
    d = diagnose(incident(t__changes=[deploy(4, 'v1.2.2', 'v1.2.2')],
                          t__error_rate=errors(shape='spike')))
    assert all(c['cause'] != 'deploy' for c in d['causes'])


def test_rollback_target_unknown_is_refused_not_guessed():
    d = diagnose(incident(t__changes=[deploy(4, previous=None)], t__error_rate=errors(shape='spike')))
    assert d['causes'][0]['cause'] == 'deploy'
    assert d['causes'][0]['action']['description'] == 'rollback to the previous version (unknown)'
    assert d['action']['name'] == 'escalate'
    assert d['refused'] == ['rollback to the previous version (unknown) not recommended: '
                            'missing previous image']


def test_partial_error_rate_blocks_disruptive_actions():
    d = diagnose(incident(t__changes=[deploy(4)], t__error_rate=errors(shape='spike', partial=True)))
    assert d['action']['name'] == 'escalate'
    assert 'the error rate is partial' in d['refused'][0]
    assert d['partial'] is True


def test_one_failing_endpoint_without_change_disables_its_feature():
    d = diagnose(incident(t__error_rate=errors(shape='spike', concentrated=True,
                                               top_group='/predict', groups=groups('/predict')),
                          i__logs=logs(('feature predict-v2 failed: ValueError <str>', 40))))
    assert d['recommended']['cause'] == 'endpoint'
    assert d['action']['params'] == {'endpoint': '/predict',
                                     'env': {'FEATURE_ENDPOINT_PREDICT_ENABLED': 'false'}}
    assert d['action']['description'] == 'disable FEATURE_ENDPOINT_PREDICT_ENABLED'
    assert d['action']['disruptive'] is False
    assert d['recommended']['evidence'][0] == '/predict holds 100% of the errors (80.0% of its requests fail)'


def test_feature_flag_names():
    assert feature_flag_name('/predict', 'FEATURE_ENDPOINT_{name}_ENABLED') == \
        'FEATURE_ENDPOINT_PREDICT_ENABLED'
    assert feature_flag_name('/v1/features/{id}', 'FF_{name}') == 'FF_V1_FEATURES_ID'
    assert feature_flag_name('/', 'FF_{name}') == 'FF_ROOT'


def test_dead_dependency_gets_the_circuit_breaker():
    d = diagnose(incident(
        i__dependencies={'failing': ['model-service'], 'names': ['model-service']},
        i__logs=logs(('upstream model-service timed out after <num>s', 90)),
        i__traces={'dependency_suspect': 'model-service', 'error_sources': []}))
    assert d['recommended']['cause'] == 'dependency'
    assert d['action']['name'] == 'circuit_breaker'
    assert d['action']['params'] == {'dependency': 'model-service', 'env': {
        'CIRCUIT_BREAKER_THRESHOLD': '5', 'CIRCUIT_BREAKER_TIMEOUT': '60'}}
    assert d['recommended']['confidence'] == 0.9
    assert 'traces: errors sit in model-service' in d['recommended']['evidence']


def test_conflicting_evidence_deploy_and_dead_dependency():
    # A deploy just before the errors, and a dependency whose own health check fails with the
    # logs naming it: the dependency explains the errors; the deploy is kept, ranked lower.
    d = diagnose(incident(
        t__changes=[deploy(20)], t__error_rate=errors(shape='spike'),
        i__dependencies={'failing': ['model-service'], 'names': ['model-service']},
        i__logs=logs(('upstream model-service connection refused', 120))))
    assert [c['cause'] for c in d['causes']] == ['dependency', 'deploy']
    assert d['action']['name'] == 'circuit_breaker'
    assert 'but dependencies fail on their own: model-service' in d['causes'][1]['evidence']
    # The deploy never quotes the dependency's line as its own.
    assert 'no error signature of its own in the logs began after it' in d['causes'][1]['evidence']
    assert not any('connection refused' in e for e in d['causes'][1]['evidence'])


def test_pool_exhaustion_restarts_to_reset_pools():
    pools = {'name': 'pools', 'ok': True, 'exhausted_pools': ['pg_pool{db=orders}']}
    d = diagnose(incident(i__dependencies={'failing': [], 'names': ['db'], 'checks': [pools]}))
    assert d['action']['name'] == 'restart'
    assert d['action']['description'] == 'restart to reset the connection pools'
    assert 'connection pool exhausted: pg_pool{db=orders}' in d['recommended']['evidence']


def test_cpu_saturation_raises_cpu_on_compose_and_scales_on_kubernetes():
    resources = {'max_cpu_percent': 98.0, 'max_memory_percent': 40.0, 'oom_kills': 0,
                 'throttled': True, 'reasons': ['cpu 98% of its 1.0-core limit > 90%']}
    overload = logs(('overloaded: request deadline exceeded after <num>ms', 50))
    d = diagnose(incident(i__resources=resources, i__logs=overload))
    assert d['recommended']['cause'] == 'saturation'
    assert d['action']['params'] == {'cpu_factor': 2}
    assert d['recommended']['confidence'] == 0.8
    k8s = diagnose(incident(i__resources=resources), {'platform': 'kubernetes'})
    assert k8s['action'] == {'name': 'scale', 'params': {'replicas': '+2'},
                             'description': 'scale out by 2 replicas', 'disruptive': False, 'disruption': 'none',
                             'calls': {'kubernetes': {'module': 'sre.runbooks.k8s_workload', 'disruption': 'none',
                                                      'params': {'replicas': '+2'}}}}


def test_oom_raises_the_memory_limit():
    resources = {'max_cpu_percent': 30.0, 'max_memory_percent': 97.0, 'oom_kills': 2,
                 'reasons': ['OOM-killed 2 times in 15m']}
    d = diagnose(incident(i__resources=resources, i__logs=logs(('memory pressure: <num>MB', 9))))
    assert d['recommended']['cause'] == 'saturation'
    assert d['action']['name'] == 'resources' and d['action']['params'] == {'memory_factor': 2}
    assert d['action']['description'] == 'raise the memory limit (OOM kills)'


def down(**kw):
    return dict({'t__service_down': True, 't__error_rate': errors(verdict='no_traffic'),
                 't__health': {'all_ok': False, 'failed_checks': ['health', 'head', 'ready']}},
                **kw)


def test_service_down_by_port_conflict():
    d = diagnose(incident(**down(i__logs=logs(
        ('cannot bind 127.0.0.1:<num>: [Errno <num>] Address already in use', 7)),
        i__resources={'restarts': 5, 'oom_kills': 0})), {'port': 8000})
    assert d['recommended']['cause'] == 'service_down'
    assert d['action']['name'] == 'free_port'
    assert d['action']['params'] == {'port': 8000, 'holders': []}
    assert 'crash loop: 5 restarts' in d['recommended']['evidence']
    assert d['recommended']['runbook_step'] == 'Service Completely Down'


def test_service_down_by_bad_config():
    d = diagnose(incident(**down(i__logs=logs(
        ("config error: MODEL_SERVICE_URL <str> is not a URL", 4)))))
    assert d['action']['name'] == 'recreate'
    assert d['action']['description'] == 'fix the configuration, then force-recreate'


def test_service_down_startup_error_outweighs_an_older_oom_kill():
    d = diagnose(incident(**down(
        i__logs=logs(("config error: MODEL_SERVICE_URL <str> is not a URL", 4)),
        i__resources={'restarts': 6, 'oom_kills': 1})))
    assert d['action']['name'] == 'recreate'
    d = diagnose(incident(**down(i__resources={'restarts': 6, 'oom_kills': 2})))
    assert d['action']['description'] == 'raise the memory limit (OOM kills), then recreate'


def test_service_down_without_clue_restarts():
    d = diagnose(incident(**down()))
    assert d['action']['name'] == 'restart'
    assert d['recommended']['confidence'] == 0.8


def test_service_down_port_conflict_needs_the_logs():
    # Logs could not be read: the port conflict cannot be seen; a plain restart remains.
    d = diagnose(incident(**down(i__logs={'failed': True, 'msg': 'Docker engine unreachable'})))
    assert d['missing_evidence'] == ['logs: Docker engine unreachable']
    assert d['action']['name'] == 'restart'


def test_nothing_conclusive_escalates_with_what_is_missing():
    d = diagnose(incident(i__logs={'failed': True, 'msg': 'Loki at http://l:3100 timed out'},
                          i__traces={'failed': True, 'msg': 'Jaeger unreachable'}))
    assert d['causes'] == []
    assert d['action']['name'] == 'escalate'
    assert d['action']['params']['reason'] == 'no cause stands out in the evidence'
    assert d['missing_evidence'] == ['logs: Loki at http://l:3100 timed out',
                                     'traces: Jaeger unreachable']
    assert d['partial'] is True


def test_healthy_service_needs_no_action():
    d = diagnose(incident(t__error_rate=errors(verdict='ok', onset=None)))
    assert d['causes'] == []
    assert d['action']['params']['reason'] == 'the error rate is ok'


def test_empty_incident_says_what_is_missing():
    d = diagnose({})
    assert d['action']['name'] == 'escalate'
    assert 'error rate: not gathered' in d['missing_evidence']


def test_plan_lists_the_actions_to_try_in_turn():
    # The dependency first, the deploy next: verify tries the second when the first fails.
    d = diagnose(incident(
        t__changes=[deploy(20)], t__error_rate=errors(shape='spike'),
        i__dependencies={'failing': ['model-service'], 'names': ['model-service']},
        i__logs=logs(('upstream model-service connection refused', 120))))
    assert [(c['cause'], c['action']['name']) for c in d['plan']] == [
        ('dependency', 'circuit_breaker'), ('deploy', 'rollback')]
    assert d['plan'][0] == d['recommended']
    assert diagnose(incident(t__error_rate=errors(verdict='ok', onset=None)))['plan'] == []


# --------------------------------------------------------------------------- two causes at once

TYPE_ERROR = "prediction handler failed: TypeError: '<str>' object is not subscriptable"
TIMEOUT = 'upstream model-service timed out after <num>s'


def gateway_line(t, status, endpoint, version='1.2.3'):
    """A line as the demo gateway logs a failed request (demo/app/common.py): v1.2.3's TypeError
    before model-service is called (500), or model-service too slow (504)."""
    record = {'timestamp': iso_ms(t), 'level': 'ERROR', 'service': 'inference-gateway',
              'version': version, 'endpoint': endpoint, 'method': 'POST', 'status_code': status,
              'duration_ms': 2004.1 if status == 504 else 3.2, 'trace_id': '%032x' % int(t * 1000)}
    if status == 500:
        error = "TypeError: 'NoneType' object is not subscriptable"
        record.update(message='prediction handler failed: ' + error, error=error)
    else:
        record.update(message='upstream model-service timed out after 2.0s',
                      error='TimeoutError: timed out')
    return json.dumps(record, separators=(',', ':'))


def gateway_logs(type_errors=(), timeouts=()):
    """log_search's result over the demo gateway's lines: (first time, count) of each kind, one
    line every 0.4 s, read from the Docker engine (analyse() is what the module returns)."""
    entries = []
    for (start, count), status in ((type_errors or (0, 0), 500), (timeouts or (0, 0), 504)):
        for n in range(count):
            t = start + 0.4 * n
            endpoint = '/predict' if status == 500 else ('/predict', '/embed', '/classify')[n % 3]
            entries.append((t, gateway_line(t, status, endpoint), 'sre-demo-inference-gateway-1',
                            'stdout'))
    result = analyse(records_from_entries(sorted(entries, key=lambda e: e[0])), ONSET - 900,
                     ONSET + 300, RANK['ERROR'])
    result.update(partial=False, backend='docker')
    return result


def by_status(*entries):
    """error_rate's by_status: (status, errors/s, share of errors, onset), largest first."""
    return [{'status': status, 'error_rate': rate, 'share_of_errors': share, 'onset': onset,
             'onset_iso': iso_ms(onset), 'shape': 'spike' if onset else 'steady'}
            for status, rate, share, onset in entries]


SLOW_MODEL_SERVICE = {'failing': ['model-service'], 'names': ['model-service', 'feature-store'],
                      'checks': []}


def two_causes(type_errors, timeouts, split, gap=12):
    """model-service turns slow at ONSET - 15; v1.2.3 is deployed 3 s later (gap s before the
    onset of the error rate); its TypeErrors begin 2 s after the deploy."""
    deployed = ONSET - gap
    rate = errors(shape='spike')
    if split is not None:
        rate['by_status'] = split
    return incident(
        t__changes=[deploy(gap)], t__error_rate=rate,
        i__logs=gateway_logs((deployed + 2, type_errors), (deployed - 1, timeouts)),
        i__dependencies=SLOW_MODEL_SERVICE,
        i__traces={'dependency_suspect': 'model-service', 'error_sources': []})


def test_two_causes_the_deploys_500s_outnumber_the_dependencys_504s_rollback_first():
    d = diagnose(two_causes(141, 76, by_status(('500', 2.35, 0.65, ONSET + 15),
                                               ('504', 1.27, 0.35, ONSET))))
    assert [(c['cause'], c['action']['description']) for c in d['plan']] == [
        ('deploy', 'rollback to v1.2.2'), ('dependency', 'circuit breaker on model-service')]
    assert d['recommended'] == d['plan'][0] and d['action']['name'] == 'rollback'
    deploy_cause, dependency = d['plan']
    # Confidence is computed as before: the dependency's is higher, the share decides.
    assert (deploy_cause['confidence'], dependency['confidence']) == (0.6, 0.9)
    assert deploy_cause['explains'] == {
        'share': 0.65, 'error_rate': 2.35, 'statuses': ['500'],
        'signatures': [{'pattern': TYPE_ERROR, 'count': 141}]}
    assert dependency['explains'] == {
        'share': 0.35, 'error_rate': 1.27, 'statuses': ['504'],
        'signatures': [{'pattern': TIMEOUT, 'count': 76}]}
    # Each quotes its own signature, never the other's.
    assert 'log: 141x "%s"' % TYPE_ERROR in deploy_cause['evidence']
    assert not any(TIMEOUT in e for e in deploy_cause['evidence'])
    assert 'log: 76x "%s"' % TIMEOUT in dependency['evidence']
    assert not any('TypeError' in e for e in dependency['evidence'])
    assert deploy_cause['evidence'][-1] == 'explains 65% of the errors (2.35/s: 500)'
    assert dependency['evidence'][-1] == 'explains 35% of the errors (1.27/s: 504)'
    assert d['ranking']['by'] == 'explained_errors'


def test_two_causes_the_dependencys_504s_outnumber_the_deploys_500s_circuit_breaker_first():
    d = diagnose(two_causes(40, 160, by_status(('504', 3.2, 0.8, ONSET),
                                               ('500', 0.8, 0.2, ONSET + 15))))
    assert [(c['cause'], c['action']['name']) for c in d['plan']] == [
        ('dependency', 'circuit_breaker'), ('deploy', 'rollback')]
    assert d['plan'][0]['explains']['share'] == 0.8 and d['plan'][1]['explains']['share'] == 0.2
    assert 'log: 40x "%s"' % TYPE_ERROR in d['plan'][1]['evidence']


def test_a_deploy_after_the_first_errors_is_credited_with_its_own_that_began_after_it():
    # The dependency's 504s began 3 s before the deploy: the deploy is not ruled out, since its
    # own 500s (a status of their own, by signature) began 12 s after it.
    d = diagnose(two_causes(141, 76, by_status(('500', 2.35, 0.65, ONSET + 15),
                                               ('504', 1.27, 0.35, ONSET)), gap=-3))
    assert d['ruled_out'] == []
    assert d['recommended']['cause'] == 'deploy'
    assert d['recommended']['evidence'][:2] == [
        'errors began 12 s after the deploy image v1.2.2 -> v1.2.3 at T',
        'the first errors began 3 s before it: not its own']
    # Without the split, it is ruled out as before.
    d = diagnose(two_causes(141, 76, None, gap=-3))
    assert [c['cause'] for c in d['causes']] == ['dependency']
    assert d['ruled_out'] == ['deploy image v1.2.2 -> v1.2.3 at T came 3 s after the errors '
                              'began: not their cause']


def test_without_the_split_by_status_the_ranking_is_by_confidence_and_says_so():
    d = diagnose(two_causes(141, 76, None))
    assert [(c['cause'], c['action']['name']) for c in d['plan']] == [
        ('dependency', 'circuit_breaker'), ('deploy', 'rollback')]
    assert d['ranking'] == {'by': 'confidence', 'note': (
        'the error rate by status was not available (an older error_rate result, or its query '
        'failed): causes ranked by confidence')}
    # What each explains is still told from the logs, without a share.
    assert d['plan'][1]['explains'] == {'share': None, 'error_rate': None, 'statuses': ['500'],
                                        'signatures': [{'pattern': TYPE_ERROR, 'count': 141}]}
    assert 'log: 141x "%s"' % TYPE_ERROR in d['plan'][1]['evidence']
    assert not any(e.startswith('explains') for c in d['causes'] for e in c['evidence'])
    assert diagnose(two_causes(141, 76, []))['ranking']['by'] == 'confidence'


def test_a_status_label_of_classes_is_split_by_the_signatures():
    d = diagnose(two_causes(141, 76, by_status(('5xx', 3.62, 1.0, ONSET))))
    assert [(c['cause'], c['explains']['share'], c['explains']['error_rate'])
            for c in d['plan']] == [('deploy', 0.65, 2.352), ('dependency', 0.35, 1.268)]


def test_shares_within_ten_points_are_ranked_by_confidence():
    # A bad deploy on /predict: the endpoint holds all the errors, the deploy 97% (a few 504s
    # were there before): both remove about as much; the deploy's confidence is higher.
    d = diagnose(incident(
        t__changes=[deploy(4)],
        t__error_rate=errors(shape='spike', concentrated=True, top_group='/predict',
                             groups=groups('/predict'), by_status=by_status(
                                 ('500', 2.9, 0.97, ONSET + 10), ('504', 0.09, 0.03, None))),
        i__logs=gateway_logs((ONSET - 2, 85))))
    assert [(c['cause'], c['explains']['share']) for c in d['plan']] == [
        ('deploy', 0.97), ('endpoint', 1.0)]
    assert d['plan'][1]['explains']['statuses'] == ['500']


def test_dependency_fault_and_a_later_harmless_deploy_never_roll_back_to_the_bad_version():
    # In the change window: v1.2.3 deployed and rolled back (v1.2.3 -> v1.2.2) before
    # model-service turned slow; a harmless v1.2.4 came after the errors began.
    bad = dict(deploy(400, 'v1.2.3', 'v1.2.2'))
    back = dict(deploy(60, 'v1.2.2', 'v1.2.3'))
    harmless = dict(deploy(-40, 'v1.2.4', 'v1.2.2'))
    d = diagnose(incident(
        t__changes=[harmless, back, bad],
        t__error_rate=errors(shape='spike', by_status=by_status(('504', 3.1, 1.0, ONSET))),
        i__logs=gateway_logs(timeouts=(ONSET + 42, 120)), i__dependencies=SLOW_MODEL_SERVICE))
    assert d['ruled_out'] == ['deploy image v1.2.2 -> v1.2.4 at T came 40 s after the errors '
                              'began: not their cause']
    assert [(c['cause'], c['action']['description']) for c in d['plan']] == [
        ('dependency', 'circuit breaker on model-service')]
    withheld = ('no rollback: the version before it, v1.2.3, is known bad (a later deploy rolled '
                'it back to v1.2.2)')
    deploy_cause = next(c for c in d['causes'] if c['cause'] == 'deploy')
    assert deploy_cause['action'] == {'name': 'escalate', 'description': withheld,
                                      'params': {'reason': withheld, 'known_bad': GW + 'v1.2.3'},
                                      'disruptive': False, 'disruption': 'none', 'calls': {}}
    assert withheld in deploy_cause['evidence']
    assert 'explains none of the errors' in deploy_cause['evidence']
    assert deploy_cause['explains']['share'] == 0.0
    assert d['refused'] == [withheld]
    assert not any('rollback to' in c['action']['description'] for c in d['causes'])


def test_a_bad_version_deployed_again_after_its_rollback_is_rolled_back_again():
    # v1.2.3, rolled back to v1.2.2, deployed again: v1.2.2 was not rolled back from.
    changes = [deploy(4, 'v1.2.3', 'v1.2.2'), deploy(600, 'v1.2.2', 'v1.2.3'),
               deploy(700, 'v1.2.3', 'v1.2.2')]
    d = diagnose(incident(t__changes=changes, t__error_rate=errors(shape='spike')))
    assert d['action']['description'] == 'rollback to v1.2.2'


def test_known_bad_from_the_logs_of_a_replaced_version_and_from_a_rollback_of_this_incident():
    # Loki keeps the logs of v1.2.3, replaced by v1.2.4 (a fix forward): its TypeErrors began
    # after it and ended with it; rolling v1.2.4 back would return to it.
    first, fix = deploy(300, 'v1.2.3', 'v1.2.2'), deploy(20, 'v1.2.4', 'v1.2.3')
    d = diagnose(incident(
        t__changes=[fix, first], t__error_rate=errors(shape='spike'),
        i__logs=gateway_logs((ONSET - 297, 100), (ONSET + 5, 30))))
    assert d['causes'][0]['action']['description'] == (
        'no rollback: the version before it, v1.2.3, is known bad (its errors "%s" (100x) began '
        'after it was deployed and ended when it was replaced)' % TYPE_ERROR[:80])
    assert d['action']['name'] == 'escalate'
    assert d['action']['params']['reason'] == d['causes'][0]['action']['description']
    # A status of its own that rose while it ran condemns it too.
    d = diagnose(incident(
        t__changes=[fix, first], t__error_rate=errors(shape='spike', by_status=by_status(
            ('503', 1.5, 0.7, ONSET + 5), ('500', 0.6, 0.3, ONSET - 290)))))
    assert d['causes'][0]['action']['params']['reason'].endswith(
        'is known bad (500 errors rose 10 s after it was deployed)')
    # The image a rollback of this incident moved away from (compose, then Kubernetes).
    inc = incident(t__changes=[deploy(20, 'v1.2.2', 'v1.2.3')], t__error_rate=errors(shape='spike'))
    inc['mitigation'] = {'attempts': [{'attempt': 1, 'acted': True, 'action': {'name': 'rollback'},
                                       'before': {'image': GW + 'v1.2.3'},
                                       'after': {'image': GW + 'v1.2.2'}}]}
    assert diagnose(inc)['causes'][0]['action']['params'] == {
        'reason': 'no rollback: the version before it, v1.2.3, is known bad (a rollback of this '
                  'incident moved away from it)', 'known_bad': GW + 'v1.2.3'}
    inc = incident(t__changes=[k8s_deploy(20, image='v2.4.0', previous='v2.4.1')],
                   t__error_rate=errors(shape='spike'))
    inc['mitigation'] = {'attempts': [{'acted': True, 'action': {'name': 'rollback'},
                                       'before': {'revision': 12, 'images': [DC + 'v2.4.1']}}]}
    assert diagnose(inc)['causes'][0]['action']['params']['known_bad'] == DC + 'v2.4.1'
    # Not acted (check mode, advice): nothing was moved away from.
    inc['mitigation']['attempts'][0]['acted'] = False
    assert diagnose(inc)['action']['name'] == 'rollback'


def host_checks(**checks):
    return {'service_down': {'checks': dict({'config': {'valid': True, 'hash_drift': False,
                                                        'env_drift': []},
                                             'port_holders': [], 'oom': {'oom_killed': False}},
                                            **checks)}}


def test_service_down_port_holder_seen_on_the_host_without_logs():
    inc = incident(**down(i__logs={'failed': True, 'msg': 'Docker engine unreachable'}))
    inc.update(host_checks(port_holders=[
        {'pid': 4242, 'command': 'python3 port_squatter.py --port 8000', 'in_service': False},
        {'pid': 17, 'command': 'python3 main.py', 'in_service': True}]))
    d = diagnose(inc, {'port': 8000})
    assert d['action']['name'] == 'free_port'
    assert d['action']['params']['holders'] == [
        {'pid': 4242, 'command': 'python3 port_squatter.py --port 8000', 'in_service': False}]
    assert 'port 8000 held by pid 4242 (python3 port_squatter.py --port 8000)' in \
        d['recommended']['evidence']


def test_service_down_config_drift_recreates_and_a_broken_compose_file_escalates():
    inc = incident(**down())
    inc.update(host_checks(config={'valid': True, 'hash_drift': True, 'env_drift': [
        {'name': 'MODEL_SERVICE_URL', 'running': 'not-a-url', 'configured': 'http://x'}]}))
    d = diagnose(inc)
    assert d['action']['name'] == 'recreate'
    assert ('the running container differs from the compose configuration: MODEL_SERVICE_URL'
            in d['recommended']['evidence'])
    inc.update(host_checks(config={'valid': False, 'error': 'services.x.image must be a string'}))
    d = diagnose(inc)
    assert d['action']['name'] == 'escalate'
    assert d['action']['params']['reason'] == 'fix the compose file (compose config fails)'


# --------------------------------------------------------------------------- Kubernetes

DC = 'registry.dhakacart.local/dhakacart-backend:'


def k8s_deploy(gap, revision=12, previous_revision=11, image='v2.4.1', previous='v2.4.0'):
    change = deploy(gap, image, previous)
    change.update(image=DC + image, previous_image=DC + previous, revision=revision,
                  previous_revision=previous_revision,
                  summary='revision %d: image %s -> %s' % (revision, previous, image))
    return change


def pod(name, phase='Running', ready=False, restarts=0, waiting=None, message=None,
        terminated=None, exit_code=None):
    return {'name': name, 'phase': phase, 'ready': ready, 'restarts': restarts,
            'node': 'node-1', 'waiting_reason': waiting, 'waiting_message': message,
            'last_terminated_reason': terminated, 'last_exit_code': exit_code,
            'started_at': '2024-05-01T10:00:00Z'}


def k8s_status(problems=(), pods=(), logs=(), ready=0, events=(), hpa=None, oom=0):
    """A k8s_status result for dhakacart-backend, 3 replicas, as the contract shapes it."""
    return {'service_down': {'checks': {
        'deployment': {'name': 'dhakacart-backend', 'namespace': 'dhakacart', 'replicas': 3,
                       'ready_replicas': ready, 'available_replicas': ready,
                       'updated_replicas': 3, 'paused': False, 'revision': 12,
                       'images': [DC + 'v2.4.1'], 'conditions': []},
        'pods': list(pods),
        'endpoints': {'found': True, 'service': 'dhakacart-backend', 'ready': ready, 'not_ready': 3 - ready},
        'events': list(events), 'hpa': hpa,
        'problems': [{'kind': k, 'pods': [p['name'] for p in pods], 'message': m}
                     for k, m in problems],
        'oom': {'oom_killed': bool(oom), 'count': oom}, 'logs': list(logs),
        'summary': '%d of 3 ready' % ready}}}


def k8s_incident(status, **parts):
    inc = incident(**down(**parts))
    inc['platform'] = 'kubernetes'
    inc['service'] = 'dhakacart-backend'
    inc.update(status)
    return inc


PULL = pod('dhakacart-backend-6d9f-x2x', phase='Pending', waiting='ImagePullBackOff',
           message='Back-off pulling image "%sv2.4.1"' % DC)


def test_k8s_image_pull_backoff_rolls_back_to_the_recorded_revision():
    status = k8s_status([('ImagePullBackOff', 'Back-off pulling image "%sv2.4.1"' % DC)], [PULL])
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(20)]))
    assert d['recommended']['cause'] == 'service_down'
    assert d['recommended']['confidence'] == 0.95
    assert d['action'] == {'name': 'rollback', 'disruptive': True, 'disruption': 'disruptive',
                           'description': 'roll back to revision 11 (v2.4.0)',
                           'params': {'to_image': DC + 'v2.4.0', 'from_image': DC + 'v2.4.1',
                                      'to_revision': 11},
                           'calls': {'compose': {'module': 'sre.runbooks.compose_service', 'disruption': 'disruptive',
                                                 'params': {'state': 'rolled_back', 'image': DC + 'v2.4.0'}},
                                     'kubernetes': {'module': 'sre.runbooks.k8s_rollout', 'disruption': 'disruptive',
                                                    'params': {'state': 'undone', 'to_revision': 11}}}}
    evidence = d['recommended']['evidence']
    assert 'deployment dhakacart-backend: 0 of 3 replicas ready, 3 updated, 0 available ' \
           '(revision 12)' in evidence
    assert 'service dhakacart-backend: 0 ready endpoints, 3 not ready' in evidence
    assert ('ImagePullBackOff in 1 pod (dhakacart-backend-6d9f-x2x): Back-off pulling image '
            '"%sv2.4.1"' % DC) in evidence
    # The revision recorded before any mitigation wins over the change's previous one.
    inc = k8s_incident(status, t__changes=[k8s_deploy(20)])
    inc['triage']['rollback_revision'] = 9
    assert diagnose(inc)['action']['params']['to_revision'] == 9
    # No change known: kubectl's previous revision, or the recorded one.
    assert diagnose(k8s_incident(status))['action']['description'] == \
        'roll back to the previous revision'


def test_k8s_image_pull_backoff_outranks_a_dead_dependency():
    status = k8s_status([('ErrImagePull', 'rpc error: manifest unknown')], [PULL])
    d = diagnose(k8s_incident(
        status, t__changes=[k8s_deploy(20)],
        i__dependencies={'failing': ['postgres'], 'names': ['postgres', 'redis']},
        i__logs=logs(('connection to postgres refused', 40))))
    assert [c['cause'] for c in d['causes']] == ['service_down', 'dependency']
    assert d['action']['name'] == 'rollback'
    assert ('dependencies fail too (postgres), but they do not keep an image from being pulled'
            in d['recommended']['evidence'])
    assert d['causes'][1]['database'] is True and d['causes'][1]['action']['name'] == \
        'circuit_breaker'
    assert [c['action']['name'] for c in d['plan']] == ['rollback', 'circuit_breaker']


def test_k8s_stalled_rollout_after_a_deploy_rolls_back_and_without_one_does_not():
    crash = pod('dhakacart-backend-6d9f-a', restarts=4, waiting='CrashLoopBackOff',
                terminated='Error', exit_code=1)
    status = k8s_status([('ProgressDeadlineExceeded', 'ReplicaSet "dhakacart-backend-6d9f" has '
                          'timed out progressing.')], [crash])
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(60)]))
    assert d['action']['name'] == 'rollback' and d['recommended']['confidence'] == 0.85
    assert d['action']['description'] == 'roll back to revision 11 (v2.4.0)'
    assert 'pod dhakacart-backend-6d9f-a: 4 restarts, last terminated Error (exit code 1)' in \
        d['recommended']['evidence']
    d = diagnose(k8s_incident(status))
    assert d['action']['name'] == 'restart'
    assert d['action']['description'] == \
        'rollout restart dhakacart-backend and watch its startup logs'


def test_k8s_missing_configmap_escalates_naming_it():
    status = k8s_status([('CreateContainerConfigError', 'configmap "dhakacart-config" not found')],
                        [pod('dhakacart-backend-6d9f-b', phase='Pending',
                             waiting='CreateContainerConfigError')])
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(60)]))
    assert d['action']['name'] == 'escalate' and d['plan'] == []
    assert d['action']['params']['reason'] == (
        'escalate: ConfigMap dhakacart-config the pods need is missing '
        '(CreateContainerConfigError); create it or roll back the change that needs it')
    key = k8s_status([('CreateContainerConfigError', "couldn't find key DB_HOST in Secret "
                                                     "dhakacart/db-credentials")])
    assert diagnose(k8s_incident(key))['causes'][0]['action']['params'] == {
        'missing': 'key DB_HOST of Secret dhakacart/db-credentials'}


def test_k8s_unschedulable_escalates_to_infrastructure():
    status = k8s_status([('Unschedulable', '0/3 nodes are available: 2 Insufficient cpu, '
                          '1 Insufficient memory.')],
                        [pod('dhakacart-backend-6d9f-c', phase='Pending')],
                        events=[{'type': 'Warning', 'reason': 'FailedScheduling',
                                 'object': 'Pod/dhakacart-backend-6d9f-c', 'count': 12,
                                 'message': '0/3 nodes are available: 2 Insufficient cpu.',
                                 'last_seen': '2024-05-01T10:02:00Z'}])
    d = diagnose(k8s_incident(status))
    assert d['action']['name'] == 'escalate'
    assert d['recommended']['infrastructure'] is True and d['recommended']['database'] is False
    assert d['causes'][0]['infrastructure'] is True
    assert d['action']['params']['reason'] == \
        'escalate to infrastructure: pods cannot be scheduled (insufficient cpu, memory on the nodes)'
    assert ('event Warning FailedScheduling on Pod/dhakacart-backend-6d9f-c (12x): 0/3 nodes are '
            'available: 2 Insufficient cpu.') in d['causes'][0]['evidence']


def test_k8s_oom_killed_raises_memory_with_the_deploy_next_in_the_plan():
    oom = pod('dhakacart-backend-6d9f-d', restarts=5, waiting='CrashLoopBackOff',
              terminated='OOMKilled', exit_code=137)
    status = k8s_status([('OOMKilled', 'container backend was OOM-killed 5 times'),
                         ('CrashLoopBackOff', 'back-off 2m40s restarting failed container')],
                        [oom], oom=5)
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(90)]))
    assert d['action'] == {'name': 'resources', 'params': {'memory_factor': 2}, 'disruptive': False,
                           'description': 'raise the memory limit of dhakacart-backend (OOM kills); '
                                          'the pods roll', 'disruption': 'none',
                           'calls': {'compose': {'module': 'sre.runbooks.compose_service', 'disruption': 'none',
                                                 'params': {'state': 'resources', 'memory_factor': 2}},
                                     'kubernetes': {'module': 'sre.runbooks.k8s_workload', 'disruption': 'none',
                                                    'params': {'memory_factor': 2}}}}
    assert 'OOM-killed 5 times' in d['recommended']['evidence']
    assert [(c['cause'], c['action']['name']) for c in d['plan']] == [
        ('service_down', 'resources'), ('deploy', 'rollback')]
    assert d['plan'][1]['evidence'] == [
        'the OOM kills began after it: deploy revision 12: image v2.4.0 -> v2.4.1 at T']
    # Without a deploy, the memory raise alone.
    assert [c['action']['name'] for c in diagnose(k8s_incident(status))['plan']] == ['resources']


def test_k8s_crash_loop_with_a_startup_error_rolls_back_after_a_deploy_else_restarts():
    crash = pod('dhakacart-backend-6d9f-e', restarts=7, waiting='CrashLoopBackOff',
                terminated='Error', exit_code=1)
    status = k8s_status([('CrashLoopBackOff', 'back-off 5m0s restarting failed container')],
                        [crash], logs=['starting dhakacart-backend 2.4.1',
                                       'Error: DATABASE_URL is not set'])
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(45)]))
    assert d['action']['name'] == 'rollback' and d['recommended']['confidence'] == 0.9
    assert 'previous container log: "Error: DATABASE_URL is not set"' in d['recommended']['evidence']
    assert 'deploy revision 12: image v2.4.0 -> v2.4.1 at T 45 s before the errors' in \
        d['recommended']['evidence']
    d = diagnose(k8s_incident(status))
    assert d['action']['name'] == 'restart' and d['recommended']['confidence'] == 0.75


def test_k8s_deploy_after_the_onset_is_not_rolled_back():
    crash = pod('dhakacart-backend-6d9f-f', restarts=3, waiting='CrashLoopBackOff')
    status = k8s_status([('CrashLoopBackOff', 'back-off 40s restarting failed container')],
                        [crash], logs=['fatal: cannot connect config server'])
    d = diagnose(k8s_incident(status, t__changes=[k8s_deploy(-120)],
                              t__error_rate=errors(verdict='no_traffic', onset=ONSET)))
    assert d['action']['name'] == 'restart'
    assert all(c['action']['name'] != 'rollback' for c in d['causes'])
    assert d['ruled_out'] == ['deploy revision 12: image v2.4.0 -> v2.4.1 at T came 120 s after '
                              'the errors began: not their cause']


def test_k8s_pods_running_not_ready_restart_unless_a_dependency_fails():
    running = [pod('dhakacart-backend-6d9f-%d' % n) for n in range(3)]
    status = k8s_status([('NoReadyEndpoints', 'service dhakacart-backend has no ready endpoints'),
                         ('NotReady', 'readiness probe failed: HTTP 503')], running)
    d = diagnose(k8s_incident(status))
    assert d['action']['name'] == 'restart' and d['recommended']['confidence'] == 0.8
    d = diagnose(k8s_incident(status, i__dependencies={'failing': ['db'], 'names': ['db', 'redis']},
                              i__logs=logs(('pg_pool: timeout acquiring connection to db', 80))))
    assert d['recommended']['cause'] == 'dependency' and d['action']['name'] == 'circuit_breaker'
    assert d['recommended']['database'] is True
    down_cause = next(c for c in d['causes'] if c['cause'] == 'service_down')
    assert down_cause['action']['name'] == 'escalate' and down_cause['database'] is True
    assert ('the pods run but are not ready while db fails: a restart would not make them ready'
            in down_cause['evidence'])


def test_k8s_never_recreates_nor_frees_a_port():
    d = diagnose(k8s_incident({}, i__logs=logs(
        ("config error: MODEL_SERVICE_URL <str> is not a URL", 4))))
    assert d['action']['name'] == 'restart'
    d = diagnose(k8s_incident({}, i__logs=logs(
        ('cannot bind 0.0.0.0:<num>: Address already in use', 7))), {'port': 5000})
    assert d['action']['name'] == 'escalate'
    assert 'a port is taken inside the pod' in d['action']['params']['reason']
    assert all(c['action']['name'] not in ('recreate', 'free_port') for c in d['causes'])


def k8s_saturated(hpa=None, current=3):
    inc = incident(i__resources={'max_cpu_percent': 97.0, 'max_memory_percent': 50.0,
                                 'oom_kills': 0, 'restarts': 0, 'throttled': True,
                                 'reasons': ['cpu 97% of its 1000m limit > 90%'], 'hpa': hpa,
                                 'limits': {'cpu': '1', 'memory': '1Gi'}})
    inc['platform'] = 'kubernetes'
    inc['service'] = 'dhakacart-backend'
    if current is not None:
        inc.update(k8s_status(ready=current))
    return inc


def hpa_of(current, high, at_max):
    return {'name': 'dhakacart-backend', 'min_replicas': 2, 'max_replicas': high,
            'current_replicas': current, 'desired_replicas': current, 'at_max': at_max,
            'conditions': []}


def test_k8s_cpu_saturation_scales_out_within_the_hpa_and_max_replicas():
    d = diagnose(k8s_saturated())
    assert d['action'] == {'name': 'scale', 'params': {'replicas': 5}, 'disruptive': False, 'disruption': 'none',
                           'description': 'scale dhakacart-backend from 3 to 5 replicas',
                           'calls': {'kubernetes': {'module': 'sre.runbooks.k8s_workload', 'disruption': 'none',
                                                    'params': {'replicas': '5'}}}}
    d = diagnose(k8s_saturated(hpa_of(4, 10, False)), {'scale_step': 3})
    assert d['action']['params'] == {'replicas': 7}
    assert 'HorizontalPodAutoscaler dhakacart-backend: 4 replicas (min 2, max 10, desired 4)' in \
        d['recommended']['evidence']
    # Bounded by max_replicas (the runbook's 8) and by the HPA's maxReplicas.
    assert diagnose(k8s_saturated(hpa_of(7, 10, False)))['action']['params'] == {'replicas': 8}
    assert diagnose(k8s_saturated(hpa_of(5, 6, False)))['action']['params'] == {'replicas': 6}


def test_k8s_cpu_saturation_at_the_hpa_max_raises_the_cpu_limit():
    d = diagnose(k8s_saturated(hpa_of(6, 6, True)))
    assert d['action']['name'] == 'resources' and d['action']['params'] == {'cpu_factor': 2}
    assert d['action']['description'] == (
        'raise the CPU limit of dhakacart-backend (cpu 97% of its limit): the '
        'HorizontalPodAutoscaler dhakacart-backend is at its maximum of 6 replicas')
    d = diagnose(k8s_saturated(), {'max_replicas': 3})
    assert d['action']['name'] == 'resources'
    assert ('dhakacart-backend already has 3 replicas, the most max_replicas (3) allows'
            in d['recommended']['evidence'])


def test_deploy_with_revisions_rolls_back_to_a_revision():
    d = diagnose(incident(t__changes=[k8s_deploy(4)], t__error_rate=errors(shape='spike')))
    assert d['action']['params'] == {'to_image': DC + 'v2.4.0', 'from_image': DC + 'v2.4.1',
                                     'to_revision': 11}
    assert d['action']['description'] == 'roll back to revision 11 (v2.4.0)'
    inc = incident(t__changes=[k8s_deploy(4, previous='v2.4.0')], t__error_rate=errors(shape='spike'))
    inc['triage']['rollback_revision'] = 10
    inc['triage']['changes'][0]['previous_image'] = None
    d = diagnose(inc)
    assert d['action']['description'] == 'roll back to revision 10' and d['plan']


def test_pool_exhaustion_of_a_database_is_flagged():
    pools = {'name': 'pools', 'ok': True, 'exhausted_pools': ['pg_pool{db=orders}']}
    d = diagnose(incident(i__dependencies={'failing': [], 'names': ['db'], 'checks': [pools]}))
    assert d['recommended']['database'] is True and d['recommended']['infrastructure'] is False
    d = diagnose(incident(i__dependencies={'failing': ['model-service'], 'names': ['model-service']}))
    assert d['recommended']['database'] is False


def test_what_the_triage_could_not_gather_is_missing_evidence():
    incident = {'triage': {'error_rate': {'verdict': 'critical', 'error_percent': 20.0}, 'health': {'checks': []},
                           'changes': []},
                'investigate': {'logs': {'top_messages': []}, 'resources': {'saturated': False}},
                'missing_evidence': ['recent changes: cannot reach the Docker engine at unix:///run/x.sock']}
    result = diagnose(incident)
    assert result['missing_evidence'] == ['recent changes: cannot reach the Docker engine at unix:///run/x.sock']
    assert result['partial']


def test_a_history_of_bad_deploys_and_rollbacks_keeps_the_good_version_as_the_target():
    # v1.2.3 deployed and rolled back twice before (the rig's earlier faults), then deployed again
    # 3 s after model-service turned slow: its own 500s began after it, so it is the bad deploy,
    # not a rollback of v1.2.2; the target stays v1.2.2.
    inc = two_causes(141, 76, by_status(('504', 5.65, 0.74, ONSET - 12), ('500', 2.0, 0.26, ONSET - 9)))
    inc['triage']['changes'] = [deploy(12), deploy(120, 'v1.2.2', 'v1.2.3'), deploy(150),
                                deploy(250, 'v1.2.2', 'v1.2.3')]
    d = diagnose(inc)
    assert [c['action']['description'] for c in d['plan']] == ['circuit breaker on model-service', 'rollback to v1.2.2']
    assert d['refused'] == []

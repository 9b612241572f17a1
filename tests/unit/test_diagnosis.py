"""Every diagnosis rule on evidence shaped as the triage and investigate steps record it."""

import copy

from ansible_collections.sre.runbooks.plugins.module_utils.diagnosis import (
    diagnose, feature_flag_name)

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
                           'disruptive': True}
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
                             'description': 'scale out by 2 replicas', 'disruptive': False}


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

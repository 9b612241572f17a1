"""sre.runbooks.diagnose as a module (a process, as ansible runs modules without the action) and
through its action plugin (on the controller, as the diagnose role runs it)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_module

DEPLOYED = {'triage': {
    'error_rate': {'verdict': 'critical', 'shape': 'spike', 'onset': 100.0, 'window_seconds': 30},
    'health': {'all_ok': True}, 'changes': [{
        'kind': 'deploy', 'time': 90.0, 'time_iso': 'T', 'seconds_before_onset': 10.0,
        'image': 'gw:v2', 'previous_image': 'gw:v1', 'summary': 'image gw:v1 -> gw:v2'}]}}


def adhoc(args):
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    proc = subprocess.run([ansible, 'localhost', '-m', 'sre.runbooks.diagnose', '-a',
                           json.dumps(args)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
                                   ANSIBLE_NOCOLOR='1', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
                                   ANSIBLE_STDOUT_CALLBACK='minimal',
                                   ANSIBLE_CALLBACK_RESULT_FORMAT='json'), cwd=ROOT, timeout=60)
    output = proc.stdout + proc.stderr
    result = json.loads(proc.stdout.split(' => ', 1)[1]) if ' => ' in proc.stdout else {}
    return proc.returncode, output, result


def test_module_and_action_decide_alike():
    module = run_module('diagnose', {'incident': DEPLOYED})
    assert module['action']['description'] == 'rollback to v1'
    rc, output, action = adhoc({'incident': DEPLOYED})
    assert rc == 0, output
    assert action['action'] == module['action']
    assert action['causes'] == module['causes']
    assert action['missing_evidence'] == ['logs: not gathered', 'resources: not gathered']
    assert action['ranking'] == module['ranking'] and module['ranking']['by'] == 'confidence'


TYPE_ERROR = "prediction handler failed: TypeError: '<str>' object is not subscriptable"
TIMEOUT = 'upstream model-service timed out after <num>s'
# model-service slow since 85, gw:v2 deployed at 88: its TypeErrors (500) outnumber the 504s.
TWO_CAUSES = {
    'triage': {
        'error_rate': {'verdict': 'critical', 'shape': 'spike', 'onset': 100.0, 'window_seconds': 30,
                       'by_status': [
                           {'status': '500', 'error_rate': 2.35, 'share_of_errors': 0.65, 'onset': 115.0,
                            'onset_iso': '1970-01-01T00:01:55Z', 'shape': 'spike'},
                           {'status': '504', 'error_rate': 1.27, 'share_of_errors': 0.35, 'onset': 100.0,
                            'onset_iso': '1970-01-01T00:01:40Z', 'shape': 'spike'}]},
        'health': {'all_ok': True}, 'changes': [dict(DEPLOYED['triage']['changes'][0], time=88.0,
                                                     seconds_before_onset=12.0)]},
    'investigate': {
        'logs': {'top_messages': [
            {'pattern': TYPE_ERROR, 'count': 141, 'first_seen': 90.0, 'last_seen': 146.0,
             'status_codes': {'500': 141}, 'endpoints': {'/predict': 141}},
            {'pattern': TIMEOUT, 'count': 76, 'first_seen': 87.0, 'last_seen': 146.0,
             'status_codes': {'504': 76}, 'endpoints': {'/embed': 38, '/classify': 38}}]},
        'resources': {'max_cpu_percent': 20.0, 'max_memory_percent': 40.0},
        'dependencies': {'failing': ['model-service'], 'names': ['model-service']}}}


def test_two_causes_ranked_by_the_errors_they_explain_by_module_and_action():
    module = run_module('diagnose', {'incident': TWO_CAUSES})
    assert [(c['cause'], c['action']['description'], c['explains']['share'])
            for c in module['plan']] == [('deploy', 'rollback to v1', 0.65),
                                         ('dependency', 'circuit breaker on model-service', 0.35)]
    assert module['plan'][0]['explains']['signatures'] == [{'pattern': TYPE_ERROR, 'count': 141}]
    assert module['ranking']['by'] == 'explained_errors'
    rc, output, action = adhoc({'incident': TWO_CAUSES})
    assert rc == 0, output
    assert action['plan'] == module['plan'] and action['ranking'] == module['ranking']


@pytest.mark.parametrize('args,message', [
    ({'feature_flag_pattern': 'FLAG'}, "invalid option feature_flag_pattern 'FLAG' must contain {name}"),
    ({'max_deploy_gap': 'soon'}, "invalid option max_deploy_gap: 'soon' is not a duration"),
    ({'platform': 'nomad'}, 'value of platform must be one of: compose, kubernetes, got: nomad'),
])
def test_bad_options_are_named_by_module_and_action(args, message):
    r = run_module('diagnose', dict({'incident': DEPLOYED}, **args))
    assert r['failed'] is True and message in r['msg']
    rc, output, result = adhoc(dict({'incident': DEPLOYED}, **args))
    assert rc != 0 and message in result['msg'] and 'Traceback' not in output


K8S_SATURATED = {
    'platform': 'kubernetes', 'service': 'dhakacart-backend',
    'investigate': {'resources': {
        'max_cpu_percent': 97.0, 'max_memory_percent': 40.0, 'oom_kills': 0, 'throttled': True,
        'reasons': ['cpu 97% of its limit'],
        'hpa': {'name': 'dhakacart-backend', 'min_replicas': 2, 'max_replicas': 10,
                'current_replicas': 3, 'desired_replicas': 3, 'at_max': False, 'conditions': []}}},
    'triage': {'error_rate': {'verdict': 'critical', 'shape': 'gradual', 'onset': 100.0},
               'health': {'all_ok': True}, 'changes': []}}


def test_scale_options_reach_the_rules_by_module_and_action():
    module = run_module('diagnose', {'incident': K8S_SATURATED, 'scale_step': 3, 'max_replicas': 5})
    assert module['action']['params'] == {'replicas': 5}
    assert module['action']['description'] == 'scale dhakacart-backend from 3 to 5 replicas'
    rc, output, action = adhoc({'incident': K8S_SATURATED, 'scale_step': 3, 'max_replicas': 5})
    assert rc == 0, output
    assert action['action'] == module['action'] and action['causes'] == module['causes']
    assert module['causes'][0]['infrastructure'] is False and module['causes'][0]['database'] is False
    bad = run_module('diagnose', {'incident': K8S_SATURATED, 'scale_step': 0})
    assert bad['failed'] and bad['msg'] == 'invalid option scale_step must be at least 1, not 0'

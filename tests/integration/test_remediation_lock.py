"""remediation_lock run as Ansible runs it, on real files: one remediation at a time per service."""

import json
import time

from conftest import run_module


def lock_args(tmp_path, run_id, **kw):
    args = {'service': 'inference-gateway', 'run_id': run_id, 'incident_id': 'inc-1',
            'owner': 'alice@laptop', 'state_dir': str(tmp_path), 'cooldown': '0'}
    args.update(kw)
    return args


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = run_module('remediation_lock', lock_args(tmp_path, 'run-a'))
    assert first['changed'] and first['allowed'] and first['lock']['run_id'] == 'run-a'
    second = run_module('remediation_lock', lock_args(tmp_path, 'run-b', incident_id='inc-2'))
    assert second['failed']
    assert 'another remediation of inference-gateway is under way: run run-a' in second['msg']
    assert 'by alice@laptop' in second['msg']
    # The holder itself may take it again (a retried task), and releases it.
    assert run_module('remediation_lock', lock_args(tmp_path, 'run-a'))['allowed']
    released = run_module('remediation_lock', lock_args(
        tmp_path, 'run-a', state='released',
        record={'name': 'rollback', 'description': 'rollback to v1.2.2', 'acted': True}))
    assert released['changed'] and released['lock'] is None
    assert [a['description'] for a in released['actions']] == ['rollback to v1.2.2']
    assert not (tmp_path / 'locks' / 'inference-gateway.lock').exists()
    assert run_module('remediation_lock', lock_args(tmp_path, 'run-b', incident_id='inc-2'))['allowed']


def test_the_lock_of_a_crashed_run_expires_and_is_taken_over(tmp_path):
    run_module('remediation_lock', lock_args(tmp_path, 'run-a', ttl='1s'))
    time.sleep(1.2)
    taken = run_module('remediation_lock', lock_args(tmp_path, 'run-b'))
    assert taken['allowed'] and taken['took_over']['run_id'] == 'run-a'
    on_disk = json.loads((tmp_path / 'locks' / 'inference-gateway.lock').read_text())
    assert on_disk['run_id'] == 'run-b'


def test_max_actions_and_cooldown_refuse_without_taking_the_lock(tmp_path):
    run_module('remediation_lock', lock_args(tmp_path, 'run-a'))
    run_module('remediation_lock', lock_args(tmp_path, 'run-a', state='released', record={
        'name': 'restart', 'description': 'restart', 'acted': True}))
    refused = run_module('remediation_lock', lock_args(tmp_path, 'run-b', max_actions=1))
    assert refused['allowed'] is False and not refused['changed']
    assert refused['reasons'] == ['1 of at most 1 actions already taken for incident inc-1 '
                                  '(restart): escalate']
    cooled = run_module('remediation_lock', lock_args(tmp_path, 'run-b', cooldown='10m'))
    assert cooled['allowed'] is False and cooled['reasons'][0].startswith('cooldown: restart')
    assert not (tmp_path / 'locks' / 'inference-gateway.lock').exists()


def test_check_mode_writes_nothing(tmp_path):
    result = run_module('remediation_lock', lock_args(tmp_path, 'run-a'), check_mode=True)
    assert result['changed'] and result['allowed']
    result = run_module('remediation_lock', lock_args(tmp_path, 'run-a', state='released', record={
        'name': 'restart', 'acted': True}), check_mode=True)
    assert result['changed']
    assert list(tmp_path.iterdir()) == []


def test_bad_input_and_a_corrupt_ledger_fail_clearly(tmp_path):
    assert 'is not a duration' in run_module('remediation_lock', lock_args(
        tmp_path, 'run-a', ttl='soon'))['msg']
    (tmp_path / 'actions').mkdir()
    (tmp_path / 'actions' / 'inference-gateway.json').write_text('[{"time": 1,')
    result = run_module('remediation_lock', lock_args(tmp_path, 'run-a'))
    assert result['failed'] and 'is not valid JSON' in result['msg']


def test_recording_keeps_the_lock_and_taking_it_again_renews_it(tmp_path):
    first = run_module('remediation_lock', lock_args(tmp_path, 'run-a', ttl='60s'))
    recorded = run_module('remediation_lock', lock_args(tmp_path, 'run-a', state='recorded', record={
        'name': 'feature_flag', 'description': 'disable FEATURE_ENDPOINT_PREDICT_ENABLED',
        'acted': True}))
    assert recorded['changed'] and recorded['lock']['run_id'] == 'run-a'
    assert (tmp_path / 'locks' / 'inference-gateway.lock').exists()
    time.sleep(0.05)
    renewed = run_module('remediation_lock', lock_args(tmp_path, 'run-a', ttl='60s'))
    assert renewed['lock']['expires_at'] > first['lock']['expires_at']
    assert run_module('remediation_lock', lock_args(tmp_path, 'run-b'))['failed']
    missing = run_module('remediation_lock', lock_args(tmp_path, 'run-a', state='recorded'))
    assert 'record' in missing['msg']

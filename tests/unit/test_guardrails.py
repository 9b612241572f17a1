"""The guardrails' decisions: lock ownership and expiry, actions per incident, cooldown."""

import os

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.guardrails import held_message, ledger_entry, lock_verdict, new_lock, refusals
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError, read_json, read_text, write_json

NOW = 10_000.0


def test_lock_verdicts():
    lock = new_lock('run-a', 'inc-1', NOW, 900, 'alice@laptop')
    assert lock_verdict(None, 'run-a', NOW) == 'free'
    assert lock_verdict(lock, 'run-a', NOW + 5) == 'ours'
    assert lock_verdict(lock, 'run-b', NOW + 5) == 'held'
    assert lock_verdict(lock, 'run-b', NOW + 900) == 'expired'


def test_held_message_names_the_holder_and_the_expiry():
    lock = new_lock('run-a', 'inc-1', NOW, 900, 'alice@laptop')
    text = held_message('inference-gateway', lock, NOW + 300)
    assert 'run run-a (incident inc-1, by alice@laptop)' in text
    assert '(600 s from now)' in text and lock['expires_at_iso'] in text


def test_at_most_n_actions_per_incident_and_only_actions_that_acted_count():
    ledger = [ledger_entry({'name': 'rollback', 'description': 'rollback to v1.2.2',
                            'acted': True}, 'run-a', 'inc-1', NOW - 4000),
              ledger_entry({'name': 'restart', 'acted': False}, 'run-a', 'inc-1', NOW - 3000),
              ledger_entry({'name': 'restart', 'acted': True}, 'run-x', 'inc-0', NOW - 3500)]
    assert refusals(ledger, 'inc-1', NOW, max_actions=2, cooldown=0) == []
    reasons = refusals(ledger, 'inc-1', NOW, max_actions=1, cooldown=0)
    assert reasons == ['1 of at most 1 actions already taken for incident inc-1 '
                       '(rollback to v1.2.2): escalate']


def test_cooldown_counts_from_the_last_action_on_the_service():
    ledger = [ledger_entry({'name': 'restart', 'description': 'restart', 'acted': True},
                           'run-x', 'inc-0', NOW - 100)]
    assert refusals(ledger, 'inc-1', NOW, 5, cooldown=300) == [
        'cooldown: restart was done 100 s ago, the next action may come in 200 s']
    assert refusals(ledger, 'inc-1', NOW, 5, cooldown=60) == []


def test_state_files_are_written_whole(tmp_path):
    path = str(tmp_path / 'locks' / 'svc.lock')
    (tmp_path / 'locks').mkdir()
    write_json(path, {'run_id': 'c'})
    write_json(path, {'run_id': 'd'})
    assert read_json(path, None) == {'run_id': 'd'}
    assert [p.name for p in (tmp_path / 'locks').iterdir()] == ['svc.lock']
    assert read_json(str(tmp_path / 'none.json'), []) == [] and read_text(str(tmp_path / 'x')) is None
    (tmp_path / 'bad.json').write_text('{half')
    with pytest.raises(StateError, match='is not valid JSON .* move it aside'):
        read_json(str(tmp_path / 'bad.json'), [])
    (tmp_path / 'ro').mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(StateError, match='cannot write'):
            write_json(str(tmp_path / 'ro' / 'x.json'), {})

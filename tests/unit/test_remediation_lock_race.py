"""The remediation lock under races (modules/remediation_lock.py, on real files): takers of an
expired lock, a renewal against a taker, and records written together. Exactly one run holds the
lock each time, and no record is lost."""

import json
import multiprocessing
import time

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.modules.remediation_lock import run

TAKERS = 6
ROUNDS = 40


def params(state_dir, run_id, **changes):
    return dict({'service': 'inference-gateway', 'run_id': run_id, 'owner': run_id, 'incident_id': 'inc-' + run_id,
                 'state': 'acquired', 'ttl': '15m', 'max_actions': 100, 'cooldown': '0', 'record': None,
                 'state_dir': state_dir}, **changes)


def _take(args):
    state_dir, run_id, start = args
    while time.time() < start:  # all at once
        pass
    try:
        return run(params(state_dir, run_id), False)['allowed']
    except RunbookError as err:
        assert 'is under way' in str(err) or 'at the same moment' in str(err), str(err)
        return False


def expired_lock(state_dir):
    (state_dir / 'locks').mkdir(parents=True)
    (state_dir / 'locks' / 'inference-gateway.lock').write_text(json.dumps(
        {'run_id': 'dead-run', 'incident_id': 'inc-dead', 'owner': 'dead', 'since': 0, 'until': 1}))


def test_exactly_one_of_the_runs_that_find_the_lock_expired_takes_it(tmp_path):
    with multiprocessing.Pool(TAKERS) as pool:
        for round_ in range(ROUNDS):
            state_dir = tmp_path / str(round_)
            expired_lock(state_dir)
            start = time.time() + 0.05
            taken = pool.map(_take, [(str(state_dir), 'run-%d' % i, start) for i in range(TAKERS)])
            assert taken.count(True) == 1, (round_, taken)
            holder = json.loads((state_dir / 'locks' / 'inference-gateway.lock').read_text())['run_id']
            assert taken[int(holder.split('-')[1])], (round_, holder, taken)


def _record(args):
    state_dir, run_id, start = args
    while time.time() < start:
        pass
    record = {'name': 'rollback', 'description': 'by ' + run_id, 'acted': True}
    return run(params(state_dir, run_id, state='recorded', record=record, incident_id='inc-1'), False)['changed']


def test_records_written_together_are_all_kept(tmp_path):
    with multiprocessing.Pool(TAKERS) as pool:
        for round_ in range(10):
            state_dir = str(tmp_path / str(round_))
            start = time.time() + 0.05
            assert all(pool.map(_record, [(state_dir, 'run-%d' % i, start) for i in range(TAKERS)]))
            ledger = json.loads((tmp_path / str(round_) / 'actions' / 'inference-gateway.json').read_text())
            assert sorted(e['description'] for e in ledger) == sorted('by run-%d' % i for i in range(TAKERS))

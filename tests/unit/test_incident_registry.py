"""One incident per service (module_utils/incident_registry.py), on real files and flocks."""

import json
import multiprocessing
import pathlib

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.incident_registry import run

T0 = 1_800_000_000.0


def call(tmp_path, run_id, state='open', now=T0, check_mode=False, **incident):
    params = {'service': 'inference-gateway', 'run_id': run_id, 'state': state, 'alert': 'fp-' + run_id,
              'incident': dict({'id': 'inc-' + run_id, 'started_at': '2026-12-04T10:00:00Z'}, **incident),
              'reopen_within': '1h', 'run_ttl': '30m', 'state_dir': str(tmp_path)}
    return run(params, check_mode, now=now)


def test_a_second_alert_while_a_run_handles_the_incident_joins_it(tmp_path):
    first = call(tmp_path, 'r1')
    assert first['changed'] and not first['joined'] and first['record']['id'] == 'inc-r1'
    thread = {'slack': {'thread_ts': '1.2'}}
    shared = call(tmp_path, 'r1', now=T0 + 5, communication=thread)
    assert shared['changed'] and not shared['joined'] and shared['record']['communication'] == thread
    second = call(tmp_path, 'r2', now=T0 + 60, id='inc-r2')
    assert second['joined'] and second['handled_by'] == 'r1'
    assert second['record']['id'] == 'inc-r1' and second['record']['alerts'] == ['fp-r1', 'fp-r2']
    assert second['record']['communication'] == thread
    # The joining run does not own the record: its end changes nothing.
    assert not call(tmp_path, 'r2', state='released', now=T0 + 70)['changed']


def test_a_run_after_an_open_incident_was_released_carries_it_on(tmp_path):
    call(tmp_path, 'r1')
    thread = {'slack': {'thread_ts': '1.2', 'channel': 'C1'}}
    released = call(tmp_path, 'r1', state='released', now=T0 + 100, communication=thread, outcome='advised',
                    report={'path': 'incidents/doc.md'})
    assert released['changed'] and released['record']['status'] == 'open'
    again = call(tmp_path, 'r1', state='released', now=T0 + 100, communication=thread, outcome='advised',
                 report={'path': 'incidents/doc.md'})
    assert not again['changed']
    resumed = call(tmp_path, 'r2', now=T0 + 600, id='inc-r2', started_at='2026-12-04T10:10:00Z')
    assert resumed['joined'] and resumed['handled_by'] is None
    assert resumed['record']['communication'] == thread and resumed['record']['started_at'] == '2026-12-04T10:00:00Z'
    assert resumed['record']['active']['run_id'] == 'r2'
    renewed = call(tmp_path, 'r2', now=T0 + 1500)
    assert renewed['changed'] and renewed['record']['active']['until'] == T0 + 1500 + 1800
    assert not call(tmp_path, 'r2', now=T0 + 1500)['changed']


def test_a_closed_or_stale_incident_is_not_joined(tmp_path):
    call(tmp_path, 'r1')
    assert call(tmp_path, 'r1', state='closed', now=T0 + 100)['record']['status'] == 'closed'
    fresh = call(tmp_path, 'r2', now=T0 + 200, id='inc-r2')
    assert not fresh['joined'] and fresh['record']['id'] == 'inc-r2'
    call(tmp_path, 'r2', state='released', now=T0 + 300)
    stale = call(tmp_path, 'r3', now=T0 + 300 + 3601, id='inc-r3')
    assert not stale['joined'] and stale['record']['id'] == 'inc-r3'


def test_a_killed_run_stops_handling_after_its_ttl(tmp_path):
    call(tmp_path, 'r1')
    assert call(tmp_path, 'r2', now=T0 + 1799, id='x')['handled_by'] == 'r1'
    taken = call(tmp_path, 'r3', now=T0 + 1801, id='y')
    assert taken['joined'] and taken['handled_by'] is None and taken['record']['id'] == 'inc-r1'


def test_check_mode_writes_nothing(tmp_path):
    result = call(tmp_path, 'r1', check_mode=True)
    assert result['changed'] and result['diff']['before'] == {}
    assert not (tmp_path / 'incidents' / 'inference-gateway.json').exists()


def test_bad_input_is_named(tmp_path):
    with pytest.raises(RunbookError, match='incident.id and incident.started_at'):
        run({'service': 'svc', 'run_id': 'r', 'state': 'open', 'alert': '', 'incident': {},
             'reopen_within': '1h', 'run_ttl': '30m', 'state_dir': str(tmp_path)}, False)
    with pytest.raises(RunbookError, match="service '../etc' cannot name a file"):
        run({'service': '../etc', 'run_id': 'r', 'state': 'open', 'alert': '', 'incident': {},
             'reopen_within': '1h', 'run_ttl': '30m', 'state_dir': str(tmp_path)}, False)
    with pytest.raises(RunbookError, match="'soon' is not a duration"):
        run({'service': 'svc', 'run_id': 'r', 'state': 'open', 'alert': '', 'incident': {},
             'reopen_within': 'soon', 'run_ttl': '30m', 'state_dir': str(tmp_path)}, False)
    (tmp_path / 'incidents' / 'inference-gateway.json').write_text('{not json')
    with pytest.raises(RunbookError, match='not valid JSON'):
        call(tmp_path, 'r1')


def _open(args):
    state_dir, run_id = args
    return call(pathlib.Path(state_dir), run_id)['handled_by']


def test_runs_that_start_together_see_each_other(tmp_path):
    for round_ in range(20):
        state_dir = tmp_path / str(round_)
        with multiprocessing.Pool(4) as pool:
            handled = pool.map(_open, [(str(state_dir), 'r%d' % i) for i in range(4)])
        owners = [h for h in handled if h is None]
        assert len(owners) == 1, handled
        record = json.loads((state_dir / 'incidents' / 'inference-gateway.json').read_text())
        assert len(record['alerts']) == 4

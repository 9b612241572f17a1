"""One incident per service (module_utils/incident_registry.py), on real files and flocks."""

import json
import multiprocessing
import pathlib

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso
from ansible_collections.sre.runbooks.plugins.module_utils.incident_registry import run

T0 = 1_800_000_000.0
GW = 'sre-demo/inference-gateway:'


def call(tmp_path, run_id, state='open', now=T0, check_mode=False, rollback_to=None, **incident):
    params = {'service': 'inference-gateway', 'run_id': run_id, 'state': state, 'alert': 'fp-' + run_id,
              'incident': dict({'id': 'inc-' + run_id, 'started_at': '2026-12-04T10:00:00Z'}, **incident),
              'reopen_within': '1h', 'run_ttl': '30m', 'state_dir': str(tmp_path),
              'rollback_to': dict({'revision': None, 'image': None}, **(rollback_to or {}))}
    return run(params, check_mode, now=now)


def triage(revision, image):
    """What the triage computed from the deploy history: the revision and image before the current one."""
    return {'rollback_revision': revision, 'previous_image': image, 'current_image': GW + 'v1.2.3'}


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


def test_an_incident_handed_over_keeps_its_thread_where_no_record_is(tmp_path):
    """An AWX workflow's next node, in a fresh job where the record did not persist: the incident
    it was handed (its artifact) keeps its id, thread and document, so no second thread is opened."""
    thread = {'slack': {'thread_ts': '1.2', 'channel': 'C1'}, 'log': [{'event': 'opened'}]}
    handed = call(tmp_path, 'r2', id='inc-r1', communication=thread, report={'path': 'incidents/doc.md'})
    assert not handed['joined'] and handed['record']['id'] == 'inc-r1'
    assert handed['record']['communication'] == thread and handed['channels_opened']
    assert handed['incident']['report'] == {'path': 'incidents/doc.md'}


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
    result = call(tmp_path, 'r1', check_mode=True, triage=triage(1, GW + 'v1.2.2'))
    assert result['changed'] and result['diff']['before'] == {}
    assert result['record']['rollback']['revision'] == 1 and result['incident']['triage']['rollback_revision'] == 1
    assert not (tmp_path / 'incidents' / 'inference-gateway.json').exists()


def test_the_first_run_records_the_rollback_target(tmp_path):
    first = call(tmp_path, 'r1', triage=triage(1, GW + 'v1.2.2'))
    recorded = {'revision': 1, 'image': GW + 'v1.2.2', 'recorded_at': iso(T0), 'run_id': 'r1'}
    assert first['record']['rollback'] == recorded and first['incident']['rollback'] == recorded
    assert first['incident']['triage'] == dict(triage(1, GW + 'v1.2.2'), rollback_origin='computed now')
    # The same run again (sharing its thread) and its end leave the target as it is.
    call(tmp_path, 'r1', now=T0 + 5, triage=first['incident']['triage'], rollback=recorded)
    ended = call(tmp_path, 'r1', state='ended', now=T0 + 10, outcome='escalated', rollback=recorded)
    assert ended['record']['status'] == 'open' and ended['record']['rollback'] == recorded


def test_a_run_that_joins_rolls_back_to_the_recorded_target_not_to_its_own(tmp_path):
    # The first run recorded revision 1, then an env change made revision 3 (the bad image again):
    # the triage of the next runs finds revision 2, the bad deploy, as "the previous revision".
    call(tmp_path, 'r1', triage=triage(1, GW + 'v1.2.2'))
    call(tmp_path, 'r1', state='ended', now=T0 + 100, outcome='escalated')
    after_mitigation = triage(2, GW + 'v1.2.3')
    handled = call(tmp_path, 'r2', now=T0 + 600, triage=after_mitigation)
    assert handled['joined'] and handled['handled_by'] is None
    words = 'recorded by run r1 at %s' % iso(T0)
    assert handled['incident']['triage'] == dict(after_mitigation, rollback_revision=1, previous_image=GW + 'v1.2.2',
                                                 rollback_origin=words)
    assert handled['incident']['id'] == 'inc-r1' and handled['incident']['rollback']['run_id'] == 'r1'
    # A run that only says it joined (r2 handles it) reads the same target; neither changes the record.
    said = call(tmp_path, 'r3', now=T0 + 700, triage=triage(3, GW + 'v1.2.3'))
    assert said['handled_by'] == 'r2' and said['incident']['triage']['rollback_revision'] == 1
    assert said['incident']['triage']['rollback_origin'] == words
    released = call(tmp_path, 'r2', state='released', now=T0 + 800, rollback=handled['incident']['rollback'])
    assert released['record']['rollback'] == handled['record']['rollback'] == {
        'revision': 1, 'image': GW + 'v1.2.2', 'recorded_at': iso(T0), 'run_id': 'r1'}


def test_the_first_run_that_knows_a_target_records_it(tmp_path):
    unknown = call(tmp_path, 'r1', triage=triage(None, None))
    assert 'rollback' not in unknown['record'] and 'rollback_origin' not in unknown['incident']['triage']
    call(tmp_path, 'r1', state='released', now=T0 + 100)
    known = call(tmp_path, 'r2', now=T0 + 200, triage=triage(4, GW + 'v1.2.2'))
    assert known['joined'] and known['record']['rollback']['run_id'] == 'r2'
    assert known['incident']['triage']['rollback_origin'] == 'computed now'


def test_a_closed_incident_s_target_is_not_used_by_the_next_one(tmp_path):
    call(tmp_path, 'r1', triage=triage(1, GW + 'v1.2.2'))
    closed = call(tmp_path, 'r1', state='ended', now=T0 + 100, outcome='resolved')
    assert closed['record']['status'] == 'closed'
    fresh = call(tmp_path, 'r2', now=T0 + 200, id='inc-r2', triage=triage(4, GW + 'v1.2.4'))
    assert not fresh['joined'] and fresh['record']['id'] == 'inc-r2'
    assert fresh['record']['rollback'] == {'revision': 4, 'image': GW + 'v1.2.4', 'recorded_at': iso(T0 + 200),
                                           'run_id': 'r2'}
    assert fresh['incident']['triage']['rollback_revision'] == 4
    # Nor is the target of an incident left open longer than reopen_within.
    call(tmp_path, 'r2', state='released', now=T0 + 300)
    stale = call(tmp_path, 'r3', now=T0 + 300 + 3601, id='inc-r3', triage=triage(6, GW + 'v1.2.5'))
    assert not stale['joined'] and stale['record']['rollback']['revision'] == 6


def test_an_explicit_target_wins_and_is_not_recorded(tmp_path):
    # No open incident: the computed target is recorded, the explicit one is this run's.
    first = call(tmp_path, 'r1', triage=triage(1, GW + 'v1.2.2'), rollback_to={'revision': 5})
    assert first['record']['rollback']['revision'] == 1
    assert first['incident']['triage'] == dict(triage(5, None), rollback_origin='given explicitly')
    call(tmp_path, 'r1', state='released', now=T0 + 100)
    # Joining: an image alone (compose) keeps the recorded revision, a revision brings the image given.
    image = call(tmp_path, 'r2', now=T0 + 200, triage=triage(2, GW + 'v1.2.3'), rollback_to={'image': 'v1.2.1'})
    assert image['incident']['triage'] == dict(triage(1, 'v1.2.1'), rollback_origin='given explicitly')
    call(tmp_path, 'r2', state='released', now=T0 + 300)
    both = call(tmp_path, 'r3', now=T0 + 400, triage=triage(2, GW + 'v1.2.3'),
                rollback_to={'revision': 3, 'image': GW + 'v1.2.1'})
    assert both['incident']['triage'] == dict(triage(3, GW + 'v1.2.1'), rollback_origin='given explicitly')
    assert both['record']['rollback'] == first['record']['rollback']


def test_ended_closes_by_the_outcome(tmp_path):
    call(tmp_path, 'r1')
    assert call(tmp_path, 'r1', state='ended', now=T0 + 10, outcome='advised')['record']['status'] == 'open'
    call(tmp_path, 'r2', now=T0 + 20)
    for outcome, status in (('escalated', 'open'), ('no_action', 'closed')):
        assert call(tmp_path, 'r2', state='ended', now=T0 + 30, outcome=outcome)['record']['status'] == status
        call(tmp_path, 'r2', now=T0 + 40)


def test_a_run_opens_the_channels_unless_a_run_of_the_runbook_did(tmp_path):
    # rollback.yml opened the incident and told Slack of its action: no page acknowledged yet.
    call(tmp_path, 'r1')
    action = {'log': [{'event': 'action', 'channel': 'slack', 'ok': True}], 'slack': {'thread_ts': '1.2'}}
    call(tmp_path, 'r1', state='ended', now=T0 + 10, outcome='escalated', communication=action)
    runbook = call(tmp_path, 'r2', now=T0 + 20)
    assert runbook['joined'] and not runbook['channels_opened']
    opened = {'log': action['log'] + [{'event': 'opened', 'channel': 'pagerduty', 'ok': True}], 'slack': {'thread_ts': '1.2'}}
    call(tmp_path, 'r2', now=T0 + 30, communication=opened)
    call(tmp_path, 'r2', state='ended', now=T0 + 40, outcome='escalated', communication=opened)
    assert call(tmp_path, 'r3', now=T0 + 50)['channels_opened']


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

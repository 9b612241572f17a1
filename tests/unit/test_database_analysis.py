"""The PostgreSQL analysis on plain rows shaped as pg_stat_activity gives them
(module_utils/postgres/client.py): connection usage, idle transactions, long queries, lock
chains and their root blockers, the findings, and postgres_session's guardrails."""

from ansible_collections.sre.runbooks.plugins.module_utils.analysis import database as db

SETTINGS = {'max_connections': 20, 'superuser_reserved_connections': 3}


def row(pid, state='idle', app='checkout', **kw):
    base = {'pid': pid, 'database': 'orders', 'user': 'app', 'application_name': app, 'client_addr': '10.0.0.7',
            'backend_type': 'client backend', 'state': state, 'wait_event_type': None, 'wait_event': None,
            'xact_age_s': None, 'state_age_s': 1.0, 'query_age_s': 1.0, 'query': 'SELECT 1', 'own': False,
            'superuser': False, 'blocked_by': None, 'lock_type': None, 'lock_mode': None, 'lock_relation': None,
            'wait_s': None}
    base.update(kw)
    return base


def idle_tx(pid, age, app='checkout', state='idle in transaction', **kw):
    return row(pid, state, app, state_age_s=age, xact_age_s=age + 2, query_age_s=age, **kw)


def waiter(pid, blocked_by, wait, app='checkout', **kw):
    return row(pid, 'active', app, blocked_by=blocked_by, wait_s=wait, query_age_s=wait, state_age_s=wait,
               wait_event_type='Lock', wait_event='transactionid', lock_type='transactionid', lock_mode='ShareLock', **kw)


def test_connections_count_client_backends_against_the_slots_open_to_applications():
    rows = [row(i) for i in range(12)] + [row(100, 'active', own=True, app='sre.runbooks.postgres_activity_info'),
                                          idle_tx(101, 30), row(102, app=''), row(103, state=None, app='batch'),
                                          row(200, 'active', backend_type='autovacuum worker', app=''),
                                          row(201, 'active', backend_type='walsender', app='replica')]
    conn = db.connections(rows, SETTINGS)
    assert conn == {'total': 16, 'max_connections': 20, 'reserved': 3, 'available': 1, 'usage_percent': 94.1,
                    'by_state': {'idle': 13, 'active': 1, 'idle in transaction': 1, 'unknown': 1},
                    'by_application': {'checkout': 13, 'sre.runbooks.postgres_activity_info': 1, '(none)': 1, 'batch': 1},
                    'hidden': 1}


def test_superusers_in_the_reserved_slots_go_over_100_percent_and_postgres_16_reserves_more():
    conn = db.connections([row(i) for i in range(18)], dict(SETTINGS, reserved_connections=2))
    assert conn['reserved'] == 5 and conn['available'] == 0 and conn['usage_percent'] == round(100 * 18 / 15, 1)


def test_idle_in_transaction_over_the_threshold_longest_first_aborted_included():
    rows = [idle_tx(1, 400), idle_tx(2, 100), idle_tx(3, 900, state='idle in transaction (aborted)'),
            idle_tx(4, 950, own=True), idle_tx(5, 990, app='reporting'), row(6, 'idle', state_age_s=5000)]
    found = db.idle_in_transaction(rows, 300)
    assert [s['pid'] for s in found] == [5, 3, 1]
    assert found[1]['state'] == 'idle in transaction (aborted)'
    assert found[2] == {'pid': 1, 'application_name': 'checkout', 'user': 'app', 'database': 'orders',
                        'client_addr': '10.0.0.7', 'state': 'idle in transaction', 'state_age_s': 400.0,
                        'xact_age_s': 402.0, 'query_age_s': 400.0, 'wait_event_type': None, 'wait_event': None,
                        'query': 'SELECT 1'}
    assert [s['pid'] for s in db.idle_in_transaction(rows, 300, application='checkout')] == [3, 1]


def test_long_queries_are_active_client_queries_not_the_module_nor_background_processes():
    rows = [row(1, 'active', query_age_s=700.04, wait_event_type='IO', wait_event='DataFileRead'),
            row(2, 'active', query_age_s=200), row(3, 'idle', query_age_s=9000),
            row(4, 'active', query_age_s=9000, own=True),
            row(5, 'active', query_age_s=9000, backend_type='autovacuum worker'),
            row(6, 'active', query_age_s=9000, backend_type='walsender'),
            row(7, 'active', query_age_s=800, app='reporting')]
    found = db.long_queries(rows, 300)
    assert [(s['pid'], s['query_age_s']) for s in found] == [(7, 800.0), (1, 700.0)]
    assert found[1]['wait_event_type'] == 'IO'
    assert [s['pid'] for s in db.long_queries(rows, 300, application='checkout')] == [1]


def test_a_lock_chain_has_one_root_blocker_that_blocks_everyone_behind_it():
    # 10 holds the row, idle in transaction; 11 waits for 10; 12 and 13 queue behind 11 (tuple lock).
    rows = [idle_tx(10, 600, app='reporting'), waiter(11, [10], 120), waiter(12, [11], 60, lock_relation='orders'),
            waiter(13, [11, 10], 30), row(14, 'active')]
    blocked, blockers = db.locks(rows)
    assert [(b['pid'], b['blocked_by'], b['wait_s']) for b in blocked] == [(11, [10], 120.0), (12, [11], 60.0), (13, [10, 11], 30.0)]
    assert blocked[1]['lock'] == {'type': 'transactionid', 'mode': 'ShareLock', 'relation': 'orders'}
    assert len(blockers) == 1
    root = blockers[0]
    assert (root['pid'], root['blocks'], root['blocked_pids'], root['state']) == (10, 3, [11, 12, 13], 'idle in transaction')
    assert root['application_name'] == 'reporting' and root['xact_age_s'] == 602.0


def test_the_application_filter_lists_its_waiters_and_names_their_blocker_whatever_its_application():
    rows = [idle_tx(10, 600, app='reporting'), waiter(11, [10], 120, app='checkout'), waiter(12, [10], 60, app='batch'),
            idle_tx(20, 50, app='batch'), waiter(21, [20], 40, app='batch')]
    blocked, blockers = db.locks(rows, application='checkout')
    assert [b['pid'] for b in blocked] == [11]
    assert [(b['pid'], b['blocks'], b['blocked_pids']) for b in blockers] == [(10, 2, [11, 12])]


def test_two_roots_the_most_harmful_first_a_prepared_transaction_and_a_cycle():
    rows = [idle_tx(10, 600), waiter(11, [10], 20), row(30, 'active'), waiter(31, [30], 20), waiter(32, [30], 10),
            waiter(40, [0], 5)]
    blockers = db.locks(rows)[1]
    assert [(b['pid'], b['blocks']) for b in blockers] == [(30, 2), (0, 1), (10, 1)]
    assert blockers[1]['state'] == 'prepared transaction' and blockers[1]['query'] is None
    # A deadlock before the detector breaks it: everyone waits, nobody is a root.
    blocked, blockers = db.locks([waiter(50, [51], 1), waiter(51, [50], 1)])
    assert len(blocked) == 2 and blockers == []


def report(rows, settings=None, idle=300, long=300, lock_wait=30, usage=90, application=None):
    return db.activity(rows, settings or SETTINGS, idle, long, lock_wait, usage, application)


def test_a_quiet_server_has_no_findings():
    result = report([row(i) for i in range(5)] + [row(9, 'active'), waiter(11, [9], 2)])
    assert result['findings'] == []
    assert [b['pid'] for b in result['blocked']] == [11]  # listed, but a 2 s wait is no contention


def test_the_findings_of_a_blocked_database_critical_first():
    rows = [idle_tx(10, 600, app='reporting'), waiter(11, [10], 120), waiter(12, [11], 60),
            row(20, 'active', query_age_s=900, app='batch', wait_event_type='IO', wait_event='DataFileRead')]
    findings = report(rows)['findings']
    assert [(f['kind'], f['severity'], f['pids']) for f in findings] == [
        ('lock_contention', 'critical', [10]), ('idle_in_transaction', 'critical', [10]), ('long_query', 'warning', [20])]
    assert findings[0]['summary'] == ("2 sessions waiting on locks for 30 seconds or more (longest 2 minutes, pid 11 of "
                                      "'checkout'); root blocker: pid 10 of 'reporting', idle in transaction for 10 "
                                      "minutes, blocks 2")
    assert findings[1]['summary'] == ("1 session idle in transaction for 5 minutes or more (longest 10 minutes, pid 10 "
                                      "of 'reporting'); pid 10 blocks 2")
    assert findings[2]['summary'] == ("1 query running for 5 minutes or more (longest 15 minutes, pid 20 of 'batch', "
                                      "waiting on IO/DataFileRead)")


def test_lock_contention_behind_a_running_query_is_a_warning_until_the_wait_is_long():
    rows = [row(10, 'active', query_age_s=100), waiter(11, [10], 60)]
    assert [(f['kind'], f['severity']) for f in report(rows)['findings']] == [('lock_contention', 'warning')]
    rows = [row(10, 'active', query_age_s=400), waiter(11, [10], 350)]
    kinds = [(f['kind'], f['severity'], f['pids']) for f in report(rows)['findings']]
    # The holder's query and the waiter are both long queries; the waiter is said to wait on a lock.
    assert kinds == [('lock_contention', 'critical', [10]), ('long_query', 'critical', [10, 11])]
    assert report(rows)['findings'][1]['summary'].endswith('; 1 of them wait on locks (see lock_contention); pid 10 blocks 1')


def test_connections_exhausted_from_the_threshold_critical_when_no_slot_is_left():
    rows = [row(i) for i in range(14)] + [row(20 + i, 'active', app='batch') for i in range(2)]
    findings = report(rows)['findings']
    assert [(f['kind'], f['severity'], f['pids']) for f in findings] == [('connections_exhausted', 'warning', [])]
    assert findings[0]['summary'] == ('16 connections use 94.1% of the 17 slots open to applications (max_connections '
                                      '20, 3 reserved); 14 idle, 2 active; by application: checkout 14, batch 2')
    assert report(rows, usage=95)['findings'] == []
    full = report(rows + [row(30), row(31)])['findings']
    assert full[0]['severity'] == 'critical' and full[0]['summary'].startswith('18 connections use 105.9% of the 17 slots')


def test_the_application_filter_keeps_connections_server_wide():
    rows = [idle_tx(1, 400, app='checkout'), idle_tx(2, 500, app='reporting')] + [row(10 + i) for i in range(14)]
    result = report(rows, application='checkout')
    assert [s['pid'] for s in result['idle_in_transaction']] == [1]
    assert result['connections']['total'] == 16
    assert [f['kind'] for f in result['findings']] == ['connections_exhausted', 'idle_in_transaction']


# postgres_session

def session_row(pid, age=100, app='checkout', **kw):
    return dict(row(pid, 'idle in transaction', app, state_age_s=age, mine=False, can_signal=True), **kw)


def test_the_guards():
    assert db.guard(session_row(1), False) is None
    assert db.guard(session_row(1, own=True), True) == "the module's own session"
    assert db.guard(session_row(1, backend_type='autovacuum worker'), True) == 'not a client backend (autovacuum worker)'
    superuser = session_row(1, superuser=True, user='postgres')
    assert db.guard(superuser, False) == "a superuser's session (user postgres): set allow_superuser to act on it"
    assert db.guard(superuser, True) is None
    assert db.guard(dict(superuser, mine=True), False) is None  # the connected superuser's own other sessions
    assert db.guard(session_row(1, can_signal=False), True).startswith('the connected user may not signal it: ')


def test_select_splits_the_matched_from_the_guarded_and_names_pids_with_no_session():
    rows = [session_row(1, age=50), session_row(2, age=500), session_row(3, superuser=True, user='postgres', app='psql')]
    matched, skipped = db.select(rows, False, pids=[1, 2, 3, 77])
    assert [s['pid'] for s in matched] == [2, 1]
    assert 'backend_start' not in matched[0] and matched[0]['state_age_s'] == 500.0
    assert skipped == [
        {'pid': 3, 'application_name': 'psql', 'user': 'postgres',
         'reason': "a superuser's session (user postgres): set allow_superuser to act on it"},
        {'pid': 77, 'application_name': None, 'user': None, 'reason': 'no such session'}]


def test_more_sessions_than_max_sessions_are_refused_with_what_matched():
    matched = [db.session(row(i, app='checkout' if i < 8 else 'batch')) for i in range(11)]
    assert db.too_many(matched[:10], 10, 'x') is None
    assert db.too_many(matched, 10, 'idle in transaction for 5 minutes or more') == (
        '11 sessions match (idle in transaction for 5 minutes or more), more than max_sessions 10: nothing done; '
        'by application: checkout 8, batch 3; narrow the match with application_name or pids, or raise max_sessions')


def test_outcomes_say_what_became_of_each_session():
    matched = [{'pid': 1}, {'pid': 2}, {'pid': 3}]
    assert db.outcomes(matched, {1: True, 2: False}, 'terminate', False) == [
        {'pid': 1, 'action': 'terminate', 'result': 'terminated'},
        {'pid': 2, 'action': 'terminate', 'result': 'not signalled (the session had ended)'},
        {'pid': 3, 'action': 'terminate', 'result': 'left alone (no longer matches)'}]
    assert [a['result'] for a in db.outcomes(matched[:1], {}, 'cancel', True)] == ['would be cancelled']


def test_a_session_as_a_diff_line():
    entry = db.session(idle_tx(7, 12.34, query='UPDATE orders\n SET paid = true'))
    assert db.line(entry) == "pid 7 'checkout' user app: idle in transaction for 12.3 s: UPDATE orders  SET paid = true"
    assert db.line(db.session(row(8, 'active', app='', query_age_s=3))).startswith('pid 8 no application name user app: active for 3.0 s')

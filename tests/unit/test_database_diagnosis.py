"""The Database Issues rules of the diagnosis, on postgres_activity_info's result made from the
rows of pg_stat_activity (analysis/database.py), as the investigate step records it."""

import copy

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.database import activity
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import mitigation_step
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import diagnose

SETTINGS = {'max_connections': 40, 'superuser_reserved_connections': 3}
ONSET = 1000.0


def row(pid, app, state, age=1.0, blocked_by=None, query='UPDATE orders SET reads = reads + 1 WHERE id = $1'):
    return {'pid': pid, 'application_name': app, 'user': app, 'database': 'shop', 'client_addr': '127.0.0.1',
            'backend_type': 'client backend', 'state': state, 'state_age_s': age, 'xact_age_s': age,
            'query_age_s': age, 'wait_event_type': 'Lock' if blocked_by else None,
            'wait_event': 'transactionid' if blocked_by else None, 'query': query, 'own': False,
            'superuser': False, 'blocked_by': blocked_by, 'wait_s': age if blocked_by else None,
            'lock_type': 'transactionid' if blocked_by else None, 'lock_mode': 'ShareLock' if blocked_by else None,
            'lock_relation': None}


def database(rows, application='orders'):
    found = activity(rows, SETTINGS, idle_threshold=10, long_threshold=10, lock_wait_threshold=30,
                     usage_threshold=90)
    return dict(found, application=application)


def incident(db, messages=(('database lock timeout: the order\'s row is locked by another transaction', 60),
                           ('database pool exhausted: no free connection of 4 within 300 ms', 40))):
    return copy.deepcopy({
        'service': 'orders', 'platform': 'compose',
        'triage': {'service_down': False, 'health': {'all_ok': True, 'failed_checks': [], 'checks': []},
                   'error_rate': {'verdict': 'critical', 'error_percent': 97.0, 'shape': 'spike', 'onset': ONSET,
                                  'window_seconds': 30, 'concentrated': False, 'partial': False,
                                  'by_status': [{'status': '504', 'error_rate': 4.0, 'share_of_errors': 0.6},
                                                {'status': '503', 'error_rate': 2.7, 'share_of_errors': 0.4}]},
                   'changes': []},
        'investigate': {
            'logs': {'partial': False, 'top_messages': [
                {'pattern': text, 'count': count, 'status_codes': {'504' if 'lock' in text else '503': count}}
                for text, count in messages]},
            'resources': {'max_cpu_percent': 5.0, 'max_memory_percent': 20.0, 'oom_kills': 0, 'restarts': 0,
                          'throttled': False, 'reasons': []},
            'dependencies': {'failing': ['database'], 'names': ['database']},
            'traces': {},
            'database': db},
    })


STUCK_REPORT = [row(501, 'nightly-report', 'idle in transaction', age=42.0, query='UPDATE orders SET reads = reads')] + [
    row(600 + i, 'orders', 'active', age=0.4, blocked_by=[501]) for i in range(4)]


def test_a_report_left_idle_in_its_transaction_that_blocks_the_service_is_ended():
    d = diagnose(incident(database(STUCK_REPORT)))
    cause = d['recommended']
    assert cause['cause'] == 'database' and cause['runbook_step'] == 'Database Issues'
    assert d['action']['name'] == 'terminate_sessions'
    assert d['action']['params'] == {'pids': [501], 'older_than': '10s', 'application_name': 'nightly-report'}
    assert d['action']['description'] == ("end the session idle in transaction of nightly-report (pid 501) "
                                          "blocking orders")
    assert d['action']['calls']['compose'] == {
        'module': 'sre.runbooks.postgres_session', 'disruption': 'disruptive',
        'params': {'pids': [501], 'older_than': '10s', 'application_name': 'nightly-report',
                   'action': 'terminate_idle_in_transaction'}}
    assert '4 sessions of orders wait on pid 501 of nightly-report' in cause['evidence']
    assert any(e.startswith('database: 1 session idle in transaction for 10 seconds or more (longest 42 seconds, pid 501')
               for e in cause['evidence']), cause['evidence']
    # Its errors are the database's (lock timeouts, an exhausted pool): no circuit breaker on it.
    assert cause['explains']['share'] == 1.0
    assert [c['action']['name'] for c in d['plan']] == ['terminate_sessions']
    assert not cause['database']  # acted on, not escalated to the database's owner


def test_the_step_acts_on_it_in_auto_mode_and_only_where_allowed():
    inc = incident(database(STUCK_REPORT))
    inc['diagnosis'] = diagnose(inc)
    allowed = ['rollback', 'terminate_sessions']
    step = mitigation_step(inc, 1, mode='auto', allowed_actions=allowed)
    assert step['decision'] == 'act' and step['call']['module'] == 'sre.runbooks.postgres_session'
    assert mitigation_step(inc, 1, mode='auto', allowed_actions=['rollback'])['decision'] == 'escalate'


def test_a_session_idle_for_less_than_the_threshold_is_not_ended():
    young = [dict(STUCK_REPORT[0], state_age_s=4.0, xact_age_s=4.0, query_age_s=4.0)] + STUCK_REPORT[1:]
    d = diagnose(incident(database(young)))
    assert 'terminate_sessions' not in [c['action']['name'] for c in d['causes']]


def test_a_long_query_of_another_application_that_blocks_the_service_is_cancelled():
    rows = [row(700, 'analytics', 'active', age=95.0, query='SELECT ... FOR UPDATE')] + [
        row(610 + i, 'orders', 'active', age=0.5, blocked_by=[700]) for i in range(3)]
    d = diagnose(incident(database(rows)))
    assert d['action']['name'] == 'cancel_queries'
    assert d['action']['params'] == {'pids': [700], 'older_than': '10s', 'application_name': 'analytics'}
    assert d['action']['description'] == 'cancel the query of analytics (pid 700) blocking orders'


def test_connections_taken_by_the_services_own_pool_restart_the_service():
    rows = [row(800 + i, 'orders', 'idle', age=300.0) for i in range(36)]
    d = diagnose(incident(database(rows), messages=(('database pool exhausted: no free connection', 50),)))
    assert d['recommended']['cause'] == 'database'
    assert d['action']['name'] == 'restart'
    assert d['action']['description'] == ("restart orders to reset its connection pool (36 of the database's "
                                          "connections are its own)")


def test_connections_taken_by_others_go_to_the_database_owner():
    rows = [row(900 + i, 'batch', 'idle', age=300.0) for i in range(36)]
    d = diagnose(incident(database(rows), messages=(('database unavailable: too many clients', 50),)))
    assert d['action']['name'] == 'escalate'
    assert d['recommended']['database'] is True
    assert d['action']['params']['reason'].startswith('escalate to the database owner: 36 connections use 97.3%')


def test_a_database_that_could_not_be_read_is_missing_evidence_and_nothing_ends_a_session():
    d = diagnose(incident({'failed': True, 'msg': 'could not connect to 127.0.0.1:5433: connection refused'}))
    assert 'database: could not connect to 127.0.0.1:5433: connection refused' in d['missing_evidence']
    assert 'terminate_sessions' not in [c['action']['name'] for c in d['causes']]


def test_a_service_without_a_database_is_diagnosed_as_before():
    d = diagnose(incident({}))
    assert 'database: not gathered' not in d['missing_evidence']
    assert d['recommended']['cause'] == 'dependency'

"""postgres_activity_info and postgres_session as Ansible runs them, against a real PostgreSQL
(postgres_server.py: a private cluster, max_connections 20, 3 reserved), with real client sessions
the tests hold open: idle in transaction, running a long query, holding a row lock others wait
for, filling the connection slots. The modules connect as `runbook` (pg_monitor,
pg_signal_backend, a password); the applications as `app`; the tests administer as the superuser.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.postgres.client import Postgres
from conftest import COLLECTIONS, run_module
from postgres_server import MAX_CONNECTIONS, SUPERUSER_RESERVED, PostgresServer, free_port

PASSWORD = 'runbook-Secret-4711'
APP_PASSWORD = 'app-pw'
AGE = 2.3  # seconds the sessions are left to age, over the tests' thresholds of 2s
TERMINATE_IDLE = {'action': 'terminate_idle_in_transaction', 'older_than': '2s'}


@pytest.fixture(scope='session')
def pg():
    server = PostgresServer().start()
    try:
        with server.connect() as admin:
            admin.execute("CREATE ROLE runbook LOGIN PASSWORD '%s' IN ROLE pg_monitor, pg_signal_backend" % PASSWORD)
            admin.execute("CREATE ROLE app LOGIN PASSWORD '%s'" % APP_PASSWORD)
            admin.execute('CREATE TABLE orders (id int PRIMARY KEY, paid bool)')
            admin.execute('INSERT INTO orders VALUES (1, false)')
            admin.execute('GRANT ALL ON orders TO app')
        yield server
    except BaseException:
        print(server.log_tail())
        raise
    finally:
        server.stop()


def args(pg, **kw):
    return dict({'port': pg.port, 'user': 'runbook', 'password': PASSWORD, 'connect_timeout': 2}, **kw)


def activity(pg, **kw):
    result = run_module('postgres_activity_info', args(pg, idle_in_transaction_threshold='2s',
                                                       long_query_threshold='2s', lock_wait_threshold='1s', **kw))
    assert not result.get('failed'), result.get('msg')
    return result


def session(pg, check_mode=False, **kw):
    return run_module('postgres_session', args(pg, **kw), check_mode=check_mode)


class Sessions:
    """Client sessions the test holds open, as applications would; all ended after the test."""

    def __init__(self, pg):
        self.pg, self.conns, self.threads, self.errors = pg, [], [], {}

    def open(self, app, user='app', autocommit=True):
        conn = self.pg.connect(user, APP_PASSWORD if user == 'app' else None, app, autocommit=autocommit)
        self.conns.append(conn)
        return conn

    def idle(self, app):
        return self.open(app).info.backend_pid

    def idle_in_transaction(self, app, sql='SELECT 1', user='app'):
        conn = self.open(app, user, autocommit=False)
        conn.execute(sql)
        return conn.info.backend_pid

    def running(self, app, sql='SELECT pg_sleep(600)', waits_on_lock=False):
        """A session running sql in a thread, once the server shows it running (waiting on a lock)."""
        conn = self.open(app)
        pid = conn.info.backend_pid

        def run():
            try:
                conn.execute(sql)
            except psycopg.Error as err:
                self.errors[pid] = err
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

        def started():
            now = state(self.pg, pid) or {}
            return now.get('state') == 'active' and (now['wait_event_type'] == 'Lock') == waits_on_lock
        until(started)
        return pid

    def end(self):
        with self.pg.connect(application_name='tests-admin') as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        for thread in self.threads:
            thread.join(10)
        for conn in self.conns:
            conn.close()
        until(lambda: not clients(self.pg))


@pytest.fixture
def sessions(pg):
    held = Sessions(pg)
    yield held
    held.end()


def until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out waiting'
        time.sleep(0.05)


def state(pg, pid):
    with pg.connect(application_name='tests-admin') as admin:
        return admin.cursor(row_factory=psycopg.rows.dict_row).execute(
            'SELECT state, wait_event_type, query FROM pg_stat_activity WHERE pid = %s', [pid]).fetchone()


def clients(pg):
    """The pids of the client sessions but the one asking (an earlier one may linger a moment)."""
    with pg.connect(application_name='tests-admin') as admin:
        return {r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                            "AND pid <> pg_backend_pid()")}


def warnings(result):
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


def one_line(result):
    assert result['failed'] and '\n' not in result['msg'], result
    return result['msg']


def test_activity_names_the_idle_transactions_the_long_query_and_the_lock_chain(pg, sessions):
    idle = sessions.idle_in_transaction('checkout', "SELECT '%s'" % ('x' * 300))
    holder = sessions.idle_in_transaction('reporting', 'UPDATE orders SET paid = true WHERE id = 1')
    first = sessions.running('worker', 'UPDATE orders SET paid = false WHERE id = 1', waits_on_lock=True)
    second = sessions.running('worker', 'UPDATE orders SET paid = false WHERE id = 1', waits_on_lock=True)
    sleeper = sessions.running('batch')
    quiet = sessions.idle('checkout')
    time.sleep(AGE)

    result = activity(pg)
    assert result['changed'] is False and result['server_version'] >= 100000
    conn = result['connections']
    assert conn['total'] == 7  # the six sessions and the module's own
    assert (conn['max_connections'], conn['reserved'], conn['available']) == (MAX_CONNECTIONS, SUPERUSER_RESERVED, 10)
    assert conn['usage_percent'] == round(100 * 7 / 17, 1) and conn['hidden'] == 0
    assert conn['by_state'] == {'idle in transaction': 2, 'active': 4, 'idle': 1}
    assert conn['by_application'] == {'checkout': 2, 'reporting': 1, 'worker': 2, 'batch': 1,
                                      'sre.runbooks.postgres_activity_info': 1}

    idle_tx = {s['pid']: s for s in result['idle_in_transaction']}
    assert set(idle_tx) == {idle, holder}
    assert all(s['state_age_s'] >= 2 and s['xact_age_s'] >= s['state_age_s'] for s in idle_tx.values())
    assert idle_tx[idle]['query'] == "SELECT '%s" % ('x' * 192) and len(idle_tx[idle]['query']) == 200
    assert (idle_tx[holder]['user'], idle_tx[holder]['client_addr']) == ('app', '127.0.0.1')

    long = {s['pid']: s for s in result['long_queries']}
    assert set(long) == {first, second, sleeper} and quiet not in long
    assert long[sleeper]['query'] == 'SELECT pg_sleep(600)' and long[sleeper]['query_age_s'] >= 2
    assert (long[sleeper]['wait_event_type'], long[sleeper]['wait_event']) == ('Timeout', 'PgSleep')

    blocked = {b['pid']: b for b in result['blocked']}
    assert set(blocked) == {first, second}
    assert blocked[first]['blocked_by'] == [holder] and blocked[first]['wait_s'] >= 2
    assert blocked[first]['lock']['mode'] == 'ShareLock'
    assert first in blocked[second]['blocked_by']  # queued behind the first waiter (the tuple lock)
    assert [(b['pid'], b['blocks'], b['blocked_pids'], b['state']) for b in result['blockers']] == [
        (holder, 2, sorted([first, second]), 'idle in transaction')]

    findings = {f['kind']: f for f in result['findings']}
    assert [f['kind'] for f in result['findings']] == ['lock_contention', 'idle_in_transaction', 'long_query']
    assert findings['lock_contention']['severity'] == 'critical' and findings['lock_contention']['pids'] == [holder]
    assert "root blocker: pid %d of 'reporting', idle in transaction for" % holder in findings['lock_contention']['summary']
    assert findings['idle_in_transaction']['severity'] == 'critical'  # the holder blocks two sessions
    assert sorted(findings['idle_in_transaction']['pids']) == sorted([idle, holder])
    assert findings['long_query']['summary'].startswith('3 queries running for 2 seconds or more')

    # Only the workers: their waits, and the blocker of another application that holds them up.
    workers = activity(pg, application_name='worker')
    assert workers['idle_in_transaction'] == [] and {s['pid'] for s in workers['long_queries']} == {first, second}
    assert {b['pid'] for b in workers['blocked']} == {first, second}
    assert [b['pid'] for b in workers['blockers']] == [holder]
    assert workers['connections']['total'] == 7

    # Check mode reads the same, and nothing was changed by any of it.
    checked = run_module('postgres_activity_info', args(pg, idle_in_transaction_threshold='2s'), check_mode=True)
    assert checked['changed'] is False and {s['pid'] for s in checked['idle_in_transaction']} == {idle, holder}
    assert {idle, holder, first, second, sleeper, quiet} <= clients(pg)


def test_terminate_idle_in_transaction_check_mode_then_act_then_nothing_left(pg, sessions):
    targets = {sessions.idle_in_transaction('checkout'), sessions.idle_in_transaction('checkout')}
    other_app = sessions.idle_in_transaction('reporting')
    idle = sessions.idle('checkout')
    committed = sessions.open('checkout', autocommit=False)
    committed.execute('SELECT 1')
    time.sleep(AGE)
    committed.commit()  # was idle in transaction past the threshold; committed before the module ran
    everyone = targets | {other_app, idle, committed.info.backend_pid}

    planned = session(pg, check_mode=True, application_name='checkout', _ansible_diff=True, **TERMINATE_IDLE)
    assert planned['changed'] is True and {s['pid'] for s in planned['before']} == targets
    assert all(s['state'] == 'idle in transaction' and s['state_age_s'] >= 2 for s in planned['before'])
    assert sorted(planned['acted'], key=lambda a: a['pid']) == [
        {'pid': pid, 'action': 'terminate', 'result': 'would be terminated'} for pid in sorted(targets)]
    assert planned['after'] == [] and planned['skipped'] == []
    assert planned['diff']['before'].count('\n') == 2 and planned['diff']['after'] == ''
    assert "idle in transaction for 2 seconds or more of application 'checkout'" in planned['diff']['before_header']
    assert everyone <= clients(pg)  # check mode changed nothing

    done = session(pg, application_name='checkout', _ansible_diff=True, **TERMINATE_IDLE)
    assert done['changed'] is True and {s['pid'] for s in done['before']} == targets
    assert {(a['pid'], a['result']) for a in done['acted']} == {(pid, 'terminated') for pid in targets}
    assert done['after'] == [] and done['diff']['after'] == ''
    left = clients(pg)
    assert not targets & left and {other_app, idle, committed.info.backend_pid} <= left
    assert state(pg, other_app)['state'] == 'idle in transaction'

    again = session(pg, application_name='checkout', **TERMINATE_IDLE)
    assert (again['changed'], again['before'], again['acted']) == (False, [], [])


def test_cancel_long_queries_of_one_application_keeps_its_sessions_and_spares_the_others(pg, sessions):
    reporting = sessions.running('reporting')
    checkout = sessions.running('checkout')
    time.sleep(AGE)
    done = session(pg, action='cancel_long_queries', older_than='2s', application_name='reporting')
    assert done['changed'] is True and [s['pid'] for s in done['before']] == [reporting]
    assert done['acted'] == [{'pid': reporting, 'action': 'cancel', 'result': 'cancelled'}]
    assert done['after'] == []
    until(lambda: reporting in sessions.errors)
    assert isinstance(sessions.errors[reporting], psycopg.errors.QueryCanceled)
    assert state(pg, reporting)['state'] == 'idle'  # cancelled, still connected
    assert state(pg, checkout)['state'] == 'active' and checkout not in sessions.errors
    assert session(pg, action='cancel_long_queries', older_than='2s', application_name='reporting')['changed'] is False


def test_max_sessions_refuses_and_changes_nothing_then_explicit_pids(pg, sessions):
    bulk = [sessions.idle_in_transaction('bulk') for _index in range(3)]
    time.sleep(AGE)
    refused = session(pg, application_name='bulk', max_sessions=2, **TERMINATE_IDLE)
    assert one_line(refused) == (
        "3 sessions match (idle in transaction for 2 seconds or more of application 'bulk'), more than max_sessions 2: "
        'nothing done; by application: bulk 3; narrow the match with application_name or pids, or raise max_sessions')
    assert {s['pid'] for s in refused['before']} == set(bulk) and refused['changed'] is False
    assert set(bulk) <= clients(pg)

    # pids narrow the action under the limit; then terminate by pid, a pid with no session named.
    narrowed = session(pg, application_name='bulk', max_sessions=2, pids=bulk[:1], **TERMINATE_IDLE)
    assert [a['pid'] for a in narrowed['acted']] == bulk[:1] and narrowed['acted'][0]['result'] == 'terminated'
    gone = 4_000_000
    explicit = session(pg, action='terminate', pids=[bulk[1], gone])
    assert explicit['acted'] == [{'pid': bulk[1], 'action': 'terminate', 'result': 'terminated'}]
    assert explicit['skipped'] == [{'pid': gone, 'application_name': None, 'user': None, 'reason': 'no such session'}]
    assert warnings(explicit) == ['left alone: pid %d, no such session' % gone]
    left = clients(pg)
    assert bulk[2] in left and not set(bulk[:2]) & left
    again = session(pg, action='terminate', pids=[bulk[1]])
    assert again['changed'] is False and again['acted'] == [] and again['skipped'][0]['reason'] == 'no such session'


def test_superuser_sessions_and_background_processes_are_left_alone(pg, sessions):
    admin = sessions.idle_in_transaction('psql', user='postgres')
    time.sleep(AGE)
    kept = session(pg, application_name='psql', **TERMINATE_IDLE)
    assert kept['changed'] is False and kept['before'] == []
    assert kept['skipped'] == [{'pid': admin, 'application_name': 'psql', 'user': 'postgres',
                                'reason': "a superuser's session (user postgres): set allow_superuser to act on it"}]
    assert warnings(kept) == ["left alone: pid %d, a superuser's session (user postgres): set allow_superuser to act on it"
                              % admin]
    # Allowed, the runbook's role still may not signal a superuser: pg_signal_backend does not reach them.
    denied = session(pg, application_name='psql', allow_superuser=True, **TERMINATE_IDLE)
    assert denied['changed'] is False and denied['skipped'][0]['reason'].startswith('the connected user may not signal it')
    with pg.connect(application_name='tests-admin') as conn:
        checkpointer = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()[0]
    background = session(pg, action='terminate', pids=[checkpointer])
    assert background['changed'] is False and background['skipped'][0]['reason'] == 'not a client backend (checkpointer)'
    assert admin in clients(pg) and state(pg, admin)['state'] == 'idle in transaction'


def test_connections_near_and_at_max_connections(pg, sessions):
    for _index in range(15):
        sessions.idle('checkout')
    near = activity(pg)['connections']
    assert (near['total'], near['available'], near['usage_percent']) == (16, 1, 94.1)
    found = activity(pg)['findings']
    assert [(f['kind'], f['severity']) for f in found] == [('connections_exhausted', 'warning')]
    assert found[0]['summary'].startswith('16 connections use 94.1% of the 17 slots open to applications')

    sessions.idle('checkout')
    sessions.idle('checkout')  # 17: the slots open to non-superusers are all taken
    refused = run_module('postgres_activity_info', args(pg))
    assert one_line(refused).startswith(
        'cannot connect to PostgreSQL at 127.0.0.1:%d as runbook (database postgres): remaining connection slots are '
        'reserved' % pg.port)
    assert refused['msg'].endswith('the connections are exhausted: connect as a superuser (reserved slots) to see them')
    full = run_module('postgres_activity_info', {'port': pg.port, 'user': 'postgres'})  # a reserved slot
    assert (full['connections']['total'], full['connections']['available']) == (18, 0)
    assert full['findings'][0]['kind'] == 'connections_exhausted' and full['findings'][0]['severity'] == 'critical'
    assert full['connections']['by_application']['checkout'] == 17


def test_a_session_that_committed_since_it_was_selected_is_left_alone(pg, sessions):
    """The signal re-checks the condition in its own statement (client.Postgres, as the module calls it)."""
    commits = sessions.open('checkout', autocommit=False)
    commits.execute('SELECT 1')
    stays = sessions.idle_in_transaction('checkout')
    time.sleep(AGE)
    params = {'host': '127.0.0.1', 'port': pg.port, 'database': 'postgres', 'user': 'runbook', 'password': PASSWORD,
              'sslmode': None, 'connect_timeout': 2, 'statement_timeout': 5}
    wanted = {'older_than': 2.0, 'application': 'checkout', 'pids': None}
    with Postgres(params, 'tests') as db:
        rows = db.sessions('terminate_idle_in_transaction', wanted)
        assert {r['pid'] for r in rows} == {commits.info.backend_pid, stays}
        commits.commit()
        assert db.signal('terminate_idle_in_transaction', wanted, rows) == {stays: True}
    assert commits.info.backend_pid in clients(pg) and commits.execute('SELECT 1').fetchone() == (1,)


def silent_port():
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(8)
    return sock


def test_bad_input_fails_in_one_line_that_says_what_to_check(pg):
    closed = free_port(0)
    wrong_port = run_module('postgres_activity_info', args(pg, port=closed))
    assert one_line(wrong_port) == (
        'cannot connect to PostgreSQL at 127.0.0.1:%d as runbook (database postgres): Connection refused: is PostgreSQL '
        'listening on 127.0.0.1:%d (listen_addresses, port, a firewall)?' % (closed, closed))

    wrong_password = session(pg, password='Not-the-Password-9', **TERMINATE_IDLE)
    assert one_line(wrong_password) == (
        'cannot connect to PostgreSQL at 127.0.0.1:%d as runbook (database postgres): password authentication failed '
        'for user "runbook": check user and password, and the pg_hba.conf entry for this client' % pg.port)
    assert 'Not-the-Password-9' not in json.dumps(wrong_password)

    no_database = run_module('postgres_activity_info', args(pg, database='ordres'))
    assert one_line(no_database).endswith('database "ordres" does not exist: check user and database')

    with silent_port() as sock:
        started = time.monotonic()
        hung = run_module('postgres_activity_info', args(pg, port=sock.getsockname()[1], connect_timeout=1))
        assert time.monotonic() - started < 10
    assert one_line(hung).endswith('connection timeout expired: no answer within connect_timeout 1 s: check host, port '
                                   'and the network')

    bad_duration = run_module('postgres_activity_info', args(pg, long_query_threshold='5 minutes'))
    assert one_line(bad_duration) == ("long_query_threshold: '5 minutes' is not a duration: use a number of seconds or "
                                      "units ms, s, m, h, d, w, y as in '30s', '5m', '1h30m'")
    assert one_line(session(pg, action='cancel_long_queries', older_than='10x')).startswith("older_than: '10x' is not a duration")
    assert one_line(session(pg, action='cancel_long_queries')) == 'action is cancel_long_queries but all of the following are missing: older_than'
    assert one_line(session(pg, action='terminate', pids=[1], older_than='5m')) == (
        'older_than applies to terminate_idle_in_transaction and cancel_long_queries: drop it, or use one of those actions')


def test_without_psycopg_the_module_says_which_library_to_install(tmp_path):
    (tmp_path / 'psycopg').mkdir()
    (tmp_path / 'psycopg' / '__init__.py').write_text("raise ImportError(\"No module named 'psycopg'\")\n")
    proc = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.sre.runbooks.plugins.modules.postgres_activity_info'],
        input=json.dumps({'ANSIBLE_MODULE_ARGS': {'password': PASSWORD}}), capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH='%s:%s' % (tmp_path, COLLECTIONS)), check=False)
    result = json.loads(proc.stdout)
    assert 'Traceback' not in proc.stderr and 'exception' not in result
    assert one_line(result).startswith('Failed to import the required Python library (psycopg) on ')
    assert result['msg'].endswith("(No module named 'psycopg')") and PASSWORD not in proc.stdout

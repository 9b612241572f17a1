# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one PostgreSQL client of the collection, on psycopg 3: the modules' connection options,
one connection per task, its queries, and one-line errors.

Every call is bounded: the connection by connect_timeout (and TCP keepalives for a peer that
vanishes), every query by the session's statement_timeout. Errors name host:port and what to
check, and never hold the password.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError as err:  # ansible-test's import sanity test runs without third-party libraries
    HAS_PSYCOPG, PSYCOPG_ERROR = False, str(err)
else:
    HAS_PSYCOPG, PSYCOPG_ERROR = True, ''

CONNECTION_ARGS: dict[str, dict[str, Any]] = dict(
    host=dict(type='str', default='127.0.0.1'),
    port=dict(type='int', default=5432),
    database=dict(type='str', default='postgres'),
    user=dict(type='str', default='postgres'),
    password=dict(type='str', no_log=True),
    sslmode=dict(type='str', choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
    connect_timeout=dict(type='int', default=5),
    statement_timeout=dict(type='int', default=5),
)
QUERY_CHARS = 200  # of a session's query text returned
SETTLE_SECONDS = 3.0  # how long a signalled session is given to leave the match
IDLE_IN_TRANSACTION_SQL = "('idle in transaction', 'idle in transaction (aborted)')"
# The action's condition on pg_stat_activity a: the selection and the signal use the same one.
CONDITIONS = {
    'terminate_idle_in_transaction': (
        "a.backend_type = 'client backend' AND a.state IN %s "
        "AND a.state_change <= now() - %%(older_than)s * interval '1 second'" % IDLE_IN_TRANSACTION_SQL),
    'cancel_long_queries': (
        "a.backend_type = 'client backend' AND a.state = 'active' "
        "AND a.query_start <= now() - %(older_than)s * interval '1 second'"),
    'terminate': 'true',
}
SIGNALS = {'terminate_idle_in_transaction': ('pg_terminate_backend', 'terminate'),
           'cancel_long_queries': ('pg_cancel_backend', 'cancel'),
           'terminate': ('pg_terminate_backend', 'terminate')}

SESSION_COLUMNS = '''
    a.pid, a.datname AS database, a.usename AS "user", a.application_name, host(a.client_addr) AS client_addr,
    a.backend_type, a.state, a.wait_event_type, a.wait_event, a.backend_start,
    EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_s,
    EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS state_age_s,
    EXTRACT(EPOCH FROM now() - a.query_start)::float8 AS query_age_s,
    left(a.query, %d) AS query, a.pid = pg_backend_pid() AS own, r.rolsuper AS superuser''' % QUERY_CHARS
ACTIVITY_SQL = '''
WITH waiting AS (
    SELECT DISTINCT ON (pid) pid, locktype, mode, database, relation, %(waitstart)s AS waitstart
    FROM pg_locks WHERE NOT granted ORDER BY pid)
SELECT %(columns)s,
    CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by,
    w.locktype AS lock_type, w.mode AS lock_mode,
    CASE WHEN w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         THEN w.relation::regclass::text ELSE w.relation::text END AS lock_relation,
    EXTRACT(EPOCH FROM now() - COALESCE(w.waitstart, a.state_change))::float8 AS wait_s
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
LEFT JOIN waiting w ON w.pid = a.pid AND a.wait_event_type = 'Lock'
'''
SETTINGS_SQL = '''
SELECT name, setting FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
'''
SESSIONS_SQL = '''
SELECT %(columns)s, a.usename = current_user AS mine,
    CASE WHEN current_setting('is_superuser') = 'on' THEN true
         WHEN r.rolsuper THEN false
         ELSE pg_has_role(current_user, a.usesysid, 'MEMBER') OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')
    END AS can_signal
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE %(where)s
'''
# Re-checked and signalled in one statement: a session that left the condition since it was
# selected (committed, finished) is left alone; a pid reused by a new backend is not the same
# (pid, backend_start).
SIGNAL_SQL = '''
SELECT a.pid, %(function)s(a.pid) AS signalled
FROM pg_stat_activity a
WHERE %(where)s AND (a.pid, a.backend_start) IN (
    SELECT * FROM unnest(%%(target_pids)s::int[], %%(target_starts)s::timestamptz[]))
'''


def seconds_option(params: Mapping[str, Any], name: str) -> float:
    """The seconds of a duration option, or a RunbookError naming the option."""
    try:
        return parse_duration(params[name])
    except ValueError as err:
        raise RunbookError('%s: %s' % (name, err))


def condition(action: str, application: str | None, pids: Iterable[int] | None) -> str:
    """The WHERE clause of an action and its filters (parameters older_than, application, pids)."""
    parts = [CONDITIONS[action]]
    if pids is not None:
        parts.append('a.pid = ANY(%(pids)s::int[])')
    if application is not None:
        parts.append('a.application_name = %(application)s')
    return ' AND '.join(parts)


class Postgres:
    """One connection, autocommit, with the module's statement_timeout; a context manager that
    closes it."""

    def __init__(self, params: Mapping[str, Any], application_name: str) -> None:
        self.where = '%s:%s' % (params['host'], params['port'])
        self.params = params
        if not HAS_PSYCOPG:
            raise RunbookError(missing_required_lib('psycopg') + ' (%s)' % PSYCOPG_ERROR)
        for name in ('connect_timeout', 'statement_timeout'):
            if params[name] < 1:
                raise RunbookError('%s must be at least 1 (seconds), not %s' % (name, params[name]))
        try:
            self.conn = psycopg.connect(
                host=params['host'], port=params['port'], dbname=params['database'], user=params['user'],
                password=params.get('password'), sslmode=params.get('sslmode'),
                connect_timeout=params['connect_timeout'], application_name=application_name,
                keepalives=1, keepalives_idle=params['connect_timeout'], keepalives_interval=1, keepalives_count=3,
                autocommit=True, row_factory=dict_row)
        except psycopg.Error as err:
            raise RunbookError(self.connect_error(err))
        try:
            self.query("SELECT set_config('statement_timeout', %s, false)", ['%ds' % params['statement_timeout']])
        except RunbookError:
            self.close()
            raise

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    def scrub(self, text: str) -> str:
        password = self.params.get('password')
        return text.replace(password, '********') if password else text

    def connect_error(self, err: Exception) -> str:
        """One line: where, as whom, what failed, and what to check."""
        p = self.params
        text = self.scrub(str(err)).strip()
        # psycopg's first line: 'connection failed: connection to server at "h", port p failed: FATAL:  <the
        # server's words>' (of the last address tried, when host names several).
        detail = re.sub(r'^(connection failed: )?(connection to server (at|on) .*? failed: )?(FATAL: +)?', '',
                        text.splitlines()[0] if text else type(err).__name__)
        lowered = text.lower()
        hints = (
            ('authentication failed', 'check user and password, and the pg_hba.conf entry for this client'),
            ('no pg_hba.conf entry', 'add a pg_hba.conf entry for this client, user and database, or connect from an allowed host'),
            ('too many clients', 'the connections are exhausted: connect as a superuser (reserved slots) to see them'),
            ('remaining connection slots are reserved', 'the connections are exhausted: connect as a superuser '
                                                        '(reserved slots) to see them'),
            ('connection refused', 'is PostgreSQL listening on %s (listen_addresses, port, a firewall)?' % self.where),
            ('timeout expired', 'no answer within connect_timeout %d s: check host, port and the network' % p['connect_timeout']),
            ('does not exist', 'check user and database'),
            ('resolve host', 'check host'),
            ('ssl', 'check sslmode and the server\'s ssl setting'),
        )
        hint = next((h for key, h in hints if key in lowered), 'check host, port, user and database')
        return 'cannot connect to PostgreSQL at %s as %s (database %s): %s: %s' % (
            self.where, p['user'], p['database'], detail.rstrip('.'), hint)

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        try:
            cursor = self.conn.execute(sql, args)
            return cursor.fetchall() if cursor.description else []
        except psycopg.errors.QueryCanceled as err:
            raise RunbookError('PostgreSQL at %s did not answer within statement_timeout (%d s): %s; check the '
                               "server's load, or raise statement_timeout" % (
                                   self.where, self.params['statement_timeout'], _first_line(err)))
        except psycopg.errors.InsufficientPrivilege as err:
            raise RunbookError('PostgreSQL at %s refused user %s: %s; grant it pg_monitor (to read) and '
                               'pg_signal_backend (to act)' % (self.where, self.params['user'], _first_line(err)))
        except psycopg.OperationalError as err:
            raise RunbookError('lost the connection to PostgreSQL at %s: %s; check the server and its log'
                               % (self.where, self.scrub(_first_line(err))))
        except psycopg.Error as err:
            raise RunbookError('PostgreSQL at %s failed the query: %s' % (self.where, self.scrub(_first_line(err))))

    def settings(self) -> dict[str, int]:
        """max_connections, superuser_reserved_connections (and reserved_connections from 16)."""
        return {r['name']: int(r['setting']) for r in self.query(SETTINGS_SQL)}

    def activity(self) -> list[dict[str, Any]]:
        """Every backend of pg_stat_activity, with the lock it waits for and who holds it."""
        waitstart = 'waitstart' if self.server_version >= 140000 else 'NULL::timestamptz'
        return self.query(ACTIVITY_SQL % {'columns': SESSION_COLUMNS, 'waitstart': waitstart})

    def sessions(self, action: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The backends that meet the action's condition and filters (args: older_than,
        application, pids), with mine and can_signal."""
        where = condition(action, args.get('application'), args.get('pids'))
        return self.query(SESSIONS_SQL % {'columns': SESSION_COLUMNS, 'where': where}, dict(args))

    def signal(self, action: str, args: Mapping[str, Any], targets: Iterable[Mapping[str, Any]]) -> dict[int, bool]:
        """Signals the targets (rows of sessions()) that still meet the condition, in one statement;
        pid -> what the signal function answered, for those it was sent to."""
        targets = list(targets)
        where = condition(action, args.get('application'), args.get('pids'))
        sql = SIGNAL_SQL % {'function': SIGNALS[action][0], 'where': where}
        rows = self.query(sql, dict(args, target_pids=[t['pid'] for t in targets],
                                    target_starts=[t['backend_start'] for t in targets]))
        return {r['pid']: bool(r['signalled']) for r in rows}

    def settle(self, action: str, args: Mapping[str, Any], signalled: Iterable[int]) -> list[dict[str, Any]]:
        """sessions() again, once the signalled sessions have left the match (a terminated backend
        exits, a cancelled query ends), or after SETTLE_SECONDS."""
        signalled = set(signalled)
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            rows = self.sessions(action, args)
            if not signalled & {r['pid'] for r in rows} or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]

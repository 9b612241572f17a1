# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL sessions and what is wrong with them: pure, on plain rows.

A row is one backend of pg_stat_activity as module_utils/postgres/client.py reads it: pid,
database, user, application_name, client_addr, backend_type, state, wait_event_type, wait_event,
the ages in seconds xact_age_s, state_age_s, query_age_s (None when unset), query, own (the
module's own backend), superuser (its role is one), blocked_by (pg_blocking_pids, for sessions
waiting on a lock, else None), lock_type, lock_mode, lock_relation and wait_s (the lock it waits
for and since when). postgres_session's rows also have mine (the session is the connected
user's) and can_signal (the connected user may signal it).

Connection usage is of the slots open to non-superusers: max_connections minus the reserved
ones (superuser_reserved_connections, and reserved_connections from PostgreSQL 16), where
applications get "too many clients" once they are all taken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import human_duration

CLIENT = 'client backend'
IDLE_IN_TRANSACTION = ('idle in transaction', 'idle in transaction (aborted)')
KINDS = ('connections_exhausted', 'lock_contention', 'idle_in_transaction', 'long_query')
Row = Mapping[str, Any]


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _of(row: Row, application: str | None) -> bool:
    """A client session other than the module's own, of `application` when one is given."""
    return (row.get('backend_type') == CLIENT and not row.get('own')
            and (application is None or row.get('application_name') == application))


def _app(row: Row) -> str:
    return "'%s'" % row['application_name'] if row.get('application_name') else 'no application name'


def session(row: Row) -> dict[str, Any]:
    """What the modules return of a session."""
    return {
        'pid': row['pid'], 'application_name': row.get('application_name'), 'user': row.get('user'),
        'database': row.get('database'), 'client_addr': row.get('client_addr'), 'state': row.get('state'),
        'state_age_s': _seconds(row.get('state_age_s')), 'xact_age_s': _seconds(row.get('xact_age_s')),
        'query_age_s': _seconds(row.get('query_age_s')), 'wait_event_type': row.get('wait_event_type'),
        'wait_event': row.get('wait_event'), 'query': row.get('query'),
    }


def connections(rows: Iterable[Row], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Client backends against max_connections. hidden: sessions of other roles whose state the
    connected user may not see (it lacks pg_read_all_stats)."""
    clients = [r for r in rows if r.get('backend_type') == CLIENT]
    max_connections = int(settings['max_connections'])
    reserved = int(settings.get('superuser_reserved_connections') or 0) + int(settings.get('reserved_connections') or 0)
    slots = max(max_connections - reserved, 1)
    return {
        'total': len(clients),
        'max_connections': max_connections,
        'reserved': reserved,
        'available': max(slots - len(clients), 0),
        'usage_percent': round(100.0 * len(clients) / slots, 1),
        'by_state': dict(Counter(r.get('state') or 'unknown' for r in clients)),
        'by_application': dict(Counter(r.get('application_name') or '(none)' for r in clients)),
        'hidden': sum(1 for r in clients if r.get('state') is None),
    }


def idle_in_transaction(rows: Iterable[Row], threshold: float, application: str | None = None) -> list[dict[str, Any]]:
    """Sessions idle in a transaction for at least `threshold` seconds, the longest first."""
    found = [r for r in rows if _of(r, application) and r.get('state') in IDLE_IN_TRANSACTION
             and (r.get('state_age_s') or 0) >= threshold]
    return [session(r) for r in sorted(found, key=lambda r: -(r.get('state_age_s') or 0))]


def long_queries(rows: Iterable[Row], threshold: float, application: str | None = None) -> list[dict[str, Any]]:
    """Queries running (state active) for at least `threshold` seconds, the longest first."""
    found = [r for r in rows if _of(r, application) and r.get('state') == 'active'
             and (r.get('query_age_s') or 0) >= threshold]
    return [session(r) for r in sorted(found, key=lambda r: -(r.get('query_age_s') or 0))]


def _walk(start: Iterable[int], edges: Mapping[int, Iterable[int]]) -> set[int]:
    """Every pid reached from `start` along `edges` (start excluded unless reached again)."""
    seen: set[int] = set()
    todo = list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def locks(rows: Iterable[Row], application: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(blocked, blockers). blocked: the sessions (of `application`) waiting on a lock, the longest
    wait first, with the pids they wait for. blockers: the root blockers of those, sessions that
    block others and wait for nobody (whatever their application), each with the sessions it
    blocks directly or through others, the most first. pid 0 is a prepared transaction."""
    rows = list(rows)
    by_pid = {r['pid']: r for r in rows}
    waits_for = {r['pid']: list(r['blocked_by']) for r in rows if r.get('blocked_by')}
    waited_by: dict[int, list[int]] = {}
    for pid, holders in waits_for.items():
        for holder in holders:
            waited_by.setdefault(holder, []).append(pid)
    listed = [r for r in rows if r['pid'] in waits_for and _of(r, application)]
    blocked = [dict(session(r), blocked_by=sorted(waits_for[r['pid']]), wait_s=_seconds(r.get('wait_s')),
                    lock={'type': r.get('lock_type'), 'mode': r.get('lock_mode'), 'relation': r.get('lock_relation')})
               for r in sorted(listed, key=lambda r: -(r.get('wait_s') or 0))]
    roots = {pid for r in listed for pid in _walk([r['pid']], waits_for) if pid not in waits_for}
    blockers = []
    for pid in roots:
        victims = sorted(_walk([pid], waited_by))
        row = by_pid.get(pid) or {'pid': pid, 'state': 'prepared transaction' if pid == 0 else None}
        blockers.append(dict(session(row), blocks=len(victims), blocked_pids=victims))
    blockers.sort(key=lambda b: (-b['blocks'], b['pid']))
    return blocked, blockers


def _who(entry: Mapping[str, Any]) -> str:
    return 'pid %s of %s' % (entry['pid'], _app(entry))


def findings(report: Mapping[str, Any], idle_threshold: float, long_threshold: float, lock_wait_threshold: float,
             usage_threshold: float) -> list[dict[str, Any]]:
    """What is wrong, one finding per kind, critical first: {kind, severity, summary, pids}.
    report: connections, idle_in_transaction, long_queries, blocked, blockers as above.

    critical: no slot left for applications; sessions waiting on a lock for longer than the long
    query threshold or behind a blocker idle in its transaction; idle transactions or long
    queries that block others. warning otherwise. pids: the sessions to act on (for lock
    contention, the root blockers); none for connections."""
    found: list[dict[str, Any]] = []
    conn = report['connections']
    blocking = {b['pid']: b['blocks'] for b in report['blockers']}
    if conn['usage_percent'] >= usage_threshold:
        top = sorted(conn['by_application'].items(), key=lambda kv: -kv[1])[:3]
        found.append({
            'kind': 'connections_exhausted', 'severity': 'warning' if conn['available'] else 'critical', 'pids': [],
            'summary': '%d connections use %s%% of the %d slots open to applications (max_connections %d, %d reserved); '
                       '%s; by application: %s' % (
                           conn['total'], _percent(conn['usage_percent']), conn['max_connections'] - conn['reserved'],
                           conn['max_connections'], conn['reserved'],
                           ', '.join('%d %s' % (n, s) for s, n in sorted(conn['by_state'].items(), key=lambda kv: -kv[1])),
                           ', '.join('%s %d' % (a, n) for a, n in top))})
    waiting = [b for b in report['blocked'] if (b['wait_s'] or 0) >= lock_wait_threshold]
    if waiting:
        roots = report['blockers']
        idle_root = any(r.get('state') in IDLE_IN_TRANSACTION for r in roots)
        longest = waiting[0]
        found.append({
            'kind': 'lock_contention', 'pids': [r['pid'] for r in roots],
            'severity': 'critical' if idle_root or (longest['wait_s'] or 0) >= long_threshold else 'warning',
            'summary': '%d session%s waiting on locks for %s or more (longest %s, %s); root blocker%s: %s' % (
                len(waiting), _s(waiting), human_duration(lock_wait_threshold), human_duration(longest['wait_s'] or 0),
                _who(longest), _s(roots), '; '.join(
                    '%s, %s, blocks %d' % (_who(r), _doing(r), r['blocks']) for r in roots) or 'none found (a deadlock?)')})
    for kind, entries, threshold, age, words in (
            ('idle_in_transaction', report['idle_in_transaction'], idle_threshold, 'state_age_s',
             ('session', 'sessions', 'idle in transaction')),
            ('long_query', report['long_queries'], long_threshold, 'query_age_s', ('query', 'queries', 'running'))):
        if not entries:
            continue
        blockers = [e for e in entries if blocking.get(e['pid'])]
        oldest = entries[0]
        summary = '%d %s %s for %s or more (longest %s, %s' % (
            len(entries), words[len(entries) > 1], words[2], human_duration(threshold), human_duration(oldest[age] or 0),
            _who(oldest))
        if kind == 'long_query' and oldest.get('wait_event_type'):
            summary += ', waiting on %s/%s' % (oldest['wait_event_type'], oldest.get('wait_event'))
        summary += ')'
        on_locks = sum(1 for e in entries if e.get('wait_event_type') == 'Lock')
        if kind == 'long_query' and on_locks:
            summary += '; %d of them wait on locks (see lock_contention)' % on_locks
        if blockers:
            summary += '; %s' % ', '.join('pid %s blocks %d' % (e['pid'], blocking[e['pid']]) for e in blockers)
        found.append({'kind': kind, 'severity': 'critical' if blockers else 'warning', 'summary': summary,
                      'pids': [e['pid'] for e in entries]})
    return sorted(found, key=lambda f: (f['severity'] != 'critical', KINDS.index(f['kind'])))


def _s(items: list[Any]) -> str:
    return '' if len(items) == 1 else 's'


def _percent(value: float) -> str:
    return ('%.1f' % value).rstrip('0').rstrip('.')


def _doing(entry: Mapping[str, Any]) -> str:
    state = entry.get('state')
    if state in IDLE_IN_TRANSACTION and entry.get('state_age_s') is not None:
        return '%s for %s' % (state, human_duration(entry['state_age_s']))
    if state == 'active' and entry.get('query_age_s') is not None:
        return 'running a query for %s' % human_duration(entry['query_age_s'])
    return state or 'state unknown'


def activity(rows: Iterable[Row], settings: Mapping[str, Any], idle_threshold: float, long_threshold: float,
             lock_wait_threshold: float, usage_threshold: float, application: str | None = None) -> dict[str, Any]:
    """postgres_activity_info's result from its rows: connections (server-wide, whatever
    `application`), idle_in_transaction, long_queries, blocked, blockers and findings."""
    rows = list(rows)
    blocked, blockers = locks(rows, application)
    report = {
        'connections': connections(rows, settings),
        'idle_in_transaction': idle_in_transaction(rows, idle_threshold, application),
        'long_queries': long_queries(rows, long_threshold, application),
        'blocked': blocked,
        'blockers': blockers,
    }
    report['findings'] = findings(report, idle_threshold, long_threshold, lock_wait_threshold, usage_threshold)
    return report


# postgres_session: which sessions an action may touch.

def guard(row: Row, allow_superuser: bool) -> str | None:
    """Why postgres_session leaves a session alone, or None when it may act on it."""
    if row.get('own'):
        return "the module's own session"
    if row.get('backend_type') != CLIENT:
        return 'not a client backend (%s)' % (row.get('backend_type') or 'unknown')
    if row.get('superuser') and not row.get('mine') and not allow_superuser:
        return "a superuser's session (user %s): set allow_superuser to act on it" % row.get('user')
    if not row.get('can_signal'):
        return ('the connected user may not signal it: connect as a superuser or a member of pg_signal_backend '
                "(a superuser's session needs a superuser)")
    return None


def select(rows: Iterable[Row], allow_superuser: bool, pids: Iterable[int] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(matched, skipped) of the rows an action's condition selected: the sessions it may act on,
    the longest in their state first, and those a guard keeps it from, with the reason; with
    explicit `pids`, those with no session too."""
    rows = list(rows)
    matched, skipped = [], []
    for row in sorted(rows, key=lambda r: -(r.get('state_age_s') or 0)):
        reason = guard(row, allow_superuser)
        if reason:
            skipped.append({'pid': row['pid'], 'application_name': row.get('application_name'),
                            'user': row.get('user'), 'reason': reason})
        else:
            matched.append(session(row))
    seen = {r['pid'] for r in rows}
    skipped += [{'pid': pid, 'application_name': None, 'user': None, 'reason': 'no such session'}
                for pid in sorted(set(pids or ())) if pid not in seen]
    return matched, skipped


def too_many(matched: list[dict[str, Any]], max_sessions: int, what: str) -> str | None:
    """The refusal when more sessions match than max_sessions allows, else None."""
    if len(matched) <= max_sessions:
        return None
    apps = Counter(s.get('application_name') or '(none)' for s in matched)
    return ('%d sessions match (%s), more than max_sessions %d: nothing done; by application: %s; narrow the '
            'match with application_name or pids, or raise max_sessions' % (
                len(matched), what, max_sessions, ', '.join('%s %d' % kv for kv in apps.most_common())))


def line(entry: Mapping[str, Any]) -> str:
    """One session as a line of a diff."""
    age = entry.get('query_age_s') if entry.get('state') == 'active' else entry.get('state_age_s')
    return 'pid %s %s user %s: %s%s: %s' % (
        entry['pid'], _app(entry), entry.get('user'), entry.get('state') or 'state unknown',
        ' for %s s' % age if age is not None else '', (entry.get('query') or '').replace('\n', ' ')[:80])


def outcomes(matched: Iterable[Mapping[str, Any]], signalled: Mapping[int, bool], verb: str,
             check_mode: bool) -> list[dict[str, Any]]:
    """acted: for each matched session, what became of it. signalled: pid -> what
    pg_terminate_backend / pg_cancel_backend answered, for the sessions that still matched when
    the signal was sent; the others had left the state (committed, finished) and were left alone."""
    done = {'terminate': 'terminated', 'cancel': 'cancelled'}[verb]
    acted = []
    for entry in matched:
        pid = entry['pid']
        if check_mode:
            result = 'would be %s' % done
        elif pid not in signalled:
            result = 'left alone (no longer matches)'
        else:
            result = done if signalled[pid] else 'not signalled (the session had ended)'
        acted.append({'pid': pid, 'action': verb, 'result': result})
    return acted

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: postgres_session
short_description: Terminate idle transactions, cancel long queries or terminate sessions of a PostgreSQL server, guarded
version_added: 1.1.0
description:
  - The acting step of the "Database Issues" runbook on PostgreSQL, after
    M(sre.runbooks.postgres_activity_info) has named the sessions.
  - O(action=terminate_idle_in_transaction) terminates (C(pg_terminate_backend)) the sessions idle in a
    transaction, aborted ones included, for O(older_than) or more; their transactions roll back.
  - O(action=cancel_long_queries) cancels (C(pg_cancel_backend)) the queries running for O(older_than) or
    more; their sessions stay connected.
  - O(action=terminate) terminates the sessions O(pids) names.
  - O(application_name) and O(pids) narrow the first two actions; O(application_name) narrows
    O(action=terminate). Name the application whenever you can.
  - Guardrails. It never touches its own session, a backend other than a client's (autovacuum, WAL
    senders, background workers), nor another user's superuser session unless O(allow_superuser). When
    more than O(max_sessions) sessions match, it fails and does nothing. RV(skipped) lists the
    sessions a guard kept it from, with the reason, and the module warns about them.
  - The sessions are selected, then each is checked again and signalled in one SQL statement, with
    the same condition and the same backend (pid and start time); a session that committed or
    finished in between is left alone (V(left alone (no longer matches\)) in RV(acted)).
  - Idempotent. Once the sessions are gone, or their queries ended, nothing older than O(older_than)
    matches and a second run changes nothing.
  - The user needs C(pg_signal_backend) (or to be a superuser, or a member of the sessions' roles) to
    signal, and C(pg_read_all_stats) (C(pg_monitor)) to see other roles' sessions at all.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.postgres
seealso:
  - module: sre.runbooks.postgres_activity_info
    description: The server's connections, idle transactions, long queries and lock waits, with findings.
requirements:
  - psycopg 3 (C(psycopg), with C(psycopg-binary) or the libpq library) on the host the module runs on.
  - PostgreSQL 10 or later.
attributes:
  check_mode:
    support: full
    description: Selects the sessions as it would and signals none; RV(acted) says what it would do.
  diff_mode:
    support: full
    description: The matching sessions, one line each, before and after.
  action_group:
    support: full
    membership:
      - sre.runbooks.postgres
    description: Use C(group/sre.runbooks.postgres) in C(module_defaults) to set the connection once.
options:
  action:
    description: What to do; see the description.
    type: str
    choices: [terminate_idle_in_transaction, cancel_long_queries, terminate]
    required: true
  older_than:
    description:
      - A duration such as C(5m) or C(90s). Sessions idle in their transaction for this long or more
        (O(action=terminate_idle_in_transaction)), or queries running for this long or more
        (O(action=cancel_long_queries)).
      - Required by those two actions; O(action=terminate) takes none.
    type: str
  pids:
    description:
      - The sessions to terminate with O(action=terminate) (required then); with the other actions, only
        these sessions may be acted on. A pid with no session is listed in RV(skipped).
    type: list
    elements: int
  application_name:
    description: Only the sessions of this application (C(application_name), exact). Strongly recommended.
    type: str
  max_sessions:
    description: When more sessions than this match, fail and do nothing.
    type: int
    default: 10
  allow_superuser:
    description: Act on superuser sessions of users other than O(user) too.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Which checkout sessions would be terminated?
  sre.runbooks.postgres_session:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    action: terminate_idle_in_transaction
    older_than: 5m
    application_name: checkout
  check_mode: true
  register: planned

- name: Terminate them
  sre.runbooks.postgres_session:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    action: terminate_idle_in_transaction
    older_than: 5m
    application_name: checkout
    max_sessions: 5

- name: Cancel the reporting queries running for more than 10 minutes
  sre.runbooks.postgres_session:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    action: cancel_long_queries
    older_than: 10m
    application_name: reporting

- name: Terminate the root blocker postgres_activity_info found
  sre.runbooks.postgres_session:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    action: terminate
    pids: "{{ db.blockers | map(attribute='pid') | list }}"
  when: db.blockers | length > 0
'''

RETURN = r'''
before:
  description:
    - The sessions that matched, the longest in their state first, each with C(pid), C(application_name),
      C(user), C(database), C(client_addr), C(state), C(state_age_s), C(xact_age_s), C(query_age_s),
      C(wait_event_type), C(wait_event) and C(query) (cut to 200 characters).
  returned: always
  type: list
  elements: dict
after:
  description:
    - The sessions that still match, read again once the signalled ones have gone (up to 3 seconds);
      in check mode, what would remain (none).
  returned: always
  type: list
  elements: dict
acted:
  description:
    - One entry per session of RV(before), C(pid), C(action) (C(terminate) or C(cancel)) and C(result),
      V(terminated), V(cancelled), V(left alone (no longer matches\)), V(not signalled (the session had
      ended\)), or in check mode V(would be terminated) / V(would be cancelled).
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 4170, action: terminate, result: terminated}
skipped:
  description: Sessions that met the condition but that a guardrail kept the module from, C(pid), C(application_name), C(user), C(reason).
  returned: always
  type: list
  elements: dict
diff:
  description: With C(--diff), the matching sessions, one line each, before and after.
  returned: when diff mode is on
  type: dict
'''

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.analysis import database
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import human_duration
from ansible_collections.sre.runbooks.plugins.module_utils.postgres.client import CONNECTION_ARGS, SIGNALS, Postgres, seconds_option

SPEC: dict[str, Any] = dict(
    argument_spec=dict(
        CONNECTION_ARGS,
        action=dict(type='str', required=True, choices=list(SIGNALS)),
        older_than=dict(type='str'),
        pids=dict(type='list', elements='int'),
        application_name=dict(type='str'),
        max_sessions=dict(type='int', default=10),
        allow_superuser=dict(type='bool', default=False),
    ),
    required_if=[('action', 'terminate_idle_in_transaction', ['older_than']),
                 ('action', 'cancel_long_queries', ['older_than']),
                 ('action', 'terminate', ['pids'])],
)


def main() -> None:
    module = AnsibleModule(supports_check_mode=True, **SPEC)
    finish(module, outcome(lambda: run(module)))


def run(module: Any) -> dict[str, Any]:
    p, check_mode = module.params, module.check_mode
    action, verb = p['action'], SIGNALS[p['action']][1]
    if action == 'terminate' and p['older_than'] is not None:
        raise RunbookError('older_than applies to terminate_idle_in_transaction and cancel_long_queries: drop it, '
                           'or use one of those actions')
    if p['max_sessions'] < 1:
        raise RunbookError('max_sessions must be at least 1, not %d' % p['max_sessions'])
    args = {'older_than': None if p['older_than'] is None else seconds_option(p, 'older_than'),
            'application': p['application_name'], 'pids': p['pids']}
    what = describe(action, args)
    with Postgres(p, 'sre.runbooks.postgres_session') as db:
        rows = db.sessions(action, args)
        matched, skipped = database.select(rows, p['allow_superuser'], p['pids'] if action == 'terminate' else None)
        refusal = database.too_many(matched, p['max_sessions'], what)
        if refusal:
            raise RunbookError(refusal, changed=False, before=matched, skipped=skipped)
        signalled: dict[int, bool] = {}
        after: list[dict[str, Any]] = []
        if matched and not check_mode:
            targets = [r for r in rows if r['pid'] in {m['pid'] for m in matched}]
            signalled = db.signal(action, args, targets)
            after = database.select(db.settle(action, args, [pid for pid, sent in signalled.items() if sent]),
                                    p['allow_superuser'])[0]
    if skipped:
        module.warn('left alone: %s' % '; '.join('pid %s, %s' % (s['pid'], s['reason']) for s in skipped))
    acted = database.outcomes(matched, signalled, verb, check_mode)
    result = dict(changed=any(a['result'] in ('terminated', 'cancelled') for a in acted) or (check_mode and bool(matched)),
                  before=matched, after=after, acted=acted, skipped=skipped)
    if module._diff:
        header = 'PostgreSQL %s:%s, sessions %s' % (p['host'], p['port'], what)
        result['diff'] = {'before_header': header, 'after_header': header,
                          'before': ''.join(database.line(s) + '\n' for s in matched),
                          'after': ''.join(database.line(s) + '\n' for s in after)}
    return result


def describe(action: str, args: dict[str, Any]) -> str:
    """The sessions an action is after, in words."""
    words = {'terminate_idle_in_transaction': 'idle in transaction for %s or more',
             'cancel_long_queries': 'running a query for %s or more',
             'terminate': 'with pids %s'}[action]
    text = words % (', '.join(map(str, args['pids'])) if action == 'terminate' else human_duration(args['older_than']))
    if args['pids'] is not None and action != 'terminate':
        text += ' among pids %s' % ', '.join(map(str, args['pids']))
    if args['application'] is not None:
        text += " of application '%s'" % args['application']
    return text


if __name__ == '__main__':
    main()

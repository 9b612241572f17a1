#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: postgres_activity_info
short_description: Connections, idle transactions, long queries and lock waits of a PostgreSQL server
version_added: 1.1.0
description:
  - The "Database Issues" runbook's first look at a PostgreSQL server, in one connection and three
    short queries (C(pg_settings), and C(pg_stat_activity) with C(pg_locks) and C(pg_blocking_pids)).
  - RV(connections) counts the client backends of the whole server against the slots open to
    applications, C(max_connections) minus the reserved ones (C(superuser_reserved_connections), and
    C(reserved_connections) from PostgreSQL 16); beyond them applications get C(too many clients).
  - RV(idle_in_transaction) lists the sessions idle in a transaction for O(idle_in_transaction_threshold)
    or more, RV(long_queries) the queries running for O(long_query_threshold) or more, RV(blocked) the
    sessions waiting on a lock with the sessions they wait for, and RV(blockers) the root blockers,
    those that block others and wait for nobody, with how many sessions they hold up.
  - RV(findings) says what is wrong, one finding per kind, from these figures alone (the analysis is
    pure and unit-tested). To end the sessions it names, use M(sre.runbooks.postgres_session).
  - Only client backends are listed (not autovacuum, WAL senders or other background processes), never
    the module's own session. Query texts are cut to 200 characters.
  - To see other roles' sessions the user needs C(pg_read_all_stats) (the C(pg_monitor) role, or a
    superuser); without it their state and query are hidden (RV(connections.hidden)) and the module warns.
  - Never changes anything.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.postgres
  - sre.runbooks.read_only
seealso:
  - module: sre.runbooks.postgres_session
    description: Terminate sessions idle in transaction, cancel long queries, terminate sessions by pid.
attributes:
  action_group:
    support: full
    membership:
      - sre.runbooks.postgres
    description: Use C(group/sre.runbooks.postgres) in C(module_defaults) to set the connection once.
requirements:
  - psycopg 3 (C(psycopg), with C(psycopg-binary) or the libpq library) on the host the module runs on.
  - PostgreSQL 10 or later.
options:
  idle_in_transaction_threshold:
    description: A session idle in a transaction for this long or more is listed; a duration such as C(5m), C(90s).
    type: str
    default: 5m
  long_query_threshold:
    description: A query running this long or more is listed; a duration.
    type: str
    default: 5m
  lock_wait_threshold:
    description:
      - Sessions waiting on a lock this long or more make a C(lock_contention) finding; a duration.
        RV(blocked) lists every waiting session, however short its wait.
    type: str
    default: 30s
  connection_usage_threshold:
    description: A C(connections_exhausted) finding from this RV(connections.usage_percent) up.
    type: float
    default: 90
  application_name:
    description:
      - Only the sessions of this application (C(application_name), exact) are listed in
        RV(idle_in_transaction), RV(long_queries) and RV(blocked). RV(connections) stays server-wide,
        and RV(blockers) names the root blockers of the sessions listed, whatever their application.
    type: str
'''

EXAMPLES = r'''
- name: What is wrong with the orders database?
  sre.runbooks.postgres_activity_info:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    idle_in_transaction_threshold: 2m
    long_query_threshold: 5m
  register: db

- name: Say it
  ansible.builtin.debug:
    msg: "{{ db.findings | map(attribute='summary') | list }}"

- name: The root blockers, the most harmful first
  ansible.builtin.debug:
    msg: "pid {{ item.pid }} ({{ item.application_name }}, {{ item.state }}) blocks {{ item.blocks }} sessions"
  loop: "{{ db.blockers }}"

- name: Only the sessions of the checkout service
  sre.runbooks.postgres_activity_info:
    host: db.internal
    user: runbook
    password: "{{ vault_runbook_db_password }}"
    application_name: checkout
  register: checkout_db
'''

RETURN = r'''
connections:
  description: The client backends of the whole server.
  returned: always
  type: dict
  contains:
    total:
      description: Client backends, the module's own included.
      type: int
    max_connections:
      description: C(max_connections).
      type: int
    reserved:
      description: Slots reserved for superusers (C(superuser_reserved_connections)) and, from PostgreSQL 16, C(reserved_connections).
      type: int
    available:
      description: Slots still open to applications, max_connections - reserved - total, at least 0.
      type: int
    usage_percent:
      description: total as a percentage of max_connections - reserved; over 100 when superusers use the reserved slots.
      type: float
    by_state:
      description: Sessions by state (C(active), C(idle), C(idle in transaction), ...; C(unknown) when hidden).
      type: dict
    by_application:
      description: Sessions by C(application_name) (C((none)) when unset).
      type: dict
    hidden:
      description: Sessions of other roles whose state and query O(user) may not see.
      type: int
  sample:
    total: 18
    max_connections: 20
    reserved: 3
    available: 0
    usage_percent: 105.9
    by_state: {idle: 15, active: 2, idle in transaction: 1}
    by_application: {checkout: 16, psql: 1, sre.runbooks.postgres_activity_info: 1}
    hidden: 0
idle_in_transaction:
  description:
    - Sessions idle in a transaction for O(idle_in_transaction_threshold) or more, the longest first. Each
      has C(pid), C(application_name), C(user), C(database), C(client_addr), C(state), C(state_age_s)
      (seconds idle), C(xact_age_s) (seconds since the transaction began), C(query_age_s),
      C(wait_event_type), C(wait_event) and C(query) (its last query).
  returned: always
  type: list
  elements: dict
long_queries:
  description:
    - Queries running for O(long_query_threshold) or more, the longest first; the same keys as
      RV(idle_in_transaction), C(query_age_s) the seconds the query has run.
  returned: always
  type: list
  elements: dict
blocked:
  description:
    - Sessions waiting on a lock, the longest wait first; the keys of RV(idle_in_transaction) and
      C(blocked_by) (the pids holding or queued before it, C(pg_blocking_pids)), C(wait_s) (seconds
      waiting) and C(lock) (C(type), C(mode), C(relation) of the lock it waits for).
  returned: always
  type: list
  elements: dict
blockers:
  description:
    - The root blockers of RV(blocked), the most harmful first; the keys of RV(idle_in_transaction)
      and C(blocks) (how many sessions wait on it, directly or behind others) and C(blocked_pids).
      pid 0 is a prepared transaction (C(pg_prepared_xacts)).
  returned: always
  type: list
  elements: dict
findings:
  description:
    - What is wrong, critical first, at most one per kind. C(kind) is C(connections_exhausted),
      C(lock_contention), C(idle_in_transaction) or C(long_query); C(severity) C(critical) or
      C(warning); C(summary) one line with the figures; C(pids) the sessions to act on (for
      C(lock_contention), the root blockers; none for C(connections_exhausted)).
    - C(critical) when no slot is left for applications, when sessions wait on locks behind a session
      idle in transaction or for longer than O(long_query_threshold), and when idle transactions or
      long queries block other sessions.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: lock_contention
      severity: critical
      summary: "2 sessions waiting on locks for 30 seconds or more (longest 4 minutes, pid 4242 of 'checkout');
        root blocker: pid 4170 of 'reporting', idle in transaction for 6 minutes, blocks 2"
      pids: [4170]
server_version:
  description: The server's version number, C(server_version_num) (150018 for 15.18).
  returned: always
  type: int
'''

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.analysis import database
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.postgres.client import CONNECTION_ARGS, Postgres, seconds_option

SPEC: dict[str, Any] = dict(argument_spec=dict(
    CONNECTION_ARGS,
    idle_in_transaction_threshold=dict(type='str', default='5m'),
    long_query_threshold=dict(type='str', default='5m'),
    lock_wait_threshold=dict(type='str', default='30s'),
    connection_usage_threshold=dict(type='float', default=90),
    application_name=dict(type='str'),
))


def main() -> None:
    module = AnsibleModule(supports_check_mode=True, **SPEC)
    finish(module, outcome(lambda: collect(module.params, module.warn)))


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    idle, long, lock_wait = (seconds_option(p, name) for name in
                             ('idle_in_transaction_threshold', 'long_query_threshold', 'lock_wait_threshold'))
    with Postgres(p, 'sre.runbooks.postgres_activity_info') as db:
        settings, rows, version = db.settings(), db.activity(), db.server_version
    report = database.activity(rows, settings, idle, long, lock_wait, p['connection_usage_threshold'], p['application_name'])
    hidden = report['connections']['hidden']
    if hidden:
        warn('%d sessions of other roles are hidden from user %s: grant it pg_monitor to see their state and query'
             % (hidden, p['user']))
    return dict(changed=False, server_version=version, **report)


if __name__ == '__main__':
    main()

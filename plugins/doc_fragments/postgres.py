# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of the PostgreSQL modules (module_utils/postgres/client.py).
    DOCUMENTATION = r'''
options:
  host:
    description: Host name or address of the server, or the directory of its Unix socket.
    type: str
    default: 127.0.0.1
  port:
    description: Port of the server.
    type: int
    default: 5432
  database:
    description: Database to connect to. The sessions of every database of the server are seen.
    type: str
    default: postgres
  user:
    description: Role to connect as (see the description for the roles it needs).
    type: str
    default: postgres
  password:
    description:
      - Password of O(user). Never shown in output nor in errors. Without it libpq's C(PGPASSWORD)
        and C(~/.pgpass) apply.
    type: str
  sslmode:
    description: libpq's C(sslmode); libpq's default (C(prefer)) when unset.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  connect_timeout:
    description: Seconds to wait for the connection (libpq's C(connect_timeout)); at least 1.
    type: int
    default: 5
  statement_timeout:
    description: Seconds each of the module's own queries may run (C(statement_timeout) of its session); at least 1.
    type: int
    default: 5
'''

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: remediation_lock
short_description: Guardrails of a mitigation, one remediation at a time per service
version_added: 1.0.0
description:
  - With O(state=acquired), takes the remediation lock of a service before an action, so that two
    runs (two on-call engineers, an Event-Driven Ansible run and a human) never act on the same
    service at once. A lock held by another run fails the task and names that run, its incident,
    its process and when the lock expires. A lock whose run crashed expires after O(ttl) and is
    then taken over (RV(took_over) says from whom).
  - On the same call it checks the service's ledger of actions, at most O(max_actions) actions
    per incident and O(cooldown) between two actions on the service. When one of them forbids
    acting, RV(allowed) is false with RV(reasons), and no lock is taken.
  - Taking it again in the same run (same O(run_id)) renews its expiry, so that a run that tries a
    second action, or watches the first one for long, keeps other runs out until it is done.
  - With O(state=recorded), adds the action taken (O(record)) to the ledger and keeps the lock.
    With O(state=released), does the same when O(record) is given and releases the lock when this
    run holds it. Releasing a lock this run does not hold changes nothing.
  - Lock and ledger are small JSON files under O(state_dir) on the host the module runs on
    (the service's docker host), written atomically.
author: sre.runbooks developers (@sre-runbooks)
attributes:
  check_mode:
    support: full
    description: Reports what it would do; writes nothing.
  diff_mode:
    support: none
    description: The lock is not configuration; RV(lock) shows it.
options:
  service:
    description: The service the remediation acts on.
    type: str
    required: true
  run_id:
    description: Identifies this run (for example the incident id and the run's start time); the lock is this run's.
    type: str
    required: true
  owner:
    description: Who runs it, for the message another run gets, for example C(alice@laptop) or C(awx job 42).
    type: str
  incident_id:
    description: The incident the actions count against, for O(max_actions).
    type: str
    required: true
  state:
    description: V(acquired) takes the lock after the guardrail checks; V(recorded) records an action; V(released) releases.
    type: str
    choices: [acquired, recorded, released]
    default: acquired
  ttl:
    description: How long the lock holds without being released, a duration such as C(15m).
    type: str
    default: 15m
  max_actions:
    description: Actions at most per incident; then the run must escalate.
    type: int
    default: 2
  cooldown:
    description: Time after an action on the service before the next one, a duration; C(0) for none.
    type: str
    default: 5m
  record:
    description:
      - With O(state=recorded) or O(state=released), the action to add to the ledger, with C(name),
        C(description), C(acted) and any other key (see the examples). C(acted) says whether the
        service was changed; only those count for the guardrails.
    type: dict
  state_dir:
    description: Directory of the lock and ledger files on the host.
    type: path
    default: /var/lib/sre-runbooks
'''

EXAMPLES = r'''
- name: Take the remediation lock of the gateway
  sre.runbooks.remediation_lock:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident_id: "{{ incident.id }}"
    max_actions: 2
    cooldown: 5m
  register: guard

- name: Record the rollback
  sre.runbooks.remediation_lock:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident_id: "{{ incident.id }}"
    state: recorded
    record: {name: rollback, description: rollback to v1.2.2, acted: true}

- name: Release the lock once the rollback is verified
  sre.runbooks.remediation_lock:
    service: inference-gateway
    run_id: "{{ incident.run_id }}"
    incident_id: "{{ incident.id }}"
    state: released
'''

RETURN = r'''
allowed:
  description: True when the guardrails allow an action now (and, with O(state=acquired), the lock is ours).
  returned: always
  type: bool
reasons:
  description: Why no action is allowed, one sentence each.
  returned: always
  type: list
  elements: str
lock:
  description: The lock after the call (run_id, incident_id, owner, acquired_at, expires_at), or V(null).
  returned: always
  type: dict
took_over:
  description: The expired lock of another run that this call replaced, or V(null).
  returned: always
  type: dict
actions:
  description: The ledger's actions of this incident, oldest first.
  returned: always
  type: list
  elements: dict
lock_file:
  description: Path of the lock file.
  returned: always
  type: str
ledger_file:
  description: Path of the ledger file.
  returned: always
  type: str
'''

import os
import re
import time
from contextlib import nullcontext

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.guardrails import LEDGER_SIZE, held_message, ledger_entry, lock_verdict, new_lock, refusals
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError, read_json, serialized, write_json
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type='str', required=True),
            run_id=dict(type='str', required=True),
            owner=dict(type='str'),
            incident_id=dict(type='str', required=True),
            state=dict(type='str', choices=['acquired', 'recorded', 'released'], default='acquired'),
            ttl=dict(type='str', default='15m'),
            max_actions=dict(type='int', default=2),
            cooldown=dict(type='str', default='5m'),
            record=dict(type='dict'),
            state_dir=dict(type='path', default='/var/lib/sre-runbooks'),
        ),
        required_if=[('state', 'recorded', ['record'])],
        supports_check_mode=True,
    )
    finish(module, outcome(lambda: run(module.params, module.check_mode)))


def run(p, check_mode):
    try:
        ttl = parse_duration(p['ttl'])
        cooldown = parse_duration(p['cooldown'])
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    if ttl <= 0 or p['max_actions'] < 1:
        raise RunbookError('ttl must be positive and max_actions at least 1')
    name = re.sub(r'[^A-Za-z0-9_.-]', '_', p['service'])
    lock_file = os.path.join(p['state_dir'], 'locks', name + '.lock')
    ledger_file = os.path.join(p['state_dir'], 'actions', name + '.json')
    # Check mode writes nothing, so it races nothing: no guard file is made for it.
    with nullcontext() if check_mode else serialized(lock_file):
        return decide(p, check_mode, lock_file, ledger_file, ttl, cooldown)


def decide(p, check_mode, lock_file, ledger_file, ttl, cooldown):
    """Read, decide and write, alone (run() serializes the callers): the lock taken, renewed,
    taken over when expired or released, and the ledger added to, by one run at a time."""
    now = time.time()
    try:
        lock = read_json(lock_file, None)
        ledger = read_json(ledger_file, [])
    except StateError as err:
        raise RunbookError('cannot read the guardrail state of %s: %s' % (p['service'], err))
    verdict = lock_verdict(lock, p['run_id'], now)
    result = dict(changed=False, allowed=False, reasons=[], lock=lock, took_over=None,
                  lock_file=lock_file, ledger_file=ledger_file)

    def finished(**kw):
        result.update(kw)
        result['actions'] = [a for a in ledger if a.get('incident_id') == p['incident_id']]
        return result

    try:
        if p['state'] in ('recorded', 'released'):
            if p['record']:
                ledger = (ledger + [ledger_entry(p['record'], p['run_id'], p['incident_id'],
                                                 now)])[-LEDGER_SIZE:]
                if not check_mode:
                    write_json(ledger_file, ledger, 0o640)
            release = p['state'] == 'released' and verdict == 'ours'
            if release and not check_mode:
                os.unlink(lock_file)
            return finished(changed=bool(p['record']) or release, lock=None if release else lock)

        if verdict == 'held':
            raise RunbookError(held_message(p['service'], lock, now), lock=lock, lock_file=lock_file)
        reasons = refusals(ledger, p['incident_id'], now, p['max_actions'], cooldown)
        if reasons:
            return finished(reasons=reasons)
        mine = new_lock(p['run_id'], p['incident_id'], now, ttl, p['owner'])
        if not check_mode:
            write_json(lock_file, mine, 0o640)
        return finished(changed=True, allowed=True, lock=mine,
                        took_over=lock if verdict == 'expired' else None)
    except (StateError, OSError) as err:
        raise RunbookError('cannot write the guardrail state of %s: %s' % (p['service'], err))


if __name__ == '__main__':
    main()

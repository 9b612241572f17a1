# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guardrails of the mitigation: one remediation at a time per service (a lock that expires, so
a crashed run cannot block the next one forever), a bounded number of actions per incident and a
cooldown between actions. Decisions are pure; the caller reads and writes the files
(module_utils/common/state_files.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso

# Actions kept in a service's ledger: enough for the incidents of a long week.
LEDGER_SIZE = 200


def lock_verdict(current: dict[str, Any] | None, run_id: str, now: float) -> str:
    """'free', 'ours', 'expired' or 'held' for the lock document `current` (None: no lock)."""
    if not current:
        return 'free'
    if current.get('run_id') == run_id:
        return 'ours'
    if float(current.get('expires_at') or 0) <= now:
        return 'expired'
    return 'held'


def new_lock(run_id: str, incident_id: str, now: float, ttl: float, owner: str | None) -> dict[str, Any]:
    return {'run_id': run_id, 'incident_id': incident_id, 'owner': owner,
            'acquired_at': now, 'acquired_at_iso': iso(now), 'expires_at': now + ttl,
            'expires_at_iso': iso(now + ttl)}


def held_message(service: str, lock: dict[str, Any], now: float) -> str:
    return ('another remediation of %s is under way: run %s (incident %s, by %s) holds the lock '
            'since %s, until %s (%.0f s from now). Wait for it, or, if that run is known to be '
            'dead, wait for the expiry or remove the lock file'
            % (service, lock.get('run_id'), lock.get('incident_id'), lock.get('owner') or 'unknown',
               lock.get('acquired_at_iso'), lock.get('expires_at_iso'),
               float(lock.get('expires_at') or now) - now))


def refusals(ledger: Sequence[dict[str, Any]], incident_id: str, now: float, max_actions: int, cooldown: float) -> list[str]:
    """Why no further action may be taken now, from the service's ledger of actions taken."""
    reasons: list[str] = []
    taken = [a for a in ledger if a.get('incident_id') == incident_id and a.get('acted')]
    if len(taken) >= max_actions:
        reasons.append('%d of at most %d actions already taken for incident %s (%s): escalate'
                       % (len(taken), max_actions, incident_id,
                          ', '.join(a.get('description') or a.get('name') or '?' for a in taken)))
    acted = [a for a in ledger if a.get('acted')]
    if acted and cooldown > 0:
        last = max(acted, key=lambda a: a.get('time', 0))
        wait = last.get('time', 0) + cooldown - now
        if wait > 0:
            reasons.append('cooldown: %s was done %.0f s ago, the next action may come in %.0f s'
                           % (last.get('description') or last.get('name'), now - last['time'],
                              wait))
    return reasons


def ledger_entry(record: Mapping[str, Any], run_id: str, incident_id: str, now: float) -> dict[str, Any]:
    entry: dict[str, Any] = {'time': now, 'time_iso': iso(now), 'run_id': run_id, 'incident_id': incident_id}
    entry.update(record)
    entry['acted'] = bool(record.get('acted'))
    return entry

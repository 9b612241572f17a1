# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One incident per service at a time: the record of the service's open incident, so that a
second alert (another fingerprint, a repeat, a second CLI run) joins it (same id, document,
thread and page) instead of starting a second one.

The record also keeps the incident's rollback target: what was live before the bad deploy, as the
first triage that knew it found it. A mitigation that makes a revision of its own (on Kubernetes
an env change or a restart) moves "the previous revision" onto the bad deploy, so later runs of
the incident take the recorded target instead of the one their triage computes again.

The record is <state_dir>/incidents/<service>.json on the controller; every read-modify-write
holds an flock on <service>.json.guard, so two runs that start together see each other.
"""

from __future__ import annotations

import copy
import os
import re
import time
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError, read_json, serialized, write_json
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, parse_duration

ARGUMENT_SPEC = dict(
    service=dict(type='str', required=True),
    run_id=dict(type='str', required=True),
    state=dict(type='str', choices=['open', 'released', 'closed', 'ended'], default='open'),
    incident=dict(type='dict', default={}),
    alert=dict(type='str', default=''),
    reopen_within=dict(type='str', default='1h'),
    run_ttl=dict(type='str', default='30m'),
    state_dir=dict(type='path', default='/var/lib/sre-runbooks'),
    rollback_to=dict(type='dict', default={}, options=dict(revision=dict(type='int'), image=dict(type='str'))),
)
SPEC = dict(argument_spec=ARGUMENT_SPEC)
# What a run that joins takes from the record, and what a run that ends leaves in it.
# escalation: a run that joins an incident already escalated does not page again.
SHARED_KEYS = ('id', 'started_at', 'communication', 'report', 'rollback', 'escalation')
# The outcomes that end the incident (state=ended closes it); with another, it stays open for the next alert.
CLOSING_OUTCOMES = ('resolved', 'recovered', 'no_action')
MAX_ALERTS = 50


def record_path(state_dir: str, service: str) -> str:
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]*', service):
        raise RunbookError('service %r cannot name a file: use letters, digits, ".", "_" and "-"' % service)
    return os.path.join(state_dir, 'incidents', service + '.json')


def _add_alert(alerts: list[str], alert: str) -> list[str]:
    return alerts if not alert or alert in alerts else (alerts + [alert])[-MAX_ALERTS:]


def computed_target(incident: dict[str, Any]) -> dict[str, Any] | None:
    """The rollback target this run's triage computed from the deploy history, or None."""
    triage = incident.get('triage') or {}
    revision, image = triage.get('rollback_revision'), triage.get('previous_image')
    return None if revision is None and not image else {'revision': revision, 'image': image}


def opened(record: Any, p: dict[str, Any], now: float, reopen_within: float, run_ttl: float) -> tuple[dict[str, Any], bool, str | None]:
    """(record after, joined, handled_by) for state=open: join the open incident, resume it when
    no run is handling it, or open a new one."""
    incident = p['incident']
    mine = {'run_id': p['run_id'], 'until': now + run_ttl}
    active = (record or {}).get('active') or {}
    running = active.get('until', 0) > now
    is_open = bool(record) and record.get('status') == 'open' \
        and (running or now - record.get('updated', 0) <= reopen_within)
    if not is_open:
        if not incident.get('id') or not incident.get('started_at'):
            raise RunbookError('incident.id and incident.started_at are needed to open an incident '
                               '(the triage role sets them)')
        fresh = {'service': p['service'], 'status': 'open', 'id': incident['id'],
                 'started_at': incident['started_at'], 'alerts': _add_alert([], p['alert']),
                 'runs': [p['run_id']], 'active': mine, 'updated': now}
        # An incident handed over (an AWX workflow's artifact) keeps the thread and page it has.
        fresh.update({k: incident[k] for k in ('communication', 'report') if incident.get(k)})
        return fresh, False, None
    after = copy.deepcopy(record)
    after['alerts'] = _add_alert(after.get('alerts') or [], p['alert'])
    if active.get('run_id') == p['run_id']:  # this run again: still handling it, and what it told is shared
        after.update({k: incident[k] for k in ('communication', 'report') if incident.get(k)}, active=mine)
        return after, p['run_id'] not in record['runs'][:1], None
    if running:
        return after, True, active['run_id']
    after.update(active=mine, updated=now, runs=(after.get('runs') or []) + [p['run_id']])
    return after, True, None


def with_target(record: dict[str, Any], p: dict[str, Any], now: float) -> dict[str, Any]:
    """The record after state=open with the rollback target recorded by the first run that knows
    one; no later run changes it, and a new incident starts without one."""
    target = computed_target(p['incident'])
    if not target or record.get('rollback'):
        return record
    return dict(record, rollback=dict(target, recorded_at=iso(now), run_id=p['run_id']))


def run_incident(record: dict[str, Any], p: dict[str, Any], joined: bool, handled_by: str | None) -> dict[str, Any]:
    """This run's `incident` after state=open: the record's shared keys (a joining run's id,
    document, thread and page become the open incident's); the rollback target
    (triage.rollback_revision and previous_image) is the one given in rollback_to, else the
    recorded one, and triage.rollback_origin says which."""
    incident = copy.deepcopy(p['incident'])
    incident.update({k: record[k] for k in SHARED_KEYS if k in record})
    if joined:
        incident['joined'] = {'alerts': record['alerts'], 'handled_by': handled_by}
    recorded = record.get('rollback') or {}
    given = {k: v for k, v in p['rollback_to'].items() if v not in (None, '')}
    if 'revision' in given:  # a revision brings its own image: the recorded one is another's
        target, origin = {'revision': given['revision'], 'image': given.get('image')}, 'given explicitly'
    elif given:  # an image alone (compose): on Kubernetes the recorded revision still applies
        target, origin = {'revision': recorded.get('revision'), 'image': given['image']}, 'given explicitly'
    elif recorded:
        target = recorded
        origin = 'computed now' if recorded.get('run_id') == p['run_id'] else \
            'recorded by run %s at %s' % (recorded.get('run_id'), recorded.get('recorded_at'))
    else:
        return incident  # nothing known: the triage found no previous version
    incident['triage'] = dict(incident.get('triage') or {}, rollback_revision=target.get('revision'),
                              previous_image=target.get('image'), rollback_origin=origin)
    return incident


def channels_opened(record: dict[str, Any]) -> bool:
    """Whether a run of the runbook opened the incident's channels (page acknowledged, thread,
    status page): an incident opened by rollback.yml or scale.yml has not had them opened."""
    log = (record.get('communication') or {}).get('log') or []
    return any(isinstance(entry, dict) and entry.get('event') == 'opened' for entry in log)


def ended(record: Any, p: dict[str, Any], now: float, close: bool) -> Any:
    """The record after this run ends: what it told and wrote kept, the incident closed or left
    open for the next alert. A run that does not handle the incident changes nothing."""
    if not record or (record.get('active') or {}).get('run_id') != p['run_id']:
        return record
    after = copy.deepcopy(record)
    after.update({k: p['incident'][k] for k in SHARED_KEYS if p['incident'].get(k)})
    after.update(active=None, updated=now, outcome=p['incident'].get('outcome'),
                 status='closed' if close else 'open')
    if close:
        after['closed_at'] = iso(now)
    return after


def run(p: dict[str, Any], check_mode: bool, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    try:
        reopen_within, run_ttl = parse_duration(p['reopen_within']), parse_duration(p['run_ttl'])
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    path = record_path(p['state_dir'], p['service'])
    try:
        with serialized(path):
            before = read_json(path, None)
            joined, handled_by, incident = False, None, None
            if p['state'] == 'open':
                after, joined, handled_by = opened(before, p, now, reopen_within, run_ttl)
                after = with_target(after, p, now)
                incident = run_incident(after, p, joined, handled_by)
            else:
                after = ended(before, p, now, p['state'] == 'closed' or (
                    p['state'] == 'ended' and p['incident'].get('outcome') in CLOSING_OUTCOMES))
            changed = after != before
            if changed and not check_mode:
                write_json(path, after, mode=0o600)
    except (OSError, StateError) as err:
        raise RunbookError('cannot keep the incident record of %s: %s: check state_dir (%s) and its '
                           'permissions' % (p['service'], err, p['state_dir']))
    return {'changed': changed, 'record': after, 'joined': joined, 'handled_by': handled_by,
            'incident': incident, 'channels_opened': channels_opened(after or {}),
            'path': path, 'diff': {'before': before or {}, 'after': after or {}}}

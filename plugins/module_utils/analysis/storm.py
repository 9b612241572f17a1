# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure analysis of an alert storm: many services answering 5xx at once, and the cause they share.

Each service's verdict comes from its own 5xx ratio and request rate (the same rule as one
service's triage). A shared cause needs evidence of its own, never only a pattern:
- a dependency: several failing services depend on it, and it fails itself (measured failing in
  the same queries, or its health check failed);
- a location (a docker host, a node): several failing services run there, every failing service
  runs there, and services measured elsewhere are healthy.
A pattern without that evidence (a dependency that several failing services share but that was
not seen failing) is a suspect, said as such: never a cause, an action or a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import FAILING, ratio, to_percent, verdict
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt

# Roles of a service in the storm.
SHARED = 'shared'  # fails through the shared cause: the storm's incident covers it
OWN = 'own'  # fails for a cause of its own: handled on its own
ROOT = 'root'  # the shared cause itself, when it is a service measured here


def service_rows(services: Iterable[Mapping[str, Any]], errors: Mapping[str, float], totals: Mapping[str, float],
                 thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per service: its figures and verdict (the error-rate triage rule); thresholds in
    fractions (warning, critical) and requests per second (min_request_rate)."""
    rows = []
    for service in services:
        name = service['name']
        total = totals.get(name)
        error_ratio = ratio(errors.get(name, 0.0), total)
        rows.append({
            'name': name, 'depends_on': list(service.get('depends_on') or []), 'location': service.get('location'),
            'request_rate': total, 'error_percent': to_percent(error_ratio),
            'verdict': verdict(error_ratio, total, thresholds['warning'], thresholds['critical'],
                               thresholds['min_request_rate']),
            'role': None})
    return rows


def dependency_states(rows: list[dict[str, Any]], measured: Mapping[str, str],
                      checks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{dependency: {'failing': True/False/None, 'evidence': [...]}} of every dependency named by a
    service: failing when measured failing (MEASURED: {name: verdict}) or its check failed; healthy
    when measured ok or its check passed; None (unknown) otherwise."""
    states = {}
    for name in sorted({d for row in rows for d in row['depends_on']}):
        evidence: list[str] = []
        failing: bool | None = None
        seen = measured.get(name)
        if seen in FAILING:
            failing = True
            evidence.append('%s answers 5xx itself (%s)' % (name, seen))
        elif seen == 'ok':
            failing = False
        check = checks.get(name)
        if check is not None:
            if check.get('ok'):
                failing = failing or False
            else:
                failing = True
                evidence.append('its health check failed (%s)' % (
                    check.get('error') or 'HTTP %s' % check.get('status')))
        states[name] = {'failing': failing, 'evidence': evidence}
    return states


def _dependency_causes(failing_rows: list[dict[str, Any]], states: Mapping[str, Mapping[str, Any]],
                       several: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(causes, suspects): the dependencies of several failing services, failing or not seen."""
    causes: list[dict[str, Any]] = []
    suspects: list[dict[str, Any]] = []
    for name, state in states.items():
        dependents = sorted(row['name'] for row in failing_rows if name in row['depends_on'])
        if len(dependents) < several or state['failing'] is False:
            continue
        found = {'kind': 'dependency', 'name': name, 'services': dependents}
        if state['failing']:
            found['evidence'] = ['%d failing services depend on %s: %s' % (len(dependents), name, ', '.join(dependents))] \
                + state['evidence']
            causes.append(found)
        else:
            found['why_not'] = '%d failing services depend on %s, but it was not seen failing (no measurement ' \
                               'and no health check of it)' % (len(dependents), name)
            suspects.append(found)
    causes.sort(key=lambda c: (-len(c['services']), c['name']))
    return causes, suspects


def _location_cause(rows: list[dict[str, Any]], failing_rows: list[dict[str, Any]],
                    several: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(cause or None, suspect or None): every failing service on one location, healthy ones elsewhere.
    Services that all run in one place (or nowhere known) say nothing of it."""
    locations = {row['location'] for row in failing_rows}
    known = {row['location'] for row in rows if row['location']}
    if len(failing_rows) < several or len(locations) != 1 or None in locations or len(known) < 2:
        return None, None
    location = locations.pop()
    elsewhere = sorted(row['name'] for row in rows if row['location'] != location and row['verdict'] == 'ok')
    found = {'kind': 'location', 'name': location, 'services': sorted(row['name'] for row in failing_rows)}
    if elsewhere:
        found['evidence'] = ['every failing service runs on %s' % location,
                             'services elsewhere answer well: %s' % ', '.join(elsewhere)]
        return found, None
    found['why_not'] = 'every failing service runs on %s, but no service elsewhere was measured healthy ' \
                       'to compare with' % location
    return None, found


def assess(rows: list[dict[str, Any]], states: Mapping[str, Mapping[str, Any]], several: int) -> dict[str, Any]:
    """The storm: the failing services, the shared cause (the dependency with the most failing
    dependents first, then a location), the suspects, and each failing service's role."""
    failing_rows = [row for row in rows if row['verdict'] in FAILING]
    causes, suspects = _dependency_causes(failing_rows, states, several)
    location, location_suspect = _location_cause(rows, failing_rows, several)
    if location:
        causes.append(location)
    if location_suspect:
        suspects.append(location_suspect)
    shared = causes[0] if causes else None
    for row in failing_rows:
        if shared and row['name'] == shared['name']:
            row['role'] = ROOT
        elif shared and row['name'] in shared['services']:
            row['role'] = SHARED
        else:
            row['role'] = OWN
    weak = sorted(row['name'] for row in rows if row['verdict'] not in FAILING + ('ok',))
    roots = [row['name'] for row in failing_rows if row['role'] == ROOT]
    covered = [row['name'] for row in failing_rows if row['role'] == SHARED]
    # The run that holds the storm's one incident: the shared cause's own, else the first service
    # that fails through it; the others are covered by that incident.
    leader = (roots or covered or [None])[0]
    return {
        'services': rows,
        'failing': [row['name'] for row in failing_rows],
        'storm': len(failing_rows) >= several,
        'shared_cause': shared,
        'other_causes': causes[1:],
        'suspects': suspects,
        'own_cause': [row['name'] for row in failing_rows if row['role'] in (OWN, ROOT)],
        'leader': leader,
        'covered': [name for name in covered if name != leader],
        'weak_evidence': weak,
    }


def part_of(result: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What one service's run takes from the storm: its role, the leader whose incident covers it,
    and for the leader the shared cause and every service (its incident is the storm's)."""
    row = next(row for row in result['services'] if row['name'] == name)
    part = {'role': row['role'], 'leader': result['leader'], 'covered': name in result['covered'],
            'failing': result['failing'], 'shared_cause': result['shared_cause']}
    if name == result['leader']:
        part['services'] = result['services']
    return part


def describe(result: Mapping[str, Any], total: int) -> str:
    """One paragraph: how many fail, the shared cause and its evidence, what is left to each service."""
    failing, shared = result['failing'], result['shared_cause']
    if not failing:
        text = 'None of the %d services answers 5xx above its threshold.' % total
    else:
        figures = ['%s %s' % (row['name'], fmt.percent(row['error_percent']))
                   for row in result['services'] if row['name'] in failing]
        text = '%d of %d services answer 5xx above the threshold: %s.' % (len(failing), total, ', '.join(figures))
    if shared:
        text += ' Shared cause: %s %s (%s); %d services fail through it.' % (
            shared['kind'], shared['name'], '; '.join(shared['evidence']), len(shared['services']))
    elif result['storm']:
        text += ' No shared cause has evidence.'
    for suspect in result['suspects']:
        text += ' Suspected, not proven: %s.' % suspect['why_not']
    own = [name for name in result['own_cause'] if not shared or name != shared['name']]
    if own:
        text += ' A cause of their own: %s.' % ', '.join(own)
    if result['weak_evidence']:
        text += ' Too little traffic or none to judge: %s.' % ', '.join(result['weak_evidence'])
    return text

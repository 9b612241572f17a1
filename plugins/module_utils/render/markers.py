# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The moments of an incident worth marking on a graph or a dashboard: the errors' onset, the
slowdown's (for the response time), each deploy, each action applied, the recovery, the
escalation. Pure, from the incident fact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment


def get(data: Any, path: str, default: Any = None) -> Any:
    """data['a']['b'] for 'a.b'; default when any part is missing or null."""
    for key in path.split('.'):
        if not isinstance(data, dict) or data.get(key) is None:
            return default
        data = data[key]
    return data


def failure(attempt: dict[str, Any]) -> str:
    """Why an attempt failed, without its description (the role says '<description> failed: <why>')."""
    reason = str(attempt.get('reason') or '')
    return reason.partition(' failed: ')[2] or reason


def ended_at(incident: dict[str, Any]) -> datetime | None:
    """When the incident ended: ended_at when set, else the last sample of a recovered verify."""
    explicit = moment(incident.get('ended_at'))
    samples = get(incident, 'verify.samples', [])
    if explicit or not (get(incident, 'verify.recovered') and samples):
        return explicit
    return moment(samples[-1].get('time_iso') or samples[-1].get('time'))


def _epoch(value: Any) -> float | None:
    found = moment(value)
    return found.timestamp() if found else None


def incident_markers(incident: dict[str, Any]) -> list[dict[str, Any]]:
    """[{at: epoch, label, kind: onset | deploy | action | recovered | escalated}] in time order;
    moments not known are left out."""
    found = [{'at': _epoch(get(incident, 'triage.error_rate.onset_iso')), 'label': 'errors began', 'kind': 'onset'},
             {'at': _epoch(get(incident, 'triage.latency.onset_iso')), 'label': 'slowdown began', 'kind': 'onset'}]
    for change in get(incident, 'triage.changes', []):
        if change.get('kind') in ('deploy', 'config'):
            image = change.get('image') or ''
            found.append({'at': _epoch(change.get('time_iso') or change.get('time')), 'kind': 'deploy',
                          'label': '%s %s' % (change['kind'], image.rsplit(':', 1)[-1] if ':' in image
                                              else (change.get('commit') or '')[:8])})
    for attempt in get(incident, 'mitigation.attempts', []):
        if attempt.get('acted'):
            found.append({'at': _epoch(attempt.get('at')), 'kind': 'action',
                          'label': (attempt.get('action') or {}).get('name') or 'action'})
    if get(incident, 'verify.recovered'):
        ended = ended_at(incident)
        found.append({'at': ended.timestamp() if ended else None, 'label': 'recovered', 'kind': 'recovered'})
    if incident.get('escalation'):
        found.append({'at': _epoch(incident['escalation'].get('at')), 'label': 'escalated', 'kind': 'escalated'})
    return sorted((m for m in found if m['at'] is not None), key=lambda m: m['at'])


def grafana_annotations(incident: dict[str, Any], marked: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The markers as Grafana annotations (sre.runbooks.grafana_annotation's time, tags, text), but
    those whose key is in `marked` (made already): tagged sre.runbooks, service:<name>,
    incident:<id> and their kind, so that a dashboard's tag query finds them and a second run finds
    the ones already made; key: '<kind>@<epoch>'."""
    service, number = incident.get('service') or 'unknown', incident.get('id') or 'unknown'
    found = [{'key': '%s@%.3f' % (marker['kind'], marker['at']), 'time': marker['at'],
              'tags': ['sre.runbooks', 'service:%s' % service, 'incident:%s' % number, marker['kind']],
              'text': '%s: %s (incident %s)' % (service, marker['label'], number)}
             for marker in incident_markers(incident)]
    made = set(marked)
    return [annotation for annotation in found if annotation['key'] not in made]

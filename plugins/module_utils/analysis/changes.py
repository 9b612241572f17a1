# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure reading of what changed around a service: deploys from container events or from a
Deployment's rollout history, commits from git, each with a time that the next steps compare with
the error onset."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import epoch, iso

GIT_FORMAT = '%H%x1f%ct%x1f%an%x1f%s'


def event_time(event: dict[str, Any]) -> float:
    if event.get('timeNano'):
        return event['timeNano'] / 1e9
    return float(event.get('time', 0))


# Compose creates the new container before it removes the old one: a removal this many seconds
# after a creation still belongs to the same deploy.
RECREATE_SECONDS = 30


def _record(event: dict[str, Any]) -> dict[str, Any]:
    attributes = (event.get('Actor') or {}).get('Attributes') or {}
    return {'time': event_time(event), 'action': event.get('Action') or event.get('status'),
            'id': event.get('id') or (event.get('Actor') or {}).get('ID'),
            'image': attributes.get('image') or event.get('from'), 'name': attributes.get('name')}


def deploys(events: Iterable[dict[str, Any]], containers: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """One deploy per container creation, with the image it replaced when the history shows it.

    The image replaced is that of the last container of the service created, or removed, before
    (or, for compose's recreate, just after) this one. The Docker engine keeps only its last 256
    events, so each existing container's own creation time counts too.
    """
    records = [_record(event) for event in events]
    for container in containers:
        if not any(r['action'] == 'create' and r['id'] == container['id'] for r in records):
            records.append({'time': container['created_epoch'], 'action': 'create',
                            'id': container['id'], 'image': container['image'],
                            'name': container['name']})
    result: list[dict[str, Any]] = []
    for new in sorted((r for r in records if r['action'] == 'create'), key=lambda r: r['time']):
        before = [r for r in records if r['id'] != new['id']
                  and (r['time'] < new['time'] or (r['action'] == 'destroy'
                                                   and r['time'] <= new['time'] + RECREATE_SECONDS))]
        previous = max(before, key=lambda r: r['time'])['image'] if before else None
        image = new['image']
        result.append({
            'kind': 'deploy',
            'time': new['time'],
            'image': image,
            'previous_image': previous,
            'container': new['name'],
            'summary': ('image %s -> %s' % (previous, image) if previous and previous != image
                        else 'container recreated with %s' % image if previous
                        else 'container created with %s' % image),
        })
    return result


def previous_image(current_image: str | None, deploy_list: Sequence[dict[str, Any]]) -> str | None:
    """The last image the service ran before the current one, or None when unknown."""
    for deploy in reversed(deploy_list):
        if deploy['image'] != current_image:
            return deploy['image']
        if deploy['previous_image'] and deploy['previous_image'] != current_image:
            return deploy['previous_image']
    return None


def rollout_deploys(history: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One deploy per revision of a Deployment, oldest first, from k8s_rollout.history (the
    ReplicaSets it owns): the revision's images, those of the revision before, and the time its
    ReplicaSet was created, and the settings its pod template changed (a revision with the same
    image that changes none is a restart). An undo gives an old ReplicaSet a new revision but keeps
    its creation time, so a rollback shows at the time of the revision it went back to."""
    result: list[dict[str, Any]] = []
    previous: str | None = None
    for entry in history:
        image = ', '.join(entry['images'])
        settings = entry.get('settings') or []
        summary = ('revision %d: image %s -> %s' % (entry['revision'], previous, image) if previous and previous != image
                   else 'revision %d: %s changed (%s)' % (entry['revision'], ', '.join(settings), image) if settings
                   else 'revision %d: %s' % (entry['revision'], image))
        if entry['change_cause']:
            summary += ' (%s)' % entry['change_cause']
        result.append({'kind': 'deploy', 'time': epoch(entry['created']) or 0.0, 'image': image,
                       'previous_image': previous, 'revision': entry['revision'], 'replica_set': entry['replica_set'],
                       'change_cause': entry['change_cause'], 'settings': settings, 'summary': summary})
        previous = image
    return result


def parse_git_log(output: str, repo: str, paths: Iterable[str]) -> list[dict[str, Any]]:
    commits: list[dict[str, Any]] = []
    for line in output.splitlines():
        fields = line.split('\x1f')
        if len(fields) != 4:
            continue
        sha, epoch, author, subject = fields
        commits.append({'kind': 'config' if paths else 'commit', 'time': float(epoch),
                        'commit': sha, 'author': author, 'repo': repo, 'paths': list(paths),
                        'summary': '%s %s' % (sha[:8], subject)})
    return commits


def timeline(changes: Iterable[dict[str, Any]], since: float, onset: float | None = None) -> list[dict[str, Any]]:
    """Changes since `since`, newest first, each with its ISO time and, given an onset, how many
    seconds before it the change happened (negative: after the errors began)."""
    kept = sorted((c for c in changes if c['time'] >= since), key=lambda c: -c['time'])
    for change in kept:
        change['time_iso'] = iso(change['time'])
        change['seconds_before_onset'] = (None if onset is None
                                          else round(onset - change['time'], 1))
    return kept

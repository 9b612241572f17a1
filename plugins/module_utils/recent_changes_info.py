# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.recent_changes_info: a service's deploys (Docker, or a Deployment's rollout history on
Kubernetes) and commits (git) since a time."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import GIT_FORMAT, deploys, parse_git_log, previous_image, rollout_deploys, timeline
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, parse_duration, point_in_time, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import DOCKER_ARGS, container_events, docker_client, inspect_container, list_containers
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS, K8sError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader

SPEC = dict(
    argument_spec=dict(
        source=dict(type='str', choices=['docker', 'kubernetes'], default='docker'),
        service=dict(type='str'),
        name=dict(type='str'),
        namespace=dict(type='str', default='default'),
        compose_project=dict(type='str'),
        since=dict(type='str', default='1h'),
        history=dict(type='str', default='24h'),
        onset=dict(type='str'),
        git=dict(type='list', elements='dict', default=[], options=dict(
            path=dict(type='path', required=True),
            paths=dict(type='list', elements='str', default=[]),
        )),
        **DOCKER_ARGS, **K8S_ARGS
    ),
    required_one_of=[('service', 'name', 'git')],
)
GIT_FAILED = 'git log failed in %s: %s: check that it is a git checkout readable by the remote user'


def created_epoch(text: str | None) -> float | None:
    """Epoch seconds of Docker's nanosecond RFC 3339 time, or None."""
    try:
        return resolve_time(re.sub(r'(\.\d{6})\d+', r'\1', text or ''), 0)
    except ValueError:
        return None


def docker_facts(params: dict[str, Any], since: float, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    client = docker_client(params)
    service, project = params['service'], params['compose_project']
    history_start = min(since, now - parse_duration(params['history']))
    listed = run_all({
        'containers': lambda: list_containers(client, service, project),
        'events': lambda: container_events(client, service, project, history_start, now,
                                           ['create', 'destroy']),
    })
    for _value, error in listed.values():
        if error is not None:
            raise error
    summaries, events = listed['containers'][0], listed['events'][0]
    inspected = run_all({c['Id']: (lambda cid=c['Id']: inspect_container(client, cid))
                         for c in summaries})
    containers: list[dict[str, Any]] = []
    for summary in summaries:
        details, error = inspected[summary['Id']]
        if error is not None:
            raise error
        state = details.get('State') or {}
        containers.append({
            'name': details.get('Name', '').lstrip('/'),
            'id': summary['Id'],
            'image': (details.get('Config') or {}).get('Image') or summary.get('Image'),
            'image_id': summary.get('ImageID'),
            'state': state.get('Status'),
            'created': details.get('Created'),
            'created_epoch': created_epoch(details.get('Created')) or float(summary['Created']),
            'started_at': state.get('StartedAt'),
            'restart_count': details.get('RestartCount', 0),
        })
    containers.sort(key=lambda c: -c['created_epoch'])
    return containers, deploys(events, containers)


def kubernetes_facts(params: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's rollout: its history (the ReplicaSets it owns), current and previous
    revision (the one `kubectl rollout undo` would go to now) and their images."""
    name, namespace = params['name'] or params['service'], params['namespace']
    reader = Reader(params)
    deployment = reader.deployment(name, namespace)
    owned = reader.owned_replica_sets(deployment)
    history = kr.history(deployment, owned)
    try:
        target = kr.undo_target(deployment, owned)
    except ValueError:
        target = None
    return {'deployment': name, 'namespace': namespace, 'history': history,
            'current_revision': kr.revision(deployment), 'current_image': ', '.join(kr.images(deployment)),
            'previous_revision': kr.revision(target) if target else None,
            'previous_image': ', '.join(kr.images(target)) if target else None}


def git_commits(repo: str, paths: list[str], since: float) -> list[dict[str, Any]]:
    command = ['git', '-C', repo, 'log', '--since=@%d' % since, '--format=' + GIT_FORMAT, '--']
    try:
        proc = subprocess.run(command + paths, capture_output=True, text=True, errors='replace',
                              check=False)
    except OSError as err:
        raise RunbookError(GIT_FAILED % (repo, err))
    if proc.returncode:
        raise RunbookError(GIT_FAILED % (repo, proc.stderr.strip() or proc.stdout.strip()))
    return parse_git_log(proc.stdout, repo, paths)


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    del warn  # nothing here is partial: a source that fails fails the task
    now = time.time()
    try:
        since = point_in_time(p['since'], now)
        parse_duration(p['history'])
        onset = resolve_time(p['onset'], now) if p['onset'] not in (None, '', 'None') else None
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)

    changes: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    if p['source'] == 'kubernetes':
        if not (p['name'] or p['service']):
            raise RunbookError('source kubernetes reads the rollout history of a Deployment: give name (or service)')
        try:
            result = kubernetes_facts(p)
        except K8sError as err:
            raise RunbookError(str(err))
        changes.extend(rollout_deploys(result['history']))
    elif p['name'] and not p['service']:
        raise RunbookError('name is the Deployment of source kubernetes: give service (the compose service) '
                           'for source docker, or set source: kubernetes')
    elif p['service']:
        try:
            containers, deploy_list = docker_facts(p, since, now)
        except ApiError as err:
            raise RunbookError('%s; is the Docker engine running on %s?' % (err, p['docker_host']))
        current = containers[0]['image'] if containers else None
        if not containers and not deploy_list:
            raise RunbookError('no container of compose service %r%s on this host: check the '
                               'service name (docker ps --filter label=com.docker.compose.service'
                               '=%s) and the host the task runs on' % (
                                   p['service'], ' in project %r' % p['compose_project']
                                   if p['compose_project'] else '', p['service']))
        result.update(containers=containers, current_image=current,
                      previous_image=previous_image(current, deploy_list))
        changes.extend(deploy_list)
    for repo in p['git']:
        changes.extend(git_commits(repo['path'], repo['paths'], since))
    changes = timeline(changes, since, onset)
    return dict(changes=changes, since=since, since_iso=iso(since),
                last_deploy=next((c for c in changes if c['kind'] == 'deploy'), None), **result)

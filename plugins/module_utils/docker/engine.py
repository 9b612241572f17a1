# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Engine API over its socket (or TCP), and the compose labels that find a service."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all

PROJECT_LABEL = 'com.docker.compose.project'
SERVICE_LABEL = 'com.docker.compose.service'
ONEOFF_LABEL = 'com.docker.compose.oneoff'

DOCKER_ARGS = dict(
    docker_host=dict(type='str', default='unix:///var/run/docker.sock'),
    docker_timeout=dict(type='float', default=10.0),
)


def docker_client(params: Mapping[str, Any]) -> HttpClient:
    """An HttpClient for the Engine API at params['docker_host'] (unix://, http:// or https://)."""
    host = params['docker_host']
    if host.startswith('unix://'):
        return HttpClient('http://localhost', name='Docker Engine', unix_socket=host[7:],
                          timeout=params['docker_timeout'], retries=1)
    if host.startswith(('http://', 'https://', 'tcp://')):
        return HttpClient(host.replace('tcp://', 'http://', 1), name='Docker Engine',
                          timeout=params['docker_timeout'], retries=1)
    raise ApiError('docker_host %r must start with unix://, tcp://, http:// or https://' % host)


def service_filters(service: str, project: str | None = None) -> list[str]:
    labels = ['%s=%s' % (SERVICE_LABEL, service)]
    if project:
        labels.append('%s=%s' % (PROJECT_LABEL, project))
    return labels


def list_containers(client: HttpClient, service: str, project: str | None = None) -> Any:
    return client.get_json('/containers/json', query={
        'all': '1', 'filters': json.dumps({'label': service_filters(service, project)})})


def inspect_container(client: HttpClient, container_id: str) -> Any:
    return client.get_json('/containers/%s/json' % container_id)


def service_containers(client: HttpClient, service: str, project: str | None = None) -> list[Any]:
    """The inspect answers of the compose service's containers (not its one-off `run` ones), read
    concurrently; a container removed meanwhile (a recreate's old one) is left out."""
    summaries = [s for s in list_containers(client, service, project)
                 if (s.get('Labels') or {}).get(ONEOFF_LABEL) != 'True']
    inspected = run_all({s['Id']: (lambda cid=s['Id']: inspect_container(client, cid)) for s in summaries})
    containers = []
    for summary in summaries:
        details, error = inspected[summary['Id']]
        if isinstance(error, ApiError) and error.status == 404:
            continue
        if error is not None:
            raise error
        containers.append(details)
    return containers


def container_events(client: HttpClient, service: str, project: str | None, since: float, until: float,
                     actions: Iterable[str]) -> list[Any]:
    """Container events of the service between two epoch times, oldest first."""
    response = client.request('GET', '/events', query={
        'since': '%d' % since, 'until': '%d' % until,
        'filters': json.dumps({'type': ['container'], 'event': list(actions),
                               'label': service_filters(service, project)})})
    if response.status != 200:
        client.expect_json(response, client.url_for('/events'))
    events = []
    for line in response.text().splitlines():
        line = line.strip()
        if line:
            try:
                events.append(json.loads(line))
            except ValueError:
                raise ApiError('Docker Engine sent an event that is not JSON: %r' % line[:120])
    return events

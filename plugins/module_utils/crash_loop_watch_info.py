# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.crash_loop_watch_info: a Deployment's pods or a compose service's containers, read
until every replica has stayed running and ready with no restart for the stable window (the
reads; what they mean is analysis/restarts.py's)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.restarts import (
    WATCHING,
    Sample,
    exit_text,
    failed_read,
    restarts_during,
    watch_verdict,
)
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import epoch, iso, option_seconds
from ansible_collections.sre.runbooks.plugins.module_utils.docker.compose import docker_time
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import (
    DOCKER_ARGS,
    PROJECT_LABEL,
    container_events,
    docker_client,
    service_containers,
)
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import error_text, short_error
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import facts as kf
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.rollout import label_selector

SPEC = dict(
    argument_spec=dict(
        platform=dict(type='str', required=True, choices=['kubernetes', 'compose']),
        name=dict(type='str'),
        namespace=dict(type='str', default='default'),
        service=dict(type='str'),
        project=dict(type='str'),
        stable_for=dict(type='str', default='2m'),
        deadline=dict(type='str', default='10m'),
        interval=dict(type='str', default='10s'),
        **K8S_ARGS,
        **DOCKER_ARGS
    ),
    required_if=[('platform', 'kubernetes', ['name', 'service'], True), ('platform', 'compose', ['service'])],
)


class TargetError(RunbookError):
    """The first answer shows no such target (or a compose service in several projects): the task
    fails, where a read that fails is only a sample not measured."""


# --------------------------------------------------------------------------- Kubernetes

def _terminations(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The container's terminations that its status keeps: the current state's and the last one."""
    return [t for t in ((status.get(which) or {}).get('terminated') for which in ('state', 'lastState')) if t]


def pods_sample(now: float, deployment: dict[str, Any], pods: Iterable[dict[str, Any]], since: float) -> Sample:
    """A Sample of the Deployment's pods (owned_pods); those being deleted are no replicas any more."""
    current = [pod for pod in pods if not (pod.get('metadata') or {}).get('deletionTimestamp')]
    statuses = [(pod, status) for pod in current for status in kf.container_statuses(pod)]
    waiting = [((s.get('state') or {}).get('waiting') or {}).get('reason') or 'Waiting'
               for _pod, s in statuses if (s.get('state') or {}).get('waiting') is not None]
    ended = [(epoch(t.get('finishedAt')) or 0.0, t) for _pod, s in statuses for t in _terminations(s)]
    newest = max(ended, key=lambda pair: pair[0])[1] if ended else {}
    return Sample(
        now, ready=sum(1 for pod in current if kf.pod_ready(pod)),
        desired=(deployment.get('spec') or {}).get('replicas', 1),
        restarts={kf.name_of(pod): sum(s.get('restartCount', 0) for s in kf.container_statuses(pod)) for pod in current},
        waiting=tuple(waiting),
        oom_killed=any(t.get('reason') == kf.OOM and when >= since for when, t in ended),
        last_exit=exit_text(newest.get('reason'), newest.get('exitCode')))


class Deployment:
    """A Deployment's replicas: its pods that its ReplicaSets own."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.name, self.namespace = p['name'] or p['service'], p['namespace']
        self.reader = Reader(p)  # K8sError (a RunbookError) for a configuration that cannot work
        self.what = 'deployment %s in namespace %s' % (self.name, self.namespace)

    def read(self, now: float, since: float, first: bool) -> Sample:
        """One read; on the first answer, a Deployment that does not exist fails the task."""
        try:
            deployment = self.reader.deployment(self.name, self.namespace)
        except RunbookError as err:
            if first and getattr(err, 'status', None) == 404:
                raise TargetError('%s; nothing to watch' % err)
            raise
        outcomes = run_all({
            'pods': lambda: self.reader.pods(self.namespace, label_selector(deployment['spec']['selector'])),
            'owned': lambda: self.reader.owned_replica_sets(deployment),
        })
        for _value, error in outcomes.values():
            if error is not None:
                raise error
        return pods_sample(now, deployment, kf.owned_pods(outcomes['owned'][0], outcomes['pods'][0]), since)


# --------------------------------------------------------------------------- compose

def containers_sample(now: float, containers: Iterable[dict[str, Any]], since: float, oom_events: int) -> Sample:
    """A Sample of the compose service's containers (inspect answers); the engine's `restarting`
    state, its back-off between two restarts, is the one waiting reason."""
    containers = list(containers)
    states = [(c, c.get('State') or {}) for c in containers]
    ended = [(docker_time(s.get('FinishedAt')) or 0.0, s) for _c, s in states
             if s.get('Status') in ('restarting', 'exited', 'dead') and s.get('FinishedAt')]
    newest = max(ended, key=lambda pair: pair[0])[1] if ended else {}
    return Sample(
        now, ready=sum(1 for _c, s in states
                       if s.get('Status') == 'running' and (s.get('Health') or {}).get('Status') in (None, 'healthy')),
        desired=len(containers), restarts={c['Id']: c.get('RestartCount', 0) for c in containers},
        waiting=tuple('restarting' for _c, s in states if s.get('Status') == 'restarting'),
        oom_killed=oom_events > 0 or any(s.get('OOMKilled') and (docker_time(s.get('FinishedAt')) or 0.0) >= since
                                         for _c, s in states),
        last_exit=exit_text(kf.OOM if newest.get('OOMKilled') else None, newest.get('ExitCode')) if newest else None)


class ComposeService:
    """A compose service's containers on the docker host the module runs on (one-off `run`
    containers excluded); the project is resolved on the first answer, as compose_service_info does."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.service, self.project, self.host = p['service'], p['project'], p['docker_host']
        self.client = docker_client(p)  # ApiError (a RunbookError) for a docker_host it cannot use
        self.what = 'compose service %s%s' % (self.service, ' in project %s' % self.project if self.project else '')

    def read(self, now: float, since: float, first: bool) -> Sample:
        outcomes = run_all({
            'containers': lambda: service_containers(self.client, self.service, self.project),
            'oom': lambda: container_events(self.client, self.service, self.project, since, now, ['oom']),
        })
        containers, error = outcomes['containers']
        if error is not None:
            raise error
        if first:
            self.resolve(containers)
        # Without the events, the OOM kills are those the containers' state still shows.
        events, _error = outcomes['oom']
        return containers_sample(now, containers, since, len(events or []))

    def resolve(self, containers: list[dict[str, Any]]) -> None:
        """The project of the first answer; TargetError when the service has no container, or
        several projects have one and project was not given."""
        projects = sorted({((c.get('Config') or {}).get('Labels') or {}).get(PROJECT_LABEL) or '' for c in containers})
        if not projects:
            raise TargetError('no container of %s on the docker host at %s, nothing to watch: check the service name '
                              'and project (docker ps -a --filter label=com.docker.compose.service=%s) and the host '
                              'the task runs on' % (self.what, self.host, self.service))
        if len(projects) > 1:
            raise TargetError('compose service %s runs in several projects (%s): give project'
                              % (self.service, ', '.join(projects)))
        self.project = projects[0]
        self.what = 'compose service %s in project %s' % (self.service, self.project)


# --------------------------------------------------------------------------- the watch

def shown(sample: Sample, during: int | None) -> dict[str, Any]:
    """A sample as the result lists it."""
    return {'time': sample.time, 'time_iso': iso(sample.time), 'measured': sample.measured,
            'ready': sample.ready if sample.measured else None, 'desired': sample.desired if sample.measured else None,
            'restarts': sample.restart_total if sample.measured else None, 'restarts_during': during,
            'waiting': list(sample.waiting), 'oom_killed': sample.oom_killed, 'error': sample.error}


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    stable_for, deadline, interval = (option_seconds(p, k) for k in ('stable_for', 'deadline', 'interval'))
    if stable_for > deadline:
        raise RunbookError('invalid option stable_for: %s is longer than the deadline (%s): the watch could never '
                           'see it' % (p['stable_for'], p['deadline']))
    target = Deployment(p) if p['platform'] == 'kubernetes' else ComposeService(p)
    started = time.time()
    samples: list[Sample] = []
    errors: list[str] = []
    answered = False
    while True:
        now = time.time()
        try:
            sample = target.read(now, started, not answered)
            answered = True
        except TargetError:
            raise
        except RunbookError as err:  # K8sError, ApiError: the read failed, the watch goes on
            errors.append(error_text(err))
            sample = failed_read(now, short_error(err))
        samples.append(sample)
        outcome = watch_verdict(samples, stable_for, now + interval > started + deadline)
        if outcome['verdict'] != WATCHING:
            break
        time.sleep(max(0.0, now + interval - time.time()))
    ended = time.time()
    last = samples[-1]
    # started_at, not started: async_status takes a result holding `started` for a job still running.
    return dict(outcome, message='%s: %s' % (target.what, outcome['message']), platform=p['platform'],
                target=target.what, samples=[shown(s, d) for s, d in zip(samples, restarts_during(samples))],
                measured=last.measured, unmeasured_reason=last.error, query_errors=errors,
                started_at=iso(started), ended_at=iso(ended), elapsed_seconds=round(ended - started, 1))

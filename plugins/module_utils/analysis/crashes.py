# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Pod Crash Loop runbook's symptom: whether the service's containers keep crashing or cannot
start, judged from the checks the service_down role makes (k8s_status_info on Kubernetes,
compose_service_info config_check on a docker host). Pure: plain data in, the measurement out, in
the shape of the other symptoms' (verdict, message, onset)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import epoch

# The pod problems that are a crash loop: containers that keep crashing (on their own, OOM-killed
# or killed by their liveness probe), or that cannot start.
CRASH_KINDS = ('CrashLoopBackOff', 'OOMKilled', 'LivenessProbe', 'ImagePullBackOff', 'CreateContainerConfigError')
_KILLED = ('OOMKilled', 'LivenessProbe')


def crash_loop_measurement(checks: Mapping[str, Any] | None, platform: str | None) -> dict[str, Any]:
    """{'verdict': 'crash_loop' | 'ok', 'message', 'kinds', 'restarts', 'exit_code', 'reason',
    'affected', 'onset'}; {'failed': True, 'msg'} when the checks failed or were not made, so that
    the triage says the symptom was not measured."""
    if not checks or checks.get('failed'):
        return {'failed': True, 'msg': (checks or {}).get('msg') or 'the container checks were not made'}
    if platform == 'kubernetes':
        return _kubernetes(checks)
    return _compose(checks)


def _kubernetes(checks: Mapping[str, Any]) -> dict[str, Any]:
    problems = {p.get('kind'): p for p in checks.get('problems') or []}
    pods = checks.get('pods') or []
    ready = {p.get('name') for p in pods if p.get('ready')}
    # A pod OOM-killed or killed by its probe once that has run ready since is an older story.
    kinds = [kind for kind in CRASH_KINDS if kind in problems
             and (kind not in _KILLED or set(problems[kind].get('pods') or []) - ready)]
    crashed = sorted((p for p in pods if p.get('restarts') or p.get('waiting_reason')),
                     key=lambda p: -(p.get('restarts') or 0))
    affected = sorted({pod for kind in kinds for pod in problems[kind].get('pods') or []})
    deployment = checks.get('deployment') or {}
    worst = crashed[0] if crashed else {}
    restarts = sum(p.get('restarts') or 0 for p in pods)
    measured: dict[str, Any] = {
        'verdict': 'crash_loop' if kinds else 'ok', 'kinds': kinds,
        'restarts': restarts,
        'exit_code': worst.get('last_exit_code'), 'reason': worst.get('last_terminated_reason'),
        'affected': len(affected), 'replicas': deployment.get('replicas'),
        'ready': deployment.get('ready_replicas'),
        # When the oldest affected pod started: the crash loop is no older than that.
        'onset': min((start for start in (epoch(p.get('started_at')) for p in pods if p.get('name') in affected)
                      if start is not None), default=None)}
    if kinds:
        measured['message'] = '%s in %d of %s pods (%s of %s ready): %s' % (
            ', '.join(kinds), len(affected), len(pods), measured['ready'] or 0, measured['replicas'],
            problems[kinds[0]].get('message') or kinds[0])
    else:
        measured['message'] = 'no crash loop: %s of %s replicas ready, %d restarts in all' % (
            measured['ready'] or 0, measured['replicas'], restarts)
    return measured


def _compose(checks: Mapping[str, Any]) -> dict[str, Any]:
    crash = checks.get('crash') or {}
    containers = checks.get('containers') or []
    oom = checks.get('oom') or {}
    restarts = crash.get('restarts_in_window') or 0
    looping = bool(checks.get('crash_loop'))
    kinds = (['CrashLoop'] if looping else []) + (['OOMKilled'] if looping and oom.get('oom_killed') else [])
    running = sum(1 for c in containers if c.get('state') == 'running')
    measured: dict[str, Any] = {
        'verdict': 'crash_loop' if looping else 'ok', 'kinds': kinds, 'restarts': restarts,
        'exit_code': crash.get('last_exit_code'), 'reason': 'OOMKilled' if oom.get('oom_killed') else None,
        'affected': sum(1 for c in containers if c.get('state') != 'running' or c.get('restart_count')),
        'replicas': len(containers), 'ready': running, 'onset': None}
    if looping:
        measured['message'] = 'crash loop: %d restarts in the window, %d of %d containers running, last exit code %s%s' % (
            restarts, running, len(containers), crash.get('last_exit_code'),
            ' (OOM-killed)' if oom.get('oom_killed') else '')
    else:
        measured['message'] = 'no crash loop: %d restarts in the window, %d of %d containers running' % (
            restarts, running, len(containers))
    return measured

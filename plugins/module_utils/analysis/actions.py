# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an action of the plan is, for the module that does it: on each platform, the module to
call and the parameters that depend on the action, and how much it disrupts the service.

The role mitigate passes these parameters as they are; it adds only what it alone knows at run
time (the service, the compose project, state_dir, docker_host, wait_timeout, the Deployment and
its namespace, the guardrails max_replicas and max_limits). What an action needs from the
incident (its start for "once per incident", the revision recorded at triage for a rollback on
Kubernetes) is read here from the incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPOSE = 'sre.runbooks.compose_service'
ROLLOUT = 'sre.runbooks.k8s_rollout'
WORKLOAD = 'sre.runbooks.k8s_workload'
DATABASE = 'sre.runbooks.postgres_session'
CONFIG_KEY = 'sre.runbooks.k8s_config_key'
PLATFORMS = ('compose', 'kubernetes')

# How much an action disrupts the service:
#   none        it keeps serving: a live update, a rolling update, a scale, or the configuration
#               (feature flag, circuit breaker) that the action exists to change
#   restart     the service's containers or pods restart as they are
#   disruptive  it changes what runs (a rollback) or acts outside the service (another
#               process holding its port, another application's database sessions)
# Anything but `none` is never taken on missing or partial evidence. An action not known here is
# disruptive.
DISRUPTION = {
    'rollback': 'disruptive',
    'free_port': 'disruptive',
    'restart': 'restart',
    'recreate': 'restart',
    'resources': 'none',
    'scale': 'none',
    'feature_flag': 'none',
    'circuit_breaker': 'none',
    # The key put back as last applied: the pods waiting for it start, the running ones are untouched.
    'restore_config_key': 'none',
    'terminate_sessions': 'disruptive',
    'cancel_queries': 'disruptive',
    'escalate': 'none',  # done by a person; nothing of the service is touched
}
DISRUPTIVE = frozenset(name for name, kind in DISRUPTION.items() if kind != 'none')

_COMPOSE_STATES = {'rollback': 'rolled_back', 'resources': 'resources', 'feature_flag': 'env',
                   'circuit_breaker': 'env', 'restart': 'restarted', 'recreate': 'recreated'}
_ENV_ACTIONS = ('feature_flag', 'circuit_breaker')
# The Database Issues actions, the same on every platform: postgres_session's action, with the
# sessions it may touch (pids, application_name, older_than) re-checked when it acts.
_SESSION_ACTIONS = {'terminate_sessions': 'terminate_idle_in_transaction', 'cancel_queries': 'cancel_long_queries'}
_RESTARTS = ('restart', 'recreate')


def disruption(name: str | None) -> str:
    """`none`, `restart` or `disruptive` of the action called `name`."""
    if name is None:
        return 'disruptive'
    return DISRUPTION.get(name, 'disruptive')


def is_disruptive(name: str | None) -> bool:
    return disruption(name) != 'none'


def _given(params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The action's parameters of those names that are set (not None, empty or zero), in order."""
    return {key: params[key] for key in keys if params.get(key)}


def _compose(name: str | None, params: Mapping[str, Any], started_at: str | None) -> dict[str, Any] | None:
    state = _COMPOSE_STATES.get(name) if name is not None else None
    if state is None:
        return None  # free_port, scale: left to a person on compose
    call: dict[str, Any] = {'state': state}
    if name == 'rollback':
        # No image: the module's own previous image, from the deploy history it keeps.
        if params.get('to_image'):
            call['image'] = params['to_image']
    elif name in _ENV_ACTIONS:
        if 'env' in params:
            call['env'] = params['env']
    elif name == 'resources':
        call.update(_given(params, 'memory', 'cpus', 'memory_factor', 'cpu_factor'))
    elif name in _RESTARTS and started_at is not None:
        call['if_started_before'] = started_at
    return {'module': COMPOSE, 'params': call}


def _kubernetes(name: str | None, params: Mapping[str, Any], started_at: str | None,
                rollback_revision: int | None) -> dict[str, Any] | None:
    if name == 'rollback':
        call: dict[str, Any] = {'state': 'undone'}
        # The revision recorded at triage, before any mitigation made new ones; no revision:
        # kubectl's previous one.
        revision = params.get('to_revision') or rollback_revision
        if revision:
            call['to_revision'] = revision
        return {'module': ROLLOUT, 'params': call}
    if name in _RESTARTS:  # there is no recreate on Kubernetes: a rollout restart replaces the pods
        call = {'state': 'restarted'}
        if started_at is not None:
            call['if_restarted_before'] = started_at
        return {'module': ROLLOUT, 'params': call}
    if name == 'scale':
        call = {}
        if params.get('replicas') is not None:
            call['replicas'] = str(params['replicas'])  # a count, or a change such as +2
        return {'module': WORKLOAD, 'params': call}
    if name == 'resources':
        # Absolute limits as Kubernetes quantities (512Mi, 500m), or factors of the current ones.
        limits = {key: params[option] for key, option in (('memory', 'memory'), ('cpu', 'cpus'))
                  if params.get(option)}
        call = {'resources': {'limits': limits}} if limits else {}
        call.update(_given(params, 'memory_factor', 'cpu_factor'))
        return {'module': WORKLOAD, 'params': call}
    if name in _ENV_ACTIONS:
        return {'module': WORKLOAD, 'params': {'env': params['env']} if 'env' in params else {}}
    if name == 'restore_config_key':
        return {'module': CONFIG_KEY, 'params': {'name': params.get('configmap'), 'key': params.get('key'),
                                                 'source': 'last_applied'}}
    return None  # free_port: ports are per pod


def action_calls(action: dict[str, Any] | None, incident: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """{platform: {'module', 'params', 'disruption'}} of an action ({name, params}); a platform
    on which no module of the collection does the action is left out."""
    action = action or {}
    incident = incident or {}
    name = action.get('name')
    params = action.get('params') or {}
    started_at = incident.get('started_at')
    rollback_revision = (incident.get('triage') or {}).get('rollback_revision')
    if name in _SESSION_ACTIONS:
        session = {'module': DATABASE, 'params': dict(_given(params, 'pids', 'application_name', 'older_than'),
                                                      action=_SESSION_ACTIONS[name])}
        calls: dict[str, dict[str, Any] | None] = {platform: session for platform in PLATFORMS}
    else:
        calls = {'compose': _compose(name, params, started_at),
                 'kubernetes': _kubernetes(name, params, started_at, rollback_revision)}
    return {platform: dict(call, disruption=disruption(name))
            for platform, call in calls.items() if call is not None}


def platform_of(platform: str | None) -> str:
    """compose unless kubernetes, as the role mitigate reads mitigate_platform."""
    return 'kubernetes' if platform == 'kubernetes' else 'compose'


def action_call(action: dict[str, Any] | None, platform: str | None, incident: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The call of the action on that platform (the one the diagnosis planned, else made from the
    action and the incident, as for an explicit action), or None when no module does it there."""
    calls = (action or {}).get('calls') or action_calls(action, incident)
    return calls.get(platform_of(platform))


def describe(action: dict[str, Any], incident: dict[str, Any] | None = None) -> dict[str, Any]:
    """Adds to a planned action its disruption class and its call on each platform."""
    action['disruption'] = disruption(action.get('name'))
    action['disruptive'] = action['disruption'] != 'none'
    action['calls'] = action_calls(action, incident)
    return action

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's decision, as pure rules over the evidence in the `incident` fact.

Every rule that finds support becomes a cause with its evidence, a confidence, the runbook step
it maps to and one action; causes are ranked by confidence, then by the runbook's order (service
down, recent change, saturation, one endpoint, dependency). Evidence that could not be gathered
is said, and an action that disrupts the service is never recommended on missing evidence.
"""

from __future__ import annotations

import re

from ansible_collections.sre.runbooks.plugins.module_utils.prometheus import parse_duration

RUNBOOK_ORDER = ('service_down', 'deploy', 'saturation', 'endpoint', 'dependency')
RUNBOOK_STEPS = {
    'service_down': 'Service Completely Down',
    'deploy': 'Mitigation Option 1: Rollback Recent Deployment',
    'saturation': 'Mitigation Option 2: Scale Up Resources',
    'endpoint': 'Mitigation Option 3: Disable Problematic Feature',
    'dependency': 'Mitigation Option 4: Circuit Breaker Activation',
    'escalate': 'Escalation',
}
# Actions that interrupt the service: never recommended when evidence they rest on is missing.
DISRUPTIVE = frozenset(('rollback', 'restart', 'recreate', 'free_port'))

DEFAULTS = {
    'cpu_percent': 90.0,
    'memory_percent': 95.0,
    'concentration': 0.8,
    'max_deploy_gap': 1800.0,
    'min_confidence': 0.5,
    'feature_flag_pattern': 'FEATURE_ENDPOINT_{name}_ENABLED',
    'circuit_breaker_env': {'CIRCUIT_BREAKER_THRESHOLD': '5', 'CIRCUIT_BREAKER_TIMEOUT': '60'},
}

ARGUMENT_SPEC = dict(
    incident=dict(type='dict', required=True),
    platform=dict(type='str', choices=['compose', 'kubernetes']),
    port=dict(type='int'),
    cpu_percent=dict(type='float', default=90.0),
    memory_percent=dict(type='float', default=95.0),
    max_deploy_gap=dict(type='str', default='30m'),
    min_confidence=dict(type='float', default=0.5),
    feature_flag_pattern=dict(type='str', default='FEATURE_ENDPOINT_{name}_ENABLED'),
    circuit_breaker_env=dict(type='dict', default={'CIRCUIT_BREAKER_THRESHOLD': '5',
                                                   'CIRCUIT_BREAKER_TIMEOUT': '60'}),
)

_UPSTREAM_WORDS = re.compile(r'timed? ?out|timeout|refused|unreachable|upstream|reset by peer|'
                             r'connection|pool exhausted|too many connections', re.I)
_PORT_CONFLICT = re.compile(r'address already in use|cannot bind|port .* in use|EADDRINUSE', re.I)
_CONFIG_ERROR = re.compile(r'config(uration)? error|invalid config|is not a url|missing required',
                           re.I)
_OOM = re.compile(r'out of memory|memory pressure|MemoryError|OOM', re.I)
_OVERLOAD = re.compile(r'overload|deadline exceeded|too busy|saturat', re.I)


def feature_flag_name(endpoint, pattern):
    """'/predict' -> 'FEATURE_ENDPOINT_PREDICT_ENABLED' (the runbook's feature-flag naming)."""
    name = re.sub(r'[^A-Za-z0-9]+', '_', endpoint or '').strip('_').upper() or 'ROOT'
    return pattern.format(name=name)


def short_image(image):
    return (image or '').rsplit(':', 1)[-1] if image and ':' in image else image


class Evidence:
    """Read-only view of the incident with what is missing said once."""

    def __init__(self, incident):
        self.incident = incident or {}
        triage = self.incident.get('triage') or {}
        investigate = self.incident.get('investigate') or {}
        self.errors = triage.get('error_rate') or {}
        self.health = triage.get('health') or {}
        self.changes = triage.get('changes') or []
        self.service_down = bool(triage.get('service_down'))
        self.logs = investigate.get('logs') or {}
        self.resources = investigate.get('resources') or {}
        self.dependencies = investigate.get('dependencies') or {}
        self.traces = investigate.get('traces') or {}
        # The "Service Completely Down" checks on the host (compose_service config_check).
        self.host = (self.incident.get('service_down') or {}).get('checks') or {}
        self.missing = []
        for name, part, needed in (('error rate', self.errors, True), ('health', self.health, True),
                                   ('recent changes', triage.get('changes'), True),
                                   ('logs', self.logs, True), ('resources', self.resources, True),
                                   ('dependencies', self.dependencies, False),
                                   ('traces', self.traces, False)):
            if part is None or (isinstance(part, dict) and not part):
                if needed:
                    self.missing.append('%s: not gathered' % name)
            elif isinstance(part, dict) and part.get('failed'):
                self.missing.append('%s: %s' % (name, part.get('msg') or 'failed'))
        self.partial = bool(self.errors.get('partial') or self.logs.get('partial')
                            or self.traces.get('partial') or self.missing)

    def has(self, part):
        return bool(part) and not part.get('failed')

    def messages(self):
        """Top log messages (patterns) with counts, most frequent first."""
        if not self.has(self.logs):
            return []
        return [(m.get('pattern') or m.get('example') or '', m.get('count', 0))
                for m in self.logs.get('top_messages') or []]

    def messages_matching(self, regex):
        return [(text, count) for text, count in self.messages() if regex.search(text)]


def _cause(kind, confidence, evidence, action, params=None, description=None, needs=()):
    return {'cause': kind, 'confidence': round(max(0.0, min(1.0, confidence)), 2),
            'evidence': evidence, 'runbook_step': RUNBOOK_STEPS[kind],
            'action': {'name': action, 'params': params or {}, 'description': description or action,
                       'disruptive': action in DISRUPTIVE},
            'needs': list(needs)}


def _quote(messages, limit=2):
    return ['log: %dx "%s"' % (count, text[:160]) for text, count in messages[:limit]]


def rule_service_down(ev, opts):
    down = ev.service_down or (ev.errors.get('verdict') == 'no_traffic'
                               and ev.has(ev.health) and not ev.health.get('all_ok', True))
    if not down:
        return None
    failing = ev.health.get('failed_checks') or []
    evidence = ['health checks failing: %s' % ', '.join(failing) if failing
                else 'no traffic reaches the service']
    restarts = (ev.resources.get('restarts') or 0) if ev.has(ev.resources) else 0
    oom = (ev.resources.get('oom_kills') or 0) if ev.has(ev.resources) else 0
    host = ev.host if ev.has(ev.host) else {}
    oom = oom or int(bool((host.get('oom') or {}).get('oom_killed')))
    if restarts:
        evidence.append('crash loop: %d restarts' % restarts)
    port = ev.messages_matching(_PORT_CONFLICT)
    holders = [h for h in host.get('port_holders') or [] if not h.get('in_service')]
    config = ev.messages_matching(_CONFIG_ERROR)
    compose = host.get('config') or {}
    drift = [d['name'] for d in compose.get('env_drift') or []]
    if port or holders:
        evidence += _quote(port) + ['port %s held by pid %s (%s)' % (
            opts.get('port'), h.get('pid'), (h.get('command') or '?')[:80]) for h in holders]
        return _cause('service_down', 0.95, evidence, 'free_port',
                      {'port': opts.get('port'), 'holders': holders},
                      'free port %s held by another process, then restart'
                      % (opts.get('port') or 'of the service'), needs=() if holders else ('logs',))
    if compose.get('valid') is False:
        return _cause('service_down', 0.9, evidence + ['compose config: %s' % compose.get('error')],
                      'escalate', {}, 'fix the compose file (compose config fails)')
    # The startup error in the logs says more than an OOM kill that may be an older story.
    if config or compose.get('hash_drift'):
        if compose.get('hash_drift'):
            evidence.append('the running container differs from the compose configuration%s'
                            % (': ' + ', '.join(drift) if drift else ''))
        return _cause('service_down', 0.9, evidence + _quote(config), 'recreate', {},
                      'fix the configuration, then force-recreate', needs=('logs',))
    if oom:
        return _cause('service_down', 0.85, evidence + ['OOM-killed %d times' % oom],
                      'resources', {'memory_factor': 2},
                      'raise the memory limit (OOM kills), then recreate', needs=('resources',))
    return _cause('service_down', 0.8, evidence, 'restart', {},
                  'restart the service and watch its startup logs', needs=('health',))


def rule_deploy(ev, opts, ruled_out):
    onset = ev.errors.get('onset')
    if ev.errors.get('verdict') not in ('warning', 'critical'):
        return None
    best = None
    for change in ev.changes:
        if change.get('kind') not in ('deploy', 'config'):
            continue
        if change.get('kind') == 'deploy' and change.get('previous_image') == change.get('image'):
            continue  # recreated with the same image: not a new version
        gap = change.get('seconds_before_onset')
        what = '%s %s at %s' % (change['kind'], change.get('summary'), change.get('time_iso'))
        if gap is None:
            continue
        if gap < 0:
            ruled_out.append('%s came %.0f s after the errors began: not their cause'
                             % (what, -gap))
            continue
        if gap <= opts['max_deploy_gap'] and (best is None or gap < best[1]):
            best = (change, gap, what)
    if best is None:
        return None
    change, gap, what = best
    evidence = ['errors began %.0f s after the %s' % (gap, what)]
    # A bad version fails as soon as it takes traffic: a spike shows within about two rate
    # windows of the deploy; a slow climb (a leak) may come later.
    near = gap <= 2 * (ev.errors.get('window_seconds') or 300) + 30
    spike = ev.errors.get('shape') == 'spike'
    if spike and near:
        confidence = 0.9
        evidence.append('the error rate rose as a spike right after it, as a bad version does')
        evidence += _quote(ev.messages(), 1)
    elif spike:
        confidence = 0.3
        evidence.append('but the spike came long after it: the new version had been healthy')
    else:
        confidence = 0.55 + (0.1 if near else 0.0)
    direct = _failing_dependencies(ev)
    if direct:
        confidence -= 0.3
        evidence.append('but dependencies fail on their own: %s' % ', '.join(direct))
    if change['kind'] == 'config':
        return _cause('deploy', confidence, evidence, 'rollback', {'commit': change.get('commit')},
                      'revert configuration commit %s' % (change.get('commit') or '')[:8],
                      needs=('recent changes',))
    target = change.get('previous_image')
    if not target:
        evidence.append('the image before it is not known: give the rollback target')
    return _cause('deploy', confidence, evidence, 'rollback',
                  {'to_image': target, 'from_image': change.get('image')},
                  'rollback to %s' % (short_image(target) or 'the previous version (unknown)'),
                  needs=('recent changes',) + (() if target else ('previous image',)))


def rule_saturation(ev, opts):
    if not ev.has(ev.resources):
        return None
    cpu = ev.resources.get('max_cpu_percent')
    memory = ev.resources.get('max_memory_percent')
    oom = ev.resources.get('oom_kills') or 0
    evidence = list(ev.resources.get('reasons') or [])
    memory_bound = (memory is not None and memory > opts['memory_percent']) or oom > 0
    cpu_bound = (cpu is not None and cpu > opts['cpu_percent']) or ev.resources.get('throttled')
    if not (memory_bound or cpu_bound):
        return None
    if not evidence:
        evidence = ['cpu %s%%, memory %s%%' % (cpu, memory)]
    confidence = 0.7 + (0.1 if oom else 0.0)
    hints = ev.messages_matching(_OOM if memory_bound else _OVERLOAD)
    if hints:
        confidence += 0.1
        evidence += _quote(hints)
    if memory_bound:
        return _cause('saturation', confidence, evidence, 'resources', {'memory_factor': 2},
                      'raise the memory limit (%s)' % ('OOM kills' if oom else 'memory %.0f%%'
                                                       % memory), needs=('resources',))
    if opts.get('platform') == 'kubernetes':
        return _cause('saturation', confidence, evidence, 'scale', {'replicas': '+2'},
                      'scale out by 2 replicas', needs=('resources',))
    return _cause('saturation', confidence, evidence, 'resources', {'cpu_factor': 2},
                  'raise the CPU limit (cpu %.0f%% of its limit)' % (cpu or 0),
                  needs=('resources',))


def rule_endpoint(ev, opts):
    if not ev.errors.get('concentrated') or not ev.errors.get('top_group'):
        return None
    endpoint = ev.errors['top_group']
    top = next((g for g in ev.errors.get('groups') or [] if g.get('value') == endpoint), {})
    evidence = ['%s holds %.0f%% of the errors (%.1f%% of its requests fail)' % (
        endpoint, 100 * top.get('share_of_errors', 0), top.get('error_percent') or 0)]
    confidence = 0.65
    related = [(t, c) for t, c in ev.messages() if endpoint in t]
    if related:
        evidence += _quote(related)
    if _failing_dependencies(ev):
        confidence -= 0.2
    flag = feature_flag_name(endpoint, opts['feature_flag_pattern'])
    return _cause('endpoint', confidence, evidence, 'feature_flag',
                  {'endpoint': endpoint, 'env': {flag: 'false'}},
                  'disable %s' % flag, needs=('error rate',))


def _failing_dependencies(ev):
    """Dependencies seen failing directly: /ready entries down or their own health checks."""
    if not ev.has(ev.dependencies):
        return []
    return sorted(set(ev.dependencies.get('failing') or []))


def rule_dependency(ev, opts):
    failing = _failing_dependencies(ev)
    upstream = ev.messages_matching(_UPSTREAM_WORDS)
    suspect = ev.traces.get('dependency_suspect') if ev.has(ev.traces) else None
    pools = sorted({pool for check in ev.dependencies.get('checks') or []
                    for pool in check.get('exhausted_pools') or []}) if ev.has(ev.dependencies) else []
    if not (failing or suspect or pools or upstream):
        return None
    names = failing or ([suspect] if suspect else [])
    if not names:
        named = [n for n in ev.dependencies.get('names') or [] for t, c in upstream if n in t]
        names = sorted(set(named))
    evidence = []
    confidence = 0.3
    if failing:
        evidence.append('failing dependencies: %s' % ', '.join(failing))
        confidence += 0.35
    if upstream:
        evidence += _quote(upstream)
        confidence += 0.15
    if suspect:
        evidence.append('traces: errors sit in %s' % suspect)
        confidence += 0.1
    if pools:
        evidence.append('connection pool exhausted: %s' % ', '.join(pools))
        return _cause('dependency', confidence + 0.2, evidence, 'restart', {'reason': 'pools'},
                      'restart to reset the connection pools', needs=('dependencies',))
    if not names:
        return _cause('dependency', confidence - 0.2, evidence, 'escalate', {},
                      'escalate: upstream errors without a named dependency')
    params = {'dependency': names[0], 'env': dict(opts['circuit_breaker_env'])}
    return _cause('dependency', confidence, evidence, 'circuit_breaker', params,
                  'circuit breaker on %s' % names[0], needs=('dependencies',))


def options_from_params(params):
    """Rule options from validated module parameters; ValueError names a bad one."""
    if '{name}' not in params['feature_flag_pattern']:
        raise ValueError('feature_flag_pattern %r must contain {name}'
                         % params['feature_flag_pattern'])
    try:
        max_gap = parse_duration(params['max_deploy_gap'])
    except ValueError as err:
        raise ValueError('max_deploy_gap: %s' % err)
    return dict(platform=params['platform'] or params['incident'].get('platform'),
                port=params['port'], cpu_percent=params['cpu_percent'],
                memory_percent=params['memory_percent'], max_deploy_gap=max_gap,
                min_confidence=params['min_confidence'],
                feature_flag_pattern=params['feature_flag_pattern'],
                circuit_breaker_env={k: str(v) for k, v in params['circuit_breaker_env'].items()})


def diagnose(incident, options=None):
    """Ranked causes, one recommended action and the plan of actions to try in turn (the
    recommended one first), what was ruled out and what could not be seen."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    ev = Evidence(incident)
    ruled_out = []
    found = [rule_service_down(ev, opts), rule_deploy(ev, opts, ruled_out),
             rule_saturation(ev, opts), rule_endpoint(ev, opts), rule_dependency(ev, opts)]
    causes = sorted((c for c in found if c),
                    key=lambda c: (-c['confidence'], RUNBOOK_ORDER.index(c['cause'])))
    plan = []
    refused = []
    for cause in causes:
        if cause['confidence'] < opts['min_confidence'] or cause['action']['name'] == 'escalate':
            break
        blocked = [n for n in cause['needs'] if n == 'previous image'
                   or any(m.startswith(n + ':') for m in ev.missing)]
        partial = ev.errors.get('partial')
        if cause['action']['disruptive'] and (blocked or partial):
            refused.append('%s not recommended: %s' % (
                cause['action']['description'],
                'missing ' + ', '.join(blocked) if blocked else 'the error rate is partial'))
            continue
        plan.append(cause)
    recommended = plan[0] if plan else None
    if recommended is None:
        verdict = ev.errors.get('verdict')
        first = causes[0] if causes else None
        reason = (first['action']['description'] if first and first['action']['name'] == 'escalate'
                  else '; '.join(refused) if refused else 'no cause stands out in the evidence'
                  if causes or verdict in ('warning', 'critical') else
                  'the error rate is %s' % (verdict or 'unknown'))
        action = {'name': 'escalate', 'params': {'reason': reason},
                  'description': 'escalate with the evidence', 'disruptive': False}
        recommended = {'cause': 'escalate', 'confidence': 0.0, 'evidence': [reason],
                       'runbook_step': RUNBOOK_STEPS['escalate'], 'action': action, 'needs': []}
    return {
        'causes': causes,
        'recommended': recommended,
        'action': recommended['action'],
        'plan': plan,
        'summary': '%s: %s' % (recommended['cause'], recommended['action']['description']),
        'ruled_out': ruled_out,
        'refused': refused,
        'missing_evidence': ev.missing,
        'partial': ev.partial,
    }

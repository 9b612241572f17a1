# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's decision, as pure rules over the evidence in the `incident` fact.

Every rule that finds support becomes a cause with its evidence, a confidence, the runbook step
it maps to and one action; causes are ranked by confidence, then by the runbook's order (service
down, recent change, saturation, one endpoint, dependency). Evidence that could not be gathered
is said, and an action that disrupts the service is never recommended on missing evidence.

On Kubernetes (platform kubernetes) the service-down checks are k8s_status's (deployment, pods,
endpoints, events, HPA, problems, previous-container logs) and the actions are the cluster's:
`restart` is a rollout restart (there is no recreate, and no free_port: ports are per pod),
`rollback` names the revision to undo to, `scale` adds replicas (through the HPA when one manages
the workload). A cause carries `infrastructure` and `database` so the escalation can page the
right team (the DhakaCart runbook escalates when database or infrastructure issues are suspected).
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
    # DhakaCart runbook: "Scale up replicas temporarily", "Scale horizontally --replicas=8".
    scale_step=dict(type='int', default=2),
    max_replicas=dict(type='int', default=8),
)
# The rule options when diagnose() is called without them: the module's defaults.
DEFAULTS = {key: spec['default'] for key, spec in ARGUMENT_SPEC.items() if 'default' in spec}
DEFAULTS['max_deploy_gap'] = parse_duration(DEFAULTS['max_deploy_gap'])

_UPSTREAM_WORDS = re.compile(r'timed? ?out|timeout|refused|unreachable|upstream|reset by peer|'
                             r'connection|pool exhausted|too many connections', re.I)
_PORT_CONFLICT = re.compile(r'address already in use|cannot bind|port .* in use|EADDRINUSE', re.I)
_CONFIG_ERROR = re.compile(r'config(uration)? error|invalid config|is not a url|missing required',
                           re.I)
_OOM = re.compile(r'out of memory|memory pressure|MemoryError|OOM', re.I)
_OVERLOAD = re.compile(r'overload|deadline exceeded|too busy|saturat', re.I)
# What a container prints when it cannot start: its configuration, a missing module or file.
_STARTUP_ERROR = re.compile(r'config(uration)? error|invalid config|is not a url|missing required|'
                            r'not set|no such file|cannot find module|ModuleNotFoundError|'
                            r'ImportError|panic:|fatal|failed to start', re.I)
_DATABASE = re.compile(r'postgres|mysql|maria|mongo|redis|database|pg_pool|(?<![a-z])(db|pg)(?![a-z])',
                       re.I)
_MISSING_REF = re.compile(r'(configmap|secret)s? "([^"]+)" not found|'
                          r"couldn't find key (\S+) in (ConfigMap|Secret) (\S+)", re.I)
_INSUFFICIENT = re.compile(r'Insufficient ([\w./-]*[\w/-])')


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
        self.rollback_revision = triage.get('rollback_revision')
        self.service_down = bool(triage.get('service_down'))
        self.logs = investigate.get('logs') or {}
        self.resources = investigate.get('resources') or {}
        self.dependencies = investigate.get('dependencies') or {}
        self.traces = investigate.get('traces') or {}
        # The "Service Completely Down" checks: compose_service config_check on a docker host,
        # k8s_status on Kubernetes.
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


def _cause(kind, confidence, evidence, action, params=None, description=None, needs=(),
           infrastructure=False, database=False):
    """`infrastructure` and `database`: the cause points at the cluster or at a database, the
    teams the runbook escalates to."""
    return {'cause': kind, 'confidence': round(max(0.0, min(1.0, confidence)), 2),
            'evidence': evidence, 'runbook_step': RUNBOOK_STEPS[kind],
            'action': {'name': action, 'params': params or {}, 'description': description or action,
                       'disruptive': action in DISRUPTIVE},
            'needs': list(needs), 'infrastructure': infrastructure, 'database': database}


def _quote(messages, limit=2):
    return ['log: %dx "%s"' % (count, text[:160]) for text, count in messages[:limit]]


def rule_service_down(ev, opts, change):
    """The "Service Completely Down" causes: [] when the service is up (on Kubernetes, up and no
    pod problem); `change` is the deploy or configuration change before the onset, if any."""
    down = ev.service_down or (ev.errors.get('verdict') == 'no_traffic'
                               and ev.has(ev.health) and not ev.health.get('all_ok', True))
    if opts.get('platform') == 'kubernetes':
        return _service_down_kubernetes(ev, change, down)
    return [_service_down_compose(ev, opts)] if down else []


def _down_evidence(ev):
    failing = ev.health.get('failed_checks') or []
    return ['health checks failing: %s' % ', '.join(failing) if failing
            else 'no traffic reaches the service']


def _service_down_compose(ev, opts):
    evidence = _down_evidence(ev)
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


def _what(change):
    return '%s %s at %s' % (change['kind'], change.get('summary'), change.get('time_iso'))


def change_before_onset(ev, opts):
    """(change, gap) of the deploy or configuration change nearest before the onset, within
    max_deploy_gap (gap None: no onset is known, the newest change stands), or None; and the
    changes that came after the onset, ruled out as its cause."""
    best, unknown, ruled_out = None, None, []
    for change in ev.changes:
        if change.get('kind') not in ('deploy', 'config'):
            continue
        if change.get('kind') == 'deploy' and change.get('previous_image') == change.get('image'):
            continue  # recreated with the same image: not a new version
        gap = change.get('seconds_before_onset')
        if gap is None:
            if unknown is None or (change.get('time') or 0) > (unknown[0].get('time') or 0):
                unknown = (change, None)
        elif gap < 0:
            ruled_out.append('%s came %.0f s after the errors began: not their cause'
                             % (_what(change), -gap))
        elif gap <= opts['max_deploy_gap'] and (best is None or gap < best[1]):
            best = (change, gap)
    if best is None and ev.errors.get('onset') is None:
        best = unknown
    return best, ruled_out


def _rollback(ev, change):
    """(params, description, needs) of undoing `change`: a configuration commit reverted, an image
    rolled back, on Kubernetes to a revision (the one recorded before any mitigation, else the one
    before the change)."""
    if change['kind'] == 'config':
        return ({'commit': change.get('commit')},
                'revert configuration commit %s' % (change.get('commit') or '')[:8], ())
    target = change.get('previous_image')
    params = {'to_image': target, 'from_image': change.get('image')}
    revision = None
    if change.get('revision') is not None:
        revision = ev.rollback_revision or change.get('previous_revision')
        params['to_revision'] = revision
    if revision:
        description = 'roll back to revision %s%s' % (
            revision, ' (%s)' % short_image(target) if target else '')
    else:
        description = 'rollback to %s' % (short_image(target) or 'the previous version (unknown)')
    return params, description, () if target or revision else ('previous image',)


def workload_name(ev):
    status = ev.host if ev.has(ev.host) else {}
    return (status.get('deployment') or {}).get('name') or ev.incident.get('service') or 'the workload'


def _k8s_facts(status):
    """What k8s_status saw, one sentence each, with its figures."""
    facts = []
    deployment = status.get('deployment') or {}
    if deployment.get('replicas') is not None:
        facts.append('deployment %s: %s of %s replicas ready, %s updated, %s available (revision %s)' % (
            deployment.get('name'), deployment.get('ready_replicas') or 0, deployment['replicas'],
            deployment.get('updated_replicas') or 0, deployment.get('available_replicas') or 0,
            deployment.get('revision')))
    endpoints = status.get('endpoints') or {}
    if endpoints.get('found'):
        facts.append('service %s: %d ready endpoints, %d not ready' % (
            endpoints.get('service'), endpoints.get('ready') or 0, endpoints.get('not_ready') or 0))
    for problem in status.get('problems') or []:
        pods = problem.get('pods') or []
        facts.append('%s in %d pod%s%s: %s' % (
            problem.get('kind'), len(pods), '' if len(pods) == 1 else 's',
            ' (%s)' % ', '.join(pods[:3]) if pods else '', (problem.get('message') or '')[:160]))
    crashed = sorted((p for p in status.get('pods') or [] if p.get('restarts')),
                     key=lambda p: -p['restarts'])
    for pod in crashed[:2]:
        facts.append('pod %s: %d restarts%s' % (
            pod.get('name'), pod['restarts'], ', last terminated %s (exit code %s)' % (
                pod['last_terminated_reason'], pod.get('last_exit_code'))
            if pod.get('last_terminated_reason') else ''))
    for event in (status.get('events') or [])[:2]:
        facts.append('event %s %s on %s (%sx): %s' % (
            event.get('type'), event.get('reason'), event.get('object'), event.get('count') or 1,
            (event.get('message') or '')[:160]))
    return facts


def _missing_reference(message):
    """'ConfigMap x', 'key K of Secret ns/x' from a CreateContainerConfigError message."""
    match = _MISSING_REF.search(message or '')
    if not match:
        return None
    if match.group(1):
        kind = 'ConfigMap' if match.group(1).lower() == 'configmap' else 'Secret'
        return '%s %s' % (kind, match.group(2))
    return 'key %s of %s %s' % (match.group(3), match.group(4), match.group(5))


def _service_down_kubernetes(ev, change, down):
    """The pods' state decides: an image that cannot be pulled or a stalled rollout of a new
    version is rolled back; a missing ConfigMap/Secret or nodes without room are escalated (no
    action of ours creates them); OOM kills raise the memory limit; a crash loop is rolled back
    when a change preceded it, else restarted; pods that run but are not ready are restarted,
    unless a dependency they wait for fails."""
    status = ev.host if ev.has(ev.host) else {}
    problems = {}
    for problem in status.get('problems') or []:
        problems.setdefault(problem.get('kind'), problem)
    if not (down or problems):
        return []
    name = workload_name(ev)
    evidence = (_down_evidence(ev) if down else []) + _k8s_facts(status)
    if change:
        evidence.append('%s %s' % (_what(change[0]), 'before the errors (onset unknown)'
                                   if change[1] is None else '%.0f s before the errors' % change[1]))
    failing = _failing_dependencies(ev)

    pull = problems.get('ImagePullBackOff') or problems.get('ErrImagePull')
    if pull:
        if failing:
            evidence.append('dependencies fail too (%s), but they do not keep an image from being '
                            'pulled' % ', '.join(failing))
        return [_image_rollback(ev, evidence)]
    config = problems.get('CreateContainerConfigError')
    if config:
        missing = _missing_reference(config.get('message')) or 'a ConfigMap or Secret'
        return [_cause('service_down', 0.9, evidence, 'escalate', {'missing': missing},
                       'escalate: %s the pods need is missing (CreateContainerConfigError); create it '
                       'or roll back the change that needs it' % missing)]
    unschedulable = problems.get('Unschedulable')
    if unschedulable:
        short = sorted(set(_INSUFFICIENT.findall(unschedulable.get('message') or '')))
        return [_cause('service_down', 0.9, evidence, 'escalate', {'insufficient': short},
                       'escalate to infrastructure: pods cannot be scheduled (%s)' % (
                           'insufficient %s on the nodes' % ', '.join(short) if short
                           else (unschedulable.get('message') or 'no node fits')[:120]),
                       infrastructure=bool(short))]
    stalled = problems.get('ProgressDeadlineExceeded')
    if stalled and change:
        evidence.append('the rollout of the new version stalled: it is at fault')
        return [_change_rollback(ev, change, 0.85, evidence)]
    oom = (problems.get('OOMKilled') or (status.get('oom') or {}).get('oom_killed')
           or (ev.has(ev.resources) and ev.resources.get('oom_kills')))
    if oom:
        count = (status.get('oom') or {}).get('count') or ev.resources.get('oom_kills') or 1
        return [_cause('service_down', 0.85, evidence + ['OOM-killed %d times' % count],
                       'resources', {'memory_factor': 2},
                       'raise the memory limit of %s (OOM kills); the pods roll' % name)
                ] + _also_roll_back(ev, change, 'the OOM kills began after it')
    port = ev.messages_matching(_PORT_CONFLICT)
    if port:
        if change:
            return [_change_rollback(ev, change, 0.8, evidence + _quote(port))]
        return [_cause('service_down', 0.8, evidence + _quote(port), 'escalate', {},
                       'escalate: a port is taken inside the pod (another container, or '
                       'hostNetwork/hostPort): fix the pod spec')]
    startup = (['previous container log: "%s"' % line[:160] for line in
                [line for line in status.get('logs') or [] if _STARTUP_ERROR.search(line)][:2]]
               or _quote(ev.messages_matching(_STARTUP_ERROR)))
    if problems.get('CrashLoopBackOff') or (startup and not status):
        if change:
            return [_change_rollback(ev, change, 0.9 if startup else 0.75, evidence + startup)]
        return [_cause('service_down', 0.75 if startup else 0.7, evidence + startup, 'restart',
                       {}, 'rollout restart %s and watch its startup logs' % name, needs=('health',))]
    running = [p['name'] for p in status.get('pods') or [] if p.get('phase') == 'Running']
    if (problems.get('NoReadyEndpoints') or problems.get('NotReady')) and running and failing:
        evidence.append('the pods run but are not ready while %s fails: a restart would not '
                        'make them ready' % ', '.join(failing))
        return [_cause('service_down', 0.4, evidence, 'escalate', {},
                       'escalate: pods wait for %s' % ', '.join(failing),
                       database=bool(_DATABASE.search(' '.join(failing))))]
    return [_cause('service_down', 0.8, evidence, 'restart', {},
                   'rollout restart %s and watch its startup logs' % name, needs=('health',))
            ] + _also_roll_back(ev, change, 'the service went down after it')


def _change_rollback(ev, change, confidence, evidence):
    params, description, needs = _rollback(ev, change[0])
    return _cause('service_down', confidence, evidence, 'rollback', params, description,
                  needs=needs)


def _also_roll_back(ev, change, why):
    """The change before the onset as the next cause to try, when the first is not a rollback."""
    if not change:
        return []
    params, description, needs = _rollback(ev, change[0])
    return [_cause('deploy', 0.6, ['%s: %s' % (why, _what(change[0]))], 'rollback', params,
                   description, needs=('recent changes',) + needs)]


def _image_rollback(ev, evidence):
    """Pods that cannot pull their image: back to the revision recorded before any mitigation,
    else the one before the newest deploy, else kubectl's previous revision."""
    deploys = sorted((c for c in ev.changes if c.get('kind') == 'deploy'),
                     key=lambda c: c.get('time') or 0)
    params, description, needs = (_rollback(ev, deploys[-1]) if deploys
                                  else (None, None, ('previous image',)))
    if needs:
        revision = ev.rollback_revision
        params = {'to_revision': revision}
        description = ('roll back to revision %s' % revision if revision
                       else 'roll back to the previous revision')
    evidence = evidence + ['the image of the new version cannot be pulled: the pods of the '
                           'previous revision can run']
    return _cause('service_down', 0.95, evidence, 'rollback', params, description)


def rule_deploy(ev, opts, found):
    if ev.errors.get('verdict') not in ('warning', 'critical') or found is None:
        return None
    change, gap = found
    if gap is None:
        return None
    what = _what(change)
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
    params, description, needs = _rollback(ev, change)
    if needs:
        evidence.append('the image before it is not known: give the rollback target')
    return _cause('deploy', confidence, evidence, 'rollback', params, description,
                  needs=('recent changes',) + needs)


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
        return _scale_out(ev, opts, confidence, evidence, cpu)
    return _cause('saturation', confidence, evidence, 'resources', {'cpu_factor': 2},
                  'raise the CPU limit (cpu %.0f%% of its limit)' % (cpu or 0),
                  needs=('resources',))


def _scale_out(ev, opts, confidence, evidence, cpu):
    """CPU-bound on Kubernetes: scale out by scale_step replicas, up to max_replicas and the HPA's
    maxReplicas (k8s_workload moves the HPA's floor); at either ceiling, raise the CPU limit."""
    status = ev.host if ev.has(ev.host) else {}
    hpa = ev.resources.get('hpa') or status.get('hpa')
    current = ((hpa or {}).get('current_replicas')
               or (status.get('deployment') or {}).get('replicas'))
    name = workload_name(ev)
    ceiling = opts['max_replicas']
    if hpa:
        evidence = evidence + ['HorizontalPodAutoscaler %s: %s replicas (min %s, max %s, desired %s)'
                               % (hpa.get('name'), hpa.get('current_replicas'),
                                  hpa.get('min_replicas'), hpa.get('max_replicas'),
                                  hpa.get('desired_replicas'))]
        ceiling = min(ceiling, hpa.get('max_replicas') or ceiling)
    full = None
    if hpa and hpa.get('at_max'):
        full = 'the HorizontalPodAutoscaler %s is at its maximum of %s replicas' % (
            hpa.get('name'), hpa.get('max_replicas'))
    elif current is not None and current >= ceiling:
        full = '%s already has %d replicas, the most max_replicas (%d) allows' % (
            name, current, opts['max_replicas'])
    if full:
        return _cause('saturation', confidence - 0.1, evidence + [full], 'resources',
                      {'cpu_factor': 2}, 'raise the CPU limit of %s (cpu %.0f%% of its limit): %s'
                      % (name, cpu or 0, full), needs=('resources',))
    step = opts['scale_step']
    if current is None:
        return _cause('saturation', confidence, evidence, 'scale', {'replicas': '+%d' % step},
                      'scale out by %d replicas' % step, needs=('resources',))
    target = min(current + step, ceiling)
    return _cause('saturation', confidence, evidence, 'scale', {'replicas': target},
                  'scale %s from %d to %d replicas' % (name, current, target),
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
    database = bool(_DATABASE.search(' '.join(names + pools)))
    if pools:
        evidence.append('connection pool exhausted: %s' % ', '.join(pools))
        return _cause('dependency', confidence + 0.2, evidence, 'restart', {'reason': 'pools'},
                      'restart to reset the connection pools', needs=('dependencies',),
                      database=database)
    if not names:
        return _cause('dependency', confidence - 0.2, evidence, 'escalate', {},
                      'escalate: upstream errors without a named dependency')
    params = {'dependency': names[0], 'env': dict(opts['circuit_breaker_env'])}
    return _cause('dependency', confidence, evidence, 'circuit_breaker', params,
                  'circuit breaker on %s' % names[0], needs=('dependencies',), database=database)


def options_from_params(params):
    """Rule options from validated module parameters; ValueError names a bad one."""
    if '{name}' not in params['feature_flag_pattern']:
        raise ValueError('feature_flag_pattern %r must contain {name}'
                         % params['feature_flag_pattern'])
    try:
        max_gap = parse_duration(params['max_deploy_gap'])
    except ValueError as err:
        raise ValueError('max_deploy_gap: %s' % err)
    for name in ('scale_step', 'max_replicas'):
        if params[name] < 1:
            raise ValueError('%s must be at least 1, not %d' % (name, params[name]))
    return dict(platform=params['platform'] or params['incident'].get('platform'),
                port=params['port'], cpu_percent=params['cpu_percent'],
                memory_percent=params['memory_percent'], max_deploy_gap=max_gap,
                min_confidence=params['min_confidence'],
                feature_flag_pattern=params['feature_flag_pattern'],
                circuit_breaker_env={k: str(v) for k, v in params['circuit_breaker_env'].items()},
                scale_step=params['scale_step'], max_replicas=params['max_replicas'])


def diagnose(incident, options=None):
    """Ranked causes, one recommended action and the plan of actions to try in turn (the
    recommended one first), what was ruled out and what could not be seen."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    opts.setdefault('platform', (incident or {}).get('platform'))
    ev = Evidence(incident)
    change, ruled_out = change_before_onset(ev, opts)
    found = rule_service_down(ev, opts, change) + [
        rule_deploy(ev, opts, change), rule_saturation(ev, opts), rule_endpoint(ev, opts),
        rule_dependency(ev, opts)]
    causes = sorted((c for c in found if c),
                    key=lambda c: (-c['confidence'], RUNBOOK_ORDER.index(c['cause'])))
    plan = []
    refused = []
    for cause in causes:
        if cause['confidence'] < opts['min_confidence'] or cause['action']['name'] == 'escalate':
            break
        if any(c['action']['name'] == cause['action']['name']
               and c['action']['params'] == cause['action']['params'] for c in plan):
            continue  # the same action for a second cause: tried once
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
        # Who to escalate to: what the causes that stand suspect.
        standing = [c for c in causes if c['confidence'] >= opts['min_confidence']]
        recommended = {'cause': 'escalate', 'confidence': 0.0, 'evidence': [reason],
                       'runbook_step': RUNBOOK_STEPS['escalate'], 'action': action, 'needs': [],
                       'infrastructure': any(c['infrastructure'] for c in standing),
                       'database': any(c['database'] for c in standing)}
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

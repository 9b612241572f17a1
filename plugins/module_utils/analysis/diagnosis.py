# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's decision, as pure rules over the evidence in the `incident` fact.

Every rule that finds support becomes a cause with its evidence, a confidence, the runbook step
it maps to, one action and what it explains: the share of the errors, split by status code
(error_rate's by_status) and by log signature (log_search's top messages), credited to it. Causes
that hold (confidence at least min_confidence) are ranked by that share, shares within SHARE_TIE
of each other by confidence; without the split, and for the causes that do not hold, by
confidence; ties by the runbook's order (service down, recent change, saturation, one endpoint,
dependency). Evidence that could not be gathered is said, an action that disrupts the service is
never recommended on missing evidence, and a rollback never returns to a version known bad.
Each action comes as the module and parameters that do it on compose and on Kubernetes, with its
disruption class (`calls`, `disruption`: analysis/actions.py), which the role mitigate dispatches.

On Kubernetes (platform kubernetes) the service-down checks are k8s_status's (deployment, pods,
endpoints, events, HPA, problems, previous-container logs) and the actions are the cluster's:
`restart` is a rollout restart (there is no recreate, and no free_port: ports are per pod),
`rollback` names the revision to undo to, `scale` adds replicas (through the HPA when one manages
the workload). A cause carries `infrastructure` and `database` so the escalation can page the
right team (the DhakaCart runbook escalates when database or infrastructure issues are suspected).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.actions import describe, is_disruptive
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import RECREATE_SECONDS
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.symptoms import BAD_VERDICTS, SYMPTOMS, symptom_of
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration

RUNBOOK_ORDER = ('service_down', 'crash_loop', 'deploy', 'saturation', 'endpoint', 'database', 'dependency')
RUNBOOK_STEPS = {
    'service_down': 'Service Completely Down',
    'deploy': 'Mitigation Option 1: Rollback Recent Deployment',
    'saturation': 'Mitigation Option 2: Scale Up Resources',
    'endpoint': 'Mitigation Option 3: Disable Problematic Feature',
    'dependency': 'Mitigation Option 4: Circuit Breaker Activation',
    'database': 'Database Issues',
    'crash_loop': 'Pod Crash Loop',
    'escalate': 'Escalation',
}
# A change after the onset of the symptom, ruled out.
ONSET_WORDS = {'error_rate': 'the errors began: not their cause', 'latency': 'the slowdown began: not its cause',
               'crash_loop': 'the crashes began: not their cause'}
# Causes that hold and explain shares of the errors this close are ranked by confidence.
SHARE_TIE = 0.1
# Without a log signature that says whose they are: a gateway's answers to an upstream that
# failed or timed out, and a service shedding load.
DEPENDENCY_STATUSES = ('502', '504')
SATURATION_STATUSES = ('503',)

ARGUMENT_SPEC: dict[str, dict[str, Any]] = dict(
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
    # Database Issues: a session of another application idle in its transaction this long, or
    # whose query has run this long, while it blocks the service's sessions, is ended.
    database_idle_after=dict(type='str', default='10s'),
    scale_step=dict(type='int', default=2),
    max_replicas=dict(type='int', default=8),
)
# The rule options when diagnose() is called without them: the module's defaults.
DEFAULTS: dict[str, Any] = {key: spec['default'] for key, spec in ARGUMENT_SPEC.items() if 'default' in spec}
DEFAULTS['max_deploy_gap'] = parse_duration(DEFAULTS['max_deploy_gap'])
DEFAULTS['database_idle_after'] = parse_duration(DEFAULTS['database_idle_after'])

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


def feature_flag_name(endpoint: str | None, pattern: str) -> str:
    """'/predict' -> 'FEATURE_ENDPOINT_PREDICT_ENABLED' (the runbook's feature-flag naming)."""
    name = re.sub(r'[^A-Za-z0-9]+', '_', endpoint or '').strip('_').upper() or 'ROOT'
    return pattern.format(name=name)


def short_image(image: str | None) -> str | None:
    return (image or '').rsplit(':', 1)[-1] if image and ':' in image else image


class Evidence:
    """Read-only view of the incident with what is missing said once."""

    def __init__(self, incident: dict[str, Any] | None) -> None:
        self.incident = incident or {}
        triage = self.incident.get('triage') or {}
        investigate = self.incident.get('investigate') or {}
        # The symptom the runbook acts on (analysis/symptoms.py): its measurement and onset.
        self.symptom = symptom_of(self.incident)
        self.errors = triage.get('error_rate') or {}
        self.latency = triage.get('latency') or {}
        self.measured = triage.get(self.symptom) or {}
        self.onset = self.measured.get('onset')
        self.health = triage.get('health') or {}
        self.changes = triage.get('changes') or []
        self.rollback_revision = triage.get('rollback_revision')
        self.service_down = bool(triage.get('service_down'))
        self.logs = investigate.get('logs') or {}
        self.resources = investigate.get('resources') or {}
        self.dependencies = investigate.get('dependencies') or {}
        self.traces = investigate.get('traces') or {}
        # postgres_activity_info of the service's database, when the inventory names one.
        self.database = investigate.get('database') or {}
        # The "Service Completely Down" checks: compose_service_info config_check on a docker host,
        # k8s_status on Kubernetes.
        self.host = (self.incident.get('service_down') or {}).get('checks') or {}
        self.missing: list[str] = []
        for name, part, needed in (('error rate', self.errors, self.symptom == 'error_rate'),
                                   ('response time', self.latency, self.symptom == 'latency'),
                                   ('health', self.health, True),
                                   ('recent changes', triage.get('changes'), True),
                                   ('logs', self.logs, True), ('resources', self.resources, True),
                                   ('dependencies', self.dependencies, False),
                                   ('database', self.database, False),
                                   ('traces', self.traces, False)):
            if part is None or (isinstance(part, dict) and not part):
                if needed:
                    self.missing.append('%s: not gathered' % name)
            elif isinstance(part, dict) and part.get('failed'):
                self.missing.append('%s: %s' % (name, part.get('msg') or 'failed'))
        # What the triage could not gather (its sources are optional at run time), said once.
        seen = {m.split(':', 1)[0] for m in self.missing}
        self.missing += [m for m in self.incident.get('missing_evidence') or [] if m.split(':', 1)[0] not in seen]
        # Why the evidence is partial, one sentence each: what the gate says when it refuses.
        self.partial_reasons = [why for why, part in (
            ('%s is partial' % SYMPTOMS[self.symptom], self.measured), ('the logs are partial', self.logs),
            ('the traces are partial', self.traces)) if part.get('partial')] + self.missing
        self.partial = bool(self.partial_reasons)
        # {image: why}: versions a rollback must not return to, set by diagnose() once the change
        # before the onset is known.
        self.known_bad: dict[str, str] = {}

    def has(self, part: Any) -> bool:
        return bool(part) and not part.get('failed')

    def messages(self) -> list[tuple[str, int]]:
        """Top log messages (patterns) with counts, most frequent first."""
        if not self.has(self.logs):
            return []
        return [(m.get('pattern') or m.get('example') or '', m.get('count', 0))
                for m in self.logs.get('top_messages') or []]

    def messages_matching(self, regex: re.Pattern[str]) -> list[tuple[str, int]]:
        return [(text, count) for text, count in self.messages() if regex.search(text)]


class ErrorSplit:
    """The errors split by status code (error_rate's by_status: status, error_rate, share_of_errors,
    onset) and by log signature (log_search's top messages: pattern, count, first_seen, last_seen,
    status_codes, endpoints), each part told whose it is: the dependency's (upstream errors), the
    saturation's (overload, memory) when those causes stand, else the service's own, which a
    change may explain. A status the logs split is shared out by its signatures' counts; one they
    do not is whose its code says (DEPENDENCY_STATUSES, SATURATION_STATUSES), else the service's."""

    def __init__(self, ev: Evidence, dependency: dict[str, Any] | None, saturation: dict[str, Any] | None,
                 database: dict[str, Any] | None = None) -> None:
        by_status = ev.errors.get('by_status')
        self.statuses = [dict(s, status=str(s['status'])) for s in by_status
                         if isinstance(s, dict) and s.get('status') is not None
                         ] if isinstance(by_status, list) else []
        self.available = bool(self.statuses)
        total_rate = sum(s.get('error_rate') or 0.0 for s in self.statuses)
        for status in self.statuses:
            if not isinstance(status.get('share_of_errors'), (int, float)):
                status['share_of_errors'] = ((status.get('error_rate') or 0.0) / total_rate
                                             if total_rate else 0.0)
        self.dependency, self.saturation = dependency is not None, saturation is not None
        self.database = database is not None
        self.signatures: list[dict[str, Any]] = []
        for message in (ev.logs.get('top_messages') or []) if ev.has(ev.logs) else []:
            text = message.get('pattern') or message.get('example') or ''
            self.signatures.append({
                'pattern': text, 'count': message.get('count') or 0,
                'first_seen': message.get('first_seen'), 'last_seen': message.get('last_seen'),
                'statuses': {str(k): n for k, n in (message.get('status_codes') or {}).items()},
                'endpoints': message.get('endpoints') or {}, 'kind': self._kind_of_text(text)})

    def _kind_of_text(self, text: str) -> str:
        if self.database and _DATABASE.search(text):
            return 'database'
        if self.dependency and _UPSTREAM_WORDS.search(text):
            return 'dependency'
        if self.saturation and (_OVERLOAD.search(text) or _OOM.search(text)):
            return 'saturation'
        return 'own'

    def _kind_of_status(self, code: str) -> str:
        if self.database and code in DEPENDENCY_STATUSES + SATURATION_STATUSES:
            return 'database'
        if self.dependency and code in DEPENDENCY_STATUSES:
            return 'dependency'
        if self.saturation and code in SATURATION_STATUSES:
            return 'saturation'
        return 'own'

    def parts(self, status: dict[str, Any]) -> list[tuple[str, float, dict[str, Any] | None]]:
        """[(kind, fraction of the status, signature or None)] of one by_status entry, a code
        (504) or a class (5xx)."""
        code = status['status'].lower()
        logged = [(sig, sum(n for logged_code, n in sig['statuses'].items() if logged_code == code
                            or (code.endswith('xx') and logged_code[:1] == code[:1])))
                  for sig in self.signatures]
        logged = [(sig, count) for sig, count in logged if count]
        total = sum(count for _sig, count in logged)
        if not total:
            return [(self._kind_of_status(status['status']), 1.0, None)]
        return [(sig['kind'], count / float(total), sig) for sig, count in logged]

    def own_onsets(self) -> list[tuple[float, str]]:
        """[(onset, status)] of the statuses the service's own errors are part of."""
        return [(s['onset'], s['status']) for s in self.statuses if s.get('onset') is not None
                and any(kind == 'own' for kind, _f, _sig in self.parts(s))]

    def signatures_of(self, kind: str, since: float | None = None) -> list[dict[str, Any]]:
        """Signatures of that kind, most frequent first; with since, those not first seen before."""
        return [sig for sig in self.signatures if sig['kind'] == kind and (
            since is None or sig['first_seen'] is None or sig['first_seen'] >= since)]

    def rise_between(self, start: float | None, end: float | None) -> str | None:
        """Why the service's own errors rose between start and end (epoch; end None: up to now),
        or None: a status of its own whose onset falls in between, or a signature of its own
        first seen in between that ended with it."""
        if start is None:
            return None
        for onset, status in self.own_onsets():
            if start <= onset and (end is None or onset < end):
                return '%s errors rose %.0f s after it was deployed' % (status, onset - start)
        if end is None:
            return None
        for sig in self.signatures_of('own'):
            if (sig['first_seen'] is not None and start <= sig['first_seen'] < end
                    and sig['last_seen'] is not None
                    and sig['last_seen'] <= end + RECREATE_SECONDS):
                return ('its errors "%s" (%dx) began after it was deployed and ended when it was '
                        'replaced' % (sig['pattern'][:80], sig['count']))
        return None

    def credit(self, kind: str, since: float | None = None) -> dict[str, Any]:
        """The `explains` record of the errors of that kind ('all': every error; 'own': those of
        statuses whose onset, and of signatures first seen, is at or after since)."""
        signatures = self.signatures if kind == 'all' else self.signatures_of(kind, since)
        share = rate = 0.0
        statuses: list[str] = []
        for status in self.statuses:
            onset = status.get('onset')
            if kind == 'own' and (since is None or onset is None or onset < since):
                continue
            for part_kind, fraction, sig in self.parts(status):
                if kind == 'all' or (part_kind == kind and (sig is None or sig in signatures)):
                    share += fraction * status['share_of_errors']
                    rate += fraction * (status.get('error_rate') or 0.0)
                    if status['status'] not in statuses:
                        statuses.append(status['status'])
        if not self.available:
            statuses = sorted({code for sig in signatures for code in sig['statuses']})
        return explains_record(min(1.0, share) if self.available else None,
                               rate if self.available else None, statuses, signatures)

    def on_endpoint(self, endpoint: str, group: dict[str, Any]) -> dict[str, Any]:
        """What disabling one endpoint removes: its errors, from the error rate by endpoint."""
        signatures = [sig for sig in self.signatures if sig['endpoints']
                      and max(sig['endpoints'], key=sig['endpoints'].get) == endpoint]
        statuses = sorted({code for sig in signatures for code in sig['statuses']})
        return explains_record(group.get('share_of_errors'), group.get('error_rate'), statuses,
                               signatures)


def explains_record(share: float | None, error_rate: float | None, statuses: list[str], signatures: list[dict[str, Any]]) -> dict[str, Any]:
    return {'share': None if share is None else round(share, 3),
            'error_rate': None if error_rate is None else round(error_rate, 3),
            'statuses': statuses,
            'signatures': [{'pattern': sig['pattern'], 'count': sig['count']}
                           for sig in signatures]}


def new_cause(kind: str, confidence: float, evidence: list[str], action: str, params: dict[str, Any] | None = None,
              description: str | None = None, needs: Iterable[str] = (), infrastructure: bool = False,
              database: bool = False) -> dict[str, Any]:
    """`infrastructure` and `database`: the cause points at the cluster or at a database, the
    teams the runbook escalates to."""
    return {'cause': kind, 'confidence': round(max(0.0, min(1.0, confidence)), 2),
            'evidence': evidence, 'runbook_step': RUNBOOK_STEPS[kind],
            'action': {'name': action, 'params': params or {}, 'description': description or action},
            'needs': list(needs), 'infrastructure': infrastructure, 'database': database}


def _quote(messages: list[tuple[str, int]], limit: int = 2) -> list[str]:
    return ['log: %dx "%s"' % (count, text[:160]) for text, count in messages[:limit]]


def rule_service_down(ev: Evidence, opts: dict[str, Any], change: tuple[dict[str, Any], float | None] | None) -> list[dict[str, Any]]:
    """The "Service Completely Down" causes, and Pod Crash Loop's (kind crash_loop: containers that
    keep crashing while the service still answers): [] when the service is up and nothing crashes
    (on Kubernetes, up and no pod problem); `change` is the deploy or configuration change before
    the onset, if any."""
    down = ev.service_down or (ev.errors.get('verdict') == 'no_traffic'
                               and ev.has(ev.health) and not ev.health.get('all_ok', True))
    crashing = ev.symptom == 'crash_loop' and ev.measured.get('verdict') == 'crash_loop'
    kind = 'service_down' if down or not crashing else 'crash_loop'
    if opts.get('platform') == 'kubernetes':
        return _service_down_kubernetes(ev, change, down, kind)
    return [_service_down_compose(ev, opts, change, kind)] if down or crashing else []


def _down_evidence(ev: Evidence, kind: str) -> list[str]:
    if kind == 'crash_loop':
        return [ev.measured.get('message') or 'the containers keep crashing']
    failing = ev.health.get('failed_checks') or []
    return ['health checks failing: %s' % ', '.join(failing) if failing
            else 'no traffic reaches the service']


def _service_down_compose(ev: Evidence, opts: dict[str, Any], change: tuple[dict[str, Any], float | None] | None,
                          kind: str) -> dict[str, Any]:
    """A port held by another process, a compose file that fails, a configuration the running
    container differs from, a change before the crashes (rolled back), OOM kills, else a restart."""
    evidence = _down_evidence(ev, kind)
    host = ev.host if ev.has(ev.host) else {}
    restarts = max((ev.resources.get('restarts') or 0) if ev.has(ev.resources) else 0,
                   (host.get('crash') or {}).get('restarts_in_window') or 0)
    # The window's OOM kills are this crash loop's when its last exit was one (137): containers
    # that now exit 1 were OOM-killed before, by another story (a limit raised since, a recreate).
    last_exit = (host.get('crash') or {}).get('last_exit_code')
    oom = (ev.resources.get('oom_kills') or 0) if ev.has(ev.resources) and last_exit in (None, 137) else 0
    oom = oom or int(bool((host.get('oom') or {}).get('oom_killed')))
    if restarts and kind != 'crash_loop':
        evidence.append('crash loop: %d restarts' % restarts)
    port = ev.messages_matching(_PORT_CONFLICT)
    holders = [h for h in host.get('port_holders') or [] if not h.get('in_service')]
    config = ev.messages_matching(_CONFIG_ERROR)
    compose = host.get('config') or {}
    drift = [d['name'] for d in compose.get('env_drift') or []]
    if port or holders:
        evidence += _quote(port) + ['port %s held by pid %s (%s)' % (
            opts.get('port'), h.get('pid'), (h.get('command') or '?')[:80]) for h in holders]
        return new_cause(kind, 0.95, evidence, 'free_port',
                         {'port': opts.get('port'), 'holders': holders},
                         'free port %s held by another process, then restart'
                         % (opts.get('port') or 'of the service'), needs=() if holders else ('logs',))
    if compose.get('valid') is False:
        return new_cause(kind, 0.9, evidence + ['compose config: %s' % compose.get('error')],
                         'escalate', {}, 'fix the compose file (compose config fails)')
    # The containers that crash were made by a deploy of a new version: back to the one before.
    if change and _made_the_containers(ev, change[0]):
        return rollback_cause(ev, kind, 0.9 if config else 0.75, evidence + _quote(config) + [_change_words(ev, change)],
                              change[0])
    # The startup error in the logs says more than an OOM kill that may be an older story.
    if config or compose.get('hash_drift'):
        if compose.get('hash_drift'):
            evidence.append('the running container differs from the compose configuration%s'
                            % (': ' + ', '.join(drift) if drift else ''))
        return new_cause(kind, 0.9, evidence + _quote(config), 'recreate', {},
                         'fix the configuration, then force-recreate', needs=('logs',))
    if oom:
        return new_cause(kind, 0.85, evidence + ['OOM-killed %d times' % oom],
                         'resources', {'memory_factor': 2},
                         'raise the memory limit (OOM kills), then recreate', needs=('resources',))
    return new_cause(kind, 0.8, evidence, 'restart', {},
                     'restart the service once and watch its startup logs', needs=('health',))


def _made_the_containers(ev: Evidence, change: dict[str, Any]) -> bool:
    """Whether `change` is a deploy of a new image and the newest deploy of the service: no
    recreate since (the same image, other settings) made the containers that run now."""
    deploys = [c for c in ev.changes if c.get('kind') == 'deploy']
    newest = max(deploys, key=lambda c: c.get('time') or 0, default=None)
    return (change.get('kind') == 'deploy' and bool(change.get('image'))
            and change.get('image') != change.get('previous_image') and newest is change)


def change_text(change: dict[str, Any]) -> str:
    return '%s %s at %s' % (change['kind'], change.get('summary'), change.get('time_iso'))


def change_before_onset(ev: Evidence, opts: dict[str, Any], split: ErrorSplit) -> tuple[tuple[dict[str, Any], float | None] | None, list[str]]:
    """(change, gap) of the deploy or configuration change nearest before the onset, within
    max_deploy_gap (gap None: no onset is known, the newest change stands), or None; and the
    changes that came after the onset, ruled out as its cause. A change after the onset still
    stands when errors of the service's own (split by status) began after it: gap is theirs."""
    best: tuple[dict[str, Any], float | None] | None = None
    unknown: tuple[dict[str, Any], float | None] | None = None
    ruled_out: list[str] = []
    for change in ev.changes:
        if change.get('kind') not in ('deploy', 'config'):
            continue
        if change.get('kind') == 'deploy' and change.get('previous_image') == change.get('image') \
                and not change.get('settings'):
            continue  # recreated or restarted with the same image and settings: not a change
        if change.get('revision') == 1:
            continue  # a Deployment's first revision: nothing was there before it to return to
        gap = change.get('seconds_before_onset')
        if gap is None:
            if unknown is None or (change.get('time') or 0) > (unknown[0].get('time') or 0):
                unknown = (change, None)
            continue
        if gap < 0 and change.get('time') is not None:
            gap = min((onset - change['time'] for onset, _status in split.own_onsets()
                       if onset >= change['time']), default=gap)
        if gap < 0:
            ruled_out.append('%s came %.0f s after %s' % (change_text(change), -gap, ONSET_WORDS[ev.symptom]))
        elif gap <= opts['max_deploy_gap'] and (best is None or gap < best[1]):
            best = (change, gap)
    if best is None and ev.onset is None:
        best = unknown
    return best, ruled_out


def _brought_errors(split: ErrorSplit, deploy: dict[str, Any], replaced: float | None, change: tuple[dict[str, Any], float | None] | None) -> bool:
    """Whether the service's own errors rose after this deploy (the change before the onset: any of
    its errors began after it, or the split is not known)."""
    if change and (change[0].get('time'), change[0].get('image')) == (deploy.get('time'), deploy['image']):
        return not split.available or (split.credit('own', since=deploy.get('time'))['share'] or 0) > 0
    return bool(split.rise_between(deploy.get('time'), replaced))


def known_bad_images(ev: Evidence, split: ErrorSplit, change: tuple[dict[str, Any], float | None] | None) -> dict[str, str]:
    """{image: why} of the versions a rollback must not return to: the one the errors began after,
    any a rollback of this incident moved away from, and any deployed in the change window that a
    later deploy rolled back or that was followed by a rise of the service's own errors."""
    bad: dict[str, str] = {}
    # (A change of settings with the same image says nothing against the image.)
    if change and change[0].get('kind') == 'deploy' and change[0].get('image') \
            and change[0]['image'] != change[0].get('previous_image'):
        bad[change[0]['image']] = 'the errors began after it was deployed'
    for attempt in (ev.incident.get('mitigation') or {}).get('attempts') or []:
        if (isinstance(attempt, dict) and attempt.get('acted')
                and (attempt.get('action') or {}).get('name') == 'rollback'):
            before = attempt.get('before') or {}
            image = ', '.join(before['images']) if before.get('images') else before.get('image')
            if image:
                bad.setdefault(image, 'a rollback of this incident moved away from it')
    deploys = [c for c in ev.changes if c.get('kind') == 'deploy' and c.get('image')
               and c.get('previous_image') != c['image']]
    # A Deployment's revisions are in the order they rolled out; their times are not: an undo
    # renumbers an old ReplicaSet and keeps its creation time.
    in_revisions = bool(deploys) and all(c.get('revision') is not None for c in deploys)
    deploys.sort(key=lambda c: c['revision'] if in_revisions else c.get('time') or 0)
    # Walked from the newest: a deploy that reverses the one before it rolled it back, unless it
    # brought errors of the service's own (then it deployed a bad version again); the one it
    # rolled back was a bad deploy, not a rollback of the one before it.
    not_rollbacks = {i for i, deploy in enumerate(deploys)
                     if _brought_errors(split, deploy, deploys[i + 1].get('time') if i + 1 < len(deploys) else None,
                                        change)}
    for index in range(len(deploys) - 1, 0, -1):
        before, after = deploys[index - 1], deploys[index]
        if index not in not_rollbacks and after['image'] == before.get('previous_image') \
                and after.get('previous_image') == before['image']:
            bad.setdefault(before['image'], 'a later deploy rolled it back to %s' % short_image(after['image']))
            not_rollbacks.add(index - 1)
    for index, deploy in enumerate(deploys):
        replaced = deploys[index + 1].get('time') if index + 1 < len(deploys) else None
        why = split.rise_between(deploy.get('time'), replaced)
        if why:
            bad.setdefault(deploy['image'], why)
    return bad


def _rollback(ev: Evidence, change: dict[str, Any]) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """(params, description, needs) of undoing `change`: a configuration commit reverted, an image
    rolled back, on Kubernetes to a revision (the one recorded before any mitigation, else the one
    before the change)."""
    if change['kind'] == 'config':
        return ({'commit': change.get('commit')},
                'revert configuration commit %s' % (change.get('commit') or '')[:8], ())
    target = change.get('previous_image')
    params: dict[str, Any] = {'to_image': target, 'from_image': change.get('image')}
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


def rollback_cause(ev: Evidence, kind: str, confidence: float, evidence: list[str], change: dict[str, Any],
                   needs: Iterable[str] = ()) -> dict[str, Any]:
    """The cause whose action undoes `change`; a rollback to a version known bad is withheld: the
    cause escalates instead, its evidence saying why."""
    params, description, missing = _rollback(ev, change)
    target = params.get('to_image')
    if target in ev.known_bad:
        reason = 'no rollback: the version before it, %s, is known bad (%s)' % (
            short_image(target), ev.known_bad[target])
        return new_cause(kind, confidence, evidence + [reason], 'escalate',
                         {'reason': reason, 'known_bad': target}, reason, needs=needs)
    return new_cause(kind, confidence, evidence, 'rollback', params, description,
                     needs=tuple(needs) + missing)


def workload_name(ev: Evidence) -> str:
    status = ev.host if ev.has(ev.host) else {}
    return (status.get('deployment') or {}).get('name') or ev.incident.get('service') or 'the workload'


def _k8s_facts(status: dict[str, Any]) -> list[str]:
    """What k8s_status saw, one sentence each, with its figures."""
    facts: list[str] = []
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


def _missing_reference(message: str | None) -> str | None:
    """'ConfigMap x', 'key K of Secret ns/x' from a CreateContainerConfigError message."""
    match = _MISSING_REF.search(message or '')
    if not match:
        return None
    if match.group(1):
        kind = 'ConfigMap' if match.group(1).lower() == 'configmap' else 'Secret'
        return '%s %s' % (kind, match.group(2))
    return 'key %s of %s %s' % (match.group(3), match.group(4), match.group(5))


def _service_down_kubernetes(ev: Evidence, change: tuple[dict[str, Any], float | None] | None, down: bool,
                             kind: str) -> list[dict[str, Any]]:
    """The pods' state decides: an image that cannot be pulled or a stalled rollout of a new
    version is rolled back; a missing ConfigMap/Secret or nodes without room are escalated (no
    action of ours creates them); OOM kills raise the memory limit; a crash loop is rolled back
    when a change preceded it, else restarted once (killed by their liveness probe too); pods that
    run but are not ready are restarted, unless a dependency they wait for fails. A missing
    ConfigMap key that the ConfigMap's last applied configuration still holds is put back
    (k8s_status_info's config_refs)."""
    status = ev.host if ev.has(ev.host) else {}
    problems: dict[Any, dict[str, Any]] = {}
    for problem in status.get('problems') or []:
        problems.setdefault(problem.get('kind'), problem)
    if not (down or problems):
        return []
    name = workload_name(ev)
    evidence = (_down_evidence(ev, kind) if down or kind == 'crash_loop' else []) + _k8s_facts(status)
    if change:
        evidence.append(_change_words(ev, change))
    failing = failing_dependencies(ev)

    pull = problems.get('ImagePullBackOff') or problems.get('ErrImagePull')
    if pull:
        if failing:
            evidence.append('dependencies fail too (%s), but they do not keep an image from being '
                            'pulled' % ', '.join(failing))
        return [_image_rollback(ev, evidence, kind)]
    config = problems.get('CreateContainerConfigError')
    if config:
        missing = _missing_reference(config.get('message')) or 'a ConfigMap or Secret'
        restorable = [ref for ref in status.get('config_refs') or [] if ref.get('restorable') and ref.get('key')]
        if restorable:
            ref = restorable[0]
            return [new_cause(kind, 0.9, evidence + ['key %s of ConfigMap %s is missing; its last applied '
                                                     'configuration holds it' % (ref['key'], ref['name'])],
                              'restore_config_key', {'configmap': ref['name'], 'key': ref['key']},
                              'restore key %s of ConfigMap %s as last applied; the waiting pods start'
                              % (ref['key'], ref['name']))] + _also_roll_back(ev, change, 'the pods stopped starting after it')
        return [new_cause(kind, 0.9, evidence, 'escalate', {'missing': missing},
                          'escalate: %s the pods need is missing (CreateContainerConfigError); create it '
                          'or roll back the change that needs it' % missing)]
    unschedulable = problems.get('Unschedulable')
    if unschedulable:
        short = sorted(set(_INSUFFICIENT.findall(unschedulable.get('message') or '')))
        return [new_cause(kind, 0.9, evidence, 'escalate', {'insufficient': short},
                          'escalate to infrastructure: pods cannot be scheduled (%s)' % (
            'insufficient %s on the nodes' % ', '.join(short) if short
            else (unschedulable.get('message') or 'no node fits')[:120]),
            infrastructure=bool(short))]
    stalled = problems.get('ProgressDeadlineExceeded')
    if stalled and change:
        # A ReplicaFailure (a ResourceQuota, an admission webhook) is why the rollout stalled.
        evidence.append('the rollout of the new version stalled%s: it is at fault' % (
            ' as its pods are refused (ReplicaFailure)' if problems.get('ReplicaFailure') else ''))
        return [_change_rollback(ev, change, 0.85, evidence, kind)]
    oom = (problems.get('OOMKilled') or (status.get('oom') or {}).get('oom_killed')
           or (ev.has(ev.resources) and ev.resources.get('oom_kills')))
    if oom:
        count = (status.get('oom') or {}).get('count') or ev.resources.get('oom_kills') or 1
        return [new_cause(kind, 0.85, evidence + ['OOM-killed %d times' % count],
                          'resources', {'memory_factor': 2},
                          'raise the memory limit of %s (OOM kills); the pods roll' % name)
                ] + _also_roll_back(ev, change, 'the OOM kills began after it')
    port = ev.messages_matching(_PORT_CONFLICT)
    if port:
        if change:
            return [_change_rollback(ev, change, 0.8, evidence + _quote(port), kind)]
        return [new_cause(kind, 0.8, evidence + _quote(port), 'escalate', {},
                          'escalate: a port is taken inside the pod (another container, or '
                          'hostNetwork/hostPort): fix the pod spec')]
    if problems.get('LivenessProbe'):
        # The kubelet kills a container its liveness probe finds hung: a new pod may not hang.
        if change:
            return [_change_rollback(ev, change, 0.8, evidence + ['the liveness probe kills the containers'], kind)]
        return [new_cause(kind, 0.75, evidence, 'restart', {},
                          'rollout restart %s once: its liveness probe kills the containers; if the new pods '
                          'fail it too, escalate' % name, needs=('health',))]
    startup = (['previous container log: "%s"' % line[:160] for line in
                [line for line in status.get('logs') or [] if _STARTUP_ERROR.search(line)][:2]]
               or _quote(ev.messages_matching(_STARTUP_ERROR)))
    if problems.get('CrashLoopBackOff') or (startup and not status):
        if change:
            return [_change_rollback(ev, change, 0.9 if startup else 0.75, evidence + startup, kind)]
        return [new_cause(kind, 0.75 if startup else 0.7, evidence + startup, 'restart',
                          {}, 'rollout restart %s and watch its startup logs' % name, needs=('health',))]
    running = [p['name'] for p in status.get('pods') or [] if p.get('phase') == 'Running']
    if (problems.get('NoReadyEndpoints') or problems.get('NotReady')) and running and failing:
        evidence.append('the pods run but are not ready while %s fails: a restart would not '
                        'make them ready' % ', '.join(failing))
        return [new_cause(kind, 0.4, evidence, 'escalate', {},
                          'escalate: pods wait for %s' % ', '.join(failing),
                          database=bool(_DATABASE.search(' '.join(failing))))]
    return [new_cause(kind, 0.8, evidence, 'restart', {},
                      'rollout restart %s and watch its startup logs' % name, needs=('health',))
            ] + _also_roll_back(ev, change, 'the service went down after it')


def _change_rollback(ev: Evidence, change: tuple[dict[str, Any], float | None], confidence: float, evidence: list[str],
                     kind: str) -> dict[str, Any]:
    return rollback_cause(ev, kind, confidence, evidence, change[0])


def _change_words(ev: Evidence, change: tuple[dict[str, Any], float | None]) -> str:
    what = 'the crashes' if ev.symptom == 'crash_loop' else 'the errors'
    return '%s %s' % (change_text(change[0]), 'before %s (onset unknown)' % what if change[1] is None
                      else '%.0f s before %s' % (change[1], what))


def _also_roll_back(ev: Evidence, change: tuple[dict[str, Any], float | None] | None, why: str) -> list[dict[str, Any]]:
    """The change before the onset as the next cause to try, when the first is not a rollback."""
    if not change:
        return []
    return [rollback_cause(ev, 'deploy', 0.6, ['%s: %s' % (why, change_text(change[0]))], change[0],
                           needs=('recent changes',))]


def _image_rollback(ev: Evidence, evidence: list[str], kind: str) -> dict[str, Any]:
    """Pods that cannot pull their image: back to the revision recorded before any mitigation,
    else the one before the newest deploy, else kubectl's previous revision."""
    deploys = sorted((c for c in ev.changes if c.get('kind') == 'deploy'),
                     key=lambda c: c.get('time') or 0)
    evidence = evidence + ['the image of the new version cannot be pulled: the pods of the '
                           'previous revision can run']
    if deploys and not _rollback(ev, deploys[-1])[2]:
        return rollback_cause(ev, kind, 0.95, evidence, deploys[-1])
    revision = ev.rollback_revision
    return new_cause(kind, 0.95, evidence, 'rollback', {'to_revision': revision},
                     'roll back to revision %s' % revision if revision
                     else 'roll back to the previous revision')


def rule_deploy(ev: Evidence, opts: dict[str, Any], found: tuple[dict[str, Any], float | None] | None, split: ErrorSplit) -> dict[str, Any] | None:
    if ev.errors.get('verdict') not in ('warning', 'critical') or found is None:
        return None
    change, gap = found
    if gap is None:
        return None
    what = change_text(change)
    evidence = ['errors began %.0f s after the %s' % (gap, what)]
    if (change.get('seconds_before_onset') or 0) < 0:
        evidence.append('the first errors began %.0f s before it: not its own'
                        % -change['seconds_before_onset'])
    # A bad version fails as soon as it takes traffic: a spike shows within about two rate
    # windows of the deploy; a slow climb (a leak) may come later.
    near = gap <= 2 * (ev.errors.get('window_seconds') or 300) + 30
    spike = ev.errors.get('shape') == 'spike'
    if spike and near:
        confidence = 0.9
        evidence.append('the error rate rose as a spike right after it, as a bad version does')
        own = split.signatures_of('own', change.get('time'))
        evidence += _quote([(sig['pattern'], sig['count']) for sig in own], 1)
        if split.signatures and not own:
            evidence.append('no error signature of its own in the logs began after it')
    elif spike:
        confidence = 0.3
        evidence.append('but the spike came long after it: the new version had been healthy')
    else:
        confidence = 0.55 + (0.1 if near else 0.0)
    direct = failing_dependencies(ev)
    if direct:
        confidence -= 0.3
        evidence.append('but dependencies fail on their own: %s' % ', '.join(direct))
    cause = rollback_cause(ev, 'deploy', confidence, evidence, change, needs=('recent changes',))
    if 'previous image' in cause['needs']:
        cause['evidence'].append('the image before it is not known: give the rollback target')
    return cause


def rule_saturation(ev: Evidence, opts: dict[str, Any]) -> dict[str, Any] | None:
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
        return new_cause('saturation', confidence, evidence, 'resources', {'memory_factor': 2},
                         'raise the memory limit (%s)' % ('OOM kills' if oom else 'memory %.0f%%'
                                                          % (memory or 0)), needs=('resources',))
    if opts.get('platform') == 'kubernetes':
        return _scale_out(ev, opts, confidence, evidence, cpu)
    return new_cause('saturation', confidence, evidence, 'resources', {'cpu_factor': 2},
                     'raise the CPU limit (cpu %.0f%% of its limit)' % (cpu or 0),
                     needs=('resources',))


def _scale_out(ev: Evidence, opts: dict[str, Any], confidence: float, evidence: list[str], cpu: float | None) -> dict[str, Any]:
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
        return new_cause('saturation', confidence - 0.1, evidence + [full], 'resources',
                         {'cpu_factor': 2}, 'raise the CPU limit of %s (cpu %.0f%% of its limit): %s'
                         % (name, cpu or 0, full), needs=('resources',))
    step = opts['scale_step']
    if current is None:
        return new_cause('saturation', confidence, evidence, 'scale', {'replicas': '+%d' % step},
                         'scale out by %d replicas' % step, needs=('resources',))
    target = min(current + step, ceiling)
    return new_cause('saturation', confidence, evidence, 'scale', {'replicas': target},
                     'scale %s from %d to %d replicas' % (name, current, target),
                     needs=('resources',))


def rule_endpoint(ev: Evidence, opts: dict[str, Any]) -> dict[str, Any] | None:
    if not ev.errors.get('concentrated') or not ev.errors.get('top_group'):
        return None
    endpoint = ev.errors['top_group']
    top: dict[str, Any] = next((g for g in ev.errors.get('groups') or [] if g.get('value') == endpoint), {})
    evidence = ['%s holds %.0f%% of the errors (%.1f%% of its requests fail)' % (
        endpoint, 100 * top.get('share_of_errors', 0), top.get('error_percent') or 0)]
    confidence = 0.65
    related = [(t, c) for t, c in ev.messages() if endpoint in t]
    if related:
        evidence += _quote(related)
    if failing_dependencies(ev):
        confidence -= 0.2
    flag = feature_flag_name(endpoint, opts['feature_flag_pattern'])
    return new_cause('endpoint', confidence, evidence, 'feature_flag',
                     {'endpoint': endpoint, 'env': {flag: 'false'}},
                     'disable %s' % flag, needs=('error rate',))


def failing_dependencies(ev: Evidence) -> list[str]:
    """Dependencies seen failing directly: /ready entries down or their own health checks."""
    if not ev.has(ev.dependencies):
        return []
    return sorted(set(ev.dependencies.get('failing') or []))


def rule_dependency(ev: Evidence, opts: dict[str, Any], database_cause: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A dependency that fails; the database is not one when the database's own evidence found
    its cause (rule_database)."""
    failing = failing_dependencies(ev)
    upstream = ev.messages_matching(_UPSTREAM_WORDS)
    if database_cause is not None:
        failing = [name for name in failing if not _DATABASE.search(name)]
        upstream = [(text, count) for text, count in upstream if not _DATABASE.search(text)]
    suspect = ev.traces.get('dependency_suspect') if ev.has(ev.traces) else None
    pools = sorted({pool for check in ev.dependencies.get('checks') or []
                    for pool in check.get('exhausted_pools') or []}) if ev.has(ev.dependencies) else []
    if not (failing or suspect or pools or upstream):
        return None
    names = failing or ([suspect] if suspect else [])
    if not names:
        named = [n for n in ev.dependencies.get('names') or [] for t, c in upstream if n in t]
        names = sorted(set(named))
    evidence: list[str] = []
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
        return new_cause('dependency', confidence + 0.2, evidence, 'restart', {'reason': 'pools'},
                         'restart to reset the connection pools', needs=('dependencies',),
                         database=database)
    if not names:
        return new_cause('dependency', confidence - 0.2, evidence, 'escalate', {},
                         'escalate: upstream errors without a named dependency')
    params = {'dependency': names[0], 'env': dict(opts['circuit_breaker_env'])}
    return new_cause('dependency', confidence, evidence, 'circuit_breaker', params,
                     'circuit breaker on %s' % names[0], needs=('dependencies',), database=database)


def rule_database(ev: Evidence, opts: dict[str, Any]) -> dict[str, Any] | None:
    """Database Issues, from postgres_activity_info's findings: the service's sessions blocked
    behind another application's transaction left idle (or query run long) end that session;
    connections all taken by the service's own pool restart the service; anything else there is
    the database owner's to handle."""
    db = ev.database if ev.has(ev.database) else {}
    findings = db.get('findings') or []
    if not findings:
        return None
    own = db.get('application') or ev.incident.get('service')
    evidence = ['database: %s' % f['summary'] for f in findings]
    evidence += _quote(ev.messages_matching(_DATABASE))
    theirs = [b for b in db.get('blockers') or [] if b.get('application_name') != own and b.get('pid')]
    blocked = [b for b in db.get('blocked') or [] if b.get('application_name') == own]
    idle_after = opts['database_idle_after']
    stuck = [b for b in theirs if b.get('state') in ('idle in transaction', 'idle in transaction (aborted)')
             and (b.get('state_age_s') or 0) >= idle_after]
    running = [b for b in theirs if b.get('state') == 'active' and (b.get('query_age_s') or 0) >= idle_after]
    if blocked and (stuck or running):
        action, ends = ('terminate_sessions', stuck) if stuck else ('cancel_queries', running)
        apps = sorted({b.get('application_name') or '' for b in ends})
        params: dict[str, Any] = {'pids': [b['pid'] for b in ends], 'older_than': '%ds' % idle_after}
        if len(apps) == 1 and apps[0]:
            params['application_name'] = apps[0]
        one = len(ends) == 1
        what = ('end the session%s idle in transaction' % ('' if one else 's') if stuck
                else 'cancel the quer%s' % ('y' if one else 'ies'))
        evidence.append('%d session%s of %s wait on %s' % (
            len(blocked), '' if len(blocked) == 1 else 's', own,
            ', '.join('pid %s of %s' % (b['pid'], b.get('application_name') or '?') for b in ends)))
        return new_cause('database', 0.9, evidence, action, params, '%s of %s (pid %s) blocking %s' % (
            what, ', '.join(apps) or 'an unnamed application', ', '.join(str(b['pid']) for b in ends), own),
            needs=('database',))
    connections = db.get('connections') or {}
    kinds = {f['kind'] for f in findings}
    by_app: dict[str, int] = connections.get('by_application') or {}
    if 'connections_exhausted' in kinds and by_app and max(by_app.items(), key=lambda kv: kv[1])[0] == own:
        return new_cause('database', 0.75, evidence, 'restart', {'reason': 'pools'},
                         'restart %s to reset its connection pool (%d of the database\'s connections are its own)'
                         % (own, by_app[own]), needs=('database',))
    return new_cause('database', 0.6, evidence, 'escalate', {},
                     'escalate to the database owner: %s' % findings[0]['summary'], database=True)


def credit_cause(cause: dict[str, Any], ev: Evidence, split: ErrorSplit, change: tuple[dict[str, Any], float | None] | None) -> None:
    """Sets what the cause explains (see ErrorSplit) and, with the split, says it."""
    kind = cause['cause']
    if kind == 'deploy':
        cause['explains'] = split.credit('own', change[0].get('time') if change else None)
    elif kind in ('dependency', 'saturation', 'database'):
        cause['explains'] = split.credit(kind)
    elif kind == 'endpoint':
        endpoint = cause['action']['params']['endpoint']
        cause['explains'] = split.on_endpoint(endpoint, next(
            (g for g in ev.errors.get('groups') or [] if g.get('value') == endpoint), {}))
    else:  # the service down: every error
        cause['explains'] = split.credit('all')
    explains = cause['explains']
    if split.available and kind in ('deploy', 'dependency', 'saturation', 'database'):
        cause['evidence'].append('explains %.0f%% of the errors (%.2f/s: %s)' % (
            100 * explains['share'], explains['error_rate'], ', '.join(explains['statuses']))
            if explains['share'] else 'explains none of the errors')


def rank(causes: list[dict[str, Any]], min_confidence: float, by_share: bool) -> list[dict[str, Any]]:
    """Causes by confidence, then the runbook's order; by_share: those that hold (confidence at
    least min_confidence) first, by the share of the errors they explain, the shares within
    SHARE_TIE of the largest of their tier by confidence."""
    ranked = sorted(causes, key=lambda c: (-c['confidence'], RUNBOOK_ORDER.index(c['cause'])))
    if not by_share:
        return ranked
    holding = [c for c in ranked if c['confidence'] >= min_confidence]
    tiers: list[list[dict[str, Any]]] = []
    for cause in sorted(holding, key=lambda c: -_share(c)):  # stable: by confidence within
        if tiers and round(_share(tiers[-1][0]) - _share(cause), 3) <= SHARE_TIE:
            tiers[-1].append(cause)
        else:
            tiers.append([cause])
    by_confidence = {id(c): index for index, c in enumerate(ranked)}
    return [c for tier in tiers for c in sorted(tier, key=lambda c: by_confidence[id(c)])
            ] + ranked[len(holding):]


def _share(cause: dict[str, Any]) -> float:
    """The share of the errors a cause explains; unknown counts as none."""
    return cause['explains']['share'] or 0.0


def options_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Rule options from validated module parameters; ValueError names a bad one."""
    if '{name}' not in params['feature_flag_pattern']:
        raise ValueError('feature_flag_pattern %r must contain {name}'
                         % params['feature_flag_pattern'])
    durations = {}
    for name in ('max_deploy_gap', 'database_idle_after'):
        try:
            durations[name] = parse_duration(params[name])
        except ValueError as err:
            raise ValueError('%s: %s' % (name, err))
    for name in ('scale_step', 'max_replicas'):
        if params[name] < 1:
            raise ValueError('%s must be at least 1, not %d' % (name, params[name]))
    return dict(platform=params['platform'] or params['incident'].get('platform'),
                port=params['port'], cpu_percent=params['cpu_percent'],
                memory_percent=params['memory_percent'], max_deploy_gap=durations['max_deploy_gap'],
                database_idle_after=durations['database_idle_after'],
                min_confidence=params['min_confidence'],
                feature_flag_pattern=params['feature_flag_pattern'],
                circuit_breaker_env={k: str(v) for k, v in params['circuit_breaker_env'].items()},
                scale_step=params['scale_step'], max_replicas=params['max_replicas'])


def diagnose(incident: dict[str, Any] | None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Ranked causes, one recommended action and the plan of actions to try in turn (the
    recommended one first), what was ruled out and what could not be seen."""
    opts = rule_options(incident, options)
    ev = Evidence(incident)
    database = rule_database(ev, opts)
    saturation, dependency = rule_saturation(ev, opts), rule_dependency(ev, opts, database)
    split = ErrorSplit(ev, dependency, saturation, database)
    change, ruled_out = change_before_onset(ev, opts, split)
    ev.known_bad = known_bad_images(ev, split, change)
    found = [c for c in rule_service_down(ev, opts, change) + [
        rule_deploy(ev, opts, change, split), saturation, rule_endpoint(ev, opts), database, dependency] if c]
    for cause in found:
        credit_cause(cause, ev, split, change)
    # A crash loop is judged on the containers, not on the errors: its causes rank by confidence.
    by_share = split.available and ev.symptom != 'crash_loop'
    ranking = {
        'by': 'explained_errors' if by_share else 'confidence',
        'note': ('causes that hold (confidence at least %s) ranked by the share of the errors '
                 'they explain (error rate by status, log signatures), shares within %d points '
                 'by confidence' % (opts['min_confidence'], 100 * SHARE_TIE)
                 if by_share else 'a crash loop: causes ranked by confidence' if split.available else
                 'the error rate by status was not available (an older error_rate result, or '
                 'its query failed): causes ranked by confidence'),
    }
    return decide(ev, opts, rank(found, opts['min_confidence'], by_share), ruled_out, ranking)


def rule_options(incident: Mapping[str, Any] | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    opts.setdefault('platform', (incident or {}).get('platform'))
    return opts


def decide(ev: Evidence, opts: dict[str, Any], causes: list[dict[str, Any]], ruled_out: list[str],
           ranking: dict[str, str]) -> dict[str, Any]:
    """The diagnosis from the ranked causes: the plan (the actions of the causes that hold, in
    turn, without one withheld or disruptive on missing evidence), the recommended action (the
    plan's first, else an escalation saying why), what was refused and what is missing."""
    plan: list[dict[str, Any]] = []
    refused: list[str] = []
    for cause in causes:
        if cause['confidence'] < opts['min_confidence']:
            break
        if cause['action']['params'].get('known_bad'):
            refused.append(cause['action']['description'])
            continue  # the rollback is withheld; the next cause may still be acted on
        if cause['action']['name'] == 'escalate':
            break
        if any(c['action']['name'] == cause['action']['name']
               and c['action']['params'] == cause['action']['params'] for c in plan):
            continue  # the same action for a second cause: tried once
        blocked = [n for n in cause['needs'] if n == 'previous image'
                   or any(m.startswith(n + ':') for m in ev.missing)]
        partial = ev.measured.get('partial')
        if is_disruptive(cause['action']['name']) and (blocked or partial):
            refused.append('%s not recommended: %s' % (
                cause['action']['description'],
                'missing ' + ', '.join(blocked) if blocked else '%s is partial' % SYMPTOMS[ev.symptom]))
            continue
        plan.append(cause)
    recommended = plan[0] if plan else None
    if recommended is None:
        verdict = ev.measured.get('verdict')
        first = causes[0] if causes else None
        reason = (first['action']['description'] if first and first['action']['name'] == 'escalate'
                  else '; '.join(refused) if refused else 'no cause stands out in the evidence'
                  if causes or verdict in BAD_VERDICTS[ev.symptom] else
                  '%s is %s' % (SYMPTOMS[ev.symptom], verdict or 'unknown'))
        action = {'name': 'escalate', 'params': {'reason': reason},
                  'description': 'escalate with the evidence'}
        # Who to escalate to: what the causes that stand suspect.
        standing = [c for c in causes if c['confidence'] >= opts['min_confidence']]
        recommended = {'cause': 'escalate', 'confidence': 0.0, 'evidence': [reason],
                       'runbook_step': RUNBOOK_STEPS['escalate'], 'action': action, 'needs': [],
                       'infrastructure': any(c['infrastructure'] for c in standing),
                       'database': any(c['database'] for c in standing),
                       'explains': explains_record(None, None, [], [])}
    # Each action with its disruption class and, on compose and on Kubernetes, the module and
    # parameters that do it: the role mitigate dispatches them as they are.
    for cause in causes + [recommended]:
        describe(cause['action'], ev.incident)
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
        'partial_reasons': ev.partial_reasons,
        'ranking': ranking,
    }

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The High Response Time runbook's decision: the rules of analysis/diagnosis.py over an incident
whose symptom is the response time (triage.latency, latency_info's result with its onset).

The causes, by confidence (no error split: a slow request is not an error):
- a deploy or configuration change shortly before the slowdown began: roll it back (a version
  known bad is never returned to);
- saturation (CPU throttled, memory near its limit, OOM kills): the limits, or replicas on
  Kubernetes, as for errors;
- a slow dependency, from the traces' slow calls to it: a circuit breaker when its calls also time
  out or fail (a breaker trips on failures, not on slowness), else its owner is escalated to;
- the service's database (blocked sessions, connections all taken), as for errors;
- the service down, as for errors;
- one endpoint slow while the others are not, with no change to blame: escalated with it named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import (
    ErrorSplit,
    Evidence,
    change_before_onset,
    change_text,
    decide,
    explains_record,
    failing_dependencies,
    known_bad_images,
    new_cause,
    rank,
    rollback_cause,
    rule_database,
    rule_options,
    rule_saturation,
    rule_service_down,
)


def _quantile(latency: Mapping[str, Any]) -> str:
    return latency.get('verdict_quantile') or 'p99'


def slow_groups(latency: Mapping[str, Any]) -> list[str]:
    """'/predict: p99 612 ms is 5.1x its baseline 120 ms' for each slow endpoint, worst first."""
    return ['%s: %s' % (g.get('value'), '; '.join(g.get('reasons') or []))
            for g in latency.get('groups') or [] if g.get('verdict') == 'slow']


def rule_slow_deploy(ev: Evidence, found: tuple[dict[str, Any], float | None] | None,
                     slow_dependency: dict[str, Any] | None) -> dict[str, Any] | None:
    """A change shortly before the slowdown began: a new version is slow as soon as it takes
    traffic, so the slowdown shows within about two rate windows of it."""
    latency = ev.latency
    if latency.get('verdict') != 'slow' or found is None:
        return None
    change, gap = found
    if gap is None:
        return None
    evidence = ['the %s rose %.0f s after the %s' % (_quantile(latency), gap, change_text(change))]
    evidence += (latency.get('overall') or {}).get('reasons') or []
    evidence += slow_groups(latency)[:3]
    near = gap <= 2 * (latency.get('window_seconds') or 300) + 30
    confidence = 0.85 if near else 0.5
    if not near:
        evidence.append('but the slowdown came long after it: the new version had been fast')
    if slow_dependency is not None:
        confidence -= 0.3
        evidence.append('but a dependency is slow on its own: %s' % slow_dependency['action']['params'].get('dependency'))
    cause = rollback_cause(ev, 'deploy', confidence, evidence, change, needs=('recent changes',))
    if 'previous image' in cause['needs']:
        cause['evidence'].append('the image before it is not known: give the rollback target')
    return cause


def rule_slow_dependency(ev: Evidence, opts: dict[str, Any]) -> dict[str, Any] | None:
    """The callee of most slow calls in the traces (trace_search_info's slow_calls)."""
    calls = [c for c in (ev.traces.get('slow_calls') or []) if c.get('peer')] if ev.has(ev.traces) else []
    if not calls:
        return None
    peer = calls[0]['peer']
    mine = [c for c in calls if c['peer'] == peer]
    count = sum(c.get('count') or 0 for c in mine)
    failures = sum((c.get('timeouts') or 0) + (c.get('errors') or 0) for c in mine)
    evidence = ['traces: %d slow call%s to %s (p95 %s ms, at most %s ms)' % (
        count, '' if count == 1 else 's', peer, max(c.get('p95_ms') or 0 for c in mine),
        max(c.get('max_ms') or 0 for c in mine))]
    failing = peer in failing_dependencies(ev)
    if failing:
        evidence.append('%s fails its health check' % peer)
    if failures or failing:
        if failures:
            evidence.append('%d of those calls timed out or failed' % failures)
        return new_cause('dependency', 0.75, evidence, 'circuit_breaker',
                         {'dependency': peer, 'env': dict(opts['circuit_breaker_env'])},
                         'circuit breaker on %s' % peer, needs=('dependencies',))
    reason = 'escalate to the owner of %s: its calls are slow, and a circuit breaker trips on failures, not on slowness' % peer
    return new_cause('dependency', 0.6, evidence, 'escalate', {'dependency': peer, 'reason': reason}, reason)


def rule_slow_endpoint(ev: Evidence) -> dict[str, Any] | None:
    """One endpoint slow while the service as a whole is not."""
    latency = ev.latency
    slow = latency.get('slow_groups') or []
    if len(slow) != 1 or (latency.get('overall') or {}).get('verdict') == 'slow':
        return None
    reason = 'escalate: only %s is slow, with no change to blame' % slow[0]
    return new_cause('endpoint', 0.5, slow_groups(latency), 'escalate', {'endpoint': slow[0], 'reason': reason}, reason)


def diagnose_latency(incident: dict[str, Any] | None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """diagnosis.diagnose for the response time: the same result, causes ranked by confidence."""
    opts = rule_options(incident, options)
    ev = Evidence(incident)
    split = ErrorSplit(ev, None, None)
    change, ruled_out = change_before_onset(ev, opts, split)
    ev.known_bad = known_bad_images(ev, split, change)
    if change and change[0].get('kind') == 'deploy' and change[0].get('image'):
        ev.known_bad[change[0]['image']] = 'the response time rose after it was deployed'
    dependency = rule_slow_dependency(ev, opts)
    found = [c for c in rule_service_down(ev, opts, change) + [
        rule_slow_deploy(ev, change, dependency), rule_saturation(ev, opts), rule_database(ev, opts), dependency,
        rule_slow_endpoint(ev)] if c]
    for cause in found:
        cause['explains'] = explains_record(None, None, [], [])
    return decide(ev, opts, rank(found, opts['min_confidence'], False), ruled_out, {
        'by': 'confidence', 'note': 'a slow request is not an error: causes ranked by confidence'})

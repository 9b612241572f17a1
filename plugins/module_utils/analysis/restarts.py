# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure analysis of a crash loop's watch: has it stopped? No I/O here, so every rule is unit-tested.

A watch reads the service's replicas (a Deployment's pods, a compose service's containers) every
interval into a Sample. Restarts are counted per replica, against the same replica's own count when
first seen: a replica that a rollout or a recreate brings has a fresh count, and one that goes away
takes none of its restarts back, so the sum over a changing set of replicas is never compared.
The verdict is error_rate's watch_outcome() over one healthy predicate per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import trend, watch_outcome
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting as fmt
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso

OOM = 'OOMKilled'
# The watch's verdicts: watch_outcome()'s three, and this one while the deadline is not reached.
WATCHING = 'watching'


class Sample(NamedTuple):
    """One read of the replicas at `time` (epoch seconds).

    restarts: {replica: its restart count} over the current replicas (a pod's is the sum over its
    containers); waiting: the reasons containers wait for (CrashLoopBackOff, ImagePullBackOff...,
    the engine's `restarting`); oom_killed: an OOM kill since the watch started; last_exit: the
    newest termination in words (exit_text()). A read that failed is measured=False with its error.
    """
    time: float
    ready: int = 0
    desired: int = 0
    restarts: Mapping[str, int] = {}
    waiting: tuple[str, ...] = ()
    oom_killed: bool = False
    last_exit: str | None = None
    measured: bool = True
    error: str | None = None

    @property
    def restart_total(self) -> int:
        return sum(self.restarts.values())


def failed_read(time: float, error: str) -> Sample:
    return Sample(time, measured=False, error=error)


def exit_text(reason: str | None, code: Any) -> str | None:
    """A termination in words: 'OOMKilled', 'exit code 1', or the runtime's reason when it says more
    than 'Error' (Completed, ContainerCannotRun); None without a termination."""
    if reason == OOM:
        return OOM
    if reason and reason != 'Error':
        return reason
    return None if code is None else 'exit code %s' % code


def restarts_during(samples: Sequence[Sample], start: Mapping[str, int] | None = None) -> list[int | None]:
    """The restarts since the start at each sample, None for one not measured.

    start: {replica: restart count} at the start, else the first measured sample's. A replica
    missing from the start was created during the watch: all its restarts count. A count lower than
    the last one seen of the same replica was reset (the engine resets a container's RestartCount
    when it is started by hand): what it counted since counts."""
    last: dict[str, int] = dict(start) if start is not None else {}
    counted: list[int | None] = []
    total, started = 0, start is not None
    for sample in samples:
        if not sample.measured:
            counted.append(None)
            continue
        for replica, count in sample.restarts.items():
            previous = last.get(replica, count if not started else 0)
            total += count - previous if count >= previous else count
            last[replica] = count
        started = True
        counted.append(total)
    return counted


def sample_health(sample: Sample, rise: bool) -> bool | None:
    """Healthy: every desired replica ready, none waiting, no restart since the last read (rise);
    None for a read that failed."""
    if not sample.measured:
        return None
    return 0 < sample.desired == sample.ready and not sample.waiting and not rise


def watch_verdict(samples: Sequence[Sample], stable_for: float, deadline_reached: bool,
                  start: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The watch's outcome from its samples, oldest first.

    verdict: recovered when the last unbroken stretch of healthy samples spans stable_for;
    watching while the deadline is not reached; then not_measured when the reads of the last
    stable_for failed and none of those that answered saw the crash loop (or none answered), else
    not_recovered. With the figures of the last measured sample (ready, desired, waiting,
    last_exit), the restarts and OOM kills during the watch, the trend of the replicas not ready,
    and the outcome in one sentence (message)."""
    counted = restarts_during(samples, start)
    checks: list[tuple[float, bool | None]] = []
    previous = 0
    for sample, total in zip(samples, counted):
        checks.append((sample.time, sample_health(sample, total is not None and total > previous)))
        previous = previous if total is None else total
    outcome = watch_outcome(checks, stable_for)
    verdict = outcome['verdict'] if outcome['recovered'] or deadline_reached else WATCHING
    measured = [s for s in samples if s.measured]
    last = measured[-1] if measured else None
    result = dict(
        outcome, verdict=verdict, restarts_during=previous,
        ready=last.ready if last else None, desired=last.desired if last else None,
        waiting=list(last.waiting) if last else [], last_exit=last.last_exit if last else None,
        oom_killed=any(s.oom_killed for s in measured), trend=trend([s.desired - s.ready for s in measured]),
        failed_samples=len(samples) - len(measured))
    result['message'] = describe(result, samples, stable_for)
    return result


def _restarts(count: int) -> str:
    return 'no restart' if not count else '%d restart%s' % (count, '' if count == 1 else 's')


def _state(outcome: Mapping[str, Any]) -> str:
    """'1/2 ready (CrashLoopBackOff)'."""
    text = '%s/%s ready' % (fmt.count(outcome['ready']), fmt.count(outcome['desired']))
    if outcome['waiting']:
        text += ' (%s)' % ', '.join(sorted(set(outcome['waiting'])))
    return text


def describe(outcome: Mapping[str, Any], samples: Sequence[Sample], stable_for: float) -> str:
    """The outcome in one sentence, with its figures (watch_verdict's result)."""
    restarts, stable = outcome['restarts_during'], fmt.seconds(outcome['stable_seconds'])
    during = _restarts(restarts) + ' during the watch'
    if restarts and outcome['last_exit']:
        during += ' (last: %s)' % outcome['last_exit']
    if outcome['oom_killed'] and outcome['last_exit'] != OOM:
        during += ', OOM-killed'
    needed = 'for %s of the %s needed' % (stable, fmt.seconds(stable_for))
    if outcome['verdict'] == 'recovered':
        return '%s/%s replicas ready, no restart for %s' % (outcome['ready'], outcome['desired'], stable)
    if outcome['verdict'] == 'not_recovered':
        return '%s, %s at the deadline; stable %s' % (during, _state(outcome), needed)
    if outcome['verdict'] == WATCHING:
        if outcome['ready'] is None:
            return 'watching: nothing measured yet'
        return 'watching: %s, %s; stable %s' % (_state(outcome), during, needed)
    failed = [s for s in samples if not s.measured]
    last_error = failed[-1].error if failed else None
    if len(failed) == len(samples):
        return 'not measured: none of the %d reads answered (last error: %s)' % (len(samples), last_error)
    recent = [s for s in failed if s.time >= samples[-1].time - stable_for]
    measured = [s for s in samples if s.measured]
    return ('not measured: %d of the reads of the last %s failed (%d of %d in all; last error: %s); last measured '
            'at %s: %s, %s' % (len(recent), fmt.seconds(stable_for), len(failed), len(samples), last_error,
                               iso(measured[-1].time), _state(outcome), during))

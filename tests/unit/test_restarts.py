"""The crash loop watch's rules on samples written by hand: restarts counted per replica (a pod
replaced mid-watch, a count reset), what breaks the stable stretch (a restart, a waiting container,
a replica not ready, a failed read), the verdicts before and at the deadline, and the message."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.restarts import (
    Sample,
    exit_text,
    failed_read,
    restarts_during,
    sample_health,
    watch_verdict,
)


def ok(t, pods=None, desired=2):
    """Every replica ready, none waiting; pods: {pod: restart count}."""
    pods = {'a': 0, 'b': 0} if pods is None else pods
    return Sample(t, ready=desired, desired=desired, restarts=pods)


def looping(t, pods, ready=1, desired=2, last_exit='exit code 1', waiting=('CrashLoopBackOff',), oom=False):
    return Sample(t, ready=ready, desired=desired, restarts=pods, waiting=waiting, last_exit=last_exit, oom_killed=oom)


def test_a_termination_in_words():
    assert exit_text('OOMKilled', 137) == 'OOMKilled'
    assert exit_text('Error', 1) == 'exit code 1'
    assert exit_text(None, 3) == 'exit code 3'
    assert exit_text('ContainerCannotRun', 128) == 'ContainerCannotRun'
    assert exit_text(None, None) is None


def test_restarts_are_counted_per_pod_not_summed_over_a_changing_set():
    # A rollout replaces pod a (5 restarts before the watch) by pod c, which starts at 0 and
    # restarts once: one restart during the watch, though the sum went from 5 to 1.
    samples = [ok(0, {'a': 5, 'b': 0}), ok(10, {'a': 5, 'b': 0, 'c': 0}), ok(20, {'b': 0, 'c': 1}), ok(30, {'b': 0, 'c': 1})]
    assert restarts_during(samples) == [0, 0, 1, 1]
    # A pod that goes away is no restart, and its restarts during the watch still count.
    assert restarts_during([ok(0, {'a': 1, 'b': 0}), ok(10, {'a': 3, 'b': 0}), ok(20, {'b': 0})]) == [0, 2, 2]
    # A pod first seen after the start was created during the watch: all its restarts count.
    assert restarts_during([ok(0, {'a': 0}), ok(10, {'a': 0, 'n': 2})]) == [0, 2]
    # The counts at the start, when given, instead of the first sample's.
    assert restarts_during([ok(0, {'a': 4})], start={'a': 1}) == [3]
    assert restarts_during([ok(0, {'a': 4, 'n': 1})], start={'a': 4}) == [1]


def test_a_count_reset_by_a_manual_start_counts_again_from_zero():
    # The engine resets a container's RestartCount when it is started by hand.
    assert restarts_during([ok(0, {'c': 3}), ok(10, {'c': 0}), ok(20, {'c': 2})]) == [0, 0, 2]


def test_a_failed_read_counts_nothing_and_the_next_read_catches_up():
    samples = [ok(0, {'a': 0}), failed_read(10, 'timeout'), ok(20, {'a': 2})]
    assert restarts_during(samples) == [0, None, 2]


def test_what_a_healthy_sample_is():
    assert sample_health(ok(0), rise=False) is True
    assert sample_health(ok(0), rise=True) is False  # a restart since the last read
    assert sample_health(Sample(0, ready=1, desired=2, restarts={'a': 0}), rise=False) is False
    assert sample_health(Sample(0, ready=2, desired=2, restarts={'a': 0, 'b': 0}, waiting=('ContainerCreating',)),
                         rise=False) is False
    assert sample_health(Sample(0, ready=0, desired=0), rise=False) is False  # scaled to zero serves nothing
    assert sample_health(Sample(0, ready=3, desired=2), rise=False) is False  # a rollout not finished
    assert sample_health(failed_read(0, 'refused'), rise=False) is None


def test_recovered_once_the_last_stretch_spans_stable_for():
    samples = [ok(0), ok(10), ok(20)]
    outcome = watch_verdict(samples, 20, deadline_reached=False)
    assert (outcome['recovered'], outcome['verdict'], outcome['stable_seconds']) == (True, 'recovered', 20.0)
    assert (outcome['ready'], outcome['desired'], outcome['restarts_during'], outcome['failed_samples']) == (2, 2, 0, 0)
    assert outcome['message'] == '2/2 replicas ready, no restart for 20 s'
    # Before that, the watch goes on; at the deadline, not recovered.
    assert watch_verdict(samples[:2], 20, deadline_reached=False)['verdict'] == 'watching'
    late = watch_verdict(samples[:2], 20, deadline_reached=True)
    assert (late['recovered'], late['verdict']) == (False, 'not_recovered')
    assert late['message'] == 'no restart during the watch, 2/2 ready at the deadline; stable for 10 s of the 20 s needed'


def test_a_restart_in_the_middle_of_a_stretch_starts_it_again():
    # Pod b restarts between 20 and 30 though every read finds it ready (between two reads).
    samples = [ok(0), ok(10), ok(20), ok(30, {'a': 0, 'b': 1}), ok(40, {'a': 0, 'b': 1}), ok(50, {'a': 0, 'b': 1})]
    outcome = watch_verdict(samples, 30, deadline_reached=True)
    assert (outcome['verdict'], outcome['stable_seconds'], outcome['restarts_during']) == ('not_recovered', 10.0, 1)
    assert watch_verdict(samples + [ok(70, {'a': 0, 'b': 1})], 30, deadline_reached=False)['verdict'] == 'recovered'


def test_a_pod_replaced_mid_watch_recovers_on_its_own_fresh_count():
    # A rollback: the crash-looping pods (7 and 9 restarts) are replaced by pods that stay up.
    samples = [looping(0, {'a': 7, 'b': 9}, ready=0), looping(10, {'a': 8, 'b': 9}, ready=0),
               Sample(20, ready=1, desired=2, restarts={'b': 9, 'c': 0}, waiting=('ContainerCreating',)),
               ok(30, {'c': 0, 'd': 0}), ok(40, {'c': 0, 'd': 0}), ok(50, {'c': 0, 'd': 0})]
    outcome = watch_verdict(samples, 20, deadline_reached=False)
    assert (outcome['verdict'], outcome['stable_seconds'], outcome['restarts_during']) == ('recovered', 20.0, 1)
    assert outcome['trend'] == 'decreasing'


def test_a_crash_loop_at_the_deadline_in_words():
    samples = [looping(0, {'a': 2, 'b': 0}), looping(10, {'a': 3, 'b': 0}),
               looping(20, {'a': 4, 'b': 0}, last_exit='OOMKilled', oom=True),
               looping(30, {'a': 5, 'b': 0}, last_exit='OOMKilled')]
    outcome = watch_verdict(samples, 60, deadline_reached=True)
    assert (outcome['recovered'], outcome['verdict'], outcome['restarts_during']) == (False, 'not_recovered', 3)
    assert outcome['oom_killed'] and outcome['waiting'] == ['CrashLoopBackOff'] and outcome['last_exit'] == 'OOMKilled'
    assert outcome['message'] == ('3 restarts during the watch (last: OOMKilled), 1/2 ready (CrashLoopBackOff) at the '
                                  'deadline; stable for 0 s of the 60 s needed')
    # An OOM kill that is not the last termination is still told.
    samples[-1] = looping(30, {'a': 5, 'b': 0}, last_exit='exit code 1')
    assert '3 restarts during the watch (last: exit code 1), OOM-killed, 1/2 ready' in \
        watch_verdict(samples, 60, deadline_reached=True)['message']


def test_a_failed_read_breaks_the_stretch():
    samples = [ok(0), ok(10), failed_read(20, 'cannot reach the Kubernetes API'), ok(30), ok(40)]
    outcome = watch_verdict(samples, 20, deadline_reached=False)
    assert (outcome['verdict'], outcome['stable_seconds'], outcome['failed_samples']) == ('watching', 10.0, 1)
    assert outcome['message'] == ('watching: 2/2 ready, no restart during the watch; stable for 10 s of the 20 s needed')


def test_not_measured_when_the_last_reads_failed_and_none_saw_a_crash_loop():
    samples = [ok(0), ok(10), failed_read(20, 'timed out'), failed_read(30, 'timed out')]
    outcome = watch_verdict(samples, 15, deadline_reached=True)
    assert (outcome['recovered'], outcome['verdict']) == (False, 'not_measured')
    assert outcome['message'] == ('not measured: 2 of the reads of the last 15 s failed (2 of 4 in all; last error: '
                                  'timed out); last measured at 1970-01-01T00:00:10Z: 2/2 ready, no restart during '
                                  'the watch')
    # Not before the deadline: it may answer again.
    assert watch_verdict(samples, 15, deadline_reached=False)['verdict'] == 'watching'
    # A crash loop seen among the last reads denies recovery.
    samples[2] = looping(20, {'a': 1, 'b': 0})
    assert watch_verdict(samples, 15, deadline_reached=True)['verdict'] == 'not_recovered'


def test_not_measured_when_no_read_answered():
    samples = [failed_read(0, 'connection refused'), failed_read(10, 'connection refused')]
    outcome = watch_verdict(samples, 60, deadline_reached=True)
    assert (outcome['verdict'], outcome['ready'], outcome['desired'], outcome['restarts_during']) == (
        'not_measured', None, None, 0)
    assert outcome['message'] == 'not measured: none of the 2 reads answered (last error: connection refused)'
    assert watch_verdict(samples, 60, deadline_reached=False)['message'] == 'watching: nothing measured yet'


@pytest.mark.parametrize('deadline_reached, verdict', [(False, 'watching'), (True, 'not_recovered')])
def test_the_deadline_decides_only_what_is_not_recovered(deadline_reached, verdict):
    samples = [looping(0, {'a': 0, 'b': 0}), looping(10, {'a': 1, 'b': 0})]
    assert watch_verdict(samples, 20, deadline_reached)['verdict'] == verdict
    # A stable stretch is recovered whether or not the deadline is reached.
    assert watch_verdict([ok(0), ok(20)], 20, deadline_reached)['verdict'] == 'recovered'

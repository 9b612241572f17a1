"""crash_loop_watch_info's reads made samples, on objects written by hand as the APIs return them: a
Deployment's pods (kubectl get -o json) and a compose service's containers (docker inspect)."""

from ansible_collections.sre.runbooks.plugins.module_utils.crash_loop_watch_info import containers_sample, pods_sample

START = 1795446000.0  # 2026-11-23T15:00:00Z, when the watch began
DEPLOYMENT = {'metadata': {'name': 'gw', 'namespace': 'shop'}, 'spec': {'replicas': 2}}


def status(name='app', restarts=0, waiting=None, last=None, finished='2026-11-23T15:00:30Z', running=False):
    state = {'waiting': {'reason': waiting}} if waiting else {'running': {'startedAt': '2026-11-23T14:00:00Z'}} \
        if running else {}
    last_state = {'terminated': {'reason': last[0], 'exitCode': last[1], 'finishedAt': finished}} if last else {}
    return {'name': name, 'restartCount': restarts, 'ready': running, 'state': state, 'lastState': last_state}


def pod(name, *statuses, ready=True, deleting=False):
    meta = {'name': name}
    if deleting:
        meta['deletionTimestamp'] = '2026-11-23T15:01:00Z'
    return {'metadata': meta, 'status': {'conditions': [{'type': 'Ready', 'status': 'True' if ready else 'False'}],
                                         'containerStatuses': list(statuses)}}


def test_pods_make_a_sample():
    pods = [pod('gw-a', status(running=True)),
            pod('gw-b', status(restarts=4, waiting='CrashLoopBackOff', last=('OOMKilled', 137)),
                status('sidecar', restarts=1, running=True, last=('Error', 1), finished='2026-11-23T14:00:00Z'),
                ready=False),
            pod('gw-old', status(restarts=9, waiting='CrashLoopBackOff'), ready=False, deleting=True)]
    sample = pods_sample(START + 60, DEPLOYMENT, pods, START)
    assert (sample.time, sample.ready, sample.desired, sample.measured) == (START + 60, 1, 2, True)
    # A pod's count is the sum of its containers'; the pod being deleted is no replica any more.
    assert sample.restarts == {'gw-a': 0, 'gw-b': 5} and sample.restart_total == 5
    assert sample.waiting == ('CrashLoopBackOff',)
    # The newest termination, and an OOM kill after the start.
    assert (sample.last_exit, sample.oom_killed) == ('OOMKilled', True)


def test_an_oom_kill_before_the_watch_is_not_one_during_it():
    pods = [pod('gw-a', status(restarts=1, running=True, last=('OOMKilled', 137), finished='2026-11-23T14:59:00Z'))]
    sample = pods_sample(START + 10, DEPLOYMENT, pods, START)
    assert (sample.oom_killed, sample.last_exit, sample.ready, sample.waiting) == (False, 'OOMKilled', 1, ())


def test_a_pending_pod_and_the_default_replicas():
    pending = {'metadata': {'name': 'gw-new'}, 'status': {'phase': 'Pending'}}
    sample = pods_sample(START, {'spec': {}}, [pending], START)
    assert (sample.ready, sample.desired, sample.restarts, sample.waiting, sample.last_exit) == (
        0, 1, {'gw-new': 0}, (), None)


def container(cid, state, restarts=0, health=None, oom=False, code=0, finished='2026-11-23T15:00:20.123456789Z'):
    body = {'Status': state, 'OOMKilled': oom, 'ExitCode': code, 'FinishedAt': finished}
    if health:
        body['Health'] = {'Status': health}
    return {'Id': cid, 'RestartCount': restarts, 'State': body}


def test_containers_make_a_sample():
    containers = [container('c1', 'running', health='healthy', finished='0001-01-01T00:00:00Z'),
                  container('c2', 'running', health='starting', restarts=2),
                  container('c3', 'restarting', restarts=7, oom=True, code=137)]
    sample = containers_sample(START + 60, containers, START, oom_events=0)
    assert (sample.ready, sample.desired, sample.restarts) == (1, 3, {'c1': 0, 'c2': 2, 'c3': 7})
    assert sample.waiting == ('restarting',) and (sample.last_exit, sample.oom_killed) == ('OOMKilled', True)


def test_the_engine_events_tell_an_oom_kill_its_state_forgot():
    # A restarted container's OOMKilled is reset; the oom event since the start still says it.
    running = [container('c1', 'running', restarts=3)]
    assert containers_sample(START, running, START, oom_events=1).oom_killed is True
    assert containers_sample(START, running, START, oom_events=0).oom_killed is False
    exited = [container('c1', 'exited', code=3, finished='2026-11-23T14:00:00Z')]
    sample = containers_sample(START, exited, START, oom_events=0)
    assert (sample.ready, sample.last_exit, sample.oom_killed, sample.waiting) == (0, 'exit code 3', False, ())

"""crash_loop_watch_info with platform compose, against the real Docker engine and docker-compose, on a
throwaway project (tests/integration/compose/crash-loop.yml): `steady`, which serves on 127.0.0.1 and
stays up, and `crashing`, which exits at start under `restart: on-failure`. The rig's base image is
re-tagged for it (no registry). The project name is fresh for each run and the project is taken
down at the end whatever happens. Each run is the module in a child process, as Ansible runs it.
"""

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import run_module

COMPOSE_FILE = str(Path(__file__).resolve().parent / 'compose' / 'crash-loop.yml')
SOURCE_IMAGE = 'sre-demo/base:bookworm'
IMAGE = 'sre-crash-loop-test/app:v1'
PREFIX = 'sre-crash-loop-test-'


def sh(*args, timeout=120):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, '%s: %s %s' % (' '.join(args), proc.stdout, proc.stderr)
    return proc.stdout.strip()


def compose(project, *args):
    return sh('docker-compose', '-p', project, '-f', COMPOSE_FILE, *args)


def container_ids(project, service):
    return sh('docker', 'ps', '-aq', '--no-trunc', '--filter', 'label=com.docker.compose.project=%s' % project,
              '--filter', 'label=com.docker.compose.service=%s' % service).split()


def inspect(cid):
    return json.loads(sh('docker', 'inspect', cid))[0]


@pytest.fixture(scope='module')
def project():
    sh('docker', 'version')  # the engine must be there: fail, never skip
    sh('docker', 'tag', SOURCE_IMAGE, IMAGE)
    # A project of this module that an interrupted run left holds the port: it goes first.
    left = sh('docker', 'ps', '-a', '--filter', 'label=com.docker.compose.project',
              '--format', '{{.Label "com.docker.compose.project"}}').split()
    for name in {n for n in left if n.startswith(PREFIX)}:
        compose(name, 'down', '-t', '1')
    name = PREFIX + uuid.uuid4().hex[:6]
    try:
        compose(name, 'up', '-d')
        deadline = time.monotonic() + 60
        while (inspect(container_ids(name, 'steady')[0])['State'].get('Health') or {}).get('Status') != 'healthy':
            assert time.monotonic() < deadline, 'steady not healthy within 60 s'
            time.sleep(0.5)
        yield name
    finally:
        subprocess.run(['docker-compose', '-p', name, '-f', COMPOSE_FILE, 'down', '-t', '1'],
                       capture_output=True, timeout=120, check=False)


def watch(name, check_mode=False, **kw):
    args = {'platform': 'compose', 'service': 'steady', 'project': name, 'stable_for': '3s', 'deadline': '20s',
            'interval': '1s', 'docker_timeout': 5}
    args.update(kw)
    args = {key: value for key, value in args.items() if value is not None}  # None: the option not given
    return run_module('crash_loop_watch_info', args, check_mode=check_mode)


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def test_a_service_that_stays_up_recovers_after_stable_for(project):
    result = ok(watch(project))
    assert (result['recovered'], result['verdict'], result['changed']) == (True, 'recovered', False)
    assert (result['ready'], result['desired'], result['restarts_during'], result['waiting']) == (1, 1, 0, [])
    assert result['target'] == 'compose service steady in project %s' % project and result['platform'] == 'compose'
    assert result['message'].startswith('compose service steady in project %s: 1/1 replicas ready, no restart for 3'
                                        % project), result['message']
    # It ends at the first read that makes the stretch stable_for long, not at the deadline.
    times = [s['time'] for s in result['samples']]
    assert result['stable_seconds'] == pytest.approx(times[-1] - times[0], abs=0.1) and times[-2] - times[0] < 3
    assert all(s['measured'] and (s['ready'], s['desired'], s['restarts_during']) == (1, 1, 0) for s in result['samples'])
    assert (result['measured'], result['unmeasured_reason'], result['failed_samples'], result['query_errors']) == (
        True, None, 0, [])
    assert result['oom_killed'] is False and result['trend'] == 'flat'
    assert result['started_at'].endswith('Z') and result['ended_at'] >= result['started_at']


def test_check_mode_watches_the_same(project):
    result = ok(watch(project, check_mode=True))
    assert (result['verdict'], result['changed']) == ('recovered', False)


def test_the_project_is_found_when_not_given(project):
    result = ok(watch(project, project=None, stable_for='1s', deadline='5s'))
    assert result['verdict'] == 'recovered' and result['target'] == 'compose service steady in project %s' % project


def test_a_container_that_exits_at_start_is_not_recovered_with_its_restarts_counted(project):
    before = inspect(container_ids(project, 'crashing')[0])['RestartCount']
    result = ok(watch(project, service='crashing', stable_for='5s', deadline='12s'))
    after = inspect(container_ids(project, 'crashing')[0])['RestartCount']
    assert (result['recovered'], result['verdict'], result['stable_seconds']) == (False, 'not_recovered', 0.0)
    # Counted against the container's own count when first seen, not since it was created.
    assert 1 <= result['restarts_during'] <= after - before, (result['restarts_during'], before, after)
    assert result['samples'][0]['restarts'] >= before and result['samples'][0]['restarts_during'] == 0
    assert result['ready'] == 0 and result['desired'] == 1 and result['last_exit'] == 'exit code 3'
    # No read after the deadline, and none left out before it.
    times = [s['time'] for s in result['samples']]
    assert times[-1] - times[0] <= 12 < times[-1] + 1 - times[0] + 0.1
    assert any(s['waiting'] == ['restarting'] for s in result['samples']), result['samples']
    assert result['message'].startswith('compose service crashing in project %s: %d restart%s during the watch (last: '
                                        'exit code 3), 0/1 ready' % (project, result['restarts_during'],
                                                                     '' if result['restarts_during'] == 1 else 's'))
    assert result['message'].endswith('at the deadline; stable for 0 s of the 5 s needed'), result['message']


def test_a_recreated_container_is_no_restart(project):
    """The service recreated mid-watch (a rollback's `up -d`): a new container, a fresh count."""
    old = container_ids(project, 'steady')
    outcome = {}
    watcher = threading.Thread(target=lambda: outcome.update(watch(project, stable_for='4s', deadline='40s')))
    watcher.start()
    time.sleep(1.5)
    compose(project, 'up', '-d', '--no-deps', '--force-recreate', 'steady')
    watcher.join(timeout=100)
    result = ok(outcome)
    assert container_ids(project, 'steady') != old
    assert (result['verdict'], result['restarts_during'], result['ready'], result['desired']) == ('recovered', 0, 1, 1)
    assert result['samples'][-1]['time'] - result['samples'][0]['time'] > 4


def test_a_service_that_does_not_exist_fails_naming_it(project):
    result = watch(project, service='nosuch')
    assert result['failed'] and result['msg'] == (
        'no container of compose service nosuch in project %s on the docker host at unix:///var/run/docker.sock, '
        'nothing to watch: check the service name and project (docker ps -a --filter '
        'label=com.docker.compose.service=nosuch) and the host the task runs on' % project)
    assert 'no container of compose service nosuch on the docker host' in watch(project, service='nosuch', project=None)['msg']


def test_an_engine_that_does_not_answer_is_not_measured_not_a_failed_task(tmp_path):
    socket = 'unix://%s/docker.sock' % tmp_path
    result = ok(watch('any', docker_host=socket, deadline='2s', stable_for='1s'))
    assert (result['recovered'], result['verdict'], result['measured']) == (False, 'not_measured', False)
    count = len(result['samples'])
    assert result['failed_samples'] == len(result['query_errors']) == count >= 2
    assert {(s['measured'], s['ready'], s['restarts_during']) for s in result['samples']} == {(False, None, None)}
    assert result['query_errors'][-1].startswith('cannot reach Docker Engine'), result['query_errors']
    assert result['unmeasured_reason'].startswith('cannot reach Docker Engine')
    assert result['message'].startswith('compose service steady in project any: not measured: none of the %d reads '
                                        'answered (last error: cannot reach Docker Engine' % count), result['message']


@pytest.mark.parametrize('options, message', [
    ({'stable_for': '5m', 'deadline': '1m'},
     'invalid option stable_for: 5m is longer than the deadline (1m): the watch could never see it'),
    ({'interval': 'often'}, "invalid option interval: 'often' is not a duration"),
    ({'deadline': '0s'}, "invalid option deadline: '0s' must be more than 0s"),
    ({'service': None}, 'platform is compose but all of the following are missing: service'),
    ({'docker_host': 'ssh://host'}, "docker_host 'ssh://host' must start with unix://, tcp://, http:// or https://"),
])
def test_bad_options_fail_in_one_line_naming_the_option(options, message):
    result = watch('any', **options)
    assert result['failed'] and result['msg'].startswith(message), result['msg']
    assert '\n' not in result['msg']

"""compose_service and compose_service_info against the real Docker engine and docker-compose, on
a throwaway project.

One service (tests/integration/compose/docker-compose.yml) of the demo's model-service image,
re-tagged sre-compose-test/svc:v1 and :v2, on 127.0.0.1:18090. The project name is fresh for each
run, so the engine's event history of earlier runs cannot lend it a previous image. The tests run in
file order and share the project: the rollback refusal comes before the v2 deploy. The project is
taken down at the end whatever happens.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import run_module

COMPOSE_FILE = str(Path(__file__).resolve().parent / 'compose' / 'docker-compose.yml')
SOURCE_IMAGE = 'sre-demo/model-service:v1.0.0'
REPO = 'sre-compose-test/svc'
PORT = 18090
SERVICE = 'svc'
READ_STATES = ('status', 'logs', 'config_check')


def sh(*args, env=None, timeout=120):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    assert proc.returncode == 0, '%s: %s %s' % (' '.join(args), proc.stdout, proc.stderr)
    return proc.stdout.strip()


def inspect(cid):
    return json.loads(sh('docker', 'inspect', cid))[0]


def port_free(port):
    with socket.socket() as sock:
        return sock.connect_ex(('127.0.0.1', port)) != 0


class Project:
    def __init__(self, name, state_dir):
        self.name, self.state_dir = name, state_dir
        self.override = os.path.join(state_dir, 'compose', name, 'override.yml')
        self.history = os.path.join(state_dir, 'compose', name, '%s.history.json' % SERVICE)

    def compose(self, *args, files=(COMPOSE_FILE,), tag=None):
        env = dict(os.environ)
        if tag:
            env['SVC_TAG'] = tag
        command = ['docker-compose', '-p', self.name]
        for path in files:
            command += ['-f', path]
        return sh(*command, *args, env=env)

    def run(self, state='status', check_mode=False, module=None, **args):
        """The read states through compose_service_info, the acting ones through compose_service,
        unless module names one."""
        module = module or ('compose_service_info' if state in READ_STATES else 'compose_service')
        args.update(service=SERVICE, project=self.name, state=state, state_dir=self.state_dir,
                    _ansible_diff=True)
        if module == 'compose_service':
            args.setdefault('wait_timeout', 60)
        return run_module(module, args, check_mode=check_mode)

    def container_ids(self):
        return sh('docker', 'ps', '-aq', '--no-trunc', '--filter',
                  'label=com.docker.compose.project=%s' % self.name).split()

    def snapshot(self):
        def text(path):
            return Path(path).read_text() if os.path.exists(path) else None
        return ([(cid, inspect(cid)['State']['StartedAt']) for cid in self.container_ids()],
                text(self.override), text(self.history))

    def wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.container_ids()
            if ids and all((inspect(c)['State'].get('Health') or {}).get('Status') == 'healthy' for c in ids):
                return ids
            time.sleep(0.5)
        raise AssertionError('project %s not healthy within %ss' % (self.name, timeout))


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    sh('docker', 'version')  # the engine must be there: fail, never skip
    sh('docker', 'tag', SOURCE_IMAGE, REPO + ':v1')
    sh('docker', 'tag', SOURCE_IMAGE, REPO + ':v2')
    os.environ.pop('SVC_TAG', None)
    # A project of this module that an interrupted run left holds the port: it goes first.
    left = sh('docker', 'ps', '-a', '--filter', 'label=com.docker.compose.project',
              '--format', '{{.Label "com.docker.compose.project"}}').split()
    for name in {n for n in left if n.startswith('sre-compose-test-')}:
        sh('docker-compose', '-p', name, '-f', COMPOSE_FILE, 'down', '-t', '1')
    assert port_free(PORT), 'port %d is taken: the test service needs it' % PORT
    proj = Project('sre-compose-test-%s' % uuid.uuid4().hex[:6], str(tmp_path_factory.mktemp('state')))
    try:
        proj.compose('up', '-d')
        proj.wait_healthy()
        yield proj
    finally:
        subprocess.run(['docker-compose', '-p', proj.name, '-f', COMPOSE_FILE, 'down', '-t', '1'],
                       capture_output=True, timeout=120, check=False)


def test_status_reads_containers_port_and_history(project):
    result = project.run(port=PORT)
    assert not result['changed'] and 'failed' not in result, result
    (container,) = result['containers']
    assert container['state'] == 'running' and container['health'] == 'healthy'
    assert container['image'] == REPO + ':v1' and container['image_id'].startswith('sha256:')
    assert result['crash_loop'] is False and result['crash']['restarts_in_window'] == 0
    assert result['oom']['oom_killed'] is False
    assert result['port_conflict'] is False
    assert [h['in_service'] for h in result['port_holders']] == [True]
    assert result['current_image'] == REPO + ':v1' and result['previous_image'] is None
    assert result['compose'] == {'command': 'docker-compose', 'version': result['compose']['version']}
    assert result['before']['memory'] == 96 * 1024 ** 2 and result['before']['cpus'] == 0.5
    assert [e['image'] for e in json.loads(Path(project.history).read_text())['images']] == [REPO + ':v1']


def test_read_states_of_compose_service_still_work_deprecated(project):
    for state in READ_STATES:
        result = project.run(state, module='compose_service', port=PORT)
        assert not result['changed'] and 'failed' not in result, (state, result)
        assert result['containers'][0]['state'] == 'running', (state, result)
        (deprecation,) = result['deprecations']
        message = deprecation.get('msg') or deprecation['event']['msg']  # ansible-core < 2.19, >= 2.19
        assert 'state=%s' % state in message and 'sre.runbooks.compose_service_info' in message, deprecation
        assert deprecation['version'] == '2.0.0', deprecation
    assert 'config' in result and result['port_conflict'] is False
    assert not project.run(port=PORT).get('deprecations')  # compose_service_info


def test_info_refuses_an_acting_state(project):
    before = project.snapshot()
    for state in ('restarted', 'recreated', 'rolled_back', 'env', 'resources'):
        result = project.run(state, module='compose_service_info')
        assert result['failed'], (state, result)
        assert 'value of state must be one of: status, logs, config_check, got: %s' % state in result['msg'], result
    result = project.run(module='compose_service_info', wait_timeout=60)
    assert result['failed'] and 'wait_timeout' in result['msg'], result
    assert project.snapshot() == before


def test_logs(project):
    result = project.run('logs', tail=5, since='1h')
    assert 0 < len(result['logs']) <= 5
    assert {'time', 'container', 'stream', 'line'} == set(result['logs'][0])


def test_rollback_without_previous_image_refuses(project):
    before = project.snapshot()
    result = project.run('rolled_back')
    assert result['failed'] and 'no previous image is known' in result['msg']
    assert project.snapshot()[:2] == before[:2]


def test_explicit_image_not_present_refuses(project):
    before = project.snapshot()
    result = project.run('rolled_back', image='v9-missing')
    assert result['failed'] and '%s:v9-missing is not on this host' % REPO in result['msg']
    assert project.snapshot()[:2] == before[:2]


def test_check_mode_changes_nothing_and_plans(project):
    project.run()  # the history file exists, so its sameness means something
    before = project.snapshot()
    plans = {
        'env': project.run('env', env={'PLANNED': 'yes'}, check_mode=True),
        'rolled_back': project.run('rolled_back', image='v2', check_mode=True),
        'restarted': project.run('restarted', check_mode=True),
        'resources': project.run('resources', memory='128m', check_mode=True),
    }
    reads = [project.run(state, check_mode=True, port=PORT) for state in READ_STATES]
    assert project.snapshot() == before  # compose_service_info writes no history in check mode
    for result in reads:
        assert not result['changed'] and 'failed' not in result, result
        assert result['after'] == result['before'] and result['diff'][1]['before'] == result['diff'][1]['after']
    for state, result in plans.items():
        assert result['changed'] and result['commands'], (state, result)
    assert plans['env']['commands'][0].endswith('up -d --no-deps --force-recreate svc')
    assert '-f %s' % project.override in plans['env']['commands'][0]
    assert plans['env']['after']['env'] == {'PLANNED': 'yes'}
    assert '"PLANNED": "yes"' in plans['env']['diff'][0]['after']
    assert plans['rolled_back']['after']['image'] == REPO + ':v2'
    assert plans['restarted']['commands'][0].endswith(' restart svc')
    assert plans['resources']['commands'][0].startswith('POST /containers/')
    assert plans['resources']['after']['memory'] == 128 * 1024 ** 2


def test_env_set_then_unchanged_then_unset(project):
    old_ids = project.container_ids()
    result = project.run('env', env={'SRE_TEST_FLAG': False, 'SRE_TEST_N': 3})
    assert result['changed'] and 'failed' not in result, result
    (cid,) = project.container_ids()
    assert cid not in old_ids
    assert {'SRE_TEST_FLAG=false', 'SRE_TEST_N=3'} <= set(inspect(cid)['Config']['Env'])
    assert any('listening on' in line['line'] for line in result['logs'])
    assert result['after']['env'] == {'SRE_TEST_FLAG': 'false', 'SRE_TEST_N': '3'}
    override_lines = Path(project.override).read_text().splitlines()
    assert 'version' in json.loads(''.join(line for line in override_lines if not line.startswith('#')))
    again = project.run('env', env={'SRE_TEST_FLAG': False, 'SRE_TEST_N': 3})
    assert not again['changed'] and again['commands'] == [] and project.container_ids() == [cid]
    result = project.run('env', env={'SRE_TEST_FLAG': None, 'SRE_TEST_N': None})
    assert result['changed']
    (cid,) = project.container_ids()
    assert not [e for e in inspect(cid)['Config']['Env'] if e.startswith('SRE_TEST_')]
    assert '"svc"' not in Path(project.override).read_text()
    assert not project.run('env', env={'SRE_TEST_FLAG': None})['changed']


def test_resources_live_and_persisted(project):
    (cid,) = project.container_ids()
    result = project.run('resources', memory_factor=1.5, cpu_factor=2)
    assert result['changed'] and 'failed' not in result, result
    assert project.container_ids() == [cid]  # live, no recreate
    host = inspect(cid)['HostConfig']
    assert (host['Memory'], host['MemorySwap'], host['NanoCpus']) == (144 * 1024 ** 2, 144 * 1024 ** 2, 10 ** 9)
    override = Path(project.override).read_text()
    assert '"mem_limit": %d' % (144 * 1024 ** 2) in override and '"cpus": 1.0' in override
    again = project.run('resources', memory_factor=1.5, cpu_factor=2)
    assert not again['changed'] and again['commands'] == []
    assert again['after']['memory'] == 144 * 1024 ** 2 and again['after']['cpus'] == 1.0


def test_restarted_if_started_before(project):
    (cid,) = project.container_ids()
    started = inspect(cid)['State']['StartedAt']
    result = project.run('restarted', if_started_before=str(time.time() - 3600))
    assert not result['changed'] and inspect(cid)['State']['StartedAt'] == started
    threshold = str(time.time())
    time.sleep(1)
    result = project.run('restarted', if_started_before=threshold)
    assert result['changed'] and 'failed' not in result, result
    assert project.container_ids() == [cid] and inspect(cid)['State']['StartedAt'] != started
    assert result['containers'][0]['health'] == 'healthy'
    assert not project.run('restarted', if_started_before=threshold)['changed']


def test_env_change_keeps_the_version_a_deploy_set(project):
    project.compose('up', '-d', tag='v2')  # the "bad deploy", by the user's own files
    project.wait_healthy()
    result = project.run('env', env={'SRE_TEST_BREAKER': 5})
    assert result['changed'] and result['before']['image'] == result['after']['image'] == REPO + ':v2', result
    (cid,) = project.container_ids()
    assert inspect(cid)['Config']['Image'] == REPO + ':v2'
    assert '"image": "%s:v2"' % REPO in Path(project.override).read_text()


def test_rolled_back_v2_to_v1(project):
    result = project.run('rolled_back')
    assert result['changed'] and 'failed' not in result, result
    assert result['before']['image'] == REPO + ':v2' and result['after']['image'] == REPO + ':v1'
    (cid,) = project.container_ids()
    assert inspect(cid)['Config']['Image'] == REPO + ':v1'
    assert result['previous_image'] == REPO + ':v2'
    assert '"image": "%s:v1"' % REPO in Path(project.override).read_text()
    again = project.run('rolled_back')
    assert not again['changed'] and project.container_ids() == [cid]


def test_config_check_of_a_broken_file(project, tmp_path):
    broken = tmp_path / 'broken.yml'
    broken.write_text('version: "2.4"\nservices:\n  svc:\n    image: [unclosed\n')
    result = project.run('config_check', files=[str(broken)])
    assert not result['changed'] and result['config']['valid'] is False
    assert result['config']['error']


def test_port_conflict_with_a_foreign_listener(project):
    (cid,) = project.container_ids()
    sh('docker', 'stop', '-t', '1', cid)
    squatter = subprocess.Popen([sys.executable, '-c', (
        'import socket, time\n'
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
        's.bind(("127.0.0.1", %d)); s.listen(); time.sleep(120)\n' % PORT)])
    try:
        deadline = time.monotonic() + 10
        while port_free(PORT) and time.monotonic() < deadline:
            time.sleep(0.1)
        result = project.run(port=PORT)
        assert result['port_conflict'] is True
        assert [(h['pid'], h['in_service']) for h in result['port_holders']] == [(squatter.pid, False)]
        assert result['containers'][0]['state'] == 'exited'
    finally:
        squatter.kill()
        squatter.wait(timeout=10)
    sh('docker', 'start', cid)
    project.wait_healthy()


def test_hash_and_env_drift_of_a_container_started_otherwise(project, tmp_path):
    extra = tmp_path / 'extra.yml'
    extra.write_text('version: "2.4"\nservices:\n  svc:\n    environment:\n      DRIFT_API_KEY: s3cret\n')
    project.compose('up', '-d', files=(COMPOSE_FILE, str(extra)))
    project.wait_healthy()
    result = project.run('config_check', files=[COMPOSE_FILE])
    config = result['config']
    assert config['valid'] and config['hash_drift'] is True, config
    assert {'name': 'DRIFT_API_KEY', 'running': '********', 'configured': None} in config['env_drift']

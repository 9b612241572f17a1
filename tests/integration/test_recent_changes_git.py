"""recent_changes on a real git checkout and the real Docker engine."""

import os
import subprocess
import time

from conftest import run_module


def commit(repo, path, message, when):
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(message)
    env = dict(os.environ, GIT_AUTHOR_DATE='@%d +0000' % when, GIT_COMMITTER_DATE='@%d +0000' % when,
               GIT_AUTHOR_NAME='Ada', GIT_AUTHOR_EMAIL='ada@example.com',
               GIT_COMMITTER_NAME='Ada', GIT_COMMITTER_EMAIL='ada@example.com')
    subprocess.run(['git', '-C', str(repo), 'add', '-A'], check=True, env=env)
    subprocess.run(['git', '-C', str(repo), 'commit', '-qm', message], check=True, env=env)


def test_config_commits_since_an_hour(tmp_path):
    repo = tmp_path / 'app'
    repo.mkdir()
    subprocess.run(['git', 'init', '-q', str(repo)], check=True)
    t = int(time.time())
    commit(repo, 'config/pool.yml', 'Old pool size', t - 7200)
    commit(repo, 'src/app.py', 'Refactor handler', t - 1200)
    commit(repo, 'config/pool.yml', 'Shrink pool to 2', t - 600)
    r = run_module('recent_changes_info', {'since': '1h', 'onset': str(t - 300), 'git': [
        {'path': str(repo), 'paths': ['config/']}, {'path': str(repo)}]})
    assert r.get('failed') is not True, r
    summaries = [(c['kind'], c['summary'].split(' ', 1)[1]) for c in r['changes']]
    assert summaries == [('config', 'Shrink pool to 2'), ('commit', 'Shrink pool to 2'),
                         ('commit', 'Refactor handler')]
    assert r['changes'][0]['seconds_before_onset'] == 300
    assert r['changes'][0]['author'] == 'Ada'
    assert r['last_deploy'] is None


def test_not_a_checkout_is_named(tmp_path):
    r = run_module('recent_changes_info', {'git': [{'path': str(tmp_path)}]})
    assert r['failed'] is True
    assert 'git log failed in %s' % tmp_path in r['msg'] and 'git checkout' in r['msg']


def test_unknown_compose_service_is_named():
    r = run_module('recent_changes_info', {'service': 'no-such-service', 'compose_project': 'sre-demo'})
    assert r['failed'] is True
    assert "no container of compose service 'no-such-service' in project 'sre-demo'" in r['msg']


def test_docker_engine_unreachable_is_named(tmp_path):
    r = run_module('recent_changes_info', {'service': 'x', 'docker_host': 'unix://%s/none.sock' % tmp_path,
                                           'docker_timeout': 2})
    assert r['failed'] is True
    assert 'cannot reach Docker Engine' in r['msg'] and 'is the Docker engine running' in r['msg']


def test_bad_since_is_named():
    r = run_module('recent_changes_info', {'service': 'x', 'since': 'last tuesday'})
    assert r['failed'] is True and "invalid option: 'last tuesday' is not a time" in r['msg']

"""compose_service's pure logic: override file, image history, crash loop, ports, limits, plans."""

import os

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.docker import compose as cu


def test_override_roundtrip_carries_the_version():
    doc = cu.with_version(cu.update_service({}, 'gw', image='gw:v1', env={'A': 1, 'B': True}), '2.4')
    text = cu.render_override(doc, 'demo')
    assert text.startswith('# Managed by the sre.runbooks collection')
    assert 'project demo' in text
    parsed = cu.parse_override(text)
    assert parsed == {'version': '2.4', 'services': {'gw': {'image': 'gw:v1',
                                                            'environment': {'A': '1', 'B': 'true'}}}}
    assert cu.with_version(parsed, None) == {'services': parsed['services']}
    assert cu.parse_override(None) == {} and cu.parse_override('# only a comment\n') == {}


def test_bad_override_is_refused_with_advice():
    with pytest.raises(ValueError, match='fix or delete it'):
        cu.parse_override('services:\n  gw: {}\n')
    with pytest.raises(ValueError, match='"services"'):
        cu.parse_override('{"services": []}')


def test_unset_removes_the_key_and_empty_entries_disappear():
    doc = cu.update_service({}, 'gw', env={'A': 'x', 'B': 'y'})
    doc = cu.update_service(doc, 'gw', env={'A': None})
    assert doc == {'services': {'gw': {'environment': {'B': 'y'}}}}
    doc = cu.update_service(doc, 'gw', env={'B': None, 'MISSING': None})
    assert doc == {'services': {}}
    original = {'services': {'gw': {'image': 'gw:v1'}}}
    cu.update_service(original, 'gw', env={'A': '1'}, limits={'cpus': 1.0})
    assert original == {'services': {'gw': {'image': 'gw:v1'}}}  # never changed in place


def test_file_version_read_with_a_regex():
    assert cu.file_version('# c\nversion: "2.4"\nservices: {}\n') == '2.4'
    assert cu.file_version("version: '3'  # spec\n") == '3'
    assert cu.file_version('services:\n  a:\n    version: 2\n') is None
    assert cu.file_version('') is None


def container(image, created, state='running', image_id=None, **extra):
    facts = {'id': 'c%d' % created, 'name': 'p_gw_1', 'image': image, 'image_id': image_id,
             'created_epoch': created, 'state': state, 'restart_count': 0, 'exit_code': 0}
    facts.update(extra)
    return facts


def test_history_merge_and_previous_image():
    seen = cu.observations([container('gw:v2', 200, image_id='sha256:b')],
                           [{'image': 'gw:v2', 'time': 200, 'previous_image': 'gw:v1'}], now=300)
    history = cu.merge_history([{'image': 'gw:v1', 'image_id': 'sha256:a', 'first_seen': 100,
                                 'last_seen': 150}], seen)
    assert [(e['image'], e['image_id'], e['first_seen'], e['last_seen']) for e in history] == [
        ('gw:v1', 'sha256:a', 100, 199.999), ('gw:v2', 'sha256:b', 200, 300)]
    assert cu.previous_image(history, 'gw:v2') == 'gw:v1'
    # After a rollback to v1, the previous image is the bad one it replaced.
    history = cu.merge_history(history, [('gw:v1', 'sha256:a', 400)])
    assert cu.previous_image(history, 'gw:v1') == 'gw:v2'
    assert cu.previous_image([e for e in history if e['image'] == 'gw:v1'], 'gw:v1') is None


def test_history_is_bounded_keeping_the_newest():
    history = cu.merge_history([], [('img:%d' % i, None, float(i)) for i in range(60)], limit=50)
    assert len(history) == 50 and history[0]['image'] == 'img:10' and history[-1]['image'] == 'img:59'


def test_rollback_target():
    assert cu.rollback_target('v1', 'reg:5000/team/gw:v2', None, None) == ('reg:5000/team/gw:v1', None)
    assert cu.rollback_target('other/gw:v0', 'gw:v2', None, None) == ('other/gw:v0', None)
    assert cu.rollback_target(None, 'gw:v2', None, 'gw:v1') == ('gw:v1', None)
    # Already rolled back (the pin holds the current image): stays there.
    assert cu.rollback_target(None, 'gw:v1', 'gw:v1', 'gw:v2') == ('gw:v1', None)
    # Pinned by an env change to keep the newest version: a rollback still goes back.
    assert cu.rollback_target(None, 'gw:v2', 'gw:v2', 'gw:v1', newest='gw:v2') == ('gw:v1', None)
    assert cu.rollback_target(None, 'gw:v1', 'gw:v1', 'gw:v2', newest='gw:v2') == ('gw:v1', None)
    target, refusal = cu.rollback_target(None, 'gw:v1', None, None)
    assert target is None and 'no previous image' in refusal
    assert cu.repository('gw@sha256:abc') == 'gw' and cu.repository('host:5000/gw') == 'host:5000/gw'


def event(action, t, cid='a', code=None):
    attributes = {} if code is None else {'exitCode': str(code)}
    return {'Action': action, 'id': cid, 'time': t, 'Actor': {'ID': cid, 'Attributes': attributes}}


def test_crash_loop_verdict():
    events = [event('start', 90), event('die', 101, code=1), event('start', 102),
              event('die', 103, code=1), event('start', 104), event('die', 105, code=3),
              event('start', 106)]
    running = [container('gw', 10)]
    loop, crash = cu.crash_verdict(events, running, 100, 3)
    assert loop and crash == {'restarts_in_window': 3, 'dies_in_window': 3, 'last_exit_code': 3}
    loop, crash = cu.crash_verdict(events, running, 102.5, 3)
    assert not loop and crash['restarts_in_window'] == 2
    # The engine's restart count of a container created in the window counts, and 'restarting'.
    assert cu.crash_verdict([], [container('gw', 150, restart_count=4)], 100, 3)[0]
    assert not cu.crash_verdict([], [container('gw', 50, restart_count=4)], 100, 3)[0]
    loop, crash = cu.crash_verdict([], [container('gw', 50, state='restarting', exit_code=137)], 100, 3)
    assert loop and crash['last_exit_code'] == 137


def test_kernel_oom_lines_of_the_containers_only():
    cid = '5830d9a84718f148'
    text = ('[1.0] oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/docker/%s,task=python3,pid=16102,uid=0\n'
            '[1.1] Memory cgroup out of memory: Killed process 16102 (python3) total-vm:79340kB\n'
            '[2.0] Out of memory: Killed process 999 (java)\n'
            '[3.0] eth0: link up\n' % cid)
    lines = cu.kernel_oom_lines(text, [cid], [])
    assert len(lines) == 2 and '16102' in lines[1]
    assert cu.kernel_oom_lines(text, ['other'], [999]) == ['[2.0] Out of memory: Killed process 999 (java)']


TCP = '''  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:46A2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0
   2: 0100007F:46A2 0100007F:D3C4 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0
'''
TCP6 = '''  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:46A2 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0
   1: 00000000000000000000000001000000:46A2 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5252 1 0
   2: 0000000000000000FFFF00000A00000A:46A2 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5353 1 0
'''


def test_proc_net_tcp_parsing_listen_only():
    assert cu.parse_proc_net_tcp(TCP) == [{'address': '127.0.0.1', 'port': 18082, 'inode': 4242},
                                          {'address': '0.0.0.0', 'port': 8080, 'inode': 4343}]
    six = cu.parse_proc_net_tcp(TCP6)
    assert [(s['address'], s['port']) for s in six[:2]] == [('::', 18082), ('::1', 18082)]
    assert six[2]['address'] == '0:0:0:0:0:ffff:a00:a'
    listening = cu.parse_proc_net_tcp(TCP) + six
    assert cu.listeners_on(18082, listening) == {4242: '127.0.0.1', 5151: '::', 5252: '::1'}


def test_port_holders_from_a_proc_tree(tmp_path):
    proc = tmp_path
    (proc / 'net').mkdir()
    (proc / 'net' / 'tcp').write_text(TCP)
    (proc / 'net' / 'tcp6').write_text(TCP6.splitlines()[0] + '\n')
    for pid, inode, cgroup in (('10', 4242, '0::/docker/abc123\n'), ('20', 4242, '0::/user.slice\n'),
                               ('30', 4343, '0::/\n')):
        (proc / pid / 'fd').mkdir(parents=True)
        os.symlink('socket:[%d]' % inode, str(proc / pid / 'fd' / '3'))
        (proc / pid / 'cmdline').write_text('python3\0app.py\0')
        (proc / pid / 'cgroup').write_text(cgroup)
    holders = cu.port_holders(18082, [{'id': 'abc123', 'pid': None}], proc=str(proc))
    assert holders == [
        {'pid': 10, 'command': 'python3 app.py', 'address': '127.0.0.1', 'in_service': True},
        {'pid': 20, 'command': 'python3 app.py', 'address': '127.0.0.1', 'in_service': False}]
    assert cu.port_holders(18082, [{'id': 'zzz', 'pid': 20}], proc=str(proc))[1]['in_service']
    assert cu.port_holders(9, [], proc=str(proc)) == []


def test_sizes_and_factor_arithmetic():
    assert cu.parse_size('320m') == 320 * 1024 ** 2 and cu.parse_size('1G') == 1024 ** 3
    assert cu.parse_size('1.5g') == int(1.5 * 1024 ** 3) and cu.parse_size(4096) == 4096
    with pytest.raises(ValueError, match='not a size'):
        cu.parse_size('lots')
    base = {'memory': 100 * 1024 ** 2, 'nano_cpus': 500000000}
    target = cu.target_limits(base, memory_factor=1.5, cpu_factor=2)
    assert target == {'memory': 150 * 1024 ** 2, 'nano_cpus': 1000000000}
    assert cu.limits_override(target) == {'mem_limit': 150 * 1024 ** 2, 'memswap_limit': 150 * 1024 ** 2,
                                          'cpus': 1.0}
    assert cu.live_update(target) == {'Memory': 150 * 1024 ** 2, 'MemorySwap': 150 * 1024 ** 2,
                                      'NanoCpus': 1000000000}
    assert cu.target_limits(base, memory='64m', cpus=0.25) == {'memory': 64 * 1024 ** 2, 'nano_cpus': 250000000}
    assert cu.target_limits(base, cpus=1) == {'nano_cpus': 1000000000}
    with pytest.raises(ValueError, match='no'):
        cu.target_limits({'memory': 0, 'nano_cpus': 0}, memory_factor=2)
    with pytest.raises(ValueError, match='cpus instead'):
        cu.target_limits({'memory': 1, 'nano_cpus': None}, cpu_factor=2)
    with pytest.raises(ValueError, match='positive'):
        cu.target_limits(base, cpu_factor=0)


def test_idempotence_decisions():
    target = {'memory': 100, 'nano_cpus': 5}
    assert not cu.limits_differ(target, 100, 5) and cu.limits_differ(target, 100, 6)
    assert not cu.limits_differ({'memory': 100}, 100, 999)
    started = [{'started_epoch': 200.0, 'created_epoch': 50.0}]
    assert cu.due(started, None, 'started_epoch') and cu.due(started, 300, 'started_epoch')
    assert not cu.due(started, 100, 'started_epoch')
    # A crash loop starts the container again and again; it was created before: recreate it.
    assert cu.due(started, 100, 'created_epoch') and not cu.due(started, 40, 'created_epoch')
    assert cu.due([{'started_epoch': None}], 100, 'started_epoch') and cu.due([], 100, 'started_epoch')
    assert cu.env_changes({'A': '1'}, {'A': '1'}, {'A': 1}) == []
    assert cu.env_changes({'A': '1'}, {'A': '2'}, {'A': 1}) == ['A']     # running differs
    assert cu.env_changes({}, {'A': '1'}, {'A': '1'}) == ['A']           # not yet pinned
    assert cu.env_changes({'A': '1'}, {}, {'A': None, 'B': None}) == ['A']
    assert cu.env_changes({}, {'B': 'x'}, {'B': None}) == []


def test_env_drift_masks_secrets_and_ignores_image_variables():
    running = cu.env_dict(['A=1', 'API_TOKEN=t', 'PATH=/bin', 'EXTRA=x', 'EMPTY'])
    assert running['EMPTY'] == ''
    drift = cu.env_drift(running, {'A': 2, 'API_TOKEN': 'u', 'UNSET': None}, {'PATH': '/bin'})
    assert drift == [{'name': 'A', 'running': '1', 'configured': '2'},
                     {'name': 'API_TOKEN', 'running': cu.MASK, 'configured': cu.MASK},
                     {'name': 'EMPTY', 'running': '', 'configured': None},
                     {'name': 'EXTRA', 'running': 'x', 'configured': None}]


def test_compose_command_planning():
    base = cu.compose_base(['docker-compose'], '1.29.2', 'p', '/srv/p', ['/srv/p/a.yml'], '/var/o.yml')
    assert base == ['docker-compose', '-p', 'p', '--project-directory', '/srv/p', '-f', '/srv/p/a.yml',
                    '-f', '/var/o.yml']
    assert '--project-directory' not in cu.compose_base(['docker-compose'], '1.8.0', 'p', '/d', ['a'], None)
    assert cu.compose_base(['docker', 'compose'], '2.24.1', 'p', None, ['a'], None)[-2:] == ['-f', 'a']
    assert cu.action_args('restarted', 'gw') == ['restart', 'gw']
    assert cu.action_args('recreated', 'gw') == ['up', '-d', '--no-deps', '--force-recreate', 'gw']
    assert cu.action_args('env', 'gw') == ['up', '-d', '--no-deps', '--force-recreate', 'gw']
    assert cu.action_args('rolled_back', 'gw') == ['up', '-d', '--no-deps', 'gw']
    assert cu.show(['a', 'b c']) == "a 'b c'"
    assert cu.parse_compose_version('Docker Compose version v2.24.1\n') == '2.24.1'
    assert cu.parse_compose_version('1.29.2\n') == '1.29.2'
    assert cu.parse_config_hash('WARNING x\nsvc abc123\n', 'svc') == 'abc123'
    assert cu.parse_config_hash('other abc\n', 'svc') is None


def test_container_facts_and_times():
    details = {'Id': 'abc', 'Name': '/p_gw_1', 'Image': 'sha256:1', 'RestartCount': 2,
               'Created': '2026-11-23T14:00:00.123456789Z',
               'State': {'Status': 'running', 'Pid': 42, 'ExitCode': 0, 'OOMKilled': False,
                         'StartedAt': '0001-01-01T00:00:00Z', 'Health': {'Status': 'healthy'}},
               'Config': {'Image': 'gw:v1', 'Env': ['A=1'], 'Labels': {'x': 'y'}},
               'HostConfig': {'Memory': 0, 'NanoCpus': 500000000}}
    facts = cu.container_facts(details)
    assert facts['health'] == 'healthy' and facts['env'] == {'A': '1'} and facts['nano_cpus'] == 5e8
    assert facts['started_epoch'] is None and facts['created_epoch'] == pytest.approx(1795442400.123456)
    assert set(cu.public(facts)) == set(cu.PUBLIC) and cu.public(facts)['image'] == 'gw:v1'

"""Container resource maths on Docker Engine API answers shaped exactly as the engine sends them.

V1_BURNER is a real answer of GET /containers/{id}/stats?stream=false from Docker 20.10 on a
cgroup v1 host, for a `python3 -c 'while True: pass'` container run with --cpus 0.5. V2_HOG
follows the engine's cgroup v2 conversion (daemon statsV2): no percpu_usage, no max_usage, and
memory_stats.stats keys anon/file/inactive_file instead of total_*.
"""

import copy

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.resources import (
    assess,
    container_reasons,
    cpu_figures,
    cpu_limit_cores,
    cpuset_size,
    docker_container,
    event_counts,
    memory_figures,
    prometheus_containers,
    throttling_figures,
)

HOST_MEMORY = 25276510208
THRESHOLDS = {'cpu_percent': 90.0, 'memory_percent': 95.0, 'throttled_percent': 25.0}

V1_BURNER = {
    'read': '2026-11-23T18:11:52.806884251Z', 'preread': '2026-11-23T18:11:51.802219299Z',
    'pids_stats': {'current': 1}, 'num_procs': 0, 'storage_stats': {},
    'cpu_stats': {
        'cpu_usage': {'total_usage': 2727150048, 'percpu_usage': [386386994, 2340763054],
                      'usage_in_kernelmode': 20000000, 'usage_in_usermode': 2700000000},
        'system_cpu_usage': 5559560000000, 'online_cpus': 2,
        'throttling_data': {'periods': 55, 'throttled_periods': 53, 'throttled_time': 2558211187}},
    'precpu_stats': {
        'cpu_usage': {'total_usage': 2219843240, 'percpu_usage': [386386994, 1833456246],
                      'usage_in_kernelmode': 20000000, 'usage_in_usermode': 2190000000},
        'system_cpu_usage': 5557560000000, 'online_cpus': 2,
        'throttling_data': {'periods': 45, 'throttled_periods': 43, 'throttled_time': 2067557922}},
    'memory_stats': {
        'usage': 3031040, 'max_usage': 4096000,
        'stats': {'active_anon': 4096, 'active_file': 348160, 'cache': 696320, 'dirty': 0,
                  'hierarchical_memory_limit': 9223372036854771712,
                  'hierarchical_memsw_limit': 9223372036854771712, 'inactive_anon': 2330624,
                  'inactive_file': 348160, 'mapped_file': 0, 'pgfault': 1000, 'pgmajfault': 0,
                  'rss': 2334720, 'total_active_anon': 4096, 'total_active_file': 348160,
                  'total_cache': 696320, 'total_inactive_anon': 2330624,
                  'total_inactive_file': 348160, 'total_rss': 2334720, 'unevictable': 0},
        'limit': HOST_MEMORY},
    'name': '/sretest-burner', 'id': 'd44aba135ebab2a181e353d8c3cc60772b995ef06528a6b91c104ab8e7142607',
}

V2_HOG = {
    'read': '2026-11-23T18:20:01.000000001Z', 'preread': '2026-11-23T18:20:00.000000001Z',
    'pids_stats': {'current': 3, 'limit': 4915},
    'cpu_stats': {
        'cpu_usage': {'total_usage': 50000000000, 'usage_in_kernelmode': 1000000000,
                      'usage_in_usermode': 49000000000},
        'system_cpu_usage': 9004000000000, 'online_cpus': 4,
        'throttling_data': {'periods': 0, 'throttled_periods': 0, 'throttled_time': 0}},
    'precpu_stats': {
        'cpu_usage': {'total_usage': 49800000000, 'usage_in_kernelmode': 1000000000,
                      'usage_in_usermode': 48800000000},
        'system_cpu_usage': 9000000000000, 'online_cpus': 4,
        'throttling_data': {'periods': 0, 'throttled_periods': 0, 'throttled_time': 0}},
    'memory_stats': {
        'usage': 66060288,
        'stats': {'anon': 62914560, 'file': 3145728, 'kernel_stack': 16384, 'slab': 0,
                  'sock': 0, 'shmem': 0, 'file_mapped': 0, 'file_dirty': 0, 'file_writeback': 0,
                  'anon_thp': 0, 'inactive_anon': 62914560, 'active_anon': 0,
                  'inactive_file': 1048576, 'active_file': 2097152, 'unevictable': 0,
                  'slab_reclaimable': 0, 'slab_unreclaimable': 0, 'pgfault': 20000,
                  'pgmajfault': 0, 'workingset_refault': 0, 'workingset_activate': 0,
                  'workingset_nodereclaim': 0, 'pgrefill': 0, 'pgscan': 0, 'pgsteal': 0,
                  'pgactivate': 0, 'pgdeactivate': 0, 'pglazyfree': 0, 'pglazyfreed': 0,
                  'thp_fault_alloc': 0, 'thp_collapse_alloc': 0},
        'limit': 67108864},
    'name': '/sretest-hog', 'id': 'a39bc07229f06dcfe511c9ccdc7d260ea432dd31137619a4560d0b3d25ef6036',
}

# What the engine answers for a container that is not running (stream=false).
STOPPED = {'read': '0001-01-01T00:00:00Z', 'preread': '0001-01-01T00:00:00Z', 'pids_stats': {},
           'cpu_stats': {'cpu_usage': {'total_usage': 0, 'usage_in_kernelmode': 0,
                                       'usage_in_usermode': 0},
                         'throttling_data': {'periods': 0, 'throttled_periods': 0,
                                             'throttled_time': 0}},
           'precpu_stats': {'cpu_usage': {'total_usage': 0, 'usage_in_kernelmode': 0,
                                          'usage_in_usermode': 0},
                            'throttling_data': {'periods': 0, 'throttled_periods': 0,
                                                'throttled_time': 0}},
           'memory_stats': {}, 'name': '/sretest-hog', 'id': 'a39b'}

OOM_EVENT = {'status': 'oom', 'id': 'a39b', 'from': 'sre-demo/base:bookworm', 'Type': 'container',
             'Action': 'oom', 'Actor': {'ID': 'a39b', 'Attributes': {
                 'com.docker.compose.project': 'sretest', 'com.docker.compose.service': 'probe',
                 'image': 'sre-demo/base:bookworm', 'name': 'sretest-hog'}},
             'scope': 'local', 'time': 1795457508, 'timeNano': 1795457508953490798}


def die_event(cid, name, code):
    return {'status': 'die', 'id': cid, 'from': 'sre-demo/base:bookworm', 'Type': 'container',
            'Action': 'die', 'Actor': {'ID': cid, 'Attributes': {
                'com.docker.compose.project': 'sretest', 'com.docker.compose.service': 'probe',
                'exitCode': str(code), 'image': 'sre-demo/base:bookworm', 'name': name}},
            'scope': 'local', 'time': 1795457509, 'timeNano': 1795457509001592604}


def test_cpu_of_a_half_core_limit_from_cgroup_v1_stats():
    # 507 ms of CPU over 2 s of host CPU time on 2 CPUs: 0.507 cores, 101% of a 0.5-core limit.
    figures = cpu_figures(V1_BURNER, 0.5)
    assert figures['cpu_cores'] == pytest.approx(0.507, abs=0.001)
    assert figures['cpu_percent'] == 101.5
    assert figures['host_cpu_percent'] == 25.4
    assert figures['cpu_basis'] == 'limit' and figures['online_cpus'] == 2


def test_cpu_without_a_limit_is_percent_of_one_core():
    figures = cpu_figures(V1_BURNER, None)
    assert figures['cpu_percent'] == 50.7 and figures['cpu_basis'] == 'core'


def test_cpu_from_cgroup_v2_stats_uses_online_cpus():
    # 200 ms over 4 s of host time on 4 CPUs = 0.2 cores.
    figures = cpu_figures(V2_HOG, None)
    assert figures['cpu_cores'] == 0.2 and figures['cpu_percent'] == 20.0
    assert figures['host_cpu_percent'] == 5.0


def test_cpu_counts_percpu_entries_when_online_cpus_is_missing():
    stats = copy.deepcopy(V1_BURNER)
    del stats['cpu_stats']['online_cpus']
    assert cpu_figures(stats, 0.5)['cpu_percent'] == 101.5


def test_cpu_is_unknown_without_a_previous_reading():
    assert cpu_figures(STOPPED, None)['cpu_percent'] is None
    stats = copy.deepcopy(V1_BURNER)
    stats['precpu_stats'] = {'cpu_usage': {'total_usage': 0}, 'throttling_data': {}}
    assert cpu_figures(stats, None)['cpu_cores'] is None


def test_cpu_limit_from_nano_cpus_quota_or_cpuset():
    assert cpu_limit_cores({'NanoCpus': 500000000, 'CpuQuota': 0, 'CpuPeriod': 0}) == 0.5
    assert cpu_limit_cores({'NanoCpus': 0, 'CpuQuota': 150000, 'CpuPeriod': 100000}) == 1.5
    assert cpu_limit_cores({'CpuQuota': 50000, 'CpuPeriod': 0}) == 0.5
    assert cpu_limit_cores({'NanoCpus': 0, 'CpuQuota': 0, 'CpusetCpus': '0'}) == 1.0
    assert cpu_limit_cores({'NanoCpus': 3000000000, 'CpusetCpus': '0-1'}) == 2.0
    assert cpu_limit_cores({'NanoCpus': 0, 'CpuQuota': 0, 'CpuPeriod': 0, 'CpusetCpus': ''}) is None
    assert cpuset_size('0-2,4') == 4 and cpuset_size('x') is None


def test_memory_v1_subtracts_total_inactive_file_and_sees_no_limit():
    figures = memory_figures(V1_BURNER, configured_limit=0, host_memory=HOST_MEMORY)
    assert figures['memory_bytes'] == 3031040 - 348160
    assert figures['memory_limit_bytes'] == HOST_MEMORY
    assert figures['limit_set'] is False
    assert figures['memory_percent'] == 0.0


def test_memory_v2_subtracts_inactive_file_against_the_limit():
    figures = memory_figures(V2_HOG, configured_limit=67108864, host_memory=HOST_MEMORY)
    assert figures['memory_bytes'] == 66060288 - 1048576
    assert figures['memory_percent'] == 96.9
    assert figures['limit_set'] is True


def test_memory_limit_below_host_memory_counts_as_set_without_host_config():
    assert memory_figures(V2_HOG, 0, HOST_MEMORY)['limit_set'] is True
    assert memory_figures(V2_HOG, 0, None)['limit_set'] is False


def test_memory_cache_larger_than_usage_is_not_subtracted():
    stats = copy.deepcopy(V2_HOG)
    stats['memory_stats']['stats']['inactive_file'] = 70000000
    assert memory_figures(stats)['memory_bytes'] == 66060288


def test_memory_of_a_stopped_container_is_unknown():
    figures = memory_figures(STOPPED, 0, HOST_MEMORY)
    assert figures['memory_bytes'] is None and figures['memory_percent'] is None


def test_throttling_over_the_sample_and_since_start():
    figures = throttling_figures(V1_BURNER)
    assert figures['throttled_ratio'] == 1.0  # 10 of the last 10 periods
    assert figures['throttled_ratio_total'] == round(53 / 55.0, 3)
    assert figures['throttled_seconds_total'] == 2.558
    assert throttling_figures(V2_HOG) == {'throttled_ratio': 0.0, 'throttled_ratio_total': 0.0,
                                          'throttled_seconds_total': 0.0}


def test_events_count_ooms_and_only_nonzero_exits():
    counts = event_counts([OOM_EVENT, die_event('a39b', 'sretest-hog', 137),
                           die_event('c0ff', 'sretest-idle', 0), die_event('c0ff', 'sretest-idle', 1)])
    assert counts['a39b'] == {'name': 'sretest-hog', 'oom': 1, 'exit_codes': [137]}
    assert counts['c0ff'] == {'name': 'sretest-idle', 'oom': 0, 'exit_codes': [1]}


def summary(cid, name, state):
    return {'Id': cid, 'Names': ['/' + name], 'State': state, 'Status': 'x',
            'Labels': {'com.docker.compose.service': 'probe'}}


def inspect(cid, name, status, host_config, oom=False, exit_code=0, restarts=0, restarting=False):
    return {'Id': cid, 'Name': '/' + name, 'RestartCount': restarts,
            'State': {'Status': status, 'Running': status == 'running', 'Paused': False,
                      'Restarting': restarting, 'OOMKilled': oom, 'Dead': False, 'Pid': 0,
                      'ExitCode': exit_code, 'Error': '', 'StartedAt': '2026-11-23T18:11:47Z',
                      'FinishedAt': '2026-11-23T18:11:48Z'},
            'HostConfig': dict({'Memory': 0, 'NanoCpus': 0, 'CpuQuota': 0, 'CpuPeriod': 0,
                                'CpusetCpus': ''}, **host_config)}


def test_docker_container_of_a_throttled_burner():
    record = docker_container(summary('d44a', 'sretest-burner', 'running'),
                              inspect('d44a', 'sretest-burner', 'running', {'NanoCpus': 500000000}),
                              V1_BURNER, None, HOST_MEMORY)
    assert record['name'] == 'sretest-burner' and record['running'] is True
    assert record['cpu_limit_cores'] == 0.5 and record['cpu_percent'] == 101.5
    assert record['throttled_ratio'] == 1.0 and record['limit_set'] is False
    assert record['oom_kills'] == 0 and record['nonzero_exits'] == 0
    reasons, saturated = container_reasons(record, THRESHOLDS, '15m')
    assert saturated is True
    assert reasons == ['sretest-burner: cpu 102% of its 0.5-core limit > 90%',
                       'sretest-burner: CPU-throttled in 100% of CFS periods > 25%']


def test_stopped_oom_killed_container_has_state_and_null_figures():
    counts = event_counts([OOM_EVENT, die_event('a39b', 'sretest-hog', 137)])
    record = docker_container(summary('a39b', 'sretest-hog', 'exited'),
                              inspect('a39b', 'sretest-hog', 'exited', {'Memory': 67108864},
                                      oom=True, exit_code=137),
                              None, counts['a39b'], HOST_MEMORY)
    assert record['state'] == 'exited' and record['running'] is False
    assert record['cpu_percent'] is None and record['memory_percent'] is None
    assert record['throttled_ratio'] is None
    assert record['memory_limit_bytes'] == 67108864 and record['limit_set'] is True
    assert record['oom_killed_now'] is True and record['oom_kills'] == 1
    assert record['nonzero_exits'] == 1 and record['exit_codes'] == [137]
    reasons, saturated = container_reasons(record, THRESHOLDS, '15m')
    assert saturated is True
    assert reasons == ['sretest-hog: OOM-killed once in 15m',
                       'sretest-hog: not running (exited, exit code 137)',
                       'sretest-hog: exited non-zero once in 15m (exit codes 137)']


def test_oom_killed_now_counts_once_without_an_event_in_the_period():
    record = docker_container(summary('a39b', 'h', 'exited'),
                              inspect('a39b', 'h', 'exited', {}, oom=True, exit_code=137), None,
                              None)
    assert record['oom_kills'] == 1


def test_two_oom_events_count_twice_even_when_oomkilled_was_reset_by_a_restart():
    counts = event_counts([OOM_EVENT, OOM_EVENT])
    record = docker_container(summary('a39b', 'h', 'running'),
                              inspect('a39b', 'h', 'running', {'Memory': 67108864}, restarts=2),
                              V2_HOG, counts['a39b'], HOST_MEMORY)
    assert record['oom_killed_now'] is False and record['oom_kills'] == 2
    reasons, _hot = container_reasons(record, THRESHOLDS, '15m')
    assert reasons == ['h: memory 97% of its 64 MiB limit > 95%', 'h: OOM-killed 2 times in 15m']


def test_restarting_container_is_named():
    record = docker_container(summary('e1', 'loop', 'restarting'),
                              inspect('e1', 'loop', 'restarting', {}, exit_code=1, restarts=7,
                                      restarting=True), None, None)
    reasons, saturated = container_reasons(record, THRESHOLDS, '15m')
    assert reasons == ['loop: restarting now (restart count 7)'] and saturated is False


def test_no_limit_reasons_say_one_core_and_host_memory():
    record = {'name': 'gw', 'cpu_percent': 180.0, 'cpu_limit_cores': None, 'cpu_basis': 'core',
              'memory_percent': 96.0, 'memory_limit_bytes': HOST_MEMORY, 'limit_set': False,
              'throttled_ratio': 0.0, 'oom_kills': 0, 'running': True, 'state': 'running'}
    reasons, saturated = container_reasons(record, THRESHOLDS, '15m')
    assert saturated is True
    assert reasons == ['gw: cpu 180% of one core (no CPU limit) > 90%',
                       "gw: memory 96% of the host's 23.5 GiB (no memory limit) > 95%"]


def test_assess_over_a_service_with_a_removed_container():
    burner = docker_container(summary('d44a', 'b', 'running'),
                              inspect('d44a', 'b', 'running', {'NanoCpus': 2000000000}, restarts=1),
                              V1_BURNER, None, HOST_MEMORY)
    idle = docker_container(summary('c0ff', 'i', 'running'),
                            inspect('c0ff', 'i', 'running', {}, restarts=2), V2_HOG, None)
    gone = event_counts([OOM_EVENT, die_event('a39b', 'sretest-hog', 137)])
    result = assess([burner, idle], THRESHOLDS, '15m', gone)
    assert result['max_cpu_percent'] == 25.4  # 0.507 cores of a 2-core limit
    assert result['saturated'] is True and result['throttled'] is True
    assert result['oom_kills'] == 1 and result['restarts'] == 3 and result['nonzero_exits'] == 1
    assert result['running'] == 2
    assert result['reasons'][-2:] == [
        'OOM-killed once in 15m in containers since removed (sretest-hog)',
        'exited non-zero once in 15m in containers since removed']
    assert result['thresholds'] == THRESHOLDS


def test_assess_quiet_service():
    quiet = copy.deepcopy(V2_HOG)
    quiet['memory_stats']['usage'] = 8388608
    quiet['memory_stats']['limit'] = HOST_MEMORY
    idle = docker_container(summary('c0ff', 'i', 'running'), inspect('c0ff', 'i', 'running', {}),
                            quiet, None, HOST_MEMORY)
    result = assess([idle], THRESHOLDS, '15m')
    assert result['saturated'] is False and result['throttled'] is False
    assert result['reasons'] == [] and result['oom_kills'] == 0


def series(name, value, **labels):
    return {'labels': dict({'name': name}, **labels), 'time': 1795457508.0, 'value': value,
            'raw': str(value)}


def test_prometheus_series_join_by_container_and_missing_is_null():
    containers = prometheus_containers({
        'cpu_percent': [series('gw_1', 97.25), series('gw_2', 12.0)],
        'memory_percent': [series('gw_1', 40.0)],
        'throttled_ratio': [],
        'restart_count': [series('gw_1', 2.0000001)],
        'oom_kills': None,
    }, 'name', 'gw')
    assert [c['name'] for c in containers] == ['gw_1', 'gw_2']
    first, second = containers
    assert first['cpu_percent'] == 97.2 and first['memory_percent'] == 40.0
    assert first['restart_count'] == 2 and first['throttled_ratio'] is None
    assert first['oom_kills'] is None
    assert second['memory_percent'] is None and second['restart_count'] is None
    result = assess(containers, THRESHOLDS, '15m')
    assert result['max_cpu_percent'] == 97.2 and result['max_memory_percent'] == 40.0
    assert result['oom_kills'] is None and result['restarts'] == 2
    assert result['nonzero_exits'] is None and result['running'] is None
    assert result['reasons'] == ['gw_1: cpu 97% > 90%'] and result['saturated'] is True


def test_prometheus_nan_sample_is_unknown_and_labels_fall_back():
    containers = prometheus_containers({
        'cpu_percent': [{'labels': {'pod': 'api-7d9'}, 'value': None, 'raw': 'NaN'}],
        'oom_kills': [{'labels': {}, 'value': 1.9}],
    }, 'name', 'api')
    assert [(c['name'], c['cpu_percent'], c['oom_kills']) for c in containers] == [
        ('api', None, 2), ('api-7d9', None, None)]
    assert assess(containers, THRESHOLDS, '1h')['reasons'] == ['api: OOM-killed 2 times in 1h']


def test_prometheus_nothing_matched():
    result = assess(prometheus_containers({'cpu_percent': [], 'memory_percent': []}, 'name', 's'),
                    THRESHOLDS, '15m')
    assert result['max_cpu_percent'] is None and result['saturated'] is False
    assert result['oom_kills'] is None and result['restarts'] is None

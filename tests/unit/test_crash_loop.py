"""Pod Crash Loop: the symptom judged from the containers' checks (analysis/crashes.py), and the
diagnosis of a crash loop on Kubernetes and on compose, on evidence shaped as k8s_status_info and
compose_service_info return it."""

from datetime import datetime, timezone

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report as report
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.actions import action_calls
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.crashes import crash_loop_measurement
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.decisions import evidence, mitigation_step
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.diagnosis import diagnose
from ansible_collections.sre.runbooks.plugins.module_utils.notify.slack import Facts
from test_diagnosis import GW, ONSET, incident


def pod(name, ready=True, restarts=0, waiting=None, reason=None, code=None, started='2026-12-06T10:00:00Z'):
    return {'name': name, 'phase': 'Running' if ready or waiting != 'ImagePullBackOff' else 'Pending', 'ready': ready,
            'restarts': restarts, 'waiting_reason': waiting, 'waiting_message': None,
            'last_terminated_reason': reason, 'last_exit_code': code, 'started_at': started}


def k8s_checks(problems=(), pods=None, refs=None, logs=()):
    pods = pods if pods is not None else [pod('gw-1'), pod('gw-2')]
    return {'deployment': {'name': 'inference-gateway', 'replicas': len(pods),
                           'ready_replicas': sum(1 for p in pods if p['ready']), 'revision': 3},
            'pods': pods, 'problems': list(problems), 'endpoints': {'found': True, 'ready': 2, 'not_ready': 0},
            'events': [], 'oom': {'oom_killed': False, 'count': 0}, 'logs': list(logs),
            'config_refs': refs or []}


def compose_checks(crash_loop=True, restarts=4, code=1, oom=False, drift=False):
    return {'crash_loop': crash_loop, 'crash': {'restarts_in_window': restarts, 'dies_in_window': restarts,
                                                'last_exit_code': code},
            'containers': [{'id': 'c1', 'state': 'restarting' if crash_loop else 'running', 'restart_count': restarts}],
            'oom': {'oom_killed': oom}, 'config': {'valid': True, 'hash_drift': drift, 'env_drift': []}}


def crash_incident(platform, checks, changes=(), down=False):
    inc = incident()
    inc.update(platform=platform, symptom='crash_loop', service_down={'checks': checks})
    inc['triage'].update(service_down=down, changes=list(changes),
                         crash_loop=crash_loop_measurement(checks, platform),
                         error_rate=dict(inc['triage']['error_rate'], verdict='ok', error_percent=0.0))
    return inc


PULL = {'kind': 'ImagePullBackOff', 'pods': ['gw-3'], 'message': 'failed to pull image "gw:v9.9.9"'}
CONFIG = {'kind': 'CreateContainerConfigError', 'pods': ['gw-3'],
          'message': "couldn't find key UPSTREAM_TIMEOUT in ConfigMap sre/gateway-settings"}


def test_pods_that_cannot_start_are_a_crash_loop_with_their_figures():
    pods = [pod('gw-1'), pod('gw-2'), pod('gw-3', ready=False, waiting='ImagePullBackOff')]
    measured = crash_loop_measurement(k8s_checks([PULL], pods), 'kubernetes')
    assert measured['verdict'] == 'crash_loop' and measured['kinds'] == ['ImagePullBackOff']
    assert measured['affected'] == 1 and (measured['ready'], measured['replicas']) == (2, 3)
    assert measured['message'].startswith('ImagePullBackOff in 1 of 3 pods (2 of 3 ready)'), measured['message']
    assert measured['onset'] == datetime(2026, 12, 6, 10, tzinfo=timezone.utc).timestamp()


def test_a_pod_oom_killed_once_and_ready_since_is_not_a_crash_loop():
    oom = {'kind': 'OOMKilled', 'pods': ['gw-1'], 'message': 'container gw was OOM-killed'}
    pods = [pod('gw-1', restarts=1, reason='OOMKilled', code=137), pod('gw-2')]
    assert crash_loop_measurement(k8s_checks([oom], pods), 'kubernetes')['verdict'] == 'ok'
    pods[0]['ready'] = False
    measured = crash_loop_measurement(k8s_checks([oom], pods), 'kubernetes')
    assert measured['verdict'] == 'crash_loop' and (measured['reason'], measured['exit_code']) == ('OOMKilled', 137)


def test_checks_that_failed_are_the_symptom_not_measured_never_healthy():
    measured = crash_loop_measurement({'failed': True, 'msg': 'Unauthorized'}, 'kubernetes')
    assert measured == {'failed': True, 'msg': 'Unauthorized'}
    proof = evidence({'symptom': 'crash_loop', 'triage': {'crash_loop': measured}})
    assert not proof['sufficient'] and not proof['healthy']
    assert proof['gaps'] == ['the crash loop was not measured: Unauthorized']
    assert crash_loop_measurement(None, 'compose')['failed']


def test_compose_restarts_in_the_window_are_the_crash_loop():
    measured = crash_loop_measurement(compose_checks(oom=True, code=137), 'compose')
    assert measured['verdict'] == 'crash_loop' and measured['kinds'] == ['CrashLoop', 'OOMKilled']
    assert measured['message'] == ('crash loop: 4 restarts in the window, 0 of 1 containers running, '
                                   'last exit code 137 (OOM-killed)')
    healthy = crash_loop_measurement(compose_checks(crash_loop=False, restarts=0, code=None), 'compose')
    assert healthy['verdict'] == 'ok'
    assert evidence({'symptom': 'crash_loop', 'triage': {'crash_loop': healthy}})['healthy']


def test_a_new_version_that_cannot_be_pulled_is_rolled_back_while_the_old_pods_serve():
    pods = [pod('gw-1'), pod('gw-2'), pod('gw-3', ready=False, waiting='ImagePullBackOff')]
    change = {'kind': 'deploy', 'time': ONSET - 5, 'time_iso': 'T', 'seconds_before_onset': 5, 'revision': 3,
              'previous_revision': 2, 'image': GW + 'v9.9.9', 'previous_image': GW + 'v1.2.2',
              'summary': 'revision 3: image v1.2.2 -> v9.9.9'}
    d = diagnose(crash_incident('kubernetes', k8s_checks([PULL], pods), [change]))
    cause = d['recommended']
    assert (cause['cause'], cause['action']['name']) == ('crash_loop', 'rollback'), d['summary']
    assert cause['action']['params']['to_revision'] == 2
    assert cause['runbook_step'] == 'Pod Crash Loop'
    assert d['ranking']['by'] == 'confidence'


def test_a_missing_configmap_key_that_was_last_applied_is_restored():
    refs = [{'kind': 'ConfigMap', 'name': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT', 'optional': False,
             'exists': True, 'has_key': False, 'restorable': True, 'source': 'last-applied-configuration'}]
    pods = [pod('gw-1'), pod('gw-2'), pod('gw-3', ready=False, waiting='CreateContainerConfigError')]
    d = diagnose(crash_incident('kubernetes', k8s_checks([CONFIG], pods, refs)))
    action = d['action']
    assert action['name'] == 'restore_config_key', d['summary']
    assert action['params'] == {'configmap': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT'}
    assert action['disruption'] == 'none'
    assert action['calls'] == {'kubernetes': {'module': 'sre.runbooks.k8s_config_key', 'disruption': 'none', 'params': {
        'name': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT', 'source': 'last_applied'}}}
    assert 'compose' not in action_calls(action)


def test_a_missing_key_nothing_holds_is_escalated():
    refs = [{'kind': 'ConfigMap', 'name': 'gateway-settings', 'key': 'UPSTREAM_TIMEOUT', 'optional': False,
             'exists': True, 'has_key': False, 'restorable': False, 'source': None}]
    d = diagnose(crash_incident('kubernetes', k8s_checks([CONFIG], refs=refs)))
    assert d['action']['name'] == 'escalate'
    assert 'key UPSTREAM_TIMEOUT of ConfigMap sre/gateway-settings' in d['recommended']['evidence'][0] or \
        'UPSTREAM_TIMEOUT' in d['action']['params']['reason'], d


def test_a_compose_crash_loop_after_a_new_image_is_rolled_back():
    change = {'kind': 'deploy', 'time': ONSET - 20, 'time_iso': 'T', 'seconds_before_onset': None,
              'image': GW + 'v1.2.5', 'previous_image': GW + 'v1.2.2', 'summary': 'image v1.2.2 -> v1.2.5'}
    inc = crash_incident('compose', compose_checks(), [change])
    d = diagnose(inc)
    assert (d['recommended']['cause'], d['action']['name']) == ('crash_loop', 'rollback'), d['summary']
    assert d['action']['params']['to_image'] == GW + 'v1.2.2'
    assert any('before the crashes' in line for line in d['recommended']['evidence']), d['recommended']['evidence']


def test_a_compose_crash_loop_with_nothing_to_blame_is_restarted_once():
    d = diagnose(crash_incident('compose', compose_checks()))
    assert d['action']['name'] == 'restart' and d['action']['description'].startswith('restart the service once')
    assert [c['action']['name'] for c in d['plan']] == ['restart']
    # OOM kills earlier in the window (the memory fault, its limit since raised) are another story
    # when the containers now exit 1; exiting 137, they are this one.
    inc = crash_incident('compose', compose_checks(code=1))
    inc['investigate']['resources'].update(oom_kills=3)
    assert diagnose(inc)['action']['name'] == 'restart'
    inc = crash_incident('compose', compose_checks(code=137))
    inc['investigate']['resources'].update(oom_kills=3)
    assert diagnose(inc)['action']['name'] == 'resources'


def test_the_channels_and_the_document_name_the_runbook_and_the_containers():
    inc = crash_incident('compose', compose_checks())
    inc.update(id='inference-gateway-1', started_at='2026-12-06T10:00:00Z', severity='warning', priority='P2')
    message = Facts(inc, {}, datetime(2026, 12, 6, 10, 5, tzinfo=timezone.utc))
    assert message.title().startswith('Pod Crash Loop')
    assert message.rates('0%')[0] == ('Containers', inc['triage']['crash_loop']['message'])
    assert report.file_stem(datetime(2026, 12, 6, 10, 5), 'crash_loop')[1] == 'incident-20261206-1005-pod-crash-loop'
    postmortem = {'attendees': list(report.DEFAULT_ATTENDEES), 'organizer': None, 'within_hours': 48, 'duration_minutes': 60}
    event = report.postmortem_event(inc, postmortem)
    document = report.render_markdown(inc, [], event, 'x.ics')
    assert document.startswith('# Incident inference-gateway-1: pod crash loop on inference-gateway')
    assert '### Containers\n\ncrash loop: 4 restarts in the window' in document


def test_a_compose_crash_loop_after_a_recreate_with_the_same_image_is_not_the_deploys():
    """The crash fault after an earlier deploy: the containers that crash were made by a recreate
    with other settings, not by the deploy; the drifted configuration is recreated."""
    deploy = {'kind': 'deploy', 'time': ONSET - 300, 'time_iso': 'T', 'seconds_before_onset': None,
              'image': GW + 'v1.2.2', 'previous_image': GW + 'v1.2.3', 'summary': 'image v1.2.3 -> v1.2.2'}
    recreate = {'kind': 'deploy', 'time': ONSET - 10, 'time_iso': 'T', 'seconds_before_onset': None,
                'image': GW + 'v1.2.2', 'previous_image': GW + 'v1.2.2', 'summary': 'recreated, image v1.2.2'}
    d = diagnose(crash_incident('compose', compose_checks(drift=True), [deploy, recreate]))
    assert d['action']['name'] == 'recreate', d['summary']


def test_partial_logs_refuse_a_rollback_saying_it_is_the_logs():
    """A disruptive action is not taken on partial evidence, and the refusal names the part."""
    change = {'kind': 'deploy', 'time': ONSET - 20, 'time_iso': 'T', 'seconds_before_onset': None,
              'image': GW + 'v1.2.5', 'previous_image': GW + 'v1.2.2', 'summary': 'image v1.2.2 -> v1.2.5'}
    inc = crash_incident('compose', compose_checks(), [change])
    inc['investigate']['logs']['partial'] = True
    inc['diagnosis'] = diagnose(inc)
    assert inc['diagnosis']['partial_reasons'] == ['the logs are partial']
    step = mitigation_step(inc, 1, mode='auto', allowed_actions=['rollback'])
    assert step['decision'] == 'insufficient'
    assert step['reason'] == 'not enough evidence to rollback to v1.2.2, which interrupts the service: the logs are partial'


def test_a_crash_loop_after_a_change_of_settings_rolls_back_the_revision():
    """kubectl set env on the same image, then a crash loop: the revision before it is the target,
    and its image (the same) is not a version known bad."""
    change = {'kind': 'deploy', 'time': ONSET - 8, 'time_iso': 'T', 'seconds_before_onset': 8, 'revision': 6,
              'previous_revision': 5, 'image': GW + 'v1.2.2', 'previous_image': GW + 'v1.2.2',
              'settings': ['env MODEL_SERVICE_URL'], 'summary': 'revision 6: env MODEL_SERVICE_URL changed'}
    crash = {'kind': 'CrashLoopBackOff', 'pods': ['gw-1'], 'message': 'container gw keeps crashing (3 restarts)'}
    pods = [pod('gw-1', ready=False, restarts=3, waiting='CrashLoopBackOff', reason='Error', code=1)]
    logs = ['config error: MODEL_SERVICE_URL \'not-a-url\' is not a URL']
    d = diagnose(crash_incident('kubernetes', k8s_checks([crash], pods, logs=logs), [change], down=True))
    assert (d['recommended']['cause'], d['action']['name']) == ('service_down', 'rollback'), d['summary']
    assert d['action']['params']['to_revision'] == 5 and not d['refused']
    restart = dict(change, settings=[], summary='revision 6: restarted')
    d = diagnose(crash_incident('kubernetes', k8s_checks([crash], pods, logs=logs), [restart], down=True))
    assert d['action']['name'] == 'restart', d['summary']


def test_an_undone_revision_keeps_its_old_time_and_is_not_taken_for_a_bad_version():
    """v1.2.2 (revision 5), v9.9.9 (6), undone to v1.2.2 as revision 7, whose ReplicaSet keeps the
    time it was made (before 6): v9.9.9 is the version rolled back, not v1.2.2."""
    def rev(number, image, previous, time, settings=()):
        return {'kind': 'deploy', 'time': time, 'time_iso': 'T', 'seconds_before_onset': ONSET - time, 'revision': number,
                'image': GW + image, 'previous_image': GW + previous, 'settings': list(settings),
                'summary': 'revision %d' % number}
    changes = [rev(5, 'v1.2.2', 'v1.2.3', ONSET - 600), rev(6, 'v9.9.9', 'v1.2.2', ONSET - 300),
               rev(7, 'v1.2.2', 'v9.9.9', ONSET - 600), rev(8, 'v1.2.2', 'v1.2.2', ONSET - 10, ['env MODEL_SERVICE_URL'])]
    crash = {'kind': 'CrashLoopBackOff', 'pods': ['gw-1'], 'message': 'container gw keeps crashing (3 restarts)'}
    pods = [pod('gw-1', ready=False, restarts=3, waiting='CrashLoopBackOff', reason='Error', code=1)]
    d = diagnose(crash_incident('kubernetes', k8s_checks([crash], pods), changes, down=True))
    assert d['action']['name'] == 'rollback' and not d['refused'], (d['summary'], d['refused'])


LIVENESS = {'kind': 'LivenessProbe', 'pods': ['gw-1'],
            'message': 'container gw restarted 3 times, killed by its liveness probe: Liveness probe failed: '
                       'Get "http://10.244.0.7:8000/health": context deadline exceeded'}


def test_containers_killed_by_their_liveness_probe_are_restarted_once_or_their_change_rolled_back():
    pods = [pod('gw-1', ready=False, restarts=3, waiting='CrashLoopBackOff', reason='Error', code=137), pod('gw-2')]
    crash = {'kind': 'CrashLoopBackOff', 'pods': ['gw-1'], 'message': 'container gw keeps crashing (3 restarts)'}
    checks = k8s_checks([crash, LIVENESS], pods)
    measured = crash_loop_measurement(checks, 'kubernetes')
    assert measured['kinds'] == ['CrashLoopBackOff', 'LivenessProbe'] and measured['exit_code'] == 137
    d = diagnose(crash_incident('kubernetes', checks))
    assert d['action']['name'] == 'restart' and d['action']['description'].startswith(
        'rollout restart inference-gateway once: its liveness probe kills the containers'), d['summary']
    assert any(line.startswith('LivenessProbe in 1 pod (gw-1): container gw restarted 3 times, killed by its liveness probe')
               for line in d['recommended']['evidence']), d['recommended']['evidence']
    probes = {'kind': 'deploy', 'time': ONSET - 30, 'time_iso': 'T', 'seconds_before_onset': 30, 'revision': 4,
              'previous_revision': 3, 'image': GW + 'v1.2.2', 'previous_image': GW + 'v1.2.2',
              'settings': ['probes of inference-gateway'], 'summary': 'revision 4: probes of inference-gateway changed'}
    d = diagnose(crash_incident('kubernetes', checks, [probes]))
    assert d['action']['name'] == 'rollback' and d['action']['params']['to_revision'] == 3, d['summary']
    assert 'the liveness probe kills the containers' in d['recommended']['evidence']
    # A Deployment's first revision is no change to undo: nothing came before it.
    created = dict(probes, revision=1, previous_revision=None, previous_image=None, settings=[],
                   summary='revision 1: sre-demo/inference-gateway:v1.2.2')
    assert diagnose(crash_incident('kubernetes', checks, [created]))['action']['name'] == 'restart'
    # Killed once, ready since: an older story.
    healed = k8s_checks([LIVENESS], [pod('gw-1', restarts=1, reason='Error', code=137), pod('gw-2')])
    assert crash_loop_measurement(healed, 'kubernetes')['verdict'] == 'ok'

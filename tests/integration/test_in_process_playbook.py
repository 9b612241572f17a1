"""The observe modules, and the acting ones over an HTTP API, in the controller process: a task on
a local connection runs in ansible-playbook's own process (plugins/action, plugin_utils/in_process.py)
and must return what the module returns when it runs as a process, failures included, without
leaking a no_log value.

The Prometheus here answers as the Prometheus HTTP API does (/api/v1/query and query_range, their
success envelope, vectors and matrices), Slack as its Web API does (chat.postMessage: HTTP 200 with
ok true or false), PagerDuty as its Events API v2 does (202 and its success body); the rig is not used.
"""

import json
import os
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import COLLECTIONS, ROOT, LocalServer, Route, run_module
from test_api_errors import free_port

TOKEN = 's3cr3t-in-process-token'
AT = 1795446000.0  # 2026-11-23T15:00:00Z
ONSET = AT - 600
CLASS = re.compile(r"<class '[\w.]+'>")


def prometheus(handler):
    """/predict fails at 30% for ten minutes, /embed is fine; no errors a day before."""
    query = parse_qs(urlparse(handler.path).query)
    promql = query['query'][0]
    errors = 'status=~' in promql
    if handler.path.startswith('/api/v1/query_range'):
        start, end = float(query['start'][0]), float(query['end'][0])
        step = float(query['step'][0].rstrip('s'))
        times = [start + i * step for i in range(int((end - start) / step) + 1)]
        values = [[t, str((3.0 if t >= ONSET else 0.0) if errors else 20.0)] for t in times]
        return Route(body={'status': 'success', 'data': {'resultType': 'matrix', 'result': [
            {'metric': {}, 'values': values}]}})
    rates = {'/predict': 3.0, '/embed': 0.0} if errors else {'/predict': 10.0, '/embed': 10.0}
    if 'offset' in promql and errors:
        rates = {}
    return Route(body={'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': {'endpoint': endpoint}, 'value': [AT, str(rate)]}
        for endpoint, rate in rates.items()]}})


@pytest.fixture(scope='module')
def fake():
    server = LocalServer()
    server.routes['/api/v1/query'] = server.routes['/api/v1/query_range'] = prometheus
    server.routes['/health'] = Route(body={'status': 'ok', 'dependencies': {'db': 'up'}})
    server.routes['/slack/chat.postMessage'] = Route(body={
        'ok': True, 'channel': 'C0INCIDENT', 'ts': '1795446000.000100', 'message': {'text': 'x'}})
    server.routes['/slack-refusing/chat.postMessage'] = Route(body={'ok': False, 'error': 'channel_not_found'})
    server.routes['/v2/enqueue'] = Route(202, {'status': 'success', 'message': 'Event processed',
                                               'dedup_key': 'inference-gateway-1'})
    yield server
    server.close()


def cases(url, down):
    """(task name, module, args): each runs in the playbook and as a module process."""
    rate = {'url': url, 'service': 'inference-gateway', 'at': '%d' % AT, 'bearer_token': TOKEN}
    slack = {'token': TOKEN, 'channel': 'C0INCIDENT', 'api_url': url + '/slack', 'retries': 0}
    return [
        ('error_rate', 'error_rate', rate),
        ('error_rate_bad_value', 'error_rate', dict(rate, window='often')),
        ('error_rate_bad_type', 'error_rate', dict(rate, warning_percent='lots')),
        ('error_rate_missing', 'error_rate', {'url': url}),
        ('error_rate_unknown', 'error_rate', dict(rate, bogus=1)),
        ('error_rate_unreachable', 'error_rate', dict(rate, url=down, timeout=1, retries=0)),
        ('service_health', 'service_health', {'checks': [
            {'name': 'health', 'url': url + '/health', 'query': 'dependencies'},
            {'name': 'down', 'url': down + '/health', 'timeout': 1}]}),
        ('service_health_bad_url', 'service_health', {'checks': [{'url': 'ftp://x'}]}),
        ('prometheus_query', 'prometheus_query', {'url': url, 'query': 'up', 'time': '%d' % AT,
                                                  'username': 'ops', 'password': TOKEN}),
        ('slack_notify', 'slack_notify', dict(slack, text='rolled back to v1.2.2')),
        ('slack_notify_refused', 'slack_notify', dict(slack, text='x', api_url=url + '/slack-refusing')),
        ('slack_notify_constraint', 'slack_notify', {'token': TOKEN, 'text': 'no channel'}),
        ('pagerduty_event', 'pagerduty_event', {'routing_key': TOKEN, 'event_action': 'acknowledge',
                                                'dedup_key': 'inference-gateway-1', 'events_url': url}),
        ('statuspage_bad_component', 'statuspage_incident', {'api_key': TOKEN, 'page_id': 'p', 'name': 'x',
                                                             'components': {'c1': 'on fire'}, 'api_url': url}),
    ]


def playbook(tasks):
    return [{
        'name': 'Observe modules on the controller', 'hosts': 'localhost', 'gather_facts': False,
        'tasks': [{'name': name, 'sre.runbooks.' + module: args, 'register': name,
                   'ignore_errors': True} for name, module, args in tasks] + [
            {'name': 'Results', 'ansible.builtin.debug': {
                'msg': {name: '{{ %s }}' % name for name, _module, _args in tasks}}}],
    }]


def comparable(result):
    """A result without what differs from run to run, or that a registered result never has
    (invocation: shown at -vvv only), or that Ansible adds (exception)."""
    result = {k: v for k, v in result.items() if k not in
              ('changed', 'failed', 'warnings', 'exception', 'invocation') or k == 'failed' and v}
    for check in result.get('checks', []):
        check.pop('latency_ms')
    if 'by_name' in result:
        result['by_name'] = {k: {f: v for f, v in check.items() if f != 'latency_ms'}
                             for k, check in result['by_name'].items()}
    return result


@pytest.fixture(scope='module')
def ran(fake, tmp_path_factory):
    """The cases through ansible-playbook at -vvv: (its output, its result of each case)."""
    tasks = cases(fake.url, 'http://127.0.0.1:%d' % free_port())
    path = tmp_path_factory.mktemp('in_process') / 'playbook.yml'
    path.write_text(json.dumps(playbook(tasks)))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal',
               ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                           str(path), '-vvv'], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    return output, tasks, json.loads(proc.stdout.rsplit('=> ', 1)[1])['msg']


def test_results_equal_the_module_process(ran):
    _output, tasks, results = ran
    for name, module, args in tasks:
        if name == 'error_rate_unknown':
            continue  # run as `python -m`, the module calls itself basic.py in this message
        expected = run_module(module, args)
        if name in ('error_rate_bad_type', 'error_rate_missing'):
            # Argument validation fails before the module's code runs, with the same message but
            # for the class of a value: ansible-core 2.19 tags the strings of a task with their origin.
            assert results[name]['failed'] is True, name
            assert CLASS.sub('<class>', results[name]['msg']) == CLASS.sub('<class>', expected['msg'])
        else:
            assert comparable(results[name]) == comparable(expected), name


def test_the_results_are_those_expected(ran):
    _output, _tasks, results = ran
    assert results['error_rate']['verdict'] == 'critical'
    assert results['error_rate']['changed'] is False
    assert results['error_rate_bad_value']['msg'].startswith('invalid option: ')
    assert 'cannot reach Prometheus' in results['error_rate_unreachable']['msg']
    assert results['error_rate_unreachable']['queries']
    assert "argument 'warning_percent' is of type" in results['error_rate_bad_type']['msg']
    assert results['error_rate_missing']['msg'] == 'missing required arguments: service'
    assert results['error_rate_unknown']['msg'].startswith(
        'Unsupported parameters for (sre.runbooks.error_rate) module: bogus. Supported parameters '
        'include: at, baseline_offset,')
    health = results['service_health']
    assert health['failed_checks'] == ['down'] and health['by_name']['health']['extracted'] == {
        'db': 'up'}
    assert 'must start with http://, https:// or /' in results['service_health_bad_url']['msg']
    assert results['prometheus_query']['series'][0]['labels'] == {'endpoint': '/predict'}
    assert results['slack_notify']['changed'] is True and results['slack_notify']['ts'] == '1795446000.000100'
    assert 'channel_not_found' in results['slack_notify_refused']['msg']
    assert results['slack_notify_constraint']['msg'] == 'missing parameter(s) required by \'token\': channel'
    assert results['pagerduty_event']['changed'] is True and results['pagerduty_event']['status'] == 'success'
    assert results['statuspage_bad_component']['msg'].startswith('invalid component statuses (c1: on fire)')


def test_no_module_process_and_no_secret_in_the_output(ran):
    output, _tasks, results = ran
    assert 'Using module file' not in output and 'AnsiballZ' not in output
    assert TOKEN not in output and TOKEN not in json.dumps(results)
    # -vvv shows each task's invocation, as for a module: the no_log options masked.
    assert '"bearer_token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in output
    assert '"password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in output

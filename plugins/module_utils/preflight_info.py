# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.preflight_info: whether the runbook can work with an inventory's live systems.

Each check is a row {area, check, status: pass | warn | fail, detail, fix}. The checks of one
call run concurrently; a check that cannot start because another failed (no Prometheus, no
engine) is left out rather than failed twice. The sources that the runbook reads through its
own collectors (health, logs, traces, resources) are checked by those collectors, run on a short
window: what passes here is what the runbook will read.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import (
    METRIC_ARGS,
    label_selector,
    label_uses,
    metric_matchers,
    missing_labels,
    service_series,
    status_values_warning,
)
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ENDPOINT_ARGS, ApiError, HttpClient
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, human_duration, parse_duration
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import DOCKER_ARGS, docker_client, list_containers
from ansible_collections.sre.runbooks.plugins.module_utils.error_rate_info import label_calls, short_error
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8sError, api_errors, k8s_api_client, kube
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import PrometheusClient
from ansible_collections.sre.runbooks.plugins.module_utils.slo_budget_info import first_value, history_plan

# Every access the runbook's Kubernetes modules use, as `kubectl auth can-i` names it:
# (verb, API group, resource, subresource, what needs it).
K8S_ACCESS = (
    ('get', 'apps', 'deployments', '', 'status, rollback, scale'),
    ('patch', 'apps', 'deployments', '', 'rollback, restart, scale, env, resources'),
    ('list', 'apps', 'replicasets', '', 'revisions and recent changes'),
    ('list', '', 'pods', '', 'pod status and logs'),
    ('get', '', 'pods', 'log', 'error logs'),
    ('list', '', 'events', '', 'recent changes, failure reasons'),
    ('get', '', 'services', '', 'service health: the Service itself'),
    ('get', '', 'endpoints', '', 'service health'),
    ('get', '', 'services', 'proxy', 'health checks through the API server'),
    ('list', 'autoscaling', 'horizontalpodautoscalers', '', 'scale through the HPA'),
    ('patch', 'autoscaling', 'horizontalpodautoscalers', '', 'scale through the HPA'),
    ('patch', '', 'configmaps', '', 'feature flags in a ConfigMap'),
)

# A PagerDuty Events API v2 integration (routing) key: 32 characters, letters and digits.
ROUTING_KEY = re.compile(r'[A-Za-z0-9]{32}')
SLACK_CHANNEL_ID = re.compile(r'[CGD][A-Z0-9]{6,}')

SPEC = dict(argument_spec=dict(
    ENDPOINT_ARGS, **METRIC_ARGS,
    url=dict(type='str'),
    group_by=dict(type='str', default='endpoint'),
    window=dict(type='str', default='5m'),
    min_request_rate=dict(type='float', default=0.1),
    slo_window=dict(type='str', default='30d'),
    rules=dict(type='list', elements='str', default=[]),
    sources=dict(type='dict', default={}),
    rows=dict(type='list', elements='dict', default=[]),
    docker=dict(type='dict', options=dict(
        DOCKER_ARGS,
        compose_project=dict(type='str'),
        state_dir=dict(type='path', required=True),
    )),
    kubernetes=dict(type='dict', options=dict(
        kubeconfig=dict(type='path'),
        context=dict(type='str'),
        namespace=dict(type='str', default='default'),
        request_timeout=dict(type='float', default=10.0),
    )),
    slack=dict(type='dict', options=dict(
        token=dict(type='str', no_log=True),
        webhook_url=dict(type='str', no_log=True),
        channel=dict(type='str'),
        api_url=dict(type='str', default='https://slack.com/api'),
    )),
    pagerduty=dict(type='dict', options=dict(
        routing_key=dict(type='str', no_log=True),
        escalation_routing_key=dict(type='str', no_log=True),
        api_token=dict(type='str', no_log=True),
        api_url=dict(type='str', default='https://api.pagerduty.com'),
        from_email=dict(type='str'),
    )),
    statuspage=dict(type='dict', options=dict(
        api_key=dict(type='str', no_log=True),
        page_id=dict(type='str'),
        component_id=dict(type='str'),
        api_url=dict(type='str', default='https://api.statuspage.io/v1'),
    )),
))


def row(area: str, check: str, status: str, detail: str, fix: str = '') -> dict[str, Any]:
    return {'area': area, 'check': check, 'status': status, 'detail': detail, 'fix': fix}


# ------------------------------------------------------------------------------ Prometheus

def prometheus_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    client = PrometheusClient(HttpClient.from_params(p, 'Prometheus'))
    http = client.http
    try:
        response = http.request('GET', '/api/v1/status/buildinfo')
    except ApiError as err:
        return [row('prometheus', 'reachable', 'fail', str(err),
                    'set ca_path in runbook_prometheus_auth to the CA that signed its certificate'
                    if 'CERTIFICATE_VERIFY_FAILED' in str(err) else
                    'set runbook_prometheus_url to the Prometheus base URL')]
    if response.status in (401, 403):
        return [row('prometheus', 'auth', 'fail', 'Prometheus at %s answered HTTP %s'
                    % (p['url'], response.status),
                    'set runbook_prometheus_auth (bearer_token, or username and password) to '
                    'credentials it accepts')]
    try:
        version = http.expect_json(response, http.url_for('/api/v1/status/buildinfo'))['data']['version']
    except (ApiError, KeyError, TypeError):
        version = 'version unknown'
    auth = 'bearer token' if p['bearer_token'] else 'basic auth' if p['username'] else 'no auth'
    rows = [row('prometheus', 'reachable', 'pass', '%s (%s, %s)' % (p['url'], version, auth))]

    now = time.time()
    slo_window = parse_duration(p['slo_window'])
    _span, recent_step, window_step = history_plan(slo_window)  # the steps the SLO reads history at
    series = service_series(p)
    selected = p['metric'] + label_selector(metric_matchers(p))
    # The label check the runbook's own modules run (labels, status_values), and the rest.
    calls = dict(label_calls(client, p, now - 3600, now), **{
        'services': lambda: client.label_values(p['service_label'], p['metric'], now - 3600, now),
        'rate': lambda: client.query('sum(rate(%s[%s]))' % (selected, p['window'])),
        'first': lambda: client.query('min(min_over_time(timestamp(%s)[%s:%s]))' % (
            selected, p['slo_window'], format_duration(window_step or recent_step))),
        'rules': lambda: http.get_json('/api/v1/rules', query={'type': 'record'}),
    })
    outcomes = run_all(calls)
    labels, failure = outcomes['labels']
    if failure is not None:
        return rows + [row('prometheus', 'series', 'fail', short_error(failure),
                           'check the URL is the Prometheus base URL')]
    present = [name for name in labels[0] if name != '__name__']
    if not present:
        services: list[str] = (outcomes['services'][0] or ([], []))[0]
        known = ', '.join(services[:10]) if services else 'none: the metric has no series'
        return rows + [row('prometheus', 'series', 'fail',
                           'no series of %s in the last hour; %s of %s: %s'
                           % (series, p['service_label'], p['metric'], known),
                           'set triage_metric, triage_service_label or the service name '
                           '(inventory host or triage_service)')]
    rows.append(row('prometheus', 'series', 'pass', '%s: labels %s' % (series, ', '.join(present))))
    uses = label_uses(p, p['group_by'] or None)
    problem = missing_labels(present, uses, series)
    if problem:
        found, advice = problem.split('; ', 1)
        return rows + [row('prometheus', 'labels', 'fail', found, advice)]
    rows.append(row('prometheus', 'labels', 'pass', 'every label the queries use is there: %s'
                    % ', '.join(label for _option, label in uses)))
    rows.append(status_row(outcomes['status_values'], p))
    rows.append(traffic_row(outcomes['rate'], p))
    rows.append(history_row(outcomes['first'], now, slo_window, p['slo_window']))
    if p['rules']:
        rows.append(rules_row(outcomes['rules'], p['rules']))
    return rows


def status_row(outcome: tuple[Any, BaseException | None], p: dict[str, Any]) -> dict[str, Any]:
    values, err = outcome
    if err is not None:
        return row('prometheus', 'status values', 'warn', 'not read: %s' % short_error(err))
    values = values[0]
    if not values:
        return row('prometheus', 'status values', 'warn', "status_label '%s' has no values in the "
                   'last hour' % p['status_label'], 'check triage_status_label')
    problem = status_values_warning(values, p['status_label'], p['status_regex'])
    if problem:
        return row('prometheus', 'status values', 'fail', problem.split(': ')[0], problem.split(': ', 1)[-1])
    return row('prometheus', 'status values', 'pass', "%s: %s" % (p['status_label'], ', '.join(values[:12])))


def traffic_row(outcome: tuple[Any, BaseException | None], p: dict[str, Any]) -> dict[str, Any]:
    result, err = outcome
    if err is not None:
        return row('prometheus', 'traffic', 'fail', short_error(err))
    rate = first_value(result)
    if not rate:
        return row('prometheus', 'traffic', 'warn', 'no requests over the last %s' % p['window'],
                   'the runbook will say "not enough evidence" until the service has traffic')
    detail = '%.3g req/s over the last %s (minimum %g)' % (rate, p['window'], p['min_request_rate'])
    if rate < p['min_request_rate']:
        return row('prometheus', 'traffic', 'warn', detail + ': too little to judge',
                   'the runbook will not act on it; lower triage_min_request_rate only if a '
                   'few errors a minute matter for this service')
    return row('prometheus', 'traffic', 'pass', detail)


def history_row(outcome: tuple[Any, BaseException | None], now: float, slo_window: float, slo_text: str) -> dict[str, Any]:
    result, err = outcome
    if err is not None:
        return row('prometheus', 'history', 'warn', 'not read: %s' % short_error(err))
    first = first_value(result)
    if first is None:
        return row('prometheus', 'history', 'warn', 'no samples of the service over the SLO window')
    held = now - first
    detail = '%s of data held against an SLO window of %s' % (human_duration(held), slo_text)
    if held < slo_window * 0.95:
        return row('prometheus', 'history', 'warn', detail + ': SLO figures cover only what is held',
                   'raise Prometheus retention (--storage.tsdb.retention.time), or read the SLO '
                   'from long-term storage (Thanos, Mimir) or recording rules')
    return row('prometheus', 'history', 'pass', detail)


def rules_row(outcome: tuple[Any, BaseException | None], wanted: list[str]) -> dict[str, Any]:
    payload, err = outcome
    if err is not None:
        return row('prometheus', 'recording rules', 'warn', 'not read: %s' % short_error(err))
    names = {rule.get('name') for group in (payload.get('data') or {}).get('groups') or []
             for rule in group.get('rules') or []}
    missing = [name for name in wanted if name not in names]
    if missing:
        return row('prometheus', 'recording rules', 'warn', 'absent: %s' % ', '.join(missing),
                   'the SLO figures are computed from the raw series over the history held')
    return row('prometheus', 'recording rules', 'pass', ', '.join(wanted))


# ------------------------------------------------------------------------------ sources

def source_row(name: str, result: Any) -> dict[str, Any]:
    """The row of a source from the registered result of the collector task that read it."""
    if not isinstance(result, dict) or not result or result.get('skipped'):
        return row(name, 'answers', 'fail', 'not read: the task that reads it did not run')
    if result.get('failed') or result.get('unreachable'):
        return row(name, 'answers', 'fail', result.get('msg') or 'failed')
    failing = [c for c in result.get('checks') or [] if not c.get('ok')]
    if failing:
        return row(name, 'answers', 'fail', '; '.join(
            '%s: %s' % (c.get('name'), c.get('error') or 'HTTP %s' % c.get('status'))
            for c in failing), 'check the URL, and that the service is up')
    detail = source_detail(result)
    if result.get('warnings'):
        return row(name, 'answers', 'warn', '%s; %s' % (detail, '; '.join(result['warnings'])))
    return row(name, 'answers', 'pass', detail)


def source_detail(result: dict[str, Any]) -> str:
    """What a source's reader found, in a line: its own summary where it has one."""
    if 'checks' in result:
        return ', '.join('%s %s (%.0f ms)' % (c.get('name'), c.get('status'), c.get('latency_ms') or 0)
                         for c in result['checks'])
    if result.get('summary') or result.get('message'):
        return result.get('summary') or result['message']
    return '%s: %d container(s) read, %s running' % (
        result.get('source'), len(result.get('containers') or []), result.get('running'))


# ------------------------------------------------------------------------------ Docker host

def docker_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [state_dir_row(p['state_dir'])]
    try:
        client = docker_client(p)
        version = client.get_json('/version')
    except ApiError as err:
        return rows + [row('docker', 'engine', 'fail', str(err),
                           'check triage_docker_host, and that the user can read the socket')]
    rows.append(row('docker', 'engine', 'pass', 'Docker %s (API %s) at %s' % (
        version.get('Version'), version.get('ApiVersion'), p['docker_host'])))
    try:
        containers = list_containers(client, p['service'], p['compose_project'])
    except ApiError as err:
        return rows + [row('docker', 'compose service', 'fail', str(err))]
    where = 'compose project %s' % p['compose_project'] if p['compose_project'] else 'any compose project'
    if not containers:
        return rows + [row('docker', 'compose service', 'fail', 'no container of service %s in %s'
                           % (p['service'], where),
                           'check the service name and triage_compose_project')]
    running = [c for c in containers if c.get('State') == 'running']
    detail = '%s in %s: %d container(s), %d running (%s)' % (
        p['service'], where, len(containers), len(running),
        ', '.join(sorted({c.get('Image', '?') for c in containers})))
    return rows + [row('docker', 'compose service', 'pass' if running else 'warn', detail,
                       '' if running else 'no container runs: the runbook will start with the '
                       'service-down checks')]


def state_dir_row(path: str) -> dict[str, Any]:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix='.preflight-'):
            pass
    except OSError as err:
        return row('docker', 'state dir', 'fail', 'cannot write in %s: %s' % (path, err.strerror or err),
                   'create it writable by the SSH user, or set mitigate_state_dir')
    return row('docker', 'state dir', 'pass', '%s is writable' % path)


# ------------------------------------------------------------------------------ Kubernetes

def kubernetes_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        api_client = k8s_api_client(p)
        client = kube().client
        version = client.VersionApi(api_client).get_code(_request_timeout=p['request_timeout'])
    except K8sError as err:
        return [row('kubernetes', 'API server', 'fail', str(err))]
    except api_errors() as err:
        return [row('kubernetes', 'API server', 'fail', 'cannot reach the API server: %s'
                    % short_error(str(err).splitlines()[0]),
                    'check the kubeconfig, context and that the API server is up')]
    rows = [row('kubernetes', 'API server', 'pass', 'Kubernetes %s' % version.git_version)]
    authz = client.AuthorizationV1Api(api_client)

    def can(verb: str, group: str, resource: str, subresource: str) -> tuple[Any, Any]:
        review = {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SelfSubjectAccessReview',
                  'spec': {'resourceAttributes': {
                      'namespace': p['namespace'], 'verb': verb, 'group': group,
                      'resource': resource, 'subresource': subresource}}}
        answer = authz.create_self_subject_access_review(review, _request_timeout=p['request_timeout'])
        return answer.status.allowed, answer.status.reason

    outcomes = run_all({access: (lambda a=access: can(*a[:4])) for access in K8S_ACCESS})
    denied: list[str] = []
    unknown: list[str] = []
    for access in K8S_ACCESS:
        answer, failure = outcomes[access]
        name = '%s %s%s%s' % (access[0], access[2], '/' + access[3] if access[3] else '',
                              '.' + access[1] if access[1] else '')
        if failure is not None:
            unknown.append('%s (%s)' % (name, short_error(str(failure).splitlines()[0])))
        elif not answer[0]:
            denied.append('%s: %s' % (name, access[4]))
    if unknown:
        rows.append(row('kubernetes', 'access', 'fail', 'could not ask: %s' % '; '.join(unknown),
                        'the credentials must be allowed to create SelfSubjectAccessReviews'))
    elif denied:
        rows.append(row('kubernetes', 'access', 'fail', 'in namespace %s, not allowed: %s'
                        % (p['namespace'], '; '.join(denied)),
                        'grant these verbs to the runbook\'s account (a Role and RoleBinding)'))
    else:
        rows.append(row('kubernetes', 'access', 'pass', 'the %d verbs the runbook uses are allowed '
                        'in namespace %s' % (len(K8S_ACCESS), p['namespace'])))
    try:
        client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            'metrics.k8s.io', 'v1beta1', p['namespace'], 'pods', _request_timeout=p['request_timeout'])
        rows.append(row('kubernetes', 'metrics-server', 'pass', 'pod metrics are served'))
    except api_errors() as err:  # a 404 when metrics-server is absent, 503 when it is unwell
        rows.append(row('kubernetes', 'metrics-server', 'warn', 'no pod metrics: %s'
                        % short_error(str(err).splitlines()[0]),
                        'install metrics-server, or read resources from Prometheus '
                        '(investigate_resource_source: prometheus)'))
    return rows


# ------------------------------------------------------------------------------ channels

def slack_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    if p['webhook_url'] and not p['token']:
        return [row('slack', 'webhook', 'warn', 'a webhook is set: it is not checked (a test post '
                    'would reach the channel)', 'use a bot token to get threads and checks')]
    if not p['token']:
        return [row('slack', 'token', 'warn', 'not configured: nobody is told in a thread',
                    'set communicate_slack_token and communicate_slack_channel')]
    http = HttpClient(p['api_url'], name='Slack', bearer_token=p['token'], timeout=p['timeout'])
    try:
        auth = http.get_json('/auth.test', method='POST', form={})
    except ApiError as err:
        return [row('slack', 'token', 'fail', str(err), 'check communicate_slack_api_url')]
    if not auth.get('ok'):
        return [row('slack', 'token', 'fail', 'auth.test answered %s' % auth.get('error'),
                    'set communicate_slack_token to a bot token (xoxb-) of the workspace')]
    rows = [row('slack', 'token', 'pass', 'bot %s in %s' % (auth.get('user'), auth.get('team')))]
    if not p['channel']:
        return rows + [row('slack', 'channel', 'fail', 'no channel set', 'set communicate_slack_channel')]
    if not SLACK_CHANNEL_ID.fullmatch(p['channel']):
        return rows + [row('slack', 'channel', 'warn', '%s is a name, not an ID' % p['channel'],
                           'use the channel ID (C...): names change')]
    try:
        info = http.get_json('/conversations.info', method='POST', form={'channel': p['channel']})
    except ApiError as err:
        return rows + [row('slack', 'channel', 'fail', str(err))]
    if not info.get('ok'):
        if info.get('error') == 'missing_scope':
            return rows + [row('slack', 'channel', 'warn', 'not checked: the token lacks %s'
                               % info.get('needed', 'channels:read'))]
        return rows + [row('slack', 'channel', 'fail', 'conversations.info answered %s for %s'
                           % (info.get('error'), p['channel']), 'check communicate_slack_channel')]
    channel = info.get('channel') or {}
    if channel.get('is_archived'):
        return rows + [row('slack', 'channel', 'fail', '#%s is archived' % channel.get('name'))]
    if channel.get('is_member') is False:
        return rows + [row('slack', 'channel', 'fail', 'the bot is not in #%s' % channel.get('name'),
                           'invite it: /invite @%s' % auth.get('user'))]
    return rows + [row('slack', 'channel', 'pass', '#%s (%s)' % (channel.get('name'), p['channel']))]


def pagerduty_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for option, check, variable in (
            ('routing_key', 'routing key', 'communicate_pagerduty_routing_key'),
            ('escalation_routing_key', 'escalation key', 'communicate_escalation_routing_key')):
        key = p[option]
        if not key:
            rows.append(row('pagerduty', check, 'warn', 'not configured: no %s is sent' % (
                'page' if option == 'routing_key' else 'escalation page'), 'set %s' % variable))
        elif not ROUTING_KEY.fullmatch(key):
            rows.append(row('pagerduty', check, 'fail', 'not an integration key: %d characters, '
                            'expected 32 letters and digits' % len(key),
                            'set %s to the Integration Key of an Events API v2 integration' % variable))
        else:
            rows.append(row('pagerduty', check, 'pass', 'the shape of an Events API v2 integration key'))
    if p['api_token']:
        http = HttpClient(p['api_url'], name='PagerDuty REST API', timeout=p['timeout'], headers={
            'Authorization': 'Token token=%s' % p['api_token'],
            'Accept': 'application/vnd.pagerduty+json;version=2'})
        try:
            response = http.request('GET', '/abilities')
        except ApiError as err:
            rows.append(row('pagerduty', 'REST token', 'fail', str(err), 'check communicate_pagerduty_api_url'))
        else:
            if response.status == 200:
                rows.append(row('pagerduty', 'REST token', 'pass', 'accepted by %s' % p['api_url']))
            else:
                rows.append(row('pagerduty', 'REST token', 'fail', '%s answered HTTP %s' % (
                    p['api_url'], response.status), 'set communicate_pagerduty_api_token to a REST API key'))
        if not p['from_email'] or '@' not in p['from_email']:
            rows.append(row('pagerduty', 'from', 'fail', 'no From address: the REST API refuses '
                            'changes without one', 'set communicate_pagerduty_from to a user\'s email'))
    return rows


def statuspage_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    if not p['api_key']:
        return [row('statuspage', 'page', 'warn', 'not configured: customers are not told',
                    'set communicate_statuspage_api_key, _page_id and _component_id')]
    http = HttpClient(p['api_url'], name='Statuspage', timeout=p['timeout'],
                      headers={'Authorization': 'OAuth %s' % p['api_key']})
    paths = {'page': '/pages/%s' % p['page_id']}
    if p['component_id']:
        paths['component'] = '/pages/%s/components/%s' % (p['page_id'], p['component_id'])
    rows: list[dict[str, Any]] = []
    for check, path in paths.items():
        try:
            response = http.request('GET', path)
        except ApiError as err:
            rows.append(row('statuspage', check, 'fail', str(err), 'check communicate_statuspage_api_url'))
            continue
        if response.status == 200:
            body = http.expect_json(response, http.url_for(path))
            rows.append(row('statuspage', check, 'pass', '%s (%s)' % (body.get('name'), body.get('id'))))
        else:
            fix = {401: 'check communicate_statuspage_api_key',
                   404: 'check communicate_statuspage_%s_id' % check}.get(response.status, '')
            rows.append(row('statuspage', check, 'fail', '%s answered HTTP %s' % (path, response.status), fix))
    return rows


SECTIONS = {'docker': docker_rows, 'kubernetes': kubernetes_rows, 'slack': slack_rows,
            'pagerduty': pagerduty_rows, 'statuspage': statuspage_rows}
STATUSES = ('pass', 'warn', 'fail')


def table(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    """The rows as people read them: a line each, the fix under a failed or warned line."""
    lines: list[str] = []
    for r in rows:
        lines.append('%-4s  %-10s  %-16s  %s' % (r['status'].upper(), r['area'], r['check'], r['detail']))
        if r['fix'] and r['status'] != 'pass':
            lines.append('%36s-> %s' % ('', r['fix']))
    counts = dict((s, sum(r['status'] == s for r in rows)) for s in STATUSES)
    lines.append('%(pass)d passed, %(warn)d warned, %(fail)d failed' % counts)
    return lines, counts


def collect(p: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    del warn  # every finding is a row
    try:
        parse_duration(p['window'])
        parse_duration(p['slo_window'])
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    calls: dict[str, Callable[..., Any]] = {'prometheus': lambda: prometheus_rows(p)} if p['url'] else {}
    calls.update({name: (lambda f=check, s=dict(p[name], service=p['service'], timeout=p['timeout']): f(s))
                  for name, check in SECTIONS.items() if p[name] is not None})
    rows = list(p['rows'])
    for name, (result, failure) in run_all(calls).items():
        rows.extend(result if failure is None else [row(name, 'checked', 'fail',
                                                        'the check itself failed: %s' % failure)])
    rows.extend(source_row(name, result) for name, result in sorted(p['sources'].items()))
    lines, counts = table(rows)
    return {'checks': rows, 'counts': counts, 'table': lines}

"""The incident document and the post-mortem invite, rendered from incident facts shaped as the
roles build them (triage, investigate, diagnose, mitigate, verify) plus slo_budget's result."""

import re
from datetime import datetime, timezone

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report as report
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import moment
from ansible_collections.sre.runbooks.plugins.module_utils.notify.slack import Facts

POSTMORTEM = {'attendees': list(report.DEFAULT_ATTENDEES), 'organizer': None, 'within_hours': 48,
              'duration_minutes': 60}

# A Monday: a bad deploy at 14:18, errors from 14:20, rolled back at 14:31, verified at 14:45.
FULL = {
    'id': 'inference-gateway-20261123T142300Z', 'run_id': '20261123T142300.1', 'service': 'inference-gateway',
    'platform': 'compose', 'started_at': '2026-11-23T14:23:00Z', 'outcome': 'resolved',
    'severity': 'critical', 'priority': 'P1',
    'triage': {
        'service_down': False,
        'error_rate': {'message': 'inference-gateway: 26.70% of 20.00 req/s answer 5xx over 5m (critical > 5%)',
                       'evaluated_at': 1795443780.0, 'onset_iso': '2026-11-23T14:20:00Z', 'shape': 'spike',
                       'group_by': 'endpoint',
                       'groups': [{'value': '/predict', 'request_rate': 5.0, 'error_percent': 95.0,
                                   'share_of_errors': 0.89, 'verdict': 'critical'},
                                  {'value': '/embed', 'request_rate': 5.0, 'error_percent': 0.0,
                                   'share_of_errors': 0.0, 'verdict': 'ok'}]},
        'changes': [{'time_iso': '2026-11-23T14:18:00Z', 'kind': 'deploy',
                     'summary': 'image v1.2.2 -> v1.2.3'}]},
    'investigate': {
        'logs': {'summary': 'inference-gateway: 212 lines at ERROR', 'until_iso': '2026-11-23T14:23:01Z',
                 'top_messages': [{'pattern': 'NullPointerException in prediction handler', 'count': 180,
                                   'level': 'ERROR'}]},
        'resources': {'max_cpu_percent': 31.0, 'max_memory_percent': 40.0, 'max_throttled_ratio': 0.0,
                      'restarts': 0, 'oom_kills': 0, 'saturated': False, 'reasons': []},
        'dependencies': {'names': ['model-service'], 'failing': [],
                         'checks': [{'name': 'model-service', 'ok': True, 'status': 200, 'latency_ms': 3.1}]},
        'traces': {'traces': 50, 'error_traces': 44, 'dependency_suspect': None,
                   'error_sources': [{'service': 'inference-gateway', 'operation': 'POST /predict',
                                      'message': 'NullPointerException', 'count': 44}]}},
    'diagnosis': {'at': '2026-11-23T14:23:02.5Z', 'summary': 'bad_deploy: roll back to v1.2.2',
                  'recommended': {'cause': 'bad_deploy', 'confidence': 0.9, 'runbook_step': 'Rollback',
                                  'action': {'description': 'roll back to v1.2.2'}},
                  'causes': [{'cause': 'bad_deploy', 'confidence': 0.9},
                             {'cause': 'endpoint_failure', 'confidence': 0.6}],
                  'missing_evidence': []},
    'mitigation': {'mode': 'auto', 'attempts': [
        {'attempt': 1, 'decision': 'act', 'description': 'roll back to v1.2.2', 'reason': 'deploy before onset',
         'acted': True, 'check_mode': False, 'at': '2026-11-23T14:31:00Z',
         'before': {'image': 'v1.2.3'}, 'after': {'image': 'v1.2.2'},
         'commands': ['docker-compose up -d --no-deps inference-gateway'],
         'verify': {'recovered': True, 'message': 'inference-gateway recovered: under 1% errors for 10m'}}]},
    'verify': {'recovered': True, 'message': 'inference-gateway recovered: under 1% errors for 10m',
               'samples': [{'time_iso': '2026-11-23T14:32:00Z', 'error_percent': 12.0, 'request_rate': 20.0},
                           {'time_iso': '2026-11-23T14:45:00Z', 'error_percent': 0.3, 'request_rate': 20.0}]},
    'escalation': None,
    'slo': {'objective': 99.5, 'slo_window': '30d', 'availability_percent': 99.71, 'source': 'rules',
            'budget_remaining': {'percent': 42.0, 'minutes': 90.72, 'allowed_minutes': 216.0},
            'budget_burned_during_incident': {'percent': 18.5, 'minutes': 39.96},
            'burn_rates': {'5m': 0.6, '30m': 20.1, '1h': 15.2, '6h': 3.0},
            'alerts': {'page': {'firing': False}, 'ticket': {'firing': None}}},
}

# A run that failed right after triage.
PARTIAL = {'id': 'inference-gateway-20261123T142300Z', 'service': 'inference-gateway',
           'started_at': '2026-11-23T14:23:00Z', 'outcome': 'open', 'severity': 'critical',
           'triage': {'error_rate': FULL['triage']['error_rate']}}


def render(incident, follow_ups=()):
    event = report.postmortem_event(incident, POSTMORTEM)
    return report.render_markdown(incident, list(follow_ups), event, 'x.ics'), event


def test_file_names_come_from_the_start():
    started = moment('2026-01-05T09:07:59Z')
    assert report.file_stem(started) == ('2026-01', 'incident-20260105-0907-high-error-rate')
    assert report.file_stem(started, 'latency') == ('2026-01', 'incident-20260105-0907-high-response-time')


def test_times_in_every_form_the_roles_write():
    expected = datetime(2026, 11, 23, 14, 23, 2, 847031, tzinfo=timezone.utc)
    assert moment('2026-11-23T14:23:02.847031Z') == expected
    assert moment(1795443780.0).isoformat() == '2026-11-23T14:23:00+00:00'
    assert moment(None) is None and moment('soon') is None


def test_full_document_has_every_section_with_its_facts():
    text, _event = render(FULL, ['Add canary deployment with automatic rollback'])
    for heading in ('## Summary', '## Timeline', '## Evidence', '## Actions', '## What worked / what did not',
                    '## SLO impact', '## Follow-ups', '## Missing evidence', '## Post-mortem'):
        assert heading in text
    assert '| Duration | 22 min |' in text and '| Ended | 2026-11-23T14:45:00Z |' in text
    assert '| /predict | 5.00 | 95.0% | 89% | critical |' in text
    assert '| Outcome | resolved: the error rate is back under target, verified |' in text
    assert '| 180 | ERROR | NullPointerException in prediction handler |' in text
    assert '- 44 x inference-gateway POST /predict: NullPointerException' in text
    assert '- **Worked**: roll back to v1.2.2 (inference-gateway recovered' in text
    assert 'docker-compose up -d --no-deps inference-gateway' in text
    assert '| Burned during the incident | 18.5% (39.96 minutes) |' in text
    assert 'page not firing, ticket unknown' in text
    assert '- [ ] Add canary deployment with automatic rollback' in text
    assert '## Missing evidence\n\n_None._' in text


def test_timeline_is_in_time_order_with_every_step():
    steps = [text for _moment, text in report.timeline(FULL)]
    assert steps[0] == 'Change: image v1.2.2 -> v1.2.3'
    assert steps[1] == 'Errors began (spike)'
    assert [s.split(':')[0] for s in steps[2:]] == [
        'Runbook run started (incident inference-gateway-20261123T142300Z)', 'Triage', 'Investigation', 'Diagnosis',
        'Attempt 1', 'Verify, first sample', 'Verify, last sample', 'Verify']


def test_a_partial_incident_says_what_is_not_known():
    text, _event = render(PARTIAL)
    assert '| Ended | not known |' in text
    assert '_Not known: no logs were searched._' in text
    assert '_Not known: the run ended before the diagnosis._' in text
    assert '_Not known: no action was taken, so nothing to judge._' in text
    assert '_Not known: not measured; run sre.runbooks.slo_budget_info' in text
    assert report.missing(PARTIAL) == ['error logs', 'resource usage', 'dependency health', 'traces',
                                       'diagnosis', 'verification', 'SLO impact']


def test_an_escalation_without_a_time_comes_last():
    incident = dict(PARTIAL, escalation={'reason': 'nothing conclusive'})
    assert report.timeline(incident)[-1] == (None, 'Escalated: nothing conclusive')


def test_what_was_told_and_a_failed_run_are_in_the_timeline():
    incident = dict(PARTIAL, escalation={'reason': 'no improvement', 'at': '2026-11-23T14:40:00Z'},
                    communication={'log': [
                        {'at': '2026-11-23T14:23:05Z', 'event': 'opened', 'channel': 'pagerduty', 'ok': True,
                         'detail': 'Event processed'},
                        {'at': '2026-11-23T14:23:06Z', 'event': 'opened', 'channel': 'slack', 'ok': False,
                         'detail': 'Slack refused chat.postMessage with channel_not_found'}]},
                    failure={'at': '2026-11-23T14:41:00Z', 'task': 'Act on the compose service', 'msg': 'boom'})
    told = [(report.iso(moment), text) for moment, text in report.timeline(incident)
            if text.startswith(('Told', 'Escalated', 'Run failed'))]
    assert told == [
        ('2026-11-23T14:23:05Z', 'Told PagerDuty (opened): sent, Event processed'),
        ('2026-11-23T14:23:06Z', 'Told Slack (opened): FAILED, Slack refused chat.postMessage with channel_not_found'),
        ('2026-11-23T14:40:00Z', 'Escalated: no improvement'),
        ('2026-11-23T14:41:00Z', 'Run failed at "Act on the compose service": boom')]


def test_postmortem_at_a_working_hour_within_the_window():
    monday_evening = datetime(2026, 11, 23, 18, 30, tzinfo=timezone.utc)
    start, end = report.postmortem_slot(monday_evening, 48, 60)
    assert (start.isoformat(), end.isoformat()) == ('2026-11-24T10:00:00+00:00', '2026-11-24T11:00:00+00:00')
    # Friday evening: no weekday hour within 48 h, so a working hour on Saturday.
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=timezone.utc)
    assert report.postmortem_slot(friday_evening, 48, 60)[0].isoformat() == '2026-11-28T10:00:00+00:00'
    # Monday 09:00: four hours to share the document first.
    assert report.postmortem_slot(monday_evening.replace(hour=9, minute=0), 48, 90)[0].hour == 13


def test_invite_is_stable_and_rfc5545():
    event = report.postmortem_event(FULL, POSTMORTEM)
    assert event['uid'] == 'inference-gateway-20261123T142300Z-postmortem@sre.runbooks'
    assert event['dtstamp'].isoformat() == '2026-11-23T14:45:00+00:00'
    ics = report.render_ics(FULL, event, 'doc.md')
    assert ics == report.render_ics(FULL, report.postmortem_event(FULL, POSTMORTEM), 'doc.md')
    lines = ics.split('\r\n')
    assert lines[0] == 'BEGIN:VCALENDAR' and lines[-2:] == ['END:VCALENDAR', '']
    assert all(len(line.encode('utf-8')) <= 75 for line in lines)
    assert 'DTSTART:20261124T100000Z' in lines and 'DTEND:20261124T110000Z' in lines


def test_folding_never_splits_a_character_and_unfolds_back():
    line = 'DESCRIPTION:' + 'é' * 100
    folded = report.fold(line)
    parts = folded.split('\r\n')
    assert all(len(p.encode('utf-8')) <= 75 for p in parts)
    assert folded.replace('\r\n ', '') == line


def test_text_escaping():
    assert report.escape_text('a,b;c\\d\ne') == 'a\\,b\\;c\\\\d\\ne'


# --- Honest words: the outcome as the run left it, and what it could not learn -----------------

def attempt(**fields):
    base = {'attempt': 1, 'decision': 'act', 'description': 'roll back to v1.2.2', 'reason': 'roll back to v1.2.2',
            'acted': True, 'at': '2026-11-23T14:31:00Z'}
    return dict(base, **fields)


def test_advice_reads_as_not_applied():
    incident = dict(FULL, outcome='advised', verify=None, mitigation={'mode': 'advise', 'attempts': [attempt(
        decision='advise', acted=False, reason='advice only (mitigate_mode=advise): roll back to v1.2.2')]})
    text, _event = render(incident)
    assert '| Outcome | advised: a fix is recommended (roll back to v1.2.2), not applied |' in text
    assert '| Mitigation mode | advise |' in text
    assert ('- **Not done**: roll back to v1.2.2 (a fix is recommended, not applied: advice only '
            '(mitigate_mode=advise): roll back to v1.2.2)') in text
    assert '- applied: no' in text and 'Attempt 1: advise, roll back to v1.2.2 (nothing changed)' in text


def test_an_unverified_fix_is_never_called_resolved():
    unmeasured = {'recovered': False, 'verdict': 'not_measured', 'measured': False,
                  'unmeasured_reason': 'Prometheus at http://prom:9090 did not answer within 10s'}
    incident = dict(FULL, outcome='escalated', verify=unmeasured,
                    escalation={'reason': 'acted, could not verify: no measurement succeeded'},
                    mitigation={'mode': 'auto', 'attempts': [attempt(verify=unmeasured)]})
    text, _event = render(incident)
    assert '| Outcome | escalated: a fix was applied (roll back to v1.2.2) and could not be verified |' in text
    assert ('- **Not verified**: roll back to v1.2.2 (applied, and it could not be verified: not measured '
            '(Prometheus at http://prom:9090 did not answer within 10s))') in text
    assert 'Verify: not measured (Prometheus at http://prom:9090 did not answer within 10s)' in text
    assert '| Ended | not known |' in text and 'resolved' not in text.lower()
    ics = report.render_ics(incident, report.postmortem_event(incident, POSTMORTEM), 'x.md')
    assert 'could not be verified' in ics.replace('\r\n ', '')


def test_weak_evidence_says_why_and_lists_what_failed():
    incident = dict(PARTIAL, outcome='insufficient_evidence',
                    evidence={'sufficient': False, 'gaps': ['too little traffic: 0.05 req/s, under 0.1 req/s']},
                    missing_evidence=['recent changes: cannot reach the Docker engine at unix:///var/run/docker.sock'])
    text, _event = render(incident)
    assert ('| Outcome | insufficient_evidence: not enough evidence (too little traffic: 0.05 req/s, under 0.1 req/s): '
            'nothing was done and nobody was paged |') in text
    assert '| Evidence | not enough: too little traffic: 0.05 req/s, under 0.1 req/s |' in text
    assert '- recent changes: cannot reach the Docker engine at unix:///var/run/docker.sock' in text
    assert report.missing(incident)[-1] == 'recent changes: cannot reach the Docker engine at unix:///var/run/docker.sock'


def test_missing_figures_read_as_words():
    rate = dict(FULL['triage']['error_rate'], groups=[
        {'value': '/predict', 'request_rate': None, 'error_percent': None, 'share_of_errors': None,
         'verdict': 'no_traffic'},
        {'value': '/embed', 'request_rate': 0.05, 'error_percent': 0.0, 'share_of_errors': 0.0,
         'verdict': 'low_traffic'}])
    incident = dict(FULL, triage=dict(FULL['triage'], error_rate=rate),
                    verify=dict(FULL['verify'], samples=[{'time_iso': '2026-11-23T14:32:00Z', 'error_percent': None,
                                                          'request_rate': 0.0}]),
                    slo=dict(FULL['slo'], availability_percent=None, burn_rates={'5m': None}))
    text, _event = render(incident)
    assert '| /predict | no traffic | n/a | n/a | no traffic |' in text
    assert '| /embed | 0.05 | 0.0% | 0% | too little traffic |' in text
    assert 'Verify, only sample: no traffic' in text
    assert '| Availability over 30d | n/a (objective 99.5%) |' in text and '5m: n/a' in text
    assert not re.search(r'\bNone\b', text)  # '_None._' is the document's word for an empty section


def test_the_storms_incident_lists_every_service_and_the_cause_they_share():
    storm = {'role': 'shared', 'leader': 'inference-gateway', 'covered': False,
             'shared_cause': {'kind': 'dependency', 'name': 'payments', 'services': ['inference-gateway', 'orders'],
                              'evidence': ['2 failing services depend on payments: inference-gateway, orders',
                                           'payments answers 5xx itself (critical)']},
             'services': [{'name': 'inference-gateway', 'error_percent': 26.7, 'request_rate': 20.0,
                           'verdict': 'critical', 'role': 'shared'},
                          {'name': 'orders', 'error_percent': 12.5, 'request_rate': 8.0, 'verdict': 'critical',
                           'role': 'shared'},
                          {'name': 'search', 'error_percent': 0.0, 'request_rate': 0.05, 'verdict': 'low_traffic',
                           'role': None}]}
    text, _event = render(dict(FULL, storm=storm), [])
    section = text[text.index('## Services in this incident'):text.index('## Timeline')]
    assert 'Shared cause: dependency payments (2 failing services depend on payments: inference-gateway, orders; ' \
           'payments answers 5xx itself (critical)).' in section
    assert '| orders | 12.5% | 8.00 | critical | fails through the shared cause |' in section
    assert '| search | 0.0% | 0.05 | low_traffic | - |' in section
    # One service's own incident has no such section, and no blank line in its place.
    plain, _event = render(FULL, [])
    assert '## Services in this incident' not in plain and '\n\n\n' not in plain


def test_a_slow_service_is_written_up_on_its_response_time():
    latency = {'message': 'inference-gateway: p99 972 ms over 30s (slow)', 'group_by': 'endpoint', 'verdict_quantile': 'p99',
               'onset_iso': '2026-11-23T14:22:40Z', 'shape': 'spike', 'evaluated_at': '2026-11-23T14:23:01Z',
               'groups': [{'value': '/predict', 'request_rate': 5.0, 'verdict': 'slow',
                           'percentiles': {'p99': {'text': '993 ms', 'baseline_text': '24.8 ms'}}}]}
    verify = {'recovered': True, 'message': 'inference-gateway recovered: p99 24.1 ms <= target 500 ms for 10 s',
              'samples': [{'time_iso': '2026-11-23T14:32:00Z', 'seconds': 0.0243, 'request_rate': 20.0}]}
    slow = dict(FULL, symptom='latency', triage=dict(FULL['triage'], latency=latency), verify=verify)
    text, _event = render(slow)
    assert text.startswith('# Incident inference-gateway-20261123T142300Z: high response time on inference-gateway\n')
    assert '| Outcome | resolved: the response time is back under target, verified |' in text
    assert '| 2026-11-23T14:22:40Z | Slowdown began (spike) |' in text
    assert '| 2026-11-23T14:32:00Z | Verify, only sample: 24.3 ms at 20.0 req/s |' in text
    assert '### Response time\n\ninference-gateway: p99 972 ms over 30s (slow)\n\n| endpoint | req/s | p99 | baseline | verdict |\n' in text
    assert '| /predict | 5.00 | 993 ms | 24.8 ms | slow |' in text


def written(tmp_path, incident):
    """run()'s result for the incident, and the names of the files it wrote."""
    params = {'incident': incident, 'directory': str(tmp_path), 'postmortem': POSTMORTEM, 'follow_ups': [],
              'prometheus_url': None, 'grafana_url': None, 'grafana_dashboard': None}
    result = report.run(params, check_mode=False)
    return result, sorted(path.name for path in (tmp_path / '2026-11').iterdir())


def test_a_slow_services_document_embeds_its_response_time_graph(tmp_path):
    times = [1795443600.0 + 10 * i for i in range(31)]
    latency = {'message': 'inference-gateway: p99 972 ms over 30s (slow)', 'verdict_quantile': 'p99',
               'slow_threshold_seconds': 0.5, 'target_seconds': 0.5, 'onset_iso': '2026-11-23T14:21:00Z'}
    slow = dict(FULL, symptom='latency', triage=dict(FULL['triage'], latency=latency),
                latency_history={'quantile': 'p99', 'overall': [[t, 0.99 if 60 <= t - times[0] < 180 else 0.025] for t in times],
                                 'groups': []},
                error_rate_history={'overall': [[t, 0.0] for t in times], 'groups': []})
    result, names = written(tmp_path, slow)
    stem = 'incident-20261123-1423-high-response-time'
    assert names == [stem + '-response-time.svg', stem + '.ics', stem + '.md']
    assert result['graph_path'] == str(tmp_path / '2026-11' / (stem + '-response-time.svg'))
    document = (tmp_path / '2026-11' / (stem + '.md')).read_text()
    assert document.splitlines()[2] == ('![Response time (p99) during the incident against its target, with the deploys, '
                                        'actions and recovery](%s-response-time.svg)' % stem)
    graph = (tmp_path / '2026-11' / (stem + '-response-time.svg')).read_text()
    assert 'p99 response time during incident' in graph and '>target 500 ms<' in graph and '5xx' not in graph
    # Without the response time read, no graph: the error rate says nothing of a slow service.
    result, names = written(tmp_path / 'unread', dict(slow, latency_history={}))
    assert result['graph_path'] is None and names == [stem + '.ics', stem + '.md']
    assert '![' not in (tmp_path / 'unread' / '2026-11' / (stem + '.md')).read_text()


def test_an_error_rate_document_keeps_its_error_rate_graph(tmp_path):
    times = [1795443600.0 + 10 * i for i in range(31)]
    failing = dict(FULL, error_rate_history={'overall': [[t, 20.0 if 60 <= t - times[0] < 180 else 0.0] for t in times],
                                             'groups': [], 'critical_percent': 5.0, 'warning_percent': 1.0},
                   latency_history={'overall': [[t, 0.2] for t in times]})
    result, names = written(tmp_path, failing)
    stem = 'incident-20261123-1423-high-error-rate'
    assert names == [stem + '-error-rate.svg', stem + '.ics', stem + '.md']
    assert result['graph_path'].endswith(stem + '-error-rate.svg')
    assert (tmp_path / '2026-11' / (stem + '.md')).read_text().splitlines()[2] == (
        '![Error rate during the incident, with the deploys, actions and recovery](%s-error-rate.svg)' % stem)
    assert (tmp_path / '2026-11' / (stem + '-error-rate.svg')).read_text() == report.render_graph(failing)
    assert '% of requests answering 5xx' in report.render_graph(failing)


def test_a_fix_applied_whose_rollout_then_failed_is_applied_and_did_not_work():
    """k8s_rollout restarted the Deployment, then its new pods never became ready: the change was
    made (acted, with before and after) and the attempt failed; neither reads as not done."""
    failed = attempt(decision='failed', description='rollout restart inference-gateway once',
                     reason='rollout restart inference-gateway once failed: deployment "inference-gateway" exceeded '
                            'its progress deadline of 120 s (progressDeadlineSeconds)')
    incident = dict(FULL, outcome='escalated', verify=None, escalation={'reason': failed['reason']},
                    mitigation={'mode': 'auto', 'attempts': [failed]})
    text, _event = render(incident)
    assert ('- **Did not work**: rollout restart inference-gateway once (applied, then failed: deployment '
            '"inference-gateway" exceeded its progress deadline of 120 s (progressDeadlineSeconds))') in text
    assert 'Attempt 1: failed, rollout restart inference-gateway once (applied)' in text
    words = Facts(incident, {}, datetime(2026, 11, 23, 15, tzinfo=timezone.utc)).attempt(failed)
    assert words == ('rollout restart inference-gateway once (applied, then failed: deployment "inference-gateway" '
                     'exceeded its progress deadline of 120 s (progressDeadlineSeconds))')

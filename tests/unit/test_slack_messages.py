"""The runbook's Slack messages rendered from the incident fact, and the pure parts of the
PagerDuty client (event bodies, masking, status order, error sentences); no I/O."""

import json
from datetime import datetime, timezone

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils import pagerduty_event
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import Response
from ansible_collections.sre.runbooks.plugins.module_utils.notify import pagerduty as pd
from ansible_collections.sre.runbooks.plugins.module_utils.notify.slack import duration, percent, redact_webhook, render, web_error

NOW = datetime(2025, 10, 23, 14, 45, tzinfo=timezone.utc)
VARS = {'commander': '@your-name', 'dashboard': 'http://localhost:3000/d/app-performance',
        'bridge': 'https://zoom.us/j/123456789'}


def incident(**extra):
    """An incident as triage, diagnose, mitigate and verify record it."""
    fact = {
        'service': 'inference-gateway', 'severity': 'critical', 'priority': 'P1',
        'started_at': '2025-10-23T14:23:00Z', 'outcome': 'open',
        'triage': {'error_rate': {'error_percent': 12.0}},
        'diagnosis': {'summary': 'deploy: roll back to inference-gateway:v1.2.2',
                      'recommended': {'cause': 'deploy', 'evidence': [
                          'errors began 40 s after the deploy inference-gateway:v1.2.3'],
                          'action': {'description': 'roll back to inference-gateway:v1.2.2'}}},
    }
    fact.update(extra)
    return fact


ACTED = {'mitigation': {'attempts': [{'description': 'Rolling back deployment v1.2.3 > v1.2.2',
                                      'acted': True, 'at': '2025-10-23T14:31:00Z',
                                      'decision': 'act'}]}}


def test_incident_message_is_the_runbooks():
    text, blocks = render('incident', incident(), VARS, NOW)
    assert text == (
        '🔥 INCIDENT: High Error Rate - Inference Gateway\n'
        'Severity: P1 (Critical)\n'
        'Incident Commander: @your-name\n'
        'Started: 2025-10-23 14:23 UTC\n'
        'Current Status: Investigating\n'
        '\n'
        'Error Rate: 12% (target: &lt;0.5%)\n'
        'Dashboard: http://localhost:3000/d/app-performance\n'
        'Bridge: https://zoom.us/j/123456789\n'
        '\n'
        'Updates will be posted here every 10 minutes.')
    assert [b['type'] for b in blocks] == ['section'] * 3
    assert all(b['text']['type'] == 'mrkdwn' for b in blocks)
    assert blocks[0]['text']['text'].startswith(
        '*🔥 INCIDENT: High Error Rate - Inference Gateway*\n*Severity:* P1 (Critical)\n')
    assert blocks[1]['text']['text'].startswith('*Error Rate:* 12% (target: &lt;0.5%)')


def test_the_storms_incident_names_its_services_and_their_shared_cause():
    storm = {'shared_cause': {'kind': 'dependency', 'name': 'payments'},
             'services': [{'name': 'inference-gateway', 'role': 'shared'}, {'name': 'orders', 'role': 'shared'},
                          {'name': 'search', 'role': None}]}
    text, _blocks = render('incident', incident(storm=storm), VARS, NOW)
    assert 'Current Status: Investigating\nServices: 2 failing: inference-gateway, orders\n' \
           'Shared Cause: dependency payments\n\n' in text


def test_update_message_names_action_eta_and_trend():
    fact = incident(outcome='mitigating', verify={'last_percent': 8.0}, **ACTED)
    text, blocks = render('update', fact, dict(VARS, eta='5 minutes'), datetime(
        2025, 10, 23, 14, 33, tzinfo=timezone.utc))
    assert text == ('🔄 UPDATE [14:33 UTC]\n'
                    'Status: Mitigation in progress\n'
                    'Action: Rolling back deployment v1.2.3 &gt; v1.2.2 (applied)\n'
                    'ETA: 5 minutes\n'
                    'Error Rate: 8% (decreasing)')
    assert len(blocks) == 1


def test_resolved_message_has_duration_root_cause_and_mitigation():
    fact = incident(outcome='resolved', verify={'last_percent': 0.3, 'recovered': True}, **ACTED)
    text, _blocks = render('resolved', fact, VARS, NOW)
    assert text == ('✅ RESOLVED [14:45 UTC]\n'
                    'Incident Duration: 22 minutes\n'
                    'Root Cause: errors began 40 s after the deploy inference-gateway:v1.2.3 '
                    '(deploy)\n'
                    'Mitigation: Rolling back deployment v1.2.3 &gt; v1.2.2\n'
                    'Error Rate: 0.3% (normal)\n'
                    '\n'
                    'Post-mortem: Will be completed by EOD')


def test_a_slow_service_is_told_by_its_response_time():
    latency = {'verdict_quantile': 'p99', 'overall': {'percentiles': {'p99': {'text': '612 ms'}}}}
    slow = incident(symptom='latency', triage={'error_rate': {'error_percent': 0.0}, 'latency': latency})
    text, _blocks = render('incident', slow, VARS, NOW)
    assert text.startswith('🔥 INCIDENT: High Response Time - Inference Gateway\n')
    assert '\nResponse Time: p99 612 ms at triage\nError Rate: 0% (target: &lt;0.5%)\n' in text
    update = dict(VARS, response_seconds=0.183, measured=True, measured_at='2025-10-23T14:33:05Z')
    text, _blocks = render('update', dict(slow, outcome='mitigating', **ACTED), update, NOW)
    assert text.endswith('ETA: not known yet\nResponse Time: p99 183 ms at 14:33:05 UTC')
    lost = dict(VARS, response_seconds=None, measured=False, not_measured_reason='Prometheus did not answer')
    text, _blocks = render('update', dict(slow, outcome='mitigating', **ACTED), lost, NOW)
    assert text.endswith('Response Time: not measured (Prometheus did not answer)')
    verified = {'last_seconds': 0.118, 'recovered': True, 'samples': [{'seconds': 0.118, 'request_rate': 20.0}]}
    text, _blocks = render('resolved', dict(slow, outcome='resolved', verify=verified,
                                            **ACTED), VARS, NOW)
    assert 'Response Time: p99 118 ms\nError Rate: 0% at triage, not measured since\n' in text


def test_template_vars_override_the_incident():
    fact = incident(verify={'last_percent': 2.0, 'recovered': False})
    overrides = {'root_cause': 'NPE in v1.2.3 prediction handler', 'mitigation': 'Rollback to v1.2.2',
                 'resolved_at': '2025-10-23T15:30:00Z'}
    text, _blocks = render('resolved', fact, overrides, NOW)
    assert 'Root Cause: NPE in v1.2.3 prediction handler' in text
    assert 'Mitigation: Rollback to v1.2.2' in text
    assert 'Incident Duration: 1 hour 7 minutes' in text
    assert 'Error Rate: 2% (still above target)' in text


def test_escalation_message_says_why_and_what_was_tried():
    fact = incident(outcome='escalated', escalation={'reason': 'no further action in the plan'},
                    mitigation={'attempts': [{'description': 'restart the service', 'acted': False,
                                              'decision': 'advise'}]})
    text, _blocks = render('escalation', fact, {'escalate_to': 'Senior Engineer'}, NOW)
    assert text.startswith('🚨 ESCALATION: High Error Rate - Inference Gateway\n')
    assert 'Reason: no further action in the plan\n' in text
    assert 'Tried: a fix is recommended (restart the service), not applied\n' in text
    assert 'Diagnosis: deploy: roll back to inference-gateway:v1.2.2\n' in text
    assert text.endswith('Needed: Senior Engineer')


def test_missing_parts_read_as_missing():
    text, blocks = render('incident', {}, {}, NOW)
    assert text.splitlines() == [
        '🔥 INCIDENT: High Error Rate', 'Severity: unknown', 'Incident Commander: not assigned yet',
        'Started: unknown', 'Current Status: Investigating', '', 'Error Rate: not measured', '',
        'Updates will be posted here every 10 minutes.']
    update, _blocks = render('update', {'diagnosis': {'recommended': {'action': {
        'description': 'scale out'}}}}, {}, NOW)
    assert 'Action: scale out (recommended)' in update and 'ETA: not known yet' in update
    resolved, _blocks = render('resolved', {}, {}, NOW)
    assert 'Incident Duration: unknown' in resolved
    assert 'Root Cause: under investigation' in resolved
    assert 'Mitigation: no action taken' in resolved
    assert json.dumps(blocks)  # JSON-able as sent


def test_incident_text_is_escaped_but_template_vars_are_slack_markup():
    fact = incident(service='a<b>&c')
    text, _blocks = render('incident', fact, {'commander': '<@U012AB3CD>'}, NOW)
    assert 'INCIDENT: High Error Rate - A&lt;B&gt;&amp;C' in text
    assert 'Incident Commander: <@U012AB3CD>' in text


@pytest.mark.parametrize('value,text', [(12, '12%'), (0.3, '0.3%'), (8.333, '8.33%'), (0, '0%'), (None, 'n/a')])
def test_percent(value, text):
    assert percent(value) == text


@pytest.mark.parametrize('seconds,text', [(30, 'under a minute'), (60, '1 minute'),
                                          (1320, '22 minutes'), (3600, '1 hour'),
                                          (7500, '2 hours 5 minutes')])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_slack_errors_say_what_to_do():
    body = {'channel': 'C0INC', 'text': 'x'}
    assert 'invite it there' in web_error('chat.postMessage', body, {'ok': False, 'error': 'not_in_channel'})
    assert 'check token' in web_error('chat.postMessage', body, {'ok': False, 'error': 'invalid_auth'})
    assert 'scope reactions:write' in web_error('reactions.add', body, {
        'ok': False, 'error': 'missing_scope', 'needed': 'reactions:write'})
    assert 'with weird_error (see' in web_error('chat.postMessage', body, {'ok': False, 'error': 'weird_error'})
    assert redact_webhook('https://hooks.slack.com/services/T0/B0/XXXX') == 'https://hooks.slack.com/********'


PARAMS = dict({k: None for k in pagerduty_event.ARGUMENT_SPEC}, routing_key='R' * 32, change_event=False)


def test_trigger_body_carries_the_payload_and_links():
    p = dict(PARAMS, event_action='trigger', dedup_key='inc-1', summary='High error rate',
             source='inference-gateway', severity='critical', component='api', group='ml',
             custom_details={'error_percent': 12}, links=[{'href': 'http://d', 'text': 'Dashboard'}],
             **{'class': '5xx'})
    assert pd.alert_event(p) == {
        'routing_key': 'R' * 32, 'event_action': 'trigger', 'dedup_key': 'inc-1',
        'payload': {'summary': 'High error rate', 'source': 'inference-gateway',
                    'severity': 'critical', 'component': 'api', 'group': 'ml', 'class': '5xx',
                    'custom_details': {'error_percent': 12}},
        'links': [{'href': 'http://d', 'text': 'Dashboard'}]}


def test_acknowledge_and_change_bodies():
    assert pd.alert_event(dict(PARAMS, event_action='resolve', dedup_key='k', summary='ignored')) == {
        'routing_key': 'R' * 32, 'event_action': 'resolve', 'dedup_key': 'k'}
    change = pd.change_event(dict(PARAMS, change_event=True, summary='rolled back to v1.2.2',
                                  source='sre.runbooks', timestamp='2025-10-23T14:31:00Z',
                                  severity='critical'))
    assert change == {'routing_key': 'R' * 32, 'payload': {
        'summary': 'rolled back to v1.2.2', 'source': 'sre.runbooks',
        'timestamp': '2025-10-23T14:31:00Z'}}
    assert pd.masked(change)['routing_key'] == pd.MASK and change['routing_key'] == 'R' * 32


@pytest.mark.parametrize('current,wanted,done', [
    ('triggered', 'acknowledged', False), ('acknowledged', 'acknowledged', True),
    ('resolved', 'acknowledged', True), ('acknowledged', 'resolved', False),
    ('resolved', 'resolved', True), (None, 'resolved', False)])
def test_status_only_moves_forward(current, wanted, done):
    assert pd.is_done(current, wanted) is done


def test_events_and_rest_errors_are_sentences():
    bad = Response(400, {}, json.dumps({'status': 'invalid event', 'message': 'Event object is invalid',
                                        'errors': ["'payload.summary' is missing"]}).encode())
    msg = pd.events_error(bad, '/v2/enqueue', 3)
    assert 'refused the event as invalid event (HTTP 400): Event object is invalid: ' \
           "'payload.summary' is missing. Not retried" in msg
    assert 'after 3 retries' in pd.events_error(Response(429, {}, b''), '/v2/enqueue', 3)
    gone = Response(404, {}, json.dumps({'error': {'message': 'Not Found', 'code': 2100}}).encode())
    assert pd.rest_error(gone, 'GET', '/incidents/PX') == (
        'PagerDuty REST API answered HTTP 404 to GET /incidents/PX: Not Found (code 2100); '
        'check incident_id (the incident id, such as PT4KHLK, not its number)')


def test_links_need_href():
    with pytest.raises(Exception, match='needs an href'):
        pd.check_links([{'text': 'no link'}])


# --- Wording that follows the outcome and the mode ----------------------------------------------

ALARMS = ('🔥', '🚨', 'INCIDENT', 'ESCALAT', 'scalate')
WEAK = {'outcome': 'insufficient_evidence', 'severity': 'critical', 'priority': 'P1',
        'triage': {'error_rate': {'error_percent': 14.21, 'request_rate': 0.05, 'verdict': 'low_traffic'}},
        'evidence': {'sufficient': False, 'gaps': ['too little traffic: 0.05 req/s, under 0.1 req/s']},
        'missing_evidence': ['recent changes: cannot reach the Docker engine at unix:///var/run/docker.sock'],
        'diagnosis': {'recommended': {'cause': 'escalate', 'action': {
            'name': 'escalate', 'description': 'escalate with the evidence'}}}}


def advised(decision='advise', reason='advice only (mitigate_mode=advise): roll back to inference-gateway:v1.2.2',
            mode='advise'):
    return incident(outcome='advised', mitigation={'mode': mode, 'attempts': [{
        'attempt': 1, 'decision': decision, 'description': 'roll back to inference-gateway:v1.2.2', 'acted': False,
        'reason': reason}]})


def test_weak_evidence_opens_without_alarm_and_says_why():
    text, _blocks = render('incident', incident(**WEAK), VARS, NOW)
    assert text.splitlines()[:6] == [
        'ℹ️ NOT ENOUGH EVIDENCE: High Error Rate - Inference Gateway',
        'Started: 2025-10-23 14:23 UTC',
        'Current Status: Not enough evidence: nothing was done and nobody was paged',
        'Why: too little traffic: 0.05 req/s, under 0.1 req/s',
        'Missing: recent changes: cannot reach the Docker engine at unix:///var/run/docker.sock',
        '']
    assert 'Error Rate: 14.21% of 0.05 req/s (too little traffic to judge; target: &lt;0.5%)' in text
    assert not any(alarm in text for alarm in ALARMS), text


def test_the_triage_judgement_alone_opens_without_alarm():
    # At `opened` the run has not decided yet: the triage found the evidence too weak.
    fact = incident(**WEAK)
    fact['outcome'] = 'open'
    text, _blocks = render('incident', fact, VARS, NOW)
    assert text.startswith('ℹ️ NOT ENOUGH EVIDENCE: High Error Rate - Inference Gateway\n')
    assert 'Current Status: Not enough evidence: nothing was done and nobody was paged' in text
    assert not any(alarm in text for alarm in ALARMS), text


def test_weak_evidence_closes_saying_not_enough_evidence():
    text, _blocks = render('closed', incident(**WEAK), {}, NOW)
    assert text.startswith('ℹ️ CLOSED [14:45 UTC]: not enough evidence\n'
                           'Why: too little traffic: 0.05 req/s, under 0.1 req/s\n'
                           'Missing: recent changes: cannot reach the Docker engine')
    assert 'Nothing was done and nobody was paged.' in text
    assert not any(alarm in text for alarm in ALARMS), text
    update, _blocks = render('update', incident(**WEAK), {}, NOW)
    assert 'Action: none: not enough evidence to act' in update and 'scalate' not in update


@pytest.mark.parametrize('mode,said', [
    ('advise', 'Action: a fix is recommended (roll back to inference-gateway:v1.2.2), not applied'),
    ('approve', 'Action: a fix is recommended (roll back to inference-gateway:v1.2.2), awaiting approval'),
    ('auto', 'Action: roll back to inference-gateway:v1.2.2 (recommended, to be applied)'),
    (None, 'Action: roll back to inference-gateway:v1.2.2 (recommended)')])
def test_the_diagnosis_update_follows_the_mode(mode, said):
    text, _blocks = render('update', incident(mitigation={'mode': mode} if mode else {}), {}, NOW)
    assert said in text.splitlines()
    # Before the gate, the role passes the mode.
    text, _blocks = render('update', incident(), {'mode': mode} if mode else {}, NOW)
    assert said in text.splitlines()


@pytest.mark.parametrize('fact,action', [
    (advised(), 'a fix is recommended (roll back to inference-gateway:v1.2.2), not applied'),
    (advised(reason='not approved: the approval node of the AWX workflow was denied or timed out', mode='approve'),
     'a fix is recommended (roll back to inference-gateway:v1.2.2), not approved, not applied')],
    ids=['advise', 'approval declined'])
def test_advice_and_a_declined_approval_say_not_applied(fact, action):
    update, _blocks = render('update', fact, {}, NOW)
    assert 'Status: A fix is recommended, not applied: waiting for a person' in update
    assert 'Action: ' + action in update
    closed, _blocks = render('closed', fact, {}, NOW)
    assert closed.splitlines()[2] == 'Action: ' + action
    assert closed.endswith('Needed: a person to apply the fix or decide otherwise.')
    assert 'applying' not in update + closed


def test_an_applied_fix_says_applied():
    text, _blocks = render('update', incident(outcome='mitigating', **ACTED), {}, NOW)
    assert 'Action: Rolling back deployment v1.2.3 &gt; v1.2.2 (applied)' in text


UNVERIFIED = incident(outcome='escalated', escalation={'reason': 'acted, could not verify: no measurement succeeded'},
                      verify={'verdict': 'not_measured', 'measured': False,
                              'unmeasured_reason': 'Prometheus at http://prom:9090 did not answer within 10s'},
                      **ACTED)


def test_an_unverified_fix_is_told_as_such_everywhere():
    escalation, _blocks = render('escalation', UNVERIFIED, {}, NOW)
    assert ('Fix: applied (Rolling back deployment v1.2.3 &gt; v1.2.2) and could not be verified: the error rate '
            'was not measured after it') in escalation
    assert 'Tried: Rolling back deployment v1.2.3 &gt; v1.2.2 (applied, could not be verified)' in escalation
    assert 'Error Rate: not measured (Prometheus at http://prom:9090 did not answer within 10s)' in escalation
    update, _blocks = render('update', UNVERIFIED, {}, NOW)
    assert 'Status: Escalated: a fix was applied and could not be verified' in update
    assert 'resolved' not in (escalation + update).lower() and '12%' not in escalation + update


def test_an_update_without_a_measurement_never_shows_the_triage_figure():
    fact = incident(outcome='mitigating', triage={'error_rate': {'error_percent': 14.21}}, **ACTED)
    now = {'error_percent': None, 'measured': False, 'measured_at': '2025-10-23T14:33:00Z',
           'not_measured_reason': 'Prometheus at http://prom:9090 did not answer within 10s'}
    text, _blocks = render('update', fact, now, NOW)
    assert text.splitlines()[-1] == 'Error Rate: not measured (Prometheus at http://prom:9090 did not answer within 10s)'
    assert '14.21' not in text
    measured, _blocks = render('update', fact, dict(now, measured=True, error_percent=2.5), NOW)
    assert measured.splitlines()[-1] == 'Error Rate: 2.5% (decreasing) at 14:33:00 UTC'
    idle, _blocks = render('update', fact, dict(now, measured=True), NOW)
    assert idle.splitlines()[-1] == 'Error Rate: no traffic'
    before, _blocks = render('update', fact, {}, NOW)
    assert before.splitlines()[-1] == 'Error Rate: not measured since the triage'
    escalation, _blocks = render('escalation', fact, {}, NOW)
    assert 'Error Rate: 14.21% at triage, not measured since' in escalation


def test_a_joined_alert_is_one_line_in_the_thread():
    fact = incident(outcome='joined', joined={'alerts': ['9d1e07', 'HighErrorRate 3f2a9c'],
                                              'handled_by': '20251023T142300.1'})
    text, blocks = render('joined', fact, {}, NOW)
    assert text == '🔗 Another alert joined this incident: HighErrorRate 3f2a9c, handled by run 20251023T142300.1'
    assert len(blocks) == 1
    said, _blocks = render('joined', fact, {'alert': 'fingerprint beef', 'handled_by': 'run 7'}, NOW)
    assert said == '🔗 Another alert joined this incident: fingerprint beef, handled by run run 7'


def test_a_recovered_service_is_not_an_incident():
    fact = incident(outcome='recovered', severity='none', priority='P4',
                    triage={'error_rate': {'error_percent': 0.0, 'verdict': 'ok'}})
    text, _blocks = render('incident', fact, {}, NOW)
    assert text.startswith('✅ RECOVERED BEFORE THE RUNBOOK RAN: High Error Rate - Inference Gateway\n')
    assert not any(alarm in text for alarm in ALARMS)


def test_a_failed_run_closes_asking_for_a_person():
    fact = incident(outcome='failed', failure={'task': 'Act on the compose service', 'msg': 'docker: timeout'})
    text, _blocks = render('closed', fact, {}, NOW)
    assert text.splitlines()[:2] == ['❌ RUN FAILED [14:45 UTC]', 'Failed at: Act on the compose service: docker: timeout']
    assert text.endswith('Needed: a person to take over.')


@pytest.mark.parametrize('template', ['incident', 'update', 'resolved', 'escalation', 'closed', 'joined'])
def test_every_template_renders_nothing_as_none(template):
    fact = incident(triage={'error_rate': {'error_percent': None, 'request_rate': None, 'verdict': 'no_traffic'}},
                    verify={'last_percent': None, 'trend': None})
    text, _blocks = render(template, fact, {'target_percent': None, 'error_percent': None}, NOW)
    assert 'None' not in text

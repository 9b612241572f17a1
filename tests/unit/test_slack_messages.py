"""The runbook's Slack messages rendered from the incident fact, and the pure parts of the
PagerDuty client (event bodies, masking, status order, error sentences); no I/O."""

import json
from datetime import datetime, timezone

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils import pagerduty as pd
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import Response
from ansible_collections.sre.runbooks.plugins.module_utils.slack import (
    duration, percent, redact_webhook, render, web_error)

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


def test_update_message_names_action_eta_and_trend():
    fact = incident(outcome='mitigating', verify={'last_percent': 8.0}, **ACTED)
    text, blocks = render('update', fact, dict(VARS, eta='5 minutes'), datetime(
        2025, 10, 23, 14, 33, tzinfo=timezone.utc))
    assert text == ('🔄 UPDATE [14:33 UTC]\n'
                    'Status: Mitigation in progress\n'
                    'Action: Rolling back deployment v1.2.3 &gt; v1.2.2\n'
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
    assert 'Tried: restart the service (not taken)\n' in text
    assert 'Diagnosis: deploy: roll back to inference-gateway:v1.2.2\n' in text
    assert text.endswith('Needed: Senior Engineer')


def test_missing_parts_read_as_missing():
    text, blocks = render('incident', {}, {}, NOW)
    assert text.splitlines() == [
        '🔥 INCIDENT: High Error Rate', 'Severity: unknown', 'Incident Commander: not assigned yet',
        'Started: unknown', 'Current Status: Investigating', '', 'Error Rate: unknown', '',
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


@pytest.mark.parametrize('value,text', [(12, '12%'), (0.3, '0.3%'), (8.333, '8.33%'), (0, '0%')])
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


PARAMS = dict({k: None for k in pd.ARGUMENT_SPEC}, routing_key='R' * 32, change_event=False)


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

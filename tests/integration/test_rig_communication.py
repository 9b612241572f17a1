"""The whole runbook on the real rig (Docker engine, docker-compose, Prometheus, Alertmanager, the
demo services), telling the local API stand-ins (demo/lib/api_standin.py, started by rig.sh up),
which answer as Slack's Web API, PagerDuty's Events API v2, Statuspage's REST API and Grafana's
annotations API document: the real services cannot be reached from here. Asserts the sequence of
messages and pages, the thread, the annotations, the incident document and its invite, and that no
secret reaches the output at -vvv."""

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from rig import playbook, rig, standin, told

ALERTMANAGER = 'http://127.0.0.1:9093'

SECRETS = ('xoxb-demo-token', 'sredemoroutingkey000000000000001', 'sredemoescalationkey000000000002', 'demo-statuspage-key',
           'glsa_sre-demo-token')


@pytest.fixture()
def bad_deploy_paged():
    """The demo's bad deploy, the alert firing, the page opened by Alertmanager at the stand-in."""
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-resolved', 360)  # a deploy while the last alert still fires would not be paged anew
    rig('wait-baseline', 100)
    standin('/journal/reset', b'')
    rig('deploy', 'v1.2.3')
    rig('wait-alert', 180)
    deadline = time.monotonic() + 60
    while not [e for e in standin('/journal') if e['api'] == 'pagerduty-events']:
        assert time.monotonic() < deadline, 'Alertmanager opened no page within 60 s of the alert: %s' % alertmanager_view()
        time.sleep(0.5)
    yield
    rig('clear')


def alertmanager_view():
    """What Alertmanager holds of the gateway's alert and what it logged, for a page that did not come."""
    with urllib.request.urlopen(ALERTMANAGER + '/api/v2/alerts/groups?filter=' +
                                urllib.parse.quote('service="inference-gateway"'), timeout=10) as response:
        groups = json.load(response)
    log = Path('/var/log/sre-demo/alertmanager.log').read_text().splitlines()
    return 'groups %s; journal %s; log tail:\n%s' % (
        json.dumps(groups), json.dumps(standin('/journal')), '\n'.join(log[-15:]))


def test_the_whole_story_is_told_in_order(bad_deploy_paged, tmp_path):
    page = [e for e in standin('/journal') if e['api'] == 'pagerduty-events']
    assert page[0]['body']['event_action'] == 'trigger'
    dedup_key = page[0]['body']['dedup_key']
    reports = tmp_path / 'incidents'
    # The dedup key as the rulebook passes it (Alertmanager's); updates every 5 s while verifying
    # (the verification holds 10 s).
    rc, output = playbook('playbooks/high_error_rate.yml', '-vvv', '-e', 'service=inference-gateway',
                          '-e', 'mitigate_mode=auto', '-e', 'communicate_report_dir=%s' % reports,
                          '-e', 'communicate_pagerduty_dedup_key=%s' % dedup_key,
                          '-e', 'communicate_update_every=5s',
                          # Grafana's annotations API: the stand-in's.
                          '-e', 'communicate_grafana_url=http://127.0.0.1:18111/grafana',
                          '-e', 'communicate_grafana_token=glsa_sre-demo-token', timeout=400)
    assert rc == 0, output[-5000:]
    for secret in SECRETS:
        assert secret not in output, secret

    sent = told(standin('/journal'))
    slack = [s[1:] for s in sent if s[0] == 'slack']
    # The first message opens the thread and gets the eyes; every later one lands in its thread.
    assert slack[0] == ('🔥 INCIDENT: High Error Rate - Inference Gateway', None)
    assert slack[1] == ('reaction eyes', None)
    assert len({thread for _what, thread in slack[2:]}) == 1 and slack[2][1]
    said = [what for what, _thread in slack[2:]]
    # The diagnosis, the rollback, at least one while verifying, then the resolution.
    assert said[-1] == '✅ RESOLVED' and set(said[:-1]) == {'🔄 UPDATE'} and len(said) >= 4, said

    pages = [s[1:] for s in sent if s[0] == 'pagerduty']
    # Alertmanager's trigger, then the run's; Alertmanager may resolve its alert again once it clears.
    assert [what for what, _key in pages[:4]] == ['trigger', 'acknowledge', 'change', 'resolve'], pages
    assert {what for what, _key in pages[4:]} <= {'resolve'}, pages
    assert {key for what, key in pages if what != 'change'} == {dedup_key}
    assert [s[1] for s in sent if s[0] == 'statuspage'] == ['investigating', 'identified', 'monitoring', 'resolved']
    # Grafana (its annotations API's stand-in): each moment marked once, however many events told it.
    marks = [a for a in standin('/state')['grafana_annotations'] if 'service:inference-gateway' in a['tags']]
    assert {a['tags'][-1] for a in marks} >= {'deploy', 'onset', 'action', 'recovered'}, marks
    assert len({(a['time'], tuple(a['tags'])) for a in marks}) == len(marks), marks
    assert all(a['tags'][:2] == ['sre.runbooks', 'service:inference-gateway'] for a in marks)

    documents = list(reports.glob('*/incident-*-high-error-rate.md'))
    assert len(documents) == 1, documents
    text = documents[0].read_text()
    assert '| Outcome | resolved: ' in text
    assert 'v1.2.2' in text
    for line in ('Told PagerDuty (opened): sent', 'Told Slack (action): sent', 'Told the status page (resolved): sent',
                 'Told PagerDuty (resolved): sent'):
        assert line in text, line
    assert '## SLO impact' in text and 'Error budget left' in text
    # Its graph, beside it: the error rate over the incident, the deploy, the rollback and the recovery marked.
    graph = documents[0].with_name(documents[0].stem + '-error-rate.svg')
    assert '](%s)' % graph.name in text
    drawn = graph.read_text()
    assert all('>%s<' % mark in drawn for mark in ('deploy v1.2.3', 'rollback', 'recovered')), drawn[-2000:]
    invite = documents[0].with_suffix('.ics').read_text()
    assert invite.startswith('BEGIN:VCALENDAR') and 'BEGIN:VEVENT' in invite

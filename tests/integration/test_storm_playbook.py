"""The alert storm through the whole runbook: twenty services fail through one dependency, and one
run over all of them (-e service=svc-00,...,svc-19) makes one incident, one page, one thread and
one escalation that names the dependency; no service is acted on, the cause not being its own.
The storm's parts are in storm_rig.py: a real Prometheus over a backfilled TSDB, API stand-ins of
its own (as Slack's, PagerDuty's and Statuspage's APIs document: the real services cannot be
reached from here), the services' health URLs on a small local server; the Docker engine is real
(the services have no containers: that evidence is missing, and said). The services' readiness
names payments "down", a plain string, not the demo apps' {"status": ...}.
"""

import re

import pytest

from promtsdb import free_port
from rig import playbook, told
from storm_rig import FLEET, Storm
from test_rig_evidence import escalation_pages


def threads(said):
    """The Slack messages that open a thread."""
    return [entry for entry in said if entry[0] == 'slack' and entry[2] is None and not entry[1].startswith('reaction')]


@pytest.fixture(scope='module')
def storm(tmp_path_factory):
    parts = Storm(tmp_path_factory.mktemp('storm'))
    yield parts
    parts.stop()


def test_twenty_services_failing_through_one_dependency_are_one_incident(storm):
    inventory = storm.inventory(FLEET)
    rc, output = playbook('playbooks/high_error_rate.yml', '-e', 'service=%s' % ','.join(FLEET), '-e', 'mitigate_mode=auto',
                          inventory=str(inventory), timeout=600)
    assert rc == 0, output[-5000:]
    journal = storm.journal()
    said = told(journal)

    # One thread, opened once; one status page incident; one page, the escalation's.
    assert [entry[1] for entry in threads(said)] == ['🔥 INCIDENT: High Error Rate - Svc 00'], said
    opening = next(e['body']['text'] for e in journal if e['api'] == 'slack' and e['path'].endswith('chat.postMessage'))
    assert 'Services: 20 failing: %s' % ', '.join(FLEET) in opening and 'Shared Cause: dependency payments' in opening
    assert len([entry for entry in said if entry == ('statuspage', 'investigating', None)]) == 1, said
    pages = escalation_pages(journal)
    assert len(pages) == 1 and len([e for e in said if e[0] == 'pagerduty' and e[1] == 'trigger']) == 1, said
    escalation = [e['body']['text'] for e in journal if e['api'] == 'slack'
                  and 'ESCALATION' in (e.get('body') or {}).get('text', '')]
    assert len(escalation) == 1
    assert 'Reason: 20 services fail through dependency payments: 20 failing services depend on payments' \
        in escalation[0] and 'payments answers 5xx itself (critical)' in escalation[0]

    # The nineteen others end at once, covered; the leader does not act on a cause not its own.
    covered = [line for line in output.splitlines() if 'covered by the incident of svc-00' in line]
    assert len(covered) == 19, output[-5000:]
    documents = sorted((inventory / 'incidents').rglob('*.md'))
    assert len(documents) == 1, documents
    text = documents[0].read_text()
    assert text.startswith('# Incident svc-00-')
    assert '## Services in this incident' in text and 'Shared cause: dependency payments' in text
    for name in FLEET[1:]:
        assert re.search(r'\| %s \| 23\.1%% \| 1[23]\.\d+ \| critical \| fails through the shared cause \|' % name, text), text
    actions = text[text.index('## Actions'):text.index('## SLO impact')]
    assert "- decision: escalate; reason: the cause is not this service's own: dependency payments fails " \
        "(payments answers 5xx itself (critical); its health check failed (HTTP 503)), and 20 services fail " \
        "through it" in actions
    assert '- applied: no' in actions and '- applied: yes' not in actions


def test_a_second_run_of_the_storm_opens_nothing_new(storm):
    """The same storm again (the alert repeated, an operator's second run): the covered services end
    again, and the leader's open incident keeps its one thread, one escalation page and one document."""
    inventory = storm.inventory(FLEET[:5], name='again')
    # One state for both runs: the incident records (rig.command gives each run its own otherwise).
    run = ['playbooks/high_error_rate.yml', '-e', 'service=%s' % ','.join(FLEET[:5]), '-e', 'mitigate_mode=auto',
           '-e', 'runbook_state_dir=%s' % (inventory / 'state')]
    threads_before, pages_before = len(threads(told(storm.journal()))), len(escalation_pages(storm.journal()))
    for _run in range(2):
        rc, output = playbook(*run, inventory=str(inventory), timeout=600)
        assert rc == 0, output[-5000:]
        assert output.count('covered by the incident of svc-00') == 4, output[-5000:]
    assert len(threads(told(storm.journal()))) == threads_before + 1
    assert len(escalation_pages(storm.journal())) == pages_before + 1
    assert len(list((inventory / 'incidents').rglob('*.md'))) == 1


def test_a_prometheus_that_does_not_answer_leaves_each_service_to_itself_and_pages_nobody(storm):
    """The storm cannot be measured: each service is handled on its own, as weak evidence (its error
    rate not measured either): no action, no page, and no run fails for another's sake."""
    inventory = storm.inventory(FLEET[:5], name='blind', runbook_prometheus_url='http://127.0.0.1:%d' % free_port())
    before = len(storm.journal())
    rc, output = playbook('playbooks/high_error_rate.yml', '-e', 'service=%s' % ','.join(FLEET[:5]),
                          '-e', 'mitigate_mode=approve', inventory=str(inventory), timeout=600)
    assert rc == 0, output[-5000:]
    assert 'covered by the incident' not in output
    for name in FLEET[:5]:
        assert 'RESOLUTION of %s: INSUFFICIENT_EVIDENCE' % name in output, output[-5000:]
    said = told(storm.journal()[before:])
    assert not [e for e in said if e[0] == 'pagerduty' and e[1] == 'trigger'], said

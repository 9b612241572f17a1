"""The alert storm's analysis (module_utils/analysis/storm.py): verdicts, the shared cause and its
evidence, suspects without evidence, and each failing service's role."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.storm import assess, dependency_states, describe, part_of, service_rows

THRESHOLDS = {'warning': 0.01, 'critical': 0.05, 'min_request_rate': 0.1}


def storm(services, errors, totals, checks=None, measured_extra=None, several=2):
    rows = service_rows(services, errors, totals, THRESHOLDS)
    measured = {row['name']: row['verdict'] for row in rows}
    measured.update(measured_extra or {})
    result = assess(rows, dependency_states(rows, measured, checks or {}), several)
    return result, {row['name']: row for row in result['services']}


def fleet(n, depends_on=('payments',), location=None):
    return [{'name': 'svc-%02d' % i, 'depends_on': list(depends_on), 'location': location} for i in range(n)]


def test_twenty_services_failing_through_a_failing_dependency_share_one_cause():
    services = fleet(20)
    totals = {s['name']: 10.0 for s in services}
    errors = {s['name']: 3.0 for s in services}
    result, rows = storm(services, errors, totals, measured_extra={'payments': 'critical'})
    assert result['storm'] is True and len(result['failing']) == 20
    shared = result['shared_cause']
    assert (shared['kind'], shared['name'], len(shared['services'])) == ('dependency', 'payments', 20)
    assert shared['evidence'] == ['20 failing services depend on payments: %s' % ', '.join(sorted(totals)),
                                  'payments answers 5xx itself (critical)']
    assert {row['role'] for row in rows.values()} == {'shared'}
    assert result['own_cause'] == [] and result['suspects'] == []
    assert rows['svc-00']['error_percent'] == 30.0 and rows['svc-00']['verdict'] == 'critical'
    assert 'Shared cause: dependency payments' in describe(result, 20)


def test_a_dependency_that_was_not_seen_failing_is_a_suspect_never_the_cause():
    services = fleet(3)
    totals = {s['name']: 10.0 for s in services}
    result, rows = storm(services, {s['name']: 2.0 for s in services}, totals)
    assert result['shared_cause'] is None and result['storm'] is True
    assert result['suspects'][0]['name'] == 'payments'
    assert 'not seen failing' in result['suspects'][0]['why_not']
    assert {row['role'] for row in rows.values()} == {'own'}
    text = describe(result, 3)
    assert 'No shared cause has evidence.' in text and 'Suspected, not proven' in text


def test_a_dependency_measured_healthy_is_neither_cause_nor_suspect():
    services = fleet(3)
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, {s['name']: 2.0 for s in services}, totals, measured_extra={'payments': 'ok'})
    assert result['shared_cause'] is None and result['suspects'] == []


def test_a_failed_health_check_is_evidence_that_the_dependency_fails():
    services = fleet(2)
    totals = {s['name']: 5.0 for s in services}
    checks = {'payments': {'ok': False, 'status': 503}}
    result, _rows = storm(services, {s['name']: 1.0 for s in services}, totals, checks=checks)
    assert result['shared_cause']['name'] == 'payments'
    assert result['shared_cause']['evidence'][-1] == 'its health check failed (HTTP 503)'


def test_the_dependency_in_the_list_is_the_root_and_a_service_apart_has_its_own_cause():
    services = [{'name': 'feature-store'}, {'name': 'model', 'depends_on': ['feature-store']},
                {'name': 'gateway', 'depends_on': ['feature-store', 'model']}, {'name': 'orders', 'depends_on': ['db']}]
    totals = dict.fromkeys(['feature-store', 'model', 'gateway', 'orders'], 10.0)
    errors = {'feature-store': 4.0, 'model': 3.0, 'gateway': 2.0, 'orders': 1.0}
    result, rows = storm(services, errors, totals)
    assert result['shared_cause']['name'] == 'feature-store'
    assert result['shared_cause']['services'] == ['gateway', 'model']
    assert (rows['feature-store']['role'], rows['model']['role'], rows['gateway']['role'], rows['orders']['role']) == \
        ('root', 'shared', 'shared', 'own')
    assert result['own_cause'] == ['feature-store', 'orders']
    # model fails too, with one failing dependent only: not a second shared cause.
    assert result['other_causes'] == []


def test_one_docker_host_with_healthy_services_elsewhere_is_a_location_cause():
    services = fleet(3, depends_on=(), location='docker-1') + [{'name': 'far', 'location': 'docker-2'}]
    totals = {s['name']: 10.0 for s in services}
    errors = dict({s['name']: 5.0 for s in services}, far=0.0)
    result, rows = storm(services, errors, totals)
    shared = result['shared_cause']
    assert (shared['kind'], shared['name']) == ('location', 'docker-1')
    assert shared['evidence'] == ['every failing service runs on docker-1', 'services elsewhere answer well: far']
    assert rows['far']['role'] is None and rows['svc-00']['role'] == 'shared'


def test_one_location_with_nothing_healthy_elsewhere_is_only_a_suspect():
    services = fleet(3, depends_on=(), location='docker-1') + [{'name': 'far', 'location': 'docker-2'}]
    totals = dict({s['name']: 10.0 for s in services}, far=0.01)
    result, _rows = storm(services, {s['name']: 5.0 for s in services}, totals)
    assert result['shared_cause'] is None and result['suspects'][0]['kind'] == 'location'
    assert result['suspects'][0]['why_not'] == ('every failing service runs on docker-1, but no service elsewhere '
                                                'was measured healthy to compare with')


def test_services_that_all_run_in_one_place_say_nothing_of_it():
    services = fleet(3, depends_on=(), location='docker-1')
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, {s['name']: 5.0 for s in services}, totals)
    assert result['shared_cause'] is None and result['suspects'] == []


@pytest.mark.parametrize('total, verdict', [(0.05, 'low_traffic'), (0.0, 'no_traffic'), (None, 'no_traffic')])
def test_little_traffic_is_weak_evidence_never_failing_never_zero(total, verdict):
    services = fleet(2)
    totals = {'svc-00': 10.0, 'svc-01': total} if total is not None else {'svc-00': 10.0}
    result, rows = storm(services, {'svc-00': 5.0, 'svc-01': 0.05}, totals, measured_extra={'payments': 'critical'})
    assert rows['svc-01']['verdict'] == verdict and rows['svc-01']['role'] is None
    assert result['weak_evidence'] == ['svc-01'] and result['failing'] == ['svc-00']
    # One failing service is not a storm, and shares nothing.
    assert result['storm'] is False and result['shared_cause'] is None
    assert 'Too little traffic or none to judge: svc-01.' in describe(result, 2)


def test_nothing_failing_says_so():
    services = fleet(2)
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, {}, totals, measured_extra={'payments': 'critical'})
    assert result['failing'] == [] and result['shared_cause'] is None
    assert describe(result, 2) == 'None of the 2 services answers 5xx above its threshold.'


def test_the_dependency_with_most_failing_dependents_comes_first():
    services = fleet(3, depends_on=('a',)) + fleet(5, depends_on=('b',))[3:]
    for s in services[:3]:
        s['depends_on'].append('b')
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, {s['name']: 5.0 for s in services}, totals,
                          measured_extra={'a': 'critical', 'b': 'warning'})
    assert result['shared_cause']['name'] == 'b' and len(result['shared_cause']['services']) == 5
    assert [c['name'] for c in result['other_causes']] == ['a']


def test_the_root_leads_the_storm_and_covers_the_services_that_fail_through_it():
    services = [{'name': 'feature-store'}, {'name': 'model', 'depends_on': ['feature-store']},
                {'name': 'gateway', 'depends_on': ['feature-store']}]
    totals = dict.fromkeys(['feature-store', 'model', 'gateway'], 10.0)
    result, _rows = storm(services, dict.fromkeys(totals, 3.0), totals)
    assert (result['leader'], result['covered']) == ('feature-store', ['model', 'gateway'])
    lead, covered = part_of(result, 'feature-store'), part_of(result, 'model')
    assert (lead['role'], lead['covered'], [r['name'] for r in lead['services']]) == \
        ('root', False, ['feature-store', 'model', 'gateway'])
    assert (covered['role'], covered['covered'], covered['leader']) == ('shared', True, 'feature-store')
    assert 'services' not in covered


def test_without_the_root_in_the_run_the_first_service_through_the_cause_leads():
    services = fleet(3)
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, dict.fromkeys(totals, 3.0), totals, measured_extra={'payments': 'critical'})
    assert (result['leader'], result['covered']) == ('svc-00', ['svc-01', 'svc-02'])
    assert part_of(result, 'svc-00')['covered'] is False and part_of(result, 'svc-00')['role'] == 'shared'


def test_without_a_shared_cause_nobody_leads_and_nobody_is_covered():
    services = fleet(3)
    totals = {s['name']: 10.0 for s in services}
    result, _rows = storm(services, dict.fromkeys(totals, 3.0), totals)
    assert (result['leader'], result['covered']) == (None, [])
    assert part_of(result, 'svc-01') == {'role': 'own', 'leader': None, 'covered': False,
                                         'failing': ['svc-00', 'svc-01', 'svc-02'], 'shared_cause': None}

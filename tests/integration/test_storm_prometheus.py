"""storm_info as Ansible runs it, against a real Prometheus (the Debian package) over a TSDB of
request counters backfilled with promtool: twenty services that fail through one dependency, and
services apart (storm_rig.py says which). Each service's figures are known: svc-07 answers 3 of its
13 req/s with 503 (23.077%).
"""

import pytest

from conftest import run_module
from promtsdb import free_port
from storm_rig import FLEET, backfilled


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    server = backfilled(tmp_path_factory.mktemp('prometheus'))
    yield server
    server.stop()


def storm(prom, services, **kw):
    args = {'url': prom.url, 'services': services, 'window': '2m', 'at': str(prom.end), 'timeout': 10, 'retries': 0}
    args.update(kw)
    return run_module('storm_info', args)


def fleet(*extra):
    return [{'name': name, 'depends_on': ['payments'], 'location': 'docker-1' if i < 10 else 'docker-2'}
            for i, name in enumerate(FLEET)] + list(extra)


def test_twenty_services_through_one_dependency_are_one_cause_in_two_queries(prometheus):
    result = storm(prometheus, fleet({'name': 'orders', 'depends_on': ['ledger']}, {'name': 'quiet'}))
    assert not result.get('failed'), result
    assert sorted(result['queries']) == ['errors', 'total']
    assert result['queries']['total'].startswith('sum by (service) (rate(http_requests_total{service=~"svc-00|svc-01|')
    rows = {row['name']: row for row in result['services']}
    assert rows['svc-07']['error_percent'] == pytest.approx(23.077, abs=0.01)  # 3 of 13 req/s
    assert rows['svc-07']['request_rate'] == pytest.approx(13.0, abs=0.01)
    assert result['failing'] == FLEET + ['orders'] and result['storm'] is True
    shared = result['shared_cause']
    assert (shared['kind'], shared['name'], shared['services']) == ('dependency', 'payments', FLEET)
    assert shared['evidence'][1] == 'payments answers 5xx itself (critical)'
    assert result['dependencies'] == {'ledger': 'ok', 'payments': 'critical'}
    assert {rows[name]['role'] for name in FLEET} == {'shared'}
    assert rows['orders']['role'] == 'own' and result['own_cause'] == ['orders']
    assert rows['quiet']['verdict'] == 'low_traffic' and result['weak_evidence'] == ['quiet']
    assert result['message'].startswith('21 of 22 services answer 5xx above the threshold: svc-00 23.1%')
    assert 'Shared cause: dependency payments (20 failing services depend on payments' in result['message']
    assert 'A cause of their own: orders.' in result['message']


def test_a_healthy_check_of_a_dependency_that_answers_5xx_does_not_clear_it(prometheus):
    result = storm(prometheus, fleet(), dependency_checks={'payments': {'ok': True, 'status': 200}})
    assert result['shared_cause']['name'] == 'payments'


def test_other_label_names_and_one_docker_host(prometheus):
    services = [{'name': 'billing', 'location': 'docker-7'}, {'name': 'invoices', 'location': 'docker-7'},
                {'name': 'shop', 'location': 'docker-8'}]
    result = storm(prometheus, services, service_label='app', status_label='code')
    assert not result.get('failed'), result
    assert result['failing'] == ['billing', 'invoices']
    shared = result['shared_cause']
    assert (shared['kind'], shared['name']) == ('location', 'docker-7')
    assert shared['evidence'] == ['every failing service runs on docker-7', 'services elsewhere answer well: shop']


def test_the_wrong_service_label_is_said_never_zero_percent(prometheus):
    result = storm(prometheus, [{'name': 'billing'}, {'name': 'invoices'}])
    assert result['failed']
    assert result['msg'] == ('no series of http_requests_total whose service label names one of the 2 services: '
                             'check metric, service_label and selector')
    assert 'errors' in result['queries']


def test_a_dependency_nobody_measured_is_a_suspect_only(prometheus):
    services = [{'name': name, 'depends_on': ['vault']} for name in FLEET[:3]]
    result = storm(prometheus, services)
    assert result['shared_cause'] is None and result['storm'] is True
    assert result['suspects'][0]['name'] == 'vault' and result['dependencies'] == {'vault': 'no_traffic'}
    assert 'Suspected, not proven: 3 failing services depend on vault, but it was not seen failing' in result['message']


def test_a_dependency_without_series_whose_health_check_fails_is_the_cause(prometheus):
    services = [{'name': name, 'depends_on': ['vault']} for name in FLEET[:3]]
    result = storm(prometheus, services, dependency_checks={'vault': {'ok': False, 'error': 'connection refused'}})
    assert result['shared_cause']['name'] == 'vault' and result['dependencies'] == {'vault': 'no_traffic'}
    assert result['shared_cause']['evidence'][1] == 'its health check failed (connection refused)'


def test_an_unreachable_prometheus_fails_in_one_sentence(prometheus):
    port = free_port()
    result = storm(prometheus, fleet(), url='http://127.0.0.1:%d' % port, timeout=2)
    assert result['failed'] and result['msg'].startswith('cannot reach Prometheus at http://127.0.0.1:%d' % port)
    assert '\n' not in result['msg']


@pytest.mark.parametrize('options, message', [
    ({'services': []}, 'services is empty: give the services that alert'),
    ({'services': [{'name': 'a'}, {'name': 'a'}]}, 'services names a more than once: each service once'),
    ({'window': 'often'}, "invalid option window: 'often' is not a duration"),
    ({'warning_percent': 10, 'critical_percent': 5},
     'invalid thresholds: need 0 < warning_percent (10.0) <= critical_percent (5.0) <= 100'),
    ({'several': 1}, 'invalid option several: 1; a cause is shared by 2 services or more'),
    ({'dependency_checks': {'payments': 'down'}},
     "dependency_checks[payments] must be a check result with 'ok' (a value of by_name of "
     "sre.runbooks.service_health_info), not 'down'"),
])
def test_bad_options_are_named(prometheus, options, message):
    result = storm(prometheus, options.pop('services', fleet()), **options)
    assert result['failed'] and result['msg'].startswith(message), result['msg']


def test_a_status_label_the_series_lack_is_said_never_zero_percent(prometheus):
    result = storm(prometheus, fleet(), status_label='code')
    assert result['failed']
    assert result['msg'].startswith("status_label 'code' matches nothing: http_requests_total{service=~\"svc-00|")
    assert 'series carry service, status' in result['msg']

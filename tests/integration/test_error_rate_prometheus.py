"""error_rate (and the label check of error_rate_watch) as Ansible runs them, against a real
Prometheus (the Debian package) over a TSDB of known series, backfilled with promtool.

checkout, up to T (when the module's tests start): /pay, /cart and /search at 10 req/s each. An earlier incident, /cart answering 503 to
half its requests from T-14m to T-8m; then /pay answering 500 to 30% from T-6m and 504 to 20%
more from T-3m (a bad deploy, then a slow dependency). ledger-grpc labels its status OK/ERROR.

Each module starts its own Prometheus (promtsdb.py) over data relative to when it runs.
"""

import pytest

from conftest import run_module
from promtsdb import MINUTE, Backfilled, last_step, openmetrics


def between(start, end, value, otherwise=0.0):
    return lambda t: value if start <= t < end else otherwise


def checkout_series(end):
    ok = {'service': 'checkout', 'status': '200'}
    return [
        (dict(ok, endpoint='/search'), lambda t: 10.0),
        (dict(ok, endpoint='/cart'), between(end - 14 * MINUTE, end - 8 * MINUTE, 5.0, 10.0)),
        (dict(ok, endpoint='/cart', status='503'),
         lambda t: None if t < end - 14 * MINUTE else between(end - 14 * MINUTE, end - 8 * MINUTE, 5.0)(t)),
        (dict(ok, endpoint='/pay'),
         lambda t: 10.0 if t < end - 6 * MINUTE else 7.0 if t < end - 3 * MINUTE else 5.0),
        (dict(ok, endpoint='/pay', status='500'), lambda t: None if t < end - 6 * MINUTE else 3.0),
        (dict(ok, endpoint='/pay', status='504'), lambda t: None if t < end - 3 * MINUTE else 2.0),
        ({'service': 'ledger-grpc', 'method': 'Post', 'status': 'OK'}, lambda t: 4.5),
        ({'service': 'ledger-grpc', 'method': 'Post', 'status': 'ERROR'}, lambda t: 0.5),
    ]


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    end = last_step()
    server = Backfilled(tmp_path_factory.mktemp('prometheus'),
                        openmetrics(checkout_series(end), end - 2 * 3600, end))
    server.end = end
    yield server
    server.stop()


def error_rate(prom, **kw):
    args = {'url': prom.url, 'service': 'checkout', 'window': '1m', 'lookback': '30m',
            'baseline_offset': '10m', 'at': str(prom.end), 'timeout': 10, 'retries': 0}
    args.update(kw)
    return run_module('error_rate_info', args)


def test_errors_split_by_status_each_with_its_own_onset(prometheus):
    end = prometheus.end
    result = error_rate(prometheus)
    assert not result.get('failed'), result.get('msg')
    assert result['verdict'] == 'critical'
    assert result['error_percent'] == pytest.approx(100 * 5 / 30.0, abs=0.3)
    assert result['top_group'] == '/pay' and result['groups'][0]['error_percent'] == pytest.approx(50, abs=1)
    statuses = result['by_status']
    assert [s['status'] for s in statuses] == ['500', '504']  # the earlier 503s answer no error now
    five, timeout = statuses
    assert five['error_rate'] == pytest.approx(3.0, abs=0.1)
    assert five['share_of_errors'] == pytest.approx(0.6, abs=0.02)
    assert timeout['share_of_errors'] == pytest.approx(0.4, abs=0.02)
    # Each onset within the rate window (1m) plus a step of the range query of its true start.
    assert end - 6 * MINUTE <= five['onset'] <= end - 5 * MINUTE + 12
    assert end - 3 * MINUTE <= timeout['onset'] <= end - 2 * MINUTE + 12
    assert five['shape'] == timeout['shape'] == 'spike'
    assert five['onset_iso'].endswith('Z')
    assert result['queries']['errors_by_status'] == (
        'sum by (status) (rate(http_requests_total{service="checkout",status=~"5.."}[1m]))')
    assert '; by status 500 60%% since %s, 504 40%% since %s' % (
        five['onset_iso'], timeout['onset_iso']) in result['message']
    check = result['label_check']
    assert check == {'checked': True, 'series_labels': ['endpoint', 'service', 'status'],
                     'status_values': ['200', '500', '503', '504'], 'message': None}


def test_a_baseline_on_an_earlier_incident_is_replaced_by_a_clean_window(prometheus):
    result = error_rate(prometheus)
    base = result['baseline']
    assert base['overlaps_incident'] is True
    first = base['windows'][0]
    assert (first['offset'], first['verdict']) == ('10m', 'critical')
    assert first['error_percent'] == pytest.approx(100 * 5 / 30.0, abs=0.3)
    assert (base['offset'], base['offset_seconds'], base['error_ratio'], base['verdict']) == \
        ('20m', 1200.0, 0.0, 'ok')
    assert [w['offset'] for w in base['windows']] == ['10m', '20m', '30m', '40m']
    # The groups follow: /cart's baseline is the clean window's 0%, not the incident's 50%.
    cart = next(g for g in result['groups'] if g['value'] == '/cart')
    assert cart['baseline_error_ratio'] == 0.0
    assert result['change_percent_points'] == pytest.approx(100 * 5 / 30.0, abs=0.3)
    assert ('; the baseline 10m ago falls on an earlier incident (16.7%): baseline 0.00% 20m ago '
            'instead;') in result['message']


def test_no_clean_window_is_no_baseline(prometheus):
    # At T-9m, inside the earlier incident (since T-14m): 1 to 4 minutes back all fail.
    result = error_rate(prometheus, at=str(prometheus.end - 9 * MINUTE), baseline_offset='1m')
    assert result['verdict'] == 'critical'
    base = result['baseline']
    assert base['overlaps_incident'] is True and base['offset'] is None
    assert base['error_ratio'] is None and result['change_percent_points'] is None
    assert [w['verdict'] for w in base['windows']] == ['critical'] * 4
    assert ('; the baseline 1m ago falls on this incident (16.7%) and no window up to 4m ago is '
            'clean: no clean baseline') in result['message']
    assert [s['status'] for s in result['by_status']] == ['503']


@pytest.mark.parametrize('options, message', [
    ({'status_label': 'code'},
     "status_label 'code' matches nothing: http_requests_total{service=\"checkout\"} series carry "
     "endpoint, service, status; set status_label to one of them"),
    ({'group_by': 'path'},
     "group_by 'path' matches nothing: http_requests_total{service=\"checkout\"} series carry "
     "endpoint, service, status; set group_by to one of them, or to '' for the overall figure only"),
    ({'selector': {'namespace': 'shop'}},
     "selector key 'namespace' matches nothing: http_requests_total{service=\"checkout\"} series "
     "carry endpoint, service, status; use one of them in selector, or remove namespace from it"),
])
def test_a_label_the_series_do_not_carry_fails_instead_of_reading_zero(prometheus, options, message):
    result = error_rate(prometheus, **options)
    assert result['failed'] and result['msg'] == message
    assert result['label_check']['series_labels'] == ['endpoint', 'service', 'status']


def test_the_watch_checks_its_labels_too(prometheus):
    result = run_module('error_rate_watch_info', {
        'url': prometheus.url, 'service': 'checkout', 'status_label': 'code', 'window': '1m',
        'interval': '1s', 'stable_for': '1s', 'deadline': '2s', 'timeout': 5, 'retries': 0})
    assert result['failed']
    assert result['msg'].startswith("status_label 'code' matches nothing: "
                                    'http_requests_total{service="checkout"} series carry endpoint')


def test_status_values_that_are_not_http_codes_are_warned_about(prometheus):
    result = error_rate(prometheus, service='ledger-grpc', group_by='method')
    assert not result.get('failed'), result.get('msg')
    assert result['verdict'] == 'ok' and result['error_percent'] == 0.0  # what the warning is about
    expected = ("status_label 'status' holds ERROR, OK, which do not look like HTTP status codes, "
                "and none matches status_regex '5..': the errors read as 0%")
    assert result['label_check']['message'].startswith(expected)
    shown = [w['event']['msg'] if isinstance(w, dict) else w for w in result['warnings']]
    assert any(w.startswith(expected) for w in shown)
    fixed = error_rate(prometheus, service='ledger-grpc', group_by='method', status_regex='ERROR')
    assert fixed['error_percent'] == pytest.approx(10.0, abs=0.3)
    assert fixed['label_check']['message'] is None and 'warnings' not in fixed

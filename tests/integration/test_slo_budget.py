"""slo_budget as Ansible runs it: against the rig's real Prometheus, which has the runbook's SLO
recording rules (read-only), and against a small HTTP server answering as the Prometheus HTTP API
does (/api/v1/query, success envelope with vectors) for the raw-counter fallback, no traffic and
a wrong service name."""

from urllib.parse import parse_qs, urlparse

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import human_duration
from conftest import Route, run_module
from rig import PROMETHEUS, query

SERVICE = 'inference-gateway'


def budget(url, **kw):
    args = {'url': url, 'service': SERVICE, 'timeout': 5, 'retries': 0}
    args.update(kw)
    return run_module('slo_budget_info', args)


def test_the_demo_gateway_from_its_recording_rules():
    result = budget(PROMETHEUS, incident_start='now-10m')
    assert not result.get('failed'), result.get('msg')
    assert result['source'] == 'rules'
    rule = float(query('slo:availability:ratio_rate30d{service="%s"}' % SERVICE)[0]['value'][1])
    assert abs(result['availability'] - rule) < 0.01  # evaluated a moment apart
    remaining = result['budget_remaining']
    assert remaining['allowed_minutes'] == 216.0
    assert abs(remaining['fraction'] - (1 - (1 - result['availability']) / 0.005)) < 0.5
    assert set(result['burn_rates']) == {'5m', '30m', '1h', '6h'}
    assert all(rate is not None and rate >= 0 for rate in result['burn_rates'].values())  # 20 req/s of load
    assert result['alerts']['page']['firing'] in (True, False)
    burned = result['budget_burned_during_incident']
    assert burned['duration_seconds'] == 600 and burned['requests'] > 1000
    assert result['queries']['availability_rule'] == 'slo:availability:ratio_rate30d{service="inference-gateway"}'
    assert result['message'].startswith('inference-gateway: availability ')
    # The rig's Prometheus holds hours at most of the 30 days: the figures say so.
    assert result['history_short'] is True and 0 < result['history_seconds'] < 30 * 86400
    assert 'of data held, of 30 days' in result['message']
    assert result['message'].endswith('from the recording rules, which rest on the %s of data held'
                                      % human_duration(result['history_seconds']))
    assert result['label_check']['checked'] is True and 'status' in result['label_check']['series_labels']


def fake(answers, times=None):
    """Answers each query with one sample: answers maps a part of the query to a value (None: an
    empty vector, 'NaN' as Prometheus sends it); the first part found in the query wins."""
    def route(handler):
        params = parse_qs(urlparse(handler.path).query)
        text = params['query'][0]
        if times is not None:
            times[text] = float(params['time'][0])
        value = next((v for part, v in answers.items() if part in text), None)
        result = [] if value is None else [{'metric': {}, 'value': [1795443780.0, str(value)]}]
        return Route(body={'status': 'success', 'data': {'resultType': 'vector', 'result': result}})
    return route


def test_counters_when_the_rules_have_no_data(server):
    times = {}
    server.routes['/api/v1/query'] = fake({
        'slo:': None,
        '5..\"}[30d]': 500, '[30d]': 1_000_000,
        '5..\"}[5m]': 0.1, '[5m]': 20, '5..\"}[30m]': 0.1, '[30m]': 20,
        '5..\"}[1h]': 3.0, '[1h]': 20, '5..\"}[6h]': 0.5, '[6h]': 20,
        '5..\"}[20m]': 1250, '[20m]': 24000,
    }, times)
    result = budget(server.url, incident_start='2026-11-23T14:20:00Z', incident_end='2026-11-23T14:40:00Z')
    assert result['source'] == 'counters'
    assert abs(result['availability'] - 0.9995) < 1e-9
    assert abs(result['budget_remaining']['fraction'] - 0.9) < 1e-9
    assert result['budget_remaining']['minutes'] == 194.4
    assert {w: round(r, 3) for w, r in result['burn_rates'].items()} == {'5m': 1.0, '30m': 1.0, '1h': 30.0, '6h': 5.0}
    assert result['current_burn_rate'] == result['burn_rates']['5m']
    assert result['alerts']['page']['firing'] is False and result['alerts']['ticket']['firing'] is False
    burned = result['budget_burned_during_incident']
    assert abs(burned['fraction'] - 0.25) < 1e-9 and burned['minutes'] == 54.0
    assert abs(burned['burn_rate'] - 1250 / 24000 / 0.005) < 1e-9
    # The incident's increases are taken at its end; everything else now.
    assert times[result['queries']['incident_total']] == 1795444800.0
    assert times[result['queries']['window_total']] > 1795444800.0


def test_no_traffic_is_not_full_availability(server):
    server.routes['/api/v1/query'] = fake({'slo:availability:ratio': 'NaN', 'slo:': 'NaN', '5..': None, 'http': 0})
    result = budget(server.url)
    assert not result.get('failed'), result.get('msg')
    assert result['availability'] is None and result['budget_remaining']['fraction'] is None
    assert result['source'] == 'counters'
    assert set(result['burn_rates'].values()) == {None}
    assert result['alerts']['page']['firing'] is None and result['alerts']['ticket']['firing'] is None
    assert 'no traffic is not 100%' in result['message']


def test_a_wrong_service_name_fails_with_a_clear_message(server):
    server.routes['/api/v1/query'] = fake({})
    result = budget(server.url, service='inference-gatway')
    assert result['failed']
    assert "no series of http_requests_total match service='inference-gatway' in the last 30d" in result['msg']


def test_bad_options_are_named(server):
    assert 'is not a duration' in budget(server.url, slo_window='a month')['msg']
    assert 'between 0 and 100' in budget(server.url, objective=100)['msg']
    assert 'must come before' in budget(server.url, incident_start='now', incident_end='now-1h')['msg']

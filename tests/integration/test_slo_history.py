"""slo_budget as Ansible runs it, against a real Prometheus (the Debian package) holding short
history, backfilled with promtool, with the runbook's SLO recording rules.

The data ends when the module's tests start. payments: 20 req/s for the last 5.5 minutes only,
20% of them answering 500 for one minute, from 4 to 3 minutes ago. archive: 10 req/s for the last
2 hours, 10% answering 500 for one minute 40 minutes ago.
"""

import json
import re
import time
import urllib.parse
import urllib.request

import pytest

from conftest import run_module
from promtsdb import Backfilled, last_step, openmetrics

MINUTE = 60
THIRTY_DAYS = 30 * 86400

RULES = '''groups:
  - name: slo
    interval: 1s
    rules:
      - record: slo:availability:ratio_rate30d
        expr: >-
          1 - sum by (service) (rate(http_requests_total{status=~"5.."}[30d]))
          / sum by (service) (rate(http_requests_total[30d]))
      - record: slo:availability:error_budget_remaining
        expr: 1 - (1 - slo:availability:ratio_rate30d) / 0.005
'''


def series(end):
    outage = (end - 4 * MINUTE, end - 3 * MINUTE)
    old_outage = (end - 40 * MINUTE, end - 39 * MINUTE)
    return [
        ({'service': 'payments', 'status': '200'},
         lambda t: None if t < end - 330 else 16.0 if outage[0] <= t < outage[1] else 20.0),
        ({'service': 'payments', 'status': '500'},
         lambda t: None if t < outage[0] else 4.0 if t < outage[1] else 0.0),
        ({'service': 'archive', 'status': '200'},
         lambda t: 9.0 if old_outage[0] <= t < old_outage[1] else 10.0),
        ({'service': 'archive', 'status': '500'},
         lambda t: None if t < old_outage[0] else 1.0 if t < old_outage[1] else 0.0),
    ]


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    end = last_step()
    server = Backfilled(tmp_path_factory.mktemp('prometheus'),
                        openmetrics(series(end), end - 2 * 3600, end), rules=RULES)
    server.end = end
    query = server.url + '/api/v1/query?' + urllib.parse.urlencode(
        {'query': 'slo:availability:ratio_rate30d{service="payments"}'})
    deadline = time.time() + 30
    while True:  # the rules' first evaluation
        with urllib.request.urlopen(query, timeout=5) as answer:
            if json.load(answer)['data']['result']:
                break
        assert time.time() < deadline, 'the recording rules never evaluated'
        time.sleep(0.5)
    yield server
    server.stop()


def budget(prom, **kw):
    args = {'url': prom.url, 'service': 'payments', 'availability_rule': '', 'budget_rule': '',
            'incident_start': str(prom.end - 4 * MINUTE), 'incident_end': str(prom.end - 3 * MINUTE),
            'timeout': 10, 'retries': 0}
    args.update(kw)
    return run_module('slo_budget_info', args)


def test_a_one_minute_outage_on_six_minutes_of_data_burns_a_sane_share_of_the_budget(prometheus):
    result = budget(prometheus)
    assert not result.get('failed'), result.get('msg')
    assert result['source'] == 'counters'
    assert result['window_seconds'] == THIRTY_DAYS
    assert 330 <= result['history_seconds'] <= 330 + 59 and result['history_short'] is True
    # About 20 req/s over the whole window, from the mean rate of the history held.
    assert result['expected_window_requests'] == pytest.approx(20.0 * THIRTY_DAYS, rel=0.12)
    burned = result['budget_burned_during_incident']
    assert burned['errors'] == pytest.approx(240, rel=0.12)
    # 0.2 x 60 s / (0.005 x 30 days) = 0.0926%, not "182% of the budget".
    assert 0.07 <= burned['percent'] <= 0.11, burned
    assert burned['minutes'] == pytest.approx(0.2, abs=0.04)
    # Availability is over the history held (about 240 errors in 6600 requests), and says so.
    assert result['availability'] == pytest.approx(1 - 240 / 6600.0, abs=0.01)
    assert result['message'].startswith('payments: availability %.3f%% over the 6 minutes of data '
                                        'held, of 30 days (objective 99.5%%), at that rate '
                                        % result['availability_percent'])
    assert '; the incident burned 0.0' in result['message']
    assert result['label_check']['series_labels'] == ['service', 'status']


def test_the_recording_rules_say_they_rest_on_short_history(prometheus):
    result = budget(prometheus, availability_rule='slo:availability:ratio_rate30d',
                    budget_rule='slo:availability:error_budget_remaining')
    assert result['source'] == 'rules' and result['history_short'] is True
    assert result['availability'] == pytest.approx(1 - 240 / 6600.0, abs=0.01)
    assert result['message'].endswith('; from the recording rules, which rest on the 6 minutes of '
                                      'data held')
    assert 0.07 <= result['budget_burned_during_incident']['percent'] <= 0.11


def test_history_older_than_an_hour_is_read_to_the_window_step(prometheus):
    result = budget(prometheus, service='archive', incident_start=str(prometheus.end - 40 * MINUTE),
                    incident_end=str(prometheus.end - 39 * MINUTE))
    # The first sample, 2 hours back, to the 5-minute step of the window's query.
    assert 7200 - 300 <= result['history_seconds'] <= 7200 + 59
    assert result['history_short'] is True
    assert re.search(r'availability 99\.9\d\d% over the 1(1[5-9]|20) minutes of data held, of 30 '
                     r'days', result['message']), result['message']
    # 10% of 10 req/s for 60 s: 60 errors of a 30-day budget of 0.005 x 10 x 2,592,000 requests.
    assert result['budget_burned_during_incident']['percent'] == pytest.approx(
        100 * 60 / (0.005 * 10 * THIRTY_DAYS), rel=0.15)


def test_a_window_the_history_covers_is_not_short(prometheus):
    result = budget(prometheus, service='archive', slo_window='1h',
                    incident_start=str(prometheus.end - 40 * MINUTE),
                    incident_end=str(prometheus.end - 39 * MINUTE))
    # From the first sample of the last hour, to the 5 s step of the recent query.
    assert 3600 - 10 <= result['history_seconds'] <= 3600 and result['history_short'] is False
    assert result['window_seconds'] == 3600
    assert result['budget_remaining']['allowed_minutes'] == 0.3
    assert 'data held' not in result['message']
    assert result['message'].startswith('archive: availability 99.8')
    assert 'over 1h (objective 99.5%), ' in result['message']
    # 60 errors of about 36,000 requests, at 0.5% allowed: about a third of the budget.
    assert result['budget_burned_during_incident']['percent'] == pytest.approx(100 / 3.0, rel=0.12)


def test_a_status_label_the_series_do_not_carry_fails(prometheus):
    result = budget(prometheus, status_label='code')
    assert result['failed']
    assert result['msg'] == ("status_label 'code' matches nothing: http_requests_total"
                             "{service=\"payments\"} series carry service, status; set "
                             "status_label to one of them")

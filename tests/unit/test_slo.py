"""The SLO maths on numbers worked out by hand: budget, burn rates, the multiwindow alerts, no
traffic, and the history Prometheus holds."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis import slo

OBJECTIVE = 0.995  # 0.5% of requests may fail
THIRTY_DAYS = 30 * 86400


def test_the_budget_is_one_minus_the_objective():
    assert slo.allowed_error_ratio(OBJECTIVE) == pytest.approx(0.005)
    with pytest.raises(ValueError, match='between 0 and 100'):
        slo.allowed_error_ratio(1.0)


def test_availability_and_no_traffic():
    assert slo.availability(5, 1000) == pytest.approx(0.995)
    assert slo.availability(None, 1000) == 1.0  # traffic but no 5xx series: no errors
    assert slo.availability(0, 0) is None  # no traffic is not 100%
    assert slo.availability(None, None) is None


def test_budget_remaining_untouched_half_spent_and_breached():
    assert slo.budget_remaining(1.0, OBJECTIVE) == pytest.approx(1.0)
    assert slo.budget_remaining(0.9975, OBJECTIVE) == pytest.approx(0.5)
    assert slo.budget_remaining(0.99, OBJECTIVE) == pytest.approx(-1.0)
    assert slo.budget_remaining(None, OBJECTIVE) is None


def test_budget_minutes_over_thirty_days():
    # 0.5% of 43200 minutes is 216 minutes of full downtime.
    assert slo.budget_minutes(1.0, OBJECTIVE, THIRTY_DAYS) == pytest.approx(216.0)
    assert slo.budget_minutes(0.25, OBJECTIVE, THIRTY_DAYS) == pytest.approx(54.0)
    assert slo.budget_minutes(None, OBJECTIVE, THIRTY_DAYS) is None


def test_burn_rate():
    assert slo.burn_rate(0.1, 20.0, OBJECTIVE) == pytest.approx(1.0)  # 0.5% errors: exactly on budget
    assert slo.burn_rate(1.44, 20.0, OBJECTIVE) == pytest.approx(14.4)
    assert slo.burn_rate(None, 20.0, OBJECTIVE) == 0.0
    assert slo.burn_rate(0.0, 0.0, OBJECTIVE) is None


def test_budget_burned_is_a_share_of_the_whole_window_budget():
    # 1,000,000 requests over the window allow 5000 errors; 1250 of them is a quarter.
    assert slo.budget_burned(1250, 1_000_000, OBJECTIVE) == pytest.approx(0.25)
    assert slo.budget_burned(None, 1_000_000, OBJECTIVE) is None
    assert slo.budget_burned(10, 0, OBJECTIVE) is None


@pytest.mark.parametrize('rates, page, ticket', [
    ({'1h': 15.0, '5m': 20.0, '6h': 7.0, '30m': 8.0}, True, True),
    ({'1h': 15.0, '5m': 2.0, '6h': 7.0, '30m': 8.0}, False, True),   # the page needs both windows
    ({'1h': 14.4, '5m': 20.0, '6h': 6.0, '30m': 6.5}, False, False),  # strictly above
    ({'1h': 3.0, '5m': 3.0, '6h': 1.0, '30m': 1.0}, False, False),
    ({'1h': None, '5m': 20.0, '6h': 7.0, '30m': None}, None, None),   # no traffic: unknown
])
def test_multiwindow_alerts(rates, page, ticket):
    alerts = slo.multiwindow_alerts(rates)
    assert alerts['page']['firing'] is page and alerts['ticket']['firing'] is ticket
    assert (alerts['page']['threshold'], alerts['page']['long_window'],
            alerts['page']['short_window']) == (14.4, '1h', '5m')
    assert (alerts['ticket']['threshold'], alerts['ticket']['long_window'],
            alerts['ticket']['short_window']) == (6.0, '6h', '30m')


NOW = 1_800_000_000.0


def test_history_held_from_the_recent_first_sample_when_the_series_began_within_the_hour():
    # 6 minutes held: the recent query (5 s steps) is exact; the window's (5 min steps) is late.
    assert slo.history_held(NOW, THIRTY_DAYS, NOW - 360, 3600, 5, NOW - 150) == 360.0
    # A window no longer than the recent span asks no window query.
    assert slo.history_held(NOW, 1800, NOW - 600, 1800, 3, None) == 600.0


def test_history_held_from_the_window_when_the_series_are_older_than_the_hour():
    # The recent query sees a sample at its very start: the history is the window query's.
    assert slo.history_held(NOW, THIRTY_DAYS, NOW - 3600 + 4, 3600, 5, NOW - 7200) == 7200.0
    # At most the window, however old the first sample found.
    assert slo.history_held(NOW, THIRTY_DAYS, NOW - 3600, 3600, 5, NOW - THIRTY_DAYS - 60) == THIRTY_DAYS
    # Series silent over the last hour still held their history before it.
    assert slo.history_held(NOW, THIRTY_DAYS, None, 3600, 5, NOW - 86400) == 86400.0
    # Series that stopped and started again within the hour: the first sample of all counts.
    assert slo.history_held(NOW, THIRTY_DAYS, NOW - 600, 3600, 5, NOW - 86400) == 86400.0


def test_no_series_no_history():
    assert slo.history_held(NOW, THIRTY_DAYS, None, 3600, 5, None) is None
    assert slo.history_short(None, THIRTY_DAYS) is None


def test_history_short_under_99_percent_of_the_window():
    assert slo.history_short(360.0, THIRTY_DAYS) is True
    assert slo.history_short(THIRTY_DAYS - 300, THIRTY_DAYS) is False  # to the window query's step
    assert slo.history_short(0.98 * THIRTY_DAYS, THIRTY_DAYS) is True


def test_expected_requests_over_the_window_at_the_mean_rate_held():
    # 6 minutes at 20 req/s held: 30 days at 20 req/s are expected.
    assert slo.expected_requests(7200.0, 360.0, THIRTY_DAYS) == pytest.approx(20.0 * THIRTY_DAYS)
    assert slo.expected_requests(1_000_000, THIRTY_DAYS, THIRTY_DAYS) == 1_000_000
    assert slo.expected_requests(1_000_000, None, THIRTY_DAYS) == 1_000_000  # history unknown
    assert slo.expected_requests(None, 360.0, THIRTY_DAYS) is None
    assert slo.expected_requests(5.0, 0.0, THIRTY_DAYS) == 5.0


def test_a_one_minute_outage_burns_its_share_of_the_whole_window_budget():
    # 20% of 20 req/s for 60 s on 6 minutes of history: 240 errors of a 30-day budget of
    # 0.005 x 20 x 2,592,000 = 259,200 requests, about 0.09%, not "182% of the budget".
    expected = slo.expected_requests(20.0 * 360, 360.0, THIRTY_DAYS)
    burned = slo.budget_burned(0.2 * 20 * 60, expected, OBJECTIVE)
    assert burned == pytest.approx(0.2 * 60 / (0.005 * THIRTY_DAYS))
    assert 100 * burned == pytest.approx(0.0926, abs=1e-4)
    assert slo.budget_minutes(burned, OBJECTIVE, THIRTY_DAYS) == pytest.approx(0.2, abs=1e-3)


def test_slo_queries_count_the_window_and_the_incident_whatever_their_length():
    from ansible_collections.sre.runbooks.plugins.module_utils.slo_budget_info import build_queries
    params = {'metric': 'm', 'service': 's', 'service_label': 'service', 'status_label': 'status',
              'status_regex': '5..', 'selector': {}, 'slo_window': '1h',
              'availability_rule': '', 'budget_rule': ''}
    q = build_queries(params, '5m', 3600.0)
    # A window or an incident as long as a burn window is still a count of requests, not a rate.
    assert q['window_total'] == 'sum(increase(m{service="s"}[1h]))'
    assert q['incident_errors'] == 'sum(increase(m{service="s",status=~"5.."}[5m]))'
    assert q['1h_total'] == 'sum(rate(m{service="s"}[1h]))'
    # The history held: to 5 s over the last hour; a 1h window needs no coarser query.
    assert q['history_recent'] == 'min(min_over_time(timestamp(m{service="s"})[1h:5s]))'
    assert 'history' not in q
    q = build_queries(dict(params, slo_window='30d'), None, THIRTY_DAYS)
    assert q['history'] == 'min(min_over_time(timestamp(m{service="s"})[30d:5m]))'
    assert 'incident_total' not in q


def slo_result(**extra):
    """A result of sre.runbooks.slo_budget_info as collect() builds it, before its message."""
    result = {
        'service': 'svc', 'objective': 99.5, 'slo_window': '30d', 'window_seconds': THIRTY_DAYS,
        'history_seconds': None, 'history_short': False, 'availability': 0.99873,
        'availability_percent': 99.873,
        'budget_remaining': {'fraction': 0.746, 'percent': 74.6, 'minutes': 161.136, 'allowed_minutes': 216.0},
        'budget_burned_during_incident': {'percent': 0.0926, 'minutes': 0.2},
        'current_burn_rate': 3.3912, 'alerts': {'page': {'firing': False}}, 'source': 'rules'}
    result.update(extra)
    return result


def test_slo_message_figures():
    from ansible_collections.sre.runbooks.plugins.module_utils.slo_budget_info import describe
    assert describe(slo_result()) == (
        'svc: availability 99.873% over 30d (objective 99.5%), 74.6% of the error budget left '
        '(161.1 of 216 minutes of downtime); the incident burned 0.0926% of the error budget of '
        '30 days (0.2 minutes of downtime); burn rate 3.39x over 5m; page alert not firing; from '
        'the recording rules')
    # A burn under 1% keeps three significant digits; a large one reads as a figure.
    text = describe(slo_result(budget_burned_during_incident={'percent': 12.345, 'minutes': 26.7},
                               current_burn_rate=14.4))
    assert 'the incident burned 12.3% of the error budget of 30 days (26.7 minutes' in text
    assert 'burn rate 14.4x over 5m' in text


@pytest.mark.parametrize('where', [
    'availability_percent', 'budget_remaining.percent', 'budget_remaining.minutes',
    'budget_burned_during_incident.minutes', 'current_burn_rate'])
def test_slo_message_survives_a_none_in_each_number(where):
    from ansible_collections.sre.runbooks.plugins.module_utils.slo_budget_info import describe
    result = slo_result()
    holder, key = (result, where) if '.' not in where else (result[where.split('.')[0]], where.split('.')[1])
    holder[key] = None
    text = describe(result)
    assert text.startswith('svc: availability ') and 'unknown' in text and 'None' not in text

"""The SLO maths on numbers worked out by hand: budget, burn rates, the multiwindow alerts, no
traffic."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils import slo

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

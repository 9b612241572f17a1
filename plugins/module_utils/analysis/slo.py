# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure SLO maths: availability, error budget, burn rates and the multiwindow burn-rate alerts.

Fractions throughout (0.995 is 99.5%). None means "no traffic, nothing to judge": no traffic is
never 100% availability, and a burn rate without traffic is unknown, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Burn-rate windows, the shortest first (the short one is the current burn rate).
BURN_WINDOWS = ('5m', '30m', '1h', '6h')

# History shorter than this share of the SLO window is short: its figures are not the window's.
FULL_HISTORY_SHARE = 0.99

# The multiwindow burn-rate alerts: (name, long window, short window, burn rate both must exceed).
# At 14.4x a 30-day budget lasts about two days (page); at 6x about five (ticket).
MULTIWINDOW_ALERTS = (('page', '1h', '5m', 14.4), ('ticket', '6h', '30m', 6.0))


def allowed_error_ratio(objective: float) -> float:
    """The error budget as a ratio of requests: 1 - objective (0.005 for 99.5%)."""
    if not 0.0 < objective < 1.0:
        raise ValueError('objective must be between 0 and 100%% (exclusive), not %g%%'
                         % (100 * objective))
    return 1.0 - objective


def availability(errors: float | None, total: float | None) -> float | None:
    """Share of requests that did not fail, None without traffic."""
    if total is None or total <= 0:
        return None
    return max(0.0, 1.0 - (errors or 0.0) / total)


def budget_remaining(avail: float | None, objective: float) -> float | None:
    """Share of the error budget left: 1 untouched, 0 spent, below 0 the SLO is breached."""
    if avail is None:
        return None
    return 1.0 - (1.0 - avail) / allowed_error_ratio(objective)


def budget_minutes(fraction: float | None, objective: float, window_seconds: float) -> float | None:
    """Minutes of full downtime a share of the budget is worth over the SLO window."""
    if fraction is None:
        return None
    return round(fraction * allowed_error_ratio(objective) * window_seconds / 60.0, 3)


def burn_rate(errors: float | None, total: float | None, objective: float) -> float | None:
    """How many times faster than allowed the budget burns: 1 spends it exactly over the window."""
    if total is None or total <= 0:
        return None
    return (errors or 0.0) / total / allowed_error_ratio(objective)


def budget_burned(errors: float | None, window_total: float | None, objective: float) -> float | None:
    """Share of the window's whole error budget that `errors` failed requests consumed;
    window_total: the requests of the whole window (see expected_requests)."""
    if errors is None or window_total is None or window_total <= 0:
        return None
    return errors / (allowed_error_ratio(objective) * window_total)


def multiwindow_alerts(burn_rates: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """{name: {firing, threshold, long_window, short_window}}; firing is None when either window
    had no traffic, so nothing can be said."""
    alerts: dict[str, dict[str, Any]] = {}
    for name, long_window, short_window, threshold in MULTIWINDOW_ALERTS:
        rates = (burn_rates.get(long_window), burn_rates.get(short_window))
        alerts[name] = {
            'firing': None if None in rates else all(rate > threshold for rate in rates if rate is not None),
            'threshold': threshold,
            'long_window': long_window,
            'short_window': short_window,
        }
    return alerts


def history_held(now: float, window_seconds: float, recent_first: float | None, recent_span: float, recent_step: float,
                 earliest: float | None) -> float | None:
    """Seconds of the SLO window the service's series cover, from their first sample to now.

    recent_first: the first sample in the last recent_span seconds, exact to recent_step;
    earliest: the first in the whole window, exact to a coarser step (None when not asked, as
    for a window no longer than recent_span). None when no series has a sample.
    """
    older = earliest is not None and earliest < now - recent_span + 2 * recent_step
    start = earliest if older or recent_first is None else recent_first
    if start is None:
        return None
    return max(0.0, min(window_seconds, now - start))


def history_short(history_seconds: float | None, window_seconds: float) -> bool | None:
    """Whether the history held falls short of the SLO window; None when it is unknown."""
    if history_seconds is None:
        return None
    return history_seconds < FULL_HISTORY_SHARE * window_seconds


def expected_requests(held_total: float | None, history_seconds: float | None, window_seconds: float) -> float | None:
    """Requests over the whole SLO window at the mean rate of the history held: what its error
    budget is a share of, when Prometheus holds less than the window. The requests held as they
    are when the history is unknown or covers the window."""
    if held_total is None or not history_seconds or history_seconds >= window_seconds:
        return held_total
    return held_total * window_seconds / history_seconds

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the runbook writes its figures, in the role summaries (the sre.runbooks filters rate,
percent, share, ms, seconds and count) and in its messages (Slack, the status page, PagerDuty,
the incident document). Pure. A value that is not a number (None, a missing measurement) reads as
words, never as a crash nor as "None"."""

from __future__ import annotations

import math
import numbers
from typing import Any

NO_TRAFFIC = 'no traffic'
NOT_AVAILABLE = 'n/a'
UNKNOWN = 'unknown'


def number(value: Any) -> float | None:
    """value as a finite float; None for None, a boolean, text that is not a number, NaN or an
    infinity (0/0 and x/0 are not measurements)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        return None
    try:
        result = float(value)
    except ValueError:
        return None
    return result if math.isfinite(result) else None


def _trim(text: str) -> str:
    """'0.0500' -> '0.05', '12.00' -> '12'."""
    return text.rstrip('0').rstrip('.') if '.' in text else text


def _digits(value: float) -> str:
    """A finite float with the digits it needs: one decimal from 10, two from 1, three
    significant digits under 1, '0' for zero."""
    size = abs(value)
    if size >= 10:
        return '%.1f' % value
    if size >= 0.9995:  # three significant digits of 0.9995 are 1.00
        return '%.2f' % value
    if size == 0:
        return '0'
    return _trim('%.*f' % (2 - math.floor(math.log10(size)), value))


def figure(value: Any, missing: str = NOT_AVAILABLE) -> str:
    """A measured figure with the digits it needs (a burn rate, minutes of budget): one decimal
    from 10 (19.6), two from 1 (4.93), three significant digits under 1 (0.05, 0.333), '0' for
    zero; `missing` ('n/a') for none."""
    value = number(value)
    return missing if value is None else _digits(value)


def rate(value: Any, unit: bool = False, missing: str = NO_TRAFFIC) -> str:
    """Requests per second, with the digits of a figure: one decimal from 10 (19.6), two from 1
    (4.93), three significant digits under 1 (0.05, 0.333), '0' for zero; with `unit`, ' req/s'
    after a number; `missing` ('no traffic') for none."""
    value = number(value)
    if value is None:
        return missing
    text = _digits(value)
    return text + ' req/s' if unit else text


def percent(value: Any, decimals: int | None = 1, trim: bool = False, missing: str = NOT_AVAILABLE) -> str:
    """A percentage (12.5 is 12.5%) with `decimals` decimals, '12.5%'; with `trim`, trailing zeros
    dropped ('12%', '0.3%'); with `decimals` None, the digits of a figure ('0.0926%', '1.30%');
    `missing` ('n/a') for none."""
    value = number(value)
    if value is None:
        return missing
    if decimals is None:
        return _digits(value) + '%'
    text = '%.*f' % (max(0, int(decimals)), value)
    return (_trim(text) if trim else text) + '%'


def share(value: Any, decimals: int | None = 0, trim: bool = False, missing: str = NOT_AVAILABLE) -> str:
    """A fraction as a percentage: 0.89 -> '89%' (a share of errors, a confidence); `missing`
    ('n/a') for none."""
    value = number(value)
    return percent(None if value is None else 100.0 * value, decimals, trim, missing)


def ms(value: Any) -> str:
    """A latency in milliseconds, '46 ms'; 'n/a' for none."""
    value = number(value)
    return NOT_AVAILABLE if value is None else '%.0f ms' % value


def seconds(value: Any) -> str:
    """A duration in seconds, '3 s' (one decimal under 10 s when not whole: '2.5 s'); 'n/a' for
    none."""
    value = number(value)
    if value is None:
        return NOT_AVAILABLE
    if abs(value) < 10 and value != round(value):
        return '%.1f s' % value
    return '%.0f s' % value


def count(value: Any) -> str:
    """A whole count (restarts, replicas, exit code), '3'; 'n/a' for none."""
    value = number(value)
    return NOT_AVAILABLE if value is None else '%d' % round(value)


def decimal(value: Any, decimals: int = 2, missing: str = NOT_AVAILABLE) -> str:
    """A plain number with at most `decimals` decimals, trailing zeros dropped ('39.96', '216');
    `missing` ('n/a') for none."""
    value = number(value)
    return missing if value is None else _trim('%.*f' % (max(0, int(decimals)), value))

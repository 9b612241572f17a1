# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations and points in time as the runbook reads and writes them (Prometheus syntax)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError

_DURATION_RE = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)')
_DURATION_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800,
                   'y': 31536000}
_RELATIVE_RE = re.compile(r'^now(?:\s*-\s*(\S+))?$')


def parse_duration(text: str | float) -> float:
    """Seconds in a Prometheus duration such as '30s', '5m' or '1h30m'."""
    text = str(text).strip()
    if re.fullmatch(r'\d+(\.\d+)?', text):
        return float(text)
    parts = _DURATION_RE.findall(text)
    if not text or ''.join(n + u for n, u in parts) != text:
        raise ValueError("'%s' is not a duration: use a number of seconds or units ms, s, m, h, "
                         "d, w, y as in '30s', '5m', '1h30m'" % text)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def option_seconds(params: dict[str, Any], option: str) -> float:
    """A module option that is a duration, in seconds, more than 0; RunbookError naming it otherwise."""
    try:
        seconds = parse_duration(params[option])
    except ValueError as err:
        raise RunbookError('invalid option %s: %s' % (option, err))
    if seconds <= 0:
        raise RunbookError("invalid option %s: '%s' must be more than 0s" % (option, params[option]))
    return seconds


def option_time(params: dict[str, Any], now: float, option: str = 'at') -> float:
    """The evaluation time a module option gives (now when empty); RunbookError naming it otherwise."""
    try:
        return resolve_time(params[option], now)
    except ValueError as err:
        raise RunbookError('invalid option %s: %s' % (option, err))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for whole seconds: 90 -> '90s', 300 -> '5m'."""
    seconds = int(round(seconds))
    for unit, size in (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size and seconds % size == 0:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % seconds


def human_duration(seconds: float) -> str:
    """A duration for people, in the largest unit that makes it at least 2, rounded: 372 ->
    '6 minutes', 2592000 -> '30 days', 1 -> '1 second'."""
    for unit, size in (('day', 86400), ('hour', 3600), ('minute', 60)):
        if seconds >= 2 * size:
            count = int(round(seconds / float(size)))
            return '%d %ss' % (count, unit)
    count = int(round(seconds))
    return '%d second%s' % (count, '' if count == 1 else 's')


def resolve_time(value: str | float | None, now: float) -> float:
    """Epoch seconds for an epoch number, 'now', 'now-15m' or an RFC 3339 timestamp."""
    if value is None:
        return now
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = _RELATIVE_RE.match(text)
    if match:
        return now - (parse_duration(match.group(1)) if match.group(1) else 0)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError("'%s' is not a time: use epoch seconds, 'now', 'now-15m' or RFC 3339 "
                         "such as '2026-11-23T14:23:00Z'" % text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def point_in_time(value: str | float, now: float) -> float:
    """Epoch seconds of '15m' (back from now), 'now', 'now-15m', epoch seconds or RFC 3339."""
    text = str(value).strip()
    if _DURATION_RE.findall(text) and ''.join(n + u for n, u in _DURATION_RE.findall(text)) == text:
        return now - parse_duration(text)
    return resolve_time(text, now)


def iso(epoch: float | None) -> str | None:
    """RFC 3339 UTC text for epoch seconds, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec='seconds').replace('+00:00', 'Z')


def moment(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch seconds or RFC 3339 text; None when absent or unreadable."""
    if value is None or value == '':
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        parsed = datetime.fromisoformat(str(value).strip().replace('Z', '+00:00'))
    except (ValueError, OverflowError, OSError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def epoch(value: Any) -> float | None:
    """Epoch seconds of what moment() reads; None when absent or unreadable."""
    parsed = moment(value)
    return parsed.timestamp() if parsed else None

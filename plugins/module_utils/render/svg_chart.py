# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident's graph as an SVG document: pure, no plotting library.

Series are lines over time in the unit of an axis (PERCENT, the error rate; seconds_axis(), a
response-time quantile); thresholds are dashed horizontal lines; markers are vertical lines at
the moments the runbook names (the deploy it blamed, each action, the recovery), labelled at the
top, staggered so that close ones stay readable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 880, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 180, 56, 44
COLORS = ('#c0392b', '#2471a3', '#d68910', '#7d3c98', '#1e8449', '#5d6d7e')
MARKER_COLORS = {'deploy': '#7d3c98', 'action': '#1e8449', 'recovered': '#2471a3', 'onset': '#c0392b'}


class Axis(NamedTuple):
    """The unit of a chart's values: its caption above the plot, the least top of the scale, and
    how a tick reads."""
    caption: str
    floor: float
    tick: Callable[[float], str]


def _percent_tick(level: float) -> str:
    return '%g%%' % round(level, 6)


def seconds_tick(seconds: float) -> str:
    """A tick of a response time: '0 ms', '250 ms', '1.5 s' (ms under 1 s)."""
    if round(seconds, 9) < 1:
        return '%g ms' % round(1000 * seconds, 6)
    return '%g s' % round(seconds, 6)


# The error rate, in percent of the requests (1% at least at the top of the scale).
PERCENT = Axis('% of requests answering 5xx', 1.0, _percent_tick)


def seconds_axis(quantile: str = 'p99') -> Axis:
    """A response-time quantile, in seconds (10 ms at least at the top of the scale)."""
    return Axis('%s of the response time' % quantile, 0.01, seconds_tick)


def _nice_step(span: float, ticks: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts span into about `ticks` parts."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _time_step(span: float) -> float:
    return next((s for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
                 if span / s <= 8), 43200)


def _clock(epoch: float) -> str:
    return time.strftime('%H:%M:%S' if epoch % 60 else '%H:%M', time.gmtime(epoch))


def error_rate_chart(title: str, series: Sequence[dict[str, Any]], markers: Sequence[dict[str, Any]] = (),
                     thresholds: Sequence[dict[str, Any]] = (), start: float | None = None,
                     end: float | None = None) -> str:
    """incident_chart() of the error rate: series of percentages, thresholds ({label, percent})."""
    return incident_chart(title, series, markers, [{'label': t['label'], 'value': t['percent']} for t in thresholds],
                          start, end, PERCENT)


def incident_chart(title: str, series: Sequence[dict[str, Any]], markers: Sequence[dict[str, Any]] = (),
                   thresholds: Sequence[dict[str, Any]] = (), start: float | None = None,
                   end: float | None = None, axis: Axis = PERCENT) -> str:
    """SVG of series ({name, points: [[epoch, value], ...]}), thresholds ({label, value}) and
    markers ({at: epoch, label, kind: deploy | action | recovered | onset}) between start and end
    (default: the points' span); values in the unit of axis (PERCENT, or seconds_axis())."""
    times = [p[0] for s in series for p in s['points']]
    start = min(times) if start is None and times else start or 0.0
    end = max(times) if end is None and times else end or start + 60.0
    if end <= start:
        end = start + 60.0
    peak = max([p[1] for s in series for p in s['points'] if p[1] is not None]
               + [t['value'] for t in thresholds] + [axis.floor])
    y_step = _nice_step(peak * 1.1, 5)  # headroom above the peak for the markers' labels
    y_max = y_step * math.ceil(peak * 1.1 / y_step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + (at - start) / (end - start) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - min(value, y_max) / y_max * plot_h

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">' % (WIDTH, HEIGHT, WIDTH, HEIGHT),
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           '<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>' % (LEFT, escape(title)),
           '<text x="%d" y="36" fill="#555555">%s, %s to %s UTC</text>' % (
               LEFT, escape(axis.caption), time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(start)), _clock(end))]
    level = 0.0
    while level <= y_max + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>' % (LEFT, y(level), LEFT + plot_w, y(level)))
        out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#555555">%s</text>' % (
            LEFT - 6, y(level) + 4, escape(axis.tick(level))))
        level += y_step
    step = _time_step(end - start)
    tick = math.ceil(start / step) * step
    while tick <= end:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999"/>' % (
            x(tick), TOP + plot_h, x(tick), TOP + plot_h + 4))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>' % (
            x(tick), TOP + plot_h + 17, _clock(tick)))
        tick += step
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999999"/>' % (LEFT, TOP, plot_w, plot_h))
    for threshold in thresholds:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c0392b" stroke-dasharray="6,4"/>' % (
            LEFT, y(threshold['value']), LEFT + plot_w, y(threshold['value'])))
        out.append('<text x="%d" y="%.1f" fill="#c0392b">%s</text>' % (
            LEFT + plot_w + 6, y(threshold['value']) + 4, escape(threshold['label'])))
    legend_y = TOP + 4
    for index, line in enumerate(series):
        color = COLORS[index % len(COLORS)]
        drawn = [(at, v) for at, v in line['points'] if v is not None and start <= at <= end]
        if drawn:
            out.append('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>' % (
                color, '2.2' if index == 0 else '1.4', ' '.join('%.1f,%.1f' % (x(at), y(v)) for at, v in drawn)))
        legend_y += 16
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>' % (
            LEFT + plot_w + 6, legend_y, LEFT + plot_w + 24, legend_y, color))
        out.append('<text x="%d" y="%d">%s</text>' % (LEFT + plot_w + 28, legend_y + 4, escape(line['name'][:24])))
    last_x = -1e9
    row = 0
    for marker in sorted(markers, key=lambda m: m['at']):
        if not start <= marker['at'] <= end:
            continue
        mx = x(marker['at'])
        row = row + 1 if mx - last_x < 90 else 0
        last_x = mx
        color = MARKER_COLORS.get(marker.get('kind', ''), '#333333')
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.2" stroke-dasharray="3,3"/>' % (
            mx, TOP, mx, TOP + plot_h, color))
        out.append('<text x="%.1f" y="%d" fill="%s">%s</text>' % (
            mx + 3, TOP + 12 + 12 * (row % 3), color, escape(marker['label'][:40])))
    out.append('</svg>')
    return '\n'.join(out) + '\n'

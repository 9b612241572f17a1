# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure reading of a /metrics page (Prometheus text exposition) and of connection pools in it."""

from __future__ import annotations

import math
import re
from typing import Any

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# Suffixes of pool gauges: pg_pool_max, pg_pool_active, pg_pool_idle, pg_pool_waiting, ...
_ROLES = {'max': 'capacity', 'size': 'capacity', 'total': 'capacity', 'limit': 'capacity',
          'active': 'used', 'used': 'used', 'in_use': 'used', 'busy': 'used',
          'idle': 'free', 'available': 'free', 'free': 'free',
          'waiting': 'waiting', 'pending': 'waiting', 'waiters': 'waiting'}


def parse_exposition(text: str, name_regex: str | None = None) -> list[dict[str, Any]]:
    """[{name, labels, value}] of the samples whose name matches name_regex (all when None)."""
    wanted = re.compile(name_regex) if name_regex else None
    samples: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match or (wanted and not wanted.search(match.group(1))):
            continue
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace('\\\\', '\\')
                  for k, v in _LABEL.findall(match.group(3) or '')}
        samples.append({'name': match.group(1), 'labels': labels,
                        'value': value if math.isfinite(value) else None})
    return samples


def _pool_key(sample: dict[str, Any]) -> tuple[str | None, str | None]:
    for suffix, role in sorted(_ROLES.items(), key=lambda item: -len(item[0])):
        if sample['name'].endswith('_' + suffix):
            prefix = sample['name'][:-len(suffix) - 1]
            labels = ','.join('%s=%s' % kv for kv in sorted(sample['labels'].items()))
            return '%s{%s}' % (prefix, labels) if labels else prefix, role
    return None, None


def exhausted_pools(samples: list[dict[str, Any]]) -> list[str]:
    """Pools with nothing free: all connections used, or callers waiting with none idle."""
    pools: dict[str, dict[str | None, float]] = {}
    for sample in samples:
        key, role = _pool_key(sample)
        if key and sample['value'] is not None:
            pools.setdefault(key, {})[role] = sample['value']
    exhausted = []
    for key, figures in sorted(pools.items()):
        capacity, used = figures.get('capacity'), figures.get('used')
        full = capacity is not None and used is not None and capacity > 0 and used >= capacity
        starved = figures.get('waiting', 0) > 0 and figures.get('free', 1) == 0
        if full or starved:
            exhausted.append(key)
    return exhausted

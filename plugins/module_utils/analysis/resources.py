# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container resource figures and their verdicts: pure maths, no I/O.

Inputs are shaped exactly as the Docker Engine API returns them (GET /containers/{id}/stats with
stream=false, GET /containers/{id}/json, GET /events), for cgroup v1 and v2 hosts, or are series of Prometheus instant queries already
normalised by module_utils.prometheus.

CPU percent: of the container's CPU limit when one is set (HostConfig.NanoCpus, else
CpuQuota/CpuPeriod, capped by the number of CPUs in CpusetCpus), else of one core, as
`docker stats` shows it; so without a limit a container using two full cores reads 200%.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FIGURES = ('cpu_percent', 'memory_percent', 'throttled_ratio', 'restart_count', 'oom_kills')
MIB = 1024.0 * 1024.0
GIB = 1024.0 * MIB


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def cpuset_size(cpuset: str | None) -> int | None:
    """Number of CPUs in a cpuset list such as '0-2,4', or None when empty or malformed."""
    count = 0
    for part in (cpuset or '').split(','):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition('-')
        try:
            first = int(low)
            count += (int(high) - first + 1) if sep else 1
        except ValueError:
            return None
    return count or None


def cpu_limit_cores(host_config: dict[str, Any] | None) -> float | None:
    """Cores a container may use by its HostConfig, or None without a CPU limit."""
    host_config = host_config or {}
    limit: float | None = None
    nano = host_config.get('NanoCpus') or 0
    quota = host_config.get('CpuQuota') or 0
    if nano > 0:
        limit = nano / 1e9
    elif quota > 0:
        limit = quota / float(host_config.get('CpuPeriod') or 100000)
    cpus = cpuset_size(host_config.get('CpusetCpus'))
    if cpus is not None and (limit is None or cpus < limit):
        limit = float(cpus)
    return limit


def cpu_figures(stats: dict[str, Any], limit_cores: float | None) -> dict[str, Any]:
    """CPU use over the stats sample: cores, percent (of the limit, else of one core), basis and
    percent of the whole host. Values are None when the sample has no previous reading."""
    cpu = stats.get('cpu_stats') or {}
    pre = stats.get('precpu_stats') or {}
    usage = cpu.get('cpu_usage') or {}
    total = usage.get('total_usage')
    pre_total = (pre.get('cpu_usage') or {}).get('total_usage')
    system, pre_system = cpu.get('system_cpu_usage'), pre.get('system_cpu_usage')
    online = cpu.get('online_cpus') or len(usage.get('percpu_usage') or []) or None
    figures: dict[str, Any] = {'cpu_cores': None, 'cpu_percent': None, 'host_cpu_percent': None,
                               'cpu_basis': 'limit' if limit_cores else 'core', 'online_cpus': online}
    if total is None or pre_total is None or system is None or pre_system is None or not online or not pre_system:
        return figures
    system_delta = system - pre_system
    if system_delta <= 0:
        return figures
    cores = max(0, total - pre_total) / float(system_delta) * online
    figures['cpu_cores'] = round(cores, 3)
    figures['cpu_percent'] = _round(100.0 * cores / (limit_cores or 1.0))
    figures['host_cpu_percent'] = _round(100.0 * cores / online)
    return figures


def memory_figures(stats: dict[str, Any], configured_limit: float = 0, host_memory: float | None = None) -> dict[str, Any]:
    """Working-set memory (usage minus inactive file cache, as `docker stats`) over the limit.

    cgroup v1 reports the cache as stats.total_inactive_file, v2 as stats.inactive_file. Without a
    limit the Engine reports the host's memory as the limit: limit_set is then False and the
    percent is of the host's memory.
    """
    mem = stats.get('memory_stats') or {}
    usage = mem.get('usage')
    limit = mem.get('limit') or None
    figures: dict[str, Any] = {'memory_bytes': None, 'memory_limit_bytes': limit, 'memory_percent': None,
                               'limit_set': bool(configured_limit and configured_limit > 0)}
    if host_memory and limit and limit < host_memory:
        figures['limit_set'] = True
    if usage is None:
        return figures
    inner = mem.get('stats') or {}
    used = usage
    v1_cache = inner.get('total_inactive_file')
    if v1_cache is not None and v1_cache < usage:
        used = usage - v1_cache
    elif inner.get('inactive_file') is not None and inner['inactive_file'] < usage:
        used = usage - inner['inactive_file']
    figures['memory_bytes'] = used
    if limit:
        figures['memory_percent'] = _round(100.0 * used / limit)
    return figures


def throttling_figures(stats: dict[str, Any]) -> dict[str, float]:
    """Share of CFS periods in which the container was throttled: over the stats sample
    (throttled_ratio) and since it started (throttled_ratio_total); 0 without a CPU quota."""
    now = (stats.get('cpu_stats') or {}).get('throttling_data') or {}
    before = (stats.get('precpu_stats') or {}).get('throttling_data') or {}
    periods, throttled = now.get('periods') or 0, now.get('throttled_periods') or 0
    delta_periods = periods - (before.get('periods') or 0)
    delta_throttled = throttled - (before.get('throttled_periods') or 0)
    return {
        'throttled_ratio': round(delta_throttled / float(delta_periods), 3)
        if delta_periods > 0 else 0.0,
        'throttled_ratio_total': round(throttled / float(periods), 3) if periods else 0.0,
        'throttled_seconds_total': round((now.get('throttled_time') or 0) / 1e9, 3),
    }


def event_counts(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per container id: OOM events and non-zero exits (die events) with their exit codes."""
    counts: dict[str, dict[str, Any]] = {}
    for event in events:
        actor = event.get('Actor') or {}
        cid = actor.get('ID') or event.get('id')
        if not cid:
            continue
        attributes = actor.get('Attributes') or {}
        entry = counts.setdefault(cid, {'name': attributes.get('name'), 'oom': 0,
                                        'exit_codes': []})
        action = event.get('Action') or event.get('status')
        if action == 'oom':
            entry['oom'] += 1
        elif action == 'die':
            code = attributes.get('exitCode')
            if code not in (None, '', '0'):
                try:
                    entry['exit_codes'].append(int(code))
                except ValueError:
                    entry['exit_codes'].append(code)
    return counts


def docker_container(summary: dict[str, Any], details: dict[str, Any] | None, stats: dict[str, Any] | None, counts: dict[str, Any] | None,
                     host_memory: float | None = None) -> dict[str, Any]:
    """One container's figures from the Engine API answers; stats None for a stopped container."""
    details = details or {}
    state = details.get('State') or {}
    host_config = details.get('HostConfig') or {}
    counts = counts or {'oom': 0, 'exit_codes': []}
    names = summary.get('Names') or []
    limit = cpu_limit_cores(host_config)
    oom_killed_now = bool(state.get('OOMKilled'))
    record: dict[str, Any] = {
        'name': (details.get('Name') or (names[0] if names else summary.get('Id', ''))).lstrip('/'),
        'id': summary.get('Id') or details.get('Id'),
        'state': state.get('Status') or summary.get('State'),
        'running': bool(state.get('Running')) if state else summary.get('State') == 'running',
        'restarting': bool(state.get('Restarting')),
        'exit_code': state.get('ExitCode'),
        'started_at': state.get('StartedAt'),
        'cpu_limit_cores': limit,
        'restart_count': details.get('RestartCount', 0) if details else None,
        'oom_killed_now': oom_killed_now,
        'oom_kills': counts['oom'] + (1 if oom_killed_now and not counts['oom'] else 0),
        'nonzero_exits': len(counts['exit_codes']),
        'exit_codes': counts['exit_codes'],
    }
    if stats:
        record.update(cpu_figures(stats, limit))
        record.update(memory_figures(stats, host_config.get('Memory') or 0, host_memory))
        record.update(throttling_figures(stats))
    else:
        record.update(cpu_cores=None, cpu_percent=None, host_cpu_percent=None,
                      cpu_basis='limit' if limit else 'core', online_cpus=None,
                      memory_bytes=None, memory_percent=None,
                      memory_limit_bytes=host_config.get('Memory') or None,
                      limit_set=bool(host_config.get('Memory')), throttled_ratio=None,
                      throttled_ratio_total=None, throttled_seconds_total=None)
    return record


def _series_key(labels: dict[str, Any], container_label: str, service: str) -> str:
    if labels.get(container_label):
        return labels[container_label]
    for label in ('container', 'pod', 'name', 'id'):
        if labels.get(label):
            return labels[label]
    return service


def prometheus_containers(series_by_figure: Mapping[str, list[dict[str, Any]] | None], container_label: str, service: str) -> list[dict[str, Any]]:
    """Containers from Prometheus series: {figure: [series] or None when not queried}.

    A figure without a series for a container stays None (unknown), never 0.
    """
    containers: dict[str, dict[str, Any]] = {}
    for figure in FIGURES:
        for item in series_by_figure.get(figure) or []:
            labels = item.get('labels') or {}
            key = _series_key(labels, container_label, service)
            record = containers.setdefault(key, empty_prometheus_record(key, labels))
            value = item.get('value')
            if value is None:
                continue
            if figure in ('restart_count', 'oom_kills'):
                value = int(round(value))
            elif figure == 'throttled_ratio':
                value = round(value, 3)
            else:
                value = round(value, 1)
            if record[figure] is None or value > record[figure]:
                record[figure] = value
    for record in containers.values():
        if record['oom_kills'] is not None:
            record['oom_killed_now'] = None
    return [containers[key] for key in sorted(containers)]


def empty_prometheus_record(name: str, labels: dict[str, Any]) -> dict[str, Any]:
    return {'name': name, 'id': labels.get('id'), 'state': None, 'running': None,
            'restarting': None, 'exit_code': None, 'cpu_percent': None, 'cpu_cores': None,
            'cpu_limit_cores': None, 'cpu_basis': None, 'memory_bytes': None,
            'memory_limit_bytes': None, 'memory_percent': None, 'limit_set': None,
            'throttled_ratio': None, 'restart_count': None, 'oom_killed_now': None,
            'oom_kills': None, 'nonzero_exits': None}


def _size(nbytes: float) -> str:
    if nbytes >= GIB:
        return '%.1f GiB' % (nbytes / GIB)
    return '%.0f MiB' % (nbytes / MIB)


def _times(count: int) -> str:
    return 'once' if count == 1 else '%d times' % count


def container_reasons(record: dict[str, Any], thresholds: Mapping[str, float], since_text: str) -> tuple[list[str], bool]:
    """Sentences for what is wrong with one container, and whether it is saturated."""
    name, saturated = record['name'], False
    reasons: list[str] = []
    cpu = record.get('cpu_percent')
    if cpu is not None and cpu > thresholds['cpu_percent']:
        saturated = True
        cores = record.get('cpu_limit_cores')
        if cores:
            basis = 'of its %s-core limit' % ('%.1f' % cores if cores == int(cores) else '%g' % cores)
        elif record.get('cpu_basis') == 'core':
            basis = 'of one core (no CPU limit)'
        else:
            basis = ''
        reasons.append('%s: cpu %.0f%%%s > %g%%'
                       % (name, cpu, ' ' + basis if basis else '', thresholds['cpu_percent']))
    memory = record.get('memory_percent')
    if memory is not None and memory > thresholds['memory_percent']:
        saturated = True
        limit = record.get('memory_limit_bytes')
        if limit and record.get('limit_set'):
            basis = ' of its %s limit' % _size(limit)
        elif limit and record.get('limit_set') is False:
            basis = " of the host's %s (no memory limit)" % _size(limit)
        else:
            basis = ''
        reasons.append('%s: memory %.0f%%%s > %g%%'
                       % (name, memory, basis, thresholds['memory_percent']))
    throttled = record.get('throttled_ratio')
    if throttled is not None and 100.0 * throttled > thresholds['throttled_percent']:
        saturated = True
        reasons.append('%s: CPU-throttled in %.0f%% of CFS periods > %g%%'
                       % (name, 100.0 * throttled, thresholds['throttled_percent']))
    if record.get('oom_kills'):
        saturated = True
        reasons.append('%s: OOM-killed %s in %s' % (name, _times(record['oom_kills']), since_text))
    elif record.get('oom_killed_now'):
        saturated = True
        reasons.append('%s: its last exit was an OOM kill' % name)
    if record.get('restarting'):
        reasons.append('%s: restarting now (restart count %s)' % (name, record.get('restart_count')))
    elif record.get('state') and not record.get('running'):
        reasons.append('%s: not running (%s, exit code %s)' % (name, record['state'],
                                                               record.get('exit_code')))
    if record.get('nonzero_exits'):
        codes = record.get('exit_codes') or []
        reasons.append('%s: exited non-zero %s in %s%s' % (
            name, _times(record['nonzero_exits']), since_text,
            ' (exit codes %s)' % ', '.join(str(c) for c in sorted(set(codes), key=str))
            if codes else ''))
    return reasons, saturated


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def assess(containers: list[dict[str, Any]], thresholds: Mapping[str, float], since_text: str,
           gone: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Service-level figures and verdicts over its containers.

    gone: event counts of containers no longer present (replaced or removed), whose OOM kills
    and exits still count for the service.
    """
    reasons: list[str] = []
    saturated = False
    for record in containers:
        found, hot = container_reasons(record, thresholds, since_text)
        reasons.extend(found)
        saturated = saturated or hot
    gone = gone or {}
    gone_oom = sum(entry['oom'] for entry in gone.values())
    gone_exits = sum(len(entry['exit_codes']) for entry in gone.values())
    if gone_oom:
        saturated = True
        reasons.append('OOM-killed %s in %s in containers since removed (%s)' % (
            _times(gone_oom), since_text,
            ', '.join(sorted(e['name'] or cid[:12] for cid, e in gone.items() if e['oom']))))
    if gone_exits:
        reasons.append('exited non-zero %s in %s in containers since removed' % (
            _times(gone_exits), since_text))
    oom_kills = _sum(r.get('oom_kills') for r in containers)
    if gone_oom:
        oom_kills = (oom_kills or 0) + gone_oom
    throttled_values = [r.get('throttled_ratio') for r in containers]
    return {
        'max_cpu_percent': _max(r.get('cpu_percent') for r in containers),
        'max_memory_percent': _max(r.get('memory_percent') for r in containers),
        'max_throttled_ratio': _max(throttled_values),
        'oom_kills': oom_kills,
        'restarts': _sum(r.get('restart_count') for r in containers),
        'nonzero_exits': _sum([r.get('nonzero_exits') for r in containers]
                              + ([gone_exits] if gone else [])),
        'throttled': any(v is not None and 100.0 * v > thresholds['throttled_percent']
                         for v in throttled_values),
        'saturated': saturated,
        'running': _sum([1 if r['running'] else 0 for r in containers
                         if r.get('running') is not None]),
        'reasons': reasons,
        'thresholds': dict(thresholds),
    }

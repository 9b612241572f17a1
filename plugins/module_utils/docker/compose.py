# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compose services on a docker host.

Pure logic first (the collection's override file, the image history, crash-loop and port verdicts,
limits arithmetic, which compose command to run), then the little I/O it needs: the compose CLI
(v2 plugin `docker compose` or v1 `docker-compose`).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import event_time
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import resolve_time

HEADER = '''# Managed by the sre.runbooks collection (module sre.runbooks.compose_service) for compose
# project %s: applied after the project's own compose files, which are never rewritten.
# To drop the overrides of a service, delete its entry under "services" (or this whole file),
# then run `docker-compose up -d --no-deps <service>` with the project's own files.
'''
HISTORY_LIMIT = 50
SECRET_NAME = re.compile(r'TOKEN|SECRET|PASSWORD|KEY', re.I)
MASK = '********'
# Where a listener blocks the service's port: every address, and loopback (IPv4 and IPv6).
LISTEN_ADDRESSES = frozenset(('0.0.0.0', '127.0.0.1', '::', '::1'))
TCP_LISTEN = '0A'
_VERSION_RE = re.compile(r'''^version\s*:\s*["']?([0-9][0-9.]*)["']?\s*(?:#.*)?$''', re.M)
_SIZE_RE = re.compile(r'^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$', re.I)
_SIZE_UNITS = {'': 1, 'b': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4}
_KERNEL_OOM_RE = re.compile(r'Killed process|out of memory|oom-kill', re.I)


class ComposeError(RunbookError):
    """A compose command or state file failed; the message says which and what to check."""


# --------------------------------------------------------------------------- override file

def file_version(text: str | None) -> str | None:
    """The top-level `version` of a compose file's text, or None when it has none."""
    match = _VERSION_RE.search(text or '')
    return match.group(1) if match else None


def parse_override(text: str | None) -> dict[str, Any]:
    """The override document ({'version'?, 'services'}) from the file's text; {} when empty."""
    body = '\n'.join(line for line in (text or '').splitlines() if not line.lstrip().startswith('#'))
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise ValueError('the override file is not the JSON document sre.runbooks writes (%s): '
                         'fix or delete it' % err)
    if not isinstance(doc, dict) or not isinstance(doc.get('services', {}), dict):
        raise ValueError('the override file has no "services" mapping: fix or delete it')
    return doc


def render_override(doc: dict[str, Any], project: str) -> str:
    return HEADER % project + json.dumps(doc, indent=2, sort_keys=True) + '\n'


def with_version(doc: dict[str, Any], version: str | None) -> dict[str, Any]:
    """The document carrying the user's compose file version (none when the user's has none)."""
    doc = dict(doc)
    doc.pop('version', None)
    if version:
        doc['version'] = version
    doc.setdefault('services', {})
    return doc


def service_entry(doc: dict[str, Any], service: str) -> dict[str, Any]:
    return (doc.get('services') or {}).get(service) or {}


def update_service(doc: dict[str, Any], service: str, image: str | None = None, env: Mapping[str, Any] | None = None,
                   limits: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the document with the service's image pinned, env set (value) or unset (None),
    and limits (mem_limit, memswap_limit, cpus) set; empty mappings and entries disappear."""
    doc = copy.deepcopy(doc)
    services = doc.setdefault('services', {})
    entry = services.setdefault(service, {})
    if image:
        entry['image'] = image
    if env:
        environment = entry.setdefault('environment', {})
        for name, value in env.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = stringify(value)
        if not environment:
            del entry['environment']
    if limits:
        entry.update(limits)
    if not entry:
        del services[service]
    return doc


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


# --------------------------------------------------------------------------- image history

def observations(containers: Iterable[dict[str, Any]], deploy_list: Iterable[dict[str, Any]],
                 now: float) -> list[tuple[str, str | None, float]]:
    """(image, image_id, time) seen: each container at its creation (and now when running), each
    deploy's image at its time and the image it replaced just before."""
    seen: list[tuple[str, str | None, float]] = []
    for c in containers:
        seen.append((c['image'], c['image_id'], c['created_epoch']))
        if c['state'] == 'running':
            seen.append((c['image'], c['image_id'], now))
    for deploy in deploy_list:
        seen.append((deploy['image'], None, deploy['time']))
        if deploy.get('previous_image'):
            seen.append((deploy['previous_image'], None, deploy['time'] - 0.001))
    return [s for s in seen if s[0] and s[2] is not None]


def merge_history(history: Iterable[dict[str, Any]], seen: Iterable[tuple[str, str | None, float]],
                  limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """History entries {image, image_id, first_seen, last_seen}, one per image reference, oldest
    last_seen first, at most `limit` (the oldest dropped)."""
    by_image = {e['image']: dict(e) for e in history}
    for image, image_id, when in seen:
        entry = by_image.setdefault(image, {'image': image, 'image_id': None,
                                            'first_seen': when, 'last_seen': when})
        entry['first_seen'] = min(entry['first_seen'], when)
        entry['last_seen'] = max(entry['last_seen'], when)
        if image_id and (when >= entry['last_seen'] or not entry['image_id']):
            entry['image_id'] = image_id
    return sorted(by_image.values(), key=lambda e: e['last_seen'])[-limit:]


def newest_image(history: Sequence[dict[str, Any]]) -> str | None:
    """The image first seen last, or None."""
    return max(history, key=lambda e: e['first_seen'])['image'] if history else None


def previous_image(history: Iterable[dict[str, Any]], current: str | None) -> str | None:
    """The image the service ran last before the current one, or None."""
    older = [e for e in history if e['image'] != current]
    return max(older, key=lambda e: e['last_seen'])['image'] if older else None


def rollback_target(requested: str | None, current: str | None, pinned: str | None, previous: str | None,
                    newest: str | None = None) -> tuple[str | None, str | None]:
    """(target image, reason to refuse or None). A bare tag takes the current repository; without
    a request, the previous image, unless an earlier rollback already pinned the current one (a
    pinned image that is also the newest one seen was pinned to keep it, not rolled back to)."""
    if requested:
        if ':' in requested or '/' in requested or '@' in requested or not current:
            return requested, None
        return '%s:%s' % (repository(current), requested), None
    if pinned and pinned == current and current != newest:
        return current, None
    if not previous:
        return None, ('no previous image is known for this service (its history shows only %s): '
                      'give image' % (current or 'no image'))
    return previous, None


def repository(image: str) -> str:
    """The repository of an image reference (no tag, no digest)."""
    name = image.split('@')[0]
    slash = name.rfind('/')
    colon = name.rfind(':')
    return name[:colon] if colon > slash else name


# --------------------------------------------------------------------------- crash loop, OOM

def crash_verdict(events: Iterable[dict[str, Any]], containers: Sequence[dict[str, Any]], window_start: float,
                  threshold: int) -> tuple[bool, dict[str, Any]]:
    """(crash_loop, {restarts_in_window, dies_in_window, last_exit_code}).

    A restart is a start that follows a die of the same container in the window; the engine's own
    RestartCount counts too for containers created in the window (all its restarts are there).
    """
    recent = sorted((e for e in events if event_time(e) >= window_start), key=event_time)
    died: set[str | None] = set()
    restarts, dies, last_exit = 0, 0, None
    for event in recent:
        action = event.get('Action') or event.get('status')
        cid = event.get('id') or (event.get('Actor') or {}).get('ID')
        if action == 'die':
            dies += 1
            died.add(cid)
            code = ((event.get('Actor') or {}).get('Attributes') or {}).get('exitCode')
            last_exit = int(code) if code is not None and str(code).lstrip('-').isdigit() else last_exit
        elif action == 'start' and cid in died:
            restarts += 1
    by_count = sum(c['restart_count'] for c in containers
                   if c['created_epoch'] is not None and c['created_epoch'] >= window_start)
    restarts = max(restarts, by_count)
    if last_exit is None:
        last_exit = next((c['exit_code'] for c in containers if c['state'] != 'running'), None)
    crash_loop = restarts >= threshold or any(c['state'] == 'restarting' for c in containers)
    return crash_loop, {'restarts_in_window': restarts, 'dies_in_window': dies,
                        'last_exit_code': last_exit}


def kernel_oom_lines(text: str | None, container_ids: Iterable[str | None], pids: Iterable[Any]) -> list[str]:
    """Kernel log lines about OOM kills of the containers' processes: lines naming a container id
    (the oom-kill line's memcg) and the 'Killed process <pid>' lines of those or the given pids."""
    lines = [line for line in (text or '').splitlines() if _KERNEL_OOM_RE.search(line)]
    ids = [i for i in container_ids if i]
    pid_texts = {str(p) for p in pids if p}
    kept = []
    for line in lines:
        if any(i in line for i in ids):
            kept.append(line)
            pid_texts.update(re.findall(r'\bpid=(\d+)', line))
        elif any(re.search(r'Killed process %s\b' % p, line) for p in pid_texts):
            kept.append(line)
    return kept


# --------------------------------------------------------------------------- ports

def _address(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return '.'.join(str(b) for b in reversed(raw))
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = b''.join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    groups = ['%x' % int.from_bytes(words[i:i + 2], 'big') for i in range(0, 16, 2)]
    text = ':'.join(groups)
    # Shortest form for the addresses that matter here.
    return {'0:0:0:0:0:0:0:0': '::', '0:0:0:0:0:0:0:1': '::1'}.get(text, text)


def parse_proc_net_tcp(text: str) -> list[dict[str, Any]]:
    """Listening sockets of a /proc/net/tcp or tcp6 text: [{address, port, inode}]."""
    listening: list[dict[str, Any]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        hexaddr, _sep, hexport = fields[1].partition(':')
        listening.append({'address': _address(hexaddr), 'port': int(hexport, 16),
                          'inode': int(fields[9])})
    return listening


def listeners_on(port: int, listening: Iterable[dict[str, Any]]) -> dict[int, str]:
    """{inode: address} of the sockets listening on the port on an address that blocks it."""
    return {s['inode']: s['address'] for s in listening
            if s['port'] == port and s['address'] in LISTEN_ADDRESSES and s['inode']}


def cgroup_names(text: str | None, container_ids: Iterable[str | None]) -> bool:
    """True when a /proc/<pid>/cgroup text places the process in one of the containers."""
    return any(cid and cid in (text or '') for cid in container_ids)


def _proc_text(path: str) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return handle.read()
    except OSError:  # the process is gone, or not ours to read
        return ''


def port_holders(port: int, containers: Iterable[dict[str, Any]], proc: str = '/proc') -> list[dict[str, Any]]:
    """[{pid, command, address, in_service}] of the processes listening on the TCP port."""
    listening: list[dict[str, Any]] = []
    for name in ('tcp', 'tcp6'):
        listening.extend(parse_proc_net_tcp(_proc_text(os.path.join(proc, 'net', name))))
    inodes = listeners_on(port, listening)
    if not inodes:
        return []
    ids = [c['id'] for c in containers]
    pids = {c['pid'] for c in containers if c['pid']}
    holders = []
    for pid in sorted((d for d in os.listdir(proc) if d.isdigit()), key=int):
        try:
            links = [os.readlink(os.path.join(proc, pid, 'fd', fd))
                     for fd in os.listdir(os.path.join(proc, pid, 'fd'))]
        except OSError:
            continue
        held = [int(m.group(1)) for m in (re.match(r'socket:\[(\d+)\]$', link) for link in links)
                if m and int(m.group(1)) in inodes]
        if held:
            cmdline = _proc_text(os.path.join(proc, pid, 'cmdline')).replace('\0', ' ').strip()
            in_service = int(pid) in pids or cgroup_names(_proc_text(os.path.join(proc, pid, 'cgroup')), ids)
            holders.append({'pid': int(pid), 'command': cmdline, 'address': inodes[held[0]],
                            'in_service': in_service})
    return holders


# --------------------------------------------------------------------------- limits

def parse_size(text: str | float) -> int:
    """Bytes in '320m', '1g', '512k' or a plain number of bytes."""
    match = _SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError("memory '%s' is not a size: use bytes or a number with b, k, m, g as in "
                         "'320m' or '1g'" % text)
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def target_limits(base: Mapping[str, Any], memory: str | float | None = None, cpus: float | None = None,
                  memory_factor: float | None = None, cpu_factor: float | None = None) -> dict[str, int]:
    """{'memory': bytes, 'nano_cpus': int}, a key for each limit asked; factors multiply the base
    limits ({'memory', 'nano_cpus'}, 0 or None when there is no limit)."""
    target: dict[str, int] = {}
    if memory is not None:
        target['memory'] = parse_size(memory)
    if memory_factor is not None:
        if not base.get('memory'):
            raise ValueError('memory_factor needs a current memory limit and the container has '
                             'none: give memory instead')
        target['memory'] = int(base['memory'] * memory_factor)
    if cpus is not None:
        target['nano_cpus'] = int(round(cpus * 1e9))
    if cpu_factor is not None:
        if not base.get('nano_cpus'):
            raise ValueError('cpu_factor needs a current CPU limit (--cpus) and the container has '
                             'none: give cpus instead')
        target['nano_cpus'] = int(round(base['nano_cpus'] * cpu_factor))
    for key, value in target.items():
        if value <= 0:
            raise ValueError('the %s limit would be %s: give a positive value' % (key, value))
    return target


def limits_override(target: Mapping[str, int]) -> dict[str, float]:
    """The compose keys that persist the limits."""
    keys: dict[str, float] = {}
    if 'memory' in target:
        keys.update(mem_limit=target['memory'], memswap_limit=target['memory'])
    if 'nano_cpus' in target:
        keys['cpus'] = round(target['nano_cpus'] / 1e9, 3)
    return keys


def live_update(target: Mapping[str, int]) -> dict[str, int]:
    """The body of POST /containers/{id}/update for the limits."""
    body: dict[str, int] = {}
    if 'memory' in target:
        body.update(Memory=target['memory'], MemorySwap=target['memory'])
    if 'nano_cpus' in target:
        body['NanoCpus'] = target['nano_cpus']
    return body


def limits_differ(target: Mapping[str, int], memory: int | None, nano_cpus: int | None) -> bool:
    return ('memory' in target and target['memory'] != memory) or \
        ('nano_cpus' in target and target['nano_cpus'] != nano_cpus)


# --------------------------------------------------------------------------- decisions

def due(containers: Sequence[dict[str, Any]], threshold: float | None, key: str) -> bool:
    """Whether a restart or recreate is due: always without a threshold, else when a container of
    the service (or none at all) started (key 'started_epoch') or was created ('created_epoch')
    before it. A crash-looping container starts again and again, but only a recreate renews it."""
    if threshold is None or not containers:
        return True
    return any(c[key] is None or c[key] < threshold for c in containers)


def env_changes(override_env: Mapping[str, str], running_env: Mapping[str, str], requested: Mapping[str, Any]) -> list[str]:
    """Names whose override or running value differ from what is asked (value set, None unset)."""
    changed = []
    for name, value in requested.items():
        if value is None:
            if name in override_env:
                changed.append(name)
        elif override_env.get(name) != stringify(value) or running_env.get(name) != stringify(value):
            changed.append(name)
    return sorted(changed)


def env_dict(env_list: Iterable[str] | None) -> dict[str, str]:
    """Docker's ['NAME=value'] as a dict."""
    return {name: value for name, _sep, value in (item.partition('=') for item in env_list or [])}


def mask(name: str, value: str | None) -> str | None:
    return MASK if value is not None and SECRET_NAME.search(name) else value


def env_drift(running: Mapping[str, str], configured: Mapping[str, Any], image_env: Mapping[str, str]) -> list[dict[str, Any]]:
    """[{name, running, configured}] where the running environment differs from the rendered
    configuration; a variable only the image sets is not drift. Secret-looking values masked."""
    drift = []
    configured = {k: None if v is None else stringify(v) for k, v in configured.items()}
    for name in sorted(set(running) | set(configured)):
        if name in configured:
            differs = configured[name] is not None and running.get(name) != configured[name]
        else:
            differs = image_env.get(name) != running[name]
        if differs:
            drift.append({'name': name, 'running': mask(name, running.get(name)),
                          'configured': mask(name, configured.get(name))})
    return drift


def parse_config_hash(output: str, service: str) -> str | None:
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == service:
            return fields[1]
    return None


def container_facts(details: dict[str, Any]) -> dict[str, Any]:
    """What the module returns about a container (PUBLIC keys) plus what it needs inside."""
    state = details.get('State') or {}
    config = details.get('Config') or {}
    host = details.get('HostConfig') or {}
    return {
        'id': details.get('Id'), 'name': (details.get('Name') or '').lstrip('/'),
        'state': state.get('Status'), 'health': (state.get('Health') or {}).get('Status'),
        'restart_count': details.get('RestartCount', 0), 'exit_code': state.get('ExitCode'),
        'oom_killed': bool(state.get('OOMKilled')), 'image': config.get('Image'),
        'image_id': details.get('Image'), 'started_at': state.get('StartedAt'),
        'created_at': details.get('Created'), 'error': state.get('Error') or None,
        'pid': state.get('Pid') or None, 'env': env_dict(config.get('Env')),
        'labels': config.get('Labels') or {}, 'memory': host.get('Memory') or 0,
        'nano_cpus': host.get('NanoCpus') or 0, 'created_epoch': docker_time(details.get('Created')),
        'started_epoch': docker_time(state.get('StartedAt')),
    }


PUBLIC = ('id', 'name', 'state', 'health', 'restart_count', 'exit_code', 'oom_killed', 'image',
          'image_id', 'started_at', 'created_at', 'error')


def public(container: Mapping[str, Any]) -> dict[str, Any]:
    return {key: container[key] for key in PUBLIC}


# --------------------------------------------------------------------------- compose CLI

def parse_compose_version(output: str | None) -> str | None:
    match = re.search(r'v?(\d+\.\d+(?:\.\d+)?)', output or '')
    return match.group(1) if match else None


def supports_project_directory(version: str | None) -> bool:
    numbers = tuple(int(n) for n in (version or '0').split('.')[:2])
    return numbers >= (1, 13)


def compose_base(command: Iterable[str], version: str | None, project: str, project_dir: str | None, files: Iterable[str],
                 override: str | None) -> list[str]:
    args = list(command) + ['-p', project]
    if project_dir and supports_project_directory(version):
        args += ['--project-directory', project_dir]
    for path in list(files) + ([override] if override else []):
        args += ['-f', path]
    return args


ACTIONS = {
    'restarted': ['restart'],
    'recreated': ['up', '-d', '--no-deps', '--force-recreate'],
    'env': ['up', '-d', '--no-deps', '--force-recreate'],
    'rolled_back': ['up', '-d', '--no-deps'],
    'resources': ['up', '-d', '--no-deps'],
}


def action_args(state: str, service: str) -> list[str]:
    return ACTIONS[state] + [service]


def show(args: Iterable[str]) -> str:
    return ' '.join(shlex.quote(a) for a in args)


def run(args: list[str], timeout: float, cwd: str | None = None) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of a command; ComposeError when it cannot run or runs too long."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ComposeError('`%s` did not finish within %ss' % (show(args), timeout))
    except OSError as err:
        raise ComposeError('cannot run `%s`: %s' % (show(args), err))
    return proc.returncode, proc.stdout, proc.stderr


def detect_compose(choice: str, timeout: float) -> dict[str, Any]:
    """{'command': argv prefix, 'version'}: `docker compose` (v2) when it answers, else
    `docker-compose` (v1), for choice 'auto'; else the command given."""
    candidates = [['docker', 'compose'], ['docker-compose']] if choice == 'auto' else [shlex.split(choice)]
    tried = []
    for command in candidates:
        try:
            rc, out, err = run(command + ['version', '--short'], timeout)
        except ComposeError as error:
            tried.append(str(error))
            continue
        version = parse_compose_version(out) if rc == 0 else None
        if version:
            return {'command': command, 'version': version}
        tried.append('`%s version --short`: %s' % (show(command), tail_text(err or out, 2)))
    raise ComposeError('no usable compose command (%s): install docker-compose or the docker '
                       'compose plugin, or set compose_command' % '; '.join(tried))


def tail_text(text: str | None, lines: int = 15) -> str:
    return '\n'.join((text or '').strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- time

def docker_time(text: str | None) -> float | None:
    """Epoch seconds of Docker's nanosecond RFC 3339 time, None for the zero time."""
    try:
        epoch = resolve_time(re.sub(r'(\.\d{6})\d+', r'\1', text or ''), 0)
    except ValueError:
        return None
    return epoch if epoch > 0 else None

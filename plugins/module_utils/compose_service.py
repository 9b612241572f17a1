# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.compose_service (act) and compose_service_info (read): a compose service through
the Engine API (docker/engine.py) and the compose CLI, with an override file the collection owns
(docker/compose.py). Both modules run on the docker host, as processes: the body takes the
AnsibleModule (check mode, diff, warnings)."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import deploys, event_time
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.common.state_files import StateError, read_json, read_text, write_atomic, write_json
from ansible_collections.sre.runbooks.plugins.module_utils.common.times import iso, parse_duration, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.docker import compose as cu
from ansible_collections.sre.runbooks.plugins.module_utils.docker.engine import (
    DOCKER_ARGS,
    PROJECT_LABEL,
    container_events,
    docker_client,
    service_containers,
)
from ansible_collections.sre.runbooks.plugins.module_utils.logs.readers import Window, read_container

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False

ACTING = ('restarted', 'recreated', 'rolled_back', 'env', 'resources')
HISTORY_SECONDS = 86400
CLI_TIMEOUT = 60
FILES_LABEL = 'com.docker.compose.project.config_files'
DIR_LABEL = 'com.docker.compose.project.working_dir'
HASH_LABEL = 'com.docker.compose.config-hash'

READ_STATES = ('status', 'logs', 'config_check')
COMMON_ARGS = dict(
    service=dict(type='str', required=True),
    project=dict(type='str'),
    files=dict(type='list', elements='path'),
    project_dir=dict(type='path'),
    tail=dict(type='int', default=50),
    since=dict(type='str', default='10m'),
    crash_window=dict(type='str', default='5m'),
    crash_restarts=dict(type='int', default=3),
    port=dict(type='int'),
    state_dir=dict(type='path', default='/var/lib/sre-runbooks'),
    compose_command=dict(type='str', default='auto'),
    **DOCKER_ARGS
)
ACTING_ARGS: dict[str, dict[str, Any]] = dict(
    image=dict(type='str'),
    env=dict(type='dict'),
    memory=dict(type='str'),
    cpus=dict(type='float'),
    memory_factor=dict(type='float'),
    cpu_factor=dict(type='float'),
    if_started_before=dict(type='str'),
    wait=dict(type='bool', default=True),
    wait_timeout=dict(type='int', default=60),
)
SPEC = dict(
    argument_spec=dict(COMMON_ARGS, state=dict(type='str', default='status', choices=list(READ_STATES + ACTING)),
                       **ACTING_ARGS),
    required_if=[('state', 'env', ['env']),
                 ('state', 'resources', ['memory', 'cpus', 'memory_factor', 'cpu_factor'], True)],
    mutually_exclusive=[('memory', 'memory_factor'), ('cpus', 'cpu_factor')],
)
INFO_SPEC = dict(argument_spec=dict(COMMON_ARGS, state=dict(type='str', default='status', choices=list(READ_STATES))))


class ComposeService:
    def __init__(self, module: Any) -> None:
        self.module = module
        # compose_service_info takes none of the acting options.
        self.p = dict({name: spec.get('default') for name, spec in ACTING_ARGS.items()}, **module.params)
        self.service = self.p['service']
        self.client = docker_client(self.p)
        self.now = time.time()
        self.project = self.p['project']
        self.commands: list[str] = []
        self.planned_limits: dict[str, int] | None = None

    # ------------------------------------------------------------------ Docker facts

    def containers(self) -> list[dict[str, Any]]:
        facts = [cu.container_facts(details) for details in service_containers(self.client, self.service, self.project)]
        return sorted(facts, key=lambda c: -(c['created_epoch'] or 0))

    def resolve_project(self) -> tuple[list[dict[str, Any]], list[str], str]:
        containers = self.containers()
        if not self.project:
            projects = sorted({c['labels'].get(PROJECT_LABEL) for c in containers})
            if len(projects) != 1:
                raise RunbookError('%s: give project' % (
                    'compose service %r runs in several projects (%s)' % (self.service, ', '.join(projects))
                    if projects else 'no container of compose service %r on this host to take the '
                    'project, files and project_dir from' % self.service))
            self.project = projects[0]
        labels = containers[0]['labels'] if containers else {}
        files = self.p['files'] or [f for f in (labels.get(FILES_LABEL) or '').split(',') if f]
        project_dir = self.p['project_dir'] or labels.get(DIR_LABEL)
        if not files or not project_dir:
            missing = [name for name, value in (('files', files), ('project_dir', project_dir)) if not value]
            raise RunbookError('no container of compose service %r in project %r to take %s from: give %s'
                               % (self.service, self.project, ' and '.join(missing), 'them' if len(missing) > 1 else 'it'))
        return containers, [os.path.join(project_dir, f) for f in files], project_dir

    def image_exists(self, image: str) -> Any:
        response = self.client.request('GET', '/images/%s/json' % quote(image, safe='/:@'))
        if response.status == 404:
            return False
        return self.client.expect_json(response, self.client.url_for('/images/%s/json' % image))

    def logs(self, containers: list[dict[str, Any]], since: float, tail: int) -> list[dict[str, Any]]:
        window = Window(self.service, since, time.time(), time.time(), tail, 'TRACE')  # the docker reader filters no level
        summaries = [{'Id': c['id'], 'Names': [c['name']]} for c in containers]
        outcomes = run_all({s['Id']: (lambda s=s: read_container(self.client, s, window, True))
                            for s in summaries})
        lines: list[tuple[float | None, str, str | None, str | None]] = []
        for container in containers:
            read, error = outcomes[container['id']]
            if error is not None:
                raise error
            lines.extend(read[0])
        lines.sort(key=lambda e: e[0] or 0)
        return [{'time': iso(t) if t else None, 'container': name, 'stream': stream, 'line': text}
                for t, text, name, stream in lines[-tail:]]

    def oom(self, containers: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {'oom_killed': any(c['oom_killed'] for c in containers),
                                  'events': sum(1 for e in events if e.get('Action') == 'oom'),
                                  'kernel': [], 'note': None}
        try:
            rc, out, err = cu.run(['dmesg'], 10)
        except cu.ComposeError as error:
            rc, out, err = 1, '', str(error)
        if rc != 0:
            result['note'] = 'the kernel log is not readable here (%s)' % cu.tail_text(err, 1)
        else:
            result['kernel'] = cu.kernel_oom_lines(out, [c['id'] for c in containers],
                                                   [c['pid'] for c in containers])
        return result

    # ------------------------------------------------------------------ compose

    def compose_args(self, tail: list[str], with_override: bool) -> list[str]:
        return cu.compose_base(self.cli['command'], self.cli['version'], self.project, self.project_dir,
                               self.files, self.override_path if with_override else None) + tail

    def compose(self, tail: list[str], timeout: float = CLI_TIMEOUT) -> tuple[int, str, str]:
        args = self.compose_args(tail, read_text(self.override_path) is not None)
        self.commands.append(cu.show(args))
        return cu.run(args, timeout, cwd=self.project_dir)

    def compose_or_fail(self, tail: list[str], timeout: float) -> str:
        rc, out, err = self.compose(tail, timeout)
        if rc != 0:
            raise cu.ComposeError('`%s` failed (exit %s): %s' % (self.commands[-1], rc, cu.tail_text(err or out)))
        return out

    # ------------------------------------------------------------------ plans per state

    def plan(self, state: str, containers: list[dict[str, Any]], doc: dict[str, Any], history: list[dict[str, Any]],
             base_limits: dict[str, Any]) -> tuple[bool, dict[str, Any], list[str] | None, dict[str, int] | None]:
        """(changed, new override document, compose arguments or None, live update body or None)."""
        entry = cu.service_entry(doc, self.service)
        current = containers[0] if containers else None
        if state in ('restarted', 'recreated'):
            threshold = (resolve_time(self.p['if_started_before'], self.now)
                         if self.p['if_started_before'] else None)
            act = cu.due(containers, threshold,
                         'started_epoch' if state == 'restarted' else 'created_epoch')
            return act, doc, cu.action_args(state, self.service) if act else None, None
        if state == 'rolled_back':
            image = current['image'] if current else None
            target, refusal = cu.rollback_target(self.p['image'], image, entry.get('image'),
                                                 cu.previous_image(history, image), cu.newest_image(history))
            if refusal or target is None:
                raise RunbookError('not rolling back compose service %r: %s' % (self.service, refusal or 'no image to roll back to'))
            if not self.image_exists(target):
                raise RunbookError('not rolling back compose service %r: image %s is not on this host (never pulled '
                                   'here): check `docker images`' % (self.service, target))
            new_doc = cu.update_service(doc, self.service, image=target)
            return (image != target or entry.get('image') != target, new_doc,
                    cu.action_args(state, self.service) if image != target else None, None)
        if state == 'env':
            running = current['env'] if current else {}
            changed = bool(cu.env_changes(entry.get('environment') or {}, running, self.p['env']))
            keep = self.image_to_keep(current, entry) if changed else None
            new_doc = cu.update_service(doc, self.service, image=keep, env=self.p['env'])
            return changed, new_doc, cu.action_args(state, self.service) if changed else None, None
        # resources
        if not current:
            raise RunbookError('no container of compose service %r to change the limits of' % self.service)
        limits = self.planned_limits = cu.target_limits(base_limits, self.p['memory'], self.p['cpus'],
                                                        self.p['memory_factor'], self.p['cpu_factor'])
        new_doc = cu.update_service(doc, self.service, limits=cu.limits_override(limits))
        live = any(cu.limits_differ(limits, c['memory'], c['nano_cpus']) for c in containers)
        return (live or new_doc != doc, new_doc, None, cu.live_update(limits) if live else None)

    def image_to_keep(self, current: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
        """The running image, when recreating from the configuration would start another one (a
        deploy may have set the tag through its own environment): an env change never changes the
        image too."""
        if not current or entry.get('image'):
            return None
        configured = None
        if HAS_YAML:  # a read, not one of the commands the action runs
            rc, out, _err = cu.run(self.compose_args(['config'], read_text(self.override_path) is not None),
                                   CLI_TIMEOUT, cwd=self.project_dir)
            rendered = (yaml.safe_load(out) or {}) if rc == 0 else {}
            configured = ((rendered.get('services') or {}).get(self.service) or {}).get('image')
        return current['image'] if configured != current['image'] else None

    def base_limits(self, containers: list[dict[str, Any]], doc: dict[str, Any], saved: dict[str, Any] | None) -> dict[str, Any]:
        """The limits factors multiply: those before the collection first changed them."""
        entry = cu.service_entry(doc, self.service)
        if saved and ('mem_limit' in entry or 'cpus' in entry):
            return saved
        current = containers[0] if containers else {}
        return {'memory': current.get('memory') or 0, 'nano_cpus': current.get('nano_cpus') or 0}

    def update_live(self, containers: list[dict[str, Any]], body: dict[str, int]) -> bool:
        """Applies the limits to the running containers; False when the engine refuses."""
        for container in containers:
            path = '/containers/%s/update' % container['id']
            self.commands.append('POST %s %s' % (path, json.dumps(body, sort_keys=True)))
            try:
                self.client.get_json(path, method='POST', json_body=body)
            except ApiError as err:
                self.module.warn('live update of %s refused (%s): recreating it with the new limits'
                                 % (container['name'], err))
                return False
        return True

    def wait_ready(self, since: float) -> tuple[bool, list[dict[str, Any]]]:
        deadline = time.monotonic() + self.p['wait_timeout']
        while True:
            containers = self.containers()
            ready = bool(containers) and all(
                c['state'] == 'running' and c['health'] in (None, 'healthy')
                and (c['started_epoch'] or 0) >= since - 1 for c in containers)
            if ready or time.monotonic() >= deadline:
                return ready, containers
            time.sleep(0.5)

    # ------------------------------------------------------------------ the run

    def values(self, containers: list[dict[str, Any]], doc: dict[str, Any], image: str | None = None, limits: dict[str, int] | None = None) -> dict[str, Any]:
        current = containers[0] if containers else {}
        limits = limits or {}
        memory = limits.get('memory', current.get('memory')) or None
        nano = limits.get('nano_cpus', current.get('nano_cpus')) or None
        return {'image': image or current.get('image'),
                'env': dict(cu.service_entry(doc, self.service).get('environment') or {}),
                'memory': memory, 'cpus': round(nano / 1e9, 3) if nano else None,
                'containers': [{'id': c['id'], 'started_at': c['started_at']} for c in containers]}

    def run(self) -> dict[str, Any]:
        p, state, check = self.p, self.p['state'], self.module.check_mode
        crash_window = parse_duration(p['crash_window'])
        log_since = parse_duration(p['since'])
        if p['if_started_before']:
            resolve_time(p['if_started_before'], self.now)
        containers, self.files, self.project_dir = self.resolve_project()
        self.cli = cu.detect_compose(p['compose_command'], CLI_TIMEOUT)
        directory = '%s/compose/%s' % (p['state_dir'].rstrip('/'), self.project)
        self.override_path = directory + '/override.yml'
        # Containers the module created list the override among their files: it is not the user's.
        self.files = [f for f in self.files if os.path.abspath(f) != os.path.abspath(self.override_path)]
        if not self.files:
            raise RunbookError('no compose file of project %r other than the override %s: give files'
                               % (self.project, self.override_path))
        history_path = '%s/%s.history.json' % (directory, self.service)
        override_before = read_text(self.override_path)
        doc = cu.parse_override(override_before)
        saved = read_json(history_path, {})
        version = cu.file_version(read_text(self.files[0]) or '')

        events = container_events(self.client, self.service, self.project, self.now - HISTORY_SECONDS,
                                  self.now + 1, ['create', 'destroy', 'die', 'start', 'oom'])
        deploy_events = [e for e in events if e.get('Action') in ('create', 'destroy')]
        history = cu.merge_history(saved.get('images') or [],
                                   cu.observations(containers, deploys(deploy_events, containers), self.now))
        base = self.base_limits(containers, doc, saved.get('base_limits'))
        result: dict[str, Any] = {'changed': False, 'project': self.project, 'override_file': self.override_path,
                                  'compose': {'command': cu.show(self.cli['command']), 'version': self.cli['version']}}
        before = self.values(containers, doc)

        new_doc, after_containers = doc, containers
        if state in ACTING:
            changed, new_doc, tail, live = self.plan(state, containers, doc, history, base)
            new_doc = cu.with_version(new_doc, version) if new_doc != doc else doc
            result['changed'] = changed
            if changed and check:
                with_override = override_before is not None or new_doc != doc
                if live:
                    self.commands += ['POST /containers/%s/update %s' % (c['id'], json.dumps(live, sort_keys=True))
                                      for c in containers]
                if tail:
                    self.commands.append(cu.show(self.compose_args(tail, with_override)))
            elif changed:
                if new_doc != doc:
                    write_atomic(self.override_path, cu.render_override(new_doc, self.project))
                started = time.time()
                if live and not self.update_live(containers, live):
                    tail = cu.action_args('resources', self.service)
                if tail:
                    self.compose_or_fail(tail, p['wait_timeout'] + 120)
                    ready, after_containers = self.wait_ready(started) if p['wait'] else (True, self.containers())
                    fresh = [c for c in after_containers if (c['started_epoch'] or 0) >= started - 1]
                    result['logs'] = self.logs(fresh, started - 1, p['tail'])
                    if not ready:
                        raise RunbookError(
                            'compose service %r is not running%s %ss after `%s`: see logs and containers'
                            % (self.service, ' and healthy' if any(c['health'] for c in after_containers) else '',
                               p['wait_timeout'], self.commands[-1]),
                            containers=[cu.public(c) for c in after_containers], commands=self.commands,
                            before=before, after=self.values(after_containers, new_doc), **result)
                else:
                    after_containers = self.containers()

        if state == 'logs':
            result['logs'] = self.logs(containers, self.now - log_since, p['tail'])
        if state == 'config_check':
            result['config'] = self.config_check(containers)
        if p['port'] and state in ('status', 'config_check'):
            holders = cu.port_holders(p['port'], after_containers)
            result.update(port_holders=holders, port_conflict=any(not h['in_service'] for h in holders))

        window_events = [e for e in events if event_time(e) >= self.now - crash_window]
        crash_loop, crash = cu.crash_verdict(window_events, after_containers, self.now - crash_window, p['crash_restarts'])
        if not check:
            history = cu.merge_history(history, cu.observations(after_containers, [], time.time()))
            state_doc = {'images': history, 'base_limits': base if state == 'resources' else saved.get('base_limits')}
            if state_doc != saved:
                self.save(history_path, state_doc, state in ACTING)
        current_image = after_containers[0]['image'] if after_containers else None
        if check and state == 'rolled_back':
            current_image = cu.service_entry(new_doc, self.service).get('image', current_image)
        after = (self.values(containers, new_doc, current_image, self.planned_limits) if check
                 else self.values(after_containers, new_doc))
        result.update(
            containers=[cu.public(c) for c in after_containers], crash_loop=crash_loop, crash=crash,
            oom=self.oom(after_containers, window_events), history=history, current_image=current_image,
            previous_image=cu.previous_image(history, current_image), commands=self.commands,
            before=before, after=after)
        if self.module._diff:
            override_after = cu.render_override(new_doc, self.project) if new_doc != doc else override_before
            result['diff'] = [
                {'before_header': self.override_path, 'after_header': self.override_path,
                 'before': override_before or '', 'after': override_after or ''},
                {'before_header': 'compose service %s' % self.service, 'after_header': 'compose service %s' % self.service,
                 'before': {k: before[k] for k in ('image', 'env', 'memory', 'cpus')},
                 'after': {k: after[k] for k in ('image', 'env', 'memory', 'cpus')}}]
        return result

    def save(self, path: str, state_doc: dict[str, Any], must: bool) -> None:
        try:
            write_json(path, state_doc)
        except StateError as err:
            if must:
                raise
            self.module.warn('deployment history not recorded: %s' % err)

    def config_check(self, containers: list[dict[str, Any]]) -> dict[str, Any]:
        rc, out, err = self.compose(['config', '-q'])
        if rc != 0:
            return {'valid': False, 'error': cu.tail_text(err or out), 'config_hash': None,
                    'hash_drift': None, 'env_drift': None, 'note': None}
        running = next((c for c in containers if c['state'] == 'running'), containers[0] if containers else None)
        config: dict[str, Any] = {'valid': True, 'error': None, 'note': None}
        config['config_hash'] = cu.parse_config_hash(self.compose_or_fail(['config', '--hash=%s' % self.service], CLI_TIMEOUT),
                                                     self.service)
        config['hash_drift'] = (running['labels'].get(HASH_LABEL) != config['config_hash']) if running else None
        if not HAS_YAML:
            config.update(env_drift=None, note='PyYAML is not installed on this host: environment drift unknown')
        elif running:
            rendered = yaml.safe_load(self.compose_or_fail(['config'], CLI_TIMEOUT)) or {}
            configured = ((rendered.get('services') or {}).get(self.service) or {}).get('environment') or {}
            if isinstance(configured, list):
                configured = cu.env_dict(configured)
            image = self.image_exists(running['image_id']) or {}
            config['env_drift'] = cu.env_drift(running['env'], configured,
                                               cu.env_dict((image.get('Config') or {}).get('Env')))
        else:
            config['env_drift'] = []
        return config


def run(module: Any) -> dict[str, Any]:
    """The module's result; RunbookError when the engine, compose or the state files fail."""
    try:
        return ComposeService(module).run()
    except ApiError as err:
        raise RunbookError('%s; is the Docker engine running on %s?' % (err, module.params['docker_host']))
    except (cu.ComposeError, StateError, ValueError) as err:
        raise RunbookError('compose service %r: %s' % (module.params['service'], err))

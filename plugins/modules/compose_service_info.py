#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: compose_service_info
short_description: Status, logs and configuration check of a compose service
version_added: 1.0.0
description:
  - One compose service on the docker host the module runs on, seen through the Docker Engine API
    (containers, events, images) and the compose CLI, C(docker compose) (v2 plugin) or
    C(docker-compose) (v1), whichever exists. It never acts on the service; to restart, recreate,
    roll back, set the environment or the limits, use M(sre.runbooks.compose_service).
  - O(state=status) returns the service's containers, a crash-loop verdict, OOM kills (events, the
    containers' C(OOMKilled) and the kernel log) and, given O(port), who listens on that port.
  - O(state=logs) returns the newest log lines of the service's containers.
  - O(state=config_check) validates the compose configuration (C(config -q)) and compares it with
    what runs (config hash and environment). The collection's
    override file, C(<state_dir>/compose/<project>/override.yml), when it exists, is passed after the
    project's files as M(sre.runbooks.compose_service) passes it, so what that module changed is
    not drift.
  - Every state returns the containers, the crash-loop and OOM verdicts, the deployment history and
    the current and previous image. Outside check mode the module records the images the service's
    containers ran (merged with the Docker events of the last day) in the history file
    C(<state_dir>/compose/<project>/<service>.history.json), the one M(sre.runbooks.compose_service)
    rolls back from, creating it and its directory when missing; when it cannot be written the
    task only warns.
  - These states were those of M(sre.runbooks.compose_service), where they are deprecated and will
    be removed in 2.0.0. The options they take and their result are the same here.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.docker
  - sre.runbooks.compose_service
seealso:
  - module: sre.runbooks.compose_service
    description: Restart, recreate, roll back, set the environment or the limits of the service.
requirements:
  - The compose CLI on the host, C(docker compose) (v2) or C(docker-compose) (v1), whatever O(state)
    (only O(state=config_check) runs commands with it besides C(version)).
  - Access to the Docker Engine API, and to C(/proc) for O(port) (root to see other users' processes).
  - PyYAML on the host only for RV(config.env_drift) (the override file is JSON, which YAML reads).
attributes:
  check_mode:
    support: full
    description:
      - Changes nothing on the service in any mode; the same reads run in check mode.
      - Outside check mode it records the deployment history file in O(state_dir) (see the
        description); in check mode it writes no file.
  diff_mode:
    support: none
    description:
      - Changes nothing on the service, so there is nothing to diff. With C(--diff) the result still
        holds RV(diff), whose before and after are the same.
options:
  state:
    description: What to read; see the description.
    type: str
    choices: [status, logs, config_check]
    default: status
'''

EXAMPLES = r'''
- name: Status of the gateway, and who holds its port
  sre.runbooks.compose_service_info:
    service: inference-gateway
    port: 8000
  register: gateway

- name: Is it crash-looping or OOM-killed?
  ansible.builtin.debug:
    msg: "crash loop: {{ gateway.crash_loop }}, OOM kills: {{ gateway.oom.oom_killed or gateway.oom.events > 0 }}"

- name: The gateway's last 100 log lines of the last 30 minutes
  sre.runbooks.compose_service_info:
    service: inference-gateway
    state: logs
    tail: 100
    since: 30m
  register: gateway_logs

- name: Is the running container what the compose files say?
  sre.runbooks.compose_service_info:
    service: inference-gateway
    project: sre-demo
    state: config_check
    port: 8000
  register: check

- name: Fail on drift
  ansible.builtin.assert:
    that:
      - check.config.valid
      - not check.config.hash_drift
      - not check.config.env_drift
'''

RETURN = r'''
containers:
  description: The service's containers (one-off C(run) containers excluded), newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Container id.
      type: str
    name:
      description: Container name.
      type: str
    state:
      description: C(running), C(restarting), C(exited), ...
      type: str
    health:
      description: C(starting), C(healthy), C(unhealthy), or V(null) without a health check.
      type: str
    restart_count:
      description: Restarts by the engine's restart policy since the container was created.
      type: int
    exit_code:
      description: Last exit code.
      type: int
    oom_killed:
      description: Whether the last exit was an OOM kill.
      type: bool
    image:
      description: Image reference.
      type: str
    image_id:
      description: Image id (C(sha256:...)).
      type: str
    started_at:
      description: Last start, RFC 3339.
      type: str
    created_at:
      description: Creation, RFC 3339.
      type: str
    error:
      description: The engine's error starting it, V(null) if none.
      type: str
crash_loop:
  description: Whether the service is crash-looping (see O(crash_restarts)).
  returned: always
  type: bool
crash:
  description: Evidence of the crash-loop verdict over O(crash_window).
  returned: always
  type: dict
  contains:
    restarts_in_window:
      description: Restarts in the window.
      type: int
    dies_in_window:
      description: C(die) events in the window.
      type: int
    last_exit_code:
      description: Exit code of the last C(die), else of a stopped container, else V(null).
      type: int
oom:
  description: OOM kills.
  returned: always
  type: dict
  contains:
    oom_killed:
      description: Whether a container's last exit was an OOM kill.
      type: bool
    events:
      description: C(oom) events of the service in O(crash_window).
      type: int
    kernel:
      description: Kernel log lines (C(dmesg)) about OOM kills of the service's containers.
      type: list
      elements: str
    note:
      description: Why RV(oom.kernel) is empty when C(dmesg) could not be read, else V(null).
      type: str
logs:
  description: The newest O(tail) log lines since O(since), oldest first.
  returned: when O(state=logs)
  type: list
  elements: dict
  contains:
    time:
      description: RFC 3339.
      type: str
    container:
      description: Container name.
      type: str
    stream:
      description: C(stdout) or C(stderr).
      type: str
    line:
      description: The log line.
      type: str
config:
  description: The configuration check.
  returned: when O(state=config_check)
  type: dict
  contains:
    valid:
      description: Whether C(config -q) accepts the project's files with the override.
      type: bool
    error:
      description: The tail of its error output when not valid.
      type: str
    config_hash:
      description: C(config --hash=<service>) with the override.
      type: str
    hash_drift:
      description: Whether the running container's C(com.docker.compose.config-hash) differs (V(null) without a container).
      type: bool
    env_drift:
      description:
        - Variables whose running value differs from the rendered configuration (a variable only the
          image sets is not drift); values of names matching TOKEN, SECRET, PASSWORD or KEY masked.
          V(null) when PyYAML is missing (RV(config.note) says so).
      type: list
      elements: dict
    note:
      description: Why something could not be checked, else V(null).
      type: str
port_holders:
  description: The processes listening on O(port), each with C(pid), C(command), C(address) and C(in_service).
  returned: when O(port) is given and O(state) is V(status) or V(config_check)
  type: list
  elements: dict
port_conflict:
  description: Whether a process outside the service holds O(port).
  returned: when O(port) is given and O(state) is V(status) or V(config_check)
  type: bool
history:
  description:
    - The deployment history, entries C(image), C(image_id), C(first_seen), C(last_seen) (epoch), oldest first.
    - The history file's entries merged with what this run saw; outside check mode, also written back to the file.
  returned: always
  type: list
  elements: dict
current_image:
  description: Image of the newest container, V(null) without one.
  returned: always
  type: str
previous_image:
  description: The image the service ran last before the current one, V(null) when unknown.
  returned: always
  type: str
override_file:
  description: Path of the collection's override file for the project (it may not exist).
  returned: always
  type: str
commands:
  description:
    - Compose command lines run. Only O(state=config_check) runs any (C(config -q),
      C(config --hash=<service>), C(config)), all of them reads.
  returned: always
  type: list
  elements: str
compose:
  description: The compose CLI found, C(command) and C(version).
  returned: always
  type: dict
before:
  description:
    - C(image), C(env) (the override's variables), C(memory) (bytes), C(cpus) and C(containers)
      ([{id, started_at}]) of the service.
  returned: always
  type: dict
after:
  description: The same as RV(before); the module changes nothing.
  returned: always
  type: dict
diff:
  description: With C(--diff), the override file's text and the image, environment overrides and limits, before and after (the same).
  returned: when diff mode is on
  type: list
  elements: dict
project:
  description: The compose project.
  returned: always
  type: str
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.runbooks.plugins.module_utils.common.module import finish, outcome
from ansible_collections.sre.runbooks.plugins.module_utils.compose_service import INFO_SPEC, run


def main():
    module = AnsibleModule(supports_check_mode=True, **INFO_SPEC)
    finish(module, outcome(lambda: run(module)))


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: compose_service
short_description: Restart, recreate, roll back, set the environment or the limits of a compose service
version_added: 1.0.0
description:
  - One compose service on the docker host the module runs on, seen through the Docker Engine API
    (containers, events, images) and acted on through the compose CLI, C(docker compose) (v2
    plugin) or C(docker-compose) (v1), whichever exists.
  - To read the service without acting (status, logs, configuration check), use
    M(sre.runbooks.compose_service_info). O(state=status), O(state=logs) and O(state=config_check)
    of this module are deprecated and will be removed in 2.0.0; until then they still work, with a
    deprecation warning.
  - The acting states never rewrite the user's compose files. What they change lives in one
    override file per project owned by the collection, C(<state_dir>/compose/<project>/override.yml),
    passed after the user's files to every compose command the module runs. Delete a service's entry
    there (or the file) to give the user's files the last word again.
  - O(state=restarted) runs C(restart <service>); O(state=recreated) runs
    C(up -d --no-deps --force-recreate <service>). With O(if_started_before) they act only when a
    container of the service last started (restarted), or was created (recreated), before that time,
    so that "restart once per incident" is idempotent while a crash-looping container, which starts
    again and again, is still recreated.
  - O(state=rolled_back) pins the previous image (or O(image)) in the override and runs
    C(up -d --no-deps <service>). The previous image comes from the deployment history the module
    keeps in C(<state_dir>/compose/<project>/<service>.history.json) (every image the service's
    containers ran, merged with the Docker events and container creation times at every run not in
    check mode, of this module and of M(sre.runbooks.compose_service_info)), so it survives
    restarts. It refuses when no previous image is known or when the target image is not on the
    host (it never pulls). Once rolled back, running it again without O(image) keeps the pinned
    image.
  - O(state=env) sets (value) or unsets (V(null)) variables in the override and runs
    C(up -d --no-deps --force-recreate <service>); compose's C(restart) does not apply environment
    changes. Unsetting removes the collection's override, so the compose file's own value applies.
  - O(state=resources) applies memory and CPU limits live (C(POST /containers/{id}/update), no
    restart) and persists them in the override (C(mem_limit), C(memswap_limit), C(cpus)) so a later
    recreate keeps them. Only when the live update is refused does it recreate the container with
    C(up -d --no-deps <service>). After a live update the container's compose config hash differs
    from the configuration with the override until its next recreate
    (M(sre.runbooks.compose_service_info) with C(state=config_check) reports C(config.hash_drift));
    compose then recreates it with the same limits. Factors multiply the limits the container had
    before the collection first changed them (kept in the history file), so a second identical run
    changes nothing.
  - After acting, with O(wait), it waits until the service's containers run (and are healthy when
    they have a health check) and returns their startup log lines.
author: sre.runbooks developers (@sre-runbooks)
extends_documentation_fragment:
  - sre.runbooks.docker
  - sre.runbooks.compose_service
seealso:
  - module: sre.runbooks.compose_service_info
    description: The service's status, logs and configuration check, without acting.
requirements:
  - The compose CLI on the host, C(docker compose) (v2) or C(docker-compose) (v1).
  - Access to the Docker Engine API, and to C(/proc) for O(port) (root to see other users' processes).
  - PyYAML on the host only for RV(config.env_drift) (the override file is JSON, which YAML reads).
attributes:
  check_mode:
    support: full
    description: Plans only; no container, override file or history file changes; RV(commands) says what would run.
  diff_mode:
    support: full
    description: The override file's text and the service's image, environment overrides and limits, before and after.
options:
  state:
    description:
      - What to do; see the description.
      - V(status), V(logs) and V(config_check) only read; they are deprecated here and will be
        removed in 2.0.0, use M(sre.runbooks.compose_service_info). The default, V(status), is
        deprecated with them; always give O(state).
    type: str
    choices: [status, logs, restarted, recreated, rolled_back, env, resources, config_check]
    default: status
  image:
    description:
      - For O(state=rolled_back), the image to roll back to, a full reference or a bare tag (then of
        the current image's repository). Default, the previous image from the history.
    type: str
  env:
    description:
      - For O(state=env), variables to set (values are turned into strings) or, with V(null), to
        unset (remove the collection's override of it).
    type: dict
  memory:
    description: For O(state=resources), the memory limit, as C(320m) or C(1g) (swap limit the same).
    type: str
  cpus:
    description: For O(state=resources), the CPU limit in cores.
    type: float
  memory_factor:
    description: For O(state=resources), multiply the memory limit by this; refused without a limit.
    type: float
  cpu_factor:
    description: For O(state=resources), multiply the CPU limit by this; refused without a limit.
    type: float
  if_started_before:
    description:
      - For O(state=restarted), act only when a container of the service last started before this
        time; for O(state=recreated), when one was created before it (epoch seconds or RFC 3339).
        Default, always act.
    type: str
  wait:
    description: After acting, wait until the service's containers run and, with a health check, are healthy.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for that; the task fails, with the startup logs, when they are not.
    type: int
    default: 60
'''

EXAMPLES = r'''
- name: Roll back to the image before the bad deploy
  sre.runbooks.compose_service:
    service: inference-gateway
    state: rolled_back

- name: Restart once per incident
  sre.runbooks.compose_service:
    service: inference-gateway
    state: restarted
    if_started_before: "{{ incident.started_at }}"

- name: Force-recreate a crash-looping gateway once per incident
  sre.runbooks.compose_service:
    service: inference-gateway
    state: recreated
    if_started_before: "{{ incident.started_at }}"

- name: Disable the failing endpoint's feature flag
  sre.runbooks.compose_service:
    service: inference-gateway
    state: env
    env:
      FEATURE_ENDPOINT_PREDICT_ENABLED: false

- name: Give the gateway 50% more memory, live
  sre.runbooks.compose_service:
    service: inference-gateway
    state: resources
    memory_factor: 1.5

# Status, logs and the configuration check: see sre.runbooks.compose_service_info.
'''

RETURN = r'''
containers:
  description: The service's containers after the run (one-off C(run) containers excluded), newest first.
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
  description:
    - O(state=logs), the newest O(tail) lines since O(since); after an action, the startup lines of
      the new or restarted containers.
  returned: when O(state=logs) (deprecated) or after an action
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
  returned: when O(state=config_check) (deprecated)
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
  returned: when O(port) is given
  type: list
  elements: dict
port_conflict:
  description: Whether a process outside the service holds O(port).
  returned: when O(port) is given
  type: bool
history:
  description: The deployment history, entries C(image), C(image_id), C(first_seen), C(last_seen) (epoch), oldest first.
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
  description: Path of the collection's override file for the project.
  returned: always
  type: str
commands:
  description: Commands run (or, in check mode, that would run), compose command lines and Engine API calls.
  returned: always
  type: list
  elements: str
compose:
  description: The compose CLI used, C(command) and C(version).
  returned: always
  type: dict
before:
  description: C(image), C(env) (the override's variables), C(memory) (bytes), C(cpus) and C(containers) ([{id, started_at}]) before the run.
  returned: always
  type: dict
after:
  description: The same after the run; in check mode, what it would be.
  returned: always
  type: dict
diff:
  description: With C(--diff), the override file's text, and the image, environment overrides and limits, before and after.
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
from ansible_collections.sre.runbooks.plugins.module_utils.compose_service import READ_STATES, SPEC, run


def main():
    module = AnsibleModule(supports_check_mode=True, **SPEC)
    if module.params['state'] in READ_STATES:
        module.deprecate('state=%s of sre.runbooks.compose_service reads only: use sre.runbooks.compose_service_info'
                         % module.params['state'], version='2.0.0', collection_name='sre.runbooks')
    finish(module, outcome(lambda: run(module)))


if __name__ == '__main__':
    main()

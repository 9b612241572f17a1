# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by compose_service (acts) and compose_service_info (reads): COMMON_ARGS of
    # module_utils/compose_service.py, less the docker options of the sre.runbooks.docker fragment.
    DOCUMENTATION = r'''
options:
  service:
    description: Compose service name (label C(com.docker.compose.service)).
    type: str
    required: true
  project:
    description:
      - Compose project name. Default, the project of the service's containers when exactly one
        project has such a service.
    type: str
  files:
    description:
      - The project's compose files. Default, those the newest container of the service was created
        from (label C(com.docker.compose.project.config_files)).
    type: list
    elements: path
  project_dir:
    description:
      - The project directory. Default, that of the newest container
        (label C(com.docker.compose.project.working_dir)).
    type: path
  tail:
    description:
      - Most log lines returned with O(state=logs).
      - With M(sre.runbooks.compose_service), also the most startup lines returned after an action.
    type: int
    default: 50
  since:
    description: For O(state=logs), how far back to read, a duration such as C(10m).
    type: str
    default: 10m
  crash_window:
    description: Period over which restarts count towards a crash loop, and OOM kill events are read.
    type: str
    default: 5m
  crash_restarts:
    description:
      - Restarts in O(crash_window) (start after a die, or the engine's restart count of a container
        created in the window) from which the service is crash-looping; a C(restarting) container is
        always crash-looping.
    type: int
    default: 3
  port:
    description:
      - For O(state=status) and O(state=config_check), the TCP port the service should listen on;
        returns who listens on it on C(0.0.0.0), C(127.0.0.1), C(::) or C(::1).
    type: int
  state_dir:
    description:
      - Directory of the collection's files on the docker host, the override file
        C(<state_dir>/compose/<project>/override.yml) and the deployment history
        C(<state_dir>/compose/<project>/<service>.history.json).
    type: path
    default: /var/lib/sre-runbooks
  compose_command:
    description:
      - The compose command, as C(docker compose) or C(/usr/bin/docker-compose). V(auto) takes
        C(docker compose) when C(docker compose version) works, else C(docker-compose).
    type: str
    default: auto
'''

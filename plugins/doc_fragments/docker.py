# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options of the modules that read the Docker Engine API on a docker host.
    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - Docker Engine API address on the host the module runs on, C(unix:///path/to/docker.sock),
        C(tcp://127.0.0.1:2375) or C(https://...).
    type: str
    default: unix:///var/run/docker.sock
  docker_timeout:
    description: Seconds to wait for each answer of the Docker Engine API.
    type: float
    default: 10
'''

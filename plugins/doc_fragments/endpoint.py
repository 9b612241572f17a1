# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of every module that speaks to an HTTP API.
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the API, for example C(http://127.0.0.1:9090) for Prometheus or the
        C(/prometheus) prefix of Mimir.
      - Set it once for a play with C(module_defaults) and the action group of the module.
    type: str
    required: true
  bearer_token:
    description:
      - Token sent in the C(Authorization) header as C(Bearer <token>). Never shown in output.
    type: str
  username:
    description:
      - User for HTTP basic authentication; requires O(password).
    type: str
  password:
    description:
      - Password for HTTP basic authentication. Never shown in output.
    type: str
  headers:
    description:
      - Extra request headers, for example C(X-Scope-OrgID) for a multi-tenant Mimir, Cortex or Loki.
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the server's TLS certificate. Turn off only for a lab.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle used to verify the server's certificate.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP answer. Every call has one.
    type: float
    default: 10
  retries:
    description:
      - Extra attempts, with exponential backoff, when the server cannot be reached or answers
        429, 502, 503 or 504.
    type: int
    default: 2
'''

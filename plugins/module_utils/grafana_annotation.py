# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.grafana_annotation: marks a moment or a region of time on Grafana dashboards with
an annotation, idempotently (notify/grafana.py)."""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import HttpClient, endpoint_spec
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.notify.grafana import GrafanaClient, ensure, wanted_of

SPEC = dict(
    endpoint_spec(
        bearer_token=dict(type='str', no_log=True, aliases=['token']),
        dashboard_uid=dict(type='str'),
        panel_id=dict(type='int'),
        time=dict(type='str', required=True),
        time_end=dict(type='str'),
        tags=dict(type='list', elements='str', required=True),
        text=dict(type='str', required=True),
        max_retry_after=dict(type='float', default=30.0),
    ),
    required_by={'panel_id': ('dashboard_uid',)},
)


def run(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The module's result (see notify/grafana.py ensure); a refused option or call raises RunbookError."""
    try:
        wanted = wanted_of(p, time.time())
    except ValueError as err:
        raise RunbookError('invalid option: %s' % err)
    return ensure(GrafanaClient(HttpClient.from_params(p, 'Grafana')), wanted, check_mode)

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.statuspage_incident: creates or updates an incident of a Statuspage page
(notify/statuspage.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError
from ansible_collections.sre.runbooks.plugins.module_utils.notify.statuspage import API_URL, IMPACTS, INCIDENT_STATUSES, StatuspageClient, ensure

ARGUMENT_SPEC = dict(
    api_key=dict(type='str', required=True, no_log=True),
    page_id=dict(type='str', required=True),
    incident_id=dict(type='str'),
    name=dict(type='str'),
    status=dict(type='str', choices=list(INCIDENT_STATUSES)),
    body=dict(type='str'),
    impact_override=dict(type='str', choices=list(IMPACTS)),
    components=dict(type='dict'),
    deliver_notifications=dict(type='bool', default=True),
    api_url=dict(type='str', default=API_URL),
    validate_certs=dict(type='bool', default=True),
    timeout=dict(type='float', default=10.0),
    retries=dict(type='int', default=2),
    max_retry_after=dict(type='float', default=30.0),
)


CONSTRAINTS = dict(
    required_one_of=[('incident_id', 'name')],
    mutually_exclusive=[('incident_id', 'name')],
)
SPEC = dict(argument_spec=ARGUMENT_SPEC, **CONSTRAINTS)


def run(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The module's result (see ensure); a refused value or call raises ApiError."""
    client = StatuspageClient(p['api_url'], p['api_key'], p['page_id'], p['validate_certs'],
                              p['timeout'], p['retries'], p['max_retry_after'])
    warnings: list[str] = []
    try:
        result = ensure(client, p, check_mode, warnings.append)
    except ValueError as err:
        raise ApiError(str(err))
    return dict(result, warnings=warnings) if warnings else result

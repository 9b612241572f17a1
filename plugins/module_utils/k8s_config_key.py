# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.k8s_config_key: puts a missing ConfigMap key back, from the ConfigMap's
last-applied-configuration or a value given, with a JSON merge patch of that key alone under a
resourceVersion precondition (the decisions are k8s/configmap.py's)."""

from __future__ import annotations

from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import configmap as kc
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS, MERGE_PATCH, K8sError, patch
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader

SPEC = dict(
    argument_spec=dict(
        name=dict(type='str', required=True),
        namespace=dict(type='str', default='default'),
        key=dict(type='str', required=True, no_log=False),
        state=dict(type='str', default='restored', choices=['restored']),
        source=dict(type='str', default='last_applied', choices=['last_applied', 'value']),
        value=dict(type='str'),
        **K8S_ARGS
    ),
    required_if=[('source', 'value', ('value',))],
)


def run(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The module's result: {changed, before, after, source, message, diff}; RunbookError when it refuses or a call fails."""
    name, namespace, key = p['name'], p['namespace'], p['key']
    if p['source'] != 'value' and p['value'] is not None:
        raise RunbookError('value is given with source=last_applied, which takes the value from the ConfigMap: '
                           'set source=value to restore the value given, or drop value')
    try:
        reader = Reader(p)
        configmap = reader.config_map(name, namespace)
    except K8sError as err:
        raise RunbookError(str(err))
    if configmap is None:
        raise RunbookError('ConfigMap %s not found in namespace %s: this puts a key back into an existing ConfigMap and '
                           'never creates one; check the name and the namespace (kubectl get configmap %s -n %s), or '
                           'apply the ConfigMap\'s manifest' % (name, namespace, name, namespace))
    before = kc.key_view(configmap, key)
    plan = kc.restore_plan(configmap, key, p['source'], p['value'], check_mode)
    result = {'changed': plan['patch'] is not None, 'before': before, 'after': plan['after'], 'source': plan['source'],
              'message': plan['message']}
    if plan['patch'] is not None:
        try:
            # A dry run (dryRun=All) in check mode: the server checks the patch, the precondition and RBAC.
            answer = patch(reader.client, p['request_timeout'], 'configmap', name, namespace,
                           reader.core.patch_namespaced_config_map, plan['patch'], content_type=MERGE_PATCH,
                           check_mode=check_mode)
        except K8sError as err:
            if err.status == 409:
                raise RunbookError('ConfigMap %s/%s changed after it was read (HTTP 409 Conflict on its resourceVersion '
                                   '%s): nothing was patched, so that edit is kept; run the task again to read it anew'
                                   % (namespace, name, plan['patch']['metadata']['resourceVersion']),
                                   changed=False, before=before)
            raise RunbookError('%s; nothing was patched' % err, changed=False, before=before)
        result['after'] = kc.key_view(answer, key)
    result['diff'] = {'before': before, 'after': result['after']}
    return result

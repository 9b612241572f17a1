# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A missing ConfigMap key put back (sre.runbooks.k8s_config_key), and whether one can be
(k8s_status_info's config_refs): pure functions on the plain (camelCase) dicts the API returns, no I/O.

- The value comes from a source a person would trust: the ConfigMap's own last-applied-configuration
  annotation, which `kubectl apply` writes and `kubectl edit`, `patch` and `replace` leave as it
  was (so it still holds a key they removed), or a value the operator gives.
- A key that is present is left alone, whatever its value: this restores, it never overwrites.
- The patch is a JSON merge patch of data.<key> alone, with metadata.resourceVersion as a
  precondition: an edit made since the read makes the API server refuse it (409), never lost.
- A value is never shown: a key is described by its presence, the sha256 and the length of its value.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.rollout import annotations_of

LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'
# Where a restored value came from, as the results name it.
FROM_LAST_APPLIED = 'last-applied-configuration'
FROM_VALUE = 'value'
MAX_KEYS_SHOWN = 10


class ConfigKeyError(RunbookError, ValueError):
    """A key the module refuses to restore; the message says why and what to check."""


def where(configmap: dict[str, Any]) -> str:
    meta = configmap.get('metadata') or {}
    return 'ConfigMap %s/%s' % (meta.get('namespace'), meta.get('name'))


def applied_value(configmap: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """(the value the last-applied-configuration annotation holds for key, None), or (None, why
    it gives none)."""
    text = annotations_of(configmap).get(LAST_APPLIED)
    if text is None:
        return None, ('has no annotation %s: it was not created or last updated with kubectl apply, so nothing '
                      'records its keys' % LAST_APPLIED)
    try:
        applied = json.loads(text)
    except ValueError as err:
        return None, 'has an annotation %s that is not JSON (%s)' % (LAST_APPLIED, err)
    name = (configmap.get('metadata') or {}).get('name')
    if not isinstance(applied, dict) or not isinstance(applied.get('data') or {}, dict):
        return None, 'has an annotation %s that is not a ConfigMap manifest' % LAST_APPLIED
    applied_name = (applied.get('metadata') or {}).get('name')
    if applied.get('kind', 'ConfigMap') != 'ConfigMap' or applied_name not in (None, name):
        return None, 'has an annotation %s of another object (%s %s)' % (LAST_APPLIED, applied.get('kind'), applied_name)
    data = applied.get('data') or {}
    if not isinstance(data.get(key), str):
        held = sorted(data)
        return None, 'has an annotation %s without key %s (it holds %s)' % (
            LAST_APPLIED, key, ', '.join(held[:MAX_KEYS_SHOWN]) + (', ...' if len(held) > MAX_KEYS_SHOWN else '')
            if held else 'no data')
    return data[key], None


def has_key(configmap: dict[str, Any], key: str) -> bool:
    return key in (configmap.get('data') or {}) or key in (configmap.get('binaryData') or {})


def value_view(key: str, value: str | None) -> dict[str, Any]:
    """{key, state: present | absent, sha256, length} of a value (None: absent); never the value."""
    if value is None:
        return {'key': key, 'state': 'absent', 'sha256': None, 'length': None}
    return {'key': key, 'state': 'present', 'sha256': hashlib.sha256(value.encode('utf-8')).hexdigest(),
            'length': len(value)}


def key_view(configmap: dict[str, Any], key: str) -> dict[str, Any]:
    """value_view of data.<key> (a binaryData key is present, its sha256 of the base64 text)."""
    value = (configmap.get('data') or {}).get(key)
    if value is None:
        value = (configmap.get('binaryData') or {}).get(key)
    return value_view(key, value)


def characters(count: int) -> str:
    return '%d character%s' % (count, '' if count == 1 else 's')


def restore_plan(configmap: dict[str, Any], key: str, source: str, value: str | None, check_mode: bool) -> dict[str, Any]:
    """What k8s_config_key does: {patch (the merge patch, None when nothing changes), source
    (FROM_LAST_APPLIED, FROM_VALUE, None), after (key_view as it will be), message}.
    source is the module's option (last_applied or value). ConfigKeyError when it refuses."""
    here = where(configmap)
    data = configmap.get('data') or {}
    if has_key(configmap, key):
        have = data.get(key)
        if source == 'value' and have is not None and have != value:
            view = value_view(key, have)
            message = ('key %s of %s is present with another value (sha256 %s, %s): left as it is, this restores a '
                       'missing key and never overwrites one (sre.runbooks.k8s_workload configmap_data changes a value)'
                       % (key, here, view['sha256'][:12], characters(view['length'])))
        else:
            message = 'key %s of %s is present: nothing to restore' % (key, here)
        return {'patch': None, 'source': None, 'after': key_view(configmap, key), 'message': message}
    if configmap.get('immutable'):
        raise ConfigKeyError('%s is immutable: no key can be added to it; create a new ConfigMap with the key and '
                             'point the workload at it' % here)
    meta = configmap.get('metadata') or {}
    origin = FROM_VALUE if source == 'value' else FROM_LAST_APPLIED
    restored, why = (value, None) if source == 'value' else applied_value(configmap, key)
    if restored is None and source == 'value':
        raise ConfigKeyError('source=value restores the value given in value, and none is given: set value, '
                             'or use source=last_applied')
    if restored is None:
        raise ConfigKeyError('cannot restore key %s: %s %s; check with kubectl get configmap %s -n %s -o yaml, then give '
                             'the value with source=value, or kubectl apply its manifest'
                             % (key, here, why, meta.get('name'), meta.get('namespace')))
    after = value_view(key, restored)
    message = '%s key %s of %s from %s (%s); the kubelet starts the pods waiting for it on its next retry' % (
        'would restore' if check_mode else 'restored', key, here,
        'its %s annotation' % LAST_APPLIED if origin == FROM_LAST_APPLIED else 'the value given', characters(after['length']))
    patch = {'metadata': {'resourceVersion': meta.get('resourceVersion')}, 'data': {key: restored}}
    return {'patch': patch, 'source': origin, 'after': after, 'message': message}

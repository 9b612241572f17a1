# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Kubernetes client factory of the collection, on the `kubernetes` Python client.

`k8s_api_client(module.params)` gives a `kubernetes.client.ApiClient` for one of three sources:
a kubeconfig file (O(kubeconfig), else C($KUBECONFIG) or C(~/.kube/config)) and its context,
O(host) with an optional bearer token, or the pod's service account (O(in_cluster)).
Every API call passes `_request_timeout=params['request_timeout']`; `api_error()` turns what a
call raised (one of api_errors()) into a K8sError that names the object, the HTTP status and what to check;
`call()` makes one API call that way and answers the plain (camelCase) dict the API returned.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError

# The `kubernetes` package is imported on first use (kube()): importing it costs about half a
# second, which every in-process task of an observe module would otherwise pay on each run.
HAS_KUBERNETES = importlib.util.find_spec('kubernetes') is not None


def kube() -> ModuleType:
    """The kubernetes package, its client and config imported."""
    for name in ('kubernetes.client', 'kubernetes.config'):
        importlib.import_module(name)
    return importlib.import_module('kubernetes')


def api_errors() -> tuple[Any, type[Exception]]:
    """What an API call raises: the server's answer, or urllib3's error when it could not be reached."""
    from urllib3.exceptions import HTTPError
    return (kube().client.exceptions.ApiException, HTTPError)


# host, api_key, ca_cert and validate_certs fall back to the K8S_AUTH_* environment that AWX's
# "OpenShift or Kubernetes API Bearer Token" credential sets (as kubernetes.core's modules read it).
K8S_ARGS = dict(
    kubeconfig=dict(type='path'),
    context=dict(type='str'),
    host=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_HOST'])),
    api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['K8S_AUTH_API_KEY'])),
    ca_cert=dict(type='path', fallback=(env_fallback, ['K8S_AUTH_SSL_CA_CERT'])),
    validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['K8S_AUTH_VERIFY_SSL'])),
    in_cluster=dict(type='bool', default=False),
    request_timeout=dict(type='float', default=10),
)
# The Deployment a module acts on, and how long it waits for its rollout (module_utils.k8s_rollout.wait_rollout).
DEPLOYMENT_ARGS = dict(
    name=dict(type='str', required=True),
    namespace=dict(type='str', default='default'),
    kind=dict(type='str', default='Deployment', choices=['Deployment']),
    wait_timeout=dict(type='int', default=300),
)
# Bounded retries, with backoff, of the idempotent calls the server could not answer (urllib3
# never retries PATCH or POST); the last answer is returned, so that ApiException reports it.
RETRY: dict[str, Any] = dict(total=2, backoff_factor=0.5, status_forcelist=(429, 502, 503, 504), raise_on_status=False)
JSON_PATCH = 'application/json-patch+json'
STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'
MERGE_PATCH = 'application/merge-patch+json'


class K8sError(RunbookError):
    """The cluster could not be reached or refused a call; the message says which and what to check.
    status: the HTTP status the API server answered, None when it could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def k8s_api_client(params: Mapping[str, Any]) -> Any:
    """An ApiClient for the module's K8S_ARGS parameters; K8sError when the configuration is bad
    or the kubernetes library is missing."""
    if not HAS_KUBERNETES:
        raise K8sError(missing_required_lib('kubernetes') + " (No module named 'kubernetes')")
    conflicts = [name for name in ('kubeconfig', 'context', 'host') if params.get(name)]
    if params.get('in_cluster') and conflicts:
        raise K8sError('in_cluster uses the service account of the pod: drop %s' % ', '.join(conflicts))
    if params.get('host') and len(conflicts) > 1:
        raise K8sError('host (%s) and api_key replace the kubeconfig: drop kubeconfig and context' % params['host'])
    if params.get('api_key') and not params.get('host'):
        raise K8sError('api_key is the bearer token for host: set host too, or let the kubeconfig give the credentials')
    from urllib3.util.retry import Retry
    kubernetes = kube()
    config_error = kubernetes.config.config_exception.ConfigException
    cfg = kubernetes.client.Configuration()
    if params.get('in_cluster'):
        source = 'the in-cluster service account'
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except config_error as err:
            raise K8sError('cannot load %s (%s): in_cluster works only in a pod with a service account token' % (source, err))
    elif params.get('host'):
        source = 'host %s' % params['host']
        cfg.host = params['host'].rstrip('/')
        if params.get('api_key'):
            cfg.api_key = {'authorization': params['api_key']}
            cfg.api_key_prefix = {'authorization': 'Bearer'}
    else:
        source = 'kubeconfig %s, context %s' % (params.get('kubeconfig') or '$KUBECONFIG or ~/.kube/config',
                                                params.get('context') or '(current-context)')
        try:
            # What config.new_client_from_config does, with the options below applied before the
            # ApiClient builds its connection pool from the configuration.
            kubernetes.config.load_kube_config(config_file=params.get('kubeconfig'), context=params.get('context'),
                                               client_configuration=cfg, persist_config=False)
        except (config_error, OSError, ValueError, TypeError) as err:
            raise K8sError('cannot load %s: %s; check the file exists, is readable, and names that context' % (source, err))
    if params.get('ca_cert'):
        cfg.ssl_ca_cert = params['ca_cert']
    cfg.verify_ssl = bool(cfg.verify_ssl and params.get('validate_certs', True))
    cfg.retries = Retry(**RETRY)
    return kubernetes.client.ApiClient(cfg)


def plural(kind: str) -> str:
    """The REST resource of a lower-case kind: deployment -> deployments, ingress -> ingresses; a
    resource already (pods/log, pods.metrics.k8s.io) as it is."""
    if '/' in kind or '.' in kind:
        return kind
    if kind.endswith('s'):
        return kind + 'es'
    if kind.endswith('y'):
        return kind[:-1] + 'ies'
    return kind + 's'


def api_error(err: Any, verb: str, kind: str, name: str | None = None, namespace: str | None = None) -> K8sError:
    """A K8sError for what an API call raised (ApiException, or urllib3's error when the server
    could not be reached). verb is the RBAC verb (get, list, patch...), kind a lower-case kind."""
    what = '%s %s' % (kind, name) if name else plural(kind)
    where = ' in namespace %s' % namespace if namespace else ''
    if not isinstance(err, api_errors()[0]):
        return K8sError('cannot reach the Kubernetes API to %s %s%s: %s; check host or the kubeconfig context, '
                        'the network and the certificate' % (verb, what, where, err))
    try:
        message = json.loads(err.body).get('message') or ''
    except (TypeError, ValueError, AttributeError):
        message = err.body if isinstance(err.body, str) else ''
    detail = 'HTTP %s %s%s' % (err.status, err.reason, ': %s' % message if message else '')
    if err.status == 404 and name:
        return K8sError('%s not found%s (%s): check the name and that the namespace exists (kubectl get %s%s)'
                        % (what, where, detail, plural(kind), ' -n %s' % namespace if namespace else ''), 404)
    if err.status == 401:
        return K8sError('the Kubernetes API refused the credentials to %s %s%s (%s): check api_key or the '
                        "kubeconfig user's token or certificate, and that it has not expired" % (verb, what, where, detail), 401)
    if err.status == 403:
        return K8sError('forbidden to %s %s%s (%s): grant the user or service account the RBAC verb %s on %s%s '
                        '(kubectl auth can-i %s %s%s)' % (verb, what, where, detail, verb, plural(kind), where,
                                                          verb, plural(kind), ' -n %s' % namespace if namespace else ''), 403)
    return K8sError('cannot %s %s%s: %s' % (verb, what, where, detail), err.status)


def call(api_client: Any, timeout: float, verb: str, kind: str, name: str | None, namespace: str | None,
         method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """method(*args, **kwargs) of an API of api_client, with the request timeout: its answer as the
    plain (camelCase) dict the API returned; K8sError (api_error) for what it raised."""
    try:
        answer = method(*args, _request_timeout=timeout, **kwargs)
    except api_errors() as err:
        raise api_error(err, verb, kind, name, namespace)
    return api_client.sanitize_for_serialization(answer)


def patch(api_client: Any, timeout: float, kind: str, name: str, namespace: str, method: Callable[..., Any], body: Any,
          content_type: str = STRATEGIC_MERGE_PATCH, check_mode: bool = False) -> Any:
    """method (a patch_namespaced_*) of the object with body; a server-side dry run (dryRun=All) in check mode."""
    return call(api_client, timeout, 'patch', kind, name, namespace, method, name, namespace, body,
                _content_type=content_type, dry_run='All' if check_mode else None)

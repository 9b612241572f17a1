# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reads of the observe modules on Kubernetes, through the one client factory (k8s_client).

Each method makes one API call with the request timeout and answers the plain (camelCase) dicts
the API returned, or raises K8sError (k8s_client.api_error). What they mean is k8s_facts' job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import Response
from ansible_collections.sre.runbooks.plugins.module_utils.k8s import rollout as kr
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8sError, api_error, api_errors, call, k8s_api_client, kube

METRICS_GROUP, METRICS_VERSION = 'metrics.k8s.io', 'v1beta1'


class Reader:
    """Read-only calls to the cluster of the module's K8S_ARGS parameters."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.client = k8s_api_client(params)
        self.timeout = params['request_timeout']
        self.api = kube().client
        self.core = self.api.CoreV1Api(self.client)
        self.apps = self.api.AppsV1Api(self.client)
        self.autoscaling: Any = None  # the autoscaling API that answered hpas()

    def _call(self, verb: str, kind: str, name: str | None, namespace: str | None, method: Callable[..., Any], *args: Any,
              **kwargs: Any) -> Any:
        return call(self.client, self.timeout, verb, kind, name, namespace, method, *args, **kwargs)

    def deployment(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call('get', 'deployment', name, namespace, self.apps.read_namespaced_deployment, name, namespace)

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._call('list', 'pod', None, namespace, self.core.list_namespaced_pod, namespace,
                          label_selector=selector)['items']

    def owned_replica_sets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """The ReplicaSets the Deployment controls (ownerReferences), among those its selector lists."""
        namespace = deployment['metadata'].get('namespace')
        listed = self._call('list', 'replicaset', None, namespace, self.apps.list_namespaced_replica_set, namespace,
                            label_selector=kr.label_selector(deployment['spec']['selector']))
        return kr.owned_replica_sets(deployment, listed.get('items') or [])

    def hpas(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's HPAs through autoscaling/v2, else autoscaling/v1 (servers before 1.23 answer
        404 for v2): the replica bounds and counts read the same in both; v1 has no conditions. The
        API that answered is kept in `autoscaling`, for patches."""
        apis = [self.autoscaling] if self.autoscaling else [
            self.api.AutoscalingV2Api(self.client), self.api.AutoscalingV1Api(self.client)]
        missing: K8sError | None = None
        for api in apis:
            try:
                items = self._call('list', 'horizontalpodautoscaler', None, namespace,
                                   api.list_namespaced_horizontal_pod_autoscaler, namespace)['items']
            except K8sError as err:
                if err.status != 404:
                    raise
                missing = err
                continue
            self.autoscaling = api
            return items
        raise K8sError('%s; HorizontalPodAutoscalers are read through autoscaling/v2 (Kubernetes 1.23 and later) or '
                       'autoscaling/v1, and the server serves neither: check its version (kubectl version) and '
                       'kubectl api-versions' % missing, 404)

    def failing_new_replica_set(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The Deployment's newest ReplicaSet when the Deployment has a ReplicaFailure condition (the
        controller copies its ReplicaSets' there), else None without a call."""
        if kr.replica_failure(deployment) is None:
            return None
        return kr.new_replica_set(deployment, self.owned_replica_sets(deployment))

    def warning_events(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's Warning events (core/v1, with involvedObject)."""
        return self._call('list', 'event', None, namespace, self.core.list_namespaced_event, namespace,
                          field_selector='type=Warning')['items']

    def service(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The Service, None when there is no such Service (404)."""
        return self._get_or_none('service', name, namespace, self.core.read_namespaced_service)

    def endpoints(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The Endpoints object of the Service, None when there is none (404): no such Service, or
        one that has no selector or whose Endpoints the controller has not made."""
        return self._get_or_none('endpoints', name, namespace, self.core.read_namespaced_endpoints)

    def config_map(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The ConfigMap, None when there is none (404)."""
        return self._get_or_none('configmap', name, namespace, self.core.read_namespaced_config_map)

    def _get_or_none(self, kind: str, name: str, namespace: str, method: Callable[..., Any]) -> dict[str, Any] | None:
        try:
            return self._call('get', kind, name, namespace, method, name, namespace)
        except K8sError as err:
            if err.status == 404:
                return None
            raise

    def pod_metrics(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """PodMetrics of metrics.k8s.io (metrics-server). K8sError with status 404 when the API is
        not registered (no metrics-server), 503 when it is but does not answer."""
        return self._call('list', 'pods.metrics.k8s.io', None, namespace,
                          self.api.CustomObjectsApi(self.client).list_namespaced_custom_object,
                          METRICS_GROUP, METRICS_VERSION, namespace, 'pods', label_selector=selector)['items']

    def pod_log(self, pod: str, namespace: str, container: str, previous: bool = False, since_seconds: int | None = None,
                tail_lines: int | None = None, timestamps: bool = False) -> str:
        """The text/plain log of one container (of its previous instance with previous)."""
        return self._call('get', 'pods/log', pod, namespace, self.core.read_namespaced_pod_log, pod, namespace,
                          container=container, previous=previous or None, since_seconds=since_seconds,
                          tail_lines=tail_lines, timestamps=timestamps or None) or ''

    def proxy(self, method: str, namespace: str, service: str, port: int | str | None, scheme: str | None, path: str,
              headers: Mapping[str, str], timeout: float) -> Response:
        """method (GET or HEAD) of path on the Service through the API server's service proxy
        (/api/v1/namespaces/{ns}/services/{scheme:}{name}:{port}/proxy{path}), with the client's
        credentials, no retry, and timeout: an http_client.Response whatever its status; K8sError when the
        API server could not be reached."""
        target = ''.join((scheme + ':' if scheme else '', service, ':%s' % port if port else ''))
        resource = '/api/v1/namespaces/%s/services/%s/proxy%s' % (quote(namespace, safe=''), quote(target, safe=':'), path)
        # The API credentials go in Authorization: a check's own one would replace them.
        sent = {k: v for k, v in headers.items() if k.lower() != 'authorization'}
        method, url, sent, _body, _post = self.client.param_serialize(method, resource, header_params=sent,
                                                                      auth_settings=['BearerToken'])
        from urllib3 import Timeout
        try:
            answer = self.client.rest_client.pool_manager.request(
                method, url, headers=sent, timeout=Timeout(total=timeout), retries=False, redirect=False)
        except api_errors() as err:
            raise api_error(err, 'get', 'services/proxy', service, namespace)
        return Response(answer.status, answer.headers, answer.data)

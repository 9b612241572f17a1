# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.service_health_info: many health URLs at once, with the dependency states they give;
a check whose url is a path goes to a Kubernetes Service through the API server's service proxy."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ApiError, HttpClient, Response, decode_json
from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError
from ansible_collections.sre.runbooks.plugins.module_utils.common.parallel import run_all
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.client import K8S_ARGS, K8sError
from ansible_collections.sre.runbooks.plugins.module_utils.k8s.observe import Reader
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.exposition import exhausted_pools, parse_exposition

try:
    import jmespath
except ImportError:
    jmespath = None

# K8S_ARGS reach the API server for proxied checks; validate_certs (below, same definition) covers
# the checked URLs and the API server; a proxied check waits its own timeout, not request_timeout.
SPEC = dict(argument_spec=dict(
    K8S_ARGS,
    proxy=dict(type='dict', options=dict(
        namespace=dict(type='str', default='default'),
        service=dict(type='str', required=True),
        port=dict(type='str'),
        scheme=dict(type='str', choices=['http', 'https']),
    )),
    checks=dict(type='list', elements='dict', required=True, options=dict(
        name=dict(type='str'),
        url=dict(type='str', required=True),
        method=dict(type='str', choices=['GET', 'HEAD'], default='GET'),
        expect_status=dict(type='list', elements='int', default=[200]),
        query=dict(type='str'),
        metrics_match=dict(type='str'),
        timeout=dict(type='float'),
    )),
    timeout=dict(type='float', default=5.0),
    headers=dict(type='dict', default={}),
    validate_certs=dict(type='bool', default=True),
    max_body=dict(type='int', default=500),
))


def proxy_target(proxy: dict[str, Any]) -> str:
    """How a proxied check's result names its way: service proxy ns/[scheme:]service[:port]."""
    return 'service proxy %s/%s%s%s' % (proxy['namespace'], proxy['scheme'] + ':' if proxy['scheme'] else '',
                                        proxy['service'], ':%s' % proxy['port'] if proxy['port'] else '')


def api_server_status(payload: Any) -> str | None:
    """The message of a Status object the API server itself answered (no endpoints, no Service), else None."""
    if isinstance(payload, dict) and payload.get('kind') == 'Status' and payload.get('apiVersion') == 'v1':
        return 'the Kubernetes API server answered for the service: %s' % (payload.get('message') or payload.get('reason'))
    return None


def fetch(check: dict[str, Any], defaults: dict[str, Any], reader: Reader | None) -> Response:
    """The answer to one check: directly, or through the service proxy when its url is a path."""
    timeout = check['timeout'] or defaults['timeout']
    if reader is None:
        client = HttpClient(check['url'], name=check['name'], headers=defaults['headers'],
                            validate_certs=defaults['validate_certs'], timeout=timeout, retries=0)
        return client.request(check['method'], '')
    proxy = defaults['proxy']
    return reader.proxy(check['method'], proxy['namespace'], proxy['service'], proxy['port'], proxy['scheme'],
                        check['url'], defaults['headers'], timeout)


def check_one(check: dict[str, Any], defaults: dict[str, Any], compiled: Any, reader: Reader | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {'name': check['name'], 'url': check['url'], 'method': check['method'],
                              'via': proxy_target(defaults['proxy']) if reader else None,
                              'ok': False, 'status': None, 'error': None, 'json': None, 'body': None,
                              'extracted': None}
    if check['metrics_match']:
        result.update(metrics=[], exhausted_pools=[])
    started = time.monotonic()
    try:
        response = fetch(check, defaults, reader)
    except (ApiError, K8sError) as err:
        result['error'] = str(err)
    else:
        result['status'] = response.status
        result['ok'] = response.status in check['expect_status']
        payload = decode_json(response)
        if check['metrics_match']:
            samples = parse_exposition(response.text(), check['metrics_match'])
            result.update(metrics=samples, exhausted_pools=exhausted_pools(samples))
        elif payload is None:
            result['body'] = response.text(defaults['max_body']) or None
        else:
            result['json'] = payload
            if reader and not result['ok']:
                result['error'] = api_server_status(payload)
            if compiled is not None:
                result['extracted'] = compiled.search(payload)
    result['latency_ms'] = round(1000 * (time.monotonic() - started), 1)
    return result


def collect(params: dict[str, Any], warn: Callable[[str], Any]) -> dict[str, Any]:
    del warn  # a check that fails is data, in its result
    checks = params['checks']
    if not checks:
        raise RunbookError('checks is empty: give at least one URL to check')
    compiled: dict[str, Any] = {}
    for check in checks:
        check['name'] = check['name'] or check['url']
        if check['url'].startswith('/'):
            if not params['proxy']:
                raise RunbookError('check %s: url %r is a path, for the service proxy: set proxy (namespace, '
                                   'service, port) or give a full URL' % (check['name'], check['url']))
        elif not check['url'].startswith(('http://', 'https://')):
            raise RunbookError("check %s: url %r must start with http://, https:// or / (a path, through proxy)"
                               % (check['name'], check['url']))
        if check['metrics_match']:
            try:
                re.compile(check['metrics_match'])
            except re.error as err:
                raise RunbookError('check %s: invalid regular expression metrics_match %r: %s'
                                   % (check['name'], check['metrics_match'], err))
        if check['query']:
            if jmespath is None:
                raise RunbookError(missing_required_lib('jmespath'))
            try:
                compiled[check['name']] = jmespath.compile(check['query'])
            except jmespath.exceptions.JMESPathError as err:
                raise RunbookError('check %s: invalid JMESPath query %r: %s'
                                   % (check['name'], check['query'], err))
    names = [c['name'] for c in checks]
    if len(set(names)) != len(names):
        raise RunbookError('check names must be unique; got %s' % ', '.join(names))

    reader: Reader | None = None
    if any(c['url'].startswith('/') for c in checks):
        try:
            reader = Reader(params)
        except K8sError as err:
            raise RunbookError('proxy: %s' % err)
    outcomes = run_all({c['name']: (lambda c=c: check_one(c, params, compiled.get(c['name']),
                                                          reader if c['url'].startswith('/') else None))
                        for c in checks})
    results: list[dict[str, Any]] = []
    for name in names:
        result, error = outcomes[name]
        if error is not None:
            raise RunbookError('check %s failed unexpectedly: %s' % (name, error))
        results.append(result)
    return dict(checks=results, by_name={r['name']: r for r in results},
                all_ok=all(r['ok'] for r in results),
                failed_checks=[r['name'] for r in results if not r['ok']])

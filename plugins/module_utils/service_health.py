# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.service_health: many health URLs at once, with the dependency states they give."""

from __future__ import annotations

import re
import time

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.sre.runbooks.plugins.module_utils.collector import CollectError
from ansible_collections.sre.runbooks.plugins.module_utils.exposition import (
    exhausted_pools, parse_exposition)
from ansible_collections.sre.runbooks.plugins.module_utils.http_client import (
    ApiError, HttpClient, decode_json)
from ansible_collections.sre.runbooks.plugins.module_utils.parallel import run_all

try:
    import jmespath
except ImportError:
    jmespath = None

SPEC = dict(argument_spec=dict(
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


def check_one(check, defaults, compiled):
    client = HttpClient(check['url'], name=check['name'], headers=defaults['headers'],
                        validate_certs=defaults['validate_certs'],
                        timeout=check['timeout'] or defaults['timeout'], retries=0)
    result = {'name': check['name'], 'url': check['url'], 'method': check['method'],
              'ok': False, 'status': None, 'error': None, 'json': None, 'body': None,
              'extracted': None}
    if check['metrics_match']:
        result.update(metrics=[], exhausted_pools=[])
    started = time.monotonic()
    try:
        response = client.request(check['method'], '')
    except ApiError as err:
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
            if compiled is not None:
                result['extracted'] = compiled.search(payload)
    result['latency_ms'] = round(1000 * (time.monotonic() - started), 1)
    return result


def collect(params, warn):
    del warn  # a check that fails is data, in its result
    checks = params['checks']
    if not checks:
        raise CollectError('checks is empty: give at least one URL to check')
    compiled = {}
    for check in checks:
        check['name'] = check['name'] or check['url']
        if not check['url'].startswith(('http://', 'https://')):
            raise CollectError("check %s: url %r must start with http:// or https://"
                               % (check['name'], check['url']))
        if check['metrics_match']:
            try:
                re.compile(check['metrics_match'])
            except re.error as err:
                raise CollectError('check %s: invalid regular expression metrics_match %r: %s'
                                   % (check['name'], check['metrics_match'], err))
        if check['query']:
            if jmespath is None:
                raise CollectError(missing_required_lib('jmespath'))
            try:
                compiled[check['name']] = jmespath.compile(check['query'])
            except jmespath.exceptions.JMESPathError as err:
                raise CollectError('check %s: invalid JMESPath query %r: %s'
                                   % (check['name'], check['query'], err))
    names = [c['name'] for c in checks]
    if len(set(names)) != len(names):
        raise CollectError('check names must be unique; got %s' % ', '.join(names))

    outcomes = run_all({c['name']: (lambda c=c: check_one(c, params, compiled.get(c['name'])))
                        for c in checks})
    results = []
    for name in names:
        result, error = outcomes[name]
        if error is not None:
            raise CollectError('check %s failed unexpectedly: %s' % (name, error))
        results.append(result)
    return dict(checks=results, by_name={r['name']: r for r in results},
                all_ok=all(r['ok'] for r in results),
                failed_checks=[r['name'] for r in results if not r['ok']])

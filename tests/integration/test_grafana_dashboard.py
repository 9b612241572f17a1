"""Every query of the Grafana dashboard (extensions/grafana) returns series on the rig's real
Prometheus for the demo's service, its variables set as the demo inventory sets the runbook's, and
its service variable lists the demo's services. Grafana itself cannot be installed here: its
importer's expectations are checked in tests/unit/test_grafana_dashboard.py."""

import json
import re
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT
from rig import rig

PROMETHEUS = 'http://127.0.0.1:9090'
DASHBOARD = json.loads((ROOT / 'extensions' / 'grafana' / 'dashboards' / 'high-error-rate.json').read_text())
# Grafana's $__rate_interval on a 1 s scrape, and the demo's service.
VALUES = {'__rate_interval': '1m', 'service': 'inference-gateway'}


def get(path, **params):
    url = '%s%s?%s' % (PROMETHEUS, path, urllib.parse.urlencode(params, doseq=True))
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.load(answer)
    assert body['status'] == 'success', body
    return body['data']


def expand(text):
    values = {v['name']: v.get('query') for v in DASHBOARD['templating']['list'] if v['type'] == 'textbox'}
    values.update(VALUES)
    return re.sub(r'\$\{(\w+)\}|\$(\w+)', lambda m: values[m.group(1) or m.group(2)], text)


@pytest.fixture(scope='module')
def traffic():
    rig('wait-clear', 180)


@pytest.mark.parametrize('title, expr', [(panel['title'], target['expr']) for panel in DASHBOARD['panels']
                                         for target in panel['targets']])
def test_each_panel_query_returns_series_for_the_demo(traffic, title, expr):
    query = expand(expr)
    result = get('/api/v1/query', query=query)['result']
    assert result, '%s: no series for %s' % (title, query)
    assert all(len(series['value']) == 2 for series in result)


def test_the_service_variable_lists_the_demo_services(traffic):
    query = expand(DASHBOARD['templating']['list'][-1]['query']['query'])
    metric, label = re.fullmatch(r'label_values\((\w+), (\w+)\)', query).groups()
    assert {'inference-gateway', 'orders'} <= set(get('/api/v1/label/%s/values' % label, **{'match[]': metric}))

"""The Grafana dashboard of extensions/grafana imports as Grafana's dashboard model requires (the
fields its importer reads, panels on the 24-column grid without overlap, one refId per query),
every variable its queries use is defined, and its defaults are the roles' (metric and label names,
the objective). Its queries are run against the rig's Prometheus in
tests/integration/test_grafana_dashboard.py."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / 'extensions' / 'grafana' / 'dashboards' / 'high-error-rate.json').read_text())
VARIABLE = re.compile(r'\$\{(\w+)\}|\$(\w+)')
BUILT_IN = {'__rate_interval', '__interval', '__range'}
PANEL_TYPES = {'timeseries', 'stat'}


def defaults(role):
    return yaml.safe_load((ROOT / 'roles' / role / 'defaults' / 'main.yml').read_text())


def variables():
    return {v['name']: v for v in DASHBOARD['templating']['list']}


def queries():
    return [(panel['title'], target) for panel in DASHBOARD['panels'] for target in panel['targets']]


def test_the_dashboard_has_what_grafanas_importer_reads():
    assert re.fullmatch(r'[A-Za-z0-9_-]{1,40}', DASHBOARD['uid'])
    assert DASHBOARD['title'] and isinstance(DASHBOARD['schemaVersion'], int) and DASHBOARD['schemaVersion'] >= 36
    assert 'id' not in DASHBOARD  # an id would bind the import to one Grafana's database row
    assert DASHBOARD['time'] == {'from': 'now-1h', 'to': 'now'}
    ids = [panel['id'] for panel in DASHBOARD['panels']]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD['panels']:
        assert panel['type'] in PANEL_TYPES and panel['title'] and panel['datasource']['uid'] == '${datasource}'
        refs = [target['refId'] for target in panel['targets']]
        assert refs and len(refs) == len(set(refs)) and all(target['expr'] for target in panel['targets'])


def test_the_panels_tile_the_24_column_grid_without_overlapping():
    cells = set()
    for panel in DASHBOARD['panels']:
        grid = panel['gridPos']
        assert grid['x'] >= 0 and grid['w'] > 0 and grid['x'] + grid['w'] <= 24, panel['title']
        mine = {(x, y) for x in range(grid['x'], grid['x'] + grid['w']) for y in range(grid['y'], grid['y'] + grid['h'])}
        assert not mine & cells, '%s overlaps another panel' % panel['title']
        cells |= mine


def test_every_variable_a_query_uses_is_defined():
    defined = set(variables()) | BUILT_IN
    for title, target in queries():
        used = {a or b for a, b in VARIABLE.findall(target['expr'])}
        assert used <= defined, (title, used - defined)
    service = variables()['service']
    assert service['query']['query'] == 'label_values(${metric}, ${service_label})'


@pytest.mark.parametrize('variable, role, name', [
    ('metric', 'triage', 'triage_metric'), ('service_label', 'triage', 'triage_service_label'),
    ('status_label', 'triage', 'triage_status_label'), ('group_by', 'triage', 'triage_group_by')])
def test_the_variables_default_to_the_roles_names(variable, role, name):
    assert variables()[variable]['query'] == defaults(role)[name]


def test_the_objective_is_the_resolve_roles_and_the_thresholds_the_runbooks():
    assert float(variables()['objective']['query']) == defaults('resolve')['resolve_objective'] / 100
    steps = DASHBOARD['panels'][0]['fieldConfig']['defaults']['thresholds']['steps']
    assert [s['value'] for s in steps] == [None, 1, 5]  # warning above 1%, critical above 5%


def test_the_runbooks_annotations_show_on_the_dashboard():
    ours = [a for a in DASHBOARD['annotations']['list'] if a['name'] == 'sre.runbooks']
    assert ours and ours[0]['target'] == {'type': 'tags', 'tags': ['sre.runbooks', 'service:$service'],
                                          'matchAny': False, 'limit': 100}


def test_the_provisioning_file_points_at_a_dashboards_folder():
    provider = yaml.safe_load((ROOT / 'extensions' / 'grafana' / 'provisioning' / 'sre-runbooks.yml').read_text())
    assert provider['apiVersion'] == 1 and provider['providers'][0]['type'] == 'file'
    assert provider['providers'][0]['options']['path'].startswith('/')

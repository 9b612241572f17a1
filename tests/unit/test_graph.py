"""The incident's graph: the history error_rate_info returns (latency_info's, for a slow service),
the markers the document takes from the incident, and the SVG drawn from them (parsed back, its
coordinates checked); and the links to the same graph in Prometheus."""

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report as report
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import history
from ansible_collections.sre.runbooks.plugins.module_utils.analysis.latency import history_series as latency_history
from ansible_collections.sre.runbooks.plugins.module_utils.notify.slack import render
from ansible_collections.sre.runbooks.plugins.module_utils.render import markers, svg_chart
from ansible_collections.sre.runbooks.plugins.module_utils.render.links import graph_words, prometheus_graph
from ansible_collections.sre.runbooks.plugins.module_utils.render.svg_chart import error_rate_chart

SVG = '{http://www.w3.org/2000/svg}'
T0 = 1795443600.0  # 2026-11-23T14:20:00Z


def bad_deploy_history():
    """Five minutes at 20 req/s: /predict fails 80% from 14:21 to 14:23, the rest never fails."""
    times = [T0 + 10 * i for i in range(31)]
    failing = {t: 4.0 if T0 + 60 <= t < T0 + 180 else 0.0 for t in times}
    return history({t: failing[t] for t in times}, {t: 20.0 for t in times},
                   {'/predict': failing, '/embed': {t: 0.0 for t in times}},
                   {'/predict': {t: 5.0 for t in times}, '/embed': {t: 5.0 for t in times},
                    '/models': {}})


def test_the_history_holds_the_overall_line_and_the_endpoints_that_failed():
    found = bad_deploy_history()
    assert found['overall'][0] == [T0, 0.0] and found['overall'][6] == [T0 + 60, 20.0]
    assert [g['name'] for g in found['groups']] == ['/predict']  # /embed never failed, /models had no traffic
    assert found['groups'][0]['peak_percent'] == 80.0 and len(found['groups'][0]['points']) == 31


def test_the_chart_draws_each_series_threshold_and_marker_where_they_belong():
    found = bad_deploy_history()
    svg = error_rate_chart('inference-gateway', [{'name': 'all requests', 'points': found['overall']},
                                                 {'name': '/predict', 'points': found['groups'][0]['points']}],
                           [{'at': T0 + 55, 'label': 'deploy v1.2.3', 'kind': 'deploy'},
                            {'at': T0 + 200, 'label': 'rollback', 'kind': 'action'},
                            {'at': T0 + 9999, 'label': 'outside', 'kind': 'action'}],
                           [{'label': 'critical 5%', 'percent': 5.0}])
    root = ET.fromstring(svg)
    assert (root.get('width'), root.get('height')) == (str(svg_chart.WIDTH), str(svg_chart.HEIGHT))
    lines = root.findall(SVG + 'polyline')
    assert len(lines) == 2
    overall = [tuple(map(float, p.split(','))) for p in lines[0].get('points').split()]
    assert len(overall) == 31
    left, right = svg_chart.LEFT, svg_chart.WIDTH - svg_chart.RIGHT
    bottom = svg_chart.HEIGHT - svg_chart.BOTTOM
    assert overall[0] == (left, bottom) and overall[-1][0] == right
    # 80% (the peak) sits highest, 20% a quarter as high above the bottom.
    predict = [tuple(map(float, p.split(','))) for p in lines[1].get('points').split()]
    peak_y = min(y for _x, y in predict)
    assert abs((bottom - overall[6][1]) * 4 - (bottom - peak_y)) < 1
    texts = [t.text for t in root.iter(SVG + 'text')]
    assert 'deploy v1.2.3' in texts and 'rollback' in texts and 'outside' not in texts
    assert 'critical 5%' in texts and '/predict' in texts and '14:20' in texts
    dashed = [line for line in root.iter(SVG + 'line') if line.get('stroke-dasharray') == '3,3']
    assert [round(float(line.get('x1'))) for line in dashed] == [
        round(left + (right - left) * 55 / 300), round(left + (right - left) * 200 / 300)]


def test_a_flat_or_empty_history_still_draws_a_frame():
    root = ET.fromstring(error_rate_chart('quiet', [{'name': 'all requests', 'points': [[T0, 0.0], [T0, 0.0]]}]))
    assert root.findall(SVG + 'polyline') and '1%' in [t.text for t in root.iter(SVG + 'text')]
    assert ET.fromstring(error_rate_chart('nothing', [])).findall(SVG + 'rect')


def test_the_document_shows_the_graph_and_marks_what_the_runbook_did():
    incident = {
        'id': 'inference-gateway-20261123T142300Z', 'service': 'inference-gateway', 'started_at': '2026-11-23T14:23:00Z',
        'triage': {'error_rate': {'onset_iso': '2026-11-23T14:21:00Z'},
                   'changes': [{'kind': 'deploy', 'time_iso': '2026-11-23T14:20:55Z',
                                'image': 'sre-demo/inference-gateway:v1.2.3'}]},
        'mitigation': {'attempts': [{'acted': True, 'at': '2026-11-23T14:23:20Z', 'action': {'name': 'rollback'}},
                                    {'acted': False, 'at': '2026-11-23T14:24:00Z', 'action': {'name': 'restart'}}]},
        'verify': {'recovered': True, 'samples': [{'time_iso': '2026-11-23T14:24:30Z'}]},
        'error_rate_history': dict(bad_deploy_history(), critical_percent=5.0, warning_percent=1.0)}
    assert [(m['label'], m['kind']) for m in markers.incident_markers(incident)] == [
        ('deploy v1.2.3', 'deploy'), ('errors began', 'onset'), ('rollback', 'action'), ('recovered', 'recovered')]
    assert [a['tags'] for a in markers.grafana_annotations(incident)][1] == [
        'sre.runbooks', 'service:inference-gateway', 'incident:inference-gateway-20261123T142300Z', 'onset']
    annotations = markers.grafana_annotations(incident)
    assert annotations[2]['text'] == 'inference-gateway: rollback (incident inference-gateway-20261123T142300Z)'
    assert annotations[2]['key'] == 'action@%.3f' % (T0 + 200)
    assert [a['key'] for a in markers.grafana_annotations(incident, [a['key'] for a in annotations[:3]])] == [
        annotations[3]['key']]
    texts = [t.text for t in ET.fromstring(report.render_graph(incident)).iter(SVG + 'text')]
    assert 'critical 5%' in texts and 'warning 1%' in texts and 'restart' not in texts
    assert texts[0] == 'inference-gateway: error rate during incident inference-gateway-20261123T142300Z'
    markdown = report.render_markdown(incident, [], {'start': None, 'end': None, 'attendees': []}, 'x.ics',
                                      'incident-20261123-1423-high-error-rate-error-rate.svg')
    assert '](incident-20261123-1423-high-error-rate-error-rate.svg)' in markdown.splitlines()[2]
    assert report.render_graph(dict(incident, error_rate_history={})) is None


def test_the_messages_and_the_document_link_the_prometheus_graph_of_the_incident():
    incident = {'id': 'gw-1', 'service': 'inference-gateway', 'started_at': '2026-11-23T14:23:00Z', 'outcome': 'resolved',
                'triage': {'error_rate': {'onset': T0 + 60, 'queries': {
                    'errors_overall': 'sum(rate(http_requests_total{service="inference-gateway",status=~"5.."}[30s]))',
                    'total_overall': 'sum(rate(http_requests_total{service="inference-gateway"}[30s]))'}}},
                'verify': {'recovered': True, 'samples': [{'time_iso': '2026-11-23T14:30:00Z'}]}}
    url = prometheus_graph('http://prometheus:9090/', incident, now=T0 + 600)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.netloc == 'prometheus:9090' and parts.path == '/graph'
    assert query['g0.expr'].startswith('100 * (sum(rate(http_requests_total{service="inference-gateway",status=~"5.."}')
    assert query['g0.range_input'] == '1140s'  # 5 min before the onset (14:21) to 5 min after now (14:30)
    assert query['g0.end_input'] == '2026-11-23 14:35:00'
    assert prometheus_graph('', incident) is None and prometheus_graph('http://p', {'triage': {}}) is None
    text, _blocks = render('resolved', incident, {'prometheus_url': 'http://prometheus:9090'},
                           now=datetime.fromtimestamp(T0 + 600, tz=timezone.utc))
    assert 'Graph: <%s|error rate in Prometheus>' % url in text
    with_grafana = render('resolved', incident, {'grafana_url': 'https://grafana.example', 'grafana_dashboard': 'abc'},
                          now=datetime.fromtimestamp(T0 + 600, tz=timezone.utc))[0]
    assert ('Grafana: <https://grafana.example/d/abc?from=%d&to=%d&var-service=inference-gateway|the dashboard over the '
            'incident>' % ((T0 - 240) * 1000, (T0 + 900) * 1000)) in with_grafana
    summary = report.summary_section(incident, {'prometheus_url': 'http://prometheus:9090'})
    assert any(line.startswith('| Graph | [error rate in Prometheus](http://prometheus:9090/graph?') for line in summary), summary
    assert not any('Graph' in line for line in report.summary_section(incident))


def slow_deploy_latency_history():
    """Five minutes: the p99 of /predict at 25 ms, then 990 ms from 14:21 to 14:23 (the whole
    service's at half that); /embed steady at 12 ms; /admin at 2 s with too little traffic."""
    times = [T0 + 10 * i for i in range(31)]
    predict = {t: 0.99 if T0 + 60 <= t < T0 + 180 else 0.025 for t in times}
    overall = [(t, None if t == T0 + 250 else predict[t] / 2) for t in times]  # no traffic at 14:24:10
    return latency_history(overall, {'/predict': predict, '/embed': {t: 0.012 for t in times},
                                     '/admin': {t: 2.0 for t in times}}, 'p99', skip=['/admin'])


def slow_incident(**more):
    incident = {
        'id': 'inference-gateway-20261123T142300Z', 'service': 'inference-gateway', 'started_at': '2026-11-23T14:23:00Z',
        'symptom': 'latency',
        'triage': {'latency': {'onset_iso': '2026-11-23T14:21:00Z', 'onset': T0 + 60, 'verdict_quantile': 'p99',
                               'slow_threshold_seconds': 0.5, 'target_seconds': 0.5, 'window_seconds': 30.0,
                               'queries': {'p99_overall': LATENCY_P99, 'p99': 'histogram_quantile(0.99, sum by (le, endpoint) (…))'}},
                   'error_rate': {'onset': None, 'queries': {'errors_overall': 'sum(errors)', 'total_overall': 'sum(total)'}},
                   'changes': [{'kind': 'deploy', 'time_iso': '2026-11-23T14:20:55Z',
                                'image': 'sre-demo/inference-gateway:v1.2.4'}]},
        'mitigation': {'attempts': [{'acted': True, 'at': '2026-11-23T14:23:20Z', 'action': {'name': 'rollback'}}]},
        'verify': {'recovered': True, 'samples': [{'time_iso': '2026-11-23T14:24:30Z', 'seconds': 0.024}]},
        'latency_history': slow_deploy_latency_history(),
        'error_rate_history': dict(bad_deploy_history(), critical_percent=5.0, warning_percent=1.0)}
    incident.update(more)
    return incident


LATENCY_P99 = ('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
               '{service="inference-gateway",namespace="ml"}[30s])))')


def test_the_latency_history_holds_the_overall_line_and_the_slowest_endpoints():
    found = slow_deploy_latency_history()
    assert found['quantile'] == 'p99' and len(found['overall']) == 30  # the point without traffic is left out
    assert found['overall'][0] == [T0, 0.0125] and found['overall'][6] == [T0 + 60, 0.495]
    # /admin is slowest but its traffic proves nothing; /predict peaked highest of the others.
    assert [(g['name'], g['peak_seconds']) for g in found['groups']] == [('/predict', 0.99), ('/embed', 0.012)]
    assert latency_history([(T0, float('inf')), (T0 + 10, 0.1)], {}, 'p95')['overall'] == [[T0 + 10, 0.1]]


def test_response_time_ticks_read_in_ms_under_a_second_and_in_s_above():
    assert [svg_chart.seconds_tick(v) for v in (0.0, 0.0025, 0.2, 0.30000000000000004, 0.9999999999, 1.0, 1.5, 12.0)] == [
        '0 ms', '2.5 ms', '200 ms', '300 ms', '1 s', '1 s', '1.5 s', '12 s']


def test_one_chart_draws_the_response_time_with_its_target_and_the_markers():
    found = slow_deploy_latency_history()
    svg = svg_chart.incident_chart('inference-gateway', [{'name': 'all requests', 'points': found['overall']},
                                                         {'name': '/predict', 'points': found['groups'][0]['points']}],
                                   [{'at': T0 + 55, 'label': 'deploy v1.2.4', 'kind': 'deploy'},
                                    {'at': T0 + 60, 'label': 'slowdown began', 'kind': 'onset'},
                                    {'at': T0 + 200, 'label': 'rollback', 'kind': 'action'}],
                                   [{'label': 'target 500 ms', 'value': 0.5}], axis=svg_chart.seconds_axis('p99'))
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(SVG + 'text')]
    assert texts[1].startswith('p99 of the response time, 2026-11-23 14:20:00 to 14:25 UTC')
    # 990 ms at the peak: a scale of 0 to 1.5 s in steps of 500 ms, ms under a second.
    ticks = [t.text for t in root.iter(SVG + 'text') if t.get('text-anchor') == 'end']
    assert ticks == ['0 ms', '500 ms', '1 s', '1.5 s']
    assert not any(text and text.endswith('%') for text in texts)
    bottom, top = svg_chart.HEIGHT - svg_chart.BOTTOM, svg_chart.TOP
    plot_h = bottom - top

    def height(seconds):
        return bottom - seconds / 1.5 * plot_h

    target = [line for line in root.iter(SVG + 'line') if line.get('stroke-dasharray') == '6,4']
    assert len(target) == 1 and float(target[0].get('y1')) == round(height(0.5), 1)
    assert 'target 500 ms' in texts
    predict = [tuple(map(float, p.split(','))) for p in root.findall(SVG + 'polyline')[1].get('points').split()]
    assert min(y for _x, y in predict) == round(height(0.99), 1)
    left, right = svg_chart.LEFT, svg_chart.WIDTH - svg_chart.RIGHT
    dashed = [line for line in root.iter(SVG + 'line') if line.get('stroke-dasharray') == '3,3']
    assert [round(float(line.get('x1'))) for line in dashed] == [
        round(left + (right - left) * at / 300) for at in (55, 60, 200)]
    assert [texts.count(label) for label in ('deploy v1.2.4', 'slowdown began', 'rollback')] == [1, 1, 1]
    # A fast service still has a scale: 10 ms at least.
    quiet = ET.fromstring(svg_chart.incident_chart('quiet', [{'name': 'all requests', 'points': [[T0, 0.001], [T0 + 60, 0.002]]}],
                                                   axis=svg_chart.seconds_axis()))
    assert [t.text for t in quiet.iter(SVG + 'text') if t.get('text-anchor') == 'end'][-1] == '15 ms'


def test_a_slow_services_document_draws_its_p99_against_the_target():
    incident = slow_incident()
    assert [(m['label'], m['kind']) for m in markers.incident_markers(incident)] == [
        ('deploy v1.2.4', 'deploy'), ('slowdown began', 'onset'), ('rollback', 'action'), ('recovered', 'recovered')]
    root = ET.fromstring(report.render_graph(incident))
    texts = [t.text for t in root.iter(SVG + 'text')]
    assert texts[0] == 'inference-gateway: p99 response time during incident inference-gateway-20261123T142300Z'
    assert 'target 500 ms' in texts and 'critical 5%' not in texts and '/predict' in texts and '/admin' not in texts
    assert 'slowdown began' in texts and 'errors began' not in texts
    assert report.graph_kind(incident) == 'response-time'
    markdown = report.render_markdown(incident, [], {'start': None, 'end': None, 'attendees': []}, 'x.ics',
                                      'incident-20261123-1423-high-response-time-response-time.svg')
    assert markdown.splitlines()[2] == ('![Response time (p99) during the incident against its target, with the deploys, '
                                        'actions and recovery](incident-20261123-1423-high-response-time-response-time.svg)')
    # Without a target, the threshold the triage judged by; without the history read, no graph at
    # all (never the error rate's, which says nothing of a slow service).
    judged = slow_incident(triage=dict(incident['triage'], latency=dict(
        incident['triage']['latency'], target_seconds=None, slow_threshold_seconds=0.0498)))
    assert 'slow above 49.8 ms' in [t.text for t in ET.fromstring(report.render_graph(judged)).iter(SVG + 'text')]
    assert report.render_graph(slow_incident(latency_history={})) is None


def test_a_slow_services_links_graph_its_p99_in_prometheus():
    incident = slow_incident()
    url = prometheus_graph('http://prometheus:9090/', incident, now=T0 + 600)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query['g0.expr'] == LATENCY_P99
    assert query['g0.range_input'] == '1140s'  # 5 min before the slowdown began (14:21) to 5 min after now (14:30)
    assert graph_words(incident) == 'p99 response time in Prometheus'
    text, _blocks = render('resolved', incident, {'prometheus_url': 'http://prometheus:9090'},
                           now=datetime.fromtimestamp(T0 + 600, tz=timezone.utc))
    assert 'Graph: <%s|p99 response time in Prometheus>' % url in text
    summary = report.summary_section(incident, {'prometheus_url': 'http://prometheus:9090'})
    assert any(line.startswith('| Graph | [p99 response time in Prometheus](http://prometheus:9090/graph?g0.expr=histogram_quantile')
               for line in summary), summary
    # The quantile the triage judged, whichever it was; no link without its query.
    p95 = slow_incident(triage={'latency': {'verdict_quantile': 'p95', 'onset': T0 + 60, 'queries': {'p95_overall': 'q95'}}})
    assert parse_qs(urlsplit(prometheus_graph('http://p', p95, now=T0 + 600)).query)['g0.expr'] == ['q95']
    assert prometheus_graph('http://p', slow_incident(triage={'latency': {}, 'error_rate': incident['triage']['error_rate']}),
                            now=T0 + 600) is None
    # The error rate's link is the error ratio's, as before.
    errors = dict(incident, symptom='error_rate')
    assert graph_words(errors) == 'error rate in Prometheus'
    assert parse_qs(urlsplit(prometheus_graph('http://p', errors, now=T0 + 600)).query)['g0.expr'] == [
        '100 * (sum(errors)) / (sum(total))']

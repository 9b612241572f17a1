"""The error-rate rules, on numbers chosen by hand: verdicts, no traffic, shape and onset, the
baseline that falls on an incident, errors by status, the label check, and the watch's verdict."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.error_rate import (
    NoData,
    assess,
    baseline_offsets,
    build_queries,
    by_group,
    by_status,
    choose_baseline,
    describe,
    label_uses,
    missing_labels,
    ratio_series,
    shape_and_onset,
    status_values_warning,
    to_percent,
    trend,
    verdict,
    watch_outcome,
    watch_verdict,
)
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting

THRESHOLDS = {'warning': 0.01, 'critical': 0.05, 'min_request_rate': 0.1}


def sample(errors, total):
    return {'errors': errors, 'total': total}


def baseline_60s(base):
    """The baseline windows of assess: only the configured one, 60 s back."""
    return [('60s', 60.0, base)]


def step_series(before, after, change_at, length=60, total=20.0):
    """Range points of a ratio that steps from `before` to `after` at index change_at,
    smoothed over a 5-point window as rate() smooths it."""
    errors, totals = {}, {}
    for i in range(length):
        level = before if i < change_at else after
        if change_at <= i < change_at + 5:
            level = before + (after - before) * (i - change_at + 1) / 5.0
        errors[1000.0 + i] = level * total
        totals[1000.0 + i] = total
    return errors, totals


def test_verdicts_against_thresholds():
    assert verdict(0.2, 10, 0.01, 0.05, 0.1) == 'critical'
    assert verdict(0.03, 10, 0.01, 0.05, 0.1) == 'warning'
    assert verdict(0.01, 10, 0.01, 0.05, 0.1) == 'ok'
    assert verdict(None, None, 0.01, 0.05, 0.1) == 'no_traffic'
    assert verdict(None, 0.0, 0.01, 0.05, 0.1) == 'no_traffic'
    # One error among 0.05 req/s would be 100%: too little traffic to judge.
    assert verdict(1.0, 0.05, 0.01, 0.05, 0.1) == 'low_traffic'


def test_queries_use_the_configured_labels():
    q = build_queries('http_requests_total', [('app', '=', 'dhakacart-backend'),
                                              ('namespace', '=', 'dhakacart')],
                      'status_code', '5..', '5m', ['1d', '2d'], 'endpoint')
    assert q['errors'] == ('sum by (endpoint) (rate(http_requests_total{app="dhakacart-backend",'
                           'namespace="dhakacart",status_code=~"5.."}[5m]))')
    assert q['baseline_total'].endswith('[5m] offset 1d))')
    assert q['baseline_errors_2'].endswith('status_code=~"5.."}[5m] offset 2d))')
    assert 'baseline_total_3' not in q
    assert q['total_overall'] == ('sum(rate(http_requests_total{app="dhakacart-backend",'
                                  'namespace="dhakacart"}[5m]))')
    assert q['errors_by_status'] == (
        'sum by (status_code) (rate(http_requests_total{app="dhakacart-backend",'
        'namespace="dhakacart",status_code=~"5.."}[5m]))')


def test_the_watch_needs_no_baseline_query():
    q = build_queries('m', [('service', '=', 's')], 'status', '5..', '1m', (), None)
    assert sorted(q) == ['errors', 'errors_by_status', 'errors_overall', 'total', 'total_overall']


def test_baseline_offsets_are_multiples_of_the_configured_one():
    assert baseline_offsets('1d', 86400.0) == [('1d', 86400.0), ('2d', 172800.0),
                                               ('3d', 259200.0), ('4d', 345600.0)]
    assert [text for text, _s in baseline_offsets('60s', 60.0)] == ['60s', '2m', '3m', '4m']


def test_label_values_are_escaped():
    q = build_queries('m', [('service', '=', 'a"b\\c')], 'status', '5..', '1m', ['1h'], '')
    assert 'service="a\\"b\\\\c"' in q['total']
    assert q['total'].startswith('sum (rate(')


def test_by_group_drops_non_finite_samples():
    series = [{'labels': {'endpoint': '/a'}, 'value': 1.5},
              {'labels': {'endpoint': '/b'}, 'value': None},
              {'labels': {}, 'value': 2.0}]
    assert by_group(series, 'endpoint') == {'/a': 1.5, '': 2.0}


def test_critical_on_one_endpoint_after_a_step():
    errors, totals = step_series(0.0, 0.27, change_at=40)
    traffic = {'/predict': 5.0, '/embed': 5.0, '/classify': 5.0, '/models': 5.0}
    now = sample({'/predict': 4.0, '/embed': 0.05}, traffic)
    base = sample({}, traffic)
    r = assess(now, baseline_60s(base), (errors, totals), THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'critical'
    assert r['error_ratio'] == pytest.approx(4.05 / 20)
    assert r['error_percent'] == pytest.approx(20.25)
    assert r['baseline']['error_ratio'] == 0.0
    assert r['baseline']['verdict'] == 'ok'
    assert r['baseline']['offset'] == '60s' and r['baseline']['overlaps_incident'] is False
    assert r['change_percent_points'] == pytest.approx(20.25)
    assert [g['value'] for g in r['groups']][:2] == ['/predict', '/embed']
    assert r['groups'][0]['verdict'] == 'critical'
    assert r['groups'][0]['share_of_errors'] == pytest.approx(4.0 / 4.05)
    assert r['top_group'] == '/predict'
    assert r['failing_groups'] == ['/predict']
    assert r['concentrated'] is True
    assert r['shape'] == 'spike'
    assert r['onset'] == 1040.0


def test_errors_everywhere_are_not_concentrated():
    now = sample({'/a': 1.0, '/b': 1.0}, {'/a': 10.0, '/b': 10.0})
    errors, totals = step_series(0.0, 0.1, change_at=30)
    r = assess(now, baseline_60s(sample({}, {})), (errors, totals), THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'critical'
    assert r['concentrated'] is False
    assert sorted(r['failing_groups']) == ['/a', '/b']
    assert r['baseline']['error_ratio'] is None
    assert r['baseline']['verdict'] == 'no_traffic'
    assert r['change_percent_points'] is None


def test_no_series_at_all_is_no_data():
    with pytest.raises(NoData):
        assess(sample({}, {}), baseline_60s(sample({}, {})), ({}, {}), THRESHOLDS, 'endpoint', 5)


def test_no_traffic_now_is_not_zero_percent():
    totals = {1000.0 + i: 5.0 for i in range(20)}
    totals.update({1020.0 + i: 0.0 for i in range(10)})
    r = assess(sample({}, {}), baseline_60s(sample({}, {'/a': 5.0})), ({}, totals), THRESHOLDS,
               'endpoint', 5)
    assert r['verdict'] == 'no_traffic'
    assert r['error_ratio'] is None
    assert r['error_percent'] is None
    assert r['last_seen'] == 1019.0
    assert r['onset'] is None
    text = describe(dict(r, last_seen_iso='x'), 'svc', '5m', '1d', THRESHOLDS)
    assert 'no requests in the last 5m' in text and 'not 0% errors' in text


def test_one_error_on_an_idle_service_is_low_traffic():
    r = assess(sample({'/a': 0.02}, {'/a': 0.02}), baseline_60s(sample({}, {})), ({}, {1.0: 0.02}),
               THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'low_traffic'
    assert r['error_percent'] == 100.0
    assert r['groups'][0]['verdict'] == 'low_traffic'
    assert r['top_group'] is None
    text = describe(dict(r, onset_iso=None), 's', '5m', '1d', THRESHOLDS)
    assert text.startswith('s: 100.00% of 0.02 req/s answer 5xx')  # not 0.00 req/s
    assert 'too little traffic' in text


def test_gradual_climb():
    series = [(1000.0 + i, 0.002 * i) for i in range(60)]
    shape, onset = shape_and_onset(series, 0.01, 5)
    assert shape == 'gradual'
    assert onset == 1006.0  # first point above 10% of the rise (0.0118)


def test_steady_when_nothing_changed():
    series = [(1000.0 + i, 0.2 + (0.001 if i % 2 else 0)) for i in range(60)]
    assert shape_and_onset(series, 0.01, 5) == ('steady', None)


def test_shape_unknown_with_too_few_points():
    assert shape_and_onset([(1.0, 0.5), (2.0, 0.5)], 0.01, 5) == ('unknown', None)


def test_ratio_series_skips_points_without_enough_traffic():
    assert ratio_series({1.0: 1.0, 2.0: 1.0}, {1.0: 10.0, 2.0: 0.01, 3.0: 10.0}, 0.1) == \
        [(1.0, 0.1), (3.0, 0.0)]


def test_describe_names_the_failing_endpoint():
    errors, totals = step_series(0.0, 0.2, change_at=40)
    r = assess(sample({'/predict': 4.0}, {'/predict': 5.0, '/embed': 15.0}),
               baseline_60s(sample({}, {'/a': 1})), (errors, totals), THRESHOLDS, 'endpoint', 5)
    r['onset_iso'] = '2026-11-23T17:40:05Z'
    text = describe(r, 'inference-gateway', '30s', '60s', THRESHOLDS)
    assert text.startswith('inference-gateway: 20.00% of 20.0 req/s answer 5xx over 30s '
                           '(critical > 5%)')
    assert 'baseline 0.00% 60s ago' in text
    assert 'endpoint /predict at 80.0% (100% of errors)' in text
    assert 'spike since 2026-11-23T17:40:05Z' in text


def test_recovery_needs_the_whole_stable_window_under_target():
    samples = [(0, 4.0, 20.0, True), (10, 1.0, 20.0, True), (20, 0.1, 20.0, True), (30, 0.0, 20.0, True)]
    assert watch_verdict(samples, 0.01, 10, 0.1) == {'recovered': True, 'stable_seconds': 10.0,
                                                     'trend': 'decreasing', 'verdict': 'recovered'}
    assert watch_verdict(samples, 0.01, 20, 0.1)['recovered'] is False


def test_recovery_silence_or_a_failed_query_breaks_the_stable_stretch():
    samples = [(0, 0.0, 20.0, True), (10, 0.0, 20.0, True), (20, None, None, False), (30, 0.0, 0.05, True),
               (40, 0.0, 20.0, True)]
    outcome = watch_verdict(samples, 0.01, 15, 0.1)
    assert (outcome['recovered'], outcome['stable_seconds'], outcome['trend']) == (False, 0.0, 'flat')
    assert watch_verdict([(0, 2.0, 20.0, True), (10, 4.0, 20.0, True)], 0.01, 0, 0.1)['trend'] == 'increasing'
    assert watch_verdict([], 0.01, 0, 0.1) == {'recovered': False, 'stable_seconds': 0.0, 'trend': 'unknown',
                                               'verdict': 'not_recovered'}


def test_watch_outcome_from_healthy_checks_whatever_measured_them():
    # healthy: True, False (measured unhealthy), None (not measured).
    assert watch_outcome([(0, False), (5, True), (10, True), (15, True)], 10) == {
        'recovered': True, 'stable_seconds': 10.0, 'verdict': 'recovered'}
    assert watch_outcome([(0, True), (5, None), (10, True), (15, True)], 10)['verdict'] == 'not_measured'
    assert watch_outcome([(0, None), (5, False), (10, True)], 10)['verdict'] == 'not_recovered'
    assert watch_outcome([(0, True), (5, True)], 0)['verdict'] == 'recovered'
    assert [trend(f) for f in ([1.0, 0.5], [1.0, 1.5], [1.0, 1.1], [1.0])] == [
        'decreasing', 'increasing', 'flat', 'unknown']


# The baseline that falls on an incident: 60 s back failing, earlier windows tried.
CLEAN = sample({'/a': 0.0}, {'/a': 10.0, '/b': 10.0})
POLLUTED = sample({'/a': 12.0, '/b': 0.875}, {'/a': 10.0, '/b': 10.0})  # 64.375% errors
IDLE = sample({}, {})


def windows(*samples):
    return [(text, seconds, s) for (text, seconds), s in zip(baseline_offsets('60s', 60.0), samples)]


def test_choose_baseline_keeps_the_configured_window_unless_it_fails():
    assert choose_baseline(windows(CLEAN, POLLUTED), THRESHOLDS)[0] == 0
    # No traffic at the offset: no baseline, as before (nothing says it was an incident).
    assert choose_baseline(windows(IDLE, CLEAN), THRESHOLDS)[0] == 0
    chosen, looked = choose_baseline(windows(POLLUTED, IDLE, CLEAN, CLEAN), THRESHOLDS)
    assert chosen == 2  # the 2m window has no traffic (before the data held): not clean
    assert [(w['offset'], w['verdict']) for w in looked] == [
        ('60s', 'critical'), ('2m', 'no_traffic'), ('3m', 'ok'), ('4m', 'ok')]
    assert looked[0]['error_percent'] == 64.375 and looked[0]['request_rate'] == 20.0
    assert choose_baseline(windows(POLLUTED, POLLUTED, IDLE, POLLUTED), THRESHOLDS)[0] is None
    assert choose_baseline([], THRESHOLDS) == (None, [])


def current_incident():
    errors, totals = step_series(0.0, 0.2, change_at=40)
    return sample({'/a': 4.0}, {'/a': 10.0, '/b': 10.0}), (errors, totals)


def test_a_polluted_baseline_is_replaced_by_an_earlier_clean_window_groups_included():
    now, series = current_incident()
    r = assess(now, windows(POLLUTED, CLEAN, CLEAN, CLEAN), series, THRESHOLDS, 'endpoint', 5)
    base = r['baseline']
    assert base['overlaps_incident'] is True
    assert (base['offset'], base['offset_seconds'], base['error_ratio'], base['verdict']) == \
        ('2m', 120.0, 0.0, 'ok')
    assert r['change_percent_points'] == pytest.approx(20.0)
    assert {g['value']: g['baseline_error_ratio'] for g in r['groups']} == {'/a': 0.0, '/b': 0.0}
    r.update(onset_iso='2026-11-23T17:40:05Z', evaluated_at=1059.0)  # onset 1040: after 999
    text = describe(r, 'svc', '30s', '60s', THRESHOLDS)
    assert '; the baseline 60s ago falls on an earlier incident (64.4%): baseline 0.00% 2m ago ' \
           'instead;' in text


def test_a_baseline_inside_this_incident_says_so():
    now, series = current_incident()
    r = assess(now, windows(POLLUTED, CLEAN), series, THRESHOLDS, 'endpoint', 5)
    r.update(onset_iso='x', evaluated_at=1200.0)  # 60 s back is 1140, after the onset at 1040
    assert 'the baseline 60s ago falls on this incident (64.4%)' in describe(
        r, 'svc', '30s', '60s', THRESHOLDS)


def test_no_clean_window_is_no_baseline_rather_than_a_polluted_one():
    now, series = current_incident()
    r = assess(now, windows(POLLUTED, POLLUTED, IDLE, POLLUTED), series, THRESHOLDS, 'endpoint', 5)
    base = r['baseline']
    assert base['overlaps_incident'] is True
    assert (base['offset'], base['error_ratio'], base['error_percent'], base['request_rate'],
            base['verdict']) == (None, None, None, None, None)
    assert r['change_percent_points'] is None
    assert all(g['baseline_error_ratio'] is None for g in r['groups'])
    r.update(onset_iso=None, evaluated_at=1059.0)
    assert ('; the baseline 60s ago falls on an earlier incident (64.4%) and no window up to 4m '
            'ago is clean: no clean baseline') in describe(r, 'svc', '30s', '60s', THRESHOLDS)
    # Without an onset (errors as high all over the lookback), which incident is not known.
    r['onset'] = None
    assert '; the baseline 60s ago falls on an incident (64.4%) and no window' in describe(
        r, 'svc', '30s', '60s', THRESHOLDS)


# Errors by status: a bad deploy's 500s from index 20, a slow dependency's 504s from index 40.
def status_history():
    totals = {1000.0 + i: 30.0 for i in range(60)}
    fives = {1000.0 + i: (0.0 if i < 20 else 3.0) for i in range(60)}
    timeouts = {1000.0 + i: (0.0 if i < 40 else 2.0) for i in range(60)}
    earlier = {1000.0 + i: (1.5 if 5 <= i < 10 else 0.0) for i in range(60)}
    range_series = [{'labels': {'status': code}, 'values': sorted(points.items())}
                    for code, points in (('500', fives), ('504', timeouts), ('503', earlier))]
    now_series = [{'labels': {'status': '500'}, 'value': 3.0},
                  {'labels': {'status': '504'}, 'value': 2.0},
                  {'labels': {'status': '503'}, 'value': 0.0}]
    return now_series, range_series, totals


def test_each_status_gets_its_share_and_its_own_onset():
    now_series, range_series, totals = status_history()
    statuses = by_status(now_series, range_series, totals, 'status', THRESHOLDS, 5, True)
    assert [s['status'] for s in statuses] == ['500', '504']  # 503 answers no error now
    five, timeout = statuses
    assert five['error_rate'] == 3.0 and five['share_of_errors'] == pytest.approx(0.6)
    assert (five['shape'], five['onset'], five['onset_iso']) == ('spike', 1020.0, '1970-01-01T00:17:00Z')
    assert timeout['share_of_errors'] == pytest.approx(0.4)
    assert (timeout['shape'], timeout['onset']) == ('spike', 1040.0)


def test_status_onsets_only_while_failing():
    now_series, range_series, totals = status_history()
    statuses = by_status(now_series, range_series, totals, 'status', THRESHOLDS, 5, False)
    assert [(s['status'], s['onset'], s['onset_iso']) for s in statuses] == [
        ('500', None, None), ('504', None, None)]
    assert by_status([], [], totals, 'status', THRESHOLDS, 5, True) == []


def test_describe_credits_each_status_when_there_are_several():
    now, series = current_incident()
    r = assess(now, baseline_60s(CLEAN), series, THRESHOLDS, 'endpoint', 5)
    r['onset_iso'] = None
    r['by_status'] = [{'status': '500', 'share_of_errors': 0.6, 'onset_iso': '2026-11-23T17:40:05Z'},
                      {'status': '504', 'share_of_errors': 0.4, 'onset_iso': None}]
    assert '; by status 500 60% since 2026-11-23T17:40:05Z, 504 40%' in describe(
        r, 'svc', '30s', '60s', THRESHOLDS)


# Rates print with enough digits (formatting.rate, as describe writes them); no figure,
# anywhere, crashes the line.
@pytest.mark.parametrize('value, text', [
    (0.05, '0.05'), (1 / 3.0, '0.333'), (0.0004567, '0.000457'), (0.5, '0.5'),
    (19.6449, '19.6'), (4.934, '4.93'), (1.0, '1.00'), (0.0, '0'), (None, 'unknown')])
def test_rate_text(value, text):
    assert formatting.rate(value, missing=formatting.UNKNOWN) == text


def test_to_percent_is_a_value_not_text():
    assert to_percent(0.05) == 5.0 and to_percent(1 / 3.0) == 33.333 and to_percent(None) is None


def full_result():
    now, series = current_incident()
    r = assess(now, windows(POLLUTED, CLEAN), series, THRESHOLDS, 'endpoint', 5)
    r.update(onset_iso='2026-11-23T17:40:05Z', evaluated_at=1059.0, by_status=[
        {'status': '500', 'share_of_errors': 0.6, 'onset_iso': None},
        {'status': '504', 'share_of_errors': 0.4, 'onset_iso': None}])
    return r


@pytest.mark.parametrize('where', [
    'error_percent', 'request_rate', 'baseline.error_percent', 'baseline.offset',
    'baseline.windows.error_percent', 'baseline.windows.offset_seconds', 'groups.error_percent',
    'groups.share_of_errors', 'by_status.share_of_errors', 'onset_iso', 'evaluated_at', 'onset',
    'shape'])
def test_describe_survives_a_none_in_each_number(where):
    r = full_result()
    parts = where.split('.')
    holder = r
    for part in parts[:-1]:
        holder = holder[part]
        if isinstance(holder, list):
            holder = holder[0]
    holder[parts[-1]] = None
    text = describe(r, 'svc', '30s', '60s', THRESHOLDS)
    assert text.startswith('svc: ')
    if where in ('error_percent', 'request_rate', 'baseline.windows.error_percent',
                 'groups.error_percent', 'groups.share_of_errors', 'by_status.share_of_errors'):
        assert 'unknown' in text


def test_describe_without_a_baseline_at_all():
    r = full_result()
    r['baseline'] = {'error_percent': None}
    assert '; no baseline (no traffic 60s ago)' in describe(r, 'svc', '30s', '60s', THRESHOLDS)


# The label check.
PARAMS = {'metric': 'http_requests_total', 'service': 'inference-gateway', 'service_label': 'service',
          'status_label': 'code', 'status_regex': '5..', 'selector': {'namespace': 'x', 'cluster': 'y'}}
SERIES = 'http_requests_total{service="inference-gateway"}'
PRESENT = ['__name__', 'endpoint', 'instance', 'job', 'method', 'service', 'status']


def test_label_uses_name_the_option_of_each_label():
    assert label_uses(PARAMS, 'endpoint') == [('status_label', 'code'), ('group_by', 'endpoint'),
                                              ('selector', 'cluster'), ('selector', 'namespace')]
    assert label_uses(dict(PARAMS, selector={}), '') == [('status_label', 'code')]


def test_a_missing_status_label_is_named_with_the_labels_that_exist():
    assert missing_labels(PRESENT, [('status_label', 'code'), ('group_by', 'endpoint')], SERIES) == (
        "status_label 'code' matches nothing: http_requests_total{service=\"inference-gateway\"} "
        "series carry endpoint, instance, job, method, service, status; set status_label to one of "
        "them")


def test_several_missing_labels_are_named_at_once():
    assert missing_labels(PRESENT, label_uses(dict(PARAMS, status_label='status'), 'path'), SERIES) == (
        "group_by 'path', selector key 'cluster' and selector key 'namespace' match nothing: "
        "http_requests_total{service=\"inference-gateway\"} series carry endpoint, instance, job, "
        "method, service, status; set group_by to one of them, or to '' for the overall figure "
        "only; use one of them in selector, or remove cluster from it; use one of them in "
        "selector, or remove namespace from it")


def test_labels_that_exist_or_no_series_at_all_are_not_a_label_error():
    assert missing_labels(PRESENT, [('status_label', 'status'), ('group_by', 'endpoint')],
                          SERIES) is None
    assert missing_labels([], [('status_label', 'code')], SERIES) is None  # the no-data message
    assert missing_labels(['__name__'], [('status_label', 'code')], SERIES) is None


@pytest.mark.parametrize('values, regex', [
    (['200', '404', '503'], '5..'), (['200'], '5..'),  # no 5xx over the lookback can be true
    (['2xx', '5xx'], '5..'), (['OK', 'ERROR'], 'ERROR'), ([], '5..'), (['OK'], '[')])
def test_status_values_that_are_codes_or_match_the_regex_are_fine(values, regex):
    if regex == '[':  # not a Python regex: the values still are no codes
        assert 'do not look like HTTP status codes' in status_values_warning(values, 'grpc', regex)
    else:
        assert status_values_warning(values, 'status', regex) is None


def test_status_values_that_are_not_http_codes_are_warned_about():
    assert status_values_warning(['ERROR', 'OK'], 'status', '5..') == (
        "status_label 'status' holds ERROR, OK, which do not look like HTTP status codes, and none "
        "matches status_regex '5..': the errors read as 0%; set status_label to the label holding "
        "the HTTP status, or status_regex to the values that mean an error")
    many = status_values_warning(['/%d' % i for i in range(10)], 'endpoint', '5..')
    assert "holds /0, /1, /2, /3, /4, /5, /6, /7, ..., which" in many


# The watch's verdict: recovered, not recovered, or not measured.
def test_watch_verdict_recovered_and_not_recovered():
    healthy = [(t, 0.0, 20.0, True) for t in range(0, 40, 10)]
    assert watch_verdict(healthy, 0.01, 30, 0.1)['verdict'] == 'recovered'
    failing = [(t, 4.0, 20.0, True) for t in range(0, 40, 10)]
    assert watch_verdict(failing, 0.01, 30, 0.1)['verdict'] == 'not_recovered'


def test_watch_verdict_not_measured_when_the_recent_samples_failed():
    samples = [(0, 0.0, 20.0, True), (10, 0.0, 20.0, True), (20, None, None, False),
               (30, None, None, False)]
    outcome = watch_verdict(samples, 0.01, 20, 0.1)
    assert outcome == {'recovered': False, 'stable_seconds': 0.0, 'trend': 'flat',
                       'verdict': 'not_measured'}
    assert watch_verdict([(0, None, None, False)], 0.01, 20, 0.1)['verdict'] == 'not_measured'


def test_watch_verdict_a_measured_failure_denies_recovery_whatever_failed_after():
    samples = [(0, 4.0, 20.0, True), (10, 4.0, 20.0, True), (20, None, None, False)]
    assert watch_verdict(samples, 0.01, 20, 0.1)['verdict'] == 'not_recovered'
    # Silence measured is not health either.
    samples = [(0, 0.0, 0.0, True), (10, None, None, False)]
    assert watch_verdict(samples, 0.01, 20, 0.1)['verdict'] == 'not_recovered'
    # A failure long before the last stable_for seconds is no excuse.
    samples = [(0, None, None, False), (10, 4.0, 20.0, True), (40, 4.0, 20.0, True),
               (50, 0.0, 20.0, True)]
    assert watch_verdict(samples, 0.01, 20, 0.1)['verdict'] == 'not_recovered'

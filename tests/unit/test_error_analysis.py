"""The error-rate rules, on numbers chosen by hand: verdicts, no traffic, shape and onset."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import (
    NoData, assess, build_queries, by_group, describe, ratio_series, shape_and_onset, verdict)

THRESHOLDS = {'warning': 0.01, 'critical': 0.05, 'min_request_rate': 0.1}


def sample(errors, total):
    return {'errors': errors, 'total': total}


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
                      'status_code', '5..', '5m', '1d', 'endpoint')
    assert q['errors'] == ('sum by (endpoint) (rate(http_requests_total{app="dhakacart-backend",'
                           'namespace="dhakacart",status_code=~"5.."}[5m]))')
    assert q['baseline_total'].endswith('[5m] offset 1d))')
    assert q['total_overall'] == ('sum(rate(http_requests_total{app="dhakacart-backend",'
                                  'namespace="dhakacart"}[5m]))')


def test_label_values_are_escaped():
    q = build_queries('m', [('service', '=', 'a"b\\c')], 'status', '5..', '1m', '1h', '')
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
    r = assess(now, base, (errors, totals), THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'critical'
    assert r['error_ratio'] == pytest.approx(4.05 / 20)
    assert r['error_percent'] == pytest.approx(20.25)
    assert r['baseline']['error_ratio'] == 0.0
    assert r['baseline']['verdict'] == 'ok'
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
    r = assess(now, sample({}, {}), (errors, totals), THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'critical'
    assert r['concentrated'] is False
    assert sorted(r['failing_groups']) == ['/a', '/b']
    assert r['baseline']['error_ratio'] is None
    assert r['baseline']['verdict'] == 'no_traffic'
    assert r['change_percent_points'] is None


def test_no_series_at_all_is_no_data():
    with pytest.raises(NoData):
        assess(sample({}, {}), sample({}, {}), ({}, {}), THRESHOLDS, 'endpoint', 5)


def test_no_traffic_now_is_not_zero_percent():
    totals = {1000.0 + i: 5.0 for i in range(20)}
    totals.update({1020.0 + i: 0.0 for i in range(10)})
    r = assess(sample({}, {}), sample({}, {'/a': 5.0}), ({}, totals), THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'no_traffic'
    assert r['error_ratio'] is None
    assert r['error_percent'] is None
    assert r['last_seen'] == 1019.0
    assert r['onset'] is None
    text = describe(dict(r, last_seen_iso='x'), 'svc', '5m', '1d', THRESHOLDS)
    assert 'no requests in the last 5m' in text and 'not 0% errors' in text


def test_one_error_on_an_idle_service_is_low_traffic():
    r = assess(sample({'/a': 0.02}, {'/a': 0.02}), sample({}, {}), ({}, {1.0: 0.02}),
               THRESHOLDS, 'endpoint', 5)
    assert r['verdict'] == 'low_traffic'
    assert r['error_percent'] == 100.0
    assert r['groups'][0]['verdict'] == 'low_traffic'
    assert r['top_group'] is None
    assert 'too little traffic' in describe(dict(r, onset_iso=None), 's', '5m', '1d', THRESHOLDS)


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
    r = assess(sample({'/predict': 4.0}, {'/predict': 5.0, '/embed': 15.0}), sample({}, {'/a': 1}),
               (errors, totals), THRESHOLDS, 'endpoint', 5)
    r['onset_iso'] = '2026-11-23T17:40:05Z'
    text = describe(r, 'inference-gateway', '30s', '60s', THRESHOLDS)
    assert text.startswith('inference-gateway: 20.00% of 20.00 req/s answer 5xx over 30s '
                           '(critical > 5%)')
    assert 'baseline 0.00% 60s ago' in text
    assert 'endpoint /predict at 80.0% (100% of errors)' in text
    assert 'spike since 2026-11-23T17:40:05Z' in text


def test_recovery_needs_the_whole_stable_window_under_target():
    from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import recovery
    samples = [(0, 4.0, 20.0), (10, 1.0, 20.0), (20, 0.1, 20.0), (30, 0.0, 20.0)]
    assert recovery(samples, 0.01, 10, 0.1) == {'recovered': True, 'stable_seconds': 10.0,
                                                'trend': 'decreasing'}
    assert recovery(samples, 0.01, 20, 0.1)['recovered'] is False


def test_recovery_silence_or_a_failed_query_breaks_the_stable_stretch():
    from ansible_collections.sre.runbooks.plugins.module_utils.error_analysis import recovery
    samples = [(0, 0.0, 20.0), (10, 0.0, 20.0), (20, None, None), (30, 0.0, 0.05),
               (40, 0.0, 20.0)]
    verdict = recovery(samples, 0.01, 15, 0.1)
    assert verdict == {'recovered': False, 'stable_seconds': 0.0, 'trend': 'flat'}
    assert recovery([(0, 2.0, 20.0), (10, 4.0, 20.0)], 0.01, 0, 0.1)['trend'] == 'increasing'
    assert recovery([], 0.01, 0, 0.1) == {'recovered': False, 'stable_seconds': 0.0,
                                          'trend': 'unknown'}

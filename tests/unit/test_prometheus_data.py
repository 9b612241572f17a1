"""Prometheus data shapes and time/duration parsing."""

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import format_duration, human_duration, iso, parse_duration, resolve_time
from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.client import normalise


@pytest.mark.parametrize('text,seconds', [
    ('30s', 30), ('5m', 300), ('1h30m', 5400), ('1d', 86400), ('500ms', 0.5), ('90', 90),
    ('2w', 1209600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['', '5 minutes', '5x', 'm5', '1h-5m'])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(ValueError, match='is not a duration'):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(s) for s in (30, 90, 300, 3600, 86400, 61)] == \
        ['30s', '90s', '5m', '1h', '1d', '61s']


@pytest.mark.parametrize('seconds, text', [
    (1, '1 second'), (90, '90 seconds'), (372, '6 minutes'), (7200, '2 hours'),
    (5399, '90 minutes'), (2592000, '30 days'), (172800, '2 days'), (0, '0 seconds')])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_resolve_time_forms():
    now = 1_800_000_000.0
    assert resolve_time(None, now) == now
    assert resolve_time('now', now) == now
    assert resolve_time('now-15m', now) == now - 900
    assert resolve_time('1700000000.5', now) == 1700000000.5
    assert resolve_time(12, now) == 12.0
    assert resolve_time('2026-11-23T14:23:00Z', now) == 1795443780.0
    assert resolve_time('2026-11-23T14:23:00', now) == 1795443780.0
    assert iso(1795443780.0) == '2026-11-23T14:23:00Z'
    with pytest.raises(ValueError, match='is not a time'):
        resolve_time('yesterday', now)


def test_normalise_vector_with_nan_and_inf():
    rtype, series = normalise({'resultType': 'vector', 'result': [
        {'metric': {'endpoint': '/a'}, 'value': [1.5, '0.25']},
        {'metric': {'endpoint': '/b'}, 'value': [1.5, 'NaN']},
        {'metric': {'endpoint': '/c'}, 'value': [1.5, '+Inf']},
        {'metric': {'endpoint': '/d'}, 'value': [1.5, '-Inf']}]})
    assert rtype == 'vector'
    assert [s['value'] for s in series] == [0.25, None, None, None]
    assert [s['raw'] for s in series] == ['0.25', 'NaN', '+Inf', '-Inf']
    assert series[0]['labels'] == {'endpoint': '/a'}
    assert series[0]['time'] == 1.5


def test_normalise_matrix_counts_non_finite():
    series = normalise({'resultType': 'matrix', 'result': [
        {'metric': {}, 'values': [[1, '1'], [2, 'NaN'], [3, '3']]}]})[1]
    assert series == [{'labels': {}, 'values': [[1.0, 1.0], [2.0, None], [3.0, 3.0]],
                       'nonfinite': 1}]


def test_normalise_scalar_string_and_empty():
    assert normalise({'resultType': 'scalar', 'result': [5, '2']})[1][0]['value'] == 2.0
    assert normalise({'resultType': 'string', 'result': [5, 'hi']})[1][0]['value'] == 'hi'
    assert normalise({'resultType': 'vector', 'result': []}) == ('vector', [])

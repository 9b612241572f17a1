"""Log lines to records, error filtering, clustering and the Docker log stream, on lines written by
hand in the shapes the demo services, other structured loggers and the Docker Engine produce."""

import json
import re
import struct

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.log_patterns import (
    RANK,
    DockerLogDecoder,
    analyse,
    cluster,
    guess_level,
    is_error,
    message_pattern,
    normalise_level,
    parse_line,
    parse_time,
    records_from_entries,
)

T0 = 1795443780.0  # 2026-11-23T14:23:00Z


def demo_line(level='ERROR', message='upstream model-service failed: timed out', endpoint='/predict',
              status=504, trace='66f9c3568005047e5e56740f0d5fabe1', error='TimeoutError: timed out'):
    record = {'timestamp': '2026-11-23T14:23:00.136Z', 'level': level,
              'service': 'inference-gateway', 'version': '1.2.3', 'message': message,
              'endpoint': endpoint, 'method': 'POST', 'status_code': status, 'duration_ms': 5001.2,
              'trace_id': trace}
    if error:
        record['error'] = error
    return json.dumps(record, separators=(',', ':'))


def frame(stream, payload):
    return struct.pack('>BxxxI', stream, len(payload)) + payload


# --------------------------------------------------------------------------- parsing

def test_demo_json_line_becomes_a_full_record():
    rec = parse_line(demo_line(), time=T0 + 0.5, source='gw-1', stream='stdout')
    assert rec == {
        'time': T0 + 0.5, 'time_iso': '2026-11-23T14:23:00.500Z', 'level': 'ERROR',
        'message': 'upstream model-service failed: timed out', 'endpoint': '/predict',
        'method': 'POST', 'status_code': 504, 'trace_id': '66f9c3568005047e5e56740f0d5fabe1',
        'error': 'TimeoutError: timed out', 'source': 'gw-1', 'stream': 'stdout',
        'line': demo_line()}


def test_line_time_is_used_when_the_backend_gives_none():
    assert parse_line(demo_line())['time'] == pytest.approx(T0 + 0.136)


def test_common_aliases_of_other_apps():
    line = json.dumps({'ts': 1795443780123, 'severity': 'warn', 'msg': 'slow query',
                       'path': '/api/orders?page=2', 'status': '503', 'traceId': 'abc123',
                       'err': 'pq: canceling statement due to statement timeout'})
    rec = parse_line(line)
    assert (rec['time'], rec['level'], rec['message'], rec['endpoint'], rec['status_code'],
            rec['trace_id'], rec['error']) == (
        pytest.approx(T0 + 0.123), 'WARNING', 'slow query', '/api/orders', 503, 'abc123',
        'pq: canceling statement due to statement timeout')


def test_ecs_nested_fields():
    doc = {'@timestamp': '2026-11-23T15:23:00+01:00', 'log': {'level': 'error'},
           'message': 'payment declined', 'http': {'response': {'status_code': 502}},
           'url': {'path': '/checkout'}, 'trace': {'id': 'f00d'},
           'error': {'type': 'GatewayError', 'message': 'bad gateway'}}
    rec = parse_line(json.dumps(doc))
    assert (rec['time'], rec['level'], rec['status_code'], rec['endpoint'], rec['trace_id'],
            rec['error']) == (T0, 'ERROR', 502, '/checkout', 'f00d', 'GatewayError: bad gateway')


def test_a_full_url_keeps_its_path():
    rec = parse_line(json.dumps({'level': 'info', 'msg': 'x', 'url': 'http://gw:8000/predict?x=1'}))
    assert rec['endpoint'] == '/predict'


@pytest.mark.parametrize('value, level', [
    ('ERROR', 'ERROR'), ('err', 'ERROR'), ('Warn', 'WARNING'), ('fatal', 'CRITICAL'),
    ('panic', 'CRITICAL'), ('notice', 'INFO'), ('SEVERE', 'ERROR'), (50, 'ERROR'), ('30', 'INFO'),
    (60, 'CRITICAL'), (3, 'ERROR'), (7, 'DEBUG'), ('nonsense', None), (None, None), (True, None)])
def test_level_names_and_numbers(value, level):
    assert normalise_level(value) == level


@pytest.mark.parametrize('line, level', [
    ('ERROR:root:cannot open /data/model.bin', 'ERROR'),
    ('2026-11-23 14:23:00,123 INFO retrying after error', 'INFO'),
    ('Traceback (most recent call last):', 'ERROR'),
    ('ValueError: bad input', 'ERROR'),
    ('java.lang.NullPointerException', 'ERROR'),
    ('Unhandled exception in worker', 'ERROR'),
    ('panic: runtime error: index out of range [3] with length 3', 'CRITICAL'),
    ('FATAL: password authentication failed for user "app"', 'CRITICAL'),
    ('E1123 14:23:00.123456       1 reflector.go:138] watch failed', 'ERROR'),
    ('W1123 14:23:00.123456       1 warnings.go:70] deprecated', 'WARNING'),
    ('[warn] disk 91% full', 'WARNING'),
    ('listening on :8000', None),
    ('0 errors, 3 warnings_total', None),
])
def test_plain_text_level_guess(line, level):
    assert guess_level(line) == level


def test_logfmt_line():
    rec = parse_line('ts=2026-11-23T14:23:00Z level=error msg="dial tcp 10.0.0.7:5432: '
                     'connect: connection refused" path=/predict status=502')
    assert (rec['time'], rec['level'], rec['message'], rec['endpoint'], rec['status_code']) == (
        T0, 'ERROR', 'dial tcp 10.0.0.7:5432: connect: connection refused', '/predict', 502)


def test_access_log_line_with_5xx_counts_as_error():
    rec = parse_line('10.0.0.1 - - [23/Nov/2026:14:23:00 +0000] "POST /predict?v=2 HTTP/1.1" 502 '
                     '157 "-" "curl/8.0"')
    assert (rec['level'], rec['method'], rec['endpoint'], rec['status_code']) == (
        None, 'POST', '/predict', 502)
    assert is_error(rec, RANK['ERROR'])


def test_plain_text_keeps_a_leading_timestamp():
    rec = parse_line('2026-11-23T14:23:00.250Z ERROR pool exhausted (10/10 in use)')
    assert rec['time'] == pytest.approx(T0 + 0.25)
    assert rec['level'] == 'ERROR' and rec['message'].endswith('pool exhausted (10/10 in use)')


@pytest.mark.parametrize('value, epoch', [
    ('2026-11-23T14:23:00Z', T0), ('2026-11-23T14:23:00.123456789Z', T0 + 0.123456789),
    ('2026-11-23 14:23:00,5', T0 + 0.5), ('2026-11-23T16:23:00+0200', T0),
    (1795443780, T0), (1795443780000, T0), ('1795443780000000000', T0), (1795443780.25e6, T0 + 0.25),
    ('yesterday', None), (None, None), (-5, None)])
def test_times(value, epoch):
    assert parse_time(value) == (pytest.approx(epoch) if epoch else None)


# --------------------------------------------------------------------------- tracebacks

def entries(*lines, source='app-1', stream='stderr', start=T0):
    return [(start + i * 0.001, text, source, stream) for i, text in enumerate(lines)]


def test_a_traceback_of_its_own_takes_the_exception_line_as_message():
    recs = records_from_entries(entries(
        '{"level":"INFO","message":"starting"}',
        'Traceback (most recent call last):',
        '  File "/app/main.py", line 12, in <module>',
        '    load_config("/etc/app.yaml")',
        'RuntimeError: cannot load config /etc/app.yaml: missing key db_url',
        '',
        '{"level":"INFO","message":"exiting"}'))
    assert [r['message'] for r in recs] == [
        'starting', 'RuntimeError: cannot load config /etc/app.yaml: missing key db_url', 'exiting']
    crash = recs[1]
    assert crash['level'] == 'ERROR' and crash['time'] == T0 + 0.001
    assert crash['line'].startswith('Traceback') and crash['line'].count('\n') == 3


def test_a_logged_error_keeps_its_message_and_gets_the_exception():
    recs = records_from_entries(entries(
        'ERROR:app:prediction handler failed',
        'Traceback (most recent call last):',
        '  File "/app/h.py", line 3, in handle',
        'KeyError: \'values\'',
        'INFO:app:next request'))
    assert [(r['level'], r['message'], r['error']) for r in recs] == [
        ('ERROR', 'ERROR:app:prediction handler failed', "KeyError: 'values'"),
        ('INFO', 'INFO:app:next request', None)]


def test_chained_tracebacks_end_on_the_last_exception():
    recs = records_from_entries(entries(
        'Traceback (most recent call last):', '  File "a.py", line 1, in f', 'ValueError: a', '',
        'During handling of the above exception, another exception occurred:', '',
        'Traceback (most recent call last):', '  File "a.py", line 3, in g', 'KeyError: \'b\''))
    assert len(recs) == 1 and recs[0]['message'] == "KeyError: 'b'"


def test_java_stack_frames_join_their_line_and_streams_stay_apart():
    recs = records_from_entries(
        entries('Exception in thread "main" java.lang.IllegalStateException: pool closed',
                '\tat com.app.Pool.get(Pool.java:42)', 'Caused by: java.io.IOException: reset')
        + entries('  indented stdout line', stream='stdout', start=T0 + 0.0005))
    by_stream = {r['stream']: r for r in recs}
    assert len(recs) == 2
    assert by_stream['stderr']['line'].count('\n') == 2
    assert by_stream['stdout']['message'] == 'indented stdout line'


def test_json_lines_and_distant_lines_are_never_joined():
    recs = records_from_entries(
        entries(demo_line(), '  not a frame of a JSON line')
        + [(T0 + 60, '    a frame 60 s later', 'app-1', 'stderr')])
    assert len(recs) == 3


# --------------------------------------------------------------------------- errors and clusters

def test_error_filter_levels_status_and_match():
    error = parse_line(demo_line())
    info_500 = parse_line(demo_line(level='INFO', message='POST /embed 500', status=500, error=None))
    info = parse_line(demo_line(level='INFO', message='POST /embed 200', status=200, error=None))
    unknown = parse_line('listening on :8000')
    assert [is_error(r, RANK['ERROR']) for r in (error, info_500, info, unknown)] == [
        True, True, False, False]
    assert [is_error(r, RANK['INFO']) for r in (error, info_500, info, unknown)] == [
        True, True, True, True]
    assert is_error(error, RANK['CRITICAL']) is True   # 504 still counts
    timeout = re.compile('timeout|timed out', re.I)
    assert is_error(error, RANK['ERROR'], timeout) is True
    assert is_error(info_500, RANK['ERROR'], timeout) is False
    # The error field counts for match too.
    assert is_error(parse_line(demo_line(message='handler failed', error='ConnectionRefusedError')),
                    RANK['ERROR'], re.compile('refused', re.I)) is True


@pytest.mark.parametrize('first, second', [
    ('upstream model-service timed out after 30s', 'upstream model-service timed out after 2.5s'),
    ('order 4711 failed', 'order 981 failed'),
    ('user 3f2a9c1e-1111-2222-3333-444455556666 locked', 'user 0e0e0e0e-aaaa-bbbb-cccc-ddddeeeeffff locked'),
    ('connect to 10.0.0.12:5432 refused', 'connect to 10.0.3.7:6432 refused'),
    ('trace 66f9c3568005047e5e56740f0d5fabe1 slow', 'trace db4930e9b19b1da88c4856211b3f1eb4 slow'),
    ("KeyError: 'values'", "KeyError: 'features'"),
    ('at 2026-11-23T14:23:00.136Z cache miss', 'at 2026-11-24T01:02:03Z cache miss'),
    ('pointer 0x7ffd5e8c free', 'pointer 0x55aa free'),
    ('pod inference-gateway-7d9f8c6b5-x2k4p evicted', 'pod inference-gateway-5c4b7f9d8-q9zzm evicted'),
    ('token ab12cd34ef56gh78ij90 rejected', 'token zz98yy76xx54ww32vv10 rejected'),
    ('addr [::1]:8080 down', 'addr [fe80::1ff:fe23:4567:890a]:9090 down'),
])
def test_variable_parts_collapse(first, second):
    assert message_pattern(first) == message_pattern(second)


def test_patterns_read_well_and_different_messages_stay_apart():
    assert message_pattern('upstream model-service timed out after 30s') == \
        'upstream model-service timed out after <num>s'
    assert message_pattern('GET /v1/features/user-123 took 250ms from 10.0.0.1:443') == \
        'GET /v1/features/user-<num> took <num>ms from <ip>'
    assert message_pattern('http2 v1.2.3 on k8s') == 'http2 v1.2.3 on k8s'
    assert message_pattern("can't reach 'db-1'") == "can't reach '<str>'"
    different = ['upstream model-service failed: timed out',
                 'upstream feature-store failed: timed out',
                 'upstream model-service failed: connection refused',
                 'prediction handler failed: KeyError: <str>']
    assert len({message_pattern(m) for m in different}) == 4


def make_errors():
    recs = []
    for i in range(6):
        recs.append(parse_line(demo_line(
            message='upstream model-service timed out after %ds' % (5 + i),
            endpoint='/predict' if i % 3 else '/embed', trace='%032x' % (i + 1)), time=T0 + i))
    for i in range(2):
        recs.append(parse_line(demo_line(message='order %d failed: card declined' % (1000 + i),
                                         endpoint='/checkout', status=502, error=None),
                               time=T0 + 10 + i))
    recs.append(parse_line('ERROR pool exhausted', time=T0 + 3, source='gw-2'))
    return recs


def test_clusters_count_endpoints_and_sort_by_count():
    clusters = cluster(make_errors())
    assert [(c['pattern'], c['count']) for c in clusters] == [
        ('upstream model-service timed out after <num>s', 6),
        ('order <num> failed: card declined', 2),
        ('ERROR pool exhausted', 1)]
    top = clusters[0]
    assert top['endpoints'] == {'/predict': 4, '/embed': 2}
    assert top['status_codes'] == {'504': 6}
    assert top['sources'] == {} and clusters[2]['sources'] == {'gw-2': 1}
    assert (top['first_seen'], top['last_seen']) == (T0, T0 + 5)
    assert top['first_seen_iso'] == '2026-11-23T14:23:00.000Z'
    assert top['last_seen_iso'] == '2026-11-23T14:23:05.000Z'
    assert 'timed out after 10s' in top['example']       # the latest occurrence
    assert top['example_trace_id'] == '%032x' % 6
    assert top['percent'] == pytest.approx(66.7) and top['level'] == 'ERROR'


def test_equal_counts_put_the_latest_first():
    recs = [parse_line('ERROR a %d' % i, time=T0 + i) for i in range(2)] + \
        [parse_line('ERROR b-side %d' % i, time=T0 + 10 + i) for i in range(2)]
    assert [c['pattern'] for c in cluster(recs)] == ['ERROR b-side <num>', 'ERROR a <num>']


def test_analyse_window_limit_top_and_level_counts():
    recs = make_errors() + [
        parse_line(demo_line(level='INFO', message='POST /predict 200', status=200, error=None),
                   time=T0 + 4),
        parse_line(demo_line(), time=T0 - 100),      # before the window
        parse_line(demo_line(), time=T0 + 1000)]     # after it
    result = analyse(recs, T0, T0 + 60, RANK['ERROR'], limit=3, top=2)
    assert result['matched'] == 9
    assert [r['time'] for r in result['lines']] == [T0 + 11, T0 + 10, T0 + 5]
    assert [c['count'] for c in result['top_messages']] == [6, 2]
    assert result['distinct_messages'] == 3
    assert result['level_counts'] == {'ERROR': 9, 'INFO': 1}
    only_timeouts = analyse(recs, T0, T0 + 60, RANK['ERROR'], re.compile('timed out', re.I))
    assert only_timeouts['matched'] == 6


# --------------------------------------------------------------------------- Docker log stream

STAMP = '2026-11-23T14:23:00.%03d123456Z '   # Docker's RFC 3339 with nanoseconds


def docker_body():
    return (frame(1, (STAMP % 1 + demo_line() + '\n').encode())
            + frame(2, (STAMP % 2 + 'ERROR connection to 10.0.0.7:5432 refused\n').encode())
            + frame(1, (STAMP % 3 + 'first\nsecond\n').encode()))


def test_multiplexed_frames_give_stream_time_and_text():
    decoder = DockerLogDecoder()
    got = decoder.feed(docker_body()) + decoder.close()
    assert [(round(t - T0, 5), s, x) for t, s, x in got] == [
        (0.00112, 'stdout', demo_line()),
        (0.00212, 'stderr', 'ERROR connection to 10.0.0.7:5432 refused'),
        (0.00312, 'stdout', 'first'), (0.00312, 'stdout', 'second')]
    assert decoder.multiplexed is True and decoder.leftover == 0


@pytest.mark.parametrize('size', [1, 3, 7, 8, 9, 64])
def test_frames_split_across_reads(size):
    body = docker_body()
    decoder = DockerLogDecoder()
    got = []
    for start in range(0, len(body), size):
        got.extend(decoder.feed(body[start:start + size]))
    got.extend(decoder.close())
    assert [x for _t, _s, x in got] == [demo_line(), 'ERROR connection to 10.0.0.7:5432 refused',
                                        'first', 'second']


def test_a_partial_message_continues_in_the_next_frame_of_its_stream():
    long_text = 'x' * 20000
    body = (frame(1, (STAMP % 1 + '{"level":"ERROR","message":"' + long_text[:16384]).encode())
            + frame(2, (STAMP % 2 + 'stderr line\n').encode())
            + frame(1, (STAMP % 3 + long_text[16384:] + '"}\n').encode()))
    decoder = DockerLogDecoder()
    got = decoder.feed(body) + decoder.close()
    assert [(s, len(x)) for _t, s, x in got] == [('stderr', 11), ('stdout', 20000 + 30)]
    assert json.loads(got[1][2])['message'] == long_text
    assert got[1][0] == pytest.approx(T0 + 0.001123)     # the first part's time


def test_tty_containers_answer_raw_text():
    body = (STAMP % 1 + 'ERROR one\r\n' + STAMP % 2 + 'two\r\n' + STAMP % 3 + 'unfinished').encode()
    decoder = DockerLogDecoder()
    got = decoder.feed(body[:10]) + decoder.feed(body[10:]) + decoder.close()
    assert [(s, x) for _t, s, x in got] == [('tty', 'ERROR one'), ('tty', 'two'),
                                            ('tty', 'unfinished')]
    assert decoder.multiplexed is False


def test_a_stream_cut_inside_a_frame_reports_the_missing_bytes():
    body = docker_body()
    decoder = DockerLogDecoder()
    got = decoder.feed(body[:-5]) + decoder.close()
    assert len(got) == 2 and decoder.leftover == len(frame(1, (STAMP % 3 + 'first\nsecond\n')
                                                           .encode())) - 5


def test_garbage_after_a_good_frame_is_refused():
    decoder = DockerLogDecoder()
    with pytest.raises(ValueError, match='bad frame header'):
        decoder.feed(frame(1, (STAMP % 1 + 'ok\n').encode()) + b'\x07\x00\x00\x00\x00\x00\x00\x01x')


@pytest.mark.parametrize('body', [b'\x05\x01\x02\x03garbage that is not a frame\n',
                                  b'<html><body>login</body></html>\n',
                                  b'\x01\x00\x00\x00\x00\x00\x00\x05hello'])
def test_text_without_timestamps_is_not_a_docker_log(body):
    decoder = DockerLogDecoder()
    with pytest.raises(ValueError, match='not a Docker log stream with timestamps'):
        decoder.feed(body)
        decoder.close()

# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log lines as records, error filtering and clustering of messages. Pure: no I/O.

A record is a dict with time (epoch seconds), time_iso, level (one of LEVELS or None), message,
endpoint, method, status_code, trace_id, error, source (container, stream labels or index),
stream (stdout, stderr, tty or None) and line (the raw text, shortened).

Lines come as JSON objects (the demo services, most structured loggers), logfmt
(level=error msg="..."), access-log lines ("GET /x HTTP/1.1" 502) or plain text, whose level is
guessed from its words (ERROR, Exception, Traceback, FATAL, panic). Python tracebacks and
indented stack frames are joined to the line they belong to.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

LEVELS = ('TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
RANK = dict((name, index) for index, name in enumerate(LEVELS))

_LEVEL_ALIASES = {
    'trace': 'TRACE', 'finest': 'TRACE', 'finer': 'TRACE',
    'debug': 'DEBUG', 'dbg': 'DEBUG', 'verbose': 'DEBUG', 'fine': 'DEBUG', 'config': 'DEBUG',
    'info': 'INFO', 'information': 'INFO', 'informational': 'INFO', 'notice': 'INFO',
    'inf': 'INFO',
    'warn': 'WARNING', 'warning': 'WARNING', 'wrn': 'WARNING',
    'error': 'ERROR', 'err': 'ERROR', 'eror': 'ERROR', 'severe': 'ERROR',
    'critical': 'CRITICAL', 'crit': 'CRITICAL', 'fatal': 'CRITICAL', 'panic': 'CRITICAL',
    'dpanic': 'CRITICAL', 'emerg': 'CRITICAL', 'emergency': 'CRITICAL', 'alert': 'CRITICAL',
}
# Syslog severities 0-7 and the pino/bunyan numbers 10-60.
_SYSLOG_LEVELS = ('CRITICAL', 'CRITICAL', 'CRITICAL', 'ERROR', 'WARNING', 'INFO', 'INFO', 'DEBUG')
_PINO_LEVELS = {10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL'}

FIELD_ALIASES = {
    'time': ('@timestamp', 'timestamp', 'time', 'ts', 'datetime', 'date', 'asctime', '@t'),
    'level': ('level', 'severity', 'log.level', 'levelname', 'loglevel', 'log_level', 'lvl',
              'severity_text', 'severityText', '@l'),
    'message': ('message', 'msg', '@m', 'event', 'log', 'text'),
    'endpoint': ('endpoint', 'path', 'route', 'http.route', 'url.path', 'request_path', 'uri',
                 'request_uri', 'http.target', 'request.path', 'url'),
    'method': ('method', 'http_method', 'http.method', 'http.request.method', 'request_method',
               'request.method'),
    'status_code': ('status_code', 'status', 'statusCode', 'http_status', 'http.status_code',
                    'http.response.status_code', 'response.status', 'response_status'),
    'trace_id': ('trace_id', 'traceId', 'traceID', 'trace.id', 'traceid', 'otelTraceID',
                 'dd.trace_id'),
    'error': ('error', 'err', 'exception', 'error.message', 'exc_info', 'stack_trace',
              'stacktrace', 'error.type'),
}

MAX_LINE = 2000          # characters of the raw line kept in a record
MAX_EXAMPLE = 500        # characters of a cluster's example line
MAX_PATTERN = 300

_ISO_RE = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*'
                     r'(Z|z|UTC|[+-]\d\d:?\d\d)?$')
_LEADING_TIME_RE = re.compile(r'^\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?'
                              r'(?:Z|z|[+-]\d\d:?\d\d)?)\]?\s')
_LOGFMT_RE = re.compile(r'(?:^|\s)([A-Za-z_@][\w.@-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_LOGFMT_KEYS = frozenset(('level', 'lvl', 'severity', 'msg', 'message', 'err', 'error'))
_ACCESS_RE = re.compile(r'"([A-Z]{3,7}) (\S+) HTTP/[\d.]+" (\d{3})\b')
_KLOG_RE = re.compile(r'^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s')
_KLOG_LEVELS = {'I': 'INFO', 'W': 'WARNING', 'E': 'ERROR', 'F': 'CRITICAL'}
_EXPLICIT_LEVEL_RE = re.compile(
    r'(?<![\w-])(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|PANIC|SEVERE|'
    r'EMERG)(?![\w-])')
_BRACKETED_LEVEL_RE = re.compile(
    r'(?i)[\[(<|]\s*(trace|debug|info|notice|warn|warning|error|err|crit|critical|fatal|panic|'
    r'severe)\s*[\])>|]')
_GUESSES = (
    (re.compile(r'^panic: |goroutine \d+ \[running\]|(?i:\bfatal\b)'), 'CRITICAL'),
    (re.compile(r'Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b|'
                r'(?i:\bexception\b|\berror\b|segmentation fault|core dumped|out of memory)'),
     'ERROR'),
    (re.compile(r'(?i)\bwarn(?:ing)?\b'), 'WARNING'),
)

TRACEBACK_HEAD = 'Traceback (most recent call last)'
_CHAINED = ('During handling of the above exception', 'The above exception was the direct cause')

# What varies between occurrences of one message; applied in this order.
_MASKS = (
    (re.compile(r'\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|z|[+-]\d\d:?\d\d)?'), '<ts>'),
    (re.compile(r'\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b'), '<ts>'),
    (re.compile(r'\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b'),
     '<uuid>'),
    (re.compile(r'\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b'), '<ip>'),
    (re.compile(r'(?<![\w:])\[?(?=[\w:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])'
                r'(?:\]:\d{1,5})?'), '<ip>'),
    (re.compile(r'(?<![\w\\])"(?:[^"\\\n]|\\.)*"'), '"<str>"'),
    (re.compile(r"(?<![\w\\])'(?:[^'\\\n]|\\.)*'(?!\w)"), "'<str>'"),
    (re.compile(r'(?<=-)(?=[a-z0-9]*\d)[a-z0-9]{6,10}-[a-z0-9]{5}\b'), '<id>'),  # pod names
    (re.compile(r'\b0[xX][0-9a-fA-F]+\b'), '<hex>'),
    (re.compile(r'\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b'), '<hex>'),
    (re.compile(r'\b(?=(?:[\w-]*?\d){3})(?=[\w-]*[A-Za-z])[A-Za-z0-9_-]{16,}\b'), '<id>'),
    (re.compile(r'(?<![A-Za-z0-9.])\d+(?:\.\d+)*'), '<num>'),
    (re.compile(r'\s+'), ' '),
)


# --------------------------------------------------------------------------- levels and times

def normalise_level(value: Any) -> str | None:
    """The canonical level (one of LEVELS) for a level name or number, else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _numeric_level(int(value))
    text = str(value).strip().lower()
    if text.isdigit():
        return _numeric_level(int(text))
    return _LEVEL_ALIASES.get(text)


def _numeric_level(number: int) -> str | None:
    if 0 <= number < len(_SYSLOG_LEVELS):
        return _SYSLOG_LEVELS[number]
    return _PINO_LEVELS.get(number - number % 10)


def level_rank(level: str | None) -> int:
    """Rank of a canonical level; an unknown level ranks as INFO."""
    return RANK['INFO'] if level is None else RANK.get(level, RANK['INFO'])


def guess_level(text: str) -> str | None:
    """The level a plain-text line announces or, failing that, suggests by its words."""
    klog = _KLOG_RE.match(text)
    if klog:
        return _KLOG_LEVELS[klog.group(1)]
    explicit = _EXPLICIT_LEVEL_RE.search(text) or _BRACKETED_LEVEL_RE.search(text)
    if explicit:
        return normalise_level(explicit.group(1))
    for pattern, level in _GUESSES:
        if pattern.search(text):
            return level
    return None


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 / ISO 8601 text or an epoch number in s, ms, us or ns."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _epoch_number(float(value))
    text = str(value).strip()
    match = _ISO_RE.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            epoch: float = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute),
                                            int(second), 0, 0, 0))
        except (ValueError, OverflowError):
            return None
        if fraction:
            epoch += int(fraction[:9]) / 10.0 ** len(fraction[:9])
        if zone and zone not in ('Z', 'z', 'UTC'):
            sign = 1 if zone[0] == '+' else -1
            digits = zone[1:].replace(':', '')
            epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return float(epoch)
    try:
        return _epoch_number(float(text))
    except ValueError:
        return None


def _epoch_number(number: float) -> float | None:
    if math.isnan(number) or number <= 0:
        return None
    for limit, divisor in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if number > limit:
            return number / divisor
    return number


def iso_ms(epoch: float | None) -> str | None:
    """RFC 3339 UTC text with milliseconds, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


# --------------------------------------------------------------------------- one line, one record

def get_field(doc: dict[str, Any], names: Iterable[str], join_dict: bool = False) -> Any:
    """The first scalar value found under one of the names, as a key or a dotted path.

    With join_dict, a mapping such as ECS's error {type, message} reads as 'type: message'.
    """
    for name in names:
        value = doc.get(name)
        if value is None and '.' in name:
            value = doc
            for part in name.split('.'):
                value = value.get(part) if isinstance(value, dict) else None
        if value is None or value == '':
            continue
        if isinstance(value, dict) and join_dict:
            value = ': '.join(str(value[k]) for k in ('type', 'message') if value.get(k))
        if isinstance(value, (dict, list)) or value == '':
            continue
        return value
    return None


def _status(value: Any) -> int | None:
    try:
        code = int(value)
    except (TypeError, ValueError):
        return None
    return code if 100 <= code <= 599 else None


def _endpoint(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if '://' in text:
        text = '/' + text.split('://', 1)[1].partition('/')[2]
    return text.split('?', 1)[0] or None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def record_from_fields(doc: dict[str, Any], line: str, time: float | None = None, source: str | None = None,
                       stream: str | None = None) -> dict[str, Any]:
    """A record from a structured line (JSON object, logfmt pairs or a search hit's document)."""
    message = _text(get_field(doc, FIELD_ALIASES['message']))
    error = _text(get_field(doc, FIELD_ALIASES['error'], join_dict=True))
    level = normalise_level(get_field(doc, FIELD_ALIASES['level']))
    if level is None:
        level = guess_level(' '.join(t for t in (message, error) if t) or line)
    if time is None:
        time = parse_time(get_field(doc, FIELD_ALIASES['time']))
    trace = get_field(doc, FIELD_ALIASES['trace_id'])
    method = get_field(doc, FIELD_ALIASES['method'])
    return _record(time, level, message or error or line.strip(),
                   _endpoint(get_field(doc, FIELD_ALIASES['endpoint'])),
                   None if method is None else str(method).upper(),
                   _status(get_field(doc, FIELD_ALIASES['status_code'])),
                   _text(trace), error, source, stream, line)


def _record(time: float | None, level: str | None, message: str, endpoint: str | None, method: str | None,
            status_code: int | None, trace_id: str | None, error: str | None, source: str | None, stream: str | None,
            line: str) -> dict[str, Any]:
    return {'time': time, 'time_iso': iso_ms(time), 'level': level, 'message': message,
            'endpoint': endpoint, 'method': method, 'status_code': status_code,
            'trace_id': trace_id, 'error': error, 'source': source, 'stream': stream,
            'line': line[:MAX_LINE]}


def _logfmt(text: str) -> dict[str, Any] | None:
    pairs = _LOGFMT_RE.findall(text)
    if len(pairs) < 2 or not any(key in _LOGFMT_KEYS for key, _value in pairs):
        return None
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        fields[key] = value
    return fields


def parse_line(text: str, time: float | None = None, source: str | None = None, stream: str | None = None) -> dict[str, Any]:
    """One log line as a record. `time` is the backend's timestamp (epoch), which wins."""
    stripped = text.strip()
    if stripped.startswith('{'):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return record_from_fields(doc, stripped, time, source, stream)
    fields = _logfmt(stripped) if '=' in stripped else None
    if fields is not None:
        return record_from_fields(fields, stripped, time, source, stream)
    if time is None:
        leading = _LEADING_TIME_RE.match(stripped)
        time = parse_time(leading.group(1)) if leading else None
    access = _ACCESS_RE.search(stripped)
    method, endpoint, status = (access.group(1), _endpoint(access.group(2)),
                                _status(access.group(3))) if access else (None, None, None)
    return _record(time, guess_level(stripped), stripped, endpoint, method, status, None, None,
                   source, stream, stripped)


# --------------------------------------------------------------------------- lines to records

class _Block:
    """Lines that make one event: a line and its traceback or stack frames."""

    def __init__(self, time: float | None, text: str, source: str | None, stream: str | None) -> None:
        self.time, self.source, self.stream = time, source, stream
        self.lines = [text]
        self.structured = text.lstrip().startswith('{')
        self.level = None if self.structured else guess_level(text)
        self.in_traceback = text.startswith(TRACEBACK_HEAD)
        self.owns_traceback = self.in_traceback  # the exception line becomes the message
        self.exception_line: str | None = None

    def close_to(self, time: float | None) -> bool:
        return self.time is None or time is None or abs(time - self.time) <= 2.0

    def accepts(self, text: str, time: float | None) -> bool:
        """Takes the line when it continues this block; returns whether it did."""
        if self.structured or not self.close_to(time):
            return False
        if self.in_traceback:
            if text[:1] in (' ', '\t') or text.startswith((TRACEBACK_HEAD,) + _CHAINED):
                self.lines.append(text)
            else:   # the exception line ends the traceback
                self.lines.append(text)
                self.exception_line = text
                self.in_traceback = False
            return True
        if text.startswith(_CHAINED) and self.exception_line is not None:
            self.lines.append(text)
            self.in_traceback = True
            return True
        if text.startswith(TRACEBACK_HEAD) and level_rank(self.level) >= RANK['WARNING']:
            self.lines.append(text)
            self.in_traceback = True
            return True
        if text[:1] in (' ', '\t') or text.startswith('Caused by:'):
            self.lines.append(text)
            return True
        return False

    def record(self) -> dict[str, Any]:
        rec = parse_line(self.lines[0], self.time, self.source, self.stream)
        if len(self.lines) > 1:
            rec['line'] = '\n'.join(self.lines)[:MAX_LINE]
            if self.exception_line:
                rec['error'] = self.exception_line.strip()
                if self.owns_traceback:
                    rec['message'] = rec['error']
            if any(line.startswith(TRACEBACK_HEAD) for line in self.lines):
                if level_rank(rec['level']) < RANK['ERROR']:
                    rec['level'] = 'ERROR'
        return rec


def records_from_entries(entries: Iterable[tuple[float | None, str, str | None, str | None]]) -> list[dict[str, Any]]:
    """Records from (time, text, source, stream) entries in time order (per source and stream).

    Blank lines are dropped; a traceback, indented stack frames and 'Caused by:' lines join the
    line before them from the same source and stream.
    """
    open_blocks: dict[tuple[str | None, str | None], _Block] = {}
    done: list[_Block] = []
    for time, text, source, stream in entries:
        text = text.rstrip('\r\n')
        if not text.strip():
            continue
        key = (source, stream)
        block = open_blocks.get(key)
        if block is not None and block.accepts(text, time):
            continue
        if block is not None:
            done.append(block)
        open_blocks[key] = _Block(time, text, source, stream)
    done.extend(open_blocks.values())
    return [block.record() for block in done]


# --------------------------------------------------------------------------- Docker log streams

class DockerLogDecoder:
    """Decodes the Docker Engine's answer to GET /containers/{id}/logs?timestamps=1, fed in chunks.

    A container without TTY answers a multiplexed stream: frames of an 8-byte header (stream type
    0 stdin, 1 stdout, 2 stderr; three zero bytes; payload length as big-endian uint32) and the
    payload. A TTY container answers the raw text. Each message starts with its RFC 3339 timestamp
    and a space (ValueError otherwise); a message without a trailing newline is a partial one
    (lines longer than 16 KiB) and continues in the next frame of its stream, which repeats the
    time. `multiplexed=None` tells the two apart from the
    first bytes (a frame header versus the digits of a timestamp).
    """

    STREAMS = {0: 'stdin', 1: 'stdout', 2: 'stderr'}
    MAX_FRAME = 64 * 1024 * 1024

    def __init__(self, multiplexed: bool | None = None) -> None:
        self.multiplexed = multiplexed
        self._buffer = bytearray()
        self._pending: dict[str, list[Any]] = {}      # stream -> [time, text] of a partial message
        self.leftover = 0       # bytes of an incomplete frame at close()

    def feed(self, chunk: bytes) -> list[tuple[float | None, str, str]]:
        """Decodes what the chunk completes; returns [(time, stream, text)]. ValueError on garbage."""
        self._buffer.extend(chunk)
        if self.multiplexed is None:
            if len(self._buffer) < 4:
                return []
            self.multiplexed = self._buffer[0] in self.STREAMS and not any(self._buffer[1:4])
        return self._frames() if self.multiplexed else self._raw_lines(final=False)

    def close(self) -> list[tuple[float | None, str, str]]:
        """Messages still pending at the end of the stream; sets `leftover`."""
        out: list[tuple[float | None, str, str]] = []
        if self.multiplexed is False or (self.multiplexed is None and self._buffer):
            self.multiplexed = False
            out.extend(self._raw_lines(final=True))
        else:
            self.leftover = len(self._buffer)
            self._buffer = bytearray()
        for stream, (time, text) in sorted(self._pending.items()):
            out.append((time, stream, text))
        self._pending = {}
        return out

    def _frames(self) -> list[tuple[float | None, str, str]]:
        out: list[tuple[float | None, str, str]] = []
        buf = self._buffer
        offset = 0
        while len(buf) - offset >= 8:
            kind = buf[offset]
            if kind not in self.STREAMS or any(buf[offset + 1:offset + 4]):
                raise ValueError('not a Docker log stream: bad frame header %r at byte %d'
                                 % (bytes(buf[offset:offset + 8]), offset))
            size = int.from_bytes(bytes(buf[offset + 4:offset + 8]), 'big')
            if size > self.MAX_FRAME:
                raise ValueError('not a Docker log stream: frame of %d bytes' % size)
            if len(buf) - offset - 8 < size:
                break
            payload = bytes(buf[offset + 8:offset + 8 + size])
            offset += 8 + size
            out.extend(self._message(self.STREAMS[kind], payload))
        del buf[:offset]
        return out

    def _raw_lines(self, final: bool) -> list[tuple[float | None, str, str]]:
        out: list[tuple[float | None, str, str]] = []
        data = bytes(self._buffer)
        end = len(data) if final else data.rfind(b'\n') + 1
        if end <= 0:
            return out
        self._buffer = bytearray(data[end:])
        for piece in data[:end].splitlines(True):
            out.extend(self._message('tty', piece.replace(b'\r\n', b'\n')))
        return out

    def _message(self, stream: str, payload: bytes) -> list[tuple[float | None, str, str]]:
        text = payload.decode('utf-8', errors='replace')
        stamp, sep, rest = text.partition(' ')
        time = parse_time(stamp) if sep and stamp[:1].isdigit() else None
        pending = self._pending.pop(stream, None)
        if time is None:
            if pending is None:  # every message starts with its time: this is something else
                raise ValueError('not a Docker log stream with timestamps: %r' % text[:60])
            rest = text
        if pending is not None:
            time, rest = pending[0], pending[1] + rest
        if not rest.endswith('\n'):
            self._pending[stream] = [time, rest]
            return []
        return [(time, stream, line) for line in rest[:-1].split('\n')]


# --------------------------------------------------------------------------- errors and clusters

def is_error(record: dict[str, Any], min_rank: int, match: re.Pattern[str] | None = None) -> bool:
    """At or above the minimum level, or answered 5xx; and, given a regex, matching it."""
    hit = level_rank(record['level']) >= min_rank or (record['status_code'] or 0) >= 500
    if hit and match is not None:
        hit = bool(match.search(' '.join(t for t in (record['message'], record['error']) if t)))
    return hit


def message_pattern(text: str) -> str:
    """The message with what varies between occurrences (ids, numbers, hex, UUIDs, IPs and
    ports, quoted values, durations, timestamps) replaced by placeholders."""
    for regex, placeholder in _MASKS:
        text = regex.sub(placeholder, text)
    return text.strip()[:MAX_PATTERN]


def _bump(counts: dict[str, int], key: Any) -> None:
    if key is not None:
        key = str(key)
        counts[key] = counts.get(key, 0) + 1


def cluster(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records grouped by message pattern, most frequent first (then most recent)."""
    groups: dict[str, dict[str, Any]] = {}
    for rec in sorted(records, key=lambda r: r['time'] or 0):
        pattern = message_pattern(rec['message'] or rec['error'] or rec['line'] or '')
        group = groups.get(pattern)
        if group is None:
            group = groups[pattern] = {
                'pattern': pattern, 'count': 0, 'first_seen': rec['time'], 'last_seen': None,
                'level': None, 'endpoints': {}, 'status_codes': {}, 'sources': {}}
        group['count'] += 1
        group['last_seen'] = rec['time'] if rec['time'] is not None else group['last_seen']
        if group['level'] is None or level_rank(rec['level']) > level_rank(group['level']):
            group['level'] = rec['level']
        _bump(group['endpoints'], rec['endpoint'])
        _bump(group['status_codes'], rec['status_code'])
        _bump(group['sources'], rec['source'])
        group['example'] = (rec['line'] or '')[:MAX_EXAMPLE]
        group['example_trace_id'] = rec['trace_id'] or group.get('example_trace_id')
    total = len(records) or 1
    ordered = sorted(groups.values(),
                     key=lambda g: (-g['count'], -(g['last_seen'] or 0), g['pattern']))
    return [{'pattern': g['pattern'], 'count': g['count'],
             'percent': round(100.0 * g['count'] / total, 1), 'level': g['level'],
             'first_seen': g['first_seen'], 'first_seen_iso': iso_ms(g['first_seen']),
             'last_seen': g['last_seen'], 'last_seen_iso': iso_ms(g['last_seen']),
             'endpoints': g['endpoints'], 'status_codes': g['status_codes'],
             'sources': g['sources'], 'example': g['example'],
             'example_trace_id': g['example_trace_id']} for g in ordered]


def analyse(records: Iterable[dict[str, Any]], since: float, until: float, min_rank: int, match: re.Pattern[str] | None = None,
            limit: int = 50, top: int = 10) -> dict[str, Any]:
    """The error records of the window, newest first, and their top messages.

    Returns matched (number of error records in the window), lines (at most `limit` of them),
    top_messages (at most `top` clusters), distinct_messages and level_counts (all records of the
    window by level, UNKNOWN when none could be told).
    """
    window = [r for r in records if r['time'] is None or since <= r['time'] <= until]
    errors = [r for r in window if is_error(r, min_rank, match)]
    errors.sort(key=lambda r: -(r['time'] or 0))
    clusters = cluster(errors)
    level_counts: dict[str, int] = {}
    for rec in window:
        _bump(level_counts, rec['level'] or 'UNKNOWN')
    return {'matched': len(errors), 'lines': errors[:limit], 'top_messages': clusters[:top],
            'distinct_messages': len(clusters), 'level_counts': level_counts}

"""Shared plumbing of the demo services (Python 3 standard library only).

- Metrics: thread-safe registry rendered in the Prometheus text format 0.0.4.
- Logging: one JSON object per line on stdout, flushed.
- HTTP: a ThreadingHTTPServer with a route table, per-request accounting
  (one log line and the metrics of every routed request) and a graceful
  SIGTERM/SIGINT shutdown.

Routed ("counted") endpoints appear in http_requests_total and in the latency
histogram; the probes (/health, /ready, /metrics, /) and the admin API
(/admin/..., see faults.py) are answered but never counted, so they cannot
dilute or inflate an error ratio.
"""

import json
import os
import random
import re
import secrets
import select
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "0.0.0-dev")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBE_PATHS = ("/health", "/health/db", "/ready", "/metrics", "/")
ADMIN_PREFIX = "/admin/"


def env_float(name, default):
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        return default


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- logging

_log_lock = threading.Lock()


def utc_timestamp(ts=None):
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-23T17:40:02.123Z."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def new_trace_id():
    return secrets.token_hex(16)


class JsonLogger:
    def __init__(self, service):
        self.service = service

    def log(self, level, message, **fields):
        record = {
            "timestamp": utc_timestamp(),
            "level": level,
            "service": self.service,
            "version": VERSION,
            "message": message,
        }
        # "error" (and any other field) is written only when it has a value.
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, separators=(",", ":"))
        with _log_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def info(self, message, **fields):
        self.log("INFO", message, **fields)

    def warning(self, message, **fields):
        self.log("WARNING", message, **fields)

    def error(self, message, **fields):
        self.log("ERROR", message, **fields)


# --------------------------------------------------------------------------- metrics

def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names, values, extra=None):
    pairs = ['%s="%s"' % (n, _escape(v)) for n, v in zip(names, values)]
    if extra:
        pairs.append('%s="%s"' % extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _fmt(value):
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


class Metrics:
    """Counters, one histogram family and gauges, guarded by one lock."""

    def __init__(self, service):
        self.service = service
        self._lock = threading.Lock()
        self._started = time.time()
        # name -> (help, type, labelnames, {labelvalues: value})
        self._counters = {}
        # name -> (help, labelnames, {labelvalues: [bucket counts..., sum, count]})
        self._histograms = {}
        self._gauges = {}

    def counter(self, name, help_text, labelnames):
        self._counters[name] = (help_text, tuple(labelnames), {})

    def histogram(self, name, help_text, labelnames):
        self._histograms[name] = (help_text, tuple(labelnames), {})

    def gauge(self, name, help_text, labelnames, values=None):
        self._gauges[name] = (help_text, tuple(labelnames), dict(values or {}))

    def inc(self, name, labelvalues, amount=1.0):
        series = self._counters[name][2]
        key = tuple(str(v) for v in labelvalues)
        with self._lock:
            series[key] = series.get(key, 0.0) + amount

    def set(self, name, labelvalues, value):
        series = self._gauges[name][2]
        with self._lock:
            series[tuple(str(v) for v in labelvalues)] = value

    def observe(self, name, labelvalues, value):
        series = self._histograms[name][2]
        key = tuple(str(v) for v in labelvalues)
        with self._lock:
            state = series.get(key)
            if state is None:
                state = series[key] = [0] * len(BUCKETS) + [0.0, 0]
            for i, bound in enumerate(BUCKETS):
                if value <= bound:
                    state[i] += 1
            state[-2] += value
            state[-1] += 1

    def render(self):
        out = []
        with self._lock:
            for name, (help_text, names, series) in sorted(self._counters.items()):
                out.append("# HELP %s %s" % (name, help_text))
                out.append("# TYPE %s counter" % name)
                for key, value in sorted(series.items()):
                    out.append("%s%s %s" % (name, _labels(names, key), _fmt(value)))
            for name, (help_text, names, series) in sorted(self._histograms.items()):
                out.append("# HELP %s %s" % (name, help_text))
                out.append("# TYPE %s histogram" % name)
                for key, state in sorted(series.items()):
                    for i, bound in enumerate(BUCKETS):
                        out.append("%s_bucket%s %d" % (name, _labels(names, key, ("le", _fmt(bound))), state[i]))
                    out.append("%s_bucket%s %d" % (name, _labels(names, key, ("le", "+Inf")), state[-1]))
                    out.append("%s_sum%s %s" % (name, _labels(names, key), repr(float(state[-2]))))
                    out.append("%s_count%s %d" % (name, _labels(names, key), state[-1]))
            for name, (help_text, names, series) in sorted(self._gauges.items()):
                out.append("# HELP %s %s" % (name, help_text))
                out.append("# TYPE %s gauge" % name)
                for key, value in sorted(series.items()):
                    out.append("%s%s %s" % (name, _labels(names, key), _fmt(value)))
        out.extend(self._process_metrics())
        return "\n".join(out) + "\n"

    def _process_metrics(self):
        """process_* gauges from /proc/self (for resource diagnostics)."""
        lines = [
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds %s" % repr(float(round(self._started, 3))),
        ]
        try:
            with open("/proc/self/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            cpu = (int(fields[11]) + int(fields[12])) / float(ticks)
            rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            lines += [
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
                "# TYPE process_cpu_seconds_total counter",
                "process_cpu_seconds_total %s" % repr(cpu),
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                "process_resident_memory_bytes %d" % rss,
            ]
        except (OSError, ValueError, IndexError):
            pass
        return lines


def standard_metrics(service):
    m = Metrics(service)
    m.counter("http_requests_total", "HTTP requests handled, by route and status code.",
              ("service", "endpoint", "method", "status"))
    m.histogram("http_request_duration_seconds", "HTTP request latency in seconds, by route.",
                ("service", "endpoint"))
    m.gauge("app_build_info", "Build information; always 1.", ("service", "version"),
            {(service, VERSION): 1})
    return m


# --------------------------------------------------------------------------- HTTP

class HttpError(Exception):
    """Raise from a handler to answer status with a JSON error body."""

    def __init__(self, status, message, error=None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or message
        self.extra = extra


class ClientGone(Exception):
    """Raise from a before_dispatch hook: the client hung up while its request waited; nothing is
    answered (no status, not counted, not logged) and the connection is closed."""


def peer_closed(sock):
    """True when the peer of a connected socket has hung up (Linux POLLRDHUP: its FIN arrived,
    even ahead of request bytes not read yet) or the socket is in error. False when that cannot
    be known (no socket, no POLLRDHUP)."""
    rdhup = getattr(select, "POLLRDHUP", None)
    if sock is None or rdhup is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, rdhup)  # POLLHUP, POLLERR and POLLNVAL are always reported
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Request:
    def __init__(self, handler, endpoint, params, trace_id, started=None):
        self.handler = handler
        self.started = time.monotonic() if started is None else started
        self.upstream_seconds = 0.0  # time spent waiting on dependencies
        self.method = handler.command
        self.path = handler.path
        self.endpoint = endpoint
        self.params = params
        self.trace_id = trace_id
        self.log_fields = {}
        self._body = None

    def json(self):
        if self._body is None:
            length = int(self.handler.headers.get("Content-Length") or 0)
            raw = self.handler.rfile.read(length) if length > 0 else b""
            try:
                body = json.loads(raw.decode("utf-8")) if raw else {}
            except ValueError:
                raise HttpError(400, "invalid JSON body")
            if not isinstance(body, dict):
                raise HttpError(400, "JSON body must be an object")
            self._body = body
        return self._body


def call_json(url, payload=None, timeout=2.0, trace_id=None, method=None):
    """HTTP call that returns (status, decoded JSON); raises urllib/socket errors."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    req.add_header("Content-Type", "application/json")
    if trace_id:
        req.add_header("X-Trace-Id", trace_id)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
        return resp.status, (json.loads(body) if body else {})


def describe_url_error(exc):
    """('timeout'|'error', short text) for an exception raised by call_json."""
    if isinstance(exc, urllib.error.HTTPError):
        return "error", "HTTP %d" % exc.code
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError,)) or "timed out" in str(reason):
        return "timeout", "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "error", "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "error", "connection reset"
    text = getattr(reason, "strerror", None) or str(reason)
    return "error", text.lower() if text else type(reason).__name__


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128  # the socketserver default (5) drops connections under load


class Service:
    """A small HTTP service: routes + health + metrics + JSON logs."""

    def __init__(self, name, port):
        self.name = name
        self.host = os.environ.get("HOST", "127.0.0.1")
        self.port = int(os.environ.get("PORT", port))
        self.log = JsonLogger(name)
        self.metrics = standard_metrics(name)
        self.baseline_error_rate = env_float("BASELINE_ERROR_RATE", 0.0)
        self.log_probes = env_bool("LOG_PROBES", False)
        self.slow_request_ms = env_float("SLOW_REQUEST_MS", 1000.0)
        self.routes = []  # (method, compiled regex, endpoint label, handler)
        self.ready_check = None  # optional callable -> (ok, payload)
        # optional callable(method, path, body) -> (status, payload): /admin/... (faults.py)
        self.admin = None
        # optional callable(path, connection): runs before every request but /metrics and
        # /admin/...; it may block, and raise ClientGone to drop a request whose client left
        self.before_dispatch = None

    # -- routing -----------------------------------------------------------
    def route(self, method, pattern, handler):
        """pattern: '/v1/features/{id}' -> endpoint label is the pattern itself."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self.routes.append((method, re.compile(regex), pattern, handler))

    def _match(self, method, path):
        allowed = False
        for r_method, regex, endpoint, handler in self.routes:
            m = regex.match(path)
            if m:
                if r_method == method:
                    return endpoint, m.groupdict(), handler
                allowed = endpoint
        return allowed, None, None

    # -- probes ------------------------------------------------------------
    def health_payload(self):
        return {"status": "ok", "service": self.name, "version": VERSION}

    def handle_probe(self, h, path):
        if path == "/health":
            return 200, self.health_payload()
        if path in ("/ready", "/health/db"):
            if self.ready_check is None:
                return 200, {"status": "ready", "service": self.name, "version": VERSION,
                             "dependencies": {}}
            ok, payload = self.ready_check()
            return (200 if ok else 503), payload
        if path == "/":
            return 200, {"service": self.name, "version": VERSION}
        if path == "/metrics":
            return 200, self.metrics.render()
        return None

    # -- admin API (not counted, not logged unless LOG_PROBES) -------------
    def handle_admin(self, h, method, path, trace_id, started):
        if self.admin is None:
            status, body = 404, {"error": "not found", "path": path}
        else:
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length > 0 else b""
            try:
                payload = json.loads(raw.decode("utf-8")) if raw else {}
            except ValueError:
                payload = None
            if payload is not None and not isinstance(payload, dict):
                payload = None
            if payload is None:
                status, body = 400, {"error": "the body must be a JSON object"}
            else:
                status, body = self.admin(method, path, payload)
        h.send_body(status, body, trace_id)
        if self.log_probes:
            self.log.info("%s %s %d" % (h.command, path, status), endpoint=path, method=h.command,
                          status_code=status, duration_ms=round((time.monotonic() - started) * 1000, 2),
                          trace_id=trace_id)

    # -- request accounting ------------------------------------------------
    def dispatch(self, h):
        started = time.monotonic()
        path = h.path.split("?", 1)[0]
        method = "GET" if h.command == "HEAD" else h.command
        trace_id = h.headers.get("X-Trace-Id") or new_trace_id()

        if path.startswith(ADMIN_PREFIX):
            self.handle_admin(h, method, path, trace_id, started)
            return
        if self.before_dispatch is not None and path != "/metrics":
            try:
                self.before_dispatch(path, h.connection)
            except ClientGone:
                h.close_connection = True
                return

        if path in PROBE_PATHS and method == "GET":
            status, body = self.handle_probe(h, path)
            h.send_body(status, body, trace_id)
            if self.log_probes:
                self.log.info("%s %s %d" % (h.command, path, status), endpoint=path,
                              method=h.command, status_code=status,
                              duration_ms=round((time.monotonic() - started) * 1000, 2),
                              trace_id=trace_id)
            return

        endpoint, params, handler = self._match(method, path)
        if not endpoint:
            h.send_body(404, {"error": "not found", "path": path, "trace_id": trace_id}, trace_id)
            return
        req = Request(h, endpoint, params, trace_id, started)
        level, message, error = "INFO", None, None
        if handler is None:
            status, body = 405, {"error": "method not allowed", "trace_id": trace_id}
            level, message = "WARNING", "method %s not allowed on %s" % (h.command, endpoint)
        else:
            try:
                if self.baseline_error_rate > 0 and random.random() < self.baseline_error_rate:
                    raise HttpError(500, "injected baseline error (BASELINE_ERROR_RATE=%s)"
                                    % self.baseline_error_rate, "InjectedError: baseline error")
                status, body = handler(req)
            except HttpError as exc:
                status = exc.status
                body = {"error": exc.message, "trace_id": trace_id}
                body.update(exc.extra)
                message, error = exc.message, exc.error
                level = "ERROR" if status >= 500 else "WARNING"
            except Exception as exc:  # a bug in a handler: answer 500, say what broke
                status = 500
                what = getattr(handler, "log_name", endpoint)
                error = "%s: %s" % (type(exc).__name__, exc)
                message = "%s handler failed: %s" % (what, error)
                body = {"error": "internal server error", "trace_id": trace_id}
                level = "ERROR"
        duration = time.monotonic() - started
        if level == "INFO" and duration * 1000 > self.slow_request_ms > 0:
            level = "WARNING"
            message = "slow request: %s %s %d took %dms" % (h.command, endpoint, status, duration * 1000)
        h.send_body(status, body, trace_id)
        self.metrics.inc("http_requests_total", (self.name, endpoint, method, status))
        self.metrics.observe("http_request_duration_seconds", (self.name, endpoint), duration)
        self.log.log(level, message or "%s %s %d" % (h.command, endpoint, status),
                     endpoint=endpoint, method=h.command, status_code=status,
                     duration_ms=round(duration * 1000, 2), trace_id=trace_id,
                     error=error, **req.log_fields)

    # -- server ------------------------------------------------------------
    def make_handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "%s/%s" % (service.name, VERSION)
            sys_version = ""

            def log_message(self, fmt, *args):  # silence the default stderr access log
                pass

            def send_body(self, status, body, trace_id):
                if isinstance(body, str):
                    data, ctype = body.encode(), "text/plain; version=0.0.4; charset=utf-8"
                else:
                    data, ctype = json.dumps(body).encode(), "application/json"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("X-Trace-Id", trace_id)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                service.dispatch(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        return Handler

    def serve(self, on_start=None):
        """Listen and serve until SIGTERM/SIGINT; 1 (logged) when the address cannot be bound."""
        try:
            httpd = _Server((self.host, self.port), self.make_handler())
        except OSError as exc:
            self.log.error("cannot bind %s:%d: %s" % (self.host, self.port, exc),
                           error="%s: %s" % (type(exc).__name__, exc))
            return 1
        stop = threading.Event()

        def on_signal(signum, _frame):
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                  daemon=True)
        thread.start()
        self.log.info("%s %s listening on http://%s:%d" % (self.name, VERSION, self.host, self.port))
        if on_start:
            on_start()
        while not stop.wait(1.0):
            pass
        self.log.info("%s shutting down (signal received)" % self.name)
        httpd.shutdown()
        httpd.server_close()
        return 0

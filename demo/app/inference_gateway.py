"""inference-gateway (127.0.0.1:8000): fronts model-service and feature-store.

POST /predict   -> feature-store GET /v1/features/<id> + model-service POST /v1/infer
POST /embed     -> model-service POST /v1/embed
POST /classify  -> model-service POST /v1/infer
GET  /models    -> local
/health /ready (dependencies probed, 1 s timeout) /metrics, GET|HEAD /, /admin/faults (faults.py;
its hooks before every request but /metrics and /admin/..., before a routed handler and in it).
Upstream calls time out after UPSTREAM_TIMEOUT (2 s): failure -> 502, timeout -> 504.

Protections (always on):
- request deadline REQUEST_DEADLINE_MS (1000): CPU-heavy work runs in CPU_WORKERS
  (4) slots; a request that cannot get one before it has spent that long in the
  gateway (time waiting on dependencies excluded) answers 503 "overloaded: request
  deadline exceeded after <n>ms" without spending CPU: an overload sheds its
  excess instead of collapsing.
- memory pressure: above MEMORY_SHED_RATIO (0.85) of the container memory limit,
  routed requests answer 503 "memory pressure: ...".
Switches (env, read at start):
- FEATURE_ENDPOINT_<PREDICT|EMBED|CLASSIFY|MODELS>_ENABLED (default true): false
  serves that endpoint from its local fallback path (200, "degraded": true): no
  dependency call, no feature code path.
- CIRCUIT_BREAKER_THRESHOLD / CIRCUIT_BREAKER_TIMEOUT (unset = no breaker): after
  THRESHOLD consecutive failures (error or timeout) of a dependency, the gateway
  stops calling it for TIMEOUT seconds and answers the requests that need it from
  the fallback path (200, "degraded": true); then one trial call decides.
Config errors (a dependency URL that is not a URL, a setting the build needs and the
environment lacks) and a fault that poisons the start (startup_crash) end the process with
status 1.
"""

import contextlib
import hashlib
import os
import threading
import time
import urllib.error
import urllib.parse

from common import VERSION, HttpError, Service, call_json, describe_url_error, env_bool, env_float
from faults import Faults, missing_settings

SERVICE = "inference-gateway"
MODELS = [
    {"name": "demo-classifier", "version": "2024.10", "task": "classify"},
    {"name": "demo-regressor", "version": "2024.11", "task": "predict"},
    {"name": "demo-embedder", "version": "2024.09", "task": "embed", "dimensions": 8},
]


class ConfigError(Exception):
    pass


class CircuitOpen(Exception):
    def __init__(self, dependency):
        super().__init__("circuit open for %s" % dependency)
        self.dependency = dependency


def dependency_url(name, default):
    raw = os.environ.get(name, default)
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("%s %r is not a URL" % (name, raw))
    try:
        parts.port  # pylint: disable=pointless-statement
    except ValueError as exc:
        raise ConfigError("%s %r is not a URL (%s)" % (name, raw, exc))
    return raw.strip().rstrip("/")


def positive_env(name):
    """A positive number from the env, None when unset or empty; ConfigError otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError("%s %r is not a positive number" % (name, raw))
    return value


class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open -> (timeout) -> half-open: one trial."""

    def __init__(self, dependency, threshold, timeout, log):
        self.dependency = dependency
        self.threshold = threshold
        self.timeout = timeout
        self.log = log
        self.lock = threading.Lock()
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.trial = False

    def allow(self):
        with self.lock:
            if self.state == "closed":
                return True
            if self.state == "open" and time.monotonic() - self.opened_at >= self.timeout:
                self.state = "half-open"
                self.trial = False
                self.log.info("circuit half-open for %s: trying one call" % self.dependency)
            if self.state == "half-open" and not self.trial:
                self.trial = True
                return True
            return False

    def record(self, ok):
        with self.lock:
            if ok:
                if self.state != "closed":
                    self.log.info("circuit closed for %s: the trial call succeeded" % self.dependency)
                self.state, self.failures, self.trial = "closed", 0, False
                return
            self.failures += 1
            if self.state == "half-open" or (self.state == "closed" and self.failures >= self.threshold):
                self.log.warning(
                    "circuit open for %s: %d consecutive failures; calls short-circuited for %gs"
                    % (self.dependency, self.failures, self.timeout))
                self.state, self.opened_at, self.trial = "open", time.monotonic(), False


class MemoryGauge:
    """Memory charged to this container's cgroup (else this process's RSS) and the cgroup's limit.

    Both are read again at most every 0.25 s (`docker update --memory` takes effect at once).
    No limit (or no cgroup file) = no memory pressure.
    """

    FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2, then v1
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))

    def __init__(self):
        self.files = None
        for limit_file, usage_file in self.FILES:
            if self._read(limit_file) is not None:
                self.files = (limit_file, usage_file)
                break
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.cached = (float("-inf"), 0, None)

    @staticmethod
    def _read(path):
        try:
            with open(path) as fh:
                return fh.read().strip()
        except OSError:
            return None

    def read(self):
        """(bytes in use, limit in bytes or None)."""
        now = time.monotonic()
        if now - self.cached[0] > 0.25:
            used, limit = 0, None
            if self.files:
                raw = self._read(self.files[0]) or ""
                if raw.isdigit() and int(raw) < (1 << 50):
                    limit = int(raw)
                raw = self._read(self.files[1]) or ""
                used = int(raw) if raw.isdigit() else 0
            if not used:
                try:
                    used = int((self._read("/proc/self/statm") or "0 0").split()[1]) * self.page
                except (ValueError, IndexError):
                    used = 0
            self.cached = (now, used, limit)
        return self.cached[1], self.cached[2]


class Gateway:
    def __init__(self):
        self.svc = Service(SERVICE, 8000)
        self.log = self.svc.log
        self.config_error = None
        self.deps = {}
        self.breakers = {}
        try:
            missing = missing_settings(VERSION)
            if missing:
                raise ConfigError("missing required setting %s (needed from %s)" % (", ".join(missing), VERSION))
            self.deps = {
                "model-service": dependency_url("MODEL_SERVICE_URL", "http://127.0.0.1:8080"),
                "feature-store": dependency_url("FEATURE_STORE_URL", "http://127.0.0.1:8081"),
            }
            threshold = positive_env("CIRCUIT_BREAKER_THRESHOLD")
            timeout = positive_env("CIRCUIT_BREAKER_TIMEOUT")
        except ConfigError as exc:
            self.config_error = str(exc)
            threshold = timeout = None
        if threshold:
            self.breakers = {name: CircuitBreaker(name, int(threshold), timeout or 60.0, self.log)
                             for name in self.deps}
        self.timeout = env_float("UPSTREAM_TIMEOUT", 2.0)
        self.probe_timeout = env_float("READY_PROBE_TIMEOUT", 1.0)
        self.deadline = env_float("REQUEST_DEADLINE_MS", 1000.0) / 1000.0
        self.cpu_slots = threading.BoundedSemaphore(max(int(env_float("CPU_WORKERS", 4)), 1))
        self.memory = MemoryGauge()
        self.memory_shed_ratio = env_float("MEMORY_SHED_RATIO", 0.85)
        self.faults = Faults(self, SERVICE, VERSION, self.log)
        m = self.svc.metrics
        m.counter("upstream_requests_total",
                  "Calls to dependencies, by outcome (ok|error|timeout|short_circuit).",
                  ("service", "dependency", "outcome"))
        self.svc.ready_check = self.ready
        self.svc.admin = self.faults.admin
        self.svc.before_dispatch = self.faults.before_dispatch
        self.disabled = {}
        for method, path, handler, fallback, log_name in (
            ("POST", "/predict", self.predict, self.predict_fallback, "prediction"),
            ("POST", "/embed", self.embed, self.embed_fallback, "embedding"),
            ("POST", "/classify", self.classify, self.classify_fallback, "classification"),
            ("GET", "/models", self.models, self.models, "models"),
        ):
            flag = "FEATURE_ENDPOINT_%s_ENABLED" % path.strip("/").upper()
            if not env_bool(flag, True):
                self.disabled[path] = flag
            self.svc.route(method, path, self._wrap(path, handler, fallback, log_name))

    # -- protections -----------------------------------------------------------
    def check_deadline(self, req):
        now = time.monotonic()
        if now - req.started - req.upstream_seconds > self.deadline:
            took = (now - req.started) * 1000
            raise HttpError(503, "overloaded: request deadline exceeded after %dms" % took,
                            "DeadlineExceeded: %dms spent in the gateway (deadline %dms)"
                            % ((now - req.started - req.upstream_seconds) * 1000, self.deadline * 1000))

    @contextlib.contextmanager
    def cpu_slot(self, req):
        """Hold one of the CPU_WORKERS slots for CPU-heavy work; 503 if none frees up in time."""
        left = self.deadline - (time.monotonic() - req.started - req.upstream_seconds)
        if left <= 0 or not self.cpu_slots.acquire(timeout=left):
            self.check_deadline(req)
            raise HttpError(503, "overloaded: request deadline exceeded after %dms"
                            % ((time.monotonic() - req.started) * 1000), "DeadlineExceeded: no CPU worker")
        try:
            yield
        finally:
            self.cpu_slots.release()

    def check_memory(self):
        used, limit = self.memory.read()
        if not limit:
            return
        ratio = used / float(limit)
        if ratio >= self.memory_shed_ratio:
            raise HttpError(503, "memory pressure: container memory %.0f MiB is %.0f%% of its %.0f MiB limit;"
                            " request rejected" % (used / 1048576.0, ratio * 100, limit / 1048576.0),
                            "MemoryPressure: %d of %d bytes in use" % (used, limit))

    def _wrap(self, path, handler, fallback, log_name):
        def wrapped(req):
            self.check_memory()
            self.faults.before_request(req)
            if path in self.disabled:
                result = fallback(req, "%s=false" % self.disabled[path])
            else:
                try:
                    result = handler(req)
                except CircuitOpen as exc:
                    result = fallback(req, str(exc))
            return result
        wrapped.log_name = log_name  # "prediction handler failed: ..." in the logs
        return wrapped

    # -- dependencies --------------------------------------------------------
    def upstream(self, dependency, path, req, payload=None):
        breaker = self.breakers.get(dependency)
        if breaker is not None and not breaker.allow():
            self.svc.metrics.inc("upstream_requests_total", (SERVICE, dependency, "short_circuit"))
            raise CircuitOpen(dependency)
        url = self.deps[dependency] + path
        started = time.monotonic()
        try:
            _status, body = call_json(url, payload, timeout=self.timeout, trace_id=req.trace_id)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            req.upstream_seconds += time.monotonic() - started
            kind, text = describe_url_error(exc)
            self.svc.metrics.inc("upstream_requests_total", (SERVICE, dependency, kind))
            if breaker is not None:
                breaker.record(False)
            if kind == "timeout":
                raise HttpError(504, "upstream %s timed out after %.1fs" % (dependency, self.timeout),
                                "%s: %s" % (type(exc).__name__, text), dependency=dependency)
            raise HttpError(502, "upstream %s failed: %s" % (dependency, text),
                            "%s: %s" % (type(exc).__name__, text), dependency=dependency)
        req.upstream_seconds += time.monotonic() - started
        if breaker is not None:
            breaker.record(True)
        self.svc.metrics.inc("upstream_requests_total", (SERVICE, dependency, "ok"))
        return body

    def ready(self):
        results = {}

        def probe(name, base):
            started = time.monotonic()
            entry = {"status": "down", "url": base + "/health", "latency_ms": None, "error": None}
            try:
                status, _body = call_json(base + "/health", timeout=self.probe_timeout)
                entry["status"] = "up" if status == 200 else "down"
                if status != 200:
                    entry["error"] = "HTTP %d" % status
            except (urllib.error.URLError, OSError, ValueError) as exc:
                entry["error"] = describe_url_error(exc)[1]
            entry["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            breaker = self.breakers.get(name)
            if breaker is not None:
                entry["circuit"] = breaker.state
            results[name] = entry

        threads = [threading.Thread(target=probe, args=item) for item in self.deps.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.probe_timeout + 1)
        deps = {name: results.get(name, {"status": "down", "url": base + "/health",
                                         "latency_ms": None, "error": "probe did not finish"})
                for name, base in self.deps.items()}
        ok = all(d["status"] == "up" for d in deps.values())
        return ok, {"status": "ready" if ok else "not_ready", "service": SERVICE,
                    "version": VERSION, "dependencies": deps}

    # -- handlers ------------------------------------------------------------
    def predict(self, req):
        body = req.json()
        entity = str(body.get("id", "user-1"))
        lookup = self.upstream("feature-store", "/v1/features/" + entity, req)
        features = self.faults.corrupt("predict.features", lookup.get("features"), req)
        values = features["values"]
        for feature, code in self.faults.features("/predict"):
            try:
                values = code.apply("/predict", values, req)
            except Exception as exc:  # the feature's own bug: say which feature failed
                error = "%s: %s" % (type(exc).__name__, exc)
                raise HttpError(500, "feature %s failed: %s" % (feature, error), error, feature=feature)
        result = self.upstream("model-service", "/v1/infer", req,
                               {"task": "predict", "inputs": values + list(body.get("inputs", []))})
        return 200, {"id": entity, "prediction": result.get("outputs"), "model": result.get("model"),
                     "trace_id": req.trace_id}

    def embed(self, req):
        body = req.json()
        result = self.upstream("model-service", "/v1/embed", req, {"text": body.get("text", "")})
        return 200, {"embedding": result.get("embedding"), "model": result.get("model"),
                     "trace_id": req.trace_id}

    def classify(self, req):
        body = req.json()
        result = self.upstream("model-service", "/v1/infer", req,
                               {"task": "classify", "inputs": body.get("inputs", [])})
        return 200, {"label": result.get("label"), "scores": result.get("outputs"),
                     "trace_id": req.trace_id}

    def models(self, req, reason=None):
        body = {"models": MODELS, "trace_id": req.trace_id}
        if reason:
            body.update(degraded=True, reason=reason)
            req.log_fields["degraded"] = reason
        return 200, body

    # -- fallback paths: local, no dependency, no feature code ------------------
    @staticmethod
    def _degraded(req, reason, body):
        req.log_fields["degraded"] = reason
        body.update(degraded=True, reason=reason, model="fallback", trace_id=req.trace_id)
        return 200, body

    def predict_fallback(self, req, reason):
        body = req.json()
        return self._degraded(req, reason, {"id": str(body.get("id", "user-1")), "prediction": [0.5, 0.5]})

    def embed_fallback(self, req, reason):
        digest = hashlib.sha256(str(req.json().get("text", "")).encode()).digest()
        return self._degraded(req, reason, {"embedding": [round(b / 255.0, 4) for b in digest[:8]]})

    def classify_fallback(self, req, reason):
        req.json()
        return self._degraded(req, reason, {"label": "unknown", "scores": [0.5, 0.5]})

    def run(self):
        if self.config_error:
            self.log.error("config error: %s" % self.config_error, error="ConfigError: %s" % self.config_error)
            return 1
        fatal = self.faults.startup_error()
        if fatal:
            self.log.error(fatal[0], error=fatal[1])
            return 1
        if self.faults.unknown:
            self.log.warning("ignoring unknown FAULT value(s): %s" % ",".join(self.faults.unknown))
        for path, flag in sorted(self.disabled.items()):
            self.log.warning("%s=false: %s is served by its fallback path" % (flag, path))
        if self.breakers:
            some = next(iter(self.breakers.values()))
            self.log.info("circuit breaker on: opens after %d consecutive failures of a dependency, for %gs"
                          % (some.threshold, some.timeout))
        return self.svc.serve(on_start=self.faults.start)


def main():
    return Gateway().run()


if __name__ == "__main__":
    raise SystemExit(main())

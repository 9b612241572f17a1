"""Fault knobs of the demo services: the one place where faults live.

A fault is switched on by the running version (a "bad build": 1.2.3, 1.2.4, 1.2.5), by
the env var FAULT (comma separated names, read at start), or at runtime through
the admin API of the service (never counted in the metrics, never logged):

    GET  /admin/faults                                  -> active and available faults
    POST /admin/faults {"fault": NAME, "enabled": BOOL} -> switch one fault
    POST /admin/faults {"fault": "all", "enabled": false}  -> switch every runtime fault off

Runtime faults marked `persistent` are written to FAULT_STATE_FILE (a bind
mounted file under /var/lib/sre-demo/faults/ in the demo) and switched on again
when the service starts, so they survive a restart or an OOM kill, like a
feature flag in a flag store would. Each fault is a class with hooks that the
service calls at fixed points:

    start() / stop()                when switched on (at start or at runtime) / off
    startup_error()                 at start, before the service listens: (message, error)
                                    makes it log that ERROR line and exit 1 (startup_crash)
    before_dispatch(path, conn)     before every request of the service but /metrics
                                    and /admin/... (slow model-service, hung gateway); it may
                                    raise common.ClientGone to drop a request whose client left
    before_request(req)             before a routed gateway handler (CPU cost per request)
    corrupt(name, value, req)       lets a fault spoil an intermediate value inside a
                                    gateway handler (the v1.2.3 bug), or slow the handler
                                    down at that point (the v1.2.4 one)
    apply(endpoint, value, req)     a feature code path switched on at runtime
                                    (predict-v2); see Faults.features()

Adding a knob = a subclass + one entry in REGISTRY (+ README).
"""

import hashlib
import json
import mmap
import os
import random
import threading
import time

from common import VERSION, ClientGone, env_float, peer_closed, utc_timestamp

GATEWAY = "inference-gateway"
MODEL_SERVICE = "model-service"


class Fault:
    name = "fault"
    services = (GATEWAY,)
    runtime = False      # may be switched by POST /admin/faults
    persistent = False   # remembered in FAULT_STATE_FILE across restarts
    feature = None       # name of the feature code path this fault switches on
    endpoint = None      # ... and the route it runs on

    def __init__(self, owner):
        self.owner = owner  # the Gateway (inference-gateway) or the Service

    def start(self):
        pass

    def stop(self):
        pass

    def startup_error(self):
        return None

    def before_dispatch(self, path, conn=None):
        pass

    def before_request(self, req):
        pass

    def corrupt(self, name, value, req):
        return value

    def apply(self, endpoint, value, req):
        return value


class BadVersion(Fault):
    """v1.2.3 regression: the prediction handler drops the feature vector.

    With probability BAD_VERSION_ERROR_RATE (default 0.8) the features looked up
    for /predict come back as None, and the handler's features["values"] raises a
    real TypeError ('NoneType' object is not subscriptable) -> 500.
    """

    name = "bad_version"

    def __init__(self, owner):
        super().__init__(owner)
        self.rate = env_float("BAD_VERSION_ERROR_RATE", 0.8)

    def corrupt(self, name, value, req):
        if name == "predict.features" and random.random() < self.rate:
            return None
        return value


class SlowVersion(Fault):
    """v1.2.4 regression: the prediction handler lost its feature-schema cache (an N+1 lookup).

    After the one batch lookup of the entity's features, v1.2.4 resolves the model's feature
    schema field by field on every /predict: SLOW_VERSION_LOOKUPS (default 10) sequential
    round trips of SLOW_VERSION_LOOKUP_MS (default 50, +-25%) ms each, about 450-550 ms in
    all. The answer is still right (200): no error, no log line of its own (below the 1 s
    SLOW_REQUEST_MS), only the /predict latency (http_request_duration_seconds) grows. The
    work is waiting, not CPU: the threading server holds a few more requests at a time
    (20 req/s, a quarter on /predict: ~3 in flight), far from any timeout. The fallback path
    (FEATURE_ENDPOINT_PREDICT_ENABLED=false) never reaches it.
    """

    name = "slow_version"

    def __init__(self, owner):
        super().__init__(owner)
        self.lookups = max(int(env_float("SLOW_VERSION_LOOKUPS", 10)), 0)
        self.lookup = max(env_float("SLOW_VERSION_LOOKUP_MS", 50.0), 0.0) / 1000.0

    def corrupt(self, name, value, req):
        if name == "predict.features":
            for _field in range(self.lookups):
                time.sleep(self.lookup * random.uniform(0.75, 1.25))
        return value


class PredictV2(Fault):
    """The predict-v2 code path, switched on at runtime (a feature flag rollout).

    It reads a 'segment' feature that the feature store does not have for most
    entities: with probability PREDICT_V2_ERROR_RATE (default 0.7) it raises
    ValueError, which the gateway answers 500 "feature predict-v2 failed: ...".
    FEATURE_ENDPOINT_PREDICT_ENABLED=false serves /predict from its fallback path
    and never reaches this code.
    """

    name = "predict_v2"
    runtime = True
    persistent = True
    feature = "predict-v2"
    endpoint = "/predict"

    def __init__(self, owner):
        super().__init__(owner)
        self.rate = env_float("PREDICT_V2_ERROR_RATE", 0.7)

    def apply(self, endpoint, value, req):
        if endpoint != self.endpoint:
            return value
        segment = "unknown" if random.random() < self.rate else "0.%d" % random.randint(1, 9)
        weight = float(segment)  # ValueError: could not convert string to float: 'unknown'
        return [round(v * (1.0 + weight), 4) for v in value]


_BURN_BLOCK = b"\x5a" * (1 << 20)  # hashed without the GIL: a few ms per update


class CpuSaturation(Fault):
    """Every routed gateway request spends CPU_COST_MS (default 60) ms of CPU.

    The work is hashing, which runs outside the GIL, so it really competes for the
    container's CPU quota: 20 req/s x 60 ms = 1.2 CPUs against the 1.0 CPU limit
    of the compose file. It runs in the gateway's CPU worker slots: the requests
    that wait for a slot past their deadline answer 503 "overloaded: request
    deadline exceeded after <n>ms" (the excess is shed; the rest is slow).
    Twice the CPU (GATEWAY_CPUS=2) is enough.
    """

    name = "cpu_saturation"
    runtime = True
    persistent = True

    def __init__(self, owner):
        super().__init__(owner)
        self.cost = env_float("CPU_COST_MS", 60.0) / 1000.0

    def before_request(self, req):
        digest = hashlib.sha256()
        with self.owner.cpu_slot(req):
            end = time.thread_time() + self.cost
            while time.thread_time() < end:
                digest.update(_BURN_BLOCK)


class MemoryGrowth(Fault):
    """A cache without eviction: grows MEMORY_GROWTH_MB_PER_S (default 8) MB/s.

    The memory is really written (private anonymous mmap chunks of 1 MiB), so the kernel
    OOM-kills the container when it reaches the compose mem_limit (160m); the
    gateway sheds requests with 503 "memory pressure: ..." above 85% of the limit
    before that. The growth stops at MEMORY_GROWTH_MAX_MB (default 240): a memory
    limit of 384m or more (GATEWAY_MEM_LIMIT) holds it. Switched off, the chunks
    are unmapped and the memory returns to the kernel.
    """

    name = "memory_growth"
    runtime = True
    persistent = True
    chunk = 1 << 20

    def __init__(self, owner):
        super().__init__(owner)
        self.rate = max(env_float("MEMORY_GROWTH_MB_PER_S", 8.0), 0.1)
        self.max_chunks = int(env_float("MEMORY_GROWTH_MAX_MB", 240.0))
        self.chunks = []
        self.stopped = threading.Event()
        self.thread = None

    def start(self):
        self.stopped.clear()
        self.thread = threading.Thread(target=self._grow, name="cache-growth", daemon=True)
        self.thread.start()

    def _grow(self):
        interval = 1.0 / self.rate
        fill = b"\xa5" * self.chunk
        while not self.stopped.wait(interval):
            if len(self.chunks) >= self.max_chunks:
                continue
            block = mmap.mmap(-1, self.chunk, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            block.write(fill)  # touch every page: resident (anon RSS), charged to the memory cgroup
            self.chunks.append(block)

    def stop(self):
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(2.0)
        chunks, self.chunks = self.chunks, []
        for block in chunks:
            block.close()


class SlowResponses(Fault):
    """model-service: every request (also /health, not /metrics) waits SLOW_MS (3000) ms.

    That is longer than the gateway's 2 s upstream timeout (-> 504) and its 1 s
    readiness probe (/ready -> model-service down). Not persistent: restarting
    model-service clears it (like a stuck worker pool would be).
    """

    name = "slow_responses"
    services = (MODEL_SERVICE,)
    runtime = True

    def __init__(self, owner):
        super().__init__(owner)
        self.delay = env_float("SLOW_MS", 3000.0) / 1000.0

    def before_dispatch(self, path, conn=None):
        time.sleep(self.delay)


class StartupCrash(Fault):
    """Poisoned state that a restart does not mend: the gateway exits 1 at every start.

    Switched on at runtime, it is saved to FAULT_STATE_FILE first (it is persistent); about
    0.2 s later, once the admin API has answered, the gateway logs ERROR "fatal: cannot load the
    warm cache from /var/lib/sre-demo/cache/warm-cache.bin: checksum mismatch (...); exiting" and
    exits with status 1. Every later start reads the state file, logs the same line (ending
    "refusing to start on a corrupt cache") and exits 1 before it listens: a crash loop (the
    restart policy's backoff) with no change of configuration or image and no OOM kill, until
    the state file is removed (demo/rig.sh clear); the admin API cannot switch it off then, since
    the gateway never listens.
    """

    name = "startup_crash"
    runtime = True
    persistent = True
    cache = "/var/lib/sre-demo/cache/warm-cache.bin"
    delay = 0.2  # the admin API's answer goes out first

    def __init__(self, owner):
        super().__init__(owner)
        self.timer = None

    def startup_error(self, outcome="refusing to start on a corrupt cache"):
        expected = hashlib.sha256(("warm-cache " + VERSION).encode()).hexdigest()[:12]
        found = hashlib.sha256(("warm-cache torn " + VERSION).encode()).hexdigest()[:12]
        return ("fatal: cannot load the warm cache from %s: checksum mismatch (expected sha256:%s, found"
                " sha256:%s); %s" % (self.cache, expected, found, outcome),
                "CacheCorrupted: checksum mismatch in %s" % self.cache)

    def start(self):
        self.timer = threading.Timer(self.delay, self.crash)
        self.timer.daemon = True
        self.timer.start()

    def stop(self):
        if self.timer is not None:
            self.timer.cancel()

    def crash(self):
        message, error = self.startup_error("exiting")  # a cache reload, at runtime
        self.owner.log.error(message, error=error)
        os._exit(1)  # a crash: no shutdown, no answer to the requests in flight


class Hang(Fault):
    """The gateway's workers stop answering: every request but /metrics and /admin/... waits.

    /health, /ready, / and the routed endpoints block on an event that only switching the fault
    off sets, for at most HANG_MAX_S (default 300) s, so clients and probes time out (the
    Docker health check, a Kubernetes liveness probe: the kubelet kills the container). Nothing
    is answered, counted or logged while it holds; /metrics is still scraped (the request rate
    drops to 0) and the admin API answers. A waiting request whose client hangs up is dropped
    within 0.5 s (no thread is held for a client that left); switched off, the waiting requests
    go on at once and are answered (slow). Persistent: a restarted gateway hangs again.
    """

    name = "hang"
    runtime = True
    persistent = True
    poll = 0.5

    def __init__(self, owner):
        super().__init__(owner)
        self.bound = max(env_float("HANG_MAX_S", 300.0), 0.0)
        self.released = threading.Event()

    def before_dispatch(self, path, conn=None):
        deadline = time.monotonic() + self.bound
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.released.wait(min(left, self.poll)):
                return
            if peer_closed(conn):
                raise ClientGone(path)

    def stop(self):
        self.released.set()


REGISTRY = {cls.name: cls for cls in (BadVersion, SlowVersion, PredictV2, CpuSaturation, MemoryGrowth,
                                      SlowResponses, StartupCrash, Hang)}

# Builds that carry a fault by themselves (APP_VERSION baked into the image).
BAD_VERSIONS = {
    "1.2.3": ["bad_version"],
    "1.2.4": ["slow_version"],
}
# Builds that need a setting the demo's deploys do not give: they exit at start with a config
# error (1.2.5: the crash-deploy fault, a crash loop until rolled back).
REQUIRED_SETTINGS = {
    "1.2.5": ["MODEL_REGISTRY_URL"],
}


def missing_settings(version, env=None):
    """The settings this build needs that the environment does not set."""
    env = os.environ if env is None else env
    return [name for name in REQUIRED_SETTINGS.get(version, []) if not env.get(name, "").strip()]


def active_names(version, env=None):
    env = os.environ if env is None else env
    names = list(BAD_VERSIONS.get(version, []))
    for raw in env.get("FAULT", "").split(","):
        raw = raw.strip()
        if raw and raw not in names:
            names.append(raw)
    return names


class Faults:
    """The active faults of one service, called through the hooks above."""

    def __init__(self, owner, service, version, log, env=None):
        env = os.environ if env is None else env
        self.owner = owner
        self.service = service
        self.log = log
        self.state_file = env.get("FAULT_STATE_FILE", "").strip() or None
        self.available = {n: c for n, c in REGISTRY.items() if service in c.services}
        self.unknown = []
        self._lock = threading.Lock()
        self._active = {}
        self._hooks = ()
        self._started = False
        names = active_names(version, env) if service == GATEWAY else [
            n.strip() for n in env.get("FAULT", "").split(",") if n.strip()]
        for name in names + self._load_state():
            cls = self.available.get(name)
            if cls is None:
                if name not in self.unknown:
                    self.unknown.append(name)
            elif name not in self._active:
                self._active[name] = cls(owner)
        self._hooks = tuple(self._active.values())

    # -- state file ----------------------------------------------------------
    def _load_state(self):
        if not self.state_file:
            return []
        try:
            with open(self.state_file) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            self.log.warning("cannot read the fault state file %s: %s" % (self.state_file, exc))
            return []
        names = data.get("faults", []) if isinstance(data, dict) else []
        return [n for n in names if isinstance(n, str) and n in self.available and self.available[n].persistent]

    def _save_state(self):
        if not self.state_file:
            return
        names = sorted(n for n, f in self._active.items() if f.runtime and f.persistent)
        tmp = "%s.%d.tmp" % (self.state_file, os.getpid())
        try:
            if names:
                with open(tmp, "w") as fh:
                    json.dump({"service": self.service, "faults": names, "updated": utc_timestamp()}, fh)
                os.replace(tmp, self.state_file)
            elif os.path.exists(self.state_file):
                os.unlink(self.state_file)
        except OSError as exc:
            self.log.warning("cannot write the fault state file %s: %s" % (self.state_file, exc))

    # -- switching -----------------------------------------------------------
    @property
    def names(self):
        return list(self._active)

    def start(self):
        """Once, when the service listens: start the faults that are already on."""
        with self._lock:
            self._started = True
            active = list(self._active.values())
        for fault in active:
            fault.start()

    def set(self, name, enabled):
        """Switch one runtime fault; True when something changed."""
        with self._lock:
            fault = self._active.get(name)
            if enabled == (fault is not None):
                return False
            if enabled:
                fault = self.available[name](self.owner)
                self._active[name] = fault
            else:
                del self._active[name]
            self._hooks = tuple(self._active.values())
            self._save_state()
            started = self._started
        if enabled and started:
            fault.start()
        elif not enabled:
            fault.stop()
        return True

    def admin(self, method, path, body):
        """The /admin/faults API; (status, payload)."""
        if path.rstrip("/") != "/admin/faults":
            return 404, {"error": "not found", "path": path}
        if method == "POST":
            name, enabled = body.get("fault"), body.get("enabled")
            if not isinstance(enabled, bool):
                return 400, {"error": '"enabled" must be true or false'}
            runtime = sorted(n for n, c in self.available.items() if c.runtime)
            if name == "all" and not enabled:
                changed = [n for n in list(self._active) if self._active[n].runtime and self.set(n, False)]
            elif name in runtime:
                changed = [name] if self.set(name, enabled) else []
            elif name in self.available:
                return 409, {"error": "%s is not a runtime fault (it comes with the version or FAULT)" % name}
            else:
                return 400, {"error": "unknown fault %r; runtime faults of %s: %s"
                             % (name, self.service, ", ".join(runtime))}
            return 200, dict(self.describe(), changed=changed)
        if method == "GET":
            return 200, self.describe()
        return 405, {"error": "method not allowed; use GET or POST"}

    def describe(self):
        return {"service": self.service, "active": self.names,
                "runtime": sorted(n for n, c in self.available.items() if c.runtime),
                "persistent": sorted(n for n, c in self.available.items() if c.persistent),
                "state_file": self.state_file}

    # -- hooks ---------------------------------------------------------------
    def startup_error(self):
        """(message, error) of the first active fault that keeps the service from starting, or None."""
        for fault in self._hooks:
            found = fault.startup_error()
            if found:
                return found
        return None

    def before_dispatch(self, path, conn=None):
        for fault in self._hooks:
            fault.before_dispatch(path, conn)

    def before_request(self, req):
        for fault in self._hooks:
            fault.before_request(req)

    def corrupt(self, name, value, req):
        for fault in self._hooks:
            value = fault.corrupt(name, value, req)
        return value

    def features(self, endpoint):
        """The feature code paths switched on for a route: [(feature name, fault)]."""
        return [(f.feature, f) for f in self._hooks if f.feature and f.endpoint == endpoint]

"""Fault knobs of the inference-gateway: the one place where faults live.

A fault is switched on by the running version (a "bad build") or by the env
var FAULT (comma separated names, e.g. FAULT=bad_version). Each fault is a
class with hooks the gateway calls at fixed points:

    on_start(gateway)               once, after the server listens
                                    (crash at start, CPU burner, memory growth)
    before_request(req)             before a routed handler runs; raise
                                    common.HttpError to fail the request
                                    (feature flag off -> 503 on one endpoint)
    before_upstream(dep, req)       before each dependency call
                                    (slow / failing dependency)
    corrupt(name, value, req)       lets a fault spoil an intermediate value
                                    inside a handler (the v1.2.3 bug)

Adding a knob = a subclass + one entry in REGISTRY (+ the env var in
docker-compose.yml). Only the v1.2.3 bug is implemented for now.
"""

import os
import random

from common import env_float


class Fault:
    name = "fault"

    def __init__(self, gateway):
        self.gateway = gateway

    def on_start(self):
        pass

    def before_request(self, req):
        pass

    def before_upstream(self, dependency, req):
        pass

    def corrupt(self, name, value, req):
        return value


class BadVersion(Fault):
    """v1.2.3 regression: the prediction handler drops the feature vector.

    With probability BAD_VERSION_ERROR_RATE (default 0.8) the features looked up
    for /predict come back as None, and the handler's features["values"] raises a
    real TypeError ('NoneType' object is not subscriptable) -> 500.
    """

    name = "bad_version"

    def __init__(self, gateway):
        super().__init__(gateway)
        self.rate = env_float("BAD_VERSION_ERROR_RATE", 0.8)

    def corrupt(self, name, value, req):
        if name == "predict.features" and random.random() < self.rate:
            return None
        return value


# Planned knobs (not implemented yet), with the hook each would use:
#   endpoint_disabled  FEATURE_ENDPOINT_PREDICT_ENABLED=false  before_request -> 503
#   dependency_slow    FAULT=dependency_slow, SLOW_DEPENDENCY, SLOW_MS  before_upstream
#   cpu                FAULT=cpu, CPU_THREADS                 on_start (busy threads)
#   memory_growth      FAULT=memory_growth, MEMORY_GROWTH_MB_PER_S  on_start
#   crash_at_start     FAULT=crash_at_start                   on_start -> os._exit(1)
REGISTRY = {
    BadVersion.name: BadVersion,
}

# Builds that carry a fault by themselves (APP_VERSION baked into the image).
BAD_VERSIONS = {
    "1.2.3": ["bad_version"],
}


def active_names(version, env=None):
    env = os.environ if env is None else env
    names = list(BAD_VERSIONS.get(version, []))
    for raw in env.get("FAULT", "").split(","):
        raw = raw.strip()
        if raw and raw not in names:
            names.append(raw)
    return names


class Faults:
    """The active faults, called through the hooks above."""

    def __init__(self, gateway, version, env=None):
        self.unknown = []
        self.active = []
        for name in active_names(version, env):
            cls = REGISTRY.get(name)
            if cls is None:
                self.unknown.append(name)
            else:
                self.active.append(cls(gateway))

    @property
    def names(self):
        return [f.name for f in self.active]

    def on_start(self):
        for f in self.active:
            f.on_start()

    def before_request(self, req):
        for f in self.active:
            f.before_request(req)

    def before_upstream(self, dependency, req):
        for f in self.active:
            f.before_upstream(dependency, req)

    def corrupt(self, name, value, req):
        for f in self.active:
            value = f.corrupt(name, value, req)
        return value

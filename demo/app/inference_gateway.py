"""inference-gateway (127.0.0.1:8000): fronts model-service and feature-store.

POST /predict   -> feature-store GET /v1/features/<id> + model-service POST /v1/infer
POST /embed     -> model-service POST /v1/embed
POST /classify  -> model-service POST /v1/infer
GET  /models    -> local
/health /ready (dependencies probed, 1 s timeout) /metrics, GET|HEAD /
Upstream calls time out after UPSTREAM_TIMEOUT (2 s): failure -> 502, timeout -> 504.
"""

import os
import threading
import time
import urllib.error

from common import VERSION, HttpError, Service, call_json, describe_url_error, env_float
from faults import Faults

SERVICE = "inference-gateway"
MODELS = [
    {"name": "demo-classifier", "version": "2024.10", "task": "classify"},
    {"name": "demo-regressor", "version": "2024.11", "task": "predict"},
    {"name": "demo-embedder", "version": "2024.09", "task": "embed", "dimensions": 8},
]


class Gateway:
    def __init__(self):
        self.svc = Service(SERVICE, 8000)
        self.deps = {
            "model-service": os.environ.get("MODEL_SERVICE_URL", "http://127.0.0.1:8080").rstrip("/"),
            "feature-store": os.environ.get("FEATURE_STORE_URL", "http://127.0.0.1:8081").rstrip("/"),
        }
        self.timeout = env_float("UPSTREAM_TIMEOUT", 2.0)
        self.probe_timeout = env_float("READY_PROBE_TIMEOUT", 1.0)
        self.faults = Faults(self, VERSION)
        m = self.svc.metrics
        m.counter("upstream_requests_total", "Calls to dependencies, by outcome (ok|error|timeout).",
                  ("service", "dependency", "outcome"))
        self.svc.ready_check = self.ready
        for method, path, handler, log_name in (
            ("POST", "/predict", self.predict, "prediction"),
            ("POST", "/embed", self.embed, "embedding"),
            ("POST", "/classify", self.classify, "classification"),
            ("GET", "/models", self.models, "models"),
        ):
            self.svc.route(method, path, self._with_faults(handler, log_name))

    def _with_faults(self, handler, log_name):
        def wrapped(req):
            self.faults.before_request(req)
            return handler(req)
        wrapped.log_name = log_name  # "prediction handler failed: ..." in the logs
        return wrapped

    # -- dependencies --------------------------------------------------------
    def upstream(self, dependency, path, req, payload=None):
        self.faults.before_upstream(dependency, req)
        url = self.deps[dependency] + path
        try:
            _status, body = call_json(url, payload, timeout=self.timeout, trace_id=req.trace_id)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            kind, text = describe_url_error(exc)
            self.svc.metrics.inc("upstream_requests_total", (SERVICE, dependency, kind))
            raise HttpError(504 if kind == "timeout" else 502,
                            "upstream %s failed: %s" % (dependency, text),
                            "%s: %s" % (type(exc).__name__, text), dependency=dependency)
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

    def models(self, req):
        return 200, {"models": MODELS, "trace_id": req.trace_id}

    def run(self):
        if self.faults.unknown:
            self.svc.log.warning("ignoring unknown FAULT value(s): %s" % ",".join(self.faults.unknown))
        if self.faults.names:
            self.svc.log.info("active faults: %s" % ",".join(self.faults.names))
        return self.svc.serve(on_start=self.faults.on_start)


def main():
    return Gateway().run()


if __name__ == "__main__":
    raise SystemExit(main())

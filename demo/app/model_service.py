"""model-service (127.0.0.1:8080): fake model inference and embeddings (a few ms of work).

Runtime fault (faults.py, POST /admin/faults): slow_responses, every request but
/metrics waits SLOW_MS (3000) ms first.
"""

import hashlib
import random
import time

from common import VERSION, Service
from faults import Faults

SERVICE = "model-service"
MODEL = "demo-model-2024.11"


def _work():
    time.sleep(random.uniform(0.002, 0.008))


def infer(req):
    body = req.json()
    _work()
    inputs = [float(x) for x in body.get("inputs", []) if isinstance(x, (int, float))]
    score = (sum(inputs) % 1.0) if inputs else random.random()
    outputs = [round(score, 4), round(1.0 - score, 4)]
    return 200, {"model": MODEL, "task": body.get("task", "predict"), "outputs": outputs,
                 "label": "positive" if score >= 0.5 else "negative"}


def embed(req):
    body = req.json()
    _work()
    digest = hashlib.sha256(str(body.get("text", "")).encode()).digest()
    return 200, {"model": MODEL, "embedding": [round(b / 255.0, 4) for b in digest[:8]]}


def main():
    svc = Service(SERVICE, 8080)
    svc.route("POST", "/v1/infer", infer)
    svc.route("POST", "/v1/embed", embed)
    faults = Faults(svc, SERVICE, VERSION, svc.log)
    if faults.unknown:
        svc.log.warning("ignoring unknown FAULT value(s): %s" % ",".join(faults.unknown))
    svc.admin = faults.admin
    svc.before_dispatch = faults.before_dispatch
    return svc.serve(on_start=faults.start)


if __name__ == "__main__":
    raise SystemExit(main())

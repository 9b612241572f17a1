"""loadgen: steady request rate against the inference-gateway (or, LOAD_PROFILE=orders, the orders
service).

LOAD_RPS (default 20) requests per second in total, round-robin over
POST /predict, POST /embed, POST /classify, GET /models (orders: GET /v1/orders/{id}); LOAD_WORKERS threads
(default 8), LOAD_TIMEOUT (default 2 s) per request. Never exits on errors;
a one-line JSON summary every SUMMARY_INTERVAL (10 s). SIGTERM stops it.
"""

import os
import random
import signal
import threading
import time
import urllib.error
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from common import JsonLogger, call_json, describe_url_error, env_float, new_trace_id

REQUESTS = (
    ("POST", "/predict", lambda: {"id": "user-%d" % random.randint(1, 50),
                                  "inputs": [round(random.random(), 3) for _index in range(3)]}),
    ("POST", "/embed", lambda: {"text": "sample text %d" % random.randint(1, 1000)}),
    ("POST", "/classify", lambda: {"inputs": [round(random.random(), 3) for _index in range(4)]}),
    ("GET", "/models", lambda: None),
)
PROFILES = {
    "gateway": REQUESTS,
    "orders": tuple(("GET", "/v1/orders/%d" % order, lambda: None) for order in range(1, 51)),
}


def main():
    log = JsonLogger("loadgen")
    target = os.environ.get("TARGET_URL", "http://127.0.0.1:8000").rstrip("/")
    rps = max(env_float("LOAD_RPS", 20.0), 0.1)
    workers = int(env_float("LOAD_WORKERS", 8))
    timeout = env_float("LOAD_TIMEOUT", 2.0)
    every = env_float("SUMMARY_INTERVAL", 10.0)
    requests = PROFILES[os.environ.get("LOAD_PROFILE", "gateway")]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    lock = threading.Lock()
    stats = Counter()
    in_flight = [0]

    def one(method, path, make_body):
        key = "%s %s" % (method, path)
        try:
            status, _body = call_json(target + path, make_body(), timeout=timeout,
                                      trace_id=new_trace_id(), method=method)
            outcome = "%dxx" % (status // 100)
        except urllib.error.HTTPError as exc:
            outcome = "%dxx" % (exc.code // 100)
        except Exception as exc:  # connection refused, timeout, bad JSON: count, never die
            outcome = "timeout" if describe_url_error(exc)[0] == "timeout" else "conn_error"
        with lock:
            stats[(key, outcome)] += 1
            in_flight[0] -= 1

    log.info("loadgen starting: %.1f rps against %s (%d workers, %.1fs timeout)"
             % (rps, target, workers, timeout))
    pool = ThreadPoolExecutor(max_workers=workers)
    interval = 1.0 / rps
    next_at = time.monotonic()
    next_summary = next_at + every
    window_start = time.time()
    dropped = 0
    i = 0
    while not stop.is_set():
        now = time.monotonic()
        if now < next_at:
            stop.wait(next_at - now)
            continue
        next_at += interval
        if now - next_at > 1.0:  # fell behind (e.g. suspended): do not burst
            next_at = now + interval
        method, path, make_body = requests[i % len(requests)]
        i += 1
        with lock:
            busy = in_flight[0] >= workers
            if not busy:
                in_flight[0] += 1
        if busy:
            dropped += 1
        else:
            pool.submit(one, method, path, make_body)
        if now >= next_summary:
            with lock:
                snap = dict(stats)
                stats.clear()
            elapsed = max(time.time() - window_start, 1e-6)
            window_start = time.time()
            by_endpoint = {}
            for (key, outcome), n in sorted(snap.items()):
                by_endpoint.setdefault(key, {})[outcome] = n
            total = sum(snap.values())
            failed = sum(n for (_path, o), n in snap.items() if o not in ("2xx", "3xx", "4xx"))
            log.info("load summary", target=target, interval_s=round(elapsed, 1), sent=total,
                     failed=failed, dropped=dropped, achieved_rps=round(total / elapsed, 2),
                     by_endpoint=by_endpoint)
            dropped = 0
            next_summary = now + every
    log.info("loadgen stopping (signal received)")
    pool.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

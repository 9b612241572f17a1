"""Helper logic of demo/rig.sh (Python standard library only).

Every wait is bounded and ends with a message that says what was not reached.
Exit codes: 0 ok, 1 failed / timed out, 2 usage.
"""

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PROM = os.environ.get("SRE_DEMO_PROMETHEUS_URL", "http://127.0.0.1:9090")
ALERTMANAGER = "http://127.0.0.1:9093"
GATEWAY = "inference-gateway"
SERVICES = {"inference-gateway": 8000, "model-service": 8080, "feature-store": 8081, "orders": 8082}
PROJECT = "sre-demo"
# The faults of `rig.sh inject`: how each one shows (see demo/README.md).
FAULTS_5XX = ("bad-deploy", "endpoint", "dependency", "dependency-down", "saturation", "memory", "two-causes",
              "db-idle-tx")
# The service whose errors show a fault, when it is not the gateway.
FAULT_SERVICE = {"db-idle-tx": "orders"}
FAULTS_DOWN = ("crash", "crash-deploy", "port-conflict", "startup-crash")
# Faults that show as a gateway that takes connections and answers nothing (but /metrics and /admin).
FAULTS_HUNG = ("hang",)
# Faults that show as HighResponseTime (the gateway's p99), with no 5xx.
FAULTS_LATENCY = ("slow-deploy",)
# The p99 of the request-duration histogram, as HighResponseTime reads it: (", endpoint" or "", selector, window).
P99 = "histogram_quantile(0.99, sum by (le%s) (rate(http_request_duration_seconds_bucket{%s}[%s])))"


def say(msg):
    print(msg, flush=True)


def fail(msg):
    print("ERROR: " + msg, file=sys.stderr, flush=True)
    return 1


def http_get(url, timeout=2.0):
    """(status, body text) or (None, error text); never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def query(expr, timeout=3.0):
    """Instant query -> list of (labels, float). Raises RuntimeError on API errors."""
    url = PROM + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http_get(url, timeout)
    if status != 200:
        raise RuntimeError("Prometheus %s answered %s: %s" % (PROM, status, body.strip()[:200]))
    data = json.loads(body)
    if data.get("status") != "success":
        raise RuntimeError("query failed: %s" % data.get("error"))
    return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]


def http_post_json(url, payload, timeout=3.0):
    """(status, decoded JSON or text) or (None, error text); never raises."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def query_or_none(expr):
    try:
        return query(expr)
    except (RuntimeError, ValueError) as exc:
        return exc


def error_ratio_expr(window, by="service", selector=""):
    """5xx/total by `by`; 0 (not absent) when there is traffic but no 5xx series."""
    total = "sum by (%s) (rate(http_requests_total%s[%s]))" % (
        by, "{%s}" % selector if selector else "", window)
    errors = 'sum by (%s) (rate(http_requests_total{status=~"5.."%s}[%s]))' % (
        by, "," + selector if selector else "", window)
    return "(%s or %s * 0) / %s" % (errors, total, total)


def poll(timeout, interval, check, what):
    """Call check() until it returns (True, msg); bounded by timeout seconds."""
    start = time.monotonic()
    last = "no answer yet"
    while True:
        done, last = check()
        if done:
            return True, time.monotonic() - start, last
        if time.monotonic() - start >= timeout:
            fail("timed out after %ds waiting for %s (last: %s)" % (timeout, what, last))
            return False, time.monotonic() - start, last
        time.sleep(interval)


# --------------------------------------------------------------------------- commands

def cmd_hash(args):
    """sha256 over the files of a directory (paths + contents) and extra strings."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(args.dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, args.dir).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read() + b"\0")
    for extra in args.extra:
        h.update(extra.encode() + b"\0")
    say(h.hexdigest()[:24])
    return 0


def cmd_spawn(args):
    """Start a daemon in its own session, output appended to a log; print its pid."""
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        return fail("spawn: no command")
    with open(args.log, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % proc.pid)
        os.replace(tmp, args.pidfile)
    say(str(proc.pid))
    return 0


def _listeners():
    """{port: [(pid, command)]} for TCP listeners, from `ss -Hltnp`."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=False).stdout
    found = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        port = cols[3].rsplit(":", 1)[-1]
        procs = re.findall(r'\("([^"]*)",pid=(\d+)', line)
        found.setdefault(port, []).extend((int(pid), name) for name, pid in procs)
        found.setdefault(port, [])
    return found


def _container_of(pid):
    try:
        with open("/proc/%d/cgroup" % pid) as fh:
            m = re.search(r"([0-9a-f]{64})", fh.read())
            return m.group(1) if m else None
    except OSError:
        return None


def cmd_check_ports(args):
    """Fail if a port is held by something that is not ours.

    spec: PORT=pid:N (ours if the listener is pid N) or PORT=containers (ours if
    the listener runs in one of the container ids given by --containers).
    """
    ours = set(c for c in args.containers.split(",") if c)
    listeners = _listeners()
    bad = []
    for spec in args.spec:
        port, _sep, owner = spec.partition("=")
        if port not in listeners:
            continue
        procs = listeners[port]
        for pid, name in procs or [(None, "?")]:
            if owner.startswith("pid:") and pid is not None and str(pid) == owner[4:]:
                continue
            if owner == "containers" and pid is not None and _container_of(pid) in ours:
                continue
            who = "pid %s (%s)" % (pid, name) if pid else "an unknown process"
            if pid and _container_of(pid):
                who += " in container %s" % _container_of(pid)[:12]
            bad.append("port 127.0.0.1:%s is already in use by %s, which is not part of the "
                       "sre-demo rig" % (port, who))
    for msg in bad:
        fail(msg)
    return 1 if bad else 0


def cmd_wait_http(args):
    def check():
        pending = []
        for url in args.url:
            status, body = http_get(url, 1.5)
            if status != 200:
                pending.append("%s -> %s" % (url, status if status else body))
            elif args.contains and args.contains not in body:
                pending.append("%s -> 200 without %r" % (url, args.contains))
        return not pending, "; ".join(pending)

    ok, took, _last = poll(args.timeout, 0.5, check, "HTTP 200 from " + ", ".join(args.url))
    if ok and not args.quiet:
        say("ready after %.1fs: %s" % (took, " ".join(args.url)))
    return 0 if ok else 1


def cmd_wait_targets(args):
    jobs = args.jobs.split(",")

    def check():
        res = query_or_none("up")
        if isinstance(res, Exception):
            return False, str(res)
        up = {m.get("job"): v for m, v in res}
        missing = [j for j in jobs if up.get(j) != 1.0]
        return not missing, "targets not up: " + ", ".join(
            "%s=%s" % (j, up.get(j, "absent")) for j in missing)

    ok, took, _last = poll(args.timeout, 0.5, check, "Prometheus targets up (%s)" % args.jobs)
    if ok:
        say("prometheus: all targets up after %.1fs (%s)" % (took, args.jobs))
    return 0 if ok else 1


def cmd_wait_baseline(args):
    """Gateway at the good version, up for SECONDS, scraped all along, with traffic."""
    need = args.seconds
    version = args.version.lstrip("v")
    series = 'app_build_info{service="%s",version="%s"}' % (GATEWAY, version)
    expected = max(int(need * 0.9 / args.scrape_interval) - 1, 1)

    def first(expr):
        res = query_or_none(expr)
        if isinstance(res, Exception):
            raise res
        return res[0][1] if res else None

    def check():
        try:
            if first(series) is None:
                other = query_or_none('app_build_info{service="%s"}' % GATEWAY)
                running = ",".join(m.get("version", "?") for m, _value in other) if isinstance(other, list) else ""
                return False, "gateway is not scraped at %s (currently: %s)" % (version, running or "none")
            uptime = first('time() - process_start_time_seconds{service="%s"}' % GATEWAY) or 0.0
            count = first("count_over_time(%s[%ds])" % (series, need)) or 0
            rps = first('sum(rate(http_requests_total{service="%s"}[10s]))' % GATEWAY) or 0.0
        except (RuntimeError, ValueError) as exc:
            return False, str(exc)
        msg = "v%s up %.0fs/%ds, %d/%d scrapes in the last %ds, %.1f req/s" % (
            version, uptime, need, count, expected, need, rps)
        if rps <= 0:
            return False, msg + " (no traffic: is loadgen running?)"
        return uptime >= need and count >= expected, msg

    say("waiting for a %ds baseline of inference-gateway v%s ..." % (need, version))
    ok, took, msg = poll(need + args.extra, 1.0, check, "a %ds baseline" % need)
    if ok:
        say("baseline ready after %.1fs: %s" % (took, msg))
    return 0 if ok else 1


def _deploy_info(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def cmd_wait_alert(args):
    expr = ('ALERTS{alertname="%s",alertstate="firing",service="%s"}' % (args.alertname, GATEWAY))

    def check():
        res = query_or_none(expr)
        if isinstance(res, Exception):
            return False, str(res)
        if res:
            return True, "firing"
        pending = query_or_none('ALERTS{alertname="%s",alertstate="pending",service="%s"}'
                                % (args.alertname, GATEWAY))
        ratio = query_or_none(error_ratio_expr(args.window, selector='service="%s"' % GATEWAY))
        r = ("%.1f%%" % (ratio[0][1] * 100)) if isinstance(ratio, list) and ratio else "n/a"
        state = "pending" if isinstance(pending, list) and pending else "inactive"
        return False, "%s, gateway 5xx ratio %s over %s" % (state, r, args.window)

    say("waiting up to %ds for %s (firing) on %s ..." % (args.timeout, args.alertname, GATEWAY))
    ok, took, msg = poll(args.timeout, 1.0, check, "alert %s to fire" % args.alertname)
    if not ok:
        return 1
    line = "alert %s firing for %s after %.1fs of waiting" % (args.alertname, GATEWAY, took)
    info = _deploy_info(args.deploy_file)
    if info and info.get("epoch"):
        line += "; %.1fs after the deploy of %s at %s" % (
            time.time() - info["epoch"], info.get("version"), info.get("time"))
    say(line)
    return 0


def cmd_wait_clear(args):
    expr = error_ratio_expr(args.window, selector='service="%s"' % GATEWAY)

    def check():
        res = query_or_none(expr)
        if isinstance(res, Exception):
            return False, str(res)
        if not res:
            return False, "no traffic on %s in the last %s" % (GATEWAY, args.window)
        ratio = res[0][1]
        return ratio < args.threshold, "5xx ratio %.2f%% over %s" % (ratio * 100, args.window)

    say("waiting up to %ds for the %s 5xx ratio over %s to drop below %.1f%% ..."
        % (args.timeout, GATEWAY, args.window, args.threshold * 100))
    ok, took, msg = poll(args.timeout, 1.0, check, "the error ratio to clear")
    if ok:
        line = "clear after %.1fs: %s" % (took, msg)
        info = _deploy_info(args.deploy_file)
        if info and info.get("epoch"):
            line += "; %.1fs after the deploy of %s" % (time.time() - info["epoch"], info.get("version"))
        say(line)
    return 0 if ok else 1


def cmd_wait_resolved(args):
    """The gateway's HighErrorRate neither pending nor firing in Prometheus, and resolved in
    Alertmanager: the next bad deploy is a new incident that Alertmanager pages again. (The rule
    reads 5 minutes, so it can outlast wait-clear's short window by minutes; a deploy while it still
    fires continues the old alert, which Alertmanager has paged already.)"""
    rule = 'ALERTS{alertname="%s",service="%s"}' % (args.alertname, GATEWAY)
    held = "%s/api/v2/alerts?active=true&filter=%s&filter=%s" % (
        ALERTMANAGER, urllib.parse.quote('alertname="%s"' % args.alertname),
        urllib.parse.quote('service="%s"' % GATEWAY))

    def check():
        res = query_or_none(rule)
        if isinstance(res, Exception):
            return False, str(res)
        if res:
            return False, "%s still %s in Prometheus" % (args.alertname, res[0][0].get("alertstate"))
        status, text = http_get(held)
        if status != 200:
            return False, "Alertmanager not answering: %s" % text
        if json.loads(text):
            return False, "%s still active in Alertmanager" % args.alertname
        return True, "%s resolved" % args.alertname

    say("waiting up to %ds for %s on %s to resolve ..." % (args.timeout, args.alertname, GATEWAY))
    ok, took, msg = poll(args.timeout, 1.0, check, "the alert to resolve")
    if ok:
        say("%s after %.1fs" % (msg, took))
    return 0 if ok else 1


def cmd_admin(args):
    """POST /admin/faults on a service: switch one runtime fault (bounded retries)."""
    url = "http://127.0.0.1:%d/admin/faults" % SERVICES[args.service]
    payload = {"fault": args.fault, "enabled": args.state == "on"}
    deadline = time.monotonic() + args.timeout
    while True:
        status, body = http_post_json(url, payload)
        if status == 200:
            active = ", ".join(body.get("active", [])) or "none"
            say("%s: %s %s (active: %s)" % (args.service, args.fault, args.state, active))
            return 0
        if status is not None or time.monotonic() >= deadline:
            text = body if isinstance(body, str) else json.dumps(body)
            return fail("POST %s %s -> %s: %s" % (url, json.dumps(payload), status or "no answer", text))
        time.sleep(0.5)


def docker_state(service):
    """State of the service's container (compose project sre-demo), or None."""
    ps = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project=" + PROJECT,
                         "--filter", "label=com.docker.compose.service=" + service],
                        capture_output=True, text=True, check=False)
    ids = ps.stdout.split()
    if ps.returncode != 0 or not ids:
        return None
    out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout)[0]
    state = data.get("State", {})
    return {"id": data.get("Id", ""), "status": state.get("Status"), "restarting": state.get("Restarting"),
            "oom_killed": state.get("OOMKilled"), "exit_code": state.get("ExitCode"),
            "restart_count": data.get("RestartCount", 0), "image": data.get("Config", {}).get("Image"),
            "health": (state.get("Health") or {}).get("Status")}


def _first_value(expr):
    res = query_or_none(expr)
    if isinstance(res, list) and res:
        return res[0][1]
    return None


def _percent(value):
    return "n/a" if value is None else "%.1f%%" % (value * 100)


def _ms(value):
    return "n/a" if value is None or math.isnan(value) else "%.0fms" % (value * 1000)


def latency_target():
    """HighResponseTime's target (seconds) from the rules' one source, demo/prometheus/render_rules.py."""
    sys.dont_write_bytecode = True
    prometheus = os.path.join(os.path.dirname(HERE), "prometheus")
    if prometheus not in sys.path:
        sys.path.insert(0, prometheus)
    from render_rules import DEFAULTS

    return DEFAULTS["latency_target"]


def gateway_latency(window):
    """The gateway's p99 over window: (overall or None, {endpoint: p99}, one-line text)."""
    sel = 'service="%s"' % GATEWAY
    overall = _first_value(P99 % ("", sel, window))
    per = query_or_none(P99 % (", endpoint", sel, window))
    per = {labels.get("endpoint"): v for labels, v in per} if isinstance(per, list) else {}
    return overall, per, "p99 %s over %s (%s)" % (_ms(overall), window, " ".join(
        "%s=%s" % (ep, _ms(v)) for ep, v in sorted(per.items())) or "no requests")


def say_gateway_latency(window):
    """status: the gateway's p99 overall and per endpoint, against HighResponseTime's target."""
    overall, per, _text = gateway_latency(window)
    say("== %s p99 over %s (HighResponseTime above %s)" % (GATEWAY, window, _ms(latency_target())))
    say("  %-18s %s" % ("all endpoints", _ms(overall)))
    for ep, v in sorted(per.items()):
        say("  %-18s %s" % (ep, _ms(v)))


def latency_evidence(window, version):
    """(observable, one-line evidence) for a slow deploy: HighResponseTime firing for the gateway
    and app_build_info at the slow version scraped; p99 overall and per endpoint, 5xx ratio."""
    sel = 'service="%s"' % GATEWAY
    alert = query_or_none('ALERTS{alertname="HighResponseTime",%s}' % sel)
    state = alert[0][0].get("alertstate", "?") if isinstance(alert, list) and alert else "inactive"
    built = _first_value('app_build_info{%s,version="%s"}' % (sel, version)) is not None
    errors = _first_value(error_ratio_expr(window, selector=sel))
    _overall, _per, text = gateway_latency(window)
    return state == "firing" and built, "HighResponseTime %s; version %s %s; %s; 5xx %s over %s" % (
        state, version, "running" if built else "not scraped yet", text, _percent(errors), window)


def fault_evidence(fault, window, info, slow_version):
    """(observable, one-line evidence) for an injected fault."""
    if fault in FAULTS_LATENCY:
        return latency_evidence(window, slow_version)
    sel = 'service="%s"' % FAULT_SERVICE.get(fault, GATEWAY)
    if fault in FAULTS_HUNG:
        started = time.monotonic()
        status, body = http_get("http://127.0.0.1:%d/health" % SERVICES[GATEWAY], 3.0)
        took = time.monotonic() - started
        admin, text = http_get("http://127.0.0.1:%d/admin/faults" % SERVICES[GATEWAY], 2.0)
        try:
            active = json.loads(text).get("active", []) if admin == 200 else []
        except (ValueError, AttributeError):
            active = []
        hung = status is None and "timed out" in body
        msg = "/health %s after %.1fs; /admin/faults %s (active: %s)" % (
            "timed out" if hung else status or body[:60], took, admin or text[:60], ", ".join(active) or "none")
        return hung and "hang" in active, msg
    if fault in FAULTS_DOWN:
        status, body = http_get("http://127.0.0.1:%d/health" % SERVICES[GATEWAY], 1.5)
        state = docker_state(GATEWAY) or {}
        restarts = state.get("restart_count", 0)
        same = state.get("id") == info.get("container")
        more = restarts > (info.get("restart_count", 0) if same else 0)
        down = status != 200
        looping = bool(state.get("restarting")) or state.get("status") in ("exited", "dead") or more
        msg = "/health %s; container %s%s, exit code %s, %d restarts" % (
            status or "DOWN (%s)" % body[:60], state.get("status", "missing"),
            " (restarting)" if state.get("restarting") else "", state.get("exit_code"), restarts)
        return down and looping, msg

    firing = query_or_none('ALERTS{alertname="HighErrorRate",alertstate="firing",%s}' % sel)
    firing = isinstance(firing, list) and bool(firing)
    overall = _first_value(error_ratio_expr(window, selector=sel))
    endpoints = query_or_none(error_ratio_expr(window, by="endpoint", selector=sel))
    per = {}
    if isinstance(endpoints, list):
        per = {labels.get("endpoint"): v for labels, v in endpoints}
    codes = query_or_none('sum by (status) (rate(http_requests_total{%s,status=~"5.."}[%s]))' % (sel, window))
    codes = {labels.get("status"): v for labels, v in codes} if isinstance(codes, list) else {}
    parts = ["HighErrorRate %s" % ("firing" if firing else "not firing"),
             "5xx %s over %s" % (_percent(overall), window),
             " ".join("%s=%s" % (ep, _percent(v)) for ep, v in sorted(per.items())),
             "codes " + (" ".join("%s=%.1f/s" % (c, v) for c, v in sorted(codes.items()) if v > 0) or "none")]
    ok = firing
    if fault in ("bad-deploy", "two-causes"):
        ok = ok and _first_value('app_build_info{%s,version="1.2.3"}' % sel) is not None
        if fault == "two-causes":
            ok = ok and codes.get("500", 0) > 0 and codes.get("504", 0) > 0
    elif fault == "endpoint":
        ok = ok and per.get("/predict", 0) >= 0.3
    elif fault in ("dependency", "dependency-down"):
        code = "504" if fault == "dependency" else "502"
        ok = ok and codes.get(code, 0) > 0
        status, body = http_get("http://127.0.0.1:%d/ready" % SERVICES[GATEWAY], 3.0)
        try:
            dep = json.loads(body)["dependencies"]["model-service"]
            parts.append("/ready %s: model-service %s (%s, %sms)" % (status, dep.get("status"), dep.get("error"),
                                                                     dep.get("latency_ms")))
        except (ValueError, KeyError, TypeError):
            parts.append("/ready %s" % status)
    elif fault == "db-idle-tx":
        ok = ok and codes.get("504", 0) + codes.get("503", 0) > 0
        status, _body = http_get("http://127.0.0.1:%d/health/db" % SERVICES["orders"], 3.0)
        parts.append("orders /health/db %s" % status)
    elif fault == "saturation":
        cpu = _first_value('rate(process_cpu_seconds_total{%s}[10s])' % sel)
        ok = ok and codes.get("503", 0) > 0 and (cpu or 0) >= 0.9
        parts.append("gateway CPU %s of its 1.0-CPU limit over 10s" % _percent(cpu))
    elif fault == "memory":
        state = docker_state(GATEWAY) or {}
        restarts = state.get("restart_count", 0) - (info.get("restart_count", 0)
                                                    if state.get("id") == info.get("container") else 0)
        ok = ok and codes.get("503", 0) > 0 and (restarts > 0 or bool(state.get("oom_killed")))
        peak = _first_value('max_over_time(process_resident_memory_bytes{%s}[%s])' % (sel, window))
        parts.append("OOMKilled=%s, %d restarts since inject, peak RSS %s MiB" % (
            state.get("oom_killed"), restarts, "n/a" if peak is None else "%.0f" % (peak / 1048576.0)))
    return ok, "; ".join(p for p in parts if p)


def cmd_wait_fault(args):
    info = _deploy_info(args.fault_file) or {}
    if info.get("fault") != args.fault:
        return fail("fault %s is not injected (%s); run demo/rig.sh inject %s first" % (
            args.fault, "active: %s" % info["fault"] if info.get("fault") else "no fault is active", args.fault))
    slow_version = args.slow_version.lstrip("v")
    if args.fault in FAULTS_LATENCY:
        what = "HighResponseTime of %s firing at %s" % (GATEWAY, slow_version)
    elif args.fault in FAULTS_5XX:
        what = "HighErrorRate of %s firing with the evidence of %s" % (FAULT_SERVICE.get(args.fault, GATEWAY), args.fault)
    elif args.fault in FAULTS_HUNG:
        what = "inference-gateway /health timing out while its admin API answers"
    else:
        what = "inference-gateway /health failing and its container restarting or exited"

    def check():
        return fault_evidence(args.fault, args.window, info, slow_version)

    say("waiting up to %ds for fault %s to be observable: %s ..." % (args.timeout, args.fault, what))
    ok, took, msg = poll(args.timeout, 1.0, check, "fault %s to be observable" % args.fault)
    if not ok:
        return 1
    say("fault %s observable after %.1fs of waiting, %.1fs after the inject at %s: %s" % (
        args.fault, took, time.time() - info.get("epoch", time.time()), info.get("time"), msg))
    return 0


def cmd_query(args):
    try:
        res = query(args.expr)
    except (RuntimeError, ValueError) as exc:
        return fail(str(exc))
    for labels, value in res:
        name = labels.pop("__name__", "")
        say("%s%s %s" % (name, json.dumps(labels, sort_keys=True), value))
    return 0


def cmd_status(args):
    say("== containers (compose project sre-demo)")
    fmt = '{{.Label "com.docker.compose.service"}}\t{{.Image}}\t{{.Status}}\t{{.Names}}'
    ps = subprocess.run(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=sre-demo",
                         "--format", fmt], capture_output=True, text=True, check=False)
    if ps.returncode != 0:
        say("  docker is not answering: %s" % ps.stderr.strip()[:200])
    else:
        rows = sorted(line.split("\t") for line in ps.stdout.splitlines() if line.strip())
        for row in rows or [["(none)", "", "", ""]]:
            say("  %-18s %-36s %-28s %s" % tuple(row + [""] * (4 - len(row))))

    say("== services (/health)")
    for name, port in SERVICES.items():
        status, body = http_get("http://127.0.0.1:%d/health" % port, 1.0)
        version = ""
        if status == 200:
            try:
                version = "version " + json.loads(body).get("version", "?")
            except ValueError:
                pass
        say("  %-18s 127.0.0.1:%d  %s %s" % (name, port, status or ("DOWN (%s)" % body), version))

    say("== prometheus (%s)" % PROM)
    status, body = http_get(PROM + "/api/v1/targets?state=active", 2.0)
    if status != 200:
        say("  not answering: %s" % (status or body))
        say_gateway_latency(args.window)
        return 0
    for t in sorted(json.loads(body)["data"]["activeTargets"], key=lambda t: t["labels"].get("job", "")):
        say("  target %-18s %-16s %-5s %s" % (
            t["labels"].get("job"), t["labels"].get("instance"), t.get("health"),
            t.get("lastError") or ""))
    ratio = query_or_none(error_ratio_expr(args.window))
    say("== 5xx ratio per service over %s" % args.window)
    if isinstance(ratio, list):
        for labels, v in sorted(ratio, key=lambda x: x[0].get("service", "")):
            say("  %-18s %6.2f%%" % (labels.get("service"), v * 100))
    ep = query_or_none(error_ratio_expr(args.window, by="service,endpoint",
                                        selector='service="%s"' % GATEWAY))
    if isinstance(ep, list) and ep:
        say("== %s 5xx ratio per endpoint over %s" % (GATEWAY, args.window))
        for labels, v in sorted(ep, key=lambda x: x[0].get("endpoint", "")):
            say("  %-18s %6.2f%%" % (labels.get("endpoint"), v * 100))
    info = _deploy_info(args.deploy_file) if args.deploy_file else None
    if info:
        say("== last deploy: %s %s at %s (previous %s)" % (
            info.get("service"), info.get("version"), info.get("time"), info.get("previous")))
    fault = _deploy_info(args.fault_file) if args.fault_file else None
    say("== faults")
    say("  injected: %s" % ("%s at %s" % (fault.get("fault"), fault.get("time")) if fault else "none"))
    for name in ("inference-gateway", "model-service"):
        status, body = http_get("http://127.0.0.1:%d/admin/faults" % SERVICES[name], 1.0)
        try:
            active = ", ".join(json.loads(body).get("active", [])) or "none"
        except (ValueError, AttributeError):
            active = "n/a (%s)" % (status or body[:60])
        say("  %-18s runtime faults: %s" % (name, active))
    alerts = query_or_none("ALERTS")
    say("== alerts")
    if isinstance(alerts, list) and alerts:
        for labels, _value in alerts:
            say("  %s{service=%s,severity=%s} %s" % (labels.get("alertname"), labels.get("service"),
                                                     labels.get("severity"), labels.get("alertstate")))
    else:
        say("  none")
    say_gateway_latency(args.window)
    return 0


def cmd_wait_page(args):
    """Prints the dedup key of the page Alertmanager opened for the gateway at the API stand-in,
    as an on-call engineer reads it off the page (the rulebook passes it by itself); progress on
    stderr, the key alone on stdout."""
    def check():
        status, text = http_get(args.standin + "/state")
        if status != 200:
            return False, "stand-in not answering: %s" % text
        for incident in json.loads(text)["pagerduty_incidents"]:
            if incident["status"] == "triggered" and GATEWAY in incident["title"]:
                check.key = incident["incident_key"]
                return True, incident["title"]
        return False, "no triggered page for %s yet" % GATEWAY

    print("waiting up to %ds for Alertmanager's page of %s ..." % (args.timeout, GATEWAY), file=sys.stderr)
    ok, _took, msg = poll(args.timeout, 0.5, check, "the page")
    if not ok:
        return 1
    print("page open: %s" % msg, file=sys.stderr)
    print(check.key, flush=True)
    return 0


def cmd_told(args):
    """What the run told Slack, PagerDuty and the status page, in order (the stand-in's journal)."""
    status, text = http_get(args.standin + "/journal")
    if status != 200:
        return fail("API stand-in at %s: %s" % (args.standin, text))
    print("== told (API stand-ins' journal)")
    for entry in json.loads(text):
        body, path = entry.get("body") or {}, entry["path"].split("?")[0]
        if entry["method"] == "GET":
            continue
        if path.endswith("chat.postMessage"):
            lines = body.get("text", "").split("\n")
            said = [lines[0]] + [line for line in lines[1:] if line.startswith(("Action:", "Error Rate:", "Reason:"))]
            what = "%s%s" % (" | ".join(said), " (in thread)" if body.get("thread_ts") else "")
        elif path.endswith("reactions.add"):
            what = ":%s: on the first message" % body.get("name")
        elif entry["api"] == "pagerduty-events":
            what = "change: %s" % (body.get("payload") or {}).get("summary") if "change" in path else \
                "%s %s" % (body.get("event_action"), (body.get("payload") or {}).get("summary", ""))
        elif entry["api"] == "statuspage":
            incident = body.get("incident") or {}
            what = "%s: %s" % (incident.get("status"), incident.get("body", ""))
        else:
            what = "%s %s" % (entry["method"], path)
        print("  %s %-16s %s" % (entry["time_iso"][11:19], entry["api"], what[:140]))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="righelper.py")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("hash")
    p.add_argument("dir")
    p.add_argument("extra", nargs="*")
    p.set_defaults(func=cmd_hash)

    p = sub.add_parser("spawn")
    p.add_argument("--log", required=True)
    p.add_argument("--pidfile")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_spawn)

    p = sub.add_parser("check-ports")
    p.add_argument("--containers", default="")
    p.add_argument("spec", nargs="+")
    p.set_defaults(func=cmd_check_ports)

    p = sub.add_parser("wait-http")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--contains")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("url", nargs="+")
    p.set_defaults(func=cmd_wait_http)

    p = sub.add_parser("wait-targets")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--jobs", default=",".join(SERVICES))
    p.set_defaults(func=cmd_wait_targets)

    p = sub.add_parser("wait-baseline")
    p.add_argument("seconds", type=int)
    p.add_argument("--version", default="v1.2.2")
    p.add_argument("--scrape-interval", type=float, default=1.0)
    p.add_argument("--extra", type=int, default=90, help="slack added to the timeout")
    p.set_defaults(func=cmd_wait_baseline)

    for name, func in (("wait-alert", cmd_wait_alert), ("wait-clear", cmd_wait_clear)):
        p = sub.add_parser(name)
        p.add_argument("timeout", type=int, nargs="?", default=120)
        p.add_argument("--window", default="30s")
        p.add_argument("--deploy-file", default="")
        if name == "wait-alert":
            p.add_argument("--alertname", default="HighErrorRate")
        else:
            p.add_argument("--threshold", type=float, default=0.01)
        p.set_defaults(func=func)

    p = sub.add_parser("wait-resolved")
    p.add_argument("timeout", type=int, nargs="?", default=360)
    p.add_argument("--alertname", default="HighErrorRate")
    p.set_defaults(func=cmd_wait_resolved)

    p = sub.add_parser("admin")
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument("fault")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--timeout", type=float, default=10)
    p.set_defaults(func=cmd_admin)

    p = sub.add_parser("wait-fault")
    p.add_argument("fault", choices=FAULTS_5XX + FAULTS_DOWN + FAULTS_HUNG + FAULTS_LATENCY)
    p.add_argument("timeout", type=int, nargs="?", default=180)
    p.add_argument("--window", default="30s")
    p.add_argument("--fault-file", required=True)
    p.add_argument("--slow-version", default="v1.2.4", help="the slow build of slow-deploy (rig.sh's SLOW_VERSION)")
    p.set_defaults(func=cmd_wait_fault)

    p = sub.add_parser("wait-page")
    p.add_argument("timeout", type=int, nargs="?", default=60)
    p.add_argument("--standin", default="http://127.0.0.1:18111")
    p.set_defaults(func=cmd_wait_page)

    p = sub.add_parser("told")
    p.add_argument("--standin", default="http://127.0.0.1:18111")
    p.set_defaults(func=cmd_told)

    p = sub.add_parser("query")
    p.add_argument("expr")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("status")
    p.add_argument("--window", default="30s")
    p.add_argument("--deploy-file", default="")
    p.add_argument("--fault-file", default="")
    p.set_defaults(func=cmd_status)

    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

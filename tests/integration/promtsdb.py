"""A real Prometheus (the Debian package) over a TSDB of known series, backfilled with promtool:
the helpers of the tests that need history a scraping Prometheus would take hours to gather."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

STEP = 5  # seconds between two samples, as a scrape interval
MINUTE = 60


def last_step():
    """Now, down to a step: the time of the last sample, when the module's data is built."""
    return int(time.time()) // STEP * STEP


def label_text(labels):
    return ','.join('%s="%s"' % kv for kv in sorted(labels.items()))


def counter_lines(series, start, end, step=STEP):
    """The lines of http_requests_total counters from [(labels, rate)]: rate(t) is the requests
    per second the series counts at t, None before the series exists."""
    lines = ['# TYPE http_requests counter']
    for labels, rate in series:
        text = label_text(labels)
        value = None
        for t in range(start, end + 1, step):
            per_second = rate(t)
            if per_second is None:
                continue
            value = (value or 0.0) + per_second * step
            lines.append('http_requests_total{%s} %.3f %d' % (text, value, t))
    return lines


def openmetrics(series, start, end, step=STEP):
    """OpenMetrics text of http_requests_total counters (counter_lines)."""
    return document(counter_lines(series, start, end, step))


def document(*families):
    """OpenMetrics text of families of lines."""
    return '\n'.join([line for lines in families for line in lines] + ['# EOF']) + '\n'


# The buckets of the demo apps' http_request_duration_seconds (demo/app/common.py).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def histogram_lines(series, start, end, step=STEP, name='http_request_duration_seconds', buckets=BUCKETS):
    """The lines of a latency histogram (_bucket with le, _count, _sum) from [(labels, rate,
    latencies)]: rate(t) as for counter_lines; latencies(t) is [(seconds, share)], how long the
    requests of t took. Each series is written whole, in time order, as promtool wants it."""
    lines = ['# TYPE %s histogram' % name]
    bounds = [('%g' % b, b) for b in buckets] + [('+Inf', float('inf'))]
    for labels, rate, latencies in series:
        points = []
        counts, total, seconds = [0.0] * len(bounds), 0.0, 0.0
        for t in range(start, end + 1, step):
            per_second = rate(t)
            if per_second is None:
                continue
            requests = per_second * step
            for duration, share in latencies(t):
                for i, (_text, bound) in enumerate(bounds):
                    if duration <= bound:
                        counts[i] += requests * share
                seconds += requests * share * duration
            total += requests
            points.append((t, list(counts), total, seconds))
        for i, (text, _bound) in enumerate(bounds):
            le = label_text(dict(labels, le=text))
            lines += ['%s_bucket{%s} %.6f %d' % (name, le, point[i], t) for t, point, _n, _s in points]
        lines += ['%s_count{%s} %.6f %d' % (name, label_text(labels), n, t) for t, _c, n, _s in points]
        lines += ['%s_sum{%s} %.6f %d' % (name, label_text(labels), s, t) for t, _c, _n, s in points]
    return lines


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Backfilled:
    """A Prometheus on a free loopback port over blocks promtool built from OpenMetrics text; no
    scrape, optional recording rules; stopped by its PID."""

    def __init__(self, directory, text, rules=None):
        data = directory / 'data.om'
        data.write_text(text)
        tsdb = directory / 'tsdb'
        subprocess.run(['promtool', 'tsdb', 'create-blocks-from', 'openmetrics', '--quiet',
                        str(data), str(tsdb)], check=True, capture_output=True, timeout=120)
        config = 'global:\n  evaluation_interval: 1s\n'
        if rules:
            (directory / 'slo.rules.yml').write_text(rules)
            config += 'rule_files:\n  - %s\n' % (directory / 'slo.rules.yml')
        (directory / 'prometheus.yml').write_text(config)
        port = free_port()
        self.url = 'http://127.0.0.1:%d' % port
        self.log = directory / 'prometheus.log'
        with open(self.log, 'wb') as log:
            self.proc = subprocess.Popen(
                ['prometheus', '--config.file=%s' % (directory / 'prometheus.yml'),
                 '--storage.tsdb.path=%s' % tsdb, '--storage.tsdb.retention.time=100y',
                 '--web.listen-address=127.0.0.1:%d' % port], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not self.ready():
            assert self.proc.poll() is None and time.time() < deadline, \
                'prometheus did not start:\n' + self.log.read_text(errors='replace')[-3000:]
            time.sleep(0.2)

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + '/-/ready', timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

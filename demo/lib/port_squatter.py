"""port-squatter: holds a TCP port on 127.0.0.1 without speaking HTTP (demo fault port-conflict).

Started by `demo/rig.sh inject port-conflict` (pidfile /run/sre-demo/port-squatter.pid),
stopped by `demo/rig.sh clear|up|down` through that pidfile. It accepts each connection
and closes it at once, so a client sees an empty reply, and whoever tries to bind the
port after it gets EADDRINUSE. Its process name (comm) is "port-squatter".

usage: python3 demo/lib/port_squatter.py [--host 127.0.0.1] [--port 8000]
"""

import argparse
import signal
import socket
import sys
import time


def set_process_name(name):
    try:
        with open("/proc/self/comm", "w") as fh:
            fh.write(name)
    except OSError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(prog="port-squatter")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    set_process_name("port-squatter")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers must not stop it
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print("port-squatter: cannot bind %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr, flush=True)
        return 1
    sock.listen(64)
    sock.settimeout(0.5)
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    print("%s port-squatter: holding %s:%d" % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), args.host, args.port), flush=True)
    accepted = 0
    while not stopping:
        try:
            conn, _peer = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            continue
        accepted += 1
        conn.close()
    sock.close()
    print("%s port-squatter: released %s:%d after %d connections" % (
        time.strftime("%Y-%m-%dT%H:%M:%S%z"), args.host, args.port, accepted), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

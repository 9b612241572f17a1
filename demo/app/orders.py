"""orders (127.0.0.1:8082): order lookups in PostgreSQL through a small connection pool.

GET /v1/orders/{id} counts a read of the order (an UPDATE of its row) and answers it. The pool
holds DB_POOL_SIZE connections (application_name "orders"); a request waits DB_POOL_WAIT_MS for
one, then answers 503 "database pool exhausted"; a row lock held elsewhere longer than the
connection's lock_timeout answers 504. /ready and /health/db (probes: not counted) check the
database through the pool.
Metrics: db_pool_connections{state=in_use|idle}, db_pool_size, db_pool_wait_timeouts_total.
The Database Issues fault (demo/rig.sh inject db-idle-tx) is a report job that leaves a
transaction open on every row: the pool fills with waiting requests.
"""

import os
import queue
import threading

import psycopg

from common import VERSION, HttpError, Service, env_float

SERVICE = "orders"


class Pool:
    """DB_POOL_SIZE connections made on demand; a broken one is dropped, not returned."""

    def __init__(self, dsn, size, wait_seconds, metrics):
        self.dsn = dsn
        self.size = size
        self.wait_seconds = wait_seconds
        self.metrics = metrics
        self.idle = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)
        self.in_use = 0
        self.lock = threading.Lock()
        metrics.gauge("db_pool_size", "Connections the pool may hold.", ("service",), {(SERVICE,): size})
        metrics.gauge("db_pool_connections", "Pool connections by state.", ("service", "state"),
                      {(SERVICE, "in_use"): 0, (SERVICE, "idle"): 0})
        metrics.counter("db_pool_wait_timeouts_total",
                        "Requests that found no free connection within DB_POOL_WAIT_MS.", ("service",))

    def _publish(self):
        self.metrics.set("db_pool_connections", (SERVICE, "in_use"), self.in_use)
        self.metrics.set("db_pool_connections", (SERVICE, "idle"), self.idle.qsize())

    def run(self, sql, args=()):
        if not self.slots.acquire(timeout=self.wait_seconds):
            self.metrics.inc("db_pool_wait_timeouts_total", (SERVICE,))
            raise HttpError(503, "database pool exhausted: no free connection of %d within %d ms"
                            % (self.size, self.wait_seconds * 1000), "PoolTimeout: pool exhausted")
        conn = None
        try:
            try:
                conn = self.idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
            with self.lock:
                self.in_use += 1
                self._publish()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    row = cur.fetchone()
            finally:
                with self.lock:
                    self.in_use -= 1
            self.idle.put(conn)
            conn = None
            return row
        except psycopg.errors.LockNotAvailable:
            raise HttpError(504, "database lock timeout: the order's row is locked by another transaction",
                            "LockNotAvailable: canceling statement due to lock timeout")
        except psycopg.OperationalError as exc:
            raise HttpError(503, "database unavailable: %s" % str(exc).strip().splitlines()[0],
                            "OperationalError: %s" % str(exc).strip().splitlines()[0])
        finally:
            if conn is not None and conn.broken:
                conn.close()
            elif conn is not None:
                self.idle.put(conn)
            self.slots.release()
            with self.lock:
                self._publish()


def main():
    svc = Service(SERVICE, 8082)
    # lock_timeout and statement_timeout bound every query of the pool's connections.
    dsn = os.environ.get("ORDERS_DSN", "host=127.0.0.1 port=5433 dbname=shop user=orders")
    pool = Pool(dsn + " application_name=orders options='-c lock_timeout=800 -c statement_timeout=2000'",
                int(env_float("DB_POOL_SIZE", 4)), env_float("DB_POOL_WAIT_MS", 300) / 1000.0,
                svc.metrics)

    def order(req):
        row = pool.run("UPDATE orders SET reads = reads + 1 WHERE id = %s RETURNING status, total_cents",
                       (int(req.params["id"]) if req.params["id"].isdigit() else -1,))
        if row is None:
            raise HttpError(404, "no order %s" % req.params["id"])
        return 200, {"id": req.params["id"], "status": row[0], "total_cents": row[1]}

    def database():
        try:
            pool.run("SELECT 1")
        except HttpError as exc:
            return False, {"status": "not ready", "service": SERVICE, "version": VERSION,
                           "dependencies": {"database": {"status": "down", "error": exc.message}}}
        return True, {"status": "ready", "service": SERVICE, "version": VERSION,
                      "dependencies": {"database": {"status": "up"}}}

    svc.route("GET", "/v1/orders/{id}", order)
    svc.ready_check = database  # /ready and /health/db
    return svc.serve()


if __name__ == "__main__":
    raise SystemExit(main())

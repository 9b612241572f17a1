"""nightly-report: the Database Issues fault of the demo (demo/rig.sh inject db-idle-tx).

A report job that marks every order as read in one transaction, then stalls before it commits: its
session sits "idle in transaction" holding the row locks that the orders service's updates wait
for. It never ends by itself; demo/rig.sh clear removes its container, and the runbook's
pg_terminate_backend ends its session (the job then stays asleep, as a stuck job does).
"""

import os
import sys
import time

import psycopg


def main():
    dsn = os.environ.get("REPORT_DSN", "host=127.0.0.1 port=5433 dbname=shop user=reports")
    conn = psycopg.connect(dsn + " application_name=nightly-report", connect_timeout=5)
    with conn.cursor() as cur:
        cur.execute("UPDATE orders SET reads = reads")  # every row locked until the commit
        sys.stdout.write("nightly-report: %d orders locked; waiting on a report that never comes\n"
                         % cur.rowcount)
        sys.stdout.flush()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main())

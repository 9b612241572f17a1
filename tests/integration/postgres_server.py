"""A private, real PostgreSQL (the Debian package's server binaries) for the tests of the postgres
modules: its own cluster in a temporary directory, on 127.0.0.1 and a free port, its socket in that
directory; stopped by its postmaster's PID, the directory then removed.

Authentication: trust on the socket and for the superuser `postgres` on 127.0.0.1 (the tests'
administration); a password (SCRAM) for every other role on 127.0.0.1, as the modules connect.
max_connections is small, so that the tests can exhaust it.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg

OS_USER = 'postgres'  # the Debian package's user: the server refuses to run as root
MAX_CONNECTIONS = 20
SUPERUSER_RESERVED = 3
HBA = '''local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
'''


def bin_dir():
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: int(p.split('/')[4]))
    assert found, 'no PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin/initdb): apt-get install postgresql'
    return os.path.dirname(found[-1])


def free_port(preferred=15432):
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise AssertionError('no free port on 127.0.0.1')


class PostgresServer:
    """initdb, start, connection parameters, stop. As root the server's commands run as the
    `postgres` OS user (runuser); as another user, as that user."""

    def __init__(self):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix='sre-runbooks-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'server.log')
        self.port = free_port()
        self.pid = None
        self.as_root = os.geteuid() == 0
        if self.as_root:
            account = pwd.getpwnam(OS_USER)
            os.chown(self.dir, account.pw_uid, account.pw_gid)

    def run(self, *command, timeout=60):
        prefix = ['runuser', '-u', OS_USER, '--'] if self.as_root else []
        proc = subprocess.run(prefix + [os.path.join(self.bin, command[0])] + list(command[1:]),
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert proc.returncode == 0, '%s failed: %s%s' % (command[0], proc.stdout, proc.stderr)
        return proc.stdout

    def start(self):
        self.run('initdb', '-D', self.data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync',
                 '--no-instructions')
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as conf:
            conf.write("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                       "max_connections = %d\nsuperuser_reserved_connections = %d\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "deadlock_timeout = '60s'\n"  # waits stay waits: the tests make chains, not deadlocks
                       % (self.port, self.dir, MAX_CONNECTIONS, SUPERUSER_RESERVED))
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as hba:
            hba.write(HBA)
        self.run('pg_ctl', 'start', '-D', self.data, '-l', self.log, '-w', '-t', '60')
        with open(os.path.join(self.data, 'postmaster.pid')) as pidfile:
            self.pid = int(pidfile.readline())
        return self

    def stop(self):
        """pg_ctl stop -m fast; the postmaster killed by its PID when that fails; the directory removed."""
        try:
            if self.pid is not None:
                try:
                    self.run('pg_ctl', 'stop', '-D', self.data, '-m', 'fast', '-w', '-t', '30')
                except (AssertionError, subprocess.TimeoutExpired):
                    os.kill(self.pid, signal.SIGKILL)
                    time.sleep(0.5)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, chars=3000):
        try:
            with open(self.log, errors='replace') as log:
                return log.read()[-chars:]
        except OSError:
            return ''

    def connect(self, user='postgres', password=None, application_name='tests', autocommit=True, **kw):
        """A client session on 127.0.0.1, as the applications connect."""
        return psycopg.connect(host='127.0.0.1', port=self.port, dbname='postgres', user=user, password=password,
                               application_name=application_name, autocommit=autocommit, connect_timeout=5, **kw)

"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster in a temporary directory, started
with initdb and pg_ctl as a non-root user (PostgreSQL refuses to run as root; the tests do run as root in CI), on
127.0.0.1 and a free port, with fsync off (a test cluster need not survive a power cut).

    server = PostgresServer().start()
    url = server.create_database()           # a fresh database migrated to head (copied from a template)
    url = server.create_database(migrated=False)  # a fresh empty one
    url = server.create_database(copy_of=other)   # a copy of another database of this server (schema and rows)
    server.drop_database(url); server.stop()
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from core.database import Database
from tests.conftest import free_port

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "stadtretter"  # the cluster's superuser (a database role, no system account needed)
TEMPLATE = "stadtretter_head"
MISSING = (
    "PostgreSQL ist nicht installiert (erwartet unter /usr/lib/postgresql/*/bin): `make postgresql` oder "
    "`apt-get install postgresql` ausführen. Die Tests starten den Server selbst."
)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory; a clear failure when there is none."""
    found = sorted(Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name))
    if not found or not (found[-1] / "initdb").is_file():
        raise RuntimeError(MISSING)
    return found[-1]


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stadtretter-pg-"))  # under /tmp: reachable by the server account
        self.data = self.root / "cluster"
        self.port = free_port()
        self.bin = postgres_bin()
        self._names = itertools.count(1)
        # As root, run as Debian's `postgres` account (created by the package) or else `nobody`.
        self.run_as = next((name for name in ("postgres", "nobody") if _account(name)), None) if os.geteuid() == 0 \
            else None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-3000:] if (self.root / "server.log").exists() \
                else ""
            raise RuntimeError(f"{' '.join(command)} fehlgeschlagen:\n{result.stdout}\n{result.stderr}\n{log}")

    def start(self) -> "PostgresServer":
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self._admin(f"CREATE DATABASE {TEMPLATE}")
        template = Database(self.url(TEMPLATE))
        template.upgrade()
        template.dispose()
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type] - statements built here from safe names

    def create_database(self, migrated: bool = True, copy_of: str | None = None) -> str:
        """A new database: a copy of the migrated template, or empty (no schema, no Alembic version), or a copy of
        the database at the URL copy_of (schema and rows, e.g. another fixture's source registry)."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        if copy_of is None:
            self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
            return self.url(name)
        source = make_url(copy_of).database
        if make_url(copy_of).port != self.port or not source or not source.replace("_", "").isalnum():
            raise ValueError(f"keine Datenbank dieses Servers: {copy_of}")
        # CREATE DATABASE … TEMPLATE refuses a source with other sessions: end them first (the pools of the services
        # on that database test each connection before use, pool_pre_ping, and reconnect). A pool may reconnect in
        # between: then again.
        for attempts_left in reversed(range(5)):
            self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{source}' AND pid <> pg_backend_pid()")
            try:
                self._admin(f"CREATE DATABASE {name} TEMPLATE {source}")
                break
            except psycopg.errors.ObjectInUse:
                if not attempts_left:
                    raise
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


def _account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True

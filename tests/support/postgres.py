"""A real PostgreSQL server for the tests: initdb and pg_ctl on a temporary directory and a free port.

The server holds the sample data and the read-only role from docs/sql-read-only-role.sql; the tools
connect as that role over TCP with a password, the tests' own checks as the superuser over a socket.
PostgreSQL refuses to run as root, so under root (CI) it runs as the ``postgres`` system user.
One server per test process, started on first use; the fixture that asks for it stops it at the end.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL, Connection, create_engine
from threadrunner.tools.sample_data import load_sample_data

ROLE_SQL = Path(__file__).resolve().parents[2] / "docs" / "sql-read-only-role.sql"
DATABASE = "threadrunner"
ADMIN = "threadrunner_admin"
READER = "threadrunner_reader"


def find_bin_dir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off the PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="threadrunner-pg-")))
    port: int = field(default_factory=lambda: _free_port())
    reader_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    os_user: str | None = None
    running: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def admin_url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=ADMIN,
            database=DATABASE,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        )

    @property
    def reader_url(self) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=READER,
            password=self.reader_password,
            host="127.0.0.1",
            port=self.port,
            database=DATABASE,
        ).render_as_string(hide_password=False)

    def start(self, prepare: Callable[[Connection], None] | None = None) -> None:
        """Create the cluster and the database with the sample data (and whatever ``prepare`` adds, as the
        superuser), then the read-only role exactly as docs/sql-read-only-role.sql creates it."""
        self.os_user = _server_os_user()
        self.socket_dir.mkdir(parents=True)
        if self.os_user:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, self.os_user, self.os_user)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", ADMIN, "--auth-local=trust",
            "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
        )
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "30",
                  "-o", options, "start")  # fmt: skip
        self.running = True
        admin = f"host={self.socket_dir} port={self.port} user={ADMIN}"
        with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        engine = create_engine(self.admin_url)
        try:
            with engine.begin() as connection:
                load_sample_data(connection)
                if prepare is not None:
                    prepare(connection)
        finally:
            engine.dispose()
        subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v",
             f"reader_password={self.reader_password}", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", ADMIN, "-d", DATABASE, "-f", str(ROLE_SQL)],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / program), *arguments],
            user=self.os_user,
            group=self.os_user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            details = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr[-2000:]}\n{details}")


def _server_os_user() -> str | None:
    """None when we are not root; else the ``postgres`` user, created as a system user if missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )
    return "postgres"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@cache
def shared_server(prepare: Callable[[Connection], None] | None = None) -> PostgresServer:
    """One server per test process (xdist workers each have their own), whichever module asks first.
    Skips the test when PostgreSQL is not installed, except on CI (CI=true), where that is a failure."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bin_dir=bin_dir)
    atexit.register(server.stop)  # a safety net: the session fixture normally stops it first
    try:
        server.start(prepare)
    except BaseException:
        server.stop()
        raise
    return server

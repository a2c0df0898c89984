"""Test support: a fresh database and a broker running as a real HTTP server in a subprocess.

Used by ``tests/`` and ``conformance_tests/`` (and the benchmarks). The database is the embedded PostgreSQL
by default, or the server named by ``TEST_DATABASE_URL``; either way each session gets a new, empty database
that is dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def server_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server we may create databases on (TEST_DATABASE_URL or an embedded one)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from .embedded import EmbeddedPostgres

    base = Path(os.environ.get("TEST_EMBEDDED_DIR") or tempfile.mkdtemp(prefix="ngsild-test-"))
    embedded = EmbeddedPostgres(base)
    dsn = embedded.start()
    try:
        yield dsn
    finally:
        embedded.stop()


@contextmanager
def fresh_database(admin_dsn: str, prefix: str = "ngsild_test") -> Iterator[str]:
    """A new, empty database ``<prefix>_<random>`` on the server of ``admin_dsn``, dropped afterwards."""
    import asyncio

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name}"))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def serve_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start an aiohttp app a test talks to the broker with (a webhook receiver, a context server): its runner
    (``cleanup()`` stops it) and the port it listens on (``port`` 0: a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class BrokerProcess:
    """``python -m broker serve`` on a free port, against ``dsn`` (None: the embedded PostgreSQL)."""

    def __init__(self, dsn: str | None, *, port: int | None = None, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.dsn = dsn
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="broker-", suffix=".log", delete=False)

    def start(self, timeout: float = 30.0) -> "BrokerProcess":
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        if self.dsn:
            env["DATABASE_URL"] = self.dsn
        env.update(self.env)
        cmd = [sys.executable, "-m", "broker", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"broker did not start within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, then wait; the exit code (None if it had to be killed)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode if self.proc else None

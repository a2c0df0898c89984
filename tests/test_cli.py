"""The command line and the embedded PostgreSQL lifecycle: one command runs the broker, data survives a
restart, SIGTERM stops the embedded server cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from broker.cli import build_parser, settings_from
from broker.config import parse_context_files
from broker.testing import BrokerProcess


def test_help_documents_every_setting():
    out = subprocess.run([sys.executable, "-m", "broker", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--host", "--port", "--database-url", "--data-dir", "--log-level", "--context-file", "serve"):
        assert flag in out.stdout
    for var in ("DATABASE_URL", "NGSILD_DATA_DIR", "NGSILD_CONTEXT_FILES"):
        assert var in out.stdout


def test_flags_override_environment():
    args = build_parser().parse_args(["serve", "--port", "2000", "--context-file", "http://x/c.jsonld=/tmp/c"])
    env = {"NGSILD_PORT": "1500", "NGSILD_HOST": "127.0.0.1", "DATABASE_URL": "postgresql://db/x",
           "NGSILD_CONTEXT_FILES": "http://y/c.jsonld=/tmp/y"}
    settings = settings_from(args, env)
    assert settings.port == 2000 and settings.host == "127.0.0.1" and settings.database_url == "postgresql://db/x"
    assert settings.context_files == {"http://y/c.jsonld": "/tmp/y", "http://x/c.jsonld": "/tmp/c"}


def test_page_sizes_are_configurable():
    settings = settings_from(build_parser().parse_args(["serve"]), {"NGSILD_DEFAULT_LIMIT": "5",
                                                                   "NGSILD_MAX_LIMIT": "50"})
    assert (settings.default_limit, settings.max_limit) == (5, 50)
    defaults = settings_from(build_parser().parse_args(["serve"]), {})
    assert (defaults.default_limit, defaults.max_limit) == (20, 1000)


def test_context_files_spec():
    assert parse_context_files("a=b; c=d\n") == {"a": "b", "c": "d"}
    with pytest.raises(ValueError):
        parse_context_files("no-equals-sign")


def _post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_embedded_postgres_survives_restart_and_stops_on_sigterm(tmp_path: Path):
    data_dir = tmp_path / "data"
    broker = BrokerProcess(None, args=["--data-dir", str(data_dir)]).start(timeout=90)
    try:
        assert _post(broker.url + "/ngsi-ld/v1/entities", {"id": "urn:ngsi-ld:T:1", "type": "T", "p": 1}) == 201
    finally:
        code = broker.stop()
    assert code == 0, broker.output()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "embedded PostgreSQL still running"
    again = BrokerProcess(None, args=["--data-dir", str(data_dir)]).start(timeout=90)
    try:
        assert _get(again.url + "/ngsi-ld/v1/entities/urn:ngsi-ld:T:1?options=keyValues")["p"] == 1
    finally:
        assert again.stop() == 0
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


@pytest.mark.slow
def test_several_worker_processes_share_one_database(database_dsn: str):
    """``--workers 2``: both processes serve the port, migrate safely, and see each other's writes."""
    broker = BrokerProcess(database_dsn, args=["--workers", "2"]).start(timeout=90)
    try:
        ids = [f"urn:ngsi-ld:W:{i}" for i in range(20)]
        for entity_id in ids:
            assert _post(broker.url + "/ngsi-ld/v1/entities", {"id": entity_id, "type": "W", "n": 1}) == 201
        for entity_id in ids:  # connections land on either worker: every read sees every write
            assert _get(broker.url + f"/ngsi-ld/v1/entities/{entity_id}?options=keyValues")["n"] == 1
        # each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads new connections over
        # them: a burst of connections is not all taken by the worker that wakes first
        listening = _socket_owners(broker.port, "0A")  # 0A: LISTEN
        assert len(listening) == 2 and set(listening.values()) == {1}, listening
        # 16 connections all in one of 2 workers by chance: p = 2**-15
        with contextlib.ExitStack() as stack:
            conns = [stack.enter_context(socket.create_connection(("127.0.0.1", broker.port))) for _ in range(16)]
            for conn in conns:  # a request on each, so that each is surely accepted
                conn.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            for conn in conns:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            owners = _socket_owners(broker.port, "01")  # 01: ESTABLISHED
            assert len(owners) == 2 and sum(owners.values()) == 16, owners
        # a second broker on the same port is refused, not admitted to share it
        second = subprocess.run([sys.executable, "-m", "broker", "serve", "--host", "127.0.0.1", "--port",
                                 str(broker.port), "--workers", "2", "--database-url", database_dsn],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "Address already in use" in second.stderr, second.stderr
    finally:
        assert broker.stop() == 0, broker.output()


def _socket_owners(port: int, state: str) -> dict[int, int]:
    """The TCP sockets on local ``port`` in ``state`` (/proc/net/tcp's hex code), counted per owning process."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(f"socket:[{fields[9]}]")
    owners: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            held = sum(1 for fd in (proc / "fd").iterdir() if os.readlink(fd) in inodes)
        except OSError:
            continue
        if held:
            owners[int(proc.name)] = held
    return owners

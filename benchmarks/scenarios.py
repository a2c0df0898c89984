"""Scenarios, the servers under test (broker and floor) and the database they share."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import asyncpg

from broker.testing import BrokerProcess, free_port, fresh_database

from . import payloads
from .loadgen import LoadResult, run_batches, run_wrk

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    """One measured operation; ``script`` is its wrk script, or None for the aiohttp batch driver."""

    name: str
    operation: str
    unit: str
    target: float
    script: str | None = None


SCENARIOS: list[Scenario] = [
    Scenario("create", "POST /entities", "creates/s", 2_000, "create.lua"),
    Scenario("update", "PATCH /entities/{id}/attrs/speed", "updates/s", 3_000, "update.lua"),
    Scenario("get", "GET /entities/{id}", "GETs/s", 5_000, "get.lua"),
    # an IoT agent's partial update: a one-entity upsert?options=update (the partial-update target)
    Scenario("upsert-one", "POST /entityOperations/upsert?options=update, one entity", "updates/s", 3_000,
             "upsert_one.lua"),
    Scenario("upsert-new", "POST /entityOperations/upsert, new", "entities/s", 30_000),
    Scenario("upsert-existing", "POST /entityOperations/upsert, existing", "entities/s", 30_000),
]
MIN_RATIO = 0.4


@dataclass(frozen=True)
class LoadConfig:
    """How hard and how long to push."""

    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 64
    threads: int = 2
    batch_concurrency: int = 4
    batch_size: int = 1000
    seed_count: int = 10_000


# --- database ---------------------------------------------------------------------------------------------

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark shares: the PostgreSQL to run on, and extra broker arguments."""
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DSN),
                        help=f"PostgreSQL server to create bench_<random> on (default {DEFAULT_DSN})")
    parser.add_argument("--embedded", action="store_true", help="use the broker's embedded PostgreSQL instead")
    parser.add_argument("--broker-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `python -m broker serve` (repeatable)")
    parser.add_argument("--broker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment variable for the broker process (repeatable), e.g. "
                             "PYTHONPATH=DIR with a sitecustomize.py for an experiment")


def broker_env(args: argparse.Namespace) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.broker_env)


def broker_process(args: argparse.Namespace, dsn: str) -> BrokerProcess:
    """The broker as the options ask (``--pool-size``, ``--workers``, ``--broker-arg``, ``--broker-env``)."""
    return BrokerProcess(dsn, env=broker_env(args), args=["--pool-size", str(args.pool_size),
                                                          "--workers", str(args.workers), *args.broker_arg])


@contextmanager
def bench_database(server_dsn: str) -> Iterator[str]:
    """A new database ``bench_<random>`` on the server of ``server_dsn``, dropped afterwards."""
    with fresh_database(server_dsn, prefix="bench") as dsn:
        yield dsn


async def _server_notes(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        notes = {"postgresql": (await conn.fetchval("SHOW server_version")).split()[0]}
        for setting in ("shared_buffers", "synchronous_commit", "max_connections"):
            notes[setting] = await conn.fetchval(f"SHOW {setting}")
        return notes
    finally:
        await conn.close()


def server_notes(dsn: str) -> dict[str, str]:
    """PostgreSQL version and the settings that matter for these figures."""
    return asyncio.run(_server_notes(dsn))


# --- servers ----------------------------------------------------------------------------------------------

class ServerProcess:
    """A helper server (``python -m benchmarks.<module>``) on a free port, ready once ``/version`` answers
    (mirrors ``broker.testing.BrokerProcess``)."""

    def __init__(self, name: str, module: str, args: list[str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", module, "--port", str(self.port), *args]
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FloorProcess(ServerProcess):
    """``python -m benchmarks.floor``."""

    def __init__(self, dsn: str, *, pool_size: int = 16, scenario: str = "all", workers: int = 1) -> None:
        super().__init__("floor", "benchmarks.floor", ["--database-url", dsn, "--pool-size", str(pool_size),
                                                       "--scenario", scenario, "--workers", str(workers)])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().split(")")[1].split()[1] == str(pid):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) in KiB, summed over the process and its worker processes."""
    values: dict[str, int] = {"VmRSS": 0, "VmHWM": 0}
    for proc in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] += int(rest.split()[0])
        except OSError:
            pass
    return values


# --- requests ---------------------------------------------------------------------------------------------

def _request(method: str, url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def seed(base_url: str, count: int, batch: int) -> None:
    """Create ``seed_id(0 .. count-1)`` through the upsert endpoint (raises on any failure)."""
    for body in payloads.seed_bodies(count, batch):
        status, reply = _request("POST", base_url + payloads.UPSERT_PATH, body, payloads.HEADERS)
        if status not in (201, 204):
            raise RuntimeError(f"seeding {base_url} failed: {status} {reply[:500]!r}")


def precheck(base_url: str) -> list[str]:
    """One request of each kind, checked for the expected status: problems found (empty when all is well)."""
    problems = []
    entity_id = f"urn:ngsi-ld:Vehicle:check-{uuid.uuid4().hex[:8]}"
    link = {"Link": payloads.LINK}
    body = json.dumps(payloads.vehicle(entity_id, 1)).encode()
    attr_url = f"{base_url}{payloads.ENTITIES_PATH}/{entity_id}/attrs/speed"
    checks = [
        ("create", "POST", base_url + payloads.ENTITIES_PATH, body, payloads.HEADERS, 201),
        ("update", "PATCH", attr_url, json.dumps(payloads.speed_patch(3)).encode(), payloads.HEADERS, 204),
        ("get", "GET", f"{base_url}{payloads.ENTITIES_PATH}/{entity_id}", None, link, 200),
        ("upsert-one", "POST", f"{base_url}{payloads.UPSERT_PATH}?options=update",
         json.dumps([{"id": entity_id, "type": "Vehicle", "heading": {"type": "Property", "value": 9}}]).encode(),
         payloads.HEADERS, 204),
    ]
    for name, method, url, data, headers, expected in checks:
        status, reply = _request(method, url, data, headers)
        if status != expected:
            problems.append(f"{name}: {method} answered {status} (expected {expected}): {reply[:300]!r}")
        elif name == "get":
            doc = json.loads(reply)
            if doc.get("speed", {}).get("value") != payloads.speed_patch(3)["value"]:
                problems.append(f"get: the updated speed is not in the entity: {reply[:300]!r}")
    return problems


# --- measuring --------------------------------------------------------------------------------------------

def _batch_source(scenario: str, cfg: LoadConfig, nonce: str) -> Callable[[], tuple[bytes, int]]:
    """Bodies for the batch driver: all-new ids, or the pre-created ids chunk by chunk (values alternate)."""
    builders = [payloads.BatchBuilder(cfg.batch_size, variant) for variant in (0, 1)]
    counter = itertools.count()
    chunks = max(1, cfg.seed_count // cfg.batch_size)

    def new_body() -> tuple[bytes, int]:
        k = next(counter)
        ids = [f"urn:ngsi-ld:Vehicle:{nonce}-b{k}-{j}" for j in range(cfg.batch_size)]
        return builders[0].body(ids), len(ids)

    def existing_body() -> tuple[bytes, int]:
        k = next(counter)
        start = (k % chunks) * cfg.batch_size
        ids = [payloads.seed_id(i) for i in range(start, min(start + cfg.batch_size, cfg.seed_count))]
        return builders[(k // chunks) % 2].body(ids), len(ids)

    return new_body if scenario == "upsert-new" else existing_body


def _load(scenario: Scenario, base_url: str, cfg: LoadConfig, duration: float) -> LoadResult:
    nonce = uuid.uuid4().hex[:8]
    if scenario.script is None:
        return run_batches(base_url + payloads.UPSERT_PATH, _batch_source(scenario.name, cfg, nonce),
                           payloads.HEADERS, concurrency=cfg.batch_concurrency, duration=duration)
    args = [nonce] if scenario.name == "create" else [str(cfg.seed_count)]
    return run_wrk(base_url, scenario.script, args, connections=cfg.connections, threads=cfg.threads,
                   duration=duration)


def measure(scenario: Scenario, base_url: str, cfg: LoadConfig) -> LoadResult:
    """A warm-up (discarded) then a timed run of ``scenario`` against ``base_url``."""
    if cfg.warmup > 0:
        _load(scenario, base_url, cfg, cfg.warmup)
    return _load(scenario, base_url, cfg, cfg.duration)


def concurrency_of(scenario: Scenario, cfg: LoadConfig) -> str:
    """How the load was applied, for the table."""
    if scenario.script is None:
        return f"{cfg.batch_concurrency}x{cfg.batch_size}"
    return f"c{cfg.connections}"


def commit_note(env: dict[str, str]) -> str:
    """"commit <sha>", and how many files were uncommitted when the figures were taken."""
    dirty = env.get("dirty_files", "0")
    return f"commit {env.get('commit', '?')}" + (f" + {dirty} uncommitted files" if dirty != "0" else "")


def env_notes() -> dict[str, str]:
    """Machine notes for the report."""
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    wrk = (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].split(" [")[0]
           if shutil.which("wrk") else "wrk not installed")
    return {"cpus": str(os.cpu_count()), "cpu": model, "python": sys.version.split()[0], "wrk": wrk}


def text_table(head: list[str], lines: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """A fixed-width table: a header, a rule, the lines; columns in ``right`` right-aligned."""
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(line) for line in lines)])

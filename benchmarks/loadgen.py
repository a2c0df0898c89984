"""Load generators: ``wrk`` with the Lua scripts in ``benchmarks/wrk/``, and an aiohttp driver for batches."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
import orjson

WRK_DIR = Path(__file__).parent / "wrk"


@dataclass
class LoadResult:
    """What one timed load run achieved; ``items`` counts entities (batch) or requests (single)."""

    items: int
    requests: int
    duration_s: float
    failed: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    sample_error: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.duration_s if self.duration_s > 0 else 0.0


def wrk_binary() -> str:
    """Path of ``wrk`` or a clear error telling how to install it."""
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk not found: install it with `apt-get install -y wrk`")
    return path


def run_wrk(url: str, script: str, args: list[str], *, connections: int, threads: int,
            duration: float) -> LoadResult:
    """Run wrk for ``duration`` seconds; successes only count (non-2xx/3xx and socket errors are failures)."""
    cmd = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
           "-s", str(WRK_DIR / script), url, "--", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    failed = data["status_errors"] + data["socket_errors"]
    ok = max(0, data["requests"] - data["status_errors"])
    return LoadResult(items=ok, requests=data["requests"], duration_s=data["duration_us"] / 1e6, failed=failed,
                      p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000)


async def _batch_load(url: str, next_body: Callable[[], tuple[bytes, int]], headers: dict[str, str], *,
                      concurrency: int, duration: float) -> LoadResult:
    latencies: list[float] = []
    items = requests = failed = 0
    error = ""
    deadline = time.perf_counter() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal items, requests, failed, error
        while time.perf_counter() < deadline:
            body, count = next_body()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                payload = await resp.read()
            latencies.append(time.perf_counter() - t0)
            requests += 1
            if resp.status in (201, 204):
                items += count
            elif resp.status == 207:  # partial success: count the successes only
                success = len(orjson.loads(payload).get("success", []))
                items += success
                failed += count - success
                error = error or f"207: {payload[:300]!r}"
            else:
                failed += count
                error = error or f"{resp.status}: {payload[:300]!r}"

    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: 0.0)
    return LoadResult(items=items, requests=requests, duration_s=elapsed, failed=failed, p50_ms=pick(0.5),
                      p99_ms=pick(0.99), sample_error=error)


def run_batches(url: str, next_body: Callable[[], tuple[bytes, int]], headers: dict[str, str], *,
                concurrency: int, duration: float) -> LoadResult:
    """POST bodies from ``next_body()`` (body, entity count) with ``concurrency`` in flight for ``duration`` s."""
    return asyncio.run(_batch_load(url, next_body, headers, concurrency=concurrency, duration=duration))


def history_drain(dsn: str, limit: float = 600.0) -> float:
    """Seconds until the broker's history recorder has recorded every change (0 when it kept up)."""
    import asyncpg

    from broker.temporal.recorder import PENDING

    async def wait() -> float:
        conn = await asyncpg.connect(dsn)
        try:
            start = time.monotonic()
            while await conn.fetchval(PENDING) and time.monotonic() - start < limit:
                await asyncio.sleep(0.05)
            return time.monotonic() - start
        finally:
            await conn.close()

    return asyncio.run(wait())

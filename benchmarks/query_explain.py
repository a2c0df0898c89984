"""``--explain``: the SQL the broker really runs for one query of each scenario, with its EXPLAIN ANALYZE.

A second broker process (one worker, same database) starts with a ``sitecustomize`` on its PYTHONPATH that
wraps asyncpg's ``Connection.fetch/fetchval/fetchrow`` and appends every statement reading ``.entities``
(text and bind values) to a file. For each scenario one request is sent, and each captured statement is run
again here under ``EXPLAIN (ANALYZE, BUFFERS)``: once as a custom plan (what the first executions of a
prepared statement get) and once with ``plan_cache_mode = force_generic_plan`` (what asyncpg's statement
cache may settle on after five executions). Nothing in the broker changes.

Standalone: ``python -m benchmarks.query_explain DSN SCENARIO [N]`` against an already loaded database.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from broker.testing import BrokerProcess

from .dataset import Dataset
from .query_scenarios import BY_NAME, link_header

SITECUSTOMIZE = '''
import os, pickle
_dir = os.environ.get("QBENCH_CAPTURE")
if _dir:
    import asyncpg.connection
    _cls = asyncpg.connection.Connection

    def _wrap(name):
        orig = getattr(_cls, name)

        async def wrapper(self, query, *args, **kw):
            if ".entities" in query and query.lstrip().upper().startswith(("SELECT", "WITH")):
                with open(os.path.join(_dir, "%d.pkl" % os.getpid()), "ab") as f:
                    pickle.dump((query, args), f)
            return await orig(self, query, *args, **kw)
        setattr(_cls, name, wrapper)

    for _n in ("fetch", "fetchval", "fetchrow"):
        _wrap(_n)
'''


def _captured(directory: Path) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    for file in sorted(directory.glob("*.pkl")):
        with file.open("rb") as f:
            while True:
                try:
                    found.append(pickle.load(f))
                except EOFError:
                    break
        file.unlink()
    return found


async def _explain(dsn: str, statements: list[tuple[str, tuple[Any, ...]]]) -> str:
    conn = await asyncpg.connect(dsn)
    out = []
    try:
        await conn.execute("SET jit = off")  # as the broker's pool
        for sql, args in statements:
            out.append(f"-- SQL: {sql}\n-- args: {args!r}"[:4000])
            for mode in ("auto", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
                label = "custom plan" if mode == "auto" else "generic plan"
                out.append(f"-- {label}:\n" + "\n".join("   " + r[0] for r in rows))
    finally:
        await conn.close()
    return "\n".join(out)


def explain_scenarios(dsn: str, args: Any, paths: dict[str, list[str]], broker_env: dict[str, str]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of what the broker runs for ``paths[scenario][0]`` of each chosen scenario."""
    site = Path(tempfile.mkdtemp(prefix="qbench-site-"))
    capture = Path(tempfile.mkdtemp(prefix="qbench-capture-"))
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**broker_env, "PYTHONPATH": str(site), "QBENCH_CAPTURE": str(capture)}
    broker = BrokerProcess(dsn, env=env, args=["--workers", "1"])
    texts = []
    try:
        broker.start(timeout=120)
        for scenario in args.chosen:
            path = paths[scenario.name][0]
            req = urllib.request.Request(broker.url + path, headers={"Link": link_header(scenario.domain)})
            try:
                urllib.request.urlopen(req, timeout=120).read()
            except OSError as exc:
                texts.append(f"== {scenario.name}: {exc}")
                _captured(capture)
                continue
            statements = _captured(capture)
            texts.append(f"== {scenario.name}: GET {path}\n" + asyncio.run(_explain(dsn, statements)))
    finally:
        broker.stop()
    return "\n\n".join(texts)


def main(argv: list[str]) -> None:
    dsn, name = argv[0], argv[1]
    entities = int(argv[2]) if len(argv) > 2 else 100_000

    class Args:
        chosen = [BY_NAME[n] for n in name.split(",")]

    paths = {s.name: s.paths(Dataset(entities), 1, 99) for s in Args.chosen}
    print(explain_scenarios(dsn, Args, paths, {}))


if __name__ == "__main__":
    main(sys.argv[1:])

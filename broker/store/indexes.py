"""Adaptive expression indexes: the indexes follow the queries.

A compiled filter names the indexes its SQL can use (``IndexSpec``: an expression over a row of
``{schema}.entities``, optionally partial). Every query reports its specs here; once a tenant's queries have
used a spec ``threshold`` times, a background task builds the index with ``CREATE INDEX CONCURRENTLY``
(writes go on meanwhile), then ``ANALYZE``s the table so the planner knows the new expression's statistics.

Why adaptive: an index on every attribute would make every write pay for all of them (measured: a single
extra B-tree costs bulk writes ~10%); an index on none leaves ``q`` to full scans (Stellio's problem). Writes
pay only for what some client actually queries. ``threshold = 0`` turns the mechanism off.

Builds run one at a time per table across all broker processes (a session advisory lock), on a dedicated
connection without statement timeout; each build first checks whether another process has built it. The index name derives
from the spec, so a restart finds built indexes again in ``pg_indexes``; a build that failed half-way leaves
an INVALID index, which is dropped and rebuilt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from functools import lru_cache
from typing import Iterable

import asyncpg

from ..query.indexspec import IndexSpec
from ..tasks import cancel
from .schema import check_schema_name

log = logging.getLogger(__name__)

__all__ = ["IndexAdvisor", "IndexSpec", "index_name"]


@lru_cache(maxsize=1024)  # every query asks for the names of its specs (note, ready)
def index_name(spec: IndexSpec) -> str:
    digest = hashlib.sha256(f"{spec.method}|{spec.expression}|{spec.where}".encode()).hexdigest()
    return f"ix_{digest[:24]}"


def _lock_key(schema: str, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{schema}.{name}".encode()).digest()[:8], "big", signed=True)


class IndexAdvisor:
    def __init__(self, dsn: str, *, threshold: int = 3) -> None:
        self._dsn = dsn
        self.threshold = threshold
        self._uses: dict[tuple[str, str], int] = {}
        self._built: dict[str, set[str]] = {}  # schema -> index names known to exist (valid)
        self._queue: asyncio.Queue[tuple[str, IndexSpec]] = asyncio.Queue()
        self._scheduled: set[tuple[str, str]] = set()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.threshold > 0:
            self._worker = asyncio.create_task(self._run())

    async def close(self) -> None:
        await cancel(self._worker)

    def note(self, schema: str, specs: Iterable[IndexSpec]) -> None:
        """A query used ``specs`` in ``schema``: count, and schedule a build past the threshold."""
        if self.threshold <= 0:
            return
        built = self._built.get(schema)
        for spec in specs:
            name = index_name(spec)
            if built is not None and name in built:
                continue
            key = (schema, name)
            uses = self._uses.get(key, 0) + 1
            self._uses[key] = uses
            if uses >= self.threshold and key not in self._scheduled:
                self._scheduled.add(key)
                self._queue.put_nowait((schema, spec))

    def ready(self, schema: str, specs: Iterable[IndexSpec]) -> bool:
        """Whether every index of ``specs`` is known to exist in ``schema`` (this process built it or found it
        built; an index dropped behind the broker's back stays "known" until a restart)."""
        built = self._built.get(schema)
        return built is not None and all(index_name(spec) in built for spec in specs)

    async def _run(self) -> None:
        while True:
            schema, spec = await self._queue.get()
            try:
                await self._build(schema, spec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed build must not stop later ones; the query still works
                log.warning("building index %s on %s failed: %s", index_name(spec), schema, exc)
                self._scheduled.discard((schema, index_name(spec)))
                self._uses.pop((schema, index_name(spec)), None)

    async def _build(self, schema: str, spec: IndexSpec) -> None:
        check_schema_name(schema)
        if spec.method not in ("btree", "gist", "gin"):
            raise ValueError(f"unknown index method {spec.method!r}")
        name = index_name(spec)
        conn = await asyncpg.connect(self._dsn, server_settings={"statement_timeout": "0",
                                                                 "application_name": "ngsild-broker-indexer"})
        try:
            await self._load_built(conn, schema)
            if name in self._built[schema]:
                return
            # one build at a time per table across every broker process: two CREATE INDEX CONCURRENTLY on one
            # table wait for each other's transactions and one dies of a deadlock, leaving an INVALID index
            # (seen with --workers 2 at 1M entities). Poll, never block: a session waiting in
            # pg_advisory_lock() is itself a transaction the running build waits for (a deadlock again).
            lock = _lock_key(schema, "index builds")
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                await asyncio.sleep(0.5)
            try:
                valid = await conn.fetchval(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = $2",
                    name, schema)
                if valid is False:
                    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")
                if valid is not True:
                    where = f" WHERE {spec.where}" if spec.where else ""
                    log.info("building index %s on %s.entities: %s (%s)%s", name, schema, spec.method,
                             spec.expression, where)
                    await conn.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {schema}.entities "
                                       f"USING {spec.method} ({spec.expression}){where}")
                    await conn.execute(f"ANALYZE {schema}.entities")
                self._built[schema].add(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", lock)
        finally:
            await conn.close()

    async def _load_built(self, conn: asyncpg.Connection, schema: str) -> None:
        if schema in self._built:
            return
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND i.indisvalid "
            "AND c.relname LIKE 'ix\\_%'", schema)
        self._built[schema] = {r["relname"] for r in rows}

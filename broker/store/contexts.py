"""Stored @contexts (table ``ngsild.contexts``): Hosted, ImplicitlyCreated and Cached, per tenant.

``url`` is the original URL for Cached contexts and the host-independent path
``/ngsi-ld/v1/jsonldContexts/{id}`` for Hosted/ImplicitlyCreated ones, so usage counters are keyed by
(tenant, url) for all kinds. ``PgContextStore`` is the real store; ``MemoryContextStore`` has the same
interface for unit tests and for a resolver built without a database.

Each broker process caches what it resolved (``broker.jsonld.resolver``); a deletion or a reload of a stored
context therefore announces itself (``pg_notify`` on ``CHANNEL``, in the statement that makes it, so it is
heard once committed) and every process drops its copies (``ContextResolver.listen``). The same channel
carries the requests of a process about to read the usage counters that the others store theirs, and their
answers (``ContextResolver.flush_usage``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Protocol

import asyncpg
import orjson

KINDS = ("Hosted", "Cached", "ImplicitlyCreated")
CHANNEL = "ngsild_contexts"
# the announcement of each changed row ``c`` (JSON: op, tenant, id, url, kind), as a FROM item: pg_notify
# returns void, so it yields one row per announced row (as in broker.subscriptions.store)
_ANNOUNCE = ("LATERAL pg_notify('" + CHANNEL + "', json_build_object('op', {op}, 'tenant', c.tenant, 'id', c.id, "
             "'url', c.url, 'kind', c.kind)::text) n")

_COLUMNS = "tenant, id, url, kind, body, created_at, last_used_at, hits"


@dataclass(frozen=True)
class StoredContext:
    tenant: str
    id: str
    url: str
    kind: str
    body: Any
    created_at: datetime
    last_used_at: datetime | None
    hits: int


# one usage increment: (tenant, url, hits to add, time of the last use)
Usage = tuple[str, str, int, datetime]


class ContextStore(Protocol):
    async def get(self, tenant: str, local_id: str) -> StoredContext | None: ...
    async def get_by_url(self, tenant: str, url: str) -> StoredContext | None: ...
    async def cached_body(self, url: str, tenant: str) -> Any | None: ...
    async def insert(self, tenant: str, local_id: str, url: str, kind: str, body: Any,
                     hits: int = 0) -> bool: ...
    async def update_cached_body(self, url: str, body: Any) -> None: ...
    async def delete(self, tenant: str, local_id: str) -> StoredContext | None: ...
    async def list(self, tenant: str, kind: str | None) -> list[StoredContext]: ...
    async def add_usage(self, usage: Iterable[Usage]) -> None: ...
    async def announce(self, message: dict[str, Any]) -> None: ...
    async def listeners(self, application_name: str, own_pid: int) -> int: ...


def _row(record: asyncpg.Record) -> StoredContext:
    return StoredContext(**dict(record))


class PgContextStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, tenant: str, local_id: str) -> StoredContext | None:
        rec = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ngsild.contexts WHERE tenant = $1 AND id = $2", tenant, local_id)
        return _row(rec) if rec else None

    async def get_by_url(self, tenant: str, url: str) -> StoredContext | None:
        rec = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ngsild.contexts WHERE tenant = $1 AND url = $2", tenant, url)
        return _row(rec) if rec else None

    async def cached_body(self, url: str, tenant: str) -> Any | None:
        """The body of a Cached copy of ``url`` (this tenant's if any, else another's: same URL, same body)."""
        return await self._pool.fetchval(
            "SELECT body FROM ngsild.contexts WHERE url = $1 AND kind = 'Cached' "
            "ORDER BY (tenant = $2) DESC LIMIT 1", url, tenant)

    async def insert(self, tenant: str, local_id: str, url: str, kind: str, body: Any, hits: int = 0) -> bool:
        """Insert unless (tenant, id) or (tenant, url) exists; True if inserted."""
        inserted = await self._pool.fetchval(
            "INSERT INTO ngsild.contexts (tenant, id, url, kind, body, hits, last_used_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::bigint, CASE WHEN $6::bigint > 0 THEN now() END) "
            "ON CONFLICT DO NOTHING RETURNING true", tenant, local_id, url, kind, body, hits)
        return bool(inserted)

    async def update_cached_body(self, url: str, body: Any) -> None:
        await self._pool.execute(
            "WITH c AS (UPDATE ngsild.contexts SET body = $2 WHERE url = $1 AND kind = 'Cached' "
            f"RETURNING tenant, id, url, kind) SELECT 1 FROM c, {_ANNOUNCE.format(op=repr('reload'))}", url, body)

    async def announce(self, message: dict[str, Any]) -> None:
        await self._pool.execute(f"SELECT pg_notify('{CHANNEL}', $1)", orjson.dumps(message).decode())

    async def listeners(self, application_name: str, own_pid: int) -> int:
        """How many other sessions named ``application_name`` (the other processes' listeners) are open."""
        return await self._pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2 "
            "AND datname = current_database()",  # notifications stay within one database
            application_name, own_pid)

    async def delete(self, tenant: str, local_id: str) -> StoredContext | None:
        rec = await self._pool.fetchrow(
            f"WITH c AS (DELETE FROM ngsild.contexts WHERE tenant = $1 AND id = $2 RETURNING {_COLUMNS}) "
            f"SELECT c.* FROM c, {_ANNOUNCE.format(op=repr('delete'))}", tenant, local_id)
        return _row(rec) if rec else None

    async def list(self, tenant: str, kind: str | None) -> list[StoredContext]:
        recs = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM ngsild.contexts WHERE tenant = $1 AND ($2::text IS NULL OR kind = $2) "
            "ORDER BY created_at, id", tenant, kind)
        return [_row(r) for r in recs]

    async def add_usage(self, usage: Iterable[Usage]) -> None:
        rows = list(usage)
        if not rows:
            return
        tenants, urls, hits, times = (list(col) for col in zip(*rows))
        await self._pool.execute(
            "UPDATE ngsild.contexts AS c SET hits = c.hits + u.n, "
            "last_used_at = greatest(c.last_used_at, u.t) "
            "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[]) AS u(tenant, url, n, t) "
            "WHERE c.tenant = u.tenant AND c.url = u.url", tenants, urls, hits, times)


class MemoryContextStore:
    """The same operations over a dict (unit tests; a resolver without a database)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StoredContext] = {}

    async def announce(self, message: dict[str, Any]) -> None:
        return None  # one process: nobody else to tell

    async def listeners(self, application_name: str, own_pid: int) -> int:
        return 0

    async def get(self, tenant: str, local_id: str) -> StoredContext | None:
        return self._rows.get((tenant, local_id))

    async def get_by_url(self, tenant: str, url: str) -> StoredContext | None:
        return next((r for r in self._rows.values() if r.tenant == tenant and r.url == url), None)

    async def cached_body(self, url: str, tenant: str) -> Any | None:
        rows = [r for r in self._rows.values() if r.url == url and r.kind == "Cached"]
        rows.sort(key=lambda r: r.tenant != tenant)
        return rows[0].body if rows else None

    async def insert(self, tenant: str, local_id: str, url: str, kind: str, body: Any, hits: int = 0) -> bool:
        if (tenant, local_id) in self._rows or await self.get_by_url(tenant, url) is not None:
            return False
        now = datetime.now(timezone.utc)
        self._rows[(tenant, local_id)] = StoredContext(tenant, local_id, url, kind, body, now,
                                                       now if hits else None, hits)
        return True

    async def update_cached_body(self, url: str, body: Any) -> None:
        for key, row in list(self._rows.items()):
            if row.url == url and row.kind == "Cached":
                self._rows[key] = replace(row, body=body)

    async def delete(self, tenant: str, local_id: str) -> StoredContext | None:
        return self._rows.pop((tenant, local_id), None)

    async def list(self, tenant: str, kind: str | None) -> list[StoredContext]:
        rows = [r for r in self._rows.values() if r.tenant == tenant and (kind is None or r.kind == kind)]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    async def add_usage(self, usage: Iterable[Usage]) -> None:
        for tenant, url, hits, at in usage:
            row = await self.get_by_url(tenant, url)
            if row is not None:
                last = max(row.last_used_at, at) if row.last_used_at else at
                self._rows[(tenant, row.id)] = replace(row, hits=row.hits + hits, last_used_at=last)

"""Entity storage: reads, and writes that append their change-log entry in the same statement.

Single-entity writes are optimistic: read the row (with its ``version``), compute the ``Write`` in Python
(``broker.model.operations``), then one statement updates the row only if ``version`` is unchanged and, in
the same statement, appends the change to ``ngsild.changes``. A concurrent writer makes the update match no
row; we re-read and re-apply. That is two round trips and no explicit transaction per write, and the row
lock is held only for the update itself. Should a hot entity make us miss twice, the write switches to the
locking path (``SELECT … FOR UPDATE`` in a transaction), where PostgreSQL's lock queue guarantees progress.

Batch writes (``broker.store.batch``) lock their rows instead; the two schemes interoperate because every
write bumps ``version`` and a conditional update re-checks it after waiting for a lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import asyncpg

from ..errors import NgsiError, already_exists, not_found
from ..model.entity import EntityInput
from ..model.operations import Write, new_entity_attrs
from .tenants import Tenants

OPTIMISTIC_ATTEMPTS = 2
COLUMNS = "id, types, scopes, created_at, modified_at, version, attrs"


def change_entry(op: str, entity_id: str, types: list[str], old: dict[str, Any] | None,
                 write_attrs: dict[str, Any], removed: list[str], now: str) -> dict[str, Any]:
    """One entity's entry in a change-log row: touched attributes with their old and new instances.

    ``old`` is the entity's attribute map before the write (None for a creation); a removed attribute has
    ``new: None``; ``op`` is the API operation (create, append, update, partialUpdate, replaceAttr,
    deleteAttr, merge, replace, delete, upsert).
    """
    attrs: dict[str, Any] = {}
    for iri, insts in write_attrs.items():
        attrs[iri] = {"old": old.get(iri) if old else None, "new": insts}
    for iri in removed:
        attrs[iri] = {"old": old.get(iri) if old else None, "new": None}
    return {"op": op, "id": entity_id, "types": types, "at": now, "attrs": attrs}


class _Sql:
    """The statements of one tenant schema (the validated schema name is spliced once, here)."""

    def __init__(self, schema: str) -> None:
        t = f"{schema}.entities"
        self.get = f"SELECT {COLUMNS} FROM {t} WHERE id = $1"
        self.get_locked = self.get + " FOR UPDATE"
        self.create = (
            f"WITH i AS (INSERT INTO {t} (id, types, scopes, created_at, modified_at, attrs) "
            f"VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING 1) "
            f"INSERT INTO ngsild.changes (tenant, payload) SELECT $6, $7 FROM i RETURNING seq")
        self.modify = (
            f"WITH u AS (UPDATE {t} SET types = $3, scopes = $4, modified_at = $5, "
            f"attrs = (attrs - $6::text[]) || $7::jsonb, version = version + 1 "
            f"WHERE id = $1 AND version = $2 RETURNING 1) "
            f"INSERT INTO ngsild.changes (tenant, payload) SELECT $8, $9 FROM u RETURNING seq")
        self.delete = (
            f"WITH d AS (DELETE FROM {t} WHERE id = $1 AND version = $2 RETURNING 1) "
            f"INSERT INTO ngsild.changes (tenant, payload) SELECT $3, $4 FROM d RETURNING seq")


class EntityStore:
    def __init__(self, pool: asyncpg.Pool, tenants: Tenants) -> None:
        self.pool = pool
        self.tenants = tenants
        self._sql: dict[str, _Sql] = {}

    async def sql(self, tenant: str, *, create: bool = False) -> _Sql:
        schema = await self.tenants.schema(tenant, create=create)
        found = self._sql.get(schema)
        if found is None:
            found = self._sql[schema] = _Sql(schema)
        return found

    async def get(self, tenant: str, entity_id: str) -> asyncpg.Record | None:
        sql = await self.sql(tenant)
        return await self.pool.fetchrow(sql.get, entity_id)

    async def create(self, tenant: str, entity: EntityInput, now: str, now_dt: datetime) -> None:
        sql = await self.sql(tenant, create=True)
        attrs = new_entity_attrs(entity, now)
        change = [change_entry("create", entity.id, entity.types, None, attrs, [], now)]
        seq = await self.pool.fetchval(sql.create, entity.id, entity.types, entity.scopes, now_dt, attrs,
                                       tenant, change)
        if seq is None:
            raise already_exists(f"entity {entity.id} already exists")

    async def modify(self, tenant: str, entity_id: str, op: str, compute: Callable[[Any], Write],
                     now: str, now_dt: datetime) -> Write:
        """Apply ``compute(current_row)`` to the stored entity, retrying if it changed concurrently."""
        sql = await self.sql(tenant)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            write = await self._modify_once(self.pool, sql.get, sql, tenant, entity_id, op, compute, now, now_dt)
            if write is not None:
                return write
        async with self.pool.acquire() as conn, conn.transaction():
            write = await self._modify_once(conn, sql.get_locked, sql, tenant, entity_id, op, compute, now,
                                            now_dt)
        if write is None:  # cannot happen while we hold the row lock
            raise NgsiError("Conflict", f"entity {entity_id} changed concurrently; try again", status=409)
        return write

    @staticmethod
    async def _modify_once(conn: Any, get_sql: str, sql: _Sql, tenant: str, entity_id: str, op: str,
                           compute: Callable[[Any], Write], now: str, now_dt: datetime) -> Write | None:
        """One read-compute-conditional-write; None when the entity changed in between."""
        row = await conn.fetchrow(get_sql, entity_id)
        if row is None:
            raise not_found(f"entity {entity_id} does not exist")
        write = compute(row)
        if not write.changed and write.types == list(row["types"]) and write.scopes == row["scopes"]:
            return write
        change = [change_entry(op, entity_id, write.types, row["attrs"], write.set_attrs, write.removed, now)]
        seq = await conn.fetchval(sql.modify, entity_id, row["version"], write.types, write.scopes, now_dt,
                                  write.removed, write.set_attrs, tenant, change)
        return write if seq is not None else None

    async def delete(self, tenant: str, entity_id: str, now: str) -> None:
        sql = await self.sql(tenant)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql.get_locked, entity_id)
            if row is None:
                raise not_found(f"entity {entity_id} does not exist")
            change = [change_entry("delete", entity_id, list(row["types"]), row["attrs"], {},
                                   list(row["attrs"]), now)]
            await conn.fetchval(sql.delete, entity_id, row["version"], tenant, change)

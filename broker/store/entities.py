"""Entity storage: reads, and writes that append their change-log entry in the same statement.

Single-entity writes are optimistic: read the row (with its ``version``), compute the ``Write`` in Python
(``broker.model.operations``), then one statement updates the row only if ``version`` is unchanged and, in
the same statement, appends the change to ``ngsild.changes``. A concurrent writer makes the update match no
row; we re-read and re-apply. That is two round trips and no explicit transaction per write, and the row
lock is held only for the update itself. Should a hot entity make us miss twice, the write switches to the
locking path (``SELECT … FOR UPDATE`` in a transaction), where PostgreSQL's lock queue guarantees progress.

Creates and deletes are one statement each (a create serialises the attributes once for the row and the
change entry; a delete's entry is built by PostgreSQL from the row it removes).
Batch writes (``broker.store.batch``) lock their rows instead; the schemes interoperate because every write
bumps ``version`` and a conditional update re-checks it after waiting for a lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import asyncpg
import orjson

from ..errors import NgsiError, already_exists, not_found
from ..model.entity import EntityInput
from ..model.operations import Write, new_entity_attrs
from ..temporal import record
from .changes import change_entry, encode, sql_payload
from .tenants import Tenants

OPTIMISTIC_ATTEMPTS = 2
COLUMNS = "id, types, scopes, created_at, modified_at, version, attrs"


def touched_old(old_attrs: dict[str, Any], write: Write) -> dict[str, Any]:
    """The previous instances of the attributes a write touches (for its change-log entry)."""
    return {iri: old_attrs[iri] for iri in (*write.set_attrs, *write.removed) if iri in old_attrs}


class _Sql:
    """The statements of one tenant schema (the validated schema name is spliced once, here).

    Core API writes record no history themselves: the history recorder (``broker.temporal.recorder``) reads
    it from their change entries later. The temporal API's writes, which carry their own instances, record
    them in the same statement (``create_recording``, ``modify_recording``, with history on) and mark their
    change entry so that the recorder skips it."""

    def __init__(self, schema: str, history: bool = False) -> None:
        t = f"{schema}.entities"
        self.history = history
        self.get = f"SELECT {COLUMNS} FROM {t} WHERE id = $1"
        self.get_locked = self.get + " FOR UPDATE"
        self.lock_types = f"SELECT types FROM {t} WHERE id = $1 FOR UPDATE"
        self.create = (
            f"WITH i AS (INSERT INTO {t} (id, types, scopes, created_at, modified_at, attrs) "
            f"VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING 1) "
            "INSERT INTO ngsild.changes (tenant, payload) SELECT $6, $7 FROM i RETURNING seq")
        self.modify = (
            f"WITH u AS (UPDATE {t} SET types = $3, scopes = $4, modified_at = $5, "
            f"attrs = (attrs - $6::text[]) || $7::jsonb, version = version + 1 "
            f"WHERE id = $1 AND version = $2 RETURNING 1) "
            "INSERT INTO ngsild.changes (tenant, payload) SELECT $8, $9 FROM u RETURNING seq")
        if history:  # the temporal API's writes: their instances, an observation sent again replacing the recorded one
            self.create_recording = self.create.replace(") INSERT INTO ngsild.changes", (
                f"), hx AS ({record.replace_observed(schema, 8)} AND EXISTS (SELECT 1 FROM i)), "
                f"h AS ({record.insert_select(schema, 8, 4)} WHERE EXISTS (SELECT 1 FROM i)), "
                f"t AS ({_temporal_entity(schema, 'i')}) INSERT INTO ngsild.changes"), 1)
            self.modify_recording = self.modify.replace(") INSERT INTO ngsild.changes", (
                f"), hx AS ({record.replace_observed(schema, 10)} AND EXISTS (SELECT 1 FROM u)), "
                f"h AS ({record.insert_select(schema, 10, 5)} WHERE EXISTS (SELECT 1 FROM u)), "
                f"t AS ({_temporal_entity(schema, 'u', created='$5')}) INSERT INTO ngsild.changes"), 1)
        self.patch_property = _patch_property(t)
        removed = "(SELECT coalesce(jsonb_agg(k), '[]'::jsonb) FROM jsonb_object_keys(d.attrs) k)"
        deleted = {recorded: sql_payload("'delete'", "d.id", "d.types", "$3::text", new="'{}'::jsonb", old="d.attrs",
                                         removed=removed, created="false", old_scopes="d.scopes", history=recorded)
                   for recorded in (True, False)}
        delete = f"WITH d AS (DELETE FROM {t} WHERE id = $1 RETURNING id, types, scopes, attrs) "
        self.delete = delete + f"INSERT INTO ngsild.changes (tenant, payload) SELECT $2, {deleted[True]} FROM d RETURNING seq"
        # the temporal API's delete: the entity (its entry unrecorded: the whole history goes) and its history
        self.delete_unrecorded = (delete + f"INSERT INTO ngsild.changes (tenant, payload) SELECT $2, {deleted[False]} "
                                  f"FROM d RETURNING seq")
        self.delete_history = (f"WITH a AS (DELETE FROM {schema}.attr_instances WHERE entity_id = $1) "
                               f"DELETE FROM {schema}.temporal_entities WHERE id = $1 RETURNING 1")


def _patch_property(table: str) -> str:
    """One statement for ``operations.partial_update`` of a Property's default instance by a plain fragment
    (``operations.is_plain_property_patch``): $1 entity id, $2 attribute IRI, $3 the fragment, $4 the write's
    time as stored in documents, $5 as a column, $6 tenant. No row when the entity has no such instance.

    The row is locked first (``FOR UPDATE`` re-reads it if a concurrent write committed meanwhile), so the
    merge and the change entry's ``old`` are computed from the version it replaces. The merge is
    ``merge_instance``'s for these members: the fragment's members replace the stored ones, ``createdAt``
    keeps the instance's creation (``instance_times``: its createdAt, else its modifiedAt, else the entity's
    creation; dropped if that is now) and ``modifiedAt`` is now."""
    first = "e.attrs -> $2 -> 0"
    born = (f"coalesce({first} -> 'createdAt', {first} -> 'modifiedAt', "
            "to_jsonb(to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')))")
    merged = ("((o.before -> 0) || $3::jsonb || jsonb_build_object('createdAt', o.born, 'modifiedAt', $4::text)) "
              "- CASE WHEN o.born = to_jsonb($4::text) THEN 'createdAt' ELSE '' END")
    payload = sql_payload("'partialUpdate'", "m.id", "m.types", "$4::text", new="jsonb_build_object($2::text, m.after)",
                          old="jsonb_build_object($2::text, m.before)", removed="'[]'::jsonb", created="false",
                          scopes="m.scopes", old_scopes="m.scopes")
    return (f"WITH o AS (SELECT e.id, e.types, e.scopes, e.attrs -> $2 AS before, {born} AS born FROM {table} e "
            f"WHERE e.id = $1 AND {first} ->> 'type' = 'Property' AND NOT ({first} ? 'datasetId') FOR UPDATE), "
            f"m AS (SELECT o.id, o.types, o.scopes, o.before, jsonb_set(o.before, '{{0}}', {merged}) AS after FROM o), "
            f"u AS (UPDATE {table} e SET modified_at = $5, attrs = jsonb_set(e.attrs, ARRAY[$2::text], m.after), "
            f"version = e.version + 1 FROM m WHERE e.id = m.id RETURNING 1) "
            f"INSERT INTO ngsild.changes (tenant, payload) SELECT $6, {payload} FROM m WHERE EXISTS (SELECT 1 FROM u) "
            "RETURNING seq")


def _temporal_entity(schema: str, written: str, created: str = "$4") -> str:
    """Upsert the entity's ``temporal_entities`` row ($1 id, $3 types, $4 scopes for a modify; $2 / $3 for a
    create) when the CTE ``written`` wrote; no row version is spent when nothing differs."""
    types, scopes = ("$3", "$4") if written == "u" else ("$2", "$3")
    # the NOT EXISTS read spares the common case (nothing differs) the row lock ON CONFLICT takes
    row = (f"(SELECT $1 AS id, {types} AS types, {scopes} AS scopes WHERE EXISTS (SELECT 1 FROM {written}) "
           f"AND NOT EXISTS (SELECT 1 FROM {schema}.temporal_entities x WHERE x.id = $1 AND x.types = {types} "
           f"AND x.scopes IS NOT DISTINCT FROM {scopes} AND x.deleted_at IS NULL))")
    return record.upsert_entities_held(schema, row, created)


class EntityStore:
    def __init__(self, pool: asyncpg.Pool, tenants: Tenants, *, history: bool = True) -> None:
        self.pool = pool
        self.tenants = tenants
        self.history = history  # a temporal history is kept (broker.temporal)
        self._sql: dict[str, _Sql] = {}
        # called after every committed write (the notification dispatcher looks at the change log at once)
        self.on_write: Callable[[str], None] = _nothing  # a write to this tenant committed

    async def sql(self, tenant: str, *, create: bool = False) -> _Sql:
        schema = await self.tenants.schema(tenant, create=create)
        found = self._sql.get(schema)
        if found is None:
            found = self._sql[schema] = _Sql(schema, self.history)
        return found

    async def get(self, tenant: str, entity_id: str) -> asyncpg.Record | None:
        sql = await self.sql(tenant)
        return await self.pool.fetchrow(sql.get, entity_id)

    async def create(self, tenant: str, entity: EntityInput, now: str, now_dt: datetime,
                     history: record.HistoryRows | None = None) -> None:
        """``history``: the rows to record, in this statement, instead of the entity's instances (the temporal
        API's writes)."""
        sql = await self.sql(tenant, create=True)
        attrs = orjson.dumps(new_entity_attrs(entity, now))  # serialised once: row and change entry share it
        recording = history is not None and sql.history
        change = encode([change_entry("create", entity.id, entity.types, now, new=orjson.Fragment(attrs),
                                      old=None, removed=[], created=True, scopes=entity.scopes,
                                      history=not recording)])
        args: tuple[Any, ...] = (entity.id, entity.types, entity.scopes, now_dt, attrs, tenant, change)
        if recording:
            assert history is not None
            args += history.with_scopes(entity.id, None, entity.scopes, now).params()
        seq = await self.pool.fetchval(sql.create_recording if recording else sql.create, *args)
        if seq is None:
            raise already_exists(f"entity {entity.id} already exists")
        self.on_write(tenant)

    async def modify(self, tenant: str, entity_id: str, op: str, compute: Callable[[Any], Write],
                     now: str, now_dt: datetime, history: record.HistoryRows | None = None) -> Write:
        """Apply ``compute(current_row)`` to the stored entity, retrying if it changed concurrently;
        ``history``: the rows to record instead of the written instances (the temporal API's writes)."""
        sql = await self.sql(tenant)
        async with self.pool.acquire() as conn:  # one connection for the read and the conditional write
            for _ in range(OPTIMISTIC_ATTEMPTS):
                write = await self._modify_once(conn, sql.get, sql, tenant, entity_id, op, compute, now, now_dt,
                                                history)
                if write is not None:
                    self.on_write(tenant)
                    return write
        async with self.pool.acquire() as conn, conn.transaction():
            write = await self._modify_once(conn, sql.get_locked, sql, tenant, entity_id, op, compute, now,
                                            now_dt, history)
        if write is None:  # cannot happen while we hold the row lock
            raise NgsiError("Conflict", f"entity {entity_id} changed concurrently; try again", status=409)
        self.on_write(tenant)
        return write

    @staticmethod
    async def _modify_once(conn: Any, get_sql: str, sql: _Sql, tenant: str, entity_id: str, op: str,
                           compute: Callable[[Any], Write], now: str, now_dt: datetime,
                           history: record.HistoryRows | None = None) -> Write | None:
        """One read-compute-conditional-write; None when the entity changed in between."""
        row = await conn.fetchrow(get_sql, entity_id)
        if row is None:
            raise not_found(f"entity {entity_id} does not exist")
        write = compute(row)
        if not write.changed and write.types == list(row["types"]) and write.scopes == row["scopes"]:
            return write
        recording = history is not None and sql.history
        change = encode([change_entry(op, entity_id, write.types, now, new=write.set_attrs,
                                      old=touched_old(row["attrs"], write), removed=write.removed,
                                      scopes=write.scopes, old_scopes=row["scopes"], history=not recording)])
        args: tuple[Any, ...] = (entity_id, row["version"], write.types, write.scopes, now_dt, write.removed,
                                 write.set_attrs, tenant, change)
        if recording:
            assert history is not None
            args += history.with_scopes(entity_id, row["scopes"], write.scopes, now).params()
        seq = await conn.fetchval(sql.modify_recording if recording else sql.modify, *args)
        return write if seq is not None else None

    async def patch_property(self, tenant: str, entity_id: str, iri: str, patch: dict[str, Any], now: str,
                             now_dt: datetime) -> bool:
        """A plain fragment (``operations.is_plain_property_patch``) merged into the attribute's default
        instance in one round trip, when that instance is a Property; False, having written nothing, when the
        entity or such an instance does not exist (the general path then decides what to answer)."""
        sql = await self.sql(tenant)
        if await self.pool.fetchval(sql.patch_property, entity_id, iri, patch, now, now_dt, tenant) is None:
            return False
        self.on_write(tenant)
        return True

    async def delete(self, tenant: str, entity_id: str, now: str,
                     matches: Callable[[list[str]], bool] | None = None) -> None:
        """Delete the entity; ``matches``: a type selector its types must pass (else ResourceNotFound), checked
        on the locked row so that nothing retypes it in between."""
        sql = await self.sql(tenant)
        if matches is None:
            seq = await self.pool.fetchval(sql.delete, entity_id, tenant, now)
        else:
            async with self.pool.acquire() as conn, conn.transaction():
                types = await conn.fetchval(sql.lock_types, entity_id)
                seq = (await conn.fetchval(sql.delete, entity_id, tenant, now)
                       if types is not None and matches(types) else None)
        if seq is None:
            raise not_found(f"entity {entity_id} does not exist" if matches is None
                            else f"entity {entity_id} does not exist with the requested type")
        self.on_write(tenant)

    async def delete_with_history(self, tenant: str, entity_id: str, now: str) -> bool:
        """DELETE /temporal/entities/{id}: the entity, when it exists, and its whole history, in one
        transaction (the history goes whatever ``history_on_delete`` says). False when there was neither."""
        sql = await self.sql(tenant)
        async with self.pool.acquire() as conn, conn.transaction():
            existed = await conn.fetchval(sql.delete_unrecorded, entity_id, tenant, now) is not None
            had_history = await conn.fetchval(sql.delete_history, entity_id) is not None
        if existed:
            self.on_write(tenant)
        return existed or had_history


def _nothing(tenant: str) -> None:
    return None

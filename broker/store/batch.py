"""Batch writes: many entities in one transaction and a constant number of round trips.

1. lock the existing rows of every id in the batch (``FOR UPDATE``, in id order: no deadlock between two
   batches), 2. apply each item's rule in Python, in request order, against the in-memory state (so two items
   on the same id compose), 3. write all new states with one ``INSERT … ON CONFLICT`` fed by
   ``jsonb_to_recordset``, delete what was deleted, 4. append one change-log row for the whole batch.

Rows that did not exist when locked cannot be locked; if another transaction creates one of them meanwhile,
step 3 notices (a row it meant to insert was updated instead) and the whole batch is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import asyncpg
import orjson

from ..errors import NgsiError
from ..model.operations import Write
from .entities import COLUMNS, EntityStore, change_entry

MAX_ATTEMPTS = 5

# an item's rule: the current state (None if the entity does not exist) -> the new state, or None to delete
Rule = Callable[[dict[str, Any] | None], "NewState | None"]


@dataclass
class NewState:
    types: list[str]
    scopes: list[str] | None
    attrs: dict[str, Any]
    write: Write | None = None  # None for a creation
    op: str = "update"


@dataclass
class BatchOutcome:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiError]] = field(default_factory=list)


def apply_write(current: dict[str, Any], write: Write, op: str) -> NewState:
    attrs = {k: v for k, v in current["attrs"].items() if k not in write.removed}
    attrs.update(write.set_attrs)
    return NewState(write.types, write.scopes, attrs, write, op)


class _Sql:
    def __init__(self, schema: str) -> None:
        t = f"{schema}.entities"
        self.lock = f"SELECT {COLUMNS} FROM {t} WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
        self.upsert = (
            f"INSERT INTO {t} AS e (id, types, scopes, created_at, modified_at, attrs) "
            f"SELECT id, types, scopes, created_at, modified_at, attrs FROM jsonb_to_recordset($1::jsonb) "
            f"AS x(id text, types text[], scopes text[], created_at timestamptz, modified_at timestamptz, "
            f"attrs jsonb) "
            f"ON CONFLICT (id) DO UPDATE SET types = excluded.types, scopes = excluded.scopes, "
            f"modified_at = excluded.modified_at, attrs = excluded.attrs, version = e.version + 1 "
            f"RETURNING id, xmax = 0 AS inserted")
        self.delete = f"DELETE FROM {t} WHERE id = ANY($1::text[])"


class BatchStore:
    def __init__(self, entities: EntityStore) -> None:
        self.entities = entities
        self._sql: dict[str, _Sql] = {}

    async def run(self, tenant: str, items: list[tuple[str, Rule]], now: str, now_dt: datetime, *,
                  create_tenant: bool) -> BatchOutcome:
        """Apply ``items`` ((entity id, rule) in request order) atomically; per-item errors are reported."""
        schema = await self.entities.tenants.schema(tenant, create=create_tenant)
        sql = self._sql.get(schema) or self._sql.setdefault(schema, _Sql(schema))
        for _ in range(MAX_ATTEMPTS):
            try:
                async with self.entities.pool.acquire() as conn, conn.transaction():
                    outcome = await self._attempt(conn, sql, tenant, items, now, now_dt)
                    if outcome is None:
                        raise _Retry()  # rolls the transaction back
                return outcome
            except (_Retry, asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                continue
        raise NgsiError("Conflict", "the batch kept conflicting with concurrent writes; try again", status=409)

    async def _attempt(self, conn: asyncpg.Connection, sql: _Sql, tenant: str, items: list[tuple[str, Rule]],
                       now: str, now_dt: datetime) -> BatchOutcome | None:
        ids = sorted({entity_id for entity_id, _ in items})
        before = {r["id"]: dict(r) for r in await conn.fetch(sql.lock, ids)}
        state: dict[str, dict[str, Any] | None] = dict(before)
        outcome = BatchOutcome()
        changes: list[dict[str, Any]] = []
        dirty: set[str] = set()
        for entity_id, rule in items:
            current = state.get(entity_id)
            try:
                new = rule(current)
            except NgsiError as exc:
                outcome.errors.append((entity_id, exc))
                continue
            if new is not None and new.write is not None and new.write.not_updated:
                # applied in part (noOverwrite kept some attributes): reported as an error naming them
                names = ", ".join(sorted({iri for iri, _ in new.write.not_updated}))
                outcome.errors.append((entity_id, NgsiError(
                    "BadRequestData", f"attributes not updated: {names} ({new.write.not_updated[0][1]})")))
            else:
                outcome.success.append(entity_id)
            if new is None:  # deleted
                if current is not None:
                    changes.append(change_entry("delete", entity_id, list(current["types"]), current["attrs"], {},
                                                list(current["attrs"]), now))
                state[entity_id] = None
                dirty.discard(entity_id)
                continue
            if current is None:
                outcome.created.append(entity_id)
                changes.append(change_entry(new.op, entity_id, new.types, None, new.attrs, [], now))
                created_at: Any = now
            else:
                assert new.write is not None
                changes.append(change_entry(new.op, entity_id, new.types, current["attrs"], new.write.set_attrs,
                                            new.write.removed, now))
                created_at = current["created_at"]
            state[entity_id] = {"id": entity_id, "types": new.types, "scopes": new.scopes,
                                "created_at": created_at, "modified_at": now, "attrs": new.attrs}
            dirty.add(entity_id)
        rows = [state[i] for i in sorted(dirty)]  # id order, as the locks: no deadlock between batches
        if rows:
            written = await conn.fetch(sql.upsert, orjson.dumps(rows, default=_default))
            for record in written:
                if record["inserted"] != (record["id"] not in before):
                    return None  # a concurrent writer created one of "our" new ids: retry
        deleted = sorted(i for i, s in state.items() if s is None and i in before)
        if deleted:
            await conn.execute(sql.delete, deleted)
        if changes:
            await conn.execute("INSERT INTO ngsild.changes (tenant, payload) VALUES ($1, $2)", tenant, changes)
        return outcome


class _Retry(Exception):
    pass


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)

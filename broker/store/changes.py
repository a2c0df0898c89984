"""The change log (``ngsild.changes``): the entry format, and retention while no consumer has claimed it.

Every write appends one row, in the same statement or transaction as the write: ``payload`` is the JSON
(UTF-8 bytes; PostgreSQL never parses it) of a list of entries, one per entity changed (a batch is one row)::

    op       the API operation: create, upsert, replace, append, update, partialUpdate, replaceAttr,
             deleteAttr, merge, purge, delete
    id       the entity id;  types: its expanded types after the write;  at: the write's timestamp
    created  true when the entity did not exist before
    new      {attribute IRI: instances} the attributes written, each with its full instance list after the write
    old      {attribute IRI: instances} the previous instances of (at least) every attribute touched; may hold
             all previous attributes (replace, delete); null when created
    removed  attribute IRIs the write deleted
    scopes   the entity's scopes after the write;  oldScopes: before it (null when created)
    replaced true when the write replaced an existing entity whole (every instance of ``new`` is new)
    history  false when the write recorded its history itself (the temporal API's writes, which carry their
             own instances): the history recorder (``broker.temporal.recorder``) skips it

Producers in Python call ``change_entry``; producers in SQL (bulk writes, deletes, creates, where Python never
holds the old state) build the same shape with ``sql_entry``. Consumers (the notification dispatcher, the
temporal history recorder) read the log in ``seq`` order; rows older than the retention that every
notification dispatch partition (``ngsild.dispatch_cursors``) and, with history on, the history recorder
(``ngsild.history_cursor``) have handled are pruned. One process at a time prunes (a
transaction-scoped advisory lock), so several broker processes do not repeat the work.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson

log = logging.getLogger(__name__)

PRUNE_LOCK_KEY = 7_260_431_920


def change_entry(op: str, entity_id: str, types: list[str], at: str, *, new: dict[str, Any],
                 old: dict[str, Any] | None, removed: list[str], created: bool = False,
                 scopes: list[str] | None = None, old_scopes: list[str] | None = None, replaced: bool = False,
                 history: bool = True) -> dict[str, Any]:
    entry = {"op": op, "id": entity_id, "types": types, "at": at, "created": created, "new": new, "old": old,
             "removed": removed, "scopes": scopes, "oldScopes": old_scopes}
    if replaced:
        entry["replaced"] = True
    if not history:
        entry["history"] = False
    return entry


def encode(entries: list[dict[str, Any]]) -> bytes:
    """A change-log payload (entries may embed pre-serialised JSON as ``orjson.Fragment``)."""
    return orjson.dumps(entries)


def sql_payload(op: str, entity_id: str, types: str, at: str, *, new: str, old: str, removed: str,
                created: str, scopes: str = "NULL::text[]", old_scopes: str = "NULL::text[]",
                history: bool = True) -> str:
    """A one-entry payload as a SQL bytea expression over the given SQL expressions (written by us, never
    user input): for statements where PostgreSQL holds the state (deletes, the one-statement partial update)."""
    extra = "" if history else ", 'history', false"
    entry = (f"jsonb_build_object('op', {op}, 'id', {entity_id}, 'types', to_jsonb({types}), 'at', {at}, "
             f"'created', {created}, 'new', {new}, 'old', {old}, 'removed', {removed}, 'scopes', to_jsonb({scopes}), "
             f"'oldScopes', to_jsonb({old_scopes}){extra})")
    return f"convert_to(jsonb_build_array({entry})::text, 'UTF8')"


async def prune(pool: asyncpg.Pool, retention_seconds: float, history: bool = True) -> int:
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PRUNE_LOCK_KEY):
            return 0
        # only what every dispatch partition has handled (its cursor), and, with history on, the history
        # recorder too (its position), and older than the retention
        recorder = "(SELECT pos FROM ngsild.history_cursor)" if history else "NULL"
        status = await conn.execute(
            "DELETE FROM ngsild.changes WHERE at < now() - make_interval(secs => $1) "
            f"AND seq <= least((SELECT coalesce(min(seq), 0) FROM ngsild.dispatch_cursors), {recorder})",
            retention_seconds)
    return int(status.split()[-1])


async def prune_forever(pool: asyncpg.Pool, retention_seconds: float, history: bool = True,
                        every: float = 10.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            removed = await prune(pool, retention_seconds, history)
            if removed:
                log.debug("pruned %d change-log rows", removed)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("change-log pruning failed: %s", exc)

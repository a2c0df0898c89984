"""The history recorder: the temporal history, recorded from the change log after the writes have answered.

A core API write appends its change entry (``broker.store.changes``) and answers; the recorder reads the log
and records, per batch of entries and in one transaction: each entry's instances and deletion markers
(``record.HistoryRows``: the same rows a write would record itself), the entities' ``temporal_entities``
rows, the removal of a deleted entity's history (or its deletion markers, when deleted entities keep it),
and its own position (``ngsild.history_cursor``). The position commits with the rows, so every entry is
recorded exactly once, whichever process records it and whenever one dies.

Why not in the write: recording in the write's own statement tripled its database work (a 1,000-entity
upsert: 52 ms plain, 170 ms with its 6,000 instance rows) and made every write wait for it.

Order. Entries are taken in ``seq`` order, every visible one past the position; a missing seq is a gap,
resolved as the notification dispatcher does (``broker.notify.dispatcher``): it is waited for until every
transaction running when it was first missed has ended. Two changes of one entity are ordered by its row
lock, so a later one is never visible without the earlier; within a batch the entries apply in order (a
deletion drops what earlier entries of the batch would have recorded for the entity).

Read-your-writes. Every temporal API request first calls ``catch_up``: whatever was committed before it is
then in the history it reads or changes (the temporal API's own writes record their instances themselves,
after that, and mark their entries ``history: false``).

One recorder at a time: a transaction-scoped advisory lock (the background loop only tries it; a catch-up
waits for it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from ..errors import NgsiError
from ..store.batch import array_literal
from ..store.tenants import Tenants
from ..tasks import cancel
from .record import HistoryRows, insert_select, upsert_entities_held
from .tables import check_schema_name

log = logging.getLogger(__name__)

LOCK_KEY = 7_260_431_922
BATCH_ROWS = 200            # change-log rows per step
BATCH_BYTES = 8 << 20       # and at most this much payload (a 1,000-entity batch's entry is ~1.3 MB)
GATHER = 0.01               # after a wake-up, the writes of the next moments join the step
POLL = 1.0                  # fallback poll (other processes' writes wake their own recorder)
GAP_POLL = 0.05             # while a gap waits for its transaction

_READ = ("SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax, "
         "c.seq, c.tenant, c.payload "
         "FROM (SELECT pg_current_snapshot() AS s) x LEFT JOIN LATERAL "
         "(SELECT seq, tenant, payload FROM (SELECT seq, tenant, payload, "
         "sum(octet_length(payload)) OVER (ORDER BY seq) - octet_length(payload) AS before FROM "
         "(SELECT seq, tenant, payload FROM ngsild.changes WHERE seq > $1 AND seq <> ALL($2::bigint[]) "
         "ORDER BY seq LIMIT $3) l) y WHERE before < $4 ORDER BY seq) c ON true")
PENDING = ("SELECT EXISTS (SELECT 1 FROM ngsild.changes c, ngsild.history_cursor h "
            "WHERE c.seq > h.pos AND c.seq <> ALL(h.done))")
# the last change committed now, when any is not recorded yet (else null)
_TARGET = ("SELECT max(c.seq) FROM ngsild.changes c, ngsild.history_cursor h "
           "WHERE c.seq > h.pos AND c.seq <> ALL(h.done)")
_PENDING_UPTO = ("SELECT EXISTS (SELECT 1 FROM ngsild.changes c, ngsild.history_cursor h "
                 "WHERE c.seq > h.pos AND c.seq <= $1 AND c.seq <> ALL(h.done))")
_STATE = "SELECT pos, done, gaps FROM ngsild.history_cursor"
_SAVE = "UPDATE ngsild.history_cursor SET pos = $1, done = $2, gaps = $3"


@dataclass
class _Tenant:
    """What one batch records in one tenant."""
    rows: HistoryRows = field(default_factory=HistoryRows)
    at: list[str] = field(default_factory=list)  # each row's recording time (its entry's)
    written: dict[str, tuple[list[str], list[str] | None, str]] = field(default_factory=dict)  # types, scopes, first at
    dropped: set[str] = field(default_factory=set)  # entities whose history goes
    marked: dict[str, str] = field(default_factory=dict)  # entities deleted, history kept: deletion time

    def drop(self, entity_id: str) -> None:
        """Forget what earlier entries of the batch recorded for the entity (its history goes)."""
        keep = [k for k, e in enumerate(self.rows.entity) if e != entity_id]
        if len(keep) != len(self.at):
            self.rows = HistoryRows(*([column[k] for k in keep] for column in self.rows.params()))
            self.at = [self.at[k] for k in keep]
        self.written.pop(entity_id, None)
        self.marked.pop(entity_id, None)
        self.dropped.add(entity_id)


def add_entry(batch: _Tenant, entry: dict[str, Any], keep_deleted: bool) -> None:
    """One change entry's effect on the history."""
    if entry.get("history") is False:
        return
    entity_id, at, rows = entry["id"], entry["at"], batch.rows
    before = len(rows)
    if entry["op"] == "delete":
        if not keep_deleted:
            batch.drop(entity_id)
            return
        old = entry.get("old") or {}
        rows.add_removed(entity_id, old, {}, list(old))
        rows.add_scopes(entity_id, entry.get("oldScopes"), None, at)
        batch.marked[entity_id] = at
    else:
        created = bool(entry.get("created"))
        scopes = entry.get("scopes")
        rows.add_change(entity_id, entry.get("old"), entry["new"], entry.get("removed") or [], at,
                        created=created or bool(entry.get("replaced")))
        rows.add_scopes(entity_id, None if created else entry.get("oldScopes", scopes), scopes, at)
        first = batch.written.get(entity_id)
        batch.written[entity_id] = (entry["types"], scopes, first[2] if first else at)
        batch.marked.pop(entity_id, None)
    batch.at.extend([at] * (len(rows) - before))


class Recorder:
    def __init__(self, pool: asyncpg.Pool, tenants: Tenants, *, keep_deleted: bool = False) -> None:
        self.pool = pool
        self.tenants = tenants
        self.keep_deleted = keep_deleted
        self._sql: dict[str, _Statements] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.gaps_pending = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        await cancel(self._task)

    def wake(self, tenant: str = "") -> None:
        self._wake.set()

    async def catch_up(self) -> None:
        """Record every change committed by now (this process's and the others'); not the ones committed
        meanwhile, so that a steady stream of writes cannot keep a temporal request waiting."""
        async with self.pool.acquire() as conn:
            target = await conn.fetchval(_TARGET)
            if target is None:
                return
            await self._step(conn, wait=True)
            while await conn.fetchval(_PENDING_UPTO, target):
                await self._step(conn, wait=True)

    async def _run(self) -> None:
        while True:
            try:
                async with self.pool.acquire() as conn:
                    while await self._step(conn, wait=False):
                        pass
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("history recorder: %s", exc)
                await asyncio.sleep(0.5)
            except Exception:  # a bug must not stop the history for good: log it, retry
                log.exception("history recorder step failed")
                await asyncio.sleep(0.5)
            try:
                await asyncio.wait_for(self._wake.wait(), GAP_POLL if self.gaps_pending else POLL)
                await asyncio.sleep(GATHER)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def _step(self, conn: asyncpg.Connection, *, wait: bool) -> bool:
        """Record one batch of entries; True when it recorded any (there may be more)."""
        async with conn.transaction():
            if wait:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
                return False
            state = await conn.fetchrow(_STATE)
            saved = {int(k): v for k, v in state["gaps"].items()}  # jsonb: decoded by the pool's codec
            pos, done = state["pos"], set(state["done"])
            rows = await conn.fetch(_READ, pos, list(done), BATCH_ROWS, BATCH_BYTES)
            fresh = [r for r in rows if r["seq"] is not None]
            if fresh:
                await self._record(conn, fresh)
            done.update(r["seq"] for r in fresh)
            pos, gaps = advance(pos, done, dict(saved), rows[0]["xmin"], rows[0]["xmax"])
            self.gaps_pending = bool(done)
            if fresh or gaps != saved or pos != state["pos"]:
                await conn.execute(_SAVE, pos, sorted(done), {str(k): v for k, v in gaps.items()})
            return bool(fresh)

    async def _record(self, conn: asyncpg.Connection, rows: list[Any]) -> None:
        batches: dict[str, _Tenant] = {}
        for row in rows:
            batch = batches.setdefault(row["tenant"], _Tenant())
            try:
                entries = orjson.loads(row["payload"])
                for entry in entries:
                    add_entry(batch, entry, self.keep_deleted)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                # an entry we cannot read must not stop the history of everything after it
                log.error("history recorder: change %s skipped, unreadable (%r)", row["seq"], exc)
        for tenant, batch in batches.items():
            try:
                schema = await self.tenants.schema(tenant, create=False)
            except NgsiError:  # the tenant is gone (or never was): nothing to record it in
                log.warning("history recorder: changes of tenant %r skipped: it does not exist", tenant)
                continue
            await self._statements(schema).write(conn, batch)

    def _statements(self, schema: str) -> _Statements:
        found = self._sql.get(schema)
        if found is None:
            found = self._sql[schema] = _Statements(schema)
        return found


def advance(pos: int, done: set[int], gaps: dict[int, int], xmin: int, xmax: int) -> tuple[int, dict[int, int]]:
    """Move ``pos`` over the recorded seqs that follow it (removing them from ``done``) and over the gaps
    that can no longer be filled: every transaction running when the gap was first missed has ended."""
    while done:
        following = pos + 1
        if following in done:
            done.remove(following)
            pos = following
            continue
        recorded = gaps.get(following)
        if recorded is None:
            gaps[following] = xmax
            break
        if xmin < recorded:
            break
        del gaps[following]  # it never existed (a rolled-back write) or was pruned
        pos = following
    return pos, {k: v for k, v in gaps.items() if k > pos}


class _Statements:
    """One tenant schema's recording statements (the validated schema name spliced once)."""

    def __init__(self, schema: str) -> None:
        check_schema_name(schema)
        self.insert = insert_select(schema, 1)  # each row recorded at its entry's time
        rows = ("(SELECT u.id, u.types::text[] AS types, u.scopes::text[] AS scopes, u.c::timestamptz AS c "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(id, types, scopes, c))")
        self.entities = upsert_entities_held(schema, rows, "r.c")
        self.drop = (f"WITH hd AS (DELETE FROM {schema}.attr_instances WHERE entity_id = ANY($1::text[])) "
                     f"DELETE FROM {schema}.temporal_entities WHERE id = ANY($1::text[])")
        self.mark = (f"UPDATE {schema}.temporal_entities t SET deleted_at = u.at::timestamptz "
                     f"FROM unnest($1::text[], $2::text[]) AS u(id, at) WHERE t.id = u.id")

    async def write(self, conn: asyncpg.Connection, batch: _Tenant) -> None:
        # in this order: a deletion's removal precedes what later entries of the batch recorded
        if batch.dropped:
            await conn.execute(self.drop, sorted(batch.dropped))
        if len(batch.rows):
            await conn.execute(self.insert, *batch.rows.params(), batch.at)
        if batch.written:
            ids = sorted(batch.written)
            await conn.execute(self.entities, ids, [array_literal(batch.written[i][0]) for i in ids],
                               [array_literal(batch.written[i][1]) for i in ids], [batch.written[i][2] for i in ids])
        if batch.marked:
            ids = sorted(batch.marked)
            await conn.execute(self.mark, ids, [batch.marked[i] for i in ids])

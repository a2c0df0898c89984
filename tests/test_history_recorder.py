"""The history recorder (``broker.temporal.recorder``): entries applied in order within a batch, gaps waited
for, every change recorded exactly once however many recorders run, deleted entities' history removed or
marked, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from broker.model.entity import SCOPE_IRI, EntityInput
from broker.store.batch import BatchStore
from broker.store.changes import change_entry, encode
from broker.store.entities import EntityStore
from broker.store.tenants import Tenants
from broker.temporal.recorder import Recorder, _Tenant, add_entry, advance

SPEED = "https://ex.org/speed"
TYPE = "https://ex.org/Vehicle"
AT = "2026-11-21T10:00:00.000000Z"


def ts(i: int) -> tuple[str, datetime]:
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment


def vehicle(entity_id: str, speed: int, scopes: list[str] | None = None) -> EntityInput:
    return EntityInput(entity_id, [TYPE], scopes, {SPEED: [{"type": "Property", "value": speed}]})


def created(entity_id: str, at: str = AT) -> dict[str, Any]:
    return change_entry("create", entity_id, [TYPE], at, new={SPEED: [{"type": "Property", "value": 1}]},
                        old=None, removed=[], created=True)


def deleted(entity_id: str, at: str = AT) -> dict[str, Any]:
    return change_entry("delete", entity_id, [TYPE], at, new={}, old={SPEED: [{"type": "Property", "value": 1}]},
                        removed=[SPEED], old_scopes=["/a"])


# ---- pure: order within a batch, gaps ------------------------------------------------------------------------

def test_a_deletion_drops_what_earlier_entries_of_the_batch_recorded() -> None:
    batch = _Tenant()
    add_entry(batch, created("urn:a"), keep_deleted=False)
    add_entry(batch, created("urn:b"), keep_deleted=False)
    add_entry(batch, deleted("urn:a"), keep_deleted=False)
    assert batch.rows.entity == ["urn:b"] and batch.at == [AT]
    assert batch.dropped == {"urn:a"} and set(batch.written) == {"urn:b"}
    add_entry(batch, created("urn:a", "2026-11-21T10:00:01.000000Z"), keep_deleted=False)  # created again
    assert batch.rows.entity == ["urn:b", "urn:a"] and batch.at[-1] == "2026-11-21T10:00:01.000000Z"
    assert batch.written["urn:a"][2] == "2026-11-21T10:00:01.000000Z"


def test_a_deletion_keeping_the_history_adds_markers() -> None:
    batch = _Tenant()
    add_entry(batch, created("urn:a"), keep_deleted=True)
    add_entry(batch, deleted("urn:a", "2026-11-21T10:00:02.000000Z"), keep_deleted=True)
    assert batch.rows.entity == ["urn:a"] * 3 and batch.rows.deleted == [False, True, True]
    assert batch.rows.attr == [SPEED, SPEED, SCOPE_IRI]
    assert batch.marked == {"urn:a": "2026-11-21T10:00:02.000000Z"} and not batch.dropped
    assert batch.at == [AT, "2026-11-21T10:00:02.000000Z", "2026-11-21T10:00:02.000000Z"]


def test_entries_the_temporal_api_recorded_are_skipped() -> None:
    batch = _Tenant()
    add_entry(batch, {**created("urn:a"), "history": False}, keep_deleted=False)
    assert len(batch.rows) == 0 and not batch.written


def test_advance_waits_for_a_gap_until_its_writers_end() -> None:
    done = {12, 13}
    pos, gaps = advance(10, done, {}, xmin=100, xmax=105)
    assert pos == 10 and gaps == {11: 105} and done == {12, 13}  # 11 missing: noted with the xmax of now
    pos, gaps = advance(pos, done, gaps, xmin=104, xmax=110)
    assert pos == 10 and gaps == {11: 105}                      # a writer of then may still hold it
    pos, gaps = advance(pos, done, gaps, xmin=105, xmax=110)
    assert pos == 13 and gaps == {} and done == set()           # they have all ended: 11 never existed
    done = {14, 15}
    assert advance(pos, done, {}, xmin=1, xmax=2) == (15, {})


# ---- against PostgreSQL -------------------------------------------------------------------------------------

async def history(pool: asyncpg.Pool, schema: str, entity_id: str) -> list[tuple[str, Any, bool]]:
    rows = await pool.fetch(f"SELECT attr, inst, deleted_at IS NOT NULL AS deleted FROM {schema}.attr_instances "
                            f"WHERE entity_id = $1 ORDER BY created_at, attr", entity_id)
    return [(r["attr"], r["inst"].get("value"), r["deleted"]) for r in rows]


@pytest.fixture(scope="module")
async def stores(pool: asyncpg.Pool) -> tuple[EntityStore, BatchStore, Tenants]:
    tenants = Tenants(pool)
    entities = EntityStore(pool, tenants)
    return entities, BatchStore(entities), tenants


async def test_core_writes_are_recorded_once_by_concurrent_recorders(pool: asyncpg.Pool, stores: Any) -> None:
    entities, batch, tenants = stores
    await entities.create("rec-once", vehicle("urn:v:1", 1, ["/x"]), *ts(1))
    await batch.bulk("rec-once", [vehicle(f"urn:v:b{i}", i) for i in range(50)], *ts(2), replace=True, op="upsert")
    await batch.bulk("rec-once", [vehicle(f"urn:v:b{i}", 100 + i) for i in range(50)], *ts(3), replace=True,
                     op="upsert")
    recorders = [Recorder(pool, tenants) for _ in range(3)]
    await asyncio.gather(*(r.catch_up() for r in recorders))
    schema = await tenants.schema("rec-once", create=False)
    assert await history(pool, schema, "urn:v:1") == [(SPEED, 1, False), (SCOPE_IRI, ["/x"], False)]
    for i in range(50):
        assert await history(pool, schema, f"urn:v:b{i}") == [(SPEED, i, False), (SPEED, 100 + i, False)]
    te = await pool.fetchrow(f"SELECT types, scopes, created_at FROM {schema}.temporal_entities WHERE id = 'urn:v:1'")
    assert te["types"] == [TYPE] and te["scopes"] == ["/x"] and te["created_at"] == ts(1)[1]
    await entities.delete("rec-once", "urn:v:b0", ts(4)[0])
    await recorders[0].catch_up()
    assert await history(pool, schema, "urn:v:b0") == []
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.temporal_entities WHERE id = 'urn:v:b0'") == 0


async def test_a_change_committed_after_a_later_one_is_recorded(pool: asyncpg.Pool, stores: Any) -> None:
    """The earlier seq commits last: the recorder records the later one, then the earlier once it commits."""
    entities, _, tenants = stores
    await entities.create("rec-gap", vehicle("urn:v:g", 0), *ts(1))
    recorder = Recorder(pool, tenants)
    await recorder.catch_up()
    late = encode([change_entry("update", "urn:v:g", [TYPE], ts(2)[0], old={SPEED: [{"type": "Property", "value": 0}]},
                                new={SPEED: [{"type": "Property", "value": 7, "modifiedAt": ts(2)[0]}]}, removed=[])])
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO ngsild.changes (tenant, payload) VALUES ('rec-gap', $1)", late)
        await entities.create("rec-gap", vehicle("urn:v:h", 3), *ts(3))  # a later seq, committed first
        await recorder.catch_up()
        schema = await tenants.schema("rec-gap", create=False)
        assert await history(pool, schema, "urn:v:h") == [(SPEED, 3, False)]
        assert await history(pool, schema, "urn:v:g") == [(SPEED, 0, False)]
        await tx.commit()
    await recorder.catch_up()
    assert await history(pool, schema, "urn:v:g") == [(SPEED, 0, False), (SPEED, 7, False)]
    await recorder.catch_up()  # nothing recorded twice
    assert await history(pool, schema, "urn:v:g") == [(SPEED, 0, False), (SPEED, 7, False)]
    state = await pool.fetchrow("SELECT pos, done FROM ngsild.history_cursor")
    assert state["pos"] >= await pool.fetchval("SELECT max(seq) FROM ngsild.changes WHERE tenant = 'rec-gap'")


async def test_deleted_entities_keep_their_history_with_markers(pool: asyncpg.Pool, stores: Any) -> None:
    entities, _, tenants = stores
    await entities.create("rec-keep", vehicle("urn:v:k", 5, ["/s"]), *ts(1))
    await entities.delete("rec-keep", "urn:v:k", ts(2)[0])
    await Recorder(pool, tenants, keep_deleted=True).catch_up()
    schema = await tenants.schema("rec-keep", create=False)
    assert await history(pool, schema, "urn:v:k") == [(SPEED, 5, False), (SCOPE_IRI, ["/s"], False),
                                                      (SPEED, None, True), (SCOPE_IRI, None, True)]
    assert await pool.fetchval(f"SELECT deleted_at FROM {schema}.temporal_entities WHERE id = 'urn:v:k'") == ts(2)[1]


@pytest.fixture(scope="module")
def own_dsn(database_dsn: str) -> Any:
    """A database of its own: pruning deletes change-log rows other tests read."""
    from broker.testing import fresh_database
    with fresh_database(database_dsn, "ngsild_prune") as dsn:
        yield dsn


async def test_pruning_keeps_what_the_recorder_has_not_recorded(own_dsn: str) -> None:
    from broker.store import db, schema
    from broker.store.changes import prune
    conn = await db.connect(own_dsn)
    await schema.migrate(conn)
    await conn.close()
    pool = await db.create_pool(own_dsn, 4)
    try:
        tenants = Tenants(pool)
        entities = EntityStore(pool, tenants)
        await entities.create("rec-prune", vehicle("urn:v:p", 1), *ts(1))
        seq = await pool.fetchval("SELECT max(seq) FROM ngsild.changes")
        await pool.execute("INSERT INTO ngsild.dispatch_cursors (part, seq) VALUES (0, $1)", seq)  # notified
        await prune(pool, 0.0)
        assert await pool.fetchval("SELECT count(*) FROM ngsild.changes WHERE seq = $1", seq) == 1  # not recorded
        await Recorder(pool, tenants).catch_up()
        schema_name = await tenants.schema("rec-prune", create=False)
        assert await history(pool, schema_name, "urn:v:p") == [(SPEED, 1, False)]
        assert await pool.fetchval("SELECT pos FROM ngsild.history_cursor") == seq
        await prune(pool, 0.0)
        assert await pool.fetchval("SELECT count(*) FROM ngsild.changes WHERE seq = $1", seq) == 0
    finally:
        await pool.close()


async def test_unreadable_changes_and_unknown_tenants_do_not_stop_the_history(pool: asyncpg.Pool, stores: Any) -> None:
    entities, _, tenants = stores
    await pool.execute("INSERT INTO ngsild.changes (tenant, payload) VALUES ('rec-nobody', $1), ('rec-odd', $2)",
                       encode([created("urn:v:nobody")]), b'[{"op": "update"}]')
    await entities.create("rec-after", vehicle("urn:v:after", 2), *ts(1))
    await Recorder(pool, tenants).catch_up()
    schema = await tenants.schema("rec-after", create=False)
    assert await history(pool, schema, "urn:v:after") == [(SPEED, 2, False)]

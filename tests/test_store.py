"""Storage guarantees, checked against a real PostgreSQL: concurrent writers lose nothing, every write has
its change-log row, batches are atomic, migrations and tenant creation are safe from several processes."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import pytest

from broker.errors import NgsiError
from broker.model import operations as ops
from broker.model.entity import EntityInput
from broker.store import db, schema
from broker.store.batch import BatchStore, NewState, apply_write
from broker.store.entities import EntityStore
from broker.store.tenants import Tenants, schema_name_for

SPEED = "https://ex.org/speed"
TYPE = "https://ex.org/Vehicle"


@pytest.fixture(scope="module")
async def store(pool: asyncpg.Pool) -> EntityStore:
    return EntityStore(pool, Tenants(pool))


def ts(i: int = 0) -> tuple[str, Any]:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment


def vehicle(entity_id: str, speed: int = 0) -> EntityInput:
    return EntityInput(entity_id, [TYPE], None, {SPEED: [{"type": "Property", "value": speed}]})


async def changes_for(pool: asyncpg.Pool, tenant: str, entity_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT payload FROM ngsild.changes WHERE tenant = $1 ORDER BY seq", tenant)
    return [entry for row in rows for entry in orjson.loads(row["payload"]) if entry["id"] == entity_id]


async def test_create_writes_entity_and_change_in_one_statement(store: EntityStore, pool: asyncpg.Pool):
    await store.create("t-create", vehicle("urn:v:c1", 5), *ts())
    row = await store.get("t-create", "urn:v:c1")
    assert row["types"] == [TYPE] and row["attrs"][SPEED][0]["value"] == 5
    [change] = await changes_for(pool, "t-create", "urn:v:c1")
    assert change["op"] == "create" and change["created"] is True and change["old"] is None
    assert change["new"][SPEED][0]["value"] == 5 and change["types"] == [TYPE] and change["removed"] == []
    with pytest.raises(NgsiError) as err:
        await store.create("t-create", vehicle("urn:v:c1", 6), *ts(1))
    assert err.value.error_type == "AlreadyExists"
    assert len(await changes_for(pool, "t-create", "urn:v:c1")) == 1  # the failed create left no trace


async def test_concurrent_partial_updates_lose_nothing(store: EntityStore, pool: asyncpg.Pool):
    """Fifty concurrent read-modify-write increments: optimistic retries must serialise them all."""
    await store.create("t-race", vehicle("urn:v:r1", 0), *ts())

    def increment(row: Any) -> ops.Write:
        value = row["attrs"][SPEED][0]["value"]
        return ops.partial_update(row, SPEED, {"value": value + 1}, ts(1)[0])

    await asyncio.gather(*(store.modify("t-race", "urn:v:r1", "partialUpdate", increment, *ts(1))
                           for _ in range(50)))
    row = await store.get("t-race", "urn:v:r1")
    assert row["attrs"][SPEED][0]["value"] == 50
    assert row["version"] == 51
    changes = await changes_for(pool, "t-race", "urn:v:r1")
    assert len(changes) == 51
    # each update's "old" value is exactly the previous update's "new": a gap-free history
    olds = sorted(c["old"][SPEED][0]["value"] for c in changes[1:])
    assert olds == list(range(50))
    assert sorted(c["new"][SPEED][0]["value"] for c in changes[1:]) == list(range(1, 51))


async def test_modify_missing_entity_is_404_and_writes_nothing(store: EntityStore, pool: asyncpg.Pool):
    await store.create("t-missing", vehicle("urn:v:m0"), *ts())
    with pytest.raises(NgsiError) as err:
        await store.modify("t-missing", "urn:v:nope", "merge", lambda row: ops.Write([], None), *ts())
    assert err.value.status == 404
    assert await changes_for(pool, "t-missing", "urn:v:nope") == []


async def test_nonexistent_tenant_read(store: EntityStore):
    with pytest.raises(NgsiError) as err:
        await store.get("no-such-tenant-ever", "urn:x:1")
    assert err.value.error_type == "NonexistentTenant" and err.value.status == 404


async def test_batch_is_atomic_with_one_change_row(store: EntityStore, pool: asyncpg.Pool):
    batch = BatchStore(store)
    stamp = ts()

    def create(entity: EntityInput):
        def rule(current):
            if current is not None:
                raise NgsiError("AlreadyExists", "exists")
            return NewState(entity.types, entity.scopes, ops.new_entity_attrs(entity, stamp[0]), None, "create")
        return rule

    await store.create("t-batch", vehicle("urn:v:b-existing"), *stamp)
    items = [(f"urn:v:b{i}", create(vehicle(f"urn:v:b{i}", i))) for i in range(200)]
    items.append(("urn:v:b-existing", create(vehicle("urn:v:b-existing"))))
    outcome = await batch.run("t-batch", items, *stamp, create_tenant=False)
    assert len(outcome.success) == 200 and [e for e, _ in outcome.errors] == ["urn:v:b-existing"]
    assert len(outcome.created) == 200
    rows = await pool.fetch("SELECT payload FROM ngsild.changes WHERE tenant = 't-batch'")
    assert sorted(len(orjson.loads(r["payload"])) for r in rows) == [1, 200]  # the single create, then one batch row
    count = await pool.fetchval(f"SELECT count(*) FROM {schema_name_for('t-batch')}.entities")
    assert count == 201


async def test_batch_items_on_one_id_compose_in_order(store: EntityStore):
    batch = BatchStore(store)
    stamp = ts()

    def upsert_speed(speed: int):
        def rule(current):
            entity = vehicle("urn:v:twice", speed)
            if current is None:
                return NewState(entity.types, None, ops.new_entity_attrs(entity, stamp[0]), None, "upsert")
            return apply_write(current, ops.append(current, entity, stamp[0]), "upsert")
        return rule

    outcome = await batch.run("t-batch2", [("urn:v:twice", upsert_speed(1)), ("urn:v:twice", upsert_speed(2))],
                              *stamp, create_tenant=True)
    assert outcome.created == ["urn:v:twice"] and len(outcome.success) == 2
    row = await store.get("t-batch2", "urn:v:twice")
    assert row["attrs"][SPEED][0]["value"] == 2


async def test_concurrent_batches_on_overlapping_ids_do_not_deadlock(store: EntityStore):
    batch = BatchStore(store)
    stamp = ts()

    def bump(current):
        entity = vehicle("x", 1)
        if current is None:
            return NewState(entity.types, None, ops.new_entity_attrs(entity, stamp[0]), None, "upsert")
        value = current["attrs"][SPEED][0]["value"]
        return apply_write(current, ops.append(current, vehicle("x", value + 1), stamp[0]), "upsert")

    ids = [f"urn:v:o{i}" for i in range(20)]
    runs = [batch.run("t-overlap", [(i, bump) for i in (ids if n % 2 else list(reversed(ids)))], *stamp,
                      create_tenant=True) for n in range(8)]
    await asyncio.gather(*runs)
    for entity_id in ids:
        row = await store.get("t-overlap", entity_id)
        assert row["attrs"][SPEED][0]["value"] == 8  # created once (1) then bumped by the 7 other batches


async def test_concurrent_one_entity_batches_lose_nothing(store: EntityStore, pool: asyncpg.Pool):
    """Batches of one entity take the optimistic path; thirty at once on one new id, each creating it or
    bumping its value, must serialise: one creation, thirty change entries, the final value thirty. A missed
    optimistic write is retried, then handed to the locking path (the version check keeps both exact)."""
    batch = BatchStore(store)
    stamp = ts()

    def bump(current):
        if current is None:
            entity = vehicle("urn:v:busy", 1)
            return NewState(entity.types, None, ops.new_entity_attrs(entity, stamp[0]), None, "upsert")
        value = current["attrs"][SPEED][0]["value"]
        return apply_write(current, ops.append(current, vehicle("urn:v:busy", value + 1), stamp[0]), "upsert")

    outcomes = await asyncio.gather(*(batch.run("t-single", [("urn:v:busy", bump)], *stamp, create_tenant=True)
                                      for _ in range(30)))
    assert sum(len(o.created) for o in outcomes) == 1 and all(o.success == ["urn:v:busy"] for o in outcomes)
    assert (await store.get("t-single", "urn:v:busy"))["attrs"][SPEED][0]["value"] == 30
    changes = await changes_for(pool, "t-single", "urn:v:busy")
    assert len(changes) == 30 and sum(c["created"] for c in changes) == 1
    olds = sorted(c["old"][SPEED][0]["value"] for c in changes if not c["created"])
    assert olds == list(range(1, 30))  # every write replaced the state the previous one left


async def test_one_entity_batch_deletes_and_creates_then_deletes(store: EntityStore, pool: asyncpg.Pool):
    batch = BatchStore(store)
    stamp = ts()
    await store.create("t-single2", vehicle("urn:v:gone", 3), *stamp)

    def delete(current):
        if current is None:
            raise NgsiError("ResourceNotFound", "no such entity", status=404)
        return None

    outcome = await batch.run("t-single2", [("urn:v:gone", delete)], *stamp, create_tenant=False)
    assert outcome.success == ["urn:v:gone"] and await store.get("t-single2", "urn:v:gone") is None
    [_, deleted] = await changes_for(pool, "t-single2", "urn:v:gone")
    assert deleted["op"] == "delete" and deleted["old"][SPEED][0]["value"] == 3
    outcome = await batch.run("t-single2", [("urn:v:gone", delete)], *stamp, create_tenant=False)
    assert [e for e, _ in outcome.errors] == ["urn:v:gone"] and outcome.success == []

    def create(current):
        entity = vehicle("urn:v:brief", 1)
        return NewState(entity.types, None, ops.new_entity_attrs(entity, stamp[0]), None, "upsert")

    outcome = await batch.run("t-single2", [("urn:v:brief", create), ("urn:v:brief", delete)], *stamp,
                              create_tenant=False)
    assert outcome.success == ["urn:v:brief", "urn:v:brief"] and await store.get("t-single2", "urn:v:brief") is None
    assert [c["op"] for c in await changes_for(pool, "t-single2", "urn:v:brief")] == ["upsert", "delete"]


async def test_migrations_and_tenant_creation_are_safe_concurrently(database_dsn: str, pool: asyncpg.Pool):
    conns = [await db.connect(database_dsn) for _ in range(4)]
    try:
        await asyncio.gather(*(schema.migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    registries = [Tenants(pool) for _ in range(6)]
    names = await asyncio.gather(*(t.schema("urn:ngsi-ld:tenant:concurrent", create=True) for t in registries))
    assert len(set(names)) == 1
    assert await pool.fetchval("SELECT count(*) FROM ngsild.tenants WHERE name = $1",
                               "urn:ngsi-ld:tenant:concurrent") == 1


async def test_documents_and_change_log_use_lz4_where_the_server_has_it(store: EntityStore, pool: asyncpg.Pool):
    await store.tenants.schema("t-lz4", create=True)
    has_lz4 = await pool.fetchval("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                  "WHERE name = 'default_toast_compression'")
    expected = "l" if has_lz4 else ""
    methods = await pool.fetch("SELECT attrelid::regclass::text AS rel, attcompression::text AS method "
                               "FROM pg_attribute WHERE (attrelid, attname) IN "
                               "(('ngsild.changes'::regclass, 'payload'), ($1::regclass, 'attrs'))",
                               f"{schema_name_for('t-lz4')}.entities")
    assert len(methods) == 2 and all(row["method"] == expected for row in methods), [dict(r) for r in methods]


async def test_bulk_create_and_replace(store: EntityStore, pool: asyncpg.Pool):
    """The single-statement bulk path: create reports existing ids, replace swaps attribute sets, and one
    change-log row per batch carries created/old/removed as PostgreSQL built them."""
    batch = BatchStore(store)
    name = "https://ex.org/name"
    first = [EntityInput(f"urn:v:k{i}", [TYPE], None, {SPEED: [{"type": "Property", "value": i}],
                                                        name: [{"type": "Property", "value": "n"}]})
             for i in range(3)]
    out = await batch.bulk("t-bulk", first, *ts(), replace=False, op="create")
    assert out.created == ["urn:v:k0", "urn:v:k1", "urn:v:k2"] and not out.errors
    again = await batch.bulk("t-bulk", [vehicle("urn:v:k0"), vehicle("urn:v:k9")], *ts(1), replace=False,
                             op="create")
    assert again.created == ["urn:v:k9"] and [e for e, _ in again.errors] == ["urn:v:k0"]
    replaced = await batch.bulk("t-bulk", [vehicle("urn:v:k1", 42), vehicle("urn:v:k1", 43)], *ts(2),
                                replace=True, op="upsert")
    assert replaced.created == [] and replaced.success == ["urn:v:k1", "urn:v:k1"]
    row = await store.get("t-bulk", "urn:v:k1")
    assert row["attrs"] == {SPEED: [{"type": "Property", "value": 43, "modifiedAt": ts(2)[0]}]}
    assert row["created_at"] == ts()[1]  # the entity keeps its creation time
    entry = (await changes_for(pool, "t-bulk", "urn:v:k1"))[-1]
    assert entry["created"] is False and entry["removed"] == [name]
    assert entry["old"][SPEED][0]["value"] == 1 and entry["new"][SPEED][0]["value"] == 43


async def test_concurrent_one_entity_bulk_writes(store: EntityStore, pool: asyncpg.Pool):
    """One-entity bulk writes take the optimistic path: of twenty concurrent creates of one id exactly one
    succeeds; twenty concurrent replaces each log the state the previous one left."""
    batch = BatchStore(store)
    creates = await asyncio.gather(*(batch.bulk("t-bulk1", [vehicle("urn:v:once", i)], *ts(), replace=False,
                                                op="create") for i in range(20)))
    assert sum(len(o.created) for o in creates) == 1
    assert sum(len(o.errors) for o in creates) == 19
    assert all(e.error_type == "AlreadyExists" for o in creates for _, e in o.errors)
    replaces = await asyncio.gather(*(batch.bulk("t-bulk1", [vehicle("urn:v:once", 100 + i)], *ts(1),
                                                 replace=True, op="upsert") for i in range(20)))
    assert all(o.success == ["urn:v:once"] and not o.created for o in replaces)
    changes = (await changes_for(pool, "t-bulk1", "urn:v:once"))[1:]
    assert len(changes) == 20 and not any(c["created"] for c in changes)
    values = [(c["old"][SPEED][0]["value"], c["new"][SPEED][0]["value"]) for c in changes]
    assert all(values[k][1] == values[k + 1][0] for k in range(19))  # a chain: no write lost its predecessor
    assert (await store.get("t-bulk1", "urn:v:once"))["attrs"][SPEED][0]["value"] == values[-1][1]


def test_schema_names_are_safe_and_distinct():
    names = {schema_name_for(t) for t in ("a", "A", "a b", "urn:ngsi-ld:tenant:x", "x" * 300, "'; DROP")}
    assert len(names) == 6
    assert all(schema.check_schema_name(n) == n for n in names)
    with pytest.raises(ValueError):
        schema.check_schema_name('x"; drop table')

"""The one-statement partial update (``EntityStore.patch_property``) against the general path it shortcuts
(read, ``operations.partial_update``, conditional write): for generated stored attributes and plain fragments,
both must leave the same entity and log the same change entry; where the shortcut declines, it writes nothing."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import asyncpg
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from broker.errors import NgsiError
from broker.model import operations as ops
from broker.store import db as store_db, schema
from broker.store.entities import EntityStore
from broker.store.tenants import Tenants

TENANT = "patch-property"
SPEED = "https://ex.org/speed"
SUB = "https://ex.org/accuracy"
TYPE = "https://ex.org/Vehicle"
BORN = datetime(2024, 1, 1, 8, 30, 0, 5, tzinfo=timezone.utc)


class Stores:
    """An EntityStore on a private event loop (hypothesis drives sync tests)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool: asyncpg.Pool = self.run(self._pool(dsn))
        self.store = EntityStore(self.pool, Tenants(self.pool))
        self.schema = self.run(self.store.tenants.schema(TENANT, create=True))
        self.count = 0

    @staticmethod
    async def _pool(dsn: str) -> asyncpg.Pool:
        conn = await store_db.connect(dsn)
        await schema.migrate(conn)
        await conn.close()
        return await store_db.create_pool(dsn, 4)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def entity(self, attrs: dict[str, Any]) -> str:
        """A stored entity with exactly these attributes (instances as given, sysAttrs included)."""
        self.count += 1
        entity_id = f"urn:ngsi-ld:Vehicle:p{self.count}"
        self.run(self.pool.execute(
            f"INSERT INTO {self.schema}.entities (id, types, scopes, created_at, modified_at, attrs) "
            "VALUES ($1, $2, $3, $4, $4, $5::text::jsonb)", entity_id, [TYPE], ["/road/a1"], BORN,
            orjson.dumps(attrs).decode()))
        return entity_id

    def state(self, entity_id: str) -> tuple[Any, ...]:
        row = self.run(self.pool.fetchrow(f"SELECT modified_at, version, attrs FROM {self.schema}.entities "
                                          "WHERE id = $1", entity_id))
        return row["modified_at"], row["version"], row["attrs"]

    def changes(self, entity_id: str) -> list[dict[str, Any]]:
        rows = self.run(self.pool.fetch("SELECT payload FROM ngsild.changes WHERE tenant = $1 ORDER BY seq", TENANT))
        return [e for r in rows for e in orjson.loads(r["payload"]) if e["id"] == entity_id]

    def close(self) -> None:
        self.run(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="module")
def stores(database_dsn: str) -> Iterator[Stores]:
    stores = Stores(database_dsn)
    yield stores
    stores.close()


def _moment(i: int) -> str:
    return ops.iso(BORN + timedelta(seconds=i, microseconds=i))


times = st.integers(0, 10_000).map(_moment)
# no U+0000: PostgreSQL's jsonb cannot hold it, and the API refuses it before any write (http.read_json)
scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(),
                    st.text(st.characters(exclude_characters="\x00"), max_size=8))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]), scalars))


@st.composite
def default_instances(draw: st.DrawFn) -> dict[str, Any]:
    inst: dict[str, Any] = {"type": "Property", "value": draw(values)}
    for member, strategy in (("unitCode", st.sampled_from(["KMH", "MTR"])), ("observedAt", times),
                             ("createdAt", times), ("modifiedAt", times),
                             (SUB, st.builds(lambda v: {"type": "Property", "value": v}, scalars))):
        if draw(st.booleans()):
            inst[member] = draw(strategy)
    return inst


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    """The stored ``speed``: usually a Property default instance (then datasetId instances), sometimes not
    eligible (another type, no default instance, no attribute at all)."""
    shape = draw(st.sampled_from(["default", "default", "default", "relationship", "datasets-only", "missing"]))
    others = [{"type": "Property", "value": i, "datasetId": f"urn:ngsi-ld:Dataset:{i}"}
              for i in range(draw(st.integers(0, 2)))]
    if shape == "missing":
        return {}
    if shape == "relationship":
        return {SPEED: [{"type": "Relationship", "object": "urn:ngsi-ld:Road:1"}, *others]}
    if shape == "datasets-only":
        return {SPEED: others or [{"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:x"}]}
    return {SPEED: [draw(default_instances()), *others]}


@st.composite
def patches(draw: st.DrawFn) -> dict[str, Any]:
    patch: dict[str, Any] = {"value": draw(values)}
    if draw(st.booleans()):
        patch["type"] = "Property"
    if draw(st.booleans()):
        patch["observedAt"] = draw(times)
    if draw(st.booleans()):
        patch["unitCode"] = draw(st.sampled_from(["KMH", "CEL"]))
    return patch


@settings(max_examples=60)
@given(attrs=attributes(), patch=patches(), at=st.integers(10_001, 20_000).map(_moment))
def test_one_statement_partial_update_equals_the_general_path(stores: Stores, attrs: dict[str, Any],
                                                               patch: dict[str, Any], at: str) -> None:
    assert ops.is_plain_property_patch(patch)
    fast_id, general_id = stores.entity(attrs), stores.entity(attrs)
    before = stores.state(fast_id)
    now_dt = datetime.fromisoformat(at.replace("Z", "+00:00"))
    applied = stores.run(stores.store.patch_property(TENANT, fast_id, SPEED, copy.deepcopy(patch), at, now_dt))
    try:
        stores.run(stores.store.modify(TENANT, general_id, "partialUpdate",
                                       lambda row: ops.partial_update(row, SPEED, copy.deepcopy(patch), at), at, now_dt))
        general_ok = True
    except NgsiError:
        general_ok = False
    eligible = bool(attrs) and attrs[SPEED][0]["type"] == "Property" and "datasetId" not in attrs[SPEED][0]
    assert applied == eligible
    if not applied:  # declined: nothing written, no change logged
        assert stores.state(fast_id) == before and stores.changes(fast_id) == []
        return
    assert general_ok
    assert stores.state(fast_id) == stores.state(general_id)
    [fast], [general] = stores.changes(fast_id), stores.changes(general_id)
    assert fast == {**general, "id": fast_id}


def test_plain_patches_only() -> None:
    assert ops.is_plain_property_patch({"value": 1, "observedAt": "2024-01-01T00:00:00Z", "unitCode": "KMH"})
    assert ops.is_plain_property_patch({"type": "Property", "value": {"a": 1}})
    assert not ops.is_plain_property_patch({"observedAt": "2024-01-01T00:00:00Z"})  # no value
    assert not ops.is_plain_property_patch({"value": "urn:ngsi-ld:null"})  # a deletion
    assert not ops.is_plain_property_patch({"value": 1, "unitCode": None})  # a member deletion
    assert not ops.is_plain_property_patch({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [0, 0]}})
    assert not ops.is_plain_property_patch({"value": 1, SUB: {"type": "Property", "value": 2}})  # sub-attribute
    assert not ops.is_plain_property_patch({"value": 1, "datasetId": "urn:ngsi-ld:Dataset:1"})


def test_concurrent_one_statement_updates_lose_nothing(stores: Stores) -> None:
    """Concurrent shortcuts on one entity serialise on its row: every write is logged with the state it
    replaced, and the last one stays."""
    entity_id = stores.entity({SPEED: [{"type": "Property", "value": 0}]})

    async def burst() -> list[bool]:
        return await asyncio.gather(*(stores.store.patch_property(
            TENANT, entity_id, SPEED, {"value": i}, _moment(20_000 + i), BORN + timedelta(seconds=20_000 + i))
            for i in range(1, 21)))

    assert all(stores.run(burst()))
    changes = stores.changes(entity_id)
    assert len(changes) == 20 and stores.state(entity_id)[1] == 21  # version: 1 + 20 writes
    chain = [(c["old"][SPEED][0]["value"], c["new"][SPEED][0]["value"]) for c in changes]
    # each write replaced exactly the value the previous one left: a chain 0 -> ... -> last
    assert chain[0][0] == 0 and all(chain[k][1] == chain[k + 1][0] for k in range(19))
    assert stores.state(entity_id)[2][SPEED][0]["value"] == chain[-1][1]

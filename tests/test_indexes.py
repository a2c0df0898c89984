"""Adaptive indexes end to end: queries on an attribute make the broker build its indexes in the background,
after which the same queries are answered from them (and answer the same)."""

from __future__ import annotations

import asyncio
import os
import uuid

import aiohttp
import asyncpg
import pytest

from broker.store.indexes import IndexAdvisor, index_name
from broker.query.fast import index_specs, literal

API = "/ngsi-ld/v1"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
pytestmark = pytest.mark.skipif(bool(os.environ.get("BROKER_URL")), reason="needs the broker's own database")


async def _indexes(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = 'tenant_default' AND i.indisvalid")
        return {r["relname"] for r in rows}
    finally:
        await conn.close()


async def test_queries_build_their_indexes(http: aiohttp.ClientSession, broker_url: str, database_dsn: str):
    attr = f"level{uuid.uuid4().hex[:8]}"
    entities = [{"id": f"urn:ngsi-ld:Tank:{uuid.uuid4().hex}", "type": "Tank", attr: n} for n in range(40)]
    entities.append({"id": f"urn:ngsi-ld:Tank:{uuid.uuid4().hex}", "type": "Tank",
                     attr: [{"type": "Property", "value": 7}, {"type": "Property", "value": 39,
                                                                "datasetId": "urn:ds:b"}]})
    # Tank as a later type: once the indexes exist the query is one branch (where_branches) and must find it
    entities.append({"id": f"urn:ngsi-ld:Tank:{uuid.uuid4().hex}", "type": ["Reservoir", "Tank"], attr: 38})
    async with http.post(broker_url + API + "/entityOperations/upsert", json=entities) as resp:
        assert resp.status == 201, await resp.text()
    wanted = {index_name(s) for s in index_specs(DEFAULT + attr, literal(DEFAULT + attr))}
    assert not wanted & await _indexes(database_dsn)

    async def query() -> set[str]:
        params = {"type": "Tank", "q": f"{attr}>=38", "limit": "100", "count": "true"}
        async with http.get(broker_url + API + "/entities", params=params) as resp:
            assert resp.status == 200, await resp.text()
            found = {e["id"] for e in await resp.json()}
            assert resp.headers["NGSILD-Results-Count"] == str(len(found))
            return found

    # 38, 39, the one whose second instance is 39, the Reservoir
    expected = {e["id"] for e in entities[38:]}
    for _ in range(3):  # the default threshold
        assert await query() == expected
    for _ in range(100):
        if wanted <= await _indexes(database_dsn):
            break
        await asyncio.sleep(0.1)
    assert wanted <= await _indexes(database_dsn), "the broker did not build the indexes"
    assert await query() == expected


def test_advisor_knows_which_indexes_are_ready():
    advisor = IndexAdvisor("postgresql://unused")
    specs = index_specs("https://x/y", "'https://x/y'")
    assert not advisor.ready("tenant_default", specs)
    advisor._built["tenant_default"] = {index_name(specs[0])}
    assert advisor.ready("tenant_default", specs[:1]) and not advisor.ready("tenant_default", specs)


async def test_advisor_threshold_zero_builds_nothing():
    advisor = IndexAdvisor("postgresql://unused", threshold=0)
    advisor.start()
    advisor.note("tenant_default", index_specs("https://x/y", "'https://x/y'"))
    assert advisor._queue.empty()
    await advisor.close()

"""The dispatcher reads the change-log payloads of the tenants that have subscriptions only, and fetches
those of a tenant whose first subscription came in with the changes it just read."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from broker.notify import dispatcher as dispatch
from broker.store.changes import change_entry, encode
from broker.store.tenants import Tenants


class Watching:
    """A registry stand-in: only the watched tenants are used by the reading."""

    def __init__(self) -> None:
        self.tenants: list[str] = []

    @property
    def watched(self) -> set[str]:
        return set(self.tenants)


async def _log(pool: asyncpg.Pool, tenant: str, entity_id: str) -> int:
    payload = encode([change_entry("create", entity_id, [], "2026-01-01T00:00:00Z", new={}, old=None, removed=[],
                                   created=True)])
    return await pool.fetchval("INSERT INTO ngsild.changes (tenant, payload) VALUES ($1, $2) RETURNING seq",
                               tenant, payload)


async def test_payloads_are_read_for_watched_tenants_only(pool: asyncpg.Pool) -> None:
    start = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM ngsild.changes")
    quiet = await _log(pool, "quiet-tenant", "urn:ngsi-ld:T:quiet")
    watched = await _log(pool, "busy-tenant", "urn:ngsi-ld:T:busy")
    rows = {r["seq"]: r for r in await pool.fetch(dispatch._READ, start, dispatch.BATCH, ["busy-tenant"])}
    assert rows[quiet]["payload"] is None
    assert orjson.loads(rows[watched]["payload"])[0]["id"] == "urn:ngsi-ld:T:busy"


async def test_a_tenant_that_gains_its_first_subscription_gets_its_payloads_fetched(pool: asyncpg.Pool) -> None:
    registry: Any = Watching()
    reader = dispatch.Dispatcher("", pool, Tenants(pool), registry, store=None)  # type: ignore[arg-type]
    start = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM ngsild.changes")
    first = await _log(pool, "new-tenant", "urn:ngsi-ld:T:1")
    other = await _log(pool, "other-tenant", "urn:ngsi-ld:T:2")
    rows = await pool.fetch(dispatch._READ, start, dispatch.BATCH, list(registry.watched))
    assert all(r["payload"] is None for r in rows if r["seq"] is not None)
    registry.tenants = ["new-tenant"]  # the registry sync brought the tenant's first subscription
    ready = await reader._with_payloads([r for r in rows if r["seq"] is not None])
    assert [r["seq"] for r in ready] == [first]  # the other tenant's change cannot notify: left out
    assert orjson.loads(ready[0]["payload"])[0]["id"] == "urn:ngsi-ld:T:1"
    assert other not in [r["seq"] for r in ready]

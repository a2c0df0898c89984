"""Linked Entity retrieval (GS CIM 009 4.5.23): ``fetch_by_ids`` reads a batch of one tenant's entities by
id, for the ``join`` of Retrieve / Query Entities."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from .entities import COLUMNS
from .tenants import Tenants

BATCH = 1000


async def fetch_by_ids(pool: asyncpg.Pool, tenants: Tenants, tenant: str, ids: Iterable[str]
                       ) -> dict[str, asyncpg.Record]:
    """The entities among ``ids`` that exist (in batches of ``BATCH`` ids), by id."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    schema = await tenants.schema(tenant, create=False)
    found: dict[str, asyncpg.Record] = {}
    for start in range(0, len(wanted), BATCH):
        rows = await pool.fetch(f"SELECT {COLUMNS} FROM {schema}.entities WHERE id = ANY($1::text[])",
                                wanted[start:start + BATCH])
        found.update((row["id"], row) for row in rows)
    return found

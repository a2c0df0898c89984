"""``ngsild.registrations``: one row per Context Source Registration of every tenant (the stored form of
``broker.registrations.model`` and the @context it was written with)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from ..errors import already_exists
from ..query.geo import GeoQuery
from ..query.geo_sql import geometry_test

_COLUMNS = "id, body, context, created_at, modified_at"


async def create(pool: asyncpg.Pool, tenant: str, reg_id: str, body: dict[str, Any], context: Any,
                 at: datetime) -> None:
    done = await pool.fetchval(
        "INSERT INTO ngsild.registrations (tenant, id, body, context, created_at, modified_at) "
        "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING RETURNING 1", tenant, reg_id, body, context, at)
    if done is None:
        raise already_exists(f"registration {reg_id} already exists")


async def get(pool: asyncpg.Pool, tenant: str, reg_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {_COLUMNS} FROM ngsild.registrations WHERE tenant = $1 AND id = $2",
                               tenant, reg_id)


async def replace(pool: asyncpg.Pool, tenant: str, reg_id: str, body: dict[str, Any], at: datetime,
                  expected_modified: datetime) -> bool:
    """Store the patched body if nobody changed the row since it was read (False: re-read and retry)."""
    done = await pool.fetchval(
        "UPDATE ngsild.registrations SET body = $3, modified_at = $4 WHERE tenant = $1 AND id = $2 "
        "AND modified_at = $5 RETURNING 1", tenant, reg_id, body, at, expected_modified)
    return done is not None


async def delete(pool: asyncpg.Pool, tenant: str, reg_id: str) -> bool:
    done = await pool.fetchval("DELETE FROM ngsild.registrations WHERE tenant = $1 AND id = $2 RETURNING 1",
                               tenant, reg_id)
    return done is not None


async def candidates(pool: asyncpg.Pool, tenant: str, geo: GeoQuery | None = None, member: str = "location", *,
                     postgis: bool = False) -> list[asyncpg.Record]:
    """The tenant's registrations in id order; with ``geo``, only those whose ``member`` (a GeoJSON geometry)
    satisfies it."""
    if geo is None:
        return await pool.fetch(f"SELECT {_COLUMNS} FROM ngsild.registrations WHERE tenant = $1 ORDER BY id",
                                tenant)
    args: list[Any] = [tenant, member]
    test = geometry_test(geo, "(body -> $2::text)", args, postgis=postgis)
    return await pool.fetch(f"SELECT {_COLUMNS} FROM ngsild.registrations WHERE tenant = $1 AND body ? $2::text "
                            f"AND {test} ORDER BY id", *args)

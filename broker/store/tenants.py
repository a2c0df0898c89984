"""Tenants: the ``NGSILD-Tenant`` header value mapped to its own PostgreSQL schema.

A tenant is any non-empty string. Its schema name is derived from it (a readable slug plus a hash, so
distinct tenants never collide and the name is a safe identifier); the registry row in ``ngsild.tenants`` is
the source of truth, and each process caches what it has seen. A tenant is created on its first write, under
the migration advisory lock, so concurrent first writes from several processes create it once.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

import asyncpg

from ..errors import NgsiError
from ..temporal import tables
from . import schema as schema_mod

DEFAULT_TENANT = ""
DEFAULT_SCHEMA = "tenant_default"
MAX_TENANT_LENGTH = 256


def schema_name_for(tenant: str) -> str:
    if tenant == DEFAULT_TENANT:
        return DEFAULT_SCHEMA
    slug = re.sub(r"[^a-z0-9]+", "_", tenant.lower()).strip("_")[:32]
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:10]
    return schema_mod.check_schema_name(f"t_{slug}_{digest}" if slug else f"t_{digest}")


def check_tenant(tenant: str) -> str:
    if len(tenant) > MAX_TENANT_LENGTH or any(ord(c) < 32 for c in tenant):
        raise NgsiError("BadRequestData", f"invalid NGSILD-Tenant header (at most {MAX_TENANT_LENGTH} printable "
                                          "characters)")
    return tenant


class Tenants:
    """Maps tenant names to schema names, creating tenants on demand."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: dict[str, str] = {}

    async def schema(self, tenant: str, *, create: bool) -> str:
        """The tenant's schema; ``create`` makes it exist, otherwise a missing tenant is NonexistentTenant."""
        found = self._known.get(tenant)
        if found is not None:
            return found
        found = await self._pool.fetchval("SELECT schema_name FROM ngsild.tenants WHERE name = $1", tenant)
        if found is None:
            if not create:
                raise NgsiError("NonexistentTenant", f"tenant {tenant!r} does not exist")
            found = await self._create(tenant)
            async with self._pool.acquire() as conn:  # its history partitions, before its first write lands
                await tables.maintain(conn, found, datetime.now(timezone.utc), 0)
        self._known[tenant] = found
        return found

    async def schemas(self) -> list[str]:
        return [r["schema_name"] for r in await self._pool.fetch("SELECT schema_name FROM ngsild.tenants")]

    async def names(self) -> list[str]:
        return [r["name"] for r in await self._pool.fetch("SELECT name FROM ngsild.tenants ORDER BY name")]

    async def _create(self, tenant: str) -> str:
        name = schema_name_for(tenant)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", schema_mod.MIGRATION_LOCK_KEY)
            existing = await conn.fetchval("SELECT schema_name FROM ngsild.tenants WHERE name = $1", tenant)
            if existing is not None:
                return existing
            await conn.execute("INSERT INTO ngsild.tenants (name, schema_name) VALUES ($1, $2)", tenant, name)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
            await schema_mod.migrate_tenant(conn, name, 0)
        return name

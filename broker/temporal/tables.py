"""The history tables of a tenant, and their monthly partitions.

``attr_instances`` holds one row per attribute instance ever written, range-partitioned by month on ``at``
(the instance's ``observedAt`` when it has one, else the time it was recorded: the time a temporal query
filters on by default, so a window reads only its months' partitions). Typed columns beside the instance
document: ``num`` is the value of a numeric Property, so sums and averages run in SQL; ``observed_at``,
``created_at`` (when recorded), ``modified_at`` (changed through the temporal API), ``deleted_at``
(a deletion marker). The index (entity_id, attr, at) serves windows, lastN (a backward scan) and the
deletion of an entity's history.

``temporal_entities`` holds the entities that have a history: types and scopes (type and scope queries),
created_at, and deleted_at when the entity was deleted while its history is kept.

Partitions: a DEFAULT partition takes any row whose month has no partition yet, so writes never run DDL.
The maintenance task (``maintain``) creates the months ahead of now (and the previous one), moving the rows
the default partition holds for a month into its new partition, and drops the partitions that end before
the retention. Rows in the default partition past the retention are deleted.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg


log = logging.getLogger(__name__)

MAINTENANCE_LOCK_KEY = 7_260_431_921

TENANT_MIGRATION = """
CREATE TABLE {schema}.temporal_entities (
    id text COLLATE "C" PRIMARY KEY,
    types text[] NOT NULL,
    scopes text[],
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX temporal_entities_type ON {schema}.temporal_entities ((types[1]), id);
CREATE TABLE {schema}.attr_instances (
    entity_id text COLLATE "C" NOT NULL,
    attr text COLLATE "C" NOT NULL,
    dataset_id text COLLATE "C",
    instance_id uuid NOT NULL DEFAULT gen_random_uuid(),
    at timestamptz NOT NULL,
    observed_at timestamptz,
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    deleted_at timestamptz,
    num float8,
    inst jsonb NOT NULL
) PARTITION BY RANGE (at);
CREATE TABLE {schema}.attr_instances_default PARTITION OF {schema}.attr_instances DEFAULT;
CREATE INDEX attr_instances_window ON {schema}.attr_instances (entity_id, attr, at);
"""


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=timezone.utc)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def check_schema_name(name: str) -> str:
    from ..store.schema import check_schema_name as check  # store.schema imports this module's migration

    return check(name)


def partition_name(schema: str, year: int, month: int) -> str:
    return f"{check_schema_name(schema)}.attr_instances_y{year:04d}m{month:02d}"


async def create_month(conn: asyncpg.Connection, schema: str, year: int, month: int) -> bool:
    """Create the partition of one month (False if it exists), taking over the default partition's rows of
    that month. Runs in one transaction under the maintenance lock."""
    name = partition_name(schema, year, month)
    start = month_start(year, month)
    end = month_start(*add_months(year, month, 1))
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MAINTENANCE_LOCK_KEY)
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
        if exists:
            return False
        parent = f"{schema}.attr_instances"
        default = f"{schema}.attr_instances_default"
        await conn.execute(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        await conn.execute(f"WITH moved AS (DELETE FROM {default} WHERE at >= $1 AND at < $2 RETURNING *) "
                           f"INSERT INTO {name} SELECT * FROM moved", start, end)
        # literal bounds: ATTACH takes no parameters (the values are our own datetimes, not user input)
        await conn.execute(f"ALTER TABLE {parent} ATTACH PARTITION {name} "
                           f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
    return True


async def drop_before(conn: asyncpg.Connection, schema: str, cutoff: datetime) -> int:
    """Drop the month partitions that end at or before ``cutoff``; delete older default-partition rows."""
    check_schema_name(schema)
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = $1 AND p.relname = 'attr_instances' AND c.relname ~ '^attr_instances_y[0-9]{4}m[0-9]{2}$'",
        schema)
    dropped = 0
    for row in rows:
        year, month = int(row["relname"][16:20]), int(row["relname"][21:23])
        if month_start(*add_months(year, month, 1)) <= cutoff:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MAINTENANCE_LOCK_KEY)
                await conn.execute(f"DROP TABLE IF EXISTS {partition_name(schema, year, month)}")
            dropped += 1
    await conn.execute(f"DELETE FROM {schema}.attr_instances_default WHERE at < $1", cutoff)
    return dropped


async def maintain(conn: asyncpg.Connection, schema: str, now: datetime, retention_days: float,
                   months_ahead: int = 2) -> None:
    for n in range(-1, months_ahead + 1):
        await create_month(conn, schema, *add_months(now.year, now.month, n))
    if retention_days > 0:
        cutoff = datetime.fromtimestamp(now.timestamp() - retention_days * 86400, timezone.utc)
        await drop_before(conn, schema, cutoff)


async def maintain_forever(pool: asyncpg.Pool, schemas: Callable[[], Awaitable[list[str]]], retention_days: float,
                           every: float = 3600.0) -> None:
    """Partition upkeep of every tenant, now and then every ``every`` seconds (``schemas()`` lists them)."""
    while True:
        try:
            async with pool.acquire() as conn:
                for schema in await schemas():
                    await maintain(conn, schema, datetime.now(timezone.utc), retention_days)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("history partition upkeep failed: %s", exc)
        await asyncio.sleep(every)

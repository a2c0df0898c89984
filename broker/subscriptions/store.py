"""``ngsild.subscriptions``: one row per subscription of every tenant, and the announcement of each change.

Every write also runs ``pg_notify(CHANNEL, tenant + US + id)`` in its own statement's transaction, so every
broker process (``broker.notify.registry``) reloads that one subscription as soon as the write commits, and
never before. The dispatcher's counters (timesSent, ...) are added in batches by ``add_stats``; those
updates do not announce anything (they change no matching rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from ..errors import already_exists
from ..model.operations import iso

CHANNEL = "ngsild_subscriptions"
CHANGES_CHANNEL = "ngsild_changes"  # "there are new changes" (broker.notify.dispatcher), not per write
SEPARATOR = "\x1f"
_COLUMNS = ("tenant, id, body, context, created_at, modified_at, times_sent, times_failed, last_notification, "
            "last_success, last_failure")


def _announced(name: str, write: str) -> str:
    """``write`` (a data-modifying statement RETURNING a row when it did something) followed by the bump of
    the subscription version and the announcement carrying it. pg_notify returns void: as a FROM item it
    yields one row per announced change, so "done" is a row."""
    return (f"WITH {name} AS ({write}), ver AS (UPDATE ngsild.subscription_version SET v = v + 1 "
            f"WHERE EXISTS (SELECT 1 FROM {name}) RETURNING v) "
            f"SELECT 1 FROM {name}, ver, LATERAL pg_notify('{CHANNEL}', $1 || chr(31) || $2 || chr(31) || ver.v) n")


def stats_of(row: asyncpg.Record, unflushed: list[list[Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The broker-kept members of a row, as rendered (ISO 8601 strings), plus outcomes not yet written
    (``[sent, failed, last notification, last success, last failure]`` lists)."""
    out: dict[str, Any] = {"createdAt": iso(row["created_at"]), "modifiedAt": iso(row["modified_at"]),
                           "timesSent": row["times_sent"] + sum(u[0] for u in unflushed),
                           "timesFailed": row["times_failed"] + sum(u[1] for u in unflushed)}
    for i, (column, name) in enumerate((("last_notification", "lastNotification"), ("last_success", "lastSuccess"),
                                        ("last_failure", "lastFailure")), start=2):
        moments = [m for m in (row[column], *(u[i] for u in unflushed)) if m is not None]
        if moments:
            out[name] = iso(max(moments))
    return out


class SubscriptionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, tenant: str, sub_id: str, body: dict[str, Any], context: Any, at: datetime) -> None:
        done = await self.pool.fetchval(
            _announced("i", "INSERT INTO ngsild.subscriptions (tenant, id, body, context, created_at, modified_at) "
                            "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING RETURNING 1"),
            tenant, sub_id, body, context, at)
        if done is None:
            raise already_exists(f"subscription {sub_id} already exists")

    async def get(self, tenant: str, sub_id: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM ngsild.subscriptions WHERE tenant = $1 AND id = $2",
                                        tenant, sub_id)

    async def page(self, tenant: str, limit: int, offset: int) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM ngsild.subscriptions WHERE tenant = $1 ORDER BY id LIMIT $2 OFFSET $3",
            tenant, limit, offset)

    async def count(self, tenant: str) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM ngsild.subscriptions WHERE tenant = $1", tenant)

    async def replace(self, tenant: str, sub_id: str, body: dict[str, Any], context: Any, at: datetime,
                      expected_modified: datetime) -> bool:
        """Store the patched body if nobody changed the row since it was read (False: re-read and retry)."""
        done = await self.pool.fetchval(
            _announced("u", "UPDATE ngsild.subscriptions SET body = $3, context = $4, modified_at = $5 "
                            "WHERE tenant = $1 AND id = $2 AND modified_at = $6 RETURNING 1"),
            tenant, sub_id, body, context, at, expected_modified)
        return done is not None

    async def delete(self, tenant: str, sub_id: str) -> bool:
        done = await self.pool.fetchval(
            _announced("d", "DELETE FROM ngsild.subscriptions WHERE tenant = $1 AND id = $2 RETURNING 1"),
            tenant, sub_id)
        return done is not None

    async def all(self) -> tuple[int, list[asyncpg.Record]]:
        """The subscription version and every subscription, read in one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            version = await conn.fetchval("SELECT v FROM ngsild.subscription_version")
            return version, await conn.fetch(f"SELECT {_COLUMNS} FROM ngsild.subscriptions")

    async def add_stats(self, rows: list[tuple[str, str, int, int, datetime | None, datetime | None,
                                               datetime | None]]) -> None:
        """Add delivery outcomes: (tenant, id, sent, failed, last notification, last success, last failure)."""
        if not rows:
            return
        columns = list(zip(*rows))
        await self.pool.execute(
            "UPDATE ngsild.subscriptions s SET times_sent = s.times_sent + u.sent, "
            "times_failed = s.times_failed + u.failed, "
            "last_notification = greatest(s.last_notification, u.last_notification), "
            "last_success = greatest(s.last_success, u.last_success), "
            "last_failure = greatest(s.last_failure, u.last_failure) "
            "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], "
            "$6::timestamptz[], $7::timestamptz[]) AS u(tenant, id, sent, failed, last_notification, "
            "last_success, last_failure) WHERE s.tenant = u.tenant AND s.id = u.id", *columns)

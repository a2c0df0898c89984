"""The change log (``ngsild.changes``): retention while no consumer has claimed it yet.

Every write appends one row (a list of entity change entries, see ``broker.store.entities.change_entry``).
Consumers (the notification dispatcher, the temporal history) will read it in ``seq`` order; until they
exist, rows older than the retention are pruned so the table does not grow without bound. One process at a
time prunes (a transaction-scoped advisory lock), so several broker processes do not repeat the work.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

PRUNE_LOCK_KEY = 7_260_431_920


async def prune(pool: asyncpg.Pool, retention_seconds: float) -> int:
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PRUNE_LOCK_KEY):
            return 0
        status = await conn.execute(
            "DELETE FROM ngsild.changes WHERE at < now() - make_interval(secs => $1)", retention_seconds)
    return int(status.split()[-1])


async def prune_forever(pool: asyncpg.Pool, retention_seconds: float, every: float = 10.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            removed = await prune(pool, retention_seconds)
            if removed:
                log.debug("pruned %d change-log rows", removed)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("change-log pruning failed: %s", exc)

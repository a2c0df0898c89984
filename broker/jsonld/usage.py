"""Usage counters of stored @contexts (``numberOfHits``, ``lastUsage``), kept in memory and flushed in batches.

Counting a use is a dict increment on the request path; a background task writes the sums with one UPDATE
per second, and readers of the counters flush first: their own process's directly, the other processes'
on request (``ContextResolver.flush_usage``), so the numbers are exact whichever worker counted a use.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from ..store.contexts import ContextStore
from ..tasks import cancel

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0


class UsageCounter:
    def __init__(self, store: ContextStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, str], list] = {}  # (tenant, url) -> [hits, last use]
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def hit(self, tenant: str, urls: tuple[str, ...]) -> None:
        now = datetime.now(timezone.utc)
        for url in urls:
            entry = self._pending.get((tenant, url))
            if entry is None:
                self._pending[(tenant, url)] = [1, now]
            else:
                entry[0] += 1
                entry[1] = now

    def forget(self, tenant: str, url: str) -> None:
        self._pending.pop((tenant, url), None)

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                await self._store.add_usage([(t, u, n, at) for (t, u), (n, at) in batch.items()])
            except Exception:  # counters are statistics: never fail a request or the loop for them
                log.warning("could not store @context usage counters", exc_info=True)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()

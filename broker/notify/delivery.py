"""Sending notifications over HTTP(S), isolated per subscription and per endpoint.

* One FIFO queue per subscription, drained by its own task, one request at a time: a subscription's
  notifications arrive in the order of the writes that caused them, and a slow or dead receiver holds up
  nothing but its own queue.
* One aiohttp session; its connector caps connections per endpoint (host, port), so a hanging receiver
  pins at most that many sockets. Every request has a timeout (``endpoint.timeout`` or the setting).
* Transport errors and 5xx are retried with exponential backoff, up to ``RETRIES`` times; any other
  non-2xx answer, or the last failed retry, is a failure. A queue holds at most ``max_queue`` notifications;
  beyond that a new notification is dropped and counted as failed (timesFailed, lastFailure, log).
* ``Outcome`` callbacks report every sent / failed notification, with the change seq it came from, so the
  dispatcher can advance its durable cursor only past changes whose notifications are settled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import aiohttp

log = logging.getLogger(__name__)
RETRIES = 3
BACKOFF = 0.25  # seconds before the first retry; doubles each time


@dataclass
class Job:
    tenant: str
    sub_id: str
    seq: int
    part: int
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    notifier: dict[str, str] = field(default_factory=dict)  # endpoint.notifierInfo (MQTT-QoS, MQTT-Version)
    pinned: bool = False  # the dispatcher's cursor waits for this job's outcome (see Dispatcher._send)


Outcome = Callable[[Job, bool, datetime, str | None], None]  # job, delivered, when, failure reason
Trouble = Callable[[list[Job]], None]  # a queue's receiver started failing: the jobs it holds now
BACKLOG_LOG_EVERY = 60.0  # seconds between two "backlog full" warnings of one subscription


class SubQueue:
    def __init__(self) -> None:
        self.jobs: deque[Job] = deque()
        self.task: asyncio.Task[None] | None = None
        self.failing = False  # its last attempt failed and no delivery has succeeded since
        self.logged = 0.0     # when a dropped notification was last logged


class Queues:
    """The per-subscription queues and what HTTP and MQTT delivery share about them: the backlog bound (a
    dropped notification is a failure, logged at most once a minute per subscription), the failing state,
    and dropping a deleted subscription's queue."""

    def __init__(self, on_outcome: Outcome, max_queue: int) -> None:
        self.on_outcome = on_outcome
        self.on_trouble: Trouble = lambda jobs: None
        self.max_queue = max_queue
        self._queues: dict[tuple[str, str], SubQueue] = {}
        self.dropped = 0

    def pending(self) -> int:
        return sum(len(q.jobs) for q in self._queues.values())

    def failing(self, key: tuple[str, str]) -> bool:
        queue = self._queues.get(key)
        return queue is not None and queue.failing

    def full(self, key: tuple[str, str]) -> bool:
        queue = self._queues.get(key)
        return queue is not None and len(queue.jobs) >= self.max_queue

    def discard(self, key: tuple[str, str]) -> list[Job]:
        """Forget a subscription's queue (it was deleted); the jobs it held, unsent and unreported."""
        queue = self._queues.pop(key, None)
        if queue is None:
            return []
        if queue.task is not None:
            queue.task.cancel()
        return list(queue.jobs)

    def enqueue(self, job: Job) -> SubQueue | None:
        """The job's queue with the job appended, or None when the backlog is full (reported as failed)."""
        key = (job.tenant, job.sub_id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = SubQueue()
        if len(queue.jobs) >= self.max_queue:
            self.dropped += 1
            now = time.monotonic()
            if now - queue.logged > BACKLOG_LOG_EVERY:
                queue.logged = now
                log.warning("subscription %s: backlog of %d notifications, dropping new ones (%d so far)",
                            job.sub_id, self.max_queue, self.dropped)
            self.on_outcome(job, False, datetime.now(timezone.utc), "backlog full")
            return None
        queue.jobs.append(job)
        return queue

    def trouble(self, queue: SubQueue, failed: bool) -> None:
        """Record the outcome of an attempt: the first failure hands the queue's jobs to ``on_trouble``."""
        if failed and not queue.failing:
            queue.failing = True
            self.on_trouble(list(queue.jobs))
        elif not failed:
            queue.failing = False

    def finished(self, key: tuple[str, str], queue: SubQueue) -> None:
        if self._queues.get(key) is queue and not queue.jobs:
            del self._queues[key]


class HttpDelivery(Queues):
    def __init__(self, on_outcome: Outcome, *, per_endpoint: int = 32, max_queue: int = 10_000,
                 default_timeout: float = 10.0) -> None:
        super().__init__(on_outcome, max_queue)
        self.per_endpoint = per_endpoint
        self.default_timeout = default_timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.per_endpoint, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        for queue in self._queues.values():
            if queue.task is not None:
                queue.task.cancel()
        if self._session is not None:
            await self._session.close()

    def submit(self, job: Job) -> None:
        queue = self.enqueue(job)
        if queue is not None and (queue.task is None or queue.task.done()):
            queue.task = asyncio.create_task(self._drain((job.tenant, job.sub_id), queue))

    async def _drain(self, key: tuple[str, str], queue: SubQueue) -> None:
        while queue.jobs:
            job = queue.jobs[0]
            ok, reason = await self._send_with_retries(job, queue)
            queue.jobs.popleft()
            self.on_outcome(job, ok, datetime.now(timezone.utc), reason)
        self.finished(key, queue)

    async def _send_with_retries(self, job: Job, queue: SubQueue) -> tuple[bool, str | None]:
        delay = BACKOFF
        reason = None
        for attempt in range(RETRIES + 1):
            retry, reason = await self._send(job)
            self.trouble(queue, reason is not None)
            if reason is None:
                return True, None
            if not retry or attempt == RETRIES:
                break
            await asyncio.sleep(delay)
            delay *= 2
        log.info("notification for subscription %s to %s failed: %s", job.sub_id, job.url, reason)
        return False, reason

    async def _send(self, job: Job) -> tuple[bool, str | None]:
        """(retry?, failure reason or None)."""
        try:
            async with self.session().post(job.url, data=job.body, headers=job.headers,
                                           timeout=aiohttp.ClientTimeout(total=job.timeout)) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return False, None
                return response.status >= 500, f"HTTP {response.status}"
        except asyncio.TimeoutError:
            return True, "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return True, f"{type(exc).__name__}: {exc}"

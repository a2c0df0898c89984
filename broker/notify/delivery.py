"""Sending notifications over HTTP(S), isolated per subscription and per endpoint.

* One FIFO queue per subscription, one request in flight at a time: a subscription's notifications arrive in
  the order of the writes that caused them, and a slow or dead receiver holds up nothing but its own queue.
* Per endpoint (scheme, host, port) at most ``per_endpoint`` sender tasks and as many connections (one
  aiohttp session; its connector has the same cap), so a hanging receiver pins at most that many sockets
  and tasks, and an endpoint's subscriptions take turns. Every request has a timeout (``endpoint.timeout``
  or the setting).
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
from yarl import URL

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
        self.busy = False     # (HTTP) its oldest job is lined up, in flight or waiting for a retry
        self.attempts = 0     # (HTTP) failed attempts at its oldest job so far
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


class _Endpoint:
    """The senders of one endpoint (scheme, host, port) and the subscriptions waiting for one of them."""

    def __init__(self) -> None:
        self.ready: deque[tuple[tuple[str, str], SubQueue]] = deque()
        self.senders: set[asyncio.Task[None]] = set()


class HttpDelivery(Queues):
    """Each endpoint has at most ``per_endpoint`` sender tasks; a sender takes the next subscription that has a
    notification to send and none in flight, sends its oldest and puts it back at the end of the line if it
    holds more. So a subscription has at most one request in flight (its order is kept), the endpoint's
    subscriptions take turns, and a retry's backoff holds no sender. (Before, a task per subscription waited
    for the connector's ``per_endpoint`` connections: 20,000 queued POSTs cost ~190 µs of CPU each that way
    against ~102 µs from long-lived senders, though the notification benchmark showed no difference.)"""

    def __init__(self, on_outcome: Outcome, *, per_endpoint: int = 32, max_queue: int = 10_000,
                 default_timeout: float = 10.0) -> None:
        super().__init__(on_outcome, max_queue)
        self.per_endpoint = per_endpoint
        self.default_timeout = default_timeout
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._endpoint_of: dict[str, str] = {}  # url -> its endpoint's key
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._retries: dict[tuple[str, str], asyncio.TimerHandle] = {}  # queues waiting to try again

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.per_endpoint, ttl_dns_cache=300)
            # no cookie jar: a cookie set by one subscription's receiver must not travel with another's
            # notifications (another tenant's, perhaps) to the same host
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",),
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        for timer in self._retries.values():
            timer.cancel()
        for endpoint in self._endpoints.values():
            for task in endpoint.senders:
                task.cancel()
        if self._session is not None:
            await self._session.close()

    def discard(self, key: tuple[str, str]) -> list[Job]:
        timer = self._retries.pop(key, None)
        if timer is not None:
            timer.cancel()
        return super().discard(key)

    def submit(self, job: Job) -> None:
        queue = self.enqueue(job)
        if queue is not None and not queue.busy:
            self._ready((job.tenant, job.sub_id), queue)

    def _ready(self, key: tuple[str, str], queue: SubQueue) -> None:
        """Line the queue up for a sender of its endpoint (it has a job and none in flight)."""
        queue.busy = True
        url = queue.jobs[0].url
        name = self._endpoint_of.get(url)
        if name is None:
            try:
                parsed = URL(url)
                name = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
            except ValueError:  # not a URL aiohttp can use: its POST fails, as a failure of this job
                name = url
            if len(self._endpoint_of) >= 10_000:  # (URLs of deleted subscriptions stay: forget them at times)
                self._endpoint_of.clear()
            self._endpoint_of[url] = name
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            endpoint = self._endpoints[name] = _Endpoint()
        endpoint.ready.append((key, queue))
        if len(endpoint.senders) < self.per_endpoint:
            task = asyncio.create_task(self._sender(name, endpoint))
            endpoint.senders.add(task)

    async def _sender(self, name: str, endpoint: _Endpoint) -> None:
        try:
            while endpoint.ready:
                key, queue = endpoint.ready.popleft()
                if self._queues.get(key) is queue and queue.jobs:  # else discarded meanwhile
                    await self._attempt(key, queue)
        finally:
            endpoint.senders.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not endpoint.senders and not endpoint.ready and self._endpoints.get(name) is endpoint:
                del self._endpoints[name]

    async def _attempt(self, key: tuple[str, str], queue: SubQueue) -> None:
        """One attempt at the queue's oldest job; then the queue goes back in line, waits for its retry, or
        is done."""
        job = queue.jobs[0]
        try:
            retry, reason = await self._send(job)
        except Exception as exc:  # a bug must not leave the queue lined up for good
            log.exception("notification for subscription %s to %s", job.sub_id, job.url)
            retry, reason = False, f"{type(exc).__name__}: {exc}"
        if self._queues.get(key) is not queue:
            return  # discarded while in flight: the dispatcher has forgotten it
        self.trouble(queue, reason is not None)
        if reason is not None and retry and queue.attempts < RETRIES:
            delay = BACKOFF * 2 ** queue.attempts
            queue.attempts += 1
            self._retries[key] = asyncio.get_running_loop().call_later(delay, self._retry, key, queue)
            return
        if reason is not None:
            log.info("notification for subscription %s to %s failed: %s", job.sub_id, job.url, reason)
        queue.attempts = 0
        queue.jobs.popleft()
        self.on_outcome(job, reason is None, datetime.now(timezone.utc), reason)
        queue.busy = False
        if queue.jobs:
            self._ready(key, queue)
        else:
            self.finished(key, queue)

    def _retry(self, key: tuple[str, str], queue: SubQueue) -> None:
        self._retries.pop(key, None)
        if self._queues.get(key) is queue and queue.jobs:
            self._ready(key, queue)

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def _send(self, job: Job) -> tuple[bool, str | None]:
        """(retry?, failure reason or None)."""
        try:
            async with self.session().post(job.url, data=job.body, headers=job.headers,
                                           timeout=self._timeout(job.timeout)) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return False, None
                return response.status >= 500, f"HTTP {response.status}"
        except asyncio.TimeoutError:
            return True, "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return True, f"{type(exc).__name__}: {exc}"

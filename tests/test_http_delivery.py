"""HttpDelivery (broker/notify/delivery.py) against a real aiohttp receiver in the test: per-subscription order
with many subscriptions sharing an endpoint, the per-endpoint cap on requests in flight, retries that hold no
sender, a deleted subscription's in-flight notification, and cookies that do not travel between receivers."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from broker.notify.delivery import HttpDelivery, Job

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def job(url: str, sub: str, n: int, timeout: float = 5.0) -> Job:
    body = orjson.dumps({"subscriptionId": sub, "n": n})
    return Job("", sub, n, 0, url, {"Content-Type": "application/json"}, body, timeout)


class Outcomes:
    def __init__(self) -> None:
        self.items: list[tuple[str, int, bool, str | None]] = []
        self.changed = asyncio.Event()

    def __call__(self, job: Job, ok: bool, when: datetime, reason: str | None) -> None:
        self.items.append((job.sub_id, job.seq, ok, reason))
        self.changed.set()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_many_subscriptions_keep_their_order_within_the_endpoint_cap() -> None:
    got: list[tuple[str, int]] = []
    state = {"in_flight": 0, "most": 0}

    async def handle(request: web.Request) -> web.Response:
        state["in_flight"] += 1
        state["most"] = max(state["most"], state["in_flight"])
        doc = orjson.loads(await request.read())
        await asyncio.sleep(0.002)
        got.append((doc["subscriptionId"], doc["n"]))
        state["in_flight"] -= 1
        return web.Response(status=204)

    outcomes = Outcomes()
    delivery = HttpDelivery(outcomes, per_endpoint=4)
    try:
        async with receiver(handle) as base:
            subs = [f"urn:ngsi-ld:Subscription:{i}" for i in range(50)]
            for n in range(5):
                for sub in subs:
                    delivery.submit(job(f"{base}/{sub[-2:]}", sub, n))
            await outcomes.wait(250)
    finally:
        await delivery.close()
    assert all(ok for _, _, ok, _ in outcomes.items)
    assert 1 < state["most"] <= 4
    for sub in subs:
        assert [n for s, n in got if s == sub] == [0, 1, 2, 3, 4]
    assert delivery.pending() == 0


async def test_a_retry_holds_no_sender_and_keeps_its_subscriptions_order() -> None:
    """One sender only: while the failing subscription waits for its retry, the other one is served; the
    failed notification is retried before the next of its subscription."""
    calls: list[tuple[str, int]] = []

    async def handle(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        calls.append((doc["subscriptionId"], doc["n"]))
        if doc["subscriptionId"] == "flaky" and calls.count(("flaky", 0)) == 1:
            return web.Response(status=503)
        return web.Response(status=204)

    outcomes = Outcomes()
    delivery = HttpDelivery(outcomes, per_endpoint=1)
    try:
        async with receiver(handle) as base:
            delivery.submit(job(f"{base}/a", "flaky", 0))
            delivery.submit(job(f"{base}/a", "flaky", 1))
            for n in range(3):
                delivery.submit(job(f"{base}/b", "steady", n))
            await outcomes.wait(5)
    finally:
        await delivery.close()
    assert [c for c in calls if c[0] == "flaky"] == [("flaky", 0), ("flaky", 0), ("flaky", 1)]
    # the steady subscription was served during the retry's backoff (0.25 s), not after it
    assert calls.index(("steady", 2)) < calls.index(("flaky", 0), 1)
    assert [(s, n, ok) for s, n, ok, _ in outcomes.items if s == "flaky"] == [("flaky", 0, True), ("flaky", 1, True)]


async def test_a_discarded_subscription_reports_nothing_more() -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(status=204)

    outcomes = Outcomes()
    delivery = HttpDelivery(outcomes)
    try:
        async with receiver(handle) as base:
            delivery.submit(job(f"{base}/x", "gone", 0))
            delivery.submit(job(f"{base}/x", "gone", 1))
            await asyncio.wait_for(arrived.wait(), 5)
            assert [j.seq for j in delivery.discard(("", "gone"))] == [0, 1]
            release.set()
            await asyncio.sleep(0.2)
    finally:
        await delivery.close()
    assert outcomes.items == [] and delivery.pending() == 0


async def test_cookies_do_not_travel_between_notifications() -> None:
    cookies: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.Response(status=204)
        response.set_cookie("session", "tenant-a-secret")
        return response

    outcomes = Outcomes()
    delivery = HttpDelivery(outcomes)
    try:
        async with receiver(handle) as base:
            base = base.replace("127.0.0.1", "localhost")  # (aiohttp's jar ignores cookies of IP addresses)
            delivery.submit(job(f"{base}/a", "a", 0))
            await outcomes.wait(1)
            delivery.submit(job(f"{base}/b", "b", 0))
            await outcomes.wait(2)
    finally:
        await delivery.close()
    assert cookies == [None, None]


async def test_an_unexpected_error_fails_the_job_and_the_queue_goes_on() -> None:
    got: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(orjson.loads(await request.read())["n"])
        return web.Response(status=204)

    outcomes = Outcomes()
    delivery = HttpDelivery(outcomes)
    real_send = delivery._send

    async def broken_once(job: Job) -> tuple[bool, str | None]:
        if job.seq == 0:
            raise RuntimeError("a bug")
        return await real_send(job)

    delivery._send = broken_once  # type: ignore[method-assign]
    try:
        async with receiver(handle) as base:
            for n in range(3):
                delivery.submit(job(f"{base}/x", "s", n))
            await outcomes.wait(3)
    finally:
        await delivery.close()
    assert [(n, ok) for _, n, ok, _ in outcomes.items] == [(0, False), (1, True), (2, True)] and got == [1, 2]

"""At-least-once delivery across a crash, and several broker processes sharing the notification work.

The broker runs as a subprocess on its own database; the webhook receiver runs in the test. A broker
killed with SIGKILL right after acknowledging writes must, once restarted, deliver every notification those
writes owed (duplicates allowed, recognisable by their repeated notification id).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from broker.testing import BrokerProcess, fresh_database, serve_app

pytestmark = pytest.mark.slow
API = "/ngsi-ld/v1"


class SlowReceiver:
    """Records (entity id, value) -> notification ids; answers after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.got: dict[tuple[str, Any], list[str]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        for item in body["data"]:
            self.got.setdefault((item["id"], item["n"]), []).append(body["id"])
        await asyncio.sleep(self.delay)
        return web.Response()


@pytest.fixture
def dsn(database_dsn: str) -> Iterator[str]:
    with fresh_database(database_dsn, "ngsild_durable") as fresh:
        yield fresh


async def start_receiver(delay: float) -> tuple[SlowReceiver, web.AppRunner]:
    receiver = SlowReceiver(delay)
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    runner, port = await serve_app(app)
    receiver.url = f"http://127.0.0.1:{port}/notify"
    return receiver, runner


@pytest.fixture
async def http_client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def subscribe(http: aiohttp.ClientSession, base: str, url: str, type_: str) -> str:
    """Subscribe to ``type_``'s entities; the subscription's id."""
    sub = {"type": "Subscription", "entities": [{"type": type_}], "notification": {
        "format": "keyValues", "attributes": ["n"], "endpoint": {"uri": url}}}
    async with http.post(base + API + "/subscriptions", json=sub) as reply:
        assert reply.status == 201, await reply.text()
        return reply.headers["Location"].rsplit("/", 1)[-1]


async def write(http: aiohttp.ClientSession, base: str, entity_id: str, n: int) -> None:
    async with http.patch(f"{base}{API}/entities/{entity_id}/attrs", json={"n": {"type": "Property", "value": n}}
                          ) as reply:
        assert reply.status == 204, await reply.text()


async def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def test_kill_9_loses_no_notification(dsn: str, http_client: aiohttp.ClientSession) -> None:
    receiver, runner = await start_receiver(delay=0.01)  # ~100/s per subscription: a backlog builds
    broker = BrokerProcess(dsn).start()
    try:
        await subscribe(http_client, broker.url, receiver.url, "Meter")
        ids = [f"urn:ngsi-ld:Meter:{i}" for i in range(4)]
        for entity_id in ids:
            body = {"id": entity_id, "type": "Meter", "n": {"type": "Property", "value": -1}}
            async with http_client.post(broker.url + API + "/entities", json=body) as reply:
                assert reply.status == 201
        owed = {(i, -1) for i in ids}
        for n in range(150):
            await asyncio.gather(*(write(http_client, broker.url, i, n) for i in ids))
            owed |= {(i, n) for i in ids}
        assert broker.proc is not None
        broker.proc.kill()  # SIGKILL right after the last acknowledged write
        broker.proc.wait()
        before = len(owed & set(receiver.got))
        assert before < len(owed), "the backlog drained before the kill: the test proves nothing"
        broker = BrokerProcess(dsn).start()
        assert await wait_for(lambda: owed <= set(receiver.got), 60), \
            f"missing after restart: {sorted(owed - set(receiver.got))[:10]}"
        for key, notification_ids in receiver.got.items():
            assert len(set(notification_ids)) == 1, f"{key} re-sent under a new id: {notification_ids}"
    finally:
        broker.stop()
        await runner.cleanup()


async def test_two_processes_share_without_duplicates(dsn: str, http_client: aiohttp.ClientSession) -> None:
    receiver, runner = await start_receiver(delay=0)
    broker = BrokerProcess(dsn, args=["--workers", "2"]).start()
    try:
        for k in range(16):  # subscriptions spread over the partitions, so both processes deliver
            await subscribe(http_client, broker.url, receiver.url, f"Kind{k}")
        owed = set()
        for k in range(16):
            entity_id = f"urn:ngsi-ld:Kind{k}:1"
            body = {"id": entity_id, "type": f"Kind{k}", "n": {"type": "Property", "value": 0}}
            async with http_client.post(broker.url + API + "/entities", json=body) as reply:
                assert reply.status == 201
            owed.add((entity_id, 0))
            for n in range(1, 6):
                await write(http_client, broker.url, entity_id, n)
                owed.add((entity_id, n))
        assert await wait_for(lambda: owed <= set(receiver.got), 20), sorted(owed - set(receiver.got))[:10]
        await asyncio.sleep(0.5)
        assert {k: v for k, v in receiver.got.items() if len(v) > 1} == {}
    finally:
        broker.stop()
        await runner.cleanup()


async def test_subscription_changes_are_in_force_in_every_process_at_once(dsn: str,
                                                                           http_client: aiohttp.ClientSession
                                                                           ) -> None:
    """Two worker processes, each request on a new connection (the kernel hands them to either): a
    subscription created, paused or deleted through one process is in force for the next write answered after
    it, whichever process answers the write and whichever owns the subscription's partition."""
    receiver, runner = await start_receiver(delay=0)
    broker = BrokerProcess(dsn, args=["--workers", "2"]).start()
    try:
        not_owed = set()
        for k in range(24):
            type_ = f"Fresh{k}"
            sub_id = await subscribe(http_client, broker.url, receiver.url, type_)
            entity_id = f"urn:ngsi-ld:{type_}:1"
            body = {"id": entity_id, "type": type_, "n": {"type": "Property", "value": 0}}
            async with http_client.post(broker.url + API + "/entities", json=body) as reply:
                assert reply.status == 201
            # a pause or deletion is in force for the writes after it, not for those already answered (the
            # dispatcher matches a change against the subscriptions as they are when it reads the change)
            assert await wait_for(lambda: (entity_id, 0) in receiver.got, 10), f"{entity_id} not notified"
            if k % 2:
                async with http_client.patch(broker.url + API + f"/subscriptions/{sub_id}",
                                             json={"type": "Subscription", "isActive": False}) as reply:
                    assert reply.status == 204
            else:
                async with http_client.delete(broker.url + API + f"/subscriptions/{sub_id}") as reply:
                    assert reply.status == 204
            await write(http_client, broker.url, entity_id, 1)
            not_owed.add((entity_id, 1))
        await asyncio.sleep(1.0)  # what a stale registry would send arrives within this
        assert not_owed.isdisjoint(receiver.got), sorted(not_owed & set(receiver.got))
    finally:
        broker.stop()
        await runner.cleanup()


async def test_a_surviving_instance_takes_over_a_dead_ones_partitions(dsn: str,
                                                                      http_client: aiohttp.ClientSession) -> None:
    """Two broker instances on one database: the first owns every partition; killed, its partitions (and
    the notifications its acknowledged writes owed) pass to the second."""
    receiver, runner = await start_receiver(delay=0.01)
    first = BrokerProcess(dsn).start()
    second = BrokerProcess(dsn).start()
    try:
        await subscribe(http_client, first.url, receiver.url, "Valve")
        ids = [f"urn:ngsi-ld:Valve:{i}" for i in range(4)]
        owed = set()
        for entity_id in ids:
            body = {"id": entity_id, "type": "Valve", "n": {"type": "Property", "value": -1}}
            async with http_client.post(second.url + API + "/entities", json=body) as reply:
                assert reply.status == 201
            owed.add((entity_id, -1))
        for n in range(100):
            await asyncio.gather(*(write(http_client, second.url, i, n) for i in ids))
            owed |= {(i, n) for i in ids}
        assert first.proc is not None
        first.proc.kill()
        first.proc.wait()
        assert not owed <= set(receiver.got), "the backlog drained before the kill: the test proves nothing"
        assert await wait_for(lambda: owed <= set(receiver.got), 60), \
            f"missing after failover: {sorted(owed - set(receiver.got))[:10]}"
    finally:
        first.stop()
        second.stop()
        await runner.cleanup()


async def test_a_dead_receiver_does_not_hold_the_cursor(dsn: str, http_client: aiohttp.ClientSession) -> None:
    """A failing receiver's backlog does not keep its partition's cursor back (the change log stays
    prunable, a restart does not re-send everything to its partition neighbours); deleting its subscription
    drops the backlog."""
    import asyncpg

    broker = BrokerProcess(dsn).start()
    try:
        sub = {"type": "Subscription", "entities": [{"type": "Lamp"}],
               "notification": {"endpoint": {"uri": "http://127.0.0.1:9/dead"}}}
        async with http_client.post(broker.url + API + "/subscriptions", json=sub) as reply:
            assert reply.status == 201
            sub_path = reply.headers["Location"]
        body = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "n": {"type": "Property", "value": 0}}
        async with http_client.post(broker.url + API + "/entities", json=body) as reply:
            assert reply.status == 201
        for n in range(1, 30):
            await write(http_client, broker.url, "urn:ngsi-ld:Lamp:1", n)
        conn = await asyncpg.connect(dsn)
        try:
            newest = await conn.fetchval("SELECT max(seq) FROM ngsild.changes")

            async def cursor() -> int:
                return await conn.fetchval("SELECT min(seq) FROM ngsild.dispatch_cursors")
            for _ in range(50):
                if await cursor() >= newest:
                    break
                await asyncio.sleep(0.1)
            assert await cursor() >= newest
        finally:
            await conn.close()

        async def pending() -> float:
            async with http_client.get(broker.url + "/metrics") as reply:
                figures = dict(line.split() for line in (await reply.text()).splitlines())
            return float(figures["ngsild_notifications_pending"])
        assert await pending() > 0  # still retrying the dead receiver
        async with http_client.delete(broker.url + sub_path) as reply:
            assert reply.status == 204
        for _ in range(50):
            if await pending() == 0:
                break
            await asyncio.sleep(0.1)
        assert await pending() == 0
    finally:
        broker.stop()

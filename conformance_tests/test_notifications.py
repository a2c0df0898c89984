"""Notifications (GS CIM 009 5.8.6, 5.3.1): a real webhook receiver in this process, the broker under test
posting to it. The receiver listens on 127.0.0.1, so these tests need the broker on this machine."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp import web

from broker.testing import free_port, serve_app

from .ngsi import LD_JSON, Ngsi, entity, prop, rel, uid
from .test_subscriptions import create_ok, path

pytestmark = pytest.mark.local_broker


class Receiver:
    """Collects the POSTs made to ``/{name}``; ``/{name}`` answers with the status set for it."""

    def __init__(self) -> None:
        self.base = ""
        self.got: dict[str, list[tuple[dict[str, str], Any]]] = {}
        self.status: dict[str, int] = {}
        self._arrived = asyncio.Condition()

    def endpoint(self, status: int = 200) -> tuple[str, str]:
        name = uuid.uuid4().hex
        self.status[name] = status
        return name, f"{self.base}/{name}"

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = orjson.loads(await request.read())
        async with self._arrived:
            self.got.setdefault(name, []).append((dict(request.headers), body))
            self._arrived.notify_all()
        return web.Response(status=self.status.get(name, 200))

    async def wait(self, name: str, count: int = 1, timeout: float = 10.0) -> list[tuple[dict[str, str], Any]]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.got.get(name, ())) >= count), timeout)
        return self.got[name]

    async def quiet(self, name: str, seconds: float = 0.6) -> list[Any]:
        await asyncio.sleep(seconds)
        return self.got.get(name, [])


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    runner, port = await serve_app(app)
    found.base = f"http://127.0.0.1:{port}"
    yield found
    await runner.cleanup()


async def counters(ngsi: Ngsi, sub_id: str, name: str, value: int) -> dict[str, Any]:
    """The subscription's notification member once ``name`` reached ``value`` (the broker records a delivery
    just after the receiver has answered it; a failure only after its retries: a 200 ms timeout and the
    backoff of 0.25 + 0.5 + 1 s make ~2.6 s), waiting at most ~10 s."""
    for _ in range(200):
        stats = (await ngsi.request("GET", path(sub_id))).json["notification"]
        if stats.get(name, 0) >= value:
            return stats
        await asyncio.sleep(0.05)
    return stats


def sub_for(url: str, type_: str, **members: Any) -> dict[str, Any]:
    notification = members.pop("notification", {})
    return {"id": uid("Subscription"), "type": "Subscription", "entities": [{"type": type_}],
            "notification": {"endpoint": {"uri": url}, **notification}, **members}


async def test_update_notifies_with_the_whole_entity(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Car" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    sub_id = await create_ok(ngsi, sub_for(url, type_, watchedAttributes=["speed"]))
    car = await ngsi.create_ok(entity(type_, speed=prop(10), brand=prop("x")))
    assert (await ngsi.request("PATCH", ngsi.entity_path(car) + "/attrs", body={"speed": prop(20)})).status == 204
    # creation created "speed" (attributeCreated), the PATCH updated it (attributeUpdated): in that order
    got = await receiver.wait(name, 2)
    (h1, n1), (h2, n2) = got[:2]
    assert n1["type"] == "Notification" and n1["subscriptionId"] == sub_id and n1["id"] != n2["id"]
    assert n1["id"].startswith("urn:ngsi-ld:Notification:") and "notifiedAt" in n1
    assert [n1["data"][0]["speed"]["value"], n2["data"][0]["speed"]["value"]] == [10, 20]
    assert n2["data"][0]["brand"]["value"] == "x" and n2["data"][0]["type"] == type_
    assert h1["Content-Type"] == "application/json" and "rel=\"http://www.w3.org/ns/json-ld#context\"" in h1["Link"]
    # an attribute outside watchedAttributes does not notify
    assert (await ngsi.request("PATCH", ngsi.entity_path(car) + "/attrs", body={"brand": prop("y")})).status == 204
    assert len(await receiver.quiet(name)) == 2
    stats = await counters(ngsi, sub_id, "timesSent", 2)
    assert stats["timesSent"] == 2 and stats["status"] == "ok" and "lastSuccess" in stats


async def test_each_write_is_notified_with_its_own_value(ngsi: Ngsi, receiver: Receiver) -> None:
    """Rapid writes: every write produces its notification, in order, carrying the value it wrote."""
    type_ = "Sensor" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    await create_ok(ngsi, sub_for(url, type_, notification={"format": "keyValues"}))
    sensor = await ngsi.create_ok(entity(type_, t=prop(0)))
    for i in range(1, 21):
        reply = await ngsi.request("PATCH", ngsi.entity_path(sensor) + "/attrs/t", body={"value": i})
        assert reply.status == 204
    got = await receiver.wait(name, 21)
    assert [n["data"][0]["t"] for _, n in got] == list(range(21))


async def test_triggers_formats_and_deletions(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Bldg" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    triggers = ["entityCreated", "attributeDeleted", "entityDeleted"]
    await create_ok(ngsi, sub_for(url, type_, notificationTrigger=triggers,
                                  notification={"format": "normalized", "attributes": ["name", "owner"]}))
    b = await ngsi.create_ok(entity(type_, name=prop("Tower"), owner=rel("urn:ngsi-ld:Person:1"), h=prop(3)))
    assert (await ngsi.request("PATCH", ngsi.entity_path(b) + "/attrs", body={"h": prop(4)})).status == 204
    assert (await ngsi.request("DELETE", ngsi.entity_path(b) + "/attrs/owner")).status == 204
    assert (await ngsi.delete(b)).status == 204
    got = [n for _, n in await receiver.wait(name, 3)]
    assert [n["triggerReason"] for n in got] == triggers
    created, attr_deleted, deleted = (n["data"][0] for n in got)
    assert set(created) == {"id", "type", "name", "owner"}  # notification.attributes selects
    assert attr_deleted["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:null"}
    # entityDeleted: the entity's id, type and deletedAt (ETSI 046_21)
    assert set(deleted) == {"id", "type", "deletedAt"} and deleted["id"] == b


async def test_show_changes_sys_attrs_and_ld_json(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Room" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    room = await ngsi.create_ok(entity(type_, temp=prop(20)))
    sub = sub_for(url, type_, notification={"showChanges": True, "sysAttrs": True})
    sub["notification"]["endpoint"]["accept"] = LD_JSON
    await create_ok(ngsi, sub)
    assert (await ngsi.request("PATCH", ngsi.entity_path(room) + "/attrs", body={"temp": prop(21)})).status == 204
    headers, body = (await receiver.wait(name))[0]
    assert headers["Content-Type"] == LD_JSON and "@context" in body and "Link" not in headers
    temp = body["data"][0]["temp"]
    assert temp["value"] == 21 and temp["previousValue"] == 20 and "modifiedAt" in temp


async def test_inactive_throttled_and_tenant(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Lamp" + uuid.uuid4().hex[:8]
    paused, paused_url = receiver.endpoint()
    throttled, throttled_url = receiver.endpoint()
    await create_ok(ngsi, sub_for(paused_url, type_, isActive=False))
    await create_ok(ngsi, sub_for(throttled_url, type_, throttling=30))
    lamp = await ngsi.create_ok(entity(type_, on=prop(True)))
    for value in (False, True):
        await ngsi.request("PATCH", ngsi.entity_path(lamp) + "/attrs", body={"on": prop(value)})
    assert len(await receiver.wait(throttled)) == 1
    assert len(await receiver.quiet(throttled)) == 1 and not receiver.got.get(paused)
    tenant_name, tenant_url = receiver.endpoint()
    await create_ok(ngsi, sub_for(tenant_url, type_), tenant="notif-tenant")
    await ngsi.create_ok(entity(type_, on=prop(True)), tenant="notif-tenant")
    headers, _ = (await receiver.wait(tenant_name))[0]
    assert headers["NGSILD-Tenant"] == "notif-tenant"


async def test_failing_receiver_is_counted_and_isolated(ngsi: Ngsi, receiver: Receiver) -> None:
    """A receiver answering 404 fails (no retry for 4xx) and is counted; a dead port does not hold up a
    healthy receiver of the same change."""
    type_ = "Gate" + uuid.uuid4().hex[:8]
    bad, bad_url = receiver.endpoint(status=404)
    good, good_url = receiver.endpoint()
    bad_id = await create_ok(ngsi, sub_for(bad_url, type_))
    await create_ok(ngsi, sub_for("http://127.0.0.1:9/dead", type_))
    await create_ok(ngsi, sub_for(good_url, type_))
    await ngsi.create_ok(entity(type_, open=prop(True)))
    await receiver.wait(good, 1, timeout=2.0)
    await receiver.wait(bad, 1)
    stats = await counters(ngsi, bad_id, "timesFailed", 1)
    assert stats.get("timesFailed") == 1 and stats["status"] == "failed" and "lastFailure" in stats


async def test_time_interval_sends_the_matching_entities_periodically(ngsi: Ngsi, receiver: Receiver) -> None:
    """5.8.6: with timeInterval, a notification every interval with the entities matching now (not on
    changes); q filters them."""
    type_ = "Meter" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    a = await ngsi.create_ok(entity(type_, kwh=prop(5)))
    await ngsi.create_ok(entity(type_, kwh=prop(50)))
    await create_ok(ngsi, sub_for(url, type_, timeInterval=1, q="kwh<10", notification={"format": "keyValues"}))
    got = await receiver.wait(name, 2, timeout=5.0)
    assert [[e["id"] for e in n["data"]] for _, n in got[:2]] == [[a], [a]]
    assert got[0][1]["data"][0]["kwh"] == 5


async def test_geo_q_filters_change_notifications(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Bus" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    square = {"georel": "within", "geometry": "Polygon",
              "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}
    await create_ok(ngsi, sub_for(url, type_, geoQ=square, notificationTrigger=["entityCreated"]))
    outside = entity(type_, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [20, 20]}})
    inside = entity(type_, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [5, 5]}})
    await ngsi.create_ok(outside)
    await ngsi.create_ok(inside)
    got = await receiver.wait(name)
    assert len(await receiver.quiet(name)) == 1 and got[0][1]["data"][0]["id"] == inside["id"]


async def test_join_adds_the_linked_entities(ngsi: Ngsi, receiver: Receiver) -> None:
    """4.5.23 in notifications: join=flat appends the Linked Entities to data, join=inline embeds them."""
    type_ = "Shop" + uuid.uuid4().hex[:8]
    city = await ngsi.create_ok(entity("City", population=prop(100)))
    flat, flat_url = receiver.endpoint()
    inline, inline_url = receiver.endpoint()
    await create_ok(ngsi, sub_for(flat_url, type_, notification={"join": "flat", "joinLevel": 1}))
    await create_ok(ngsi, sub_for(inline_url, type_, notification={"join": "inline"}))
    shop = await ngsi.create_ok(entity(type_, locatedAt=rel(city)))
    (_, n1), = await receiver.wait(flat)
    assert [e["id"] for e in n1["data"]] == [shop, city]
    (_, n2), = await receiver.wait(inline)
    assert [e["id"] for e in n2["data"]] == [shop]
    assert n2["data"][0]["locatedAt"]["entity"]["population"]["value"] == 100


async def test_geo_json_notifications(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Tram" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    sub = sub_for(url, type_)
    sub["notification"]["endpoint"]["accept"] = "application/geo+json"
    await create_ok(ngsi, sub)
    tram = await ngsi.create_ok(entity(type_, location={"type": "GeoProperty",
                                                        "value": {"type": "Point", "coordinates": [1, 2]}}))
    headers, body = (await receiver.wait(name))[0]
    assert headers["Content-Type"] == "application/geo+json"
    assert body["data"]["type"] == "FeatureCollection"
    (feature,) = body["data"]["features"]
    assert feature["id"] == tram and feature["geometry"] == {"type": "Point", "coordinates": [1, 2]}


async def test_resumed_subscription_does_not_replay_what_it_missed(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Pump" + uuid.uuid4().hex[:8]
    name, url = receiver.endpoint()
    sub_id = await create_ok(ngsi, sub_for(url, type_, isActive=False, notification={"format": "keyValues"}))
    pump = await ngsi.create_ok(entity(type_, rpm=prop(1)))
    await ngsi.request("PATCH", ngsi.entity_path(pump) + "/attrs", body={"rpm": prop(2)})
    resume = {"type": "Subscription", "isActive": True}
    assert (await ngsi.request("PATCH", path(sub_id), body=resume)).status == 204
    await ngsi.request("PATCH", ngsi.entity_path(pump) + "/attrs", body={"rpm": prop(3)})
    got = await receiver.wait(name)
    assert [n["data"][0]["rpm"] for _, n in await receiver.quiet(name)] == [3] and len(got) == 1


async def test_receiver_down_then_back_gets_the_notification(ngsi: Ngsi, receiver: Receiver) -> None:
    """Transport errors are retried with backoff: a receiver that comes up within the retries gets it."""
    type_ = "Door" + uuid.uuid4().hex[:8]
    port = free_port()
    sub_id = await create_ok(ngsi, sub_for(f"http://127.0.0.1:{port}/late", type_))
    await ngsi.create_ok(entity(type_, open=prop(True)))
    await asyncio.sleep(0.3)  # the first attempt has failed by now
    late = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", late.handle)
    runner, _ = await serve_app(app, port=port)
    try:
        assert len(await late.wait("late", 1, timeout=10)) == 1
        stats = await counters(ngsi, sub_id, "timesSent", 1)
        assert stats["timesSent"] == 1 and stats.get("timesFailed", 0) == 0
    finally:
        await runner.cleanup()


async def test_hanging_receiver_times_out_without_holding_up_others(ngsi: Ngsi, receiver: Receiver) -> None:
    type_ = "Fan" + uuid.uuid4().hex[:8]
    hang = asyncio.Event()

    async def hanging(request: web.Request) -> web.Response:
        await hang.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hang", hanging)
    runner, port = await serve_app(app)
    try:
        slow = sub_for(f"http://127.0.0.1:{port}/hang", type_)
        slow["notification"]["endpoint"]["timeout"] = 200  # milliseconds (5.2.15)
        slow_id = await create_ok(ngsi, slow)
        name, url = receiver.endpoint()
        await create_ok(ngsi, sub_for(url, type_, notification={"format": "keyValues"}))
        fan = await ngsi.create_ok(entity(type_, speed=prop(0)))
        for n in range(1, 6):
            await ngsi.request("PATCH", ngsi.entity_path(fan) + "/attrs", body={"speed": prop(n)})
        got = await receiver.wait(name, 6, timeout=3.0)  # the healthy receiver is not held up
        assert [n["data"][0]["speed"] for _, n in got] == [0, 1, 2, 3, 4, 5]
        stats = await counters(ngsi, slow_id, "timesFailed", 1)
        assert stats.get("timesFailed", 0) >= 1 and stats["status"] == "failed"
        metrics = await ngsi.request("GET", ngsi.root + "/metrics", absolute=True)
        figures = dict(line.split() for line in metrics.body.decode().splitlines())
        assert float(figures["ngsild_notifications_failed_total"]) >= 1
        assert float(figures["ngsild_notifications_pending"]) >= 1  # the hanging receiver's backlog
    finally:
        hang.set()
        await runner.cleanup()


async def test_a_slow_receivers_backlog_carries_each_writes_state(ngsi: Ngsi) -> None:
    """Notifications queued behind a slow receiver's earlier ones: each carries its own write's value, in
    order, with a notification id of its own."""
    type_ = "Pump" + uuid.uuid4().hex[:8]
    got: list[Any] = []

    async def slow(request: web.Request) -> web.Response:
        got.append(orjson.loads(await request.read()))
        await asyncio.sleep(0.05)
        return web.Response()

    app = web.Application()
    app.router.add_post("/slow", slow)
    runner, port = await serve_app(app)
    try:
        await create_ok(ngsi, sub_for(f"http://127.0.0.1:{port}/slow", type_))
        pump = await ngsi.create_ok(entity(type_, flow=prop(0), mode=prop("auto")))
        for n in range(1, 11):
            body = {"flow": prop(n)} if n != 5 else {"flow": prop(n), "mode": prop("manual")}
            assert (await ngsi.request("PATCH", ngsi.entity_path(pump) + "/attrs", body=body)).status == 204
        for _ in range(100):
            if len(got) >= 11:
                break
            await asyncio.sleep(0.05)
        assert [n["data"][0]["flow"]["value"] for n in got] == list(range(11))
        # the attributes a write did not touch are the entity's as the dispatcher found it (a write or two
        # later at most): from the write that changed mode on, every notification shows it
        assert [n["data"][0]["mode"]["value"] for n in got][5:] == ["manual"] * 6
        assert len({n["id"] for n in got}) == 11
    finally:
        await runner.cleanup()

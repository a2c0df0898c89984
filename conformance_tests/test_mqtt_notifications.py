"""MQTT notifications (GS CIM 009 clause 7.2): published to the endpoint URI's topic with the QoS of
notifierInfo, as {"metadata": {...headers}, "body": Notification}. Needs an MQTT broker the broker under
test and this process both reach (MQTT_HOST/MQTT_PORT, default 127.0.0.1:1883; skipped when none listens)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any, AsyncIterator

import gmqtt
import orjson
import pytest

from .ngsi import Ngsi, entity, prop, problem, uid
from .test_subscriptions import create_ok

HOST = os.environ.get("MQTT_HOST", "127.0.0.1")
PORT = int(os.environ.get("MQTT_PORT", "1883"))


def _listening() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


pytestmark = [pytest.mark.local_broker,
              pytest.mark.skipif(not _listening(), reason=f"no MQTT broker at {HOST}:{PORT}")]


class Topic:
    def __init__(self) -> None:
        self.name = "ngsild-test/" + uuid.uuid4().hex
        self.got: list[tuple[int, Any]] = []
        self.client = gmqtt.Client("t-" + uuid.uuid4().hex[:12])
        self.client.on_message = self._on_message

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        self.got.append((qos, orjson.loads(payload)))
        return 0

    async def wait(self, count: int, timeout: float = 10.0) -> list[tuple[int, Any]]:
        for _ in range(int(timeout / 0.05)):
            if len(self.got) >= count:
                break
            await asyncio.sleep(0.05)
        return self.got


@pytest.fixture
async def topic() -> AsyncIterator[Topic]:
    found = Topic()
    await found.client.connect(HOST, PORT)
    found.client.subscribe(found.name, qos=2)
    await asyncio.sleep(0.2)
    yield found
    await found.client.disconnect()


def mqtt_sub(type_: str, uri: str, qos: str) -> dict[str, Any]:
    return {"id": uid("Subscription"), "type": "Subscription", "entities": [{"type": type_}],
            "notification": {"format": "keyValues", "endpoint": {
                "uri": uri, "accept": "application/json",
                "notifierInfo": [{"key": "MQTT-QoS", "value": qos}],
                "receiverInfo": [{"key": "X-Origin", "value": "test"}]}}}


@pytest.mark.parametrize("qos", ["0", "1"])
async def test_notifications_are_published_with_metadata_and_body(ngsi: Ngsi, topic: Topic, qos: str) -> None:
    type_ = "Valve" + uuid.uuid4().hex[:8]
    sub_id = await create_ok(ngsi, mqtt_sub(type_, f"mqtt://user:secret@{HOST}:{PORT}/{topic.name}", qos))
    valve = await ngsi.create_ok(entity(type_, open=prop(False)))
    for value in (True, False, True):
        await ngsi.request("PATCH", ngsi.entity_path(valve) + "/attrs", body={"open": prop(value)})
    got = await topic.wait(4)
    assert [message["body"]["data"][0]["open"] for _, message in got] == [False, True, False, True]
    qos_seen, message = got[0]
    assert qos_seen == int(qos)
    assert message["body"]["type"] == "Notification" and message["body"]["subscriptionId"] == sub_id
    assert message["metadata"]["Content-Type"] == "application/json"
    assert message["metadata"]["X-Origin"] == "test" and "Link" in message["metadata"]


async def test_unusable_mqtt_endpoints_are_refused(ngsi: Ngsi) -> None:
    for uri, qos in ((f"mqtt://{HOST}/a/#", "0"), (f"mqtt://{HOST}/a", "3"), (f"mqtt://{HOST}/", "0")):
        reply = await ngsi.request("POST", "/subscriptions", body=mqtt_sub("T", uri, qos))
        problem(reply, 400, "BadRequestData")

"""MqttDelivery (broker/notify/mqtt.py) against a real Mosquitto at 127.0.0.1:1883 (MQTT_TEST_HOST/PORT):
a gmqtt client subscribes to a fresh topic and reads what the deliveries publish there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

import gmqtt
import orjson
import pytest

from broker.notify.delivery import Job
from broker.notify.mqtt import MqttDelivery, parse_endpoint

HOST = os.environ.get("MQTT_TEST_HOST", "127.0.0.1")
PORT = int(os.environ.get("MQTT_TEST_PORT", "1883"))


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _reachable(HOST, PORT), reason=f"no MQTT broker at {HOST}:{PORT}")

HEADERS = {"Content-Type": "application/json",
           "Link": '<http://localhost:1026/ngsi-ld/v1/jsonldContexts/x>; rel="http://www.w3.org/ns/json-ld#context"; '
                   'type="application/ld+json"',
           "NGSILD-Tenant": "t1", "test-receiver-key": "test-receiver-info"}


def notification(n: int) -> dict:
    return {"id": f"urn:ngsi-ld:Notification:{n}", "type": "Notification", "subscriptionId": "urn:ngsi-ld:Subscription:s",
            "notifiedAt": "2024-01-01T00:00:00.000Z", "data": [{"id": "urn:ngsi-ld:Building:b", "type": "Building",
                                                                "n": {"type": "Property", "value": n}}]}


def job(url: str, n: int = 0, sub: str = "urn:ngsi-ld:Subscription:s", timeout: float = 5.0, **notifier: str) -> Job:
    return Job("t1", sub, n, 0, url, dict(HEADERS), orjson.dumps(notification(n)), timeout,
               {k.replace("_", "-"): v for k, v in notifier.items()})


class Outcomes:
    def __init__(self, at: tuple[int, Callable[[], None]] | None = None) -> None:
        self.items: list[tuple[Job, bool, datetime, str | None]] = []
        self.at = at  # (n, action): run the action as the n-th outcome arrives

    def __call__(self, job: Job, ok: bool, when: datetime, reason: str | None) -> None:
        self.items.append((job, ok, when, reason))
        if self.at is not None and len(self.items) == self.at[0]:
            self.at[1]()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            assert time.monotonic() < deadline, f"{len(self.items)} outcomes of {count}"
            await asyncio.sleep(0.01)


class Receiver:
    """A subscriber on ``topic/#`` (QoS 2, so each message arrives with the QoS it was published with)."""

    def __init__(self, host: str = HOST, port: int = PORT, topic: str | None = None) -> None:
        self.host, self.port = host, port
        self.topic = topic or f"ngsild-test/{uuid.uuid4().hex}"
        self.messages: list[tuple[str, dict, int]] = []
        self.client = gmqtt.Client(f"recv-{uuid.uuid4().hex[:12]}")
        self.client.on_message = self._on_message
        self._subscribed = asyncio.Event()
        self.client.on_subscribe = lambda *args: self._subscribed.set()

    def _on_message(self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: dict) -> int:
        self.messages.append((topic, orjson.loads(payload), qos))
        return 0

    async def start(self) -> Receiver:
        await self.client.connect(self.host, self.port, version=gmqtt.constants.MQTTv311)
        self.client.subscribe(f"{self.topic}/#", qos=2)
        await asyncio.wait_for(self._subscribed.wait(), 5)
        return self

    def url(self, sub: str = "a", auth: str = "", port: int | None = None) -> str:
        return f"mqtt://{auth}{self.host}:{port or self.port}/{self.topic}/{sub}"

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} messages of {count}"
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.client.disconnect()


@pytest.fixture
async def delivery() -> AsyncIterator[tuple[MqttDelivery, Outcomes]]:
    outcomes = Outcomes()
    d = MqttDelivery(outcomes, backoff=0.05)
    yield d, outcomes
    await d.close()


def test_endpoint_uri() -> None:
    endpoint, topic, qos = parse_endpoint("mqtt://u%40x:p%3Aw@host/a/b%20c", {})
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.tls) == \
        ("host", 1883, "u@x", "p:w", False)
    assert (topic, qos) == ("a/b c", 0)
    endpoint, topic, qos = parse_endpoint("mqtts://host:8884/t", {"MQTT-QoS": "2", "MQTT-Version": "mqtt5.0"})
    assert (endpoint.port, endpoint.tls, endpoint.version, topic, qos) == (8884, True, 5, "t", 2)
    assert parse_endpoint("mqtts://h/t", {})[0].port == 8883
    for url, notifier in (("mqtt://h/", {}), ("mqtt://h/a/+", {}), ("mqtt://h/a/#", {}), ("mqtt://h/a/%23", {}), ("mqtt://h/a?b", {}),
                          ("http://h/t", {}),
                          ("mqtt://h/t", {"MQTT-QoS": "3"}), ("mqtt://h/t", {"MQTT-Version": "mqtt3"})):
        with pytest.raises(ValueError):
            parse_endpoint(url, notifier)


async def test_message_is_metadata_and_body_on_the_uri_topic(receiver: Receiver, delivery) -> None:
    d, outcomes = delivery
    d.submit(job(receiver.url("room/1"), 7))
    await receiver.wait(1)
    await outcomes.wait(1)
    topic, message, qos = receiver.messages[0]
    assert topic == f"{receiver.topic}/room/1"
    assert qos == 0  # the default MQTT-QoS
    assert message == {"metadata": HEADERS, "body": notification(7)}
    [(_, ok, when, reason)] = outcomes.items
    assert ok and reason is None and when.tzinfo is not None
    assert d.pending() == 0


@pytest.mark.parametrize("version", ["mqtt3.1.1", "mqtt5.0"])
@pytest.mark.parametrize("qos", ["0", "1", "2"])
async def test_qos_and_version(receiver: Receiver, delivery, qos: str, version: str) -> None:
    d, outcomes = delivery
    d.submit(job(receiver.url(), 1, MQTT_QoS=qos, MQTT_Version=version))
    await receiver.wait(1)
    await outcomes.wait(1)
    assert receiver.messages[0][2] == int(qos)
    assert outcomes.items[0][1] is True


async def test_order_of_one_subscription(receiver: Receiver, delivery) -> None:
    d, outcomes = delivery
    for n in range(50):
        d.submit(job(receiver.url(), n, MQTT_QoS="1"))
    assert d.pending() == 50
    await receiver.wait(50)
    await outcomes.wait(50)
    assert [m["body"]["id"] for _, m, _ in receiver.messages] == [f"urn:ngsi-ld:Notification:{n}" for n in range(50)]
    assert [j.seq for j, ok, _, _ in outcomes.items if ok] == list(range(50))
    assert d.pending() == 0


async def test_many_subscriptions_over_mqtt5_receive_maximum(receiver: Receiver, delivery) -> None:
    # Mosquitto grants an MQTT 5 client 20 unacknowledged messages: 100 subscriptions wait for packet ids
    d, outcomes = delivery
    for n in range(5):
        for s in range(100):
            d.submit(job(receiver.url(f"s{s}"), n, sub=f"urn:s{s}", MQTT_QoS="1", MQTT_Version="mqtt5.0"))
    await outcomes.wait(500)
    await receiver.wait(500)
    assert all(ok for _, ok, _, _ in outcomes.items)
    for s in range(100):
        seen = [m["body"]["data"][0]["n"]["value"] for t, m, _ in receiver.messages if t.endswith(f"/s{s}")]
        assert seen == list(range(5))


async def test_user_and_password_in_the_uri(receiver: Receiver, delivery) -> None:
    d, outcomes = delivery  # the anonymous broker accepts any credentials
    d.submit(job(receiver.url("x", auth="user:secret@"), 1, sub="s1", MQTT_QoS="1"))
    d.submit(job(receiver.url("y", auth="user@"), 2, sub="s2", MQTT_QoS="1"))
    await receiver.wait(2)
    await outcomes.wait(2)
    assert sorted(t.rsplit("/", 1)[1] for t, _, _ in receiver.messages) == ["x", "y"]
    assert all(ok for _, ok, _, _ in outcomes.items)


async def test_dead_endpoint_fails_without_delaying_others(receiver: Receiver) -> None:
    outcomes = Outcomes()
    d = MqttDelivery(outcomes, backoff=0.2)  # retries at 0.2, 0.4, 0.8 s
    try:
        start = time.monotonic()
        d.submit(job("mqtt://127.0.0.1:1/x", 1, sub="dead", MQTT_QoS="1"))
        d.submit(job(receiver.url(), 2, sub="alive", MQTT_QoS="1"))
        await receiver.wait(1)
        assert time.monotonic() - start < 1.0  # long before the dead endpoint has given up
        await outcomes.wait(2)
        (alive, ok1, _, _), (dead, ok2, _, reason) = outcomes.items
        assert (alive.sub_id, ok1, dead.sub_id, ok2) == ("alive", True, "dead", False)
        assert "ConnectionRefused" in reason
        assert time.monotonic() - start >= 1.4  # after every retry
    finally:
        await d.close()


async def test_invalid_endpoint_fails_at_once(delivery) -> None:
    d, outcomes = delivery
    d.submit(job("mqtt://127.0.0.1/a/+", 1))
    d.submit(job("mqtt://127.0.0.1/a", 2, sub="other", MQTT_QoS="7"))
    await outcomes.wait(2, timeout=0.5)
    assert [ok for _, ok, _, _ in outcomes.items] == [False, False]
    assert "topic" in outcomes.items[0][3] and "MQTT-QoS" in outcomes.items[1][3]


async def test_backlog_bound(receiver: Receiver) -> None:
    outcomes = Outcomes()
    d = MqttDelivery(outcomes, max_queue=5)
    try:
        for n in range(8):
            d.submit(job(receiver.url(), n, MQTT_QoS="1"))
        assert [(j.seq, ok, reason) for j, ok, _, reason in outcomes.items] == \
            [(n, False, "backlog full") for n in (5, 6, 7)]  # reported at once, the queue untouched
        assert d.pending() == 5 and d.dropped == 3
        await outcomes.wait(8)
        await receiver.wait(5)
        assert [m["body"]["id"][-1] for _, m, _ in receiver.messages] == list("01234")
    finally:
        await d.close()


class PrivateBroker:
    """A Mosquitto of our own (local-only mode: anonymous on loopback) that a test may stop and start."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not _reachable("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "mosquitto did not start"
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, at once: the connections drop with whatever they had in flight."""
        if self.proc is not None:
            self.proc.kill()


@pytest.fixture
async def private_broker() -> AsyncIterator[PrivateBroker]:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        pytest.skip("no mosquitto binary")
    broker = PrivateBroker(binary)
    await broker.start()
    yield broker
    broker.stop()


async def test_reconnects_after_the_broker_restarts(private_broker: PrivateBroker) -> None:
    receiver = await Receiver(port=private_broker.port).start()
    outcomes = Outcomes()
    d = MqttDelivery(outcomes, backoff=0.05)
    try:
        d.submit(job(receiver.url(), 1, MQTT_QoS="1"))
        await outcomes.wait(1)
        assert outcomes.items[0][1] is True
        await receiver.client.disconnect()
        private_broker.stop()
        await asyncio.sleep(0.2)  # the delivery sees its connection close
        d.submit(job(receiver.url(), 2, MQTT_QoS="1"))
        await outcomes.wait(2)
        assert outcomes.items[1][1] is False  # nobody takes it: failed after the retries
        await private_broker.start()
        receiver = await Receiver(port=private_broker.port).start()
        await asyncio.sleep(0.5)  # past the endpoint's hold-down after the failed attempts
        d.submit(job(receiver.url(), 3, MQTT_QoS="1"))
        await outcomes.wait(3)
        assert outcomes.items[2][1] is True, outcomes.items[2]
        await receiver.wait(1)
        assert receiver.messages[0][1]["body"]["id"].endswith(":3")
    finally:
        await d.close()
        await receiver.client.disconnect()


async def test_messages_in_flight_when_the_connection_drops_are_sent_again(private_broker: PrivateBroker) -> None:
    before = await Receiver(port=private_broker.port).start()
    # the broker is killed as the 50th acknowledgement arrives (not after a poll: on a fast machine all the
    # messages would be acknowledged by then): the others are in flight or not yet published
    outcomes = Outcomes(at=(50, private_broker.kill))
    # the first retry comes 0.5 s after the drop (then 1 s, 2 s): by then the broker is back and the new
    # receiver subscribed (a message re-sent before it subscribes would reach nobody)
    d = MqttDelivery(outcomes, backoff=0.5)
    total = 1000
    try:
        for n in range(total):
            d.submit(job(before.url(), n, MQTT_QoS="1"))
        await outcomes.wait(50)
        private_broker.stop()
        with contextlib.suppress(OSError):
            await before.client.disconnect()
        await private_broker.start()
        after = await Receiver(port=private_broker.port, topic=before.topic).start()
        subscribed = datetime.now(timezone.utc)
        await outcomes.wait(total)
        assert [(j.seq, ok) for j, ok, _, _ in outcomes.items] == [(n, True) for n in range(total)]
        seen = [m["body"]["data"][0]["n"]["value"] for r in (before, after) for _, m, _ in r.messages]
        # what the broker had acknowledged when it died it may have lost (QoS 1 means "the broker has it");
        # every message acknowledged after the new receiver subscribed went to the new broker and reached it
        late = {j.seq for j, _, when, _ in outcomes.items if when > subscribed}
        resent = {m["body"]["data"][0]["n"]["value"] for _, m, _ in after.messages}
        assert late and late <= resent, (len(late), sorted(late - resent)[:10])
        assert seen[-1] == total - 1
    finally:
        await d.close()
        await after.client.disconnect()

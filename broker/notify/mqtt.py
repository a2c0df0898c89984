"""Sending notifications over MQTT (GS CIM 009 clause 7 "API MQTT Notification Binding", 5.8.6), with the
interface of ``HttpDelivery`` (``submit``, ``pending``, ``close``; the same ``Job`` and ``Outcome``).

* The message (clause 7.2) is the JSON object ``{"metadata": {...}, "body": <Notification>}``: ``metadata``
  holds what HTTP sends as headers (Content-Type, Link, NGSILD-Tenant, receiverInfo). It is published to the
  topic of the URI ``mqtt[s]://[user[:password]@]host[:port]/topic[/sub]*`` (the path without its leading
  ``/``; port 1883, 8883 for mqtts over TLS) with notifierInfo's ``MQTT-QoS`` (0, 1, 2; default 0) and
  ``MQTT-Version`` (``mqtt3.1.1``, the default, or ``mqtt5.0``).
* One FIFO queue per subscription (at most ``max_queue``; beyond, "backlog full" failures), drained by its
  own task keeping up to ``WINDOW`` messages unacknowledged, publishing the next as the oldest is
  acknowledged (a broker acknowledges a connection's messages in order): write order is kept end to end.
* One gmqtt connection per (scheme, host, port, user, password, version), shared: opened on first use with
  a timeout (concurrent senders share the attempt), anew by the next publish after a loss. A failed attempt
  holds the endpoint down for a backoff (doubling up to ``HOLD_MAX``) in which sends fail at once. gmqtt's
  own reconnection is off, so nothing is replayed behind our back.
* Delivered: written (QoS 0), or PUBACK (QoS 1) / PUBCOMP (QoS 2) received within the job's timeout. After a
  connection error, a loss or a timeout, the unsettled messages are published again from the oldest, with
  exponential backoff, up to ``RETRIES`` times without progress; then those in flight have failed (at least
  once: a message published again may arrive twice).
* ``on_outcome`` is called once per job, except jobs still queued at ``close()``: left unsettled, so that the
  dispatcher sends them again after a restart (as with HttpDelivery).

Not covered: gmqtt ignores MQTT 5 reason codes in PUBACK / PUBREC (a broker refusing a message that way counts
as a success); idle connections stay open until ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache, partial
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import gmqtt
import orjson
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.storage import PersistentStorage

from .delivery import BACKOFF, RETRIES, Job, Outcome, Queues, SubQueue

log = logging.getLogger(__name__)
WINDOW = 64  # messages of one subscription in flight at once
CONNECT_TIMEOUT = 5.0
KEEPALIVE = 30  # seconds; gmqtt drops a connection that has been silent for twice that
HOLD_MAX = 5.0  # longest hold-down of an endpoint whose connection attempts fail
VERSIONS = {"mqtt3.1.1": MQTTv311, "mqtt5.0": MQTTv50}
Ack = asyncio.Future[None] | None  # settles when the broker has the message; None: QoS 0, written


@dataclass(frozen=True)
class Endpoint:
    tls: bool
    host: str
    port: int
    user: str | None
    password: str | None
    version: int


def parse_endpoint(url: str, notifier: dict[str, str]) -> tuple[Endpoint, str, int]:
    """(connection key, topic, QoS) of an MQTT endpoint; ValueError if unusable."""
    return _parse(url, notifier.get("MQTT-QoS", "0"), notifier.get("MQTT-Version", "mqtt3.1.1"))


@lru_cache(maxsize=4096)
def _parse(url: str, qos: str, version: str) -> tuple[Endpoint, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT endpoint URI: {url}")
    topic = unquote(parts.path[1:])
    # a wildcard in a PUBLISH makes the broker drop the connection, and every subscription's messages with it
    if not topic or parts.query or "#" in url or any(c in topic for c in "+#\x00"):
        raise ValueError(f"invalid MQTT topic {topic!r}")
    if qos not in ("0", "1", "2") or version not in VERSIONS:
        raise ValueError(f"invalid notifierInfo MQTT-QoS {qos!r} / MQTT-Version {version!r}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    port = parts.port or (8883 if scheme == "mqtts" else 1883)
    return Endpoint(scheme == "mqtts", parts.hostname, port, user, password, VERSIONS[version]), topic, int(qos)


def message(job: Job) -> bytes:
    """The MQTT payload (clause 7.2): the HTTP headers as "metadata", the notification as "body"."""
    return b'{"metadata":' + orjson.dumps(job.headers) + b',"body":' + job.body + b"}"


class Unreachable(ConnectionError):
    """The endpoint cannot take messages now; the text is the whole reason."""


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Unreachable) else f"{type(exc).__name__}: {exc}"


class _Acks(PersistentStorage):
    """gmqtt keeps each unacknowledged QoS 1/2 PUBLISH here and drops it on PUBACK / PUBCOMP: each drop
    settles the future of that packet id; a lost connection fails them all."""

    def __init__(self) -> None:
        super().__init__()
        self.last_mid: int | None = None
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.freed = asyncio.Event()  # a packet id was released (publishers blocked on the id window)

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        self.freed.set()
        future = self.waiting.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def fail_all(self, reason: str) -> None:
        waiting, self.waiting = self.waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(Unreachable(reason))
                future.exception()  # marked as retrieved: only the oldest one is awaited
        self.freed.set()


class _Client(gmqtt.Client):
    async def reconnect(self, delay: bool = False) -> None:
        """Never: MqttDelivery opens a new connection itself when it needs one."""


class _Conn:
    def __init__(self, endpoint: Endpoint, hold: float) -> None:
        self.endpoint = endpoint
        self.client: _Client | None = None
        self.acks = _Acks()
        self.opening: asyncio.Future[_Client] | None = None
        self.hold = hold
        self.held_until = 0.0
        self.error = ""


class MqttDelivery(Queues):
    def __init__(self, on_outcome: Outcome, *, max_queue: int = 10_000, connect_timeout: float = CONNECT_TIMEOUT,
                 backoff: float = BACKOFF, window: int = WINDOW) -> None:
        super().__init__(on_outcome, max_queue)
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self.window = window
        self._conns: dict[Endpoint, _Conn] = {}

    async def close(self) -> None:
        for queue in self._queues.values():
            if queue.task is not None:
                queue.task.cancel()
        for conn in self._conns.values():
            if conn.opening is not None:
                conn.opening.cancel()
            client, conn.client = conn.client, None
            if client is not None:
                await self._discard(client)
        self._conns.clear()

    def submit(self, job: Job) -> None:
        queue = self.enqueue(job)
        if queue is not None and (queue.task is None or queue.task.done()):
            queue.task = asyncio.create_task(self._drain((job.tenant, job.sub_id), queue))

    async def _drain(self, key: tuple[str, str], queue: SubQueue) -> None:
        delay, attempt = self.backoff, 0
        while queue.jobs:
            failing, retry, reason, progress = await self._stream(queue)
            self.trouble(queue, reason is not None and not progress)
            if reason is None or progress:  # the head has its own retries
                delay, attempt = self.backoff, 0
            if reason is None:
                continue
            if retry and attempt < RETRIES:
                attempt += 1
                await asyncio.sleep(delay)
                delay *= 2
                continue
            log.info("%d MQTT notifications for subscription %s to %s failed: %s", failing, queue.jobs[0].sub_id,
                     queue.jobs[0].url, reason)
            when = datetime.now(timezone.utc)
            for _ in range(min(failing, len(queue.jobs))):
                self.on_outcome(queue.jobs.popleft(), False, when, reason)
            delay, attempt = self.backoff, 0
        self.finished(key, queue)

    async def _stream(self, queue: SubQueue) -> tuple[int, bool, str | None, bool]:
        """Publish the queue's jobs that go where its head goes, up to ``window`` unacknowledged, settling each
        job as its acknowledgement arrives (they come in order). Return when the queue is empty or goes
        elsewhere (reason None), or at a failure: (jobs in flight, retry?, reason, any delivered?)."""
        head = queue.jobs[0]
        try:
            endpoint, topic, qos = parse_endpoint(head.url, head.notifier)
        except ValueError as exc:
            return 1, False, str(exc), False
        conn = self._conns.get(endpoint)
        if conn is None:
            conn = self._conns[endpoint] = _Conn(endpoint, self.backoff)
        loop = asyncio.get_running_loop()
        inflight: deque[tuple[Ack, float]] = deque()  # (ack, its deadline) of queue.jobs[0], [1], ...
        delivered = 0
        try:
            while queue.jobs:
                while len(inflight) < min(self.window, len(queue.jobs)):
                    job = queue.jobs[len(inflight)]
                    if job.url != head.url or job.notifier != head.notifier or job.timeout != head.timeout:
                        if not inflight:
                            return 0, False, None, delivered > 0  # a new head: a new stream
                        break
                    payload = message(job)
                    ack = self._publish_now(conn, topic, payload, qos)
                    if ack is False:
                        async with asyncio.timeout(job.timeout):
                            ack = await self._publish(conn, topic, payload, qos)
                    inflight.append((ack, loop.time() + job.timeout))
                ack, deadline = inflight[0]
                if ack is not None and not ack.done():
                    async with asyncio.timeout_at(deadline):
                        await ack
                elif ack is not None:
                    ack.result()  # raises if the connection was lost
                inflight.popleft()
                self.on_outcome(queue.jobs.popleft(), True, datetime.now(timezone.utc), None)
                delivered += 1
                if delivered % self.window == 0:
                    await asyncio.sleep(0)  # QoS 0 never waits: let the other queues run
            return 0, False, None, True
        except TimeoutError:
            reason = "timeout"
        except (OSError, gmqtt.MQTTConnectError) as exc:  # ConnectionError is an OSError
            reason = _reason(exc)
        except Exception as exc:  # a bug here must not lose the outcome of these jobs
            log.exception("publishing to %s", head.url)
            reason = _reason(exc)
        for ack, _ in inflight:
            if ack is not None and not ack.done():
                ack.cancel()
        return max(1, len(inflight)), True, reason, delivered > 0

    def _publish_now(self, conn: _Conn, topic: str, payload: bytes, qos: int) -> Ack | Literal[False]:
        """Publish on the open connection; False if it must wait (no connection, or no free packet id)."""
        client = conn.client
        if client is None or not client.is_connected:
            return False
        acks = conn.acks  # the storage of this client
        acks.last_mid = None
        try:
            client.publish(topic, payload, qos=qos)
        except OverflowError:  # every packet id is in flight (the broker's Receive Maximum)
            return False
        if qos == 0:
            return None
        assert acks.last_mid is not None
        future = acks.waiting[acks.last_mid] = asyncio.get_running_loop().create_future()
        return future

    async def _publish(self, conn: _Conn, topic: str, payload: bytes, qos: int) -> Ack:
        while True:
            ack = self._publish_now(conn, topic, payload, qos)
            if ack is not False:
                return ack
            client = conn.client
            if client is not None and client.is_connected:  # wait for a packet id
                conn.acks.freed.clear()
                await conn.acks.freed.wait()
            else:
                await self._client(conn)

    async def _client(self, conn: _Conn) -> _Client:
        client = conn.client
        if client is not None:
            if client.is_connected:
                return client
            self._lost(conn, client, None)  # closing, not yet reported
        if time.monotonic() < conn.held_until:
            raise Unreachable(conn.error)
        if conn.opening is None:
            conn.opening = asyncio.ensure_future(self._open(conn))
            conn.opening.add_done_callback(lambda f: f.cancelled() or f.exception())  # waiters may be gone
        return await asyncio.shield(conn.opening)

    async def _open(self, conn: _Conn) -> _Client:
        endpoint = conn.endpoint
        acks = _Acks()
        client = _Client(f"ngsild-{uuid.uuid4().hex[:16]}", persistent_storage=acks)
        if endpoint.user is not None:
            client.set_auth_credentials(endpoint.user, endpoint.password)
        client.on_disconnect = partial(self._lost, conn)
        tls: Any = ssl.create_default_context() if endpoint.tls else False
        try:
            async with asyncio.timeout(self.connect_timeout):
                await client.connect(endpoint.host, endpoint.port, ssl=tls, keepalive=KEEPALIVE,
                                     version=endpoint.version)
        except BaseException as exc:
            conn.error = "connect timeout" if isinstance(exc, TimeoutError) else _reason(exc)
            conn.held_until = time.monotonic() + conn.hold
            conn.hold = min(conn.hold * 2, HOLD_MAX)
            await self._discard(client)
            if isinstance(exc, TimeoutError):
                raise Unreachable(conn.error) from None
            raise
        finally:
            conn.opening = None
        log.info("MQTT connection to %s:%d open", endpoint.host, endpoint.port)
        conn.hold = self.backoff
        conn.client, conn.acks = client, acks
        return client

    def _lost(self, conn: _Conn, client: _Client, packet: Any, exc: Any = None) -> None:
        if conn.client is client:
            log.warning("MQTT connection to %s:%d lost", conn.endpoint.host, conn.endpoint.port)
            conn.client = None
            conn.acks.fail_all("MQTT connection lost")

    @staticmethod
    async def _discard(client: _Client) -> None:
        try:
            async with asyncio.timeout(1.0):
                await client.disconnect()
        except Exception:  # closing what never fully opened, or is already gone
            pass

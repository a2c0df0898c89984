"""Webhook receivers for ``benchmarks.notifications``, run in their own process.

``python -m benchmarks.receiver --port P --dead-port Q`` serves:

* on P, a bare ASGI app under uvicorn (httptools; ~40 µs of CPU per notification here, where an aiohttp.web
  app took ~65 µs: the receiver shares the machine with the broker it measures): ``POST /notify`` records,
  for every entity of the notification, its arrival time (``time.monotonic()``: CLOCK_MONOTONIC, the same
  clock in every process of the machine), the subscription id, the entity id and the value of the entity's
  ``speed`` attribute, and answers 204;
  ``GET /count`` gives the number of records and the last arrival; ``GET /take`` returns the records
  (``[[arrival, subscription, entity, value], ...]``) and forgets them; ``GET /version`` answers 200;
* on Q, a dead receiver: it accepts TCP connections, reads whatever comes and never answers;
* with ``--mqtt HOST:PORT``, an MQTT subscriber to ``ngsild-bench/#`` (QoS 1) recording the ``body`` of each
  NGSI-LD MQTT notification (clause 7.2) like a POST to ``/notify``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson
import uvicorn

Record = tuple[float, str, str, Any]
TOPICS = "ngsild-bench/#"  # MQTT notification topics of the benchmark's subscriptions


def _speed(entity: dict[str, Any]) -> Any:
    speed = entity.get("speed")
    return speed.get("value") if isinstance(speed, dict) else speed  # normalized or keyValues


def make_app() -> tuple[Any, Any]:
    """The ASGI app, and the function recording one notification document (for the MQTT subscriber too)."""
    records: list[Record] = []
    state = {"last": 0.0, "bad": 0}

    def record(body: bytes, mqtt: bool = False) -> None:
        now = time.monotonic()
        try:
            doc = orjson.loads(body)
            doc = doc["body"] if mqtt else doc
            sub = doc["subscriptionId"]
            records.extend((now, sub, e["id"], _speed(e)) for e in doc["data"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            state["bad"] += 1
        state["last"] = now

    def take() -> bytes:
        taken = records[:]
        del records[:len(taken)]
        return orjson.dumps(taken)

    answers = {"/count": lambda: orjson.dumps({"count": len(records), "last": state["last"], "bad": state["bad"],
                                               "now": time.monotonic()}),
               "/take": take, "/version": lambda: b'{"receiver": true}'}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST" and scope["path"] == "/notify":
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            record(body)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = answers.get(scope["path"]) if scope["method"] == "GET" else None
        await send({"type": "http.response.start", "status": 200 if answer else 404,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer() if answer else b"{}"})

    return app, record


async def _dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):  # read and discard until the peer gives up; never answer
        pass
    writer.close()


async def subscribe_mqtt(address: str, record: Any) -> Any:
    import gmqtt

    host, _, port = address.rpartition(":")
    client = gmqtt.Client(f"bench-receiver-{port}-{time.monotonic_ns()}")

    def on_message(client: Any, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        record(payload, mqtt=True)
        return 0

    client.on_message = on_message
    await client.connect(host, int(port))
    client.subscribe(TOPICS, qos=1)
    return client


async def serve(port: int, dead_port: int, mqtt: str | None = None) -> None:
    app, record = make_app()
    if mqtt:
        await subscribe_mqtt(mqtt, record)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http="httptools", lifespan="off", access_log=False,
                            log_level="warning", backlog=1024)
    dead = await asyncio.start_server(_dead, "127.0.0.1", dead_port, backlog=1024)
    async with dead:
        await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dead-port", type=int, required=True)
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="also record MQTT notifications from this broker")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.dead_port, args.mqtt))
    else:
        uvloop.run(serve(args.port, args.dead_port, args.mqtt))


if __name__ == "__main__":
    main()

"""One write per response (broker.api.transport): the writes of one event-loop step leave together, a close
sends what is pending first, and HTTP over the real server stays byte-correct (pipelined keep-alive requests)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest

from broker.api.transport import CoalescingTransport, http_protocol


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def _step() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_step_leave_as_one():
    raw = FakeTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(b"")
    t.write(b"{}")
    assert raw.writes == [] and t.get_write_buffer_size() == 40
    await _step()
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    t.write(b"next")
    await _step()
    assert raw.writes[1:] == [b"next"]  # a later step is a later write, in order


async def test_close_sends_what_is_pending_first_and_abort_drops_it():
    raw = FakeTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"head")
    t.write(b"body")
    t.close()
    assert raw.writes == [b"headbody"] and raw.closed
    await _step()  # the scheduled flush finds nothing left
    assert raw.writes == [b"headbody"]

    raw = FakeTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"lost")
    t.abort()
    await _step()
    assert raw.writes == [] and raw.aborted


async def test_other_calls_reach_the_transport():
    raw = FakeTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("peername") == ("127.0.0.1", 5)
    raw.closed = True
    assert t.is_closing()
    t.write(b"after close")
    await _step()
    assert raw.writes == []  # a closed connection drops it, as uvloop would


def test_the_broker_serves_with_it():
    pytest.importorskip("httptools")
    assert http_protocol().__name__ == "CoalescingHttpToolsProtocol"


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


async def test_pipelined_requests_get_whole_responses_in_order(broker_url: str):
    url = urlsplit(broker_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        request = (b"GET /ngsi-ld/v1/entities/urn:ngsi-ld:T:absent-%d HTTP/1.1\r\nHost: x\r\n"
                   b"Accept: application/json\r\n\r\n")
        writer.write(request % 1 + request % 2)  # two requests in one packet
        await writer.drain()
        for n in (1, 2):
            head, body = await asyncio.wait_for(_response(reader), 10)
            assert head.startswith(b"HTTP/1.1 404 ")
            assert b"urn:ngsi-ld:T:absent-%d" % n in body
    finally:
        writer.close()

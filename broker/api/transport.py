"""One socket write per response: the uvicorn HTTP protocol the broker serves with.

uvicorn writes a response's status line and headers, then its body, as two ``transport.write`` calls, and
uvloop sends each at once: two ``send`` system calls per response. Where system calls are dear (on the
2-core VMs we benchmark on, socket writes were a third of a worker's CPU under load), that is a cost per
request as large as the handler's own work. ``CoalescingHttpToolsProtocol`` hands uvicorn a transport that
gathers the writes made in one event-loop step and sends them together at the end of that step
(``loop.call_soon``): the head and the body of a response go out in one ``send``, and nothing waits for
a later event (a close flushes first). Everything else is uvicorn's own protocol, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: uvicorn's own choice ("auto") is used instead
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class CoalescingTransport:
    """Forwards to ``transport``; the writes made in one event-loop step leave as one write."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        pending = sum(len(chunk) for chunk in self._pending) if self._pending else 0
        return pending + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, …
        return getattr(self._transport, name)


if HttpToolsProtocol is not None:
    class CoalescingHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def http_protocol() -> Any:
    """The ``http`` option for ``uvicorn.run``."""
    return CoalescingHttpToolsProtocol if HttpToolsProtocol is not None else "auto"

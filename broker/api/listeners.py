"""Listening sockets of a multi-process broker: one per worker, so the kernel spreads the connections.

uvicorn's workers share ONE listening socket, and libuv accepts every pending connection in a loop: the
worker that wakes first takes all the connections waiting. A client that opens a few keep-alive connections
at once (an IoT agent, a batch loader; measured: 4 batch connections, all 4 in one worker) then has a single
core serving it while the other workers idle. With ``SO_REUSEPORT`` (Linux) each worker listens on a socket
of its own, bound to the same address, and the kernel assigns each new connection to one of them (a hash of
the connection's addresses), the way nginx's and gunicorn's ``reuse_port`` do.

uvicorn's supervisor hands each worker the sockets it was given by pickling them into the new process.
``PerWorkerListener`` stands in for that socket: it pickles as a call to ``reuseport_listener``, so each
worker unpickles a listening socket of its own. The supervisor's restarts of dead workers keep working.
"""

from __future__ import annotations

import socket
import sys
from typing import Any, Callable

import uvicorn
from uvicorn.supervisors import Multiprocess


def supported() -> bool:
    # Linux balances connections over SO_REUSEPORT sockets; other systems admit the option but may hand every
    # connection to one of them
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuseport_listener(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other sockets of this user may share (``SO_REUSEPORT``)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) if anything listens on (host, port) already: two brokers must not end up
    sharing a port through ``SO_REUSEPORT``, which admits any process of the same user."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class PerWorkerListener:
    """A placeholder for uvicorn's shared socket that becomes a fresh ``SO_REUSEPORT`` listener in each worker."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.address = (host, port, backlog)

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[Any, ...]]:
        return reuseport_listener, self.address


def serve_workers(app_factory: str, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` processes of the app that the import string ``app_factory`` builds, under uvicorn's
    supervisor, each listening on a socket of its own where the platform allows it, else sharing one."""
    if not supported():
        uvicorn.run(app_factory, factory=True, workers=workers, **options)
        return
    config = uvicorn.Config(app_factory, factory=True, workers=workers, **options)
    try:
        check_port_free(config.host, config.port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    Multiprocess(config, sockets=[PerWorkerListener(config.host, config.port, config.backlog)]).run()  # type: ignore[list-item]

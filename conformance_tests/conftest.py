"""Fixtures of the black-box NGSI-LD conformance suite.

The suite speaks HTTP only, so it runs against any broker:

* by default it starts OUR broker (``python -m broker serve``) on a fresh database, exactly like
  ``tests/conftest.py`` does (``TEST_DATABASE_URL`` names a PostgreSQL server to create that database on,
  otherwise an embedded PostgreSQL is used);
* ``BROKER_URL=http://host:1026`` runs it against a broker that is already running (Orion-LD, Scorpio,
  Stellio, ...). Tests marked ``local_broker`` depend on our broker's configuration and are skipped then.

Some tests need a remote ``@context`` the broker can fetch: the session fixture ``context_server`` serves
them from a small HTTP server in this process. It listens on 127.0.0.1; when the broker under test runs
elsewhere (a container), set ``CONFORMANCE_CONTEXT_HOST`` to the host name the broker can reach this machine
by (the server then listens on all interfaces).
"""

from __future__ import annotations

import os
import uuid
from typing import Any, AsyncIterator, Iterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from broker.testing import BrokerProcess, fresh_database, serve_app, server_dsn

from .ngsi import EXTERNAL, Ngsi


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_broker: depends on the configuration of the broker started by the suite "
                   "(skipped when BROKER_URL is set)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not EXTERNAL:
        return
    skip = pytest.mark.skip(reason="depends on our broker's configuration; BROKER_URL is set")
    for item in items:
        if "local_broker" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_dsn() -> Iterator[str]:
    with server_dsn() as admin, fresh_database(admin) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    external = os.environ.get("BROKER_URL")
    if external:
        yield external.rstrip("/")
        return
    dsn = request.getfixturevalue("database_dsn")
    broker = BrokerProcess(dsn).start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # one connection per request: a broker may close a kept-alive connection after an error (seen after a
    # 500), and reusing such a connection would fail the next, unrelated request on the client side
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture(scope="session")
def ngsi(http: aiohttp.ClientSession, broker_url: str) -> Ngsi:
    return Ngsi(http, broker_url)


class ContextServer:
    """Serves JSON-LD @context documents (and broken ones) to the broker under test."""

    def __init__(self) -> None:
        self.base = ""
        self._routes: dict[str, tuple[int, str, bytes]] = {}
        self.hits: dict[str, int] = {}

    def serve(self, document: Any, *, status: int = 200, content_type: str = "application/ld+json") -> str:
        """A fresh URL serving ``document`` (a JSON value, or bytes served as they are)."""
        path = f"/ctx/{uuid.uuid4().hex}.jsonld"
        body = document if isinstance(document, bytes) else orjson.dumps(document)
        self._routes[path] = (status, content_type, body)
        return self.base + path

    def context(self, terms: dict[str, Any]) -> str:
        """A fresh URL serving ``{"@context": terms}``."""
        return self.serve({"@context": terms})

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        found = self._routes.get(request.path)
        if found is None:
            return web.Response(status=404, text="not found")
        status, content_type, body = found
        return web.Response(status=status, body=body, content_type=content_type)


@pytest.fixture(scope="session")
async def context_server() -> AsyncIterator[ContextServer]:
    server = ContextServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server._handle)
    advertised = os.environ.get("CONFORMANCE_CONTEXT_HOST", "127.0.0.1")
    bind = "127.0.0.1" if advertised in ("127.0.0.1", "localhost") else "0.0.0.0"
    runner, port = await serve_app(app, bind)
    server.base = f"http://{advertised}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()

"""Session fixtures: one broker HTTP server (subprocess) on a fresh database, and an aiohttp client.

Set TEST_DATABASE_URL to use a PostgreSQL server (a fresh database is created on it and dropped after);
otherwise an embedded PostgreSQL is started in a temporary directory. Set BROKER_URL to test a broker that
is already running (then no database is created).
"""

from __future__ import annotations

import os
from typing import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest
from hypothesis import settings

# CI: the same examples every run (no flaky discoveries in CI; explore locally), no per-example deadline on a
# shared 2-core machine
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

from broker.config import Settings
from broker.jsonld import ContextResolver
from broker.store import db as store_db, schema
from broker.testing import BrokerProcess, fresh_database, server_dsn
from geo_support import Db


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
    # keep idle connections for less than the server's keep-alive (uvicorn: 5 s): reusing one the server is
    # closing just then fails the request on the client side (seen after a long test that made no request)
    connector = aiohttp.TCPConnector(keepalive_timeout=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


# geo-query tests (tests/test_geo*.py): a connection that evaluates compiled geo filters
@pytest.fixture(scope="module")
def db(database_dsn: str) -> Iterator[Db]:
    db = Db(database_dsn)
    yield db
    db.close()


@pytest.fixture(scope="module")
def pgdb(database_dsn: str) -> Iterator[Db]:
    """A fresh database with PostGIS, or skip."""
    with fresh_database(database_dsn, "ngsild_geo") as dsn:
        try:
            db = Db(dsn, postgis=True)
        except asyncpg.PostgresError as exc:
            pytest.skip(f"PostGIS is not available on this server (CREATE EXTENSION postgis: {exc}); the "
                        "equivalence tests need TEST_DATABASE_URL on a server with PostGIS")
        yield db
        db.close()


# storage-level tests (tests/test_store.py, tests/test_dispatch_reading.py): a connection pool on the migrated
# session database
@pytest.fixture(scope="module")
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await store_db.connect(database_dsn)
    await schema.migrate(conn)
    await conn.close()
    pool = await store_db.create_pool(database_dsn, 8)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def resolver() -> AsyncIterator[ContextResolver]:
    """A context resolver that never fetches (the shipped and local contexts only), for tests without HTTP."""
    r = ContextResolver(Settings(context_fetch_remote=False), None)
    await r.start()
    yield r
    await r.close()

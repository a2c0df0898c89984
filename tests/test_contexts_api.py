"""``/ngsi-ld/v1/jsonldContexts`` over HTTP against a real broker (fixtures ``broker_url``/``http`` in conftest).

Remote @contexts are served by a context server on 127.0.0.1 inside the test process (no network).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web

from broker.testing import serve_app

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CORE_V16 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
DETAIL_KEYS = {"URL", "localId", "kind", "createdAt", "lastUsage", "numberOfHits", "extraInfo", "body", "expiresAt"}
MINIMAL = {"@context": {"A1": "urn:ngsi-ld:attributes:A1", "A2": "urn:ngsi-ld:attributes:A2"}}
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


class ContextServer:
    def __init__(self) -> None:
        self.up = True
        self.hits = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name:.*}", self.handle)
        self.runner, port = await serve_app(app)
        self.base = f"http://127.0.0.1:{port}"

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if not self.up:
            return web.Response(status=503)
        name = request.match_info["name"]
        return web.Response(body=orjson.dumps({"@context": {"speed": f"http://example.org/{name}#speed"}}),
                            content_type="text/plain")  # lenient about the content type


@pytest.fixture
async def ctx_server() -> AsyncIterator[ContextServer]:
    server = ContextServer()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


def api(broker_url: str, path: str = "") -> str:
    return f"{broker_url}/ngsi-ld/v1/jsonldContexts{path}"


def tenant_headers(tenant: str | None) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant} if tenant else {}


async def add(http: aiohttp.ClientSession, broker_url: str, body: Any, tenant: str | None = None) -> str:
    async with http.post(api(broker_url), data=orjson.dumps(body),
                         headers={"Content-Type": "application/json", **tenant_headers(tenant)}) as resp:
        assert resp.status == 201, await resp.text()
        assert await resp.read() == b""
        location = resp.headers["Location"]
        assert location.startswith("/ngsi-ld/v1/jsonldContexts/")
        return location


async def get_json(http: aiohttp.ClientSession, url: str, status: int = 200, **kwargs: Any) -> Any:
    async with http.get(url, **kwargs) as resp:
        assert resp.status == status, await resp.text()
        if status == 200:
            assert resp.headers["Content-Type"] == "application/json"
        return await resp.json()


async def details(http: aiohttp.ClientSession, broker_url: str, ident: str, tenant: str | None = None) -> Any:
    return await get_json(http, api(broker_url, "/" + quote(ident, safe="")), params={"details": "true"},
                          headers=tenant_headers(tenant))


async def use_context(http: aiohttp.ClientSession, broker_url: str, url: str, tenant: str | None = None) -> None:
    """A request that uses a @context: create an entity with it (and drop the entity)."""
    entity_id = f"urn:ngsi-ld:Test:{uuid.uuid4().hex}"
    body = {"id": entity_id, "type": "Test", "speed": {"type": "Property", "value": 1}, "@context": url}
    async with http.post(f"{broker_url}/ngsi-ld/v1/entities", data=orjson.dumps(body),
                         headers={"Content-Type": "application/ld+json", **tenant_headers(tenant)}) as resp:
        assert resp.status == 201, await resp.text()
    async with http.delete(f"{broker_url}/ngsi-ld/v1/entities/{quote(entity_id, safe='')}",
                           headers=tenant_headers(tenant)):
        pass


# ---- add / serve / delete hosted contexts --------------------------------------------------------------

async def test_add_serve_delete(http: aiohttp.ClientSession, broker_url: str) -> None:
    location = await add(http, broker_url, MINIMAL)
    local_id = location.rsplit("/", 1)[1]
    assert await get_json(http, broker_url + location) == MINIMAL
    assert await get_json(http, broker_url + location, params={"details": "false"}) == MINIMAL
    info = await details(http, broker_url, local_id)
    assert set(info) <= DETAIL_KEYS
    assert info["kind"] == "Hosted" and info["localId"] == local_id and info["numberOfHits"] == 0
    assert info["URL"].endswith(location) and info["createdAt"].endswith("Z")
    assert any(u.endswith(location) for u in await get_json(http, api(broker_url)))
    assert any(u.endswith(location) for u in await get_json(http, api(broker_url), params={"kind": "Hosted"}))
    async with http.delete(api(broker_url, f"/{local_id}"), params={"reload": "true"}) as resp:
        assert resp.status == 400  # only Cached contexts can be reloaded
    async with http.delete(api(broker_url, f"/{local_id}")) as resp:
        assert resp.status == 204 and await resp.read() == b""
    await get_json(http, broker_url + location, status=404)


@pytest.mark.parametrize(("payload", "error"), [
    (b'{"A1": "urn:a"}', "InvalidRequest"),                        # no @context member
    (b'{"@context": {"A1": "urn:a"} "x"}', "InvalidRequest"),      # not JSON
    (b'{"@context": 42}', "BadRequestData"),
    (b'{"@context": true}', "BadRequestData"),
    (b'{"@context": ["https://example.org/ctx.jsonld", 7]}', "BadRequestData"),
    (b'{"@context": {"A1": 5}}', "BadRequestData"),                # not a valid JSON-LD context
    (b'{"@context": {"A1": "urn:a\\u0000"}}', "BadRequestData"),  # jsonb cannot store U+0000
])
async def test_add_invalid(http: aiohttp.ClientSession, broker_url: str, payload: bytes, error: str) -> None:
    async with http.post(api(broker_url), data=payload, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert "Location" not in resp.headers
        assert (await resp.json())["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{error}"


@pytest.mark.parametrize("query", ["kind=other", "details=other", "details=true&kind=other",
                                   "details=other&kind=Hosted"])
async def test_list_bad_parameters(http: aiohttp.ClientSession, broker_url: str, query: str) -> None:
    body = await get_json(http, api(broker_url) + "?" + query, status=400)
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def test_unknown_ids(http: aiohttp.ClientSession, broker_url: str) -> None:
    await get_json(http, api(broker_url, "/wrong_id_context"), status=404, params={"details": "true"})
    for reload, status in ((None, 404), ("false", 404), ("true", 400), ("xxx", 400)):
        params = {"reload": reload} if reload else {}
        async with http.delete(api(broker_url, "/1234567890123456"), params=params) as resp:
            assert resp.status == status


# ---- the core context ----------------------------------------------------------------------------------

async def test_core_context(http: aiohttp.ClientSession, broker_url: str) -> None:
    assert CORE in await get_json(http, api(broker_url))
    assert CORE in await get_json(http, api(broker_url), params={"kind": "Cached"})
    assert CORE not in await get_json(http, api(broker_url), params={"kind": "Hosted"})
    for url in (CORE, CORE_V16):
        doc = await get_json(http, api(broker_url, "/" + quote(url, safe="")))
        assert doc["@context"]["type"] == "@type"
        info = await details(http, broker_url, url)
        assert info["kind"] == "Cached" and set(info) <= DETAIL_KEYS
        for reload in (None, "false"):
            async with http.delete(api(broker_url, "/" + quote(url, safe="")),
                                   params={"reload": reload} if reload else {}) as resp:
                assert resp.status == 400
                assert (await resp.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
        async with http.delete(api(broker_url, "/" + quote(url, safe="")), params={"reload": "true"}) as resp:
            assert resp.status == 204


# ---- cached contexts and usage -------------------------------------------------------------------------

async def test_cached_context(http: aiohttp.ClientSession, broker_url: str, ctx_server: ContextServer) -> None:
    url = f"{ctx_server.base}/api/v1/context-{uuid.uuid4().hex}.jsonld"
    await use_context(http, broker_url, url)
    info = await details(http, broker_url, url)
    assert info["kind"] == "Cached" and info["URL"] == url and info["numberOfHits"] == 1  # then counted
    await use_context(http, broker_url, url)
    assert (await details(http, broker_url, url))["numberOfHits"] == 3
    listed = await get_json(http, api(broker_url), params={"details": "true", "kind": "Cached"})
    assert any(item["URL"] == url for item in listed)
    assert await get_json(http, api(broker_url, "/" + quote(url, safe=""))) == {
        "@context": {"speed": f"http://example.org/{url.split('/', 3)[3]}#speed"}}
    fetched = ctx_server.hits
    assert fetched == 1
    # a failed reload keeps the stored copy (504/503 LdContextNotAvailable)
    ctx_server.up = False
    async with http.delete(api(broker_url, "/" + quote(url, safe="")), params={"reload": "true"}) as resp:
        assert resp.status in (503, 504)
        assert (await resp.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
    assert (await details(http, broker_url, url))["kind"] == "Cached"
    ctx_server.up = True
    async with http.delete(api(broker_url, "/" + quote(url, safe="")), params={"reload": "true"}) as resp:
        assert resp.status == 204
    async with http.delete(api(broker_url, "/" + quote(url, safe=""))) as resp:
        assert resp.status == 204
    await get_json(http, api(broker_url, "/" + quote(url, safe="")), status=404, params={"details": "true"})


async def test_hosted_hits_and_nested_cached(http: aiohttp.ClientSession, broker_url: str,
                                            ctx_server: ContextServer) -> None:
    nested = f"{ctx_server.base}/nested-{uuid.uuid4().hex}.jsonld"
    location = await add(http, broker_url, {"@context": [nested]})
    local_id = location.rsplit("/", 1)[1]
    assert (await details(http, broker_url, local_id))["numberOfHits"] == 0
    await use_context(http, broker_url, f"http://localhost:9090{location}")  # any host: our own store
    assert (await details(http, broker_url, local_id))["numberOfHits"] == 1
    assert (await details(http, broker_url, nested))["kind"] == "Cached"


async def test_unreachable_context(http: aiohttp.ClientSession, broker_url: str) -> None:
    body = {"id": "urn:ngsi-ld:Test:unreachable", "type": "Test",
            "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"}
    async with http.post(f"{broker_url}/ngsi-ld/v1/entities", data=orjson.dumps(body),
                         headers={"Content-Type": "application/ld+json"}) as resp:
        assert resp.status in (503, 504)
        assert (await resp.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"


# ---- tenants -------------------------------------------------------------------------------------------

async def test_tenant_isolation(http: aiohttp.ClientSession, broker_url: str) -> None:
    tenant_a, tenant_b = f"tp{uuid.uuid4().hex[:8]}", f"tp{uuid.uuid4().hex[:8]}"
    location = await add(http, broker_url, {"@context": {"TenantPrivateTerm": "urn:private"}}, tenant_a)
    local_id = location.rsplit("/", 1)[1]
    await get_json(http, broker_url + location, status=404, headers=tenant_headers(tenant_b))
    await get_json(http, broker_url + location, status=404, params={"details": "true"},
                   headers=tenant_headers(tenant_b))
    for params in ({"details": "true"}, {}):
        async with http.get(api(broker_url), params=params, headers=tenant_headers(tenant_b)) as resp:
            assert resp.status == 200 and local_id not in await resp.text()
    async with http.delete(broker_url + location, headers=tenant_headers(tenant_b)) as resp:
        assert resp.status == 404
    assert "urn:private" in str(await get_json(http, broker_url + location, headers=tenant_headers(tenant_a)))
    async with http.delete(broker_url + location, headers=tenant_headers(tenant_a)) as resp:
        assert resp.status == 204


# ---- the PostgreSQL store behind the resolver ----------------------------------------------------------

async def migrated_pool(dsn: str) -> Any:
    """A small pool on the session database, migrated (the storage-level tests below)."""
    from broker.store import db, schema

    conn = await db.connect(dsn)
    try:
        await schema.migrate(conn)
    finally:
        await conn.close()
    return await db.create_pool(dsn, 2)


async def test_pg_store(database_dsn: str, ctx_server: ContextServer) -> None:
    from broker.config import Settings
    from broker.jsonld import ContextResolver

    pool = await migrated_pool(database_dsn)
    tenant = f"pg{uuid.uuid4().hex[:8]}"
    url = f"{ctx_server.base}/pg-{uuid.uuid4().hex}.jsonld"
    try:
        first = ContextResolver(Settings(), pool)
        await first.start()
        local_id = await first.admin.create_hosted({"B1": "urn:b1"}, tenant)
        hosted = f"http://any.host/ngsi-ld/v1/jsonldContexts/{local_id}"
        for _ in range(2):
            await first.resolve(hosted, tenant)
            await first.resolve(url, tenant)
        implicit = await first.link_url(await first.resolve([url, {"x": "urn:x"}], tenant), "http://b:1", tenant)
        infos = {i.url: i for i in await first.admin.list(tenant, None)}
        assert infos[f"/ngsi-ld/v1/jsonldContexts/{local_id}"].hits == 2
        assert infos[url].hits == 3 and infos[url].kind == "Cached" and infos[url].last_used_at is not None
        assert infos[implicit.removeprefix("http://b:1")].kind == "ImplicitlyCreated"
        await first.close()
        # a restart neither refetches nor loses anything
        ctx_server.up = False
        second = ContextResolver(Settings(), pool)
        await second.start()
        assert (await second.resolve(url, tenant)).expand_term("speed").startswith("http://example.org/")
        assert (await second.resolve(implicit, tenant)).expand_term("x") == "urn:x"
        await second.admin.delete(url, tenant, reload=False)
        assert url not in {i.url for i in await second.admin.list(tenant, "Cached")}
        await second.admin.delete(local_id, tenant, reload=False)
        assert await second.admin.list(tenant, "Hosted") == []
        await second.close()
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def two_processes(dsn: str) -> AsyncIterator[tuple[Any, Any]]:
    """Two resolvers on one (migrated) database, each following the announcements: two broker workers."""
    from broker.config import Settings
    from broker.jsonld import ContextResolver

    pool = await migrated_pool(dsn)
    resolvers = (ContextResolver(Settings(), pool), ContextResolver(Settings(), pool))
    try:
        for resolver in resolvers:
            await resolver.start()
            await resolver.listen(dsn)
        await asyncio.sleep(0.3)  # both listeners are connected
        yield resolvers
    finally:
        for resolver in resolvers:
            await resolver.close()
        await pool.close()


async def test_deletions_and_reloads_reach_every_process(database_dsn: str, ctx_server: ContextServer) -> None:
    """Each process caches what it resolved: a context deleted through one process must not live on in another.
    After the deletion, the other one no longer serves the hosted context, and using the remote one again
    fetches it and stores it again (it is listed)."""
    from broker.errors import NgsiError

    tenant = f"px{uuid.uuid4().hex[:8]}"
    url = f"{ctx_server.base}/px-{uuid.uuid4().hex}.jsonld"
    async with two_processes(database_dsn) as (first, second):
        local_id = await first.admin.create_hosted({"B1": "urn:b1"}, tenant)
        hosted = f"http://any.host/ngsi-ld/v1/jsonldContexts/{local_id}"
        for resolver in (first, second):
            await resolver.resolve(url, tenant)
            assert (await resolver.resolve(hosted, tenant)).expand_term("B1") == "urn:b1"
        await first.admin.delete(url, tenant, reload=False)
        await first.admin.delete(local_id, tenant, reload=False)
        for _ in range(50):  # the announcement reaches the other process within moments
            try:
                await second.resolve(hosted, tenant)
            except NgsiError:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the other process still serves the deleted hosted @context")
        await second.resolve(url, tenant)
        await second.usage.flush()
        assert url in {i.url for i in await first.admin.list(tenant, "Cached")}  # stored again on its next use


async def test_usage_counted_by_another_process_is_read_exactly(database_dsn: str, ctx_server: ContextServer) -> None:
    """numberOfHits read through one process includes the uses another process counted a moment before (its
    counters are flushed on request, not after up to a second)."""
    tenant = f"pu{uuid.uuid4().hex[:8]}"
    url = f"{ctx_server.base}/pu-{uuid.uuid4().hex}.jsonld"
    async with two_processes(database_dsn) as (counting, reading):
        await counting.resolve(url, tenant)  # fetched and stored, 1 hit
        await counting.usage.flush()
        for _ in range(3):
            await counting.resolve(url, tenant)  # counted in memory only
        info, _ = await reading.admin.serve(url, tenant)
        assert info.hits == 4

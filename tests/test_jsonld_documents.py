"""Loading context documents: shipped files, a local HTTP context server (loopback), caches and failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp import web

from broker.config import Settings
from broker.errors import NgsiError
from broker.jsonld import CORE_CONTEXT_URL, ContextResolver
from broker.jsonld import resolver as resolver_module
from broker.jsonld.core import CORE_CONTEXT_URLS
from broker.jsonld.documents import INDEX_FILE, FileTable, contexts_dir
from broker.store.contexts import MemoryContextStore
from broker.testing import serve_app

DOC = {"@context": {"speed": "http://example.org/speed", "Car": "http://example.org/Car"}}


class ContextServer:
    """A tiny context server on 127.0.0.1 with one path per behaviour; counts requests per path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.broken = False
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name:.*}", self.handle)
        self.runner, port = await serve_app(app)
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if self.broken or name == "missing":
            return web.Response(status=404)
        body = orjson.dumps(DOC)
        if name == "ld":
            return web.Response(body=body, content_type="application/ld+json")
        if name == "json":
            return web.Response(body=body, content_type="application/json")
        if name == "text":
            return web.Response(body=body, content_type="text/plain")
        if name == "octets":
            return web.Response(body=body, content_type="application/octet-stream")
        if name == "nocontext":
            return web.json_response({"note": "no context member here"})
        if name == "notjson":
            return web.Response(text="this is { not json", content_type="application/ld+json")
        if name == "array":
            return web.json_response([DOC])
        if name == "slow":
            await asyncio.sleep(5)
            return web.Response(body=body, content_type="application/ld+json")
        if name == "redirect":
            raise web.HTTPFound(self.url("ld"))
        if name == "loop":
            raise web.HTTPFound(self.url("loop"))
        if name == "big":
            huge = {"@context": {f"t{i}": f"http://example.org/{'x' * 100}{i}" for i in range(12000)}}
            return web.json_response(huge)
        if name == "nested":
            return web.json_response({"@context": ["json", {"extra": "http://example.org/extra"}]})
        if name == "error":
            return web.Response(status=500)
        return web.Response(status=404)


@pytest.fixture
async def server() -> AsyncIterator[ContextServer]:
    s = ContextServer()
    await s.start()
    yield s
    await s.stop()


async def make(store: Any = None, **kwargs: Any) -> ContextResolver:
    kwargs.setdefault("context_fetch_timeout", 0.5)
    r = ContextResolver(Settings(**kwargs), None)
    if store is not None:
        r.store = store
        r.usage._store = store
    await r.start()
    return r


@pytest.fixture
async def resolver() -> AsyncIterator[ContextResolver]:
    r = await make()
    yield r
    await r.close()


# ---- the shipped table ---------------------------------------------------------------------------------

def test_shipped_index() -> None:
    directory = contexts_dir()
    index = json.loads((directory / INDEX_FILE).read_text())
    assert set(CORE_CONTEXT_URLS) <= set(index)
    assert {index[u] for u in CORE_CONTEXT_URLS} == {"ngsi-ld-core-context-v1.9.jsonld"}
    for domain in ("Environment", "Parking", "Streetlighting", "Transportation", "Weather"):
        raw = f"https://raw.githubusercontent.com/smart-data-models/dataModel.{domain}/master/context.jsonld"
        io = f"https://smart-data-models.github.io/dataModel.{domain}/context.jsonld"
        assert index[raw] == index[io] == f"smart-data-models/dataModel.{domain}.jsonld"
    table = FileTable.from_settings({})
    table.load()  # every shipped file parses and has an @context
    assert all(table.get(url) for url in table.urls())


def test_context_files_setting(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonld"
    path.write_text(json.dumps(DOC))
    table = FileTable.from_settings({"http://mine.example/ctx": str(path)})
    table.load()
    assert table.get("http://mine.example/ctx") == DOC
    bad = tmp_path / "bad.jsonld"
    bad.write_text('{"not": "a context"}')
    with pytest.raises(RuntimeError):
        FileTable.from_settings({"http://bad.example/": str(bad)}).load()


# ---- fetching ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ld", "json", "text", "octets", "redirect"])
async def test_lenient_content_types(resolver: ContextResolver, server: ContextServer, name: str) -> None:
    ctx = await resolver.resolve(server.url(name))
    assert ctx.expand_term("speed") == "http://example.org/speed"


@pytest.mark.parametrize("name", ["nocontext", "notjson", "array", "big"])
async def test_not_a_context_is_400(resolver: ContextResolver, server: ContextServer, name: str) -> None:
    with pytest.raises(NgsiError) as info:
        await resolver.resolve(server.url(name))
    assert info.value.status == 400 and info.value.error_type == "BadRequestData"


@pytest.mark.parametrize("name", ["missing", "error", "loop"])
async def test_unavailable_is_ld_context_not_available(resolver: ContextResolver, server: ContextServer,
                                                      name: str) -> None:
    with pytest.raises(NgsiError) as info:
        await resolver.resolve(server.url(name))
    assert info.value.error_type == "LdContextNotAvailable"


async def test_timeout(resolver: ContextResolver, server: ContextServer) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NgsiError) as info:
        await resolver.resolve(server.url("slow"))
    assert info.value.error_type == "LdContextNotAvailable"
    assert loop.time() - started < 2.0


async def test_unreachable(resolver: ContextResolver) -> None:
    with pytest.raises(NgsiError) as info:
        await resolver.resolve("http://127.0.0.1:9/nothing-listens-here.jsonld")
    assert info.value.error_type == "LdContextNotAvailable"


async def test_remote_fetching_disabled(server: ContextServer) -> None:
    r = await make(context_fetch_remote=False)
    with pytest.raises(NgsiError) as info:
        await r.resolve(server.url("ld"))
    assert info.value.error_type == "LdContextNotAvailable"
    assert server.hits == {}
    await r.close()


async def test_fetched_once_then_cached(resolver: ContextResolver, server: ContextServer) -> None:
    results = await asyncio.gather(*(resolver.resolve(server.url("ld")) for _ in range(5)))
    assert all(r.expand_term("Car") == "http://example.org/Car" for r in results)
    await resolver.resolve([server.url("ld"), {"other": "http://o/"}])
    assert server.hits == {"ld": 1}


async def test_restart_uses_the_stored_copy(server: ContextServer) -> None:
    store = MemoryContextStore()
    first = await make(store)
    await first.resolve(server.url("nested"))
    await first.close()
    assert server.hits == {"nested": 1, "json": 1}
    server.broken = True
    second = await make(store)
    ctx = await second.resolve(server.url("nested"))
    assert ctx.expand_term("extra") == "http://example.org/extra"
    assert ctx.expand_term("speed") == "http://example.org/speed"
    assert server.hits == {"nested": 1, "json": 1}
    await second.close()


async def test_negative_results_expire(resolver: ContextResolver, server: ContextServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolver_module, "NEGATIVE_TTL", 0.2)
    server.broken = True
    for _ in range(3):
        with pytest.raises(NgsiError):
            await resolver.resolve(server.url("ld"))
    assert server.hits == {"ld": 1}  # remembered for a moment
    server.broken = False
    await asyncio.sleep(0.3)
    ctx = await resolver.resolve(server.url("ld"))
    assert ctx.expand_term("speed") == "http://example.org/speed"


async def test_nested_remote_documents(resolver: ContextResolver, server: ContextServer) -> None:
    ctx = await resolver.resolve(server.url("nested"))
    assert ctx.expand_term("speed") == "http://example.org/speed"  # "json" relative to the document
    cached = {i.url for i in await resolver.admin.list("", "Cached")}
    assert {server.url("nested"), server.url("json"), CORE_CONTEXT_URL} <= cached


async def test_reload(resolver: ContextResolver, server: ContextServer) -> None:
    url = server.url("ld")
    await resolver.resolve(url)
    await resolver.admin.delete(url, "", reload=True)
    assert server.hits["ld"] == 2
    server.broken = True
    with pytest.raises(NgsiError) as info:
        await resolver.admin.delete(url, "", reload=True)
    assert info.value.error_type == "LdContextNotAvailable"
    info_, body = await resolver.admin.serve(url, "")  # a failed reload keeps the stored copy
    assert info_.kind == "Cached" and body == DOC
    ctx = await resolver.resolve(url)
    assert ctx.expand_term("speed") == "http://example.org/speed"
    await resolver.admin.delete(url, "", reload=False)
    with pytest.raises(NgsiError) as info:
        await resolver.admin.serve(url, "")
    assert info.value.status == 404


async def test_usage_counters(resolver: ContextResolver, server: ContextServer) -> None:
    url = server.url("json")
    for _ in range(3):
        await resolver.resolve(url)
    info, _ = await resolver.admin.serve(url, "")  # by URL: reported, then counted
    assert info.hits == 3 and info.last_used_at is not None
    info, _ = await resolver.admin.serve(url, "")
    assert info.hits == 4
    info, _ = await resolver.admin.serve(info.local_id, "")  # by local id: not a use
    info, _ = await resolver.admin.serve(info.local_id, "")
    assert info.hits == 5

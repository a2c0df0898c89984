"""``ContextResolver``: @context values -> shared ``Context`` objects, with every cache the path needs.

Resolution of one context URL, in order: the core URLs (the shipped core, never fetched) -> the local file
table -> hosted contexts (``.../ngsi-ld/v1/jsonldContexts/{id}`` on any host, from our own store) -> the
in-memory document cache -> the database (kind Cached, so a restart does not refetch) -> an HTTP GET, if
remote fetching is enabled. Referenced documents (nested @context URLs, scoped contexts, @import) are loaded
the same way, asynchronously, *before* pyld runs; pyld's document loader only reads what was pre-loaded.

The effective context of a request is ``[raw..., core]``: the core context is applied last, so its protected
terms always win. Built Contexts are cached by (tenant, canonical raw value); a repeated @context costs one
dict lookup. Deleting or reloading a stored context invalidates the Contexts built from it.
"""

from __future__ import annotations

import asyncio
import logging
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from uuid import uuid4

import asyncpg
import orjson
from pyld import jsonld

from ..config import Settings
from ..errors import NgsiError
from ..store import db
from ..store.contexts import CHANNEL, ContextStore, MemoryContextStore, PgContextStore
from ..tasks import cancel
from .context import Context, Processor, json_ld_error, pyld_options
from .core import NGSI_LD, CORE_CONTEXT_URL, CORE_CONTEXT_URLS, hosted_id, hosted_path, is_core_context_url
from .documents import (FileTable, Fetcher, check_context_value, check_document, check_storable, context_urls,
                        is_fetchable)
from .hosting import ContextAdmin
from .usage import UsageCounter

log = logging.getLogger(__name__)

LISTENER_NAME = "ngsild-contexts"  # application_name of each process's announcement listener
FLUSH_WAIT = 0.5             # how long a reader of usage counters waits for the other processes' answers
MAX_CONTEXTS = 2048          # built Contexts kept (LRU)
MAX_DOCUMENTS = 512          # remote documents kept in memory (LRU; the database keeps them all)
MAX_NESTED_DOCUMENTS = 32    # context documents one @context may pull in
MAX_NESTING = 8              # depth of context documents referencing context documents
NEGATIVE_TTL = 3.0           # seconds a failed fetch is answered from memory (a server may come back)
_MAX_LOAD_ROUNDS = 3
HOSTED_PLACEHOLDER = "http://broker.invalid"  # RFC 2606: never resolves, and never needs to


@dataclass(frozen=True)
class _Doc:
    body: dict[str, Any]
    key: str        # the stored url (Cached URL or hosted path) counting the uses; a dependency key
    stored: bool    # False for file-table documents outside the store


def canonical(raw: Any) -> Any:
    """A hashable key equal for equal @context values (object member order does not matter)."""
    if raw is None or isinstance(raw, str):
        return raw
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)


def _copy(value: Any) -> Any:
    # pyld rewrites relative URLs inside loaded documents in place: give it copies
    return orjson.loads(orjson.dumps(value))


def join_base(request_base_url: str, path: str) -> str:
    base = request_base_url.rstrip("/")
    if base.endswith("/ngsi-ld/v1"):
        base = base[: -len("/ngsi-ld/v1")]
    return base + path


class ContextResolver:
    """Resolves @context values for the whole process; see the module docstring."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool | None) -> None:
        self.settings = settings
        self.store: ContextStore = PgContextStore(pool) if pool is not None else MemoryContextStore()
        self.usage = UsageCounter(self.store)
        self.started_at = datetime.now(timezone.utc)
        self._files: FileTable | None = None
        self._fetcher = Fetcher(settings.context_fetch_timeout)
        self._static: dict[str, dict[str, Any]] = {}
        self._documents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._hosted: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._failures: dict[str, tuple[float, NgsiError]] = {}
        self._inflight: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._contexts: OrderedDict[tuple[str, Any], Context] = OrderedDict()
        self._dependents: dict[str, set[tuple[str, Any]]] = {}
        self._rows: set[tuple[str, str]] = set()
        self._implicit: dict[tuple[str, Any], str] = {}
        self.core: Context
        self.admin = ContextAdmin(self)  # the /jsonldContexts operations
        self._listener: asyncpg.Connection | None = None
        self._listening: asyncio.Task[None] | None = None
        self._awaiting: dict[str, list[Any]] = {}  # usage flush token -> [answers missing, all answered]
        self._flushing: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        # a safety net: nothing in this process may make pyld fetch a document by itself
        jsonld.set_document_loader(_offline_loader)
        self._files = FileTable.from_settings(self.settings.context_files)
        self._files.load()
        self.load_core()
        await self._fetcher.start()
        self.usage.start()

    async def listen(self, dsn: str) -> None:
        """Follow the other processes' deletions and reloads of stored contexts (announced by the store), so
        that no process keeps using what another removed; a lost listening connection is reopened, and what
        was announced meanwhile is covered by forgetting every stored context this process remembers."""
        self._listening = asyncio.create_task(self._listen(dsn))

    async def _listen(self, dsn: str) -> None:
        while True:
            lost = asyncio.Event()
            try:
                self._listener = await db.connect(dsn, LISTENER_NAME)
                self._listener.add_termination_listener(lambda conn: lost.set())
                await self._listener.add_listener(CHANNEL, self._announced)
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("@context announcements: %s", exc)
            self.forget_stored()
            await asyncio.sleep(1.0)

    def _announced(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        msg = orjson.loads(payload)
        if msg["op"] == "flush":  # another process reads the counters: add ours, then say so
            if msg["from"] != conn.get_server_pid():
                self._flushing.add(asyncio.create_task(self._flush_for(msg["token"])))
        elif msg["op"] == "flushed":
            waiting = self._awaiting.get(msg["token"])
            if waiting is not None:
                waiting[0] -= 1
                if waiting[0] <= 0:
                    waiting[1].set()
        elif msg["op"] == "reload":
            self._documents.pop(msg["url"], None)  # read again from the store, where the new body is
            self.invalidate(msg["url"])
        else:
            self.forget(msg["tenant"], msg["id"], msg["url"], msg["kind"])

    async def _flush_for(self, token: str) -> None:
        try:
            await self.usage.flush()
            await self.store.announce({"op": "flushed", "token": token})
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("@context usage flush for another process: %s", exc)
        finally:
            self._flushing.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def flush_usage(self) -> None:
        """Store every process's pending usage counters before they are read (``numberOfHits`` and
        ``lastUsage`` are then exact whichever worker counted the uses): ours directly, the others' by asking
        them through the announcements and waiting (a bounded moment) for each one's answer."""
        await self.usage.flush()
        listener = self._listener
        if listener is None or listener.is_closed():
            return
        others = await self.store.listeners(LISTENER_NAME, listener.get_server_pid())
        if not others:
            return
        token = uuid4().hex
        waiting: list[Any] = [others, asyncio.Event()]
        self._awaiting[token] = waiting
        try:
            await self.store.announce({"op": "flush", "token": token, "from": listener.get_server_pid()})
            await asyncio.wait_for(waiting[1].wait(), FLUSH_WAIT)
        except asyncio.TimeoutError:
            log.warning("@context usage: %d other process(es) did not answer in time", waiting[0])
        finally:
            del self._awaiting[token]

    def forget_stored(self) -> None:
        """Forget every stored context this process remembers (announcements may have been missed)."""
        self._rows.clear()
        self._hosted.clear()
        self._implicit.clear()
        self._documents.clear()
        self._contexts.clear()
        self._dependents.clear()

    async def close(self) -> None:
        await cancel(self._listening)
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        await self.usage.close()
        await self._fetcher.close()
        for task in self._inflight.values():
            task.cancel()

    def load_core(self) -> None:
        """(Re)load the shipped core context and what it references; every built Context is dropped."""
        files = self._files
        assert files is not None, "start() loads the file table first"
        core = files.get(CORE_CONTEXT_URL) if CORE_CONTEXT_URL in files else None
        if core is None:
            raise RuntimeError(f"the core context {CORE_CONTEXT_URL} is not in the context file table")
        static = {url: files.get(url) or core for url in CORE_CONTEXT_URLS}
        # The v1.9 core gives ``ngsildproof`` a scoped context referencing the W3C data-integrity context, and
        # pyld validates scoped contexts while processing the core. Without a local copy (--context-file) an
        # empty stand-in lets the core be processed; payloads using that term are then refused (see
        # ``Context.unavailable``), since their terms could not be expanded exactly.
        standins: set[str] = set()
        for url in context_urls(core["@context"], CORE_CONTEXT_URL):
            if url not in static:
                doc = files.get(url) if url in files else None
                if doc is None:
                    doc = {"@context": {}}
                    standins.add(url)
                static[url] = doc
        self._static = static
        self._standins = frozenset(standins)
        self._contexts.clear()
        self._dependents.clear()
        self.core = self._build_sync(CORE_CONTEXT_URL, [CORE_CONTEXT_URL], {})

    def reload_core(self) -> None:
        """Re-read the shipped core context (DELETE /jsonldContexts/{core}?reload=true)."""
        assert self._files is not None
        for url in CORE_CONTEXT_URLS:
            if url in self._files:
                self._files.reload(url)
        self.load_core()

    def core_document(self, url: str = CORE_CONTEXT_URL) -> dict[str, Any]:
        return self._static[url]

    def reload_file(self, url: str) -> dict[str, Any]:
        assert self._files is not None
        return self._files.reload(url)

    def in_file_table(self, url: str) -> bool:
        return self._files is not None and url in self._files

    # ---- resolution ------------------------------------------------------------------------------------

    async def resolve(self, raw: Any, tenant: str = "", *, use: bool = True) -> Context:
        """The Context of a request's @context (None: the core context alone); counts stored-context uses
        (``use=False``: the broker's own re-reading, e.g. a stored subscription's context, is no use)."""
        if raw is None or raw == CORE_CONTEXT_URL:
            return self.core
        key = (tenant, canonical(raw))
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = await self._build(raw, tenant)
            self._remember(key, ctx)
        else:
            self._contexts.move_to_end(key)
        if ctx.stored and use:
            self.usage.hit(tenant, ctx.stored)
        return ctx

    async def link_url(self, ctx: Context, request_base_url: str, tenant: str = "") -> str:
        """A URL for a Link header: the user's single URL, the core URL, or an ImplicitlyCreated context."""
        raw = ctx.raw
        single = _single_url(raw)
        if single is not None:
            return join_base(request_base_url, single) if single.startswith("/") else single
        canon = canonical(raw)
        path = self._implicit.get((tenant, canon))
        if path is None:
            digest = hashlib.sha256(canon if isinstance(canon, bytes) else str(canon).encode()).hexdigest()
            local_id = "implicit-" + digest[:32]  # deterministic: every process creates the same one
            check_storable(raw, "the @context")
            path = hosted_path(local_id)
            # created by the request that used it: that use counts
            await self.store.insert(tenant, local_id, path, "ImplicitlyCreated", {"@context": raw}, hits=1)
            self._implicit[(tenant, canon)] = path
            self._rows.add((tenant, path))
        return join_base(request_base_url, path)

    async def _build(self, raw: Any, tenant: str) -> Context:
        check_context_value(raw)
        items = [_absolute_hosted(i) for i in (raw if isinstance(raw, list) else [raw])]
        docs = await self._collect(items, tenant, None)
        effective = list(items)
        if not (effective and isinstance(effective[-1], str) and is_core_context_url(effective[-1])):
            effective.append(CORE_CONTEXT_URL)
        for _ in range(_MAX_LOAD_ROUNDS):
            missing: list[str] = []
            try:
                return self._build_sync(raw, effective, docs, missing)
            except NgsiError:
                if not missing:
                    raise
            # pyld asked for a document the pre-load did not foresee: load it (and its own) and retry
            docs.update(await self._collect(missing, tenant, docs))
        raise NgsiError("BadRequestData", "the @context references too many documents")

    def _build_sync(self, raw: Any, effective: list[Any], docs: dict[str, _Doc],
                    missing: list[str] | None = None) -> Context:
        loader = self._loader(docs, missing)
        proc = Processor()
        options = pyld_options(loader)
        try:
            active = proc.process_context(proc._get_initial_context(options), _copy(effective), options)
        except jsonld.JsonLdError as exc:
            raise json_ld_error(exc, "invalid @context") from None
        except RecursionError:
            raise NgsiError("BadRequestData", "invalid @context: nested too deeply") from None
        stored = tuple(sorted({d.key for d in docs.values() if d.stored}))
        ctx = Context(raw, active, loader, depends_on=frozenset(d.key for d in docs.values()), stored=stored)
        if self._standins:
            ctx.unavailable = {NGSI_LD + "ngsildproof": ", ".join(sorted(self._standins))}
        return ctx

    def _loader(self, docs: dict[str, _Doc], missing: list[str] | None) -> Callable[..., Any]:
        bodies = {url: doc.body for url, doc in docs.items()}
        static = self._static

        def load(url: str, options: Any = None) -> dict[str, Any]:
            body = bodies.get(url) or static.get(url)
            if body is None:
                if missing is not None:
                    missing.append(url)
                raise jsonld.JsonLdError(f"@context {url} was not pre-loaded", "jsonld.LoadDocumentError",
                                         {"url": url}, code="loading document failed")
            return {"contextUrl": None, "documentUrl": url, "document": _copy(body)}

        return load

    async def _collect(self, urls: list[Any], tenant: str, known: dict[str, _Doc] | None) -> dict[str, _Doc]:
        """Load every context document ``urls`` reference, transitively (bounded)."""
        found: dict[str, _Doc] = {}
        queue = [(url, 0) for url in context_urls(urls, None)]
        while queue:
            url, depth = queue.pop(0)
            if url in found or url in self._static or (known and url in known):
                continue
            if depth > MAX_NESTING or len(found) + len(known or ()) >= MAX_NESTED_DOCUMENTS:
                raise NgsiError("BadRequestData", "the @context references too many nested @context documents")
            doc = await self._document(url, tenant)
            found[url] = doc
            queue.extend((u, depth + 1) for u in context_urls(doc.body["@context"], url))
        return found

    async def _document(self, url: str, tenant: str) -> _Doc:
        if self._files is not None and url in self._files:
            body = self._files.get(url)
            assert body is not None
            await self._ensure_row(tenant, url, body)
            return _Doc(body, url, True)
        local_id = hosted_id(url)
        if local_id is not None:
            body, key = await self._hosted_body(tenant, local_id)
            return _Doc(body, key, True)
        if not is_fetchable(url):
            raise NgsiError("BadRequestData", f"@context URL {url!r} is not an absolute http(s) URL")
        body = self._documents.get(url)
        if body is None:
            body = await self.store.cached_body(url, tenant)
            if body is None:
                body = await self._fetch(url)
            else:
                body = check_document(body, url)
            self._keep_document(url, body)
        await self._ensure_row(tenant, url, body)
        return _Doc(body, url, True)

    async def _hosted_body(self, tenant: str, local_id: str) -> tuple[dict[str, Any], str]:
        found = self._hosted.get((tenant, local_id))
        if found is None:
            row = await self.store.get(tenant, local_id)
            if row is None:
                raise NgsiError("LdContextNotAvailable", f"no @context {local_id!r} is hosted by this broker")
            found = (check_document(row.body, row.url), row.url)
            self._hosted[(tenant, local_id)] = found
        return found

    async def _ensure_row(self, tenant: str, url: str, body: dict[str, Any]) -> None:
        """The first use of a URL by a tenant stores a Cached copy (listed, counted, served by id)."""
        if (tenant, url) in self._rows:
            return
        check_storable(body, f"the @context document at {url}")
        await self.store.insert(tenant, uuid4().hex, url, "Cached", body)
        self._rows.add((tenant, url))

    async def _fetch(self, url: str) -> dict[str, Any]:
        """GET a remote context: one request at a time per URL, failures remembered for a few seconds."""
        if not self.settings.context_fetch_remote:
            raise NgsiError("LdContextNotAvailable", f"@context {url} is not available locally and fetching "
                                                     "remote @contexts is disabled")
        failure = self._failures.get(url)
        if failure is not None:
            if failure[0] > time.monotonic():
                raise failure[1]
            del self._failures[url]
        task = self._inflight.get(url)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_now(url))
            self._inflight[url] = task
            task.add_done_callback(lambda _t: self._inflight.pop(url, None))
        # shield: a cancelled request must not cancel the fetch other requests wait for
        return await asyncio.shield(task)

    async def _fetch_now(self, url: str) -> dict[str, Any]:
        try:
            return await self._fetcher.fetch(url)
        except NgsiError as exc:
            if len(self._failures) > 1024:
                self._failures.clear()
            self._failures[url] = (time.monotonic() + NEGATIVE_TTL, exc)
            raise

    async def fetch_fresh(self, url: str) -> dict[str, Any]:
        """The document at ``url`` from its source, bypassing every cache (DELETE ?reload=true)."""
        if self.in_file_table(url):
            return self.reload_file(url)
        self._failures.pop(url, None)
        if not self.settings.context_fetch_remote:
            raise NgsiError("LdContextNotAvailable", "fetching remote @contexts is disabled")
        return await self._fetcher.fetch(url)

    # ---- cache maintenance -----------------------------------------------------------------------------

    def _remember(self, key: tuple[str, Any], ctx: Context) -> None:
        self._contexts[key] = ctx
        for dep in ctx.depends_on:
            self._dependents.setdefault(dep, set()).add(key)
        while len(self._contexts) > MAX_CONTEXTS:
            old_key, old = self._contexts.popitem(last=False)
            for dep in old.depends_on:
                self._dependents.get(dep, set()).discard(old_key)

    def _keep_document(self, url: str, body: dict[str, Any]) -> None:
        self._documents[url] = body
        self._documents.move_to_end(url)
        while len(self._documents) > MAX_DOCUMENTS:
            self._documents.popitem(last=False)

    def invalidate(self, key: str) -> None:
        """Forget every Context built from the document stored under ``key`` (a URL or hosted path)."""
        for ctx_key in self._dependents.pop(key, set()):
            self._contexts.pop(ctx_key, None)

    def replace_document(self, url: str, body: dict[str, Any]) -> None:
        """A Cached document was reloaded: use the new body from now on."""
        if url in self._documents:
            self._keep_document(url, body)
        self.invalidate(url)

    def forget(self, tenant: str, local_id: str, url: str, kind: str) -> None:
        """A stored context was deleted: drop what this process remembers of it."""
        self._rows.discard((tenant, url))
        self._hosted.pop((tenant, local_id), None)
        self.usage.forget(tenant, url)
        if kind == "Cached":
            self._documents.pop(url, None)
        for key, path in list(self._implicit.items()):
            if key[0] == tenant and path == url:
                del self._implicit[key]
        self.invalidate(url)


def _offline_loader(url: str, options: Any = None) -> Any:
    raise jsonld.JsonLdError(f"{url}: pyld may not load documents itself here (use ContextResolver)",
                             "jsonld.LoadDocumentError", {"url": url}, code="loading document failed")


def _absolute_hosted(item: Any) -> Any:
    """pyld refuses relative context URLs; a hosted path (a POST's Location) gets a placeholder host."""
    if isinstance(item, str) and item.startswith("/") and hosted_id(item) is not None:
        return HOSTED_PLACEHOLDER + item
    return item


def _single_url(raw: Any) -> str | None:
    """The one URL a Link header can carry for ``raw``, if it is equivalent to a single URL (or the core)."""
    if raw is None or raw == {} or raw == []:
        return CORE_CONTEXT_URL
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        return None
    items = list(raw)
    last_core = None
    while items and isinstance(items[-1], str) and is_core_context_url(items[-1]):
        last_core = items.pop()
    if not items:
        return last_core
    if len(items) == 1 and isinstance(items[0], str):
        return items[0]
    return None

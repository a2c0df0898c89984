"""The @context store operations behind ``/jsonldContexts`` (GS CIM 009 clause 5.13): add, list, serve, delete.

* Hosted: added by POST; ImplicitlyCreated: made by ``ContextResolver.link_url`` for inline contexts;
  Cached: a copy of a URL's document, stored on its first use by a tenant. All three are per tenant.
* The core context is always listed (kind Cached); it cannot be deleted, and ``reload=true`` reloads it
  from the shipped copy.
* ``numberOfHits`` counts the requests that used a context by URL (including a GET of a Cached context by
  its URL); serving by local id is not a use. An ImplicitlyCreated context starts at 1 (its creator used it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from ..errors import NgsiError
from ..store.contexts import StoredContext
from .core import CORE_CONTEXT_URL, hosted_id, hosted_path, is_core_context_url
from .documents import check_context_value, check_storable

if TYPE_CHECKING:
    from .resolver import ContextResolver

CORE_LOCAL_ID = "ngsi-ld-core-context"


@dataclass(frozen=True)
class ContextInfo:
    url: str                      # original URL (Cached) or hosted path (/ngsi-ld/v1/jsonldContexts/{id})
    local_id: str
    kind: str
    created_at: datetime
    last_used_at: datetime | None
    hits: int

    @property
    def hosted(self) -> bool:
        return self.kind != "Cached"


def _info(row: StoredContext) -> ContextInfo:
    return ContextInfo(row.url, row.id, row.kind, row.created_at, row.last_used_at, row.hits)


class ContextAdmin:
    def __init__(self, resolver: "ContextResolver") -> None:
        self._resolver = resolver

    def _core_info(self) -> ContextInfo:
        return ContextInfo(CORE_CONTEXT_URL, CORE_LOCAL_ID, "Cached", self._resolver.started_at, None, 0)

    def _is_core(self, ident: str) -> bool:
        return is_core_context_url(ident) or ident == CORE_LOCAL_ID

    async def create_hosted(self, value: Any, tenant: str) -> str:
        """Store a user @context (the value of the posted ``@context`` member); its local id."""
        if value is None:
            raise NgsiError("BadRequestData", "the @context to add must not be null")
        check_context_value(value)
        check_storable(value, "the @context")
        try:
            # validates it (400 for an invalid context) and caches what it references
            await self._resolver.resolve(value, tenant)
        except NgsiError as exc:
            if exc.error_type != "LdContextNotAvailable":
                raise
            # a referenced server is down now; it may not be when the context is used
        local_id = uuid4().hex
        await self._resolver.store.insert(tenant, local_id, hosted_path(local_id), "Hosted", {"@context": value})
        return local_id

    async def list(self, tenant: str, kind: str | None) -> list[ContextInfo]:
        await self._resolver.flush_usage()
        rows = await self._resolver.store.list(tenant, kind)
        core = [self._core_info()] if kind in (None, "Cached") else []
        return core + [_info(r) for r in rows]

    async def _row(self, ident: str, tenant: str) -> tuple[StoredContext | None, bool]:
        """The stored context an API id names (local id, hosted URL or original URL); found by URL?"""
        store = self._resolver.store
        local_id = hosted_id(ident)
        if local_id is not None:
            return await store.get(tenant, local_id), False
        row = await store.get(tenant, ident)
        if row is not None:
            return row, False
        return await store.get_by_url(tenant, ident), True

    async def serve(self, ident: str, tenant: str) -> tuple[ContextInfo, Any]:
        """The details and the document of a stored context (404 if this tenant has none by that id)."""
        if self._is_core(ident):
            url = ident if is_core_context_url(ident) else CORE_CONTEXT_URL
            return self._core_info(), self._resolver.core_document(url)
        await self._resolver.flush_usage()
        row, by_url = await self._row(ident, tenant)
        if row is None:
            raise NgsiError("ResourceNotFound", f"no @context {ident!r} is stored here")
        if by_url and row.kind == "Cached":
            # asking for a cached context by its URL is a lookup of that URL: a use (after this answer)
            self._resolver.usage.hit(tenant, (row.url,))
        return _info(row), row.body

    async def delete(self, ident: str, tenant: str, reload: bool) -> None:
        if self._is_core(ident):
            if not reload:
                raise NgsiError("BadRequestData", "the core @context cannot be deleted (only reloaded)")
            self._resolver.reload_core()
            return
        row, _ = await self._row(ident, tenant)
        if reload:
            if row is None or row.kind != "Cached":
                raise NgsiError("BadRequestData", "reload applies to Cached @contexts only"
                                + ("" if row else f"; there is no @context {ident!r}"))
            # fails with LdContextNotAvailable and leaves the stored copy as it was
            body = await self._resolver.fetch_fresh(row.url)
            await self._resolver.store.update_cached_body(row.url, body)
            self._resolver.replace_document(row.url, body)
            return
        if row is None:
            raise NgsiError("ResourceNotFound", f"no @context {ident!r} is stored here")
        await self._resolver.store.delete(tenant, row.id)
        self._resolver.forget(tenant, row.id, row.url, row.kind)

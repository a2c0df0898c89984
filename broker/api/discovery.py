"""Discovery of entity types and attributes (GS CIM 009 5.7.5 - 5.7.10, HTTP binding 6.25 - 6.28).

* ``GET /types``: 5.2.24 EntityTypeList ``{id, type: "EntityTypeList", typeList}``; with ``details=true``
  an array of 5.2.25 EntityType ``{id, type: "EntityType", typeName, attributeNames}``;
* ``GET /types/{type}``: 5.2.26 EntityTypeInfo ``{id, type: "EntityTypeInfo", typeName, entityCount,
  attributeDetails}``, each detail a 5.2.28 Attribute ``{id, type: "Attribute", attributeName,
  attributeTypes}``;
* ``GET /attributes``: 5.2.27 AttributeList ``{id, type: "AttributeList", attributeList}``; with
  ``details=true`` an array of 5.2.28 Attribute ``{id, type: "Attribute", attributeName, typeNames}``;
* ``GET /attributes/{attrId}``: 5.2.28 Attribute ``{id, type: "Attribute", attributeName, attributeCount,
  attributeTypes, typeNames}``.

Shapes follow the examples of Annex C.5.7 - C.5.12. ``id`` of a type or attribute is its expanded IRI; names
are compacted with the request's @context (Link header), so unknown terms come back as full IRIs. The
answer covers the request's tenant only (an unknown tenant is NonexistentTenant); ``local`` is accepted
(there is no distributed part to leave out). Only ``details`` (lists) and ``local`` are defined (6.3.20):
any other query parameter is 400. A type or attribute no entity has is 404 ResourceNotFound.

``attributeCount`` counts attribute instances (a multi-attribute with two datasetIds counts twice).

Cost: every answer is one statement over the tenant's entities (``broker.store.discovery``). Measured over
HTTP on the 2-core machine, 100,000 entities (10 types, 4 attributes each), medians: /types 67-78 ms,
/types?details=true ~150 ms, /types/{type} (10,000 entities of the type, GIN index on ``types``) 63-85 ms,
/attributes ~130 ms, /attributes?details=true ~150 ms, /attributes/{attrId} ~215 ms.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NgsiError, not_found
from ..jsonld import Context
from ..services import broker_of
from ..store.discovery import DiscoveryStore
from .resource import resource
from .http import LD_JSON, json_response, negotiate, tenant_of
from .params import bool_param, check_params, link_context
from .render import context_headers

LIST_PARAMS = ("details", "local")
ITEM_PARAMS = ("local",)


class _Call:
    """What every discovery handler starts with: parameters checked, media type, tenant, context, store."""

    def __init__(self, request: Request, details: bool, media: str, ctx: Context) -> None:
        self.request = request
        self.details = details
        self.media = media
        self.ctx = ctx
        self.tenant = tenant_of(request)
        broker = broker_of(request)
        self.store = DiscoveryStore(broker.pool, broker.tenants)

    @classmethod
    async def start(cls, request: Request, allowed: tuple[str, ...]) -> "_Call":
        check_params(request, allowed)
        bool_param(request, "local")  # accepted (true or false): there is no distributed part to leave out
        details = "details" in allowed and bool_param(request, "details")
        media = negotiate(request)
        return cls(request, details, media, await link_context(request))

    async def answer(self, body: Any) -> Response:
        """200 with ``body``; the @context goes into it (each element of an array) for application/ld+json,
        into a Link header for application/json."""
        if self.media == LD_JSON:
            if isinstance(body, list):
                body = [{**item, "@context": self.ctx.raw} for item in body]
            else:
                body["@context"] = self.ctx.raw
        headers = await context_headers(self.request, self.ctx, self.media)
        return json_response(body, headers=headers, media=self.media)


def _path_iri(call: _Call, name: str, what: str) -> str:
    raw = call.request.path_params[name]
    if not raw:
        raise NgsiError("BadRequestData", f"the {what} name is missing from the URL")
    iri = call.ctx.expand_term(raw)
    if not iri or iri.startswith("@"):  # a keyword (id, type, ...) or a term mapped to null: never stored
        raise not_found(f"no entity has the {what} {raw!r}")
    return iri


async def entity_types(request: Request) -> Response:
    """5.7.5 / 5.7.6 (6.25.3.1)."""
    call = await _Call.start(request, LIST_PARAMS)
    ctx = call.ctx
    if not call.details:
        names = sorted(ctx.compact_type(iri) for iri in await call.store.types(call.tenant))
        return await call.answer({"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList",
                                  "typeList": names})
    found = await call.store.type_attributes(call.tenant)
    items = [{"id": iri, "type": "EntityType", "typeName": ctx.compact_type(iri),
              "attributeNames": sorted(ctx.compact_attr(a) for a in attrs)}
             for iri, attrs in found.items()]
    return await call.answer(sorted(items, key=_by("typeName")))


async def entity_type_info(request: Request) -> Response:
    """5.7.7 (6.26.3.1)."""
    call = await _Call.start(request, ITEM_PARAMS)
    ctx = call.ctx
    iri = _path_iri(call, "type", "entity type")
    info = await call.store.type_info(call.tenant, iri)
    if info is None:
        raise not_found(f"no entity has the type {request.path_params['type']!r} ({iri})")
    details = [{"id": a, "type": "Attribute", "attributeName": ctx.compact_attr(a), "attributeTypes": kinds}
               for a, kinds in info.attributes.items()]
    return await call.answer({"id": iri, "type": "EntityTypeInfo", "typeName": ctx.compact_type(iri),
                              "entityCount": info.entity_count,
                              "attributeDetails": sorted(details, key=_by("attributeName"))})


async def attributes(request: Request) -> Response:
    """5.7.8 / 5.7.9 (6.27.3.1)."""
    call = await _Call.start(request, LIST_PARAMS)
    ctx = call.ctx
    if not call.details:
        names = sorted(ctx.compact_attr(iri) for iri in await call.store.attributes(call.tenant))
        return await call.answer({"id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}", "type": "AttributeList",
                                  "attributeList": names})
    found = await call.store.attribute_types(call.tenant)
    items = [{"id": iri, "type": "Attribute", "attributeName": ctx.compact_attr(iri),
              "typeNames": sorted(ctx.compact_type(t) for t in types)}
             for iri, types in found.items()]
    return await call.answer(sorted(items, key=_by("attributeName")))


async def attribute_info(request: Request) -> Response:
    """5.7.10 (6.28.3.1)."""
    call = await _Call.start(request, ITEM_PARAMS)
    ctx = call.ctx
    iri = _path_iri(call, "attr_id", "attribute")
    info = await call.store.attribute_info(call.tenant, iri)
    if info is None:
        raise not_found(f"no entity has the attribute {request.path_params['attr_id']!r} ({iri})")
    return await call.answer({"id": iri, "type": "Attribute", "attributeName": ctx.compact_attr(iri),
                              "attributeCount": info.count, "attributeTypes": info.attribute_types,
                              "typeNames": sorted(ctx.compact_type(t) for t in info.type_names)})


def _by(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: (item[key], item["id"])


routes: list[Route] = [
    resource("/types", GET=entity_types),
    resource("/types/{type:path}", GET=entity_type_info),
    resource("/attributes", GET=attributes),
    resource("/attributes/{attr_id:path}", GET=attribute_info),
]

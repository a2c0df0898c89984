"""Responses carrying entities (Retrieve Entity, Query Entities).

The @context (GS CIM 6.3.5 / 6.3.6): ``application/ld+json`` puts it in every entity of the body;
``application/json`` sends it in a ``Link`` header; ``application/geo+json`` puts it once at the top of the
Feature / FeatureCollection unless the request says ``Prefer: body=json``, then in a Link header.

Linked Entity retrieval (4.5.23): ``linked_entities`` reads the targets of the kept Relationships level by
level (one batch read per level, ``broker.store.linked``); ``join=inline`` embeds them
(``broker.model.render.Inline``), ``join=flat`` appends them to the result as top-level entities, each once.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import not_found
from ..jsonld import Context
from ..model.geojson_out import DEFAULT_GEOMETRY, feature, feature_collection
from ..model.render import Inline, View, render_entity
from ..services import broker_of
from ..store.linked import collect_linked
from .http import GEO_JSON, JSON, LD_JSON, json_response, link_header, tenant_of
from .params import NO_JOIN, Join

NGSILD = "https://uri.etsi.org/ngsi-ld/"


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


_LINK_HEADERS: dict[str, str] = {}


async def context_headers(request: Request, ctx: Context, media: str) -> dict[str, str]:
    """The Link header of a response of ``media`` (none when the @context travels in the body)."""
    if media == LD_JSON or (media == GEO_JSON and not prefers_json_body(request)):
        return {}
    raw = ctx.raw
    if isinstance(raw, str) and "://" in raw:  # a plain context URL: the header is always the same
        found = _LINK_HEADERS.get(raw)
        if found is None:
            found = link_header(raw)
            if len(_LINK_HEADERS) < 1024:
                _LINK_HEADERS[raw] = found
        return {"Link": found}
    url = await request.app.state.broker.contexts.link_url(ctx, base_url(request), tenant_of(request))
    return {"Link": link_header(url)}


def prefers_json_body(request: Request) -> bool:
    """``Prefer: body=json`` (6.3.6): a GeoJSON body without its @context."""
    header = request.headers.get("prefer")
    if not header:
        return False
    for pref in header.replace(";", ",").split(","):
        name, _, value = pref.partition("=")
        if name.strip().lower() == "body" and value.strip().strip('"').lower() == "json":
            return True
    return False


async def linked_entities(request: Request, rows: list[Any], view: View, join: Join
                          ) -> tuple[dict[str, Any], list[tuple[Any, View]]]:
    """The Linked Entities of ``rows`` up to ``join.level`` levels (``broker.store.linked.collect_linked``)."""
    broker = broker_of(request)
    return await collect_linked(broker.pool, broker.tenants, tenant_of(request), rows, view, join.level,
                                frozenset(join.contained_by))


async def render_rows(request: Request, rows: list[Any], ctx: Context, view: View, join: Join
                      ) -> list[tuple[dict[str, Any], Any]]:
    """The rendered entities of ``rows`` (with their Linked Entities as ``join`` says), each with its row;
    entities left without any member by pick / omit are dropped."""
    if join.mode is None:
        pairs = [(render_entity(row, ctx, view), row) for row in rows]
    else:
        known, linked = await linked_entities(request, rows, view, join)
        if join.mode == "inline":
            inline = Inline(known, join.level, frozenset(join.contained_by))
            pairs = [(render_entity(row, ctx, view, inline), row) for row in rows]
        else:
            pairs = [(render_entity(row, ctx, view), row) for row in rows]
            pairs += [(render_entity(row, ctx, sub), row) for row, sub in linked]
    return [(entity, row) for entity, row in pairs if entity]


def _geometry(geometry: str | None) -> str:
    return geometry or DEFAULT_GEOMETRY


async def entity_response(request: Request, row: Any, ctx: Context, view: View, media: str,
                          join: Join = NO_JOIN, geometry: str | None = None) -> Response:
    """Retrieve Entity: one entity, or with ``join=flat`` and Linked Entities found, an array of them."""
    rendered = await render_rows(request, [row], ctx, view, join)
    if not rendered or rendered[0][1] is not row:
        raise not_found(f"entity {row['id']} has none of the requested members")
    headers = await context_headers(request, ctx, media)
    return _respond(request, rendered, ctx, media, headers, geometry, single=True)


async def entities_response(request: Request, rows: list[Any], ctx: Context, view: View, media: str,
                            join: Join = NO_JOIN, geometry: str | None = None,
                            headers: dict[str, str] | None = None) -> Response:
    """Query Entities: an array of entities (a FeatureCollection for GeoJSON); ``headers`` are added."""
    rendered = await render_rows(request, rows, ctx, view, join)
    out_headers = await context_headers(request, ctx, media)
    for name, value in (headers or {}).items():
        out_headers[name] = ", ".join(filter(None, [out_headers.get(name), value]))
    return _respond(request, rendered, ctx, media, out_headers, geometry, single=False)


def _respond(request: Request, rendered: list[tuple[dict[str, Any], Any]], ctx: Context, media: str,
             headers: dict[str, str], geometry: str | None, single: bool) -> Response:
    """The body in ``media``: a Feature(Collection) for GeoJSON, else the entities (``single``: one entity
    unwrapped), with the @context in the body for JSON-LD."""
    if media == GEO_JSON:
        features = [feature(entity, r, _geometry(geometry)) for entity, r in rendered]
        body: Any = features[0] if single and len(features) == 1 else feature_collection(features)
        if not prefers_json_body(request):
            body["@context"] = ctx.raw
        return json_response(body, headers=headers, media=GEO_JSON)
    entities = [entity for entity, _ in rendered]
    if media == LD_JSON:
        for entity in entities:
            entity["@context"] = ctx.raw
    return json_response(entities[0] if single and len(entities) == 1 else entities, headers=headers,
                         media=media or JSON)


async def context_response(request: Request, data: Any, media: str, ctx: Context,
                           headers: dict[str, str] | None = None) -> Response:
    """``data`` (an object or a list of objects that are not entities: subscriptions, registrations) as JSON
    with the context in a ``Link`` header, or as JSON-LD with ``@context`` in each object."""
    out_headers = dict(headers or {})
    for name, value in (await context_headers(request, ctx, media)).items():
        out_headers[name] = f"{value}, {out_headers[name]}" if name in out_headers else value
    if media == LD_JSON:
        for item in data if isinstance(data, list) else [data]:
            item["@context"] = ctx.raw if ctx.raw is not None else broker_of(request).contexts.core.raw
    return json_response(data, headers=out_headers, media=media)

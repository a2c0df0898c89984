"""Responses carrying entities: the @context goes in the body (ld+json) or in a Link header (json)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..jsonld import Context
from ..model.render import View, render_entity
from .http import GEO_JSON, JSON, LD_JSON, json_response, link_header, tenant_of

NGSILD = "https://uri.etsi.org/ngsi-ld/"


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


_LINK_HEADERS: dict[str, str] = {}


async def context_headers(request: Request, ctx: Context, media: str) -> dict[str, str]:
    if media == LD_JSON:
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


def geo_feature(entity: dict[str, Any], row: Any, ctx: Context, geometry_iri: str) -> dict[str, Any]:
    geometry = None
    for inst in row["attrs"].get(geometry_iri, []):
        if inst.get("type") == "GeoProperty":
            geometry = inst["value"]
            break
    properties = {k: v for k, v in entity.items() if k != "id"}
    return {"id": entity["id"], "type": "Feature", "geometry": geometry, "properties": properties}


async def entity_response(request: Request, row: Any, ctx: Context, view: View, media: str) -> Response:
    entity = render_entity(row, ctx, view)
    headers = await context_headers(request, ctx, media)
    if media == GEO_JSON:
        prop = request.query_params.get("geometryProperty") or "location"
        entity = geo_feature(entity, row, ctx, ctx.expand_term(prop))
        entity["@context"] = ctx.raw
        return json_response(entity, headers=headers, media=GEO_JSON)
    if media == LD_JSON:
        entity["@context"] = ctx.raw
    return json_response(entity, headers=headers, media=media or JSON)

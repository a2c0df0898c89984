"""Query Entities: ``GET /entities`` and ``POST /entityOperations/query``.

Answers a JSON array of entities in the requested representation; ``count=true`` adds the
``NGSILD-Results-Count`` header; pages carry ``Link`` headers with ``rel="next"`` / ``rel="prev"``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, bad_request
from ..jsonld import Context
from ..model.entity import check_entity_id
from ..model.render import View, render_entity
from ..query.types import parse_types
from ..services import broker_of
from ..store.query import EntityQuery, Selector, run_query
from .http import LD_JSON, json_response, negotiate, read_json, tenant_of
from .params import bool_param, check_params, link_context, list_param, options_of, view_of
from .render import context_headers

QUERY_PARAMS = ("id", "idPattern", "type", "attrs", "q", "scopeQ", "options", "format", "limit", "offset",
                "count", "local", "lang", "csf")
REPRESENTATION = ("keyValues", "simplified", "concise", "normalized", "sysAttrs")
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000


def _int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"'{name}' must be a non-negative integer")
    value = int(raw)
    if maximum is not None and value > maximum:
        raise NgsiError("BadRequestData", f"'{name}' must be at most {maximum}")
    return value


def parse_q_param(text: str | None) -> Any:
    if not text:
        return None
    from ..query.q import parse_q

    return parse_q(text)


def parse_scope_q_param(text: str | None) -> Any:
    if not text:
        return None
    from ..query.scope import parse_scope_q

    return parse_scope_q(text)


def filters_of(request: Request, ctx: Context, what: str) -> EntityQuery:
    """The entity filters of a query string (GET /entities, purge): at least one is required."""
    ids = list_param(request, "id")
    type_expr = request.query_params.get("type")
    selector = Selector(ids=[check_entity_id(i) for i in ids] if ids else None,
                        id_pattern=request.query_params.get("idPattern") or None,
                        types=parse_types(type_expr) if type_expr else None)
    attrs = list_param(request, "attrs")
    query = EntityQuery(
        selectors=[selector] if (selector.ids or selector.id_pattern or selector.types) else [],
        attrs=[ctx.expand_term(a) for a in attrs] if attrs else None,
        q=parse_q_param(request.query_params.get("q")),
        scope_q=parse_scope_q_param(request.query_params.get("scopeQ")))
    _require_selector(query, request, what)
    return query


def _require_selector(query: EntityQuery, request: Request, what: str) -> None:
    """GS CIM 009 5.7.2 / 5.6.21: a query without any filter (and without local=true) is BadRequestData."""
    if not (query.selectors or query.attrs or query.q is not None or query.scope_q is not None
            or bool_param(request, "local")):
        raise bad_request(f"{what} needs at least one of type, id, idPattern, attrs, q, scopeQ or local=true")


async def query_entities(request: Request) -> Response:
    check_params(request, QUERY_PARAMS)
    ctx = await link_context(request)
    query = filters_of(request, ctx, "a query")
    query.limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    query.offset = _int_param(request, "offset", 0)
    query.count = bool_param(request, "count")
    view = view_of(request, ctx, options_of(request, REPRESENTATION))
    return await _answer(request, ctx, query, view)


async def query_entities_post(request: Request) -> Response:
    check_params(request, ("limit", "offset", "count", "options", "format", "local", "lang"))
    broker = broker_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise bad_request("the body must be a Query object with \"type\": \"Query\"")
    raw_ctx = body.get("@context") if ctype == LD_JSON else None
    if ctype == LD_JSON and raw_ctx is None:
        raise bad_request("application/ld+json requires an @context member in the body")
    ctx = await broker.contexts.resolve(raw_ctx, tenant_of(request)) if raw_ctx is not None \
        else await link_context(request)
    selectors = [_selector(item) for item in body.get("entities") or []]
    attrs = body.get("attrs")
    if attrs is not None and not (isinstance(attrs, list) and all(isinstance(a, str) for a in attrs)):
        raise bad_request("attrs must be an array of attribute names")
    query = EntityQuery(
        selectors=selectors,
        attrs=[ctx.expand_term(a) for a in attrs] if attrs else None,
        q=parse_q_param(body.get("q")), scope_q=parse_scope_q_param(body.get("scopeQ")),
        limit=_int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT),
        offset=_int_param(request, "offset", 0), count=bool_param(request, "count"))
    _require_selector(query, request, "a query")
    view = view_of(request, ctx, options_of(request, REPRESENTATION))
    return await _answer(request, ctx, query, view)


def _selector(item: Any) -> Selector:
    if not isinstance(item, dict):
        raise bad_request("each member of 'entities' must be an EntitySelector object")
    entity_id = item.get("id")
    types = item.get("type")
    if types is not None and not isinstance(types, str):
        raise bad_request("an EntitySelector type must be a string (a type expression)")
    return Selector(ids=[check_entity_id(entity_id)] if entity_id else None,
                    id_pattern=item.get("idPattern") or None,
                    types=parse_types(types) if types else None)


async def _answer(request: Request, ctx: Context, query: EntityQuery, view: View) -> Response:
    broker = broker_of(request)
    media = negotiate(request)
    rows, total = await run_query(broker.pool, broker.tenants, tenant_of(request), query, ctx,
                                  broker.indexes)
    body = [render_entity(row, ctx, view) for row in rows]
    headers = await context_headers(request, ctx, media)
    if media == LD_JSON:
        for entity in body:
            entity["@context"] = ctx.raw
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    links = _page_links(request, query, len(rows), total)
    if links:
        headers["Link"] = ", ".join(filter(None, [headers.get("Link")] + links))
    return json_response(body, headers=headers, media=media)


def _page_links(request: Request, query: EntityQuery, returned: int, total: int | None) -> list[str]:
    """rel=prev / rel=next links when there are other pages (next only if this page was full)."""
    if request.method != "GET" or query.limit == 0:
        return []
    params = dict(request.query_params)
    links = []
    if query.offset > 0:
        params["offset"] = str(max(0, query.offset - query.limit))
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="prev"; type="application/json"')
    more = total > query.offset + returned if total is not None else returned == query.limit
    if more:
        params["offset"] = str(query.offset + query.limit)
        links.append(f'<{request.url.path}?{urlencode(params)}>; rel="next"; type="application/json"')
    return links



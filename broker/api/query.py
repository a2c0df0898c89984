"""Query Entities: ``GET /entities`` and ``POST /entityOperations/query``.

Answers a JSON array of entities in the requested representation (a GeoJSON FeatureCollection for
``Accept: application/geo+json``); ``count=true`` adds the ``NGSILD-Results-Count`` header; pages carry
``Link`` headers with ``rel="next"`` / ``rel="prev"``. The output parameters (format / options, pick / omit,
lang, datasetId, join / joinLevel / containedBy, geometryProperty, orderBy) come from the URL, or for the
POST form from the Query body (5.2.23); ``broker.api.params`` validates them, ``broker.api.render`` renders.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, bad_request
from ..jsonld import Context
from ..model.entity import attribute_iri, check_entity_id
from ..model.render import View
from ..query.order import parse_order_by
from ..query.geo import GeoQuery, parse_geo_params, parse_geo_q
from ..query.types import parse_types
from ..services import broker_of
from ..store.query import EntityQuery, Selector, collation_name, run_query
from .http import ENTITY_OFFERS, LD_JSON, negotiate, read_json, tenant_of
from .params import (
    SYSTEM_MEMBERS,
    Join,
    bool_param,
    check_params,
    geometry_property,
    join_of,
    link_context,
    list_param,
    make_join,
    make_view,
    options_of,
    view_of,
)
from .render import entities_response

QUERY_PARAMS = ("id", "idPattern", "type", "attrs", "q", "scopeQ", "options", "format", "limit", "offset",
                "count", "local", "lang", "csf", "pick", "omit", "datasetId", "join", "joinLevel", "containedBy",
                "geometryProperty", "orderBy", "collation", "georel", "geometry", "coordinates", "geoproperty")
REPRESENTATION = ("keyValues", "simplified", "concise", "normalized", "sysAttrs")


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"'{name}' must be a non-negative integer")
    value = int(raw)
    if maximum is not None and value > maximum:
        raise NgsiError("BadRequestData", f"'{name}' must be at most {maximum}")
    return value


def _limit(request: Request) -> int:
    settings = broker_of(request).settings
    return int_param(request, "limit", settings.default_limit, settings.max_limit)


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


def filters_of(request: Request, ctx: Context, what: str, *, id_pattern_qualifies: bool = True) -> EntityQuery:
    """The entity filters of a query string (GET /entities, purge): at least one is required (see
    ``_require_selector``; a purge passes ``id_pattern_qualifies=False``)."""
    ids = list_param(request, "id")
    type_expr = request.query_params.get("type")
    wildcard = type_expr == "*"  # 4.17: every Entity Type
    if wildcard and request.query_params.get("local") == "false":
        raise bad_request("type=* selects every Entity Type of the local scope: local must not be false")
    selector = Selector(ids=[check_entity_id(i) for i in ids] if ids else None,
                        id_pattern=request.query_params.get("idPattern") or None,
                        types=parse_types(type_expr) if type_expr and not wildcard else None)
    attrs = list_param(request, "attrs")
    query = EntityQuery(
        selectors=[selector] if (selector.ids or selector.id_pattern or selector.types) else [],
        attrs=[attribute_iri(a, ctx) for a in attrs] if attrs else None,
        q=parse_q_param(request.query_params.get("q")),
        scope_q=parse_scope_q_param(request.query_params.get("scopeQ")),
        geo=geo_of(request))
    # csf filters Context Source Registrations, which a local query does not consult; it is still checked
    # (its grammar is q's, 4.9) so that a malformed one is a bad request rather than ignored
    parse_q_param(request.query_params.get("csf"))
    _require_selector(query, request, what, wildcard, id_pattern_qualifies=id_pattern_qualifies)
    return query


def geo_of(request: Request) -> GeoQuery | None:
    """The geo-query of a query string (georel, geometry, coordinates, geoproperty), None if it has none."""
    params = request.query_params
    return parse_geo_params(params.get("geometry"), params.get("georel"), params.get("coordinates"),
                            params.get("geoproperty"))


def _require_selector(query: EntityQuery, request: Request, what: str, wildcard: bool = False, *,
                      id_pattern_qualifies: bool = True) -> None:
    """GS CIM 009 5.7.2.4 / 5.6.21.4: a query needs a type (``*`` too), attrs, a q on a non-system attribute,
    a geo-query or local=true (ids alone are too wide: ETSI 019_03_05, 5722_01_02; an idPattern alone and
    scopeQ are still accepted by queries); else BadRequestData. A purge does not take an idPattern alone:
    ``DELETE /entities?idPattern=.*`` would empty the tenant (5.6.21.4; ETSI 060_06_02)."""
    typed = wildcard or any(sel.types is not None or (id_pattern_qualifies and sel.id_pattern)
                            for sel in query.selectors)
    if not (typed or query.attrs or _q_on_attributes(query.q) or query.scope_q is not None
            or query.geo is not None or bool_param(request, "local")):
        alone = "an id or idPattern alone" if not id_pattern_qualifies else "an id alone"
        raise bad_request(f"{what} needs at least one of type, attrs, q, scopeQ, a geo-query or local=true "
                          f"({alone} is not enough)")


async def query_entities(request: Request) -> Response:
    check_params(request, QUERY_PARAMS)
    ctx = await link_context(request)
    query = filters_of(request, ctx, "a query")
    query.limit = _limit(request)
    query.offset = int_param(request, "offset", 0)
    query.count = bool_param(request, "count")
    view = view_of(request, ctx, options_of(request, REPRESENTATION))
    params = request.query_params
    return await _answer(request, ctx, query, view, join_of(request, view), params.get("geometryProperty"),
                         params.get("orderBy"), params.get("collation"))


async def query_entities_post(request: Request) -> Response:
    """5.7.2 via POST (6.23.3.1): the Query (5.2.23) in the body; its members override the URL's."""
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
    if "temporalQ" in body:
        raise bad_request("temporalQ is only for Query Temporal Evolution of Entities (5.2.23)")
    entities = body.get("entities")
    if entities is not None and (not isinstance(entities, list) or not entities):
        raise bad_request("entities must be a non-empty array of EntitySelectors")
    selectors = [_selector(item) for item in entities or []]
    attrs = body.get("attrs")
    if attrs is not None and not (isinstance(attrs, list) and attrs and all(isinstance(a, str) for a in attrs)):
        raise bad_request("attrs must be a non-empty array of attribute names")
    for member in ("q", "scopeQ", "lang", "join", "geometryProperty"):
        if member in body and not isinstance(body[member], str):
            raise bad_request(f"{member} must be a string")
    query = EntityQuery(
        selectors=selectors,
        attrs=[attribute_iri(a, ctx) for a in attrs] if attrs else None,
        q=parse_q_param(body.get("q")), scope_q=parse_scope_q_param(body.get("scopeQ")),
        geo=parse_geo_q(body["geoQ"]) if body.get("geoQ") is not None else None,
        limit=_limit(request),
        offset=int_param(request, "offset", 0), count=bool_param(request, "count"))
    _require_selector(query, request, "a query", any(item.get("type") == "*" for item in entities or []))
    params = request.query_params
    view = make_view(ctx, options_of(request, REPRESENTATION), fmt=params.get("format"), attrs=attrs,
                     pick=body.get("pick"), omit=body.get("omit"), lang=body.get("lang", params.get("lang")),
                     datasets=_as_list(body.get("datasetId"), "datasetId"))
    join = make_join(view, body.get("join"), body.get("joinLevel"), _as_list(body.get("containedBy"),
                                                                            "containedBy"))
    order_by, collation = _ordering(body)
    return await _answer(request, ctx, query, view, join, body.get("geometryProperty"), order_by, collation)


def _ordering(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """orderBy / collation of a Query body, top-level or in its ``ordering`` member (4.23, 5.2.43)."""
    source = body
    if "ordering" in body:
        source = body["ordering"]
        if not isinstance(source, dict):
            raise bad_request("ordering must be an object (5.2.43)")
        if "geometry" in source and not isinstance(source["geometry"], str):
            raise bad_request("ordering geometry must be a string")
        if "coordinates" in source and not isinstance(source["coordinates"], list):
            raise bad_request("ordering coordinates must be an array")
    order_by, collation = source.get("orderBy"), source.get("collation")
    if isinstance(order_by, list) and order_by and all(isinstance(o, str) for o in order_by):
        order_by = ",".join(order_by)
    if order_by is not None and not isinstance(order_by, str):
        raise bad_request("orderBy must be a string or an array of strings")
    if collation is not None and not isinstance(collation, str):
        raise bad_request("collation must be a string")
    return order_by, collation


def _as_list(raw: Any, what: str) -> list[Any] | None:
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(i, str) for i in items):
        raise bad_request(f"{what} must be a string or a non-empty array of strings")
    return items


def _q_on_attributes(q: Any) -> bool:
    """Whether a q expression tests at least one attribute that is not a system member (5.7.2.4 c)."""
    if q is None:
        return False
    from ..query.q import terms

    return any(getattr(term, "path", None) is None or term.path.names[0] not in SYSTEM_MEMBERS
               for term in terms(q))


def _selector(item: Any) -> Selector:
    """An EntitySelector (5.2.33): ``type`` is mandatory; ``id`` (a URI or an array of them) takes precedence
    over ``idPattern``."""
    if not isinstance(item, dict):
        raise bad_request("each member of 'entities' must be an EntitySelector object")
    entity_id = item.get("id")
    types = item.get("type")
    if not isinstance(types, str) or not types:
        raise bad_request("an EntitySelector needs a type (a string: a type expression, or *)")
    ids = None
    if entity_id is not None:
        given = entity_id if isinstance(entity_id, list) else [entity_id]
        if not given or not all(isinstance(i, str) for i in given):
            raise bad_request("an EntitySelector id is a URI or an array of URIs")
        ids = [check_entity_id(i) for i in given]
    pattern = item.get("idPattern")
    if pattern is not None and not isinstance(pattern, str):
        raise bad_request("an EntitySelector idPattern is a string (a regular expression)")
    return Selector(ids=ids, id_pattern=(pattern or None) if ids is None else None,
                    types=None if types == "*" else parse_types(types))


async def _answer(request: Request, ctx: Context, query: EntityQuery, view: View, join: Join,
                  geometry: str | None = None, order_by: str | None = None, collation: str | None = None
                  ) -> Response:
    broker = broker_of(request)
    media = negotiate(request, ENTITY_OFFERS)
    geometry_iri = geometry_property(ctx, geometry, media)
    if query.attrs is None and view.pick is not None and not any(":" not in m for m in view.pick):
        query.attrs = list(view.pick)  # 4.21: only entities holding a picked attribute keep a member
    if order_by:
        query.order = parse_order_by(order_by, ctx)
    if collation:
        query.collation = await collation_name(broker.pool, collation)
    rows, total = await run_query(broker.pool, broker.tenants, tenant_of(request), query, ctx, broker.indexes,
                                  broker.postgis)
    headers = page_headers(request, query.limit, query.offset, len(rows), total, count=total is not None)
    return await entities_response(request, list(rows), ctx, view, media, join, geometry_iri, headers)


def page_headers(request: Request, limit: int, offset: int, returned: int, total: int | None, *, count: bool,
                 headers: dict[str, str] | None = None, media: str = "application/json",
                 request_order: bool = False) -> dict[str, str]:
    """A page's headers: ``NGSILD-Results-Count`` (the total) when ``count``, and the ``page_links``, added
    to a ``Link`` header that ``headers`` may hold already."""
    headers = {} if headers is None else headers
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    links = page_links(request, limit, offset, returned, total, media, request_order=request_order)
    if links:
        headers["Link"] = ", ".join(filter(None, [headers.get("Link"), *links]))
    return headers


def page_links(request: Request, limit: int, offset: int, returned: int, total: int | None,
               media: str = "application/json", *, request_order: bool = False) -> list[str]:
    """rel=prev / rel=next links when there are other pages (next only if this page was full); the
    parameters in name order, or with ``request_order`` in the request's (ETSI 037_11 expects that)."""
    if request.method != "GET" or limit == 0:
        return []
    params = dict(request.query_params)
    links = []
    if offset > 0:
        params["offset"] = str(max(0, offset - limit))
        links.append(f'<{request.url.path}?{_query_string(params, request_order)}>; rel="prev"; type="{media}"')
    more = total > offset + returned if total is not None else returned == limit
    if more:
        params["offset"] = str(offset + limit)
        links.append(f'<{request.url.path}?{_query_string(params, request_order)}>; rel="next"; type="{media}"')
    return links


def _query_string(params: dict[str, str], request_order: bool = False) -> str:
    """Parameters in name order (or as given), percent-encoding only what a query component cannot hold."""
    items = params.items() if request_order else sorted(params.items())
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=':/*,;$@!()')}" for k, v in items)



"""Temporal reads: ``GET /temporal/entities/{id}``, ``GET /temporal/entities`` and
``POST /temporal/entityOperations/query`` (GS CIM 009 5.7.3, 5.7.4).

parse (entity filters as Query Entities has them, the temporal query, the representation) → the page of
``temporal_entities`` → ``broker.temporal.assemble`` → the response; 206 with ``Content-Range`` when an
attribute's instances were cut at the instance limit.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, bad_request, not_found
from ..jsonld import Context
from ..model.render import View
from ..query.geo import parse_geo_q
from ..services import broker_of
from ..store.query import EntityQuery, where_clause
from ..temporal import assemble, store
from ..temporal.params import TemporalQuery, parse_temporal
from ..temporal.render import time_text
from .http import JSON, LD_JSON, negotiate, read_json, tenant_of
from .params import check_params, entity_path_id, link_context, list_param, make_view, options_of
from .query import (
    _as_list,
    _require_selector,
    _selector,
    bool_param,
    filters_of,
    int_param,
    page_headers,
    parse_q_param,
    parse_scope_q_param,
)
from .render import context_headers

TEMPORAL_OPTIONS = frozenset(("temporalValues", "aggregatedValues", "sysAttrs", "normalized", "simplified",
                              "keyValues", "concise"))
# the options that choose a representation (sysAttrs does not)
REPRESENTATIONS = TEMPORAL_OPTIONS - {"sysAttrs"}
TEMPORAL_PARAMS = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods", "aggrPeriodDuration",
                   "options", "format", "attrs", "pick", "omit", "lang", "datasetId", "local", "type")
QUERY_PARAMS = TEMPORAL_PARAMS + ("id", "idPattern", "q", "scopeQ", "georel", "geometry", "coordinates",
                                  "geoproperty", "limit", "offset", "count", "csf", "orderBy", "collation")
HEAD_MEMBERS = frozenset(("id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"))


def _mode(options: set[str], fmt: str | None) -> str:
    """normalized, temporalValues or aggregatedValues: ``format`` wins over ``options`` (6.3.7)."""
    if fmt is not None:
        if fmt in ("temporalValues", "simplified", "keyValues"):
            return assemble.TEMPORAL_VALUES
        if fmt == "aggregatedValues":
            return assemble.AGGREGATED
        if fmt in ("normalized", "concise"):
            return assemble.NORMALIZED
        raise NgsiError("InvalidRequest", f"unknown format '{fmt}'")
    if "aggregatedValues" in options:
        return assemble.AGGREGATED
    if options & {"temporalValues", "simplified", "keyValues"}:
        return assemble.TEMPORAL_VALUES
    return assemble.NORMALIZED


def _view(ctx: Context, options: set[str], source: Any, attrs: list[str] | None) -> View:
    view = make_view(ctx, options & {"sysAttrs"}, attrs=attrs, pick=source.get("pick"), omit=source.get("omit"),
                     lang=source.get("lang"), datasets=_as_list(source.get("datasetId"), "datasetId")
                     if not isinstance(source.get("datasetId"), str) else source.get("datasetId").split(","))
    for tree in (view.pick, view.omit):
        if tree and any(sub is not None for sub in tree.values()):  # owner{name}: no Linked Entities here
            raise bad_request("pick / omit of Linked Entity members is not supported by the temporal API")
    return view


def _temporal_of(source: Any, mode: str) -> TemporalQuery:
    return parse_temporal(source.get("timerel"), source.get("timeAt"), source.get("endTimeAt"),
                          source.get("timeproperty"), source.get("lastN"), source.get("aggrMethods"),
                          source.get("aggrPeriodDuration"), aggregated=mode == assemble.AGGREGATED)


def _content_range(cut: assemble.Cut, query: TemporalQuery) -> dict[str, str]:
    """6.3.10: ``date-time <first>-<last>/<lastN or *>``, first to last in the order the page was taken."""
    size = str(query.last_n) if query.last_n is not None else "*"
    return {"Content-Range": f"date-time {time_text(cut.first)}-{time_text(cut.last)}/{size}"}  # type: ignore[arg-type]


async def retrieve_temporal(request: Request) -> Response:
    check_params(request, TEMPORAL_PARAMS)
    broker = broker_of(request)
    tenant = tenant_of(request)
    entity_id = entity_path_id(request)
    media = negotiate(request, (JSON, LD_JSON))
    ctx = await link_context(request)
    options = options_of(request, TEMPORAL_OPTIONS)
    params = request.query_params
    mode = _mode(options, params.get("format"))
    view = _view(ctx, options, params, list_param(request, "attrs"))
    query = _temporal_of(params, mode)
    if params.get("local") is not None:
        bool_param(request, "local")
    schema = await broker.tenants.schema(tenant, create=False)
    async with broker.pool.acquire() as conn:
        row = await store.entity_row(conn, schema, entity_id)
        if row is None:
            raise not_found(f"entity {entity_id} has no temporal evolution")
        entities, cut = await assemble.assemble(conn, schema, [row], ctx, view, query, mode,
                                                broker.settings.temporal_instance_limit)
    entity = entities[0]
    if not entity or (view.attrs is not None or view.datasets is not None) and not _has_attributes(entity):
        raise not_found(f"entity {entity_id} has none of the requested members")
    headers = await context_headers(request, ctx, media)
    if cut is not None:
        headers.update(_content_range(cut, query))
    return _json(entity, ctx, media, headers, 206 if cut is not None else 200)


async def query_temporal(request: Request) -> Response:
    check_params(request, QUERY_PARAMS)
    ctx = await link_context(request)
    entity_query = filters_of(request, ctx, "a temporal query")
    options = options_of(request, TEMPORAL_OPTIONS)
    params = request.query_params
    mode = _mode(options, params.get("format"))
    view = _view(ctx, options, params, list_param(request, "attrs"))
    return await _answer(request, ctx, entity_query, view, _temporal_of(params, mode), mode,
                         _descending(params.get("orderBy")))


def _descending(order_by: Any) -> bool:
    """5.7.4.4: temporal entities may be ordered by ``id`` only (4.23 direction ``;asc`` / ``;desc``)."""
    if order_by in (None, "", "id", "id;asc"):
        return False
    if order_by == "id;desc":
        return True
    raise bad_request(f"orderBy {order_by!r}: temporal queries can be ordered by id only (id, id;asc, id;desc)")


async def query_temporal_post(request: Request) -> Response:
    """5.7.4 via POST (6.24.3.1): a Query whose ``temporalQ`` holds the temporal query."""
    check_params(request, ("limit", "offset", "count", "options", "format", "local", "lang", "lastN"))
    broker = broker_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise bad_request("the body must be a Query object with \"type\": \"Query\"")
    raw_ctx = body.get("@context") if ctype == LD_JSON else None
    ctx = await broker.contexts.resolve(raw_ctx, tenant_of(request)) if raw_ctx is not None \
        else await link_context(request)
    temporal_q = body.get("temporalQ", {})
    if not isinstance(temporal_q, dict):
        raise bad_request("temporalQ must be an object")
    entities = body.get("entities")
    if entities is not None and (not isinstance(entities, list) or not entities):
        raise bad_request("entities must be a non-empty array of EntitySelectors")
    attrs = body.get("attrs")
    if attrs is not None and not (isinstance(attrs, list) and all(isinstance(a, str) for a in attrs)):
        raise bad_request("attrs must be an array of attribute names")
    entity_query = EntityQuery(
        selectors=[_selector(item) for item in entities or []],
        attrs=[ctx.expand_term(a) for a in attrs] if attrs else None,
        q=parse_q_param(body.get("q")), scope_q=parse_scope_q_param(body.get("scopeQ")),
        geo=parse_geo_q(body["geoQ"]) if body.get("geoQ") is not None else None)
    _require_selector(entity_query, request, "a temporal query", any(
        isinstance(item, dict) and item.get("type") == "*" for item in entities or []))
    options = options_of(request, TEMPORAL_OPTIONS)
    aggregation = _aggregation_params(body, temporal_q)
    mode = _mode(options, request.query_params.get("format"))
    if mode == assemble.NORMALIZED and aggregation["aggrMethods"] is not None and not options & REPRESENTATIONS \
            and request.query_params.get("format") is None:
        mode = assemble.AGGREGATED  # a Query naming aggregation methods asks for aggregated values
    source = {**temporal_q, **aggregation,
              "lastN": temporal_q.get("lastN", request.query_params.get("lastN")),
              "pick": body.get("pick"), "omit": body.get("omit"),
              "lang": body.get("lang", request.query_params.get("lang")), "datasetId": body.get("datasetId")}
    view = _view(ctx, options, source, attrs)
    return await _answer(request, ctx, entity_query, view, _temporal_of(source, mode), mode)


def _aggregation_params(body: dict[str, Any], temporal_q: dict[str, Any]) -> dict[str, Any]:
    """aggrMethods / aggrPeriodDuration of a Query: its ``aggrParams`` (5.2.44), its ``temporalQ`` (5.2.21)
    or, as earlier versions had them, the Query itself."""
    params = body.get("aggrParams", {})
    if not isinstance(params, dict):
        raise bad_request("aggrParams must be an object")
    found: dict[str, Any] = {}
    for member in ("aggrMethods", "aggrPeriodDuration"):
        found[member] = next((source[member] for source in (params, temporal_q, body)
                              if source.get(member) is not None), None)
    return found


async def _answer(request: Request, ctx: Context, entity_query: EntityQuery, view: View, query: TemporalQuery,
                  mode: str, descending: bool = False) -> Response:
    broker = broker_of(request)
    settings = broker.settings
    media = negotiate(request, (JSON, LD_JSON))
    limit = int_param(request, "limit", settings.default_limit, settings.max_limit)
    offset = int_param(request, "offset", 0)
    count = bool_param(request, "count")
    schema = await broker.tenants.schema(tenant_of(request), create=False)
    args: list[Any] = []
    where = _entity_filter(schema, entity_query, ctx, args, broker.postgis, query)
    async with broker.pool.acquire() as conn:
        rows = await store.entity_rows(conn, schema, where, args, limit, offset, descending) if limit else []
        total = await store.count_entities(conn, schema, where, args) if count else None
        entities, cut = await assemble.assemble(conn, schema, rows, ctx, view, query, mode,
                                                settings.temporal_instance_limit)
    headers = page_headers(request, limit, offset, len(rows), total, count=total is not None,
                           headers=await context_headers(request, ctx, media))
    if cut is not None:
        headers.update(_content_range(cut, query))
    narrowed = view.attrs is not None or view.datasets is not None  # entities left without attributes drop out
    body = [e for e in entities if e and (not narrowed or _has_attributes(e))]
    return _json(body, ctx, media, headers, 206 if cut is not None else 200)


def _has_attributes(entity: dict[str, Any]) -> bool:
    return any(k not in HEAD_MEMBERS for k in entity)


def _entity_filter(schema: str, query: EntityQuery, ctx: Context, args: list[Any], postgis: bool,
                   temporal: TemporalQuery) -> str:
    """The condition on ``temporal_entities``: selectors and scopeQ on its own columns (with a time window,
    scopeQ on the scopes valid in the window: 5.7.4.4 S4); an instance in the time window (of one of
    ``attrs``) in the history; q and geo-queries on the entity's current state (the
    core ``entities`` row), as Query Entities evaluates them."""
    windowed = query.scope_q is not None and temporal.timerel is not None
    conditions = [where_clause(EntityQuery(selectors=query.selectors, scope_q=None if windowed else query.scope_q),
                               ctx, args) or "true"]
    if windowed:
        conditions.append(store.scope_in_window(schema, query.scope_q, temporal, args))
    if query.attrs or temporal.timerel is not None:
        cond = store.time_filter(temporal, args, None)
        if query.attrs:
            args.append(query.attrs)
            cond += f" AND i.attr = ANY(${len(args)}::text[])"
        conditions.append(f"EXISTS (SELECT 1 FROM {schema}.attr_instances i WHERE i.entity_id = "
                          f"{schema}.temporal_entities.id AND {cond})")
    if query.q is not None or query.geo is not None:
        current = where_clause(EntityQuery(q=query.q, geo=query.geo), ctx, args, postgis=postgis)
        conditions.append(f"id IN (SELECT id FROM {schema}.entities WHERE {current})")
    return " AND ".join(f"({c})" for c in conditions)


def _json(body: Any, ctx: Context, media: str, headers: dict[str, str], status: int) -> Response:
    from .http import json_response

    if media == LD_JSON:
        for entity in body if isinstance(body, list) else [body]:
            entity["@context"] = ctx.raw
    return json_response(body, status=status, headers=headers, media=media)

"""``/csourceRegistrations`` and ``/csourceRegistrations/{id}`` (GS CIM 009 5.9, 5.10; 6.8 / 6.9): register,
query, retrieve, update and delete Context Source Registrations. Validation and rendering are
``broker.registrations.model``, the query's matching ``broker.registrations.match``, the rows
``broker.registrations.store``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import uuid4

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, bad_request, not_found
from ..jsonld import Context
from ..model import values
from ..model.operations import iso
from ..query.evaluate import q_matcher, scope_matcher
from ..query.geo import GeoQuery
from ..query.scope import parse_scope_q
from ..query.types import parse_types
from ..registrations import store
from ..registrations.match import RegistrationFilter
from ..registrations.model import apply_patch, parse_registration, render_registration
from ..services import broker_of
from ..temporal.params import parse_temporal
from .http import (JSON, LD_JSON, MERGE_PATCH, negotiate, no_content,
                   read_json_in_context, tenant_of)
from .params import bool_param, check_params, link_context, list_param, member_path_id, now, options_of
from .query import geo_of, int_param, page_headers, parse_q_param
from .render import context_response
from .resource import resource

PATH = "/ngsi-ld/v1/csourceRegistrations"
PATCH_ATTEMPTS = 3
QUERY_PARAMS = ("id", "type", "idPattern", "attrs", "q", "csf", "scopeQ", "georel", "geometry", "coordinates",
                "geoproperty", "timeproperty", "timerel", "timeAt", "endTimeAt", "geometryProperty", "lang",
                "options", "limit", "offset", "count", "local")
GEO_MEMBERS = ("location", "observationSpace", "operationSpace")


async def create_registration(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, raw_context, ctx = await read_json_in_context(request, tenant)
    stamp, stamp_dt = now()
    reg = parse_registration(body, ctx, stamp)
    reg_id = reg.setdefault("id", f"urn:ngsi-ld:ContextSourceRegistration:{uuid4()}")
    reg = {"id": reg_id, **{k: v for k, v in reg.items() if k != "id"}}
    await broker.tenants.schema(tenant, create=True)
    await store.create(broker.pool, tenant, reg_id, reg, raw_context, stamp_dt)
    return Response(status_code=201, headers={"Location": f"{PATH}/{quote(reg_id, safe=':')}"})


def _render(row: Any, ctx: Context, sys_attrs: bool) -> dict[str, Any]:
    return render_registration(row["body"], ctx, iso(row["created_at"]), iso(row["modified_at"]),
                               sys_attrs=sys_attrs)


async def retrieve_registration(request: Request) -> Response:
    check_params(request, ("options", "local", "lang"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    reg_id = member_path_id(request, "registration")
    sys_attrs = "sysAttrs" in options_of(request, ("sysAttrs",))
    media = negotiate(request, (JSON, LD_JSON))  # 406 before anything is looked up
    await broker.tenants.schema(tenant, create=False)
    row = await store.get(broker.pool, tenant, reg_id)
    if row is None:
        raise not_found(f"registration {reg_id} does not exist")
    ctx = await link_context(request)
    return await context_response(request, _render(row, ctx, sys_attrs), media, ctx)


def _filter_of(request: Request, ctx: Context) -> tuple[RegistrationFilter, GeoQuery | None]:
    """The query's filters (5.10.2.4); at least one is needed (BadRequestData otherwise)."""
    params = request.query_params
    ids = list_param(request, "id")
    type_expr = params.get("type")
    attrs = list_param(request, "attrs")
    found = RegistrationFilter(
        types=parse_types(type_expr) if type_expr else None, type_iri=ctx.expand_term,
        ids=[values.check_uri(i, "id") for i in ids] if ids else None,
        id_pattern=values.check_regex(params["idPattern"], "idPattern") if params.get("idPattern") else None,
        attrs=[ctx.expand_term(a) for a in attrs] if attrs else None)
    q, csf = parse_q_param(params.get("q")), parse_q_param(params.get("csf"))
    found.q = q_matcher(q, ctx) if q is not None else None
    found.csf = q_matcher(csf, ctx) if csf is not None else None
    scope = params.get("scopeQ")
    found.scope = scope_matcher(parse_scope_q(scope)) if scope else None
    temporal = parse_temporal(params.get("timerel"), params.get("timeAt"), params.get("endTimeAt"),
                              params.get("timeproperty"), None)
    found.temporal = temporal if temporal.timerel is not None else None
    geo = geo_of(request)
    if geo is not None and geo.geoproperty not in GEO_MEMBERS:
        raise bad_request(f"geoproperty of a registration query must be one of {', '.join(GEO_MEMBERS)}")
    if not (ids or type_expr or found.id_pattern or attrs or q or csf or scope or found.temporal or geo):
        raise bad_request("a registration query needs at least one of id, idPattern, type, attrs, q, csf, "
                          "scopeQ, a geo-query or a temporal query")
    return found, geo


async def query_registrations(request: Request) -> Response:
    check_params(request, QUERY_PARAMS)
    broker = broker_of(request)
    tenant = tenant_of(request)
    limit = int_param(request, "limit", broker.settings.default_limit, broker.settings.max_limit)
    offset = int_param(request, "offset", 0)
    sys_attrs = "sysAttrs" in options_of(request, ("sysAttrs",))
    media = negotiate(request, (JSON, LD_JSON))
    ctx = await link_context(request)
    wanted, geo = _filter_of(request, ctx)
    await broker.tenants.schema(tenant, create=False)
    rows = await store.candidates(broker.pool, tenant, geo, geo.geoproperty if geo else "location",
                                  postgis=broker.postgis)
    stamp = now()[1]
    matched = [r for r in rows if not _expired(r["body"], stamp)
               and wanted.matches(r["body"], ctx, iso(r["created_at"]), iso(r["modified_at"]))]
    page = matched[offset:offset + limit]
    headers = page_headers(request, limit, offset, len(page), len(matched), count=bool_param(request, "count"),
                           media=LD_JSON, request_order=True)
    return await context_response(request, [_render(r, ctx, sys_attrs) for r in page], media, ctx, headers)


def _expired(reg: dict[str, Any], stamp: Any) -> bool:
    """5.2.9: a registration past its expiresAt no longer takes part in anything."""
    return "expiresAt" in reg and values.to_datetime(values.parse_datetime(reg["expiresAt"], "expiresAt")) <= stamp


async def update_registration(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    tenant = tenant_of(request)
    reg_id = member_path_id(request, "registration")
    body, _, ctx = await read_json_in_context(request, tenant, allowed=(JSON, LD_JSON, MERGE_PATCH))
    for _ in range(PATCH_ATTEMPTS):
        row = await store.get(broker.pool, tenant, reg_id)
        if row is None:
            raise not_found(f"registration {reg_id} does not exist")
        stamp, stamp_dt = now()
        reg = apply_patch(row["body"], body, ctx, stamp)
        if await store.replace(broker.pool, tenant, reg_id, reg, stamp_dt, row["modified_at"]):
            return no_content()
    raise NgsiError("Conflict", f"registration {reg_id} changed concurrently; try again", status=409)


async def delete_registration(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    reg_id = member_path_id(request, "registration")
    if not await store.delete(broker.pool, tenant_of(request), reg_id):
        raise not_found(f"registration {reg_id} does not exist")
    return no_content()


routes = [
    resource("/csourceRegistrations", GET=query_registrations, POST=create_registration),
    resource("/csourceRegistrations/{id:path}", GET=retrieve_registration, PATCH=update_registration,
             DELETE=delete_registration),
]

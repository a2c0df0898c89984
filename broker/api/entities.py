"""Entity resources: ``/entities`` and ``/entities/{entityId}`` (create, retrieve, replace, merge, delete).

Each handler: check its declared parameters, parse the body with the request's @context, run the model
rule through the store, render.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, not_found
from ..model import operations, values
from ..model.entity import ENTITY_MEMBERS, attribute_iri, parse_entity
from ..services import broker_of
from .http import (GEO_JSON, JSON, LD_JSON, MERGE_PATCH, body_context, negotiate, no_content, read_json,
                   read_json_in_context, tenant_of)
from .params import (
    REPRESENTATION_OPTIONS,
    body_object,
    bool_param,
    check_params,
    entity_path_id,
    gated,
    geometry_property,
    join_of,
    link_context,
    now,
    options_of,
    type_selector,
    view_of,
)
from .render import entity_response

RETRIEVE_PARAMS = ("attrs", "options", "format", "lang", "geometryProperty", "type", "local", "pick", "omit",
                   "join", "joinLevel", "containedBy", "datasetId")


async def create_entity(request: Request) -> Response:
    check_params(request, ("local",))
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes)
    if body == {} or body == []:
        raise NgsiError("InvalidRequest", "the request body holds no entity")
    ctx = await broker.contexts.resolve(body_context(body, ctype, request), tenant)
    entity = parse_entity(body, ctx)
    stamp, stamp_dt = now()
    await broker.entities.create(tenant, entity, stamp, stamp_dt)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{quote(entity.id, safe=':')}"})


async def retrieve_entity(request: Request) -> Response:
    """5.7.1 / 6.5.3.1: the entity in the representation the parameters ask for; ResourceNotFound when it
    does not exist, lacks the ``type`` asked for, or keeps no member after attrs / pick / omit."""
    check_params(request, RETRIEVE_PARAMS)
    broker = broker_of(request)
    tenant = tenant_of(request)
    entity_id = entity_path_id(request)
    media = negotiate(request, (JSON, LD_JSON, GEO_JSON))
    ctx = await link_context(request)
    view = view_of(request, ctx, options_of(request, REPRESENTATION_OPTIONS))
    join = join_of(request, view)
    geometry = geometry_property(ctx, request.query_params.get("geometryProperty"), media)
    if request.query_params.get("local") is not None:
        bool_param(request, "local")  # no registrations: every retrieval is local
    row = await broker.entities.get(tenant, entity_id)
    matches = type_selector(request, ctx)  # 5.7.1.4
    if row is None or (matches is not None and not matches(row["types"])):
        raise not_found(f"entity {entity_id} does not exist")
    if view.attrs is not None and not any(a in row["attrs"] for a in view.attrs):
        raise not_found(f"entity {entity_id} has none of the requested attributes")
    return await entity_response(request, row, ctx, view, media, join, geometry)


async def replace_entity(request: Request) -> Response:
    check_params(request, ("local", "type"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    entity_id = entity_path_id(request)
    body, _, ctx = await read_json_in_context(request, tenant)
    entity = parse_entity(body, ctx, require_id=False)
    operations.check_same_id(entity, entity_id)
    stamp, stamp_dt = now()
    await broker.entities.modify(tenant, entity_id, "replace",
                                 gated(request, ctx, lambda row: operations.replace(row, entity, stamp)),
                                 stamp, stamp_dt)
    return no_content()


async def merge_entity(request: Request) -> Response:
    check_params(request, ("local", "type", "options", "format", "observedAt", "lang"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    entity_id = entity_path_id(request)
    body, _, ctx = await read_json_in_context(request, tenant, allowed=(JSON, LD_JSON, MERGE_PATCH))
    options = options_of(request, ("keyValues", "simplified", "concise", "normalized"))
    observed_at = request.query_params.get("observedAt")
    if observed_at is not None:
        observed_at = values.parse_datetime(observed_at, "observedAt")
    stamp, stamp_dt = now()
    if options & {"keyValues", "simplified"}:  # values only: they go into the stored attributes' value members
        members = {k: v for k, v in body_object(body, "the entity fragment").items() if k in ENTITY_MEMBERS}
        head = parse_entity(members, ctx, require_id=False, require_type=False, allow_null=True, merge=True)
        operations.check_same_id(head, entity_id)
        simple = {attribute_iri(k, ctx): v for k, v in body.items() if k not in ENTITY_MEMBERS}
        lang = request.query_params.get("lang")

        def compute(row):  # type: ignore[no-untyped-def]
            write = operations.merge_simplified(row, simple, ctx, stamp, observed_at=observed_at, lang=lang)
            write.types = write.types + [t for t in head.types if t not in write.types]
            if head.scopes is not None:
                write.scopes = head.scopes or None
            return write
        await broker.entities.modify(tenant, entity_id, "merge", gated(request, ctx, compute), stamp, stamp_dt)
        return no_content()
    patch = parse_entity(body, ctx, require_id=False, require_type=False, allow_null=True, merge=True)
    operations.check_same_id(patch, entity_id)
    if observed_at is not None:  # "used as the observedAt of the updated attributes" unless they carry one
        for insts in patch.attrs.values():
            for inst in insts:
                inst.setdefault("observedAt", observed_at)
    await broker.entities.modify(tenant, entity_id, "merge",
                                 gated(request, ctx, lambda row: operations.merge(row, patch, stamp)),
                                 stamp, stamp_dt)
    return no_content()


async def delete_entity(request: Request) -> Response:
    check_params(request, ("local", "type"))
    broker = broker_of(request)
    stamp, _ = now()
    # the Link header's context is resolved only for a selector: a plain delete never needed it
    matches = type_selector(request, await link_context(request)) if request.query_params.get("type") else None
    await broker.entities.delete(tenant_of(request), entity_path_id(request), stamp, matches)
    return no_content()

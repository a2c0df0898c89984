"""Attribute resources: ``/entities/{entityId}/attrs`` and ``/entities/{entityId}/attrs/{attrId}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..services import broker_of
from ..errors import NgsiError
from ..jsonld import Context
from ..model import operations
from ..model.entity import attribute_iri, parse_entity, parse_fragment, parse_instance
from ..model.operations import Write
from .http import JSON, LD_JSON, MERGE_PATCH, json_response, no_content, read_json_in_context, tenant_of
from .params import bool_param, check_params, entity_path_id, gated, link_context, now, options_of


def update_result(write: Write, ctx: Context) -> Response:
    """204 when every attribute was written, 207 with an UpdateResult otherwise."""
    if not write.not_updated:
        return no_content()
    body = {"updated": [ctx.compact_attr(i) for i in write.updated],
            "notUpdated": [{"attributeName": ctx.compact_attr(i), "reason": reason}
                           for i, reason in write.not_updated]}
    return json_response(body, status=207)


async def _body(request: Request, *, patch: bool = False) -> tuple[Any, Context, str]:
    tenant = tenant_of(request)
    body, _, ctx = await read_json_in_context(request, tenant, allowed=(JSON, LD_JSON, MERGE_PATCH) if patch
                                              else (JSON, LD_JSON))
    return body, ctx, tenant


async def append_attributes(request: Request) -> Response:
    check_params(request, ("options", "type", "local"))
    overwrite = "noOverwrite" not in options_of(request, ("noOverwrite",))
    entity_id = entity_path_id(request)
    body, ctx, tenant = await _body(request)
    fragment = parse_entity(body, ctx, require_id=False, require_type=False)
    operations.check_same_id(fragment, entity_id)
    stamp, stamp_dt = now()
    write = await broker_of(request).entities.modify(
        tenant, entity_id, "append",
        gated(request, ctx, lambda row: operations.append(row, fragment, stamp, overwrite=overwrite)), stamp, stamp_dt)
    return update_result(write, ctx)


async def update_attributes(request: Request) -> Response:
    check_params(request, ("options", "type", "local"))
    entity_id = entity_path_id(request)
    body, ctx, tenant = await _body(request, patch=True)
    fragment = parse_entity(body, ctx, require_id=False, require_type=False, allow_null=True)
    operations.check_same_id(fragment, entity_id)
    stamp, stamp_dt = now()
    write = await broker_of(request).entities.modify(
        tenant, entity_id, "update", gated(request, ctx, lambda row: operations.update(row, fragment, stamp)),
        stamp, stamp_dt)
    return update_result(write, ctx)


def _attribute_body(body: Any, name: str, iri: str, ctx: Context) -> dict[str, Any]:
    if isinstance(body, dict) and "@context" in body:
        body = {k: v for k, v in body.items() if k != "@context"}
    if body is None or body == {}:
        raise NgsiError("InvalidRequest", "the attribute is empty")
    return parse_instance(f"attribute '{name}'", iri, body, ctx)


async def partial_update(request: Request) -> Response:
    check_params(request, ("type", "local"))
    entity_id = entity_path_id(request)
    name = request.path_params["attr_id"]
    body, ctx, tenant = await _body(request, patch=True)
    iri = attribute_iri(name, ctx)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    if body == {}:
        raise NgsiError("InvalidRequest", "the attribute fragment is empty")
    patch = parse_fragment(f"attribute '{name}'", iri, body, ctx)
    stamp, stamp_dt = now()
    store = broker_of(request).entities
    # the one-statement path reads nothing: not with a type selector to check first
    if operations.is_plain_property_patch(patch) and not request.query_params.get("type") and \
            await store.patch_property(tenant, entity_id, iri, patch, stamp, stamp_dt):
        return no_content()
    await store.modify(tenant, entity_id, "partialUpdate",
                       gated(request, ctx, lambda row: operations.partial_update(row, iri, patch, stamp)),
                       stamp, stamp_dt)
    return no_content()


async def replace_attribute(request: Request) -> Response:
    check_params(request, ("type", "local"))
    entity_id = entity_path_id(request)
    name = request.path_params["attr_id"]
    body, ctx, tenant = await _body(request)
    iri = attribute_iri(name, ctx)
    inst = _attribute_body(body, name, iri, ctx)
    stamp, stamp_dt = now()
    await broker_of(request).entities.modify(
        tenant, entity_id, "replaceAttr",
        gated(request, ctx, lambda row: operations.replace_attribute(row, iri, inst, stamp)), stamp, stamp_dt)
    return no_content()


async def delete_attribute(request: Request) -> Response:
    check_params(request, ("datasetId", "deleteAll", "type", "local"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    entity_id = entity_path_id(request)
    ctx = await link_context(request)
    name = request.path_params["attr_id"]
    stamp, stamp_dt = now()
    if name == "scope":  # scope is an entity member, deletable through this resource (4.18)
        await broker.entities.modify(tenant, entity_id, "deleteAttr", gated(request, ctx, operations.delete_scope),
                                     stamp, stamp_dt)
        return no_content()
    iri = attribute_iri(name, ctx)
    dataset_id = request.query_params.get("datasetId")
    delete_all = bool_param(request, "deleteAll")
    await broker.entities.modify(
        tenant, entity_id, "deleteAttr",
        gated(request, ctx, lambda row: operations.delete_attribute(row, iri, dataset_id, delete_all)),
        stamp, stamp_dt)
    return no_content()


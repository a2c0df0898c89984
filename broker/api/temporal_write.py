"""Temporal writes (GS CIM 009 5.6.11 to 5.6.16): ``POST /temporal/entities``,
``DELETE /temporal/entities/{id}``, ``POST /temporal/entities/{id}/attrs``,
``DELETE /temporal/entities/{id}/attrs/{attrId}``, ``PATCH`` / ``DELETE …/attrs/{attrId}/{instanceId}``.

Each: parse with the request's @context → ``broker.temporal.write`` → 201 / 204.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, bad_request
from ..model import operations
from ..model.entity import EntityInput, attribute_iri
from ..model.values import check_dataset_id
from ..services import broker_of
from ..temporal import write
from .http import JSON, LD_JSON, body_context, no_content, read_json, tenant_of
from .params import bool_param, check_params, entity_path_id, link_context, now


async def _parsed_body(request: Request) -> tuple[Any, Any, str]:
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes, allowed=(JSON, LD_JSON))
    if body == {} or body == []:
        raise NgsiError("InvalidRequest", "the request body holds no temporal entity")
    ctx = await broker.contexts.resolve(body_context(body, ctype, request), tenant)
    return body, ctx, tenant


async def create_temporal(request: Request) -> Response:
    """5.6.11: create a temporal entity (201), or add the instances to an existing one (204)."""
    check_params(request, ("local",))
    broker = broker_of(request)
    body, ctx, tenant = await _parsed_body(request)
    entity, instances = write.parse_temporal_entity(body, ctx)
    latest = write.latest_state(entity, instances)
    stamp, stamp_dt = now()
    try:
        await broker.entities.create(tenant, latest, stamp, stamp_dt, history=write.rows_of(entity.id, instances))
        created = True
    except NgsiError as exc:
        if exc.error_type != "AlreadyExists":
            raise
        await _append(request, tenant, latest, instances, stamp, stamp_dt)
        created = False
    if created:
        return Response(status_code=201,
                        headers={"Location": f"/ngsi-ld/v1/temporal/entities/{quote(entity.id, safe=':')}"})
    return no_content()


async def missing_attribute(request: Request) -> Response:
    """``…/attrs//{instanceId}``: the attribute name is empty (not an entity id ending in ``/attrs/``)."""
    raise bad_request("the attribute name is missing from the URL")


async def append_temporal_attrs(request: Request) -> Response:
    """5.6.12: add attribute instances to a temporal entity."""
    check_params(request, ("local",))
    entity_id = entity_path_id(request)
    body, ctx, tenant = await _parsed_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object of attributes")
    if body.get("id", entity_id) != entity_id:
        raise bad_request("the body's id differs from the entity id in the URL")
    entity, instances = write.parse_temporal_entity({**body, "id": entity_id}, ctx, require_type=False)
    stamp, stamp_dt = now()
    await _append(request, tenant, write.latest_state(entity, instances), instances, stamp, stamp_dt)
    return no_content()


async def _append(request: Request, tenant: str, latest: EntityInput, instances: list[tuple[str, Any]],
                  stamp: str, stamp_dt: datetime) -> None:
    """The latest instances appended to the entity, all the instances recorded in its history."""
    await broker_of(request).entities.modify(
        tenant, latest.id, "append", lambda row: operations.append(row, latest, stamp), stamp, stamp_dt,
        history=write.rows_of(latest.id, instances))


async def delete_temporal(request: Request) -> Response:
    check_params(request, ("local",))
    broker = broker_of(request)
    entity_id = entity_path_id(request)
    await link_context(request)
    tenant = tenant_of(request)
    await broker.tenants.schema(tenant, create=False)  # NonexistentTenant first
    if not await broker.entities.delete_with_history(tenant, entity_id, now()[0]):
        raise NgsiError("ResourceNotFound", f"entity {entity_id} has no temporal evolution", status=404)
    return no_content()


async def delete_temporal_attr(request: Request) -> Response:
    check_params(request, ("datasetId", "deleteAll", "local"))
    broker = broker_of(request)
    entity_id = entity_path_id(request)
    ctx = await link_context(request)
    iri = attribute_iri(request.path_params["attr_id"], ctx)
    raw_dataset = request.query_params.get("datasetId")
    dataset_id = check_dataset_id(raw_dataset, "datasetId") if raw_dataset is not None else None
    schema = await broker.tenants.schema(tenant_of(request), create=False)
    async with broker.pool.acquire() as conn:
        await write.delete_attribute(conn, schema, entity_id, iri, dataset_id, bool_param(request, "deleteAll"))
    return no_content()


async def modify_instance(request: Request) -> Response:
    """5.6.14: the body (an attribute instance fragment) updates the instance's members."""
    check_params(request, ("local",))
    broker = broker_of(request)
    entity_id = entity_path_id(request)
    name = request.path_params["attr_id"]
    body, ctx, tenant = await _parsed_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object holding the attribute")
    fragment = {k: v for k, v in body.items() if k != "@context"}
    if "type" not in fragment and fragment.get("value") is not None:
        fragment["type"] = "Property"
    _, instances = write.parse_temporal_entity({"id": entity_id, name: fragment}, ctx, require_type=False)
    iri, inst = instances[0]
    schema = await broker.tenants.schema(tenant, create=False)
    async with broker.pool.acquire() as conn:
        await write.modify_instance(conn, schema, entity_id, iri, request.path_params["instance_id"], inst, now()[1])
    return no_content()


async def delete_instance(request: Request) -> Response:
    check_params(request, ("local",))
    broker = broker_of(request)
    entity_id = entity_path_id(request)
    ctx = await link_context(request)
    iri = attribute_iri(request.path_params["attr_id"], ctx)
    schema = await broker.tenants.schema(tenant_of(request), create=False)
    async with broker.pool.acquire() as conn:
        await write.delete_instance(conn, schema, entity_id, iri, request.path_params["instance_id"])
    return no_content()

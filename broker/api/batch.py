"""Batch operations (``/entityOperations/{create,upsert,update,merge,delete}``) and purge (DELETE /entities).

A batch is parsed item by item (an invalid item is reported, the others proceed), then written as one
transaction by ``broker.store.batch``. Answers: 201 (with the created ids) / 204 when every item succeeded,
207 with a BatchOperationResult naming each failed id and why otherwise.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..services import broker_of
from ..errors import NgsiError, bad_request, not_found
from ..jsonld import Context
from ..model import operations
from ..model.entity import EntityInput, check_entity_id, parse_entity
from ..store.batch import BatchOutcome, NewState, Rule, apply_write
from .http import LD_JSON, json_response, link_context_url, no_content, read_json, tenant_of
from .params import check_params, now, options_of


def _result(outcome: BatchOutcome, parse_errors: list[tuple[str, NgsiError]], *, created_status: bool,
            all_ok_status: int = 204) -> Response:
    errors = parse_errors + outcome.errors
    if errors:
        body = {"success": outcome.success,
                "errors": [{"entityId": entity_id, "error": exc.problem()} for entity_id, exc in errors]}
        return json_response(body, status=207)
    if created_status and outcome.created:
        return json_response(outcome.created, status=201)
    if all_ok_status == 201:
        return json_response(outcome.created, status=201)
    return no_content()


async def _entities(request: Request, *, allow_null: bool = False, require_type: bool = True, merge: bool = False
                    ) -> tuple[list[tuple[str, EntityInput]], list[tuple[str, NgsiError]], str]:
    """Parse the batch body: (valid entities, per-item errors, tenant)."""
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes)
    if not isinstance(body, list):
        raise bad_request("a batch operation takes a JSON array of entities")
    if not body:
        raise bad_request("the batch is empty")
    if any(item is None for item in body):
        raise bad_request("the batch contains a null entity")
    if len(body) > broker.settings.max_batch_entities:
        raise bad_request(f"at most {broker.settings.max_batch_entities} entities per batch "
                          f"(this one has {len(body)})")
    link = link_context_url(request)
    if ctype == LD_JSON and link is not None:
        raise bad_request("a Link context header is not allowed with application/ld+json")
    contexts: dict[str, Context] = {}
    parsed: list[tuple[str, EntityInput]] = []
    errors: list[tuple[str, NgsiError]] = []
    for item in body:
        raw_id = item.get("id", item.get("@id", "")) if isinstance(item, dict) else ""
        try:
            if ctype == LD_JSON:
                if not isinstance(item, dict) or "@context" not in item:
                    raise bad_request("application/ld+json requires an @context in every entity")
                raw_ctx: Any = item["@context"]
            else:
                if isinstance(item, dict) and "@context" in item:
                    raise bad_request("@context in the body requires Content-Type application/ld+json")
                raw_ctx = link
            key = repr(raw_ctx)
            ctx = contexts.get(key)
            if ctx is None:
                ctx = contexts[key] = await broker.contexts.resolve(raw_ctx, tenant)
            parsed.append((raw_id, parse_entity(item, ctx, allow_null=allow_null, require_type=require_type,
                                                merge=merge)))
        except NgsiError as exc:
            errors.append((raw_id if isinstance(raw_id, str) else str(raw_id), exc))
    return parsed, errors, tenant


async def _run(request: Request, tenant: str, items: list[tuple[str, Rule]], *, create_tenant: bool,
               stamp: tuple[str, Any]) -> BatchOutcome:
    if not items:
        return BatchOutcome()
    return await broker_of(request).batch.run(tenant, items, stamp[0], stamp[1], create_tenant=create_tenant)


def _creation(entity: EntityInput, ts: str, op: str) -> NewState:
    return NewState(entity.types, entity.scopes, operations.new_entity_attrs(entity, ts), None, op)


async def _bulk(request: Request, tenant: str, entities: list[EntityInput], *, replace: bool,
                op: str) -> BatchOutcome:
    if not entities:
        return BatchOutcome()
    stamp, stamp_dt = now()
    return await broker_of(request).batch.bulk(tenant, entities, stamp, stamp_dt, replace=replace, op=op)


async def batch_create(request: Request) -> Response:
    check_params(request, ("local",))
    parsed, errors, tenant = await _entities(request)
    outcome = await _bulk(request, tenant, [e for _, e in parsed], replace=False, op="create")
    return _result(outcome, errors, created_status=True, all_ok_status=201)


async def batch_upsert(request: Request) -> Response:
    check_params(request, ("options", "local"))
    update_mode = "update" in options_of(request, ("update", "replace"))
    parsed, errors, tenant = await _entities(request)
    if not update_mode:  # replace: the stored state does not matter, the bulk path applies
        outcome = await _bulk(request, tenant, [e for _, e in parsed], replace=True, op="upsert")
        return _result(outcome, errors, created_status=True)
    stamp = now()

    def rule(entity: EntityInput) -> Rule:
        def apply(current: dict[str, Any] | None) -> NewState:
            if current is None:
                return _creation(entity, stamp[0], "upsert")
            return apply_write(current, operations.append(current, entity, stamp[0]), "upsert")
        return apply

    outcome = await _run(request, tenant, [(e.id, rule(e)) for _, e in parsed], create_tenant=True, stamp=stamp)
    return _result(outcome, errors, created_status=True)


def _existing(compute: Callable[[dict[str, Any], EntityInput], operations.Write], op: str
              ) -> Callable[[EntityInput], Rule]:
    def rule(entity: EntityInput) -> Rule:
        def apply(current: dict[str, Any] | None) -> NewState:
            if current is None:
                raise not_found(f"entity {entity.id} does not exist")
            return apply_write(current, compute(current, entity), op)
        return apply
    return rule


async def batch_update(request: Request) -> Response:
    check_params(request, ("options", "local"))
    overwrite = "noOverwrite" not in options_of(request, ("noOverwrite",))
    parsed, errors, tenant = await _entities(request, require_type=False)
    stamp = now()
    rule = _existing(lambda cur, e: operations.append(cur, e, stamp[0], overwrite=overwrite), "update")
    outcome = await _run(request, tenant, [(e.id, rule(e)) for _, e in parsed], create_tenant=False, stamp=stamp)
    return _result(outcome, errors, created_status=False)


async def batch_merge(request: Request) -> Response:
    check_params(request, ("local",))
    parsed, errors, tenant = await _entities(request, allow_null=True, require_type=False, merge=True)
    stamp = now()
    rule = _existing(lambda cur, e: operations.merge(cur, e, stamp[0]), "merge")
    outcome = await _run(request, tenant, [(e.id, rule(e)) for _, e in parsed], create_tenant=False, stamp=stamp)
    return _result(outcome, errors, created_status=False)


async def batch_delete(request: Request) -> Response:
    check_params(request, ("local",))
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, _ = await read_json(request, max_bytes=broker.settings.max_body_bytes)
    if not isinstance(body, list) or not body or any(item is None for item in body):
        raise bad_request("batch delete takes a non-empty JSON array of entity ids (no nulls)")
    errors: list[tuple[str, NgsiError]] = []
    items: list[tuple[str, Rule]] = []

    def apply(current: dict[str, Any] | None) -> None:
        if current is None:
            raise not_found("entity does not exist")
        return None

    for raw in body:
        try:
            items.append((check_entity_id(raw), apply))
        except NgsiError as exc:
            errors.append((raw if isinstance(raw, str) else str(raw), exc))
    outcome = await _run(request, tenant, items, create_tenant=False, stamp=now())
    return _result(outcome, errors, created_status=False)


async def purge_entities(request: Request) -> Response:
    from .purge import purge

    return await purge(request)

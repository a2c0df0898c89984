"""The temporal API's own writes (GS CIM 009 5.6.11 to 5.6.16).

Creating a temporal entity or adding instances also writes the entity's current state through the core API
(``latest_state``: the instances observed last), in the same statement as its history rows (the store's
``history`` argument replaces the rows the core write would record): the core API then sees the entity, as
the ETSI suite expects (it deletes attributes of temporal entities through the core API). Deleting a
temporal entity deletes the entity too, in the same transaction (``EntityStore.delete_with_history``);
deleting attributes and instances touches the history only.

A temporal entity body holds, per attribute, any number of instances (several per datasetId: instances at
different times). Each instance is validated as the core API validates an attribute, by parsing it in a
one-attribute entity: one rule for both APIs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg

from ..errors import bad_request, not_found
from ..jsonld import Context
from ..model.entity import ENTITY_MEMBERS, SCOPE_IRI, EntityInput, parse_entity
from ..model.names import check_scope
from ..model.values import parse_datetime, to_datetime
from . import record
from .render import INSTANCE_PREFIX
from .tables import check_schema_name

_NEVER = datetime.min.replace(tzinfo=timezone.utc)


def parse_temporal_entity(body: Any, ctx: Context, *, require_type: bool = True
                          ) -> tuple[EntityInput, list[tuple[str, dict[str, Any]]]]:
    """The entity (id, types, scopes) and its instances as (attribute IRI, instance), in body order."""
    if not isinstance(body, dict):
        raise bad_request("a temporal entity must be a JSON object")
    head = {k: v for k, v in body.items() if k in ENTITY_MEMBERS}
    scope = head.get("scope")
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(scope, dict) or isinstance(scope, list) and any(isinstance(s, dict) for s in scope):
        found.extend((SCOPE_IRI, inst) for inst in _scope_instances(scope))
        head["scope"] = _latest(found)["value"] or None  # the entity's scope is the one observed last
        if head["scope"] is None:
            del head["scope"]
    entity = parse_entity(head, ctx, require_type=require_type)
    for name, value in body.items():
        if name in ENTITY_MEMBERS:
            continue
        items = value if isinstance(value, list) else [value]
        if not items:
            raise bad_request(f"attribute {name!r} has no instance")
        for item in items:
            parsed = parse_entity({"id": entity.id, "type": "T", name: item}, ctx)
            for iri, instances in parsed.attrs.items():
                found.extend((iri, inst) for inst in instances)
    return entity, found


def _scope_instances(raw: Any) -> list[dict[str, Any]]:
    """The scope in its temporal representation (4.5.6): Property instances whose value is a scope or an
    array of them, with no sub-property but observedAt (createdAt / modifiedAt are the broker's)."""
    out = []
    for item in raw if isinstance(raw, list) else [raw]:
        if not isinstance(item, dict) or item.get("type", "Property") != "Property" or "value" not in item:
            raise bad_request("scope: a temporal scope instance is a Property with a value")
        extra = set(item) - {"type", "value", "observedAt", "createdAt", "modifiedAt", "instanceId"}
        if extra:
            raise bad_request(f"scope: an instance may only have observedAt as sub-property, not {sorted(extra)}")
        inst: dict[str, Any] = {"type": "Property", "value": check_scope(item["value"], "scope")}
        if item.get("observedAt") is not None:
            inst["observedAt"] = parse_datetime(item["observedAt"], "scope observedAt")
        out.append(inst)
    return out


def _latest(instances: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The instance observed last; of equals the last given (as ``latest_state`` chooses)."""
    held: dict[str, Any] | None = None
    for _, inst in instances:
        if _later(inst, held):
            held = inst
    assert held is not None
    return held


def rows_of(entity_id: str, instances: list[tuple[str, dict[str, Any]]]) -> record.HistoryRows:
    rows = record.HistoryRows()
    for iri, inst in instances:
        rows.add(entity_id, iri, inst)
    return rows


def latest_state(entity: EntityInput, instances: list[tuple[str, dict[str, Any]]]) -> EntityInput:
    """The entity's current state after a temporal write: per attribute and datasetId, the instance observed
    last (the last one given when none has observedAt). The core API's entity follows its history."""
    chosen: dict[tuple[str, str | None], dict[str, Any]] = {}
    for iri, inst in instances:
        if iri == SCOPE_IRI:  # the scope's instances: the entity's scope already is the latest one
            continue
        key = (iri, inst.get("datasetId"))
        if _later(inst, chosen.get(key)):
            chosen[key] = inst
    attrs: dict[str, list[dict[str, Any]]] = {}
    for (iri, _), inst in chosen.items():
        attrs.setdefault(iri, []).append(dict(inst))
    for insts in attrs.values():
        insts.sort(key=lambda i: "datasetId" in i)  # the default instance first (broker.model)
    return EntityInput(entity.id, entity.types, entity.scopes, attrs)


def _later(inst: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """Does ``inst`` replace ``held`` as the latest? Observed later, or at the same moment and given later
    (instances without observedAt count as observed at the start of time)."""
    return held is None or _observed(inst) >= _observed(held)


def _observed(inst: dict[str, Any]) -> datetime:
    observed = inst.get("observedAt")
    return to_datetime(observed) if observed else _NEVER


async def delete_attribute(conn: asyncpg.Connection, schema: str, entity_id: str, iri: str,
                           dataset_id: str | None, delete_all: bool) -> None:
    """Delete an attribute's history: one datasetId's (the default instance's when None) or all of it."""
    check_schema_name(schema)
    await _require_entity(conn, schema, entity_id)
    condition = "" if delete_all else ("AND dataset_id = $3" if dataset_id is not None else "AND dataset_id IS NULL")
    args: list[Any] = [entity_id, iri] + ([dataset_id] if dataset_id is not None and not delete_all else [])
    status = await conn.execute(f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1 AND attr = $2 "
                                f"{condition}", *args)
    if status.endswith(" 0"):
        raise not_found("the entity has no such attribute (with this datasetId) in its temporal evolution")


def instance_uuid(instance_id: str) -> str:
    """The uuid of an instanceId we issued; any other URI names no instance (ResourceNotFound)."""
    import uuid

    if ":" not in instance_id:
        raise bad_request(f"instanceId {instance_id!r} is not a URI")
    if not instance_id.startswith(INSTANCE_PREFIX):
        raise not_found(f"no attribute instance {instance_id}")
    try:
        return str(uuid.UUID(instance_id[len(INSTANCE_PREFIX):]))
    except ValueError:
        raise not_found(f"no attribute instance {instance_id}") from None


async def delete_instance(conn: asyncpg.Connection, schema: str, entity_id: str, iri: str, instance_id: str) -> None:
    check_schema_name(schema)
    await _require_entity(conn, schema, entity_id)
    status = await conn.execute(f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1 AND attr = $2 "
                                f"AND instance_id = $3", entity_id, iri, instance_uuid(instance_id))
    if status.endswith(" 0"):
        raise not_found(f"attribute has no instance {instance_id}")


async def modify_instance(conn: asyncpg.Connection, schema: str, entity_id: str, iri: str, instance_id: str,
                          inst: dict[str, Any], now: datetime) -> None:
    """Partially update an instance (5.6.14): the members given replace its own; it keeps its instanceId
    and its time of recording."""
    check_schema_name(schema)
    await _require_entity(conn, schema, entity_id)
    rows = rows_of(entity_id, [(iri, inst)])
    status = await conn.execute(
        f"UPDATE {schema}.attr_instances SET inst = inst || $4, "
        f"num = CASE WHEN $4::jsonb ? 'value' THEN $5 ELSE num END, dataset_id = coalesce($6, dataset_id), "
        f"observed_at = coalesce($7::text::timestamptz, observed_at), at = coalesce($7::text::timestamptz, at), "
        f"modified_at = $8 "
        f"WHERE entity_id = $1 AND attr = $2 AND instance_id = $3",
        entity_id, iri, instance_uuid(instance_id), rows.inst[0].encode(), rows.num[0], rows.dataset[0], rows.observed[0],
        now)
    if status.endswith(" 0"):
        raise not_found(f"attribute has no instance {instance_id}")


async def _require_entity(conn: asyncpg.Connection, schema: str, entity_id: str) -> None:
    if await conn.fetchval(f"SELECT 1 FROM {schema}.temporal_entities WHERE id = $1", entity_id) is None:
        raise not_found(f"entity {entity_id} has no temporal evolution")

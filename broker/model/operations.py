"""The NGSI-LD write rules as pure functions: current entity state + validated input -> ``Write``.

Nothing here touches the database: ``broker.store.entities`` reads the current state, calls one of these,
and stores the ``Write`` only if the entity did not change meanwhile (optimistic concurrency), so every rule
is easy to test and is applied exactly once per stored change.

Instances are matched by ``datasetId`` (absent = the default instance). An instance that replaces another
keeps its ``createdAt``; every written instance gets ``modifiedAt = now`` (``stamp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import bad_request, not_found
from ..jsonld import Context
from . import geojson
from .entity import NULL, VALUE_MEMBER, EntityInput, parse_instance, value_member

_VALUE_MEMBERS = tuple(sorted(set(VALUE_MEMBER.values())))

Instances = list[dict[str, Any]]


@dataclass
class Write:
    """What an operation changes in one entity, and the change-log entry that records it."""

    types: list[str]
    scopes: list[str] | None
    set_attrs: dict[str, Instances] = field(default_factory=dict)  # attribute -> its new instance list
    removed: list[str] = field(default_factory=list)  # attributes deleted entirely
    updated: list[str] = field(default_factory=list)  # attribute IRIs reported as updated
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (attribute IRI, reason)

    @property
    def changed(self) -> bool:
        return bool(self.set_attrs or self.removed)


def iso(moment: datetime | str) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` of a UTC datetime (the database session's time zone), formatted without
    ``strftime``, which costs three times as much (a batch update formats every entity's creation time)."""
    if isinstance(moment, str):
        return moment
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (moment.year, moment.month, moment.day, moment.hour,
                                                   moment.minute, moment.second, moment.microsecond)


def instance_times(inst: dict[str, Any], entity_created: str) -> tuple[str, str]:
    """An instance's (createdAt, modifiedAt): stored only where they differ from what they default to (the
    entity's creation, then modifiedAt; see broker.model)."""
    modified = inst.get("modifiedAt") or entity_created
    return inst.get("createdAt") or modified, modified


def stamp(inst: dict[str, Any], previous: dict[str, Any] | None, now: str, entity_created: str) -> dict[str, Any]:
    """Mark ``inst`` written ``now``, replacing ``previous`` (None: a new attribute instance)."""
    created = instance_times(previous, entity_created)[0] if previous else now
    if created != now:
        inst["createdAt"] = created
    else:
        inst.pop("createdAt", None)
    inst["modifiedAt"] = now
    return inst


def _index(instances: Instances, dataset_id: str | None) -> int:
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return -1


def _put(instances: Instances, inst: dict[str, Any]) -> None:
    """Insert or replace by datasetId, keeping the default instance first."""
    i = _index(instances, inst.get("datasetId"))
    if i >= 0:
        instances[i] = inst
    elif "datasetId" not in inst:
        instances.insert(0, inst)
    else:
        instances.append(inst)


def new_entity_attrs(entity: EntityInput, now: str) -> dict[str, Instances]:
    """A new entity's attributes: their timestamps are the entity's own creation time, so none is stored."""
    return entity.attrs


def _merge_types(current: list[str], extra: list[str]) -> list[str]:
    return current + [t for t in extra if t not in current]


def append(current: Any, entity: EntityInput, now: str, *, overwrite: bool = True) -> Write:
    """Append Entity Attributes (POST .../attrs), also batch update and upsert with options=update."""
    attrs = current["attrs"]
    born = iso(current["created_at"])
    scopes = current["scopes"]
    if entity.scopes is not None:  # scope: replaced, or with noOverwrite added to (4.18)
        scopes = entity.scopes if overwrite or not scopes else scopes + [s for s in entity.scopes if s not in scopes]
    write = Write(_merge_types(list(current["types"]), entity.types), scopes)
    for iri, insts in entity.attrs.items():
        existing = list(attrs.get(iri, []))
        touched = False
        for inst in insts:
            i = _index(existing, inst.get("datasetId"))
            if i >= 0 and not overwrite:
                write.not_updated.append((iri, "the attribute exists and noOverwrite was requested"))
                continue
            _put(existing, stamp(inst, existing[i] if i >= 0 else None, now, born))
            touched = True
        if touched:
            write.set_attrs[iri] = existing
            write.updated.append(iri)
    return write


def update(current: Any, entity: EntityInput, now: str) -> Write:
    """Update Entity Attributes (PATCH .../attrs): instances are replaced, or added when they do not exist
    (as the ETSI suite expects, 011_01_03); an NGSI-LD Null (the attribute, or its value member) deletes the
    matching instance; types are added; a scope replaces an existing scope only (otherwise not updated)."""
    attrs = current["attrs"]
    born = iso(current["created_at"])
    write = Write(_merge_types(list(current["types"]), entity.types), current["scopes"])
    if entity.scopes is not None:
        if current["scopes"]:
            write.scopes = entity.scopes
        else:
            write.not_updated.append(("scope", "the entity has no scope to update"))
    for iri, insts in entity.attrs.items():
        existing = list(attrs.get(iri, []))
        if not insts:  # "attr": "urn:ngsi-ld:null"
            if existing:
                write.removed.append(iri)
                write.updated.append(iri)
            else:
                write.not_updated.append((iri, "the attribute does not exist"))
            continue
        for inst in insts:
            i = _index(existing, inst.get("datasetId"))
            if _is_deletion(inst):
                if i < 0:
                    write.not_updated.append((iri, "the attribute (with this datasetId) does not exist"))
                    continue
                del existing[i]
            else:
                _put(existing, stamp(_drop_null_markers(inst), existing[i] if i >= 0 else None, now, born))
        if existing:
            write.set_attrs[iri] = existing
        elif iri in attrs:
            write.removed.append(iri)
        if not any(name == iri for name, _ in write.not_updated):
            write.updated.append(iri)
    return write


def delete_scope(current: Any) -> Write:
    """DELETE .../attrs/scope: the entity's scopes go."""
    if not current["scopes"]:
        raise not_found("the entity has no scope")
    return Write(list(current["types"]), None)


def merge_instance(old: dict[str, Any], patch: dict[str, Any], now: str, born: str, *,
                   deep: bool = False) -> dict[str, Any]:
    """Merge-patch of one instance: members in the patch replace, null sub-attributes are deleted; ``deep``
    (Merge Entity, 5.5.12): a Property's JSON object value is merged into the stored one (``merge_value``)."""
    merged = dict(old)
    if patch.get("type") and patch["type"] != old["type"]:
        merged = {k: v for k, v in old.items() if ":" in k or k in ("datasetId", "createdAt", "modifiedAt")}
    for key, value in patch.items():
        if value is None or (":" in key and isinstance(value, dict) and _is_deletion(value)):
            merged.pop(key, None)
        elif ":" in key and isinstance(old.get(key), dict) and isinstance(value, dict) and "type" in value:
            merged[key] = (merge_instance(old[key], value, now, born, deep=deep)
                           if value["type"] == old[key]["type"] else _without_nested_nulls(value))
        elif key == "value" and deep and merged.get("type") == "Property":
            merged[key] = merge_value(merged.get(key), value)
        else:
            merged[key] = value
    return stamp(merged, old, now, born)


def merge_value(old: Any, patch: Any) -> Any:
    """RFC 7396 merge of a Property value (5.5.12): a JSON object in the patch goes into the stored object
    key by key, the NGSI-LD Null removing a key, keys the patch does not name staying; anything else (a scalar,
    an array, a value object such as a typed DateTime) replaces. A patch object merged into nothing drops its
    Nulls, so none is ever stored."""
    if type(patch) is not dict or _atomic(patch):
        return patch
    out = dict(old) if type(old) is dict and not _atomic(old) else {}
    for key, value in patch.items():
        if _null_value(value):
            out.pop(key, None)
        else:
            out[key] = merge_value(out.get(key), value)
    return out


def _atomic(value: dict[str, Any]) -> bool:
    """A JSON-LD value object (``@value`` / ``@id`` / ``@list``): one value, not a map of keys."""
    return "@value" in value or "@id" in value or "@list" in value


def _null_value(value: Any) -> bool:
    """The NGSI-LD Null inside a value, plain or as the value object its key's coercion made of it."""
    return value == NULL or (type(value) is dict and len(value) == 1
                             and (value.get("@value") == NULL or value.get("@id") == NULL))


def _without_nested_nulls(inst: dict[str, Any]) -> dict[str, Any]:
    """A new instance of a merge: the Nulls inside its Property value removed (merged into nothing)."""
    if inst.get("type") == "Property" and type(inst.get("value")) is dict:
        return {**inst, "value": merge_value(None, inst["value"])}
    return inst


def partial_update(current: Any, iri: str, patch: dict[str, Any], now: str) -> Write:
    """Partial Attribute Update (PATCH .../attrs/{attrId}): the instance must exist."""
    existing = list(current["attrs"].get(iri, []))
    i = _index(existing, patch.get("datasetId"))
    if i < 0:
        raise not_found("the entity has no such attribute (with this datasetId)")
    write = Write(list(current["types"]), current["scopes"], updated=[iri])
    if _is_deletion(patch):  # an NGSI-LD Null value deletes the instance (5.6.4.4)
        del existing[i]
    else:
        stored_type = existing[i]["type"]
        if patch.get("type") and patch["type"] != stored_type:
            raise bad_request(f"the attribute is a {stored_type}; a partial update cannot make it a "
                              f"{patch['type']}")
        for member in _VALUE_MEMBERS:
            if member in patch and member != VALUE_MEMBER[stored_type]:
                raise bad_request(f"the attribute is a {stored_type}; it has no '{member}'")
        existing[i] = merge_instance(existing[i], patch, now, iso(current["created_at"]))
    if existing:
        write.set_attrs[iri] = existing
    else:
        write.removed.append(iri)
    return write


# the members of a fragment that the one-statement partial update (``EntityStore.patch_property``) merges
PLAIN_PATCH_MEMBERS = frozenset({"type", "value", "observedAt", "unitCode"})


def is_plain_property_patch(patch: dict[str, Any]) -> bool:
    """A fragment that sets a Property's value (and observedAt / unitCode), the IoT agent's everyday update:
    merged into a stored Property's default instance, ``partial_update`` only adds its members and stamps it,
    which PostgreSQL can do in the write itself (``EntityStore.patch_property``). Sub-attributes, nulls and
    other attribute types take the general path."""
    return ("value" in patch and patch.get("type", "Property") == "Property" and patch["value"] != NULL
            and all(k in PLAIN_PATCH_MEMBERS and v is not None for k, v in patch.items()))


def replace_attribute(current: Any, iri: str, inst: dict[str, Any], now: str) -> Write:
    """Replace Attribute (PUT .../attrs/{attrId}): the instance must exist and is replaced entirely."""
    existing = list(current["attrs"].get(iri, []))
    i = _index(existing, inst.get("datasetId"))
    if i < 0:
        raise not_found("the entity has no such attribute (with this datasetId)")
    existing[i] = stamp(inst, existing[i], now, iso(current["created_at"]))
    return Write(list(current["types"]), current["scopes"], set_attrs={iri: existing}, updated=[iri])


def delete_attribute(current: Any, iri: str, dataset_id: str | None, delete_all: bool) -> Write:
    existing = list(current["attrs"].get(iri, []))
    write = Write(list(current["types"]), current["scopes"])
    if not existing:
        raise not_found("the entity has no such attribute")
    if delete_all:
        write.removed.append(iri)
        return write
    i = _index(existing, dataset_id)
    if i < 0:
        raise not_found("the attribute has no instance with this datasetId" if dataset_id
                        else "the attribute has no default instance")
    del existing[i]
    if existing:
        write.set_attrs[iri] = existing
    else:
        write.removed.append(iri)
    return write


def merge(current: Any, patch: EntityInput, now: str) -> Write:
    """Merge Entity (PATCH /entities/{id}): merge-patch, NGSI-LD Null deletes."""
    attrs = current["attrs"]
    born = iso(current["created_at"])
    scopes = current["scopes"] if patch.scopes is None else (patch.scopes or None)
    write = Write(_merge_types(list(current["types"]), patch.types), scopes)
    for iri, insts in patch.attrs.items():
        existing = list(attrs.get(iri, []))
        if not insts:  # the attribute was set to null
            if existing:
                write.removed.append(iri)
            continue
        for inst in insts:
            i = _index(existing, inst.get("datasetId"))
            if _is_deletion(inst):
                if i >= 0:
                    del existing[i]
                continue
            if i >= 0:
                existing[i] = merge_instance(existing[i], inst, now, born, deep=True)
            else:
                _put(existing, stamp(_without_nested_nulls(_drop_null_markers(inst)), None, now, born))
        if existing:
            write.set_attrs[iri] = existing
        elif iri in attrs:
            write.removed.append(iri)
        write.updated.append(iri)
    return write


def merge_simplified(current: Any, values: dict[str, Any], ctx: Context, now: str, *,
                     observed_at: str | None = None, lang: str | None = None) -> Write:
    """Merge Entity with options=keyValues (5.6.17): each value goes into the value member of the attribute's
    stored type (the default instance); a new attribute becomes a Property (a GeoProperty for a geometry);
    an NGSI-LD Null deletes; ``lang`` targets one language of a LanguageProperty."""
    born = iso(current["created_at"])
    write = Write(list(current["types"]), current["scopes"])
    for iri, raw in values.items():
        where = f"attribute '{ctx.compact_attr(iri)}'"
        existing = list(current["attrs"].get(iri, []))
        i = _index(existing, None)
        if raw is None or raw == NULL:
            if i >= 0:
                del existing[i]
                if existing:
                    write.set_attrs[iri] = existing
                else:
                    write.removed.append(iri)
            continue
        if i < 0:
            kind = "GeoProperty" if geojson.is_geometry(raw) else "Property"
            patch = _without_nested_nulls(parse_instance(where, iri, {"type": kind, "value": raw}, ctx, merge=True))
        else:
            stored = existing[i]["type"]
            member = VALUE_MEMBER[stored]
            if stored == "LanguageProperty" and lang:
                raw = {**existing[i]["languageMap"], lang: raw}
            patch = {member: value_member(where, stored, member, raw, ctx, False, merge=True)}
        if observed_at is not None:
            patch["observedAt"] = observed_at
        if i >= 0:
            existing[i] = merge_instance(existing[i], patch, now, born, deep=True)
        else:
            _put(existing, stamp(patch, None, now, born))
        write.set_attrs[iri] = existing
        write.updated.append(iri)
    return write


def _is_deletion(inst: dict[str, Any]) -> bool:
    return any(inst.get(m) == NULL for m in ("value", "object", "vocab", "json", "languageMap", "valueList",
                                             "objectList"))


def _drop_null_markers(inst: dict[str, Any]) -> dict[str, Any]:
    """A new instance keeps no deletion markers (None sub-attributes) of the patch."""
    if all(v is not None for v in inst.values()):
        return inst
    return {k: v for k, v in inst.items() if v is not None}


def replace(current: Any, entity: EntityInput, now: str) -> Write:
    """Replace Entity (PUT /entities/{id}) and batch upsert (replace): the new attribute set wins."""
    attrs = current["attrs"]
    born = iso(current["created_at"])
    write = Write(entity.types or list(current["types"]), entity.scopes)
    for iri, insts in entity.attrs.items():
        # a replacement: the attributes are new ones (createdAt = now), as in the bulk upsert path
        write.set_attrs[iri] = [stamp(inst, None, now, born) for inst in insts]
        write.updated.append(iri)
    write.removed = [iri for iri in attrs if iri not in entity.attrs]
    return write


def check_same_id(entity: EntityInput, path_id: str) -> None:
    if entity.id and entity.id != path_id:
        raise bad_request(f"the id in the body ({entity.id}) differs from the id in the URL ({path_id})")

"""Notification content (GS CIM 009 5.3.1 Notification, 5.8.6): the entity as the change left it, rendered
as the subscription asks, and the HTTP body and headers that carry it.

The entity: its current row with the attributes the change wrote taken from the change itself, so each
notification shows the values of the write that caused it even when later writes have already landed.
What the change deleted appears with the NGSI-LD Null as its value (an attribute, or the instances of a
deleted datasetId); a deleted entity is its id, type, ``deletedAt`` and its attributes as Nulls.
``showChanges`` adds the previous value of every updated or deleted instance (``previousValue``,
``previousObject``, ``previousLanguageMap``, ``previousJson``, ``previousVocab``, ...).

Notification ids are a digest of (tenant, subscription, change seq, entity): a notification delivered
again after a restart carries the same id, so receivers can drop the duplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ..api.http import GEO_JSON, JSON, LD_JSON, link_header
from ..model.render import Inline, render_entity
from .rules import Event, Rule

NULL = "urn:ngsi-ld:null"
# the value member of each attribute type, and its showChanges counterpart
VALUE_MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
                "LanguageProperty": "languageMap", "VocabProperty": "vocab", "JsonProperty": "json",
                "ListProperty": "valueList", "ListRelationship": "objectList"}
PREVIOUS = {"value": "previousValue", "object": "previousObject", "languageMap": "previousLanguageMap",
            "vocab": "previousVocab", "json": "previousJson", "valueList": "previousValueList",
            "objectList": "previousObjectList"}


def notification_id(tenant: str, sub_id: str, seq: int, entity_id: str) -> str:
    """A UUID-shaped digest of what the notification is for (blake2b: a third of uuid5's cost)."""
    h = hashlib.blake2b("\x1f".join((tenant, sub_id, str(seq), entity_id)).encode(), digest_size=16).hexdigest()
    return f"urn:ngsi-ld:Notification:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _null_instance(inst: dict[str, Any], deleted_at: str) -> dict[str, Any]:
    attr_type = inst.get("type", "Property")
    member = VALUE_MEMBER.get(attr_type, "value")
    out: dict[str, Any] = {"type": attr_type, member: {"@none": NULL} if member == "languageMap" else NULL,
                           "deletedAt": deleted_at}
    if "datasetId" in inst:
        out["datasetId"] = inst["datasetId"]
    return out


def _key(inst: dict[str, Any]) -> Any:
    return inst.get("datasetId")


def state_attrs(event: Event, current: dict[str, Any] | None) -> dict[str, Any]:
    """The entity's attributes as the change left them (internal form, without deletion markers)."""
    if event.deleted:
        return dict(event.entry.get("old") or {})
    attrs = dict(current or {})
    attrs.update(event.entry.get("new") or {})
    for iri in event.entry.get("removed") or ():
        attrs.pop(iri, None)
    return attrs


def shown_attrs(event: Event, attrs: dict[str, Any], show_changes: bool) -> dict[str, Any]:
    """``attrs`` with the deletions marked by Nulls and, with ``show_changes``, previous values."""
    old = event.entry.get("old") or {}
    out = {} if event.deleted else dict(attrs)
    removed = set(event.entry.get("removed") or ())
    for iri, before in old.items():
        if event.deleted or iri in removed:  # the whole attribute: one Null (046_22_08)
            first = {k: v for k, v in before[0].items() if k != "datasetId"} if before else {}
            out[iri] = [_previous(_null_instance(first, event.at), first, show_changes)]
            continue
        if iri not in event.attrs_updated:
            continue
        now = {_key(i): i for i in out.get(iri, ())}
        merged = [_previous(now[_key(i)], i, show_changes) if _key(i) in now else _null_instance(i, event.at)
                  for i in before]
        known = {_key(i) for i in before}
        merged.extend(i for k, i in now.items() if k not in known)
        out[iri] = merged
    return out


def _previous(inst: dict[str, Any], before: dict[str, Any], show: bool) -> dict[str, Any]:
    if not show:
        return inst
    member = VALUE_MEMBER.get(before.get("type", "Property"), "value")
    if member not in before:
        return inst
    return {**inst, PREVIOUS[member]: before[member]}


def data_row(rule: Rule, event: Event, current: Any, attrs: dict[str, Any], reason: str) -> dict[str, Any]:
    """The entity of a notification as a row (the internal form ``render_entity`` takes)."""
    show = showing_changes(rule, event)
    # entityDeleted: id, type and deletedAt (046_21), and with showChanges the previous values (046_37)
    shown = {} if reason == "entityDeleted" and not show else shown_attrs(event, attrs, show)
    if event.deleted and rule.watched is not None:
        shown = {k: v for k, v in shown.items() if k in rule.watched}
    return {"id": event.entity_id, "types": event.types,
            "scopes": current["scopes"] if current is not None else None,
            "created_at": current["created_at"] if current is not None else event.at,
            "modified_at": current["modified_at"] if current is not None else event.at,
            "attrs": shown}


def showing_changes(rule: Rule, event: Event) -> bool:
    return bool(rule.notification.get("showChanges")) and not event.created


def render_data(rule: Rule, event: Event, row: dict[str, Any], inline: Inline | None = None) -> dict[str, Any]:
    """The notified entity rendered with the subscription's view and @context."""
    ctx = rule.render_ctx
    out = render_entity(row, ctx, rule.view, inline)
    if showing_changes(rule, event):
        _compact_previous_vocab(out, ctx)
    if event.deleted:
        out["deletedAt"] = event.at
    if not rule.view.sys_attrs:
        _drop_deleted_at(out)
    return out


def _compact_previous_vocab(out: dict[str, Any], ctx: Any) -> None:
    for value in out.values():
        for inst in value if isinstance(value, list) else [value]:
            if isinstance(inst, dict) and isinstance(inst.get("previousVocab"), str):
                inst["previousVocab"] = ctx.compact_vocab(inst["previousVocab"])


def _drop_deleted_at(out: dict[str, Any]) -> None:
    """An attribute's deletedAt is a system attribute: shown with sysAttrs only."""
    for value in out.values():
        for inst in value if isinstance(value, list) else [value]:
            if isinstance(inst, dict):
                inst.pop("deletedAt", None)


def notification(rule: Rule, seq: int, event: Event, reason: str, data: Any,
                 notified_at: str) -> dict[str, Any]:
    """``data``: the entities, or (geo+json) their FeatureCollection."""
    body = {"id": notification_id(rule.tenant, rule.id, seq, event.entity_id), "type": "Notification",
            "subscriptionId": rule.id, "notifiedAt": notified_at, "data": data, "triggerReason": reason}
    return _with_context(rule, body)


def notification_of(rule: Rule, rows: list[Any], notified_at: str) -> dict[str, Any]:
    """A periodic notification (timeInterval): the matching entities as they are now."""
    data = [render_entity(row, rule.render_ctx, rule.view) for row in rows]
    body = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification", "subscriptionId": rule.id,
            "notifiedAt": notified_at, "data": data}
    return _with_context(rule, body)


def _with_context(rule: Rule, body: dict[str, Any]) -> dict[str, Any]:
    """An ld+json notification carries its @context in the body and in every entity."""
    if rule.notification["endpoint"].get("accept") == LD_JSON:
        body["@context"] = rule.link
        for item in body["data"]:
            item["@context"] = rule.link
    return body


def headers_of(rule: Rule) -> dict[str, str]:
    endpoint = rule.notification["endpoint"]
    accept = endpoint.get("accept", JSON)
    headers = {"Content-Type": accept if accept in (LD_JSON, GEO_JSON) else JSON}
    if accept != LD_JSON and rule.link:
        headers["Link"] = link_header(rule.link)
    if rule.tenant:
        headers["NGSILD-Tenant"] = rule.tenant
    for pair in endpoint.get("receiverInfo", ()):
        headers[pair["key"]] = pair["value"]
    return headers

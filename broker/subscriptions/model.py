"""Subscription payloads (GS CIM 009 5.2.12 Subscription, 5.2.14 NotificationParams, 5.2.15 Endpoint) ->
the stored form, PATCH fragments (5.8.2) applied to it, and the stored form rendered back (5.8.3).

Stored form: the user's members, checked, with every name expanded to its IRI (entity types -- kept as a
4.17 type expression whose names are IRIs --, ``watchedAttributes``, ``notification.attributes``,
``geoQ.geoproperty``); ``q`` / ``scopeQ`` / ``csf`` keep their text (the dispatcher compiles ``q`` with the
subscription's own @context, kept beside the body). Members the broker keeps (``status``, the notification
counters) and members 5.2.12 does not define are dropped on input, never stored. ``notificationTrigger`` is
always present (default: attributeCreated, attributeUpdated, Table 5.2.12-1).

``resumedAt`` (internal, never rendered): when a paused or expired subscription became active again; changes
before it are not notified.

Status (5.2.12): ``paused`` when ``isActive`` is false, else ``expired`` once ``expiresAt`` has passed, else
``active``; computed when read, so it never goes stale.
"""

from __future__ import annotations

import copy
from urllib.parse import unquote
from typing import Any

from ..errors import bad_request, not_found
from ..jsonld import Context
from ..model import values
from ..model.names import check_attribute_name
from ..model.projection import check_conflicts, expand, from_list, parse_projection
from ..query.geo import parse_geo_q
from ..query.q import parse_q
from ..query.scope import parse_scope_q
from ..query.types import TypeExpr, TypeName, TypeOp, parse_types

TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated",
            "attributeDeleted")
DEFAULT_TRIGGERS = ["attributeCreated", "attributeUpdated"]
FORMATS = ("normalized", "keyValues", "simplified", "concise")
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
JOINS = ("flat", "inline", "@none")
MAX_JOIN_LEVEL = 10
# the order members are rendered in (jsonb keeps object keys in its own order)
ORDER = ("id", "type", "subscriptionName", "description", "entities", "watchedAttributes", "notificationTrigger",
         "timeInterval", "q", "geoQ", "scopeQ", "csf", "lang", "datasetId", "isActive", "expiresAt", "throttling",
         "notification", "jsonldContext")


def parse_subscription(body: Any, ctx: Context, now: str) -> dict[str, Any]:
    """A Create Subscription payload -> the stored form (BadRequestData naming the member on any error)."""
    if not isinstance(body, dict) or not body:
        raise bad_request("a subscription must be a non-empty JSON object")
    if body.get("type") != "Subscription":
        raise bad_request("type must be 'Subscription'")
    sub: dict[str, Any] = {"type": "Subscription"}
    if "id" in body:
        sub["id"] = values.check_uri(body["id"], "id")
    for name, raw in body.items():
        if name in _MEMBERS:
            sub[name] = _MEMBERS[name](raw, ctx)
    if "notification" not in body:
        raise bad_request("notification is mandatory")
    if "expiresAt" in sub and sub["expiresAt"] <= now:
        raise bad_request("expiresAt must be in the future")
    sub.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    check_whole(sub)
    return sub


def apply_patch(stored: dict[str, Any], fragment: Any, ctx: Context, now: str) -> dict[str, Any]:
    """5.8.2: each member of the fragment replaces the stored one; null removes it (never a mandatory one).
    ``notification`` is merged member by member. The result is checked as a whole."""
    if not isinstance(fragment, dict) or not fragment:
        raise bad_request("the subscription fragment must be a non-empty JSON object")
    if "type" not in fragment:
        raise bad_request("the subscription fragment must carry type 'Subscription'")
    if fragment["type"] != "Subscription":
        raise bad_request("type must be 'Subscription'")
    if "id" in fragment and fragment["id"] != stored["id"]:
        raise bad_request("the id of a subscription cannot be changed")
    sub = copy.deepcopy(stored)
    for name, raw in fragment.items():
        if name not in _MEMBERS:
            continue
        if raw is None:
            if name == "notification":
                raise bad_request("notification is mandatory and cannot be removed")
            sub.pop(name, None)
        elif name == "notification":
            sub["notification"] = _patch_notification(sub["notification"], raw, ctx)
        else:
            sub[name] = _MEMBERS[name](raw, ctx)
    if "expiresAt" in fragment and fragment["expiresAt"] is not None and sub["expiresAt"] <= now:
        raise bad_request("expiresAt must be in the future")
    if fragment.get("notificationTrigger", 0) is None:
        sub["notificationTrigger"] = list(DEFAULT_TRIGGERS)
    check_whole(sub)
    return sub


def _patch_notification(current: dict[str, Any], raw: Any, ctx: Context) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("notification must be a JSON object")
    merged = {k: v for k, v in current.items()}
    for name, value in raw.items():
        if value is None:
            if name == "endpoint":
                raise bad_request("notification.endpoint is mandatory and cannot be removed")
            merged.pop(name, None)
        else:
            merged[name] = value
    # stored members go through the parser again: their names are IRIs already, which expand to themselves
    return _notification(merged, ctx)


def check_whole(sub: dict[str, Any]) -> None:
    """Rules between members (5.2.12)."""
    if "entities" not in sub and "watchedAttributes" not in sub:
        raise bad_request("a subscription needs entities or watchedAttributes (or both)")
    if "timeInterval" in sub:
        if "watchedAttributes" in sub:
            raise bad_request("timeInterval and watchedAttributes cannot be combined")
        if "throttling" in sub:
            raise bad_request("timeInterval and throttling cannot be combined")
    notification = sub["notification"]
    if notification.get("showChanges") and notification.get("format") in ("keyValues", "simplified"):
        raise bad_request("notification.showChanges needs the normalized or concise format")


# ---- members -------------------------------------------------------------------------------------------

def _entities(raw: Any, ctx: Context) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("entities must be a non-empty array of EntitySelectors")
    return [_selector(item, ctx, i) for i, item in enumerate(raw)]


def _selector(raw: Any, ctx: Context, i: int) -> dict[str, Any]:
    where = f"entities[{i}]"
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be a JSON object")
    if not isinstance(raw.get("type"), str) or not raw["type"].strip():
        raise bad_request(f"{where}.type is mandatory (an entity type or a type expression)")
    out: dict[str, Any] = {"type": type_text(parse_types(raw["type"]), ctx.expand_term)}
    if "id" in raw:
        out["id"] = values.check_uri(raw["id"], f"{where}.id")
    if "idPattern" in raw:
        out["idPattern"] = values.check_regex(raw["idPattern"], f"{where}.idPattern")
    return out


def type_text(expr: TypeExpr, rename: Any) -> str:
    """A type expression printed back, each name passed through ``rename`` (expansion or compaction)."""
    if isinstance(expr, TypeName):
        return rename(expr.name)
    joiner = ";" if expr.op == "and" else "|"
    parts = [type_text(item, rename) if isinstance(item, TypeName) else f"({type_text(item, rename)})"
             for item in expr.items]
    return joiner.join(parts)


def _names(what: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> list[str]:
        if not isinstance(raw, list) or not raw:
            raise bad_request(f"{what} must be a non-empty array of attribute names")
        out = []
        for name in raw:
            if not isinstance(name, str):
                raise bad_request(f"{what} must hold attribute names (strings)")
            check_attribute_name(name, what)
            out.append(ctx.expand_term(name))
        return out
    return check


def _triggers(raw: Any, ctx: Context) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("notificationTrigger must be a non-empty array")
    for item in raw:
        if item not in TRIGGERS:
            raise bad_request(f"notificationTrigger: {item!r} is not one of {', '.join(TRIGGERS)}")
    return list(dict.fromkeys(raw))


def _positive(name: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> float | int:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
            raise bad_request(f"{name} must be a number greater than 0")
        return raw
    return check


def _expires(raw: Any, ctx: Context) -> str:
    return values.parse_datetime(raw, "expiresAt")


def _boolean(name: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> bool:
        if not isinstance(raw, bool):
            raise bad_request(f"{name} must be true or false")
        return raw
    return check


def _query_text(name: str):  # type: ignore[no-untyped-def]
    """``q`` and ``csf``: a 4.9 query, checked now and kept as text."""
    def check(raw: Any, ctx: Context) -> str:
        if not isinstance(raw, str):
            raise bad_request(f"{name} must be a string")
        parse_subscription_q(raw)
        return raw
    return check


def parse_subscription_q(text: str) -> Any:
    """A subscription's ``q`` (or csf) as an AST. Clients write it as they would in a URL, percent-encoded
    (the ETSI suite sends ``name=="Eiffel%20Tower"``): it is decoded first, as Orion-LD and Stellio do."""
    return parse_q(unquote(text) if "%" in text else text)


def _scope_q(raw: Any, ctx: Context) -> str:
    if not isinstance(raw, str):
        raise bad_request("scopeQ must be a string")
    parse_scope_q(raw)
    return raw


def _geo_q(raw: Any, ctx: Context) -> dict[str, Any]:
    parse_geo_q(raw)  # validates
    out = {k: raw[k] for k in ("georel", "geometry", "coordinates") if k in raw}
    if raw.get("geoproperty") is not None:
        out["geoproperty"] = ctx.expand_term(raw["geoproperty"])
    return out


def _dataset_ids(raw: Any, ctx: Context) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("datasetId must be a non-empty array")
    return [item if item == "@none" else values.check_uri(item, "datasetId") for item in raw]


def _context_url(raw: Any, ctx: Context) -> str:
    return values.check_uri(raw, "jsonldContext")


def _notification(raw: Any, ctx: Context) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("notification must be a JSON object")
    out: dict[str, Any] = {}
    if "attributes" in raw:
        out["attributes"] = _names("notification.attributes")(raw["attributes"], ctx)
    fmt = raw.get("format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise bad_request(f"notification.format must be one of {', '.join(FORMATS)}")
        out["format"] = fmt
    for flag in ("sysAttrs", "showChanges"):
        if flag in raw:
            out[flag] = _boolean(f"notification.{flag}")(raw[flag], ctx)
    picked = _projection(raw, "pick", ctx)
    omitted = _projection(raw, "omit", ctx)
    if (picked is not None or omitted is not None) and "attributes" in out:
        raise bad_request("notification.attributes cannot be combined with pick or omit")
    if picked is not None and omitted is not None:
        check_conflicts(expand(picked, ctx, "pick"), expand(omitted, ctx, "omit"))
    for name, tree in (("pick", picked), ("omit", omitted)):
        if tree is not None:
            out[name] = raw[name]
    if "join" in raw:
        if raw["join"] not in JOINS:
            raise bad_request(f"notification.join must be one of {', '.join(JOINS)}")
        out["join"] = raw["join"]
    if "joinLevel" in raw:
        level = raw["joinLevel"]
        if type(level) is not int or not 1 <= level <= MAX_JOIN_LEVEL:
            raise bad_request(f"notification.joinLevel must be an integer from 1 to {MAX_JOIN_LEVEL}")
        out["joinLevel"] = level
    if "endpoint" not in raw or raw["endpoint"] is None:
        raise bad_request("notification.endpoint is mandatory")
    out["endpoint"] = _endpoint(raw["endpoint"])
    return out


def _projection(raw: dict[str, Any], name: str, ctx: Context) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, list) and not value:
        raise bad_request(f"notification.{name} must not be empty")
    return parse_projection(value, name) if isinstance(value, str) else from_list(value, name)


def _endpoint(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("notification.endpoint must be a JSON object")
    uri = values.check_uri(raw.get("uri"), "notification.endpoint.uri")
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in SCHEMES:
        raise bad_request(f"notification.endpoint.uri: the scheme must be one of {', '.join(SCHEMES)}")
    out: dict[str, Any] = {"uri": uri}
    if "accept" in raw:
        if raw["accept"] not in ACCEPTS:
            raise bad_request(f"notification.endpoint.accept must be one of {', '.join(ACCEPTS)}")
        out["accept"] = raw["accept"]
    for name in ("timeout", "cooldown"):
        if name in raw:
            out[name] = _positive(f"notification.endpoint.{name}")(raw[name], None)  # type: ignore[arg-type]
    for name in ("receiverInfo", "notifierInfo"):
        if name in raw:
            out[name] = values.check_key_values(raw[name], f"notification.endpoint.{name}")
    if scheme in ("mqtt", "mqtts"):  # topic, QoS and version must be usable before anything is notified
        from ..notify.mqtt import parse_endpoint

        try:
            parse_endpoint(uri, {p["key"]: p["value"] for p in out.get("notifierInfo", ())})
        except ValueError as exc:
            raise bad_request(f"notification.endpoint: {exc}") from None
    return out


_MEMBERS = {
    "subscriptionName": values.text_member("subscriptionName"),
    "description": values.text_member("description"),
    "entities": _entities,
    "watchedAttributes": _names("watchedAttributes"),
    "notificationTrigger": _triggers,
    "timeInterval": _positive("timeInterval"),
    "q": _query_text("q"),
    "geoQ": _geo_q,
    "csf": _query_text("csf"),
    "isActive": _boolean("isActive"),
    "notification": _notification,
    "expiresAt": _expires,
    "throttling": _positive("throttling"),
    "scopeQ": _scope_q,
    "lang": values.text_member("lang"),
    "datasetId": _dataset_ids,
    "jsonldContext": _context_url,
}


# ---- rendering ----------------------------------------------------------------------------------------

def status_of(sub: dict[str, Any], now: str) -> str:
    if sub.get("isActive") is False:
        return "paused"
    expires = sub.get("expiresAt")
    if expires is not None and expires <= now:
        return "expired"
    return "active"


def render_subscription(sub: dict[str, Any], stats: dict[str, Any], ctx: Context, now: str, *,
                        sys_attrs: bool = False) -> dict[str, Any]:
    """The stored form compacted with ``ctx``; ``stats``: the broker-kept notification members and
    createdAt / modifiedAt."""
    out: dict[str, Any] = {}
    for name in ORDER:
        if name not in sub:
            continue
        value = sub[name]
        if name == "entities":
            value = [_render_selector(s, ctx) for s in value]
        elif name == "watchedAttributes":
            value = [ctx.compact_attr(a) for a in value]
        elif name == "geoQ" and "geoproperty" in value:
            value = {**value, "geoproperty": ctx.compact_attr(value["geoproperty"])}
        elif name == "notification":
            value = _render_notification(value, stats, ctx)
        out[name] = value
    out["status"] = status_of(sub, now)
    if sys_attrs:
        out["createdAt"] = stats["createdAt"]
        out["modifiedAt"] = stats["modifiedAt"]
    return out


def _render_selector(selector: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out = dict(selector)
    out["type"] = type_text(parse_types(selector["type"]), ctx.compact_type)
    return out


def _render_notification(notification: dict[str, Any], stats: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out = dict(notification)
    if "attributes" in out:
        out["attributes"] = [ctx.compact_attr(a) for a in out["attributes"]]
    if stats.get("timesSent") or stats.get("timesFailed"):  # a subscription never used shows no counters
        out["timesSent"] = stats.get("timesSent", 0)
        out["timesFailed"] = stats.get("timesFailed", 0)
    for name in ("lastNotification", "lastSuccess", "lastFailure"):
        if stats.get(name):
            out[name] = stats[name]
    if stats.get("lastNotification"):
        out["status"] = "failed" if stats.get("lastFailure", "") > stats.get("lastSuccess", "") else "ok"
    return out


def missing(sub_id: str) -> Exception:
    return not_found(f"subscription {sub_id} does not exist")


__all__ = ["parse_subscription", "apply_patch", "render_subscription", "status_of", "type_text", "TypeOp"]

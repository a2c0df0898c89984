"""Registration payloads (5.2.9 CSourceRegistration, 5.2.10 RegistrationInfo, 5.2.8 EntityInfo) -> the stored
form, PATCH fragments (5.9.3) applied to it, and the stored form rendered back (5.10.1).

Stored form: the user's members in the user's order, each checked. Only the names that depend on the
@context are expanded: entity types, ``propertyNames`` / ``relationshipNames``, and the names of members
5.2.9 does not define (Context Source Properties, kept with their values as given, under their IRI). Every
other member (``endpoint``, ``expiresAt``, the intervals, ``location``, ...) is kept verbatim, so it reads back
byte for byte. System members a client sends (``status``, ``timesSent``, ``createdAt``, ...) are dropped.

No JSON-LD expansion runs over the whole payload: it would drop ``"information": null`` before it could be
refused and rewrite the GeoJSON of ``location``.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import NgsiError, bad_request
from ..jsonld import Context
from ..model import values
from ..model.geojson import validate_geometry
from ..model.names import check_attribute_name, check_scope
from ..temporal.params import parse_duration

TYPE = "ContextSourceRegistration"
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
DEFAULT_MODE = "inclusive"
DEFAULT_OPERATIONS = ["federationOps"]
AUXILIARY_OPERATIONS = frozenset({"retrieveOps", "retrieveEntity", "queryEntity"})
SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "status", "timesSent", "timesFailed", "lastSuccess",
                    "lastFailure"})
MANDATORY = ("information", "endpoint")


def parse_registration(body: Any, ctx: Context, now: str) -> dict[str, Any]:
    """A Register Context Source payload -> the stored form (BadRequestData naming the member on any error)."""
    if not isinstance(body, dict) or not body:
        raise bad_request("a registration must be a non-empty JSON object")
    if body.get("type") != TYPE:
        raise bad_request(f"type must be '{TYPE}'")
    reg: dict[str, Any] = {}
    if "id" in body:
        reg["id"] = values.check_uri(body["id"], "id")
    reg["type"] = TYPE
    for name, raw in body.items():
        if name not in ("id", "type", "@context") and name not in SYSTEM:
            key, value = _member(name, raw, ctx)
            reg[key] = value
    for name in MANDATORY:
        if name not in reg:
            raise bad_request(f"{name} is mandatory")
    _check_whole(reg, now, expires_changed=True)
    return reg


def apply_patch(stored: dict[str, Any], fragment: Any, ctx: Context, now: str) -> dict[str, Any]:
    """5.9.3: each member of the fragment replaces the stored one; null removes it (never a mandatory one)."""
    if not isinstance(fragment, dict) or not fragment:
        raise bad_request("the registration fragment must be a non-empty JSON object")
    if "type" in fragment and fragment["type"] != TYPE:
        raise bad_request(f"type must be '{TYPE}'")
    if "id" in fragment and fragment["id"] != stored["id"]:
        raise bad_request("the id of a registration cannot be changed")
    reg = copy.deepcopy(stored)
    for name, raw in fragment.items():
        if name in ("id", "type", "@context") or name in SYSTEM:
            continue
        if raw is None:
            if name in MANDATORY:
                raise bad_request(f"{name} is mandatory and cannot be removed")
            reg.pop(_key(name, ctx), None)
            continue
        key, value = _member(name, raw, ctx)
        reg[key] = value
    _check_whole(reg, now, expires_changed=fragment.get("expiresAt") is not None)
    return reg


def render_registration(reg: dict[str, Any], ctx: Context, created: str, modified: str, *,
                        sys_attrs: bool = False) -> dict[str, Any]:
    """The stored form compacted with ``ctx``, with the defaults of ``mode`` and ``operations``."""
    out: dict[str, Any] = {}
    for name, value in reg.items():
        if name == "information":
            out[name] = [_render_info(info, ctx) for info in value]
        elif ":" in name:  # a Context Source Property, kept under its IRI
            out[ctx.compact_attr(name)] = value
        else:
            out[name] = value
    out.setdefault("mode", DEFAULT_MODE)
    out.setdefault("operations", list(DEFAULT_OPERATIONS))
    if sys_attrs:
        out["createdAt"] = created
        out["modifiedAt"] = modified
    return out


def _render_info(info: dict[str, Any], ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in info.items():
        if name == "entities":
            out[name] = [{**e, "type": [ctx.compact_type(t) for t in e["type"]] if isinstance(e["type"], list)
                          else ctx.compact_type(e["type"])} for e in value]
        else:
            out[name] = [ctx.compact_attr(n) for n in value]
    return out


# ---- members -------------------------------------------------------------------------------------------

def _key(name: str, ctx: Context) -> str:
    """Where member ``name`` is stored: its own name for a member 5.2.9 defines, else its IRI."""
    if name in _MEMBERS:
        return name
    iri = ctx.expand_term(name)
    if not isinstance(iri, str) or iri.startswith("@") or ":" not in iri:
        raise bad_request(f"{name!r} cannot be a registration member with this @context")
    return iri


def _member(name: str, raw: Any, ctx: Context) -> tuple[str, Any]:
    check = _MEMBERS.get(name)
    if check is not None:
        return name, check(raw, ctx)
    return _key(name, ctx), raw


def _information(raw: Any, ctx: Context) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("information must be a non-empty array of RegistrationInfo")
    return [_info(item, ctx, f"information[{i}]") for i, item in enumerate(raw)]


def _info(raw: Any, ctx: Context, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise bad_request(f"{where} must be a non-empty JSON object")
    unknown = set(raw) - {"entities", "propertyNames", "relationshipNames"}
    if unknown:
        raise bad_request(f"{where}: unknown member {sorted(unknown)[0]!r}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(value, list) or not value:
            raise bad_request(f"{where}.{name} must be a non-empty array")
        if name == "entities":
            out[name] = [_entity_info(item, ctx, f"{where}.entities[{i}]") for i, item in enumerate(value)]
        else:
            out[name] = [_name(item, ctx, f"{where}.{name}") for item in value]
    return out


def _entity_info(raw: Any, ctx: Context, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be a JSON object")
    unknown = set(raw) - {"id", "idPattern", "type"}
    if unknown:
        raise bad_request(f"{where}: unknown member {sorted(unknown)[0]!r}")
    types = raw.get("type")
    if isinstance(types, str) and types.strip():
        expanded: Any = _type(types, ctx, where)
    elif isinstance(types, list) and types and all(isinstance(t, str) and t.strip() for t in types):
        expanded = [_type(t, ctx, where) for t in types]
    else:
        raise bad_request(f"{where}.type is mandatory: an entity type or an array of entity types")
    out: dict[str, Any] = {}
    if "id" in raw:
        out["id"] = values.check_uri(raw["id"], f"{where}.id")
    if "idPattern" in raw:
        out["idPattern"] = values.check_regex(raw["idPattern"], f"{where}.idPattern")
    out["type"] = expanded
    return out


def _type(name: str, ctx: Context, where: str) -> str:
    iri = ctx.expand_term(name)
    if not isinstance(iri, str) or iri.startswith("@"):
        raise bad_request(f"{where}.type: {name!r} is not an entity type")
    return iri


def _name(raw: Any, ctx: Context, where: str) -> str:
    if not isinstance(raw, str):
        raise bad_request(f"{where} must hold attribute names (strings)")
    check_attribute_name(raw, where)
    iri = ctx.expand_term(raw)
    if not isinstance(iri, str) or iri.startswith("@"):
        raise bad_request(f"{where}: {raw!r} is not an attribute name")
    return iri


def _endpoint(raw: Any, ctx: Context) -> str:
    return values.check_uri(raw, "endpoint")


def _datetime(name: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> str:
        values.parse_datetime(raw, name)
        return raw  # verbatim: it reads back as it was written
    return check


def _interval(name: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> dict[str, Any]:
        """5.2.11 TimeInterval: startAt, and endAt after it if present."""
        if not isinstance(raw, dict) or "startAt" not in raw or set(raw) - {"startAt", "endAt"}:
            raise bad_request(f"{name} must be {{\"startAt\": DateTime, \"endAt\": DateTime (optional)}}")
        start = values.to_datetime(values.parse_datetime(raw["startAt"], f"{name}.startAt"))
        if "endAt" in raw and values.to_datetime(values.parse_datetime(raw["endAt"], f"{name}.endAt")) < start:
            raise bad_request(f"{name}.endAt must not be before its startAt")
        return raw
    return check


def _geometry(name: str):  # type: ignore[no-untyped-def]
    def check(raw: Any, ctx: Context) -> dict[str, Any]:
        validate_geometry(raw, name)
        return raw
    return check


def _key_values(raw: Any, ctx: Context) -> list[dict[str, str]]:
    return values.check_key_values(raw, "contextSourceInfo")


def _scope(raw: Any, ctx: Context) -> Any:
    check_scope(raw, "scope")
    return raw


def _mode(raw: Any, ctx: Context) -> str:
    if raw not in MODES:
        raise bad_request(f"mode must be one of {', '.join(MODES)}")
    return raw


def _operations(raw: Any, ctx: Context) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(op, str) and op for op in raw):
        raise bad_request("operations must be a non-empty array of operation names")
    return raw


def _duration(raw: Any, where: str) -> str:
    try:
        if not isinstance(raw, str):
            raise bad_request("")
        parse_duration(raw)
    except NgsiError:
        raise bad_request(f"{where} must be an ISO 8601 duration (e.g. PT5M), not {raw!r}") from None
    return raw


def _refresh_rate(raw: Any, ctx: Context) -> str:
    return _duration(raw, "refreshRate")


def _management(raw: Any, ctx: Context) -> dict[str, Any]:
    """5.2.34 RegistrationManagementInfo."""
    if not isinstance(raw, dict):
        raise bad_request("management must be a JSON object")
    unknown = set(raw) - {"localOnly", "cacheDuration", "timeout", "cooldown"}
    if unknown:
        raise bad_request(f"management: unknown member {sorted(unknown)[0]!r}")
    if "localOnly" in raw and not isinstance(raw["localOnly"], bool):
        raise bad_request("management.localOnly must be true or false")
    if "cacheDuration" in raw:
        _duration(raw["cacheDuration"], "management.cacheDuration")
    for name in ("timeout", "cooldown"):
        if name in raw and (isinstance(raw[name], bool) or not isinstance(raw[name], (int, float))
                            or raw[name] <= 0):
            raise bad_request(f"management.{name} must be a number of milliseconds above 0")
    return raw


_MEMBERS = {
    "registrationName": values.text_member("registrationName"),
    "description": values.text_member("description"),
    "information": _information,
    "tenant": values.text_member("tenant"),
    "observationInterval": _interval("observationInterval"),
    "managementInterval": _interval("managementInterval"),
    "location": _geometry("location"),
    "observationSpace": _geometry("observationSpace"),
    "operationSpace": _geometry("operationSpace"),
    "expiresAt": _datetime("expiresAt"),
    "endpoint": _endpoint,
    "contextSourceInfo": _key_values,
    "scope": _scope,
    "mode": _mode,
    "operations": _operations,
    "refreshRate": _refresh_rate,
    "management": _management,
}


def _check_whole(reg: dict[str, Any], now: str, *, expires_changed: bool) -> None:
    """Rules between members (5.2.9, 4.3.6.3)."""
    if expires_changed and "expiresAt" in reg and \
            values.to_datetime(values.parse_datetime(reg["expiresAt"], "expiresAt")) <= values.to_datetime(now):
        raise bad_request("expiresAt must be in the future")
    mode = reg.get("mode", DEFAULT_MODE)
    if mode == "exclusive":  # an exclusive registration names the entities and attributes it takes over
        for info in reg["information"]:
            entities = info.get("entities") or ()
            if not entities or any("id" not in e or "idPattern" in e for e in entities):
                raise bad_request("an exclusive registration names each entity by id (no idPattern, "
                                  "not a type alone)")
            if not info.get("propertyNames") and not info.get("relationshipNames"):
                raise bad_request("an exclusive registration names the attributes it registers")
    if mode == "auxiliary":
        extra = set(reg.get("operations", DEFAULT_OPERATIONS)) - AUXILIARY_OPERATIONS
        if extra:
            raise bad_request(f"an auxiliary registration supports retrieval only, not {sorted(extra)[0]}")

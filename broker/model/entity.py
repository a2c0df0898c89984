"""Input: NGSI-LD entities and attributes (normalized or concise) validated into the internal form.

One walk does validation and JSON-LD expansion together (the hot path of every write: a batch of 1,000
entities is parsed here). Names are expanded through the request's ``Context`` (memoised lookups); values go
through ``Context.expand_value`` only when they are not plain scalars.

Attribute types are taken from ``type`` or, in the concise representation, inferred from the member present
(``value``, ``object``, ``languageMap``, ``vocab``, ``json``, ``valueList``, ``objectList``; a bare GeoJSON
geometry is a GeoProperty, any other bare value a Property).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import NgsiError, bad_request
from ..jsonld import Context
from . import geojson, names, values

NGSILD = "https://uri.etsi.org/ngsi-ld/"
NULL = "urn:ngsi-ld:null"

ATTRIBUTE_TYPES = ("Property", "Relationship", "GeoProperty", "LanguageProperty", "VocabProperty",
                   "JsonProperty", "ListProperty", "ListRelationship")
_TYPE_BY_IRI = {NGSILD + t: t for t in ATTRIBUTE_TYPES}
_TYPE_BY_IRI["https://uri.etsi.org/ngsi-ld/VocabularyProperty"] = "VocabProperty"
# the member that carries the value, per attribute type
VALUE_MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
                "LanguageProperty": "languageMap", "VocabProperty": "vocab", "JsonProperty": "json",
                "ListProperty": "valueList", "ListRelationship": "objectList"}
_INFER_ORDER = ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList")
_TYPE_BY_MEMBER = {"value": "Property", "object": "Relationship", "languageMap": "LanguageProperty",
                   "vocab": "VocabProperty", "json": "JsonProperty", "valueList": "ListProperty",
                   "objectList": "ListRelationship"}
# members of an attribute that are not sub-attributes
_VALUE_MEMBERS = frozenset(_TYPE_BY_MEMBER)
_SYSTEM_MEMBERS = frozenset(("createdAt", "modifiedAt", "deletedAt", "instanceId"))
_OTHER_MEMBERS = frozenset(("type", "datasetId", "observedAt", "unitCode", "objectType", "valueType", "lang",
                            "previousValue", "@context", "id", "@id", "@type", "entity", "scope"))
RESERVED_MEMBERS = _VALUE_MEMBERS | _SYSTEM_MEMBERS | _OTHER_MEMBERS
# core IRIs that name structure, not attributes: an attribute expanding to one of them is misused
_RESERVED_IRIS = frozenset(NGSILD + name for name in (
    "hasValue", "hasObject", "hasValues", "hasObjects", "hasObjectList", "hasValueList", "hasLanguageMap",
    "hasVocab", "hasJSON", "datasetId", "observedAt", "unitCode", "createdAt", "modifiedAt", "deletedAt",
    "instanceId", "hasObjectType", "hasValueType", "default-context/id", "default-context/type"))
GEO_ATTRIBUTES = frozenset(NGSILD + n for n in ("location", "observationSpace", "operationSpace"))
SCOPE_IRI = NGSILD + "scope"
_SCALARS = (str, int, float, bool)


@dataclass
class EntityInput:
    """A validated entity body: ``attrs`` instances carry no createdAt/modifiedAt yet."""

    id: str
    types: list[str]
    scopes: list[str] | None
    attrs: dict[str, list[dict[str, Any]]]


def parse_entity(body: Any, ctx: Context, *, require_type: bool = True, require_id: bool = True,
                 allow_null: bool = False, merge: bool = False) -> EntityInput:
    """Validate and expand an entity body (Create, Replace, batch operations; updates with ``allow_null``: the
    NGSI-LD Null deletes what it stands for). Only a merge (``merge``, 5.5.12) may also carry the Null inside a
    Property's JSON object value, where it removes a key (RFC 7396); anywhere else there it is BadRequestData
    (5.5.4)."""
    if not isinstance(body, dict):
        raise bad_request("an entity must be a JSON object")
    entity_id = body.get("id", body.get("@id"))
    if entity_id is None:
        if require_id:
            raise bad_request("the entity has no id")
    else:
        entity_id = values.check_uri(entity_id, "entity id")
    types = parse_types(body.get("type", body.get("@type")), ctx, required=require_type)
    scopes = None
    attrs: dict[str, list[dict[str, Any]]] = {}
    for key, raw in body.items():
        if key in ENTITY_MEMBERS:
            if key == "scope":
                scopes = None if (allow_null and _is_null(raw)) else names.check_scope(raw, "scope")
            continue
        iri = attribute_iri(key, ctx)
        if type(raw) is dict and not allow_null and _already_internal(iri, raw, ctx):
            attrs[iri] = [raw]  # the common shapes, proven valid as they are
        else:
            attrs[iri] = parse_attribute(key, iri, raw, ctx, allow_null=allow_null, merge=merge)
    return EntityInput(entity_id or "", types, scopes, attrs)


ENTITY_MEMBERS = frozenset(("id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt",
                             "deletedAt"))


def parse_types(raw: Any, ctx: Context, *, required: bool = True) -> list[str]:
    if raw is None:
        if required:
            raise bad_request("the entity has no type")
        return []
    given = raw if isinstance(raw, list) else [raw]
    if not given:
        raise bad_request("the entity type must not be empty")
    types: list[str] = []
    for name in given:
        if not isinstance(name, str) or not name:
            raise bad_request(f"invalid entity type {name!r}: types are non-empty strings")
        names.check_type_name(name, "entity type")
        iri = ctx.expand_term(name)
        if iri is None or iri.startswith("@") or ":" not in iri:
            raise bad_request(f"invalid entity type {name!r}")
        if iri not in types:
            types.append(iri)
    return types


def attribute_iri(name: str, ctx: Context) -> str:
    """The expanded name of an attribute written ``name`` by the user, rejecting reserved names."""
    found = ctx.attribute_names.get(name)
    if found is not None:
        return found
    iri = _attribute_iri(name, ctx)
    ctx.attribute_names[name] = iri  # valid in this context for good: remember
    return iri


def _attribute_iri(name: str, ctx: Context) -> str:
    if not isinstance(name, str) or not name:
        raise bad_request("attribute names must be non-empty strings")
    if name in RESERVED_MEMBERS:
        raise bad_request(f"'{name}' is a reserved NGSI-LD member and cannot be used as an attribute name")
    names.check_attribute_name(name, f"attribute '{name}'")
    iri = ctx.expand_term(name)
    if iri is None or iri in _RESERVED_IRIS or ":" not in iri or iri.startswith("@"):
        raise bad_request(f"'{name}' cannot be used as an attribute name (it expands to {iri})")
    if iri in ctx.unavailable:
        raise NgsiError("LdContextNotAvailable", f"'{name}' needs the @context {ctx.unavailable[iri]}, which is "
                                                 f"neither shipped nor reachable")
    return iri


def _is_null(raw: Any) -> bool:
    return raw is None or raw == NULL or raw == [NULL]


def is_attribute_object(raw: Any) -> bool:
    """Whether a JSON object is an attribute (normalized or concise) rather than a bare compound value."""
    if "type" in raw:
        t = raw["type"]
        return isinstance(t, str) and (t in VALUE_MEMBER or t.startswith(NGSILD) or t == "VocabularyProperty")
    return any(m in raw for m in _INFER_ORDER)


def parse_attribute(name: str, iri: str, raw: Any, ctx: Context, *, allow_null: bool = False,
                    depth: int = 0, merge: bool = False) -> list[dict[str, Any]]:
    """The instances of one attribute; a list of attribute objects means several datasetId instances."""
    where = f"attribute '{name}'"
    if allow_null and _is_null(raw):
        return []  # a deletion, by merge-patch semantics
    if isinstance(raw, list) and raw and all(isinstance(x, dict) and is_attribute_object(x) for x in raw):
        instances = [parse_instance(where, iri, x, ctx, depth=depth, allow_null=allow_null, merge=merge)
                     for x in raw]
        seen: set[Any] = set()
        for inst in instances:
            ds = inst.get("datasetId")
            if ds in seen:
                raise bad_request(f"{where}: two instances with the same datasetId {ds or '(default)'}")
            seen.add(ds)
        return instances
    return [parse_instance(where, iri, raw, ctx, depth=depth, allow_null=allow_null, merge=merge)]


def parse_instance(where: str, iri: str, raw: Any, ctx: Context, *, depth: int = 0,
                   allow_null: bool = False, merge: bool = False) -> dict[str, Any]:
    """One attribute instance (or sub-attribute) into the internal form."""
    if depth > 16:
        raise bad_request(f"{where}: sub-attributes nested too deeply")
    if not isinstance(raw, dict):
        if raw is None:
            raise bad_request(f"{where}: null is not a valid attribute value")
        return _concise_value(where, iri, raw, ctx)
    declared = raw.get("type")
    if type(declared) is str and declared in VALUE_MEMBER and iri not in GEO_ATTRIBUTES:
        attr_type: str | None = declared  # the common case: a short type name
    else:
        attr_type = _attribute_type(where, iri, raw, ctx)
    if attr_type is None:  # concise: a bare compound value (or a bare geometry)
        return _concise_value(where, iri, raw, ctx)
    member = VALUE_MEMBER[attr_type]
    if member not in raw:
        raise bad_request(f"{where}: a {attr_type} requires '{member}'")
    if declared == attr_type and not allow_null and _already_internal(iri, raw, ctx):
        return raw  # validated and already in the internal form: no copy (the request owns nothing else)
    inst: dict[str, Any] = {"type": attr_type}
    _members(where, iri, attr_type, raw, inst, ctx, depth=depth, allow_null=allow_null, merge=merge)
    return inst


_PLAIN_MEMBERS = {"Property": frozenset(("type", "value", "observedAt", "unitCode", "datasetId")),
                  "GeoProperty": frozenset(("type", "value", "observedAt", "unitCode", "datasetId")),
                  "Relationship": frozenset(("type", "object", "observedAt", "datasetId"))}
_ABSENT = object()
_PLAIN_VALUE = {"Property": "value", "GeoProperty": "value", "Relationship": "object"}


def _already_internal(iri: str, raw: dict[str, Any], ctx: Context) -> bool:
    """The fast path of every write: whether ``raw`` is one of the common attribute shapes (a scalar Property,
    a GeoProperty, a single-object Relationship, with observedAt / unitCode / datasetId), valid and already
    in the internal form, so that it is stored as it is. False is "not proven", never a refusal: the general
    path (``parse_instance``) then validates, and explains what is wrong. No diagnostic text is built here
    (a batch of 1,000 entities passes through this 6,000 times)."""
    attr_type = raw.get("type")
    plain = _PLAIN_MEMBERS.get(attr_type) if type(attr_type) is str else None
    if plain is None or not plain.issuperset(raw) or _PLAIN_VALUE[attr_type] not in raw:
        return False
    if attr_type == "GeoProperty":
        if not geojson.is_valid_geometry(raw["value"]):
            return False
    elif iri in GEO_ATTRIBUTES:  # location & co. must be GeoProperties
        return False
    elif attr_type == "Property":
        value = raw["value"]
        if type(value) not in _SCALARS or not ctx.scalars_plain or value == NULL:
            return False
    elif not values.is_plain_uri(raw["object"]):
        return False
    observed = raw.get("observedAt", _ABSENT)  # present but null is no DateTime: not proven
    if observed is not _ABSENT and not values.is_canonical_datetime(observed):
        return False
    unit = raw.get("unitCode", _ABSENT)
    if unit is not _ABSENT and (type(unit) is not str or not unit or unit == NULL):
        return False
    dataset = raw.get("datasetId", _ABSENT)
    return dataset is _ABSENT or values.is_plain_uri(dataset)


def parse_fragment(where: str, iri: str, raw: Any, ctx: Context) -> dict[str, Any]:
    """An Attribute Fragment (Partial Attribute Update): only the members given, validated; ``type`` only if
    the user gave one (the stored attribute's type otherwise stays)."""
    if not isinstance(raw, dict):
        if raw is None or raw == NULL:
            raise NgsiError("InvalidRequest", f"{where}: the fragment is null")
        return {"value": _concise_value(where, iri, raw, ctx)["value"]}
    declared = raw.get("type")
    attr_type = _attribute_type(where, iri, raw, ctx) if declared is not None else None
    if declared is not None and attr_type is None:
        raise bad_request(f"{where}: invalid attribute type {declared!r}")
    inferred = attr_type or next((_TYPE_BY_MEMBER[m] for m in _INFER_ORDER if m in raw), None)
    if inferred is not None:
        values.check_prohibited_members(inferred, raw, where)
    inst: dict[str, Any] = {"type": attr_type} if attr_type else {}
    _members(where, iri, attr_type, raw, inst, ctx, depth=0, allow_null=True)
    return inst


def _members(where: str, iri: str, attr_type: str | None, raw: dict[str, Any], inst: dict[str, Any],
             ctx: Context, *, depth: int, allow_null: bool, merge: bool = False) -> None:
    """Every member of an attribute object, validated into ``inst`` (the hot loop of every write)."""
    banned = values.PROHIBITED_MEMBERS.get(attr_type) if attr_type else None
    for key, member in raw.items():
        if banned is not None and key in banned:
            values.check_prohibited_members(attr_type, raw, where)  # raises, naming the member
        if key == "type":
            continue
        if key in _VALUE_MEMBERS:
            kind = attr_type or _TYPE_BY_MEMBER[key]
            if attr_type is None and key == "value" and (iri in GEO_ATTRIBUTES or geojson.is_geometry(member)):
                kind = "GeoProperty"  # a fragment without type: a geometry value means a GeoProperty
            if kind == "Property" and type(member) in _SCALARS and ctx.scalars_plain and member != NULL:
                inst["value"] = member  # the common case, inline
            else:
                inst[key] = value_member(where, kind, key, member, ctx, allow_null, merge)
        elif key == "observedAt":
            inst["observedAt"] = values.parse_datetime(member, f"{where} observedAt")
        elif key == "unitCode":
            inst["unitCode"] = values.check_unit_code(member, f"{where} unitCode")
        elif key == "datasetId":
            dataset_id = values.check_dataset_id(member, f"{where} datasetId")
            if dataset_id is not None:  # "@none" names the default instance
                inst["datasetId"] = dataset_id
        elif key in _SYSTEM_MEMBERS:
            continue
        elif key in ("objectType", "valueType"):
            inst[key] = _vocab_values(where, member, ctx)
            if key == "valueType" and attr_type == "LanguageProperty" and not _is_lang_string(member, inst[key]):
                raise bad_request(f"{where}: a LanguageProperty's valueType shall be langString (5.2.32)")
        elif key in _OTHER_MEMBERS:
            raise bad_request(f"{where}: '{key}' is not allowed in an attribute")
        else:
            sub_iri = attribute_iri(key, ctx)
            if allow_null and _is_null(member):
                inst[sub_iri] = None  # deletion marker, resolved by the merge rules
            else:
                inst[sub_iri] = parse_instance(f"{where} sub-attribute '{key}'", sub_iri, member, ctx,
                                               depth=depth + 1, allow_null=allow_null, merge=merge)


LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


def _is_lang_string(raw: Any, expanded: Any) -> bool:
    """``langString`` as the user wrote it (no context defines the term), or any form expanding to rdf:langString."""
    return raw in ("langString", "rdf:langString") or expanded == LANG_STRING


def _attribute_type(where: str, iri: str, raw: dict[str, Any], ctx: Context) -> str | None:
    declared = raw.get("type")
    if declared is not None:
        if isinstance(declared, str):
            if declared in VALUE_MEMBER:
                attr_type = declared
            else:
                attr_type = _TYPE_BY_IRI.get(ctx.expand_term(declared), "")
            if attr_type:
                if iri in GEO_ATTRIBUTES and attr_type != "GeoProperty":
                    raise bad_request(f"{where} must be a GeoProperty")
                return attr_type
        if any(m in raw for m in _INFER_ORDER):
            raise bad_request(f"{where}: invalid attribute type {declared!r}")
        return None  # concise: a compound value that has a "type" of its own (a geometry, an address...)
    for member in _INFER_ORDER:
        if member in raw:
            attr_type = _TYPE_BY_MEMBER[member]
            if member == "value" and (iri in GEO_ATTRIBUTES or geojson.is_geometry(raw["value"])):
                attr_type = "GeoProperty"
            return attr_type
    return None


def _concise_value(where: str, iri: str, raw: Any, ctx: Context) -> dict[str, Any]:
    if isinstance(raw, dict) and (iri in GEO_ATTRIBUTES or geojson.is_geometry(raw)):
        geojson.validate_geometry(raw, where)
        return {"type": "GeoProperty", "value": raw}
    if iri in GEO_ATTRIBUTES:
        raise bad_request(f"{where} must be a GeoProperty (a GeoJSON geometry)")
    if raw == NULL:
        raise bad_request(f"{where}: urn:ngsi-ld:null is not a value")
    return {"type": "Property", "value": _value(raw, ctx)}


def value_member(where: str, attr_type: str, member: str, value: Any, ctx: Context, allow_null: bool,
                 merge: bool = False) -> Any:
    """The value member ``member`` of an attribute of ``attr_type``, validated and expanded; ``merge``: the
    NGSI-LD Null may stand inside a Property's JSON object value (see ``parse_entity``)."""
    if value is None or (value == NULL and not allow_null):
        raise bad_request(f"{where}: '{member}' must not be null")
    if allow_null and (_is_null(value) or value == {"@none": NULL}):
        return NULL
    if member != VALUE_MEMBER[attr_type]:
        raise bad_request(f"{where}: a {attr_type} cannot have '{member}'")
    if attr_type == "Property":
        if not merge and type(value) in (dict, list):
            values.check_not_null(value, where)
        return _value(value, ctx)
    if attr_type == "GeoProperty":
        return geojson.parse_geometry(value, where)  # also the JSON text of a geometry (4.7.2)
    if attr_type == "Relationship":
        return _uris(where, value, allow_list=True)
    if attr_type == "LanguageProperty":
        names.check_language_map(value, where)
        return value
    if attr_type == "VocabProperty":
        return _vocab_values(where, value, ctx)
    if attr_type == "JsonProperty":
        values.check_json_value(value, where)
        return value
    if not isinstance(value, list):
        raise bad_request(f"{where}: {member} must be an array")
    if attr_type == "ListProperty":
        return [_value(v, ctx) for v in value]
    return [{"object": _list_object(where, item)} for item in value]  # ListRelationship


def _value(value: Any, ctx: Context) -> Any:
    """A Property value in the internal form; plain scalars are their own expansion in most contexts."""
    if type(value) in _SCALARS and ctx.scalars_plain:
        return value
    return ctx.expand_value(value)


def _list_object(where: str, item: Any) -> str:
    if isinstance(item, dict):
        if set(item) - {"object", "type"}:
            raise bad_request(f"{where}: objectList entries are URIs or {{\"object\": URI}}")
        item = item.get("object")
    return values.check_uri(item, f"{where} objectList entry")


def _uris(where: str, value: Any, *, allow_list: bool) -> Any:
    if isinstance(value, list) and allow_list:
        if not value:
            raise bad_request(f"{where}: object must not be an empty array")
        return [values.check_uri(v, f"{where} object") for v in value]
    return values.check_uri(value, f"{where} object")


def _vocab_values(where: str, value: Any, ctx: Context) -> Any:
    if isinstance(value, str) and value:
        return ctx.expand_vocab(value)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return [ctx.expand_vocab(v) for v in value]
    raise bad_request(f"{where}: vocab values are non-empty strings or arrays of them")


def check_entity_id(raw: str) -> str:
    """An entity id taken from a URL path."""
    try:
        return values.check_uri(raw, "entity id")
    except NgsiError as exc:
        raise bad_request(exc.detail) from None

"""Output: the internal entity form rendered as normalized, concise or simplified (keyValues) NGSI-LD.

What a ``View`` controls (GS CIM 009 clause 4.5 representations, 5.7.1 / 5.7.2 parameters):

* ``format``: normalized (4.5.1), concise (4.5.2 / 4.5.3.3) or simplified (4.5.4);
* ``sys_attrs``: createdAt / modifiedAt of the entity and of every attribute instance (4.8);
* ``attrs``: the attributes kept (expanded IRIs; the deprecated ``attrs`` parameter);
* ``pick`` / ``omit``: entity members kept / removed (4.21, ``broker.model.projection``);
* ``lang``: a language filter turning LanguageProperties into Properties (4.15, ``broker.model.language``);
* ``datasets``: the attribute instances kept, by datasetId, ``@none`` naming the default instance (4.5.5).

Names and values are compacted with the request's ``Context``: attribute and sub-attribute names
(``compact_attr``), entity types (``compact_type``), VocabProperty ``vocab`` and ``objectType`` /
``valueType`` (``compact_vocab``), and the keys of compound Property values (``compact_value``).

Linked Entity retrieval with ``join=inline`` (4.5.23.2): ``Inline`` carries the Linked Entities already
read; a Relationship gets an ``entity`` member (a ListRelationship an ``entityList``) holding the target
rendered in the same representation, or in the simplified representation the target replaces the object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..jsonld import Context
from .language import choose_tag, parse_lang, pick_language
from .operations import instance_times, iso
from .projection import Projection, keeps, linked

NORMALIZED, CONCISE, SIMPLIFIED = "normalized", "concise", "simplified"
_SCALARS = (str, int, float, bool)
RELATIONSHIPS = ("Relationship", "ListRelationship")


@dataclass(frozen=True)
class View:
    """How to render (see the module docstring); the default renders everything, normalized."""

    format: str = NORMALIZED
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    lang: str | None = None
    pick: Projection | None = None
    omit: Projection | None = None
    datasets: frozenset[str] | None = None

    def for_linked(self, iri: str) -> View:
        """The view of the Linked Entities reached through the Relationship ``iri``: the same representation,
        the sub-selection of pick / omit, no attrs / datasetId restriction (those select the queried
        entities' attributes)."""
        pick, omit = linked(iri, self.pick, self.omit)
        return replace(self, attrs=None, datasets=None, pick=pick, omit=omit)


@dataclass(frozen=True)
class Inline:
    """Linked Entities to embed (``join=inline``): rows by id, levels left, the ids on the current path."""

    rows: Mapping[str, Any]
    level: int
    path: frozenset[str] = frozenset()

    def below(self, entity_id: str) -> Inline:
        return Inline(self.rows, self.level - 1, self.path | {entity_id})


def kept_attributes(row: Any, view: View) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The (IRI, instances) of ``row`` that ``view`` keeps (attrs, pick / omit, datasetId)."""
    wanted, pick, omit, datasets = view.attrs, view.pick, view.omit, view.datasets
    for iri, instances in row["attrs"].items():
        if wanted is not None and iri not in wanted:
            continue
        if (pick is not None or omit is not None) and not keeps(iri, pick, omit):
            continue
        if datasets is not None:
            instances = [i for i in instances if i.get("datasetId", "@none") in datasets]
            if not instances:
                continue
        yield iri, instances


def relationship_targets(instances: list[dict[str, Any]]) -> list[str]:
    """The entity ids the Relationship / ListRelationship instances point to, in order, without repeats."""
    found: list[str] = []
    for inst in instances:
        kind = inst.get("type")
        if kind == "Relationship":
            obj = inst.get("object")
            items = obj if isinstance(obj, list) else [obj]
        elif kind == "ListRelationship":
            items = [o.get("object") if isinstance(o, dict) else o for o in inst.get("objectList") or []]
        else:
            continue
        for item in items:
            if isinstance(item, str) and item not in found:
                found.append(item)
    return found


def entity_members(row: Any, ctx: Context, view: View) -> dict[str, Any]:
    """The entity's id, type and scope that pick / omit keep (``row`` has id, types, scopes)."""
    pick, omit = view.pick, view.omit
    projected = pick is not None or omit is not None
    out: dict[str, Any] = {}
    if not projected or keeps("id", pick, omit):
        out["id"] = row["id"]
    if not projected or keeps("type", pick, omit):
        types = [ctx.compact_type(t) for t in row["types"]]
        out["type"] = types[0] if len(types) == 1 else types
    scopes = row["scopes"]
    if scopes and (not projected or keeps("scope", pick, omit)):
        out["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    return out


def render_entity(row: Any, ctx: Context, view: View, inline: Inline | None = None) -> dict[str, Any]:
    """``row`` has id, types, scopes, created_at, modified_at, attrs (a database record or a dict)."""
    pick, omit = view.pick, view.omit
    projected = pick is not None or omit is not None
    out = entity_members(row, ctx, view)
    born = ""
    if view.sys_attrs:
        born = iso(row["created_at"])
        if not projected or keeps("createdAt", pick, omit):
            out["createdAt"] = born
        if not projected or keeps("modifiedAt", pick, omit):
            out["modifiedAt"] = iso(row["modified_at"])
    compact = ctx.compact_attr
    if projected or view.attrs is not None or view.datasets is not None:
        attributes: Any = kept_attributes(row, view)
    else:
        attributes = row["attrs"].items()
    linking = inline is not None and inline.level > 0
    bare = not view.sys_attrs  # the short path for most instances: a type and a plain value (_bare_instance)
    for iri, instances in attributes:
        link = None
        if linking and any(i.get("type") in RELATIONSHIPS for i in instances):
            link = (inline.below(row["id"]), view.for_linked(iri))  # type: ignore[union-attr]
        elif bare and len(instances) == 1 and len(instances[0]) == 2:
            fast = _bare_instance(instances[0], ctx, view.format)
            if fast is not _GENERAL:
                out[compact(iri)] = fast
                continue
        out[compact(iri)] = render_attribute(instances, ctx, view, born, link)
    return out


def render_attribute(instances: list[dict[str, Any]], ctx: Context, view: View, born: str = "",
                     link: tuple[Inline, View] | None = None) -> Any:
    """``born``: the entity's createdAt, the default of its instances' timestamps (see broker.model);
    ``link``: the Linked Entities to embed and their view (a Relationship of a ``join=inline`` request)."""
    if len(instances) == 1:
        if view.format == SIMPLIFIED:
            return _simplified(instances[0], ctx, view, link)
        return render_instance(instances[0], ctx, view, born, link)
    if view.format == SIMPLIFIED:
        return {"dataset": {inst.get("datasetId", "@none"): _simplified(inst, ctx, view, link)
                            for inst in instances}}
    return [render_instance(inst, ctx, view, born, link) for inst in instances]


_GENERAL = object()
_BARE_MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object"}


def _bare_instance(inst: dict[str, Any], ctx: Context, form: str) -> Any:
    """What ``render_instance`` / ``_simplified`` give an instance that is only a type and its plain value (a
    scalar Property, a GeoProperty, a Relationship to one entity), without their general walk over the
    members: most instances of real entities are such (a 20-entity page has hundreds); ``_GENERAL`` for any
    other instance."""
    attr_type = inst["type"]
    member = _BARE_MEMBER.get(attr_type)
    value = inst.get(member) if member is not None else None
    if value is None:
        return _GENERAL
    if attr_type == "Property":
        if type(value) not in _SCALARS or not ctx.scalars_plain:
            return _GENERAL
    elif attr_type == "GeoProperty":
        if type(value) is not dict:
            return _GENERAL
    elif type(value) is not str:
        return _GENERAL
    if form == NORMALIZED:
        return {"type": attr_type, member: value}
    if form == CONCISE and attr_type == "Relationship":
        return {"object": value}
    return value  # concise and simplified: the bare value


def render_instance(inst: dict[str, Any], ctx: Context, view: View, born: str = "",
                    link: tuple[Inline, View] | None = None) -> Any:
    attr_type = inst["type"]
    out: dict[str, Any] = {"type": attr_type}
    for key, member in inst.items():
        if key == "type":
            continue
        if ":" in key:  # a sub-attribute
            out[ctx.compact_attr(key)] = render_instance(member, ctx, view, born)
        elif key == "value":
            out["value"] = member if attr_type == "GeoProperty" else _value(member, ctx)
        elif key == "valueList":
            out["valueList"] = [_value(v, ctx) for v in member]
        elif key in ("vocab", "objectType", "valueType"):
            out[key] = _compact_vocab(member, ctx)
        elif key == "languageMap" and view.lang is not None:
            tag = choose_tag(member, parse_lang(view.lang))
            del out["type"]
            out["type"] = "Property"
            out["value"] = member.get(tag) if tag is not None else None
            if tag is not None and tag != "@none":
                out["lang"] = tag
        elif key in ("createdAt", "modifiedAt"):
            continue
        else:
            out[key] = member
    if view.sys_attrs:
        out["createdAt"], out["modifiedAt"] = instance_times(inst, born)
    if link is not None and attr_type in RELATIONSHIPS:
        embedded = _embedded(inst, ctx, link)
        if embedded:
            if attr_type == "Relationship":
                out["entity"] = embedded[0] if len(embedded) == 1 else embedded
            else:
                out["entityList"] = embedded
    if view.format == CONCISE:
        return _concise(out, attr_type)
    return out


def _embedded(inst: dict[str, Any], ctx: Context, link: tuple[Inline, View]) -> list[dict[str, Any]]:
    inline, sub_view = link
    found = []
    for target in relationship_targets([inst]):
        row = inline.rows.get(target)
        if row is not None and target not in inline.path:
            found.append(render_entity(row, ctx, sub_view, inline))
    return found


def _concise(out: dict[str, Any], attr_type: str) -> Any:
    del out["type"]
    if attr_type in ("Property", "GeoProperty") and len(out) == 1 and "value" in out:
        value = out["value"]
        # a bare object would read back as an attribute with members: keep {"value": ...} for those
        if attr_type == "GeoProperty" or not isinstance(value, dict):
            return value
    return out


def _simplified(inst: dict[str, Any], ctx: Context, view: View, link: tuple[Inline, View] | None = None
                ) -> Any:
    """4.5.4: Property -> value, GeoProperty -> geometry, Relationship -> object, ListProperty /
    ListRelationship -> the bare array; LanguageProperty, VocabProperty, JsonProperty keep a one-member
    object ({"languageMap": ...}, {"vocab": ...}, {"json": ...}) unless a language filter picks a string."""
    attr_type = inst["type"]
    if attr_type == "Property":
        return _value(inst["value"], ctx)
    if attr_type == "GeoProperty":
        return inst["value"]
    if attr_type == "LanguageProperty":
        lmap = inst["languageMap"]
        return pick_language(lmap, view.lang) if view.lang is not None else {"languageMap": lmap}
    if attr_type == "VocabProperty":
        return {"vocab": _compact_vocab(inst["vocab"], ctx)}
    if attr_type == "JsonProperty":
        return {"json": inst["json"]}
    if attr_type == "ListProperty":
        return [_value(v, ctx) for v in inst["valueList"]]
    if attr_type == "Relationship":
        obj = inst["object"]
        if link is None:
            return obj
        if isinstance(obj, list):
            return [_linked_simplified(o, ctx, link) for o in obj]
        return _linked_simplified(obj, ctx, link)
    objects = [o["object"] if isinstance(o, dict) else o for o in inst["objectList"]]  # ListRelationship
    if link is None:
        return objects
    return [_linked_simplified(o, ctx, link) for o in objects]


def _linked_simplified(target: Any, ctx: Context, link: tuple[Inline, View]) -> Any:
    inline, sub_view = link
    row = inline.rows.get(target) if isinstance(target, str) else None
    if row is None or target in inline.path:
        return target
    return render_entity(row, ctx, sub_view, inline)


def _value(value: Any, ctx: Context) -> Any:
    if type(value) in _SCALARS and ctx.scalars_plain:
        return value
    return ctx.compact_value(value)


def _compact_vocab(member: Any, ctx: Context) -> Any:
    if isinstance(member, list):
        return [ctx.compact_vocab(v) for v in member]
    return ctx.compact_vocab(member)

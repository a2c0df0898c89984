"""Output: the internal entity form rendered as normalized, concise or simplified (keyValues) NGSI-LD.

Names and values are compacted with the request's ``Context``; ``sysAttrs`` adds createdAt/modifiedAt;
``attrs`` (a set of expanded IRIs) projects; ``lang`` picks one language of LanguageProperties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..jsonld import Context
from .operations import instance_times, iso

NORMALIZED, CONCISE, SIMPLIFIED = "normalized", "concise", "simplified"
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class View:
    """How to render: format, sysAttrs, attribute projection (expanded IRIs or None for all), language."""

    format: str = NORMALIZED
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    lang: str | None = None


def render_entity(row: Any, ctx: Context, view: View) -> dict[str, Any]:
    """``row`` has id, types, scopes, created_at, modified_at, attrs (a database record or a dict)."""
    types = [ctx.compact_type(t) for t in row["types"]]
    out: dict[str, Any] = {"id": row["id"], "type": types[0] if len(types) == 1 else types}
    scopes = row["scopes"]
    if scopes:
        out["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    if view.sys_attrs:
        out["createdAt"] = iso(row["created_at"])
        out["modifiedAt"] = iso(row["modified_at"])
    wanted = view.attrs
    born = iso(row["created_at"]) if view.sys_attrs else ""
    for iri, instances in row["attrs"].items():
        if wanted is not None and iri not in wanted:
            continue
        out[ctx.compact_attr(iri)] = render_attribute(instances, ctx, view, born)
    return out


def render_attribute(instances: list[dict[str, Any]], ctx: Context, view: View, born: str = "") -> Any:
    """``born``: the entity's createdAt, the default of its instances' timestamps (see broker.model)."""
    if view.format == SIMPLIFIED:
        rendered = [_simplified(inst, ctx, view) for inst in instances]
        if len(instances) > 1:
            return {"dataset": {inst.get("datasetId", "@none"): r for inst, r in zip(instances, rendered)}}
        return rendered[0]
    rendered = [render_instance(inst, ctx, view, born) for inst in instances]
    return rendered[0] if len(rendered) == 1 else rendered


def render_instance(inst: dict[str, Any], ctx: Context, view: View, born: str = "") -> Any:
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
            out.pop("type")
            out["type"] = "Property"
            out["value"] = pick_language(member, view.lang)
            out["lang"] = _picked_tag(member, view.lang)
        elif key in ("createdAt", "modifiedAt"):
            continue
        else:
            out[key] = member
    if view.sys_attrs:
        out["createdAt"], out["modifiedAt"] = instance_times(inst, born)
    if view.format == CONCISE:
        return _concise(out, attr_type)
    return out


def _concise(out: dict[str, Any], attr_type: str) -> Any:
    del out["type"]
    if attr_type in ("Property", "GeoProperty") and len(out) == 1 and "value" in out:
        value = out["value"]
        # a bare object would read back as an attribute with members: keep {"value": ...} for those
        if attr_type == "GeoProperty" or not isinstance(value, dict):
            return value
    return out


def _simplified(inst: dict[str, Any], ctx: Context, view: View) -> Any:
    attr_type = inst["type"]
    if attr_type == "Property":
        return _value(inst["value"], ctx)
    if attr_type == "GeoProperty":
        return inst["value"]
    if attr_type == "Relationship":
        return inst["object"]
    if attr_type == "LanguageProperty":
        lmap = inst["languageMap"]
        return pick_language(lmap, view.lang) if view.lang is not None else {"languageMap": lmap}
    if attr_type == "VocabProperty":
        return {"vocab": _compact_vocab(inst["vocab"], ctx)}
    if attr_type == "JsonProperty":
        return {"json": inst["json"]}
    if attr_type == "ListProperty":
        return {"valueList": [_value(v, ctx) for v in inst["valueList"]]}
    return {"objectList": [o["object"] for o in inst["objectList"]]}


def _value(value: Any, ctx: Context) -> Any:
    if type(value) in _SCALARS and ctx.scalars_plain:
        return value
    return ctx.compact_value(value)


def _compact_vocab(member: Any, ctx: Context) -> Any:
    if isinstance(member, list):
        return [ctx.compact_vocab(v) for v in member]
    return ctx.compact_vocab(member)


def _picked_tag(lmap: dict[str, Any], lang: str) -> str:
    """The language tag ``lang`` selects in a language map (``*`` or a missing tag fall back)."""
    for tag in (t.strip() for t in lang.split(",")):
        if tag in lmap:
            return tag
    if "@none" in lmap:
        return "@none"
    return next(iter(lmap), "@none")


def pick_language(lmap: dict[str, Any], lang: str) -> Any:
    return lmap.get(_picked_tag(lmap, lang))

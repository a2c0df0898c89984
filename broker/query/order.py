"""``orderBy`` (GS CIM 009 4.23): parsed to ``OrderKey`` lists and compiled to an ORDER BY.

``orderBy`` is a comma-separated list of ``path[;asc|;desc]``; a path is ``id``, ``type``, ``createdAt``,
``modifiedAt`` or an attribute name, followed by ``.``-separated sub-attribute names or instance members
(``createdAt``, ``modifiedAt``, ``observedAt``, ``unitCode``, ``datasetId``) and ``[key]`` members of a
compound value. An attribute is compared by the value of its default instance (the first one if it has
none). Values compare as 4.23.2 says: numbers before strings before booleans before arrays and objects,
absent values last, strings by code point (or by the ICU collation named by ``collation``, see
``broker.store.query.collation_name``); the entity id breaks ties. Distance ordering (``dist-asc`` /
``dist-desc``) belongs to the geo-queries and is refused here.

Every user value is a bind parameter; a collation name is spliced only after ``pg_collation`` named it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import bad_request
from ..jsonld import Context
from ..model.entity import attribute_iri

ENTITY_KEYS = {"id": "id", "type": "types", "createdAt": "created_at", "modifiedAt": "modified_at"}
INSTANCE_MEMBERS = ("createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId")
_PATH = re.compile(r"([^.\[\];,]+)((?:\.[^.\[\];,]+)*)((?:\[[^\[\];,]+\])*)")
_COLLATION = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")


@dataclass
class OrderKey:
    """One ordering criterion: an entity column, or an attribute path (IRIs / member names)."""

    column: str | None = None
    attribute: str | None = None
    steps: list[str] = field(default_factory=list)  # sub-attribute IRIs, then maybe one instance member
    subitems: list[str] = field(default_factory=list)  # expanded keys of a compound value
    descending: bool = False


def parse_order_by(text: str, ctx: Context) -> list[OrderKey]:
    keys: list[OrderKey] = []
    for item in text.split(","):
        path, _, direction = item.strip().partition(";")
        direction = direction.strip()
        if direction in ("dist-asc", "dist-desc"):
            raise bad_request("orderBy: distance ordering needs a geo-query reference point (not supported here)")
        if direction not in ("", "asc", "desc"):
            raise bad_request(f"orderBy: unknown direction {direction!r} (asc or desc)")
        found = _PATH.fullmatch(path.strip())
        if found is None:
            raise bad_request(f"orderBy: {path!r} is not a member path (GS CIM 009 4.23)")
        head, dotted, brackets = found.groups()
        steps = [s for s in dotted.split(".") if s]
        subitems = [ctx.expand_term(s) for s in re.findall(r"\[([^\]]+)\]", brackets)]
        key = OrderKey(descending=direction == "desc")
        if head in ENTITY_KEYS:
            if steps or subitems:
                raise bad_request(f"orderBy: {head} has no members")
            key.column = ENTITY_KEYS[head]
        else:
            key.attribute = attribute_iri(head, ctx)
            for i, step in enumerate(steps):
                if step in INSTANCE_MEMBERS:
                    if i != len(steps) - 1:
                        raise bad_request(f"orderBy: {step} must end the path {path!r}")
                    key.steps.append(step)
                else:
                    key.steps.append(attribute_iri(step, ctx))
            key.subitems = subitems
        keys.append(key)
    return keys


def _value_sql(key: OrderKey, args: list[Any]) -> str:
    args.append(key.attribute)
    inst = (f"(SELECT i.value FROM jsonb_array_elements(attrs->${len(args)}) AS i "
            f"ORDER BY i.value ? 'datasetId' LIMIT 1)")
    member = None
    for step in key.steps:
        if step in INSTANCE_MEMBERS:
            member = step
        else:
            args.append(step)
            inst = f"({inst}->${len(args)})"
    born = "to_jsonb(to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
    if member == "createdAt":  # instance times default to modifiedAt, then the entity's creation
        value = f"coalesce({inst}->'createdAt', {inst}->'modifiedAt', {born})"
    elif member == "modifiedAt":
        value = f"coalesce({inst}->'modifiedAt', {born})"
    elif member is not None:
        value = f"({inst}->'{member}')"
    else:
        value = (f"coalesce({inst}->'value', {inst}->'object', {inst}->'vocab', {inst}->'languageMap', "
                 f"{inst}->'json', {inst}->'valueList', {inst}->'objectList')")
    for sub in key.subitems:
        args.append(sub)
        value = f"({value}->${len(args)})"
    return f"(SELECT CASE WHEN jsonb_typeof(v) = 'object' AND v ? '@value' THEN v->'@value' ELSE v END " \
           f"FROM (SELECT {value} AS v) AS x)"


def order_clause(keys: list[OrderKey], args: list[Any], collation: str | None = None
                 ) -> tuple[str, str]:
    """(the LATERAL select list computing the attribute sort values, the ORDER BY list)."""
    lateral, order = [], []
    coll = f'"{collation}"' if collation else '"C"'
    for n, key in enumerate(keys):
        d = " DESC" if key.descending else ""
        if key.column is not None:
            if key.column == "id":
                order.append(f"id COLLATE {coll}{d}")
            elif key.column == "types":
                order.append(f"types[1] COLLATE {coll}{d}")
            else:
                order.append(f"{key.column}{d}")
            continue
        lateral.append(f"{_value_sql(key, args)} AS o{n}")
        v = f"o.o{n}"
        order += [f"({v} IS NULL OR jsonb_typeof({v}) = 'null')",
                  (f"CASE jsonb_typeof({v}) WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2 "
                   f"WHEN 'array' THEN 3 WHEN 'object' THEN 4 END{d}"),
                  f"CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::numeric END{d}",
                  f"CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} #>> '{{}}' END COLLATE {coll}{d}",
                  f"{v}{d}"]
    order.append("id")
    return ", ".join(lateral), ", ".join(order)


def collation_candidates(tag: str) -> list[str]:
    """The ICU locales to try for a ``collation`` parameter (an IETF BCP 47 tag), most specific first."""
    if not _COLLATION.fullmatch(tag):
        raise bad_request(f"collation: {tag!r} is not a language tag (GS CIM 009 4.23.3)")
    candidates = [tag]
    base = tag.split("-u-", 1)[0].split("-x-", 1)[0]  # without its extensions: the language's own order
    while base and base not in candidates:
        candidates.append(base)
        base = base.rpartition("-")[0]
    return candidates

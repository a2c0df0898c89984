"""The temporal representation of an entity (GS CIM 009 4.5.7 to 4.5.9).

* normalized: every attribute (the scope too, 4.5.6) an array of its instances (oldest first), each with its ``instanceId`` and,
  where it has one, ``observedAt``; ``sysAttrs`` adds createdAt / modifiedAt (and deletedAt on deletion
  markers, whose value is the NGSI-LD Null);
* ``temporalValues`` (simplified): ``{"type": …, "values": [[value, time], …]}`` — ``objects`` for
  Relationships, ``languageMaps``, ``vocabs``, ``jsons``, ``valueLists``, ``objectLists`` for the others;
  the time is the query's ``timeproperty``;
* ``aggregatedValues``: ``{"type": …, "<method>": [[value, periodStart, periodEnd], …]}``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..jsonld import Context
from ..model.entity import SCOPE_IRI
from ..model.render import View, entity_members, render_instance
from ..model.values import NGSI_LD_NULL
from .store import METHOD_COLUMNS

INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
# the temporalValues member and the instance member holding the value, per attribute type
SIMPLIFIED_MEMBERS = {
    "Property": ("values", "value"), "GeoProperty": ("values", "value"), "Relationship": ("objects", "object"),
    "LanguageProperty": ("languageMaps", "languageMap"), "VocabProperty": ("vocabs", "vocab"),
    "JsonProperty": ("jsons", "json"), "ListProperty": ("valueLists", "valueList"),
    "ListRelationship": ("objectLists", "objectList"),
}
# the temporalValues of these attribute types wrap each value in its member: [{"json": …}, time]
WRAPPED = frozenset(("languageMap", "vocab", "json"))
_UTC = timezone.utc


def time_text(value: datetime) -> str:
    """A database timestamp as an NGSI-LD DateTime: whole seconds without a fraction (as clients write them)."""
    value = value.astimezone(_UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{value.microsecond:06d}Z" if value.microsecond else text + "Z"


def entity_head(row: Any, ctx: Context, view: View) -> dict[str, Any]:
    """id, type (and with sysAttrs createdAt) of a ``temporal_entities`` row, as pick/omit allow. The scope is
    not here: it is an attribute of the temporal representation (4.5.6), its instances read with the others."""
    out = entity_members(row, ctx, view)
    out.pop("scope", None)
    if view.sys_attrs and view.pick is None and view.omit is None:
        out["createdAt"] = time_text(row["created_at"])
        if row["deleted_at"] is not None:
            out["deletedAt"] = time_text(row["deleted_at"])
    return out


def instance_view(view: View) -> View:
    """How the instances of a temporal answer render (the answer's ``view`` minus what applies to entities)."""
    return View(lang=view.lang)


def normalized_instance(row: Any, ctx: Context, view: View, inner: View) -> dict[str, Any]:
    """One instance (a row of ``store.instances``); ``inner`` is ``instance_view(view)``, built once."""
    inst = row["inst"]
    deleted = row["deleted_at"] is not None
    if deleted:
        inst = dict(inst)
        member = SIMPLIFIED_MEMBERS.get(inst.get("type", "Property"), ("", "value"))[1]
        if row["attr"] == SCOPE_IRI:  # a removed scope is no scope: an empty list (ETSI 020_19)
            inst[member] = []
        else:
            inst[member] = {"@none": NGSI_LD_NULL} if member == "languageMap" else NGSI_LD_NULL
    out = render_instance(inst, ctx, inner)
    out["instanceId"] = INSTANCE_PREFIX + str(row["instance_id"])
    if view.sys_attrs:
        out["createdAt"] = time_text(row["created_at"])
        out["modifiedAt"] = time_text(row["modified_at"])
    if deleted:
        out["deletedAt"] = time_text(row["deleted_at"])
    return out


def simplified_attribute(rows: list[Any], ctx: Context, view: View, inner: View, timeproperty: str,
                         kind: str = "Property") -> Any:
    """temporalValues (4.5.9): the values paired with their time; one object per datasetId, a list of them
    when there are several. An attribute whose instances were all cut by paging (``rows`` empty) keeps its
    ``kind`` and an empty list of values."""
    if not rows:
        return {"type": kind, SIMPLIFIED_MEMBERS.get(kind, ("values", ""))[0]: []}
    by_dataset: dict[str | None, list[Any]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset_id"], []).append(row)
    out = [_simplified_dataset(recs, ctx, view, inner, timeproperty) for recs in by_dataset.values()]
    return out[0] if len(out) == 1 else out


def _simplified_dataset(rows: list[Any], ctx: Context, view: View, inner: View, timeproperty: str
                        ) -> dict[str, Any]:
    kind = rows[-1]["inst"].get("type", "Property")
    member, source = SIMPLIFIED_MEMBERS.get(kind, ("values", "value"))
    out: dict[str, Any] = {"type": kind}
    if rows[0]["dataset_id"] is not None:
        out["datasetId"] = rows[0]["dataset_id"]
    pairs = []
    for row in rows:
        rendered = normalized_instance(row, ctx, view, inner)
        own = SIMPLIFIED_MEMBERS.get(rendered["type"], ("values", "value"))[1]
        value = rendered.get(own, rendered.get("value"))
        if source in WRAPPED and own == source:  # 4.5.9: these keep their member name around the value
            value = {source: value}
        elif own == "objectList" and isinstance(value, list):  # 4.5.9 Example 7: the bare object URIs
            value = [o.get("object", o) if isinstance(o, dict) else o for o in value]
        pairs.append([value, _time_of(row, rendered, timeproperty)])
    out[member] = pairs
    return out


def _time_of(row: Any, rendered: dict[str, Any], timeproperty: str) -> str:
    """The instance's time in temporalValues: its observedAt as sent, or the time property's column (``t``;
    for observedAt, an instance without one was recorded at its createdAt)."""
    if timeproperty == "observedAt" and "observedAt" in rendered:
        return rendered["observedAt"]
    return time_text(row["t"])


def aggregated_attribute(kind: str, rows: list[Any], methods: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    spans = [(time_text(row["ps"]), time_text(row["pe"])) for row in rows]
    for method in methods:
        column = METHOD_COLUMNS[method]
        as_float = method not in ("totalCount", "distinctCount")  # numeric columns arrive as float or Decimal
        series = []
        for row, (start, end) in zip(rows, spans):
            value = row[column]
            if value is not None:
                series.append([float(value) if as_float else value, start, end])
        out[method] = series
    return out

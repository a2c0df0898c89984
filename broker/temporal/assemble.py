"""Temporal entities assembled from their ``temporal_entities`` rows and their history reads.

``assemble`` reads the instances (or aggregates) of a page of entities in one statement and renders each
entity in the asked mode (normalized, temporalValues, aggregatedValues). ``Cut`` reports when an
attribute had more instances than the instance limit: the caller answers 206 with a Content-Range giving
the time span actually returned (GS CIM 009 6.3.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..jsonld import Context
from ..model.entity import SCOPE_IRI
from ..model.projection import keeps
from ..model.render import View
from . import render, store
from .params import TemporalQuery

NORMALIZED, TEMPORAL_VALUES, AGGREGATED = "normalized", "temporalValues", "aggregatedValues"


@dataclass
class Cut:
    """The time span returned when some attribute's instances were cut at the limit."""

    first: datetime | None = None
    last: datetime | None = None
    limit: int = 0


def _attrs_of(view: View) -> list[str] | None:
    return sorted(view.attrs) if view.attrs is not None else None


def _wanted(iri: str, view: View) -> bool:
    if view.pick is None and view.omit is None:
        return True
    # the scope's history is an attribute here, but pick / omit name it as the core member it is
    return keeps("scope" if iri == SCOPE_IRI else iri, view.pick, view.omit)


def _datasets(view: View) -> list[str | None] | None:
    if view.datasets is None:
        return None
    return [None if d == "@none" else d for d in view.datasets]


async def assemble(conn: asyncpg.Connection, schema: str, rows: list[Any], ctx: Context, view: View,
                   query: TemporalQuery, mode: str, limit: int) -> tuple[list[dict[str, Any]], Cut | None]:
    ids = [r["id"] for r in rows]
    attrs = _attrs_of(view)
    out = {r["id"]: render.entity_head(r, ctx, view) for r in rows}
    if not ids:
        return [], None
    if mode == AGGREGATED:
        for rec in await store.aggregates(conn, schema, ids, attrs, query, _datasets(view)):
            if not _wanted(rec["attr"], view):
                continue
            entity = out[rec["entity_id"]]
            name = ctx.compact_attr(rec["attr"])
            bucket = entity.setdefault(name, {"rows": [], "kind": rec["kind"]})
            bucket["rows"].append(rec)
        for entity in out.values():
            for name, member in list(entity.items()):
                if isinstance(member, dict) and "rows" in member:
                    entity[name] = render.aggregated_attribute(member["kind"], member["rows"], query.aggr_methods)
        return list(out.values()), None
    newest_first = query.last_n is not None
    fetch = min(query.last_n, limit + 1) if newest_first else limit + 1  # type: ignore[type-var]
    grouped: dict[tuple[str, str], list[Any]] = {}
    for rec in await store.instances(conn, schema, ids, attrs, query, fetch, _datasets(view),
                                     sys_attrs=view.sys_attrs):
        if _wanted(rec["attr"], view):
            grouped.setdefault((rec["entity_id"], rec["attr"]), []).append(rec)
    for recs in grouped.values():  # oldest first (the database returns each pair's in its scan order)
        recs.sort(key=_instance_order)
    # temporalValues keep the type of an attribute the page cut emptied: taken before the cut
    kinds = {key: recs[-1]["inst"].get("type", "Property") for key, recs in grouped.items()} \
        if mode == TEMPORAL_VALUES else {}
    cut = _cut(grouped, query, limit)
    inner = render.instance_view(view)
    for (entity_id, iri), recs in sorted(grouped.items(), key=lambda item: item[0]):
        name = ctx.compact_attr(iri)
        if mode == TEMPORAL_VALUES:
            out[entity_id][name] = render.simplified_attribute(recs, ctx, view, inner, query.timeproperty,
                                                               kinds[(entity_id, iri)])
        else:
            out[entity_id][name] = [render.normalized_instance(r, ctx, view, inner) for r in recs]
    return list(out.values()), cut


def _instance_order(rec: Any) -> tuple[Any, Any]:
    return rec["t"], rec["instance_id"]


def _cut(grouped: dict[tuple[str, str], list[Any]], query: TemporalQuery, limit: int) -> Cut | None:
    """Keep at most ``limit`` instances in the whole response (GS CIM 009 6.3.10): the oldest ones (with
    lastN the newest), cut at one moment for every attribute so that no attribute misses an instance inside
    the returned time range; an attribute left with none stays, empty. Lists are trimmed in place."""
    newest_first = query.last_n is not None
    times = sorted((r["t"] for recs in grouped.values() for r in recs), reverse=newest_first)
    if len(times) <= limit:
        return None
    edge = times[limit - 1]
    for key, recs in grouped.items():
        grouped[key] = [r for r in recs if (r["t"] >= edge if newest_first else r["t"] <= edge)]
    kept = times[:limit]
    first = kept[0]
    if newest_first:
        first = {"before": query.time_at, "between": query.end_time_at}.get(query.timerel or "", first) or first
    elif query.timerel in ("after", "between"):
        first = query.time_at or first
    return Cut(first, edge, limit)


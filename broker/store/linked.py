"""Linked Entity retrieval (GS CIM 009 4.5.23): ``fetch_by_ids`` reads a batch of one tenant's entities by
id; ``collect_linked`` follows the Relationships of rendered rows ``join.level`` levels deep (the ``join`` of
Retrieve / Query Entities and of notifications)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from ..model.render import View, kept_attributes, relationship_targets

from .entities import COLUMNS
from .tenants import Tenants

BATCH = 1000


async def fetch_by_ids(pool: asyncpg.Pool, tenants: Tenants, tenant: str, ids: Iterable[str]
                       ) -> dict[str, asyncpg.Record]:
    """The entities among ``ids`` that exist (in batches of ``BATCH`` ids), by id."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    schema = await tenants.schema(tenant, create=False)
    found: dict[str, asyncpg.Record] = {}
    for start in range(0, len(wanted), BATCH):
        rows = await pool.fetch(f"SELECT {COLUMNS} FROM {schema}.entities WHERE id = ANY($1::text[])",
                                wanted[start:start + BATCH])
        found.update((row["id"], row) for row in rows)
    return found


async def collect_linked(pool: asyncpg.Pool, tenants: Tenants, tenant: str, rows: list[Any], view: View,
                         level: int, contained_by: frozenset[str] = frozenset()
                         ) -> tuple[dict[str, Any], list[tuple[Any, View]]]:
    """The Linked Entities of ``rows`` up to ``level`` levels: (rows by id, including ``rows``; the linked
    ones in discovery order with the view each is rendered with)."""
    known: dict[str, Any] = {row["id"]: row for row in rows}
    missing: set[str] = set()
    found: list[tuple[Any, View]] = []
    placed = set(known) | contained_by
    frontier: list[tuple[Any, View]] = [(row, view) for row in rows]
    for _ in range(level):
        pairs: list[tuple[str, View]] = []
        for row, row_view in frontier:
            for iri, instances in kept_attributes(row, row_view):
                targets = relationship_targets(instances)
                if targets:
                    sub = row_view.for_linked(iri)
                    pairs += [(t, sub) for t in targets if t not in contained_by]
        wanted = [t for t, _ in pairs if t not in known and t not in missing]
        if wanted:
            got = await fetch_by_ids(pool, tenants, tenant, wanted)
            known.update(got)
            missing.update(t for t in wanted if t not in got)
        frontier = []
        for target, sub in pairs:
            if target in known and target not in placed:
                placed.add(target)
                frontier.append((known[target], sub))
        found += frontier
        if not frontier:
            break
    return known, found

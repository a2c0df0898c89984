"""History reads: instances per (entity, attribute) in a time window, lastN, and aggregation in SQL.

Every read has the same shape: the (entity, attribute) pairs asked for — the product of the entities and
``attrs``, or each entity's attributes found by a skip scan of the (entity_id, attr, at) index, a handful of
index probes instead of reading every instance — then, for each pair, an ordered index range scan of its
window with a LIMIT (``LATERAL``): a window, lastN (the scan backwards) and a page cost the instances they
return, however long the history is.

Aggregation runs in the database too: the periods (``generate_series`` from the window's start, or the
pair's first instance, by ``aggrPeriodDuration``) joined to the pair's instances, one GROUP BY computing
every method asked for from the typed ``num`` column and the instance's value.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .params import TemporalQuery, window
from .tables import check_schema_name

INSTANCE_COLUMNS = "attr, dataset_id, instance_id, observed_at, created_at, modified_at, deleted_at, inst"
# the value an instance is compared by (distinctCount), whatever its attribute type
VALUE = ("coalesce(inst -> 'value', inst -> 'object', inst -> 'languageMap', inst -> 'vocab', inst -> 'json', "
         "inst -> 'valueList', inst -> 'objectList')")


def _pairs(schema: str, attrs: list[str] | None, args: list[Any]) -> str:
    """A CTE ``p(e, a)``: the (entity, attribute) pairs of the entity ids at $1 (``attrs``: those only)."""
    t = f"{schema}.attr_instances"
    if attrs is not None:
        args.append(attrs)
        return (f"p AS (SELECT e.id AS e, a.attr AS a FROM unnest($1::text[]) e(id) "
                f"CROSS JOIN unnest(${len(args)}::text[]) a(attr))")
    return (f"p0 AS (SELECT e.id AS e, (SELECT attr FROM {t} WHERE entity_id = e.id ORDER BY attr LIMIT 1) AS a "
            f"FROM unnest($1::text[]) e(id) "
            f"UNION ALL SELECT p0.e, (SELECT attr FROM {t} WHERE entity_id = p0.e AND attr > p0.a "
            f"ORDER BY attr LIMIT 1) FROM p0 WHERE p0.a IS NOT NULL), "
            f"p AS (SELECT e, a FROM p0 WHERE a IS NOT NULL)")


def time_filter(query: TemporalQuery, args: list[Any], datasets: list[str | None] | None) -> str:
    """The window, dataset and deletion conditions on one pair's instances (alias ``i``)."""
    col = f"i.{query.column}"
    parts = []
    if query.timeproperty == "deletedAt":
        parts.append("i.deleted_at IS NOT NULL")
    else:
        parts.append("i.deleted_at IS NULL")
        if query.timeproperty == "observedAt" and query.timerel is not None:
            parts.append("i.observed_at IS NOT NULL")
    start, end = window(query)
    if start is not None:
        args.append(start)
        parts.append(f"{col} >= ${len(args)}")  # after and between include timeAt, before excludes it
    if end is not None:
        args.append(end)
        parts.append(f"{col} < ${len(args)}")
    if datasets is not None:
        named = [d for d in datasets if d is not None]
        args.append(named)
        cond = f"i.dataset_id = ANY(${len(args)}::text[])"
        parts.append(f"({cond} OR i.dataset_id IS NULL)" if None in datasets else cond)
    return " AND ".join(parts)


async def instances(conn: asyncpg.Connection, schema: str, entity_ids: list[str], attrs: list[str] | None,
                    query: TemporalQuery, limit: int, datasets: list[str | None] | None = None
                    ) -> list[asyncpg.Record]:
    """The instances of each (entity, attribute): the ``limit`` oldest (with lastN: the ``limit`` most recent),
    returned oldest first."""
    check_schema_name(schema)
    args: list[Any] = [entity_ids]
    pairs = _pairs(schema, attrs, args)
    cond = time_filter(query, args, datasets)
    col = f"i.{query.column}"
    args.append(limit)
    order = "DESC" if query.last_n is not None else "ASC"
    sql = (f"WITH RECURSIVE {pairs} "
           f"SELECT p.e AS entity_id, r.* FROM p, LATERAL (SELECT {', '.join('i.' + c for c in INSTANCE_COLUMNS.split(', '))}, "
           f"{col} AS t FROM {schema}.attr_instances i WHERE i.entity_id = p.e AND i.attr = p.a AND {cond} "
           f"ORDER BY {col} {order}, i.instance_id LIMIT ${len(args)}) r ORDER BY p.e, p.a, r.t, r.instance_id")
    return await conn.fetch(sql, *args)


async def aggregates(conn: asyncpg.Connection, schema: str, entity_ids: list[str], attrs: list[str] | None,
                     query: TemporalQuery, datasets: list[str | None] | None = None) -> list[asyncpg.Record]:
    """One row per (entity, attribute, period) holding instances: its start, end and every method's value."""
    check_schema_name(schema)
    args: list[Any] = [entity_ids]
    pairs = _pairs(schema, attrs, args)
    cond = time_filter(query, args, datasets)
    col = f"i.{query.column}"
    start, end = window(query)
    args.append(start)
    start_ref = f"${len(args)}::timestamptz"
    args.append(end)
    end_ref = f"${len(args)}::timestamptz"
    period = query.aggr_period
    if period.zero:
        # one period: the window, or the pair's instances' own span (its last instance included)
        periods = f"SELECT coalesce({start_ref}, b.lo) AS ps, coalesce({end_ref}, b.hi) AS pe"
        within = f"{col} >= w.ps AND ({col} < w.pe OR ({end_ref} IS NULL AND {col} = w.pe))"
    else:
        args.append(period.sql_interval())
        step = f"${len(args)}::text::interval"
        periods = (f"SELECT g AS ps, g + {step} AS pe FROM generate_series(coalesce({start_ref}, b.lo), "
                   f"coalesce({end_ref}, b.hi), {step}) g WHERE {end_ref} IS NULL OR g < {end_ref}")
        within = f"{col} >= w.ps AND {col} < w.pe"
    sql = (f"WITH RECURSIVE {pairs} "
           f"SELECT p.e AS entity_id, p.a AS attr, w.ps, w.pe, s.* FROM p "
           f"CROSS JOIN LATERAL (SELECT min({col}) AS lo, max({col}) AS hi FROM {schema}.attr_instances i "
           f"WHERE i.entity_id = p.e AND i.attr = p.a AND {cond}) b "
           f"CROSS JOIN LATERAL ({periods}) w "
           f"CROSS JOIN LATERAL (SELECT count(*) AS total_count, count(DISTINCT {VALUE}) AS distinct_count, "
           f"sum(i.num) AS sum, avg(i.num) AS avg, min(i.num) AS min, max(i.num) AS max, "
           f"stddev_pop(i.num) AS stddev, sum(i.num * i.num) AS sumsq, count(i.num) AS numbers "
           f"FROM {schema}.attr_instances i WHERE i.entity_id = p.e AND i.attr = p.a AND {cond} AND {within}) s "
           f"WHERE b.lo IS NOT NULL AND s.total_count > 0 ORDER BY p.e, p.a, w.ps")
    return await conn.fetch(sql, *args)


async def entity_rows(conn: asyncpg.Connection, schema: str, where: str, args: list[Any], limit: int,
                      offset: int, descending: bool = False) -> list[asyncpg.Record]:
    """``temporal_entities`` rows matching ``where`` (built by broker.store.query.where_clause), by id."""
    check_schema_name(schema)
    args = [*args, limit, offset]
    return await conn.fetch(f"SELECT id, types, scopes, created_at, deleted_at FROM {schema}.temporal_entities "
                            f"WHERE {where} ORDER BY id{' DESC' if descending else ''} LIMIT ${len(args) - 1} OFFSET ${len(args)}", *args)


async def count_entities(conn: asyncpg.Connection, schema: str, where: str, args: list[Any]) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {schema}.temporal_entities WHERE {where}", *args)


async def entity_row(conn: asyncpg.Connection, schema: str, entity_id: str) -> asyncpg.Record | None:
    check_schema_name(schema)
    return await conn.fetchrow(f"SELECT id, types, scopes, created_at, deleted_at FROM {schema}.temporal_entities "
                               f"WHERE id = $1", entity_id)

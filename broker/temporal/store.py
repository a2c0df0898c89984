"""History reads: instances per (entity, attribute) in a time window, lastN, and aggregation in SQL.

Every read has the same shape: the (entity, attribute) pairs asked for — the product of the entities and
``attrs``, or each entity's attributes found by a skip scan of the (entity_id, attr, at) index, a handful of
index probes instead of reading every instance — then, for each pair, an ordered index range scan of its
window with a LIMIT (``LATERAL``): a window, lastN (the scan backwards) and a page cost the instances they
return, however long the history is.

Aggregation runs in the database too, in one scan of each pair's instances: each instance is binned into
its period (``date_bin`` for exact durations; for calendar ones, a binary search of the period starts,
origin + k × ``aggrPeriodDuration``, the origin being the window's start or the pair's first instance),
one GROUP BY computing only the methods asked for from the typed ``num`` column and the instance's value.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..model.entity import SCOPE_IRI
from ..query import compile_scope_q
from .params import TemporalQuery, window
from .tables import check_schema_name

INSTANCE_COLUMNS = "i.attr, i.dataset_id, i.instance_id, i.deleted_at, i.inst"
# the value an instance is compared by (distinctCount), whatever its attribute type
VALUE = ("coalesce(i.inst -> 'value', i.inst -> 'object', i.inst -> 'languageMap', i.inst -> 'vocab', "
         "i.inst -> 'json', i.inst -> 'valueList', i.inst -> 'objectList')")
# each aggrMethod in SQL: counts over every instance, the rest over the typed number column
METHOD_SQL = {"totalCount": "count(*)", "distinctCount": f"count(DISTINCT {VALUE})", "sum": "sum(i.num)",
              "avg": "avg(i.num)", "min": "min(i.num)", "max": "max(i.num)", "stddev": "stddev_pop(i.num)",
              "sumsq": "sum(i.num * i.num)"}
# the column each method's value is returned in
METHOD_COLUMNS = {"totalCount": "total_count", "distinctCount": "distinct_count", "sum": "sum", "avg": "avg",
                  "min": "min", "max": "max", "stddev": "stddev", "sumsq": "sumsq"}


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
                    query: TemporalQuery, limit: int, datasets: list[str | None] | None = None, *,
                    sys_attrs: bool = False) -> list[asyncpg.Record]:
    """The instances of each (entity, attribute): the ``limit`` oldest (with lastN: the ``limit`` most recent),
    in no particular order. Each row: entity_id, attr, dataset_id, instance_id, deleted_at, inst, ``t`` (the
    time property's value) and, with ``sys_attrs``, created_at and modified_at."""
    check_schema_name(schema)
    args: list[Any] = [entity_ids]
    pairs = _pairs(schema, attrs, args)
    cond = time_filter(query, args, datasets)
    col = f"i.{query.column}"
    args.append(limit)
    order = "DESC" if query.last_n is not None else "ASC"
    # only the columns rendered: decoding a timestamp costs as much as reading the row
    columns = INSTANCE_COLUMNS + (", i.created_at, i.modified_at" if sys_attrs else "")
    sql = (f"WITH RECURSIVE {pairs} "
           f"SELECT p.e AS entity_id, r.* FROM p, LATERAL (SELECT {columns}, {col} AS t "
           f"FROM {schema}.attr_instances i WHERE i.entity_id = p.e AND i.attr = p.a AND {cond} "
           f"ORDER BY {col} {order}, i.instance_id LIMIT ${len(args)}) r")
    return await conn.fetch(sql, *args)


def _bind(args: list[Any], moment: Any) -> str:
    """A timestamptz parameter: ``moment`` appended to ``args``."""
    args.append(moment)
    return f"${len(args)}::timestamptz"


async def aggregates(conn: asyncpg.Connection, schema: str, entity_ids: list[str], attrs: list[str] | None,
                     query: TemporalQuery, datasets: list[str | None] | None = None) -> list[asyncpg.Record]:
    """One row per (entity, attribute, period) holding instances: the attribute's type (its latest instance's),
    the period's start and end, and the value of each method asked for (columns named as METHOD_COLUMNS)."""
    check_schema_name(schema)
    args: list[Any] = [entity_ids]
    pairs = _pairs(schema, attrs, args)
    cond = time_filter(query, args, datasets)
    col = f"i.{query.column}"
    start, end = window(query)
    t = f"{schema}.attr_instances"
    of_pair = f"FROM {t} i WHERE i.entity_id = p.e AND i.attr = p.a AND {cond}"
    period = query.aggr_period
    origin = ""
    if period.zero:  # one period: the window, or the instances' own span (the last one included)
        bounds = f"coalesce({_bind(args, start)}, min({col})) AS ps, coalesce({_bind(args, end)}, max({col})) AS pe"
        group = ""
    else:
        args.append(period.sql_interval())
        step = f"${len(args)}::text::interval"
        # periods start at the window's start, or at the pair's first instance
        origin = f"CROSS JOIN LATERAL (SELECT coalesce({_bind(args, start)}, (SELECT min({col}) {of_pair})) AS o) o "
        if period.months == 0:  # exact periods: one scan, each instance binned by arithmetic
            bucket = f"date_bin({step}, {col}, o.o)"
            bounds, group = f"{bucket} AS ps, {bucket} + {step} AS pe", f" GROUP BY {bucket}"
        else:  # calendar periods (months vary): a handful of them, binned by binary search of their starts
            # the k-th starts at origin + k * period (end of month clamped, as PostgreSQL adds months); enough
            # of them to pass the window's end or the last instance: one more than the whole months between
            last = f"coalesce({_bind(args, end)}, (SELECT max({col}) {of_pair}))"
            args.append(period.months)
            months = f"(extract(year FROM l.last) * 12 + extract(month FROM l.last) - extract(year FROM o.o) * 12 " \
                     f"- extract(month FROM o.o))::int / ${len(args)}::int + 1"
            origin += (f"CROSS JOIN LATERAL (SELECT {last} AS last) l CROSS JOIN LATERAL (SELECT ARRAY(SELECT o.o "
                       f"+ k * {step} FROM generate_series(0, {months}) k) AS edges) w ")
            bucket = f"width_bucket({col}, w.edges)"
            bounds, group = f"w.edges[{bucket}] AS ps, w.edges[{bucket} + 1] AS pe", f" GROUP BY {bucket}"
    methods = ", ".join(f"{METHOD_SQL[m]} AS {METHOD_COLUMNS[m]}" for m in query.aggr_methods)
    sql = (f"WITH RECURSIVE {pairs} "
           f"SELECT p.e AS entity_id, p.a AS attr, coalesce(k.kind, 'Property') AS kind, s.* FROM p "
           f"LEFT JOIN LATERAL (SELECT i.inst ->> 'type' AS kind FROM {t} i WHERE i.entity_id = p.e "
           f"AND i.attr = p.a AND i.deleted_at IS NULL ORDER BY i.at DESC LIMIT 1) k ON true {origin}"
           f"CROSS JOIN LATERAL (SELECT {bounds}{', ' if methods else ''}{methods} {of_pair}{group} "
           f"HAVING count(*) > 0) s ORDER BY p.e, p.a, s.ps")
    return await conn.fetch(sql, *args)


def scope_in_window(schema: str, scope_q: Any, query: TemporalQuery, args: list[Any]) -> str:
    """scopeQ on ``temporal_entities`` rows over the query's window (5.7.4.4 S4, 4.18): some scope instance
    valid in the window matches — valid from its time until the scope's next instance or removal. An entity
    without a recorded scope history (recorded before history was on) is tested on its current scope."""
    check_schema_name(schema)
    t = f"{schema}.attr_instances"
    args.append(SCOPE_IRI)
    iri = f"${len(args)}::text"
    start, end = window(query)
    parts = [f"s.entity_id = {schema}.temporal_entities.id", f"s.attr = {iri}", "s.deleted_at IS NULL"]
    if end is not None:
        parts.append(f"s.at < {_bind(args, end)}")
    if start is not None:
        parts.append(f"coalesce((SELECT min(n.at) FROM {t} n WHERE n.entity_id = s.entity_id AND n.attr = {iri} "
                     f"AND n.at > s.at), 'infinity') > {_bind(args, start)}")
    values = "ARRAY(SELECT jsonb_array_elements_text(s.inst -> 'value'))"
    parts.append(compile_scope_q(scope_q, args, values))
    current = compile_scope_q(scope_q, args, "scopes")
    return (f"EXISTS (SELECT 1 FROM {t} s WHERE {' AND '.join(parts)}) OR (NOT EXISTS (SELECT 1 FROM {t} s "
            f"WHERE s.entity_id = {schema}.temporal_entities.id AND s.attr = {iri}) AND {current})")


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

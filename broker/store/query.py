"""Entity queries: the filters of GET /entities and POST /entityOperations/query compiled to one SELECT.

Every user value is a bind parameter; the only spliced identifiers are the validated tenant schema name and
SQL written here or by ``broker.query``. Results come in ``id`` order (stable pages) unless ``orderBy`` asks
for another (``broker.query.order``).

How a page is read (the plans were checked with EXPLAIN at 100,000 and 1,000,000 entities):

* A query naming one entity type is split into two disjoint branches, the entities whose first type it is
  and those that have it in a later position (``broker.query.types``); each branch is an ordered index scan,
  merged by id, so LIMIT/OFFSET stop after ``offset + limit`` rows instead of sorting the whole type. Not
  when an index-backed ``q`` decides the matches: PostgreSQL reads those from its indexes and sorts them
  (``where_branches``).
* The page is chosen by id first and only its rows are read whole: an OFFSET skips index entries, not
  entity documents.
* A geo-query reads the candidates of its bounding boxes first, behind a planner fence; the other filters
  and the exact geometric test run on those (``_geo_source``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Callable

import asyncpg

from ..errors import NgsiError
from ..jsonld import Context
from ..query import compile_q, compile_scope_q, database_error
from ..query.sql import compile_indexed_q
from ..query.geo import GeoFilter, GeoQuery, compile_geo
from ..query.indexspec import IndexSpec
from ..query.order import OrderKey, collation_candidates, order_clause
from ..query.types import TypeExpr, any_position, compile_types, first_type, later_type, single_type
from .entities import COLUMNS
from .indexes import IndexAdvisor
from .tenants import Tenants


@dataclass
class Selector:
    """One entity selector: every given member must match (GS CIM 009 EntitySelector)."""

    ids: list[str] | None = None
    id_pattern: str | None = None
    types: TypeExpr | None = None


@dataclass
class EntityQuery:
    selectors: list[Selector] = field(default_factory=list)  # any of them
    attrs: list[str] | None = None  # expanded IRIs: entities having at least one
    q: Any = None  # a parsed q expression (broker.query.q)
    scope_q: Any = None  # a parsed scopeQ expression
    geo: GeoQuery | None = None  # a geo-query (broker.query.geo)
    limit: int = 20
    offset: int = 0
    count: bool = False
    order: list[OrderKey] | None = None  # orderBy; None: by id
    collation: str | None = None  # a PostgreSQL collation name (collation_name), for orderBy strings


def where_clause(query: EntityQuery, ctx: Context, args: list[Any], specs: list[IndexSpec] | None = None,
                 postgis: bool = False, geo: GeoFilter | None = None) -> str:
    """The SQL condition of ``query``; ``specs`` collects the indexes it can use (see broker.store.indexes);
    ``postgis``: the database has PostGIS (geo relations then use it; the answers are the same); ``geo``: the
    query's geo filter if already compiled (its bind values in ``args``)."""
    return _where(query, ctx, args, specs, postgis, geo)[0]


def _where(query: EntityQuery, ctx: Context, args: list[Any], specs: list[IndexSpec] | None,
           postgis: bool, geo: GeoFilter | None) -> tuple[str, bool]:
    """``where_clause``, and whether its ``q`` is decided through indexes (``compile_indexed_q``)."""
    indexed = False
    conditions: list[str] = []
    alternatives = []
    for sel in query.selectors:
        parts = []
        if sel.ids:
            args.append(sel.ids)
            parts.append(f"id = ANY(${len(args)}::text[])")
        if sel.id_pattern:
            bounds = prefix_bounds(sel.id_pattern)
            if bounds is not None:  # the unique B-tree on id (COLLATE "C") serves the literal prefix
                args.extend(bounds)
                parts.append(f"id >= ${len(args) - 1} AND id < ${len(args)}")
            args.append(sel.id_pattern)
            parts.append(f"id ~ ${len(args)}")
        if sel.types is not None:
            parts.append(compile_types(sel.types, ctx, args))
        alternatives.append(" AND ".join(parts) if parts else "TRUE")
    if alternatives:
        conditions.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    if query.attrs:
        # the function, not its operator ?|: PostgreSQL has no statistics for entity documents (too wide to
        # sample) and guesses 0.1% for the operator, then sorts a whole type instead of walking it in id order
        # and stopping at the page; a function gets the neutral guess of 1/3
        args.append(query.attrs)
        conditions.append(f"jsonb_exists_any(attrs, ${len(args)}::text[])")
    if query.q is not None:
        if specs is None:
            conditions.append(compile_q(query.q, ctx, args))
        else:
            q, indexed = compile_indexed_q(query.q, ctx, args, specs)
            conditions.append(q)
    if query.scope_q is not None:
        conditions.append(compile_scope_q(query.scope_q, args))
    if query.geo is not None:
        if geo is None:
            geo = compile_geo(query.geo, ctx, args, postgis=postgis)
        if specs is not None:
            specs.extend(geo.specs)
        conditions.append(geo.sql)
    return (" AND ".join(conditions) if conditions else "TRUE"), indexed


_REGEX_META = set(".^$*+?()[]{}|\\")


def prefix_bounds(pattern: str) -> tuple[str, str] | None:
    """For ``^literal...``: a range of ids that contains every match (a superset; the regex still decides)."""
    if not pattern.startswith("^") or "|" in pattern:  # an alternation may match elsewhere
        return None
    prefix = []
    for ch in pattern[1:]:
        if ch in _REGEX_META:
            break
        prefix.append(ch)
    if prefix and pattern[1 + len(prefix):1 + len(prefix) + 1] in ("?", "*", "{"):
        prefix.pop()  # the last literal is optional: not part of the prefix
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return None
    low = "".join(prefix)
    return low, low[:-1] + chr(ord(low[-1]) + 1)  # code-point order = the "C" collation of the id column


async def matching_ids(pool: asyncpg.Pool, tenants: Tenants, tenant: str, query: EntityQuery, ctx: Context,
                       postgis: bool = False) -> list[str]:
    """Every id the query's filters match (no paging), in id order."""
    schema = await tenants.schema(tenant, create=False)
    args: list[Any] = []
    where = where_clause(query, ctx, args, postgis=postgis)
    try:
        return [r["id"] for r in await pool.fetch(f"SELECT id FROM {schema}.entities WHERE {where} ORDER BY id",
                                                  *args)]
    except asyncpg.PostgresError as exc:
        raise _query_error(exc) from None


def where_branches(query: EntityQuery, ctx: Context, args: list[Any], specs: list[IndexSpec] | None = None,
                   postgis: bool = False, geo: GeoFilter | None = None,
                   ready: Callable[[list[IndexSpec]], bool] | None = None) -> list[str]:
    """``where_clause`` as disjoint conditions whose union it is, each one an index can serve in id order.

    One entity type is two branches (``broker.query.types``) unless the ``q`` is decided through its own
    indexes and ``ready(specs)`` says they exist: PostgreSQL then starts from those (a bitmap of the matches,
    sorted) whatever the branches, and planning the ``q`` once instead of twice saves ~40% of the planning
    time (measured at 100k: a q-range query's planning 0.91 -> 0.60 ms, execution 0.83 -> 0.73 ms). Without
    the indexes, the branches' ordered type scans are what keeps such a query off a sequential scan (a count
    over one type measured 15 ms as two branches, 320 ms as one)."""
    sel = query.selectors[0] if len(query.selectors) == 1 else None
    name = single_type(sel.types) if sel is not None else None
    if name is None:
        return [where_clause(query, ctx, args, specs, postgis, geo)]
    args.append(ctx.expand_term(name.name))
    n = len(args)
    rest, indexed = _where(replace(query, selectors=[replace(sel, types=None)]), ctx, args, specs, postgis, geo)
    if indexed and ready is not None and specs and ready(specs):
        return [f"{any_position(n)} AND {rest}"]
    return [f"{first_type(n)} AND {rest}", f"{later_type(n)} AND {rest}"]


async def run_query(pool: asyncpg.Pool, tenants: Tenants, tenant: str, query: EntityQuery, ctx: Context,
                    advisor: IndexAdvisor | None = None, postgis: bool = False
                    ) -> tuple[list[asyncpg.Record], int | None]:
    """The page of matching entities and, if asked, the total count."""
    schema = await tenants.schema(tenant, create=False)
    t = f"{schema}.entities"
    args: list[Any] = []
    specs: list[IndexSpec] = []
    source = t
    geo = compile_geo(query.geo, ctx, args, postgis=postgis) if query.geo is not None else None
    fenced = geo is not None and geo.prefilter is not None
    if fenced:  # the geo candidates first (see _geo_source)
        assert geo is not None and geo.prefilter is not None
        source = _geo_source(t, geo.prefilter)
        specs.extend(geo.specs)
        branches = [f"{where_clause(replace(query, geo=None), ctx, args, specs, postgis)} AND {geo.sql}"]
    else:
        ready = partial(advisor.ready, schema) if advisor is not None else None
        branches = where_branches(query, ctx, args, specs, postgis, geo, ready)
    if advisor is not None and specs:
        advisor.note(schema, specs)
    total = None
    try:
        if query.count:
            total = await pool.fetchval(
                "SELECT " + " + ".join(f"(SELECT count(*) FROM {source} WHERE {b})" for b in branches), *args)
        if query.limit == 0:
            return [], total
        if query.order:
            sql = _ordered_page(source, " OR ".join(f"({b})" for b in branches), query, args)
        elif fenced:
            n = len(args)
            sql = f"SELECT {COLUMNS} FROM {source} WHERE {branches[0]} ORDER BY id LIMIT ${n + 1} OFFSET ${n + 2}"
        else:
            sql = _id_page(t, branches, len(args))
        rows = await pool.fetch(sql, *args, query.limit, query.offset)
    except asyncpg.PostgresError as exc:
        raise _query_error(exc) from None
    return rows, total


def _geo_source(t: str, prefilter: str) -> str:
    """The rows a geo-query's bounding boxes select (its GiST index), fenced off (OFFSET 0) so that the
    other filters and then the exact geometric test (costed highest, so PostgreSQL runs it last) apply to
    them.

    Why: PostgreSQL cannot estimate how few rows a bounding-box test keeps, and it costs the exact test very
    high. Left to itself it walks the id index testing geometries row by row (measured at 100k: 230 ms
    instead of 4 ms), or ANDs the box index with the whole entity type's index to test fewer rows (at 1M:
    150 ms reading 520,000 index entries to drop 500 candidates)."""
    return f"(SELECT * FROM {t} WHERE {prefilter} OFFSET 0) AS m"


def _id_page(t: str, branches: list[str], n: int) -> str:
    """The page in id order: its ids from the index scan(s), then those rows whole."""
    if len(branches) == 1:
        ids = f"SELECT id FROM {t} WHERE {branches[0]} ORDER BY id"
    else:
        ids = " UNION ALL ".join(f"(SELECT id FROM {t} WHERE {b} ORDER BY id)" for b in branches) + " ORDER BY id"
    return (f"SELECT {COLUMNS} FROM {t} JOIN ({ids} LIMIT ${n + 1} OFFSET ${n + 2}) AS page USING (id) "
            f"ORDER BY id")


def _ordered_page(t: str, where: str, query: EntityQuery, args: list[Any]) -> str:
    """The page in ``orderBy`` order: attribute sort values are computed once per row in a LATERAL select."""
    assert query.order
    lateral, order = order_clause(query.order, args, query.collation)
    source = f"{t} CROSS JOIN LATERAL (SELECT {lateral}) AS o" if lateral else t
    n = len(args)
    return f"SELECT {COLUMNS} FROM {source} WHERE {where} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}"


async def collation_name(pool: asyncpg.Pool, tag: str) -> str:
    """The PostgreSQL ICU collation of a ``collation`` parameter (IETF BCP 47 tag), BadRequestData if none."""
    for candidate in collation_candidates(tag):
        found = await pool.fetchval("SELECT collname FROM pg_collation WHERE lower(collname) = lower($1) "
                                    "AND collprovider = 'i' LIMIT 1", f"{candidate}-x-icu")
        if found is not None:
            return found
    raise NgsiError("BadRequestData", f"collation: no collation is available for {tag!r}")


def _query_error(exc: asyncpg.PostgresError) -> Exception:
    """What a failed query answers: 400 for a regex PostgreSQL rejects (idPattern or q), 403 when the
    statement timeout stopped it; anything else is a genuine server error."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return NgsiError("TooComplexQuery", "the query took too long; narrow it down")
    if isinstance(exc, asyncpg.InvalidRegularExpressionError):  # idPattern (q regexes: database_error)
        return NgsiError("BadRequestData", f"invalid regular expression (PostgreSQL syntax): {exc}")
    return database_error(exc) or exc

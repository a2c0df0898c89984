"""Entity queries: the filters of GET /entities and POST /entityOperations/query compiled to one SELECT.

Every user value is a bind parameter; the only spliced identifiers are the validated tenant schema name and
SQL written here or by ``broker.query``. Results come in ``id`` order (stable pages; the unique B-tree on
``id`` serves the order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ..errors import NgsiError
from ..jsonld import Context
from ..query import compile_q, compile_scope_q, database_error
from ..query.indexspec import IndexSpec
from ..query.types import TypeExpr, compile_types
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
    limit: int = 20
    offset: int = 0
    count: bool = False


def where_clause(query: EntityQuery, ctx: Context, args: list[Any], specs: list[IndexSpec] | None = None) -> str:
    """The SQL condition of ``query``; ``specs`` collects the indexes it can use (see broker.store.indexes)."""
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
        args.append(query.attrs)
        conditions.append(f"attrs ?| ${len(args)}::text[]")
    if query.q is not None:
        conditions.append(compile_q(query.q, ctx, args, specs))
    if query.scope_q is not None:
        conditions.append(compile_scope_q(query.scope_q, args))
    return " AND ".join(conditions) if conditions else "TRUE"


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


async def matching_ids(pool: asyncpg.Pool, tenants: Tenants, tenant: str, query: EntityQuery, ctx: Context
                       ) -> list[str]:
    """Every id the query's filters match (no paging), in id order."""
    schema = await tenants.schema(tenant, create=False)
    args: list[Any] = []
    where = where_clause(query, ctx, args)
    try:
        return [r["id"] for r in await pool.fetch(f"SELECT id FROM {schema}.entities WHERE {where} ORDER BY id",
                                                  *args)]
    except asyncpg.PostgresError as exc:
        raise _query_error(exc) from None


async def run_query(pool: asyncpg.Pool, tenants: Tenants, tenant: str, query: EntityQuery, ctx: Context,
                    advisor: IndexAdvisor | None = None) -> tuple[list[asyncpg.Record], int | None]:
    """The page of matching entities and, if asked, the total count."""
    schema = await tenants.schema(tenant, create=False)
    args: list[Any] = []
    specs: list[IndexSpec] = []
    where = where_clause(query, ctx, args, specs)
    if advisor is not None and specs:
        advisor.note(schema, specs)
    total = None
    try:
        if query.count:
            total = await pool.fetchval(f"SELECT count(*) FROM {schema}.entities WHERE {where}", *args)
        if query.limit == 0:
            return [], total
        n = len(args)
        rows = await pool.fetch(f"SELECT {COLUMNS} FROM {schema}.entities WHERE {where} ORDER BY id "
                                f"LIMIT ${n + 1} OFFSET ${n + 2}", *args, query.limit, query.offset)
    except asyncpg.PostgresError as exc:
        raise _query_error(exc) from None
    return rows, total


def _query_error(exc: asyncpg.PostgresError) -> Exception:
    """What a failed query answers: 400 for a regex PostgreSQL rejects (idPattern or q), 403 when the
    statement timeout stopped it; anything else is a genuine server error."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return NgsiError("TooComplexQuery", "the query took too long; narrow it down")
    if isinstance(exc, asyncpg.InvalidRegularExpressionError):  # idPattern (q regexes: database_error)
        return NgsiError("BadRequestData", f"invalid regular expression (PostgreSQL syntax): {exc}")
    return database_error(exc) or exc

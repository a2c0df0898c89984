"""Discovery queries (GS CIM 009 5.7.5 - 5.7.10): entity types and attributes of one tenant's entities.

Every answer is computed from ``{schema}.entities`` in one statement (one snapshot), with expanded IRIs;
the API layer compacts them. ``types`` is a ``text[]`` of type IRIs; the keys of ``attrs`` are the
attribute IRIs and each value is the list of that attribute's instances (one per datasetId), whose
``type`` member is the NGSI-LD attribute type (Property, Relationship, GeoProperty, ...). Sub-attributes
live inside instances and are not entity attributes, so they are never listed.

The lists are full scans (there is no catalogue table to keep in step with every write); ``/types/{type}``
is served by the type indexes (tenant migration 3). At 100,000 entities each answer takes 60-220 ms (figures in
``broker.api.discovery``); a full scan grows linearly, so ~1-2.5 s at 1M, well inside the statement timeout
(a tenant too big for it gets TooComplexQuery rather than a 500).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from ..errors import NgsiError
from ..query.types import first_type, later_type
from .tenants import Tenants


@dataclass
class TypeInfo:
    """5.2.26 EntityTypeInfo, expanded: entity count and {attribute IRI: sorted attribute types}."""

    entity_count: int
    attributes: dict[str, list[str]]


@dataclass
class AttributeInfo:
    """5.2.28 Attribute, expanded: instance count, attribute types and entity type IRIs."""

    count: int
    attribute_types: list[str]
    type_names: list[str]


class DiscoveryStore:
    """Read-only discovery queries over a tenant's entities."""

    def __init__(self, pool: asyncpg.Pool, tenants: Tenants) -> None:
        self._pool = pool
        self._tenants = tenants

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *args)
        except asyncpg.QueryCanceledError:  # the statement timeout: a very large tenant
            raise NgsiError("TooComplexQuery", "discovery took too long on this tenant's entities") from None

    async def _table(self, tenant: str) -> str:
        # an unknown tenant is NonexistentTenant (404): discovery never creates one
        return f"{await self._tenants.schema(tenant, create=False)}.entities"

    async def types(self, tenant: str) -> list[str]:
        """5.7.5: every entity type some entity has."""
        t = await self._table(tenant)
        rows = await self._fetch(f"SELECT DISTINCT u.t FROM {t} e, unnest(e.types) u(t)")
        return [r[0] for r in rows]

    async def type_attributes(self, tenant: str) -> dict[str, list[str]]:
        """5.7.6: {type IRI: attribute IRIs the entities of that type have}."""
        t = await self._table(tenant)
        rows = await self._fetch(
            f"{_shapes(t)} "
            f"SELECT u.t, ARRAY(SELECT DISTINCT n FROM shapes s2, unnest(s2.names) n "
            f"                  WHERE u.t = ANY(s2.types)) AS names "
            f"FROM (SELECT DISTINCT x FROM shapes s, unnest(s.types) x) u(t)")
        return {r[0]: list(r[1]) for r in rows}

    async def type_info(self, tenant: str, type_iri: str) -> TypeInfo | None:
        """5.7.7: the entity count of a type and its entities' attributes with their types (None: no entity
        has that type)."""
        t = await self._table(tenant)
        rows = await self._fetch(
            f"WITH m AS MATERIALIZED (SELECT attrs FROM {t} WHERE {first_type(1)} OR {later_type(1)}) "
            f"SELECT NULL AS name, NULL AS kinds, count(*) AS n FROM m "
            f"UNION ALL "
            f"SELECT a.k, array_agg(DISTINCT i->>'type'), NULL "
            f"FROM m, jsonb_each(m.attrs) a(k, v), jsonb_array_elements(a.v) i GROUP BY a.k", type_iri)
        count = next(r["n"] for r in rows if r["name"] is None)
        if not count:
            return None
        return TypeInfo(count, {r["name"]: _kinds(r["kinds"]) for r in rows if r["name"] is not None})

    async def attributes(self, tenant: str) -> list[str]:
        """5.7.8: every attribute name some entity has."""
        t = await self._table(tenant)
        rows = await self._fetch(f"SELECT DISTINCT jsonb_object_keys(attrs) FROM {t}")
        return [r[0] for r in rows]

    async def attribute_types(self, tenant: str) -> dict[str, list[str]]:
        """5.7.9: {attribute IRI: type IRIs of the entities having it}."""
        t = await self._table(tenant)
        rows = await self._fetch(
            f"{_shapes(t)} "
            f"SELECT n, array_agg(DISTINCT x) FROM shapes s, unnest(s.names) n, unnest(s.types) x GROUP BY n")
        return {r[0]: list(r[1]) for r in rows}

    async def attribute_info(self, tenant: str, attr_iri: str) -> AttributeInfo | None:
        """5.7.10: instance count, attribute types and entity types of one attribute (None: no entity has
        it)."""
        t = await self._table(tenant)
        row, = await self._fetch(
            f"WITH m AS MATERIALIZED (SELECT types, attrs->$1 AS v FROM {t} WHERE attrs ? $1) "
            f"SELECT (SELECT coalesce(sum(jsonb_array_length(v)), 0) FROM m) AS n, "
            f"  (SELECT array_agg(DISTINCT i->>'type') FROM m, jsonb_array_elements(m.v) i) AS kinds, "
            f"  (SELECT array_agg(DISTINCT x) FROM m, unnest(m.types) x) AS type_names", attr_iri)
        if not row["n"]:
            return None
        return AttributeInfo(int(row["n"]), _kinds(row["kinds"]), list(row["type_names"] or []))


def _shapes(t: str) -> str:
    """``WITH shapes``: the distinct (types, attribute names) combinations of the entities. Entities of one
    model share them, so the folds over types and attributes work on a handful of rows instead of one per
    entity and attribute."""
    return f"WITH shapes AS (SELECT DISTINCT e.types, ARRAY(SELECT jsonb_object_keys(e.attrs)) AS names FROM {t} e)"


def _kinds(values: list[str | None] | None) -> list[str]:
    return sorted(v for v in values or () if v)

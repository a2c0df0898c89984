"""Shared by the geo-query tests: a database helper that evaluates compiled geo filters, fixtures (with and
without PostGIS), geometry builders and the table of hand-picked cases with their known relations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from broker.config import Settings
from broker.errors import NgsiError
from broker.jsonld import ContextResolver
from broker.query.geo import GeoQuery, compile_geo, parse_geo_q
from broker.store.schema import migrate, migrate_tenant

API = "/ngsi-ld/v1"
NGSI = "https://uri.etsi.org/ngsi-ld/"
DEFAULT = NGSI + "default-context/"
LOCATION = NGSI + "location"
RELATIONS = ("intersects", "within", "contains", "equals", "overlaps", "disjoint")
ST = {"intersects": "ST_Intersects", "within": "ST_Within", "contains": "ST_Contains", "equals": "ST_Equals",
      "overlaps": "ST_Overlaps", "disjoint": "ST_Disjoint"}


def bad(exc: pytest.ExceptionInfo[NgsiError]) -> None:
    assert exc.value.error_type == "BadRequestData" and exc.value.status == 400, exc.value.detail


# ============================================================================================ database helpers

class Db:
    """One connection on a private event loop (sync tests can then use hypothesis)."""

    def __init__(self, dsn: str, postgis: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.dsn = dsn
        # JIT off: PostGIS declares its predicates expensive, so a geo filter over a few dozen rows is estimated
        # past jit_above_cost and compiled for ~1 s (the broker's own pool should turn JIT off too)
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(dsn, server_settings={"jit": "off", "TimeZone": "UTC"}))
        if postgis:
            self.run(self.conn.execute("CREATE EXTENSION IF NOT EXISTS postgis"))
        self.run(migrate(self.conn))
        self.resolver = ContextResolver(Settings(context_fetch_remote=False), None)
        self.run(self.resolver.start())
        self.ctx = self.resolver.core
        self.custom_ctx = self.run(self.resolver.resolve({"odd": "https://x.org/it's"}))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def test(self, attrs: dict[str, Any], geo: GeoQuery, *, postgis: bool = False, ctx: Any = None) -> bool:
        """Does an entity with ``attrs`` (the internal form) match ``geo``?"""
        args: list[Any] = [json.dumps(attrs)]
        sql = compile_geo(geo, ctx or self.ctx, args, postgis=postgis).sql
        value = self.run(self.conn.fetchval(f"SELECT {sql} FROM (SELECT $1::text::jsonb AS attrs) AS e", *args))
        assert value is not None, "a geo filter is never NULL"
        return value

    def tenant_schema(self, name: str) -> None:
        """A tenant's schema, registered and migrated (the history tests write ``attr_instances`` there)."""
        async def prepare() -> None:
            async with self.conn.transaction():
                await self.conn.execute("INSERT INTO ngsild.tenants (name, schema_name) VALUES ($1, $1) "
                                        "ON CONFLICT DO NOTHING", name)
                version = await self.conn.fetchval("SELECT schema_version FROM ngsild.tenants WHERE name = $1", name)
                await self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
                await migrate_tenant(self.conn, name, version)
        self.run(prepare())

    def close(self) -> None:
        self.run(self.conn.close())
        self.run(self.resolver.close())
        self.loop.close()


def geoprop(geometry: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry, **extra}


def located(geometry: dict[str, Any], iri: str = LOCATION) -> dict[str, Any]:
    return {iri: [geoprop(geometry)]}


def Q(rel: str, gtype: str, coords: Any, geoproperty: str = "location") -> GeoQuery:
    return parse_geo_q({"georel": rel, "geometry": gtype, "coordinates": coords, "geoproperty": geoproperty})


def pt(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


def sq(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


SQUARE = sq(0, 0, 4, 4)
HOLE = [[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]]
HOLED = {"type": "Polygon", "coordinates": [SQUARE, HOLE]}
PLAIN = {"type": "Polygon", "coordinates": [SQUARE]}

# (entity geometry, query geometry, the relations that hold -- every other one of RELATIONS does not)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], set[str]]] = [
    ("point inside", pt(3, 3), HOLED, {"intersects", "within"}),
    ("point outside", pt(5, 5), HOLED, {"disjoint"}),
    ("point on the shell", pt(4, 2), HOLED, {"intersects"}),
    ("point on a shell vertex", pt(4, 4), HOLED, {"intersects"}),
    ("point inside the hole", pt(1.5, 1.5), HOLED, {"disjoint"}),
    ("point on the hole's edge", pt(1, 1.5), HOLED, {"intersects"}),
    ("polygon contains point", HOLED, pt(3, 3), {"intersects", "contains"}),
    ("polygon does not contain a boundary point", HOLED, pt(0, 0), {"intersects"}),
    ("line crossing", {"type": "LineString", "coordinates": [[-1, 3], [5, 3]]}, HOLED, {"intersects"}),
    ("line touching", {"type": "LineString", "coordinates": [[4, 1], [6, 1]]}, HOLED, {"intersects"}),
    ("line along the shell", {"type": "LineString", "coordinates": [[0, 0], [4, 0]]}, HOLED, {"intersects"}),
    ("line inside", {"type": "LineString", "coordinates": [[3, 0.5], [3, 3.5]]}, HOLED, {"intersects", "within"}),
    ("line from the shell inwards", {"type": "LineString", "coordinates": [[4, 3], [3, 3]]}, HOLED,
     {"intersects", "within"}),
    ("line across the hole", {"type": "LineString", "coordinates": [[0.5, 1.5], [2.5, 1.5]]}, HOLED,
     {"intersects"}),
    ("line overlapping a line", {"type": "LineString", "coordinates": [[0, 0], [2, 2]]},
     {"type": "LineString", "coordinates": [[1, 1], [3, 3]]}, {"intersects", "overlaps"}),
    ("lines crossing at a point", {"type": "LineString", "coordinates": [[0, 0], [2, 2]]},
     {"type": "LineString", "coordinates": [[0, 2], [2, 0]]}, {"intersects"}),
    ("line within a multilinestring", {"type": "LineString", "coordinates": [[0, 0], [2, 0]]},
     {"type": "MultiLineString", "coordinates": [[[0, 0], [3, 0]], [[1, -1], [1, 1]]]}, {"intersects", "within"}),
    ("polygons overlapping", {"type": "Polygon", "coordinates": [sq(3, 3, 6, 6)]}, HOLED,
     {"intersects", "overlaps"}),
    ("polygon within", {"type": "Polygon", "coordinates": [sq(2.5, 2.5, 3.5, 3.5)]}, HOLED,
     {"intersects", "within"}),
    ("polygon covering the hole is not within", {"type": "Polygon", "coordinates": [sq(0.5, 0.5, 2.5, 2.5)]},
     HOLED, {"intersects", "overlaps"}),
    ("polygon in the hole", {"type": "Polygon", "coordinates": [sq(1.25, 1.25, 1.75, 1.75)]}, HOLED,
     {"disjoint"}),
    ("polygon contains polygon", PLAIN, {"type": "Polygon", "coordinates": [sq(1, 1, 2, 2)]},
     {"intersects", "contains"}),
    ("equal polygons: other start, other orientation", PLAIN,
     {"type": "Polygon", "coordinates": [[[4, 4], [4, 0], [0, 0], [0, 4], [4, 4]]]},
     {"intersects", "within", "contains", "equals"}),
    ("equal polygon and multipolygon, repeated vertex", PLAIN,
     {"type": "MultiPolygon", "coordinates": [[[[0, 4], [0, 0], [2, 0], [4, 0], [4, 0], [4, 4], [0, 4]]]]},
     {"intersects", "within", "contains", "equals"}),
    ("polygons sharing an edge", PLAIN, {"type": "Polygon", "coordinates": [sq(4, 0, 6, 4)]}, {"intersects"}),
    ("polygons sharing a corner", PLAIN, {"type": "Polygon", "coordinates": [sq(4, 4, 6, 6)]}, {"intersects"}),
    ("multipoint partly inside", {"type": "MultiPoint", "coordinates": [[3, 3], [5, 5]]}, HOLED, {"intersects"}),
    ("multipoint inside and on the boundary", {"type": "MultiPoint", "coordinates": [[3, 3], [4, 4]]}, HOLED,
     {"intersects", "within"}),
    ("multipoints overlapping", {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]},
     {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2]]}, {"intersects", "overlaps"}),
    ("multipoint within multipoint", {"type": "MultiPoint", "coordinates": [[1, 1], [1, 1]]},
     {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2]]}, {"intersects", "within"}),
    ("equal multipoints", {"type": "MultiPoint", "coordinates": [[2, 2], [1, 1]]},
     {"type": "MultiPoint", "coordinates": [[1, 1], [2, 2], [1, 1]]}, {"intersects", "within", "contains", "equals"}),
    ("equal points", pt(1, 1), pt(1, 1), {"intersects", "within", "contains", "equals"}),
    ("point on a line's end", pt(0, 0), {"type": "LineString", "coordinates": [[0, 0], [2, 2]]}, {"intersects"}),
    ("point inside a line", pt(1, 1), {"type": "LineString", "coordinates": [[0, 0], [2, 2]]},
     {"intersects", "within"}),
    ("point on a closed line", pt(0, 0), {"type": "LineString", "coordinates": [[0, 0], [2, 0], [2, 2], [0, 0]]},
     {"intersects", "within"}),
    ("far away", pt(170, 80), HOLED, {"disjoint"}),
    ("multipolygon, one part within", {"type": "MultiPolygon", "coordinates": [[sq(2.5, 2.5, 3, 3)],
                                                                              [sq(10, 10, 11, 11)]]},
     HOLED, {"intersects", "overlaps"}),
]

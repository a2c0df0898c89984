"""Geo-queries (``broker.query.geo``) compiled to one parameterised SQL boolean over a row of ``{schema}.entities``.

Everything is decided in SQL (no Python post-filter), so LIMIT / OFFSET
paging stays exact. The SQL helpers live in the ``ngsild`` schema (global migration 3 of
``broker.store.schema``): ``geo_prep`` turns a GeoJSON geometry into vertex / segment arrays, ``geo_locate``
/ ``geo_intersects`` / ``geo_within`` / ``geo_equals`` / ``geo_overlaps`` decide the OGC relations exactly
in floating point (no tolerance), ``geo_hav`` / ``geo_arc`` / ``geo_distance`` measure metres on the sphere,
``geo_bbox`` is the indexed bounding box (PL/pgSQL since global migration 8: evaluated once per row
instead of inlined as a dozen walks from the top of the entity document).

Shape of the SQL (``<A>`` = ``attrs -> '<IRI>'``, ``B`` = the query's box, ``X(i)`` = the exact test of
instance ``i``: a GeoProperty whose value matches)::

    (ngsild.geo_bbox(<A> -> 0 -> 'value') IS NOT NULL AND ngsild.geo_bbox(<A> -> 0 -> 'value') && B AND X(<A> -> 0))
    OR (jsonb_array_length(<A>) > 1 AND EXISTS (SELECT FROM jsonb_array_elements(<A>) WITH ORDINALITY g(i, n)
                                              WHERE g.n > 1 AND ngsild.geo_bbox(g.i -> 'value') && B AND X(g.i)))

Two indexes serve it (``geo_index_specs``): a GiST on the first instance's box, and a tiny partial B-tree
listing the rows with several instances; PostgreSQL answers with a BitmapOr of the two, then runs ``X`` on
the candidates. Every relation is implied by box overlap (``&&``): ``geo_bbox`` covers the positions and the
great-circle arcs between them (what ``near`` measures to), so it may be a little larger than the planar
bounding box, and containment (``<@``) would not be a safe prefilter. ``near;maxDistance`` overlaps the
query box grown by the distance (in latitude by d/R, in longitude by asin(sin(d/R) / cos(lat)) at the
box's highest latitude, split at the antimeridian, the whole globe near a pole). ``disjoint`` and
``near;minDistance`` match what lies away from the query, which no index narrows: they scan, skipping the
exact test when the boxes do not meet.

Point values (the common case) take inline forms: ``geo_locate`` of the point for intersects / disjoint /
within, haversine for near a query Point. Other combinations call the generic relation on ``geo_prep``.
The query geometry is prepared once per statement (an uncorrelated sub-select: an InitPlan).

With PostGIS (``postgis=True``) the topological relations call ST_Intersects / ST_Within / ST_Contains /
ST_Equals / ST_Overlaps / ST_Disjoint on the candidates (GEOS, in C: faster on large polygons) when both
geometries are valid (ST_IsValidDetail; GEOS may raise on invalid ones), the pure-SQL test otherwise; the
prefilter, the indexes and ``near`` are the same SQL as without PostGIS. Both give the same answers (tests
compare them on the same data; see ``broker.query.geo`` for the semantics and the one GEOS rounding caveat).
PostGIS declares its predicates expensive: with JIT on, a filter over a few dozen rows is estimated past
``jit_above_cost`` and compiled for ~1 s, so connections should run with ``jit = off`` (the broker's pool
does). The helper functions themselves carry no ``SET`` clause: one would keep PostgreSQL from inlining them
and cost a configuration save/restore per call (measured: the exact point-in-polygon test 25% slower).

The attribute IRI is spliced as a SQL literal only if it matches a strict character class (the index
expression must be a constant); any other IRI travels as a bind parameter and the filter is not indexed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from broker.errors import bad_request

from .indexspec import IndexSpec

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg

    from broker.jsonld.context import Context

    from .geo import GeoQuery

#: metres; the mean radius (2a + b) / 3 of the WGS 84 ellipsoid (PostGIS's WGS84_RADIUS). Spelled the same
#: in the SQL helpers (migration 3): keep them in step.
EARTH_RADIUS = 6371008.7714150598

_SAFE_IRI = re.compile(r"[A-Za-z0-9:/?#\[\]@!$&()*+,;=._~%-]{1,512}")
_VALUE = "'value'"
_ST = {"intersects": "ST_Intersects", "within": "ST_Within", "contains": "ST_Contains", "equals": "ST_Equals",
       "overlaps": "ST_Overlaps", "disjoint": "ST_Disjoint"}


@dataclass
class GeoFilter:
    """``sql``: a boolean (never NULL) over a row of ``{schema}.entities``; ``specs``: the indexes it can use;
    ``prefilter``: the index-usable part of ``sql`` alone (implied by it; None when no index narrows the
    query), so a caller can fetch the candidates first and run the exact test after cheaper filters."""

    sql: str
    specs: list[IndexSpec] = field(default_factory=list)
    prefilter: str | None = None


def literal(iri: str) -> str | None:
    """``iri`` as a SQL string literal, or None if it is not plainly safe to splice."""
    return f"'{iri}'" if _SAFE_IRI.fullmatch(iri) else None


def box_expression(lit: str) -> str:
    return f"ngsild.geo_bbox(attrs -> {lit} -> 0 -> 'value')"


def multi_predicate(lit: str) -> str:
    """Rows whose attribute has several instances (the first is indexed by its box, the others are not)."""
    return f"jsonb_array_length(attrs -> {lit}) > 1"


def geo_index_specs(iri: str) -> list[IndexSpec]:
    """The indexes a geo-query on ``iri`` uses (empty if the IRI cannot be spliced)."""
    lit = literal(iri)
    if lit is None:
        return []
    return [IndexSpec(f"geo:{iri}", "gist", f"({box_expression(lit)})"),
            IndexSpec(f"geomulti:{iri}", "btree", "pk", multi_predicate(lit))]


async def detect_postgis(conn: "asyncpg.Connection | asyncpg.Pool") -> bool:
    """Whether PostGIS is installed in the database and its functions resolve on the search path."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') "
        "AND to_regproc('st_geomfromgeojson') IS NOT NULL"))


def compile_geo(geo: "GeoQuery", ctx: "Context", args: list[Any], *, postgis: bool = False) -> GeoFilter:
    """The SQL of ``geo`` (see the module doc); bind values are appended to ``args``."""
    iri = ctx.expand_term(geo.geoproperty)
    if not isinstance(iri, str) or iri.startswith("@"):
        raise bad_request(f"geoproperty {geo.geoproperty!r} cannot be queried")
    return _Compiler(geo, args, postgis).compile(iri)


class _Compiler:
    def __init__(self, geo: "GeoQuery", args: list[Any], postgis: bool) -> None:
        self.geo = geo
        self.args = args
        self.postgis = postgis
        self.gtype = geo.geometry["type"]
        self._geojson = self.param(orjson.dumps({"type": self.gtype,
                                                 "coordinates": geo.geometry["coordinates"]}).decode())

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    # ------------------------------------------------------------------------------------------ the query
    @property
    def q(self) -> str:
        """The query geometry prepared once per statement (an InitPlan; ``geo_prep`` is declared STABLE so that
        the planner does not also run it while planning)."""
        return f"(SELECT ngsild.geo_prep({self._geojson}::text::jsonb))"

    def box_param(self, box: Box) -> str:
        return self.param(_box_text(box)) + "::text::box"

    def compile(self, iri: str) -> GeoFilter:
        geo = self.geo
        # the query geometry's box computed here (arcs_box = SQL geo_bbox): PostgreSQL would fold the immutable
        # geo_bbox of a constant while planning every execution (~6 ms for a polygon)
        box = arcs_box(snapped(geo.geometry))
        boxes: list[str] | None = None  # the value's box must meet one of these (index-usable)
        away: list[str] | None = None  # a value whose box meets none of these matches without the exact test
        if geo.georel == "disjoint":
            away = [self.box_param(box)]
        elif geo.georel == "near":
            distance = geo.max_distance if geo.max_distance is not None else geo.min_distance
            assert distance is not None
            grown = [self.box_param(b) for b in near_boxes(box, distance)]
            if geo.max_distance is not None:
                boxes = grown
            else:
                away = grown
        else:
            boxes = [self.box_param(box)]

        def instance(i: str) -> str:
            """Instance ``i`` (jsonb) is a GeoProperty whose value matches (never NULL)."""
            v = f"{i} -> 'value'"
            test = f"COALESCE({self.value_test(v)}, false)"
            if away is not None:
                v_box = f"ngsild.geo_bbox({v})"
                test = f"(({v_box} IS NOT NULL AND NOT {_overlaps(v_box, away)}) OR {test})"
            return f"CASE WHEN {i} ->> 'type' = 'GeoProperty' THEN {test} ELSE false END"

        def prefilter(i: str) -> str:
            return f" AND {_overlaps(f'ngsild.geo_bbox({i} -> {_VALUE})', boxes)}" if boxes else ""

        lit = literal(iri)
        if lit is None:  # an IRI we do not splice: a bind parameter, every instance alike, no index
            attr = f"attrs -> {self.param(iri)}::text"
            return GeoFilter(f"EXISTS (SELECT FROM jsonb_array_elements({attr}) AS g(i) WHERE true"
                             f"{prefilter('g.i')} AND {instance('g.i')})")
        attr = f"attrs -> {lit}"
        first = f"{attr} -> 0"
        others = (f"({multi_predicate(lit)} AND EXISTS (SELECT FROM jsonb_array_elements({attr}) WITH ORDINALITY "
                  f"AS g(i, n) WHERE g.n > 1{prefilter('g.i')} AND {instance('g.i')}))")
        if boxes is None:
            return GeoFilter(f"({instance(first)} OR {others})")
        first_box = box_expression(lit)
        candidates = f"({first_box} IS NOT NULL AND {_overlaps(first_box, boxes)})"
        return GeoFilter(f"(({candidates} AND {instance(first)}) OR {others})", geo_index_specs(iri),
                         f"({candidates} OR {multi_predicate(lit)})")

    # ------------------------------------------------------------------------------------ exact tests
    def value_test(self, v: str) -> str:
        """SQL boolean (maybe NULL) on a GeoProperty value ``v`` (a validated GeoJSON geometry)."""
        geo = self.geo
        rel = geo.georel
        if rel == "near":
            d = self.param(geo.max_distance if geo.max_distance is not None else geo.min_distance)
            cmp = "<=" if geo.max_distance is not None else ">="
            generic = f"ngsild.geo_distance(ngsild.geo_prep({v}), {self.q}) {cmp} {d}::float8"
            if self.gtype == "Point":
                qx, qy = geo.geometry["coordinates"][:2]
                point = (f"ngsild.geo_hav({_x(v)}, {_y(v)}, {self.param(snap(qx))}::float8, "
                         f"{self.param(snap(qy))}::float8) {cmp} {d}::float8")
                return f"CASE WHEN {v} ->> 'type' = 'Point' THEN {point} ELSE {generic} END"
            return generic
        e = f"ngsild.geo_prep({v})"
        pure = {
            "intersects": f"ngsild.geo_intersects({e}, {self.q})",
            "disjoint": f"NOT ngsild.geo_intersects({e}, {self.q})",
            "within": f"ngsild.geo_within({e}, {self.q})",
            "contains": f"ngsild.geo_within({self.q}, {e})",
            "equals": f"ngsild.geo_equals({e}, {self.q})",
            "overlaps": f"ngsild.geo_overlaps({e}, {self.q})",
        }[rel]
        located = {"intersects": ">= 0", "disjoint": "< 0", "within": "= 1"}.get(rel)
        if located is not None:
            point = f"ngsild.geo_locate({_x(v)}, {_y(v)}, {self.q}) {located}"
            pure = f"CASE WHEN {v} ->> 'type' = 'Point' THEN {point} ELSE {pure} END"
        if rel == "equals":  # the very same geometry equals itself even when invalid (ETSI 019_11_01 uses a
            # self-intersecting polygon, which the relation algorithms -- ours and GEOS -- leave undefined)
            same = (f"({v} -> 'type' = {self._geojson}::text::jsonb -> 'type' AND {v} -> 'coordinates' = "
                    f"{self._geojson}::text::jsonb -> 'coordinates')")
            pure = f"({same} OR {pure})"
        if not self.postgis:
            return pure
        # GEOS leaves invalid geometries undefined (and may raise a TopologyException on them): those take the
        # pure-SQL path, so that the answers stay the same with and without PostGIS
        entity = (f"ST_GeomFromGeoJSON(jsonb_build_object('type', {v} -> 'type', 'coordinates', "
                  f"{v} -> 'coordinates'))")
        query = f"(SELECT ST_GeomFromGeoJSON({self._geojson}::text))"
        query_valid = f"(SELECT (ST_IsValidDetail(ST_GeomFromGeoJSON({self._geojson}::text))).valid)"
        exact = f"{_ST[rel]}({entity}, {query})"
        if rel == "equals":
            exact = f"({same} OR {exact})"
        return f"CASE WHEN {query_valid} AND (ST_IsValidDetail({entity})).valid THEN {exact} ELSE {pure} END"


def snap(c: float) -> float:
    """A coordinate as the SQL helpers take it (``ngsild.geo_snap``): below 1e-30 in magnitude, 0."""
    return 0.0 if abs(c) < 1e-30 else float(c)


def snapped(geometry: dict[str, Any]) -> dict[str, Any]:
    """``geometry`` with every coordinate as the SQL helpers read it (``snap``)."""
    def walk(c: Any) -> Any:
        return [walk(x) for x in c] if isinstance(c, list) else snap(c)
    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


def _x(v: str) -> str:
    return f"ngsild.geo_snap(({v} -> 'coordinates' ->> 0)::float8)"


def _y(v: str) -> str:
    return f"ngsild.geo_snap(({v} -> 'coordinates' ->> 1)::float8)"


def _overlaps(expr: str, boxes: list[str]) -> str:
    if len(boxes) == 1:
        return f"{expr} && {boxes[0]}"
    return "(" + " OR ".join(f"{expr} && {b}" for b in boxes) + ")"


# ============================================================================================ boxes

Box = tuple[float, float, float, float]  # west, south, east, north (degrees)
WORLD: Box = (-180.0, -90.0, 180.0, 90.0)


def _box_text(b: Box) -> str:
    return f"(({b[0]!r},{b[1]!r}),({b[2]!r},{b[3]!r}))"


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def arc_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    """Bounding box of the minor great-circle arc between two positions (as SQL ``ngsild.geo_arc_box``)."""
    ax, ay, az = _unit(x1, y1)
    bx, by, bz = _unit(x2, y2)
    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    nn = nx * nx + ny * ny + nz * nz
    lo, hi = min(y1, y2), max(y1, y2)
    if nn == 0:
        if ax * bx + ay * by + az * bz < 0:  # antipodal: any great circle
            lo, hi = -90.0, 90.0
    else:
        top = math.degrees(math.acos(min(1.0, abs(nz) / math.sqrt(nn))))
        if nx * ay - ny * ax >= 0 and bx * ny - by * nx >= 0:
            hi = max(hi, top + 1e-9)
        if nx * ay - ny * ax <= 0 and bx * ny - by * nx <= 0:
            lo = min(lo, 1e-9 - top)
    if abs(x2 - x1) > 180:
        return (-180.0, lo, 180.0, hi)
    return (min(x1, x2), lo, max(x1, x2), hi)


def _sequences(geometry: dict[str, Any]) -> list[list[list[float]]]:
    gtype, c = geometry["type"], geometry["coordinates"]
    if gtype == "Point":
        return [[c]]
    if gtype in ("MultiPoint", "LineString"):
        return [c] if gtype == "LineString" else [[p] for p in c]
    if gtype in ("MultiLineString", "Polygon"):
        return list(c)
    return [ring for poly in c for ring in poly]


def arcs_box(geometry: dict[str, Any]) -> Box:
    """Bounding box of a geometry's positions and of the great-circle arcs between consecutive positions of
    its lines and rings (as SQL ``ngsild.geo_bbox``)."""
    west, south, east, north = 180.0, 90.0, -180.0, -90.0
    for seq in _sequences(geometry):
        for k, p in enumerate(seq):
            boxes = [(p[0], p[1], p[0], p[1])]
            if k + 1 < len(seq):
                boxes.append(arc_box(p[0], p[1], seq[k + 1][0], seq[k + 1][1]))
            for b in boxes:
                west, south, east, north = min(west, b[0]), min(south, b[1]), max(east, b[2]), max(north, b[3])
    return (float(west), float(south), float(east), float(north))


def near_boxes(box: Box, metres: float) -> list[Box]:
    """Boxes covering every point within ``metres`` (great-circle) of ``box``: grown by the angular distance
    d = metres / R in latitude and by asin(sin d / cos lat) at the box's highest |latitude| in longitude,
    split at the antimeridian; all longitudes when the grown box reaches a pole. A little extra margin keeps
    the boxes supersets despite rounding (1e-7 degrees, about a centimetre: clients compute positions near
    the poles with asin, which loses that much)."""
    d = metres / EARTH_RADIUS
    if d >= math.pi / 2:
        return [WORLD]
    dlat = math.degrees(d) * (1 + 1e-9) + 1e-7
    west, south, east, north = box
    south, north = max(-90.0, south - dlat), min(90.0, north + dlat)
    lat = max(abs(box[1]), abs(box[3]))
    if south <= -90.0 or north >= 90.0 or math.sin(d) >= math.cos(math.radians(lat)):
        return [(-180.0, south, 180.0, north)]
    dlon = math.degrees(math.asin(min(1.0, math.sin(d) / math.cos(math.radians(lat))))) * (1 + 1e-9) + 1e-7
    west, east = west - dlon, east + dlon
    if east - west >= 360.0:
        return [(-180.0, south, 180.0, north)]
    out = [(max(west, -180.0), south, min(east, 180.0), north)]
    if west < -180.0:
        out.append((west + 360.0, south, 180.0, north))
    if east > 180.0:
        out.append((-180.0, south, east - 360.0, north))
    return out


def geometry_test(geo: "GeoQuery", value: str, args: list[Any], *, postgis: bool = False) -> str:
    """A SQL boolean (never NULL) on ``value``, a SQL expression of a GeoJSON geometry (jsonb): whether it
    stands in the relation ``geo`` asks for (a Context Source Registration's ``location``, say). No index."""
    return f"COALESCE({_Compiler(geo, args, postgis).value_test(value)}, false)"

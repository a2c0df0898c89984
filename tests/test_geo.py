"""Geo-queries (GS CIM 009 4.10): the parser (``broker.query.geo``), the SQL of ``broker.query.geo_sql`` and the
helper functions of global migration 3 on hand-picked cases and against a Python haversine, and end to end
over HTTP. The comparison with PostGIS is in ``test_geo_postgis.py``."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.query.geo import EARTH_RADIUS, MAX_POSITIONS, GeoQuery, parse_geo_params, parse_geo_q
from broker.query.geo_sql import arcs_box, near_boxes
from broker.store.geo_functions import GEO_FUNCTIONS
from broker.store.schema import migrate_tenant

from geo_support import API, CASES, DEFAULT, Db, HOLED, LOCATION, PLAIN, Q, RELATIONS, bad, geoprop, located, pt, sq

# ============================================================================================ parser

@pytest.mark.parametrize("georel", [
    "", "Near;maxDistance==10", "NEAR;maxDistance==10", "near", "near;", "near;maxDistance==1;minDistance==2",
    "near;maxDistance==0", "near;maxDistance==0.0", "near;minDistance==0e5", "near;maxDistance==-5",
    "near;maxDistance==+5", "near;maxDistance==abc", "near;maxDistance==", "near;maxDistance==NaN",
    "near;maxDistance==Infinity", "near;maxDistance==1e999", "near;maxDistance==.5", "near;maxDistance==05",
    "near;maxDistance==1.", "near;maxdistance==5", "near;MaxDistance==5", "near;maxDistance=5",
    "near;maxDistance== 5", "near;distance==5", "within;maxDistance==5", "Within", "WITHIN", " within",
    "within ", "crosses", "touches", "near,maxDistance==5",
])
def test_invalid_georel(georel: str):
    with pytest.raises(NgsiError) as exc:
        parse_geo_params("Point", georel, "[1, 2]", None)
    bad(exc)


@pytest.mark.parametrize("geometry", ["", "point", "POINT", " Point", "Circle", "GeometryCollection", "Feature",
                                      "polygon", "Multipolygon"])
def test_invalid_geometry(geometry: str):
    with pytest.raises(NgsiError) as exc:
        parse_geo_params(geometry, "within", "[1, 2]", None)
    bad(exc)


@pytest.mark.parametrize("geometry, coordinates", [
    ("Point", "[1,"), ("Point", "{}"), ("Point", '"1,2"'), ("Point", "1"), ("Point", "null"), ("Point", "[]"),
    ("Point", "[1]"), ("Point", "[200, 0]"), ("Point", "[0, 91]"), ("Point", "[[1, 2]]"), ("Point", "[1, 2, 3, 4]"),
    ("Point", "[true, 1]"), ("Point", '["1", 2]'), ("Point", "[NaN, 1]"), ("Point", "1,2"), ("Point", ""),
    ("MultiPoint", "[]"), ("MultiPoint", "[1, 2]"), ("LineString", "[[1, 2]]"), ("LineString", "[1, 2]"),
    ("MultiLineString", "[[[1, 2]]]"), ("Polygon", "[[[0, 0], [1, 0], [1, 1], [0, 0.5]]]"),
    ("Polygon", "[[[0, 0], [1, 0], [0, 0]]]"), ("Polygon", "[[0, 0], [1, 0], [1, 1], [0, 0]]"), ("Polygon", "[]"),
    ("MultiPolygon", "[[[0, 0], [1, 0], [1, 1], [0, 0]]]"), ("MultiPolygon", "[]"),
])
def test_invalid_coordinates(geometry: str, coordinates: str):
    with pytest.raises(NgsiError) as exc:
        parse_geo_params(geometry, "intersects", coordinates, None)
    bad(exc)


@pytest.mark.parametrize("geometry, georel, coordinates, geoproperty", [
    (None, "within", None, None), ("Point", None, None, None), (None, None, "[1, 2]", None),
    ("Point", "within", None, None), ("Point", None, "[1, 2]", None), (None, "within", "[1, 2]", None),
    (None, "within", None, "location"), ("Point", "within", "[1, 2]", ""), ("Point", "within", "[1, 2]", " loc"),
    ("Point", "within", "[1, 2]", "lo\tc"),
])
def test_incomplete_or_invalid_triple(geometry, georel, coordinates, geoproperty):
    with pytest.raises(NgsiError) as exc:
        parse_geo_params(geometry, georel, coordinates, geoproperty)
    bad(exc)


def test_too_many_positions():
    coords = json.dumps([[0, 0]] * (MAX_POSITIONS + 1))
    with pytest.raises(NgsiError) as exc:
        parse_geo_params("MultiPoint", "intersects", coords, None)
    assert exc.value.error_type == "TooComplexQuery"


@pytest.mark.parametrize("geo_q", [
    None, [], "within", 5,
    {}, {"georel": "within", "geometry": "Point"}, {"geometry": "Point", "coordinates": [1, 2]},
    {"georel": "within", "coordinates": [1, 2]},
    {"georel": 5, "geometry": "Point", "coordinates": [1, 2]},
    {"georel": "within", "geometry": ["Point"], "coordinates": [1, 2]},
    {"georel": "within", "geometry": "Point", "coordinates": 5},
    {"georel": "within", "geometry": "Point", "coordinates": {"x": 1}},
    {"georel": "within", "geometry": "Point", "coordinates": "[1, "},
    {"georel": "within", "geometry": "Point", "coordinates": "{}"},
    {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": 5},
    {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": ""},
    {"georel": "within", "geometry": "GeometryCollection", "coordinates": []},
    {"georel": "near;maxDistance==-1", "geometry": "Point", "coordinates": [1, 2]},
    {"georel": "near", "geometry": "Point", "coordinates": [1, 2]},
    {"georel": "within", "geometry": "Polygon", "coordinates": [[1, 2]]},
])
def test_invalid_geo_q(geo_q: Any):
    with pytest.raises(NgsiError) as exc:
        parse_geo_q(geo_q)
    bad(exc)


def test_valid_parses():
    assert parse_geo_params(None, None, None, None) is None
    assert parse_geo_params(None, None, None, "location") is None  # a lone geoproperty is ignored
    q = parse_geo_params("Point", "near;maxDistance==2000", "[8.5, 41.2]", None)
    assert q == GeoQuery("near", {"type": "Point", "coordinates": [8.5, 41.2]}, "location", 2000.0, None)
    q = parse_geo_params("Point", "near;minDistance==1.5e3", "[8.5, 41.2, 100]", "myPlace")
    assert (q.georel, q.min_distance, q.max_distance, q.geoproperty) == ("near", 1500.0, None, "myPlace")
    assert parse_geo_params("Point", "near;maxDistance==0.25", "[0,0]", None).max_distance == 0.25
    for rel in RELATIONS:
        q = parse_geo_params("Polygon", rel, "[[[0,0],[1,0],[1,1],[0,0]]]", None)
        assert q.georel == rel and q.max_distance is None and q.min_distance is None
    body = {"type": "GeoQuery", "georel": "within", "geometry": "MultiPoint", "coordinates": "[[1, 2], [3, 4]]",
            "geoproperty": "observationSpace"}
    q = parse_geo_q(body)
    assert q == GeoQuery("within", {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]}, "observationSpace")
    assert parse_geo_q({"georel": "equals", "geometry": "LineString", "coordinates": [[1, 2], [3, 4]]}).geoproperty \
        == "location"
    assert hash(q) == hash(parse_geo_q(body))



@pytest.mark.parametrize("name, entity, query, holds", CASES, ids=[c[0] for c in CASES])
def test_relations_without_postgis(db: Db, name: str, entity: dict[str, Any], query: dict[str, Any],
                                   holds: set[str]):
    got = {rel for rel in RELATIONS if db.test(located(entity), Q(rel, query["type"], query["coordinates"]))}
    assert got == holds


def test_invalid_geometry_equals_itself(db: Db):
    """ETSI 019_11_01 queries ``equals`` with the entity's own self-intersecting polygon."""
    ring = [[13.2865906, 52.5648645], [13.2879639, 52.5648645], [13.2797241, 52.4988679], [13.477478, 52.4712703],
            [13.5049438, 52.5373084], [13.2865906, 52.5648645]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    assert db.test(located(polygon), Q("equals", "Polygon", [ring]))
    assert not db.test(located(polygon), Q("equals", "Polygon", [ring[:3] + [[13.5, 52.5], ring[0]]]))


def test_attribute_shapes(db: Db):
    inside, outside = pt(3, 3), pt(50, 50)
    square = PLAIN["coordinates"]
    for rel in RELATIONS + ("near;maxDistance==1000", "near;minDistance==1"):
        for attrs in ({}, {DEFAULT + "other": [geoprop(inside)]},
                      {LOCATION: [{"type": "Property", "value": inside}]},
                      {LOCATION: [{"type": "Property", "value": outside}]},
                      {LOCATION: [{"type": "Relationship", "object": "urn:x"}]},
                      {LOCATION: [{"type": "Property", "value": "somewhere"}]}):
            assert not db.test(attrs, Q(rel, "Polygon", square)), (rel, attrs)
            assert not db.test(attrs, Q(rel, "Point", [3, 3])), (rel, attrs)
    # several instances (datasetId): any of them may match
    both = {LOCATION: [geoprop(outside), geoprop(inside, datasetId="urn:ds:2")]}
    for rel in ("within", "intersects", "disjoint"):
        assert db.test(both, Q(rel, "Polygon", square)), rel
    assert not db.test(both, Q("equals", "Polygon", square))
    mixed = {LOCATION: [{"type": "Property", "value": outside}, geoprop(inside, datasetId="urn:ds:2")]}
    assert db.test(mixed, Q("within", "Polygon", square))
    assert not db.test(mixed, Q("disjoint", "Polygon", square))
    assert db.test(mixed, Q("near;maxDistance==10", "Point", [3, 3]))
    assert not db.test(mixed, Q("near;minDistance==10", "Point", [3, 3]))
    three = {LOCATION: [geoprop(outside), geoprop(outside, datasetId="urn:ds:2"),
                        geoprop(pt(2.5, 2.5), datasetId="urn:ds:3")]}
    assert db.test(three, Q("near;maxDistance==100000", "Point", [3, 3]))
    # a custom geoproperty, compact (expanded with the @context) or an IRI that is not spliced into the SQL
    custom = {DEFAULT + "myPlace": [geoprop(inside)], LOCATION: [geoprop(outside)]}
    assert db.test(custom, Q("within", "Polygon", square, "myPlace"))
    assert not db.test(custom, Q("within", "Polygon", square))
    odd = {"https://x.org/it's": [geoprop(inside)]}
    assert db.test(odd, Q("within", "Polygon", square, "odd"), ctx=db.custom_ctx)
    assert not db.test(odd, Q("disjoint", "Polygon", square, "odd"), ctx=db.custom_ctx)
    with pytest.raises(NgsiError) as exc:
        db.test(custom, Q("within", "Polygon", square, "id"))
    bad(exc)


def test_near_shapes(db: Db):
    # one degree of latitude is pi R / 180 = 111195.08 m
    degree = math.pi * EARTH_RADIUS / 180
    assert db.test(located(pt(0, 1)), Q(f"near;maxDistance=={degree + 0.01}", "Point", [0, 0]))
    assert not db.test(located(pt(0, 1)), Q(f"near;maxDistance=={degree - 0.01}", "Point", [0, 0]))
    assert db.test(located(pt(0, 1)), Q(f"near;minDistance=={degree - 0.01}", "Point", [0, 0]))
    # to a segment: the distance to the arc's nearest point, not to its ends
    line = {"type": "LineString", "coordinates": [[1, -1], [1, 1]]}  # a meridian, 1 degree east of the point
    assert db.test(located(line), Q(f"near;maxDistance=={degree + 1}", "Point", [0, 0]))
    assert not db.test(located(line), Q(f"near;maxDistance=={degree - 1}", "Point", [0, 0]))
    assert db.test(located(pt(0, 0)), Q(f"near;maxDistance=={degree + 1}", "LineString", [[1, -1], [1, 1]]))
    # the arc between two points on a parallel bows towards the pole: ~17 m at 1 degree north
    assert not db.test(located(pt(0, 0)), Q(f"near;maxDistance=={degree + 10}", "LineString", [[-1, 1], [1, 1]]))
    assert db.test(located(pt(0, 0)), Q(f"near;maxDistance=={degree + 20}", "LineString", [[-1, 1], [1, 1]]))
    # inside a polygon: distance 0; its hole is outside
    assert db.test(located(pt(3, 3)), Q("near;maxDistance==1", "Polygon", HOLED["coordinates"]))
    assert not db.test(located(pt(3, 3)), Q("near;minDistance==1", "Polygon", HOLED["coordinates"]))
    assert not db.test(located(pt(1.5, 1.5)), Q("near;maxDistance==1000", "Polygon", HOLED["coordinates"]))
    assert db.test(located(pt(1.5, 1.5)), Q(f"near;maxDistance=={degree / 2 + 10}", "Polygon",
                                            HOLED["coordinates"]))
    assert db.test(located(HOLED), Q("near;maxDistance==1", "Point", [3, 3]))
    # across the antimeridian and over a pole
    assert db.test(located(pt(179.9, 0)), Q("near;maxDistance==25000", "Point", [-179.9, 0]))
    assert db.test(located(pt(179.9, 0)), Q("near;maxDistance==25000", "LineString", [[-179.9, -1], [-179.9, 1]]))
    assert db.test(located(pt(0, 89.9)), Q("near;maxDistance==25000", "Point", [180, 89.9]))
    assert not db.test(located(pt(0, 89.9)), Q("near;maxDistance==22000", "Point", [180, 89.9]))


# ============================================================================================ near: haversine

def haversine(x1: float, y1: float, x2: float, y2: float) -> float:
    p1, p2 = math.radians(y1), math.radians(y2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(x2 - x1) / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


lons = st.floats(-180, 180, allow_nan=False)
lats = st.floats(-90, 90, allow_nan=False)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=lons, y=lats, dx=st.floats(-0.2, 0.2), dy=st.floats(-0.2, 0.2), d=st.floats(0.5, 50000),
       entity_first=st.booleans())
def test_near_points_match_haversine(db: Db, x: float, y: float, dx: float, dy: float, d: float,
                                     entity_first: bool):
    ex, ey = wrap(x + dx), max(-90.0, min(90.0, y + dy))
    h = haversine(ex, ey, x, y)
    assume(abs(h - d) > 1e-6 * d)
    entity = located(pt(ex, ey))
    assert db.test(entity, Q(f"near;maxDistance=={d!r}", "Point", [x, y])) == (h <= d)
    assert db.test(entity, Q(f"near;minDistance=={d!r}", "Point", [x, y])) == (h >= d)


def destination(x: float, y: float, bearing: float, metres: float) -> tuple[float, float]:
    p, d = math.radians(y), metres / EARTH_RADIUS
    p2 = math.asin(max(-1.0, min(1.0, math.sin(p) * math.cos(d) + math.cos(p) * math.sin(d) * math.cos(bearing))))
    l2 = math.radians(x) + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p),
                                      math.cos(d) - math.sin(p) * math.sin(p2))
    return wrap(math.degrees(l2)), math.degrees(p2)


def slerp(a: list[float], b: list[float], t: float) -> tuple[float, float]:
    def unit(p: list[float]) -> tuple[float, float, float]:
        la, lo = math.radians(p[1]), math.radians(p[0])
        return math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)
    u, v = unit(a), unit(b)
    w = math.acos(max(-1.0, min(1.0, sum(i * j for i, j in zip(u, v)))))
    if w < 1e-12:
        return a[0], a[1]
    s = [(math.sin((1 - t) * w) * i + math.sin(t * w) * j) / math.sin(w) for i, j in zip(u, v)]
    return math.degrees(math.atan2(s[1], s[0])), math.degrees(math.asin(max(-1.0, min(1.0, s[2]))))


def in_box(x: float, y: float, b: tuple[float, float, float, float]) -> bool:
    return b[0] <= x <= b[2] and b[1] <= y <= b[3]


edge_lons = st.one_of(lons, st.floats(178, 180), st.floats(-180, -178))
edge_lats = st.one_of(lats, st.floats(88, 90), st.floats(-90, -88))
positions = st.builds(lambda x, y: [x, y], edge_lons, edge_lats)


@settings(max_examples=300)
@given(line=st.lists(positions, min_size=1, max_size=3), k=st.integers(0, 2), t=st.floats(0, 1),
       bearing=st.floats(0, 2 * math.pi), d=st.one_of(st.floats(1, 5000), st.floats(1, 3e6)), u=st.floats(0, 0.999))
def test_near_boxes_cover(line: list[list[float]], k: int, t: float, bearing: float, d: float, u: float):
    """A point at less than d from the query geometry (here: from a point of one of its arcs) lies in a box."""
    geometry = {"type": "LineString", "coordinates": line} if len(line) > 1 else {"type": "Point",
                                                                                  "coordinates": line[0]}
    k = min(k, len(line) - 1)
    on = slerp(line[k], line[k + 1], t) if k + 1 < len(line) else (line[k][0], line[k][1])
    box = arcs_box(geometry)
    assert in_box(on[0], on[1], (box[0] - 1e-9, box[1] - 1e-9, box[2] + 1e-9, box[3] + 1e-9)), (on, box)
    x, y = destination(on[0], on[1], bearing, u * d)
    assert any(in_box(x, y, b) for b in near_boxes(box, d)), ((x, y), near_boxes(box, d))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.lists(positions, min_size=2, max_size=4))
def test_sql_box_is_python_box(db: Db, line: list[list[float]]):
    geometry = {"type": "LineString", "coordinates": line}
    got = db.run(db.conn.fetchval("SELECT ngsild.geo_box($1::text::jsonb)::text", json.dumps(geometry)))
    (x2, y2), (x1, y1) = (tuple(map(float, p.strip("()").split(","))) for p in got.split("),("))
    expected = arcs_box(geometry)
    assert all(abs(a - b) <= 1e-9 for a, b in zip((x1, y1, x2, y2), expected)), (got, expected)


# strings without U+0000, which jsonb cannot hold (the cast would fail before either function runs)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-200, 200), st.floats(-200, 200, allow_nan=False),
                         st.text(st.characters(exclude_characters="\x00"), max_size=3))
odd_coordinates = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
geometry_like = st.one_of(
    json_scalars,
    st.builds(lambda t, c: {"type": t, "coordinates": c},
              st.sampled_from(["Point", "MultiPoint", "LineString", "Polygon", "MultiPolygon", "Nope", 7]),
              st.one_of(odd_coordinates, st.builds(lambda x, y: [x, y], st.floats(-200, 200, allow_nan=False),
                                                   st.floats(-100, 100, allow_nan=False)))),
    st.builds(lambda line: {"type": "LineString", "coordinates": line}, st.lists(positions, min_size=2, max_size=3)))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=geometry_like)
def test_bbox_function_is_the_inlined_box(db: Db, value: Any):
    """geo_bbox (PL/pgSQL, migration 8) gives geo_box's value (migration 3) for any jsonb, and never raises."""
    got = db.run(db.conn.fetchrow("SELECT ngsild.geo_bbox(v)::text AS new, ngsild.geo_box(v)::text AS old "
                                  "FROM (SELECT $1::text::jsonb AS v) AS x", json.dumps(value)))
    assert got["new"] == got["old"], (value, got)


def _migration_3_locate(db: Db) -> str:
    """geo_locate as global migration 3 defined it (SQL), created as a temporary function."""
    start = GEO_FUNCTIONS.index("CREATE FUNCTION ngsild.geo_locate(")
    body = GEO_FUNCTIONS[start:GEO_FUNCTIONS.index("END;", start) + 4]
    db.run(db.conn.execute(body.replace("CREATE FUNCTION ngsild.geo_locate(",
                                        "CREATE OR REPLACE FUNCTION pg_temp.geo_locate_v3(", 1)))
    return "pg_temp.geo_locate_v3"


grid_xy = st.integers(0, 8).map(lambda n: n / 2)
grid_point = st.builds(lambda x, y: [x, y], grid_xy, grid_xy)
shapes = st.one_of(
    st.builds(lambda p: {"type": "Point", "coordinates": p}, grid_point),
    st.builds(lambda ps: {"type": "MultiPoint", "coordinates": ps}, st.lists(grid_point, min_size=1, max_size=4)),
    st.builds(lambda ps: {"type": "LineString", "coordinates": ps}, st.lists(grid_point, min_size=2, max_size=5)),
    st.builds(lambda a, b: {"type": "MultiLineString", "coordinates": [a, b]},
              st.lists(grid_point, min_size=2, max_size=3), st.lists(grid_point, min_size=2, max_size=3)),
    st.builds(lambda ps: {"type": "Polygon", "coordinates": [ps + [ps[0]]]},
              st.lists(grid_point, min_size=3, max_size=6)),
    st.just({"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                                                [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]]}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometry=shapes, points=st.lists(st.one_of(grid_point, st.builds(lambda x, y: [x, y], st.floats(-1, 5),
                                                                             st.floats(-1, 5))),
                                        min_size=1, max_size=6))
def test_point_location_is_migration_3s(db: Db, geometry: dict[str, Any], points: list[list[float]]):
    """geo_locate in PL/pgSQL (migration 9) answers as the SQL version of migration 3 did."""
    old = _migration_3_locate(db)
    rows = db.run(db.conn.fetch(
        f"SELECT ngsild.geo_locate(p.x, p.y, g.g) AS new, {old}(p.x, p.y, g.g) AS old "
        "FROM (SELECT ngsild.geo_prep($1::text::jsonb) AS g) g, unnest($2::float8[], $3::float8[]) AS p(x, y)",
        json.dumps(geometry), [p[0] for p in points], [p[1] for p in points]))
    assert [r["new"] for r in rows] == [r["old"] for r in rows], (geometry, points, [tuple(r) for r in rows])


def test_old_box_indexes_are_dropped(db: Db):
    """Tenant migration 6 drops the indexes on geo_box (the advisor builds their geo_bbox successors)."""
    name = f"t_geo_{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[str]:
        async with db.conn.transaction():
            await db.conn.execute("INSERT INTO ngsild.tenants (name, schema_name) VALUES ($1, $1)", name)
            await db.conn.execute(f"CREATE SCHEMA {name}")
            await migrate_tenant(db.conn, name, 0)
        # an index a version-5 advisor built, and one of today's
        await db.conn.execute(f"CREATE INDEX old_box ON {name}.entities USING gist "
                              f"(ngsild.geo_box(attrs -> '{LOCATION}' -> 0 -> 'value'))")
        await db.conn.execute(f"CREATE INDEX kept ON {name}.entities USING gist "
                              f"(ngsild.geo_bbox(attrs -> '{LOCATION}' -> 0 -> 'value'))")
        async with db.conn.transaction():
            await migrate_tenant(db.conn, name, 5)  # from version 5 to the latest
        rows = await db.conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", name)
        await db.conn.execute(f"DROP SCHEMA {name} CASCADE")
        await db.conn.execute("DELETE FROM ngsild.tenants WHERE name = $1", name)
        return sorted(r["indexname"] for r in rows)

    names = db.run(scenario())
    assert "old_box" not in names and "kept" in names and "entities_id" in names, names


# ============================================================================================ HTTP

async def test_geo_queries_over_http(http: aiohttp.ClientSession, broker_url: str):
    headers = {"NGSILD-Tenant": f"geo-{uuid.uuid4().hex[:8]}"}
    entities = [{"id": f"urn:ngsi-ld:Spot:{i:02}", "type": "Spot",
                 "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [i / 10, 0.5]}}}
                for i in range(30)]
    entities.append({"id": "urn:ngsi-ld:Spot:road", "type": "Spot",
                     "location": {"type": "GeoProperty",
                                  "value": {"type": "LineString", "coordinates": [[0.55, -1], [0.55, 2]]}}})
    entities.append({"id": "urn:ngsi-ld:Spot:nowhere", "type": "Spot", "name": "no location"})
    async with http.post(broker_url + API + "/entityOperations/upsert", json=entities, headers=headers) as resp:
        assert resp.status in (201, 204), await resp.text()

    async def get(params: dict[str, str]) -> tuple[int, Any, Any]:
        async with http.get(broker_url + API + "/entities", params=params, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers.get("NGSILD-Results-Count")

    square = json.dumps([sq(0.25, 0, 1.25, 1)])
    inside = [f"urn:ngsi-ld:Spot:{i:02}" for i in range(3, 13)]
    status, body, _ = await get({"georel": "within", "geometry": "Polygon", "coordinates": square, "limit": "100"})
    assert status == 200, body
    assert sorted(e["id"] for e in body) == inside
    status, body, _ = await get({"type": "Spot", "georel": "intersects", "geometry": "Polygon", "coordinates": square,
                                 "limit": "100"})
    assert sorted(e["id"] for e in body) == sorted(inside + ["urn:ngsi-ld:Spot:road"])
    status, body, _ = await get({"type": "Spot", "georel": "near;maxDistance==12000", "geometry": "Point",
                                 "coordinates": "[0.5, 0.5]", "limit": "100"})
    assert sorted(e["id"] for e in body) == sorted([f"urn:ngsi-ld:Spot:{i:02}" for i in range(4, 7)]
                                                   + ["urn:ngsi-ld:Spot:road"])
    # paging: count stays exact
    pages: list[str] = []
    for offset in range(0, 12, 4):
        status, body, count = await get({"georel": "within", "geometry": "Polygon", "coordinates": square,
                                         "limit": "4", "offset": str(offset), "count": "true"})
        assert status == 200 and count == "10", (status, count)
        pages += [e["id"] for e in body]
    assert pages == inside
    # POST /entityOperations/query with geoQ
    query = {"type": "Query", "entities": [{"type": "Spot"}],
             "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": json.loads(square),
                      "geoproperty": "location"}}
    async with http.post(broker_url + API + "/entityOperations/query", json=query, headers=headers,
                         params={"limit": "3", "count": "true"}) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers.get("NGSILD-Results-Count") == "10"
        assert [e["id"] for e in await resp.json()] == inside[:3]
    query["geoQ"] = {"georel": "disjoint", "geometry": "Polygon", "coordinates": square}
    async with http.post(broker_url + API + "/entityOperations/query", json=query, headers=headers,
                         params={"limit": "100"}) as resp:
        assert resp.status == 200, await resp.text()
        ids = [e["id"] for e in await resp.json()]
    assert sorted(ids) == sorted(set(e["id"] for e in entities[:30]) - set(inside))
    # invalid geo-queries: 400 ProblemDetails
    for params in ({"type": "Spot", "georel": "near", "geometry": "Point", "coordinates": "[0, 0]"},
                   {"type": "Spot", "georel": "within", "geometry": "Circle", "coordinates": "[0, 0]"},
                   {"type": "Spot", "georel": "within", "geometry": "Point", "coordinates": "[0, "},
                   {"type": "Spot", "georel": "within", "geometry": "Polygon", "coordinates": "[[0, 0]]"},
                   {"type": "Spot", "georel": "within", "geometry": "Point"},
                   {"type": "Spot", "georel": "near;maxDistance==-1", "geometry": "Point", "coordinates": "[0, 0]"}):
        status, body, _ = await get(params)
        assert status == 400, (params, body)
        assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", body
    query["geoQ"] = {"georel": "within", "geometry": "GeometryCollection", "coordinates": []}
    async with http.post(broker_url + API + "/entityOperations/query", json=query, headers=headers) as resp:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"

"""Unit and property tests of broker.model.geojson (RFC 7946 geometries for NGSI-LD GeoProperties)."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.model.geojson import GEOMETRY_TYPES, bbox, is_geometry, parse_geometry, validate_geometry

WHERE = "attribute 'location'"


def rejected(value, *fragments: str, allow_collection: bool = False) -> str:
    """Assert validate_geometry rejects ``value`` with BadRequestData naming WHERE and every fragment."""
    with pytest.raises(NgsiError) as info:
        validate_geometry(value, WHERE, allow_collection=allow_collection)
    err = info.value
    assert err.error_type == "BadRequestData" and err.status == 400
    assert err.detail.startswith(WHERE + ": "), err.detail
    for f in fragments:
        assert f in err.detail, (f, err.detail)
    return err.detail


SQUARE = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
HOLE = [[0.2, 0.2], [0.2, 0.4], [0.4, 0.4], [0.2, 0.2]]

VALID = [
    {"type": "Point", "coordinates": [17.1, 48.7]},  # 463_01_02
    {"type": "Point", "coordinates": [-180, -90]},
    {"type": "Point", "coordinates": [180, 90, 1200.5]},
    {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
    {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
    {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8], [9, 10]]]},
    {"type": "Polygon", "coordinates": [SQUARE]},
    {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
    {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]},  # clockwise: not rejected
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE, HOLE]]},
    {"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 1, 2]},
    {"type": "LineString", "coordinates": [[170, 0], [-170, 1]], "bbox": [170, 0, -170, 1]},  # antimeridian box
    {"type": "Point", "coordinates": [1, 2], "crs": {"type": "name"}, "foreign": [1]},  # foreign members kept
    # the ETSI suite's 019_11 fixture polygon: self-intersecting, must be accepted (SHOULD, not MUST)
    {"type": "Polygon", "coordinates": [[[13.2865906, 52.5648645], [13.2879639, 52.5648645],
                                         [13.2797241, 52.4988679], [13.477478, 52.4712703],
                                         [13.5049438, 52.5373084], [13.2865906, 52.5648645]]]},
]


@pytest.mark.parametrize("geometry", VALID, ids=lambda g: g["type"])
def test_valid_geometries(geometry):
    before = copy.deepcopy(geometry)
    assert validate_geometry(geometry, WHERE) is None
    assert geometry == before  # never modified
    assert is_geometry(geometry)


@pytest.mark.parametrize("value, fragments", [
    ("POINT(1 2)", ["must be a JSON object"]),
    ([1, 2], ["must be a JSON object"]),
    ({"coordinates": [1, 2]}, ["needs a string 'type'"]),
    ({"type": 5, "coordinates": [1, 2]}, ["'type' must be a string"]),
    ({"type": "point", "coordinates": [1, 2]}, ["'point'", "case-sensitive", "'Point'"]),
    ({"type": "Circle", "coordinates": [1, 2]}, ["unknown GeoJSON geometry type 'Circle'"]),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}, ["a Feature is not"]),
    ({"type": "Point"}, ["Point needs a 'coordinates' member"]),
    ({"type": "Point", "coordinates": None}, ["Point coordinates", "not a position"]),
    ({"type": "Point", "coordinates": [1]}, ["Point coordinates has 1 element", "2 or 3"]),
    ({"type": "Point", "coordinates": [1, 2, 3, 4]}, ["has 4 elements"]),
    ({"type": "Point", "coordinates": [True, 2]}, ["longitude True is not a number"]),
    ({"type": "Point", "coordinates": [1, False]}, ["latitude False is not a number"]),
    ({"type": "Point", "coordinates": ["1", 2]}, ["longitude '1' is not a number"]),
    ({"type": "Point", "coordinates": [1, 2, None]}, ["altitude None is not a number"]),
    ({"type": "Point", "coordinates": [1, 2, math.inf]}, ["altitude inf is not a finite number"]),
    ({"type": "Point", "coordinates": [math.nan, 2]}, ["longitude nan is not a finite number"]),
    ({"type": "Point", "coordinates": [180.0001, 2]}, ["longitude 180.0001 is out of range [-180, 180]"]),
    ({"type": "Point", "coordinates": [1, -90.5]}, ["latitude -90.5 is out of range [-90, 90]"]),
    ({"type": "MultiPoint", "coordinates": []}, ["MultiPoint coordinates has 0 positions"]),
    ({"type": "MultiPoint", "coordinates": [[1, 2], [3]]}, ["MultiPoint coordinates position 1 has 1 element"]),
    ({"type": "LineString", "coordinates": [[1, 2]]}, ["LineString coordinates has 1 position, needs at least 2"]),
    ({"type": "LineString", "coordinates": [1, 2]}, ["LineString coordinates position 0", "not a position"]),
    ({"type": "MultiLineString", "coordinates": []}, ["at least one LineString"]),
    ({"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[1, 2]]]}, ["MultiLineString line 1 has 1"]),
    ({"type": "Polygon", "coordinates": []}, ["Polygon coordinates must contain at least one linear ring"]),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, ["Polygon ring 0 has 3 positions",
                                                                     "at least 4"]),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, ["Polygon ring 0 is not closed"]),
    ({"type": "Polygon", "coordinates": [SQUARE, [[0, 0], [1, 1], [0, 1], [0, 0.5]]]},
     ["Polygon ring 1 is not closed"]),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0, 5]]]}, ["ring 0 is not closed"]),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 91], [0, 0]]]},
     ["Polygon ring 0 position 2: latitude 91 is out of range"]),
    ({"type": "MultiPolygon", "coordinates": [[SQUARE], [[[0, 0], [1, 0], [1, 1], [0, 2]]]]},
     ["MultiPolygon polygon 1 ring 0 is not closed"]),
    ({"type": "MultiPolygon", "coordinates": []}, ["at least one Polygon"]),
    ({"type": "Point", "coordinates": [1, 2], "geometries": []}, ["must not have a 'geometries' member"]),
    ({"type": "Point", "coordinates": [1, 2], "properties": {}}, ["must not have a 'properties' member"]),
    ({"type": "Point", "coordinates": [1, 2], "bbox": [1, 2]}, ["bbox must be an array of 4 or 6 numbers"]),
    ({"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, True, 3]}, ["bbox True is not a number"]),
    ({"type": "Point", "coordinates": [1, 2], "bbox": [1, 50, 2, 40]}, ["bbox south latitude 50"]),
    ({"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 200, 3]}, ["bbox longitude 200"]),
])
def test_invalid_geometries(value, fragments):
    rejected(value, *fragments)


def test_polygon_ring_not_closed_message_is_precise():
    detail = rejected({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})
    assert detail.startswith("attribute 'location': GeoJSON Polygon ring 0 is not closed")


def test_geometry_collection_excluded_by_default():  # GS CIM 009 4.6.3, ETSI 463_01_01
    gc = {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [17.1, 48.7]}]}
    rejected(gc, "GeometryCollection is not supported", "4.6.3")
    assert is_geometry(gc)  # so that a concise GC value is routed here and rejected precisely
    validate_geometry(gc, WHERE, allow_collection=True)


@pytest.mark.parametrize("value, fragments", [
    ({"type": "GeometryCollection"}, ["needs a 'geometries' member"]),
    ({"type": "GeometryCollection", "coordinates": [1, 2]}, ["needs 'geometries', not 'coordinates'"]),
    ({"type": "GeometryCollection", "geometries": {}}, ["'geometries' must be an array"]),
    ({"type": "GeometryCollection", "geometries": []}, ["'geometries' must not be empty"]),
    ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]},
                                                   {"type": "LineString", "coordinates": [[1, 2]]}]},
     ["geometry 1: GeoJSON LineString coordinates has 1 position"]),
    ({"type": "GeometryCollection", "geometries": [
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}]},
     ["geometry 0: nested GeometryCollection is not supported"]),
])
def test_invalid_geometry_collections(value, fragments):
    rejected(value, *fragments, allow_collection=True)


def test_parse_geometry_string_encoding():  # 4.7.2, ETSI 471_01_01 / 471_01_02
    assert parse_geometry('{"type": "Point", "coordinates": [17.1, 48.7]}', WHERE) == {
        "type": "Point", "coordinates": [17.1, 48.7]}
    obj = {"type": "Point", "coordinates": [1, 2]}
    assert parse_geometry(obj, WHERE) is obj
    for bad, fragment in [("not a geometry", "not a JSON-encoded GeoJSON geometry"),
                          ("[1, 2]", "not a JSON-encoded GeoJSON geometry"),
                          ('{"type": "Point", "coordinates": [1]}', "Point coordinates has 1 element")]:
        with pytest.raises(NgsiError) as info:
            parse_geometry(bad, WHERE)
        assert info.value.error_type == "BadRequestData"
        assert info.value.detail.startswith(WHERE) and fragment in info.value.detail


@pytest.mark.parametrize("value", [
    None, 5, "Point", [], {}, {"type": "Point"}, {"type": "Feature", "coordinates": [1, 2]},
    {"type": ["Point"], "coordinates": [1, 2]}, {"type": {"a": 1}, "coordinates": [1, 2]},
    {"type": "GeometryCollection"}, {"type": "Property", "value": 5},
])
def test_is_geometry_negative(value):
    assert is_geometry(value) is False


def test_bbox_examples():
    assert bbox({"type": "Point", "coordinates": [17.1, 48.7]}) == (17.1, 48.7, 17.1, 48.7)
    assert bbox({"type": "Polygon", "coordinates": [SQUARE, HOLE]}) == (0.0, 0.0, 1.0, 1.0)
    assert bbox({"type": "MultiPolygon", "coordinates": [[SQUARE], [[[5, 5], [6, 5], [6, 7], [5, 5]]]]}) == (
        0.0, 0.0, 6.0, 7.0)
    assert bbox({"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [-3, 4]}, {"type": "LineString", "coordinates": [[1, -2], [2, 8]]}]}) == (
        -3.0, -2.0, 2.0, 8.0)
    assert all(type(v) is float for v in bbox({"type": "Point", "coordinates": [1, 2]}))


# ------------------------------------------------------------------------------------------- properties

lon = st.floats(min_value=-180, max_value=180, allow_nan=False) | st.integers(-180, 180)
lat = st.floats(min_value=-90, max_value=90, allow_nan=False) | st.integers(-90, 90)
alt = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10_000, 10_000)
position = st.one_of(st.tuples(lon, lat).map(list), st.tuples(lon, lat, alt).map(list))


@st.composite
def ring(draw):
    pts = draw(st.lists(position, min_size=3, max_size=12))
    return pts + [list(pts[0])]


polygon_coords = st.lists(ring(), min_size=1, max_size=3)
geometry = st.one_of(
    position.map(lambda p: {"type": "Point", "coordinates": p}),
    st.lists(position, min_size=1, max_size=10).map(lambda c: {"type": "MultiPoint", "coordinates": c}),
    st.lists(position, min_size=2, max_size=10).map(lambda c: {"type": "LineString", "coordinates": c}),
    st.lists(st.lists(position, min_size=2, max_size=6), min_size=1, max_size=4).map(
        lambda c: {"type": "MultiLineString", "coordinates": c}),
    polygon_coords.map(lambda c: {"type": "Polygon", "coordinates": c}),
    st.lists(polygon_coords, min_size=1, max_size=3).map(lambda c: {"type": "MultiPolygon", "coordinates": c}),
)


def all_positions(g):
    t, c = g["type"], g.get("coordinates")
    if t == "Point":
        return [c]
    if t in ("MultiPoint", "LineString"):
        return c
    if t in ("MultiLineString", "Polygon"):
        return [p for part in c for p in part]
    if t == "MultiPolygon":
        return [p for poly in c for r in poly for p in r]
    return [p for sub in g["geometries"] for p in all_positions(sub)]


@given(geometry)
def test_generated_valid_geometries_pass(g):
    assert g["type"] in GEOMETRY_TYPES
    validate_geometry(g, WHERE)
    assert is_geometry(g)
    min_x, min_y, max_x, max_y = bbox(g)
    for p in all_positions(g):
        assert min_x <= p[0] <= max_x and min_y <= p[1] <= max_y
    assert any(p[0] == min_x for p in all_positions(g)) and any(p[1] == max_y for p in all_positions(g))


@given(st.lists(geometry, min_size=1, max_size=4))
def test_generated_collections_pass_when_allowed(geoms):
    gc = {"type": "GeometryCollection", "geometries": geoms}
    validate_geometry(gc, WHERE, allow_collection=True)
    rejected(gc, "GeometryCollection is not supported")


@given(polygon_coords, st.data())
def test_opening_a_closed_ring_fails(rings, data):
    i = data.draw(st.integers(0, len(rings) - 1))
    last = rings[i][-1]
    new_lon = data.draw(lon.filter(lambda x: x != last[0]))
    rings[i][-1] = [new_lon] + list(last[1:])
    rejected({"type": "Polygon", "coordinates": rings}, f"Polygon ring {i} is not closed")


@given(geometry, st.data())
def test_a_bad_number_anywhere_fails(g, data):
    positions = all_positions(g)
    p = positions[data.draw(st.integers(0, len(positions) - 1))]
    axis = data.draw(st.integers(0, len(p) - 1))
    bad = data.draw(st.sampled_from([True, None, "1", math.nan, math.inf, 1e9 if axis < 2 else True]))
    original = p[axis]
    p[axis] = bad  # positions are checked before ring closure, so the number error is what is reported
    detail = rejected(g)
    assert ("not a number" in detail or "not a finite number" in detail or "out of range" in detail), detail
    p[axis] = original


@given(geometry)
@settings(max_examples=50)
def test_wrong_case_type_fails(g):
    g["type"] = g["type"].upper()
    rejected(g, "case-sensitive")

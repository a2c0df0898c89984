"""NGSI-LD geo-queries (GS CIM 009 clause 4.10; parameters of 5.7.2 / 6.4.3.2, the ``geoQ`` of a Query body).

Public API:

* ``parse_geo_params(geometry, georel, coordinates, geoproperty)`` -- the GET parameters -> ``GeoQuery``
  (None when the request has no geo-query); 400 BadRequestData naming the problem otherwise;
* ``parse_geo_q(obj)`` -- the ``geoQ`` member of a POST /entityOperations/query body -> ``GeoQuery``;
* ``compile_geo(geo, ctx, args, postgis=...)`` -- ``GeoFilter``: one parameterised SQL boolean over a row of
  ``{schema}.entities`` and the indexes it can use (``broker.query.geo_sql``);
* ``detect_postgis(conn)`` -- whether a database has PostGIS on its search path (ask once per pool).

Grammar (4.10)::

    georel   = "near;maxDistance==" PositiveNumber / "near;minDistance==" PositiveNumber
             / "within" / "contains" / "intersects" / "equals" / "disjoint" / "overlaps"
    geometry = "Point" / "MultiPoint" / "LineString" / "MultiLineString" / "Polygon" / "MultiPolygon"

PositiveNumber is an RFC 8259 number without sign, not zero, finite as a double (metres). ``near`` takes
exactly one distance (ETSI 019_30_03); names are case-sensitive. ``coordinates`` is the JSON coordinates array
of ``geometry`` (RFC 7946; URL-decoded by the framework in GET, an array or its JSON text in ``geoQ``),
validated by ``broker.model.geojson.validate_geometry`` and limited to ``MAX_POSITIONS`` positions.
``geoproperty`` (default ``location``) names the GeoProperty queried; it is expanded with the request's
@context when the query is compiled. A lone ``geoproperty`` (no georel / geometry / coordinates) is not a
geo-query and is ignored; any other incomplete combination is 400.

Semantics (what ``broker.query.geo_sql`` compiles; the same with and without PostGIS):

* An entity matches when ANY instance (any datasetId) of the target attribute is a GeoProperty whose value
  matches; entities without it never match (not even ``disjoint`` or ``minDistance``).
* ``within contains intersects overlaps disjoint equals``: the OGC Simple Features relations (DE-9IM, as
  ST_Within, ST_Contains, ...; "as specified by [14]" in 4.10), planar, GeoJSON longitude/latitude taken as
  x/y, 2D (an altitude is ignored), with the entity geometry first: ``within`` = the entity is within the
  query geometry, ``contains`` = the entity contains it. Boundaries as in OGC: ``within`` / ``contains``
  need the inner geometry inside the closure of the outer one and some interior point in common, so a point
  on a polygon's boundary (or a line's end point) is NOT within it and is NOT contained by it, but
  intersects it; a polygon hole is exterior; ``equals`` is point-set equality (a ring's start vertex,
  orientation or a repeated vertex do not matter); ``overlaps`` needs the same dimension, interiors meeting
  in that dimension and neither covering the other; ``disjoint`` = not ``intersects``. A MultiLineString's
  boundary follows the mod-2 rule. Coordinates are compared exactly as doubles (no tolerance), so a point
  is on an edge only if it is exactly on it in floating point; a coordinate below 1e-30 degrees in magnitude
  counts as 0 (PostgreSQL raises on float underflow). GEOS computes the crossing point of two segments in
  floating point: where it is not representable and lies on a stretch shared with a third segment (lines
  that overlap and cross), PostGIS may answer differently from this exact relation.
* ``near;maxDistance==d`` / ``near;minDistance==d``: the distance between the entity and the query geometry
  is <= d / >= d metres (both bounds inclusive), on a sphere of radius ``EARTH_RADIUS`` = 6371008.7714150598 m
  (the mean radius (2a + b) / 3 of the WGS 84 ellipsoid, PostGIS's sphere): 0 when the geometries intersect
  (as above), otherwise the least great-circle distance from a vertex of one geometry to a vertex
  (haversine) or a segment (the minor great-circle arc between its two positions) of the other. Point to
  point, that is the haversine distance.
* Geometries are expected to be valid in the OGC sense (simple rings, holes inside their shell, polygons of a
  MultiPolygon not overlapping); on invalid ones (ST_IsValid false) the answer is defined by the pure-SQL
  algorithm (even-odd point location over all rings), with PostGIS too: GEOS leaves them undefined.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from broker.errors import NgsiError, bad_request
from broker.model.geojson import GEOMETRY_TYPES, validate_geometry

from .geo_sql import EARTH_RADIUS, GeoFilter, compile_geo, detect_postgis

__all__ = ["GeoQuery", "GeoFilter", "GEORELS", "EARTH_RADIUS", "MAX_POSITIONS", "parse_geo_params",
           "parse_geo_q", "compile_geo", "detect_postgis"]

#: the relations of 4.10 (``near`` with one distance modifier)
GEORELS: tuple[str, ...] = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")
#: the most positions a query geometry may have (evaluation is O(entity positions x query positions))
MAX_POSITIONS = 10_000
DEFAULT_GEOPROPERTY = "location"

_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DISTANCE = re.compile(r"(maxDistance|minDistance)==(.*)", re.S)
_LOWER_RELS = {r.lower(): r for r in GEORELS}
_LOWER_TYPES = {t.lower(): t for t in GEOMETRY_TYPES}
_GEOREL_FORMS = ("near;maxDistance==<metres>, near;minDistance==<metres>, within, contains, intersects, "
                 "equals, disjoint, overlaps")


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query. ``geometry`` is the validated GeoJSON geometry ``{"type", "coordinates"}``;
    ``max_distance`` / ``min_distance`` (metres) only for ``near`` (exactly one of them)."""

    georel: str
    geometry: dict[str, Any]
    geoproperty: str = DEFAULT_GEOPROPERTY
    max_distance: float | None = None
    min_distance: float | None = None

    def __hash__(self) -> int:  # the geometry dict is not hashable
        return hash((self.georel, orjson.dumps(self.geometry), self.geoproperty, self.max_distance,
                     self.min_distance))


def parse_geo_params(geometry: str | None, georel: str | None, coordinates: str | None,
                     geoproperty: str | None) -> GeoQuery | None:
    """The geo-query of GET parameters (4.10, 5.7.2); None when georel, geometry and coordinates are all
    absent. ``coordinates`` is the (URL-decoded) JSON text of the coordinates array."""
    if georel is None and geometry is None and coordinates is None:
        return None
    missing = [n for n, v in (("georel", georel), ("geometry", geometry), ("coordinates", coordinates))
               if v is None]
    if missing:
        raise bad_request(f"incomplete geo-query: {' and '.join(missing)} missing (a geo-query needs georel, "
                          "geometry and coordinates)")
    assert georel is not None and geometry is not None and coordinates is not None
    coords = _json_coordinates(coordinates, "coordinates")
    return _build(georel, geometry, coords, geoproperty, "")


def parse_geo_q(obj: Any) -> GeoQuery:
    """The ``geoQ`` member of a Query (5.2.13 GeoQuery): georel, geometry, coordinates (an array or its JSON
    text), optional geoproperty. Other members are ignored."""
    if not isinstance(obj, dict):
        raise bad_request(f"geoQ must be a JSON object, got {_json_type(obj)}")
    missing = [n for n in ("georel", "geometry", "coordinates") if obj.get(n) is None]
    if missing:
        raise bad_request(f"geoQ: {' and '.join(repr(n) for n in missing)} missing (a geo-query needs georel, "
                          "geometry and coordinates)")
    for name in ("georel", "geometry"):
        if not isinstance(obj[name], str):
            raise bad_request(f"geoQ.{name} must be a string, got {_json_type(obj[name])}")
    geoproperty = obj.get("geoproperty")
    if geoproperty is not None and not isinstance(geoproperty, str):
        raise bad_request(f"geoQ.geoproperty must be a string, got {_json_type(geoproperty)}")
    coords = obj["coordinates"]
    if isinstance(coords, str):
        coords = _json_coordinates(coords, "geoQ.coordinates")
    elif not isinstance(coords, list):
        raise bad_request(f"geoQ.coordinates must be an array (or its JSON text), got {_json_type(coords)}")
    return _build(obj["georel"], obj["geometry"], coords, geoproperty, "geoQ.")


# ================================================================================================ parts

def _build(georel: str, geometry: str, coords: list[Any], geoproperty: str | None, prefix: str) -> GeoQuery:
    rel, max_d, min_d = parse_georel(georel, prefix + "georel")
    gtype = _geometry_type(geometry, prefix + "geometry")
    if _count_positions(coords, MAX_POSITIONS) > MAX_POSITIONS:
        raise NgsiError("TooComplexQuery", f"{prefix}coordinates: more than {MAX_POSITIONS} positions")
    value = {"type": gtype, "coordinates": coords}
    validate_geometry(value, f"{prefix}coordinates")
    return GeoQuery(rel, value, _geoproperty(geoproperty, prefix + "geoproperty"), max_d, min_d)


def parse_georel(text: str, where: str = "georel") -> tuple[str, float | None, float | None]:
    """``(relation, maxDistance, minDistance)`` of a georel (4.10 ABNF)."""
    if text == "":
        raise bad_request(f"{where} is empty (one of {_GEOREL_FORMS})")
    parts = text.split(";")
    rel = parts[0]
    if rel not in GEORELS:
        hint = _LOWER_RELS.get(rel.strip().lower())
        if hint is not None:
            raise bad_request(f"{where}: unknown relation {rel!r} (names are case-sensitive and have no spaces: "
                              f"{hint!r})")
        raise bad_request(f"{where}: unknown relation {_short(rel)} (one of {_GEOREL_FORMS})")
    if rel != "near":
        if len(parts) > 1:
            raise bad_request(f"{where}: {rel!r} takes no modifier, got {_short(text)}")
        return rel, None, None
    if len(parts) == 1:
        raise bad_request(f"{where}: 'near' needs a distance: near;maxDistance==<metres> or "
                          "near;minDistance==<metres>")
    if len(parts) > 2:
        raise bad_request(f"{where}: 'near' takes exactly one distance (maxDistance or minDistance), got "
                          f"{_short(text)}")
    m = _DISTANCE.fullmatch(parts[1])
    if m is None:
        raise bad_request(f"{where}: invalid near modifier {_short(parts[1])} (maxDistance==<metres> or "
                          "minDistance==<metres>, case-sensitive)")
    name, number = m.group(1), m.group(2)
    distance = _positive_number(number)
    if distance is None:
        raise bad_request(f"{where}: {name} must be a positive number of metres (a JSON number, no sign, not "
                          f"zero), got {_short(number)}")
    return ("near", distance, None) if name == "maxDistance" else ("near", None, distance)


def _positive_number(text: str) -> float | None:
    if _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) and value > 0 else None


def _geometry_type(geometry: Any, where: str) -> str:
    if geometry in GEOMETRY_TYPES:
        return geometry
    if geometry == "":
        raise bad_request(f"{where} is empty")
    if geometry == "GeometryCollection":
        raise bad_request(f"{where}: GeometryCollection is not supported in geo-queries (GS CIM 009 4.10)")
    hint = _LOWER_TYPES.get(geometry.strip().lower())
    if hint is not None:
        raise bad_request(f"{where}: unknown geometry {_short(geometry)} (names are case-sensitive: {hint!r})")
    raise bad_request(f"{where}: unknown geometry {_short(geometry)} (one of Point, MultiPoint, LineString, "
                      "MultiLineString, Polygon, MultiPolygon)")


def _json_coordinates(text: str, where: str) -> list[Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"{where} is not valid JSON ({exc}): {_short(text)}") from None
    if not isinstance(value, list):
        raise bad_request(f"{where} must be a JSON array of coordinates, got {_json_type(value)}")
    return value


def _geoproperty(name: str | None, where: str) -> str:
    if name is None:
        return DEFAULT_GEOPROPERTY
    if not name:
        raise bad_request(f"{where} is empty")
    if name != name.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in name):
        raise bad_request(f"{where}: {_short(name)} is not an attribute name (whitespace or control characters)")
    return name


def _count_positions(value: Any, limit: int) -> int:
    """Number of numbers-only arrays (positions) in nested arrays, stopping once past ``limit``."""
    count = 0
    stack = [value]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, list):
            if item and not isinstance(item[0], list):
                count += 1
            else:
                stack.extend(item)
    return count


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."

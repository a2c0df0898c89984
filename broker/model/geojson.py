"""GeoJSON geometry validation (RFC 7946) for NGSI-LD GeoProperty values (GS CIM 009 clauses 4.6.3, 4.7).

Public functions:

* ``validate_geometry(value, where, *, allow_collection=False)`` -- raise ``BadRequestData`` unless ``value`` is a
  valid GeoJSON geometry object;
* ``parse_geometry(value, where, ...)`` -- the same, but also accepts the JSON-string encoding of clause 4.7.2 and
  returns the geometry object;
* ``is_geometry(value)`` -- cheap shape test used to infer a GeoProperty from a concise value (clause 4.5.2.3);
* ``bbox(value)`` -- ``(min lon, min lat, max lon, max lat)`` of a geometry already validated.

What is checked (every failure names ``where`` and the offending part, e.g.
``attribute 'location': GeoJSON Polygon ring 0 is not closed``):

* the value is a JSON object whose ``type`` is exactly (case-sensitive) one of ``Point``, ``MultiPoint``,
  ``LineString``, ``MultiLineString``, ``Polygon``, ``MultiPolygon`` (and ``GeometryCollection`` only when
  ``allow_collection=True``: clause 4.6.3 supports "all the GeoJSON Geometries with the exception of
  GeometryCollection", so a GeoProperty value or a geoQ geometry never is one -- test 463_01_01);
* ``coordinates`` is present and has the nesting depth of its type (``geometries`` for a collection);
* a position is an array of 2 or 3 finite numbers (``bool`` is not a number); longitude within [-180, 180],
  latitude within [-90, 90] (RFC 7946 3.1.1: WGS 84 longitude, latitude[, altitude]; the SHOULD NOT on
  more than three elements is enforced);
* LineString: >= 2 positions; Polygon: every linear ring has >= 4 positions and is closed (first and last
  positions hold identical values, RFC 7946 3.1.6);
* Multi* geometries and collections are not empty: RFC 7946 3.1 only lets processors read empty
  ``coordinates`` as a null geometry, which carries no location and cannot be indexed;
* a GeometryCollection is not nested (RFC 7946 3.1.8 SHOULD) and its members obey the same rules;
* the RFC 7946 7.1 prohibitions: a geometry has no ``geometry``, ``properties`` or ``features`` member, and no
  ``geometries`` member unless it is a GeometryCollection;
* an optional ``bbox`` is an array of 4 or 6 finite numbers, longitudes/latitudes in range, south <= north
  (west > east is legal: a box crossing the antimeridian, RFC 7946 5.2). It is not compared with the
  coordinates.

What is deliberately NOT checked:

* ring orientation (winding order): RFC 7946 3.1.6 says exterior rings SHOULD be counterclockwise, and says
  parsers SHOULD NOT reject polygons that do not follow the right-hand rule;
* self-intersection, hole containment and duplicate consecutive positions: "should" in the spec (GS CIM 009
  5.2.6.11.1 / OGC simple features); the ETSI suite's own 019_11 fixture polygon is self-intersecting, so
  rejecting would break conformance, and the check is O(n^2) on the hot write path;
* foreign members (RFC 7946 6.1) and the ``crs`` member of the obsolete 2008 format: ignored, kept as given.
"""

from __future__ import annotations

from math import isfinite
from typing import Any

import orjson

from broker.errors import bad_request

__all__ = ["GEOMETRY_TYPES", "validate_geometry", "parse_geometry", "is_geometry", "bbox"]

#: the geometry types an NGSI-LD Value may be (clause 4.6.3) -- GeometryCollection excluded
GEOMETRY_TYPES: frozenset[str] = frozenset(
    ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"))
_ALL_TYPES: frozenset[str] = GEOMETRY_TYPES | {"GeometryCollection"}
_LOWER_TYPES: dict[str, str] = {t.lower(): t for t in _ALL_TYPES}
_NOT_GEOMETRY: dict[str, str] = {"Feature": "a Feature", "FeatureCollection": "a FeatureCollection"}
_PROHIBITED = ("geometry", "properties", "features")  # RFC 7946 7.1

_float = float
_int = int
_list = list
_dict = dict


class _Invalid(Exception):
    """Internal: raised with a message fragment, turned into BadRequestData by ``validate_geometry``."""


# -- positions ---------------------------------------------------------------------------------------------

def _num_err(v: Any) -> str | None:
    """None if ``v`` is a finite JSON number; else what is wrong with it."""
    t = type(v)
    if t is _float:
        return None if isfinite(v) else f"{v!r} is not a finite number"
    if t is _int:
        return None
    if t is bool or not isinstance(v, (int, float)):
        return f"{_short(v)} is not a number"
    return None if isfinite(v) else f"{v!r} is not a finite number"


def _pos_err(p: Any) -> str | None:
    """None if ``p`` is a valid position; else what is wrong with it (the caller adds where it is)."""
    if type(p) is not _list:
        if not isinstance(p, (list, tuple)):
            return f"{_short(p)} is not a position (an array of 2 or 3 numbers)"
    n = len(p)
    if n != 2 and n != 3:
        return f"has {n} element{'s' if n != 1 else ''}, a position needs 2 or 3 (longitude, latitude[, altitude])"
    x = p[0]
    y = p[1]
    tx = type(x)
    if tx is _float or tx is _int:
        if not -180.0 <= x <= 180.0:
            if tx is _float and not isfinite(x):
                return f"longitude {x!r} is not a finite number"
            return f"longitude {x!r} is out of range [-180, 180]"
    else:
        e = _num_err(x)
        if e:
            return "longitude " + e
        if not -180.0 <= x <= 180.0:
            return f"longitude {x!r} is out of range [-180, 180]"
    ty = type(y)
    if ty is _float or ty is _int:
        if not -90.0 <= y <= 90.0:
            if ty is _float and not isfinite(y):
                return f"latitude {y!r} is not a finite number"
            return f"latitude {y!r} is out of range [-90, 90]"
    else:
        e = _num_err(y)
        if e:
            return "latitude " + e
        if not -90.0 <= y <= 90.0:
            return f"latitude {y!r} is out of range [-90, 90]"
    if n == 3:
        z = p[2]
        tz = type(z)
        if tz is not _int and (tz is not _float or not isfinite(z)):
            e = _num_err(z)
            if e:
                return "altitude " + e
    return None


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _is_array(v: Any) -> bool:
    return type(v) is _list or isinstance(v, (list, tuple))


# -- per-type coordinate checks (raise _Invalid with a path fragment) ------------------------------------------

def _positions(seq: Any, label: str, minimum: int) -> None:
    """``seq`` must be an array of >= ``minimum`` positions; ``label`` prefixes messages."""
    if not _is_array(seq):
        raise _Invalid(f"{label} must be an array of positions, got {_short(seq)}")
    if len(seq) < minimum:
        raise _Invalid(f"{label} has {len(seq)} position{'s' if len(seq) != 1 else ''}, needs at least {minimum}")
    for p in seq:
        # inlined fast path for the common [lon, lat] pair; anything else goes through _pos_err
        if type(p) is _list and len(p) == 2:
            x, y = p
            tx = type(x)
            ty = type(y)
            if ((tx is _float or tx is _int) and (ty is _float or ty is _int)
                    and -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
                continue
        e = _pos_err(p)
        if e is not None:
            i = next(j for j, q in enumerate(seq) if q is p)
            raise _Invalid(f"{label} position {i} {e}" if e.startswith("has ") else f"{label} position {i}: {e}")


def _ring(ring: Any, label: str) -> None:
    _positions(ring, label, 4)
    if ring[0] != ring[-1]:
        raise _Invalid(f"{label} is not closed (first position {_short(ring[0])} != last position "
                       f"{_short(ring[-1])})")


def _polygon(rings: Any, label: str) -> None:
    if not _is_array(rings):
        raise _Invalid(f"{label}coordinates must be an array of linear rings, got {_short(rings)}")
    if not rings:
        raise _Invalid(f"{label}coordinates must contain at least one linear ring")
    for i, r in enumerate(rings):
        _ring(r, f"{label}ring {i}")


def _check_coordinates(gtype: str, c: Any) -> None:
    if gtype == "Point":
        e = _pos_err(c)
        if e is not None:
            raise _Invalid(f"coordinates {e}" if e.startswith("has ") else f"coordinates: {e}")
    elif gtype == "Polygon":
        _polygon(c, "")
    elif gtype == "LineString":
        _positions(c, "coordinates", 2)
    elif gtype == "MultiPoint":
        _positions(c, "coordinates", 1)
    elif gtype == "MultiLineString":
        if not _is_array(c):
            raise _Invalid(f"coordinates must be an array of LineString coordinates, got {_short(c)}")
        if not c:
            raise _Invalid("coordinates must contain at least one LineString")
        for i, line in enumerate(c):
            _positions(line, f"line {i}", 2)
    else:  # MultiPolygon
        if not _is_array(c):
            raise _Invalid(f"coordinates must be an array of Polygon coordinates, got {_short(c)}")
        if not c:
            raise _Invalid("coordinates must contain at least one Polygon")
        for i, poly in enumerate(c):
            _polygon(poly, f"polygon {i} ")


def _check_bbox(b: Any) -> None:
    if not _is_array(b) or (len(b) != 4 and len(b) != 6):
        raise _Invalid(f"bbox must be an array of 4 or 6 numbers, got {_short(b)}")
    for v in b:
        e = _num_err(v)
        if e:
            raise _Invalid("bbox " + e)
    half = len(b) // 2
    west, south, east, north = b[0], b[1], b[half], b[half + 1]
    for lon in (west, east):
        if not -180.0 <= lon <= 180.0:
            raise _Invalid(f"bbox longitude {lon!r} is out of range [-180, 180]")
    for lat in (south, north):
        if not -90.0 <= lat <= 90.0:
            raise _Invalid(f"bbox latitude {lat!r} is out of range [-90, 90]")
    if south > north:
        raise _Invalid(f"bbox south latitude {south!r} is greater than north latitude {north!r}")


def _check(value: Any, allow_collection: bool, nested: bool) -> str:
    """Validate one geometry object; return its type. Raises _Invalid."""
    if type(value) is not _dict and not isinstance(value, dict):
        raise _Invalid(f"a GeoJSON geometry must be a JSON object, got {_short(value)}")
    gtype = value.get("type")
    if type(gtype) is not str or gtype not in _ALL_TYPES:
        if type(gtype) is not str:
            raise _Invalid("a GeoJSON geometry needs a string 'type' member" if gtype is None
                           else f"GeoJSON 'type' must be a string, got {_short(gtype)}")
        if gtype in _NOT_GEOMETRY:
            raise _Invalid(f"{_NOT_GEOMETRY[gtype]} is not a GeoJSON geometry")
        proper = _LOWER_TYPES.get(gtype.lower())
        if proper is not None:
            raise _Invalid(f"unknown GeoJSON geometry type {gtype!r} (type names are case-sensitive: {proper!r})")
        raise _Invalid(f"unknown GeoJSON geometry type {gtype!r}")
    for k in _PROHIBITED:
        if k in value:
            raise _Invalid(f"GeoJSON {gtype} must not have a {k!r} member (RFC 7946 7.1)")
    if gtype == "GeometryCollection":
        if nested:
            raise _Invalid("nested GeometryCollection is not supported")
        if not allow_collection:
            raise _Invalid("GeometryCollection is not supported as an NGSI-LD geometry (GS CIM 009 4.6.3)")
        if "coordinates" in value and "geometries" not in value:
            raise _Invalid("GeoJSON GeometryCollection needs 'geometries', not 'coordinates'")
        geoms = value.get("geometries")
        if geoms is None:
            raise _Invalid("GeoJSON GeometryCollection needs a 'geometries' member")
        if not _is_array(geoms):
            raise _Invalid(f"GeoJSON GeometryCollection 'geometries' must be an array, got {_short(geoms)}")
        if not geoms:
            raise _Invalid("GeoJSON GeometryCollection 'geometries' must not be empty")
        for i, g in enumerate(geoms):
            try:
                _check(g, allow_collection, True)
            except _Invalid as exc:
                raise _Invalid(f"geometry {i}: {exc}") from None
    else:
        if "geometries" in value:
            raise _Invalid(f"GeoJSON {gtype} must not have a 'geometries' member (RFC 7946 7.1)")
        c = value.get("coordinates", _MISSING)
        if c is _MISSING:
            raise _Invalid(f"GeoJSON {gtype} needs a 'coordinates' member")
        try:
            _check_coordinates(gtype, c)
        except _Invalid as exc:
            raise _Invalid(f"GeoJSON {gtype} {exc}") from None
    if "bbox" in value:
        try:
            _check_bbox(value["bbox"])
        except _Invalid as exc:
            raise _Invalid(f"GeoJSON {gtype} {exc}") from None
    return gtype


_MISSING = object()


# -- public API ----------------------------------------------------------------------------------------------

def validate_geometry(value: Any, where: str, *, allow_collection: bool = False) -> None:
    """Raise ``BadRequestData`` ("<where>: <what is wrong>") unless ``value`` is a valid GeoJSON geometry.

    ``allow_collection`` admits a (non-nested, non-empty) GeometryCollection; NGSI-LD values never are one
    (clause 4.6.3), so leave it False for GeoProperty values and geoQ geometries. See the module docstring for
    the exact rules and what is not checked (winding order, self-intersection).
    """
    try:
        _check(value, allow_collection, False)
    except _Invalid as exc:
        raise bad_request(f"{where}: {exc}") from None


def is_valid_geometry(value: Any) -> bool:
    """Whether ``value`` is a valid GeoJSON geometry (not a GeometryCollection), without a diagnostic."""
    try:
        _check(value, False, False)
    except _Invalid:
        return False
    return True


def parse_geometry(value: Any, where: str, *, allow_collection: bool = False) -> dict[str, Any]:
    """Validate a geometry given as an object or as its JSON-string encoding (clause 4.7.2); return the object.

    Clause 4.7.2: a string is accepted "if and only if, it can be parsed into a JSON Object ... representing a
    valid Geometry", so a string that is not JSON, or JSON that is not a valid geometry, is BadRequestData.
    """
    if type(value) is str:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise bad_request(f"{where}: string value {_short(value)} is not a JSON-encoded GeoJSON geometry") from None
        if type(parsed) is not dict:
            raise bad_request(f"{where}: string value {_short(value)} is not a JSON-encoded GeoJSON geometry")
        value = parsed
    validate_geometry(value, where, allow_collection=allow_collection)
    return value


def is_geometry(value: Any) -> bool:
    """Cheap test: ``value`` is a dict whose ``type`` names a GeoJSON geometry and that has ``coordinates``
    (or ``geometries`` for a GeometryCollection). It does not validate.

    Used to infer a GeoProperty from a concise value (clause 4.5.2.3). GeometryCollection answers True too, so
    that such a value is routed to ``validate_geometry`` and rejected with a precise message rather than stored
    as a plain Property.
    """
    if type(value) is not dict:
        return False
    t = value.get("type")
    if type(t) is not str:
        return False
    if t in GEOMETRY_TYPES:
        return "coordinates" in value
    return t == "GeometryCollection" and "geometries" in value


def bbox(value: dict[str, Any]) -> tuple[float, float, float, float]:
    """``(min lon, min lat, max lon, max lat)`` over every position of a geometry that passed validation.

    Computed from the coordinates (a ``bbox`` member is ignored); no antimeridian handling: a geometry that
    crosses it yields the wide box. Raises ``ValueError`` on a geometry without positions.
    """
    acc = [180.0, 90.0, -180.0, -90.0]
    _bbox_into(value, acc)
    if acc[0] > acc[2]:
        raise ValueError("geometry has no positions")
    return (float(acc[0]), float(acc[1]), float(acc[2]), float(acc[3]))


def _bbox_into(g: dict[str, Any], acc: list[float]) -> None:
    gtype = g["type"]
    if gtype == "GeometryCollection":
        for sub in g["geometries"]:
            _bbox_into(sub, acc)
        return
    c = g["coordinates"]
    if gtype == "Point":
        _acc_positions((c,), acc)
    elif gtype == "LineString" or gtype == "MultiPoint":
        _acc_positions(c, acc)
    elif gtype == "MultiLineString" or gtype == "Polygon":
        for line in c:  # every ring: hole containment is not validated
            _acc_positions(line, acc)
    else:  # MultiPolygon
        for poly in c:
            for ring in poly:
                _acc_positions(ring, acc)


def _acc_positions(positions: Any, acc: list[float]) -> None:
    min_x, min_y, max_x, max_y = acc
    for p in positions:
        x = p[0]
        y = p[1]
        if x < min_x:
            min_x = x
        if x > max_x:
            max_x = x
        if y < min_y:
            min_y = y
        if y > max_y:
            max_y = y
    acc[0], acc[1], acc[2], acc[3] = min_x, min_y, max_x, max_y

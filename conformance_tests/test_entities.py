"""Entity creation and retrieval: POST /entities and GET /entities/{id}. Replace, merge, delete and purge
are in ``test_entity_changes``.

Clauses of ETSI GS CIM 009 v1.8: 4.5 (attribute data model), 4.6 (data representation), 4.7 (geospatial),
4.18 (scope), 5.2 (data types), 5.6.1 Create Entity, 5.7.1 Retrieve Entity, 6.4 / 6.5 HTTP binding.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from .ngsi import (
    ERRORS, NULL, entity, geo, instances, Ngsi, parse_datetime, point, problem, prop, rel,
    same_instant, uid,
)

POLYGON = {"type": "Polygon", "coordinates": [[[2.0, 48.0], [3.0, 48.0], [3.0, 49.0], [2.0, 49.0], [2.0, 48.0]]]}
OBSERVED = "2024-03-14T13:00:00.000Z"

# one attribute of every kind, in the normalized form (4.5.2 - 4.5.24): each must come back exactly
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "compound_property": prop({"street": "Rue de Rivoli", "number": 42, "tags": ["a", "b"], "nested": {"x": 1.5}}),
    "property_with_meta": prop(55.5, unitCode="KMH", observedAt=OBSERVED),
    "property_with_subattributes": prop(21, accuracy=prop(0.5, unitCode="CEL"),
                                        measuredBy=rel("urn:ngsi-ld:Device:thermo1")),
    "relationship": rel("urn:ngsi-ld:OffStreetParking:Downtown1", observedAt=OBSERVED),
    "geo_point": geo(point(2.35, 48.85)),
    "geo_polygon": geo(POLYGON),
    "relationship_with_object_type": rel("urn:ngsi-ld:OffStreetParking:2", objectType="OffStreetParking"),
    "language_property": {"type": "LanguageProperty", "languageMap": {"en": "Grand Place", "nl": "Grote Markt"}},
    "language_property_arrays": {"type": "LanguageProperty",
                                 "languageMap": {"sk": "škola", "en": ["school", "academy"], "@none": "default"}},
    "vocab_property": {"type": "VocabProperty", "vocab": "nonCommercial"},
    "vocab_property_list": {"type": "VocabProperty", "vocab": ["nonCommercial", "electric"]},
    "json_property": {"type": "JsonProperty",
                      "json": {"id": "not-an-entity", "type": "raw", "empty": None, "list": [1, None, {"a": "b"}],
                               "@context": "kept as it is"}},
    "json_property_array": {"type": "JsonProperty", "json": [{"id": 1}, {"type": None}]},
    "list_property": {"type": "ListProperty", "valueList": [3, 1, 2, "three"]},
    "list_relationship": {"type": "ListRelationship",
                          "objectList": [{"object": "urn:ngsi-ld:Road:2"}, {"object": "urn:ngsi-ld:Road:1"}]},
}


def assert_same_attribute(got: Any, sent: dict[str, Any]) -> None:
    """``got`` is the normalized rendering of ``sent``: same members, same values (DateTimes compared as
    instants, as a broker may render more or fewer fractional digits)."""
    assert isinstance(got, dict), got
    assert set(got) == set(sent), (got, sent)
    for key, value in sent.items():
        if key == "observedAt":
            assert same_instant(got[key], value), (got, sent)
        elif isinstance(value, dict) and value.get("type") in ("Property", "Relationship", "GeoProperty"):
            assert_same_attribute(got[key], value)
        else:
            assert got[key] == value, (key, got, sent)


# ---------------------------------------------------------------------------------------------- create


async def test_create_returns_201_and_location(ngsi: Ngsi) -> None:
    """5.6.1 / 6.4.3.1: Create Entity answers 201 Created, no body, and a Location header naming the new
    entity's resource (/ngsi-ld/v1/entities/{entityId})."""
    ent = entity("Building", name=prop("Eiffel Tower"))
    reply = await ngsi.create(ent)
    assert reply.status == 201, reply
    assert reply.body == b"", reply
    location = reply.headers.get("Location", "")
    assert location.endswith("/ngsi-ld/v1/entities/" + ent["id"]) or \
        location.endswith("/ngsi-ld/v1/entities/" + ngsi.quote_id(ent["id"])), reply
    assert (await ngsi.fetch(ent["id"]))["name"] == prop("Eiffel Tower")


async def test_create_with_trailing_slash(ngsi: Ngsi) -> None:
    """Table 6.2-1 names the Entity List resource ``/entities/``: POST /entities/ creates the entity."""
    ent = entity("Building")
    reply = await ngsi.request("POST", "/entities/", body=ent)
    assert reply.status == 201, reply
    await ngsi.fetch(ent["id"])


async def test_create_existing_is_409(ngsi: Ngsi) -> None:
    """5.6.1.4: an entity id that already exists raises AlreadyExists (409, 6.3.2)."""
    ent = entity("Building", name=prop("first"))
    await ngsi.create_ok(ent)
    again = dict(ent, name=prop("second"))
    problem(await ngsi.create(again), 409, "AlreadyExists")
    assert (await ngsi.fetch(ent["id"]))["name"]["value"] == "first"


@pytest.mark.parametrize("bad_id", ["thisisaninvaliduri", "not a uri", "", 42, None, ["urn:a:b"]])
async def test_create_invalid_id_is_400(ngsi: Ngsi, bad_id: Any) -> None:
    """5.6.1.4 / 4.5.1: the entity id shall be a URI; anything else is BadRequestData."""
    problem(await ngsi.create({"id": bad_id, "type": "Building"}), 400, "BadRequestData")


async def test_create_without_id_is_400(ngsi: Ngsi) -> None:
    """5.2.4 (Entity: id cardinality 1) / 5.6.1.4: a create without an id is BadRequestData."""
    problem(await ngsi.create({"type": "Building", "name": prop("x")}), 400, "BadRequestData")


@pytest.mark.parametrize("bad_type", ["missing", None, "", 42, [], "type"])
async def test_create_without_valid_type_is_400(ngsi: Ngsi, bad_type: Any) -> None:
    """5.2.4 (Entity: type cardinality 1) / 5.6.1.4: a missing or invalid entity type is BadRequestData
    (``"type"`` itself expands to the JSON-LD keyword @type, not to a type name: ETSI TP 001_02_04)."""
    ent = {"id": uid("Building")}
    if bad_type != "missing":
        ent["type"] = bad_type
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("name", ["value", "object", "datasetId", "observedAt", "instanceId"])
async def test_reserved_names_are_not_attribute_names(ngsi: Ngsi, name: str) -> None:
    """4.5.1 / 4.6.2: names of core members (value, object, datasetId, observedAt, instanceId ...) cannot name
    an attribute: BadRequestData, and nothing is created (ETSI TP 451_01)."""
    ent = entity("Vehicle", **{name: prop(1)})
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("ent", [{"type": "Vehicle", "my attr": prop(1)}, {"type": "Vehicle", "a/b": prop(1)},
                                 {"type": "9Vehicle"}, {"type": "Vehicle", "": prop(1)}],
                         ids=["space-in-attribute-name", "slash-in-attribute-name", "type-starting-with-digit",
                              "empty-attribute-name"])
async def test_invalid_names_are_400(ngsi: Ngsi, ent: dict[str, Any]) -> None:
    """4.6.2: entity type and attribute names (short names, not IRIs) are a letter followed by letters, digits
    or underscores; other names are BadRequestData and nothing is created (ETSI TP 462_01)."""
    ent = {"id": uid("Vehicle"), **ent}
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("name", ["location", "observationSpace", "operationSpace"])
async def test_geo_attributes_must_be_geoproperties(ngsi: Ngsi, name: str) -> None:
    """4.7.1: ``location``, ``observationSpace`` and ``operationSpace`` are defined as GeoProperties; declaring
    one a Property is BadRequestData (ETSI TP 471_01_03)."""
    ent = entity("Vehicle", **{name: prop(7)})
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("geometry", [
    pytest.param({"type": "Polygon", "coordinates": [[[2.0, 48.0], [3.0, 48.0], [3.0, 49.0], [2.0, 49.0]]]},
                 id="open-ring"),
    pytest.param({"type": "Polygon", "coordinates": [[[2.0, 48.0], [3.0, 48.0], [2.0, 48.0]]]},
                 id="ring-of-three-positions"),
    pytest.param(point(2.0, 91.0), id="latitude-above-90"),
    pytest.param(point(181.0, 10.0), id="longitude-above-180"),
    pytest.param({"type": "Point", "coordinates": [2.0]}, id="one-coordinate"),
    pytest.param({"type": "Point"}, id="no-coordinates"),
    pytest.param({"type": "Point", "coordinates": ["2.0", "48.0"]}, id="string-coordinates"),
    pytest.param({"type": "Circle", "coordinates": [2.0, 48.0]}, id="unknown-geometry-type"),
    pytest.param({"type": "GeometryCollection", "geometries": [point(2.0, 48.0)]}, id="geometry-collection"),
    pytest.param("not a geometry", id="string"),
])
async def test_invalid_geojson_is_400(ngsi: Ngsi, geometry: Any) -> None:
    """4.7.1 / 4.6.3: a GeoProperty value is a GeoJSON geometry (IETF RFC 7946: positions are
    [longitude, latitude] in WGS 84, polygon rings are closed LinearRings of >= 4 positions; NGSI-LD excludes
    GeometryCollection). Anything else is BadRequestData, and no entity is created."""
    ent = entity("Vehicle", location=geo(geometry))
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("text", ['{"type": "Point", "coordinates": [17.1, 48.7]}', '"{}"', '[1, 2]', "{",
                                  '{"type": "Point", "coordinates": [17.1, 95.0]}'])
async def test_string_encoded_geometry(ngsi: Ngsi, text: str) -> None:
    """4.7.2 (ETSI extension TP 471_01): a GeoProperty value may be the JSON text of a geometry; it is stored
    and served as the geometry object. A string that is not the text of a valid geometry is BadRequestData,
    with nothing created."""
    ent = entity("Vehicle", location=geo(text))
    reply = await ngsi.create(ent)
    if text.startswith('{"type": "Point", "coordinates": [17.1, 48.7]'):
        assert reply.status == 201, reply
        assert (await ngsi.fetch(ent["id"]))["location"]["value"] == point(17.1, 48.7)
        return
    problem(reply, 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("value_type, status", [("langString", 201), ("rdf:langString", 201),
                                                ("xsd:string", 400), ("Text", 400)])
async def test_language_property_value_type(ngsi: Ngsi, value_type: str, status: int) -> None:
    """Table 5.2.32-1 (ETSI extension TP 5232_01): a LanguageProperty's valueType, when given, is langString."""
    ent = entity("Building", probe={"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": value_type})
    reply = await ngsi.create(ent)
    if status == 201:
        assert reply.status == 201, reply
    else:
        problem(reply, 400, "BadRequestData")


@pytest.mark.parametrize("attr", [
    pytest.param({"type": "Property"}, id="property-without-value"),
    pytest.param({"type": "Property", "value": None}, id="property-with-null-value"),
    pytest.param({"type": "Relationship"}, id="relationship-without-object"),
    pytest.param({"type": "Relationship", "object": "not a uri"}, id="relationship-object-not-uri"),
    pytest.param({"type": "Relationship", "object": 42}, id="relationship-object-number"),
    pytest.param({"type": "GeoProperty"}, id="geoproperty-without-value"),
    pytest.param({"type": "LanguageProperty"}, id="languageproperty-without-languagemap"),
    pytest.param({"type": "LanguageProperty", "languageMap": {"en": 5}}, id="languagemap-not-strings"),
    pytest.param({"type": "ListRelationship", "objectList": ["not a uri"]}, id="objectlist-not-uris"),
    pytest.param({"type": "JsonProperty", "json": 5}, id="json-scalar"),
    pytest.param({"type": "NoSuchAttributeType", "value": 1}, id="unknown-attribute-type"),
    pytest.param({"type": "Property", "value": NULL}, id="ngsi-ld-null-value"),
    pytest.param({"type": "Relationship", "object": NULL}, id="ngsi-ld-null-object"),
])
async def test_invalid_attribute_is_400(ngsi: Ngsi, attr: dict[str, Any]) -> None:
    """4.5.2 - 4.5.24 / 5.2.1: an attribute missing its mandatory member (value, object, languageMap, ...),
    or with a member outside its value space, or carrying the NGSI-LD Null outside a patch, is
    BadRequestData; the entity is not created (ETSI TPs 402_01, 452_01, 453_01, 521_01, 4522_01, 4524_01)."""
    ent = entity("Vehicle", probe=attr)
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("observed_at", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01", 1704067200, {}])
async def test_invalid_observed_at_is_400(ngsi: Ngsi, observed_at: Any) -> None:
    """4.8 / 4.6.3: observedAt is a DateTime (ISO 8601 UTC string); anything else is BadRequestData."""
    ent = entity("Vehicle", speed=prop(1, observedAt=observed_at))
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("scope", [42, "", "/a//b", ["/ok", 42], {"scope": "/a"}])
async def test_invalid_scope_is_400(ngsi: Ngsi, scope: Any) -> None:
    """4.18: a scope is a string (or array of strings) following the scope grammar (non-empty levels separated
    by "/"); anything else is BadRequestData."""
    ent = entity("Vehicle", scope=scope)
    problem(await ngsi.create(ent), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("raw", [b'{"id": "urn:ngsi-ld:Building:1", "type": "Building",, }', b"{", b"",
                                 b"\xff\xfe not utf-8"])
async def test_malformed_json_is_invalid_request(ngsi: Ngsi, raw: bytes) -> None:
    """6.3.2 / 5.5.x: a request body that is not a valid JSON document is InvalidRequest (ETSI TP 001_02_01)."""
    problem(await ngsi.request("POST", "/entities", data=raw, ctype="application/json"), 400, "InvalidRequest")


@pytest.mark.parametrize("payload", [[], [{"id": "urn:ngsi-ld:Building:x", "type": "Building"}], "text", 42, None],
                         ids=["empty-array", "array", "string", "number", "null"])
async def test_non_object_body_is_400(ngsi: Ngsi, payload: Any) -> None:
    """5.6.1 / 6.4.3.1: the Create Entity payload is one JSON object; anything else is a 400 error (ETSI TP
    001_02_02 expects InvalidRequest for ``[]``; BadRequestData is accepted too, 6.3.2 fits both)."""
    body = problem(await ngsi.create(payload), 400)
    assert body["type"] in (ERRORS + "InvalidRequest", ERRORS + "BadRequestData"), body


async def test_system_members_in_payload_are_ignored(ngsi: Ngsi) -> None:
    """5.2.2: createdAt/modifiedAt are read-only, generated by the broker; when a producer sends them they
    are ignored."""
    ent = entity("Building", name=prop("x", createdAt="2000-01-01T00:00:00Z"), createdAt="2000-01-01T00:00:00Z")
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    assert parse_datetime(got["createdAt"]).year > 2000
    assert parse_datetime(got["name"]["createdAt"]).year > 2000


# ---------------------------------------------------------------------------------------------- retrieve


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
async def test_attribute_round_trips_normalized(ngsi: Ngsi, name: str) -> None:
    """4.5.2 - 4.5.24 / 5.7.1: every attribute type (Property with a compound value, with unitCode,
    observedAt and sub-attributes; Relationship; GeoProperty Point and Polygon; LanguageProperty;
    VocabProperty; JsonProperty (raw JSON kept verbatim, including "id"/"type"/null/@context keys);
    ListProperty; ListRelationship) is returned in the normalized representation exactly as it was
    created."""
    attr = copy.deepcopy(ATTRIBUTES[name])
    ent = entity("Vehicle", probe=attr)
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    assert got["type"] == "Vehicle"
    assert_same_attribute(got["probe"], attr)


async def test_all_attribute_types_in_one_entity(ngsi: Ngsi) -> None:
    """5.6.1 / 5.7.1: an entity carrying all attribute types at once round-trips, and nothing else is
    added to it (no createdAt/modifiedAt without options=sysAttrs, 5.7.1.4)."""
    attrs = {name.replace("_", ""): copy.deepcopy(a) for name, a in ATTRIBUTES.items()}
    ent = entity("Vehicle", **attrs)
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    assert set(got) == {"id", "type", *attrs}, got
    for name, attr in attrs.items():
        assert_same_attribute(got[name], attr)


async def test_unicode_values_round_trip(ngsi: Ngsi) -> None:
    """4.6.1: UTF-8 JSON is accepted and returned unaltered: multi-byte text, characters outside the BMP,
    markup characters (4.6.4: no HTML escaping) and JSON escapes round-trip exactly (ETSI TPs 461_01,
    464_01)."""
    text = "žltý kôň — 100 € 𝄞 <script>alert('x')</script> \"q\" \\ \t\n"
    ent = entity("Vehicle", note=prop(text), data=prop({"ключ": ["值", "🚗"]}))
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    assert got["note"] == prop(text)
    assert got["data"] == prop({"ключ": ["值", "🚗"]})


@pytest.mark.parametrize("attr", [prop("a\u0000b"), prop({"k\u0000": 1}),
                                  {"type": "JsonProperty", "json": {"k": "\u0000"}}],
                         ids=["in-string", "in-key", "in-json-property"])
async def test_nul_character_never_fails_with_5xx(ngsi: Ngsi, attr: dict[str, Any]) -> None:
    """4.6.1 / 6.3.2: U+0000 is legal in JSON strings (IETF RFC 8259 7, written \\u0000); a value containing it
    is either stored and returned unaltered (201) or rejected as BadRequestData - never an internal
    error."""
    ent = entity("Vehicle", probe=attr)
    reply = await ngsi.create(ent)
    if reply.status == 201:
        assert (await ngsi.fetch(ent["id"]))["probe"] == attr
    else:
        problem(reply, 400, "BadRequestData")
        assert (await ngsi.get(ent["id"])).status == 404


async def test_observation_and_operation_space(ngsi: Ngsi) -> None:
    """4.7.1: observationSpace and operationSpace are GeoProperties next to location; all three round-trip
    (ETSI TPs 001_12, 001_13)."""
    ent = entity("Vehicle", location=geo(point(2.0, 48.5)), observationSpace=geo(POLYGON),
                 operationSpace=geo({"type": "LineString", "coordinates": [[2.0, 48.0], [3.0, 49.0]]}))
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    for name in ("location", "observationSpace", "operationSpace"):
        assert got[name] == ent[name], got


async def test_multiple_types(ngsi: Ngsi) -> None:
    """4.16 / 5.2.4: an entity can have several types; all are returned."""
    ent = entity(["Building", "Landmark"])
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    assert sorted(got["type"]) == ["Building", "Landmark"]


async def test_scope_one_and_several(ngsi: Ngsi) -> None:
    """4.18 / 5.2.4: scope is a string (one scope) or an array of strings (several); returned as given."""
    one = entity("Building", scope="/Madrid/Gardens/ParqueNorte")
    several = entity("Building", scope=["/Madrid/Gardens", "/Company123/UnitA"])
    await ngsi.create_ok(one)
    await ngsi.create_ok(several)
    assert (await ngsi.fetch(one["id"]))["scope"] == "/Madrid/Gardens/ParqueNorte"
    assert sorted((await ngsi.fetch(several["id"]))["scope"]) == ["/Company123/UnitA", "/Madrid/Gardens"]


async def test_multi_instance_attribute(ngsi: Ngsi) -> None:
    """4.5.5: an attribute can have several instances told apart by datasetId (at most one default instance,
    without datasetId); all are returned."""
    speed = [prop(55), prop(11, datasetId="urn:ngsi-ld:Dataset:gps"), prop(12, datasetId="urn:ngsi-ld:Dataset:radar")]
    ent = entity("Vehicle", speed=speed)
    await ngsi.create_ok(ent)
    got = instances((await ngsi.fetch(ent["id"]))["speed"])
    by_dataset = {i.get("datasetId"): i["value"] for i in got}
    assert by_dataset == {None: 55, "urn:ngsi-ld:Dataset:gps": 11, "urn:ngsi-ld:Dataset:radar": 12}


async def test_two_default_instances_are_400(ngsi: Ngsi) -> None:
    """4.5.5: there is at most one default instance (no datasetId) per attribute, and datasetIds are unique:
    BadRequestData otherwise (ETSI TP 455_01)."""
    problem(await ngsi.create(entity("Vehicle", speed=[prop(1), prop(2)])), 400, "BadRequestData")
    dup = [prop(1, datasetId="urn:ngsi-ld:Dataset:a"), prop(2, datasetId="urn:ngsi-ld:Dataset:a")]
    problem(await ngsi.create(entity("Vehicle", speed=dup)), 400, "BadRequestData")


@pytest.mark.parametrize("params", [{"options": "keyValues"}, {"options": "simplified"}, {"format": "simplified"}])
async def test_simplified_representation(ngsi: Ngsi, params: dict[str, str]) -> None:
    """4.5.4 / 5.7.1 / 6.3.7: the simplified (keyValues) representation gives a Property its value, a
    Relationship its object and a GeoProperty its GeoJSON geometry, without sub-attributes."""
    ent = entity("Vehicle", speed=prop(55, unitCode="KMH"), isParked=rel("urn:ngsi-ld:Parking:1"),
                 location=geo(point(2.35, 48.85)), brand=prop({"name": "Mercedes"}))
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], params)
    assert got == {"id": ent["id"], "type": "Vehicle", "speed": 55, "isParked": "urn:ngsi-ld:Parking:1",
                   "location": point(2.35, 48.85), "brand": {"name": "Mercedes"}}


@pytest.mark.parametrize("params", [{"options": "concise"}, {"format": "concise"}])
async def test_concise_representation(ngsi: Ngsi, params: dict[str, str]) -> None:
    """4.5.2.3 / 4.5.3.3 / 5.7.1: the concise representation drops the redundant ``type`` of attributes
    (a Property keeps its value and sub-attributes, a Relationship its ``object``) and is lossless."""
    ent = entity("Vehicle", speed=prop(55, unitCode="KMH"), plain=prop("x"), isParked=rel("urn:ngsi-ld:Parking:1"))
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], params)
    assert got["type"] == "Vehicle"
    assert got["speed"] == {"value": 55, "unitCode": "KMH"}
    assert got["plain"] in ("x", {"value": "x"})
    assert got["isParked"] == {"object": "urn:ngsi-ld:Parking:1"}


async def test_system_attributes_only_with_sysattrs(ngsi: Ngsi) -> None:
    """5.7.1.4 / 4.8: createdAt and modifiedAt (entity and attributes) appear only with options=sysAttrs."""
    ent = entity("Vehicle", speed=prop(1), isParked=rel("urn:ngsi-ld:Parking:1"))
    await ngsi.create_ok(ent)
    plain = await ngsi.fetch(ent["id"])
    for member in ("createdAt", "modifiedAt"):
        assert member not in plain and member not in plain["speed"] and member not in plain["isParked"], plain
    got = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    for holder in (got, got["speed"], got["isParked"]):
        created, modified = parse_datetime(holder["createdAt"]), parse_datetime(holder["modifiedAt"])
        assert modified >= created


async def test_modified_at_increases_after_update(ngsi: Ngsi) -> None:
    """4.8 / 5.2.2: modifiedAt is the last modification time (it moves forward on an update); createdAt does
    not change."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    before = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    await asyncio.sleep(0.05)
    reply = await ngsi.update_attrs(ent["id"], {"speed": prop(2)})
    assert reply.status == 204, reply
    after = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    assert same_instant(after["createdAt"], before["createdAt"])
    assert same_instant(after["speed"]["createdAt"], before["speed"]["createdAt"])
    assert parse_datetime(after["speed"]["modifiedAt"]) > parse_datetime(before["speed"]["modifiedAt"])
    assert parse_datetime(after["modifiedAt"]) > parse_datetime(before["modifiedAt"])


async def test_attrs_projection(ngsi: Ngsi) -> None:
    """5.7.1.4: ``attrs`` restricts the returned attributes to the listed ones (id and type are always
    returned)."""
    ent = entity("Vehicle", speed=prop(1), name=prop("n"), isParked=rel("urn:ngsi-ld:Parking:1"))
    await ngsi.create_ok(ent)
    assert await ngsi.fetch(ent["id"], {"attrs": "speed"}) == {"id": ent["id"], "type": "Vehicle",
                                                                "speed": prop(1)}
    got = await ngsi.fetch(ent["id"], {"attrs": "speed,isParked,unknownAttr"})
    assert set(got) == {"id", "type", "speed", "isParked"}


async def test_attrs_projection_matching_nothing_is_404(ngsi: Ngsi) -> None:
    """5.7.1.4 (OpenAPI Query.attrs): if the entity has none of the attributes in ``attrs``, Retrieve Entity
    answers 404 ResourceNotFound."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], {"attrs": "nothingLikeThis"}), 404, "ResourceNotFound")


async def test_get_unknown_entity_is_404(ngsi: Ngsi) -> None:
    """5.7.1.4: an entity id not known to the broker is ResourceNotFound (404)."""
    problem(await ngsi.get(uid("Vehicle")), 404, "ResourceNotFound")


async def test_get_invalid_id_is_400(ngsi: Ngsi) -> None:
    """5.7.1.4: an id that is not a URI is BadRequestData."""
    problem(await ngsi.get("thisisaninvaliduri"), 400, "BadRequestData")


async def test_content_type_on_get_is_ignored(ngsi: Ngsi) -> None:
    """6.3.4: Content-Type describes a request payload; a GET carries none, so its Content-Type (even an
    unsupported one) does not matter."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.request("GET", ngsi.entity_path(ent["id"]), headers={"Content-Type": "text/plain"})
    assert reply.status == 200, reply
    assert reply.json["speed"] == prop(1)

"""Retrieve Entity (GET /entities/{id}): the parameters that shape the answer.

Clauses of ETSI GS CIM 009 v1.8/v1.9: 4.5 representations (4.5.4 simplified, 4.5.16/4.5.17 GeoJSON, 4.5.23
Linked Entity retrieval), 4.15 language filter, 4.21 pick / omit, 5.7.1 Retrieve Entity, 6.3.6 / 6.3.15
response bodies and GeoJSON, 6.3.7 representation options.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ContextServer
from .ngsi import (
    GEO_JSON,
    JSON,
    LD_JSON,
    Ngsi,
    entity,
    geo,
    link_urls,
    point,
    problem,
    prop,
    rel,
    uid,
)

STREET = {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}


def building(**attrs: Any) -> dict[str, Any]:
    return entity("Building", name=prop("Eiffel Tower"), subCategory=prop("tourism"),
                  airQualityLevel=prop(4, unitCode="C62"), almostFull=prop(False), **attrs)


# ------------------------------------------------------------------------------------------ pick / omit

@pytest.mark.parametrize("params, members", [
    ({"pick": "name"}, {"name"}),
    ({"pick": "id"}, {"id"}),
    ({"pick": "id,name"}, {"id", "name"}),
    ({"pick": "name|almostFull"}, {"name", "almostFull"}),
    ({"omit": "name"}, {"id", "type", "subCategory", "airQualityLevel", "almostFull"}),
    ({"omit": "id"}, {"type", "name", "subCategory", "airQualityLevel", "almostFull"}),
    ({"omit": "type,name"}, {"id", "subCategory", "airQualityLevel", "almostFull"}),
    ({"pick": "id,name", "omit": "almostFull"}, {"id", "name"}),
])
async def test_pick_and_omit(ngsi: Ngsi, params: dict[str, str], members: set[str]) -> None:
    """4.21 / 5.7.1.4: pick keeps only the listed Entity members (id and type included), omit removes them
    (ETSI TPs 018_17_01..06, 421_01_01)."""
    ent = building()
    await ngsi.create_ok(ent)
    got = (await ngsi.get(ent["id"], params)).json
    assert set(got) == members, got
    if "name" in members:
        assert got["name"] == prop("Eiffel Tower")


@pytest.mark.parametrize("params", [
    {"pick": "name", "omit": "name"}, {"pick": "name", "attrs": "name"}, {"omit": "name", "attrs": "name"},
    {"pick": "id;name"}, {"pick": "id,locatedAt{name"}, {"pick": "id,locatedAt{{name}"}, {"pick": "id,,name"},
    {"pick": "id,locatedAt{,name}"}, {"pick": "id,locatedAt{}"}, {"pick": "name||almostFull"},
    {"pick": "id{name}", "join": "inline"},
])
async def test_invalid_projections(ngsi: Ngsi, params: dict[str, str]) -> None:
    """4.21: a member both picked and omitted, pick / omit with attrs, or a malformed ProjectionList are
    BadRequestData (ETSI TPs 018_18_01..09, 421_01_02)."""
    ent = building()
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], params), 400, "BadRequestData")


@pytest.mark.parametrize("params", [{"pick": "unknown"},
                                    {"omit": "id,type,name,subCategory,airQualityLevel,almostFull"}])
async def test_nothing_left_is_not_found(ngsi: Ngsi, params: dict[str, str]) -> None:
    """5.7.1.4: an entity left without any member by pick / omit is ResourceNotFound (ETSI TP 018_19)."""
    ent = building()
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], params), 404, "ResourceNotFound")


# -------------------------------------------------------------------------------------- representations

@pytest.mark.parametrize("params, simplified", [
    ({"format": "keyValues"}, True), ({"format": "simplified"}, True), ({"format": "normalized"}, False),
    ({"options": "keyValues"}, True), ({"options": "normalized"}, False),
    ({"format": "keyValues", "options": "normalized"}, True),  # format wins (6.3.7)
])
async def test_format_and_options(ngsi: Ngsi, params: dict[str, str], simplified: bool) -> None:
    """6.3.7: ``format`` and ``options`` select the representation; format has precedence (ETSI 018_15)."""
    ent = building()
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], params)
    assert got["name"] == ("Eiffel Tower" if simplified else prop("Eiffel Tower"))


@pytest.mark.parametrize("params", [{"format": "invalidFormat"}, {"options": "invalidOptions"},
                                    {"options": "keyValues,invalid"}, {"format": "keyValues", "options": "x"}])
async def test_invalid_format_or_options_is_invalid_request(ngsi: Ngsi, params: dict[str, str]) -> None:
    """6.3.6 / 6.3.7: an unknown format or option is InvalidRequest (ETSI TPs 018_16_01..04)."""
    ent = building()
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], params, accept=LD_JSON), 400, "InvalidRequest")


async def test_simplified_list_and_vocab_properties(ngsi: Ngsi) -> None:
    """4.5.4: ListProperty / ListRelationship as bare arrays, VocabProperty / JsonProperty / LanguageProperty
    as one-member objects, several instances as a dataset map (ETSI TP 454_01)."""
    ent = entity("Vehicle", speed=[prop(55), prop(11, datasetId="urn:ngsi-ld:Dataset:gps")], street=STREET,
                 category={"type": "VocabProperty", "vocab": "nonCommercial"},
                 extra={"type": "JsonProperty", "json": {"a": 1}},
                 depths={"type": "ListProperty", "valueList": [1.2, 3.4]},
                 route={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]})
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], {"options": "keyValues"})
    assert got["speed"] == {"dataset": {"@none": 55, "urn:ngsi-ld:Dataset:gps": 11}}
    assert got["street"] == {"languageMap": STREET["languageMap"]}
    assert got["category"] == {"vocab": "nonCommercial"} and got["extra"] == {"json": {"a": 1}}
    assert got["depths"] == [1.2, 3.4] and got["route"] == ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]


async def test_values_are_compacted_with_the_request_context(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.7.1.4 / 5.5.7: names, types, VocabProperty values, objectType and compound value keys come back
    compacted with the request's @context; without it they are full IRIs."""
    ex = "https://example.org/ns#"
    url = context_server.context({"Car": ex + "Car", "brand": ex + "brand", "kind": ex + "kind",
                                  "electric": ex + "electric", "owner": ex + "owner", "Person": ex + "Person",
                                  "model": ex + "model", "maker": ex + "maker"})
    ent = {"id": uid("Car"), "type": "Car", "brand": prop({"maker": "X", "model": "Y"}),
           "kind": {"type": "VocabProperty", "vocab": "electric"},
           "owner": rel("urn:ngsi-ld:Person:1", objectType="Person")}
    await ngsi.create_ok(ent, link=url)
    got = await ngsi.fetch(ent["id"], link=url)
    assert got == ent
    for params in ({"options": "concise"}, {"options": "keyValues"}):
        text = (await ngsi.get(ent["id"], params, link=url)).body.decode()
        assert ex not in text, text
    plain = await ngsi.fetch(ent["id"])
    assert plain["type"] == ex + "Car" and plain[ex + "kind"]["vocab"] == ex + "electric"
    assert plain[ex + "brand"]["value"] == {ex + "maker": "X", ex + "model": "Y"}


# ------------------------------------------------------------------------------------------------ lang

@pytest.mark.parametrize("lang, tag", [("fr", "fr"), ("fr-CH,fr", "fr"), ("fr-CH,fr;q=0.9,en;q=0.8,*;q=0.5", "fr"),
                                       ("*", None), ("fr;q=0.2,nl;q=0.9", "nl"), ("NL-be", "nl"), ("pt", None)])
async def test_language_filter(ngsi: Ngsi, lang: str, tag: str | None) -> None:
    """4.15: ``lang`` turns a LanguageProperty into a Property with the best matching string and the chosen
    tag in ``lang``; ``*`` or no match gives any supported language (ETSI TPs 018_07, 415_01)."""
    ent = entity("Building", street=STREET)
    await ngsi.create_ok(ent)
    street = (await ngsi.fetch(ent["id"], {"lang": lang}))["street"]
    assert street["type"] == "Property" and "languageMap" not in street
    chosen = tag or street["lang"]
    assert street == {"type": "Property", "value": STREET["languageMap"][chosen], "lang": chosen}
    concise = (await ngsi.fetch(ent["id"], {"lang": lang, "options": "concise"}))["street"]
    assert concise == {"value": STREET["languageMap"][chosen], "lang": chosen}
    simple = (await ngsi.fetch(ent["id"], {"lang": lang, "options": "keyValues"}))["street"]
    assert simple == STREET["languageMap"][chosen]


async def test_invalid_language_filter(ngsi: Ngsi) -> None:
    ent = entity("Building", street=STREET)
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], {"lang": "fr;q=5"}), 400, "BadRequestData")


# ------------------------------------------------------------------------------------------- datasetId

@pytest.mark.parametrize("datasets, expected", [
    ("urn:ngsi-ld:Dataset:fr", {"name": ["Tour Eiffel"], "locatedAt": ["urn:ngsi-ld:Ville:Paris"]}),
    ("@none", {"name": ["Eiffel Tower"], "locatedAt": ["urn:ngsi-ld:City:Paris"]}),
    ("urn:ngsi-ld:Dataset:fr,urn:ngsi-ld:Dataset:de", {"name": ["Tour Eiffel", "Eiffelturm"],
                                                        "locatedAt": ["urn:ngsi-ld:Ville:Paris"]}),
    ("urn:ngsi-ld:Dataset:none", {}),
])
async def test_dataset_id_selects_instances(ngsi: Ngsi, datasets: str, expected: dict[str, list[str]]) -> None:
    """4.5.5 / 5.7.1.4: ``datasetId`` keeps only the instances with those datasetIds, ``@none`` naming the
    default instance; the entity itself is still returned (ETSI TPs 019_12_02..07)."""
    ent = entity("Building", name=[prop("Eiffel Tower"), prop("Tour Eiffel", datasetId="urn:ngsi-ld:Dataset:fr"),
                                   prop("Eiffelturm", datasetId="urn:ngsi-ld:Dataset:de")],
                 locatedAt=[rel("urn:ngsi-ld:City:Paris"), rel("urn:ngsi-ld:Ville:Paris",
                                                               datasetId="urn:ngsi-ld:Dataset:fr")])
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"], {"datasetId": datasets})
    found = {name: [i.get("value", i.get("object")) for i in (v if isinstance(v, list) else [v])]
             for name, v in got.items() if name not in ("id", "type")}
    assert found == expected


# ----------------------------------------------------------------------------------------------- GeoJSON

async def test_geojson_feature(ngsi: Ngsi) -> None:
    """4.5.16 / 6.3.15: Accept application/geo+json gives a Feature: the location (its default instance) as
    geometry, the entity without id as properties, the @context in the body (6.3.6)."""
    ent = entity("Vehicle", speed=prop(5), location=[geo(point(9, 9), datasetId="urn:ngsi-ld:Dataset:gps"),
                                                     geo(point(1, 2))])
    await ngsi.create_ok(ent)
    reply = await ngsi.get(ent["id"], accept=GEO_JSON)
    assert reply.status == 200 and reply.content_type == GEO_JSON, reply
    body = reply.json
    assert body["type"] == "Feature" and body["id"] == ent["id"] and "@context" in body
    assert body["geometry"] == point(1, 2)
    assert body["properties"]["type"] == "Vehicle" and "id" not in body["properties"]
    assert body["properties"]["speed"] == prop(5)
    simple = (await ngsi.get(ent["id"], {"options": "keyValues"}, accept=GEO_JSON)).json
    assert simple["properties"]["speed"] == 5 and simple["geometry"] == point(1, 2)
    assert set(simple["properties"]["location"]["dataset"]) == {"@none", "urn:ngsi-ld:Dataset:gps"}


async def test_geojson_geometry_property(ngsi: Ngsi) -> None:
    """6.3.15: ``geometryProperty`` picks the geometry; a missing or non-geo attribute gives null (ETSI
    018_05_03/04, 4516_01_02); without a GeoJSON Accept it is BadRequestData (5.7.1.4, ETSI 5711_01_02)."""
    ent = entity("Building", location=geo(point(13.3986, 52.5547)), observationSpace=geo(point(11.1, 11.1)),
                 name=prop("x"))
    await ngsi.create_ok(ent)
    got = (await ngsi.get(ent["id"], {"geometryProperty": "observationSpace"}, accept=GEO_JSON)).json
    assert got["geometry"] == point(11.1, 11.1)
    for missing in ("operationSpace", "name"):
        assert (await ngsi.get(ent["id"], {"geometryProperty": missing}, accept=GEO_JSON)).json["geometry"] is None
    problem(await ngsi.get(ent["id"], {"geometryProperty": "location"}, accept=LD_JSON), 400, "BadRequestData")


async def test_geojson_prefer_body_json(ngsi: Ngsi) -> None:
    """6.3.6: with ``Prefer: body=json`` the GeoJSON body has no @context; the Link header carries it."""
    ent = entity("Vehicle", location=geo(point(8.5, 41.2)))
    await ngsi.create_ok(ent)
    reply = await ngsi.request("GET", ngsi.entity_path(ent["id"]), accept=GEO_JSON,
                               headers={"Prefer": "body=json"})
    assert reply.status == 200 and "@context" not in reply.json, reply
    assert link_urls(reply.headers.get("Link")), reply


# ------------------------------------------------------------------------------------ linked entities

async def linked_chain(ngsi: Ngsi) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    country = entity("Country", name=prop("France"), description=prop("a country"))
    city = entity("City", name=prop("Paris"), description=prop("a city"), isInCountry=rel(country["id"]))
    build = entity("Building", name=prop("Eiffel Tower"), locatedAt=rel(city["id"]))
    for ent in (country, city, build):
        await ngsi.create_ok(ent)
    return build, city, country


async def test_join_inline(ngsi: Ngsi) -> None:
    """4.5.23.2: join=inline adds the target of a Relationship as its ``entity`` member, down to joinLevel
    levels; in the simplified representation the target replaces the object (ETSI 018_10, 018_13)."""
    build, city, country = await linked_chain(ngsi)
    got = await ngsi.fetch(build["id"], {"join": "inline", "joinLevel": "1"})
    assert got["locatedAt"]["object"] == city["id"]
    assert got["locatedAt"]["entity"] == city
    deep = await ngsi.fetch(build["id"], {"join": "inline", "joinLevel": "2"})
    assert deep["locatedAt"]["entity"]["isInCountry"]["entity"] == country
    simple = await ngsi.fetch(build["id"], {"join": "inline", "options": "keyValues"})
    assert simple["locatedAt"] == {"id": city["id"], "type": "City", "name": "Paris", "description": "a city",
                                   "isInCountry": country["id"]}
    with_sys = await ngsi.fetch(build["id"], {"join": "inline", "options": "sysAttrs"})
    assert "createdAt" in with_sys["locatedAt"]["entity"]


async def test_join_flat(ngsi: Ngsi) -> None:
    """4.5.23.1: join=flat answers an array: the entity, then its Linked Entities; without any Linked Entity
    found the answer stays the entity (ETSI 018_10_02, 018_13_02, 018_14)."""
    build, city, country = await linked_chain(ngsi)
    reply = await ngsi.get(build["id"], {"join": "flat", "joinLevel": "2"})
    assert reply.status == 200, reply
    assert reply.json == [build, city, country]
    lonely = entity("Building", locatedAt=rel(uid("City")))
    await ngsi.create_ok(lonely)
    for join in ("flat", "inline"):
        assert (await ngsi.get(lonely["id"], {"join": join})).json == lonely


async def test_join_with_nested_pick_and_omit(ngsi: Ngsi) -> None:
    """4.21 / 4.5.23: ``{...}`` selects the members of the Linked Entities (ETSI 018_20, 018_21)."""
    build, city, country = await linked_chain(ngsi)
    got = await ngsi.fetch(build["id"], {"join": "inline", "joinLevel": "2",
                                         "pick": "id,locatedAt{id,name,isInCountry{id,description}}"})
    assert got == {"id": build["id"], "locatedAt": {
        "type": "Relationship", "object": city["id"], "entity": {
            "id": city["id"], "name": prop("Paris"), "isInCountry": {
                "type": "Relationship", "object": country["id"],
                "entity": {"id": country["id"], "description": prop("a country")}}}}}
    flat = (await ngsi.get(build["id"], {"join": "flat", "joinLevel": "2",
                                         "omit": "type,locatedAt{name,isInCountry{description}}"})).json
    assert flat == [{"id": build["id"], "name": prop("Eiffel Tower"), "locatedAt": rel(city["id"])},
                    {k: v for k, v in city.items() if k != "name"},
                    {k: v for k, v in country.items() if k != "description"}]


@pytest.mark.parametrize("params", [
    {"pick": "locatedAt{name}"},  # no join
    {"pick": "locatedAt{isInCountry{name}}", "join": "inline", "joinLevel": "1"},
    {"omit": "locatedAt{isInCountry{name}}", "join": "flat"},
    {"join": "inline", "joinLevel": "0"}, {"join": "inline", "joinLevel": "x"}, {"join": "sideways"},
])
async def test_invalid_joins(ngsi: Ngsi, params: dict[str, str]) -> None:
    """5.7.1.4: a Linked Entity selection needs a join reaching as deep; joinLevel is a positive integer
    (ETSI 5711_01_03, 019_33)."""
    build, _, _ = await linked_chain(ngsi)
    problem(await ngsi.get(build["id"], params), 400, "BadRequestData")


async def test_contained_by_is_not_retrieved_again(ngsi: Ngsi) -> None:
    """4.5.23: entities listed in ``containedBy`` have been retrieved already: they are not linked again."""
    build, city, _ = await linked_chain(ngsi)
    got = await ngsi.fetch(build["id"], {"join": "inline", "containedBy": city["id"]})
    assert "entity" not in got["locatedAt"]


async def test_join_stays_in_the_tenant(ngsi: Ngsi) -> None:
    """Linked Entities are read from the request's tenant only."""
    tenant = "t" + uid("x")[-12:]
    city = entity("City", name=prop("Elsewhere"))
    build = entity("Building", locatedAt=rel(city["id"]))
    await ngsi.create_ok(city)
    await ngsi.create_ok(build, tenant=tenant)
    got = (await ngsi.get(build["id"], {"join": "inline"}, tenant=tenant)).json
    assert "entity" not in got["locatedAt"]


# ------------------------------------------------------------------------------------------ type, local

async def test_type_and_local(ngsi: Ngsi) -> None:
    """5.7.1.4: ``type`` restricts the retrieval (404 when the entity lacks it); ``local=true`` is accepted
    (ETSI 5711_01_01)."""
    ent = entity(["Building", "Landmark"])
    await ngsi.create_ok(ent)
    for wanted in ("Building", "Vehicle,Building", "Building;Landmark", "Landmark|Vehicle"):
        assert (await ngsi.get(ent["id"], {"type": wanted})).status == 200, wanted
    for wanted in ("Vehicle", "Building;Vehicle"):
        problem(await ngsi.get(ent["id"], {"type": wanted}), 404, "ResourceNotFound")
    assert (await ngsi.get(ent["id"], {"local": "true"})).status == 200
    problem(await ngsi.get(ent["id"], {"local": "maybe"}), 400)


async def test_ld_json_body_carries_the_context(ngsi: Ngsi) -> None:
    """6.3.6: application/ld+json puts the @context in the body (no Link header), application/json in a Link
    header; with join=flat every entity of the array carries it."""
    build, _, _ = await linked_chain(ngsi)
    reply = await ngsi.get(build["id"], accept=LD_JSON)
    assert "@context" in reply.json and not link_urls(reply.headers.get("Link"))
    reply = await ngsi.get(build["id"], accept=JSON)
    assert "@context" not in reply.json and link_urls(reply.headers.get("Link"))
    flat = (await ngsi.get(build["id"], {"join": "flat"}, accept=LD_JSON)).json
    assert len(flat) == 2 and all("@context" in e for e in flat)

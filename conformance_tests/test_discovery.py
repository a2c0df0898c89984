"""Discovery of entity types and attributes: GET /types, /types/{type}, /attributes, /attributes/{attrId}.

Clauses of ETSI GS CIM 009 v1.8: 5.7.5 - 5.7.10 (operations), 5.2.24 - 5.2.28 (EntityTypeList, EntityType,
EntityTypeInfo, AttributeList, Attribute), 6.25 - 6.28 (HTTP binding), Annex C.5.7 - C.5.12 (examples),
5.5.10 (tenants), 6.3.20 (undefined query parameters). ETSI TPs 022 - 027, 577_01, 5710_01.

Every test works in a tenant of its own, so the lists are exactly what the test created.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .conftest import ContextServer
from .ngsi import (DEFAULT_VOCAB, JSON, LD_JSON, Ngsi, Reply, entity, geo, link_urls, point, problem, prop, rel,
                   unique_name)

EX = "http://example.org/disc/"


def tenant() -> str:
    return unique_name("disc")


async def discover(ngsi: Ngsi, path: str, *, tenant: str | None = None, params: dict[str, str] | None = None,
                   link: str | None = None, accept: str | None = None) -> Reply:
    return await ngsi.request("GET", path, tenant=tenant, params=params, link=link, accept=accept)


async def ok(ngsi: Ngsi, path: str, **kw: Any) -> Any:
    reply = await discover(ngsi, path, **kw)
    assert reply.status == 200, reply
    assert reply.content_type == (kw.get("accept") or JSON), reply
    return reply.json


async def fleet(ngsi: Ngsi, space: str) -> dict[str, str]:
    """Two Vehicles (one also a Car) and a Parking; ``speed`` is a Property on one Vehicle (with a second,
    datasetId instance) and a Relationship on the other; sub-attributes are no entity attributes."""
    a, b, p = unique_name("Vehicle"), unique_name("Car"), unique_name("Parking")
    await ngsi.create_ok(entity([a, b], speed=[prop(10), prop(11, datasetId="urn:ngsi-ld:Dataset:x")],
                                brand=prop("Mercedes", providedBy=rel("urn:ngsi-ld:Person:Bob"))), tenant=space)
    await ngsi.create_ok(entity(a, speed=rel("urn:ngsi-ld:Speed:1"), location=geo(point(1, 2))), tenant=space)
    await ngsi.create_ok(entity(p, location=geo(point(3, 4)), free=prop(3)), tenant=space)
    return {"vehicle": a, "car": b, "parking": p}


async def test_entity_type_list(ngsi: Ngsi) -> None:
    """5.7.5 / 5.2.24: an EntityTypeList of every type some entity has (a multi-typed entity counts for each
    of its types), short names from the @context (here the core context: default-vocabulary names), the
    @context in a Link header for application/json (ETSI TP 022_01)."""
    space = tenant()
    t = await fleet(ngsi, space)
    reply = await discover(ngsi, "/types", tenant=space)
    assert reply.status == 200 and reply.content_type == JSON, reply
    assert link_urls(reply.headers.get("Link")), reply
    body = reply.json
    assert body["type"] == "EntityTypeList"
    assert isinstance(body["id"], str) and ":" in body["id"]
    assert sorted(body["typeList"]) == sorted(t.values())


async def test_entity_type_details(ngsi: Ngsi) -> None:
    """5.7.6 / 5.2.25: details=true gives an array of EntityType: id is the type's full IRI, typeName its
    short name, attributeNames the union of the attributes of its entities (ETSI TP 023_01)."""
    space = tenant()
    t = await fleet(ngsi, space)
    body = await ok(ngsi, "/types", tenant=space, params={"details": "true"})
    assert isinstance(body, list)
    found = {item["typeName"]: item for item in body}
    assert set(found) == set(t.values())
    for item in body:
        assert item["type"] == "EntityType"
        assert item["id"] == DEFAULT_VOCAB + item["typeName"]
    assert sorted(found[t["vehicle"]]["attributeNames"]) == ["brand", "location", "speed"]
    assert sorted(found[t["car"]]["attributeNames"]) == ["brand", "speed"]
    assert sorted(found[t["parking"]]["attributeNames"]) == ["free", "location"]
    plain = await ok(ngsi, "/types", tenant=space, params={"details": "false"})
    assert plain["type"] == "EntityTypeList"


async def test_entity_type_info(ngsi: Ngsi) -> None:
    """5.7.7 / 5.2.26: EntityTypeInfo of one type: entityCount, and attributeDetails (Attribute: id,
    attributeName, attributeTypes: every attribute type the attribute has among those entities); the type
    can be named by its short name or its full IRI (ETSI TP 024_02)."""
    space = tenant()
    t = await fleet(ngsi, space)
    vehicle = t["vehicle"]
    for name in (vehicle, quote(DEFAULT_VOCAB + vehicle, safe="")):
        body = await ok(ngsi, f"/types/{name}", tenant=space)
        assert body["id"] == DEFAULT_VOCAB + vehicle
        assert body["type"] == "EntityTypeInfo"
        assert body["typeName"] == vehicle
        assert body["entityCount"] == 2
        details = {d["attributeName"]: d for d in body["attributeDetails"]}
        assert set(details) == {"brand", "location", "speed"}
        for detail in details.values():
            assert detail["type"] == "Attribute"
        assert details["speed"]["id"] == DEFAULT_VOCAB + "speed"
        assert sorted(details["speed"]["attributeTypes"]) == ["Property", "Relationship"]
        assert details["location"]["attributeTypes"] == ["GeoProperty"]
        assert details["location"]["id"] == "https://uri.etsi.org/ngsi-ld/location"
    body = await ok(ngsi, f"/types/{t['car']}", tenant=space)
    assert body["entityCount"] == 1
    assert {d["attributeName"]: d["attributeTypes"] for d in body["attributeDetails"]} == {
        "brand": ["Property"], "speed": ["Property"]}


async def test_entity_type_without_attributes(ngsi: Ngsi) -> None:
    """5.7.7: a type whose entities have no attribute is still a type with instances (ETSI TP 577_01_03)."""
    space, bare = tenant(), unique_name("Bare")
    await ngsi.create_ok(entity(bare), tenant=space)
    assert (await ok(ngsi, "/types", tenant=space))["typeList"] == [bare]
    body = await ok(ngsi, f"/types/{bare}", tenant=space)
    assert body["entityCount"] == 1 and body["attributeDetails"] == []
    assert await ok(ngsi, "/types", tenant=space, params={"details": "true"}) == [
        {"id": DEFAULT_VOCAB + bare, "type": "EntityType", "typeName": bare, "attributeNames": []}]
    assert (await ok(ngsi, "/attributes", tenant=space))["attributeList"] == []


async def test_attribute_list(ngsi: Ngsi) -> None:
    """5.7.8 / 5.2.27: an AttributeList of every attribute name some entity has; sub-attributes and the
    entity members (id, type, scope, createdAt, modifiedAt) are not attributes (ETSI TPs 025_01, 5710_01)."""
    space = tenant()
    await fleet(ngsi, space)
    await ngsi.create_ok(entity("Scoped", scope="/a/b", extra=prop(1)), tenant=space)
    body = await ok(ngsi, "/attributes", tenant=space)
    assert body["type"] == "AttributeList"
    assert isinstance(body["id"], str) and ":" in body["id"]
    assert sorted(body["attributeList"]) == ["brand", "extra", "free", "location", "speed"]


async def test_attribute_details(ngsi: Ngsi) -> None:
    """5.7.9 / 5.2.28: details=true gives an array of Attribute: id (full IRI), attributeName and typeNames
    (the types of the entities having it), as in Annex C.5.11 (ETSI TP 026_01)."""
    space = tenant()
    t = await fleet(ngsi, space)
    body = await ok(ngsi, "/attributes", tenant=space, params={"details": "true"})
    found = {item["attributeName"]: item for item in body}
    assert set(found) == {"brand", "free", "location", "speed"}
    for item in body:
        assert item["type"] == "Attribute"
        assert "attributeCount" not in item and "attributeTypes" not in item
    assert found["speed"]["id"] == DEFAULT_VOCAB + "speed"
    assert sorted(found["speed"]["typeNames"]) == sorted([t["vehicle"], t["car"]])
    assert sorted(found["location"]["typeNames"]) == sorted([t["vehicle"], t["parking"]])
    assert found["free"]["typeNames"] == [t["parking"]]


async def test_attribute_info(ngsi: Ngsi) -> None:
    """5.7.10 / 5.2.28: one Attribute with attributeCount (attribute instances: a second datasetId counts),
    attributeTypes and typeNames; the short name or the full IRI names it (ETSI TP 027_02)."""
    space = tenant()
    t = await fleet(ngsi, space)
    for name in ("speed", quote(DEFAULT_VOCAB + "speed", safe="")):
        body = await ok(ngsi, f"/attributes/{name}", tenant=space)
        assert body["id"] == DEFAULT_VOCAB + "speed"
        assert body["type"] == "Attribute"
        assert body["attributeName"] == "speed"
        assert body["attributeCount"] == 3
        assert sorted(body["attributeTypes"]) == ["Property", "Relationship"]
        assert sorted(body["typeNames"]) == sorted([t["vehicle"], t["car"]])
    body = await ok(ngsi, "/attributes/location", tenant=space)
    assert body["id"] == "https://uri.etsi.org/ngsi-ld/location"
    assert body["attributeCount"] == 2 and body["attributeTypes"] == ["GeoProperty"]


async def test_unknown_type_or_attribute_is_404(ngsi: Ngsi) -> None:
    """5.7.7 / 5.7.10: a type or attribute no entity has is ResourceNotFound; so are the entity members and
    sub-attributes, which are no attributes (ETSI TPs 024_01, 027_01, 577_01_01, 5710_01)."""
    space = tenant()
    t = await fleet(ngsi, space)
    problem(await discover(ngsi, f"/types/{unique_name('Nope')}", tenant=space), 404, "ResourceNotFound")
    problem(await discover(ngsi, "/types/speed", tenant=space), 404, "ResourceNotFound")
    problem(await discover(ngsi, f"/attributes/{unique_name('nope')}", tenant=space), 404, "ResourceNotFound")
    problem(await discover(ngsi, f"/attributes/{t['vehicle']}", tenant=space), 404, "ResourceNotFound")
    for member in ("id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "providedBy"):
        problem(await discover(ngsi, f"/attributes/{member}", tenant=space), 404, "ResourceNotFound")


async def test_answers_follow_writes(ngsi: Ngsi) -> None:
    """5.7.5 / 5.7.7 / 5.7.10: the answers describe the entities that exist now: a deleted entity's type and
    attributes disappear with it, a new attribute appears."""
    space, kind = tenant(), unique_name("Gone")
    ent = entity(kind, temp=prop(1))
    await ngsi.create_ok(ent, tenant=space)
    await ngsi.create_ok(entity("Stays"), tenant=space)
    assert (await ok(ngsi, f"/types/{kind}", tenant=space))["entityCount"] == 1
    reply = await ngsi.request("POST", ngsi.entity_path(ent["id"]) + "/attrs", body={"hum": prop(2)},
                               tenant=space)
    assert reply.status == 204, reply
    assert sorted((await ok(ngsi, "/attributes", tenant=space))["attributeList"]) == ["hum", "temp"]
    assert (await ngsi.delete(ent["id"], tenant=space)).status == 204
    assert (await ok(ngsi, "/types", tenant=space))["typeList"] == ["Stays"]
    assert (await ok(ngsi, "/attributes", tenant=space))["attributeList"] == []
    problem(await discover(ngsi, f"/types/{kind}", tenant=space), 404, "ResourceNotFound")
    problem(await discover(ngsi, "/attributes/temp", tenant=space), 404, "ResourceNotFound")


async def test_names_compacted_with_the_request_context(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.7.5 - 5.7.10 / Annex C.5.7 - C.5.12 notes: type and attribute names the request's @context knows are
    short names, the others full IRIs; ids are always full IRIs; path names are expanded with the request's
    @context (ETSI TPs 022_01_02, 025_01_02, 024_02_02, 027_02_02)."""
    space = tenant()
    ctx = context_server.context({"Truck": EX + "Truck", "load": EX + "load"})
    await ngsi.create_ok(entity("Truck", load=prop(5), plate=prop("X")), link=ctx, tenant=space)
    # without the context: the example IRIs stay full, default-vocabulary names are short
    assert (await ok(ngsi, "/types", tenant=space))["typeList"] == [EX + "Truck"]
    assert sorted((await ok(ngsi, "/attributes", tenant=space))["attributeList"]) == [EX + "load", "plate"]
    problem(await discover(ngsi, "/types/Truck", tenant=space), 404, "ResourceNotFound")
    info = await ok(ngsi, "/types/" + quote(EX + "Truck", safe=""), tenant=space)
    assert info["typeName"] == EX + "Truck"
    # with it: short names, same ids, short path names resolve
    reply = await discover(ngsi, "/types", tenant=space, link=ctx)
    assert reply.status == 200 and reply.json["typeList"] == ["Truck"], reply
    assert ctx in link_urls(reply.headers.get("Link")), reply
    assert sorted((await ok(ngsi, "/attributes", tenant=space, link=ctx))["attributeList"]) == ["load", "plate"]
    details = await ok(ngsi, "/types", tenant=space, link=ctx, params={"details": "true"})
    assert details == [{"id": EX + "Truck", "type": "EntityType", "typeName": "Truck",
                        "attributeNames": ["load", "plate"]}]
    info = await ok(ngsi, "/types/Truck", tenant=space, link=ctx)
    assert info["id"] == EX + "Truck" and info["typeName"] == "Truck" and info["entityCount"] == 1
    assert {d["id"]: d["attributeName"] for d in info["attributeDetails"]} == {
        EX + "load": "load", DEFAULT_VOCAB + "plate": "plate"}
    attr = await ok(ngsi, "/attributes/load", tenant=space, link=ctx)
    assert attr == {"id": EX + "load", "type": "Attribute", "attributeName": "load", "attributeCount": 1,
                    "attributeTypes": ["Property"], "typeNames": ["Truck"]}
    listed = await ok(ngsi, "/attributes", tenant=space, link=ctx, params={"details": "true"})
    assert {a["id"]: a["typeNames"] for a in listed} == {EX + "load": ["Truck"], DEFAULT_VOCAB + "plate": ["Truck"]}


async def test_json_ld_representation(ngsi: Ngsi, context_server: ContextServer) -> None:
    """6.3.6 / OpenAPI 6.25 - 6.28: Accept application/ld+json puts the @context in the body (in each element
    of a details array) and no Link header."""
    space = tenant()
    ctx = context_server.context({"Truck": EX + "Truck"})
    await ngsi.create_ok(entity("Truck", load=prop(5)), link=ctx, tenant=space)
    for path, params in (("/types", None), ("/types", {"details": "true"}), ("/types/Truck", None),
                         ("/attributes", None), ("/attributes", {"details": "true"}), ("/attributes/load", None)):
        reply = await discover(ngsi, path, tenant=space, link=ctx, params=params, accept=LD_JSON)
        assert reply.status == 200 and reply.content_type == LD_JSON, reply
        assert not link_urls(reply.headers.get("Link")), reply
        items = reply.json if isinstance(reply.json, list) else [reply.json]
        assert items, reply
        for item in items:
            assert ctx in ([item["@context"]] if isinstance(item["@context"], str) else item["@context"]), reply
    problem(await discover(ngsi, "/types", tenant=space, accept="application/geo+json"), 406)


async def test_tenants_are_separate(ngsi: Ngsi) -> None:
    """5.5.10 / 5.7.11: discovery covers the tenant of the request only; an unknown tenant is
    NonexistentTenant (ETSI TP 577_01_03)."""
    first, second = tenant(), tenant()
    only_first = unique_name("First")
    await ngsi.create_ok(entity(only_first, secret=prop(1)), tenant=first)
    await ngsi.create_ok(entity("Shared", open=prop(1)), tenant=second)
    assert (await ok(ngsi, "/types", tenant=first))["typeList"] == [only_first]
    assert (await ok(ngsi, "/types", tenant=second))["typeList"] == ["Shared"]
    assert (await ok(ngsi, "/attributes", tenant=second))["attributeList"] == ["open"]
    problem(await discover(ngsi, f"/types/{only_first}", tenant=second), 404, "ResourceNotFound")
    problem(await discover(ngsi, "/attributes/secret", tenant=second), 404, "ResourceNotFound")
    default = await ok(ngsi, "/types")
    assert only_first not in default["typeList"]
    missing = tenant()
    for path in ("/types", "/types/Shared", "/attributes", "/attributes/open"):
        problem(await discover(ngsi, path, tenant=missing), 404, "NonexistentTenant")


async def test_query_parameters(ngsi: Ngsi) -> None:
    """6.3.20 / OpenAPI: /types and /attributes define details and local, /types/{type} and
    /attributes/{attrId} only local; anything else is 400 InvalidRequest; a details or local that is not a
    boolean is 400 (ETSI TPs 577_01_02, 5710_01_03)."""
    space = tenant()
    await ngsi.create_ok(entity("Building", height=prop(3)), tenant=space)
    for path in ("/types", "/attributes"):
        assert (await ok(ngsi, path, tenant=space, params={"local": "true"}))["type"] in (
            "EntityTypeList", "AttributeList")
        assert isinstance(await ok(ngsi, path, tenant=space, params={"local": "true", "details": "true"}), list)
        problem(await discover(ngsi, path, tenant=space, params={"limit": "5"}), 400, "InvalidRequest")
        problem(await discover(ngsi, path, tenant=space, params={"details": "yes"}), 400)
    for path in ("/types/Building", "/attributes/height"):
        assert (await ok(ngsi, path, tenant=space, params={"local": "true"}))["id"]
        problem(await discover(ngsi, path, tenant=space, params={"details": "true"}), 400, "InvalidRequest")
        problem(await discover(ngsi, path, tenant=space, params={"local": "maybe"}), 400)


async def test_read_only_resources(ngsi: Ngsi) -> None:
    """6.25 - 6.28: the discovery resources only support GET (and HEAD); other methods are 405 with Allow."""
    for path in ("/types", "/types/Building", "/attributes", "/attributes/height"):
        reply = await ngsi.request("POST", path, body={})
        assert reply.status == 405, reply
        assert "GET" in reply.headers.get("Allow", ""), reply

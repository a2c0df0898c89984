"""Entity changes: PUT (replace), PATCH (merge) and DELETE /entities/{id}, purge (DELETE /entities), and
the methods the entity resources do not allow. Creation and retrieval are in ``test_entities``.

Clauses of ETSI GS CIM 009 v1.8: 5.6.6 Delete Entity, 5.6.17 Merge Entity, 5.6.18 Replace Entity,
5.6.21 Purge Entities, 6.4 / 6.5 HTTP binding.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .ngsi import MERGE_PATCH, NULL, Ngsi, entity, instances, problem, prop, rel, same_instant, uid, unique_name

OBSERVED = "2024-03-14T13:00:00.000Z"


# ---------------------------------------------------------------------------------------------- replace


async def test_replace_entity(ngsi: Ngsi) -> None:
    """5.6.18: Replace Entity (PUT /entities/{id}) answers 204; afterwards the entity has exactly the
    attributes of the body (the others are gone) and its createdAt is unchanged (ETSI TP 054_01)."""
    ent = entity("Vehicle", speed=prop(1), name=prop("old"), scope="/old")
    await ngsi.create_ok(ent)
    before = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    reply = await ngsi.replace(ent["id"], {"id": ent["id"], "type": "Car", "color": prop("red")})
    assert reply.status == 204, reply
    assert reply.body == b""
    got = await ngsi.fetch(ent["id"], {"options": "sysAttrs"})
    assert got["type"] == "Car"
    assert set(got) - {"createdAt", "modifiedAt"} == {"id", "type", "color"}, got
    assert got["color"]["value"] == "red"
    assert same_instant(got["createdAt"], before["createdAt"])


async def test_replace_unknown_is_404_and_invalid_id_is_400(ngsi: Ngsi) -> None:
    """5.6.18.4: replacing an entity that does not exist is ResourceNotFound; an id that is not a URI is
    BadRequestData (ETSI TP 054_02)."""
    missing = uid("Vehicle")
    problem(await ngsi.replace(missing, {"id": missing, "type": "Vehicle"}), 404, "ResourceNotFound")
    assert (await ngsi.get(missing)).status == 404
    problem(await ngsi.replace("invalidUri", {"type": "Vehicle"}), 400, "BadRequestData")


# ---------------------------------------------------------------------------------------------- merge


async def test_merge_entity(ngsi: Ngsi) -> None:
    """5.6.17: Merge Entity (PATCH /entities/{id}) answers 204; new attributes are added, given members of
    existing attributes replace the old ones while members not given are kept (JSON merge-patch: unitCode
    stays), and untouched attributes remain (ETSI TP 056_01_04)."""
    ent = entity("Vehicle", speed=prop(50, unitCode="KMH", observedAt=OBSERVED), name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"speed": prop(60, observedAt="2024-03-15T00:00:00.000Z"),
                                         "color": prop("red")})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert got["speed"]["value"] == 60 and got["speed"]["unitCode"] == "KMH"
    assert same_instant(got["speed"]["observedAt"], "2024-03-15T00:00:00.000Z")
    assert got["name"] == prop("kept")
    assert got["color"] == prop("red")


async def test_merge_with_merge_patch_content_type(ngsi: Ngsi) -> None:
    """6.3.4 / 6.5.3.4: PATCH requests accept Content-Type application/merge-patch+json."""
    ent = entity("Vehicle", speed=prop(50))
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"speed": prop(70)}, ctype=MERGE_PATCH)
    assert reply.status == 204, reply
    assert (await ngsi.fetch(ent["id"]))["speed"]["value"] == 70


async def test_merge_null_deletes_attribute(ngsi: Ngsi) -> None:
    """5.6.17.4 / 4.5.0: in a merge, an attribute whose value (object, languageMap) is the NGSI-LD Null is
    deleted; the null never shows in the result (ETSI TP 056_03)."""
    ent = entity("Vehicle", speed=prop(50), isParked=rel("urn:ngsi-ld:Parking:1"),
                 street={"type": "LanguageProperty", "languageMap": {"en": "Main street"}}, name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"speed": prop(NULL), "isParked": rel(NULL),
                                         "street": {"type": "LanguageProperty", "languageMap": {"@none": NULL}}})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert set(got) == {"id", "type", "name"}, got
    assert NULL not in (await ngsi.get(ent["id"])).body.decode()


async def test_merge_null_deletes_dataset_instance(ngsi: Ngsi) -> None:
    """5.6.17.4 / 4.5.5: an NGSI-LD Null with a datasetId deletes only that instance (ETSI TP 056_04)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:gps")])
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"speed": prop(NULL, datasetId="urn:ngsi-ld:Dataset:gps")})
    assert reply.status == 204, reply
    got = instances((await ngsi.fetch(ent["id"]))["speed"])
    assert [(i.get("datasetId"), i["value"]) for i in got] == [(None, 1)]


async def test_merge_null_deletes_sub_attribute(ngsi: Ngsi) -> None:
    """5.6.17.4: a sub-attribute set to the NGSI-LD Null in a merge is deleted; the rest of the attribute
    stays."""
    ent = entity("Vehicle", speed=prop(50, accuracy=prop(0.5), source=prop("gps")))
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"speed": prop(50, accuracy=prop(NULL))})
    assert reply.status == 204, reply
    speed = (await ngsi.fetch(ent["id"]))["speed"]
    assert speed == prop(50, source=prop("gps")), speed


async def test_merge_unknown_is_404_and_invalid_id_is_400(ngsi: Ngsi) -> None:
    """5.6.17.4: merging into an entity that does not exist is ResourceNotFound (and does not create it);
    an id that is not a URI is BadRequestData (ETSI TP 056_02)."""
    missing = uid("Vehicle")
    problem(await ngsi.merge(missing, {"speed": prop(1)}), 404, "ResourceNotFound")
    assert (await ngsi.get(missing)).status == 404
    problem(await ngsi.merge("invalidUri", {"speed": prop(1)}), 400, "BadRequestData")


# ---------------------------------------------------------------------------------------------- delete


async def test_delete_entity(ngsi: Ngsi) -> None:
    """5.6.6 / 6.5.3.2: Delete Entity answers 204 with no body; the entity is gone (404) and deleting it
    again is ResourceNotFound (ETSI TPs 002_01, 002_03)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.delete(ent["id"])
    assert reply.status == 204, reply
    assert reply.body == b""
    problem(await ngsi.get(ent["id"]), 404, "ResourceNotFound")
    problem(await ngsi.delete(ent["id"]), 404, "ResourceNotFound")


async def test_delete_invalid_id_is_400(ngsi: Ngsi) -> None:
    """5.6.6.4: an id that is not a URI is BadRequestData (ETSI TP 002_02)."""
    problem(await ngsi.delete("thisisaninvaliduri"), 400, "BadRequestData")


async def test_deleted_id_can_be_created_again(ngsi: Ngsi) -> None:
    """5.6.6 / 5.6.1: after deletion the id is free: creating it again succeeds with the new content only."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    assert (await ngsi.delete(ent["id"])).status == 204
    await ngsi.create_ok({"id": ent["id"], "type": "Vehicle", "name": prop("new")})
    got = await ngsi.fetch(ent["id"])
    assert set(got) == {"id", "type", "name"}


# ---------------------------------------------------------------------------------------------- purge


async def test_purge_by_type(ngsi: Ngsi) -> None:
    """5.6.21 / 6.4.3.3: DELETE /entities?type=T deletes all entities of type T (204, no body) and only
    those."""
    doomed_type, other_type = unique_name("Purge"), unique_name("Keep")
    doomed = [entity(doomed_type, n=prop(i)) for i in range(3)]
    kept = entity(other_type, n=prop(0))
    for ent in [*doomed, kept]:
        await ngsi.create_ok(ent)
    reply = await ngsi.request("DELETE", "/entities", params={"type": doomed_type})
    assert reply.status == 204, reply
    assert reply.body == b""
    for ent in doomed:
        assert (await ngsi.get(ent["id"])).status == 404
    await ngsi.fetch(kept["id"])


async def test_purge_by_id_and_type(ngsi: Ngsi) -> None:
    """5.6.21.4: the filters combine: id + type deletes just that entity (ETSI TP 060_03_04)."""
    type_ = unique_name("Purge")
    first, second = entity(type_), entity(type_)
    await ngsi.create_ok(first)
    await ngsi.create_ok(second)
    reply = await ngsi.request("DELETE", "/entities", params={"type": type_, "id": first["id"]})
    assert reply.status == 204, reply
    assert (await ngsi.get(first["id"])).status == 404
    await ngsi.fetch(second["id"])
    await ngsi.delete(second["id"])


async def test_purge_without_filter_is_400(ngsi: Ngsi) -> None:
    """5.6.21.4: a purge needs a restricting filter (type, attrs, q, geoquery, or local=true): without one it
    is BadRequestData and nothing is deleted (ETSI TP 060_01)."""
    ent = entity("Vehicle")
    await ngsi.create_ok(ent)
    problem(await ngsi.request("DELETE", "/entities"), 400, "BadRequestData")
    await ngsi.fetch(ent["id"])


async def test_purge_by_id_or_id_pattern_alone_is_400(ngsi: Ngsi) -> None:
    """5.6.21.4: an id or an idPattern is no qualifying filter of a purge, so that ``idPattern=.*`` cannot empty
    the tenant: BadRequestData, nothing deleted (ETSI TP 060_06_01, 060_06_02); with a type they restrict it."""
    type_ = unique_name("Purge")
    ent = entity(type_)
    await ngsi.create_ok(ent)
    for params in ({"idPattern": ".*"}, {"id": ent["id"]}, {"idPattern": "^" + ent["id"]}):
        problem(await ngsi.request("DELETE", "/entities", params=params), 400, "BadRequestData")
    await ngsi.fetch(ent["id"])
    reply = await ngsi.request("DELETE", "/entities", params={"type": type_, "idPattern": "^" + ent["id"]})
    assert reply.status == 204, reply
    assert (await ngsi.get(ent["id"])).status == 404


async def test_purge_drop_and_keep(ngsi: Ngsi) -> None:
    """5.6.21.4: ``drop`` deletes the listed attributes of the matching entities, ``keep`` deletes all other
    attributes; the entities themselves remain (ETSI TPs 060_04, 060_05)."""
    type_ = unique_name("Purge")
    first = entity(type_, name=prop("a"), color=prop("red"), speed=prop(1))
    second = entity(type_, name=prop("b"), color=prop("blue"), speed=prop(2))
    await ngsi.create_ok(first)
    await ngsi.create_ok(second)
    reply = await ngsi.request("DELETE", "/entities", params={"type": type_, "id": first["id"], "drop": "color"})
    assert reply.status == 204, reply
    assert set(await ngsi.fetch(first["id"])) == {"id", "type", "name", "speed"}
    reply = await ngsi.request("DELETE", "/entities", params={"type": type_, "id": second["id"], "keep": "name"})
    assert reply.status == 204, reply
    assert set(await ngsi.fetch(second["id"])) == {"id", "type", "name"}


async def test_purge_keep_and_drop_together_is_400(ngsi: Ngsi) -> None:
    """5.6.21.4: keep and drop are mutually exclusive: BadRequestData (ETSI TP 060_02)."""
    type_ = unique_name("Purge")
    ent = entity(type_, name=prop("a"), color=prop("red"))
    await ngsi.create_ok(ent)
    problem(await ngsi.request("DELETE", "/entities", params={"type": type_, "keep": "name", "drop": "color"}),
            400, "BadRequestData")
    assert set(await ngsi.fetch(ent["id"])) == {"id", "type", "name", "color"}


# ---------------------------------------------------------------------------------------------- methods


async def test_put_patch_without_entity_id_is_400(ngsi: Ngsi) -> None:
    """ETSI TP 054_02_02 / 056_02_02: replacing or merging ``/entities/`` (the entity id missing) is
    BadRequestData."""
    for method in ("PUT", "PATCH"):
        problem(await ngsi.request(method, "/entities/", body={"type": "Vehicle"}), 400, "BadRequestData")


@pytest.mark.parametrize("method,path", [("PUT", "/entities"), ("PATCH", "/entities"),
                                         ("GET", "/entityOperations/create"),
                                         ("DELETE", "/entityOperations/upsert")])
async def test_unsupported_method_is_405_with_allow(ngsi: Ngsi, method: str, path: str) -> None:
    """Table 6.2-1 lists the methods of each resource; another method is 405 Method Not Allowed with an
    Allow header listing the supported ones (IETF RFC 9110 15.5.6)."""
    reply = await ngsi.request(method, path, body={"id": uid("Vehicle"), "type": "Vehicle"})
    assert reply.status == 405, reply
    allowed = {m.strip().upper() for m in reply.headers.get("Allow", "").split(",") if m.strip()}
    assert "POST" in allowed and method not in allowed, reply.headers


async def test_merge_with_key_values_fills_the_stored_value_members(ngsi: Ngsi) -> None:
    """5.6.17 / OpenAPI mergeEntity ``options=keyValues``: the body holds bare values; each goes into the
    value member of the attribute's stored type (a Relationship keeps being a Relationship), new attributes
    become Properties, ``observedAt`` applies to the attributes written, and other members are kept."""
    ent = entity("Vehicle", speed=prop(10, unitCode="KMH"), owner=rel("urn:ngsi-ld:Person:A"))
    await ngsi.create_ok(ent)
    reply = await ngsi.request("PATCH", f"/entities/{ent['id']}",
                               body={"speed": 20, "owner": "urn:ngsi-ld:Person:B", "color": "red"},
                               params={"options": "keyValues", "observedAt": "2024-05-01T10:00:00Z"})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert got["speed"]["value"] == 20 and got["speed"]["unitCode"] == "KMH"
    assert same_instant(got["speed"]["observedAt"], "2024-05-01T10:00:00Z")
    assert got["owner"]["type"] == "Relationship" and got["owner"]["object"] == "urn:ngsi-ld:Person:B"
    assert got["color"]["type"] == "Property" and got["color"]["value"] == "red"


async def test_merge_goes_into_a_json_object_value(ngsi: Ngsi) -> None:
    """5.5.12 / RFC 7396 (ETSI extension TP 554_01_04): a merge patches a Property's JSON object value key by
    key: a named key is updated, a key set to the NGSI-LD Null is removed, the others stay; a new attribute
    keeps no Null; the Null is never stored or served. A scalar or array replaces as before."""
    ent = entity("Vehicle", address=prop({"street": "Unter den Linden", "city": "Berlin", "country": "Germany"}),
                 tags=prop(["a", "b"]))
    await ngsi.create_ok(ent)
    reply = await ngsi.merge(ent["id"], {"address": prop({"street": "Pariser Platz", "country": NULL}),
                                         "tags": prop(["c"]), "other": prop({"k": 1, "gone": NULL})})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert got["address"]["value"] == {"street": "Pariser Platz", "city": "Berlin"}
    assert got["tags"]["value"] == ["c"] and got["other"]["value"] == {"k": 1}
    assert NULL not in json.dumps(got)
    # keyValues merge: the same rule
    reply = await ngsi.merge(ent["id"], {"address": {"city": "Paris", "street": NULL}}, params={"options": "keyValues"})
    assert reply.status == 204, reply
    assert (await ngsi.fetch(ent["id"]))["address"]["value"] == {"city": "Paris"}


@pytest.mark.parametrize("value", [{"country": NULL}, {"geo": {"country": NULL}}, [1, NULL]])
async def test_null_inside_a_value_outside_a_merge_is_400(ngsi: Ngsi, value: Any) -> None:
    """5.5.4 (ETSI extension TPs 554_01_02 / 03): the NGSI-LD Null inside a Property's value is BadRequestData
    on create, append, partial update and replace, with nothing written."""
    ent = entity("Vehicle", address=prop({"country": "Germany"}))
    problem(await ngsi.create({**entity("Vehicle"), "address": prop(value)}), 400, "BadRequestData")
    await ngsi.create_ok(ent)
    problem(await ngsi.patch_attr(ent["id"], "address", {"value": value}), 400, "BadRequestData")
    problem(await ngsi.append(ent["id"], {"extra": prop(value)}), 400, "BadRequestData")
    problem(await ngsi.update_attrs(ent["id"], {"address": prop(value)}), 400, "BadRequestData")
    problem(await ngsi.put_attr(ent["id"], "address", prop(value)), 400, "BadRequestData")
    got = await ngsi.fetch(ent["id"])
    assert got["address"]["value"] == {"country": "Germany"} and "extra" not in got


_GATED_WRITES = {  # (method, path under /entities/{id}, body): the entity writes that take a type selector
    "update attrs": ("PATCH", "/attrs", {"name": prop("y")}),
    "append attrs": ("POST", "/attrs", {"extra": prop("y")}),
    "partial update": ("PATCH", "/attrs/name", {"value": "y"}),
    "replace attr": ("PUT", "/attrs/name", prop("y")),
    "delete attr": ("DELETE", "/attrs/name", None),
    "delete scope": ("DELETE", "/attrs/scope", None),
    "merge": ("PATCH", "", {"name": prop("y")}),
    "replace": ("PUT", "", {"type": "Building", "name": prop("y")}),
    "delete": ("DELETE", "", None),
}


@pytest.mark.parametrize("write", list(_GATED_WRITES))
async def test_type_selector_gates_entity_writes(ngsi: Ngsi, write: str) -> None:
    """4.17 with 5.6.2.4 / 5.6.3.4 / 5.6.4.4 / 5.6.5.4 / 5.6.6.4 (ETSI extension TPs 562–566): with ``type``,
    a write to an entity of other types is ResourceNotFound and changes nothing; a matching selector (also an
    expression naming a later type) writes."""
    method, path, body = _GATED_WRITES[write]
    ent = {**entity(["Building", "Shelter"], name=prop("x")), "scope": "/Madrid"}
    await ngsi.create_ok(ent)
    before = await ngsi.fetch(ent["id"])
    target = ngsi.entity_path(ent["id"]) + path
    problem(await ngsi.request(method, target, body=body, params={"type": "Vehicle"}), 404, "ResourceNotFound")
    assert await ngsi.fetch(ent["id"]) == before
    reply = await ngsi.request(method, target, body=body, params={"type": "Vehicle|Shelter"})
    assert reply.status == 204, reply
    after = await ngsi.get(ent["id"])
    assert after.status == 404 if write == "delete" else after.json != before

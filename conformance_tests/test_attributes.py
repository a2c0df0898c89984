"""Attribute provision: /entities/{id}/attrs (append, update) and /entities/{id}/attrs/{attrId} (partial
update, replace, delete).

Clauses of ETSI GS CIM 009 v1.8: 5.6.2 Update Attributes, 5.6.3 Append Attributes, 5.6.4 Partial Attribute
Update, 5.6.5 Delete Attribute, 5.6.19 Replace Attribute, 5.2.18 UpdateResult, 5.5.8 (partial update
patch behaviour), 6.6 / 6.7 HTTP binding.
"""

from __future__ import annotations

from typing import Any

import pytest

from .ngsi import (
    ERRORS, MERGE_PATCH, NULL, entity, instances, Ngsi, parse_datetime, problem, prop, rel,
    same_instant, uid,
)

GPS = "urn:ngsi-ld:Dataset:gps"
RADAR = "urn:ngsi-ld:Dataset:radar"


def check_update_result(body: Any, updated: set[str], not_updated: set[str]) -> None:
    """5.2.18 UpdateResult: ``updated`` lists the attribute names written, ``notUpdated`` the others, each with
    an attributeName and a reason."""
    assert isinstance(body, dict), body
    assert set(body.get("updated", [])) == updated, body
    entries = body.get("notUpdated", [])
    assert {e["attributeName"] for e in entries} == not_updated, body
    for e in entries:
        assert isinstance(e.get("reason"), str) and e["reason"], body


# ---------------------------------------------------------------------------------------------- append


async def test_append_attributes(ngsi: Ngsi) -> None:
    """5.6.3 / 6.6.3.1: Append Attributes adds new attributes and (by default) overwrites existing ones:
    204 No Content (ETSI TP 010_01)."""
    ent = entity("Vehicle", speed=prop(1, unitCode="KMH"))
    await ngsi.create_ok(ent)
    reply = await ngsi.append(ent["id"], {"speed": prop(2), "isParked": rel("urn:ngsi-ld:Parking:1")})
    assert reply.status == 204, reply
    assert reply.body == b""
    got = await ngsi.fetch(ent["id"])
    assert got["speed"] == prop(2)
    assert got["isParked"] == rel("urn:ngsi-ld:Parking:1")


async def test_append_no_overwrite_reports_existing(ngsi: Ngsi) -> None:
    """5.6.3.4 / 6.6.3.1: with options=noOverwrite existing attributes are left alone; the answer is 207 with
    an UpdateResult whose notUpdated names them (ETSI TP 010_04_01)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.append(ent["id"], {"speed": prop(2), "color": prop("red")},
                              params={"options": "noOverwrite"})
    assert reply.status == 207, reply
    check_update_result(reply.json, {"color"}, {"speed"})
    got = await ngsi.fetch(ent["id"])
    assert got["speed"] == prop(1)
    assert got["color"] == prop("red")


async def test_append_new_dataset_instance(ngsi: Ngsi) -> None:
    """5.6.3.4 / 4.5.5: appending an instance with a new datasetId adds it next to the existing ones, even
    with noOverwrite (ETSI TP 010_04_02)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.append(ent["id"], {"speed": prop(2, datasetId=GPS)}, params={"options": "noOverwrite"})
    assert reply.status == 204, reply
    got = instances((await ngsi.fetch(ent["id"]))["speed"])
    assert {(i.get("datasetId"), i["value"]) for i in got} == {(None, 1), (GPS, 2)}


async def test_append_to_unknown_entity_is_404(ngsi: Ngsi) -> None:
    """5.6.3.4: appending to an entity that does not exist is ResourceNotFound (ETSI TP 010_03)."""
    missing = uid("Vehicle")
    problem(await ngsi.append(missing, {"speed": prop(1)}), 404, "ResourceNotFound")
    assert (await ngsi.get(missing)).status == 404


async def test_append_invalid_entity_id_is_400(ngsi: Ngsi) -> None:
    """5.6.3.4: an entity id that is not a URI is BadRequestData (ETSI TP 010_02_02)."""
    problem(await ngsi.append("thisisaninvaliduri", {"speed": prop(1)}), 400, "BadRequestData")


async def test_append_invalid_fragment(ngsi: Ngsi) -> None:
    """5.6.3.4 / 6.3.2: a fragment that is not JSON is InvalidRequest (ETSI TP 010_05); a fragment with an
    invalid attribute is BadRequestData, and nothing of it is written."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.request("POST", ngsi.entity_path(ent["id"]) + "/attrs", data=b'{"speed": ',
                               ctype="application/json")
    problem(reply, 400, "InvalidRequest")
    problem(await ngsi.append(ent["id"], {"color": prop("red"), "bad": {"type": "Property"}}), 400,
            "BadRequestData")
    assert set(await ngsi.fetch(ent["id"])) == {"id", "type", "speed"}


# ---------------------------------------------------------------------------------------------- update


async def test_update_attributes_replaces_whole_attribute(ngsi: Ngsi) -> None:
    """5.6.2 / 5.5.8 EXAMPLE 2: Update Attributes (PATCH .../attrs) replaces each given existing attribute as
    a whole (a member not given, here unitCode, disappears): 204 (ETSI TP 558_01_02)."""
    ent = entity("Vehicle", temperature=prop(25, unitCode="CEL"), name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.update_attrs(ent["id"], {"temperature": prop(100, observedAt="2022-03-14T13:00:00.000Z")})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert set(got["temperature"]) == {"type", "value", "observedAt"}, got
    assert got["temperature"]["value"] == 100
    assert got["name"] == prop("kept")


async def test_update_attributes_appends_non_existing(ngsi: Ngsi) -> None:
    """5.6.2 as the ETSI suite reads it (TP 011_01_03 "Update Existing Attributes And Append Non-existing
    Attributes", 204): existing attributes are replaced and attributes the entity lacks are appended. The
    spec text is ambiguous here; we follow the official conformance suite."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.update_attrs(ent["id"], {"speed": prop(2), "color": prop("red")})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert got["speed"] == prop(2) and got["color"] == prop("red")


async def test_update_attributes_scope_only_when_present(ngsi: Ngsi) -> None:
    """5.6.2 / 4.18 (ETSI TP 011_05): a scope in an update replaces the entity's scope; an entity without a
    scope does not get one (207, scope not updated)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.update_attrs(ent["id"], {"scope": "/a/b"})
    assert reply.status == 207, reply
    assert "scope" not in await ngsi.fetch(ent["id"])
    scoped = {**entity("Vehicle", speed=prop(1)), "scope": "/x"}
    await ngsi.create_ok(scoped)
    assert (await ngsi.update_attrs(scoped["id"], {"scope": "/a/b"})).status == 204
    assert (await ngsi.fetch(scoped["id"]))["scope"] == "/a/b"


async def test_update_attributes_null_deletes(ngsi: Ngsi) -> None:
    """5.6.2.4 / 5.5.8 EXAMPLE 3: an attribute updated with the NGSI-LD Null is deleted (ETSI TP 558_01_03,
    011_07)."""
    ent = entity("Vehicle", temperature=prop(25), name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.update_attrs(ent["id"], {"temperature": prop(NULL)})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert set(got) == {"id", "type", "name"}, got


async def test_update_attributes_of_unknown_entity_is_404(ngsi: Ngsi) -> None:
    """5.6.2.4: updating attributes of an entity that does not exist is ResourceNotFound (ETSI TP 011_03)."""
    problem(await ngsi.update_attrs(uid("Vehicle"), {"speed": prop(1)}), 404, "ResourceNotFound")


async def test_update_attributes_invalid_entity_id_is_400(ngsi: Ngsi) -> None:
    """5.6.2.4: an entity id that is not a URI is BadRequestData (ETSI TP 011_02_02)."""
    problem(await ngsi.update_attrs("thisisaninvaliduri", {"speed": prop(1)}), 400, "BadRequestData")


# ---------------------------------------------------------------------------------------------- partial update


async def test_partial_update_changes_only_given_members(ngsi: Ngsi) -> None:
    """5.6.4 / 5.5.8 EXAMPLE 1: Partial Attribute Update (PATCH .../attrs/{attrId}) overwrites the given
    members (value, observedAt) and keeps the others (unitCode): 204 (ETSI TP 558_01_01)."""
    ent = entity("Vehicle", temperature=prop(25, unitCode="CEL"), name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.patch_attr(ent["id"], "temperature",
                                  {"type": "Property", "value": 100, "observedAt": "2022-03-14T13:00:00.000Z"})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert got["temperature"]["value"] == 100
    assert got["temperature"]["unitCode"] == "CEL"
    assert same_instant(got["temperature"]["observedAt"], "2022-03-14T13:00:00.000Z")
    assert got["name"] == prop("kept")


async def test_partial_update_value_only_fragment(ngsi: Ngsi) -> None:
    """5.6.4.4: the fragment may give just the member to change (no type): the attribute keeps its type."""
    ent = entity("Vehicle", isParked=rel("urn:ngsi-ld:Parking:1", observedAt="2022-03-14T13:00:00.000Z"))
    await ngsi.create_ok(ent)
    reply = await ngsi.patch_attr(ent["id"], "isParked", {"object": "urn:ngsi-ld:Parking:2"})
    assert reply.status == 204, reply
    got = (await ngsi.fetch(ent["id"]))["isParked"]
    assert got["type"] == "Relationship" and got["object"] == "urn:ngsi-ld:Parking:2"
    assert same_instant(got["observedAt"], "2022-03-14T13:00:00.000Z")


async def test_partial_update_with_merge_patch_content_type(ngsi: Ngsi) -> None:
    """6.3.4 / 6.7.3.1: PATCH accepts application/merge-patch+json (ETSI TP 044_01)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    reply = await ngsi.patch_attr(ent["id"], "speed", {"value": 9}, ctype=MERGE_PATCH)
    assert reply.status == 204, reply
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(9)


async def test_partial_update_targets_dataset_instance(ngsi: Ngsi) -> None:
    """5.6.4.4 / 4.5.5: a datasetId in the fragment selects the instance to update; the others are
    untouched (ETSI TP 012_01_02)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId=GPS)])
    await ngsi.create_ok(ent)
    reply = await ngsi.patch_attr(ent["id"], "speed", {"value": 20, "datasetId": GPS})
    assert reply.status == 204, reply
    got = instances((await ngsi.fetch(ent["id"]))["speed"])
    assert {(i.get("datasetId"), i["value"]) for i in got} == {(None, 1), (GPS, 20)}


async def test_partial_update_null_deletes(ngsi: Ngsi) -> None:
    """5.6.4.4 / 5.5.8: a partial update whose value is the NGSI-LD Null deletes the attribute (ETSI TP
    012_05)."""
    ent = entity("Vehicle", speed=prop(1), name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.patch_attr(ent["id"], "speed", {"type": "Property", "value": NULL})
    assert reply.status == 204, reply
    assert set(await ngsi.fetch(ent["id"])) == {"id", "type", "name"}


@pytest.mark.parametrize("case", ["unknown-entity", "unknown-attribute", "unknown-dataset", "no-default-instance"])
async def test_partial_update_not_found(ngsi: Ngsi, case: str) -> None:
    """5.6.4.4: the target entity, attribute and instance (default, or the datasetId given) must exist,
    otherwise ResourceNotFound (ETSI TP 012_03)."""
    ent = entity("Vehicle", speed=prop(1), gpsOnly=prop(5, datasetId=GPS))
    await ngsi.create_ok(ent)
    target, attr, fragment = ent["id"], "speed", {"value": 2}
    if case == "unknown-entity":
        target = uid("Vehicle")
    elif case == "unknown-attribute":
        attr = "isParked2"
    elif case == "unknown-dataset":
        fragment = {"value": 2, "datasetId": RADAR}
    else:
        attr = "gpsOnly"
    problem(await ngsi.patch_attr(target, attr, fragment), 404, "ResourceNotFound")
    if case != "unknown-entity":
        got = await ngsi.fetch(ent["id"])
        assert got["speed"] == prop(1) and got["gpsOnly"]["value"] == 5


@pytest.mark.parametrize("case", [
    "invalid-entity-id",
    "type-change",
    "empty-fragment"])
async def test_partial_update_bad_requests(ngsi: Ngsi, case: str) -> None:
    """5.6.4.4: an entity id that is not a URI, or a fragment changing the attribute type (Property to
    Relationship), is BadRequestData (ETSI TP 012_02); an empty fragment is a 400 error too (the TP sends it
    as ld+json without @context, so it does not pin the type: InvalidRequest or BadRequestData). Nothing is
    written."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    if case == "invalid-entity-id":
        problem(await ngsi.patch_attr("thisisaninvaliduri", "speed", {"value": 2}), 400, "BadRequestData")
    elif case == "type-change":
        problem(await ngsi.patch_attr(ent["id"], "speed", {"type": "Relationship", "object": "urn:ngsi-ld:X:1"}),
                400, "BadRequestData")
    else:
        body = problem(await ngsi.patch_attr(ent["id"], "speed", {}), 400)
        assert body["type"] in (ERRORS + "InvalidRequest", ERRORS + "BadRequestData"), body
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(1)


async def test_scope_cannot_be_partially_updated(ngsi: Ngsi) -> None:
    """5.6.4.4: scope is not an attribute: PATCH .../attrs/scope is BadRequestData (ETSI TP 564_01)."""
    ent = entity("Vehicle", scope="/a")
    await ngsi.create_ok(ent)
    problem(await ngsi.patch_attr(ent["id"], "scope", {"value": "/b"}), 400, "BadRequestData")
    assert (await ngsi.fetch(ent["id"]))["scope"] == "/a"


# ---------------------------------------------------------------------------------------------- replace


async def test_replace_attribute(ngsi: Ngsi) -> None:
    """5.6.19 / 6.7.3.3: Replace Attribute (PUT .../attrs/{attrId}) swaps the whole attribute (members not
    given disappear, the type may change) and keeps its createdAt: 204 (ETSI TP 055_01)."""
    ent = entity("Vehicle", isParked=rel("urn:ngsi-ld:Parking:1", observedAt="2022-03-14T13:00:00.000Z"))
    await ngsi.create_ok(ent)
    before = (await ngsi.fetch(ent["id"], {"options": "sysAttrs"}))["isParked"]
    reply = await ngsi.put_attr(ent["id"], "isParked", prop(False, unitCode="C62"))
    assert reply.status == 204, reply
    after = (await ngsi.fetch(ent["id"], {"options": "sysAttrs"}))["isParked"]
    assert {k: v for k, v in after.items() if k not in ("createdAt", "modifiedAt")} == prop(False, unitCode="C62")
    assert same_instant(after["createdAt"], before["createdAt"])
    assert parse_datetime(after["modifiedAt"]) >= parse_datetime(before["modifiedAt"])


async def test_replace_attribute_dataset_instance(ngsi: Ngsi) -> None:
    """5.6.19.4: a datasetId in the body selects the instance replaced (ETSI TP 055_02)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId=GPS, unitCode="KMH")])
    await ngsi.create_ok(ent)
    reply = await ngsi.put_attr(ent["id"], "speed", prop(3, datasetId=GPS))
    assert reply.status == 204, reply
    got = {i.get("datasetId"): i for i in instances((await ngsi.fetch(ent["id"]))["speed"])}
    assert got[None] == prop(1)
    assert got[GPS] == prop(3, datasetId=GPS)


@pytest.mark.parametrize("case,status", [("invalid-entity-id", 400), ("unknown-entity", 404),
                                         ("invalid-attribute-name", 400), ("unknown-attribute", 404),
                                         ("scope", 400)])
async def test_replace_attribute_errors(ngsi: Ngsi, case: str, status: int) -> None:
    """5.6.19.4: invalid entity id or attribute name, and scope (not an attribute) are BadRequestData; an
    unknown entity or attribute is ResourceNotFound; nothing is written (ETSI TP 055_03)."""
    ent = entity("Vehicle", isParked=rel("urn:ngsi-ld:Parking:1"), scope="/a")
    await ngsi.create_ok(ent)
    target = {"invalid-entity-id": "invalidUri", "unknown-entity": uid("Vehicle")}.get(case, ent["id"])
    attr = {"invalid-attribute-name": "@invalid", "unknown-attribute": "brandName", "scope": "scope"}.get(
        case, "isParked")
    body = {"type": "Property", "value": "/b"} if case == "scope" else rel("urn:ngsi-ld:Parking:2")
    error = "BadRequestData" if status == 400 else "ResourceNotFound"
    problem(await ngsi.put_attr(target, attr, body), status, error)
    got = await ngsi.fetch(ent["id"])
    assert got["isParked"] == rel("urn:ngsi-ld:Parking:1") and got["scope"] == "/a"
    assert "brandName" not in got


# ---------------------------------------------------------------------------------------------- delete


async def test_delete_default_instance(ngsi: Ngsi) -> None:
    """5.6.5.4: without datasetId or deleteAll, Delete Attribute removes the default instance only: 204
    (ETSI TP 013_01_01)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId=GPS)], name=prop("kept"))
    await ngsi.create_ok(ent)
    reply = await ngsi.delete_attr(ent["id"], "speed")
    assert reply.status == 204, reply
    assert reply.body == b""
    got = await ngsi.fetch(ent["id"])
    assert [(i.get("datasetId"), i["value"]) for i in instances(got["speed"])] == [(GPS, 2)]
    assert got["name"] == prop("kept")


async def test_delete_dataset_instance(ngsi: Ngsi) -> None:
    """5.6.5.4: ``datasetId`` removes that instance only (ETSI TP 013_01_02)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId=GPS)])
    await ngsi.create_ok(ent)
    reply = await ngsi.delete_attr(ent["id"], "speed", params={"datasetId": GPS})
    assert reply.status == 204, reply
    got = await ngsi.fetch(ent["id"])
    assert [(i.get("datasetId"), i["value"]) for i in instances(got["speed"])] == [(None, 1)]


async def test_delete_all_instances(ngsi: Ngsi) -> None:
    """5.6.5.4: ``deleteAll=true`` removes every instance of the attribute (ETSI TP 013_01_03)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId=GPS), prop(3, datasetId=RADAR)], name=prop("x"))
    await ngsi.create_ok(ent)
    reply = await ngsi.delete_attr(ent["id"], "speed", params={"deleteAll": "true"})
    assert reply.status == 204, reply
    assert set(await ngsi.fetch(ent["id"])) == {"id", "type", "name"}


async def test_delete_attribute_not_found(ngsi: Ngsi) -> None:
    """5.6.5.4: an unknown entity, an attribute the entity does not have, or a datasetId it does not have
    are ResourceNotFound; an entity id that is not a URI is BadRequestData (ETSI TPs 013_02, 013_03)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    problem(await ngsi.delete_attr(uid("Vehicle"), "speed"), 404, "ResourceNotFound")
    problem(await ngsi.delete_attr(ent["id"], "notFound"), 404, "ResourceNotFound")
    problem(await ngsi.delete_attr(ent["id"], "speed", params={"datasetId": "urn:ngsi-ld:Property:notFound"}),
            404, "ResourceNotFound")
    problem(await ngsi.delete_attr("thisIsAnInvalidURI", "speed"), 400, "BadRequestData")
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(1)

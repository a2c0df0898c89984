"""Batch entity operations: /entityOperations/{create,upsert,update,merge,delete}.

Clauses of ETSI GS CIM 009 v1.8: 5.6.7 Batch Entity Creation, 5.6.8 Batch Entity Upsert, 5.6.9 Batch
Entity Update, 5.6.10 Batch Entity Delete, 5.6.20 Batch Entity Merge, 5.2.16 BatchOperationResult,
5.2.17 BatchEntityError, 6.14 - 6.17 / 6.31 HTTP binding.
"""

from __future__ import annotations

from typing import Any

import pytest

from .ngsi import (
    CORE_CONTEXT, ERRORS, LD_JSON, NULL, entity, instances, Ngsi, problem, prop, rel, uid,
)


def batch_result(body: Any, success: set[str], errors: dict[str, str | None]) -> None:
    """5.2.16 BatchOperationResult: ``success`` is the list of the ids treated, ``errors`` one BatchEntityError
    (5.2.17: entityId + ProblemDetails ``error``) per entity in error; ``errors`` maps an id to the expected
    NGSI-LD error type (or None for any)."""
    assert isinstance(body, dict), body
    assert set(body.get("success", [])) == success, body
    got = body.get("errors", [])
    assert isinstance(got, list), body
    assert {e.get("entityId") for e in got} == set(errors), body
    for e in got:
        err = e.get("error")
        assert isinstance(err, dict) and isinstance(err.get("type"), str) and err["type"].startswith(ERRORS), e
        assert isinstance(err.get("title"), str) and err["title"], e
        expected = errors[e["entityId"]]
        if expected is not None:
            assert err["type"] == ERRORS + expected, e


def buildings(n: int, **attrs: Any) -> list[dict[str, Any]]:
    return [entity("Building", **attrs) for _ in range(n)]


# ---------------------------------------------------------------------------------------------- create


async def test_batch_create(ngsi: Ngsi) -> None:
    """5.6.7 / 6.14.3.1: all entities created: 201 with the array of the created ids (ETSI TP 003_01)."""
    ents = buildings(3, name=prop("b"), locatedAt=rel("urn:ngsi-ld:City:Paris"))
    reply = await ngsi.batch("create", ents)
    assert reply.status == 201, reply
    assert sorted(reply.json) == sorted(e["id"] for e in ents)
    for ent in ents:
        got = await ngsi.fetch(ent["id"])
        assert got["name"] == prop("b") and got["locatedAt"] == rel("urn:ngsi-ld:City:Paris")


async def test_batch_create_partial_success(ngsi: Ngsi) -> None:
    """5.6.7.4 / 6.14.3.1: new, already existing and invalid entities mixed: 207 with a BatchOperationResult
    (success: the created ids; errors: AlreadyExists and BadRequestData per entity); the valid entities ARE
    created, the existing one is untouched, the invalid one is not created (ETSI TP 003_02)."""
    existing = entity("Building", name=prop("original"))
    await ngsi.create_ok(existing)
    new = buildings(2)
    invalid = {"id": uid("Building"), "name": prop("no type")}
    reply = await ngsi.batch("create", [new[0], dict(existing, name=prop("changed")), invalid, new[1]])
    assert reply.status == 207, reply
    batch_result(reply.json, {new[0]["id"], new[1]["id"]},
                 {existing["id"]: "AlreadyExists", invalid["id"]: "BadRequestData"})
    for ent in new:
        await ngsi.fetch(ent["id"])
    assert (await ngsi.fetch(existing["id"]))["name"]["value"] == "original"
    assert (await ngsi.get(invalid["id"])).status == 404


async def test_batch_create_duplicate_ids(ngsi: Ngsi) -> None:
    """5.6.7.4: an id twice in one create batch: the first is created, the second fails (207, ETSI TP
    003_10)."""
    first, second = buildings(2)
    reply = await ngsi.batch("create", [first, second, dict(first, name=prop("again"))])
    assert reply.status == 207, reply
    batch_result(reply.json, {first["id"], second["id"]}, {first["id"]: None})
    assert "name" not in await ngsi.fetch(first["id"])


async def test_batch_create_per_entity_context(ngsi: Ngsi) -> None:
    """5.6.7 / 6.3.5: with application/ld+json each entity carries its own @context, applied to it alone:
    the same term expands differently in each entity (read back without a context, the full IRIs show)."""
    a = entity("Vehicle", speed=prop(1))
    b = entity("Vehicle", speed=prop(2))
    a["@context"] = [{"speed": "https://a.example.org/speed"}, CORE_CONTEXT]
    b["@context"] = [{"speed": "https://b.example.org/speed"}, CORE_CONTEXT]
    reply = await ngsi.batch("create", [a, b], ctype=LD_JSON)
    assert reply.status == 201, reply
    got_a, got_b = await ngsi.fetch(a["id"]), await ngsi.fetch(b["id"])
    assert got_a["https://a.example.org/speed"]["value"] == 1 and "https://b.example.org/speed" not in got_a
    assert got_b["https://b.example.org/speed"]["value"] == 2 and "https://a.example.org/speed" not in got_b


async def test_batch_create_ld_json_entity_without_context(ngsi: Ngsi) -> None:
    """6.3.5 / 5.6.7.4: with application/ld+json, an entity without @context is BadRequestData for that entity
    (207), the others are created (ETSI TP 003_08)."""
    good = entity("Building")
    good["@context"] = CORE_CONTEXT
    bad = entity("Building")
    reply = await ngsi.batch("create", [good, bad], ctype=LD_JSON)
    assert reply.status == 207, reply
    batch_result(reply.json, {good["id"]}, {bad["id"]: "BadRequestData"})
    assert (await ngsi.get(bad["id"])).status == 404


async def test_batch_create_json_entity_with_context(ngsi: Ngsi) -> None:
    """6.3.5 / 5.6.7.4: with application/json, an entity carrying @context is BadRequestData for that entity
    (207, ETSI TP 003_06)."""
    good, bad = buildings(2)
    bad["@context"] = CORE_CONTEXT
    reply = await ngsi.batch("create", [good, bad])
    assert reply.status == 207, reply
    batch_result(reply.json, {good["id"]}, {bad["id"]: "BadRequestData"})
    assert (await ngsi.get(bad["id"])).status == 404


async def test_batch_create_ld_json_with_link_header(ngsi: Ngsi) -> None:
    """6.3.5: application/ld+json together with a JSON-LD Link header is BadRequestData for the whole request
    (ETSI TP 003_09)."""
    ent = entity("Building")
    ent["@context"] = CORE_CONTEXT
    problem(await ngsi.batch("create", [ent], ctype=LD_JSON, link=CORE_CONTEXT), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
async def test_batch_malformed_json_is_invalid_request(ngsi: Ngsi, operation: str) -> None:
    """6.3.2: a body that is not valid JSON is InvalidRequest (ETSI TPs 003_03_01, 004_06_01, 005_04_01,
    006_03_01, 057_03)."""
    reply = await ngsi.request("POST", f"/entityOperations/{operation}", data=b'[{"id": "urn:a:b",, }]',
                               ctype="application/json")
    problem(reply, 400, "InvalidRequest")


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
@pytest.mark.parametrize("payload", [{}, "urn:ngsi-ld:Building:1", 42], ids=["object", "string", "number"])
async def test_batch_body_not_an_array_is_400(ngsi: Ngsi, operation: str, payload: Any) -> None:
    """5.6.7 - 5.6.10, 5.6.20 / 6.14 - 6.17: the batch payload is a JSON array; anything else is rejected
    with 400 (InvalidRequest or BadRequestData: the spec does not say which)."""
    reply = await ngsi.batch(operation, payload)
    body = problem(reply, 400)
    assert body["type"] in (ERRORS + "InvalidRequest", ERRORS + "BadRequestData"), reply


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "merge", "delete"])
async def test_batch_empty_array_is_400(ngsi: Ngsi, operation: str) -> None:
    """5.6.7.4 / 5.6.20.4: an empty batch is BadRequestData (ETSI TPs 003_03_02, 006_03_02, 567_01,
    5620_01_02)."""
    problem(await ngsi.batch(operation, []), 400, "BadRequestData")


async def test_batch_null_item_fails_whole_request(ngsi: Ngsi) -> None:
    """5.6.7.4 / 5.5.4: a null item in the array is BadRequestData for the whole request; its valid sibling is
    not created (ETSI TP 567_01)."""
    ent = entity("Vehicle")
    problem(await ngsi.batch("create", [ent, None]), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_batch_create_1000_entities(ngsi: Ngsi) -> None:
    """5.6.7: a batch of 1,000 entities is created in one request (201, all ids returned); batch delete then
    removes them all (204)."""
    ents = [entity("Sensor", temperature=prop(i, unitCode="CEL"), index=prop(i)) for i in range(1000)]
    reply = await ngsi.batch("create", ents)
    assert reply.status == 201, reply
    ids = [e["id"] for e in ents]
    assert sorted(reply.json) == sorted(ids)
    for i in (0, 499, 999):
        assert (await ngsi.fetch(ids[i]))["index"]["value"] == i
    reply = await ngsi.batch("delete", ids)
    assert reply.status == 204, reply
    for i in (0, 999):
        assert (await ngsi.get(ids[i])).status == 404


# ---------------------------------------------------------------------------------------------- upsert


async def test_batch_upsert_new_entities(ngsi: Ngsi) -> None:
    """5.6.8 / 6.15.3.1: upserting entities that do not exist creates them: 201 with their ids (ETSI TP
    004_01)."""
    ents = buildings(2, name=prop("x"))
    reply = await ngsi.batch("upsert", ents)
    assert reply.status == 201, reply
    assert sorted(reply.json) == sorted(e["id"] for e in ents)
    for ent in ents:
        assert (await ngsi.fetch(ent["id"]))["name"] == prop("x")


@pytest.mark.parametrize("params", [None, {"options": "replace"}], ids=["default", "options-replace"])
async def test_batch_upsert_existing_replaces(ngsi: Ngsi, params: dict[str, str] | None) -> None:
    """5.6.8.4: by default (and with options=replace) upsert replaces existing entities (attributes not in the
    body are gone); when nothing was created the answer is 204 (ETSI TP 004_03)."""
    ent = entity("Building", name=prop("old"), height=prop(10))
    await ngsi.create_ok(ent)
    reply = await ngsi.batch("upsert", [{"id": ent["id"], "type": "Building", "color": prop("red")}],
                             params=params)
    assert reply.status == 204, reply
    assert reply.body == b""
    got = await ngsi.fetch(ent["id"])
    assert set(got) == {"id", "type", "color"}, got


async def test_batch_upsert_update_option_merges(ngsi: Ngsi) -> None:
    """5.6.8.4: with options=update existing entities are updated instead (attributes not in the body stay);
    a mix of new and existing entities answers 201 with the ids of the created ones only (ETSI TP 004_04)."""
    existing = entity("Building", name=prop("old"), height=prop(10))
    await ngsi.create_ok(existing)
    new = entity("Building", name=prop("new"))
    reply = await ngsi.batch("upsert", [new, {"id": existing["id"], "type": "Building", "name": prop("updated")}],
                             params={"options": "update"})
    assert reply.status == 201, reply
    assert reply.json == [new["id"]]
    got = await ngsi.fetch(existing["id"])
    assert got["name"] == prop("updated") and got["height"] == prop(10)
    assert (await ngsi.fetch(new["id"]))["name"] == prop("new")


async def test_batch_upsert_mixed_returns_created_ids(ngsi: Ngsi) -> None:
    """5.6.8.4 / 6.15.3.1: new and existing entities mixed (default replace): 201 with the ids of the created
    entities only (ETSI TP 004_02)."""
    existing = entity("Building", name=prop("old"))
    await ngsi.create_ok(existing)
    new = entity("Building", name=prop("new"))
    reply = await ngsi.batch("upsert", [existing | {"name": prop("replaced")}, new])
    assert reply.status == 201, reply
    assert reply.json == [new["id"]]
    assert (await ngsi.fetch(existing["id"]))["name"] == prop("replaced")


async def test_batch_upsert_invalid_entity(ngsi: Ngsi) -> None:
    """5.6.8.4: an invalid entity in an upsert batch is reported in errors (207); the valid ones are upserted
    (ETSI TP 004_05)."""
    good = buildings(2)
    invalid = {"id": uid("Building")}
    reply = await ngsi.batch("upsert", [good[0], good[1], invalid])
    assert reply.status == 207, reply
    batch_result(reply.json, {good[0]["id"], good[1]["id"]}, {invalid["id"]: "BadRequestData"})
    for ent in good:
        await ngsi.fetch(ent["id"])
    assert (await ngsi.get(invalid["id"])).status == 404


async def test_batch_upsert_duplicate_id_last_wins(ngsi: Ngsi) -> None:
    """5.6.8.4 / 4.6.6: the same id twice in an upsert: the later entity determines the final state (replace
    semantics: attributes only in the first do not linger; ETSI TP 466_01)."""
    ent_id = uid("Vehicle")
    first = {"id": ent_id, "type": "Vehicle", "speed": prop(1), "old": prop(True)}
    second = {"id": ent_id, "type": "Vehicle", "speed": prop(2)}
    reply = await ngsi.batch("upsert", [first, second])
    assert reply.status in (201, 204), reply
    got = await ngsi.fetch(ent_id)
    assert got["speed"] == prop(2) and "old" not in got


async def test_batch_upsert_trailing_slash(ngsi: Ngsi) -> None:
    """Table 6.2-1 writes the resource /entityOperations/upsert/: the trailing slash is accepted."""
    ent = entity("Building")
    reply = await ngsi.request("POST", "/entityOperations/upsert/", body=[ent])
    assert reply.status == 201, reply
    await ngsi.fetch(ent["id"])


# ---------------------------------------------------------------------------------------------- update


async def test_batch_update(ngsi: Ngsi) -> None:
    """5.6.9 / 6.16.3.1: batch update appends/overwrites attributes of existing entities: 204 (ETSI TP
    005_01)."""
    ents = buildings(2, name=prop("old"), height=prop(10))
    for ent in ents:
        await ngsi.create_ok(ent)
    reply = await ngsi.batch("update", [{"id": e["id"], "type": "Building", "name": prop("new"),
                                         "locatedAt": rel("urn:ngsi-ld:City:Paris")} for e in ents])
    assert reply.status == 204, reply
    for ent in ents:
        got = await ngsi.fetch(ent["id"])
        assert got["name"] == prop("new") and got["height"] == prop(10)
        assert got["locatedAt"] == rel("urn:ngsi-ld:City:Paris")


async def test_batch_update_unknown_entity(ngsi: Ngsi) -> None:
    """5.6.9.4: an entity that does not exist is an error of the batch (207; it is not created), the others
    are updated (ETSI TP 005_03)."""
    existing = entity("Building", name=prop("old"))
    await ngsi.create_ok(existing)
    missing = entity("Building", name=prop("ghost"))
    reply = await ngsi.batch("update", [existing | {"name": prop("new")}, missing])
    assert reply.status == 207, reply
    batch_result(reply.json, {existing["id"]}, {missing["id"]: "ResourceNotFound"})
    assert (await ngsi.fetch(existing["id"]))["name"] == prop("new")
    assert (await ngsi.get(missing["id"])).status == 404


async def test_batch_update_no_overwrite(ngsi: Ngsi) -> None:
    """5.6.9.4: with options=noOverwrite existing attributes keep their values and only new attributes are
    added; entities where an attribute was not overwritten are reported (207), entities that only gained
    new attributes are not (204) (ETSI TP 005_02)."""
    ent = entity("Building", name=prop("old"))
    await ngsi.create_ok(ent)
    reply = await ngsi.batch("update", [{"id": ent["id"], "type": "Building", "color": prop("red")}],
                             params={"options": "noOverwrite"})
    assert reply.status == 204, reply
    reply = await ngsi.batch("update", [{"id": ent["id"], "type": "Building", "name": prop("new"),
                                         "height": prop(3)}], params={"options": "noOverwrite"})
    assert reply.status == 207, reply
    got = await ngsi.fetch(ent["id"])
    assert got["name"] == prop("old") and got["color"] == prop("red") and got["height"] == prop(3)


# ---------------------------------------------------------------------------------------------- merge


async def test_batch_merge(ngsi: Ngsi) -> None:
    """5.6.20 / 6.31.3.1: batch merge applies Merge Entity (5.6.17) to each: given members replaced, others
    kept, the NGSI-LD Null deletes: 204 with no body (ETSI TPs 057_01, 5620_01_03)."""
    ents = buildings(2, airQualityLevel=prop(4, unitCode="C62"), subCategory=prop("tourism"), name=prop("n"))
    for ent in ents:
        await ngsi.create_ok(ent)
    reply = await ngsi.batch("merge", [{"id": e["id"], "type": "Building", "airQualityLevel": prop(1),
                                        "subCategory": NULL} for e in ents])
    assert reply.status == 204, reply
    assert reply.body == b""
    for ent in ents:
        got = await ngsi.fetch(ent["id"])
        assert got["airQualityLevel"] == prop(1, unitCode="C62")
        assert "subCategory" not in got and got["name"] == prop("n")


async def test_batch_merge_unknown_entity(ngsi: Ngsi) -> None:
    """5.6.20.4: merging into an entity that does not exist is an error of the batch (207), the existing ones
    are merged (ETSI TP 057_02)."""
    existing = entity("Building", name=prop("old"))
    await ngsi.create_ok(existing)
    missing = entity("Building", name=prop("ghost"))
    reply = await ngsi.batch("merge", [existing | {"name": prop("new")}, missing])
    assert reply.status == 207, reply
    batch_result(reply.json, {existing["id"]}, {missing["id"]: "ResourceNotFound"})
    assert (await ngsi.fetch(existing["id"]))["name"] == prop("new")
    assert (await ngsi.get(missing["id"])).status == 404


# ---------------------------------------------------------------------------------------------- delete


async def test_batch_delete(ngsi: Ngsi) -> None:
    """5.6.10 / 6.17.3.1: batch delete takes an array of ids: 204 with no body, the entities are gone (ETSI TP
    006_01)."""
    ents = buildings(2)
    for ent in ents:
        await ngsi.create_ok(ent)
    reply = await ngsi.batch("delete", [e["id"] for e in ents])
    assert reply.status == 204, reply
    assert reply.body == b""
    for ent in ents:
        assert (await ngsi.get(ent["id"])).status == 404


async def test_batch_delete_unknown_ids(ngsi: Ngsi) -> None:
    """5.6.10.4: unknown ids are errors of the batch (207, ResourceNotFound), the known ones are deleted
    (ETSI TP 006_02)."""
    existing = entity("Building")
    await ngsi.create_ok(existing)
    unknown = uid("Building")
    reply = await ngsi.batch("delete", [existing["id"], unknown])
    assert reply.status == 207, reply
    batch_result(reply.json, {existing["id"]}, {unknown: "ResourceNotFound"})
    assert (await ngsi.get(existing["id"])).status == 404


async def test_batch_delete_same_id_twice(ngsi: Ngsi) -> None:
    """5.6.10.4: the same id twice: deleted once, the second is an error (207, ETSI TP 006_04)."""
    ent = entity("Building")
    await ngsi.create_ok(ent)
    reply = await ngsi.batch("delete", [ent["id"], ent["id"]])
    assert reply.status == 207, reply
    body = reply.json
    assert body["success"] == [ent["id"]] and [e["entityId"] for e in body["errors"]] == [ent["id"]], body


async def test_batch_delete_invalid_id(ngsi: Ngsi) -> None:
    """5.6.10.4: an item that is not a URI is BadRequestData: either for that item (207, the valid ids are
    deleted) or for the whole request (400, nothing deleted) - the clause allows both readings, but the
    outcome must be consistent with the answer."""
    ent = entity("Building")
    await ngsi.create_ok(ent)
    reply = await ngsi.batch("delete", [ent["id"], "thisisaninvaliduri"])
    if reply.status == 207:
        batch_result(reply.json, {ent["id"]}, {"thisisaninvaliduri": "BadRequestData"})
        assert (await ngsi.get(ent["id"])).status == 404
    else:
        problem(reply, 400, "BadRequestData")
        await ngsi.fetch(ent["id"])


async def test_batch_keeps_multi_instance_attributes(ngsi: Ngsi) -> None:
    """5.6.7 / 4.5.5: entities created in a batch keep multi-instance attributes (datasetId)."""
    ent = entity("Vehicle", speed=[prop(1), prop(2, datasetId="urn:ngsi-ld:Dataset:gps")])
    reply = await ngsi.batch("create", [ent])
    assert reply.status == 201, reply
    got = instances((await ngsi.fetch(ent["id"]))["speed"])
    assert {(i.get("datasetId"), i["value"]) for i in got} == {(None, 1), ("urn:ngsi-ld:Dataset:gps", 2)}

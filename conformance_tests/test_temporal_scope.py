"""The scope's temporal evolution (GS CIM 009 4.5.6, 4.18, 5.7.4.4 S4): a Property whose instances are the
entity's successive scopes, recorded by core API changes (observedAt = the change's modifiedAt) or written
in the temporal representation, and scopeQ evaluated over the scopes valid in a query's time window."""

from __future__ import annotations

from typing import Any

from .ngsi import Ngsi, entity, prop, uid

T = "/temporal/entities"
WINDOW = {"timerel": "between", "timeAt": "2026-03-01T12:00:00Z", "endTimeAt": "2026-03-01T13:00:00Z"}


async def temporal(ngsi: Ngsi, entity_id: str, **params: Any) -> Any:
    reply = await ngsi.request("GET", f"{T}/{ngsi.quote_id(entity_id)}", params=params)
    assert reply.status == 200, reply
    return reply.json


async def test_core_scope_changes_are_instances(ngsi: Ngsi) -> None:
    """4.5.6: after a Core API change the scope is an array of Property instances whose observedAt copies
    modifiedAt, with no other sub-property."""
    ent = entity("Vehicle", scope="/Old", speed=prop(1))
    await ngsi.create_ok(ent)
    merged = await ngsi.request("PATCH", ngsi.entity_path(ent["id"]), body={"scope": "/New"})
    assert merged.status == 204, merged
    body = await temporal(ngsi, ent["id"], options="sysAttrs")
    assert [i["value"] for i in body["scope"]] == [["/Old"], ["/New"]]
    for inst in body["scope"]:
        assert inst["type"] == "Property" and inst["observedAt"] == inst["modifiedAt"]
        assert set(inst) <= {"type", "value", "instanceId", "createdAt", "modifiedAt", "observedAt"}
    assert (await ngsi.fetch(ent["id"]))["scope"] == "/New"
    picked = await temporal(ngsi, ent["id"], pick="id,scope")
    assert set(picked) == {"id", "scope"} and len(picked["scope"]) == 2
    assert "scope" not in await temporal(ngsi, ent["id"], omit="scope")


async def test_removed_scope_is_an_empty_deleted_instance(ngsi: Ngsi) -> None:
    """ETSI 020_19 / 020_20: DELETE …/attrs/scope leaves a deletion instance whose value is []."""
    ent = entity("Vehicle", scope=["/A", "/B"], speed=prop(1))
    await ngsi.create_ok(ent)
    assert (await ngsi.delete_attr(ent["id"], "scope")).status == 204
    body = await temporal(ngsi, ent["id"], timeproperty="deletedAt")
    assert [(i["value"], "deletedAt" in i) for i in body["scope"]] == [([], True)]
    assert "speed" not in body
    simple = await temporal(ngsi, ent["id"], timeproperty="deletedAt", options="temporalValues")
    assert simple["scope"]["type"] == "Property"
    assert [pair[0] for pair in simple["scope"]["values"]] == [[]]


async def scoped(ngsi: Ngsi, kind: str, scope_q: str) -> list[str]:
    reply = await ngsi.request("GET", T, params={"type": kind, "scopeQ": scope_q, **WINDOW})
    assert reply.status == 200, reply
    return sorted(e["id"] for e in reply.json)


async def test_scope_query_over_the_window(ngsi: Ngsi) -> None:
    """A scope counts from its observedAt until the next one: set before the window and never replaced
    (ab), replaced inside it (rep: both scopes), set after it (late: never), no scope at all (bare)."""
    kind = "Car" + uid("x")[-8:]

    def car(name: str, scopes: list[tuple[Any, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"id": f"urn:ngsi-ld:{kind}:{name}", "type": kind,
                                "speed": [prop(1, observedAt="2026-03-01T12:05:00Z")]}
        if scopes:
            body["scope"] = [{"type": "Property", "value": v, "observedAt": at} for v, at in scopes]
        return body

    cars = [car("ab", [("/A/B", "2026-03-01T10:00:00Z")]), car("bare", []),
            car("rep", [("/R", "2026-03-01T10:00:00Z"), ("/S", "2026-03-01T12:30:00Z")]),
            car("late", [("/Z", "2026-03-01T14:00:00Z")]), car("both", [(["/A/B", "/C"], "2026-03-01T10:00:00Z")])]
    for body in cars:
        reply = await ngsi.request("POST", T, body=body)
        assert reply.status == 201, reply
    ids = {body["id"].rsplit(":", 1)[1]: body["id"] for body in cars}
    assert await scoped(ngsi, kind, "/A/B") == sorted([ids["ab"], ids["both"]])
    assert await scoped(ngsi, kind, "/R") == [ids["rep"]]
    assert await scoped(ngsi, kind, "/S") == [ids["rep"]]
    assert await scoped(ngsi, kind, "/Z") == []
    assert await scoped(ngsi, kind, "/#") == sorted([ids["ab"], ids["both"], ids["rep"]])
    assert await scoped(ngsi, kind, "/A/B;/C") == [ids["both"]]
    assert (await ngsi.fetch(ids["rep"]))["scope"] == "/S"  # the entity's scope is the one observed last


async def test_entity_scope_is_the_last_given_of_equally_observed(ngsi: Ngsi) -> None:
    """The entity's scope after a temporal write is the scope observed last; of instances observed at the
    same moment (or without observedAt) the last one given, as for every other attribute."""
    for scopes, observed in ((["/A", "/B"], None), (["/C", "/D"], "2026-03-01T12:00:00Z")):
        stamp = {"observedAt": observed} if observed else {}
        body = {"id": uid("Car"), "type": "Car", "speed": [prop(1, **stamp), prop(2, **stamp)],
                "scope": [{"type": "Property", "value": s, **stamp} for s in scopes]}
        reply = await ngsi.request("POST", T, body=body)
        assert reply.status == 201, reply
        current = await ngsi.fetch(body["id"])
        assert current["scope"] == scopes[-1]
        assert current["speed"]["value"] == 2


async def test_bad_temporal_scope_instances(ngsi: Ngsi) -> None:
    for scope in ([{"type": "Property"}], [{"type": "Relationship", "object": "urn:x:1"}],
                  [{"type": "Property", "value": "/A", "unitCode": "X"}], [{"type": "Property", "value": 3}]):
        reply = await ngsi.request("POST", T, body={"id": uid("Car"), "type": "Car", "scope": scope})
        assert reply.status == 400 and reply.json["type"].endswith("BadRequestData"), reply

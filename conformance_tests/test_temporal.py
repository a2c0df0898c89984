"""Temporal API: history recorded by the core API, temporal writes, windows, lastN, representations,
aggregation and instance paging.

Clauses of ETSI GS CIM 009 v1.8: 4.5.7-4.5.9 temporal representations, 5.6.11-5.6.16 temporal provision,
5.7.3 / 5.7.4 temporal consumption, 6.3.10 instance paging (206 + Content-Range).
"""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest

from .ngsi import NULL, Ngsi, entity, problem, prop, uid

T = "/temporal/entities"


def observed(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return prop(value, observedAt=at, **extra)


def series(values: list[float], start_hour: int = 0, day: str = "2021-03-01") -> list[dict[str, Any]]:
    """Instances one minute apart from ``day``T``start_hour``:00."""
    return [observed(v, f"{day}T{start_hour + i // 60:02d}:{i % 60:02d}:00Z") for i, v in enumerate(values)]


async def create_temporal(ngsi: Ngsi, body: dict[str, Any], status: int = 201) -> str:
    reply = await ngsi.request("POST", T, body=body)
    assert reply.status == status, reply
    return body["id"]


async def temporal(ngsi: Ngsi, entity_id: str, status: int = 200, **params: Any) -> Any:
    reply = await ngsi.request("GET", f"{T}/{ngsi.quote_id(entity_id)}", params=params)
    assert reply.status == status, reply
    return reply


async def test_core_writes_are_recorded(ngsi: Ngsi) -> None:
    """Every core API change is an instance of the history, with an instanceId; untouched datasetIds are
    not recorded again."""
    ent = entity("Sensor", temperature=observed(20, "2021-01-01T00:00:00Z"),
                 humidity=[prop(50), prop(51, datasetId="urn:ngsi-ld:Dataset:b")])
    await ngsi.create_ok(ent)
    assert (await ngsi.patch_attr(ent["id"], "temperature", observed(21, "2021-01-01T00:01:00Z"))).status == 204
    reply = await ngsi.request("PATCH", ngsi.entity_path(ent["id"]) + "/attrs/humidity",
                               body={"value": 52, "datasetId": "urn:ngsi-ld:Dataset:b"})
    assert reply.status == 204, reply
    body = (await temporal(ngsi, ent["id"])).json
    assert [i["value"] for i in body["temperature"]] == [20, 21]
    assert sorted(i["value"] for i in body["humidity"]) == [50, 51, 52]
    ids = [i["instanceId"] for attr in ("temperature", "humidity") for i in body[attr]]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:ngsi-ld:") for i in ids)


async def test_batch_writes_are_recorded(ngsi: Ngsi) -> None:
    a, b = entity("Meter", power=prop(1)), entity("Meter", power=prop(2))
    assert (await ngsi.batch("create", [a, b])).status == 201
    update = [{"id": a["id"], "type": "Meter", "power": prop(3)}]
    assert (await ngsi.batch("update", update)).status == 204
    assert [i["value"] for i in (await temporal(ngsi, a["id"])).json["power"]] == [1, 3]
    assert [i["value"] for i in (await temporal(ngsi, b["id"])).json["power"]] == [2]


async def test_entity_delete_takes_its_history(ngsi: Ngsi) -> None:
    """The default (ETSI's expectation): deleting an entity deletes its temporal evolution."""
    ent = entity("Sensor", temperature=prop(1))
    await ngsi.create_ok(ent)
    assert (await ngsi.delete(ent["id"])).status == 204
    problem(await temporal(ngsi, ent["id"], status=404), 404, "ResourceNotFound")


async def test_attribute_deletion_is_a_deleted_at_instance(ngsi: Ngsi) -> None:
    ent = entity("Sensor", temperature=prop(1), name={"type": "LanguageProperty", "languageMap": {"en": "x"}})
    await ngsi.create_ok(ent)
    assert (await ngsi.delete_attr(ent["id"], "temperature")).status == 204
    assert (await ngsi.delete_attr(ent["id"], "name")).status == 204
    body = (await temporal(ngsi, ent["id"], timeproperty="deletedAt")).json
    assert body["temperature"][0]["value"] == NULL and "deletedAt" in body["temperature"][0]
    assert body["name"][0]["languageMap"] == {"@none": NULL}
    normal = (await temporal(ngsi, ent["id"])).json
    assert [i["value"] for i in normal["temperature"]] == [1]  # markers only under deletedAt


async def test_create_temporal_entity_and_window(ngsi: Ngsi) -> None:
    """5.6.11 then 5.7.3: timerel between / before / after on observedAt; the entity is visible to the core
    API with its latest observation."""
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series([10, 20, 30, 40])}
    await create_temporal(ngsi, ent)
    current = await ngsi.fetch(ent["id"])
    assert current["speed"]["value"] == 40
    between = (await temporal(ngsi, ent["id"], timerel="between", timeAt="2021-03-01T00:01:00Z",
                              endTimeAt="2021-03-01T00:03:00Z")).json
    assert [i["value"] for i in between["speed"]] == [20, 30]
    before = (await temporal(ngsi, ent["id"], timerel="before", timeAt="2021-03-01T00:02:00Z")).json
    assert [i["value"] for i in before["speed"]] == [10, 20]
    after = (await temporal(ngsi, ent["id"], timerel="after", timeAt="2021-03-01T00:02:00Z")).json
    assert [i["value"] for i in after["speed"]] == [30, 40]  # after includes timeAt, before excludes it
    again = {"id": ent["id"], "type": "Vehicle", "speed": [observed(11, "2021-03-01T00:00:00Z")]}
    await create_temporal(ngsi, again, status=204)  # the same observation again replaces it
    assert [i["value"] for i in (await temporal(ngsi, ent["id"])).json["speed"]] == [11, 20, 30, 40]


async def test_last_n_and_temporal_values(ngsi: Ngsi) -> None:
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series([1, 2, 3, 4, 5]),
           "parked": [{"type": "Relationship", "object": "urn:ngsi-ld:Lot:1", "observedAt": "2021-03-01T00:00:00Z"}]}
    await create_temporal(ngsi, ent)
    last = (await temporal(ngsi, ent["id"], lastN=2)).json
    assert [i["value"] for i in last["speed"]] == [4, 5]
    simple = (await temporal(ngsi, ent["id"], options="temporalValues")).json
    assert simple["speed"]["type"] == "Property"
    assert simple["speed"]["values"][0] == [1, "2021-03-01T00:00:00Z"]
    assert simple["parked"]["objects"] == [["urn:ngsi-ld:Lot:1", "2021-03-01T00:00:00Z"]]


async def test_instance_paging_cuts_all_attributes_at_one_moment(ngsi: Ngsi) -> None:
    """6.3.10: more instances than the limit (30 by default) -> 206 with Content-Range; every attribute is cut
    at the same moment."""
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series(list(range(25))),
           "fuel": series(list(range(25)))}
    await create_temporal(ngsi, ent)
    reply = await temporal(ngsi, ent["id"], status=206)
    body = reply.json
    assert len(body["speed"]) + len(body["fuel"]) == 30
    assert body["speed"][-1]["observedAt"] == body["fuel"][-1]["observedAt"]
    match = re.fullmatch(r"date-time (\S+?Z)-(\S+Z)/\*", reply.headers["Content-Range"])
    assert match and match.group(2) == body["speed"][-1]["observedAt"], reply.headers["Content-Range"]
    small = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series(list(range(20)))}
    await create_temporal(ngsi, small)
    await temporal(ngsi, small["id"], status=200)


@pytest.mark.parametrize("period", ["PT1H", "PT30M", ""])
async def test_aggregation_matches_python(ngsi: Ngsi, period: str) -> None:
    """All eight methods computed in the database equal a plain computation over the same instances."""
    values = [float((i * 37) % 11) for i in range(120)]  # two hours, one a minute
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series(values)}
    await create_temporal(ngsi, ent)
    params = {"options": "aggregatedValues",
              "aggrMethods": "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"}
    if period:
        params["aggrPeriodDuration"] = period
    body = (await temporal(ngsi, ent["id"], **params)).json["speed"]
    size = {"PT1H": 60, "PT30M": 30, "": 120}[period]
    chunks = [values[k:k + size] for k in range(0, len(values), size)]
    assert [p[0] for p in body["totalCount"]] == [len(c) for c in chunks]
    assert [p[0] for p in body["distinctCount"]] == [len(set(c)) for c in chunks]
    for method, fn in (("sum", sum), ("avg", statistics.fmean), ("min", min), ("max", max),
                       ("stddev", statistics.pstdev), ("sumsq", lambda c: sum(v * v for v in c))):
        assert [p[0] for p in body[method]] == pytest.approx([fn(c) for c in chunks]), method
    assert body["avg"][0][1] == "2021-03-01T00:00:00Z"


async def test_query_temporal_entities(ngsi: Ngsi) -> None:
    kind = "Bus" + uid("x")[-8:]
    first = {"id": uid(kind), "type": kind, "speed": series([1, 2])}
    second = {"id": uid(kind), "type": kind, "speed": series([3], day="2022-01-01")}
    await create_temporal(ngsi, first)
    await create_temporal(ngsi, second)
    reply = await ngsi.request("GET", T, params={"type": kind, "timerel": "before", "timeAt": "2021-12-01T00:00:00Z"})
    assert reply.status == 200, reply
    assert [e["id"] for e in reply.json] == [first["id"]]
    post = await ngsi.request("POST", "/temporal/entityOperations/query", body={
        "type": "Query", "entities": [{"type": kind}], "attrs": ["speed"],
        "temporalQ": {"timerel": "after", "timeAt": "2021-12-01T00:00:00Z"}})
    assert post.status == 200, post
    assert [e["id"] for e in post.json] == [second["id"]]
    assert [i["value"] for i in post.json[0]["speed"]] == [3]


async def test_temporal_attribute_and_instance_writes(ngsi: Ngsi) -> None:
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series([1, 2]), "fuel": series([9])}
    await create_temporal(ngsi, ent)
    path = f"{T}/{ngsi.quote_id(ent['id'])}"
    added = await ngsi.request("POST", path + "/attrs", body={"speed": [observed(3, "2021-03-01T00:05:00Z")]})
    assert added.status == 204, added
    first = (await temporal(ngsi, ent["id"])).json["speed"][0]
    patched = await ngsi.request("PATCH", f"{path}/attrs/speed/{first['instanceId']}", body={"value": 100})
    assert patched.status == 204, patched
    body = (await temporal(ngsi, ent["id"])).json
    assert [i["value"] for i in body["speed"]] == [100, 2, 3]
    assert body["speed"][0]["instanceId"] == first["instanceId"]
    gone = await ngsi.request("DELETE", f"{path}/attrs/speed/{first['instanceId']}")
    assert gone.status == 204, gone
    problem(await ngsi.request("DELETE", f"{path}/attrs/speed/{first['instanceId']}"), 404, "ResourceNotFound")
    assert (await ngsi.request("DELETE", f"{path}/attrs/fuel")).status == 204
    body = (await temporal(ngsi, ent["id"])).json
    assert "fuel" not in body and [i["value"] for i in body["speed"]] == [2, 3]
    assert (await ngsi.request("DELETE", path)).status == 204
    problem(await temporal(ngsi, ent["id"], status=404), 404, "ResourceNotFound")


@pytest.mark.parametrize("params", [
    {"timerel": "during", "timeAt": "2021-01-01T00:00:00Z"},
    {"timerel": "before"},
    {"timerel": "between", "timeAt": "2021-01-01T00:00:00Z"},
    {"timerel": "after", "timeAt": "yesterday"},
    {"timeproperty": "seenAt"},
    {"lastN": "0"}, {"lastN": "1.5"},
    {"options": "aggregatedValues"},
    {"options": "aggregatedValues", "aggrMethods": "median"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
])
async def test_bad_temporal_parameters(ngsi: Ngsi, params: dict[str, str]) -> None:
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series([1])}
    await create_temporal(ngsi, ent)
    problem(await temporal(ngsi, ent["id"], status=400, **params), 400, "BadRequestData")


async def test_bad_temporal_bodies(ngsi: Ngsi) -> None:
    problem(await ngsi.request("POST", T, body={"type": "Vehicle", "speed": series([1])}), 400)
    problem(await ngsi.request("POST", T, body={"id": uid("V"), "type": "Vehicle", "speed": [{"value": None}]}), 400)
    problem(await ngsi.request("GET", f"{T}/{uid('Nothing')}"), 404, "ResourceNotFound")


async def test_empty_attribute_name_in_instance_path(ngsi: Ngsi) -> None:
    """…/attrs//{instanceId}: DELETE is a bad request (ETSI 017_02_05), PATCH has no such resource (405,
    016_02_06)."""
    ent = {"id": uid("Vehicle"), "type": "Vehicle", "speed": series([1])}
    await create_temporal(ngsi, ent)
    instance = (await temporal(ngsi, ent["id"])).json["speed"][0]["instanceId"]
    path = f"{T}/{ngsi.quote_id(ent['id'])}/attrs//{instance}"
    problem(await ngsi.request("DELETE", path), 400, "BadRequestData")
    assert (await ngsi.request("PATCH", path, body={"value": 2})).status == 405


async def test_temporal_values_of_an_attribute_cut_by_paging(ngsi: Ngsi) -> None:
    """An entity whose instances all fall after the page's cut keeps its attributes, with no values
    (ETSI 021_15_07)."""
    kind = "Van" + uid("x")[-8:]
    early = {"id": uid(kind), "type": kind, "speed": series(list(range(30)), day="2020-01-01")}
    late = {"id": uid(kind), "type": kind, "speed": series([1, 2], day="2020-09-01")}
    await create_temporal(ngsi, early)
    await create_temporal(ngsi, late)
    reply = await ngsi.request("GET", T, params={"type": kind, "options": "temporalValues", "timerel": "after",
                                                 "timeAt": "2019-01-01T00:00:00Z"})
    assert reply.status == 206, reply
    by_id = {e["id"]: e for e in reply.json}
    assert len(by_id[early["id"]]["speed"]["values"]) == 30
    assert by_id[late["id"]]["speed"] == {"type": "Property", "values": []}


async def test_query_body_aggregation_members(ngsi: Ngsi) -> None:
    """aggrMethods in a Query's aggrParams (5.2.44) or temporalQ (5.2.21) ask for aggregated values; a bad
    method or duration there is a bad request naming the member."""
    kind = "Tram" + uid("x")[-8:]
    await create_temporal(ngsi, {"id": uid(kind), "type": kind, "speed": series([1, 2, 3])})
    query = {"type": "Query", "entities": [{"type": kind}],
             "temporalQ": {"timerel": "after", "timeAt": "2021-01-01T00:00:00Z"}}
    for extra in ({"aggrParams": {"aggrMethods": ["avg"], "aggrPeriodDuration": "PT0S"}},
                  {"temporalQ": {**query["temporalQ"], "aggrMethods": "avg,max"}}):
        reply = await ngsi.request("POST", "/temporal/entityOperations/query", body={**query, **extra})
        assert reply.status == 200, reply
        assert reply.json[0]["speed"]["avg"][0][0] == 2.0 and "instanceId" not in str(reply.json)
    for member, bad in (("aggrMethods", ["median"]), ("aggrPeriodDuration", "bogus")):
        params = {"aggrMethods": ["avg"], member: bad}
        reply = await ngsi.request("POST", "/temporal/entityOperations/query",
                                   body={**query, "aggrParams": params})
        problem(reply, 400, "BadRequestData")
        assert member in reply.json["detail"], reply


async def test_object_lists_in_temporal_values_are_bare(ngsi: Ngsi) -> None:
    """4.5.9 Example 7: a ListRelationship's temporalValues pair holds the bare array of URIs."""
    ent = {"id": uid("Bus"), "type": "Bus", "route": {"type": "ListRelationship", "observedAt": "2021-03-01T00:00:00Z",
                                                      "objectList": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]}}
    await create_temporal(ngsi, ent)
    body = (await temporal(ngsi, ent["id"], options="temporalValues")).json
    assert body["route"]["objectLists"] == [[["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"], "2021-03-01T00:00:00Z"]]


async def test_linked_projection_and_bad_csf_are_bad_requests(ngsi: Ngsi) -> None:
    ent = {"id": uid("Building"), "type": "Building", "speed": series([1])}
    await create_temporal(ngsi, ent)
    problem(await ngsi.request("GET", f"{T}/{ngsi.quote_id(ent['id'])}", params={"pick": "owner{name}"}), 400,
            "BadRequestData")
    for params in ({"pick": "owner{name}"}, {"csf": "))bad(("}):
        problem(await ngsi.request("GET", T, params={"type": "Building", **params}), 400, "BadRequestData")

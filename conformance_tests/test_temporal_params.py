"""Every entity selection and projection parameter of the temporal query (GS CIM 009 5.7.3 / 5.7.4), on
one data set: two entities with several attributes, a second datasetId, a LanguageProperty, a GeoProperty
and a gap in the observations. ``q`` and geo-queries select on the entities' current state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .ngsi import Ngsi, prop, uid

T = "/temporal/entities"
B = "urn:ngsi-ld:Dataset:b"


def at(minute: int) -> str:
    return f"2021-03-01T00:{minute:02d}:00Z"


@pytest.fixture
async def fleet(ngsi: Ngsi) -> dict[str, Any]:
    kind = "Coach" + uid("x")[-8:]
    a, b = f"urn:ngsi-ld:{kind}:a", f"urn:ngsi-ld:{kind}:b"
    bodies = [
        {"id": a, "type": kind,
         "speed": [prop(v, observedAt=at(m)) for v, m in ((1, 0), (2, 1), (3, 2), (4, 10))]
         + [prop(v, observedAt=at(m), datasetId=B) for v, m in ((10, 0), (11, 1))],
         "name": [{"type": "LanguageProperty", "languageMap": {"en": "Bus", "fr": "Autobus"}, "observedAt": at(0)}],
         "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [10.0, 50.0]},
                       "observedAt": at(0)}]},
        {"id": b, "type": kind, "speed": [prop(5, observedAt=at(0))],
         "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [20.0, 40.0]},
                       "observedAt": at(0)}]},
    ]
    for body in bodies:
        reply = await ngsi.request("POST", T, body=body)
        assert reply.status == 201, reply
    return {"kind": kind, "a": a, "b": b}


async def query(ngsi: Ngsi, fleet: dict[str, Any], **params: Any) -> Any:
    reply = await ngsi.request("GET", T, params={"type": fleet["kind"], **params})
    assert reply.status == 200, reply
    return reply


def ids(reply: Any) -> list[str]:
    return [e["id"] for e in reply.json]


async def test_q_and_geo_select_on_the_current_state(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    assert ids(await query(ngsi, fleet, q="speed<5")) == [fleet["a"]]  # a's speed is 4 now, b's 5
    near = await query(ngsi, fleet, georel="near;maxDistance==1000", geometry="Point", coordinates="[10,50]")
    assert ids(near) == [fleet["a"]]
    within = await query(ngsi, fleet, georel="within", geometry="Polygon",
                         coordinates="[[[15,35],[25,35],[25,45],[15,45],[15,35]]]")
    assert ids(within) == [fleet["b"]]


async def test_id_id_pattern_and_order(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    assert ids(await query(ngsi, fleet, id=fleet["b"])) == [fleet["b"]]
    assert ids(await query(ngsi, fleet, idPattern=".*:a$")) == [fleet["a"]]
    assert ids(await query(ngsi, fleet, orderBy="id;desc")) == [fleet["b"], fleet["a"]]


async def test_limit_offset_count(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    first = await query(ngsi, fleet, limit=1, count="true")
    assert ids(first) == [fleet["a"]] and first.headers["NGSILD-Results-Count"] == "2"
    assert ids(await query(ngsi, fleet, limit=1, offset=1)) == [fleet["b"]]


async def test_attrs_pick_omit(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    only = (await query(ngsi, fleet, attrs="name")).json
    assert [e["id"] for e in only] == [fleet["a"]] and "speed" not in only[0] and "name" in only[0]
    picked = (await query(ngsi, fleet, id=fleet["a"], pick="id,speed")).json[0]
    assert set(picked) == {"id", "speed"}
    omitted = (await query(ngsi, fleet, id=fleet["a"], omit="speed,location")).json[0]
    assert "speed" not in omitted and "location" not in omitted and "name" in omitted


async def test_attrs_with_an_empty_item_is_rejected(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    """As in the core API: ``attrs=speed,`` or ``attrs=`` is a 400, not a silently shorter list."""
    for attrs in ("speed,", ",speed", ""):
        for path in (T, f"{T}/{ngsi.quote_id(fleet['a'])}"):
            reply = await ngsi.request("GET", path, params={"type": fleet["kind"], "attrs": attrs})
            assert reply.status == 400, (path, attrs, reply)
            assert reply.json["type"].endswith("BadRequestData")


async def test_dataset_id_and_gaps(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    body = (await query(ngsi, fleet, id=fleet["a"], datasetId=B)).json[0]
    assert [(i["value"], i["datasetId"]) for i in body["speed"]] == [(10, B), (11, B)]
    default = (await query(ngsi, fleet, id=fleet["a"], datasetId="@none", attrs="speed")).json[0]
    assert [i["value"] for i in default["speed"]] == [1, 2, 3, 4]
    window = (await query(ngsi, fleet, id=fleet["a"], attrs="speed", timerel="between", timeAt=at(2),
                          endTimeAt=at(11))).json[0]
    assert [i["value"] for i in window["speed"]] == [3, 4]  # nothing observed in the gap 00:03 .. 00:09
    simple = (await query(ngsi, fleet, id=fleet["a"], attrs="speed", options="temporalValues")).json[0]
    by_dataset = {d.get("datasetId"): [v for v, _ in d["values"]] for d in simple["speed"]}
    assert by_dataset == {None: [1, 2, 3, 4], B: [10, 11]}


async def test_lang(ngsi: Ngsi, fleet: dict[str, Any]) -> None:
    name = (await query(ngsi, fleet, id=fleet["a"], attrs="name", lang="fr")).json[0]["name"]
    assert [(i["value"], i.get("lang")) for i in name] == [("Autobus", "fr")]


@pytest.mark.parametrize("timeproperty", ["createdAt", "modifiedAt"])
async def test_system_time_properties(ngsi: Ngsi, fleet: dict[str, Any], timeproperty: str) -> None:
    """Windows on the time the broker recorded the instances: all of them were recorded just now."""
    now = datetime.now(timezone.utc)
    text = "%Y-%m-%dT%H:%M:%SZ"
    recent = (await query(ngsi, fleet, id=fleet["b"], timeproperty=timeproperty, timerel="after",
                          timeAt=(now - timedelta(minutes=5)).strftime(text))).json
    assert [i["value"] for i in recent[0]["speed"]] == [5]
    old = await query(ngsi, fleet, id=fleet["b"], timeproperty=timeproperty, timerel="before",
                      timeAt=(now - timedelta(minutes=5)).strftime(text))
    assert ids(old) == []

"""Subscriptions API (GS CIM 009 5.8.1 - 5.8.5, data types 5.2.12 / 5.2.14 / 5.2.15 / 5.2.22)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ContextServer
from .ngsi import LD_JSON, Ngsi, problem, uid

ENDPOINT = {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}


def subscription(**members: Any) -> dict[str, Any]:
    sub = {"id": uid("Subscription"), "type": "Subscription", "entities": [{"type": "Vehicle"}],
           "notification": {"endpoint": dict(ENDPOINT)}}
    sub.update(members)
    return sub


def path(sub_id: str) -> str:
    return "/subscriptions/" + Ngsi.quote_id(sub_id)


async def create_ok(ngsi: Ngsi, sub: dict[str, Any], **kw: Any) -> str:
    reply = await ngsi.request("POST", "/subscriptions", body=sub, **kw)
    assert reply.status == 201, reply
    return reply.headers["Location"].rsplit("/", 1)[-1]


async def test_create_retrieve_delete(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.8.1 / 5.8.3 / 5.8.5: 201 with Location; terms expanded with the request's @context and compacted
    with the reader's; status and the default notificationTrigger filled in; 404 once deleted."""
    ctx = context_server.context({"Vehicle": "https://example.org/Vehicle", "speed": "https://example.org/speed"})
    sub = subscription(watchedAttributes=["speed"], q="speed>50",
                       notification={"endpoint": dict(ENDPOINT), "attributes": ["speed"], "format": "keyValues"})
    sub["@context"] = [ctx]
    sub_id = await create_ok(ngsi, sub, ctype=LD_JSON)
    assert sub_id == sub["id"]
    got = (await ngsi.request("GET", path(sub_id), link=ctx)).json
    assert got["entities"] == [{"type": "Vehicle"}]
    assert got["watchedAttributes"] == ["speed"] and got["notification"]["attributes"] == ["speed"]
    assert got["status"] == "active" and got["q"] == "speed>50"
    assert got["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    assert "timesSent" not in got["notification"]  # never notified: no counters yet
    assert "isActive" not in got and "@context" not in got
    plain = (await ngsi.request("GET", path(sub_id))).json
    assert plain["entities"] == [{"type": "https://example.org/Vehicle"}]
    assert plain["watchedAttributes"] == ["https://example.org/speed"]
    assert (await ngsi.request("DELETE", path(sub_id))).status == 204
    problem(await ngsi.request("GET", path(sub_id)), 404, "ResourceNotFound")
    problem(await ngsi.request("DELETE", path(sub_id)), 404, "ResourceNotFound")


async def test_generated_id_and_conflict(ngsi: Ngsi) -> None:
    sub = subscription()
    del sub["id"]
    sub_id = await create_ok(ngsi, sub)
    assert sub_id.startswith("urn:ngsi-ld:Subscription:")
    again = subscription(id=sub_id)
    problem(await ngsi.request("POST", "/subscriptions", body=again), 409, "AlreadyExists")


async def test_read_only_and_unknown_members_are_not_kept(ngsi: Ngsi) -> None:
    """5.2.12: status and the notification counters are the broker's; members outside 5.2.12 are dropped."""
    sub = subscription(status="expired", __context="http://x/hijack.jsonld")
    sub["notification"]["timesSent"] = 42
    sub_id = await create_ok(ngsi, sub)
    got = (await ngsi.request("GET", path(sub_id))).json
    assert got["status"] == "active" and got["notification"].get("timesSent", 0) == 0
    assert "__context" not in got


BAD = [
    ("no type", lambda s: s.pop("type")),
    ("wrong type", lambda s: s.update(type="Entity")),
    ("invalid id", lambda s: s.update(id="not a uri")),
    ("no notification", lambda s: s.pop("notification")),
    ("no entities nor watchedAttributes", lambda s: s.pop("entities")),
    ("empty entities", lambda s: s.update(entities=[])),
    ("selector without type", lambda s: s.update(entities=[{"id": "urn:a:b"}])),
    ("bad idPattern", lambda s: s.update(entities=[{"type": "T", "idPattern": "(["}])),
    ("throttling and timeInterval", lambda s: s.update(throttling=5, timeInterval=10)),
    ("negative throttling", lambda s: s.update(throttling=-1)),
    ("timeInterval with watchedAttributes", lambda s: s.update(timeInterval=5, watchedAttributes=["a"])),
    ("bad q", lambda s: s.update(q="a>>1")),
    ("q regex PostgreSQL refuses", lambda s: s.update(q="a~=x{300}")),
    ("bad scopeQ", lambda s: s.update(scopeQ="/a//b")),
    ("bad geoQ", lambda s: s.update(geoQ={"georel": "near", "geometry": "Point", "coordinates": [1, 2]})),
    ("bad csf", lambda s: s.update(csf="((")),
    ("unknown trigger", lambda s: s.update(notificationTrigger=["entityChanged"])),
    ("past expiresAt", lambda s: s.update(expiresAt="2020-01-01T00:00:00Z")),
    ("bad expiresAt", lambda s: s.update(expiresAt="tomorrow")),
    ("isActive not boolean", lambda s: s.update(isActive="yes")),
    ("no endpoint", lambda s: s["notification"].pop("endpoint")),
    ("endpoint uri not a URI", lambda s: s["notification"]["endpoint"].update(uri="nowhere")),
    ("endpoint scheme", lambda s: s["notification"]["endpoint"].update(uri="ftp://x/y")),
    ("endpoint accept", lambda s: s["notification"]["endpoint"].update(accept="text/plain")),
    ("unknown format", lambda s: s["notification"].update(format="compact")),
    ("empty attributes", lambda s: s["notification"].update(attributes=[])),
    ("showChanges with keyValues", lambda s: s["notification"].update(showChanges=True, format="keyValues")),
    ("pick with attributes", lambda s: s["notification"].update(pick=["a"], attributes=["b"])),
    ("same member picked and omitted", lambda s: s["notification"].update(pick=["a"], omit=["a"])),
    ("numeric receiverInfo value",
     lambda s: s["notification"]["endpoint"].update(receiverInfo=[{"key": "k", "value": 1}])),
    ("notifierInfo pair without value",
     lambda s: s["notification"]["endpoint"].update(notifierInfo=[{"key": "k"}])),
]


@pytest.mark.parametrize("name, spoil", BAD, ids=[b[0] for b in BAD])
async def test_invalid_subscriptions_are_bad_request(ngsi: Ngsi, name: str, spoil: Any) -> None:
    sub = subscription()
    spoil(sub)
    problem(await ngsi.request("POST", "/subscriptions", body=sub), 400, "BadRequestData")
    if isinstance(sub.get("id"), str) and sub["id"].startswith("urn:"):
        problem(await ngsi.request("GET", path(sub["id"])), 404)  # nothing half-created


async def test_unavailable_json_ld_context_member(ngsi: Ngsi) -> None:
    sub = subscription(jsonldContext="http://127.0.0.1:1/unavailable.jsonld")
    problem(await ngsi.request("POST", "/subscriptions", body=sub), 504, "LdContextNotAvailable")


async def test_invalid_ids_in_the_path(ngsi: Ngsi) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = {"type": "Subscription"} if method == "PATCH" else None
        problem(await ngsi.request(method, "/subscriptions/not%20a%20uri", body=body), 400, "BadRequestData")
    assert (await ngsi.request("PATCH", "/subscriptions/", body={"type": "Subscription"})).status == 405


async def test_update_merges_and_checks(ngsi: Ngsi) -> None:
    """5.8.2: members replace, notification merges member by member, null removes an optional member and
    is refused on a mandatory one; the result must still be a valid subscription."""
    sub_id = await create_ok(ngsi, subscription(throttling=5, description="first"))
    patch = {"type": "Subscription", "description": None,
             "notification": {"format": "keyValues", "endpoint": {"uri": "http://127.0.0.1:9/other"}}}
    assert (await ngsi.request("PATCH", path(sub_id), body=patch)).status == 204
    got = (await ngsi.request("GET", path(sub_id))).json
    assert "description" not in got and got["throttling"] == 5
    assert got["notification"]["format"] == "keyValues"
    assert got["notification"]["endpoint"]["uri"] == "http://127.0.0.1:9/other"
    for bad in ({"type": "Subscription", "notification": {"endpoint": None}},
                {"type": "Subscription", "timeInterval": 10},
                {"type": "Subscription", "expiresAt": "2020-01-01T00:00:00Z"},
                {"notification": {"format": "keyValues"}}):
        problem(await ngsi.request("PATCH", path(sub_id), body=bad), 400, "BadRequestData")
    assert (await ngsi.request("GET", path(sub_id))).json == got  # unchanged by the refused updates
    problem(await ngsi.request("PATCH", path(uid("Subscription")), body={"type": "Subscription"}), 404)


async def test_status_follows_is_active_and_expires_at(ngsi: Ngsi) -> None:
    sub_id = await create_ok(ngsi, subscription(isActive=False))
    assert (await ngsi.request("GET", path(sub_id))).json["status"] == "paused"
    patch = {"type": "Subscription", "isActive": True, "expiresAt": "2099-01-01T00:00:00Z"}
    assert (await ngsi.request("PATCH", path(sub_id), body=patch)).status == 204
    got = (await ngsi.request("GET", path(sub_id))).json
    assert got["status"] == "active" and got["expiresAt"] == "2099-01-01T00:00:00Z"


async def test_query_pages_and_count(ngsi: Ngsi) -> None:
    tenant = "subs-" + uid("T").rsplit(":", 1)[-1]
    ids = sorted([await create_ok(ngsi, subscription(), tenant=tenant) for _ in range(5)])
    reply = await ngsi.request("GET", "/subscriptions", tenant=tenant, params={"limit": "2", "count": "true"})
    assert reply.status == 200 and reply.headers["NGSILD-Results-Count"] == "5"
    assert [s["id"] for s in reply.json] == ids[:2]
    assert 'rel="next"' in reply.headers["Link"]
    rest = await ngsi.request("GET", "/subscriptions", tenant=tenant, params={"limit": "10", "offset": "2"})
    assert [s["id"] for s in rest.json] == ids[2:]
    other = await ngsi.request("GET", "/subscriptions")  # the default tenant sees none of them
    assert not set(ids) & {s["id"] for s in other.json}
    problem(await ngsi.request("GET", "/subscriptions", tenant="no-such-tenant-" + ids[0][-8:]), 404,
            "NonexistentTenant")
    problem(await ngsi.request("GET", "/subscriptions", params={"limit": "-1"}), 400, "BadRequestData")


async def test_json_ld_context_member_names_the_creation_context(ngsi: Ngsi) -> None:
    """5.2.12: without jsonldContext the subscription reports the @context it was created with, as a URL (an
    ImplicitlyCreated @context for an inline one, served by /jsonldContexts)."""
    sub = subscription()
    sub["@context"] = {"Vehicle": "https://example.org/inline/Vehicle"}
    sub_id = await create_ok(ngsi, sub, ctype=LD_JSON)
    url = (await ngsi.request("GET", path(sub_id))).json["jsonldContext"]
    served = await ngsi.request("GET", url, absolute=True)
    assert served.status == 200 and served.json["@context"] == sub["@context"]

"""Context Source Registrations (GS CIM 009 5.9.2 - 5.9.4, 5.10.1 - 5.10.2; data types 5.2.9, 5.2.10, 5.2.8).

Each test registers its own entity types (``uid``-based names); the query tests also work in a tenant of
their own, since a registration without entities matches a query for any type.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import ContextServer
from .ngsi import DEFAULT_VOCAB, LD_JSON, Ngsi, problem, uid

ENDPOINT = "http://csource.example.org:1026"


def kind() -> str:
    """An entity type name no other test uses."""
    return "Kind" + uuid.uuid4().hex[:12]


def registration(type_: str, **members: Any) -> dict[str, Any]:
    reg = {"id": uid("ContextSourceRegistration"), "type": "ContextSourceRegistration",
           "information": [{"entities": [{"type": type_}]}], "endpoint": ENDPOINT}
    reg.update(members)
    return reg


def fresh_tenant() -> str:
    return "urn:ngsi-ld:tenant:csr-" + uuid.uuid4().hex[:12]


def path(reg_id: str) -> str:
    return "/csourceRegistrations/" + Ngsi.quote_id(reg_id)


async def register(ngsi: Ngsi, reg: dict[str, Any], **kw: Any) -> str:
    reply = await ngsi.request("POST", "/csourceRegistrations", body=reg, **kw)
    assert reply.status == 201, reply
    assert reply.body == b""
    return reply.headers["Location"].rsplit("/", 1)[-1]


async def query(ngsi: Ngsi, params: dict[str, str], **kw: Any) -> list[dict[str, Any]]:
    reply = await ngsi.request("GET", "/csourceRegistrations", params=params, **kw)
    assert reply.status == 200, reply
    return reply.json


async def test_register_retrieve_delete(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.9.2 / 5.10.1 / 5.9.4: names expanded with the request's @context and compacted with the reader's;
    every other member read back as written; no broker-kept member unless sysAttrs; 404 once deleted."""
    ctx = context_server.context({"Shop": "https://example.org/Shop", "stock": "https://example.org/stock"})
    reg = registration("Shop", information=[
        {"entities": [{"type": "Shop", "id": "urn:ngsi-ld:Shop:1"}, {"type": "Shop", "idPattern": ".*7$"}],
         "propertyNames": ["stock"], "relationshipNames": ["owner"]}],
        expiresAt="2035-11-29T14:53:15Z", location={"type": "Point", "coordinates": [-8.521, 41.2]},
        mode="redirect", operations=["queryEntity", "retrieveEntity"], registrationName="shops",
        contextSourceInfo=[{"key": "X-Auth-Token", "value": "abc"}], csourceColour="green")
    reg["@context"] = [ctx]
    reg_id = await register(ngsi, reg, ctype=LD_JSON)
    got = await ngsi.request("GET", path(reg_id), link=ctx, accept=LD_JSON)
    assert got.status == 200, got
    body = got.json
    assert body.pop("@context") in (ctx, [ctx])  # the reader's own
    assert body == {k: v for k, v in reg.items() if k != "@context"}
    plain = (await ngsi.request("GET", path(reg_id))).json
    info = plain["information"][0]
    assert info["entities"][0]["type"] == "https://example.org/Shop"
    assert info["propertyNames"] == ["https://example.org/stock"] and info["relationshipNames"] == ["owner"]
    assert plain["csourceColour"] == "green" and "@context" not in plain
    assert not {"status", "createdAt", "modifiedAt", "timesSent"} & set(plain)
    timed = (await ngsi.request("GET", path(reg_id), params={"options": "sysAttrs"})).json
    assert timed["createdAt"].endswith("Z") and timed["modifiedAt"] == timed["createdAt"]
    assert (await ngsi.request("DELETE", path(reg_id))).status == 204
    problem(await ngsi.request("GET", path(reg_id)), 404, "ResourceNotFound")
    problem(await ngsi.request("DELETE", path(reg_id)), 404, "ResourceNotFound")


async def test_generated_id_defaults_and_conflict(ngsi: Ngsi) -> None:
    reg = registration(kind())
    del reg["id"]
    reg_id = await register(ngsi, reg)
    assert reg_id.startswith("urn:ngsi-ld:ContextSourceRegistration:")
    got = (await ngsi.request("GET", path(reg_id))).json
    assert got["mode"] == "inclusive" and got["operations"] == ["federationOps"]  # 5.2.9 defaults
    problem(await ngsi.request("POST", "/csourceRegistrations", body=registration(kind(), id=reg_id)), 409,
            "AlreadyExists")


BAD = [
    ("wrong type", lambda r: r.update(type="Registration")),
    ("invalid id", lambda r: r.update(id="not a uri")),
    ("information null", lambda r: r.update(information=None)),
    ("no information", lambda r: r.pop("information")),
    ("empty information", lambda r: r.update(information=[])),
    ("no endpoint", lambda r: r.pop("endpoint")),
    ("endpoint not a URI", lambda r: r.update(endpoint="nowhere")),
    ("entity info without type", lambda r: r.update(information=[{"entities": [{"id": "urn:a:b"}]}])),
    ("entity info with invalid id", lambda r: r.update(information=[{"entities": [{"type": "T", "id": "x y"}]}])),
    ("bad idPattern", lambda r: r.update(information=[{"entities": [{"type": "T", "idPattern": "(["}]}])),
    ("unknown information member", lambda r: r.update(information=[{"attrs": ["a"]}])),
    ("past expiresAt", lambda r: r.update(expiresAt="2018-11-29T14:53:15Z")),
    ("expiresAt with a space", lambda r: r.update(expiresAt=" 2035-11-29T14:53:15Z")),
    ("interval ending before it starts", lambda r: r.update(
        observationInterval={"startAt": "2021-01-01T00:00:00Z", "endAt": "2020-01-01T00:00:00Z"})),
    ("interval without startAt", lambda r: r.update(managementInterval={"endAt": "2020-01-01T00:00:00Z"})),
    ("invalid location", lambda r: r.update(location={"type": "Point", "coordinates": [200, 100]})),
    ("contextSourceInfo value not a string", lambda r: r.update(contextSourceInfo=[{"key": "k", "value": 123}])),
    ("unknown mode", lambda r: r.update(mode="shared")),
    ("exclusive without entity ids", lambda r: r.update(
        mode="exclusive", information=[{"entities": [{"type": "T"}], "propertyNames": ["a"]}])),
    ("exclusive without attribute names", lambda r: r.update(
        mode="exclusive", information=[{"entities": [{"type": "T", "id": "urn:a:b"}]}])),
    ("auxiliary with an update", lambda r: r.update(mode="auxiliary", operations=["updateEntity"])),
    ("management cooldown 0", lambda r: r.update(management={"cooldown": 0})),
    ("management cacheDuration", lambda r: r.update(management={"cacheDuration": "bogus"})),
]


@pytest.mark.parametrize("change", [c for _, c in BAD], ids=[n for n, _ in BAD])
async def test_invalid_registrations_are_400(ngsi: Ngsi, change: Any) -> None:
    reg = registration(kind())
    change(reg)
    problem(await ngsi.request("POST", "/csourceRegistrations", body=reg), 400, "BadRequestData")
    if isinstance(reg.get("id"), str) and reg["id"].startswith("urn:"):
        problem(await ngsi.request("GET", path(reg["id"])), 404, "ResourceNotFound")


async def test_content_type_and_context_rules(ngsi: Ngsi, context_server: ContextServer) -> None:
    """6.3.5: @context in an application/json body, none in an ld+json body, or both body and Link: 400."""
    ctx = context_server.context({"Shop": "https://example.org/Shop"})
    with_ctx = registration(kind(), **{"@context": [ctx]})
    problem(await ngsi.request("POST", "/csourceRegistrations", body=with_ctx), 400, "BadRequestData")
    problem(await ngsi.request("POST", "/csourceRegistrations", body=registration(kind()), ctype=LD_JSON), 400,
            "BadRequestData")
    problem(await ngsi.request("POST", "/csourceRegistrations", body=with_ctx, ctype=LD_JSON, link=ctx), 400,
            "BadRequestData")
    problem(await ngsi.request("POST", "/csourceRegistrations", data=b'{"type": ,}', ctype="application/json"),
            400, "InvalidRequest")


async def test_update(ngsi: Ngsi) -> None:
    """5.9.3: members replaced, null removes an optional member, never a mandatory one; 204."""
    reg_id = await register(ngsi, registration(kind(), expiresAt="2035-11-29T14:53:15Z", description="one"))
    fragment = {"endpoint": "http://other.example.org:1026", "expiresAt": None, "description": "two"}
    reply = await ngsi.request("PATCH", path(reg_id), body=fragment)
    assert reply.status == 204 and reply.body == b"", reply
    got = (await ngsi.request("GET", path(reg_id))).json
    assert got["endpoint"] == "http://other.example.org:1026" and got["description"] == "two"
    assert "expiresAt" not in got
    problem(await ngsi.request("PATCH", path(reg_id), body={"information": None}), 400, "BadRequestData")
    problem(await ngsi.request("PATCH", path(reg_id), body={"type": "Building", "endpoint": ENDPOINT}), 400,
            "BadRequestData")
    problem(await ngsi.request("PATCH", path(reg_id), body={"id": uid("Other"), "endpoint": ENDPOINT}), 400,
            "BadRequestData")
    problem(await ngsi.request("PATCH", path(reg_id), data=b'{"endpoint": ,,}',
                                      ctype="application/json"), 400, "InvalidRequest")
    assert (await ngsi.request("GET", path(reg_id))).json["endpoint"] == "http://other.example.org:1026"
    problem(await ngsi.request("PATCH", path(uid("ContextSourceRegistration")), body={"description": "x"}), 404,
            "ResourceNotFound")
    problem(await ngsi.request("PATCH", "/csourceRegistrations/invalidURI", body={"description": "x"}), 400,
            "BadRequestData")
    assert (await ngsi.request("PATCH", "/csourceRegistrations/", body={"description": "x"})).status == 405
    assert (await ngsi.request("DELETE", "/csourceRegistrations/")).status == 405
    problem(await ngsi.request("DELETE", "/csourceRegistrations/invalidURI"), 400, "BadRequestData")


async def test_query_by_entity_and_attributes(ngsi: Ngsi) -> None:
    """5.10.2: a registration matches as a whole when one of its RegistrationInfo matches: by type, by id (an
    EntityInfo without id or idPattern stands for every entity of its type), idPattern, attrs (an info
    without names registers every attribute; one without entities every entity)."""
    shop, van, tenant = kind(), kind(), fresh_tenant()
    by_type = await register(ngsi, registration(shop, information=[
        {"entities": [{"type": shop}], "propertyNames": ["stock", "name"]}]), tenant=tenant)
    by_id = await register(ngsi, registration(van, information=[
        {"entities": [{"type": van, "id": "urn:ngsi-ld:Van:A456"}], "propertyNames": ["speed"]},
        {"entities": [{"type": shop, "idPattern": ".*downtown$"}], "relationshipNames": ["owner"]}]), tenant=tenant)
    names_only = await register(ngsi, registration(shop, information=[{"propertyNames": [f"{shop}Only"]}]),
                                tenant=tenant)

    def ids(found: list[dict[str, Any]]) -> set[str]:
        return {r["id"] for r in found}

    async def found(params: dict[str, str]) -> set[str]:
        return ids(await query(ngsi, params, tenant=tenant))

    assert await found({"type": shop}) == {by_type, by_id, names_only}
    assert await found({"type": van}) == {by_id, names_only}
    assert await found({"type": shop, "idPattern": ".*downtown$"}) == {by_type, by_id, names_only}
    assert await found({"id": "urn:ngsi-ld:Van:A456", "type": van}) == {by_id, names_only}
    assert await found({"id": "urn:ngsi-ld:Van:B1", "type": van}) == {names_only}
    assert await found({"id": "urn:ngsi-ld:Shop:1", "type": shop}) == {by_type, names_only}
    assert await found({"type": shop, "attrs": "name"}) == {by_type}
    assert await found({"type": f"{shop}|{van}", "attrs": "speed,owner"}) == {by_id}
    whole = [r for r in await query(ngsi, {"type": van}, tenant=tenant) if r["id"] == by_id][0]
    assert len(whole["information"]) == 2  # returned whole


async def test_query_by_members_scope_space_and_time(ngsi: Ngsi) -> None:
    """q / csf on the registration's own members, scopeQ on its scope, a geo-query on its location, a
    temporal query on observationInterval (observedAt) or managementInterval (createdAt / modifiedAt)."""
    t, tenant = kind(), fresh_tenant()
    madrid = await register(ngsi, registration(
        t, endpoint="http://csf-a.example.com", scope="/Madrid/Centro", csourceLevel=3,
        location={"type": "Point", "coordinates": [-3.70, 40.42]},
        observationInterval={"startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}), tenant=tenant)
    berlin = await register(ngsi, registration(
        t, endpoint="http://csf-b.example.com", scope="/Berlin", csourceLevel=7,
        managementInterval={"startAt": "2022-01-01T00:00:00Z"}), tenant=tenant)

    async def found(params: dict[str, str]) -> set[str]:
        return {r["id"] for r in await query(ngsi, {"type": t, **params}, tenant=tenant)}

    assert await found({"q": "csourceLevel>5"}) == {berlin}
    assert {r["id"] for r in await query(ngsi, {"q": 'endpoint=="http://csf-a.example.com"'}, tenant=tenant)} \
        == {madrid}
    assert await found({"csf": 'endpoint=="http://csf-a.example.com"'}) == {madrid}
    assert await found({"scopeQ": "/Madrid/#"}) == {madrid}
    assert await found({"georel": "near;maxDistance==2000", "geometry": "Point",
                        "coordinates": "[-3.69,40.425]"}) == {madrid}
    assert await found({"georel": "near;maxDistance==20", "geometry": "Point", "coordinates": "[-3.69,40.425]"}) \
        == set()
    assert await found({"timerel": "before", "timeAt": "2021-08-01T22:00:00Z"}) == {madrid}
    assert await found({"timerel": "after", "timeAt": "2021-09-01T00:00:00Z"}) == set()
    assert await found({"timeproperty": "createdAt", "timerel": "after", "timeAt": "2023-01-01T00:00:00Z"}) \
        == {berlin}


async def test_query_errors_and_media_types(ngsi: Ngsi) -> None:
    problem(await ngsi.request("GET", "/csourceRegistrations"), 400, "BadRequestData")
    for params in ({"id": "invalidUri"}, {"q": "(invalidQuery"}, {"georel": "within"}, {"timerel": "before"},
                   {"type": "T", "idPattern": "(["}, {"type": "T", "geometry": "Point", "georel": "near",
                                                       "coordinates": "[1,2]"}):
        problem(await ngsi.request("GET", "/csourceRegistrations", params=params), 400, "BadRequestData")
    for accept in ("application/xml", "application/geo+json"):
        reply = await ngsi.request("GET", "/csourceRegistrations", params={"type": "T"}, accept=accept)
        problem(reply, 406)
    reply = await ngsi.request("GET", "/csourceRegistrations", params={"type": "T"}, accept="*/*")
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json" and reply.headers["Link"]


async def test_query_pages(ngsi: Ngsi) -> None:
    """limit / offset with rel=prev / rel=next links keeping the request's parameter order, and count."""
    t, tenant = kind(), fresh_tenant()
    for _ in range(3):
        await register(ngsi, registration(t), tenant=tenant)
    reply = await ngsi.request("GET", "/csourceRegistrations",
                               params={"type": t, "limit": "1", "offset": "2", "count": "true"}, tenant=tenant)
    assert reply.status == 200 and len(reply.json) == 1 and reply.headers["NGSILD-Results-Count"] == "3"
    links = [x.strip() for x in reply.headers["Link"].split(",") if "rel=\"prev\"" in x or "rel=\"next\"" in x]
    assert links == [f'</ngsi-ld/v1/csourceRegistrations?type={t}&limit=1&offset=1&count=true>; rel="prev"; '
                     f'type="application/ld+json"']
    everything = await query(ngsi, {"type": t, "limit": "15"}, tenant=tenant)
    pages = [r["id"] for o in range(3)
             for r in await query(ngsi, {"type": t, "limit": "1", "offset": str(o)}, tenant=tenant)]
    assert pages == [r["id"] for r in everything] and len(set(pages)) == 3


async def test_registrations_are_per_tenant(ngsi: Ngsi) -> None:
    t, tenant = kind(), fresh_tenant()
    reg_id = await register(ngsi, registration(t, information=[{"entities": [{"type": t}]}]), tenant=tenant)
    assert [r["id"] for r in await query(ngsi, {"type": t}, tenant=tenant)] == [reg_id]
    assert reg_id not in {r["id"] for r in await query(ngsi, {"type": t})}
    problem(await ngsi.request("GET", path(reg_id)), 404, "ResourceNotFound")
    assert (await ngsi.request("DELETE", path(reg_id), tenant=tenant)).status == 204


async def test_default_vocabulary_names(ngsi: Ngsi) -> None:
    """Without a Link, names expand with the core context's @vocab and read back short."""
    t, tenant = kind(), fresh_tenant()
    reg_id = await register(ngsi, registration(t), tenant=tenant)
    got = (await ngsi.request("GET", path(reg_id), tenant=tenant)).json
    assert got["information"][0]["entities"][0]["type"] == t
    assert [r["id"] for r in await query(ngsi, {"type": DEFAULT_VOCAB + t}, tenant=tenant)] == [reg_id]

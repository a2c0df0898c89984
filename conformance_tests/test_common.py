"""Common HTTP behaviour: content negotiation, request preconditions, error reporting, robustness.

Clauses of ETSI GS CIM 009 v1.8: 6.3.2 (error types and HTTP status codes, ProblemDetails per IETF
RFC 7807), 6.3.4 (supported media types, Accept, Content-Type, Content-Length), 6.3.6 / 6.3.7
(representations), 5.5.2 (errors), 4.5.16 (GeoJSON representation).
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from yarl import URL

from .ngsi import (
    ERRORS, GEO_JSON, JSON, LD_JSON, entity, geo, Ngsi, point, problem, prop, Reply, uid, unique_name,
)

# ---------------------------------------------------------------------------------------------- Accept


@pytest.fixture(scope="module")
async def building(ngsi: Ngsi) -> str:
    ent = entity("Building", name=prop("Eiffel Tower"), location=geo(point(2.2945, 48.8584)))
    return await ngsi.create_ok(ent)


@pytest.mark.parametrize("accept,expected", [
    (None, JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    ("application/json", JSON),
    ("application/ld+json", LD_JSON),
    ("application/ld+json, application/json", JSON),
    ("application/json;q=0.1, application/ld+json;q=0.9", LD_JSON),
    ("application/json;q=0, application/ld+json", LD_JSON),
    ("application/json;q=0, */*", LD_JSON),
    ("*/*;q=0.9, application/ld+json;q=0.8", JSON),
    ("text/html, application/ld+json;q=0.5", LD_JSON),
])
async def test_accept_negotiation(ngsi: Ngsi, building: str, accept: str | None, expected: str) -> None:
    """6.3.4: the response media type follows the Accept header (IETF RFC 9110 12.5.1: q-values, the most
    specific range decides, q=0 refuses); without Accept, or when options tie, application/json (first in the
    6.3.4 list) is used (ETSI TPs 045_01 - 045_04)."""
    reply = await ngsi.get(building, accept=accept)
    assert reply.status == 200, reply
    assert reply.content_type == expected, reply
    body = reply.json
    assert body["id"] == building
    assert ("@context" in body) == (expected == LD_JSON), body


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0",
                                    "image/*, text/plain"])
async def test_not_acceptable_is_406(ngsi: Ngsi, building: str, accept: str) -> None:
    """6.3.4: an Accept header admitting neither application/json nor application/ld+json (nor geo+json for
    entities) is 406 Not Acceptable (ETSI TP 049_01)."""
    reply = await ngsi.get(building, accept=accept)
    assert reply.status == 406, reply
    if reply.body and reply.content_type == JSON:
        problem(reply, 406)


async def test_geojson_representation(ngsi: Ngsi, building: str) -> None:
    """6.3.7 / 4.5.16: Accept application/geo+json gives the entity as a GeoJSON Feature whose geometry is the
    ``location`` GeoProperty's value."""
    reply = await ngsi.get(building, accept=GEO_JSON)
    assert reply.status == 200 and reply.content_type == GEO_JSON, reply
    body = reply.json
    assert body["type"] == "Feature" and body["id"] == building, body
    assert body["geometry"] == point(2.2945, 48.8584), body


# ---------------------------------------------------------------------------------------------- Content-Type


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
async def test_unsupported_content_type_is_415(ngsi: Ngsi, ctype: str) -> None:
    """6.3.4: request bodies are application/json or application/ld+json (and merge-patch+json for PATCH);
    anything else is 415 Unsupported Media Type, whatever the endpoint (ETSI TP 048_01)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    path = ngsi.entity_path(ent["id"])
    for method, target, body in [("POST", "/entities", entity("Vehicle")), ("POST", path + "/attrs", {"a": prop(1)}),
                                 ("PATCH", path + "/attrs", {"speed": prop(2)}),
                                 ("PATCH", path + "/attrs/speed", {"value": 2}), ("PATCH", path, {"speed": prop(2)}),
                                 ("PUT", path, entity("Vehicle")),
                                 ("POST", "/entityOperations/create", [entity("Vehicle")])]:
        reply = await ngsi.request(method, target, body=body, ctype=ctype)
        assert reply.status == 415, reply
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(1)


async def test_merge_patch_content_type_only_on_patch(ngsi: Ngsi) -> None:
    """6.3.4: application/merge-patch+json is a PATCH media type; a POST carrying it is 415."""
    ent = entity("Vehicle")
    reply = await ngsi.create(ent, ctype="application/merge-patch+json")
    assert reply.status == 415, reply
    assert (await ngsi.get(ent["id"])).status == 404


# ---------------------------------------------------------------------------------------------- Content-Length


async def raw_http(broker_url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-written HTTP/1.1 request (aiohttp always frames its bodies); the status and the body."""
    url = URL(broker_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        request = head.replace("\n", "\r\n") + f"Host: {url.host}:{url.port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode() + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("method,path", [("POST", "/entities"), ("PATCH", "/entities/{id}/attrs"),
                                         ("PUT", "/entities/{id}"), ("POST", "/entityOperations/create")])
async def test_missing_content_length_is_411(ngsi: Ngsi, broker_url: str, method: str, path: str) -> None:
    """6.3.4: POST, PATCH and PUT requests shall carry a Content-Length: without one the answer is just a 411,
    without a body (ETSI TP 046_01), whether the request has no body or a chunked one, and before the tenant
    is looked up (a tenant that does not exist does not make it a 404)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    target = "/ngsi-ld/v1" + path.replace("{id}", ngsi.quote_id(ent["id"]))
    head = f"{method} {target} HTTP/1.1\nContent-Type: application/json\n"
    assert await raw_http(broker_url, head) == (411, b"")
    chunk = b'{"speed": {"type": "Property", "value": 2}}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    assert await raw_http(broker_url, head + "Transfer-Encoding: chunked\n", chunked) == (411, b"")
    assert await raw_http(broker_url, head + "NGSILD-Tenant: no-such-tenant-411\n") == (411, b"")
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(1)


async def test_get_without_content_length_is_fine(ngsi: Ngsi, broker_url: str) -> None:
    """6.3.4: the Content-Length precondition concerns requests with a body; a GET without one is served
    (ETSI TP 046_01_04)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    status, _ = await raw_http(broker_url, f"GET /ngsi-ld/v1/entities/{ngsi.quote_id(ent['id'])} HTTP/1.1\n")
    assert status == 200


@pytest.mark.local_broker
async def test_body_above_limit_is_413(ngsi: Ngsi, broker_url: str) -> None:
    """IETF RFC 9110 15.5.14: a body larger than the broker accepts is 413 Content Too Large (our broker's
    default limit is 8 MiB), and nothing is created."""
    ent = entity("Vehicle", blob=prop("x" * (8 * 1024 * 1024 + 16)))
    reply = await ngsi.create(ent)
    assert reply.status == 413, reply
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.local_broker
async def test_body_just_below_limit_is_accepted(ngsi: Ngsi) -> None:
    """The counterpart of the 413 test: a 7 MiB entity is an ordinary request for our broker."""
    ent = entity("Vehicle", blob=prop("x" * (7 * 1024 * 1024)))
    reply = await ngsi.create(ent)
    assert reply.status == 201, reply
    assert len((await ngsi.fetch(ent["id"], {"options": "keyValues"}))["blob"]) == 7 * 1024 * 1024
    assert (await ngsi.delete(ent["id"])).status == 204


# ---------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("case", ["create", "retrieve", "delete", "purge", "append", "batch"])
async def test_unknown_query_parameter_is_invalid_request(ngsi: Ngsi, case: str) -> None:
    """6.3.2 / 5.5.x (OpenAPI ProblemDetails InvalidRequest: "parameters that are incompatible with the
    operation"): an unknown URI parameter is 400 InvalidRequest and the operation is not performed (ETSI TP
    059_01)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    bad = {"invalidParam": "invalidValue"}
    path = ngsi.entity_path(ent["id"])
    new = entity("Vehicle")
    reply: Reply
    if case == "create":
        reply = await ngsi.create(new, params=bad)
    elif case == "retrieve":
        reply = await ngsi.get(ent["id"], bad)
    elif case == "delete":
        reply = await ngsi.delete(ent["id"], params=bad)
    elif case == "purge":
        reply = await ngsi.request("DELETE", "/entities", params={"type": unique_name("Purge"), **bad})
    elif case == "append":
        reply = await ngsi.request("POST", path + "/attrs", body={"a": prop(1)}, params=bad)
    else:
        reply = await ngsi.batch("create", [new], params=bad)
    problem(reply, 400, "InvalidRequest")
    assert set(await ngsi.fetch(ent["id"])) == {"id", "type", "speed"}
    assert (await ngsi.get(new["id"])).status == 404


@pytest.mark.parametrize("params", [{"options": "noSuchOption"}, {"format": "noSuchFormat"}])
async def test_invalid_representation_options(ngsi: Ngsi, building: str, params: dict[str, str]) -> None:
    """6.3.2 / 5.7.1: an options or format value the operation does not support is a 400 error (the OpenAPI
    ProblemDetails text names InvalidRequest for unsupported options; BadRequestData is accepted too)."""
    body = problem(await ngsi.get(building, params), 400)
    assert body["type"] in (ERRORS + "InvalidRequest", ERRORS + "BadRequestData")


# ---------------------------------------------------------------------------------------------- errors


async def test_problem_details_for_ngsi_errors(ngsi: Ngsi) -> None:
    """6.3.2 / 5.5.2: NGSI-LD errors are ProblemDetails (IETF RFC 7807): ``type`` the error type URI under
    https://uri.etsi.org/ngsi-ld/errors/, a ``title``, ``status`` equal to the HTTP status (400
    BadRequestData / InvalidRequest, 404 ResourceNotFound, 409 AlreadyExists)."""
    ent = entity("Vehicle")
    await ngsi.create_ok(ent)
    problem(await ngsi.create(ent), 409, "AlreadyExists")
    problem(await ngsi.get(uid("Vehicle")), 404, "ResourceNotFound")
    problem(await ngsi.create({"id": "not a uri", "type": "Vehicle"}), 400, "BadRequestData")
    problem(await ngsi.request("POST", "/entities", data=b"{", ctype=JSON), 400, "InvalidRequest")


async def test_unknown_resource_is_404(ngsi: Ngsi) -> None:
    """6.2 / Table 6.2-1: paths outside the API's resources are 404."""
    reply = await ngsi.request("GET", "/noSuchResource")
    assert reply.status == 404, reply


async def test_204_has_no_content_length_and_no_body(ngsi: Ngsi) -> None:
    """6.3.x / IETF RFC 9110 8.6 and 15.3.5: a 204 No Content response has no body and carries no
    Content-Length header (ETSI TP 636_01_03)."""
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent)
    path = ngsi.entity_path(ent["id"])
    replies = [await ngsi.request("PATCH", path + "/attrs", body={"speed": prop(2)}),
               await ngsi.request("POST", path + "/attrs", body={"color": prop("red")}),
               await ngsi.request("PATCH", path, body={"speed": prop(3)}),
               await ngsi.delete_attr(ent["id"], "color"),
               await ngsi.delete(ent["id"])]
    for reply in replies:
        assert reply.status == 204, reply
        assert reply.body == b"", reply
        assert "Content-Length" not in reply.headers, (reply, dict(reply.headers))


# ---------------------------------------------------------------------------------------------- robustness

# CI runs the same examples every time (seeded by the test name, no example database, no shrinking), so a
# failure is reproducible, never flaky, and quick; set CONFORMANCE_RANDOM=1 to explore new examples (and get
# failures shrunk to a minimal example) instead
DETERMINISTIC: dict[str, Any] = {} if os.environ.get("CONFORMANCE_RANDOM") else {
    "derandomize": True, "database": None, "phases": [Phase.explicit, Phase.generate]}
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=16))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ATTR_TYPES = st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty", "VocabProperty",
                              "JsonProperty", "ListProperty", "ListRelationship", "Nonsense", ""])
MEMBERS = st.sampled_from(["value", "object", "languageMap", "vocab", "json", "valueList", "objectList",
                           "datasetId", "observedAt", "unitCode", "createdAt", "modifiedAt", "type", "id",
                           "@type", "@id", "@value", "accuracy", "objectType", "valueType", "lang"])
GEOMETRIES = st.fixed_dictionaries({
    "type": st.sampled_from(["Point", "LineString", "Polygon", "MultiPoint", "MultiPolygon", "Feature", "Nope"]),
    "coordinates": st.one_of(st.lists(st.floats(-200, 200), max_size=3),
                             st.lists(st.lists(st.lists(st.floats(-200, 200), min_size=2, max_size=2),
                                               max_size=5), max_size=2), JSON_VALUES)})
ATTRIBUTES = st.one_of(
    JSON_VALUES,
    st.builds(lambda t, members: {"type": t, **members}, ATTR_TYPES, st.dictionaries(MEMBERS, JSON_VALUES, max_size=4)),
    st.builds(lambda g: {"type": "GeoProperty", "value": g}, GEOMETRIES),
    st.builds(lambda v, sub: {"type": "Property", "value": v, "sub": sub}, JSON_VALUES,
              st.builds(lambda t, m: {"type": t, **m}, ATTR_TYPES, st.dictionaries(MEMBERS, JSON_VALUES, max_size=3))),
    st.lists(st.builds(lambda v, d: {"type": "Property", "value": v, "datasetId": d}, JSON_SCALARS,
                       st.one_of(st.none(), st.sampled_from(["urn:ds:1", "urn:ds:2", "x y"]))), max_size=3),
)
ATTR_NAMES = st.one_of(st.sampled_from(["speed", "name", "location", "scope", "observationSpace", "@context",
                                        "value", "object", "@type", "@id", "https://example.org/x", "",
                                        "urn:ngsi-ld:null"]),
                       st.text(max_size=12))
FUZZ_IDS = st.uuids().map(lambda u: f"urn:ngsi-ld:Fuzz:{u.hex}")
ENTITIES = st.builds(
    lambda ent_id, ent_type, attrs: {"id": ent_id, "type": ent_type, **attrs},
    st.one_of(FUZZ_IDS, FUZZ_IDS, JSON_VALUES),
    st.one_of(st.sampled_from(["Fuzz", "Vehicle", ["Fuzz", "Other"], "https://example.org/T"]), JSON_VALUES),
    st.dictionaries(ATTR_NAMES, ATTRIBUTES, max_size=5))
# well-formed attributes with arbitrary values: most of these entities are valid, which exercises storage and
# every output representation with unusual content (deep JSON, big numbers, odd strings, unicode names)
NOT_NULL = JSON_VALUES.filter(lambda v: v is not None)
VALID_ATTRIBUTES = st.one_of(
    st.builds(prop, NOT_NULL),
    NOT_NULL.filter(lambda v: not isinstance(v, dict)),
    st.builds(lambda u, sub: {"type": "Relationship", "object": f"urn:ngsi-ld:X:{u.hex}", "note": prop(sub)},
              st.uuids(), NOT_NULL),
    st.builds(lambda m: {"type": "LanguageProperty", "languageMap": m},
              st.dictionaries(st.sampled_from(["en", "fr", "de-CH", "@none"]), st.text(max_size=10), min_size=1)),
    st.builds(lambda v: {"type": "JsonProperty", "json": v}, st.dictionaries(st.text(max_size=8), JSON_VALUES)),
    st.builds(lambda v: {"type": "ListProperty", "valueList": v}, st.lists(st.one_of(st.integers(-99, 99),
                                                                                      st.text(max_size=5)))),
    st.builds(lambda lon, lat: geo(point(lon, lat)), st.floats(-180, 180), st.floats(-90, 90)),
    st.builds(lambda v, u: prop(v, unitCode=u, observedAt="2024-01-01T00:00:00Z"), NOT_NULL,
              st.sampled_from(["CEL", "KMH", "C62"])),
)
VALID_NAMES = st.from_regex(r"[A-Za-z\u00c0-\u024f][A-Za-z0-9_\u00c0-\u024f]{0,10}", fullmatch=True)
VALIDISH_ENTITIES = st.builds(
    lambda ent_id, ent_type, attrs: {"id": ent_id, "type": ent_type, **attrs},
    FUZZ_IDS, st.sampled_from(["Fuzz", "Vehicle", ["Fuzz", "Other"], "Škola"]),
    st.dictionaries(VALID_NAMES, VALID_ATTRIBUTES, max_size=5))
BODIES = st.one_of(VALIDISH_ENTITIES, VALIDISH_ENTITIES, ENTITIES, ENTITIES, JSON_VALUES)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], **DETERMINISTIC)
@given(body=BODIES)
async def test_create_never_fails_with_5xx(ngsi: Ngsi, body: Any) -> None:
    """6.3.2 / 5.6.1: whatever JSON is posted as an entity, the answer is 201, or an NGSI-LD error (400, 409;
    413/415 are not expected here) - never a 5xx; a rejected entity is not half-written (its id does not
    exist afterwards) and an accepted one can be read in every representation."""
    reply = await ngsi.create(body)
    event(f"status {reply.status}")
    assert reply.status in (201, 400, 409), reply
    ent_id = body.get("id") if isinstance(body, dict) else None
    ours = isinstance(ent_id, str) and ent_id.startswith("urn:ngsi-ld:Fuzz:")
    if reply.status == 201:
        assert ours, reply
        for params in (None, {"options": "keyValues"}, {"options": "concise"}, {"options": "sysAttrs"}):
            got = await ngsi.get(ent_id, params)
            assert got.status == 200, got
        for accept in (LD_JSON, GEO_JSON):
            got = await ngsi.get(ent_id, accept=accept)
            assert got.status == 200, got
        assert (await ngsi.delete(ent_id)).status == 204
        return
    problem(reply, reply.status)
    if reply.status == 400 and ours:
        got = await ngsi.get(ent_id)
        problem(got, 404, "ResourceNotFound")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], **DETERMINISTIC)
@given(data=st.binary(max_size=64), ctype=st.sampled_from([JSON, LD_JSON]))
async def test_garbage_bytes_never_fail_with_5xx(ngsi: Ngsi, data: bytes, ctype: str) -> None:
    """6.3.2: a body that is not an entity (random bytes) is a 400 error, never a 5xx."""
    reply = await ngsi.request("POST", "/entities", data=data, ctype=ctype)
    assert reply.status == 400, reply
    problem(reply, 400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], **DETERMINISTIC)
@given(payload=st.one_of(st.lists(st.one_of(VALIDISH_ENTITIES, ENTITIES), max_size=4), JSON_VALUES),
       operation=st.sampled_from(["create", "upsert", "update", "merge", "delete"]))
async def test_batch_never_fails_with_5xx(ngsi: Ngsi, payload: Any, operation: str) -> None:
    """6.3.2 / 5.6.7 - 5.6.10, 5.6.20: whatever JSON is posted to a batch operation the answer is one of the
    documented statuses (201/204/207, or 400 with ProblemDetails), never a 5xx."""
    reply = await ngsi.batch(operation, payload)
    event(f"{operation} status {reply.status}")
    assert reply.status in (201, 204, 207, 400), reply
    if reply.status >= 400:
        problem(reply, reply.status)
    ids = [e["id"] for e in payload if isinstance(e, dict) and isinstance(e.get("id"), str)
           and e["id"].startswith("urn:ngsi-ld:Fuzz:")] if isinstance(payload, list) else []
    if ids:
        await ngsi.batch("delete", ids)


async def test_unicode_names_round_trip(ngsi: Ngsi) -> None:
    """4.6.2: names made of Unicode letters and digits are valid entity type and attribute names and
    round-trip (ETSI TP 462_01_03)."""
    ent = entity("Škola", **{"výška_1": prop(7), unique_name("a"): prop("x")})
    await ngsi.create_ok(ent)
    got = await ngsi.fetch(ent["id"])
    assert got["type"] == "Škola" and got["výška_1"] == prop(7)


async def test_source_identity(ngsi: Ngsi) -> None:
    """5.15.1 / 5.2.40: the broker's identity; its alias identifies the tenant too, and is stable."""
    reply = await ngsi.request("GET", "/info/sourceIdentity")
    assert reply.status == 200, reply
    body = reply.json
    assert body["type"] == "ContextSourceIdentity" and body["id"].startswith("urn:")
    assert re.fullmatch(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?!$)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?",
                        body["contextSourceUptime"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", body["contextSourceTimeAt"])
    tenant_a = (await ngsi.request("GET", "/info/sourceIdentity", tenant="alias-a")).json["contextSourceAlias"]
    tenant_b = (await ngsi.request("GET", "/info/sourceIdentity", tenant="alias-b")).json["contextSourceAlias"]
    again = (await ngsi.request("GET", "/info/sourceIdentity", tenant="alias-a")).json["contextSourceAlias"]
    assert len({body["contextSourceAlias"], tenant_a, tenant_b}) == 3 and again == tenant_a
    problem(await ngsi.request("GET", "/info/sourceIdentity", accept="application/xml"), 406)

"""JSON-LD @context handling and the @context store (/jsonldContexts).

Clauses of ETSI GS CIM 009 v1.8: 4.4 (Core @context), 5.5.6 (remote @context retrieval), 5.5.7 (term to
URI expansion, compaction), 6.3.5 (JSON-LD @context resolution: Link header vs body @context),
6.3.6 (response @context), 5.13 / 6.30 (JSON-LD @context API).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest

from .conftest import ContextServer
from .ngsi import (
    CORE_CONTEXT, CORE_CONTEXTS, ERRORS, JSON, JSONLD_CONTEXT_REL, LD_JSON, SDM_AVAILABLE_SPOT_NUMBER,
    SDM_OFF_STREET_PARKING, SDM_PARKING, SDM_SPEED, SDM_TRANSPORTATION, SDM_VEHICLE, Ngsi, as_list,
    context_urls, entity, geo, link_urls, point, problem, prop, uid,
)

EXAMPLE_TERMS = {"speed": "https://example.org/speed", "Car": "https://example.org/Car",
                 "electric": "https://example.org/vocab/electric", "fuel": "https://example.org/fuel"}
UNREACHABLE = "http://127.0.0.1:1/ctx.jsonld"
MISSING_CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"


def ld(ent: dict[str, Any], context: Any) -> dict[str, Any]:
    """``ent`` as an application/ld+json body carrying ``context``."""
    return {**ent, "@context": context}


# ---------------------------------------------------------------------------------------------- request @context


async def test_link_header_context_is_applied(ngsi: Ngsi, context_server: ContextServer) -> None:
    """6.3.5 / 5.5.7: with application/json the @context comes from the Link header: terms are expanded with
    it, so reading without it gives the full IRIs and reading with it gives the terms back (ETSI TP 001_04)."""
    ctx = context_server.context(EXAMPLE_TERMS)
    ent = entity("Car", speed=prop(80))
    await ngsi.create_ok(ent, link=ctx)
    with_ctx = await ngsi.fetch(ent["id"], link=ctx)
    assert with_ctx["type"] == "Car" and with_ctx["speed"] == prop(80)
    without = await ngsi.fetch(ent["id"])
    assert without["type"] == "https://example.org/Car"
    assert without["https://example.org/speed"] == prop(80) and "speed" not in without


async def test_body_context_is_applied(ngsi: Ngsi) -> None:
    """6.3.5 / 5.5.7: with application/ld+json the @context is the body's (here an inline object plus the core
    context); read back without it the expanded IRIs show (ETSI TP 001_07)."""
    ent = ld(entity("Car", speed=prop(80)), [EXAMPLE_TERMS, CORE_CONTEXT])
    reply = await ngsi.create(ent, ctype=LD_JSON)
    assert reply.status == 201, reply
    got = await ngsi.fetch(ent["id"])
    assert got["type"] == "https://example.org/Car"
    assert got["https://example.org/speed"] == prop(80)


async def test_inline_context_without_core_still_knows_core_terms(ngsi: Ngsi) -> None:
    """4.4: the core @context always applies (as if it were last), even when the request's @context does not
    list it: ``location`` stays the core GeoProperty."""
    ent = ld(entity("Car", speed=prop(80), location=geo(point(2.0, 48.0))), {"speed": "https://example.org/speed"})
    reply = await ngsi.create(ent, ctype=LD_JSON)
    assert reply.status == 201, reply
    got = await ngsi.fetch(ent["id"])
    assert got["location"] == geo(point(2.0, 48.0))
    assert got["https://example.org/speed"] == prop(80)


async def test_user_context_cannot_redefine_core_terms(ngsi: Ngsi) -> None:
    """4.4: the core @context is protected (processed as if last), so a user @context redefining the core term
    ``Property`` does not change what the attribute is (ETSI TP 404_01_02)."""
    ent = ld(entity("Vehicle", speed=prop(42)), [{"Property": "https://evil.example/Property"}, CORE_CONTEXT])
    reply = await ngsi.create(ent, ctype=LD_JSON)
    assert reply.status == 201, reply
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(42)


async def test_default_context_when_none_given(ngsi: Ngsi) -> None:
    """6.3.5 / 4.4: without any user @context terms are expanded with the core @context (its @vocab), and
    compact back to the same terms when read without context (ETSI TPs 001_05, 555_01)."""
    ent = entity("Building", almostFull=prop(False))
    await ngsi.create_ok(ent)
    reply = await ngsi.get(ent["id"])
    got = reply.json
    assert got["type"] == "Building" and got["almostFull"] == prop(False)
    assert "default-context" not in reply.body.decode()


async def test_smart_data_models_context(ngsi: Ngsi) -> None:
    """5.5.7 / 6.3.5: a Smart Data Models @context named in the Link header is applied: types and attributes
    compact with it and are full IRIs without it."""
    ent = entity("OffStreetParking", availableSpotNumber=prop(121), name=prop("Downtown One"))
    await ngsi.create_ok(ent, link=SDM_PARKING)
    with_ctx = await ngsi.fetch(ent["id"], link=SDM_PARKING)
    assert with_ctx["type"] == "OffStreetParking"
    assert with_ctx["availableSpotNumber"] == prop(121) and with_ctx["name"] == prop("Downtown One")
    without = await ngsi.fetch(ent["id"])
    assert without["type"] == SDM_OFF_STREET_PARKING
    assert without[SDM_AVAILABLE_SPOT_NUMBER] == prop(121)


async def test_vocab_property_terms_follow_the_context(ngsi: Ngsi) -> None:
    """4.5.20: a VocabProperty's vocab values are expanded like types: compacted with the creating @context,
    full IRIs without it."""
    ent = entity("Vehicle", category={"type": "VocabProperty", "vocab": "Vehicle"}, speed=prop(3))
    await ngsi.create_ok(ent, link=SDM_TRANSPORTATION)
    with_ctx = await ngsi.fetch(ent["id"], link=SDM_TRANSPORTATION)
    assert with_ctx["category"] == {"type": "VocabProperty", "vocab": "Vehicle"}
    without = await ngsi.fetch(ent["id"])
    assert without["type"] == SDM_VEHICLE and without[SDM_SPEED] == prop(3)
    vocab = without[next(k for k in without if k.endswith("category"))]["vocab"]
    assert vocab == SDM_VEHICLE


async def test_ld_json_without_context_is_400(ngsi: Ngsi) -> None:
    """6.3.5: application/ld+json whose body has no @context is BadRequestData (ETSI TP 001_08)."""
    ent = entity("Building")
    problem(await ngsi.create(ent, ctype=LD_JSON), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_ld_json_with_link_header_is_400(ngsi: Ngsi) -> None:
    """6.3.5: application/ld+json together with a JSON-LD Link header is BadRequestData (ETSI TP 001_09)."""
    ent = ld(entity("Building"), CORE_CONTEXT)
    problem(await ngsi.create(ent, ctype=LD_JSON, link=SDM_PARKING), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_json_with_body_context_is_400(ngsi: Ngsi) -> None:
    """6.3.5: application/json whose body carries @context is BadRequestData (ETSI TP 001_06)."""
    ent = ld(entity("Building"), CORE_CONTEXT)
    problem(await ngsi.create(ent, ctype=JSON), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_unsupported_content_type_is_415(ngsi: Ngsi) -> None:
    """6.3.4: a request body that is neither application/json nor application/ld+json is 415 (ETSI TP
    048_01)."""
    ent = entity("Building")
    reply = await ngsi.create(ent, ctype="text/plain")
    assert reply.status == 415, reply
    assert (await ngsi.get(ent["id"])).status == 404


@pytest.mark.parametrize("url", CORE_CONTEXTS, ids=[u.rsplit("/", 1)[-1] for u in CORE_CONTEXTS])
@pytest.mark.parametrize("via", ["body", "link"])
async def test_core_context_urls(ngsi: Ngsi, url: str, via: str) -> None:
    """4.4 / 5.5.6: the published core @context URLs (version-less and v1.3 ... v1.9) are usable as the
    request @context, in the body or in the Link header."""
    ent = entity("Building", name=prop("x"), location=geo(point(2.0, 48.0)))
    if via == "body":
        reply = await ngsi.create(ld(ent, url), ctype=LD_JSON)
    else:
        reply = await ngsi.create(ent, link=url)
    assert reply.status == 201, reply
    got = await ngsi.fetch(ent["id"], link=url)
    assert got["type"] == "Building" and got["name"] == prop("x") and got["location"] == geo(point(2.0, 48.0))


# ---------------------------------------------------------------------------------------------- remote @context errors


@pytest.mark.parametrize("via", ["body", "link"])
async def test_unreachable_context_is_504(ngsi: Ngsi, via: str) -> None:
    """5.5.6 / 6.3.2: a remote @context that cannot be retrieved is LdContextNotAvailable (504 since v1.6;
    ETSI TP 043_01); nothing is created."""
    ent = entity("Building", name=prop("x"))
    if via == "body":
        reply = await ngsi.create(ld(ent, [UNREACHABLE, CORE_CONTEXT]), ctype=LD_JSON)
    else:
        reply = await ngsi.create(ent, link=UNREACHABLE)
    problem(reply, 504, "LdContextNotAvailable")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_missing_context_document_is_504(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.5.6: a remote @context whose server answers 404 is not available: LdContextNotAvailable (504)."""
    url = context_server.serve({"error": "gone"}, status=404, content_type="application/json")
    ent = entity("Building")
    problem(await ngsi.create(ld(ent, url), ctype=LD_JSON), 504, "LdContextNotAvailable")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_non_existing_core_context_version_is_504(ngsi: Ngsi) -> None:
    """5.5.6 (ETSI TP 043_01 payload): a core-looking URL that does not exist
    (ngsi-ld-core-context-non-existing.jsonld) is not a known core @context: LdContextNotAvailable."""
    ent = entity("Building")
    problem(await ngsi.create(ld(ent, [MISSING_CORE]), ctype=LD_JSON), 504, "LdContextNotAvailable")
    assert (await ngsi.get(ent["id"])).status == 404


async def test_unreachable_context_on_retrieval_is_504(ngsi: Ngsi) -> None:
    """5.5.6: the rule holds for any request naming a remote @context, a GET with a Link header too."""
    ent = entity("Building")
    await ngsi.create_ok(ent)
    problem(await ngsi.get(ent["id"], link=UNREACHABLE), 504, "LdContextNotAvailable")


@pytest.mark.parametrize("document", [b"this is { not json", b'{"no": "context member"}', b"[1, 2]"],
                         ids=["not-json", "no-context-member", "array"])
async def test_invalid_remote_context_is_400(ngsi: Ngsi, context_server: ContextServer, document: bytes) -> None:
    """5.5.6: a remote @context that is retrieved but is not a valid JSON-LD context document is
    BadRequestData; nothing is created (ETSI TP 556_01)."""
    url = context_server.serve(document)
    ent = entity("Building")
    problem(await ngsi.create(ld(ent, url), ctype=LD_JSON), 400, "BadRequestData")
    assert (await ngsi.get(ent["id"])).status == 404


# ---------------------------------------------------------------------------------------------- response @context


async def test_json_response_has_link_header(ngsi: Ngsi) -> None:
    """6.3.6: an application/json response carries the @context it was compacted with in a JSON-LD Link
    header (rel=http://www.w3.org/ns/json-ld#context); without a user @context that is the core @context
    (ETSI TP 045_01)."""
    ent = entity("Building")
    await ngsi.create_ok(ent)
    reply = await ngsi.get(ent["id"], accept=JSON)
    assert reply.status == 200 and reply.content_type == JSON, reply
    assert "@context" not in reply.json
    header = reply.headers.get("Link", "")
    assert JSONLD_CONTEXT_REL in header, reply.headers
    urls = link_urls(header)
    assert len(urls) == 1 and urls[0], header


async def test_json_response_link_names_the_user_context(ngsi: Ngsi) -> None:
    """6.3.6: with a user @context in the request's Link header, the response's Link header names that
    @context (or a broker-hosted @context made from it)."""
    ent = entity("OffStreetParking", availableSpotNumber=prop(1))
    await ngsi.create_ok(ent, link=SDM_PARKING)
    reply = await ngsi.get(ent["id"], link=SDM_PARKING)
    assert reply.status == 200, reply
    urls = link_urls(reply.headers.get("Link"))
    assert len(urls) == 1, reply.headers
    assert urls[0] == SDM_PARKING or "/jsonldContexts/" in urls[0], reply.headers


async def test_ld_json_response_has_body_context(ngsi: Ngsi) -> None:
    """6.3.6 / 5.2.3: an application/ld+json response carries its @context in the body: the core @context when
    no user @context was given (ETSI TP 555_01)."""
    ent = entity("Building", name=prop("x"))
    await ngsi.create_ok(ent)
    reply = await ngsi.get(ent["id"], accept=LD_JSON)
    assert reply.status == 200 and reply.content_type == LD_JSON, reply
    body = reply.json
    assert "@context" in body, body
    assert any("ngsi-ld-core-context" in u for u in context_urls(body["@context"])), body["@context"]
    assert body["name"] == prop("x")


async def test_ld_json_response_names_the_user_context(ngsi: Ngsi) -> None:
    """6.3.6 / 5.2.3: with a user @context in the request, the ld+json response's @context contains it."""
    ent = entity("OffStreetParking", availableSpotNumber=prop(1))
    await ngsi.create_ok(ent, link=SDM_PARKING)
    body = (await ngsi.get(ent["id"], accept=LD_JSON, link=SDM_PARKING)).json
    assert SDM_PARKING in as_list(body["@context"]), body
    assert body["availableSpotNumber"] == prop(1)


# ---------------------------------------------------------------------------------------------- /jsonldContexts


async def add_hosted(ngsi: Ngsi, terms: dict[str, Any], tenant: str | None = None) -> tuple[str, str]:
    """POST a hosted @context; its Location (absolute URL) and local id."""
    reply = await ngsi.request("POST", "/jsonldContexts", body={"@context": terms}, tenant=tenant)
    assert reply.status == 201, reply
    assert reply.body == b"", reply
    location = reply.headers.get("Location")
    assert location, reply.headers
    url = urljoin(ngsi.root + "/", location)
    return url, url.rstrip("/").rsplit("/", 1)[-1]


def check_details(item: Any, kind: str) -> None:
    """5.13.3.5: the metadata of a stored @context: URL, localId, kind and its creation DateTime."""
    assert isinstance(item, dict), item
    assert isinstance(item.get("URL"), str) and item["URL"], item
    assert isinstance(item.get("localId"), str) and item["localId"], item
    assert item.get("kind") == kind, item
    created = item.get("createdAt", item.get("timestamp"))
    assert isinstance(created, str) and created.endswith("Z"), item


async def test_add_and_serve_hosted_context(ngsi: Ngsi) -> None:
    """5.13.2 / 5.13.4 / 6.30: POST /jsonldContexts stores a hosted @context (201 + Location, no body); GET of
    that resource serves {"@context": ...} as stored (application/json), with details=true its metadata (kind
    Hosted) (ETSI TPs 050_01, 053_01, 053_02)."""
    terms = {"fuel": "https://example.org/fuel", "Car": "https://example.org/Car"}
    url, local_id = await add_hosted(ngsi, terms)
    reply = await ngsi.request("GET", url, absolute=True)
    assert reply.status == 200 and reply.content_type == JSON, reply
    assert reply.json == {"@context": terms}
    details = await ngsi.request("GET", url, absolute=True, params={"details": "true"})
    assert details.status == 200, details
    check_details(details.json, "Hosted")
    assert details.json["localId"] == local_id or details.json["localId"].endswith(local_id)


async def test_list_contexts(ngsi: Ngsi) -> None:
    """5.13.3 / 6.30: GET /jsonldContexts lists the stored @contexts' URLs (details=true: their metadata;
    kind=Hosted: only hosted ones) (ETSI TPs 052_02, 052_05)."""
    url, local_id = await add_hosted(ngsi, {"fuel": "https://example.org/fuel"})
    listed = await ngsi.request("GET", "/jsonldContexts")
    assert listed.status == 200, listed
    assert isinstance(listed.json, list) and all(isinstance(u, str) for u in listed.json), listed
    assert any(u.rstrip("/").endswith(local_id) for u in listed.json), listed
    for params in ({"details": "true"}, {"details": "true", "kind": "Hosted"}):
        reply = await ngsi.request("GET", "/jsonldContexts", params=params)
        assert reply.status == 200, reply
        ours = [i for i in reply.json if i.get("URL", "").rstrip("/").endswith(local_id)]
        assert len(ours) == 1, reply
        check_details(ours[0], "Hosted")
        if "kind" in params:
            assert all(i.get("kind") == "Hosted" for i in reply.json), reply
    hosted_only = await ngsi.request("GET", "/jsonldContexts", params={"kind": "Hosted"})
    assert any(u.rstrip("/").endswith(local_id) for u in hosted_only.json), hosted_only
    cached = await ngsi.request("GET", "/jsonldContexts", params={"kind": "Cached"})
    assert cached.status == 200 and not any(u.rstrip("/").endswith(local_id) for u in cached.json), cached


async def test_used_remote_context_is_listed_as_cached(ngsi: Ngsi, context_server: ContextServer) -> None:
    """5.13.3 / 5.5.6: a remote @context the broker downloaded for a request is in its store with kind Cached
    and its original URL (ETSI TP 052_07)."""
    ctx = context_server.context({"fuel": "https://example.org/fuel"})
    await ngsi.create_ok(entity("Car", fuel=prop("diesel")), link=ctx)
    reply = await ngsi.request("GET", "/jsonldContexts", params={"details": "true", "kind": "Cached"})
    assert reply.status == 200, reply
    ours = [i for i in reply.json if i.get("URL") == ctx]
    assert len(ours) == 1, reply
    check_details(ours[0], "Cached")


async def test_hosted_context_as_entity_context(ngsi: Ngsi) -> None:
    """5.13.2 / 6.3.5: the URL of a hosted @context works as the @context of requests (Link header and body):
    its terms expand and compact (ETSI TP 050_04)."""
    url, _ = await add_hosted(ngsi, {"fuel": "https://example.org/fuel", "Car": "https://example.org/Car"})
    via_link = entity("Car", fuel=prop("diesel"))
    await ngsi.create_ok(via_link, link=url)
    via_body = entity("Car", fuel=prop("petrol"))
    reply = await ngsi.create(ld(via_body, [url, CORE_CONTEXT]), ctype=LD_JSON)
    assert reply.status == 201, reply
    for ent, fuel in ((via_link, "diesel"), (via_body, "petrol")):
        compact = await ngsi.fetch(ent["id"], link=url)
        assert compact["type"] == "Car" and compact["fuel"] == prop(fuel)
        expanded = await ngsi.fetch(ent["id"])
        assert expanded["type"] == "https://example.org/Car" and expanded["https://example.org/fuel"] == prop(fuel)


async def test_delete_hosted_context(ngsi: Ngsi) -> None:
    """5.13.5 / 6.30: DELETE of a stored @context answers 204; it is then gone (GET and DELETE: 404
    ResourceNotFound) (ETSI TPs 051_01, 051_02, 053_03)."""
    url, local_id = await add_hosted(ngsi, {"fuel": "https://example.org/fuel"})
    reply = await ngsi.request("DELETE", url, absolute=True)
    assert reply.status == 204, reply
    assert reply.body == b""
    problem(await ngsi.request("GET", url, absolute=True), 404, "ResourceNotFound")
    problem(await ngsi.request("DELETE", url, absolute=True), 404, "ResourceNotFound")
    listed = await ngsi.request("GET", "/jsonldContexts")
    assert not any(u.rstrip("/").endswith(local_id) for u in listed.json), listed


async def test_unknown_context_id_is_404(ngsi: Ngsi) -> None:
    """5.13.4.4 / 5.13.5.4: an @context id not in the store is ResourceNotFound (ETSI TPs 051_02, 053_03)."""
    problem(await ngsi.request("GET", "/jsonldContexts/wrong_id_context"), 404, "ResourceNotFound")
    problem(await ngsi.request("DELETE", "/jsonldContexts/" + uid("Nothing").rsplit(":", 1)[-1]), 404,
            "ResourceNotFound")


@pytest.mark.parametrize("params", [{"kind": "other"}, {"details": "other"}, {"details": "true", "kind": "other"}])
async def test_list_contexts_bad_parameters(ngsi: Ngsi, params: dict[str, str]) -> None:
    """5.13.3.4: ``kind`` is one of Hosted, Cached, ImplicitlyCreated and ``details`` a boolean; other values
    are BadRequestData (ETSI TP 052_04)."""
    problem(await ngsi.request("GET", "/jsonldContexts", params=params), 400, "BadRequestData")


@pytest.mark.parametrize("payload", [{"@context": 42}, {"@context": True}, {"@context": [{"a": "urn:a"}, 7]}],
                         ids=["number", "boolean", "array-with-number"])
async def test_add_invalid_context_is_400(ngsi: Ngsi, payload: Any) -> None:
    """5.13.2.4: an @context value that is not a valid JSON-LD context is BadRequestData and nothing is
    stored (no Location) (ETSI TP 5132_01)."""
    reply = await ngsi.request("POST", "/jsonldContexts", body=payload)
    problem(reply, 400, "BadRequestData")
    assert "Location" not in reply.headers


async def test_add_context_without_context_member_is_400(ngsi: Ngsi) -> None:
    """5.13.2.4: the payload is a JSON object with an @context member; without it the request is rejected
    (400; ETSI TP 050_02_01), and malformed JSON is InvalidRequest (ETSI TP 050_02_02)."""
    body = problem(await ngsi.request("POST", "/jsonldContexts", body={"fuel": "https://example.org/fuel"}), 400)
    assert body["type"] in (ERRORS + "InvalidRequest", ERRORS + "BadRequestData")
    problem(await ngsi.request("POST", "/jsonldContexts", data=b'{"@context": {', ctype=JSON), 400,
            "InvalidRequest")

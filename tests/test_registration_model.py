"""Registration payloads (``broker.registrations.model``) and query matching (``broker.registrations.match``),
no database: a valid registration reads back as written through its own @context, any JSON input is either
accepted or refused with an NgsiError (never another exception), and the matching rules of 5.10.2.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.jsonld import Context, ContextResolver
from broker.query.q import parse_q
from broker.query.evaluate import q_matcher
from broker.query.types import parse_types
from broker.registrations.match import RegistrationFilter
from broker.registrations.model import apply_patch, parse_registration, render_registration
from broker.temporal.params import parse_temporal

EX = "https://example.org/"
NOW = "2026-01-01T00:00:00Z"
USER_CONTEXT = {"Shop": EX + "Shop", "Van": EX + "Van", "stock": EX + "stock", "owner": EX + "owner",
                "level": EX + "level"}
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



@pytest.fixture
async def ctx(resolver: ContextResolver) -> Context:
    return await resolver.resolve(USER_CONTEXT)


names = st.sampled_from(["stock", "owner", "level", "colour", "speed"])
entity_infos = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["Shop", "Van", "Bus"]), st.lists(st.sampled_from(["Shop", "Van"]),
                                                                          min_size=1, max_size=2, unique=True))},
    optional={"id": st.sampled_from(["urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Van:A456"]),
              "idPattern": st.sampled_from([".*7$", "^urn:ngsi-ld:Van:"])})
infos = st.fixed_dictionaries({}, optional={
    "entities": st.lists(entity_infos, min_size=1, max_size=3),
    "propertyNames": st.lists(names, min_size=1, max_size=3, unique=True),
    "relationshipNames": st.lists(names, min_size=1, max_size=2, unique=True)}).filter(bool)
registrations = st.fixed_dictionaries(
    {"id": st.just("urn:ngsi-ld:ContextSourceRegistration:1"), "type": st.just("ContextSourceRegistration"),
     "information": st.lists(infos, min_size=1, max_size=3), "endpoint": st.just("http://csource.example.org")},
    optional={"registrationName": st.text(min_size=1).filter(str.strip),
              "expiresAt": st.sampled_from(["2035-11-29T14:53:15Z", "2040-01-01T00:00:00.123Z"]),
              "location": st.sampled_from([{"type": "Point", "coordinates": [-8.5, 41.2]},
                                           {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}]),
              "observationInterval": st.just({"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"}),
              "mode": st.sampled_from(["inclusive", "redirect"]),
              "operations": st.just(["retrieveOps", "queryEntity"]),
              "scope": st.sampled_from(["/Madrid", ["/Berlin/Mitte", "/Paris"]]),
              "level": st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=3))})
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=10)


@HYPOTHESIS
@given(reg=registrations)
async def test_a_registration_reads_back_as_written(ctx: Context, reg: dict[str, Any]) -> None:
    stored = parse_registration(reg, ctx, NOW)
    out = render_registration(stored, ctx, NOW, NOW)
    expected = {"mode": "inclusive", "operations": ["federationOps"], **reg}
    assert out == expected


@HYPOTHESIS
@given(body=st.dictionaries(st.sampled_from(["id", "type", "information", "endpoint", "expiresAt", "location",
                                             "mode", "operations", "management", "observationInterval",
                                             "contextSourceInfo", "scope", "refreshRate", "x"]),
                            json_values, max_size=6),
       fragment=st.dictionaries(st.sampled_from(["information", "endpoint", "expiresAt", "mode", "x"]),
                                json_values, max_size=3))
async def test_any_input_is_accepted_or_refused_with_an_ngsi_error(ctx: Context, body: dict[str, Any],
                                                                   fragment: dict[str, Any]) -> None:
    body.setdefault("type", "ContextSourceRegistration")
    try:
        stored = parse_registration(body, ctx, NOW)
    except NgsiError as exc:
        assert exc.status == 400
        return
    stored.setdefault("id", "urn:x:1")
    try:
        apply_patch(stored, fragment, ctx, NOW)
    except NgsiError as exc:
        assert exc.status == 400


async def test_patch_keeps_mandatory_members_and_removes_optional_ones(ctx: Context) -> None:
    stored = parse_registration({"id": "urn:x:1", "type": "ContextSourceRegistration", "endpoint": "http://a.b",
                                 "information": [{"entities": [{"type": "Shop"}]}], "description": "d"}, ctx, NOW)
    patched = apply_patch(stored, {"description": None, "endpoint": "http://c.d"}, ctx, NOW)
    assert "description" not in patched and patched["endpoint"] == "http://c.d"
    for member in ("information", "endpoint"):
        with pytest.raises(NgsiError):
            apply_patch(stored, {member: None}, ctx, NOW)


def _filter(ctx: Context, **params: Any) -> RegistrationFilter:
    found = RegistrationFilter(type_iri=ctx.expand_term)
    if "type" in params:
        found.types = parse_types(params["type"])
    found.ids = params.get("ids")
    found.id_pattern = params.get("id_pattern")
    if "attrs" in params:
        found.attrs = [ctx.expand_term(a) for a in params["attrs"]]
    if "q" in params:
        found.q = q_matcher(parse_q(params["q"]), ctx)
    if "timerel" in params:
        found.temporal = parse_temporal(params["timerel"], params["timeAt"], None, params.get("timeproperty"), None)
    return found


async def test_matching(ctx: Context) -> None:
    reg = parse_registration({
        "id": "urn:x:1", "type": "ContextSourceRegistration", "endpoint": "http://a.b", "level": 4,
        "information": [{"entities": [{"type": "Van", "id": "urn:ngsi-ld:Van:A456"}], "propertyNames": ["stock"]},
                        {"entities": [{"type": "Shop", "idPattern": ".*downtown$"}], "relationshipNames": ["owner"]}],
        "observationInterval": {"startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}}, ctx, NOW)

    def hit(**params: Any) -> bool:
        return _filter(ctx, **params).matches(reg, ctx, NOW, NOW)

    assert hit(type="Van") and hit(type="Shop") and not hit(type="Bus") and hit(type="Bus|Shop")
    assert hit(type="Van", ids=["urn:ngsi-ld:Van:A456"]) and not hit(type="Van", ids=["urn:ngsi-ld:Van:B"])
    assert hit(type="Shop", ids=["urn:ngsi-ld:Shop:downtown"]) and not hit(type="Shop", ids=["urn:ngsi-ld:Shop:1"])
    assert hit(type="Van", id_pattern="A4") and not hit(type="Van", id_pattern="^B")
    assert hit(type="Van", attrs=["stock"]) and not hit(type="Van", attrs=["owner"])
    assert hit(attrs=["owner"]) and not hit(attrs=["colour"])
    assert hit(q="level>3") and not hit(q="level>4") and hit(q='endpoint=="http://a.b"')
    assert hit(timerel="before", timeAt="2021-08-01T22:00:00Z")
    assert not hit(timerel="after", timeAt="2021-09-01T00:00:00Z")
    assert not hit(timerel="after", timeAt="2020-01-01T00:00:00Z", timeproperty="createdAt")  # no managementInterval

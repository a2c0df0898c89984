"""The write path's fast check of common attribute shapes (``broker.model.entity._already_internal``) decides
exactly as the general parser: same result for what it accepts, and what it does not prove valid goes to the
general path, which gives the same answer (or the same error) as if the fast path did not exist."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.jsonld import Context, ContextResolver
from broker.model import entity

MISSING = object()
# each member: valid values and invalid or non-canonical ones (which the fast path must not accept)
VALUES = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False), st.booleans(), st.text(max_size=8),
                   st.sampled_from(["urn:ngsi-ld:null", "", None, [1, 2], {"a": 1}, {"@value": 1}]))
GEOMETRIES = st.sampled_from([
    {"type": "Point", "coordinates": [-3.7, 40.4]}, {"type": "Point", "coordinates": [200, 0]},
    {"type": "Point", "coordinates": []}, {"type": "point", "coordinates": [1, 2]}, "POINT(1 2)",
    {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, {"type": "Feature"}, None])
URIS = st.sampled_from(["urn:ngsi-ld:Car:1", "https://e.org/a?b=c", "urn:ngsi-ld:null", "no-scheme", "",
                        "urn:a%20b", "urn:ä", "urn:x#y#z", 42, None, ["urn:a", "urn:b"], "@none"])
TIMES = st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00,5Z",
                         "2024-05-01T10:00:00+02:00", "2024-13-01T10:00:00Z", "yesterday", 1714557600, None])
UNITS = st.sampled_from(["KMH", "", "urn:ngsi-ld:null", 3, None])


def _member(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(MISSING), strategy)


@st.composite
def attributes(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(["speed", "location", "owner"]))
    kind = draw(st.sampled_from(["Property", "GeoProperty", "Relationship", "VocabProperty", "property"]))
    members: dict[str, Any] = {"type": kind}
    value = {"Property": VALUES, "GeoProperty": GEOMETRIES, "Relationship": URIS}.get(kind, VALUES)
    for key, strategy in (("value" if kind != "Relationship" else "object", value), ("observedAt", TIMES),
                          ("unitCode", UNITS), ("datasetId", URIS), ("object", URIS),
                          ("providedBy", st.just({"type": "Property", "value": 1}))):
        if key in members or draw(st.booleans()) is False and key != "value":
            continue
        drawn = draw(_member(strategy))
        if drawn is not MISSING:
            members[key] = drawn
    return name, members


@pytest.fixture(scope="module")
async def ctx(resolver: ContextResolver) -> Context:
    return await resolver.resolve(None, "")


def _parse(body: dict[str, Any], ctx: Context) -> Any:
    try:
        parsed = entity.parse_entity(body, ctx)
    except NgsiError as exc:
        return ("error", exc.error_type, exc.detail)
    return ("ok", parsed.attrs)


@settings(max_examples=400, deadline=None)
@given(attributes())
def test_fast_path_decides_as_the_general_parser(ctx: Context, attribute: tuple[str, dict[str, Any]]) -> None:
    name, raw = attribute
    body = {"id": "urn:ngsi-ld:T:1", "type": "T", name: raw}
    fast = _parse(copy.deepcopy(body), ctx)
    original = entity._already_internal
    entity._already_internal = lambda iri, raw, ctx: False  # type: ignore[assignment]
    try:
        general = _parse(copy.deepcopy(body), ctx)
    finally:
        entity._already_internal = original  # type: ignore[assignment]
    assert fast == general


def test_fast_path_takes_the_common_shapes(ctx: Context) -> None:
    """The shapes of an IoT agent's batch are proven valid as they are: stored without a copy."""
    speed = {"type": "Property", "value": 40.5, "unitCode": "KMH", "observedAt": "2024-05-01T10:00:00Z"}
    where = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-3.7, 40.4]}}
    owner = {"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "datasetId": "urn:ngsi-ld:d:1"}
    parsed = entity.parse_entity({"id": "urn:ngsi-ld:T:1", "type": "T", "speed": speed, "location": where,
                                  "owner": owner}, ctx)
    assert [inst for insts in parsed.attrs.values() for inst in insts] == [speed, where, owner]
    assert all(insts[0] is raw for insts, raw in zip(parsed.attrs.values(), (speed, where, owner)))


"""Pagination invariants of Query Entities (GS CIM 009 5.7.2, 4.12 / 6.3.10 paging, 5.5.9 count).

For any query and any page size: walking the pages with ``offset`` yields exactly the unpaged answer, in the
same order, with no duplicates or gaps; ``NGSILD-Results-Count`` is the size of that answer on every page;
``rel="next"`` is offered exactly while entities remain; ``limit=0&count=true`` answers only the count.
The data mixes single- and multi-type entities (a type query then reads two index branches), ties in the
``orderBy`` attribute, entities without it, and locations, so every way the broker pages is exercised.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .ngsi import Ngsi, geo, point, prop
from .test_common import DETERMINISTIC

TOTAL_A, TOTAL_BA = 37, 13


@pytest.fixture(scope="session")
async def paged(http: Any, broker_url: str) -> AsyncIterator[dict[str, Any]]:
    """A tenant of its own with 50 entities: ``A`` ones and ``[B, A]`` ones (A in the second position)."""
    ngsi = Ngsi(http, broker_url)
    tenant = f"paging{uuid.uuid4().hex[:10]}"
    entities = []
    for k in range(TOTAL_A + TOTAL_BA):
        ent: dict[str, Any] = {"id": f"urn:ngsi-ld:Paged:{(k * 7919) % 1000:04d}-{k}",
                               "type": "A" if k < TOTAL_A else ["B", "A"]}
        if k % 5:
            ent["n"] = prop(k % 6)  # many ties for orderBy
        ent["s"] = prop("even" if k % 2 == 0 else "odd")
        if k % 3 == 0:
            ent["location"] = geo(point(2.0 + k * 0.001, 48.0))
        entities.append(ent)
    reply = await ngsi.batch("create", entities, tenant=tenant)
    assert reply.status == 201, reply
    yield {"ngsi": ngsi, "tenant": tenant, "entities": entities}
    await ngsi.request("DELETE", "/entities", params={"type": "A,B"}, tenant=tenant)


FILTERS = st.fixed_dictionaries({"type": st.sampled_from(["A", "B", "A,B", "A;B", "(A|B);A"])}, optional={
    "q": st.sampled_from(["n>=2", "n==1..4", 's=="even"', "n!=3", "!n", "n<2|s==\"odd\""]),
    "attrs": st.sampled_from(["n", "s,location", "location"]),
    "orderBy": st.sampled_from(["n", "n;desc", "s,n"]),
    "georel": st.just("near;maxDistance==2000"),
    "idPattern": st.sampled_from(["^urn:ngsi-ld:Paged:0", "-1[0-9]$"]),
})


async def _get(paged: dict[str, Any], params: dict[str, str]) -> Any:
    reply = await paged["ngsi"].request("GET", "/entities", params=params, tenant=paged["tenant"])
    assert reply.status == 200, reply
    return reply


def _with_geo(params: dict[str, str]) -> dict[str, str]:
    if "georel" in params:
        params = {**params, "geometry": "Point", "coordinates": json.dumps([2.0, 48.0])}
    return params


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], **DETERMINISTIC)
@given(filters=FILTERS, limit=st.integers(1, 9))
async def test_pages_union_is_the_unpaged_answer(paged: dict[str, Any], filters: dict[str, str],
                                                  limit: int) -> None:
    params = _with_geo(filters)
    whole = [e["id"] for e in (await _get(paged, {**params, "limit": "1000", "count": "true"})).json]
    assert len(whole) == len(set(whole))
    counted = await _get(paged, {**params, "limit": "0", "count": "true"})
    assert counted.json == [] and counted.headers["NGSILD-Results-Count"] == str(len(whole))
    walked: list[str] = []
    offset = 0
    while True:
        reply = await _get(paged, {**params, "limit": str(limit), "offset": str(offset), "count": "true"})
        page = [e["id"] for e in reply.json]
        assert reply.headers["NGSILD-Results-Count"] == str(len(whole))
        assert len(page) <= limit
        has_next = 'rel="next"' in reply.headers.get("Link", "")
        assert has_next == (offset + len(page) < len(whole)), reply
        walked += page
        if not has_next:
            break
        offset += limit
    assert walked == whole


async def test_count_and_unpaged_answer_match_the_data(paged: dict[str, Any]) -> None:
    """The fixture itself: type A matches both kinds of entity, B only the multi-type ones."""
    for types, expected in (("A", TOTAL_A + TOTAL_BA), ("B", TOTAL_BA), ("A;B", TOTAL_BA)):
        reply = await _get(paged, {"type": types, "limit": "0", "count": "true"})
        assert reply.headers["NGSILD-Results-Count"] == str(expected)


@pytest.mark.parametrize("types", ["A", "B"])
@pytest.mark.parametrize("q, holds", [
    ("n>=2;n<=4", lambda n, s: n is not None and 2 <= n <= 4),
    ("n==1..3", lambda n, s: n is not None and 1 <= n <= 3),
    ("n>3", lambda n, s: n is not None and n > 3),
    ('s=="even"', lambda n, s: s == "even"),
    ('n==2|s=="odd"', lambda n, s: n == 2 or s == "odd"),
])
async def test_indexed_q_finds_every_type_position(paged: dict[str, Any], types: str, q: str,
                                                   holds: Any) -> None:
    """Index-backed ``q`` terms (planned as one branch with the type test, ``where_branches``) still find the
    entities that have the type in a later position, and the count agrees."""
    expected = sorted(e["id"] for e in paged["entities"]
                      if types in ([e["type"]] if isinstance(e["type"], str) else e["type"])
                      and holds(e.get("n", {}).get("value"), e["s"]["value"]))
    assert expected
    reply = await _get(paged, {"type": types, "q": q, "limit": "1000", "count": "true"})
    assert sorted(e["id"] for e in reply.json) == expected
    assert reply.headers["NGSILD-Results-Count"] == str(len(expected))
    first = await _get(paged, {"type": types, "q": q, "limit": "3", "offset": "1"})
    assert [e["id"] for e in first.json] == sorted(expected)[1:4]

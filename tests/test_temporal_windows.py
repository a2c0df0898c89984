"""Instance reads in SQL (``broker.temporal.store.instances``) equal a plain Python selection over the same
instances: hypothesis draws instances of two attributes (times with repeats, datasetIds, deletion markers),
a window (before / after / between, or none), lastN and the limit; and ``assemble._cut`` keeps exactly the
instances up to one moment."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.temporal import assemble, store
from broker.temporal.params import TemporalQuery

from geo_support import Db

SCHEMA = "t_windows_test"
ATTRS = ("https://x.org/speed", "https://x.org/fuel")
ORIGIN = datetime(2021, 3, 1, tzinfo=timezone.utc)

# (attribute, minute, datasetId, deletion marker?)
instance_st = st.tuples(st.sampled_from(ATTRS), st.integers(0, 50), st.sampled_from([None, "urn:ngsi-ld:D:1"]),
                        st.sampled_from([False, False, False, True]))


@pytest.fixture(scope="module")
def hist(db: Db) -> Db:
    db.tenant_schema(SCHEMA)
    return db


def at(minute: int) -> datetime:
    return ORIGIN + timedelta(minutes=minute)


@given(st.lists(instance_st, min_size=1, max_size=30),
       st.sampled_from([None, "before", "after", "between"]), st.integers(0, 50), st.integers(1, 20),
       st.one_of(st.none(), st.integers(1, 8)), st.integers(1, 12),
       st.sampled_from([None, [None], ["urn:ngsi-ld:D:1"], [None, "urn:ngsi-ld:D:1"]]))
@settings(max_examples=80, deadline=None)
def test_sql_window_equals_python(hist: Db, points: list[tuple[str, int, str | None, bool]], timerel: str | None,
                                  start: int, span: int, last_n: int | None, limit: int,
                                  datasets: list[str | None] | None) -> None:
    entity_id = f"urn:ngsi-ld:T:{uuid.uuid4()}"
    rows = [(entity_id, attr, at(m), dataset, orjson.dumps({"type": "Property", "value": m}).decode(), deleted)
            for attr, m, dataset, deleted in points]
    hist.run(hist.conn.executemany(
        f"INSERT INTO {SCHEMA}.attr_instances (entity_id, attr, dataset_id, at, observed_at, created_at, "
        f"modified_at, deleted_at, num, inst) VALUES ($1, $2, $4, $3, $3, now(), now(), "
        f"CASE WHEN $6 THEN now() END, NULL, $5::text::jsonb)", rows))
    lo, hi = {None: (None, None), "before": (None, start), "after": (start, None),
              "between": (start, start + span)}[timerel]
    query = TemporalQuery(timerel=timerel, time_at=at(lo if lo is not None else hi) if timerel else None,
                          end_time_at=at(hi) if timerel == "between" else None, last_n=last_n)
    fetch = min(last_n, limit) if last_n else limit
    got = hist.run(store.instances(hist.conn, SCHEMA, [entity_id], None, query, fetch, datasets))
    for attr in ATTRS:
        inside = sorted((m, row_key) for row_key, (a, m, dataset, deleted) in enumerate(points)
                        if a == attr and not deleted and (lo is None or m >= lo) and (hi is None or m < hi)
                        and (datasets is None or dataset in datasets))
        minutes = [m for m, _ in inside]
        expected = minutes[-fetch:] if last_n else minutes[:fetch]
        mine = sorted(int((r["t"] - ORIGIN).total_seconds() // 60) for r in got if r["attr"] == attr)
        assert mine == sorted(expected), attr


@given(st.dictionaries(st.sampled_from(ATTRS), st.lists(st.integers(0, 40), min_size=0, max_size=15), min_size=1),
       st.integers(1, 20), st.booleans())
@settings(max_examples=100, deadline=None)
def test_cut_keeps_everything_up_to_one_moment(groups: dict[str, list[int]], limit: int, newest: bool) -> None:
    """The page holds every instance on the kept side of one moment and nothing beyond it; it is cut only
    when there are more instances than the limit, and never holds fewer than the limit then."""
    grouped: dict[tuple[str, str], list[Any]] = {
        ("e", attr): [{"t": at(m)} for m in sorted(minutes)] for attr, minutes in groups.items()}
    before = {key: [r["t"] for r in recs] for key, recs in grouped.items()}
    total = sum(len(v) for v in before.values())
    cut = assemble._cut(grouped, TemporalQuery(last_n=limit if newest else None), limit)
    if total <= limit:
        assert cut is None and {k: [r["t"] for r in v] for k, v in grouped.items()} == before
        return
    assert cut is not None
    kept = sum(len(v) for v in grouped.values())
    assert kept >= limit
    for key, times in before.items():
        expected = [t for t in times if (t >= cut.last if newest else t <= cut.last)]
        assert [r["t"] for r in grouped[key]] == expected

"""Aggregation in SQL (``broker.temporal.store.aggregates``) equals a plain Python computation over the same
instances: hypothesis draws the instances (times, values, repeats), the period and the window."""

from __future__ import annotations

import calendar
import math
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.temporal import store
from broker.temporal.params import AGGREGATES, Duration, TemporalQuery

from geo_support import Db

SCHEMA = "t_aggregation_test"
ATTR = "https://x.org/speed"
ORIGIN = datetime(2021, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def hist(db: Db) -> Db:
    db.tenant_schema(SCHEMA)
    return db


def python_aggregates(points: list[tuple[int, float]], period: int | None, timerel: str | None,
                      start: int | None, end: int | None) -> list[tuple[int, dict[str, Any]]]:
    """(period start minute, {method: value}) for the instances at (minute, value) in the window [start, end)
    (either side open); periods run from the window's start, or from the first instance when it has none."""
    inside = sorted((m, v) for m, v in points if (start is None or m >= start) and (end is None or m < end))
    if not inside:
        return []
    lo = start if start is not None else inside[0][0]
    groups: dict[int, list[float]] = {}
    for m, v in inside:
        groups.setdefault(lo if period is None else lo + (m - lo) // period * period, []).append(v)
    return [(first, _methods(vs)) for first, vs in sorted(groups.items())]


points_st = st.lists(st.tuples(st.integers(0, 600), st.integers(-50, 50).map(float)), min_size=1, max_size=40)


@given(points_st, st.sampled_from([None, 1, 7, 60, 90]), st.one_of(st.none(), st.integers(0, 300)),
       st.one_of(st.none(), st.integers(301, 700)))
@settings(max_examples=60, deadline=None)
def test_sql_aggregation_equals_python(hist: Db, points: list[tuple[int, float]], period: int | None,
                                       start: int | None, end: int | None) -> None:
    entity_id = f"urn:ngsi-ld:T:{uuid.uuid4()}"
    rows = [(entity_id, ATTR, ORIGIN + timedelta(minutes=m), v, orjson.dumps({"type": "Property", "value": v}).decode())
            for m, v in points]
    hist.run(hist.conn.executemany(
        f"INSERT INTO {SCHEMA}.attr_instances (entity_id, attr, at, observed_at, created_at, modified_at, num, inst) "
        f"VALUES ($1, $2, $3, $3, now(), now(), $4, $5::text::jsonb)", rows))
    timerel, time_at, end_at = None, None, None
    if start is not None and end is not None:
        timerel, time_at, end_at = "between", ORIGIN + timedelta(minutes=start), ORIGIN + timedelta(minutes=end)
    elif start is not None:
        timerel, time_at = "after", ORIGIN + timedelta(minutes=start)
    elif end is not None:
        timerel, time_at = "before", ORIGIN + timedelta(minutes=end)
    query = TemporalQuery(timerel=timerel, time_at=time_at, end_time_at=end_at, aggr_methods=AGGREGATES,
                          aggr_period=Duration(seconds=period * 60) if period else Duration())
    got = hist.run(store.aggregates(hist.conn, SCHEMA, [entity_id], None, query))
    expected = python_aggregates(points, period, timerel, start, end)
    assert [int((r["ps"] - ORIGIN).total_seconds() // 60) for r in got] == [first for first, _ in expected]
    check_values(got, [values for _, values in expected], AGGREGATES)


def check_values(got: list[Any], expected: list[dict[str, Any]], methods: tuple[str, ...]) -> None:
    assert len(got) == len(expected)
    for row, values in zip(got, expected):
        assert row["kind"] == "Property"
        for method in methods:
            column = store.METHOD_COLUMNS[method]
            if method in ("totalCount", "distinctCount"):
                assert row[column] == values[method], method
            else:
                assert float(row[column]) == pytest.approx(values[method], abs=1e-6), method
        assert {store.METHOD_COLUMNS[m] for m in methods} <= set(row.keys())
        assert not {store.METHOD_COLUMNS[m] for m in AGGREGATES if m not in methods} & set(row.keys())


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole months, the day clamped to the month's last (as PostgreSQL adds months)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@given(st.lists(st.tuples(st.integers(0, 400 * 24), st.integers(-50, 50).map(float)), min_size=1, max_size=40),
       st.integers(1, 3), st.one_of(st.none(), st.integers(0, 60 * 24)),
       st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=4, unique=True))
@settings(max_examples=40, deadline=None)
def test_calendar_periods_and_chosen_methods(hist: Db, points: list[tuple[int, float]], months: int,
                                             start: int | None, methods: list[str]) -> None:
    """``P<n>M`` periods (months differ in length; the k-th starts at origin + k months, clamped to the month's
    end) start at the window's start or at the first instance; the answer holds the methods asked for only."""
    entity_id = f"urn:ngsi-ld:T:{uuid.uuid4()}"
    origin = datetime(2021, 1, 28, 6, tzinfo=timezone.utc)
    rows = [(entity_id, ATTR, origin + timedelta(hours=h), v, orjson.dumps({"type": "Property", "value": v}).decode())
            for h, v in points]
    hist.run(hist.conn.executemany(
        f"INSERT INTO {SCHEMA}.attr_instances (entity_id, attr, at, observed_at, created_at, modified_at, num, inst) "
        f"VALUES ($1, $2, $3, $3, now(), now(), $4, $5::text::jsonb)", rows))
    time_at = origin + timedelta(hours=start) if start is not None else None
    query = TemporalQuery(timerel="after" if time_at else None, time_at=time_at, aggr_methods=tuple(methods),
                          aggr_period=Duration(months=months))
    got = hist.run(store.aggregates(hist.conn, SCHEMA, [entity_id], None, query))
    inside = sorted((origin + timedelta(hours=h), v) for h, v in points if start is None or h >= start)
    lo = time_at or inside[0][0]
    groups: dict[datetime, list[float]] = {}
    for moment, v in inside:
        k = 0
        while add_months(lo, (k + 1) * months) <= moment:
            k += 1
        groups.setdefault(k, []).append(v)
    assert [r["ps"] for r in got] == [add_months(lo, k * months) for k in sorted(groups)]
    assert [r["pe"] for r in got] == [add_months(lo, (k + 1) * months) for k in sorted(groups)]
    check_values(got, [_methods(vs) for _, vs in sorted(groups.items())], tuple(methods))


def _methods(vs: list[float]) -> dict[str, Any]:
    return {"totalCount": len(vs), "distinctCount": len(set(vs)), "sum": math.fsum(vs), "avg": statistics.fmean(vs),
            "min": min(vs), "max": max(vs), "stddev": statistics.pstdev(vs), "sumsq": math.fsum(v * v for v in vs)}

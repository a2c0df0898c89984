"""The temporal query (GS CIM 009 4.11 TemporalQuery, 5.7.3 / 5.7.4 parameters), validated.

``timerel`` (before, after, between) with ``timeAt`` / ``endTimeAt``, ``timeproperty`` (observedAt by
default, createdAt, modifiedAt, deletedAt), ``lastN``, and for ``options=aggregatedValues`` the
``aggrMethods`` and ``aggrPeriodDuration`` (an ISO 8601 duration; none or zero: one period spanning the
window). Bad values are 400 BadRequestData; a query string and a POST Query body's ``temporalQ`` /
``aggrMethods`` members go through the same checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import bad_request
from ..model import values

TIMERELS = ("before", "after", "between")
# the column a time property is read from (observedAt: ``at``, the partition key, equal to observedAt where set)
TIME_COLUMNS = {"observedAt": "at", "createdAt": "created_at", "modifiedAt": "modified_at",
                "deletedAt": "deleted_at"}
AGGREGATES = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")

_DURATION = re.compile(r"P(?!$)(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?"
                       r"(?:(\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?"
                       r"(?:(\d+(?:[.,]\d+)?)S)?)?")


@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration: calendar months apart from an exact part (years are 12 months, weeks 7 days)."""

    months: int = 0
    seconds: float = 0.0

    @property
    def zero(self) -> bool:
        return self.months == 0 and self.seconds == 0

    def sql_interval(self) -> str:
        """The PostgreSQL interval text (a bind parameter's value, cast with ``::interval``)."""
        return f"{self.months} months {self.seconds} seconds"


def parse_duration(text: str) -> Duration:
    m = _DURATION.fullmatch(text or "")
    if m is None:
        raise bad_request(f"aggrPeriodDuration {text!r} is not an ISO 8601 duration (e.g. PT1H, P1D, P1M)")
    y, mo, w, d, h, mi, s = (float(g.replace(",", ".")) if g else 0.0 for g in m.groups())
    if y != int(y) or mo != int(mo):
        raise bad_request(f"aggrPeriodDuration {text!r}: years and months must be whole numbers")
    return Duration(int(y) * 12 + int(mo), ((w * 7 + d) * 24 + h) * 3600 + mi * 60 + s)


@dataclass(frozen=True)
class TemporalQuery:
    timerel: str | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None
    aggr_methods: tuple[str, ...] = ()
    aggr_period: Duration = Duration()

    @property
    def column(self) -> str:
        return TIME_COLUMNS[self.timeproperty]


def parse_temporal(timerel: Any, time_at: Any, end_time_at: Any, timeproperty: Any, last_n: Any,
                   aggr_methods: Any = None, aggr_period: Any = None, *, aggregated: bool = False) -> TemporalQuery:
    if timeproperty in (None, ""):
        timeproperty = "observedAt"
    if timeproperty not in TIME_COLUMNS:
        raise bad_request(f"timeproperty must be one of {', '.join(TIME_COLUMNS)}, not {timeproperty!r}")
    start = end = None
    if timerel not in (None, ""):
        if timerel not in TIMERELS:
            raise bad_request(f"timerel must be one of before, after, between, not {timerel!r}")
        if time_at in (None, ""):
            raise bad_request(f"timerel={timerel} needs timeAt")
        start = values.to_datetime(values.parse_datetime(time_at, "timeAt"))
        if timerel == "between":
            if end_time_at in (None, ""):
                raise bad_request("timerel=between needs endTimeAt")
            end = values.to_datetime(values.parse_datetime(end_time_at, "endTimeAt"))
            if end <= start:
                raise bad_request("endTimeAt must be after timeAt")
        timerel = str(timerel)
    elif time_at not in (None, "") or end_time_at not in (None, ""):
        raise bad_request("timeAt and endTimeAt need timerel")
    else:
        timerel = None
    n = None
    if last_n not in (None, ""):
        text = str(last_n)
        if isinstance(last_n, bool) or not text.isdigit() or int(text) < 1:
            raise bad_request(f"lastN must be a whole number above 0, not {last_n!r}")
        n = int(text)
    methods: tuple[str, ...] = ()
    period = Duration()
    if aggregated:
        methods = _methods(aggr_methods)
        if aggr_period not in (None, ""):
            if not isinstance(aggr_period, str):
                raise bad_request("aggrPeriodDuration must be an ISO 8601 duration string")
            period = parse_duration(aggr_period)
    return TemporalQuery(timerel, start, end, str(timeproperty), n, methods, period)


def _methods(raw: Any) -> tuple[str, ...]:
    if raw in (None, "", []):
        raise bad_request("options=aggregatedValues needs aggrMethods (" + ", ".join(AGGREGATES) + ")")
    items = raw if isinstance(raw, list) else str(raw).split(",")
    found: list[str] = []
    for item in items:
        if not isinstance(item, str) or item.strip() not in AGGREGATES:
            raise bad_request(f"aggrMethods: unknown method {item!r} (supported: {', '.join(AGGREGATES)})")
        if item.strip() not in found:
            found.append(item.strip())
    return tuple(found)


def window(query: TemporalQuery) -> tuple[datetime | None, datetime | None]:
    """The [start, end) of the query's time window (None: open)."""
    if query.timerel == "before":
        return None, query.time_at
    if query.timerel == "after":
        return query.time_at, None
    if query.timerel == "between":
        return query.time_at, query.end_time_at
    return None, None


"""The history recorder's statement (rows recorded at each row's own time, ``broker.temporal.recorder``) stores
the same rows as the temporal API's (one write's rows at its time, ``record.insert_select``)."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import count
from typing import Any

import asyncpg
import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from broker.store.tenants import Tenants
from broker.temporal import record
from broker.temporal.recorder import _Statements

NOW = "2026-11-21T10:00:00.123456Z"
NOW_DT = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=timezone.utc)
_ids = count()

# what a JSON body can hold and jsonb store: no lone surrogates, no NUL (the API rejects both)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
scalars = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), texts, st.none())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=6)
observed = st.sampled_from(["2024-05-01T10:00:00Z", "2021-01-01T00:00:00.5Z", "2026-11-21T10:00:00.123456Z"])


@st.composite
def instances(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty"]))
    inst: dict[str, Any] = {"type": kind}
    if kind == "Relationship":
        inst["object"] = "urn:ngsi-ld:T:" + draw(st.text("abc", min_size=1, max_size=4))
    elif kind == "GeoProperty":
        inst["value"] = {"type": "Point", "coordinates": [draw(st.floats(-180, 180)), draw(st.floats(-90, 90))]}
    elif kind == "LanguageProperty":
        inst["languageMap"] = {"en": draw(texts)}
    else:
        inst["value"] = draw(values)
    if draw(st.booleans()):
        inst["observedAt"] = draw(observed)
    if draw(st.booleans()):
        inst["unitCode"] = "KMH"
    if draw(st.booleans()):  # broker timestamps: left out of the history's instance
        inst["createdAt"] = "2020-01-01T00:00:00Z"
        inst["modifiedAt"] = NOW
    return inst


@st.composite
def documents(draw: Any) -> dict[str, list[dict[str, Any]]]:
    names = draw(st.lists(st.sampled_from(["https://e.org/a", "https://e.org/b", "https://e.org/speed"]),
                          min_size=1, max_size=3, unique=True))
    doc = {}
    for name in names:
        insts = draw(st.lists(instances(), min_size=1, max_size=3))
        for k, inst in enumerate(insts[1:]):
            inst["datasetId"] = f"urn:ngsi-ld:Dataset:{k}"
        doc[name] = insts
    return doc


async def _rows(pool: asyncpg.Pool, schema: str, entity_id: str) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(f"SELECT attr, dataset_id, at, observed_at, created_at, modified_at, deleted_at, num, "
                            f"inst::text AS inst FROM {schema}.attr_instances WHERE entity_id = $1", entity_id)
    return sorted((r["attr"], r["dataset_id"] or "", r["at"], r["observed_at"], r["created_at"], r["modified_at"],
                   r["deleted_at"], r["num"], orjson.loads(r["inst"])) for r in rows)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents())
async def test_recorder_rows_equal_those_of_a_temporal_write(pool: asyncpg.Pool, doc: dict[str, Any]) -> None:
    schema = await Tenants(pool).schema("history-rows", create=True)
    written_id, recorded_id = f"urn:ngsi-ld:T:w{next(_ids)}", f"urn:ngsi-ld:T:r{next(_ids)}"
    rows = record.HistoryRows()
    rows.add_written(written_id, doc, NOW, created=True)
    await pool.execute(record.insert_select(schema, 1, 8), *rows.params(), NOW_DT)
    recorded = record.HistoryRows()
    recorded.add_written(recorded_id, doc, NOW, created=True)
    await pool.execute(_Statements(schema).insert, *recorded.params(), [NOW] * len(recorded))
    written_rows, recorded_rows = await _rows(pool, schema, written_id), await _rows(pool, schema, recorded_id)
    assert len(recorded_rows) == sum(len(insts) for insts in doc.values())
    assert recorded_rows == written_rows

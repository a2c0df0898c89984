"""History rows: what a write's change adds to the temporal history.

The history recorder (``broker.temporal.recorder``) builds them from the change log's entries; the temporal
API's writes, which carry their own instances, build and record them in their own statement.

A write's instances are those its ``modifiedAt`` says it wrote (``broker.model.operations.stamp`` sets it to
the write's timestamp; a new entity's instances carry none and default to its creation): the datasetIds a
partial update did not touch are not recorded again. Deleted attributes and datasetIds get a deletion marker
row (``deleted_at`` set, the instance reduced to its type), which ``timeproperty=deletedAt`` queries return.
The scope has a history too (4.5.6): a Property instance of ``SCOPE_IRI`` holding the scopes, observed when
the write set them, or a deletion marker when they were removed.

Rows travel as parallel arrays into one ``INSERT … SELECT FROM unnest(…)`` (one statement however many
instances; PostgreSQL parses each instance's JSON once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..model.entity import SCOPE_IRI
from .tables import check_schema_name


def numeric(value: Any) -> float | None:
    """The number a Property value aggregates as (booleans and non-finite or huge numbers do not)."""
    if type(value) is int or type(value) is float:
        try:
            f = float(value)
        except OverflowError:
            return None
        return f if f - f == 0 else None
    return None


def scopes_changed(old: list[str] | None, new: list[str] | None) -> bool:
    return (old or None) != (new or None)


@dataclass
class HistoryRows:
    entity: list[str] = field(default_factory=list)
    attr: list[str] = field(default_factory=list)
    dataset: list[str | None] = field(default_factory=list)
    observed: list[str | None] = field(default_factory=list)
    num: list[float | None] = field(default_factory=list)
    # JSON text, sent as text[] and cast in SQL: asyncpg encodes a text element in C, a jsonb one through the
    # pool's Python codec (measured 2.3 vs 12.2 ms for 6,000 instances, a 1,000-entity batch)
    inst: list[str] = field(default_factory=list)
    deleted: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entity)

    def add(self, entity_id: str, iri: str, inst: dict[str, Any], *, deleted: bool = False) -> None:
        self.entity.append(entity_id)
        self.attr.append(iri)
        self.dataset.append(inst.get("datasetId"))
        if deleted:
            self.observed.append(None)
            self.num.append(None)
            self.inst.append(orjson.dumps({"type": inst.get("type", "Property")}).decode())
        else:
            self.observed.append(inst.get("observedAt"))
            self.num.append(numeric(inst.get("value")) if inst.get("type") == "Property" else None)
            self.inst.append(orjson.dumps(inst).decode())  # its createdAt/modifiedAt are dropped in SQL
        self.deleted.append(deleted)

    def add_scopes(self, entity_id: str, old: list[str] | None, new: list[str] | None, now: str) -> None:
        """The scope's instance when a write changed it (4.5.6: observedAt is the change's time)."""
        if not scopes_changed(old, new):
            return
        if new:
            self.add(entity_id, SCOPE_IRI, {"type": "Property", "value": list(new), "observedAt": now})
        else:
            self.add(entity_id, SCOPE_IRI, {"type": "Property"}, deleted=True)

    def with_scopes(self, entity_id: str, old: list[str] | None, new: list[str] | None, now: str) -> HistoryRows:
        """A copy holding these rows and the scope's change (the rows given by a caller stay as they are);
        these rows themselves when the scope did not change or they hold its instances already (a temporal
        write of the scope): most writes leave the scope alone and copy nothing."""
        if not scopes_changed(old, new) or SCOPE_IRI in self.attr:
            return self
        out = HistoryRows(*(list(column) for column in self.params()))
        out.add_scopes(entity_id, old, new, now)
        return out

    def add_written(self, entity_id: str, attrs: dict[str, list[dict[str, Any]]], now: str, *,
                    created: bool = False) -> None:
        """The instances of ``attrs`` that the write at ``now`` wrote (all of them for a new entity)."""
        for iri, instances in attrs.items():
            for inst in instances:
                if inst.get("modifiedAt", now if created else None) == now:
                    self.add(entity_id, iri, inst)

    def add_change(self, entity_id: str, old: dict[str, list[dict[str, Any]]] | None,
                   written: dict[str, list[dict[str, Any]]], removed: list[str], now: str, *,
                   created: bool = False) -> None:
        """The rows of one write: the instances of ``written`` it stamped, and deletion markers for what it
        removed from ``old`` (the previous attributes; None for a new entity)."""
        self.add_written(entity_id, written, now, created=created)
        if old is not None:
            self.add_removed(entity_id, old, written, removed)

    def add_removed(self, entity_id: str, old: dict[str, list[dict[str, Any]]],
                    new: dict[str, list[dict[str, Any]]], removed: list[str]) -> None:
        """Deletion markers: attributes removed, and datasetIds that left an attribute the write kept."""
        for iri in removed:
            for inst in old.get(iri, ()):
                self.add(entity_id, iri, inst, deleted=True)
        for iri, instances in new.items():
            before = old.get(iri)
            if before and len(before) > len(instances):
                kept = {i.get("datasetId") for i in instances}
                for inst in before:
                    if inst.get("datasetId") not in kept:
                        self.add(entity_id, iri, inst, deleted=True)

    def params(self) -> tuple[Any, ...]:
        return self.entity, self.attr, self.dataset, self.observed, self.num, self.inst, self.deleted


def insert_select(schema: str, first: int, now_param: int | None = None) -> str:
    """``INSERT INTO attr_instances SELECT …`` over the ``HistoryRows.params()`` at ``$first`` onwards
    (seven parameters), recorded at ``$now_param``, or without it each row at its own time (an eighth array of
    ISO 8601 texts: the history recorder's rows come from several writes); a caller may append a WHERE clause.
    The times are parsed once per row (array casts), not at each of their uses."""
    check_schema_name(schema)
    p = [f"${first + k}" for k in range(8)]
    now, times, columns = (f"${now_param}::timestamptz", "", "") if now_param is not None else \
        ("u.t", f", {p[7]}::text[]::timestamptz[]", ", t")
    return (f"INSERT INTO {schema}.attr_instances (entity_id, attr, dataset_id, at, observed_at, created_at, "
            f"modified_at, deleted_at, num, inst) "
            f"SELECT u.e, u.a, u.d, coalesce(u.o, {now}), u.o, {now}, {now}, CASE WHEN u.x THEN {now} END, u.n, "
            f"u.i::jsonb - '{{createdAt,modifiedAt}}'::text[] FROM unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::text[], {p[3]}::text[]::timestamptz[], "
            f"{p[4]}::float8[], {p[5]}::text[], {p[6]}::boolean[]{times}) AS u(e, a, d, o, n, i, x{columns})")


def upsert_entities_held(schema: str, rows: str, now: str) -> str:
    """The ``temporal_entities`` rows of written entities, from a FROM item ``rows`` with columns ``id``,
    ``types`` and ``scopes``, recorded at ``now``: types and scopes follow the entity; a deleted one comes back."""
    check_schema_name(schema)
    return (f"INSERT INTO {schema}.temporal_entities AS t (id, types, scopes, created_at) "
            f"SELECT r.id, r.types, r.scopes, {now} FROM {rows} r ON CONFLICT (id) DO UPDATE SET "
            f"types = excluded.types, scopes = excluded.scopes, deleted_at = NULL "
            f"WHERE (t.types, t.scopes, t.deleted_at) IS DISTINCT FROM (excluded.types, excluded.scopes, NULL)")


def replace_observed(schema: str, first: int) -> str:
    """``DELETE`` the recorded instances that the rows at ``$first`` (``HistoryRows.params()``) observed at the
    same moment (same entity, attribute, datasetId, observedAt): a temporal write re-sending an observation
    replaces it (5.6.11) instead of duplicating it."""
    check_schema_name(schema)
    p = [f"${first + k}" for k in range(4)]
    return (f"DELETE FROM {schema}.attr_instances h USING unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::text[], "
            f"{p[3]}::text[]) AS u(e, a, d, o) WHERE u.o IS NOT NULL AND h.entity_id = u.e AND h.attr = u.a "
            f"AND h.at = u.o::timestamptz AND h.observed_at = u.o::timestamptz AND h.dataset_id IS NOT DISTINCT FROM u.d "
            f"AND h.deleted_at IS NULL")

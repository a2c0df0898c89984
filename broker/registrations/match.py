"""Which registrations a Query Context Source Registrations request selects (5.10.2, 5.12), in Python.

A registration matches when every filter given matches:

* entity filters (``type``, ``id``, ``idPattern``, ``attrs``) hold for ONE of its RegistrationInfo: one of its
  EntityInfo has a wanted type (a type expression, 4.17) and could be a wanted entity (its ``id`` is wanted
  or matches a wanted ``idPattern``; its ``idPattern`` matches a wanted id, or may overlap a wanted pattern;
  neither: any entity of the type), and it registers one of the wanted attributes (a RegistrationInfo
  without names registers them all; one without entities registers every entity);
* ``q`` and ``csf`` on the registration's own members: the Context Source Properties and members such as
  ``endpoint`` (a Property-shaped member is compared by its ``value``);
* ``scopeQ`` on its ``scope``;
* a temporal query on ``observationInterval`` (``timeproperty`` observedAt) or ``managementInterval`` (createdAt,
  modifiedAt): the interval overlaps the query's window; a registration without that interval does not match.

The geo-query is decided in SQL (``broker.registrations.store``), with the entity geo-query's relations.
A registration matches as a whole and is returned whole (every RegistrationInfo, not only those that matched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from ..jsonld import Context
from ..model import values
from ..query.evaluate import EntityView
from ..query.types import TypeExpr, type_holds
from ..temporal.params import TemporalQuery, window

CORE_MEMBERS = ("registrationName", "description", "endpoint", "tenant", "mode", "operations", "expiresAt",
                "refreshRate", "scope")
INTERVALS = {"observedAt": "observationInterval", "createdAt": "managementInterval",
             "modifiedAt": "managementInterval", "deletedAt": "managementInterval"}


@dataclass
class RegistrationFilter:
    types: TypeExpr | None = None
    type_iri: Callable[[str], str] = str  # a type name of ``types`` -> its IRI
    ids: list[str] | None = None
    id_pattern: str | None = None
    attrs: list[str] | None = None       # IRIs
    q: Callable[[EntityView], bool] | None = None
    csf: Callable[[EntityView], bool] | None = None
    scope: Callable[[list[str] | None], bool] | None = None
    temporal: TemporalQuery | None = None

    def matches(self, reg: dict[str, Any], ctx: Context, created: str, modified: str) -> bool:
        if not any(self._info_matches(info) for info in reg["information"]):
            return False
        if self.q is not None or self.csf is not None:
            view = _view(reg, ctx, created, modified)
            if (self.q is not None and not self.q(view)) or (self.csf is not None and not self.csf(view)):
                return False
        if self.scope is not None:
            scope = reg.get("scope")
            if not self.scope([scope] if isinstance(scope, str) else scope):
                return False
        return self.temporal is None or _in_time(reg, self.temporal)

    def _info_matches(self, info: dict[str, Any]) -> bool:
        if self.attrs is not None:
            names = info.get("propertyNames", []) + info.get("relationshipNames", [])
            if names and not set(names) & set(self.attrs):
                return False
        if self.types is None and self.ids is None and self.id_pattern is None:
            return True
        entities = info.get("entities")
        return entities is None or any(self._entity_matches(e) for e in entities)

    def _entity_matches(self, entity: dict[str, Any]) -> bool:
        types = entity["type"]
        if self.types is not None and not type_holds(
                self.types, set(types if isinstance(types, list) else [types]), self.type_iri):
            return False
        own_id, own_pattern = entity.get("id"), entity.get("idPattern")
        if self.ids is not None:
            if own_id is not None:
                if own_id not in self.ids:
                    return False
            elif own_pattern is not None and not any(_search(own_pattern, i) for i in self.ids):
                return False
        if self.id_pattern is not None and own_id is not None and not _search(self.id_pattern, own_id):
            return False
        return True  # an EntityInfo pattern against a wanted pattern: they may overlap


def _search(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None  # patterns are checked when written (values.check_regex)


def _view(reg: dict[str, Any], ctx: Context, created: str, modified: str) -> EntityView:
    """The registration's members as Properties of an entity, under the IRIs ``q`` names expand to."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, value in reg.items():
        if ":" in name:
            iri = name
        elif name in CORE_MEMBERS:
            iri = ctx.expand_term(name)
        else:
            continue
        if isinstance(value, dict) and value.get("type") in ("Property", "Relationship") and \
                ("value" in value or "object" in value):
            attrs[iri] = [value]
        else:
            attrs[iri] = [{"type": "Property", "value": value}]
    return EntityView(attrs, created, modified)


def _in_time(reg: dict[str, Any], query: TemporalQuery) -> bool:
    interval = reg.get(INTERVALS.get(query.timeproperty, "observationInterval"))
    if interval is None:
        return False
    start = values.to_datetime(interval["startAt"])
    end: datetime | None = values.to_datetime(interval["endAt"]) if "endAt" in interval else None
    low, high = window(query)
    if high is not None and start >= high:
        return False
    return low is None or end is None or end > low

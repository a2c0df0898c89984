"""A subscription compiled for matching (``Rule``), and what one change-log entry means for it.

A change entry (``broker.store.changes``) becomes ``Event``s: which attributes it created, updated and
deleted, whether it created or deleted the entity. A rule fires on an event when (5.8.6 / 5.2.12):

* the entity matches one of the EntitySelectors (id, idPattern, type expression) -- or there are none;
* the triggers it lists cover the event: ``entityCreated`` / ``entityDeleted``; ``entityUpdated`` (any
  attribute of an existing entity created, updated or deleted); ``attributeCreated`` / ``attributeUpdated`` /
  ``attributeDeleted`` for a watched attribute (all attributes when ``watchedAttributes`` is absent). An
  entity's creation creates its attributes, its deletion deletes them;
* ``q`` and ``scopeQ`` hold for the entity after the change (before it, for a deletion);
* it is active (not paused, not expired) and it existed when the change was made.

Throttling is applied later, by the dispatcher, which owns the per-subscription clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from ..api.params import NO_JOIN, Join
from ..jsonld import Context
from ..model.operations import iso
from ..model.render import View
from ..query.evaluate import EntityView, q_matcher, scope_matcher
from ..query.scope import parse_scope_q
from ..query.types import TypeExpr, TypeName, parse_types, type_holds
from ..subscriptions.model import parse_subscription_q, status_of

@dataclass
class Event:
    """What one change-log entry did to one entity."""
    entity_id: str
    types: list[str]
    at: str
    created: bool
    deleted: bool
    attrs_created: set[str]
    attrs_updated: set[str]
    attrs_deleted: set[str]
    entry: dict[str, Any]

    @property
    def touched(self) -> set[str]:
        return self.attrs_created | self.attrs_updated | self.attrs_deleted


def event_of(entry: dict[str, Any]) -> Event:
    old = entry.get("old") or {}
    new = entry.get("new") or {}
    deleted_entity = entry["op"] == "delete"
    created = bool(entry.get("created"))
    attrs_created = {a for a in new if created or a not in old}
    attrs_updated = set() if created else {a for a in new if a in old}
    attrs_deleted = set(entry.get("removed") or ())
    # a datasetId deletion rewrites the attribute without that instance: an attributeDeleted as well
    attrs_deleted |= {a for a in attrs_updated if {i.get("datasetId") for i in old[a]} - {
        i.get("datasetId") for i in new[a]}}
    return Event(entry["id"], entry["types"], entry["at"], created, deleted_entity, attrs_created,
                 attrs_updated, attrs_deleted, entry)


@dataclass
class Selector:
    entity_id: str | None
    pattern: re.Pattern[str] | None
    types: TypeExpr

    def matches(self, entity_id: str, types: set[str]) -> bool:
        if self.entity_id is not None and self.entity_id != entity_id:
            return False
        if self.pattern is not None and self.entity_id is None and not self.pattern.search(entity_id):
            return False
        return type_holds(self.types, types)


@dataclass
class Rule:
    tenant: str
    id: str
    body: dict[str, Any]
    ctx: Context               # the subscription's @context: q terms, and notifications unless jsonldContext
    since: str                 # changes before this (creation, last resumption) are never notified
    selectors: list[Selector]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    view: View
    q: Callable[[EntityView], bool] | None = None
    scope: Callable[[list[str] | None], bool] | None = None
    # ("id", entity id) / ("type", type IRI) keys under which the registry files it; empty: check every change
    index_keys: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    join: Join = NO_JOIN               # notification.join / joinLevel
    notify_ctx: Context | None = None  # compacts notifications: jsonldContext's, else ctx
    link: str | None = None            # the context URL of notifications (Link header)

    @property
    def notification(self) -> dict[str, Any]:
        return self.body["notification"]

    @property
    def render_ctx(self) -> Context:
        """The @context notifications are compacted with."""
        return self.notify_ctx or self.ctx

    def active(self, now: str) -> bool:
        return status_of(self.body, now) == "active" and "timeInterval" not in self.body

    def reasons(self, event: Event) -> list[str]:
        """The triggers of ``event`` this rule listens to (empty: it does not fire)."""
        if event.at < self.since:
            return []
        if self.selectors and not any(s.matches(event.entity_id, set(event.types)) for s in self.selectors):
            return []
        found = []
        triggers = self.triggers
        if event.created and "entityCreated" in triggers:
            found.append("entityCreated")
        if event.deleted and "entityDeleted" in triggers:
            found.append("entityDeleted")
        watched = self.watched
        relevant = (lambda attrs: attrs if watched is None else attrs & watched)
        if not event.created and not event.deleted and "entityUpdated" in triggers and relevant(event.touched):
            found.append("entityUpdated")
        for trigger, attrs in (("attributeCreated", event.attrs_created), ("attributeUpdated", event.attrs_updated),
                               ("attributeDeleted", event.attrs_deleted)):
            if trigger in triggers and relevant(attrs):
                found.append(trigger)
        return found

    def accepts(self, attrs: dict[str, Any], scopes: list[str] | None, created_at: str, modified_at: str) -> bool:
        if self.scope is not None and not self.scope(scopes):
            return False
        return self.q is None or self.q(EntityView(attrs, created_at, modified_at))


def compile_rule(tenant: str, body: dict[str, Any], ctx: Context, created_at: datetime, view: View) -> Rule:
    selectors = [Selector(s.get("id"), re.compile(s["idPattern"]) if "idPattern" in s else None,
                          parse_types(s["type"])) for s in body.get("entities", ())]
    keys: set[tuple[str, str]] | None = set()
    for s in selectors:  # a selector with an id is found by its id, one with a plain type by that type
        if s.entity_id is not None:
            keys.add(("id", s.entity_id))
        elif isinstance(s.types, TypeName):
            keys.add(("type", s.types.name))
        else:
            keys = None
            break
    # notified: changes made after its creation, and after its last resumption (5.2.12: no replay)
    since = max(iso(created_at), body.get("resumedAt", ""))
    rule = Rule(tenant, body["id"], body, ctx, since, selectors,
                frozenset(body["watchedAttributes"]) if "watchedAttributes" in body else None,
                frozenset(body.get("notificationTrigger", ())), view, index_keys=frozenset(keys or ()))
    if "q" in body:
        rule.q = q_matcher(parse_subscription_q(body["q"]), ctx)
    if "scopeQ" in body:
        rule.scope = scope_matcher(parse_scope_q(body["scopeQ"]))
    return rule

"""What the dispatcher needs of the query engine: periodic notifications (``timeInterval``) and geoQ.

* A subscription with ``timeInterval`` is not driven by changes: every interval, its entities (selectors,
  q, scopeQ, geoQ) are queried like ``GET /entities`` would and sent in one notification (5.8.6).
* ``geoQ`` of a change-driven subscription is evaluated in the database, once per batch of changes and
  subscription (the geometry predicates live in SQL, ``broker.query.geo_sql``), on the entities' stored
  state: the entities a batch touched that match.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..query.geo import parse_geo_q
from ..subscriptions.model import parse_subscription_q
from ..query.scope import parse_scope_q
from ..store.query import EntityQuery, Selector, matching_ids, run_query
from ..store.tenants import Tenants
from .rules import Rule

MAX_PERIODIC_ENTITIES = 1000  # entities in one periodic notification


def query_of(rule: Rule) -> EntityQuery:
    body = rule.body
    selectors = [Selector(ids=[s.entity_id] if s.entity_id else None,
                          id_pattern=s.pattern.pattern if s.pattern is not None and not s.entity_id else None,
                          types=s.types) for s in rule.selectors]
    return EntityQuery(selectors=selectors,
                       q=parse_subscription_q(body["q"]) if "q" in body else None,
                       scope_q=parse_scope_q(body["scopeQ"]) if "scopeQ" in body else None,
                       geo=parse_geo_q(body["geoQ"]) if "geoQ" in body else None,
                       limit=MAX_PERIODIC_ENTITIES)


async def periodic_rows(pool: asyncpg.Pool, tenants: Tenants, rule: Rule, postgis: bool) -> list[Any]:
    rows, _ = await run_query(pool, tenants, rule.tenant, query_of(rule), rule.ctx, postgis=postgis)
    return list(rows)


async def geo_matches(pool: asyncpg.Pool, tenants: Tenants, rule: Rule, ids: list[str], postgis: bool) -> set[str]:
    """Which of ``ids`` satisfy the rule's geoQ now."""
    query = EntityQuery(selectors=[Selector(ids=ids)], geo=parse_geo_q(rule.body["geoQ"]))
    return set(await matching_ids(pool, tenants, rule.tenant, query, rule.ctx, postgis))

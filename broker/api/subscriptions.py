"""``/subscriptions`` and ``/subscriptions/{id}`` (GS CIM 009 5.8, 6.10 / 6.11): create, query, retrieve,
update and delete subscriptions. Validation and rendering are ``broker.subscriptions.model``; the rows are
``broker.subscriptions.store``; the dispatcher learns of every change through the store's announcements.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import uuid4

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError, not_found
from ..query import Match, database_error
from ..query.q import terms
from ..services import broker_of
from ..subscriptions.model import (apply_patch, parse_subscription, parse_subscription_q, render_subscription,
                                   status_of)
from ..subscriptions.store import stats_of
from .http import (JSON, LD_JSON, MERGE_PATCH, negotiate, no_content,
                   read_json_in_context, tenant_of)
from .params import bool_param, check_params, link_context, member_path_id, now, options_of
from .query import int_param, page_headers
from .render import base_url, context_response
from .resource import resource

PATCH_ATTEMPTS = 3


async def _check_in_context(request: Request, sub: dict[str, Any], ctx: Any, tenant: str) -> None:
    """What only the broker's context can tell: a ``jsonldContext`` must be a context the broker can load now
    (5.8.1: 400 / 504 otherwise), and ``q`` must be a query PostgreSQL accepts (its regex dialect differs
    from Python's; a subscription's q is matched in memory, by Python, and must mean the same as in a query)."""
    broker = broker_of(request)
    url = sub.get("jsonldContext")
    if url is not None:
        await broker.contexts.resolve(url, tenant)
    if "q" in sub:
        patterns = [t.pattern for t in terms(parse_subscription_q(sub["q"])) if isinstance(t, Match)]
        for pattern in patterns:
            try:
                await broker.pool.fetchval("SELECT '' ~ $1", pattern)
            except asyncpg.PostgresError as exc:
                problem = database_error(exc)
                if problem is None:
                    raise
                raise problem from None


async def create_subscription(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, raw_context, ctx = await read_json_in_context(request, tenant)
    stamp, stamp_dt = now()
    sub = parse_subscription(body, ctx, stamp)
    await _check_in_context(request, sub, ctx, tenant)
    if "jsonldContext" not in sub:  # 5.2.12: the @context notifications use; it is read back as a URL
        sub["jsonldContext"] = await broker.contexts.link_url(ctx, base_url(request), tenant)
    sub_id = sub.setdefault("id", f"urn:ngsi-ld:Subscription:{uuid4()}")
    sub = {"id": sub_id, **{k: v for k, v in sub.items() if k != "id"}}
    await broker.tenants.schema(tenant, create=True)
    await broker.subscriptions.create(tenant, sub_id, sub, raw_context, stamp_dt)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/subscriptions/{quote(sub_id, safe=':')}"})


async def _respond(request: Request, data: Any, headers: dict[str, str] | None = None) -> Response:
    media = negotiate(request, (JSON, LD_JSON))
    return await context_response(request, data, media, await link_context(request), headers)


def _stats(request: Request, row: Any) -> dict[str, Any]:
    dispatcher = broker_of(request).dispatcher
    return stats_of(row, dispatcher.unflushed(row["tenant"], row["id"]) if dispatcher is not None else [])


async def query_subscriptions(request: Request) -> Response:
    check_params(request, ("limit", "offset", "count", "options"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    limit = int_param(request, "limit", broker.settings.default_limit, broker.settings.max_limit)
    offset = int_param(request, "offset", 0)
    sys_attrs = "sysAttrs" in options_of(request, ("sysAttrs",))
    negotiate(request, (JSON, LD_JSON))
    await broker.tenants.schema(tenant, create=False)
    ctx = await link_context(request)
    rows = await broker.subscriptions.page(tenant, limit, offset) if limit else []
    total = await broker.subscriptions.count(tenant)  # cheap here, and it makes the next link exact
    stamp, _ = now()
    data = [render_subscription(r["body"], _stats(request, r), ctx, stamp, sys_attrs=sys_attrs) for r in rows]
    headers = page_headers(request, limit, offset, len(rows), total, count=bool_param(request, "count"),
                           media=LD_JSON)
    return await _respond(request, data, headers)


async def retrieve_subscription(request: Request) -> Response:
    check_params(request, ("options",))
    broker = broker_of(request)
    tenant = tenant_of(request)
    sub_id = member_path_id(request, "subscription")
    sys_attrs = "sysAttrs" in options_of(request, ("sysAttrs",))
    negotiate(request, (JSON, LD_JSON))  # 406 before anything is looked up
    row = await broker.subscriptions.get(tenant, sub_id)
    if row is None:
        raise not_found(f"subscription {sub_id} does not exist")
    ctx = await link_context(request)
    stamp, _ = now()
    return await _respond(request, render_subscription(row["body"], _stats(request, row), ctx, stamp,
                                                       sys_attrs=sys_attrs))


async def update_subscription(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    tenant = tenant_of(request)
    sub_id = member_path_id(request, "subscription")
    body, raw_context, ctx = await read_json_in_context(request, tenant, allowed=(JSON, LD_JSON, MERGE_PATCH))
    for _ in range(PATCH_ATTEMPTS):
        row = await broker.subscriptions.get(tenant, sub_id)
        if row is None:
            raise not_found(f"subscription {sub_id} does not exist")
        stamp, stamp_dt = now()
        sub = apply_patch(row["body"], body, ctx, stamp)
        if status_of(row["body"], stamp) != "active" and status_of(sub, stamp) == "active":
            sub["resumedAt"] = stamp  # changes made while it was paused or expired are never notified
        await _check_in_context(request, sub, ctx, tenant)
        context = raw_context if raw_context is not None else row["context"]
        if await broker.subscriptions.replace(tenant, sub_id, sub, context, stamp_dt, row["modified_at"]):
            return no_content()
    raise NgsiError("Conflict", f"subscription {sub_id} changed concurrently; try again", status=409)


async def delete_subscription(request: Request) -> Response:
    check_params(request, ())
    broker = broker_of(request)
    sub_id = member_path_id(request, "subscription")
    if not await broker.subscriptions.delete(tenant_of(request), sub_id):
        raise not_found(f"subscription {sub_id} does not exist")
    return no_content()


routes = [
    resource("/subscriptions", GET=query_subscriptions, POST=create_subscription),
    resource("/subscriptions/{id:path}", GET=retrieve_subscription, PATCH=update_subscription,
             DELETE=delete_subscription),
]

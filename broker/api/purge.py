"""Purge Entities (DELETE /entities, GS CIM 009 5.6.21): delete the matching entities, or with ``drop`` /
``keep`` only remove attributes from them.

Matching ids are selected first, then processed in chunks through the batch writer, so every deletion is
recorded in the change log like any other write and a huge purge never holds one giant transaction.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..services import broker_of
from ..errors import bad_request
from ..model.operations import Write
from ..store.batch import NewState, apply_write
from ..store.query import matching_ids
from .http import no_content, tenant_of
from .params import check_params, link_context, list_param, now
from .query import filters_of

CHUNK = 1000


async def purge(request: Request) -> Response:
    check_params(request, ("type", "id", "idPattern", "q", "attrs", "keep", "drop", "local", "scopeQ"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    ctx = await link_context(request)
    keep, drop = list_param(request, "keep"), list_param(request, "drop")
    if keep and drop:
        raise bad_request("keep and drop cannot be used together")
    query = filters_of(request, ctx, "purge", id_pattern_qualifies=False)  # idPattern=.* would empty the tenant
    matched = await matching_ids(broker.pool, broker.tenants, tenant, query, ctx, broker.postgis)
    keep_iris = {ctx.expand_term(a) for a in keep} if keep else None
    drop_iris = {ctx.expand_term(a) for a in drop} if drop else None

    def rule(current: dict[str, Any] | None) -> NewState | None:
        if current is None or (keep_iris is None and drop_iris is None):
            return None
        names = list(current["attrs"])
        removed = [n for n in names if (n not in keep_iris if keep_iris is not None else n in drop_iris)]
        return apply_write(current, Write(list(current["types"]), current["scopes"], removed=removed), "purge")

    stamp = now()
    for start in range(0, len(matched), CHUNK):
        chunk = matched[start:start + CHUNK]
        await broker.batch.run(tenant, [(i, rule) for i in chunk], stamp[0], stamp[1], create_tenant=False)
    return no_content()

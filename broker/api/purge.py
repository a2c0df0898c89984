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
from ..model.entity import check_entity_id
from ..model.operations import Write
from ..query.types import parse_types
from ..store.batch import NewState, apply_write
from ..store.query import EntityQuery, Selector, matching_ids
from .http import no_content, tenant_of
from .params import bool_param, check_params, link_context, list_param, now
from .query import parse_q_param, parse_scope_q_param

CHUNK = 1000


async def purge(request: Request) -> Response:
    check_params(request, ("type", "id", "idPattern", "q", "attrs", "keep", "drop", "local", "scopeQ"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    ctx = await link_context(request)
    keep, drop = list_param(request, "keep"), list_param(request, "drop")
    if keep and drop:
        raise bad_request("keep and drop cannot be used together")
    ids = list_param(request, "id")
    selector = Selector(ids=[check_entity_id(i) for i in ids] if ids else None,
                        id_pattern=request.query_params.get("idPattern") or None,
                        types=parse_types(request.query_params["type"]) if request.query_params.get("type")
                        else None)
    attrs = list_param(request, "attrs")
    query = EntityQuery(selectors=[selector] if (selector.ids or selector.id_pattern or selector.types) else [],
                        attrs=[ctx.expand_term(a) for a in attrs] if attrs else None,
                        q=parse_q_param(request.query_params.get("q")),
                        scope_q=parse_scope_q_param(request.query_params.get("scopeQ")))
    if not (query.selectors or query.attrs or query.q is not None or query.scope_q is not None
            or bool_param(request, "local")):
        raise bad_request("purge needs at least one of type, attrs, q, scopeQ, id, idPattern or local=true")
    matched = await matching_ids(broker.pool, broker.tenants, tenant, query, ctx)
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

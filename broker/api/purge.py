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
from ..errors import NgsiError, bad_request
from ..model.operations import Write
from ..store.batch import NewState, apply_write
from .http import no_content, tenant_of
from .params import bool_param, check_params, link_context, list_param, now

CHUNK = 1000


async def purge(request: Request) -> Response:
    check_params(request, ("type", "id", "idPattern", "q", "attrs", "keep", "drop", "local", "scopeQ"))
    broker = broker_of(request)
    tenant = tenant_of(request)
    ctx = await link_context(request)
    keep, drop = list_param(request, "keep"), list_param(request, "drop")
    if keep and drop:
        raise bad_request("keep and drop cannot be used together")
    types = list_param(request, "type")
    ids = list_param(request, "id")
    pattern = request.query_params.get("idPattern")
    attrs = list_param(request, "attrs")
    local = bool_param(request, "local")
    if request.query_params.get("q") or request.query_params.get("scopeQ"):
        raise NgsiError("OperationNotSupported", "purge by q or scopeQ is not supported yet")
    if not (types or attrs or local or ids or pattern):
        raise bad_request("purge needs at least one of type, attrs, q, id, idPattern or local=true")
    type_iris = [ctx.expand_term(t) for t in types] if types else None
    attr_iris = [ctx.expand_term(a) for a in attrs] if attrs else None
    matched = await broker.entities.matching_ids(tenant, type_iris, ids, pattern, attr_iris)
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

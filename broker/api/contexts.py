"""``/jsonldContexts`` (GS CIM 009 clauses 5.13 / 6.30): add, list, serve and delete stored @contexts.

Thin handlers over ``ContextResolver.admin`` (``broker.jsonld.hosting``); ids in the path may be local ids,
hosted-context URLs or (for Cached contexts) the URL-encoded original URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NgsiError
from ..jsonld.hosting import ContextInfo
from ..jsonld.resolver import join_base
from .http import JSON, LD_JSON, json_response, no_content, read_json, tenant_of

KINDS = ("Hosted", "Cached", "ImplicitlyCreated")


def broker_of(request: Request) -> Any:
    # request.app.state.broker is a broker.app.Broker; not imported from broker.app (which imports the routes)
    return request.app.state.broker


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise NgsiError("BadRequestData", f"{name} must be true or false, not {value!r}")


def _kind(request: Request) -> str | None:
    kind = request.query_params.get("kind")
    if kind is not None and kind not in KINDS:
        raise NgsiError("BadRequestData", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _base(request: Request) -> str:
    return str(request.base_url)


def _public_url(info: ContextInfo, request: Request) -> str:
    return join_base(_base(request), info.url) if info.hosted else info.url


def _details(info: ContextInfo, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {"URL": _public_url(info, request), "localId": info.local_id, "kind": info.kind,
                           "createdAt": _timestamp(info.created_at)}
    if info.last_used_at is not None:
        out["lastUsage"] = _timestamp(info.last_used_at)
    out["numberOfHits"] = info.hits
    return out


async def add_context(request: Request) -> Response:
    broker = broker_of(request)
    tenant = tenant_of(request)
    body, _ = await read_json(request, max_bytes=broker.settings.max_body_bytes, allowed=(JSON, LD_JSON))
    if not isinstance(body, dict) or "@context" not in body:
        raise NgsiError("InvalidRequest", "the body must be a JSON object with an @context member")
    local_id = await broker.contexts.admin.create_hosted(body["@context"], tenant)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/jsonldContexts/{local_id}"})


async def list_contexts(request: Request) -> Response:
    details = _flag(request, "details")
    kind = _kind(request)
    infos = await broker_of(request).contexts.admin.list(tenant_of(request), kind)
    if details:
        return json_response([_details(i, request) for i in infos])
    return json_response([_public_url(i, request) for i in infos])


async def serve_context(request: Request) -> Response:
    details = _flag(request, "details")
    info, body = await broker_of(request).contexts.admin.serve(request.path_params["context_id"],
                                                               tenant_of(request))
    return json_response(_details(info, request) if details else body)


async def delete_context(request: Request) -> Response:
    reload = _flag(request, "reload")
    await broker_of(request).contexts.admin.delete(request.path_params["context_id"], tenant_of(request), reload)
    return no_content()


async def _collection(request: Request) -> Response:
    if request.method == "POST":
        return await add_context(request)
    return await list_contexts(request)


async def _item(request: Request) -> Response:
    if request.method == "DELETE":
        return await delete_context(request)
    return await serve_context(request)


routes: list[Route] = [
    Route("/jsonldContexts", _collection, methods=["GET", "POST"]),
    Route("/jsonldContexts/{context_id:path}", _item, methods=["GET", "DELETE"]),
]

"""The route table of the NGSI-LD API (mounted under ``/ngsi-ld/v1``) and the broker's own ``/version``.

A resource is one route whose methods dispatch to handlers, so that a method it lacks gets 405 with the
complete ``Allow`` header.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .. import __version__
from ..errors import NgsiError
from . import attributes, batch, contexts, entities, query
from .http import json_response

Handler = Callable[[Request], Awaitable[Response]]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def resource(path: str, **handlers: Handler) -> Route:
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    allow = ", ".join(sorted(handlers))

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            if path == "/entities" and request.method in ("PUT", "PATCH") \
                    and request.scope.get("state", {}).get("trailing_slash"):
                # PUT/PATCH /entities/ is a request on an entity whose id is missing
                raise NgsiError("BadRequestData", "the entity id is missing from the URL")
            raise NgsiError("MethodNotAllowed", f"{request.method} is not allowed here (allowed: {allow})",
                            status=405, title="Method not allowed", headers={"Allow": allow})
        return await handler(request)

    return Route(path, dispatch, methods=METHODS)


async def version(request: Request) -> Response:
    return json_response({"broker": "ngsild-broker", "version": __version__})


def routes() -> list[Route | Mount]:
    api = [
        resource("/entities", GET=query.query_entities, POST=entities.create_entity,
                 DELETE=batch.purge_entities),
        resource("/entities/{entity_id:path}/attrs/{attr_id}", PATCH=attributes.partial_update,
                 PUT=attributes.replace_attribute, DELETE=attributes.delete_attribute),
        resource("/entities/{entity_id:path}/attrs", POST=attributes.append_attributes,
                 PATCH=attributes.update_attributes),
        resource("/entities/{entity_id:path}", GET=entities.retrieve_entity, PUT=entities.replace_entity,
                 PATCH=entities.merge_entity, DELETE=entities.delete_entity),
        resource("/entityOperations/create", POST=batch.batch_create),
        resource("/entityOperations/upsert", POST=batch.batch_upsert),
        resource("/entityOperations/update", POST=batch.batch_update),
        resource("/entityOperations/merge", POST=batch.batch_merge),
        resource("/entityOperations/delete", POST=batch.batch_delete),
        resource("/entityOperations/query", POST=query.query_entities_post),
        *contexts.routes,
    ]
    return [Route("/version", version, methods=["GET"]), Mount("/ngsi-ld/v1", routes=api)]

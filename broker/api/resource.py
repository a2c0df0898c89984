"""A resource: one route whose methods dispatch to handlers, so that a method it lacks gets 405 with the
complete ``Allow`` header (Starlette's own 405 would name only the first matching route's methods)."""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NgsiError

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

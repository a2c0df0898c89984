"""Pure-ASGI middleware (cheap: no per-request task or body copy).

* ``/entities/`` and ``/entityOperations/upsert/`` are answered like their slash-less paths (clients send
  both; a redirect would lose POST bodies in some clients);
* the ``NGSILD-Tenant`` request header is echoed on the response;
* a POST, PATCH or PUT without ``Content-Length`` gets a bare 411 (6.3.4: "just a 411 HTTP status code
  (without any payload body)"; chunked transfer has no exemption), before anything else is looked at, so a
  missing tenant or resource cannot turn it into another error.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TENANT = b"ngsild-tenant"
_LENGTH = b"content-length"
_BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


class NgsiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
            scope.setdefault("state", {})["trailing_slash"] = True
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        tenant = None
        length = scope["method"] not in _BODY_METHODS
        for name, value in scope["headers"]:
            if name == _TENANT:
                tenant = value
            elif name == _LENGTH:
                length = True
        if not length:
            await send({"type": "http.response.start", "status": 411, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        scope["ngsild.tenant"] = tenant  # read by broker.api.http.tenant_of (saves a header scan)
        if tenant is None:
            await self.app(scope, receive, send)
            return

        async def send_with_tenant(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(n.lower() == _TENANT for n, _ in headers):
                    headers.append((b"NGSILD-Tenant", tenant))
                message = dict(message)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_tenant)

"""Pure-ASGI middleware (cheap: no per-request task or body copy).

* ``/entities/`` and ``/entityOperations/upsert/`` are answered like their slash-less paths (clients send
  both; a redirect would lose POST bodies in some clients);
* the ``NGSILD-Tenant`` request header is echoed on the response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TENANT = b"ngsild-tenant"


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
        for name, value in scope["headers"]:
            if name == _TENANT:
                tenant = value
                break
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

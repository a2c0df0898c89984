"""Query parameters: each handler declares the ones it supports; anything else is 400 InvalidRequest.

Also the request's JSON-LD context (Link header or body) and the representation options.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from starlette.requests import Request

from ..errors import NgsiError
from ..jsonld import Context
from ..model.render import CONCISE, NORMALIZED, SIMPLIFIED, View
from .http import link_context_url

FORMATS = {"normalized": NORMALIZED, "concise": CONCISE, "simplified": SIMPLIFIED, "keyValues": SIMPLIFIED}
REPRESENTATION_OPTIONS = frozenset(("normalized", "concise", "simplified", "keyValues", "sysAttrs"))


def check_params(request: Request, allowed: Iterable[str]) -> None:
    if not request.scope.get("query_string"):
        return
    allowed = set(allowed)
    for name in request.query_params.keys():
        if name not in allowed:
            raise NgsiError("InvalidRequest", f"unknown query parameter '{name}' (supported here: "
                                              f"{', '.join(sorted(allowed)) or 'none'})")


def options_of(request: Request, allowed: Iterable[str]) -> set[str]:
    if not request.scope.get("query_string"):
        return set()
    allowed = set(allowed)
    found: set[str] = set()
    for raw in request.query_params.getlist("options"):
        for option in raw.split(","):
            option = option.strip()
            if not option:
                continue
            if option not in allowed:
                raise NgsiError("BadRequestData", f"unknown option '{option}' (supported here: "
                                                  f"{', '.join(sorted(allowed))})")
            found.add(option)
    return found


def list_param(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    items = [item.strip() for value in raw for item in value.split(",")]
    if any(not item for item in items):
        raise NgsiError("BadRequestData", f"empty item in '{name}'")
    return items


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw in ("true", "false"):
        return raw == "true"
    raise NgsiError("BadRequestData", f"'{name}' must be true or false")


_DEFAULT_VIEW = View()


def view_of(request: Request, ctx: Context, options: set[str]) -> View:
    if not request.scope.get("query_string"):
        return _DEFAULT_VIEW
    fmt = NORMALIZED
    chosen = [o for o in options if o in FORMATS and o != "sysAttrs"]
    if len(set(FORMATS[o] for o in chosen)) > 1:
        raise NgsiError("BadRequestData", f"conflicting representation options: {', '.join(sorted(chosen))}")
    if chosen:
        fmt = FORMATS[chosen[0]]
    explicit = request.query_params.get("format")
    if explicit is not None:
        if explicit not in FORMATS:
            raise NgsiError("BadRequestData", f"unknown format '{explicit}'")
        fmt = FORMATS[explicit]
    attrs = list_param(request, "attrs")
    wanted = frozenset(ctx.expand_term(a) for a in attrs) if attrs else None
    lang = request.query_params.get("lang")
    return View(format=fmt, sys_attrs="sysAttrs" in options, attrs=wanted, lang=lang or None)


async def link_context(request: Request) -> Context:
    """The context of a request without body: its Link header, or the core context."""
    broker = request.app.state.broker
    from .http import tenant_of

    return await broker.contexts.resolve(link_context_url(request), tenant_of(request))


def now() -> tuple[str, datetime]:
    """The request's timestamp, as stored in documents (ISO 8601 UTC) and as a column value."""
    moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment


def entity_path_id(request: Request) -> str:
    from ..model.entity import check_entity_id

    return check_entity_id(request.path_params["entity_id"])


def body_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", f"{what} must be a JSON object")
    return body

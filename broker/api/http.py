"""HTTP mechanics shared by all handlers: media types, Accept negotiation, JSON bodies, Link headers.

NGSI-LD rules implemented here (GS CIM 009 clauses 6.3.4 - 6.3.6):

* request bodies are ``application/json`` (context in a ``Link`` header) or ``application/ld+json``
  (``@context`` in the body); mixing them up is 400, another media type is 415, a body above the configured
  size is 413 (a POST, PATCH or PUT without ``Content-Length`` never gets here: ``broker.api.middleware``
  answers it with a bare 411);
* responses are chosen from the ``Accept`` header by RFC 9110 rules (most specific range decides an offer's
  weight, ``q=0`` refuses it), ties broken by the spec's order json, ld+json, geo+json; nothing acceptable
  is 406.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError
from ..jsonld import Context
from ..services import broker_of
from ..store.tenants import check_tenant

JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADER = "NGSILD-Tenant"

ENTITY_OFFERS = (JSON, LD_JSON, GEO_JSON)
DEFAULT_OFFERS = (JSON, LD_JSON)


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type/Accept entry, lower-cased (parameters dropped)."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def _parse_accept(header: str) -> list[tuple[str, str, float, int]]:
    """Accept entries as (type, subtype, q, specificity)."""
    ranges = []
    for part in header.split(","):
        part = part.strip()
        if not part:
            continue
        fields = [f.strip() for f in part.split(";")]
        mtype, _, subtype = fields[0].lower().partition("/")
        if not subtype:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 1.0  # an unparseable weight keeps the default (it is not a processing rule)
                q = min(max(q, 0.0), 1.0)
        specificity = 0 if mtype == "*" else (1 if subtype == "*" else 2)
        ranges.append((mtype, subtype, q, specificity))
    return ranges


_NEGOTIATED: dict[tuple[str, tuple[str, ...]], str] = {}


def negotiate(request: Request, offers: Iterable[str] = DEFAULT_OFFERS) -> str:
    """The media type to answer with, or 406 NotAcceptable."""
    header = request.headers.get("accept")
    offers = tuple(offers)
    if not header or not header.strip():
        return offers[0]
    key = (header, offers)
    found = _NEGOTIATED.get(key)
    if found is None:
        found = _choose(header, offers)
        if len(_NEGOTIATED) < 1024:  # clients send few distinct Accept headers; cache them
            _NEGOTIATED[key] = found
    return found


def _choose(header: str, offers: tuple[str, ...]) -> str:
    ranges = _parse_accept(header)
    best, best_q = None, 0.0
    for offer in offers:
        otype, _, osub = offer.partition("/")
        q, spec = None, -1
        for mtype, subtype, rq, rspec in ranges:
            if (mtype == "*" or mtype == otype) and (subtype == "*" or subtype == osub) and rspec > spec:
                q, spec = rq, rspec
        if q is not None and q > best_q:
            best, best_q = offer, q
    if best is None:
        raise NgsiError("NotAcceptable", f"none of {', '.join(offers)} is acceptable (Accept: {header})",
                        status=406, title="Not acceptable")
    return best


def tenant_of(request: Request) -> str:
    """The request's tenant ("" = the default tenant); NgsiMiddleware has already found the header."""
    scope = request.scope
    if "ngsild.tenant" in scope:
        raw = scope["ngsild.tenant"]
    else:
        header = request.headers.get(TENANT_HEADER)
        raw = None if header is None else header.encode("latin-1")
    if raw is None:
        return ""
    tenant = raw.decode("latin-1").strip()  # HTTP header bytes, as Starlette decodes them
    if not tenant:
        raise NgsiError("BadRequestData", "the NGSILD-Tenant header must not be empty")
    return check_tenant(tenant)


_LINK_ENTRY = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,]+)*)')


_LINKS: dict[str, str | None] = {}


def link_context_url(request: Request) -> str | None:
    """The JSON-LD context URL of a ``Link`` header (rel=http://www.w3.org/ns/json-ld#context), if any."""
    header = request.headers.get("link")
    if not header:
        return None
    if header in _LINKS:
        return _LINKS[header]
    found = _parse_link(header)
    if len(_LINKS) < 1024:  # clients reuse a handful of Link headers: cache the parse
        _LINKS[header] = found
    return found


def _parse_link(header: str) -> str | None:
    found = None
    for match in _LINK_ENTRY.finditer(header):
        params = match.group(2).lower()
        if "json-ld#context" in params or 'rel="http://www.w3.org/ns/json-ld#context"' in params:
            if found is not None:
                raise NgsiError("BadRequestData", "more than one JSON-LD context Link header")
            found = match.group(1).strip()
    if found is None and header.strip():
        if "<" not in header:
            raise NgsiError("BadRequestData", f"invalid Link header: {header}")
        return None
    if found == "":
        raise NgsiError("BadRequestData", "empty JSON-LD context Link header")
    return found


def link_header(url: str) -> str:
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="{LD_JSON}"'


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > max_bytes:
                raise NgsiError("PayloadTooLarge", f"request body larger than {max_bytes} bytes", status=413,
                                title="Payload too large")
        except ValueError:
            raise NgsiError("BadRequestData", "invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise NgsiError("PayloadTooLarge", f"request body larger than {max_bytes} bytes", status=413,
                            title="Payload too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, max_bytes: int,
                    allowed: tuple[str, ...] = (JSON, LD_JSON)) -> tuple[Any, str]:
    """The parsed JSON body and its media type (415 for other media types, 400 for malformed JSON)."""
    ctype = media_type(request.headers.get("content-type"))
    if ctype not in allowed:
        raise NgsiError("UnsupportedMediaType",
                        f"Content-Type {ctype or '(none)'} is not supported here; use {' or '.join(allowed)}",
                        status=415, title="Unsupported media type")
    raw = await read_body(request, max_bytes=max_bytes)
    if not raw.strip():
        raise NgsiError("InvalidRequest", "the request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NgsiError("InvalidRequest", f"the request body is not valid JSON: {exc}") from None
    if b"\\u0000" in raw and _has_nul(body):
        # PostgreSQL text and jsonb cannot hold U+0000: refuse it rather than fail while storing
        raise NgsiError("BadRequestData", "strings and names must not contain the character U+0000")
    # merge-patch+json is JSON with a Link-header context
    return body, (JSON if ctype == MERGE_PATCH else ctype)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def read_json_in_context(request: Request, tenant: str, *, allowed: tuple[str, ...] = (JSON, LD_JSON)
                               ) -> tuple[Any, Any, Context]:
    """The parsed JSON body (``read_json``), the @context it came with (``body_context``: in the body or the
    Link header) and that context resolved for ``tenant``."""
    broker = broker_of(request)
    body, ctype = await read_json(request, max_bytes=broker.settings.max_body_bytes, allowed=allowed)
    raw_context = body_context(body, ctype, request)
    return body, raw_context, await broker.contexts.resolve(raw_context, tenant)


def body_context(body: Any, ctype: str, request: Request) -> Any:
    """The @context a request carries (body for ld+json, Link header for json), checked for the mix-ups."""
    link = link_context_url(request)
    if ctype == LD_JSON:
        if link is not None:
            raise NgsiError("BadRequestData", "a Link context header is not allowed with application/ld+json")
        items = body if isinstance(body, list) else [body]
        contexts = [item.get("@context") if isinstance(item, dict) else None for item in items]
        if not items or any(c is None for c in contexts):
            raise NgsiError("BadRequestData", "application/ld+json requires an @context member in the body")
        return contexts[0] if isinstance(body, dict) else contexts
    items = body if isinstance(body, list) else [body]
    if any(isinstance(item, dict) and "@context" in item for item in items):
        raise NgsiError("BadRequestData", "@context in the body requires Content-Type application/ld+json")
    return link


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media: str = JSON) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=media)


def no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)

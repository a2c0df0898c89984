"""Exception handlers: everything leaves the broker as NGSI-LD ProblemDetails, never as a bare 500 page."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import NgsiError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/json"


def problem_response(error: NgsiError) -> Response:
    return Response(orjson.dumps(error.problem()), status_code=error.status, headers=error.headers,
                    media_type=PROBLEM_JSON)


async def ngsi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NgsiError)
    return problem_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        error = NgsiError("ResourceNotFound", f"no such resource: {request.url.path}", headers=headers)
    elif exc.status_code == 405:
        error = NgsiError("MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}",
                          status=405, title="Method not allowed", headers=headers)
    else:
        error = NgsiError("InvalidRequest", str(exc.detail), status=exc.status_code, headers=headers)
    return problem_response(error)


async def internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RecursionError):  # a body nested deeper than any walker allows
        return problem_response(NgsiError("BadRequestData", "the request body is nested too deeply"))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(NgsiError("InternalError", f"internal error: {type(exc).__name__}"))


HANDLERS = {NgsiError: ngsi_error, HTTPException: http_error, Exception: internal_error}

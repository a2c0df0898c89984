"""NGSI-LD errors: one exception type carrying the ProblemDetails of GS CIM 009 clause 5.5.2.

Every layer raises ``NgsiError`` (through the helpers below); the HTTP layer renders it as
``application/json`` ProblemDetails with the status the spec gives for the type.
"""

from __future__ import annotations

from typing import Any

_BASE = "https://uri.etsi.org/ngsi-ld/errors/"

# error type -> (HTTP status, title)
ERROR_TYPES: dict[str, tuple[int, str]] = {
    "InvalidRequest": (400, "Invalid request"),
    "BadRequestData": (400, "Bad request data"),
    "AlreadyExists": (409, "Already exists"),
    "OperationNotSupported": (422, "Operation not supported"),
    "ResourceNotFound": (404, "Resource not found"),
    "InternalError": (500, "Internal error"),
    "TooComplexQuery": (403, "Too complex query"),
    "TooManyResults": (403, "Too many results"),
    # GS CIM 009 v1.6+ (and the ETSI suite, 043_01) answer 504 for an unreachable @context
    "LdContextNotAvailable": (504, "LD context not available"),
    "NoMultiTenantSupport": (501, "No multi-tenant support"),
    "NonexistentTenant": (404, "Nonexistent tenant"),
    "Conflict": (409, "Conflict"),
}


class NgsiError(Exception):
    """An error answered as NGSI-LD ProblemDetails."""

    def __init__(self, error_type: str, detail: str, *, status: int | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        default_status, default_title = ERROR_TYPES.get(error_type, (400, error_type))
        super().__init__(detail)
        self.error_type = error_type
        self.status = status or default_status
        self.title = title or default_title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        return self.error_type if "://" in self.error_type else _BASE + self.error_type

    def problem(self) -> dict[str, Any]:
        body = {"type": self.type_uri, "title": self.title, "status": self.status, "detail": self.detail}
        body.update(self.extra)
        return body


def bad_request(detail: str) -> NgsiError:
    return NgsiError("BadRequestData", detail)


def invalid_request(detail: str) -> NgsiError:
    return NgsiError("InvalidRequest", detail)


def not_found(detail: str) -> NgsiError:
    return NgsiError("ResourceNotFound", detail)


def already_exists(detail: str) -> NgsiError:
    return NgsiError("AlreadyExists", detail)


def not_supported(detail: str) -> NgsiError:
    return NgsiError("OperationNotSupported", detail)

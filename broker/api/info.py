"""``/info/sourceIdentity`` (GS CIM 009 5.15.1, 5.2.40 ContextSourceIdentity): who this broker is, for peers
that register it and detect federation loops (``Via``).

``contextSourceAlias`` identifies this installation AND the request's tenant (Table 5.2.40-1: in the
multi-tenancy case it identifies a specific tenant): a UUID derived from the installation's identity (drawn
once, kept in the database, shared by every process) and the tenant name, so it is stable across restarts
and processes and differs between tenants. ``contextSourceUptime`` counts from this process's start.
"""

from __future__ import annotations

import time
import uuid

from starlette.requests import Request
from starlette.responses import Response

from ..model.values import now_iso
from ..services import broker_of
from .http import JSON, LD_JSON, json_response, negotiate, tenant_of
from .params import check_params
from .resource import resource
from ..store.tenants import DEFAULT_TENANT

STARTED = time.monotonic()


def alias(source_id: str, tenant: str) -> str:
    if tenant == DEFAULT_TENANT:
        return f"urn:ngsi-ld:ContextSource:{source_id}"
    return f"urn:ngsi-ld:ContextSource:{uuid.uuid5(uuid.UUID(source_id), tenant)}"


def uptime(seconds: float) -> str:
    """An ISO 8601 duration: PnDTnHnMn.nS (days, then the rest of the day)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    return f"P{int(days)}DT{int(hours)}H{int(minutes)}M{rest:.3f}S"


async def source_identity(request: Request) -> Response:
    check_params(request, ())
    media = negotiate(request, (JSON, LD_JSON))
    broker = broker_of(request)
    name = alias(broker.source_id, tenant_of(request))
    body = {"id": name, "type": "ContextSourceIdentity", "contextSourceAlias": name,
            "contextSourceUptime": uptime(time.monotonic() - STARTED), "contextSourceTimeAt": now_iso()}
    if media == LD_JSON:
        body["@context"] = broker.contexts.core.raw
    return json_response(body, media=media)


routes = [resource("/info/sourceIdentity", GET=source_identity)]

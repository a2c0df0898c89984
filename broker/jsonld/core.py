"""The NGSI-LD core @context: its URLs, the one the broker advertises, and how hosted-context URLs look.

Every core URL (unversioned and ``-v1.3`` ... ``-v1.9``) is answered from the shipped copy of the v1.9 core
context (``contexts/ngsi-ld-core-context-v1.9.jsonld``), never fetched. Any other URL under
``https://uri.etsi.org/ngsi-ld/`` is an ordinary remote context.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

CORE_PREFIX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context"

# what the broker puts in Link headers and ld+json bodies for the core context; versioned, because clients
# (and the ETSI suite) match ``ngsi-ld-core-context-v\d.\d.jsonld``
CORE_CONTEXT_URL = f"{CORE_PREFIX}-v1.9.jsonld"

CORE_CONTEXT_URLS: frozenset[str] = frozenset(
    [f"{CORE_PREFIX}.jsonld"] + [f"{CORE_PREFIX}-v1.{minor}.jsonld" for minor in range(3, 10)])

# the file (relative to the contexts directory) that answers every core URL
CORE_CONTEXT_FILE = "ngsi-ld-core-context-v1.9.jsonld"

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
HAS_VALUE = NGSI_LD + "hasValue"
PROPERTY = NGSI_LD + "Property"

# a hosted context is served at .../ngsi-ld/v1/jsonldContexts/{id}; any host (clients use the broker's public
# name, which the broker cannot know), or just the path (the Location header of POST /jsonldContexts)
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?/ngsi-ld/v1/jsonldContexts/([^/?#]+)/?$")


def is_core_context_url(url: str) -> bool:
    return url in CORE_CONTEXT_URLS


def hosted_id(url: str) -> str | None:
    """The local id if ``url`` addresses a context hosted by an NGSI-LD broker (this one), else None."""
    match = _HOSTED.match(url)
    return unquote(match.group(1)) if match else None


def hosted_path(local_id: str) -> str:
    """The host-independent URL stored for a hosted context (joined with the request's base on output)."""
    return HOSTED_PATH + local_id

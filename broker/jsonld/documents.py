"""Context documents: the shipped/local file table, remote fetching (bounded), and document checks.

* ``contexts_dir()`` finds the shipped contexts (``contexts/`` in a checkout, ``broker/_contexts`` in a wheel);
* ``FileTable`` maps well-known URLs to local files (``contexts/index.json`` plus ``Settings.context_files``),
  loaded once at start-up;
* ``Fetcher`` GETs a remote context with a total timeout, a size cap and bounded redirects, lenient about
  the Content-Type: a 200 whose body is a JSON object with an ``@context`` member is a context document;
* ``context_urls()`` lists the URLs a context value references (to pre-load them before pyld runs).

Errors are NgsiErrors: unreachable / timeout / HTTP error -> LdContextNotAvailable; a document that is not
JSON or has no ``@context`` -> BadRequestData.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from pyld import iri_resolver

from ..errors import NgsiError
from .core import hosted_id

INDEX_FILE = "index.json"
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
ACCEPT = "application/ld+json, application/json;q=0.9, */*;q=0.1"


def contexts_dir() -> Path:
    """The directory of shipped contexts: ``<repo>/contexts`` in a checkout, ``broker/_contexts`` installed."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_contexts", package.parent / "contexts"):
        if (candidate / INDEX_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"no shipped contexts ({INDEX_FILE}) next to {package}")


def check_document(doc: Any, url: str) -> dict[str, Any]:
    """A context document is a JSON object with an ``@context`` member (pyld would take {} for a missing one;
    NGSI-LD wants a 400 for it)."""
    if not isinstance(doc, dict) or "@context" not in doc:
        raise NgsiError("BadRequestData", f"the document at {url} is not a JSON-LD context (no @context member)")
    return doc


def parse_document(data: bytes, url: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise NgsiError("BadRequestData", f"the @context document at {url} is not valid JSON") from None
    return check_document(doc, url)


def check_storable(value: Any, what: str) -> None:
    """PostgreSQL jsonb cannot hold U+0000: refuse such a document rather than fail on storing it."""
    if _has_nul(value):
        raise NgsiError("BadRequestData", f"{what} contains the character U+0000")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_context_value(value: Any) -> None:
    """The syntax of an @context value: a URL string, an object, null, or an array of those (no nesting)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None or isinstance(item, dict):
            continue
        if isinstance(item, str):
            if not item.strip():
                raise NgsiError("BadRequestData", "an @context URL must not be empty")
            continue
        raise NgsiError("BadRequestData", f"invalid @context entry {orjson.dumps(item).decode()[:100]}: "
                                          "expected a URL string or a JSON object")


def context_urls(value: Any, base: str | None) -> list[str]:
    """The context URLs referenced by an @context value: its strings, ``@import``s and scoped contexts.

    Relative URLs are resolved against ``base`` as pyld does (``iri_resolver.resolve``); hosted-context paths
    (``/ngsi-ld/v1/jsonldContexts/{id}``) are kept as they are.
    """
    found: list[str] = []
    _collect(value, base, found, 0)
    return found


def _collect(value: Any, base: str | None, found: list[str], depth: int) -> None:
    if depth > 32:  # a pathological document; pyld will report what is wrong with it
        return
    if isinstance(value, str):
        found.append(_absolute(value, base))
    elif isinstance(value, list):
        for item in value:
            _collect(item, base, found, depth + 1)
    elif isinstance(value, dict):
        imported = value.get("@import")
        if isinstance(imported, str):
            found.append(_absolute(imported, base))
        for definition in value.values():
            if isinstance(definition, dict) and "@context" in definition:
                _collect(definition["@context"], base, found, depth + 1)


def _absolute(url: str, base: str | None) -> str:
    if hosted_id(url) is not None or not base:
        return url
    return iri_resolver.resolve(url, base)


def is_fetchable(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _read_json_file(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


class FileTable:
    """URL -> context document for the shipped index and the configured extra files, loaded at start."""

    def __init__(self, entries: dict[str, Path]) -> None:
        self._paths = dict(entries)
        self._docs: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_settings(cls, extra: dict[str, str], directory: Path | None = None) -> "FileTable":
        directory = directory or contexts_dir()
        index = _read_json_file(directory / INDEX_FILE)
        entries = {url: directory / rel for url, rel in index.items() if not url.startswith("_")}
        # configured entries win over shipped ones; relative paths are relative to the working directory
        entries.update({url: Path(path).expanduser() for url, path in extra.items()})
        return cls(entries)

    def load(self) -> None:
        """Read every file now (a broken shipped or configured file is a start-up error, not a 500 later)."""
        for url, path in self._paths.items():
            self._docs[url] = self.read(url)

    def read(self, url: str) -> dict[str, Any]:
        path = self._paths[url]
        try:
            return check_document(_read_json_file(path), url)
        except (OSError, orjson.JSONDecodeError, NgsiError) as exc:
            raise RuntimeError(f"context file {path} for {url} is unusable: {exc}") from exc

    def __contains__(self, url: str) -> bool:
        return url in self._paths

    def get(self, url: str) -> dict[str, Any] | None:
        return self._docs.get(url)

    def reload(self, url: str) -> dict[str, Any]:
        doc = self.read(url)
        self._docs[url] = doc
        return doc

    def urls(self) -> list[str]:
        return list(self._paths)


class Fetcher:
    """GETs remote context documents; never raises anything but NgsiError."""

    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"Accept": ACCEPT})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> dict[str, Any]:
        if not is_fetchable(url):
            raise NgsiError("BadRequestData", f"@context URL {url!r} is not an absolute http(s) URL")
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            async with self._session.get(url, max_redirects=MAX_REDIRECTS) as resp:
                if resp.status != 200:
                    raise NgsiError("LdContextNotAvailable", f"@context {url} could not be retrieved: "
                                                             f"HTTP {resp.status}")
                data = await _read_capped(resp, url)
        except NgsiError:
            raise
        except asyncio.TimeoutError:
            raise NgsiError("LdContextNotAvailable", f"@context {url} could not be retrieved: timeout") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise NgsiError("LdContextNotAvailable",
                            f"@context {url} could not be retrieved: {type(exc).__name__}: {exc}") from None
        return parse_document(data, url)


async def _read_capped(resp: aiohttp.ClientResponse, url: str) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_DOCUMENT_BYTES:
        raise NgsiError("BadRequestData", f"the @context document at {url} is larger than "
                                          f"{MAX_DOCUMENT_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise NgsiError("BadRequestData", f"the @context document at {url} is larger than "
                                              f"{MAX_DOCUMENT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

"""Broker settings: one frozen dataclass, filled from command-line flags and environment variables.

Every setting has an environment variable (``NGSILD_*``, plus the conventional ``DATABASE_URL``) so that
containers can be configured without flags; a flag wins over its variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ngsild-broker"


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 1026
    # None: start the embedded PostgreSQL in ``data_dir / "pgdata"``
    database_url: str | None = None
    data_dir: Path = field(default_factory=_default_data_dir)
    log_level: str = "info"
    # broker processes sharing the port (uvicorn workers); each has its own pool of ``pool_size``
    workers: int = 1
    # database connections per broker process
    pool_size: int = 16
    # extra URL -> local file entries for well-known @context documents (added to the shipped table)
    context_files: dict[str, str] = field(default_factory=dict)
    # seconds allowed for fetching one remote @context document
    context_fetch_timeout: float = 5.0
    # whether remote @context URLs that are not in the local table may be fetched at all
    context_fetch_remote: bool = True
    # request bodies above this many bytes get 413
    max_body_bytes: int = 8 * 1024 * 1024
    # JSON nesting deeper than this gets 400 (protects the recursive walkers)
    max_json_depth: int = 64
    # entities per batch request
    max_batch_entities: int = 10_000
    # milliseconds any one SQL statement may run (guards against pathological queries and regexes)
    statement_timeout_ms: int = 30_000
    # page size of entity queries when ``limit`` is not given, and the largest ``limit`` accepted (400 above)
    default_limit: int = 20
    max_limit: int = 1000
    # queries using an attribute before its index is built in the background (0: never build indexes)
    index_threshold: int = 3
    # seconds a change-log row is kept when no consumer has taken it
    change_retention_seconds: float = 600.0
    # temporal history (broker.temporal): record every write's attribute instances
    history: bool = True
    # deleting an entity through the core API: "delete" its history too (the ETSI suite's expectation) or "keep" it
    history_on_delete: str = "delete"
    # days of history kept (whole month partitions past it are dropped); 0 keeps everything
    history_retention_days: float = 0.0
    # attribute instances in one temporal response, all attributes together (206 + Content-Range beyond)
    temporal_instance_limit: int = 30

    @property
    def embedded(self) -> bool:
        return not self.database_url


def to_json(settings: Settings) -> str:
    """The settings as JSON (handed to worker processes through the environment)."""
    import dataclasses
    import json

    values = dataclasses.asdict(settings)
    values["data_dir"] = str(settings.data_dir)
    return json.dumps(values)


def from_json(text: str) -> Settings:
    import json

    values = json.loads(text)
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def parse_context_files(spec: str) -> dict[str, str]:
    """Parse ``URL=PATH`` entries separated by newlines or ``;`` (the NGSILD_CONTEXT_FILES format)."""
    table: dict[str, str] = {}
    for entry in spec.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        url, sep, path = entry.rpartition("=")
        if not sep or not url or not path:
            raise ValueError(f"context file entry {entry!r} is not URL=PATH")
        table[url.strip()] = path.strip()
    return table


def env_defaults(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, object]:
    """Settings values taken from the environment (only those that are set)."""
    values: dict[str, object] = {}
    simple = {
        "NGSILD_HOST": ("host", str),
        "NGSILD_PORT": ("port", int),
        "NGSILD_LOG_LEVEL": ("log_level", str),
        "NGSILD_POOL_SIZE": ("pool_size", int),
        "NGSILD_WORKERS": ("workers", int),
        "NGSILD_CONTEXT_FETCH_TIMEOUT": ("context_fetch_timeout", float),
        "NGSILD_MAX_BODY_BYTES": ("max_body_bytes", int),
        "NGSILD_MAX_BATCH_ENTITIES": ("max_batch_entities", int),
        "NGSILD_CHANGE_RETENTION": ("change_retention_seconds", float),
        "NGSILD_STATEMENT_TIMEOUT_MS": ("statement_timeout_ms", int),
        "NGSILD_INDEX_THRESHOLD": ("index_threshold", int),
        "NGSILD_DEFAULT_LIMIT": ("default_limit", int),
        "NGSILD_MAX_LIMIT": ("max_limit", int),
        "NGSILD_HISTORY_ON_DELETE": ("history_on_delete", str),
        "NGSILD_HISTORY_RETENTION_DAYS": ("history_retention_days", float),
        "NGSILD_TEMPORAL_INSTANCE_LIMIT": ("temporal_instance_limit", int),
    }
    for var, (name, conv) in simple.items():
        if environ.get(var):
            values[name] = conv(environ[var])
    if environ.get("DATABASE_URL"):
        values["database_url"] = environ["DATABASE_URL"]
    if environ.get("NGSILD_DATA_DIR"):
        values["data_dir"] = Path(environ["NGSILD_DATA_DIR"])
    if environ.get("NGSILD_CONTEXT_FILES"):
        values["context_files"] = parse_context_files(environ["NGSILD_CONTEXT_FILES"])
    if environ.get("NGSILD_HISTORY"):
        values["history"] = environ["NGSILD_HISTORY"].lower() not in ("0", "false", "no", "off")
    if environ.get("NGSILD_CONTEXT_FETCH_REMOTE"):
        values["context_fetch_remote"] = environ["NGSILD_CONTEXT_FETCH_REMOTE"].lower() not in ("0", "false", "no")
    return values

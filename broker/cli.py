"""Command line: ``python -m broker serve`` (also the ``ngsild-broker`` console script).

Flags override environment variables, which override the defaults in ``broker.config.Settings``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from .config import Settings, env_defaults, from_json, parse_context_files, to_json

DESCRIPTION = """\
An NGSI-LD context broker (ETSI GS CIM 009) over PostgreSQL.

commands:
  serve        run the broker (the default command)

Without --database-url / DATABASE_URL the broker starts an embedded PostgreSQL in <data dir>/pgdata
(kept across restarts) and stops it on shutdown.
"""

EPILOG = """\
environment variables (a flag wins over its variable):
  NGSILD_HOST, NGSILD_PORT, DATABASE_URL, NGSILD_DATA_DIR, NGSILD_LOG_LEVEL, NGSILD_POOL_SIZE, NGSILD_WORKERS,
  NGSILD_CONTEXT_FILES ("URL=PATH;URL=PATH"), NGSILD_CONTEXT_FETCH_TIMEOUT, NGSILD_CONTEXT_FETCH_REMOTE,
  NGSILD_MAX_BODY_BYTES, NGSILD_MAX_BATCH_ENTITIES, NGSILD_CHANGE_RETENTION (seconds),
  NGSILD_STATEMENT_TIMEOUT_MS, NGSILD_INDEX_THRESHOLD, NGSILD_DEFAULT_LIMIT, NGSILD_MAX_LIMIT,
  NGSILD_HISTORY (on/off), NGSILD_HISTORY_ON_DELETE (delete/keep), NGSILD_HISTORY_RETENTION_DAYS,
  NGSILD_TEMPORAL_INSTANCE_LIMIT
"""


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m broker", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="what to do (serve)")
    parser.add_argument("--host", help=f"address to listen on (NGSILD_HOST, default {defaults.host})")
    parser.add_argument("--port", type=int, help=f"port to listen on (NGSILD_PORT, default {defaults.port})")
    parser.add_argument("--database-url", help="PostgreSQL URL, e.g. postgresql://user@host:5432/db "
                                               "(DATABASE_URL; default: embedded PostgreSQL)")
    parser.add_argument("--data-dir", type=Path, help=f"data directory for the embedded PostgreSQL "
                                                      f"(NGSILD_DATA_DIR, default {defaults.data_dir})")
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                        help=f"log level (NGSILD_LOG_LEVEL, default {defaults.log_level})")
    parser.add_argument("--pool-size", type=int, help=f"database connections per process (NGSILD_POOL_SIZE, "
                                                      f"default {defaults.pool_size})")
    parser.add_argument("--workers", type=int, help=f"broker processes sharing the port (NGSILD_WORKERS, "
                                                    f"default {defaults.workers})")
    parser.add_argument("--context-file", action="append", metavar="URL=PATH", default=[],
                        help="serve the @context at URL from a local file (repeatable; NGSILD_CONTEXT_FILES)")
    parser.add_argument("--no-remote-contexts", action="store_true",
                        help="never fetch @context URLs from the network (NGSILD_CONTEXT_FETCH_REMOTE=false)")
    parser.add_argument("--no-history", action="store_true",
                        help="do not record the temporal history of writes (NGSILD_HISTORY=off)")
    parser.add_argument("--history-on-delete", choices=["delete", "keep"],
                        help="what deleting an entity does to its history (NGSILD_HISTORY_ON_DELETE, "
                             f"default {defaults.history_on_delete})")
    parser.add_argument("--history-retention-days", type=float,
                        help="days of history kept, 0 for all (NGSILD_HISTORY_RETENTION_DAYS, default 0)")
    return parser


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    values = env_defaults(os.environ if environ is None else environ)
    for name in ("host", "port", "database_url", "data_dir", "log_level", "pool_size", "workers"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.context_file:
        files = dict(values.get("context_files", {}))  # type: ignore[arg-type]
        files.update(parse_context_files(";".join(args.context_file)))
        values["context_files"] = files
    if args.no_remote_contexts:
        values["context_fetch_remote"] = False
    if args.no_history:
        values["history"] = False
    for name in ("history_on_delete", "history_retention_days"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return replace(Settings(), **values)  # type: ignore[arg-type]


SETTINGS_ENV, DSN_ENV = "NGSILD_WORKER_SETTINGS", "NGSILD_WORKER_DSN"


def app_from_environment() -> object:
    """The app of one worker process (``--workers N``)."""
    from .app import create_app

    settings = from_json(os.environ[SETTINGS_ENV])
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings, os.environ[DSN_ENV])


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings) -> None:
    import signal

    import uvicorn

    from .api import listeners
    from .api.transport import http_protocol
    from .app import create_app
    from .embedded import EmbeddedPostgres

    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal with the handler that was in place
    # before it started; with the default handler the process would die there, before the embedded
    # PostgreSQL is stopped. This handler turns it into a normal exit that runs the ``finally`` below.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    embedded = None
    dsn = settings.database_url
    if not dsn:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = embedded.start()
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
                   lifespan="on", server_header=False, http=http_protocol())
    try:
        if settings.workers > 1:
            # worker processes import the app factory and read the settings and DSN from the environment
            os.environ[SETTINGS_ENV] = to_json(settings)
            os.environ[DSN_ENV] = dsn
            listeners.serve_workers("broker.cli:app_from_environment", settings.workers, options)
        else:
            uvicorn.run(create_app(settings, dsn), **options)
    finally:
        if embedded is not None:
            embedded.stop()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        serve(settings)

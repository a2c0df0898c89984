"""The database schema, as versioned migrations, and the runner that applies them.

Two kinds of migrations:

* ``GLOBAL``: the ``ngsild`` schema shared by all tenants (tenant registry, change log, @context store).
* ``TENANT``: the tables of one tenant, applied to each tenant schema (``{schema}`` is replaced by the
  tenant's validated schema name). A tenant created later gets all of them at once.

Migrations are append-only: never edit one that has shipped, add the next version. The runner holds a
PostgreSQL advisory lock while it works, so several broker processes starting together are safe: the first
applies, the others wait and find nothing left to do.

Storage layout (what the query, notification and temporal issues build on):

* ``{schema}.entities``: one row per entity. ``id`` is ``COLLATE "C"`` so its unique B-tree also serves
  ``idPattern`` prefixes; ``types`` (expanded IRIs) is indexed by (first type, id) plus a partial index of
  the entities with several types (type queries come out in id order); ``attrs`` holds the
  attributes in the internal form described in ``broker.model``; ``version`` increases on every write and is
  how single-entity writes detect a concurrent change (optimistic concurrency, see ``broker.store.entities``).
* ``ngsild.changes``: what every write changed, appended in the same statement/transaction as the write,
  one row per request (a batch is one row), ``payload`` being the JSON bytes of the entries
  (``broker.store.changes``): the durable record a notification dispatcher and a temporal history consume.
* ``ngsild.subscriptions`` (every tenant's, ``broker.subscriptions``) and ``ngsild.dispatch_cursors`` (how far
  each notification partition has handled the change log, ``broker.notify.dispatcher``).
* ``ngsild.registrations``: every tenant's Context Source Registrations (``broker.registrations``).
"""

from __future__ import annotations

import logging
import re

import asyncpg

from ..temporal.tables import TENANT_MIGRATION as TENANT_HISTORY
from .geo_functions import DROP_GEO_BOX_INDEXES, GEO_BBOX, GEO_FUNCTIONS, GEO_LOCATE

log = logging.getLogger(__name__)

# an arbitrary constant: the advisory lock that serialises schema changes across processes
MIGRATION_LOCK_KEY = 7_260_431_919

# runs ``sql`` only on a server built with lz4 (PL/pgSQL, so a tenant's ``{schema}`` is replaced as usual)
_IF_LZ4 = """
DO $lz4$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        {sql}
    END IF;
END $lz4$;
"""

GLOBAL: list[tuple[int, str, str]] = [
    (1, "tenant registry, change log, @context store", """
CREATE TABLE ngsild.tenants (
    name text PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    schema_version integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ngsild.changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    payload jsonb NOT NULL
);
CREATE INDEX changes_at ON ngsild.changes (at);
CREATE TABLE ngsild.contexts (
    tenant text NOT NULL DEFAULT '',
    id text NOT NULL,
    url text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('Hosted', 'Cached', 'ImplicitlyCreated')),
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    hits bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX contexts_url ON ngsild.contexts (tenant, url);
"""),
    (2, "change-log payload as bytes", """
-- The change log is read only by the broker: storing the JSON as bytes spares PostgreSQL a jsonb parse of
-- every entry (measured: ~40% of a 1,000-entity batch upsert's database time).
ALTER TABLE ngsild.changes ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8');
ALTER TABLE ngsild.changes ALTER COLUMN payload SET STORAGE EXTERNAL;
"""),
    (3, "geo helper functions", GEO_FUNCTIONS),
    (4, "subscriptions and notification dispatch", """
-- Subscriptions of every tenant (broker.subscriptions); body: the stored form, context: the @context the
-- subscription was written with. The counters are kept by the dispatcher (broker.notify), in batches.
CREATE TABLE ngsild.subscriptions (
    tenant text NOT NULL,
    id text NOT NULL,
    body jsonb NOT NULL,
    context jsonb,
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    times_sent bigint NOT NULL DEFAULT 0,
    times_failed bigint NOT NULL DEFAULT 0,
    last_notification timestamptz,
    last_success timestamptz,
    last_failure timestamptz,
    PRIMARY KEY (tenant, id)
);
-- Where each dispatch partition has got to in ngsild.changes: every change up to seq has been handled.
CREATE TABLE ngsild.dispatch_cursors (
    part integer PRIMARY KEY,
    seq bigint NOT NULL
);
"""),
    (5, "subscription version", """
-- Bumped by every subscription write, in its transaction: a dispatcher that reads a change together with a
-- version its registry has not applied yet waits for the announcements first (broker.notify.registry.sync);
-- otherwise it spares that round trip.
CREATE TABLE ngsild.subscription_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), v bigint NOT NULL);
INSERT INTO ngsild.subscription_version (v) VALUES (0);
"""),
    (6, "change-log payload compressed with lz4", """
-- Stored EXTERNAL (uncompressed) since version 2, as pglz cost more than it saved; lz4 compresses a
-- 1,000-entity upsert's entry (1.3 MB) in a few milliseconds, less than writing it whole, and the WAL of a
-- batch shrinks with it. Only where the server is built with lz4 (the embedded one may not be).
""" + _IF_LZ4.format(sql="ALTER TABLE ngsild.changes ALTER COLUMN payload SET STORAGE EXTENDED; "
                        "ALTER TABLE ngsild.changes ALTER COLUMN payload SET COMPRESSION lz4;")),
    (7, "history recorded from the change log", """
-- Where the history recorder (broker.temporal.recorder) has got to in ngsild.changes: every change up to pos
-- is recorded (or known never to exist), so are the seqs in done; gaps: {seq: the xmax when first missed}.
-- Changes before this migration were recorded by their writes, so the recorder starts after them.
CREATE TABLE ngsild.history_cursor (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    pos bigint NOT NULL,
    done bigint[] NOT NULL DEFAULT '{}',
    gaps jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO ngsild.history_cursor (pos) SELECT coalesce(max(seq), 0) FROM ngsild.changes;
"""),
    (8, "geo-query box as a PL/pgSQL function (broker.store.geo_functions)", GEO_BBOX),
    (9, "geo point location as a PL/pgSQL function (broker.store.geo_functions)", GEO_LOCATE),
    (10, "context source registrations", """
-- Context Source Registrations of every tenant (broker.registrations); body: the stored form, context: the
-- @context the registration was written with.
CREATE TABLE ngsild.registrations (
    tenant text NOT NULL,
    id text NOT NULL,
    body jsonb NOT NULL,
    context jsonb,
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);
"""),
    (11, "context source identity", """
-- This broker installation's identity (5.2.40 ContextSourceIdentity, broker.api.info): drawn once, shared by
-- every process on the database, stable across restarts.
CREATE TABLE ngsild.source_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO ngsild.source_identity DEFAULT VALUES;
"""),
]

TENANT: list[tuple[int, str, str]] = [
    (1, "entities", """
CREATE TABLE {schema}.entities (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    types text[] NOT NULL,
    scopes text[],
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    version integer NOT NULL DEFAULT 1,
    attrs jsonb NOT NULL
);
CREATE UNIQUE INDEX entities_id ON {schema}.entities (id);
CREATE INDEX entities_types ON {schema}.entities USING gin (types);
"""),
    (2, "room on every page for updates", """
-- Attribute updates rewrite the row; with free space on its page PostgreSQL updates it in place (a HOT
-- update: no index maintenance, no new index entries to vacuum).
ALTER TABLE {schema}.entities SET (fillfactor = 80);
"""),
    (3, "type index ordered by id", """
-- Type queries page in id order: a B-tree on (first type, id) yields an entity type's rows already sorted
-- (LIMIT/OFFSET stop early, no sort of the whole type); a small partial GIN index finds the entities that
-- have the type in a later position. Together they replace the GIN index on all types (broker.query.types).
-- INCLUDE (types): PostgreSQL plans an index-only scan of an expression index only if the columns under the
-- expression are in it too; offset=50,000 of one type then reads index pages only (measured at 100k: 7 ms
-- instead of a 60 ms sort of the type's rows; the index was 22 MB with or without the included array).
CREATE INDEX entities_type_id ON {schema}.entities ((types[1]), id) INCLUDE (types);
CREATE INDEX entities_more_types ON {schema}.entities USING gin ((types[2:])) WHERE cardinality(types) > 1;
DROP INDEX {schema}.entities_types;
"""),
    (4, "temporal history (broker.temporal.tables)", TENANT_HISTORY),
    (5, "entity documents compressed with lz4", """
-- Documents over ~2 kB are compressed (and decompressed on every read): lz4 does both faster than
-- PostgreSQL's default pglz.
""" + _IF_LZ4.format(sql="ALTER TABLE {schema}.entities ALTER COLUMN attrs SET COMPRESSION lz4;")),
    (6, "indexes on the replaced geo box dropped", DROP_GEO_BOX_INDEXES),
]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(name: str) -> str:
    """Schema names are spliced into SQL: only our own generated, lower-case identifiers pass."""
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"invalid schema name {name!r}")
    return name


async def _global_version(conn: asyncpg.Connection) -> int:
    await conn.execute("""
        CREATE SCHEMA IF NOT EXISTS ngsild;
        CREATE TABLE IF NOT EXISTS ngsild.schema_migrations (
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )""")
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM ngsild.schema_migrations")


async def migrate_tenant(conn: asyncpg.Connection, schema: str, current: int) -> int:
    """Apply the pending tenant migrations to one schema (caller holds the lock, inside a transaction)."""
    check_schema_name(schema)
    version = current
    for number, description, sql in TENANT:
        if number <= current:
            continue
        log.info("migrating tenant schema %s to version %d: %s", schema, number, description)
        await conn.execute(sql.replace("{schema}", schema))
        version = number
    await conn.execute("UPDATE ngsild.tenants SET schema_version = $1 WHERE schema_name = $2", version, schema)
    return version


async def migrate(conn: asyncpg.Connection) -> None:
    """Bring the global schema and every tenant schema up to date."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        current = await _global_version(conn)
        for number, description, sql in GLOBAL:
            if number <= current:
                continue
            log.info("migrating global schema to version %d: %s", number, description)
            await conn.execute(sql)
            await conn.execute("INSERT INTO ngsild.schema_migrations (version, description) VALUES ($1, $2)",
                               number, description)
        latest = TENANT[-1][0]
        rows = await conn.fetch("SELECT schema_name, schema_version FROM ngsild.tenants WHERE schema_version < $1",
                                latest)
        for row in rows:
            await migrate_tenant(conn, row["schema_name"], row["schema_version"])

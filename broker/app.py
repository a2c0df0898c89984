"""The ASGI application: wiring of settings, database, JSON-LD contexts and the HTTP routes.

``create_app(settings, dsn)`` builds a Starlette app whose lifespan opens the pool, migrates the schema and
prepares the context resolver; handlers reach those through ``broker.services.broker_of(request)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .api import routes as api_routes
from .api.errors import HANDLERS
from .api.middleware import NgsiMiddleware
from .config import Settings
from .jsonld import ContextResolver
from .query.geo import detect_postgis
from .store import changes, db, schema
from .store.batch import BatchStore
from .store.entities import EntityStore
from .store.indexes import IndexAdvisor
from .store.tenants import DEFAULT_TENANT, Tenants
from .temporal import tables
from .notify.dispatcher import Dispatcher
from .temporal.recorder import Recorder
from .notify.registry import Registry
from .services import Broker
from .subscriptions.store import SubscriptionStore

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """A batch request creates tens of thousands of short-lived containers; with CPython's default gen-0
    threshold (700) the cyclic collector re-scans them over and over (measured: ~30% of a batch upsert's
    CPU). The broker's data has no reference cycles to speak of, so collect far less often, and move the
    long-lived startup objects (modules, contexts) out of the collector's sight."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def _own_url(settings: Settings) -> str:
    """Where receivers of notifications can fetch the contexts this broker hosts."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def _both(first: Callable[[str], None], second: Callable[[str], None]) -> Callable[[str], None]:
    def both(tenant: str) -> None:
        first(tenant)
        second(tenant)
    return both


def create_app(settings: Settings, dsn: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        conn = await db.connect(dsn)
        try:
            await schema.migrate(conn)
        finally:
            await conn.close()
        pool = await db.create_pool(dsn, settings.pool_size, settings.statement_timeout_ms)
        tenants = Tenants(pool)
        await tenants.schema(DEFAULT_TENANT, create=True)
        contexts = ContextResolver(settings, pool)
        await contexts.start()
        await contexts.listen(dsn)
        entities = EntityStore(pool, tenants, history=settings.history)
        recorder = Recorder(pool, tenants, keep_deleted=settings.history_on_delete == "keep")
        indexes = IndexAdvisor(dsn, threshold=settings.index_threshold)
        indexes.start()
        subscriptions = SubscriptionStore(pool)
        registry = Registry(dsn, subscriptions, contexts, _own_url(settings))
        await registry.start()
        postgis = await detect_postgis(pool)
        dispatcher = Dispatcher(dsn, pool, tenants, registry, subscriptions, settings.workers, postgis)
        await dispatcher.start()
        entities.on_write = _both(dispatcher.wake, recorder.wake) if settings.history else dispatcher.wake
        if settings.history:
            recorder.start()
        app.state.broker = Broker(settings, pool, tenants, contexts, entities, BatchStore(entities), indexes,
                                  subscriptions, postgis, dispatcher, recorder if settings.history else None,
                                  str(await pool.fetchval("SELECT id FROM ngsild.source_identity")))
        pruner = asyncio.create_task(changes.prune_forever(pool, settings.change_retention_seconds,
                                                           settings.history))
        upkeep = asyncio.create_task(tables.maintain_forever(pool, tenants.schemas, settings.history_retention_days))
        tune_gc()
        log.info("broker ready")
        try:
            yield
        finally:
            pruner.cancel()
            upkeep.cancel()
            await dispatcher.close()
            await recorder.close()
            await registry.close()
            await indexes.close()
            await contexts.close()
            await pool.close()

    return Starlette(
        routes=api_routes.routes(),
        middleware=[Middleware(NgsiMiddleware)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )

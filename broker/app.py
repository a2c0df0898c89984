"""The ASGI application: wiring of settings, database, JSON-LD contexts and the HTTP routes.

``create_app(settings, dsn)`` builds a Starlette app whose lifespan opens the pool, migrates the schema and
prepares the context resolver; handlers reach those through ``broker.services.broker_of(request)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .api import routes as api_routes
from .api.errors import HANDLERS
from .api.middleware import NgsiMiddleware
from .config import Settings
from .jsonld import ContextResolver
from .store import changes, db, schema
from .store.batch import BatchStore
from .store.entities import EntityStore
from .store.tenants import DEFAULT_TENANT, Tenants
from .services import Broker

log = logging.getLogger(__name__)


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
        entities = EntityStore(pool, tenants)
        app.state.broker = Broker(settings, pool, tenants, contexts, entities, BatchStore(entities))
        pruner = asyncio.create_task(changes.prune_forever(pool, settings.change_retention_seconds))
        log.info("broker ready")
        try:
            yield
        finally:
            pruner.cancel()
            await contexts.close()
            await pool.close()

    return Starlette(
        routes=api_routes.routes(),
        middleware=[Middleware(NgsiMiddleware)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )

"""The per-process services a request handler uses (pool, tenants, contexts, stores), built by ``broker.app``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.requests import Request

from .config import Settings
from .jsonld import ContextResolver
from .store.batch import BatchStore
from .store.entities import EntityStore
from .store.indexes import IndexAdvisor
from .store.tenants import Tenants
from .subscriptions.store import SubscriptionStore


@dataclass
class Broker:
    settings: Settings
    pool: asyncpg.Pool
    tenants: Tenants
    contexts: ContextResolver
    entities: EntityStore
    batch: BatchStore
    indexes: IndexAdvisor
    subscriptions: SubscriptionStore
    postgis: bool = False  # the database has PostGIS (geo-queries use it; same answers without)
    dispatcher: Any = None  # broker.notify.dispatcher.Dispatcher (its unflushed counters complete reads)
    recorder: Any = None  # broker.temporal.recorder.Recorder, with history on
    source_id: str = ""  # this installation's identity (ngsild.source_identity), for /info/sourceIdentity


def broker_of(request: Request) -> Broker:
    return request.app.state.broker

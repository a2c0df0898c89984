"""The in-memory index of every tenant's subscriptions, kept in step with ``ngsild.subscriptions``.

Each broker process loads all subscriptions at start, then LISTENs on the store's channel (a dedicated
connection): an announcement names one (tenant, id), which is re-read and recompiled, so a change made
through any process is in force everywhere a few milliseconds after it commits. A lost connection triggers
a full reload once reconnected (announcements sent meanwhile are lost, the table is not).

Lookup (``candidates``) narrows by entity id and type: each selector of a rule files it under its entity id
or, without one, under its plain type; rules with a type expression or no selectors (watchedAttributes
only) are checked for every change of the tenant. 10,000 one-entity subscriptions cost a dict lookup per
change, not 10,000 checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from typing import Any, Callable, KeysView

import asyncpg

from ..api.params import make_join, make_view
from ..errors import NgsiError
from ..jsonld import ContextResolver
from ..store import db
from ..subscriptions.store import CHANGES_CHANNEL, CHANNEL, SEPARATOR, SubscriptionStore
from .rules import Rule, compile_rule

log = logging.getLogger(__name__)
RECONNECT_DELAY = 1.0


class Registry:
    def __init__(self, dsn: str, store: SubscriptionStore, contexts: ContextResolver, base_url: str) -> None:
        self.dsn = dsn
        self.base_url = base_url  # where this broker serves hosted @contexts (links in notifications)
        self.store = store
        self.contexts = contexts
        self.rules: dict[tuple[str, str], Rule] = {}
        self.periodic: dict[tuple[str, str], Rule] = {}  # the rules with timeInterval
        # tenant -> ("id", entity id) | ("type", type IRI) -> {id: rule}; tenant -> {id: rule} for unkeyed rules
        self._keyed: dict[str, dict[tuple[str, str], dict[str, Rule]]] = defaultdict(lambda: defaultdict(dict))
        self._any_type: dict[str, dict[str, Rule]] = defaultdict(dict)
        # rules per tenant, only tenants that have some: changes of other tenants need no reading
        self._per_tenant: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._pending: set[tuple[str, str]] = set()
        self.on_changes: Callable[[], None] = lambda: None  # some process committed writes (a wake-up)
        self.on_deleted: Callable[[str, str], None] = lambda tenant, sub_id: None
        self._heard = 0    # the highest subscription version announced to this process
        self.version = 0   # the version every change up to which is in force here
        self._wake = asyncio.Event()
        self._reloading = asyncio.Lock()

    async def start(self) -> None:
        await self._connect()
        await self.reload_all()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            await self._conn.close()

    @property
    def watched(self) -> KeysView[str]:
        """The tenants that have subscriptions (only their changes can notify)."""
        return self._per_tenant.keys()

    def candidates(self, tenant: str, entity_id: str, types: list[str]) -> list[Rule]:
        found: dict[str, Rule] = dict(self._any_type[tenant]) if tenant in self._any_type else {}
        keyed = self._keyed.get(tenant)
        if keyed:
            for key in (("id", entity_id), *(("type", t) for t in types)):
                if key in keyed:
                    found.update(keyed[key])
        return list(found.values())

    async def sync_to(self, version: int) -> None:
        """``sync`` only if subscription writes up to ``version`` may not be in force yet."""
        if version <= self.version:
            return
        if self._heard < version:  # its announcement is on the way: fetch it (see sync)
            await self.sync()
        else:
            await self._reload_pending()
        self.version = max(self.version, version)

    async def sync(self) -> None:
        """Make every subscription change committed before now visible to ``candidates``.

        PostgreSQL sends a listener its pending notifications before the answer to its next query, and asyncpg
        runs the listener callbacks before it resumes the query's caller: so after one round trip on the
        listening connection every announcement committed earlier is in ``_pending``. The dispatcher calls
        this after reading changes, so a subscription created before a write always sees that write."""
        if self._conn is None or self._conn.is_closed():
            return
        await self._conn.fetchval("SELECT 1")
        await asyncio.sleep(0)
        await self._reload_pending()

    # ---- keeping in step ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._conn = await db.connect(self.dsn)
        await self._conn.add_listener(CHANNEL, self._announced)
        await self._conn.add_listener(CHANGES_CHANNEL, self._changes_announced)

    def _changes_announced(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.on_changes()  # a process wrote: this one may own the subscriptions concerned

    def _announced(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        tenant, sub_id, version = payload.split(SEPARATOR)
        self._pending.add((tenant, sub_id))
        self._heard = max(self._heard, int(version))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._conn is None or self._conn.is_closed():
                await self._reconnect()
                continue
            await self._reload_pending()

    async def _reload_pending(self) -> None:
        # one reload at a time: a sync() must wait for a reload the background task has already taken on
        async with self._reloading:
            pending, self._pending = self._pending, set()
            for tenant, sub_id in pending:
                try:
                    row = await self.store.get(tenant, sub_id)
                    await self._put(tenant, sub_id, row)
                except (asyncpg.PostgresError, OSError) as exc:
                    log.warning("reloading subscription %s failed: %s", sub_id, exc)
                    self._pending.add((tenant, sub_id))

    async def _reconnect(self) -> None:
        try:
            await self._connect()
            await self.reload_all()
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("subscription channel reconnect failed: %s", exc)
            await asyncio.sleep(RECONNECT_DELAY)
            self._wake.set()

    async def reload_all(self) -> None:
        for rule in list(self.rules.values()):
            self._remove(rule)
        version, rows = await self.store.all()
        self.version = max(self.version, version)
        for row in rows:
            rule = await self._compile(row)
            if rule is not None:
                self._add(rule)

    async def _put(self, tenant: str, sub_id: str, row: asyncpg.Record | None) -> None:
        old = self.rules.get((tenant, sub_id))
        if old is not None:
            self._remove(old)
        rule = await self._compile(row) if row is not None else None
        if rule is not None:
            self._add(rule)
        elif row is None:
            self.on_deleted(tenant, sub_id)

    async def _compile(self, row: asyncpg.Record) -> Rule | None:
        body = row["body"]
        try:
            ctx = await self.contexts.resolve(row["context"], row["tenant"], use=False)
            notification = body["notification"]
            options = {"sysAttrs"} if notification.get("sysAttrs") else set()
            view = make_view(ctx, options, fmt=notification.get("format"),
                             attrs=notification.get("attributes"), pick=notification.get("pick"),
                             omit=notification.get("omit"), lang=body.get("lang"),
                             datasets=body.get("datasetId"))
            rule = compile_rule(row["tenant"], body, ctx, row["created_at"], view)
            rule.join = make_join(view, notification.get("join"), notification.get("joinLevel"))
            url = body.get("jsonldContext")
            rule.notify_ctx = await self.contexts.resolve(url, row["tenant"], use=False) if url else ctx
            rule.link = url or await self.contexts.link_url(ctx, self.base_url, row["tenant"])
            return rule
        except NgsiError as exc:  # e.g. its @context is no longer available: it cannot match until it is
            log.warning("subscription %s cannot be used: %s", body.get("id"), exc.detail)
            return None
        except Exception:  # a background task must outlive one bad row; the row stays for inspection
            log.exception("subscription %s cannot be compiled", body.get("id"))
            return None

    def _add(self, rule: Rule) -> None:
        self.rules[(rule.tenant, rule.id)] = rule
        self._per_tenant[rule.tenant] += 1
        if "timeInterval" in rule.body:
            self.periodic[(rule.tenant, rule.id)] = rule
        if rule.index_keys:
            for key in rule.index_keys:
                self._keyed[rule.tenant][key][rule.id] = rule
        else:
            self._any_type[rule.tenant][rule.id] = rule

    def _remove(self, rule: Rule) -> None:
        if self.rules.pop((rule.tenant, rule.id), None) is not None:
            self._per_tenant[rule.tenant] -= 1
            if not self._per_tenant[rule.tenant]:
                del self._per_tenant[rule.tenant]
        self.periodic.pop((rule.tenant, rule.id), None)
        for key in rule.index_keys:
            self._keyed[rule.tenant][key].pop(rule.id, None)
        self._any_type[rule.tenant].pop(rule.id, None)

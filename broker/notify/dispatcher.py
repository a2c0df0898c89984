"""The dispatcher: reads the change log, matches each change against the registry, hands notifications to
delivery, and keeps a durable cursor per partition so that no owed notification is lost.

Partitions. A subscription belongs to partition ``crc32(tenant, id) % PARTS``. A broker process owns the
partitions whose session advisory lock it holds (on a dedicated connection): at start it takes its share
(``PARTS / workers``), later it also takes partitions nobody holds (a process that died released its locks
with its connection). Only the owner notifies a partition's subscriptions, so several processes share the
work without sending anything twice; the owner alone keeps a subscription's order and throttling clock.

Reading. ``seq`` values are drawn before their transactions commit, so a change can become visible after
a higher one. The reader keeps ``pos`` (every change up to it is handled or known never to exist) and the
set of higher seqs already handled. A missing seq is a gap: it is waited for until every transaction that
was running when the gap was seen has ended (the snapshot's xmin passes the xmax recorded then); if it has
not appeared by then, it never will (a rolled-back write). Every writer takes its transaction id before it
draws a seq (the entity row is written first), which is what makes that test sound.

Durability. A partition's cursor is written (every ``FLUSH_EVERY`` s) as the highest seq below which every
change has been matched and each of its notifications delivered or finally failed. After a crash the owner
resumes from there: notifications whose delivery was not confirmed are sent again (at least once; the same
notification id, see ``broker.notify.payload``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ..errors import NgsiError
from ..model.operations import iso
from ..api.http import GEO_JSON
from ..model.geojson_out import DEFAULT_GEOMETRY, feature, feature_collection
from ..model.render import Inline, render_entity
from ..model.values import now_iso
from ..store import db
from ..store.linked import collect_linked, fetch_by_ids
from ..store.tenants import Tenants
from ..subscriptions.model import status_of
from ..subscriptions.store import CHANGES_CHANNEL, SubscriptionStore
from .delivery import HttpDelivery, Job, Queues
from .mqtt import MqttDelivery
from .payload import data_row, headers_of, notification, notification_of, render_data, state_attrs
from .periodic import geo_matches, periodic_rows
from .registry import Registry
from .rules import Event, Rule, event_of

log = logging.getLogger(__name__)
PARTS = 8
LOCK_BASE = 7_260_431_930
BATCH = 500
POLL_INTERVAL = 0.02  # the longest wait for changes: a fallback, wake-ups come from the writes
# while nothing happens the fallback poll slows down to this (an idle broker polling 50 times a second per
# process used 0.3 of a core); a gap waiting for its transaction keeps the fast poll
IDLE_POLL_INTERVAL = 1.0
TELL_EVERY = 0.001
# after a wake-up, the reader waits this long so that one read of the change log takes the writes committed
# meanwhile (at 1,000 writes/s, a read per write would cost more database round trips than the writes)
GATHER = 0.002
FLUSH_EVERY = 0.2
# the counters are flushed at most once per SETTLE_GATHER: under load the outcomes of those moments share one
# statement (a flush per notification would cost a statement each), while the first outcome after a quiet
# moment is flushed at once, so that another process's read right after a notification counts it
SETTLE_GATHER = 0.05
PERIODIC_TICK = 0.25  # how often periodic subscriptions are checked for being due
GRAB_AFTER = 10.0  # seconds after start before taking partitions beyond this process's share
DELIVERY_TIMEOUT = 10.0  # seconds a delivery may take when the endpoint sets no timeout

# the payloads only of the tenants that have subscriptions ($3): most changes of a broker without any (a bulk
# load) would otherwise be read, decompressed and decoded by every process for nothing
_READ = ("SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax, "
         "(SELECT v FROM ngsild.subscription_version) AS sv, c.seq, c.tenant, "
         "CASE WHEN c.tenant = ANY($3::text[]) THEN c.payload END AS payload "
         "FROM (SELECT pg_current_snapshot() AS s) x LEFT JOIN LATERAL "
         "(SELECT seq, tenant, payload FROM ngsild.changes WHERE seq > $1 ORDER BY seq LIMIT $2) c ON true")
_PAYLOADS = "SELECT seq, payload FROM ngsild.changes WHERE seq = ANY($1::bigint[])"
_RANGE = "SELECT seq, tenant, payload FROM ngsild.changes WHERE seq > $1 AND seq <= $2 ORDER BY seq"


def part_of(tenant: str, sub_id: str) -> int:
    return zlib.crc32(f"{tenant}\x1f{sub_id}".encode()) % PARTS


@dataclass
class Part:
    start: int          # changes up to here were handled before this process took the partition
    saved: int
    pending: Counter[int] = field(default_factory=Counter)  # change seq -> notifications not yet settled


def settle_delay(since_flush: float) -> float:
    """How long a flush of the counters waits after an outcome, ``since_flush`` seconds after the last one:
    nothing after a quiet moment, else the rest of ``SETTLE_GATHER`` (at most one flush per interval)."""
    return max(0.0, SETTLE_GATHER - since_flush)


class Dispatcher:
    def __init__(self, dsn: str, pool: asyncpg.Pool, tenants: Tenants, registry: Registry,
                 store: SubscriptionStore, workers: int = 1, postgis: bool = False) -> None:
        self.dsn = dsn
        self.pool = pool
        self.tenants = tenants
        self.registry = registry
        self.store = store
        self.postgis = postgis
        self.share = math.ceil(PARTS / max(1, workers))
        self.delivery = HttpDelivery(self._settled)
        self.mqtt = MqttDelivery(self._settled)
        self.delivery.on_trouble = self.mqtt.on_trouble = self._unpin
        self.owned: dict[int, Part] = {}
        self.pos = 0
        self.seen: set[int] = set()
        self.gaps: dict[int, int] = {}
        self.quiet = False  # the last read found nothing and no gap is pending
        self.last_sent: dict[tuple[str, str], float] = {}
        self.totals: Counter[str] = Counter()  # this process's notifications sent / failed, for metrics
        self.stats: dict[tuple[str, str], list[Any]] = {}     # outcomes not yet flushed
        self._flushing: dict[tuple[str, str], list[Any]] = {}  # outcomes being written
        self._conn: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._tell = asyncio.Event()    # writes to announce to the other processes
        self._settle = asyncio.Event()  # outcomes to record: flush soon (other processes read the counters)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self._flushed_at = 0.0  # when counters were last flushed (monotonic)

    async def start(self) -> None:
        await self.pool.execute(
            "INSERT INTO ngsild.dispatch_cursors (part, seq) SELECT p, (SELECT coalesce(max(seq), 0) FROM "
            "ngsild.changes) FROM generate_series(0, $1 - 1) p ON CONFLICT DO NOTHING", PARTS)
        self._conn = await db.connect(self.dsn)
        await self._acquire(self.share)
        self.pos = min((p.start for p in self.owned.values()), default=None) or \
            await self.pool.fetchval("SELECT min(seq) FROM ngsild.dispatch_cursors")
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._flush_forever()),
                       asyncio.create_task(self._periodic_forever()), asyncio.create_task(self._tell_forever())]
        self.registry.on_changes = self._wake.set
        self.registry.on_deleted = self.forget

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._flush()
        await self.delivery.close()
        await self.mqtt.close()
        if self._conn is not None:
            await self._conn.close()

    def wake(self, tenant: str) -> None:
        """A write to ``tenant`` committed in this process: look at the change log now rather than at the
        next poll, and tell the other processes (they may own the subscriptions it concerns). A write to a
        tenant without subscriptions owes no notification: it costs no round trip (a NOTIFY per millisecond
        and the reads it causes in every process cost single-entity writes about a quarter of their rate);
        the readers' poll moves past it."""
        if tenant not in self.registry.watched:
            return
        self._wake.set()
        self._tell.set()

    async def _tell_forever(self) -> None:
        """At most one NOTIFY per ``TELL_EVERY``, outside any write's transaction (a NOTIFY in the write
        itself would serialise the commits): other processes' dispatchers wake instead of waiting for
        their next poll."""
        while True:
            await self._tell.wait()
            self._tell.clear()
            try:
                await self.pool.execute(f"SELECT pg_notify('{CHANGES_CHANNEL}', '')")
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("dispatcher wake-up: %s", exc)
            await asyncio.sleep(TELL_EVERY)

    # ---- partitions -----------------------------------------------------------------------------------

    async def _acquire(self, limit: int) -> list[int]:
        assert self._conn is not None
        taken = []
        for part in range(PARTS):
            if len(self.owned) >= limit:
                break
            if part in self.owned:
                continue
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_BASE + part):
                start = await self._conn.fetchval("SELECT seq FROM ngsild.dispatch_cursors WHERE part = $1", part)
                self.owned[part] = Part(start, start)
                taken.append(part)
        return taken

    async def _maintain_partitions(self) -> None:
        if self._conn is None or self._conn.is_closed():  # lost the locks with the connection
            log.warning("dispatcher lost its partition connection; reconnecting")
            self.owned.clear()
            self._conn = await db.connect(self.dsn)
            limit = self.share
        elif time.monotonic() - self._started > GRAB_AFTER and len(self.owned) < PARTS:
            limit = PARTS
        else:
            return
        for part in await self._acquire(limit):
            await self._catch_up(part)

    async def _catch_up(self, part: int) -> None:
        """A partition taken while running: replay what the reader has handled since its cursor."""
        start = self.owned[part].start
        upto = max(self.seen, default=self.pos)
        if upto <= start:
            return
        rows = await self.pool.fetch(_RANGE, start, upto)
        await self._dispatch([r for r in rows if r["seq"] <= self.pos or r["seq"] in self.seen], only=part)

    # ---- reading ----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        last_check = 0.0
        poll = POLL_INTERVAL
        while True:
            try:
                if time.monotonic() - last_check > 1.0:
                    last_check = time.monotonic()
                    await self._maintain_partitions()
                full = await self._step()
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("dispatcher: %s", exc)
                await asyncio.sleep(0.5)
                continue
            except Exception:  # a bug must not end delivery for good: log it, retry the batch
                log.exception("dispatcher step failed")
                await asyncio.sleep(0.5)
                continue
            if not full:
                poll = min(poll * 2, IDLE_POLL_INTERVAL) if self.quiet else POLL_INTERVAL
                try:
                    await asyncio.wait_for(self._wake.wait(), poll)
                    await asyncio.sleep(GATHER)  # the writes of the next moments join this read
                    poll = POLL_INTERVAL
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()

    async def _step(self) -> bool:
        watched = list(self.registry.watched) if self.owned else []
        rows = await self.pool.fetch(_READ, self.pos, BATCH, watched)
        xmin, xmax = rows[0]["xmin"], rows[0]["xmax"]
        fresh = [r for r in rows if r["seq"] is not None and r["seq"] not in self.seen]
        if fresh and self.owned:
            # subscription writes visible with these changes are in force before they are matched
            await self.registry.sync_to(rows[0]["sv"])
            await self._dispatch(await self._with_payloads(fresh))
        self.seen.update(r["seq"] for r in fresh)
        self._advance(xmin, xmax)
        self.quiet = not fresh and not self.seen
        return len(rows) == BATCH and rows[-1]["seq"] is not None

    async def _with_payloads(self, rows: list[Any]) -> list[Any]:
        """The rows that may notify, each with its payload: a tenant whose first subscription the sync just
        brought in had its payloads left out of the read."""
        watched = self.registry.watched
        rows = [r for r in rows if r["tenant"] in watched]
        missing = [r["seq"] for r in rows if r["payload"] is None]
        if not missing:
            return rows
        payloads = {r["seq"]: r["payload"] for r in await self.pool.fetch(_PAYLOADS, missing)}
        return [{"seq": r["seq"], "tenant": r["tenant"], "payload": payloads[r["seq"]]} if r["payload"] is None
                else r for r in rows]

    def _advance(self, xmin: int, xmax: int) -> None:
        while self.seen:
            following = self.pos + 1
            if following in self.seen:
                self.seen.remove(following)
                self.pos = following
                continue
            recorded = self.gaps.get(following)
            if recorded is None:
                self.gaps[following] = xmax
                return
            if xmin < recorded:
                return
            del self.gaps[following]  # every writer that could hold it has finished: it never existed
            self.pos = following

    # ---- matching ---------------------------------------------------------------------------------------

    async def _dispatch(self, rows: list[Any], only: int | None = None) -> None:
        now = now_iso()
        found: list[tuple[int, Rule, Event, list[str]]] = []
        for row in rows:
            for entry in orjson.loads(row["payload"]):
                event = event_of(entry)
                for rule in self.registry.candidates(row["tenant"], event.entity_id, event.types):
                    part = part_of(rule.tenant, rule.id)
                    owner = self.owned.get(part)
                    if owner is None or row["seq"] <= owner.start or (only is not None and part != only):
                        continue
                    if rule.active(now):
                        reasons = rule.reasons(event)
                        if reasons:
                            found.append((row["seq"], rule, event, reasons))
        if found:
            found = await self._geo_filter(found)
            current = await self._current_rows(found)
            for seq, rule, event, reasons in found:
                try:
                    await self._notify(seq, rule, event, reasons, current.get((rule.tenant, event.entity_id)), now)
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                    raise
                except Exception:  # one subscription's failure (a bug) must not hold up the others
                    log.exception("notification of %s for change %d failed", rule.id, seq)

    async def _geo_filter(self, found: list[tuple[int, Rule, Event, list[str]]]
                          ) -> list[tuple[int, Rule, Event, list[str]]]:
        """Drop the matches whose entity is outside the rule's geoQ (one query per rule in the batch)."""
        wanted: dict[tuple[str, str], tuple[Rule, set[str]]] = {}
        for _, rule, event, _ in found:
            if "geoQ" in rule.body and not event.deleted:
                wanted.setdefault((rule.tenant, rule.id), (rule, set()))[1].add(event.entity_id)
        if not wanted:
            return found
        inside = {key: await geo_matches(self.pool, self.tenants, rule, sorted(ids), self.postgis)
                  for key, (rule, ids) in wanted.items()}
        return [f for f in found if "geoQ" not in f[1].body or f[2].deleted
                or f[2].entity_id in inside[(f[1].tenant, f[1].id)]]

    async def _current_rows(self, found: list[tuple[int, Rule, Event, list[str]]]) -> dict[tuple[str, str], Any]:
        wanted: dict[str, set[str]] = {}
        for _, rule, event, _ in found:
            if not event.deleted:
                wanted.setdefault(rule.tenant, set()).add(event.entity_id)
        out = {}
        for tenant, ids in wanted.items():
            try:
                rows = await fetch_by_ids(self.pool, self.tenants, tenant, ids)
            except NgsiError:  # the tenant is gone
                continue
            out.update(((tenant, entity_id), row) for entity_id, row in rows.items())
        return out

    async def _notify(self, seq: int, rule: Rule, event: Event, reasons: list[str], current: Any, now: str) -> None:
        attrs = state_attrs(event, current["attrs"] if current is not None else None)
        if rule.q is not None or rule.scope is not None:
            scopes = current["scopes"] if current is not None else None
            created = iso(current["created_at"]) if current is not None else event.at
            modified = iso(current["modified_at"]) if current is not None else event.at
            if not rule.accepts(attrs, scopes, created, modified):
                return
        key = (rule.tenant, rule.id)
        throttling = rule.body.get("throttling")
        if throttling is not None:
            last = self.last_sent.get(key)
            if last is not None and time.monotonic() - last < throttling:
                return  # within the throttling period: not sent, now or later (5.2.12)
        self.last_sent[key] = time.monotonic()
        delivery = self._delivery_of(rule.notification["endpoint"]["uri"])
        if delivery.full(key):  # not rendered: it would be dropped (a dead receiver must not cost CPU)
            delivery.enqueue(Job(rule.tenant, rule.id, seq, part_of(*key), "", {}, b"", 0.0))
            return
        row = data_row(rule, event, current, attrs, reasons[0])
        pairs = await self._render(rule, event, row)
        data: Any = [entity for entity, _ in pairs]
        if rule.notification["endpoint"].get("accept") == GEO_JSON:  # 4.5.17: a FeatureCollection
            data = feature_collection([feature(entity, r, DEFAULT_GEOMETRY) for entity, r in pairs])
        self._send(rule, seq, notification(rule, seq, event, reasons[0], data, now), now)

    async def _render(self, rule: Rule, event: Event, row: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
        """The notified entity and, with ``notification.join``, its Linked Entities (4.5.23), with their rows."""
        join = rule.join
        if join.mode is None:
            return [(render_data(rule, event, row), row)]
        known, linked = await collect_linked(self.pool, self.tenants, rule.tenant, [row], rule.view, join.level)
        if join.mode == "inline":
            return [(render_data(rule, event, row, Inline(known, join.level)), row)]
        ctx = rule.render_ctx
        return [(render_data(rule, event, row), row)] + [(render_entity(r, ctx, sub), r) for r, sub in linked]

    def _send(self, rule: Rule, seq: int, body: dict[str, Any], now: str) -> None:
        endpoint = rule.notification["endpoint"]
        part = part_of(rule.tenant, rule.id)
        notifier = {p["key"]: p["value"] for p in endpoint.get("notifierInfo", ())}
        # endpoint.timeout is in milliseconds (5.2.15)
        timeout = endpoint["timeout"] / 1000 if "timeout" in endpoint else DELIVERY_TIMEOUT
        job = Job(rule.tenant, rule.id, seq, part, endpoint["uri"], headers_of(rule), orjson.dumps(body), timeout,
                  notifier)
        delivery = self._delivery_of(endpoint["uri"])
        # the cursor waits for a change's notifications unless the receiver is failing: a dead receiver must
        # not hold every subscription of its partition (their notifications would be re-sent after a restart,
        # and the change log could not be pruned); what it misses is counted in timesFailed
        if seq > 0 and not delivery.failing((rule.tenant, rule.id)):
            job.pinned = True
            self.owned[part].pending[seq] += 1
        delivery.submit(job)

    def _delivery_of(self, uri: str) -> Queues:
        return self.mqtt if uri.startswith("mqtt") else self.delivery

    def _unpin(self, jobs: list[Job]) -> None:
        """Stop the cursor waiting for these jobs (their receiver is failing, or their subscription is gone)."""
        for job in jobs:
            if job.pinned:
                job.pinned = False
                owner = self.owned.get(job.part)
                if owner is not None:
                    owner.pending[job.seq] -= 1
                    if owner.pending[job.seq] <= 0:
                        del owner.pending[job.seq]

    def forget(self, tenant: str, sub_id: str) -> None:
        """A subscription was deleted: drop what is queued for it."""
        for delivery in (self.delivery, self.mqtt):
            self._unpin(delivery.discard((tenant, sub_id)))
        self.last_sent.pop((tenant, sub_id), None)

    # ---- periodic notifications (timeInterval) -----------------------------------------------------------

    async def _periodic_forever(self) -> None:
        due: dict[tuple[str, str], float] = {}
        while True:
            await asyncio.sleep(PERIODIC_TICK)
            now = now_iso()
            for key, rule in list(self.registry.periodic.items()):
                interval = rule.body["timeInterval"]
                if part_of(*key) not in self.owned or status_of(rule.body, now) != "active":
                    continue
                if time.monotonic() < due.get(key, 0.0):
                    continue
                due[key] = time.monotonic() + interval
                try:
                    rows = await periodic_rows(self.pool, self.tenants, rule, self.postgis)
                except (asyncpg.PostgresError, OSError, NgsiError) as exc:
                    log.warning("periodic notification of %s: %s", rule.id, exc)
                    continue
                if rows:
                    self._send(rule, 0, notification_of(rule, rows, now), now)

    # ---- outcomes and the durable cursor ----------------------------------------------------------------

    def _settled(self, job: Job, ok: bool, when: datetime, reason: str | None) -> None:
        self._unpin([job])
        self._merge((job.tenant, job.sub_id), [1, 0, when, when, None] if ok else [0, 1, when, None, when])
        self.totals["sent" if ok else "failed"] += 1
        self._settle.set()  # (not a wake-up of the reader: an outcome brings no change to read)

    def _merge(self, key: tuple[str, str], outcome: list[Any]) -> None:
        """Add [sent, failed, last notification, last success, last failure] to the unflushed counters."""
        stats = self.stats.setdefault(key, [0, 0, None, None, None])
        stats[0] += outcome[0]
        stats[1] += outcome[1]
        for i in (2, 3, 4):
            if outcome[i] is not None and (stats[i] is None or outcome[i] > stats[i]):
                stats[i] = outcome[i]

    async def _flush_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._settle.wait(), FLUSH_EVERY)
                await asyncio.sleep(settle_delay(time.monotonic() - self._flushed_at))
            except asyncio.TimeoutError:
                pass
            self._settle.clear()
            try:
                await self._flush()
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("dispatcher flush: %s", exc)

    def metrics(self) -> dict[str, float]:
        """This process's figures, for ``/metrics``."""
        return {"ngsild_notifications_sent_total": self.totals["sent"],
                "ngsild_notifications_failed_total": self.totals["failed"],
                "ngsild_notifications_dropped_total": self.delivery.dropped + self.mqtt.dropped,
                "ngsild_notifications_pending": self.delivery.pending() + self.mqtt.pending(),
                "ngsild_dispatch_partitions_owned": len(self.owned),
                "ngsild_dispatch_position": self.pos,
                "ngsild_subscriptions_loaded": len(self.registry.rules)}

    def unflushed(self, tenant: str, sub_id: str) -> list[list[Any]]:
        """Delivery outcomes of this process not yet in the database (what a read adds to the stored counters,
        so that a client that has just received a notification sees it counted)."""
        key = (tenant, sub_id)
        return [found[key] for found in (self._flushing, self.stats) if key in found]

    async def _flush(self) -> None:
        stats, self.stats = self.stats, {}
        if stats:
            self._flushing = stats
            self._flushed_at = time.monotonic()
            try:
                await self.store.add_stats([(t, s, *v) for (t, s), v in stats.items()])
            except BaseException:
                for key, value in stats.items():  # keep them for the next flush
                    self._merge(key, value)
                raise
            finally:
                self._flushing = {}
        moved: dict[int, int] = {}
        for number, part in list(self.owned.items()):
            cursor = self.pos
            if part.pending:
                cursor = min(cursor, min(part.pending) - 1)
            cursor = max(cursor, part.start)
            if cursor > part.saved:
                moved[number] = cursor
        if moved:  # one statement for every partition whose cursor moved
            await self.pool.execute("UPDATE ngsild.dispatch_cursors c SET seq = m.seq FROM unnest($1::int[], "
                                    "$2::bigint[]) AS m(part, seq) WHERE c.part = m.part AND c.seq < m.seq",
                                    list(moved), list(moved.values()))
            for number, cursor in moved.items():
                if number in self.owned:
                    self.owned[number].saved = cursor

"""``python -m benchmarks.notifications``: HTTP and MQTT notification throughput and latency, end to end.

On a fresh ``bench_<random>`` database: the broker, a webhook receiver process (``benchmarks.receiver``:
records each notification's arrival time, subscription, entity and ``speed`` value; plus a dead receiver
that accepts connections and never answers) and ``--subscriptions`` seeded ``Vehicle``s. The load generator
(aiohttp, in this process) PATCHes ``speed`` of the entities in turn, each write with a new value (a
sequence number) so that the write (its response time, kept here) and its notification (its arrival time,
kept by the receiver) join on (entity, value) after the run:

1. one subscription per entity (``entities: [{id, type}]``), writes as fast as the broker accepts them
   (``--concurrency`` in flight): notifications/s delivered, latency p50/p99 from the write's response to
   the notification's arrival; 1b. the same with the writes sent as batch updates (``--batch`` entities per
   ``POST /entityOperations/update``, ``--batch-concurrency`` in flight), one notification per entity;
2. the same at ``--rate`` writes/s, open loop (sent on schedule whatever is in flight): latency p50/p99;
3. scenario 2 with one more subscription (every Vehicle) whose receiver never answers: healthy p99 / p99 of 2;
4. PATCH/s as fast as possible (scenario 1's writes) / the same load before any subscription existed;
5. scenario 2 with every subscription moved to an MQTT topic of its own (``--mqtt``, QoS 1), the receiver
   subscribed to them all: latency p50/p99.

Every scenario checks that each accepted write was notified exactly once (missing, duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from broker.testing import BrokerProcess, free_port

from . import payloads, profiling
from .__main__ import database_server, log
from .queries import git_notes
from .scenarios import (ServerProcess, _request, add_server_options, bench_database, broker_process, children,
                        commit_note, env_notes, seed, server_notes, text_table)

SUBSCRIPTIONS_PATH = "/ngsi-ld/v1/subscriptions"
BATCH_UPDATE_PATH = "/ngsi-ld/v1/entityOperations/update"
DEAD_SUB = "urn:ngsi-ld:Subscription:bench-dead"
TARGET_NOTIFICATIONS = 5_000   # notifications/s delivered (scenario 1)
TARGET_P99_MS = 50.0           # p99 at --rate writes/s (scenario 2)
TARGET_DEAD_RATIO = 1.2        # healthy p99 with a dead receiver / without (scenario 3)
TARGET_WRITE_RATIO = 0.7       # PATCH/s with the subscriptions / without (scenario 4)
OPEN_LOOP_CAP = 256            # open loop: at most this many writes in flight (later ones count as "late")


SCENARIOS = ("4", "1", "1b", "2", "3", "5")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.notifications", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured per scenario (default 20)")
    p.add_argument("--warmup", type=float, default=3.0,
                   help="seconds of load before the measured window of each scenario (default 3)")
    p.add_argument("--subscriptions", type=int, default=10_000,
                   help="entities, one subscription each (default 10000)")
    p.add_argument("--rate", type=float, default=1000.0, help="writes/s of scenarios 2 and 3 (default 1000)")
    p.add_argument("--concurrency", type=int, default=64,
                   help="writes in flight in scenarios 1 and 4 (default 64)")
    p.add_argument("--batch", type=int, default=100,
                   help="entities per batch update in scenario 1b (default 100; 0 skips it)")
    p.add_argument("--batch-concurrency", type=int, default=4,
                   help="batch updates in flight in scenario 1b (default 4)")
    p.add_argument("--workers", type=int, default=2, help="broker processes (default 2: one per core)")
    p.add_argument("--pool-size", type=int, default=16, help="database connections per broker process (16)")
    add_server_options(p)
    p.add_argument("--drain-timeout", type=float, default=120.0,
                   help="seconds to wait after the load for the notifications still owed (default 120)")
    p.add_argument("--mqtt", default="127.0.0.1:1883", metavar="HOST:PORT",
                   help="MQTT broker of scenario 5 (default 127.0.0.1:1883; '' skips it)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), type=lambda v: [x for x in v.split(",") if x],
                   help=f"scenarios to run, comma-separated (default {','.join(SCENARIOS)}); ratios need their pair")
    p.add_argument("--quick", action="store_true", help="smoke run: 1,000 subscriptions, 5 s + 1 s warm-up")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the rows and per-scenario details to FILE")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="run scenarios 1, 1b and 3 (those of --scenarios) once more, not counted, under py-spy "
                        "(each broker worker) into DIR")
    args = p.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.quick:
        args.subscriptions, args.duration, args.warmup = 1_000, 5.0, 1.0
    return args


def sub_id(index: int) -> str:
    return f"urn:ngsi-ld:Subscription:bench-{index}"


def subscription(sid: str, selector: dict[str, str], uri: str) -> bytes:
    return orjson.dumps({"id": sid, "type": "Subscription", "entities": [selector],
                         "notification": {"endpoint": {"uri": uri, "accept": "application/json"}}})


def mqtt_endpoint(index: int, address: str) -> bytes:
    """A PATCH moving subscription ``index`` to an MQTT topic of its own, QoS 1."""
    return orjson.dumps({"type": "Subscription", "notification": {"endpoint": {
        "uri": f"mqtt://{address}/ngsild-bench/{index}", "accept": "application/json",
        "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}}})


# --- load ---------------------------------------------------------------------------------------------------

def arun(coro: Any) -> Any:
    """``asyncio.run`` on uvloop when installed (the generator then costs less of the shared CPU)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class Writes:
    """What one load run sent: successful writes keyed by (entity, value) with their response time."""

    responded: dict[tuple[str, int], float] = field(default_factory=dict)
    failed: int = 0
    late: int = 0          # open loop: not sent on schedule because OPEN_LOOP_CAP writes were in flight
    error: str = ""
    start: float = 0.0     # monotonic seconds
    end: float = 0.0


class Driver:
    """PATCH ``speed`` of ``ids`` in turn, each with the next value of one sequence shared by all runs; with
    ``batch`` > 1, update that many entities' ``speed`` per ``POST /entityOperations/update`` instead."""

    def __init__(self, base_url: str, ids: list[str], batch: int = 1) -> None:
        self.urls = [(i, f"{base_url}{payloads.ENTITIES_PATH}/{i}/attrs/speed") for i in ids]
        self.batch_url = f"{base_url}{BATCH_UPDATE_PATH}"
        self.batch = batch
        self.turn = itertools.count()
        self.values = itertools.count(1)

    async def _one(self, session: aiohttp.ClientSession, out: Writes) -> None:
        if self.batch > 1:
            keys = [(self.urls[next(self.turn) % len(self.urls)][0], next(self.values)) for _ in range(self.batch)]
            body = orjson.dumps([{"id": entity, "type": "Vehicle", "speed": {
                "type": "Property", "value": value, "observedAt": payloads.OBSERVED_AT}} for entity, value in keys])
            await self._send(session, out, "POST", self.batch_url, body, keys)
            return
        entity, url = self.urls[next(self.turn) % len(self.urls)]
        value = next(self.values)
        body = b'{"value":%d,"observedAt":"%s"}' % (value, payloads.OBSERVED_AT.encode())
        await self._send(session, out, "PATCH", url, body, [(entity, value)])

    @staticmethod
    async def _send(session: aiohttp.ClientSession, out: Writes, method: str, url: str, body: bytes,
                    keys: list[tuple[str, int]]) -> None:
        try:
            async with session.request(method, url, data=body, headers=payloads.HEADERS) as resp:
                reply = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            out.failed += len(keys)
            out.error = out.error or f"{type(exc).__name__}: {exc}"
            return
        if resp.status == 204:
            at = time.monotonic()
            out.responded.update((key, at) for key in keys)
        else:
            out.failed += len(keys)
            out.error = out.error or f"{resp.status}: {reply[:300]!r}"

    async def run(self, seconds: float, *, concurrency: int = 64, rate: float | None = None) -> Writes:
        """Closed loop (``concurrency`` in flight) or, with ``rate``, open loop at ``rate`` writes/s."""
        out = Writes()
        connector = aiohttp.TCPConnector(limit=OPEN_LOOP_CAP if rate else concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            out.start = time.monotonic()
            stop = out.start + seconds
            if rate is None:
                async def worker() -> None:
                    while time.monotonic() < stop:
                        await self._one(session, out)
                await asyncio.gather(*(worker() for _ in range(concurrency)))
            else:
                pending: set[asyncio.Task[None]] = set()
                sent = 0
                while (now := time.monotonic()) < stop:
                    for _ in range(int((now - out.start) * rate) + 1 - sent):
                        if len(pending) < OPEN_LOOP_CAP:
                            task = asyncio.create_task(self._one(session, out))
                            pending.add(task)
                            task.add_done_callback(pending.discard)
                        else:
                            out.late += 1
                        sent += 1
                    await asyncio.sleep(max(0.0, out.start + sent / rate - time.monotonic()))
                await asyncio.gather(*pending)
            out.end = time.monotonic()
        return out


async def _post_all(url: str, bodies: list[bytes], concurrency: int = 16, method: str = "POST",
                    urls: list[str] | None = None) -> list[str]:
    """POST (or ``method``) every body to ``url`` (or to ``urls``, one each; ``concurrency`` in flight); the
    errors."""
    errors: list[str] = []
    queue = iter(zip(urls or [url] * len(bodies), bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        for target, body in queue:
            async with session.request(method, target, data=body, headers=payloads.HEADERS) as resp:
                if resp.status not in (201, 204):
                    errors.append(f"{resp.status}: {(await resp.read())[:300]!r}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return errors


def cpu_of(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process so far."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_of(pids).values())


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores; /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def backends(database: str) -> list[int]:
    """The PostgreSQL backends serving ``database`` (their process title names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"postgres: ") \
                    and f" {database} ".encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def wait_idle(broker: BrokerProcess, timeout: float = 600.0, busy: float = 0.3, machine: float = 0.6) -> float:
    """Wait until the broker's processes used less than ``busy`` of a core, and the whole machine less than
    ``machine`` cores, in each of two consecutive seconds (idle, the broker's timers cost ~0.15-0.2 of a core
    on this machine); e.g. until its subscription registries have loaded what was just created, and until
    what the previous scenario left to PostgreSQL (an autovacuum of its writes) is over. The seconds waited."""
    assert broker.proc is not None
    pids = [broker.proc.pid, *children(broker.proc.pid)]
    t0, quiet = time.monotonic(), 0
    before, machine_before = cpu_seconds(pids), machine_busy_seconds()
    while time.monotonic() - t0 < timeout and quiet < 2:
        time.sleep(1.0)
        now, machine_now = cpu_seconds(pids), machine_busy_seconds()
        quiet = quiet + 1 if now - before < busy and machine_now - machine_before < machine else 0
        before, machine_before = now, machine_now
    return round(time.monotonic() - t0, 1)


# --- the receiver -------------------------------------------------------------------------------------------

def receiver_get(receiver: ServerProcess, what: str) -> Any:
    status, body = _request("GET", f"{receiver.url}/{what}")
    if status != 200:
        raise RuntimeError(f"receiver /{what}: {status} {body[:300]!r}")
    return orjson.loads(body)


def drain(receiver: ServerProcess, expected: int, timeout: float, quiet: float = 10.0) -> None:
    """Wait until the receiver has ``expected`` records (then 1 s more, for duplicates), or nothing arrived
    for ``quiet`` seconds, or ``timeout``."""
    deadline, reached = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = receiver_get(receiver, "count")
        if state["count"] >= expected:
            reached = reached or time.monotonic()
            if time.monotonic() - reached >= 1.0:
                return
        elif state["now"] - (state["last"] or state["now"]) >= quiet:
            log(f"nothing arrived for {quiet:g} s: {state['count']:,} of {expected:,} notifications")
            return
        time.sleep(0.2)
    log(f"WARNING: {expected - state['count']:,} notifications still missing after {timeout:.0f} s")


def analyse(writes: Writes, records: list[list[Any]], warmup: float, sub_of: dict[str, str]) -> dict[str, Any]:
    """Join writes and arrivals; figures over the measured window (after ``warmup``), checks over all."""
    arrivals: Counter[tuple[str, int]] = Counter()
    first: dict[tuple[str, int], float] = {}
    last: dict[tuple[str, int], float] = {}
    wrong_sub = 0
    for at, sid, entity, value in records:
        key = (entity, value)
        arrivals[key] += 1
        first[key], last[key] = min(at, first.get(key, at)), max(at, last.get(key, at))
        wrong_sub += sub_of.get(entity) != sid
    dup_gaps = sorted(last[k] - first[k] for k, n in arrivals.items() if n > 1)
    w0, w1 = writes.start + warmup, writes.end
    window = max(w1 - w0, 1e-9)
    latencies = sorted(first[k] - t for k, t in writes.responded.items() if w0 <= t <= w1 and k in first)
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) \
        if latencies else None  # noqa: E731
    final = max(first.values(), default=writes.end)
    return {
        "writes_ok": len(writes.responded), "writes_failed": writes.failed, "late": writes.late,
        "write_error": writes.error,
        "writes_per_s": round(sum(w0 <= t <= w1 for t in writes.responded.values()) / window, 1),
        "delivered_per_s": round(sum(w0 <= at <= w1 for at, *_ in records) / window, 1),
        "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": pick(1.0), "measured": len(latencies),
        "negative": sum(x < 0 for x in latencies),
        "missing": sum(k not in arrivals for k in writes.responded),
        "duplicates": sum(n - 1 for n in arrivals.values() if n > 1),
        "unexpected": sum(n for k, n in arrivals.items() if k not in writes.responded),
        "wrong_subscription": wrong_sub, "drain_s": round(max(0.0, final - writes.end), 2),
        "duplicate_gap_s": [round(dup_gaps[0], 2), round(dup_gaps[len(dup_gaps) // 2], 2), round(dup_gaps[-1], 2)]
        if dup_gaps else None,  # seconds between first and last arrival of a duplicated write: min, median, max
    }


# --- scenarios ----------------------------------------------------------------------------------------------

def run_scenario(name: str, broker: BrokerProcess, driver: Driver, receiver: ServerProcess,
                 args: argparse.Namespace, sub_of: dict[str, str], *, rate: float | None = None,
                 notified: bool = True, concurrency: int | None = None) -> dict[str, Any]:
    idle_wait = wait_idle(broker)  # the previous scenario's work is over
    receiver_get(receiver, "take")  # nothing left over from before
    loadavg = float(Path("/proc/loadavg").read_text().split()[0])
    assert broker.proc is not None and receiver.proc is not None
    bpid, rpid = broker.proc.pid, receiver.proc.pid
    groups = {"broker": lambda: [bpid, *children(bpid)], "postgres": lambda: backends(args.database),
              "receiver": lambda: [rpid], "loadgen": lambda: [os.getpid()]}
    cpu = {who: cpu_of(pids()) for who, pids in groups.items()}
    machine = machine_busy_seconds()
    writes = arun(driver.run(args.warmup + args.duration, concurrency=concurrency or args.concurrency, rate=rate))
    wall = writes.end - writes.start
    cores = {who: round(sum(t - cpu[who].get(pid, 0.0) for pid, t in cpu_of(pids()).items()) / wall, 2)
             for who, pids in groups.items()}  # processes started during the run count whole
    cores["other"] = round((machine_busy_seconds() - machine) / wall - sum(cores.values()), 2)
    if notified:
        drain(receiver, len(writes.responded), args.drain_timeout)
    records = receiver_get(receiver, "take")
    result = analyse(writes, records, args.warmup, sub_of)
    if not notified:
        result = {k: v for k, v in result.items() if k.startswith("write") or k == "late"}
    result.update(cores=cores, idle_wait_s=idle_wait, loadavg_before=loadavg)
    log(f"{name}: " + ", ".join(f"{k} {v}" for k, v in result.items() if v not in ("", None)))
    return result


def profile_run(label: str, broker: BrokerProcess, driver: Driver, receiver: ServerProcess,
                args: argparse.Namespace, rate: float | None = None, concurrency: int | None = None) -> str:
    """One more run of a scenario (not counted) with py-spy on each broker worker; the summaries."""
    assert broker.proc is not None
    args.profile.mkdir(parents=True, exist_ok=True)
    pids = [pid for pid in children(broker.proc.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()] or [broker.proc.pid]
    raws = [args.profile / f"scenario{label}-worker{pid}.txt" for pid in pids]
    wait_idle(broker)
    receiver_get(receiver, "take")
    spies = [profiling.start(pid, args.duration, raw) for pid, raw in zip(pids, raws)]
    writes = arun(driver.run(args.duration + 1, concurrency=concurrency or args.concurrency, rate=rate))
    for spy in spies:
        spy.communicate(timeout=args.duration + 60)
    drain(receiver, len(writes.responded), args.drain_timeout)
    receiver_get(receiver, "take")
    texts = []
    for pid, raw in zip(pids, raws):
        text = (f"== scenario {label} under py-spy, broker worker {pid} "
                f"({len(writes.responded) / (writes.end - writes.start):,.0f} writes/s while sampled) ==\n"
                + profiling.summarize(raw, duration=args.duration))
        raw.with_suffix(".summary.txt").write_text(text + "\n")
        texts.append(text)
    return "\n\n".join(texts)


def measure(args: argparse.Namespace, broker: BrokerProcess, receiver: ServerProcess, dead_port: int,
            out: dict[str, Any]) -> None:
    n, wanted = args.subscriptions, args.scenarios
    log(f"seeding {n:,} entities")
    seed(broker.url, n, 1000)
    ids = [payloads.seed_id(i) for i in range(n)]
    sub_of = {e: sub_id(i) for i, e in enumerate(ids)}
    driver = Driver(broker.url, ids)
    scen = out["scenarios"]
    out["profile"] = ""
    if "4" in wanted:
        scen["4-none"] = run_scenario("4: no subscriptions", broker, driver, receiver, args, sub_of,
                                      notified=False)
    t0 = time.perf_counter()
    notify_uri = f"{receiver.url}/notify"
    errors = arun(_post_all(broker.url + SUBSCRIPTIONS_PATH, [
        subscription(sub_of[e], {"id": e, "type": "Vehicle"}, notify_uri) for e in ids]))
    if errors:
        raise RuntimeError(f"{len(errors)} subscriptions not created, e.g. {errors[0]}")
    out["subscriptions_created_s"] = round(time.perf_counter() - t0, 1)
    out["subscriptions_settled_s"] = wait_idle(broker)
    log(f"created {n:,} subscriptions in {out['subscriptions_created_s']} s; broker idle "
        f"{out['subscriptions_settled_s']} s later")
    if "1" in wanted:
        scen["1"] = run_scenario("1: as fast as possible", broker, driver, receiver, args, sub_of)
        if args.profile:
            out["profile"] += "\n\n" + profile_run("1", broker, driver, receiver, args)
    if args.batch > 1 and "1b" in wanted:
        batches = Driver(broker.url, ids, batch=args.batch)
        batches.values = driver.values  # one sequence of values: every write is told apart from the others
        scen["1b"] = run_scenario(f"1b: batches of {args.batch} as fast as possible", broker, batches, receiver,
                                  args, sub_of, concurrency=args.batch_concurrency)
        if args.profile:
            out["profile"] += "\n\n" + profile_run("1b", broker, batches, receiver, args,
                                                    concurrency=args.batch_concurrency)
    if "2" in wanted:
        scen["2"] = run_scenario(f"2: {args.rate:,.0f}/s", broker, driver, receiver, args, sub_of,
                                 rate=args.rate)
    if "3" in wanted:
        scenario_3(args, broker, driver, receiver, dead_port, sub_of, out)
    if args.mqtt and "5" in wanted:
        errors = arun(_post_all("", [mqtt_endpoint(i, args.mqtt) for i in range(n)], method="PATCH",
                                urls=[f"{broker.url}{SUBSCRIPTIONS_PATH}/{sub_of[e]}" for e in ids]))
        if errors:
            raise RuntimeError(f"{len(errors)} subscriptions not moved to MQTT, e.g. {errors[0]}")
        wait_idle(broker)
        scen["5"] = run_scenario(f"5: {args.rate:,.0f}/s over MQTT QoS 1", broker, driver, receiver, args, sub_of,
                                 rate=args.rate)
    out["profile"] = out["profile"].strip()


def scenario_3(args: argparse.Namespace, broker: BrokerProcess, driver: Driver, receiver: ServerProcess,
               dead_port: int, sub_of: dict[str, str], out: dict[str, Any]) -> None:
    """Scenario 2 with one more subscription, to every Vehicle, whose receiver never answers (deleted after)."""
    dead = subscription(DEAD_SUB, {"type": "Vehicle"}, f"http://127.0.0.1:{dead_port}/notify")
    status, reply = _request("POST", broker.url + SUBSCRIPTIONS_PATH, dead, payloads.HEADERS)
    if status != 201:
        raise RuntimeError(f"dead-receiver subscription: {status} {reply[:300]!r}")
    out["scenarios"]["3"] = run_scenario(f"3: {args.rate:,.0f}/s + dead receiver", broker, driver, receiver, args,
                                         sub_of, rate=args.rate)
    if args.profile:
        out["profile"] += "\n\n" + profile_run("3", broker, driver, receiver, args, rate=args.rate)
    status, body = _request("GET", f"{broker.url}{SUBSCRIPTIONS_PATH}/{DEAD_SUB}")
    out["dead_subscription"] = orjson.loads(body).get("notification") if status == 200 else None
    _request("DELETE", f"{broker.url}{SUBSCRIPTIONS_PATH}/{DEAD_SUB}")


# --- report -------------------------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def rows_of(scen: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The table's rows of the scenarios that ran (``--scenarios``); a ratio needs both of its scenarios."""
    s1, s2, s3, s4 = scen.get("1"), scen.get("2"), scen.get("3"), scen.get("4-none")
    reached = {k: s["writes_per_s"] >= 0.95 * args.rate and s["late"] <= 0.01 * (
        s["writes_ok"] + s["writes_failed"] + s["late"]) for k, s in (("2", s2), ("3", s3)) if s}  # on schedule
    rate = f"{args.rate:,.0f}/s open loop"
    rows = []
    if s1:
        rows.append({"scenario": "1 notifications, writes as fast as accepted", "load": f"c{args.concurrency}",
                     **s1, "figure": f"{s1['delivered_per_s']:,.0f} notif/s",
                     "target": f"≥ {TARGET_NOTIFICATIONS:,} notif/s",
                     "ok": s1["delivered_per_s"] >= TARGET_NOTIFICATIONS})
    rows += batch_row(scen.get("1b"), args)
    if s2:
        rows.append({"scenario": "2 latency at fixed rate", "load": rate, **s2,
                     "figure": f"p99 {_ms(s2['p99_ms'])} ms" + ("" if reached["2"] else " (rate not reached)"),
                     "target": f"p99 < {TARGET_P99_MS:g} ms",
                     "ok": reached["2"] and s2["p99_ms"] is not None and s2["p99_ms"] < TARGET_P99_MS})
    if s3:
        p99_ratio = s3["p99_ms"] / s2["p99_ms"] if s2 and s3["p99_ms"] and s2["p99_ms"] else None
        moot = not all(reached.values())
        rows.append({"scenario": "3 = 2 + one dead receiver (healthy p99)", "load": rate, **s3,
                     "figure": (f"p99 ratio {p99_ratio:.2f}" if p99_ratio else "- (needs scenario 2)")
                     + (" (rate not reached: moot)" if moot and p99_ratio else ""),
                     "target": f"≤ {TARGET_DEAD_RATIO:g}x 2", "ratio": p99_ratio,
                     "ok": None if p99_ratio is None or moot else p99_ratio <= TARGET_DEAD_RATIO})
    if s4:
        write_ratio = s1["writes_per_s"] / s4["writes_per_s"] if s1 and s4["writes_per_s"] else None
        rows.append({"scenario": "4 PATCH/s without subscriptions (vs 1)", "load": f"c{args.concurrency}", **s4,
                     "figure": f"{s1['writes_per_s']:,.0f} / {s4['writes_per_s']:,.0f} = {write_ratio:.2f}"
                     if s1 and write_ratio else "- (needs scenario 1)", "target": f"≥ {TARGET_WRITE_RATIO:g}",
                     "ratio": write_ratio, "ok": None if write_ratio is None else write_ratio >= TARGET_WRITE_RATIO})
    if "5" in args.scenarios:
        rows.append(mqtt_row(scen.get("5"), args, rate))
    return rows


def batch_row(s1b: dict[str, Any] | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Scenario 1b: scenario 1 with the writes sent as batch updates (the broker accepts more writes/s)."""
    if s1b is None:
        return []
    return [{"scenario": f"1b = 1 with batch updates of {args.batch}", "load": f"c{args.batch_concurrency}", **s1b,
             "figure": f"{s1b['delivered_per_s']:,.0f} notif/s", "target": f"≥ {TARGET_NOTIFICATIONS:,} notif/s",
             "ok": s1b["delivered_per_s"] >= TARGET_NOTIFICATIONS}]


def mqtt_row(s5: dict[str, Any] | None, args: argparse.Namespace, rate: str) -> dict[str, Any]:
    """Scenario 5: scenario 2 with every subscription notifying over MQTT (QoS 1); same latency target."""
    if s5 is None:
        return {"scenario": "5 = 2 over MQTT QoS 1", "load": "-", "figure": "skipped (--mqtt '')", "target": "-",
                "ok": None}
    reached = s5["writes_per_s"] >= 0.95 * args.rate
    return {"scenario": "5 = 2 over MQTT QoS 1", "load": rate, **s5,
            "figure": f"p99 {_ms(s5['p99_ms'])} ms" + ("" if reached else " (rate not reached)"),
            "target": f"p99 < {TARGET_P99_MS:g} ms",
            "ok": reached and s5["p99_ms"] is not None and s5["p99_ms"] < TARGET_P99_MS}


def render(rows: list[dict[str, Any]]) -> str:
    head = ["scenario", "load", "writes/s", "notif/s", "p50 ms", "p99 ms", "missing", "dup", "cores b/pg/r/g/other",
            "figure", "target", "met?"]
    lines = []
    for r in rows:
        num = lambda key: f"{r[key]:,.0f}" if r.get(key) is not None else "-"  # noqa: E731
        lines.append([r["scenario"], r["load"], num("writes_per_s"), num("delivered_per_s"), _ms(r.get("p50_ms")),
                      _ms(r.get("p99_ms")), num("missing"), num("duplicates"),
                      "/".join(f"{c:.1f}" for c in r["cores"].values()) if r.get("cores") else "-", r["figure"],
                      r["target"], _verdict(r["ok"])])
    return text_table(head, lines, right=(2, 3, 4, 5, 6, 7))


def notes_of(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        problems = {k: r.get(k) for k in ("writes_failed", "late", "unexpected", "wrong_subscription", "negative")}
        if any(problems.values()) or r.get("missing") or r.get("duplicates"):
            out.append(f"! {r['scenario']}: " + ", ".join(f"{k} {v:,}" for k, v in problems.items() if v)
                       + (f"; e.g. {r['write_error']}" if r.get("write_error") else "")
                       + ("; duplicates arrived {} / {} / {} s (min / median / max) after the first".format(
                           *r["duplicate_gap_s"]) if r.get("duplicate_gap_s") else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: dict[str, Any] = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "scenarios": {}}
    with database_server(args) as admin_dsn, bench_database(admin_dsn) as dsn:
        args.database = dsn.rsplit("/", 1)[1]
        out["env"] = {**env_notes(), **server_notes(dsn), **git_notes()}
        dead_port = free_port()
        receiver = ServerProcess("receiver", "benchmarks.receiver", ["--dead-port", str(dead_port)]
                                 + (["--mqtt", args.mqtt] if args.mqtt else []))
        broker = broker_process(args, dsn)
        try:
            receiver.start()
            broker.start(timeout=120)
            measure(args, broker, receiver, dead_port, out)
        finally:
            broker.stop()
            receiver.stop()
    rows = rows_of(out["scenarios"], args)
    env = out["env"]
    print(f"# {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, PostgreSQL {env['postgresql']} "
          f"(shared_buffers {env['shared_buffers']}, synchronous_commit {env['synchronous_commit']}); broker, "
          f"PostgreSQL, receiver and load generator share the machine; {commit_note(env)}")
    print(f"# {args.subscriptions:,} entities, one subscription each (created in {out['subscriptions_created_s']} s); "
          f"broker --workers {args.workers} x pool {args.pool_size}; each scenario {args.warmup:g} s warm-up + "
          f"{args.duration:g} s measured; latency = notification arrival - write response")
    print(render(rows))
    for line in notes_of(rows):
        print(line)
    if out.get("profile"):
        print("\n" + out["profile"])
    if args.json:
        args.json.write_bytes(orjson.dumps({**out, "rows": rows}, option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks.temporal``: the temporal API (attribute history) — load rate, query latency, and
what recording the history costs the core API's writes.

1. **Load.** On a fresh ``bench_<random>`` database, the broker (history on, ``NGSILD_TEMPORAL_INSTANCE_LIMIT``
   raised so that no answer is cut) gets ``--sensors`` temporal entities of ``--attrs`` numeric attributes with
   ``--observations`` instances each (one per minute, the last one now: they land in the real month
   partitions), through ``POST /temporal/entities`` (one body per sensor, split when it would exceed
   ``--instances-per-request``), ``--load-concurrency`` in flight. Plus one entity of one attribute with
   ``--aggr-instances`` instances (one every ``--aggr-interval`` s) for the aggregation query. Reported:
   instances/s and the size on disk of ``attr_instances`` (all partitions, indexes and TOAST included).
2. **Queries.** ``--requests`` requests per scenario (after ``--query-warmup`` discarded ones),
   ``--query-concurrency`` in flight, a random entity and window per request: p50/p95, the answers' status and
   size. (a) one entity, one attribute, a one-day window; (b) ``lastN=10``, one entity, every attribute;
   (c) ``avg,min,max`` per hour over all the aggregation entity's instances; (d) ``GET /temporal/entities``
   of one type of exactly 100 sensors (the sensors are typed ``SensorG<k>``, 100 per type), one hour, every
   attribute, ``limit=100``.
3. **History cost.** The broker twice, each on a fresh database — with history, then with
   ``NGSILD_HISTORY=off`` — ``--patch-entities`` Vehicles seeded through the upsert, then wrk (``update.lua``
   of ``python -m benchmarks``: ``PATCH /entities/{id}/attrs/speed`` on a random entity) with
   ``--patch-connections`` for ``--patch-duration`` s after ``--patch-warmup`` s (after a CHECKPOINT), for
   ``--patch-rounds`` rounds alternating which mode goes first: the median rates and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import orjson

from .__main__ import database_server, log
from .loadgen import run_wrk
from .queries import git_notes
from .scenarios import (
    add_server_options,
    bench_database,
    broker_process,
    commit_note,
    env_notes,
    seed,
    server_notes,
    text_table,
)

TEMPORAL_PATH = "/ngsi-ld/v1/temporal/entities"
SCHEMA = "tenant_default"
GROUP = 100                      # sensors per type (scenario d: one type = exactly 100 entities)
AGGR_ID = "urn:ngsi-ld:AggrSensor:0"
AGGR_ATTR = "power"
HEADERS = {"Content-Type": "application/json"}   # core context: attribute names expand to the default vocabulary
TARGET_P95_MS = {"a": 20.0, "b": 20.0, "c": 100.0}
TARGET_HISTORY_RATIO = 0.7
BROKER_DEFAULTS = {"NGSILD_TEMPORAL_INSTANCE_LIMIT": "100000", "NGSILD_MAX_BODY_BYTES": str(64 * 2**20)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.temporal", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sensors", type=int, default=1000, help="temporal entities loaded (default 1000)")
    p.add_argument("--attrs", type=int, default=5, help="numeric attributes per sensor (default 5)")
    p.add_argument("--observations", type=int, default=2000,
                   help="instances per attribute, one per minute ending now (default 2000)")
    p.add_argument("--aggr-instances", type=int, default=100_000,
                   help="instances of the aggregation entity's one attribute (default 100000)")
    p.add_argument("--aggr-interval", type=float, default=20.0,
                   help="seconds between the aggregation entity's instances (default 20: 100,000 span 23 days)")
    p.add_argument("--instances-per-request", type=int, default=10_000,
                   help="most instances in one POST /temporal/entities body (default 10000)")
    p.add_argument("--load-concurrency", type=int, default=4, help="POSTs in flight while loading (default 4)")
    p.add_argument("--requests", type=int, default=200, help="measured requests per query scenario (default 200)")
    p.add_argument("--query-warmup", type=int, default=10, help="discarded requests per query scenario (default 10)")
    p.add_argument("--query-concurrency", type=int, default=1, help="query requests in flight (default 1)")
    p.add_argument("--patch-entities", type=int, default=1000, help="entities PATCHed in scenario 3 (default 1000)")
    p.add_argument("--patch-duration", type=float, default=15.0, help="seconds of PATCH load measured (default 15)")
    p.add_argument("--patch-warmup", type=float, default=2.0, help="seconds of discarded PATCH load (default 2)")
    p.add_argument("--patch-connections", type=int, default=32, help="wrk connections of scenario 3 (default 32)")
    p.add_argument("--patch-threads", type=int, default=2, help="wrk threads of scenario 3 (default 2)")
    p.add_argument("--patch-rounds", type=int, default=2,
                   help="runs of each mode in scenario 3, alternating which goes first (default 2)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: queries, patch")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--workers", type=int, default=2, help="broker processes (default 2: one per core)")
    p.add_argument("--pool-size", type=int, default=16, help="database connections per broker process (16)")
    p.add_argument("--json", help="also write the results to this file")
    add_server_options(p)
    args = p.parse_args(argv)
    given = {item.split("=", 1)[0] for item in args.broker_env}
    args.broker_env = [f"{k}={v}" for k, v in BROKER_DEFAULTS.items() if k not in given] + args.broker_env
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sensor_id(i: int) -> str:
    return f"urn:ngsi-ld:Sensor:{i:06d}"


def sensor_type(i: int) -> str:
    return f"SensorG{i // GROUP}"


# --- 1. load ------------------------------------------------------------------------------------------------

class Plan:
    """The data set: times, and the bodies (generated lazily, each (body, instance count))."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.end = datetime.now(UTC).replace(second=0, microsecond=0)
        self.start = self.end - timedelta(minutes=args.observations - 1)
        self.times = [iso(self.start + timedelta(minutes=j)) for j in range(args.observations)]
        self.aggr_end = self.end
        self.aggr_start = self.end - timedelta(seconds=args.aggr_interval * (args.aggr_instances - 1))
        self.attrs = [f"a{k}" for k in range(args.attrs)]
        self.total = args.sensors * args.attrs * args.observations + args.aggr_instances

    def bodies(self) -> Iterator[tuple[str, int]]:
        """(which, index) jobs: the aggregation entity's chunks first, then each sensor's chunks."""
        per = max(1, self.args.instances_per_request)
        for c in range(math.ceil(self.args.aggr_instances / per)):
            yield ("aggr", c)
        rows = max(1, per // max(1, self.args.attrs))  # observations per body
        for i in range(self.args.sensors):
            for c in range(math.ceil(self.args.observations / rows)):
                yield ("sensor", i * 1_000_000 + c)

    def body(self, job: tuple[str, int]) -> tuple[bytes, int]:
        kind, n = job
        per = max(1, self.args.instances_per_request)
        if kind == "aggr":
            rnd = random.Random(n)
            lo, hi = n * per, min(self.args.aggr_instances, (n + 1) * per)
            step = timedelta(seconds=self.args.aggr_interval)
            insts = [{"type": "Property", "value": round(500 + 300 * math.sin(j / 500) + rnd.uniform(-20, 20), 2),
                      "observedAt": iso(self.aggr_start + j * step)} for j in range(lo, hi)]
            return orjson.dumps({"id": AGGR_ID, "type": "AggrSensor", AGGR_ATTR: insts}), hi - lo
        i, c = divmod(n, 1_000_000)
        rows = max(1, per // max(1, self.args.attrs))
        lo, hi = c * rows, min(self.args.observations, (c + 1) * rows)
        rnd = random.Random(n)
        doc: dict[str, Any] = {"id": sensor_id(i), "type": sensor_type(i)}
        for k, name in enumerate(self.attrs):
            base = 10 * k + i % 17
            doc[name] = [{"type": "Property", "value": round(base + rnd.uniform(-5, 5), 2), "observedAt": t}
                         for t in self.times[lo:hi]]
        return orjson.dumps(doc), (hi - lo) * len(self.attrs)


async def _load(url: str, plan: Plan, concurrency: int) -> dict[str, Any]:
    jobs = plan.bodies()
    done = failed = requests = 0
    statuses: dict[int, int] = {}
    error = ""
    last_log = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, failed, requests, error, last_log
        for job in jobs:  # a shared generator: each job is taken once
            body, count = plan.body(job)
            async with session.post(url, data=body, headers=HEADERS) as resp:
                payload = await resp.read()
            requests += 1
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status in (201, 204):
                done += count
            else:
                failed += count
                error = error or f"{resp.status}: {payload[:400].decode(errors='replace')}"
            if time.perf_counter() - last_log > 15:
                last_log = time.perf_counter()
                log(f"  loaded {done:,} / {plan.total:,} instances ({done / (last_log - t0):,.0f}/s)")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"instances": done, "failed": failed, "requests": requests, "statuses": statuses,
            "seconds": round(elapsed, 1), "rate": round(done / elapsed), "error": error}


SIZE_SQL = f"""
SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS bytes,
       count(*) FILTER (WHERE isleaf) AS partitions,
       coalesce(sum(pg_total_relation_size(relid)) FILTER (WHERE relid::text LIKE '%default'), 0)::bigint
         AS default_bytes
FROM pg_partition_tree('{SCHEMA}.attr_instances')"""


async def _sql(dsn: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return [await conn.fetch(sql) for sql in statements]
    finally:
        await conn.close()


def sql(dsn: str, *statements: str) -> list[Any]:
    return asyncio.run(_sql(dsn, *statements))


# --- 2. queries ---------------------------------------------------------------------------------------------

def _instances(doc: Any) -> int:
    """Instances (or aggregation periods) in a temporal answer: an entity or a list of entities."""
    if isinstance(doc, list):
        return sum(_instances(d) for d in doc)
    n = 0
    for key, value in doc.items() if isinstance(doc, dict) else ():
        if key in ("id", "type", "@context", "scope"):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and any(m in item for m in ("avg", "min", "max")):
                n += max(len(item.get(m) or []) for m in ("avg", "min", "max"))
            else:
                n += 1
    return n


def query_paths(name: str, plan: Plan, count: int, rnd: random.Random) -> list[str]:
    args = plan.args
    paths = []
    for _ in range(count):
        i = rnd.randrange(args.sensors)
        if name == "a":  # one entity, one attribute, one day
            span = timedelta(days=1)
            room = max(0.0, (plan.end - plan.start - span).total_seconds())
            t0 = plan.start + timedelta(seconds=int(rnd.uniform(0, room) // 60 * 60))
            paths.append(f"{TEMPORAL_PATH}/{sensor_id(i)}?timerel=between&timeAt={iso(t0)}&endTimeAt={iso(t0 + span)}"
                         f"&attrs={rnd.choice(plan.attrs)}")
        elif name == "b":  # lastN=10, every attribute
            paths.append(f"{TEMPORAL_PATH}/{sensor_id(i)}?lastN=10")
        elif name == "c":  # hourly avg/min/max over all the aggregation entity's instances
            paths.append(f"{TEMPORAL_PATH}/{AGGR_ID}?options=aggregatedValues&aggrMethods=avg,min,max"
                         f"&aggrPeriodDuration=PT1H&timerel=between&timeAt={iso(plan.aggr_start)}"
                         f"&endTimeAt={iso(plan.aggr_end + timedelta(seconds=1))}")
        else:  # d: the 100 sensors of one type, one hour, every attribute
            span = timedelta(hours=1)
            room = max(0.0, (plan.end - plan.start - span).total_seconds())
            t0 = plan.start + timedelta(seconds=int(rnd.uniform(0, room) // 60 * 60))
            groups = max(1, math.ceil(args.sensors / GROUP))
            paths.append(f"{TEMPORAL_PATH}?type=SensorG{rnd.randrange(groups)}&timerel=between&timeAt={iso(t0)}"
                         f"&endTimeAt={iso(t0 + span)}&limit=100")
    return paths


async def _measure_queries(base_url: str, paths: list[str], warmup: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    kbytes: list[float] = []
    error = ""

    async def worker(session: aiohttp.ClientSession, queue: list[str], record: bool) -> None:
        nonlocal error
        while queue:
            path = queue.pop()
            t0 = time.perf_counter()
            async with session.get(base_url + path, headers={"Accept": "application/json"}) as resp:
                payload = await resp.read()
            elapsed = time.perf_counter() - t0
            if not record:
                continue
            latencies.append(elapsed * 1000)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            kbytes.append(len(payload) / 1024)
            if resp.status == 200:
                sizes.append(_instances(orjson.loads(payload)))
            else:
                error = error or f"{resp.status}: {path}: {payload[:300].decode(errors='replace')}"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        warm, measured = list(reversed(paths[:warmup])), list(reversed(paths[warmup:]))
        await asyncio.gather(*(worker(session, warm, False) for _ in range(concurrency)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session, measured, True) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
    return {"count": len(latencies), "ok": statuses.get(200, 0), "statuses": statuses, "p50_ms": pick(0.5),
            "p95_ms": pick(0.95), "max_ms": latencies[-1] if latencies else None,
            "rate": round(len(latencies) / wall, 1) if wall else 0,
            "instances": statistics.median(sizes) if sizes else None,
            "kb": round(statistics.median(kbytes), 1) if kbytes else None, "error": error}


QUERIES = {
    "a": "(a) 1 entity, 1 attr, 1-day window",
    "b": "(b) lastN=10, 1 entity, all attrs",
    "c": "(c) avg,min,max PT1H, 1 entity",
    "d": "(d) type (100 entities), 1 hour, limit=100",
}


# --- 3. history cost ----------------------------------------------------------------------------------------

def patch_rate(admin_dsn: str, args: argparse.Namespace, history: bool) -> dict[str, Any]:
    """PATCH /entities/{id}/attrs/speed/s on a fresh database, with or without history."""
    with bench_database(admin_dsn) as dsn:
        env_args = argparse.Namespace(**vars(args))
        env_args.broker_env = [*args.broker_env, f"NGSILD_HISTORY={'on' if history else 'off'}"]
        broker = broker_process(env_args, dsn)
        try:
            broker.start(timeout=120)
            seed(broker.url, args.patch_entities, 1000)
            sql(dsn, "CHECKPOINT")  # the seeding's (and an earlier run's) dirty pages are not this run's cost
            if args.patch_warmup > 0:
                run_wrk(broker.url, "update.lua", [str(args.patch_entities)], connections=args.patch_connections,
                        threads=args.patch_threads, duration=args.patch_warmup)
            res = run_wrk(broker.url, "update.lua", [str(args.patch_entities)], connections=args.patch_connections,
                          threads=args.patch_threads, duration=args.patch_duration)
            rows = sql(dsn, f"SELECT count(*) AS n FROM {SCHEMA}.attr_instances")[0][0]["n"] if history else 0
        finally:
            broker.stop()
            tracebacks = broker_problems(broker.output())
    out = {"rate": round(res.rate), "p50_ms": res.p50_ms, "p99_ms": res.p99_ms, "failed": res.failed,
           "history_rows": rows, "broker_errors": tracebacks}
    log(f"PATCH with history {'on' if history else 'off'}: {out}")
    return out


def patch_rates(admin_dsn: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--patch-rounds`` runs with and without history, alternating which goes first (a drift of the
    machine over the runs then weighs on both); per mode, the median of the rounds' figures."""
    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for k in range(args.patch_rounds):
        for history in ((True, False) if k % 2 == 0 else (False, True)):
            runs[history].append(patch_rate(admin_dsn, args, history))

    def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"rate": round(statistics.median(r["rate"] for r in results)),
                "p50_ms": statistics.median(r["p50_ms"] for r in results),
                "p99_ms": statistics.median(r["p99_ms"] for r in results),
                "failed": sum(r["failed"] for r in results), "history_rows": results[-1]["history_rows"],
                "broker_errors": [e for r in results for e in r["broker_errors"]],
                "rounds": [r["rate"] for r in results]}
    return median_of(runs[True]), median_of(runs[False])


def broker_problems(output: str) -> list[str]:
    """Tracebacks and ERROR lines of a broker's log (first lines of each)."""
    found = []
    lines = output.splitlines()
    for k, line in enumerate(lines):
        if line.startswith(("Traceback", "ERROR")) or " ERROR " in line:
            found.append("\n".join(lines[k:k + 30]) if line.startswith("Traceback") else line)
    return found[:5]


# --- main ---------------------------------------------------------------------------------------------------

def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(args)
    out: dict[str, Any] = {"config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()}}
    rows: list[list[str]] = []
    verdicts: list[bool] = []
    problems: list[str] = []
    with database_server(args) as admin_dsn:
        with bench_database(admin_dsn) as dsn:
            out["env"] = {**env_notes(), **server_notes(dsn), **git_notes()}
            broker = broker_process(args, dsn)
            try:
                broker.start(timeout=120)
                log(f"loading {plan.total:,} instances: {args.sensors:,} sensors x {args.attrs} attrs x "
                    f"{args.observations:,} observations ({iso(plan.start)} .. {iso(plan.end)}) + {args.aggr_instances:,} "
                    f"({iso(plan.aggr_start)} .. {iso(plan.aggr_end)}); {args.load_concurrency} POSTs in flight")
                load = asyncio.run(_load(broker.url + TEMPORAL_PATH, plan, args.load_concurrency))
                log(f"loaded: {load}")
                t0 = time.perf_counter()
                sql(dsn, f"ANALYZE {SCHEMA}.attr_instances", f"ANALYZE {SCHEMA}.temporal_entities")
                load["analyze_s"] = round(time.perf_counter() - t0, 1)
                size = dict(sql(dsn, SIZE_SQL)[0][0])
                load.update(size)
                out["load"] = load
                rows.append(["1 load POST /temporal/entities", f"{load['instances']:,} inst",
                             f"{load['seconds']:,} s", "-", "-", f"{load['rate']:,} inst/s", "-", "-", "-"])
                mb = size["bytes"] / 2**20
                rows.append(["1 attr_instances on disk", f"{size['partitions']} partitions", "-", "-", "-",
                             f"{mb:,.0f} MB ({size['bytes'] / max(1, load['instances']):,.0f} B/inst)",
                             "-", "-", "-"])
                if load["failed"]:
                    problems.append(f"load: {load['failed']:,} instances failed, e.g. {load['error']}")
                if "queries" not in args.skip:
                    rnd = random.Random(args.seed)
                    out["queries"] = {}
                    for key, label in QUERIES.items():
                        paths = query_paths(key, plan, args.requests + args.query_warmup, rnd)
                        res = asyncio.run(_measure_queries(broker.url, paths, args.query_warmup,
                                                           args.query_concurrency))
                        out["queries"][key] = res
                        log(f"{label}: {res}")
                        target = TARGET_P95_MS.get(key)
                        ok = (None if target is None
                              else res["p95_ms"] is not None and res["p95_ms"] < target and res["ok"] == res["count"])
                        if ok is not None:
                            verdicts.append(ok)
                        rows.append([f"2 {label}", f"{res['ok']}/{res['count']} ok", "-", fmt_ms(res["p50_ms"]),
                                     fmt_ms(res["p95_ms"]), f"{res['rate']:,.0f} req/s",
                                     f"{res['instances']:,.0f} {'periods' if key == 'c' else 'inst'}, {res['kb']:,.0f} kB" if res["instances"] is not None
                                     else "-", f"p95 < {target:g} ms" if target else "-",
                                     "-" if ok is None else ("yes" if ok else "NO")])
                        if res["error"]:
                            problems.append(f"{label}: statuses {res['statuses']}, e.g. {res['error']}")
            finally:
                broker.stop()
                problems += broker_problems(broker.output())
        if "patch" not in args.skip:
            with_h, without = patch_rates(admin_dsn, args)
            ratio = with_h["rate"] / without["rate"] if without["rate"] else 0.0
            out["patch"] = {"history": with_h, "no_history": without, "ratio": ratio}
            ok = ratio >= TARGET_HISTORY_RATIO and not with_h["failed"] and not without["failed"]
            verdicts.append(ok)
            load_txt = f"wrk c{args.patch_connections}, {args.patch_rounds} x {args.patch_duration:g} s"
            rows.append(["3 PATCH attrs/speed, history on", load_txt, "-", fmt_ms(with_h["p50_ms"]), "-",
                         f"{with_h['rate']:,} upd/s", f"p99 {fmt_ms(with_h['p99_ms'])} ms", "-", "-"])
            rows.append(["3 PATCH attrs/speed, history off", load_txt, "-", fmt_ms(without["p50_ms"]), "-",
                         f"{without['rate']:,} upd/s", f"p99 {fmt_ms(without['p99_ms'])} ms", "-", "-"])
            rows.append(["3 ratio on/off", "-", "-", "-", "-", f"{ratio:.2f}", "-",
                         f"≥ {TARGET_HISTORY_RATIO:g}", "yes" if ok else "NO"])
            for name, r in (("history on", with_h), ("history off", without)):
                if r["failed"]:
                    problems.append(f"PATCH {name}: {r['failed']} failed requests")
                problems += r["broker_errors"]
    env = out["env"]
    print(f"# {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, {env['wrk']}, PostgreSQL {env['postgresql']} "
          f"(shared_buffers {env['shared_buffers']}, synchronous_commit {env['synchronous_commit']}); broker "
          f"--workers {args.workers} x pool {args.pool_size}; {commit_note(env)}")
    print(f"# data: {args.sensors:,} sensors x {args.attrs} attrs x {args.observations:,} obs (1/min) + "
          f"{args.aggr_instances:,} instances of {AGGR_ID} (1/{args.aggr_interval:g} s) = {plan.total:,} instances; "
          f"load {args.load_concurrency} in flight, <= {args.instances_per_request:,} instances/POST; queries "
          f"{args.requests} each after {args.query_warmup} warm-up, {args.query_concurrency} in flight")
    head = ["scenario", "size / count", "time", "p50 ms", "p95 ms", "rate", "reply", "target", "met?"]
    print(text_table(head, rows, right=(2, 3, 4, 5)))
    for line in problems:
        print("! " + line)
    if args.json:
        with open(args.json, "wb") as fh:
            fh.write(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str) + b"\n")
    return 0 if all(verdicts) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())

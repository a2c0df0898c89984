"""``python -m benchmarks.queries``: query latency and throughput at 100,000 and 1,000,000 entities.

Per dataset size: a fresh ``bench_<random>`` database, the broker (``--workers 2``), the Smart Data Models
city of ``benchmarks.dataset`` loaded through the batch upsert (load time and rate reported), ``VACUUM
ANALYZE``; then an index warm-up (each scenario's query shapes a few times, wait until the broker's adaptive
``CREATE INDEX CONCURRENTLY`` builds are done and the index set of ``tenant_default.entities`` is stable,
``ANALYZE``), a selectivity check (``count=true`` on sample queries: how many entities one query matches),
then each scenario of ``benchmarks.query_scenarios`` under wrk (fixed connections, varied parameters per
request): median of ``--runs`` runs of p50/p95/p99 and queries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from broker.testing import fresh_database, server_dsn

from .dataset import Dataset
from .loadgen import WRK_DIR, history_drain, wrk_binary
from .query_scenarios import BY_NAME, MAX_RATIO_1M, PATHS_PER_SCENARIO, SCENARIOS, QueryScenario, expected_matches, \
    link_header
from .scenarios import add_server_options, broker_env, broker_process, commit_note, env_notes, server_notes

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
SCHEMA = "tenant_default"
BASE_SIZE = 100_000
WRK_TIMEOUT_S = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.queries", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entities", default="100000", help="dataset size(s), comma-separated, e.g. 100000,1000000")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results (a list, one item per size) to FILE")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("FILE100K", "FILE1M"),
                   help="print the 1M/100k table of two --json files (no measuring)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 run of 3 s after 1 s warm-up")
    p.add_argument("--runs", type=int, default=3, help="measured runs per scenario (default 3)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded load before each run (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))
    add_server_options(p)
    p.add_argument("--workers", type=int, default=2, help="broker processes (default 2)")
    p.add_argument("--pool-size", type=int, default=16, help="database connections per broker process (default 16)")
    p.add_argument("--batch-size", type=int, default=1000, help="entities per upsert (default 1000)")
    p.add_argument("--batch-concurrency", type=int, default=4, help="upserts in flight (default 4)")
    p.add_argument("--warm-queries", type=int, default=10, help="queries per scenario per warm-up round (default 10)")
    p.add_argument("--index-settle", type=float, default=5.0, help="seconds the index set must stay unchanged (5)")
    p.add_argument("--index-timeout", type=float, default=900.0, help="max seconds to wait for index builds (900)")
    p.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="after the runs: CPU per query of broker and PostgreSQL, and a py-spy profile per scenario "
                        "into DIR (benchmarks.query_profile)")
    p.add_argument("--explain", action="store_true",
                   help="also EXPLAIN (ANALYZE, BUFFERS) the SQL the broker runs for one query of each scenario")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    args.sizes = [int(x.replace("_", "")) for x in args.entities.split(",") if x.strip()]
    args.chosen = [BY_NAME[n.strip()] for n in args.scenarios.split(",") if n.strip()]
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- loading ------------------------------------------------------------------------------------------------

async def _load(url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    headers = {"Content-Type": "application/ld+json"}
    queue = list(reversed(bodies))
    done = failed = 0
    error = ""

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, failed, error
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers=headers) as resp:
                payload = await resp.read()
            count = body.count(b'{"id":"urn:ngsi-ld:')
            if resp.status in (201, 204):
                done += count
            elif resp.status == 207:
                ok = len(orjson.loads(payload).get("success", []))
                done, failed = done + ok, failed + count - ok
                error = error or payload[:400].decode(errors="replace")
            else:
                failed += count
                error = error or f"{resp.status}: {payload[:400].decode(errors='replace')}"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"entities": done, "failed": failed, "seconds": round(elapsed, 1), "rate": round(done / elapsed),
            "error": error}


def load_dataset(base_url: str, ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    bodies = list(ds.batches(args.batch_size))
    log(f"generated {ds.entities:,} entities ({sum(map(len, bodies)) / 1e6:,.0f} MB) in "
        f"{time.perf_counter() - t0:.1f} s; loading with {args.batch_concurrency} x {args.batch_size} in flight")
    result = asyncio.run(_load(base_url + UPSERT_PATH, bodies, args.batch_concurrency))
    del bodies
    log(f"loaded {result['entities']:,} entities in {result['seconds']} s: {result['rate']:,}/s"
        + (f"; {result['failed']:,} FAILED, e.g. {result['error']}" if result["failed"] else ""))
    return result


# --- database -----------------------------------------------------------------------------------------------

INDEXES_SQL = f"""
SELECT c.relname AS name, pg_get_indexdef(c.oid) AS definition, i.indisvalid AS valid,
       pg_relation_size(c.oid) AS bytes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = '{SCHEMA}.entities'::regclass ORDER BY c.relname"""
BUSY_SQL = """
SELECT (SELECT count(*) FROM pg_stat_progress_create_index WHERE datid = d.oid)
     + (SELECT count(*) FROM pg_stat_progress_analyze WHERE datid = d.oid)
FROM pg_database d WHERE d.datname = current_database()"""


async def _db(dsn: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return [await conn.fetch(sql) for sql in statements]
    finally:
        await conn.close()


def db(dsn: str, *statements: str) -> list[Any]:
    return asyncio.run(_db(dsn, *statements))


def indexes(dsn: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db(dsn, INDEXES_SQL)[0]]


def wait_for_indexes(dsn: str, settle: float, timeout: float) -> list[dict[str, Any]]:
    """Wait until no index build / analyze runs and the (valid) index set is unchanged for ``settle`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        busy_rows, index_rows = db(dsn, BUSY_SQL, INDEXES_SQL)
        state = (busy_rows[0][0], tuple((r["name"], r["valid"]) for r in index_rows))
        if state != last:
            last, stable_since = state, time.monotonic()
        elif state[0] == 0 and all(v for _, v in state[1]) and time.monotonic() - stable_since >= settle:
            return [dict(r) for r in index_rows]
        time.sleep(0.5)
    log(f"WARNING: indexes still changing after {timeout:.0f} s")
    return indexes(dsn)


def wait_idle(dsn: str, timeout: float = 60.0) -> float:
    """Wait until no other statement runs in the database (queries of a previous load that wrk gave up on
    keep the server busy until the broker's statement timeout); returns the seconds waited."""
    t0 = time.monotonic()
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
           "AND pid <> pg_backend_pid()")
    while time.monotonic() - t0 < timeout and db(dsn, sql)[0][0][0] > 0:
        time.sleep(0.2)
    return time.monotonic() - t0


def table_notes(dsn: str) -> dict[str, Any]:
    (row,) = db(dsn, f"SELECT pg_table_size('{SCHEMA}.entities') AS table_bytes, "
                     f"pg_indexes_size('{SCHEMA}.entities') AS index_bytes, "
                     f"(SELECT count(*) FROM {SCHEMA}.entities) AS rows")[0]
    return {"table_mb": round(row["table_bytes"] / 2**20), "indexes_mb": round(row["index_bytes"] / 2**20),
            "rows": row["rows"]}


# --- HTTP ---------------------------------------------------------------------------------------------------

def http_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _with_count(path: str) -> str:
    base, _, query = path.partition("?")
    kept = [kv for kv in query.split("&") if not kv.startswith(("count=", "limit="))]
    return base + "?" + "&".join(kept + ["count=true", "limit=0"])


def check_scenario(base_url: str, scenario: QueryScenario, paths: list[str], samples: int = 20) -> dict[str, Any]:
    """One plain request (status, entities returned) and ``samples`` count=true ones (entities matched)."""
    headers = {"Link": link_header(scenario.domain)}
    status, _, body = http_get(base_url + paths[0], headers)
    if status != 200:
        return {"available": False, "status": status, "error": body[:300].decode(errors="replace")}
    returned = len(orjson.loads(body))
    counts = []
    for path in paths[1:samples + 1]:
        status, resp_headers, body = http_get(base_url + _with_count(path), headers)
        if status != 200:
            return {"available": False, "status": status, "error": body[:300].decode(errors="replace")}
        counts.append(int(resp_headers.get("ngsild-results-count", "-1")))
    counts.sort()
    return {"available": True, "status": 200, "returned": returned, "matched_median": statistics.median(counts),
            "matched_min": counts[0], "matched_max": counts[-1]}


def warm_up(base_url: str, dsn: str, scenarios: list[QueryScenario], paths: dict[str, list[str]],
            args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """Run each scenario's queries ``--warm-queries`` times, wait for the index builds; repeat while new
    indexes appear (at most 3 rounds). Returns the final index list and the seconds it took."""
    t0 = time.perf_counter()
    before = {r["name"] for r in indexes(dsn)}
    for rnd in range(3):
        for scenario in scenarios:
            headers = {"Link": link_header(scenario.domain)}
            start = rnd * args.warm_queries
            for path in paths[scenario.name][start:start + args.warm_queries]:
                http_get(base_url + path, headers)
        found = wait_for_indexes(dsn, args.index_settle, args.index_timeout)
        names = {r["name"] for r in found}
        log(f"warm-up round {rnd + 1}: {len(names)} indexes ({len(names - before)} new), "
            f"{time.perf_counter() - t0:.0f} s")
        if names == before:
            break
        before = names
    db(dsn, f"ANALYZE {SCHEMA}.entities")
    return found, round(time.perf_counter() - t0, 1)


# --- wrk ----------------------------------------------------------------------------------------------------

def run_wrk(base_url: str, paths_file: Path, link: str, args: argparse.Namespace, duration: float) -> dict[str, Any]:
    cmd = [wrk_binary(), f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(duration))}s",
           "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(WRK_DIR / "query.lua"), base_url, "--", str(paths_file), link]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    d = orjson.loads(line.removeprefix("BENCH_JSON "))
    seconds = d["duration_us"] / 1e6
    ok = max(0, d["requests"] - d["status_errors"])
    if d["requests"] == 0:  # nothing completed within wrk's 10 s timeout: latencies are "more than that"
        d["p50_us"] = d["p95_us"] = d["p99_us"] = WRK_TIMEOUT_S * 1e6
    return {"rate": round(ok / seconds, 1), "p50_ms": d["p50_us"] / 1000, "p95_ms": d["p95_us"] / 1000,
            "p99_ms": d["p99_us"] / 1000, "failed": d["status_errors"] + d["socket_errors"],
            "timeouts": d["requests"] == 0 or d["socket_errors"] > 0,
            "kb_per_reply": round(d["bytes"] / max(1, d["requests"]) / 1024, 1), "seconds": seconds}


def summarise(scenario: QueryScenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = lambda key: round(statistics.median(r[key] for r in runs), 2)  # noqa: E731
    p95s = [r["p95_ms"] for r in runs]
    return {"p50_ms": med("p50_ms"), "p95_ms": med("p95_ms"), "p99_ms": med("p99_ms"), "rate": med("rate"),
            "p95_min": round(min(p95s), 2), "p95_max": round(max(p95s), 2), "failed": sum(r["failed"] for r in runs),
            "kb_per_reply": runs[-1]["kb_per_reply"], "timeouts": any(r.get("timeouts") for r in runs), "runs": runs}


def git_notes() -> dict[str, str]:
    """The broker's commit, and whether the working tree had uncommitted changes (outside benchmarks/)."""
    root = Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = [ln for ln in git("status", "--porcelain").splitlines() if "benchmarks/" not in ln]
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty_files": str(len(dirty))}


# --- one dataset size ---------------------------------------------------------------------------------------

def measure_size(admin_dsn: str, entities: int, args: argparse.Namespace) -> dict[str, Any]:
    ds = Dataset(entities, seed=args.seed)
    out: dict[str, Any] = {"entities": entities, "types": ds.counts, "city_side_km": round(ds.city.side_km, 1),
                           "streetlight_circuits": ds.circuits,
                           "config": {"connections": args.connections, "threads": args.threads, "runs": args.runs,
                                      "duration_s": args.duration, "warmup_s": args.warmup,
                                      "workers": args.workers, "pool_size": args.pool_size}}
    workdir = Path(tempfile.mkdtemp(prefix="qbench-"))
    with fresh_database(admin_dsn, prefix="bench") as dsn:
        out["env"] = {**env_notes(), **server_notes(dsn), **git_notes()}
        broker = broker_process(args, dsn)
        try:
            broker.start(timeout=120)
            out["load"] = load_dataset(broker.url, ds, args)
            # the temporal history of the load is recorded after the writes answered: wait for it, or the
            # recorder's catch-up (minutes at 1M) competes with the queries measured
            out["load"]["history_lag_s"] = round(history_drain(dsn, limit=1800.0), 1)
            log(f"history recorded {out['load']['history_lag_s']} s after the load")
            t0 = time.perf_counter()
            db(dsn, f"VACUUM (ANALYZE) {SCHEMA}.entities")
            out["load"]["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
            out["load"].update(table_notes(dsn))
            paths = {s.name: s.paths(ds, PATHS_PER_SCENARIO, args.seed) for s in args.chosen}
            out["indexes_before"] = indexes(dsn)
            out["indexes"], out["index_warmup_s"] = warm_up(broker.url, dsn, args.chosen, paths, args)
            out["load"].update(table_notes(dsn))
            expected = expected_matches(ds)
            rows: list[dict[str, Any]] = []
            for scenario in args.chosen:
                check = check_scenario(broker.url, scenario, paths[scenario.name])
                log(f"{scenario.name}: {check}")
                (workdir / f"{scenario.name}.txt").write_text("\n".join(paths[scenario.name]) + "\n")
                rows.append({"scenario": scenario.name, "shape": scenario.shape, "target": scenario.target(),
                             "p95_target_ms": scenario.p95_ms, "min_rate": scenario.min_rate,
                             "expected_matches": expected[scenario.name], **check, "runs": []})
            for run in range(args.runs):
                for scenario, row in zip(args.chosen, rows):
                    if not row["available"]:
                        continue
                    paths_file, link = workdir / f"{scenario.name}.txt", link_header(scenario.domain)
                    waited = wait_idle(dsn)
                    if waited > 1:
                        log(f"waited {waited:.0f} s for the previous load's statements to end")
                    if args.warmup > 0:
                        run_wrk(broker.url, paths_file, link, args, args.warmup)
                    load_before = float(Path("/proc/loadavg").read_text().split()[0])
                    result = run_wrk(broker.url, paths_file, link, args, args.duration)
                    result["loadavg_1m_before"] = load_before
                    row["runs"].append(result)
                    log(f"{entities:,} run {run + 1}/{args.runs} {scenario.name:10} {result['rate']:8,.0f} q/s  "
                        f"p50 {result['p50_ms']:6.1f}  p95 {result['p95_ms']:6.1f}  p99 {result['p99_ms']:6.1f} ms"
                        + f"  (loadavg {load_before:.1f})" + (f"  FAILED {result['failed']}" if result["failed"] else ""))
            for row in rows:
                if row["runs"]:
                    row.update(summarise(BY_NAME[row["scenario"]], row.pop("runs")))
            out["scenarios"] = rows
            if args.profile:
                from .query_profile import profile_scenarios
                assert broker.proc is not None
                run = lambda name: run_wrk(broker.url, workdir / f"{name}.txt", link_header(BY_NAME[name].domain),  # noqa: E731
                                           args, args.duration)
                out["profile"] = profile_scenarios([r["scenario"] for r in rows if r["available"]], broker.proc.pid,
                                                   run, args, args.profile / str(entities), log)
            if args.explain:
                from .query_explain import explain_scenarios
                out["explain"] = explain_scenarios(dsn, args, paths, broker_env(args))
        finally:
            broker.stop()
    return out


# --- report -------------------------------------------------------------------------------------------------

def _ok(row: dict[str, Any], base: dict[str, Any] | None) -> tuple[str, str]:
    """(target text, verdict): absolute targets, or p95 <= 2x the 100k figure when ``base`` is given."""
    if not row.get("available", True) or "p95_ms" not in row:
        return row.get("target", "-"), "n/a"
    if base is not None and base.get("p95_ms"):
        ratio = row["p95_ms"] / base["p95_ms"]
        return f"p95 ≤ {MAX_RATIO_1M:g}x 100k", ("yes" if ratio <= MAX_RATIO_1M else "NO") + f" ({ratio:.2f}x)"
    misses = []
    if row["p95_ms"] >= row["p95_target_ms"]:
        misses.append(f"p95≥{row['p95_target_ms']:g}")
    if row.get("min_rate") and row["rate"] < row["min_rate"]:
        misses.append(f"<{row['min_rate']:,.0f}/s")
    if row.get("failed"):
        misses.append("failures")
    return row["target"], "yes" if not misses else "NO " + ",".join(misses)


def render(result: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    env, load, cfg = result["env"], result["load"], result["config"]
    lines = [
        f"## {result['entities']:,} entities  ({', '.join(f'{k} {v:,}' for k, v in result['types'].items())}; "
        f"city box {result['city_side_km']} km)",
        f"# {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, {env['wrk']}, PostgreSQL {env['postgresql']} "
        f"(shared_buffers {env['shared_buffers']}); broker --workers {cfg['workers']} x pool {cfg['pool_size']}; "
        + commit_note(env),
        f"# load: {load['entities']:,} entities in {load['seconds']} s = {load['rate']:,} entities/s "
        f"(upsert 1,000/batch, 4 in flight){', FAILED ' + str(load['failed']) if load['failed'] else ''}; "
        f"history recorded {load.get('history_lag_s', '?')} s later; VACUUM ANALYZE {load['vacuum_analyze_s']} s; "
        f"table {load['table_mb']:,} MB, indexes {load['indexes_mb']:,} MB",
        f"# index warm-up {result['index_warmup_s']} s; wrk -t{cfg['threads']} -c{cfg['connections']}, median of "
        f"{cfg['runs']} run(s) of {cfg['duration_s']:g} s after {cfg['warmup_s']:g} s warm-up",
    ]
    base_rows = {r["scenario"]: r for r in (base or {}).get("scenarios", [])}
    head = ["scenario", "matched", "p50 ms", "p95 ms (min–max)", "p99 ms", "q/s", "target", "ok?"]
    table = []
    for row in result["scenarios"]:
        target, verdict = _ok(row, base_rows.get(row["scenario"]) if base else None)
        matched = (f"{row['matched_median']:,.0f} ({row['matched_min']:,}–{row['matched_max']:,})"
                   if row.get("available") else "-")
        if not row.get("available") or "p95_ms" not in row:
            status = "not available yet" if row.get("status") in (400, 501) else f"error {row.get('status')}"
            table.append([row["scenario"], matched, "-", status, "-", "-", target, "n/a"])
            continue
        table.append([row["scenario"], matched, f"{row['p50_ms']:.1f}",
                      f"{row['p95_ms']:.1f} ({row['p95_min']:.1f}–{row['p95_max']:.1f})", f"{row['p99_ms']:.1f}",
                      f"{row['rate']:,.0f}", target, verdict])
    widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    lines += [fmt(head), fmt(["-" * w for w in widths]), *(fmt(t) for t in table)]
    for row in result["scenarios"]:
        if not row.get("available"):
            lines.append(f"! {row['scenario']}: HTTP {row.get('status')}: {row.get('error', '')[:200]}")
        elif row.get("failed") or row.get("timeouts"):
            lines.append(f"! {row['scenario']}: {row['failed']} failed requests (non-2xx, or no answer within "
                         f"wrk's {WRK_TIMEOUT_S} s timeout: such requests have no latency, the percentiles "
                         f"understate)")
    lines.append(f"indexes on {SCHEMA}.entities ({len(result['indexes'])}):")
    lines += [f"  {r['name']}  {r['bytes'] / 2**20:,.1f} MB  {r['definition']}" for r in result["indexes"]]
    if result.get("explain"):
        lines += ["", result["explain"]]
    return "\n".join(lines)


def render_all(results: list[dict[str, Any]]) -> str:
    base = next((r for r in results if r["entities"] == BASE_SIZE), None)
    return "\n\n".join(render(r, base if base is not None and r is not base else None) for r in results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        results = [item for f in args.compare for item in orjson.loads(f.read_bytes())]
        print(render_all(results))
        return 0
    results = []
    if args.embedded:
        os.environ.pop("TEST_DATABASE_URL", None)
    with (server_dsn() if args.embedded else nullcontext(args.database_url)) as admin_dsn:
        for entities in args.sizes:
            results.append(measure_size(admin_dsn, entities, args))
            if args.json:  # after every size: a 1M run that fails later keeps the 100k figures
                args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    text = render_all(results)
    print(text)
    return 0 if "NO" not in text.split() else 1


if __name__ == "__main__":
    sys.exit(main())

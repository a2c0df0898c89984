"""``python -m benchmarks``: measure the broker against its bare floors and print the table.

Starts the broker (``broker.testing.BrokerProcess``) and the floor app (``benchmarks.floor``) on a fresh
``bench_<random>`` database, seeds both with the same entities, then for each run and scenario measures
floor and broker back to back (alternating which goes first) with wrk or the batch driver.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson

from broker.testing import BrokerProcess, server_dsn

from . import profiling
from .loadgen import LoadResult, history_drain
from .scenarios import (MIN_RATIO, SCENARIOS, FloorProcess, LoadConfig, Scenario, _load, add_server_options,
                        bench_database, broker_env, broker_process, concurrency_of, env_notes, measure, memory_kib, precheck,
                        seed, server_notes, text_table)



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario (default 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded warm-up per run (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run of 3 s, 1 s warm-up")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON to FILE")
    add_server_options(parser)
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batch requests in flight (default 4)")
    parser.add_argument("--batch-size", type=int, default=1000, help="entities per batch (default 1000)")
    parser.add_argument("--seed", type=int, default=10_000, help="pre-created entities (default 10000)")
    parser.add_argument("--pool-size", type=int, default=16, help="database pool of broker and floor (default 16)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes of broker and floor alike (default 2: one per core of this machine)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the runs, profile the broker under each scenario with py-spy into DIR")
    parser.add_argument("--no-native", action="store_true", help="py-spy without --native")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def database_server(args: argparse.Namespace) -> Iterator[str]:
    """The admin DSN of the server to benchmark on (the embedded PostgreSQL with ``--embedded``)."""
    if not args.embedded:
        yield args.database_url
        return
    os.environ.pop("TEST_DATABASE_URL", None)
    with server_dsn() as dsn:
        yield dsn


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ok(value: float, ratio: float, target: float) -> str:
    misses = ([f"<{target:,.0f}"] if value < target else []) + ([f"ratio<{MIN_RATIO}"] if ratio < MIN_RATIO else [])
    return "yes" if not misses else "NO " + ",".join(misses)


def scenario_row(scenario: Scenario, cfg: LoadConfig, broker: list[LoadResult], floor: list[LoadResult]) -> dict[str, Any]:
    """One table/JSON row from the runs of a scenario."""
    rates, floor_rates = [r.rate for r in broker], [r.rate for r in floor]
    value, floor_value = _median(rates), _median(floor_rates)
    ratio = value / floor_value if floor_value else 0.0
    return {
        "scenario": scenario.name, "metric": scenario.operation, "value": round(value, 1), "unit": scenario.unit,
        "floor": round(floor_value, 1), "ratio": round(ratio, 3), "min": round(min(rates), 1),
        "max": round(max(rates), 1), "floor_min": round(min(floor_rates), 1), "floor_max": round(max(floor_rates), 1),
        "runs": [round(r, 1) for r in rates], "floor_runs": [round(r, 1) for r in floor_rates],
        "target": scenario.target, "min_ratio": MIN_RATIO, "ok": _ok(value, ratio, scenario.target) == "yes",
        "load": concurrency_of(scenario, cfg), "p50_ms": round(_median([r.p50_ms for r in broker]), 2),
        "p99_ms": round(_median([r.p99_ms for r in broker]), 2),
        "floor_p99_ms": round(_median([r.p99_ms for r in floor]), 2),
        "failed": sum(r.failed for r in broker), "floor_failed": sum(r.failed for r in floor),
        "sample_error": next((r.sample_error for r in broker if r.sample_error), ""),
        # the history is recorded after the writes answer: how long after the run it had caught up, and the
        # rate counting that time too (every write and its history done)
        "history_lag_s": round(_median([r.extra.get("history_lag_s", 0.0) for r in broker]), 2),
        "with_history_rate": round(_median([r.items / (r.duration_s + r.extra.get("history_lag_s", 0.0))
                                            for r in broker if r.duration_s > 0]), 1),
    }


def memory_rows(broker_pid: int, floor_pid: int) -> list[dict[str, Any]]:
    """RSS now (after the load) and peak (VmHWM) of the broker, with the floor process as reference."""
    broker, floor = memory_kib(broker_pid), memory_kib(floor_pid)
    rows = []
    for key, metric in (("VmRSS", "RSS after load"), ("VmHWM", "RSS peak (VmHWM)")):
        value, ref = broker[key] / 1024, floor[key] / 1024
        rows.append({"scenario": "memory", "metric": metric, "value": round(value, 1), "unit": "MiB",
                     "floor": round(ref, 1), "ratio": round(value / ref, 2), "load": "-"})
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    """The fixed-width table."""
    head = ["scenario", "load", "value", "min–max", "unit", "floor", "ratio", "target", "ok?", "p99 ms",
            "history lag s", "incl. history"]
    lines = []
    for row in rows:
        is_mem = row["scenario"] == "memory"
        lines.append([
            row["scenario"] if not is_mem else f"memory: {row['metric']}", row["load"], f"{row['value']:,.0f}",
            "-" if is_mem else f"{row['min']:,.0f}–{row['max']:,.0f}", row["unit"], f"{row['floor']:,.0f}",
            f"{row['ratio']:.2f}", "-" if is_mem else f"≥{row['target']:,.0f} & ≥{MIN_RATIO}",
            "-" if is_mem else _ok(row["value"], row["ratio"], row["target"]),
            "-" if is_mem else f"{row['p99_ms']:.0f} (floor {row['floor_p99_ms']:.0f})",
            "-" if is_mem else f"{row['history_lag_s']:.2f}",
            "-" if is_mem else f"{row['with_history_rate']:,.0f}",
        ])
    return text_table(head, lines, right=(2, 3, 5, 6, 7))


def profile_pass(scenarios: list[Scenario], broker: BrokerProcess, cfg: LoadConfig, out_dir: Path,
                 native: bool) -> str:
    """Profile the broker under each scenario (not counted in the figures); returns the summaries."""
    assert broker.proc is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = []
    for scenario in scenarios:
        log(f"profiling broker: {scenario.name}")
        if cfg.warmup > 0:
            _load(scenario, broker.url, cfg, cfg.warmup)
        raw = out_dir / f"{scenario.name}.txt"
        spy = profiling.start(broker.proc.pid, cfg.duration, raw, native=native)
        result = _load(scenario, broker.url, cfg, cfg.duration + 1)
        spy.communicate(timeout=cfg.duration + 60)
        summary = profiling.summarize(raw, duration=cfg.duration)
        text = f"== {scenario.name}: {result.rate:,.0f} {scenario.unit} under py-spy ==\n{summary}"
        (out_dir / f"{scenario.name}.summary.txt").write_text(text + "\n")
        texts.append(text)
    return "\n\n".join(texts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if s.name in names]
    cfg = LoadConfig(duration=args.duration, warmup=args.warmup, connections=args.connections, threads=args.threads,
                     batch_concurrency=args.batch_concurrency, batch_size=args.batch_size, seed_count=args.seed)
    with database_server(args) as admin_dsn, bench_database(admin_dsn) as dsn:
        notes = {**env_notes(), **server_notes(dsn)}
        history = "--no-history" not in args.broker_arg and \
            broker_env(args).get("NGSILD_HISTORY", "on").lower() not in ("0", "false", "no", "off")
        broker = broker_process(args, dsn)
        floor = FloorProcess(dsn, pool_size=args.pool_size, workers=args.workers)
        try:
            broker.start(timeout=120)
            floor.start()
            for name, server in (("floor", floor), ("broker", broker)):
                log(f"seeding {name} with {cfg.seed_count:,} entities")
                seed(server.url, cfg.seed_count, cfg.batch_size)
                for problem in precheck(server.url):
                    log(f"WARNING {name} precheck: {problem}")
            results: dict[str, dict[str, list[LoadResult]]] = {s.name: {"broker": [], "floor": []} for s in chosen}
            for run in range(args.runs):
                for scenario in chosen:
                    order = [("floor", floor), ("broker", broker)]
                    for who, server in order if run % 2 == 0 else order[::-1]:
                        result = measure(scenario, server.url, cfg)
                        if who == "broker" and history:  # the history recorded after the run: part of the cost
                            result.extra["history_lag_s"] = history_drain(dsn)
                        results[scenario.name][who].append(result)
                        log(f"run {run + 1}/{args.runs} {scenario.name:16} {who:6} {result.rate:10,.0f} "
                            f"{scenario.unit:10} p99 {result.p99_ms:7.1f} ms  failed {result.failed}"
                            + (f"  history recorded {result.extra['history_lag_s']:.2f} s later"
                               if "history_lag_s" in result.extra else "")
                            + (f"  e.g. {result.sample_error}" if result.sample_error else ""))
            assert broker.proc is not None and floor.proc is not None
            rows = [scenario_row(s, cfg, results[s.name]["broker"], results[s.name]["floor"]) for s in chosen]
            rows += memory_rows(broker.proc.pid, floor.proc.pid)
            profile_text = (profile_pass(chosen, broker, cfg, args.profile, not args.no_native)
                            if args.profile else "")
        finally:
            broker.stop()
            floor.stop()
    print(f"# {notes['cpus']} CPUs ({notes['cpu']}), Python {notes['python']}, {notes['wrk']}, PostgreSQL "
          f"{notes['postgresql']} (shared_buffers {notes['shared_buffers']}, synchronous_commit "
          f"{notes['synchronous_commit']}); broker, PostgreSQL and load generator share the machine")
    print(f"# median of {args.runs} run(s) of {cfg.duration:g} s after {cfg.warmup:g} s warm-up; "
          f"{cfg.seed_count:,} pre-created entities; {args.workers} worker(s) x pool {args.pool_size}; "
          f"wrk -t{cfg.threads}")
    print(render_table(rows))
    for row in rows:
        if row.get("failed") or row.get("floor_failed"):
            print(f"! {row['scenario']}: {row['failed']} failed broker requests/entities, {row['floor_failed']} "
                  f"failed floor ones" + (f"; e.g. {row['sample_error']}" if row.get("sample_error") else ""))
    if profile_text:
        print("\n" + profile_text)
    if args.json:
        rows_out = [{**row, "env": notes} for row in rows]
        args.json.write_bytes(orjson.dumps(rows_out, option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if all(row.get("ok", True) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

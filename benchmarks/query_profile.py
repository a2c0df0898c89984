"""``python -m benchmarks.queries --profile DIR``: where a query's CPU goes, after the measured runs.

For each scenario: one wrk run that reads the CPU time the broker's processes and PostgreSQL's processes used
meanwhile (``/proc``), printed as milliseconds of each per query: on 2 shared cores their sum caps the rate.
Then one run under py-spy (``benchmarks.profiling``), summarised into ``DIR/<scenario>.summary.txt``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Callable

from . import profiling

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def _cpu(pids: list[int]) -> float:
    """utime + stime of ``pids`` in seconds (a process that ended meanwhile counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _postgres() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_split(broker_pid: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``run`` (a wrk run returning its ``rate`` and ``seconds``) and the CPU ms per query of each side.
    PostgreSQL's backends live as long as the broker's pool connections, so they are read before and after."""
    broker, pg = _tree(broker_pid), _postgres()
    b0, p0 = _cpu(broker), _cpu(pg)
    result = run()
    b1, p1 = _cpu(broker), _cpu(pg)
    queries = max(1.0, result["rate"] * result["seconds"])
    return {"rate": result["rate"], "broker_ms": 1000 * (b1 - b0) / queries, "postgres_ms": 1000 * (p1 - p0) / queries}


def profile_scenarios(names: list[str], broker_pid: int, run: Callable[[str], dict[str, Any]],
                      args: argparse.Namespace, out_dir: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        split = cpu_split(broker_pid, lambda: run(name))
        log(f"{name}: {split['rate']:,.0f} q/s, CPU per query: broker {split['broker_ms']:.2f} ms, "
            f"PostgreSQL {split['postgres_ms']:.2f} ms")
        raw = out_dir / f"{name}.txt"
        spy = profiling.start(broker_pid, args.duration, raw, native=True)
        spied = run(name)
        said = spy.communicate(timeout=args.duration + 60)[0]
        if not raw.exists():  # py-spy failed (it says why): the other scenarios still get their profile
            log(f"{name}: py-spy wrote no profile: {said.decode(errors='replace').strip()[-500:]}")
            rows.append({"scenario": name, **split})
            continue
        summary = profiling.summarize(raw, duration=args.duration)
        (out_dir / f"{name}.summary.txt").write_text(f"== {name}: {spied['rate']:,.0f} q/s under py-spy ==\n"
                                                     f"{summary}\n")
        rows.append({"scenario": name, **split})
    return rows

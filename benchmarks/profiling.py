"""Sampling profiles of a server under load with py-spy, summarised from its raw (collapsed-stack) output.

py-spy is a developer tool, not a project dependency: ``pip install py-spy`` into the venv to use
``python -m benchmarks --profile DIR``. The profile pass runs after the measured runs, so its overhead
(py-spy pauses the process to sample) never touches the reported figures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# leaf-to-root, the first frame whose file matches decides the component of a sample
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("broker", ("broker/",)),
    ("floor", ("benchmarks/floor", "floor.py")),
    ("pyld", ("pyld/",)),
    ("orjson", ("orjson",)),
    ("asyncpg", ("asyncpg/", "protocol.c", "pgproto.c", "record/")),
    ("starlette", ("starlette/",)),
    ("uvicorn+httptools", ("uvicorn/", "httptools", "parser.c", "llhttp", "api.c", "http.c")),
    ("asyncio", ("asyncio/", "_asynciomodule")),
    ("uvloop/libuv", ("loop.c", "core.c", "linux.c", "stream.c", "tcp.c", "loop-watcher.c", "queue.h", "uv-")),
]


def py_spy() -> str | None:
    """Path of py-spy, if installed."""
    return shutil.which("py-spy")


def start(pid: int, duration: float, out: Path, *, native: bool = True, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` for ``duration`` seconds writing collapsed stacks to ``out``."""
    binary = py_spy()
    if binary is None:
        raise SystemExit("py-spy not found: `pip install py-spy` into the venv to use --profile")
    cmd = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(duration))), "--rate", str(rate),
           "--format", "raw", "--output", str(out), "--subprocesses"]
    if native:
        cmd.append("--native")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        match = _FRAME.match(raw)
        frames.append((match["func"], match["file"]) if match else (raw, ""))
    return frames


_SYSCALLS = {"write", "writev", "read", "readv", "send", "sendto", "sendmsg", "recv", "recvfrom", "recvmsg",
             "epoll_wait", "epoll_ctl"}


def _component(frames: list[tuple[str, str]]) -> str:
    if any(func.startswith("gc_collect") for func, _ in frames):
        return "gc (cyclic collector)"
    leaf_func, leaf_file = frames[-1]
    if leaf_func in _SYSCALLS and "libc" in leaf_file:
        return f"syscall {leaf_func} (socket I/O)"
    for _, file in reversed(frames):
        for name, needles in COMPONENTS:
            if any(needle in file for needle in needles):
                return name
    return "interpreter/other"


def _python_leaf(frames: list[tuple[str, str]]) -> str:
    """The innermost Python-level frame (native time is charged to its Python caller)."""
    for func, file in reversed(frames):
        if file.endswith(".py") or file.startswith("<frozen"):
            return f"{func} ({file})"
    return "(native only)"


def summarize(raw: Path, *, top: int = 15, rate: int = 100, duration: float = 0.0) -> str:
    """Text summary: busy share, CPU by component, top self (Python-level) and inclusive broker functions."""
    total = 0
    by_component: Counter[str] = Counter()
    self_py: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        component = _component(frames)
        by_component[component] += count
        if not component.startswith("gc"):  # gc time lands on whichever frame allocated: shown once, above
            self_py[_python_leaf(frames)] += count
        for name in {f"{func} ({file})" for func, file in frames if "broker/" in file}:
            inclusive[name] += count
    for name, n in list(inclusive.items()):
        if n == total:  # main(), serve(): every sample
            del inclusive[name]
    if not total:
        return "no samples"
    pct = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    out = [f"samples: {total}" + (f" (process busy {100 * total / (rate * duration):.0f}% of one core)"
                                  if duration else "")]
    out.append("CPU by component (gc and socket syscalls first, else the leaf-most frame of a known package):")
    out += [f"  {pct(n)}  {name}" for name, n in by_component.most_common()]
    out.append(f"top {top} self (innermost Python frame, native time charged to it; gc samples left out):")
    out += [f"  {pct(n)}  {name}" for name, n in self_py.most_common(top)]
    out.append(f"top {top} inclusive broker functions:")
    out += [f"  {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)

"""When the dispatcher stores its delivery counters (timesSent, lastSuccess, ...): the first outcome after a
quiet moment at once, so that a read through another broker process right after a notification counts it
(the ETSI suite's 046_11/046_12 read the subscription as soon as their receiver got one); under load at most
one statement per ``SETTLE_GATHER``, the outcomes of that interval together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.notify import dispatcher as dispatch


class RecordingStore:
    def __init__(self) -> None:
        self.flushes: list[tuple[float, list[Any]]] = []

    async def add_stats(self, rows: list[Any]) -> None:
        self.flushes.append((asyncio.get_running_loop().time(), rows))


def test_settle_delay_limits_the_rate_not_the_first_flush() -> None:
    assert dispatch.settle_delay(10.0) == 0.0
    assert dispatch.settle_delay(dispatch.SETTLE_GATHER) == 0.0
    assert dispatch.settle_delay(0.0) == dispatch.SETTLE_GATHER
    assert dispatch.settle_delay(dispatch.SETTLE_GATHER / 4) == pytest.approx(dispatch.SETTLE_GATHER * 3 / 4)


async def test_first_outcome_is_flushed_at_once_and_the_next_ones_together(monkeypatch: pytest.MonkeyPatch) -> None:
    gather = 2.0  # long, so that "at once" and "after the interval" cannot be confused on a slow machine
    monkeypatch.setattr(dispatch, "SETTLE_GATHER", gather)
    store = RecordingStore()
    d = dispatch.Dispatcher("postgresql://unused", None, None, None, store)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(d._flush_forever())
    try:
        start = loop.time()
        d._merge(("t", "urn:ngsi-ld:Subscription:a"), [1, 0, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", None])
        d._settle.set()
        while not store.flushes and loop.time() - start < gather:
            await asyncio.sleep(0.01)
        assert store.flushes and store.flushes[0][0] - start < gather / 2
        assert store.flushes[0][1][0][:3] == ("t", "urn:ngsi-ld:Subscription:a", 1)
        for n in range(3):  # outcomes right after a flush wait for the rest of the interval, then share one
            d._merge(("t", f"urn:ngsi-ld:Subscription:{n}"), [1, 0, None, None, None])
            d._settle.set()
            await asyncio.sleep(0.05)
        await asyncio.sleep(gather / 4)
        assert len(store.flushes) == 1
        while len(store.flushes) < 2 and loop.time() - start < 3 * gather:
            await asyncio.sleep(0.01)
        assert len(store.flushes) == 2 and len(store.flushes[1][1]) == 3
        assert store.flushes[1][0] - store.flushes[0][0] >= gather * 0.9
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

"""ContainerWait: a record naming a container without metadata waits, bounded, then goes on.

The clock and the sleep are fakes: each sleep advances the clock by what was asked and
may run a callback (the metadata agent landing a record at some simulated time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from falconet.enrichers.late import ContainerWait, unknown_container
from tests.helpers import syscall

KNOWN = "aaaaaaaaaaaa"
LATE = "bbbbbbbbbbbb"
NEVER = "cccccccccccc"


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.at: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for when, action in list(self.at):
            if self.now >= when:
                action()
                self.at.remove((when, action))


def setup(table: dict[bytes, bytes] | None = None, **kw) -> tuple[ContainerWait, FakeTime, dict]:
    t = FakeTime()
    table = {KNOWN.encode(): b"{}"} if table is None else table
    kw.setdefault("wait", 2.0)
    kw.setdefault("step", 0.05)
    return ContainerWait(table, clock=t.clock, sleep=t.sleep, **kw), t, table


def run(waiter: ContainerWait, events) -> set[str]:
    return asyncio.run(waiter.settle(events))


def test_known_and_host_containers_never_wait() -> None:
    w, t, _ = setup()
    assert run(w, [syscall("execve", container=KNOWN), syscall("execve", container="host")]) == set()
    assert t.sleeps == [] and w.stats.waits == 0


def test_waits_until_the_metadata_lands() -> None:
    w, t, table = setup()
    t.at.append((100.3, lambda: table.__setitem__(LATE.encode(), b"{}")))
    events = [syscall("execve", container=LATE), syscall("openat", container=LATE)]
    assert run(w, events) == set()
    assert 100.3 <= t.now < 100.4  # looked again every step, went on as soon as it landed
    assert all(s <= 0.05 for s in t.sleeps)
    assert w.stats.waits == 1 and w.stats.resolved == 1 and w.stats.expired == 0
    assert w.pending == 0


def test_gives_up_after_the_wait_and_never_waits_for_that_id_again() -> None:
    w, t, _ = setup()
    assert run(w, [syscall("execve", container=NEVER)]) == {NEVER}
    assert t.now == pytest.approx(102.0)  # the bound, not more
    assert w.stats.expired == 1
    before = len(t.sleeps)
    assert run(w, [syscall("execve", container=NEVER)]) == set()
    assert len(t.sleeps) == before  # the second record goes on at once


def test_forgets_the_oldest_given_up_ids() -> None:
    w, t, _ = setup(forget_after=2)
    for cid in ("000000000001", "000000000002", "000000000003"):
        run(w, [syscall("execve", container=cid)])
    before = len(t.sleeps)
    run(w, [syscall("execve", container="000000000001")])  # forgotten: waited for again
    assert len(t.sleeps) > before
    before = len(t.sleeps)
    run(w, [syscall("execve", container="000000000003")])
    assert len(t.sleeps) == before


def test_max_pending_bounds_what_is_held() -> None:
    w, t, _ = setup(max_pending=3)
    events = [syscall("execve", container=LATE, num=i) for i in range(4)]
    assert run(w, events) == {LATE}
    assert t.sleeps == [] and w.stats.skipped == 1 and w.stats.waits == 0
    assert run(w, events[:3]) == {LATE} and w.stats.waits == 1  # three fit


def test_an_empty_table_means_no_publisher_and_no_wait() -> None:
    w, t, _ = setup(table={})
    assert run(w, [syscall("execve", container=LATE)]) == set()
    assert t.sleeps == []


def test_wait_zero_disables() -> None:
    w, t, _ = setup(wait=0)
    assert run(w, [syscall("execve", container=LATE)]) == set() and t.sleeps == []


def test_inline_metadata_needs_no_table() -> None:
    ev = syscall("execve", container=LATE, enrichment={"container": {"id": LATE, "name": "web"}})
    assert unknown_container(ev) is None
    assert unknown_container(syscall("execve", container=LATE)) == LATE
    w, t, _ = setup()
    assert run(w, [ev]) == set() and t.sleeps == []

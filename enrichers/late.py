"""A bounded wait for container metadata that has not landed yet.

A container's first syscalls can reach a worker before its record reaches
``meta.containers.v1``: the runtime (or Kubernetes) publisher learns about a container
from an event of its own, a few hundred milliseconds after the process started. Evaluated
at once, those first events would have every ``container.*``/``k8s.*`` field missing.

:class:`ContainerWait` lets the syscall agent hold a record whose events name a container
id the table does not hold (and whose events carry no inline metadata for it): it looks
again every ``step`` seconds until every such id is there or ``wait`` seconds have passed,
then the record goes on with whatever the table holds by then. It never drops an event,
and never holds one longer than ``wait``.

The trade-off, chosen on purpose: the agent holds the **whole record** (and so the
partitions it reads, behind it), not only the events of the unknown container. That keeps
the order of every key's events and the at-least-once offset commits exactly as they are
without the wait, at the cost of delaying the events behind it by at most ``wait``. Three
bounds keep that cost small:

* an id is waited for **once**: an id whose wait ran out is remembered (``forget_after``
  ids, oldest forgotten first) and never waited for again, so a container whose metadata
  never comes (no publisher on that node, a container outside Kubernetes) costs one wait;
* a record waits only when the containers table holds anything at all: with no publisher
  feeding it, waiting could only add lag;
* at most ``max_pending`` events are held at once; a record whose events of unknown
  containers would pass that goes on at once (a flood of unknown containers means the
  metadata is not coming soon).

The clock and the sleep are injected, so tests drive the wait without wall-clock time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from falconet.event import Event

log = logging.getLogger("falconet.enrichers")


class Table(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


@dataclass(slots=True)
class WaitStats:
    """Counters of what the waits did (exported as metrics by the worker)."""

    waits: int = 0  # records that waited
    resolved: int = 0  # container ids that landed while waited for
    expired: int = 0  # container ids still unknown when the wait ran out
    skipped: int = 0  # records that would have waited but passed max_pending
    held_ns: int = 0  # total time records were held


def unknown_container(ev: Event) -> str | None:
    """The container id of a syscall event that needs the table: not ``host``, and the
    event carries no inline metadata for it (a recorded stream's enrichment)."""
    c = ev.payload.get("container")
    cid = c.get("id") if isinstance(c, dict) else None
    if not cid or cid == "host" or not isinstance(cid, str):
        return None
    inline = ev.enrichment.get("container")
    if isinstance(inline, dict) and any(k != "id" for k in inline):
        return None
    return cid


class ContainerWait:
    """Holds a record until the containers it names are in the table, or ``wait`` passes."""

    def __init__(
        self,
        table: Table,
        wait: float = 2.0,
        max_pending: int = 10_000,
        step: float = 0.05,
        forget_after: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        nonempty: Callable[[], bool] | None = None,
    ) -> None:
        self.table = table
        self.wait = max(0.0, wait)
        self.max_pending = max_pending
        self.step = max(0.001, step)
        self.forget_after = forget_after
        self.clock = clock
        self.sleep = sleep
        self.nonempty = nonempty if nonempty is not None else _nonempty(table)
        self.pending = 0  # events held now
        self.stats = WaitStats()
        self._given_up: OrderedDict[str, None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.wait > 0 and self.max_pending > 0

    def missing(self, events: Iterable[Event]) -> tuple[set[str], int]:
        """The container ids to wait for, and how many of ``events`` name them."""
        return self._missing(container_counts(events))

    def _missing(self, counts: Mapping[str, int]) -> tuple[set[str], int]:
        ids: set[str] = set()
        held = 0
        get = self.table.get
        given_up = self._given_up
        for cid, n in counts.items():  # a batch names few containers: one lookup each
            if cid not in given_up and get(cid.encode()) is None:
                ids.add(cid)
                held += n
        return ids, held

    async def settle(self, events: Iterable[Event]) -> set[str]:
        """Wait (bounded) for the containers ``events`` name; returns the ids still unknown."""
        return await self.settle_counts(container_counts(events))

    async def settle_counts(self, counts: Mapping[str, int]) -> set[str]:
        """:meth:`settle` for the container ids of a record and how many of its events name
        each (the worker counts them while it decodes, see ``Pipeline.decode``)."""
        if not counts or not self.enabled or not self.nonempty():
            return set()
        ids, held = self._missing(counts)
        if not ids:
            return set()
        if self.pending + held > self.max_pending:
            self.stats.skipped += 1
            return ids
        self.stats.waits += 1
        self.pending += held
        log.info("enrich.wait containers=%s events=%d", ",".join(sorted(ids)), held)
        start = self.clock()
        deadline = start + self.wait
        try:
            while ids:
                now = self.clock()
                if now >= deadline:
                    break
                await self.sleep(min(self.step, deadline - now))
                landed = {cid for cid in ids if self.table.get(cid.encode()) is not None}
                self.stats.resolved += len(landed)
                ids -= landed
        finally:
            self.pending -= held
            self.stats.held_ns += int((self.clock() - start) * 1e9)
        self.stats.expired += len(ids)
        for cid in ids:
            self._give_up(cid)
        if ids:
            log.info("enrich.wait_expired containers=%s (going on without their metadata)",
                     ",".join(sorted(ids)))  # fmt: skip
        return ids

    def _give_up(self, cid: str) -> None:
        self._given_up[cid] = None
        self._given_up.move_to_end(cid)
        while len(self._given_up) > self.forget_after:
            self._given_up.popitem(last=False)


def container_counts(events: Iterable[Event]) -> dict[str, int]:
    """How many of ``events`` name each container id that needs the table."""
    counts: dict[str, int] = {}
    for ev in events:
        cid = unknown_container(ev)
        if cid is not None:
            counts[cid] = counts.get(cid, 0) + 1
    return counts


def _nonempty(table: Any) -> Callable[[], bool]:
    """Whether the table holds anything (a Mapping's ``len``; a store view's ``__len__``)."""
    if isinstance(table, Mapping) or hasattr(table, "__len__"):
        return lambda: len(table) > 0
    return lambda: True

"""Keeping :class:`~.table.ContainerTable` equal to what the runtime runs.

Each connection opens the runtime's event stream first, then lists and describes every
container (a full resync: new records published, removed containers tombstoned), then
applies the events in order as they come, so nothing that happened during the resync is
lost. A runtime without events is polled: its container list is compared every
``poll_s``, describing only the new ids. Every ``resync_s`` a full resync runs again, in
the same task as the events (never concurrently, so a removal is never undone by a
description taken before it). A broken stream or a failed call reconnects after a backoff
and resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

from .metrics import RuntimeMetaStats
from .records import SHORT_ID
from .sockets import RuntimeApiError, RuntimeUnavailable
from .source import Change, Source
from .table import ContainerTable

log = logging.getLogger("falconet.sensors.runtime_meta")


class Syncer:
    """Runs one runtime's source against the table until ``stop`` is set."""

    def __init__(
        self,
        connect: Callable[[], Source],
        table: ContainerTable,
        stats: RuntimeMetaStats,
        *,
        poll_s: float = 2.0,
        resync_s: float = 300.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.connect = connect
        self.table = table
        self.stats = stats
        self.poll_s = poll_s
        self.resync_s = resync_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.known: dict[str, str] = {}  # full id → sandbox id, of the containers described
        #: Set after the first full resync (everything the runtime runs is published).
        self.synced = asyncio.Event()
        self.mode = ""  # "events" or "polling", once connected

    # -- one pass ----------------------------------------------------------------------------
    async def resync(self, source: Source) -> None:
        """List and describe every container; tombstone what is no longer there."""
        forget = getattr(source, "forget_sandboxes", None)
        if forget is not None:
            forget()
        ids = await source.list_ids()
        seen: set[str] = set()
        known: dict[str, str] = {}
        for fid, sandbox in ids.items():
            record = await source.describe(fid, sandbox)
            if record is None:
                continue  # removed since the list
            self.table.put(record)
            seen.add(record.id)
            known[fid] = record.sandbox_id or sandbox
        for key in self.table.keys() - seen:
            self.table.delete(key)
        self.known = known
        self.stats.count("resyncs")
        self.stats.last_resync = time.time()
        log.info("runtime_meta.resynced runtime=%s containers=%d", source.runtime, len(seen))

    async def poll(self, source: Source) -> None:
        """Compare the container list with what is known: describe new ids, tombstone gone ones."""
        ids = await source.list_ids()
        for fid in ids.keys() - self.known.keys():
            record = await source.describe(fid, ids[fid])
            if record is not None:
                self.table.put(record)
                self.known[fid] = record.sandbox_id or ids[fid]
        for fid in self.known.keys() - ids.keys():
            del self.known[fid]
            self.table.delete(fid[:SHORT_ID])

    async def apply(self, source: Source, change: Change) -> None:
        """Apply one runtime event."""
        self.stats.event(change.action or change.kind)
        if change.kind == "upsert":
            record = await source.describe(change.full_id, self.known.get(change.full_id, ""))
            if record is None:  # already removed: its destroy event follows, or was missed
                self._remove(change.full_id)
                return
            self.table.put(record)
            self.known[change.full_id] = record.sandbox_id
        elif change.kind == "delete":
            self._remove(change.full_id)

    def _remove(self, fid: str) -> None:
        self.known.pop(fid, None)
        self.table.delete(fid[:SHORT_ID])

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.backoff_initial_s
        while not stop.is_set():
            try:
                async with self.connect() as source:
                    stream = await source.changes()
                    await self.resync(source)
                    self.synced.set()
                    backoff = self.backoff_initial_s
                    if stream is None:
                        self.mode = "polling"
                        await self._polling(source, stop)
                    else:
                        self.mode = "events"
                        await self._events(source, stream, stop)
            except (RuntimeApiError, RuntimeUnavailable) as exc:
                self.stats.count("api_errors")
                self.stats.last_error = str(exc)
                delay = backoff * random.uniform(0.5, 1.0)
                log.warning("runtime_meta.reconnect in=%.1fs error=%s", delay, exc)
                backoff = min(self.backoff_max_s, backoff * 2)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                self.stats.count("reconnects")

    def _due(self, last: float) -> bool:
        return self.resync_s > 0 and time.monotonic() - last >= self.resync_s

    async def _polling(self, source: Source, stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
            if stop.is_set():
                return
            if self._due(last):
                await self.resync(source)
                last = time.monotonic()
            else:
                await self.poll(source)

    async def _events(
        self, source: Source, stream: AsyncIterator[Change], stop: asyncio.Event
    ) -> None:
        queue: asyncio.Queue[Change | BaseException] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for change in stream:
                    queue.put_nowait(change)
            except Exception as exc:  # the stream broke: the loop reconnects
                queue.put_nowait(exc)

        pumper = asyncio.create_task(pump(), name="runtime-meta-events")
        stopper = asyncio.create_task(stop.wait())
        last = time.monotonic()
        try:
            while not stop.is_set():
                timeout = None
                if self.resync_s > 0:
                    timeout = max(0.0, self.resync_s - (time.monotonic() - last))
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if stopper in done:
                        return
                    await self.resync(source)
                    last = time.monotonic()
                    continue
                item = getter.result()
                if isinstance(item, BaseException):
                    raise item
                await self.apply(source, item)
        finally:
            for task in (pumper, stopper):
                task.cancel()
            await asyncio.gather(pumper, stopper, return_exceptions=True)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

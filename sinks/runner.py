"""``falconet sink``: several sinks in one asyncio process, each on its own consumer.

Per sink (:class:`SinkWorker`), records flow::

    detections.v1 ─ consumer (own group, own thread) ─ parse ─ filters ─ dedup window
        ─ batcher (count, bytes, time) ─ write with retry ─ accepted / dead letter
        ─ offsets done ─ commit (per partition, up to the first record not done)

A record is *done* when the destination accepted it, a filter skipped it, it was folded
into a record that was delivered, or it was dead-lettered (acknowledged by Kafka); only
then may its offset be committed. Everything else is redelivered after a restart:
delivery is at-least-once. Consumption pauses while ``max_buffered`` records are not
done, and resumes by itself when half of them are.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from falconet.errors import ConfigError, FalconetError, SinkError
from falconet.kafka import KafkaSettings
from falconet.streams.dlq import Origin, dlq_record
from falconet.streams.topics import DETECTIONS

from .base import BatchingSink, SinkRecord
from .batcher import Batcher
from .consumer import KafkaSource
from .deadletters import DeadLetterProducer
from .dedup import DedupWindow, Held
from .filters import accepts
from .metrics import SinkMetrics, SinkStats
from .offsets import OffsetTracker, Ticket
from .retry import Backoff, deliver
from .settings import SinkSpec

__all__ = ["RunResult", "SinkWorker", "run_sinks"]

COMMIT_INTERVAL = 1.0  # seconds between two commits of a sink's progress


@dataclass(frozen=True, slots=True)
class _Raw:
    """A consumed value that is not a detection (dead-lettered as it is)."""

    value: bytes
    origin: Origin
    reason: str


@dataclass(slots=True)
class _Dead:
    item: Held | _Raw
    tickets: list[Ticket]
    reason: str
    status: int | None = None


class SinkWorker:
    """One configured sink: its consumer, filters, dedup, batches, retries and commits."""

    def __init__(
        self,
        spec: SinkSpec,
        settings: KafkaSettings,
        dlq: DeadLetterProducer,
        stop: asyncio.Event,
        *,
        source: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.common = spec.common
        self.log = logging.getLogger(f"falconet.sinks.{spec.kind}")
        self.metrics = SinkMetrics(spec.name)
        self.tracker = OffsetTracker()
        self.topic = settings.topic(DETECTIONS)
        self.dlq_topic = settings.topic(self.common.dlq_topic)
        self.source = source or KafkaSource(
            settings, self.topic, settings.topic(f"sink-{spec.name}"), self.tracker, spec.name
        )
        self._dlq = dlq
        self._stop = stop
        self._clock = clock
        self.sink: BatchingSink = spec.build()
        if getattr(self.sink, "cluster", False) is None:
            # a Kafka sink without its own bootstrap writes to falconet's cluster: the
            # settings this process already resolved (config file included)
            self.sink.cluster = settings  # type: ignore[attr-defined]
        self._backoff = Backoff(self.common.retry_initial_ms, self.common.retry_max_ms)
        self._dedup = (
            DedupWindow(self.common.dedup_seconds, clock) if self.common.dedup_seconds > 0 else None
        )
        self._batcher = Batcher(self.common.batch_events, self.common.batch_bytes,
                                self.common.batch_ms, self._size, clock)  # fmt: skip
        self._dead: list[_Dead] = []
        self._wake = asyncio.Event()
        self._fetching_done = False
        self.error: str | None = None

    @property
    def stats(self) -> SinkStats:
        return self.metrics.stats

    def _size(self, held: Held) -> int:
        return self.sink.record_size(held.folded())

    def _stopping(self) -> bool:
        return self._stop.is_set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when stopping."""
        if seconds <= 0 or self._stop.is_set():
            return
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    # -- running -----------------------------------------------------------------------------
    async def run(self, drain_seconds: float) -> None:
        """Open the destination, consume and deliver until stop is set, then shut down."""
        opened = await self._open()
        if not opened:
            await self._close_sink()
            return
        try:
            await self.source.start()
            self.log.info("sink.started sink=%s type=%s topic=%s group=%s", self.name,
                          self.spec.kind, self.topic, getattr(self.source, "group", ""))  # fmt: skip
            sender = asyncio.create_task(self._send_loop(), name=f"send-{self.name}")
            fetcher = asyncio.create_task(self._fetch_loop(), name=f"fetch-{self.name}")
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait({sender, fetcher, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            for t in (sender, fetcher):  # a task that ended before stop failed: stop everything
                if t.done() and not t.cancelled() and t.exception() is not None:
                    exc = t.exception()
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.log.error("sink.crashed sink=%s error=%s", self.name, self.error,
                                   exc_info=exc)  # fmt: skip
                    self._stop.set()
            await self._stop.wait()
            stop_wait.cancel()
            await asyncio.gather(fetcher, return_exceptions=True)
            self._fetching_done = True
            self._wake.set()
            done, _ = await asyncio.wait({sender}, timeout=drain_seconds)
            if not done:
                self.log.warning("sink.abandoned sink=%s records=%d (redelivered after restart)",
                                 self.name, self.tracker.outstanding)  # fmt: skip
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await self.source.commit(self.tracker.to_commit())
        finally:
            try:
                await self.source.close()
            finally:
                await self._close_sink()

    async def _open(self) -> bool:
        attempt = 0
        while not self._stop.is_set():
            try:
                await self.sink.open()
                return True
            except SinkError as exc:
                if not exc.retryable:
                    self.error = f"cannot open: {exc}"
                    break
                wait = self._backoff.delay(attempt, exc.retry_after)
                self.log.warning("sink.open_retry sink=%s attempt=%d wait=%.2fs reason=%s",
                                 self.name, attempt + 1, wait, exc)  # fmt: skip
                attempt += 1
                await self._sleep(wait)
            except FalconetError as exc:
                self.error = f"cannot open: {exc}"
                break
        if self.error:
            self.log.error("sink.open_failed sink=%s error=%s", self.name, self.error)
            self._stop.set()
        return False

    async def _close_sink(self) -> None:
        try:
            await self.sink.close()
        except Exception as exc:  # closing must not hide the summary
            self.log.warning("sink.close_failed sink=%s error=%s", self.name, exc)

    # -- consuming ---------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        last_commit = self._clock()
        max_buffered = self.common.max_buffered
        paused = False
        while not self._stop.is_set():
            outstanding = self.tracker.outstanding
            self.metrics.buffered(outstanding)
            want_pause = outstanding >= max_buffered or (paused and outstanding > max_buffered // 2)
            if want_pause != paused:
                paused = want_pause
                self.metrics.paused(paused)
                self.log.info("sink.%s sink=%s buffered=%d", "paused" if paused else "resumed",
                              self.name, outstanding)  # fmt: skip
            msgs = await self.source.fetch(0 if paused else max_buffered - outstanding, paused)
            for m in msgs:
                self._ingest(m.value(), m.topic(), m.partition(), m.offset(), m.key())
            if msgs:
                self.metrics.buffered(self.tracker.outstanding)
                self._wake.set()
            now = self._clock()
            if now - last_commit >= COMMIT_INTERVAL:
                last_commit = now
                await self.source.commit(self.tracker.to_commit())

    def _ingest(self, value: bytes | None, topic: str, partition: int, offset: int,
                key: bytes | None = None) -> None:  # fmt: skip
        ticket = self.tracker.add(topic, partition, offset)
        self.stats.consumed += 1
        raw = value or b""
        try:
            record = SinkRecord.from_json(raw, topic, partition, offset)
        except Exception as exc:  # any malformed value: a dead letter, never a crash
            reason = f"not a detection: {type(exc).__name__}: {exc}"[:500]
            self._dead.append(_Dead(_Raw(raw, Origin(topic, partition, offset, key), reason),
                                    [ticket], reason))  # fmt: skip
            return
        if not accepts(self.common, record, self.name):
            self.metrics.filtered()
            self.tracker.finish(ticket)
            return
        size = self.sink.record_size(record)
        if size > self.spec.cls.max_batch_bytes:
            reason = (f"record of {size} bytes is larger than the destination accepts "
                      f"({self.spec.cls.max_batch_bytes})")  # fmt: skip
            self._dead.append(_Dead(Held(record, [ticket]), [ticket], reason))
            return
        if self._dedup is not None:
            before = self._dedup.folded
            self._dedup.add(record, ticket)
            if self._dedup.folded > before:
                self.metrics.deduplicated(self._dedup.folded - before)
        else:
            self._batcher.add(Held(record, [ticket]))

    # -- delivering --------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            if self._dedup is not None:
                due = self._dedup.drain() if self._stop.is_set() else self._dedup.due()
                for held in due:
                    self._batcher.add(held)
            if self._dead:
                dead, self._dead = self._dead, []
                for d in dead:
                    await self._dead_letter(d)
                continue
            if self._batcher.ready() or (self._stop.is_set() and len(self._batcher)):
                await self._send(self._batcher.take())
                continue
            if self._fetching_done:
                return
            deadlines = [t for t in (self._batcher.next_due(),
                                     self._dedup.next_due() if self._dedup else None) if t]  # fmt: skip
            timeout = max(0.0, min(deadlines) - self._clock()) if deadlines else None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _send(self, batch: list[Held]) -> None:
        if not batch:
            return
        records = [h.folded() for h in batch]
        started = time.monotonic()

        def failed(n: int, reason: str, retry: bool) -> None:
            self.metrics.failed(n)
            if retry:
                self.metrics.retried(n)

        outcome = await deliver(self.sink, records, self._backoff, stopping=self._stopping,
                                on_failure=failed, sleep=self._sleep, log=self.log)  # fmt: skip
        self.metrics.batch(time.monotonic() - started)
        for i in outcome.delivered:
            self.tracker.finish_all(batch[i].tickets)
        self.metrics.sent(len(outcome.delivered))
        for d in outcome.dead:
            await self._dead_letter(
                _Dead(batch[d.index], batch[d.index].tickets, d.reason, d.status)
            )
        if outcome.abandoned:
            self.log.info("sink.abandoned sink=%s records=%d", self.name, len(outcome.abandoned))
        self.metrics.buffered(self.tracker.outstanding)

    async def _dead_letter(self, dead: _Dead) -> None:
        """Produce a dead letter and wait for Kafka; retried until it is taken or we stop."""
        item = dead.item
        details: dict[str, Any] = {"sink": self.name, "type": self.spec.kind,
                                   "status": dead.status, "reason": dead.reason}  # fmt: skip
        if isinstance(item, _Raw):
            origin, original, event_id, source, key = item.origin, item.value, None, None, None
        else:
            rec = item.record
            origin = Origin(rec.topic, rec.partition, rec.offset)
            original = rec.raw if item.count == 1 else orjson.dumps(item.folded().obj)
            event_id, source, key = (
                rec.detection.event_id or None,
                rec.detection.source or None,
                (rec.id.encode() if rec.id else None),
            )
            if item.count > 1:
                details["dedup_count"] = item.count
        value = dlq_record("deliver", dead.reason, origin, original, f"sink-{self.name}",
                           event_id=event_id, source=source, details=details)  # fmt: skip
        attempt = 0
        while True:
            try:
                await self._dlq.send(self.dlq_topic, key, value)
                break
            except FalconetError as exc:
                if self._stop.is_set():
                    self.log.warning("sink.dlq_abandoned sink=%s error=%s", self.name, exc)
                    return
                wait = self._backoff.delay(attempt)
                self.log.warning("sink.dlq_retry sink=%s wait=%.2fs error=%s", self.name, wait, exc)
                attempt += 1
                await self._sleep(wait)
        self.tracker.finish_all(dead.tickets)
        self.metrics.dead(1)
        self.log.warning("sink.dead_letter sink=%s topic=%s partition=%d offset=%d reason=%s",
                         self.name, origin.topic, origin.partition, origin.offset,
                         dead.reason[:300])  # fmt: skip


@dataclass
class RunResult:
    stats: dict[str, SinkStats] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


def serve_metrics(port: int) -> None:
    if port:
        from prometheus_client import start_http_server

        try:
            start_http_server(port)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {port}: {exc.strerror or exc}") from None
        logging.getLogger("falconet.sinks").info("sink.metrics port=%d", port)


async def run_sinks_async(specs: Sequence[SinkSpec], settings: KafkaSettings, *,
                          drain_seconds: float = 10.0, install_signals: bool = True,
                          stop: asyncio.Event | None = None) -> RunResult:  # fmt: skip
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    log = logging.getLogger("falconet.sinks")
    if install_signals:

        def on_signal(signum: int) -> None:
            if stop.is_set():  # second signal: give up on a clean stop
                sys.stderr.write("falconet sink: second signal, exiting at once\n")
                sys.stderr.flush()
                os._exit(130)
            log.info("sink.stopping signal=%s", signal.Signals(signum).name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    dlq = DeadLetterProducer(settings)
    workers = [SinkWorker(spec, settings, dlq, stop) for spec in specs]
    result = RunResult()
    try:
        outcomes = await asyncio.gather(*(w.run(drain_seconds) for w in workers),
                                        return_exceptions=True)  # fmt: skip
    finally:
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        left = await loop.run_in_executor(None, dlq.close)
        if left:
            log.warning("sink.dlq_unacknowledged records=%d", left)
    for w, outcome in zip(workers, outcomes, strict=True):
        result.stats[w.name] = w.stats
        if isinstance(outcome, BaseException):
            result.errors[w.name] = f"{type(outcome).__name__}: {outcome}"
        elif w.error:
            result.errors[w.name] = w.error
    return result


def run_sinks(specs: Sequence[SinkSpec], settings: KafkaSettings, *, metrics_port: int = 0,
              drain_seconds: float = 10.0) -> RunResult:  # fmt: skip
    """Run the sinks until SIGTERM/SIGINT (or a sink fails for good)."""
    serve_metrics(metrics_port)
    return asyncio.run(run_sinks_async(specs, settings, drain_seconds=drain_seconds))

"""The one Kafka producer every sensor and tool publishes through.

Events are published in **batches**: one Kafka record holds a JSON array of event
envelopes (``[{...}, {...}]``, docs/events.md "Batches on Kafka"), bounded by count, bytes
and time, and compressed by the producer (lz4 by default). This amortizes the per-record
cost of the stream workers (a Faust agent handles a few thousand records per second, so
one event per record would cap a worker there). Events with the same key (the host for
syscalls) go into the same batches in order, and the same key keeps them on one partition,
so one process's events stay in order.

The producer is idempotent (``acks=all``, no duplicates from retries), every delivery is
counted through its callback, and :meth:`Publisher.close` flushes what is still buffered.

Producers that must know their events are stored before they acknowledge their own source
(the CloudTrail collector deletes an SQS message, the audit webhook answers 200) use
:meth:`Publisher.publish_tracked`: it produces a group of events at once and returns a
:class:`Delivery` to wait on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from falconet.config import Config
from falconet.errors import PublishError
from falconet.event import Event
from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings

log = logging.getLogger("falconet.publisher")

COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")


@dataclass(slots=True)
class PublisherStats:
    """Counters of one publisher (exported as metrics by the processes that own it)."""

    records: int = 0  # records handed to the producer
    events: int = 0  # events in them
    delivered: int = 0  # records the broker acknowledged
    failed: int = 0  # records that could not be delivered
    lost: int = 0  # of those, records nobody else was told about (not tracked, or left at close)
    last_error: str = ""


class Delivery:
    """The delivery of a group of records produced together by :meth:`Publisher.publish_tracked`.

    :meth:`wait` returns once the broker has acknowledged every record of the group and
    raises :class:`PublishError` if one failed or the time ran out. Safe to wait on from
    any thread (each waiter serves the producer's delivery callbacks while it waits).
    """

    __slots__ = ("_poll", "_lock", "_pending", "_sealed", "_done", "records", "events", "errors")

    def __init__(self, poll: Any) -> None:
        self._poll = poll
        self._lock = threading.Lock()
        self._pending = 0
        self._sealed = False
        self._done = threading.Event()
        self.records = 0
        self.events = 0
        self.errors: list[str] = []

    def _add(self, events: int) -> None:
        with self._lock:
            self._pending += 1
            self.records += 1
            self.events += events

    def _seal(self) -> None:
        with self._lock:
            self._sealed = True
            if self._pending == 0:
                self._done.set()

    def _callback(self, err: Any) -> None:
        with self._lock:
            self._pending -= 1
            if err is not None:
                self.errors.append(str(err))
            if self._sealed and self._pending == 0:
                self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def ok(self) -> bool:
        return self._done.is_set() and not self.errors

    def wait(self, timeout: float = 30.0) -> None:
        """Block until every record is acknowledged; :class:`PublishError` otherwise."""
        deadline = time.monotonic() + timeout
        while not self._done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise PublishError(
                    f"Kafka did not acknowledge {self._pending} of {self.records} records "
                    f"within {timeout:g}s"
                )
            self._poll(min(0.05, left))
        if self.errors:
            raise PublishError(
                f"{len(self.errors)} of {self.records} records were not delivered: {self.errors[0]}"
            )


@dataclass(slots=True)
class _Batch:
    topic: str
    key: bytes | None
    parts: list[bytes] = field(default_factory=list)
    size: int = 2
    started: float = 0.0


class Publisher:
    """Batches envelopes per (topic, key) and produces them with confluent-kafka."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        batch_events: int = 500,
        batch_bytes: int = 512 * 1024,
        batch_ms: int = 100,
        compression: str = "lz4",
        client_id: str = "falconet",
        extra: dict[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}")
        self.settings = settings
        self.batch_events = max(1, batch_events)
        self.batch_bytes = max(1024, batch_bytes)
        self.batch_s = max(0, batch_ms) / 1000.0
        self.stats = PublisherStats()
        self._batches: dict[tuple[str, bytes | None], _Batch] = {}
        self._lock = threading.Lock()  # publish_tracked may be called from many threads
        conf = settings.confluent(
            **{
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": compression,
                "linger.ms": 20,
                "batch.num.messages": 10000,
                "batch.size": 1024 * 1024,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "queue.buffering.max.kbytes": 512 * 1024,
            }
        )
        conf.update(extra or {})
        self._producer = Producer(conf)

    @classmethod
    def from_config(cls, cfg: Config, settings: KafkaSettings, client_id: str = "falconet") -> Publisher:
        return cls(
            settings,
            batch_events=cfg["publisher.batch_events"],
            batch_bytes=cfg["publisher.batch_bytes"],
            batch_ms=cfg["publisher.batch_ms"],
            compression=cfg["publisher.compression"],
            client_id=client_id,
        )

    # -- delivery -------------------------------------------------------------------------
    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
            self.stats.last_error = str(err)
            log.error("delivery failed topic=%s error=%s", msg.topic() if msg else "?", err)

    def _delivered_untracked(self, err: Any, msg: Any) -> None:
        self._delivered(err, msg)
        if err is not None:
            self.stats.lost += 1

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list | None = None,
        timestamp: int = 0,
        on_delivery: Any = None,
    ) -> None:
        """Produce one record as is (no batching), waiting for room when the queue is full.
        ``timestamp`` (ms) keeps a replayed record's original time; 0 means now.
        ``on_delivery(err, msg)`` is called after the publisher's own accounting."""
        callback = self._delivered_untracked
        if on_delivery is not None:

            def callback(err: Any, msg: Any) -> None:
                self._delivered(err, msg)
                on_delivery(err, msg)  # the caller learns of a failure and handles it

        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    timestamp=timestamp,
                    on_delivery=callback,
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # backpressure: let deliveries drain
        self.stats.records += 1
        self._producer.poll(0)

    def produce_tracked(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list | None = None
    ) -> Delivery:
        """Produce one record as is and return its :class:`Delivery`."""
        delivery = Delivery(self._producer.poll)
        delivery._add(1)
        self.produce(topic, value, key, headers, on_delivery=lambda err, msg: delivery._callback(err))
        delivery._seal()
        return delivery

    def publish_tracked(
        self, topic: str, envelopes: Sequence[bytes], key: bytes | str | None = None
    ) -> Delivery:
        """Produce ``envelopes`` now, in as few batch records as the bounds allow, apart from
        the open batches, and return their :class:`Delivery`. An envelope that cannot fit in
        one Kafka record raises :class:`PublishError` before anything is produced."""
        if isinstance(key, str):
            key = key.encode()
        limit = MAX_MESSAGE_BYTES - 64 * 1024
        for i, env in enumerate(envelopes):
            if len(env) + 2 > limit:
                raise PublishError(
                    f"event {i} is {len(env)} bytes, more than a Kafka record holds ({limit})"
                )
        delivery = Delivery(self._producer.poll)
        with self._lock:
            parts: list[bytes] = []
            size = 2
            for env in [*envelopes, None]:
                if parts and (
                    env is None
                    or len(parts) >= self.batch_events
                    or size + len(env) + 1 > self.batch_bytes
                ):
                    delivery._add(len(parts))
                    self.produce(
                        topic,
                        b"[" + b",".join(parts) + b"]",
                        key,
                        headers=[("falconet-batch", str(len(parts)).encode())],
                        on_delivery=lambda err, msg: delivery._callback(err),
                    )
                    self.stats.events += len(parts)
                    parts, size = [], 2
                if env is not None:
                    parts.append(env)
                    size += len(env) + 1
        delivery._seal()
        return delivery

    # -- batching ----------------------------------------------------------------------------
    def publish(self, topic: str, envelope: bytes, key: bytes | str | None = None) -> None:
        """Add one encoded envelope to the batch of (topic, key); send the batch when full."""
        if isinstance(key, str):
            key = key.encode()
        slot = (topic, key)
        batch = self._batches.get(slot)
        if batch is not None and batch.size + len(envelope) + 1 > self.batch_bytes:
            self._send(slot)
            batch = None
        if batch is None:
            batch = self._batches[slot] = _Batch(topic, key, started=time.monotonic())
        batch.parts.append(envelope)
        batch.size += len(envelope) + 1
        if len(batch.parts) >= self.batch_events:
            self._send(slot)
        elif self.batch_s and time.monotonic() - batch.started >= self.batch_s:
            self.tick()

    def publish_event(self, ev: Event, topic: str, key: bytes | str | None = None) -> None:
        """Publish an :class:`Event` as its envelope (key defaults to the event's host)."""
        self.publish(topic, orjson.dumps(ev.to_json_obj()), ev.host if key is None else key)

    def tick(self) -> None:
        """Send the batches older than ``batch_ms``; call it when idle (sensors do)."""
        now = time.monotonic()
        for slot in [s for s, b in self._batches.items() if now - b.started >= self.batch_s]:
            self._send(slot)
        self._producer.poll(0)

    def _send(self, slot: tuple[str, bytes | None]) -> None:
        batch = self._batches.pop(slot, None)
        if batch is None or not batch.parts:
            return
        value = b"[" + b",".join(batch.parts) + b"]"
        self.produce(batch.topic, value, batch.key, headers=[("falconet-batch", str(len(batch.parts)).encode())])
        self.stats.events += len(batch.parts)

    def flush(self, timeout: float = 30.0) -> int:
        """Send every open batch and wait for deliveries; returns the records still queued."""
        for slot in list(self._batches):
            self._send(slot)
        return self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then release the producer (its connections close with it)."""
        if self._producer is None:
            return
        remaining = self.flush(timeout)
        if remaining:
            log.error("publisher closed with %d records undelivered", remaining)
            self.stats.failed += remaining
            self.stats.lost += remaining
        self._producer = None  # type: ignore[assignment]

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

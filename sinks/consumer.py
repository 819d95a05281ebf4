"""One sink's Kafka consumer, driven from the event loop without blocking it.

Every call on the confluent-kafka consumer (poll, pause, resume, commit, close, and the
rebalance callbacks it runs) happens in one thread of its own, so the consumer is never
used from two threads and a slow sink never holds back another sink's consumer.

Backpressure: when the sink has no room, the assigned partitions are paused and the
consumer keeps polling (so its group membership stays alive); a record that was already
on its way is pushed back with a seek, so nothing beyond ``max_buffered`` is taken.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings

from .offsets import OffsetTracker

__all__ = ["KafkaSource"]

log = logging.getLogger("falconet.sinks.consumer")


class KafkaSource:
    def __init__(self, settings: KafkaSettings, topic: str, group: str, tracker: OffsetTracker,
                 sink_name: str, poll_seconds: float = 0.2) -> None:  # fmt: skip
        self.topic = topic
        self.group = group
        self._settings = settings
        self._tracker = tracker
        self._sink = sink_name
        self._poll = poll_seconds
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"sink-{sink_name}")
        self._consumer: Any = None
        self.paused = False
        self._last_error = ""

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    # -- in the consumer's thread -------------------------------------------------------------
    def _start(self) -> None:
        from confluent_kafka import Consumer

        conf = self._settings.confluent(
            **{
                "group.id": self.group,
                "client.id": f"falconet-sink-{self._sink}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
                "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            }
        )
        self._consumer = Consumer(conf, logger=logging.getLogger("falconet.sinks.librdkafka"))
        self._consumer.subscribe([self.topic], on_assign=self._on_assign,
                                 on_revoke=self._on_revoke)  # fmt: skip

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            self._tracker.assign(tp.topic, tp.partition)
        consumer.assign(partitions)
        if self.paused and partitions:
            consumer.pause(partitions)
        log.info("sink.assigned sink=%s partitions=%s", self._sink,
                 ",".join(str(tp.partition) for tp in partitions))  # fmt: skip

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = []
        for tp in partitions:
            pos = self._tracker.revoke(tp.topic, tp.partition)
            if pos is not None:
                offsets.append(TopicPartition(tp.topic, tp.partition, pos))
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("sink.commit_failed sink=%s on=revoke error=%s", self._sink, exc)
        log.info("sink.revoked sink=%s partitions=%s", self._sink,
                 ",".join(str(tp.partition) for tp in partitions))  # fmt: skip

    def _fetch(self, room: int, pause: bool) -> list[Any]:
        from confluent_kafka import KafkaError, TopicPartition

        c = self._consumer
        if pause != self.paused:
            parts = c.assignment()
            if parts:
                (c.pause if pause else c.resume)(parts)
            self.paused = pause
        msgs = c.consume(max(1, room), self._poll)
        if not msgs:
            return []
        # a rebalance runs inside consume(): what it returns may come from partitions given
        # to another member meanwhile. Those are not ours to take (their new owner reads
        # them from the offset committed on revoke), and not ours to seek (that raises).
        assigned = {tp.partition for tp in c.assignment() if tp.topic == self.topic}
        good = []
        pushed: set[int] = set()
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF and str(err) != self._last_error:
                    self._last_error = str(err)  # once per distinct error, not once per poll
                    log.warning("sink.consume_error sink=%s error=%s", self._sink, err)
                continue
            if m.partition() not in assigned:
                continue
            if pause or len(good) >= room:
                if m.partition() not in pushed:  # not ours to take yet: read it again later
                    if self._seek(c, TopicPartition(m.topic(), m.partition(), m.offset())):
                        pushed.add(m.partition())
                        continue
                    good.append(m)  # could not push it back: take it rather than skip it
                continue
            if m.partition() in pushed:
                continue
            good.append(m)
        return good

    def _seek(self, consumer: Any, tp: Any) -> bool:
        from confluent_kafka import KafkaException

        try:
            consumer.seek(tp)
        except KafkaException as exc:
            log.warning("sink.seek_failed sink=%s partition=%d error=%s", self._sink,
                        tp.partition, exc)  # fmt: skip
            return False
        return True

    def _commit(self, offsets: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        from confluent_kafka import KafkaException, TopicPartition

        if not offsets or self._consumer is None:
            return []
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for t, p, o in offsets], asynchronous=False
            )
        except KafkaException as exc:
            log.info("sink.commit_failed sink=%s error=%s", self._sink, exc)
            return []
        return offsets

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- from the event loop --------------------------------------------------------------------
    async def start(self) -> None:
        await self._call(self._start)

    async def fetch(self, room: int, pause: bool) -> list[Any]:
        """Messages (at most ``room``); ``pause``: pause the partitions, take nothing."""
        return await self._call(self._fetch, room, pause)

    async def commit(self, offsets: list[tuple[str, int, int]]) -> None:
        for t, p, o in await self._call(self._commit, offsets):
            self._tracker.committed(t, p, o)

    async def close(self) -> None:
        try:
            await self._call(self._close)
        finally:
            self._thread.shutdown(wait=False)

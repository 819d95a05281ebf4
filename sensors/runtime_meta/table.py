"""What this publisher has on ``meta.containers.v1``: its records, published only on change.

Records carry ``publisher`` (:data:`PUBLISHER`) and ``node``. At start the topic is read to
its end and the records of this publisher on this node are taken as already published, so
a restart republishes nothing unchanged and the first full resync tombstones the
containers removed while it was down. Records of other publishers (the Kubernetes
publisher writes the same key when ``k8s_meta.publish_containers`` is on) and of other
nodes are never touched, except that a removed container's key is tombstoned whoever
wrote it last. A record Kafka did not store is forgotten, so the next resync sends it
again; a tombstone it did not store is sent again by the next resync too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from falconet.errors import SensorError
from falconet.kafka import KafkaSettings

from .metrics import RuntimeMetaStats
from .records import ContainerRecord, encode

log = logging.getLogger("falconet.sensors.runtime_meta")

#: The ``publisher`` field of every record this publisher writes.
PUBLISHER = "runtime-meta"

#: ``sink(key, value or None, on_failure)``: produce one compacted record; ``on_failure``
#: is called (from the producer's poll) if Kafka could not store it.
Sink = Callable[[str, bytes | None, Callable[[], None]], None]


_PARTITION_EOF = -191


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The latest value of every key of a compacted topic (tombstoned keys left out);
    :class:`SensorError` when the topic is missing or cannot be read to its end in time."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(settings.confluent(**{
        "group.id": f"falconet-runtime-meta-read-{time.time_ns()}",
        "enable.auto.commit": False, "enable.partition.eof": True,
    }))  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:  # a topic just created may not have its partition leaders yet
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                break
            if time.monotonic() > deadline:
                raise SensorError(f"topic {topic} does not exist (run `falconet topics create`)")
            time.sleep(0.5)
        parts = list(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        latest: dict[str, bytes] = {}
        at_end: set[int] = set()
        while len(at_end) < len(parts):
            if time.monotonic() > deadline:
                raise SensorError(f"could not read {topic} to its end within {timeout:g}s")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == _PARTITION_EOF:
                    at_end.add(msg.partition())
                continue
            key = (msg.key() or b"").decode("utf-8", "replace")
            if msg.value() is None:
                latest.pop(key, None)
            else:
                latest[key] = msg.value()
        return latest
    finally:
        consumer.close()


class ContainerTable:
    """The records of one node's containers, keyed by the 12-character id."""

    def __init__(self, sink: Sink, node: str, stats: RuntimeMetaStats) -> None:
        self.sink = sink
        self.node = node
        self.stats = stats
        self.published: dict[str, bytes] = {}  # short id → value bytes

    def load(self, existing: Mapping[str, bytes]) -> int:
        """Take this publisher's records of this node among ``existing`` (key → value)."""
        for key, raw in existing.items():
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if (isinstance(value, dict) and value.get("publisher") == PUBLISHER
                    and value.get("node") == self.node):  # fmt: skip
                self.published[key] = bytes(raw)
        self.stats.containers = len(self.published)
        return len(self.published)

    def _forget(self, key: str, data: bytes | None) -> Callable[[], None]:
        def on_failure() -> None:
            self.stats.count("publish_failed")
            if data is None:  # known again (with no value): the next resync deletes it again
                self.published.setdefault(key, b"")
                return
            if self.published.get(key) == data:
                del self.published[key]  # sent again at the next resync

        return on_failure

    def put(self, record: ContainerRecord) -> bool:
        """Publish ``record`` unless its value is the one already published."""
        value: dict[str, Any] = record.value(PUBLISHER, self.node)
        data = encode(value)
        key = record.id
        if self.published.get(key) == data:
            self.stats.count("unchanged")
            return False
        self.published[key] = data
        self.sink(key, data, self._forget(key, data))
        self.stats.count("published")
        self.stats.containers = len(self.published)
        log.debug("runtime_meta.published id=%s name=%s", key, record.name)
        return True

    def delete(self, key: str) -> bool:
        """Tombstone ``key`` if this publisher has a record for it."""
        if self.published.pop(key, None) is None:
            return False
        self.sink(key, None, self._forget(key, None))
        self.stats.count("tombstones")
        self.stats.containers = len(self.published)
        log.info("runtime_meta.deleted id=%s", key)
        return True

    def keys(self) -> set[str]:
        return set(self.published)

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
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from falconet.errors import SensorError
from falconet.kafka import KafkaSettings, read_compacted

from .metrics import RuntimeMetaStats
from .records import ContainerRecord, encode

log = logging.getLogger("falconet.sensors.runtime_meta")

#: The ``publisher`` field of every record this publisher writes.
PUBLISHER = "runtime-meta"

#: ``sink(key, value or None, on_failure)``: produce one compacted record; ``on_failure``
#: is called (from the producer's poll) if Kafka could not store it.
Sink = Callable[[str, bytes | None, Callable[[], None]], None]


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The latest value of every key of a compacted topic (tombstoned keys left out);
    :class:`SensorError` when the topic is missing or cannot be read to its end in time."""
    return read_compacted(settings, topic, timeout, appear_within=timeout, error=SensorError)


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

"""One compacted metadata topic as this publisher sees it: what it published, and the diff
of each new :class:`~.inventory.Snapshot` against it.

At start the topic is read to its end and the records carrying this publisher's id
(``publisher`` in the value) are taken as its own, so a restart republishes nothing that
did not change and deletes (tombstones) what disappeared while it was down. Records of
other publishers on the same topic are never touched. A change is counted as published
only once Kafka acknowledged it; a failed round is retried whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from falconet.errors import PublishError, SensorError
from falconet.kafka import KafkaSettings, read_compacted
from falconet.sensors.publisher import Publisher

from .inventory import Snapshot
from .records import encode

log = logging.getLogger("falconet.sensors.cloud_meta")


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The latest value of every key of a compacted topic (tombstoned keys left out)."""
    return read_compacted(settings, topic, timeout, appear_within=min(10.0, timeout),
                          error=SensorError)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SyncResult:
    upserts: int
    deletes: int

    @property
    def changes(self) -> int:
        return self.upserts + self.deletes


class MetaTable:
    """What this publisher has on one metadata topic."""

    def __init__(self, topic: str, publisher_id: str) -> None:
        self.topic = topic
        self.publisher_id = publisher_id
        self.published: dict[str, bytes] = {}  # key → value bytes Kafka acknowledged

    def load(self, settings: KafkaSettings) -> int:
        """Take this publisher's records on the topic as already published."""
        for key, raw in read_topic(settings, self.topic).items():
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and value.get("publisher") == self.publisher_id:
                self.published[key] = raw
        log.info("cloud_meta.loaded topic=%s records=%d", self.topic, len(self.published))
        return len(self.published)

    def diff(self, snapshot: Snapshot) -> tuple[dict[str, bytes], list[str]]:
        """(records to publish, keys to delete) to go from what was published to ``snapshot``."""
        upserts = {}
        for key, value in snapshot.records.items():
            data = encode(value)
            if self.published.get(key) != data:
                upserts[key] = data
        deletes = []
        for key, raw in self.published.items():
            if key in snapshot.records:
                continue
            try:
                old = orjson.loads(raw)
            except orjson.JSONDecodeError:
                old = {}
            if snapshot.covers(key, old if isinstance(old, Mapping) else {}):
                deletes.append(key)
        return upserts, deletes

    def sync(self, publisher: Publisher, snapshot: Snapshot, timeout: float = 30.0) -> SyncResult:
        """Publish the changes of ``snapshot`` and tombstone what it no longer holds; returns
        once Kafka acknowledged them (:class:`PublishError` if some were not)."""
        upserts, deletes = self.diff(snapshot)
        if not upserts and not deletes:
            return SyncResult(0, 0)
        errors: list[str] = []
        acked: dict[str, bytes | None] = {}

        def on_delivery(key: str, value: bytes | None) -> Any:
            def callback(err: Any, msg: Any) -> None:
                if err is None:
                    acked[key] = value
                else:
                    errors.append(str(err))

            return callback

        changes: list[tuple[str, bytes | None]] = [*upserts.items(), *((k, None) for k in deletes)]
        for key, value in changes:
            publisher.produce(self.topic, value, key.encode(), on_delivery=on_delivery(key, value))
        left = publisher.flush(timeout)
        for key, value in acked.items():
            if value is None:
                self.published.pop(key, None)
            else:
                self.published[key] = value
        if errors or left:
            first = errors[0] if errors else f"{left} records not acknowledged within {timeout:g}s"
            raise PublishError(f"{len(changes) - len(acked)} of {len(changes)} changes to {self.topic} "
                               f"were not delivered: {first}")  # fmt: skip
        for key in deletes:
            log.info("cloud_meta.deleted topic=%s key=%s", self.topic, key)
        return SyncResult(len(upserts), len(deletes))

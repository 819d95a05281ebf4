"""Consumer lag of the workers' group: how many records wait on the event topics.

Lag per partition is the end offset (high watermark) minus the group's committed offset
(the whole partition when nothing is committed yet). The workers share one consumer
group, so the lag is the group's, whichever worker measures it; every worker exports it as
``falconet_worker_consumer_lag{topic}`` and in its status record, so both Prometheus and
`falconet rules status` show whether the workers keep up.
"""

from __future__ import annotations

import logging
from typing import Any

from falconet.errors import FalconetError
from falconet.kafka import KafkaSettings

log = logging.getLogger("falconet.lag")


class LagError(FalconetError):
    """The lag could not be read (broker unreachable, unknown topic)."""


class LagProbe:
    """Reads the committed offsets of ``group`` and the end offsets of ``topics``.

    It uses a consumer of that group that never subscribes, so it does not join the group
    and never triggers a rebalance.
    """

    def __init__(self, settings: KafkaSettings, group: str, topics: list[str]) -> None:
        self.settings = settings
        self.group = group
        self.topics = topics
        self._consumer: Any = None

    def _client(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(
                self.settings.confluent(
                    **{"group.id": self.group, "enable.auto.commit": False, "client.id": "falconet-lag"}
                )
            )
        return self._consumer

    def measure(self, timeout: float = 10.0) -> dict[str, int]:
        """Records behind, per topic (summed over its partitions)."""
        from confluent_kafka import KafkaException, TopicPartition

        consumer = self._client()
        try:
            meta = consumer.list_topics(timeout=timeout)
            partitions = [
                TopicPartition(t, p)
                for t in self.topics
                if t in meta.topics and meta.topics[t].error is None
                for p in meta.topics[t].partitions
            ]
            committed = consumer.committed(partitions, timeout=timeout) if partitions else []
            lag = {t: 0 for t in self.topics if t in meta.topics}
            for tp in committed:
                low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
                start = tp.offset if tp.offset >= 0 else low
                lag[tp.topic] += max(0, high - start)
        except KafkaException as exc:
            raise LagError(f"cannot read the lag of group {self.group}: {exc}") from None
        return lag

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

"""The publisher's own counters, exported as ``falconet_cloud_meta_*`` beside the runner's
``falconet_sensor_*`` (records published, Kafka deliveries)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CloudMetaStats:
    """Per table and per source; updated from the publisher's thread, read at scrape time."""

    upserts: dict[str, int] = field(default_factory=dict)  # table → records published
    deletes: dict[str, int] = field(default_factory=dict)  # table → tombstones published
    entities: dict[str, int] = field(default_factory=dict)  # table → records held now
    errors: dict[str, int] = field(default_factory=dict)  # source → failed rounds
    last_success: dict[str, float] = field(default_factory=dict)  # source → unix time

    def count(self, counter: dict[str, int], key: str, n: int = 1) -> None:
        counter[key] = counter.get(key, 0) + n


class CloudMetaMetrics:
    """A Prometheus collector reading :class:`CloudMetaStats`."""

    def __init__(self, stats: CloudMetaStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        records = CounterMetricFamily(
            "falconet_cloud_meta_records", "Metadata records published", labels=["table", "op"]
        )
        for op, values in (("upsert", s.upserts), ("delete", s.deletes)):
            for table, n in values.items():
                records.add_metric([table, op], n)
        yield records
        entities = GaugeMetricFamily(
            "falconet_cloud_meta_entities", "Records this publisher holds", labels=["table"]
        )
        for table, n in s.entities.items():
            entities.add_metric([table], n)
        yield entities
        errors = CounterMetricFamily(
            "falconet_cloud_meta_errors", "Rounds that failed (retried)", labels=["source"]
        )
        for source, n in s.errors.items():
            errors.add_metric([source], n)
        yield errors
        last = GaugeMetricFamily("falconet_cloud_meta_last_success_timestamp_seconds",
                                 "When a round last succeeded", labels=["source"])  # fmt: skip
        for source, t in s.last_success.items():
            last.add_metric([source], t)
        yield last


def register(stats: CloudMetaStats) -> CloudMetaMetrics:
    """Register the metrics in the default registry (served by the runner)."""
    from prometheus_client import REGISTRY

    metrics = CloudMetaMetrics(stats)
    REGISTRY.register(metrics)  # type: ignore[arg-type]
    return metrics

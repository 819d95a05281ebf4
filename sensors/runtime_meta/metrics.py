"""The publisher's own counters, exported as ``falconet_runtime_meta_*`` beside the runner's
``falconet_sensor_*`` (records emitted, Kafka deliveries)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Counters of :attr:`RuntimeMetaStats.counts` and their help text.
COUNTERS = {
    "published": "Container records published (new or changed)",
    "tombstones": "Tombstones published for removed containers",
    "unchanged": "Container descriptions skipped because the record did not change",
    "publish_failed": "Records Kafka did not store (sent again at the next resync)",
    "resyncs": "Full resyncs (list and describe every container)",
    "reconnects": "Reconnections to the runtime after an error or a broken event stream",
    "api_errors": "Runtime API calls that failed",
}


@dataclass(slots=True)
class RuntimeMetaStats:
    """Updated from the publisher's event loop, read at scrape time."""

    runtime: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)  # runtime event action → count
    containers: int = 0  # records held now
    last_resync: float = 0.0  # unix time of the last full resync
    last_error: str = ""

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def event(self, action: str) -> None:
        self.events[action] = self.events.get(action, 0) + 1

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


class RuntimeMetaMetrics:
    """A Prometheus collector reading :class:`RuntimeMetaStats`."""

    def __init__(self, stats: RuntimeMetaStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        for name, doc in COUNTERS.items():
            family = CounterMetricFamily(f"falconet_runtime_meta_{name}", doc, labels=["runtime"])
            family.add_metric([s.runtime], s.get(name))
            yield family
        events = CounterMetricFamily("falconet_runtime_meta_events", "Runtime events received",
                                     labels=["runtime", "action"])  # fmt: skip
        for action, n in sorted(s.events.items()):
            events.add_metric([s.runtime, action], n)
        yield events
        held = GaugeMetricFamily(
            "falconet_runtime_meta_containers", "Container records held", labels=["runtime"]
        )
        held.add_metric([s.runtime], s.containers)
        yield held
        last = GaugeMetricFamily("falconet_runtime_meta_last_resync_timestamp_seconds",
                                 "When the last full resync ended", labels=["runtime"])  # fmt: skip
        last.add_metric([s.runtime], s.last_resync)
        yield last


def register(stats: RuntimeMetaStats) -> RuntimeMetaMetrics:
    """Register the metrics in the default registry (served by the runner)."""
    from prometheus_client import REGISTRY

    metrics = RuntimeMetaMetrics(stats)
    REGISTRY.register(metrics)  # type: ignore[arg-type]
    return metrics

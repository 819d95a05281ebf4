"""The publisher's own counters, exported as ``falconet_k8s_meta_*`` beside the runner's
``falconet_sensor_*`` (records emitted, Kafka deliveries)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Where errors happened (label ``kind`` of ``falconet_k8s_meta_errors_total``).
ERROR_KINDS = ("access", "api", "network", "object")


@dataclass(slots=True)
class K8sMetaStats:
    """Counters of one publisher; updated from its event loop, read at scrape time.

    Per resource kind (``Pod``, ``Namespace``, ...): objects known now, lists (first and
    re-), relists after 410 Gone, 410s, watch restarts, bookmarks and watch events. Per
    topic: records and tombstones published, and values skipped because unchanged.
    """

    objects: dict[str, int] = field(default_factory=dict)
    lists: dict[str, int] = field(default_factory=dict)
    relists: dict[str, int] = field(default_factory=dict)
    gone: dict[str, int] = field(default_factory=dict)
    watch_restarts: dict[str, int] = field(default_factory=dict)
    bookmarks: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, what)
    published: dict[str, int] = field(default_factory=dict)  # table → records
    tombstones: dict[str, int] = field(default_factory=dict)  # table → tombstones
    unchanged: dict[str, int] = field(default_factory=dict)  # table → skipped

    @staticmethod
    def count(counter: dict[Any, int], key: Any, n: int = 1) -> None:
        counter[key] = counter.get(key, 0) + n

    def error(self, kind: str, what: str) -> None:
        self.count(self.errors, (kind, what))

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())


class K8sMetaMetrics:
    """A Prometheus collector reading :class:`K8sMetaStats` at scrape time."""

    def __init__(self, stats: K8sMetaStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        objects = GaugeMetricFamily(
            "falconet_k8s_meta_objects", "Objects known per resource kind", labels=["kind"]
        )
        for kind, n in s.objects.items():
            objects.add_metric([kind], n)
        yield objects
        per_kind = (
            ("falconet_k8s_meta_lists", "Full lists (first and after 410 Gone)", s.lists),
            ("falconet_k8s_meta_relists", "Lists after 410 Gone", s.relists),
            ("falconet_k8s_meta_gone", "410 Gone answers (HTTP or ERROR events)", s.gone),
            (
                "falconet_k8s_meta_watch_restarts",
                "Watches that ended and were restarted",
                s.watch_restarts,
            ),
            ("falconet_k8s_meta_bookmarks", "BOOKMARK events", s.bookmarks),
            ("falconet_k8s_meta_watch_events", "ADDED, MODIFIED and DELETED events", s.events),
        )
        for name, doc, values in per_kind:
            family = CounterMetricFamily(name, doc, labels=["kind"])
            for kind, n in values.items():
                family.add_metric([kind], n)
            yield family
        errors = CounterMetricFamily(
            "falconet_k8s_meta_errors",
            "API errors (retried) and objects that could not be translated",
            labels=["kind", "error"],
        )
        for (kind, what), n in s.errors.items():
            errors.add_metric([kind, what], n)
        yield errors
        per_table = (
            ("falconet_k8s_meta_records", "Records published per metadata table", s.published),
            (
                "falconet_k8s_meta_tombstones",
                "Tombstones published per metadata table",
                s.tombstones,
            ),
            ("falconet_k8s_meta_unchanged", "Updates not published: same value", s.unchanged),
        )
        for name, doc, values in per_table:
            family = CounterMetricFamily(name, doc, labels=["table"])
            for table, n in values.items():
                family.add_metric([table], n)
            yield family


def register(stats: K8sMetaStats) -> K8sMetaMetrics:
    """Register the metrics in the default registry (served by the runner)."""
    from prometheus_client import REGISTRY

    metrics = K8sMetaMetrics(stats)
    REGISTRY.register(metrics)  # type: ignore[arg-type]
    return metrics

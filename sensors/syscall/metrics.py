"""Prometheus metrics of the syscall sensor (beside the runner's ``falconet_sensor_*``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SyscallStats:
    """Counters of the capture side, read at scrape time."""

    records: int = 0  # ring records read (chunks included)
    batches: int = 0  # ring reads that returned records
    kernel_drops: int = 0  # records the kernel could not reserve (ring full)
    truncated: int = 0  # records whose strings were cut
    ring_fill: float = 0.0  # fill ratio of the ring at the last read
    ring_fill_max: float = 0.0  # highest fill ratio seen
    events_per_second: float = 0.0  # over the last second
    processes: int = 0  # process table size
    proc_lookups: int = 0  # processes read from /proc mid-life
    publish_records: int = 0  # Kafka batch records produced


class SyscallCollector:
    """Exports :class:`SyscallStats` as ``falconet_sensor_syscall_*``."""

    def __init__(self, stats: SyscallStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        for family, name, doc, value in (
            (CounterMetricFamily, "records", "Ring-buffer records read", s.records),
            (CounterMetricFamily, "kernel_drops",
             "Records the kernel could not put in the full ring buffer", s.kernel_drops),
            (CounterMetricFamily, "truncated", "Records whose strings were cut to fit", s.truncated),
            (CounterMetricFamily, "proc_lookups", "Processes read from /proc after they started",
             s.proc_lookups),
            (CounterMetricFamily, "kafka_records", "Kafka batch records produced", s.publish_records),
            (GaugeMetricFamily, "ring_fill_ratio", "Fill ratio of the ring buffer at the last read",
             s.ring_fill),
            (GaugeMetricFamily, "ring_fill_ratio_max", "Highest fill ratio of the ring buffer seen",
             s.ring_fill_max),
            (GaugeMetricFamily, "events_per_second", "Events published per second (last second)",
             s.events_per_second),
            (GaugeMetricFamily, "processes", "Processes in the sensor's process table", s.processes),
        ):  # fmt: skip
            metric = family(f"falconet_sensor_syscall_{name}", doc)
            metric.add_metric([], value)
            yield metric


def scrape(port: int, host: str = "127.0.0.1") -> dict[str, float]:
    """The ``falconet_sensor*`` samples a running sensor serves (benchmarks, tests), by name
    as exposed (``falconet_sensor_events_total{sensor="syscall"}``)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("falconet_sensor") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def register(stats: SyscallStats) -> SyscallCollector | None:
    """Register the collector on the default registry (None when prometheus is missing)."""
    try:
        from prometheus_client import REGISTRY
    except ImportError:  # pragma: no cover - a dependency of falconet
        return None
    collector = SyscallCollector(stats)
    REGISTRY.register(collector)  # type: ignore[arg-type]
    return collector


def unregister(collector: SyscallCollector | None) -> None:
    if collector is None:
        return
    from prometheus_client import REGISTRY

    try:
        REGISTRY.unregister(collector)  # type: ignore[arg-type]
    except KeyError:
        pass

"""Prometheus metrics of ``falconet sink``, one series per sink (label ``sink``)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["SinkMetrics", "SinkStats"]

SENT = Counter("falconet_sink_sent_total", "Records the destination accepted", ["sink"])
FAILED = Counter("falconet_sink_failed_total", "Records of failed write attempts", ["sink"])
RETRIED = Counter("falconet_sink_retried_total", "Records written again after a failure", ["sink"])
DLQ = Counter("falconet_sink_dlq_total", "Records sent to the dead-letter topic", ["sink"])
FILTERED = Counter("falconet_sink_filtered_total", "Records the sink's filters skipped", ["sink"])
DEDUPLICATED = Counter(
    "falconet_sink_deduplicated_total", "Repeats folded into another record", ["sink"]
)
BATCH_SECONDS = Histogram(
    "falconet_sink_batch_seconds",
    "Time from a batch's first write to its last answer (retries included)",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BUFFERED = Gauge("falconet_sink_buffered", "Records consumed and not yet done", ["sink"])
PAUSED = Gauge("falconet_sink_paused", "1 while consumption is paused (backpressure)", ["sink"])


@dataclass(slots=True)
class SinkStats:
    """The same counts, kept per process for the summary line and tests."""

    consumed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dlq: int = 0
    filtered: int = 0
    deduplicated: int = 0
    batches: int = 0
    pauses: int = 0
    max_buffered_seen: int = 0

    def summary(self) -> str:
        return (
            f"consumed={self.consumed} sent={self.sent} filtered={self.filtered} "
            f"deduplicated={self.deduplicated} dlq={self.dlq} failed={self.failed} "
            f"retried={self.retried} batches={self.batches} pauses={self.pauses} "
            f"max_buffered_seen={self.max_buffered_seen}"
        )


class SinkMetrics:
    """Counts for one sink: the Prometheus series and :class:`SinkStats` together."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SinkStats()
        self._sent = SENT.labels(name)
        self._failed = FAILED.labels(name)
        self._retried = RETRIED.labels(name)
        self._dlq = DLQ.labels(name)
        self._filtered = FILTERED.labels(name)
        self._dedup = DEDUPLICATED.labels(name)
        self._latency = BATCH_SECONDS.labels(name)
        self._buffered = BUFFERED.labels(name)
        self._paused = PAUSED.labels(name)

    def sent(self, n: int) -> None:
        self.stats.sent += n
        self._sent.inc(n)

    def failed(self, n: int) -> None:
        self.stats.failed += n
        self._failed.inc(n)

    def retried(self, n: int) -> None:
        self.stats.retried += n
        self._retried.inc(n)

    def dead(self, n: int) -> None:
        self.stats.dlq += n
        self._dlq.inc(n)

    def filtered(self, n: int = 1) -> None:
        self.stats.filtered += n
        self._filtered.inc(n)

    def deduplicated(self, n: int) -> None:
        self.stats.deduplicated += n
        self._dedup.inc(n)

    def batch(self, seconds: float) -> None:
        self.stats.batches += 1
        self._latency.observe(seconds)

    def buffered(self, n: int) -> None:
        self.stats.max_buffered_seen = max(self.stats.max_buffered_seen, n)
        self._buffered.set(n)

    def paused(self, on: bool) -> None:
        if on:
            self.stats.pauses += 1
        self._paused.set(1 if on else 0)

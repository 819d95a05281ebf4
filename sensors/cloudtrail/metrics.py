"""The collector's own counters, exported as ``falconet_cloudtrail_*`` beside the runner's
``falconet_sensor_*`` (events, DLQ records, Kafka deliveries)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Outcomes of log files (label ``outcome`` of ``falconet_cloudtrail_objects_total``).
OBJECT_OUTCOMES = ("published", "dead_letter", "skipped", "ignored", "failed")
#: What happened to SQS messages (label ``outcome`` of ``falconet_cloudtrail_sqs_messages_total``).
SQS_OUTCOMES = ("received", "deleted", "ignored", "released", "dead_letter")
#: Where errors happened (label ``kind`` of ``falconet_cloudtrail_errors_total``).
ERROR_KINDS = ("s3", "sqs", "kafka", "file")


@dataclass(slots=True)
class CollectorStats:
    """Counters of one collector; updated from its main thread, read at scrape time."""

    objects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OBJECT_OUTCOMES, 0))
    sqs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SQS_OUTCOMES, 0))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    records: int = 0  # records published (events)
    bad_records: int = 0  # records sent to the DLQ
    bytes: int = 0  # stored (compressed) bytes read
    in_flight: int = 0
    newest_event_ts: int = 0  # newest eventTime published (ns)

    def lag_seconds(self, now_ns: int | None = None) -> float:
        """How far behind real time the newest published record is (0 before the first)."""
        if not self.newest_event_ts:
            return 0.0
        return max(0.0, ((now_ns or time.time_ns()) - self.newest_event_ts) / 1e9)


class CloudTrailMetrics:
    """A Prometheus collector reading :class:`CollectorStats` at scrape time."""

    def __init__(self, stats: CollectorStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        labelled = (
            ("falconet_cloudtrail_objects", "Log files by outcome", "outcome", s.objects),
            ("falconet_cloudtrail_sqs_messages", "SQS messages by outcome", "outcome", s.sqs),
            (
                "falconet_cloudtrail_errors",
                "S3, SQS, Kafka and file errors (retried)",
                "kind",
                s.errors,
            ),
        )
        for name, doc, label, values in labelled:
            family = CounterMetricFamily(name, doc, labels=[label])
            for k, v in values.items():
                family.add_metric([k], v)
            yield family
        yield CounterMetricFamily(
            "falconet_cloudtrail_records", "CloudTrail records published", value=s.records
        )
        yield CounterMetricFamily(
            "falconet_cloudtrail_bad_records",
            "CloudTrail records sent to the DLQ",
            value=s.bad_records,
        )
        yield CounterMetricFamily(
            "falconet_cloudtrail_bytes", "Stored bytes of log files read", value=s.bytes
        )
        yield GaugeMetricFamily("falconet_cloudtrail_objects_in_flight", "Log files being read or published",
                                value=s.in_flight)  # fmt: skip
        yield GaugeMetricFamily(
            "falconet_cloudtrail_lag_seconds",
            "Age of the newest published record",
            value=s.lag_seconds(),
        )


def register(stats: CollectorStats) -> CloudTrailMetrics:
    """Register the collector's metrics in the default registry (served by the runner)."""
    from prometheus_client import REGISTRY

    metrics = CloudTrailMetrics(stats)
    REGISTRY.register(metrics)  # type: ignore[arg-type]
    return metrics

"""Prometheus metrics of a stream worker (served on ``worker.metrics_port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Info

RECORDS = Counter("falconet_worker_records_total", "Kafka records processed", ["topic"])
EVENTS = Counter("falconet_worker_events_total", "Events evaluated", ["source"])
DETECTIONS = Counter(
    "falconet_worker_detections_total", "Detections produced", ["source", "priority"]
)
DEAD_LETTERS = Counter("falconet_worker_dlq_total", "Records sent to the DLQ", ["stage"])
RULE_RELOADS = Counter("falconet_worker_rules_reloads_total", "Rule set reloads", ["result"])
RULES_LOADED = Gauge("falconet_worker_rules_loaded", "Rules in the active rule set")
LAG = Gauge("falconet_worker_consumer_lag", "Records behind the end of the event topics", ["topic"])
RULESET = Info("falconet_worker_ruleset", "The active rule set")

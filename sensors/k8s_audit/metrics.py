"""Prometheus metrics of the audit webhook, served beside the runner's ``falconet_sensor_*``
on ``k8s_audit.metrics_port``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "falconet_k8s_audit_requests_total", "Webhook requests answered, by HTTP status", ["code"]
)
EVENTS = Counter(
    "falconet_k8s_audit_events_total",
    "Audit events received, by outcome (published, dead_letter)",
    ["outcome"],
)
REQUEST_BYTES = Counter("falconet_k8s_audit_request_bytes_total", "Request body bytes read")
AUTH_FAILURES = Counter(
    "falconet_k8s_audit_auth_failures_total", "Requests refused by authentication", ["reason"]
)
PUBLISH_FAILURES = Counter(
    "falconet_k8s_audit_publish_failures_total",
    "Requests answered 503 because Kafka did not acknowledge their events",
)
PUBLISH_SECONDS = Histogram(
    "falconet_k8s_audit_publish_seconds",
    "Time from producing a request's events to Kafka's acknowledgement of all of them",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFLIGHT = Gauge("falconet_k8s_audit_inflight_requests", "Webhook requests being handled")

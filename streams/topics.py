"""falconet's topics: names, settings, and idempotent creation.

Every name carries a version suffix and the configurable prefix (``kafka.topic_prefix``,
default ``falconet.``). Event, detection and DLQ topics are partitioned for scale-out and
time-retained; metadata, rules and status topics are compacted (the latest value of each
key is the state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from falconet.config import Config
from falconet.errors import FalconetError
from falconet.event import SOURCES
from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings

#: The metadata tables and the key each meta topic is keyed by.
META_TABLES = {
    "containers": "container id (12 characters, as `container.id`)",
    "pods": "pod uid",
    "namespaces": "namespace name",
    "nodes": "node name (the `host` of events)",
    "instances": "node name (the `host` of events): the node's cloud instance identity",
    "accounts": "cloud account id (AWS: the 12-digit account)",
    "identities": "principal (AWS: the ARN; Kubernetes: the user name)",
}


def events_topic(source: str) -> str:
    return f"events.{source}.v1"


def meta_topic(table: str) -> str:
    return f"meta.{table}.v1"


RULES = "rules.v1"
STATUS = "status.v1"
DETECTIONS = "detections.v1"
DLQ = "dlq.v1"


class TopicError(FalconetError):
    """Topics could not be created or described."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name without prefix, partitions and configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    purpose: str = ""

    @property
    def compacted(self) -> bool:
        return self.config.get("cleanup.policy") == "compact"


def specs(cfg: Config) -> list[TopicSpec]:
    """Every falconet topic with the partitions and retention from ``cfg``."""
    parts = cfg["topics.partitions"]
    meta_parts = cfg["topics.meta_partitions"]
    timed = {
        "cleanup.policy": "delete",
        "retention.ms": str(cfg["topics.retention_ms"]),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    }
    compact = {
        "cleanup.policy": "compact",
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.cleanable.dirty.ratio": "0.1",
    }
    out = [
        TopicSpec(events_topic(s), parts, dict(timed), f"raw {s} events (batches of envelopes)")
        for s in SOURCES
    ]
    out += [
        TopicSpec(meta_topic(t), meta_parts, dict(compact), f"metadata: key = {k}")
        for t, k in META_TABLES.items()
    ]
    out += [
        TopicSpec(RULES, 1, dict(compact), "rule sets pushed to the workers (key = rule set)"),
        TopicSpec(STATUS, 1, dict(compact), "worker status (key = worker id)"),
        TopicSpec(DETECTIONS, parts, dict(timed), "detections, one Falco JSON alert per record"),
        TopicSpec(DLQ, parts, dict(timed), "records that could not be decoded or evaluated"),
    ]
    return out


def _admin(settings: KafkaSettings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(settings.confluent())


@dataclass(frozen=True, slots=True)
class TopicState:
    name: str
    status: str  # created | exists | mismatch | missing | error
    partitions: int | None
    detail: str = ""


def create(
    settings: KafkaSettings,
    wanted: list[TopicSpec],
    replication: int = 1,
    timeout: float = 30.0,
) -> list[TopicState]:
    """Create the topics that do not exist; report those that exist, and any whose
    partition count differs from the configuration (never changed silently)."""
    with _admin(settings) as admin:
        return _create(admin, settings, wanted, replication, timeout)


def _create(admin: Any, settings: KafkaSettings, wanted: list[TopicSpec], replication: int,
            timeout: float) -> list[TopicState]:  # fmt: skip
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise TopicError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None
    states: dict[str, TopicState] = {}
    todo = []
    for spec in wanted:
        full = settings.topic(spec.name)
        meta = existing.get(full)
        if meta is None:
            todo.append(NewTopic(full, spec.partitions, replication, config=spec.config))
        else:
            n = len(meta.partitions)
            status = "exists" if n == spec.partitions else "mismatch"
            detail = "" if n == spec.partitions else f"has {n} partitions, configured {spec.partitions}"
            states[full] = TopicState(full, status, n, detail)
    if todo:
        futures = admin.create_topics(todo, operation_timeout=timeout, request_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result()
            except KafkaException as exc:
                err = exc.args[0]
                if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                    states[name] = TopicState(name, "exists", None)
                else:
                    states[name] = TopicState(name, "error", None, str(err))
            else:
                spec = next(s for s in wanted if settings.topic(s.name) == name)
                states[name] = TopicState(name, "created", spec.partitions)
    return [states[settings.topic(s.name)] for s in wanted]


def describe(settings: KafkaSettings, wanted: list[TopicSpec], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Partitions, configuration and end offsets of each falconet topic."""
    with _admin(settings) as admin:
        return _describe(admin, settings, wanted, timeout)


def _describe(admin: Any, settings: KafkaSettings, wanted: list[TopicSpec], timeout: float) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import ConfigResource

    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise TopicError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None
    consumer = Consumer(settings.confluent(**{"group.id": "falconet-describe", "enable.auto.commit": False}))
    rows: list[dict[str, Any]] = []
    try:
        for spec in wanted:
            full = settings.topic(spec.name)
            meta = existing.get(full)
            if meta is None:
                rows.append({"topic": full, "exists": False, "purpose": spec.purpose})
                continue
            configs: dict[str, str] = {}
            try:
                res = admin.describe_configs([ConfigResource("topic", full)])
                for _, fut in res.items():
                    configs = {k: v.value for k, v in fut.result(timeout=timeout).items()}
            except KafkaException:
                pass
            messages = 0
            for p in meta.partitions:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(full, p), timeout=timeout)
                messages += max(0, hi - lo)
            rows.append(
                {
                    "topic": full,
                    "exists": True,
                    "partitions": len(meta.partitions),
                    "replication": len(next(iter(meta.partitions.values())).replicas)
                    if meta.partitions
                    else 0,
                    "cleanup.policy": configs.get("cleanup.policy", ""),
                    "retention.ms": configs.get("retention.ms", ""),
                    "records": messages,
                    "purpose": spec.purpose,
                }
            )
    finally:
        consumer.close()
    return rows

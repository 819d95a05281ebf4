"""The Kafka sink against the session's real broker: Falco JSON alerts on a SOC topic."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from falconet.broker import BrokerInfo
from falconet.detection import Detection, detection_id
from falconet.errors import SinkError
from falconet.priority import Priority
from falconet.sinks.base import ACCEPTED, SinkOptions, SinkRecord, WriteResult
from falconet.sinks.kafka import FALCO_FIELDS, KafkaSink

TS = 1_718_000_000_123_456_789


def record(n: int, host: str = "node-a", rule: str = "Write below etc", pad: int = 0) -> SinkRecord:
    fields: dict[str, Any] = {"evt.time": TS + n, "proc.name": "cat"}
    if pad:
        fields["pad"] = "x" * pad
    d = Detection(
        time="2024-06-10T06:13:20.123456789Z", rule=rule, priority=Priority.parse("Error"),
        output=f"alert {n}", output_fields=fields, source="syscall", tags=("T1565",),
        hostname=host, id=detection_id(rule, f"e{n}"), event_id=f"e{n}", ts=TS + n,
        enrichment={"k8s": {"ns": "prod"}},
    )  # fmt: skip
    return SinkRecord.from_json(d.to_json(), "falconet.detections.v1", 0, n)


def create_topic(bootstrap: str, topic: str, **config: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1, config=config)]
    )
    fs[topic].result(timeout=30)


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check",
                  "enable.auto.commit": False})  # fmt: skip
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        seen: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(msg)
        # anything more would be a duplicate: give it a moment to show up
        extra = c.poll(1.0)
        if extra is not None and not extra.error():
            seen.append(extra)
        return seen
    finally:
        c.close()


def sink(topic: str, environ: dict[str, str] | None = None, **yaml: Any) -> KafkaSink:
    opts = SinkOptions(
        "soc-topic", KafkaSink.options, {"topic": topic, **yaml}, environ=environ or {}
    )
    return KafkaSink("soc-topic", opts)


def deliver(s: KafkaSink, batch: list[SinkRecord]) -> WriteResult:
    async def main() -> WriteResult:
        await s.open()
        try:
            return await s.write(batch)
        finally:
            await s.close()

    return asyncio.run(main())


def test_alerts_arrive_as_falco_json_keyed_by_hostname(
    kafka: BrokerInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "soc-alerts"
    create_topic(kafka.bootstrap, topic)
    batch = [record(n, host="node-a" if n % 2 else "node-b") for n in range(6)]
    s = sink(topic, bootstrap=kafka.bootstrap, delivery_timeout_seconds=20)
    assert deliver(s, batch) is ACCEPTED

    msgs = consume(kafka.bootstrap, topic, len(batch))
    assert len(msgs) == len(batch)
    by_event = {orjson.loads(m.value())["output"]: m for m in msgs}
    for n, rec in enumerate(batch):
        m = by_event[f"alert {n}"]
        value = orjson.loads(m.value())
        assert list(value) == list(FALCO_FIELDS)  # Falco's alert, nothing of falconet's
        assert value == {k: rec.obj[k] for k in FALCO_FIELDS}
        assert m.key() == rec.detection.hostname.encode()
        assert dict(m.headers())["falconet-id"] == rec.id.encode()
    # one host's alerts share a partition, in the order they were written
    for host in ("node-a", "node-b"):
        mine = [m for m in msgs if m.key() == host.encode()]
        assert len({m.partition() for m in mine}) == 1
        assert [m.offset() for m in mine] == sorted(m.offset() for m in mine)
        assert [orjson.loads(m.value())["output"] for m in mine] == [
            r.obj["output"] for r in batch if r.detection.hostname == host
        ]


def test_main_cluster_with_falconet_fields_keyed_by_rule(
    kafka: BrokerInfo, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = topic_prefix + "soc-alerts-full"
    create_topic(kafka.bootstrap, topic)
    monkeypatch.delenv("FALCONET_CONFIG", raising=False)
    monkeypatch.setenv("FALCONET_KAFKA_BOOTSTRAP", kafka.bootstrap)  # falconet's own cluster
    batch = [record(0, rule="Shell in container"), record(1, rule="Read sensitive file")]
    s = sink(topic, include_falconet_fields=True, key="rule", delivery_timeout_seconds=20)
    assert deliver(s, batch) is ACCEPTED
    msgs = consume(kafka.bootstrap, topic, len(batch))
    got = {m.key(): orjson.loads(m.value()) for m in msgs}
    assert len(msgs) == 2
    assert got[b"Shell in container"] == batch[0].obj
    assert got[b"Read sensitive file"]["enrichment"] == {"k8s": {"ns": "prod"}}
    assert got[b"Read sensitive file"]["id"] == batch[1].id


def test_record_over_the_topic_limit_is_a_permanent_item_failure(
    kafka: BrokerInfo, topic_prefix: str
) -> None:
    topic = topic_prefix + "soc-alerts-small"
    create_topic(kafka.bootstrap, topic, **{"max.message.bytes": "20000"})
    batch = [record(0), record(1, pad=60_000), record(2), record(3, pad=40_000), record(4)]
    s = sink(topic, bootstrap=kafka.bootstrap, compression="none", delivery_timeout_seconds=20)
    result = deliver(s, batch)
    assert [(f.index, f.retryable) for f in result.failures] == [(1, False), (3, False)]
    assert all("MSG_SIZE_TOO_LARGE" in f.reason for f in result.failures)
    msgs = consume(kafka.bootstrap, topic, 3)
    assert sorted(orjson.loads(m.value())["output"] for m in msgs) == [
        "alert 0",
        "alert 2",
        "alert 4",
    ]


def test_unreachable_cluster_is_retryable() -> None:
    s = sink("soc-alerts", bootstrap="127.0.0.1:1", delivery_timeout_seconds=2)
    with pytest.raises(SinkError) as err:
        deliver(s, [record(0)])
    assert err.value.retryable

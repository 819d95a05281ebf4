"""The publisher's batching: count, bytes and time bounds; order and keys kept."""

from __future__ import annotations

import time

import orjson

from falconet.kafka import KafkaSettings
from falconet.sensors.publisher import Publisher


class FakeProducer:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes | None, list]] = []
        self.full_once = False

    def produce(self, topic, value, key, headers, timestamp, on_delivery) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        self.records.append((topic, value, key, headers))
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def publisher(**kw) -> tuple[Publisher, FakeProducer]:
    pub = Publisher(KafkaSettings("127.0.0.1:1"), **kw)
    fake = FakeProducer()
    pub._producer = fake  # type: ignore[assignment]
    return pub, fake


def env(i: int) -> bytes:
    return orjson.dumps({"source": "syscall", "type": "execve", "ts": i, "id": f"e{i}", "event": {}})


def test_batches_by_count_per_key_in_order() -> None:
    pub, fake = publisher(batch_events=3, batch_ms=10_000)
    for i in range(7):
        pub.publish("t", env(i), key="node-a" if i % 2 == 0 else "node-b")
    pub.flush()
    batches = [(key, [e["id"] for e in orjson.loads(value)]) for _, value, key, _ in fake.records]
    assert batches == [(b"node-a", ["e0", "e2", "e4"]), (b"node-b", ["e1", "e3", "e5"]), (b"node-a", ["e6"])]
    assert fake.records[0][3] == [("falconet-batch", b"3")]
    assert (pub.stats.events, pub.stats.records, pub.stats.delivered) == (7, 3, 3)


def test_batches_by_bytes() -> None:
    pub, fake = publisher(batch_events=1000, batch_bytes=1024, batch_ms=10_000)
    for i in range(40):
        pub.publish("t", env(i), key="k")
    pub.flush()
    assert len(fake.records) > 1 and all(len(v) <= 1024 for _, v, _, _ in fake.records)
    assert sum(len(orjson.loads(v)) for _, v, _, _ in fake.records) == 40


def test_batches_by_time() -> None:
    pub, fake = publisher(batch_events=1000, batch_ms=20)
    pub.publish("t", env(1), key="k")
    assert fake.records == []
    time.sleep(0.03)
    pub.tick()
    assert len(fake.records) == 1


def test_backpressure_waits_instead_of_dropping() -> None:
    pub, fake = publisher(batch_events=1)
    fake.full_once = True
    pub.publish("t", env(1), key="k")
    assert len(fake.records) == 1 and pub.stats.failed == 0


def test_publish_tracked_splits_and_waits_for_every_record() -> None:
    pub, fake = publisher(batch_events=2, batch_ms=10_000)
    delivery = pub.publish_tracked("t", [env(i) for i in range(5)], key="k")
    delivery.wait(1)
    assert delivery.ok and (delivery.records, delivery.events) == (3, 5)
    assert [len(orjson.loads(v)) for _, v, _, _ in fake.records] == [2, 2, 1]
    assert pub.stats.delivered == 3


class FailingProducer(FakeProducer):
    def produce(self, topic, value, key, headers, timestamp, on_delivery) -> None:
        self.records.append((topic, value, key, headers))
        on_delivery("broker down" if len(self.records) == 2 else None, None)


class SilentProducer(FakeProducer):
    def produce(self, topic, value, key, headers, timestamp, on_delivery) -> None:
        self.records.append((topic, value, key, headers))  # never acknowledged


def test_publish_tracked_reports_failures_and_timeouts() -> None:
    import pytest

    from falconet.errors import PublishError

    pub = Publisher(KafkaSettings("127.0.0.1:1"), batch_events=1)
    pub._producer = FailingProducer()  # type: ignore[assignment]
    with pytest.raises(PublishError, match="1 of 3 records were not delivered: broker down"):
        pub.publish_tracked("t", [env(i) for i in range(3)]).wait(1)
    assert pub.stats.failed == 1

    pub._producer = SilentProducer()  # type: ignore[assignment]
    with pytest.raises(PublishError, match="did not acknowledge 1 of 1 records"):
        pub.publish_tracked("t", [env(0)]).wait(0.2)

    with pytest.raises(PublishError, match="more than a Kafka record holds"):
        pub.publish_tracked("t", [b"x" * (20 * 1024 * 1024)])


def test_only_untracked_failures_count_as_lost() -> None:
    pub = Publisher(KafkaSettings("127.0.0.1:1"), batch_events=1)
    pub._producer = FailingProducer()  # type: ignore[assignment]
    delivery = pub.publish_tracked("t", [env(0), env(1)])  # the 2nd record fails, the caller knows
    assert delivery.errors == ["broker down"]
    assert (pub.stats.failed, pub.stats.lost) == (1, 0)
    pub._producer = FailingProducer()  # type: ignore[assignment]
    pub.publish("t", env(2))
    pub.publish("t", env(3))  # batch_events=1: each publish sends; the 2nd fails, nobody is told
    assert (pub.stats.failed, pub.stats.lost) == (2, 1)

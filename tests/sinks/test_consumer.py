"""The sink's consumer around a rebalance: records of a partition that moved to another
member during consume() are neither taken nor pushed back (their new owner reads them from
the committed offset), and a push-back the client refuses never skips a record."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from falconet.kafka import KafkaSettings
from falconet.sinks.consumer import KafkaSource
from falconet.sinks.offsets import OffsetTracker

TOPIC = "falconet.detections.v1"


class Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class Consumer:
    """What librdkafka does: seek() on a partition not assigned raises (Erroneous state)."""

    def __init__(self, msgs: list[Msg], assigned: list[int], refuse: set[int] = frozenset()) -> None:
        self.msgs, self.assigned, self.refuse = msgs, assigned, refuse
        self.seeks: list[tuple[int, int]] = []

    def consume(self, n: int, timeout: float) -> list[Msg]:
        return self.msgs[:n]

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.assigned]

    def seek(self, tp: TopicPartition) -> None:
        if tp.partition not in self.assigned or tp.partition in self.refuse:
            raise KafkaException(KafkaError(KafkaError._STATE, "Erroneous state"))
        self.seeks.append((tp.partition, tp.offset))

    def pause(self, parts: Any) -> None: ...

    def resume(self, parts: Any) -> None: ...


def source(consumer: Consumer) -> KafkaSource:
    s = KafkaSource(KafkaSettings(bootstrap="127.0.0.1:1"), TOPIC, "g", OffsetTracker(), "soc")
    s._consumer = consumer
    return s


def test_records_of_a_partition_moved_away_are_left_to_its_new_owner() -> None:
    c = Consumer([Msg(0, 10), Msg(1, 20), Msg(0, 11)], assigned=[0])
    got = source(c)._fetch(room=3, pause=False)
    assert [(m.partition(), m.offset()) for m in got] == [(0, 10), (0, 11)] and c.seeks == []
    c.msgs = [Msg(1, 21)]  # paused: not pushed back either (that would raise)
    assert source(c)._fetch(room=0, pause=True) == [] and c.seeks == []
    c.msgs = [Msg(0, 12)]  # paused, ours: pushed back
    assert source(c)._fetch(room=0, pause=True) == [] and c.seeks == [(0, 12)]


def test_a_refused_push_back_takes_the_record_rather_than_skip_it() -> None:
    c = Consumer([Msg(0, 10)], assigned=[0], refuse={0})
    got = source(c)._fetch(room=0, pause=True)
    assert [(m.partition(), m.offset()) for m in got] == [(0, 10)] and c.seeks == []

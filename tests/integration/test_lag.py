"""The workers' consumer lag, read from the group's committed offsets and the end offsets."""

from __future__ import annotations

from pathlib import Path

from falconet.streams.lag import LagProbe
from falconet.streams.topics import events_topic
from tests.integration.harness import make_stack


def test_lag_counts_records_behind_the_group_commit(kafka, topic_prefix: str, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    stack = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    syscall, cloudtrail = events_topic("syscall"), events_topic("aws_cloudtrail")
    stack.produce(syscall, [(b"node-a", b"[]")] * 7 + [(b"node-b", b"[]")] * 5)
    stack.produce(cloudtrail, [(b"123456789012", b"[]")] * 3)
    group = stack.topic("worker")
    probe = LagProbe(stack.settings, group, [stack.topic(syscall), stack.topic(cloudtrail),
                                             stack.topic("events.absent.v1")])  # fmt: skip
    try:
        # nothing committed yet: every record is behind; an absent topic is left out
        assert probe.measure() == {stack.topic(syscall): 12, stack.topic(cloudtrail): 3}

        # the group commits the end of node-a's partition: only node-b's records remain
        consumer = Consumer(stack.settings.confluent(**{"group.id": group, "enable.auto.commit": False}))
        full = stack.topic(syscall)
        parts = consumer.list_topics(full, timeout=10).topics[full].partitions
        ends = [TopicPartition(full, p, consumer.get_watermark_offsets(TopicPartition(full, p))[1])
                for p in parts]  # fmt: skip
        busy = [tp for tp in ends if tp.offset]
        assert sum(tp.offset for tp in busy) == 12
        first = max(busy, key=lambda tp: tp.offset)  # the partition with the most records
        consumer.commit(offsets=[first], asynchronous=False)
        consumer.close()
        assert probe.measure() == {full: 12 - first.offset, stack.topic(cloudtrail): 3}
    finally:
        probe.close()

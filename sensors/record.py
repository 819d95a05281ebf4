"""`falconet record`: keep any topic in a file, to replay it later.

A record file is JSON lines (gzip when its name ends in ``.gz``), one Kafka record per line:

    {"v": 1, "kind": "kafka-record", "topic": "falconet.events.syscall.v1", "partition": 3,
     "offset": 1207, "timestamp": 1718000000123, "key": "node-a",
     "headers": [["falconet-batch", "500"]], "value": [ ...the record's JSON... ]}

``value`` holds the record's JSON when it is JSON, else ``value_b64`` its bytes; a key
that is not UTF-8 is ``key_b64``. Timestamps are the records' own (ms), and
`falconet replay` reproduces them.
"""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import orjson

from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings
from falconet.stopping import stop_on_signals

RECORD_KIND = "kafka-record"


@dataclass(slots=True)
class RecordStats:
    records: int = 0
    bytes: int = 0


def record_line(msg: Any) -> bytes:
    """One recorded Kafka message as a JSON line (without the newline)."""
    obj: dict[str, Any] = {
        "v": 1,
        "kind": RECORD_KIND,
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp()[1],
    }
    key = msg.key()
    if key is not None:
        try:
            obj["key"] = key.decode("utf-8")
        except UnicodeDecodeError:
            obj["key_b64"] = base64.b64encode(key).decode()
    headers = msg.headers()
    if headers:
        obj["headers"] = [
            [k, v.decode("utf-8", "replace") if isinstance(v, bytes) else v] for k, v in headers
        ]
    value = msg.value()
    if value is None:
        obj["value"] = None
    else:
        try:
            obj["value"] = orjson.loads(value)
        except orjson.JSONDecodeError:
            obj["value_b64"] = base64.b64encode(value).decode()
    return orjson.dumps(obj)


def _open_out(path: str) -> IO[bytes]:
    if path == "-":
        import sys

        return sys.stdout.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb")  # noqa: SIM115 - closed by the caller


def record(
    settings: KafkaSettings,
    topic: str,
    out: str,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    max_records: int = 0,
    progress: Callable[[RecordStats], None] = lambda s: None,
) -> RecordStats:
    """Copy ``topic`` to the file ``out``. Without ``follow`` it stops at the end of every
    partition; with it, on SIGINT/SIGTERM or after ``max_records``."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from falconet.errors import FalconetError

    consumer = Consumer(
        settings.confluent(
            **{
                "group.id": f"falconet-record-{time.time_ns()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
                "fetch.queue.backoff.ms": 5,
            }
        )
    )
    stats = RecordStats()
    fh = _open_out(out)
    try:
        with stop_on_signals() as stopping:
            meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
            if meta is None or meta.error is not None:
                raise FalconetError(f"topic {topic} does not exist")
            parts = list(meta.partitions)
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(topic, p, start) for p in parts])
            at_end: set[int] = set()
            last_progress = time.monotonic()
            while not stopping.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == -191:  # end of a partition
                        at_end.add(msg.partition())
                        if not follow and len(at_end) == len(parts):
                            break
                    continue
                line = record_line(msg)
                fh.write(line + b"\n")
                stats.records += 1
                stats.bytes += len(line) + 1
                if max_records and stats.records >= max_records:
                    break
                if time.monotonic() - last_progress > 1.0:
                    progress(stats)
                    last_progress = time.monotonic()
    finally:
        if out != "-":
            fh.close()
        consumer.close()
    progress(stats)
    return stats

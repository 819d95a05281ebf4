"""`falconet replay`: play a recorded stream into Kafka again.

Two kinds of file are understood, by content:

* **event files** — anything `falconet run --input` reads (falconet JSON lines, CloudTrail
  logs, Kubernetes audit logs, libscap ``.scap`` captures, gzip or not): events are
  published in batches to the events
  topic of their source (or to ``--topic``), keyed like a sensor keys them (the host for
  syscalls, the account for CloudTrail, the cluster for audit events);
* **record files** written by `falconet record` — each record is produced again as it was
  (key, value, headers, timestamp) to ``--topic`` or its original topic.

Pacing follows the original timestamps: ``speed`` 1.0 is real time, 10 ten times faster,
and ``speed=None`` as fast as possible.
"""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from falconet.event import Event
from falconet.inputs import Problem, RecordDecoder, read_events

from .publisher import Publisher
from .record import RECORD_KIND


@dataclass(slots=True)
class ReplayStats:
    events: int = 0
    records: int = 0
    problems: int = 0


def event_key(ev: Event) -> str:
    """How sensors key events: order matters per host, account and cluster."""
    if ev.source == "aws_cloudtrail":
        return str(ev.payload.get("recipientAccountId") or ev.host)
    if ev.source == "k8s_audit":
        return str(ev.meta.get("cluster") or ev.host)
    return ev.host


class _Pacer:
    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self.t0: float | None = None
        self.wall0 = 0.0

    def wait(self, ts_seconds: float) -> None:
        if not self.speed:
            return
        if self.t0 is None:
            self.t0, self.wall0 = ts_seconds, time.monotonic()
            return
        due = self.wall0 + (ts_seconds - self.t0) / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _is_record_file(path: str) -> bool:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            first = f.readline()
        obj = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError, EOFError):
        return False
    return isinstance(obj, dict) and obj.get("kind") == RECORD_KIND


def _records(path: str, on_problem: Callable[[Problem], None]) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                on_problem(Problem(path, n, f"invalid JSON: {exc}"))
                continue
            if not isinstance(obj, dict) or obj.get("kind") != RECORD_KIND:
                on_problem(Problem(path, n, "not a recorded Kafka record"))
                continue
            yield obj


def replay(
    paths: list[str],
    publisher: Publisher,
    topic_for: Callable[[str], str],
    *,
    topic: str | None = None,
    speed: float | None = None,
    decoder: RecordDecoder | None = None,
    on_problem: Callable[[Problem], None] = lambda p: None,
    progress: Callable[[ReplayStats], None] = lambda s: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> ReplayStats:
    """Replay files; ``topic_for(source)`` names the events topic of a source.
    ``cancelled()`` is checked between records: when it turns true the replay stops
    (what was published so far is still flushed)."""
    stats = ReplayStats()
    decoder = decoder or RecordDecoder()

    def problem(p: Problem) -> None:
        stats.problems += 1
        on_problem(p)

    last = time.monotonic()
    for path in paths:
        if cancelled():
            break
        pacer = _Pacer(speed)
        if path != "-" and _is_record_file(path):
            for rec in _records(path, problem):
                if cancelled():
                    break
                pacer.wait((rec.get("timestamp") or 0) / 1000.0)
                if "value_b64" in rec:
                    value: bytes | None = base64.b64decode(rec["value_b64"])
                elif rec.get("value") is None:
                    value = None
                else:
                    value = orjson.dumps(rec["value"])
                key = rec.get("key")
                key_bytes = key.encode() if isinstance(key, str) else (
                    base64.b64decode(rec["key_b64"]) if "key_b64" in rec else None
                )
                headers = [(k, v.encode() if isinstance(v, str) else v) for k, v in rec.get("headers") or []]
                publisher.produce(topic or rec["topic"], value, key_bytes, headers or None,
                                  timestamp=rec.get("timestamp") or 0)  # fmt: skip
                stats.records = publisher.stats.records
                if time.monotonic() - last > 1.0:
                    progress(stats)
                    last = time.monotonic()
            continue
        for ev in read_events(path, decoder, problem):
            if cancelled():
                break
            pacer.wait(ev.ts / 1e9)
            publisher.publish_event(ev, topic or topic_for(ev.source), event_key(ev))
            stats.events += 1
            if speed:
                publisher.tick()
            if time.monotonic() - last > 1.0:
                progress(stats)
                last = time.monotonic()
    publisher.flush()
    stats.records = publisher.stats.records
    progress(stats)
    return stats

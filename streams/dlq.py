"""Dead-letter records: what could not be decoded, enriched or evaluated, and why.

A DLQ record is one JSON object on ``dlq.v1`` (docs/events.md, "Dead-letter records"):
the stage that failed, a readable reason, where the input came from (topic, partition,
offset, and the index inside a batch), and the original bytes (base64) so the input can be
inspected and replayed once fixed. Nothing is dropped silently.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import orjson

DECODE = "decode"
ENRICH = "enrich"
EVALUATE = "evaluate"
RULES = "rules"

#: Originals larger than this are cut (the record says so, with the full size).
MAX_ORIGINAL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a Kafka record came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None


def dlq_record(
    stage: str,
    reason: str,
    origin: Origin | None,
    original: bytes | None,
    worker: str,
    *,
    index: int | None = None,
    event_id: str | None = None,
    source: str | None = None,
    details: Any = None,
) -> bytes:
    """Encode one dead-letter record."""
    obj: dict[str, Any] = {
        "v": 1,
        "ts": time.time_ns(),
        "stage": stage,
        "reason": reason,
        "worker": worker,
    }
    if origin is not None:
        obj.update({"topic": origin.topic, "partition": origin.partition, "offset": origin.offset})
        if origin.key is not None:
            obj["key_b64"] = base64.b64encode(origin.key).decode()
    if index is not None:
        obj["index"] = index
    if event_id is not None:
        obj["event_id"] = event_id
    if source is not None:
        obj["source"] = source
    if details is not None:
        obj["details"] = details
    if original is not None:
        obj["original_bytes"] = len(original)
        cut = original[:MAX_ORIGINAL_BYTES]
        obj["truncated"] = len(cut) < len(original)
        obj["original_b64"] = base64.b64encode(cut).decode()
    return orjson.dumps(obj)

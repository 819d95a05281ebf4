"""The detection record: Falco's JSON alert plus falconet's own fields.

Any tool that reads Falco's JSON alerts (``time``, ``rule``, ``priority``, ``output``,
``output_fields``, ``source``, ``tags``, ``hostname``) reads ours; falconet adds a stable
``id`` (a hash of the rule and the event id, so a replayed or redelivered event gives the
same id), the ``event_id``, and the event's ``enrichment`` when there is any.

Context-aware policy (``docs/policy.md``) adds ``owner``, ``environment``, ``score``
(``falconet.score``, 0–100) and ``routes`` (the sinks a detection is meant for); each is
written only when set, so a detection no policy touched is Falco's alert plus the above.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .priority import Priority


def detection_id(rule: str, event_id: str) -> str:
    """Stable id of the detection of ``rule`` on event ``event_id`` (32 hex chars)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(rule.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(event_id.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Detection:
    """One rule match on one event."""

    time: str
    rule: str
    priority: Priority
    output: str
    output_fields: dict[str, Any]
    source: str
    tags: tuple[str, ...]
    hostname: str
    id: str
    event_id: str
    ts: int
    enrichment: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    environment: str = ""
    score: int | None = None
    routes: tuple[str, ...] = ()

    def to_json_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "time": self.time,
            "rule": self.rule,
            "priority": self.priority.title,
            "output": self.output,
            "output_fields": self.output_fields,
            "source": self.source,
            "tags": list(self.tags),
            "hostname": self.hostname,
            "id": self.id,
            "event_id": self.event_id,
        }
        if self.enrichment:
            obj["enrichment"] = self.enrichment
        if self.owner:
            obj["owner"] = self.owner
        if self.environment:
            obj["environment"] = self.environment
        if self.score is not None:
            obj["score"] = self.score
        if self.routes:
            obj["routes"] = list(self.routes)
        return obj

    @classmethod
    def from_json_obj(cls, obj: dict[str, Any]) -> Detection:
        """A detection read back from its JSON (e.g. consumed from ``detections.v1``)."""
        from . import timefmt

        ts = int(obj.get("output_fields", {}).get("evt.time") or 0) or timefmt.parse_rfc3339_ns(
            obj["time"]
        )
        return cls(
            time=obj["time"],
            rule=obj["rule"],
            priority=Priority.parse(obj["priority"]),
            output=obj["output"],
            output_fields=obj.get("output_fields", {}),
            source=obj.get("source", ""),
            tags=tuple(obj.get("tags", ())),
            hostname=obj.get("hostname", ""),
            id=obj.get("id", ""),
            event_id=obj.get("event_id", ""),
            ts=ts,
            enrichment=obj.get("enrichment", {}),
            owner=str(obj.get("owner") or ""),
            environment=str(obj.get("environment") or ""),
            score=_score(obj.get("score")),
            routes=tuple(str(r) for r in obj.get("routes") or () if r),
        )

    def to_json(self) -> bytes:
        """One JSON line (no newline). Invalid UTF-8 from events becomes U+FFFD."""
        return json_bytes(self.to_json_obj())


def _score(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def json_bytes(obj: Any) -> bytes:
    """``obj`` as compact JSON, never failing on what events carry: text holding raw bytes
    (lone surrogates) becomes U+FFFD and integers beyond 64 bits become strings, as
    Falco's JSON encoder does. Every writer of detections (sinks included) uses this."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return orjson.dumps(_sanitize(obj))


def _sanitize(value: Any) -> Any:
    if isinstance(value, str):
        try:  # bytes kept by surrogateescape become U+FFFD, as Falco's JSON encoder does
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_sanitize(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 64:
        return str(value)
    return value

"""The event envelope every source shares.

An :class:`Event` is what the rules engine judges: one completed syscall, one CloudTrail
record, or one Kubernetes audit event, with the context attached to it. The JSON form
(one object per line) is documented in ``docs/events.md``.

``Event`` is a slotted record built once per event on the hot path. It is deliberately
not frozen (a frozen dataclass costs about 2 µs more per event to build); treat it as
immutable except for :attr:`cache`, where field extractors memoize derived values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The event sources falconet evaluates rules for.
SYSCALL = "syscall"
AWS_CLOUDTRAIL = "aws_cloudtrail"
K8S_AUDIT = "k8s_audit"
SOURCES = (SYSCALL, AWS_CLOUDTRAIL, K8S_AUDIT)

#: Version of the JSON envelope this code writes; readers accept it when missing.
ENVELOPE_VERSION = 1


@dataclass(slots=True)
class Event:
    """One event of one source, ready for field extraction.

    Attributes:
        source: the event source (``syscall``, ``aws_cloudtrail``, ``k8s_audit``).
        type: the event type: the syscall name for ``syscall``, the CloudTrail
            ``eventName``, the audit ``verb``.
        ts: event time in nanoseconds since the epoch.
        host: the node or collector the event comes from.
        id: a stable identifier of the event (used to build detection ids).
        payload: the raw event: syscall parameters and node context, the CloudTrail
            record unchanged, or the ``audit.k8s.io`` Event unchanged.
        enrichment: context attached after capture (container, Kubernetes, cloud...).
        meta: envelope extras (``received_ts``, ``origin``, ``cluster``).
        num: the event sequence number (Falco's ``evt.num``, >= 1) within its stream.
        cache: per-event memo for derived field values; owned by the extractors.
    """

    source: str
    type: str
    ts: int
    host: str
    id: str
    payload: dict[str, Any]
    enrichment: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    num: int = 0
    cache: dict[str, Any] = field(default_factory=dict)

    def to_json_obj(self) -> dict[str, Any]:
        """The documented JSON envelope of this event (without the cache)."""
        obj: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "source": self.source,
            "type": self.type,
            "ts": self.ts,
            "host": self.host,
            "id": self.id,
        }
        if self.num:
            obj["num"] = self.num
        obj.update(self.meta)
        obj["event"] = self.payload
        if self.enrichment:
            obj["enrichment"] = self.enrichment
        return obj

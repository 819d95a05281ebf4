"""What a stream worker does with one Kafka record, free of Kafka and Faust.

decode (a batch of envelopes, one envelope, or a raw CloudTrail/audit record) → enrich from
the metadata tables → evaluate with the current rule set → detections and dead letters.
Every failure is turned into a DLQ record with its reason; nothing raises out of
:meth:`Pipeline.process`, so an agent can never crash on bad input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from falconet import shared_context
from falconet.detection import Detection
from falconet.enrichers.late import unknown_container
from falconet.event import Event
from falconet.inputs import RecordDecoder, fast_envelope
from falconet.rules.engine import Engine, EvaluationError

from .dlq import DECODE, ENRICH, EVALUATE, Origin, dlq_record

log = logging.getLogger("falconet.worker")


class Enricher(Protocol):
    def enrich(self, ev: Event) -> None: ...


class EngineHolder(Protocol):
    """Where the current engine lives; swapped atomically on a rules push."""

    engine: Engine


@dataclass(slots=True)
class Outcome:
    """The result of one record."""

    events: int = 0
    detections: list[Detection] = field(default_factory=list)
    dead_letters: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Decoded:
    """A record's decoded events (with their index in a batch) and its decode dead letters."""

    origin: Origin
    events: list[tuple[Event, int | None]] = field(default_factory=list)
    dead_letters: list[bytes] = field(default_factory=list)
    #: syscall container ids that need the containers table, and how many events name
    #: each (counted while the events are fresh; the bounded wait reads it)
    containers: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Decode → enrich → evaluate for one worker."""

    def __init__(
        self,
        holder: EngineHolder,
        enricher: Enricher | None,
        worker: str,
        max_record_bytes: int = 4 * 1024 * 1024,
        decoder: RecordDecoder | None = None,
    ) -> None:
        self.holder = holder
        self.enricher = enricher
        self.worker = worker
        self.max_record_bytes = max_record_bytes
        self.decoder = decoder or RecordDecoder(host="")
        self._numbers: dict[str, int] = {}

    def process(self, value: bytes | None, origin: Origin) -> Outcome:
        return self.finish(self.decode(value, origin))

    def decode(self, value: bytes | None, origin: Origin) -> Decoded:
        """The first half of :meth:`process`: the record's events, not yet enriched or
        evaluated (the syscall agent may wait for late container metadata in between,
        :mod:`falconet.enrichers.late`), and the dead letters of what did not decode."""
        out = Decoded(origin)
        if value is None:
            out.dead_letters.append(self._dlq(DECODE, "empty record (no value)", origin, b""))
            return out
        if len(value) > self.max_record_bytes:
            out.dead_letters.append(
                self._dlq(
                    DECODE,
                    f"record of {len(value)} bytes is larger than worker.max_record_bytes "
                    f"({self.max_record_bytes})",
                    origin,
                    value,
                )
            )
            return out
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            out.dead_letters.append(self._dlq(DECODE, f"not JSON: {exc}", origin, value))
            return out
        kafka_origin = {"kind": "kafka", "topic": origin.topic, "partition": origin.partition,
                        "offset": origin.offset}  # fmt: skip
        if isinstance(decoded, list):
            bad = shared_context.resolve(decoded)
            for i, item in enumerate(decoded):
                if i in bad:
                    out.dead_letters.append(
                        self._dlq(DECODE, bad[i], origin, orjson.dumps(item), index=i)
                    )
                    continue
                self._item(item, i, origin, kafka_origin, out)
        else:
            self._item(decoded, None, origin, kafka_origin, out, whole=value)
        return out

    def _item(
        self,
        item: Any,
        index: int | None,
        origin: Origin,
        kafka_origin: dict[str, Any],
        out: Decoded,
        whole: bytes | None = None,
    ) -> None:
        ev = fast_envelope(item) if item.__class__ is dict else None
        if ev is not None:
            out.events.append((ev, index))
            if ev.source == "syscall":
                _count_container(ev, out.containers)
            return
        problems: list[str] = []
        for ev in self.decoder.events(item, kafka_origin, problems.append):
            out.events.append((ev, index))
            if ev.source == "syscall":
                _count_container(ev, out.containers)
        for reason in problems:
            original = whole if whole is not None else orjson.dumps(item)
            out.dead_letters.append(
                self._dlq(DECODE, reason, origin, original, index=index)
            )

    def finish(self, decoded: Decoded) -> Outcome:
        """The second half of :meth:`process`: enrich and evaluate the decoded events."""
        out = Outcome(dead_letters=decoded.dead_letters)
        for ev, index in decoded.events:
            self._evaluate(ev, index, decoded.origin, out)
        return out

    def _evaluate(self, ev: Event, index: int | None, origin: Origin, out: Outcome) -> None:
        out.events += 1
        if not ev.num:
            n = self._numbers.get(ev.source, 0) + 1
            self._numbers[ev.source] = ev.num = n
        if self.enricher is not None:
            try:
                self.enricher.enrich(ev)
            except Exception as exc:  # a table holding something unexpected: keep going
                out.dead_letters.append(
                    self._dlq(ENRICH, f"enrichment failed: {type(exc).__name__}: {exc}", origin,
                              _event_bytes(ev), index=index, ev=ev)  # fmt: skip
                )
        active = getattr(self.holder, "active", None)  # rules and policies of one rule set
        try:
            found = (active or self.holder).engine.process(ev)
        except EvaluationError as exc:
            out.dead_letters.append(
                self._dlq(EVALUATE, str(exc), origin, _event_bytes(ev), index=index, ev=ev,
                          details=[{"rule": r, "error": e} for r, e in exc.failures])  # fmt: skip
            )
            found = exc.detections
        except Exception as exc:  # an engine bug must not stop the stream
            log.exception("unexpected evaluation failure")
            out.dead_letters.append(
                self._dlq(EVALUATE, f"{type(exc).__name__}: {exc}", origin, _event_bytes(ev),
                          index=index, ev=ev)  # fmt: skip
            )
            found = []
        if found and active is not None:  # context-aware policy: falconet.rules.policy
            found = active.policy.apply(ev, found)
        out.detections.extend(found)

    def _dlq(
        self,
        stage: str,
        reason: str,
        origin: Origin,
        original: bytes,
        index: int | None = None,
        ev: Event | None = None,
        details: Any = None,
    ) -> bytes:
        return dlq_record(
            stage,
            reason,
            origin,
            original,
            self.worker,
            index=index,
            event_id=ev.id if ev is not None else None,
            source=ev.source if ev is not None else None,
            details=details,
        )


def _count_container(ev: Event, counts: dict[str, int]) -> None:
    cid = unknown_container(ev)
    if cid is not None:
        counts[cid] = counts.get(cid, 0) + 1


def _event_bytes(ev: Event) -> bytes:
    try:
        return orjson.dumps(ev.to_json_obj())
    except TypeError:
        return repr(ev.payload).encode("utf-8", "replace")

"""One request body → envelopes on ``events.k8s_audit.v1`` and dead letters, acknowledged.

:func:`decode_body` accepts what the API server's webhook backend posts (an
``audit.k8s.io`` ``EventList``), a single audit ``Event``, and a JSON array of events (as
the Falco k8saudit plugin does). Each event is turned into its envelope by
:meth:`falconet.inputs.RecordDecoder.audit`, which also applies the plugin's
``maxEventSize`` (``input.k8s_audit_max_event_bytes``). An event it refuses goes to the DLQ
with its index; the others are published, in the order of the request.

:class:`Ingest` runs in a worker thread (never on the event loop): it produces the events
and dead letters of one request and waits until Kafka acknowledged all of them, so the
webhook answers 200 only for what is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from falconet.errors import InputError, PublishError
from falconet.event import K8S_AUDIT
from falconet.inputs import RecordDecoder
from falconet.sensors.base import Emitter
from falconet.sensors.publisher import Delivery

from . import metrics as M

log = logging.getLogger("falconet.sensor.k8s_audit")


class BodyError(InputError):
    """The request body as a whole is not usable (not JSON, not audit events)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """One event of a request that could not become an envelope."""

    index: int | None  # position in the EventList/array; None for a single Event
    reason: str
    original: bytes


@dataclass(frozen=True, slots=True)
class Decoded:
    """The envelopes of a request, in order, and the events that were refused."""

    envelopes: list[bytes]
    rejected: list[Rejected]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer: the HTTP status, a message for the client, and the counts."""

    status: int
    message: str
    events: int = 0
    dead_letters: int = 0


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("kind")
        return (
            f"a JSON object of kind {kind!r}"
            if isinstance(kind, str)
            else "a JSON object without 'kind'"
        )
    return f"a JSON {type(value).__name__.replace('NoneType', 'null')}"


def audit_items(value: Any) -> list[tuple[int | None, Any]]:
    """The audit events of a decoded body with their index; :class:`BodyError` otherwise."""
    if isinstance(value, dict):
        kind, api = value.get("kind"), str(value.get("apiVersion", ""))
        if kind == "EventList":
            items = value.get("items")
            if items is None:  # Go encodes an empty list as null
                return []
            if not isinstance(items, list):
                raise BodyError("an EventList whose 'items' is not a JSON array")
            return list(enumerate(items))
        if kind == "Event" and api.startswith("audit.k8s.io/"):
            return [(None, value)]
        if kind == "Event":
            raise BodyError(
                f"an Event of apiVersion {api!r}: expected an audit.k8s.io Event (not a core "
                "Kubernetes Event)"
            )
    elif isinstance(value, list):
        return list(enumerate(value))
    raise BodyError(
        f"expected an audit.k8s.io/v1 EventList (or one audit Event), got {_kind(value)}"
    )


def decode_body(body: bytes, decoder: RecordDecoder) -> Decoded:
    """Envelopes and refused events of one request body (see the module docstring)."""
    if not body.strip():
        raise BodyError("empty request body: expected an audit.k8s.io/v1 EventList")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}") from None
    envelopes: list[bytes] = []
    rejected: list[Rejected] = []
    for index, item in audit_items(value):
        try:
            event = decoder.audit(item)
        except InputError as exc:
            where = "the event" if index is None else f"items[{index}]"
            rejected.append(Rejected(index, f"{where}: {exc}", orjson.dumps(item)))
            continue
        envelopes.append(orjson.dumps(event.to_json_obj()))
    return Decoded(envelopes, rejected)


class Ingest:
    """Publishes one request's events and dead letters and waits for Kafka (thread-safe)."""

    def __init__(self, emit: Emitter, decoder: RecordDecoder, key: str, timeout_s: float) -> None:
        self.emit = emit
        self.decoder = decoder
        self.key = key
        self.timeout_s = timeout_s
        self._produce_lock = threading.Lock()  # one request's records stay together

    def __call__(self, body: bytes, context: dict[str, Any]) -> Outcome:
        try:
            decoded = decode_body(body, self.decoder)
        except BodyError as exc:
            return self._refuse(str(exc), body, context)
        started = time.monotonic()
        deliveries: list[Delivery] = []
        try:
            with self._produce_lock:
                if decoded.envelopes:
                    deliveries.append(self.emit.tracked(decoded.envelopes, self.key))
                for r in decoded.rejected:
                    deliveries.append(
                        self.emit.dead_letter(
                            r.reason, r.original, source=K8S_AUDIT, details=context, index=r.index
                        )
                    )
            self._wait(deliveries, started)
        except PublishError as exc:
            return self._unavailable(exc, len(decoded.envelopes) + len(decoded.rejected))
        M.PUBLISH_SECONDS.observe(time.monotonic() - started)
        M.EVENTS.labels("published").inc(len(decoded.envelopes))
        M.EVENTS.labels("dead_letter").inc(len(decoded.rejected))
        n, d = len(decoded.envelopes), len(decoded.rejected)
        message = f"published {n} audit events" + (
            f"; {d} refused and sent to the dead-letter topic: {decoded.rejected[0].reason}"
            if d
            else ""
        )
        return Outcome(200, message, n, d)

    def _wait(self, deliveries: list[Delivery], started: float) -> None:
        deadline = started + self.timeout_s
        for delivery in deliveries:
            delivery.wait(max(0.0, deadline - time.monotonic()))

    def _refuse(self, reason: str, body: bytes, context: dict[str, Any]) -> Outcome:
        """A body that is not audit events: 400, once the DLQ holds it (else 503, so the
        sender tries again and nothing is lost)."""
        started = time.monotonic()
        try:
            with self._produce_lock:
                delivery = self.emit.dead_letter(reason, body, source=K8S_AUDIT, details=context)
            self._wait([delivery], started)
        except PublishError as exc:
            return self._unavailable(exc, 1)
        M.EVENTS.labels("dead_letter").inc()
        return Outcome(400, reason, 0, 1)

    def note_too_large(self, reason: str, context: dict[str, Any]) -> None:
        """Record a refused oversized request on the DLQ (without its body, never read)."""
        try:
            with self._produce_lock:
                delivery = self.emit.dead_letter(reason, None, source=K8S_AUDIT, details=context)
            self._wait([delivery], time.monotonic())
        except PublishError as exc:
            log.error("k8s_audit.dlq_failed request=%s error=%s", context.get("request_id"), exc)

    def _unavailable(self, exc: PublishError, records: int) -> Outcome:
        M.PUBLISH_FAILURES.inc()
        log.error("k8s_audit.publish_failed records=%d error=%s", records, exc)
        return Outcome(503, f"Kafka did not acknowledge the events, try again: {exc}")

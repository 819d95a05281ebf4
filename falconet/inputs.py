"""Reading recorded events: falconet JSON lines, CloudTrail files, Kubernetes audit logs.

:func:`read_events` detects the format of each file by its content (not its name):

* JSON lines: one JSON object per line, each a falconet event envelope, a CloudTrail
  record, a CloudTrail log file object (``{"Records": [...]}``), a Kubernetes audit
  ``Event`` or an ``EventList``;
* one JSON document: a CloudTrail log file, a JSON array of CloudTrail records or audit
  events, an audit ``Event``/``EventList`` (pretty-printed is fine);
* either of them gzip-compressed (detected by the gzip magic bytes); ``-`` is stdin;
* a libscap capture (``.scap``, as Falco and sysdig write them, gzip or not), detected by
  its section-header magic: its syscall events are replayed (``falconet.sensors.scap``).

A record that cannot be read is reported through ``on_problem`` with its file and line
and skipped; reading goes on. The envelope format is documented in ``docs/events.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from . import shared_context, timefmt
from .errors import InputError
from .event import AWS_CLOUDTRAIL, K8S_AUDIT, SOURCES, Event

#: Largest record (one line, or one whole document) accepted by default.
DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_SCAP_MAGIC = b"\x0a\x0d\x0d\x0a"  # libscap section header block type, little-endian


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that was skipped: where it is and why."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def _local_host() -> str:
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return ""


def _hash_id(obj: Any) -> str:
    return hashlib.blake2b(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


# -- one record → Event -----------------------------------------------------------------------
def event_from_envelope(obj: dict[str, Any]) -> Event:
    """A falconet event envelope (see docs/events.md) → :class:`Event`."""
    source = obj.get("source")
    if source not in SOURCES:
        raise InputError(
            f"unknown event source {source!r} (expected one of {', '.join(SOURCES)})"
        )
    payload = obj.get("event")
    if not isinstance(payload, dict):
        raise InputError("the 'event' member must be a JSON object")
    enrichment = obj.get("enrichment") or {}
    if not isinstance(enrichment, dict):
        raise InputError("the 'enrichment' member must be a JSON object")
    ts = obj.get("ts")
    if ts is None:
        if source == AWS_CLOUDTRAIL:
            ts = _cloudtrail_ts(payload)
        elif source == K8S_AUDIT:
            ts = _audit_ts(payload)
        else:
            raise InputError("a syscall event needs 'ts' (nanoseconds since the epoch)")
    elif not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise InputError("'ts' must be a non-negative integer (nanoseconds since the epoch)")
    etype = obj.get("type")
    if etype is None:
        etype = _default_type(source, payload)
    if not isinstance(etype, str) or not etype:
        raise InputError("'type' must be a non-empty string")
    num = obj.get("num", 0)
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
        raise InputError("'num' must be a non-negative integer")
    host = obj.get("host", "")
    if not isinstance(host, str):
        raise InputError("'host' must be a string")
    eid = obj.get("id")
    if eid is None:
        eid = _default_id(source, payload)
    elif not isinstance(eid, str):
        raise InputError("'id' must be a string")
    meta = {k: obj[k] for k in ("received_ts", "origin", "cluster") if k in obj}
    return Event(source, etype, ts, host, eid, payload, enrichment, meta, num)


_SOURCE_SET = frozenset(SOURCES)
_META_KEYS = ("received_ts", "origin", "cluster")


def fast_envelope(obj: dict[str, Any]) -> Event | None:
    """:func:`event_from_envelope` for the common, well-formed case; ``None`` otherwise.

    The hot path of every reader: a handful of identity type checks instead of the full
    validation, which :func:`event_from_envelope` does (with precise messages) whenever
    this returns ``None``.
    """
    try:
        source = obj["source"]
        payload = obj["event"]
        ts = obj["ts"]
        etype = obj["type"]
    except KeyError:
        return None
    if (
        source not in _SOURCE_SET
        or payload.__class__ is not dict
        or ts.__class__ is not int
        or ts < 0
        or etype.__class__ is not str
        or not etype
    ):
        return None
    get = obj.get
    enrichment = get("enrichment")
    if enrichment is None:
        enrichment = {}
    elif enrichment.__class__ is not dict:
        return None
    host = get("host", "")
    eid = get("id")
    num = get("num", 0)
    if host.__class__ is not str or eid.__class__ is not str or num.__class__ is not int or num < 0:
        return None
    meta = {k: obj[k] for k in _META_KEYS if k in obj} if len(obj) > 8 else {}
    return Event(source, etype, ts, host, eid, payload, enrichment, meta, num)


def _default_type(source: str, payload: dict[str, Any]) -> str:
    if source == AWS_CLOUDTRAIL:
        return str(payload.get("eventName") or "cloudtrail")
    if source == K8S_AUDIT:
        return str(payload.get("verb") or "audit")
    raise InputError("a syscall event needs 'type' (the syscall name)")


def _default_id(source: str, payload: dict[str, Any]) -> str:
    if source == AWS_CLOUDTRAIL and isinstance(payload.get("eventID"), str):
        return payload["eventID"]
    if source == K8S_AUDIT and isinstance(payload.get("auditID"), str):
        return f"{payload['auditID']}:{payload.get('stage', '')}"
    return _hash_id(payload)


def _cloudtrail_ts(record: dict[str, Any]) -> int:
    t = record.get("eventTime")
    if not isinstance(t, str):
        raise InputError("CloudTrail record without 'eventTime'")
    try:
        return timefmt.parse_rfc3339_ns(t)
    except ValueError:
        raise InputError(f"CloudTrail record with an invalid eventTime {t!r}") from None


def _audit_ts(ev: dict[str, Any]) -> int:
    t = ev.get("stageTimestamp")
    if not isinstance(t, str):
        raise InputError("Kubernetes audit event without 'stageTimestamp'")
    try:
        return timefmt.parse_rfc3339_ns(t)
    except ValueError:
        raise InputError(f"Kubernetes audit event with an invalid stageTimestamp {t!r}") from None


#: The k8saudit plugin's default ``maxEventSize``: larger audit events never reach Falco.
K8S_AUDIT_MAX_EVENT_BYTES = 262_144


class RecordDecoder:
    """Turns decoded JSON values into events, whatever the record kind.

    ``host`` names the collector for raw CloudTrail/audit records (default: this host),
    ``cluster`` is stored in the envelope of audit events, ``origin`` in CloudTrail ones.
    ``k8s_max_event_bytes`` is the k8saudit plugin's ``maxEventSize`` (0: no limit).

    Records the Falco plugins would not turn into events are skipped *and reported*:
    CloudTrail records without ``eventTime`` or ``eventType`` and CloudTrail Insights
    records (the cloudtrail plugin skips both), audit events without ``stageTimestamp`` or
    larger than ``k8s_max_event_bytes`` (the k8saudit plugin drops them).
    """

    def __init__(
        self,
        host: str | None = None,
        cluster: str = "",
        k8s_max_event_bytes: int = K8S_AUDIT_MAX_EVENT_BYTES,
    ) -> None:
        self.host = _local_host() if host is None else host
        self.cluster = cluster
        self.k8s_max_event_bytes = k8s_max_event_bytes

    def events(
        self, value: Any, origin: dict[str, Any], on_problem: Callable[[str], None]
    ) -> Iterator[Event]:
        """Every event in one JSON value; each record that is not one is reported through
        ``on_problem`` (with its index inside the value) and skipped."""
        if isinstance(value, list):
            bad = shared_context.resolve(value)
            for i, item in enumerate(value):
                if i in bad:
                    on_problem(f"item {i}: {bad[i]}")
                    continue
                yield from self.events(item, origin, lambda m, i=i: on_problem(f"item {i}: {m}"))
            return
        if not isinstance(value, dict):
            on_problem(f"expected a JSON object, got {type(value).__name__}")
            return
        if "source" in value and "event" in value:
            yield from _guard(lambda: event_from_envelope(value), on_problem)
        elif isinstance(value.get("Records"), list):
            for i, rec in enumerate(value["Records"]):
                yield from _guard(
                    lambda rec=rec: self.cloudtrail(rec, origin),
                    lambda m, i=i: on_problem(f"Records[{i}]: {m}"),
                )
        elif value.get("kind") == "EventList" and isinstance(value.get("items"), list):
            for i, item in enumerate(value["items"]):
                yield from _guard(
                    lambda item=item: self.audit(item), lambda m, i=i: on_problem(f"items[{i}]: {m}")
                )
        elif value.get("kind") == "Event" and str(value.get("apiVersion", "")).startswith(
            "audit.k8s.io/"
        ):
            yield from _guard(lambda: self.audit(value), on_problem)
        elif "eventVersion" in value or ("eventSource" in value and "eventName" in value):
            yield from _guard(lambda: self.cloudtrail(value, origin), on_problem)
        else:
            on_problem(
                "unrecognized record: not a falconet event, a CloudTrail record or log file, "
                "or a Kubernetes audit Event/EventList"
            )

    def cloudtrail(self, record: Any, origin: dict[str, Any]) -> Event:
        if not isinstance(record, dict):
            raise InputError("not a JSON object")
        ts = _cloudtrail_ts(record)
        etype = record.get("eventType")
        if not isinstance(etype, str):
            raise InputError("CloudTrail record without 'eventType'")
        if etype == "AwsCloudTrailInsight":
            raise InputError(
                "CloudTrail Insights record: not API activity, which the cloudtrail source "
                "evaluates (Falco's cloudtrail plugin skips these too)"
            )
        return Event(
            source=AWS_CLOUDTRAIL,
            type=str(record.get("eventName") or "cloudtrail"),
            ts=ts,
            host=self.host,
            id=_default_id(AWS_CLOUDTRAIL, record),
            payload=record,
            meta={"received_ts": time.time_ns(), "origin": origin},
        )

    def audit(self, ev: Any) -> Event:
        if not isinstance(ev, dict):
            raise InputError("not a JSON object")
        ts = _audit_ts(ev)
        limit = self.k8s_max_event_bytes
        if limit:
            size = len(orjson.dumps(ev))
            if size > limit:
                raise InputError(
                    f"Kubernetes audit event of {size} bytes is larger than {limit} bytes "
                    "(the k8saudit plugin's maxEventSize, input.k8s_audit_max_event_bytes); "
                    "skipped as Falco skips it"
                )
        meta: dict[str, Any] = {"cluster": self.cluster} if self.cluster else {}
        return Event(
            source=K8S_AUDIT,
            type=str(ev.get("verb") or "audit"),
            ts=ts,
            host=self.host,
            id=_default_id(K8S_AUDIT, ev),
            payload=ev,
            meta=meta,
        )


def _guard(make: Callable[[], Event], on_problem: Callable[[str], None]) -> Iterator[Event]:
    try:
        ev = make()
    except InputError as exc:
        on_problem(str(exc))
        return
    yield ev


# -- files ---------------------------------------------------------------------------------
def _open(path: str) -> IO[bytes]:
    if path == "-":
        raw: IO[bytes] = sys.stdin.buffer
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    buffered = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw  # type: ignore[arg-type]
    head = buffered.peek(2)[:2]  # type: ignore[attr-defined]
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _json_error(exc: orjson.JSONDecodeError) -> str:
    msg = str(exc.msg) if hasattr(exc, "msg") else str(exc)
    return f"invalid JSON: {msg}"


def read_events(
    path: str,
    decoder: RecordDecoder,
    on_problem: Callable[[Problem], None],
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[Event]:
    """Yield the events of one input file (``-`` for stdin); see the module docstring.

    Raises :class:`InputError` only when the file cannot be opened or read at all.
    """
    name = "<stdin>" if path == "-" else path
    origin = {"kind": "file", "path": name}
    f = _open(path)
    try:
        if _is_scap(f):
            yield from _scap_events(f, name, decoder, on_problem)
            return
        first = _readline(f, max_record_bytes)
        lineno = 1
        while first is not None and not first[1] and not first[0].strip():
            first = _readline(f, max_record_bytes)
            lineno += 1
        if first is None:
            return
        line, oversized = first
        if oversized:
            on_problem(Problem(name, lineno, f"record larger than {max_record_bytes} bytes; skipped"))
            yield from _read_lines(f, decoder, origin, name, lineno, on_problem, max_record_bytes)
            return
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, (dict, list)):
            # JSON lines (a one-line document is simply a file of one line)
            yield from _emit(decoder, value, origin, name, lineno, on_problem)
            yield from _read_lines(f, decoder, origin, name, lineno, on_problem, max_record_bytes)
            return
        # a multi-line document (or a bad first line: decide after reading everything)
        rest = f.read(max_record_bytes + 1)
        text = line + rest
        if len(text) > max_record_bytes:
            on_problem(
                Problem(name, 0, f"document larger than {max_record_bytes} bytes; skipped")
            )
            return
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            # maybe JSON lines whose first line is broken: report line by line
            yield from _read_lines(
                io.BytesIO(text), decoder, origin, name, lineno - 1, on_problem, max_record_bytes,
                doc_error=exc,
            )
            return
        yield from _emit(decoder, value, origin, name, 0, on_problem)
    except OSError as exc:
        raise InputError(f"{name}: read error: {exc}") from None
    except EOFError:
        on_problem(Problem(name, 0, "truncated compressed input"))
    finally:
        if path != "-":
            f.close()


def _is_scap(f: IO[bytes]) -> bool:
    peek = getattr(f, "peek", None)
    return peek is not None and peek(4)[:4] == _SCAP_MAGIC


def _scap_events(
    f: IO[bytes], name: str, decoder: RecordDecoder, on_problem: Callable[[Problem], None]
) -> Iterator[Event]:
    """The events of a capture; a truncated or corrupt capture is reported (with the byte
    offset) after the events before the damage."""
    from falconet.sensors.scap import read_scap  # the reader is only loaded for captures

    try:
        yield from read_scap(f, name=name, default_host=decoder.host)  # type: ignore[arg-type]
    except InputError as exc:
        on_problem(Problem(name, 0, str(exc).removeprefix(f"{name}: ")))


def _readline(f: IO[bytes], limit: int) -> tuple[bytes, bool] | None:
    line = f.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit and not line.endswith(b"\n"):
        # drain the rest of the oversized line
        while True:
            more = f.readline(1 << 20)
            if not more or more.endswith(b"\n"):
                break
        return b"", True
    return line, False


def _emit(
    decoder: RecordDecoder,
    value: Any,
    origin: dict[str, Any],
    name: str,
    lineno: int,
    on_problem: Callable[[Problem], None],
) -> Iterator[Event]:
    yield from decoder.events(value, origin, lambda m: on_problem(Problem(name, lineno, m)))


def _read_lines(
    f: IO[bytes],
    decoder: RecordDecoder,
    origin: dict[str, Any],
    name: str,
    lineno: int,
    on_problem: Callable[[Problem], None],
    max_record_bytes: int,
    doc_error: orjson.JSONDecodeError | None = None,
) -> Iterator[Event]:
    """JSON lines from ``f``. With ``doc_error`` (the text also failed as one document),
    problems are held back: if no line parses either, the document error is reported
    instead of one error per line of a broken pretty-printed file."""
    good = 0
    held: list[Problem] = []
    report = held.append if doc_error is not None else on_problem
    readline = f.readline
    limit = max_record_bytes + 1
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    while True:
        line = readline(limit)
        if not line:
            break
        lineno += 1
        if len(line) == limit and not line.endswith(b"\n"):
            while True:  # drain the rest of the oversized line
                more = readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
            report(Problem(name, lineno, f"record larger than {max_record_bytes} bytes; skipped"))
            continue
        try:
            value = loads(line)
        except decode_error as exc:
            if line.strip():
                report(Problem(name, lineno, _json_error(exc)))
            continue
        good += 1
        if value.__class__ is dict:
            ev = fast_envelope(value)
            if ev is not None:
                yield ev
                continue
        yield from _emit(decoder, value, origin, name, lineno, on_problem)
    if doc_error is None:
        return
    if good == 0:
        line_no = getattr(doc_error, "lineno", 0)
        col = getattr(doc_error, "colno", 0)
        on_problem(Problem(name, line_no, f"{_json_error(doc_error)} (column {col})"))
        return
    for p in held:
        on_problem(p)

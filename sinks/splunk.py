"""Splunk HTTP Event Collector (HEC): detections as JSON events, with indexer acknowledgement.

One request is a POST to ``<url>/services/collector/event`` with ``Authorization: Splunk
<token>`` and a body of JSON envelopes written one after another (one per line here)::

    {"time": 1718000000.123456, "host": "node-a", "source": "falconet",
     "sourcetype": "falconet:detection", "index": "security", "event": {...the alert...}}

Requests stay under HEC's ``max_content_length`` (1,000,000 bytes by default): the batch is
measured in envelopes, a batch larger than the limit is sent as several requests, a request
HEC still refuses with 413 is split in halves, and a record that alone exceeds the limit is
reported as a permanent failure without being sent.

HEC answers ``{"text": ..., "code": n}``; the code decides retry or dead letter (see
:data:`HEC_CODES`). For "invalid data format" and the other per-event codes HEC adds
``invalid-event-number``, the zero-based position of the first event it refused in the
request: HEC handles a request's events in order and stops there, so the events before it
were passed on to indexing and are reported as accepted (not sent again), that event is a
permanent failure, and the events after it were never looked at and are retried.

With ``ack: true`` (the token has indexer acknowledgement on) every request carries the
``X-Splunk-Request-Channel`` header, HEC answers with an ``ackId``, and the batch counts as
delivered only when ``POST /services/collector/ack`` reports every ``ackId`` true; after
``ack_timeout_seconds`` the unacknowledged records are retried (duplicates are possible:
an ack that did not come in time may still come).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from falconet.detection import json_bytes
from falconet.errors import ConfigError, SinkError

from .base import ACCEPTED, BatchingSink, ItemFailure, Option, SinkRecord, WriteResult
from .http import HttpClient, HttpResponse, is_retryable_status, retry_after

__all__ = ["HEC_CODES", "HEC_MAX_CONTENT_LENGTH", "SplunkSink"]

log = logging.getLogger("falconet.sinks.splunk")

#: HEC's default ``max_content_length`` ([http] stanza of inputs.conf), in bytes
HEC_MAX_CONTENT_LENGTH = 1_000_000

#: HEC status code -> (meaning, worth retrying). Codes not listed fall back to the HTTP
#: status (5xx, 408, 429 retry; other 4xx do not).
HEC_CODES: dict[int, tuple[str, bool]] = {
    0: ("success", False),
    1: ("token disabled", False),
    2: ("token is required", False),
    3: ("invalid authorization", False),
    4: ("invalid token", False),
    5: ("no data", False),
    6: ("invalid data format", False),
    7: ("incorrect index", False),
    8: ("internal server error", True),
    9: ("server is busy", True),
    10: (
        "data channel is missing (the token has indexer acknowledgement on: set ack: true)",
        False,
    ),
    11: ("invalid data channel (channel must be a UUID)", False),
    12: ("event field is required", False),
    13: ("event field cannot be blank", False),
    14: ("ACK is disabled (the token has no indexer acknowledgement: set ack: false)", False),
    15: ("error in handling indexed fields", False),
    16: ("query string authorization is not enabled", False),
    17: ("HEC is healthy", False),
    18: ("HEC is unhealthy, queues are full", True),
    19: ("HEC is unhealthy, ack service unavailable", True),
    20: ("HEC is unhealthy, queues are full, ack service unavailable", True),
    21: ("invalid token", False),
    22: ("token disabled", False),
}

#: codes that concern one event of the request (HEC names it in invalid-event-number)
_PER_EVENT_CODES = frozenset({6, 12, 13, 15})

_SUFFIXES = ("/services/collector/event/1.0", "/services/collector/event", "/services/collector")


@dataclass(frozen=True, slots=True)
class _Sent:
    """A request HEC took: its records (batch indices) and the ackId to confirm, if any."""

    indices: tuple[int, ...]
    ack_id: int | None


class SplunkSink(BatchingSink):
    """Splunk HTTP Event Collector (``/services/collector/event``)."""

    kind = "splunk"
    summary = "Splunk HTTP Event Collector: JSON events, optional indexer acknowledgement"
    uses_http = True
    max_batch_bytes = HEC_MAX_CONTENT_LENGTH
    default_batch_events = 500
    options = (
        Option("url", "", str, "Base URL of the collector, e.g. `https://splunk.example.com:8088` (the `/services/collector/event` path is added).", required=True),
        Option("token", "", str, "HEC token (sent as `Authorization: Splunk <token>`).", secret=True, required=True),
        Option("index", "", str, "Index of the events; empty: the token's default index."),
        Option("sourcetype", "falconet:detection", str, "Source type of the events (JSON fields are extracted at search time; `_json` also works)."),
        Option("source", "falconet", str, "Source of the events; empty: HEC's default (`http:<token name>`)."),
        Option("host", "", str, "Host of the events; empty: the detection's `hostname`."),
        Option("ack", False, bool, "Use indexer acknowledgement (the token must have it on): a batch counts as delivered only once indexed."),
        Option("channel", "", str, "Channel UUID sent in `X-Splunk-Request-Channel` with `ack`; empty: a new UUID per process."),
        Option("ack_timeout_seconds", 60.0, float, "How long to wait for the indexer acknowledgement of a batch before sending it again."),
        Option("ack_poll_seconds", 1.0, float, "Interval between two `/services/collector/ack` queries."),
        Option("max_content_length", HEC_MAX_CONTENT_LENGTH, int, "Largest request body in bytes (HEC's `max_content_length`, before gzip)."),
    )  # fmt: skip

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        base = str(options["url"]).strip().rstrip("/")
        for suffix in _SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                break
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"sink {name!r}: url {base!r} must be http(s)://host[:port]")
        self._event_url = base + "/services/collector/event"
        self._ack_url = base + "/services/collector/ack"
        self._ack = bool(options["ack"])
        channel = str(options["channel"]).strip()
        if channel:
            try:
                channel = str(uuid.UUID(channel))
            except ValueError:
                raise ConfigError(f"sink {name!r}: channel {channel!r} is not a UUID") from None
        self._channel = channel or str(uuid.uuid4())
        self._max_len = int(options["max_content_length"])
        if self._max_len < 1024:
            raise ConfigError(f"sink {name!r}: max_content_length must be at least 1024 bytes")
        self._meta: dict[str, str] = {
            k: str(options[k]) for k in ("index", "sourcetype", "source") if options[k]
        }
        self._host = str(options["host"])
        self._headers = {
            "Authorization": f"Splunk {options['token']}",
            "Content-Type": "application/json",
        }
        if self._ack:
            self._headers["X-Splunk-Request-Channel"] = self._channel
        self._http: HttpClient | None = None
        self._warned_no_ack = False

    # -- the BatchingSink interface ----------------------------------------------------------
    async def open(self) -> None:
        if self._http is None:
            self._http = HttpClient(self.opts, self.name)
            await self._http.open()
        log.info(
            "sink %s: HEC %s ack=%s%s",
            self.name,
            self._event_url,
            self._ack,
            f" channel={self._channel}" if self._ack else "",
        )

    async def probe(self) -> str:
        """An empty POST: HEC checks the token before the body, so a valid token gets code 5
        ("No data") and nothing is indexed; a bad or disabled one gets its own code."""
        assert self._http is not None
        resp = await self._http.request("POST", self._event_url, body=b"", headers=self._headers)
        answer = _answer(resp)
        if answer.get("code") == 5:
            return f"HEC at {self._event_url} accepts the token (empty request, nothing indexed)"
        raise _error(resp, answer)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def record_size(self, record: SinkRecord) -> int:
        return len(self.envelope(record))

    def envelope(self, record: SinkRecord) -> bytes:
        """The HEC envelope of one record, newline included."""
        env: dict[str, Any] = {}
        ts = record.detection.ts
        if ts > 0:
            env["time"] = (ts // 1000) / 1_000_000  # seconds, microsecond fraction
        host = self._host or record.detection.hostname
        if host:
            env["host"] = host
        env.update(self._meta)
        env["event"] = record.obj
        return json_bytes(env) + b"\n"

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        if self._http is None:
            await self.open()
        bodies = [self.envelope(r) for r in batch]
        failures: dict[int, ItemFailure] = {}
        errors: list[SinkError] = []
        chunks: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, body in enumerate(bodies):
            if len(body) > self._max_len:
                failures[i] = ItemFailure(
                    i,
                    f"HEC envelope of {len(body)} bytes exceeds max_content_length {self._max_len}",
                    retryable=False,
                )
                continue
            if current and size + len(body) > self._max_len:
                chunks.append(current)
                current, size = [], 0
            current.append(i)
            size += len(body)
        if current:
            chunks.append(current)

        sent: list[_Sent] = []
        stop: SinkError | None = None
        for chunk in chunks:
            if stop is not None:  # an earlier request failed as a whole: same fate, not sent
                for i in chunk:
                    failures[i] = _failure(i, stop)
                continue
            try:
                await self._post(chunk, bodies, sent, failures)
            except SinkError as e:
                errors.append(e)
                stop = e
                taken = {i for s in sent for i in s.indices}  # halves of a split that went in
                for i in chunk:
                    if i not in taken and i not in failures:
                        failures[i] = _failure(i, e)

        if self._ack and sent:
            await self._await_acks(sent, failures)

        if not failures:
            return ACCEPTED
        if len(failures) == len(batch):
            reasons = {(f.reason, f.retryable, f.retry_after) for f in failures.values()}
            if len(reasons) == 1:  # one whole-batch failure: let the framework see the error
                ((reason, retryable, delay),) = reasons
                for e in errors:
                    if str(e) == reason:
                        raise e
                raise SinkError(reason, retryable=retryable, retry_after=delay)
        log.warning(
            "sink %s: %d of %d records not accepted (%d retryable)",
            self.name,
            len(failures),
            len(batch),
            sum(f.retryable for f in failures.values()),
        )
        return WriteResult(tuple(failures[i] for i in sorted(failures)))

    # -- one request -------------------------------------------------------------------------
    async def _post(
        self,
        chunk: list[int],
        bodies: list[bytes],
        sent: list[_Sent],
        failures: dict[int, ItemFailure],
    ) -> None:
        """Send ``chunk``; record what HEC took in ``sent`` and refused in ``failures``.

        Raises SinkError when HEC refused the whole request.
        """
        assert self._http is not None
        resp = await self._http.request(
            "POST", self._event_url, body=b"".join(bodies[i] for i in chunk), headers=self._headers
        )
        if resp.status == 413:
            if len(chunk) == 1:
                failures[chunk[0]] = ItemFailure(
                    chunk[0], f"HEC refused the event as too large: {resp.text()}", retryable=False
                )
                return
            half = len(chunk) // 2
            log.info("sink %s: HEC answered 413 to %d events, splitting", self.name, len(chunk))
            await self._post(chunk[:half], bodies, sent, failures)
            await self._post(chunk[half:], bodies, sent, failures)
            return
        answer = _answer(resp)
        code = answer.get("code")
        if 200 <= resp.status <= 299 and code in (0, None):
            ack_id = answer.get("ackId")
            if self._ack and not isinstance(ack_id, int):
                if not self._warned_no_ack:
                    log.warning(
                        "sink %s: ack is on but HEC returned no ackId: the token does not "
                        "have indexer acknowledgement; delivery is confirmed on receipt only",
                        self.name,
                    )
                    self._warned_no_ack = True
                ack_id = None
            sent.append(_Sent(tuple(chunk), ack_id if self._ack else None))
            return
        error = _error(resp, answer)
        bad = answer.get("invalid-event-number")
        if (
            code in _PER_EVENT_CODES
            and isinstance(bad, int)
            and not isinstance(bad, bool)
            and 0 <= bad < len(chunk)
        ):
            # HEC stopped at event `bad`: the ones before were passed on to indexing
            if bad:
                sent.append(_Sent(tuple(chunk[:bad]), None))
            failures[chunk[bad]] = ItemFailure(chunk[bad], str(error), retryable=False)
            for i in chunk[bad + 1 :]:
                failures[i] = ItemFailure(
                    i, f"not handled by HEC after event {bad} was refused", retryable=True
                )
            log.warning(
                "sink %s: HEC refused event %d of %d (code %s)", self.name, bad, len(chunk), code
            )
            return
        raise error

    # -- indexer acknowledgement -------------------------------------------------------------
    async def _await_acks(self, sent: list[_Sent], failures: dict[int, ItemFailure]) -> None:
        assert self._http is not None
        pending = {s.ack_id: s for s in sent if s.ack_id is not None}
        timeout = float(self.opts["ack_timeout_seconds"])
        interval = max(0.01, float(self.opts["ack_poll_seconds"]))
        deadline = time.monotonic() + timeout
        last_problem = ""
        while pending:
            try:
                resp = await self._http.request(
                    "POST",
                    self._ack_url,
                    body=orjson.dumps({"acks": sorted(pending)}),
                    headers=self._headers,
                    compress=False,
                )
                answer = _answer(resp)
                if 200 <= resp.status <= 299 and isinstance(answer.get("acks"), dict):
                    for key, done in answer["acks"].items():
                        try:
                            ack_id = int(key)
                        except ValueError:
                            continue
                        if done is True:
                            pending.pop(ack_id, None)
                    last_problem = ""
                else:
                    error = _error(resp, answer)
                    if not error.retryable:  # e.g. code 14: polling again cannot help
                        for s in pending.values():
                            for i in s.indices:
                                failures[i] = _failure(i, error)
                        return
                    last_problem = str(error)
            except SinkError as e:
                last_problem = str(e)
            if not pending or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        if pending:
            reason = f"HEC did not acknowledge indexing within {timeout:g}s" + (
                f" ({last_problem})" if last_problem else ""
            )
            log.warning(
                "sink %s: %d request(s) not acknowledged within %gs, resending",
                self.name,
                len(pending),
                timeout,
            )
            for s in pending.values():
                for i in s.indices:
                    failures[i] = ItemFailure(i, reason, retryable=True)


def _answer(resp: HttpResponse) -> dict[str, Any]:
    """HEC's JSON answer, or {} when the body is not a JSON object (a proxy's page)."""
    try:
        value = orjson.loads(resp.body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _error(resp: HttpResponse, answer: dict[str, Any]) -> SinkError:
    """The SinkError for a refused request, classified by HEC code, else by HTTP status."""
    code = answer.get("code")
    text = str(answer.get("text") or resp.text(200) or "")
    known = HEC_CODES.get(code) if isinstance(code, int) else None
    if known is not None:
        meaning, retryable = known
        message = f"HEC HTTP {resp.status} code {code} ({meaning})"
        if text and text.lower() not in meaning.lower():
            message += f": {text}"
    else:
        retryable = is_retryable_status(resp.status) if resp.status >= 300 else True
        message = f"HEC HTTP {resp.status}" + (f" code {code}" if code is not None else "")
        if text:
            message += f": {text}"
    if "invalid-event-number" in answer:
        message += f" (invalid-event-number {answer['invalid-event-number']})"
    return SinkError(
        message, retryable=retryable, retry_after=retry_after(resp.headers), status=resp.status
    )


def _failure(index: int, error: SinkError) -> ItemFailure:
    return ItemFailure(index, str(error), error.retryable, error.retry_after)

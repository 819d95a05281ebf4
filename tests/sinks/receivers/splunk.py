"""A local Splunk HTTP Event Collector for the Splunk sink's tests.

It follows Splunk's HEC REST reference for ``/services/collector/event`` and
``/services/collector/ack`` (Splunk Enterprise "Getting Data In": "Format events for HTTP
Event Collector", "About HTTP Event Collector Indexer Acknowledgment", and the HEC status
code table of "Troubleshoot HTTP Event Collector"), and checks what a real HEC checks:

* ``Authorization: Splunk <token>``: missing -> 401 code 2, not of that form -> 401 code 3,
  unknown token -> 403 code 4, disabled token -> 403 code 1;
* the body size against ``max_content_length`` as sent on the wire -> 413; gzip bodies
  (``Content-Encoding: gzip``) are inflated; an empty body -> 400 code 5;
* a token with indexer acknowledgement needs ``X-Splunk-Request-Channel`` (or the
  ``channel`` query parameter) -> 400 code 10, and it must be a GUID -> 400 code 11;
* the body is JSON envelopes one after another (whitespace between them allowed); events
  are handled in order and the first bad one stops the request with its zero-based
  position in ``invalid-event-number``: not JSON / not an object / ``time`` not a number
  -> code 6, no ``event`` -> code 12, blank ``event`` -> code 13, an ``index`` the token
  may not write -> code 7, ``fields`` not a flat object -> code 15. The events before it
  are indexed (kept in :attr:`HecReceiver.indexed`), as HEC passes them on before it
  reaches the bad one;
* success is ``{"text": "Success", "code": 0}``, plus ``ackId`` for an acknowledged token;
  ``/services/collector/ack`` takes ``{"acks": [ids]}`` on the same channel and answers
  ``{"acks": {"id": true|false}}``; a token without acknowledgement -> 400 code 14.

Faults to inject: :meth:`HecReceiver.busy` (503 code 9), :meth:`HecReceiver.internal_error`
(500 code 8), :meth:`HecReceiver.invalid_event` (code 6 at a given event) and
:attr:`HecReceiver.hold_acks` (acks stay false until released).

:func:`bench_target` is the hook of bench/sink_throughput.py (``--sink splunk``, and
``--sink splunk:ack`` for a token with indexer acknowledgement).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import ssl
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from . import distinct, in_thread, serve, server_tls


@dataclass
class HecToken:
    enabled: bool = True
    ack: bool = False
    indexes: tuple[str, ...] = ()  # allowed indexes; empty: any
    default_index: str = "main"


@dataclass
class Indexed:
    """One event HEC indexed, with the envelope it came in."""

    envelope: dict[str, Any]
    index: str
    token: str
    channel: str | None


@dataclass
class Request:
    """One request as HEC saw it."""

    path: str
    status: int
    events: int  # envelopes parsed before the answer
    wire_bytes: int
    gzip: bool
    answer: dict[str, Any]


@dataclass
class _Channel:
    next_id: int = 0
    acks: dict[int, bool] = field(default_factory=dict)
    events: dict[int, list[Indexed]] = field(default_factory=dict)  # ackId -> its events


class HecReceiver:
    """``async with HecReceiver(tokens, server_ssl) as hec:`` listens on 127.0.0.1:<port>."""

    def __init__(
        self,
        tokens: dict[str, HecToken],
        server_ssl: ssl.SSLContext | None,
        max_content_length: int = 1_000_000,
    ) -> None:
        self.tokens = tokens
        self.max_content_length = max_content_length
        self.indexed: list[Indexed] = []
        self.requests: list[Request] = []
        self.ack_queries: list[tuple[str, list[int]]] = []  # (channel, ids) per ack query
        self.acknowledged: list[Indexed] = []  # events whose ack a client has seen true
        self.hold_acks = False
        self._ssl = server_ssl
        self._faults: deque[tuple[int, dict[str, Any], dict[str, str]]] = deque()
        self._invalid: deque[int] = deque()
        self._channels: dict[str, _Channel] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- faults ---------------------------------------------------------------------------
    def busy(self, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        for _ in range(times):
            self._faults.append((503, {"text": "Server is busy", "code": 9}, headers))

    def internal_error(self, times: int = 1) -> None:
        for _ in range(times):
            self._faults.append((500, {"text": "Internal server error", "code": 8}, {}))

    def invalid_event(self, number: int) -> None:
        """The next request is refused at event ``number`` as if its data were invalid."""
        self._invalid.append(number)

    def release_acks(self) -> None:
        for ch in self._channels.values():
            ch.acks = dict.fromkeys(ch.acks, True)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    # -- server ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HecReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/services/collector/event", self._event)
        app.router.add_post("/services/collector/event/1.0", self._event)
        app.router.add_post("/services/collector", self._event)
        app.router.add_post("/services/collector/ack", self._ack)
        self._runner, self.port = await serve(app, self._ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers -------------------------------------------------------------------------
    def _auth(self, request: web.Request) -> tuple[str, HecToken] | web.Response:
        header = request.headers.get("Authorization")
        if header is None:
            return _reply(401, "Token is required", 2)
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token.strip():
            return _reply(401, "Invalid authorization", 3)
        token = token.strip()
        conf = self.tokens.get(token)
        if conf is None:
            return _reply(403, "Invalid token", 4)
        if not conf.enabled:
            return _reply(403, "Token disabled", 1)
        return token, conf

    def _channel(self, request: web.Request, conf: HecToken) -> str | None | web.Response:
        channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if channel is None:
            return _reply(400, "Data channel is missing", 10) if conf.ack else None
        try:
            uuid.UUID(channel)
        except ValueError:
            return _reply(400, "Invalid data channel", 11)
        return channel

    async def _event(self, request: web.Request) -> web.Response:
        is_gzip = request.headers.get("Content-Encoding", "").lower() == "gzip"
        try:
            body = await request.read()  # aiohttp inflates a gzip body itself
        except web.HTTPException:
            body = None
        wire = request.content_length if request.content_length is not None else len(body or b"")
        resp, events = await self._handle_event(request, body, wire, is_gzip)
        self.requests.append(
            Request(request.path, resp.status, events, wire, is_gzip, json.loads(resp.text))
        )
        return resp

    async def _handle_event(
        self, request: web.Request, body: bytes | None, wire: int, is_gzip: bool
    ) -> tuple[web.Response, int]:
        auth = self._auth(request)
        if isinstance(auth, web.Response):
            return auth, 0
        token, conf = auth
        channel = self._channel(request, conf)
        if isinstance(channel, web.Response):
            return channel, 0
        if wire > self.max_content_length:
            text = f"Content-Length of {wire} too large (maximum is {self.max_content_length})"
            return web.json_response({"text": text, "code": 413}, status=413), 0
        if body is None:  # a body that does not inflate
            return _reply(400, "Invalid data format", 6), 0
        if is_gzip and body[:2] == b"\x1f\x8b":  # not inflated on the way in
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return _reply(400, "Invalid data format", 6), 0
        if not body.strip():
            return _reply(400, "No data", 5), 0
        if self._faults:
            status, answer, headers = self._faults.popleft()
            return web.json_response(answer, status=status, headers=headers), 0
        stop_at = self._invalid.popleft() if self._invalid else None

        text = body.decode("utf-8", "replace")
        decoder = json.JSONDecoder()
        pos, number = 0, 0
        accepted: list[Indexed] = []
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            if number == stop_at:
                return self._refused(accepted, "Invalid data format", 6, number), number
            try:
                env, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                return self._refused(accepted, "Invalid data format", 6, number), number
            problem = _check(env, conf)
            if problem is not None:
                return self._refused(accepted, problem[0], problem[1], number), number
            index = env.get("index") or conf.default_index
            accepted.append(Indexed(env, index, token, channel))
            number += 1

        self.indexed.extend(accepted)
        answer: dict[str, Any] = {"text": "Success", "code": 0}
        if conf.ack:
            assert channel is not None
            ch = self._channels.setdefault(channel, _Channel())
            answer["ackId"] = ch.next_id
            ch.acks[ch.next_id] = not self.hold_acks
            ch.events[ch.next_id] = accepted
            ch.next_id += 1
        return web.json_response(answer), number

    def _refused(self, accepted: list[Indexed], text: str, code: int, number: int) -> web.Response:
        self.indexed.extend(accepted)  # HEC passed the events before the bad one on
        return web.json_response(
            {"text": text, "code": code, "invalid-event-number": number}, status=400
        )

    async def _ack(self, request: web.Request) -> web.Response:
        auth = self._auth(request)
        if isinstance(auth, web.Response):
            return auth
        _, conf = auth
        if not conf.ack:
            return _reply(400, "ACK is disabled", 14)
        channel = self._channel(request, conf)
        if isinstance(channel, web.Response):
            return channel
        assert channel is not None
        try:
            query = json.loads(await request.read())
            ids = query["acks"]
            if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids
            ):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return _reply(400, "Invalid data format", 6)
        self.ack_queries.append((channel, list(ids)))
        ch = self._channels.setdefault(channel, _Channel())
        result = {}
        for i in ids:
            done = ch.acks.get(i, False)
            result[str(i)] = done
            if done:  # HEC forgets an ack once the client has seen it true
                del ch.acks[i]
                self.acknowledged.extend(ch.events.pop(i, ()))
        return web.json_response({"acks": result})


def _check(env: Any, conf: HecToken) -> tuple[str, int] | None:
    if not isinstance(env, dict):
        return "Invalid data format", 6
    if "time" in env:
        t = env["time"]
        if isinstance(t, bool) or not isinstance(t, int | float | str):
            return "Invalid data format", 6
        if isinstance(t, str):
            try:
                float(t)
            except ValueError:
                return "Invalid data format", 6
    for key in ("host", "source", "sourcetype", "index"):
        if key in env and not isinstance(env[key], str):
            return "Invalid data format", 6
    if "event" not in env:
        return "Event field is required", 12
    if env["event"] in ("", None, {}, []):
        return "Event field cannot be blank", 13
    index = env.get("index")
    if index and conf.indexes and index not in conf.indexes:
        return "Incorrect index", 7
    fields = env.get("fields")
    if fields is not None and (
        not isinstance(fields, dict) or any(isinstance(v, dict) for v in fields.values())
    ):
        return "Error in handling indexed fields", 15
    return None


def _reply(status: int, text: str, code: int) -> web.Response:
    return web.json_response({"text": text, "code": code}, status=status)


BENCH_TOKEN = "11111111-2222-4333-8444-555555555555"


@contextlib.contextmanager
def bench_target(tmp: Path, variant: str = "") -> Iterator[tuple[dict[str, Any], Any]]:
    """Hook of bench/sink_throughput.py: a HEC over TLS, the sink's options, and a count of
    the distinct detections indexed (``variant="ack"``: acknowledged to the sink)."""
    if variant not in ("", "ack"):
        raise SystemExit(f"splunk: unknown variant {variant!r} (use splunk or splunk:ack)")
    ack = variant == "ack"
    ctx, ca_file = server_tls(tmp)
    token_file = tmp / "hec-token"
    token_file.write_text(BENCH_TOKEN)
    with in_thread(HecReceiver({BENCH_TOKEN: HecToken(ack=ack)}, ctx)) as (hec, call):
        events: Callable[[], list[Indexed]] = (
            (lambda: hec.acknowledged) if ack else (lambda: hec.indexed)
        )
        options = {"type": "splunk", "url": hec.url, "token_file": str(token_file),
                   "ca_file": str(ca_file), "ack": ack}  # fmt: skip
        yield options, distinct(lambda n: call(lambda: events()[n:]),
                                lambda e: e.envelope["event"]["id"])  # fmt: skip

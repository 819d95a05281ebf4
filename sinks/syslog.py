"""Syslog destination: RFC 5424 messages over UDP, TCP or TLS, with JSON or CEF payloads.

* ``udp`` (RFC 5426): one datagram per detection. UDP has no acknowledgement: a datagram
  the network drops is lost. A receiver that is down usually answers with ICMP "port
  unreachable", which the kernel reports on the next send; when that happens during or
  right after a batch, the whole batch fails (retryable), so it is sent again.
* ``tcp`` (RFC 6587): octet-counting framing (``<length> <message>``) by default, which
  carries any byte; ``framing: lf`` ends each message with LF for old receivers.
* ``tls`` (RFC 5425): octet-counting over TLS 1.2 or newer, the server certificate and
  host name verified by default (``ca_file``, ``tls_server_name``), client certificate
  for mutual TLS.

Delivery. Plain syslog has no application acknowledgement: ``write`` returns once the
bytes have left falconet's buffers (the transport's write buffer is empty). Before each
write the connection is polled without waiting, so a receiver that closed it or restarted
since the last batch is seen and a new connection is made; right after the write it is
polled again, and a connection found closed or reset then fails the batch (retryable).
A new connection is watched for ``connect_check_ms`` before its first write: a receiver
that accepts and then drops it (a refused client certificate, too many sessions) fails
the batch instead of swallowing it.
What cannot be seen is a receiver that dies after the kernel took the bytes and before it
read them: the batch counts as delivered. At-least-once therefore rests on the framework
retrying every failed batch, and a retried batch may be delivered twice (counted by the
framework's retry metrics). For an acknowledged transport use RELP or a Kafka sink.

A message larger than ``max_message_bytes`` is refused (a permanent failure: the record
goes to the sink's dead-letter topic with the reason) or, with ``oversize: truncate``,
cut at a character boundary (logged; a cut JSON payload is no longer valid JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import orjson

from falconet.errors import ConfigError, SinkError

from . import rfc5424
from .base import ACCEPTED, BatchingSink, ItemFailure, Option, SinkRecord, WriteResult
from .cef import format_cef
from .http import HTTP_OPTIONS, ssl_context

__all__ = ["SyslogSink"]

log = logging.getLogger("falconet.sinks.syslog")

_TLS_KEYS = ("tls_verify", "ca_file", "client_cert_file", "client_key_file")
_IANA_SD_IDS = ("timeQuality", "origin", "meta")
UDP_MAX = 65507  # IPv4: 65535 - 20 (IP header) - 8 (UDP header)

SYSLOG_OPTIONS: tuple[Option, ...] = (
    Option("host", "", str, "Host name or address of the syslog receiver.", required=True),
    Option("port", 0, int, "Receiver port; 0: 514 for `udp`/`tcp`, 6514 for `tls`."),
    Option("protocol", "tcp", str, "`udp` (RFC 5426), `tcp` (RFC 6587) or `tls` (RFC 5425)."),
    Option("framing", "octet-counting", str, "TCP/TLS framing: `octet-counting` (`<length> <message>`, any byte allowed) or `lf` (message then LF, for old receivers; CR/LF inside become spaces)."),
    Option("format", "json", str, "Message body: `json` (the detection's JSON) or `cef` (ArcSight CEF)."),
    Option("facility", "local0", str, "Syslog facility: a name (`local0`-`local7`, `auth`, `authpriv`, `daemon`...) or a number 0-23."),
    Option("app_name", "falconet", str, "APP-NAME header field (at most 48 printable ASCII characters)."),
    Option("hostname", "", str, "HOSTNAME header field; empty: the host of the detection."),
    Option("msgid", "", str, "MSGID header field; empty: the rule name, spaces and non-ASCII as `_`, cut to 32 characters."),
    Option("structured_data", True, bool, "Add a structured-data element with the detection id, rule, priority, source and tags."),
    Option("sd_id", "falconet@32473", str, "SD-ID of that element: `name@<your IANA enterprise number>` (32473 is the number reserved for examples)."),
    Option("utf8_bom", "auto", str, "Byte order mark before the message body: `auto` (for `json`, not for `cef`, whose parsers expect `CEF:` first), `always` or `never`."),
    Option("max_message_bytes", 0, int, "Largest message in bytes (without framing); 0: 2048 for `udp` (RFC 5426), 8192 for `tcp`/`tls` (RFC 5425, rsyslog's default)."),
    Option("oversize", "reject", str, "A larger message is `reject`ed (dead-lettered with the reason) or `truncate`d (body cut to fit, logged)."),
    Option("tls_server_name", "", str, "Name to verify in the receiver's certificate (and SNI); empty: `host`."),
    *(o for o in HTTP_OPTIONS if o.key in _TLS_KEYS),
    Option("connect_check_ms", 200, int, "After opening a connection, wait up to this long for the receiver to drop it (a client certificate it refuses, a session limit) before the first write, which would otherwise count as delivered; 0: write at once."),
    Option("timeout_seconds", 10.0, float, "Longest a connect, TLS handshake or write may take before the batch fails (retried)."),
)  # fmt: skip


class SyslogSink(BatchingSink):
    """RFC 5424 over UDP, TCP (octet-counting) or TLS; JSON or CEF bodies."""

    kind = "syslog"
    summary = "RFC 5424 syslog over UDP, TCP (RFC 6587) or TLS (RFC 5425); JSON or CEF"
    options = SYSLOG_OPTIONS
    default_batch_events = 500
    max_batch_bytes = 1024 * 1024
    uses_http = False

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        o = options
        self.protocol = str(o["protocol"]).lower()
        if self.protocol not in ("udp", "tcp", "tls"):
            raise self._bad("protocol", "use udp, tcp or tls")
        self.format = str(o["format"]).lower()
        if self.format not in ("json", "cef"):
            raise self._bad("format", "use json or cef")
        self.framing = str(o["framing"]).lower()
        if self.framing not in ("octet-counting", "lf"):
            raise self._bad("framing", "use octet-counting or lf")
        self.oversize = str(o["oversize"]).lower()
        if self.oversize not in ("reject", "truncate"):
            raise self._bad("oversize", "use reject or truncate")
        bom = str(o["utf8_bom"]).lower()
        if bom not in ("auto", "always", "never"):
            raise self._bad("utf8_bom", "use auto, always or never")
        self.bom = bom == "always" or (bom == "auto" and self.format == "json")
        try:
            self.facility = rfc5424.parse_facility(o["facility"])
        except ValueError as e:
            raise ConfigError(f"sink {name!r}: facility: {e}") from None
        self.host = str(o["host"]).strip()
        self.port = int(o["port"]) or (6514 if self.protocol == "tls" else 514)
        if not 0 < self.port < 65536:
            raise self._bad("port", "use 1-65535")
        self.app_name = rfc5424.header_text(str(o["app_name"]), rfc5424.APP_NAME_MAX)
        self.hostname = str(o["hostname"])
        self.msgid = str(o["msgid"])
        self.structured_data = bool(o["structured_data"])
        self.sd_id = str(o["sd_id"])
        if not rfc5424.sd_name_ok(self.sd_id) or (
            "@" not in self.sd_id and self.sd_id not in _IANA_SD_IDS
        ):
            raise self._bad("sd_id", "use name@<enterprise number>, e.g. falconet@32473")
        limit = int(o["max_message_bytes"]) or (2048 if self.protocol == "udp" else 8192)
        if limit < 480 or (self.protocol == "udp" and limit > UDP_MAX):
            top = UDP_MAX if self.protocol == "udp" else "any"
            raise self._bad("max_message_bytes", f"use 480 (RFC 5426's minimum) to {top}")
        self.max_message_bytes = limit
        self.timeout = float(o["timeout_seconds"])
        self.connect_check = max(0, int(o["connect_check_ms"])) / 1000
        self.server_name = str(o["tls_server_name"]) or self.host
        self._ssl: ssl.SSLContext | None = None
        if self.protocol == "tls":
            self._ssl = ssl_context({k: o[k] for k in _TLS_KEYS})
        self._stream: _Stream | None = None
        self._udp: socket.socket | None = None

    def _bad(self, key: str, hint: str) -> ConfigError:
        return ConfigError(f"sink {self.name!r}: {key}={self.opts[key]!r}: {hint}")

    @property
    def where(self) -> str:
        return f"syslog+{self.protocol}://{self.host}:{self.port}"

    # -- messages ------------------------------------------------------------------------

    def body(self, record: SinkRecord) -> bytes:
        """MSG: the detection's JSON or its CEF line, UTF-8."""
        if self.format == "cef":
            return format_cef(record).encode("utf-8", "replace")
        try:
            return orjson.dumps(record.obj)
        except TypeError:  # lone surrogates from undecodable event bytes
            text = json.dumps(record.obj, ensure_ascii=False, separators=(",", ":"), default=str)
            return text.encode("utf-8", "replace")

    def header(self, record: SinkRecord) -> rfc5424.Header:
        d = record.detection
        return rfc5424.Header(
            facility=self.facility,
            severity=int(d.priority),  # Falco priorities are syslog severities, 0-7
            timestamp=rfc5424.rfc3339_micro(d.ts),
            hostname=rfc5424.header_text(self.hostname or d.hostname, rfc5424.HOSTNAME_MAX),
            app_name=self.app_name,
            procid=rfc5424.NIL,
            msgid=rfc5424.header_text(self.msgid or d.rule, rfc5424.MSGID_MAX),
        )

    def sd(self, record: SinkRecord) -> str:
        if not self.structured_data:
            return rfc5424.NIL
        d = record.detection
        params = [("id", d.id), ("rule", d.rule), ("priority", d.priority.title)]
        if d.source:
            params.append(("source", d.source))
        if d.tags:
            params.append(("tags", ",".join(d.tags)))
        dedup = record.obj.get("dedup")
        if isinstance(dedup, dict) and dedup.get("count"):
            params.append(("count", str(dedup["count"])))
        return rfc5424.sd_element(self.sd_id, params)

    def message(self, record: SinkRecord) -> tuple[bytes | None, str]:
        """The RFC 5424 message of ``record`` within the size limit, or None and why not."""
        header, sd, body = self.header(record), self.sd(record), self.body(record)
        msg = rfc5424.message(header, sd, body, self.bom)
        limit = self.max_message_bytes
        if len(msg) <= limit:
            return msg, ""
        reason = f"message of {len(msg)} bytes exceeds max_message_bytes={limit}"
        if self.oversize == "reject":
            return None, reason
        head = rfc5424.message(header, sd, b"", False)
        room = limit - len(head) - 1 - (len(rfc5424.BOM) if self.bom else 0)
        if room <= 0:
            return None, reason + " (even without its body)"
        cut = rfc5424.truncate_utf8(body, room)
        log.warning(
            "sink %s: detection %s truncated: %s (body cut to %d bytes)",
            self.name, record.id, reason, len(cut),
        )  # fmt: skip
        return rfc5424.message(header, sd, cut, self.bom), ""

    def frame(self, msg: bytes) -> bytes:
        if self.protocol == "udp":
            return msg
        if self.framing == "lf":
            return rfc5424.frame_lf(msg)
        return rfc5424.frame_octet_counting(msg)

    def record_size(self, record: SinkRecord) -> int:
        return len(record.raw) + 64

    # -- delivery -------------------------------------------------------------------------

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        failures: list[ItemFailure] = []
        frames: list[bytes] = []
        for i, record in enumerate(batch):
            try:
                msg, reason = self.message(record)
            except (ValueError, KeyError) as e:  # a detection we cannot render
                msg, reason = None, f"cannot format detection: {e}"
            if msg is None:
                log.warning("sink %s: detection %s refused: %s", self.name, record.id, reason)
                failures.append(ItemFailure(i, reason, retryable=False))
            else:
                frames.append(self.frame(msg))
        if frames:
            if self.protocol == "udp":
                await self._send_udp(frames)
            else:
                await self._send_stream(b"".join(frames))
        return WriteResult(tuple(failures)) if failures else ACCEPTED

    async def _send_stream(self, data: bytes) -> None:
        stream = await self._connected()
        try:
            async with asyncio.timeout(self.timeout):
                stream.transport.write(data)
                await stream.flush()
            await _poll()  # a reset our bytes caused shows up now
            if stream.closed:
                raise ConnectionResetError(stream.why_closed())
        except (OSError, TimeoutError) as e:
            self._drop_stream()
            what = (
                f"no progress within {self.timeout:g}s (receiver not reading?)"
                if isinstance(e, TimeoutError)
                else f"connection lost while writing: {_describe(e)}"
            )
            raise SinkError(f"{self.where}: {what}", retryable=True) from None

    async def _connected(self) -> _Stream:
        await _poll()  # see a close or reset that arrived since the last write
        if self._stream is not None and not self._stream.closed:
            return self._stream
        if self._stream is not None:
            log.info(
                "sink %s: %s closed the connection (%s); reconnecting",
                self.name, self.where, self._stream.why_closed(),
            )  # fmt: skip
            self._drop_stream()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, stream = await loop.create_connection(
                    _Stream,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.server_name if self._ssl else None,
                    ssl_handshake_timeout=self.timeout if self._ssl else None,
                )
        except Exception as e:  # noqa: BLE001 - every connect failure becomes a SinkError
            raise self._connect_error(e) from None
        if self.connect_check:
            # A receiver refusing us after the handshake (TLS 1.3 verifies the client
            # certificate after the client finished; rsyslog checks the peer after
            # accepting) closes at once: see that before the first write, not after it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.connect_check):
                    await asyncio.shield(stream.lost)
            if stream.closed:
                why = stream.why_closed()
                stream.transport.abort()
                hint = (
                    "does it require a client certificate (client_cert_file) or refuse ours?"
                    if self._ssl
                    else "is it at its session limit?"
                )
                raise SinkError(
                    f"{self.where}: the receiver closed the connection right after accepting "
                    f"it ({why}); {hint}",
                    retryable=True,
                )
        log.info("sink %s: connected to %s", self.name, self.where)
        self._stream = stream
        return stream

    def _connect_error(self, e: BaseException) -> SinkError:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = e.verify_message or str(e)
            return SinkError(
                f"{self.where}: TLS certificate not trusted ({detail}); check ca_file and "
                "tls_server_name, or the receiver's certificate",
                retryable=True,
            )
        if isinstance(e, ssl.SSLError):
            return SinkError(f"{self.where}: TLS handshake failed: {e}", retryable=True)
        if isinstance(e, socket.gaierror):
            return SinkError(f"{self.where}: cannot resolve {self.host}: {e}", retryable=True)
        if isinstance(e, TimeoutError):
            return SinkError(
                f"{self.where}: no connection within {self.timeout:g}s", retryable=True
            )
        if isinstance(e, OSError):
            return SinkError(f"{self.where}: cannot connect: {_describe(e)}", retryable=True)
        return SinkError(f"{self.where}: cannot connect: {type(e).__name__}: {e}", retryable=True)

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream.transport.abort()
            self._stream = None

    async def _send_udp(self, datagrams: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        sock = await self._udp_socket()
        pending = _pending_error(sock)
        if pending:
            log.warning(
                "sink %s: %s reported %s after the previous batch: its last datagrams may be "
                "lost (UDP has no acknowledgement)",
                self.name, self.where, _describe(OSError(pending, "")),
            )  # fmt: skip
        try:
            for dgram in datagrams:
                await loop.sock_sendall(sock, dgram)
            await _poll()  # an ICMP "port unreachable" answer arrives now on loopback
            refused = _pending_error(sock)
            if refused:
                raise OSError(refused, "")
        except OSError as e:
            self._close_udp()
            raise SinkError(f"{self.where}: {_describe(e)}", retryable=True) from None

    async def _udp_socket(self) -> socket.socket:
        if self._udp is not None:
            return self._udp
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise SinkError(
                f"{self.where}: cannot resolve {self.host}: {e}", retryable=True
            ) from None
        except TimeoutError:
            raise SinkError(
                f"{self.where}: cannot resolve {self.host} within {self.timeout:g}s",
                retryable=True,
            ) from None
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            sock.connect(addr)  # a connected UDP socket receives the ICMP errors
        except OSError as e:
            sock.close()
            raise SinkError(f"{self.where}: {_describe(e)}", retryable=True) from None
        self._udp = sock
        return sock

    def _close_udp(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def probe(self) -> str:
        """Connect (and for TLS, complete the handshake against our CAs); UDP has nothing
        to check."""
        if self.protocol == "udp":
            return "UDP: nothing to check without sending"
        await self._connected()
        return f"{self.where} accepts a {self.protocol.upper()} connection"

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.transport.close()  # TLS: sends close_notify after what is buffered
            try:
                async with asyncio.timeout(min(self.timeout, 5.0)):
                    await stream.lost
            except TimeoutError:
                stream.transport.abort()
        self._close_udp()


class _Stream(asyncio.Protocol):
    """A TCP/TLS connection we only write to: tracks closure and write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.closed = False
        self.error: BaseException | None = None
        self.eof = False
        self._resumed: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Syslog receivers send nothing back; whatever arrives is ignored."""

    def eof_received(self) -> bool:
        self.eof = True
        self.closed = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        if not self.lost.done():
            self.lost.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def why_closed(self) -> str:
        if self.error is not None:
            return _describe(self.error)
        return "closed by the receiver" if self.eof else "closed"

    async def flush(self) -> None:
        """Wait until the transport's write buffer is empty; raise if the connection ends."""
        while True:
            if self.closed:
                raise ConnectionResetError(self.why_closed())
            if self.transport.get_write_buffer_size() == 0:
                return
            if self._paused:
                self._resumed = asyncio.get_running_loop().create_future()
                await self._resumed
            else:
                await asyncio.sleep(0.001)


async def _poll() -> None:
    """Let the event loop poll its sockets once and run what they reported (no waiting).

    The first yield lets the selector run (its callbacks queue behind us), the second
    lets those callbacks (data, EOF, reset) run before we go on.
    """
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _pending_error(sock: socket.socket) -> int:
    """The error the kernel holds for ``sock`` (e.g. ECONNREFUSED from ICMP), clearing it."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno:
        name = errno.errorcode.get(e.errno, str(e.errno))
        text = e.strerror or ""
        if not text:
            import os

            text = os.strerror(e.errno)
        return f"{name} ({text})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

"""A local webhook receiver with scripted faults, standing in for a SOC's HTTP endpoint.

It checks what falconet's webhook contract (docs/sinks.md, "Webhook") promises a receiver:
``POST`` with ``Content-Type: application/json``; the body (gzip-decoded when
``Content-Encoding: gzip``) is a JSON array of Falco JSON alerts (``time``, ``rule``,
``priority``, ``output``, ``output_fields``, ``hostname``, ``id``); at most
``max_body`` bytes (413 beyond, as a proxy would answer); with a secret, the
``X-Falconet-Timestamp`` must be within 300 s of the receiver's clock and
``X-Falconet-Signature`` must equal ``sha256=`` HMAC-SHA256(secret, ``<ts>.<body>``),
compared in constant time (401 otherwise, the GitHub/Stripe-style webhook signature
scheme). Malformed bodies get 400.

Faults, scripted per request in order (then every request succeeds): a status with
headers (500, 429 with ``Retry-After``, 400...), ``reset`` (read the body, then drop the
connection without answering), ``delay`` (answer after N seconds: a client with a
shorter timeout gives up, but the records are kept, as a slow real server would). The
receiver can be stopped and started again on the same port (``down at start``), and can
serve TLS with a certificate from a ``trustme`` CA.

Runs its own event loop in a thread so synchronous tests (and subprocess sinks) can use
it; ``received`` holds every accepted detection, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

REQUIRED = ("time", "rule", "priority", "output", "output_fields", "hostname", "id")
MAX_SKEW = 300


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "reset" | "delay"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0


def status(code: int, **headers: str) -> Fault:
    return Fault("status", code, tuple((k.replace("_", "-"), v) for k, v in headers.items()))


def reset() -> Fault:
    return Fault("reset")


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds=seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookReceiver:
    def __init__(self, *, secret: str = "", max_body: int = 4 * 1024 * 1024,
                 ssl_context: ssl.SSLContext | None = None, path: str = "/hook") -> None:  # fmt: skip
        self.secret = secret
        self.max_body = max_body
        self.ssl_context = ssl_context
        self.path = path
        self.port = 0
        self.received: list[dict[str, Any]] = []
        self.requests = 0  # requests that reached the handler
        self.gzipped = 0  # requests with Content-Encoding: gzip
        self.rejected: list[tuple[int, str]] = []  # (status, reason) of refused requests
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    # -- control (from any thread) ------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://localhost:{self.port}{self.path}"

    def start(self, port: int | None = None) -> WebhookReceiver:
        self._call(self._start(self.port if port is None else port))
        return self

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(d["id"] for d in self.received)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self, port: int) -> None:
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the endpoint -------------------------------------------------------------------------
    def _refuse(self, code: int, reason: str) -> web.Response:
        with self._lock:
            self.rejected.append((code, reason))
        return web.json_response({"error": reason}, status=code)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests += 1
            fault = self.faults.popleft() if self.faults else None
        if request.content_length is not None and request.content_length > self.max_body:
            return self._refuse(413, f"body of {request.content_length} bytes over {self.max_body}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "body too large")
        if fault is not None and fault.kind == "reset":
            assert request.transport is not None
            request.transport.abort()  # no answer: the client sees the connection drop
            raise asyncio.CancelledError
        if fault is not None and fault.kind == "status":
            return web.json_response({"error": f"scripted {fault.status}"}, status=fault.status,
                                     headers=dict(fault.headers))  # fmt: skip
        if request.content_type != "application/json":
            return self._refuse(415, f"content type {request.content_type}")
        if request.headers.get("Content-Encoding") == "gzip":
            self.gzipped += 1
            if body[:2] == b"\x1f\x8b":  # aiohttp normally decodes it already
                try:
                    body = gzip.decompress(body)
                except OSError:
                    return self._refuse(400, "bad gzip")
        signed = body
        if self.secret:
            problem = self._check_signature(request, signed)
            if problem:
                return self._refuse(401, problem)
        try:
            batch = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._refuse(400, "body is not JSON")
        if not isinstance(batch, list) or not all(isinstance(d, dict) for d in batch):
            return self._refuse(400, "body is not a JSON array of objects")
        for d in batch:
            missing = [k for k in REQUIRED if k not in d]
            if missing:
                return self._refuse(400, f"detection without {', '.join(missing)}")
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        with self._lock:
            self.received.extend(batch)
        return web.json_response({"accepted": len(batch)})

    def _check_signature(self, request: web.Request, body: bytes) -> str:
        ts = request.headers.get("X-Falconet-Timestamp", "")
        sig = request.headers.get("X-Falconet-Signature", "")
        if not ts.isdigit():
            return "missing or malformed timestamp"
        if abs(time.time() - int(ts)) > MAX_SKEW:
            return "timestamp outside the accepted window (replay?)"
        want = "sha256=" + hmac.new(self.secret.encode(), ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()  # fmt: skip
        if not hmac.compare_digest(want, sig):
            return "bad signature"
        return ""


def tls_pair(tmp: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A server context for ``localhost`` from a fresh CA, that CA's PEM, and another CA's."""
    import trustme

    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    good, bad = tmp / "ca.pem", tmp / "other-ca.pem"
    ca.cert_pem.write_to_path(str(good))
    other.cert_pem.write_to_path(str(bad))
    return ctx, good, bad


@contextlib.contextmanager
def bench_target(tmp: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """Hook of bench/sink_throughput.py: the sink's options and a count of delivered records."""
    receiver = WebhookReceiver().start()
    try:
        yield {"type": "webhook", "url": receiver.url}, lambda: len(receiver.received)
    finally:
        receiver.close()


def detection_json(i: int, *, rule: str = "Shell in container", priority: str = "Warning",
                   source: str = "syscall", host: str = "node-a", tags: tuple[str, ...] = ("shell",),
                   output: str | None = None) -> bytes:  # fmt: skip
    """A detection as the workers put it on ``detections.v1`` (distinct per ``i``)."""
    from falconet.detection import Detection, detection_id
    from falconet.priority import Priority

    ts = 1_760_000_000_000_000_000 + i * 1_000_000
    event_id = f"ev-{i}"
    return Detection(
        time=f"2025-10-09T08:53:20.{i % 1_000_000_000:09d}Z",
        rule=rule,
        priority=Priority.parse(priority),
        output=output if output is not None else f"{priority} shell spawned (n={i})",
        output_fields={"evt.time": ts, "proc.name": "bash", "n": i},
        source=source,
        tags=tags,
        hostname=host,
        id=detection_id(rule, event_id),
        event_id=event_id,
        ts=ts,
    ).to_json()

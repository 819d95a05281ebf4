"""The HTTP side of the webhook: routes, checks in order, answers the API server understands.

``POST <k8s_audit.path>`` (``/k8s-audit``) takes the audit batches; ``GET /healthz`` says
the process serves, ``GET /readyz`` whether it takes requests (503 once it is stopping).
A webhook request goes through, in this order:

1. authentication (:mod:`.auth`): 401 with ``WWW-Authenticate``, or 403;
2. ``Content-Type`` must be JSON: 415;
3. ``Content-Length`` above ``k8s_audit.max_request_bytes``: 413 before reading anything;
4. more than ``k8s_audit.max_inflight`` requests at once: 429 with ``Retry-After``;
5. the body is read up to the limit (413 past it; 408 with ``Retry-After`` if it takes
   longer than 30 s);
6. :class:`~.ingest.Ingest`, in a worker thread: 200 once Kafka acknowledged every event
   and dead letter, 400 for a body that is not audit events (after the DLQ has it), 503
   with ``Retry-After`` when Kafka did not acknowledge in time.

Every answer is a ``v1`` ``Status`` object, the form client-go reads: the API server logs
its message, and retries 500, 504, 429 and answers carrying ``Retry-After`` (the reason 503,
429 and 408 always do). Nothing here blocks the event loop on Kafka.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import metrics as M
from .auth import Authenticator
from .ingest import Ingest, Outcome
from .settings import BODY_READ_TIMEOUT_S, WebhookSettings
from .tls import peer_common_names

log = logging.getLogger("falconet.sensor.k8s_audit")

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "Timeout",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
_CHUNK = 64 * 1024


@dataclass(slots=True)
class _Trace:
    """What the request log line reports about one request."""

    request_id: str
    body_bytes: int = 0
    events: int = 0
    dead_letters: int = 0


_TRACE = web.RequestKey("k8s_audit_trace", _Trace)


def status_response(
    code: int, message: str, *, retry_after: int = 0, headers: dict[str, str] | None = None
) -> web.Response:
    """A ``v1`` ``Status`` answer (``retry_after`` adds the header and ``retryAfterSeconds``)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 300 else "Failure",
        "message": message,
        "code": code,
    }
    if code >= 300:
        body["reason"] = _REASONS.get(code, "Unknown")
    hdrs = dict(headers or {})
    if retry_after:
        body["details"] = {"retryAfterSeconds": retry_after}
        hdrs["Retry-After"] = str(retry_after)
    return web.Response(
        status=code, body=orjson.dumps(body), content_type="application/json", headers=hdrs
    )


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


class WebhookApp:
    """The aiohttp application of the webhook (see the module docstring)."""

    def __init__(
        self,
        settings: WebhookSettings,
        auth: Authenticator,
        ingest: Ingest,
        executor: Executor,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.ingest = ingest
        self.executor = executor
        self.ready = False
        self._inflight = 0
        self._ids = itertools.count(1)

    def build(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.max_request_bytes, middlewares=[self._observe]
        )
        app.router.add_post(self.settings.path, self.webhook, expect_handler=self._expect)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/livez", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    # -- every request: count, log, never a traceback to the client ------------------------
    @web.middleware
    async def _observe(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.monotonic()
        trace = request[_TRACE] = _Trace(f"{next(self._ids):x}")
        webhook = request.path == self.settings.path
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 404, 405 from the router
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = status_response(exc.status, exc.reason, headers=allow)
        except Exception:
            log.exception("k8s_audit.internal_error id=%s", trace.request_id)
            response = status_response(500, "internal error of the audit webhook; retry")
        if webhook or response.status >= 400:
            M.REQUESTS.labels(str(response.status)).inc()
            level = logging.INFO if response.status < 400 else logging.WARNING
            log.log(
                level,
                "k8s_audit.request id=%s status=%d method=%s path=%s peer=%s bytes=%d events=%d "
                "dead_letters=%d ms=%.1f",
                trace.request_id, response.status, request.method, request.path, request.remote,
                trace.body_bytes, trace.events, trace.dead_letters,
                (time.monotonic() - started) * 1000,
            )  # fmt: skip
        return response

    # -- probes -------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready (starting or stopping)\n")

    # -- the webhook -------------------------------------------------------------------------
    async def _expect(self, request: web.Request) -> None:
        """``Expect: 100-continue`` (curl sends it for large bodies): the ``100 Continue``
        waits until the request passed its checks, so a refused or oversized request is
        answered before its body is sent."""
        if request.headers.get("Expect", "").lower() != "100-continue":
            raise web.HTTPExpectationFailed(text="only 'Expect: 100-continue' is supported")

    async def webhook(self, request: web.Request) -> web.Response:
        has_cert, cns = peer_common_names(request.transport)
        denial = self.auth.check(request.headers.get("Authorization"), has_cert, cns)
        if denial is not None:
            M.AUTH_FAILURES.labels(denial.reason).inc()
            log.warning(
                "k8s_audit.auth_failed id=%s reason=%s peer=%s",
                request[_TRACE].request_id,
                denial.reason,
                request.remote,
            )
            headers = {"WWW-Authenticate": denial.challenge} if denial.challenge else None
            return status_response(denial.status, denial.message, headers=headers)
        if not _is_json(request.content_type):
            return status_response(
                415, f"Content-Type must be application/json, not {request.content_type!r}"
            )
        limit = self.settings.max_request_bytes
        context = self._context(request)
        if request.content_length is not None and request.content_length > limit:
            return await self._too_large(request.content_length, context)
        if self._inflight >= self.settings.max_inflight:
            return status_response(
                429,
                f"{self._inflight} requests are being handled; try again later",
                retry_after=self.settings.retry_after_s,
            )
        self._inflight += 1
        M.INFLIGHT.inc()
        try:
            return await self._receive(request, context, limit)
        finally:
            self._inflight -= 1
            M.INFLIGHT.dec()

    async def _receive(
        self, request: web.Request, context: dict[str, Any], limit: int
    ) -> web.Response:
        if (
            request.version >= (1, 1)
            and request.headers.get("Expect", "").lower() == "100-continue"
        ):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the answer has not started yet
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT_S):
                async for chunk in request.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > limit:
                        return await self._too_large(len(body), context, partial=True)
        except TimeoutError:
            response = status_response(
                408,
                f"the request body did not arrive within {BODY_READ_TIMEOUT_S:g}s",
                retry_after=self.settings.retry_after_s,
            )
            response.force_close()
            return response
        trace = request[_TRACE]
        trace.body_bytes = len(body)
        M.REQUEST_BYTES.inc(len(body))
        loop = asyncio.get_running_loop()
        outcome: Outcome = await loop.run_in_executor(
            self.executor, self.ingest, bytes(body), context
        )
        trace.events, trace.dead_letters = outcome.events, outcome.dead_letters
        retry_after = self.settings.retry_after_s if outcome.status == 503 else 0
        return status_response(outcome.status, outcome.message, retry_after=retry_after)

    async def _too_large(
        self, size: int, context: dict[str, Any], partial: bool = False
    ) -> web.Response:
        limit = self.settings.max_request_bytes
        what = f"more than {limit}" if partial else f"{size}"
        reason = (
            f"request body of {what} bytes is larger than k8s_audit.max_request_bytes ({limit})"
        )
        details = {**context, ("bytes_read" if partial else "content_length"): size}
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self.ingest.note_too_large, reason, details)
        response = status_response(
            413,
            reason
            + "; lower --audit-webhook-batch-max-size or enable --audit-webhook-truncate-enabled",
        )
        response.force_close()  # the rest of the body is not read into memory
        return response

    def _context(self, request: web.Request) -> dict[str, Any]:
        """What a dead letter records about the request (no credentials)."""
        return {
            "request_id": request[_TRACE].request_id,
            "peer": request.remote,
            "user_agent": request.headers.get("User-Agent", ""),
        }

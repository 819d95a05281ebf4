"""A local Microsoft Entra ID token endpoint and Azure Monitor Logs Ingestion API.

It stands in for both services the Sentinel sink calls, on one TLS listener, and checks
what they check, following:

* "Microsoft identity platform and the OAuth 2.0 client credentials flow" (shared secret):
  ``POST /{tenant}/oauth2/v2.0/token`` with a form body (``application/x-www-form-urlencoded``);
  ``grant_type`` must be ``client_credentials`` (else 400 ``unsupported_grant_type``,
  AADSTS70003), the tenant must exist (400 ``invalid_request``, AADSTS90002), the client id
  must be registered (400 ``unauthorized_client``, AADSTS700016), the secret must match
  (401 ``invalid_client``, AADSTS7000215) and ``scope`` must be exactly
  ``https://monitor.azure.com//.default`` (400 ``invalid_scope``, AADSTS70011). Errors carry
  ``error``, ``error_description`` (with the Trace ID line), ``error_codes``, ``trace_id``
  and ``correlation_id``; success is ``{"token_type": "Bearer", "expires_in": n,
  "ext_expires_in": n, "access_token": ...}``.
* "Logs Ingestion API in Azure Monitor" and the REST reference "Logs Ingestion - Upload"
  (api-version 2023-01-01): ``POST /dataCollectionRules/{immutable id}/streams/{stream}
  ?api-version=2023-01-01``. Checked in this order: api-version (400), ``Authorization:
  Bearer`` with a token this receiver issued and that has not expired (401), the DCR
  immutable id (404) and the stream declaration (400 ``InvalidStream``), ``Content-Type:
  application/json`` (415), ``Content-Encoding`` absent or ``gzip`` (400), the size of the
  call - 1 MB (1,048,576 bytes, as the Azure SDKs read "1 MB") compressed *and*
  uncompressed ("Azure Monitor service limits") - else 413, the body a JSON array of
  objects (400 ``InvalidPayload``). Errors are the Azure Core ``ErrorResponse``
  (``{"error": {"code", "message"}}``) with the ``x-ms-error-code`` header; success is
  204 without a body.
* The stream declaration (column name -> DCR type). As the service does ("Migrate from the
  HTTP Data Collector API": data for columns the DCR does not declare is not ingested),
  properties that are not declared are dropped - recorded in :attr:`dropped_columns` so a
  test can assert there are none. A value whose JSON type does not fit its declared type
  (``string``, ``int``, ``long``, ``real``, ``boolean``, ``datetime`` as ISO 8601 text,
  ``dynamic``) is refused with 400 ``InvalidPayload``: stricter than the service, which
  may store an empty cell instead, so a type drift in our records fails the tests.

Faults to inject: :meth:`SentinelReceiver.fail_ingestion` (any status, e.g. 429 with
``Retry-After``, 500, 503), :meth:`SentinelReceiver.fail_token`, and
:meth:`SentinelReceiver.expire_tokens` (every issued token is refused with 401 after it).
Token lifetimes run on the ``clock`` given (seconds), so tests control expiry without
sleeping.

:func:`bench_target` is the hook of bench/sink_throughput.py (``--sink sentinel``).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import secrets
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from . import distinct, in_thread, serve, server_tls

SCOPE = "https://monitor.azure.com//.default"
API_VERSION = "2023-01-01"
MAX_CALL_BYTES = 1024 * 1024


@dataclass
class IngestCall:
    """One Logs Ingestion request as the receiver saw it."""

    status: int
    wire_bytes: int  # body as sent (compressed when gzip)
    body_bytes: int  # body after inflating
    gzip: bool
    records: int
    headers: dict[str, str]


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None


class SentinelReceiver:
    """``async with SentinelReceiver(...) as r:`` listens on 127.0.0.1:<port> over TLS."""

    def __init__(
        self,
        server_ssl: ssl.SSLContext,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        dcr_immutable_id: str,
        streams: dict[str, dict[str, str]],
        expires_in: int = 3599,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl = server_ssl
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.dcr_immutable_id = dcr_immutable_id
        self.streams = streams
        self.expires_in = expires_in
        self.clock = clock
        self._tokens: dict[str, float] = {}  # token -> expiry on clock
        self.token_requests: list[dict[str, str]] = []  # the forms, secret masked
        self.calls: list[IngestCall] = []
        self.rows: list[dict[str, Any]] = []  # ingested, undeclared columns removed
        self.dropped_columns: set[str] = set()
        self._ingest_faults: deque[_Fault] = deque()
        self._token_faults: deque[_Fault] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- faults -----------------------------------------------------------------------
    def fail_ingestion(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        code: str = "",
        message: str = "",
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = None
        if code:
            headers["x-ms-error-code"] = code
            body = {"error": {"code": code, "message": message or code}}
        for _ in range(times):
            self._ingest_faults.append(_Fault(status, headers, body))

    def fail_token(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = _aad_error("temporarily_unavailable", 50196, "The server is temporarily busy.")
        for _ in range(times):
            self._token_faults.append(_Fault(status, headers, body))

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (401)."""
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    @property
    def statuses(self) -> list[int]:
        return [c.status for c in self.calls]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> SentinelReceiver:
        # a larger client_max_size than the service limit, so the 413 is ours to answer
        app = web.Application(client_max_size=8 * MAX_CALL_BYTES)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/dataCollectionRules/{dcr}/streams/{stream}", self._ingest)
        self._runner, self.port = await serve(app, self._ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- Entra ID -----------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = (await request.read()).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        self.token_requests.append(
            {k: ("***" if k == "client_secret" else v) for k, v in form.items()}
        )
        if self._token_faults:
            f = self._token_faults.popleft()
            return web.json_response(f.body, status=f.status, headers=f.headers)
        if ctype != "application/x-www-form-urlencoded":
            return _aad(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")  # fmt: skip
        if form.get("grant_type") != "client_credentials":
            return _aad(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")  # fmt: skip
        if request.match_info["tenant"] != self.tenant_id:
            return _aad(400, "invalid_request", 90002, f"Tenant '{request.match_info['tenant']}' not found.")  # fmt: skip
        if form.get("client_id") != self.client_id:
            return _aad(400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' was not found in the directory.")  # fmt: skip
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            return _aad(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")  # fmt: skip
        if form.get("scope") != SCOPE:
            return _aad(400, "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not valid. The scope {form.get('scope')} is not valid.")  # fmt: skip
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self.clock() + self.expires_in
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": token,
            }
        )

    # --- Logs Ingestion -----------------------------------------------------------------
    async def _ingest(self, request: web.Request) -> web.Response:
        gz = request.headers.get("Content-Encoding", "").strip().lower() == "gzip"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        call = IngestCall(0, 0, 0, gz, 0, headers)
        self.calls.append(call)
        try:
            # aiohttp's parser inflates a gzip body as it reads it (bad gzip: an error)
            body = await request.read()
        except Exception:  # noqa: BLE001 - any decoding failure is the client's
            call.status = 400
            return _err(400, "InvalidPayload", "The body is not valid gzip data.")
        call.body_bytes = len(body)
        call.wire_bytes = (
            request.content_length if request.content_length is not None else len(body)
        )
        resp = self._check(request, body, call)
        call.status = resp.status
        return resp

    def _check(self, request: web.Request, body: bytes, call: IngestCall) -> web.Response:
        if self._ingest_faults:
            f = self._ingest_faults.popleft()
            if f.body is None:
                return web.Response(status=f.status, headers=f.headers)
            return web.json_response(f.body, status=f.status, headers=f.headers)
        if request.query.get("api-version") != API_VERSION:
            return _err(400, "UnsupportedApiVersion", f"The HTTP resource does not support api-version '{request.query.get('api-version')}'.")  # fmt: skip
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _err(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing or not a bearer token.")  # fmt: skip
        expiry = self._tokens.get(auth[len("Bearer ") :])
        if expiry is None:
            return _err(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if self.clock() >= expiry:
            return _err(401, "ExpiredAuthenticationToken", "The access token has expired.")
        if request.match_info["dcr"] != self.dcr_immutable_id:
            return _err(404, "NotFound", f"Data collection rule with immutable Id '{request.match_info['dcr']}' not found.")  # fmt: skip
        columns = self.streams.get(request.match_info["stream"])
        if columns is None:
            return _err(400, "InvalidStream", f"Stream '{request.match_info['stream']}' is not declared in the data collection rule.")  # fmt: skip
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _err(415, "UnsupportedMediaType", f"Content-Type '{ctype}' is not supported; use application/json.")  # fmt: skip
        enc = request.headers.get("Content-Encoding", "").strip().lower()
        if enc not in ("", "gzip"):
            return _err(400, "InvalidContentEncoding", f"Content-Encoding '{enc}' is not supported.")  # fmt: skip
        if call.gzip and body[:2] == b"\x1f\x8b":  # not inflated on the way in
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return _err(400, "InvalidPayload", "The body is not valid gzip data.")
            call.body_bytes = len(body)
        for size, what in ((call.wire_bytes, "as sent"), (len(body), "uncompressed")):
            if size > MAX_CALL_BYTES:
                return _err(413, "ContentLengthLimitExceeded", f"The request is {size} bytes {what}; the maximum is {MAX_CALL_BYTES}.")  # fmt: skip
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _err(400, "InvalidPayload", "The body is not valid UTF-8 JSON.")
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            return _err(400, "InvalidPayload", "The body must be a JSON array of objects.")
        rows = []
        for n, item in enumerate(data):
            row = {}
            for key, value in item.items():
                kind = columns.get(key)
                if kind is None:
                    self.dropped_columns.add(key)
                    continue
                if not _fits(kind, value):
                    return _err(400, "InvalidPayload", f"Record {n}: column '{key}' of type '{kind}' cannot take the value {json.dumps(value)[:80]}.")  # fmt: skip
                row[key] = value
            rows.append(row)
        call.records = len(rows)
        self.rows.extend(rows)
        return web.Response(status=204)


def _fits(kind: str, value: Any) -> bool:
    if value is None or kind == "dynamic":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        bits = 31 if kind == "int" else 63
        return -(1 << bits) <= value < (1 << bits)
    if kind == "real":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "datetime":
        if not isinstance(value, str):
            return False
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def _err(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"x-ms-error-code": code},
    )


def _aad_error(error: str, number: int, text: str) -> dict[str, Any]:
    trace, corr = uuid.uuid4(), uuid.uuid4()
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return {
        "error": error,
        "error_description": f"AADSTS{number}: {text}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
        "error_codes": [number],
        "timestamp": stamp,
        "trace_id": str(trace),
        "correlation_id": str(corr),
    }


def _aad(status: int, error: str, number: int, text: str) -> web.Response:
    return web.json_response(_aad_error(error, number, text), status=status)


@contextlib.contextmanager
def bench_target(tmp: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """Hook of bench/sink_throughput.py: Entra ID and the Logs Ingestion API on one TLS
    receiver, the sink's options (the secret in a file), and a count of the distinct
    detections ingested."""
    from falconet.sinks.sentinel import COLUMNS, DEFAULT_STREAM

    ctx, ca_file = server_tls(tmp)
    tenant, client, dcr = str(uuid.uuid4()), str(uuid.uuid4()), f"dcr-{uuid.uuid4().hex}"
    secret = secrets.token_urlsafe(24)
    secret_file = tmp / "client-secret"
    secret_file.write_text(secret)
    receiver = SentinelReceiver(ctx, tenant_id=tenant, client_id=client, client_secret=secret,
                                dcr_immutable_id=dcr, streams={DEFAULT_STREAM: dict(COLUMNS)})  # fmt: skip
    with in_thread(receiver) as (rx, call):
        options = {"type": "sentinel", "authority": rx.url, "endpoint": rx.url,
                   "dcr_immutable_id": dcr, "stream_name": DEFAULT_STREAM, "tenant_id": tenant,
                   "client_id": client, "client_secret_file": str(secret_file),
                   "ca_file": str(ca_file)}  # fmt: skip
        yield options, distinct(lambda n: call(lambda: rx.rows[n:]), lambda r: r["DetectionId"])

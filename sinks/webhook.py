"""Webhook: a JSON array of detections POSTed to any HTTP(S) endpoint.

Each request carries one batch: ``[{detection}, ...]`` where each object is the
Falco JSON alert with falconet's fields (as on ``detections.v1``, plus ``dedup`` when
the dedup window folded repeats). ``Content-Type: application/json``.

Optional signature (``hmac_secret``): the request carries a timestamp header
(Unix seconds) and a signature header ``sha256=<hex>``, the HMAC-SHA256 with the
secret of ``<timestamp> "." <body>`` (the exact bytes sent, before any gzip). A receiver
recomputes it over the body it read, compares in constant time, and refuses a timestamp
too far from its clock (5 minutes is usual), so a captured request cannot be replayed.

Status handling: 2xx accepted; 408, 425, 429 and 5xx retried (``Retry-After`` honoured);
other 4xx sent to the DLQ with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from falconet.errors import ConfigError

from .base import ACCEPTED, BatchingSink, Option, SinkRecord, WriteResult
from .http import HttpClient, probe_reachable, raise_for_status

__all__ = ["WebhookSink", "sign"]

log = logging.getLogger("falconet.sinks.webhook")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSink(BatchingSink):
    kind: ClassVar[str] = "webhook"
    summary: ClassVar[str] = "POST batches of detections as a JSON array to an HTTP(S) URL"
    uses_http: ClassVar[bool] = True
    default_batch_events: ClassVar[int] = 100
    max_batch_bytes: ClassVar[int] = 4 * 1024 * 1024
    options: ClassVar[tuple[Option, ...]] = (
        Option("url", "", str, "Endpoint that receives the POSTs (`https://…`).", required=True),
        Option("headers", {}, dict, "Extra request headers (YAML mapping; environment: `Name=value,Name2=value2`), e.g. a bearer token from a secret store."),
        Option("hmac_secret", "", str, "Key of the HMAC-SHA256 signature of each request; empty: unsigned.", secret=True),
        Option("signature_header", "X-Falconet-Signature", str, "Header carrying `sha256=<hex>`."),
        Option("timestamp_header", "X-Falconet-Timestamp", str, "Header carrying the Unix time (seconds) included in the signed string."),
    )  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any],
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        super().__init__(name, options)
        url = str(options["url"])
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"sink {name!r}: url must start with http:// or https://, not {url!r}"
            )
        self._url = url
        self._headers = {**dict(options.get("headers") or {}),
                         "Content-Type": "application/json"}  # fmt: skip
        self._secret = str(options.get("hmac_secret") or "")
        self._clock = clock
        self._http = HttpClient(options, name)

    async def open(self) -> None:
        await self._http.open()

    async def close(self) -> None:
        await self._http.close()

    async def probe(self) -> str:
        return await probe_reachable(self._http, self._url)

    def body(self, batch: Sequence[SinkRecord]) -> bytes:
        return orjson.dumps([r.obj for r in batch])

    def headers_for(self, body: bytes) -> dict[str, str]:
        headers = dict(self._headers)
        if self._secret:
            ts = str(int(self._clock()))
            headers[str(self.opts["timestamp_header"])] = ts
            headers[str(self.opts["signature_header"])] = sign(self._secret, ts, body)
        return headers

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        body = self.body(batch)
        resp = await self._http.request(
            "POST", self._url, body=body, headers=self.headers_for(body)
        )
        raise_for_status(resp, "webhook POST")
        return ACCEPTED

    def record_size(self, record: SinkRecord) -> int:
        if "dedup" in record.obj:  # folded: the body carries the dedup block too
            return len(orjson.dumps(record.obj)) + 1
        return len(record.raw) + 1

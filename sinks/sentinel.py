"""Microsoft Sentinel through the Azure Monitor Logs Ingestion API.

The HTTP Data Collector API was retired in September 2026; this sink speaks only the Logs
Ingestion API ("Logs Ingestion API in Azure Monitor", REST reference "Logs Ingestion -
Upload", api-version 2023-01-01):

* a bearer token from Microsoft Entra ID by the client-credentials grant for the scope
  ``https://monitor.azure.com//.default`` (:mod:`falconet.sinks.entra`), cached and
  refreshed before it expires, and once more when the endpoint answers 401;
* ``POST {endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}
  ?api-version=2023-01-01`` with ``Content-Type: application/json`` (optionally
  ``Content-Encoding: gzip``) and a JSON array of records; 204 means accepted;
* one call carries at most 1 MB, compressed or not ("Azure Monitor service limits",
  Logs Ingestion API): we cut requests on the uncompressed size, below 1,000,000 bytes,
  and a single record larger than that is refused for good (it could never be sent).

A record is one row of the custom table ``FalconetDetections_CL``; :data:`COLUMNS` is the
stream declaration, and ``docs/sentinel/azuredeploy.json`` declares the same columns
(a test keeps the three equal).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from falconet import timefmt
from falconet.detection import json_bytes
from falconet.errors import ConfigError, SinkError

from .base import ACCEPTED, BatchingSink, ItemFailure, Option, SinkRecord, WriteResult
from .entra import EntraTokenClient
from .http import HttpClient, HttpResponse, is_retryable_status, probe_reachable, retry_after

__all__ = ["API_VERSION", "COLUMNS", "MAX_REQUEST_BYTES", "SentinelSink", "to_row"]

log = logging.getLogger("falconet.sinks.sentinel")

API_VERSION = "2023-01-01"
#: the documented ceiling of one call is "1 MB"; read as 10^6 bytes to stay clear of it
MAX_REQUEST_BYTES = 1_000_000
DEFAULT_SCOPE = "https://monitor.azure.com//.default"
DEFAULT_STREAM = "Custom-FalconetDetections"

#: the columns of one record, in order, with their DCR stream-declaration types
COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",  # the detection time (the event's), 100 ns precision
    "Rule": "string",
    "Priority": "string",  # Falco priority: Emergency ... Debug
    "Severity": "string",  # Sentinel severity: High, Medium, Low, Informational
    "Output": "string",
    "Source": "string",  # syscall, aws_cloudtrail, k8s_audit
    "Hostname": "string",
    "Tags": "dynamic",  # array of strings
    "OutputFields": "dynamic",  # object: Falco field name -> value
    "DetectionId": "string",  # stable id: hash of rule + event id
    "EventId": "string",
    "Enrichment": "dynamic",  # object (empty when none)
    "Dedup": "dynamic",  # {count, first_time, last_time} when repeats were folded, else null
}

#: Falco priority -> Sentinel incident severity
_SEVERITY = {
    "emergency": "High",
    "alert": "High",
    "critical": "High",
    "error": "Medium",
    "warning": "Medium",
    "notice": "Low",
    "informational": "Informational",
    "info": "Informational",
    "debug": "Informational",
}


def _time_generated(obj: Mapping[str, Any], fallback_ns: int) -> str:
    """RFC 3339 UTC with 7 fraction digits (Kusto datetime precision is 100 ns)."""
    try:
        ts = timefmt.parse_rfc3339_ns(str(obj.get("time", "")))
    except ValueError:
        ts = fallback_ns
    sec, ns = divmod(ts, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns // 100:07d}Z"


def to_row(record: SinkRecord) -> dict[str, Any]:
    """The table row for ``record`` (keys: exactly :data:`COLUMNS`)."""
    obj = record.obj
    d = record.detection
    priority = str(obj.get("priority") or d.priority.title)
    dedup = obj.get("dedup")
    row: dict[str, Any] = {
        "TimeGenerated": _time_generated(obj, d.ts),
        "Rule": str(obj.get("rule", d.rule)),
        "Priority": priority,
        "Severity": _SEVERITY.get(priority.lower(), "Informational"),
        "Output": str(obj.get("output", d.output)),
        "Source": str(obj.get("source", d.source)),
        "Hostname": str(obj.get("hostname", d.hostname)),
        "Tags": [str(t) for t in obj.get("tags", d.tags) or ()],
        "OutputFields": obj.get("output_fields", d.output_fields) or {},
        "DetectionId": str(obj.get("id", d.id)),
        "EventId": str(obj.get("event_id", d.event_id)),
        "Enrichment": obj.get("enrichment", d.enrichment) or {},
        "Dedup": dedup if isinstance(dedup, dict) else None,
    }
    return row


_dumps = json_bytes


def encode_row(record: SinkRecord) -> bytes:
    """The JSON of ``record``'s row, as it goes into the request body."""
    return _dumps(to_row(record))


class SentinelSink(BatchingSink):
    kind = "sentinel"
    summary = "Microsoft Sentinel / Azure Monitor Logs Ingestion API (DCR stream, Entra ID app)"
    uses_http = True
    # body = "[" + rows joined by "," + "]" = sum(len(row) + 1) + 1 <= MAX_REQUEST_BYTES
    max_batch_bytes = MAX_REQUEST_BYTES - 1
    default_batch_events = 500
    options = (
        Option("endpoint", "", str, "Logs ingestion endpoint of the DCR (`endpoints.logsIngestion`) or a data collection endpoint (DCE) URL, `https://…ingest.monitor.azure.com`.", required=True),
        Option("dcr_immutable_id", "", str, "Immutable id of the data collection rule (`dcr-…`).", required=True),
        Option("stream_name", DEFAULT_STREAM, str, "Stream of the DCR the records go to (`Custom-…`, declared in its `streamDeclarations`)."),
        Option("tenant_id", "", str, "Microsoft Entra tenant (directory) id of the app registration.", required=True),
        Option("client_id", "", str, "Application (client) id of the app registration; it needs the Monitoring Metrics Publisher role on the DCR.", required=True),
        Option("client_secret", "", str, "Client secret of the app registration.", secret=True, required=True),
        Option("authority", "https://login.microsoftonline.com", str, "Entra ID authority host (sovereign clouds: `https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`)."),
        Option("scope", DEFAULT_SCOPE, str, "Token scope (sovereign clouds: `https://monitor.azure.us//.default`, `https://monitor.azure.cn//.default`)."),
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, options)
        endpoint = str(options["endpoint"]).rstrip("/")
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"sink {name!r}: endpoint {endpoint!r} must be an https:// URL")
        dcr = str(options["dcr_immutable_id"]).strip()
        if not dcr.startswith("dcr-"):
            raise ConfigError(
                f"sink {name!r}: dcr_immutable_id {dcr!r} is not an immutable id (dcr-…; see "
                "the DCR's JSON view or the immutableId output of docs/sentinel/azuredeploy.json)"
            )
        stream = str(options["stream_name"]).strip()
        if not stream.startswith("Custom-"):
            raise ConfigError(
                f"sink {name!r}: stream_name {stream!r} must name a stream declaration (Custom-…)"
            )
        authority = str(options["authority"])
        if urlsplit(authority).scheme != "https":
            raise ConfigError(f"sink {name!r}: authority {authority!r} must be an https:// URL")
        self.url = (
            f"{endpoint}/dataCollectionRules/{quote(dcr, safe='')}/streams/"
            f"{quote(stream, safe='')}?api-version={API_VERSION}"
        )
        self._endpoint = endpoint
        self._clock = clock
        self._http = HttpClient(options, name)
        self._tokens = EntraTokenClient(
            self._http,
            authority=authority,
            tenant_id=str(options["tenant_id"]),
            client_id=str(options["client_id"]),
            client_secret=str(options["client_secret"]),
            scope=str(options["scope"]),
            clock=clock,
            log=log,
        )

    async def open(self) -> None:
        await self._http.open()

    async def close(self) -> None:
        await self._http.close()

    async def probe(self) -> str:
        """Get a token from Entra ID (the app's credentials) and reach the ingestion
        endpoint over TLS; nothing is uploaded (the DCR and the role assignment are only
        proven by the first upload: 404 or 403 then name them)."""
        await self._tokens.token()
        reached = await probe_reachable(self._http, self._endpoint)
        return f"Entra ID issued a token; {reached}"

    def record_size(self, record: SinkRecord) -> int:
        return len(encode_row(record)) + 1

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        failures: list[ItemFailure] = []
        chunks: list[tuple[list[int], bytes]] = []
        indices: list[int] = []
        rows: list[bytes] = []
        size = 1  # "[" and "]" less the comma the first row does not need
        for i, record in enumerate(batch):
            row = encode_row(record)
            if len(row) + 2 > MAX_REQUEST_BYTES:
                failures.append(
                    ItemFailure(
                        i,
                        f"record of {len(row)} bytes: over the {MAX_REQUEST_BYTES}-byte limit of "
                        "one Logs Ingestion call",
                        retryable=False,
                    )
                )
                continue
            if rows and size + len(row) + 1 > MAX_REQUEST_BYTES:
                chunks.append((indices, b"[" + b",".join(rows) + b"]"))
                indices, rows, size = [], [], 1
            indices.append(i)
            rows.append(row)
            size += len(row) + 1
        if rows:
            chunks.append((indices, b"[" + b",".join(rows) + b"]"))
        if failures:
            log.warning(
                "sentinel %s: %d record(s) over the request limit", self.name, len(failures)
            )

        if chunks:
            await self._tokens.token()  # an Entra ID failure fails the batch, before any call
        outcomes = await asyncio.gather(*(self._upload(body) for _, body in chunks))
        errors = [(idx, err) for (idx, _), err in zip(chunks, outcomes, strict=True) if err]
        if (
            errors
            and len(errors) == len(chunks)
            and not failures
            and len({err.retryable for _, err in errors}) == 1
        ):
            raise errors[0][1]  # nothing went through, and alike: the whole batch failed
        for idx, err in errors:
            failures.extend(
                ItemFailure(i, str(err), retryable=err.retryable, retry_after=err.retry_after)
                for i in idx
            )
        if not failures:
            return ACCEPTED
        return WriteResult(tuple(sorted(failures, key=lambda f: f.index)))

    async def _upload(self, body: bytes) -> SinkError | None:
        """Send one request; None when accepted, else the error (not raised)."""
        try:
            token = await self._tokens.token()
            resp, request_id = await self._post(body, token)
            if resp.status == 401:
                log.info("sentinel %s: HTTP 401, fetching a new token and retrying", self.name)
                self._tokens.invalidate(token)
                token = await self._tokens.token()
                resp, request_id = await self._post(body, token)
            if 200 <= resp.status <= 299:
                return None
            return self._error(resp, request_id)
        except SinkError as e:
            return e

    async def _post(self, body: bytes, token: str) -> tuple[HttpResponse, str]:
        request_id = str(uuid.uuid4())
        resp = await self._http.request(
            "POST",
            self.url,
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "x-ms-client-request-id": request_id,
            },
        )
        return resp, request_id

    def _error(self, resp: HttpResponse, request_id: str) -> SinkError:
        code = resp.headers.get("x-ms-error-code", "")
        message = ""
        try:
            err = orjson.loads(resp.body).get("error") if resp.body else None
            if isinstance(err, dict):
                code = str(err.get("code") or code)
                message = str(err.get("message") or "")
        except (ValueError, AttributeError):
            message = resp.text(200)
        detail = ": ".join(p for p in (code, message) if p)
        hint = {
            401: "the endpoint refused a freshly fetched token (check scope and authority)",
            403: "grant the app the Monitoring Metrics Publisher role on the DCR "
            "(assignments take up to 30 minutes)",
            404: "check endpoint and dcr_immutable_id",
            413: "request over the 1 MB limit",
        }.get(resp.status, "")
        text = f"Logs Ingestion API: HTTP {resp.status}" + (f": {detail}" if detail else "")
        text += (f" ({hint})" if hint else "") + f" [x-ms-client-request-id {request_id}]"
        log.warning("sentinel %s: %s", self.name, text)
        return SinkError(
            text,
            retryable=is_retryable_status(resp.status),
            retry_after=retry_after(resp.headers),
            status=resp.status,
        )

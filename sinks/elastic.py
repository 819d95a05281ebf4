"""Elasticsearch and OpenSearch: detections as ECS documents through the ``_bulk`` API.

One request per batch: ``POST {url}/{index}/_bulk`` with ``Content-Type:
application/x-ndjson``, a body of ``{"create": {"_id": <detection id>}}`` / document line
pairs, each line ending with ``\\n`` (the API refuses a body without the final newline).

* ``create`` is the only write a data stream takes, and with the detection id as ``_id``
  a retry is idempotent: an item answered ``409 version_conflict_engine_exception`` was
  indexed by an earlier attempt and counts as delivered (a duplicate avoided). Data streams
  accept a custom ``_id`` with ``create``; the check is per backing index, so a retry that
  lands after a rollover can still index a second copy.
* The answer is read even on HTTP 200: ``errors: true`` means some items failed. Items
  with 429 (``es_rejected_execution_exception``) or a 5xx status are retried, others
  (400 ``document_parsing_exception``/``mapper_parsing_exception``, 403, 404 …) are
  permanent; only those records are reported to the framework, by index.
* Whole-request statuses go through :func:`~falconet.sinks.http.raise_for_status`
  (401/403 permanent, 429/5xx retried). A 413 (over ``http.max_content_length``) splits
  the batch in halves and sends them; a single record still too large is permanent.
* ``url`` may list several nodes: on a connection failure the next one is tried
  (round-robin), and the sink stays on the node that answered.

The documents are built by :func:`falconet.sinks.ecs.to_ecs`; the data stream fields
``data_stream.type/dataset/namespace`` are added when ``index`` follows the
``{type}-{dataset}-{namespace}`` naming scheme.

:class:`OpenSearchSink` is the same code; the differences are in docs/sinks.md (an
``api_key`` is sent as given, OpenSearch has no built-in ``logs-*-*`` data stream template).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import orjson

from falconet.detection import json_bytes
from falconet.errors import ConfigError, SinkError

from . import ecs
from .base import ACCEPTED, BatchingSink, ItemFailure, Option, SinkRecord, WriteResult
from .http import HttpClient, HttpResponse, is_retryable_status, raise_for_status

__all__ = ["ElasticSink", "OpenSearchSink"]

DEFAULT_INDEX = "logs-falconet.detections-default"

# {type}-{dataset}-{namespace}: type and namespace without "-", dataset without "-"
_DATA_STREAM = re.compile(r"^(logs|metrics|traces|synthetics|profiling)-([^-]+)-([^-]+)$")
_BAD_INDEX = re.compile(r'[\\/*?"<>| ,#:A-Z]')


class ElasticSink(BatchingSink):
    """Elasticsearch ``_bulk`` into a data stream, documents in ECS."""

    kind: ClassVar[str] = "elasticsearch"
    summary: ClassVar[str] = "Elasticsearch _bulk API: ECS documents created in a data stream"
    product: ClassVar[str] = "Elasticsearch"
    uses_http: ClassVar[bool] = True
    max_batch_bytes: ClassVar[int] = 5 * 1024 * 1024
    default_batch_events: ClassVar[int] = 500
    options: ClassVar[tuple[Option, ...]] = (
        Option("url", [], list, "Node URL(s), comma-separated (`https://es1:9200,https://es2:9200`); on a connection failure the next is tried.", required=True),
        Option("index", DEFAULT_INDEX, str, "Data stream (or index) to write to; `{type}-{dataset}-{namespace}` names get the `data_stream.*` fields."),
        Option("api_key", "", str, "API key, sent as `Authorization: ApiKey <api_key>` (Elasticsearch: the `encoded` value, or `id:api_key`).", secret=True),
        Option("username", "", str, "User for HTTP Basic authentication (with `password`)."),
        Option("password", "", str, "Password of `username`.", secret=True),
        Option("pipeline", "", str, "Ingest pipeline to run on every document (`?pipeline=`); empty: the index's default."),
        Option("flatten_fields", True, bool, "Write `falco.output_fields` keys with `.` as `_`, so Falco fields cannot collide in the mapping."),
    )  # fmt: skip

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.log = logging.getLogger(f"falconet.sinks.{self.kind}")
        self._nodes = [_node_url(name, u) for u in options["url"]]
        if not self._nodes:
            raise ConfigError(f"sink {name!r}: url is required")
        index = str(options.get("index") or DEFAULT_INDEX)
        if _BAD_INDEX.search(index) or index.startswith(("-", "_", "+")) or index in (".", ".."):
            raise ConfigError(
                f"sink {name!r}: index {index!r} is not a valid {self.product} index or data "
                'stream name (lower case, no spaces or any of \\ / * ? " < > | , # :)'
            )
        self.index = index
        m = _DATA_STREAM.match(index)
        self._data_stream = (
            {"type": m.group(1), "dataset": m.group(2), "namespace": m.group(3)} if m else None
        )
        self._dataset = m.group(2) if m else "falconet.detections"
        self._flatten = bool(options.get("flatten_fields", True))
        self._headers = {
            "Content-Type": "application/x-ndjson",
            "Accept": "application/json",
            **self._auth(name, options),
        }
        query = {"pipeline": options["pipeline"]} if options.get("pipeline") else {}
        self._path = f"/{quote(index, safe='')}/_bulk" + (f"?{urlencode(query)}" if query else "")
        self._node = 0
        self._http: HttpClient | None = None
        self.duplicates = 0  # items answered 409 to our create: indexed by an earlier try
        # lines built by record_size(), by id() of the record (the record is kept alive)
        self._cache: dict[int, tuple[SinkRecord, bytes]] = {}
        self._cache_max = max(1024, 4 * int(options.get("batch_events") or 0))

    # -- configuration -------------------------------------------------------------------

    def _auth(self, name: str, options: Mapping[str, Any]) -> dict[str, str]:
        api_key = str(options.get("api_key") or "")
        user, password = str(options.get("username") or ""), str(options.get("password") or "")
        if api_key and (user or password):
            raise ConfigError(f"sink {name!r}: set api_key or username/password, not both")
        if api_key:
            return {"Authorization": f"ApiKey {self._api_key_value(api_key)}"}
        if user or password:
            if not (user and password):
                raise ConfigError(f"sink {name!r}: username and password go together")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        return {}

    def _api_key_value(self, api_key: str) -> str:
        """Elasticsearch takes base64("id:api_key"); the ``encoded`` value already is."""
        if ":" in api_key:
            return base64.b64encode(api_key.encode()).decode("ascii")
        return api_key

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._http is None:
            self._http = HttpClient(self.opts, self.name)
        await self._http.open()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def probe(self) -> str:
        """An empty ``_bulk`` request: the node authenticates and authorizes it before it
        refuses the empty body (400), so 401/403 name a credential or privilege problem and
        nothing is indexed."""
        resp = await self._post(b"")
        if resp.status in (401, 403):
            raise_for_status(resp, f"{self.product} _bulk")
        if resp.status >= 500:
            raise_for_status(resp, f"{self.product} _bulk")
        return (f"{self.product} {_host(self._nodes[self._node])} accepts the credentials "
                f"for {self._path.split('?')[0]} (empty request, nothing indexed)")  # fmt: skip

    # -- documents ---------------------------------------------------------------------------

    def document(self, record: SinkRecord, now: datetime | None = None) -> dict[str, Any]:
        """The ECS document of ``record`` (what is indexed)."""
        doc = ecs.to_ecs(record.obj, dataset=self._dataset, flatten_fields=self._flatten,
                         now=now)  # fmt: skip
        if "@timestamp" not in doc:  # never refused for it: the time we saw it
            doc["@timestamp"] = doc["event"]["created"]
        if self._data_stream is not None:
            doc["data_stream"] = dict(self._data_stream)
        return doc

    def lines(self, record: SinkRecord, now: datetime | None = None) -> bytes:
        """The action line and the document line of ``record``, each ending with ``\\n``."""
        action: dict[str, Any] = {"create": {"_id": record.id} if record.id else {}}
        return b"".join(
            (
                orjson.dumps(action),
                b"\n",
                _dumps(self.document(record, now)),
                b"\n",
            )
        )

    def record_size(self, record: SinkRecord) -> int:
        # the framework measures a record before it batches it: keep the lines for write()
        cached = self._cache.get(id(record))
        if cached is not None and cached[0] is record:
            return len(cached[1])
        data = self.lines(record)
        if len(self._cache) >= self._cache_max:
            self._cache.clear()
        self._cache[id(record)] = (record, data)
        return len(data)

    # -- delivery ------------------------------------------------------------------------------

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        if not batch:
            return ACCEPTED
        now = datetime.now(UTC)
        lines = []
        for r in batch:
            cached = self._cache.pop(id(r), None)
            lines.append(cached[1] if cached is not None and cached[0] is r else self.lines(r, now))
        failures = await self._send(batch, lines, 0)
        return WriteResult(tuple(failures)) if failures else ACCEPTED

    async def _send(
        self, batch: Sequence[SinkRecord], lines: list[bytes], first: int
    ) -> list[ItemFailure]:
        """Send ``lines`` (records ``first``.. of the batch); the failures, by batch index."""
        resp = await self._post(b"".join(lines))
        if resp.status == 413:
            if len(lines) > 1:
                half = len(lines) // 2
                self.log.info(
                    "sink %s: %d records over the server's size limit (413), sending halves",
                    self.name, len(lines),
                )  # fmt: skip
                left = await self._send(batch, lines[:half], first)
                return left + await self._send(batch, lines[half:], first + half)
            return [
                ItemFailure(
                    first,
                    f"HTTP 413: the record alone ({len(lines[0])} bytes) is over the "
                    "server's http.max_content_length",
                    retryable=False,
                )
            ]
        raise_for_status(resp, f"{self.product} _bulk")
        return self._items(resp, batch, len(lines), first)

    async def _post(self, body: bytes) -> HttpResponse:
        """POST to the current node; on a connection failure try the others in turn."""
        if self._http is None:
            await self.open()
        assert self._http is not None
        last: SinkError | None = None
        for _ in range(len(self._nodes)):
            url = self._nodes[self._node] + self._path
            try:
                return await self._http.request("POST", url, body=body, headers=self._headers)
            except SinkError as e:
                last = e
                if len(self._nodes) > 1:
                    self._node = (self._node + 1) % len(self._nodes)
                    self.log.warning(
                        "sink %s: %s; trying node %s", self.name, e, _host(self._nodes[self._node])
                    )
        assert last is not None
        raise last

    def _items(
        self, resp: HttpResponse, batch: Sequence[SinkRecord], count: int, first: int
    ) -> list[ItemFailure]:
        data = resp.json()
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != count:
            got = len(items) if isinstance(items, list) else "no"
            raise SinkError(
                f"{self.product} _bulk: HTTP {resp.status} with {got} items for {count} actions",
                retryable=True,
                status=resp.status,
            )
        if not data.get("errors"):
            return []
        failures: list[ItemFailure] = []
        dups = 0
        for i, item in enumerate(items):
            result = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
            status = int(result.get("status", 0) or 0) if isinstance(result, dict) else 0
            if 200 <= status <= 299:
                continue
            error = result.get("error") if isinstance(result, dict) else None
            etype, reason = _error_words(error)
            record = batch[first + i]
            if status == 409 and etype == "version_conflict_engine_exception" and record.id:
                dups += 1  # created by an earlier attempt: delivered
                continue
            failures.append(
                ItemFailure(
                    first + i,
                    f"{status} {etype}: {reason}"[:500],
                    retryable=status == 0 or is_retryable_status(status),
                )
            )
        if dups:
            self.duplicates += dups
            self.log.info(
                "sink %s: %d records already indexed by an earlier attempt (409)", self.name, dups
            )
        if failures:
            self.log.warning(
                "sink %s: %d of %d records refused (%d retryable); first: %s",
                self.name, len(failures), count, sum(f.retryable for f in failures),
                failures[0].reason,
            )  # fmt: skip
        return failures


class OpenSearchSink(ElasticSink):
    """OpenSearch ``_bulk``: the same requests and documents as :class:`ElasticSink`."""

    kind: ClassVar[str] = "opensearch"
    summary: ClassVar[str] = "OpenSearch _bulk API: ECS documents created in a data stream"
    product: ClassVar[str] = "OpenSearch"
    options: ClassVar[tuple[Option, ...]] = tuple(
        Option(o.key, o.default, o.kind, "API key (OpenSearch 3.7+), sent as `Authorization: ApiKey <api_key>`.", secret=True)
        if o.key == "api_key" else o
        for o in ElasticSink.options
    )  # fmt: skip

    def _api_key_value(self, api_key: str) -> str:
        return api_key  # an OpenSearch API key (os_…) is sent as it is


_dumps = json_bytes


def _error_words(error: Any) -> tuple[str, str]:
    if isinstance(error, dict):
        etype = str(error.get("type") or "error")
        reason = str(error.get("reason") or "")
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            reason = f"{reason} (caused by {cause.get('type')}: {cause.get('reason')})"
        return etype, reason
    return "error", str(error or "no error detail")


def _node_url(sink: str, url: str) -> str:
    u = url.strip().rstrip("/")
    p = urlsplit(u)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ConfigError(f"sink {sink!r}: url {url!r} must be http(s)://host[:port][/prefix]")
    if p.username or p.password:
        raise ConfigError(
            f"sink {sink!r}: put credentials in username/password or api_key, not in the url"
        )
    if p.query or p.fragment:
        raise ConfigError(f"sink {sink!r}: url {url!r} must not have a query or fragment")
    return u


def _host(url: str) -> str:
    p = urlsplit(url)
    return f"{p.hostname}:{p.port}" if p.port else str(p.hostname)

"""A local Elasticsearch / OpenSearch ``_bulk`` endpoint for the Elastic sink's tests.

It follows the Elasticsearch REST API reference for the Bulk API (``POST /_bulk``,
``POST /<target>/_bulk``, Elasticsearch 8.x "Bulk index or delete documents") and its data
stream rules ("Data streams": append-only, ``op_type: create``, ``@timestamp`` required),
and OpenSearch's "Bulk" and "Data streams" pages where they differ. What a real node
checks, this one checks:

* authentication: ``Authorization: ApiKey <key>`` or ``Basic <base64 user:password>``;
  missing or wrong -> 401 ``security_exception`` with ``WWW-Authenticate`` challenges;
  a known user without write privilege on the target -> 403 per item (as Elasticsearch
  answers index-level privilege failures inside the bulk response);
* ``Content-Type`` ``application/json`` or ``application/x-ndjson`` (``charset`` allowed),
  anything else -> 406; ``Content-Encoding: gzip`` bodies are inflated;
* ``http.max_content_length`` on the (inflated) body -> 413 with an empty body;
* the body: newline-delimited JSON, the last line ending with ``\\n`` (otherwise 400
  ``illegal_argument_exception`` "The bulk request must be terminated by a newline [\\n]"),
  an action line (``index``/``create``/``update``/``delete``, one key) followed by its
  document; a malformed action line -> 400 for the whole request; no ``_index`` and no
  index in the path -> 400 ``action_request_validation_exception``;
* per item: on a data stream (a name matching one of ``data_stream_patterns``; by default
  Elasticsearch's built-in ``logs-*-*``, ``metrics-*-*``, ``traces-*-*``, none for
  OpenSearch) only ``create`` -> otherwise 400 ``illegal_argument_exception``; a document
  that is not a JSON object -> 400; ``@timestamp`` missing or not a date on a data stream
  -> 400 ``document_parsing_exception`` (``mapper_parsing_exception`` for OpenSearch);
  a field that is an object in one document and a value in another (dynamic mapping, dots
  in names expanded as Elasticsearch does) -> 400 of the same type; ``create`` with an
  ``_id`` already in the index -> 409 ``version_conflict_engine_exception``; an unknown
  ``?pipeline=`` -> 400 per item;
* the answer: ``{"took", "errors", "items": [{"<action>": {"_index", "_id", "status",
  "result" | "error"}}]}`` in request order, ``_index`` the backing index of a data stream
  (``.ds-<name>-<yyyy.mm.dd>-000001``).

Faults to inject: :meth:`ElasticReceiver.fail_next` (whole-request status with an
Elasticsearch error body, e.g. 503 or 429 ``circuit_breaking_exception``) and
:meth:`ElasticReceiver.reject_items` (the next items answered 429
``es_rejected_execution_exception``, or any status/type given).

:func:`bench_target` is the hook of bench/sink_throughput.py (``--sink elasticsearch`` and
``--sink opensearch``).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from aiohttp import web

from . import in_thread, serve, server_tls

ES_DATA_STREAM_PATTERNS = ("logs-*-*", "metrics-*-*", "traces-*-*")
NEWLINE_REASON = "The bulk request must be terminated by a newline [\\n]"
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


@dataclass
class BulkCall:
    """One request the receiver answered."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes  # as inflated
    wire_bytes: int  # as sent
    status: int
    response: dict[str, Any] | None


@dataclass
class Stored:
    """One indexed document."""

    source: dict[str, Any]
    index: str  # the data stream or index name it was written to
    backing_index: str
    pipeline: str | None
    version: int = 1


@dataclass
class _Target:
    name: str
    data_stream: bool
    backing: str
    docs: dict[str, Stored] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # path -> "object" | "value"
    seq: int = 0


class ElasticReceiver:
    """An aiohttp server speaking the ``_bulk`` API; ``await start()`` gives its URL."""

    def __init__(
        self,
        *,
        flavor: str = "elasticsearch",
        api_keys: tuple[str, ...] = (),
        users: dict[str, str] | None = None,
        read_only_users: tuple[str, ...] = (),
        data_stream_patterns: tuple[str, ...] | None = None,
        pipelines: tuple[str, ...] = (),
        max_content_length: int = 100 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        assert flavor in ("elasticsearch", "opensearch")
        self.flavor = flavor
        self.api_keys = set(api_keys)
        self.users = dict(users or {})
        self.read_only_users = set(read_only_users)
        if data_stream_patterns is None:
            data_stream_patterns = ES_DATA_STREAM_PATTERNS if flavor == "elasticsearch" else ()
        self.data_stream_patterns = data_stream_patterns
        self.pipelines = set(pipelines)
        self.max_content_length = max_content_length
        self._ssl = ssl_context
        self.targets: dict[str, _Target] = {}
        self.calls: list[BulkCall] = []
        self._fail: deque[tuple[int, str, str]] = deque()
        self._reject: deque[tuple[int, str, str]] = deque()
        self._reject_ids: dict[str, tuple[int, str, str]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- control -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_post("/{target}/_bulk", self._bulk)
        self._runner, port = await serve(app, self._ssl)
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, status: int, etype: str = "", reason: str = "", times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and an error body."""
        default = {
            429: ("circuit_breaking_exception", "[parent] Data too large"),
            503: ("unavailable_shards_exception", "primary shard is not active"),
            500: ("exception", "internal error"),
        }.get(status, ("exception", "injected"))
        for _ in range(times):
            self._fail.append((status, etype or default[0], reason or default[1]))

    def reject_items(
        self,
        count: int,
        status: int = 429,
        etype: str = "",
        reason: str = "",
    ) -> None:
        """Answer the next ``count`` write items with ``status`` (default: rejected, 429)."""
        if status == 429:
            etype = etype or (
                "es_rejected_execution_exception"
                if self.flavor == "elasticsearch"
                else "rejected_execution_exception"
            )
            reason = reason or "rejected execution of coordinating operation [write queue full]"
        for _ in range(count):
            self._reject.append((status, etype or "exception", reason or "injected"))

    def reject_id(self, doc_id: str, status: int, etype: str, reason: str) -> None:
        """Answer the next write of ``_id`` ``doc_id`` with ``status`` (once)."""
        self._reject_ids[doc_id] = (status, etype, reason)

    def documents(self, name: str) -> dict[str, dict[str, Any]]:
        """The documents of data stream / index ``name`` by ``_id``."""
        t = self.targets.get(name)
        return {} if t is None else {k: v.source for k, v in t.docs.items()}

    def stored(self, name: str) -> dict[str, Stored]:
        t = self.targets.get(name)
        return {} if t is None else dict(t.docs)

    # -- the API ---------------------------------------------------------------------------

    def _error(self, status: int, etype: str, reason: str, **headers: str) -> web.Response:
        err = {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason}
        return web.json_response({"error": err, "status": status}, status=status,
                                 headers=headers)  # fmt: skip

    def _auth(self, request: web.Request) -> tuple[web.Response | None, str]:
        header = request.headers.get("Authorization", "")
        challenge = {
            "WWW-Authenticate": 'Basic realm="security" charset="UTF-8", ApiKey'
            if self.flavor == "elasticsearch"
            else 'Basic realm="OpenSearch Security"'
        }
        if not self.api_keys and not self.users:
            return None, ""
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if not header:
            reason = f"missing authentication credentials for REST request [{request.path}]"
            return self._error(401, "security_exception", reason, **challenge), ""
        if scheme == "ApiKey" and value in self.api_keys:
            return None, "api_key"
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", None  # type: ignore[assignment]
            if user and self.users.get(user) == password:
                return None, user
            reason = f"unable to authenticate user [{user}] for REST request [{request.path}]"
            return self._error(401, "security_exception", reason, **challenge), ""
        reason = (
            "unable to authenticate with provided credentials and anonymous access is not "
            f"allowed for this request [{request.path}]"
        )
        return self._error(401, "security_exception", reason, **challenge), ""

    async def _bulk(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        raw = await request.read()
        query = dict(request.query)
        headers = {k: v for k, v in request.headers.items()}
        wire = request.content_length if request.content_length is not None else len(raw)
        call = BulkCall(request.path, query, headers, b"", wire, 0, None)
        self.calls.append(call)
        resp = self._handle(request, raw, call, started)
        call.status = resp.status
        return resp

    def _handle(self, request: web.Request, raw: bytes, call: BulkCall,
                started: float) -> web.Response:  # fmt: skip
        denied, user = self._auth(request)
        if denied is not None:
            return denied
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "application/x-ndjson"):
            return web.json_response(
                {"error": f"Content-Type header [{ctype}] is not supported", "status": 406},
                status=406,
            )
        body = raw
        # aiohttp inflates gzip request bodies itself; inflate here if it did not
        if request.headers.get("Content-Encoding", "").lower() == "gzip" and raw[:2] == b"\x1f\x8b":
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError):
                return self._error(400, "illegal_argument_exception", "bad gzip content")
        call.body = body
        if len(body) > self.max_content_length:
            return web.Response(status=413)
        if self._fail:
            status, etype, reason = self._fail.popleft()
            return self._error(status, etype, reason)
        if not body:
            return self._error(400, "parse_exception", "request body is required")
        if not body.endswith(b"\n"):
            return self._error(400, "illegal_argument_exception", NEWLINE_REASON)
        path_index = request.match_info.get("target")
        default_pipeline = request.query.get("pipeline")
        lines = body.split(b"\n")[:-1]
        ops: list[tuple[str, dict[str, Any], bytes | None]] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            try:
                action = json.loads(line)
            except ValueError:
                return self._error(
                    400, "x_content_parse_exception", f"[{i + 1}:1] Unexpected character"
                )
            if not isinstance(action, dict) or len(action) != 1:
                return self._error(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i + 1}], expected START_OBJECT or "
                    "END_OBJECT",
                )
            op, meta = next(iter(action.items()))
            if op not in ("index", "create", "update", "delete") or not isinstance(meta, dict):
                return self._error(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i + 1}], expected field [create], "
                    f"[delete], [index] or [update] but found [{op}]",
                )
            unknown = set(meta) - {"_index", "_id", "pipeline", "routing", "require_alias",
                                   "if_seq_no", "if_primary_term", "dynamic_templates"}  # fmt: skip
            if unknown:
                return self._error(
                    400,
                    "illegal_argument_exception",
                    f"Action/metadata line [{i + 1}] contains an unknown parameter "
                    f"[{sorted(unknown)[0]}]",
                )
            doc: bytes | None = None
            if op != "delete":
                if i + 1 >= len(lines):
                    return self._error(400, "illegal_argument_exception", NEWLINE_REASON)
                doc = lines[i + 1]
                i += 2
            else:
                i += 1
            target = meta.get("_index") or path_index
            if not target:
                return self._error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            ops.append((op, meta, doc))
        items = [self._item(op, meta, doc, path_index, default_pipeline, user)
                 for op, meta, doc in ops]  # fmt: skip
        out = {
            "errors": any("error" in next(iter(it.values())) for it in items),
            "took": int((time.monotonic() - started) * 1000),
            "items": items,
        }
        call.response = out
        return web.json_response(out)

    def _target(self, name: str) -> _Target:
        t = self.targets.get(name)
        if t is None:
            ds = any(fnmatchcase(name, p) for p in self.data_stream_patterns)
            day = datetime.now(UTC).strftime("%Y.%m.%d")
            t = _Target(name, ds, f".ds-{name}-{day}-000001" if ds else name)
            self.targets[name] = t
        return t

    def _item(self, op: str, meta: dict[str, Any], doc_line: bytes | None,
              path_index: str | None, default_pipeline: str | None,
              user: str) -> dict[str, Any]:  # fmt: skip
        name = str(meta.get("_index") or path_index)
        t = self._target(name)
        doc_id = meta.get("_id")
        parsing = (
            "document_parsing_exception"
            if self.flavor == "elasticsearch"
            else "mapper_parsing_exception"
        )

        def fail(status: int, etype: str, reason: str) -> dict[str, Any]:
            err: dict[str, Any] = {"type": etype, "reason": reason}
            if etype not in ("illegal_argument_exception",):
                err.update({"index_uuid": "aAsFqTI0Tc2W0LCWgPNrOA", "shard": "0",
                            "index": t.backing})  # fmt: skip
            return {op: {"_index": t.backing, "_id": doc_id, "status": status, "error": err}}

        if user and user in self.read_only_users:
            return fail(
                403,
                "security_exception",
                f"action [indices:data/write/bulk[s]] is unauthorized for user [{user}] on "
                f"indices [{name}], this action is granted by the index privileges "
                "[create_doc,create,index,write,all]",
            )
        if t.data_stream and op != "create":
            return fail(
                400,
                "illegal_argument_exception",
                "only write ops with an op_type of create are allowed in data streams",
            )
        if op in ("delete", "update"):
            return fail(400, "illegal_argument_exception", f"{op} is not modelled here")
        pipeline = meta.get("pipeline") or default_pipeline
        if pipeline and pipeline not in self.pipelines:
            return fail(400, "illegal_argument_exception",
                        f"pipeline with id [{pipeline}] does not exist")  # fmt: skip
        if doc_id is not None and str(doc_id) in self._reject_ids:
            return fail(*self._reject_ids.pop(str(doc_id)))
        if self._reject:
            status, etype, reason = self._reject.popleft()
            return fail(status, etype, reason)
        try:
            source = json.loads(doc_line or b"")
        except ValueError:
            return fail(400, parsing, "[1:1] failed to parse: Unexpected character")
        if not isinstance(source, dict):
            return fail(400, parsing, "[1:1] failed to parse: root must be an object")
        if t.data_stream:
            ts = source.get("@timestamp")
            if ts is None:
                return fail(
                    400,
                    parsing,
                    "[1:2] failed to parse: data stream timestamp field [@timestamp] is missing",
                )
            if not (isinstance(ts, int) or (isinstance(ts, str) and _DATE.match(ts))):
                return fail(
                    400,
                    parsing,
                    f"[1:2] failed to parse field [@timestamp] of type [date] in document "
                    f"with id '{doc_id}'. Preview of field's value: '{ts}'",
                )
        conflict = _mapping_conflict(t.mapping, source)
        if conflict:
            return fail(400, parsing, conflict)
        if doc_id is None:
            doc_id = base64.urlsafe_b64encode(f"{name}:{t.seq}".encode()).decode()[:20]
        doc_id = str(doc_id)
        existing = t.docs.get(doc_id)
        if existing is not None and op == "create":
            return fail(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists (current version "
                f"[{existing.version}])",
            )
        _merge_mapping(t.mapping, source)
        version = existing.version + 1 if existing else 1
        t.docs[doc_id] = Stored(source, name, t.backing, pipeline, version)
        t.seq += 1
        return {
            op: {
                "_index": t.backing,
                "_id": doc_id,
                "_version": version,
                "result": "updated" if existing else "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": t.seq - 1,
                "_primary_term": 1,
                "status": 200 if existing else 201,
            }
        }


def _paths(source: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(path, "object" | "value") of every field, dotted names expanded into objects."""
    out: list[tuple[str, str]] = []
    for key, value in source.items():
        parts = key.split(".")
        for n in range(1, len(parts)):
            out.append((prefix + ".".join(parts[:n]), "object"))
        path = prefix + key
        if isinstance(value, dict):
            out.append((path, "object"))
            out.extend(_paths(value, path + "."))
        elif isinstance(value, list):
            objs = [v for v in value if isinstance(v, dict)]
            if objs:
                out.append((path, "object"))
                for v in objs:
                    out.extend(_paths(v, path + "."))
            elif value:
                out.append((path, "value"))
        elif value is not None:
            out.append((path, "value"))
    return out


def _mapping_conflict(mapping: dict[str, str], source: dict[str, Any]) -> str:
    seen: dict[str, str] = {}
    for path, kind in _paths(source):
        known = mapping.get(path) or seen.get(path)
        if known and known != kind:
            if kind == "value":
                return (
                    f"object mapping for [{path}] tried to parse field [{path}] as object, "
                    "but found a concrete value"
                )
            return f"can't merge a non object mapping [{path}] with an object mapping"
        seen[path] = kind
    return ""


def _merge_mapping(mapping: dict[str, str], source: dict[str, Any]) -> None:
    for path, kind in _paths(source):
        mapping.setdefault(path, kind)


@contextlib.asynccontextmanager
async def _running(rx: ElasticReceiver) -> AsyncIterator[ElasticReceiver]:
    await rx.start()
    try:
        yield rx
    finally:
        await rx.stop()


@contextlib.contextmanager
def bench_target(tmp: Path, kind: str = "elasticsearch") -> Iterator[tuple[dict[str, Any], Any]]:
    """Hook of bench/sink_throughput.py: a node of flavor ``kind`` over TLS with Basic
    authentication, the sink's options, and a count of the documents indexed (by ``_id``,
    so a retried detection counts once)."""
    ctx, ca_file = server_tls(tmp)
    password_file = tmp / "es-password"
    password_file.write_text("bench-s3cret")
    rx = ElasticReceiver(flavor=kind, users={"falconet": "bench-s3cret"}, ssl_context=ctx)
    with in_thread(_running(rx)) as (_, call):
        options = {"type": kind, "url": rx.url, "username": "falconet",
                   "password_file": str(password_file), "ca_file": str(ca_file)}  # fmt: skip
        yield options, lambda: call(lambda: sum(len(t.docs) for t in rx.targets.values()))

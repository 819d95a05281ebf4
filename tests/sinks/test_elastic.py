"""The Elasticsearch / OpenSearch sink against a local ``_bulk`` endpoint.

The receiver (tests/sinks/receivers/elastic.py) checks what a node checks: credentials,
content type, the final newline, action/document pairs, data stream rules (``create`` only,
``@timestamp``), ``_id`` conflicts, the size limit; it answers with the bulk response shape,
per-item errors included. The detections are alerts of the real Falco rules.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import trustme

from falconet.errors import ConfigError, SinkError
from falconet.sinks.base import ACCEPTED, SinkOptions, SinkRecord
from falconet.sinks.elastic import DEFAULT_INDEX, ElasticSink, OpenSearchSink
from falconet.sinks.http import HTTP_OPTIONS
from falconet.sinks.registry import destination
from tests.sinks.receivers.elastic import NEWLINE_REASON, ElasticReceiver
from tests.sinks.test_ecs import real_alerts

API_KEY_ID, API_KEY_SECRET = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
ENCODED = base64.b64encode(f"{API_KEY_ID}:{API_KEY_SECRET}".encode()).decode()


def records(n: int | None = None) -> list[SinkRecord]:
    alerts = list(real_alerts())
    if n is not None:
        alerts = (alerts * (n // len(alerts) + 1))[:n]
        # distinct detections: a new id per copy, as distinct events would have
        alerts = [{**a, "id": f"{a['id'][:24]}{i:08x}"} for i, a in enumerate(alerts)]
    return [SinkRecord.from_json(orjson.dumps(a), "falconet.detections.v1", 0, i)
            for i, a in enumerate(alerts)]  # fmt: skip


def make(cls: type[ElasticSink], name: str = "es", env: dict[str, str] | None = None,
         **yaml: Any) -> ElasticSink:  # fmt: skip
    opts = SinkOptions(name, HTTP_OPTIONS + cls.options, yaml, environ=env or {})
    return cls(name, opts)


def run(scenario: Callable[[ElasticReceiver], Awaitable[None]], **receiver: Any) -> ElasticReceiver:
    async def main() -> ElasticReceiver:
        rx = ElasticReceiver(**receiver)
        await rx.start()
        try:
            await scenario(rx)
        finally:
            await rx.stop()
        return rx

    return asyncio.run(main())


async def write(sink: ElasticSink, batch: list[SinkRecord]) -> Any:
    await sink.open()
    try:
        return await sink.write(batch)
    finally:
        await sink.close()


def api_key_sink(rx: ElasticReceiver, **yaml: Any) -> ElasticSink:
    env = {"FALCONET_SINK_ES_API_KEY": f"{API_KEY_ID}:{API_KEY_SECRET}"}
    return make(ElasticSink, env=env, url=rx.url, **yaml)


# -- happy path -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path, Path]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    d = tmp_path_factory.mktemp("pki")
    ca_file = d / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other = d / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    return server, ca_file, other


def test_batch_is_created_in_the_data_stream_as_ecs_over_tls(pki) -> None:
    server_ctx, ca_file, _ = pki
    batch = records()

    async def scenario(rx: ElasticReceiver) -> None:
        sink = api_key_sink(rx, ca_file=str(ca_file))
        assert await write(sink, batch) == ACCEPTED

    rx = run(scenario, api_keys=(ENCODED,), ssl_context=server_ctx)
    docs = rx.documents(DEFAULT_INDEX)
    assert set(docs) == {r.id for r in batch}  # the detection id is the _id
    for r in batch:
        doc = docs[r.id]
        assert doc["@timestamp"] == r.obj["time"]
        assert doc["event"]["kind"] == "alert" and doc["event"]["id"] == r.id
        assert doc["rule"]["name"] == r.obj["rule"]
        assert doc["message"] == r.obj["output"]
        assert doc["data_stream"] == {"type": "logs", "dataset": "falconet.detections",
                                      "namespace": "default"}  # fmt: skip
        assert doc["event"]["dataset"] == "falconet.detections"
    shell = next(r for r in batch if r.obj["rule"] == "Terminal shell in container")
    assert docs[shell.id]["process"]["name"] == "bash"
    assert docs[shell.id]["orchestrator"]["namespace"] == "shop"
    (call,) = rx.calls
    assert call.path == f"/{DEFAULT_INDEX}/_bulk" and call.status == 200
    assert call.headers["Content-Type"] == "application/x-ndjson"
    assert call.headers["Authorization"] == f"ApiKey {ENCODED}"
    assert call.body.endswith(b"\n") and call.body.count(b"\n") == 2 * len(batch)
    assert all(s.backing_index.startswith(f".ds-{DEFAULT_INDEX}-")
               for s in rx.stored(DEFAULT_INDEX).values())  # fmt: skip


def test_record_size_is_what_the_request_carries() -> None:
    batch = records(7)

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=rx.url)
        assert await write(sink, batch) == ACCEPTED
        assert sum(sink.record_size(r) for r in batch) == len(rx.calls[0].body)

    run(scenario)
    assert ElasticSink.max_batch_bytes == 5 * 1024 * 1024


def test_basic_auth_gzip_and_pipeline() -> None:
    batch = records(5)

    async def scenario(rx: ElasticReceiver) -> None:
        env = {"FALCONET_SINK_ES_PASSWORD": "s3cret"}
        sink = make(ElasticSink, env=env, url=rx.url, username="falconet", gzip=True,
                    pipeline="falconet-ecs")  # fmt: skip
        assert await write(sink, batch) == ACCEPTED

    rx = run(scenario, users={"falconet": "s3cret"}, pipelines=("falconet-ecs",))
    (call,) = rx.calls
    assert call.headers["Content-Encoding"] == "gzip"
    assert call.wire_bytes < len(call.body)
    assert call.query == {"pipeline": "falconet-ecs"}
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"falconet:s3cret").decode()
    stored = rx.stored(DEFAULT_INDEX)
    assert len(stored) == 5 and {s.pipeline for s in stored.values()} == {"falconet-ecs"}


# -- partial failures -------------------------------------------------------------------------


def test_only_failed_items_are_reported_with_their_index_and_kind() -> None:
    batch = records(6)
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        rx.reject_id(batch[1].id, 429, "es_rejected_execution_exception",
                     "rejected execution of coordinating operation")  # fmt: skip
        rx.reject_id(batch[4].id, 400, "document_parsing_exception",
                     "[1:120] failed to parse field [process.pid] of type [long]")  # fmt: skip
        rx.reject_id(batch[5].id, 503, "unavailable_shards_exception", "primary not active")
        sink = make(ElasticSink, url=rx.url)
        result["first"] = await write(sink, batch)
        # the framework retries the retryable ones only
        retry = [batch[f.index] for f in result["first"].failures if f.retryable]
        result["retry"] = await write(sink, retry)

    rx = run(scenario)
    first = result["first"]
    assert [(f.index, f.retryable) for f in first.failures] == [(1, True), (4, False), (5, True)]
    assert "es_rejected_execution_exception" in first.failures[0].reason
    assert first.failures[1].reason.startswith("400 document_parsing_exception: [1:120]")
    assert rx.calls[0].status == 200 and rx.calls[0].response["errors"] is True
    assert result["retry"] == ACCEPTED
    assert set(rx.documents(DEFAULT_INDEX)) == {r.id for i, r in enumerate(batch) if i != 4}


def test_a_retried_batch_counts_409_conflicts_as_delivered() -> None:
    batch = records(8)
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=rx.url)
        await sink.open()
        try:
            assert await sink.write(batch[:5]) == ACCEPTED
            # the answer was lost: the framework sends the whole batch again
            result["retry"] = await sink.write(batch)
            result["dups"] = sink.duplicates
        finally:
            await sink.close()

    rx = run(scenario)
    assert result["retry"] == ACCEPTED
    assert result["dups"] == 5
    items = rx.calls[1].response["items"]
    assert [i["create"]["status"] for i in items] == [409] * 5 + [201] * 3
    assert items[0]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert len(rx.documents(DEFAULT_INDEX)) == 8  # no second copy


def test_item_rejections_of_opensearch_are_classified_by_status() -> None:
    batch = records(4)
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        rx.reject_items(2)  # OpenSearch names it rejected_execution_exception
        sink = make(OpenSearchSink, url=rx.url)
        result["r"] = await write(sink, batch)

    run(scenario, flavor="opensearch")
    r = result["r"]
    assert [(f.index, f.retryable) for f in r.failures] == [(0, True), (1, True)]
    assert "429 rejected_execution_exception" in r.failures[0].reason


# -- whole-request failures -------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 500])
def test_whole_request_failures_are_retryable(status: int) -> None:
    batch = records(3)
    errors: list[SinkError] = []

    async def scenario(rx: ElasticReceiver) -> None:
        rx.fail_next(status)
        sink = make(ElasticSink, url=rx.url)
        await sink.open()
        try:
            with pytest.raises(SinkError) as e:
                await sink.write(batch)
            errors.append(e.value)
            assert await sink.write(batch) == ACCEPTED  # recovered
        finally:
            await sink.close()

    rx = run(scenario)
    assert errors[0].retryable and errors[0].status == status
    assert len(rx.documents(DEFAULT_INDEX)) == 3


@pytest.mark.parametrize(
    ("env", "yaml"),
    [
        ({"FALCONET_SINK_ES_API_KEY": "bm90OnRoZWtleQ=="}, {}),  # unknown key
        ({"FALCONET_SINK_ES_PASSWORD": "wrong"}, {"username": "falconet"}),
        ({}, {}),  # no credentials
    ],
)
def test_authentication_failures_are_permanent(env: dict[str, str], yaml: dict[str, str]) -> None:
    errors: list[SinkError] = []

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, env=env, url=rx.url, **yaml)
        with pytest.raises(SinkError) as e:
            await write(sink, records(2))
        errors.append(e.value)

    rx = run(scenario, api_keys=(ENCODED,), users={"falconet": "s3cret"})
    assert errors[0].status == 401 and not errors[0].retryable
    assert "security_exception" in str(errors[0])
    assert "wrong" not in str(errors[0])  # no secret in the message
    assert rx.documents(DEFAULT_INDEX) == {}


def test_missing_write_privilege_is_a_permanent_item_failure() -> None:
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        env = {"FALCONET_SINK_ES_PASSWORD": "viewer-pw"}
        sink = make(ElasticSink, env=env, url=rx.url, username="viewer")
        result["r"] = await write(sink, records(2))

    run(scenario, users={"viewer": "viewer-pw"}, read_only_users=("viewer",))
    assert [(f.index, f.retryable) for f in result["r"].failures] == [(0, False), (1, False)]
    assert "403 security_exception" in result["r"].failures[0].reason


def test_too_large_request_is_split_and_a_lone_oversize_record_is_permanent() -> None:
    batch = records(8)
    big = dict(batch[3].obj, output="x" * 20_000)
    batch[3] = SinkRecord.from_json(orjson.dumps(big))
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=rx.url)
        sizes = [sink.record_size(r) for r in batch]
        rx.max_content_length = 3 * max(s for i, s in enumerate(sizes) if i != 3)
        assert sizes[3] > rx.max_content_length
        result["r"] = await write(sink, batch)

    rx = run(scenario)
    r = result["r"]
    assert [(f.index, f.retryable) for f in r.failures] == [(3, False)]
    assert "413" in r.failures[0].reason
    assert set(rx.documents(DEFAULT_INDEX)) == {x.id for i, x in enumerate(batch) if i != 3}
    assert 413 in [c.status for c in rx.calls]


# -- nodes, TLS -------------------------------------------------------------------------------


def _dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}"


def test_round_robin_to_the_next_node_on_connection_failure() -> None:
    dead = _dead_url()

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=f"{dead},{rx.url}/")
        await sink.open()
        try:
            assert await sink.write(records(2)) == ACCEPTED
            assert await sink.write(records(3)[2:]) == ACCEPTED  # stays on the live node
        finally:
            await sink.close()
        # every node down: a retryable failure
        down = make(ElasticSink, url=f"{dead},{_dead_url()}")
        with pytest.raises(SinkError) as e:
            await write(down, records(1))
        assert e.value.retryable

    rx = run(scenario)
    assert len(rx.calls) == 2 and len(rx.documents(DEFAULT_INDEX)) == 3


def test_tls_with_an_untrusted_ca_is_refused(pki) -> None:
    server_ctx, _, other_ca = pki

    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=rx.url, ca_file=str(other_ca))
        with pytest.raises(SinkError, match="certificate"):
            await write(sink, records(1))

    rx = run(scenario, ssl_context=server_ctx)
    assert rx.calls == []


# -- OpenSearch ----------------------------------------------------------------------------------


def test_opensearch_kind_with_a_data_stream_template_and_api_key() -> None:
    batch = records(4)

    async def scenario(rx: ElasticReceiver) -> None:
        sink = destination("opensearch")
        assert sink is OpenSearchSink
        s = make(sink, name="os", env={"FALCONET_SINK_OS_API_KEY": "os_abc123"}, url=rx.url)
        assert await write(s, batch) == ACCEPTED

    rx = run(scenario, flavor="opensearch", api_keys=("os_abc123",),
             data_stream_patterns=("logs-falconet*",))  # fmt: skip
    assert rx.calls[0].headers["Authorization"] == "ApiKey os_abc123"  # as given
    assert rx.targets[DEFAULT_INDEX].data_stream
    assert len(rx.documents(DEFAULT_INDEX)) == 4
    assert destination("elasticsearch") is ElasticSink


def test_custom_index_without_data_stream_naming() -> None:
    async def scenario(rx: ElasticReceiver) -> None:
        sink = make(ElasticSink, url=rx.url, index="falco-alerts")
        assert await write(sink, records(2)) == ACCEPTED

    rx = run(scenario)
    docs = rx.documents("falco-alerts")
    assert len(docs) == 2 and all("data_stream" not in d for d in docs.values())


def test_flatten_fields_keeps_falco_fields_from_colliding_in_the_mapping() -> None:
    """``container.image`` and ``container.image.repository`` in one alert: with the dots
    kept, Elasticsearch cannot map the first as a value and an object at once."""
    base = records(1)[0].obj
    fields = dict(base["output_fields"], **{"container.image": "nginx:1.25.3"})
    rec = SinkRecord.from_json(orjson.dumps(dict(base, output_fields=fields)))
    result: dict[str, Any] = {}

    async def scenario(rx: ElasticReceiver) -> None:
        result["flat"] = await write(make(ElasticSink, url=rx.url, index="logs-a-default"), [rec])
        kept = make(ElasticSink, url=rx.url, index="logs-b-default", flatten_fields=False)
        result["kept"] = await write(kept, [rec])

    run(scenario)
    assert result["flat"] == ACCEPTED
    (f,) = result["kept"].failures
    assert not f.retryable and "document_parsing_exception" in f.reason


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "yaml", "message"),
    [
        ({"FALCONET_SINK_ES_API_KEY": "k"}, {"username": "u"}, "not both"),
        ({}, {"username": "u"}, "go together"),
        ({}, {"url": "es:9200"}, "http(s)://"),
        ({}, {"url": "https://u:p@es:9200"}, "not in the url"),
        ({}, {"index": "Logs-Bad"}, "not a valid"),
    ],
)
def test_configuration_errors(env: dict[str, str], yaml: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(ElasticSink, env=env, **{"url": "https://es:9200", **yaml})


def test_secrets_are_not_read_from_yaml() -> None:
    with pytest.raises(ConfigError, match="secret"):
        make(ElasticSink, url="https://es:9200", api_key="abc")


# -- the receiver itself: what the sink never sends is refused as Elasticsearch does ----------


def test_receiver_refuses_what_elasticsearch_refuses() -> None:
    async def scenario(rx: ElasticReceiver) -> None:
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes, ctype: str = "application/x-ndjson") -> Any:
                async with http.post(f"{rx.url}/{DEFAULT_INDEX}/_bulk", data=body,
                                     headers={"Content-Type": ctype}) as r:  # fmt: skip
                    return r.status, await r.json(content_type=None)

            doc = b'{"@timestamp":"2024-06-10T06:13:20.001500000Z","a":1}'
            status, body = await post(b'{"create":{}}\n' + doc)  # no final newline
            assert status == 400 and body["error"]["reason"] == NEWLINE_REASON
            status, _ = await post(b'{"create":{}}\n' + doc + b"\n", "text/plain")
            assert status == 406
            status, body = await post(b'{"index":{}}\n' + doc + b"\n")
            item = body["items"][0]["index"]
            assert (status, item["status"]) == (200, 400)
            assert "op_type of create" in item["error"]["reason"]
            status, body = await post(b'{"create":{}}\n{"a":1}\n')
            assert "[@timestamp] is missing" in body["items"][0]["create"]["error"]["reason"]
            status, body = await post(b'{"create":{"_id":"x"}}\n' + doc + b"\n")
            assert body["items"][0]["create"]["status"] == 201
            gz = gzip.compress(b'{"create":{"_id":"x"}}\n' + doc + b"\n")
            async with http.post(f"{rx.url}/_bulk", data=gz, headers={
                    "Content-Type": "application/json", "Content-Encoding": "gzip"}) as r:  # fmt: skip
                assert r.status == 400  # no _index and none in the path
            async with http.post(f"{rx.url}/{DEFAULT_INDEX}/_bulk", data=gz, headers={
                    "Content-Type": "application/json", "Content-Encoding": "gzip"}) as r:  # fmt: skip
                item = (await r.json())["items"][0]["create"]
                assert item["status"] == 409
                assert item["error"]["type"] == "version_conflict_engine_exception"

    run(scenario)


def test_check_proves_credentials_with_an_empty_request() -> None:
    """`falconet sink --check`: an empty _bulk request is authenticated, then refused for its
    body; good credentials pass, wrong ones are named, nothing is indexed."""

    async def probe(sink: ElasticSink) -> str:
        await sink.open()
        try:
            return await sink.probe()
        finally:
            await sink.close()

    async def scenario(rx: ElasticReceiver) -> None:
        assert "accepts the credentials" in await probe(api_key_sink(rx))
        wrong = make(ElasticSink, env={"FALCONET_SINK_ES_PASSWORD": "wrong"}, url=rx.url,
                     username="falconet")  # fmt: skip
        with pytest.raises(SinkError) as e:
            await probe(wrong)
        assert e.value.status == 401 and not e.value.retryable

    rx = run(scenario, api_keys=(ENCODED,), users={"falconet": "s3cret"})
    assert rx.documents(DEFAULT_INDEX) == {}

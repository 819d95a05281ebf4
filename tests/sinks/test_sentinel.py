"""The Sentinel sink against a local Entra ID + Logs Ingestion API (tests/sinks/receivers)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from falconet import timefmt
from falconet.detection import Detection, detection_id
from falconet.errors import ConfigError, SinkError
from falconet.priority import Priority
from falconet.sinks.base import SinkOptions, SinkRecord
from falconet.sinks.http import HTTP_OPTIONS
from falconet.sinks.registry import destination
from falconet.sinks.sentinel import (
    COLUMNS,
    MAX_REQUEST_BYTES,
    SentinelSink,
    encode_row,
    to_row,
)
from tests.conftest import ROOT
from tests.sinks.receivers.sentinel import SentinelReceiver, _fits

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "535fb089-9ff3-47b6-9bfb-4f1264799865"
SECRET = "Xq8~sample.Secret-value_with+odd&chars="
DCR = "dcr-000a00a000a00000a000000aa000a0aa"
STREAM = "Custom-FalconetDetections"
T0 = 1_763_790_000_123_456_789  # 2025-11-22T05:40:00.123456789Z


class Clock:
    """A monotonic clock the test moves by hand (shared by the sink and the receiver)."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, str]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(ctx)
    d = tmp_path_factory.mktemp("sentinel-tls")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(d / "other-ca.pem"))
    return ctx, str(d / "ca.pem"), str(d / "other-ca.pem")


def record(i: int, pad: int = 0, priority: Priority = Priority.NOTICE) -> SinkRecord:
    ts = T0 + i * 1_000
    rule = "Terminal shell in container"
    d = Detection(
        time=timefmt.iso8601_z(ts),
        rule=rule,
        priority=priority,
        output=f"A shell was spawned in a container (user=root shell=bash n={i})" + "x" * pad,
        output_fields={"evt.time": ts, "proc.name": "bash", "user.name": "root", "proc.pid": 4242},
        source="syscall",
        tags=("container", "shell", "mitre_execution", "T1059"),
        hostname="node-1",
        id=detection_id(rule, f"ev-{i}"),
        event_id=f"ev-{i}",
        ts=ts,
        enrichment={"k8s": {"ns.name": "default", "pod.name": "web-1"}},
    )
    return SinkRecord.from_json(d.to_json(), "falconet.detections.v1", 0, i)


def make_sink(tls: tuple[Any, str, str], url: str, clock: Clock, **over: Any) -> SentinelSink:
    secret = over.pop("secret", SECRET)
    yaml = {
        "endpoint": url,
        "dcr_immutable_id": DCR,
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "authority": url,
        "ca_file": tls[1],
        **over,
    }
    env = {"FALCONET_SINK_SOC_CLIENT_SECRET": secret}
    opts = SinkOptions("soc", HTTP_OPTIONS + SentinelSink.options, yaml, environ=env)
    return SentinelSink("soc", opts, clock=clock)


@asynccontextmanager
async def service(
    tls: tuple[Any, str, str], clock: Clock, *, expires_in: int = 3599, **over: Any
) -> AsyncIterator[tuple[SentinelReceiver, SentinelSink]]:
    async with SentinelReceiver(
        tls[0],
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=SECRET,
        dcr_immutable_id=DCR,
        streams={STREAM: dict(COLUMNS)},
        expires_in=expires_in,
        clock=clock,
    ) as receiver:
        sink = make_sink(tls, receiver.url, clock, **over)
        await sink.open()
        try:
            yield receiver, sink
        finally:
            await sink.close()


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(fn())


# --- delivery -------------------------------------------------------------------------


def test_records_arrive_as_rows_of_the_declared_columns(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            batch = [record(0), record(1, priority=Priority.CRITICAL), record(2)]
            assert (await sink.write(batch)).ok
            assert rx.statuses == [204]
            call = rx.calls[0]
            assert call.headers["Content-Type"] == "application/json"
            assert re.fullmatch(r"[0-9a-f-]{36}", call.headers["x-ms-client-request-id"])
            assert not rx.dropped_columns
            assert [r["DetectionId"] for r in rx.rows] == [r.id for r in batch]
            assert rx.rows[0] == {
                "TimeGenerated": "2025-11-22T05:40:00.1234567Z",
                "Rule": "Terminal shell in container",
                "Priority": "Notice",
                "Severity": "Low",
                "Output": "A shell was spawned in a container (user=root shell=bash n=0)",
                "Source": "syscall",
                "Hostname": "node-1",
                "Tags": ["container", "shell", "mitre_execution", "T1059"],
                "OutputFields": {
                    "evt.time": T0,
                    "proc.name": "bash",
                    "user.name": "root",
                    "proc.pid": 4242,
                },
                "DetectionId": batch[0].id,
                "EventId": "ev-0",
                "Enrichment": {"k8s": {"ns.name": "default", "pod.name": "web-1"}},
                "Dedup": None,
            }
            assert rx.rows[1]["Severity"] == "High"

    run(scenario)


def test_gzip_bodies_are_sent_compressed(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock(), gzip=True) as (rx, sink):
            batch = [record(i, pad=500) for i in range(50)]
            assert (await sink.write(batch)).ok
            (call,) = rx.calls
            assert call.gzip and call.headers["Content-Encoding"] == "gzip"
            assert call.wire_bytes < call.body_bytes
            assert [r["EventId"] for r in rx.rows] == [f"ev-{i}" for i in range(50)]

    run(scenario)


def test_folded_repeats_keep_their_count(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            r = record(0)
            obj = dict(r.obj, dedup={"count": 5, "first_time": r.obj["time"], "last_time": "x"})
            folded = SinkRecord(obj, r.detection, r.raw)
            assert (await sink.write([folded])).ok
            assert rx.rows[0]["Dedup"]["count"] == 5

    run(scenario)


# --- the token ------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            for i in range(3):
                assert (await sink.write([record(i)])).ok
            assert len(rx.token_requests) == 1
            form = rx.token_requests[0]
            assert form == {
                "grant_type": "client_credentials",
                "client_id": CLIENT,
                "client_secret": "***",  # the receiver checked the real one
                "scope": "https://monitor.azure.com//.default",
            }
            assert rx.statuses == [204, 204, 204]

    run(scenario)


def test_token_is_refreshed_before_it_expires(tls: Any) -> None:
    clock = Clock()

    async def scenario() -> None:
        async with service(tls, clock, expires_in=60) as (rx, sink):
            assert (await sink.write([record(0)])).ok
            clock.advance(29)
            assert (await sink.write([record(1)])).ok
            assert len(rx.token_requests) == 1
            clock.advance(2)  # 31 s: inside the refresh margin, still valid at the service
            assert (await sink.write([record(2)])).ok
            assert len(rx.token_requests) == 2
            assert rx.statuses == [204, 204, 204]  # never refused: refreshed ahead of time

    run(scenario)


def test_a_401_fetches_a_new_token_and_retries_once(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            assert (await sink.write([record(0)])).ok
            rx.expire_tokens()  # e.g. revoked: the cached token is refused
            assert (await sink.write([record(1)])).ok
            assert rx.statuses == [204, 401, 204]
            assert len(rx.token_requests) == 2
            assert [r["EventId"] for r in rx.rows] == ["ev-0", "ev-1"]

    run(scenario)


def test_a_401_with_a_fresh_token_is_permanent(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            rx.fail_ingestion(401, times=2, code="InvalidAuthenticationToken")
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert not e.value.retryable and e.value.status == 401
            assert "InvalidAuthenticationToken" in str(e.value)
            assert rx.statuses == [401, 401]  # one retry, no loop
            assert len(rx.token_requests) == 2

    run(scenario)


@pytest.mark.parametrize(
    ("override", "error", "aadsts"),
    [
        ({"secret": "wrong-secret"}, "invalid_client", "AADSTS7000215"),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, "unauthorized_client", "AADSTS700016"),
        ({"tenant_id": "no-such-tenant"}, "invalid_request", "AADSTS90002"),
        ({"scope": "https://monitor.azure.com/.default/x"}, "invalid_scope", "AADSTS70011"),
    ],
)  # fmt: skip
def test_entra_refusals_are_permanent_with_the_aadsts_code(
    tls: Any, override: dict[str, str], error: str, aadsts: str
) -> None:
    async def scenario() -> None:
        async with service(tls, Clock(), **override) as (rx, sink):
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            text = str(e.value)
            assert not e.value.retryable
            assert error in text and aadsts in text
            assert "Trace ID" not in text  # the first line of the description only
            assert SECRET not in text and "wrong-secret" not in text
            assert rx.calls == []  # nothing sent without a token
            assert len(rx.token_requests) == 1  # one try per batch, not one per request

    run(scenario)


def test_entra_outage_is_retryable(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            rx.fail_token(503, retry_after="3")
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert e.value.retryable and e.value.retry_after == 3.0
            assert (await sink.write([record(0)])).ok  # recovered

    run(scenario)


# --- service answers ------------------------------------------------------------------


def test_429_is_retryable_after_the_delay_it_asks(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            rx.fail_ingestion(429, retry_after="7", code="TooManyRequests")
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert e.value.retryable and e.value.retry_after == 7.0 and e.value.status == 429
            assert (await sink.write([record(0)])).ok
            assert rx.statuses == [429, 204]

    run(scenario)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable(tls: Any, status: int) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            rx.fail_ingestion(status, code="ServiceUnavailable")
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert e.value.retryable and e.value.status == status

    run(scenario)


@pytest.mark.parametrize(
    ("over", "status", "code"),
    [
        ({"dcr_immutable_id": "dcr-ffffffffffffffffffffffffffffffff"}, 404, "NotFound"),
        ({"stream_name": "Custom-SomethingElse"}, 400, "InvalidStream"),
    ],
)
def test_client_errors_are_permanent_with_the_service_code(
    tls: Any, over: dict[str, str], status: int, code: str
) -> None:
    async def scenario() -> None:
        async with service(tls, Clock(), **over) as (rx, sink):
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert not e.value.retryable and e.value.status == status
            assert code in str(e.value) and "x-ms-client-request-id" in str(e.value)

    run(scenario)


def test_403_names_the_missing_role(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            rx.fail_ingestion(403, code="Forbidden", message="The client lacks permission.")
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert not e.value.retryable
            assert "Forbidden" in str(e.value) and "Monitoring Metrics Publisher" in str(e.value)

    run(scenario)


def test_untrusted_certificate_is_refused(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock(), ca_file=tls[2]) as (rx, sink):
            with pytest.raises(SinkError) as e:
                await sink.write([record(0)])
            assert "certificate" in str(e.value).lower()
            assert rx.token_requests == [] and rx.calls == []

    run(scenario)


# --- the 1 MB limit -------------------------------------------------------------------


def test_large_batches_are_split_under_the_limit(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            batch = [record(i, pad=2_000) for i in range(1_200)]  # ~2.6 MB of rows
            assert (await sink.write(batch)).ok
            assert len(rx.calls) >= 3
            assert all(c.status == 204 for c in rx.calls)
            assert max(c.body_bytes for c in rx.calls) <= MAX_REQUEST_BYTES
            assert sorted(r["DetectionId"] for r in rx.rows) == sorted(r.id for r in batch)

    run(scenario)


def test_a_batch_cut_by_record_size_fits_one_request(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            batch, total = [], 0
            for i in range(10_000):  # what the framework does: sum(record_size) <= the cap
                r = record(i, pad=3_000 + i % 7)
                if total + sink.record_size(r) > sink.max_batch_bytes:
                    break
                batch.append(r)
                total += sink.record_size(r)
            assert total > sink.max_batch_bytes - 4_000  # full: the next record did not fit
            assert sink.record_size(batch[0]) == len(encode_row(batch[0])) + 1
            assert (await sink.write(batch)).ok
            assert len(rx.calls) == 1
            assert rx.calls[0].body_bytes == total + 1 <= MAX_REQUEST_BYTES  # "[" rows "]"

    run(scenario)


def test_a_record_over_the_limit_fails_alone_and_for_good(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            batch = [record(0), record(1, pad=MAX_REQUEST_BYTES), record(2)]
            result = await sink.write(batch)
            (failure,) = result.failures
            assert failure.index == 1 and not failure.retryable
            assert "limit" in failure.reason
            assert rx.statuses == [204]  # no doomed request
            assert [r["EventId"] for r in rx.rows] == ["ev-0", "ev-2"]

    run(scenario)


def test_when_one_request_of_a_batch_fails_only_its_records_are_retried(tls: Any) -> None:
    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            batch = [record(i, pad=2_000) for i in range(1_200)]
            rx.fail_ingestion(500, code="InternalServerError")
            result = await sink.write(batch)
            failed = {f.index for f in result.failures}
            accepted = {r["EventId"] for r in rx.rows}
            assert failed and all(f.retryable for f in result.failures)
            assert failed == {i for i in range(1_200) if f"ev-{i}" not in accepted}
            retry = await sink.write([batch[i] for i in sorted(failed)])
            assert retry.ok
            assert sorted(r["EventId"] for r in rx.rows) == sorted(f"ev-{i}" for i in range(1_200))

    run(scenario)


# --- the shipped table and DCR --------------------------------------------------------

DOCS = ROOT / "docs" / "sentinel"
RESERVED = {"_resourceid", "id", "_subscriptionid", "tenantid", "type", "uniqueid", "title"}


def _template() -> dict[str, Any]:
    return json.loads((DOCS / "azuredeploy.json").read_text())


def _resource(tpl: dict[str, Any], kind: str) -> dict[str, Any]:
    (res,) = [r for r in tpl["resources"] if r["type"] == kind]
    return res


def test_shipped_dcr_declares_exactly_the_columns_we_send() -> None:
    dcr = _resource(_template(), "Microsoft.Insights/dataCollectionRules")
    assert dcr["kind"] == "Direct"
    props = dcr["properties"]
    (stream,) = props["streamDeclarations"]
    declared = {c["name"]: c["type"] for c in props["streamDeclarations"][stream]["columns"]}
    assert stream == SentinelSink.options[2].default == STREAM
    assert declared == COLUMNS
    assert set(to_row(record(0))) == set(COLUMNS)
    (flow,) = props["dataFlows"]
    assert flow["streams"] == [stream] and flow["transformKql"] == "source"
    assert flow["outputStream"] == "Custom-FalconetDetections_CL"
    names = {d["name"] for d in props["destinations"]["logAnalytics"]}
    assert flow["destinations"][0] in names


def test_shipped_table_has_the_columns_of_the_stream() -> None:
    table = _resource(_template(), "Microsoft.OperationalInsights/workspaces/tables")
    schema = table["properties"]["schema"]
    columns = {c["name"]: c["type"] for c in schema["columns"]}
    # the tables API spells datetime "dateTime"; transformKql "source" needs equal types
    assert {k: v.lower() for k, v in columns.items()} == COLUMNS
    assert schema["name"] == "[variables('tableName')]"
    assert _template()["variables"]["tableName"] == "FalconetDetections_CL"
    for name in columns:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,44}", name), name
        assert name.lower() not in RESERVED, name


def _bicep_columns(var: str) -> dict[str, str]:
    text = (DOCS / "main.bicep").read_text()
    block = re.search(rf"^var {var} = \[\n(.*?)^\]", text, re.S | re.M)
    assert block, var
    pairs = re.findall(r"name: '([^']+)'\s+type: '([^']+)'", block.group(1))
    return dict(pairs)


def test_shipped_bicep_declares_the_same_columns() -> None:
    assert _bicep_columns("streamColumns") == COLUMNS
    table = _bicep_columns("tableColumns")
    assert list(table) == list(COLUMNS)
    assert {k: v.lower() for k, v in table.items()} == COLUMNS
    text = (DOCS / "main.bicep").read_text()
    assert "var streamName = '" + STREAM + "'" in text
    assert "transformKql: 'source'" in text


def test_sample_records_match_the_stream_declaration() -> None:
    sample = json.loads((DOCS / "sample-records.json").read_text())
    assert isinstance(sample, list) and sample
    for row in sample:
        assert list(row) == list(COLUMNS)
        assert all(_fits(COLUMNS[k], v) for k, v in row.items()), row


# --- configuration --------------------------------------------------------------------


def test_registry_finds_the_sink() -> None:
    assert destination("sentinel") is SentinelSink
    assert SentinelSink.uses_http and SentinelSink.max_batch_bytes < MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"endpoint": "http://dce.example"}, "https://"),
        ({"dcr_immutable_id": "falconet-dcr"}, "dcr-"),
        ({"stream_name": "FalconetDetections_CL"}, "Custom-"),
    ],
)
def test_bad_settings_are_config_errors(tls: Any, over: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        make_sink(tls, "https://dce.example", Clock(), **over)


def test_the_secret_comes_only_from_the_environment_or_a_file(tls: Any, tmp_path: Path) -> None:
    base = {
        "endpoint": "https://x",
        "dcr_immutable_id": DCR,
        "tenant_id": TENANT,
        "client_id": CLIENT,
    }
    options = HTTP_OPTIONS + SentinelSink.options
    with pytest.raises(ConfigError, match="client_secret"):
        SinkOptions("soc", options, base, environ={})
    with pytest.raises(ConfigError, match="secret"):
        SinkOptions("soc", options, {**base, "client_secret": "inline"}, environ={})
    (tmp_path / "secret").write_text(SECRET + "\n")
    opts = SinkOptions("soc", options, {**base, "client_secret_file": str(tmp_path / "secret")}, environ={})  # fmt: skip
    assert opts["client_secret"] == SECRET and SECRET not in repr(opts)


# --- the receiver refuses what the service refuses --------------------------------------


def test_receiver_enforces_the_service_rules(tls: Any) -> None:
    from falconet.sinks.http import HttpClient

    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            token = await sink._tokens.token()
            url = f"{rx.url}/dataCollectionRules/{DCR}/streams/{STREAM}?api-version=2023-01-01"
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            async with HttpClient({"ca_file": tls[1]}) as http:

                async def post(body: bytes, headers: dict[str, str], u: str = url) -> int:
                    return (await http.request("POST", u, body=body, headers=headers)).status

                row = to_row(record(0))
                ok = json.dumps([row]).encode()
                assert await post(ok, auth) == 204
                assert await post(ok, {"Content-Type": "application/json"}) == 401
                assert await post(ok, auth, url.replace("2023-01-01", "2021-11-01")) == 400
                assert await post(ok, {**auth, "Content-Type": "text/plain"}) == 415
                assert await post(b'{"not": "an array"}', auth) == 400
                assert await post(json.dumps([{**row, "Priority": 4}]).encode(), auth) == 400
                big = json.dumps([{**row, "Output": "x" * (1024 * 1024)}]).encode()
                assert await post(big, auth) == 413
                assert await post(json.dumps([{**row, "Extra": 1}]).encode(), auth) == 204
                assert rx.dropped_columns == {"Extra"}
                assert "Extra" not in rx.rows[-1]

    run(scenario)


def test_check_gets_a_token_and_reaches_the_endpoint_without_uploading(tls: Any) -> None:
    """`falconet sink --check`: the app's credentials get a token and the ingestion
    endpoint answers over TLS; nothing is uploaded. A wrong secret is named."""

    async def scenario() -> None:
        async with service(tls, Clock()) as (rx, sink):
            assert "Entra ID issued a token" in await sink.probe()
            assert rx.calls == [] and len(rx.token_requests) == 1
        async with service(tls, Clock(), secret="wrong-secret") as (rx, sink):
            with pytest.raises(SinkError, match="AADSTS7000215") as e:
                await sink.probe()
            assert not e.value.retryable

    run(scenario)

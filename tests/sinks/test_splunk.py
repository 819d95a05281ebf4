"""The Splunk HEC sink against a local HTTP Event Collector over TLS (receivers/splunk.py)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from falconet.detection import Detection, detection_id
from falconet.errors import ConfigError, SinkError
from falconet.priority import Priority
from falconet.sinks.base import ACCEPTED, SinkOptions, SinkRecord, WriteResult
from falconet.sinks.http import HTTP_OPTIONS
from falconet.sinks.splunk import SplunkSink
from tests.sinks.receivers.splunk import HecReceiver, HecToken

TOKEN = "0b2f1c7e-4d7a-4e55-9d0e-8f4b1c2a3d4e"
ACK_TOKEN = "6f0d8f4a-1111-4a2b-8c3d-9e8f7a6b5c4d"
OFF_TOKEN = "disabled-token"
TS = 1_718_000_000_123_456_789


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("hec") / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    return server, ca_file


def tokens() -> dict[str, HecToken]:
    return {
        TOKEN: HecToken(indexes=("security", "main")),
        ACK_TOKEN: HecToken(ack=True),
        OFF_TOKEN: HecToken(enabled=False),
    }


def record(n: int, host: str = "node-a", pad: int = 0) -> SinkRecord:
    rule = "Write below etc"
    fields: dict[str, Any] = {"evt.time": TS + n * 1000, "proc.name": "cat", "fd.name": "/etc/x"}
    if pad:
        fields["pad"] = "x" * pad
    d = Detection(
        time="2024-06-10T06:13:20.123456789Z", rule=rule, priority=Priority.parse("Warning"),
        output=f"write below etc (n={n})", output_fields=fields, source="syscall",
        tags=("filesystem", "T1565"), hostname=host, id=detection_id(rule, f"e{n}"),
        event_id=f"e{n}", ts=TS + n * 1000,
    )  # fmt: skip
    return SinkRecord.from_json(d.to_json(), "falconet.detections.v1", 0, n)


def sink(url: str, ca_file: Path, token: str = TOKEN, **yaml: Any) -> SplunkSink:
    opts = SinkOptions(
        "soc",
        HTTP_OPTIONS + SplunkSink.options,
        {"url": url, "ca_file": str(ca_file), **yaml},
        environ={"FALCONET_SINK_SOC_TOKEN": token},
    )
    return SplunkSink("soc", opts)


def run(
    tls: tuple[ssl.SSLContext, Path],
    scenario: Callable[[HecReceiver, Path], Awaitable[None]],
    **receiver: Any,
) -> None:
    async def main() -> None:
        async with HecReceiver(tokens(), tls[0], **receiver) as hec:
            await scenario(hec, tls[1])

    asyncio.run(main())


async def write(s: SplunkSink, batch: list[SinkRecord]) -> WriteResult:
    await s.open()
    try:
        return await s.write(batch)
    finally:
        await s.close()


def ids(hec: HecReceiver) -> list[str]:
    return [i.envelope["event"]["event_id"] for i in hec.indexed]


def test_delivers_hec_envelopes_with_the_alert_as_event(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(0), record(1, host="node-b"), record(2)]
        s = sink(hec.url + "/services/collector", ca, index="security")
        assert await write(s, batch) is ACCEPTED
        assert ids(hec) == ["e0", "e1", "e2"]
        first, second = hec.indexed[0], hec.indexed[1]
        assert first.envelope["event"] == batch[0].obj
        assert first.envelope["time"] == pytest.approx(1_718_000_000.123456, abs=1e-6)
        assert isinstance(first.envelope["time"], float)
        assert (first.envelope["host"], second.envelope["host"]) == ("node-a", "node-b")
        assert first.envelope["sourcetype"] == "falconet:detection"
        assert first.envelope["source"] == "falconet"
        assert first.index == "security" and first.channel is None
        assert hec.statuses == [200]
        assert s.record_size(batch[0]) == len(s.envelope(batch[0]))

    run(tls, scenario)


def test_host_and_metadata_options_override_the_defaults(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        s = sink(hec.url, ca, host="falconet-sink", sourcetype="_json", source="k8s-prod")
        assert await write(s, [record(0)]) is ACCEPTED
        env = hec.indexed[0].envelope
        assert (env["host"], env["sourcetype"], env["source"]) == (
            "falconet-sink",
            "_json",
            "k8s-prod",
        )
        assert "index" not in env and hec.indexed[0].index == "main"

    run(tls, scenario)


def test_indexer_acknowledgement_confirms_the_batch(tls) -> None:
    channel = "2c1e9a0e-5b7c-4d3a-9f1e-0a1b2c3d4e5f"

    async def scenario(hec: HecReceiver, ca: Path) -> None:
        s = sink(hec.url, ca, token=ACK_TOKEN, ack=True, channel=channel, ack_poll_seconds=0.01)
        assert await write(s, [record(0), record(1)]) is ACCEPTED
        assert ids(hec) == ["e0", "e1"]
        assert {i.channel for i in hec.indexed} == {channel}
        ack_id = hec.requests[0].answer["ackId"]
        assert hec.ack_queries and hec.ack_queries[-1] == (channel, [ack_id])
        assert hec._channels[channel].acks == {}  # the ackId was queried and seen true

    run(tls, scenario)


def test_ack_not_confirmed_in_time_is_retried_and_delivered_later(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        hec.hold_acks = True
        s = sink(hec.url, ca, token=ACK_TOKEN, ack=True, ack_poll_seconds=0.02,
                 ack_timeout_seconds=0.2)  # fmt: skip
        await s.open()
        try:
            with pytest.raises(SinkError) as err:
                await s.write([record(0), record(1)])
            assert err.value.retryable and "acknowledge" in str(err.value)
            hec.hold_acks = False
            assert await s.write([record(0), record(1)]) is ACCEPTED
        finally:
            await s.close()
        # at least once: the first copy was received but never confirmed, so it is resent
        assert ids(hec) == ["e0", "e1", "e0", "e1"]

    run(tls, scenario)


def test_ack_token_without_ack_setting_is_a_permanent_config_error(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        with pytest.raises(SinkError) as err:
            await write(sink(hec.url, ca, token=ACK_TOKEN), [record(0)])
        assert not err.value.retryable and err.value.status == 400
        assert "code 10" in str(err.value) and "ack: true" in str(err.value)
        assert hec.indexed == []

    run(tls, scenario)


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [("not-a-known-token", 403, "invalid token"), (OFF_TOKEN, 403, "token disabled")],
)
def test_refused_token_is_permanent(tls, token: str, status: int, words: str) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        with pytest.raises(SinkError) as err:
            await write(sink(hec.url, ca, token=token), [record(0), record(1)])
        assert not err.value.retryable and err.value.status == status
        assert words in str(err.value)
        assert token not in str(err.value)
        assert hec.indexed == []

    run(tls, scenario)


def test_index_not_allowed_for_the_token_is_permanent(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        with pytest.raises(SinkError) as err:
            await write(sink(hec.url, ca, index="finance"), [record(0), record(1)])
        assert not err.value.retryable and "incorrect index" in str(err.value)
        assert hec.indexed == []

    run(tls, scenario)


def test_server_busy_and_internal_error_are_retryable(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        hec.busy(retry_after="7")
        hec.internal_error()
        s = sink(hec.url, ca)
        await s.open()
        try:
            with pytest.raises(SinkError) as busy:
                await s.write([record(0)])
            assert busy.value.retryable and busy.value.status == 503
            assert busy.value.retry_after == 7 and "server is busy" in str(busy.value)
            with pytest.raises(SinkError) as internal:
                await s.write([record(0)])
            assert internal.value.retryable and internal.value.status == 500
            assert await s.write([record(0)]) is ACCEPTED
        finally:
            await s.close()
        assert ids(hec) == ["e0"]

    run(tls, scenario)


def test_invalid_event_number_fails_that_record_and_retries_only_the_rest(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(n) for n in range(5)]
        hec.invalid_event(2)
        s = sink(hec.url, ca)
        await s.open()
        try:
            result = await s.write(batch)
            assert [(f.index, f.retryable) for f in result.failures] == [
                (2, False), (3, True), (4, True),
            ]  # fmt: skip
            assert "invalid data format" in result.failures[0].reason
            # the framework retries the retryable ones only
            again = [batch[f.index] for f in result.failures if f.retryable]
            assert await s.write(again) is ACCEPTED
        finally:
            await s.close()
        assert ids(hec) == ["e0", "e1", "e3", "e4"]  # nothing lost, nothing twice

    run(tls, scenario)


def test_oversized_record_is_a_permanent_item_failure_and_is_not_sent(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(0), record(1, pad=1_100_000), record(2)]
        s = sink(hec.url, ca)
        assert s.record_size(batch[1]) > 1_000_000
        result = await write(s, batch)
        assert [(f.index, f.retryable) for f in result.failures] == [(1, False)]
        assert "max_content_length" in result.failures[0].reason
        assert ids(hec) == ["e0", "e2"]
        assert 413 not in hec.statuses
        assert all(r.wire_bytes <= 1_000_000 for r in hec.requests)

    run(tls, scenario)


def test_batch_over_the_limit_goes_as_several_requests_in_order(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(n, pad=900) for n in range(10)]
        s = sink(hec.url, ca, max_content_length=4096)
        assert await write(s, batch) is ACCEPTED
        assert ids(hec) == [f"e{n}" for n in range(10)]
        assert len(hec.requests) >= 3 and all(r.wire_bytes <= 4096 for r in hec.requests)

    run(tls, scenario, max_content_length=4096)


def test_413_from_a_smaller_server_limit_splits_the_request(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(n, pad=1500) for n in range(6)] + [record(6, pad=9000)]
        result = await write(sink(hec.url, ca), batch)
        assert [(f.index, f.retryable) for f in result.failures] == [(6, False)]
        assert 413 in hec.statuses
        assert ids(hec) == [f"e{n}" for n in range(6)]

    run(tls, scenario, max_content_length=5000)


def test_gzip_body_is_accepted(tls) -> None:
    async def scenario(hec: HecReceiver, ca: Path) -> None:
        batch = [record(n, pad=2000) for n in range(4)]
        assert await write(sink(hec.url, ca, gzip=True), batch) is ACCEPTED
        (req,) = hec.requests
        assert req.gzip and req.wire_bytes < sum(len(r.raw) for r in batch)
        assert ids(hec) == ["e0", "e1", "e2", "e3"]
        assert hec.indexed[3].envelope["event"] == batch[3].obj

    run(tls, scenario)


def test_untrusted_certificate_is_refused(tls, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(other)

    async def scenario(hec: HecReceiver, ca: Path) -> None:
        with pytest.raises(SinkError) as err:
            await write(sink(hec.url, other), [record(0)])
        assert "TLS" in str(err.value) and err.value.retryable
        assert hec.indexed == []

    run(tls, scenario)


def test_settings_are_checked() -> None:
    def build(**yaml: Any) -> SplunkSink:
        opts = SinkOptions("soc", HTTP_OPTIONS + SplunkSink.options,
                           {"url": "https://splunk:8088", **yaml},
                           environ={"FALCONET_SINK_SOC_TOKEN": TOKEN})  # fmt: skip
        return SplunkSink("soc", opts)

    with pytest.raises(ConfigError, match="not a UUID"):
        build(channel="falconet")
    with pytest.raises(ConfigError, match="secret"):
        build(token="in-yaml")
    with pytest.raises(ConfigError, match="http"):
        build(url="splunk:8088")
    assert build()._event_url == "https://splunk:8088/services/collector/event"
    assert build(url="https://splunk:8088/services/collector/event/")._ack_url == (
        "https://splunk:8088/services/collector/ack"
    )
    # one channel per sink instance, a UUID
    a, b = build(ack=True), build(ack=True)
    assert a._channel != b._channel and len(a._channel) == 36


async def probe(s: SplunkSink) -> str:
    await s.open()
    try:
        return await s.probe()
    finally:
        await s.close()


def test_check_proves_the_token_without_indexing(tls) -> None:
    """`falconet sink --check`: an empty request proves the token (HEC's "No data"); a bad or
    disabled token is named; nothing is indexed either way."""

    async def scenario(hec: HecReceiver, ca: Path) -> None:
        assert "accepts the token" in await probe(sink(hec.url, ca))
        with pytest.raises(SinkError, match="code 4") as bad:
            await probe(sink(hec.url, ca, token="not-a-token"))
        assert not bad.value.retryable
        with pytest.raises(SinkError, match="code 1"):
            await probe(sink(hec.url, ca, token=OFF_TOKEN))
        assert hec.indexed == []

    run(tls, scenario)

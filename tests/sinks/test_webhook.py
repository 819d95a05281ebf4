"""The webhook destination against the local receiver (tests/sinks/receivers/webhook.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.errors import ConfigError, SinkError
from falconet.sinks.base import SinkOptions, SinkRecord
from falconet.sinks.http import HTTP_OPTIONS
from falconet.sinks.webhook import WebhookSink, sign
from tests.sinks.receivers.webhook import (
    WebhookReceiver,
    delay,
    detection_json,
    reset,
    status,
    tls_pair,
)


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(secret="topsecret").start()
    yield r
    r.close()


def make(yaml: dict[str, Any], env: dict[str, str] | None = None) -> WebhookSink:
    opts = SinkOptions("hook", HTTP_OPTIONS + WebhookSink.options, yaml, env or {})
    return WebhookSink("hook", opts)


def records(n: int, start: int = 0) -> list[SinkRecord]:
    return [SinkRecord.from_json(detection_json(i)) for i in range(start, start + n)]


async def write(sink: WebhookSink, batch: list[SinkRecord]) -> Any:
    await sink.open()
    try:
        return await sink.write(batch)
    finally:
        await sink.close()


def test_posts_a_signed_json_array(receiver: WebhookReceiver) -> None:
    sink = make({"url": receiver.url, "headers": {"X-Team": "blue"}},
                {"FALCONET_SINK_HOOK_HMAC_SECRET": "topsecret"})  # fmt: skip
    result = asyncio.run(write(sink, records(3)))
    assert result.ok and receiver.rejected == []
    assert [d["output_fields"]["n"] for d in receiver.received] == [0, 1, 2]
    assert receiver.received[0] == orjson.loads(detection_json(0))  # the detection as consumed


def test_signature_scheme_is_the_documented_one() -> None:
    body = b'[{"a":1}]'
    want = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", body) == "sha256=" + want
    sink = make({"url": "http://x/h", "signature_header": "X-Sig", "timestamp_header": "X-Ts"},
                {"FALCONET_SINK_HOOK_HMAC_SECRET": "k"})  # fmt: skip
    sink._clock = lambda: 1_700_000_000.9
    assert sink.headers_for(body) == {"Content-Type": "application/json", "X-Ts": "1700000000",
                                      "X-Sig": "sha256=" + want}  # fmt: skip


def test_gzip_body_is_signed_before_compression(receiver: WebhookReceiver) -> None:
    sink = make(
        {"url": receiver.url, "gzip": True}, {"FALCONET_SINK_HOOK_HMAC_SECRET": "topsecret"}
    )
    assert asyncio.run(write(sink, records(50))).ok
    assert len(receiver.received) == 50 and receiver.rejected == [] and receiver.gzipped == 1


def test_wrong_secret_is_refused_for_good(receiver: WebhookReceiver) -> None:
    sink = make({"url": receiver.url}, {"FALCONET_SINK_HOOK_HMAC_SECRET": "guess"})
    with pytest.raises(SinkError) as e:
        asyncio.run(write(sink, records(1)))
    assert e.value.status == 401 and not e.value.retryable and "bad signature" in str(e.value)
    assert receiver.received == []


def test_stale_timestamp_is_refused(receiver: WebhookReceiver) -> None:
    sink = make({"url": receiver.url}, {"FALCONET_SINK_HOOK_HMAC_SECRET": "topsecret"})
    sink._clock = lambda: 1_000_000.0  # a replayed request from long ago
    with pytest.raises(SinkError, match="replay"):
        asyncio.run(write(sink, records(1)))


@pytest.mark.parametrize(
    "fault,retryable,status_,retry_after",
    [
        (status(500), True, 500, None),
        (status(503, Retry_After="7"), True, 503, 7.0),
        (status(429, Retry_After="2"), True, 429, 2.0),
        (status(400), False, 400, None),
        (status(404), False, 404, None),
        (status(413), False, 413, None),
        (reset(), True, None, None),
    ],
)
def test_statuses_and_faults_are_classified(receiver: WebhookReceiver, fault: Any,
                                            retryable: bool, status_: int | None,
                                            retry_after: float | None) -> None:  # fmt: skip
    receiver.script(fault)
    sink = make({"url": receiver.url}, {"FALCONET_SINK_HOOK_HMAC_SECRET": "topsecret"})
    with pytest.raises(SinkError) as e:
        asyncio.run(write(sink, records(2)))
    assert (e.value.retryable, e.value.status, e.value.retry_after) == (
        retryable,
        status_,
        retry_after,
    )
    assert receiver.requests == 1


def test_slow_answer_beyond_the_timeout_is_retryable(receiver: WebhookReceiver) -> None:
    receiver.script(delay(1.0))
    sink = make({"url": receiver.url, "timeout_seconds": 0.2},
                {"FALCONET_SINK_HOOK_HMAC_SECRET": "topsecret"})  # fmt: skip
    with pytest.raises(SinkError, match="no answer within 0.2s") as e:
        asyncio.run(write(sink, records(1)))
    assert e.value.retryable


def test_receiver_down_is_retryable() -> None:
    r = WebhookReceiver().start()
    url = r.url
    r.close()
    with pytest.raises(SinkError) as e:
        asyncio.run(write(make({"url": url}), records(1)))
    assert e.value.retryable


def test_tls_with_the_right_ca_and_refusal_with_a_wrong_one(tmp_path: Path) -> None:
    ctx, good_ca, other_ca = tls_pair(tmp_path)
    r = WebhookReceiver(ssl_context=ctx).start()
    try:
        with pytest.raises(SinkError, match="TLS certificate not trusted") as e:
            asyncio.run(write(make({"url": r.url, "ca_file": str(other_ca)}), records(1)))
        assert e.value.retryable and r.requests == 0  # nothing was sent
        with pytest.raises(SinkError):  # the system CAs do not know the test CA either
            asyncio.run(write(make({"url": r.url}), records(1)))
        assert r.requests == 0
        assert asyncio.run(write(make({"url": r.url, "ca_file": str(good_ca)}), records(2))).ok
        assert len(r.received) == 2
    finally:
        r.close()


def test_receiver_checks_the_payload(receiver: WebhookReceiver) -> None:
    """The receiver refuses what a real endpoint would: a sanity check of the stand-in."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(receiver.url, data=b'{"rule": "x"}', method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 401  # unsigned


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="url must start with http"):
        make({"url": "ftp://x"})
    with pytest.raises(ConfigError, match="url is required"):
        make({})
    env = {"FALCONET_SINK_HOOK_HEADERS": "Authorization=Bearer abc,X-A=b"}
    assert make({"url": "http://x"}, env)._headers["Authorization"] == "Bearer abc"


def test_check_reaches_the_endpoint_over_tls_without_posting(tmp_path: Path) -> None:
    """`falconet sink --check` for a webhook: a HEAD request proves the network path and the
    certificate; a wrong CA fails the check; no detection is posted."""

    async def probe(sink: WebhookSink) -> str:
        await sink.open()
        try:
            return await sink.probe()
        finally:
            await sink.close()

    ctx, good_ca, other_ca = tls_pair(tmp_path)
    r = WebhookReceiver(ssl_context=ctx).start()
    try:
        assert "answers over TLS" in asyncio.run(
            probe(make({"url": r.url, "ca_file": str(good_ca)}))
        )
        with pytest.raises(SinkError, match="TLS certificate not trusted"):
            asyncio.run(probe(make({"url": r.url, "ca_file": str(other_ca)})))
        assert r.received == []
    finally:
        r.close()

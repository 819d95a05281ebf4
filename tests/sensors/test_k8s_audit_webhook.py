"""The audit webhook over real HTTPS, as kube-apiserver's webhook backend talks to it.

The server runs in a thread with real TLS (a CA, server and client certificates from
trustme); its Emitter publishes through a Publisher whose Kafka producer is a stub that
acknowledges, fails, never answers, or waits for the test's go-ahead. Requests are the
bodies the API server posts in batch mode (tests/fixtures/k8s_audit/webhook/).
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from prometheus_client import REGISTRY

from falconet.inputs import fast_envelope
from falconet.kafka import KafkaSettings
from falconet.sensors.base import Emitter
from falconet.sensors.k8s_audit.sensor import K8sAuditSensor
from falconet.sensors.k8s_audit.settings import WebhookSettings
from falconet.sensors.publisher import Publisher
from tests.conftest import FIXTURES
from tests.streams.test_publisher import FakeProducer

WEBHOOK_FIXTURES = FIXTURES / "k8s_audit" / "webhook"
TOKEN = "tok-3f9a1c0d5e7b"
EVENTS_TOPIC = "t.events.k8s_audit.v1"
DLQ_TOPIC = "t.dlq.v1"


def batch_body(name: str = "apiserver_batch.json") -> bytes:
    return (WEBHOOK_FIXTURES / name).read_bytes()


class StubProducer(FakeProducer):
    """A Kafka producer stand-in: ``ack`` at once, ``fail`` every delivery, stay ``silent``,
    or ``gated``: acknowledge only once ``gate`` is set."""

    def __init__(self, mode: str = "ack") -> None:
        super().__init__()
        self.mode = mode
        self.gate = threading.Event()
        self.produced = threading.Event()
        self._pending: list[Callable[[Any, Any], None]] = []
        self._lock = threading.Lock()

    def produce(self, topic, value, key, headers, timestamp, on_delivery) -> None:
        with self._lock:
            self.records.append((topic, value, key, headers))
            if self.mode == "gated":
                self._pending.append(on_delivery)
        self.produced.set()
        if self.mode == "ack":
            on_delivery(None, None)
        elif self.mode == "fail":
            on_delivery(
                'KafkaError{code=_MSG_TIMED_OUT,val=-192,str="Local: Message timed out"}', None
            )

    def poll(self, timeout: float) -> int:
        if self.mode == "gated" and self.gate.wait(timeout):
            with self._lock:
                callbacks, self._pending = self._pending, []
            for callback in callbacks:
                callback(None, None)
            return len(callbacks)
        if self.mode == "silent":
            time.sleep(min(timeout, 0.01))
        return 0


@dataclass
class PKI:
    ca: trustme.CA
    files: dict[str, Path]
    certs: dict[str, trustme.LeafCert] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """One CA for the server and the API server's client certificate, and a rogue CA."""
    d = tmp_path_factory.mktemp("pki")
    ca, rogue_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    certs = {
        "apiserver": ca.issue_cert("apiserver.local", common_name="kube-apiserver-audit"),
        "other_cn": ca.issue_cert("intruder.local", common_name="someone-else"),
        "rogue": rogue_ca.issue_cert("apiserver.local", common_name="kube-apiserver-audit"),
    }
    files = {"ca": d / "ca.pem", "server": d / "server.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    server.private_key_and_cert_chain_pem.write_to_path(files["server"])  # combined, like falco.pem
    return PKI(ca, files, certs)


@dataclass
class Webhook:
    sensor: K8sAuditSensor
    producer: StubProducer
    thread: threading.Thread
    tls: bool

    def records(self, topic: str) -> list[tuple[str, bytes, bytes | None, list]]:
        return [r for r in self.producer.records if r[0] == topic]

    def events(self) -> list[dict[str, Any]]:
        return [env for _, value, _, _ in self.records(EVENTS_TOPIC) for env in orjson.loads(value)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, value, _, _ in self.records(DLQ_TOPIC)]

    def stop(self) -> None:
        self.sensor.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the webhook did not stop"


@pytest.fixture
def webhook(pki: PKI) -> Iterator[Callable[..., Webhook]]:
    """``webhook(mode=..., **settings)`` starts a webhook on a free port of 127.0.0.1."""
    started: list[Webhook] = []

    def start(mode: str = "ack", token: str = TOKEN, client_ca: bool = False, **kw: Any) -> Webhook:
        kw.setdefault("insecure_http", False)
        settings = WebhookSettings(
            listen_address="127.0.0.1",
            port=0,
            tls_cert_file="" if kw["insecure_http"] else str(pki.files["server"]),
            tls_key_file="" if kw["insecure_http"] else str(pki.files["server"]),
            client_ca_file=str(pki.files["ca"]) if client_ca else "",
            cluster=kw.pop("cluster", "eu-1"),
            publish_timeout_s=kw.pop("publish_timeout_s", 10.0),
            **kw,
        )
        sensor = K8sAuditSensor(settings, token=token, host="webhook-0")
        sensor.setup()
        publisher = Publisher(KafkaSettings("127.0.0.1:1"), batch_events=500)
        producer = StubProducer(mode)
        publisher._producer = producer  # type: ignore[assignment]
        emit = Emitter(publisher, EVENTS_TOPIC, DLQ_TOPIC, sensor.name, sensor.stats)
        thread = threading.Thread(target=sensor.run, args=(emit,), daemon=True)
        thread.start()
        assert sensor.started.wait(20), "the webhook did not start"
        w = Webhook(sensor, producer, thread, settings.tls)
        started.append(w)
        return w

    yield start
    for w in started:
        w.producer.gate.set()
        w.stop()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def request(
    w: Webhook,
    pki: PKI,
    body: bytes | Iterable[bytes] = b"",
    *,
    token: str | None = TOKEN,
    cert: str | None = None,
    method: str = "POST",
    path: str = "/k8s-audit",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request as the API server sends it (JSON, bearer token, optional client cert)."""
    hdrs = {"Content-Type": "application/json", "User-Agent": "kube-apiserver-admission"}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    if w.tls:
        ctx = ssl.create_default_context()
        pki.ca.configure_trust(ctx)
        if cert is not None:
            pki.certs[cert].configure_cert(ctx)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", w.sensor.port, context=ctx, timeout=30
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", w.sensor.port, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
        resp = conn.getresponse()
        raw = resp.read()
        data = (
            orjson.loads(raw)
            if resp.getheader("Content-Type", "").startswith("application/json")
            else {}
        )
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- the happy path ---------------------------------------------------------------------------
def test_apiserver_batch_is_published_in_order_with_its_envelope(webhook, pki) -> None:
    w = webhook()
    body = batch_body()
    before = counter("falconet_k8s_audit_events_total", outcome="published")
    reply = request(w, pki, body)
    assert reply.status == 200, reply.body
    assert reply.body["kind"] == "Status" and reply.body["status"] == "Success"

    items = orjson.loads(body)["items"]
    events = w.events()
    assert [e["id"] for e in events] == [f"{i['auditID']}:{i['stage']}" for i in items]
    for env, item in zip(events, items, strict=True):
        assert env["event"] == item  # the audit event, unchanged
        assert (env["source"], env["cluster"], env["host"], env["type"]) == (
            "k8s_audit", "eu-1", "webhook-0", item["verb"],
        )  # fmt: skip
        assert fast_envelope(env) is not None  # what a worker reads without the slow path
    ((topic, _, key, headers),) = w.records(EVENTS_TOPIC)
    assert key == b"eu-1" and headers == [("falconet-batch", str(len(items)).encode())]
    assert w.dead_letters() == []
    assert counter("falconet_k8s_audit_events_total", outcome="published") - before == len(items)
    assert w.sensor.stats.events == len(items)


def test_single_event_and_empty_list_are_accepted(webhook, pki) -> None:
    w = webhook()
    event = (FIXTURES / "k8s_audit" / "exec_pod.json").read_bytes()  # pretty-printed is fine
    assert request(w, pki, event).status == 200
    empty = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":null}'
    assert request(w, pki, empty).status == 200
    assert [e["type"] for e in w.events()] == ["create"]


def test_health_endpoints_need_no_credentials(webhook, pki) -> None:
    w = webhook(client_ca=True)
    assert request(w, pki, method="GET", path="/healthz", token=None).status == 200
    assert request(w, pki, method="GET", path="/readyz", token=None).status == 200
    reply = request(w, pki, method="GET", path="/k8s-audit")
    assert reply.status == 405 and reply.headers["allow"] == "POST"
    assert request(w, pki, batch_body(), path="/other").status == 404


# -- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token,reason,challenge",
    [
        (None, "missing_token", 'Bearer realm="falconet-k8s-audit"'),
        ("wrong", "invalid_token", 'Bearer realm="falconet-k8s-audit", error="invalid_token"'),
        (TOKEN + "x", "invalid_token", 'Bearer realm="falconet-k8s-audit", error="invalid_token"'),
    ],
)
def test_missing_or_wrong_token_gets_401(webhook, pki, token, reason, challenge) -> None:
    w = webhook()
    before = counter("falconet_k8s_audit_auth_failures_total", reason=reason)
    reply = request(w, pki, batch_body(), token=token)
    assert reply.status == 401 and reply.headers["www-authenticate"] == challenge
    assert reply.body["reason"] == "Unauthorized"
    assert TOKEN not in str(reply.body)
    assert w.producer.records == []  # neither events nor dead letters
    assert counter("falconet_k8s_audit_auth_failures_total", reason=reason) - before == 1


def test_client_certificate_from_the_ca_is_enough_without_token(webhook, pki) -> None:
    w = webhook(token="", client_ca=True)
    assert request(w, pki, batch_body(), token=None, cert="apiserver").status == 200
    reply = request(w, pki, batch_body(), token=None)  # no certificate
    assert reply.status == 401 and reply.headers["www-authenticate"].startswith(
        "ClientCertificate "
    )
    assert len(w.records(EVENTS_TOPIC)) == 1


def test_client_certificate_from_another_ca_fails_the_handshake(webhook, pki) -> None:
    w = webhook(token="", client_ca=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(w, pki, batch_body(), token=None, cert="rogue")
    assert w.producer.records == []


def test_token_and_certificate_both_required_and_cn_allow_list(webhook, pki) -> None:
    w = webhook(client_ca=True, allowed_cns=frozenset({"kube-apiserver-audit"}))
    assert request(w, pki, batch_body(), cert="apiserver").status == 200
    assert request(w, pki, batch_body(), token=None, cert="apiserver").status == 401
    assert request(w, pki, batch_body()).status == 401  # token but no certificate
    reply = request(w, pki, batch_body(), cert="other_cn")
    assert reply.status == 403 and reply.body["reason"] == "Forbidden"
    assert len(w.records(EVENTS_TOPIC)) == 1


def test_plain_http_only_when_asked(webhook, pki) -> None:
    w = webhook(insecure_http=True)
    assert w.sensor.url.startswith("http://")
    assert request(w, pki, batch_body()).status == 200
    assert request(w, pki, batch_body(), token="nope").status == 401


# -- limits and bad bodies --------------------------------------------------------------------
def test_body_over_the_limit_gets_413_and_a_dead_letter(webhook, pki) -> None:
    w = webhook(max_request_bytes=4096)
    body = batch_body()
    assert len(body) > 4096
    reply = request(w, pki, body)
    assert reply.status == 413 and reply.body["reason"] == "RequestEntityTooLarge"
    assert "k8s_audit.max_request_bytes" in reply.body["message"]
    # without Content-Length (chunked), reading stops past the limit
    assert request(w, pki, iter([body[:3000], body[3000:6000], body[6000:]])).status == 413
    assert w.records(EVENTS_TOPIC) == []
    first, second = w.dead_letters()
    assert first["stage"] == "decode" and first["source"] == "k8s_audit"
    assert first["details"]["content_length"] == len(body) and "original_b64" not in first
    assert second["details"]["bytes_read"] > 4096 and "content_length" not in second["details"]
    # a body just under the limit still goes through
    small = (FIXTURES / "k8s_audit" / "secret_get.json").read_bytes()
    assert request(w, pki, small).status == 200


@pytest.mark.parametrize(
    "body,message",
    [
        (b'{"kind":"EventList","items":[', "not valid JSON"),
        (b"", "empty request body"),
        (b'{"kind":"Pod","apiVersion":"v1"}', "got a JSON object of kind 'Pod'"),
        (b'{"kind":"Event","apiVersion":"v1","reason":"Pulled"}', "not a core Kubernetes Event"),
        (b'"hello"', "got a JSON str"),
        (b'{"kind":"EventList","items":{}}', "'items' is not a JSON array"),
    ],
)
def test_malformed_body_gets_400_and_a_dead_letter(webhook, pki, body, message) -> None:
    w = webhook()
    reply = request(w, pki, body)
    assert reply.status == 400 and message in reply.body["message"]
    assert w.records(EVENTS_TOPIC) == []
    (dl,) = w.dead_letters()
    assert message in dl["reason"] and dl["worker"] == "sensor:k8s_audit"
    assert dl["original_bytes"] == len(body)
    assert (
        dl["details"]["peer"] == "127.0.0.1"
        and dl["details"]["user_agent"] == "kube-apiserver-admission"
    )
    assert TOKEN not in dl["reason"] + str(dl["details"])


def test_wrong_content_type_gets_415(webhook, pki) -> None:
    w = webhook()
    reply = request(
        w, pki, batch_body(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 415 and w.producer.records == []


def test_bad_items_go_to_the_dlq_and_the_rest_is_published(webhook, pki) -> None:
    w = webhook()
    body = batch_body("partly_bad_batch.json")
    items = orjson.loads(body)["items"]
    reply = request(w, pki, body)
    assert reply.status == 200 and "2 refused" in reply.body["message"]
    assert [e["event"] for e in w.events()] == [items[0], items[3]]
    dls = w.dead_letters()
    assert [d["index"] for d in dls] == [1, 2]
    assert "stageTimestamp" in dls[0]["reason"] and "not a JSON object" in dls[1]["reason"]
    assert orjson.loads(base64.b64decode(dls[0]["original_b64"])) == items[1]


def test_events_over_the_max_event_size_go_to_the_dlq(webhook, pki) -> None:
    body = batch_body()
    items = orjson.loads(body)["items"]
    limit = sorted(len(orjson.dumps(i)) for i in items)[-2]  # refuses only the largest one
    w = webhook(max_event_bytes=limit)
    assert request(w, pki, body).status == 200
    largest = max(range(len(items)), key=lambda i: len(orjson.dumps(items[i])))
    assert len(w.events()) == len(items) - 1
    (dl,) = w.dead_letters()
    assert dl["index"] == largest and "maxEventSize" in dl["reason"]


# -- Kafka not acknowledging --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fail", "silent"])
def test_kafka_not_acknowledging_gets_503_with_retry_after(webhook, pki, mode) -> None:
    w = webhook(mode=mode, publish_timeout_s=0.3, retry_after_s=7)
    before = counter("falconet_k8s_audit_publish_failures_total")
    reply = request(w, pki, batch_body())
    assert reply.status == 503 and reply.headers["retry-after"] == "7"
    # client-go retries a 503 only with Retry-After; the Status carries it too
    assert reply.body["reason"] == "ServiceUnavailable"
    assert reply.body["details"] == {"retryAfterSeconds": 7}
    assert counter("falconet_k8s_audit_publish_failures_total") - before == 1


def test_malformed_body_gets_503_when_the_dlq_cannot_take_it(webhook, pki) -> None:
    w = webhook(mode="fail")
    assert request(w, pki, b"{not json").status == 503  # retried, so not lost


def test_too_many_requests_at_once_get_429(webhook, pki) -> None:
    w = webhook(mode="gated", max_inflight=1)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(request, w, pki, batch_body())
        assert w.producer.produced.wait(20)
        second = request(w, pki, batch_body())
        assert second.status == 429 and second.headers["retry-after"] == "5"
        w.producer.gate.set()
        assert first.result(30).status == 200


def test_stop_finishes_the_request_in_flight(webhook, pki) -> None:
    w = webhook(mode="gated")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(request, w, pki, batch_body())
        assert w.producer.produced.wait(20)  # the request waits for Kafka
        w.sensor.stop()
        w.producer.gate.set()
        assert pending.result(30).status == 200
    w.thread.join(30)
    assert not w.thread.is_alive()
    with pytest.raises(OSError):
        request(w, pki, batch_body())  # no longer accepting


def test_requests_are_counted_by_status(webhook, pki) -> None:
    w = webhook()
    before = {c: counter("falconet_k8s_audit_requests_total", code=c) for c in ("200", "401")}
    request(w, pki, batch_body())
    request(w, pki, batch_body(), token="bad")
    assert counter("falconet_k8s_audit_requests_total", code="200") - before["200"] == 1
    assert counter("falconet_k8s_audit_requests_total", code="401") - before["401"] == 1
    assert counter("falconet_k8s_audit_request_bytes_total") > 0


def _raw_exchange(w: Webhook, pki: PKI, head: bytes, body: bytes | None) -> list[bytes]:
    """Send ``head``, read the first answer; send ``body`` if it was ``100 Continue``."""
    ctx = ssl.create_default_context()
    pki.ca.configure_trust(ctx)
    with socket.create_connection(("127.0.0.1", w.sensor.port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(head)
            answers = [s.recv(65536)]
            if answers[0].startswith(b"HTTP/1.1 100 ") and body is not None:
                s.sendall(body)
                answers.append(s.recv(65536))
            return answers


def test_expect_continue_waits_for_the_checks(webhook, pki) -> None:
    w = webhook(max_request_bytes=4096)
    body = (FIXTURES / "k8s_audit" / "secret_get.json").read_bytes()

    def head(length: int, token: str = TOKEN) -> bytes:
        return (
            f"POST /k8s-audit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

    answers = _raw_exchange(w, pki, head(len(body)), body)
    assert answers[0].startswith(b"HTTP/1.1 100 Continue") and answers[1].startswith(
        b"HTTP/1.1 200 "
    )
    # refused before the body is sent: too large, or not authenticated
    assert _raw_exchange(w, pki, head(1 << 20), None)[0].startswith(b"HTTP/1.1 413 ")
    assert _raw_exchange(w, pki, head(len(body), "bad"), None)[0].startswith(b"HTTP/1.1 401 ")
    assert len(w.events()) == 1


def test_a_body_that_stalls_gets_408_with_retry_after(webhook, pki, monkeypatch) -> None:
    import falconet.sensors.k8s_audit.server as server

    monkeypatch.setattr(server, "BODY_READ_TIMEOUT_S", 0.2)
    w = webhook()
    head = (
        f"POST /k8s-audit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    (answer,) = _raw_exchange(w, pki, head + b'{"kind":', None)  # and then nothing
    assert answer.startswith(b"HTTP/1.1 408 ") and b"Retry-After: 5" in answer
    assert w.producer.records == []

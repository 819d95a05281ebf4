"""`falconet sensor k8s-audit` on the real broker: HTTPS in, events.k8s_audit.v1 and dlq.v1 out.

The webhook runs as its own process, with a server certificate and client-certificate
verification from a trustme CA and a bearer token from a file, as kube-apiserver would
reach it. No worker runs: the test reads the topics the webhook writes.
"""

from __future__ import annotations

import base64
import http.client
import re
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest
import trustme

from falconet.broker import die_with_parent
from falconet.streams.topics import DLQ, events_topic
from tests.conftest import FIXTURES
from tests.integration.harness import ROOT, Stack, make_stack, reader, wait_for

TOKEN = "it-token-6b1f0c93"


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    return make_stack(kafka.bootstrap, topic_prefix, tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, ctx: ssl.SSLContext, body: bytes, token: str) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    try:
        conn.request("POST", "/k8s-audit", body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}",
        })  # fmt: skip
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def test_webhook_publishes_events_and_dead_letters_then_stops_cleanly(stack: Stack) -> None:
    tmp = stack.tmp
    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp / "ca.pem")
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp / "server.pem")
    (tmp / "token").write_text(TOKEN + "\n")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca.issue_cert("apiserver.local", common_name="kube-apiserver").configure_cert(client)
    metrics_port = free_port()

    log_path = tmp / "webhook.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "falconet", "sensor", "k8s-audit", "--listen", "127.0.0.1",
             "--port", "0", "--tls-cert", str(tmp / "server.pem"), "--client-ca", str(tmp / "ca.pem"),
             "--token-file", str(tmp / "token"), "--cluster", "it-1",
             "--metrics-port", str(metrics_port)],
            env={**stack.env, "FALCONET_K8S_AUDIT_ALLOWED_CNS": "kube-apiserver"},
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=die_with_parent(),
        )  # fmt: skip
    try:
        port = 0

        def listening() -> bool:
            nonlocal port
            assert proc.poll() is None, log_path.read_text()
            m = re.search(
                r"k8s_audit\.listening url=https://127\.0\.0\.1:(\d+)/k8s-audit",
                log_path.read_text(),
            )
            port = int(m.group(1)) if m else 0
            return bool(port)

        wait_for(listening, timeout=60, what="the webhook to listen")

        batch = (FIXTURES / "k8s_audit" / "webhook" / "apiserver_batch.json").read_bytes()
        items = orjson.loads(batch)["items"]
        status, reply = post(port, client, batch, TOKEN)
        assert status == 200, reply
        assert post(port, client, batch, "wrong")[0] == 401
        malformed = b'{"kind":"EventList","items":[{"verb":'
        status, reply = post(port, client, malformed, TOKEN)
        assert status == 400 and "not valid JSON" in reply["message"]

        # acknowledged before the 200: the events are on the topic, in order, with envelope
        with reader(stack, events_topic("k8s_audit")) as read:
            records = read(until=lambda seen: sum(len(r) for r in seen) >= len(items), timeout=30)
        envelopes = [env for record in records for env in record]
        assert [e["event"] for e in envelopes] == items
        assert {(e["source"], e["cluster"]) for e in envelopes} == {("k8s_audit", "it-1")}
        assert [e["id"] for e in envelopes] == [f"{i['auditID']}:{i['stage']}" for i in items]

        with reader(stack, DLQ) as read:
            (dead,) = read(until=lambda seen: len(seen) >= 1, timeout=30)
        assert dead["stage"] == "decode" and dead["source"] == "k8s_audit"
        assert dead["worker"] == "sensor:k8s_audit" and "not valid JSON" in dead["reason"]
        assert base64.b64decode(dead["original_b64"]) == malformed

        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            .read()
            .decode()
        )
        assert 'falconet_k8s_audit_requests_total{code="200"} 1.0' in metrics
        assert 'falconet_k8s_audit_auth_failures_total{reason="invalid_token"} 1.0' in metrics
        assert f'falconet_sensor_events_total{{sensor="k8s_audit"}} {float(len(items))}' in metrics
    finally:
        code = stack.stop(proc, signal.SIGTERM, timeout=40)
    output = log_path.read_text()
    assert code == 0, output
    assert "sensor.stopped sensor=k8s_audit" in output and "failed=0" in output
    assert TOKEN not in output

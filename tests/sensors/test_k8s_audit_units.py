"""The audit webhook's parts without HTTP: settings, credentials and their rotation, body decoding."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import orjson
import pytest
import trustme

from falconet.config import Config
from falconet.errors import ConfigError, SensorError
from falconet.inputs import RecordDecoder
from falconet.sensors.k8s_audit.auth import Authenticator
from falconet.sensors.k8s_audit.ingest import BodyError, decode_body
from falconet.sensors.k8s_audit.sensor import K8sAuditSensor, bind
from falconet.sensors.k8s_audit.settings import WebhookSettings
from falconet.sensors.k8s_audit.tls import ServerTLS
from tests.conftest import FIXTURES


# -- settings ---------------------------------------------------------------------------------
def settings_from(env: dict[str, str]) -> WebhookSettings:
    return WebhookSettings.from_config(Config.load(env=env))


def test_settings_from_config_and_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "k8s_audit:\n  tls_cert_file: /tls/falco.pem\n  cluster: eu-1\n  allowed_cns: ' a, b '\n"
        "  client_ca_file: /tls/ca.pem\n  publish_timeout_ms: 2500\n"
    )
    s = WebhookSettings.from_config(Config.load(f, env={"FALCONET_K8S_AUDIT_PORT": "8443"}))
    assert (s.port, s.path, s.cluster, s.publish_timeout_s) == (8443, "/k8s-audit", "eu-1", 2.5)
    assert s.tls_key_file == "/tls/falco.pem"  # a combined PEM, as Falco's
    assert s.allowed_cns == frozenset({"a", "b"}) and s.client_certs and s.tls


def test_token_is_a_secret_never_read_from_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("k8s_audit:\n  token: hunter2\n")
    with pytest.raises(ConfigError, match="FALCONET_K8S_AUDIT_TOKEN"):
        Config.load(f, env={})
    cfg = Config.load(env={"FALCONET_K8S_AUDIT_TOKEN": "hunter2"})
    assert cfg["k8s_audit.token"] == "hunter2"
    assert cfg.public_values()["k8s_audit.token"] == "***"


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "set k8s_audit.tls_cert_file"),
        (
            {
                "FALCONET_K8S_AUDIT_INSECURE_HTTP": "1",
                "FALCONET_K8S_AUDIT_CLIENT_CA_FILE": "ca.pem",
            },
            "cannot be used with k8s_audit.insecure_http",
        ),
        (
            {"FALCONET_K8S_AUDIT_TLS_CERT_FILE": "c.pem", "FALCONET_K8S_AUDIT_ALLOWED_CNS": "x"},
            "allowed_cns needs k8s_audit.client_ca_file",
        ),
        (
            {"FALCONET_K8S_AUDIT_INSECURE_HTTP": "1", "FALCONET_K8S_AUDIT_PATH": "audit"},
            "must start with '/'",
        ),
        (
            {"FALCONET_K8S_AUDIT_INSECURE_HTTP": "1", "FALCONET_K8S_AUDIT_PATH": "/readyz"},
            "health endpoints",
        ),
        (
            {
                "FALCONET_K8S_AUDIT_INSECURE_HTTP": "1",
                "FALCONET_K8S_AUDIT_MAX_REQUEST_BYTES": str(64 << 20),
            },
            "k8s_audit.max_request_bytes must be between",
        ),
    ],
)
def test_settings_refuse_what_cannot_work(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(env)


def test_setup_requires_authentication_unless_plain_http() -> None:
    with pytest.raises(ConfigError, match="needs authentication"):
        K8sAuditSensor(WebhookSettings(tls_cert_file="unused.pem")).setup()
    dev = K8sAuditSensor(WebhookSettings(listen_address="127.0.0.1", port=0, insecure_http=True))
    dev.setup()  # allowed, with loud warnings
    assert dev.port > 0
    dev._sock.close()  # type: ignore[union-attr]


def test_setup_reports_an_unusable_certificate_and_a_busy_port(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot load the server certificate"):
        K8sAuditSensor(
            WebhookSettings(tls_cert_file=str(bad), tls_key_file=str(bad)), token="t"
        ).setup()
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(SensorError, match="cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


# -- credentials --------------------------------------------------------------------------------
def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime + 10, st.st_mtime + 10))


def test_token_file_is_read_again_when_rotated(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("first-token\n")
    auth = Authenticator(token_file=str(f))
    assert auth.check("Bearer first-token", False, []) is None
    assert not auth.reload_if_changed()  # unchanged
    f.write_text("second-token\n")
    _touch_later(f)
    assert auth.reload_if_changed()
    assert auth.check("Bearer first-token", False, []).reason == "invalid_token"  # type: ignore[union-attr]
    assert auth.check("bearer  second-token ", False, []) is None
    f.write_text("")  # a half-written Secret keeps the old token
    _touch_later(f)
    assert not auth.reload_if_changed()
    assert auth.check("Bearer second-token", False, []) is None


def test_empty_or_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        Authenticator(token_file=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="cannot read k8s_audit.token_file"):
        Authenticator(token_file=str(tmp_path / "missing"))


def test_other_authorization_schemes_are_refused() -> None:
    auth = Authenticator(token="abc")
    for header in ("Basic YWJjOg==", "abc", "Bearer", ""):
        assert auth.check(header, True, []).reason == "missing_token"  # type: ignore[union-attr]


def test_server_certificate_is_reloaded_when_its_files_change(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(pem)
    tls = ServerTLS.from_settings(WebhookSettings(tls_cert_file=str(pem), tls_key_file=str(pem)))
    assert isinstance(tls.context, ssl.SSLContext) and not tls.reload_if_changed()
    pem.write_text("-----BEGIN CERTIFICATE-----\ntruncated")  # a rotation half done
    _touch_later(pem)
    assert not tls.reload_if_changed()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(pem)
    _touch_later(pem)
    assert tls.reload_if_changed()


# -- body decoding --------------------------------------------------------------------------------
def test_decode_reuses_the_record_decoder_envelope() -> None:
    body = (FIXTURES / "k8s_audit" / "eventlist.json").read_bytes()
    decoded = decode_body(body, RecordDecoder("w-0", "c-1"))
    items = orjson.loads(body)["items"]
    envs = [orjson.loads(e) for e in decoded.envelopes]
    assert [e["event"] for e in envs] == items and decoded.rejected == []
    assert {e["cluster"] for e in envs} == {"c-1"} and envs[0]["ts"] > 0
    assert envs[3]["id"] and ":" not in envs[3]["id"]  # no auditID: a hash of the event


def test_decode_accepts_a_json_array_of_events_like_the_plugin() -> None:
    event = orjson.loads((FIXTURES / "k8s_audit" / "secret_get.json").read_bytes())
    decoded = decode_body(orjson.dumps([event, 42]), RecordDecoder("w", ""))
    assert len(decoded.envelopes) == 1
    (rejected,) = decoded.rejected
    assert rejected.index == 1 and rejected.original == b"42"


def test_decode_refuses_a_single_event_without_timestamp_as_a_rejected_event() -> None:
    decoded = decode_body(
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}', RecordDecoder("w")
    )
    (rejected,) = decoded.rejected
    assert rejected.index is None and rejected.reason.startswith("the event: ")


def test_decode_errors_name_what_was_received() -> None:
    for body, message in (
        (b"[", "not valid JSON"),
        (b"null", "got a JSON null"),
        (b"{}", "without 'kind'"),
    ):
        with pytest.raises(BodyError, match=message):
            decode_body(body, RecordDecoder("w"))


def test_ipv6_any_address_takes_ipv4_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = bind("::", 0)
    except SensorError as exc:
        pytest.skip(f"IPv6 unavailable: {exc}")
    try:
        with socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=5):
            pass
    finally:
        sock.close()

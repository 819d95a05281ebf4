"""Kafka client settings: one place turns kafka.* into every client's options."""

from __future__ import annotations

import ssl

import faust
import pytest

from falconet.config import Config
from falconet.errors import ConfigError
from falconet.kafka import KafkaSettings, NoBrokerError


def settings(**env: str) -> KafkaSettings:
    return KafkaSettings.from_config(Config.load(env={"FALCONET_KAFKA_BOOTSTRAP": "k1:9092,k2:9092", **env}))


def test_plaintext() -> None:
    s = settings()
    assert s.confluent() == {"bootstrap.servers": "k1:9092,k2:9092", "security.protocol": "PLAINTEXT"}
    assert s.faust_credentials() is None
    assert s.topic("events.syscall.v1") == "falconet.events.syscall.v1"
    assert settings(FALCONET_KAFKA_TOPIC_PREFIX="prod.").topic("dlq.v1") == "prod.dlq.v1"


def test_sasl_ssl_scram(tmp_path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    s = settings(FALCONET_KAFKA_SECURITY_PROTOCOL="sasl_ssl", FALCONET_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                 FALCONET_KAFKA_SASL_USERNAME="falconet", FALCONET_KAFKA_SASL_PASSWORD_FILE=str(pw),
                 FALCONET_KAFKA_SSL_VERIFY_HOSTNAME="false")  # fmt: skip
    conf = s.confluent()
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "falconet" and conf["sasl.password"] == "s3cret"
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    creds = s.faust_credentials()
    assert isinstance(creds, faust.SASLCredentials) and creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert "s3cret" not in repr(s)  # never in logs or tracebacks


def test_password_from_env_wins_and_is_never_read_from_yaml(tmp_path) -> None:
    s = settings(FALCONET_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", FALCONET_KAFKA_SASL_MECHANISM="PLAIN",
                 FALCONET_KAFKA_SASL_PASSWORD="from-env")  # fmt: skip
    assert s.confluent()["sasl.password"] == "from-env"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  sasl_password: oops\n")
    with pytest.raises(ConfigError, match="is a secret: set FALCONET_KAFKA_SASL_PASSWORD"):
        Config.load(cfg, env={})
    masked = Config.load(env={"FALCONET_KAFKA_SASL_PASSWORD": "x"}).public_values()
    assert masked["kafka.sasl_password"] == "***"


def test_oauthbearer() -> None:
    s = settings(FALCONET_KAFKA_SECURITY_PROTOCOL="SASL_SSL", FALCONET_KAFKA_SASL_MECHANISM="OAUTHBEARER",
                 FALCONET_KAFKA_SASL_USERNAME="client-id", FALCONET_KAFKA_SASL_PASSWORD="client-secret",
                 FALCONET_KAFKA_OAUTH_TOKEN_ENDPOINT="https://idp.example.com/token")  # fmt: skip
    conf = s.confluent()
    assert conf["sasl.oauthbearer.method"] == "oidc"
    assert conf["sasl.oauthbearer.token.endpoint.url"] == "https://idp.example.com/token"
    with pytest.raises(ConfigError, match="does not support OAUTHBEARER"):
        s.faust_credentials()


@pytest.mark.parametrize(
    "env,message",
    [
        ({"FALCONET_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol must be one of"),
        ({"FALCONET_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "kafka.sasl_mechanism must be one of"),
    ],
)
def test_invalid(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**env)


def test_no_cluster_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("falconet.kafka._local_broker_bootstrap", lambda: "")
    with pytest.raises(NoBrokerError, match="set FALCONET_KAFKA_BOOTSTRAP .* `falconet kafka up`"):
        KafkaSettings.from_config(Config.load(env={}))

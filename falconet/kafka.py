"""Kafka connection settings shared by every client: sensors, tools, workers, sinks.

One :class:`KafkaSettings` turns the ``kafka.*`` configuration into the options of each
client library — confluent-kafka (librdkafka) for producers, admin and tools, and aiokafka
underneath Faust for the stream workers — so TLS and SASL are configured once. Nothing here
imports a Kafka library at module load: the core stays importable without them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from .config import Config
from .errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

#: Largest record any falconet client produces or fetches (the DLQ keeps big originals).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 64 * 1024


class NoBrokerError(ConfigError):
    """No Kafka cluster is configured and no local broker is running."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where Kafka is and how to talk to it (secrets included: never log this object)."""

    bootstrap: str
    topic_prefix: str = "falconet."
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    oauth_token_endpoint: str = ""
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_verify_hostname: bool = True

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (
            f"KafkaSettings(bootstrap={self.bootstrap!r}, topic_prefix={self.topic_prefix!r}, "
            f"security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r})"
        )

    @classmethod
    def from_config(cls, cfg: Config, bootstrap: str | None = None) -> KafkaSettings:
        """Settings from the configuration; ``bootstrap`` overrides ``kafka.bootstrap``.

        Without any bootstrap, the broker `falconet kafka up` started is used; if there is
        none, :class:`NoBrokerError` says what to do.
        """
        servers = bootstrap or cfg["kafka.bootstrap"] or _local_broker_bootstrap()
        if not servers:
            raise NoBrokerError(
                "no Kafka cluster: set FALCONET_KAFKA_BOOTSTRAP (or kafka.bootstrap), "
                "or start a local broker with `falconet kafka up`"
            )
        protocol = str(cfg["kafka.security_protocol"]).upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"kafka.security_protocol must be one of {', '.join(PROTOCOLS)}")
        mechanism = str(cfg["kafka.sasl_mechanism"]).upper()
        if protocol.startswith("SASL_") and mechanism not in MECHANISMS:
            raise ConfigError(
                f"kafka.sasl_mechanism must be one of {', '.join(MECHANISMS)} with {protocol}"
            )
        return cls(
            bootstrap=servers,
            topic_prefix=cfg["kafka.topic_prefix"],
            security_protocol=protocol,
            sasl_mechanism=mechanism if protocol.startswith("SASL_") else "",
            sasl_username=cfg["kafka.sasl_username"],
            sasl_password=cfg.secret("kafka.sasl_password"),
            oauth_token_endpoint=cfg["kafka.oauth_token_endpoint"],
            ssl_ca_file=cfg["kafka.ssl_ca_file"],
            ssl_cert_file=cfg["kafka.ssl_cert_file"],
            ssl_key_file=cfg["kafka.ssl_key_file"],
            ssl_verify_hostname=cfg["kafka.ssl_verify_hostname"],
        )

    def topic(self, name: str) -> str:
        """The full name of a falconet topic (``events.syscall.v1`` → ``falconet.events…``)."""
        return self.topic_prefix + name

    # -- confluent-kafka (librdkafka) ------------------------------------------------------
    def confluent(self, **extra: Any) -> dict[str, Any]:
        """librdkafka options for a producer, consumer or admin client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            if self.ssl_ca_file:
                conf["ssl.ca.location"] = self.ssl_ca_file
            if self.ssl_cert_file:
                conf["ssl.certificate.location"] = self.ssl_cert_file
            if self.ssl_key_file:
                conf["ssl.key.location"] = self.ssl_key_file
            conf["ssl.endpoint.identification.algorithm"] = (
                "https" if self.ssl_verify_hostname else "none"
            )
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                if not self.oauth_token_endpoint:
                    raise ConfigError("OAUTHBEARER needs kafka.oauth_token_endpoint")
                conf.update(
                    {
                        "sasl.oauthbearer.method": "oidc",
                        "sasl.oauthbearer.client.id": self.sasl_username,
                        "sasl.oauthbearer.client.secret": self.sasl_password,
                        "sasl.oauthbearer.token.endpoint.url": self.oauth_token_endpoint,
                    }
                )
            else:
                conf["sasl.username"] = self.sasl_username
                conf["sasl.password"] = self.sasl_password
        conf.update(extra)
        return conf

    # -- aiokafka (under Faust) ---------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_ca_file or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = self.ssl_verify_hostname
        if self.ssl_cert_file:
            ctx.load_cert_chain(self.ssl_cert_file, self.ssl_key_file or None)
        return ctx

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for a Faust app (``None`` for PLAINTEXT)."""
        import faust

        if self.security_protocol == "PLAINTEXT":
            return None
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        if self.sasl_mechanism == "OAUTHBEARER":
            raise ConfigError(
                "the stream worker does not support OAUTHBEARER yet (its Kafka client, "
                "aiokafka under Faust, needs a token provider); use SCRAM or PLAIN for workers"
            )
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password,
            mechanism=self.sasl_mechanism,
            ssl_context=self.ssl_context(),
        )


def _local_broker_bootstrap() -> str:
    """The bootstrap of the broker `falconet kafka up` started, if it is running."""
    try:
        from .broker import running_local_bootstrap
    except ImportError:  # pragma: no cover - the launcher is part of the package
        return ""
    return running_local_bootstrap() or ""


_PARTITION_EOF = -191  # librdkafka's RD_KAFKA_RESP_ERR__PARTITION_EOF


def read_compacted(
    settings: KafkaSettings,
    topic: str,
    timeout: float = 15.0,
    *,
    appear_within: float = 0.0,
    complete: bool = True,
    error: type[Exception] = ConfigError,
) -> dict[str, bytes]:
    """The latest value of every key of a compacted topic (tombstoned keys left out).

    Reads every partition from the beginning to its end with a throw-away consumer (no
    group is joined or committed). ``appear_within``: how long a topic just created may take
    to show its partition leaders. A missing topic raises ``error``; so does a topic not
    read to its end within ``timeout`` when ``complete`` (else what was read is returned).
    """
    import os
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(settings.confluent(**{
        "group.id": f"falconet-read-{os.getpid()}-{time.time_ns()}",
        "enable.auto.commit": False, "enable.partition.eof": True,
    }))  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        appear_by = time.monotonic() + appear_within
        while True:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                break
            if time.monotonic() >= appear_by:
                raise error(f"topic {topic} does not exist (run `falconet topics create`)")
            time.sleep(0.5)
        parts = list(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        latest: dict[str, bytes] = {}
        at_end: set[int] = set()
        while len(at_end) < len(parts):
            if time.monotonic() > deadline:
                if complete:
                    raise error(f"could not read {topic} to its end within {timeout:g}s")
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == _PARTITION_EOF:
                    at_end.add(msg.partition())
                continue
            key = (msg.key() or b"").decode("utf-8", "replace")
            if msg.value() is None:
                latest.pop(key, None)
            else:
                latest[key] = msg.value()
        return latest
    finally:
        consumer.close()

"""Kafka: a SOC-facing alert topic in Falco's JSON alert format.

Each detection becomes one record on ``topic``: the value is Falco's JSON alert (``time``,
``rule``, ``priority``, ``output``, ``output_fields``, ``source``, ``tags``, ``hostname``)
so any consumer of Falco's output reads it; ``include_falconet_fields`` adds falconet's
``id``, ``event_id``, ``enrichment`` (and ``dedup`` for folded repeats). The key is the
hostname (default: one host's alerts stay in order on one partition), the rule, or none;
a ``falconet-id`` header carries the detection id so consumers can drop redelivered copies.

The topic lives on falconet's own cluster (the ``kafka.*`` settings) unless ``bootstrap``
names another one, with its own security settings (the password only from the
environment or a file). The producer is idempotent with ``acks=all``; :meth:`KafkaSink.write`
returns when the delivery report of every record of the batch came back. A record the
broker refuses as too large for the topic (its ``max.message.bytes``) is a permanent
failure; when several records of one batch were refused that way, each is sent again
alone, because the broker refuses a whole produce batch at once and only a record that
is too large by itself must go to the dead-letter topic. Timeouts and unavailable brokers
are retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from falconet.detection import json_bytes
from falconet.errors import ConfigError, SinkError
from falconet.kafka import MAX_MESSAGE_BYTES, MECHANISMS, PROTOCOLS, KafkaSettings

from .base import ACCEPTED, BatchingSink, ItemFailure, Option, SinkRecord, WriteResult

__all__ = ["FALCO_FIELDS", "KafkaSink"]

log = logging.getLogger("falconet.sinks.kafka")

#: the fields of Falco's JSON alert, in Falco's order
FALCO_FIELDS = ("time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname")

_KEYS = ("hostname", "rule", "none")
_COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


class KafkaSink(BatchingSink):
    """Falco JSON alerts to a Kafka topic (falconet's cluster or another one)."""

    kind = "kafka"
    summary = "Falco JSON alerts to a Kafka topic, on falconet's cluster or another one"
    max_batch_bytes = 16 * 1024 * 1024
    default_batch_events = 1000
    options = (
        Option("topic", "", str, "Topic the alerts go to (full name: no prefix is added).", required=True),
        Option("key", "hostname", str, "Record key: `hostname` (a host's alerts stay in order), `rule`, or `none`."),
        Option("include_falconet_fields", False, bool, "Add falconet's `id`, `event_id`, `enrichment` (and `dedup`) to Falco's alert fields."),
        Option("compression", "lz4", str, "`none`, `gzip`, `snappy`, `lz4` or `zstd`."),
        Option("delivery_timeout_seconds", 30.0, float, "How long a record may wait for the brokers' acknowledgement before it counts as failed (retried)."),
        Option("bootstrap", "", str, "Bootstrap servers of another cluster; empty: falconet's own cluster and its `kafka.*` settings (the options below are then ignored)."),
        Option("security_protocol", "PLAINTEXT", str, "With `bootstrap`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`."),
        Option("sasl_mechanism", "", str, "With `bootstrap`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`."),
        Option("sasl_username", "", str, "With `bootstrap`: SASL user name (OAUTHBEARER: the client id)."),
        Option("sasl_password", "", str, "With `bootstrap`: SASL password (OAUTHBEARER: the client secret).", secret=True),
        Option("oauth_token_endpoint", "", str, "With `bootstrap` and OAUTHBEARER: the OIDC token endpoint."),
        Option("ssl_ca_file", "", str, "With `bootstrap`: CA bundle to verify the brokers."),
        Option("ssl_cert_file", "", str, "With `bootstrap`: client certificate for mutual TLS."),
        Option("ssl_key_file", "", str, "With `bootstrap`: private key of the client certificate."),
        Option("ssl_verify_hostname", True, bool, "With `bootstrap`: check the broker certificate's host name."),
        Option("producer", {}, dict, "Extra librdkafka producer settings (`linger.ms: \"50\"`); idempotence and `acks` stay fixed."),
    )  # fmt: skip

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        self._topic = str(options["topic"]).strip()
        key = str(options["key"]).strip().lower()
        if key not in _KEYS:
            raise ConfigError(f"sink {name!r}: key must be one of {', '.join(_KEYS)}")
        self._key = key
        compression = str(options["compression"]).strip().lower()
        if compression not in _COMPRESSIONS:
            raise ConfigError(
                f"sink {name!r}: compression must be one of {', '.join(_COMPRESSIONS)}"
            )
        self._compression = compression
        self._falconet_fields = bool(options["include_falconet_fields"])
        self._timeout = float(options["delivery_timeout_seconds"])
        if self._timeout <= 0:
            raise ConfigError(f"sink {name!r}: delivery_timeout_seconds must be positive")
        #: the cluster; the runner may set it before open() (else: bootstrap or kafka.*)
        self.cluster: KafkaSettings | None = self._own_cluster(name, options)
        self._producer: Any = None

    @staticmethod
    def _own_cluster(name: str, options: Any) -> KafkaSettings | None:
        bootstrap = str(options["bootstrap"]).strip()
        if not bootstrap:
            return None
        protocol = str(options["security_protocol"]).strip().upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(
                f"sink {name!r}: security_protocol must be one of {', '.join(PROTOCOLS)}"
            )
        mechanism = str(options["sasl_mechanism"]).strip().upper()
        if protocol.startswith("SASL_") and mechanism not in MECHANISMS:
            raise ConfigError(
                f"sink {name!r}: sasl_mechanism must be one of {', '.join(MECHANISMS)} "
                f"with {protocol}"
            )
        if mechanism == "OAUTHBEARER" and not options["oauth_token_endpoint"]:
            raise ConfigError(f"sink {name!r}: OAUTHBEARER needs oauth_token_endpoint")
        return KafkaSettings(
            bootstrap=bootstrap,
            security_protocol=protocol,
            sasl_mechanism=mechanism if protocol.startswith("SASL_") else "",
            sasl_username=str(options["sasl_username"]),
            sasl_password=str(options["sasl_password"]),
            oauth_token_endpoint=str(options["oauth_token_endpoint"]),
            ssl_ca_file=str(options["ssl_ca_file"]),
            ssl_cert_file=str(options["ssl_cert_file"]),
            ssl_key_file=str(options["ssl_key_file"]),
            ssl_verify_hostname=bool(options["ssl_verify_hostname"]),
        )

    # -- the BatchingSink interface ----------------------------------------------------------
    async def open(self) -> None:
        if self.cluster is None:
            from falconet.config import Config

            self.cluster = KafkaSettings.from_config(Config.load())
        if self._producer is None:
            self._producer = self._new_producer()
        await asyncio.to_thread(self._check_topic)

    async def probe(self) -> str:
        return f"Kafka {self.cluster.bootstrap if self.cluster else ''} answers; topic {self._topic} checked"

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            left = await asyncio.to_thread(producer.flush, min(self._timeout, 10.0))
            if left:
                log.warning("sink %s: %d record(s) still queued at close", self.name, left)

    def record_size(self, record: SinkRecord) -> int:
        return len(self.value(record)) + 64  # key, header and record overhead

    def value(self, record: SinkRecord) -> bytes:
        """The record value: Falco's alert fields, plus falconet's if asked."""
        obj = record.obj
        if not self._falconet_fields:
            obj = {k: obj[k] for k in FALCO_FIELDS if k in obj}
        return json_bytes(obj)

    def key(self, record: SinkRecord) -> bytes | None:
        if self._key == "hostname":
            return record.detection.hostname.encode("utf-8", "replace") or None
        if self._key == "rule":
            return record.detection.rule.encode("utf-8", "replace")
        return None

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        if self._producer is None:
            await self.open()
        results = await self._produce_all(batch, list(range(len(batch))))
        too_large = [i for i, e in results.items() if e is not None and _too_large(e)]
        if len(too_large) > 1:  # refused together: find which are too large by themselves
            log.info(
                "sink %s: %d records refused as too large, sending each alone",
                self.name,
                len(too_large),
            )
            for i in too_large:
                results.update(await self._produce_all(batch, [i]))

        failures: list[ItemFailure] = []
        for i in range(len(batch)):
            error = results[i]
            if error is None:
                continue
            failures.append(ItemFailure(i, _describe(error), retryable=_retryable(error)))
        if not failures:
            return ACCEPTED
        if len(failures) == len(batch) and len({(f.reason, f.retryable) for f in failures}) == 1:
            raise SinkError(
                f"Kafka {self._topic}: {failures[0].reason}", retryable=failures[0].retryable
            )
        log.warning(
            "sink %s: %d of %d records not delivered to %s (%d retryable)",
            self.name,
            len(failures),
            len(batch),
            self._topic,
            sum(f.retryable for f in failures),
        )
        return WriteResult(tuple(failures))

    # -- producing ----------------------------------------------------------------------------
    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        assert self.cluster is not None
        conf = self.cluster.confluent(
            **{
                "client.id": f"falconet-sink-{self.name}",
                "linger.ms": 10,
                "compression.type": self._compression,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "queue.buffering.max.kbytes": 256 * 1024,
            }
        )
        conf.update({str(k): v for k, v in dict(self.opts["producer"]).items()})
        conf.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(self._timeout * 1000),
                "error_cb": self._on_error,
            }
        )
        try:
            return Producer(conf)
        except Exception as e:  # KafkaException for a bad librdkafka setting
            raise ConfigError(f"sink {self.name!r}: Kafka producer settings: {e}") from None

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            log.error("sink %s: fatal producer error: %s", self.name, err.str())
        else:
            log.debug("sink %s: producer: %s", self.name, err.str())

    def _check_topic(self) -> None:
        """Fail open() (retryable) when the cluster does not answer; warn on a missing topic."""
        from confluent_kafka import KafkaException

        try:
            meta = self._producer.list_topics(self._topic, timeout=min(self._timeout, 15.0))
        except KafkaException as e:
            raise SinkError(
                f"Kafka {self.cluster.bootstrap if self.cluster else ''}: {e.args[0].str()}",
                retryable=True,
            ) from None
        info = meta.topics.get(self._topic)
        if info is None or info.error is not None:
            log.warning(
                "sink %s: topic %s: %s (deliveries are retried until it exists)",
                self.name,
                self._topic,
                info.error.str() if info is not None and info.error else "not found",
            )
        else:
            log.info(
                "sink %s: producing to %s (%d partitions)",
                self.name,
                self._topic,
                len(info.partitions),
            )

    async def _produce_all(self, batch: Sequence[SinkRecord], which: list[int]) -> dict[int, Any]:
        """Produce ``batch[i]`` for i in ``which``; wait for every report: {i: KafkaError|None}."""
        from confluent_kafka import KafkaError, KafkaException

        producer = self._producer
        results: dict[int, Any] = {}

        def report(i: int) -> Any:
            def on_delivery(err: Any, msg: Any) -> None:
                results[i] = err

            return on_delivery

        for i in which:
            record = batch[i]
            value, key = self.value(record), self.key(record)
            headers = [("falconet-id", record.id.encode())] if record.id else None
            while True:
                try:
                    producer.produce(
                        self._topic, value, key, headers=headers, on_delivery=report(i)
                    )
                    break
                except BufferError:  # the local queue is full: serve reports, then again
                    await asyncio.to_thread(producer.poll, 0.1)
                except KafkaException as e:
                    results[i] = e.args[0]
                    break
        left = await asyncio.to_thread(producer.flush, self._timeout + 5.0)
        if left:
            log.warning("sink %s: %d delivery report(s) missing after flush", self.name, left)
        for i in which:
            if i not in results:
                results[i] = KafkaError(KafkaError._TIMED_OUT, "no delivery report in time")
        fatal = next((e for e in results.values() if e is not None and e.fatal()), None)
        if fatal is not None:  # an idempotent producer that hit a fatal error must be replaced
            log.error("sink %s: replacing the producer after: %s", self.name, fatal.str())
            self._producer = None
            await asyncio.to_thread(producer.flush, 1.0)
            self._producer = self._new_producer()
        return results


#: errors about the record itself (or a permission): sending it again cannot help
_PERMANENT = (
    "MSG_SIZE_TOO_LARGE",  # broker: larger than the topic's max.message.bytes; or local check
    "INVALID_MSG_SIZE",
    "RECORD_LIST_TOO_LARGE",
    "INVALID_RECORD",
    "INVALID_MSG",
    "TOPIC_EXCEPTION",  # invalid topic name
    "TOPIC_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "_INVALID_ARG",
)


def _too_large(err: Any) -> bool:
    from confluent_kafka import KafkaError

    return bool(err.code() == KafkaError.MSG_SIZE_TOO_LARGE)


def _retryable(err: Any) -> bool:
    from confluent_kafka import KafkaError

    permanent = {getattr(KafkaError, n) for n in _PERMANENT if hasattr(KafkaError, n)}
    return err.code() not in permanent


def _describe(err: Any) -> str:
    return f"{err.name()}: {err.str()}"

"""What every sensor shares: the :class:`Sensor` shape, its counters, and the runner.

A sensor captures events from one source and hands each one, already encoded as its JSON
envelope (docs/events.md), to an :class:`Emitter`. The runner (:func:`run_sensor`) owns
everything around it, the same for every sensor:

- the Kafka :class:`~falconet.sensors.publisher.Publisher` and the event topic of the
  sensor's source (``events.<source>.v1`` under the configured prefix);
- SIGTERM/SIGINT: the first asks the sensor to stop (it detaches and returns from
  ``run``), then the publisher flushes what is buffered; a second signal exits at once;
- the Prometheus endpoint (``falconet_sensor_*`` from :class:`SensorStats`, plus whatever
  metrics the sensor module registers itself);
- a summary line when the sensor stops.

A sensor implements three methods::

    setup()      acquire what it needs; raise SensorError with what is missing, never crash
    run(emit)    capture until stop() is called; emit(envelope, key) per event
    stop()       callable from a signal handler or another thread; run() returns soon after

Sensors never import Faust; the rules engine is theirs to use (the syscall sensor asks it
which event types the loaded rules need).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from falconet.config import Config
from falconet.errors import FalconetError
from falconet.kafka import KafkaSettings
from falconet.sensors.publisher import Delivery, Publisher
from falconet.stopping import stop_on_signals
from falconet.streams import topics as T
from falconet.streams.dlq import dlq_record

log = logging.getLogger("falconet.sensor")


@dataclass(slots=True)
class SensorStats:
    """Counters every sensor keeps (exported as ``falconet_sensor_*{sensor=...}``)."""

    events: int = 0  # events emitted
    drops: int = 0  # events lost before they could be emitted (e.g. ring buffer full)
    errors: int = 0  # inputs that could not be turned into events (sent to the DLQ)
    last_error: str = ""


class Emitter:
    """Where a sensor's events go: the event topic of its source, batched by the publisher.

    ``emit(envelope, key)`` adds one encoded envelope to the batch of ``key`` (the host for
    syscalls, the account for CloudTrail, the cluster for audit events), so one key's events
    stay in order on one partition. :meth:`tracked` produces a group at once and returns a
    :class:`Delivery` to wait on before acknowledging the source. :meth:`dead_letter`
    records an input that could not be used, with the reason, on ``dlq.v1``.
    """

    __slots__ = ("publisher", "topic", "dlq_topic", "sensor", "stats", "_publish")

    def __init__(
        self, publisher: Publisher, topic: str, dlq_topic: str, sensor: str, stats: SensorStats
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.sensor = sensor
        self.stats = stats
        self._publish = publisher.publish

    def __call__(self, envelope: bytes, key: bytes | str | None = None) -> None:
        self._publish(self.topic, envelope, key)
        self.stats.events += 1

    def many(self, envelopes: Sequence[bytes], key: bytes | str | None = None) -> None:
        """Emit several envelopes of one key (cheaper than one call each)."""
        publish, topic = self._publish, self.topic
        for env in envelopes:
            publish(topic, env, key)
        self.stats.events += len(envelopes)

    def tracked(self, envelopes: Sequence[bytes], key: bytes | str | None = None) -> Delivery:
        """Produce ``envelopes`` now; wait on the result before acknowledging the source."""
        delivery = self.publisher.publish_tracked(self.topic, envelopes, key)
        self.stats.events += len(envelopes)
        return delivery

    def tick(self) -> None:
        """Send batches older than ``publisher.batch_ms``; call it when idle."""
        self.publisher.tick()

    def dead_letter(
        self,
        reason: str,
        original: bytes | None,
        *,
        source: str | None = None,
        details: Any = None,
        index: int | None = None,
        wait: bool = False,
    ) -> Delivery:
        """Record an unusable input on the DLQ (stage ``decode``) and count it as an error."""
        self.stats.errors += 1
        self.stats.last_error = reason
        log.warning("sensor.dead_letter sensor=%s reason=%s", self.sensor, reason)
        record = dlq_record(
            "decode",
            reason,
            None,
            original,
            f"sensor:{self.sensor}",
            index=index,
            source=source,
            details=details,
        )
        delivery = self.publisher.produce_tracked(self.dlq_topic, record)
        if wait:
            delivery.wait()
        return delivery


class Sensor(Protocol):
    """A producer of one source's events (see the module docstring)."""

    #: Short name used in logs, metrics and DLQ records (``syscall``, ``cloudtrail``...).
    name: str
    #: The event source it produces (``syscall``, ``aws_cloudtrail``, ``k8s_audit``).
    source: str
    stats: SensorStats

    def setup(self) -> None: ...

    def run(self, emit: Emitter) -> None: ...

    def stop(self) -> None: ...


class _StatsCollector:
    """Prometheus collector reading a sensor's and its publisher's counters at scrape time."""

    def __init__(self, sensor: Sensor, publisher: Publisher) -> None:
        self.sensor = sensor
        self.publisher = publisher

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        name = self.sensor.name
        s, p = self.sensor.stats, self.publisher.stats
        for metric, doc, value in (
            ("falconet_sensor_events", "Events emitted by the sensor", s.events),
            ("falconet_sensor_drops", "Events lost before they could be emitted", s.drops),
            ("falconet_sensor_errors", "Inputs sent to the DLQ", s.errors),
            ("falconet_sensor_published_records", "Kafka records acknowledged", p.delivered),
            (
                "falconet_sensor_publish_errors",
                "Kafka records that could not be delivered",
                p.failed,
            ),
        ):
            family = CounterMetricFamily(metric, doc, labels=["sensor"])
            family.add_metric([name], value)
            yield family


def serve_metrics(port: int, sensor: Sensor, publisher: Publisher) -> None:
    """Serve ``/metrics`` on ``port`` (0: off) with the sensor's counters."""
    if not port:
        return
    from prometheus_client import REGISTRY, start_http_server

    REGISTRY.register(_StatsCollector(sensor, publisher))  # type: ignore[arg-type]
    start_http_server(port)
    log.info("sensor.metrics sensor=%s port=%d", sensor.name, port)


def run_sensor(
    sensor: Sensor,
    cfg: Config,
    *,
    settings: KafkaSettings | None = None,
    metrics_port: int = 0,
    on_ready: Callable[[Emitter], None] | None = None,
) -> SensorStats:
    """Set the sensor up, run it to the end (or SIGTERM/SIGINT), flush, and return its stats.

    Raises :class:`FalconetError` subclasses (``SensorError``, ``NoBrokerError``...) with a
    message for the operator; the CLI prints them without a traceback.
    """
    settings = settings or KafkaSettings.from_config(cfg)
    sensor.setup()
    publisher = Publisher.from_config(cfg, settings, client_id=f"falconet-sensor-{sensor.name}")
    emit = Emitter(
        publisher,
        settings.topic(T.events_topic(sensor.source)),
        settings.topic(T.DLQ),
        sensor.name,
        sensor.stats,
    )
    serve_metrics(metrics_port, sensor, publisher)

    def on_stop(signum: int) -> None:
        log.info("sensor.stopping sensor=%s signal=%s", sensor.name, signal.Signals(signum).name)
        sensor.stop()

    started = time.monotonic()
    from falconet.event import SOURCES

    # metadata publishers write the meta.* tables themselves, not an events topic
    where = emit.topic if sensor.source in SOURCES else settings.topic("meta.*")
    log.info("sensor.started sensor=%s topic=%s", sensor.name, where)
    with stop_on_signals(on_stop):  # also while the publisher flushes: a second signal gives up
        try:
            if on_ready is not None:
                on_ready(emit)
            sensor.run(emit)
        finally:
            sensor.stop()
            publisher.close()
    s, p = sensor.stats, publisher.stats
    log.info(
        "sensor.stopped sensor=%s events=%d drops=%d errors=%d records=%d delivered=%d failed=%d seconds=%.1f",
        sensor.name,
        s.events,
        s.drops,
        s.errors,
        p.records,
        p.delivered,
        p.failed,
        time.monotonic() - started,
    )
    if p.lost:  # failures of tracked records were answered to their source (e.g. a 503)
        raise FalconetError(f"{p.lost} Kafka records could not be delivered: {p.last_error}")
    return s


def envelope(obj: dict[str, Any]) -> bytes:
    """Encode one envelope object (docs/events.md) for :class:`Emitter`."""
    return orjson.dumps(obj)


def run_sensor_command(
    sensor: Sensor,
    cfg: Config,
    *,
    settings: KafkaSettings | None,
    metrics_port: int,
    interrupted: str,
) -> SensorStats:
    """:func:`run_sensor` for a ``falconet sensor`` command: a failure while running is
    printed without a traceback and exits 1 (a taken metrics port too); a second signal
    exits 130 at once, saying ``interrupted`` (what the next start does about it)."""
    import sys

    from falconet.cli_common import err

    try:
        return run_sensor(sensor, cfg, settings=settings, metrics_port=metrics_port)
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(1)
    except OSError as exc:  # e.g. the metrics port is taken
        err(f"falconet: {exc.strerror or exc}")
        sys.exit(1)
    except KeyboardInterrupt:  # a second signal: no clean stop
        err(f"falconet: stopped at once; {interrupted}")
        sys.exit(130)


async def supervise(tasks: Sequence[Any], stop: Any, what: str) -> None:
    """Run the asyncio ``tasks`` of a long-running sensor until ``stop`` (an
    ``asyncio.Event``) is set or one of them fails; then cancel them all and wait for them.
    A failure is raised as SensorError naming ``what``."""
    import asyncio

    from falconet.errors import SensorError

    waiter = asyncio.create_task(stop.wait())
    failed: list[Any] = []
    pending: set[Any] = {*tasks, waiter}
    try:
        while waiter in pending and not failed:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    finally:
        stop.set()
        for task in [*tasks, waiter]:
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
    if failed:
        exc = failed[0].exception()
        raise SensorError(f"{what} failed: {exc!r}") from exc

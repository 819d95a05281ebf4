"""The stream worker: one Faust app with an agent per event source.

Each agent consumes its ``events.<source>.v1`` topic (records are batches of envelopes),
runs :class:`~falconet.streams.pipeline.Pipeline` on every record, and produces detections
to ``detections.v1`` and dead letters to ``dlq.v1``, **waiting for the broker to
acknowledge them before taking the next record**. Faust commits a consumer offset only
for records whose processing finished (and flushes its producer first), so an event is
never acknowledged before the detections it caused are stored: at-least-once. A worker
killed mid-record re-reads that record after restart (duplicates are possible; each
detection has a stable id, so they are recognizable).

Metadata tables are Faust GlobalTables (every worker holds all of them) fed by agents from
the compacted ``meta.*.v1`` topics, kept in memory and rebuilt from their changelog after a
restart. Rule sets come from ``rules.v1`` (see :mod:`falconet.streams.rulesets`).

Several workers share the event topics' partitions through the consumer group
``<prefix>worker``; start more with `falconet worker`.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from falconet.config import Config
from falconet.event import SOURCES
from falconet.kafka import MAX_MESSAGE_BYTES, KafkaSettings

from . import metrics
from .dlq import Origin, dlq_record
from .lag import LagError, LagProbe
from .pipeline import Pipeline
from .rulesets import Ruleset, RulesetHolder, RulesFollower
from .topics import DETECTIONS, DLQ, META_TABLES, STATUS, events_topic, meta_topic

log = logging.getLogger("falconet.worker")

_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _data_dir(cfg: Config, worker_id: str) -> Path:
    base = cfg["worker.data_dir"] or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "falconet", "worker"
    )
    path = Path(base) / worker_id
    path.mkdir(parents=True, exist_ok=True)
    return path


class StatusReporter(threading.Thread):
    """Publishes this worker's status to the compacted ``status.v1`` (key = worker id)."""

    def __init__(self, settings: KafkaSettings, worker_id: str, holder: RulesetHolder,
                 counters: dict[str, int], every: float = 15.0) -> None:  # fmt: skip
        super().__init__(name="falconet-status", daemon=True)
        from confluent_kafka import Producer

        self.settings = settings
        self.worker_id = worker_id
        self.holder = holder
        self.counters = counters
        self.every = every
        self.started_at = time.time_ns()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._producer = Producer(settings.confluent(**{"acks": "all"}))
        self.lag: dict[str, int] = {}
        self._lag_probe = LagProbe(
            settings, settings.topic("worker"), [settings.topic(events_topic(s)) for s in SOURCES]
        )

    def measure_lag(self) -> None:
        """Refresh the group's consumer lag (metric and status record)."""
        try:
            self.lag = self._lag_probe.measure()
        except LagError as exc:
            log.warning("%s", exc)
            return
        for topic, behind in self.lag.items():
            metrics.LAG.labels(topic).set(behind)

    def snapshot(self, state: str) -> dict[str, Any]:
        r = self.holder.state
        return {
            "v": 1,
            "worker": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "state": state,
            "started_at": self.started_at,
            "updated_at": time.time_ns(),
            "rules": {
                "version": r.version,
                "origin": r.origin,
                "loaded_at": r.loaded_at,
                "rules": r.rules,
                "policies": r.policies,
                "refused_version": r.refused_version,
                "refused_errors": r.refused_errors[:5],
            },
            "counters": dict(self.counters),
            "lag": dict(self.lag),
        }

    def publish(self, state: str = "running") -> None:
        self._producer.produce(
            self.settings.topic(STATUS),
            key=self.worker_id.encode(),
            value=orjson.dumps(self.snapshot(state)),
        )
        self._producer.poll(0)

    def changed(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.measure_lag()
                self.publish()
            except Exception:
                log.exception("status publish failed")
            self._wake.wait(self.every)
            self._wake.clear()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        self.join(timeout=5)
        try:
            self.publish("stopped")
        finally:
            self._producer.flush(10)
            self._lag_probe.close()


def build_app(cfg: Config, settings: KafkaSettings, pipeline: Pipeline, worker_id: str,
              counters: dict[str, int]) -> Any:  # fmt: skip
    """The Faust app of a worker (not started)."""
    import faust

    from falconet.enrichers.late import ContainerWait
    from falconet.enrichers.metadata import MetadataEnricher

    app = faust.App(
        settings.topic("worker"),
        broker=[f"kafka://{b.strip()}" for b in settings.bootstrap.split(",")],
        broker_credentials=settings.faust_credentials(),
        store="memory://",
        datadir=str(_data_dir(cfg, worker_id)),
        topic_partitions=cfg["topics.partitions"],
        topic_replication_factor=cfg["topics.replication"],
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        web_enabled=False,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        producer_acks=-1,
        table_standby_replicas=0,
    )
    detections = app.topic(settings.topic(DETECTIONS), **_RAW)
    dlq = app.topic(settings.topic(DLQ), **_RAW)

    # -- metadata tables ----------------------------------------------------------------
    tables = {}
    for name in META_TABLES:
        table = app.GlobalTable(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=cfg["topics.meta_partitions"],
            help=f"metadata: {META_TABLES[name]}",
        )
        tables[name] = table
        _meta_agent(app, settings.topic(meta_topic(name)), table, cfg["topics.meta_partitions"])
    pipeline.enricher = MetadataEnricher({name: _StoreView(t) for name, t in tables.items()})
    # a container's first events may arrive before its metadata: a bounded wait (enrichers/late.py)
    waiter = ContainerWait(_StoreView(tables["containers"]), wait=cfg["enrich.wait_ms"] / 1000,
                           max_pending=cfg["enrich.max_pending"])  # fmt: skip

    # -- one agent per event source ----------------------------------------------------------
    for source in SOURCES:
        _source_agent(app, settings.topic(events_topic(source)), source, pipeline, detections,
                      dlq, worker_id, counters, waiter if source == "syscall" else None)  # fmt: skip
    return app


class _StoreView:
    """Read-only, per-event lookups straight in a table's in-memory store.

    Faust's table ``get`` adds bookkeeping (monitor hooks, key events) that cost more than
    the lookup itself on the hot path; enrichment only reads, so it reads the store's dict
    (the worker uses the ``memory://`` store, whose ``data`` is a plain dict).
    """

    __slots__ = ("_table",)

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: bytes) -> bytes | None:
        return self._table.data.data.get(key)

    def __len__(self) -> int:
        return len(self._table.data.data)


def _meta_agent(app: Any, topic_name: str, table: Any, partitions: int) -> None:
    topic = app.topic(topic_name, partitions=partitions, **_RAW)

    @app.agent(topic, name=f"falconet.meta.{table.name}")
    async def load(stream: Any) -> None:
        async for key, value in stream.items():
            if key is None:
                continue
            if value is None:  # a tombstone deletes the entry
                table.pop(key, None)
            else:
                table[key] = value


def _source_agent(app: Any, topic_name: str, source: str, pipeline: Pipeline, detections: Any,
                  dlq: Any, worker_id: str, counters: dict[str, int],
                  waiter: Any = None) -> None:  # fmt: skip
    topic = app.topic(topic_name, **_RAW)

    @app.agent(topic, name=f"falconet.evaluate.{source}")
    async def evaluate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            origin = Origin(msg.topic, msg.partition, msg.offset, event.key)
            try:
                if waiter is None:
                    outcome = pipeline.process(event.value, origin)
                else:  # hold the record (bounded) while a container it names has no metadata
                    decoded = pipeline.decode(event.value, origin)
                    await waiter.settle_counts(decoded.containers)
                    counters["container_waits"] = waiter.stats.waits
                    counters["container_waits_expired"] = waiter.stats.expired
                    outcome = pipeline.finish(decoded)
                    # free the record's events now: held until the next record's decode, they
                    # keep the allocator from reusing hot memory (9 % of a worker's time)
                    del decoded
                pending = []
                for d in outcome.detections:
                    pending.append(
                        await detections.send(
                            key=d.hostname.encode(),
                            value=d.to_json(),
                            headers=[("rule", d.rule.encode()), ("priority", d.priority.title.encode()),
                                     ("source", d.source.encode())],  # fmt: skip
                        )
                    )
                    metrics.DETECTIONS.labels(d.source, d.priority.title).inc()
                for record in outcome.dead_letters:
                    pending.append(await dlq.send(key=event.key, value=record))
                    metrics.DEAD_LETTERS.labels(orjson.loads(record)["stage"]).inc()
                for fut in pending:
                    await fut  # delivered before this record counts as processed
                counters["records"] = counters.get("records", 0) + 1
                counters["events"] = counters.get("events", 0) + outcome.events
                counters["detections"] = counters.get("detections", 0) + len(outcome.detections)
                counters["dead_letters"] = counters.get("dead_letters", 0) + len(outcome.dead_letters)
                metrics.RECORDS.labels(msg.topic).inc()
                metrics.EVENTS.labels(source).inc(outcome.events)
            except Exception as exc:  # never let an agent crash (it would stall the stream)
                log.exception("record failed topic=%s partition=%d offset=%d", msg.topic,
                              msg.partition, msg.offset)  # fmt: skip
                try:
                    fut = await dlq.send(
                        key=event.key,
                        value=dlq_record("worker", f"{type(exc).__name__}: {exc}", origin,
                                         event.value, worker_id),  # fmt: skip
                    )
                    await fut
                except Exception:
                    log.exception("could not write the DLQ record; the record will be retried")
                    raise


def run_worker(cfg: Config, settings: KafkaSettings, rules_paths: list[str], worker_id: str = "",
               loglevel: str = "warn") -> int:  # fmt: skip
    """Run a worker until SIGTERM/SIGINT; returns the exit status."""
    import faust

    worker_id = worker_id or cfg["worker.id"] or default_worker_id()
    holder = RulesetHolder(cfg.engine_config())
    counters: dict[str, int] = {}
    reporter = StatusReporter(settings, worker_id, holder, counters)

    def on_change() -> None:
        metrics.RULE_RELOADS.labels("loaded" if not holder.state.refused_version else "refused").inc()
        metrics.RULES_LOADED.set(holder.state.rules)
        metrics.RULESET.info({"version": holder.state.version, "origin": holder.state.origin})
        reporter.changed()

    follower = RulesFollower(settings, holder, on_change)
    latest = follower.catch_up()
    if latest is not None:
        holder.apply(latest, "push")
    if not holder.state.version:
        from falconet.cli_common import bundled_rules_dir

        initial = Ruleset.from_files(rules_paths or [str(bundled_rules_dir())])
        result = holder.apply(initial, "files")
        if not result.ok:
            for m in result.errors:
                log.error("%s", m.format())
            return 1
    on_change()
    follower.start()
    reporter.start()
    if cfg["worker.metrics_port"]:
        from prometheus_client import start_http_server

        start_http_server(cfg["worker.metrics_port"])
    pipeline = Pipeline(holder, None, worker_id, cfg["worker.max_record_bytes"])
    app = build_app(cfg, settings, pipeline, worker_id, counters)
    log.warning(
        "worker %s starting: rules %s (%s, %d rules), bootstrap %s",
        worker_id, holder.state.version, holder.state.origin, holder.state.rules, settings.bootstrap,
    )  # fmt: skip
    # Batches allocate many short-lived containers; with the default thresholds the
    # cyclic GC scans them over and over (a 500-event batch then decodes ~50 % slower).
    # Everything built so far (rules, app) is frozen out of the scans, and collections
    # run every 100,000 allocations instead of 700.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        follower.stop()
        reporter.stop()
    return 0

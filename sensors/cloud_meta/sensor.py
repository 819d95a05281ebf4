"""The publisher process: reads each source on its schedule and publishes the changes.

``setup`` reads every chosen source once and the metadata topics to their end: a missing
permission, missing credentials or an unreachable IMDS stop the start with a message
naming what to fix (exit 2). While running, a failed round is logged, counted and retried
with backoff; what was published stays as it is (a refused listing deletes nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from falconet.errors import FalconetError, SensorError
from falconet.kafka import KafkaSettings
from falconet.sensors.base import Emitter, SensorStats
from falconet.sensors.publisher import Publisher
from falconet.streams.topics import meta_topic

from .aws import Backoff
from .inventory import AccountSource, IdentitySource, InstanceSource, Snapshot
from .metrics import CloudMetaStats
from .options import Options
from .table import MetaTable

log = logging.getLogger("falconet.sensors.cloud_meta")


class Source(Protocol):
    name: str
    table: str
    refresh_seconds: float

    def fetch(self) -> Snapshot: ...


def sources_for(options: Options) -> list[Source]:
    out: list[Source] = []
    if options.imds:
        out.append(InstanceSource(options))
    if options.accounts:
        out.append(AccountSource(options))
    if options.identities:
        out.append(IdentitySource(options))
    return out


class CloudMetaSensor:
    """Publishes instance, account and identity metadata (see the package docstring)."""

    name = "cloud-meta"
    source = "cloud_meta"  # no events topic: records go to the meta topics

    def __init__(
        self,
        options: Options,
        settings: KafkaSettings,
        sources: list[Source] | None = None,
        backoff_cap: float = 300.0,
    ) -> None:
        self.options = options
        self.settings = settings
        self.sources = sources if sources is not None else sources_for(options)
        self.stats = SensorStats()
        self.cstats = CloudMetaStats()
        self.tables: dict[str, MetaTable] = {}
        self.failed_rounds = 0
        self._pending: dict[str, Snapshot] = {}
        self._backoff = {
            s.name: Backoff(base=min(5.0, backoff_cap), cap=backoff_cap) for s in self.sources
        }
        self._stop = threading.Event()
        self._ready = False

    def setup(self) -> None:
        """Read every source once and the topics to their end (idempotent)."""
        if self._ready:
            return
        if not self.sources:
            raise SensorError("nothing to publish: choose --imds, --accounts and/or --identities")
        for source in self.sources:
            try:
                self._pending[source.name] = source.fetch()
            except FalconetError as exc:
                raise SensorError(str(exc)) from None
            if source.table not in self.tables:
                topic = self.settings.topic(meta_topic(source.table))
                self.tables[source.table] = MetaTable(topic, self.options.publisher_id)
        for table in self.tables.values():
            try:
                table.load(self.settings)
            except FalconetError:
                raise
            except Exception as exc:  # confluent_kafka.KafkaException: no broker
                raise SensorError(f"cannot read {table.topic}: {exc}") from None
        self._ready = True
        log.info("cloud_meta.ready sources=%s node=%s", ",".join(s.name for s in self.sources),
                 self.options.node_name if self.options.imds else "-")  # fmt: skip

    def round(self, source: Source, publisher: Publisher) -> bool:
        """Read ``source`` (or take what setup read) and publish the changes; False if it failed."""
        table = self.tables[source.table]
        try:
            snapshot = self._pending.pop(source.name, None) or source.fetch()
            result = table.sync(publisher, snapshot)
        except (FalconetError, KeyError, ValueError, TypeError) as exc:
            self.failed_rounds += 1
            self.cstats.count(self.cstats.errors, source.name)
            self.stats.last_error = str(exc)
            log.warning("cloud_meta.failed source=%s error=%s", source.name, exc)
            return False
        if snapshot.problems:
            self.failed_rounds += 1
        for problem in snapshot.problems:  # a part failed; the rest was published
            self.cstats.count(self.cstats.errors, source.name)
            self.stats.last_error = problem
            log.warning("cloud_meta.partial source=%s error=%s", source.name, problem)
        self.stats.events += result.changes
        self.cstats.count(self.cstats.upserts, source.table, result.upserts)
        self.cstats.count(self.cstats.deletes, source.table, result.deletes)
        self.cstats.entities[source.table] = len(table.published)
        self.cstats.last_success[source.name] = time.time()
        if result.changes:
            log.info("cloud_meta.published source=%s topic=%s upserts=%d deletes=%d",
                     source.name, table.topic, result.upserts, result.deletes)  # fmt: skip
        return not snapshot.problems

    def run(self, emit: Emitter) -> None:
        publisher = emit.publisher
        due = dict.fromkeys((s.name for s in self.sources), 0.0)
        while not self._stop.is_set():
            for source in self.sources:
                if self._stop.is_set() or time.monotonic() < due[source.name]:
                    continue
                backoff = self._backoff[source.name]
                if self.round(source, publisher):
                    backoff.reset()
                    due[source.name] = time.monotonic() + source.refresh_seconds
                else:
                    delay = backoff.next()
                    due[source.name] = time.monotonic() + delay
                    log.info("cloud_meta.retry source=%s in_seconds=%.1f", source.name, delay)
            if self.options.once:
                return
            self._stop.wait(max(0.05, min(due.values()) - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()

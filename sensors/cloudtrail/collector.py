"""The CloudTrail collector: log files from a source → records on ``events.aws_cloudtrail.v1``.

One loop, in the runner's thread, owns Kafka and the checkpoint; a small pool reads and
decodes files (at most ``max_in_flight`` files between "found" and "acknowledged"):

1. **take** files from the source (SQS notifications, a listing round, a directory scan)
   while there is room; a file already checkpointed with the same version is skipped;
2. **read** each in the pool (S3 ``GetObject`` or the local file) and decode it
   (:mod:`.logfile`);
3. **publish**, in the order the files were taken (so one account's records keep
   CloudTrail's order): the records of each account as one tracked group keyed by the
   account id; a DLQ record for each record that is no event, or one for the whole file
   when it cannot be read (not gzip/JSON, no ``Records``, deleted before it was read);
4. **acknowledge** once Kafka has acknowledged every record of the file (events and DLQ
   records): append it to the checkpoint (fsync), then tell the source (SQS: delete the
   message). A delivery that fails leaves both untouched: the file is read again later.

On stop (SIGTERM), files already published are given ``drain_seconds`` to be
acknowledged; every other file is abandoned without a checkpoint entry (SQS messages are
made visible again at once), so the next run reads it again.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from falconet.errors import FalconetError, PublishError, SensorError
from falconet.event import AWS_CLOUDTRAIL
from falconet.inputs import RecordDecoder
from falconet.sensors.base import Emitter, SensorStats
from falconet.sensors.publisher import Delivery

from .aws import make_client, region_of_queue_url
from .checkpoint import Checkpoint
from .directory import DirectoryFollower
from .listing import BucketListing
from .logfile import Decoded, UnreadableFile, decode_log_file
from .metrics import CollectorStats
from .options import BUCKET, SQS, CollectorOptions
from .sources import FetchError, ObjectRef, Outcome, Source
from .sqs import SqsQueue

log = logging.getLogger("falconet.sensor.cloudtrail")

PROGRESS_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Read:
    """What the pool made of one file."""

    etag: str = ""
    size: int = 0
    decoded: Decoded | None = None
    unreadable: str = ""  # the reason the whole file goes to the DLQ
    data: bytes | None = None  # the stored bytes, kept only for that DLQ record
    error: FetchError | None = None


@dataclass(slots=True)
class _Work:
    """One file between "taken" and "acknowledged"."""

    ref: ObjectRef
    future: Future[_Read]
    read: _Read | None = None
    status: str = ""  # set once published: "published" or "dead_letter"
    deliveries: list[Delivery] = field(default_factory=list)


class CloudTrailCollector:
    """The ``cloudtrail`` sensor (see the module docstring)."""

    name = "cloudtrail"
    source = AWS_CLOUDTRAIL

    def __init__(
        self,
        options: CollectorOptions,
        *,
        source: Source | None = None,
        checkpoint: Checkpoint | None = None,
        decoder: RecordDecoder | None = None,
    ) -> None:
        self.options = options
        self.stats = SensorStats()
        self.cstats = CollectorStats()
        self.decoder = decoder or RecordDecoder()
        self._source = source
        self._checkpoint = checkpoint
        self._stop = threading.Event()
        self._work: list[_Work] = []
        self._deferred: list[ObjectRef] = []  # same file already in flight: after it
        self._failed = 0
        self._ready = False

    # -- Sensor ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Open the checkpoint, build the source and check access (idempotent)."""
        if self._ready:
            return
        if self._checkpoint is None:
            self._checkpoint = Checkpoint.open(self.options.checkpoint_path)
        try:
            if self._source is None:
                self._source = self._make_source()
            self._source.check()
        except FalconetError:
            self._checkpoint.close()
            self._checkpoint = None
            raise
        self._ready = True
        log.info("cloudtrail.setup source=%s checkpoint=%s objects=%d", self._source.name,
                 self._checkpoint.path, len(self._checkpoint))  # fmt: skip

    def _make_source(self) -> Source:
        o = self.options
        assert self._checkpoint is not None
        if o.mode == SQS:
            region = o.region or region_of_queue_url(o.sqs_queue_url)
            return SqsQueue(
                make_client("sqs", region, o.endpoint_url, read_timeout=o.sqs_wait_seconds + 30),
                make_client("s3", region, o.endpoint_url), o.sqs_queue_url, self.cstats,
                wait_seconds=o.sqs_wait_seconds, visibility_seconds=o.visibility_seconds, once=o.once,
                checkpoint=self._checkpoint,
            )  # fmt: skip
        if o.mode == BUCKET:
            return BucketListing(make_client("s3", o.region, o.endpoint_url), o.bucket, o.prefix, self._checkpoint,
                                 poll_seconds=o.poll_seconds, since=o.since, once=o.once)  # fmt: skip
        return DirectoryFollower(o.directory, self._checkpoint, poll_seconds=o.poll_seconds,
                                 settle_seconds=o.settle_seconds, once=o.once)  # fmt: skip

    def stop(self) -> None:
        self._stop.set()

    def run(self, emit: Emitter) -> None:
        self.setup()
        source, checkpoint = self._source, self._checkpoint
        assert source is not None and checkpoint is not None
        pool = ThreadPoolExecutor(self.options.max_in_flight, thread_name_prefix="cloudtrail-read")
        source.start(emit.dead_letter)
        next_progress = time.monotonic() + PROGRESS_SECONDS
        try:
            while not self._stop.is_set():
                self._take(source, pool)
                self._publish(emit)
                emit.tick()  # sends open batches, serves delivery callbacks
                self._acknowledge(source)
                source.tick()
                if time.monotonic() >= next_progress:
                    self._progress()
                    next_progress = time.monotonic() + PROGRESS_SECONDS
                if self.options.once and not self._work and not self._deferred and source.drained():
                    break
                self._stop.wait(0.02 if self._work else 0.2)
            self._drain(emit, source)
        finally:
            self._abandon(source)
            pool.shutdown(wait=False, cancel_futures=True)
            source.close()
            checkpoint.close()
            self._ready = False
            self._checkpoint = None
            self._progress()
        if self.options.once and self._failed:
            raise SensorError(
                f"{self._failed} log files could not be read or published; they are left for the "
                "next run (see the log)"
            )

    # -- the steps ------------------------------------------------------------------------------
    def _take(self, source: Source, pool: ThreadPoolExecutor) -> None:
        assert self._checkpoint is not None
        in_flight = {w.ref.id for w in self._work}
        again, self._deferred = self._deferred, []
        free = self.options.max_in_flight - len(self._work)
        refs = again + (source.take(free - len(again)) if free > len(again) else [])
        for ref in refs:
            if self._checkpoint.done(ref.id, ref.etag):
                self._finish(source, Outcome(ref, "skipped", ref.etag))
            elif ref.id in in_flight:
                self._deferred.append(ref)
            else:
                in_flight.add(ref.id)
                self._work.append(_Work(ref, pool.submit(self._read, source, ref)))
        self.cstats.in_flight = len(self._work)

    def _read(self, source: Source, ref: ObjectRef) -> _Read:
        """In the pool: fetch and decode one file (never raises)."""
        try:
            fetched = source.read(ref)
        except FetchError as exc:
            return _Read(error=exc)
        except Exception as exc:  # a bug must not kill the loop: retry later, loudly
            log.exception("cloudtrail.read id=%s", ref.id)
            return _Read(error=FetchError(f"cannot read {ref.id}: {exc!r}", kind="file"))
        versioned = ObjectRef(
            ref.kind, ref.bucket, ref.key, fetched.etag, len(fetched.data), ref.token
        )
        try:
            decoded = decode_log_file(fetched.data, versioned, self.decoder)
        except UnreadableFile as exc:
            return _Read(fetched.etag, len(fetched.data), unreadable=str(exc), data=fetched.data)
        return _Read(fetched.etag, len(fetched.data), decoded)

    def _publish(self, emit: Emitter) -> None:
        """Publish finished reads, in the order the files were taken."""
        for w in self._work:
            if w.status or w.read is not None and w.read.error is not None:
                continue
            if not w.future.done():
                return  # keep the order: later files wait for this one
            w.read = r = w.future.result()
            if r.error is not None:
                self._read_failed(emit, w, r.error)
                continue
            assert self._checkpoint is not None
            if self._checkpoint.done(w.ref.id, r.etag):
                w.status = "skipped"
                continue
            self.cstats.bytes += r.size
            where = replace(w.ref, etag=r.etag).where()
            if r.decoded is None:
                w.status = "dead_letter"
                w.deliveries.append(emit.dead_letter(r.unreadable, r.data, source=AWS_CLOUDTRAIL,
                                                     details={**where, "size": r.size}))  # fmt: skip
                continue
            w.status = "published"
            log.debug("cloudtrail.publishing id=%s etag=%s records=%d bad_records=%d", w.ref.id, r.etag,
                      r.decoded.records, len(r.decoded.bad))  # fmt: skip
            try:
                for key, envelopes in r.decoded.groups.items():
                    w.deliveries.append(emit.tracked(envelopes, key or None))
            except PublishError as exc:  # an envelope too large: logfile.py keeps them out
                w.status, w.read = "", _Read(error=FetchError(str(exc), kind="kafka"))
                continue
            for bad in r.decoded.bad:
                w.deliveries.append(emit.dead_letter(f"Records[{bad.index}]: {bad.reason}", bad.original,
                                                     source=AWS_CLOUDTRAIL, details={**where, "index": bad.index}))  # fmt: skip

    def _read_failed(self, emit: Emitter, w: _Work, error: FetchError) -> None:
        if error.permanent:
            w.status = "dead_letter"
            w.deliveries.append(
                emit.dead_letter(str(error), None, source=AWS_CLOUDTRAIL, details=w.ref.where())
            )
            return
        self.cstats.errors[error.kind] += 1  # logged when the file is finished as failed

    def _acknowledge(self, source: Source) -> None:
        """Finish every file whose deliveries are all done (or whose read failed)."""
        still: list[_Work] = []
        for w in self._work:
            r = w.read
            if r is not None and r.error is not None and not w.status:
                self._finish(source, Outcome(w.ref, "failed", error=str(r.error)))
            elif w.status == "skipped":
                self._finish(source, Outcome(w.ref, "skipped", r.etag if r else ""))
            elif w.status and all(d.done for d in w.deliveries):
                self._finish(source, self._delivered(w))
            else:
                still.append(w)
        self._work = still
        self.cstats.in_flight = len(still)

    def _delivered(self, w: _Work) -> Outcome:
        r = w.read
        assert r is not None and self._checkpoint is not None
        errors = [e for d in w.deliveries for e in d.errors]
        records = r.decoded.records if r.decoded else 0
        bad = len(r.decoded.bad) if r.decoded else 0
        if errors:
            self.cstats.errors["kafka"] += 1
            log.error("cloudtrail.publish_failed id=%s error=%s", w.ref.id, errors[0])
            return Outcome(w.ref, "failed", r.etag, records, bad, errors[0])
        self._checkpoint.record(w.ref.id, r.etag, records, w.status)
        self.cstats.records += records
        self.cstats.bad_records += bad
        if r.decoded and r.decoded.newest_ts > self.cstats.newest_event_ts:
            self.cstats.newest_event_ts = r.decoded.newest_ts
        return Outcome(w.ref, w.status, r.etag, records, bad)

    def _finish(self, source: Source, outcome: Outcome) -> None:
        status = outcome.status
        if status != "abandoned":
            self.cstats.objects[status] += 1
        if status == "failed":
            self._failed += 1
        level = logging.INFO if outcome.acknowledged else logging.WARNING
        if status != "skipped" or log.isEnabledFor(logging.DEBUG):
            log.log(level, "cloudtrail.object id=%s etag=%s status=%s records=%d bad_records=%d%s",
                    outcome.ref.id, outcome.etag or outcome.ref.etag, status, outcome.records, outcome.problems,
                    f" error={outcome.error}" if outcome.error else "")  # fmt: skip
        source.finished(outcome)

    # -- stopping -------------------------------------------------------------------------------
    def _drain(self, emit: Emitter, source: Source) -> None:
        """Give published files ``drain_seconds`` to be acknowledged."""
        deadline = time.monotonic() + self.options.drain_seconds
        while any(w.status for w in self._work) and time.monotonic() < deadline:
            emit.tick()
            self._acknowledge(source)
            if any(w.status for w in self._work):
                time.sleep(0.02)

    def _abandon(self, source: Source) -> None:
        for w in self._work:
            w.future.cancel()
            source.finished(Outcome(w.ref, "abandoned", error="the collector stopped"))
            log.info("cloudtrail.object id=%s status=abandoned (read again next run)", w.ref.id)
        for ref in self._deferred:
            source.finished(Outcome(ref, "abandoned", error="the collector stopped"))
        self._work, self._deferred = [], []
        self.cstats.in_flight = 0

    def _progress(self) -> None:
        s = self.cstats
        log.info(
            "cloudtrail.progress objects=%d dead_letter_objects=%d skipped=%d failed=%d records=%d "
            "bad_records=%d bytes=%d in_flight=%d lag_s=%.0f",
            s.objects["published"], s.objects["dead_letter"], s.objects["skipped"], s.objects["failed"],
            s.records, s.bad_records, s.bytes, s.in_flight, s.lag_seconds(),
        )  # fmt: skip

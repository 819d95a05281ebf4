"""The eBPF syscall sensor: load the program, read the ring in timed batches, publish.

``setup()`` checks the machine (:mod:`.preflight`), loads the CO-RE object shipped in this
package through libbpf, tells the kernel which syscalls to report (the event types the
loaded rules need), attaches the BTF raw tracepoints, and seeds the process table from
/proc. ``run()`` then loops: every ``syscall.poll_ms`` it takes whatever the ring holds
(the program never wakes us: ``BPF_RB_NO_WAKEUP``, ebpf-notes §9.2), turns it into
envelopes and produces them to Kafka as batch records. ``stop()`` (SIGTERM) detaches the
hooks, drains what is left in the ring and returns; the runner then flushes Kafka.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from falconet.config import Config
from falconet.errors import ConfigError, SensorError
from falconet.sensors.base import Emitter, SensorStats

from . import metrics, preflight
from . import records as R
from .encoder import Encoder
from .libbpf import BpfError, BpfObject, Libbpf
from .proctable import ProcessTable
from .ring import MmapRing
from .syscalls import CapturePlan, plan
from .users import UserTable

log = logging.getLogger("falconet.sensor.syscall")

PROGRAMS = ("fn_sys_exit", "fn_exec", "fn_fork", "fn_exit")
OBJECT_NAME = "sensor.bpf.o"  # reads kernel objects through the bpf_rdonly_cast kfunc
COMPAT_OBJECT_NAME = "sensor-compat.bpf.o"  # the same program with probe reads (kernel < 6.2)
DIRECT_LOAD_KFUNC = "bpf_rdonly_cast"
BACKLOG_RECORDS = 64  # records left in the ring after a read that mean "read again now"
PRUNE_SECONDS = 60.0  # how often processes gone without an exit record are forgotten


def packaged_object(name: str) -> str:
    return str(resources.files("falconet.sensors.syscall") / name)


def default_object(lib: Libbpf | None = None, btf_path: str = preflight.BTF_PATH) -> str:
    """The packaged object for this kernel: the one with direct loads when the kernel has
    the bpf_rdonly_cast kfunc (6.2 and later), else the compat one."""
    lib = lib or Libbpf.get()
    direct = lib.kernel_has_func(DIRECT_LOAD_KFUNC, btf_path)
    return packaged_object(OBJECT_NAME if direct else COMPAT_OBJECT_NAME)


def boot_to_epoch() -> int:
    """Nanoseconds to add to a CLOCK_BOOTTIME stamp (bpf_ktime_get_boot_ns) for epoch time."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


@dataclass(frozen=True, slots=True)
class SyscallSettings:
    """How the sensor runs (from ``syscall.*`` settings and the CLI)."""

    host: str
    ring_mb: int = 64
    poll_ms: int = 50
    event_types: frozenset[str] | None = None  # None: every type the sensor supports
    want_env: bool = True
    share_context: bool = True
    object_path: str = ""
    only_tgid: int = 0  # benchmarks: report one process only
    ignore_self: bool = True
    max_batch: int = 2048  # records per ring read: small reads stay in the CPU caches
    batch_events: int = 500  # publisher.batch_events
    batch_bytes: int = 512 * 1024  # publisher.batch_bytes
    batch_ms: int = 100  # publisher.batch_ms

    @classmethod
    def from_config(cls, cfg: Config, event_types: frozenset[str] | None = None,
                    **overrides: Any) -> SyscallSettings:  # fmt: skip
        ring_mb = int(overrides.pop("ring_mb", None) or cfg["syscall.ring_mb"])
        if ring_mb < 1 or ring_mb & (ring_mb - 1):
            raise ConfigError(f"syscall.ring_mb must be a power of two (MiB), not {ring_mb}")
        poll_ms = int(overrides.pop("poll_ms", None) or cfg["syscall.poll_ms"])
        if not 1 <= poll_ms <= 1000:
            raise ConfigError(f"syscall.poll_ms must be between 1 and 1000, not {poll_ms}")
        host = overrides.pop("host", None) or cfg["syscall.host"] or socket.gethostname()
        return cls(
            host=host, ring_mb=ring_mb, poll_ms=poll_ms, event_types=event_types,
            want_env=cfg["syscall.env"], share_context=cfg["syscall.share_context"],
            object_path=cfg["syscall.object"],
            batch_events=cfg["publisher.batch_events"], batch_bytes=cfg["publisher.batch_bytes"],
            batch_ms=cfg["publisher.batch_ms"], **overrides,
        )  # fmt: skip


class BatchSink(Protocol):
    """Where batch records go (Kafka in production, a list in tests)."""

    def publish(self, records: Sequence[tuple[bytes, int]]) -> None:
        """Produce ``(JSON array of envelopes, number of events)`` records, in order."""

    def idle(self) -> None: ...


class KafkaBatches:
    """Produces the encoder's batch records (docs/events.md "On Kafka") through the runner's
    publisher: key = the host, header ``falconet-batch`` = the number of events."""

    def __init__(self, emit: Emitter, key: str, stats: metrics.SyscallStats) -> None:
        self.emit = emit
        self.key = key.encode()
        self.stats = stats

    def publish(self, records: Sequence[tuple[bytes, int]]) -> None:
        pub, topic, key = self.emit.publisher, self.emit.topic, self.key
        for payload, count in records:
            pub.produce(topic, payload, key, headers=[("falconet-batch", b"%d" % count)])
            pub.stats.events += count
            self.emit.stats.events += count
            self.stats.publish_records += 1

    def idle(self) -> None:
        self.emit.publisher.tick()


class SyscallSensor:
    """The ``syscall`` source: see the module docstring."""

    name = "syscall"
    source = "syscall"

    def __init__(self, settings: SyscallSettings) -> None:
        self.settings = settings
        self.stats = SensorStats()
        self.sys = metrics.SyscallStats()
        self.plan: CapturePlan = plan(settings.event_types)
        self._stop = threading.Event()
        self._obj: BpfObject | None = None
        self._ring: MmapRing | None = None
        self._stats_map: Any = None
        self._ncpu = 1
        self._collector: metrics.SyscallCollector | None = None
        self.table: ProcessTable | None = None
        self.encoder: Encoder | None = None
        self._record_since: float | None = None
        self._backlog = 0

    # -- setup ------------------------------------------------------------------------------------
    def _load(self, path: str, lib: Libbpf) -> BpfObject:
        """Open, verify and attach the object at ``path``, or raise :class:`BpfError`."""
        s = self.settings
        if not os.path.exists(path):
            raise SensorError(f"the BPF object {path} is missing: reinstall falconet")
        obj = BpfObject(path, lib)
        try:
            R.check_layout(*obj.struct_layout("fn_rec"))
            obj.set_max_entries("events", s.ring_mb << 20)
            obj.load()
            obj.map("fn_cfg").update(
                b"\0\0\0\0",
                R.settings_value(self.plan.bitmap(), os.getpid() if s.ignore_self else 0,
                                 s.only_tgid, 1, s.want_env),  # fmt: skip
            )
            for prog in PROGRAMS:
                obj.attach(prog)
        except BaseException:
            obj.close()
            raise
        return obj

    def setup(self) -> None:
        s = self.settings
        preflight.check(preflight.Host.current())
        lib = Libbpf.get()
        path = s.object_path or default_object(lib)
        compat = packaged_object(COMPAT_OBJECT_NAME)
        try:
            obj = self._load(path, lib)
        except BpfError as exc:
            # a kernel whose verifier refuses the direct loads still runs the compat object;
            # a missing privilege or an object named by the user is reported as it is
            if s.object_path or path == compat or exc.errno in (errno.EPERM, errno.EACCES):
                raise SensorError(preflight.explain_load_error(str(exc), exc.errno)) from None
            log.warning("sensor.syscall.object_refused object=%s errno=%d: loading %s instead",
                        os.path.basename(path), exc.errno, COMPAT_OBJECT_NAME)  # fmt: skip
            try:
                obj = self._load(compat, lib)
            except BpfError as exc2:
                raise SensorError(preflight.explain_load_error(str(exc2), exc2.errno)) from None
            path = compat
        self._obj = obj
        events = obj.map("events")
        self._ring = MmapRing(events.fd, events.max_entries, R.REC_DTYPE, s.max_batch)
        self._backlog = self._ring.slot * BACKLOG_RECORDS
        self._stats_map = obj.map("fn_stats")
        self._ncpu = lib.num_possible_cpus()
        offset = boot_to_epoch()
        self.table = ProcessTable(offset, UserTable())
        seeded = self.table.seed()
        self.encoder = Encoder(s.host, self.table, self.plan.emit, offset,
                               s.batch_events, s.batch_bytes, s.share_context)  # fmt: skip
        self._collector = metrics.register(self.sys)
        if self.plan.unsupported:
            log.warning("sensor.syscall.unsupported types=%s", ",".join(sorted(self.plan.unsupported)))
        log.info(
            "sensor.syscall.ready host=%s libbpf=%s object=%s ring_mb=%d poll_ms=%d emit=%d kernel=%d "
            "procs=%d", s.host, lib.version, os.path.basename(path), s.ring_mb, s.poll_ms, len(self.plan.emit),
            len(self.plan.kernel), seeded,
        )  # fmt: skip

    # -- run --------------------------------------------------------------------------------------
    def run(self, emit: Emitter) -> None:
        self.run_into(KafkaBatches(emit, self.settings.host, self.sys))

    def run_into(self, sink: BatchSink) -> None:
        """Read, encode and publish until :meth:`stop`; then detach and drain."""
        if self._ring is None or self.encoder is None:
            raise SensorError("setup() was not called")
        poll = self.settings.poll_ms / 1000.0
        self.encoder.on_record = lambda record: sink.publish((record,))
        next_tick = time.monotonic() + 1.0
        next_prune = time.monotonic() + PRUNE_SECONDS
        events_at_tick = self.stats.events
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                full = self._pump(sink)
                if started >= next_tick:
                    self._refresh(started - next_tick + 1.0, events_at_tick)
                    events_at_tick = self.stats.events
                    next_tick = started + 1.0
                if started >= next_prune and self.table is not None:
                    pruned = self.table.prune()
                    if pruned:
                        log.info("sensor.syscall.prune processes=%d", pruned)
                    next_prune = started + PRUNE_SECONDS
                if not full:
                    sink.idle()
                    self._stop.wait(max(0.0, poll - (time.monotonic() - started)))
        finally:
            self._finish(sink)

    def _pump(self, sink: BatchSink, flush: bool = False) -> bool:
        """One read; True when a backlog is left (read again at once, do not sleep).

        The backlog is judged from the ring's positions after the read, not from the size
        of the read: under load the newest record is often still being written, which
        cuts a read short although the ring is full behind it."""
        assert self._ring is not None and self.encoder is not None
        ring, enc = self._ring, self.encoder
        fill = ring.fill_ratio()
        self.sys.ring_fill = fill
        if fill > self.sys.ring_fill_max:
            self.sys.ring_fill_max = fill
        recs = ring.read()
        n = len(recs)
        if n:
            self.sys.records += n
            self.sys.batches += 1
            enc.encode(recs)  # sealed records go to the sink as they fill (on_record)
        # a record waits at most batch_ms for more events
        now = time.monotonic()
        if enc.waiting:
            if self._record_since is None:
                self._record_since = now
            if flush or now - self._record_since >= self.settings.batch_ms / 1000.0:
                enc.seal()
                self._record_since = None
        return ring.pending_bytes() >= self._backlog

    def _refresh(self, seconds: float, events_before: int) -> None:
        self.sys.events_per_second = (self.stats.events - events_before) / max(seconds, 1e-3)
        self._read_counters()
        if self.table is not None and self.encoder is not None:
            offset = boot_to_epoch()
            self.table.boot_to_epoch = offset
            self.encoder.boot_to_epoch = offset
            self.sys.processes = len(self.table.procs)
            self.sys.proc_lookups = self.table.lookups

    def _read_counters(self) -> None:
        if self._stats_map is None:
            return
        raw = self._stats_map.lookup(b"\0\0\0\0", 32 * self._ncpu)
        dropped = truncated = 0
        for cpu in range(self._ncpu):
            base = cpu * 32
            dropped += int.from_bytes(raw[base + 8 : base + 16], "little")
            truncated += int.from_bytes(raw[base + 16 : base + 24], "little")
        self.sys.kernel_drops = dropped
        self.sys.truncated = truncated
        self.stats.drops = dropped

    def _finish(self, sink: BatchSink) -> None:
        if self._obj is not None:
            self._obj.detach()  # no new records from here on
        try:
            if self._ring is not None and self.encoder is not None:
                while self._pump(sink):
                    pass
                self._pump(sink, flush=True)
                self._read_counters()
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Detach and release everything (idempotent)."""
        metrics.unregister(self._collector)
        self._collector = None
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self._obj is not None:
            self._obj.close()
            self._obj = None
        self._stats_map = None

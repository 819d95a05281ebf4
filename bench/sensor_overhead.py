#!/usr/bin/env python3
"""Cost and capacity of the eBPF syscall sensor, all the way to Kafka.

Runs `falconet sensor syscall` (the real CLI, publishing to FALCONET_KAFKA_BOOTSTRAP under a
topic prefix of its own) pinned to CPU 0, and a C workload pinned to CPU 1:

1. **open/close loop**: N open()+close() pairs (default 1,000,000), median ns per pair of
   several runs in each configuration, alternated so noise hits them alike:
   ``off`` (no sensor), ``filtered`` (hooks attached, the loaded rules need no openat: the
   kernel drops the events), ``kernel`` (every openat emitted into the ring, read and thrown
   away by a thread: the kernel side alone), ``floor`` (the same with a bare program that
   only reserves a record and copies the path: what any per-event design pays; needs
   clang), ``captured`` (every openat captured, decoded, enriched and
   published; the ring is sized to hold the whole run, so nothing is dropped and the
   consumer runs flat out on its core during the loop). With ``--broker-cpu 0`` a local
   broker shares CPU 0 with the sensor during the loop instead of preempting the workload
   on CPU 1 (on a node the broker is another machine). Besides each run's wall and CPU
   time per pair, the loop reports the 10th percentile of its 10,000-pair stretches: on a
   shared VM whose speed changes for seconds at a time, that is the steadiest figure.
2. **sustained rate**: the workload paces itself at R opens/s (default 300,000) for S
   seconds with the default 64 MiB ring; reports the events published per second, the
   kernel drops, and the sensor's CPU time (all its threads, librdkafka included) per
   wall second. Then an unpaced run gives the sensor's capacity (events published per
   second while its ring stays full) and what it drops then.
3. **realistic workload**: compiling a generated C project (F files, each including common
   libc headers) with cc, off vs on (the stable Falco rules' event types), runs
   alternated. Reports the whole build (median of runs), each file's compile (median and
   10th percentile over all runs: the steadier figures on a shared VM), the compilers'
   own CPU time (the BPF programs run inside their syscalls), and the sensor's CPU per
   build as a share of the compilers' (what a node pays on another core). With
   ``--broker-cpu 0`` the compilers run on CPU 1 and the sensor and broker on CPU 0 (a node
   with a core to spare); without it all three share both CPUs.
   A third configuration per run attaches the sensor's program with the same event types
   and throws the records away (the kernel side alone).
   ``FALCONET_SYSCALL_SHARE_CONTEXT=false`` measures self-contained envelopes.

    sudo .venv/bin/python bench/sensor_overhead.py [--pairs 1000000] [--runs 5]
          [--rate 300000] [--seconds 5] [--files 60] [--skip compile,rate,loop]
          [--broker-cpu 0]

Needs root (or CAP_BPF + CAP_PERFMON), a C compiler, taskset, and a Kafka broker
(FALCONET_KAFKA_BOOTSTRAP; the bench fails if none is reachable). Prints the figures with
the machine's load; on a shared machine trust medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from falconet.rules.engine import Engine, EngineConfig  # noqa: E402
from falconet.sensors.syscall.metrics import scrape  # noqa: E402

STABLE = ROOT.parent / "shared" / "corpus" / "falco" / "falcosecurity-rules" / "rules" / "falco_rules.yaml"

WORKLOAD_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#define CHUNK 10000
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* usage: workload PAIRS [RATE]
 * prints wall and CPU ns per open+close pair, then the 10th percentile of the wall ns per
 * pair of its 10,000-pair stretches (the loop's cost with other tenants' bursts left out) */
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    double rate = argc > 2 ? atof(argv[2]) : 0;
    const char *path = "/etc/hostname";
    long nchunks = n / CHUNK, k = 0;
    double *chunks = calloc(nchunks + 1, sizeof(double));
    double start = now(), mark = start;
    for (long i = 0; i < n; i++) {
        if (i && i % CHUNK == 0 && k < nchunks) {
            double t = now();
            chunks[k++] = (t - mark) * 1e9 / CHUNK;
            mark = t;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        if (rate > 0 && (i & 255) == 255) {
            double due = start + (i + 1) / rate;
            while (now() < due) {
                struct timespec s = {0, 50000};
                nanosleep(&s, NULL);
            }
        }
    }
    double wall = now() - start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    qsort(chunks, k, sizeof(double), by_value);
    printf("%.1f %.1f %.1f\n", wall * 1e9 / n, cpu * 1e9 / n, k ? chunks[k / 10] : wall * 1e9 / n);
    return 0;
}
"""

# The least a per-event design can do for an openat: reserve a record like the sensor's,
# copy the path the process passed, submit. Nothing else (no time, credentials, file).
FLOOR_BPF_C = r"""
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct pt_regs { unsigned long si, orig_ax; } __attribute__((preserve_access_index));
char LICENSE[] SEC("license") = "GPL";
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);
} events SEC(".maps");
SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
    if (regs->orig_ax != 257) /* openat */
        return 0;
    char *r = bpf_ringbuf_reserve(&events, 512, 0);
    if (!r)
        return 0;
    *(__u16 *)(r + 16) = 257;
    *(__u16 *)(r + 18) = 0;
    bpf_probe_read_user_str(r + 160, 352, (void *)regs->si);
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
    return 0;
}
"""

OPENAT_RULE = """
- rule: bench openat
  desc: makes the sensor capture every openat
  condition: evt.type=openat and fd.name=/nonexistent/falconet-bench
  output: "%fd.name"
  priority: DEBUG
"""
EXEC_ONLY_RULE = """
- rule: bench exec only
  desc: needs execve only, so openat is filtered in the kernel
  condition: evt.type=execve and proc.name=falconet-bench
  output: "%proc.name"
  priority: DEBUG
"""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def load() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sensor:
    """`falconet sensor syscall` as a process, with its metrics."""

    def __init__(self, rules: Path, ring_mb: int, workdir: Path, prefix: str, cpu: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = workdir / f"sensor-{self.port}.log"
        env = dict(os.environ, FALCONET_KAFKA_TOPIC_PREFIX=prefix)
        cmd = ["taskset", "-c", cpu, sys.executable, "-m", "falconet", "sensor", "syscall",
               "--rules", str(rules), "--host", "bench", "--metrics-port", str(self.port),
               "--ring-mb", str(ring_mb), "--log-level", "warning"]  # fmt: skip
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the sensor exited: {self.log_path.read_text()}")
            try:
                self.metrics()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the sensor did not start in 60 s") from None
                time.sleep(0.2)

    def metrics(self) -> dict[str, float]:
        return {k.replace('{sensor="syscall"}', ""): v for k, v in scrape(self.port).items()}

    def events(self) -> float:
        return self.metrics()["falconet_sensor_events_total"]

    def drain(self, quiet: float = 0.5, timeout: float = 120) -> None:
        """Wait until the ring is empty and no event was published for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = -1.0
        while time.monotonic() < deadline:
            m = self.metrics()
            if m["falconet_sensor_events_total"] == last and m["falconet_sensor_syscall_ring_fill_ratio"] == 0:
                return
            last = m["falconet_sensor_events_total"]
            time.sleep(quiet)

    def stop(self) -> dict[str, float]:
        m = self.metrics()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.log.close()
        if self.proc.returncode != 0:
            print(self.log_path.read_text(), file=sys.stderr)
        return m


def workload(binary: Path, pairs: int, rate: float = 0) -> tuple[float, float, float, float]:
    """(wall ns per pair, CPU ns per pair, p10 stretch ns per pair, wall seconds) of one run
    pinned to CPU 1."""
    t0 = time.monotonic()
    wall, cpu, p10 = sh(["taskset", "-c", "1", str(binary), str(pairs), str(rate)]).stdout.split()
    return float(wall), float(cpu), float(p10), time.monotonic() - t0


class KernelOnly:
    """A BPF object attached and emitting every openat (or ``event_types``) into a ring big
    enough for the whole run, read by a thread on CPU 0 that throws the records away: the kernel side and the
    ring reads, without decoding or publishing. (With nobody reading at all the loop
    measured slower still on this VM - the idle CPU 0, not the program - so a reader runs.)
    ``path`` None: the sensor's own object; else a bare program (the floor)."""

    def __init__(self, ring_mb: int, path: Path | None = None,
                 event_types: frozenset[str] = frozenset({"openat"})) -> None:  # fmt: skip
        from falconet.sensors.syscall import records as R
        from falconet.sensors.syscall.libbpf import BpfObject
        from falconet.sensors.syscall.ring import MmapRing
        from falconet.sensors.syscall.sensor import PROGRAMS, default_object
        from falconet.sensors.syscall.syscalls import plan

        self.obj = BpfObject(str(path) if path else default_object())
        self.obj.set_max_entries("events", ring_mb << 20)
        self.obj.load()
        if path is None:
            self.obj.map("fn_cfg").update(
                b"\0" * 4, R.settings_value(plan(event_types).bitmap(), os.getpid(), 0, 1, False)
            )
        for prog in PROGRAMS if path is None else [name for name, _p in self.obj.programs()]:
            self.obj.attach(prog)
        events = self.obj.map("events")
        self.ring = MmapRing(events.fd, events.max_entries, R.REC_DTYPE, 2048)
        self.stopping = threading.Event()
        self.read = 0
        self.reader = threading.Thread(target=self._discard, daemon=True)
        self.reader.start()

    def _discard(self) -> None:
        os.sched_setaffinity(0, {0})  # this thread only
        while not self.stopping.is_set():
            n = len(self.ring.read())
            self.read += n
            if n < 2048:
                time.sleep(0.005)

    def close(self) -> None:
        while self.ring.pending_bytes():
            time.sleep(0.01)
        self.stopping.set()
        self.reader.join()
        self.ring.close()
        self.obj.close()


class BrokerPinned:
    """While in the block, every thread of the local Kafka broker runs on ``cpu`` only (the
    sensor's CPU), so the workload's CPU is shared with nothing but the sensor's kernel
    side - as on a node, where the broker is another machine. Restored afterwards."""

    def __init__(self, cpu: str | None) -> None:
        self.cpu = cpu
        self.pid = broker_pid() if cpu is not None else None
        self.saved = ""
        if cpu is not None and self.pid is None:
            raise SystemExit("--broker-cpu: no local Kafka broker process (kafka.Kafka) found")

    def __enter__(self) -> BrokerPinned:
        if self.pid is not None:
            self.saved = sh(["taskset", "-p", "-c", str(self.pid)]).stdout.rsplit(":", 1)[1].strip()
            sh(["taskset", "-a", "-p", "-c", str(self.cpu), str(self.pid)])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid is not None:
            sh(["taskset", "-a", "-p", "-c", self.saved, str(self.pid)])


def build_floor(work: Path) -> Path | None:
    """The floor program (FLOOR_BPF_C) compiled with clang, or None (then not measured)."""
    clang = shutil.which("clang")
    if not clang or not Path("/usr/include/bpf/bpf_helpers.h").exists():
        print("  (no clang or libbpf-dev: the floor program is not measured)")
        return None
    (work / "floor.bpf.c").write_text(FLOOR_BPF_C)
    out = work / "floor.bpf.o"
    multiarch = f"/usr/include/{os.uname().machine}-linux-gnu"  # asm/types.h on Debian
    sh([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{multiarch}",
        "-c", str(work / "floor.bpf.c"), "-o", str(out)])  # fmt: skip
    return out


def bench_loop(binary: Path, args: argparse.Namespace, work: Path, prefix: str) -> None:
    with BrokerPinned(args.broker_cpu):
        _bench_loop(binary, args, work, prefix)


def _bench_loop(binary: Path, args: argparse.Namespace, work: Path, prefix: str) -> None:
    rules = {"filtered": work / "exec-only.yaml", "captured": work / "openat.yaml"}
    floor = build_floor(work)
    modes = ("off", "filtered", *(("floor",) if floor else ()), "kernel", "captured")
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    p10: dict[str, list[float]] = {m: [] for m in modes}
    drops = 0.0
    ring_mb = 1 << (args.pairs * 520 // (1 << 20) + 64 - 1).bit_length()
    for run in range(args.runs):
        for mode in modes:
            sensor = None
            kernel = None
            if mode in ("kernel", "floor"):
                kernel = KernelOnly(ring_mb, floor if mode == "floor" else None)
            elif mode != "off":
                sensor = Sensor(rules[mode], ring_mb if mode == "captured" else 16, work, prefix, "0")
            w, c, q, _s = workload(binary, args.pairs)
            wall[mode].append(w)
            cpu[mode].append(c)
            p10[mode].append(q)
            if kernel is not None:
                kernel.close()
            if sensor is not None:
                sensor.drain()
                m = sensor.stop()
                if mode == "captured":
                    drops += m["falconet_sensor_drops_total"]
        print(f"  run {run + 1} (wall/CPU/p10): "
              + ", ".join(f"{k} {wall[k][-1]:.0f}/{cpu[k][-1]:.0f}/{p10[k][-1]:.0f} ns" for k in modes), flush=True)
    base_w, base_c = statistics.median(wall["off"]), statistics.median(cpu["off"])
    where = f"broker pinned to CPU {args.broker_cpu}" if args.broker_cpu is not None else "broker unpinned"
    print(f"\nopen/close loop, {args.pairs:,} pairs, median of {args.runs}, {where} (load {load()}):")
    print(f"  {'configuration':58s} {'wall ns':>8s} {'ratio':>6s} {'CPU ns':>8s} {'ratio':>6s} "
          f"{'p10 ns':>7s} {'ratio':>6s}")  # fmt: skip
    base_q = statistics.median(p10["off"])
    for mode, label in (
        ("off", "no sensor"),
        ("filtered", "sensor running, openat filtered in the kernel"),
        ("floor", "floor: a bare program reserving a record + copying the path"),
        ("kernel", f"every openat emitted, read and discarded ({ring_mb} MiB ring)"),
        ("captured", f"every openat captured + published ({ring_mb} MiB ring)"),
    ):
        if mode not in modes:
            continue
        w, c, q = statistics.median(wall[mode]), statistics.median(cpu[mode]), statistics.median(p10[mode])
        print(f"  {label:58s} {w:8.0f} {w / base_w:6.2f} {c:8.0f} {c / base_c:6.2f} {q:7.0f} {q / base_q:6.2f}")
    print(f"  kernel drops while capturing: {drops:.0f}")
    print("  (wall: the loop's elapsed time; CPU: its own user+system time, which leaves out "
          "being preempted by the Kafka broker and other tenants of this machine; p10: the 10th "
          "percentile of the wall time of the run's 10,000-pair stretches, which leaves out the "
          "bursts when other tenants slow this VM down)")


def broker_pid() -> int | None:
    """The local Kafka broker's pid, to show what it costs on this shared machine."""
    r = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    return pids[0] if pids else None


def bench_rate(binary: Path, args: argparse.Namespace, work: Path, prefix: str) -> None:
    print(f"\nsustained rate, default 64 MiB ring, sensor pinned to CPU 0 (load {load()}):")
    broker = broker_pid()
    for rate in (args.rate, 0):
        sensor = Sensor(work / "openat.yaml", 64, work, prefix, "0")
        pairs = int(args.rate * args.seconds)
        m0 = sensor.metrics()
        c0, b0 = cpu_seconds(sensor.proc.pid), cpu_seconds(broker) if broker else 0.0
        t0 = time.monotonic()
        _ns, _cpu, _p10, wall = workload(binary, pairs, rate)
        t1 = time.monotonic()
        m1 = sensor.metrics()
        c1, b1 = cpu_seconds(sensor.proc.pid), cpu_seconds(broker) if broker else 0.0
        sensor.drain(quiet=0.2)
        t2 = time.monotonic()
        m2 = sensor.stop()
        during = m1["falconet_sensor_events_total"] - m0["falconet_sensor_events_total"]
        total = m2["falconet_sensor_events_total"] - m0["falconet_sensor_events_total"]
        drops = m2["falconet_sensor_drops_total"] - m0["falconet_sensor_drops_total"]
        label = f"paced at {rate:,.0f} opens/s" if rate else "unpaced (capacity)"
        print(f"  {label}: workload produced {pairs / wall:,.0f} events/s for {wall:.2f} s")
        print(f"    while it ran: sensor published {during / (t1 - t0):,.0f} events/s using "
              f"{(c1 - c0) / (t1 - t0):.2f} cores (all its threads, librdkafka included); "
              f"the Kafka broker used {(b1 - b0) / (t1 - t0):.2f} cores")
        print(f"    in all: {total:,.0f} events published, {drops:,.0f} dropped in the kernel, "
              f"ring fill max {m2['falconet_sensor_syscall_ring_fill_ratio_max']:.2f}, "
              f"drained {t2 - t1:.2f} s after the workload ended (incl. a 0.2 s quiet check), "
              f"publish errors {m2['falconet_sensor_publish_errors_total']:.0f}", flush=True)


@dataclass
class CompileRuns:
    """What the alternated builds measured (lists: one item per build)."""

    off: list[list[float]] = field(default_factory=list)  # each file's compile, seconds
    on: list[list[float]] = field(default_factory=list)
    kernel: list[list[float]] = field(default_factory=list)  # the kernel side alone
    off_cpu: list[float] = field(default_factory=list)  # the compilers' user + system
    on_cpu: list[float] = field(default_factory=list)
    kernel_cpu: list[float] = field(default_factory=list)
    sensor_cpu: list[float] = field(default_factory=list)
    broker_cpu: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)
    drops: float = 0.0


def bench_compile(args: argparse.Namespace, work: Path, prefix: str) -> None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    project = work / "project"
    project.mkdir(exist_ok=True)
    headers = "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n" \
              "#include <pthread.h>\n#include <sys/socket.h>\n#include <netinet/in.h>\n"  # fmt: skip
    for i in range(args.files):
        (project / f"f{i}.c").write_text(
            headers + f"int f{i}(int x) {{ char b[64]; snprintf(b, sizeof b, \"%d\", x); "
            f"return (int)strlen(b) + (int)sqrt((double)x) + {i}; }}\n"
        )
    # with --broker-cpu, a node with a core to spare: the compilers on CPU 1, the sensor and
    # the broker on CPU 0; without, all of them share both CPUs
    pin = ["taskset", "-c", "1"] if args.broker_cpu is not None else []

    def build() -> tuple[list[float], float]:
        """Wall seconds of each file's compile, and the compilers' CPU (user + system: the
        BPF programs run inside their syscalls, so the kernel side is in it)."""
        times = []
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for i in range(args.files):
            t0 = time.monotonic()
            sh([*pin, cc, "-O1", "-c", str(project / f"f{i}.c"), "-o", str(project / f"f{i}.o")])
            times.append(time.monotonic() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return times, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    r = CompileRuns()
    rules = STABLE if STABLE.exists() else work / "openat.yaml"
    eng = Engine(EngineConfig())
    eng.load([rules])
    types = frozenset(eng.event_types())
    with BrokerPinned(args.broker_cpu):
        bpid = broker_pid()
        build()  # warm the page cache
        for _ in range(args.runs):
            times, cpu = build()
            r.off.append(times)
            r.off_cpu.append(cpu)
            kernel = KernelOnly(64, event_types=types)
            times, cpu = build()
            kernel.close()
            r.kernel.append(times)
            r.kernel_cpu.append(cpu)
            sensor = Sensor(rules, 64, work, prefix, "0")
            e0 = sensor.events()
            c0 = cpu_seconds(sensor.proc.pid)
            b0 = cpu_seconds(bpid) if bpid is not None else 0.0
            times, cpu = build()
            r.on.append(times)
            r.on_cpu.append(cpu)
            sensor.drain(timeout=5)  # the rest of the machine keeps it busy: stop() flushes anyway
            r.sensor_cpu.append(cpu_seconds(sensor.proc.pid) - c0)
            if bpid is not None:
                r.broker_cpu.append(cpu_seconds(bpid) - b0)
            r.events.append(sensor.events() - e0)
            r.drops = sensor.stop()["falconet_sensor_drops_total"]
    share = os.environ.get("FALCONET_SYSCALL_SHARE_CONTEXT", "true")
    where = ("compilers on CPU 1, sensor and broker on CPU 0" if pin
             else "compilers, sensor and broker on both CPUs")  # fmt: skip
    print(f"\ncompiling {args.files} C files with {Path(cc).name} -O1, {args.runs} runs alternated "
          f"({where}; sensor with the stable rules' event types, share_context={share}; "
          f"load {load()}):")
    report_compile(r)


def report_compile(r: CompileRuns) -> None:
    def pct(on: float, off: float) -> str:
        return f"{100 * (on / off - 1):+.1f} %"

    whole_off, whole_on = statistics.median(map(sum, r.off)), statistics.median(map(sum, r.on))
    files_off = sorted(t for run in r.off for t in run)
    files_on = sorted(t for run in r.on for t in run)
    med_off, med_on = statistics.median(files_off), statistics.median(files_on)
    p10_off, p10_on = files_off[len(files_off) // 10], files_on[len(files_on) // 10]
    cpu_off, cpu_on = statistics.median(r.off_cpu), statistics.median(r.on_cpu)
    files_k = sorted(t for run in r.kernel for t in run)
    med_k, p10_k, cpu_k = statistics.median(files_k), files_k[len(files_k) // 10], statistics.median(r.kernel_cpu)
    s_cpu, ev = statistics.median(r.sensor_cpu), statistics.median(r.events)
    whole_k = statistics.median(map(sum, r.kernel))
    print(f"  whole build, median: no sensor {whole_off:.2f} s, kernel side alone {whole_k:.2f} s "
          f"({pct(whole_k, whole_off)}), with sensor {whole_on:.2f} s ({pct(whole_on, whole_off)})")
    print(f"  per file ({len(files_on)} compiles each way): median {1e3 * med_off:.1f} -> "
          f"{1e3 * med_on:.1f} ms ({pct(med_on, med_off)}), p10 {1e3 * p10_off:.1f} -> "
          f"{1e3 * p10_on:.1f} ms ({pct(p10_on, p10_off)}); kernel side alone: median "
          f"{1e3 * med_k:.1f} ms ({pct(med_k, med_off)}), p10 {1e3 * p10_k:.1f} ms "
          f"({pct(p10_k, p10_off)})")
    print(f"  compilers' CPU (user + system, median per build): no sensor {cpu_off:.2f} s, kernel "
          f"side alone {cpu_k:.2f} s ({pct(cpu_k, cpu_off)}), with sensor {cpu_on:.2f} s "
          f"({pct(cpu_on, cpu_off)})")
    print(f"  sensor CPU per build (all threads, median): {s_cpu:.2f} s for {ev:.0f} events "
          f"({1e6 * s_cpu / max(ev, 1):.1f} us each) = {100 * s_cpu / cpu_off:.1f} % of the "
          f"compilers' CPU; drops in the last run {r.drops:.0f}")
    if r.broker_cpu:
        print(f"  local broker's CPU per build (median; on a node it is another machine): "
              f"{statistics.median(r.broker_cpu):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate", type=float, default=300_000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--skip", default="", help="comma-separated: loop, rate, compile")
    ap.add_argument("--broker-cpu", default=None,
                    help="during the open/close loop, pin the local broker's threads to this CPU "
                         "(the sensor's, 0): the workload's CPU then runs only the workload")  # fmt: skip
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if os.geteuid() != 0:
        raise SystemExit("run as root: the sensor loads BPF programs")
    if not os.environ.get("FALCONET_KAFKA_BOOTSTRAP"):
        raise SystemExit("set FALCONET_KAFKA_BOOTSTRAP to a Kafka broker (events go all the way there)")
    prefix = f"bench{os.getpid()}."
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{os.uname().release}, {os.cpu_count()} CPUs, load {load()}, Kafka {os.environ['FALCONET_KAFKA_BOOTSTRAP']}")
    env = dict(os.environ, FALCONET_KAFKA_TOPIC_PREFIX=prefix)
    sh([sys.executable, "-m", "falconet", "topics", "create"], env=env, cwd=ROOT)
    with tempfile.TemporaryDirectory(prefix="falconet-bench-") as tmp:
        work = Path(tmp)
        (work / "openat.yaml").write_text(OPENAT_RULE)
        (work / "exec-only.yaml").write_text(EXEC_ONLY_RULE)
        (work / "workload.c").write_text(WORKLOAD_C)
        binary = work / "workload"
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise SystemExit("a C compiler is needed for the workloads")
        sh([cc, "-O2", "-o", str(binary), str(work / "workload.c")])
        if "loop" not in skip:
            bench_loop(binary, args, work, prefix)
        if "rate" not in skip:
            bench_rate(binary, args, work, prefix)
        if "compile" not in skip:
            bench_compile(args, work, prefix)


if __name__ == "__main__":
    main()

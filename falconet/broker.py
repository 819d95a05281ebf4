"""A real Apache Kafka broker for every falconet tool, test and demo.

:func:`acquire` picks, in order:

1. ``FALCONET_KAFKA_BOOTSTRAP`` is set: that cluster is used as it is (nothing is started);
   the launcher only waits until it answers a metadata request.
2. A Docker engine answers a ping on its socket and the ``testcontainers`` package is
   importable: the official ``apache/kafka`` image runs in a container.
3. Otherwise: Apache Kafka in KRaft mode (one node that is broker and controller) runs with
   the machine's Java (17 or newer) from the official jars, which Maven resolves from Maven
   Central once into ``$XDG_CACHE_HOME/falconet/kafka/<version>/libs`` (default
   ``~/.cache``). See :class:`LocalKafka`.

A missing prerequisite (Java, Maven, access to Maven Central) raises
:class:`MissingPrerequisite` whose message says what to install. ``falconet kafka up``
(:mod:`falconet.broker_cli`) starts a broker of kind 3 that outlives the command; its
state file lets :func:`running_local_bootstrap` find it.

Nothing here imports a Kafka client at module load; ``confluent_kafka`` is imported when a
broker is waited for.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import FalconetError

log = logging.getLogger("falconet.broker")
log.addHandler(logging.NullHandler())

# -- versions and coordinates --------------------------------------------------------------

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
MIN_JAVA = 17
#: (groupId, artifactId, version) resolved with their runtime dependencies.
MAVEN_ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
    # Kafka logs through slf4j 1.x; this is the log4j2 binding for it.
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
)
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2/"
DOCKER_IMAGE = f"apache/kafka:{KAFKA_VERSION}"

BOOTSTRAP_ENV = "FALCONET_KAFKA_BOOTSTRAP"
INSTALL_HINT = "apt-get install -y openjdk-17-jre-headless maven"
#: Largest record batch the local broker accepts: 16 MiB records plus headroom.
MAX_MESSAGE_BYTES = 20 * 1024 * 1024
DEFAULT_HEAP = "512m"

#: Broker settings of every broker falconet starts (local JVM or container): one node, so
#: internal topics have one replica; topics are created explicitly, never on first use;
#: records up to 16 MiB; tests may use group session timeouts down to 1 s.
BROKER_SETTINGS: dict[str, str] = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "message.max.bytes": str(MAX_MESSAGE_BYTES),
    "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
}

Kind = Literal["external", "docker", "local"]
Progress = Callable[[str], None]


class BrokerError(FalconetError):
    """A Kafka broker cannot be started, reached or stopped."""


class MissingPrerequisite(BrokerError):
    """Something the local broker needs is missing: Java 17+, Maven, or Maven Central."""


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A broker a falconet process may use."""

    bootstrap: str  # host:port[,host:port...]
    kind: Kind
    pid: int | None = None  # the broker JVM (kind "local")
    data_dir: str | None = None  # its configuration, logs and partitions (kind "local")
    log_file: str | None = None  # the broker's log (kind "local")


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """What a cluster answered to a metadata request."""

    cluster_id: str | None
    brokers: int
    topics: int  # not counting internal topics (names starting with "__")
    controller_id: int


def _stderr_progress(message: str) -> None:
    print(f"falconet kafka: {message}", file=sys.stderr, flush=True)


def _quiet(_: str) -> None:
    pass


# -- where things live ---------------------------------------------------------------------


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/falconet/kafka`` (``~/.cache`` when unset or not absolute)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "falconet" / "kafka"


def version_dir() -> Path:
    return cache_root() / KAFKA_VERSION


def libs_dir() -> Path:
    """Where the jars of :data:`KAFKA_VERSION` are (once :func:`resolve_jars` ran)."""
    return version_dir() / "libs"


def state_file() -> Path:
    """The state of the broker ``falconet kafka up`` started."""
    return cache_root() / "up.json"


_MARKER = ".falconet-complete"


def _expected_jars() -> list[str]:
    return [f"{artifact}-{version}.jar" for _, artifact, version in MAVEN_ARTIFACTS]


def jars_complete(libs: Path | None = None) -> bool:
    """Whether ``libs`` holds a finished resolution (marker written last, every jar there)."""
    libs = libs or libs_dir()
    try:
        names = json.loads((libs / _MARKER).read_text(encoding="utf-8"))["jars"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(names) and all((libs / n).is_file() for n in names)


@contextlib.contextmanager
def _locked(path: Path, waiting: str | None = None, progress: Progress = _quiet) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (released by the kernel if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                progress(waiting)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- prerequisites -------------------------------------------------------------------------


def _prereq_message(problems: list[str], needs: str) -> str:
    return (
        f"cannot run a local Kafka {KAFKA_VERSION} broker: {'; '.join(problems)}. "
        f"Install {needs} — Debian/Ubuntu: `{INSTALL_HINT}` (or run scripts/prereqs.sh as "
        f"root) — or set {BOOTSTRAP_ENV} to host:port of a running Kafka cluster."
    )


def _java_problem() -> tuple[str | None, str | None]:
    """(path of a usable java, None) or (None, what is wrong)."""
    candidates: list[str] = []
    java_home = os.environ.get("JAVA_HOME", "")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        candidates.append(os.path.join(java_home, "bin", "java"))
    on_path = shutil.which("java")
    if on_path and on_path not in candidates:
        candidates.append(on_path)
    if not candidates:
        return None, f"Java {MIN_JAVA} or newer was not found (no `java` on PATH, JAVA_HOME unset)"
    found: list[str] = []
    for java in candidates:
        major = java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java, None
        found.append(f"{java} is Java {major if major is not None else '(unknown version)'}")
    return None, (
        f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer, but {', '.join(found)} "
        "(after installing, select it with `update-alternatives --config java` or JAVA_HOME)"
    )


def java_major(java: str) -> int | None:
    """The major version of a ``java`` executable (8 for 1.8), None if it does not run."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """A Java 17+ executable (``$JAVA_HOME/bin/java`` first, then PATH)."""
    java, problem = _java_problem()
    if java is None:
        raise MissingPrerequisite(_prereq_message([problem or "no Java"], f"Java {MIN_JAVA}"))
    return java


def check_prerequisites() -> str:
    """Raise :class:`MissingPrerequisite` naming everything missing; return the java path."""
    java, problem = _java_problem()
    problems = [problem] if problem else []
    needs = []
    if problem:
        needs.append(f"Java {MIN_JAVA}")
    if not jars_complete() and shutil.which("mvn") is None:
        problems.append(
            f"Maven was not found (no `mvn` on PATH; it downloads the Kafka {KAFKA_VERSION} "
            "jars once)"
        )
        needs.append("Maven")
    if problems:
        raise MissingPrerequisite(_prereq_message(problems, " and ".join(needs)))
    assert java is not None
    return java


# -- resolving the jars --------------------------------------------------------------------


def _pom() -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in MAVEN_ARTIFACTS
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>dev.falconet</groupId>\n"
        "  <artifactId>kafka-runtime</artifactId>\n"
        f"  <version>{KAFKA_VERSION}</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{deps}\n  </dependencies>\n"
        "</project>\n"
    )


_NETWORK_MARKERS = (
    "could not transfer",
    "unknownhost",
    "unknown host",
    "connection refused",
    "connect timed out",
    "read timed out",
    "network is unreachable",
    "no route to host",
    "temporary failure in name resolution",
    "connection reset",
    "pkix path building failed",
    "offline mode",
    # a cold ~/.m2 that cannot reach any repository cannot even find the plugin
    "no plugin found for prefix",
)


def _mvn_failure(returncode: int, output: str) -> BrokerError:
    output = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output)  # colour codes even with -B
    errors = [
        ln.replace("[ERROR]", "").replace("-> [Help 1]", "").strip()
        for ln in output.splitlines()
        if "ERROR" in ln
    ]
    errors = [e for e in errors if e]
    first = (errors[0] if errors else output.strip()[-600:])[:600]
    lowered = output.lower()
    if any(m in lowered for m in _NETWORK_MARKERS):
        return MissingPrerequisite(
            f"cannot download the Kafka {KAFKA_VERSION} jars: Maven could not reach Maven "
            f"Central ({MAVEN_CENTRAL}) or the mirror set in ~/.m2/settings.xml ({first}). "
            "Allow HTTPS to repo.maven.apache.org (a proxy or mirror goes in "
            f"~/.m2/settings.xml), or set {BOOTSTRAP_ENV} to host:port of a running Kafka "
            "cluster."
        )
    tail = "\n".join(output.strip().splitlines()[-15:])
    return BrokerError(
        f"mvn failed (exit {returncode}) resolving the Kafka {KAFKA_VERSION} jars:\n{tail}"
    )


def _run_mvn(
    cmd: list[str], work: Path, progress: Progress, started: float, timeout: float
) -> tuple[int, str]:
    """Run Maven with a progress line every 15 s; (exit status, its output)."""
    mvn_log = work / "mvn.log"
    with open(mvn_log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
        )
        try:
            while True:
                try:
                    proc.wait(timeout=15)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > timeout:
                        raise BrokerError(
                            f"mvn did not finish resolving the Kafka jars in {timeout:.0f}s"
                        ) from None
                    progress(f"still resolving the Kafka jars ({elapsed:.0f}s)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, mvn_log.read_text(encoding="utf-8", errors="replace")


def resolve_jars(progress: Progress = _stderr_progress, *, timeout: float = 900.0) -> Path:
    """The jars of Kafka :data:`KAFKA_VERSION`, resolved with Maven on first use.

    Safe against concurrent callers (an exclusive lock; the second one waits and reuses)
    and against an interrupted download (Maven writes to a private folder that is renamed
    into place only once complete). Returns the ``libs`` folder.
    """
    libs = libs_dir()
    if jars_complete(libs):
        return libs
    vdir = version_dir()
    with _locked(
        vdir / ".lock",
        waiting="another process is resolving the Kafka jars; waiting for it",
        progress=progress,
    ):
        if jars_complete(libs):
            return libs
        # the lock is ours: any private folder left here is from a process that died
        for stale in vdir.glob(".resolve-*"):
            shutil.rmtree(stale, ignore_errors=True)
        mvn = shutil.which("mvn")
        _, java_problem = _java_problem()
        problems = []
        if mvn is None:
            problems.append(
                f"Maven was not found (no `mvn` on PATH; it downloads the Kafka {KAFKA_VERSION} jars once)"
            )
        if java_problem:
            problems.append(java_problem)
        if problems or mvn is None:
            raise MissingPrerequisite(_prereq_message(problems, f"Java {MIN_JAVA} and Maven"))
        work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=vdir))
        try:
            (work / "pom.xml").write_text(_pom(), encoding="utf-8")
            out = work / "libs"
            cmd = [
                mvn, "-q", "-B", "-f", str(work / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ]  # fmt: skip
            progress(
                f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central into {libs} "
                "(first use only; about a minute)"
            )
            log.info("kafka.jars.resolve start version=%s dir=%s", KAFKA_VERSION, libs)
            started = time.monotonic()
            rc, output = _run_mvn(cmd, work, progress, started, timeout)
            if rc != 0 and "will not be reattempted" in output:
                # Maven remembers a failed download (e.g. while offline) and refuses to retry
                # it for a day; -U makes it try again now
                log.info("kafka.jars.resolve retry=force-update")
                rc, output = _run_mvn([*cmd, "-U"], work, progress, started, timeout)
            if rc != 0:
                log.warning("kafka.jars.resolve failed rc=%d", rc)
                raise _mvn_failure(rc, output)
            jars = sorted(p.name for p in out.glob("*.jar"))
            missing = [j for j in _expected_jars() if j not in jars]
            if missing:
                raise BrokerError(
                    f"mvn finished but {', '.join(missing)} is missing from {out}:\n{output[-2000:]}"
                )
            (out / _MARKER).write_text(
                json.dumps({"kafka": KAFKA_VERSION, "jars": jars}), encoding="utf-8"
            )
            if libs.is_symlink() or libs.is_file():
                libs.unlink()
            elif libs.exists():
                shutil.rmtree(libs)
            os.rename(out, libs)  # atomic: libs is either absent or complete
            seconds = time.monotonic() - started
            log.info("kafka.jars.resolve done jars=%d seconds=%.1f", len(jars), seconds)
            progress(f"resolved {len(jars)} jars in {seconds:.0f}s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


# -- waiting for a cluster -----------------------------------------------------------------


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for part in bootstrap.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            part = part.split("://", 1)[1]
        m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", part)
        if not m:
            raise BrokerError(
                f"bad Kafka bootstrap {bootstrap!r}: expected host:port[,host:port...]"
            )
        host = m.group(1) or m.group(3)
        out.append((host, int(m.group(2) or m.group(4))))
    if not out:
        raise BrokerError("empty Kafka bootstrap: expected host:port[,host:port...]")
    return out


def _tcp_answer(hosts: list[tuple[str, int]], timeout: float) -> str | None:
    """None if one of ``hosts`` accepts a TCP connection, else the last error."""
    last = "no address"
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as exc:
            last = f"{host}:{port}: {exc.strerror or exc}"
    return last


def _rdkafka_config(bootstrap: str, client_config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "log.connection.close": False,
        **(client_config or {}),
    }


def wait_ready(
    bootstrap: str,
    timeout: float = 30.0,
    *,
    client_config: Mapping[str, Any] | None = None,
    what: str | None = None,
    alive: Callable[[], None] | None = None,
) -> ClusterSummary:
    """Wait until the cluster at ``bootstrap`` answers a metadata request.

    ``client_config`` adds librdkafka settings (TLS, SASL). ``what`` names the cluster in
    the error (e.g. the environment variable it came from); ``alive`` is called between
    attempts and raises if the broker being waited for has died. Raises
    :class:`BrokerError` after ``timeout`` seconds.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    hosts = _hosts(bootstrap)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with contextlib.ExitStack() as stack:  # the client is destroyed here, in this thread
        admin = None
        while True:
            if alive is not None:
                alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                name = f"{bootstrap} ({what})" if what else bootstrap
                raise BrokerError(
                    f"Kafka at {name} did not answer a metadata request within {timeout:g}s: {last}"
                )
            # a plain TCP probe first: librdkafka would print every refused connection
            problem = _tcp_answer(hosts, min(remaining, 2.0))
            if problem is not None:
                last = problem
                time.sleep(min(0.2, max(remaining, 0)))
                continue
            if admin is None:
                admin = stack.enter_context(AdminClient(_rdkafka_config(bootstrap, client_config)))
            try:
                md = admin.list_topics(timeout=max(0.5, min(remaining, 5.0)))  # synchronous
            except KafkaException as exc:
                err = exc.args[0] if exc.args else exc
                last = err.str() if hasattr(err, "str") else str(err)
                continue
            if md.brokers:
                return ClusterSummary(
                    cluster_id=md.cluster_id,
                    brokers=len(md.brokers),
                    topics=sum(1 for t in md.topics if not t.startswith("__")),
                    controller_id=md.controller_id,
                )
            last = "metadata without brokers"
            time.sleep(0.2)


def warm_group_coordinator(bootstrap: str, timeout: float = 15.0) -> None:
    """Have a fresh broker create ``__consumer_offsets`` now (about 0.2 s) instead of at the
    first consumer group's join, where librdkafka's coordinator retries make it ~3 s.
    Best effort: a failure is logged, not raised.

    A consumer's synchronous ``committed()`` needs the group coordinator, which makes the
    broker create the topic. (Not the AdminClient's future-based calls: their callbacks
    run on librdkafka threads, and a garbage collection there can crash the process.)
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        _rdkafka_config(bootstrap, {"group.id": "falconet.broker.warm-up", "enable.auto.commit": False})
    )
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while time.monotonic() < deadline:
            try:
                consumer.committed([TopicPartition("falconet.broker.warm-up", 0)], timeout=2.0)
                return
            except KafkaException as exc:
                last = str(exc)
        log.warning("kafka.broker.warm_up_failed bootstrap=%s error=%s", bootstrap, last)
    finally:
        consumer.close()


# -- processes -----------------------------------------------------------------------------


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count; one that is our child is reaped)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _cmdline(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None


def is_local_broker(pid: int, properties: str | None = None) -> bool:
    """Whether ``pid`` is a running ``kafka.Kafka`` JVM (with that server.properties)."""
    if not pid_alive(pid):
        return False
    args = _cmdline(pid)
    if args is None:  # no /proc: trust the pid
        return True
    return "kafka.Kafka" in args and (properties is None or properties in args)


def terminate(pid: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM (Kafka then shuts down cleanly), wait ``timeout``, then SIGKILL."""

    def gone(wait: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout=wait)
                return True
            except subprocess.TimeoutExpired:
                return False
        end = time.monotonic() + wait
        while pid_alive(pid):
            if time.monotonic() >= end:
                return False
            time.sleep(0.1)
        return True

    if proc is not None:
        if proc.poll() is not None:
            return
    elif not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if gone(timeout):
        log.info("kafka.broker.stopped pid=%d signal=TERM", pid)
        return
    log.warning("kafka.broker.kill pid=%d reason=no exit %.0fs after SIGTERM", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not gone(10.0):
        raise BrokerError(f"Kafka broker pid {pid} did not exit even after SIGKILL")


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return preexec


def free_ports(count: int = 2) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster_id() -> str:
    while True:  # Kafka's own ids never start with "-" (it reads like an option)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# Launches the broker in its own session from a short-lived child, so the broker is
# nobody's child: it outlives the command that started it, and is reaped by init.
_DETACH = """\
import subprocess, sys
with open(sys.argv[1], "ab") as out:
    p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True)
print(p.pid)
"""


_DIR_PREFIX = "falconet-kafka-"


def _dirs_in_use() -> str | None:
    """Every running process's command line, joined (None without /proc)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parts = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parts.append((entry / "cmdline").read_bytes().decode(errors="replace"))
    return "\0".join(parts)


def sweep_stale_data_dirs(min_age: float = 600.0) -> list[Path]:
    """Remove temporary data dirs of local brokers that no longer run (a process that was
    killed could not remove its own): this user's, older than ``min_age`` s, and named on
    no running process's command line. Returns what was removed."""
    candidates = []
    for d in Path(tempfile.gettempdir()).glob(_DIR_PREFIX + "*"):
        try:
            st = d.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and time.time() - st.st_mtime >= min_age:
            candidates.append(d)
    if not candidates:
        return []
    in_use = _dirs_in_use()
    if in_use is None:
        return []  # cannot tell which are in use
    removed = []
    for d in candidates:
        if f"{d}/" in in_use:
            continue
        shutil.rmtree(d, ignore_errors=True)
        log.info("kafka.data_dir.swept dir=%s", d)
        removed.append(d)
    return removed


# -- the local broker ----------------------------------------------------------------------


class LocalKafka:
    """Apache Kafka :data:`KAFKA_VERSION` in KRaft mode on free loopback ports.

    One JVM is both broker and controller; ``auto.create.topics.enable=false``, internal
    topics with one replica, records up to 16 MiB, no initial rebalance delay, and group
    session timeouts down to 1 s allowed (tests keep sessions short). Use it as a context
    manager, or call :meth:`start` and :meth:`stop`.

    ``data_dir``: where configuration, the broker log and the partitions go; by default a
    new temporary folder that :meth:`stop` removes (a given folder is kept, and reused if
    already formatted). ``detached``: the broker outlives this process (``falconet kafka
    up``); otherwise Linux stops it if this process dies without :meth:`stop`, and an
    ``atexit`` hook stops it at a normal exit.
    """

    def __init__(
        self,
        *,
        progress: Progress = _stderr_progress,
        data_dir: str | Path | None = None,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = DEFAULT_HEAP,
        properties: Mapping[str, str] | None = None,
        detached: bool = False,
    ) -> None:
        self.progress = progress
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self._fixed_ports = (port, controller_port)
        self.heap = heap
        self.extra = dict(properties or {})
        self.detached = detached
        self.data_dir: Path | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: Any = None
        self._created_dir = False
        self._info: BrokerInfo | None = None

    # paths inside the data dir
    @property
    def properties_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def info(self) -> BrokerInfo:
        if self._info is None:
            raise BrokerError("the local Kafka broker is not running")
        return self._info

    def ensure_jars(self) -> Path:
        """Resolve the jars if this machine does not have them yet (see :func:`resolve_jars`)."""
        return resolve_jars(self.progress)

    def server_properties(self) -> dict[str, str]:
        """The broker's server.properties: :data:`BROKER_SETTINGS` plus listeners and paths."""
        assert self.data_dir is not None
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft-logs"),
            **BROKER_SETTINGS,
            "num.recovery.threads.per.data.dir": "1",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        props.update(self.extra)
        return props

    def _write_config(self) -> None:
        assert self.data_dir is not None
        lines = [f"# written by falconet.broker for Apache Kafka {KAFKA_VERSION}"]
        lines += [f"{k}={v}" for k, v in self.server_properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.data_dir / "log4j2.properties").write_text(
            "status = warn\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "appender.file.type = RollingFile\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_file}\n"
            f"appender.file.filePattern = {self.log_file}.%i\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "appender.file.policies.type = Policies\n"
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
            "appender.file.policies.size.size = 50MB\n"
            "appender.file.strategy.type = DefaultRolloverStrategy\n"
            "appender.file.strategy.max = 3\n",
            encoding="utf-8",
        )

    def _java_cmd(self, java: str, libs: Path, heap: str) -> list[str]:
        assert self.data_dir is not None
        return [
            java,
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, java: str, libs: Path) -> None:
        assert self.data_dir is not None
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return  # a kept data dir: already formatted
        cmd = self._java_cmd(java, libs, "256m") + [
            "kafka.tools.StorageTool", "format",
            "-t", _cluster_id(),
            "-c", str(self.properties_file),
        ]  # fmt: skip
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=self.data_dir, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=180, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise BrokerError("formatting the Kafka storage did not finish in 180s") from None
        if proc.returncode != 0:
            raise BrokerError(
                f"formatting the Kafka storage failed (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr).strip()[-2000:]}"
            )
        log.info("kafka.storage.formatted dir=%s seconds=%.1f", self.data_dir, time.monotonic() - started)

    def _launch(self, cmd: list[str]) -> None:
        assert self.data_dir is not None
        out_path = self.data_dir / "stdout.log"
        if self.detached:
            proc = subprocess.run(
                [sys.executable, "-c", _DETACH, str(out_path), *cmd],
                cwd=self.data_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
            if proc.returncode != 0 or not proc.stdout.strip().isdigit():
                raise BrokerError(f"could not launch the Kafka broker: {proc.stderr.strip()}")
            self.pid = int(proc.stdout.strip())
            return
        self._out = open(out_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            cmd,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it
            preexec_fn=die_with_parent(),
        )
        self.pid = self._proc.pid

    def _exited(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is not None
        return self.pid is None or not pid_alive(self.pid)

    def _check_alive(self) -> None:
        if self._exited():
            raise _BrokerDied(self._failure_text())

    def _failure_text(self) -> str:
        assert self.data_dir is not None
        errors = [
            ln for ln in _tail(self.log_file, 400).splitlines() if " ERROR " in ln or "Exception" in ln
        ]
        detail = "\n".join(errors[-8:]) or _tail(self.data_dir / "stdout.log") or _tail(self.log_file)
        return f"the Kafka broker exited during start-up (log: {self.log_file}):\n{detail}"

    def start(self, timeout: float = 90.0) -> BrokerInfo:
        """Start the broker and wait until it answers metadata requests (``timeout`` s)."""
        if self.pid is not None:
            raise BrokerError("this LocalKafka is already started")
        java = check_prerequisites()
        libs = self.ensure_jars()
        try:
            return self._start(java, libs, timeout)
        except BaseException:
            self.stop(timeout=10)
            raise

    def _start(self, java: str, libs: Path, timeout: float) -> BrokerInfo:
        if self._given_dir is not None:
            self.data_dir = self._given_dir
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            sweep_stale_data_dirs()
            self.data_dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
            self._created_dir = True
        fixed = self._fixed_ports[0] is not None or self._fixed_ports[1] is not None
        for attempt in range(1 if fixed else 3):
            ports = free_ports(2)
            self.port = self._fixed_ports[0] or ports[0]
            self.controller_port = self._fixed_ports[1] or ports[1]
            self._write_config()
            self._format(java, libs)
            started = time.monotonic()
            self.progress(f"starting Kafka {KAFKA_VERSION} on {self.bootstrap}")
            self._launch(self._java_cmd(java, libs, self.heap) + ["kafka.Kafka", str(self.properties_file)])
            log.info(
                "kafka.broker.starting pid=%s bootstrap=%s controller_port=%s data_dir=%s",
                self.pid, self.bootstrap, self.controller_port, self.data_dir,
            )  # fmt: skip
            try:
                wait_ready(self.bootstrap, timeout, alive=self._check_alive)
            except _BrokerDied as exc:
                if "Address already in use" in str(exc) and attempt < 2 and not fixed:
                    log.warning("kafka.broker.port_taken port=%s retry=%d", self.port, attempt + 1)
                    self._stop_process(10)
                    continue
                raise BrokerError(str(exc)) from None
            warm_group_coordinator(self.bootstrap)
            seconds = time.monotonic() - started
            log.info("kafka.broker.ready pid=%s bootstrap=%s seconds=%.1f", self.pid, self.bootstrap, seconds)
            self.progress(f"Kafka ready on {self.bootstrap} in {seconds:.1f}s (pid {self.pid})")
            self._info = BrokerInfo(
                bootstrap=self.bootstrap,
                kind="local",
                pid=self.pid,
                data_dir=str(self.data_dir),
                log_file=str(self.log_file),
            )
            if not self.detached:
                atexit.register(self.stop)
            return self._info
        raise BrokerError("could not find free ports for the Kafka broker")  # pragma: no cover

    def _stop_process(self, timeout: float) -> None:
        if self.pid is not None:
            if self._proc is not None or is_local_broker(self.pid, str(self.properties_file)):
                terminate(self.pid, timeout, self._proc)
        self.pid = None
        self._proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s) and remove the data
        dir if this object created it. Idempotent."""
        atexit.unregister(self.stop)
        self._stop_process(timeout)
        self._info = None
        if self._created_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._created_dir = False

    def __enter__(self) -> BrokerInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _BrokerDied(BrokerError):
    pass


# -- Docker --------------------------------------------------------------------------------


def _docker_candidates() -> list[str]:
    host = os.environ.get("DOCKER_HOST", "").strip()
    if host:
        return [host]
    home = Path.home()
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return [
        "unix:///var/run/docker.sock",
        f"unix://{home}/.docker/run/docker.sock",
        f"unix://{home}/.docker/desktop/docker.sock",
        f"unix://{runtime}/docker.sock",
    ]


def docker_ping(url: str, timeout: float = 1.0) -> bool:
    """Whether the Docker engine at ``url`` (unix:// or tcp://) answers ``GET /_ping``."""
    try:
        if url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(url[len("unix://") :])
        elif url.startswith(("tcp://", "http://")):
            (host, port), *_ = _hosts(url.split("://", 1)[1].split("/", 1)[0])
            sock = socket.create_connection((host, port), timeout=timeout)
            if os.environ.get("DOCKER_TLS_VERIFY") or port == 2376:
                sock.close()  # TLS engine: it accepts connections; that is as far as we probe
                return True
        else:
            log.debug("kafka.docker.not_probed url=%s", url)
            return False
    except (OSError, BrokerError):
        return False
    try:
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        answer = sock.recv(256)
    except OSError:
        return False
    finally:
        sock.close()
    status = answer.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[0].startswith(b"HTTP/") and status[1] == b"200"


def docker_endpoint() -> str | None:
    """The URL of a Docker engine that answers a ping, if any."""
    for url in _docker_candidates():
        if docker_ping(url):
            return url
    return None


def testcontainers_available() -> bool:
    try:
        import testcontainers.core.container  # noqa: F401
    except ImportError:
        return False
    return True


def select_kind(
    bootstrap: str | None = None, progress: Progress = _quiet
) -> tuple[Kind, str | None]:
    """Which broker :func:`acquire` uses: ``(kind, detail)`` where detail is the
    bootstrap (external) or the Docker URL (docker)."""
    if bootstrap is None:
        bootstrap = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if bootstrap:
        return "external", bootstrap
    url = docker_endpoint()
    if url is not None:
        if testcontainers_available():
            return "docker", url
        log.info(
            "kafka.docker.skipped url=%s reason=testcontainers not installed "
            "(pip install 'testcontainers[kafka]'); using local jars",
            url,
        )
        progress(
            f"Docker answers at {url} but testcontainers is not installed "
            "(pip install 'testcontainers[kafka]'); using the local Kafka jars"
        )
    return "local", None


class DockerKafka:
    """The official ``apache/kafka`` image in a container, through testcontainers.

    The container waits for a start script that is copied in once the mapped port is
    known, so the advertised listener is the address this host reaches the container at.
    """

    PORT = 9092  # clients, mapped to a host port
    BROKER_PORT = 9093  # inside the container only
    CONTROLLER_PORT = 9094
    SCRIPT = "/tmp/falconet-start.sh"

    def __init__(self, docker_url: str, *, progress: Progress = _stderr_progress) -> None:
        self.docker_url = docker_url
        self.progress = progress
        self._container: Any = None

    def start(self, timeout: float = 180.0) -> BrokerInfo:
        import io
        import tarfile

        from testcontainers.core.container import DockerContainer

        client_kw: dict[str, Any] = {}
        if not os.environ.get("DOCKER_HOST"):
            client_kw["environment"] = {**os.environ, "DOCKER_HOST": self.docker_url}
        c = DockerContainer(DOCKER_IMAGE, docker_client_kw=client_kw)
        c.with_exposed_ports(self.PORT)
        env = {
            "CLUSTER_ID": _cluster_id(),
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": (
                f"PLAINTEXT://0.0.0.0:{self.PORT},BROKER://0.0.0.0:{self.BROKER_PORT},"
                f"CONTROLLER://0.0.0.0:{self.CONTROLLER_PORT}"
            ),
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{self.CONTROLLER_PORT}",
            "KAFKA_HEAP_OPTS": f"-Xmx{DEFAULT_HEAP}",
        }
        # the same broker settings as the local broker, in the image's KAFKA_* convention
        for key, value in BROKER_SETTINGS.items():
            env["KAFKA_" + key.upper().replace(".", "_")] = value
        for k, v in env.items():
            c.with_env(k, v)
        c.with_command(["sh", "-c", f"while [ ! -f {self.SCRIPT} ]; do sleep 0.1; done; exec sh {self.SCRIPT}"])
        self.progress(f"starting {DOCKER_IMAGE} with Docker at {self.docker_url} (pulls it the first time)")
        started = time.monotonic()
        c.start()
        self._container = c
        try:
            host = c.get_container_host_ip()
            port = int(c.get_exposed_port(self.PORT))
            script = (
                f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},"
                f"BROKER://localhost:{self.BROKER_PORT}\n"
                "exec /etc/kafka/docker/run\n"
            ).encode()
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                entry = tarfile.TarInfo(self.SCRIPT.rsplit("/", 1)[1])
                entry.size = len(script)
                entry.mode = 0o755
                entry.mtime = int(time.time())
                tar.addfile(entry, io.BytesIO(script))
            c.get_wrapped_container().put_archive(self.SCRIPT.rsplit("/", 1)[0], buf.getvalue())
            bootstrap = f"{host}:{port}"
            wait_ready(bootstrap, timeout, what=f"container {DOCKER_IMAGE}")
            warm_group_coordinator(bootstrap)
        except BaseException:
            self.stop()
            raise
        log.info("kafka.broker.ready kind=docker bootstrap=%s seconds=%.1f", bootstrap, time.monotonic() - started)
        self.progress(f"Kafka ready on {bootstrap} (Docker)")
        return BrokerInfo(bootstrap=bootstrap, kind="docker")

    def stop(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.stop()
            self._container = None


# -- choosing ------------------------------------------------------------------------------


@contextlib.contextmanager
def acquire(
    progress: Progress = _stderr_progress,
    *,
    timeout: float | None = None,
    bootstrap: str | None = None,
    client_config: Mapping[str, Any] | None = None,
) -> Iterator[BrokerInfo]:
    """A Kafka broker for the duration of the ``with`` block.

    ``bootstrap`` (default: ``$FALCONET_KAFKA_BOOTSTRAP``) names an existing cluster,
    which is only waited for (``timeout``, default 30 s; ``client_config`` adds librdkafka
    TLS/SASL settings). Otherwise a Docker container (if a Docker engine answers and
    testcontainers is installed) or a local JVM is started (default ``timeout`` 90 s / 180
    s), and stopped when the block ends. ``progress`` receives human-readable lines.
    """
    kind, detail = select_kind(bootstrap, progress)
    if kind == "external":
        assert detail is not None
        what = "from " + BOOTSTRAP_ENV if bootstrap is None else "given bootstrap"
        progress(f"using the Kafka cluster at {detail} ({what})")
        summary = wait_ready(
            detail, 30.0 if timeout is None else timeout, client_config=client_config, what=what
        )
        log.info("kafka.broker.ready kind=external bootstrap=%s brokers=%d", detail, summary.brokers)
        yield BrokerInfo(bootstrap=detail, kind="external")
        return
    if kind == "docker":
        assert detail is not None
        docker = DockerKafka(detail, progress=progress)
        try:
            info = docker.start(180.0 if timeout is None else timeout)
        except Exception as exc:  # an engine that answers but cannot run the image
            log.warning("kafka.docker.failed error=%s; using local jars", exc)
            progress(f"the Kafka container did not start ({exc}); using the local jars instead")
        else:
            try:
                yield info
            finally:
                docker.stop()
            return
    local = LocalKafka(progress=progress)
    info = local.start(90.0 if timeout is None else timeout)
    try:
        yield info
    finally:
        local.stop()


# -- the broker `falconet kafka up` started -------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpState:
    """What ``falconet kafka up`` records about the broker it started."""

    pid: int
    bootstrap: str
    port: int
    controller_port: int
    data_dir: str
    log_file: str
    kafka_version: str
    started_at: float  # Unix time

    @property
    def properties_file(self) -> str:
        return os.path.join(self.data_dir, "server.properties")

    def running(self) -> bool:
        """Whether the recorded pid is still that broker (not a reused pid)."""
        return is_local_broker(self.pid, self.properties_file)


def read_state() -> UpState | None:
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
        return UpState(**{k: data[k] for k in UpState.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(state: UpState) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def clear_state() -> None:
    with contextlib.suppress(FileNotFoundError):
        state_file().unlink()


def up_lock(progress: Progress = _quiet) -> contextlib.AbstractContextManager[None]:
    """Serialises ``falconet kafka up`` and ``down``."""
    return _locked(
        cache_root() / "up.lock", waiting="waiting for another `falconet kafka up/down`", progress=progress
    )


def running_local_bootstrap() -> str | None:
    """The bootstrap of the broker ``falconet kafka up`` started, if its process runs.

    Cheap (a file read and a /proc look-up, no network); whether it answers is up to the
    caller's client.
    """
    state = read_state()
    if state is None or not state.running():
        return None
    return state.bootstrap

"""The Kafka launcher (falconet.broker) and `falconet kafka up|status|down`.

The session broker comes from the ``kafka`` fixture; the tests of the local launcher start
a second broker on other ports, or simulate a machine without Java or Maven Central.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from falconet import broker
from falconet.broker import (
    BrokerError,
    BrokerInfo,
    LocalKafka,
    MissingPrerequisite,
    acquire,
    pid_alive,
    wait_ready,
)
from falconet.broker_cli import kafka as kafka_cli
from tests.integration.harness import wait_for


def _quiet(_: str) -> None:
    pass


def _fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jars: Path | None) -> Path:
    """A private XDG cache; with ``jars``, its Kafka libs are the already resolved ones."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv(broker.BOOTSTRAP_ENV, raising=False)
    if jars is not None:
        broker.version_dir().mkdir(parents=True)
        broker.libs_dir().symlink_to(jars, target_is_directory=True)
    return cache


# -- the session broker ----------------------------------------------------------------


def test_session_broker_creates_topics_and_round_trips_records(
    kafka: BrokerInfo, topic_prefix: str
) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    summary = wait_ready(kafka.bootstrap, 30)
    assert summary.brokers >= 1

    topic = topic_prefix + "roundtrip"
    # the context manager destroys the client here: an AdminClient left to the garbage
    # collector can be destroyed on a librdkafka thread and crash the process
    with AdminClient({"bootstrap.servers": kafka.bootstrap}) as admin:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
        # the controller acknowledged the topic; the broker's metadata cache follows shortly
        # (seconds on a loaded machine): ask until it knows it, then check the partitions
        wait_for(lambda: not admin.list_topics(topic, timeout=10).topics[topic].error, 30,
                 "the new topic in the broker's metadata")  # fmt: skip
        assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 2

    big = b"x" * (16 * 1024 * 1024)  # the largest record falconet reads or keeps in the DLQ
    records = [(b"host-1", b'{"evt": 1}'), (b"host-2", b'{"evt": 2}')]
    if kafka.kind != "external":  # our brokers accept 16 MiB records; a foreign one may not
        records.append((b"big", big))
    failures: list[object] = []
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 17 * 1024 * 1024}
    )
    for key, value in records:
        producer.produce(
            topic, key=key, value=value, on_delivery=lambda err, _m: err and failures.append(err)
        )
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": topic_prefix + "group",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    try:
        consumer.subscribe([topic])
        got: dict[bytes, bytes] = {}
        deadline = time.monotonic() + 60
        while len(got) < len(records) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got[msg.key()] = msg.value()
        assert got == dict(records)
        consumer.commit(asynchronous=False)  # the group coordinator works (__consumer_offsets)
    finally:
        consumer.close()


def test_brokers_we_start_never_create_topics_on_first_use(
    kafka: BrokerInfo, topic_prefix: str
) -> None:
    """Faust crash-loops on auto-created topics with the wrong partition count
    (docs: kafka-notes); our brokers only have the topics that were created."""
    if kafka.kind == "external":
        pytest.skip("the cluster in FALCONET_KAFKA_BOOTSTRAP has its own settings")
    from confluent_kafka import Producer

    topic = topic_prefix + "never-created"
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "message.timeout.ms": 1000})
    errors: list[object] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(15)
    assert errors and errors[0] is not None
    from confluent_kafka.admin import AdminClient

    with AdminClient({"bootstrap.servers": kafka.bootstrap}) as admin:
        assert topic not in admin.list_topics(timeout=10).topics


# -- the local launcher ------------------------------------------------------------------


def test_local_kafka_stop_leaves_no_process_and_no_data_dir(
    kafka: BrokerInfo, kafka_jars: Path
) -> None:
    local = LocalKafka(progress=_quiet)
    info = local.start(90)
    try:
        assert info.kind == "local" and info.pid is not None and info.data_dir is not None
        assert info.bootstrap != kafka.bootstrap
        assert info.bootstrap.startswith("127.0.0.1:")
        assert pid_alive(info.pid)
        assert wait_ready(info.bootstrap, 10).brokers == 1
        props = Path(info.data_dir, "server.properties").read_text()
        assert "auto.create.topics.enable=false" in props
        assert Path(info.log_file or "").stat().st_size > 0  # the broker logs to its data dir
    finally:
        local.stop()
    assert not pid_alive(info.pid)
    assert not Path(info.data_dir).exists()
    local.stop()  # idempotent


def test_sweep_removes_only_abandoned_data_dirs() -> None:
    """A killed test run cannot remove its broker's data dir; the next start does, but
    never one a running process names (a live broker) or one just created."""
    abandoned, in_use, fresh = (Path(tempfile.mkdtemp(prefix="falconet-kafka-")) for _ in range(3))
    hour_ago = time.time() - 3600
    for d in (abandoned, in_use):
        os.utime(d, (hour_ago, hour_ago))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"{in_use}/server.properties"]
    )
    try:
        time.sleep(0.2)
        removed = broker.sweep_stale_data_dirs()
        assert abandoned in removed and not abandoned.exists()
        assert in_use.exists() and fresh.exists()
    finally:
        holder.kill()
        holder.wait()
        for d in (abandoned, in_use, fresh):
            shutil.rmtree(d, ignore_errors=True)


def test_kafka_up_status_down_round_trip(
    kafka_jars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh_cache(tmp_path, monkeypatch, kafka_jars)
    runner = CliRunner()
    state: broker.UpState | None = None
    try:
        up = runner.invoke(kafka_cli, ["up", "--timeout", "90"])
        assert up.exit_code == 0, up.output
        bootstrap = up.stdout.strip()
        assert bootstrap.startswith("127.0.0.1:")
        assert "resolving" not in up.stderr  # the jars were reused, not downloaded again
        state = broker.read_state()
        assert state is not None and state.bootstrap == bootstrap
        assert broker.running_local_bootstrap() == bootstrap

        status = runner.invoke(kafka_cli, ["status", "--json"])
        assert status.exit_code == 0, status.output
        report = json.loads(status.stdout)
        assert report["running"] is True
        assert report["bootstrap"] == bootstrap
        assert report["pid"] == state.pid
        assert report["brokers"] == 1 and report["topics"] == 0

        again = runner.invoke(kafka_cli, ["up"])
        assert again.exit_code == 0, again.output
        assert again.stdout.strip() == bootstrap
        assert "already running" in again.stderr

        down = runner.invoke(kafka_cli, ["down"])
        assert down.exit_code == 0, down.output
        assert not pid_alive(state.pid)
        assert not Path(state.data_dir).exists()
        assert broker.read_state() is None
        assert broker.running_local_bootstrap() is None

        assert runner.invoke(kafka_cli, ["down"]).exit_code == 0  # idempotent
        after = runner.invoke(kafka_cli, ["status"])
        assert after.exit_code == 1
        assert "running:" in after.stdout and "no" in after.stdout
    finally:
        if state is not None and pid_alive(state.pid):
            broker.terminate(state.pid, 10)


def test_missing_java_and_maven_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh_cache(tmp_path, monkeypatch, None)  # no jars yet: Maven would be needed too
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(MissingPrerequisite) as exc:
        LocalKafka(progress=_quiet).start(10)
    message = str(exc.value)
    assert "Java 17" in message and "Maven" in message
    assert "apt-get install -y openjdk-17-jre-headless maven" in message
    assert broker.BOOTSTRAP_ENV in message  # the other way out

    result = CliRunner().invoke(kafka_cli, ["up"])
    assert result.exit_code == 1
    assert "apt-get install -y openjdk-17-jre-headless maven" in result.stderr
    assert "Traceback" not in result.output


def test_too_old_java_is_named_with_its_version(
    kafka_jars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(MissingPrerequisite) as exc:
        broker.check_prerequisites()
    assert "Java 11" in str(exc.value) and "Java 17 or newer" in str(exc.value)
    assert "openjdk-17-jre-headless" in str(exc.value)


def test_unreachable_maven_central_is_reported_and_leaves_no_partial_jars(
    kafka_jars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Maven with an empty local repository and every repository pointing at a dead
    port behaves as on a machine that cannot reach Maven Central."""
    _fresh_cache(tmp_path, monkeypatch, None)
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>dead</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    monkeypatch.setenv(
        "MAVEN_OPTS", f"-Duser.home={home} -Dmaven.repo.local={tmp_path / 'm2-empty'}"
    )
    with pytest.raises(MissingPrerequisite) as exc:
        broker.resolve_jars(_quiet)
    assert "Maven Central" in str(exc.value)
    assert not broker.libs_dir().exists()
    assert not list(broker.version_dir().glob(".resolve-*"))


def test_concurrent_resolution_runs_maven_once_and_replaces_a_partial_download(
    kafka_jars: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes resolving at once: one runs Maven, the other waits and reuses. A
    ``libs`` folder without the completion marker (an interrupted run) is replaced.
    Maven's own repository (~/.m2) is warm by now, so this costs seconds."""
    _fresh_cache(tmp_path, monkeypatch, None)
    libs = broker.libs_dir()
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"truncated")
    (broker.version_dir() / ".resolve-dead").mkdir()
    code = "from falconet.broker import resolve_jars; print(resolve_jars())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(out.strip() == str(libs) for out, _ in outs)
    assert sum("resolving Apache Kafka" in err for _, err in outs) == 1, outs
    assert broker.jars_complete(libs)
    assert sorted(p.name for p in libs.glob("*.jar")) == sorted(p.name for p in kafka_jars.glob("*.jar"))
    assert not list(broker.version_dir().glob(".resolve-*"))


# -- choosing a broker -----------------------------------------------------------------


def test_dead_bootstrap_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = broker.free_ports(1)[0]
    monkeypatch.setenv(broker.BOOTSTRAP_ENV, f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(BrokerError) as exc, acquire(_quiet, timeout=2):
        pass
    assert not isinstance(exc.value, MissingPrerequisite)  # never a skip reason
    message = str(exc.value)
    assert f"127.0.0.1:{port}" in message and broker.BOOTSTRAP_ENV in message
    assert "did not answer" in message and "refused" in message.lower()
    assert time.monotonic() - started < 30

    status = CliRunner().invoke(kafka_cli, ["status", "--timeout", "1"])
    assert status.exit_code == 1
    assert "did not answer" in status.stderr


def test_bootstrap_variable_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(broker.BOOTSTRAP_ENV, "kafka-1:9092,kafka-2:9092")
    assert broker.select_kind() == ("external", "kafka-1:9092,kafka-2:9092")


class _FakeDockerEngine:
    """A unix socket answering Docker's ``GET /_ping`` (what the launcher probes)."""

    def __init__(self, path: Path, status: bytes = b"200 OK") -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.status = status
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(conn.recv(1024))
                conn.sendall(b"HTTP/1.1 " + self.status + b"\r\nContent-Length: 2\r\n\r\nOK")

    def close(self) -> None:
        self.sock.close()


def test_docker_without_testcontainers_falls_back_to_local_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _FakeDockerEngine(tmp_path / "docker.sock")
    try:
        monkeypatch.delenv(broker.BOOTSTRAP_ENV, raising=False)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")
        monkeypatch.setitem(sys.modules, "testcontainers", None)  # not importable
        assert broker.docker_endpoint() == f"unix://{tmp_path / 'docker.sock'}"
        assert engine.requests and engine.requests[0].startswith(b"GET /_ping ")
        lines: list[str] = []
        with caplog.at_level("INFO", logger="falconet.broker"):
            assert broker.select_kind(progress=lines.append) == ("local", None)
        assert any("testcontainers" in r.getMessage() for r in caplog.records)
        assert any("testcontainers is not installed" in line for line in lines)
    finally:
        engine.close()


def test_docker_that_does_not_answer_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(broker.BOOTSTRAP_ENV, raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'absent.sock'}")
    assert broker.docker_endpoint() is None
    engine = _FakeDockerEngine(tmp_path / "sick.sock", status=b"500 Internal Server Error")
    try:
        assert not broker.docker_ping(f"unix://{tmp_path / 'sick.sock'}")
    finally:
        engine.close()
    assert broker.select_kind() == ("local", None)


def test_cli_help_explains_each_command() -> None:
    runner = CliRunner()
    top = runner.invoke(kafka_cli, ["--help"])
    assert top.exit_code == 0 and "openjdk-17-jre-headless" in top.output
    for cmd, phrase in (("up", "FALCONET_KAFKA_BOOTSTRAP"), ("down", "SIGTERM"), ("status", "Exit status 1")):
        result = runner.invoke(kafka_cli, [cmd, "--help"])
        assert result.exit_code == 0 and phrase in result.output, result.output


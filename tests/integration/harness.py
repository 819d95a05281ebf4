"""Running workers and reading topics in the integration tests (real broker, real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from falconet.config import Config
from falconet.kafka import KafkaSettings
from falconet.streams import topics as T

ROOT = Path(__file__).resolve().parents[2]

#: Small partitions and quick group timing keep rebalances in tests to seconds.
TEST_ENV = {
    "FALCONET_TOPICS_PARTITIONS": "3",
    "FALCONET_TOPICS_META_PARTITIONS": "3",
}


@dataclass
class Stack:
    """A topic prefix of its own on the session's broker, with its topics created."""

    bootstrap: str
    prefix: str
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TEST_ENV)
        env["FALCONET_KAFKA_BOOTSTRAP"] = self.bootstrap
        env["FALCONET_KAFKA_TOPIC_PREFIX"] = self.prefix
        env["FALCONET_WORKER_DATA_DIR"] = str(self.tmp / "worker-data")
        return env

    @property
    def config(self) -> Config:
        return Config.load(env=self.env)

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings.from_config(self.config)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def falconet(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 input: bytes | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "falconet", *args],
            env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
            check=False, input=input.decode() if input else None, cwd=ROOT,
        )  # fmt: skip

    def start_worker(self, worker_id: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{worker_id}.log", "ab")  # noqa: SIM115 - the process owns it
        from falconet.broker import die_with_parent

        proc = subprocess.Popen(
            [sys.executable, "-m", "falconet", "worker", "--id", worker_id, "--log-level", "info", *args],
            env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def log_of(self, worker_id: str) -> str:
        try:
            return (self.tmp / f"{worker_id}.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def produce(self, topic: str, values: list[tuple[bytes | None, bytes | None]]) -> None:
        from confluent_kafka import Producer

        p = Producer(self.settings.confluent(**{"acks": "all", "message.max.bytes": 16 * 1024 * 1024,
                                                "compression.type": "lz4"}))  # fmt: skip
        for key, value in values:
            p.produce(self.topic(topic), key=key, value=value)
            p.poll(0)
        assert p.flush(30) == 0


def make_stack(bootstrap: str, prefix: str, tmp: Path) -> Stack:
    stack = Stack(bootstrap, prefix, tmp)
    states = T.create(stack.settings, T.specs(stack.config), 1)
    assert all(s.status in ("created", "exists") for s in states), states
    return stack


@contextlib.contextmanager
def reader(stack: Stack, topic: str) -> Iterator[Callable[..., list[Any]]]:
    """``read(until=..., timeout=...)`` returns the decoded JSON values read so far."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(stack.settings.confluent(**{"group.id": f"{stack.prefix}reader-{time.time_ns()}",
                                                    "enable.auto.commit": False,
                                                    "fetch.message.max.bytes": 16 * 1024 * 1024}))  # fmt: skip
    full = stack.topic(topic)
    meta = consumer.list_topics(full, timeout=10).topics[full]
    consumer.assign([TopicPartition(full, p, OFFSET_BEGINNING) for p in meta.partitions])
    seen: list[Any] = []

    def read(until: Callable[[list[Any]], bool] = lambda s: False, timeout: float = 60.0,
             workers: list[subprocess.Popen[bytes]] | None = None) -> list[Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while not until(seen) and time.monotonic() < deadline:
            for w in workers or ():
                assert w.poll() is None, f"worker {w.pid} exited with {w.returncode}"
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            seen.append(orjson.loads(msg.value()))
        return seen

    try:
        yield read
    finally:
        consumer.close()


def status_of(stack: Stack) -> dict[str, dict[str, Any]]:
    from falconet.streams.rulesets import read_compacted

    return {k: orjson.loads(v) for k, v in read_compacted(stack.settings, stack.topic(T.STATUS)).items()}


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def group_assignment(stack: Stack) -> dict[str, set[tuple[str, int]]]:
    """The event-topic partitions each member of the workers' consumer group holds."""
    from confluent_kafka.admin import AdminClient

    group = stack.topic("worker")
    with AdminClient(stack.settings.confluent()) as admin:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    out: dict[str, set[tuple[str, int]]] = {}
    for m in desc.members:
        parts = {(tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])}
        out[m.client_id + "/" + m.member_id[-6:]] = {p for p in parts if ".events." in p[0]}
    return out

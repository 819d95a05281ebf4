"""`falconet sensor syscall` on the real broker: capture, batch records, metrics, SIGTERM.

Runs the CLI as a process (BPF program loaded with the kernel filter of the stable Falco
rules), makes a process read /etc/shadow, scrapes the Prometheus endpoint, stops the
sensor with SIGTERM and reads the event topic: batch records keyed by the host with the
``falconet-batch`` header, events that decode, and the stable rule that fires on them.

Needs root (or CAP_BPF + CAP_PERFMON), kernel BTF, libbpf.so.1 and the session's broker.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from falconet import shared_context
from falconet.inputs import event_from_envelope
from falconet.rules.engine import Engine, EngineConfig
from falconet.sensors.syscall import preflight
from falconet.sensors.syscall.metrics import scrape
from falconet.streams.topics import events_topic
from tests.integration.harness import ROOT, make_stack, wait_for

STABLE = "falco/falcosecurity-rules/rules/falco_rules.yaml"


_MISSING = preflight.missing()  # root (or CAP_BPF + CAP_PERFMON), BTF, libbpf, x86-64
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"the sensor cannot run here: {_MISSING}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sensor_publishes_batches_and_stops_cleanly(kafka, topic_prefix: str, tmp_path: Path, corpus: Path) -> None:
    stack = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    port = _free_port()
    log = open(tmp_path / "sensor.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "falconet", "sensor", "syscall", "--rules", str(corpus / STABLE),
         "--host", "node-it", "--metrics-port", str(port), "--ring-mb", "16"],
        env=stack.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    try:
        def started() -> bool:
            assert proc.poll() is None, (tmp_path / "sensor.log").read_text()
            return b"sensor.started" in (tmp_path / "sensor.log").read_bytes()

        wait_for(started, 60, "the sensor to start")
        cat = subprocess.run(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        assert cat.returncode == 0

        def seen() -> bool:
            m = scrape(port)
            return m.get('falconet_sensor_events_total{sensor="syscall"}', 0) > 0

        wait_for(seen, 30, "events in the metrics")
        m = scrape(port)
        for name in ("falconet_sensor_syscall_ring_fill_ratio", "falconet_sensor_syscall_kernel_drops_total",
                     "falconet_sensor_syscall_events_per_second", 'falconet_sensor_drops_total{sensor="syscall"}',
                     'falconet_sensor_publish_errors_total{sensor="syscall"}'):  # fmt: skip
            assert name in m, name
        assert m["falconet_sensor_syscall_kernel_drops_total"] == 0
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        log.close()
    text = (tmp_path / "sensor.log").read_text()
    assert rc == 0, text
    assert "sensor.stopped sensor=syscall" in text and "failed=0" in text
    assert "Traceback" not in text

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = stack.topic(events_topic("syscall"))
    consumer = Consumer(stack.settings.confluent(**{"group.id": f"{topic_prefix}check",
                                                    "enable.auto.commit": False,
                                                    "fetch.message.max.bytes": 16 * 1024 * 1024}))  # fmt: skip
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    records = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            if records:
                break
            continue
        if not msg.error():
            records.append(msg)
    consumer.close()
    assert records, "no record on the event topic"
    eng = Engine(EngineConfig(rule_matching="all"))
    assert eng.load([corpus / STABLE]).ok
    fired = []
    partitions = set()
    for msg in records:
        assert msg.key() == b"node-it"
        partitions.add(msg.partition())
        batch = orjson.loads(msg.value())
        assert dict(msg.headers())["falconet-batch"] == str(len(batch)).encode()
        assert shared_context.resolve(batch) == {}
        for obj in batch:
            assert obj["host"] == "node-it" and obj["source"] == "syscall"
            fired += [(d.rule, d.output_fields.get("proc.cmdline")) for d in eng.process(event_from_envelope(obj))]
    assert len(partitions) == 1  # one host: one partition, in order
    assert ("Read sensitive file untrusted", "cat /etc/shadow") in fired

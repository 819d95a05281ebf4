"""`falconet sink` on the real broker, delivering to the local webhook receiver.

Each test produces detections to detections.v1, runs `falconet sink` as a process (as a
deployment would), breaks the receiver in the ways the issue lists, and checks what the
SOC got: every detection at least once, duplicates bounded by the retried records,
refusals in the DLQ with their reason and payload, offsets resumed after a restart,
consumption paused (not buffered without limit) while a destination is slow.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from falconet.streams.topics import DETECTIONS, DLQ
from tests.integration.harness import ROOT, Stack, make_stack, reader, wait_for
from tests.sinks.receivers.webhook import (
    WebhookReceiver,
    delay,
    detection_json,
    free_port,
    reset,
    status,
    tls_pair,
)

SECRET = "integration-secret"
FAST = {  # short timings so each test takes seconds
    "batch_events": 10,
    "batch_ms": 50,
    "retry_initial_ms": 50,
    "retry_max_ms": 400,
    "timeout_seconds": 0.5,
}


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    yield s
    for w in s.workers:
        s.stop(w, signal.SIGKILL)


@pytest.fixture()
def receivers() -> Iterator[list[WebhookReceiver]]:
    made: list[WebhookReceiver] = []
    yield made
    for r in made:
        r.close()


def produce(stack: Stack, values: list[bytes], key: bytes | None = None) -> None:
    stack.produce(DETECTIONS, [(key, v) for v in values])


def ids_of(values: list[bytes]) -> set[str]:
    return {orjson.loads(v)["id"] for v in values}


class SinkProcess:
    def __init__(self, stack: Stack, sinks: list[dict[str, Any]], name: str = "sink",
                 args: tuple[str, ...] = ()) -> None:  # fmt: skip
        from falconet.broker import die_with_parent

        self.stack = stack
        self.cfg = stack.tmp / f"{name}.yaml"
        self.cfg.write_text(yaml.safe_dump({"sinks": sinks}))
        self.log = stack.tmp / f"{name}.log"
        out = open(self.log, "ab")  # noqa: SIM115 - the process owns it
        env = {**stack.env, "FALCONET_SINK_SOC_HMAC_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "falconet", "--config", str(self.cfg), "sink",
             "--log-level", "info", "--drain-seconds", "3", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=die_with_parent(),
        )  # fmt: skip
        stack.workers.append(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        assert self.proc.poll() is None, self.text()[-3000:]
        return True

    def stop(self) -> dict[str, dict[str, int]]:
        """SIGTERM; the exit status must be 0; the summary counts per sink."""
        rc = self.stack.stop(self.proc, signal.SIGTERM, timeout=30)
        text = self.text()
        assert rc == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert "falconet sink: stopped" in text
        out = {}
        for name, counts in re.findall(r"falconet sink: ([\w-]+): (consumed=.*)", text):
            out[name] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        return out


def sink_conf(url: str, name: str = "soc", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "webhook", "url": url, **FAST, **extra}


def test_faults_lose_nothing_and_duplicates_stay_bounded(stack: Stack, receivers: list) -> None:
    """Receiver down at start, then 500, 429 + Retry-After, a reset mid-batch, an answer
    slower than the timeout: every detection arrives, duplicates only from retried batches."""
    first = [detection_json(i) for i in range(60)]
    produce(stack, first)
    port = free_port()
    r = WebhookReceiver(secret=SECRET)
    receivers.append(r)
    sink = SinkProcess(stack, [sink_conf(f"http://localhost:{port}/hook")])
    wait_for(lambda: sink.alive() and "sink.retry" in sink.text(), 30, "a retry (receiver down)")
    r.script(status(500), status(429, Retry_After="1"), reset(), delay(1.5), status(503))
    r.start(port)
    wait_for(lambda: sink.alive() and ids_of(first) <= set(r.ids()), 60, "the first detections")
    more = [detection_json(i) for i in range(60, 80)]
    produce(stack, more)
    wait_for(lambda: ids_of(first + more) <= set(r.ids()), 30, "the later detections")
    stats = sink.stop()["soc"]
    got = r.ids()
    assert set(got) == ids_of(first + more)  # nothing lost, nothing invented
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= stats["retried"]
    assert stats["sent"] >= 80 and stats["dlq"] == 0 and stats["retried"] > 0
    assert r.rejected == []  # every request was well-formed and signed
    text = sink.text()
    for fault in ("HTTP 500", "HTTP 429", "no answer within 0.5s", "ServerDisconnected"):
        assert fault in text, fault


def test_refusals_and_garbage_go_to_the_dlq_filters_skip(stack: Stack, receivers: list) -> None:
    r = WebhookReceiver(secret=SECRET).start()
    receivers.append(r)
    refused = [detection_json(i) for i in range(5)]
    later = [detection_json(i) for i in range(5, 10)]
    skipped = [detection_json(50, priority="Debug"), detection_json(51, rule="Other rule")]
    produce(stack, refused + [b"\x00not json"] + skipped + later, key=b"one-partition")
    r.script(status(400))  # the first batch: the five first detections
    sink = SinkProcess(stack, [sink_conf(r.url, batch_events=5, batch_ms=500,
                                         min_priority="notice", rules=["Shell*"])])  # fmt: skip
    wait_for(lambda: sink.alive() and ids_of(later) <= set(r.ids()), 30, "delivery")
    with reader(stack, DLQ) as read:
        dead = read(until=lambda s: len(s) >= 6, timeout=30)
    stats = sink.stop()["soc"]
    assert set(r.ids()) == ids_of(later)
    assert (stats["dlq"], stats["filtered"], stats["sent"]) == (6, 2, 5)
    garbage = [d for d in dead if d["reason"].startswith("not a detection")]
    assert len(garbage) == 1 and base64.b64decode(garbage[0]["original_b64"]) == b"\x00not json"
    refusals = [d for d in dead if d not in garbage]
    assert {orjson.loads(base64.b64decode(d["original_b64"]))["id"] for d in refusals} == ids_of(
        refused
    )
    for d in dead:
        assert d["stage"] == "deliver" and d["details"]["sink"] == "soc"
        assert d["topic"] == stack.topic(DETECTIONS) and d["worker"] == "sink-soc"
    assert all("HTTP 400" in d["reason"] and d["details"]["status"] == 400 for d in refusals)


def test_restart_resumes_from_committed_offsets(stack: Stack, receivers: list) -> None:
    r = WebhookReceiver(secret=SECRET).start()
    receivers.append(r)
    first = [detection_json(i) for i in range(30)]
    produce(stack, first)
    sink = SinkProcess(stack, [sink_conf(r.url)], "run1")
    wait_for(lambda: sink.alive() and ids_of(first) <= set(r.ids()), 30, "first run")
    sink.stop()
    assert max(r.ids().values()) == 1
    second = [detection_json(i) for i in range(30, 50)]
    produce(stack, second)
    sink = SinkProcess(stack, [sink_conf(r.url)], "run2")
    wait_for(lambda: sink.alive() and ids_of(second) <= set(r.ids()), 30, "second run")
    stats = sink.stop()["soc"]
    assert stats["consumed"] == 20  # resumed after what was committed: nothing resent
    assert set(r.ids()) == ids_of(first + second) and max(r.ids().values()) == 1


def test_tls_wrong_ca_refuses_to_send_and_keeps_the_records(stack: Stack, receivers: list,
                                                            tmp_path: Path) -> None:  # fmt: skip
    ctx, good_ca, other_ca = tls_pair(tmp_path)
    r = WebhookReceiver(secret=SECRET, ssl_context=ctx).start()
    receivers.append(r)
    values = [detection_json(i) for i in range(10)]
    produce(stack, values)
    sink = SinkProcess(stack, [sink_conf(r.url, ca_file=str(other_ca))], "wrong-ca")
    wait_for(lambda: sink.alive() and sink.text().count("TLS certificate not trusted") >= 2, 30,
             "TLS refusals")  # fmt: skip
    stats = sink.stop()["soc"]
    assert r.requests == 0 and stats["sent"] == 0 and stats["dlq"] == 0
    sink = SinkProcess(stack, [sink_conf(r.url, ca_file=str(good_ca))], "right-ca")
    wait_for(lambda: sink.alive() and ids_of(values) <= set(r.ids()), 30, "delivery over TLS")
    assert sink.stop()["soc"]["consumed"] == 10  # nothing had been committed


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {m[0]: float(m[1]) for m in re.findall(r'^(falconet_sink_\w+\{sink="slow"\}) (\S+)$',
                                                  text, re.M)}  # fmt: skip


def test_backpressure_pauses_a_slow_sink_without_holding_back_another(
    stack: Stack, receivers: list
) -> None:
    slow, fast = WebhookReceiver().start(), WebhookReceiver().start()
    receivers += [slow, fast]
    slow.script(*[delay(0.25)] * 40)
    values = [detection_json(i) for i in range(100)]
    produce(stack, values)
    port = free_port()
    sink = SinkProcess(stack, [
        sink_conf(slow.url, "slow", batch_events=5, max_buffered=20),
        sink_conf(fast.url, "fast", batch_events=50),
    ], args=("--metrics-port", str(port)))  # fmt: skip
    seen: list[dict[str, float]] = []

    def paused() -> bool:
        sink.alive()
        try:
            seen.append(scrape(port))
        except OSError:
            return False
        return seen[-1].get('falconet_sink_paused{sink="slow"}') == 1.0

    wait_for(paused, 30, "the slow sink to pause")
    wait_for(lambda: ids_of(values) <= set(fast.ids()), 30, "the fast sink")
    assert len(slow.ids()) < len(values)  # the slow one is still behind
    assert all(m.get('falconet_sink_buffered{sink="slow"}', 0) <= 20 for m in seen)
    wait_for(lambda: sink.alive() and ids_of(values) <= set(slow.ids()), 60, "the slow sink")
    assert max(slow.ids().values()) == 1  # records pushed back while paused: not lost, not doubled
    stats = sink.stop()
    assert stats["slow"]["max_buffered_seen"] <= 20 and stats["slow"]["pauses"] >= 1
    assert stats["fast"]["pauses"] == 0 and stats["fast"]["sent"] == 100


def test_rebalance_between_two_processes_loses_nothing(stack: Stack, receivers: list) -> None:
    """A second process joins the sink's group, then the first leaves: partitions move
    twice; what a process held when it lost a partition is at most redelivered."""
    r = WebhookReceiver().start()
    receivers.append(r)
    r.script(*[delay(0.1)] * 400)
    values = [detection_json(i) for i in range(240)]
    produce(stack, values)
    conf = [sink_conf(r.url, "shared", batch_events=5, max_buffered=20)]
    a = SinkProcess(stack, conf, "a")
    wait_for(lambda: a.alive() and len(r.ids()) >= 20, 30, "the first process to deliver")
    b = SinkProcess(stack, conf, "b")
    wait_for(lambda: b.alive() and "sink.assigned" in b.text(), 30, "the second to join")
    wait_for(lambda: b.alive() and len(r.ids()) >= 120, 30, "progress")
    stats_a = a.stop()["shared"]
    wait_for(lambda: b.alive() and ids_of(values) <= set(r.ids()), 60, "the rest, by b")
    stats_b = b.stop()["shared"]
    got = r.ids()
    assert set(got) == ids_of(values)
    assert stats_a["consumed"] + stats_b["consumed"] >= 240
    assert sum(n - 1 for n in got.values()) <= 2 * 20  # at most what was held at each move

"""The sink framework without Kafka: options, filters, dedup, batches, backoff, offsets,
one batch's delivery, and a sink worker driven by a scripted consumer."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.config import Config
from falconet.errors import ConfigError, SinkError
from falconet.kafka import KafkaSettings
from falconet.sinks.base import ACCEPTED, BatchingSink, ItemFailure, SinkRecord, WriteResult
from falconet.sinks.batcher import Batcher
from falconet.sinks.dedup import DedupWindow, Held
from falconet.sinks.filters import accepts
from falconet.sinks.offsets import OffsetTracker
from falconet.sinks.retry import Backoff, deliver
from falconet.sinks.runner import SinkWorker
from falconet.sinks.settings import Common, SinkSpec, load_sinks
from falconet.sinks.webhook import WebhookSink
from tests.sinks.receivers.webhook import detection_json


def rec(i: int, **kw: Any) -> SinkRecord:
    return SinkRecord.from_json(detection_json(i, **kw), "t", 0, i)


def config(tmp_path: Path, text: str) -> Config:
    f = tmp_path / "falconet.yaml"
    f.write_text(text)
    return Config.load(f, env={})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- options --------------------------------------------------------------------------------
YAML = """
kafka:
  topic_prefix: "x."
sinks:
  - name: soc
    type: webhook
    url: https://soc.example/hook
    min_priority: warning
    rules: ["Shell *"]
    headers: {X-Team: blue}
  - name: audit-copy
    type: webhook
    url: http://127.0.0.1:1/h
    batch_bytes: 999999999
"""


def test_sinks_from_yaml_with_defaults_env_and_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "hmac"
    secret.write_text("s3cret\n")
    env = {"FALCONET_SINK_SOC_MIN_PRIORITY": "error",
           "FALCONET_SINK_SOC_HMAC_SECRET_FILE": str(secret)}  # fmt: skip
    soc, copy = load_sinks(config(tmp_path, YAML), environ=env)
    assert (soc.name, soc.kind, soc.cls) == ("soc", "webhook", WebhookSink)
    assert soc.options["hmac_secret"] == "s3cret" and "s3cret" not in repr(soc.options)
    assert soc.common.min_priority.name == "ERROR"  # the environment beats the YAML
    assert soc.options["headers"] == {"X-Team": "blue"}
    assert soc.common.batch_events == WebhookSink.default_batch_events
    assert soc.options["timeout_seconds"] == 30.0  # an HTTP option, since webhook uses HTTP
    assert copy.common.batch_bytes == WebhookSink.max_batch_bytes  # capped
    assert [s.name for s in load_sinks(config(tmp_path, YAML), ["audit-copy"], env)] == [
        "audit-copy"
    ]


@pytest.mark.parametrize(
    "sinks,env,message",
    [
        ("[{name: a, type: nope}]", {}, "sink 'a': unknown sink type 'nope'; known: "),
        ("[{name: a, type: webhook, url: http://x}, {name: a, type: webhook, url: http://y}]",
         {}, "sinks[1]: duplicate sink name 'a'"),
        ("[{type: webhook}]", {}, "sinks[0]: `name:` is missing"),
        ("[{name: a, type: webhook}]", {}, "sink 'a': url is required (FALCONET_SINK_A_URL"),
        ("[{name: a, type: webhook, url: http://x, batch_events: many}]", {},
         "sink 'a': batch_events='many' is not a valid int"),
        ("[{name: a, type: webhook, url: http://x, min_priority: loud}]", {},
         "sink 'a': min_priority: invalid priority 'loud'"),
        ("[{name: a, type: webhook, url: http://x, max_buffered: 0}]", {},
         "max_buffered must be at least 1"),
        ("[{name: a, type: webhook, url: http://x, hmac_secret: x}]", {},
         "hmac_secret is a secret: set FALCONET_SINK_A_HMAC_SECRET or hmac_secret_file"),
        ("[{name: a, type: webhook, url: http://x, colour: red}]", {}, "unknown setting(s) colour"),
        ("[{name: a, type: webhook, url: http://x}]", {"FALCONET_SINK_A_RETRY_MAX_MS": "1"},
         "retry_max_ms must be at least retry_initial_ms"),
        ("{a: 1}", {}, "`sinks:` must be a list"),
        ("[]", {}, "no sinks configured"),
    ],
)  # fmt: skip
def test_config_errors_name_the_sink_and_setting(tmp_path: Path, sinks: str, env: dict,
                                                  message: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_sinks(config(tmp_path, f"sinks: {sinks}\n"), environ=env)


def test_only_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--only nope: no such sink"):
        load_sinks(config(tmp_path, YAML), ["nope"], {})


def test_cli_exit_codes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from falconet.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks: [{name: a, type: nope}]\n")
    r = CliRunner().invoke(main, ["--config", str(bad), "sink", "--check"])
    assert r.exit_code == 2 and "unknown sink type 'nope'" in r.output
    assert "Traceback" not in r.output
    from tests.sinks.receivers.webhook import WebhookReceiver

    receiver = WebhookReceiver().start()
    try:
        good = tmp_path / "good.yaml"
        good.write_text(f"sinks:\n  - {{name: ok, type: webhook, url: '{receiver.url}'}}\n"
                        "  - {name: broken, type: webhook, url: 'https://x/h', ca_file: /nonexistent}\n"
                        "  - {name: down, type: webhook, url: 'http://127.0.0.1:9/h'}\n")  # fmt: skip
        r = CliRunner().invoke(main, ["--config", str(good), "sink", "--check"])
        assert r.exit_code == 1, r.output
        assert "OK     ok (webhook)" in r.output and "FAILED broken (webhook): ca_file" in r.output
        assert "FAILED down (webhook)" in r.output  # nothing listens there: the check says so
        r = CliRunner().invoke(main, ["--config", str(good), "sink", "--check", "--only", "ok"])
        assert r.exit_code == 0 and "broken" not in r.output
        assert receiver.received == []  # the check posted nothing
    finally:
        receiver.close()


# -- filters --------------------------------------------------------------------------------
def common(**kw: Any) -> Common:
    opts = {"min_priority": "debug", "sources": [], "tags": [], "rules": [], "dedup_seconds": 0,
            "batch_events": 10, "batch_bytes": 1000, "batch_ms": 100, "retry_initial_ms": 10,
            "retry_max_ms": 100, "max_buffered": 100, "dlq_topic": "dlq.v1", **kw}  # fmt: skip
    return Common.from_options(opts, 10_000)


def test_filters() -> None:
    warning, debug = rec(1, priority="Warning"), rec(2, priority="Debug")
    assert accepts(common(), debug)
    assert accepts(common(min_priority="warning"), warning)
    assert not accepts(common(min_priority="warning"), debug)
    assert accepts(common(min_priority="notice"), warning)
    assert not accepts(common(min_priority="critical"), warning)
    assert not accepts(common(sources=["k8s_audit"]), warning)
    assert accepts(common(sources=["k8s_audit", "syscall"]), warning)
    assert accepts(common(tags=["mitre_execution", "shell"]), warning)  # any of
    assert not accepts(common(tags=["mitre_execution"]), warning)
    assert accepts(common(rules=["Shell *"]), warning)
    assert accepts(common(rules=["Shell in container"]), warning)
    assert not accepts(common(rules=["Read *", "shell*"]), warning)  # globs are case-sensitive
    assert not accepts(common(rules=["Shell *"], sources=["k8s_audit"]), warning)  # all filters


def test_policy_routes_narrow_delivery_to_the_named_sinks() -> None:
    """A detection a policy routed goes only to the sinks it names (docs/policy.md); the
    sink's own filters still apply; an unrouted detection goes everywhere."""
    import dataclasses

    plain = rec(1, priority="Warning")
    routed = dataclasses.replace(plain, detection=dataclasses.replace(plain.detection, routes=("team-payments",)))
    assert accepts(common(), plain, "soc") and accepts(common(), plain, "team-payments")
    assert accepts(common(), routed, "team-payments")
    assert not accepts(common(), routed, "soc")
    assert not accepts(common(min_priority="critical"), routed, "team-payments")


# -- dedup ------------------------------------------------------------------------------------
def test_dedup_folds_repeats_within_the_window() -> None:
    clock = Clock()
    w = DedupWindow(10, clock)
    same = dict(output="same text")
    w.add(rec(1, **same), "t1")
    clock.now += 1
    w.add(rec(2, host="node-b", **same), "t2")  # another host: another key
    w.add(rec(3, **same), "t3")
    w.add(rec(4, rule="Other", **same), "t4")  # another rule: another key
    clock.now += 5
    w.add(rec(5, **same), "t5")
    assert w.folded == 2 and len(w) == 3
    assert w.due() == []
    clock.now += 4  # the first window ends (opened at 1000, now 1010)
    (first,) = w.due()
    assert first.tickets == ["t1", "t3", "t5"]
    folded = first.folded()
    assert folded.obj["dedup"] == {"count": 3, "first_time": rec(1).obj["time"],
                                   "last_time": rec(5).obj["time"]}  # fmt: skip
    assert folded.id == rec(1).id and "dedup" not in first.record.obj
    clock.now += 1
    rest = w.due()
    assert [h.tickets for h in rest] == [["t2"], ["t4"]]
    assert "dedup" not in rest[0].folded().obj  # seen once: unchanged
    w.add(rec(6, **same), "t6")  # a new window for the same key
    assert w.folded == 2 and [h.tickets for h in w.drain()] == [["t6"]]


# -- batches ----------------------------------------------------------------------------------
def test_batches_cut_by_count_bytes_and_time() -> None:
    clock = Clock()
    b = Batcher(3, 100, 500, lambda h: h.record.offset, clock)  # size = offset, for the test
    for size in (10, 10):
        b.add(Held(SinkRecord.from_json(detection_json(1), "t", 0, size)))
    assert not b.ready()
    clock.now += 0.499
    assert not b.ready()
    clock.now += 0.001
    assert b.ready() and [h.record.offset for h in b.take()] == [10, 10]
    for size in (10, 20, 30, 40):
        b.add(Held(SinkRecord.from_json(detection_json(1), "t", 0, size)))
    assert b.ready()  # count reached
    assert [h.record.offset for h in b.take()] == [10, 20, 30]
    b.add(Held(SinkRecord.from_json(detection_json(1), "t", 0, 70)))  # 40 + 70 > 100
    assert b.ready()
    assert [h.record.offset for h in b.take()] == [40]
    b.add(Held(SinkRecord.from_json(detection_json(1), "t", 0, 150)))  # alone over the limit
    assert [h.record.offset for h in b.take()] == [70]
    assert [h.record.offset for h in b.take()] == [150]
    assert b.take() == [] and not b.ready()


# -- backoff ----------------------------------------------------------------------------------
def test_backoff_full_jitter_bounds_and_retry_after() -> None:
    b = Backoff(100, 2000)
    assert [b.bound(n) for n in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert b.bound(10_000) == 2.0
    rng = random.Random(7)
    for attempt in range(8):
        delays = [b.delay(attempt, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= b.bound(attempt) for d in delays)
        assert max(delays) > 0.6 * b.bound(attempt) and min(delays) < 0.4 * b.bound(attempt)
    assert all(b.delay(0, 3.0, rng) == 3.0 for _ in range(50))  # at least Retry-After
    assert all(1.0 <= b.delay(6, 1.0, rng) <= 2.0 for _ in range(50))


# -- offsets ----------------------------------------------------------------------------------
def test_offsets_commit_only_below_the_first_record_not_done() -> None:
    t = OffsetTracker()
    t.assign("d", 0)
    tickets = [t.add("d", 0, o) for o in range(10, 15)]
    other = t.add("d", 1, 7)
    assert t.to_commit() == [] and t.outstanding == 6
    t.finish(tickets[1])
    t.finish(tickets[3])
    assert t.to_commit() == []  # 10 is not done
    t.finish(tickets[0])
    assert t.to_commit() == [("d", 0, 12)]  # 10, 11 done; 12 not
    t.committed("d", 0, 12)
    assert t.to_commit() == []
    t.finish(tickets[2])
    assert t.to_commit() == [("d", 0, 14)]
    t.finish(tickets[4])
    t.finish(other)
    assert sorted(t.to_commit()) == [("d", 0, 15), ("d", 1, 8)] and t.outstanding == 0
    # a revoked partition: commit what is safe, then ignore its late completions
    late = t.add("d", 0, 15)
    t.add("d", 0, 16)
    assert t.revoke("d", 0) == 15
    t.assign("d", 0)  # assigned again (resumes from the committed 15)
    t.finish(late)
    again = t.add("d", 0, 15)
    assert t.to_commit() == [("d", 1, 8)] and t.outstanding == 1
    t.finish(again)
    assert ("d", 0, 16) in t.to_commit()


# -- one batch's delivery ---------------------------------------------------------------------
class Scripted(BatchingSink):
    kind = "scripted"

    def __init__(self, answers: list[Any]) -> None:
        super().__init__("s", {})
        self.answers = answers
        self.calls: list[list[int]] = []

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        self.calls.append([r.offset for r in batch])
        answer = self.answers.pop(0) if self.answers else ACCEPTED
        if isinstance(answer, BaseException):
            raise answer
        return answer


def run_deliver(sink: Scripted, n: int, stopping: bool = False):
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    failures: list[tuple[int, bool]] = []
    out = asyncio.run(deliver(sink, [rec(i) for i in range(n)], Backoff(100, 1000),
                              stopping=lambda: stopping, sleep=sleep,
                              on_failure=lambda k, why, retry: failures.append((k, retry))))  # fmt: skip
    return out, slept, failures


def test_partial_failures_retry_only_the_refused_records() -> None:
    sink = Scripted([
        WriteResult((ItemFailure(1, "busy", True), ItemFailure(3, "mapping error", False),
                     ItemFailure(4, "busy", True, retry_after=2.5))),
        WriteResult((ItemFailure(1, "busy", True),)),  # index into the retried batch
        ACCEPTED,
    ])  # fmt: skip
    out, slept, failures = run_deliver(sink, 5)
    assert sink.calls == [[0, 1, 2, 3, 4], [1, 4], [4]]
    assert sorted(out.delivered) == [0, 1, 2, 4]
    assert [(d.index, d.reason) for d in out.dead] == [(3, "mapping error")]
    assert slept[0] >= 2.5 and 0 <= slept[1] <= 0.2
    assert failures == [(1, False), (2, True), (1, True)]


def test_whole_batch_failures() -> None:
    sink = Scripted([SinkError("HTTP 503", retryable=True, retry_after=1.0),
                     RuntimeError("destination bug"), ACCEPTED])  # fmt: skip
    out, slept, _ = run_deliver(sink, 2)
    assert sorted(out.delivered) == [0, 1] and out.attempts == 3 and slept[0] >= 1.0
    sink = Scripted([SinkError("HTTP 400: bad field", retryable=False, status=400)])
    out, _, failures = run_deliver(sink, 2)
    assert [(d.index, d.status) for d in out.dead] == [(0, 400), (1, 400)] and not out.delivered
    assert failures == [(2, False)]
    sink = Scripted([SinkError("HTTP 503", retryable=True)])
    out, slept, _ = run_deliver(sink, 2, stopping=True)
    assert out.abandoned == [0, 1] and not out.delivered and slept == [] and len(sink.calls) == 1


# -- a sink worker, driven by a scripted consumer ------------------------------------------------
class Msg:
    def __init__(self, value: bytes, partition: int, offset: int) -> None:
        self._v, self._p, self._o = value, partition, offset

    def value(self) -> bytes:
        return self._v

    def topic(self) -> str:
        return "x.detections.v1"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> None:
        return None


class FakeSource:
    group = "x.sink-t"

    def __init__(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        self.msgs = msgs
        self.stop = stop
        self.commits: list[tuple[str, int, int]] = []
        self.pauses: list[bool] = []

    async def start(self) -> None:
        pass

    async def fetch(self, room: int, pause: bool) -> list[Msg]:
        self.pauses.append(pause)
        await asyncio.sleep(0.001)
        if pause:
            return []
        out, self.msgs = self.msgs[:room], self.msgs[room:]
        return out

    async def commit(self, offsets: list[tuple[str, int, int]]) -> None:
        self.commits += offsets

    async def close(self) -> None:
        pass


class Recorder(BatchingSink):
    kind = "recorder"
    batches: list[list[dict]]
    refuse_rule = "Refused"

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        self.batches.append([r.obj for r in batch])
        await asyncio.sleep(0.002)
        return WriteResult(tuple(ItemFailure(i, "mapper_parsing_exception", False)
                                 for i, r in enumerate(batch) if r.obj["rule"] == self.refuse_rule))  # fmt: skip


class FakeDlq:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, orjson.loads(value)))


def test_worker_filters_dedups_dead_letters_and_commits(tmp_path: Path) -> None:
    Recorder.batches = []
    cfg = config(
        tmp_path, "kafka: {topic_prefix: x.}\nsinks: [{name: t, type: webhook, url: http://h}]\n"
    )
    opts = {"min_priority": "notice", "sources": [], "tags": [], "rules": [], "dedup_seconds": 1.0,
            "batch_events": 4, "batch_bytes": 100_000, "batch_ms": 10, "retry_initial_ms": 1,
            "retry_max_ms": 2, "max_buffered": 8, "dlq_topic": "dlq.v1"}  # fmt: skip
    spec = SinkSpec("t", Recorder, load_sinks(cfg, environ={})[0].options,
                    Common.from_options(opts, 1_000_000))  # fmt: skip
    # every record waits for its dedup window: the first fetch (8) fills the buffer and
    # consumption pauses until the windows end
    values = [detection_json(100 + i, output="same") for i in range(4)]  # folded into one
    values += [detection_json(i) for i in range(6)]  # 6 distinct
    values += [b"{not json", detection_json(7, priority="Debug")]  # dead letter, filtered
    values += [detection_json(8, rule="Refused")]  # refused for good by the destination
    msgs = [Msg(v, i % 2, i // 2) for i, v in enumerate(values)]

    async def main() -> tuple[SinkWorker, FakeSource, FakeDlq]:
        stop = asyncio.Event()
        source, dlq = FakeSource(msgs, stop), FakeDlq()
        w = SinkWorker(spec, KafkaSettings("b", "x."), dlq, stop, source=source)  # type: ignore[arg-type]
        task = asyncio.create_task(w.run(5.0))
        for _ in range(2000):
            await asyncio.sleep(0.005)
            if w.stats.sent + w.stats.dlq + w.stats.filtered >= 10 and not w.tracker.outstanding:
                break
        stop.set()
        await task
        return w, source, dlq

    w, source, dlq = asyncio.run(main())
    delivered = [d for b in Recorder.batches for d in b if d["rule"] != "Refused"]
    assert sorted(d["output_fields"]["n"] for d in delivered) == [0, 1, 2, 3, 4, 5, 100]
    assert all(len(b) <= 4 for b in Recorder.batches)
    (folded,) = [d for d in delivered if "dedup" in d]
    assert folded["dedup"]["count"] == 4
    assert (w.stats.filtered, w.stats.deduplicated, w.stats.dlq, w.stats.sent) == (1, 3, 2, 7)
    assert w.stats.max_buffered_seen <= 8 and True in source.pauses  # backpressure
    reasons = {e["reason"].split(":")[0] for _, e in dlq.sent}
    assert reasons == {"not a detection", "mapper_parsing_exception"}
    for topic, e in dlq.sent:
        assert topic == "x.dlq.v1" and e["stage"] == "deliver" and e["details"]["sink"] == "t"
    bad = next(e for _, e in dlq.sent if e["reason"].startswith("not a detection"))
    assert base64.b64decode(bad["original_b64"]) == b"{not json" and bad["offset"] == 5
    # every record is done: both partitions committed to their end
    last = {p: max(o for (t, pp, o) in source.commits if pp == p) for p in (0, 1)}
    assert last == {0: 7, 1: 6}


class CannotOpen(BatchingSink):
    kind = "cannotopen"

    async def open(self) -> None:
        raise SinkError("401 from the token endpoint: invalid client secret", retryable=False)

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        raise AssertionError("never called")


def test_a_sink_that_cannot_open_stops_the_process_with_its_reason(tmp_path: Path) -> None:
    from falconet.sinks.runner import run_sinks_async

    cfg = config(tmp_path, "sinks: [{name: t, type: webhook, url: http://h}]\n")
    spec = load_sinks(cfg, environ={})[0]
    bad = SinkSpec("t", CannotOpen, spec.options, spec.common)
    result = asyncio.run(
        run_sinks_async([bad], KafkaSettings("127.0.0.1:1"), install_signals=False)
    )
    assert result.exit_code == 1
    assert result.errors == {"t": "cannot open: 401 from the token endpoint: invalid client secret"}

"""The collector following a local directory, with a stand-in for Kafka that acknowledges
(or not) when told: what is published, checkpointed, sent to the DLQ, and in which order."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.errors import SensorError
from falconet.sensors.cloudtrail.checkpoint import Checkpoint
from falconet.sensors.cloudtrail.collector import CloudTrailCollector
from falconet.sensors.cloudtrail.directory import DirectoryFollower
from falconet.sensors.cloudtrail.options import CollectorOptions
from falconet.sensors.cloudtrail.sources import Fetched, ObjectRef
from tests.conftest import FIXTURES, ROOT

FIXTURE = FIXTURES / "cloudtrail" / "123456789012_CloudTrail_us-east-1_20240301T1020Z_sample.json"
SCENARIO = ROOT / "falconet" / "scenarios" / "intrusion" / "cloudtrail.json"


class FakeDelivery:
    def __init__(self) -> None:
        self.done = False
        self.errors: list[str] = []

    @property
    def ok(self) -> bool:
        return self.done and not self.errors


class FakeEmitter:
    """What the collector uses of an Emitter. At each ``tick()`` Kafka acknowledges what was
    produced (``kafka="up"``), fails it (``"failing"``) or stays silent (``"down"``);
    ``events`` and ``dead`` hold only what was acknowledged."""

    def __init__(self, kafka: str = "up") -> None:
        self.kafka = kafka
        self.events: list[tuple[str | None, dict[str, Any]]] = []
        self.dead: list[dict[str, Any]] = []
        self.pending: list[tuple[FakeDelivery, Callable[[], None]]] = []

    def tracked(self, envelopes: list[bytes], key: str | None = None) -> FakeDelivery:
        items = [(key, orjson.loads(e)) for e in envelopes]
        return self._produce(lambda: self.events.extend(items))

    def dead_letter(self, reason: str, original: bytes | None, *, source: str | None = None,
                    details: Any = None, wait: bool = False) -> FakeDelivery:  # fmt: skip
        record = {"reason": reason, "original": original, "source": source, "details": details}
        return self._produce(lambda: self.dead.append(record))

    def _produce(self, store: Callable[[], None]) -> FakeDelivery:
        d = FakeDelivery()
        self.pending.append((d, store))
        return d

    def tick(self) -> None:
        if self.kafka == "down":
            return
        for d, store in self.pending:
            if self.kafka == "up":
                store()
            else:
                d.errors.append("Local: Message timed out")
            d.done = True
        self.pending = []


def write_log(path: Path, records: list[dict[str, Any]] | bytes, gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = records if isinstance(records, bytes) else orjson.dumps({"Records": records})
    path.write_bytes(gzip.compress(data) if gz and not isinstance(records, bytes) else data)
    return path


def fixture_records() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text())["Records"]


def scenario_records() -> list[dict[str, Any]]:
    return json.loads(SCENARIO.read_text())["Records"]


def collector(root: Path, checkpoint: Path, *, once: bool = True, **kw: Any) -> CloudTrailCollector:
    opts = CollectorOptions(directory=str(root), checkpoint_file=str(checkpoint), once=once,
                            poll_seconds=kw.pop("poll_seconds", 0.02), settle_seconds=kw.pop("settle_seconds", 0.0),
                            drain_seconds=kw.pop("drain_seconds", 1.0), **kw)  # fmt: skip
    return CloudTrailCollector(opts)


def run_once(
    root: Path, checkpoint: Path, emit: FakeEmitter | None = None, **kw: Any
) -> CloudTrailCollector:
    c = collector(root, checkpoint, **kw)
    c.run(emit or FakeEmitter())  # type: ignore[arg-type]
    return c


class Running:
    """A following collector in a thread."""

    def __init__(self, c: CloudTrailCollector, emit: FakeEmitter) -> None:
        self.c, self.emit = c, emit
        self.error: BaseException | None = None
        c.setup()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.c.run(self.emit)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert self.thread.is_alive(), f"the collector stopped: {self.error!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def stop(self) -> None:
        self.c.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def checkpointed(path: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for line in path.read_bytes().splitlines()[1:]:
        obj = orjson.loads(line)
        if "id" in obj:
            out[obj["id"]] = obj
    return out


def test_once_publishes_each_log_file_and_checkpoints_it(tmp_path: Path) -> None:
    root, cp = tmp_path / "logs", tmp_path / "cp.jsonl"
    a = write_log(root / "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01" / FIXTURE.name.replace(".json", ".json.gz"),
                  fixture_records())  # fmt: skip
    b = write_log(root / "copies" / "scenario.json", scenario_records(), gz=False)
    write_log(root / "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/d.json.gz", b"{}")
    write_log(root / "notes.txt", b"not a log")
    emit = FakeEmitter()
    c = run_once(root, cp, emit)
    assert [
        e["event"] for _, e in emit.events
    ] == fixture_records() + scenario_records()  # file order kept
    assert {k for k, _ in emit.events} == {"123456789012", "418295730164"}
    assert all(k == e["event"]["recipientAccountId"] for k, e in emit.events)
    assert emit.events[0][1]["origin"] == {"kind": "file", "path": str(a)}
    assert emit.events[-1][1]["origin"] == {"kind": "file", "path": str(b)}
    assert emit.dead == [] and c.cstats.objects["published"] == 2 and c.cstats.records == 40
    done = checkpointed(cp)
    assert set(done) == {f"file://{a}", f"file://{b}"}
    st = os.stat(a)
    assert (
        done[f"file://{a}"]["etag"] == f"{st.st_size}-{st.st_mtime_ns}"
        and done[f"file://{a}"]["records"] == 11
    )

    again = FakeEmitter()
    run_once(root, cp, again)  # a restart: nothing new
    assert again.events == []

    recs = scenario_records()[:3]
    write_log(b, recs, gz=False)  # rewritten: another size and mtime
    os.utime(b, ns=(time.time_ns(), os.stat(b).st_mtime_ns + 1_000_000))
    third = FakeEmitter()
    run_once(root, cp, third)
    assert [e["event"] for _, e in third.events] == recs


def test_following_reads_new_files_and_waits_for_files_still_written(tmp_path: Path) -> None:
    root, cp = tmp_path / "logs", tmp_path / "cp.jsonl"
    write_log(root / "one.json.gz", fixture_records())
    emit = FakeEmitter()
    run = Running(collector(root, cp, once=False), emit)
    run.wait(lambda: len(emit.events) == 11, "the first file")
    write_log(root / "later" / "two.json.gz", scenario_records())
    run.wait(lambda: len(emit.events) == 40, "the file that appeared")
    run.stop()
    assert set(checkpointed(cp)) == {
        f"file://{root}/one.json.gz",
        f"file://{root}/later/two.json.gz",
    }

    # a file modified less than settle_seconds ago is left for a later round
    write_log(root / "fresh.json.gz", fixture_records()[:2])
    quiet = FakeEmitter()
    run = Running(collector(root, cp, once=False, settle_seconds=3600), quiet)
    source = run.c._source
    assert isinstance(source, DirectoryFollower)
    run.wait(lambda: source.rounds >= 3, "three rounds")
    run.stop()
    assert quiet.events == []


def test_unreadable_files_and_bad_records_go_to_the_dlq(tmp_path: Path) -> None:
    root, cp = tmp_path / "logs", tmp_path / "cp.jsonl"
    bad = write_log(root / "a-bad.json.gz", b"\x1f\x8b\x08\x00garbage")
    no_records = write_log(root / "b-norecords.json", b'{"Items": []}')
    recs = fixture_records()[:3]
    del recs[2]["eventTime"]
    mixed = write_log(root / "c-mixed.json.gz", recs)
    emit = FakeEmitter()
    c = run_once(root, cp, emit)
    assert [e["event"]["eventID"] for _, e in emit.events] == [r["eventID"] for r in recs[:2]]
    by_path = {d["details"]["path"]: d for d in emit.dead}
    assert by_path[str(bad)]["reason"] == "truncated gzip data"
    assert by_path[str(bad)]["original"] == bad.read_bytes()
    assert by_path[str(no_records)]["reason"] == "not a CloudTrail log file: no 'Records' list"
    assert by_path[str(mixed)]["reason"] == "Records[2]: CloudTrail record without 'eventTime'"
    assert (
        by_path[str(mixed)]["details"]["index"] == 2
        and orjson.loads(by_path[str(mixed)]["original"]) == recs[2]
    )
    st = os.stat(mixed)
    assert by_path[str(mixed)]["details"]["version"] == f"{st.st_size}-{st.st_mtime_ns}"
    assert all(d["source"] == "aws_cloudtrail" for d in emit.dead)
    statuses = {k.rsplit("/", 1)[1]: v["status"] for k, v in checkpointed(cp).items()}
    assert statuses == {
        "a-bad.json.gz": "dead_letter",
        "b-norecords.json": "dead_letter",
        "c-mixed.json.gz": "published",
    }
    assert (
        c.cstats.bad_records == 1 and c.stats.events == 0
    )  # the runner's counters are the Emitter's


def test_nothing_is_checkpointed_before_kafka_acknowledges(tmp_path: Path) -> None:
    root, cp = tmp_path / "logs", tmp_path / "cp.jsonl"
    write_log(root / "one.json.gz", fixture_records())
    write_log(root / "two.json", b"broken")
    down = FakeEmitter(kafka="down")
    run = Running(collector(root, cp, once=False, drain_seconds=0.05), down)
    run.wait(lambda: len(down.pending) == 2, "both files to be produced")
    source = run.c._source
    assert isinstance(source, DirectoryFollower)
    run.wait(lambda: source.rounds == 1 and run.c.cstats.in_flight == 2, "a while holding them")
    run.stop()  # stopping abandons them
    assert checkpointed(cp) == {}

    failing = FakeEmitter(kafka="failing")
    with pytest.raises(SensorError, match="2 log files could not be read or published"):
        run_once(root, cp, failing)
    assert checkpointed(cp) == {}

    up = FakeEmitter()
    c = run_once(root, cp, up)
    assert len(up.events) == 11 and len(up.dead) == 1 and len(checkpointed(cp)) == 2
    assert c.cstats.objects["failed"] == 0


def test_files_are_published_in_the_order_they_were_taken(tmp_path: Path) -> None:
    """The first file's read finishes last; its records still go out first."""
    root, cp = tmp_path / "logs", tmp_path / "cp.jsonl"
    first = write_log(root / "a.json.gz", fixture_records()[:2])
    write_log(root / "b.json.gz", fixture_records()[2:4])
    second_read = threading.Event()

    class Slow(DirectoryFollower):
        def read(self, ref: ObjectRef) -> Fetched:
            if ref.key == str(first):
                assert second_read.wait(10)
            fetched = super().read(ref)
            if ref.key != str(first):
                second_read.set()
            return fetched

    opts = CollectorOptions(directory=str(root), once=True, max_in_flight=2)
    checkpoint = Checkpoint.open(cp)
    c = CloudTrailCollector(
        opts, checkpoint=checkpoint, source=Slow(str(root), checkpoint, once=True, settle_seconds=0)
    )
    emit = FakeEmitter()
    c.run(emit)  # type: ignore[arg-type]
    assert [e["event"]["eventID"] for _, e in emit.events] == [
        r["eventID"] for r in fixture_records()[:4]
    ]

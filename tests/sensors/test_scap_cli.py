"""Captures where users meet them: `falconet run --input x.scap`, read_events' detection by
content, damaged captures reported with their offset, and `falconet replay` of a capture."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from falconet.cli import main
from falconet.event import Event
from falconet.inputs import Problem, RecordDecoder, read_events
from falconet.sensors.replay import replay
from tests.sensors.test_scap_blocks import TRACES

SINGLE_RULE = "falco-tests/rules/falco/SingleRule__single_rule.yaml"
EXIT_TIMES = ("16:17:57.881785348", "16:17:57.881799840", "16:17:57.882008208", "16:17:57.882054739")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_falconet_run_on_a_capture_prints_falcos_detections(corpus: Path) -> None:
    r = invoke("run", "-r", str(corpus / SINGLE_RULE), "-i", str(corpus / TRACES / "cat_write.scap"))
    assert r.exit_code == 0, r.stderr
    alerts = [json.loads(line) for line in r.stdout.splitlines()]
    assert [a["rule"] for a in alerts] == ["open_from_cat"] * 4
    assert [a["output"].split(": ")[0] for a in alerts] == list(EXIT_TIMES)
    assert all("Warning An open was seen (command=cat /dev/null)" in a["output"] for a in alerts)
    assert all(a["hostname"] == "ubuntu" and a["output_fields"]["proc.cmdline"] == "cat /dev/null" for a in alerts)
    assert "303 events, 4 detections (open_from_cat: 4), 0 input errors" in r.stderr


def test_captures_are_recognized_by_content_not_name(corpus: Path, tmp_path: Path) -> None:
    plain = tmp_path / "events.jsonl"  # a misleading name, and not compressed
    plain.write_bytes(gzip.decompress((corpus / TRACES / "cat_write.scap").read_bytes()))
    problems: list[Problem] = []
    evs = list(read_events(str(plain), RecordDecoder(host="here"), problems.append))
    assert problems == [] and len(evs) == 303 and evs[0].host == "ubuntu"
    again = list(read_events(str(corpus / TRACES / "cat_write.scap"), RecordDecoder(), problems.append))
    assert [e.to_json_obj() for e in again] == [e.to_json_obj() for e in evs]


def test_a_truncated_capture_is_reported_with_its_offset(corpus: Path, tmp_path: Path) -> None:
    data = gzip.decompress((corpus / TRACES / "cat_write.scap").read_bytes())
    cut = tmp_path / "cut.scap"
    cut.write_bytes(data[: len(data) - 3000])
    problems: list[Problem] = []
    evs = list(read_events(str(cut), RecordDecoder(), problems.append))
    assert 0 < len(evs) < 303  # what came before the damage
    [p] = problems
    assert p.file == str(cut) and "truncated block" in p.message and p.message.startswith("at byte ")
    r = invoke("run", "-r", str(corpus / SINGLE_RULE), "-i", str(cut))
    assert r.exit_code == 0 and "Traceback" not in r.stderr
    assert f"skipped record: {cut}: at byte " in r.stderr and "1 input errors" in r.stderr


def test_a_corrupt_capture_is_reported_not_raised(tmp_path: Path, corpus: Path) -> None:
    data = bytearray(gzip.decompress((corpus / TRACES / "syscall.scap").read_bytes()))
    data[32:36] = b"\xff\xff\xff\x7f"  # the machine block (at byte 28) claims an absurd length
    bad = tmp_path / "bad.scap"
    bad.write_bytes(bytes(data))
    r = invoke("run", "-r", str(corpus / SINGLE_RULE), "-i", str(bad))
    assert r.exit_code == 0 and "Traceback" not in r.stderr
    assert "at byte 28: corrupt block of type 0x201" in r.stderr and "0 events" in r.stderr


@dataclass
class FakePublisher:
    """What replay() needs of a Publisher, recording instead of producing."""

    sent: list[tuple[str, str, Event]] = field(default_factory=list)

    @dataclass
    class Stats:
        records: int = 0

    stats: Stats = field(default_factory=Stats)

    def publish_event(self, ev: Event, topic: str, key: str) -> None:
        self.sent.append((topic, key, ev))

    def tick(self) -> None: ...

    def flush(self) -> None: ...


def test_replay_sends_capture_events_to_the_syscall_topic_keyed_by_host(corpus: Path) -> None:
    pub = FakePublisher()
    stats = replay([str(corpus / TRACES / "connect_localhost.scap")], pub,  # type: ignore[arg-type]
                   lambda source: f"falconet.events.{source}.v1")  # fmt: skip
    assert stats.events == len(pub.sent) == 370 and stats.problems == 0
    assert {(topic, key) for topic, key, _ in pub.sent} == {("falconet.events.syscall.v1", "ubuntu")}
    connect = next(ev for _, _, ev in pub.sent if ev.type == "connect")
    assert connect.payload["fd"]["name"] == "127.0.0.1:47192->127.0.0.1:80"

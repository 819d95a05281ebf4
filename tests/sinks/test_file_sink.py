"""The file sink: JSON lines appended to a file (with rotation) or written to stdout."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from falconet.detection import Detection, detection_id
from falconet.errors import ConfigError, SinkError
from falconet.priority import Priority
from falconet.sinks import file as file_module
from falconet.sinks.base import ACCEPTED, SinkOptions, SinkRecord
from falconet.sinks.file import FileSink

TS = 1_718_000_000_123_456_789


def record(n: int) -> SinkRecord:
    rule = "Terminal shell in container"
    d = Detection(
        time="2024-06-10T06:13:20.123456789Z", rule=rule, priority=Priority.parse("Notice"),
        output=f"shell (n={n})", output_fields={"evt.time": TS + n, "proc.name": "bash"},
        source="syscall", tags=("shell",), hostname="node-a", id=detection_id(rule, f"e{n}"),
        event_id=f"e{n}", ts=TS + n,
    )  # fmt: skip
    return SinkRecord.from_json(d.to_json())


def sink(**yaml: Any) -> FileSink:
    return FileSink("audit-file", SinkOptions("audit-file", FileSink.options, yaml, environ={}))


def deliver(s: FileSink, *batches: list[SinkRecord]) -> None:
    async def main() -> None:
        await s.open()
        try:
            for batch in batches:
                assert await s.write(batch) is ACCEPTED
        finally:
            await s.close()

    asyncio.run(main())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_one_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    batch = [record(n) for n in range(3)]
    deliver(sink(path=str(path)), batch)
    assert lines(path) == [r.obj for r in batch]
    assert path.read_bytes().endswith(b"}\n")
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_appends_across_instances_and_keeps_what_was_there(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier": true}\n')
    deliver(sink(path=str(path)), [record(0), record(1)])
    deliver(sink(path=str(path)), [record(2)])
    got = lines(path)
    assert got[0] == {"earlier": True}
    assert [o["event_id"] for o in got[1:]] == ["e0", "e1", "e2"]


def test_rotates_by_size_between_lines_and_keeps_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    size = len(json.dumps(record(0).obj, separators=(",", ":"))) + 1
    s = sink(path=str(path), max_bytes=int(size * 3.5), backups=2)
    deliver(s, [record(n) for n in range(5)], [record(n) for n in range(5, 11)])
    files = [path.with_name("alerts.jsonl.2"), path.with_name("alerts.jsonl.1"), path]
    assert not path.with_name("alerts.jsonl.3").exists()
    assert all(f.stat().st_size <= size * 3.5 for f in files)
    seen = [o["event_id"] for f in files for o in lines(f)]  # oldest file first
    assert seen == [f"e{n}" for n in range(3, 11)]  # e0-e2 went with the dropped backup


def test_reopens_a_file_moved_away_by_logrotate(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    s = sink(path=str(path))

    async def main() -> None:
        await s.open()
        try:
            await s.write([record(0)])
            path.rename(tmp_path / "alerts.jsonl.old")
            await s.write([record(1)])
        finally:
            await s.close()

    asyncio.run(main())
    assert [o["event_id"] for o in lines(tmp_path / "alerts.jsonl.old")] == ["e0"]
    assert [o["event_id"] for o in lines(path)] == ["e1"]


def test_fsync_option_syncs_each_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(file_module.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    deliver(sink(path=str(tmp_path / "a.jsonl")), [record(0)])
    assert synced == []
    deliver(sink(path=str(tmp_path / "b.jsonl"), fsync=True), [record(0)], [record(1)])
    assert len(synced) == 2


def test_dash_writes_to_standard_output(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    deliver(sink(path="-", fsync=True), [record(0), record(1)])
    out = capsysbinary.readouterr().out
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == ["e0", "e1"]


@pytest.mark.parametrize(
    ("where", "words"),
    [("missing/dir/alerts.jsonl", "does not exist"), ("adir", "is a directory")],
)
def test_unwritable_path_is_a_clear_retryable_error(tmp_path: Path, where: str, words: str) -> None:
    (tmp_path / "adir").mkdir()
    path = tmp_path / where
    with pytest.raises(SinkError) as err:
        deliver(sink(path=str(path)), [record(0)])
    assert err.value.retryable
    assert str(path) in str(err.value) and words in str(err.value)


def test_delivers_once_the_operator_fixes_the_path(tmp_path: Path) -> None:
    path = tmp_path / "later" / "alerts.jsonl"
    s = sink(path=str(path))

    async def main() -> None:
        with pytest.raises(SinkError):
            await s.open()
        path.parent.mkdir()
        await s.open()  # the framework retries open()
        try:
            assert await s.write([record(0)]) is ACCEPTED
        finally:
            await s.close()

    asyncio.run(main())
    assert [o["event_id"] for o in lines(path)] == ["e0"]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="octal"):
        sink(path="/tmp/x", mode="rw")
    with pytest.raises(ConfigError, match="0 or more"):
        sink(path="/tmp/x", max_bytes=-1)
    assert (
        sink().record_size(record(0)) == len(json.dumps(record(0).obj, separators=(",", ":"))) + 1
    )


_DISK_FULL = """
import asyncio, os, resource, signal, sys
from falconet.errors import SinkError
from tests.sinks.test_file_sink import record, sink

async def main() -> None:
    path = sys.argv[1]
    s = sink(path=path)
    await s.open()
    await s.write([record(0)])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
    limit = os.path.getsize(path) + 200  # room for part of the next line only
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        await s.write([record(n) for n in range(1, 4)])
    except SinkError as e:
        print("retryable" if e.retryable else "permanent")
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    await s.write([record(9)])  # the retry after the operator freed space
    await s.close()

asyncio.run(main())
"""


def test_a_batch_cut_short_by_the_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _DISK_FULL, str(path)],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["retryable"]
    assert [o["event_id"] for o in lines(path)] == ["e0", "e9"]

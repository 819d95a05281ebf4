"""The collector's checkpoint file: durable, versioned by ETag, compacted, single-owner."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from falconet.errors import SensorError
from falconet.sensors.cloudtrail import checkpoint as cp_module
from falconet.sensors.cloudtrail.checkpoint import Checkpoint


def lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_survives_a_restart_and_a_new_etag_means_read_again(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cp.jsonl"  # the folder is created
    with Checkpoint.open(path) as cp:
        cp.record("s3://b/k1", "e1", 10, "published")
        cp.record("s3://b/k2", "e2", 0, "dead_letter")
        cp.set_mark("s3://b/AWSLogs/1/CloudTrail/us-east-1/", "2024/03/01")
    with Checkpoint.open(path) as cp:
        assert cp.done("s3://b/k1", "e1") and cp.done("s3://b/k2", "e2")
        assert not cp.done("s3://b/k1", "e9")  # rewritten object: read it again
        assert not cp.done("s3://b/k1", "")  # version unknown: not known to be done
        assert not cp.done("s3://b/k3", "e1")
        assert (
            cp.entries["s3://b/k2"].status == "dead_letter"
            and cp.entries["s3://b/k1"].records == 10
        )
        assert cp.marks == {"s3://b/AWSLogs/1/CloudTrail/us-east-1/": "2024/03/01"}
        cp.record("s3://b/k1", "e9", 3, "published")  # the latest line wins
    with Checkpoint.open(path) as cp:
        assert cp.done("s3://b/k1", "e9") and not cp.done("s3://b/k1", "e1")


def test_each_record_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "cp.jsonl"
    cp = Checkpoint.open(path)
    cp.record("file:///x.json.gz", "10-5", 1, "published")
    assert lines(path)[-1]["id"] == "file:///x.json.gz"  # readable by another process already
    cp.close()


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cp.jsonl"
    with Checkpoint.open(path) as cp:
        cp.record("s3://b/k1", "e1", 1, "published")
    with open(path, "ab") as f:
        f.write(b'{"id": "s3://b/k2", "etag": "e2", "ts"')  # a crash in the middle of an append
    with Checkpoint.open(path) as cp:
        assert cp.done("s3://b/k1", "e1") and not cp.done("s3://b/k2", "e2")


def test_not_a_checkpoint_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.jsonl"
    path.write_text('{"some": "thing"}\n')
    with pytest.raises(SensorError, match="not a falconet CloudTrail checkpoint file"):
        Checkpoint.open(path)
    Checkpoint.open(path.with_name("other.jsonl")).close()  # and the lock was released


def test_a_second_collector_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.jsonl"
    with Checkpoint.open(path):
        with pytest.raises(SensorError, match="in use by another collector"):
            Checkpoint.open(path)
    Checkpoint.open(path).close()


def test_compaction_keeps_only_live_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cp_module, "_SLACK_LINES", 5)
    path = tmp_path / "cp.jsonl"
    with Checkpoint.open(path) as cp:
        for i in range(40):
            cp.record("s3://b/same", f"e{i}", i, "published")  # one live entry, many lines
        assert len(lines(path)) < 15
        cp.record("s3://b/other", "x", 1, "published")
        assert cp.prune(lambda k, e: k == "s3://b/same") == 1
    assert [x.get("id") for x in lines(path)] == [
        None,
        "s3://b/other",
    ]  # header, then the live entry
    assert lines(path)[0] == cp_module.HEADER
    assert not list(tmp_path.glob("*.tmp"))

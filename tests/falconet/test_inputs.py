"""Reading recorded events: format detection, envelopes, bad records reported and skipped."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import orjson
import pytest

from falconet.errors import InputError
from falconet.inputs import Problem, RecordDecoder, event_from_envelope, read_events
from tests.conftest import FIXTURES

CT_FILE = next((FIXTURES / "cloudtrail").glob("*.json"))


def read(path: Path | str, **kw) -> tuple[list, list[Problem]]:
    problems: list[Problem] = []
    events = list(read_events(str(path), RecordDecoder(host="collector-1", **kw), problems.append))
    return events, problems


def envelope(**over) -> dict:
    obj = {
        "v": 1, "source": "syscall", "type": "openat", "ts": 1_700_000_000_000_000_000,
        "host": "node-a", "id": "e1", "event": {"args": {}, "proc": {"name": "cat"}, "container": {"id": "host"}},
    }  # fmt: skip
    obj.update(over)
    return obj


def test_json_lines_of_envelopes(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    p.write_bytes(b"\n".join(orjson.dumps(envelope(id=f"e{i}")) for i in range(3)) + b"\n\n")
    events, problems = read(p)
    assert [e.id for e in events] == ["e0", "e1", "e2"] and problems == []
    assert events[0].source == "syscall" and events[0].payload["proc"]["name"] == "cat"


def test_malformed_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "mixed.jsonl"
    lines = [
        orjson.dumps(envelope(id="ok1")),
        b"{not json",
        orjson.dumps(envelope(id="bad", ts="yesterday")),
        orjson.dumps({"hello": "world"}),
        b"\xff\xfe invalid utf-8",
        orjson.dumps(envelope(id="ok2", source="nosuch")),
        orjson.dumps(envelope(id="ok3")),
    ]
    p.write_bytes(b"\n".join(lines) + b"\n")
    events, problems = read(p)
    assert [e.id for e in events] == ["ok1", "ok3"]
    assert [pr.line for pr in problems] == [2, 3, 4, 5, 6]
    text = [str(pr) for pr in problems]
    assert text[0].startswith(f"{p}:2: invalid JSON")
    assert "'ts' must be a non-negative integer" in text[1]
    assert "unrecognized record" in text[2]
    assert "invalid JSON" in text[3]
    assert "unknown event source 'nosuch'" in text[4]


def test_batch_records_with_context_references(tmp_path: Path) -> None:
    """A line holding a sensor's batch record (events sharing context by ``event.ctx``)
    reads as self-contained events; a dangling reference is reported with line and item."""
    def ref(j: object, eid: str) -> dict:
        return envelope(id=eid, event={"args": {"fd": 4}, "ctx": j})

    p = tmp_path / "batches.jsonl"
    first = envelope(id="a0", event={"args": {"fd": 3}, "proc": {"name": "cc1"}, "container": {"id": "c1"}, "user": {"uid": 0}})
    p.write_bytes(orjson.dumps([first, ref(0, "a1"), ref(1, "a2")]) + b"\n"
                  + orjson.dumps([ref(0, "b0"), first, ref("0", "b2")]) + b"\n")  # fmt: skip
    events, problems = read(p)
    assert [e.id for e in events] == ["a0", "a1", "a2", "a0"]
    for e in events[1:3]:
        assert e.payload == {"args": {"fd": 4}, "proc": {"name": "cc1"}, "container": {"id": "c1"},
                             "user": {"uid": 0}}  # fmt: skip
    assert [(pr.line, pr.message.split(":")[0]) for pr in problems] == [(2, "item 0"), (2, "item 2")]
    assert "(none: this is the first), got 0" in problems[0].message
    assert "(0 to 1), got '0'" in problems[1].message


def test_oversized_record_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "big.jsonl"
    big = envelope(id="big", event={"args": {"data": "x" * 5000}, "container": {"id": "host"}})
    p.write_bytes(orjson.dumps(big) + b"\n" + orjson.dumps(envelope(id="small")) + b"\n")
    problems: list[Problem] = []
    events = list(read_events(str(p), RecordDecoder(), problems.append, max_record_bytes=1000))
    assert [e.id for e in events] == ["small"]
    assert "larger than 1000 bytes" in problems[0].message and problems[0].line == 1


def test_cloudtrail_log_file() -> None:
    events, problems = read(CT_FILE)
    records = json.loads(CT_FILE.read_text())["Records"]
    assert problems == [] and len(events) == len(records)
    first = events[0]
    assert first.source == "aws_cloudtrail" and first.type == records[0]["eventName"]
    assert first.id == records[0]["eventID"] and first.host == "collector-1"
    assert first.payload == records[0]  # the record unchanged
    assert first.meta["origin"] == {"kind": "file", "path": str(CT_FILE)}
    assert isinstance(first.meta["received_ts"], int)


def test_cloudtrail_gzip_and_array(tmp_path: Path) -> None:
    records = json.loads(CT_FILE.read_text())["Records"]
    gz = tmp_path / "trail.json.gz"
    gz.write_bytes(gzip.compress(CT_FILE.read_bytes()))
    arr = tmp_path / "records.json"
    arr.write_text(json.dumps(records, indent=2))
    assert len(read(gz)[0]) == len(records)
    assert len(read(arr)[0]) == len(records)


def test_cloudtrail_record_without_time_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps({"eventVersion": "1.08", "eventName": "X", "eventSource": "s3.amazonaws.com"}) + "\n")
    events, problems = read(p)
    assert events == [] and "without 'eventTime'" in problems[0].message


def test_k8s_audit_events_and_eventlist(tmp_path: Path) -> None:
    one = json.loads((FIXTURES / "k8s_audit" / "exec_pod.json").read_text())
    lst = json.loads((FIXTURES / "k8s_audit" / "eventlist.json").read_text())
    lines = tmp_path / "audit.jsonl"
    lines.write_text(json.dumps(one) + "\n" + json.dumps(lst) + "\n")
    events, problems = read(lines, cluster="eu-1")
    assert problems == [] and len(events) == 1 + len(lst["items"])
    assert events[0].source == "k8s_audit" and events[0].meta == {"cluster": "eu-1"}
    assert events[0].id == f"{one['auditID']}:{one['stage']}"
    pretty = tmp_path / "list.json"
    pretty.write_text(json.dumps(lst, indent=2))
    assert len(read(pretty)[0]) == len(lst["items"])


def test_broken_pretty_document_is_one_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{\n  "Records": [\n    {"eventName": "X",\n  ]\n}\n')
    events, problems = read(p)
    assert events == [] and len(problems) == 1
    assert problems[0].line == 4 and "invalid JSON" in problems[0].message


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = orjson.dumps(envelope(id="from-stdin")) + b"\n"

    class FakeStdin:
        buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]

    monkeypatch.setattr("sys.stdin", FakeStdin())
    events, problems = read("-")
    assert [e.id for e in events] == ["from-stdin"] and problems == []


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        read(tmp_path / "nope.jsonl")


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "cut.json.gz"
    p.write_bytes(gzip.compress(orjson.dumps(envelope()) * 50)[:-20])
    events, problems = read(p)
    assert problems and ("truncated" in problems[-1].message or "invalid JSON" in problems[-1].message)


class TestEnvelope:
    def test_defaults_for_cloudtrail_and_audit(self) -> None:
        ct = event_from_envelope(
            {"source": "aws_cloudtrail", "event": {"eventName": "StopLogging", "eventID": "x1",
                                                   "eventTime": "2024-03-01T10:20:30.5Z"}}
        )  # fmt: skip
        assert ct.type == "StopLogging" and ct.id == "x1" and ct.ts == 1709288430_500000000
        audit = event_from_envelope(
            {"source": "k8s_audit", "cluster": "eu-1",
             "event": {"verb": "get", "auditID": "u1", "stage": "ResponseComplete",
                       "stageTimestamp": "2024-03-01T10:20:30.123456Z"}}
        )  # fmt: skip
        assert audit.type == "get" and audit.id == "u1:ResponseComplete" and audit.meta == {"cluster": "eu-1"}

    @pytest.mark.parametrize(
        "change,message",
        [
            ({"event": []}, "'event' member must be a JSON object"),
            ({"ts": -1}, "non-negative integer"),
            ({"type": ""}, "'type' must be a non-empty string"),
            ({"num": "1"}, "'num' must be"),
            ({"host": 5}, "'host' must be a string"),
            ({"enrichment": "x"}, "'enrichment' member must be a JSON object"),
        ],
    )
    def test_validation(self, change: dict, message: str) -> None:
        with pytest.raises(InputError, match=message):
            event_from_envelope(envelope(**change))

    def test_round_trip(self) -> None:
        ev = event_from_envelope(envelope(num=5, enrichment={"k8s": {"ns": {"name": "a"}}}))
        assert event_from_envelope(ev.to_json_obj()).to_json_obj() == ev.to_json_obj()


def test_records_falco_would_not_evaluate_are_reported_one_by_one(tmp_path: Path) -> None:
    records = json.loads(CT_FILE.read_text())["Records"]
    insight = {"eventVersion": "1.07", "eventTime": "2024-03-01T10:00:00Z", "eventID": "i1",
               "eventType": "AwsCloudTrailInsight", "eventCategory": "Insight"}  # fmt: skip
    no_type = {k: v for k, v in records[0].items() if k != "eventType"}
    p = tmp_path / "trail.json"
    p.write_text(json.dumps({"Records": [records[0], insight, no_type, records[1]]}))
    events, problems = read(p)
    assert [e.id for e in events] == [records[0]["eventID"], records[1]["eventID"]]
    assert [pr.message.split(":")[0] for pr in problems] == ["Records[1]", "Records[2]"]
    assert "CloudTrail Insights record" in problems[0].message
    assert "without 'eventType'" in problems[1].message


def test_oversized_audit_event_is_reported(tmp_path: Path) -> None:
    one = json.loads((FIXTURES / "k8s_audit" / "exec_pod.json").read_text())
    big = dict(one, requestObject={"data": "x" * 300_000})
    p = tmp_path / "audit.jsonl"
    p.write_text(json.dumps(big) + "\n" + json.dumps(one) + "\n")
    events, problems = read(p)
    assert len(events) == 1 and problems[0].line == 1
    assert "larger than 262144 bytes" in problems[0].message
    events, problems = read(p, k8s_max_event_bytes=0)
    assert len(events) == 2 and problems == []

"""The bucket listing and the SQS source against moto's in-process S3/SQS (no server), with
the stand-in Kafka of the directory tests: marks and StartAfter, pruning, ``since``, and
what happens to SQS messages (deleted, released, extended, dead-lettered)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.errors import SensorError
from falconet.sensors.cloudtrail.aws import Backoff
from falconet.sensors.cloudtrail.checkpoint import Checkpoint
from falconet.sensors.cloudtrail.collector import CloudTrailCollector
from falconet.sensors.cloudtrail.listing import BucketListing
from falconet.sensors.cloudtrail.metrics import CollectorStats
from falconet.sensors.cloudtrail.options import CollectorOptions
from falconet.sensors.cloudtrail.sources import Fetched, FetchError, ObjectRef, Outcome
from falconet.sensors.cloudtrail.sqs import SqsQueue
from tests.sensors.test_cloudtrail_directory import FakeEmitter, fixture_records

ACCOUNT = "123456789012"
FOLDER = f"AWSLogs/{ACCOUNT}/CloudTrail/"


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    with mock_aws():
        import boto3

        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket="trail")
        yield {"s3": s3, "sqs": sqs}


def key(region: str, day: str, n: int = 0) -> str:
    return f"{FOLDER}{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{day.replace('/', '')}T100{n}Z_u{n}.json.gz"


def put(s3: Any, k: str, records: list[dict[str, Any]] | None = None) -> None:
    import gzip

    s3.put_object(
        Bucket="trail",
        Key=k,
        Body=gzip.compress(orjson.dumps({"Records": records or fixture_records()[:2]})),
    )


def listed(s3: Any) -> list[dict[str, Any]]:
    """The parameters of every ListObjectsV2 call made with ``s3`` from now on."""
    calls: list[dict[str, Any]] = []
    s3.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    return calls


def run_listing(s3: Any, cp_path: Path, emit: FakeEmitter | None = None, source_cls: type = BucketListing,
                **kw: Any) -> tuple[CloudTrailCollector, FakeEmitter]:  # fmt: skip
    checkpoint = Checkpoint.open(cp_path)
    source = source_cls(s3, "trail", kw.pop("prefix", "AWSLogs/"), checkpoint, once=True, **kw)
    c = CloudTrailCollector(
        CollectorOptions(bucket="trail", once=True), source=source, checkpoint=checkpoint
    )
    emit = emit or FakeEmitter()
    c.run(emit)  # type: ignore[arg-type]
    return c, emit


def test_listing_resumes_from_marks_and_prunes_old_days(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    s3, cp = aws["s3"], tmp_path / "cp.jsonl"
    for day in ("2024/03/01", "2024/03/02", "2024/03/03"):
        put(s3, key("us-east-1", day))
    put(s3, key("eu-west-1", "2024/03/02"))
    s3.put_object(
        Bucket="trail",
        Key=f"AWSLogs/{ACCOUNT}/Config/us-east-1/2024/3/2/ConfigHistory/h.json.gz",
        Body=b"{}",
    )
    s3.put_object(
        Bucket="trail",
        Key=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/02/d.json.gz",
        Body=b"{}",
    )
    calls = listed(s3)
    c, emit = run_listing(s3, cp)
    assert c.cstats.objects["published"] == 4 and len(emit.events) == 8 and emit.dead == []
    descended = {p["Prefix"] for p in calls if "Delimiter" in p}
    assert (
        f"AWSLogs/{ACCOUNT}/Config/" not in descended
        and f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/" not in descended
    )
    with Checkpoint.open(cp) as checkpoint:
        assert checkpoint.marks == {f"s3://trail/{FOLDER}eu-west-1/": "2024/03/01",
                                    f"s3://trail/{FOLDER}us-east-1/": "2024/03/02"}  # fmt: skip
        # days before the mark are never listed again: their entries are gone
        assert sorted(k.split("/us-east-1/")[-1][:10] for k in checkpoint if "us-east-1" in k) == [
            "2024/03/02",
            "2024/03/03",
        ]

    put(s3, key("us-east-1", "2024/03/03", 1))
    calls.clear()
    c, emit = run_listing(s3, cp)
    assert c.cstats.objects["published"] == 1 and c.cstats.objects["skipped"] == 0
    assert sorted(p["StartAfter"] for p in calls if "Delimiter" not in p and "MaxKeys" not in p) == [
        f"{FOLDER}eu-west-1/2024/03/01", f"{FOLDER}us-east-1/2024/03/02"]  # fmt: skip


def test_a_failed_file_holds_its_day(aws: dict[str, Any], tmp_path: Path) -> None:
    s3, cp = aws["s3"], tmp_path / "cp.jsonl"
    failing = key("us-east-1", "2024/03/01")
    put(s3, failing)
    put(s3, key("us-east-1", "2024/03/04"))

    class Flaky(BucketListing):
        def read(self, ref: ObjectRef) -> Fetched:
            if ref.key == failing:
                raise FetchError("SlowDown")
            return super().read(ref)

    with pytest.raises(SensorError, match="1 log files could not be read"):
        run_listing(s3, cp, source_cls=Flaky)
    with Checkpoint.open(cp) as checkpoint:
        assert checkpoint.marks == {f"s3://trail/{FOLDER}us-east-1/": "2024/03/01"}
    c, _ = run_listing(s3, cp)
    assert c.cstats.objects["published"] == 1  # read now, the other one not again


def test_since_skips_older_days_and_a_flat_prefix_is_listed_whole(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    s3 = aws["s3"]
    put(s3, key("us-east-1", "2024/02/28"))
    put(s3, key("us-east-1", "2024/03/02"))
    c, _ = run_listing(s3, tmp_path / "a.jsonl", since="2024/03/01")
    assert c.cstats.objects["published"] == 1

    put(s3, "copies/one.json.gz")
    put(s3, "copies/two.json.gz")
    cp = tmp_path / "b.jsonl"
    c, _ = run_listing(s3, cp, prefix="copies/")
    assert c.cstats.objects["published"] == 2
    s3.delete_object(Bucket="trail", Key="copies/one.json.gz")
    c, _ = run_listing(s3, cp, prefix="copies/")
    assert c.cstats.objects["published"] == 0
    with Checkpoint.open(cp) as checkpoint:
        assert list(checkpoint) == ["s3://trail/copies/two.json.gz"]  # the deleted one is forgotten


# -- SQS ------------------------------------------------------------------------------------------
def s3_event(k: str, bucket: str = "trail") -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": bucket}, "object": {"key": k}}}]})  # fmt: skip


def sqs_collector(
    aws: dict[str, Any], tmp_path: Path, emit: FakeEmitter, **kw: Any
) -> tuple[CloudTrailCollector, str]:
    url = aws["sqs"].create_queue(QueueName="ct")["QueueUrl"]
    stats = CollectorStats()
    source = SqsQueue(aws["sqs"], aws["s3"], url, stats, wait_seconds=1, visibility_seconds=kw.pop("visibility", 30),
                      once=True, **kw)  # fmt: skip
    c = CloudTrailCollector(CollectorOptions(sqs_queue_url=url, once=True), source=source,
                            checkpoint=Checkpoint.open(tmp_path / "cp.jsonl"))  # fmt: skip
    c.cstats = stats
    return c, url


def depth(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def test_sqs_messages_are_deleted_after_delivery_and_released_after_failure(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    sqs = aws["sqs"]
    put(aws["s3"], key("us-east-1", "2024/03/01"))
    failing = FakeEmitter(kafka="failing")
    c, url = sqs_collector(aws, tmp_path, failing, retry=Backoff(base=30.0))
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(key("us-east-1", "2024/03/01")))
    released: list[dict[str, Any]] = []
    sqs.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibility",
                             lambda params, **_: released.append(dict(params)))  # fmt: skip
    with pytest.raises(SensorError, match="could not be read or published"):
        c.run(failing)  # type: ignore[arg-type]
    assert c.cstats.sqs["deleted"] == 0 and c.cstats.sqs["released"] == 1 and depth(sqs, url) == 1
    assert 15 <= released[-1]["VisibilityTimeout"] <= 30  # backoff with jitter: 30 s · [0.5, 1]


def test_sqs_bodies_and_objects_that_cannot_be_used_go_to_the_dlq(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    sqs = aws["sqs"]
    emit = FakeEmitter()
    c, url = sqs_collector(aws, tmp_path, emit)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    sqs.send_message(
        QueueUrl=url, MessageBody=s3_event(key("us-east-1", "2024/03/01", 7))
    )  # never stored
    sqs.send_message(
        QueueUrl=url,
        MessageBody=s3_event(f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/01/d.json.gz"),
    )
    c.run(emit)  # type: ignore[arg-type]
    reasons = sorted(d["reason"] for d in emit.dead)
    assert reasons[0].startswith("SQS message: the SQS message is not JSON")
    assert "the object does not exist" in reasons[1] and "NoSuchKey" in reasons[1]
    assert c.cstats.sqs == {
        "received": 3,
        "deleted": 3,
        "ignored": 1,
        "released": 0,
        "dead_letter": 1,
    }
    assert c.cstats.objects["ignored"] == 1 and depth(sqs, url) == 0


def test_sqs_visibility_is_extended_while_objects_are_in_flight(aws: dict[str, Any]) -> None:
    sqs = aws["sqs"]
    url = sqs.create_queue(QueueName="ct")["QueueUrl"]
    now = [1000.0]
    source = SqsQueue(
        sqs,
        aws["s3"],
        url,
        CollectorStats(),
        wait_seconds=1,
        visibility_seconds=60,
        clock=lambda: now[0],
    )
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(key("us-east-1", "2024/03/01")))
    changes: list[int] = []
    sqs.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibility",
                             lambda params, **_: changes.append(params["VisibilityTimeout"]))  # fmt: skip
    source.start(lambda *a, **k: None)
    try:
        deadline = time.monotonic() + 10
        refs: list[ObjectRef] = []
        while not refs and time.monotonic() < deadline:
            refs = source.take(4)
        assert len(refs) == 1
        source.tick()
        assert changes == []  # not yet half way
        now[0] += 31
        source.tick()
        assert changes == [60]
        source.tick()
        assert changes == [60]  # once per half-timeout
        source.finished(Outcome(refs[0], "published", "e"))
        assert depth(sqs, url) == 0
    finally:
        source.close()


def test_sqs_checkpoint_entries_older_than_the_queue_retention_are_pruned(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    sqs = aws["sqs"]
    url = sqs.create_queue(QueueName="ct", Attributes={"MessageRetentionPeriod": "3600"})[
        "QueueUrl"
    ]
    path = tmp_path / "cp.jsonl"
    day = 86400 * 10**9
    old, recent = time.time_ns() - 2 * day, time.time_ns() - day // 2
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in [
        {"v": 1, "kind": "falconet-cloudtrail-checkpoint"},
        {"id": "s3://trail/old.json.gz", "etag": "a", "ts": old, "records": 1, "status": "published"},
        {"id": "s3://trail/recent.json.gz", "etag": "b", "ts": recent, "records": 1, "status": "published"},
    ]) + b"\n")  # fmt: skip
    with Checkpoint.open(path) as checkpoint:
        source = SqsQueue(sqs, aws["s3"], url, CollectorStats(), checkpoint=checkpoint)
        source.check()
        assert source.retention_seconds == 3600
        source.tick()  # a message can live 1 h: what is older than 1 h + 1 day cannot come back
        assert list(checkpoint) == ["s3://trail/recent.json.gz"]

"""The CloudTrail collector on the real broker, against moto's S3, SQS and SNS server.

moto (``ThreadedMotoServer`` on 127.0.0.1, a random port) answers the S3, SQS and SNS HTTP
APIs the way AWS does for what the collector relies on: S3 event notifications sent to a
queue directly or through an SNS topic (with the ``s3:TestEvent`` sent when a notification
is configured, and URL-encoded keys), ETags, ``ListObjectsV2`` with ``StartAfter``, long
polling, visibility timeouts and their changes. It accepts any credentials; what it does
not check (IAM policies, KMS) is not tested here.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.sensors.base import run_sensor
from falconet.sensors.cloudtrail.collector import CloudTrailCollector
from falconet.sensors.cloudtrail.options import CollectorOptions
from falconet.streams.topics import DLQ, events_topic
from tests.conftest import ROOT
from tests.integration.harness import Stack, make_stack, wait_for

ACCOUNT_A = "418295730164"  # the bundled scenario's account
ACCOUNT_B = "123456789012"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SCENARIO = json.loads(
    (ROOT / "falconet" / "scenarios" / "intrusion" / "cloudtrail.json").read_text()
)["Records"]
EVENTS = events_topic("aws_cloudtrail")


@dataclass
class Aws:
    """A bucket, a queue and their clients of one test (names of its own on the moto server)."""

    url: str
    name: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")

    def bucket_with_queue(self) -> tuple[str, str]:
        """A bucket whose new objects are announced to a new queue (S3 → SQS)."""
        s3, sqs = self.client("s3"), self.client("sqs")
        s3.create_bucket(Bucket=self.name)
        queue = sqs.create_queue(QueueName=self.name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(Bucket=self.name, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})  # fmt: skip
        return self.name, queue

    def bucket_via_sns(self, queue: str) -> str:
        """A second bucket announcing to the same queue through an SNS topic (S3 → SNS → SQS)."""
        s3, sqs, sns = self.client("s3"), self.client("sqs"), self.client("sns")
        bucket = self.name + "-sns"
        s3.create_bucket(Bucket=bucket)
        topic = sns.create_topic(Name=bucket)["TopicArn"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})  # fmt: skip
        return bucket

    def put(self, bucket: str, key: str, body: bytes | list[dict[str, Any]]) -> str:
        """Store a log file (records → gzip'ed ``{"Records": …}``); returns its ETag."""
        data = body if isinstance(body, bytes) else gzip.compress(orjson.dumps({"Records": body}))
        return self.client("s3").put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')

    def queue_depth(self, queue: str) -> int:
        """Messages in the queue, visible or held by a consumer."""
        a = self.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
            "Attributes"
        ]
        return int(a["ApproximateNumberOfMessages"]) + int(
            a["ApproximateNumberOfMessagesNotVisible"]
        )

    def visible(self, queue: str) -> int:
        a = self.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
            "Attributes"
        ]
        return int(a["ApproximateNumberOfMessages"])


@pytest.fixture()
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return Aws(moto_url, f"ct-{uuid.uuid4().hex[:12]}")


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    return make_stack(kafka.bootstrap, topic_prefix, tmp_path)


def records(account: str, n: int) -> list[dict[str, Any]]:
    """``n`` real-looking records of ``account`` (the scenario's, with fresh event ids)."""
    out = []
    for i in range(n):
        rec = dict(
            SCENARIO[i % len(SCENARIO)], eventID=str(uuid.uuid4()), recipientAccountId=account
        )
        out.append(rec)
    return out


def log_key(account: str, region: str, day: str, n: int) -> str:
    stamp = day.replace("/", "") + f"T10{n % 6}{n // 6 % 10}Z"
    return (f"AWSLogs/{account}/CloudTrail/{region}/{day}/"
            f"{account}_CloudTrail_{region}_{stamp}_{uuid.uuid4().hex[:16]}.json.gz")  # fmt: skip


def collect(stack: Stack, aws: Aws, checkpoint: Path, **options: Any) -> CloudTrailCollector:
    """Run the collector in this thread until what is there now is published (``--once``)."""
    opts = {"sqs_wait_seconds": 1, "visibility_seconds": 30, **options}
    collector = CloudTrailCollector(
        CollectorOptions(endpoint_url=aws.url, checkpoint_file=str(checkpoint), once=True, **opts)
    )
    run_sensor(collector, stack.config)
    return collector


def topic_contents(stack: Stack, topic: str) -> list[tuple[str | None, Any]]:
    """Every record of ``topic`` (key, decoded JSON value), read up to its end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    full = stack.topic(topic)
    consumer = Consumer(stack.settings.confluent(**{"group.id": f"{stack.prefix}read-{time.time_ns()}",
                                                    "enable.auto.commit": False}))  # fmt: skip
    try:
        parts = consumer.list_topics(full, timeout=10).topics[full].partitions
        ends = {}
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(full, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(full, p, OFFSET_BEGINNING) for p in ends])
        out: list[tuple[str | None, Any]] = []
        deadline = time.monotonic() + 30
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.append((msg.key().decode() if msg.key() else None, orjson.loads(msg.value())))
            if msg.offset() >= ends.get(msg.partition(), 0) - 1:
                ends.pop(msg.partition(), None)
        assert not ends, f"could not read {full} to its end"
        return out
    finally:
        consumer.close()


def published(stack: Stack) -> list[tuple[str | None, dict[str, Any]]]:
    """The envelopes on the events topic, each with the key of its Kafka record."""
    return [(key, env) for key, batch in topic_contents(stack, EVENTS) for env in batch]


def assert_envelopes(
    events: list[tuple[str | None, dict[str, Any]]], origins: dict[str, dict[str, str]]
) -> None:
    """Each envelope is the record unchanged + ``received_ts`` + the ``origin`` of its file,
    keyed by its account; ``origins`` maps each event id to its file's origin."""
    for key, env in events:
        rec = env["event"]
        assert key == rec["recipientAccountId"]
        assert env["source"] == "aws_cloudtrail" and env["type"] == rec["eventName"]
        assert env["id"] == rec["eventID"] and isinstance(env["received_ts"], int)
        assert env["origin"] == origins[rec["eventID"]]


def s3_origin(bucket: str, key: str) -> dict[str, str]:
    return {"kind": "s3", "bucket": bucket, "key": key}


def test_sqs_records_arrive_once_each_and_a_restart_resumes(
    aws: Aws, stack: Stack, tmp_path: Path
) -> None:
    """S3 → SQS and S3 → SNS → SQS notifications: each record reaches the topic once, keyed by
    account; test events and digest files are deleted unread; a restart reads only new files
    (a repeated notification of a published file is deleted without publishing again)."""
    bucket, queue = aws.bucket_with_queue()
    sns_bucket = aws.bucket_via_sns(queue)
    origins: dict[str, dict[str, str]] = {}
    first = []
    for i in range(3):
        key, recs = log_key(ACCOUNT_A, "us-east-1", "2024/03/01", i), records(ACCOUNT_A, 10)
        first.append((key, aws.put(bucket, key, recs)))
        origins.update({r["eventID"]: s3_origin(bucket, key) for r in recs})
    key, recs = log_key(ACCOUNT_B, "eu-west-1", "2024/03/01", 0), records(ACCOUNT_B, 11)
    aws.put(sns_bucket, key, recs)
    origins.update({r["eventID"]: s3_origin(sns_bucket, key) for r in recs})
    aws.put(bucket, f"AWSLogs/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/2024/03/01/"
                    f"{ACCOUNT_A}_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T100000Z.json.gz", b"{}")  # fmt: skip
    checkpoint = tmp_path / "checkpoint.jsonl"

    c1 = collect(stack, aws, checkpoint, sqs_queue_url=queue)
    events = published(stack)
    assert sorted(env["id"] for _, env in events) == sorted(origins)
    assert_envelopes(events, origins)
    assert (
        c1.cstats.objects["published"] == 4 and c1.cstats.sqs["ignored"] == 3
    )  # 2 test events, 1 digest
    assert aws.queue_depth(queue) == 0

    # restart: two new files, and S3 announcing an already published file once more
    for i in range(3, 5):
        key, recs = log_key(ACCOUNT_A, "us-east-1", "2024/03/01", i), records(ACCOUNT_A, 5)
        aws.put(bucket, key, recs)
        origins.update({r["eventID"]: s3_origin(bucket, key) for r in recs})
    old_key, old_etag = first[0]
    aws.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": old_key, "eTag": old_etag}}}]}))  # fmt: skip
    c2 = collect(stack, aws, checkpoint, sqs_queue_url=queue)
    events = published(stack)
    assert sorted(env["id"] for _, env in events) == sorted(origins)  # no repeats, none skipped
    assert_envelopes(events, origins)
    assert c2.cstats.objects["published"] == 2 and c2.cstats.objects["skipped"] == 1
    assert aws.queue_depth(queue) == 0


def test_corrupt_files_go_to_the_dlq_and_the_rest_flows(
    aws: Aws, stack: Stack, tmp_path: Path
) -> None:
    """Not gzip, gzip of broken JSON, no ``Records``, and a record without ``eventType``:
    each gives a DLQ record with the reason, the file's bucket/key/etag and its bytes; the
    good records flow; every message is deleted and every file checkpointed."""
    bucket, queue = aws.bucket_with_queue()
    good = records(ACCOUNT_A, 6)
    mixed = records(ACCOUNT_A, 3)
    del mixed[1]["eventType"]
    bad_files = {
        log_key(ACCOUNT_A, "us-east-1", "2024/03/02", 1): b"this is not gzip",
        log_key(ACCOUNT_A, "us-east-1", "2024/03/02", 2): gzip.compress(
            b'{"Records": [{"eventVersion": '
        ),
        log_key(ACCOUNT_A, "us-east-1", "2024/03/02", 3): gzip.compress(b'{"records": []}'),
    }
    etags = {key: aws.put(bucket, key, data) for key, data in bad_files.items()}
    good_key, mixed_key = (
        log_key(ACCOUNT_A, "us-east-1", "2024/03/02", 4),
        log_key(ACCOUNT_A, "us-east-1", "2024/03/02", 5),
    )
    aws.put(bucket, good_key, good)
    etags[mixed_key] = aws.put(bucket, mixed_key, mixed)
    checkpoint = tmp_path / "checkpoint.jsonl"

    c = collect(stack, aws, checkpoint, sqs_queue_url=queue)
    ids = sorted(env["id"] for _, env in published(stack))
    assert ids == sorted(r["eventID"] for r in good + [mixed[0], mixed[2]])
    dlq = {v["details"]["key"]: v for _, v in topic_contents(stack, DLQ)}
    assert set(dlq) == set(bad_files) | {mixed_key}
    reasons = {key: dlq[key]["reason"] for key in dlq}
    keys = list(bad_files)
    assert "not gzip data and not JSON" in reasons[keys[0]]
    assert "gzip data holding invalid JSON" in reasons[keys[1]]
    assert "no 'Records' list" in reasons[keys[2]]
    assert reasons[mixed_key] == "Records[1]: CloudTrail record without 'eventType'"
    for key, v in dlq.items():
        assert (
            v["stage"] == "decode"
            and v["source"] == "aws_cloudtrail"
            and v["worker"] == "sensor:cloudtrail"
        )
        assert v["details"]["bucket"] == bucket and v["details"]["etag"] == etags[key]
        original = base64.b64decode(v["original_b64"])
        assert original == (bad_files[key] if key in bad_files else orjson.dumps(mixed[1]))
    assert dlq[mixed_key]["details"]["index"] == 1
    assert aws.queue_depth(queue) == 0
    assert c.cstats.objects == {
        "published": 2,
        "dead_letter": 3,
        "skipped": 0,
        "ignored": 0,
        "failed": 0,
    }
    done = [json.loads(line) for line in checkpoint.read_text().splitlines()[1:]]
    assert {d["id"] for d in done} == {
        f"s3://{bucket}/{k}" for k in [*bad_files, good_key, mixed_key]
    }


def test_bucket_listing_resumes_and_reads_rewritten_files(
    aws: Aws, stack: Stack, tmp_path: Path
) -> None:
    """Listing a bucket in CloudTrail's layout (2 regions, 2 days, digests and AWS Config
    files beside them): every record once; after a restart only new files and a rewritten
    one (new ETag) are read, each region listed from its mark with StartAfter."""
    s3 = aws.client("s3")
    bucket = aws.name
    s3.create_bucket(Bucket=bucket)
    origins: dict[str, dict[str, str]] = {}

    def add(region: str, day: str, n: int, key: str | None = None) -> str:
        key = key or log_key(ACCOUNT_A, region, day, n)
        recs = records(ACCOUNT_A, 4)
        aws.put(bucket, key, recs)
        origins.update({r["eventID"]: s3_origin(bucket, key) for r in recs})
        return key

    for region in ("eu-west-1", "us-east-1"):
        for day in ("2024/03/01", "2024/03/02"):
            for n in range(2):
                add(region, day, n)
    aws.put(
        bucket, f"AWSLogs/{ACCOUNT_A}/Config/us-east-1/2024/03/02/ConfigSnapshot/x.json.gz", b"{}"
    )
    aws.put(bucket, f"AWSLogs/{ACCOUNT_A}/CloudTrail-Digest/us-east-1/2024/03/02/d.json.gz", b"{}")
    checkpoint = tmp_path / "checkpoint.jsonl"

    c1 = collect(stack, aws, checkpoint, bucket=bucket, prefix="AWSLogs/")
    assert sorted(env["id"] for _, env in published(stack)) == sorted(origins)
    assert c1.cstats.objects["published"] == 8

    new_key = add("us-east-1", "2024/03/03", 0)
    rewritten = next(v["key"] for v in origins.values() if "/eu-west-1/2024/03/02/" in v["key"])
    stale = {i for i, o in origins.items() if o["key"] == rewritten}
    for i in stale:
        del origins[i]
    add("eu-west-1", "2024/03/02", 0, key=rewritten)
    start_after: list[str] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        if "Delimiter" not in params:
            start_after.append(params.get("StartAfter", ""))

    collector = CloudTrailCollector(CollectorOptions(bucket=bucket, prefix="AWSLogs/", endpoint_url=aws.url,
                                                     checkpoint_file=str(checkpoint), once=True))  # fmt: skip
    collector.setup()
    collector._source.s3.meta.events.register("before-parameter-build.s3.ListObjectsV2", seen)  # type: ignore[union-attr]
    run_sensor(collector, stack.config)
    events = published(stack)
    assert sorted(env["id"] for _, env in events if env["id"] not in stale) == sorted(origins)
    assert collector.cstats.objects["published"] == 2 and collector.cstats.objects["failed"] == 0
    prefix = f"AWSLogs/{ACCOUNT_A}/CloudTrail/"
    assert sorted(start_after) == [prefix + "eu-west-1/2024/03/01", prefix + "us-east-1/2024/03/01"]
    assert new_key in {o["key"] for o in origins.values()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_is_deleted_while_kafka_is_unreachable(
    aws: Aws, stack: Stack, tmp_path: Path
) -> None:
    """`falconet sensor cloudtrail` with no broker to talk to reads the files and keeps their
    messages (extending their visibility) without deleting or checkpointing anything; killed,
    then run again with the broker (--once), it publishes every record once and empties the queue."""
    from falconet.broker import die_with_parent

    bucket, queue = aws.bucket_with_queue()
    all_ids = []
    for i in range(2):
        recs = records(ACCOUNT_B, 7)
        aws.put(bucket, log_key(ACCOUNT_B, "us-east-1", "2024/03/04", i), recs)
        all_ids += [r["eventID"] for r in recs]
    checkpoint = tmp_path / "checkpoint.jsonl"
    args = ["-m", "falconet", "sensor", "cloudtrail", "--sqs-queue-url", queue, "--endpoint-url", aws.url,
            "--checkpoint-file", str(checkpoint)]  # fmt: skip
    env = {**stack.env, **AWS_ENV, "FALCONET_CLOUDTRAIL_SQS_WAIT_SECONDS": "1",
           "FALCONET_CLOUDTRAIL_VISIBILITY_SECONDS": "2"}  # fmt: skip
    log_path = tmp_path / "collector.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args, "--log-level", "debug"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**env, "FALCONET_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}, preexec_fn=die_with_parent(),
        )  # fmt: skip
    try:

        def extended_after_publishing() -> bool:
            assert proc.poll() is None, log_path.read_text()
            text = log_path.read_text()
            return (
                text.count("cloudtrail.publishing") == 2
                and text.rsplit("cloudtrail.publishing", 1)[1].count("cloudtrail.sqs_extend") >= 4
            )

        wait_for(
            extended_after_publishing,
            timeout=40,
            what="the collector to publish and hold its messages",
        )
        assert aws.queue_depth(queue) == 2
        assert "cloudtrail.object" not in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert checkpoint.read_text().splitlines() == [
        '{"v":1,"kind":"falconet-cloudtrail-checkpoint"}'
    ]
    assert aws.queue_depth(queue) == 2

    wait_for(lambda: aws.visible(queue) == 2, timeout=20, what="the messages to be visible again")
    done = subprocess.run([sys.executable, *args, "--once"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 log files, 14 records" in done.stderr
    assert sorted(env["id"] for _, env in published(stack)) == sorted(all_ids)
    assert aws.queue_depth(queue) == 0
    assert os.path.exists(checkpoint) and len(checkpoint.read_text().splitlines()) == 3

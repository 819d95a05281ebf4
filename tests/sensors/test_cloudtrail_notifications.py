"""SQS message bodies → the S3 objects to read (S3 events, SNS-wrapped, test events …)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from falconet.sensors.cloudtrail.notifications import NotificationError, parse
from tests.conftest import FIXTURES

KEY = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T1020Z_a1.json.gz"


def s3_event(
    key: str, name: str = "ObjectCreated:Put", bucket: str = "trail", etag: str = "9dd4e461"
) -> dict[str, Any]:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": name, "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket},
                                                   "object": {"key": key, "size": 1024, "eTag": etag}}}]}  # fmt: skip


def sns(message: dict[str, Any]) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                       "Message": json.dumps(message), "Timestamp": "2024-03-01T10:20:00.000Z"})  # fmt: skip


def test_s3_event_notification() -> None:
    n = parse(json.dumps(s3_event(KEY)), token="msg-7")
    assert n.kind == "s3" and not n.sns
    (ref,) = n.objects
    assert (ref.bucket, ref.key, ref.etag, ref.size, ref.token) == (
        "trail",
        KEY,
        "9dd4e461",
        1024,
        "msg-7",
    )
    assert ref.id == f"s3://trail/{KEY}"
    assert ref.origin == {"kind": "s3", "bucket": "trail", "key": KEY}


@pytest.mark.parametrize(
    "encoded,key",
    [
        (
            "AWSLogs%2F1%2Fa+b%2Bc%3Ad.json.gz",
            "AWSLogs/1/a b+c:d.json.gz",
        ),  # every character encoded
        ("logs/with+space/x.json.gz", "logs/with space/x.json.gz"),  # AWS: slashes kept, space → +
        ("caf%C3%A9/x.json.gz", "café/x.json.gz"),
    ],
)
def test_keys_are_url_decoded(encoded: str, key: str) -> None:
    assert parse(json.dumps(s3_event(encoded))).objects[0].key == key


def test_sns_wrapped_s3_event() -> None:
    n = parse(sns(s3_event("a%2Bb.json.gz", etag='"quoted"')))
    assert n.kind == "s3" and n.sns
    assert n.objects[0].key == "a+b.json.gz" and n.objects[0].etag == "quoted"


@pytest.mark.parametrize("wrap", [json.dumps, sns])
def test_test_event_announces_nothing(wrap: Any) -> None:
    n = parse(wrap({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-01T10:20:00.000Z",
                    "Bucket": "trail"}))  # fmt: skip
    assert n.kind == "test" and n.objects == ()


def test_other_s3_events_announce_nothing() -> None:
    n = parse(json.dumps(s3_event(KEY, name="ObjectRemoved:Delete")))
    assert n.kind == "other" and n.objects == () and "ObjectRemoved:Delete" in n.note


def test_several_records_in_one_message() -> None:
    body = s3_event("a.json.gz")
    body["Records"] += s3_event("b.json.gz", bucket="other")["Records"]
    assert [(r.bucket, r.key) for r in parse(json.dumps(body)).objects] == [
        ("trail", "a.json.gz"),
        ("other", "b.json.gz"),
    ]


def test_cloudtrail_sns_delivery_notification() -> None:
    n = parse(sns({"s3Bucket": "trail", "s3ObjectKey": [KEY, KEY.replace("a1", "b2")]}))
    assert n.kind == "cloudtrail" and n.sns
    assert [r.key for r in n.objects] == [KEY, KEY.replace("a1", "b2")] and n.objects[0].etag == ""


def test_eventbridge_object_created() -> None:
    body = {"version": "0", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "detail": {"bucket": {"name": "trail"}, "object": {"key": "a b:c.json.gz", "size": 5, "etag": "e1"}}}  # fmt: skip
    (ref,) = parse(json.dumps(body)).objects
    assert (ref.key, ref.etag, ref.size) == (
        "a b:c.json.gz",
        "e1",
        5,
    )  # EventBridge keys are not encoded
    assert parse(json.dumps({**body, "detail-type": "Object Deleted"})).objects == ()


@pytest.mark.parametrize(
    "body,message",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hello": "world"}', "not an S3 event notification"),
        ('{"Records": [{"eventSource": "aws:sqs"}]}', "Records[0] is not an S3 event record"),
        (
            '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}',
            "lacks s3.bucket.name",
        ),
        ('{"Type": "Notification", "Message": 5}', "without a 'Message' string"),
        ('{"Type": "Notification", "Message": "nope"}', "the SNS message is not JSON"),
    ],
)
def test_bodies_that_are_no_notification(body: str, message: str) -> None:
    with pytest.raises(NotificationError, match=re.escape(message)):
        parse(body)


COLLECTOR_FIXTURES = FIXTURES / "cloudtrail" / "collector"


@pytest.mark.parametrize(
    "name,kind,sns_wrapped,keys",
    [
        ("s3_event.json", "s3", False, 1),
        ("sns_s3_event.json", "s3", True, 1),
        ("s3_test_event.json", "test", False, 0),
        ("cloudtrail_sns_message.json", "cloudtrail", False, 1),
    ],
)
def test_bodies_as_aws_sends_them(name: str, kind: str, sns_wrapped: bool, keys: int) -> None:
    n = parse((COLLECTOR_FIXTURES / name).read_bytes(), token="t")
    assert (n.kind, n.sns, len(n.objects)) == (kind, sns_wrapped, keys)
    for ref in n.objects:
        assert ref.bucket == "org-trail" and "/CloudTrail/eu-west-1/2024/03/01/" in ref.key

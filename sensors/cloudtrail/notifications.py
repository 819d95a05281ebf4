"""SQS message bodies → the S3 objects they announce.

Accepted bodies (each also wrapped in an SNS notification, ``{"Type": "Notification",
"Message": "<the body as a string>", …}``, unless the subscription delivers raw messages):

* an **S3 event notification**, ``{"Records": [{"eventSource": "aws:s3", "eventName":
  "ObjectCreated:Put", "s3": {"bucket": {"name": …}, "object": {"key": …, "eTag": …}}}]}``.
  S3 URL-encodes the key (a space is ``+``); it is decoded here. Events other than
  ``ObjectCreated:*`` (deletions, restores…) announce nothing to read;
* the **test event** S3 sends when a notification is configured, ``{"Event":
  "s3:TestEvent", …}``: nothing to read;
* CloudTrail's own **SNS notification** of a delivered file, ``{"s3Bucket": …,
  "s3ObjectKey": [keys]}`` (keys as they are);
* an **EventBridge** ``Object Created`` event from ``aws.s3`` routed to the queue (key as is).

Anything else raises :class:`NotificationError`: the collector sends the body to the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from falconet.errors import InputError

from .sources import S3, ObjectRef

S3_EVENT = "s3"
TEST_EVENT = "test"
CLOUDTRAIL_SNS = "cloudtrail"
EVENTBRIDGE = "eventbridge"
OTHER_EVENT = "other"


class NotificationError(InputError):
    """An SQS message that is not a notification the collector understands."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What one SQS message announces: ``objects`` to read (possibly none) and its ``kind``
    (``s3``, ``test``, ``cloudtrail``, ``eventbridge``, ``other``), ``sns`` when it came
    wrapped in an SNS notification; ``note`` says why nothing is to be read."""

    kind: str
    objects: tuple[ObjectRef, ...] = ()
    sns: bool = False
    note: str = ""


def parse(body: str | bytes, token: str = "") -> Notification:
    """Parse one SQS message body; ``token`` is stored in every :class:`ObjectRef`."""
    value = _loads(body, "the SQS message")
    if isinstance(value, dict) and value.get("Type") in (
        "Notification",
        "SubscriptionConfirmation",
    ):
        if value.get("Type") == "SubscriptionConfirmation":
            return Notification(OTHER_EVENT, sns=True, note="SNS subscription confirmation")
        message = value.get("Message")
        if not isinstance(message, str):
            raise NotificationError("SNS notification without a 'Message' string")
        inner = _parse_value(_loads(message, "the SNS message"), token)
        return Notification(inner.kind, inner.objects, True, inner.note)
    return _parse_value(value, token)


def _loads(body: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotificationError(f"{what} is not JSON: {exc}") from None


def _parse_value(value: Any, token: str) -> Notification:
    if not isinstance(value, dict):
        raise NotificationError(f"expected a JSON object, got {type(value).__name__}")
    if value.get("Event") == "s3:TestEvent":
        return Notification(TEST_EVENT, note="s3:TestEvent")
    records = value.get("Records")
    if isinstance(records, list):
        return _s3_event(records, token)
    if "s3Bucket" in value and "s3ObjectKey" in value:
        return _cloudtrail_sns(value, token)
    if value.get("source") == "aws.s3" and "detail-type" in value:
        return _eventbridge(value, token)
    raise NotificationError(
        "not an S3 event notification, an SNS notification, a CloudTrail delivery "
        "notification or an EventBridge S3 event"
    )


def _s3_event(records: list[Any], token: str) -> Notification:
    objects: list[ObjectRef] = []
    others: list[str] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or rec.get("eventSource") != "aws:s3":
            raise NotificationError(f"Records[{i}] is not an S3 event record")
        name = str(rec.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            others.append(name or "?")
            continue
        s3 = rec.get("s3")
        try:
            bucket = s3["bucket"]["name"]
            key = s3["object"]["key"]
        except (TypeError, KeyError):
            raise NotificationError(f"Records[{i}] lacks s3.bucket.name or s3.object.key") from None
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise NotificationError(f"Records[{i}]: bucket and key must be strings")
        obj = s3["object"]
        objects.append(
            ObjectRef(
                S3, bucket, unquote_plus(key), _etag(obj.get("eTag")), _size(obj.get("size")), token
            )
        )
    if objects:
        return Notification(S3_EVENT, tuple(objects))
    return Notification(
        OTHER_EVENT, note="S3 events " + ",".join(others) if others else "no records"
    )


def _cloudtrail_sns(value: dict[str, Any], token: str) -> Notification:
    bucket, keys = value["s3Bucket"], value["s3ObjectKey"]
    if isinstance(keys, str):
        keys = [keys]
    if (
        not isinstance(bucket, str)
        or not isinstance(keys, list)
        or not all(isinstance(k, str) for k in keys)
    ):
        raise NotificationError(
            "CloudTrail notification: s3Bucket must be a string, s3ObjectKey a list of strings"
        )
    return Notification(
        CLOUDTRAIL_SNS, tuple(ObjectRef(S3, bucket, k, "", -1, token) for k in keys)
    )


def _eventbridge(value: dict[str, Any], token: str) -> Notification:
    if value.get("detail-type") != "Object Created":
        return Notification(OTHER_EVENT, note=f"EventBridge {value.get('detail-type')}")
    detail = value.get("detail")
    try:
        bucket = detail["bucket"]["name"]  # type: ignore[index]
        obj = detail["object"]  # type: ignore[index]
        key = obj["key"]
    except (TypeError, KeyError):
        raise NotificationError(
            "EventBridge event lacks detail.bucket.name or detail.object.key"
        ) from None
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise NotificationError("EventBridge event: bucket and key must be strings")
    return Notification(
        EVENTBRIDGE,
        (ObjectRef(S3, bucket, key, _etag(obj.get("etag")), _size(obj.get("size")), token),),
    )


def _etag(value: Any) -> str:
    return value.strip('"') if isinstance(value, str) else ""


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1

"""Which keys are CloudTrail log files, what their path says, and how a file is decoded."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from falconet.inputs import RecordDecoder
from falconet.sensors.cloudtrail.keys import (
    account_of,
    day_before,
    is_region_prefix,
    parse_since,
    skip_reason,
    split_layout,
)
from falconet.sensors.cloudtrail.logfile import UnreadableFile, decode_log_file, kafka_key
from falconet.sensors.cloudtrail.sources import S3, ObjectRef
from tests.conftest import FIXTURES

ORG = "AWSLogs/o-abcdefghij/123456789012/CloudTrail/eu-west-1/2024/03/01/123456789012_CloudTrail_eu-west-1_20240301T1020Z_x.json.gz"
PLAIN = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/02/29/123456789012_CloudTrail_us-east-1_20240229T2355Z_y.json.gz"
FIXTURE = FIXTURES / "cloudtrail" / "123456789012_CloudTrail_us-east-1_20240301T1020Z_sample.json"


@pytest.mark.parametrize(
    "key,reason",
    [
        (ORG, None),
        (PLAIN, None),
        ("copies/2024/ct.json", None),  # outside the layout, but a JSON file
        (
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T102000Z.json.gz",
            "digest file",
        ),
        (
            "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/03/01/123456789012_CloudTrail-Insight_us-east-1_20240301T1020Z_z.json.gz",
            "Insights file",
        ),
        (
            "AWSLogs/123456789012/Config/us-east-1/2024/3/1/ConfigSnapshot/x.json.gz",
            "not a CloudTrail log file (Config/)",
        ),
        (
            "AWSLogs/123456789012/Config/us-east-1/2024/03/01/x.json.gz",
            "not a CloudTrail log file (Config/)",
        ),
        ("AWSLogs/123456789012/", "folder marker"),
        (
            "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/readme.txt",
            "not a .json or .json.gz file",
        ),
    ],
)
def test_skip_reason(key: str, reason: str | None) -> None:
    assert skip_reason(key) == reason


def test_what_a_key_tells() -> None:
    assert account_of(ORG) == "123456789012" and account_of(PLAIN) == "123456789012"
    assert (
        account_of("/var/log/ct/210987654321_CloudTrail_us-east-1_20240301T1020Z_q.json.gz")
        == "210987654321"
    )
    assert account_of("copies/ct.json") == ""
    assert split_layout(ORG) == (
        "AWSLogs/o-abcdefghij/123456789012/CloudTrail/eu-west-1/",
        "2024/03/01",
    )
    assert split_layout("copies/ct.json") is None
    assert is_region_prefix("trails/AWSLogs/123456789012/CloudTrail/us-east-1/")
    assert not is_region_prefix("AWSLogs/123456789012/CloudTrail/") and not is_region_prefix(
        "AWSLogs/x/CloudTrail/us-east-1/"
    )
    assert day_before("2024/03/01") == "2024/02/29" and day_before("2024/01/01") == "2023/12/31"
    assert parse_since("2024-03-01") == parse_since("2024/03/01") == "2024/03/01"
    with pytest.raises(ValueError):
        parse_since("yesterday")


def ref(key: str = PLAIN) -> ObjectRef:
    return ObjectRef(S3, "trail", key, "e1")


def test_a_log_file_becomes_envelopes_grouped_by_account() -> None:
    doc = json.loads(FIXTURE.read_text())
    decoded = decode_log_file(
        gzip.compress(FIXTURE.read_bytes()), ref(), RecordDecoder(host="collector-1")
    )
    assert decoded.records == len(doc["Records"]) and decoded.bad == ()
    assert list(decoded.groups) == ["123456789012"]
    envs = [orjson.loads(e) for e in decoded.groups["123456789012"]]
    assert [e["event"] for e in envs] == doc["Records"]  # unchanged, in file order
    first = envs[0]
    assert first["origin"] == {"kind": "s3", "bucket": "trail", "key": PLAIN}
    assert first["host"] == "collector-1" and first["id"] == doc["Records"][0]["eventID"]
    assert isinstance(first["received_ts"], int) and decoded.newest_ts >= first["ts"]
    # an uncompressed file is read the same way
    assert decode_log_file(FIXTURE.read_bytes(), ref(), RecordDecoder()).records == decoded.records


def test_records_that_are_no_events_are_set_apart() -> None:
    recs = json.loads(FIXTURE.read_text())["Records"][:3]
    insight = dict(recs[0], eventType="AwsCloudTrailInsight")
    no_time = {k: v for k, v in recs[1].items() if k != "eventTime"}
    data = orjson.dumps({"Records": [recs[2], insight, "text", no_time]})
    decoded = decode_log_file(data, ref(), RecordDecoder())
    assert decoded.records == 1
    assert [(b.index, b.reason.split(":")[0].split(" (")[0]) for b in decoded.bad] == [
        (1, "CloudTrail Insights record"), (2, "not a JSON object"), (3, "CloudTrail record without 'eventTime'")]  # fmt: skip
    assert orjson.loads(decoded.bad[0].original) == insight


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"plain text", "not gzip data and not JSON"),
        (gzip.compress(b"{broken"), "gzip data holding invalid JSON"),
        (gzip.compress(b"[1, 2]"), "a JSON list, not an object with 'Records'"),
        (b'{"Records": {}}', "no 'Records' list"),
        (gzip.compress(b"x" * 100)[:-12], "truncated gzip data"),
        (b"\x1f\x8bnot really gzip", "not valid gzip data"),
    ],
)
def test_unreadable_files(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile, match=reason):
        decode_log_file(data, ref(), RecordDecoder())


def test_decompressed_size_is_bounded() -> None:
    bomb = gzip.compress(b'{"Records": [' + b" " * 5000 + b"]}")
    with pytest.raises(UnreadableFile, match="larger than 1000 bytes once decompressed"):
        decode_log_file(bomb, ref(), RecordDecoder(), limit=1000)


def test_kafka_key_is_the_account() -> None:
    assert kafka_key({"recipientAccountId": "111111111111"}, "222222222222") == "111111111111"
    assert kafka_key({}, "222222222222") == "222222222222"
    assert kafka_key({"userIdentity": {"accountId": "333333333333"}}, "") == "333333333333"
    assert kafka_key({"userIdentity": "?"}, "") == ""

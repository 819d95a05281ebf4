"""The collector's settings, AWS error messages, backoff and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from falconet.config import Config
from falconet.errors import ConfigError
from falconet.sensors.cloudtrail.aws import Backoff, describe, is_setup_error, region_of_queue_url
from falconet.sensors.cloudtrail.metrics import CloudTrailMetrics, CollectorStats
from falconet.sensors.cloudtrail.options import CollectorOptions


def options(tmp_path: Path, **env: str) -> CollectorOptions:
    return CollectorOptions.from_config(
        Config.load(env={f"FALCONET_CLOUDTRAIL_{k.upper()}": v for k, v in env.items()})
    )


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    o = options(tmp_path, sqs_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/ct",
                visibility_seconds="600", checkpoint_file=str(tmp_path / "cp.jsonl"))  # fmt: skip
    assert (
        o.mode == "sqs"
        and o.visibility_seconds == 600
        and o.checkpoint_path == tmp_path / "cp.jsonl"
    )
    o = options(tmp_path, bucket="trail", prefix="AWSLogs/", since="2024-03-01")
    assert (o.mode, o.prefix, o.since, o.poll_seconds) == ("bucket", "AWSLogs/", "2024/03/01", 60.0)
    assert options(tmp_path, directory=str(tmp_path)).mode == "directory"


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "needs exactly one source"),
        ({"bucket": "a", "directory": "/tmp"}, "got cloudtrail.bucket and cloudtrail.directory"),
        ({"bucket": "s3://trail/AWSLogs"}, "cloudtrail.bucket is a bucket name"),
        ({"sqs_queue_url": "ct-queue"}, "cloudtrail.sqs_queue_url must be an http(s) URL"),
        ({"directory": "/no/such/dir"}, "is not a directory"),
        ({"bucket": "a", "since": "03/01/2024"}, "cloudtrail.since must be a date"),
        (
            {"bucket": "a", "max_in_flight": "0"},
            "cloudtrail.max_in_flight must be between 1 and 64",
        ),
        (
            {"bucket": "a", "sqs_wait_seconds": "30"},
            "cloudtrail.sqs_wait_seconds must be between 0 and 20",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        options(tmp_path, **env)


def test_aws_errors_read_well() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
    assert "access denied (AccessDenied)" in describe(denied, "read s3://b/k") and is_setup_error(
        denied
    )
    assert "kms:Decrypt" in describe(denied, "read s3://b/k")
    missing = ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "ReceiveMessage"
    )
    assert describe(missing, "read the queue q") == (
        "cannot read the queue q: the queue does not exist (AWS.SimpleQueueService.NonExistentQueue)")  # fmt: skip
    assert "no usable AWS credentials" in describe(NoCredentialsError(), "list s3://b/")
    assert "cloudtrail.endpoint_url" in describe(
        EndpointConnectionError(endpoint_url="http://x"), "list"
    )
    throttled = ClientError(
        {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject"
    )
    assert describe(throttled, "read") == "cannot read: SlowDown: Please reduce your request rate."
    assert not is_setup_error(throttled)


def test_queue_url_region() -> None:
    assert region_of_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/ct") == "eu-west-1"
    assert (
        region_of_queue_url("https://us-east-2.queue.amazonaws.com/123456789012/ct") == "us-east-2"
    )
    assert region_of_queue_url("http://127.0.0.1:4566/000000000000/ct") == ""


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    low, high = (
        Backoff(base=1.0, cap=8.0, rng=lambda: 0.0),
        Backoff(base=1.0, cap=8.0, rng=lambda: 1.0),
    )
    assert [low.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [high.next() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    high.reset()
    assert high.next() == 1.0


def test_metrics_read_the_counters_at_scrape_time() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    stats = CollectorStats()
    registry = CollectorRegistry()
    registry.register(CloudTrailMetrics(stats))  # type: ignore[arg-type]
    stats.objects["published"] += 3
    stats.sqs["deleted"] += 2
    stats.errors["s3"] += 1
    stats.records = 42
    text = generate_latest(registry).decode()
    assert 'falconet_cloudtrail_objects_total{outcome="published"} 3.0' in text
    assert 'falconet_cloudtrail_sqs_messages_total{outcome="deleted"} 2.0' in text
    assert 'falconet_cloudtrail_errors_total{kind="s3"} 1.0' in text
    assert "falconet_cloudtrail_records_total 42.0" in text
    assert (
        "falconet_cloudtrail_objects_in_flight 0.0" in text
        and "falconet_cloudtrail_lag_seconds 0.0" in text
    )

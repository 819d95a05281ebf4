"""`falconet sensor cloudtrail`: run the CloudTrail collector."""

from __future__ import annotations

import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.cli_stream import kafka_settings
from falconet.errors import FalconetError


@click.command("cloudtrail")
@click.option("--sqs-queue-url", default=None, metavar="URL",
              help="Read the objects announced by this SQS queue (S3 event notifications, direct or via SNS).")  # fmt: skip
@click.option(
    "--bucket",
    default=None,
    help="Read the log files of this bucket by listing it every --poll-seconds.",
)
@click.option(
    "--prefix", default=None, help="With --bucket: only keys under this prefix (e.g. AWSLogs/)."
)
@click.option("--directory", default=None, type=click.Path(file_okay=False),
              help="Follow this local directory of log files (.json/.json.gz).")  # fmt: skip
@click.option(
    "--region", default=None, help="AWS region (default: the standard chain, or the queue URL's)."
)
@click.option("--endpoint-url", default=None, metavar="URL",
              help="S3/SQS endpoint override (MinIO, LocalStack, a VPC endpoint).")  # fmt: skip
@click.option("--checkpoint-file", default=None, type=click.Path(dir_okay=False),
              help="Where the collector remembers what it published.")  # fmt: skip
@click.option(
    "--poll-seconds",
    default=None,
    type=int,
    help="With --bucket/--directory: seconds between rounds.",
)
@click.option("--since", default=None, metavar="YYYY-MM-DD",
              help="With --bucket: skip day folders before this date on the first run.")  # fmt: skip
@click.option(
    "--max-in-flight", default=None, type=int, help="Most log files read or published at once."
)
@click.option(
    "--metrics-port",
    default=None,
    type=int,
    help="Serve Prometheus /metrics on this port (0: off).",
)
@click.option("--once", is_flag=True,
              help="Read what is there now (queue drained, one listing or scan), then exit.")  # fmt: skip
@log_level_option("info")
@click.pass_context
def command(
    ctx: click.Context,
    sqs_queue_url: str | None,
    bucket: str | None,
    prefix: str | None,
    directory: str | None,
    region: str | None,
    endpoint_url: str | None,
    checkpoint_file: str | None,
    poll_seconds: int | None,
    since: str | None,
    max_in_flight: int | None,
    metrics_port: int | None,
    once: bool,
    log_level: str,
) -> None:
    """Collect CloudTrail log files from S3 (via SQS notifications or a bucket listing) or
    a local directory, and publish their records to events.aws_cloudtrail.v1.

    Exactly one source: --sqs-queue-url, --bucket or --directory (or their cloudtrail.*
    settings). AWS credentials come from the standard chain (environment, profile, web
    identity, instance role). What was published is checkpointed (--checkpoint-file), so a
    restart neither skips nor repeats log files; an SQS message is deleted only after Kafka
    acknowledged its records. Unreadable files and records go to the DLQ.

    Exit status: 0 done (stopped, or --once finished), 1 a failure while running (Kafka,
    or --once left files unread), 2 a configuration or access problem at start.
    See docs/sensors/cloudtrail.md.
    """
    from falconet.sensors.base import run_sensor_command

    from .collector import CloudTrailCollector
    from .metrics import register
    from .options import CollectorOptions

    setup_logging(log_level, ("botocore",))
    cfg = load_config(ctx, **{
        "cloudtrail.sqs_queue_url": sqs_queue_url, "cloudtrail.bucket": bucket, "cloudtrail.prefix": prefix,
        "cloudtrail.directory": directory, "cloudtrail.region": region, "cloudtrail.endpoint_url": endpoint_url,
        "cloudtrail.checkpoint_file": checkpoint_file, "cloudtrail.poll_seconds": poll_seconds,
        "cloudtrail.since": since, "cloudtrail.max_in_flight": max_in_flight,
        "cloudtrail.metrics_port": metrics_port,
    })  # fmt: skip
    try:
        options = CollectorOptions.from_config(cfg, once=once)
        settings = kafka_settings(cfg)
        collector = CloudTrailCollector(options)
        collector.setup()
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    port = int(cfg["cloudtrail.metrics_port"])
    if port:
        register(collector.cstats)
    run_sensor_command(
        collector,
        cfg,
        settings=settings,
        metrics_port=port,
        interrupted="what Kafka had not acknowledged is read again next run",
    )
    s = collector.cstats
    err(
        f"falconet sensor cloudtrail: {s.objects['published']} log files, {s.records} records, "
        f"{s.objects['dead_letter']} unreadable files and {s.bad_records} records sent to the DLQ"
    )

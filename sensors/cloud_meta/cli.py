"""`falconet sensor cloud-meta`: publish instance, account and identity metadata."""

from __future__ import annotations

import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.cli_stream import kafka_settings
from falconet.errors import FalconetError


@click.command("cloud-meta")
@click.option("--imds", is_flag=True, default=None,
              help="Node mode: publish this node's EC2 instance identity and tags (IMDSv2).")  # fmt: skip
@click.option("--accounts", is_flag=True, default=None,
              help="Publish the accounts inventory (Organizations and/or --accounts-file).")  # fmt: skip
@click.option("--identities", is_flag=True, default=None,
              help="Publish IAM users and roles with their owner and team tags.")  # fmt: skip
@click.option("--node-name", default=None,
              help="With --imds: the node name syscall events carry in `host` "
                   "(default: syscall.host, else the host name).")  # fmt: skip
@click.option("--imds-endpoint", default=None, metavar="URL",
              help="IMDS base URL (default http://169.254.169.254).")  # fmt: skip
@click.option("--imds-ipv6", is_flag=True, default=None,
              help="Use the IPv6 IMDS endpoint http://[fd00:ec2::254].")  # fmt: skip
@click.option("--accounts-file", default=None, type=click.Path(dir_okay=False),
              help="YAML inventory: account id → name, environment, criticality, owner, tags.")  # fmt: skip
@click.option("--organizations/--no-organizations", default=None,
              help="With --accounts: list the organisation's accounts (default: yes).")  # fmt: skip
@click.option("--assume-role", "assume_roles", multiple=True, metavar="ROLE_ARN",
              help="With --identities: read the account of this role (repeatable).")  # fmt: skip
@click.option("--region", default=None, help="AWS region of the API calls.")
@click.option("--endpoint-url", default=None, metavar="URL",
              help="Organizations/IAM/STS endpoint override (a VPC endpoint, moto).")  # fmt: skip
@click.option("--refresh-seconds", default=None, type=int,
              help="Seconds between two listings of accounts and identities.")  # fmt: skip
@click.option("--imds-refresh-seconds", default=None, type=int,
              help="Seconds between two reads of the instance identity.")  # fmt: skip
@click.option("--publisher-id", default=None,
              help="Name put in the records; only records carrying it are ever deleted.")  # fmt: skip
@click.option("--metrics-port", default=None, type=int,
              help="Serve Prometheus /metrics on this port (0: off).")  # fmt: skip
@click.option("--once", is_flag=True, help="Publish one round of every source, then exit.")
@log_level_option("info")
@click.pass_context
def command(
    ctx: click.Context,
    imds: bool | None,
    accounts: bool | None,
    identities: bool | None,
    node_name: str | None,
    imds_endpoint: str | None,
    imds_ipv6: bool | None,
    accounts_file: str | None,
    organizations: bool | None,
    assume_roles: tuple[str, ...],
    region: str | None,
    endpoint_url: str | None,
    refresh_seconds: int | None,
    imds_refresh_seconds: int | None,
    publisher_id: str | None,
    metrics_port: int | None,
    once: bool,
    log_level: str,
) -> None:
    """Publish cloud and identity metadata to the compacted metadata topics, for the
    workers to join events with:

    \b
    --imds        this node's EC2 identity (account, region, zone, instance id and
                  type, image, tags)    → meta.instances.v1, key = node name
    --accounts    the accounts inventory (Organizations, YAML file on top)
                                        → meta.accounts.v1, key = account id
    --identities  IAM users and roles with owner/team tags
                                        → meta.identities.v1, key = ARN

    Run --imds on every node (beside the syscall sensor, with the same node name) and
    --accounts/--identities once per organisation. Sources are read again every
    refresh; only changes are published, and what disappeared is deleted (tombstones).
    AWS credentials come from the standard chain.

    Exit status: 0 done (stopped, or --once finished), 1 a failure while running (Kafka,
    or a --once round failed), 2 a configuration, credential or permission problem at
    start (the message names the IAM action). See docs/sensors/cloud-meta.md.
    """
    from falconet.sensors.base import run_sensor_command

    from .metrics import register
    from .options import Options
    from .sensor import CloudMetaSensor

    setup_logging(log_level, ("botocore",))
    cfg = load_config(ctx)
    overrides = {
        "cloud_meta.imds": imds, "cloud_meta.accounts": accounts,
        "cloud_meta.identities": identities, "cloud_meta.node_name": node_name,
        "cloud_meta.imds_endpoint": imds_endpoint, "cloud_meta.imds_ipv6": imds_ipv6,
        "cloud_meta.accounts_file": accounts_file, "cloud_meta.organizations": organizations,
        "cloud_meta.assume_roles": ",".join(assume_roles) if assume_roles else None,
        "cloud_meta.region": region, "cloud_meta.endpoint_url": endpoint_url,
        "cloud_meta.refresh_seconds": refresh_seconds,
        "cloud_meta.imds_refresh_seconds": imds_refresh_seconds,
        "cloud_meta.publisher_id": publisher_id, "cloud_meta.metrics_port": metrics_port,
    }  # fmt: skip
    try:
        options = Options.from_config(cfg, overrides, once=once)
        settings = kafka_settings(cfg)
        sensor = CloudMetaSensor(options, settings)
        sensor.setup()
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    if options.metrics_port:
        register(sensor.cstats)
    run_sensor_command(
        sensor,
        cfg,
        settings=settings,
        metrics_port=options.metrics_port,
        interrupted="the next start publishes what changed",
    )
    s = sensor.cstats
    err(
        "falconet sensor cloud-meta: "
        + ", ".join(
            f"{t}: {s.upserts.get(t, 0)} published, {s.deletes.get(t, 0)} deleted"
            for t in sensor.tables
        )  # fmt: skip
        + (f"; {sensor.failed_rounds} failed rounds" if sensor.failed_rounds else "")
    )
    if once and sensor.failed_rounds:
        sys.exit(1)

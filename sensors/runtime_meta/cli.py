"""`falconet sensor runtime-meta`: publish this node's containers from its container runtime."""

from __future__ import annotations

import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.cli_stream import kafka_settings
from falconet.errors import FalconetError


@click.command("runtime-meta")
@click.option("--runtime", default=None, type=click.Choice(["auto", "docker", "containerd", "cri-o"]),
              help="The container runtime (default: auto, the first that answers on its "
                   "default socket: CRI-O, containerd, Docker).")  # fmt: skip
@click.option("--socket", "socket_path", default=None, type=click.Path(dir_okay=False),
              help="The runtime's unix socket (default: its usual path).")  # fmt: skip
@click.option("--node", default=None, help="Node name written in every record (default: "
              "$NODE_NAME, else the host name).")  # fmt: skip
@click.option("--metrics-port", default=None, type=int,
              help="Serve Prometheus /metrics on this port (0: off).")  # fmt: skip
@log_level_option("info")
@click.pass_context
def command(
    ctx: click.Context,
    runtime: str | None,
    socket_path: str | None,
    node: str | None,
    metrics_port: int | None,
    log_level: str,
) -> None:
    """Publish the containers of this node's runtime (Docker through its API socket,
    containerd and CRI-O through the CRI API) to the compacted meta.containers.v1 topic,
    keyed by the 12-character container id the syscall sensor reports.

    One instance per node, beside the syscall sensor (a DaemonSet container with the
    runtime's socket mounted). It keeps up with the runtime's events (or polls the
    container list when the runtime has none), publishes a record when it changes, and a
    tombstone when a container is removed, also one removed while it was down.

    Exit status: 0 stopped, 1 a failure while running (Kafka), 2 a problem at start (no
    runtime socket, permission denied on it, a bad setting).
    """
    from falconet.sensors.base import run_sensor_command

    from .metrics import register
    from .sensor import RuntimeMetaSensor
    from .settings import RuntimeMetaSettings

    setup_logging(log_level, ("aiohttp",))
    cfg = load_config(ctx)
    try:
        settings = RuntimeMetaSettings.load(cfg, overrides={
            "runtime_meta.runtime": runtime, "runtime_meta.socket": socket_path,
            "runtime_meta.node": node, "runtime_meta.metrics_port": metrics_port,
        })  # fmt: skip
        kafka = kafka_settings(cfg)
        sensor = RuntimeMetaSensor(settings)
        sensor.setup()
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    if settings.metrics_port:
        register(sensor.rstats)
    run_sensor_command(
        sensor,
        cfg,
        settings=kafka,
        metrics_port=settings.metrics_port,
        interrupted="the next start compares everything again",
    )
    r = sensor.rstats
    err(
        f"falconet sensor runtime-meta: {r.get('published')} records, "
        f"{r.get('tombstones')} tombstones, {r.get('resyncs')} resyncs, "
        f"{r.get('api_errors')} runtime errors"
    )

"""``falconet sensor syscall``: run the eBPF syscall sensor."""

from __future__ import annotations

import logging
import sys

import click

from falconet.cli_common import err, load_config
from falconet.errors import ConfigError, FalconetError, SensorError


def _event_types(rule_paths: list[str], cfg) -> frozenset[str] | None:  # type: ignore[no-untyped-def]
    """The syscall event types the rules can match (None: capture everything supported)."""
    if not rule_paths:
        return None
    from falconet.rules.engine import Engine, expand_rule_files

    engine = Engine(cfg.engine_config())
    files = expand_rule_files(rule_paths)
    result = engine.load([str(f) for f in files])
    if not result.ok:
        for msg in result.messages:
            if msg.is_error:
                err(msg.format())
        err(f"falconet: rules failed to load ({result.summary()})")
        sys.exit(2)
    types = engine.event_types()
    return frozenset(types)


@click.command("syscall")
@click.option("--rules", "rule_paths", multiple=True, metavar="PATH",
              help="Rule file or folder (repeatable): the kernel reports only the event types "
                   "these rules can match. Default: syscall.rules, else every supported type.")
@click.option("--host", default=None, help="Node name in the events (default: syscall.host, "
              "else the host name).")
@click.option("--ring-mb", type=int, default=None, help="Ring buffer size in MiB (power of two).")
@click.option("--poll-ms", type=int, default=None, help="Ring buffer read interval (ms).")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics on this port (default: syscall.metrics_port).")
@click.option("--check", is_flag=True,
              help="Check the requirements, load and attach the program, print what would be "
                   "captured, and exit (0: the sensor can run here).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def command(ctx: click.Context, rule_paths: tuple[str, ...], host: str | None,
            ring_mb: int | None, poll_ms: int | None, metrics_port: int | None, check: bool,
            log_level: str) -> None:  # fmt: skip
    """Capture syscalls with eBPF and publish them to events.syscall.v1.

    Needs Linux >= 5.15 with BTF (/sys/kernel/btf/vmlinux), libbpf.so.1, and CAP_BPF +
    CAP_PERFMON (root works; CAP_SYS_ADMIN is not needed). Stops cleanly on SIGTERM:
    detaches, drains the ring buffer, flushes Kafka. Exit status 2 when the machine lacks
    something, with a message saying what.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = load_config(ctx)
    paths = list(rule_paths) or [p.strip() for p in cfg["syscall.rules"].split(",") if p.strip()]
    from .sensor import SyscallSensor, SyscallSettings

    try:
        types = _event_types(paths, cfg)
        settings = SyscallSettings.from_config(cfg, types, host=host, ring_mb=ring_mb, poll_ms=poll_ms)
        sensor = SyscallSensor(settings)
        if check:
            sensor.setup()
            sensor.close()
            p = sensor.plan
            click.echo(f"ok: the syscall sensor can run on this machine (host {settings.host})")
            click.echo(f"events published: {', '.join(sorted(p.emit))}")
            click.echo(f"syscalls reported by the kernel: {', '.join(sorted(p.kernel))}")
            if p.unsupported:
                click.echo(f"wanted by the rules but not produced: {', '.join(sorted(p.unsupported))}")
            return
        from falconet.kafka import KafkaSettings
        from falconet.sensors.base import run_sensor

        port = cfg["syscall.metrics_port"] if metrics_port is None else metrics_port
        stats = run_sensor(sensor, cfg, settings=KafkaSettings.from_config(cfg), metrics_port=port)
    except (SensorError, ConfigError) as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    except FalconetError as exc:  # Kafka unreachable, deliveries failed
        err(f"falconet: {exc}")
        sys.exit(1)
    click.echo(f"published {stats.events} events, {stats.drops} dropped in the kernel", err=True)

"""``falconet sink``: deliver detections from Kafka to the configured sinks."""

from __future__ import annotations

import asyncio
import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.errors import FalconetError

__all__ = ["sink"]


@click.command("sink")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this sink (repeatable); default: every sink of the configuration.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Load the configuration, build and open each sink, print OK or the problem "
    "per sink, and exit (0: all OK, 1: a sink failed, 2: bad configuration).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=0,
    show_default=True,
    help="Serve Prometheus /metrics on this port (0: off).",
)
@click.option(
    "--drain-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="On SIGTERM/SIGINT, how long to finish the batches in hand before giving "
    "up on them (they are redelivered after a restart).",
)
@log_level_option("warn")
@click.pass_context
def sink(ctx: click.Context, only: tuple[str, ...], check: bool, metrics_port: int,
         drain_seconds: float, log_level: str) -> None:  # fmt: skip
    """Consume detections.v1 and deliver to every sink of the `sinks:` list.

    Each sink has its own consumer group (`<prefix>sink-<name>`), so a slow or failing
    destination never holds back another. Offsets are committed only once the destination
    accepted a record (or the filters skipped it, or it went to the DLQ): delivery is
    at-least-once. Failures are retried with backoff, without limit; consumption pauses
    while a sink's buffer is full. SIGTERM/SIGINT stops cleanly (a second one at once).
    See docs/sinks.md.
    """
    from falconet.sinks.settings import load_sinks

    setup_logging(log_level)
    cfg = load_config(ctx)
    try:
        specs = load_sinks(cfg, only)
    except FalconetError as exc:
        err(f"falconet sink: {exc}")
        sys.exit(2)
    if check:
        sys.exit(asyncio.run(_check(specs)))
    try:
        for spec in specs:  # a destination's own validation (e.g. the URL) before any I/O
            spec.build()
    except FalconetError as exc:
        err(f"falconet sink: {exc}")
        sys.exit(2)
    from falconet.kafka import KafkaSettings
    from falconet.sinks.runner import run_sinks

    try:
        settings = KafkaSettings.from_config(cfg)
    except FalconetError as exc:
        err(f"falconet sink: {exc}")
        sys.exit(2)
    try:
        result = run_sinks(specs, settings, metrics_port=metrics_port, drain_seconds=drain_seconds)
    except FalconetError as exc:
        err(f"falconet sink: {exc}")
        sys.exit(1)
    for name, stats in result.stats.items():
        err(f"falconet sink: {name}: {stats.summary()}")
    for name, problem in result.errors.items():
        err(f"falconet sink: {name}: {problem}")
    err("falconet sink: stopped" + (" with errors" if result.errors else ""))
    sys.exit(result.exit_code)


async def _check(specs: list) -> int:
    bad = 0
    for spec in specs:
        problem = ""
        try:
            instance = spec.build()
        except FalconetError as exc:
            problem = str(exc)
        else:
            checked = ""
            try:
                await instance.open()
                checked = await instance.probe()
            except Exception as exc:  # report any failure of open() for this sink
                problem = (
                    f"{type(exc).__name__}: {exc}"
                    if not isinstance(exc, FalconetError)
                    else str(exc)
                )
            finally:
                try:
                    await instance.close()
                except Exception as exc:  # noqa: BLE001 - the problem of open() matters more
                    problem = problem or f"close failed: {exc}"
        if problem:
            bad += 1
            click.echo(f"FAILED {spec.name} ({spec.kind}): {problem}")
        else:
            click.echo(f"OK     {spec.name} ({spec.kind}): {checked}")
    return 1 if bad else 0

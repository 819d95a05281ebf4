"""`falconet sensor ...`: the producers that feed the event topics.

Each sensor package exposes its click command as ``command`` in its ``cli`` module; they
are attached here lazily so ``falconet --help`` never imports boto3, numpy or libbpf.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

#: (command name, module holding ``command``)
SENSORS = (
    ("syscall", "falconet.sensors.syscall.cli"),
    ("cloudtrail", "falconet.sensors.cloudtrail.cli"),
    ("k8s-audit", "falconet.sensors.k8s_audit.cli"),
    ("k8s-meta", "falconet.sensors.k8s_meta.cli"),
    ("cloud-meta", "falconet.sensors.cloud_meta.cli"),
    ("runtime-meta", "falconet.sensors.runtime_meta.cli"),
)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, module in SENSORS if importlib.util.find_spec(module) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        for cmd_name, module in SENSORS:
            if cmd_name == name:
                try:
                    return importlib.import_module(module).command
                except ModuleNotFoundError as exc:
                    raise click.ClickException(
                        f"sensor {name!r} is not available: {exc}"
                    ) from None
        return None


@click.group(cls=_LazyGroup)
def sensor() -> None:
    """Run a sensor: capture events and publish them to the event topics."""

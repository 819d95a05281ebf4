"""Helpers shared by the command modules (kept apart so they can import each other)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .config import Config
from .errors import FalconetError
from .priority import Priority

PRIORITY_NAMES = [p.name.lower() for p in Priority] + ["info"]


def bundled_rules_dir() -> Path:
    """falconet's own rule files, shipped in the package."""
    return Path(str(resources.files("falconet.rules") / "library"))


def bundled_scenario_dir(name: str = "intrusion") -> Path:
    """A recorded scenario shipped in the package."""
    return Path(str(resources.files("falconet.scenarios") / name))


def err(message: str) -> None:
    click.echo(message, err=True)


def load_engine(rules: Sequence[str], config: Config, *, quiet_warnings: bool = False):
    from falconet.rules.engine import Engine

    engine = Engine(config.engine_config())
    result = engine.load(list(rules))
    for msg in result.messages:
        if msg.is_error or not quiet_warnings:
            err(msg.format())
    if not result.ok:
        err(f"falconet: rules failed to load ({result.summary()})")
        sys.exit(1)
    return engine, result


def load_config(ctx: click.Context, **overrides: Any) -> Config:
    try:
        return Config.load(ctx.obj.get("config_path"), overrides=overrides)
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)



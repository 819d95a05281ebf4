"""Helpers shared by the command modules (kept apart so they can import each other)."""

from __future__ import annotations

import logging
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


#: the values of every long-running command's ``--log-level``
LOG_LEVELS = {"crit": logging.CRITICAL, "error": logging.ERROR, "warn": logging.WARNING,
              "info": logging.INFO, "debug": logging.DEBUG}  # fmt: skip


def log_level_option(default: str = "info") -> Any:
    """The ``--log-level`` option of a long-running command."""
    return click.option(
        "--log-level",
        type=click.Choice(list(LOG_LEVELS)),
        default=default,
        show_default=True,
        help="Least severe log lines shown (stderr, one line per event of interest).",
    )


def setup_logging(level: str, chatty: Sequence[str] = ()) -> None:
    """Structured one-line logs on stderr at ``level``; the ``chatty`` libraries' loggers
    (aiohttp, botocore, ...) are kept at warning or above."""
    value = LOG_LEVELS[level]
    logging.basicConfig(level=value, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in chatty:
        logging.getLogger(name).setLevel(max(logging.WARNING, value))

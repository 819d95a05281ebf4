"""The settings every sink has, and the loader of the ``sinks:`` list of the configuration.

A sink is one mapping of the ``sinks:`` list in the YAML configuration::

    sinks:
      - name: soc            # names the consumer group and the FALCONET_SINK_SOC_* variables
        type: webhook        # a key of falconet.sinks.registry.DESTINATIONS
        url: https://soc.example/hook
        min_priority: warning

Its options are :data:`COMMON` (filters, dedup, batching, retry, backpressure, DLQ), the
HTTP options when the destination speaks HTTP, and the destination's own; each one can be
overridden by ``FALCONET_SINK_<NAME>_<KEY>`` (see :class:`~falconet.sinks.base.Option`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from falconet.config import Config
from falconet.errors import ConfigError
from falconet.priority import Priority

from . import registry
from .base import BatchingSink, Option, SinkOptions
from .http import HTTP_OPTIONS

__all__ = ["COMMON", "Common", "SinkSpec", "load_sinks", "options_of"]

COMMON: tuple[Option, ...] = (
    Option("type", "", str, "Destination type: " + ", ".join(sorted(registry.DESTINATIONS)) + ".",
           required=True),
    Option("min_priority", "debug", str, "Deliver only detections at least this severe (emergency … debug)."),
    Option("sources", [], list, "Deliver only detections of these sources (`syscall`, `aws_cloudtrail`, `k8s_audit`); empty: all."),
    Option("tags", [], list, "Deliver only detections carrying at least one of these tags; empty: all."),
    Option("rules", [], list, "Deliver only detections of these rules (names, shell globs such as `Read *`); empty: all."),
    Option("dedup_seconds", 0.0, float, "Fold repeats of a detection (same rule, host name and output text) seen within this many seconds into one record with a count; 0: off."),
    Option("batch_events", None, int, "Most records in one request (default: the destination's)."),
    Option("batch_bytes", None, int, "Most bytes in one request (default and cap: the destination's limit)."),
    Option("batch_ms", 1000, int, "Longest a record waits for its batch to fill (ms)."),
    Option("retry_initial_ms", 500, int, "First retry delay bound (ms); it doubles per attempt, with full jitter."),
    Option("retry_max_ms", 60_000, int, "Largest retry delay bound (ms); a longer `Retry-After` is still honoured."),
    Option("max_buffered", 10_000, int, "Records held in memory (consumed, not yet delivered) before consumption pauses."),
    Option("dlq_topic", "dlq.v1", str, "Topic (without the prefix) of records the destination refused for good."),
)  # fmt: skip


def options_of(cls: type[BatchingSink]) -> tuple[Option, ...]:
    """Every option of a destination: COMMON (with its defaults), HTTP, then its own."""
    defaults = {"batch_events": cls.default_batch_events, "batch_bytes": cls.max_batch_bytes}
    common = tuple(
        dataclasses.replace(o, default=defaults[o.key]) if o.key in defaults else o for o in COMMON
    )
    return common + (HTTP_OPTIONS if cls.uses_http else ()) + tuple(cls.options)


@dataclass(frozen=True, slots=True)
class Common:
    """The framework's view of a sink's common options, validated."""

    min_priority: Priority
    sources: frozenset[str]
    tags: frozenset[str]
    rules: tuple[str, ...]
    dedup_seconds: float
    batch_events: int
    batch_bytes: int
    batch_ms: int
    retry_initial_ms: int
    retry_max_ms: int
    max_buffered: int
    dlq_topic: str

    @classmethod
    def from_options(cls, opts: Mapping[str, Any], max_batch_bytes: int,
                     name: str = "") -> Common:  # fmt: skip
        where = f"sink {name!r}: " if name else ""
        try:
            prio = Priority.parse(str(opts["min_priority"]))
        except ValueError as exc:
            raise ConfigError(f"{where}min_priority: {exc}") from None
        for key in ("batch_events", "batch_bytes", "retry_initial_ms", "max_buffered"):
            if int(opts[key]) < 1:
                raise ConfigError(f"{where}{key} must be at least 1, not {opts[key]}")
        for key in ("batch_ms", "dedup_seconds"):
            if opts[key] < 0:
                raise ConfigError(f"{where}{key} must not be negative, not {opts[key]}")
        if int(opts["retry_max_ms"]) < int(opts["retry_initial_ms"]):
            raise ConfigError(f"{where}retry_max_ms must be at least retry_initial_ms")
        if not str(opts["dlq_topic"]).strip():
            raise ConfigError(f"{where}dlq_topic must not be empty")
        return cls(
            min_priority=prio,
            sources=frozenset(opts["sources"]),
            tags=frozenset(opts["tags"]),
            rules=tuple(opts["rules"]),
            dedup_seconds=float(opts["dedup_seconds"]),
            batch_events=int(opts["batch_events"]),
            batch_bytes=min(int(opts["batch_bytes"]), max_batch_bytes),
            batch_ms=int(opts["batch_ms"]),
            retry_initial_ms=int(opts["retry_initial_ms"]),
            retry_max_ms=int(opts["retry_max_ms"]),
            max_buffered=int(opts["max_buffered"]),
            dlq_topic=str(opts["dlq_topic"]).strip(),
        )

    def rule_matches(self, rule: str) -> bool:
        return any(fnmatch.fnmatchcase(rule, pattern) for pattern in self.rules)


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One configured sink: its name, destination class, resolved options."""

    name: str
    cls: type[BatchingSink]
    options: SinkOptions
    common: Common

    @property
    def kind(self) -> str:
        return self.cls.kind

    def build(self) -> BatchingSink:
        return self.cls(self.name, self.options)


def load_sinks(cfg: Config, only: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> list[SinkSpec]:  # fmt: skip
    """The sinks of the configuration (``only``: these names), validated and resolved.

    Raises ConfigError with a message naming the sink and the setting at fault.
    """
    env = os.environ if environ is None else environ
    entries = list(cfg.sinks)
    if not entries:
        raise ConfigError(
            "no sinks configured: add a `sinks:` list to the configuration file "
            "(docs/sinks.md), e.g. `sinks: [{name: soc, type: webhook, url: https://...}]`"
        )
    specs: list[SinkSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"sinks[{i}]: each sink is a mapping with `name:` and `type:`")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"sinks[{i}]: `name:` is missing (it names the consumer group)")
        if name in seen:
            raise ConfigError(f"sinks[{i}]: duplicate sink name {name!r}")
        seen.add(name)
        kind = env.get(Option("type", "", str, "").env(name)) or entry.get("type")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"sink {name!r}: `type:` is missing")
        try:
            cls = registry.destination(kind)
        except ConfigError as exc:
            raise ConfigError(f"sink {name!r}: {exc}") from None
        except ImportError as exc:
            raise ConfigError(f"sink {name!r}: type {kind!r} is not available ({exc})") from None
        options = SinkOptions(name, options_of(cls), entry, env)
        common = Common.from_options(options, cls.max_batch_bytes, name)
        specs.append(SinkSpec(name, cls, options, common))
    if only:
        unknown = sorted(set(only) - seen)
        if unknown:
            raise ConfigError(
                f"--only {', '.join(unknown)}: no such sink (configured: {', '.join(sorted(seen))})"
            )
        specs = [s for s in specs if s.name in only]
    return specs

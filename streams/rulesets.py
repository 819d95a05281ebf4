"""Rule sets on Kafka: pushed to the compacted ``rules.v1``, followed by every worker.

A rule set is one record: key = its name (``default``), value = JSON with the rule files'
names and contents in load order and a version (sha256 of the contents):

    {"v": 1, "name": "default", "version": "9f2c…", "pushed_at": 1718…, "pushed_by": "ana@laptop",
     "files": [{"name": "falco_rules.yaml", "content": "..."}, ...]}

A rule set may carry policy files (``docs/policy.md``): files whose YAML is a list of
``- policy:`` items are loaded as policies, the others as rules, each kind in its order.

Each worker follows the topic from the beginning with its own reader (no consumer group:
every worker must see every rule set), compiles a new set (rules and policies) off the hot path
and swaps both in between records, atomically. An invalid set is refused: the worker keeps running the
previous one, logs the errors with their positions, and says so in its status record on
``status.v1`` (key = worker id), which `falconet rules status` shows.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from falconet.errors import FalconetError
from falconet.kafka import KafkaSettings
from falconet.rules.engine import Engine, EngineConfig, expand_rule_files
from falconet.rules.policy import PolicySet, load_policy, split_policy_files
from falconet.rules.result import LoadResult

from .topics import RULES, STATUS

log = logging.getLogger("falconet.rules")

DEFAULT_NAME = "default"


class RulesetError(FalconetError):
    """A rule set message cannot be read, or a push failed."""


@dataclass(frozen=True, slots=True)
class Ruleset:
    name: str
    version: str
    files: tuple[tuple[str, str], ...]
    pushed_at: int = 0
    pushed_by: str = ""

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], name: str = DEFAULT_NAME) -> Ruleset:
        files: list[tuple[str, str]] = []
        for p in expand_rule_files(paths):
            try:
                files.append((p.name, p.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise RulesetError(f"cannot read rules file {p}: {exc}") from None
        return cls.of(name, files)

    @classmethod
    def of(cls, name: str, files: Sequence[tuple[str, str]]) -> Ruleset:
        h = hashlib.sha256()
        for fname, content in files:
            h.update(fname.encode() + b"\0" + content.encode("utf-8", "surrogatepass") + b"\0")
        try:
            who = f"{getpass.getuser()}@{socket.gethostname()}"
        except (KeyError, OSError):
            who = socket.gethostname()
        return cls(name, h.hexdigest()[:16], tuple(files), time.time_ns(), who)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": 1,
                "name": self.name,
                "version": self.version,
                "pushed_at": self.pushed_at,
                "pushed_by": self.pushed_by,
                "files": [{"name": n, "content": c} for n, c in self.files],
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> Ruleset:
        try:
            obj = orjson.loads(value)
            files = tuple((f["name"], f["content"]) for f in obj["files"])
            if not all(isinstance(n, str) and isinstance(c, str) for n, c in files):
                raise TypeError("file names and contents must be strings")
            return cls(
                str(obj["name"]),
                str(obj["version"]),
                files,
                int(obj.get("pushed_at", 0)),
                str(obj.get("pushed_by", "")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RulesetError(f"not a rule set record: {exc}") from None


@dataclass(frozen=True, slots=True)
class Compiled:
    """What a worker evaluates with: the engine and the policies of one rule set."""

    engine: Engine
    policy: PolicySet


def compile_ruleset(
    files: Sequence[tuple[str, str]], config: EngineConfig
) -> tuple[Compiled, LoadResult]:
    """Load a rule set's rule files, then its policy files (policies naming rules the set
    does not have get warnings); one result holds the messages of both."""
    rule_files, policy_files = split_policy_files(files)
    engine = Engine(config)
    result = engine.load_texts(rule_files)
    policy = PolicySet()
    if result.ok and policy_files:
        policy, result = load_policy(policy_files, engine, result)
    return Compiled(engine, policy), result


@dataclass(slots=True)
class LoadedRules:
    """What a worker runs, and what happened to the last set it was given."""

    version: str = ""
    origin: str = ""  # "files" or "push"
    loaded_at: int = 0
    rules: int = 0
    policies: int = 0
    refused_version: str = ""
    refused_errors: list[str] = field(default_factory=list)


class RulesetHolder:
    """Holds the engine and policies a worker evaluates with; :meth:`apply` swaps both
    atomically (readers take :attr:`active` once per event)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.active = Compiled(Engine(config), PolicySet())
        self.state = LoadedRules()
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self.active.engine

    @property
    def policy(self) -> PolicySet:
        return self.active.policy

    def apply(self, ruleset: Ruleset, origin: str) -> LoadResult:
        """Compile ``ruleset``; swap it in if it loads, else keep the current one."""
        compiled, result = compile_ruleset(ruleset.files, self.config)
        engine = compiled.engine
        with self._lock:
            if result.ok:
                self.active = compiled  # one reference assignment: atomic for the agents
                self.state.version = ruleset.version
                self.state.origin = origin
                self.state.loaded_at = time.time_ns()
                self.state.rules = len(engine.rules)
                self.state.policies = len(compiled.policy)
                self.state.refused_version = ""
                self.state.refused_errors = []
                log.info(
                    "rules loaded version=%s origin=%s rules=%d policies=%d warnings=%d",
                    ruleset.version, origin, len(engine.rules), len(compiled.policy),
                    len(result.warnings),
                )  # fmt: skip
            else:
                self.state.refused_version = ruleset.version
                self.state.refused_errors = [m.format() for m in result.errors]
                log.error(
                    "rules refused version=%s keeping=%s errors=%s",
                    ruleset.version, self.state.version or "none",
                    " | ".join(m.format().splitlines()[0] for m in result.errors),
                )  # fmt: skip
        return result


class RulesFollower(threading.Thread):
    """Follows ``rules.v1`` from the beginning and applies each new rule set."""

    def __init__(
        self,
        settings: KafkaSettings,
        holder: RulesetHolder,
        on_change: Callable[[], None] = lambda: None,
        name: str = DEFAULT_NAME,
    ) -> None:
        super().__init__(name="falconet-rules", daemon=True)
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.holder = holder
        self.on_change = on_change
        self.ruleset_name = name
        self._halt = threading.Event()
        self._consumer = Consumer(
            settings.confluent(
                **{
                    "group.id": f"falconet-rules-{os.getpid()}",  # offsets are never committed
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                }
            )
        )
        self._consumer.assign([TopicPartition(settings.topic(RULES), 0, OFFSET_BEGINNING)])

    def _handle(self, msg: Any) -> None:
        key = (msg.key() or b"").decode("utf-8", "replace")
        if key != self.ruleset_name or msg.value() is None:
            return
        try:
            ruleset = Ruleset.decode(msg.value())
        except RulesetError as exc:
            log.error("ignoring bad record on the rules topic offset=%d: %s", msg.offset(), exc)
            return
        if ruleset.version in (self.holder.state.version, self.holder.state.refused_version):
            return
        self.holder.apply(ruleset, "push")
        self.on_change()

    def catch_up(self, timeout: float = 30.0) -> Ruleset | None:
        """Read the topic to its end now; returns the latest rule set (not applied)."""
        latest: Ruleset | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF: we are at the end
                    return latest
                log.warning("rules topic: %s", msg.error())
                continue
            key = (msg.key() or b"").decode("utf-8", "replace")
            if key == self.ruleset_name and msg.value() is not None:
                try:
                    latest = Ruleset.decode(msg.value())
                except RulesetError as exc:
                    log.error("ignoring bad record on the rules topic: %s", exc)
        raise RulesetError(f"could not read the rules topic within {timeout:.0f}s")

    def run(self) -> None:
        while not self._halt.is_set():
            msg = self._consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            try:
                self._handle(msg)
            except Exception:  # never let the follower die
                log.exception("rules follower failed on offset %d", msg.offset())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self._consumer.close()


def push(settings: KafkaSettings, ruleset: Ruleset, timeout: float = 30.0) -> None:
    """Publish a rule set (the caller validated it) and wait for the broker's ack."""
    from confluent_kafka import Producer

    producer = Producer(settings.confluent(**{"enable.idempotence": True, "acks": "all",
                                              "message.max.bytes": 16 * 1024 * 1024}))  # fmt: skip
    errors: list[str] = []
    producer.produce(
        settings.topic(RULES),
        key=ruleset.name.encode(),
        value=ruleset.encode(),
        on_delivery=lambda err, msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(timeout) or errors:
        raise RulesetError(f"pushing the rule set failed: {errors[0] if errors else 'timeout'}")


def read_compacted(settings: KafkaSettings, topic: str, timeout: float = 15.0) -> dict[str, bytes]:
    """The latest value of every key of a compacted topic (tombstones removed); what was
    read within ``timeout``."""
    from falconet.kafka import read_compacted as read

    return read(settings, topic, timeout, complete=False, error=RulesetError)


def status_topic(settings: KafkaSettings) -> str:
    return settings.topic(STATUS)

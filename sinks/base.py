"""What every sink shares: the record a destination receives, its options, its answer.

A destination is a :class:`BatchingSink` subclass that implements one method,
:meth:`BatchingSink.write`: send this batch, say which records the service did not accept.
Everything else - consuming ``detections.v1`` in its own consumer group, filters, the
dedup window, cutting batches by count, bytes and time, retry with backoff and jitter,
the dead-letter topic, backpressure, offset commits, metrics - belongs to the framework
(:mod:`falconet.sinks.runner`), so every destination behaves the same way.

The contract of ``write``:

* return :data:`ACCEPTED` when the service took every record;
* return a :class:`WriteResult` listing the records it refused, by index, when the
  protocol says which (Elasticsearch ``_bulk`` items, Splunk per-event errors): the
  framework retries the retryable ones and dead-letters the others;
* raise :class:`~falconet.errors.SinkError` when the whole batch failed
  (``retryable`` decides between retry and the DLQ).

``write`` may be called again with the same records (a retry): at-least-once delivery,
so a destination that can deduplicate should key on ``record.id``.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from falconet.detection import Detection
from falconet.errors import ConfigError

__all__ = [
    "ACCEPTED",
    "BatchingSink",
    "ItemFailure",
    "Option",
    "SinkOptions",
    "SinkRecord",
    "WriteResult",
]


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One detection to deliver.

    ``obj`` is what a destination serializes: the Falco JSON alert with falconet's fields
    (as on ``detections.v1``); when the dedup window folded repeats into this record it
    also carries ``"dedup": {"count": n, "first_time": ..., "last_time": ...}``.
    ``raw`` is the Kafka record value as consumed (what a dead letter keeps).
    """

    obj: dict[str, Any]
    detection: Detection
    raw: bytes
    topic: str = ""
    partition: int = -1
    offset: int = -1

    @property
    def id(self) -> str:
        return self.detection.id

    @classmethod
    def from_json(
        cls, raw: bytes, topic: str = "", partition: int = -1, offset: int = -1
    ) -> SinkRecord:
        """Parse one ``detections.v1`` value. Raises ``ValueError``/``KeyError`` on bad input."""
        import orjson

        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError("a detection must be a JSON object")
        return cls(obj, Detection.from_json_obj(obj), raw, topic, partition, offset)


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One record of a batch the service did not accept."""

    index: int  # position in the batch given to write()
    reason: str  # the service's words (status, error type, message), no payload
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The answer of :meth:`BatchingSink.write`: the records that were not accepted."""

    failures: tuple[ItemFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


#: Every record of the batch was accepted.
ACCEPTED = WriteResult()


_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Option:
    """One setting of a sink.

    In YAML it sits in the sink's own mapping (``sinks: [{name: soc, type: splunk,
    token_file: ...}]``); in the environment it is ``FALCONET_SINK_<NAME>_<KEY>``, the
    sink name upper-cased with ``-`` as ``_``. A ``secret`` option is read only from the
    environment or from the file named by its ``<key>_file`` companion, never from YAML.
    """

    key: str
    default: Any
    kind: type
    doc: str
    secret: bool = False
    required: bool = False

    def env(self, sink_name: str) -> str:
        return f"FALCONET_SINK_{sink_name.upper().replace('-', '_')}_{self.key.upper()}"


class SinkOptions(Mapping[str, Any]):
    """The resolved options of one sink: defaults < YAML < environment (< secret files)."""

    def __init__(self, name: str, options: Sequence[Option], yaml_values: Mapping[str, Any],
                 environ: Mapping[str, str] | None = None) -> None:  # fmt: skip
        if not _NAME.match(name):
            raise ConfigError(
                f"sink name {name!r}: use lower-case letters, digits, '-' or '_' (it names the "
                "consumer group and the environment variables)"
            )
        env = os.environ if environ is None else environ
        self.name = name
        self._options = {o.key: o for o in options}
        known = set(self._options) | {f"{o.key}_file" for o in options if o.secret}
        unknown = sorted(set(yaml_values) - known - {"name", "type"})
        if unknown:
            raise ConfigError(f"sink {name!r}: unknown setting(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for o in options:
            raw: Any = o.default
            if o.secret and o.key in yaml_values:
                raise ConfigError(
                    f"sink {name!r}: {o.key} is a secret: set {o.env(name)} or {o.key}_file, "
                    "not the YAML value"
                )
            if o.key in yaml_values:
                raw = yaml_values[o.key]
            if o.secret:
                file_key = f"{o.key}_file"
                path = env.get(f"{o.env(name)}_FILE") or yaml_values.get(file_key)
                if path:
                    try:
                        raw = Path(path).read_text().strip()
                    except OSError as e:
                        raise ConfigError(
                            f"sink {name!r}: cannot read {file_key} {path}: {e.strerror}"
                        ) from None
            if o.env(name) in env:
                raw = env[o.env(name)]
            values[o.key] = _coerce(name, o, raw)
            if o.required and values[o.key] in ("", None, [], ()):
                hint = f"{o.env(name)}" + (
                    f" or {o.key}_file" if o.secret else f" or `{o.key}:` in the sink's YAML"
                )
                raise ConfigError(f"sink {name!r}: {o.key} is required ({hint})")
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # never show secrets
        shown = {
            k: ("***" if self._options[k].secret and v else v) for k, v in self._values.items()
        }
        return f"SinkOptions({self.name!r}, {shown})"


def _coerce(sink: str, o: Option, raw: Any) -> Any:
    try:
        if o.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if o.kind is list:
            if isinstance(raw, list | tuple):
                return [str(x) for x in raw]
            return [x.strip() for x in str(raw).split(",") if x.strip()]
        if o.kind is dict:
            if isinstance(raw, Mapping):
                return {str(k): str(v) for k, v in raw.items()}
            # KEY=VALUE,KEY2=VALUE2 from the environment
            pairs = [p for p in str(raw).split(",") if p.strip()]
            return dict(p.split("=", 1) for p in pairs)
        if raw is None:
            return o.default
        return o.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"sink {sink!r}: {o.key}={raw!r} is not a valid {o.kind.__name__}"
        ) from None


class BatchingSink(abc.ABC):
    """A destination. Subclasses set the class attributes and implement :meth:`write`.

    The framework builds one instance per configured sink with its resolved options,
    calls :meth:`open` once, then :meth:`write` with batches no larger than
    ``options["batch_events"]`` records and ``options["batch_bytes"]`` bytes as measured
    by :meth:`record_size` (capped by :attr:`max_batch_bytes`), never two writes of one
    sink at the same time, and :meth:`close` at shutdown.
    """

    #: the ``type:`` of the sink in the configuration
    kind: ClassVar[str] = ""
    #: one line for docs and ``falconet sink --help``
    summary: ClassVar[str] = ""
    #: the destination's own options (the framework adds the common ones)
    options: ClassVar[tuple[Option, ...]] = ()
    #: the largest request the service accepts, in the units of record_size()
    max_batch_bytes: ClassVar[int] = 4 * 1024 * 1024
    #: default of the batch_events option for this destination
    default_batch_events: ClassVar[int] = 500
    #: True when the destination speaks HTTP(S): the framework adds the HTTP options
    #: (TLS, CA, client certificate, proxy, timeout, gzip, concurrency)
    uses_http: ClassVar[bool] = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.opts = options

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect or authenticate. May raise SinkError (retryable: the framework retries)."""

    @abc.abstractmethod
    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        """Deliver ``batch``; see the module docstring for the contract."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Called once, also after a failed open()."""

    async def probe(self) -> str:
        """Check, after open() and without delivering anything, that the destination answers
        and takes our credentials, as far as its protocol allows; raise SinkError if not.
        Returns what was checked, for ``falconet sink --check``."""
        return "configuration only (this destination has no side-effect-free check)"

    def record_size(self, record: SinkRecord) -> int:
        """Bytes ``record`` adds to a request (used to cut batches under the limits)."""
        return len(record.raw) + 1

"""What every source of the collector hands over: references to log files, and how to read them.

A source (SQS notifications, a bucket listing, a local directory) finds CloudTrail log files
and names each one with an :class:`ObjectRef`. The collector reads it through the source
(:meth:`Source.read`), publishes its records, and tells the source the outcome
(:meth:`Source.finished`), which is when an SQS message may be deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from falconet.errors import SensorError

S3 = "s3"
FILE = "file"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One log file: an S3 object (``bucket``, ``key``) or a local file (``key`` = its path).

    ``etag`` is what the source knows of the version (the S3 ETag, a local file's
    ``size-mtime_ns``), ``""`` when it does not know it yet; ``token`` lets a source find
    its own bookkeeping again (the SQS message an object came from).
    """

    kind: str
    bucket: str
    key: str
    etag: str = ""
    size: int = -1
    token: str = ""

    @property
    def id(self) -> str:
        """The checkpoint id: ``s3://bucket/key`` or ``file://<absolute path>``."""
        if self.kind == S3:
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.key}"

    @property
    def origin(self) -> dict[str, str]:
        """The ``origin`` of the envelopes of its records (docs/events.md)."""
        if self.kind == S3:
            return {"kind": S3, "bucket": self.bucket, "key": self.key}
        return {"kind": FILE, "path": self.key}

    def where(self) -> dict[str, str | int]:
        """Details for logs and DLQ records."""
        if self.kind == S3:
            return {"bucket": self.bucket, "key": self.key, "etag": self.etag}
        return {"path": self.key, "version": self.etag}


@dataclass(frozen=True, slots=True)
class Fetched:
    """The bytes of a log file as stored (gzip or not) and the version that was read."""

    ref: ObjectRef
    data: bytes
    etag: str


class FetchError(SensorError):
    """A log file could not be read. ``permanent``: retrying cannot help (it was deleted)."""

    def __init__(self, message: str, *, permanent: bool = False, kind: str = "s3") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one log file once the collector is done with it.

    ``status``: ``published`` (its records, and DLQ records for the bad ones, are
    acknowledged by Kafka), ``dead_letter`` (the whole file went to the DLQ, acknowledged),
    ``skipped`` (already checkpointed with this version), ``failed`` (nothing may be
    acknowledged: retry later), ``abandoned`` (the collector is stopping).
    """

    ref: ObjectRef
    status: str
    etag: str = ""
    records: int = 0
    problems: int = 0
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        """Whether the source may forget the file (checkpoint it, delete its message)."""
        return self.status in ("published", "dead_letter", "skipped")


class Source(Protocol):
    """Where log files come from (see the module docstring)."""

    name: str

    def check(self) -> None:
        """Fail early with a :class:`SensorError` for the operator (credentials, access)."""

    def start(self, dead_letter: Callable[..., Any]) -> None:
        """Begin (e.g. start receiving); ``dead_letter`` is the Emitter's, for inputs that
        are not files (an SQS body that is no notification)."""

    def take(self, free: int) -> list[ObjectRef]:
        """Up to ``free`` log files to read next (may return more to keep a group whole)."""

    def read(self, ref: ObjectRef) -> Fetched:
        """The stored bytes of ``ref``; :class:`FetchError` when it cannot be read."""

    def finished(self, outcome: Outcome) -> None:
        """Acknowledge (or release) ``outcome.ref`` at the source."""

    def tick(self) -> None:
        """Housekeeping while objects are in flight (e.g. extend SQS visibility)."""

    def drained(self) -> bool:
        """For ``--once``: nothing is left to take and nothing more will come."""

    def close(self) -> None:
        """Stop taking work; release what was taken but never handed over."""

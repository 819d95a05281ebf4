"""The collector's checkpoint: which log files (and which versions) it has published.

A local file of JSON lines, appended to and fsync'ed once per finished log file, so what
was acknowledged before a crash is known after it::

    {"v": 1, "kind": "falconet-cloudtrail-checkpoint"}
    {"id": "s3://trail/AWSLogs/…/x.json.gz", "etag": "9dd4…", "ts": 1709288460123000000, "records": 42, "status": "published"}
    {"id": "file:///var/log/ct/y.json.gz", "etag": "5120-1709288460000000000", "ts": …, "records": 0, "status": "dead_letter"}
    {"mark": "s3://trail/AWSLogs/123456789012/CloudTrail/us-east-1/", "day": "2024/03/01"}

* an **object line** says the file ``id`` was finished with that ``etag`` (the S3 ETag, or
  a local file's ``size-mtime_ns``): its records (and DLQ records for what could not be
  used) were acknowledged by Kafka. The latest line of an id wins. A file whose version
  changed (an object rewritten, a local file modified) is read again;
* a **mark line** is where a bucket listing of one ``…/CloudTrail/<region>/`` folder
  starts next time (its ``StartAfter``), see :mod:`.listing`.

The file only grows by appends; when it holds more than twice the live entries it is
rewritten (to a temporary file, fsync'ed, then renamed over the old one, and the folder
fsync'ed), so a crash leaves either the old or the new file. Entries a source no longer
needs (files deleted, listing days passed) are pruned at that rewrite. A torn last line
(a crash in the middle of an append) is ignored: that file had not been acknowledged.
A second collector on the same file is refused (an advisory lock on ``<file>.lock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from falconet.errors import SensorError

log = logging.getLogger("falconet.sensor.cloudtrail")

HEADER = {"v": 1, "kind": "falconet-cloudtrail-checkpoint"}
#: Rewrite the file when it holds this many more lines than live entries (and twice as many).
_SLACK_LINES = 1000


def default_path() -> Path:
    """``$XDG_STATE_HOME/falconet/cloudtrail-checkpoint.jsonl`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "falconet" / "cloudtrail-checkpoint.jsonl"


@dataclass(frozen=True, slots=True)
class Entry:
    """One finished log file."""

    etag: str
    ts: int
    records: int
    status: str


class Checkpoint:
    """The checkpoint file of one collector (see the module docstring). Not thread-safe:
    the collector uses it from its main thread only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, Entry] = {}
        self.marks: dict[str, str] = {}
        self._lines = 0
        self._file: IO[bytes] | None = None
        self._lock: IO[bytes] | None = None

    # -- open / close -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        """Lock and load the checkpoint at ``path`` (created with its folder when missing)."""
        cp = cls(path)
        try:
            cp.path.parent.mkdir(parents=True, exist_ok=True)
            cp._acquire_lock()
            bad = cp._load()
            cp._file = open(cp.path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            cp.close()
            raise SensorError(f"checkpoint file {cp.path}: {exc.strerror or exc}") from None
        except SensorError:
            cp.close()
            raise
        if bad:
            log.warning("cloudtrail.checkpoint path=%s unreadable_lines=%d (ignored)", cp.path, bad)
        if cp._lines == 0:
            cp.compact()  # a new file starts with its header
        log.info(
            "cloudtrail.checkpoint path=%s objects=%d marks=%d",
            cp.path,
            len(cp.entries),
            len(cp.marks),
        )
        return cp

    def _acquire_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = open(lock_path, "a+b")  # noqa: SIM115 - closed by close()
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().decode(errors="replace").strip() or "?"
            self._lock.close()
            self._lock = None
            raise SensorError(
                f"checkpoint file {self.path} is in use by another collector (pid {holder}); "
                "give each collector its own cloudtrail.checkpoint_file"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()).encode())
        self._lock.flush()

    def _load(self) -> int:
        """Read the file; returns the number of lines that could not be used."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        lines = data.split(b"\n")
        bad = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            self._lines += 1
            try:
                obj = orjson.loads(line)
                if i == 0 or obj.get("kind") == HEADER["kind"]:
                    if obj.get("kind") != HEADER["kind"]:
                        raise SensorError(
                            f"{self.path} is not a falconet CloudTrail checkpoint file "
                            "(its first line is not the header)"
                        )
                    continue
                self._apply(obj)
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
                if i == 0:
                    raise SensorError(
                        f"{self.path} is not a falconet CloudTrail checkpoint file"
                    ) from None
                bad += 1
        return bad

    def _apply(self, obj: dict[str, Any]) -> None:
        if "mark" in obj:
            self.marks[str(obj["mark"])] = str(obj["day"])
        else:
            self.entries[str(obj["id"])] = Entry(
                str(obj["etag"]), int(obj["ts"]), int(obj["records"]), str(obj["status"])
            )

    def close(self) -> None:
        """Rewrite the file if it is mostly stale lines, then release it and its lock."""
        if self._file is not None:
            try:
                if self._lines > len(self.entries) + len(self.marks) + 1:
                    self.compact()
            finally:
                self._file.close()
                self._file = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------------------
    def done(self, object_id: str, etag: str) -> bool:
        """Whether ``object_id`` was finished with version ``etag`` (``""``: unknown → no)."""
        entry = self.entries.get(object_id)
        return entry is not None and bool(etag) and entry.etag == etag

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    # -- updates ---------------------------------------------------------------------------------
    def record(self, object_id: str, etag: str, records: int, status: str) -> None:
        """Remember a finished file, durably (appended and fsync'ed) before returning."""
        entry = Entry(etag, time.time_ns(), records, status)
        self.entries[object_id] = entry
        self._append(
            {"id": object_id, "etag": etag, "ts": entry.ts, "records": records, "status": status}
        )

    def set_mark(self, prefix_id: str, day: str) -> None:
        """Remember where the listing of ``prefix_id`` starts next time."""
        if self.marks.get(prefix_id) == day:
            return
        self.marks[prefix_id] = day
        self._append({"mark": prefix_id, "day": day})

    def prune(self, drop: Callable[[str, Entry], bool]) -> int:
        """Forget the entries ``drop`` selects (the file shrinks at the next rewrite)."""
        gone = [k for k, e in self.entries.items() if drop(k, e)]
        for k in gone:
            del self.entries[k]
        if gone:
            self._maybe_compact()
        return len(gone)

    def _append(self, obj: dict[str, Any]) -> None:
        if self._file is None:
            raise SensorError(f"checkpoint file {self.path} is closed")
        try:
            self._file.write(orjson.dumps(obj) + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise SensorError(
                f"cannot write checkpoint file {self.path}: {exc.strerror or exc}"
            ) from None
        self._lines += 1
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        live = len(self.entries) + len(self.marks) + 1
        if self._lines > 2 * live and self._lines - live > _SLACK_LINES:
            self.compact()

    def compact(self) -> None:
        """Rewrite the file with the live entries only (atomic: temp file, fsync, rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        lines = [orjson.dumps(HEADER)]
        lines += [
            orjson.dumps(
                {"id": k, "etag": e.etag, "ts": e.ts, "records": e.records, "status": e.status}
            )
            for k, e in self.entries.items()
        ]
        lines += [orjson.dumps({"mark": k, "day": d}) for k, d in self.marks.items()]
        try:
            with open(tmp, "wb") as f:
                f.write(b"\n".join(lines) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise SensorError(
                f"cannot write checkpoint file {self.path}: {exc.strerror or exc}"
            ) from None
        if self._file is not None:
            self._file.close()
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._lines = len(lines)

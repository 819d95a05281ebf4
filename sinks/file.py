"""File or stdout: one JSON line per detection (the record as consumed, Falco JSON plus
falconet's fields), appended.

``write`` returns once the batch is written to the file (and, with ``fsync: true``, on
disk). With ``max_bytes`` the file rotates the way logging's RotatingFileHandler does:
``path`` -> ``path.1`` -> ... -> ``path.<backups>`` (the oldest is removed), never in the
middle of a line; a file that another tool moved away (logrotate) is reopened.

Every failure to open or write is a retryable :class:`~falconet.errors.SinkError`: what
stops a file sink (a missing directory, a permission, a full or read-only disk) is a
problem of the place, never of a record, so delivery pauses until an operator fixes it
instead of dead-lettering every detection. A batch that fails half-written is cut back to
where it started, so a retry does not leave a torn line.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from falconet.detection import json_bytes
from falconet.errors import ConfigError, SinkError

from .base import ACCEPTED, BatchingSink, Option, SinkRecord, WriteResult

__all__ = ["FileSink"]

log = logging.getLogger("falconet.sinks.file")


class FileSink(BatchingSink):
    """JSON lines to a file (appended) or to standard output (``path: "-"``)."""

    kind = "file"
    summary = "JSON lines to a file (with rotation) or to standard output"
    max_batch_bytes = 16 * 1024 * 1024
    default_batch_events = 1000
    options = (
        Option("path", "-", str, "File to append to; `-` is standard output."),
        Option("fsync", False, bool, "Flush each batch to disk (fsync) before it counts as delivered."),
        Option("max_bytes", 0, int, "Rotate the file before it would grow past this size; 0: never."),
        Option("backups", 5, int, "Rotated files kept (`path.1` is the newest) when `max_bytes` is set."),
        Option("mode", "0640", str, "Permissions of a file the sink creates (octal)."),
    )  # fmt: skip

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        path = str(options["path"]).strip()
        if not path:
            raise ConfigError(f"sink {name!r}: path is empty (use `-` for standard output)")
        self._stdout = path == "-"
        self._path = Path(path)
        self._fsync = bool(options["fsync"])
        self._max_bytes = int(options["max_bytes"])
        self._backups = int(options["backups"])
        if self._max_bytes < 0 or self._backups < 0:
            raise ConfigError(f"sink {name!r}: max_bytes and backups must be 0 or more")
        try:
            self._mode = int(str(options["mode"]), 8)
        except ValueError:
            raise ConfigError(f"sink {name!r}: mode {options['mode']!r} is not octal") from None
        self._file: BinaryIO | None = None
        self._size = 0
        self._written = 0  # bytes of the current batch written so far
        self._torn = False  # a failed batch left a partial line that could not be cut
        self._ends_line = True

    # -- the BatchingSink interface ----------------------------------------------------------
    async def open(self) -> None:
        await asyncio.to_thread(self._open)
        log.info("sink %s: writing JSON lines to %s", self.name, self._where)

    async def probe(self) -> str:
        return f"{self._where} is open for appending"

    async def close(self) -> None:
        if self._file is not None and not self._stdout:
            try:
                self._file.close()
            except OSError as e:  # the last flush failed: nothing more to do at shutdown
                log.warning("sink %s: closing %s: %s", self.name, self._where, e.strerror)
        self._file = None

    def record_size(self, record: SinkRecord) -> int:
        return len(_line(record))

    async def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        lines = [_line(r) for r in batch]
        await asyncio.to_thread(self._write, lines)
        return ACCEPTED

    # -- blocking work (run in a thread) ------------------------------------------------------
    @property
    def _where(self) -> str:
        return "standard output" if self._stdout else str(self._path)

    def _open(self) -> None:
        if self._file is not None:
            return
        if self._stdout:
            self._file = sys.stdout.buffer
            return
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self._mode)
        except OSError as e:
            raise SinkError(
                f"sink {self.name}: cannot open {self._path} for appending: "
                f"{e.strerror or e}{_hint(e)}",
                retryable=True,
            ) from None
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._size = os.fstat(fd).st_size

    def _reopen_if_moved(self) -> None:
        """Reopen when the file at ``path`` is no longer the one open (moved or deleted)."""
        if self._stdout or self._file is None:
            return
        try:
            same = os.path.samestat(os.stat(self._path), os.fstat(self._file.fileno()))
        except OSError:
            same = False
        if not same:
            log.info("sink %s: %s was moved or removed, reopening", self.name, self._path)
            self._file.close()
            self._file = None
            self._open()

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        try:
            if self._backups == 0:
                self._path.unlink(missing_ok=True)
            else:
                for n in range(self._backups - 1, 0, -1):
                    older = self._path.with_name(f"{self._path.name}.{n}")
                    if older.exists():
                        os.replace(older, self._path.with_name(f"{self._path.name}.{n + 1}"))
                os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
        except OSError as e:
            raise SinkError(
                f"sink {self.name}: cannot rotate {self._path}: {e.strerror or e}{_hint(e)}",
                retryable=True,
            ) from None
        finally:
            self._open()
        log.info("sink %s: rotated %s", self.name, self._path)

    def _write(self, lines: list[bytes]) -> None:
        self._open()
        self._reopen_if_moved()
        assert self._file is not None
        if not self._stdout:  # other writers and copytruncate change the size under us
            self._size = os.fstat(self._file.fileno()).st_size
        start, self._written = self._size, 0
        try:
            if self._torn:  # end the line a failed batch left behind
                self._put([b"\n"])
                self._torn = False
            chunk: list[bytes] = []
            pending = 0
            for line in lines:
                if (
                    self._max_bytes
                    and not self._stdout
                    and self._size + pending + len(line) > self._max_bytes
                    and self._size + pending > 0
                ):
                    self._put(chunk)
                    chunk, pending = [], 0
                    self._rotate()
                    start, self._written = 0, 0
                chunk.append(line)
                pending += len(line)
            self._put(chunk)
        except OSError as e:
            self._undo(start)
            raise SinkError(
                f"sink {self.name}: cannot write to {self._where}: {e.strerror or e}{_hint(e)}",
                retryable=True,
            ) from None

    def _put(self, chunk: list[bytes]) -> None:
        """Write ``chunk`` whole (unbuffered for files), then flush / fsync."""
        assert self._file is not None
        data = memoryview(b"".join(chunk))
        while data:
            n = self._file.write(data)
            if n is None:  # pragma: no cover - only non-blocking files do this
                continue
            if n:
                self._ends_line = data[n - 1] == 10  # b"\n"
            self._written += n
            self._size += n
            data = data[n:]
        self._file.flush()
        if self._fsync and not self._stdout:
            os.fsync(self._file.fileno())

    def _undo(self, start: int) -> None:
        """Cut a half-written batch back to where it started, when nobody else wrote since."""
        if self._stdout or self._file is None or not self._written:
            return
        try:
            if os.fstat(self._file.fileno()).st_size == start + self._written:
                os.ftruncate(self._file.fileno(), start)
                self._size = start
                return
        except OSError:
            pass
        self._torn = not self._ends_line


def _line(record: SinkRecord) -> bytes:
    return json_bytes(record.obj) + b"\n"


def _hint(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return " (check the permissions of the file and its directory)"
    if e.errno == errno.ENOENT:
        return " (the directory does not exist)"
    if e.errno == errno.ENOSPC:
        return " (the disk is full)"
    if e.errno == errno.EROFS:
        return " (the file system is read-only)"
    if e.errno == errno.EISDIR:
        return " (path is a directory)"
    return ""

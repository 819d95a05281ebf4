"""Replay a ``.scap`` capture as falconet syscall events.

:func:`read_scap` streams a capture (plain or gzip-compressed, as Falco and sysdig write
them): the metadata blocks seed the state, each event is upgraded to the current libs
layout, merged with its enter event, applied to the state, and — when libsinsp would hand
it to Falco's rules — converted to an :class:`~falconet.event.Event`. Enter events never
come out (Falco ≥ 0.42 evaluates completed syscalls only); non-syscall events that reach
Falco's rules (``procexit``, ``switch``, ``procinfo``, ``container`` …) do.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from falconet.errors import InputError
from falconet.event import Event

from . import blocks as B
from . import events_table as T
from .convert import Converter
from .decoded import ScapEvent
from .parser import Parser
from .state import Tracker
from .upgrade import Upgrader

log = logging.getLogger("falconet.sensor.scap")

#: The first four bytes of a capture: the section header block type, little-endian.
SCAP_MAGIC = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"
#: Event dump flag: the event only updates state and must not reach the rules.
DF_STATE_ONLY = 1
_PLUGIN_EVENTS = frozenset((T.CODES["PPME_PLUGINEVENT_E"], T.CODES["PPME_ASYNCEVENT_E"]))


@dataclass(slots=True)
class ReadStats:
    """What one capture held and what became of it."""

    blocks: int = 0
    threads: int = 0
    fds: int = 0
    raw_events: int = 0  # event blocks in the file
    events: int = 0  # falconet events produced
    dropped: int = 0  # events libscap's converter drops (stored enter events, unused ones)
    filtered: int = 0  # enter events and state-only events: used for state, not emitted
    unconvertible: int = 0


def is_scap(head: bytes) -> bool:
    """Whether the first bytes of a (decompressed) file are a libscap section header."""
    return head[:4] == SCAP_MAGIC


def _open(path: str) -> BinaryIO:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    buf = io.BufferedReader(raw)
    if buf.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buf, mode="rb")  # type: ignore[return-value]
    return buf


def read_scap(source: str | BinaryIO, *, host: str | None = None, default_host: str = "",
              name: str | None = None, stats: ReadStats | None = None) -> Iterator[Event]:  # fmt: skip
    """The falconet events of a capture.

    ``source`` is a path (plain or gzip) or an open binary stream (already decompressed).
    The events' ``host`` is ``host`` when given, else the capture's machine hostname, else
    ``default_host``. A truncated or corrupt file raises :class:`~.blocks.ScapFormatError`
    (an ``InputError``) naming the byte offset, after every event before the damage has
    been yielded.
    """
    if isinstance(source, str):
        f = _open(source)
        label = name or source
    else:
        f = source
        label = name or getattr(source, "name", "<stream>")
    stats = stats if stats is not None else ReadStats()
    try:
        yield from _events(f, label, host, default_host, stats)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{label}: read error: {exc}") from None
    finally:
        if isinstance(source, str):
            f.close()
        log.info(
            "scap.read file=%s events=%d raw_events=%d dropped=%d filtered=%d threads=%d fds=%d",
            label, stats.events, stats.raw_events, stats.dropped, stats.filtered,
            stats.threads, stats.fds,
        )  # fmt: skip


def _events(f: BinaryIO, label: str, host: str | None, default_host: str, stats: ReadStats) -> Iterator[Event]:
    tracker = Tracker()
    parser = Parser(tracker)
    upgrader = Upgrader()
    conv: Converter | None = None
    num = 0
    for rec in B.read_records(f, label):
        stats.blocks += 1
        if not isinstance(rec, B.EventRecord):
            if isinstance(rec, B.MachineInfo) and host is None and rec.hostname:
                host = rec.hostname
            elif isinstance(rec, B.ThreadRecord):
                stats.threads += 1
            elif isinstance(rec, B.FdRecord):
                stats.fds += 1
            tracker.load(rec)
            continue
        stats.raw_events += 1
        up = upgrader.upgrade(rec)
        if up is None:
            continue
        num += 1  # libsinsp numbers every event it receives (evt.num)
        ev = ScapEvent(rec.ts, rec.tid, rec.cpu, up.type, up.params, num)
        ctx = parser.process(ev)
        if (
            (ev.is_enter and T.EVENTS[ev.type][1] & T.EC_SYSCALL)
            or rec.dump_flags & DF_STATE_ONLY
            or (ev.type in _PLUGIN_EVENTS and ev.int_at(0))  # another source's event
        ):
            stats.filtered += 1
            continue
        if conv is None:
            conv = Converter(tracker, host or default_host)
        stats.events += 1
        yield conv.event(ev, ctx)
    stats.dropped = upgrader.stats.dropped
    stats.unconvertible = upgrader.stats.unconvertible
    for problem in upgrader.stats.problems:
        log.warning("scap.convert file=%s problem=%s", label, problem)


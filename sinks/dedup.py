"""The dedup window: repeats of one detection within ``dedup_seconds`` become one record.

The key of a detection is its rule, its host name and its output text: the same alert
about the same thing on the same host. The first occurrence opens a window; repeats in
it are folded into that record; when the window ends the record goes on with
``"dedup": {"count": n, "first_time": ..., "last_time": ...}`` added to its JSON (times
are the detections' own ``time``). A detection seen once goes on unchanged, after the
window. Every folded record's offset is done when the folded record is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import SinkRecord

__all__ = ["DedupWindow", "Held", "dedup_key"]


def dedup_key(record: SinkRecord) -> tuple[str, str, str]:
    d = record.detection
    return (d.rule, d.hostname, d.output)


@dataclass(slots=True)
class Held:
    """A record with the tickets (offsets) of every detection it stands for."""

    record: SinkRecord
    tickets: list[Any] = field(default_factory=list)
    count: int = 1
    last_time: str = ""
    opened: float = 0.0

    def folded(self) -> SinkRecord:
        if self.count == 1:
            return self.record
        obj = dict(self.record.obj)
        obj["dedup"] = {
            "count": self.count,
            "first_time": self.record.obj.get("time"),
            "last_time": self.last_time,
        }
        return dataclasses.replace(self.record, obj=obj)


class DedupWindow:
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._open: dict[tuple[str, str, str], Held] = {}  # insertion order = opening order
        self.folded = 0  # repeats folded so far

    def add(self, record: SinkRecord, ticket: Any) -> None:
        key = dedup_key(record)
        held = self._open.get(key)
        if held is None:
            self._open[key] = Held(record, [ticket], 1, str(record.obj.get("time", "")),
                                   self._clock())  # fmt: skip
            return
        held.count += 1
        held.tickets.append(ticket)
        held.last_time = str(record.obj.get("time", held.last_time))
        self.folded += 1

    def due(self) -> list[Held]:
        """The records whose window has ended, in the order they opened."""
        now = self._clock()
        out = []
        for key, held in list(self._open.items()):
            if now - held.opened < self.seconds:
                break
            out.append(held)
            del self._open[key]
        return out

    def drain(self) -> list[Held]:
        """Every open record (at shutdown)."""
        out = list(self._open.values())
        self._open.clear()
        return out

    def next_due(self) -> float | None:
        """Clock time at which the oldest window ends."""
        for held in self._open.values():
            return held.opened + self.seconds
        return None

    def __len__(self) -> int:
        return len(self._open)

"""Which offsets may be committed: the highest one below which every record is done.

Records of one partition are consumed in offset order but finish in any order (a filtered
record at once, a batch after its retries, a folded repeat with its window). A partition's
committable offset is the lowest offset not done yet, or the one after the last consumed
when everything is done; Kafka's convention (the offset committed is the next to read).

The tracker is shared by the event loop (which finishes records) and the consumer's
thread (rebalance callbacks), hence the lock. A revoked partition's track is dropped:
records of it finished later are ignored, and whoever gets the partition resumes from
what was committed (at-least-once).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["OffsetTracker", "PartitionTrack", "Ticket"]


class PartitionTrack:
    """The records of one partition consumed and not yet done, in offset order."""

    __slots__ = ("committed", "done", "last", "live", "partition", "pending", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.last = -1  # highest offset consumed
        self.committed = -1  # what was last committed (or found committed)
        self.live = True

    def add(self, offset: int) -> None:
        if self.last < 0 and self.committed < 0:  # where we started: nothing new to commit yet
            self.committed = offset
        if offset <= self.last:  # a seek back (redelivery): forget what is above it
            while self.pending and self.pending[-1] >= offset:
                self.done.discard(self.pending.pop())
        self.pending.append(offset)
        self.last = offset

    def finish(self, offset: int) -> None:
        if self.pending and offset >= self.pending[0]:
            self.done.add(offset)
            while self.pending and self.pending[0] in self.done:
                self.done.discard(self.pending.popleft())

    def position(self) -> int | None:
        """The offset to commit (next to read), or None if nothing was consumed."""
        if self.pending:
            return self.pending[0]
        return self.last + 1 if self.last >= 0 else None

    @property
    def outstanding(self) -> int:
        return len(self.pending) - len(self.done)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One consumed record, to be finished exactly once."""

    track: PartitionTrack
    offset: int


class OffsetTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tracks: dict[tuple[str, int], PartitionTrack] = {}

    def add(self, topic: str, partition: int, offset: int) -> Ticket:
        with self._lock:
            track = self._tracks.get((topic, partition))
            if track is None:  # consumed before the assign callback was seen
                track = self._tracks[(topic, partition)] = PartitionTrack(topic, partition)
            track.add(offset)
            return Ticket(track, offset)

    def finish(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.track.live:
                ticket.track.finish(ticket.offset)

    def finish_all(self, tickets: list[Ticket] | tuple[Ticket, ...]) -> None:
        with self._lock:
            for t in tickets:
                if t.track.live:
                    t.track.finish(t.offset)

    def assign(self, topic: str, partition: int) -> None:
        with self._lock:
            old = self._tracks.get((topic, partition))
            if old is not None:
                old.live = False
            self._tracks[(topic, partition)] = PartitionTrack(topic, partition)

    def revoke(self, topic: str, partition: int) -> int | None:
        """Drop the partition; the offset to commit for it first (None: nothing new)."""
        with self._lock:
            track = self._tracks.pop((topic, partition), None)
            if track is None:
                return None
            track.live = False
            pos = track.position()
            return pos if pos is not None and pos > track.committed else None

    def to_commit(self) -> list[tuple[str, int, int]]:
        """(topic, partition, offset) of every partition whose position moved on."""
        out = []
        with self._lock:
            for track in self._tracks.values():
                pos = track.position()
                if pos is not None and pos > track.committed:
                    out.append((track.topic, track.partition, pos))
        return out

    def committed(self, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            track = self._tracks.get((topic, partition))
            if track is not None and offset > track.committed:
                track.committed = offset

    @property
    def outstanding(self) -> int:
        """Records consumed and not done yet (over every live partition)."""
        with self._lock:
            return sum(t.outstanding for t in self._tracks.values())

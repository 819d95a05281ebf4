"""Cutting batches by count, bytes and time.

Records wait in arrival order. A batch is ready when it is full (``batch_events``
records, or adding the next record would pass ``batch_bytes``) or when its oldest record
has waited ``batch_ms``. A record larger than ``batch_bytes`` on its own goes alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .dedup import Held

__all__ = ["Batcher"]


class Batcher:
    def __init__(self, batch_events: int, batch_bytes: int, batch_ms: int,
                 size: Callable[[Held], int], clock: Callable[[], float]) -> None:  # fmt: skip
        self.batch_events = batch_events
        self.batch_bytes = batch_bytes
        self.wait = batch_ms / 1000.0
        self._size = size
        self._clock = clock
        self._items: deque[tuple[Held, int, float]] = deque()
        self._bytes = 0

    def add(self, held: Held) -> None:
        n = self._size(held)
        self._items.append((held, n, self._clock()))
        self._bytes += n

    def ready(self) -> bool:
        if not self._items:
            return False
        if len(self._items) >= self.batch_events or self._bytes >= self.batch_bytes:
            return True
        return self._clock() - self._items[0][2] >= self.wait

    def next_due(self) -> float | None:
        """Clock time at which the oldest record's wait ends."""
        return self._items[0][2] + self.wait if self._items else None

    def take(self) -> list[Held]:
        """The next batch (without waiting): at most batch_events records and batch_bytes."""
        out: list[Held] = []
        total = 0
        while self._items and len(out) < self.batch_events:
            held, n, _ = self._items[0]
            if out and total + n > self.batch_bytes:
                break
            self._items.popleft()
            self._bytes -= n
            total += n
            out.append(held)
        return out

    def __len__(self) -> int:
        return len(self._items)

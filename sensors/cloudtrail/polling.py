"""What the sources that look for files (a bucket listing, a local directory) share: rounds.

Every ``poll_seconds`` a round starts: :meth:`PollingSource.scan` finds the files not yet
checkpointed; the collector takes them as it has room; when the last one is finished,
:meth:`PollingSource.settle` runs (moves listing marks, prunes the checkpoint) and the next
round is scheduled. A file that failed is simply found again by a later round. With
``once`` a single round is made. A scan that fails is retried with backoff (with ``once``,
the error ends the run).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from falconet.errors import FalconetError

from .aws import Backoff
from .sources import ObjectRef, Outcome

log = logging.getLogger("falconet.sensor.cloudtrail")


class PollingSource:
    """Base of :class:`~.listing.BucketListing` and :class:`~.directory.DirectoryFollower`."""

    name = "polling"

    def __init__(
        self, poll_seconds: float, once: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.poll_seconds = poll_seconds
        self.once = once
        self.clock = clock
        self.rounds = 0
        self._active = False
        self._queue: deque[ObjectRef] = deque()
        self._outstanding = 0
        self._next = 0.0
        self._backoff = Backoff(base=1.0, cap=max(1.0, min(60.0, poll_seconds * 4)))
        self._outcomes: list[Outcome] = []

    # -- for subclasses -------------------------------------------------------------------------
    def scan(self) -> list[ObjectRef]:
        """The files of a new round, in the order to read them."""
        raise NotImplementedError

    def settle(self, outcomes: list[Outcome]) -> None:
        """After a round, with the ``outcomes`` of its files."""

    # -- Source ---------------------------------------------------------------------------------
    def start(self, dead_letter: Callable[..., Any]) -> None:
        pass

    def take(self, free: int) -> list[ObjectRef]:
        if not self._active:
            if (self.once and self.rounds) or self.clock() < self._next:
                return []
            try:
                refs = self.scan()
            except FalconetError as exc:
                if self.once:
                    raise
                delay = self._backoff.next()
                log.error(
                    "cloudtrail.scan source=%s error=%s retry_in=%.1fs", self.name, exc, delay
                )
                self._next = self.clock() + delay
                return []
            self._backoff.reset()
            self.rounds += 1
            self._active = True
            self._queue = deque(refs)
            self._outcomes = []
            if not refs:
                self._end_round()
                return []
        out: list[ObjectRef] = []
        while self._queue and len(out) < free:
            out.append(self._queue.popleft())
        self._outstanding += len(out)
        return out

    def finished(self, outcome: Outcome) -> None:
        self._outstanding -= 1
        self._outcomes.append(outcome)
        if self._active and not self._queue and self._outstanding == 0:
            self._end_round()

    def _end_round(self) -> None:
        self._active = False
        self.settle(self._outcomes)
        self._outcomes = []
        self._next = self.clock() + self.poll_seconds

    def tick(self) -> None:
        pass

    def drained(self) -> bool:
        return self.once and self.rounds > 0 and not self._active

    def close(self) -> None:
        self._queue.clear()

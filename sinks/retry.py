"""Retry: exponential backoff with full jitter, ``Retry-After``, and one batch's delivery.

The delay before retry ``n`` (0 for the first) is drawn uniformly from
``[0, min(retry_max_ms, retry_initial_ms * 2**n)]`` ("full jitter": many clients that
failed together do not come back together); when the service said ``Retry-After`` the
delay is at least that. Retryable failures are retried without limit: the records stay
uncommitted in Kafka meanwhile and consumption pauses once ``max_buffered`` records
wait, so a long outage costs no memory and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from falconet.errors import SinkError

from .base import BatchingSink, SinkRecord

__all__ = ["Backoff", "DeadLetter", "deliver"]


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_ms: int
    max_ms: int

    def bound(self, attempt: int) -> float:
        """The upper bound (seconds) of the delay before retry ``attempt`` (0-based)."""
        return min(self.max_ms, self.initial_ms * 2 ** min(attempt, 40)) / 1000.0

    def delay(self, attempt: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:  # fmt: skip
        jittered = (rng or random).uniform(0.0, self.bound(attempt))
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the destination refused for good."""

    index: int  # in the batch given to deliver()
    reason: str
    status: int | None = None


@dataclass(slots=True)
class Outcome:
    delivered: list[int]  # indexes accepted
    dead: list[DeadLetter]  # indexes refused for good
    abandoned: list[int]  # indexes not delivered when stopping (redelivered after a restart)
    attempts: int = 0


async def deliver(
    sink: BatchingSink,
    batch: Sequence[SinkRecord],
    backoff: Backoff,
    *,
    stopping: Callable[[], bool],
    on_failure: Callable[[int, str, bool], None] = lambda n, reason, retry: None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    log: logging.Logger | None = None,
) -> Outcome:
    """Write ``batch`` until every record is accepted or dead-lettered (or we stop).

    Partial failures retry only the records the service refused as retryable.
    ``on_failure(n, reason, retry)`` is told of each failed attempt (n records).
    """
    log = log or logging.getLogger(f"falconet.sinks.{sink.kind}")
    todo = list(range(len(batch)))  # indexes into batch still to deliver
    out = Outcome([], [], [])
    attempt = 0
    while todo:
        out.attempts += 1
        retry_after: float | None = None
        try:
            result = await sink.write([batch[i] for i in todo])
        except SinkError as exc:
            if not exc.retryable:
                out.dead += [DeadLetter(i, str(exc), exc.status) for i in todo]
                on_failure(len(todo), str(exc), False)
                log.warning("sink.refused sink=%s records=%d reason=%s", sink.name, len(todo), exc)
                return out
            retry_after = exc.retry_after
            reason = str(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a destination bug: retry, say so; never lose the batch
            reason = f"{type(exc).__name__}: {exc}"
            log.error("sink.write_error sink=%s error=%s", sink.name, reason, exc_info=True)
        else:
            retry: list[int] = []
            for f in result.failures:
                if not 0 <= f.index < len(todo):
                    log.error("sink.bad_index sink=%s index=%d", sink.name, f.index)
                    continue
                if f.retryable:
                    retry.append(todo[f.index])
                    if f.retry_after is not None:
                        retry_after = max(retry_after or 0.0, f.retry_after)
                else:
                    out.dead.append(DeadLetter(todo[f.index], f.reason))
            failed = {todo[f.index] for f in result.failures if 0 <= f.index < len(todo)}
            out.delivered += [i for i in todo if i not in failed]
            dead_now = len(failed) - len(retry)
            if dead_now:
                on_failure(dead_now, "refused", False)
            if not retry:
                return out
            todo = sorted(set(retry))
            reason = next(f.reason for f in result.failures if f.retryable)
        on_failure(len(todo), reason, True)
        if stopping():
            out.abandoned = todo
            return out
        wait = backoff.delay(attempt, retry_after)
        log.warning("sink.retry sink=%s records=%d attempt=%d wait=%.2fs reason=%s",
                    sink.name, len(todo), attempt + 1, wait, reason[:300])  # fmt: skip
        attempt += 1
        await sleep(wait)
        if stopping():
            out.abandoned = todo
            return out
    return out

"""Finding log files through an SQS queue of S3 notifications (``--sqs-queue-url``).

A background thread long-polls the queue (``WaitTimeSeconds`` = ``sqs_wait_seconds``)
for as many messages as the collector has room for, each received with a visibility
timeout of ``visibility_seconds``. A message names one or more objects
(:mod:`.notifications`); it is **deleted only when every one of them is finished and
acknowledged** (published, or its DLQ record stored, or found in the checkpoint). While
its objects are in flight its visibility is extended (at half the timeout), so a slow
object (or a Kafka outage) does not hand it to another collector. When an object fails,
the message is made visible again after a backoff with jitter that grows with its
receive count; configure a redrive policy on the queue to park messages that keep
failing. Test events, deletions and keys that are not log files (digests) are deleted
without reading anything; a body that is no notification at all goes to the DLQ first.

The checkpoint stops a notification delivered twice (or a message that comes back because
the collector stopped between acknowledging a file and deleting its message) from
publishing a file again. No message can come back after the queue's retention period, so
entries older than that (plus a day) are pruned every hour.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falconet.event import AWS_CLOUDTRAIL
from falconet.sensors.publisher import Delivery

from .aws import Backoff, aws_errors, check, describe
from .checkpoint import Checkpoint
from .keys import skip_reason
from .metrics import CollectorStats
from .notifications import NotificationError, parse
from .s3 import read_object
from .sources import Fetched, ObjectRef, Outcome

log = logging.getLogger("falconet.sensor.cloudtrail")

PRUNE_EVERY_SECONDS = 3600.0
DeadLetter = Callable[..., Delivery]


@dataclass(slots=True)
class _Message:
    """A received message whose objects are in flight."""

    id: str
    receipt: str
    receives: int
    visible_until: float
    pending: int = 0
    failed: bool = False
    abandoned: bool = False


class SqsQueue:
    """The ``sqs`` source (see the module docstring)."""

    name = "sqs"

    def __init__(
        self,
        sqs: Any,
        s3: Any,
        queue_url: str,
        stats: CollectorStats,
        *,
        wait_seconds: int = 20,
        visibility_seconds: int = 300,
        once: bool = False,
        clock: Callable[[], float] = time.monotonic,
        retry: Backoff | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.sqs = sqs
        self.s3 = s3
        self.url = queue_url
        self.stats = stats
        self.wait_seconds = wait_seconds
        self.visibility = visibility_seconds
        self.once = once
        self.clock = clock
        self.retry = retry or Backoff(base=5.0, cap=900.0)
        self.checkpoint = checkpoint
        self.retention_seconds = 14 * 86400  # SQS's longest; the queue's own from check()
        self._next_prune = clock()
        self.want = 0  # objects the collector has room for (read by the receiver thread)
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._messages: dict[str, _Message] = {}
        self._dead_letters: list[tuple[_Message, Delivery]] = []
        self._dead_letter: DeadLetter | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_empty_receive = float("-inf")  # when the latest empty receive started
        self._last_activity = clock()

    # -- Source ---------------------------------------------------------------------------------
    def check(self) -> None:
        attrs = check(lambda: self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["MessageRetentionPeriod"]),
                      f"read the queue {self.url}")  # fmt: skip
        retention = attrs.get("Attributes", {}).get("MessageRetentionPeriod")
        if retention:
            self.retention_seconds = int(retention)

    def start(self, dead_letter: DeadLetter) -> None:
        self._dead_letter = dead_letter
        self._thread = threading.Thread(
            target=self._receive_loop, name="cloudtrail-sqs", daemon=True
        )
        self._thread.start()

    def read(self, ref: ObjectRef) -> Fetched:
        return read_object(self.s3, ref)

    def take(self, free: int) -> list[ObjectRef]:
        self.want = free
        if free > 0:
            self._wake.set()
        out: list[ObjectRef] = []
        while len(out) < free:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                break
            out += self._accept(message)
        return out

    def finished(self, outcome: Outcome) -> None:
        msg = self._messages.get(outcome.ref.token)
        if msg is None:
            return
        msg.pending -= 1
        if not outcome.acknowledged:
            msg.failed = True
            msg.abandoned |= outcome.status == "abandoned"
        if msg.pending > 0:
            return
        del self._messages[msg.id]
        self._last_activity = self.clock()
        if not msg.failed:
            self._delete(msg)
        else:
            self._release(msg, 0 if msg.abandoned else self.retry.delay(msg.receives))

    def tick(self) -> None:
        now = self.clock()
        if self.checkpoint is not None and now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_SECONDS
            horizon = time.time_ns() - (self.retention_seconds + 86400) * 1_000_000_000
            pruned = self.checkpoint.prune(lambda k, e: k.startswith("s3://") and e.ts < horizon)
            if pruned:
                log.info(
                    "cloudtrail.checkpoint pruned=%d older_than_s=%d",
                    pruned,
                    self.retention_seconds + 86400,
                )
        for msg in self._messages.values():
            if msg.visible_until - now < self.visibility / 2:
                self._extend(msg, now)
        if self._dead_letters:
            waiting = []
            for msg, delivery in self._dead_letters:
                if not delivery.done:
                    waiting.append((msg, delivery))
                elif delivery.ok:
                    self._delete(msg)
                else:
                    self.stats.errors["kafka"] += 1
                    self._release(msg, self.retry.delay(msg.receives))
            self._dead_letters = waiting
            self._last_activity = now

    def drained(self) -> bool:
        return (
            self.once
            and self._inbox.empty()
            and not self._messages
            and not self._dead_letters
            and self._last_empty_receive >= self._last_activity
        )

    def close(self) -> None:
        """Stop receiving; messages received but never taken are made visible again now."""
        self._stop.set()
        self._wake.set()
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                break
            self._release_raw(message["ReceiptHandle"], message["MessageId"], 0)
        for msg in list(self._messages.values()):
            self._release(msg, 0)
        self._messages.clear()

    # -- messages -------------------------------------------------------------------------------
    def _accept(self, message: dict[str, Any]) -> list[ObjectRef]:
        now = self.clock()
        self._last_activity = now
        self.stats.sqs["received"] += 1
        mid = str(message["MessageId"])
        receipt = str(message["ReceiptHandle"])
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        known = self._messages.get(mid)
        if known is not None:  # received again while its objects are in flight: keep the new handle
            known.receipt, known.visible_until = receipt, now + self.visibility
            return []
        msg = _Message(mid, receipt, receives, now + self.visibility)
        body = str(message.get("Body", ""))
        try:
            note = parse(body, token=mid)
        except NotificationError as exc:
            self._dead_letter_message(msg, body, str(exc))
            return []
        refs: list[ObjectRef] = []
        for ref in note.objects:
            why = skip_reason(ref.key)
            if why is None:
                refs.append(ref)
            else:
                self.stats.objects["ignored"] += 1
                log.debug("cloudtrail.skipped id=%s reason=%s", ref.id, why)
        if not refs:
            self.stats.sqs["ignored"] += 1
            log.info("cloudtrail.sqs_ignored message_id=%s kind=%s%s note=%s", mid, note.kind,
                     "+sns" if note.sns else "", note.note or f"{len(note.objects)} keys that are not log files")  # fmt: skip
            self._delete(msg)
            return []
        msg.pending = len(refs)
        self._messages[mid] = msg
        return refs

    def _dead_letter_message(self, msg: _Message, body: str, reason: str) -> None:
        assert self._dead_letter is not None, "start() first"
        self.stats.sqs["dead_letter"] += 1
        delivery = self._dead_letter(
            f"SQS message: {reason}", body.encode(), source=AWS_CLOUDTRAIL,
            details={"queue_url": self.url, "message_id": msg.id},
        )  # fmt: skip
        self._dead_letters.append((msg, delivery))

    def _call(self, what: str, mid: str, call: Callable[[], Any]) -> bool:
        """One SQS call about message ``mid``; a failure is counted and logged, not raised
        (the message comes back after its visibility timeout, and the checkpoint then skips
        the files already published)."""
        try:
            call()
        except aws_errors() as exc:
            self.stats.errors["sqs"] += 1
            log.warning(
                "cloudtrail.sqs_%s message_id=%s error=%s",
                what,
                mid,
                describe(exc, f"{what} the message"),
            )
            return False
        return True

    def _delete(self, msg: _Message) -> None:
        if self._call(
            "delete",
            msg.id,
            lambda: self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msg.receipt),
        ):
            self.stats.sqs["deleted"] += 1

    def _release(self, msg: _Message, delay: float) -> None:
        self._release_raw(msg.receipt, msg.id, delay)

    def _release_raw(self, receipt: str, mid: str, delay: float) -> None:
        if self._visibility(receipt, mid, int(delay), "release"):
            self.stats.sqs["released"] += 1
            log.info("cloudtrail.sqs_release message_id=%s visible_in=%ds", mid, int(delay))

    def _extend(self, msg: _Message, now: float) -> None:
        if self._visibility(msg.receipt, msg.id, self.visibility, "extend"):
            log.debug(
                "cloudtrail.sqs_extend message_id=%s visible_for=%ds", msg.id, self.visibility
            )
        msg.visible_until = now + self.visibility  # retried at the next half-timeout either way

    def _visibility(self, receipt: str, mid: str, seconds: int, what: str) -> bool:
        return self._call(what, mid, lambda: self.sqs.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=seconds))  # fmt: skip

    # -- the receiver thread --------------------------------------------------------------------
    def _receive_loop(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while not self._stop.is_set():
            n = min(10, self.want - self._inbox.qsize())
            if n <= 0:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            started = self.clock()
            try:
                resp = self.sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=n, WaitTimeSeconds=self.wait_seconds,
                    VisibilityTimeout=self.visibility, MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )  # fmt: skip
            except aws_errors() as exc:
                self.stats.errors["sqs"] += 1
                delay = backoff.next()
                log.error(
                    "cloudtrail.sqs_receive error=%s retry_in=%.1fs",
                    describe(exc, "receive from the queue"),
                    delay,
                )
                self._stop.wait(delay)
                continue
            backoff.reset()
            messages = resp.get("Messages", [])
            if self._stop.is_set():
                for m in messages:
                    self._release_raw(m["ReceiptHandle"], m["MessageId"], 0)
                return
            for m in messages:
                self._inbox.put(m)
            if not messages:
                self._last_empty_receive = started
                if self.wait_seconds == 0:
                    self._stop.wait(1.0)  # short polling: do not spin on an empty queue

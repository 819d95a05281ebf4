"""Finding log files by listing a bucket (``--bucket``/``--prefix``), every ``poll_seconds``.

Under CloudTrail's layout the listing is cheap: the ``…/CloudTrail/<region>/`` folders
below the prefix are found once (and again every 15 minutes, for new accounts and
regions), and each is listed from a **mark**, a day folder kept in the checkpoint, with
``StartAfter=<folder><mark>``. CloudTrail writes each file in the folder of the day it
delivers it, so after a round the mark moves to the day before the newest day seen (one
day of slack for files delivered around midnight), never past a day with a file that
failed; checkpoint entries of days before the mark are pruned. Each round therefore lists
about two days per region, whatever the bucket's age.

A prefix that does not follow the layout (copied files, another tool's folders) is listed
whole every round; its checkpoint entries are pruned when their objects disappear.

``since`` (``YYYY-MM-DD``) skips older day folders (and, outside the layout, objects last
modified before that day) on the first run: a new collector need not read years of logs.
An object rewritten in place (a new ETag) inside the listed window is read again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from falconet.errors import SensorError

from .aws import aws_errors, check, describe
from .checkpoint import Checkpoint
from .keys import day_before, is_log_key, split_layout
from .polling import PollingSource
from .s3 import discover_region_prefixes, list_objects, read_object
from .sources import S3, Fetched, ObjectRef, Outcome

log = logging.getLogger("falconet.sensor.cloudtrail")

REDISCOVER_SECONDS = 900.0


class BucketListing(PollingSource):
    """The ``bucket`` source (see the module docstring)."""

    name = "bucket"

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        checkpoint: Checkpoint,
        *,
        poll_seconds: float = 60.0,
        since: str = "",
        once: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(poll_seconds, once, clock)
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.checkpoint = checkpoint
        self.since = since
        self.regions: list[str] | None = None
        self._discovered_at: float | None = None
        self._newest: dict[str, str] = {}  # region folder → newest day seen this round
        self._present: set[str] | None = None  # outside the layout: every log file id listed

    def _id(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def check(self) -> None:
        check(lambda: self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1),
              f"list s3://{self.bucket}/{self.prefix}")  # fmt: skip

    def read(self, ref: ObjectRef) -> Fetched:
        return read_object(self.s3, ref)

    # -- rounds ---------------------------------------------------------------------------------
    def scan(self) -> list[ObjectRef]:
        try:
            now = self.clock()
            if self._discovered_at is None or now - self._discovered_at >= REDISCOVER_SECONDS:
                self.regions = discover_region_prefixes(self.s3, self.bucket, self.prefix)
                self._discovered_at = now
                log.info("cloudtrail.discovery bucket=%s prefix=%s region_folders=%s", self.bucket, self.prefix,
                         "none (listed whole)" if self.regions is None else len(self.regions))  # fmt: skip
            self._newest, self._present = {}, None
            if self.regions is None:
                return self._scan_whole()
            refs: list[ObjectRef] = []
            for folder in self.regions:
                refs += self._scan_region(folder)
            return refs
        except aws_errors() as exc:
            raise SensorError(describe(exc, f"list s3://{self.bucket}/{self.prefix}")) from None

    def _new(self, obj: dict[str, Any]) -> ObjectRef | None:
        key = obj["Key"]
        if not is_log_key(key):
            return None
        etag = str(obj.get("ETag", "")).strip('"')
        if self.checkpoint.done(self._id(key), etag):
            return None
        return ObjectRef(S3, self.bucket, key, etag, int(obj.get("Size", -1)))

    def _scan_region(self, folder: str) -> list[ObjectRef]:
        start = self.checkpoint.marks.get(self._id(folder)) or self.since
        refs: list[ObjectRef] = []
        newest = ""
        for obj in list_objects(self.s3, self.bucket, folder, folder + start if start else ""):
            layout = split_layout(obj["Key"])
            if layout is not None:
                newest = max(newest, layout[1])
            ref = self._new(obj)
            if ref is not None:
                refs.append(ref)
        self._newest[folder] = newest
        return refs

    def _scan_whole(self) -> list[ObjectRef]:
        since = None
        if self.since:
            y, m, d = (int(x) for x in self.since.split("/"))
            since = dt.datetime(y, m, d, tzinfo=dt.UTC)
        present: set[str] = set()
        refs: list[ObjectRef] = []
        for obj in list_objects(self.s3, self.bucket, self.prefix):
            if not is_log_key(obj["Key"]):
                continue
            present.add(self._id(obj["Key"]))
            if since is not None and obj.get("LastModified") and obj["LastModified"] < since:
                continue
            ref = self._new(obj)
            if ref is not None:
                refs.append(ref)
        self._present = present
        return refs

    def settle(self, outcomes: list[Outcome]) -> None:
        failed: dict[str, str] = {}
        for o in outcomes:
            layout = split_layout(o.ref.key)
            if not o.acknowledged and layout is not None:
                folder, day = layout
                failed[folder] = min(failed.get(folder, day), day)
        for folder, newest in self._newest.items():
            if not newest:
                continue
            old = self.checkpoint.marks.get(self._id(folder)) or self.since
            mark = max(old, min(day_before(newest), failed.get(folder, newest)))
            self.checkpoint.set_mark(self._id(folder), mark)
            self._prune_before(folder, mark)
        if self._present is not None:
            base = self._id(self.prefix)
            present = self._present
            self.checkpoint.prune(lambda k, e: k.startswith(base) and k not in present)

    def _prune_before(self, folder: str, mark: str) -> None:
        base = self._id(folder)
        cut = len(f"s3://{self.bucket}/")

        def stale(object_id: str, _entry: object) -> bool:
            if not object_id.startswith(base):
                return False
            layout = split_layout(object_id[cut:])
            return layout is not None and layout[1] < mark

        self.checkpoint.prune(stale)

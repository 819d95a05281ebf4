"""S3 calls of the collector: reading one log file, listing keys, finding the region folders."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from .aws import aws_errors, describe, error_code
from .keys import is_log_key, is_region_prefix
from .logfile import MAX_FILE_BYTES
from .sources import Fetched, FetchError, ObjectRef

log = logging.getLogger("falconet.sensor.cloudtrail")

#: Deepest folder level searched below the prefix for ``…/CloudTrail/<region>/`` folders
#: (``[custom/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/`` is six levels).
MAX_DISCOVERY_DEPTH = 7
#: Most list calls one discovery may make before it gives up on the layout.
MAX_DISCOVERY_CALLS = 2000
_NOT_DESCENDED = ("CloudTrail-Digest/", "CloudTrail-Insight/")


def read_object(s3: Any, ref: ObjectRef, limit: int = MAX_FILE_BYTES) -> Fetched:
    """The stored bytes and ETag of one object; :class:`FetchError` when it cannot be read
    (``permanent`` when it no longer exists or is too large: retrying cannot help)."""
    where = f"s3://{ref.bucket}/{ref.key}"
    try:
        resp = s3.get_object(Bucket=ref.bucket, Key=ref.key)
        size = int(resp.get("ContentLength", 0))
        if size > limit:
            resp["Body"].close()
            raise FetchError(f"{where} is {size} bytes, more than {limit} bytes: not a CloudTrail log file",
                             permanent=True)  # fmt: skip
        data = resp["Body"].read()
    except aws_errors() as exc:
        raise FetchError(
            describe(exc, f"read {where}"), permanent=error_code(exc) == "NoSuchKey"
        ) from None
    except OSError as exc:
        raise FetchError(f"cannot read {where}: {exc}") from None
    return Fetched(ref, data, str(resp.get("ETag", "")).strip('"'))


def list_objects(
    s3: Any, bucket: str, prefix: str, start_after: str = ""
) -> Iterator[dict[str, Any]]:
    """Every object under ``prefix`` (after ``start_after``), in key order, page by page."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        yield from page.get("Contents", ())


def discover_region_prefixes(s3: Any, bucket: str, prefix: str) -> list[str] | None:
    """The ``…/CloudTrail/<region>/`` folders under ``prefix``, found level by level with
    ``Delimiter="/"``; ``None`` when the prefix does not follow CloudTrail's layout (log
    files outside such folders, none found, or too many folders), so it is listed whole."""
    if is_region_prefix(prefix):
        return [prefix]
    found: list[str] = []
    frontier = [prefix]
    calls = 0
    for _depth in range(MAX_DISCOVERY_DEPTH):
        deeper: list[str] = []
        for folder in frontier:
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
                calls += 1
                if calls > MAX_DISCOVERY_CALLS:
                    log.warning("cloudtrail.discovery bucket=%s prefix=%s gave up after %d calls",
                                bucket, prefix, calls)  # fmt: skip
                    return None
                if any(is_log_key(o["Key"]) for o in page.get("Contents", ())):
                    return None  # log files outside the layout: list the prefix whole
                for cp in page.get("CommonPrefixes", ()):
                    child = cp["Prefix"]
                    if is_region_prefix(child):
                        found.append(child)
                    elif not child.endswith(_NOT_DESCENDED) and _may_hold_regions(child):
                        deeper.append(child)
        frontier = deeper
        if not frontier:
            break
    return sorted(found) or None


def _may_hold_regions(folder: str) -> bool:
    """Below ``AWSLogs/<account>/`` only ``CloudTrail/`` holds log files (not ``Config/``…)."""
    parts = folder.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].isdigit() and len(parts[-2]) == 12 and "AWSLogs" in parts:
        return parts[-1] == "CloudTrail"
    return True

"""Which S3 keys (or file names) are CloudTrail log files, and what their path tells.

CloudTrail writes its log files as::

    [prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz

and beside them, in the same bucket, files that are not API activity: digest files
(``CloudTrail-Digest/``, signatures for log file validation) and Insights files
(``CloudTrail-Insight/``). Those are skipped, as are folder markers and files that are not
``.json``/``.json.gz``. Keys outside the layout are accepted when their name fits, so a
copy of the logs under another prefix (or a local directory) is read too.
"""

from __future__ import annotations

import datetime as dt
import re

#: ``…/AWSLogs/[o-org/]<account>/CloudTrail/<region>/`` (the unit of an efficient listing)
_REGION_PREFIX = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?\d{12}/CloudTrail/[a-z0-9-]+/$")
_LAYOUT = re.compile(
    r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/(?P<kind>[A-Za-z-]+)/"
    r"(?P<region>[a-z0-9-]+)/(?P<day>\d{4}/\d{2}/\d{2})/[^/]+$"
)
#: the service folder below the account (``CloudTrail``, ``CloudTrail-Digest``, ``Config``…)
_SERVICE = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?\d{12}/([^/]+)/")
_FILE_ACCOUNT = re.compile(r"^(\d{12})_CloudTrail_")
_NOT_ACTIVITY = ("CloudTrail-Digest", "CloudTrail-Insight")
_SUFFIXES = (".json.gz", ".json")


def skip_reason(key: str) -> str | None:
    """``None`` for a CloudTrail log file to read, else why the key is skipped."""
    if not key or key.endswith("/"):
        return "folder marker"
    for part in _NOT_ACTIVITY:
        if part in key:
            return "digest file" if "Digest" in part else "Insights file"
    m = _SERVICE.search(key)
    if m is not None and m.group(1) != "CloudTrail":
        return f"not a CloudTrail log file ({m.group(1)}/)"
    if not key.lower().endswith(_SUFFIXES):
        return "not a .json or .json.gz file"
    return None


def is_log_key(key: str) -> bool:
    return skip_reason(key) is None


def account_of(key: str) -> str:
    """The account a key belongs to by its path or file name (``""`` when it does not say)."""
    m = _LAYOUT.search(key)
    if m is not None:
        return m.group("account")
    m = _FILE_ACCOUNT.match(key.rsplit("/", 1)[-1])
    return m.group(1) if m else ""


def day_of(key: str) -> str | None:
    """``YYYY/MM/DD`` of a key in the CloudTrail layout, else ``None``."""
    m = _LAYOUT.search(key)
    return m.group("day") if m is not None else None


def split_layout(key: str) -> tuple[str, str] | None:
    """``(region prefix, YYYY/MM/DD)`` of a log file key in the CloudTrail layout, else ``None``."""
    m = _LAYOUT.search(key)
    if m is None or m.group("kind") != "CloudTrail":
        return None
    return key[: m.start("day")], m.group("day")


def is_region_prefix(prefix: str) -> bool:
    """Whether ``prefix`` is one ``…/CloudTrail/<region>/`` folder (day folders below)."""
    return _REGION_PREFIX.search(prefix) is not None


def day_before(day: str) -> str:
    """The ``YYYY/MM/DD`` folder of the previous calendar day."""
    d = dt.date(int(day[0:4]), int(day[5:7]), int(day[8:10])) - dt.timedelta(days=1)
    return d.strftime("%Y/%m/%d")


def parse_since(text: str) -> str:
    """``YYYY-MM-DD`` (or ``YYYY/MM/DD``) → the day folder ``YYYY/MM/DD``; ValueError otherwise."""
    t = text.strip().replace("/", "-")
    return dt.date.fromisoformat(t).strftime("%Y/%m/%d")

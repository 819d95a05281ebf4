"""Time renderings shared by fields, outputs and detections (the forms Falco prints)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache

_NS = 1_000_000_000


def _local_offset(sec: int) -> int:
    return time.localtime(sec).tm_gmtoff


@lru_cache(maxsize=1024)
def _clock_s(sec: int, tz: str) -> str:
    s = (sec + _local_offset(sec)) % 86400
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@lru_cache(maxsize=1024)
def _utc_s(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def clock_ns(ts: int) -> str:
    """``HH:MM:SS.nnnnnnnnn`` in local time: ``evt.time`` and the alert prefix."""
    sec, ns = divmod(ts, _NS)
    return f"{_clock_s(sec, time.tzname[0])}.{ns:09d}"


def clock_s(ts: int) -> str:
    """``HH:MM:SS`` in local time: ``evt.time.s``."""
    return clock_ns(ts)[:8]


def datetime_ns(ts: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.nnnnnnnnn`` in local time: ``evt.datetime``."""
    sec, _ = divmod(ts, _NS)
    day = time.strftime("%Y-%m-%d", time.gmtime(sec + _local_offset(sec)))
    return f"{day} {clock_ns(ts)}"


def iso8601_offset(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`` (UTC): ``evt.time.iso8601``."""
    sec, ns = divmod(ts, _NS)
    return f"{_utc_s(sec)}.{ns:09d}+0000"


def iso8601_z(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (UTC): the ``time`` of a JSON alert."""
    sec, ns = divmod(ts, _NS)
    return f"{_utc_s(sec)}.{ns:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp (``2024-05-01T10:00:00Z``, fractions up to ns) to ns.

    Raises ``ValueError`` when the text is not a timestamp.
    """
    t = text.strip()
    if not t:
        raise ValueError("empty timestamp")
    frac_ns = 0
    # split off the fraction ourselves: datetime keeps only microseconds
    dot = t.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(t) and t[end].isdigit():
            end += 1
        digits = t[dot + 1 : end]
        if not digits:
            raise ValueError(f"invalid timestamp {text!r}")
        frac_ns = int((digits + "000000000")[:9])
        t = t[:dot] + t[end:]
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * _NS + frac_ns

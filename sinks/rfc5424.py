"""RFC 5424 syslog messages and their framings (RFC 6587, RFC 5425, RFC 5426).

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]``:
PRI is ``facility * 8 + severity``; the header fields are printable US-ASCII with a
maximum length each (``-`` when empty); a structured-data element is
``[id name="value" ...]`` where a value escapes ``"``, ``\\`` and ``]`` with a backslash;
a MSG in UTF-8 may start with the byte order mark so a receiver knows its encoding.

Stream transports need framing: octet-counting puts the length of the message and a space
before it (RFC 6587 3.4.1, the only framing RFC 5425 allows over TLS) and carries any
byte; the older non-transparent framing ends each message with LF, so a message must not
contain one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FACILITIES",
    "NIL",
    "Header",
    "frame_lf",
    "frame_octet_counting",
    "header_text",
    "message",
    "parse_facility",
    "rfc3339_micro",
    "sd_element",
    "sd_escape",
    "sd_name_ok",
    "truncate_utf8",
]

NIL = "-"
BOM = b"\xef\xbb\xbf"

#: facility names as syslog implementations spell them (RFC 5424 6.2.1 gives the numbers)
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13,
    "alert": 14, "clock": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}  # fmt: skip

# longest value of each header field (RFC 5424 6.2)
HOSTNAME_MAX = 255
APP_NAME_MAX = 48
PROCID_MAX = 128
MSGID_MAX = 32
SD_NAME_MAX = 32


def parse_facility(value: str | int) -> int:
    """A facility name (``local0``, ``authpriv``...) or number 0-23; ValueError otherwise."""
    text = str(value).strip().lower()
    if text.isdigit() and 0 <= int(text) <= 23:
        return int(text)
    if text in FACILITIES:
        return FACILITIES[text]
    raise ValueError(
        f"unknown syslog facility {value!r}: use a number 0-23 or one of " + ", ".join(FACILITIES)
    )


def header_text(value: str, limit: int, space: str = "_") -> str:
    """``value`` as a header field: printable US-ASCII (33-126), at most ``limit`` chars.

    Spaces become ``space``, other characters ``_``; empty gives the NILVALUE ``-``.
    """
    out = []
    for ch in value:
        if ch == " ":
            out.append(space)
        elif "!" <= ch <= "~":
            out.append(ch)
        else:
            out.append("_")
    text = "".join(out)[:limit]
    return text or NIL


def sd_name_ok(name: str) -> bool:
    """An SD-NAME: 1-32 printable US-ASCII characters except ``=``, space, ``]`` and ``"``."""
    return 0 < len(name) <= SD_NAME_MAX and all("!" <= ch <= "~" and ch not in '=]"' for ch in name)


def sd_escape(value: str) -> str:
    """A PARAM-VALUE: ``"``, ``\\`` and ``]`` get a backslash (RFC 5424 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def sd_element(sd_id: str, params: Iterable[tuple[str, str]]) -> str:
    """``[sd_id name="value" ...]``; names must be valid SD-NAMEs (checked)."""
    if not sd_name_ok(sd_id):
        raise ValueError(f"invalid SD-ID {sd_id!r}")
    parts = [sd_id]
    for name, value in params:
        if not sd_name_ok(name):
            raise ValueError(f"invalid SD-PARAM name {name!r}")
        parts.append(f'{name}="{sd_escape(value)}"')
    return "[" + " ".join(parts) + "]"


def rfc3339_micro(ts_ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC): RFC 5424 allows at most 6 fraction digits."""
    import time

    sec, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns // 1000:06d}Z"


@dataclass(frozen=True, slots=True)
class Header:
    """The fields before STRUCTURED-DATA, already valid (see :func:`header_text`)."""

    facility: int
    severity: int
    timestamp: str
    hostname: str = NIL
    app_name: str = NIL
    procid: str = NIL
    msgid: str = NIL

    def encode(self) -> bytes:
        pri = self.facility * 8 + self.severity
        return (
            f"<{pri}>1 {self.timestamp} {self.hostname} {self.app_name} {self.procid} {self.msgid}"
        ).encode("ascii")


def message(header: Header, structured_data: str, msg: bytes, bom: bool) -> bytes:
    """The whole message; ``structured_data`` is ``-`` or one or more elements."""
    head = header.encode() + b" " + structured_data.encode("utf-8", "replace")
    if not msg:
        return head
    return head + b" " + (BOM if bom else b"") + msg


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """The longest prefix of ``data`` within ``limit`` bytes that does not split a character."""
    if len(data) <= limit:
        return data
    cut = max(0, limit)
    # step back over continuation bytes (10xxxxxx) so a multi-byte character stays whole
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


def frame_octet_counting(msg: bytes) -> bytes:
    """``MSG-LEN SP SYSLOG-MSG`` (RFC 6587 3.4.1, RFC 5425 4.3)."""
    return b"%d " % len(msg) + msg


def frame_lf(msg: bytes) -> bytes:
    """Non-transparent framing (RFC 6587 3.4.2): the message then LF.

    A LF inside the message would split it in two at the receiver, so CR and LF inside
    become spaces (our JSON and CEF payloads never contain them; only a structured-data
    value taken from a rule name could).
    """
    return msg.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"

"""Detections as ArcSight Common Event Format (CEF) version 0 lines.

``CEF:0|falconet|falconet|<version>|<signature id>|<name>|<severity>|<extension>``

* signature id: 16 hex characters of a BLAKE2b hash of the rule name, stable across
  releases, so a SIEM can correlate every detection of one rule; name: the rule name.
* severity 0-10 from the Falco priority (see :data:`SEVERITY`): emergency 10, alert 9,
  critical 8, error 7 (High/Very-High bands), warning 6, notice 5 (Medium), informational
  3, debug 1 (Low).
* Two escaping rules. A header field escapes ``\\`` and ``|`` with a backslash (CR and LF
  are not allowed there and become spaces). An extension value escapes ``\\`` and ``=``,
  and writes CR and LF as the two characters ``\\r`` and ``\\n``; a pipe needs no escape.
* Extension keys are CEF dictionary keys filled from the detection and its
  ``output_fields`` (see :data:`FIELD_MAP`); fields without a dictionary key stay in
  ``msg`` (the rule output), unmapped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from falconet import __version__
from falconet.priority import Priority

from .base import SinkRecord

__all__ = ["FIELD_MAP", "SEVERITY", "ext_escape", "format_cef", "header_escape", "signature_id"]

#: Falco priority -> CEF severity (0-10)
SEVERITY: dict[Priority, int] = {
    Priority.EMERGENCY: 10,
    Priority.ALERT: 9,
    Priority.CRITICAL: 8,
    Priority.ERROR: 7,
    Priority.WARNING: 6,
    Priority.NOTICE: 5,
    Priority.INFORMATIONAL: 3,
    Priority.DEBUG: 1,
}

#: CEF key -> Falco output fields tried in order (the first present one wins)
FIELD_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("act", ("ka.verb", "ct.name", "evt.type")),  # deviceAction
    ("suser", ("user.name", "ka.user.name", "ct.user")),  # sourceUserName
    ("suid", ("user.uid",)),  # sourceUserId
    ("sproc", ("proc.name",)),  # sourceProcessName
    ("spid", ("proc.pid",)),  # sourceProcessId
    ("src", ("fd.cip", "ct.srcip")),  # sourceAddress
    ("spt", ("fd.cport",)),  # sourcePort
    ("dst", ("fd.sip",)),  # destinationAddress
    ("dpt", ("fd.sport",)),  # destinationPort
    ("proto", ("fd.l4proto",)),  # transportProtocol
    ("filePath", ("fs.path.name",)),  # filled from fd.name too when it is a path
    ("fname", ("fd.filename",)),  # fileName
    ("request", ("ka.uri",)),  # requestUrl
)

#: deviceCustomString1-6 with their labels
CUSTOM_STRINGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("cs1", "containerId", ("container.id",)),
    ("cs2", "containerImage", ("container.image", "container.image.repository")),
    ("cs3", "k8sNamespace", ("k8s.ns.name", "ka.target.namespace")),
    ("cs4", "k8sPod", ("k8s.pod.name",)),
    ("cs5", "cmdline", ("proc.cmdline",)),
)
#: cs6 carries the rule's tags (comma-separated)
TAGS_KEY = ("cs6", "tags")

_MISSING = (None, "", "<NA>", "N/A")


def header_escape(value: str) -> str:
    """A header field: ``\\`` -> ``\\\\``, ``|`` -> ``\\|``; CR/LF -> space."""
    return (
        value.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r\n", " ")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def ext_escape(value: str) -> str:
    """An extension value: ``\\`` -> ``\\\\``, ``=`` -> ``\\=``, CR -> ``\\r``, LF -> ``\\n``."""
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def signature_id(rule: str) -> str:
    """Stable id of a rule (16 hex chars of BLAKE2b over its name)."""
    return hashlib.blake2b(rule.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _text(value: Any) -> str | None:
    if value in _MISSING:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        items = [str(v) for v in value if v not in _MISSING]
        return ",".join(items) if items else None
    return str(value)


def _first(fields: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        text = _text(fields.get(name))
        if text is not None:
            return text
    return None


def extension(record: SinkRecord) -> list[tuple[str, str]]:
    """The (key, raw value) pairs of a detection's extension, before escaping."""
    d = record.detection
    fields = d.output_fields or {}
    pairs: list[tuple[str, str]] = [("rt", str(d.ts // 1_000_000))]  # deviceReceiptTime, ms
    if d.hostname:
        pairs.append(("dvchost", d.hostname))
    if d.id:
        pairs.append(("externalId", d.id))
    if d.source:
        pairs.append(("cat", d.source))  # deviceEventCategory: syscall, k8s_audit...
    dedup = record.obj.get("dedup")
    if isinstance(dedup, Mapping) and dedup.get("count"):
        pairs.append(("cnt", str(dedup["count"])))  # baseEventCount
    for key, names in FIELD_MAP:
        value = _first(fields, names)
        if key == "filePath" and value is None:
            fd_name = _text(fields.get("fd.name"))
            if fd_name and fd_name.startswith("/"):
                value = fd_name
        if value is not None:
            pairs.append((key, value))
    for key, label, names in CUSTOM_STRINGS:
        value = _first(fields, names)
        if value is not None:
            pairs.append((key, value))
            pairs.append((f"{key}Label", label))
    if d.tags:
        pairs.append((TAGS_KEY[0], ",".join(d.tags)))
        pairs.append((f"{TAGS_KEY[0]}Label", TAGS_KEY[1]))
    pairs.append(("msg", d.output))
    return pairs


def format_cef(record: SinkRecord, version: str = __version__) -> str:
    """One CEF line (no newline) for ``record``."""
    d = record.detection
    header = "|".join(
        [
            "CEF:0",
            "falconet",
            "falconet",
            header_escape(version),
            signature_id(d.rule),
            header_escape(d.rule[:512]),
            str(SEVERITY[d.priority]),
        ]
    )
    ext = " ".join(f"{k}={ext_escape(v)}" for k, v in extension(record))
    return f"{header}|{ext}"

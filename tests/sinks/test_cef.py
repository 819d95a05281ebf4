"""CEF formatting: both escaping rules (header vs extension) with hostile values, the
dictionary keys a SIEM maps, and the severity scale. The parser below is written from the
CEF rules (ArcSight "Implementing ArcSight CEF"), independently of falconet.sinks.cef."""

from __future__ import annotations

import re

import pytest

from falconet import __version__
from falconet.priority import Priority
from falconet.sinks.cef import (
    SEVERITY,
    ext_escape,
    format_cef,
    header_escape,
    signature_id,
)
from tests.sinks.test_syslog import make_record

_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """(the 7 header fields unescaped, the extension as a dict unescaped)."""
    assert line.startswith("CEF:")
    header: list[str] = []
    cur = []
    i = 0
    while len(header) < 7:
        ch = line[i]
        if ch == "\\" and line[i + 1] in "\\|":
            cur.append(line[i + 1])
            i += 2
            continue
        if ch == "|":
            header.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    ext = line[i:]
    # a key starts where an unescaped '=' follows a word at the start or after a space
    starts = []
    for m in _KEY.finditer(ext):
        eq = m.end() - 1
        backslashes = len(ext[:eq]) - len(ext[:eq].rstrip("\\"))
        if backslashes % 2 == 0:
            starts.append((m.start(1), m.group(1), m.end()))
    values: dict[str, str] = {}
    for n, (_, key, vstart) in enumerate(starts):
        vend = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(ext)
        raw = ext[vstart:vend]
        values[key] = re.sub(
            r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw
        )
    return header, values


def test_header_and_extension_escaping_rules_differ() -> None:
    assert header_escape("a|b\\c=d") == "a\\|b\\\\c=d"  # '=' is plain in the header
    assert header_escape("one\ntwo\r\nthree") == "one two three"
    assert ext_escape("a|b\\c=d") == "a|b\\\\c\\=d"  # '|' is plain in the extension
    assert ext_escape("one\ntwo\rthree") == "one\\ntwo\\rthree"


def test_a_plain_detection() -> None:
    record = make_record(2, fields={"user.name": "root", "proc.pid": 4242, "container.id": "c0"})
    d = record.detection
    line = format_cef(record)
    assert line.startswith(
        f"CEF:0|falconet|falconet|{__version__}|{signature_id(d.rule)}|Write below etc|6|"
    )
    header, ext = parse_cef(line)
    assert header == [
        "CEF:0", "falconet", "falconet", __version__, signature_id(d.rule), "Write below etc", "6"
    ]  # fmt: skip
    assert ext["rt"] == str(d.ts // 1_000_000)
    assert ext["externalId"] == d.id
    assert ext["dvchost"] == "node-a"
    assert ext["cat"] == "syscall"
    assert ext["sproc"] == "cat" and ext["spid"] == "4242" and ext["suser"] == "root"
    assert ext["filePath"] == "/etc/x"
    assert ext["cs1"] == "c0" and ext["cs1Label"] == "containerId"
    assert ext["cs6"] == "filesystem,T1565" and ext["cs6Label"] == "tags"
    assert ext["msg"] == "write below etc (n=2)"
    assert "\n" not in line


def test_hostile_values_survive_both_escapings() -> None:
    rule = "Evil | rule \\ with = and\nnewline"
    output = "x=1 | y\\z\r\nmsg=forged cs1=forged \\=\\"
    fields = {
        "proc.name": "evil=proc|x",
        "proc.cmdline": "sh -c 'a=b; echo \\\\n | tee x'",
        "fd.name": "/tmp/a=b|c\\d",
        "user.name": "ro ot=",
        "k8s.ns.name": "<NA>",
    }
    record = make_record(rule=rule, output=output, fields=fields, host="host|1=2")
    line = format_cef(record)
    assert "\n" not in line and "\r" not in line
    header, ext = parse_cef(line)
    assert header[5] == "Evil | rule \\ with = and newline"
    assert ext["msg"] == output
    assert ext["sproc"] == "evil=proc|x"
    assert ext["cs5"] == fields["proc.cmdline"] and ext["cs5Label"] == "cmdline"
    assert ext["filePath"] == "/tmp/a=b|c\\d"
    assert ext["suser"] == "ro ot="
    assert ext["dvchost"] == "host|1=2"
    assert "cs3" not in ext  # Falco's <NA> means absent
    # the forged keys inside msg did not become keys
    assert ext["externalId"] == record.detection.id and "cs1" not in ext


def test_network_and_k8s_audit_fields() -> None:
    record = make_record(
        fields={"fd.cip": "10.0.0.5", "fd.cport": 51515, "fd.sip": "10.0.0.9", "fd.sport": 443,
                "fd.l4proto": "tcp", "fd.name": "10.0.0.5:51515->10.0.0.9:443",
                "fd.filename": None, "ka.verb": "create", "ka.uri": "/api/v1/pods",
                "k8s.ns.name": "prod", "k8s.pod.name": "web-1"},
    )  # fmt: skip
    _, ext = parse_cef(format_cef(record))
    assert (ext["src"], ext["spt"], ext["dst"], ext["dpt"], ext["proto"]) == (
        "10.0.0.5", "51515", "10.0.0.9", "443", "tcp"
    )  # fmt: skip
    assert "filePath" not in ext  # a socket tuple is not a path
    assert ext["act"] == "create" and ext["request"] == "/api/v1/pods"
    assert (ext["cs3"], ext["cs4"]) == ("prod", "web-1")


def test_dedup_count_becomes_cnt() -> None:
    record = make_record()
    obj = dict(record.obj, dedup={"count": 7, "first_time": "a", "last_time": "b"})
    record = type(record)(obj, record.detection, record.raw)
    _, ext = parse_cef(format_cef(record))
    assert ext["cnt"] == "7"


def test_severity_scale_is_monotonic_and_within_0_10() -> None:
    values = [SEVERITY[p] for p in sorted(Priority)]  # emergency first
    assert values == sorted(values, reverse=True)
    assert all(0 <= v <= 10 for v in values)
    assert SEVERITY[Priority.EMERGENCY] == 10 and SEVERITY[Priority.CRITICAL] == 8


@pytest.mark.parametrize("priority", ["Critical", "Notice", "Debug"])
def test_severity_in_header(priority: str) -> None:
    header, _ = parse_cef(format_cef(make_record(priority=priority)))
    assert header[6] == str(SEVERITY[Priority.parse(priority)])


def test_signature_id_is_stable_per_rule() -> None:
    assert signature_id("Write below etc") == signature_id("Write below etc")
    assert signature_id("Write below etc") != signature_id("Write below root")
    assert re.fullmatch(r"[0-9a-f]{16}", signature_id("x|y"))

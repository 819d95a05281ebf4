"""The syslog sink's messages, without a network: RFC 5424 header, structured data,
framing (RFC 6587), size limits, and the settings it refuses. What rsyslog makes of the
messages is in test_syslog_rsyslog.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from falconet.detection import Detection, detection_id
from falconet.errors import ConfigError
from falconet.priority import Priority
from falconet.sinks import rfc5424
from falconet.sinks.base import SinkOptions, SinkRecord
from falconet.sinks.syslog import SyslogSink

TS = 1_718_000_000_123_456_789  # 2024-06-10T06:13:20.123456789Z


def make_record(
    n: int = 0,
    *,
    rule: str = "Write below etc",
    priority: str = "Warning",
    output: str | None = None,
    host: str = "node-a",
    tags: tuple[str, ...] = ("filesystem", "T1565"),
    fields: dict[str, Any] | None = None,
    prefix: str = "e",
) -> SinkRecord:
    """A detection as consumed from detections.v1 (its id depends on rule and event id)."""
    f: dict[str, Any] = {"evt.time": TS + n * 1000, "proc.name": "cat", "fd.name": "/etc/x"}
    f.update(fields or {})
    event_id = f"{prefix}{n}"
    d = Detection(
        time="2024-06-10T06:13:20.123456789Z", rule=rule, priority=Priority.parse(priority),
        output=output if output is not None else f"write below etc (n={n})", output_fields=f,
        source="syscall", tags=tags, hostname=host, id=detection_id(rule, event_id),
        event_id=event_id, ts=TS + n * 1000,
    )  # fmt: skip
    return SinkRecord.from_json(d.to_json(), "falconet.detections.v1", 0, n)


def make_sink(**yaml: Any) -> SyslogSink:
    yaml.setdefault("host", "127.0.0.1")
    return SyslogSink("siem", SinkOptions("siem", SyslogSink.options, yaml, environ={}))


def split(msg: bytes) -> tuple[list[str], str, bytes]:
    """(7 header fields, structured data, body) of a message whose SD has no spaces."""
    head, _, rest = msg.partition(b"] ")
    fields = head.decode().split(" ", 6)
    return fields[:6], fields[6] + "]", rest


def test_header_pri_timestamp_and_defaults() -> None:
    sink = make_sink()
    record = make_record(3, rule="Write below etc")
    msg, reason = sink.message(record)
    assert msg is not None and reason == ""
    pri_version, ts, host, app, procid, msgid = msg.decode().split(" ")[:6]
    # local0 (16) * 8 + warning (4)
    assert pri_version == "<132>1"
    assert ts == "2024-06-10T06:13:20.123459Z"  # microseconds, UTC (n=3 adds 3 us)
    assert (host, app, procid, msgid) == ("node-a", "falconet", "-", "Write_below_etc")
    assert sink.port == 514 and sink.protocol == "tcp"


@pytest.mark.parametrize("priority", [p.name for p in Priority])
def test_severity_is_the_falco_priority(priority: str) -> None:
    sink = make_sink(facility="authpriv")
    msg, _ = sink.message(make_record(priority=priority))
    assert msg is not None
    assert msg.startswith(b"<%d>1 " % (10 * 8 + int(Priority[priority])))


def test_json_body_is_the_detection_with_a_bom() -> None:
    sink = make_sink(format="json")
    record = make_record(1, output="line one\nline two")
    msg, _ = sink.message(record)
    assert msg is not None
    body = msg.split(b"] ", 1)[1]
    assert body.startswith(rfc5424.BOM)
    assert orjson.loads(body[len(rfc5424.BOM) :]) == record.obj


def test_cef_body_has_no_bom_by_default_but_can() -> None:
    record = make_record()
    msg, _ = make_sink(format="cef").message(record)
    assert msg is not None and msg.split(b"] ", 1)[1].startswith(b"CEF:0|falconet|falconet|")
    msg, _ = make_sink(format="cef", utf8_bom="always").message(record)
    assert msg is not None and msg.split(b"] ", 1)[1].startswith(rfc5424.BOM + b"CEF:0|")


def test_structured_data_escapes_quote_backslash_bracket() -> None:
    rule = 'evil "rule" \\ with ] and = in it'
    msg, _ = make_sink().message(make_record(rule=rule, tags=()))
    assert msg is not None
    d = make_record(rule=rule, tags=()).detection
    expected = (
        f'[falconet@32473 id="{d.id}" rule="evil \\"rule\\" \\\\ with \\] and = in it" '
        'priority="Warning" source="syscall"]'
    )
    assert expected.encode() in msg
    # the MSGID keeps printable ASCII only, 32 characters at most
    assert msg.decode().split(" ")[5] == 'evil_"rule"_\\_with_]_and_=_in_it'[:32]


def test_structured_data_off_and_own_sd_id_and_fixed_fields() -> None:
    sink = make_sink(structured_data=False, msgid="detection", hostname="collector 1")
    msg, _ = sink.message(make_record())
    assert msg is not None
    assert msg.decode().split(" ")[2:7] == ["collector_1", "falconet", "-", "detection", "-"]
    sink = make_sink(sd_id="alerts@99999")
    msg, _ = sink.message(make_record())
    assert msg is not None and b"[alerts@99999 id=" in msg


def test_octet_counting_counts_bytes_and_lf_framing_removes_newlines() -> None:
    msg = "<1>1 - - - - - - é\nx".encode()
    assert rfc5424.frame_octet_counting(msg) == b"%d " % len(msg) + msg
    assert len(msg) == len("<1>1 - - - - - - é\nx") + 1  # é is two bytes
    assert rfc5424.frame_lf(msg) == "<1>1 - - - - - - é x\n".encode()
    tcp = make_sink(protocol="tcp")
    assert tcp.frame(b"abc") == b"3 abc"
    assert make_sink(protocol="tcp", framing="lf").frame(b"a\nb") == b"a b\n"
    assert make_sink(protocol="udp").frame(b"a\nb") == b"a\nb"


def test_truncate_utf8_never_splits_a_character() -> None:
    data = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    assert [len(rfc5424.truncate_utf8(data, n)) for n in range(11)] == [
        0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10
    ]  # fmt: skip
    for n in range(11):
        rfc5424.truncate_utf8(data, n).decode("utf-8")


def test_oversize_is_refused_by_default() -> None:
    sink = make_sink(protocol="udp", max_message_bytes=600)
    assert sink.max_message_bytes == 600
    msg, reason = sink.message(make_record(output="x" * 1000))
    assert msg is None and "exceeds max_message_bytes=600" in reason


def test_oversize_truncate_fits_the_limit_exactly() -> None:
    sink = make_sink(protocol="udp", max_message_bytes=600, oversize="truncate")
    msg, reason = sink.message(make_record(output="é" * 1000))
    assert msg is not None and reason == ""
    assert 598 <= len(msg) <= 600  # é is 2 bytes: at most one byte short
    msg.decode("utf-8")


def test_default_limits_follow_the_rfcs() -> None:
    assert make_sink(protocol="udp").max_message_bytes == 2048
    assert make_sink(protocol="tcp").max_message_bytes == 8192
    assert make_sink(protocol="tls").port == 6514


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ({"protocol": "http"}, "protocol"),
        ({"format": "xml"}, "format"),
        ({"framing": "nul"}, "framing"),
        ({"facility": "local9"}, "facility"),
        ({"facility": "24"}, "facility"),
        ({"sd_id": "falconet"}, "sd_id"),
        ({"sd_id": "bad id@1"}, "sd_id"),
        ({"max_message_bytes": 100}, "max_message_bytes"),
        ({"protocol": "udp", "max_message_bytes": 70000}, "max_message_bytes"),
        ({"oversize": "drop"}, "oversize"),
        ({"utf8_bom": "yes"}, "utf8_bom"),
        ({"protocol": "tls", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
)
def test_bad_settings_are_config_errors(setting: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        make_sink(**setting)


def test_host_is_required() -> None:
    with pytest.raises(ConfigError, match="host is required"):
        SyslogSink("siem", SinkOptions("siem", SyslogSink.options, {}, environ={}))


def test_facility_names_and_numbers() -> None:
    assert rfc5424.parse_facility("local7") == 23
    assert rfc5424.parse_facility("AUTHPRIV") == 10
    assert rfc5424.parse_facility(4) == 4


def test_registry_finds_the_sink() -> None:
    from falconet.sinks.registry import destination

    assert destination("syslog") is SyslogSink

"""The syslog sink against a real rsyslogd (tests/sinks/rsyslogd.py) on loopback.

rsyslog is the receiver here (RFC 5424 parser, RFC 5426 UDP, RFC 6587 octet-counting and
LF framing on imtcp, RFC 5425 TLS with gnutls/openssl); each test reads what rsyslog
parsed and wrote to disk, never what the sink believes it sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.errors import SinkError
from falconet.sinks.base import ACCEPTED, SinkOptions, SinkRecord
from falconet.sinks.rfc5424 import rfc3339_micro
from falconet.sinks.syslog import SyslogSink
from tests.sinks.rsyslogd import (
    Rsyslogd,
    TlsFiles,
    free_port,
    make_tls_files,
    require_tls_driver,
    start_rsyslogd,
)
from tests.sinks.test_cef import parse_cef
from tests.sinks.test_syslog import make_record

BOM = "\ufeff"
SD_ID = "falconet@32473"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Rsyslogd]:
    server = start_rsyslogd(tmp_path_factory.mktemp("rsyslog"), tls)
    try:
        yield server
    finally:
        server.stop()


def sink(port: int, **yaml: Any) -> SyslogSink:
    yaml = {"host": "127.0.0.1", "port": port, "timeout_seconds": 5.0, **yaml}
    return SyslogSink("siem", SinkOptions("siem", SyslogSink.options, yaml, environ={}))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def deliver(s: SyslogSink, *batches: list[SinkRecord]) -> list[Any]:
    try:
        return [await s.write(b) for b in batches]
    finally:
        await s.close()


def by_id(server: Rsyslogd, records: list[SinkRecord], timeout: float = 10.0) -> dict[str, dict]:
    """What rsyslog wrote for ``records``, keyed by detection id (from the parsed SD)."""
    ids = {r.id for r in records}
    found = server.wait_for(lambda m: _sd(m).get("id") in ids, count=len(ids), timeout=timeout)
    return {_sd(m)["id"]: m for m in found}


def _sd(m: dict) -> dict:
    return m["sd_parsed"].get(SD_ID, {})


def body(m: dict) -> str:
    msg = m["msg"]
    assert msg.startswith(BOM), "a JSON body is MSG-UTF8: it starts with the BOM"
    return msg[len(BOM) :]


def batch(prefix: str, n: int, **kw: Any) -> list[SinkRecord]:
    return [make_record(i, prefix=prefix, **kw) for i in range(n)]


def assert_rfc5424(m: dict, record: SinkRecord, facility: int = 16) -> None:
    d = record.detection
    assert int(m["pri"]) == facility * 8 + int(d.priority)
    assert (int(m["facility"]), int(m["severity"])) == (facility, int(d.priority))
    assert m["version"] == "1"
    assert m["timestamp"] == rfc3339_micro(d.ts)
    assert m["hostname"] == d.hostname
    assert m["app"] == "falconet"
    assert m["msgid"] == d.rule.replace(" ", "_")[:32]
    sd = _sd(m)
    assert sd["id"] == d.id and sd["rule"] == d.rule and sd["priority"] == d.priority.title


# -- UDP ------------------------------------------------------------------------------------


def test_udp_json(rsyslog: Rsyslogd) -> None:
    records = batch("udp", 3)
    assert run(deliver(sink(rsyslog.udp_port, protocol="udp"), records)) == [ACCEPTED]
    got = by_id(rsyslog, records)
    assert set(got) == {r.id for r in records}
    for r in records:
        m = got[r.id]
        assert m["input"] == "udp"
        assert_rfc5424(m, r)
        assert json.loads(body(m)) == r.obj


def test_udp_oversize_refused_or_truncated(rsyslog: Rsyslogd) -> None:
    small, big = make_record(0, prefix="big"), make_record(1, prefix="big", output="é" * 3000)
    s = sink(rsyslog.udp_port, protocol="udp", max_message_bytes=1024)
    [result] = run(deliver(s, [small, big]))
    assert [(f.index, f.retryable) for f in result.failures] == [(1, False)]
    assert "exceeds max_message_bytes=1024" in result.failures[0].reason
    trunc = make_record(2, prefix="big", output="é" * 3000)
    s = sink(rsyslog.udp_port, protocol="udp", max_message_bytes=1024, oversize="truncate")
    assert run(deliver(s, [trunc])) == [ACCEPTED]
    got = by_id(rsyslog, [small, trunc])
    assert set(got) == {small.id, trunc.id}
    assert len(got[trunc.id]["raw"].encode()) <= 1024
    assert '"output":"éé' in got[trunc.id]["msg"]  # cut inside the JSON, still UTF-8
    assert big.id not in {_sd(m).get("id") for m in rsyslog.messages()}


def test_udp_receiver_down_fails_retryable() -> None:
    s = sink(free_port(__import__("socket").SOCK_DGRAM), protocol="udp")
    with pytest.raises(SinkError) as e:
        run(deliver(s, batch("udpdown", 3)))
    assert e.value.retryable and "ECONNREFUSED" in str(e.value)


# -- TCP ------------------------------------------------------------------------------------


def test_tcp_octet_counting_batch_with_newlines_and_hostile_sd(rsyslog: Rsyslogd) -> None:
    hostile = 'Rule "quoted" \\ back ] bracket\nsecond line'
    records = batch("tcp", 4) + [
        make_record(9, prefix="tcp", rule=hostile, output="out\nwith\r\nnewlines\tand tab")
    ]
    assert run(deliver(sink(rsyslog.tcp_port), records)) == [ACCEPTED]  # one write
    got = by_id(rsyslog, records)
    assert set(got) == {r.id for r in records}  # five messages, none split or merged
    for r in records:
        assert got[r.id]["input"] == "tcp"
        assert json.loads(body(got[r.id])) == r.obj
    m = got[records[-1].id]
    assert _sd(m)["rule"] == hostile  # the raw newline survived inside the frame
    assert json.loads(body(m))["output"] == "out\nwith\r\nnewlines\tand tab"
    assert_rfc5424(got[records[0].id], records[0])


def test_tcp_lf_framing(rsyslog: Rsyslogd) -> None:
    records = batch("lf", 2) + [make_record(5, prefix="lf", rule="two\nlines")]
    assert run(deliver(sink(rsyslog.tcp_port, framing="lf"), records)) == [ACCEPTED]
    got = by_id(rsyslog, records)
    assert set(got) == {r.id for r in records}
    assert _sd(got[records[-1].id])["rule"] == "two lines"  # LF cannot travel in LF framing


def test_priorities_map_to_severities_with_the_facility(rsyslog: Rsyslogd) -> None:
    prios = ["Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational",
             "Debug"]  # fmt: skip
    records = [make_record(i, prefix="prio", priority=p) for i, p in enumerate(prios)]
    assert run(deliver(sink(rsyslog.tcp_port, facility="authpriv"), records)) == [ACCEPTED]
    got = by_id(rsyslog, records)
    for i, r in enumerate(records):
        assert (int(got[r.id]["pri"]), int(got[r.id]["severity"])) == (10 * 8 + i, i)
        assert_rfc5424(got[r.id], r, facility=10)


def test_cef_as_rsyslog_parses_it(rsyslog: Rsyslogd) -> None:
    hostile = make_record(
        1, prefix="cef", rule="Pipe | and \\ rule", output="a=b | c\\d\nnext",
        fields={"proc.name": "x=y|z", "user.name": "root"},
    )  # fmt: skip
    records = [make_record(0, prefix="cef"), hostile]
    assert run(deliver(sink(rsyslog.tcp_port, format="cef"), records)) == [ACCEPTED]
    got = by_id(rsyslog, records)
    for r in records:
        m = got[r.id]
        assert_rfc5424(m, r)
        assert m["msg"].startswith("CEF:0|falconet|falconet|")  # no BOM before CEF
    header, ext = parse_cef(got[hostile.id]["msg"])
    assert header[5] == "Pipe | and \\ rule" and header[6] == "6"
    assert ext["msg"] == "a=b | c\\d\nnext"
    assert ext["sproc"] == "x=y|z" and ext["suser"] == "root"
    assert ext["externalId"] == hostile.id


def test_tcp_receiver_down_fails_retryable() -> None:
    with pytest.raises(SinkError) as e:
        run(deliver(sink(free_port()), batch("down", 2)))
    assert e.value.retryable and "ECONNREFUSED" in str(e.value)


def test_receiver_that_stops_reading_times_out_retryable() -> None:
    """A listener that accepts and never reads (a stuck receiver): once the kernel buffers
    are full, the write makes no progress and fails after timeout_seconds."""

    async def scenario() -> SinkError:
        accepted: list[asyncio.StreamWriter] = []

        async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.append(w)  # keep it open, read nothing

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        s = sink(port, timeout_seconds=0.3, max_message_bytes=16384)
        records = [make_record(i, prefix="stuck", output="x" * 8000) for i in range(120)]
        try:
            for _ in range(40):  # ~1 MB per batch; loopback buffers hold a few MB at most
                await s.write(records)
        except SinkError as e:
            return e
        finally:
            await s.close()
            for w in accepted:
                w.close()
            server.close()
        raise AssertionError("writes into a receiver that never reads kept succeeding")

    err = run(scenario())
    assert err.retryable and "no progress within 0.3s" in str(err)


def test_unknown_host_fails_retryable() -> None:
    for protocol in ("tcp", "udp"):
        s = sink(514, protocol=protocol, host="no-such-host.invalid")
        with pytest.raises(SinkError) as e:
            run(deliver(s, batch("dns", 1)))
        assert e.value.retryable and "cannot resolve no-such-host.invalid" in str(e.value)


# -- TLS ------------------------------------------------------------------------------------


def _need_tls() -> None:
    require_tls_driver()


def test_tls_with_the_right_ca(rsyslog: Rsyslogd, tls: TlsFiles) -> None:
    _need_tls()
    records = batch("tls", 3)
    s = sink(rsyslog.tls_port, protocol="tls", ca_file=str(tls.ca_file))
    assert run(deliver(s, records[:2], records[2:])) == [ACCEPTED, ACCEPTED]
    got = by_id(rsyslog, records)
    assert set(got) == {r.id for r in records}
    assert all(m["input"] == "tls" for m in got.values())
    assert json.loads(body(got[records[2].id])) == records[2].obj


def test_tls_with_a_wrong_ca_is_refused(rsyslog: Rsyslogd, tls: TlsFiles) -> None:
    _need_tls()
    refused = batch("wrongca", 2)
    s = sink(rsyslog.tls_port, protocol="tls", ca_file=str(tls.other_ca_file))
    with pytest.raises(SinkError) as e:
        run(deliver(s, refused))
    assert e.value.retryable
    assert "TLS certificate not trusted" in str(e.value) and "ca_file" in str(e.value)
    # a marker sent afterwards with the right CA arrives; the refused records never do
    marker = make_record(0, prefix="after-wrongca")
    good = sink(rsyslog.tls_port, protocol="tls", ca_file=str(tls.ca_file))
    assert run(deliver(good, [marker])) == [ACCEPTED]
    assert set(by_id(rsyslog, [marker])) == {marker.id}
    delivered = {_sd(m).get("id") for m in rsyslog.messages()}
    assert not delivered & {r.id for r in refused}


def test_tls_server_name_is_verified(rsyslog: Rsyslogd, tls: TlsFiles) -> None:
    _need_tls()
    s = sink(rsyslog.tls_port, protocol="tls", ca_file=str(tls.ca_file),
             tls_server_name="siem.example.com")  # fmt: skip
    with pytest.raises(SinkError, match="not trusted") as e:
        run(deliver(s, batch("badname", 1)))
    assert e.value.retryable


def test_mutual_tls_with_a_client_certificate(rsyslog: Rsyslogd, tls: TlsFiles) -> None:
    _need_tls()
    records = batch("mtls", 2)
    s = sink(rsyslog.mtls_port, protocol="tls", ca_file=str(tls.ca_file),
             client_cert_file=str(tls.client_cert_file),
             client_key_file=str(tls.client_key_file), format="cef")  # fmt: skip
    assert run(deliver(s, records)) == [ACCEPTED]
    got = by_id(rsyslog, records)
    assert {m["input"] for m in got.values()} == {"mtls"}
    assert parse_cef(got[records[0].id]["msg"])[1]["externalId"] == records[0].id


def test_mutual_tls_without_a_client_certificate_fails(rsyslog: Rsyslogd, tls: TlsFiles) -> None:
    """rsyslog checks the client after the handshake and drops the session: the batch
    must fail (retryable), not count as delivered."""
    _need_tls()
    refused = batch("nocert", 2)
    # a generous window: rsyslog closes within milliseconds, the wait ends when it does
    s = sink(rsyslog.mtls_port, protocol="tls", ca_file=str(tls.ca_file), connect_check_ms=5000)
    with pytest.raises(SinkError) as e:
        run(deliver(s, refused))
    assert e.value.retryable and "client certificate" in str(e.value)
    marker = make_record(0, prefix="after-nocert")
    good = sink(rsyslog.mtls_port, protocol="tls", ca_file=str(tls.ca_file),
                client_cert_file=str(tls.client_cert_file),
                client_key_file=str(tls.client_key_file))  # fmt: skip
    assert run(deliver(good, [marker])) == [ACCEPTED]
    assert set(by_id(rsyslog, [marker])) == {marker.id}
    assert not {_sd(m).get("id") for m in rsyslog.messages()} & {r.id for r in refused}


# -- restarts -------------------------------------------------------------------------------


@pytest.fixture
def own_rsyslog(tmp_path: Path, tls: TlsFiles) -> Iterator[Rsyslogd]:
    server = start_rsyslogd(tmp_path / "rsyslog", tls)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", ["tcp", "tls"])
def test_reconnect_after_rsyslog_restarts(
    own_rsyslog: Rsyslogd, tls: TlsFiles, protocol: str
) -> None:
    """No batch is claimed delivered that rsyslog did not write; every batch arrives."""
    if protocol == "tls":
        _need_tls()
    port = own_rsyslog.tls_port if protocol == "tls" else own_rsyslog.tcp_port
    first, second, third, fourth = (batch(f"{protocol}-restart{k}-", 3) for k in range(4))

    async def scenario() -> list[tuple[list[SinkRecord], bool]]:
        s = sink(port, protocol=protocol, ca_file=str(tls.ca_file))
        outcome = []
        try:
            outcome.append((first, (await s.write(first)).ok))
            assert set(by_id(own_rsyslog, first)) == {r.id for r in first}
            # stopped while the loop is blocked: the sink has not yet processed the close
            own_rsyslog.stop()
            # receiver down: the write must fail (retryable), not report success
            try:
                await s.write(second)
                outcome.append((second, True))
            except SinkError as e:
                assert e.retryable
                outcome.append((second, False))
            own_rsyslog.start()
            # what the framework does: retry failed batches until accepted
            for pending in [r for r, ok in outcome if not ok] + [third]:
                for _ in range(3):
                    try:
                        await s.write(pending)
                        outcome.append((pending, True))
                        break
                    except SinkError as e:
                        assert e.retryable
                        outcome.append((pending, False))
            # a restart between two batches: the closed connection is seen before writing
            assert set(by_id(own_rsyslog, third)) == {r.id for r in third}
            own_rsyslog.restart()
            outcome.append((fourth, (await s.write(fourth)).ok))
        finally:
            await s.close()
        return outcome

    outcome = run(scenario())
    assert not outcome[1][1], "a write while rsyslog was down was claimed delivered"
    everything = first + second + third + fourth
    got = by_id(own_rsyslog, everything)
    for records, ok in outcome:
        if ok:
            missing = {r.id for r in records} - set(got)
            assert not missing, f"claimed delivered but rsyslog did not write {missing}"
    assert set(got) == {r.id for r in everything}
    # first, second (failed), second (retried), third, fourth: nothing else needed a retry
    assert [ok for _, ok in outcome] == [True, False, True, True, True]
    for r in everything:
        m = got[r.id]
        assert orjson.loads(body(m).encode()) == r.obj

"""The .scap block reader: framing, every record kind, and clear errors on damaged files.

The module also holds :class:`Capture`, a small writer of synthetic captures the other
``test_scap_*`` modules build their cases with (layouts as libscap writes them).
"""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest

from falconet.sensors.scap import ScapFormatError
from falconet.sensors.scap import blocks as B
from falconet.sensors.scap import events_table as T

C = T.CODES


# -- a writer of synthetic captures --------------------------------------------------------------
def block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def s16(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<H", len(raw)) + raw


def i64(v: int) -> bytes:
    return struct.pack("<q", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def nul_list(items: list[str]) -> bytes:
    return b"".join(cstr(x) for x in items)


class Capture:
    """Builds a capture block by block; ``bytes(capture)`` is the file."""

    def __init__(self, hostname: str = "node-t") -> None:
        self.parts = [block(B.SHB, struct.pack("<IHHq", B.SHB_MAGIC, 1, 2, -1))]
        mi = struct.pack("<IQQ", 2, 1 << 30, 32768) + hostname.encode().ljust(128, b"\0")
        self.parts.append(block(0x201, mi + b"\0" * 32))
        self.ts = 1_700_000_000_000_000_000

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def write(self, path: Path) -> Path:
        path.write_bytes(bytes(self))
        return path

    def threads(self, *entries: bytes) -> Capture:
        self.parts.append(block(B.PL_V9, b"".join(entries)))
        return self

    def fds(self, tid: int, *entries: bytes) -> Capture:
        self.parts.append(block(B.FDL_V2, i64(tid) + b"".join(entries)))
        return self

    def users(self, users: list[tuple[int, int, str]], groups: list[tuple[int, str]]) -> Capture:
        out = b""
        for uid, gid, name in users:
            e = b"\0" + u32(uid) + u32(gid) + s16(name) + s16(f"/home/{name}") + s16("/bin/sh")
            out += u32(len(e) + 4) + e
        for gid, name in groups:
            e = b"\1" + u32(gid) + s16(name)
            out += u32(len(e) + 4) + e
        self.parts.append(block(B.UL_V2, out))
        return self

    def event(self, tid: int, code: int | str, *params: bytes, ts: int | None = None) -> Capture:
        etype = C[code] if isinstance(code, str) else code
        self.ts += 1000
        lens = b"".join(struct.pack("<H", len(p)) for p in params)
        body = b"".join(params)
        length = 26 + len(lens) + len(body)
        hdr = struct.pack("<QQIHI", self.ts if ts is None else ts, tid, length, etype, len(params))
        self.parts.append(block(B.EV_V2, struct.pack("<H", 1) + hdr + lens + body))
        return self


def thread(tid: int, pid: int, ptid: int, comm: str, args: list[str] = (), *, exe: str = "",  # type: ignore[assignment]
           exepath: str = "", cwd: str = "/", uid: int = 0, gid: int = 0,
           cgroups: list[str] = (), env: list[str] = (), loginuid: int = 0xFFFFFFFF) -> bytes:  # type: ignore[assignment]  # fmt: skip
    """A process-list entry (PL_V9, with its length prefix)."""
    body = (
        i64(tid) + i64(pid) + i64(ptid) + i64(pid)  # sid
        + i64(pid)  # vpgid
        + s16(comm) + s16(exe or comm) + s16(exepath or f"/usr/bin/{comm}")
        + s16(nul_list(list(args))) + s16(cwd) + struct.pack("<QIII", 1024, 0, uid, gid)
        + struct.pack("<IIIQQ", 0, 0, 0, 0, 0) + s16(nul_list(list(env)))
        + i64(tid) + i64(pid) + s16(nul_list(list(cgroups))) + s16("/")
        + struct.pack("<QI", 0, 0)  # pidns_init_start_ts, tty
        + u32(loginuid) + b"\0"  # exe_writable
        + struct.pack("<QQQ", 0, 0, 0x3FFFFFFFFF)  # capabilities: inheritable, permitted, effective
        + b"\0" + struct.pack("<QQQ", 0, 0, 0)  # exe_upper_layer, exe_ino, ctime, mtime
        + b"\0\0" + i64(pid)  # exe_from_memfd, exe_lower_layer, pgid
    )  # fmt: skip
    return u32(len(body) + 4) + body


def fd_file(fd: int, name: str, flags: int = 1) -> bytes:
    body = i64(fd) + struct.pack("<QB", 0, B.FD_FILE_V2) + u32(flags) + s16(name) + u32(0)
    return u32(len(body) + 4) + body


def fd_ipv4(fd: int, sip: str, sport: int, dip: str, dport: int) -> bytes:
    def ip(a: str) -> bytes:
        return bytes(int(x) for x in a.split("."))

    body = i64(fd) + struct.pack("<QB", 0, B.FD_IPV4_SOCK) + ip(sip) + ip(dip)
    body += struct.pack("<HHB", sport, dport, 1)
    return u32(len(body) + 4) + body


_WIDTH = {1: "<b", 2: "<h", 3: "<i", 4: "<q", 5: "<B", 6: "<H", 7: "<I", 8: "<Q", 11: "<q",
          14: "<q", 15: "<q", 19: "<B", 20: "<Q", 21: "<Q", 22: "<H", 30: "<I", 31: "<I",
          32: "<I", 42: "<I", 46: "<I", 28: "<B", 29: "<H"}  # fmt: skip


def params_for(code: str, **values: object) -> list[bytes]:
    """The parameters of event ``code`` in the current libs layout, encoded by type; the
    ones not given are empty (what the converter leaves for "not captured")."""
    out = []
    for name, ptype, _fmt, _info in T.EVENTS[C[code]][3]:
        v = values.pop(name, None)
        if v is None:
            out.append(b"")
        elif isinstance(v, bytes):
            out.append(v)
        elif isinstance(v, list):
            out.append(nul_list(v))
        elif isinstance(v, str):
            out.append(cstr(v))
        else:
            out.append(struct.pack(_WIDTH[ptype], v))
    assert not values, f"{code} has no parameters {sorted(values)}"
    return out


TRACES = "falco-tests/traces"


# -- tests -----------------------------------------------------------------------------------------
def read_all(data: bytes, name: str = "t.scap") -> list[B.Record]:
    return list(B.read_records(io.BytesIO(data), name))


def test_reads_a_real_capture_block_by_block(corpus: Path) -> None:
    with gzip.open(corpus / TRACES / "cat_write.scap", "rb") as f:
        recs = list(B.read_records(f, "cat_write.scap"))  # type: ignore[arg-type]
    kinds: dict[str, int] = {}
    for r in recs:
        kinds[type(r).__name__] = kinds.get(type(r).__name__, 0) + 1
    assert kinds == {"SectionHeader": 1, "MachineInfo": 1, "InterfaceRecord": 5, "UserRecord": 32,
                     "GroupRecord": 61, "ThreadRecord": 73, "FdRecord": 384, "EventRecord": 345}  # fmt: skip
    assert recs[0] == B.SectionHeader(0, 1, 0)
    mi = recs[1]
    assert isinstance(mi, B.MachineInfo) and mi.hostname == "ubuntu" and mi.num_cpus == 2
    root = next(r for r in recs if isinstance(r, B.UserRecord) and r.uid == 0)
    assert (root.name, root.homedir, root.shell) == ("root", "/root", "/bin/bash")
    lo = next(r for r in recs if isinstance(r, B.InterfaceRecord) and r.name == "lo")
    assert (lo.family, lo.addr) == (4, "127.0.0.1")
    # the first event is cat's execve exit, in the 2016 layout (16 parameters)
    ev = next(r for r in recs if isinstance(r, B.EventRecord) and T.EVENTS[r.type][0] != "procinfo")
    assert T.EVENTS[ev.type][0] == "execve" and ev.type % 2 == 1 and len(ev.params) == 16
    assert ev.params[1] == b"cat\0" and ev.tid == 20072


def test_every_record_kind_of_a_synthetic_capture() -> None:
    cap = Capture("node-x").threads(
        thread(100, 100, 1, "bash", ["-l"], cwd="/root", uid=1000, env=["HOME=/root"],
               cgroups=["cpuset=/docker/" + "ab" * 32]),  # fmt: skip
    ).fds(100, fd_file(3, "/etc/passwd", flags=1 | (1 << 12)), fd_ipv4(4, "10.0.0.1", 5555, "10.0.0.2", 80))
    cap.users([(1000, 1000, "alice")], [(1000, "staff")])
    cap.event(100, "PPME_SYSCALL_CLOSE_X", i64(0), i64(3))
    recs = read_all(bytes(cap))
    [t] = [r for r in recs if isinstance(r, B.ThreadRecord)]
    assert (t.tid, t.pid, t.ptid, t.comm, t.args, t.cwd, t.uid) == (100, 100, 1, "bash", ("-l",), "/root", 1000)
    assert t.env == ("HOME=/root",) and t.cgroups == (("cpuset", "/docker/" + "ab" * 32),)
    assert t.loginuid == 0xFFFFFFFF and t.pgid == 100 and t.cap_effective == 0x3FFFFFFFFF
    assert not (t.exe_writable or t.exe_upper_layer or t.exe_lower_layer or t.exe_from_memfd)
    f3, f4 = (r for r in recs if isinstance(r, B.FdRecord))
    assert (f3.tid, f3.fd, f3.name, f3.open_flags) == (100, 3, "/etc/passwd", 1 | (1 << 12))
    assert (f4.kind, f4.sip, f4.sport, f4.dip, f4.dport) == (B.FD_IPV4_SOCK, "10.0.0.1", 5555, "10.0.0.2", 80)
    assert [r.name for r in recs if isinstance(r, (B.UserRecord, B.GroupRecord))] == ["alice", "staff"]
    [ev] = [r for r in recs if isinstance(r, B.EventRecord)]
    assert (ev.tid, ev.type, ev.cpu, ev.params) == (100, C["PPME_SYSCALL_CLOSE_X"], 1, (i64(0), i64(3)))


def test_old_event_blocks_have_their_parameter_count_worked_out() -> None:
    # EV blocks before format 1.2 have no nparams field: it follows from the lengths
    params = [i64(0)]
    lens = struct.pack("<H", 8)
    hdr = struct.pack("<QQIH", 5, 42, 22 + len(lens) + 8, C["PPME_SYSCALL_CLOSE_X"])
    data = bytes(Capture()) + block(0x204, struct.pack("<H", 0) + hdr + lens + b"".join(params))
    ev = read_all(data)[-1]
    assert isinstance(ev, B.EventRecord) and ev.params == (i64(0),) and ev.tid == 42


def test_a_truncated_file_names_the_offset_of_the_cut_block() -> None:
    good = bytes(Capture().event(7, "PPME_SYSCALL_CLOSE_X", i64(0), i64(3)))
    last = len(bytes(Capture()))  # where the event block starts
    with pytest.raises(ScapFormatError) as exc:
        read_all(good[:-5], "cut.scap")
    assert exc.value.offset == last
    assert f"cut.scap: at byte {last}: truncated block" in str(exc.value)
    assert "cut short" in str(exc.value)
    with pytest.raises(ScapFormatError, match="truncated block header"):
        read_all(good + b"\x04\x02", "cut.scap")


def test_a_corrupt_block_is_reported_with_its_offset() -> None:
    data = bytearray(Capture().event(7, "PPME_SYSCALL_CLOSE_X", i64(0), i64(3)).__bytes__())
    data[-1] ^= 0x40  # the trailing length no longer matches
    start = len(bytes(Capture()))
    with pytest.raises(ScapFormatError, match=rf"at byte {start}: corrupt block .*trailing length"):
        read_all(bytes(data))
    # an event whose parameter lengths overrun it
    bad = Capture()
    bad.parts.append(block(B.EV_V2, struct.pack("<H", 0) + struct.pack("<QQIHI", 1, 2, 30, 5, 2)
                           + struct.pack("<HH", 8, 8)))  # fmt: skip
    with pytest.raises(ScapFormatError, match=rf"at byte {start}: corrupt event"):
        read_all(bytes(bad))


def test_not_a_capture_and_empty_files() -> None:
    with pytest.raises(ScapFormatError, match="not a libscap capture"):
        read_all(b'{"source": "syscall"}\n')
    with pytest.raises(ScapFormatError, match="empty file"):
        read_all(b"")
    swapped = block(B.SHB, struct.pack(">IHHq", B.SHB_MAGIC, 1, 2, -1))
    with pytest.raises(ScapFormatError, match="big-endian"):
        read_all(swapped)


def test_events_of_newer_libraries_and_unknown_blocks_are_skipped() -> None:
    cap = Capture()
    cap.parts.append(block(0x7777, b"future metadata"))
    cap.event(1, T.PPM_EVENT_MAX + 3, i64(0))
    cap.event(1, "PPME_SYSCALL_CLOSE_X", i64(0), i64(3))
    events = [r for r in read_all(bytes(cap)) if isinstance(r, B.EventRecord)]
    assert [e.type for e in events] == [C["PPME_SYSCALL_CLOSE_X"]]

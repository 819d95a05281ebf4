"""The libscap capture file, block by block.

A ``.scap`` file is a pcapng-like sequence of blocks, each framed as::

    u32 block_type | u32 total_length | body ... padding | u32 total_length

The first block is the section header (type ``0x0A0D0D0A``, byte-order magic
``0x1A2B3C4D``, format version). Metadata blocks follow (machine info, process list, fd
lists, interface list, user list); then event blocks, one event each. Every block kind has
been written in several versions over the years; this module reads all of those libscap
reads (layouts taken from falcosecurity/libs ``scap_savefile.c``) and yields one typed
record per block (per entry for the list blocks).

Only the framing and the record layouts live here; what the records mean is the business
of :mod:`.params`, :mod:`.upgrade` and :mod:`.state`. Anything malformed raises
:class:`ScapFormatError` with the byte offset of the block (and of the entry inside it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from falconet.errors import InputError

from . import events_table as T

# block types (libscap scap_savefile.h); the *_INT values are the pre-release numbers
SHB = 0x0A0D0D0A
SHB_MAGIC = 0x1A2B3C4D
MI = (0x201, 0x8002ABCD)
PL_V1, PL_V2, PL_V3, PL_V4, PL_V5, PL_V6, PL_V7, PL_V8, PL_V9 = (
    0x202, 0x207, 0x209, 0x210, 0x211, 0x212, 0x213, 0x214, 0x215,
)  # fmt: skip
_PL_INT = {0x8000ABCD: PL_V1, 0x8013ABCD: PL_V2, 0x8014ABCD: PL_V3}
_PL_ALL = frozenset((PL_V1, PL_V2, PL_V3, PL_V4, PL_V5, PL_V6, PL_V7, PL_V8, PL_V9))
FDL = (0x203, 0x8001ABCD)
FDL_V2 = 0x218
EV = (0x204, 0x8010ABCD)
EV_V2, EV_V2_LARGE = 0x216, 0x221
EVF = 0x208
EVF_V2, EVF_V2_LARGE = 0x217, 0x222
IL = (0x205, 0x8011ABCD)
IL_V2 = 0x219
UL = (0x206, 0x8012ABCD)
UL_V2 = 0x220

_EVENT_BLOCKS = frozenset((*EV, EV_V2, EV_V2_LARGE, EVF, EVF_V2, EVF_V2_LARGE))
_V2_EVENT_BLOCKS = frozenset((EV_V2, EV_V2_LARGE, EVF_V2, EVF_V2_LARGE))
_FLAG_EVENT_BLOCKS = frozenset((EVF, EVF_V2, EVF_V2_LARGE))

#: A block larger than this is refused (libscap's own event limit is far below it).
MAX_BLOCK_BYTES = 256 * 1024 * 1024

# fd types written in fd lists (libscap scap_fd_type)
FD_FILE, FD_DIRECTORY, FD_IPV4_SOCK, FD_IPV6_SOCK = 1, 2, 3, 4
FD_IPV4_SERVSOCK, FD_IPV6_SERVSOCK, FD_FIFO, FD_UNIX_SOCK = 5, 6, 7, 8
FD_UNSUPPORTED, FD_FILE_V2 = 10, 16

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_BLOCK_HEAD = struct.Struct("<II")
_EVT_HEAD_V1 = struct.Struct("<QQIH")  # ts, tid, len, type
_EVT_HEAD_V2 = struct.Struct("<QQIHI")  # ts, tid, len, type, nparams


class ScapFormatError(InputError):
    """A capture file that cannot be read: truncated, corrupt or of an unknown format."""

    def __init__(self, name: str, offset: int, message: str) -> None:
        super().__init__(f"{name}: at byte {offset}: {message}")
        self.name = name
        self.offset = offset


# -- records ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SectionHeader:
    offset: int
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class MachineInfo:
    offset: int
    num_cpus: int
    memory_bytes: int
    max_pid: int
    hostname: str
    boot_ts: int


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """One entry of a process list block: a thread as it was when the capture started."""

    offset: int
    tid: int
    pid: int
    ptid: int
    sid: int
    vpgid: int
    pgid: int
    comm: str
    exe: str
    exepath: str
    args: tuple[str, ...]
    cwd: str
    fdlimit: int
    flags: int
    uid: int
    gid: int
    vmsize_kb: int
    vmrss_kb: int
    vmswap_kb: int
    pfmajor: int
    pfminor: int
    env: tuple[str, ...]
    vtid: int
    vpid: int
    cgroups: tuple[tuple[str, str], ...]
    root: str
    pidns_init_start_ts: int
    tty: int
    loginuid: int
    exe_writable: bool
    cap_inheritable: int
    cap_permitted: int
    cap_effective: int
    exe_upper_layer: bool
    exe_lower_layer: bool
    exe_from_memfd: bool
    exe_ino: int
    exe_ino_ctime: int
    exe_ino_mtime: int


@dataclass(frozen=True, slots=True)
class FdRecord:
    """One entry of an fd list block. ``kind`` is libscap's fd type number."""

    offset: int
    tid: int
    fd: int
    ino: int
    kind: int
    name: str = ""
    open_flags: int = 0
    dev: int = 0
    sip: str = ""
    dip: str = ""
    sport: int = 0
    dport: int = 0
    l4proto: int = 0


@dataclass(frozen=True, slots=True)
class InterfaceRecord:
    offset: int
    family: int  # 4 or 6
    name: str
    addr: str
    netmask: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    offset: int
    uid: int
    gid: int
    name: str
    homedir: str
    shell: str


@dataclass(frozen=True, slots=True)
class GroupRecord:
    offset: int
    gid: int
    name: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event as stored: its raw parameters, not yet upgraded or decoded.

    ``params`` holds the bytes of each parameter (``b""`` for an empty one).
    """

    offset: int
    ts: int
    tid: int
    type: int
    cpu: int
    dump_flags: int
    params: tuple[bytes, ...]


Record = (
    SectionHeader | MachineInfo | ThreadRecord | FdRecord | InterfaceRecord | UserRecord
    | GroupRecord | EventRecord
)  # fmt: skip


# -- a cursor over one block body ---------------------------------------------------------------
class _Cursor:
    __slots__ = ("base", "buf", "end", "name", "pos")

    def __init__(self, buf: bytes, base: int, name: str, start: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.base = base  # file offset of buf[0]
        self.name = name
        self.pos = start
        self.end = len(buf) if end is None else end

    def fail(self, message: str) -> ScapFormatError:
        return ScapFormatError(self.name, self.base + self.pos, message)

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(f"{what}: needs {n} bytes, only {self.end - self.pos} left in the block")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def i64(self, what: str) -> int:
        return int(_I64.unpack(self.take(8, what))[0])

    def string(self, what: str, limit: int) -> str:
        n = self.u16(what + " length")
        if n > limit:
            raise self.fail(f"{what} length {n} is larger than {limit}")
        return _text(self.take(n, what))

    def raw(self, what: str, limit: int) -> bytes:
        n = self.u16(what + " length")
        if n > limit:
            raise self.fail(f"{what} length {n} is larger than {limit}")
        return self.take(n, what)


def _text(b: bytes) -> str:
    cut = b.find(0)
    if cut >= 0:
        b = b[:cut]
    return b.decode("utf-8", "replace")


def split_nul(b: bytes) -> tuple[str, ...]:
    """``a\\0b\\0c\\0`` → ``("a", "b", "c")`` (args, env, cgroups)."""
    if not b:
        return ()
    if b.endswith(b"\0"):
        b = b[:-1]
    return tuple(p.decode("utf-8", "replace") for p in b.split(b"\0"))


def ipv4_text(raw: int) -> str:
    """A network-order IPv4 address read as a little-endian u32 → dotted text."""
    return ".".join(str((raw >> s) & 0xFF) for s in (0, 8, 16, 24))


def ipv6_text(b: bytes) -> str:
    import ipaddress

    addr = ipaddress.IPv6Address(b)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


# -- the reader ----------------------------------------------------------------------------------
def read_records(f: BinaryIO, name: str) -> Iterator[Record]:
    """Every record of the capture ``f`` (``name`` is used in error messages)."""
    offset = 0
    first = True
    while True:
        head = f.read(8)
        if not head:
            if first:
                raise ScapFormatError(name, 0, "empty file: not a libscap capture")
            return
        if len(head) < 8:
            raise ScapFormatError(
                name, offset, f"truncated block header ({len(head)} of 8 bytes); the file is cut short"
            )
        btype, total = _BLOCK_HEAD.unpack(head)
        if first and btype != SHB:
            raise ScapFormatError(
                name, 0, f"not a libscap capture (first block type 0x{btype:08x}, expected 0x0a0d0d0a)"
            )
        if total < 12 or total % 4 and btype not in _EVENT_BLOCKS:
            raise ScapFormatError(name, offset, f"corrupt block of type 0x{btype:x}: length {total}")
        if total > MAX_BLOCK_BYTES:
            raise ScapFormatError(
                name, offset, f"corrupt block of type 0x{btype:x}: length {total} is implausibly large"
            )
        rest = f.read(total - 8)
        if len(rest) < total - 8:
            raise ScapFormatError(
                name, offset,
                f"truncated block of type 0x{btype:x}: {total} bytes announced, "
                f"{len(rest) + 8} present; the file is cut short",
            )  # fmt: skip
        (trailer,) = _U32.unpack_from(rest, len(rest) - 4)
        if trailer != total:
            raise ScapFormatError(
                name, offset,
                f"corrupt block of type 0x{btype:x}: trailing length {trailer} != leading length {total}",
            )  # fmt: skip
        body = _Cursor(rest, offset + 8, name, 0, len(rest) - 4)
        first = False
        if btype == SHB:
            yield _section_header(body, offset)
        elif btype in _EVENT_BLOCKS:
            ev = _event(body, btype, offset)
            if ev is not None:
                yield ev
        elif btype in MI:
            yield _machine_info(body, offset)
        elif btype in _PL_ALL or btype in _PL_INT:
            yield from _proclist(body, _PL_INT.get(btype, btype))
        elif btype in FDL or btype == FDL_V2:
            yield from _fdlist(body, btype == FDL_V2)
        elif btype in IL or btype == IL_V2:
            yield from _iflist(body, btype == IL_V2)
        elif btype in UL or btype == UL_V2:
            yield from _userlist(body, btype == UL_V2)
        # any other block type is skipped, as libscap does
        offset += total


def _section_header(c: _Cursor, offset: int) -> SectionHeader:
    magic = c.u32("byte-order magic")
    if magic == 0x4D3C2B1A:
        raise c.fail("big-endian captures are not supported")
    if magic != SHB_MAGIC:
        raise ScapFormatError(c.name, offset, f"invalid section header magic 0x{magic:08x}")
    major = c.u16("major version")
    minor = c.u16("minor version")
    if major > 1:
        raise ScapFormatError(c.name, offset, f"capture format version {major}.{minor} is newer than 1.x")
    return SectionHeader(offset, major, minor)


def _machine_info(c: _Cursor, offset: int) -> MachineInfo:
    num_cpus = c.u32("num_cpus")
    memory = c.u64("memory size")
    max_pid = c.u64("max pid")
    hostname = _text(c.take(128, "hostname"))
    boot_ts = c.u64("boot time") if c.left() >= 8 else 0
    return MachineInfo(offset, num_cpus, memory, max_pid, hostname, boot_ts)


def _cgroups(raw: bytes) -> tuple[tuple[str, str], ...]:
    out = []
    for item in split_nul(raw):
        subsys, sep, path = item.partition("=")
        if sep:
            out.append((subsys, path))
    return tuple(out)


def _proclist(c: _Cursor, v: int) -> Iterator[ThreadRecord]:
    while c.left() >= 4:
        start = c.pos
        sub_len = c.u32("entry length") if v == PL_V9 else 0
        entry_end = start + sub_len if sub_len else c.end
        if sub_len and entry_end > c.end:
            raise c.fail(f"process entry of {sub_len} bytes overruns its block")
        tid = c.i64("tid")
        pid = c.i64("pid")
        ptid = c.i64("ptid")
        sid = c.i64("sid") if v >= PL_V6 else -1
        vpgid = c.i64("vpgid") if v >= PL_V8 else -1
        comm = c.string("comm", 1024)
        exe = c.string("exe", 1024)
        exepath = c.string("exepath", 1024) if v >= PL_V7 else ""
        args = split_nul(c.raw("args", 4096))
        cwd = c.string("cwd", 1024)
        fdlimit = c.u64("fdlimit")
        flags = c.u32("flags")
        uid = c.u32("uid")
        gid = c.u32("gid")
        vmsize = vmrss = vmswap = pfmaj = pfmin = 0
        env: tuple[str, ...] = ()
        vtid = vpid = -1
        cgroups: tuple[tuple[str, str], ...] = ()
        root = ""
        if v != PL_V1:
            vmsize = c.u32("vmsize")
            vmrss = c.u32("vmrss")
            vmswap = c.u32("vmswap")
            pfmaj = c.u64("pfmajor")
            pfmin = c.u64("pfminor")
            if v >= PL_V3:
                env = split_nul(c.raw("env", 4096))
            if v >= PL_V4:
                vtid = c.i64("vtid")
                vpid = c.i64("vpid")
                cgroups = _cgroups(c.raw("cgroups", 4096))
                if v >= PL_V5:
                    root = c.string("root", 1024)
        # fields appended later are present only when the entry length leaves room for them
        read = c.pos - start
        tail: dict[str, int] = {}
        fields = _TAIL_FIELDS
        if sub_len and sub_len - read > 29:  # libs >= 0.10 wrote two fields in the middle
            fields = _MIDDLE_FIELDS + _TAIL_FIELDS
        for key, size, signed in fields:
            if sub_len and read + size <= sub_len:
                tail[key] = int.from_bytes(c.take(size, key), "little", signed=signed)
                read += size
        if sub_len:
            if read > sub_len:
                raise c.fail(f"process entry read {read} bytes past its length {sub_len}")
            c.pos = entry_end
        t = tail.get
        yield ThreadRecord(
            c.base + start, tid, pid, ptid, sid, vpgid, t("pgid", -1), comm, exe, exepath, args,
            cwd, fdlimit, flags, uid, gid, vmsize, vmrss, vmswap, pfmaj, pfmin, env, vtid, vpid,
            cgroups, root, t("pidns_init_start_ts", 0), t("tty", 0), t("loginuid", 0xFFFFFFFF),
            bool(t("exe_writable", 0)), t("cap_inheritable", 0), t("cap_permitted", 0),
            t("cap_effective", 0), bool(t("exe_upper_layer", 0)), bool(t("exe_lower_layer", 0)),
            bool(t("exe_from_memfd", 0)), t("exe_ino", 0), t("exe_ino_ctime", 0),
            t("exe_ino_mtime", 0),
        )  # fmt: skip


# (field, size, signed) of the process-entry fields appended over the years, in file order
_MIDDLE_FIELDS = (("pidns_init_start_ts", 8, False), ("tty", 4, False))
_TAIL_FIELDS = (
    ("loginuid", 4, False), ("exe_writable", 1, False), ("cap_inheritable", 8, False),
    ("cap_permitted", 8, False), ("cap_effective", 8, False), ("exe_upper_layer", 1, False),
    ("exe_ino", 8, False), ("exe_ino_ctime", 8, False), ("exe_ino_mtime", 8, False),
    ("exe_from_memfd", 1, False), ("exe_lower_layer", 1, False), ("pgid", 8, True),
)  # fmt: skip


def _fdlist(c: _Cursor, v2: bool) -> Iterator[FdRecord]:
    tid = c.i64("tid")
    while c.left() >= 4:
        start = c.pos
        sub_len = c.u32("entry length") if v2 else 0
        if sub_len and start + sub_len > c.end:
            raise c.fail(f"fd entry of {sub_len} bytes overruns its block")
        fd = c.i64("fd")
        ino = c.u64("ino")
        kind = c.u8("fd type")
        rec: FdRecord
        if kind == FD_IPV4_SOCK:
            sip, dip = c.u32("sip"), c.u32("dip")
            sport, dport, proto = c.u16("sport"), c.u16("dport"), c.u8("l4proto")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, sip=ipv4_text(sip),
                           dip=ipv4_text(dip), sport=sport, dport=dport, l4proto=proto)  # fmt: skip
        elif kind == FD_IPV4_SERVSOCK:
            ip, port, proto = c.u32("ip"), c.u16("port"), c.u8("l4proto")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, sip=ipv4_text(ip), sport=port,
                           l4proto=proto)  # fmt: skip
        elif kind == FD_IPV6_SOCK:
            sip6, dip6 = c.take(16, "sip"), c.take(16, "dip")
            sport, dport, proto = c.u16("sport"), c.u16("dport"), c.u8("l4proto")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, sip=ipv6_text(sip6),
                           dip=ipv6_text(dip6), sport=sport, dport=dport, l4proto=proto)  # fmt: skip
        elif kind == FD_IPV6_SERVSOCK:
            ip6, port, proto = c.take(16, "ip"), c.u16("port"), c.u8("l4proto")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, sip=ipv6_text(ip6), sport=port,
                           l4proto=proto)  # fmt: skip
        elif kind == FD_UNIX_SOCK:
            c.take(16, "unix endpoints")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, name=c.string("name", 1023))
        elif kind == FD_FILE_V2:
            flags = c.u32("open flags")
            name = c.string("name", 1023)
            dev = 0
            if sub_len and sub_len >= c.pos - start + 4:
                dev = c.u32("dev")
            rec = FdRecord(c.base + start, tid, fd, ino, kind, name=name, open_flags=flags, dev=dev)
        elif kind == 0:
            rec = FdRecord(c.base + start, tid, fd, ino, kind)
        elif kind <= 21:
            rec = FdRecord(c.base + start, tid, fd, ino, kind, name=c.string("name", 1023))
        else:  # a newer library's fd type
            rec = FdRecord(c.base + start, tid, fd, ino, FD_UNSUPPORTED, name=f"unknown-type:[{kind}]")
        if sub_len:
            if c.pos - start > sub_len:
                raise c.fail(f"fd entry read past its length {sub_len}")
            c.pos = start + sub_len
        yield rec


def _iflist(c: _Cursor, v2: bool) -> Iterator[InterfaceRecord]:
    import ipaddress

    while c.left() >= 4:
        start = c.pos
        entry = c.u32("entry length") if v2 else 0
        body_start = c.pos
        kind = c.u16("interface type")
        namelen = c.u16("interface name length")
        if kind in (1, 3):  # IPv4, with or without link speed
            addr, mask = c.u32("addr"), c.u32("netmask")
            c.u32("broadcast")
            if kind == 1:
                c.u64("link speed")
            name = _text(c.take(namelen, "interface name"))
            rec = InterfaceRecord(c.base + start, 4, name, ipv4_text(addr), ipv4_text(mask))
        elif kind in (2, 4):
            addr6, mask6 = c.take(16, "addr"), c.take(16, "netmask")
            c.take(16, "broadcast")
            if kind == 2:
                c.u64("link speed")
            name = _text(c.take(namelen, "interface name"))
            rec = InterfaceRecord(
                c.base + start, 6, name, str(ipaddress.IPv6Address(addr6)),
                str(ipaddress.IPv6Address(mask6)),
            )  # fmt: skip
        else:
            raise c.fail(f"unknown interface type {kind}")
        if entry:
            c.pos = max(c.pos, body_start + entry)
            if c.pos > c.end:
                raise c.fail("interface entry overruns its block")
        yield rec


def _userlist(c: _Cursor, v2: bool) -> Iterator[UserRecord | GroupRecord]:
    while c.left() >= 4:
        start = c.pos
        sub_len = c.u32("entry length") if v2 else 0
        kind = c.u8("entry type")
        rec: UserRecord | GroupRecord
        if kind == 0:
            uid, gid = c.u32("uid"), c.u32("gid")
            name = c.string("user name", 255)
            home = c.string("home directory", 255)
            shell = c.string("shell", 255)
            rec = UserRecord(c.base + start, uid, gid, name, home, shell)
        else:
            gid = c.u32("gid")
            rec = GroupRecord(c.base + start, gid, c.string("group name", 255))
        if sub_len:
            if c.pos - start > sub_len:
                raise c.fail(f"user entry read past its length {sub_len}")
            c.pos = start + sub_len
        yield rec


def _event(c: _Cursor, btype: int, offset: int) -> EventRecord | None:
    cpu = c.u16("cpu id")
    dump_flags = c.u32("event flags") if btype in _FLAG_EVENT_BLOCKS else 0
    evt_start = c.pos
    v2 = btype in _V2_EVENT_BLOCKS
    if v2:
        ts, tid, length, etype, nparams = _EVT_HEAD_V2.unpack(c.take(26, "event header"))
        head = 26
    else:
        ts, tid, length, etype = _EVT_HEAD_V1.unpack(c.take(22, "event header"))
        head = 22
    if etype >= T.PPM_EVENT_MAX:
        return None  # an event of a newer library: libscap skips it too
    info = T.EVENTS[etype]
    large = bool(info[2] & T.EF_LARGE_PAYLOAD)
    lsize = 4 if large else 2
    avail = c.end - evt_start
    if not v2 and etype in _LEN_QUIRK:
        length -= 3  # old captures over-state the length of these two events
    if length < head or length > avail:
        raise ScapFormatError(
            c.name, offset, f"corrupt event block: event length {length} does not fit the block ({avail} bytes)"
        )
    end = evt_start + length
    if v2:
        if head + nparams * lsize > length:
            raise ScapFormatError(c.name, offset, f"corrupt event: {nparams} parameters do not fit {length} bytes")
        lens = [_param_len(c, large) for _ in range(nparams)]
    else:
        lens = _guess_lengths(c, etype, end, lsize, offset)
    params = []
    for i, n in enumerate(lens):
        if c.pos + n > end:
            raise ScapFormatError(c.name, offset, f"corrupt event: parameter {i} ({n} bytes) overruns the event")
        params.append(c.buf[c.pos : c.pos + n])
        c.pos += n
    return EventRecord(offset, ts, tid, etype, cpu, dump_flags, tuple(params))


_LEN_QUIRK = frozenset((T.CODES["PPME_NOTIFICATION_E"], T.CODES["PPME_INFRASTRUCTURE_EVENT_E"]))


def _param_len(c: _Cursor, large: bool) -> int:
    return c.u32("parameter length") if large else c.u16("parameter length")


def _guess_lengths(c: _Cursor, etype: int, end: int, lsize: int, offset: int) -> list[int]:
    """Old event blocks do not store the parameter count: as libscap does, try the count of
    the event table and fewer until the lengths account for the event exactly."""
    buf, start = c.buf, c.pos
    code = "I" if lsize == 4 else "H"
    for n in range(len(T.EVENTS[etype][3]), -1, -1):
        vals = start + n * lsize
        if vals > end:
            continue
        lens = list(struct.unpack_from("<" + code * n, buf, start)) if n else []
        total = vals + sum(lens)
        if total < end:
            break
        if total == end:
            c.pos = vals
            return lens
    raise ScapFormatError(c.name, offset, "corrupt event: cannot work out its parameter count")

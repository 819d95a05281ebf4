"""Event parameters: from their stored bytes to Python values, and to libsinsp's text.

:func:`decode` turns the bytes of one parameter into a value according to its libs type
(``PT_*``): ``int`` for numbers, fds, pids, flags, uids…; ``str`` for strings and paths;
``bytes`` for byte buffers; :class:`SockAddr` / :class:`SockTuple` for socket addresses;
a list of ``(fd, flags)`` for fd lists. An empty parameter (length 0, which the savefile
converter uses for "not captured") decodes to ``None``.

:func:`flags_text` and :func:`mode_text` render flag words the way libsinsp prints them
(``O_RDONLY|O_CLOEXEC``, ``S_IRUSR|S_IWUSR``); :func:`buffer_text` renders byte buffers
(non-printable bytes as ``.``).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

from . import events_table as T

_INT_FORMATS: dict[int, str] = {
    T.PT_INT8: "<b", T.PT_INT16: "<h", T.PT_INT32: "<i", T.PT_INT64: "<q",
    T.PT_UINT8: "<B", T.PT_UINT16: "<H", T.PT_UINT32: "<I", T.PT_UINT64: "<Q",
    T.PT_ERRNO: "<q", T.PT_FD: "<q", T.PT_PID: "<q", T.PT_SYSCALLID: "<H",
    T.PT_SIGTYPE: "<B", T.PT_RELTIME: "<Q", T.PT_ABSTIME: "<Q", T.PT_PORT: "<H",
    T.PT_L4PROTO: "<B", T.PT_SOCKFAMILY: "<B", T.PT_BOOL: "<I", T.PT_FLAGS8: "<B",
    T.PT_FLAGS16: "<H", T.PT_FLAGS32: "<I", T.PT_UID: "<I", T.PT_GID: "<I",
    T.PT_SIGSET: "<I", T.PT_MODE: "<I", T.PT_ENUMFLAGS8: "<B", T.PT_ENUMFLAGS16: "<H",
    T.PT_ENUMFLAGS32: "<I", T.PT_FD32: "<i", T.PT_PID32: "<i",
}  # fmt: skip
_STRING_TYPES = frozenset((T.PT_CHARBUF, T.PT_FSPATH, T.PT_FSRELPATH))
#: Width in bytes of the fixed-size types (libs ppm_param_min_len_from_type), for defaults.
FIXED_WIDTH: dict[int, int] = {t: struct.calcsize(f) for t, f in _INT_FORMATS.items()}
FIXED_WIDTH.update({T.PT_IPV4ADDR: 4, T.PT_IPV6ADDR: 16, T.PT_DOUBLE: 8})

# PPM socket families (driver/ppm_events_public.h)
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10


@dataclass(frozen=True, slots=True)
class SockAddr:
    family: int
    ip: str = ""
    port: int = 0
    path: str = ""

    def text(self) -> str:
        if self.family == AF_UNIX:
            return self.path
        if self.family in (AF_INET, AF_INET6):
            return f"{self.ip}:{self.port}"
        return f"family {self.family}"


@dataclass(frozen=True, slots=True)
class SockTuple:
    """``sip:sport->dip:dport`` for IP sockets; for unix sockets the two kernel endpoints
    and the path."""

    family: int
    sip: str = ""
    sport: int = 0
    dip: str = ""
    dport: int = 0
    path: str = ""
    src: int = 0
    dst: int = 0

    def text(self) -> str:
        if self.family == AF_UNIX:
            return f"{self.src:x}->{self.dst:x} {self.path}"
        return f"{self.sip}:{self.sport}->{self.dip}:{self.dport}"


def _cstr(b: bytes) -> str:
    cut = b.find(0)
    if cut >= 0:
        b = b[:cut]
    return b.decode("utf-8", "replace")


def _ip6(b: bytes) -> str:
    addr = ipaddress.IPv6Address(b)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


def _ip4(b: bytes) -> str:
    return ".".join(str(x) for x in b[:4])


def decode(ptype: int, raw: bytes, info: Any = None) -> Any:
    """The value of one parameter (``None`` when it is empty or cannot be read)."""
    if not raw:
        return None
    fmt = _INT_FORMATS.get(ptype)
    if fmt is not None:
        width = FIXED_WIDTH[ptype]
        if len(raw) < width:  # a shorter encoding: widen it (unsigned)
            return int.from_bytes(raw, "little", signed=fmt[1].islower())
        return struct.unpack_from(fmt, raw)[0]
    if ptype in _STRING_TYPES:
        return _cstr(raw)
    if ptype == T.PT_BYTEBUF:
        return bytes(raw)
    if ptype == T.PT_SOCKADDR:
        return _sockaddr(raw)
    if ptype == T.PT_SOCKTUPLE:
        return _socktuple(raw)
    if ptype == T.PT_FDLIST:
        return _fdlist(raw)
    if ptype == T.PT_IPV4ADDR:
        return _ip4(raw)
    if ptype == T.PT_IPV6ADDR:
        return _ip6(raw[:16]) if len(raw) >= 16 else None
    if ptype == T.PT_IPADDR:
        return _ip4(raw) if len(raw) == 4 else _ip6(raw[:16]) if len(raw) >= 16 else None
    if ptype == T.PT_DOUBLE:
        return struct.unpack_from("<d", raw)[0] if len(raw) >= 8 else None
    if ptype == T.PT_DYN and isinstance(info, str):
        sub = T.DYNAMIC_PARAMS.get(info, {}).get(raw[0])
        return None if sub is None else decode(sub[0], raw[1:])
    return bytes(raw)


def dyn_type(info: Any, raw: bytes) -> int | None:
    """The concrete type of a ``PT_DYN`` parameter (its first byte selects it)."""
    if not raw or not isinstance(info, str):
        return None
    sub = T.DYNAMIC_PARAMS.get(info, {}).get(raw[0])
    return None if sub is None else sub[0]


def _sockaddr(raw: bytes) -> SockAddr | None:
    fam = raw[0]
    if fam == AF_INET and len(raw) >= 7:
        return SockAddr(fam, _ip4(raw[1:5]), struct.unpack_from("<H", raw, 5)[0])
    if fam == AF_INET6 and len(raw) >= 19:
        return SockAddr(fam, _ip6(raw[1:17]), struct.unpack_from("<H", raw, 17)[0])
    if fam == AF_UNIX:
        return SockAddr(fam, path=_cstr(raw[1:]))
    return SockAddr(fam)


def _socktuple(raw: bytes) -> SockTuple | None:
    fam = raw[0]
    if fam == AF_INET and len(raw) >= 13:
        sport, dport = struct.unpack_from("<H", raw, 5)[0], struct.unpack_from("<H", raw, 11)[0]
        return SockTuple(fam, _ip4(raw[1:5]), sport, _ip4(raw[7:11]), dport)
    if fam == AF_INET6 and len(raw) >= 37:
        sport, dport = struct.unpack_from("<H", raw, 17)[0], struct.unpack_from("<H", raw, 35)[0]
        return SockTuple(fam, _ip6(raw[1:17]), sport, _ip6(raw[19:35]), dport)
    if fam == AF_UNIX and len(raw) >= 17:
        src, dst = struct.unpack_from("<QQ", raw, 1)
        return SockTuple(fam, path=_cstr(raw[17:]), src=src, dst=dst)
    return None


def _fdlist(raw: bytes) -> list[tuple[int, int]]:
    if len(raw) < 2:
        return []
    (n,) = struct.unpack_from("<H", raw)
    out = []
    for i in range(n):
        pos = 2 + 10 * i
        if pos + 10 > len(raw):
            break
        fd, flags = struct.unpack_from("<qh", raw, pos)
        out.append((fd, flags))
    return out


# -- text --------------------------------------------------------------------------------------
def flags_text(value: int, table: str | None, exact: bool) -> str:
    """libsinsp's rendering of a flags (or enum, ``exact``) word; "" when nothing matches."""
    entries = T.FLAG_TABLES.get(table or "", ())
    names: list[str] = []
    if exact:
        names = [n for n, v in entries if v == value]
        return "|".join(names)
    rest = value
    for name, flag in entries:
        if (flag == 0 and value == 0) or (flag != 0 and rest & flag == flag and rest != 0):
            names.append(name)
            rest &= ~flag
            if flag == value:
                break
    return "|".join(names)


def mode_text(value: int, table: str | None) -> str:
    """libsinsp's rendering of a ``PT_MODE`` word (``S_IRUSR|S_IWUSR``)."""
    entries = T.FLAG_TABLES.get(table or "", ())
    names: list[str] = []
    rest = value
    i = 0
    while i < len(entries) and entries[i][1] != value:
        name, flag = entries[i]
        if (flag == 0 and value == 0) or (flag != 0 and rest & flag == flag and rest != 0):
            names.append(name)
            rest &= ~flag
        i += 1
    if i < len(entries):
        names.append(entries[i][0])
    return "|".join(names)


def buffer_text(b: bytes) -> str:
    """A byte buffer as libsinsp prints it by default: printable ASCII kept, the rest ``.``."""
    return "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in b)


#: libsinsp's signal names (sinsp_utils::signal_to_str)
SIGNALS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
    7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
    13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
    18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
    24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH",
    29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}  # fmt: skip

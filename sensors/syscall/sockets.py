"""Socket fds as libsinsp describes them: type, l4proto, client/server ends, tuple name."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .params import ip_text

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
TCP_ESTABLISHED = 1
_L4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}

_SOCK = struct.Struct("<HHHHHHI16s16s")  # struct fn_sock
_UADDR = struct.Struct("<HHI16s104s")  # struct fn_uaddr


@dataclass(frozen=True, slots=True)
class KernelSock:
    """The socket behind an fd, as the kernel holds it after the call."""

    family: int
    type: int
    proto: int
    state: int
    lport: int
    rport: int
    laddr: bytes
    raddr: bytes

    @classmethod
    def parse(cls, raw: bytes) -> KernelSock:
        f, t, p, st, lp, rp, _pad, la, ra = _SOCK.unpack_from(raw)
        return cls(f, t, p, st, lp, rp, la, ra)

    @property
    def l4proto(self) -> str:
        if self.type == SOCK_RAW:
            return "raw"
        return _L4.get(self.proto, "tcp" if self.type == SOCK_STREAM else "udp")


@dataclass(frozen=True, slots=True)
class UserAddr:
    """A sockaddr the process passed (connect, sendto, sendmsg) or received (recvfrom)."""

    family: int
    port: int
    addr: bytes
    path: str

    @classmethod
    def parse(cls, raw: bytes) -> UserAddr:
        f, port, _len, addr, path = _UADDR.unpack_from(raw)
        if path[:1] == b"\0":  # abstract unix name
            text = "@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        else:
            text = path.split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(f, port, addr, text)

    def text(self) -> str:
        """``evt.arg.addr``: ``ip:port`` or the unix path."""
        if self.family in (AF_INET, AF_INET6):
            return f"{ip_text(self.family, self.addr)}:{self.port}"
        if self.family == AF_UNIX:
            return self.path
        return f"family {self.family}"


def fd_type(family: int, raddr_or_laddr: bytes = b"") -> str:
    if family == AF_INET:
        return "ipv4"
    if family == AF_INET6:
        # IPv4-mapped IPv6 sockets are ipv4 for libsinsp
        if raddr_or_laddr[:12] == b"\0" * 10 + b"\xff\xff":
            return "ipv4"
        return "ipv6"
    if family == AF_UNIX:
        return "unix"
    return "unknown"


def socket_fd(num: int, ks: KernelSock | None, ua: UserAddr | None, role: str,
              previous: str | None = None, io: bool = False) -> tuple[dict[str, object], str]:  # fmt: skip
    """The ``fd`` object of a socket event and its tuple text.

    ``role`` is ``client`` (this process connected / sent), ``server`` (it accepted /
    received from a peer) or ``bound`` (a listening socket). The remote end comes from the
    kernel when the socket is connected, else from the address the call passed. For the
    I/O calls (``io``) of a UDP socket, ``name_changed`` says whether the tuple differs from
    the ``previous`` one this fd had (libsinsp's unconnected-UDP peer tracking).
    """
    family = ks.family if ks is not None else (ua.family if ua is not None else 0)
    fd: dict[str, object] = {"num": num}
    if family == AF_UNIX:
        fd["type"] = "unix"
        name = ua.path if ua is not None else ""
        fd["name"] = name
        return fd, name
    if family not in (AF_INET, AF_INET6):
        return fd, ""
    lip = ip_text(family, ks.laddr) if ks is not None else "0.0.0.0"
    lport = ks.lport if ks is not None else 0
    if ks is not None and ks.rport:
        rip, rport = ip_text(family, ks.raddr), ks.rport
    elif ua is not None and ua.family in (AF_INET, AF_INET6):
        rip, rport = ip_text(ua.family, ua.addr), ua.port
    else:
        rip, rport = ("0.0.0.0" if family == AF_INET else "::"), 0
    fd["type"] = fd_type(family, ks.laddr if ks is not None else b"")
    fd["l4proto"] = ks.l4proto if ks is not None else "tcp"
    if role == "bound":
        fd.update(bound=True, sip=lip, sport=lport, name=f"{lip}:{lport}")
        return fd, f"{lip}:{lport}"
    if role == "server":
        cip, cport, sip, sport = rip, rport, lip, lport
    else:
        cip, cport, sip, sport = lip, lport, rip, rport
    name = f"{cip}:{cport}->{sip}:{sport}"
    fd.update(name=name, role=role, cip=cip, cport=cport, sip=sip, sport=sport)
    fd["connected"] = ks is not None and ks.state == TCP_ESTABLISHED
    if io and fd["l4proto"] == "udp":
        fd["name_changed"] = name != previous
    return fd, name

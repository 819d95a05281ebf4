"""The machine state a capture describes: threads, their fd tables, users and groups.

The capture's tables (process list, fd lists, user list, interface list) seed the
:class:`Tracker`; :mod:`.parser` then evolves it event by event. A thread the capture
never described becomes a placeholder (comm ``<NA>``), as libsinsp creates one. The
:class:`Context` of an event is its thread and the fd it uses or created.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import blocks as B
from . import events_table as T
from .decoded import ScapEvent

C = T.CODES

# clone flags and fd-related constants (driver/ppm_events_public.h)
CL_CLONE_FILES = 1 << 0
CL_CLONE_NEWPID = 1 << 6
CL_CLONE_PARENT = 1 << 8
CL_CLONE_THREAD = 1 << 13
CL_CLONE_INVERTED = 1 << 16
CL_CLONE_VFORK = 1 << 27
CL_CHILD_IN_PIDNS = 1 << 29
O_DIRECTORY = 1 << 10
O_CLOEXEC = 1 << 12
O_F_CREATED = 1 << 14
FD_UPPER_LAYER = 1 << 15
FD_LOWER_LAYER = 1 << 16
AT_FDCWD = -100
AF_NETLINK = 16
EXE_WRITABLE, EXE_UPPER_LAYER, EXE_FROM_MEMFD, EXE_LOWER_LAYER = 1, 2, 4, 8
UINT32_MAX = 0xFFFFFFFF

#: libscap fd type numbers → the ``fd.type`` names of docs/events.md
FD_KINDS = {
    1: "file", 2: "directory", 3: "ipv4", 4: "ipv6", 5: "ipv4", 6: "ipv6", 7: "pipe",
    8: "unix", 9: "event", 10: "unsupported", 11: "signalfd", 12: "eventpoll", 13: "inotify",
    14: "timerfd", 15: "netlink", 16: "file", 17: "bpf", 18: "userfaultfd", 19: "io_uring",
    20: "memfd", 21: "pidfd", 0: "unknown",
}  # fmt: skip
L4 = {1: "tcp", 2: "udp", 3: "icmp", 4: "raw"}

_CONTAINER_ID = re.compile(
    r"(?:^|/|docker-|crio-|cri-containerd-|libpod-|containerd-)([0-9a-f]{64})(?:\.scope)?(?:/|$)"
)


@dataclass(slots=True)
class Fd:
    """One entry of an fd table (mutable: connect, bind … update it in place)."""

    kind: str
    name: str = ""
    nameraw: str | None = None
    open_flags: int = 0
    dev: int = 0
    ino: int = 0
    l4proto: str | None = None
    role: str | None = None  # "client" / "server"
    bound: bool = False
    cip: str = ""
    cport: int = 0
    sip: str = ""
    sport: int = 0
    connected: bool = False

    def copy(self) -> Fd:
        return Fd(self.kind, self.name, self.nameraw, self.open_flags, self.dev, self.ino,
                  self.l4proto, self.role, self.bound, self.cip, self.cport, self.sip,
                  self.sport, self.connected)  # fmt: skip


@dataclass(slots=True)
class Thread:
    tid: int
    pid: int = -1
    ptid: int = -1
    sid: int = -1
    vpgid: int = -1
    pgid: int = -1
    vtid: int = -1
    vpid: int = -1
    comm: str = "<NA>"
    exe: str = "<NA>"
    exepath: str = ""
    args: list[str] = field(default_factory=list)
    cwd: str = ""
    env: list[str] = field(default_factory=list)
    cgroups: list[tuple[str, str]] = field(default_factory=list)
    root: str = ""
    fdlimit: int = 0
    uid: int = UINT32_MAX
    gid: int = UINT32_MAX
    loginuid: int = UINT32_MAX
    tty: int = 0
    cap_inheritable: int = 0
    cap_permitted: int = 0
    cap_effective: int = 0
    exe_writable: bool = False
    exe_upper_layer: bool = False
    exe_lower_layer: bool = False
    exe_from_memfd: bool = False
    exe_ino: int = 0
    exe_ino_ctime: int = 0
    exe_ino_mtime: int = 0
    vmsize_kb: int = 0
    vmrss_kb: int = 0
    vmswap_kb: int = 0
    pfmajor: int = 0
    pfminor: int = 0
    pidns_init_start_ts: int = 0
    clone_ts: int = 0
    lastexec_ts: int = 0
    flags: int = 0
    placeholder: bool = False
    fds: dict[int, Fd] = field(default_factory=dict)
    # libsinsp's per-thread "last event" bookkeeping
    last_type: int = -1
    last_fd: int = -1
    last_enter: ScapEvent | None = None
    enter_valid: bool = False


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str
    name: str = ""
    type: str = ""
    image: str = ""


@dataclass(slots=True)
class Context:
    """What an event is evaluated with: its thread and fd (both may be missing)."""

    thread: Thread | None = None
    fd: Fd | None = None
    fdnum: int | None = None
    enter: ScapEvent | None = None


def with_slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def concat_paths(base: str, path: str) -> str:
    """libsinsp's concatenate_paths: ``path`` when absolute, else ``base``+``path``,
    normalized (``.``, ``..``, ``//``)."""
    if not path:
        return base
    full = path if path.startswith("/") else (base or "") + path
    if not full.startswith("/"):
        return full
    norm = posixpath.normpath(full)
    if norm.startswith("//"):
        norm = norm[1:]
    return norm


def container_id(cgroups: list[tuple[str, str]]) -> str:
    """The 12-character container id found in a thread's cgroups; "" for host processes."""
    for _subsys, path in cgroups:
        m = _CONTAINER_ID.search(path)
        if m:
            return m.group(1)[:12]
    return ""


def split_nul(v: Any) -> list[str]:
    if isinstance(v, bytes):
        return list(B.split_nul(v))
    return []


def cgroup_pairs(v: Any) -> list[tuple[str, str]]:
    out = []
    for item in split_nul(v):
        subsys, sep, path = item.partition("=")
        if sep:
            out.append((subsys, path))
    return out


class Tracker:
    """Threads, fds, users and groups of one capture, evolved event by event."""

    def __init__(self) -> None:
        self.threads: dict[int, Thread] = {}
        self.users: dict[int, B.UserRecord] = {}
        self.groups: dict[int, B.GroupRecord] = {}
        self.local_ips: set[str] = set()
        self.containers: dict[str, ContainerInfo] = {}
        self.boot_ts = 0
        self._pending: list[Callable[[], None]] = []

    # -- the capture's tables ------------------------------------------------------------------
    def load(self, rec: B.Record) -> None:
        if isinstance(rec, B.ThreadRecord):
            self._load_thread(rec)
        elif isinstance(rec, B.FdRecord):
            self._load_fd(rec)
        elif isinstance(rec, B.UserRecord):
            self.users[rec.uid] = rec
        elif isinstance(rec, B.GroupRecord):
            self.groups[rec.gid] = rec
        elif isinstance(rec, B.InterfaceRecord):
            self.local_ips.add(rec.addr)
        elif isinstance(rec, B.MachineInfo):
            self.boot_ts = rec.boot_ts

    def _load_thread(self, r: B.ThreadRecord) -> None:
        old = self.threads.get(r.tid)
        t = Thread(
            tid=r.tid, pid=r.pid, ptid=r.ptid, sid=r.sid, vpgid=r.vpgid, pgid=r.pgid,
            vtid=r.vtid, vpid=r.vpid, comm=r.comm, exe=r.exe, exepath=r.exepath,
            args=list(r.args), cwd=with_slash(r.cwd) if r.cwd else "", env=list(r.env),
            cgroups=list(r.cgroups), root=r.root, fdlimit=r.fdlimit, uid=r.uid, gid=r.gid,
            loginuid=r.loginuid, tty=r.tty, cap_inheritable=r.cap_inheritable,
            cap_permitted=r.cap_permitted, cap_effective=r.cap_effective,
            exe_writable=r.exe_writable, exe_upper_layer=r.exe_upper_layer,
            exe_lower_layer=r.exe_lower_layer, exe_from_memfd=r.exe_from_memfd,
            exe_ino=r.exe_ino, exe_ino_ctime=r.exe_ino_ctime, exe_ino_mtime=r.exe_ino_mtime,
            vmsize_kb=r.vmsize_kb, vmrss_kb=r.vmrss_kb, vmswap_kb=r.vmswap_kb,
            pfmajor=r.pfmajor, pfminor=r.pfminor, pidns_init_start_ts=r.pidns_init_start_ts,
            flags=r.flags,
        )  # fmt: skip
        if old is not None:
            t.fds = old.fds
        self.threads[r.tid] = t

    def _load_fd(self, r: B.FdRecord) -> None:
        t = self.threads.get(r.tid)
        if t is None:
            return
        kind = FD_KINDS.get(r.kind, "unknown")
        fd = Fd(kind, r.name, ino=r.ino, open_flags=r.open_flags, dev=r.dev)
        if r.kind == B.FD_FILE_V2 and r.open_flags & O_DIRECTORY:
            fd.kind = "directory"
        if r.kind in (B.FD_IPV4_SOCK, B.FD_IPV6_SOCK):
            fd.l4proto = L4.get(r.l4proto)
            fd.cip, fd.cport, fd.sip, fd.sport = r.sip, r.sport, r.dip, r.dport
            fd.name = f"{r.sip}:{r.sport}->{r.dip}:{r.dport}"
            # libsinsp's proc scan decides the role from which side is local
            fd.role = "client" if r.sip in self.local_ips or not self.local_ips else "server"
        elif r.kind in (B.FD_IPV4_SERVSOCK, B.FD_IPV6_SERVSOCK):
            fd.l4proto = L4.get(r.l4proto)
            fd.bound, fd.role = True, "server"
            fd.sip, fd.sport = r.sip, r.sport
            fd.name = f"{r.sip}:{r.sport}"
        t.fds[r.fd] = fd

    # -- lookups ---------------------------------------------------------------------------------
    def find(self, tid: int) -> Thread | None:
        return self.threads.get(tid)

    def get(self, tid: int) -> Thread:
        """The thread, or a new placeholder as libsinsp adds for unknown threads."""
        t = self.threads.get(tid)
        if t is None:
            t = Thread(tid=tid, placeholder=True)
            self.threads[tid] = t
        return t

    def main_of(self, t: Thread) -> Thread:
        if t.tid != t.pid and t.pid > 0:
            m = self.threads.get(t.pid)
            if m is not None:
                return m
        return t

    def fd_table(self, t: Thread) -> dict[int, Fd]:
        return self.main_of(t).fds

    def cwd(self, t: Thread) -> str:
        return self.main_of(t).cwd

    def parent(self, t: Thread) -> Thread | None:
        m = self.main_of(t)
        return self.threads.get(m.ptid) if m.ptid >= 0 else None

    def container_of(self, t: Thread) -> str:
        return container_id(self.main_of(t).cgroups or t.cgroups)

    # -- updates (used by the parser) ---------------------------------------------------------
    def run_pending(self) -> None:
        """The removals libsinsp delays until the next event (closed fds, exited threads)."""
        for action in self._pending:
            action()
        self._pending.clear()

    def add_fd(self, ctx: Context, num: int, fd: Fd) -> None:
        assert ctx.thread is not None
        self.fd_table(ctx.thread)[num] = fd
        ctx.fd, ctx.fdnum = fd, num

    def remove_fd_later(self, t: Thread, num: int) -> None:
        table = self.fd_table(t)
        self._pending.append(lambda: table.pop(num, None))

    def remove_thread_later(self, tid: int) -> None:
        self._pending.append(lambda: self.threads.pop(tid, None))

    def container_json(self, ev: ScapEvent) -> None:
        """Container metadata from a container event of the capture."""
        import json

        text = ev.at(0)
        if not isinstance(text, str):
            return
        try:
            doc = json.loads(text)
        except ValueError:
            return
        c = doc.get("container", doc) if isinstance(doc, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            return
        kinds = {0: "docker", 1: "lxc", 2: "libvirt-lxc", 3: "mesos", 4: "rkt", 5: "custom",
                 6: "cri", 7: "containerd", 8: "cri-o", 9: "bpm", 10: "static", 11: "podman"}  # fmt: skip
        ctype = c.get("type")
        self.containers[c["id"][:12]] = ContainerInfo(
            c["id"][:12], str(c.get("name") or ""),
            kinds.get(ctype, str(ctype)) if ctype is not None else "", str(c.get("image") or ""),
        )  # fmt: skip


def dirfd_base(tr: Tracker, t: Thread, name: str, dirfd: int) -> str:
    """libsinsp's parse_dirfd: the directory a relative path is resolved against."""
    if name.startswith("/"):
        return "."
    if dirfd == AT_FDCWD:
        return tr.cwd(t)
    fd = tr.fd_table(t).get(dirfd)
    if fd is None:
        return "<UNKNOWN>"
    return fd.name if not fd.name or fd.name.endswith("/") else fd.name + "/"


def ip_is_local(ip: str, local: set[str]) -> bool:
    if ip in local:
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback and any(
            ipaddress.ip_address(a).is_loopback for a in local
        )
    except ValueError:
        return False

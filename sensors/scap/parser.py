"""What events do to the state: libsinsp's parser, for the events that change it.

:class:`Parser` takes the events of a capture in order. For each it first does what
libsinsp's ``sinsp_parser::reset`` does (find the thread — a placeholder when unknown —,
pair an exit with the enter event the parser kept, find the fd the event uses), then
applies the event (``userspace/libsinsp/parsers.cpp``): clone/fork create threads, execve
replaces the program, procexit removes the thread *after* its event; open, socket, accept,
pipe, dup … add fds, close removes them *after* its event; connect and bind fill socket
addresses; chdir, setuid & co update the thread. The result is the :class:`~.state.Context`
the event is evaluated in.
"""

from __future__ import annotations

from collections.abc import Callable

from . import events_table as T
from .decoded import ScapEvent
from .params import AF_INET, AF_INET6, AF_UNIX, SockAddr, SockTuple
from .state import (
    AF_NETLINK,
    AT_FDCWD,
    CL_CHILD_IN_PIDNS,
    CL_CLONE_FILES,
    CL_CLONE_INVERTED,
    CL_CLONE_NEWPID,
    CL_CLONE_PARENT,
    CL_CLONE_THREAD,
    CL_CLONE_VFORK,
    EXE_FROM_MEMFD,
    EXE_LOWER_LAYER,
    EXE_UPPER_LAYER,
    EXE_WRITABLE,
    O_CLOEXEC,
    O_DIRECTORY,
    O_F_CREATED,
    UINT32_MAX,
    Context,
    Fd,
    Thread,
    Tracker,
    cgroup_pairs,
    concat_paths,
    dirfd_base,
    split_nul,
    with_slash,
)

C = T.CODES


class Parser:
    """Applies the events of one capture to its :class:`~.state.Tracker`."""

    def __init__(self, tracker: Tracker) -> None:
        self.tr = tracker
        self._handlers = _handlers(tracker)

    def process(self, ev: ScapEvent) -> Context:
        """Update the state with ``ev`` and return the context it is evaluated in."""
        tr = self.tr
        tr.run_pending()
        ctx = Context()
        etype, flags = ev.type, ev.flags
        if etype in _META_NO_THREAD:
            if etype == C["PPME_CONTAINER_JSON_2_E"]:
                tr.container_json(ev)
            return ctx
        if flags & T.EF_SKIPPARSERESET:
            if etype == C["PPME_PROCINFO_E"]:
                ctx.thread = tr.find(ev.tid)
            return ctx
        if etype in _NO_OS_QUERY:
            t = tr.find(ev.tid)
        else:
            t = tr.get(ev.tid)
        ctx.thread = t
        if etype == C["PPME_SCHEDSWITCH_6_E"] or t is None:
            if t is None and etype in _NO_OS_QUERY and etype != C["PPME_PROCEXIT_1_E"]:
                self._handle(ev, ctx)
            return ctx
        if ev.is_enter:
            self._reset_enter(ev, t, ctx)
        else:
            self._reset_exit(ev, t, ctx)
        self._handle(ev, ctx)
        return ctx

    def _reset_enter(self, ev: ScapEvent, t: Thread, ctx: Context) -> None:
        t.last_fd = -1
        t.last_type = ev.type
        if ev.flags & T.EF_USES_FD:
            loc = 4 if ev.name in ("mmap", "mmap2") else 1 if ev.name == "splice" else 0
            fd = ev.at(loc)
            if isinstance(fd, int):
                t.last_fd = fd
                ctx.fdnum = fd
                ctx.fd = self.tr.fd_table(t).get(fd)
        if ev.type in _STORED_ENTERS and not (ev.type in _STORE_IF_PARAM0 and ev.empty(0)):
            t.last_enter = ev

    def _reset_exit(self, ev: ScapEvent, t: Thread, ctx: Context) -> None:
        if (ev.type == C["PPME_SYSCALL_EXECVE_19_X"] and t.last_type == C["PPME_SYSCALL_EXECVEAT_E"]) or (
            ev.type == t.last_type + 1
        ):
            t.enter_valid = True
        else:
            t.enter_valid = False
            t.last_fd = -1
        if t.enter_valid and t.last_enter is not None:
            ctx.enter = self._matching_enter(ev, t)
        if not ev.flags & T.EF_USES_FD:
            return
        if t.last_fd == -1:
            loc = _EXIT_FD_LOCATION.get(ev.type, -1)
            if loc >= 0:
                fd = ev.at(loc)
                if isinstance(fd, int):
                    t.last_fd = fd
        if t.last_fd != -1 or ev.type in _EXIT_FD_LOCATION:
            ctx.fdnum = t.last_fd
        ctx.fd = self.tr.fd_table(t).get(t.last_fd)

    @staticmethod
    def _matching_enter(ev: ScapEvent, t: Thread) -> ScapEvent | None:
        enter = t.last_enter
        if enter is None:
            return None
        if ev.type == C["PPME_SYSCALL_EXECVE_19_X"] and enter.type == C["PPME_SYSCALL_EXECVEAT_E"]:
            return enter
        return enter if enter.type == ev.type - 1 else None

    def _handle(self, ev: ScapEvent, ctx: Context) -> None:
        h = self._handlers.get(ev.type)
        if h is not None:
            h(ev, ctx)
        if ctx.thread is not None and not ev.is_enter:
            ctx.thread.last_enter = None


# -- the event handlers (libsinsp parser subset) -------------------------------------------------
def _codes(*names: str) -> frozenset[int]:
    return frozenset(C["PPME_" + n] for n in names)


_META_NO_THREAD = _codes("CONTAINER_JSON_2_E", "USER_ADDED_E", "USER_DELETED_E", "GROUP_ADDED_E",
                         "GROUP_DELETED_E", "PLUGINEVENT_E", "ASYNCEVENT_E")  # fmt: skip
_CLONE_EXITS = _codes("SYSCALL_CLONE_20_X", "SYSCALL_FORK_20_X", "SYSCALL_VFORK_20_X", "SYSCALL_CLONE3_X")
_NO_OS_QUERY = _CLONE_EXITS | _codes("SCHEDSWITCH_6_E", "PROCEXIT_1_E")
# enter events libsinsp keeps for their exit (TOCTOU-safe open paths, execve filename,
# connect address); the first five only when they carry their first parameter
_STORE_IF_PARAM0 = _codes("SYSCALL_OPEN_E", "SYSCALL_CREAT_E", "SYSCALL_OPENAT_2_E",
                          "SYSCALL_OPENAT2_E", "SYSCALL_EXECVE_19_E")  # fmt: skip
_STORED_ENTERS = _STORE_IF_PARAM0 | _codes("SYSCALL_EXECVEAT_E", "SOCKET_CONNECT_E")


def _exit_fd_location() -> dict[int, int]:
    """Where an exit event carries the fd it uses (libscap get_exit_event_fd_location): the
    first fd parameter other than the return value; splice names its output fd."""
    out: dict[int, int] = {}
    for code, (name, _cat, flags, params) in enumerate(T.EVENTS):
        if code % 2 == 0 or not flags & T.EF_USES_FD or flags & T.EF_OLD_VERSION:
            continue
        if name == "splice":
            out[code] = next(i for i, p in enumerate(params) if p[0] == "fd_out")
            continue
        for i, p in enumerate(params):
            if p[1] == T.PT_FD and p[0] != "res":
                out[code] = i
                break
    return out


_EXIT_FD_LOCATION = _exit_fd_location()


def _handlers(tr: Tracker) -> dict[int, Callable[[ScapEvent, Context], None]]:
    h: dict[int, Callable[[ScapEvent, Context], None]] = {}

    def on(*names: str) -> Callable[[Callable[[ScapEvent, Context], None]], Callable[[ScapEvent, Context], None]]:
        def deco(fn: Callable[[ScapEvent, Context], None]) -> Callable[[ScapEvent, Context], None]:
            for n in names:
                h[C[n]] = fn
            return fn

        return deco

    # ---- processes --------------------------------------------------------------------------
    @on("PPME_SYSCALL_CLONE_20_X", "PPME_SYSCALL_FORK_20_X", "PPME_SYSCALL_VFORK_20_X",
        "PPME_SYSCALL_CLONE3_X")  # fmt: skip
    def clone_exit(ev: ScapEvent, ctx: Context) -> None:
        res = ev.res
        if res is None or res < 0:
            return
        flags = ev.int_at(15)
        if res == 0:
            _clone_child(tr, ev, ctx, flags)
        else:
            _clone_caller(tr, ev, ctx, res, flags)

    @on("PPME_SYSCALL_EXECVE_19_X", "PPME_SYSCALL_EXECVEAT_X")
    def execve_exit(ev: ScapEvent, ctx: Context) -> None:
        t = ctx.thread
        if t is None or (ev.res or 0) < 0:
            return
        _apply_exec(tr, ev, ctx, t)

    @on("PPME_PROCEXIT_1_E")
    def procexit(ev: ScapEvent, ctx: Context) -> None:
        if ctx.thread is not None:
            tr.remove_thread_later(ev.tid)

    @on("PPME_SYSCALL_CHDIR_X", "PPME_SYSCALL_GETCWD_X")
    def chdir(ev: ScapEvent, ctx: Context) -> None:
        path = ev.at(1)
        if ctx.thread is not None and (ev.res or 0) >= 0 and isinstance(path, str):
            m = tr.main_of(ctx.thread)
            m.cwd = with_slash(concat_paths(m.cwd, path))

    @on("PPME_SYSCALL_FCHDIR_X")
    def fchdir(ev: ScapEvent, ctx: Context) -> None:
        if ctx.thread is not None and ctx.fd is not None and (ev.res or 0) >= 0:
            tr.main_of(ctx.thread).cwd = with_slash(ctx.fd.name)

    def _set_ids(ev: ScapEvent, ctx: Context, key: str, index: int) -> None:
        t = ctx.thread
        if t is None or (ev.res or 0) < 0 or ev.empty(index):
            return
        v = ev.at(index)
        if isinstance(v, int) and v != UINT32_MAX:
            setattr(t, key, v)

    for name, key, idx in (
        ("PPME_SYSCALL_SETUID_X", "uid", 1), ("PPME_SYSCALL_SETRESUID_X", "uid", 2),
        ("PPME_SYSCALL_SETREUID_X", "uid", 2), ("PPME_SYSCALL_SETGID_X", "gid", 1),
        ("PPME_SYSCALL_SETRESGID_X", "gid", 2), ("PPME_SYSCALL_SETREGID_X", "gid", 2),
    ):  # fmt: skip
        h[C[name]] = lambda ev, ctx, key=key, idx=idx: _set_ids(ev, ctx, key, idx)

    @on("PPME_SYSCALL_SETSID_X")
    def setsid(ev: ScapEvent, ctx: Context) -> None:
        if ctx.thread is not None and (ev.res or -1) >= 0:
            ctx.thread.sid = ev.res or 0

    @on("PPME_SYSCALL_CHROOT_X")
    def chroot(ev: ScapEvent, ctx: Context) -> None:
        path = ev.at(1)
        if ctx.thread is not None and (ev.res or 0) == 0 and isinstance(path, str):
            ctx.thread.root = concat_paths(tr.cwd(ctx.thread), path)

    @on("PPME_SYSCALL_CAPSET_X")
    def capset(ev: ScapEvent, ctx: Context) -> None:
        t = ctx.thread
        if t is None or (ev.res or 0) < 0:
            return
        t.cap_inheritable, t.cap_permitted, t.cap_effective = ev.int_at(1), ev.int_at(2), ev.int_at(3)

    # ---- files ------------------------------------------------------------------------------
    @on("PPME_SYSCALL_OPEN_X", "PPME_SYSCALL_CREAT_X", "PPME_SYSCALL_OPENAT_2_X",
        "PPME_SYSCALL_OPENAT2_X", "PPME_SYSCALL_OPEN_BY_HANDLE_AT_X")  # fmt: skip
    def open_exit(ev: ScapEvent, ctx: Context) -> None:
        _open_exit(tr, ev, ctx)

    @on("PPME_SYSCALL_CLOSE_X")
    def close_exit(ev: ScapEvent, ctx: Context) -> None:
        if (ev.res or 0) >= 0 and ctx.fd is not None and ctx.thread is not None and ctx.fdnum is not None:
            tr.remove_fd_later(ctx.thread, ctx.fdnum)

    @on("PPME_SYSCALL_DUP_1_X", "PPME_SYSCALL_DUP2_X", "PPME_SYSCALL_DUP3_X")
    def dup_exit(ev: ScapEvent, ctx: Context) -> None:
        res = ev.res
        if ctx.thread is None or res is None or res < 0 or ctx.fd is None:
            return
        fd = ctx.fd.copy()
        fd.open_flags &= ~O_CLOEXEC
        if ev.name == "dup3" and ev.int_at(3) & O_CLOEXEC:
            fd.open_flags |= O_CLOEXEC
        tr.add_fd(ctx, res, fd)

    @on("PPME_SYSCALL_FCNTL_X")
    def fcntl_exit(ev: ScapEvent, ctx: Context) -> None:
        cmd = ev.int_at(2)
        res = ev.res
        if ctx.thread is None or res is None or res < 0 or ctx.fd is None:
            return
        if cmd == 3:  # PPM_FCNTL_F_SETFD
            ctx.fd.open_flags &= ~O_CLOEXEC
            if ev.int_at(3) & 1:
                ctx.fd.open_flags |= O_CLOEXEC
            return
        if cmd in (1, 26):  # PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC
            fd = ctx.fd.copy()
            fd.open_flags = (fd.open_flags & ~O_CLOEXEC) | (O_CLOEXEC if cmd == 26 else 0)
            tr.add_fd(ctx, res, fd)

    @on("PPME_SYSCALL_PIPE_X", "PPME_SYSCALL_PIPE2_X")
    def pipe_exit(ev: ScapEvent, ctx: Context) -> None:
        if ctx.thread is None or (ev.res or 0) < 0:
            return
        flags = ev.int_at(4) if ev.name == "pipe2" else 0
        ino = ev.int_at(3)
        second = Fd("pipe", ino=ino, open_flags=flags)
        tr.add_fd(ctx, ev.int_at(2), second)
        tr.add_fd(ctx, ev.int_at(1), Fd("pipe", ino=ino, open_flags=flags))

    single = {
        "PPME_SYSCALL_EVENTFD_X": "event", "PPME_SYSCALL_EVENTFD2_X": "event",
        "PPME_SYSCALL_SIGNALFD_X": "signalfd", "PPME_SYSCALL_SIGNALFD4_X": "signalfd",
        "PPME_SYSCALL_TIMERFD_CREATE_X": "timerfd", "PPME_SYSCALL_INOTIFY_INIT_X": "inotify",
        "PPME_SYSCALL_INOTIFY_INIT1_X": "inotify", "PPME_SYSCALL_BPF_2_X": "bpf",
        "PPME_SYSCALL_USERFAULTFD_X": "userfaultfd", "PPME_SYSCALL_IO_URING_SETUP_X": "io_uring",
        "PPME_SYSCALL_EPOLL_CREATE_X": "eventpoll", "PPME_SYSCALL_EPOLL_CREATE1_X": "eventpoll",
        "PPME_SYSCALL_PIDFD_OPEN_X": "pidfd", "PPME_SYSCALL_PIDFD_GETFD_X": "unknown",
    }  # fmt: skip

    def single_fd(ev: ScapEvent, ctx: Context, kind: str) -> None:
        res = ev.res
        if ctx.thread is None or res is None or res < 0:
            return
        tr.add_fd(ctx, res, Fd(kind))

    for name, kind in single.items():
        h[C[name]] = lambda ev, ctx, kind=kind: single_fd(ev, ctx, kind)

    @on("PPME_SYSCALL_MEMFD_CREATE_X")
    def memfd_exit(ev: ScapEvent, ctx: Context) -> None:
        res = ev.res
        name = ev.at(1)
        if ctx.thread is None or res is None or res < 0:
            return
        tr.add_fd(ctx, res, Fd("memfd", name=f"memfd:{name}" if isinstance(name, str) else "memfd:"))

    # ---- sockets ----------------------------------------------------------------------------
    @on("PPME_SOCKET_SOCKET_X")
    def socket_exit(ev: ScapEvent, ctx: Context) -> None:
        res = ev.res
        if ctx.thread is None or res is None or res < 0:
            return
        tr.add_fd(ctx, res, _new_socket(ev.int_at(1), ev.int_at(2), ev.int_at(3)))

    @on("PPME_SOCKET_SOCKETPAIR_X")
    def socketpair_exit(ev: ScapEvent, ctx: Context) -> None:
        if ctx.thread is None or (ev.res or 0) < 0:
            return
        fd1, fd2 = ev.int_at(1), ev.int_at(2)
        if fd1 == fd2:
            return
        tr.add_fd(ctx, fd2, Fd("unix"))
        tr.add_fd(ctx, fd1, Fd("unix"))

    @on("PPME_SOCKET_BIND_X")
    def bind_exit(ev: ScapEvent, ctx: Context) -> None:
        addr = ev.at(1)
        fd = ctx.fd
        if fd is None or (ev.res or 0) < 0 or not isinstance(addr, SockAddr):
            return
        if addr.family in (AF_INET, AF_INET6) and addr.port > 0:
            fd.kind = "ipv6" if addr.family == AF_INET6 and ":" in addr.ip else "ipv4"
            fd.bound, fd.role = True, "server"
            fd.sip, fd.sport = addr.ip, addr.port
        fd.name = addr.text()

    @on("PPME_SOCKET_CONNECT_X")
    def connect_exit(ev: ScapEvent, ctx: Context) -> None:
        fd = ctx.fd
        res = ev.res
        if ctx.thread is None or fd is None or res is None:
            return
        if res < 0 and res != -115:  # EINPROGRESS
            return
        fd.connected = True
        enter_addr = ctx.enter.at(1) if ctx.enter is not None else None
        tup = ev.at(1)
        if ev.empty(1):
            if isinstance(enter_addr, SockAddr):
                _client_from_addr(fd, enter_addr)
            return
        if not isinstance(tup, SockTuple):
            return
        addr = ev.at(3)
        dest = addr if isinstance(addr, SockAddr) else enter_addr
        _fill_client(fd, tup, dest if isinstance(dest, SockAddr) else None)

    @on("PPME_SOCKET_ACCEPT_5_X", "PPME_SOCKET_ACCEPT4_6_X")
    def accept_exit(ev: ScapEvent, ctx: Context) -> None:
        res = ev.res
        tup = ev.at(1)
        if ctx.thread is None or res is None or res < 0 or not isinstance(tup, SockTuple):
            return
        if tup.family == AF_UNIX:
            fd = Fd("unix", name=tup.text())
        else:
            ipv6 = ":" in tup.sip or ":" in tup.dip
            fd = Fd("ipv6" if ipv6 else "ipv4", name=tup.text(), l4proto="tcp", cip=tup.sip,
                    cport=tup.sport, sip=tup.dip, sport=tup.dport)  # fmt: skip
        fd.role, fd.connected = "server", True
        if ev.name == "accept4" and ev.int_at(5) & O_CLOEXEC:
            fd.open_flags |= O_CLOEXEC
        tr.add_fd(ctx, res, fd)

    io_with_tuple = ("PPME_SOCKET_SENDTO_X", "PPME_SOCKET_SENDMSG_X", "PPME_SOCKET_RECVFROM_X",
                     "PPME_SOCKET_RECVMSG_X")  # fmt: skip

    def io_tuple(ev: ScapEvent, ctx: Context) -> None:
        fd = ctx.fd
        if fd is None or fd.kind not in ("ipv4", "ipv6") or fd.bound or (ev.res or 0) < 0:
            return
        i = ev.index("tuple")
        tup = ev.at(i) if i >= 0 else None
        if not isinstance(tup, SockTuple) or tup.family == AF_UNIX:
            return
        if fd.role is None or (fd.l4proto == "udp" and (fd.cip, fd.cport) == ("", 0)):
            _fill_client(fd, tup, None)

    for name in io_with_tuple:
        h[C[name]] = io_tuple
    return h


def _new_socket(domain: int, stype: int, proto: int) -> Fd:
    if domain == AF_UNIX:
        return Fd("unix")
    if domain == AF_NETLINK:
        return Fd("netlink")
    if domain not in (AF_INET, AF_INET6):
        return Fd("unknown")
    raw = stype == 3
    l4: str | None = None
    if proto == 6:
        l4 = "raw" if raw else "tcp"
    elif proto == 17:
        l4 = "raw" if raw else "udp"
    elif proto == 0:
        l4 = {1: "tcp", 2: "udp"}.get(stype & 0xFF)
    elif proto == 1:
        l4 = "raw" if raw else "icmp"
    elif proto == 255:
        l4 = "raw"
    return Fd("ipv4" if domain == AF_INET else "ipv6", l4proto=l4)


def _fill_client(fd: Fd, tup: SockTuple, dest: SockAddr | None) -> None:
    if tup.family == AF_UNIX:
        fd.kind = "unix"
        fd.name = tup.text() if not dest else f"{tup.src:x}->{tup.dst:x} {dest.path}"
    else:
        dip, dport = tup.dip, tup.dport
        if dest is not None and dest.family in (AF_INET, AF_INET6) and (dip in ("0.0.0.0", "::") or not dport):
            dip, dport = dest.ip, dest.port
        fd.kind = "ipv6" if ":" in tup.sip or ":" in dip else "ipv4"
        fd.cip, fd.cport, fd.sip, fd.sport = tup.sip, tup.sport, dip, dport
        fd.name = f"{fd.cip}:{fd.cport}->{fd.sip}:{fd.sport}"
    if fd.role is None:
        fd.role = "client"


def _client_from_addr(fd: Fd, addr: SockAddr) -> None:
    if addr.family == AF_UNIX:
        fd.name = addr.path
    elif addr.family in (AF_INET, AF_INET6):
        fd.sip, fd.sport = addr.ip, addr.port
        fd.name = f"{fd.cip or ('0.0.0.0' if addr.family == AF_INET else '::')}:{fd.cport}->{addr.ip}:{addr.port}"
    if fd.role is None:
        fd.role = "client"


def _open_exit(tr: Tracker, ev: ScapEvent, ctx: Context) -> None:
    t = ctx.thread
    if t is None:
        return
    name_idx = {"open": 1, "creat": 1, "openat": 2, "openat2": 2, "open_by_handle_at": 3}[ev.name]
    name = ev.at(name_idx)
    name = name if isinstance(name, str) else "<NA>"
    flags = 0
    if ev.name in ("open", "openat", "openat2", "open_by_handle_at"):
        flags = ev.int_at({"open": 2, "openat": 3, "openat2": 3, "open_by_handle_at": 2}[ev.name])
    dev = ev.int_at(ev.index("dev"))
    ino = ev.int_at(ev.index("ino"))
    enter = ctx.enter
    sdir = ""
    if ev.name in ("open", "creat"):
        if enter is not None:
            ename = enter.at(0)
            if isinstance(ename, str) and ename != "<NA>":
                name = ename
                added = flags & ~(O_F_CREATED - 1) if ev.name == "open" else 0
                flags = (enter.int_at(1) if ev.name == "open" else 0) | added
        sdir = tr.cwd(t)
    elif ev.name in ("openat", "openat2"):
        dirfd = ev.at(1)
        if enter is not None:
            ename = enter.at(1)
            if isinstance(ename, str) and ename != "<NA>":
                name = ename
                flags = enter.int_at(2) | (flags & ~(O_F_CREATED - 1))
                dirfd = enter.at(0)
        if isinstance(dirfd, int):
            sdir = dirfd_base(tr, t, name, dirfd)
    fullpath = concat_paths(sdir, name)
    ctx.fdnum = ev.res
    res = ev.res
    if res is None or res < 0:
        return
    fd = Fd("directory" if flags & O_DIRECTORY else "file", name=fullpath, nameraw=name,
            open_flags=flags, dev=dev, ino=ino)  # fmt: skip
    tr.add_fd(ctx, res, fd)


def _clone_child(tr: Tracker, ev: ScapEvent, ctx: Context, flags: int) -> None:
    """The child's side of clone (return value 0): the event's thread is the child."""
    tid = ev.tid
    old = tr.find(tid)
    parent = tr.find(ev.int_at(5, -1))  # ptid
    t = Thread(tid=tid, flags=flags | CL_CLONE_INVERTED)
    t.pid = ev.int_at(4, tid)
    t.ptid = ev.int_at(5, -1)
    _fill_from_clone(tr, ev, t)
    if flags & CL_CLONE_THREAD:
        t.ptid = parent.ptid if parent is not None and parent.pid == t.pid else t.ptid
    elif parent is not None:
        src = tr.main_of(parent)
        t.fds = {n: f.copy() for n, f in src.fds.items()}
        t.env = list(src.env) if not t.env else t.env
    if old is not None and not old.placeholder and old.fds and not t.fds:
        t.fds = old.fds
    if parent is not None:
        _inherit(t, tr.main_of(parent))
    tr.threads[tid] = t
    ctx.thread = t


def _clone_caller(tr: Tracker, ev: ScapEvent, ctx: Context, child: int, flags: int) -> None:
    caller = tr.get(ev.tid)
    ctx.thread = caller
    if caller.placeholder:  # libsinsp fills an unknown caller from the event
        caller.pid = ev.int_at(4, -1)
        caller.ptid = ev.int_at(5, -1)
        if not ev.empty(19):
            caller.vtid, caller.vpid = ev.int_at(18, -1), ev.int_at(19, -1)
        else:
            caller.vtid, caller.vpid = caller.tid, -1
    if flags & (CL_CHILD_IN_PIDNS | CL_CLONE_NEWPID | CL_CLONE_PARENT) or caller.tid != caller.vtid:
        return  # a child in a pid namespace: its own clone exit describes it
    if flags & CL_CLONE_VFORK or ev.name == "vfork":
        return  # the vfork child may be reported (and gone) before the parent returns
    existing = tr.find(child)
    if existing is not None and existing.flags & CL_CLONE_INVERTED:
        return
    t = Thread(tid=child, flags=flags)
    if not flags & CL_CLONE_THREAD:
        main = tr.main_of(caller)
        if not caller.placeholder:
            t.fds = {n: f.copy() for n, f in main.fds.items()}
            t.cwd = main.cwd
            t.env = list(main.env)
        t.pid, t.ptid = child, caller.tid
    else:
        t.pid, t.ptid = caller.pid, caller.ptid
        t.flags |= CL_CLONE_FILES
        t.lastexec_ts = caller.lastexec_ts
    t.vtid, t.vpid = t.tid, t.pid
    _fill_from_clone(tr, ev, t, child_side=False)
    if not caller.placeholder:
        _inherit(t, tr.main_of(caller))
    tr.threads[child] = t


def _fill_from_clone(tr: Tracker, ev: ScapEvent, t: Thread, child_side: bool = True) -> None:
    exe = ev.at(1)
    t.exe = exe if isinstance(exe, str) else t.exe
    t.args = split_nul(ev.at(2))
    comm = ev.at(13)
    t.comm = comm if isinstance(comm, str) and comm else t.exe
    t.fdlimit = ev.int_at(7)
    if child_side:
        cwd = ev.at(6)
        if isinstance(cwd, str) and cwd:
            t.cwd = with_slash(cwd)
        vtid, vpid = ev.at(18), ev.at(19)
        t.vtid = vtid if isinstance(vtid, int) else t.tid
        t.vpid = vpid if isinstance(vpid, int) else t.pid
    if not ev.empty(12):
        t.pfmajor, t.pfminor = ev.int_at(8), ev.int_at(9)
        t.vmsize_kb, t.vmrss_kb, t.vmswap_kb = ev.int_at(10), ev.int_at(11), ev.int_at(12)
    t.uid = ev.int_at(16, UINT32_MAX) & UINT32_MAX
    t.gid = ev.int_at(17, UINT32_MAX) & UINT32_MAX
    if not ev.empty(14):
        t.cgroups = cgroup_pairs(ev.at(14))
    t.clone_ts = ev.ts
    t.pidns_init_start_ts = ev.int_at(20) if not ev.empty(20) and child_side else tr.boot_ts


def _inherit(t: Thread, src: Thread) -> None:
    """What a new thread takes from its creator (libsinsp copies these from the caller)."""
    t.exepath = src.exepath
    t.exe_writable, t.exe_upper_layer = src.exe_writable, src.exe_upper_layer
    t.exe_lower_layer, t.exe_from_memfd = src.exe_lower_layer, src.exe_from_memfd
    t.root, t.sid, t.vpgid, t.pgid, t.tty = src.root, src.sid, src.vpgid, src.pgid, src.tty
    t.loginuid = src.loginuid
    t.cap_permitted, t.cap_effective, t.cap_inheritable = (
        src.cap_permitted, src.cap_effective, src.cap_inheritable,
    )  # fmt: skip
    t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime = src.exe_ino, src.exe_ino_ctime, src.exe_ino_mtime
    if not t.cwd:
        t.cwd = src.cwd
    if not t.cgroups:
        t.cgroups = list(src.cgroups)


def _apply_exec(tr: Tracker, ev: ScapEvent, ctx: Context, t: Thread) -> None:
    exe = ev.at(1)
    t.exe = exe if isinstance(exe, str) else ""
    t.lastexec_ts = ev.ts
    comm = ev.at(13)
    t.comm = comm if isinstance(comm, str) and not ev.empty(13) else t.exe
    t.args = split_nul(ev.at(2))
    t.pid = ev.int_at(4, t.pid)
    if t.placeholder:
        t.ptid = ev.int_at(5, -1)
        t.vtid, t.vpid = t.tid, t.pid
        t.placeholder = False
    t.fdlimit = ev.int_at(7)
    if not ev.empty(12):
        t.pfmajor, t.pfminor = ev.int_at(8), ev.int_at(9)
        t.vmsize_kb, t.vmrss_kb, t.vmswap_kb = ev.int_at(10), ev.int_at(11), ev.int_at(12)
    if not ev.empty(15):
        t.env = split_nul(ev.at(15))
    if not ev.empty(14):
        t.cgroups = cgroup_pairs(ev.at(14))
    if not ev.empty(16):
        t.tty = ev.int_at(16)
    trusted = ev.at(27)
    if isinstance(trusted, str) and not ev.empty(27):
        t.exepath = trusted
    elif ctx.enter is not None:
        t.exepath = _exepath_from_enter(tr, t, ctx.enter)
    if not ev.empty(17):
        t.vpgid = ev.int_at(17)
    if not ev.empty(18):
        t.loginuid = ev.int_at(18)
    if not ev.empty(19):
        f = ev.int_at(19)
        t.exe_writable, t.exe_upper_layer = bool(f & EXE_WRITABLE), bool(f & EXE_UPPER_LAYER)
        t.exe_from_memfd, t.exe_lower_layer = bool(f & EXE_FROM_MEMFD), bool(f & EXE_LOWER_LAYER)
    if not ev.empty(22):
        t.cap_inheritable, t.cap_permitted, t.cap_effective = ev.int_at(20), ev.int_at(21), ev.int_at(22)
    if not ev.empty(25):
        t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime = ev.int_at(23), ev.int_at(24), ev.int_at(25)
    if not ev.empty(26):
        t.uid = ev.int_at(26)
    t.pgid = ev.int_at(28, -1) if not ev.empty(28) else -1
    if not ev.empty(29):
        t.gid = ev.int_at(29)
    table = tr.fd_table(t)
    for num in [n for n, f in table.items() if f.open_flags & O_CLOEXEC]:
        del table[num]


def _exepath_from_enter(tr: Tracker, t: Thread, enter: ScapEvent) -> str:
    if enter.name == "execve":
        filename = enter.at(0)
        if not isinstance(filename, str) or filename == "<NA>":
            return "<NA>"
        return concat_paths(tr.cwd(t), filename)
    dirfd, pathname, flags = enter.at(0), enter.at(1), enter.int_at(2)
    pathname = pathname if isinstance(pathname, str) else "<NA>"
    sdir = dirfd_base(tr, t, pathname, dirfd if isinstance(dirfd, int) else AT_FDCWD)
    empty_path = bool(flags & 1)  # AT_EMPTY_PATH as the driver encodes it
    if (not empty_path and pathname == "<NA>") or sdir == "<UNKNOWN>":
        return "<NA>"
    if empty_path:
        return concat_paths("", sdir)
    return concat_paths(sdir, pathname)

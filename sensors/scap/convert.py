"""An upgraded capture event and its context → a falconet syscall :class:`Event`.

The payload follows ``docs/events.md`` ("syscall"): ``args`` in the libs event-table order
with libsinsp's text for flags, modes, users and resolved paths, ``rawargs`` for the raw
numbers and the paths as passed, ``res``, ``proc`` (the thread after the event), its
``ancestors`` (parent first), ``user``, ``group``, the ``fd`` the event used or created,
and the ``container`` id from the thread's cgroups.
"""

from __future__ import annotations

import base64
from typing import Any

from falconet.event import SYSCALL, Event

from . import events_table as T
from .decoded import ScapEvent
from .params import SIGNALS, SockAddr, SockTuple, buffer_text, dyn_type, flags_text, mode_text
from .state import (
    FD_LOWER_LAYER,
    FD_UPPER_LAYER,
    Context,
    Fd,
    Thread,
    Tracker,
    concat_paths,
    dirfd_base,
    ip_is_local,
)

GENERIC_X = T.CODES["PPME_GENERIC_X"]
_FLAG_TYPES = frozenset((T.PT_FLAGS8, T.PT_FLAGS16, T.PT_FLAGS32))
_ENUM_TYPES = frozenset((T.PT_ENUMFLAGS8, T.PT_ENUMFLAGS16, T.PT_ENUMFLAGS32))
_EMPTY_AS_NULL = frozenset((T.PT_BYTEBUF, T.PT_SOCKTUPLE, T.PT_FDLIST, T.PT_CHARBUFARRAY, T.PT_DYN))
_TYPECHAR = {
    "file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u", "pipe": "p",
    "event": "e", "signalfd": "s", "eventpoll": "l", "inotify": "i", "timerfd": "t",
    "netlink": "n", "bpf": "b", "userfaultfd": "u", "io_uring": "r", "memfd": "m", "pidfd": "P",
}  # fmt: skip
#: How deep the parent chain goes (libsinsp walks it without a bound, with a loop guard).
MAX_ANCESTORS = 64


def event_type(ev: ScapEvent) -> str:
    """``evt.type``: the event name; for generic events the syscall named by its ID (or, when
    the ID is unknown, by its x86_64 native number, as libsinsp does for captures)."""
    if ev.type == GENERIC_X:
        return _generic_name(ev)
    return ev.name


def _generic_name(ev: ScapEvent) -> str:
    sc = ev.at(0)
    if not isinstance(sc, int):
        return "unknown"
    if sc == 0 and not ev.empty(1):
        native = ev.at(1)
        sc = T.NATIVE_X86_64.get(native, 0) if isinstance(native, int) else 0
    return T.SYSCALL_NAMES.get(sc, "unknown")


class Converter:
    """Builds the events of one capture (host and user tables come from the tracker)."""

    def __init__(self, tracker: Tracker, host: str) -> None:
        self.tracker = tracker
        self.host = host

    def event(self, ev: ScapEvent, ctx: Context) -> Event:
        payload: dict[str, Any] = {}
        t = ctx.thread
        args, rawargs, buffer = self._args(ev, ctx)
        payload["args"] = args
        if rawargs:
            payload["rawargs"] = rawargs
        res = ev.res
        if res is not None:
            payload["res"] = res
        payload["cpu"] = ev.cpu
        if buffer is not None:
            payload["buffer"] = base64.b64encode(buffer).decode()
        if t is not None:
            payload["proc"] = self._proc(t, ev, ctx)
            anc = self._ancestors(t)
            if anc:
                payload["ancestors"] = anc
            cid = self.tracker.container_of(t)
            payload["user"] = self._user(t, cid)
            payload["group"] = self._group(t, cid)
            payload["container"] = self._container(cid)
        if ctx.fdnum is not None or ctx.fd is not None:
            payload["fd"] = self._fd(ctx)
        etype = event_type(ev)
        return Event(
            source=SYSCALL, type=etype, ts=ev.ts, host=self.host,
            id=f"{self.host}-{ev.ts}-{ev.num}", payload=payload, num=ev.num,
        )  # fmt: skip

    # -- args ------------------------------------------------------------------------------------
    def _args(self, ev: ScapEvent, ctx: Context) -> tuple[dict[str, Any], dict[str, Any], bytes | None]:
        args: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        buffer: bytes | None = None
        for i, (name, ptype, fmt, info) in enumerate(ev.info):
            if i >= len(ev.params):
                break
            if ev.empty(i):
                args[name] = "NULL" if ptype in _EMPTY_AS_NULL else "<NA>"
                continue
            v = ev.at(i)
            if ptype == T.PT_DYN:
                ptype = dyn_type(info, ev.params[i]) or T.PT_BYTEBUF
            if ptype in _FLAG_TYPES or ptype in _ENUM_TYPES:
                text = flags_text(v, info, ptype in _ENUM_TYPES)
                args[name] = text or _number(v, fmt)
                raw[name] = v
            elif ptype == T.PT_MODE:
                args[name] = mode_text(v, info) or _number(v, fmt)
                raw[name] = v
            elif ptype in (T.PT_UID, T.PT_GID):
                args[name] = self._id_name(v, ptype, ctx.thread)
                raw[name] = v if v != 0xFFFFFFFF else -1
            elif ptype in (T.PT_FSPATH, T.PT_FSRELPATH):
                full = self._resolve_path(ev, ctx, v, info)
                args[name] = full
                if full != v:
                    raw[name] = v
            elif ptype == T.PT_BYTEBUF:
                args[name] = buffer_text(v)
                if name == "data":
                    buffer = v
            elif ptype in (T.PT_SOCKADDR, T.PT_SOCKTUPLE):
                args[name] = v.text() if isinstance(v, (SockAddr, SockTuple)) else "NULL"
            elif ptype == T.PT_FDLIST:
                args[name] = self._fdlist_text(v, ctx.thread)
                raw[name] = [fd for fd, _ in v]
            elif ptype == T.PT_SIGTYPE:
                args[name] = SIGNALS.get(v, v)
                raw[name] = v
            elif ptype == T.PT_SYSCALLID:
                args[name] = _generic_name(ev) if ev.type == GENERIC_X else T.SYSCALL_NAMES.get(v, str(v))
                raw[name] = v
            else:
                args[name] = v
        return args, raw, buffer

    def _resolve_path(self, ev: ScapEvent, ctx: Context, path: str, info: Any) -> str:
        t = ctx.thread
        if t is None or not path or path.startswith("/") or path == "<NA>":
            return path
        if isinstance(info, tuple) and info and info[0] == "dirfd":
            dirfd = ev.at(info[1])
            base = dirfd_base(self.tracker, t, path, dirfd if isinstance(dirfd, int) else -100)
            if base in ("<UNKNOWN>", "."):
                return path
            return concat_paths(base, path)
        return concat_paths(self.tracker.cwd(t), path)

    def _id_name(self, v: int, ptype: int, t: Thread | None) -> str:
        if v == 0xFFFFFFFF:
            return "<NONE>"
        cid = self.tracker.container_of(t) if t is not None else ""
        if cid:
            return "<NA>"
        if ptype == T.PT_UID:
            u = self.tracker.users.get(v)
            return u.name if u is not None and u.name else "<NA>"
        g = self.tracker.groups.get(v)
        return g.name if g is not None and g.name else "<NA>"

    def _fdlist_text(self, fds: list[tuple[int, int]], t: Thread | None) -> str:
        if t is None:
            return ""
        table = self.tracker.fd_table(t)
        parts = []
        for fd, flags in fds:
            entry = table.get(fd)
            tch = _TYPECHAR.get(entry.kind, "o") if entry is not None else "?"
            parts.append(f"{fd}:{tch}{flags & 0xFFFF:x}")
        return " ".join(parts)

    # -- thread ----------------------------------------------------------------------------------
    def _proc(self, t: Thread, ev: ScapEvent, ctx: Context) -> dict[str, Any]:
        p = _process(self.tracker, t)
        p["tid"] = t.tid
        p["vtid"] = t.vtid
        p["fdlimit"] = t.fdlimit
        p["vmsize_kb"], p["vmrss_kb"], p["vmswap_kb"] = t.vmsize_kb, t.vmrss_kb, t.vmswap_kb
        p["pfmajor"], p["pfminor"] = t.pfmajor, t.pfminor
        if t.cgroups:
            p["cgroups"] = {k: v for k, v in t.cgroups}
        fds = self._fd_snapshot(t, ev, ctx)
        if fds:
            p["fds"] = fds
        return p

    def _fd_snapshot(self, t: Thread, ev: ScapEvent, ctx: Context) -> dict[str, Any]:
        """The stdio fds and the fds the event's fd parameters name (for their text)."""
        table = self.tracker.fd_table(t)
        wanted = {0, 1, 2}
        for i, p in enumerate(ev.info):
            if p[1] == T.PT_FD and i < len(ev.params):
                v = ev.at(i)
                if isinstance(v, int) and v >= 0:
                    wanted.add(v)
        out: dict[str, Any] = {}
        for num in sorted(wanted):
            fd = table.get(num)
            if fd is not None:
                out[str(num)] = self._fd_entry(fd)
        return out

    def _ancestors(self, t: Thread) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen = {t.pid, t.tid}
        cur = self.tracker.parent(t)
        while cur is not None and len(out) < MAX_ANCESTORS:
            m = self.tracker.main_of(cur)
            if m.tid in seen:
                break
            seen.add(m.tid)
            out.append(_process(self.tracker, m))
            cur = self.tracker.parent(m)
        return out

    def _user(self, t: Thread, cid: str) -> dict[str, Any]:
        u: dict[str, Any] = {"uid": t.uid, "loginuid": t.loginuid if t.loginuid != 0xFFFFFFFF else -1}
        if cid:
            return u
        rec = self.tracker.users.get(t.uid)
        if rec is not None:
            u["name"], u["homedir"], u["shell"] = rec.name, rec.homedir, rec.shell
        login = self.tracker.users.get(t.loginuid)
        if login is not None:
            u["loginname"] = login.name
        return u

    def _group(self, t: Thread, cid: str) -> dict[str, Any]:
        g: dict[str, Any] = {"gid": t.gid}
        rec = None if cid else self.tracker.groups.get(t.gid)
        if rec is not None:
            g["name"] = rec.name
        return g

    def _container(self, cid: str) -> dict[str, Any]:
        if not cid:
            return {"id": "host"}
        c: dict[str, Any] = {"id": cid}
        info = self.tracker.containers.get(cid)
        if info is not None:
            if info.name:
                c["name"] = info.name
            if info.type:
                c["type"] = info.type
            if info.image:
                c["image"] = {"name": info.image}
        return c

    # -- fd --------------------------------------------------------------------------------------
    def _fd(self, ctx: Context) -> dict[str, Any]:
        num = ctx.fdnum if ctx.fdnum is not None else -1
        if ctx.fd is None:
            return {"num": num if num >= 0 else -1}
        out = {"num": num}
        out.update(self._fd_entry(ctx.fd))
        return out

    def _fd_entry(self, fd: Fd) -> dict[str, Any]:
        out: dict[str, Any] = {"type": fd.kind, "name": fd.name}
        if fd.kind in ("file", "directory"):
            if fd.nameraw is not None and fd.nameraw != fd.name:
                out["nameraw"] = fd.nameraw
            if fd.dev:
                out["dev"] = fd.dev
            if fd.ino:
                out["ino"] = fd.ino
            if fd.open_flags & FD_UPPER_LAYER:
                out["is_upper_layer"] = True
            if fd.open_flags & FD_LOWER_LAYER:
                out["is_lower_layer"] = True
        elif fd.kind in ("ipv4", "ipv6"):
            if fd.l4proto:
                out["l4proto"] = fd.l4proto
            if fd.role:
                out["role"] = fd.role
            if fd.bound:
                out["bound"] = True
            if fd.cip:
                out["cip"], out["cport"] = fd.cip, fd.cport
            if fd.sip:
                out["sip"], out["sport"] = fd.sip, fd.sport
            if fd.connected:
                out["connected"] = True
            local = self.tracker.local_ips
            if local and fd.cip and fd.sip:
                out["cip_local"] = ip_is_local(fd.cip, local)
                out["sip_local"] = ip_is_local(fd.sip, local)
        return out


def _number(v: Any, fmt: int) -> Any:
    if isinstance(v, int) and fmt == T.PF_OCT:
        return f"{v:o}"
    return v


def _process(tr: Tracker, t: Thread) -> dict[str, Any]:
    """The ``proc``/``ancestors[]`` keys of a thread (process-wide values from its main thread)."""
    m = tr.main_of(t)
    p: dict[str, Any] = {
        "pid": t.pid, "vpid": t.vpid, "ppid": m.ptid, "sid": t.sid, "vpgid": t.vpgid,
        "pgid": t.pgid, "name": t.comm, "exe": t.exe, "exepath": t.exepath,
        "args": list(t.args), "cwd": m.cwd, "tty": t.tty, "env": list(m.env or t.env),
        "cap_effective": t.cap_effective, "cap_permitted": t.cap_permitted,
        "cap_inheritable": t.cap_inheritable,
    }  # fmt: skip
    if m.clone_ts:
        p["start_ts"] = m.clone_ts
    if t.pidns_init_start_ts:
        p["pidns_init_start_ts"] = t.pidns_init_start_ts
    if t.exe_ino:
        p["exe_ino"], p["exe_ino_ctime"], p["exe_ino_mtime"] = t.exe_ino, t.exe_ino_ctime, t.exe_ino_mtime
    for key in ("exe_writable", "exe_upper_layer", "exe_lower_layer", "exe_from_memfd"):
        if getattr(t, key):
            p["is_" + key] = True
    return p

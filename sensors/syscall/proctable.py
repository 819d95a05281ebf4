"""The sensor's process table, like libsinsp's thread table: who did each syscall.

Seeded from ``/proc`` at start, then kept by the kernel's fork/exec/exit records: name,
argv, executable, cwd, parent chain, ids, tty, loginuid, capabilities, executable flags
and container id. Every event leaves with that context, so each thread keeps its context
**pre-serialized**: the JSON of ``"proc"``, ``"ancestors"``, ``"user"``, ``"group"`` and
``"container"``, spliced into each envelope as bytes. A thread's fragment is rebuilt only
when its key changes (comm, uid, gid, effective capabilities, all carried by every record)
or when the table's epoch moves (an exec or exit of a process that has children, which
changes someone's ancestors).

A process met without having been seen starting is read from ``/proc``; when it is gone
already, it becomes a placeholder named after the record's comm.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable
from typing import Any

import orjson

from . import procfs
from .containers import HOST
from .users import UserTable

log = logging.getLogger("falconet.sensor.syscall")

MAX_ANCESTORS = 16  # proc.aname[N] in the shipped rules goes up to 7
MAX_FDS = 4096  # fd-table entries kept per process
MAX_ANCESTOR_ARGS = 256  # bytes of arguments kept for ancestors above the parent
_LOGIN_UNSET = 0xFFFFFFFF


class Proc:
    """One process (thread group)."""

    __slots__ = (
        "pid", "ppid", "vpid", "pgid", "sid", "vpgid", "name", "exe", "exepath", "args", "cwd",
        "tty", "start_ts", "loginuid", "cap_inh", "cap_prm", "exe_ino", "exe_ctime",
        "exe_mtime", "exe_flags", "fdlimit", "container", "pidns_start", "nchildren",
        "threads", "fds", "body", "anc", "frag_epoch", "partial",
    )  # fmt: skip

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ppid = 0
        self.vpid = -1
        self.pgid = 0
        self.sid = 0
        self.vpgid = -1
        self.name = "<NA>"
        self.exe = ""
        self.exepath = ""
        self.args: list[str] = []
        self.cwd = "/"
        self.tty = 0
        self.start_ts = 0
        self.loginuid = _LOGIN_UNSET
        self.cap_inh = 0
        self.cap_prm = 0
        self.exe_ino = 0
        self.exe_ctime = 0
        self.exe_mtime = 0
        self.exe_flags = 0
        self.fdlimit = 0
        self.container = HOST
        self.pidns_start = 0
        self.nchildren = 0
        self.threads: dict[int, Thread] = {}
        self.fds: dict[int, tuple[int, bytes, str | None]] = {}  # fd -> (inode, JSON name, role)
        self.body: bytes | None = None  # cached process members of "proc"
        self.anc: tuple[bytes, bytes] | None = None  # its "ancestors" entries (parent, other)
        self.frag_epoch = -1
        self.partial = False

    def changed(self) -> None:
        self.body = None
        self.anc = None

    def copy_from(self, parent: Proc) -> None:
        """fork: the child starts as a copy of its parent's image."""
        for attr in ("name", "exe", "exepath", "cwd", "tty", "loginuid", "cap_inh", "cap_prm",
                     "exe_ino", "exe_ctime", "exe_mtime", "exe_flags", "fdlimit", "container",
                     "pgid", "sid", "pidns_start"):  # fmt: skip
            setattr(self, attr, getattr(parent, attr))
        self.args = list(parent.args)
        self.fds = dict(parent.fds)

    def members(self) -> bytes:
        """The process-level members of ``"proc"`` (without tid, vtid, name, caps)."""
        if self.body is None:
            d: dict[str, Any] = {
                "pid": self.pid, "vpid": self.vpid, "ppid": self.ppid, "sid": self.sid,
                "pgid": self.pgid, "vpgid": self.vpgid, "exe": self.exe,
                "exepath": self.exepath, "args": self.args, "cwd": self.cwd, "tty": self.tty,
                "start_ts": self.start_ts, "cap_permitted": self.cap_prm,
            }  # fmt: skip
            if self.cap_inh:
                d["cap_inheritable"] = self.cap_inh
            if self.pidns_start:
                d["pidns_init_start_ts"] = self.pidns_start
            if self.exe_ino:
                d.update(exe_ino=self.exe_ino, exe_ino_ctime=self.exe_ctime,
                         exe_ino_mtime=self.exe_mtime)  # fmt: skip
            if self.exe_flags & 2:
                d["is_exe_upper_layer"] = True
            if self.exe_flags & 8:
                d["is_exe_lower_layer"] = True
            if self.exe_flags & 4:
                d["is_exe_from_memfd"] = True
            if self.fdlimit:
                d["fdlimit"] = self.fdlimit
            self.body = orjson.dumps(d)[1:-1]
        return self.body

    def ancestor_entry(self, parent: bool) -> bytes:
        """This process in someone's ``ancestors``: in full as the parent (proc.p* fields),
        else what proc.aname/aexe/aexepath/acmdline and the leader walks read."""
        if self.anc is None:
            short: dict[str, Any] = {"pid": self.pid, "sid": self.sid, "pgid": self.pgid,
                                     "vpgid": self.vpgid, "name": self.name, "exe": self.exe,
                                     "exepath": self.exepath}  # fmt: skip
            full = dict(short, vpid=self.vpid, ppid=self.ppid, tty=self.tty, start_ts=self.start_ts)
            if self.args:
                full["args"] = self.args
                short["args"] = _cut_args(self.args, MAX_ANCESTOR_ARGS)
            self.anc = (orjson.dumps(full), orjson.dumps(short))
        return self.anc[0 if parent else 1]

def _cut_args(args: list[str], limit: int) -> list[str]:
    """The first arguments, up to ``limit`` characters in all (the last one cut)."""
    out, used = [], 0
    for a in args:
        if used + len(a) > limit:
            if limit > used:
                out.append(a[: limit - used])
            break
        out.append(a)
        used += len(a) + 1
    return out


class Thread:
    """A thread's view of its process, with its own comm and credentials."""

    __slots__ = ("tid", "tidb", "idnum", "proc", "key", "epoch", "frag", "frag_fd", "flen", "name")

    def __init__(self, tid: int, proc: Proc) -> None:
        self.tid = tid
        self.tidb = b"%d" % tid
        self.idnum = b'-%d","num":' % tid  # the end of the event id, up to the number
        self.frag_fd = b""  # ',' + frag + ',"fd":{"num":' (openat)
        self.flen = 0
        self.proc = proc
        self.key = -1
        self.epoch = -1
        self.frag = b""
        self.name = proc.name


class ProcessTable:
    """Processes by pid and threads by tid, with their JSON context fragments."""

    def __init__(self, boot_to_epoch: int, users: UserTable | None = None,
                 proc_root: str = "/proc", track_fds: bool = True) -> None:  # fmt: skip
        self.procs: dict[int, Proc] = {}
        self.threads: dict[int, Thread] = {}
        self.users = users or UserTable()
        self.boot_to_epoch = boot_to_epoch
        self.proc_root = proc_root
        self.track_fds = track_fds
        self.epoch = 0
        self.lookups = 0  # /proc reads for processes met mid-life

    # -- /proc --------------------------------------------------------------------------
    def _from_info(self, info: procfs.ProcInfo) -> Proc:
        p = Proc(info.pid)
        p.ppid, p.name, p.exe, p.args = info.ppid, info.name, info.exe, info.args
        p.exepath = info.exepath
        p.cwd = info.cwd.rstrip("/") + "/" if info.cwd else "/"
        p.tty, p.pgid, p.sid, p.vpid, p.vpgid = info.tty, info.pgid, info.sid, info.vpid, info.vpgid
        p.start_ts = info.start_boot_ns + self.boot_to_epoch if info.start_boot_ns else 0
        p.loginuid, p.cap_inh, p.cap_prm = info.loginuid, info.cap_inh, info.cap_prm
        p.exe_ino, p.exe_ctime, p.exe_mtime = info.exe_ino, info.exe_ctime, info.exe_mtime
        p.exe_flags = 4 if info.memfd else 0
        p.container = info.container
        return p

    def seed(self) -> int:
        """Read every running process; returns how many."""
        for pid in procfs.pids(self.proc_root):
            info = procfs.read_process(pid, self.proc_root)
            if info is not None:
                self.procs[pid] = self._from_info(info)
        for p in self.procs.values():
            parent = self.procs.get(p.ppid)
            if parent is not None and parent is not p:
                parent.nchildren += 1
        return len(self.procs)

    def proc(self, tgid: int, comm: bytes = b"") -> Proc:
        """The process ``tgid``, read from /proc or made a placeholder when unknown."""
        p = self.procs.get(tgid)
        if p is not None:
            return p
        self.lookups += 1
        info = procfs.read_process(tgid, self.proc_root)
        if info is not None:
            p = self._from_info(info)
        else:
            p = Proc(tgid)
            p.partial = True
            if comm:
                p.name = comm.decode("utf-8", "replace")
        self.procs[tgid] = p
        parent = self.procs.get(p.ppid)
        if parent is not None and parent is not p:
            parent.nchildren += 1
        return p

    # -- fragments -------------------------------------------------------------------------
    def ancestors(self, p: Proc) -> bytes:
        parts: list[bytes] = []
        seen = {p.pid}
        pid = p.ppid
        while pid > 0 and pid not in seen and len(parts) < MAX_ANCESTORS:
            seen.add(pid)
            a = self.procs.get(pid)
            if a is None:
                a = self.proc(pid) if pid > 0 else None
                if a is None or a.partial:
                    break
            parts.append(a.ancestor_entry(not parts))
            pid = a.ppid
        return b"[" + b",".join(parts) + b"]"

    def thread(self, tid: int, tgid: int, key: int, comm: bytes, uid: int, gid: int,
               cap_eff: int) -> Thread:  # fmt: skip
        """The thread ``tid`` with a fragment up to date for this record (the slow path)."""
        th = self.threads.get(tid)
        p = self.procs.get(tgid)
        if p is None:
            p = self.proc(tgid, comm)
        if th is None or th.proc is not p:
            th = Thread(tid, p)
            p.threads[tid] = th
            self.threads[tid] = th
        name = comm.decode("utf-8", "replace") if comm else p.name
        if tid == tgid and name != p.name:
            p.name = name  # prctl(PR_SET_NAME) or a write to /proc/self/comm
            p.anc = None
            if p.nchildren:
                self.epoch += 1
        th.name = name
        vtid = b',"vtid":%d' % p.vpid if tid == tgid and p.vpid >= 0 else b""
        th.frag = b"".join((
            b'"proc":{"tid":%d%s,"name":' % (tid, vtid), orjson.dumps(name),
            b',"cap_effective":%d,' % cap_eff, p.members(), b'},"ancestors":',
            self.ancestors(p), b",", self.users.fragment(uid, gid, p.loginuid),
            b',"container":{"id":"', p.container.encode(), b'"}',
        ))  # fmt: skip
        th.frag_fd = b"," + th.frag + b',"fd":{"num":'
        th.flen = len(th.frag_fd)
        th.key = key
        th.epoch = self.epoch
        return th

    # -- lifecycle -------------------------------------------------------------------------
    def fork(self, parent_tgid: int, child: int, real_parent: int, vpid: int, start_ts: int,
             pidns_start: int, loginuid: int, comm: bytes) -> Proc:  # fmt: skip
        parent = self.procs.get(parent_tgid) or self.proc(parent_tgid, comm)
        old = self.procs.pop(child, None)
        if old is not None:
            self._drop(old)
        c = Proc(child)
        c.copy_from(parent)
        c.ppid = real_parent or parent_tgid
        c.vpid = vpid if vpid else -1
        c.start_ts = start_ts
        c.loginuid = loginuid
        if pidns_start:
            c.pidns_start = pidns_start
        if comm:
            c.name = comm.decode("utf-8", "replace")
        self.procs[child] = c
        pp = self.procs.get(c.ppid)
        if pp is not None:
            pp.nchildren += 1
        return c

    def exec(self, tgid: int, tid: int, update: Callable[[Proc], None]) -> Proc:
        """exec: ``update`` fills the new image; a non-leader thread that exec'd takes the
        process over (its tid becomes the pid)."""
        p = self.procs.get(tgid) or self.proc(tgid)
        for t in list(p.threads):
            self.threads.pop(t, None)
        p.threads.clear()
        p.fds = {fd: e for fd, e in p.fds.items() if fd <= 2}  # O_CLOEXEC is common; keep stdio
        old_parent = p.ppid
        update(p)
        if p.ppid != old_parent:  # a process first met at its exec: now we know its parent
            self._adopt(p, old_parent)
        p.partial = False
        p.changed()
        if p.nchildren:
            self.epoch += 1
        return p

    def _adopt(self, p: Proc, old_parent: int) -> None:
        before = self.procs.get(old_parent)
        if before is not None and before is not p and before.nchildren > 0:
            before.nchildren -= 1
        after = self.procs.get(p.ppid)
        if after is not None and after is not p:
            after.nchildren += 1

    def exit_thread(self, tid: int, tgid: int, group_dead: bool) -> None:
        th = self.threads.pop(tid, None)
        p = self.procs.get(tgid)
        if th is not None and p is not None:
            p.threads.pop(tid, None)
        if group_dead and p is not None:
            del self.procs[tgid]
            self._drop(p)

    def _drop(self, p: Proc) -> None:
        for t in p.threads:
            self.threads.pop(t, None)
        p.threads.clear()
        parent = self.procs.get(p.ppid)
        if parent is not None and parent.nchildren > 0:
            parent.nchildren -= 1
        if p.nchildren:
            # orphans: the kernel reparents them to a reaper; learn which on next sight
            for q in self.procs.values():
                if q.ppid == p.pid:
                    info = procfs.read_process(q.pid, self.proc_root)
                    q.ppid = info.ppid if info is not None else 1
                    q.changed()
            self.epoch += 1

    def prune(self) -> int:
        """Forget processes that are gone without an exit record (a lost record, or a process
        the sensor guessed); returns how many."""
        gone = [pid for pid in self.procs if not os.path.exists(f"{self.proc_root}/{pid}")]
        for pid in gone:
            p = self.procs.pop(pid, None)
            if p is not None:
                self._drop(p)
        return len(gone)

    def touch(self, p: Proc) -> None:
        """``p``'s own members changed (cwd): rebuild its threads' fragments on their next
        event (its entry in others' ancestors is unchanged)."""
        p.body = None
        for th in p.threads.values():
            th.key = -1

    # -- fds ------------------------------------------------------------------------------
    def set_fd(self, p: Proc, fd: int, ino: int, name_json: bytes, role: str | None) -> None:
        """Remember what ``fd`` is: its inode (files), its name as JSON, its socket role."""
        fds = p.fds
        if len(fds) >= MAX_FDS and fd not in fds:
            fds.pop(next(iter(fds)))
        fds[fd] = (ino, name_json, role)

    @staticmethod
    def resolve(cwd: str, path: str) -> str:
        """A path as libsinsp shows it: relative ones joined to the cwd, dots resolved."""
        if not path:
            return path
        full = path if path[0] == "/" else posixpath.join(cwd, path)
        if "/." in full or "//" in full:
            trail = full.endswith("/") and full != "/"
            full = posixpath.normpath(full)
            if full.startswith("//"):
                full = full[1:]
            if trail and full != "/":
                full += "/"
        return full

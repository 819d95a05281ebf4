"""What ``/proc`` says about a process: the seed of the process table.

The sensor reads every process at start, and later any process it meets without having
seen it start (lost records, a race at start-up). Everything is best effort: a process can
exit while it is read, and then what was read so far is returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .containers import HOST, id_from_proc_cgroup

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(slots=True)
class ProcInfo:
    """One process as read from /proc (times are boot-time ns)."""

    pid: int
    ppid: int = 0
    name: str = "<NA>"
    args: list[str] = field(default_factory=list)
    exe: str = ""
    exepath: str = ""
    cwd: str = ""
    tty: int = 0
    pgid: int = 0
    sid: int = 0
    vpid: int = -1
    vpgid: int = -1
    start_boot_ns: int = 0
    uid: int = 0
    gid: int = 0
    loginuid: int = 0xFFFFFFFF
    cap_inh: int = 0
    cap_prm: int = 0
    cap_eff: int = 0
    exe_ino: int = 0
    exe_ctime: int = 0
    exe_mtime: int = 0
    memfd: bool = False
    container: str = HOST
    threads: list[int] = field(default_factory=list)


def _read(path: str, limit: int = 65536) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def pids(root: str = "/proc") -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(root) if n.isdigit())
    except OSError:
        return []


def read_process(pid: int, root: str = "/proc", with_threads: bool = False) -> ProcInfo | None:
    """The process ``pid`` (None when it does not exist)."""
    base = f"{root}/{pid}"
    stat = _read(f"{base}/stat")
    if stat is None:
        return None
    info = ProcInfo(pid)
    # "pid (comm) state ppid pgrp session tty_nr ..." - comm may hold spaces and parens
    lpar, rpar = stat.find(b"("), stat.rfind(b")")
    if lpar > 0 and rpar > lpar:
        info.name = stat[lpar + 1 : rpar].decode("utf-8", "replace")
        rest = stat[rpar + 2 :].split()
        try:
            info.ppid, info.pgid, info.sid, info.tty = (int(rest[i]) for i in (1, 2, 3, 4))
            info.start_boot_ns = int(rest[19]) * 1_000_000_000 // _CLK_TCK
        except (IndexError, ValueError):
            pass
    status = _read(f"{base}/status")
    if status:
        for line in status.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(":")
            v = value.split()
            if not v:
                continue
            try:
                if key == "Uid":
                    info.uid = int(v[1])
                elif key == "Gid":
                    info.gid = int(v[1])
                elif key == "CapInh":
                    info.cap_inh = int(v[0], 16)
                elif key == "CapPrm":
                    info.cap_prm = int(v[0], 16)
                elif key == "CapEff":
                    info.cap_eff = int(v[0], 16)
                elif key == "NSpid":
                    info.vpid = int(v[-1])
                elif key == "NSpgid":
                    info.vpgid = int(v[-1])
            except ValueError:
                pass
    cmdline = _read(f"{base}/cmdline")
    if cmdline:
        argv = cmdline.rstrip(b"\0").split(b"\0")
        info.exe = argv[0].decode("utf-8", "replace")
        info.args = [a.decode("utf-8", "replace") for a in argv[1:]]
    try:
        info.exepath = os.readlink(f"{base}/exe")
        st = os.stat(f"{base}/exe")
        info.exe_ino, info.exe_ctime, info.exe_mtime = st.st_ino, st.st_ctime_ns, st.st_mtime_ns
    except OSError:
        pass
    info.memfd = info.exepath.startswith("/memfd:")
    try:
        info.cwd = os.readlink(f"{base}/cwd")
    except OSError:
        pass
    login = _read(f"{base}/loginuid")
    if login:
        try:
            info.loginuid = int(login)
        except ValueError:
            pass
    cgroup = _read(f"{base}/cgroup")
    if cgroup:
        info.container = id_from_proc_cgroup(cgroup.decode("utf-8", "replace"))
    if with_threads:
        try:
            info.threads = [int(t) for t in os.listdir(f"{base}/task") if t.isdigit()]
        except OSError:
            pass
    return info


def tgid_of(tid: int, root: str = "/proc") -> int | None:
    """The process a thread belongs to."""
    status = _read(f"{root}/{tid}/status", 4096)
    if not status:
        return None
    for line in status.splitlines():
        if line.startswith(b"Tgid:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None

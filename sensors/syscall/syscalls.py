"""Which syscalls the sensor captures, by x86-64 number, and the kernel filter bitmap.

The rules engine says which event types the loaded rules can match
(:meth:`Engine.event_types`); :func:`plan` turns that into the syscall numbers the BPF
program reports (``fn_cfg.want``): the requested ones the sensor decodes, plus the few it
always needs for its process table (chdir/fchdir for ``proc.cwd``, failed exec). Process
creation, exec and exit come from scheduler tracepoints, never from this bitmap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: x86-64 numbers of every syscall the sensor decodes (event type = syscall name)
NR: dict[str, int] = {
    "open": 2, "dup": 32, "dup2": 33, "socket": 41, "connect": 42, "accept": 43,
    "sendto": 44, "recvfrom": 45, "sendmsg": 46, "recvmsg": 47, "listen": 50, "clone": 56,
    "fork": 57, "vfork": 58, "execve": 59, "chdir": 80, "fchdir": 81, "rename": 82,
    "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86, "unlink": 87, "symlink": 88,
    "chmod": 90, "fchmod": 91, "ptrace": 101, "setuid": 105, "setgid": 106,
    "init_module": 175, "openat": 257, "mkdirat": 258, "unlinkat": 263, "renameat": 264,
    "linkat": 265, "symlinkat": 266, "fchmodat": 268, "unshare": 272, "accept4": 288,
    "dup3": 292, "setns": 308, "finit_module": 313, "renameat2": 316, "bpf": 321,
    "execveat": 322, "userfaultfd": 323, "clone3": 435, "openat2": 437,
}  # fmt: skip
NAME: dict[int, str] = {nr: name for name, nr in NR.items()}

#: event types reported from the scheduler tracepoints rather than from sys_exit
LIFECYCLE = frozenset({"clone", "clone3", "fork", "vfork", "procexit"})
#: syscalls the process table needs whatever the rules say
STATE = frozenset({"chdir", "fchdir", "execve", "execveat"})
#: every event type this sensor can produce
SUPPORTED = frozenset(NR) | {"procexit"}


@dataclass(frozen=True, slots=True)
class CapturePlan:
    """What to capture for a set of wanted event types."""

    emit: frozenset[str]  # event types published
    kernel: frozenset[str]  # syscalls the BPF program reports (emit + state)
    unsupported: frozenset[str]  # wanted but not produced by this sensor

    def bitmap(self) -> bytes:
        """``fn_cfg.want``: bit ``nr`` set for each syscall of :attr:`kernel`."""
        bits = bytearray(64)
        for name in self.kernel:
            nr = NR.get(name)
            if nr is not None:
                bits[nr >> 3] |= 1 << (nr & 7)
        return bytes(bits)


def plan(wanted: Iterable[str] | None) -> CapturePlan:
    """The capture plan for ``wanted`` event types (None: everything the sensor supports)."""
    want = SUPPORTED if wanted is None else frozenset(wanted)
    emit = want & SUPPORTED
    kernel = (emit - LIFECYCLE) | STATE
    return CapturePlan(emit=frozenset(emit), kernel=frozenset(kernel), unsupported=want - SUPPORTED)

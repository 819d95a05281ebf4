"""Old event layouts upgraded, enter events paired with their exits, and the falconet
events that come out: one per completed syscall, parameters in the libs order with
libsinsp's text, generic events named after their syscall."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from falconet.sensors.scap import ReadStats, read_scap
from falconet.sensors.scap import events_table as T
from falconet.sensors.scap.blocks import EventRecord
from falconet.sensors.scap.upgrade import Upgrader, verdict
from tests.sensors.test_scap_blocks import TRACES, Capture, i64, params_for, thread, u32

C = T.CODES


def rec(etype: str, tid: int, *params: bytes) -> EventRecord:
    return EventRecord(0, 1, tid, C[etype], 0, 0, tuple(params))


def test_an_exit_takes_its_parameters_from_its_enter_event() -> None:
    up = Upgrader()
    assert up.upgrade(rec("PPME_SYSCALL_CLOSE_E", 7, i64(5))) is None  # kept for its exit
    out = up.upgrade(rec("PPME_SYSCALL_CLOSE_X", 7, i64(0)))  # the old one-parameter exit
    assert out is not None and out.type == C["PPME_SYSCALL_CLOSE_X"] and out.params == [i64(0), i64(5)]
    assert up.stats.dropped == 1 and up.stats.lost_enter == 0


def test_enter_events_pair_per_thread() -> None:
    up = Upgrader()
    up.upgrade(rec("PPME_SYSCALL_CLOSE_E", 7, i64(5)))
    up.upgrade(rec("PPME_SYSCALL_CLOSE_E", 8, i64(9)))
    assert up.upgrade(rec("PPME_SYSCALL_CLOSE_X", 8, i64(0))).params[1] == i64(9)  # type: ignore[union-attr]
    assert up.upgrade(rec("PPME_SYSCALL_CLOSE_X", 7, i64(0))).params[1] == i64(5)  # type: ignore[union-attr]


def test_a_missing_or_foreign_enter_event_leaves_defaults() -> None:
    up = Upgrader()
    # no enter event: libscap fills the parameter with its type's default (an fd of 0)
    assert up.upgrade(rec("PPME_SYSCALL_CLOSE_X", 7, i64(0))).params == [i64(0), i64(0)]  # type: ignore[union-attr]
    # the thread's stored enter event belongs to another syscall: treated as lost
    up.upgrade(rec("PPME_SYSCALL_READ_E", 7, i64(3), u32(10)))
    out = up.upgrade(rec("PPME_SYSCALL_CLOSE_X", 7, i64(0)))
    assert out is not None and out.params == [i64(0), i64(0)] and up.stats.lost_enter == 1
    # parameters that fall back to empty (link's paths) stay empty
    out = up.upgrade(rec("PPME_SYSCALL_LINK_X", 7, i64(0)))
    assert out is not None and out.type == C["PPME_SYSCALL_LINK_2_X"] and out.params == [i64(0), b"", b""]


def test_old_layouts_are_upgraded_step_by_step() -> None:
    up = Upgrader()
    enter = up.upgrade(rec("PPME_SYSCALL_OPEN_E", 7))  # 2016: no parameters on the enter event
    assert enter is not None and enter.params == [b"", b"", b""]
    out = up.upgrade(rec("PPME_SYSCALL_OPEN_X", 7, i64(3), b"/etc/passwd\0", u32(1), u32(0)))
    assert out is not None and len(out.params) == 6 and out.params[4:] == [b"", b""]  # dev, ino
    # execve's exit of 2016 (16 parameters) becomes today's, comm and cgroups kept in place
    old = [i64(0), b"cat\0", b"x\0", i64(1), i64(1), i64(0), b"/\0", i64(1024), struct.pack("<Q", 0),
           struct.pack("<Q", 0), u32(0), u32(0), u32(0), b"cat\0", b"cpu=/\0", b"HOME=/\0"]  # fmt: skip
    out = up.upgrade(rec("PPME_SYSCALL_EXECVE_16_X", 7, *old))
    new = T.EVENTS[C["PPME_SYSCALL_EXECVE_19_X"]][3]
    assert out is not None and out.type == C["PPME_SYSCALL_EXECVE_19_X"] and len(out.params) == len(new)
    assert out.params[13] == b"cat\0" and out.params[14] == b"cpu=/\0" and out.params[15] == b"HOME=/\0"


def test_unused_and_old_enter_events_are_dropped() -> None:
    assert verdict(C["PPME_SYSCALL_KEYCTL_E"], 0) == "drop"
    assert verdict(C["PPME_SYSCALL_CLOSE_X"], 2) == "pass"
    assert verdict(C["PPME_SYSCALL_CLOSE_X"], 1) == "continue"


def test_one_falconet_event_per_completed_syscall(corpus: Path) -> None:
    stats = ReadStats()
    evs = list(read_scap(str(corpus / TRACES / "cat_write.scap"), stats=stats))
    assert stats.raw_events == 345 and stats.events == len(evs) == 303
    types = [e.type for e in evs if e.type != "procinfo"]
    # 4 opens: their enter events were merged into the exits, none comes out on its own
    assert types.count("open") == 4 and types.count("close") == 6 and types.count("execve") == 1
    assert [e.num for e in evs] == sorted(e.num for e in evs) and evs[0].num >= 1
    assert all(e.source == "syscall" and e.host == "ubuntu" for e in evs)
    close = next(e for e in evs if e.type == "close")
    assert close.payload["args"] == {"res": 0, "fd": 3} and close.payload["res"] == 0
    # generic events are named after their syscall, by id or by x86_64 number
    assert {"mprotect", "arch_prctl", "fadvise64"} <= set(types)
    assert "exit_group" not in types  # its enter event has no exit: the syscall never returned
    syscall_evs = list(read_scap(str(corpus / TRACES / "syscall.scap")))
    assert sum(e.type == "madvise" for e in syscall_evs) == 2


def test_parameters_are_rendered_like_libsinsp(corpus: Path) -> None:
    evs = list(read_scap(str(corpus / TRACES / "cat_write.scap")))
    mmap = next(e for e in evs if e.type == "mmap")
    assert mmap.payload["args"]["prot"] == "PROT_READ|PROT_WRITE"
    assert mmap.payload["args"]["flags"] == "MAP_PRIVATE|MAP_ANONYMOUS"
    assert mmap.payload["rawargs"]["prot"] == 3
    access = next(e for e in evs if e.type == "access")
    assert access.payload["args"] == {"res": -2, "name": "/etc/ld.so.nohwcap", "mode": "F_OK"}
    read = next(e for e in evs if e.type == "read")
    assert read.payload["args"]["data"].startswith(".ELF") and read.payload["buffer"].startswith("f0VMRg")
    opened = next(e for e in evs if e.type == "open")
    assert opened.payload["args"]["dev"] == "<NA>"  # not in the 2016 layout: empty, as libsinsp shows it


def test_uid_arguments_are_user_names() -> None:
    cap = Capture().threads(thread(10, 10, 1, "su", uid=0))
    cap.users([(0, 0, "root"), (65534, 65534, "nobody")], [])
    cap.event(10, "PPME_SYSCALL_SETUID_X", *params_for("PPME_SYSCALL_SETUID_X", res=0, uid=65534))
    cap.event(10, "PPME_SYSCALL_SETUID_X", *params_for("PPME_SYSCALL_SETUID_X", res=0, uid=4242))
    first, second = read_scap(io.BytesIO(bytes(cap)))
    assert first.payload["args"]["uid"] == "nobody" and first.payload["rawargs"]["uid"] == 65534
    assert first.payload["proc"]["name"] == "su" and first.payload["user"]["uid"] == 65534
    assert first.payload["user"]["name"] == "nobody"
    assert second.payload["args"]["uid"] == "<NA>"

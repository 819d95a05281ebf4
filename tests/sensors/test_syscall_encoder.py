"""Records as the BPF program writes them -> the documented syscall envelopes.

The records are built by hand (the layout of ``sensor.h``), so these tests need neither root
nor BPF: they check what user space does with what the kernel reports - the process table
kept by fork/exec/exit, path resolution against the cwd, flags and sockets rendered like
libsinsp, and that the envelopes load and match rules in the engine.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from falconet import shared_context
from falconet.inputs import event_from_envelope
from falconet.sensors.syscall import records as R
from falconet.sensors.syscall.encoder import Encoder
from falconet.sensors.syscall.proctable import Proc, ProcessTable
from falconet.sensors.syscall.syscalls import NR, SUPPORTED
from falconet.sensors.syscall.users import UserTable
from tests.helpers import engine

BOOT = 1_700_000_000_000_000_000  # epoch of boot time 0
DOCKER_ID = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e"


class Records:
    """Builds a batch of records the way the kernel program fills them."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.ts = 1_000_000_000

    def rec(self, kind: int, tgid: int, tid: int | None = None, *, ret: int = 0,
            comm: bytes = b"cat", uid: int = 0, gid: int = 0, flags: int = 0, aux: int = 0,
            a: tuple[int, ...] = (), x: tuple[int, ...] = (), data: bytes = b"",
            cap: int = 0x1FFFFFFFFFF, ts: int | None = None) -> np.ndarray:  # fmt: skip
        r = np.zeros(1, dtype=R.REC_DTYPE)
        self.ts += 1000
        r["ts"] = self.ts if ts is None else ts
        r["tgid"], r["tid"], r["kind"], r["flags"] = tgid, tid or tgid, kind, flags
        r["uid"], r["gid"], r["aux"], r["ret"], r["cap_eff"], r["comm"] = uid, gid, aux, ret, cap, comm
        r["a"][0, : len(a)] = [v & (2**64 - 1) for v in a]
        r["x"][0, : len(x)] = x
        raw = bytearray(r.tobytes())
        raw[160 : 160 + len(data)] = data
        r = np.frombuffer(bytes(raw), dtype=R.REC_DTYPE).copy()
        self.rows.append(r)
        return r

    def chunk(self, tgid: int, what: int, body: bytes, seq: int = 0) -> None:
        r = np.zeros(1, dtype=R.REC_DTYPE)
        raw = bytearray(r.tobytes())
        struct.pack_into("<QIIHHIII", raw, 0, self.ts + 1000, tgid, tgid, R.K_CHUNK, 0, 0, 0,
                         (what << 24) | (seq << 16) | len(body))  # fmt: skip
        raw[64 : 64 + len(body)] = body
        self.rows.append(np.frombuffer(bytes(raw), dtype=R.REC_DTYPE).copy())

    def exec(self, pid: int, ppid: int, argv: list[str], exepath: str, cwd: str, *,
             env: list[str] = (), cgroup: bytes = b"\0\0\0\0", comm: bytes | None = None,
             memfd: bool = False, tty: int = 0) -> None:  # fmt: skip
        def walk(path: str) -> bytes:
            return b"".join(p.encode() + b"\0" for p in reversed(path.strip("/").split("/")))

        self.chunk(pid, R.C_FILENAME, exepath.encode() + b"\0")
        self.chunk(pid, R.C_EXEPATH, walk(exepath))
        self.chunk(pid, R.C_CWD, walk(cwd) if cwd != "/" else b"")
        self.chunk(pid, R.C_ARGV, b"".join(a.encode() + b"\0" for a in argv))
        if env:
            self.chunk(pid, R.C_ENV, b"".join(e.encode() + b"\0" for e in env))
        self.chunk(pid, R.C_CGROUP, cgroup)
        extra = struct.pack("<QQQQQ", 5_000_000, 1024, 0, pid, len(argv))
        self.rec(
            R.K_EXEC, pid, comm=comm or argv[0].rsplit("/", 1)[-1].encode()[:15],
            a=(NR["execve"], ppid, pid | (pid << 32), pid | (pid << 32), 0xFFFFFFFF | (tty << 32),
               7_000_000),
            x=(0, 0x1FFFFFFFFFF, 4242, 1_600_000_000_000_000_000, 1_500_000_000_000_000_000,
               R.EXE_FROM_MEMFD if memfd else 0),
            data=extra,
        )  # fmt: skip

    def openat(self, pid: int, path: str, *, flags: int = 0o2000000, ret: int = 3,
               mode: int = 0, dirfd: int = -100, created: bool = False, isdir: bool = False,
               comm: bytes = b"cat", tid: int | None = None) -> None:  # fmt: skip
        raw = path.encode() + b"\0"
        info = (0o040755 if isdir else 0o100644) | (R.FILE_CREATED if created else 0)
        self.rec(NR["openat"], pid, tid, ret=ret, comm=comm, aux=len(raw),
                 flags=R.F_FILE if ret >= 0 else 0, a=(dirfd, 0x7FFF0000, flags, mode),
                 x=((253 << 20) | 1, 1315432, info) if ret >= 0 else (), data=raw)  # fmt: skip

    def batch(self) -> np.ndarray:
        out = np.concatenate(self.rows)
        self.rows = []
        return out


def _table(tmp_path: Path) -> ProcessTable:
    """A table over an empty /proc (every unknown process becomes a placeholder) with a
    shell (pid 400) under init already known."""
    root = tmp_path / "proc"
    root.mkdir()
    t = ProcessTable(BOOT, UserTable(), proc_root=str(root))
    for pid, ppid, name, exepath, args in (
        (1, 0, "systemd", "/usr/lib/systemd/systemd", ["--system"]),
        (400, 1, "bash", "/usr/bin/bash", []),
    ):
        p = Proc(pid)
        p.ppid, p.name, p.exe, p.exepath, p.args, p.cwd = ppid, name, name, exepath, args, "/root/"
        t.procs[pid] = p
    t.procs[1].nchildren = 1
    return t


def _decode(envs: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(e) for e in envs]


@pytest.fixture
def enc(tmp_path: Path) -> Encoder:
    return Encoder("node-a", _table(tmp_path), SUPPORTED, BOOT)


def test_fork_exec_open_carry_the_process_context(enc: Encoder) -> None:
    recs = Records()
    recs.rec(R.K_FORK, 400, comm=b"bash", ret=500,
             a=(NR["clone"], 500, 400, 500, 6_000_000, 0x1200011), x=(5_000_000, 1000))  # fmt: skip
    recs.exec(500, 400, ["cat", "/etc/shadow"], "/usr/bin/cat", "/tmp/work",
              env=["HOME=/root", "PATH=/usr/bin"], cgroup=f"docker-{DOCKER_ID}.scope\0system.slice\0\0\0".encode())  # fmt: skip
    recs.openat(500, "/etc/shadow")
    recs.openat(500, "notes/../x.txt", flags=0o1101, mode=0o640, ret=4, created=True)
    recs.openat(500, "/nope", ret=-2)
    envs = _decode(enc.envelopes(recs.batch()))
    assert [e["type"] for e in envs] == ["clone", "execve", "openat", "openat", "openat"]
    assert [e["num"] for e in envs] == [1, 2, 3, 4, 5]

    clone = envs[0]["event"]
    assert clone["res"] == 500 and clone["proc"]["name"] == "bash"
    assert clone["args"]["flags"] == "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID"  # glibc fork()

    ex = envs[1]
    assert ex["ts"] == BOOT + 1_000_002_000  # the boot-time stamp of the record, as epoch
    assert ex["id"] == f"node-a-{ex['ts']}-500" and ex["host"] == "node-a"
    p = ex["event"]["proc"]
    assert (p["pid"], p["tid"], p["ppid"], p["name"]) == (500, 500, 400, "cat")
    assert (p["exe"], p["args"], p["exepath"], p["cwd"]) == ("cat", ["/etc/shadow"], "/usr/bin/cat", "/tmp/work/")
    assert p["env"] == ["HOME=/root", "PATH=/usr/bin"]
    assert p["start_ts"] == BOOT + 7_000_000 and p["pidns_init_start_ts"] == BOOT + 5_000_000
    assert p["exe_ino"] == 4242 and "is_exe_from_memfd" not in p
    assert [a["name"] for a in ex["event"]["ancestors"]] == ["bash", "systemd"]
    assert ex["event"]["container"] == {"id": DOCKER_ID[:12]}
    assert ex["event"]["user"]["name"] == "root" and ex["event"]["user"]["loginuid"] == -1
    assert ex["event"]["args"]["filename"] == "/usr/bin/cat"
    assert ex["event"]["args"]["cwd"] == "/tmp/work/"

    shadow = envs[2]["event"]
    assert shadow["args"] == {"fd": 3, "dirfd": -100, "name": "/etc/shadow", "flags": "O_RDONLY|O_CLOEXEC",
                              "mode": "0", "dev": "FD01", "ino": 1315432}  # fmt: skip
    assert shadow["rawargs"] == {"flags": 4097} and shadow["res"] == 3
    assert shadow["fd"] == {"num": 3, "type": "file", "name": "/etc/shadow", "dev": 0xFD01, "ino": 1315432}
    assert shadow["proc"]["name"] == "cat" and shadow["proc"]["args"] == ["/etc/shadow"]

    rel = envs[3]["event"]
    assert rel["args"]["name"] == "/tmp/work/x.txt"  # joined to the cwd, dots resolved
    assert rel["args"]["flags"] == "O_TRUNC|O_CREAT|O_WRONLY|O_F_CREATED" and rel["args"]["mode"] == "0640"
    assert rel["rawargs"]["name"] == "notes/../x.txt" and rel["fd"]["nameraw"] == "notes/../x.txt"

    failed = envs[4]["event"]
    assert failed["res"] == -2 and failed["fd"] == {"num": -1}


def test_envelopes_load_and_match_rules(enc: Encoder) -> None:
    recs = Records()
    recs.exec(500, 400, ["cat", "/etc/shadow"], "/usr/bin/cat", "/")
    recs.openat(500, "/etc/shadow")
    recs.openat(500, "/etc/ld.so.preload", flags=0o1101, mode=0o644, ret=4, created=True)
    e = engine(
        """
- rule: shadow read
  desc: d
  condition: evt.type=openat and evt.is_open_read=true and fd.name=/etc/shadow and proc.pname=bash and fd.typechar=f and fd.num>=0
  output: "%proc.cmdline %fd.name %user.name %container.id"
  priority: WARNING
- rule: write etc
  desc: d
  condition: evt.type=openat and evt.is_open_write=true and fd.directory=/etc and evt.arg.flags contains O_CREAT
  output: "%fd.name %evt.arg.flags"
  priority: ERROR
- rule: cat spawned
  desc: d
  condition: evt.type in (execve, execveat) and proc.name=cat and proc.aname[2]=systemd and proc.cmdline="cat /etc/shadow"
  output: "%proc.exepath"
  priority: NOTICE
""",
        rule_matching="all",
    )  # fmt: skip
    fired = []
    for env in enc.envelopes(recs.batch()):
        fired += [(d.rule, d.output_fields.get("fd.name")) for d in e.process(event_from_envelope(orjson.loads(env)))]
    assert fired == [("cat spawned", None), ("shadow read", "/etc/shadow"), ("write etc", "/etc/ld.so.preload")]


def test_chdir_moves_the_cwd_used_for_relative_paths(enc: Encoder) -> None:
    recs = Records()
    recs.exec(600, 400, ["sh"], "/usr/bin/dash", "/")
    walked = b"cache\0var\0"
    recs.rec(NR["chdir"], 600, comm=b"sh", flags=R.F_PATHWALK, aux=len(walked), data=walked)
    recs.openat(600, "apt/lock", comm=b"sh")
    envs = _decode(enc.envelopes(recs.batch()))
    chdir = [e for e in envs if e["type"] == "chdir"][0]
    assert chdir["event"]["args"] == {"res": 0, "path": "/var/cache"}
    op = [e for e in envs if e["type"] == "openat"][0]["event"]
    assert op["args"]["name"] == "/var/cache/apt/lock" and op["proc"]["cwd"] == "/var/cache/"


def test_threads_comm_and_credentials(enc: Encoder) -> None:
    recs = Records()
    recs.exec(700, 400, ["java", "-jar", "app.jar"], "/usr/bin/java", "/")
    recs.openat(700, "/a", comm=b"java")
    recs.openat(700, "/b", comm=b"C2 CompilerThre", tid=701)  # a named thread
    recs.rec(NR["setuid"], 700, comm=b"java", uid=33, gid=33, a=(33,))
    recs.openat(700, "/c", comm=b"java")  # still uid 0 in the record: uid comes per record
    envs = _decode(enc.envelopes(recs.batch()))
    opens = [e["event"] for e in envs if e["type"] == "openat"]
    assert [(o["proc"]["tid"], o["proc"]["name"], o["proc"]["pid"]) for o in opens] == [
        (700, "java", 700), (701, "C2 CompilerThre", 700), (700, "java", 700)]
    setuid = [e["event"] for e in envs if e["type"] == "setuid"][0]
    assert setuid["user"]["uid"] == 33 and setuid["group"]["gid"] == 33
    assert setuid["rawargs"] == {"uid": 33}


def test_exit_removes_the_process_and_reports_procexit(enc: Encoder) -> None:
    recs = Records()
    recs.exec(800, 400, ["true"], "/usr/bin/true", "/")
    recs.rec(R.K_EXIT, 800, comm=b"true", ret=3 << 8, flags=R.F_GROUP_DEAD, a=(400,))
    envs = _decode(enc.envelopes(recs.batch()))
    assert envs[-1]["type"] == "procexit"
    assert envs[-1]["event"]["args"] == {"status": 768, "ret": 3, "sig": 0, "core": 0, "reaper_tid": 0}
    assert 800 not in enc.table.procs and enc.table.procs[400].nchildren == 0


def test_unknown_process_becomes_a_placeholder_named_after_comm(enc: Encoder) -> None:
    recs = Records()
    recs.openat(900, "/etc/hosts", comm=b"mystery")
    ev = _decode(enc.envelopes(recs.batch()))[0]["event"]
    assert ev["proc"]["name"] == "mystery" and ev["proc"]["pid"] == 900
    assert ev["ancestors"] == [] and ev["container"] == {"id": "host"}


def test_memfd_exec_and_failed_exec(enc: Encoder) -> None:
    recs = Records()
    recs.exec(950, 400, ["x"], "/memfd:x", "/", memfd=True, comm=b"3")
    path = b"/nonexistent/binary\0"
    recs.rec(NR["execve"], 950, comm=b"3", ret=-2, aux=len(path), data=path)
    envs = _decode(enc.envelopes(recs.batch()))
    ok, failed = envs
    assert ok["event"]["proc"]["is_exe_from_memfd"] is True
    assert ok["event"]["proc"]["exepath"] == "/memfd:x"
    assert ok["event"]["args"]["flags"] == "EXE_FROM_MEMFD"
    assert failed["event"]["res"] == -2 and failed["event"]["args"]["filename"] == "/nonexistent/binary"


def _sock(family: int, sport: int, dport: int, laddr: str, raddr: str, state: int = 1) -> bytes:
    fam = socket.AF_INET if family == 2 else socket.AF_INET6
    la, ra = socket.inet_pton(fam, laddr).ljust(16, b"\0"), socket.inet_pton(fam, raddr).ljust(16, b"\0")
    return struct.pack("<HHHHHHI16s16s", family, 1, 6, state, sport, dport, 0, la, ra)


def _uaddr(addr: str, port: int) -> bytes:
    return struct.pack("<HHI16s104s", 2, port, 16, socket.inet_aton(addr), b"")


def test_connect_and_sendto_describe_the_socket(enc: Encoder) -> None:
    recs = Records()
    recs.exec(1000, 400, ["curl", "http://10.96.0.1/"], "/usr/bin/curl", "/")
    sock = _sock(2, 41234, 443, "10.244.1.7", "10.96.0.1", state=2)  # SYN_SENT
    data = sock + _uaddr("10.96.0.1", 443)
    recs.rec(NR["connect"], 1000, comm=b"curl", ret=-115, flags=R.F_FILE | R.F_SOCK | R.F_UADDR,
             a=(5, 0x7FFF, 16), x=(0, 77, 0o140777), data=data)  # fmt: skip
    udp = struct.pack("<HHHHHHI16s16s", 2, 2, 17, 7, 53211, 0, 0, socket.inet_aton("10.244.1.7").ljust(16, b"\0"), bytes(16))
    recs.rec(NR["sendto"], 1000, comm=b"curl", ret=28, flags=R.F_FILE | R.F_SOCK | R.F_UADDR,
             a=(6, 0x7FFF, 28, 0, 0x7FFE, 16), x=(0, 78, 0o140777), data=udp + _uaddr("8.8.8.8", 53))  # fmt: skip
    envs = _decode(enc.envelopes(recs.batch()))
    con = envs[1]["event"]
    assert con["args"] == {"res": -115, "tuple": "10.244.1.7:41234->10.96.0.1:443", "fd": 5,
                           "addr": "10.96.0.1:443"}  # fmt: skip
    assert con["fd"] == {"num": 5, "type": "ipv4", "l4proto": "tcp",
                         "name": "10.244.1.7:41234->10.96.0.1:443", "role": "client",
                         "cip": "10.244.1.7", "cport": 41234, "sip": "10.96.0.1", "sport": 443,
                         "connected": False}  # fmt: skip
    snd = envs[2]["event"]
    assert snd["fd"]["l4proto"] == "udp" and snd["fd"]["sip"] == "8.8.8.8" and snd["fd"]["sport"] == 53
    assert snd["fd"]["name_changed"] is True and snd["args"]["size"] == 28


def test_processes_gone_without_an_exit_record_are_pruned(enc: Encoder, tmp_path: Path) -> None:
    recs = Records()
    recs.exec(1100, 400, ["sleep", "1"], "/usr/bin/sleep", "/")  # its exit record was lost
    enc.envelopes(recs.batch())
    assert 1100 in enc.table.procs and enc.table.procs[400].nchildren == 1
    for pid in (1, 400):  # still running: they have a /proc entry
        (tmp_path / "proc" / str(pid)).mkdir()
    assert enc.table.prune() == 1
    assert set(enc.table.procs) == {1, 400} and enc.table.procs[400].nchildren == 0


def _busy_thread_batch() -> np.ndarray:
    """A compiler-like burst: exec, many opens (found and not), a second thread, a chdir that
    changes the context, a connect, an exit."""
    recs = Records()
    recs.exec(1100, 400, ["cc1", "-quiet", "f.c"], "/usr/libexec/gcc/cc1", "/src")
    for i in range(6):
        recs.openat(1100, f"/usr/include/h{i}.h", ret=3 + i, comm=b"cc1")
        recs.openat(1100, f"/usr/local/include/h{i}.h", ret=-2, comm=b"cc1")
    recs.openat(1100, "/tmp/cc.s", comm=b"cc1 worker", tid=1101)
    walked = b"obj\0"
    recs.rec(NR["chdir"], 1100, comm=b"cc1", flags=R.F_PATHWALK, aux=len(walked), data=walked)
    recs.openat(1100, "f.o", flags=0o1101, ret=9, created=True, comm=b"cc1")
    sock = _sock(2, 41234, 443, "10.244.1.7", "10.96.0.1", state=2)
    recs.rec(NR["connect"], 1100, comm=b"cc1", ret=-115, flags=R.F_FILE | R.F_SOCK | R.F_UADDR,
             a=(5, 0x7FFF, 16), x=(0, 77, 0o140777), data=sock + _uaddr("10.96.0.1", 443))  # fmt: skip
    recs.openat(1100, "g.o", ret=10, comm=b"cc1")
    recs.rec(R.K_EXIT, 1100, comm=b"cc1", flags=R.F_GROUP_DEAD, a=(400,))
    return recs.batch()


@pytest.mark.parametrize("max_events", [500, 4])
def test_a_thread_context_is_written_once_per_record(tmp_path: Path, max_events: int) -> None:
    """Within a batch record, a thread's later events refer to the first one's context
    (docs/events.md "Context by reference"); resolved, they are exactly the self-contained
    envelopes, also across record boundaries."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shared = Encoder("node-a", _table(tmp_path / "a"), SUPPORTED, BOOT, max_events=max_events)
    plain = Encoder("node-a", _table(tmp_path / "b"), SUPPORTED, BOOT, max_events=max_events,
                    share_context=False)  # fmt: skip
    shared.encode(_busy_thread_batch())
    shared.seal()
    plain.encode(_busy_thread_batch())
    plain.seal()
    shared_records, plain_records = shared.take(), plain.take()
    assert [n for _p, n in shared_records] == [n for _p, n in plain_records]
    shared_bytes = sum(len(p) for p, _n in shared_records)
    plain_bytes = sum(len(p) for p, _n in plain_records)
    refs = 0
    for payload, _n in shared_records:
        batch = orjson.loads(payload)
        for i, item in enumerate(batch):
            j = item["event"].get("ctx")
            if j is None:
                assert "proc" in item["event"]
                continue
            refs += 1
            assert 0 <= j < i and "proc" in batch[j]["event"] and "proc" not in item["event"]
            assert batch[j]["event"]["proc"]["tid"] == int(item["id"].rsplit("-", 1)[1])
        assert shared_context.resolve(batch) == {}
        expected = orjson.loads(plain_records.pop(0)[0])
        assert batch == expected
    assert refs >= (10 if max_events == 500 else 5)
    assert shared_bytes < 0.6 * plain_bytes


def test_share_context_off_writes_no_reference(tmp_path: Path) -> None:
    plain = Encoder("node-a", _table(tmp_path), SUPPORTED, BOOT, share_context=False)
    plain.encode(_busy_thread_batch())
    plain.seal()
    for payload, _n in plain.take():
        assert all("ctx" not in e["event"] and "proc" in e["event"] for e in orjson.loads(payload))

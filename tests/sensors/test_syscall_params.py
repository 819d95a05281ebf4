"""Syscall parameters rendered the way Falco (libsinsp) prints them, and container ids."""

from __future__ import annotations

import os

import pytest

from falconet.sensors.syscall import containers
from falconet.sensors.syscall import params as P
from falconet.sensors.syscall.syscalls import NR, SUPPORTED, plan

O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_CLOEXEC = 0o1, 0o2, 0o100, 0o1000, 0o2000000
O_DIRECTORY, O_TMPFILE, O_APPEND = 0o200000, 0o20200000, 0o2000


@pytest.mark.parametrize(
    ("linux", "created", "ppm", "text"),
    [
        (O_CLOEXEC, False, 4097, "O_RDONLY|O_CLOEXEC"),
        (0, False, 1, "O_RDONLY"),
        (O_WRONLY | O_CREAT | O_TRUNC, True, 2 | 4 | 256 | 16384, "O_TRUNC|O_CREAT|O_WRONLY|O_F_CREATED"),
        (O_RDWR, False, 3, "O_RDWR"),  # O_RDWR hides O_RDONLY and O_WRONLY
        (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, False, 2 | 8 | 4 | 4096,
         "O_APPEND|O_CREAT|O_WRONLY|O_CLOEXEC"),
        (O_TMPFILE | O_RDWR, False, 3 | 1024 | 8192, "O_DIRECTORY|O_RDWR|O_TMPFILE"),
    ],
)  # fmt: skip
def test_open_flags_text_and_ppm_value(linux: int, created: bool, ppm: int, text: str) -> None:
    assert P.open_flags(linux, created) == (ppm, text)


def test_open_flags_match_what_the_rules_engine_decodes() -> None:
    # evt.is_open_write/read read the PPM bits the sensor puts in rawargs.flags
    from falconet.rules.fields.syscall import _OPEN_FLAG_BITS

    ppm, _text = P.open_flags(O_WRONLY | O_CREAT, created=True)
    assert ppm & _OPEN_FLAG_BITS["O_WRONLY"] and ppm & _OPEN_FLAG_BITS["O_CREAT"]
    assert ppm & _OPEN_FLAG_BITS["O_F_CREATED"]


def test_open_mode_only_when_the_call_may_create() -> None:
    assert P.open_mode(O_CLOEXEC, 0o644) == "0"
    assert P.open_mode(O_CREAT | O_WRONLY, 0o644) == "0644"
    assert P.open_mode(O_TMPFILE, 0o600) == "0600"


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        (0o4755, "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"),
        (0o4, "S_IROTH"),
        (0o2000, "S_ISGID"),
        (0, ""),
    ],
)
def test_chmod_mode(mode: int, text: str) -> None:
    assert P.chmod_mode(mode) == text


def test_enums_and_small_tables() -> None:
    assert P.render_enum(17, P.SOCKET_FAMILIES) == "AF_PACKET"
    assert P.render_enum(2, P.SOCKET_FAMILIES) == "AF_INET"
    assert P.render_enum(1, P.SOCKET_FAMILIES) == "AF_LOCAL|AF_UNIX"  # libsinsp prints both
    assert P.ptrace_request(16) == (11, "PTRACE_ATTACH")  # Linux 16 is PPM 11
    assert P.ptrace_request(0x4206) == (20, "PTRACE_SEIZE")
    assert P.ptrace_request(5)[1] == "PTRACE_POKEDATA"
    assert P.ptrace_request(12345) == (0, "PTRACE_UNKNOWN")
    assert P.bpf_command(5) == "BPF_PROG_LOAD"
    assert P.render_flags(0x20000 | 0x20000000, P.CLONE_FLAGS) == "CLONE_NEWNS|CLONE_NEWPID"
    assert P.render_flags(0x200, P.UNLINKAT_FLAGS) == "AT_REMOVEDIR"
    assert P.resolve_flags(0x08 | 0x04) == (1 | 8, "RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS")
    assert P.render_flags(4 | 8, P.EXECVE_FLAGS) == "EXE_FROM_MEMFD|EXE_LOWER_LAYER"


def test_device_numbers_and_addresses() -> None:
    # kernel dev_t 253:1 is userspace 0xFD01 (what libs prints as "dev")
    assert P.encode_dev((253 << 20) | 1) == 0xFD01
    assert P.ip_text(2, bytes([10, 0, 0, 1]) + bytes(12)) == "10.0.0.1"
    assert P.ip_text(10, bytes(15) + b"\x01") == "::1"
    assert P.ip_text(10, bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])) == "127.0.0.1"


@pytest.mark.parametrize(
    ("cgroup", "cid"),
    [
        ("0::/system.slice/docker-3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e.scope", "3ad7b26ded6d"),
        ("12:memory:/docker/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e", "3ad7b26ded6d"),
        ("0::/kubepods/besteffort/pod5f1c2a64-9a0e/3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e", "3ad7b26ded6d"),
        ("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e.scope", "3ad7b26ded6d"),
        ("0::/kubepods.slice/crio-3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e.scope", "3ad7b26ded6d"),
        ("0::/machine.slice/libpod-3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e.scope/container", "3ad7b26ded6d"),
        ("0::/machine.slice/libpod-conmon-3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e.scope", "host"),
        ("0::/user.slice/user-1000.slice/session-3.scope", "host"),
        ("4:memory:/process_api/ffd8691f652d70b213eb3069bec87e3a\n0::/", "host"),
    ],
)  # fmt: skip
def test_container_id_from_cgroup(cgroup: str, cid: str) -> None:
    assert containers.id_from_proc_cgroup(cgroup) == cid


def test_container_id_from_kernel_chunk() -> None:
    full = "e3c0c5f1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
    blob = b"container\0libpod-" + full.encode() + b".scope\0\0\0"
    assert containers.id_from_chunk(blob) == full[:12]
    assert containers.id_from_chunk(b"\0\0\0\0") == "host"


def test_capture_plan_follows_the_rules_event_types() -> None:
    p = plan({"openat", "execve", "connect", "clone", "no_such_syscall"})
    assert p.emit == {"openat", "execve", "connect", "clone"}
    assert "clone" not in p.kernel  # forks come from sched_process_fork
    assert {"chdir", "fchdir", "execve"} <= p.kernel  # the process table always needs them
    assert p.unsupported == {"no_such_syscall"}
    bits = p.bitmap()
    assert len(bits) == 64
    on = {nr for nr in range(512) if bits[nr >> 3] >> (nr & 7) & 1}
    assert on == {NR[name] for name in p.kernel}
    assert plan(None).emit == SUPPORTED


@pytest.mark.skipif(not os.path.exists("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
                    reason="no x86-64 kernel headers (asm/unistd_64.h) to compare with")  # fmt: skip
def test_syscall_numbers_match_the_kernel_headers() -> None:
    known: dict[str, int] = {}
    with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("__NR_"):
                known[parts[1][5:]] = int(parts[2])
    for name, nr in NR.items():
        assert known.get(name, nr) == nr, name

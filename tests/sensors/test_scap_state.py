"""The state a capture describes, evolved by its events the way libsinsp evolves it:
threads and fds from the capture's tables, clone/execve/chdir/open/close/procexit updates,
the parent chain, users, and the container id from cgroups."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from falconet.event import Event
from falconet.sensors.scap import read_scap
from tests.sensors.test_scap_blocks import (
    TRACES,
    Capture,
    fd_file,
    fd_ipv4,
    params_for,
    thread,
)

CID = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e"
O_RDONLY, O_CLOEXEC = 1, 1 << 12


def events(cap: Capture) -> list[Event]:
    return list(read_scap(io.BytesIO(bytes(cap)), name="t.scap"))


def scenario() -> Capture:
    """bash (in a container) clones a child that cds to /etc, execs ``cat shadow``, opens
    the file by a relative path, closes it, reads an fd inherited from bash, and exits."""
    cap = Capture("node-t").threads(
        thread(1, 1, 0, "systemd", exe="/sbin/init", exepath="/usr/lib/systemd/systemd"),
        thread(100, 100, 1, "bash", ["-l"], cwd="/root", uid=1000, gid=1000, loginuid=1000,
               cgroups=[f"cpuset=/docker/{CID}"], env=["HOME=/home/alice"]),  # fmt: skip
    )
    cap.fds(100, fd_file(0, "/dev/pts/0"), fd_file(3, "/etc/passwd"),
            fd_file(5, "/var/log/app.log", flags=O_RDONLY | O_CLOEXEC),
            fd_ipv4(6, "10.0.0.1", 5555, "10.0.0.2", 80))  # fmt: skip
    cap.users([(0, 0, "root"), (1000, 1000, "alice")], [(0, "root"), (1000, "staff")])
    cap.event(100, "PPME_SYSCALL_READ_X", *params_for("PPME_SYSCALL_READ_X", res=4, data=b"root", fd=3, size=4096))
    cap.event(100, "PPME_SYSCALL_CLONE_20_X", *params_for(
        "PPME_SYSCALL_CLONE_20_X", res=200, exe="bash", args=["-l"], tid=100, pid=100, ptid=1,
        cwd="/root", fdlimit=1024, comm="bash", flags=0, uid=1000, gid=1000, vtid=100, vpid=100,
    ))  # fmt: skip
    cap.event(200, "PPME_SYSCALL_CHDIR_X", *params_for("PPME_SYSCALL_CHDIR_X", res=0, path="/etc"))
    cap.event(200, "PPME_SYSCALL_EXECVE_19_X", *params_for(
        "PPME_SYSCALL_EXECVE_19_X", res=0, exe="cat", args=["shadow"], tid=200, pid=200, ptid=100,
        cwd="/etc", fdlimit=1024, comm="cat", trusted_exepath="/usr/bin/cat", uid=1000, gid=1000,
    ))  # fmt: skip
    cap.event(200, "PPME_SYSCALL_OPENAT_2_X", *params_for(
        "PPME_SYSCALL_OPENAT_2_X", fd=4, dirfd=-100, name="shadow", flags=O_RDONLY, mode=0,
    ))  # fmt: skip
    cap.event(200, "PPME_SYSCALL_CLOSE_X", *params_for("PPME_SYSCALL_CLOSE_X", res=0, fd=4))
    cap.event(200, "PPME_SYSCALL_READ_X", *params_for("PPME_SYSCALL_READ_X", res=0, fd=4, size=1))
    cap.event(200, "PPME_SYSCALL_READ_X", *params_for("PPME_SYSCALL_READ_X", res=0, fd=3, size=1))
    cap.event(200, "PPME_SYSCALL_READ_X", *params_for("PPME_SYSCALL_READ_X", res=0, fd=5, size=1))
    cap.event(200, "PPME_PROCEXIT_1_E", *params_for("PPME_PROCEXIT_1_E", status=0))
    cap.event(200, "PPME_SYSCALL_CLOSE_X", *params_for("PPME_SYSCALL_CLOSE_X", res=0, fd=3))
    return cap


@pytest.fixture(scope="module")
def evs() -> list[Event]:
    return events(scenario())


def test_fd_table_users_and_container_come_from_the_capture(evs: list[Event]) -> None:
    read = evs[0].payload
    assert evs[0].type == "read" and read["fd"] == {"num": 3, "type": "file", "name": "/etc/passwd"}
    assert read["proc"]["name"] == "bash" and read["proc"]["cwd"] == "/root/"
    assert read["proc"]["fds"]["0"]["name"] == "/dev/pts/0"
    assert read["user"] == {"uid": 1000, "loginuid": 1000}  # container users are not the host's
    assert read["container"] == {"id": CID[:12]}
    assert read["ancestors"][0]["name"] == "systemd"
    assert read["args"]["data"] == "root" and read["buffer"] == "cm9vdA=="
    assert evs[0].host == "node-t" and evs[0].num == 1


def test_clone_and_exec_update_the_process(evs: list[Event]) -> None:
    clone, chdir, execve, opened = evs[1:5]
    assert clone.type == "clone" and clone.payload["proc"]["name"] == "bash"
    assert chdir.payload["proc"]["name"] == "bash" and chdir.payload["proc"]["pid"] == 200
    assert chdir.payload["proc"]["cwd"] == "/etc/"
    p = execve.payload["proc"]
    assert (p["name"], p["args"], p["exe"], p["exepath"]) == ("cat", ["shadow"], "cat", "/usr/bin/cat")
    assert [a["name"] for a in execve.payload["ancestors"]] == ["bash", "systemd"]
    assert execve.payload["ancestors"][0]["args"] == ["-l"]
    assert opened.payload["proc"]["name"] == "cat"


def test_open_resolves_relative_paths_and_adds_the_fd(evs: list[Event]) -> None:
    opened = evs[4].payload
    assert opened["args"]["name"] == "/etc/shadow" and opened["rawargs"]["name"] == "shadow"
    assert opened["args"]["flags"] == "O_RDONLY" and opened["rawargs"]["flags"] == O_RDONLY
    assert opened["args"]["dirfd"] == -100 and opened["res"] == 4
    assert opened["fd"] == {"num": 4, "type": "file", "name": "/etc/shadow", "nameraw": "shadow"}


def test_close_removes_the_fd_after_its_event(evs: list[Event]) -> None:
    close, read_closed, read_inherited, read_cloexec = evs[5:9]
    assert close.payload["fd"]["name"] == "/etc/shadow"
    assert read_closed.payload["fd"] == {"num": 4}  # no longer in the table
    assert read_inherited.payload["fd"]["name"] == "/etc/passwd"  # copied at clone
    assert read_cloexec.payload["fd"] == {"num": 5}  # O_CLOEXEC fds do not survive execve


def test_procexit_removes_the_thread_after_its_event(evs: list[Event]) -> None:
    exit_ev, after = evs[9:11]
    assert exit_ev.type == "procexit" and exit_ev.payload["proc"]["name"] == "cat"
    assert "res" not in exit_ev.payload
    # libsinsp knows the thread only by id now: a placeholder whose comm is "<NA>"
    assert after.payload["proc"]["name"] == "<NA>" and after.payload["proc"]["pid"] == -1
    assert "ancestors" not in after.payload and after.payload["container"] == {"id": "host"}


def test_host_users_and_connect_fill_the_socket() -> None:
    cap = Capture().threads(thread(300, 300, 1, "curl", uid=0, gid=0, loginuid=0))
    cap.users([(0, 0, "root")], [(0, "root")])
    cap.event(300, "PPME_SOCKET_SOCKET_X", *params_for("PPME_SOCKET_SOCKET_X", fd=3, domain=2, type=1, proto=0))
    tup = bytes([2, 10, 0, 0, 1]) + struct.pack("<H", 40000) + bytes([10, 0, 0, 2]) + struct.pack("<H", 443)
    cap.event(300, "PPME_SOCKET_CONNECT_X", *params_for("PPME_SOCKET_CONNECT_X", res=0, tuple=tup, fd=3))
    sock, conn = events(cap)
    assert sock.payload["fd"] == {"num": 3, "type": "ipv4", "name": "", "l4proto": "tcp"}
    assert sock.payload["args"]["domain"] == "AF_INET"
    fd = conn.payload["fd"]
    assert fd["name"] == "10.0.0.1:40000->10.0.0.2:443" and fd["role"] == "client"
    assert (fd["cip"], fd["cport"], fd["sip"], fd["sport"]) == ("10.0.0.1", 40000, "10.0.0.2", 443)
    assert conn.payload["args"]["tuple"] == "10.0.0.1:40000->10.0.0.2:443"
    assert conn.payload["user"] == {"uid": 0, "loginuid": 0, "name": "root", "homedir": "/home/root",
                                    "shell": "/bin/sh", "loginname": "root"}  # fmt: skip
    assert conn.payload["group"] == {"gid": 0, "name": "root"}


def test_a_real_capture_exec_and_placeholder_parent(corpus: Path) -> None:
    evs = list(read_scap(str(corpus / TRACES / "cat_write.scap")))
    execve = next(e for e in evs if e.type == "execve")
    p = execve.payload["proc"]
    assert (p["name"], p["args"], p["pid"], p["ppid"]) == ("cat", ["/dev/null"], 20072, 11310)
    # cat's thread is not in the capture's process table: libsinsp knows it from the execve
    # only (a placeholder patched with pid and parent), so cwd and uid stay unknown
    assert p["cwd"] == "" and execve.payload["user"] == {"uid": 0xFFFFFFFF, "loginuid": -1}
    assert execve.payload["ancestors"][0]["pid"] == 11310
    opens = [e for e in evs if e.type == "open"]
    assert [e.payload["fd"]["name"] for e in opens] == [
        "/etc/ld.so.cache", "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/locale/locale-archive", "/dev/null",
    ]  # fmt: skip
    assert all(e.payload["proc"]["name"] == "cat" for e in opens)

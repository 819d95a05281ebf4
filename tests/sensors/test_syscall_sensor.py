"""The real sensor on this machine: real commands, captured events, Falco rules firing.

Starts the sensor (BPF program loaded and attached, ring buffer read by the sensor's loop;
once with each packaged object: direct loads and the compat build) with the kernel filter of the stable + sandbox rules, runs real programs - a shell spawned
by a program named like a web server, ``cat /etc/shadow``, a symlink over /etc/shadow, a
write under /etc inside a private mount namespace (a tmpfs over /etc/opt, the host's /etc
is untouched), a TCP connect to a loopback listener, an exec from a memfd, a ptrace
attach - and checks the captured events' fields and the rules the engine fires on them.

Needs root (or CAP_BPF + CAP_PERFMON), kernel BTF and libbpf.so.1; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet import shared_context
from falconet.inputs import event_from_envelope
from falconet.rules.engine import Engine, EngineConfig
from falconet.sensors.syscall import preflight

RULES = "falco/falcosecurity-rules/rules/"

_MISSING = preflight.missing()  # root (or CAP_BPF + CAP_PERFMON), BTF, libbpf, x86-64
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"the sensor cannot run here: {_MISSING}")


class ListSink:
    """Keeps the batch records the sensor would produce, checking their shape."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []

    def publish(self, records: Any) -> None:
        for payload, count in records:
            batch = orjson.loads(payload)
            assert isinstance(batch, list) and len(batch) == count
            assert shared_context.resolve(batch) == {}  # every reference is well formed
            self.envelopes.extend(orjson.dumps(e) for e in batch)

    def idle(self) -> None:
        pass


PTRACE_ATTACH = """
import ctypes, os, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
p = subprocess.Popen(["sleep", "5"])
time.sleep(0.05)
assert libc.ptrace(16, p.pid, 0, 0) == 0
os.waitpid(p.pid, 0)
libc.ptrace(17, p.pid, 0, 0)
p.kill()
p.wait()
"""
MEMFD_EXEC = """
import os
fd = os.memfd_create("payload", 0)
os.write(fd, open("/bin/true", "rb").read())
os.execv(f"/proc/self/fd/{fd}", ["payload"])
"""


def _objects() -> list[Any]:
    """Both packaged objects (direct loads, probe reads) where this kernel can load them."""
    from falconet.sensors.syscall.libbpf import Libbpf
    from falconet.sensors.syscall.sensor import COMPAT_OBJECT_NAME, DIRECT_LOAD_KFUNC, OBJECT_NAME

    direct = _MISSING is None and Libbpf.get().kernel_has_func(DIRECT_LOAD_KFUNC, preflight.BTF_PATH)
    return [
        pytest.param(OBJECT_NAME, id="direct", marks=pytest.mark.skipif(
            not direct, reason=f"this kernel has no {DIRECT_LOAD_KFUNC} kfunc (before 6.2)")),
        pytest.param(COMPAT_OBJECT_NAME, id="compat"),
    ]  # fmt: skip


@pytest.fixture(scope="module", params=_objects())
def capture(request: pytest.FixtureRequest, corpus: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # fmt: skip
    from falconet.sensors.syscall.sensor import SyscallSensor, SyscallSettings

    obj = str(Path(__file__).resolve().parents[2] / "sensors" / "syscall" / request.param)

    eng = Engine(EngineConfig(rule_matching="all"))
    res = eng.load([corpus / RULES / "falco_rules.yaml", corpus / RULES / "falco-sandbox_rules.yaml"])
    assert res.ok, res.summary()
    sensor = SyscallSensor(SyscallSettings(host="node-test", ring_mb=16, poll_ms=5,
                                           event_types=eng.event_types(), object_path=obj))  # fmt: skip
    sensor.setup()
    sink = ListSink()
    runner = threading.Thread(target=sensor.run_into, args=(sink,), daemon=True)
    runner.start()
    tmp = tmp_path_factory.mktemp("syscall")
    facts: dict[str, Any] = {"tmp": tmp}
    try:
        nginx = tmp / "nginx"
        nginx.symlink_to("/bin/dash")  # a shell whose comm is "nginx": a web server
        run = subprocess.run
        run([str(nginx), "-c", "sh -c true; true"], check=True)
        run(["cat", "/etc/shadow"], check=True, stdout=subprocess.DEVNULL)
        run(["ln", "-s", "/etc/shadow", str(tmp / "shadow-link")], check=True)
        run(["find", str(tmp / "nothing"), "-name", "id_rsa"], stderr=subprocess.DEVNULL)
        if shutil.which("unshare"):
            run(["unshare", "-m", "sh", "-c",
                 "mount -t tmpfs falconet-test /etc/opt && echo x > /etc/opt/falconet-test"],
                check=True)  # fmt: skip
            facts["etc_write"] = True
        with socket.create_server(("127.0.0.1", 0)) as srv:
            facts["port"] = port = srv.getsockname()[1]
            run([sys.executable, "-c",
                 f"import socket; socket.create_connection(('127.0.0.1', {port})).close()"],
                check=True)  # fmt: skip
        run([sys.executable, "-c", MEMFD_EXEC], check=True)
        run([sys.executable, "-c", PTRACE_ATTACH], check=True)
        time.sleep(0.2)
    finally:
        sensor.stop()
        runner.join(30)
    assert not runner.is_alive()
    me = os.getpid()
    ours = []
    for env in sink.envelopes:
        obj = orjson.loads(env)
        ev = obj["event"]
        if any(a.get("pid") == me for a in ev["ancestors"]):
            ours.append(obj)
    fired: dict[str, list[dict[str, Any]]] = {}
    for obj in ours:
        for d in eng.process(event_from_envelope(obj)):
            fired.setdefault(d.rule, []).append(obj)
    facts.update(sensor=sensor, all=sink.envelopes, ours=ours, fired=fired,
                 plan=sensor.plan)  # fmt: skip
    yield facts


def _find(capture: dict[str, Any], etype: str, **proc: Any) -> list[dict[str, Any]]:
    return [
        o for o in capture["ours"]
        if o["type"] == etype and all(o["event"]["proc"].get(k) == v for k, v in proc.items())
    ]  # fmt: skip


def test_nothing_lost_and_only_wanted_types(capture: dict[str, Any]) -> None:
    s = capture["sensor"]
    assert s.stats.drops == 0 and s.sys.kernel_drops == 0
    assert s.sys.records > 0 and s.sys.batches > 0
    types = {orjson.loads(e)["type"] for e in capture["all"]}
    # the kernel filter: only what the loaded rules can match, plus the table's own needs
    assert types <= capture["plan"].emit | {"chdir", "fchdir"}
    assert "unshare" not in types and "close" not in types and "setuid" not in types


def test_shell_spawned_by_a_web_server(capture: dict[str, Any]) -> None:
    (sh,) = [o for o in _find(capture, "execve", name="sh") if o["event"]["proc"]["args"] == ["-c", "true"]]
    ev = sh["event"]
    p = ev["proc"]
    assert p["exe"] == "sh" and p["exepath"] == "/usr/bin/dash" and p["cwd"].endswith("/")
    assert ev["ancestors"][0]["name"] == "nginx"
    assert ev["ancestors"][0]["exe"].endswith("/nginx") and ev["ancestors"][0]["exepath"] == "/usr/bin/dash"
    assert ev["ancestors"][1]["pid"] == os.getpid()
    assert ev["user"]["uid"] == 0 and ev["user"]["name"] == "root" and ev["container"] == {"id": "host"}
    assert sh["host"] == "node-test" and sh["id"] == f"node-test-{sh['ts']}-{p['tid']}"
    assert abs(sh["ts"] - time.time_ns()) < 600 * 10**9
    assert "Run shell untrusted" in capture["fired"]


def test_cat_etc_shadow(capture: dict[str, Any]) -> None:
    opens = [o for o in _find(capture, "openat", name="cat") if o["event"]["args"]["name"] == "/etc/shadow"]
    assert len(opens) == 1
    ev = opens[0]["event"]
    assert ev["res"] >= 0 and ev["fd"]["num"] == ev["res"] and ev["fd"]["type"] == "file"
    assert ev["fd"]["name"] == "/etc/shadow" and ev["args"]["flags"].startswith("O_RDONLY")
    st = os.stat("/etc/shadow")  # the file behind the fd, read in the kernel
    assert ev["args"]["ino"] == ev["fd"]["ino"] == st.st_ino
    assert int(ev["args"]["dev"], 16) == ev["fd"]["dev"] == (os.minor(st.st_dev) & 0xFF) | (
        os.major(st.st_dev) << 8) | ((os.minor(st.st_dev) & ~0xFF) << 12)  # fmt: skip
    assert ev["rawargs"]["flags"] & 1  # PPM O_RDONLY: evt.is_open_read
    assert ev["proc"]["exepath"] == "/usr/bin/cat" and ev["proc"]["args"] == ["/etc/shadow"]
    assert [d["event"]["args"]["name"] for d in capture["fired"]["Read sensitive file untrusted"]] == ["/etc/shadow"]


def test_write_under_etc_in_a_private_mount(capture: dict[str, Any]) -> None:
    if not capture.get("etc_write"):
        pytest.skip("unshare(1) is not installed")
    (w,) = [o for o in _find(capture, "openat", name="sh") if o["event"]["args"]["name"] == "/etc/opt/falconet-test"]
    ev = w["event"]
    assert ev["args"]["flags"] == "O_TRUNC|O_CREAT|O_WRONLY|O_F_CREATED" and ev["args"]["mode"] == "0666"
    assert ev["fd"]["name"] == "/etc/opt/falconet-test"
    assert [d["event"]["fd"]["name"] for d in capture["fired"]["Write below etc"]] == ["/etc/opt/falconet-test"]
    assert not Path("/etc/opt/falconet-test").exists()  # it was a private tmpfs


def test_symlink_over_etc_shadow(capture: dict[str, Any]) -> None:
    (ln,) = _find(capture, "symlinkat", name="ln")
    args = ln["event"]["args"]
    assert args["res"] == 0 and args["target"] == "/etc/shadow"
    assert args["linkpath"] == str(capture["tmp"] / "shadow-link") and args["linkdirfd"] == -100
    assert "Create Symlink Over Sensitive Files" in capture["fired"]


def test_tcp_connect_to_a_loopback_listener(capture: dict[str, Any]) -> None:
    port = capture["port"]
    cons = [o for o in _find(capture, "connect") if o["event"]["fd"].get("sport") == port]
    assert len(cons) == 1
    ev = cons[0]["event"]
    fd = ev["fd"]
    assert ev["res"] == 0 and ev["args"]["addr"] == f"127.0.0.1:{port}"
    assert fd["type"] == "ipv4" and fd["l4proto"] == "tcp" and fd["role"] == "client"
    assert fd["sip"] == "127.0.0.1" and fd["cip"] == "127.0.0.1" and fd["cport"] > 0
    assert fd["connected"] is True
    assert ev["args"]["tuple"] == fd["name"] == f"127.0.0.1:{fd['cport']}->127.0.0.1:{port}"
    socks = [o for o in _find(capture, "socket") if o["event"]["proc"]["pid"] == ev["proc"]["pid"]]
    assert socks and socks[-1]["event"]["args"]["domain"] == "AF_INET"


def test_search_private_keys_and_memfd_and_ptrace(capture: dict[str, Any]) -> None:
    fired = capture["fired"]
    assert [d["event"]["proc"]["args"][-1] for d in fired["Search Private Keys or Passwords"]] == ["id_rsa"]
    (memfd,) = fired["Fileless execution via memfd_create"]
    p = memfd["event"]["proc"]
    assert p["is_exe_from_memfd"] is True and p["exepath"] == "/memfd:payload"
    (ptrace,) = fired["PTRACE attached to process"]
    assert ptrace["event"]["args"]["request"] == "PTRACE_ATTACH"
    assert ptrace["event"]["args"]["pid"] == "sleep"


def test_a_refused_direct_object_falls_back_to_compat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Should a kernel's verifier refuse the direct-load object, the sensor still runs with
    the compat object and says so (here: the direct object is not a BPF object at all)."""
    from falconet.sensors.syscall import sensor as S

    bad = tmp_path / "sensor.bpf.o"
    bad.write_bytes(b"\x7fELF not really")
    monkeypatch.setattr(S, "default_object", lambda lib=None, btf_path="": str(bad))
    sensor = S.SyscallSensor(S.SyscallSettings(host="node-test", ring_mb=1, event_types={"openat"}))
    with caplog.at_level("INFO", logger="falconet.sensor.syscall"):
        sensor.setup()
    try:
        assert "sensor.syscall.object_refused object=sensor.bpf.o" in caplog.text
        assert "object=sensor-compat.bpf.o" in caplog.text  # the ready line
    finally:
        sensor.close()


def test_an_object_named_by_the_user_is_not_replaced(tmp_path: Path) -> None:
    from falconet.errors import SensorError
    from falconet.sensors.syscall import sensor as S

    bad = tmp_path / "mine.bpf.o"
    bad.write_bytes(b"\x7fELF not really")
    sensor = S.SyscallSensor(S.SyscallSettings(host="node-test", ring_mb=1, event_types={"openat"},
                                               object_path=str(bad)))  # fmt: skip
    with pytest.raises(SensorError, match=r"mine\.bpf\.o"):
        sensor.setup()

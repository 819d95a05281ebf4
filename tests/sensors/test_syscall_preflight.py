"""The sensor says what the machine lacks - capability, BTF, kernel, libbpf - instead of a
traceback: unit checks of each message, then the real CLI run without privileges."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from falconet.errors import SensorError
from falconet.sensors.syscall import preflight as pf

BPF_PERFMON = 1 << pf.CAP_BPF | 1 << pf.CAP_PERFMON
BTF = "/sys/kernel/btf/vmlinux"


def host(tmp_path: Path, **kw: object) -> pf.Host:
    btf = tmp_path / "vmlinux"
    btf.write_bytes(b"BTF")
    facts: dict[str, object] = {"machine": "x86_64", "release": "6.1.0-18-amd64",
                                "btf_path": str(btf), "lockdown": "none [integrity] confidentiality",
                                "cap_eff": BPF_PERFMON}  # fmt: skip
    facts.update(kw)
    return pf.Host(**facts)  # type: ignore[arg-type]


def test_a_capable_machine_passes(tmp_path: Path) -> None:
    pf.check(host(tmp_path))
    pf.check(host(tmp_path, cap_eff=1 << pf.CAP_SYS_ADMIN, lockdown=None))


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"cap_eff": 1 << pf.CAP_BPF}, "missing capability CAP_PERFMON"),
        ({"cap_eff": 1 << pf.CAP_PERFMON}, "missing capability CAP_BPF"),
        ({"cap_eff": 0}, "missing capabilities CAP_BPF and CAP_PERFMON"),
        ({"release": "5.10.0-28-amd64"}, "kernel 5.10.0-28-amd64 is too old"),
        ({"release": "4.19.0"}, "needs Linux >= 5.15"),
        ({"machine": "aarch64"}, "x86-64 only"),
        ({"btf_path": "/nonexistent/vmlinux"}, "CONFIG_DEBUG_INFO_BTF=y"),
        ({"lockdown": "none integrity [confidentiality]"}, "lockdown is in 'confidentiality' mode"),
    ],
)
def test_missing_requirements_are_named(tmp_path: Path, facts: dict, message: str) -> None:
    with pytest.raises(SensorError, match=message):
        pf.check(host(tmp_path, **facts))


def test_effective_caps_read_from_proc_status(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000000c000000000\n")
    caps = pf.effective_caps(str(status))
    assert caps == BPF_PERFMON


def test_a_missing_libbpf_is_an_install_hint() -> None:
    from falconet.sensors.syscall.libbpf import Libbpf

    with pytest.raises(SensorError, match=r"install libbpf 1.x \(Debian/Ubuntu: apt-get install libbpf1\)"):
        Libbpf("libbpf-not-installed.so.1")


def test_load_error_hints() -> None:
    assert "CAP_BPF and CAP_PERFMON" in pf.explain_load_error("load failed", 1)
    assert pf.explain_load_error("x", 22) == "x"


# -- the real command, without root ---------------------------------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(BTF),
    reason="needs root (to drop to an unprivileged user with chosen capabilities), setpriv "
    "(util-linux) and kernel BTF at /sys/kernel/btf/vmlinux",
)


def _falconet_as_nobody(caps: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``falconet sensor syscall ARGS`` as uid 65534 with exactly ``caps`` (ambient)."""
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if caps:
        cmd += [f"--inh-caps={caps}", f"--ambient-caps={caps}"]
    cmd += [sys.executable, "-m", "falconet", "sensor", "syscall", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/",
                          env={**os.environ, **(env or {})})  # fmt: skip


@needs_root
@pytest.mark.parametrize(
    ("caps", "missing"),
    [("+bpf", "CAP_PERFMON"), ("+perfmon", "CAP_BPF"), ("", "CAP_BPF and CAP_PERFMON")],
)
def test_cli_names_the_missing_capability(caps: str, missing: str) -> None:
    r = _falconet_as_nobody(caps, "--check")
    assert r.returncode == 2, r.stderr
    assert f"missing capabilit{'ies' if ' and ' in missing else 'y'} {missing}" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@needs_root
def test_cap_bpf_and_cap_perfmon_are_enough() -> None:
    """No root and no CAP_SYS_ADMIN: load, attach and detach work with the two capabilities."""
    r = _falconet_as_nobody("+bpf,+perfmon", "--check", "--ring-mb", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: the syscall sensor can run on this machine")


def test_cli_reports_a_missing_object_without_traceback(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not os.path.exists(BTF):
        pytest.skip("needs root and kernel BTF to get past the capability checks")
    r = subprocess.run(
        [sys.executable, "-m", "falconet", "sensor", "syscall", "--check"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "FALCONET_SYSCALL_OBJECT": str(tmp_path / "gone.bpf.o")},
    )  # fmt: skip
    assert r.returncode == 2
    assert "gone.bpf.o is missing" in r.stderr and "Traceback" not in r.stderr


def test_cli_refuses_a_bad_ring_size() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "falconet", "sensor", "syscall", "--check", "--ring-mb", "3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert "syscall.ring_mb must be a power of two" in r.stderr and "Traceback" not in r.stderr

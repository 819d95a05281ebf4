"""What the sensor needs from the machine, checked before anything is loaded.

Each check raises :class:`SensorError` with what is missing and how to get it, so the CLI
prints one clear line instead of a libbpf error or a traceback:

* x86-64 (the program decodes x86-64 syscall numbers and registers);
* Linux >= 5.15 (ring buffer, BTF-enabled raw tracepoints, ``bpf_task_pt_regs``);
* kernel BTF at ``/sys/kernel/btf/vmlinux`` (CONFIG_DEBUG_INFO_BTF=y), used for CO-RE;
* lockdown not in ``confidentiality`` mode (it forbids reading kernel memory from BPF);
* CAP_BPF and CAP_PERFMON in the effective set (or CAP_SYS_ADMIN, which implies both);
  no tracefs access is needed: the hooks are BTF raw tracepoints;
* ``libbpf.so.1`` (Debian/Ubuntu package ``libbpf1``).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from falconet.errors import SensorError

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39
MIN_KERNEL = (5, 15)
BTF_PATH = "/sys/kernel/btf/vmlinux"
LOCKDOWN_PATH = "/sys/kernel/security/lockdown"


@dataclass(frozen=True, slots=True)
class Host:
    """The facts the checks look at (injectable for tests)."""

    machine: str
    release: str
    btf_path: str
    lockdown: str | None  # e.g. "none [integrity] confidentiality"; None when unreadable
    cap_eff: int

    @classmethod
    def current(cls, btf_path: str = BTF_PATH) -> Host:
        try:
            with open(LOCKDOWN_PATH, encoding="ascii") as f:
                lockdown: str | None = f.read().strip()
        except OSError:
            lockdown = None
        return cls(platform.machine(), platform.release(), btf_path, lockdown, effective_caps())


def effective_caps(status_path: str = "/proc/self/status") -> int:
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def kernel_version(release: str) -> tuple[int, int]:
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def check(host: Host) -> None:
    """Raise :class:`SensorError` naming the first thing missing."""
    if host.machine not in ("x86_64", "amd64"):
        raise SensorError(
            f"the syscall sensor supports x86-64 only (this machine is {host.machine})"
        )
    version = kernel_version(host.release)
    if version < MIN_KERNEL:
        raise SensorError(
            f"kernel {host.release} is too old: the syscall sensor needs Linux >= "
            f"{MIN_KERNEL[0]}.{MIN_KERNEL[1]} (BPF ring buffer, BTF raw tracepoints)"
        )
    if not os.path.exists(host.btf_path):
        raise SensorError(
            f"no kernel BTF at {host.btf_path}: the kernel must be built with "
            "CONFIG_DEBUG_INFO_BTF=y (the sensor relocates its program against it)"
        )
    if not os.access(host.btf_path, os.R_OK):
        raise SensorError(f"cannot read the kernel BTF at {host.btf_path}")
    if host.lockdown and "[confidentiality]" in host.lockdown:
        raise SensorError(
            "kernel lockdown is in 'confidentiality' mode, which forbids BPF programs from "
            "reading kernel memory; the syscall sensor cannot run (integrity mode is fine)"
        )
    missing = [
        name
        for bit, name in ((CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON"))
        if not host.cap_eff >> bit & 1
    ]
    if missing and not host.cap_eff >> CAP_SYS_ADMIN & 1:
        raise SensorError(
            f"missing capabilit{'ies' if len(missing) > 1 else 'y'} {' and '.join(missing)}: "
            "the syscall sensor needs CAP_BPF and CAP_PERFMON (no CAP_SYS_ADMIN, no tracefs). "
            "Run it as root, or grant them, e.g. in Kubernetes securityContext.capabilities.add: "
            "[BPF, PERFMON], or with systemd AmbientCapabilities=CAP_BPF CAP_PERFMON"
        )


def missing() -> str | None:
    """Why the sensor cannot run here (the first missing requirement), or None."""
    try:
        check(Host.current())
        from .libbpf import Libbpf

        Libbpf.get()
    except SensorError as exc:
        return str(exc)
    return None


def explain_load_error(message: str, err: int) -> str:
    """A hint for a failed load/attach, from its errno."""
    if err == 1:  # EPERM
        return (
            f"{message}\nThe kernel refused the BPF program (EPERM): check that the sensor has "
            "CAP_BPF and CAP_PERFMON and that no security module (lockdown, SELinux, seccomp) "
            "forbids bpf()."
        )
    if err == 2 and "attach" in message:  # ENOENT
        return f"{message}\nThe kernel lacks a tracepoint the sensor attaches to."
    return message

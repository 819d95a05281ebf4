"""The ring-buffer record of the BPF program, as numpy sees it (mirror of ``sensor.h``).

``REC_DTYPE`` is ``struct fn_rec``; the sensor checks it against the BTF of the object it
loads (:func:`check_layout`), and a test checks the constants against ``sensor.h``.
"""

from __future__ import annotations

import numpy as np

from falconet.errors import SensorError

REC_SIZE = 512
BODY_SIZE = 448
DATA_SIZE = 352
NR_MAX = 512

K_CHUNK = 1000
K_EXEC = 1001
K_FORK = 1002
K_EXIT = 1003

C_FILENAME = 1
C_EXEPATH = 2
C_CWD = 3
C_ARGV = 4
C_ENV = 5
C_CGROUP = 6

F_TRUNC = 0x0001
F_PATHWALK = 0x0002
F_SOCK = 0x0004
F_UADDR = 0x0008
F_FILE = 0x0010
F_GROUP_DEAD = 0x0020

EXE_WRITABLE = 1
EXE_UPPER_LAYER = 2
EXE_FROM_MEMFD = 4
EXE_LOWER_LAYER = 8

FILE_CREATED = 1 << 16
FILE_UPPER_LAYER = 1 << 17
FILE_LOWER_LAYER = 1 << 18

UADDR_OFF = 48
PATH2_OFF = 176

REC_DTYPE = np.dtype(
    [
        ("ts", "<u8"),
        ("tgid", "<u4"),
        ("tid", "<u4"),
        ("kind", "<u2"),
        ("flags", "<u2"),
        ("uid", "<u4"),
        ("gid", "<u4"),
        ("aux", "<u4"),
        ("ret", "<i8"),
        ("cap_eff", "<u8"),
        ("comm", "S16"),
        ("a", "<u8", (6,)),
        ("x", "<u8", (6,)),
        ("data", "V352"),
    ]
)
assert REC_DTYPE.itemsize == REC_SIZE

#: struct fn_sock at data[0] (FN_F_SOCK)
SOCK_DTYPE = np.dtype(
    [
        ("family", "<u2"),
        ("type", "<u2"),
        ("proto", "<u2"),
        ("state", "<u2"),
        ("lport", "<u2"),
        ("rport", "<u2"),
        ("pad", "<u4"),
        ("laddr", "V16"),
        ("raddr", "V16"),
    ]
)
#: struct fn_uaddr at data[UADDR_OFF] (FN_F_UADDR)
UADDR_DTYPE = np.dtype(
    [("family", "<u2"), ("port", "<u2"), ("len", "<u4"), ("addr", "V16"), ("path", "S104")]
)
assert SOCK_DTYPE.itemsize == 48 and UADDR_DTYPE.itemsize == 128

#: the settings map value (struct fn_settings)
SETTINGS_SIZE = 80


def check_layout(size: int, offsets: dict[str, int]) -> None:
    """Refuse a BPF object whose ``struct fn_rec`` differs from :data:`REC_DTYPE`."""
    ours = {name: REC_DTYPE.fields[name][1] for name in REC_DTYPE.names or ()}
    if size != REC_SIZE or offsets != ours:
        raise SensorError(
            f"the BPF object's struct fn_rec ({size} bytes, {offsets}) does not match this "
            f"falconet's decoder ({REC_SIZE} bytes, {ours}): reinstall falconet or rebuild the "
            "object with scripts/build_bpf.sh"
        )


def settings_value(want: bytes, self_tgid: int, only_tgid: int, wakeup: int, want_env: bool) -> bytes:
    """The bytes of ``struct fn_settings``."""
    if len(want) != NR_MAX // 8:
        raise ValueError("want must be a 512-bit bitmap")
    out = (
        want
        + self_tgid.to_bytes(4, "little")
        + only_tgid.to_bytes(4, "little")
        + wakeup.to_bytes(4, "little")
        + int(want_env).to_bytes(4, "little")
    )
    assert len(out) == SETTINGS_SIZE
    return out


def components_to_path(blob: bytes) -> str:
    """A path walked in the kernel (components leaf first, NUL-terminated) as text."""
    parts = [p for p in blob.split(b"\0") if p]
    if not parts:
        return "/"
    parts.reverse()
    return "/" + "/".join(p.decode("utf-8", "surrogateescape") for p in parts)

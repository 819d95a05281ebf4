"""The columns of a batch of ring records, as the encoder reads them.

The numpy batch becomes a few Python lists at once (one vectorized ``tolist`` per column)
- the kind, thread, time, return value, string length, and two keys computed with numpy:
``key`` (comm, uid, gid and capabilities mixed: "same credentials as before") and
``okey`` (openat's flags, mode, creation and dirfd: the cache key of its arguments). The
columns only some events need are computed on first use.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import records as R

_DATA = 160  # offset of data[] in a record
_BODY = 64  # offset of the chunk body

# record columns mixed into one key per record: a thread's fragment is valid while its
# records carry the same comm, uid, gid and effective capabilities
_KEY_DTYPE = np.dtype(
    {
        "names": ["c0", "c1", "ug", "cap"],
        "formats": ["<u8", "<u8", "<u8", "<u8"],
        "offsets": [48, 56, 20, 40],
        "itemsize": R.REC_SIZE,
    }
)


@functools.lru_cache(maxsize=4)
def _slot_key_dtype(stride: int) -> np.dtype[Any]:
    f = _KEY_DTYPE.fields or {}
    hdr = stride - R.REC_SIZE
    return np.dtype({"names": list(f), "formats": [f[n][0] for n in f],
                     "offsets": [f[n][1] + hdr for n in f], "itemsize": stride})  # fmt: skip


_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)


class Batch:
    """The columns of one batch: those every event needs at once, the others on first use."""

    def __init__(self, recs: np.ndarray, boot_to_epoch: int) -> None:
        self.recs = recs
        # the records' bytes: the ring's copy itself when ``recs`` views all of it
        base = recs.base
        if isinstance(base, bytes) and len(base) == recs.nbytes:
            self.blob = base
        else:
            self.blob = recs.tobytes()
        self.stride = recs.dtype.itemsize  # 512, or 520 for ring slots (8-byte header)
        self.hdr = self.stride - R.REC_SIZE
        self.kind = recs["kind"].tolist()
        self.tid = recs["tid"].tolist()
        self.ts = (recs["ts"].astype(np.int64) + np.int64(boot_to_epoch)).tolist()
        self.ret = recs["ret"].tolist()
        self.aux = recs["aux"].tolist()
        k = recs.view(_KEY_DTYPE if self.hdr == 0 else _slot_key_dtype(self.stride))
        with np.errstate(over="ignore"):
            key = (k["c0"] * _M1) ^ (k["c1"] * _M2) ^ (k["ug"] * _M3) ^ k["cap"]
        self.key = (key >> np.uint64(1)).tolist()  # keep it a non-negative int
        # thread + key in one number: "same thread, same comm and credentials as before"
        tids = recs["tid"].astype(np.uint64)
        with np.errstate(over="ignore"):
            self.tkey = ((key ^ (tids * _M3)) >> np.uint64(1)).tolist()
        a, x = recs["a"], recs["x"]
        self._low = low = a[:, :3].astype(np.uint32)  # int arguments: low 32 bits
        # openat cache key: flags, creation, mode when it matters, dirfd
        flags = low[:, 2].astype(np.uint64)
        created = (x[:, 2] >> np.uint64(16)) & np.uint64(1)  # FN_FILE_CREATED
        mode = np.where((flags & np.uint64(0o20000100)) != 0, a[:, 3] & np.uint64(0o7777), np.uint64(0))
        self.okey = (
            flags | (created << np.uint64(32)) | (mode << np.uint64(33))
            | (low[:, 0].astype(np.uint64) << np.uint64(45))
        ).tolist()
        self.x0 = x[:, 0].tolist()
        self.x1 = x[:, 1].tolist()

    @functools.cached_property
    def tgid(self) -> list[int]:
        return self.recs["tgid"].tolist()

    @functools.cached_property
    def flags(self) -> list[int]:
        return self.recs["flags"].tolist()

    @functools.cached_property
    def a0(self) -> list[int]:
        return self.recs["a"][:, 0].tolist()

    @functools.cached_property
    def a1(self) -> list[int]:
        return self.recs["a"][:, 1].tolist()

    @functools.cached_property
    def a2(self) -> list[int]:
        """The third argument, 32 bits (flags of openat)."""
        return self._low[:, 2].tolist()

    @functools.cached_property
    def a3(self) -> list[int]:
        return self.recs["a"][:, 3].tolist()

    @functools.cached_property
    def x2(self) -> list[int]:
        return self.recs["x"][:, 2].tolist()

    @functools.cached_property
    def dirfd(self) -> list[int]:
        """The first argument as a signed 32-bit int (dirfd, fd)."""
        return self._low[:, 0].view(np.int32).tolist()

    def data(self, i: int, off: int = 0, size: int = R.DATA_SIZE) -> bytes:
        base = i * self.stride + self.hdr + _DATA + off
        return self.blob[base : base + size]

    def body(self, i: int) -> bytes:
        base = i * self.stride + self.hdr + _BODY
        return self.blob[base : base + R.BODY_SIZE]

    def a(self, i: int, j: int) -> int:
        return int(self.recs["a"][i, j])

    def x(self, i: int, j: int) -> int:
        return int(self.recs["x"][i, j])

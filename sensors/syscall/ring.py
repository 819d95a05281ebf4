"""Our own reader of a BPF ring buffer of fixed-size records, in batches, with numpy.

libbpf 1.1's consumer calls back once per record, and a Python call per record caps the
rate (ebpf-notes §7). Because every record of the sensor has the same size, a span of the
ring is simply an array of records: :meth:`MmapRing.read` snapshots the producer position,
views the committed span as one numpy array, stops at the first record still being written,
copies the span out, and releases it by storing the new consumer position.

The mapping is libbpf's: page 0 is the consumer position (read-write); then, read-only, the
producer position page followed by the data area mapped twice in a row, so a span that
wraps around the end is still contiguous. On x86-64 (TSO) plain loads and stores give the
ordering the ring needs (the producer publishes a record by clearing its BUSY bit).
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np

from falconet.errors import SensorError

_BUSY = 1 << 31
_DISCARD = 1 << 30
_HDR = 8  # u32 len | flags, u32 page offset
_LEN_MASK = (1 << 30) - 1


class MmapRing:
    """Batch consumer of one ``BPF_MAP_TYPE_RINGBUF`` whose records are all ``record_size``."""

    def __init__(self, map_fd: int, size: int, dtype: np.dtype[Any], max_batch: int = 65536) -> None:
        if size <= 0 or size & (size - 1):
            raise SensorError(f"ring buffer size {size} is not a power of two")
        self.size = size
        self.record_size = dtype.itemsize
        self.slot = (self.record_size + _HDR + 7) & ~7
        self.max_batch = max_batch
        page = mmap.PAGESIZE
        try:
            self._cons_map = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._prod_map = mmap.mmap(
                map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError as exc:
            raise SensorError(f"cannot map the ring buffer: {exc}") from None
        self._cons = np.frombuffer(self._cons_map, dtype="<u8", count=1)
        self._prod = np.frombuffer(self._prod_map, dtype="<u8", count=1)
        self._data = np.frombuffer(self._prod_map, dtype=np.uint8, offset=page)
        self._dtype = dtype
        # a slot: the 8-byte ring header, then the record; the arrays read() returns view
        # the record fields through it, so one copy of the span is all the reader makes
        self.slot_dtype = np.dtype(
            {
                "names": list(dtype.names or ()),
                "formats": [dtype.fields[n][0] for n in dtype.names or ()],
                "offsets": [dtype.fields[n][1] + _HDR for n in dtype.names or ()],
                "itemsize": self.slot,
            }
        )

    def pending_bytes(self) -> int:
        """Bytes written and not yet consumed."""
        return int(self._prod[0]) - int(self._cons[0])

    def fill_ratio(self) -> float:
        return min(1.0, self.pending_bytes() / self.size)

    def read(self) -> np.ndarray:
        """The committed records, released from the ring: an array of :attr:`slot_dtype`
        (the record's fields, 8 bytes into each slot) over one bytes copy of the span."""
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        avail = prod - cons
        n = min(avail // self.slot, self.max_batch) if avail > 0 else 0
        if n == 0:
            return np.empty(0, dtype=self.slot_dtype)
        start = cons & (self.size - 1)
        raw = self._data[start : start + n * self.slot]
        lens = raw.view("<u4")[:: self.slot // 4]
        busy = (lens & _BUSY) != 0
        if busy.any():
            n = int(busy.argmax())
            if n == 0:
                return np.empty(0, dtype=self.slot_dtype)
            raw, lens = raw[: n * self.slot], lens[:n]
        sizes = lens & _LEN_MASK
        if (sizes != self.record_size).any():
            bad = int(sizes[sizes != self.record_size][0])
            raise SensorError(
                f"ring buffer record of {bad} bytes, expected {self.record_size}: "
                "the BPF object and the decoder disagree"
            )
        out = np.frombuffer(raw.tobytes(), dtype=self.slot_dtype)
        self._cons[0] = cons + n * self.slot
        return out

    def close(self) -> None:
        for attr in ("_cons", "_prod", "_data"):
            setattr(self, attr, None)
        for m in (self._cons_map, self._prod_map):
            try:
                m.close()
            except (BufferError, ValueError):
                pass

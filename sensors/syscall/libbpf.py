"""A small ctypes binding of the system libbpf (``libbpf.so.1``): open, load, attach, maps.

Only what the syscall sensor needs, over libbpf's stable 1.x API (Debian 12 ships 1.1.2):
no compiler and no Python extension at run time. libbpf >= 1.0 returns NULL/negative and
sets errno, so every failure becomes a :class:`BpfError` carrying the errno and the lines
libbpf printed while it failed (the verifier log, a missing BTF type...), captured through
``libbpf_set_print``.

The ring buffer itself is read by :mod:`falconet.sensors.syscall.ring` from the map fd.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from falconet.errors import SensorError

log = logging.getLogger("falconet.sensor.libbpf")

LIBBPF_NAME = "libbpf.so.1"

_vp = ctypes.c_void_p
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

# BTF kinds and the record layouts libbpf hands out (linux/btf.h)
BTF_KIND_STRUCT = 4
BTF_KIND_FUNC = 12


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size", ctypes.c_uint32)]


class _BtfMember(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


class BpfError(SensorError):
    """A libbpf call failed; ``errno`` and the libbpf log lines explain why."""

    def __init__(self, message: str, err: int = 0, log_lines: tuple[str, ...] = ()) -> None:
        self.errno = err
        self.log_lines = log_lines
        detail = f": {os.strerror(err)} (errno {err})" if err else ""
        tail = ""
        if log_lines:
            shown = log_lines[-12:]
            tail = "\n  libbpf: " + "\n  libbpf: ".join(line.rstrip() for line in shown)
        super().__init__(f"{message}{detail}{tail}")


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "libbpf_set_print": (_vp, [_PRINT_FN]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "libbpf_major_version": (ctypes.c_uint32, []),
    "libbpf_minor_version": (ctypes.c_uint32, []),
    "bpf_object__open_file": (_vp, [ctypes.c_char_p, _vp]),
    "bpf_object__load": (ctypes.c_int, [_vp]),
    "bpf_object__close": (None, [_vp]),
    "bpf_object__btf": (_vp, [_vp]),
    "bpf_object__next_program": (_vp, [_vp, _vp]),
    "bpf_program__name": (ctypes.c_char_p, [_vp]),
    "bpf_program__set_autoload": (ctypes.c_int, [_vp, ctypes.c_bool]),
    "bpf_program__attach": (_vp, [_vp]),
    "bpf_link__destroy": (ctypes.c_int, [_vp]),
    "bpf_object__find_map_by_name": (_vp, [_vp, ctypes.c_char_p]),
    "bpf_map__fd": (ctypes.c_int, [_vp]),
    "bpf_map__set_max_entries": (ctypes.c_int, [_vp, ctypes.c_uint32]),
    "bpf_map__max_entries": (ctypes.c_uint32, [_vp]),
    "bpf_map__value_size": (ctypes.c_uint32, [_vp]),
    "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, _vp, _vp, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _vp, _vp]),
    "btf__find_by_name_kind": (ctypes.c_int32, [_vp, ctypes.c_char_p, ctypes.c_uint32]),
    "btf__type_by_id": (ctypes.POINTER(_BtfType), [_vp, ctypes.c_uint32]),
    "btf__name_by_offset": (ctypes.c_char_p, [_vp, ctypes.c_uint32]),
    "btf__parse": (_vp, [ctypes.c_char_p, _vp]),
    "btf__free": (None, [_vp]),
}


class Libbpf:
    """The loaded ``libbpf.so.1`` with typed functions and a captured log."""

    _instance: Libbpf | None = None
    _lock = threading.Lock()

    def __init__(self, name: str = LIBBPF_NAME) -> None:
        try:
            self.lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise SensorError(
                f"cannot load {name} ({exc}); install libbpf 1.x (Debian/Ubuntu: apt-get install "
                "libbpf1)"
            ) from None
        for fn, (restype, argtypes) in _SIGNATURES.items():
            try:
                f = getattr(self.lib, fn)
            except AttributeError:
                raise SensorError(f"{name} has no {fn}: libbpf >= 1.0 is required") from None
            f.restype = restype
            f.argtypes = argtypes
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, _vp]
        self._vsnprintf.restype = ctypes.c_int
        self._buf = ctypes.create_string_buffer(8192)
        self._lines: list[str] = []
        self._printer = _PRINT_FN(self._print)  # keep a reference: libbpf holds the pointer
        self.lib.libbpf_set_print(self._printer)
        self.version = f"{self.lib.libbpf_major_version()}.{self.lib.libbpf_minor_version()}"

    @classmethod
    def get(cls) -> Libbpf:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _print(self, level: int, fmt: bytes, args: int | None) -> int:
        n = self._vsnprintf(self._buf, len(self._buf), fmt, args)
        text = self._buf.value.decode("utf-8", "replace").rstrip("\n")
        if len(self._lines) > 2000:
            del self._lines[:1000]
        self._lines.append(text)
        log.log(_LEVELS.get(level, logging.DEBUG), "libbpf %s", text)
        return n

    def take_log(self) -> tuple[str, ...]:
        """The libbpf lines printed since the last call (and forget them)."""
        lines, self._lines = tuple(self._lines), []
        return lines

    def fail(self, message: str, err: int | None = None) -> BpfError:
        code = ctypes.get_errno() if err is None else err
        return BpfError(message, abs(code), self.take_log())

    def kernel_has_func(self, name: str, btf_path: str) -> bool:
        """Whether the kernel BTF at ``btf_path`` declares the function ``name`` (a kfunc
        the program may call). False when the BTF cannot be read."""
        btf = self.lib.btf__parse(os.fsencode(btf_path), None)
        if not btf:
            self.take_log()
            return False
        try:
            return self.lib.btf__find_by_name_kind(btf, name.encode(), BTF_KIND_FUNC) > 0
        finally:
            self.lib.btf__free(btf)

    def num_possible_cpus(self) -> int:
        n = self.lib.libbpf_num_possible_cpus()
        if n <= 0:
            raise self.fail("libbpf cannot count the possible CPUs", -n)
        return n


@dataclass(frozen=True, slots=True)
class BpfMap:
    """A map of a loaded object: its fd and sizes, with element get/set on raw bytes."""

    lib: Libbpf
    name: str
    fd: int
    value_size: int
    max_entries: int

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        k = ctypes.create_string_buffer(key, len(key))
        v = ctypes.create_string_buffer(value, len(value))
        rc = self.lib.lib.bpf_map_update_elem(self.fd, k, v, flags)
        if rc < 0:
            raise self.lib.fail(f"cannot update map {self.name}", rc)

    def lookup(self, key: bytes, size: int) -> bytes:
        """The raw value (``size`` bytes: value_size, or value_size x CPUs for per-CPU maps)."""
        k = ctypes.create_string_buffer(key, len(key))
        v = ctypes.create_string_buffer(size)
        rc = self.lib.lib.bpf_map_lookup_elem(self.fd, k, v)
        if rc < 0:
            raise self.lib.fail(f"cannot read map {self.name}", rc)
        return v.raw


class BpfObject:
    """One BPF object file: open, size its maps, load (verify), attach, close."""

    def __init__(self, path: str, lib: Libbpf | None = None) -> None:
        self.lib = lib or Libbpf.get()
        self.path = path
        self._links: list[int] = []
        self._obj: int | None = None
        lib_ = self.lib.lib
        self.lib.take_log()
        obj = lib_.bpf_object__open_file(os.fsencode(path), None)
        if not obj:
            raise self.lib.fail(f"cannot open BPF object {path}")
        self._obj = obj
        self.loaded = False

    # -- before load --------------------------------------------------------------------------
    def programs(self) -> Iterator[tuple[str, int]]:
        prog = None
        while True:
            prog = self.lib.lib.bpf_object__next_program(self._obj, prog)
            if not prog:
                return
            yield self.lib.lib.bpf_program__name(prog).decode(), prog

    def _map_ptr(self, name: str) -> int:
        m = self.lib.lib.bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise BpfError(f"BPF object {self.path} has no map {name!r}", errno.ENOENT)
        return m

    def set_max_entries(self, name: str, entries: int) -> None:
        rc = self.lib.lib.bpf_map__set_max_entries(self._map_ptr(name), entries)
        if rc < 0:
            raise self.lib.fail(f"cannot size map {name} to {entries}", rc)

    def struct_layout(self, name: str) -> tuple[int, dict[str, int]]:
        """(size, {member: byte offset}) of a struct in the object's BTF."""
        btf = self.lib.lib.bpf_object__btf(self._obj)
        if not btf:
            raise BpfError(f"BPF object {self.path} has no BTF")
        tid = self.lib.lib.btf__find_by_name_kind(btf, name.encode(), BTF_KIND_STRUCT)
        if tid < 0:
            raise BpfError(f"BPF object {self.path} has no struct {name}", -tid)
        t = self.lib.lib.btf__type_by_id(btf, tid)
        vlen = t.contents.info & 0xFFFF
        members = ctypes.cast(
            ctypes.addressof(t.contents) + ctypes.sizeof(_BtfType), ctypes.POINTER(_BtfMember)
        )
        out: dict[str, int] = {}
        for i in range(vlen):
            m = members[i]
            mname = self.lib.lib.btf__name_by_offset(btf, m.name_off).decode()
            out[mname] = (m.offset & 0xFFFFFF) // 8  # bitfield-less structs: bit offset
        return t.contents.size, out

    # -- load and attach ------------------------------------------------------------------------
    def load(self) -> None:
        self.lib.take_log()
        rc = self.lib.lib.bpf_object__load(self._obj)
        if rc < 0:
            raise self.lib.fail(f"the kernel refused to load {os.path.basename(self.path)}", rc)
        self.loaded = True

    def map(self, name: str) -> BpfMap:
        m = self._map_ptr(name)
        fd = self.lib.lib.bpf_map__fd(m)
        if fd < 0:
            raise BpfError(f"map {name} has no fd (object not loaded?)", -fd)
        return BpfMap(
            self.lib,
            name,
            fd,
            self.lib.lib.bpf_map__value_size(m),
            self.lib.lib.bpf_map__max_entries(m),
        )

    def attach(self, program: str) -> None:
        for name, prog in self.programs():
            if name == program:
                self.lib.take_log()
                link = self.lib.lib.bpf_program__attach(prog)
                if not link:
                    raise self.lib.fail(f"cannot attach BPF program {name}")
                self._links.append(link)
                return
        raise BpfError(f"BPF object {self.path} has no program {program!r}", errno.ENOENT)

    def detach(self) -> None:
        """Destroy every link (the hooks go away at once)."""
        while self._links:
            self.lib.lib.bpf_link__destroy(self._links.pop())

    def close(self) -> None:
        self.detach()
        if self._obj:
            self.lib.lib.bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

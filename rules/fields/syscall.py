"""Fields of the ``syscall`` source.

The registry has every field of libsinsp's syscall field classes (``evt``, ``process``
(``proc.*``/``thread.*``), ``user``, ``group``, ``fd``, ``fs.path``, ``fdlist``, ``util``)
plus the container plugin's ``container.*``/``k8s.*`` fields, with libsinsp's names, types,
argument rules and special comparisons. The generic ``evt.*`` fields (number, times, source,
hostname) come from :mod:`rules.fields.common`.

Extractors read the syscall event JSON documented in ``docs/events.md`` (section
``## syscall``): ``ev.payload`` is the ``event`` object (``args``, ``res``, ``proc``,
``ancestors``, ``user``, ``group``, ``fd``, ``container`` ...) and ``ev.enrichment`` holds
``container`` and ``k8s`` metadata. Values follow libsinsp: a field libsinsp cannot extract
returns ``None``; libsinsp's placeholder strings (``"<NA>"`` for an unknown user name, the
``"<NA>"`` l4proto of a non-socket, ``""`` for a missing session leader) are real values.

Behaviour is taken from libsinsp (``userspace/libsinsp/sinsp_filtercheck_*.cpp``) and the
container plugin (``plugins/container/src/caps/extract/extract.cpp``); the code is our own.
"""

from __future__ import annotations

import base64
import itertools
import posixpath
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from falconet import timefmt
from falconet.fields import (
    ArgMode,
    BoundField,
    CompareMode,
    FieldArgError,
    FieldDef,
    FieldType,
    field,
    simple,
)

#: Version of the falcosecurity container plugin whose fields this module provides
#: (``plugins/container/CMakeLists.txt`` at the studied checkout).
CONTAINER_PLUGIN_VERSION = "0.7.1"

F = FieldType
Ev = Any
Extractor = Callable[[Any], Any]

#: Operators libsinsp accepts for fields with their own comparison code; any other
#: operator is an error ("IP filter only supports '=' and '!=' operators" ...).
ALLOWED_OPS: dict[str, frozenset[str]] = {
    "fd.ip": frozenset({"=", "==", "!=", "in", "exists"}),
    "fd.net": frozenset({"=", "==", "!=", "in", "exists"}),
    "fd.port": frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "in", "exists"}),
    "fd.proto": frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "in", "exists"}),
    "evt.around": frozenset({"=", "=="}),
}


# --------------------------------------------------------------------------------------
# small accessors (the hot path: plain dict lookups, no copies)
# --------------------------------------------------------------------------------------


def _sub(section: str, key: str) -> Extractor:
    """``payload[section][key]``, None when either is missing."""

    def ex(ev: Ev) -> Any:
        d = ev.payload.get(section)
        return None if d is None else d.get(key)

    return ex


def _sub_nz(section: str, key: str) -> Extractor:
    """Like :func:`_sub` but 0 (libsinsp's "unset") is missing too."""

    def ex(ev: Ev) -> Any:
        d = ev.payload.get(section)
        if d is None:
            return None
        v = d.get(key)
        return v if v else None

    return ex


def _sub_bool(section: str, key: str) -> Extractor:
    """A thread flag: False unless set, None without thread info."""

    def ex(ev: Ev) -> bool | None:
        d = ev.payload.get(section)
        if d is None:
            return None
        return d.get(key) is True

    return ex


def _const(value: Any) -> Extractor:
    return lambda ev: value


def _none(ev: Ev) -> None:
    return None


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------
# evt.*: return value, arguments, flags
# --------------------------------------------------------------------------------------


def _errno_name(res: int) -> str:
    """libsinsp's errno_to_str for a negative return value ("" when it has no name)."""
    return _ERRNO.get(-res, "")


def _res(ev: Ev) -> int | None:
    return ev.payload.get("res")


def _res_str(ev: Ev) -> str | None:
    res = ev.payload.get("res")
    if res is None:
        return None
    if res >= 0:
        return "SUCCESS"
    return _errno_name(res) or str(res)


def _failed(ev: Ev) -> bool | None:
    res = ev.payload.get("res")
    return None if res is None else res < 0


def _count_error(ev: Ev) -> int | None:
    res = ev.payload.get("res")
    return None if res is None else int(res < 0)


_TYPECHAR = {
    "file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u", "pipe": "p",
    "event": "e", "signalfd": "s", "eventpoll": "l", "inotify": "i", "timerfd": "t",
    "netlink": "n", "bpf": "b", "userfaultfd": "u", "io_uring": "r", "memfd": "m",
    "pidfd": "P", "unknown": "o", "unsupported": "X",
}  # fmt: skip
# libsinsp guesses the type char from the event when the fd table has no entry
_EVENT_TYPECHAR = {
    "openat": "f", "openat2": "f", "creat": "f", "socket": "4", "accept": "4",
    "accept4": "4", "pipe": "p", "pipe2": "p", "eventfd": "e", "eventfd2": "e",
    "signalfd": "s", "signalfd4": "s", "timerfd_create": "t", "inotify_init": "i",
    "inotify_init1": "i",
}  # fmt: skip
_L4CHAR = {"tcp": "t", "udp": "u", "icmp": "i", "raw": "r"}
_IP_TYPES = frozenset({"ipv4", "ipv6"})


def _fd_entry_text(fd: dict[str, Any]) -> str:
    """``<f>/etc/passwd``, ``<4t>10.0.0.1:4242->10.0.0.2:80``: an fd as libsinsp shows it."""
    t = fd.get("type")
    tc = _TYPECHAR.get(t, "?")
    l4 = _L4CHAR.get(_l4proto_of(fd), "") if t in _IP_TYPES else ""
    return f"<{tc}{l4}>{fd.get('name', '')}"


def _render_fd(ev: Ev, v: int) -> str:
    if v >= 0:
        fd = ev.payload.get("fd")
        if fd is not None and fd.get("num") == v and "type" in fd:
            return _fd_entry_text(fd)
        proc = ev.payload.get("proc")
        table = proc.get("fds") if proc else None
        if table:
            entry = table.get(str(v))
            if entry is not None and "type" in entry:
                return _fd_entry_text(entry)
        return str(v)
    if v == -100:
        return "AT_FDCWD"
    return _errno_name(v) or str(v)


def _argstr(ev: Ev, name: str, v: Any) -> str | None:
    """The text ``evt.arg.<name>`` gives for a stored argument value."""
    if v.__class__ is str:
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        if name in _FD_PARAMS or (name == "res" and ev.type in _FD_RES_EVENTS):
            return _render_fd(ev, v)
        if v < 0 and name in _ERRNO_PARAMS:
            return _errno_name(v) or str(v)
        return str(v)
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return str(v)


def _arg_value(ev: Ev, name: str) -> Any:
    args = ev.payload.get("args")
    if args is not None:
        v = args.get(name)
        if v is not None:
            return v
    if name == "res":
        return ev.payload.get("res")
    return None


def _make_arg(arg: str | None) -> Extractor:
    assert arg is not None
    if arg.isdigit():
        idx = int(arg)

        def by_index(ev: Ev) -> str | None:
            args = ev.payload.get("args")
            if not args or idx >= len(args):
                return None
            for i, (k, v) in enumerate(args.items()):
                if i == idx:
                    return _argstr(ev, k, v)
            return None

        return by_index
    if arg not in _PARAM_TYPE:
        raise FieldArgError(f"unknown event argument {arg}")
    name = arg

    def by_name(ev: Ev) -> str | None:
        v = _arg_value(ev, name)
        return None if v is None else _argstr(ev, name, v)

    return by_name


_RAW_TYPES = {
    "s": F.CHARBUF, "p": F.FSPATH, "b": F.BYTEBUF, "i8": F.INT8, "i16": F.INT16,
    "i32": F.INT32, "i64": F.INT64, "u8": F.UINT8, "u16": F.UINT16, "u32": F.UINT32,
    "u64": F.UINT64, "errno": F.ERRNO, "fd": F.FD, "pid": F.PID, "port": F.PORT,
    "mode": F.MODE, "flags": F.FLAGS32, "reltime": F.RELTIME, "abstime": F.ABSTIME,
    "ip": F.IPADDR,
}  # fmt: skip


def _make_rawarg(arg: str | None) -> BoundField:
    assert arg is not None
    code = _PARAM_TYPE.get(arg)
    if code is None:
        raise FieldArgError(f"unknown event argument {arg}")
    ftype = _RAW_TYPES[code]
    name = arg

    def ex(ev: Ev) -> Any:
        raw = ev.payload.get("rawargs")
        v = raw.get(name) if raw else None
        if v is None:
            v = _arg_value(ev, name)
            if v is None:
                return None
        if ftype.is_numeric:
            if isinstance(v, bool) or not isinstance(v, int):
                try:
                    return int(v, 0) if isinstance(v, str) else None
                except ValueError:
                    return None
            return v
        if ftype is F.BYTEBUF:
            return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else None
        return v if isinstance(v, str) else str(v)

    return BoundField(f"evt.rawarg.{name}", ex, ftype, no_rhs=True)


def _args_text(ev: Ev) -> str | None:
    """``evt.args``: ``name=raw(resolved)`` for every parameter, as libsinsp prints them."""
    args = ev.payload.get("args")
    if args is None:
        return None
    raw = ev.payload.get("rawargs") or {}
    parts = []
    for k, v in args.items():
        s = _argstr(ev, k, v)
        r = raw.get(k)
        if r is None and isinstance(v, int) and not isinstance(v, bool):
            r = v
        if r is not None and str(r) != s:
            parts.append(f"{k}={r}({s})")
        else:
            parts.append(f"{k}={s}")
    return " ".join(parts)


def _ppm_flags(ev: Ev) -> int:
    """The open flags as libsinsp's PPM bits (from ``rawargs.flags`` or the flag names)."""
    payload = ev.payload
    raw = payload.get("rawargs")
    if raw:
        v = raw.get("flags")
        if isinstance(v, int):
            return v
    args = payload.get("args")
    text = args.get("flags") if args else None
    if text.__class__ is not str:
        return 0
    bits = _FLAG_TEXT_BITS.get(text)
    if bits is None:
        bits = 0
        for name in text.split("|"):
            bits |= _OPEN_FLAG_BITS.get(name, 0)
        if len(_FLAG_TEXT_BITS) < 4096:  # flag combinations repeat; bound the memo anyway
            _FLAG_TEXT_BITS[text] = bits
    return bits


_FLAG_TEXT_BITS: dict[str, int] = {}

_OPEN_FLAG_BITS = {
    "O_RDONLY": 1, "O_WRONLY": 2, "O_RDWR": 3, "O_CREAT": 1 << 2, "O_TMPFILE": 1 << 13,
    "O_F_CREATED": 1 << 14,
}  # fmt: skip
_OPEN_EVENTS = frozenset({"open", "openat", "openat2", "open_by_handle_at"})


def _is_open(bit: int) -> Extractor:
    def ex(ev: Ev) -> bool:
        if ev.type not in _OPEN_EVENTS:
            return False
        return bool(_ppm_flags(ev) & bit)

    return ex


def _mode_bits(ev: Ev) -> int | None:
    raw = ev.payload.get("rawargs")
    v = raw.get("mode") if raw else None
    if v is None:
        args = ev.payload.get("args")
        v = args.get("mode") if args else None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return int(v, 8)
        except ValueError:
            return None
    return None


def _is_open_exec(ev: Ev) -> bool:
    t = ev.type
    if t in _OPEN_EVENTS:
        if t == "open_by_handle_at" or not _ppm_flags(ev) & ((1 << 13) | (1 << 2)):
            return False
    elif t != "creat":
        return False
    mode = _mode_bits(ev)
    return mode is not None and bool(mode & 0o111)


def _is_open_create(ev: Ev) -> bool:
    if ev.type not in _OPEN_EVENTS:
        return False
    flags = _ppm_flags(ev)
    if flags & (1 << 14):
        return True
    res = ev.payload.get("res")
    return bool(flags & (1 << 13)) and res is not None and res >= 0


def _buffer(ev: Ev) -> bytes | None:
    c = ev.cache
    if "sc.buf" in c:
        return c["sc.buf"]
    b64 = ev.payload.get("buffer")
    if b64 is not None:
        try:
            val: bytes | None = base64.b64decode(b64)
        except ValueError:
            val = None
    else:
        args = ev.payload.get("args")
        data = args.get("data") if args else None
        val = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else None
    c["sc.buf"] = val
    return val


def _is_io(ev: Ev) -> bool:
    return ev.type in _READ_EVENTS or ev.type in _WRITE_EVENTS


def _io_dir(ev: Ev) -> str | None:
    if ev.type in _WRITE_EVENTS:
        return "write"
    if ev.type in _READ_EVENTS:
        return "read"
    return None


def _fdinfo(ev: Ev) -> dict[str, Any] | None:
    """The fd-table entry of the event's fd (None when libsinsp would have none)."""
    fd = ev.payload.get("fd")
    if fd is None or "type" not in fd or ev.type not in _FD_EVENTS:
        return None
    return fd


_FD_SUBCATEGORY = {
    "file": "file", "directory": "file", "ipv4": "net", "ipv6": "net", "pipe": "ipc",
    "unix": "ipc", "event": "ipc", "signalfd": "ipc", "inotify": "ipc", "userfaultfd": "ipc",
}  # fmt: skip


def _category(ev: Ev) -> str:
    cat = _EVENT_CATEGORY.get(ev.type, "other")
    if cat == "io":
        fd = _fdinfo(ev)
        if fd is None:
            return "unknown"
        return _FD_SUBCATEGORY.get(fd["type"], "unknown")
    return cat


def _buflen(kind: str | None = None, direction: str | None = None) -> Extractor:
    """``evt.buflen*``: the return value of an I/O event on a known fd."""

    def ex(ev: Ev) -> int | None:
        t = ev.type
        if direction == "in":
            ok = _EVENT_CATEGORY.get(t) == "io" and t in _READ_EVENTS
        elif direction == "out":
            ok = _EVENT_CATEGORY.get(t) == "io" and t in _WRITE_EVENTS
        else:
            ok = _EVENT_CATEGORY.get(t) == "io"
        fd = _fdinfo(ev)
        if not ok or fd is None:
            return None
        if kind == "file" and fd["type"] != "file":
            return None
        if kind == "net" and fd["type"] not in _IP_TYPES:
            return None
        res = ev.payload.get("res")
        return res if res is not None and res >= 0 else None

    return ex


def _count_error_kind(kind: str) -> Extractor:
    def ex(ev: Ev) -> int | None:
        res = ev.payload.get("res")
        if res is None:
            return None
        fd = _fdinfo(ev)
        t = ev.type
        if fd is not None:
            ftype = fd["type"]
            is_file = ftype in ("file", "directory")
            is_net = ftype in _IP_TYPES or ftype == "unix"
        else:
            is_file = t in ("open", "creat", "openat", "openat2", "open_by_handle_at")
            is_net = t in ("accept", "accept4", "connect")
        is_mem = _EVENT_CATEGORY.get(t) == "memory"
        if kind == "file":
            ok = is_file
        elif kind == "net":
            ok = is_net
        elif kind == "memory":
            ok = is_mem
        else:
            ok = not (is_file or is_net or (fd is None and is_mem))
        return int(res < 0) if ok else None

    return ex


def _is_syslog(ev: Ev) -> bool:
    if ev.type not in _WRITE_EVENTS:
        return False
    fd = _fdinfo(ev)
    return fd is not None and "/dev/log" in fd.get("name", "")


def _syscall_type(ev: Ev) -> str | None:
    t = ev.type
    return None if t in _NON_SYSCALL else t


def _make_type_is(arg: str | None) -> Extractor:
    assert arg is not None
    if not arg.isdigit() and arg not in _EVENT_TABLE_NAMES:
        raise FieldArgError(f"unknown event type {arg}")
    name = arg
    return lambda ev: int(ev.type == name)


_ABSPATH_ARGS = {
    # event: (path arg for no suffix / .src, path arg for .dst)
    "renameat": ("oldpath", "newpath"), "renameat2": ("oldpath", "newpath"),
    "linkat": ("oldpath", "newpath"), "symlinkat": ("linkpath", "linkpath"),
    "openat": ("name", "name"), "openat2": ("name", "name"), "unlinkat": ("name", "name"),
    "mkdirat": ("path", "path"), "fchmodat": ("filename", "filename"),
    "fchownat": ("pathname", "pathname"), "open_by_handle_at": ("path", "path"),
}  # fmt: skip


def _make_abspath(arg: str | None) -> BoundField:
    if arg not in (None, "src", "dst"):
        raise FieldArgError("evt.abspath accepts only .src or .dst")
    pick = 1 if arg == "dst" else 0
    shown = "evt.abspath" if arg is None else f"evt.abspath.{arg}"

    def ex(ev: Ev) -> str | None:
        names = _ABSPATH_ARGS.get(ev.type)
        if names is None or ev.payload.get("proc") is None:
            return None
        if ev.type == "open_by_handle_at":
            res = ev.payload.get("res")
            if res is None or res <= 0:
                return None
        args = ev.payload.get("args")
        path = args.get(names[pick]) if args else None
        if not isinstance(path, str) or not path:
            return None
        if path[0] == "/":
            return _normpath(path)
        cwd = ev.payload["proc"].get("cwd") or ""
        return _normpath(posixpath.join(cwd, path))

    return BoundField(shown, ex, F.CHARBUF)


def _normpath(path: str) -> str:
    """Resolve ``.``/``..``/``//`` like libsinsp's concatenate_paths (trailing ``/`` kept)."""
    if "/." not in path and "//" not in path:
        return path
    out = posixpath.normpath(path)
    if out.startswith("//"):
        out = out[1:]
    if path.endswith("/") and out != "/":
        out += "/"
    return out


def _outputtime(ev: Ev) -> str:
    return timefmt.clock_ns(ev.ts)


def _make_counter(arg: str | None) -> Extractor:
    counter = itertools.count(1)
    return lambda ev: next(counter)


# --------------------------------------------------------------------------------------
# proc.* / thread.*: the process, its parent chain, its session and process group
# --------------------------------------------------------------------------------------

_UINT32_MAX = 0xFFFFFFFF


def _chain(ev: Ev) -> tuple[dict[str, Any], ...]:
    """The ancestors, parent first, cut at the first repeated pid (libsinsp's loop guard)
    or at an invalid entry (tid -1). Memoized per event."""
    c = ev.cache.get("sc.anc")
    if c is None:
        anc = ev.payload.get("ancestors")
        if not anc:
            c = ()
        else:
            proc = ev.payload.get("proc")
            seen = {proc.get("pid")} if proc else set()
            out = []
            for a in anc:
                pid = a.get("pid")
                if a.get("tid", pid) == -1 or (pid is not None and pid in seen):
                    break
                seen.add(pid)
                out.append(a)
            c = tuple(out)
        ev.cache["sc.anc"] = c
    return c


def _ancestor(ev: Ev, n: int) -> dict[str, Any] | None:
    """libsinsp's get_ancestor_process: 0 = the process, 1 = its parent, ..."""
    proc = ev.payload.get("proc")
    if proc is None:
        return None
    if n == 0:
        return proc
    chain = _chain(ev)
    return chain[n - 1] if n <= len(chain) else None


def _args_joined(p: dict[str, Any]) -> str:
    args = p.get("args")
    return " ".join(args) if args else ""


def _cmdline_of(p: dict[str, Any]) -> str:
    """``proc.cmdline``: comm, then each argument after a space (no trailing space)."""
    name = p.get("name") or ""
    args = p.get("args")
    return name + " " + " ".join(args) if args else name


def _env_joined(p: dict[str, Any]) -> str:
    env = p.get("env")
    return " ".join(env) if env else ""


def _env_get(p: dict[str, Any], key: str) -> str:
    """proc.env[KEY]: the value of KEY, outer spaces stripped, "" when unset."""
    prefix = key + "="
    for item in p.get("env") or ():
        if len(item) > len(prefix) and item.startswith(prefix):
            return item[len(prefix) :].strip(" ")
    return ""


_ANCESTOR_VALUES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "proc.aname": lambda p: p.get("name"),
    "proc.aexe": lambda p: p.get("exe"),
    "proc.aexepath": lambda p: p.get("exepath"),
    "proc.acmdline": _cmdline_of,
    "proc.apid": lambda p: p.get("pid"),
    "proc.aenv": _env_joined,
}


def _make_ancestor(name: str) -> Callable[[str | None], BoundField]:
    """proc.aname & co: with [N] the Nth ancestor's value; without an index every ancestor
    (parent first) is a candidate (CompareMode.ANY) and the output is libsinsp's text."""
    get = _ANCESTOR_VALUES[name]
    ftype = F.INT64 if name == "proc.apid" else F.CHARBUF

    def make(arg: str | None) -> BoundField:
        if arg is not None:
            n = int(arg)

            def one(ev: Ev) -> Any:
                p = _ancestor(ev, n)
                if p is None:
                    return None
                v = get(p)
                if name == "proc.apid" and v is not None and not -1 <= v <= _UINT32_MAX:
                    return None
                return v

            return BoundField(f"{name}[{arg}]", one, ftype, no_rhs=True)

        key = "sc." + name

        def candidates(ev: Ev) -> tuple[Any, ...] | None:
            cache = ev.cache
            if key in cache:
                return cache[key]
            if ev.payload.get("proc") is None:
                vals = None
            else:
                vals = tuple([v for v in map(get, _chain(ev)) if v is not None]) or None
            cache[key] = vals
            return vals

        def joined(ev: Ev) -> str | None:
            if ev.payload.get("proc") is None:
                return None
            text = " ".join(str(v) for v in map(get, _chain(ev)) if v is not None)
            return text or None

        render: Extractor = joined
        if name == "proc.apid":
            render = _pid  # libsinsp prints the process's own pid
        return BoundField(
            name, candidates, ftype, compare=CompareMode.ANY, render=render, no_rhs=True
        )

    return make


def _make_aenv(arg: str | None) -> BoundField:
    """proc.aenv: like proc.env for the process ([0] or no argument); [N] is the Nth
    ancestor's environment; [NAME] the first ancestor (parent first, 20 at most) that sets
    NAME. libsinsp compares every ancestor's full environment (ANY) unless a NAME is given,
    and prints the value described above."""

    def own(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        return None if p is None else _env_joined(p)

    if arg is None or arg == "0" or arg.isdigit():
        if arg is None or arg == "0":
            render: Extractor = own
        else:
            n = int(arg)

            def render(ev: Ev) -> str | None:
                p = _ancestor(ev, n)
                return None if p is None else _env_joined(p)

        def candidates(ev: Ev) -> tuple[str, ...] | None:
            if ev.payload.get("proc") is None:
                return None
            vals = tuple(_env_joined(a) for a in _chain(ev))
            return vals or None

        shown = "proc.aenv" if arg is None else f"proc.aenv[{arg}]"
        return BoundField(
            shown, candidates, F.CHARBUF, compare=CompareMode.ANY, render=render, no_rhs=True
        )
    key = arg

    def by_key(ev: Ev) -> str | None:
        if ev.payload.get("proc") is None:
            return None
        for a in _chain(ev)[:20]:
            v = _env_get(a, key)
            if v:
                return v
        return ""

    return BoundField(f"proc.aenv[{arg}]", by_key, F.CHARBUF, no_rhs=True)


def _pid(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    v = p.get("pid")
    return v if v is not None and -1 <= v <= _UINT32_MAX else None


def _tid(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    v = p.get("tid", p.get("pid"))
    return v if v is not None and -1 <= v <= _UINT32_MAX else None


def _virtual_id(key: str) -> Extractor:
    """proc.vpid / thread.vtid: missing when -1."""

    def ex(ev: Ev) -> int | None:
        p = ev.payload.get("proc")
        if p is None:
            return None
        v = p.get(key)
        return None if v is None or v == -1 else v

    return ex


def _parent_value(get: Callable[[dict[str, Any]], Any]) -> Extractor:
    def ex(ev: Ev) -> Any:
        p = _ancestor(ev, 1)
        return None if p is None else get(p)

    return ex


def _ppid(ev: Ev) -> int | None:
    p = _ancestor(ev, 1)
    if p is None:
        proc = ev.payload.get("proc")
        return None if proc is None else proc.get("ppid")
    v = p.get("pid")
    return v if v is not None and -1 <= v <= _UINT32_MAX else None


def _make_args(arg: str | None) -> Extractor:
    if arg is None:

        def all_args(ev: Ev) -> str | None:
            p = ev.payload.get("proc")
            return None if p is None else _args_joined(p)

        return all_args
    idx = int(arg)

    def one(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        if p is None:
            return None
        args = p.get("args") or ()
        return args[idx] if idx < len(args) else ""

    return one


def _make_aargs(arg: str | None) -> Extractor:
    if arg is None:

        def all_ancestors(ev: Ev) -> str | None:
            if ev.payload.get("proc") is None:
                return None
            parts = [_args_joined(a) for a in _chain(ev)]
            text = " ".join(parts)
            return text or None

        return all_ancestors
    n = int(arg)

    def one(ev: Ev) -> str | None:
        p = _ancestor(ev, n)
        return None if p is None else _args_joined(p)

    return one


def _make_env(arg: str | None) -> Extractor:
    if arg is None or arg.isdigit():  # libsinsp ignores a numeric argument here

        def all_env(ev: Ev) -> str | None:
            p = ev.payload.get("proc")
            return None if p is None else _env_joined(p)

        return all_env
    key = arg

    def one(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        return None if p is None else _env_get(p, key)

    return one


def _cmdline(ev: Ev) -> str | None:
    p = ev.payload.get("proc")
    return None if p is None else _cmdline_of(p)


def _exeline(ev: Ev) -> str | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    return (p.get("exe") or "") + " " + _args_joined(p)


def _cmdnargs(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    return None if p is None else len(p.get("args") or ())


def _cmdlenargs(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    return None if p is None else sum(len(a) for a in p.get("args") or ())


def _in_pidns(p: dict[str, Any]) -> bool:
    tid = p.get("tid", p.get("pid"))
    vtid = p.get("vtid", p.get("vpid", -1))
    return vtid is not None and vtid >= 0 and tid != vtid


def _leader(key: str, virtual: bool) -> Callable[[Ev], dict[str, Any] | None | bool]:
    """libsinsp's get_oldest_matching_ancestor for the id in ``key`` (sid, vpgid, pgid).

    Returns the leader entry, False when there is none (libsinsp then prints ""), or None
    when the process or the id is unknown."""

    def find(ev: Ev) -> dict[str, Any] | None | bool:
        p = ev.payload.get("proc")
        if p is None:
            return None
        ident = p.get(key)
        if ident is None:
            return None
        if ident == -1:
            return False
        chain = _chain(ev)
        if not virtual or not _in_pidns(p):
            if p.get("pid") == ident:
                return p
            for a in chain:
                if a.get("pid") == ident:
                    return a
        leader: dict[str, Any] | bool = False
        for a in chain:
            if a.get(key) != ident:
                break
            leader = a
        return leader

    return find


def _leader_field(
    key: str, virtual: bool, get: Callable[[dict[str, Any]], Any], given: str | None = None
) -> Extractor:
    """A value of the session / process-group leader; ``given`` names a proc key the sensor
    may fill with the answer directly (``sname``)."""
    find = _leader(key, virtual)

    def ex(ev: Ev) -> Any:
        if given is not None:
            p = ev.payload.get("proc")
            if p is not None and given in p:
                return p[given]
        leader = find(ev)
        if leader is None:
            return None
        if leader is False:
            return ""
        v = get(leader)  # type: ignore[arg-type]
        return "" if v is None else v

    return ex


def _is_leader(key: str, own: str) -> Extractor:
    def ex(ev: Ev) -> bool | None:
        p = ev.payload.get("proc")
        if p is None:
            return None
        a, b = p.get(key), p.get(own)
        return None if a is None or b is None else a == b

    return ex


def _loginshellid(ev: Ev) -> int | None:
    """The pid of the oldest shell (comm ending in "sh") in the process and its parents."""
    p = ev.payload.get("proc")
    if p is None:
        return None
    found = None
    for q in (p, *_chain(ev)):
        name = q.get("name") or ""
        if len(name) >= 2 and name.endswith("sh"):
            found = q.get("pid")
    return found


def _duration(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    start = p.get("start_ts")
    return ev.ts - start if start else None


def _parent_duration(ev: Ev) -> int | None:
    p = _ancestor(ev, 1)
    if p is None:
        return None
    start = p.get("start_ts")
    return ev.ts - start if start else None


def _parent_start(ev: Ev) -> int | None:
    p = _ancestor(ev, 1)
    return None if p is None else p.get("start_ts", 0)


def _pvpid(ev: Ev) -> int | None:
    p = _ancestor(ev, 1)
    return None if p is None else p.get("vpid")


_U64 = (1 << 64) - 1


def _ctime_since_start(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    if "exe_ino_ctime_duration_proc_start" in p:
        return p["exe_ino_ctime_duration_proc_start"] or None
    ctime, start = p.get("exe_ino_ctime"), p.get("start_ts")
    if not ctime or not start:
        return None
    return ((start - ctime) & _U64) or None


def _ctime_since_pidns(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    if "exe_ino_ctime_duration_pidns_start" in p:
        return p["exe_ino_ctime_duration_pidns_start"] or None
    ctime, ns = p.get("exe_ino_ctime"), p.get("pidns_init_start_ts")
    if not ctime or not ns or ctime <= ns:
        return None
    return ctime - ns


_CAPS = (
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL "
    "CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE "
    "CAP_NET_BROADCAST CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE "
    "CAP_SYS_RAWIO CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT "
    "CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE "
    "CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG "
    "CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE"
).split()


def caps_text(mask: int) -> str:
    """A capability bitmask as libsinsp prints it: names in bit order, space separated."""
    return " ".join(name for i, name in enumerate(_CAPS) if mask >> i & 1)


def _caps(key: str) -> Extractor:
    def ex(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        if p is None:
            return None
        v = p.get(key)
        if v is None:
            return ""
        if isinstance(v, int):
            return caps_text(v)
        if isinstance(v, list):
            return " ".join(v)
        return v

    return ex


def _fdusage(ev: Ev) -> float | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    limit, count = p.get("fdlimit") or 0, p.get("fdopencount") or 0
    if limit <= 0:
        return 0.0
    return 100.0 if count > limit else count * 100 / limit


def _thread_mem(key: str, scale: int = 1) -> Extractor:
    def ex(ev: Ev) -> int | None:
        p = ev.payload.get("proc")
        if p is None:
            return None
        if p.get("tid", p.get("pid")) != p.get("pid"):
            return 0
        return (p.get(key) or 0) * scale

    return ex


def _ismain(ev: Ev) -> bool | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    return p.get("tid", p.get("pid")) == p.get("pid")


def _nametid(ev: Ev) -> str | None:
    p = ev.payload.get("proc")
    if p is None:
        return None
    return f"{p.get('name') or ''}{p.get('tid', p.get('pid'))}"


def _cgroups(ev: Ev) -> str | None:
    p = ev.payload.get("proc")
    cg = p.get("cgroups") if p else None
    if not cg:
        return None
    return " ".join(f"{k}={v}" for k, v in cg.items())


def _make_cgroup(arg: str | None) -> Extractor:
    assert arg is not None
    key = arg

    def ex(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        cg = p.get("cgroups") if p else None
        return None if not cg else cg.get(key)

    return ex


def _stdio(num: int, what: str) -> Extractor:
    key = str(num)

    def ex(ev: Ev) -> str | None:
        p = ev.payload.get("proc")
        table = p.get("fds") if p else None
        entry = table.get(key) if table else None
        if entry is None:
            return None
        if what == "type":
            return entry.get("type") or "<NA>"
        return entry.get("name", "")

    return ex


def _zero_for_threads(ev: Ev) -> int | None:
    return None if ev.payload.get("proc") is None else 0


# --------------------------------------------------------------------------------------
# fd.*: the file descriptor the event uses or creates
# --------------------------------------------------------------------------------------


def _fdobj(ev: Ev) -> dict[str, Any] | None:
    """The ``fd`` object of an fd event, with or without an fd-table entry."""
    if ev.type not in _FD_EVENTS:
        return None
    return ev.payload.get("fd")


def _l4proto_of(fd: dict[str, Any]) -> str:
    t = fd.get("type")
    if t in _IP_TYPES:
        proto = fd.get("l4proto")
        if proto == "raw":
            return "raw"
        if not fd.get("bound") and not fd.get("role"):
            return "<NA>"
        return proto or "<NA>"
    return "<NA>"


_NAME_FROM_ARG1 = frozenset({"open", "creat", "accept", "accept4", "connect"})


def _name_from_event(ev: Ev, raw: bool = False) -> str:
    """The fd name libsinsp derives from the arguments when the fd table has no entry."""
    args = ev.payload.get("args")
    if not args:
        return ""
    t = ev.type
    if t in _NAME_FROM_ARG1:
        for i, v in enumerate(args.values()):
            if i == 1:
                return _argstr(ev, "", v) or ""
        return ""
    if t in ("openat", "openat2"):
        if raw:
            rawargs = ev.payload.get("rawargs")
            v = rawargs.get("name") if rawargs else None
            if isinstance(v, str):
                return v
        v = args.get("name")
        return v if isinstance(v, str) else ""
    if t == "open_by_handle_at":
        v = args.get("path")
        return v if isinstance(v, str) else ""
    return ""


def _fd_num(ev: Ev) -> int | None:
    fd = _fdobj(ev)
    return None if fd is None else fd.get("num")


def _fd_type(ev: Ev) -> str | None:
    fd = _fdinfo(ev)
    return None if fd is None else fd["type"]


def _fd_typechar(ev: Ev) -> str | None:
    fd = _fdobj(ev)
    if fd is None:
        return None
    t = fd.get("type")
    if t is None:
        return _EVENT_TYPECHAR.get(ev.type, "o")
    return _TYPECHAR.get(t, "?")


def _fd_name(ev: Ev) -> str | None:
    fd = _fdobj(ev)
    if fd is None:
        return None
    name = fd.get("name")
    if name is not None:
        return name
    return "" if "type" in fd else _name_from_event(ev)


def _fd_nameraw(ev: Ev) -> str | None:
    fd = _fdobj(ev)
    if fd is None:
        return None
    raw = fd.get("nameraw")
    if raw is None:
        if "type" in fd:
            raw = fd.get("name", "") if fd["type"] in ("file", "directory") else ""
        else:
            raw = _name_from_event(ev, raw=True)
    while "//" in raw:
        raw = raw.replace("//", "/")
    return raw


def _fd_directory(ev: Ev) -> str | None:
    fd = _fdobj(ev)
    if fd is None:
        return None
    t = fd.get("type")
    if t is None:
        name = fd.get("name")
        if name is None:
            name = _name_from_event(ev)
    elif t == "directory":
        return fd.get("name", "")
    elif t == "file":
        name = fd.get("name", "")
    else:
        return None
    pos = name.rfind("/")
    if pos > 0:
        return name[:pos] if pos < len(name) - 1 else name
    return "/"


def _fd_filename(ev: Ev) -> str | None:
    fd = _fdinfo(ev)
    if fd is None or fd["type"] != "file":
        return None
    name = fd.get("name", "")
    pos = name.rfind("/")
    if pos == -1:
        return "/"
    return name[pos + 1 :] if pos < len(name) - 1 else name


def _sock(ev: Ev) -> dict[str, Any] | None:
    """A connected-type IPv4/IPv6 socket with a role (libsinsp's SOCK, not SERVSOCK)."""
    fd = _fdinfo(ev)
    if fd is None or fd["type"] not in _IP_TYPES or fd.get("bound") or not fd.get("role"):
        return None
    return fd


def _client_is_local(fd: dict[str, Any]) -> bool:
    v = fd.get("cip_local")
    return fd.get("role") == "client" if v is None else v is True


def _side_value(fd: dict[str, Any], key: str) -> Any:
    v = fd.get(key)
    if key.endswith("_name") and not v:
        return None  # no DNS name known
    return v


def _cside(key: str) -> Extractor:
    """fd.cip/fd.cport/fd.cip.name: the client side of a socket with a role."""

    def ex(ev: Ev) -> Any:
        fd = _sock(ev)
        return None if fd is None else _side_value(fd, key)

    return ex


def _sside(key: str, bound_key: str | None) -> Extractor:
    """fd.sip/fd.sport/fd.sip.name: the server side, or the bound address of a server
    socket."""

    def ex(ev: Ev) -> Any:
        fd = _fdinfo(ev)
        if fd is None or fd["type"] not in _IP_TYPES:
            return None
        if fd.get("bound"):
            return None if bound_key is None else _side_value(fd, bound_key)
        if not fd.get("role"):
            return None
        return _side_value(fd, key)

    return ex


def _lr(local: bool, ckey: str, skey: str) -> Extractor:
    """fd.lip/rip/lport/rport (and .name): local/remote side chosen by which end is ours."""

    def ex(ev: Ev) -> Any:
        fd = _sock(ev)
        if fd is None:
            return None
        use_client = _client_is_local(fd) == local
        return _side_value(fd, ckey if use_client else skey)

    return ex


def _proto_text(get: Extractor, bound_value: str | None) -> Extractor:
    """fd.cproto/sproto/lproto/rproto: the port as text (no service-name lookup)."""

    def ex(ev: Ev) -> str | None:
        fd = _fdinfo(ev)
        if fd is not None and fd["type"] in _IP_TYPES and fd.get("bound"):
            return bound_value
        v = get(ev)
        return None if v is None else str(v)

    return ex


def _either(ckey: str, skey: str) -> Extractor:
    """fd.ip/fd.net/fd.port/fd.proto candidates: client and server side, or the bound
    address of a server socket."""

    def ex(ev: Ev) -> tuple[Any, ...] | None:
        fd = _fdinfo(ev)
        if fd is None or fd["type"] not in _IP_TYPES:
            return None
        if fd.get("bound"):
            v = fd.get(skey)
            return None if v is None else (v,)
        vals = tuple(v for v in (fd.get(ckey), fd.get(skey)) if v is not None)
        return vals or None

    return ex


def _fd_l4proto(ev: Ev) -> str | None:
    fd = _fdinfo(ev)
    return None if fd is None else _l4proto_of(fd)


def _fd_is_server(ev: Ev) -> bool | None:
    fd = _fdinfo(ev)
    if fd is None:
        return None
    if fd["type"] not in _IP_TYPES:
        return False
    if fd.get("bound"):
        return True
    v = fd.get("sip_local")
    return fd.get("role") == "server" if v is None else v is True


def _fd_sockfamily(ev: Ev) -> str | None:
    fd = _fdinfo(ev)
    if fd is None:
        return None
    t = fd["type"]
    return "ip" if t in _IP_TYPES else "unix" if t == "unix" else None


def _fd_uid(ev: Ev) -> str | None:
    fd = _fdobj(ev)
    tid = _tid(ev)
    if fd is None or tid is None:
        return None
    return f"{tid}{fd.get('num', -1)}"


def _host_cid(ev: Ev) -> str:
    cid = _container_id(ev) or ""
    return "" if cid == "host" else cid


def _fd_containername(ev: Ev) -> str | None:
    name = _fd_name(ev)
    return None if name is None else _host_cid(ev) + ":" + name


def _fd_containerdirectory(ev: Ev) -> str | None:
    d = _fd_directory(ev)
    return None if d is None else _host_cid(ev) + ":" + d


def _fd_flag(key: str) -> Extractor:
    def ex(ev: Ev) -> bool | None:
        fd = _fdinfo(ev)
        return None if fd is None else fd.get(key) is True

    return ex


def _fd_int(key: str, conv: Callable[[int], int] | None = None) -> Extractor:
    def ex(ev: Ev) -> int | None:
        fd = _fdinfo(ev)
        if fd is None:
            return None
        v = fd.get(key) or 0
        return conv(v) if conv else v

    return ex


def _make_fd_types(arg: str | None) -> Extractor:
    if arg is not None:
        key = str(int(arg))

        def one(ev: Ev) -> tuple[str, ...] | None:
            if _fdobj(ev) is None:
                return None
            p = ev.payload.get("proc")
            table = p.get("fds") if p else None
            entry = table.get(key) if table else None
            return None if entry is None else (entry.get("type") or "<NA>",)

        return one

    def every(ev: Ev) -> tuple[str, ...] | None:
        if _fdobj(ev) is None:
            return None
        p = ev.payload.get("proc")
        table = p.get("fds") if p else None
        if not table:
            return None
        return tuple(dict.fromkeys(e.get("type") or "<NA>" for e in table.values())) or None

    return every


# --------------------------------------------------------------------------------------
# fs.path.*: the path(s) a filesystem syscall acts on
# --------------------------------------------------------------------------------------

# event: (success test, path arg, source arg, target arg); "=fd" means fd.name
_FSPATH = {
    "mkdir": ("0", "path", None, None), "mkdirat": ("0", "path", None, None),
    "rmdir": ("0", "path", None, None), "unlink": ("0", "path", None, None),
    "unlinkat": ("0", "name", None, None), "open": ("fd", "name", None, None),
    "openat": ("fd", "name", None, None), "openat2": ("fd", "name", None, None),
    "fchmodat": ("0", "filename", None, None), "chmod": ("0", "filename", None, None),
    "fchmod": ("0", "=fd", None, None), "chown": ("0", "path", None, None),
    "lchown": ("0", "path", None, None), "fchown": ("0", "=fd", None, None),
    "fchownat": ("0", "pathname", None, None), "quotactl": ("0", "special", None, None),
    "rename": ("0", None, "oldpath", "newpath"), "renameat": ("0", None, "oldpath", "newpath"),
    "renameat2": ("0", None, "oldpath", "newpath"), "link": ("0", None, "newpath", "oldpath"),
    "linkat": ("0", None, "newpath", "oldpath"), "symlink": ("0", None, "linkpath", "target"),
    "symlinkat": ("0", None, "linkpath", "target"), "mount": ("0", None, "dev", "dir"),
    "umount": ("0", "name", None, None), "umount2": ("0", "name", None, None),
}  # fmt: skip


def _fspath(slot: int, resolved: bool) -> Extractor:
    def ex(ev: Ev) -> str | None:
        spec = _FSPATH.get(ev.type)
        if spec is None:
            return None
        res = ev.payload.get("res")
        if res is None or (res == -1 if spec[0] == "fd" else res != 0):
            return None
        key = spec[slot]
        if key is None:
            return None
        if key == "=fd":
            value = _fd_name(ev)
            if value is None:
                return None
            raw = value
        else:
            rawargs = ev.payload.get("rawargs")
            raw = rawargs.get(key) if rawargs else None
            value = _arg_value(ev, key)
            if raw is None:
                raw = value
            if not isinstance(raw, str):
                return None
        if not resolved:
            return raw
        proc = ev.payload.get("proc")
        if proc is None:
            return None
        if raw.startswith("/"):
            return _normpath(raw)
        if isinstance(value, str) and value.startswith("/"):
            return _normpath(value)
        cwd = proc.get("cwd") or ""
        return _normpath(posixpath.join(cwd, raw) if cwd else raw)

    return ex


# --------------------------------------------------------------------------------------
# fdlist.*: the fds of a poll/ppoll call
# --------------------------------------------------------------------------------------


def _poll_fds(ev: Ev) -> list[int] | None:
    if ev.type not in ("poll", "ppoll") or ev.payload.get("proc") is None:
        return None
    raw = ev.payload.get("rawargs")
    fds = raw.get("fds") if raw else None
    if isinstance(fds, list):
        return [f[0] if isinstance(f, list) else f for f in fds]
    args = ev.payload.get("args")
    text = args.get("fds") if args else None
    if not isinstance(text, str):
        return None
    out = []
    for item in text.split():
        head = item.split(":", 1)[0]
        if head.lstrip("-").isdigit():
            out.append(int(head))
    return out


def _fdlist(what: str) -> Extractor:
    def ex(ev: Ev) -> str | None:
        fds = _poll_fds(ev)
        if fds is None:
            return None
        table = ev.payload["proc"].get("fds") or {}
        parts = []
        for num in fds:
            entry = table.get(str(num))
            if what == "nums":
                parts.append(str(num))
            elif what == "names":
                parts.append((entry or {}).get("name") or "<NA>")
            elif entry is not None and entry.get("type") in _IP_TYPES:
                key = {"cips": "cip", "sips": "sip", "cports": "cport", "sports": "sport"}[what]
                if entry.get("bound") and key not in ("sip",):
                    continue
                v = entry.get(key)
                if v is not None:
                    parts.append(str(v))
        return ",".join(parts) or None

    return ex


# --------------------------------------------------------------------------------------
# user.* / group.*
# --------------------------------------------------------------------------------------


def _user_text(key: str, root_value: str | None) -> Extractor:
    """user.name/homedir/shell: the user-table value, "root"/"/root" for uid 0, else "<NA>"."""

    def ex(ev: Ev) -> str | None:
        if ev.payload.get("proc") is None:
            return None
        u = ev.payload.get("user")
        if u is None:
            return None
        v = u.get(key)
        if v:
            return v
        if root_value is not None and u.get("uid") == 0:
            return root_value
        return "<NA>"

    return ex


def _loginuid(ev: Ev) -> int | None:
    if ev.payload.get("proc") is None:
        return None
    u = ev.payload.get("user")
    v = u.get("loginuid") if u else None
    if v is None or v < 0 or v >= _UINT32_MAX:
        return -1
    return v


def _loginname(ev: Ev) -> str | None:
    if ev.payload.get("proc") is None:
        return None
    u = ev.payload.get("user") or {}
    v = u.get("loginname")
    if v:
        return v
    return "root" if u.get("loginuid") == 0 else "<NA>"


def _group_name(ev: Ev) -> str | None:
    if ev.payload.get("proc") is None:
        return None
    g = ev.payload.get("group")
    if g is None:
        return None
    v = g.get("name")
    if v:
        return v
    return "root" if g.get("gid") == 0 else "<NA>"


def _user_id(section: str, key: str) -> Extractor:
    def ex(ev: Ev) -> int | None:
        if ev.payload.get("proc") is None:
            return None
        d = ev.payload.get(section)
        return None if d is None else d.get(key)

    return ex


# --------------------------------------------------------------------------------------
# container.* / k8s.*: the container plugin's fields
# --------------------------------------------------------------------------------------

_MISSING = object()


def _container_id(ev: Ev) -> str | None:
    """The 12-char container id, ``host`` for host processes (enrichment first)."""
    e = ev.enrichment.get("container")
    if e is not None:
        v = e.get("id")
        if v:
            return v
    c = ev.payload.get("container")
    if c is not None:
        v = c.get("id")
        if v is not None:
            return v or "host"
    return None


def _cget(ev: Ev, key: str) -> Any:
    e = ev.enrichment.get("container")
    if e is not None:
        v = e.get(key, _MISSING)
        if v is not _MISSING:
            return v
    c = ev.payload.get("container")
    if c is not None:
        return c.get(key, _MISSING)
    return _MISSING


def _is_host(ev: Ev) -> bool:
    return _container_id(ev) == "host"


def _cval(key: str, host_value: Any) -> Extractor:
    """A container metadata value; the plugin's host defaults for host processes."""

    def ex(ev: Ev) -> Any:
        v = _cget(ev, key)
        if v is _MISSING or v is None:
            return host_value if _is_host(ev) else None
        return v

    return ex


_ctype = _cval("type", "host")


def _container_type(ev: Ev) -> str | None:
    """``container.type``; a Kubernetes publisher record names it ``runtime``."""
    v = _ctype(ev)
    if v is None:
        r = _cget(ev, "runtime")
        return r if isinstance(r, str) and r else None
    return v


def _cimage(sub: str) -> Extractor:
    def ex(ev: Ev) -> str | None:
        img = _cget(ev, "image")
        if isinstance(img, dict):
            v = img.get(sub)
            if v is not None:
                return v
        elif isinstance(img, str) and sub == "name":
            return img
        return "" if _is_host(ev) else None

    return ex


def _mount_text(m: dict[str, Any]) -> str:
    rdwr = "true" if m.get("rdwr") else "false"
    return f"{m.get('source', '')}:{m.get('dest', '')}:{m.get('mode', '')}:{rdwr}:{m.get('propagation', '')}"


def _mounts(ev: Ev) -> list[dict[str, Any]] | None:
    v = _cget(ev, "mounts")
    if v is _MISSING or v is None:
        return [] if _is_host(ev) else None
    return v


def _container_mounts(ev: Ev) -> str | None:
    mounts = _mounts(ev)
    return None if mounts is None else ",".join(_mount_text(m) for m in mounts)


_MOUNT_PART: dict[str, Callable[[dict[str, Any]], str]] = {
    "container.mount": _mount_text,
    "container.mount.source": lambda m: m.get("source", ""),
    "container.mount.dest": lambda m: m.get("dest", ""),
    "container.mount.mode": lambda m: m.get("mode", ""),
    "container.mount.rdwr": lambda m: "true" if m.get("rdwr") else "false",
    "container.mount.propagation": lambda m: m.get("propagation", ""),
}


def _make_mount(name: str) -> Callable[[str | None], Extractor]:
    """container.mount*[N] picks the Nth mount; container.mount*[PATTERN] the first mount
    whose source (destination, for container.mount.source) the pattern matches. Like the
    plugin, PATTERN is a regular expression searched anywhere in the path (so ``/proc*``
    matches ``/pro`` followed by any number of ``c``)."""
    part = _MOUNT_PART[name]
    lookup = "dest" if name == "container.mount.source" else "source"

    def make(arg: str | None) -> Extractor:
        assert arg is not None
        if arg.isdigit():
            idx = int(arg)

            def by_index(ev: Ev) -> str | None:
                mounts = _mounts(ev)
                if not mounts or idx >= len(mounts):
                    return None
                return part(mounts[idx])

            return by_index
        try:
            pattern = re.compile(arg, re.M)
        except re.error as exc:
            raise FieldArgError(f"invalid mount pattern {arg!r}: {exc}") from None
        search = pattern.search

        def by_pattern(ev: Ev) -> str | None:
            mounts = _mounts(ev)
            if not mounts:
                return None
            for m in mounts:
                if search(m.get(lookup, "")):
                    return part(m)
            return None

        return by_pattern

    return make


def _labels_text(labels: dict[str, str]) -> str:
    """``key:value, key2`` in key order, without ``annotation.*``/``io.kubernetes.*``."""
    parts = []
    for k in sorted(labels):
        if k.startswith("annotation.") or k.startswith("io.kubernetes."):
            continue
        v = labels[k]
        parts.append(f"{k}:{v}" if v else k)
    return ", ".join(parts)


def _container_labels(ev: Ev) -> str | None:
    labels = _cget(ev, "labels")
    if labels is _MISSING or labels is None:
        return "" if _is_host(ev) else None
    return _labels_text(labels)


def _make_container_label(arg: str | None) -> Extractor:
    assert arg is not None
    key = arg

    def ex(ev: Ev) -> str | None:
        labels = _cget(ev, "labels")
        return labels.get(key) if isinstance(labels, dict) else None

    return ex


def _container_start(ev: Ev) -> int | None:
    p = ev.payload.get("proc")
    v = p.get("pidns_init_start_ts") if p else None
    if v:
        return v
    v = _cget(ev, "start_ts")
    return v if v and v is not _MISSING else None


def _container_duration(ev: Ev) -> int | None:
    start = _container_start(ev)
    return None if start is None else ev.ts - start


def _k8s(ev: Ev, section: str) -> dict[str, Any] | None:
    k = ev.enrichment.get("k8s")
    if k is None:
        k = ev.payload.get("k8s")
    return None if k is None else k.get(section)


def _k8s_value(
    section: str, key: str, label: str | None = None, ckey: str | None = None
) -> Extractor:
    """A k8s value, falling back to the container label the runtime sets (``label``), then
    to the container record's own copy (``ckey``: ``pod_name``/``namespace``, which both
    metadata publishers write)."""

    def ex(ev: Ev) -> str | None:
        d = _k8s(ev, section)
        if d is not None:
            v = d.get(key)
            if v is not None:
                return v
        if label is not None:
            labels = _cget(ev, "labels")
            if isinstance(labels, dict):
                v = labels.get(label)
                if v is not None:
                    return v
        if ckey is not None:
            v = _cget(ev, ckey)
            if v and v is not _MISSING:
                return v
        return None

    return ex


def _make_sandbox(full: bool) -> Extractor:
    def ex(ev: Ev) -> str | None:
        d = _k8s(ev, "pod")
        v = d.get("sandbox_id") if d else None
        if v is None:
            v = _cget(ev, "sandbox_id")
            if v is _MISSING or v is None:
                return "" if _is_host(ev) else None
        return v if full else v[:12]

    return ex


def _pod_labels(ev: Ev) -> str | None:
    d = _k8s(ev, "pod")
    labels = d.get("labels") if d else None
    if labels is not None:
        return _labels_text(labels)
    if _is_host(ev) or ev.enrichment.get("container") is not None:
        return ""
    return None


def _make_pod_label(arg: str | None) -> Extractor:
    assert arg is not None
    key = arg

    def ex(ev: Ev) -> str | None:
        d = _k8s(ev, "pod")
        labels = d.get("labels") if d else None
        return labels.get(key) if labels else None

    return ex


def _ns_labels(ev: Ev) -> str | None:
    """``k8s.ns.labels``: the container plugin leaves it empty; falconet reads the labels
    the Kubernetes publisher put on ``meta.namespaces.v1`` (like k8smeta's ``ns.labels``)."""
    d = _k8s(ev, "ns")
    labels = d.get("labels") if d else None
    return _labels_text(labels) if isinstance(labels, dict) else None


def _make_ns_label(arg: str | None) -> Extractor:
    assert arg is not None
    key = arg

    def ex(ev: Ev) -> str | None:
        d = _k8s(ev, "ns")
        labels = d.get("labels") if d else None
        return labels.get(key) if isinstance(labels, dict) else None

    return ex


def _pod_fallback(key: str, ckey: str) -> Extractor:
    def ex(ev: Ev) -> str | None:
        d = _k8s(ev, "pod")
        v = d.get(key) if d else None
        if v is not None:
            return v
        v = _cget(ev, ckey)
        if v is _MISSING or v is None:
            return "" if _is_host(ev) else None
        return v

    return ex


# --------------------------------------------------------------------------------------
# the field table
# --------------------------------------------------------------------------------------

_OPT = ArgMode.OPTIONAL
_REQ = ArgMode.REQUIRED


def _x(name: str, ftype: FieldType, desc: str, ex: Extractor, **kw: Any) -> FieldDef:
    """A field with a fixed extractor."""
    return field(name, ftype, desc, simple(ex), **kw)


def _m(name: str, ftype: FieldType, desc: str, make: Any, **kw: Any) -> FieldDef:
    """A field whose extractor depends on its argument."""
    return field(name, ftype, desc, make, **kw)


def _ancestor_field(name: str, ftype: FieldType, desc: str) -> FieldDef:
    return _m(
        name, ftype, desc, _make_ancestor(name), arg=_OPT, index_arg=True,
        compare=CompareMode.ANY, no_rhs=True, no_transformer=True,
    )  # fmt: skip


_proc_name = _sub("proc", "name")
_p = _parent_value

_EVT_FIELDS = (
    _x("evt.latency", F.RELTIME, "deprecated (enter events are gone): always 0",
       _const(0), deprecated=True),
    _x("evt.latency.s", F.RELTIME, "deprecated: always 0", _const(0), deprecated=True),
    _x("evt.latency.ns", F.RELTIME, "deprecated: always 0", _const(0), deprecated=True),
    _x("evt.latency.quantized", F.UINT64, "deprecated (table only): always 0", _const(0)),
    _x("evt.latency.human", F.CHARBUF, "deprecated: always 0ns", _const("0ns"),
       deprecated=True),
    _x("evt.deltatime", F.RELTIME, "ns since the previous event (needs stream state; missing)",
       _none),
    _x("evt.deltatime.s", F.RELTIME, "whole seconds of evt.deltatime (missing)", _none),
    _x("evt.deltatime.ns", F.RELTIME, "ns part of evt.deltatime (missing)", _none),
    _x("evt.outputtime", F.CHARBUF, "event time as printed in outputs (HH:MM:SS.nnnnnnnnn)",
       _outputtime),
    _x("evt.dir", F.CHARBUF, "deprecated: always '<' (every event is a syscall exit)",
       _const("<"), deprecated=True),
    _x("evt.type", F.CHARBUF, "event name: the syscall (open, execve...) or meta event",
       lambda ev: ev.type),
    _m("evt.type.is", F.UINT32, "1 if the event is of the type named after the dot, else 0",
       _make_type_is, arg=_REQ, dotted_arg=True),
    _x("syscall.type", F.CHARBUF, "syscall name; missing for non-syscall events",
       _syscall_type),
    _x("evt.category", F.CHARBUF, "event category (file, net, process, memory, ipc...)",
       _category),
    _x("evt.cpu", F.INT16, "CPU the event ran on", lambda ev: ev.payload.get("cpu")),
    _x("evt.args", F.CHARBUF, "all parameters as name=value text", _args_text),
    _m("evt.arg", F.CHARBUF, "one parameter as text, by name (evt.arg.flags) or index "
       "(evt.arg[0])", _make_arg, arg=_REQ, dotted_arg=True),
    _m("evt.rawarg", F.INT64, "one parameter as its raw typed value, by name "
       "(evt.rawarg.res); the type is the parameter's", _make_rawarg, arg=_REQ,
       dotted_arg=True, no_rhs=True, no_transformer=True),
    _x("evt.info", F.CHARBUF, "same as evt.args", _args_text),
    _x("evt.buffer", F.BYTEBUF, "the I/O data buffer of read/write-like events", _buffer),
    _x("evt.buflen", F.UINT64, "length of the I/O data (the return value of an I/O event)",
       _buflen()),
    _x("evt.res", F.CHARBUF, "return value: SUCCESS or the errno name (ENOENT...)", _res_str),
    _x("evt.rawres", F.INT64, "return value as a number", _res),
    _x("evt.failed", F.BOOL, "true if the syscall returned an error", _failed),
    _x("evt.is_io", F.BOOL, "true for events that read or write an fd",  _is_io),
    _x("evt.is_io_read", F.BOOL, "true for events that read from an fd",
       lambda ev: ev.type in _READ_EVENTS),
    _x("evt.is_io_write", F.BOOL, "true for events that write to an fd",
       lambda ev: ev.type in _WRITE_EVENTS),
    _x("evt.io_dir", F.CHARBUF, "'read' or 'write' for I/O events", _io_dir),
    _x("evt.is_wait", F.BOOL, "true for events that make the thread wait",
       lambda ev: ev.type in _WAIT_EVENTS),
    _x("evt.wait_latency", F.RELTIME, "deprecated: always 0", _const(0), deprecated=True),
    _x("evt.is_syslog", F.BOOL, "true for writes to /dev/log", _is_syslog),
    _x("evt.count", F.UINT32, "always 1", _const(1)),
    _x("evt.count.error", F.UINT32, "1 if the event failed, else 0", _count_error),
    _x("evt.count.error.file", F.UINT32, "1 for a failed file event", _count_error_kind("file")),
    _x("evt.count.error.net", F.UINT32, "1 for a failed network event",
       _count_error_kind("net")),
    _x("evt.count.error.memory", F.UINT32, "1 for a failed memory event",
       _count_error_kind("memory")),
    _x("evt.count.error.other", F.UINT32, "1 for another failed event",
       _count_error_kind("other")),
    _x("evt.count.exit", F.UINT32, "1 for exit events (all syscall events)", _const(1)),
    _x("evt.count.procinfo", F.UINT32, "1 for procinfo events of main threads (table only)",
       _const(0)),
    _x("evt.count.threadinfo", F.UINT32, "1 for procinfo events (table only)", _const(0)),
    _m("evt.around", F.UINT64, "filter-only time window test, evt.around[T]=D (not "
       "supported: never matches)", simple(_none), arg=_REQ, index_arg=True, no_rhs=True,
       no_transformer=True),
    _m("evt.abspath", F.CHARBUF, "absolute path of a *at syscall (.src/.dst for two-path "
       "calls)", _make_abspath, arg=_OPT, dotted_arg=True),
    _x("evt.buflen.in", F.UINT64, "buffer length of input I/O (table only)",
       _buflen(direction="in")),
    _x("evt.buflen.out", F.UINT64, "buffer length of output I/O (table only)",
       _buflen(direction="out")),
    _x("evt.buflen.file", F.UINT64, "buffer length of file I/O (table only)", _buflen("file")),
    _x("evt.buflen.file.in", F.UINT64, "buffer length of file input (table only)",
       _buflen("file", "in")),
    _x("evt.buflen.file.out", F.UINT64, "buffer length of file output (table only)",
       _buflen("file", "out")),
    _x("evt.buflen.net", F.UINT64, "buffer length of network I/O (table only)",
       _buflen("net")),
    _x("evt.buflen.net.in", F.UINT64, "buffer length of network input (table only)",
       _buflen("net", "in")),
    _x("evt.buflen.net.out", F.UINT64, "buffer length of network output (table only)",
       _buflen("net", "out")),
    _x("evt.is_open_read", F.BOOL, "true for open* events opening the path for reading",
       _is_open(1)),
    _x("evt.is_open_write", F.BOOL, "true for open* events opening the path for writing",
       _is_open(2)),
    _x("evt.infra.docker.name", F.CHARBUF, "docker infrastructure event name (table only; "
       "missing)", _none),
    _x("evt.infra.docker.container.id", F.CHARBUF, "docker infrastructure event container id "
       "(missing)", _none),
    _x("evt.infra.docker.container.name", F.CHARBUF, "docker infrastructure event container "
       "name (missing)", _none),
    _x("evt.infra.docker.container.image", F.CHARBUF, "docker infrastructure event image "
       "(missing)", _none),
    _x("evt.is_open_exec", F.BOOL, "true for open*/creat events creating an executable file",
       _is_open_exec),
    _x("evt.is_open_create", F.BOOL, "true for open* events that created the file",
       _is_open_create),
    # generic fields that common.py leaves to each source
    _x("evt.reltime", F.RELTIME, "ns since the first event of the capture (missing)", _none),
    _x("evt.reltime.s", F.RELTIME, "whole seconds of evt.reltime (missing)", _none),
    _x("evt.reltime.ns", F.RELTIME, "ns part of evt.reltime (missing)", _none),
    _x("evt.pluginname", F.CHARBUF, "plugin that produced the event (missing for syscalls)",
       _none),
    _x("evt.plugininfo", F.CHARBUF, "plugin event summary (missing for syscalls)", _none),
    _x("evt.is_async", F.BOOL, "true for asynchronous meta events",
       lambda ev: ev.type == "asyncevent"),
    _x("evt.asynctype", F.CHARBUF, "name of an asynchronous event", _none),
)  # fmt: skip

_PROC_FIELDS = (
    _x("proc.exe", F.CHARBUF, "argv[0] of the process", _sub("proc", "exe")),
    _x("proc.pexe", F.CHARBUF, "argv[0] of the parent", _p(lambda p: p.get("exe"))),
    _ancestor_field("proc.aexe", F.CHARBUF, "argv[0] of an ancestor ([N]; none = any)"),
    _x("proc.exepath", F.CHARBUF, "full executable path", _sub("proc", "exepath")),
    _x("proc.pexepath", F.CHARBUF, "executable path of the parent",
       _p(lambda p: p.get("exepath"))),
    _ancestor_field("proc.aexepath", F.CHARBUF, "executable path of an ancestor"),
    _x("proc.name", F.CHARBUF, "process name (comm, at most 15 characters)", _proc_name),
    _x("proc.pname", F.CHARBUF, "name of the parent", _p(lambda p: p.get("name"))),
    _ancestor_field("proc.aname", F.CHARBUF, "name of an ancestor ([0] = the process, [1] = "
                    "parent...; no index = any ancestor)"),
    _m("proc.args", F.CHARBUF, "arguments after argv[0], space separated ([N]: one of them)",
       _make_args, arg=_OPT, index_arg=True),
    _m("proc.aargs", F.CHARBUF, "arguments of an ancestor ([N]); all ancestors' without",
       _make_aargs, arg=_OPT, index_arg=True),
    _x("proc.cmdline", F.CHARBUF, "proc.name and the arguments", _cmdline),
    _x("proc.pcmdline", F.CHARBUF, "command line of the parent", _p(_cmdline_of)),
    _ancestor_field("proc.acmdline", F.CHARBUF, "command line of an ancestor"),
    _x("proc.cmdnargs", F.UINT64, "number of arguments", _cmdnargs),
    _x("proc.cmdlenargs", F.UINT64, "total length of the arguments", _cmdlenargs),
    _x("proc.exeline", F.CHARBUF, "proc.exe and the arguments", _exeline),
    _m("proc.env", F.CHARBUF, "environment, space separated ([NAME]: one variable)",
       _make_env, arg=_OPT),
    _m("proc.aenv", F.CHARBUF, "environment of an ancestor ([N] or [NAME])", _make_aenv,
       arg=_OPT, compare=CompareMode.ANY, no_rhs=True, no_transformer=True),
    _x("proc.cwd", F.CHARBUF, "current working directory", _sub("proc", "cwd")),
    _x("proc.loginshellid", F.INT64, "pid of the oldest shell among the process and its "
       "ancestors", _loginshellid),
    _x("proc.tty", F.UINT32, "controlling terminal (0 if none)", _sub("proc", "tty")),
    _x("proc.pid", F.INT64, "process id", _pid),
    _x("proc.ppid", F.INT64, "parent process id", _ppid),
    _ancestor_field("proc.apid", F.INT64, "pid of an ancestor"),
    _x("proc.vpid", F.INT64, "process id in its pid namespace", _virtual_id("vpid")),
    _x("proc.pvpid", F.INT64, "parent's id in its pid namespace", _pvpid),
    _x("proc.sid", F.INT64, "session id", _sub("proc", "sid")),
    _x("proc.sname", F.CHARBUF, "name of the session leader",
       _leader_field("sid", True, lambda p: p.get("name"), "sname")),
    _x("proc.sid.exe", F.CHARBUF, "argv[0] of the session leader",
       _leader_field("sid", True, lambda p: p.get("exe"))),
    _x("proc.sid.exepath", F.CHARBUF, "executable path of the session leader",
       _leader_field("sid", True, lambda p: p.get("exepath"))),
    _x("proc.vpgid", F.INT64, "process group id in the pid namespace", _sub("proc", "vpgid")),
    _x("proc.vpgid.name", F.CHARBUF, "name of the process group leader",
       _leader_field("vpgid", True, lambda p: p.get("name"))),
    _x("proc.vpgid.exe", F.CHARBUF, "argv[0] of the process group leader",
       _leader_field("vpgid", True, lambda p: p.get("exe"))),
    _x("proc.vpgid.exepath", F.CHARBUF, "executable path of the process group leader",
       _leader_field("vpgid", True, lambda p: p.get("exepath"))),
    _x("proc.pgid", F.INT64, "process group id", _sub("proc", "pgid")),
    _x("proc.pgid.name", F.CHARBUF, "name of the process group leader (host pid)",
       _leader_field("pgid", False, lambda p: p.get("name"))),
    _x("proc.pgid.exe", F.CHARBUF, "argv[0] of the process group leader (host pid)",
       _leader_field("pgid", False, lambda p: p.get("exe"))),
    _x("proc.pgid.exepath", F.CHARBUF, "executable path of the process group leader",
       _leader_field("pgid", False, lambda p: p.get("exepath"))),
    _x("proc.duration", F.RELTIME, "ns since the process started", _duration),
    _x("proc.ppid.duration", F.RELTIME, "ns since the parent started", _parent_duration),
    _x("proc.pid.ts", F.RELTIME, "start time of the process (ns since the epoch)",
       _sub_nz("proc", "start_ts")),
    _x("proc.ppid.ts", F.RELTIME, "start time of the parent", _parent_start),
    _x("proc.is_exe_writable", F.BOOL, "true if the executable is writable by the user",
       _sub_bool("proc", "is_exe_writable")),
    _x("proc.is_exe_upper_layer", F.BOOL, "true if the executable is in an overlayfs upper "
       "layer", _sub_bool("proc", "is_exe_upper_layer")),
    _x("proc.is_exe_lower_layer", F.BOOL, "true if the executable is in an overlayfs lower "
       "layer", _sub_bool("proc", "is_exe_lower_layer")),
    _x("proc.is_exe_from_memfd", F.BOOL, "true if the executable is a memfd_create file",
       _sub_bool("proc", "is_exe_from_memfd")),
    _x("proc.is_sid_leader", F.BOOL, "true if the process leads its session",
       _is_leader("sid", "vpid")),
    _x("proc.is_vpgid_leader", F.BOOL, "true if the process leads its process group",
       _is_leader("vpgid", "vpid")),
    _x("proc.is_pgid_leader", F.BOOL, "true if the process leads its process group (host "
       "pid)", _is_leader("pgid", "pid")),
    _x("proc.exe_ino", F.INT64, "inode of the executable", _sub_nz("proc", "exe_ino")),
    _x("proc.exe_ino.ctime", F.ABSTIME, "status change time of the executable (ns)",
       _sub_nz("proc", "exe_ino_ctime")),
    _x("proc.exe_ino.mtime", F.ABSTIME, "modification time of the executable (ns)",
       _sub_nz("proc", "exe_ino_mtime")),
    _x("proc.exe_ino.ctime_duration_proc_start", F.ABSTIME, "ns between the executable's "
       "ctime and the process start", _ctime_since_start),
    _x("proc.exe_ino.ctime_duration_pidns_start", F.ABSTIME, "ns between the pid namespace "
       "start and the executable's ctime", _ctime_since_pidns),
    _x("proc.pidns_init_start_ts", F.UINT64, "start time of the pid namespace's init",
       _sub_nz("proc", "pidns_init_start_ts")),
    _x("thread.cap_permitted", F.CHARBUF, "permitted capabilities", _caps("cap_permitted")),
    _x("thread.cap_inheritable", F.CHARBUF, "inheritable capabilities",
       _caps("cap_inheritable")),
    _x("thread.cap_effective", F.CHARBUF, "effective capabilities", _caps("cap_effective")),
    _x("proc.fdopencount", F.UINT64, "number of open fds", _sub("proc", "fdopencount")),
    _x("proc.fdlimit", F.INT64, "maximum number of fds", _sub("proc", "fdlimit")),
    _x("proc.fdusage", F.DOUBLE, "open fds as a percentage of the limit", _fdusage),
    _x("proc.vmsize", F.UINT64, "virtual memory size (KiB)", _sub("proc", "vmsize_kb")),
    _x("proc.vmrss", F.UINT64, "resident memory (KiB)", _sub("proc", "vmrss_kb")),
    _x("proc.vmswap", F.UINT64, "swapped memory (KiB)", _sub("proc", "vmswap_kb")),
    _x("thread.pfmajor", F.UINT64, "major page faults", _sub("proc", "pfmajor")),
    _x("thread.pfminor", F.UINT64, "minor page faults", _sub("proc", "pfminor")),
    _x("thread.tid", F.INT64, "thread id", _tid),
    _x("thread.ismain", F.BOOL, "true for the main thread of the process", _ismain),
    _x("thread.vtid", F.INT64, "thread id in its pid namespace", _virtual_id("vtid")),
    _x("thread.nametid", F.CHARBUF, "proc.name followed by the tid (table only)", _nametid),
    _x("thread.exectime", F.RELTIME, "CPU time of the last scheduled slice (switch events "
       "only: 0)", _zero_for_threads),
    _x("thread.totexectime", F.RELTIME, "total CPU time (switch events only: 0)",
       _zero_for_threads),
    _x("thread.cgroups", F.CHARBUF, "all cgroups as subsys=path", _cgroups),
    _m("thread.cgroup", F.CHARBUF, "cgroup of one subsystem (thread.cgroup.cpuacct)",
       _make_cgroup, arg=_REQ, dotted_arg=True),
    _x("proc.nthreads", F.UINT64, "number of threads", _sub("proc", "nthreads")),
    _x("proc.nchilds", F.UINT64, "number of threads other than the leader",
       _sub("proc", "nchilds")),
    _x("thread.cpu", F.DOUBLE, "CPU usage (procinfo events only)", _none),
    _x("thread.cpu.user", F.DOUBLE, "user CPU usage (procinfo events only)", _none),
    _x("thread.cpu.system", F.DOUBLE, "system CPU usage (procinfo events only)", _none),
    _x("thread.vmsize", F.UINT64, "virtual memory of the main thread (KiB; 0 for others)",
       _thread_mem("vmsize_kb")),
    _x("thread.vmrss", F.UINT64, "resident memory of the main thread (KiB; 0 for others)",
       _thread_mem("vmrss_kb")),
    _x("thread.vmsize.b", F.UINT64, "thread.vmsize in bytes (table only)",
       _thread_mem("vmsize_kb", 1024)),
    _x("thread.vmrss.b", F.UINT64, "thread.vmrss in bytes (table only)",
       _thread_mem("vmrss_kb", 1024)),
    _x("proc.stdin.type", F.CHARBUF, "type of fd 0", _stdio(0, "type")),
    _x("proc.stdout.type", F.CHARBUF, "type of fd 1", _stdio(1, "type")),
    _x("proc.stderr.type", F.CHARBUF, "type of fd 2", _stdio(2, "type")),
    _x("proc.stdin.name", F.CHARBUF, "name of fd 0", _stdio(0, "name")),
    _x("proc.stdout.name", F.CHARBUF, "name of fd 1", _stdio(1, "name")),
    _x("proc.stderr.name", F.CHARBUF, "name of fd 2", _stdio(2, "name")),
)  # fmt: skip

_USER_FIELDS = (
    _x("user.uid", F.UINT32, "user id", _user_id("user", "uid")),
    _x("user.name", F.CHARBUF, "user name", _user_text("name", "root")),
    _x("user.homedir", F.CHARBUF, "home directory", _user_text("homedir", "/root")),
    _x("user.shell", F.CHARBUF, "login shell", _user_text("shell", None)),
    _x("user.loginuid", F.INT64, "audit user id (auid); -1 when unset", _loginuid),
    _x("user.loginname", F.CHARBUF, "audit user name", _loginname),
    _x("group.gid", F.UINT32, "group id", _user_id("group", "gid")),
    _x("group.name", F.CHARBUF, "group name", _group_name),
)  # fmt: skip

_FD_FIELDS = (
    _x("fd.num", F.INT64, "fd number (-1 when a creating call failed)", _fd_num),
    _x("fd.type", F.CHARBUF, "fd type: file, directory, ipv4, ipv6, unix, pipe, event, "
       "signalfd, eventpoll, inotify, timerfd, netlink, bpf, userfaultfd, io_uring, memfd, "
       "pidfd", _fd_type),
    _x("fd.typechar", F.CHARBUF, "fd type as one character (f, d, 4, 6, u, p, e, s, l, i, t, "
       "n, b, r, m, P, o)", _fd_typechar),
    _x("fd.name", F.CHARBUF, "full path of a file, or the connection tuple of a socket",
       _fd_name),
    _x("fd.directory", F.CHARBUF, "directory of a file fd", _fd_directory),
    _x("fd.filename", F.CHARBUF, "file name of a file fd, without the directory",
       _fd_filename),
    _x("fd.ip", F.IPADDR, "client or server IP of a socket (filter only)",
       _either("cip", "sip"), compare=CompareMode.EITHER, no_rhs=True, no_transformer=True),
    _x("fd.cip", F.IPADDR, "client IP", _cside("cip")),
    _x("fd.sip", F.IPADDR, "server IP (or the bound IP of a listening socket)",
       _sside("sip", "sip")),
    _x("fd.lip", F.IPADDR, "local IP", _lr(True, "cip", "sip")),
    _x("fd.rip", F.IPADDR, "remote IP", _lr(False, "cip", "sip")),
    _x("fd.port", F.PORT, "client or server port (filter only)", _either("cport", "sport"),
       compare=CompareMode.EITHER, no_rhs=True, no_transformer=True),
    _x("fd.cport", F.PORT, "client port", _cside("cport")),
    _x("fd.sport", F.PORT, "server port (or the bound port)", _sside("sport", "sport")),
    _x("fd.lport", F.PORT, "local port", _lr(True, "cport", "sport")),
    _x("fd.rport", F.PORT, "remote port", _lr(False, "cport", "sport")),
    _x("fd.l4proto", F.CHARBUF, "IP protocol: tcp, udp, icmp, raw (<NA> otherwise)",
       _fd_l4proto),
    _x("fd.sockfamily", F.CHARBUF, "socket family: ip or unix", _fd_sockfamily),
    _x("fd.is_server", F.BOOL, "true if the process is the server side", _fd_is_server),
    _x("fd.uid", F.CHARBUF, "thread id and fd number, concatenated", _fd_uid),
    _x("fd.containername", F.CHARBUF, "container id and fd name", _fd_containername),
    _x("fd.containerdirectory", F.CHARBUF, "container id and fd directory",
       _fd_containerdirectory),
    _x("fd.proto", F.PORT, "client or server port, compared like fd.port (filter only)",
       _either("cport", "sport"), compare=CompareMode.EITHER, no_rhs=True,
       no_transformer=True),
    _x("fd.cproto", F.CHARBUF, "client port as text", _proto_text(_cside("cport"), "")),
    _x("fd.sproto", F.CHARBUF, "server port as text", _proto_text(_sside("sport", None), "")),
    _x("fd.lproto", F.CHARBUF, "local port as text", _proto_text(_lr(True, "cport", "sport"),
       None)),
    _x("fd.rproto", F.CHARBUF, "remote port as text",
       _proto_text(_lr(False, "cport", "sport"), None)),
    _x("fd.net", F.IPNET, "client or server IP, for network matches (filter only)",
       _either("cip", "sip"), compare=CompareMode.EITHER, no_rhs=True, no_transformer=True),
    _x("fd.cnet", F.IPNET, "client IP, for network matches (filter only)", _cside("cip"),
       no_rhs=True, no_transformer=True),
    _x("fd.snet", F.IPNET, "server IP, for network matches (filter only)",
       _sside("sip", "sip"), no_rhs=True, no_transformer=True),
    _x("fd.lnet", F.IPNET, "local IP, for network matches (filter only)",
       _lr(True, "cip", "sip"), no_rhs=True, no_transformer=True),
    _x("fd.rnet", F.IPNET, "remote IP, for network matches (filter only)",
       _lr(False, "cip", "sip"), no_rhs=True, no_transformer=True),
    _x("fd.connected", F.BOOL, "true for a connected socket", _fd_flag("connected")),
    _x("fd.name_changed", F.BOOL, "true when this event changed the fd name (e.g. a new UDP "
       "peer)", _fd_flag("name_changed")),
    _x("fd.cip.name", F.CHARBUF, "DNS name of the client IP", _cside("cip_name"),
       no_rhs=True, no_transformer=True),
    _x("fd.sip.name", F.CHARBUF, "DNS name of the server IP", _sside("sip_name", "sip_name"),
       no_rhs=True, no_transformer=True),
    _x("fd.lip.name", F.CHARBUF, "DNS name of the local IP", _lr(True, "cip_name", "sip_name"),
       no_rhs=True, no_transformer=True),
    _x("fd.rip.name", F.CHARBUF, "DNS name of the remote IP",
       _lr(False, "cip_name", "sip_name"), no_rhs=True, no_transformer=True),
    _x("fd.dev", F.INT32, "device number of the file", _fd_int("dev")),
    _x("fd.dev.major", F.INT32, "major device number",
       _fd_int("dev", lambda d: (d & 0xFFF00) >> 8)),
    _x("fd.dev.minor", F.INT32, "minor device number",
       _fd_int("dev", lambda d: (d & 0xFF) | ((d >> 12) & 0xFFF00))),
    _x("fd.ino", F.INT64, "inode number", _fd_int("ino")),
    _x("fd.nameraw", F.CHARBUF, "the path as the syscall got it (not made absolute)",
       _fd_nameraw),
    _m("fd.types", F.CHARBUF, "types of the process's open fds ([N]: of fd N)",
       _make_fd_types, arg=_OPT, index_arg=True, is_list=True, no_rhs=True),
    _x("fd.is_upper_layer", F.BOOL, "true if the file is in an overlayfs upper layer",
       _fd_flag("is_upper_layer")),
    _x("fd.is_lower_layer", F.BOOL, "true if the file is in an overlayfs lower layer",
       _fd_flag("is_lower_layer")),
)  # fmt: skip

_FSPATH_FIELDS = (
    _x("fs.path.name", F.CHARBUF, "absolute path a filesystem syscall acted on",
       _fspath(1, True)),
    _x("fs.path.nameraw", F.CHARBUF, "that path as given to the syscall", _fspath(1, False)),
    _x("fs.path.source", F.CHARBUF, "absolute source path of rename/link/symlink/mount",
       _fspath(2, True)),
    _x("fs.path.sourceraw", F.CHARBUF, "source path as given", _fspath(2, False)),
    _x("fs.path.target", F.CHARBUF, "absolute target path of rename/link/symlink/mount",
       _fspath(3, True)),
    _x("fs.path.targetraw", F.CHARBUF, "target path as given", _fspath(3, False)),
)  # fmt: skip

_FDLIST_FIELDS = (
    _x("fdlist.nums", F.CHARBUF, "poll fds: numbers, comma separated", _fdlist("nums")),
    _x("fdlist.names", F.CHARBUF, "poll fds: names", _fdlist("names")),
    _x("fdlist.cips", F.CHARBUF, "poll fds: client IPs", _fdlist("cips")),
    _x("fdlist.sips", F.CHARBUF, "poll fds: server IPs", _fdlist("sips")),
    _x("fdlist.cports", F.CHARBUF, "poll fds: client ports", _fdlist("cports")),
    _x("fdlist.sports", F.CHARBUF, "poll fds: server ports", _fdlist("sports")),
    _m("util.cnt", F.UINT64, "a counter that grows by one at each use", _make_counter),
)  # fmt: skip

_DEPRECATED_K8S = "deprecated in the container plugin: always missing"

_CONTAINER_FIELDS = (
    _x("container.id", F.CHARBUF, "container id (12 characters), or 'host'", _container_id),
    _x("container.full_id", F.CHARBUF, "full container id", _cval("full_id", "host")),
    _x("container.name", F.CHARBUF, "container name ('host' for host processes)",
       _cval("name", "host")),
    _x("container.image", F.CHARBUF, "image name (repository:tag)", _cimage("name")),
    _x("container.image.id", F.CHARBUF, "image id", _cimage("id")),
    _x("container.type", F.CHARBUF, "container runtime (docker, containerd, cri-o...)",
       _container_type),
    _x("container.privileged", F.BOOL, "true for a privileged container",
       _cval("privileged", False)),
    _x("container.mounts", F.CHARBUF, "mounts as source:dest:mode:rdwr:propagation, comma "
       "separated", _container_mounts),
    _m("container.mount", F.CHARBUF, "one mount ([N] or [source pattern])",
       _make_mount("container.mount"), arg=_REQ),
    _m("container.mount.source", F.CHARBUF, "source of a mount ([N] or [dest pattern])",
       _make_mount("container.mount.source"), arg=_REQ),
    _m("container.mount.dest", F.CHARBUF, "destination of a mount ([N] or [source pattern])",
       _make_mount("container.mount.dest"), arg=_REQ),
    _m("container.mount.mode", F.CHARBUF, "mode of a mount ([N] or [source pattern])",
       _make_mount("container.mount.mode"), arg=_REQ),
    _m("container.mount.rdwr", F.CHARBUF, "'true' for a read-write mount ([N] or [pattern])",
       _make_mount("container.mount.rdwr"), arg=_REQ),
    _m("container.mount.propagation", F.CHARBUF, "propagation of a mount ([N] or [pattern])",
       _make_mount("container.mount.propagation"), arg=_REQ),
    _x("container.image.repository", F.CHARBUF, "image repository", _cimage("repository")),
    _x("container.image.tag", F.CHARBUF, "image tag", _cimage("tag")),
    _x("container.image.digest", F.CHARBUF, "image registry digest", _cimage("digest")),
    _x("container.healthcheck", F.CHARBUF, _DEPRECATED_K8S, _none),
    _x("container.liveness_probe", F.CHARBUF, _DEPRECATED_K8S, _none),
    _x("container.readiness_probe", F.CHARBUF, _DEPRECATED_K8S, _none),
    _x("container.start_ts", F.ABSTIME, "container start (start of its pid namespace's init)",
       _container_start),
    _x("container.duration", F.RELTIME, "ns since container.start_ts", _container_duration),
    _x("container.ip", F.CHARBUF, "primary IPv4 address of the container", _cval("ip", "")),
    _x("container.cni.json", F.CHARBUF, "CNI result of the pod, as JSON text",
       _cval("cni_json", "")),
    _x("container.host_pid", F.BOOL, "true if the container shares the host pid namespace",
       _cval("host_pid", False)),
    _x("container.host_network", F.BOOL, "true if the container uses the host network",
       _cval("host_network", False)),
    _x("container.host_ipc", F.BOOL, "true if the container shares the host IPC namespace",
       _cval("host_ipc", False)),
    _m("container.label", F.CHARBUF, "one container label ([key])", _make_container_label,
       arg=_REQ),
    _x("container.labels", F.CHARBUF, "container labels as key:value, comma separated",
       _container_labels),
    _x("proc.is_container_healthcheck", F.BOOL, _DEPRECATED_K8S, _none),
    _x("proc.is_container_liveness_probe", F.BOOL, _DEPRECATED_K8S, _none),
    _x("proc.is_container_readiness_probe", F.BOOL, _DEPRECATED_K8S, _none),
    _x("k8s.pod.name", F.CHARBUF, "pod name", _k8s_value("pod", "name",
       "io.kubernetes.pod.name", "pod_name")),
    _x("k8s.ns.name", F.CHARBUF, "namespace name", _k8s_value("ns", "name",
       "io.kubernetes.pod.namespace", "namespace")),
    _x("k8s.pod.id", F.CHARBUF, "pod uid (legacy name)", _k8s_value("pod", "uid",
       "io.kubernetes.pod.uid")),
    _x("k8s.pod.uid", F.CHARBUF, "pod uid", _k8s_value("pod", "uid", "io.kubernetes.pod.uid")),
    _x("k8s.pod.sandbox_id", F.CHARBUF, "pod sandbox id (12 characters)", _make_sandbox(False)),
    _x("k8s.pod.full_sandbox_id", F.CHARBUF, "full pod sandbox id", _make_sandbox(True)),
    _m("k8s.pod.label", F.CHARBUF, "one pod label ([key])", _make_pod_label, arg=_REQ),
    _x("k8s.pod.labels", F.CHARBUF, "pod labels as key:value, comma separated", _pod_labels),
    _x("k8s.pod.ip", F.CHARBUF, "pod IPv4 address", _pod_fallback("ip", "ip")),
    _x("k8s.pod.cni.json", F.CHARBUF, "pod CNI result as JSON text",
       _pod_fallback("cni_json", "cni_json")),
    *(
        _x(f"k8s.{kind}.{what}", F.CHARBUF, _DEPRECATED_K8S, _none)
        for kind in ("rc", "svc")
        for what in ("name", "id")
    ),
    _m("k8s.rc.label", F.CHARBUF, _DEPRECATED_K8S, simple(_none), arg=_REQ),
    _x("k8s.rc.labels", F.CHARBUF, _DEPRECATED_K8S, _none),
    _m("k8s.svc.label", F.CHARBUF, _DEPRECATED_K8S, simple(_none), arg=_REQ),
    _x("k8s.svc.labels", F.CHARBUF, _DEPRECATED_K8S, _none),
    _x("k8s.ns.id", F.CHARBUF, _DEPRECATED_K8S, _none),
    _m("k8s.ns.label", F.CHARBUF, "one namespace label ([key]), from the namespaces metadata "
       "table (as k8smeta.ns.label)", _make_ns_label, arg=_REQ),
    _x("k8s.ns.labels", F.CHARBUF, "namespace labels as key:value, comma separated (from the "
       "namespaces metadata table)", _ns_labels),
    *(
        f
        for kind in ("rs", "deployment")
        for f in (
            _x(f"k8s.{kind}.name", F.CHARBUF, _DEPRECATED_K8S, _none),
            _x(f"k8s.{kind}.id", F.CHARBUF, _DEPRECATED_K8S, _none),
            _m(f"k8s.{kind}.label", F.CHARBUF, _DEPRECATED_K8S, simple(_none), arg=_REQ),
            _x(f"k8s.{kind}.labels", F.CHARBUF, _DEPRECATED_K8S, _none),
        )
    ),
)  # fmt: skip

#: The syscall source's own fields (the generic evt.* ones are in common.py).
FIELDS: tuple[FieldDef, ...] = tuple(
    replace(f, ops=ALLOWED_OPS[f.name]) if f.name in ALLOWED_OPS else f
    for f in (
        _EVT_FIELDS
        + _PROC_FIELDS
        + _USER_FIELDS
        + _FD_FIELDS
        + _FSPATH_FIELDS
        + _FDLIST_FIELDS
        + _CONTAINER_FIELDS
    )
)

#: Fields the container plugin marks as suggested outputs (Falco appends them by default).
SUGGESTED_OUTPUT_FIELDS: tuple[str, ...] = (
    "container.id", "container.name", "container.image.repository", "container.image.tag",
    "k8s.pod.name", "k8s.ns.name",
)  # fmt: skip


# --------------------------------------------------------------------------------------
# static tables taken from the libs event table (driver/event_table.c), the syscall list
# (driver/ppm_events_public.h PPM_SC_*) and libsinsp's errno names
# --------------------------------------------------------------------------------------

_EVENT_NAMES = """
NA _llseek _newselect _sysctl accept accept4 access acct add_key adjtimex alarm arch_prctl
asyncevent bdflush bind bpf brk cachestat capget capset chdir chmod chown chroot
clock_adjtime clock_getres clock_gettime clock_nanosleep clock_settime clone clone3 close
close_range connect container copy_file_range cpu_hotplug creat create_module delete_module
drop dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait
epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fallocate fanotify_init fanotify_mark fchdir fchmod fchmodat
fchmodat2 fchown fchownat fcntl fcntl64 fdatasync fgetxattr file_getattr file_setattr
finit_module flistxattr flock fork fremovexattr fsconfig fsetxattr fsmount fsopen fspick
fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate futex futex_requeue futex_wait
futex_waitv futex_wake futimesat get_kernel_syms get_mempolicy get_robust_list
get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getitimer getpeername getpgid getpgrp getpid getpmsg getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname
getsockopt gettid gettimeofday getuid getuid32 getxattr getxattrat groupadded groupdeleted
idle infra init_module inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel io_destroy io_getevents io_pgetevents io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ioctl ioperm iopl ioprio_get ioprio_set ipc k8s kcmp
kexec_file_load kexec_load keyctl kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lgetxattr link linkat listen listmount listns listxattr
listxattrat llistxattr llseek lookup_dcookie lremovexattr lseek lsetxattr lsm_get_self_attr
lsm_list_modules lsm_set_self_attr lstat lstat64 madvise map_shadow_stack mbind membarrier
memfd_create memfd_secret mesos migrate_pages mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 modify_ldt mount mount_setattr move_mount move_pages mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap mseal msgctl
msgget msgrcv msgsnd msync multiplexer munlock munlockall munmap na_1 name_to_handle_at
nanosleep newfstatat nfsservctl nice notification oldfstat oldlstat oldolduname oldstat
olduname open open_by_handle_at open_tree open_tree_attr openat openat2 page_fault
page_fault_kernel page_fault_user pause pciconfig_iobase pciconfig_read pciconfig_write
perf_event_open personality pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 pivot_root
pkey_alloc pkey_free pkey_mprotect pluginevent poll ppoll prctl pread pread64 preadv preadv2
prlimit prlimit64 process_madvise process_mrelease process_vm_readv process_vm_writev
procexit procinfo pselect6 ptrace pwrite pwrite64 pwritev pwritev2 query_module quotactl
quotactl_fd read readahead readdir readlink readlinkat readv reboot recv recvfrom recvmmsg
recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2 request_key
restart_syscall riscv_flush_icache riscv_hwprobe rmdir rseq rseq_slice_yield rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_tgsigqueueinfo rtas s390_guarded_storage s390_pci_mmio_read s390_pci_mmio_write
s390_runtime_instr s390_sthyi scapevent sched_get_priority_max sched_get_priority_min
sched_getaffinity sched_getattr sched_getparam sched_getscheduler sched_process_exit
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_switch sched_yield seccomp select semctl semget semop semtimedop send sendfile
sendfile64 sendmmsg sendmsg sendto set_mempolicy set_mempolicy_home_node set_robust_list
set_thread_area set_tid_address setdomainname setfsgid setfsuid setgid setgid32 setgroups
sethostname setitimer setns setpgid setpriority setregid setresgid setresgid32 setresuid
setresuid32 setreuid setrlimit setsid setsockopt settimeofday setuid setuid32 setxattr
setxattrat sgetmask shmat shmctl shmdt shmget shutdown sigaction sigaltstack signal
signal_deliver signaldeliver signalfd signalfd4 sigpending sigprocmask sigreturn sigsuspend
socket socketcall socketpair splice spu_create spu_run ssetmask stat stat64 statfs statfs64
statmount statx stime subpage_prot swapcontext swapoff swapon switch switch_endian symlink
symlinkat sync sync_file_range sync_file_range2 syncfs sys_debug_setcontext syscall sysfs
sysinfo syslog task task_file_anon_inode task_file_directory task_file_memfd task_file_pipe
task_file_regular task_file_socket_inet task_file_socket_inet6 task_file_socket_netlink
task_file_socket_unix tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_settime timerfd timerfd_create timerfd_gettime timerfd_settime times
tkill tracer truncate ugetrlimit umask umount umount2 uname unknown unlink unlinkat unshare
uprobe uretprobe uselib useradded userdeleted userfaultfd ustat utime utimensat utimes vfork
vhangup vm86 vmsplice wait4 waitid waitpid write writev
"""

_NON_SYSCALL_EVENTS = """
NA asyncevent container cpu_hotplug drop groupadded groupdeleted infra k8s mesos
notification page_fault pluginevent procexit procinfo scapevent signaldeliver switch task
task_file_anon_inode task_file_directory task_file_memfd task_file_pipe task_file_regular
task_file_socket_inet task_file_socket_inet6 task_file_socket_netlink task_file_socket_unix
tracer useradded userdeleted
"""

_PARAM_TYPES = {
    "abstime": """
        exe_ino_ctime exe_ino_mtime start_time
    """,
    "b": """
        addr args cgroups data env fds img msgcontrol tuple value_bytebuf
    """,
    "errno": """
        maxevents res ret status
    """,
    "fd": """
        dirfd fd fd1 fd2 fd_in fd_out fdin fdout in_fd linkdirfd mountfd newdir newdirfd
        newfd olddir olddirfd oldfd out_fd pid_fd target_fd
    """,
    "flags": """
        cmd creat_flags domain dqi_flags error fd_type features flags how level nstype op
        opcode operation option optname prot quota_fmt quota_fmt_out resolve resource
        sem_flg_0 sem_flg_1 semflg whence
    """,
    "i16": """
        sem_op_0 sem_op_1
    """,
    "i32": """
        aux backlog key nsems semid semnum tty
    """,
    "i64": """
        arg2 arg2_int arg3 arg4 arg5 cur max newcur newmax oldcur oldmax res_or_fd timeout
        val
    """,
    "ip": """
        local_ip remote_ip
    """,
    "p": """
        dir exepath filename linkpath name newpath oldpath path pathname root sun_path
        trusted_exepath
    """,
    "pid": """
        dpid next pgid pid ppid ptid reaper_tid sid spid tid vpgid vpid vtgid vtid
    """,
    "port": """
        local_port remote_port
    """,
    "reltime": """
        dqb_btime dqb_itime dqi_bgrace dqi_igrace interval
    """,
    "s": """
        arg2_str argv comm container_id cwd desc description exe home image json
        quotafilepath scope shell special tags target uargs value_charbuf
    """,
    "u16": """
        ID nativeID sem_num_0 sem_num_1 sk_proto sk_type
    """,
    "u32": """
        action cpu cq_entries dev egid entries euid event_type first gid id last loginuid
        mask min_complete mnt_id mode nr_args nsops optlen plugin_id proto queuelen queuemax
        ratio rgid ruid sgid sigmask size sq_entries sq_thread_cpu sq_thread_idle suid
        to_submit type uid vm_rss vm_size vm_swap
    """,
    "u64": """
        arg argument cap_effective cap_inheritable cap_permitted cpu_sys cpu_usr
        dqb_bhardlimit dqb_bsoftlimit dqb_curspace dqb_ihardlimit dqb_isoftlimit event_data
        exe_ino exe_ino_num fdlimit initval ino ino_num ip len length offin offout offset
        peer pgft_maj pgft_min pgoffset pidns_init_start_ts pos request sk_pointer source
    """,
    "u8": """
        clockid core queuepct sig
    """,
}

_CATEGORY = {
    "IPC": """
        eventfd eventfd2 futex inotify_init inotify_init1 pipe pipe2 process_vm_readv
        process_vm_writev socketpair
    """,
    "file": """
        access chdir chmod chown copy_file_range creat fchdir fchmod fchmodat fchown
        fchownat flock fstat fstat64 getcwd getdents getdents64 lchown link linkat llseek
        lseek lstat lstat64 mkdir mkdirat mount newfstatat open open_by_handle_at openat
        openat2 rename renameat renameat2 rmdir stat stat64 symlink symlinkat
        task_file_anon_inode task_file_directory task_file_memfd task_file_pipe
        task_file_regular task_file_socket_inet task_file_socket_inet6
        task_file_socket_netlink task_file_socket_unix umount umount2 unlink unlinkat
        userfaultfd
    """,
    "internal": """
        drop infra k8s mesos procinfo scapevent
    """,
    "io": """
        close close_range dup dup2 dup3 fcntl io_uring_enter io_uring_register
        io_uring_setup ioctl pread preadv pwrite pwritev read readv recv recvfrom recvmmsg
        recvmsg send sendfile sendmmsg sendmsg sendto splice write writev
    """,
    "memory": """
        brk memfd_create mlock mlock2 mlockall mmap mmap2 mprotect munlock munlockall munmap
    """,
    "net": """
        accept accept4 bind connect getpeername getsockname getsockopt listen setsockopt
        shutdown socket
    """,
    "other": """
        asyncevent bpf delete_module finit_module init_module keyctl mknod mknodat
        notification page_fault pluginevent seccomp syscall tracer
    """,
    "process": """
        capset chroot clone clone3 container execve execveat fork getrlimit groupadded
        groupdeleted pidfd_getfd pidfd_open prctl prlimit procexit ptrace semctl semget
        semop setns setpgid setrlimit setsid task unshare useradded userdeleted vfork
    """,
    "scheduler": """
        switch
    """,
    "signal": """
        kill signaldeliver signalfd signalfd4 tgkill tkill
    """,
    "sleep": """
        nanosleep
    """,
    "system": """
        cpu_hotplug fsconfig
    """,
    "time": """
        timerfd_create
    """,
    "unknown": """
        NA
    """,
    "user": """
        getegid geteuid getgid getresgid getresuid getuid quotactl setgid setregid setresgid
        setresuid setreuid setuid
    """,
    "wait": """
        epoll_create epoll_create1 epoll_wait poll ppoll select
    """,
}

_FD_EVENTS_TXT = """
accept accept4 bind bpf close connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 eventfd eventfd2 fchdir fchmod fchmodat fchown fchownat fcntl finit_module
flock fsconfig fstat getdents getdents64 getsockopt inotify_init inotify_init1
io_uring_enter io_uring_register io_uring_setup ioctl listen llseek lseek memfd_create
mkdirat mknodat mmap mmap2 newfstatat open open_by_handle_at openat openat2 pidfd_getfd
pidfd_open pipe pipe2 pread preadv pwrite pwritev read readv recv recvfrom recvmmsg recvmsg
send sendfile sendmmsg sendmsg sendto setns setsockopt shutdown signalfd signalfd4 socket
socketpair splice symlinkat timerfd_create unlinkat userfaultfd write writev
"""

_READ_EVENTS_TXT = """
copy_file_range finit_module pread preadv read readv recv recvfrom recvmmsg recvmsg
"""

_WRITE_EVENTS_TXT = """
copy_file_range pwrite pwritev send sendmmsg sendmsg sendto write writev
"""

_WAIT_EVENTS_TXT = """
epoll_wait nanosleep poll ppoll select
"""

# errno names by number (libsinsp errno_to_str); "-" marks numbers it does not name
_ERRNO_1 = """
EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG
ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY
ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR
EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE
ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG
ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK
EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP
EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET
ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT
ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL
EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED
"""
_ERRNO_512 = """
ERESTARTSYS ERESTARTNOINTR ERESTARTNOHAND ENOIOCTLCMD ERESTART_RESTARTBLOCK - - - -
EBADHANDLE ENOTSYNC EBADCOOKIE ENOTSUPP ETOOSMALL ESERVERFAULT EBADTYPE EJUKEBOX EIOCBQUEUED
EIOCBRETRY
"""

_EVENT_CATEGORY: dict[str, str] = {
    name: cat for cat, names in _CATEGORY.items() for name in names.split()
}
_EVENT_TABLE_NAMES = frozenset(_EVENT_CATEGORY)
_NON_SYSCALL = _words(_NON_SYSCALL_EVENTS)
_FD_EVENTS = _words(_FD_EVENTS_TXT)
_READ_EVENTS = _words(_READ_EVENTS_TXT)
_WRITE_EVENTS = _words(_WRITE_EVENTS_TXT)
_WAIT_EVENTS = _words(_WAIT_EVENTS_TXT)
#: parameter name -> type code of its first definition in the event table (libsinsp types
#: evt.rawarg.X the same way); also the set of names evt.arg.X accepts
_PARAM_TYPE: dict[str, str] = {
    name: code for code, names in _PARAM_TYPES.items() for name in names.split()
}
_FD_PARAMS = frozenset(n for n, code in _PARAM_TYPE.items() if code == "fd")
_ERRNO_PARAMS = frozenset(n for n, code in _PARAM_TYPE.items() if code == "errno")
# events whose return value ("res") is an fd
_FD_RES_EVENTS = _words(
    "dup dup2 dup3 eventfd eventfd2 fcntl inotify_init inotify_init1 signalfd signalfd4 "
    "timerfd_create"
)
_ERRNO: dict[int, str] = {
    base + i: name
    for base, names in ((1, _ERRNO_1), (512, _ERRNO_512))
    for i, name in enumerate(names.split())
    if name != "-"
}

#: Every name ``evt.type`` accepts (libsinsp's validate_filter_value): the event-table
#: names and the syscall names.
EVENT_TYPES: frozenset[str] = _words(_EVENT_NAMES)

"""One ring-buffer batch of records -> the JSON envelopes of its events (docs/events.md).

The batch arrives as one numpy array; the columns every event needs are turned into
Python lists at once, strings are sliced out of one bytes copy of the batch, and each event
is built by byte formatting around the thread's pre-serialized context
(:mod:`.proctable`). ``openat`` - by far the most frequent event - has its own template;
the other syscalls build a small dict. Lifecycle records (fork, exec, exit) update the
process table in ring order, so each event carries the context of its moment. Within one
batch record a context is written once; the thread's later events there refer to it
(``"ctx": j``, :mod:`falconet.shared_context`), which makes a compiler's burst of opens
about six times smaller.

Parameters follow the libs event table of the Falco >= 0.42 exit events (every parameter
on the one event, in table order); see :mod:`.params` for how values are rendered.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from falconet import shared_context

from . import params as P
from . import records as R
from .columns import Batch
from .containers import id_from_chunk
from .proctable import MAX_FDS, Proc, ProcessTable, Thread
from .sockets import KernelSock, UserAddr, socket_fd
from .syscalls import NAME, NR

log = logging.getLogger("falconet.sensor.syscall")

_DATA = 160  # offset of data[] in a record
_S_IFMT, _S_IFDIR, _S_IFSOCK, _S_IFIFO = 0o170000, 0o040000, 0o140000, 0o010000
_AT_FDCWD = -100
_SEGMENT_CACHE = 65536
_INTS = {v: b"%d" % v for v in range(-4096, 4096)}  # fds, errnos, small numbers

#: one event's envelope as (up to its context, the thread's context fragment, the rest)
Envelope = tuple[bytes, bytes, bytes]


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _cstr(buf: bytes) -> bytes:
    end = buf.find(b"\0")
    return buf if end < 0 else buf[:end]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class Encoder:
    """Turns batches of records into envelopes, keeping the process table."""

    def __init__(self, host: str, table: ProcessTable, emit: frozenset[str], boot_to_epoch: int,
                 max_events: int = 500, max_bytes: int = 512 * 1024,
                 share_context: bool = True) -> None:  # fmt: skip
        self.host = host
        hj = orjson.dumps(host)  # the host as a JSON string
        self._hj, self._hid = hj.replace(b"%", b"%%"), hj[1:-1].replace(b"%", b"%%")  # % templates
        self.table = table
        self.emit = emit
        self.emit_nrs = frozenset(NR[t] for t in emit if t in NR)
        self.boot_to_epoch = boot_to_epoch
        self.num = 0
        self.chunks: dict[int, list[tuple[int, int, bytes]]] = {}  # by tid, until their exec
        self._heads: dict[str, bytes] = {}
        self._segments: dict[tuple[bytes, int, int, int], tuple[bytes, bytes, Any, int]] = {}
        self._oa_head = b'{"v":1,"source":"syscall","type":"openat","ts":'
        self._oa_mid = b',"host":' + hj + b',"id":"' + hj[1:-1] + b"-"
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        #: share each thread context once per record (falconet.shared_context)
        self.share_context = share_context
        self._shared: dict[bytes, int] = {}  # context fragment -> index of its first event
        self._count = 0
        self._size = 0
        self._records: list[tuple[bytes, int]] = []
        #: where sealed records go at once (else they wait for take())
        self.on_record: Callable[[tuple[bytes, int]], None] | None = None
        self._handlers: dict[int, Callable[[Batch, int, Thread], Envelope | None]] = {
            NR[name]: fn for names, fn in (
                (("open", "creat", "openat2"), self._open),
                (("unlink", "rmdir", "mkdir", "chmod", "unlinkat", "mkdirat", "fchmodat"),
                 self._path1),
                (("rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat"),
                 self._path2),
                (("dup", "dup2", "dup3", "fchmod", "setns", "finit_module", "listen"), self._fd),
                (("connect", "sendto", "sendmsg", "recvfrom", "recvmsg", "accept", "accept4"),
                 self._net),
                (("socket", "ptrace", "init_module", "setuid", "setgid", "unshare", "bpf",
                  "userfaultfd", "execve", "execveat", "chdir", "fchdir"), self._misc),
            ) for name in names
        }  # fmt: skip

    # -- envelope pieces ----------------------------------------------------------------------
    def _head(self, etype: str) -> bytes:
        h = self._heads.get(etype)
        if h is None:
            h = (
                b'{"v":1,"source":"syscall","type":"' + etype.encode() + b'","ts":%d,"host":'
                + self._hj + b',"id":"' + self._hid + b'-%d-%d","num":%d,"event":'
            )  # fmt: skip
            self._heads[etype] = h
        return h

    def _envelope(self, etype: str, ts: int, tid: int, args: dict[str, Any],
                  frag: bytes, *, res: int | None = None, raw: dict[str, Any] | None = None,
                  fd: dict[str, Any] | bytes | None = None) -> Envelope:  # fmt: skip
        """The envelope in three pieces: up to the context, the context, the rest (so that
        :meth:`_add` can put a reference to an earlier copy of the context instead)."""
        ev: dict[str, Any] = {"args": args}
        if raw:
            ev["rawargs"] = raw
        if res is not None:
            ev["res"] = res
        self.num += 1
        head = self._head(etype) % (ts, ts, tid, self.num) + orjson.dumps(ev)[:-1] + b","
        if fd is None:
            return head, frag, b"}}"
        return head, frag, b',"fd":' + (fd if isinstance(fd, bytes) else orjson.dumps(fd)) + b"}}"

    def _path(self, p: Proc, raw: bytes, dirfd: int = _AT_FDCWD) -> tuple[str, str | None]:
        """(absolute path as libsinsp resolves it, the raw path when it differs)."""
        text = _text(raw)
        if not text or text[0] == "/":
            full = ProcessTable.resolve("/", text) if text else text
            return full, (text if full != text else None)
        base = p.cwd
        if dirfd != _AT_FDCWD:
            entry = p.fds.get(dirfd)
            base = orjson.loads(entry[1]) + "/" if entry is not None else "<UNKNOWN>/"
        return ProcessTable.resolve(base, text), text

    # -- Kafka records ---------------------------------------------------------------------------
    # Events go straight into the current batch record (a JSON array, docs/events.md "On
    # Kafka") as a list of byte pieces joined once per record: no bytes object per event.
    # ``_parts`` holds, per event, a separator then its pieces; the first separator
    # becomes "[" when the record is sealed.

    @property
    def waiting(self) -> int:
        """Events in the record being built."""
        return self._count

    def _add(self, env: Envelope) -> None:
        head, frag, tail = env
        if self.share_context:
            j = self._shared.get(frag)
            if j is None:
                self._shared[frag] = self._count
            else:
                frag = b'"ctx":%d' % j
        self._parts += (b",", head, frag, tail)
        self._count += 1
        self._size += len(head) + len(frag) + len(tail) + 1
        if self._count >= self.max_events or self._size >= self.max_bytes:
            self.seal()

    def seal(self) -> None:
        """Finish the record being built (if any) and queue it for :meth:`take`."""
        if not self._count:
            return
        parts = self._parts
        parts[0] = b"["
        parts.append(b"]")
        record = (b"".join(parts), self._count)
        if self.on_record is not None:
            self.on_record(record)
        else:
            self._records.append(record)
        parts.clear()
        self._shared.clear()
        self._count = 0
        self._size = 0

    def take(self) -> list[tuple[bytes, int]]:
        """The finished records, (JSON array, events), oldest first."""
        out, self._records = self._records, []
        return out

    def envelopes(self, recs: np.ndarray) -> list[bytes]:
        """Encode ``recs`` and return each envelope on its own (tests, tools)."""
        self.encode(recs)
        self.seal()
        out: list[bytes] = []
        for payload, _n in self.take():
            batch = orjson.loads(payload)
            problems = shared_context.resolve(batch)
            if problems:
                raise ValueError(f"the encoder wrote bad context references: {problems}")
            out += [orjson.dumps(e) for e in batch]
        return out

    # -- the batch ------------------------------------------------------------------------------
    def encode(self, recs: np.ndarray) -> None:
        """Add the events of ``recs`` (ring order) to the batch records, updating the table."""
        if not len(recs):
            return
        b = Batch(recs, self.boot_to_epoch)
        table = self.table
        threads = table.threads
        emit_nrs = self.emit_nrs
        handlers = self._handlers
        fast_openat = 257 in emit_nrs
        blob, stride, first = b.blob, b.stride, b.hdr + _DATA
        segs = self._segments
        oa_head, oa_mid, oa_fd = self._oa_head, self._oa_mid, b',"event":{"args":{"fd":'
        track = table.track_fds
        ints = _INTS
        parts = self._parts
        ext = parts.extend
        max_events, max_bytes = self.max_events, self.max_bytes
        num, count, size = self.num, self._count, self._size
        # the thread of the previous openat, with its pieces in locals; any change to the
        # table (a lifecycle record, a handler, a rebuilt fragment) resets ``last``
        last = -1
        idnum = frag = frag_fd = b""
        flen = 0
        shared = self._shared if self.share_context else None
        fds: dict[int, Any] = {}
        for i, k, tk, ret, aux, ts, okey, dev, ino in zip(
            itertools.count(), b.kind, b.tkey, b.ret, b.aux, b.ts, b.okey, b.x0, b.x1
        ):
            if k == 257 and fast_openat:
                if tk != last:
                    tid = b.tid[i]
                    th = threads.get(tid)
                    if th is None or th.key != b.key[i] or th.epoch != table.epoch:
                        th = self._thread(b, i)
                    last = tk
                    idnum, frag, fds = th.idnum, th.frag, th.proc.fds
                    proc = th.proc
                # openat, inline: the most frequent event by far. Everything but the fd
                # number, the time and the thread comes from a cache keyed by what the
                # kernel reported (path, flags, mode, dirfd, device, inode).
                base = i * stride + first
                raw = blob[base : base + aux - 1] if aux > 1 else b""
                ck = (raw, okey, ino, dev)
                seg = segs.get(ck)
                if seg is None:
                    seg = self._openat_segments(b, i, proc, raw, ck)
                rb = ints.get(ret) or b"%d" % ret
                tsb = b"%d" % ts
                num += 1
                # the context written once per record, as in _add (inline: the hot path)
                j = shared.get(frag) if shared is not None else None
                if j is None:
                    frag_fd, flen = th.frag_fd, th.flen
                    if shared is not None:
                        shared[frag] = count
                else:
                    frag_fd = b',"ctx":%d,"fd":{"num":' % j
                    flen = len(frag_fd)
                if ret >= 0:
                    ext((b",", oa_head, tsb, oa_mid, tsb, idnum, b"%d" % num, oa_fd, rb, seg[0],
                         rb, frag_fd, rb, seg[1]))  # fmt: skip
                    if track:
                        if len(fds) >= MAX_FDS and ret not in fds:
                            fds.pop(next(iter(fds)))
                        fds[ret] = seg[2]
                else:
                    ext((b",", oa_head, tsb, oa_mid, tsb, idnum, b"%d" % num, oa_fd, rb, seg[0],
                         rb, frag_fd, b"-1}}}"))  # fmt: skip
                count += 1
                size += seg[3] + flen
                if count >= max_events or size >= max_bytes:
                    self._count, self._size = count, size
                    self.seal()
                    count = size = 0
                continue
            # everything else: a method per kind, building a bytes envelope
            self.num, self._count, self._size = num, count, size
            if k >= 1000:  # FN_K_*: lifecycle
                env = self._lifecycle(b, i, k)
            else:
                tid = b.tid[i]
                th = threads.get(tid)
                if th is None or th.key != b.key[i] or th.epoch != table.epoch:
                    th = self._thread(b, i)
                h = handlers.get(k)
                env = h(b, i, th) if h is not None else None
                if k not in emit_nrs:
                    env = None
            if env is not None:
                self._add(env)
            num, count, size = self.num, self._count, self._size
            last = -1  # the table may have changed (exec, exit, chdir)
        self.num, self._count, self._size = num, count, size

    def _thread(self, b: Batch, i: int) -> Thread:
        r = b.recs[i]
        return self.table.thread(
            b.tid[i], b.tgid[i], b.key[i], bytes(r["comm"]), int(r["uid"]), int(r["gid"]),
            int(r["cap_eff"]),
        )

    # -- openat, the hot path ------------------------------------------------------------------
    def _openat_segments(self, b: Batch, i: int, p: Proc, raw: bytes,
                         key: tuple[bytes, int, int, int]) -> tuple[bytes, bytes, Any, int]:  # fmt: skip
        """The cached pieces of an openat envelope: the arguments after ``fd`` up to
        ``"res":``, the fd object after its number, and the fd-table entry."""
        ret = b.ret[i]
        dirfd = b.dirfd[i]
        lflags, mode = b.a2[i], b.a3[i]
        info = b.x2[i] if ret >= 0 else 0
        created = bool(info & R.FILE_CREATED)
        ppm, ftext = P.open_flags(lflags, created)
        full, rel = self._path(p, raw, dirfd)
        jname = orjson.dumps(full)
        dev = P.encode_dev(b.x0[i]) if ret >= 0 else 0
        ino = b.x1[i] if ret >= 0 else 0
        rawargs = b'"flags":%d' % ppm
        if rel is not None:
            rawargs += b',"name":' + orjson.dumps(rel)
        args = b',"dirfd":%d,"name":%s,"flags":"%s","mode":"%s","dev":"%X","ino":%d},"rawargs":{%s},"res":' % (
            dirfd, jname, ftext.encode(), P.open_mode(lflags, mode).encode(), dev, ino, rawargs,
        )  # fmt: skip
        ftype = b"directory" if info & _S_IFMT == _S_IFDIR else b"file"
        nameraw = b',"nameraw":' + orjson.dumps(rel) if rel is not None else b""
        fdobj = b',"type":"%s","name":%s%s,"dev":%d,"ino":%d}}}' % (ftype, jname, nameraw, dev, ino)
        fixed = len(self._oa_head) + len(self._oa_mid) + 80  # ts twice, tid, num, fd...
        seg = (args, fdobj, (ino, jname, None) if ret >= 0 else None, len(args) + len(fdobj) + fixed)
        if rel is None:  # a relative path depends on the cwd: not cacheable
            if len(self._segments) >= _SEGMENT_CACHE:
                self._segments.clear()
            self._segments[key] = seg
        return seg

    # -- files ---------------------------------------------------------------------------------
    def _file_fd(self, b: Batch, i: int, p: Proc, num: int, name: str | None) -> dict[str, Any]:
        fd: dict[str, Any] = {"num": num}
        if b.flags[i] & R.F_FILE:
            info = b.x2[i]
            t = info & _S_IFMT
            fd["type"] = "directory" if t == _S_IFDIR else "pipe" if t == _S_IFIFO else "file"
            if name is not None:
                fd["name"] = name
            fd["dev"], fd["ino"] = P.encode_dev(b.x0[i]), b.x1[i]
        return fd

    def _open(self, b: Batch, i: int, th: Thread) -> Envelope:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        raw = _cstr(b.data(i))
        full, rel = self._path(p, raw, _i32(b.a0[i]) if k == NR["openat2"] else _AT_FDCWD)
        if k == NR["openat2"]:
            lflags, lmode = b.x(i, 3), b.x(i, 4)
        elif k == NR["creat"]:
            lflags, lmode = 0o1101, b.a1[i]  # O_CREAT | O_WRONLY | O_TRUNC
        else:
            lflags, lmode = b.a1[i], b.a2[i]
        info = b.x2[i] if ret >= 0 else 0
        ppm, ftext = P.open_flags(lflags, bool(info & R.FILE_CREATED))
        dev = P.encode_dev(b.x0[i]) if ret >= 0 else 0
        ino = b.x1[i] if ret >= 0 else 0
        args: dict[str, Any] = {"fd": ret}
        if k == NR["openat2"]:
            args["dirfd"] = _i32(b.a0[i])
        args["name"] = full
        if k != NR["creat"]:
            args["flags"] = ftext
        args["mode"] = P.open_mode(lflags, lmode)
        if k == NR["openat2"]:
            rppm, rtext = P.resolve_flags(b.x(i, 5))
            args["resolve"] = rtext
        args["dev"] = format(dev, "X")
        args["ino"] = ino
        raw_args: dict[str, Any] = {} if k == NR["creat"] else {"flags": ppm}
        if rel is not None:
            raw_args["name"] = rel
        if ret >= 0:
            fd = self._file_fd(b, i, p, ret, full)
            if rel is not None:
                fd["nameraw"] = rel
            if self.table.track_fds:
                self.table.set_fd(p, ret, ino, orjson.dumps(full), None)
        else:
            fd = {"num": -1}
        return self._envelope(NAME[k], b.ts[i], b.tid[i], args, th.frag, res=ret, raw=raw_args, fd=fd)

    def _path1(self, b: Batch, i: int, th: Thread) -> Envelope:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        name = NAME[k]
        at = name.endswith("at")
        dirfd = _i32(b.a0[i]) if at else _AT_FDCWD
        full, rel = self._path(p, _cstr(b.data(i)), dirfd)
        key = {"unlinkat": "name", "chmod": "filename", "fchmodat": "filename"}.get(name, "path")
        args: dict[str, Any] = {"res": ret}
        if at:
            args["dirfd"] = dirfd
        args[key] = full
        mode = b.a2[i] if at else b.a1[i]
        if name == "unlinkat":
            args["flags"] = P.render_flags(b.a2[i] & 0xFFFFFFFF, P.UNLINKAT_FLAGS)
        elif name in ("mkdir", "mkdirat"):
            args["mode"] = mode & 0xFFFFFFFF
        elif name in ("chmod", "fchmodat"):
            args["mode"] = P.chmod_mode(mode)
        raw = {key: rel} if rel is not None else None
        if name in ("chmod", "fchmodat"):
            raw = {**(raw or {}), "mode": mode & 0o7777}
        return self._envelope(name, b.ts[i], b.tid[i], args, th.frag, res=ret, raw=raw)

    def _path2(self, b: Batch, i: int, th: Thread) -> Envelope:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        name = NAME[k]
        first = _cstr(b.data(i, 0, R.PATH2_OFF))
        second = _cstr(b.data(i, R.PATH2_OFF, R.DATA_SIZE - R.PATH2_OFF))
        args: dict[str, Any] = {"res": ret}
        raw: dict[str, Any] = {}
        if name in ("symlink", "symlinkat"):
            newdir = _i32(b.a1[i]) if name == "symlinkat" else _AT_FDCWD
            link, rel = self._path(p, second, newdir)
            args["target"] = _text(first)
            if name == "symlinkat":
                args["linkdirfd"] = newdir
            args["linkpath"] = link
            if rel is not None:
                raw["linkpath"] = rel
        else:
            at = name in ("renameat", "renameat2", "linkat")
            olddir = _i32(b.a0[i]) if at else _AT_FDCWD
            newdir = _i32(b.a2[i]) if at else _AT_FDCWD
            old, orel = self._path(p, first, olddir)
            new, nrel = self._path(p, second, newdir)
            dkey = "dir" if name == "linkat" else "dirfd"
            if at:
                args["old" + dkey] = olddir
            args["oldpath"] = old
            if at:
                args["new" + dkey] = newdir
            args["newpath"] = new
            if name == "renameat2":
                args["flags"] = P.render_flags(b.a(i, 4) & 0xFFFFFFFF, P.RENAMEAT2_FLAGS)
            elif name == "linkat":
                args["flags"] = P.render_flags(b.a(i, 4) & 0xFFFFFFFF, P.LINKAT_FLAGS)
            if orel is not None:
                raw["oldpath"] = orel
            if nrel is not None:
                raw["newpath"] = nrel
        return self._envelope(name, b.ts[i], b.tid[i], args, th.frag, res=ret, raw=raw or None)

    # -- fds and sockets ----------------------------------------------------------------------
    def _known_fd(self, b: Batch, i: int, p: Proc, num: int) -> dict[str, Any] | None:
        """The fd object of an existing fd: kernel facts, named from our fd table."""
        if not b.flags[i] & R.F_FILE:
            return None
        if b.flags[i] & R.F_SOCK:
            ks = KernelSock.parse(b.data(i, 0, 48))
            entry = p.fds.get(num)
            role = entry[2] if entry is not None and entry[2] else "client"
            fd, _name = socket_fd(num, ks, None, role)
            return fd
        entry = p.fds.get(num)
        name = orjson.loads(entry[1]) if entry is not None and entry[0] == b.x1[i] else None
        return self._file_fd(b, i, p, num, name)

    def _fd(self, b: Batch, i: int, th: Thread) -> Envelope:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        name = NAME[k]
        num = _i32(b.a0[i])
        fd = self._known_fd(b, i, p, num)
        args: dict[str, Any] = {"res": ret}
        raw: dict[str, Any] | None = None
        if name.startswith("dup"):
            args["oldfd"] = num
            if name != "dup":
                args["newfd"] = _i32(b.a1[i])
            if name == "dup3":
                ppm, text = P.open_flags(b.a2[i] & 0xFFFFFFFF)
                args["flags"] = text
                raw = {"flags": ppm & P.O_CLOEXEC}
            if ret >= 0 and num in p.fds:
                p.fds[ret] = p.fds[num]
        elif name == "fchmod":
            args.update(fd=num, mode=P.chmod_mode(b.a1[i]))
            raw = {"mode": b.a1[i] & 0o7777}
        elif name == "setns":
            args.update(fd=num, nstype=P.render_flags(b.a1[i] & 0xFFFFFFFF, P.CLONE_FLAGS))
        elif name == "listen":
            args.update(fd=num, backlog=_i32(b.a1[i]))
            if b.flags[i] & R.F_SOCK:
                fd, _n = socket_fd(num, KernelSock.parse(b.data(i, 0, 48)), None, "bound")
        else:  # finit_module
            uargs = _text(_cstr(b.data(i, R.UADDR_OFF, R.DATA_SIZE - R.UADDR_OFF)))
            args.update(fd=num, uargs=uargs,
                        flags=P.render_flags(b.a2[i] & 0xFFFFFFFF, P.FINIT_MODULE_FLAGS))  # fmt: skip
        return self._envelope(name, b.ts[i], b.tid[i], args, th.frag, res=ret, raw=raw, fd=fd)

    def _net(self, b: Batch, i: int, th: Thread) -> Envelope:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        name = NAME[k]
        fl = b.flags[i]
        ks = KernelSock.parse(b.data(i, 0, 48)) if fl & R.F_SOCK else None
        ua = UserAddr.parse(b.data(i, R.UADDR_OFF, 128)) if fl & R.F_UADDR else None
        if name in ("accept", "accept4"):
            num, role = ret, "server"
        else:
            num = _i32(b.a0[i])
            entry = p.fds.get(num)
            role = "client"
            if name.startswith("recv") and (
                (entry is not None and entry[2] == "server")
                or (entry is None and ua is not None and ks is not None and not ks.rport)
            ):
                role = "server"
        previous = p.fds.get(num)
        prev_name = orjson.loads(previous[1]) if previous is not None and previous[2] else None
        io = name.startswith(("send", "recv"))
        fd, tuple_text = socket_fd(num, ks, ua, role, prev_name, io)
        if ks is None and ua is None:
            fd = {"num": num}
        args: dict[str, Any]
        if name == "connect":
            args = {"res": ret, "tuple": tuple_text, "fd": num, "addr": ua.text() if ua else ""}
        elif name == "sendto":
            args = {"res": ret, "fd": num, "size": b.a2[i] & 0xFFFFFFFF, "tuple": tuple_text}
        elif name == "sendmsg":  # the iovec total is not read: no "size"
            args = {"res": ret, "fd": num, "tuple": tuple_text}
        elif name == "recvfrom":
            args = {"res": ret, "tuple": tuple_text, "fd": num, "size": b.a2[i] & 0xFFFFFFFF}
        elif name == "recvmsg":
            args = {"res": ret, "tuple": tuple_text, "fd": num}
        else:
            args = {"fd": ret, "tuple": tuple_text, "queuepct": 0, "queuelen": 0, "queuemax": 0}
            if name == "accept4":
                args["flags"] = _i32(b.a3[i])
        if num >= 0 and "type" in fd and (ret >= 0 or name == "connect") and self.table.track_fds:
            self.table.set_fd(p, num, 0, orjson.dumps(tuple_text), role)
        return self._envelope(name, b.ts[i], b.tid[i], args, th.frag, res=ret, fd=fd)

    # -- everything else ------------------------------------------------------------------------
    def _misc(self, b: Batch, i: int, th: Thread) -> Envelope | None:
        p, k, ret = th.proc, b.kind[i], b.ret[i]
        name = NAME[k]
        a0 = b.a0[i]
        users = self.table.users
        raw: dict[str, Any] | None = None
        fd: dict[str, Any] | None = None
        if name == "socket":
            args: dict[str, Any] = {
                "fd": ret, "domain": P.render_enum(a0 & 0xFFFFFFFF, P.SOCKET_FAMILIES),
                "type": b.a1[i] & 0xFFFFFFFF, "proto": b.a2[i] & 0xFFFFFFFF,
            }  # fmt: skip
            raw = {"domain": a0 & 0xFFFFFFFF}
            fd = {"num": ret}
        elif name == "ptrace":
            ppm, req = P.ptrace_request(a0)
            target = _i32(b.a1[i])
            tp = self.table.procs.get(target)
            args = {"res": ret, "addr": str(b.a(i, 2)), "data": str(b.a3[i]), "request": req,
                    "pid": tp.name if tp is not None else str(target)}  # fmt: skip
            raw = {"request": ppm, "pid": target}
        elif name == "init_module":
            args = {"res": ret, "length": b.a1[i], "uargs": _text(_cstr(b.data(i)))}
        elif name in ("setuid", "setgid"):
            ident = a0 & 0xFFFFFFFF
            key = "uid" if name == "setuid" else "gid"
            text = users.name_of(ident) if key == "uid" else users.group_text(ident)
            args = {"res": ret, key: text}
            raw = {key: ident}
        elif name == "unshare":
            args = {"res": ret, "flags": P.render_flags(a0 & 0xFFFFFFFF, P.CLONE_FLAGS)}
            raw = {"flags": a0 & 0xFFFFFFFF}
        elif name == "bpf":
            args = {"fd": ret, "cmd": P.bpf_command(a0 & 0xFFFFFFFF)}
            raw = {"cmd": a0 & 0xFFFFFFFF}
        elif name == "userfaultfd":
            ppm, text = P.open_flags(a0 & 0xFFFFFFFF)
            args = {"res": ret, "flags": text.replace("O_RDONLY|", "").replace("O_RDONLY", "")}
        elif name in ("chdir", "fchdir"):
            if ret == 0 and b.flags[i] & R.F_PATHWALK:
                p.cwd = R.components_to_path(_cstr_all(b.data(i), b.aux[i])).rstrip("/") + "/"
                self.table.touch(p)
                th = self._thread(b, i)
            args = {"res": ret}
            if name == "chdir":
                args["path"] = (p.cwd.rstrip("/") or "/") if ret == 0 else _text(_cstr(b.data(i)))
            else:
                args["fd"] = _i32(a0)
        else:  # execve / execveat that failed
            path = _cstr(b.data(i))
            full, rel = self._path(p, path, _i32(a0) if name == "execveat" else _AT_FDCWD)
            args = {"res": ret, "exe": p.exe, "args": " ".join(p.args), "tid": b.tid[i],
                    "pid": p.pid, "ptid": p.ppid, "cwd": p.cwd, "comm": th.name}  # fmt: skip
            if name == "execveat":
                args["dirfd"] = _i32(a0)
            args["filename"] = full
            if rel is not None:
                raw = {"filename": rel}
        return self._envelope(name, b.ts[i], b.tid[i], args, th.frag, res=ret, raw=raw, fd=fd)

    # -- lifecycle ------------------------------------------------------------------------------
    def _lifecycle(self, b: Batch, i: int, k: int) -> Envelope | None:
        if k == R.K_CHUNK:
            aux = b.aux[i]
            body = b.body(i)[: aux & 0xFFFF]
            self.chunks.setdefault(b.tid[i], []).append(((aux >> 24) & 0xFF, (aux >> 16) & 0xFF, body))
            if len(self.chunks) > 4096:  # chunks whose header was lost
                self.chunks.pop(next(iter(self.chunks)))
            return None
        if k == R.K_EXEC:
            return self._exec(b, i)
        if k == R.K_FORK:
            return self._fork(b, i)
        return self._exit(b, i)

    def _exec(self, b: Batch, i: int) -> Envelope | None:
        tid, tgid = b.tid[i], b.tgid[i]
        parts: dict[int, list[tuple[int, bytes]]] = {}
        for what, seq, data in self.chunks.pop(tid, ()):
            parts.setdefault(what, []).append((seq, data))

        def joined(what: int) -> bytes:
            return b"".join(d for _s, d in sorted(parts.get(what, ())))

        r = b.recs[i]
        a = [int(v) for v in r["a"]]
        x = [int(v) for v in r["x"]]
        e = np.frombuffer(b.data(i, 0, 40), dtype="<u8").tolist()
        argv = [_text(s) for s in joined(R.C_ARGV).split(b"\0")]
        if argv and argv[-1] == "" and joined(R.C_ARGV).endswith(b"\0"):
            argv.pop()
        env = [_text(s) for s in joined(R.C_ENV).split(b"\0") if s]
        filename = _text(_cstr(joined(R.C_FILENAME)))
        exepath = R.components_to_path(joined(R.C_EXEPATH)) if R.C_EXEPATH in parts else filename
        cwd = R.components_to_path(joined(R.C_CWD)) if R.C_CWD in parts else None
        cgroup = joined(R.C_CGROUP)
        comm = _text(_cstr(bytes(r["comm"])))
        epoch = self.boot_to_epoch

        def update(p: Proc) -> None:
            p.name = comm
            p.exe = argv[0] if argv else ""
            p.args = argv[1:]
            p.exepath = exepath
            if cwd is not None:
                p.cwd = cwd.rstrip("/") + "/"
            p.ppid = a[1]
            p.pgid, p.sid = a[2] & 0xFFFFFFFF, a[2] >> 32
            p.vpid, p.vpgid = a[3] & 0xFFFFFFFF, a[3] >> 32
            p.loginuid, p.tty = a[4] & 0xFFFFFFFF, a[4] >> 32
            p.start_ts = a[5] + epoch if a[5] else p.start_ts
            p.cap_inh, p.cap_prm = x[0], x[1]
            p.exe_ino, p.exe_ctime, p.exe_mtime = x[2], x[3], x[4]
            p.exe_flags = x[5] & 0xFF
            p.pidns_start = e[0] + epoch if e[0] else 0
            p.fdlimit = e[1]
            if cgroup:
                p.container = id_from_chunk(cgroup)

        p = self.table.exec(tgid, tid, update)
        etype = NAME.get(a[0], "execve")
        if etype not in ("execve", "execveat"):
            etype = "execve"
        if etype not in self.emit:
            return None
        th = self._thread(b, i)
        frag = th.frag.replace(b'"proc":{', b'"proc":{"env":' + orjson.dumps(env) + b",", 1)
        users = self.table.users
        uid, gid = int(r["uid"]), int(r["gid"])
        args: dict[str, Any] = {
            "res": 0, "exe": p.exe, "args": " ".join(p.args), "tid": tid, "pid": tgid,
            "ptid": p.ppid, "cwd": p.cwd, "fdlimit": p.fdlimit, "comm": comm,
            "env": ".".join(env), "tty": p.tty, "vpgid": p.vpgid, "loginuid": p.loginuid,
            "flags": P.render_flags(p.exe_flags, P.EXECVE_FLAGS),
            "cap_inheritable": p.cap_inh, "cap_permitted": p.cap_prm,
            "cap_effective": int(r["cap_eff"]), "exe_ino": p.exe_ino,
            "exe_ino_ctime": p.exe_ctime, "exe_ino_mtime": p.exe_mtime,
            "uid": users.name_of(uid), "trusted_exepath": p.exepath, "pgid": p.pgid,
            "gid": users.group_text(gid),
        }  # fmt: skip
        if etype == "execve":
            args["filename"] = filename
        raw = {"uid": uid, "gid": gid, "flags": p.exe_flags}
        return self._envelope(etype, b.ts[i], tid, args, frag, res=0, raw=raw)

    def _fork(self, b: Batch, i: int) -> Envelope | None:
        r = b.recs[i]
        a = [int(v) for v in r["a"]]
        x0, x1 = b.x0[i], b.x1[i]
        epoch = self.boot_to_epoch
        child = self.table.fork(
            b.tgid[i], a[1], a[2], a[3], a[4] + epoch if a[4] else 0, x0 + epoch if x0 else 0,
            x1, bytes(r["comm"]).rstrip(b"\0"),
        )  # fmt: skip
        etype = NAME.get(a[0], "clone")
        if etype not in self.emit or etype not in ("clone", "clone3", "fork", "vfork"):
            return None
        th = self.table.threads.get(b.tid[i])
        if th is None or th.key != b.key[i] or th.epoch != self.table.epoch:
            th = self._thread(b, i)
        p = th.proc
        args = {
            "res": child.pid, "exe": p.exe, "args": " ".join(p.args), "tid": b.tid[i],
            "pid": p.pid, "ptid": p.ppid, "cwd": p.cwd, "fdlimit": p.fdlimit, "comm": th.name,
            "flags": P.render_flags(a[5] & 0xFFFFFFFF, P.CLONE_FLAGS),
            "uid": int(r["uid"]), "gid": int(r["gid"]), "vtid": child.vpid,
            "vpid": child.vpid, "pidns_init_start_ts": child.pidns_start,
        }  # fmt: skip
        return self._envelope(etype, b.ts[i], b.tid[i], args, th.frag, res=child.pid,
                              raw={"flags": a[5] & 0xFFFFFFFF})  # fmt: skip

    def _exit(self, b: Batch, i: int) -> Envelope | None:
        tid, tgid = b.tid[i], b.tgid[i]
        group_dead = bool(b.flags[i] & R.F_GROUP_DEAD)
        env = None
        if group_dead and "procexit" in self.emit and tgid in self.table.procs:
            th = self.table.threads.get(tid)
            if th is None or th.key != b.key[i] or th.epoch != self.table.epoch:
                th = self._thread(b, i)
            code = b.ret[i]
            args = {"status": code, "ret": (code >> 8) & 0xFF, "sig": code & 0x7F,
                    "core": int(bool(code & 0x80)), "reaper_tid": 0}  # fmt: skip
            env = self._envelope("procexit", b.ts[i], tid, args, th.frag)
        self.table.exit_thread(tid, tgid, group_dead)
        self.chunks.pop(tid, None)
        return env


def _cstr_all(data: bytes, length: int) -> bytes:
    """The first ``length`` bytes of a NUL-separated component list."""
    return data[: max(0, min(length, len(data)))]

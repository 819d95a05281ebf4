"""Syscall parameters as Falco shows them: flag names, modes, enums, addresses.

``evt.arg.flags`` is the text libsinsp prints (``O_RDONLY|O_CLOEXEC``), ``evt.rawarg.flags``
the libs "PPM" number; the kernel gives Linux values, so each converter maps Linux bits
to the PPM ones and renders them the way libsinsp does: names in its table order, each
matched flag's bits removed before the next (``O_RDWR`` hides ``O_RDONLY``/``O_WRONLY``),
enums by exact value. The tables list libs' names and values (driver/flags_table.c,
ppm_events_public.h); the code is ours. Every renderer is memoized: flag values repeat.
"""

from __future__ import annotations

import functools
import ipaddress

Table = tuple[tuple[str, int], ...]

# -- open flags ------------------------------------------------------------------------------
# PPM bits
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_APPEND = 1, 2, 3, 1 << 2, 1 << 3
O_DSYNC, O_EXCL, O_NONBLOCK, O_SYNC, O_TRUNC = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
O_DIRECT, O_DIRECTORY, O_LARGEFILE, O_CLOEXEC = 1 << 9, 1 << 10, 1 << 11, 1 << 12
O_TMPFILE, O_F_CREATED, FD_UPPER_LAYER, FD_LOWER_LAYER = 1 << 13, 1 << 14, 1 << 15, 1 << 16

FILE_FLAGS: Table = (
    ("O_LARGEFILE", O_LARGEFILE), ("O_DIRECTORY", O_DIRECTORY), ("O_DIRECT", O_DIRECT),
    ("O_TRUNC", O_TRUNC), ("O_SYNC", O_SYNC), ("O_NONBLOCK", O_NONBLOCK), ("O_EXCL", O_EXCL),
    ("O_DSYNC", O_DSYNC), ("O_APPEND", O_APPEND), ("O_CREAT", O_CREAT), ("O_RDWR", O_RDWR),
    ("O_WRONLY", O_WRONLY), ("O_RDONLY", O_RDONLY), ("O_CLOEXEC", O_CLOEXEC), ("O_NONE", 0),
    ("O_TMPFILE", O_TMPFILE), ("O_F_CREATED", O_F_CREATED), ("FD_UPPER_LAYER", FD_UPPER_LAYER),
    ("FD_LOWER_LAYER", FD_LOWER_LAYER),
)  # fmt: skip

# Linux (x86-64) open flag -> PPM bit
_LINUX_OPEN = (
    (0o100, O_CREAT), (0o200, O_EXCL), (0o1000, O_TRUNC), (0o2000, O_APPEND),
    (0o4000, O_NONBLOCK), (0o10000, O_DSYNC), (0o4000000, O_SYNC), (0o40000, O_DIRECT),
    (0o200000, O_DIRECTORY), (0o100000, O_LARGEFILE), (0o2000000, O_CLOEXEC),
    (0o20000000, O_TMPFILE),
)  # fmt: skip
LINUX_O_CREAT = 0o100
LINUX_O_TMPFILE = 0o20000000


def render_flags(value: int, table: Table) -> str:
    """libsinsp's text of a PT_FLAGS parameter."""
    out = []
    val = value
    for name, bits in table:
        if (bits == 0 and value == 0) or (bits and val and val & bits == bits):
            out.append(name)
            val &= ~bits
            if bits == value:
                break
    return "|".join(out)


def render_enum(value: int, table: Table) -> str:
    """libsinsp's text of a PT_ENUMFLAGS parameter (every exact match, in table order)."""
    return "|".join(name for name, bits in table if bits == value)


@functools.lru_cache(maxsize=4096)
def open_flags(linux: int, created: bool = False) -> tuple[int, str]:
    """(PPM value, text) of open(2) flags as the kernel gave them."""
    linux &= 0xFFFFFFFF
    acc = linux & 3
    ppm = O_RDONLY if acc == 0 else O_WRONLY if acc == 1 else O_RDWR if acc == 2 else 0
    for lbit, pbit in _LINUX_OPEN:
        if linux & lbit == lbit:
            ppm |= pbit
    if created:
        ppm |= O_F_CREATED
    return ppm, render_flags(ppm, FILE_FLAGS)


@functools.lru_cache(maxsize=1024)
def open_mode(linux_flags: int, mode: int) -> str:
    """The ``mode`` argument of open*/creat in octal ("0" unless the call may create)."""
    if not linux_flags & (LINUX_O_CREAT | LINUX_O_TMPFILE):
        return "0"
    return "0" + format(mode & 0o7777, "o") if mode else "0"


# -- file modes ------------------------------------------------------------------------------
CHMOD_MODE: Table = (
    ("S_IXOTH", 0o1), ("S_IWOTH", 0o2), ("S_IROTH", 0o4), ("S_IXGRP", 0o10), ("S_IWGRP", 0o20),
    ("S_IRGRP", 0o40), ("S_IXUSR", 0o100), ("S_IWUSR", 0o200), ("S_IRUSR", 0o400),
    ("S_ISVTX", 0o1000), ("S_ISGID", 0o2000), ("S_ISUID", 0o4000),
)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def chmod_mode(mode: int) -> str:
    """The text of a PT_MODE parameter (chmod family)."""
    mode &= 0o7777
    out = []
    val = mode
    for name, bits in CHMOD_MODE:
        if bits == mode:
            break
        if val and val & bits == bits:
            out.append(name)
            val &= ~bits
    else:
        return "|".join(out)
    out.append(name)
    return "|".join(out)


# -- enums and small flag sets ------------------------------------------------------------------
SOCKET_FAMILIES: Table = (
    ("AF_NFC", 39), ("AF_ALG", 38), ("AF_CAIF", 37), ("AF_IEEE802154", 36), ("AF_PHONET", 35),
    ("AF_ISDN", 34), ("AF_RXRPC", 33), ("AF_IUCV", 32), ("AF_BLUETOOTH", 31), ("AF_TIPC", 30),
    ("AF_CAN", 29), ("AF_LLC", 26), ("AF_WANPIPE", 25), ("AF_PPPOX", 24), ("AF_IRDA", 23),
    ("AF_SNA", 22), ("AF_RDS", 21), ("AF_ATMSVC", 20), ("AF_ECONET", 19), ("AF_ASH", 18),
    ("AF_PACKET", 17), ("AF_ROUTE", 16), ("AF_NETLINK", 16), ("AF_KEY", 15),
    ("AF_SECURITY", 14), ("AF_NETBEUI", 13), ("AF_DECnet", 12), ("AF_ROSE", 11),
    ("AF_INET6", 10), ("AF_X25", 9), ("AF_ATMPVC", 8), ("AF_BRIDGE", 7), ("AF_NETROM", 6),
    ("AF_APPLETALK", 5), ("AF_IPX", 4), ("AF_AX25", 3), ("AF_INET", 2), ("AF_LOCAL", 1),
    ("AF_UNIX", 1), ("AF_UNSPEC", 0),
)  # fmt: skip

# name, PPM value, Linux value
_PTRACE = (
    ("PTRACE_SINGLEBLOCK", 38, 33), ("PTRACE_SYSEMU_SINGLESTEP", 37, 32),
    ("PTRACE_SYSEMU", 36, 31), ("PTRACE_ARCH_PRCTL", 35, 30),
    ("PTRACE_SET_THREAD_AREA", 34, 26), ("PTRACE_GET_THREAD_AREA", 33, 25),
    ("PTRACE_OLDSETOPTIONS", 32, 21), ("PTRACE_SETFPXREGS", 31, 19),
    ("PTRACE_GETFPXREGS", 30, 18), ("PTRACE_SETFPREGS", 29, 15), ("PTRACE_GETFPREGS", 28, 14),
    ("PTRACE_SETREGS", 27, 13), ("PTRACE_GETREGS", 26, 12), ("PTRACE_SETSIGMASK", 25, 0x420B),
    ("PTRACE_GETSIGMASK", 24, 0x420A), ("PTRACE_PEEKSIGINFO", 23, 0x4209),
    ("PTRACE_LISTEN", 22, 0x4208), ("PTRACE_INTERRUPT", 21, 0x4207), ("PTRACE_SEIZE", 20, 0x4206),
    ("PTRACE_SETREGSET", 19, 0x4205), ("PTRACE_GETREGSET", 18, 0x4204),
    ("PTRACE_SETSIGINFO", 17, 0x4203), ("PTRACE_GETSIGINFO", 16, 0x4202),
    ("PTRACE_GETEVENTMSG", 15, 0x4201), ("PTRACE_SETOPTIONS", 14, 0x4200),
    ("PTRACE_SYSCALL", 13, 24), ("PTRACE_DETACH", 12, 17), ("PTRACE_ATTACH", 11, 16),
    ("PTRACE_SINGLESTEP", 10, 9), ("PTRACE_KILL", 9, 8), ("PTRACE_CONT", 8, 7),
    ("PTRACE_POKEUSR", 7, 6), ("PTRACE_POKEDATA", 6, 5), ("PTRACE_POKETEXT", 5, 4),
    ("PTRACE_PEEKUSR", 4, 3), ("PTRACE_PEEKDATA", 3, 2), ("PTRACE_PEEKTEXT", 2, 1),
    ("PTRACE_TRACEME", 1, 0),
)  # fmt: skip
_PTRACE_BY_LINUX = {linux: (ppm, name) for name, ppm, linux in _PTRACE}


def ptrace_request(linux: int) -> tuple[int, str]:
    """(PPM value, name) of a ptrace request; unknown ones are PTRACE_UNKNOWN (0)."""
    return _PTRACE_BY_LINUX.get(linux & 0xFFFFFFFF, (0, "PTRACE_UNKNOWN"))


BPF_COMMANDS = (
    "BPF_MAP_CREATE BPF_MAP_LOOKUP_ELEM BPF_MAP_UPDATE_ELEM BPF_MAP_DELETE_ELEM "
    "BPF_MAP_GET_NEXT_KEY BPF_PROG_LOAD BPF_OBJ_PIN BPF_OBJ_GET BPF_PROG_ATTACH "
    "BPF_PROG_DETACH BPF_PROG_TEST_RUN BPF_PROG_GET_NEXT_ID BPF_MAP_GET_NEXT_ID "
    "BPF_PROG_GET_FD_BY_ID BPF_MAP_GET_FD_BY_ID BPF_OBJ_GET_INFO_BY_FD BPF_PROG_QUERY "
    "BPF_RAW_TRACEPOINT_OPEN BPF_BTF_LOAD BPF_BTF_GET_FD_BY_ID BPF_TASK_FD_QUERY "
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM BPF_MAP_FREEZE BPF_BTF_GET_NEXT_ID BPF_MAP_LOOKUP_BATCH "
    "BPF_MAP_LOOKUP_AND_DELETE_BATCH BPF_MAP_UPDATE_BATCH BPF_MAP_DELETE_BATCH "
    "BPF_LINK_CREATE BPF_LINK_UPDATE BPF_LINK_GET_FD_BY_ID BPF_LINK_GET_NEXT_ID "
    "BPF_ENABLE_STATS BPF_ITER_CREATE BPF_LINK_DETACH BPF_PROG_BIND_MAP"
).split()


def bpf_command(cmd: int) -> str:
    """The name of a bpf(2) command (libs prints BPF_PROG_TEST_RUN for 10, its first name)."""
    return BPF_COMMANDS[cmd] if 0 <= cmd < len(BPF_COMMANDS) else ""


# clone flags: name, Linux bit, in libs' table order (PPM_CL_* differ from Linux; we render
# names from the Linux bits and give the Linux value as the raw value)
CLONE_FLAGS: Table = (
    ("CLONE_FILES", 0x400), ("CLONE_FS", 0x200), ("CLONE_IO", 0x80000000),
    ("CLONE_NEWIPC", 0x8000000), ("CLONE_NEWNET", 0x40000000), ("CLONE_NEWNS", 0x20000),
    ("CLONE_NEWPID", 0x20000000), ("CLONE_NEWUTS", 0x4000000), ("CLONE_PARENT", 0x8000),
    ("CLONE_PARENT_SETTID", 0x100000), ("CLONE_PTRACE", 0x2000), ("CLONE_SIGHAND", 0x800),
    ("CLONE_SYSVSEM", 0x40000), ("CLONE_THREAD", 0x10000), ("CLONE_UNTRACED", 0x800000),
    ("CLONE_VM", 0x100), ("CLONE_NEWUSER", 0x10000000), ("CLONE_CHILD_CLEARTID", 0x200000),
    ("CLONE_CHILD_SETTID", 0x1000000), ("CLONE_SETTLS", 0x80000), ("CLONE_VFORK", 0x4000),
    ("CLONE_NEWCGROUP", 0x2000000),
)  # fmt: skip

UNLINKAT_FLAGS: Table = (("AT_REMOVEDIR", 0x200),)
LINKAT_FLAGS: Table = (("AT_SYMLINK_FOLLOW", 0x400), ("AT_EMPTY_PATH", 0x1000))
RENAMEAT2_FLAGS: Table = (("RENAME_NOREPLACE", 1), ("RENAME_EXCHANGE", 2), ("RENAME_WHITEOUT", 4))
FINIT_MODULE_FLAGS: Table = (
    ("MODULE_INIT_IGNORE_MODVERSIONS", 1), ("MODULE_INIT_IGNORE_VERMAGIC", 2),
    ("MODULE_INIT_COMPRESSED_FILE", 4),
)  # fmt: skip
EXECVE_FLAGS: Table = (
    ("EXE_WRITABLE", 1), ("EXE_UPPER_LAYER", 2), ("EXE_FROM_MEMFD", 4), ("EXE_LOWER_LAYER", 8),
)  # fmt: skip
# openat2 resolve: name, PPM bit, Linux bit
_RESOLVE = (
    ("RESOLVE_BENEATH", 1, 0x08), ("RESOLVE_IN_ROOT", 2, 0x10),
    ("RESOLVE_NO_MAGICLINKS", 4, 0x02), ("RESOLVE_NO_SYMLINKS", 8, 0x04),
    ("RESOLVE_NO_XDEV", 16, 0x01), ("RESOLVE_CACHED", 32, 0x20),
)  # fmt: skip
RESOLVE_FLAGS: Table = tuple((name, ppm) for name, ppm, _ in _RESOLVE)


def resolve_flags(linux: int) -> tuple[int, str]:
    ppm = 0
    for _name, pbit, lbit in _RESOLVE:
        if linux & lbit:
            ppm |= pbit
    return ppm, render_flags(ppm, RESOLVE_FLAGS)


# -- devices, addresses ------------------------------------------------------------------------------


def encode_dev(kdev: int) -> int:
    """A kernel dev_t (major << 20 | minor) as userspace's new_encode_dev (libs' ``dev``)."""
    major, minor = kdev >> 20, kdev & 0xFFFFF
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def ip_text(family: int, raw: bytes) -> str:
    """Canonical text of an IPv4 (first 4 bytes) or IPv6 address; IPv4-mapped IPv6 as IPv4."""
    if family == 2:
        return ipaddress.IPv4Address(raw[:4]).compressed
    addr = ipaddress.IPv6Address(raw[:16])
    mapped = addr.ipv4_mapped
    return mapped.compressed if mapped is not None else addr.compressed

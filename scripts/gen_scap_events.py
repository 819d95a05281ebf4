#!/usr/bin/env python3
"""Generate ``sensors/scap/events_table.py`` from a falcosecurity/libs checkout.

The ``.scap`` reader needs the libs event table (event ids, names, flags, parameter names,
types and print formats, flag-name tables), the syscall id names of generic events, and
the savefile converter's table that upgrades old event layouts. All of it is data in the
libs sources; this script extracts it and writes a Python module of plain literals.

Usage::

    python scripts/gen_scap_events.py --libs PATH [--ref HEAD] [--out sensors/scap/events_table.py]

``PATH`` is either a work tree or a (bare) git directory of falcosecurity/libs; with a git
directory the files are read at ``--ref``. Files read: ``driver/ppm_events_public.h``,
``driver/event_table.c``, ``driver/flags_table.c``, ``driver/dynamic_params_table.c`` and
``userspace/libscap/engine/savefile/converter/table.cpp``.

The parser understands exactly the C subset those files use (designated initializers,
nested braces, ``#define`` integer expressions); it fails loudly on anything else so a
changed upstream layout is noticed, not silently mis-read.
"""

from __future__ import annotations

import argparse
import pprint
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

FILES = {
    "header": "driver/ppm_events_public.h",
    "events": "driver/event_table.c",
    "flags": "driver/flags_table.c",
    "dynamic": "driver/dynamic_params_table.c",
    "conversions": "userspace/libscap/engine/savefile/converter/table.cpp",
    "syscall_table": "driver/syscall_table.c",
    "x86_64": "driver/syscall_compat_x86_64.h",
}


class GenError(Exception):
    pass


# -- reading the sources ----------------------------------------------------------------------
def read_source(libs: Path, ref: str, rel: str) -> str:
    work = libs / rel
    if work.is_file():
        return work.read_text()
    try:
        out = subprocess.run(
            ["git", f"--git-dir={libs}", "show", f"{ref}:{rel}"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise GenError(f"cannot read {rel} from {libs} at {ref}: {exc}") from None
    return out.stdout


def git_commit(libs: Path, ref: str) -> str:
    for args in (["git", f"--git-dir={libs}"], ["git", "-C", str(libs)]):
        try:
            out = subprocess.run([*args, "rev-parse", ref], check=True, capture_output=True, text=True)
            return out.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
    return "unknown"


def strip_comments(text: str) -> str:
    """Remove C/C++ comments, keeping string literals intact."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise GenError("unterminated comment")
            out.append(" ")
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- integer #defines and enums ----------------------------------------------------------------
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


class Constants:
    """Integer macros and enum members, evaluated on demand."""

    def __init__(self) -> None:
        self.exprs: dict[str, str] = {}
        self.values: dict[str, int] = {}

    def add_defines(self, text: str) -> None:
        joined = text.replace("\\\n", " ")
        for m in re.finditer(r"^[ \t]*#define[ \t]+([A-Za-z_]\w*)[ \t]+(.+)$", joined, re.M):
            name, expr = m.group(1), m.group(2).strip()
            if "(" in name:
                continue
            self.exprs.setdefault(name, expr)

    def add_enum(self, body: str) -> None:
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                name, expr = (s.strip() for s in item.split("=", 1))
                value = self.eval(expr)
            else:
                name, value = item, nxt
            self.values[name] = value
            nxt = value + 1

    def eval(self, expr: str, depth: int = 0) -> int:
        if depth > 50:
            raise GenError(f"macro recursion in {expr!r}")
        expr = re.sub(r"(?<=\d)[uUlL]+\b", "", expr)

        def sub(m: re.Match[str]) -> str:
            name = m.group(0)
            if name in self.values:
                return str(self.values[name])
            if name in self.exprs:
                v = self.eval(self.exprs[name], depth + 1)
                self.values[name] = v
                return str(v)
            raise GenError(f"unknown constant {name} in {expr!r}")

        py = " ".join(_IDENT.sub(sub, expr).split())
        py = re.sub(r"\b0([0-7]+)\b", r"0o\1", py)  # C octal literals
        if not re.fullmatch(r"[\d\sxXoa-fA-F()|&<>~+\-*]+", py):
            raise GenError(f"not an integer expression: {expr!r}")
        return int(eval(py, {"__builtins__": {}}))  # noqa: S307 - digits and operators only

    def get(self, name: str) -> int:
        return self.eval(name)


def parse_enums(text: str, consts: Constants) -> None:
    for m in re.finditer(r"\benum\s+\w*\s*\{([^}]*)\}", text):
        body = m.group(1)
        if "(" in body and "<<" not in body and not re.search(r"=\s*\(", body):
            continue
        try:
            consts.add_enum(body)
        except GenError:
            continue


# -- a tiny initializer parser -------------------------------------------------------------------
Node = Any  # str atom or list of nodes


def parse_braces(text: str, start: int) -> tuple[list[Node], int]:
    """Parse ``{ a, {b, c}, "d" }`` starting at ``text[start] == '{'``."""
    if text[start] != "{":
        raise GenError(f"expected '{{' at {start}")
    items: list[Node] = []
    cur: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i : j + 1])
            i = j + 1
            continue
        if c == "{":
            sub, i = parse_braces(text, i)
            items.append(sub)
            cur = []
            continue
        if c == "}":
            atom = "".join(cur).strip()
            if atom:
                items.append(atom)
            return items, i + 1
        if c == ",":
            atom = "".join(cur).strip()
            if atom:
                items.append(atom)
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    raise GenError("unbalanced braces")


def unquote(atom: str) -> str:
    if not (atom.startswith('"') and atom.endswith('"')):
        raise GenError(f"expected a string literal, got {atom!r}")
    return bytes(atom[1:-1], "utf-8").decode("unicode_escape")


def or_names(expr: str, consts: Constants) -> int:
    return consts.eval(expr) if expr.strip() else 0


# -- event table -------------------------------------------------------------------------------
def parse_event_table(text: str, consts: Constants) -> dict[int, tuple[Any, ...]]:
    body = strip_comments(text)
    start = body.find("g_event_info[] = {")
    if start < 0:
        raise GenError("g_event_info not found")
    events: dict[int, tuple[Any, ...]] = {}
    for m in re.finditer(r"\[(PPME_\w+)\]\s*=\s*", body[start:]):
        pos = start + m.end()
        code = consts.get(m.group(1))
        items, _ = parse_braces(body, pos)
        name = unquote(items[0])
        category = or_names(items[1], consts)
        flags = or_names(items[2], consts)
        nparams = consts.eval(items[3]) if len(items) > 3 else 0
        params: list[tuple[Any, ...]] = []
        if len(items) > 4:
            for p in items[4]:
                if not isinstance(p, list):
                    raise GenError(f"{m.group(1)}: bad parameter {p!r}")
                pname = unquote(p[0])
                ptype = consts.get(p[1])
                fmt = consts.get(p[2])
                info: Any = None
                if len(p) > 3:
                    extra = p[3]
                    dm = re.fullmatch(r"DIRFD_PARAM\((\d+)\)", extra)
                    if dm:
                        info = ("dirfd", int(dm.group(1)))
                    elif re.fullmatch(r"[a-z_0-9]+", extra):
                        info = extra
                    elif extra in ("0", "NULL"):
                        info = None
                    else:
                        raise GenError(f"{m.group(1)}: bad parameter info {extra!r}")
                params.append((pname, ptype, fmt, info))
        if len(params) != nparams:
            raise GenError(f"{m.group(1)}: {nparams} parameters declared, {len(params)} listed")
        events[code] = (name, category, flags, tuple(params))
    return events


def parse_flag_tables(text: str, consts: Constants) -> dict[str, tuple[tuple[str, int], ...]]:
    body = strip_comments(text)
    tables: dict[str, tuple[tuple[str, int], ...]] = {}
    for m in re.finditer(r"const\s+struct\s+ppm_name_value\s+(\w+)\[\]\s*=\s*", body):
        items, _ = parse_braces(body, m.end())
        entries: list[tuple[str, int]] = []
        for it in items:
            if not isinstance(it, list) or len(it) != 2:
                raise GenError(f"{m.group(1)}: bad entry {it!r}")
            if it[0] in ("0", "NULL"):
                break
            entries.append((unquote(it[0]), consts.eval(it[1])))
        tables[m.group(1)] = tuple(entries)
    return tables


def parse_dynamic_tables(text: str, consts: Constants) -> dict[str, dict[int, tuple[int, int]]]:
    body = strip_comments(text)
    tables: dict[str, dict[int, tuple[int, int]]] = {}
    for m in re.finditer(r"const\s+struct\s+ppm_param_info\s+(\w+)\[\w+\]\s*=\s*\{", body):
        pos = m.end() - 1
        # entries are "[IDX] = {{0}, PT_X, PF_Y, 0, 0}"
        depth, end = 0, pos
        for end in range(pos, len(body)):
            if body[end] == "{":
                depth += 1
            elif body[end] == "}":
                depth -= 1
                if depth == 0:
                    break
        chunk = body[pos : end + 1]
        entries: dict[int, tuple[int, int]] = {}
        for em in re.finditer(r"\[(\w+)\]\s*=\s*\{\{0\},\s*(\w+),\s*(\w+)", chunk):
            entries[consts.get(em.group(1))] = (consts.get(em.group(2)), consts.get(em.group(3)))
        tables[m.group(1)] = entries
    return tables


def parse_syscall_names(text: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for m in re.finditer(r"PPM_SC_X\((\w+),\s*(\d+)\)", text):
        names[int(m.group(2))] = m.group(1).lower()
    if not names:
        raise GenError("PPM_SC_FIELDS not found")
    return names


def parse_native_x86_64(table: str, compat: str, sc_names: dict[int, str]) -> dict[int, int]:
    """x86_64 syscall number -> ppm_sc code (libscap's g_syscall_table on x86_64)."""
    nr = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR_(\w+) (\d+)", compat)}
    by_name = {v: k for k, v in sc_names.items()}
    out: dict[int, int] = {}
    for m in re.finditer(r"\[__NR_(\w+) - SYSCALL_TABLE_ID0\]\s*=\s*\{[^}]*PPM_SC_(\w+)\}", table):
        num, sc = nr.get(m.group(1)), by_name.get(m.group(2).lower())
        if num is not None and sc is not None:
            out.setdefault(num, sc)
    if not out:
        raise GenError("no x86_64 syscall numbers found")
    return out


# -- converter table ---------------------------------------------------------------------------
_ACTIONS = {"C_ACTION_PASS": "pass", "C_ACTION_STORE": "store",
            "C_ACTION_STORE_AND_PASS": "store_and_pass", "C_ACTION_ADD_PARAMS": "add",
            "C_ACTION_CHANGE_TYPE": "change"}  # fmt: skip
_INSTRS = {"C_INSTR_FROM_OLD": "old", "C_INSTR_FROM_ENTER": "enter",
           "C_INSTR_FROM_DEFAULT": "default", "C_INSTR_FROM_EMPTY": "empty",
           "C_INSTR_FROM_CALLBACK": "callback"}  # fmt: skip


def parse_conversions(text: str, consts: Constants) -> dict[tuple[int, int], tuple[Any, ...]]:
    body = strip_comments(text)
    start = body.find("g_conversion_table = {")
    if start < 0:
        raise GenError("g_conversion_table not found")
    out: dict[tuple[int, int], tuple[Any, ...]] = {}
    for m in re.finditer(r"\{conversion_key\{(\w+),\s*(\d+)\},\s*conversion_info\(\)", body[start:]):
        key = (consts.get(m.group(1)), int(m.group(2)))
        pos = start + m.end()
        # the chained calls end where the entry's brace closes
        depth, i = 1, pos
        while depth:
            if body[i] == "{":
                depth += 1
            elif body[i] == "}":
                depth -= 1
            i += 1
        chain = body[pos : i - 1]
        am = re.search(r"\.action\((\w+)\)", chain)
        if not am or am.group(1) not in _ACTIONS:
            raise GenError(f"conversion {m.group(1)}/{m.group(2)}: no action")
        action = _ACTIONS[am.group(1)]
        tm = re.search(r"\.desired_type\((\w+)\)", chain)
        desired = consts.get(tm.group(1)) if tm else None
        instrs: list[tuple[str, int, bool]] = []
        im = re.search(r"\.instrs\(", chain)
        if im:
            items, _ = parse_braces(chain, chain.index("{", im.end()))
            for it in items:
                if not isinstance(it, list) or not it:
                    raise GenError(f"conversion {m.group(1)}: bad instruction {it!r}")
                kind = _INSTRS.get(it[0])
                if kind is None:
                    raise GenError(f"conversion {m.group(1)}: unknown instruction {it[0]}")
                num = int(it[1]) if len(it) > 1 and it[1].isdigit() else 0
                fallback_empty = any(x == "CIF_FALLBACK_TO_EMPTY" for x in it[2:])
                instrs.append((kind, num, fallback_empty))
        out[key] = (action, desired, tuple(instrs))
    if not out:
        raise GenError("no conversions found")
    return out


# -- output --------------------------------------------------------------------------------------
HEADER = '''"""The libs event table and savefile conversion table, as data.

GENERATED by ``scripts/gen_scap_events.py`` from falcosecurity/libs at commit
{commit}; do not edit by hand, regenerate instead.

* ``EVENTS[code] = (name, category, flags, params)``; ``params`` is a tuple of
  ``(name, type, print_format, info)`` where ``info`` names a flag table in ``FLAG_TABLES``
  or a dynamic-parameter table in ``DYNAMIC_PARAMS``, or is ``("dirfd", n)`` for a path
  relative to parameter ``n``. Enter events have even codes, exit events odd ones.
* ``FLAG_TABLES[name]`` = ``((flag name, value), ...)`` in libs order (rendering order).
* ``DYNAMIC_PARAMS[name][index] = (type, print_format)``.
* ``SYSCALL_NAMES[ppm_sc] = name`` (the ``ID`` parameter of generic events).
* ``NATIVE_X86_64[syscall number] = ppm_sc`` (generic events of captures that only know the
  native number, as libscap resolves them on x86_64).
* ``CONVERSIONS[(code, nparams)] = (action, desired_code, instructions)``; an instruction
  is ``(source, param_index, fallback_to_empty)`` with source ``old``, ``enter``,
  ``default``, ``empty`` or ``callback``.
"""

# ruff: noqa: E501
# fmt: off
'''


def render(commit: str, events: dict[int, Any], flags: dict[str, Any], dyn: dict[str, Any],
           syscalls: dict[int, str], native: dict[int, int], conversions: dict[Any, Any],
           consts: Constants) -> str:  # fmt: skip
    maxcode = consts.get("PPM_EVENT_MAX")
    missing = [c for c in range(maxcode) if c not in events]
    if missing:
        raise GenError(f"event codes without an entry: {missing[:10]}")
    parts = [HEADER.format(commit=commit)]
    consts_out = {
        name: consts.get(name)
        for name in (
            "EF_CREATES_FD", "EF_DESTROYS_FD", "EF_USES_FD", "EF_READS_FROM_FD",
            "EF_WRITES_TO_FD", "EF_MODIFIES_STATE", "EF_UNUSED", "EF_WAITS",
            "EF_SKIPPARSERESET", "EF_OLD_VERSION", "EF_LARGE_PAYLOAD", "EF_CONVERTER_MANAGED",
            "EC_SYSCALL", "EC_TRACEPOINT", "EC_PLUGIN", "EC_METAEVENT", "EC_INTERNAL",
            "PPM_EVENT_MAX",
        )
    }  # fmt: skip
    for name, value in consts_out.items():
        parts.append(f"{name} = {value}\n")
    types = {n: v for n, v in consts.values.items() if n.startswith("PT_")}
    fmts = {n: v for n, v in consts.values.items() if n.startswith("PF_")}
    for name, value in sorted({**types, **fmts}.items(), key=lambda kv: (kv[0][:3], kv[1])):
        parts.append(f"{name} = {value}\n")
    codes = {n: v for n, v in consts.values.items() if n.startswith("PPME_")}
    parts.append("\n#: PPME_* name -> event code\nCODES: dict[str, int] = ")
    parts.append(pprint.pformat(dict(sorted(codes.items(), key=lambda kv: kv[1])), width=100, sort_dicts=False))
    parts.append("\n\nEVENTS: tuple[tuple, ...] = (\n")
    for code in range(maxcode):
        parts.append(f"    {events[code]!r},  # {code}\n")
    parts.append(")\n\nFLAG_TABLES: dict[str, tuple[tuple[str, int], ...]] = ")
    parts.append(pprint.pformat(flags, width=100, sort_dicts=True))
    parts.append("\n\nDYNAMIC_PARAMS: dict[str, dict[int, tuple[int, int]]] = ")
    parts.append(pprint.pformat(dyn, width=100, sort_dicts=True))
    parts.append("\n\nSYSCALL_NAMES: dict[int, str] = ")
    parts.append(pprint.pformat(syscalls, width=100, sort_dicts=True, compact=True))
    parts.append("\n\nNATIVE_X86_64: dict[int, int] = ")
    parts.append(pprint.pformat(native, width=100, sort_dicts=True, compact=True))
    parts.append("\n\nCONVERSIONS: dict[tuple[int, int], tuple] = ")
    parts.append(pprint.pformat(conversions, width=100, sort_dicts=True))
    parts.append("\n")
    return "".join(parts)


def generate(libs: Path, ref: str) -> str:
    src = {k: read_source(libs, ref, rel) for k, rel in FILES.items()}
    consts = Constants()
    header = strip_comments(src["header"])
    consts.add_defines(header)
    parse_enums(header, consts)
    for name in ("PPM_EVENT_MAX", "PT_MAX", "EF_CONVERTER_MANAGED"):
        consts.get(name)
    events = parse_event_table(src["events"], consts)
    flags = parse_flag_tables(src["flags"], consts)
    dyn = parse_dynamic_tables(src["dynamic"], consts)
    syscalls = parse_syscall_names(src["header"])
    native = parse_native_x86_64(strip_comments(src["syscall_table"]), src["x86_64"], syscalls)
    conversions = parse_conversions(src["conversions"], consts)
    for code, (_, _, _, params) in events.items():
        for pname, _, _, info in params:
            if isinstance(info, str) and info not in flags and info not in dyn:
                raise GenError(f"event {code} parameter {pname}: unknown table {info}")
    return render(git_commit(libs, ref), events, flags, dyn, syscalls, native, conversions, consts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--libs", required=True, type=Path, help="falcosecurity/libs work tree or git dir")
    ap.add_argument("--ref", default="HEAD", help="git revision when --libs is a git dir")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "sensors/scap/events_table.py")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        text = generate(args.libs, args.ref)
    except GenError as exc:
        print(f"gen_scap_events: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

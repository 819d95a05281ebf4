"""Comparison operators: one template per operator, shared by inline code and closures.

Each operator is a Python expression over ``v`` (the extracted value, never ``None`` when
the template runs) and ``k`` (the compiled right-hand side). The compiler inlines the
template into generated rule code for plain fields and builds closures from the very same
template for candidate fields (``proc.aname``, ``fd.ip``) and modifiers (``oneof`` …), so
each operator's meaning is written once.

Semantics follow libsinsp (``filter_compare.cpp``): case-sensitive byte comparisons,
``icontains`` folds ASCII case only, ``glob`` is ``fnmatch`` without ``FNM_PATHNAME`` or
``FNM_PERIOD`` (``*`` matches ``/``; backslash escapes honoured), ``regex`` is fully
anchored, ``pmatch`` matches whole path components, and on list fields ``in`` means every
element is in the set while ``intersects`` means at least one is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def ascii_lower(s: str) -> str:
    """Lower-case ASCII letters only (strcasestr semantics)."""
    return s.lower() if s.isascii() else s.translate(_ASCII_LOWER)


def ascii_upper(s: str) -> str:
    return s.upper() if s.isascii() else s.translate({v: k for k, v in _ASCII_LOWER.items()})


def glob_to_regex(pattern: str, casefold: bool = False) -> re.Pattern[str]:
    """Translate an fnmatch(3) pattern (flags 0 or FNM_CASEFOLD) to a compiled regex.

    ``*`` and ``?`` match any character including ``/``; ``[...]`` classes support ranges,
    ``!``/``^`` negation and POSIX ``[:class:]`` names; a backslash quotes the next
    character; an unterminated ``[`` matches itself.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "[" and j + 1 < n and pattern[j + 1] == ":":
                    end = pattern.find(":]", j + 2)
                    j = end + 2 if end != -1 else j + 1
                    continue
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                out.append(_bracket(pattern[i + 1 : j]))
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if casefold else 0)
    return re.compile("".join(out), flags)


_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


def _bracket(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    parts: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "[" and body[i + 1 : i + 2] == ":":
            end = body.find(":]", i + 2)
            if end != -1:
                parts.append(_POSIX_CLASSES.get(body[i + 2 : end], ""))
                i = end + 2
                continue
        if c == "\\" and i + 1 < len(body):
            i += 1
            c = body[i]
        if body[i + 1 : i + 2] == "-" and i + 2 < len(body):
            parts.append(re.escape(c) + "-" + re.escape(body[i + 2]))
            i += 3
            continue
        parts.append(re.escape(c))
        i += 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


@dataclass(frozen=True, slots=True)
class PathPrefixes:
    """The right-hand side of ``pmatch``: path prefixes matched component by component.

    A prefix matches a path equal to it or below it (``/var/run`` matches ``/var/run``
    and ``/var/run/x``, not ``/var/runx``); a component may be a glob (``/var/*/log``).
    """

    plain: frozenset[tuple[str, ...]]
    globbed: tuple[tuple[re.Pattern[str] | str, ...], ...]

    @classmethod
    def build(cls, prefixes: list[str]) -> PathPrefixes:
        plain: set[tuple[str, ...]] = set()
        globbed: list[tuple[re.Pattern[str] | str, ...]] = []
        for p in prefixes:
            comps = _components(p)
            if any(ch in p for ch in "*?["):
                globbed.append(
                    tuple(glob_to_regex(c) if any(ch in c for ch in "*?[") else c for c in comps)
                )
            else:
                plain.add(comps)
        return cls(frozenset(plain), tuple(globbed))

    def match(self, path: str) -> bool:
        comps = _components(path)
        for i in range(len(comps) + 1):
            if comps[:i] in self.plain:
                return True
        for pat in self.globbed:
            if len(pat) > len(comps):
                continue
            if all(
                (p.fullmatch(c) is not None) if isinstance(p, re.Pattern) else p == c
                for p, c in zip(pat, comps, strict=False)
            ):
                return True
        return False


def _components(path: str) -> tuple[str, ...]:
    return tuple(c for c in path.split("/") if c)


@lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class NetSet:
    """IP networks a field is compared with; ``addr in nets`` is memoized per address
    (the addresses of a host's traffic repeat a lot)."""

    __slots__ = ("nets", "_memo")

    _MEMO_MAX = 4096

    def __init__(self, nets: list[Any]) -> None:
        self.nets = tuple(nets)
        self._memo: dict[str, bool] = {}

    def __contains__(self, value: object) -> bool:
        if value.__class__ is not str:
            return False
        hit = self._memo.get(value)  # type: ignore[arg-type]
        if hit is None:
            addr = _ip(value)  # type: ignore[arg-type]
            hit = addr is not None and any(
                addr.version == n.version and addr in n for n in self.nets
            )
            if len(self._memo) >= self._MEMO_MAX:
                self._memo.clear()
            self._memo[value] = hit  # type: ignore[index]
        return hit

    def __repr__(self) -> str:
        return f"NetSet({', '.join(str(n) for n in self.nets)})"


@dataclass(frozen=True, slots=True)
class OpTemplate:
    """An operator as Python expression text over ``v`` and ``k``.

    ``none_safe``: the expression is already false when ``v`` is ``None`` (so the inline
    form needs no ``is not None`` test, e.g. ``v == k`` with a non-None ``k``).
    """

    expr: str
    none_safe: bool = False


#: Templates by (operator, shape). Shapes: "scalar", "list" (list fields), "net" (an
#: IP field compared with networks).
TEMPLATES: dict[tuple[str, str], OpTemplate] = {
    ("=", "scalar"): OpTemplate("v == k", none_safe=True),
    ("!=", "scalar"): OpTemplate("v != k"),
    ("<", "scalar"): OpTemplate("v < k"),
    ("<=", "scalar"): OpTemplate("v <= k"),
    (">", "scalar"): OpTemplate("v > k"),
    (">=", "scalar"): OpTemplate("v >= k"),
    ("contains", "scalar"): OpTemplate("k in v"),
    ("bcontains", "scalar"): OpTemplate("k in v"),
    ("icontains", "scalar"): OpTemplate("k in _ascii_lower(v)"),
    ("startswith", "scalar"): OpTemplate("v.startswith(k)"),
    ("bstartswith", "scalar"): OpTemplate("v.startswith(k)"),
    ("endswith", "scalar"): OpTemplate("v.endswith(k)"),
    ("glob", "scalar"): OpTemplate("k.fullmatch(v) is not None"),
    ("iglob", "scalar"): OpTemplate("k.fullmatch(v) is not None"),
    ("regex", "scalar"): OpTemplate("k.fullmatch(v) is not None"),
    ("in", "scalar"): OpTemplate("v in k", none_safe=True),
    ("intersects", "scalar"): OpTemplate("v in k", none_safe=True),
    ("pmatch", "scalar"): OpTemplate("k.match(v)"),
    ("in", "list"): OpTemplate("k.issuperset(v)"),
    ("intersects", "list"): OpTemplate("not k.isdisjoint(v)"),
    ("=", "net"): OpTemplate("v in k", none_safe=True),
    ("in", "net"): OpTemplate("v in k", none_safe=True),
    ("intersects", "net"): OpTemplate("v in k", none_safe=True),
    ("!=", "net"): OpTemplate("v not in k"),
}

#: Names the templates use, provided to generated code.
TEMPLATE_GLOBALS: dict[str, Any] = {
    "_ascii_lower": ascii_lower,
}


@cache
def _predicate_factory(expr: str):
    code = f"def _make(k):\n    def _pred(v):\n        return {expr}\n    return _pred\n"
    ns: dict[str, Any] = dict(TEMPLATE_GLOBALS)
    exec(compile(code, "<falconet-operator>", "exec"), ns)  # noqa: S102 - fixed templates only
    return ns["_make"]


def predicate(template: OpTemplate, k: Any):
    """A closure ``pred(v) -> bool`` for one operator and right-hand side.

    The code executed is one of the fixed :data:`TEMPLATES`; ``k`` is passed as an
    object, never as text.
    """
    return _predicate_factory(template.expr)(k)

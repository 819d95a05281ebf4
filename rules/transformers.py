"""Field transformers: ``tolower``, ``toupper``, ``b64``, ``basename``, ``len``, and the
multi-value ``join``, ``concat`` and ``getopt`` (libsinsp ≥ 0.25 semantics).

A transformer turns bound fields (or literal arguments) into a new bound field whose
extractor applies the transformation; a missing input makes the result missing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from falconet.fields import BoundField, CompareMode, FieldType

from .operators import ascii_lower, ascii_upper

Arg = BoundField | str | tuple[str, ...]


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda ev: value


def _arg_extract(a: Arg) -> tuple[Callable[[Any], Any], FieldType, bool]:
    """(extractor, type, is_list) of a transformer argument."""
    if isinstance(a, BoundField):
        return a.extract, a.type, a.is_list
    if isinstance(a, tuple):
        return _const(a), FieldType.CHARBUF, True
    return _const(a), FieldType.CHARBUF, False


def _unary(name: str, a: BoundField) -> BoundField:
    if a.compare is not CompareMode.PLAIN:
        raise ValueError(f"transformer '{name}' cannot be applied to {a.name}")
    inner = a.extract
    t = a.type
    if name in ("tolower", "toupper"):
        if not t.is_string:
            raise ValueError(f"transformer '{name}' is not supported on type {t.value}")
        fn = ascii_lower if name == "tolower" else ascii_upper
        if a.is_list:
            return _derive(a, lambda v: tuple(fn(x) for x in v), t, True)
        return _derive(a, fn, t, False)
    if name == "b64":
        if not (t.is_string or t is FieldType.BYTEBUF) or a.is_list:
            raise ValueError(f"transformer 'b64' is not supported on type {t.value}")

        def b64(v: Any) -> Any:
            raw = v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")
            try:
                out = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return None
            if t is FieldType.BYTEBUF:
                return out
            return out.decode("utf-8", "surrogateescape")

        return _derive(a, b64, t, False)
    if name == "basename":
        if not t.is_string or a.is_list:
            raise ValueError(f"transformer 'basename' is not supported on type {t.value}")
        return _derive(a, lambda v: v.rsplit("/", 1)[-1], FieldType.CHARBUF, False)
    if name == "len":
        if a.is_list:
            return _derive(a, len, FieldType.UINT64, False, keep_empty_list=True)
        if t.is_string:
            return _derive(a, lambda v: len(v.split("\0", 1)[0]), FieldType.UINT64, False)
        if t is FieldType.BYTEBUF:
            return _derive(a, len, FieldType.UINT64, False)
        raise ValueError(f"transformer 'len' is not supported on type {t.value}")
    raise ValueError(f"unknown transformer '{name}'")  # pragma: no cover
    _ = inner


def _derive(
    a: BoundField,
    fn: Callable[[Any], Any],
    t: FieldType,
    is_list: bool,
    keep_empty_list: bool = False,
) -> BoundField:
    inner = a.extract

    def extract(ev: Any) -> Any:
        v = inner(ev)
        if v is None:
            return 0 if keep_empty_list else None
        return fn(v)

    return BoundField(name=a.name, extract=extract, type=t, is_list=is_list)


def _getopt(argv: tuple[str, ...], optstring: str, selector: str | None) -> Any:
    start = 1 if optstring.startswith(":") else 0
    valid: set[str] = set()
    with_arg: set[str] = set()
    i = start
    while i < len(optstring):
        c = optstring[i]
        if c != ":":
            valid.add(c)
            if i + 1 < len(optstring) and optstring[i + 1] == ":":
                with_arg.add(c)
                i += 1
        i += 1
    results: list[str] = []
    selected: str | None = None
    idx = 0
    while idx < len(argv):
        arg = argv[idx]
        if arg == "--":
            break
        if len(arg) > 2 and arg.startswith("--"):
            idx += 1
            continue
        if not arg or arg[0] != "-" or len(arg) == 1:
            break
        j = 1
        while j < len(arg):
            opt = arg[j]
            if opt == ":" or opt not in valid:
                if selector is None:
                    results.append("?")
                j += 1
                continue
            match = selector is None or opt == selector
            if opt not in with_arg:
                if match:
                    if selector is None:
                        results.append(opt)
                    else:
                        selected = opt
                j += 1
                continue
            if j + 1 < len(arg):
                value: str | None = arg[j + 1 :]
            elif idx + 1 < len(argv):
                idx += 1
                value = argv[idx]
            else:
                value = None
            if match:
                if selector is not None:
                    selected = value if value is not None else ""
                else:
                    results.append(opt if value is not None else "")
                    if value is not None:
                        results.append(value)
            break
        idx += 1
    if selector is not None:
        return selected
    return tuple(results) if results else None


def apply_transformer(name: str, args: list[Arg], arg: str | None, display: str) -> BoundField:
    """Build the bound field of ``name(args...)[arg]``; ``ValueError`` on misuse."""
    if name in ("tolower", "toupper", "b64", "basename", "len"):
        if len(args) != 1 or not isinstance(args[0], BoundField):
            raise ValueError(f"transformer '{name}' takes exactly one field")
        if arg is not None:
            raise ValueError(f"transformer '{name}' does not support field arguments")
        bf = _unary(name, args[0])
        return BoundField(name=display, extract=bf.extract, type=bf.type, is_list=bf.is_list)
    parts = [_arg_extract(a) for a in args]
    if name == "join":
        if len(parts) != 2:
            raise ValueError("join() requires exactly 2 arguments: separator and list")
        (sep_f, _, sep_list), (lst_f, _, lst_list) = parts
        if sep_list:
            raise ValueError("join() first argument (separator) must be a single value, not a list")
        if not lst_list:
            raise ValueError("join() second argument must be a list")
        if arg is not None:
            raise ValueError("transformer 'join' does not support field arguments")

        def join(ev: Any) -> Any:
            sep = sep_f(ev)
            items = lst_f(ev)
            if sep is None or items is None:
                return None
            return str(sep).join(str(x) for x in items)

        return BoundField(name=display, extract=join, type=FieldType.CHARBUF)
    if name == "concat":
        if len(parts) < 2:
            raise ValueError("concat() requires at least 2 arguments")
        if any(t is not FieldType.CHARBUF and not t.is_string or lst for _, t, lst in parts):
            raise ValueError("concat() arguments must be strings")
        if arg is not None:
            raise ValueError("transformer 'concat' does not support field arguments")
        fns = [f for f, _, _ in parts]

        def concat(ev: Any) -> Any:
            out = []
            for f in fns:
                v = f(ev)
                if v is None:
                    return None
                out.append(v)
            return "".join(out)

        return BoundField(name=display, extract=concat, type=FieldType.CHARBUF)
    if name == "getopt":
        if len(parts) != 2:
            raise ValueError("getopt() requires exactly 2 arguments: args list and optstring")
        (argv_f, at, argv_list), (opt_f, ot, opt_list) = parts
        if not argv_list:
            raise ValueError("getopt() first argument must be a list")
        if opt_list:
            raise ValueError("getopt() second argument (optstring) must be a single value")
        if not (at.is_string and ot.is_string):
            raise ValueError("getopt() arguments must be strings")
        if arg is not None and len(arg) != 1:
            raise ValueError("getopt() field argument must be a single option character")

        def getopt(ev: Any) -> Any:
            argv = argv_f(ev)
            optstring = opt_f(ev)
            if argv is None or optstring is None:
                return None
            return _getopt(tuple(argv), str(optstring), arg)

        return BoundField(
            name=display, extract=getopt, type=FieldType.CHARBUF, is_list=arg is None
        )
    raise ValueError(f"unknown transformer '{name}'")

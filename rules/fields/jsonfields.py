"""``json.*`` / ``jevt.*`` fields (Falco's json plugin) and JSON helpers for plugin sources.

The json plugin works on the raw bytes of any plugin event. Its fields:

* ``json.value[<pointer>]`` (alias ``jevt.value``): an RFC 6901 pointer into the event.
  A JSON string comes back unquoted; any other value (number, bool, null, object, array)
  as compact JSON text. A path that does not resolve is missing. Pointer steps follow
  fastjson's ``Get``: an object step is a key lookup, an array step is a decimal index
  as Go's ``strconv.Atoi`` reads it (``+1`` and ``01`` are index 1), anything else fails.
  One leading ``/`` is dropped; an empty pointer gives the whole event.
* ``json.obj`` (alias ``jevt.obj``): the whole event pretty-printed (Go ``json.Indent``
  with two spaces).
* ``json.rawtime`` (alias ``jevt.rawtime``): the event timestamp in ns, as a string.

Falco hands the plugin the event bytes exactly as the source plugin produced them, and
fastjson re-emits numbers and string escapes as they were written. We only have the
decoded payload, so the text is rebuilt per source (:class:`JsonFlavor`): plain compact
JSON by default (CloudTrail files, GCP log entries), and Go ``encoding/json`` escaping
(``<`` ``>`` ``&`` U+2028 U+2029 as ``\\u003c`` ...) for sources whose bytes come from a Go
encoder (the kube-apiserver for k8s audit, the github and okta plugins themselves).

The helpers here (missing-value sentinel, C-string truncation, compact JSON) are shared
by the other plugin field modules of this package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from falconet.fields import ArgMode, FieldArgError, FieldDef, FieldType, field, simple

PLUGIN_VERSION = "0.7.4"

#: Marks an absent JSON key (``None`` is the JSON ``null`` value).
MISSING: Any = object()


# ---------------------------------------------------------------------------- text helpers


def cstr(s: str) -> str:
    """The string as Falco sees it: plugin strings are C strings, cut at the first NUL."""
    if "\x00" in s:
        return s[: s.index("\x00")]
    return s


def get_path(value: Any, keys: tuple[str, ...]) -> Any:
    """fastjson's ``Get(keys...)`` along object keys: the value, or :data:`MISSING`
    (arrays never match a key)."""
    v = value
    for k in keys:
        if type(v) is not dict:
            return MISSING
        v = v.get(k, MISSING)
        if v is MISSING:
            return MISSING
    return v


def string_or_empty(v: Any) -> str | None:
    """fastjson's ``GetStringBytes`` of a looked-up value: ``None`` when missing, the
    string (cut at a NUL) when it is one, ``""`` for any other JSON type."""
    if v is MISSING:
        return None
    return cstr(v) if type(v) is str else ""


def dumps_plain(value: Any) -> str:
    """Compact JSON (``{"a":1,"b":[true,null]}``), non-ASCII kept as is."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, lone surrogates
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pretty_plain(value: Any) -> str:
    """Indented JSON as Go's ``json.Indent(dst, src, "", "  ")`` writes it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, indent=2)


def go_escape(text: str) -> str:
    """Apply Go ``encoding/json``'s HTML-safe escapes to JSON text."""
    if "<" in text or ">" in text or "&" in text:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def dumps_go(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (HTML-safe escapes)."""
    return go_escape(dumps_plain(value))


def pretty_go(value: Any) -> str:
    return go_escape(pretty_plain(value))


def _sorted_dumps(value: Any, option: int) -> str:
    try:
        return orjson.dumps(value, option=option | orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        indent = 2 if option & orjson.OPT_INDENT_2 else None
        seps = (",", ": ") if indent else (",", ":")
        return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, separators=seps)


def dumps_go_map(value: Any) -> str:
    """Go ``json.Marshal`` of a ``map[string]interface{}``: keys sorted, HTML-safe escapes."""
    return go_escape(_sorted_dumps(value, 0))


def pretty_go_map(value: Any) -> str:
    return go_escape(_sorted_dumps(value, orjson.OPT_INDENT_2))


def go_float_ints(value: Any) -> Any:
    """Decode-to-``interface{}`` then re-marshal: integral floats print as integers in Go."""
    t = type(value)
    if t is dict:
        return {k: go_float_ints(v) for k, v in value.items()}
    if t is list:
        return [go_float_ints(v) for v in value]
    if t is float and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def parse_index(arg: str | None) -> int | None:
    """An index argument as libsinsp takes it: ASCII digits, no leading zero, 64 bits."""
    if arg is None:
        return None
    if not (arg.isascii() and arg.isdigit()) or (len(arg) > 1 and arg[0] == "0"):
        raise FieldArgError(f"invalid index argument '{arg}'")
    n = int(arg)
    if n >= 1 << 64:
        raise FieldArgError(f"index argument '{arg}' does not fit in 64 bits")
    return n


def go_atoi(s: str) -> int | None:
    """Go ``strconv.Atoi`` (decimal, optional sign, 64-bit range), or None on error."""
    if not _ATOI.fullmatch(s):
        return None
    n = int(s)
    if -(1 << 63) <= n < (1 << 63):
        return n
    return None


_ATOI = re.compile(r"[+-]?[0-9]+")


# ---------------------------------------------------------------------------- per source


@dataclass(frozen=True, slots=True)
class JsonFlavor:
    """How a source's event bytes look to the json plugin.

    ``view(ev)`` is the JSON document (usually ``ev.payload``), ``compact``/``pretty``
    rebuild compact and indented text from it.
    """

    view: Callable[[Any], Any]
    compact: Callable[[Any], str]
    pretty: Callable[[Any], str]


def _payload(ev: Any) -> Any:
    return ev.payload


PLAIN = JsonFlavor(_payload, dumps_plain, pretty_plain)
GO = JsonFlavor(_payload, dumps_go, pretty_go)

_FLAVORS: dict[str, JsonFlavor] = {"k8s_audit": GO}


def register_flavor(source: str, flavor: JsonFlavor) -> None:
    """Set how ``source``'s events render (called by the source modules at import)."""
    _FLAVORS[source] = flavor


def flavor_of(source: str) -> JsonFlavor:
    return _FLAVORS.get(source, PLAIN)


# ---------------------------------------------------------------------------- fields


def parse_pointer(arg: str) -> tuple[tuple[str, int | None], ...] | None:
    """Pointer steps as the json plugin walks them; None for the empty pointer."""
    if arg == "":
        return None
    if arg[0] == "/":
        arg = arg[1:]
    steps = []
    for raw in arg.split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        steps.append((key, go_atoi(key)))
    return tuple(steps)


def _make_value(arg: str | None) -> Callable[[Any], str | None]:
    steps = parse_pointer(arg or "")

    if steps is None:

        def whole(ev: Any) -> str:
            fl = _FLAVORS.get(ev.source, PLAIN)
            return fl.compact(fl.view(ev))

        return whole

    def extract(ev: Any) -> str | None:
        fl = _FLAVORS.get(ev.source, PLAIN)
        v = ev.payload if fl.view is _payload else fl.view(ev)
        for key, index in steps:
            t = type(v)
            if t is dict:
                v = v.get(key, MISSING)
                if v is MISSING:
                    return None
            elif t is list and index is not None and 0 <= index < len(v):
                v = v[index]
            else:
                return None
        if type(v) is str:
            return v if "\x00" not in v else cstr(v)
        return fl.compact(v)

    return extract


def _obj(ev: Any) -> str:
    cached = ev.cache.get("json.obj")
    if cached is None:
        fl = _FLAVORS.get(ev.source, PLAIN)
        cached = ev.cache["json.obj"] = fl.pretty(fl.view(ev))
    return cached


def _rawtime(ev: Any) -> str:
    return str(ev.ts)


def _fields(prefix: str, alias: bool) -> tuple[FieldDef, ...]:
    note = " (alias of the json.* field)" if alias else ""
    return (
        field(
            f"{prefix}.value",
            FieldType.CHARBUF,
            "value at a JSON pointer into the event: strings unquoted, other values as JSON" + note,
            _make_value,
            arg=ArgMode.REQUIRED,
        ),
        field(
            f"{prefix}.obj",
            FieldType.CHARBUF,
            "the whole event as indented JSON" + note,
            simple(_obj),
        ),
        field(
            f"{prefix}.rawtime",
            FieldType.CHARBUF,
            "event time in ns since the epoch, as a string" + note,
            simple(_rawtime),
        ),
    )


FIELDS: tuple[FieldDef, ...] = _fields("json", False) + _fields("jevt", True)

"""Rule output formats: ``%field`` tokens, ``<NA>`` in text and ``null`` in JSON.

Parsing follows libsinsp's formatter (``eventformatter.cpp``): every ``%`` starts a token;
an optional decimal width follows (the value is padded or cut to it); then comes the
longest prefix that parses *and* compiles as a field or transformer expression. A
trailing ``%`` is an error. Rendering never requires all values (Falco prefixes rule
outputs with ``*``): a missing value prints ``<NA>`` and is ``null`` in ``output_fields``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falconet.fields import BoundField

from . import ast as A
from .parser import parse_field_expr

NA = "<NA>"


class OutputError(Exception):
    """An output format does not compile; ``unknown`` marks an unknown field."""

    def __init__(self, message: str, unknown: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unknown = unknown


def to_text(value: Any) -> str:
    """Falco's text rendering of an extracted value."""
    if value is None:
        return NA
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "(" + ",".join(to_text(v) for v in value) + ")"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_json_value(value: Any) -> Any:
    """The ``output_fields`` value: numbers stay numbers, lists become arrays."""
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


@dataclass(frozen=True, slots=True)
class _Token:
    literal: str | None
    field: BoundField | None = None
    width: int = 0
    name: str = ""
    transformed: bool = False


class OutputFormat:
    """A compiled output format; :meth:`render` gives the text and the JSON fields.

    Each distinct field is extracted once per rendering; the text and ``output_fields``
    are built from the same values.
    """

    __slots__ = ("format", "_extract", "_text", "_parts", "_json")

    def __init__(self, fmt: str, bind: Callable[[A.FieldRef | A.Transformer], BoundField]):
        self.format = fmt
        slots: dict[str, int] = {}
        extract: list[Callable[[Any], Any]] = []
        text: list[Callable[[Any], str] | None] = []
        parts: list[str | tuple[int, int]] = []
        json_fields: list[tuple[str, int]] = []
        for t in _parse(fmt, bind):
            if t.literal is not None:
                parts.append(t.literal)
                continue
            bf = t.field
            assert bf is not None
            i = slots.get(t.name)
            if i is None:
                i = slots[t.name] = len(extract)
                extract.append(bf.output_extract)
                text.append(bf.text)
                if not t.transformed:
                    json_fields.append((t.name, i))
            parts.append((i, t.width))
        self._extract = tuple(extract)
        self._text = tuple(text)
        self._parts = tuple(parts)
        self._json = tuple(json_fields)

    def render(self, ev: Any) -> tuple[str, dict[str, Any]]:
        values = [ex(ev) for ex in self._extract]
        texts = self._text
        out: list[str] = []
        for p in self._parts:
            if p.__class__ is str:
                out.append(p)  # type: ignore[arg-type]
                continue
            i, width = p  # type: ignore[misc]
            v = values[i]
            if v is None:
                s = NA
            elif texts[i] is not None:
                s = texts[i](v)  # type: ignore[misc]
            elif v.__class__ is str:
                s = v
            else:
                s = to_text(v)
            if width:
                s = s[:width].ljust(width)
            out.append(s)
        fields = {}
        for name, i in self._json:
            v = values[i]
            fields[name] = v if v.__class__ is not tuple and v.__class__ is not bytes else to_json_value(v)
        return "".join(out), fields


def _parse(fmt: str, bind: Callable[[A.FieldRef | A.Transformer], BoundField]) -> list[_Token]:
    if not fmt:
        raise OutputError("empty formatting token")
    if fmt[0] == "*":
        fmt = fmt[1:]
    tokens: list[_Token] = []
    n = len(fmt)
    last = 0
    j = 0
    while j < n:
        if fmt[j] != "%":
            j += 1
            continue
        if last != j:
            tokens.append(_Token(fmt[last:j]))
        if j == n - 1:
            raise OutputError("invalid formatting syntax: formatting cannot end with a %")
        width = 0
        if fmt[j + 1].isdigit():
            k = j + 1
            while k < n and fmt[k].isdigit():
                k += 1
            width = int(fmt[j + 1 : k])
            if k >= n:
                raise OutputError("invalid formatting syntax: formatting cannot end with a number")
            j = k - 1
        start = j + 1
        size = n - start
        found: tuple[A.FieldRef | A.Transformer, BoundField, int] | None = None
        last_err = "invalid formatting token"
        unknown = False
        while size > 0:
            parsed = parse_field_expr(fmt[start : start + size])
            if parsed is None:
                size -= 1
                continue
            expr, consumed = parsed
            try:
                bf = bind(expr)
            except OutputError as exc:
                last_err, unknown = exc.message, exc.unknown
                size = min(size, consumed) - 1
                continue
            found = (expr, bf, consumed)
            break
        if found is None:
            raise OutputError(f"unknown filter: {last_err}", unknown=True if unknown else unknown)
        expr, bf, consumed = found
        tokens.append(
            _Token(
                None,
                bf,
                width,
                name=str(expr),
                transformed=isinstance(expr, A.Transformer),
            )
        )
        j = start + consumed
        last = j
    if last < n:
        tokens.append(_Token(fmt[last:]))
    return tokens

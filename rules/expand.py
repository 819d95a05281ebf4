"""Text-level rewriting done before parsing: list substitution and exceptions.

Falco substitutes lists into condition *text* (not into the AST) and rewrites rule
exceptions into ``and not (...)`` condition text; the quirks of both are part of the
language (a list name is replaced wherever it stands between delimiters, items with a
space get double quotes, an empty list eats a comma). This module copies them exactly
(falco ``rule_loader_compiler.cpp``: ``resolve_list``, ``build_rule_exception_infos``).
"""

from __future__ import annotations

from .collector import ExceptionEntry, ExceptionInfo, LoadFailure
from .parser import LIST_OPERATORS, is_operator_with_modifier

_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="


def quote_item(item: str) -> str:
    """Double-quote an item that contains a space and is not already quoted."""
    if " " in item and item[:1] not in ('"', "'"):
        return '"' + item + '"'
    return item


def paren_item(item: str) -> str:
    if item[:1] != "(":
        return "(" + item + ")"
    return item


def resolve_list(cond: str, name: str, items: list[str]) -> tuple[str, bool]:
    """Replace every delimited occurrence of list ``name`` in ``cond`` by its items.

    Returns the new text and whether the list was used.
    """
    used = False
    n = len(name)
    start = cond.find(name)
    while start != -1:
        end = start + n
        if (start == 0 or cond[start - 1] in _DELIMS) and (
            end >= len(cond) or cond[end] in _DELIMS
        ):
            while start > 0 and cond[start - 1] in _BLANKS:
                start -= 1
            while end < len(cond) and cond[end] in _BLANKS:
                end += 1
            sub = ", ".join(quote_item(v) for v in items)
            if not sub:
                if start > 0 and cond[start - 1] == ",":
                    start -= 1
                elif end < len(cond) and cond[end] == ",":
                    end += 1
            new = ""
            if start > 0:
                new += cond[:start] + " "
            new += sub + " "
            new += cond[end:]
            cond = new
            start += len(sub) + 1
            used = True
        start = cond.find(name, start + 1)
    return cond, used


def _is_list_operator(op: str) -> bool:
    return op in LIST_OPERATORS or is_operator_with_modifier(op)


def build_exceptions(cond: str, exceptions: list[ExceptionInfo]) -> tuple[str, list[str]]:
    """Rewrite a rule's exceptions into its condition text.

    Returns the new condition and the exception fields (Falco's ``exception_fields``).
    Raises :class:`LoadFailure` for values whose shape does not match the fields.
    """
    fields: list[str] = []

    def note(f: str) -> None:
        if f not in fields:
            fields.append(f)

    out = "(" + cond + ")"
    for ex in exceptions:
        if not ex.fields.is_list:
            icond = ""
            for val in ex.values:
                if val.is_list:
                    raise LoadFailure(
                        "LOAD_ERR_VALIDATE",
                        "Expected values array to contain a list of strings",
                        ex.ctx,
                    )
                icond += f"({ex.fields.item} {ex.comps.item} (" if not icond else ", "
                note(ex.fields.item)
                icond += quote_item(val.item)
            icond += "))" if icond else ""
        else:
            icond = "("
            for values in ex.values:
                if len(ex.fields.items) != len(values.items):
                    raise LoadFailure(
                        "LOAD_ERR_VALIDATE",
                        "Fields and values lists must have equal length",
                        ex.ctx,
                    )
                icond += "" if icond == "(" else " or "
                icond += "("
                for k, fld in enumerate(ex.fields.items):
                    icond += "" if k == 0 else " and "
                    value: ExceptionEntry = values.items[k]
                    comp = ex.comps.items[k].item
                    if value.is_list:
                        istr = "(" + ", ".join(quote_item(v.item) for v in value.items) + ")"
                    elif _is_list_operator(comp):
                        istr = paren_item(value.item)
                    else:
                        istr = quote_item(value.item)
                    icond += f" {fld.item} {comp} {istr}"
                    note(fld.item)
                icond += ")"
            icond += ")"
            if icond == "()":
                icond = ""
        if icond:
            out += " and not " + icond
    return out, fields

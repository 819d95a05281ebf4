"""Which event types a condition can match (libsinsp ``filter/ppm_codes.cpp``).

``and`` intersects its children's sets and ``or`` unites them; negation is pushed down to
the leaves (De Morgan). An ``evt.type`` check with ``=``, ``==``, ``!=`` or ``in`` against
literals gives the named types (complemented under negation or for ``!=``); ``evt.type
exists`` gives every type; checks on ``evt.num`` that its invariant (``evt.num >= 1``)
decides give the empty or the universal set; any other check is neutral: every type,
negated or not. Types are event names here (Falco counts enter and exit codes, which only
changes the size of the universe).
"""

from __future__ import annotations

from . import ast as A

_EVTTYPE_OPS = frozenset({"=", "==", "!=", "in"})


class EvttypeError(Exception):
    """A construct the event-type analysis refuses (a transformer on ``evt.type``)."""

    def __init__(self, message: str, pos: A.Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _uint(text: str) -> int | None:
    t = text.strip()
    try:
        n = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    except ValueError:
        return None
    return n % (1 << 64)


def _evt_num_invariant(e: A.BinaryCheck) -> bool | None:
    """True/False when ``evt.num`` alone decides the check, None when it cannot."""
    left = e.left
    if not isinstance(left, A.FieldRef) or left.name != "evt.num" or left.arg is not None:
        return None
    op, right = e.op, e.right
    if op == "in":
        if not isinstance(right, A.ListValue):
            return None
        if not right.values:
            return False
        for v in right.values:
            if _uint(v) != 0:
                return None
        return False
    if not isinstance(right, A.Value):
        return None
    n = _uint(right.text)
    if n is None:
        return None
    table = {
        "=": False if n == 0 else None,
        "==": False if n == 0 else None,
        "!=": True if n == 0 else None,
        "<": False if n <= 1 else None,
        "<=": False if n == 0 else None,
        ">": True if n == 0 else None,
        ">=": True if n <= 1 else None,
    }
    return table.get(op)


def _is_evttype_field(o: object) -> bool:
    return isinstance(o, A.FieldRef) and o.name in ("evt.type", "syscall.type") and o.arg is None


def _check_transformers(o: object) -> None:
    if isinstance(o, A.Transformer):
        for a in o.args:
            if _is_evttype_field(a):
                raise EvttypeError(
                    "event code search does not support `evt.type` checks with transformers",
                    o.pos,
                )
            _check_transformers(a)


def event_types(expr: A.Expr, universe: frozenset[str]) -> frozenset[str]:
    """The subset of ``universe`` that ``expr`` can match."""

    def leaf(node: A.Expr, negated: bool) -> frozenset[str]:
        if isinstance(node, A.BinaryCheck):
            inv = _evt_num_invariant(node)
            if inv is not None:
                hit = inv != negated
                return universe if hit else frozenset()
            _check_transformers(node.left)
            if node.op in _EVTTYPE_OPS and _is_evttype_field(node.left):
                right = node.right
                if isinstance(right, (A.FieldRef, A.Transformer)):
                    raise EvttypeError(
                        "right-hand field comparisons on `evt.type`/`syscall.type` checks are "
                        "not supported by event code search",
                        node.pos,
                    )
                names = right.values if isinstance(right, A.ListValue) else (right.text,)  # type: ignore[union-attr]
                codes = universe & frozenset(names)
                if negated != (node.op == "!="):
                    codes = universe - codes
                return codes
            return universe
        if isinstance(node, A.UnaryCheck):
            _check_transformers(node.left)
            if _is_evttype_field(node.left) and negated:
                return frozenset()
            return universe
        return universe  # an unresolved identifier is neutral

    # iterative post-order walk: (node, negated, children_done)
    def walk(node: A.Expr, negated: bool) -> frozenset[str]:
        if isinstance(node, A.MacroRef):
            return walk(node.expr, negated)
        if isinstance(node, A.Not):
            return walk(node.child, not negated)
        if isinstance(node, (A.And, A.Or)):
            conj = isinstance(node, A.And) != negated
            acc: frozenset[str] | None = None
            for c in node.children:
                s = walk(c, negated)
                if acc is None:
                    acc = s
                else:
                    acc = (acc & s) if conj else (acc | s)
            return acc if acc is not None else universe
        return leaf(node, negated)

    return walk(expr, False)

"""Macro substitution on the AST (falco ``filter_macro_resolver.cpp``).

Every identifier in check position is replaced by the AST of the macro of that name,
wrapped in a :class:`MacroRef` (so a macro behaves as if parenthesized). Macros nest;
a reference back into the current path is a loop error; an unknown identifier is an
"Undefined macro" error. Only the first problem is reported, as Falco does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast as A


@dataclass(slots=True)
class Resolution:
    """Outcome of :func:`resolve`: the new AST, macros used, and the first problem."""

    expr: A.Expr
    used: set[str] = field(default_factory=set)
    error: tuple[str, A.Pos] | None = None


def resolve(expr: A.Expr, macros: dict[str, A.Expr]) -> Resolution:
    """Substitute macros (``name -> AST``) into ``expr``."""
    res = Resolution(expr)
    path: list[str] = []
    errors: list[tuple[str, A.Pos]] = []
    unknown: list[tuple[str, A.Pos]] = []

    def visit(node: A.Expr) -> A.Expr:
        if isinstance(node, A.And):
            return A.And(tuple(visit(c) for c in node.children), node.pos)
        if isinstance(node, A.Or):
            return A.Or(tuple(visit(c) for c in node.children), node.pos)
        if isinstance(node, A.Not):
            return A.Not(visit(node.child), node.pos)
        if isinstance(node, A.MacroRef):
            return node
        if isinstance(node, A.Identifier):
            body = macros.get(node.name)
            if body is None:
                unknown.append((node.name, node.pos))
                return node
            if node.name in path:
                errors.append((f"reference loop in macro '{node.name}'", node.pos))
                return node
            path.append(node.name)
            try:
                inner = visit(body)
            finally:
                path.pop()
            res.used.add(node.name)
            return A.MacroRef(node.name, inner, node.pos)
        return node

    res.expr = visit(expr)
    if errors:
        res.error = errors[0]
    elif unknown:
        name, pos = unknown[0]
        res.error = (f"Undefined macro '{name}' used in filter.", pos)
    return res

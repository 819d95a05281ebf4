"""The condition AST: immutable nodes, each with its position in the condition text.

Shapes follow libsinsp's filter AST (``and``/``or`` are n-ary, ``not`` is unary, checks
have a field on the left). One node is ours: :class:`MacroRef` keeps the name of a
substituted macro around the macro's AST, so evaluation is unchanged while errors and
explanations can say which macro a check came from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pos:
    """A position in a condition: 0-based index, 1-based line and column."""

    idx: int = 0
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"offset {self.idx} (line {self.line}, column {self.col})"


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    child: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Identifier:
    """A bare word in check position: a macro reference until macros are resolved."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class MacroRef:
    """A resolved macro: behaves exactly as ``expr`` (as if parenthesized)."""

    name: str
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``name`` or ``name[arg]``."""

    name: str
    arg: str | None
    pos: Pos

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(frozen=True, slots=True)
class Transformer:
    """``tolower(x)``, ``val(x)``, ``join(sep, x)`` …, optionally indexed: ``getopt(...)[c]``."""

    name: str
    args: tuple[Operand, ...]
    arg: str | None
    pos: Pos

    def __str__(self) -> str:
        inner = ", ".join(str(a) for a in self.args)
        tail = "" if self.arg is None else f"[{self.arg}]"
        return f"{self.name}({inner}){tail}"


@dataclass(frozen=True, slots=True)
class Value:
    """A literal (quoted strings are already unescaped; bare words as written)."""

    text: str
    pos: Pos

    def __str__(self) -> str:
        return repr(self.text)


@dataclass(frozen=True, slots=True)
class ListValue:
    """``(a, b, "c d")``."""

    values: tuple[str, ...]
    pos: Pos

    def __str__(self) -> str:
        return "(" + ", ".join(repr(v) for v in self.values) + ")"


@dataclass(frozen=True, slots=True)
class TransformerList:
    """A parenthesized list given as a transformer argument: ``concat((a, b))``."""

    items: tuple[Operand, ...]
    pos: Pos

    def __str__(self) -> str:
        return "(" + ", ".join(str(a) for a in self.items) + ")"


@dataclass(frozen=True, slots=True)
class UnaryCheck:
    """``field exists``."""

    left: FieldRef | Transformer
    op: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class BinaryCheck:
    """``field op value``; ``op`` may carry a modifier (``startswith oneof``)."""

    left: FieldRef | Transformer
    op: str
    right: Value | ListValue | FieldRef | Transformer
    pos: Pos


Operand = FieldRef | Transformer | Value | ListValue | TransformerList
Expr = And | Or | Not | Identifier | MacroRef | UnaryCheck | BinaryCheck


def walk(expr: Expr):
    """Yield every boolean-level node of ``expr`` (depth first, iteratively)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (And, Or)):
            stack.extend(reversed(node.children))
        elif isinstance(node, Not):
            stack.append(node.child)
        elif isinstance(node, MacroRef):
            stack.append(node.expr)


def fields_of(expr: Expr) -> list[FieldRef]:
    """Every field referenced by the checks of ``expr`` (both sides, inside transformers)."""
    out: list[FieldRef] = []

    def operand(o: object) -> None:
        if isinstance(o, FieldRef):
            out.append(o)
        elif isinstance(o, Transformer):
            for a in o.args:
                operand(a)
        elif isinstance(o, TransformerList):
            for a in o.items:
                operand(a)

    for node in walk(expr):
        if isinstance(node, UnaryCheck):
            operand(node.left)
        elif isinstance(node, BinaryCheck):
            operand(node.left)
            operand(node.right)
    return out

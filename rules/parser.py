"""The Falco condition grammar: a recursive-descent parser producing :mod:`rules.ast`.

This follows libsinsp's parser token for token (``userspace/libsinsp/filter/parser.cpp``):
the same regular expressions, operator order, blank rules (word operators need a blank
after them, ``and``/``or`` need a blank or ``(``), quoted-string lexing and escapes, and
the recursion cap (Falco parses rule conditions with a cap of 1000).

    Expr        ::= OrExpr
    OrExpr      ::= AndExpr ('or' (BLANK AndExpr | '(' Expr ')'))*
    AndExpr     ::= NotExpr ('and' (BLANK NotExpr | '(' Expr ')'))*
    NotExpr     ::= ('not' BLANK+)* ('not(' Expr ')' | Check)
    Check       ::= '(' Expr ')' | Field Condition | Transformer Condition | Identifier
    Condition   ::= 'exists' | NumOp NumValue | StrOp StrValue | StrOp Modifier ListValue
                  | ListOp ListValue     (each value may also be a transformer or val())

Errors raise :class:`ConditionSyntaxError` with the position where parsing stopped.
"""

from __future__ import annotations

import re
import sys

from falconet.errors import FalconetError

from .ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    Identifier,
    ListValue,
    Not,
    Operand,
    Or,
    Pos,
    Transformer,
    TransformerList,
    UnaryCheck,
    Value,
)

#: Falco's cap for rule conditions (libsinsp's own default is 100).
DEFAULT_MAX_DEPTH = 1000

_SPACE = " \t\n\v\f\r"  # POSIX [[:space:]]
_RX_NOT_BLANK = re.compile(r"not[ \t\n\v\f\r]+")
_RX_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RX_FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_RX_FIELD_ARG_BARE = re.compile(r"[^\]\[\"' \t\n\v\f\r]+")
_RX_HEX_NUM = re.compile(r"0[xX][0-9a-fA-F]+")
_RX_NUMBER = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
_RX_BARE_STR = re.compile(r"[^()\"' \t\n\v\f\r=,]+")

_BLANKS = " \t\b\r\n"  # what lex_blank skips (note: \b, not \v or \f)

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
# a trailing space marks a word operator that needs a blank after it
STR_OPS = (
    "==",
    "=",
    "!=",
    "glob ",
    "iglob ",
    "contains ",
    "icontains ",
    "bcontains ",
    "startswith ",
    "bstartswith ",
    "endswith ",
    "regex ",
)
MODIFIERS = ("oneof ", "anyof ", "allof ")
LIST_OPS = ("intersects", "in", "pmatch")
TRANSFORMERS = ("tolower(", "toupper(", "b64(", "basename(", "len(", "join(", "concat(", "getopt(")
VAL_TRANSFORMER = "val("

#: Every operator, as rule exceptions validate their ``comps`` against.
SUPPORTED_OPERATORS = tuple(
    o.strip() for o in (*UNARY_OPS, *NUM_OPS, *STR_OPS, *LIST_OPS)
)
#: Operators whose right-hand side is a list.
LIST_OPERATORS = LIST_OPS
#: String operators a modifier may follow.
MODIFIABLE_OPERATORS = frozenset(o.strip() for o in STR_OPS)
MODIFIER_NAMES = tuple(m.strip() for m in MODIFIERS)


def is_operator_with_modifier(op: str) -> bool:
    """``startswith oneof`` and the like (one blank between the two words)."""
    parts = op.split()
    return (
        len(parts) == 2
        and parts[0] in MODIFIABLE_OPERATORS
        and parts[1] in MODIFIER_NAMES
        and op == f"{parts[0]} {parts[1]}"
    )


class ConditionSyntaxError(FalconetError):
    """A condition does not parse; ``pos`` is where the parser stopped."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _quote_list(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{i}'" for i in items)


class _Depth:
    __slots__ = ("parser",)

    def __init__(self, parser: Parser) -> None:
        self.parser = parser

    def __enter__(self) -> None:
        p = self.parser
        p.depth += 1
        if p.depth >= p.max_depth:
            raise p.error(f"exceeded max depth limit of {p.max_depth}")

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


def unescape(token: str) -> str:
    """Unescape a quoted-string token (delimiters included), as libsinsp does.

    Supported: ``\\b \\f \\n \\r \\t \\\\ \\/``, ``\\"`` inside double quotes, ``\\'``
    inside single quotes, ``\\xHH``, and the legacy ``\\ `` (backslash-space), which
    yields one backslash. Anything else raises ``ValueError``.
    """
    out: list[str] = []
    n = len(token) - 1
    quote = token[0]
    i = 1
    escaped = False
    while i < n:
        c = token[i]
        if not escaped:
            if c == "\\":
                escaped = True
            else:
                out.append(c)
        else:
            if c == "b":
                out.append("\b")
            elif c == "f":
                out.append("\f")
            elif c == "n":
                out.append("\n")
            elif c == "r":
                out.append("\r")
            elif c == "t":
                out.append("\t")
            elif c in (" ", "\\"):
                out.append("\\")
            elif c == "/":
                out.append("/")
            elif c == '"':
                if quote != c:
                    raise ValueError("invalid \\\" escape in '-quoted string")
                out.append('"')
            elif c == "'":
                if quote != c:
                    raise ValueError("invalid \\' escape in \"-quoted string")
                out.append("'")
            elif c == "x":
                if i + 2 >= n:
                    raise ValueError("truncated hex char escape sequence")
                digits = token[i + 1 : i + 3]
                if not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise ValueError(f"invalid hex char escape sequence: {digits}")
                byte = int(digits, 16)
                # bytes >= 0x80 become the surrogate an undecodable event byte decodes to
                out.append(chr(byte) if byte < 0x80 else chr(0xDC00 + byte))
                i += 2
            else:
                raise ValueError(f"unsupported string escape sequence: \\{c}")
            escaped = False
        i += 1
    return "".join(out)


class Parser:
    """Parse one condition string. Use :func:`parse_condition` for the common case."""

    def __init__(self, text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.text = text
        self.n = len(text)
        self.idx = 0
        self.line = 1
        self.col = 1
        self.last = ""
        self.depth = 0
        self.max_depth = max_depth

    # -- positions ------------------------------------------------------------------
    def pos(self) -> Pos:
        return Pos(self.idx, self.line, self.col)

    def _save(self) -> tuple[int, int, int, str]:
        return self.idx, self.line, self.col, self.last

    def _restore(self, state: tuple[int, int, int, str]) -> None:
        self.idx, self.line, self.col, self.last = state

    def _advance(self, s: str) -> None:
        for c in s:
            self.col += 1
            if c in "\r\n":
                self.col = 1
                self.line += 1
        self.idx += len(s)

    def _cur(self) -> str:
        return self.text[self.idx] if self.idx < self.n else "\0"

    def error(self, message: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, self.pos())

    def guard(self) -> _Depth:
        return _Depth(self)

    # -- lexing -----------------------------------------------------------------------
    def lex_blank(self) -> bool:
        found = False
        while self._cur() in _BLANKS and self._cur() != "\0":
            found = True
            self._advance(self._cur())
        return found

    def _rx(self, rx: re.Pattern[str]) -> bool:
        m = rx.match(self.text, self.idx)
        if m is None:
            return False
        self.last = m.group(0)
        self._advance(self.last)
        return True

    def _str(self, s: str) -> bool:
        if self.text.startswith(s, self.idx):
            self.last = s
            self._advance(s)
            return True
        return False

    def _str_list(self, options: tuple[str, ...]) -> bool:
        return any(self._str(o) for o in options)

    def _op_list(self, options: tuple[str, ...]) -> bool:
        for op in options:
            if not op.endswith(" "):
                if self._str(op):
                    return True
                continue
            state = self._save()
            if self._str(op.strip()):
                if self.lex_blank():
                    return True
                self._restore(state)
        return False

    def lex_quoted_str(self) -> bool:
        delim = self._cur()
        if delim not in "'\"" or delim == "\0":
            return False
        state = self._save()
        prev = "\\"
        chars: list[str] = []
        while self._cur() != "\0":
            c = self._cur()
            if c == delim and prev != "\\":
                self._advance(c)
                chars.append(delim)
                try:
                    self.last = unescape("".join(chars))
                except ValueError as exc:
                    raise self.error(str(exc)) from None
                return True
            prev = c
            chars.append(c)
            self._advance(c)
        self._restore(state)
        return False

    def _list_value_follows(self) -> bool:
        if self._cur() == "(":
            return True
        state = self._save()
        ok = self._rx(_RX_IDENTIFIER)
        self._restore(state)
        return ok

    def _bool_keyword_follows(self) -> bool:
        for kw in ("and", "or", "not"):
            if self.text.startswith(kw, self.idx):
                nxt = self.idx + len(kw)
                if nxt >= self.n or not self.text[nxt].isalnum():
                    return True
        return False

    # -- grammar -----------------------------------------------------------------------
    def parse(self) -> Expr:
        if not self.text:
            raise self.error("filter input string is empty")
        expr = self.parse_or()
        if self.idx != self.n:
            raise self.error(f"unexpected token after '{self.last}', expecting 'or', 'and'")
        return expr

    def parse_or(self) -> Expr:
        with self.guard():
            pos = self.pos()
            self.lex_blank()
            children = [self.parse_and()]
            self.lex_blank()
            while self._str("or"):
                if not self.lex_blank():
                    if self._str("("):
                        child = self.parse_embedded_remainder()
                    else:
                        raise self.error("expected blank or '(' after 'or'")
                else:
                    child = self.parse_and()
                children.append(child)
                self.lex_blank()
            if len(children) > 1:
                return Or(tuple(children), pos)
            return children[0]

    def parse_and(self) -> Expr:
        with self.guard():
            pos = self.pos()
            self.lex_blank()
            children = [self.parse_not()]
            self.lex_blank()
            while self._str("and"):
                if not self.lex_blank():
                    if self._str("("):
                        child = self.parse_embedded_remainder()
                    else:
                        raise self.error("expected blank or '(' after 'and'")
                else:
                    child = self.parse_not()
                children.append(child)
                self.lex_blank()
            if len(children) > 1:
                return And(tuple(children), pos)
            return children[0]

    def parse_not(self) -> Expr:
        with self.guard():
            pos = self.pos()
            negate = False
            self.lex_blank()
            while self._rx(_RX_NOT_BLANK):
                negate = not negate
            if self._str("not("):
                negate = not negate
                child = self.parse_embedded_remainder()
            else:
                child = self.parse_check()
            return Not(child, pos) if negate else child

    def parse_embedded_remainder(self) -> Expr:
        with self.guard():
            self.lex_blank()
            child = self.parse_or()
            self.lex_blank()
            if not self._str(")"):
                raise self.error("expected a ')' token")
            return child

    def parse_check(self) -> Expr:
        with self.guard():
            pos = self.pos()
            self.lex_blank()
            if self._str("("):
                return self.parse_embedded_remainder()
            if self._rx(_RX_FIELD_NAME):
                left = self.parse_field_remainder(self.last, pos)
                return self.parse_condition(left, pos)
            if self._str_list(TRANSFORMERS):
                self.lex_blank()
                left = self.parse_transformer_remainder(self.last[:-1], pos)
                return self.parse_condition(left, pos)
            if self._rx(_RX_IDENTIFIER):
                return Identifier(self.last, pos)
            raise self.error("expected a '(' token, a field check, or an identifier")

    def parse_field_remainder(self, name: str, pos: Pos) -> FieldRef:
        with self.guard():
            return FieldRef(name, self.parse_optional_field_arg(), pos)

    def parse_optional_field_arg(self) -> str | None:
        if not self._str("["):
            return None
        if not self.lex_quoted_str() and not self._rx(_RX_FIELD_ARG_BARE):
            raise self.error("expected a valid field argument: a quoted string or a bare string")
        arg = self.last
        if not self._str("]"):
            raise self.error("expected a ']' token")
        return arg

    def parse_transformer_remainder(self, name: str, pos: Pos) -> Transformer:
        with self.guard():
            self.lex_blank()
            args: list[Operand] = []
            while True:
                args.append(self.parse_transformer_arg(self.pos()))
                self.lex_blank()
                if not self._str(","):
                    break
            self.lex_blank()
            if not self._str(")"):
                raise self.error("expected a ')' token closing the transformer")
            return Transformer(name, tuple(args), self.parse_optional_field_arg(), pos)

    def parse_transformer_arg(self, pos: Pos) -> Operand:
        with self.guard():
            self.lex_blank()
            if self._rx(_RX_HEX_NUM) or self._rx(_RX_NUMBER):
                return Value(self.last, pos)
            if self.lex_quoted_str():
                return Value(self.last, pos)
            if self._str("("):
                return self.parse_transformer_list(pos)
            if self._str_list(TRANSFORMERS):
                return self.parse_transformer_remainder(self.last[:-1], pos)
            if self._rx(_RX_FIELD_NAME):
                return self.parse_field_remainder(self.last, pos)
            raise self.error(
                "expected field transformer argument: "
                "field, transformer, quoted string, number, or transformer list"
            )

    def parse_transformer_list(self, pos: Pos) -> TransformerList:
        items: list[Operand] = []
        self.lex_blank()
        if self._str(")"):
            return TransformerList((), pos)
        items.append(self.parse_transformer_list_arg(pos))
        self.lex_blank()
        while self._str(","):
            self.lex_blank()
            items.append(self.parse_transformer_list_arg(pos))
            self.lex_blank()
        if not self._str(")"):
            raise self.error("expected ')'")
        return TransformerList(tuple(items), pos)

    def parse_transformer_list_arg(self, pos: Pos) -> Operand:
        if self._rx(_RX_FIELD_NAME):
            return self.parse_field_remainder(self.last, pos)
        if self._str_list(TRANSFORMERS):
            self.lex_blank()
            return self.parse_transformer_remainder(self.last[:-1], pos)
        if self.lex_quoted_str():
            return Value(self.last, pos)
        if self._rx(_RX_HEX_NUM) or self._rx(_RX_NUMBER):
            return Value(self.last, pos)
        raise self.error(
            "expected transformer list argument: field, transformer, quoted string, or number"
        )

    def parse_condition(self, left: FieldRef | Transformer, pos: Pos) -> Expr:
        with self.guard():
            self.lex_blank()
            if self._op_list(UNARY_OPS):
                return UnaryCheck(left, self.last.strip(), pos)
            self.lex_blank()
            if self._op_list(NUM_OPS):
                op = self.last
                right = self.parse_num_value_or_transformer()
            elif self._op_list(STR_OPS):
                op = self.last
                had_blank = op[0].isalpha() or self.lex_blank()
                state = self._save()
                if (
                    had_blank
                    and self._op_list(MODIFIERS)
                    and self._list_value_follows()
                    and not self._bool_keyword_follows()
                ):
                    op = op.strip() + " " + self.last.strip()
                    right = self.parse_list_value()
                else:
                    self._restore(state)
                    right = self.parse_str_value_or_transformer(False)
            elif self._op_list(LIST_OPS):
                op = self.last
                right = self.parse_list_value_or_transformer()
            else:
                raise self.error(
                    "expected a valid check operator: one of "
                    + _quote_list(SUPPORTED_OPERATORS)
                )
            return BinaryCheck(left, op.strip(), right, pos)

    def parse_num_value_or_transformer(self) -> Value | Transformer:
        with self.guard():
            self.lex_blank()
            pos = self.pos()
            t = self.try_parse_transformer_or_val()
            if t is not None:
                return t
            if self._rx(_RX_HEX_NUM) or self._rx(_RX_NUMBER):
                return Value(self.last, pos)
            raise self.error(
                "expected a number value or a field with a valid transformer: "
                + _quote_list([VAL_TRANSFORMER[:-1], *(t[:-1] for t in TRANSFORMERS)])
            )

    def parse_str_value_or_transformer(self, no_transformer: bool) -> Value | Transformer:
        with self.guard():
            self.lex_blank()
            pos = self.pos()
            if not no_transformer:
                t = self.try_parse_transformer_or_val()
                if t is not None:
                    return t
            if self.lex_quoted_str() or self._rx(_RX_BARE_STR):
                return Value(self.last, pos)
            if no_transformer:
                raise self.error("expected a string value")
            raise self.error(
                "expected a string value or a field with a valid transformer: "
                + _quote_list([VAL_TRANSFORMER[:-1], *(t[:-1] for t in TRANSFORMERS)])
            )

    def try_parse_list(self) -> ListValue | None:
        pos = self.pos()
        if not self._str("("):
            return None
        values: list[str] = []
        self.lex_blank()
        state = self._save()
        try:
            first = self.parse_str_value_or_transformer(True)
        except ConditionSyntaxError:
            self._restore(state)
            first = None
        if first is not None:
            assert isinstance(first, Value)
            values.append(first.text)
            self.lex_blank()
            while self._str(","):
                nxt = self.parse_str_value_or_transformer(True)
                assert isinstance(nxt, Value)
                values.append(nxt.text)
                self.lex_blank()
        if not self._str(")"):
            raise self.error("expected a ')' token")
        return ListValue(tuple(values), pos)

    def parse_list_value(self) -> ListValue | Value:
        with self.guard():
            self.lex_blank()
            pos = self.pos()
            lst = self.try_parse_list()
            if lst is not None:
                return lst
            if self._rx(_RX_IDENTIFIER):
                return Value(self.last, pos)
            raise self.error("expected a list or an identifier")

    def parse_list_value_or_transformer(self) -> ListValue | Value | Transformer:
        with self.guard():
            self.lex_blank()
            pos = self.pos()
            lst = self.try_parse_list()
            if lst is not None:
                return lst
            t = self.try_parse_transformer_or_val()
            if t is not None:
                return t
            if self._rx(_RX_IDENTIFIER):
                return Value(self.last, pos)
            raise self.error(
                "expected a list, an identifier, or a field with a valid transformer: "
                + _quote_list([VAL_TRANSFORMER[:-1], *(t[:-1] for t in TRANSFORMERS)])
            )

    def try_parse_transformer_or_val(self) -> Transformer | None:
        with self.guard():
            self.lex_blank()
            pos = self.pos()
            if self._str(VAL_TRANSFORMER):
                self.lex_blank()
                field_pos = self.pos()
                if not self._rx(_RX_FIELD_NAME):
                    raise self.error("expected a field within 'val' transformer")
                child = self.parse_field_remainder(self.last, field_pos)
                self.lex_blank()
                if not self._str(")"):
                    raise self.error("expected a ')' token closing the transformer")
                return Transformer("val", (child,), self.parse_optional_field_arg(), pos)
            if self._str_list(TRANSFORMERS):
                self.lex_blank()
                return self.parse_transformer_remainder(self.last[:-1], pos)
            return None


def parse_condition(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Expr:
    """Parse a whole condition; raise :class:`ConditionSyntaxError` on any problem."""
    parser = Parser(text, max_depth)
    limit = sys.getrecursionlimit()
    needed = max_depth * 2 + 200
    if limit < needed:
        sys.setrecursionlimit(needed)
    try:
        return parser.parse()
    finally:
        if limit < needed:
            sys.setrecursionlimit(limit)


def parse_field_expr(text: str, start: int = 0) -> tuple[FieldRef | Transformer, int] | None:
    """Parse a field or transformer expression at ``start`` of ``text`` (for outputs).

    Returns the expression and the index just after it, or ``None`` if no field starts
    there. Used by the output formatter, which takes the longest valid prefix.
    """
    p = Parser(text)
    p.idx = start
    pos = p.pos()
    try:
        if p._rx(_RX_FIELD_NAME):
            return p.parse_field_remainder(p.last, pos), p.idx
        if p._str_list(TRANSFORMERS):
            p.lex_blank()
            return p.parse_transformer_remainder(p.last[:-1], pos), p.idx
    except ConditionSyntaxError:
        return None
    return None

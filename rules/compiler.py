"""Condition AST → Python functions, validated against a source's field registry.

Compilation resolves every field once (never by name per event), converts every literal
to its field's type, checks that each operator applies to each field type (libsinsp's
``flt_is_comparable``), and then generates Python source for the boolean structure of
each rule. The generated source contains only identifiers the compiler made up
(``_f3``, ``_k12``, ``_c4``) and operator templates from :mod:`rules.operators`: every
literal and every extractor is passed in the namespace as an object, so rule text can
never become code. The source is compiled with ``compile()`` and run with an empty
``__builtins__``.

Per event-type specialization: a syscall rule is compiled once per event type it can
match, with its ``evt.type`` checks folded to constants (``spawned_process`` is simply
true in the ``execve`` bucket), which removes dead branches from the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from falconet.fields import (
    BoundField,
    CompareMode,
    FieldArgError,
    FieldRegistry,
    FieldType,
    UnknownFieldError,
)

from . import ast as A
from . import operators as O
from .transformers import apply_transformer
from .values import ValueError_, parse_value

#: Nesting of generated expressions above which a subtree becomes its own function
#: (CPython's compiler refuses very deep expressions).
_MAX_INLINE_DEPTH = 30

_EVTTYPE_FIELDS = ("evt.type", "syscall.type")
_EQUALITY_OPS = frozenset({"=", "==", "!=", "in", "intersects", "pmatch"})


class CompileError(Exception):
    """A condition or output does not compile.

    ``unknown`` marks the errors that ``skip-if-unknown-filter`` turns into warnings (an
    unknown field or event type); ``macro`` names the macro the failing check came from.
    """

    def __init__(self, message: str, pos: A.Pos, unknown: bool = False, macro: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.unknown = unknown
        self.macro = macro


# -- operator/type compatibility (libsinsp flt_is_comparable) ----------------------------
_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
_BOOL_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_STRING_OPS = frozenset(
    {
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "in",
        "exists",
        "icontains",
        "startswith",
        "glob",
        "pmatch",
        "endswith",
        "intersects",
        "iglob",
        "regex",
    }
)
_BUFFER_OPS = frozenset(
    {
        "=",
        "!=",
        "contains",
        "in",
        "exists",
        "startswith",
        "endswith",
        "intersects",
        "bcontains",
        "bstartswith",
    }
)
_IP_OPS = frozenset({"=", "!=", "in", "exists", "intersects"})
_LIST_OPS = frozenset({"in", "exists", "intersects"})
_LISTABLE_TYPES = frozenset(
    {
        FieldType.CHARBUF,
        FieldType.UINT64,
        FieldType.RELTIME,
        FieldType.ABSTIME,
        FieldType.BOOL,
        FieldType.IPADDR,
        FieldType.IPNET,
    }
)


def check_comparable(op: str, ftype: FieldType, is_list: bool) -> str | None:
    """``None`` if ``op`` applies to the type, else the error message."""
    if op == "exists":
        return None
    if is_list:
        if ftype not in _LISTABLE_TYPES:
            return f"list filters are not supported for type '{ftype.value}'"
        if op not in _LIST_OPS:
            return f"'{op}' operator not supported list filters"
        return None
    if ftype.is_numeric:
        ok, kind = op in _NUMERIC_OPS, "numeric"
    elif ftype is FieldType.BOOL:
        ok, kind = op in _BOOL_OPS, "numeric"
    elif ftype.is_ip:
        ok, kind = op in _IP_OPS, "ip address and network"
    elif ftype.is_string:
        ok, kind = op in _STRING_OPS, "string"
    elif ftype is FieldType.BYTEBUF:
        ok, kind = op in _BUFFER_OPS, "buffer"
    else:  # pragma: no cover - every type is listed above
        return f"'{op}' operator not supported for type '{ftype.value}'"
    return None if ok else f"'{op}' operator not supported for {kind} filters"


def _shape(op: str, bf: BoundField, rhs: Any) -> str:
    if bf.is_list:
        return "list"
    if bf.type is FieldType.IPNET and op in ("=", "!=", "in", "intersects"):
        return "net"
    return "scalar"


class _Unset:
    """The "not computed yet" value of a shared local in generated code."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


@dataclass(frozen=True, slots=True)
class Warning_:
    message: str
    pos: A.Pos


class CheckCompiler:
    """Compiles conditions of one source into Python source over a shared namespace.

    Use :meth:`validate` to type-check a condition (load-time errors, no code), and
    :meth:`condition` to get the source text of its body for an event type.
    """

    def __init__(
        self,
        registry: FieldRegistry,
        event_types: frozenset[str] | None = None,
    ) -> None:
        self.registry = registry
        self.event_types = event_types
        self.ns: dict[str, Any] = {"__builtins__": {}, "_U": _UNSET}
        self.ns.update(O.TEMPLATE_GLOBALS)
        self.defs: list[str] = []
        self.warnings: list[Warning_] = []
        self._n = 0
        self._fields: dict[tuple[str, str | None], tuple[BoundField, str]] = {}
        self._leaf_cache: dict[int, tuple[A.Expr, str]] = {}
        self._macro = ""

    # -- namespace ---------------------------------------------------------------------------
    def _name(self, prefix: str, obj: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.ns[name] = obj
        return name

    def bind(self, ref: A.FieldRef) -> BoundField:
        """Resolve a field reference (cached per name and argument)."""
        key = (ref.name, ref.arg)
        hit = self._fields.get(key)
        if hit is not None:
            return hit[0]
        try:
            bf = self.registry.bind(ref.name, ref.arg)
        except UnknownFieldError:
            raise CompileError(
                f"filter_check called with nonexistent field {ref}",
                ref.pos,
                unknown=True,
                macro=self._macro,
            ) from None
        except FieldArgError as exc:
            raise CompileError(str(exc), ref.pos, macro=self._macro) from None
        self._fields[key] = (bf, self._name("f", bf.extract))
        return bf

    def _fname(self, ref: A.FieldRef) -> str:
        self.bind(ref)
        return self._fields[(ref.name, ref.arg)][1]

    def operand(self, node: A.FieldRef | A.Transformer) -> BoundField:
        """A left-hand side (field or transformer chain) as a bound field."""
        if isinstance(node, A.FieldRef):
            return self.bind(node)
        if node.name == "val":
            raise CompileError(
                "'val' can only be used on the right-hand side of a comparison",
                node.pos,
                macro=self._macro,
            )
        args: list[BoundField | str | tuple[str, ...]] = []
        for a in node.args:
            if isinstance(a, (A.FieldRef, A.Transformer)):
                args.append(self.operand(a))
            elif isinstance(a, A.Value):
                args.append(a.text)
            elif isinstance(a, A.TransformerList) and all(
                isinstance(i, A.Value) for i in a.items
            ):
                args.append(tuple(i.text for i in a.items))  # type: ignore[union-attr]
            else:
                raise CompileError(
                    f"transformer '{node.name}': a list argument may only hold literal values",
                    node.pos,
                    macro=self._macro,
                )
        try:
            return apply_transformer(node.name, args, node.arg, str(node))
        except ValueError as exc:
            raise CompileError(f"filter error: {exc}", node.pos, macro=self._macro) from None

    def _error(self, message: str, pos: A.Pos, unknown: bool = False) -> CompileError:
        return CompileError(message, pos, unknown=unknown, macro=self._macro)

    # -- leaves -----------------------------------------------------------------------------
    def _values(self, node: A.BinaryCheck, bf: BoundField, base_op: str) -> list[Any]:
        right = node.right
        texts = list(right.values) if isinstance(right, A.ListValue) else [right.text]  # type: ignore[union-attr]
        out = []
        for t in texts:
            self._value_warnings(base_op, t, right.pos)  # type: ignore[union-attr]
            try:
                out.append(parse_value(t, bf.type, base_op))
            except ValueError_ as exc:
                raise self._error(f"filter error: {exc}", right.pos) from None  # type: ignore[union-attr]
        return out

    def _value_warnings(self, op: str, value: str, pos: A.Pos) -> None:
        nospace = re.sub(r"\s+", "", value)
        try:
            self.registry.resolve(nospace)
        except Exception:
            pass
        else:
            if "." in nospace:
                self.warnings.append(
                    Warning_(f"'{value}' may be a valid field misused as a const string value", pos)
                )
        for t in ("val", "tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt"):
            if nospace.startswith(t + "(") and nospace.endswith(")") and len(nospace) >= len(t) + 2:
                self.warnings.append(
                    Warning_(
                        f"'{value}' may be a valid field transformer misused as a const string value",
                        pos,
                    )
                )
        if op == "regex" and not re.search(r"[.+*?^$()\[\]{}|\\]", value.strip("^$")):
            self.warnings.append(
                Warning_(
                    f"regex check with '{value}' may be optimized with simpler operators such as "
                    "'=', 'contains', 'startswith', 'endswith'",
                    pos,
                )
            )

    def _rhs_constant(self, op: str, bf: BoundField, values: list[Any], is_list_rhs: bool) -> Any:
        """The compiled right-hand side ``k`` for a template."""
        if op in ("in", "intersects"):
            if bf.type is FieldType.IPNET:
                return O.NetSet(values)
            return frozenset(values)
        if op == "pmatch":
            return O.PathPrefixes.build([str(v) for v in values])
        if len(values) != 1 and not is_list_rhs:
            raise ValueError("expected one value")
        v = values[0] if values else None
        if op == "icontains":
            return O.ascii_lower(v)
        if op in ("glob", "iglob"):
            return O.glob_to_regex(v, casefold=(op == "iglob"))
        if op == "regex":
            try:
                return re.compile(v, re.DOTALL)
            except re.error as exc:
                raise ValueError(f"invalid regular expression '{v}': {exc}") from None
        if bf.type is FieldType.IPNET:
            return O.NetSet([v])
        return v

    def _leaf(self, node: A.UnaryCheck | A.BinaryCheck) -> str:
        bf = self.operand(node.left)
        op_full = node.op
        base_op, _, modifier = op_full.partition(" ")
        if base_op == "==":
            base_op = "="
        err = check_comparable(base_op, bf.type, bf.is_list)
        if err is not None:
            raise self._error(f"filter error: {err}", node.pos)
        if bf.ops is not None and node.op.partition(" ")[0] not in bf.ops:
            raise self._error(
                f"filter error: {bf.name} only supports the operators "
                + ", ".join(sorted(bf.ops)),
                node.pos,
            )
        fname = self._name("f", bf.extract) if isinstance(node.left, A.Transformer) else None
        if fname is None:
            fname = self._fname(node.left)  # type: ignore[arg-type]
        call = _marker(fname)
        if isinstance(node, A.UnaryCheck):
            return f"({call} is not None)"

        right = node.right
        if isinstance(right, (A.FieldRef, A.Transformer)):
            return self._rhs_field_leaf(node, bf, fname, base_op)

        if isinstance(node.left, A.FieldRef) and node.left.name in _EVTTYPE_FIELDS:
            self._check_event_types(node)

        if modifier:
            return self._modifier_leaf(node, bf, fname, base_op, modifier)

        values = self._values(node, bf, base_op)
        try:
            k = self._rhs_constant(base_op, bf, values, isinstance(right, A.ListValue))
        except ValueError as exc:
            raise self._error(f"filter error: {exc}", right.pos) from None
        shape = _shape(base_op, bf, k)
        template = O.TEMPLATES.get((base_op, shape))
        if template is None:
            raise self._error(
                f"filter error: operator '{base_op}' not supported for this field", node.pos
            )
        if bf.compare is not CompareMode.PLAIN:
            pred = O.predicate(template, k)
            every = bf.compare is CompareMode.EITHER and base_op == "!="
            return f"{self._name('c', _candidates(pred, every))}({call})"
        kname = self._name("k", k)
        if template.none_safe:
            return "(" + _subst(template.expr, call, kname) + ")"
        var = f"_v{self._n}"
        body = _subst(template.expr, var, kname)
        return f"(({var} := {call}) is not None and {body})"

    def _check_event_types(self, node: A.BinaryCheck) -> None:
        if self.event_types is None:
            return
        right = node.right
        names = right.values if isinstance(right, A.ListValue) else (right.text,)  # type: ignore[union-attr]
        for name in names:
            if name not in self.event_types:
                raise self._error(f"unknown event type {name}", right.pos, unknown=True)  # type: ignore[union-attr]

    def _modifier_leaf(
        self, node: A.BinaryCheck, bf: BoundField, fname: str, base_op: str, modifier: str
    ) -> str:
        if bf.is_list or bf.type.is_ip:
            raise self._error(
                f"filter error: '{base_op} {modifier}' with modifier not supported for this field",
                node.pos,
            )
        right = node.right
        if not isinstance(right, A.ListValue):
            raise self._error(
                f"filter error: '{modifier}' expects a list of values", right.pos  # type: ignore[union-attr]
            )
        values = self._values(node, bf, base_op)
        template = O.TEMPLATES[(base_op, "scalar")]
        preds = []
        for v in values:
            try:
                k = self._rhs_constant(base_op, bf, [v], False)
            except ValueError as exc:
                raise self._error(f"filter error: {exc}", right.pos) from None
            preds.append(O.predicate(template, k))
        check = _modifier_check(tuple(preds), modifier)
        return f"{self._name('c', check)}({_marker(fname)})"

    def _rhs_field_leaf(self, node: A.BinaryCheck, bf: BoundField, fname: str, base_op: str) -> str:
        right = node.right
        if base_op in ("pmatch", "regex") or bf.type is FieldType.IPNET:
            raise self._error(
                f"filter error: operator '{base_op}' does not support a field on the right-hand side",
                node.pos,
            )
        if isinstance(right, A.Transformer) and right.name == "val":
            inner = right.args[0]
            assert isinstance(inner, A.FieldRef)
            rbf = self.bind(inner)
        else:
            rbf = self.operand(right)  # type: ignore[arg-type]
        if rbf.no_rhs:
            raise self._error(f"filter error: field '{rbf.name}' cannot be used in val()", node.pos)
        if rbf.type is not bf.type and not (rbf.type.is_string and bf.type.is_string):
            if not (rbf.type.is_numeric and bf.type.is_numeric):
                raise self._error(
                    f"filter error: '{bf.name}' and '{rbf.name}' have different types "
                    f"({bf.type.value} and {rbf.type.value})",
                    node.pos,
                )
        if rbf.is_list != bf.is_list and base_op not in ("in", "intersects"):
            raise self._error(
                f"filter error: '{bf.name}' and '{rbf.name}' must both be lists or both single values",
                node.pos,
            )
        shape = "list" if bf.is_list else "scalar"
        template = O.TEMPLATES.get((base_op, shape))
        if template is None:
            raise self._error(f"filter error: operator '{base_op}' not supported here", node.pos)
        check = _field_field_check(bf.extract, rbf.extract, template, base_op)
        return f"{self._name('c', check)}(ev)"

    # -- boolean structure --------------------------------------------------------------------
    def validate(self, expr: A.Expr) -> None:
        """Compile every leaf of ``expr`` (raising :class:`CompileError` on problems)."""
        self.code(expr, None)

    def code(self, expr: A.Expr, evtype: str | None, shared: Shared | None = None) -> str | bool:
        """Python source of ``expr`` (or a constant when folding decides it).

        With ``shared``, field values and macro results are kept in local variables of
        the function the code goes into, so rules evaluated together extract each field
        and evaluate each macro at most once per event.
        """
        body = self._code(expr, evtype, 0, shared)
        if isinstance(body, bool):
            return body
        return _resolve_markers(body, shared)

    def _code(
        self, expr: A.Expr, evtype: str | None, depth: int, shared: Shared | None = None
    ) -> str | bool:
        if depth > _MAX_INLINE_DEPTH:
            # a deep subtree becomes a function of its own (no shared locals there)
            inner = self._code(expr, evtype, 0, None)
            if isinstance(inner, bool):
                return inner
            self._n += 1
            fn = f"_s{self._n}"
            self.defs.append(f"def {fn}(ev):\n    return {_resolve_markers(inner, None)}\n")
            return f"{fn}(ev)"
        if isinstance(expr, (A.And, A.Or)):
            # folding: False decides an `and`, True decides an `or`; the other is dropped
            decisive = isinstance(expr, A.Or)
            neutral = not decisive
            parts: list[str] = []
            for c in expr.children:
                s = self._code(c, evtype, depth + 1, shared)
                if s is decisive:
                    self._validate_rest(expr.children, c)
                    return decisive
                if s is not neutral:
                    parts.append(s)  # type: ignore[arg-type]
            if not parts:
                return neutral
            joiner = " or " if decisive else " and "
            return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
        if isinstance(expr, A.Not):
            s = self._code(expr.child, evtype, depth + 1, shared)
            if isinstance(s, bool):
                return not s
            return f"(not {s})"
        if isinstance(expr, A.MacroRef):
            saved = self._macro
            self._macro = saved or expr.name
            try:
                inner = self._code(expr.expr, evtype, depth + 1, shared)
            finally:
                self._macro = saved
            if shared is None or isinstance(inner, bool) or _is_simple(inner):
                return inner
            slot = shared.macro(expr.name)
            return f"({slot} if {slot} is not _U else ({slot} := {inner}))"
        if isinstance(expr, A.Identifier):
            raise self._error(f"filter error: unexpected identifier '{expr.name}'", expr.pos)
        if isinstance(expr, (A.UnaryCheck, A.BinaryCheck)):
            folded = self._fold_evttype(expr, evtype)
            if folded is not None:
                return folded
            hit = self._leaf_cache.get(id(expr))
            if hit is not None:
                return hit[1]
            s = self._leaf(expr)
            self._leaf_cache[id(expr)] = (expr, s)
            return s
        raise self._error(f"unexpected node {type(expr).__name__}", A.Pos())

    def _validate_rest(self, children: Iterable[A.Expr], after: A.Expr) -> None:
        """Folding stopped early: still type-check the remaining children."""
        seen = False
        for c in children:
            if seen:
                self._code(c, None, 0)
            if c is after:
                seen = True

    def _fold_evttype(self, expr: A.Expr, evtype: str | None) -> bool | None:
        if evtype is None or not isinstance(expr, A.BinaryCheck):
            return None
        left = expr.left
        if not (isinstance(left, A.FieldRef) and left.name == "evt.type" and left.arg is None):
            return None
        if expr.op not in ("=", "==", "!=", "in"):
            return None
        right = expr.right
        if isinstance(right, A.ListValue):
            names = right.values
        elif isinstance(right, A.Value):
            names = (right.text,)
        else:
            return None
        self._leaf_cache.setdefault(id(expr), (expr, self._leaf(expr)))
        hit = evtype in names
        return (not hit) if expr.op == "!=" else hit

    def function(self, name: str, body: str | bool) -> str:
        """Add ``def name(ev)`` returning ``body``; returns the name."""
        self.defs.append(f"def {name}(ev):\n    return {body}\n")
        return name

    def bucket_function(
        self, name: str, rules: list[tuple[int, A.Expr | None]], evtype: str | None, first: bool
    ) -> str:
        """``def name(ev)`` evaluating several rules in order with shared locals.

        ``rules`` pairs each rule's position with its condition (or ``None`` for a rule
        whose own function ``_rN_all`` must be called). With ``first`` the function
        returns the position of the first matching rule or -1; otherwise the list of the
        positions of every matching rule.
        """
        shared = Shared()
        lines: list[str] = []
        for pos, expr in rules:
            if expr is None:
                body: str | bool = f"_r{pos}_all(ev)"
            else:
                body = self.code(expr, evtype, shared)
            if body is False:
                continue
            hit = f"return {pos}" if first else f"_hits.append({pos})"
            lines.append(f"    if {body}:\n        {hit}")
        head = [f"def {name}(ev):"]
        slots = shared.slots()
        if slots:
            head.append("    " + " = ".join(slots) + " = _U")
        if not first:
            head.append("    _hits = []")
        tail = "    return -1" if first else "    return _hits"
        self.defs.append("\n".join(head + lines + [tail]) + "\n")
        return name

    def build(self) -> dict[str, Any]:
        """Compile the accumulated functions; returns the namespace holding them."""
        source = "\n".join(self.defs)
        code = compile(source, "<falconet-rules>", "exec")
        exec(code, self.ns)  # noqa: S102 - generated from the AST, literals are not in the text
        self.defs.clear()
        return self.ns


class Shared:
    """Local variables of one generated function: cached field values and macros."""

    __slots__ = ("_fields", "_macros")

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._macros: dict[str, str] = {}

    def field(self, fname: str) -> str:
        slot = self._fields.get(fname)
        if slot is None:
            slot = self._fields[fname] = f"_x{len(self._fields)}"
        return slot

    def macro(self, name: str) -> str:
        slot = self._macros.get(name)
        if slot is None:
            slot = self._macros[name] = f"_m{len(self._macros)}"
        return slot

    def slots(self) -> list[str]:
        return [*self._fields.values(), *self._macros.values()]


_MARKER = re.compile("\x01(_f\\d+)\x01")


def _marker(fname: str) -> str:
    """A placeholder for ``fname(ev)`` in leaf code, resolved when the code is placed."""
    return f"\x01{fname}\x01"


def _resolve_markers(code: str, shared: Shared | None) -> str:
    if shared is None:
        return _MARKER.sub(lambda m: f"{m.group(1)}(ev)", code)

    def cached(m: re.Match[str]) -> str:
        slot = shared.field(m.group(1))
        return f"({slot} if {slot} is not _U else ({slot} := {m.group(1)}(ev)))"

    return _MARKER.sub(cached, code)


def _is_simple(code: str) -> bool:
    """Code cheap enough that caching its result would cost more than computing it."""
    return code.count("\x01") <= 2 and " and " not in code and " or " not in code


def _subst(expr: str, var: str, kname: str) -> str:
    """Put the variable and constant names into an operator template."""
    return re.sub(r"\b[vk]\b", lambda m: var if m.group(0) == "v" else kname, expr)


def _candidates(pred: Callable[[Any], bool], every: bool):
    """A check over the candidate values of an ANY/EITHER field (``None``: missing)."""
    if every:

        def check_all(vals: Any) -> bool:
            if not vals:
                return False
            for x in vals:
                if x is None or not pred(x):
                    return False
            return True

        return check_all

    def check_any(vals: Any) -> bool:
        if not vals:
            return False
        for x in vals:
            if x is not None and pred(x):
                return True
        return False

    return check_any


def _modifier_check(preds: tuple, modifier: str):
    """``op oneof/anyof/allof (...)`` over one extracted value (``None``: missing)."""

    def check(v: Any) -> bool:
        if v is None:
            return False
        n = sum(1 for p in preds if p(v))
        if modifier == "oneof":
            return n == 1
        if modifier == "anyof":
            return n >= 1
        return n == len(preds)

    return check


def _field_field_check(left, right, template: O.OpTemplate, op: str):
    def convert(b: Any) -> Any:
        if op in ("in", "intersects"):
            return frozenset(b) if isinstance(b, tuple) else frozenset((b,))
        if op in ("glob", "iglob"):
            return O.glob_to_regex(str(b), casefold=(op == "iglob"))
        if op == "icontains":
            return O.ascii_lower(b)
        return b

    def check(ev: Any) -> bool:
        a = left(ev)
        if a is None:
            return False
        b = right(ev)
        if b is None:
            return False
        return bool(O.predicate(template, convert(b))(a))

    return check

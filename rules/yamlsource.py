"""YAML documents as positioned nodes, read safely.

The rule loader needs three things PyYAML's constructors do not give: the *text* of every
scalar (Falco's yaml-cpp hands out scalar text; ``8080`` stays ``"8080"`` and ``yes`` stays
``"yes"``), the line and column of every node for error messages, and protection from
hostile input. Nodes are composed here from the parser's event stream with an explicit
stack, so deep nesting cannot exhaust the interpreter stack, and both the depth and the
size after alias expansion are capped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

try:  # the libyaml parser is much faster; fall back to the pure-Python one
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

#: Deepest nesting accepted; rule files need 4 or 5 levels.
MAX_DEPTH = 200
#: Most nodes a document may expand to through aliases ("billion laughs" guard).
MAX_EXPANDED_NODES = 2_000_000

SCALAR = "scalar"
SEQUENCE = "sequence"
MAPPING = "mapping"

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})


class YamlError(Exception):
    """The text is not YAML, or is too deep or too large; carries a 1-based position."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(slots=True, eq=False)
class Node:
    """A composed YAML node with its position (1-based line and column).

    ``value`` is the scalar text, the list of item nodes, or the list of (key, value)
    node pairs. ``plain`` tells a plain scalar from a quoted or block one, which decides
    whether ``null`` means null.
    """

    kind: str
    line: int
    column: int
    value: object = None
    plain: bool = True
    size: int = 1
    _index: dict[str, Node] | None = field(default=None, repr=False)

    # -- kind tests (the yaml-cpp vocabulary the loader was written against) -----------
    @property
    def is_scalar(self) -> bool:
        return self.kind == SCALAR and not self.is_null

    @property
    def is_null(self) -> bool:
        return self.kind == SCALAR and self.plain and self.value in _NULLS

    @property
    def is_sequence(self) -> bool:
        return self.kind == SEQUENCE

    @property
    def is_mapping(self) -> bool:
        return self.kind == MAPPING

    # -- accessors ---------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The scalar text (``""`` for a null)."""
        assert self.kind == SCALAR
        return "" if self.is_null else str(self.value)

    @property
    def items(self) -> list[Node]:
        assert self.kind == SEQUENCE
        return self.value  # type: ignore[return-value]

    @property
    def pairs(self) -> list[tuple[Node, Node]]:
        assert self.kind == MAPPING
        return self.value  # type: ignore[return-value]

    def keys(self) -> Iterator[str]:
        for k, _ in self.pairs:
            yield key_text(k)

    def get(self, key: str) -> Node | None:
        """The value of ``key`` in a mapping (the first one, like yaml-cpp)."""
        if self.kind != MAPPING:
            return None
        if self._index is None:
            index: dict[str, Node] = {}
            for k, v in self.pairs:
                index.setdefault(key_text(k), v)
            self._index = index
        return self._index.get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def as_bool(self) -> bool | None:
        """yaml-cpp's bool decoding: true/false/yes/no/on/off/y/n; ``None`` otherwise."""
        if self.kind != SCALAR:
            return None
        t = str(self.value)
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        return None

    def as_uint(self) -> int | None:
        """A non-negative integer written in decimal, else ``None``."""
        if self.kind != SCALAR:
            return None
        t = str(self.value).strip()
        if t.startswith("+"):
            t = t[1:]
        if not t.isdigit() or not t.isascii():
            return None
        return int(t)

    def describe(self) -> str:
        if self.kind == SCALAR:
            return "null" if self.is_null else "a scalar"
        return "a sequence" if self.kind == SEQUENCE else "a mapping"


def key_text(node: Node) -> str:
    if node.kind == SCALAR:
        return node.text
    return f"<{node.describe()}>"


def _mark(event: object) -> tuple[int, int]:
    mark = getattr(event, "start_mark", None)
    if mark is None:
        return 0, 0
    return mark.line + 1, mark.column + 1


def load_documents(text: str) -> list[Node | None]:
    """Parse every document of ``text``; an empty document is ``None``.

    Raises :class:`YamlError` with the position of the first problem.
    """
    docs: list[Node | None] = []
    # stack entries: [node, pending_key_or_None, anchor]
    stack: list[list[object]] = []
    anchors: dict[str, Node] = {}
    total = 0
    root: Node | None = None
    have_root = False

    def attach(node: Node) -> None:
        nonlocal root, have_root, total
        total += node.size
        if total > MAX_EXPANDED_NODES:
            raise YamlError(
                f"document expands to more than {MAX_EXPANDED_NODES} nodes "
                "(through aliases); refusing to load it",
                node.line,
                node.column,
            )
        if not stack:
            root, have_root = node, True
            return
        top = stack[-1]
        parent = top[0]
        assert isinstance(parent, Node)
        if parent.kind == SEQUENCE:
            parent.value.append(node)  # type: ignore[union-attr]
        elif top[1] is None:
            top[1] = node
        else:
            parent.value.append((top[1], node))  # type: ignore[union-attr]
            top[1] = None

    try:
        for ev in yaml.parse(text, Loader=_Loader):
            if isinstance(ev, yaml.ScalarEvent):
                line, col = _mark(ev)
                node = Node(SCALAR, line, col, ev.value, plain=not ev.style)
                if ev.anchor:
                    anchors[ev.anchor] = node
                attach(node)
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    line, col = _mark(ev)
                    raise YamlError(f"nesting deeper than {MAX_DEPTH} levels", line, col)
                line, col = _mark(ev)
                kind = SEQUENCE if isinstance(ev, yaml.SequenceStartEvent) else MAPPING
                stack.append([Node(kind, line, col, []), None, ev.anchor])
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node, _, anchor = stack.pop()
                assert isinstance(node, Node)
                children = node.value
                if node.kind == SEQUENCE:
                    node.size = 1 + sum(c.size for c in children)  # type: ignore[union-attr]
                else:
                    node.size = 1 + sum(k.size + v.size for k, v in children)  # type: ignore[union-attr]
                # the children were already counted when attached
                total -= node.size - 1
                if anchor:
                    anchors[str(anchor)] = node
                attach(node)
            elif isinstance(ev, yaml.AliasEvent):
                target = anchors.get(ev.anchor)
                if target is None:
                    line, col = _mark(ev)
                    raise YamlError(f"found undefined alias '{ev.anchor}'", line, col)
                attach(target)
            elif isinstance(ev, yaml.DocumentStartEvent):
                root, have_root = None, False
                anchors = {}
            elif isinstance(ev, yaml.DocumentEndEvent):
                docs.append(root if have_root and not (root and root.is_null) else None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlError(problem, line, col) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc).strip() or "invalid YAML") from None
    except RecursionError:  # pragma: no cover - the explicit stack should prevent it
        raise YamlError(f"nesting deeper than {MAX_DEPTH} levels") from None
    return docs

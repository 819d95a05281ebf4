"""What the rule files define, collected across files with Falco's define/append/override.

The collector is the loader's memory: lists, macros and rules keyed by name, each with
the index of its first definition (match order never changes on redefinition) and a
*visibility* (the id of its latest define or append, which decides which lists and macros
it may reference). Semantics follow Falco's ``rule_loader_collector.cpp``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from falconet.priority import Priority

from .parser import SUPPORTED_OPERATORS, is_operator_with_modifier
from .result import Position

#: The Falco engine version whose rule language falconet implements.
ENGINE_VERSION = (0, 63, 0)

_SEMVER = re.compile(r"\s*\+?(\d+)\.\s*\+?(\d+)\.\s*\+?(\d+)")


class LoadFailure(Exception):
    """Stops reading or compiling at the first error (Falco's ``rule_load_exception``)."""

    def __init__(self, code: str, message: str, ctx: Context, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ctx = ctx
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Context:
    """Where an item or value is, and what it is (``rule 'X'``), for messages."""

    file: str
    line: int = 0
    column: int = 0
    item: str = ""

    @property
    def position(self) -> Position:
        return Position(self.file, self.line, self.column)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``x.y.z`` (anything may follow, as with sscanf); ``None`` when invalid."""
    m = _SEMVER.match(text)
    if m is None:
        return None
    major, minor, patch = (int(g) for g in m.groups())
    if max(major, minor, patch) > 0xFFFFFFFF:
        return None
    return major, minor, patch


def version_compatible(have: tuple[int, int, int], need: tuple[int, int, int]) -> bool:
    """Same major version and ``have >= need``."""
    return have[0] == need[0] and have >= need


def format_version(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


@dataclass(slots=True)
class ListInfo:
    name: str
    items: list[str]
    ctx: Context
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class MacroInfo:
    name: str
    cond: str
    ctx: Context
    cond_ctx: Context
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class ExceptionEntry:
    """A scalar (``is_list`` false, ``item``) or a list of entries (``items``)."""

    is_list: bool = False
    item: str = ""
    items: list[ExceptionEntry] = field(default_factory=list)

    def is_valid(self) -> bool:
        """Given and non-empty (Falco treats an empty list or string as not given)."""
        return bool(self.items) if self.is_list else bool(self.item)


@dataclass(slots=True)
class ExceptionInfo:
    name: str
    ctx: Context
    fields: ExceptionEntry = field(default_factory=ExceptionEntry)
    comps: ExceptionEntry = field(default_factory=ExceptionEntry)
    values: list[ExceptionEntry] = field(default_factory=list)


@dataclass(slots=True)
class RuleInfo:
    name: str
    ctx: Context
    cond: str = ""
    cond_ctx: Context | None = None
    output: str = ""
    output_ctx: Context | None = None
    desc: str = ""
    priority: Priority = Priority.DEBUG
    source: str = "syscall"
    enabled: bool = True
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    unknown_source: bool = False
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class RuleUpdate:
    """An ``append`` or ``override`` of a rule: only the keys that were given."""

    name: str
    ctx: Context
    source: str = ""
    cond: str | None = None
    cond_ctx: Context | None = None
    output: str | None = None
    desc: str | None = None
    tags: set[str] | None = None
    exceptions: list[ExceptionInfo] | None = None
    priority: Priority | None = None
    enabled: bool | None = None
    warn_evttypes: bool | None = None
    skip_if_unknown_filter: bool | None = None
    capture: bool | None = None
    capture_duration: int | None = None

    def has_any_value(self) -> bool:
        return any(
            v is not None
            for v in (
                self.cond,
                self.output,
                self.desc,
                self.tags,
                self.exceptions,
                self.priority,
                self.enabled,
                self.warn_evttypes,
                self.skip_if_unknown_filter,
                self.capture,
                self.capture_duration,
            )
        )


@dataclass(slots=True)
class PluginRequirement:
    alternatives: list[tuple[str, str]]
    ctx: Context


def _fail(message: str, ctx: Context, code: str = "LOAD_ERR_VALIDATE") -> LoadFailure:
    return LoadFailure(code, message, ctx)


class Collector:
    """Accumulates definitions across files (Falco's ``rule_loader::collector``)."""

    def __init__(self) -> None:
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.required_engine_version: tuple[int, int, int] = (0, 0, 0)
        self.plugin_requirements: list[PluginRequirement] = []
        self._next = 0

    def _id(self) -> int:
        i = self._next
        self._next += 1
        return i

    def _define(self, table: dict, info: ListInfo | MacroInfo | RuleInfo) -> None:
        i = self._id()
        prev = table.get(info.name)
        info.visibility = i
        if prev is not None:
            info.index = prev.index
        else:
            info.index = i
        # redefinition keeps the original slot: dicts keep insertion order
        table[info.name] = info

    # -- versions -------------------------------------------------------------------------
    def require_engine(self, version: tuple[int, int, int], ctx: Context) -> None:
        if not version_compatible(ENGINE_VERSION, version):
            raise _fail(
                f"Rules require engine version {format_version(version)}, "
                f"but engine version is {format_version(ENGINE_VERSION)}",
                ctx,
            )
        if version > self.required_engine_version:
            self.required_engine_version = version

    def require_plugin(self, alternatives: list[tuple[str, str]], ctx: Context) -> None:
        seen: set[str] = set()
        for name, version in alternatives:
            if parse_version(version) is None:
                raise _fail(f"Invalid required version '{version}' for plugin '{name}'", ctx)
            if name in seen:
                raise _fail(
                    f"Defined multiple alternative version requirements for plugin '{name}'", ctx
                )
            seen.add(name)
        self.plugin_requirements.append(PluginRequirement(alternatives, ctx))

    # -- lists and macros -----------------------------------------------------------------
    def define_list(self, info: ListInfo) -> None:
        self._define(self.lists, info)

    def append_list(self, info: ListInfo) -> None:
        prev = self.lists.get(info.name)
        if prev is None:
            raise _fail(
                "List uses 'append' or 'override.items: append' but no list by that name "
                "already exists",
                info.ctx,
            )
        prev.items.extend(info.items)
        prev.visibility = self._id()

    def define_macro(self, info: MacroInfo) -> None:
        self._define(self.macros, info)

    def append_macro(self, info: MacroInfo) -> None:
        prev = self.macros.get(info.name)
        if prev is None:
            raise _fail(
                "Macro uses 'append' or 'override.condition: append' but no macro by that "
                "name already exists",
                info.ctx,
            )
        prev.cond = prev.cond + " " + info.cond
        prev.visibility = self._id()

    # -- rules ----------------------------------------------------------------------------
    def _find_prev_rule(self, name: str, source: str, ctx: Context) -> RuleInfo | None:
        prev = self.rules.get(name)
        if prev is not None and prev.source and source and prev.source != source:
            raise _fail("Rule has been re-defined with a different source", ctx)
        return prev

    def define_rule(self, info: RuleInfo, known_source: bool, lhs_ok) -> None:
        """Define or redefine a rule; ``lhs_ok(field)`` validates exception fields."""
        self._find_prev_rule(info.name, info.source, info.ctx)
        info.unknown_source = not known_source
        for ex in info.exceptions:
            if not ex.fields.is_valid():
                raise _fail(
                    "Rule exception item must have fields property with a list of fields",
                    ex.ctx,
                )
            validate_exception(ex, lhs_ok if known_source else None)
        self._define(self.rules, info)

    def append_rule(self, upd: RuleUpdate, lhs_ok_for) -> None:
        prev = self._find_prev_rule(upd.name, upd.source, upd.ctx)
        if prev is None:
            raise _fail(
                "Rule uses 'append' or 'override.<key>: append' but no rule by that name "
                "already exists",
                upd.ctx,
            )
        if not upd.has_any_value():
            raise _fail("Appended rule must have exceptions or condition property", upd.ctx)
        lhs_ok = None if prev.unknown_source else lhs_ok_for(prev.source)
        if upd.cond:
            prev.cond += " " + upd.cond
        if upd.output:
            prev.output += " " + upd.output
        if upd.desc:
            prev.desc += " " + upd.desc
        if upd.tags is not None:
            prev.tags |= upd.tags
        if upd.exceptions is not None:
            for ex in upd.exceptions:
                existing = next((e for e in prev.exceptions if e.name == ex.name), None)
                if existing is None:
                    if not ex.fields.is_valid():
                        raise _fail(
                            "Rule exception must have fields property with a list of fields",
                            ex.ctx,
                        )
                    if not ex.values:
                        raise _fail(
                            "Rule exception must have values property with a list of values",
                            ex.ctx,
                        )
                    validate_exception(ex, lhs_ok)
                    prev.exceptions.append(ex)
                else:
                    if ex.fields.is_valid():
                        raise _fail(
                            "Can not append exception fields to existing exception, only values",
                            ex.ctx,
                        )
                    if ex.comps.is_valid():
                        raise _fail(
                            "Can not append exception comps to existing exception, only values",
                            ex.ctx,
                        )
                    existing.values.extend(ex.values)
        prev.visibility = self._id()

    def replace_rule(self, upd: RuleUpdate) -> None:
        prev = self._find_prev_rule(upd.name, upd.source, upd.ctx)
        if prev is None:
            raise _fail(
                "An 'override.<key>: replace' to a rule was requested but no rule by that "
                "name already exists",
                upd.ctx,
            )
        if not upd.has_any_value():
            raise _fail("The rule must have at least one field that can be replaced", upd.ctx)
        if upd.cond is not None:
            prev.cond = upd.cond
            if upd.cond_ctx is not None:
                prev.cond_ctx = upd.cond_ctx
        if upd.output is not None:
            prev.output = upd.output
        if upd.desc is not None:
            prev.desc = upd.desc
        if upd.tags is not None:
            prev.tags = set(upd.tags)
        if upd.exceptions is not None:
            prev.exceptions = list(upd.exceptions)
        if upd.priority is not None:
            prev.priority = upd.priority
        if upd.capture is not None:
            prev.capture = upd.capture
        if upd.capture_duration is not None:
            prev.capture_duration = upd.capture_duration
        if upd.enabled is not None:
            prev.enabled = upd.enabled
        if upd.warn_evttypes is not None:
            prev.warn_evttypes = upd.warn_evttypes
        if upd.skip_if_unknown_filter is not None:
            prev.skip_if_unknown_filter = upd.skip_if_unknown_filter
        prev.visibility = self._id()

    def enable_rule(self, name: str, enabled: bool, ctx: Context) -> None:
        prev = self.rules.get(name)
        if prev is None:
            raise _fail("Rule has 'enabled' key but no rule by that name already exists", ctx)
        prev.enabled = enabled


def _comp_ok(op: str) -> bool:
    return op in SUPPORTED_OPERATORS or is_operator_with_modifier(op)


def validate_exception(ex: ExceptionInfo, lhs_ok) -> None:
    """Check fields/comps of an exception and fill the default comps (Falco's rules)."""
    if ex.fields.is_list:
        if not ex.comps.is_valid():
            ex.comps = ExceptionEntry(
                is_list=True, items=[ExceptionEntry(item="=") for _ in ex.fields.items]
            )
        if not ex.comps.is_list or len(ex.fields.items) != len(ex.comps.items):
            raise _fail("Fields and comps lists must have equal length", ex.ctx)
        for c in ex.comps.items:
            c.item = c.item.strip(" \t\r\n")
            if not _comp_ok(c.item):
                raise _fail(f"'{c.item}' is not a supported comparison operator", ex.ctx)
        if lhs_ok is not None:
            for f in ex.fields.items:
                if not lhs_ok(f.item):
                    raise _fail(f"'{f.item}' is not a supported filter field", ex.ctx)
    else:
        if not ex.comps.is_valid():
            ex.comps = ExceptionEntry(item="in")
        if ex.comps.is_list:
            raise _fail("Fields and comps must both be strings", ex.ctx)
        ex.comps.item = ex.comps.item.strip(" \t\r\n")
        if ex.comps.item not in ("in", "pmatch", "intersects") and not is_operator_with_modifier(
            ex.comps.item
        ):
            raise _fail(
                "When fields is a single value, comps must be one of (in, pmatch, intersects) "
                "or a modifier operator (e.g. startswith oneof)",
                ex.ctx,
            )
        if lhs_ok is not None and not lhs_ok(ex.fields.item):
            raise _fail(f"'{ex.fields.item}' is not a supported filter field", ex.ctx)

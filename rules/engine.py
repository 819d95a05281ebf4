"""The rules engine: load Falco rule files, evaluate events, produce detections.

``Engine.load(paths)`` reads the files in order into one collector (later files append
to, override or redefine what earlier ones defined), validates everything after each
file like Falco does, and, only when the whole load succeeds, swaps in the new compiled
rulesets; a failed load leaves the previous rules running. ``Engine.process(event)``
evaluates an event against the rules of its source, bucketed by event type, in
definition order, stopping at the first match (``rule_matching: first``, Falco's
default) or reporting every match (``all``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falconet import timefmt
from falconet.detection import Detection, detection_id
from falconet.errors import FalconetError
from falconet.event import Event
from falconet.fields import BoundField, FieldRegistry
from falconet.priority import Priority

from . import ast as A
from . import result as R
from .collector import (
    Collector,
    Context,
    LoadFailure,
    RuleInfo,
    parse_version,
    version_compatible,
)
from .compiler import CheckCompiler, CompileError
from .evttypes import EvttypeError, event_types
from .expand import build_exceptions, resolve_list
from .fields import KNOWN_SOURCES, plugin_versions, registry_for
from .fields.syscall import EVENT_TYPES, SUGGESTED_OUTPUT_FIELDS
from .macros import resolve as resolve_macros
from .output import OutputError, OutputFormat
from .parser import ConditionSyntaxError, parse_condition, parse_field_expr
from .reader import Reader

RULE_MATCHING = ("first", "all")

#: Syscall rules matching at most this many event types get one specialized function per
#: type (their ``evt.type`` checks folded away); others share one function.
_SPECIALIZE_MAX_TYPES = 16


#: Fields Falco warns about (the syscall registry marks them deprecated).
_DEPRECATED_FIELDS = tuple(f.name for f in registry_for("syscall") or () if f.deprecated)
_UNSAFE_NA_PREFIXES = ("ka.", "jevt.")
_EQUALITY_OPS = frozenset({"==", "=", "!=", "in", "intersects", "pmatch"})


class EvaluationError(FalconetError):
    """Evaluating an event raised inside a field extractor (malformed event data).

    ``detections`` holds what the other rules produced for the event; ``failures`` lists
    ``(rule name, error text)``.
    """

    def __init__(self, failures: list[tuple[str, str]], detections: list[Detection]) -> None:
        rules = ", ".join(name for name, _ in failures[:3])
        super().__init__(f"{len(failures)} rule(s) failed on the event ({rules}): {failures[0][1]}")
        self.failures = failures
        self.detections = detections


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine settings (see ``docs/configuration.md``).

    Attributes:
        rule_matching: ``first`` (Falco's default: the first matching rule per event
            wins) or ``all`` (every matching rule fires).
        min_priority: rules less severe than this are not loaded into the rulesets.
        suggested_output: append the container plugin's suggested fields to syscall
            outputs, as Falco does by default.
        time_iso8601: the alert text starts with the ISO 8601 time instead of the local
            ``HH:MM:SS.ns`` clock.
        sources: the event sources whose rules are loaded (like the plugins a Falco
            configuration loads); rules of any other source are skipped with the warning
            "Unknown source". ``None`` means every source falconet knows.
    """

    rule_matching: str = "first"
    min_priority: Priority = Priority.DEBUG
    suggested_output: bool = True
    time_iso8601: bool = False
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.rule_matching not in RULE_MATCHING:
            raise ValueError(
                f"rule_matching must be one of {', '.join(RULE_MATCHING)}, not {self.rule_matching!r}"
            )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A loaded rule, compiled and validated."""

    name: str
    source: str
    priority: Priority
    description: str
    tags: tuple[str, ...]
    enabled: bool
    condition: A.Expr
    output: OutputFormat
    event_types: frozenset[str] | None
    exception_fields: tuple[str, ...]
    position: R.Position


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The rules one event type is evaluated against.

    ``fn(ev)`` evaluates them all in one generated function (fields and macros computed
    once); it returns the position of the first match (or -1) under ``first`` matching,
    the list of positions under ``all``. ``checks`` are the same rules one function each,
    used to isolate a rule that raises on malformed event data.
    """

    fn: Any
    checks: tuple[tuple[CompiledRule, Any], ...]


@dataclass(frozen=True, slots=True)
class _Ruleset:
    source: str
    rules: tuple[CompiledRule, ...]
    buckets: dict[str, _Bucket]
    default: _Bucket | None


@dataclass(frozen=True, slots=True)
class _State:
    rules: tuple[CompiledRule, ...] = ()
    rulesets: dict[str, _Ruleset] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    macros: tuple[str, ...] = ()


@contextlib.contextmanager
def _deep_recursion(limit: int = 20000) -> Iterator[None]:
    """Room for deeply nested (possibly hostile) conditions while loading."""
    old = sys.getrecursionlimit()
    if old < limit:
        sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        if old < limit:
            sys.setrecursionlimit(old)


def _caret(text: str, pos: A.Pos) -> str:
    """The condition with a caret under ``pos`` (long conditions are cut around it)."""
    flat = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    idx = min(pos.idx, len(flat))
    lo = max(0, idx - 60)
    hi = min(len(flat), idx + 60)
    head = ("..." if lo else "") + flat[lo:hi] + ("..." if hi < len(flat) else "")
    return head + "\n" + " " * (idx - lo + (3 if lo else 0)) + "^"


def expand_rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files and directories (their ``*.yaml``/``*.yml`` in name order), in given order."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(
                sorted(
                    (c for c in path.iterdir() if c.suffix in (".yaml", ".yml") and c.is_file()),
                    key=lambda c: c.name,
                )
            )
        else:
            out.append(path)
    return out


class _Compilation:
    """One compile of everything collected so far (Falco recompiles after each file)."""

    def __init__(self, engine: Engine, col: Collector, res: R.LoadResult) -> None:
        self.engine = engine
        self.col = col
        self.res = res
        self.compilers: dict[str, CheckCompiler] = {}
        self.used_lists: set[str] = set()
        self.used_macros: set[str] = set()
        self.lists: dict[str, list[str]] = {}
        self.macros: dict[str, A.Expr] = {}
        self.rules: list[tuple[CompiledRule, RuleInfo]] = []

    # -- messages -----------------------------------------------------------------------------
    def warn(self, code: str, message: str, ctx: Context, detail: str = "") -> None:
        self.engine._add_unique(
            self.res, R.LoadMessage(R.WARNING, code, message, ctx.position, ctx.item, detail)
        )

    def compiler(self, source: str) -> CheckCompiler:
        cc = self.compilers.get(source)
        if cc is None:
            reg = registry_for(source)
            assert reg is not None
            cc = CheckCompiler(reg, EVENT_TYPES if source == "syscall" else None)
            self.compilers[source] = cc
        return cc

    # -- lists, conditions, macros ---------------------------------------------------------------
    def compile_lists(self) -> None:
        for info in self.col.lists.values():
            items: list[str] = []
            for item in info.items:
                ref = self.col.lists.get(item)
                if ref is not None and ref.index < info.visibility:
                    self.used_lists.add(ref.name)
                    items.extend(ref.items)
                else:
                    items.append(item)
            self.lists[info.name] = items

    def expand(self, text: str) -> str:
        for name, items in self.lists.items():
            text, used = resolve_list(text, name, items)
            if used:
                self.used_lists.add(name)
        return text

    def parse(self, text: str, ctx: Context) -> A.Expr:
        expanded = self.expand(text)
        cache = self.engine._parse_cache
        hit = cache.get(expanded)
        if hit is not None:
            if isinstance(hit, ConditionSyntaxError):
                raise LoadFailure(
                    R.LOAD_ERR_COMPILE_CONDITION, hit.message, ctx, _caret(expanded, hit.pos)
                )
            return hit
        try:
            expr = parse_condition(expanded)
        except ConditionSyntaxError as exc:
            cache[expanded] = exc
            raise LoadFailure(
                R.LOAD_ERR_COMPILE_CONDITION,
                f"{exc.message} (at condition {exc.pos})",
                ctx,
                _caret(expanded, exc.pos),
            ) from None
        cache[expanded] = expr
        return expr

    def compile_macros(self) -> None:
        infos = list(self.col.macros.values())
        for m in infos:
            self.macros[m.name] = self.parse(m.cond, m.cond_ctx)
        for m in infos:
            visible = {
                other.name: self.macros[other.name]
                for other in infos
                if other.index < m.visibility
            }
            r = resolve_macros(self.macros[m.name], visible)
            if r.error is not None:
                msg, pos = r.error
                raise LoadFailure(
                    R.LOAD_ERR_VALIDATE, msg, m.cond_ctx, _caret(self.expand(m.cond), pos)
                )
            self.macros[m.name] = r.expr
            self.used_macros |= r.used

    # -- rules -----------------------------------------------------------------------------------
    def compile_rules(self) -> None:
        for info in self.col.rules.values():
            if info.unknown_source:
                continue
            compiled = self.compile_rule(info)
            if compiled is not None:
                self.rules.append((compiled, info))

    def _bind_output(self, reg: FieldRegistry, cc: CheckCompiler):
        def bind(expr: A.FieldRef | A.Transformer) -> BoundField:
            try:
                return cc.operand(expr)
            except CompileError as exc:
                raise OutputError(exc.message, unknown=exc.unknown) from None

        return bind

    def compile_rule(self, info: RuleInfo) -> CompiledRule | None:
        reg = registry_for(info.source)
        assert reg is not None
        cc = self.compiler(info.source)
        cond_ctx = info.cond_ctx or info.ctx
        out_ctx = info.output_ctx or info.ctx
        condition = info.cond
        exc_fields: list[str] = []
        if info.exceptions:
            condition, exc_fields = build_exceptions(condition, info.exceptions)

        output = info.output
        if info.source == "syscall" and self.engine.config.suggested_output:
            for f in SUGGESTED_OUTPUT_FIELDS:
                output += f" {f.replace('.', '_')}=%{f}"
        if "%container.info" in output:
            self.warn(
                R.LOAD_DEPRECATED_ITEM,
                "%container.info is deprecated and no more useful, and will be dropped by "
                "Falco 1.0.0. The container plugin will automatically add required fields to "
                "the output message.",
                info.ctx,
            )
            output = output.replace("%container.info", "")
        try:
            fmt = OutputFormat(output, self._bind_output(reg, cc))
        except OutputError as exc:
            if exc.unknown and info.skip_if_unknown_filter:
                self.warn(R.LOAD_UNKNOWN_FILTER, exc.message, out_ctx)
                return None
            raise LoadFailure(R.LOAD_ERR_COMPILE_OUTPUT, exc.message, out_ctx) from None
        for dep in _DEPRECATED_FIELDS:
            if dep in output:
                self.warn(
                    R.LOAD_DEPRECATED_FIELD,
                    f"usage of deprecated field '{dep}' has been detected in the rule output",
                    out_ctx,
                )

        expr = self.parse(condition, cond_ctx)
        r = resolve_macros(expr, self.macros)
        if r.error is not None:
            msg, pos = r.error
            raise LoadFailure(R.LOAD_ERR_VALIDATE, msg, cond_ctx, _caret(self.expand(condition), pos))
        self.used_macros |= r.used
        expr = r.expr
        self._condition_warnings(expr, cond_ctx)
        warnings_before = len(cc.warnings)
        try:
            cc.validate(expr)
        except CompileError as exc:
            where = f" in macro '{exc.macro}'" if exc.macro else ""
            if exc.unknown and info.skip_if_unknown_filter:
                self.warn(R.LOAD_UNKNOWN_FILTER, exc.message + where, cond_ctx)
                return None
            detail = "" if exc.macro else _caret(self.expand(condition), exc.pos)
            raise LoadFailure(
                R.LOAD_ERR_COMPILE_CONDITION, exc.message + where, cond_ctx, detail
            ) from None
        for w in cc.warnings[warnings_before:]:
            self.warn(R.LOAD_COMPILE_CONDITION, w.message, cond_ctx)

        types: frozenset[str] | None = None
        if info.source == "syscall":
            try:
                types = event_types(expr, EVENT_TYPES)
            except EvttypeError as exc:
                raise LoadFailure(R.LOAD_ERR_COMPILE_CONDITION, exc.message, cond_ctx) from None
            if len(types) > 100 and info.warn_evttypes:
                self.warn(
                    R.LOAD_NO_EVTTYPE,
                    "Rule matches too many evt.type values. This has a significant "
                    "performance penalty.",
                    info.ctx,
                )
        return CompiledRule(
            name=info.name,
            source=info.source,
            priority=info.priority,
            description=info.desc,
            tags=tuple(sorted(info.tags)),
            enabled=info.enabled,
            condition=expr,
            output=fmt,
            event_types=types,
            exception_fields=tuple(sorted(exc_fields)),
            position=info.ctx.position,
        )

    def _condition_warnings(self, expr: A.Expr, ctx: Context) -> None:
        unsafe = False
        deprecated: set[str] = set()
        for node in A.walk(expr):
            if not isinstance(node, (A.BinaryCheck, A.UnaryCheck)):
                continue
            for ref in A.fields_of(node):
                if ref.name in _DEPRECATED_FIELDS:
                    deprecated.add(ref.name)
            if (
                isinstance(node, A.BinaryCheck)
                and isinstance(node.left, A.FieldRef)
                and node.left.name.startswith(_UNSAFE_NA_PREFIXES)
                and node.op in _EQUALITY_OPS
            ):
                r = node.right
                if (isinstance(r, A.Value) and r.text == "<NA>") or (
                    isinstance(r, A.ListValue) and "<NA>" in r.values
                ):
                    unsafe = True
        if unsafe:
            self.warn(
                R.LOAD_UNSAFE_NA_CHECK,
                "Comparing a plugin field with '<NA>' is unsafe: a missing value never "
                "compares equal; use 'exists' instead",
                ctx,
            )
        for dep in sorted(deprecated):
            msg = f"usage of deprecated field '{dep}' has been detected in the rule condition"
            if dep == "evt.dir":
                msg += (
                    "; due to the drop of enter events, 'evt.dir = <' always evaluates to true, "
                    "and 'evt.dir = >' always evaluates to false"
                )
            self.warn(R.LOAD_DEPRECATED_FIELD, msg, ctx)

    def unused_warnings(self) -> None:
        for m in self.col.macros.values():
            if m.name not in self.used_macros:
                self.warn(R.LOAD_UNUSED_MACRO, "Macro not referred to by any other rule/macro", m.ctx)
        for li in self.col.lists.values():
            if li.name not in self.used_lists:
                self.warn(R.LOAD_UNUSED_LIST, "List not referred to by any other rule/macro", li.ctx)

    def run(self) -> None:
        self.compile_lists()
        self.compile_macros()
        self.compile_rules()
        self.unused_warnings()


class Engine:
    """Falco-compatible rules engine for the ``syscall``, ``aws_cloudtrail`` and
    ``k8s_audit`` sources (rules of ``okta``, ``github`` and ``gcp_auditlog`` load and
    validate too)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._state = _State()
        self._parse_cache: dict[str, A.Expr | ConditionSyntaxError] = {}
        self._first = self.config.rule_matching == "first"

    # -- loading --------------------------------------------------------------------------------
    @staticmethod
    def _add_unique(res: R.LoadResult, msg: R.LoadMessage) -> None:
        for m in res.messages:
            if (
                m.code == msg.code
                and m.message == msg.message
                and m.position == msg.position
                and m.item == msg.item
            ):
                return
        res.add(msg)

    def load(self, paths: Sequence[str | Path]) -> R.LoadResult:
        """Load rule files and directories in order; see the module docstring."""
        files: list[tuple[str, str | None, str]] = []
        for path in expand_rule_files(paths):
            try:
                files.append((str(path), path.read_text(encoding="utf-8"), ""))
            except UnicodeDecodeError as exc:
                files.append((str(path), None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            except OSError as exc:
                files.append((str(path), None, exc.strerror or str(exc)))
        return self._load(files)

    def load_texts(self, files: Sequence[tuple[str, str]]) -> R.LoadResult:
        """Load rule files given as ``(name, text)`` pairs (names are used in messages)."""
        return self._load([(name, text, "") for name, text in files])

    def _load(self, files: list[tuple[str, str | None, str]]) -> R.LoadResult:
        res = R.LoadResult()
        col = Collector()
        reader = Reader(col, res, self._source_known, self._lhs_checker)
        final: _Compilation | None = None
        with _deep_recursion():
            for name, text, read_error in files:
                stats = R.FileStats(name)
                res.files.append(stats)
                if text is None:
                    res.add(
                        R.LoadMessage(
                            R.ERROR,
                            R.LOAD_ERR_FILE_READ,
                            f"cannot read rules file: {read_error}",
                            R.Position(name),
                        )
                    )
                    return res
                if not reader.read(name, text, stats):
                    return res
                comp = _Compilation(self, col, res)
                try:
                    comp.run()
                except LoadFailure as exc:
                    res.add(
                        R.LoadMessage(
                            R.ERROR, exc.code, exc.message, exc.ctx.position, exc.ctx.item, exc.detail
                        )
                    )
                    return res
                final = comp
            if final is None:
                self._state = _State()
                return res
            if not self._check_plugins(col, res):
                return res
            self._state = self._build(final)
        return res

    def _source_known(self, source: str) -> bool:
        allowed = self.config.sources
        return source in KNOWN_SOURCES and (allowed is None or source in allowed)

    @staticmethod
    def _lhs_checker(source: str):
        reg = registry_for(source)

        def ok(text: str) -> bool:
            if reg is None:
                return True
            parsed = parse_field_expr(text.strip())
            if parsed is None or parsed[1] != len(text.strip()):
                return False
            expr = parsed[0]
            try:
                if isinstance(expr, A.FieldRef):
                    reg.bind(expr.name, expr.arg)
                else:
                    CheckCompiler(reg).operand(expr)
            except Exception:
                return False
            return True

        return ok

    def _check_plugins(self, col: Collector, res: R.LoadResult) -> bool:
        have = plugin_versions(self.config.sources)
        for req in col.plugin_requirements:
            satisfied = False
            for name, version in req.alternatives:
                if name not in have:
                    continue
                ours = parse_version(have[name])
                need = parse_version(version)
                assert ours is not None and need is not None
                if not version_compatible(ours, need):
                    res.add(
                        R.LoadMessage(
                            R.ERROR,
                            R.LOAD_ERR_VALIDATE,
                            f"Plugin '{name}' version '{have[name]}' is not compatible with "
                            f"required plugin version '{version}'",
                            req.ctx.position,
                            req.ctx.item,
                        )
                    )
                    return False
                satisfied = True
                break
            if not satisfied:
                wanted = ", ".join(f"{n} (>= {v})" for n, v in req.alternatives)
                res.add(
                    R.LoadMessage(
                        R.ERROR,
                        R.LOAD_ERR_VALIDATE,
                        f"Plugin requirement not satisfied, must load one of: {wanted}",
                        req.ctx.position,
                        req.ctx.item,
                    )
                )
                return False
        return True

    def _build(self, comp: _Compilation) -> _State:
        """Generate and compile the evaluation code of every active rule."""
        active: dict[str, list[CompiledRule]] = {}
        for rule, _info in comp.rules:
            if rule.enabled and rule.priority <= self.config.min_priority:
                active.setdefault(rule.source, []).append(rule)
        first = self.config.rule_matching == "first"
        rulesets: dict[str, _Ruleset] = {}
        for source, rules in active.items():
            cc = comp.compiler(source)
            # per event type: (position, condition or None for "call _rN_all") in order
            plan: dict[str | None, list[tuple[int, A.Expr | None]]] = {}
            checks: dict[str | None, list[tuple[int, str]]] = {}
            for i, rule in enumerate(rules):
                types = rule.event_types
                if types is not None and len(types) <= _SPECIALIZE_MAX_TYPES:
                    for t in sorted(types):
                        body = cc.code(rule.condition, t)
                        if body is False:
                            continue
                        checks.setdefault(t, []).append((i, cc.function(f"_r{i}_{t}", body)))
                        plan.setdefault(t, []).append((i, rule.condition))
                    continue
                if types is not None and not types:
                    continue  # can never match (e.g. the never_true idiom)
                body = cc.code(rule.condition, None)
                if body is False:
                    continue
                fname = cc.function(f"_r{i}_all", body)
                targets: list[str | None] = []
                if types is None:
                    targets.append(None)  # plugin sources: one bucket for everything
                else:
                    targets.extend(sorted(types))
                    if types >= EVENT_TYPES:
                        targets.append(None)  # also types outside the known universe
                for t in targets:
                    checks.setdefault(t, []).append((i, fname))
                    plan.setdefault(t, []).append((i, None))
            names: dict[str | None, str] = {}
            for n, (t, entries) in enumerate(plan.items()):
                entries.sort(key=lambda e: e[0])
                names[t] = cc.bucket_function(f"_b{n}", entries, t, first)
            ns = cc.build()
            buckets: dict[str | None, _Bucket] = {}
            for t, fname in names.items():
                ordered = sorted(checks[t], key=lambda e: e[0])
                buckets[t] = _Bucket(ns[fname], tuple((rules[i], ns[f]) for i, f in ordered))
            default = buckets.pop(None, None)
            rulesets[source] = _Ruleset(source, tuple(rules), buckets, default)  # type: ignore[arg-type]
        return _State(
            rules=tuple(r for r, _ in comp.rules),
            rulesets=rulesets,
            lists=dict(comp.lists),
            macros=tuple(comp.col.macros),
        )

    # -- introspection ----------------------------------------------------------------------------
    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        """Every compiled rule (enabled or not), in definition order."""
        return self._state.rules

    def definition_counts(self) -> tuple[int, int, int]:
        """Rules, macros and lists currently loaded (unique names, after all files)."""
        st = self._state
        return len(st.rules), len(st.macros), len(st.lists)

    def event_types(self) -> frozenset[str]:
        """The syscall event types the active rules can match (what a sensor must capture)."""
        rs = self._state.rulesets.get("syscall")
        return frozenset(t for t in rs.buckets if t is not None) if rs else frozenset()

    # -- evaluation -------------------------------------------------------------------------------
    def process(self, ev: Event) -> list[Detection]:
        """Evaluate one event; returns its detections (usually none).

        Raises :class:`EvaluationError` (with the detections of the other rules) when a
        rule fails on malformed event data.
        """
        rs = self._state.rulesets.get(ev.source)
        if rs is None:
            return []
        bucket = rs.buckets.get(ev.type, rs.default)
        if bucket is None:
            return []
        try:
            hit = bucket.fn(ev)
        except Exception:  # malformed event data inside an extractor: find which rule
            return self._process_isolated(bucket, ev)
        if self._first:
            return [] if hit < 0 else [self._detection(rs.rules[hit], ev)]
        return [self._detection(rs.rules[i], ev) for i in hit]

    def _process_isolated(self, bucket: _Bucket, ev: Event) -> list[Detection]:
        out: list[Detection] = []
        failures: list[tuple[str, str]] = []
        for rule, fn in bucket.checks:
            try:
                hit = fn(ev)
            except Exception as exc:
                failures.append((rule.name, f"{type(exc).__name__}: {exc}"))
                continue
            if hit:
                out.append(self._detection(rule, ev))
                if self._first:
                    break
        if failures:
            raise EvaluationError(failures, out)
        return out

    def _detection(self, rule: CompiledRule, ev: Event) -> Detection:
        text, fields = rule.output.render(ev)
        if self.config.time_iso8601:
            stamp = timefmt.iso8601_offset(ev.ts)
            fields["evt.time.iso8601"] = stamp
        else:
            stamp = timefmt.clock_ns(ev.ts)
            fields["evt.time"] = ev.ts
        return Detection(
            time=timefmt.iso8601_z(ev.ts),
            rule=rule.name,
            priority=rule.priority,
            output=f"{stamp}: {rule.priority.title} {text}",
            output_fields=fields,
            source=rule.source,
            tags=rule.tags,
            hostname=ev.host,
            id=detection_id(rule.name, ev.id),
            event_id=ev.id,
            ts=ev.ts,
            enrichment=ev.enrichment,
        )


"""Rules YAML → collector: validates every item like Falco's ``rule_loader_reader.cpp``.

Reading stops at the first error of a file (as Falco does); warnings accumulate. Every
message carries the file, line and column of the node it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from falconet.priority import Priority

from . import result as R
from .collector import (
    Collector,
    Context,
    ExceptionEntry,
    ExceptionInfo,
    ListInfo,
    LoadFailure,
    MacroInfo,
    RuleInfo,
    RuleUpdate,
    parse_version,
)
from .yamlsource import Node, YamlError, load_documents

_RX_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RX_BARESTR = re.compile(r"[^()\"' \t\n\v\f\r=,]+")

_RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACEABLE = (
    "condition",
    "output",
    "desc",
    "priority",
    "capture",
    "capture_duration",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
)
_RULE_KEYS = frozenset(
    {
        "rule",
        "condition",
        "output",
        "desc",
        "priority",
        "source",
        "enabled",
        "capture",
        "capture_duration",
        "warn_evttypes",
        "skip-if-unknown-filter",
        "tags",
        "exceptions",
        "override",
        "append",
    }
)
_LIST_KEYS = frozenset({"list", "items", "append", "override"})
_MACRO_KEYS = frozenset({"macro", "condition", "append", "override"})

WARNING_APPEND = (
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under "
    "'override' instead."
)
WARNING_ENABLED = (
    "The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
    "'replace' entry under the 'override' key (i.e. 'enabled: replace')."
)
ERROR_OVERRIDE_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
    "(e.g. 'condition: append') under 'override' instead."
)


def _ctx(node: Node, file: str, item: str) -> Context:
    return Context(file, node.line, node.column, item)


def _fail(message: str, ctx: Context) -> LoadFailure:
    return LoadFailure(R.LOAD_ERR_YAML_VALIDATE, message, ctx)


class Reader:
    """Reads one rules file's text into a :class:`Collector`.

    ``source_ok(name)`` tells whether a source is known; ``lhs_ok_for(source)`` returns a
    predicate validating exception fields for that source.
    """

    def __init__(
        self,
        collector: Collector,
        result: R.LoadResult,
        source_ok: Callable[[str], bool],
        lhs_ok_for: Callable[[str], Callable[[str], bool]],
    ) -> None:
        self.col = collector
        self.res = result
        self.source_ok = source_ok
        self.lhs_ok_for = lhs_ok_for
        self.file = ""
        self.stats: R.FileStats | None = None

    # -- messages ------------------------------------------------------------------------
    def warn(self, code: str, message: str, ctx: Context) -> None:
        self.res.add(R.LoadMessage(R.WARNING, code, message, ctx.position, ctx.item))

    def _error(self, code: str, message: str, ctx: Context, detail: str = "") -> None:
        self.res.add(R.LoadMessage(R.ERROR, code, message, ctx.position, ctx.item, detail))

    # -- entry point ------------------------------------------------------------------------
    def read(self, name: str, text: str, stats: R.FileStats) -> bool:
        """Read ``text`` (the file ``name``); return False if an error stopped it."""
        self.file = name
        self.stats = stats
        file_ctx = Context(name)
        try:
            docs = load_documents(text)
        except YamlError as exc:
            self._error(
                R.LOAD_ERR_YAML_PARSE, exc.message, Context(name, exc.line, exc.column)
            )
            return False
        for doc in docs:
            if doc is None:
                continue
            try:
                if not doc.is_mapping and not doc.is_sequence:
                    raise _fail("Rules content is not yaml", file_ctx)
                if not doc.is_sequence:
                    raise _fail("Rules content is not yaml array of objects", file_ctx)
                for item in doc.items:
                    if item.is_null:
                        continue
                    self.read_item(item)
            except LoadFailure as exc:
                self._error(exc.code, exc.message, exc.ctx, exc.detail)
                return False
        return True

    # -- value decoding (Falco's decode_val family) ---------------------------------------
    def _value(
        self,
        item: Node,
        key: str,
        ctx: Context,
        *,
        optional: bool = False,
        can_be_empty: bool = False,
    ) -> Node | None:
        val = item.get(key)
        if val is None:
            if optional:
                return None
            raise _fail(f"Item has no mapping for key '{key}'", ctx)
        if val.is_null:
            if can_be_empty:
                return None
            raise _fail(f"Mapping for key '{key}' is empty", ctx)
        vctx = _ctx(val, self.file, ctx.item)
        if val.kind != "scalar":
            raise _fail("Value is not a scalar value", vctx)
        if val.text == "":
            if can_be_empty:
                return None
            raise _fail("Value must be non-empty", vctx)
        return val

    def _str(self, item: Node, key: str, ctx: Context, **kw: bool) -> str | None:
        val = self._value(item, key, ctx, **kw)
        return None if val is None else val.text

    def _bool(self, item: Node, key: str, ctx: Context, optional: bool = False) -> bool | None:
        val = self._value(item, key, ctx, optional=optional)
        if val is None:
            return None
        b = val.as_bool()
        if b is None:
            raise _fail("Can't decode YAML scalar value", _ctx(val, self.file, ctx.item))
        return b

    def _int(self, item: Node, key: str, ctx: Context, optional: bool = False) -> int | None:
        val = self._value(item, key, ctx, optional=optional)
        if val is None:
            return None
        text = val.text.strip()
        try:
            return int(text)
        except ValueError:
            raise _fail("Can't decode YAML scalar value", _ctx(val, self.file, ctx.item)) from None

    def _seq(self, item: Node, key: str, ctx: Context, optional: bool) -> list[str] | None:
        val = item.get(key)
        if val is None:
            if optional:
                return None
            raise _fail(f"Item has no mapping for key '{key}'", ctx)
        vctx = _ctx(val, self.file, ctx.item)
        if not val.is_sequence:
            raise _fail("Value is not a sequence", vctx)
        out: list[str] = []
        for v in val.items:
            if not v.is_scalar:
                raise _fail("sequence value is not scalar", _ctx(v, self.file, ctx.item))
            out.append(v.text)
        return out

    def _priority(self, item: Node, ctx: Context) -> Priority:
        text = self._str(item, "priority", ctx)
        assert text is not None
        node = item.get("priority")
        assert node is not None
        try:
            return Priority.parse(text)
        except ValueError:
            raise _fail("Invalid priority", _ctx(node, self.file, ctx.item)) from None

    def _overrides(
        self, item: Node, appendable: tuple[str, ...], replaceable: tuple[str, ...], ctx: Context
    ) -> tuple[list[str], list[str]]:
        node = item.get("override")
        if node is None:
            return [], []
        append: list[str] = []
        replace: list[str] = []
        if not node.is_mapping:
            raise _fail("Value of 'override' must be a mapping", _ctx(node, self.file, ctx.item))
        for k, v in node.pairs:
            key = k.text if k.kind == "scalar" else ""
            kctx = _ctx(k, self.file, ctx.item)
            if v.kind != "scalar":
                raise _fail(
                    f"Invalid override operation for key '{key}'", _ctx(v, self.file, ctx.item)
                )
            op = v.text
            if op == "append":
                if key not in appendable:
                    raise _fail(f"Key '{key}' cannot be appended to, use 'replace' instead", kctx)
                append.append(key)
            elif op == "replace":
                if key not in replaceable:
                    raise _fail(f"Key '{key}' cannot be replaced", kctx)
                replace.append(key)
            else:
                allowed = " ".join(
                    w
                    for w, ok in (("append", key in appendable), ("replace", key in replaceable))
                    if ok
                )
                raise _fail(
                    f"Invalid override operation for key '{key}': '{op}'. "
                    f"Allowed values are: {allowed} ",
                    _ctx(v, self.file, ctx.item),
                )
        return append, replace

    def _warn_unknown_keys(self, item: Node, expected: frozenset[str], ctx: Context) -> None:
        for k, _ in item.pairs:
            key = k.text if k.kind == "scalar" else "<non-scalar key>"
            if key not in expected:
                self.warn(
                    R.LOAD_UNKNOWN_KEY, f"Unknown key '{key}'. The key will be ignored.", ctx
                )

    # -- exceptions ------------------------------------------------------------------------
    def _entry(self, val: Node, ctx: Context, depth: int = 0) -> ExceptionEntry:
        if val.is_scalar:
            if val.text == "":
                raise _fail("Value must be non-empty", ctx)
            return ExceptionEntry(is_list=False, item=val.text)
        if val.is_sequence:
            return ExceptionEntry(
                is_list=True,
                items=[
                    self._entry(v, _ctx(v, self.file, ctx.item), depth + 1) for v in val.items
                ],
            )
        # a null (or a mapping) is neither: Falco leaves the entry empty
        return ExceptionEntry()

    def _exceptions(self, item: Node, ctx: Context, append: bool) -> list[ExceptionInfo] | None:
        exs = item.get("exceptions")
        if exs is None or exs.is_null:
            return None if exs is None else []
        ectx = _ctx(exs, self.file, ctx.item)
        if not exs.is_sequence:
            raise _fail("Rule exceptions must be a sequence", ectx)
        out: list[ExceptionInfo] = []
        for ex in exs.items:
            tmp = _ctx(ex, self.file, ctx.item)
            if not ex.is_mapping:
                raise _fail("Rule exception must be a mapping", tmp)
            name = self._str(ex, "name", tmp)
            assert name is not None
            xctx = Context(self.file, ex.line, ex.column, f"{ctx.item}, exception '{name}'")
            info = ExceptionInfo(name=name, ctx=xctx)
            if any(e.name == name for e in out):
                self.warn(
                    R.LOAD_EXCEPTION_NAME_NOT_UNIQUE,
                    f"Multiple definitions of exception '{name}' in the same rule",
                    xctx,
                )
            fields = ex.get("fields")
            if fields is None:
                if not append:
                    raise _fail("Item has no mapping for key 'fields'", xctx)
            else:
                info.fields = self._entry(fields, _ctx(fields, self.file, xctx.item))
            comps = ex.get("comps")
            if comps is not None:
                info.comps = self._entry(comps, _ctx(comps, self.file, xctx.item))
            values = ex.get("values")
            if values is not None:
                vctx = _ctx(values, self.file, xctx.item)
                if not values.is_sequence:
                    raise _fail("Rule exception values must be a sequence", vctx)
                info.values = [
                    self._entry(v, _ctx(v, self.file, xctx.item)) for v in values.items
                ]
            elif append:
                self.warn(
                    R.LOAD_APPEND_NO_VALUES, "Overriding/appending exception with no values", xctx
                )
            out.append(info)
        return out

    # -- items -----------------------------------------------------------------------------
    def read_item(self, item: Node) -> None:
        if not item.is_mapping:
            raise _fail(
                "Unexpected element type. Each element should be a yaml associative array.",
                _ctx(item, self.file, ""),
            )
        if "required_engine_version" in item:
            self._read_engine_version(item)
        elif "required_plugin_versions" in item:
            self._read_plugin_versions(item)
        elif "list" in item:
            self._read_list(item)
        elif "macro" in item:
            self._read_macro(item)
        elif "rule" in item:
            self._read_rule(item)
        else:
            self.warn(R.LOAD_UNKNOWN_ITEM, "Unknown top level item", _ctx(item, self.file, ""))

    def _read_engine_version(self, item: Node) -> None:
        ctx = _ctx(item, self.file, "required_engine_version")
        val = self._value(item, "required_engine_version", ctx)
        assert val is not None
        minor = val.as_uint()
        if minor is not None and minor <= 0xFFFFFFFF:
            version = (0, minor, 0)
        else:
            parsed = parse_version(val.text)
            if parsed is None:
                raise _fail(
                    f"Unable to parse engine version '{val.text}' as a semver string. "
                    'Expected "x.y.z" semver format.',
                    ctx,
                )
            version = parsed
        self.col.require_engine(version, ctx)
        self._warn_unknown_keys(item, frozenset({"required_engine_version"}), ctx)

    def _read_plugin_versions(self, item: Node) -> None:
        node = item.get("required_plugin_versions")
        assert node is not None
        ctx = _ctx(node, self.file, "required_plugin_versions")
        if not node.is_sequence:
            raise _fail("Value of required_plugin_versions must be a sequence", ctx)
        for plugin in node.items:
            tmp = _ctx(plugin, self.file, "required_plugin_versions")
            if not plugin.is_mapping:
                raise _fail("Plugin version must be a mapping", tmp)
            name = self._str(plugin, "name", tmp)
            pctx = Context(self.file, plugin.line, plugin.column, f"required plugin '{name}'")
            version = self._str(plugin, "version", pctx)
            assert name is not None and version is not None
            alternatives = [(name, version)]
            alts = plugin.get("alternatives")
            if alts is not None:
                if not alts.is_sequence:
                    raise _fail("Value of plugin version alternatives must be a sequence", pctx)
                for alt in alts.items:
                    actx = _ctx(alt, self.file, pctx.item)
                    if not alt.is_mapping:
                        raise _fail("Plugin version alternative must be a mapping", actx)
                    aname = self._str(alt, "name", actx)
                    aver = self._str(alt, "version", actx)
                    assert aname is not None and aver is not None
                    alternatives.append((aname, aver))
            self.col.require_plugin(alternatives, pctx)
        self._warn_unknown_keys(
            item, frozenset({"required_plugin_versions"}), _ctx(item, self.file, "")
        )

    def _append_flag(self, item: Node, ctx: Context) -> bool:
        append = bool(self._bool(item, "append", ctx, optional=True))
        if append:
            self.warn(R.LOAD_DEPRECATED_ITEM, WARNING_APPEND, ctx)
        return append

    def _read_list(self, item: Node) -> None:
        tmp = _ctx(item, self.file, "list")
        name = self._str(item, "list", tmp)
        assert name is not None
        ctx = _ctx(item, self.file, f"list '{name}'")
        if not _RX_BARESTR.fullmatch(name):
            self.warn(
                R.LOAD_INVALID_LIST_NAME,
                "List has an invalid name. List names should match a regular expression: "
                "([^()\"'[:space:]=,]+)",
                ctx,
            )
        items = self._seq(item, "items", ctx, optional=False)
        assert items is not None
        info = ListInfo(name=name, items=items, ctx=ctx)
        append = self._append_flag(item, ctx)
        app, rep = self._overrides(item, ("items",), ("items",), ctx)
        if append and (app or rep):
            raise _fail(ERROR_OVERRIDE_APPEND, ctx)
        if append or "items" in app:
            self.col.append_list(info)
        else:
            self.col.define_list(info)
        if self.stats is not None:
            self.stats.lists += 1
        self._warn_unknown_keys(item, _LIST_KEYS, ctx)

    def _read_macro(self, item: Node) -> None:
        tmp = _ctx(item, self.file, "macro")
        name = self._str(item, "macro", tmp)
        assert name is not None
        ctx = _ctx(item, self.file, f"macro '{name}'")
        if not _RX_IDENTIFIER.fullmatch(name):
            self.warn(
                R.LOAD_INVALID_MACRO_NAME,
                "Macro has an invalid name. Macro names should match a regular expression: "
                "([a-zA-Z]+[a-zA-Z0-9_]*)",
                ctx,
            )
        cond = self._str(item, "condition", ctx)
        assert cond is not None
        cnode = item.get("condition")
        assert cnode is not None
        info = MacroInfo(
            name=name, cond=cond, ctx=ctx, cond_ctx=_ctx(cnode, self.file, ctx.item)
        )
        append = self._append_flag(item, ctx)
        app, rep = self._overrides(item, ("condition",), ("condition",), ctx)
        if append and (app or rep):
            raise _fail(ERROR_OVERRIDE_APPEND, ctx)
        if append or "condition" in app:
            self.col.append_macro(info)
        else:
            self.col.define_macro(info)
        if self.stats is not None:
            self.stats.macros += 1
        self._warn_unknown_keys(item, _MACRO_KEYS, ctx)

    def _read_rule(self, item: Node) -> None:
        tmp = _ctx(item, self.file, "rule")
        name = self._str(item, "rule", tmp)
        assert name is not None
        ctx = _ctx(item, self.file, f"rule '{name}'")
        source = self._str(item, "source", ctx, optional=True, can_be_empty=True) or ""
        has_append = self._append_flag(item, ctx)
        app, rep = self._overrides(item, _RULE_APPENDABLE, _RULE_REPLACEABLE, ctx)
        if has_append and (app or rep):
            raise _fail(ERROR_OVERRIDE_APPEND, ctx)

        if app or rep:
            expected = [k for k in _RULE_REPLACEABLE + _RULE_APPENDABLE if k in item]
            expected = list(dict.fromkeys(expected))

            def take(keys: list[str], op: str, key: str) -> bool:
                if key not in keys:
                    return False
                if key not in expected:
                    raise _fail(
                        f"An {op} override for '{key}' was specified but '{key}' is not defined",
                        ctx,
                    )
                expected.remove(key)
                return True

            if app:
                upd = RuleUpdate(name=name, ctx=ctx)
                self._fill_update(upd, item, ctx, app, "append", take, source)
                self.col.append_rule(upd, self.lhs_ok_for)
            if rep:
                upd = RuleUpdate(name=name, ctx=ctx)
                self._fill_update(upd, item, ctx, rep, "replace", take, source)
                self.col.replace_rule(upd)
            for key in expected:
                knode = item.get(key)
                kctx = _ctx(knode, self.file, ctx.item) if knode is not None else ctx
                raise _fail(
                    f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                    kctx,
                )
        elif has_append:
            upd = RuleUpdate(name=name, ctx=ctx, source=source)
            cnode = item.get("condition")
            if cnode is not None:
                upd.cond_ctx = _ctx(cnode, self.file, ctx.item)
                upd.cond = self._str(item, "condition", ctx)
            if "exceptions" in item:
                upd.exceptions = self._exceptions(item, ctx, append=True)
            self.col.append_rule(upd, self.lhs_ok_for)
        else:
            if not any(k in item for k in ("condition", "output", "desc", "priority")):
                enabled = self._bool(item, "enabled", ctx)
                assert enabled is not None
                self.warn(R.LOAD_DEPRECATED_ITEM, WARNING_ENABLED, ctx)
                self.col.enable_rule(name, enabled, ctx)
            else:
                cond = self._str(item, "condition", ctx)
                cnode = item.get("condition")
                output = self._str(item, "output", ctx)
                onode = item.get("output")
                desc = self._str(item, "desc", ctx)
                assert cond is not None and output is not None and desc is not None
                assert cnode is not None and onode is not None
                priority = self._priority(item, ctx)
                info = RuleInfo(
                    name=name,
                    ctx=ctx,
                    cond=cond,
                    cond_ctx=_ctx(cnode, self.file, ctx.item),
                    output=output.strip(" \t\n\r\f\v"),
                    output_ctx=_ctx(onode, self.file, ctx.item),
                    desc=desc,
                    priority=priority,
                )
                src = self._str(item, "source", ctx, optional=True)
                if src is not None:
                    info.source = src
                for key, attr in (
                    ("enabled", "enabled"),
                    ("capture", "capture"),
                    ("warn_evttypes", "warn_evttypes"),
                    ("skip-if-unknown-filter", "skip_if_unknown_filter"),
                ):
                    b = self._bool(item, key, ctx, optional=True)
                    if b is not None:
                        setattr(info, attr, b)
                dur = self._int(item, "capture_duration", ctx, optional=True)
                if dur is not None:
                    info.capture_duration = dur
                tags = self._seq(item, "tags", ctx, optional=True)
                info.tags = set(tags or ())
                info.exceptions = self._exceptions(item, ctx, append=False) or []
                known = self.source_ok(info.source)
                if not known:
                    self.warn(
                        R.LOAD_UNKNOWN_SOURCE, f"Unknown source {info.source}, skipping", ctx
                    )
                self.col.define_rule(info, known, self.lhs_ok_for(info.source))
        if self.stats is not None:
            self.stats.rules += 1
        self._warn_unknown_keys(item, _RULE_KEYS, ctx)

    def _fill_update(self, upd, item, ctx, keys, op, take, source) -> None:
        if take(keys, op, "condition"):
            upd.source = source
            upd.cond = self._str(item, "condition", ctx)
            cnode = item.get("condition")
            assert cnode is not None
            upd.cond_ctx = _ctx(cnode, self.file, ctx.item)
        if take(keys, op, "exceptions"):
            upd.exceptions = self._exceptions(item, ctx, append=(op == "append")) or []
        if take(keys, op, "output"):
            upd.output = self._str(item, "output", ctx)
        if take(keys, op, "desc"):
            upd.desc = self._str(item, "desc", ctx)
        if take(keys, op, "tags"):
            upd.tags = set(self._seq(item, "tags", ctx, optional=True) or ())
        if op == "replace":
            if take(keys, op, "priority"):
                upd.priority = self._priority(item, ctx)
            if take(keys, op, "capture"):
                upd.capture = self._bool(item, "capture", ctx)
            if take(keys, op, "capture_duration"):
                upd.capture_duration = self._int(item, "capture_duration", ctx)
            if take(keys, op, "enabled"):
                upd.enabled = self._bool(item, "enabled", ctx)
            if take(keys, op, "warn_evttypes"):
                upd.warn_evttypes = self._bool(item, "warn_evttypes", ctx)
            if take(keys, op, "skip-if-unknown-filter"):
                upd.skip_if_unknown_filter = self._bool(item, "skip-if-unknown-filter", ctx)

"""Policy files: YAML → :mod:`.policy_model`, with every error at its file:line:column.

A policy file is a YAML sequence of ``- policy: <name>`` items (and optional
``- policy_settings:`` items), read with the same positioned, hostile-input-safe reader as
rule files (:mod:`.yamlsource`), and reported in the same :class:`~.result.LoadResult`
(``falconet rules push`` prints both). Unknown keys, bad selectors, unknown priorities,
fields or comparison operators are errors; a policy naming a rule or tag that no loaded
rule has is a warning, as Falco warns about an exception for an unknown rule.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from falconet.fields import BoundField, FieldArgError, UnknownFieldError
from falconet.priority import Priority

from . import policy_model as M
from . import result as R
from .fields import EVALUATED_SOURCES, KNOWN_SOURCES, registry_for
from .operators import PathPrefixes, glob_to_regex
from .yamlsource import Node, YamlError, key_text, load_documents

#: Error code of an invalid policy file (besides LOAD_ERR_YAML_PARSE for bad YAML).
LOAD_ERR_POLICY = "LOAD_ERR_POLICY"
#: Warning: a policy names a rule (or tag) that no loaded rule has.
LOAD_POLICY_UNKNOWN_RULE = "LOAD_POLICY_UNKNOWN_RULE"

POLICY_KEYS = ("policy", "desc", "enabled", "scope", "disable", "priority", "exceptions",
               "route", "set")  # fmt: skip
SCOPE_KEYS = ("cluster", "namespace", "pod", "pod_labels", "namespace_labels", "node",
              "node_labels", "account", "account_environment", "account_criticality",
              "environment", "owner", "source", "rules", "tags", "priority")  # fmt: skip
SETTINGS_KEYS = ("owner_keys", "environment_keys", "internet_facing_keys")
EXCEPTION_KEYS = ("name", "fields", "comps", "values")
SET_KEYS = ("environment", "owner")
_ITEM_KEYS = ("policy", "policy_settings")


def is_policy_text(text: str) -> bool:
    """Whether a file is a policy file: a YAML sequence with a ``policy`` or
    ``policy_settings`` item. Text that is not YAML is not (the rules loader reports it)."""
    if "policy" not in text:
        return False
    try:
        docs = load_documents(text)
    except YamlError:
        return False
    for doc in docs:
        if doc is not None and doc.is_sequence:
            for item in doc.items:
                if item.is_mapping and any(k in _ITEM_KEYS for k in item.keys()):
                    return True
    return False


@dataclass(slots=True)
class Loaded:
    """The policies of every policy file, in order, and the merged settings."""

    policies: list[M.Policy] = field(default_factory=list)
    settings: M.Settings = field(default_factory=M.Settings)


class _Invalid(Exception):
    """Stops reading one item; the message was already added."""


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+)(?:\[(.*)\])?$")
_PRIO_CMP = re.compile(r"^(>=|<=|>|<|=)?\s*([A-Za-z]+)$")
_SEVERITY_TESTS: dict[str, Callable[[Priority, Priority], bool]] = {
    "=": operator.eq,
    ">=": operator.le,
    ">": operator.lt,
    "<=": operator.ge,
    "<": operator.gt,
}
_CHANGE = re.compile(r"^(raise|lower)\s+(\d+)$|^set\s+([A-Za-z]+)$", re.IGNORECASE)


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid Kubernetes label key (``prefix/name``), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_PREFIX.match(prefix)):
        return f"invalid label key {key!r}: the prefix must be a DNS subdomain"
    if not name or not _LABEL_NAME.match(name):
        return (f"invalid label key {key!r}: the name must be 1-63 characters, alphanumeric, "
                "'-', '_' or '.', starting and ending with an alphanumeric")  # fmt: skip
    return None


def label_value_problem(value: str) -> str | None:
    if not _LABEL_VALUE.match(value):
        return (f"invalid label value {value!r}: at most 63 characters, alphanumeric, '-', "
                "'_' or '.', starting and ending with an alphanumeric")  # fmt: skip
    return None


class SelectorSyntaxError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def parse_selector(text: str) -> M.LabelSelector:
    """A Kubernetes label selector string: ``app=web,tier in (a,b),!canary,env!=dev``.

    Raises :class:`SelectorSyntaxError` with the offset of the problem.
    """
    reqs: list[M.Requirement] = []
    i, n = 0, len(text)

    def blank() -> None:
        nonlocal i
        while i < n and text[i] in " \t":
            i += 1

    def word() -> str:
        nonlocal i
        start = i
        while i < n and text[i] not in " \t,()=!":
            i += 1
        return text[start:i]

    def key_checked(start: int) -> str:
        k = word()
        if not k:
            raise SelectorSyntaxError("expected a label key", start)
        problem = label_key_problem(k)
        if problem:
            raise SelectorSyntaxError(problem, start)
        return k

    def value_checked() -> str:
        blank()
        start = i
        v = word()
        problem = label_value_problem(v)
        if problem:
            raise SelectorSyntaxError(problem, start)
        return v

    while True:
        blank()
        start = i
        if i < n and text[i] == "!":
            i += 1
            blank()
            reqs.append(M.Requirement(key_checked(i), M.DOES_NOT_EXIST))
        else:
            key = key_checked(start)
            blank()
            if text.startswith("!=", i):
                i += 2
                reqs.append(M.Requirement(key, M.NOT_IN, frozenset([value_checked()])))
            elif text.startswith("==", i) or text.startswith("=", i):
                i += 2 if text.startswith("==", i) else 1
                reqs.append(M.Requirement(key, M.IN, frozenset([value_checked()])))
            elif i == n or text[i] == ",":
                reqs.append(M.Requirement(key, M.EXISTS))
            else:
                op_start = i
                op = word()
                if op not in ("in", "notin"):
                    raise SelectorSyntaxError(
                        f"expected '=', '==', '!=', 'in', 'notin', ',' or the end after {key!r}",
                        op_start,
                    )
                blank()
                if i >= n or text[i] != "(":
                    raise SelectorSyntaxError(f"expected '(' after {op!r}", i)
                i += 1
                values: list[str] = []
                while True:
                    values.append(value_checked())
                    blank()
                    if i < n and text[i] == ",":
                        i += 1
                        continue
                    if i < n and text[i] == ")":
                        i += 1
                        break
                    raise SelectorSyntaxError("expected ',' or ')' in the value set", i)
                reqs.append(M.Requirement(key, M.IN if op == "in" else M.NOT_IN, frozenset(values)))
        blank()
        if i == n:
            return M.LabelSelector(tuple(reqs))
        if text[i] != ",":
            raise SelectorSyntaxError("expected ',' between requirements", i)
        i += 1


def _caret(text: str, offset: int) -> str:
    return text + "\n" + " " * offset + "^"


class PolicyReader:
    """Reads policy files into :class:`Loaded`, adding messages to ``res``."""

    def __init__(self, res: R.LoadResult, rule_names: Iterable[str] | None = None,
                 rule_tags: Iterable[str] | None = None) -> None:  # fmt: skip
        self.res = res
        self.rule_names = None if rule_names is None else frozenset(rule_names)
        self.rule_tags = None if rule_tags is None else frozenset(rule_tags)
        self.loaded = Loaded()
        self.file = ""
        self.item = ""
        self._names: set[str] = set()

    # -- messages -------------------------------------------------------------------------
    def error(self, message: str, node: Node | None, detail: str = "",
              code: str = LOAD_ERR_POLICY) -> _Invalid:  # fmt: skip
        pos = R.Position(self.file, node.line, node.column) if node else R.Position(self.file)
        self.res.add(R.LoadMessage(R.ERROR, code, message, pos, self.item, detail))
        return _Invalid(message)

    def warn(self, message: str, node: Node) -> None:
        pos = R.Position(self.file, node.line, node.column)
        self.res.add(R.LoadMessage(R.WARNING, LOAD_POLICY_UNKNOWN_RULE, message, pos, self.item))

    # -- files ----------------------------------------------------------------------------
    def read(self, name: str, text: str) -> None:
        self.file, self.item = name, ""
        stats = R.FileStats(name)
        self.res.files.append(stats)
        try:
            docs = load_documents(text)
        except YamlError as exc:
            pos = R.Position(name, exc.line, exc.column)
            self.res.add(R.LoadMessage(R.ERROR, R.LOAD_ERR_YAML_PARSE, exc.message, pos))
            return
        for doc in docs:
            if doc is None:
                continue
            if not doc.is_sequence:
                self.error(f"a policy file is a sequence of '- policy:' items, not {doc.describe()}",
                           doc)  # fmt: skip
                continue
            for item in doc.items:
                self.item = ""
                try:
                    self._item(item)
                except _Invalid:
                    continue

    def _item(self, item: Node) -> None:
        if not item.is_mapping:
            raise self.error(
                f"expected a '- policy:' item (a mapping), found {item.describe()}", item
            )
        keys = list(item.keys())
        if "policy_settings" in keys:
            self._settings(item)
            return
        if "policy" not in keys:
            first = item.pairs[0][0] if item.pairs else item
            raise self.error(
                f"unknown item '{key_text(first)}': a policy file holds only '- policy:' and "
                "'- policy_settings:' items (rules, macros and lists go in rule files)",
                first,
            )
        self._policy(item)

    def _unknown_keys(self, node: Node, allowed: Sequence[str], what: str) -> None:
        seen: set[str] = set()
        for k, _ in node.pairs:
            name = key_text(k)
            if name not in allowed:
                raise self.error(f"unknown key '{name}' in {what} (expected one of: "
                                 f"{', '.join(allowed)})", k)  # fmt: skip
            if name in seen:
                raise self.error(f"key '{name}' given twice in {what}", k)
            seen.add(name)

    # -- scalars and lists --------------------------------------------------------------------
    def scalar(self, node: Node, what: str) -> str:
        if not node.is_scalar or not node.text.strip():
            raise self.error(f"{what} must be a non-empty string, not {node.describe()}", node)
        return node.text.strip()

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A string or a non-empty list of strings, with their nodes."""
        if node.is_sequence:
            if not node.items:
                raise self.error(f"{what} must not be an empty list", node)
            return [(self.scalar(n, f"each item of {what}"), n) for n in node.items]
        return [(self.scalar(node, what), node)]

    def names(self, node: Node, what: str) -> M.Names:
        return M.Names.of([s for s, _ in self.strings(node, what)])

    # -- settings ----------------------------------------------------------------------------
    def _settings(self, item: Node) -> None:
        self.item = "policy_settings"
        self._unknown_keys(item, ("policy_settings",), "a policy_settings item")
        body = item.get("policy_settings")
        assert body is not None
        if not body.is_mapping:
            raise self.error(f"policy_settings must be a mapping, not {body.describe()}", body)
        self._unknown_keys(body, SETTINGS_KEYS, "policy_settings")
        s = self.loaded.settings
        values: dict[str, tuple[str, ...]] = {}
        for key in SETTINGS_KEYS:
            node = body.get(key)
            if node is not None:
                values[key] = tuple(v for v, _ in self.strings(node, key))
        self.loaded.settings = M.Settings(
            values.get("owner_keys", s.owner_keys),
            values.get("environment_keys", s.environment_keys),
            values.get("internet_facing_keys", s.internet_facing_keys),
        )

    # -- one policy ----------------------------------------------------------------------------
    def _policy(self, item: Node) -> None:
        name_node = item.get("policy")
        assert name_node is not None
        self.item = "policy"
        name = self.scalar(name_node, "the policy name")
        self.item = f"policy '{name}'"
        self._unknown_keys(item, POLICY_KEYS, "a policy")
        if name in self._names:
            raise self.error(f"policy '{name}' is defined twice (policy names must be unique)",
                             name_node)  # fmt: skip
        self._names.add(name)
        enabled = True
        if (node := item.get("enabled")) is not None:
            b = node.as_bool()
            if b is None:
                raise self.error("enabled must be true or false", node)
            enabled = b
        if (node := item.get("desc")) is not None and not node.is_scalar and not node.is_null:
            raise self.error("desc must be a string", node)
        scope = self._scope(item.get("scope"))
        disable = self._disable(item.get("disable"))
        change = self._change(item.get("priority"))
        exceptions = self._exceptions(item.get("exceptions"))
        route: tuple[str, ...] = ()
        if (node := item.get("route")) is not None:
            route = tuple(dict.fromkeys(v for v, _ in self.strings(node, "route")))
        set_env = set_owner = None
        if (node := item.get("set")) is not None:
            if not node.is_mapping:
                raise self.error(
                    f"set must be a mapping (environment, owner), not {node.describe()}", node
                )
            self._unknown_keys(node, SET_KEYS, "set")
            if (v := node.get("environment")) is not None:
                set_env = self.scalar(v, "set.environment")
            if (v := node.get("owner")) is not None:
                set_owner = self.scalar(v, "set.owner")
        if not (disable or change or exceptions or route or set_env or set_owner):
            self.error("the policy has no action (disable, priority, exceptions, route or set)",
                       name_node)  # fmt: skip
            return
        self.loaded.policies.append(
            M.Policy(
                name,
                R.Position(self.file, item.line, item.column),
                scope,
                disable,
                change,
                exceptions,
                route,
                set_env,
                set_owner,
                enabled,
            )  # fmt: skip
        )

    def _scope(self, node: Node | None) -> M.Scope:
        if node is None or node.is_null:
            return M.Scope()
        if not node.is_mapping:
            raise self.error(f"scope must be a mapping, not {node.describe()}", node)
        self._unknown_keys(node, SCOPE_KEYS, "scope")
        kw: dict[str, object] = {}
        for key in ("cluster", "namespace", "pod", "node", "account", "account_environment",
                    "account_criticality", "environment", "owner"):  # fmt: skip
            if (v := node.get(key)) is not None:
                kw[key] = self.names(v, f"scope.{key}")
        for key in ("pod_labels", "namespace_labels", "node_labels"):
            if (v := node.get(key)) is not None:
                kw[key] = self._selector(v, f"scope.{key}")
        if (v := node.get("source")) is not None:
            items = self.strings(v, "scope.source")
            for s, n in items:
                if s not in KNOWN_SOURCES:
                    raise self.error(f"unknown source '{s}' (expected one of: "
                                     f"{', '.join(KNOWN_SOURCES)})", n)  # fmt: skip
            kw["source"] = M.Names.of([s for s, _ in items])
        if (v := node.get("rules")) is not None:
            items = self.strings(v, "scope.rules")
            self._check_rules(items)
            kw["rules"] = M.Names.of([s for s, _ in items])
        if (v := node.get("tags")) is not None:
            items = self.strings(v, "scope.tags")
            self._check_tags(items)
            kw["tags"] = frozenset(s for s, _ in items)
        if (v := node.get("priority")) is not None:
            kw["priority"] = self._priority_match(v)
        return M.Scope(**kw)  # type: ignore[arg-type]

    def _priority(self, text: str, node: Node) -> Priority:
        try:
            return Priority.parse(text)
        except ValueError as exc:
            raise self.error(str(exc), node) from None

    def _priority_match(self, node: Node) -> M.PriorityMatch:
        allowed: set[Priority] = set()
        for text, n in self.strings(node, "scope.priority"):
            m = _PRIO_CMP.match(text)
            if m is None:
                raise self.error(f"invalid priority selector {text!r}: a priority, or one "
                                 "compared by severity ('>= warning', '< error')", n)  # fmt: skip
            op, p = m.group(1) or "=", self._priority(m.group(2), n)
            test = _SEVERITY_TESTS[op]  # by severity: a lower number is more severe
            allowed.update(q for q in Priority if test(q, p))
        return M.PriorityMatch(frozenset(allowed))

    def _selector(self, node: Node, what: str) -> M.LabelSelector:
        if node.is_scalar:
            text = node.text
            try:
                return parse_selector(text)
            except SelectorSyntaxError as exc:
                col = node.column + exc.offset if node.plain and "\n" not in text else node.column
                pos_node = Node(node.kind, node.line, col)
                raise self.error(f"invalid label selector in {what}: {exc}", pos_node,
                                 _caret(text, exc.offset)) from None  # fmt: skip
        if not node.is_mapping:
            raise self.error(f"{what} must be a selector string ('app=web,tier in (a,b)') or a "
                             f"mapping with matchLabels/matchExpressions, not {node.describe()}",
                             node)  # fmt: skip
        self._unknown_keys(node, ("matchLabels", "matchExpressions"), what)
        reqs: list[M.Requirement] = []
        if (ml := node.get("matchLabels")) is not None:
            if not ml.is_mapping:
                raise self.error(f"{what}.matchLabels must be a mapping of labels to values", ml)
            for k, v in ml.pairs:
                key = self._label_key(k)
                value = v.text if v.is_scalar else ""
                if not v.is_scalar or (problem := label_value_problem(value)):
                    raise self.error(problem if v.is_scalar and problem else
                                     f"the value of label '{key}' must be a string", v)  # fmt: skip
                reqs.append(M.Requirement(key, M.IN, frozenset([value])))
        if (me := node.get("matchExpressions")) is not None:
            if not me.is_sequence:
                raise self.error(f"{what}.matchExpressions must be a list", me)
            for expr in me.items:
                reqs.append(self._expression(expr, what))
        return M.LabelSelector(tuple(reqs))

    def _label_key(self, node: Node) -> str:
        key = self.scalar(node, "a label key")
        if problem := label_key_problem(key):
            raise self.error(problem, node)
        return key

    def _expression(self, expr: Node, what: str) -> M.Requirement:
        if not expr.is_mapping:
            raise self.error(f"each item of {what}.matchExpressions must be a mapping "
                             "(key, operator, values)", expr)  # fmt: skip
        self._unknown_keys(expr, ("key", "operator", "values"), "a match expression")
        k, op_node, vals = expr.get("key"), expr.get("operator"), expr.get("values")
        if k is None or op_node is None:
            raise self.error("a match expression needs 'key' and 'operator'", expr)
        key = self._label_key(k)
        op = self.scalar(op_node, "operator")
        if op not in (M.IN, M.NOT_IN, M.EXISTS, M.DOES_NOT_EXIST):
            raise self.error(f"invalid operator '{op}' (expected In, NotIn, Exists or "
                             "DoesNotExist)", op_node)  # fmt: skip
        values: list[str] = []
        if vals is not None and not vals.is_null:
            if not vals.is_sequence:
                raise self.error("values must be a list", vals)
            for v in vals.items:
                text = v.text if v.is_scalar else ""
                if not v.is_scalar or (problem := label_value_problem(text)):
                    raise self.error(problem if v.is_scalar and problem else
                                     "each value must be a string", v)  # fmt: skip
                values.append(text)
        if op in (M.IN, M.NOT_IN) and not values:
            raise self.error(f"operator {op} needs a non-empty 'values' list", op_node)
        if op in (M.EXISTS, M.DOES_NOT_EXIST) and values:
            raise self.error(f"operator {op} takes no values", vals)
        return M.Requirement(key, op, frozenset(values))

    def _check_rules(self, items: list[tuple[str, Node]]) -> None:
        if self.rule_names is None:
            return
        for name, n in items:
            if M.is_glob(name):
                if not any(M.Names.of([name]).match(r) for r in self.rule_names):
                    self.warn(f"no loaded rule matches '{name}'", n)
            elif name not in self.rule_names:
                self.warn(f"unknown rule '{name}': no loaded rule has that name", n)

    def _check_tags(self, items: list[tuple[str, Node]]) -> None:
        if self.rule_tags is None:
            return
        for tag, n in items:
            if tag not in self.rule_tags:
                self.warn(f"no loaded rule has the tag '{tag}'", n)

    def _disable(self, node: Node | None) -> M.RuleFilter | None:
        if node is None:
            return None
        items = self.strings(node, "disable")
        names = [(s, n) for s, n in items if not s.startswith("tag:")]
        tags: list[tuple[str, Node]] = []
        for s, n in items:
            if s.startswith("tag:"):
                tag = s[4:].strip()
                if not tag:
                    raise self.error("'tag:' needs a tag name ('tag:network')", n)
                tags.append((tag, n))
        self._check_rules(names)
        self._check_tags(tags)
        return M.RuleFilter(M.Names.of([s for s, _ in names]), frozenset(t for t, _ in tags))

    def _change(self, node: Node | None) -> M.PriorityChange | None:
        if node is None:
            return None
        text = self.scalar(node, "priority")
        m = _CHANGE.match(text)
        if m is None:
            try:  # a bare priority name is a 'set'
                return M.PriorityChange("set", value=Priority.parse(text))
            except ValueError:
                raise self.error(f"invalid priority change {text!r}: expected 'raise N', "
                                 "'lower N', 'set <priority>' or a priority name", node) from None  # fmt: skip
        if m.group(3):
            return M.PriorityChange("set", value=self._priority(m.group(3), node))
        amount = int(m.group(2))
        if amount < 1:
            raise self.error("the amount of a priority change must be at least 1", node)
        return M.PriorityChange(m.group(1).lower(), amount=amount)

    # -- exceptions -------------------------------------------------------------------------------
    def _exceptions(self, node: Node | None) -> tuple[M.ExceptionSpec, ...]:
        if node is None:
            return ()
        if not node.is_sequence:
            raise self.error("exceptions must be a list of {name, fields, comps, values}", node)
        out = []
        names: set[str] = set()
        for ex in node.items:
            spec = self._exception(ex)
            if spec.name in names:
                raise self.error(f"exception '{spec.name}' is defined twice in this policy", ex)
            names.add(spec.name)
            out.append(spec)
        return tuple(out)

    def _exception(self, ex: Node) -> M.ExceptionSpec:
        if not ex.is_mapping:
            raise self.error("each exception must be a mapping (name, fields, comps, values)", ex)
        self._unknown_keys(ex, EXCEPTION_KEYS, "an exception")
        name_node, fields_node = ex.get("name"), ex.get("fields")
        if name_node is None or fields_node is None:
            raise self.error("an exception needs 'name' and 'fields'", ex)
        name = self.scalar(name_node, "the exception name")
        single = not fields_node.is_sequence
        fields = self.strings(fields_node, "fields")
        bound = {f: self._bindings(f, n) for f, n in fields}
        comps_node = ex.get("comps")
        if comps_node is None:
            comps = [("=", fields_node)] * len(fields)
        else:
            comps = self.strings(comps_node, "comps")
            if comps_node.is_sequence == single or len(comps) != len(fields):
                raise self.error(f"comps must match fields: {len(fields)} "
                                 f"{'operator' if single else 'operators in a list'}", comps_node)  # fmt: skip
        for c, n in comps:
            if c not in M.COMPS:
                raise self.error(f"unknown comparison operator '{c}' (expected one of: "
                                 f"{', '.join(M.COMPS)})", n)  # fmt: skip
        values_node = ex.get("values")
        if values_node is None or not values_node.is_sequence or not values_node.items:
            raise self.error("an exception needs a non-empty list of 'values'", values_node or ex)
        tuples: list[tuple[M.Comparison, ...]] = []
        for tup in values_node.items:
            parts = [tup] if single else (tup.items if tup.is_sequence else None)
            if parts is None or len(parts) != len(fields):
                raise self.error(f"each value must be a list of {len(fields)} values, one per "
                                 "field", tup)  # fmt: skip
            tuples.append(tuple(self._comparison(f, c, v, bound[f]) for (f, _), (c, _), v
                                in zip(fields, comps, parts, strict=True)))  # fmt: skip
        return M.ExceptionSpec(name, tuple(f for f, _ in fields), tuple(tuples))

    def _comparison(self, fname: str, comp: str, node: Node,
                    bound: dict[str, BoundField | None]) -> M.Comparison:  # fmt: skip
        if comp in ("in", "pmatch"):
            items = [v for v, _ in self.strings(node, f"the value for '{comp}'")]
            if comp == "in":
                return M.Comparison(fname, comp, frozenset(items), bound)
            return M.Comparison(fname, comp, PathPrefixes.build(items), bound)
        if not node.is_scalar:
            raise self.error(f"the value compared with '{comp}' must be a string, not "
                             f"{node.describe()}", node)  # fmt: skip
        if comp == "glob":
            return M.Comparison(fname, comp, glob_to_regex(node.text), bound)
        return M.Comparison(fname, comp, node.text, bound)

    def _bindings(self, fname: str, node: Node) -> dict[str, BoundField | None]:
        m = _FIELD.match(fname)
        if m is None:
            raise self.error(f"invalid field name '{fname}'", node)
        bound = bind_field(fname)
        if not any(b is not None for b in bound.values()):
            raise self.error(f"unknown field '{fname}' (no source has it)", node)
        return bound


def bind_field(fname: str) -> dict[str, BoundField | None]:
    """``name`` or ``name[arg]`` bound in each evaluated source's registry (None where the
    source has no such field)."""
    m = _FIELD.match(fname)
    out: dict[str, BoundField | None] = {}
    for source in EVALUATED_SOURCES:
        reg = registry_for(source)
        b: BoundField | None = None
        if reg is not None and m is not None:
            try:
                b = reg.bind(m.group(1), m.group(2))
            except (UnknownFieldError, FieldArgError, ValueError):
                b = None
        out[source] = b
    return out


def read_policies(files: Sequence[tuple[str, str]], res: R.LoadResult,
                  rule_names: Iterable[str] | None = None,
                  rule_tags: Iterable[str] | None = None) -> Loaded:  # fmt: skip
    """Read policy files given as ``(name, text)``; messages go to ``res``."""
    reader = PolicyReader(res, rule_names, rule_tags)
    for name, text in files:
        reader.read(name, text)
    return reader.loaded
